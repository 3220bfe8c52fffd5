/* Unit tests for src/util: growable buffers, the versioned cache, error detail, identifiers, string
 * helpers (bounded copy, UTF-8 validation, integer parsing), RFC 3339 timestamps and durations,
 * whole-file replacement and bounded reads, and the stderr logger. Expected timestamps were
 * computed independently (Python's datetime), not taken from the code under test. */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>

#include "util/buf.h"
#include "util/cache.h"
#include "util/err.h"
#include "util/file.h"
#include "util/gzip.h"
#include "util/id.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

static void suite_init(void)
{
    cr_assert(sodium_init() >= 0, "sodium_init failed");
}

/* ---- buf ---- */

TestSuite(buf, .init = suite_init);

Test(buf, init_is_empty_with_default_max)
{
    struct cf_buf b;
    cf_buf_init(&b, 0);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.max, (size_t)64 * 1024 * 1024);
    cf_buf_init(&b, 10);
    cr_assert_eq(b.max, 10);
    cf_buf_release(&b);
}

/* An adopted block is the buffer's contents, grows like any, and is released by the buffer. */
Test(buf, adopt_takes_a_block)
{
    struct cf_buf b;
    char *block = malloc(16);
    cr_assert_not_null(block);
    memcpy(block, "body\0names\0tail", 16);
    cf_buf_adopt(&b, block, 4, 16);
    cr_assert_str_eq(b.data, "body");
    cr_assert_eq(b.len, 4);
    cr_assert_eq(cf_buf_append(&b, "+more-than-the-block-holds", 26), CF_OK);
    cr_assert_str_eq(b.data, "body+more-than-the-block-holds");
    cf_buf_release_wipe(&b);
    cr_assert_null(b.data);
}

Test(buf, append_grows_and_keeps_contents)
{
    struct cf_buf b;
    cf_buf_init(&b, 0);
    char expect[10000];
    for (size_t i = 0; i < sizeof(expect); i++) {
        char c = (char)('a' + i % 26);
        expect[i] = c;
        cr_assert_eq(cf_buf_append(&b, &c, 1), CF_OK);
        cr_assert_eq(b.len, i + 1);
        cr_assert_geq(b.cap, b.len + 1);
        cr_assert_eq(b.data[b.len], '\0', "not NUL-terminated after %zu bytes", i + 1);
    }
    cr_assert_eq(memcmp(b.data, expect, sizeof(expect)), 0);
    /* A large single append after many small ones. */
    static char big[200000];
    memset(big, 'x', sizeof(big));
    cr_assert_eq(cf_buf_append(&b, big, sizeof(big)), CF_OK);
    cr_assert_eq(b.len, sizeof(expect) + sizeof(big));
    cr_assert_eq(memcmp(b.data, expect, sizeof(expect)), 0);
    cr_assert_eq(memcmp(b.data + sizeof(expect), big, sizeof(big)), 0);
    cr_assert_eq(b.data[b.len], '\0');
    cf_buf_release_wipe(&b);
}

Test(buf, binary_bytes_with_nul)
{
    struct cf_buf b;
    cf_buf_init(&b, 0);
    const char bytes[] = {'a', '\0', 'b', '\0'};
    cr_assert_eq(cf_buf_append(&b, bytes, sizeof(bytes)), CF_OK);
    cr_assert_eq(b.len, 4);
    cr_assert_eq(memcmp(b.data, bytes, 4), 0);
    cf_buf_release(&b);
}

Test(buf, empty_append_yields_empty_string)
{
    struct cf_buf b;
    cf_buf_init(&b, 0);
    cr_assert_eq(cf_buf_puts(&b, ""), CF_OK);
    cr_assert_not_null(b.data);
    cr_assert_str_eq(b.data, "");
    cr_assert_eq(b.len, 0);
    cf_buf_release(&b);
}

Test(buf, max_is_enforced_exactly)
{
    struct cf_buf b;
    cf_buf_init(&b, 8);
    cr_assert_eq(cf_buf_puts(&b, "12345"), CF_OK);
    cr_assert_eq(cf_buf_puts(&b, "6789"), CF_ETOOLARGE);
    cr_assert_eq(b.len, 5, "a failed append must leave the contents unchanged");
    cr_assert_str_eq(b.data, "12345");
    cr_assert_eq(cf_buf_puts(&b, "678"), CF_OK, "exactly max bytes is allowed");
    cr_assert_str_eq(b.data, "12345678");
    cr_assert_eq(cf_buf_append(&b, "9", 1), CF_ETOOLARGE);
    cr_assert_eq(cf_buf_append(&b, "", 0), CF_OK);
    cr_assert_eq(cf_buf_printf(&b, "%d", 1), CF_ETOOLARGE);
    cr_assert_str_eq(b.data, "12345678");
    /* A size that would overflow len + n must be refused, not wrap around. */
    cr_assert_eq(cf_buf_append(&b, "x", SIZE_MAX), CF_ETOOLARGE);
    cr_assert_eq(cf_buf_append(&b, "x", SIZE_MAX - 3), CF_ETOOLARGE);
    cr_assert_eq(b.len, 8);
    cf_buf_release(&b);
}

Test(buf, max_over_initial_capacity)
{
    struct cf_buf b;
    cf_buf_init(&b, 100);
    char chunk[100];
    memset(chunk, 'q', sizeof(chunk));
    cr_assert_eq(cf_buf_append(&b, chunk, 60), CF_OK);
    cr_assert_eq(cf_buf_append(&b, chunk, 41), CF_ETOOLARGE);
    cr_assert_eq(cf_buf_append(&b, chunk, 40), CF_OK);
    cr_assert_eq(b.len, 100);
    cf_buf_release(&b);
}

Test(buf, printf_formats_and_grows)
{
    struct cf_buf b;
    cf_buf_init(&b, 0);
    cr_assert_eq(cf_buf_printf(&b, "%s=%d;", "a", 1), CF_OK);
    cr_assert_eq(cf_buf_printf(&b, "%05.1f|%x", 3.14159, 255u), CF_OK);
    cr_assert_str_eq(b.data, "a=1;003.1|ff");
    cr_assert_eq(b.len, strlen("a=1;003.1|ff"));
    /* Longer than the first allocation. */
    cr_assert_eq(cf_buf_printf(&b, "%300s", "end"), CF_OK);
    cr_assert_eq(b.len, 12 + 300);
    cr_assert_eq(strlen(b.data), b.len);
    cr_assert_str_eq(b.data + b.len - 3, "end");
    cr_assert_eq(cf_buf_printf(&b, "%s", ""), CF_OK);
    cr_assert_eq(b.len, 312);
    cf_buf_release(&b);
}

Test(buf, reset_keeps_memory)
{
    struct cf_buf b;
    cf_buf_init(&b, 0);
    cr_assert_eq(cf_buf_puts(&b, "hello world"), CF_OK);
    char *data = b.data;
    size_t cap = b.cap;
    cf_buf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.data, data);
    cr_assert_eq(b.cap, cap);
    cr_assert_str_eq(b.data, "");
    cr_assert_eq(cf_buf_puts(&b, "x"), CF_OK);
    cr_assert_str_eq(b.data, "x");
    cf_buf_release(&b);
    cf_buf_reset(&b); /* on a released buffer: no crash */
    cr_assert_eq(b.len, 0);
}

Test(buf, detach_hands_over_contents)
{
    struct cf_buf b;
    cf_buf_init(&b, 0);
    cr_assert_eq(cf_buf_puts(&b, "abc"), CF_OK);
    size_t len = 99;
    char *s = cf_buf_detach(&b, &len);
    cr_assert_not_null(s);
    cr_assert_str_eq(s, "abc");
    cr_assert_eq(len, 3);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, 0);
    free(s);
    /* The buffer is reusable afterwards. */
    cr_assert_eq(cf_buf_puts(&b, "again"), CF_OK);
    cr_assert_str_eq(b.data, "again");
    cf_buf_release(&b);
}

Test(buf, detach_empty_is_empty_string)
{
    struct cf_buf b;
    cf_buf_init(&b, 0);
    size_t len = 99;
    char *s = cf_buf_detach(&b, &len);
    cr_assert_not_null(s);
    cr_assert_str_eq(s, "");
    cr_assert_eq(len, 0);
    free(s);
    s = cf_buf_detach(&b, NULL);
    cr_assert_not_null(s);
    free(s);
}

Test(buf, release_wipe_and_release_leave_empty_buffer)
{
    struct cf_buf b;
    cf_buf_init(&b, 50);
    cr_assert_eq(cf_buf_puts(&b, "s3cret"), CF_OK);
    cf_buf_release_wipe(&b);
    cr_assert_null(b.data);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.cap, 0);
    cr_assert_eq(b.max, 50, "max survives release");
    cf_buf_release_wipe(&b); /* twice: no-op */
    cf_buf_release(&b);
    cr_assert_eq(cf_buf_puts(&b, "ok"), CF_OK);
    cf_buf_release(&b);
}

Test(buf, append_of_own_contents)
{
    /* Appending a slice of the buffer to itself must work even when the append reallocates. */
    struct cf_buf b;
    cf_buf_init(&b, 0);
    cr_assert_eq(cf_buf_puts(&b, "0123456789"), CF_OK);
    for (int i = 0; i < 6; i++) {
        size_t len = b.len;
        cr_assert_eq(cf_buf_append(&b, b.data, len), CF_OK);
        cr_assert_eq(b.len, 2 * len);
        cr_assert_eq(memcmp(b.data, b.data + len, len), 0);
    }
    for (size_t i = 0; i < b.len; i++)
        cr_assert_eq(b.data[i], (char)('0' + i % 10));
    cf_buf_release(&b);
}

Test(buf, printf_of_own_contents)
{
    /* An argument pointing into the buffer itself, with and without reallocation. */
    struct cf_buf b;
    cf_buf_init(&b, 0);
    cr_assert_eq(cf_buf_puts(&b, "ab"), CF_OK);
    cr_assert_eq(cf_buf_printf(&b, "[%s]", b.data), CF_OK); /* fits in the first block */
    cr_assert_str_eq(b.data, "ab[ab]");
    for (int i = 0; i < 6; i++) {
        char expect[4096];
        snprintf(expect, sizeof(expect), "%s<%s>", b.data, b.data);
        cr_assert_eq(cf_buf_printf(&b, "<%s>", b.data), CF_OK);
        cr_assert_str_eq(b.data, expect);
        cr_assert_eq(b.len, strlen(expect));
    }
    cf_buf_release(&b);
}

Test(buf, printf_long_text_and_limit)
{
    struct cf_buf b;
    cf_buf_init(&b, 1000);
    cr_assert_eq(cf_buf_printf(&b, "%0999d", 7), CF_OK);
    cr_assert_eq(b.len, 999);
    cr_assert_eq(b.data[998], '7');
    cr_assert_eq(b.data[0], '0');
    cr_assert_eq(cf_buf_printf(&b, "%s", "xy"), CF_ETOOLARGE);
    cr_assert_eq(cf_buf_printf(&b, "%s", "x"), CF_OK);
    cr_assert_eq(b.len, 1000);
    cf_buf_reset(&b);
    cr_assert_eq(cf_buf_printf(&b, "%2000d", 1), CF_ETOOLARGE);
    cr_assert_eq(b.len, 0);
    cf_buf_release(&b);
}

/* ---- err ---- */

TestSuite(err);

Test(err, set_fills_and_returns_rc)
{
    struct cf_err e;
    cf_err_clear(&e);
    cr_assert_eq(cf_err_field(&e, CF_EVALIDATION, "secretKey", "'%s' is bad", "A B"),
                 CF_EVALIDATION);
    cr_assert_eq(e.rc, CF_EVALIDATION);
    cr_assert_str_eq(e.field, "secretKey");
    cr_assert_str_eq(e.msg, "'A B' is bad");
    cr_assert_eq(cf_err_set(&e, CF_ENOTFOUND, "no project '%d'", 7), CF_ENOTFOUND);
    cr_assert_eq(e.rc, CF_ENOTFOUND);
    cr_assert_str_eq(e.field, "", "cf_err_set clears the field");
    cr_assert_str_eq(e.msg, "no project '7'");
    cf_err_clear(&e);
    cr_assert_eq(e.rc, CF_OK);
    cr_assert_str_eq(e.msg, "");
    cr_assert_str_eq(e.field, "");
}

Test(err, null_err_is_allowed)
{
    cr_assert_eq(cf_err_set(NULL, CF_EIO, "x"), CF_EIO);
    cr_assert_eq(cf_err_field(NULL, CF_EINVAL, "f", "x"), CF_EINVAL);
    cf_err_clear(NULL);
}

Test(err, long_message_and_field_are_truncated)
{
    struct cf_err e;
    char longtext[1000];
    memset(longtext, 'm', sizeof(longtext) - 1);
    longtext[sizeof(longtext) - 1] = '\0';
    cf_err_field(&e, CF_EINVAL, longtext, "%s", longtext);
    cr_assert_eq(strlen(e.msg), CF_ERR_MSG_MAX - 1);
    cr_assert_eq(strlen(e.field), CF_ERR_FIELD_MAX - 1);
    cf_err_field(&e, CF_EINVAL, NULL, "x");
    cr_assert_str_eq(e.field, "");
}

Test(err, rc_names_are_distinct)
{
    const char *names[CF_EINTERNAL + 1];
    for (int rc = CF_OK; rc <= CF_EINTERNAL; rc++) {
        names[rc] = cf_rc_str((enum cf_rc)rc);
        cr_assert_not_null(names[rc]);
        cr_assert_str_neq(names[rc], "unknown error", "code %d has no name", rc);
        for (int other = CF_OK; other < rc; other++)
            cr_assert_str_neq(names[rc], names[other], "codes %d and %d share a name", rc, other);
    }
    cr_assert_str_eq(cf_rc_str(CF_OK), "ok");
    cr_assert_str_eq(cf_rc_str(CF_ENOTFOUND), "not found");
    cr_assert_str_eq(cf_rc_str((enum cf_rc)999), "unknown error");
}

/* ---- id ---- */

TestSuite(id, .init = suite_init);

static int cmp_uuid(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

Test(id, uuid_new_is_canonical_v4_and_unique)
{
    enum { N = 2000 };
    static char ids[N][CF_UUID_LEN];
    for (int i = 0; i < N; i++) {
        cf_uuid_new(ids[i]);
        const char *u = ids[i];
        cr_assert_eq(strlen(u), 36);
        cr_assert(cf_uuid_valid(u), "%s", u);
        cr_assert_eq(u[14], '4', "version nibble in %s", u);
        cr_assert(strchr("89ab", u[19]) != NULL, "variant nibble in %s", u);
        for (int k = 0; k < 36; k++)
            cr_assert(!(u[k] >= 'A' && u[k] <= 'F'), "upper case in %s", u);
    }
    qsort(ids, N, CF_UUID_LEN, cmp_uuid);
    for (int i = 1; i < N; i++)
        cr_assert_str_neq(ids[i - 1], ids[i], "duplicate uuid");
}

/* A UUIDv7 carries the time: milliseconds in the first 12 hex digits, version 7, the microseconds
 * within the millisecond in the next 3; its first 8 bytes are cf_uuid_v7_head's; the rest random.
 */
Test(id, uuid_v7_carries_its_time)
{
    const int64_t t = 1796488394763882; /* 2026-12-05T...: 1796488394763 ms and 882 us */
    char a[CF_UUID_LEN], b[CF_UUID_LEN];
    cf_uuid_v7(t, a);
    cf_uuid_v7(t, b);
    cr_assert(cf_uuid_valid(a), "%s", a);
    cr_assert_str_neq(a, b);
    char expect[24];
    snprintf(expect, sizeof(expect), "%08llx-%04llx-7%03x", (unsigned long long)(t / 1000 >> 16),
             (unsigned long long)(t / 1000 & 0xffff), (unsigned)(t % 1000));
    cr_assert_eq(strncmp(a, expect, strlen(expect)), 0, "%s vs %s", a, expect);
    cr_assert(a[19] == '8' || a[19] == '9' || a[19] == 'a' || a[19] == 'b', "variant: %s", a);
    uint8_t head[CF_UUID_V7_HEAD_BYTES];
    cf_uuid_v7_head(t, head);
    char head_hex[2 * CF_UUID_V7_HEAD_BYTES + 1];
    snprintf(head_hex, sizeof(head_hex), "%.8s%.4s%.4s", a, a + 9, a + 14);
    for (size_t i = 0; i < sizeof(head); i++) {
        char byte[3];
        snprintf(byte, sizeof(byte), "%02x", head[i]);
        cr_assert_eq(strncmp(head_hex + 2 * i, byte, 2), 0, "byte %zu of %s", i, a);
    }
}

Test(id, uuid_valid_table)
{
    static const struct {
        const char *text;
        bool valid;
    } cases[] = {
        {"123e4567-e89b-12d3-a456-426614174000", true},
        {"123E4567-E89B-12D3-A456-426614174000", true},
        {"00000000-0000-0000-0000-000000000000", true},
        {"123e4567-e89b-12d3-a456-42661417400", false},   /* 35 */
        {"123e4567-e89b-12d3-a456-4266141740000", false}, /* 37 */
        {"123e4567e89b-12d3-a456-426614174000-", false},  /* dash moved */
        {"123e4567-e89b-12d3-a456_426614174000", false},
        {"123e4567-e89b-12d3-a456-42661417400g", false},
        {"123e4567-e89b-12d3-a456-42661417400 ", false},
        {"{23e4567-e89b-12d3-a456-426614174000", false},
        {"", false},
        {"------------------------------------", false},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++)
        cr_assert_eq(cf_uuid_valid(cases[i].text), cases[i].valid, "'%s'", cases[i].text);
    cr_assert_not(cf_uuid_valid(NULL));
}

Test(id, reqid_is_16_lower_hex)
{
    char a[CF_REQID_LEN], b[CF_REQID_LEN];
    cf_reqid_new(a);
    cf_reqid_new(b);
    cr_assert_eq(strlen(a), 16);
    cr_assert_eq(strspn(a, "0123456789abcdef"), 16);
    cr_assert_str_neq(a, b);
}

/* Ids come from a per-thread block of CSPRNG bytes: a forked child must not hand out the ids its
 * parent hands out next from the same block. */
Test(id, forked_child_does_not_repeat_parent_ids)
{
    enum { N = 8 };
    char first[CF_UUID_LEN];
    cf_uuid_new(first); /* the parent's block is drawn and mostly unused */
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t child = fork();
    cr_assert_neq(child, -1);
    if (child == 0) {
        char ids[N][CF_UUID_LEN];
        for (int i = 0; i < N; i++)
            cf_uuid_new(ids[i]);
        ssize_t unused = write(fds[1], ids, sizeof(ids));
        (void)unused;
        _exit(0);
    }
    close(fds[1]);
    char theirs[N][CF_UUID_LEN];
    size_t got = 0;
    while (got < sizeof(theirs)) {
        ssize_t n = read(fds[0], (char *)theirs + got, sizeof(theirs) - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    waitpid(child, NULL, 0);
    cr_assert_eq(got, sizeof(theirs));
    for (int i = 0; i < N; i++) {
        char mine[CF_UUID_LEN];
        cf_uuid_new(mine);
        cr_assert(cf_uuid_valid(theirs[i]), "%s", theirs[i]);
        for (int k = 0; k < N; k++)
            cr_assert_str_neq(mine, theirs[k], "the child repeated the parent's id %s", mine);
    }
}

/* ---- str ---- */

TestSuite(str);

Test(str, strlcpy)
{
    char dst[6];
    cr_assert(cf_strlcpy(dst, "abc", sizeof(dst)));
    cr_assert_str_eq(dst, "abc");
    cr_assert(cf_strlcpy(dst, "abcde", sizeof(dst)));
    cr_assert_str_eq(dst, "abcde");
    cr_assert_not(cf_strlcpy(dst, "abcdef", sizeof(dst)));
    cr_assert_str_eq(dst, "abcde");
    cr_assert(cf_strlcpy(dst, "", sizeof(dst)));
    cr_assert_str_eq(dst, "");
    dst[0] = 'z';
    cr_assert_not(cf_strlcpy(dst, "a", 0));
    cr_assert_eq(dst[0], 'z', "size 0 writes nothing");
    cr_assert(cf_strlcpy(dst, "", 0));
    cr_assert_not(cf_strlcpy(dst, "a", 1));
    cr_assert_str_eq(dst, "");
}

/* cf_join writes what snprintf("%s|%s|%s") would, and says when that does not fit. */
Test(str, join)
{
    char out[8], big[64];
    const char *const parts[] = {"ab", NULL, "cde"};
    cr_assert(cf_join(out, sizeof(out), '|', parts, 3));
    cr_assert_str_eq(out, "ab||cde");
    snprintf(big, sizeof(big), "%s|%s|%s", "ab", "", "cde");
    cr_assert_str_eq(out, big);
    cr_assert_not(cf_join(out, 7, '|', parts, 3), "7 bytes hold 6 characters");
    cr_assert_str_eq(out, "ab|"); /* terminated, cut before the part that does not fit */
    cr_assert(cf_join(out, 1, '|', parts + 1, 1), "one empty part fits the terminator");
    cr_assert_str_eq(out, "");
    cr_assert_not(cf_join(out, 2, '|', parts, 1));
    cr_assert(cf_join(out, sizeof(out), '|', parts, 0));
    cr_assert_str_eq(out, "");
    out[0] = 'z';
    cr_assert_not(cf_join(out, 0, '|', parts, 1));
    cr_assert_eq(out[0], 'z', "size 0 writes nothing");
}

struct utf8_case {
    const char *bytes;
    size_t n;
    bool valid;
    const char *what;
};
#define U8(s, v, w)                                                                                \
    {                                                                                              \
        s, sizeof(s) - 1, v, w                                                                     \
    }

Test(str, utf8_valid_table)
{
    static const struct utf8_case cases[] = {
        U8("", true, "empty"),
        U8("plain ascii ~\x7f", true, "ascii incl. DEL"),
        U8("caf\xc3\xa9", true, "2-byte"),
        U8("\xc2\x80", true, "U+0080"),
        U8("\xdf\xbf", true, "U+07FF"),
        U8("\xe0\xa0\x80", true, "U+0800"),
        U8("\xe2\x82\xac", true, "euro sign"),
        U8("\xed\x9f\xbf", true, "U+D7FF"),
        U8("\xee\x80\x80", true, "U+E000"),
        U8("\xef\xbf\xbf", true, "U+FFFF"),
        U8("\xf0\x90\x80\x80", true, "U+10000"),
        U8("\xf0\x9f\x94\x91", true, "emoji"),
        U8("\xf4\x8f\xbf\xbf", true, "U+10FFFF"),
        U8("a\0b", false, "NUL"),
        U8("\0", false, "lone NUL"),
        U8("\xc0\x80", false, "overlong NUL"),
        U8("\xc1\xbf", false, "overlong 2-byte"),
        U8("\xe0\x80\x80", false, "overlong 3-byte NUL"),
        U8("\xe0\x9f\xbf", false, "overlong U+07FF"),
        U8("\xf0\x80\x80\x80", false, "overlong 4-byte NUL"),
        U8("\xf0\x8f\xbf\xbf", false, "overlong U+FFFF"),
        U8("\xed\xa0\x80", false, "surrogate D800"),
        U8("\xed\xbf\xbf", false, "surrogate DFFF"),
        U8("\xed\xa0\xbd\xed\xb2\xa9", false, "CESU-8 pair"),
        U8("\xf4\x90\x80\x80", false, "U+110000"),
        U8("\xf5\x80\x80\x80", false, "lead F5"),
        U8("\xf8\x88\x80\x80\x80", false, "5-byte form"),
        U8("\xfe", false, "FE"),
        U8("\xff", false, "FF"),
        U8("\x80", false, "lone continuation"),
        U8("a\xbf"
           "b",
           false, "continuation in ascii"),
        U8("\xc3", false, "truncated 2-byte"),
        U8("\xe2\x82", false, "truncated 3-byte"),
        U8("\xf0\x9f\x94", false, "truncated 4-byte"),
        U8("\xe2\x82z", false, "bad continuation"),
        U8("\xc3\xc3\xa9", false, "lead then lead"),
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++)
        cr_assert_eq(cf_utf8_valid(cases[i].bytes, cases[i].n), cases[i].valid, "%s",
                     cases[i].what);
}

Test(str, utf8_respects_length)
{
    /* Only n bytes are examined: a sequence cut by n is truncated even if the byte after it
     * completes it. */
    const char euro[] = "\xe2\x82\xac";
    cr_assert(cf_utf8_valid(euro, 3));
    cr_assert_not(cf_utf8_valid(euro, 2));
    cr_assert(cf_utf8_valid("ab\0cd", 2), "the NUL after n is not examined");
    cr_assert(cf_utf8_valid(NULL, 0));
}

Test(str, utf8_repair)
{
    static const struct {
        const char *in, *out;
        size_t replaced;
    } cases[] = {
        {"", "", 0},
        {"Mozilla/5.0 (X11)", "Mozilla/5.0 (X11)", 0},
        {"caf\xc3\xa9 \xf0\x9f\x94\x91", "caf\xc3\xa9 \xf0\x9f\x94\x91", 0},
        {"bad\xff\xfe"
         "agent",
         "bad??agent", 2},
        {"cut \xe2\x82", "cut ??", 2},    /* a sequence cut at a field's end */
        {"\xc0\x80", "??", 2},            /* overlong */
        {"\xed\xa0\x80x", "???x", 3},     /* surrogate */
        {"\xc3\xc3\xa9", "?\xc3\xa9", 1}, /* a lead byte, then a good sequence */
        {"\x80"
         "abc",
         "?abc", 1},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        char text[64];
        cf_strlcpy(text, cases[i].in, sizeof(text));
        cr_assert_eq(cf_utf8_repair(text), cases[i].replaced, "case %zu", i);
        cr_assert_str_eq(text, cases[i].out, "case %zu", i);
        cr_assert(cf_utf8_valid(text, strlen(text)), "case %zu", i);
    }
}

Test(str, parse_int64)
{
    static const struct {
        const char *text;
        long long min, max;
        bool ok;
        long long value;
    } cases[] = {
        {"0", 0, 10, true, 0},
        {"42", 0, 100, true, 42},
        {"100", 0, 100, true, 100},
        {"101", 0, 100, false, 0},
        {"-5", -10, 10, true, -5},
        {"-11", -10, 10, false, 0},
        {"-1", 0, 10, false, 0},
        {"007", 0, 10, true, 7},
        {"9223372036854775807", LLONG_MIN, LLONG_MAX, true, LLONG_MAX},
        {"-9223372036854775808", LLONG_MIN, LLONG_MAX, true, LLONG_MIN},
        {"9223372036854775808", LLONG_MIN, LLONG_MAX, false, 0},
        {"-9223372036854775809", LLONG_MIN, LLONG_MAX, false, 0},
        {"99999999999999999999999", LLONG_MIN, LLONG_MAX, false, 0},
        {"", 0, 10, false, 0},
        {"-", -10, 10, false, 0},
        {"+1", 0, 10, false, 0},
        {" 1", 0, 10, false, 0},
        {"1 ", 0, 10, false, 0},
        {"1a", 0, 10, false, 0},
        {"0x10", 0, 100, false, 0},
        {"1e3", 0, 10000, false, 0},
        {"1.0", 0, 10, false, 0},
        {"--1", -10, 10, false, 0},
        {"- 1", -10, 10, false, 0},
        {"\t1", 0, 10, false, 0},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        long long out = 12345;
        bool ok = cf_parse_int64(cases[i].text, cases[i].min, cases[i].max, &out);
        cr_assert_eq(ok, cases[i].ok, "'%s'", cases[i].text);
        if (ok)
            cr_assert_eq(out, cases[i].value, "'%s'", cases[i].text);
        else
            cr_assert_eq(out, 12345, "'%s': output written on failure", cases[i].text);
    }
    long long out;
    cr_assert_not(cf_parse_int64(NULL, 0, 10, &out));
}

/* ---- time ---- */

TestSuite(time);

Test(time, format_known_values)
{
    char out[CF_TIME_RFC3339_LEN];
    cr_assert_str_eq(cf_time_format(0, out), "1970-01-01T00:00:00.000Z");
    cr_assert_str_eq(cf_time_format(1795505400123LL, out), "2026-11-24T07:30:00.123Z");
    cr_assert_str_eq(cf_time_format(951825600000LL, out), "2000-02-29T12:00:00.000Z");
    cr_assert_str_eq(cf_time_format(2147483648000LL, out), "2038-01-19T03:14:08.000Z");
    cr_assert_str_eq(cf_time_format(253402300799999LL, out), "9999-12-31T23:59:59.999Z");
    cr_assert_str_eq(cf_time_format(-1, out), "1969-12-31T23:59:59.999Z");
    cr_assert_str_eq(cf_time_format(-1000, out), "1969-12-31T23:59:59.000Z");
    cr_assert_eq(cf_time_format(5, out), out);
}

Test(time, parse_known_values)
{
    static const struct {
        const char *text;
        int64_t ms;
    } cases[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2026-11-24T07:30:00.123Z", 1795505400123LL},
        {"2026-11-24t07:30:00.123z", 1795505400123LL},
        {"2026-11-24 07:30:00.123Z", 1795505400123LL},
        {"2026-11-24T07:30:00.123+00:00", 1795505400123LL},
        {"2026-11-24T07:30:00.123-00:00", 1795505400123LL},
        {"2026-11-24T09:30:00+02:00", 1795505400000LL},
        {"2026-11-24T02:00:00-05:30", 1795505400000LL},
        {"2026-11-25T06:59:00+23:29", 1795505400000LL},
        {"2000-02-29T12:00:00Z", 951825600000LL},
        {"2024-02-29T23:59:59Z", 1709251199000LL},
        {"2100-03-01T00:00:00Z", 4107542400000LL},
        {"2038-01-19T03:14:08Z", 2147483648000LL},
        {"9999-12-31T23:59:59.999Z", 253402300799999LL},
        /* fractions: padded, truncated to milliseconds */
        {"1970-01-01T00:00:01.1Z", 1100},
        {"1970-01-01T00:00:01.12Z", 1120},
        {"1970-01-01T00:00:01.000Z", 1000},
        {"1970-01-01T00:00:01.999999999Z", 1999},
        {"1970-01-01T00:00:01.0009Z", 1000},
        /* a leap second is clamped to :59 */
        {"2016-12-31T23:59:60Z", 1483228799000LL},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        int64_t ms = -42;
        struct cf_err e;
        cf_err_clear(&e);
        cr_assert_eq(cf_time_parse(cases[i].text, &ms, &e), CF_OK, "'%s': %s", cases[i].text,
                     e.msg);
        cr_assert_eq(ms, cases[i].ms, "'%s' -> %lld", cases[i].text, (long long)ms);
    }
}

Test(time, parse_rejects_invalid)
{
    static const char *const bad[] = {
        "",
        "2026",
        "2026-11-24",
        "2026-11-24T07:30:00",     /* missing zone */
        "2026-11-24T07:30:00.123", /* missing zone */
        "2026-11-24T07:30:00 Z",
        "2026-11-24T07:30:00Z ", /* trailing junk */
        "2026-11-24T07:30:00Zjunk",
        "2026-11-24T07:30:00+02",
        "2026-11-24T07:30:00+2:00",
        "2026-11-24T07:30:00+0200",
        "2026-11-24T07:30:00+02:0",
        "2026-11-24T07:30:00+24:00",
        "2026-11-24T07:30:00+02:60",
        "2026-11-24T07:30:00+02:00junk",
        "2026-11-24T07:30:00.Z",           /* empty fraction */
        "2026-11-24T07:30:00.1234567890Z", /* more than nanoseconds */
        "2026-11-24T07:30:00,123Z",
        "2026-02-30T00:00:00Z",
        "2026-02-29T00:00:00Z", /* 2026 is not a leap year */
        "2100-02-29T00:00:00Z", /* nor is 2100 */
        "1900-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-06-31T00:00:00Z",
        "2026-09-31T00:00:00Z",
        "2026-11-31T00:00:00Z",
        "2026-01-32T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-10T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T23:60:00Z",
        "2026-01-01T23:59:61Z",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:00:00.1+01:01", /* found by fuzz_time: before 1970 once the offset applies */
        "1970-01-01T00:30:00+01:00",
        "9999-12-31T23:09:07-01:01", /* found by fuzz_time: after 9999 once the offset applies */
        "0000-01-01T00:00:00Z",
        "2026-1-01T00:00:00Z",
        "2026/01/01T00:00:00Z",
        "2026-01-01X00:00:00Z",
        "2026-01-01T00-00-00Z",
        "20260101T000000Z",
        "+2026-01-01T00:00:00Z",
        "2026-01-01T0a:00:00Z",
        "-026-01-01T00:00:00Z",
        "2026-01-01T00:00:00\n",
        "not a timestamp at all",
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(bad); i++) {
        int64_t ms = -42;
        struct cf_err e;
        cf_err_clear(&e);
        cr_assert_eq(cf_time_parse(bad[i], &ms, &e), CF_EINVAL, "'%s' accepted", bad[i]);
        cr_assert_eq(e.rc, CF_EINVAL);
        cr_assert_neq(e.msg[0], '\0', "no message for '%s'", bad[i]);
        cr_assert_eq(ms, -42, "'%s': output written on failure", bad[i]);
    }
    int64_t ms;
    cr_assert_eq(cf_time_parse(NULL, &ms, NULL), CF_EINVAL);
    cr_assert_eq(cf_time_parse("garbage", &ms, NULL), CF_EINVAL, "a NULL err is allowed");
}

Test(time, leap_years_every_day)
{
    /* Walk every day from 1970 to 2400 in both directions: format midnight, parse it back, and
     * check that the next calendar day (and only a valid one) parses. Feb 29 must exist exactly in
     * leap years. */
    char text[CF_TIME_RFC3339_LEN];
    int feb29 = 0;
    for (int64_t day = 0; day < 157500; day++) {
        int64_t ms = day * 86400000LL;
        cf_time_format(ms, text);
        if (text[0] == '2' && text[1] == '4' && text[2] == '0' && text[3] == '1')
            break;
        int64_t back = -1;
        cr_assert_eq(cf_time_parse(text, &back, NULL), CF_OK, "%s", text);
        cr_assert_eq(back, ms, "%s", text);
        if (strncmp(text + 4, "-02-29", 6) == 0) {
            int year = (text[0] - '0') * 1000 + (text[1] - '0') * 100 + (text[2] - '0') * 10 +
                       (text[3] - '0');
            cr_assert((year % 4 == 0 && year % 100 != 0) || year % 400 == 0, "%s", text);
            feb29++;
        }
    }
    /* 1972..2400 inclusive: 108 multiples of 4, minus 2100, 2200, 2300 (2000 and 2400 are leap). */
    cr_assert_eq(feb29, 108 - 3);
}

Test(time, round_trip_random)
{
    char text[CF_TIME_RFC3339_LEN];
    uint64_t state = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 100000; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        int64_t ms = (int64_t)(state % 253402300800000ULL); /* up to 9999-12-31T23:59:59.999Z */
        cf_time_format(ms, text);
        int64_t back = -1;
        cr_assert_eq(cf_time_parse(text, &back, NULL), CF_OK, "%s", text);
        cr_assert_eq(back, ms, "%lld -> %s -> %lld", (long long)ms, text, (long long)back);
    }
}

/* Writes offset to path the way a test moves a running server's clock: a new file renamed over it.
 */
static void write_clock_file(const char *path, const char *offset)
{
    char tmp[128];
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs(offset, f);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(rename(tmp, path), 0);
}

/* How far cf_now_ms is from the wall clock, in whole minutes. */
static long long clock_moved_min(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t real = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t moved = cf_now_ms() - real;
    return (long long)((moved >= 0 ? moved + 30000 : moved - 30000) / 60000);
}

/* COFFER_TEST_CLOCK_FILE moves a test build's clock at every reading (each test runs in a process
 * of its own, so the variable set here stays here); a release build never reads it. */
Test(time, clock_file_moves_a_test_build_only)
{
    char path[] = "/tmp/coffer-clock-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(setenv("COFFER_TEST_CLOCK_FILE", path, 1), 0);
    bool moves = cf_test_clock_build();
    cr_expect_eq(clock_moved_min(), 0, "an empty file is no offset");
    write_clock_file(path, "2d\n");
    cr_expect_eq(clock_moved_min(), moves ? 2 * 24 * 60 : 0);
    write_clock_file(path, "-3h");
    cr_expect_eq(clock_moved_min(), moves ? -3 * 60 : 0);
    write_clock_file(path, "+90m");
    cr_expect_eq(clock_moved_min(), moves ? 90 : 0);
    write_clock_file(path, "0");
    cr_expect_eq(clock_moved_min(), 0);
    unlink(path);
}

Test(time, clock_is_sane)
{
    int64_t now = cf_now_ms();
    cr_assert_gt(now, 1700000000000LL); /* after 2023-11 */
    int64_t a = cf_mono_us();
    usleep(2000);
    int64_t b = cf_mono_us();
    cr_assert_geq(b - a, 2000);
}

/* ---- duration ---- */

TestSuite(duration);

Test(duration, valid)
{
    static const struct {
        const char *text;
        int64_t seconds;
    } cases[] = {
        {"1", 1},
        {"45", 45},
        {"90s", 90},
        {"15m", 900},
        {"12h", 43200},
        {"30d", 2592000},
        {"2w", 1209600},
        {"007s", 7},
        {"36600d", 36600LL * 86400},  /* the limit: 100 years of 366 days */
        {"3162240000", 3162240000LL}, /* the same, bare */
        {"5228w", 5228LL * 604800},
        {"878400h", 878400LL * 3600},
        {"52704000m", 52704000LL * 60},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        int64_t s = -1;
        struct cf_err e;
        cf_err_clear(&e);
        cr_assert_eq(cf_duration_parse(cases[i].text, &s, &e), CF_OK, "'%s': %s", cases[i].text,
                     e.msg);
        cr_assert_eq(s, cases[i].seconds, "'%s' -> %lld", cases[i].text, (long long)s);
    }
}

Test(duration, invalid)
{
    static const char *const bad[] = {
        "",
        "0",
        "0s",
        "000d",
        "-5",
        "+5",
        "-5s",
        "5x",
        "5S",
        "5M",
        "5D",
        "s",
        "m",
        "5ss",
        "5ms",
        "5 s",
        " 5",
        "5 ",
        "1.5h",
        "1e3",
        "5s5",
        "0x10",
        "36601d",
        "3162240001",
        "5229w",
        "878401h",
        "52704001m",
        "99999999999999999999999999",
        "9223372036854775807",
        "18446744073709551616s",
        "1y",
        "\n",
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(bad); i++) {
        int64_t s = -42;
        struct cf_err e;
        cf_err_clear(&e);
        cr_assert_eq(cf_duration_parse(bad[i], &s, &e), CF_EINVAL, "'%s' accepted (%lld)", bad[i],
                     (long long)s);
        cr_assert_neq(e.msg[0], '\0');
        cr_assert_eq(s, -42, "'%s': output written on failure", bad[i]);
    }
    int64_t s;
    cr_assert_eq(cf_duration_parse(NULL, &s, NULL), CF_EINVAL);
}

/* ---- log ---- */

/* Runs fn with stderr redirected to a temporary file and returns what was written (malloc'd). */
static char *capture_stderr(void (*fn)(void))
{
    char path[] = "/tmp/cf_util_test_log_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    int saved = dup(STDERR_FILENO);
    cr_assert_geq(saved, 0);
    cr_assert_geq(dup2(fd, STDERR_FILENO), 0);
    fn();
    cr_assert_geq(dup2(saved, STDERR_FILENO), 0);
    close(saved);
    off_t size = lseek(fd, 0, SEEK_END);
    char *text = calloc(1, (size_t)size + 1);
    cr_assert_not_null(text);
    cr_assert_eq(pread(fd, text, (size_t)size, 0), size);
    close(fd);
    return text;
}

static size_t count_char(const char *s, char c)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == c;
    return n;
}

TestSuite(log);

Test(log, set_level_names)
{
    cr_assert(cf_log_set_level("debug"));
    cr_assert(cf_log_set_level("info"));
    cr_assert(cf_log_set_level("warn"));
    cr_assert(cf_log_set_level("error"));
    cr_assert_not(cf_log_set_level("verbose"));
    cr_assert_not(cf_log_set_level("INFO"));
    cr_assert_not(cf_log_set_level(""));
}

static void log_levels(void)
{
    cf_log_set_level("warn");
    cf_log_debug("hidden debug %d", 1);
    cf_log_info("hidden info");
    cf_log_warn("shown warn '%s'", "x");
    cf_log_error("shown error %d", 2);
    cf_log_set_level("info");
}

Test(log, threshold_and_format)
{
    char *text = capture_stderr(log_levels);
    cr_assert_null(strstr(text, "hidden"), "%s", text);
    cr_assert_eq(count_char(text, '\n'), 2, "%s", text);
    const char *warn = strstr(text, " warn msg=\"shown warn 'x'\"\n");
    const char *error = strstr(text, " error msg=\"shown error 2\"\n");
    cr_assert_not_null(warn, "%s", text);
    cr_assert_not_null(error, "%s", text);
    cr_assert_lt(warn, error);
    /* Each line starts with an RFC 3339 time that parses back. */
    char stamp[CF_TIME_RFC3339_LEN] = "";
    size_t n = (size_t)(warn - text);
    cr_assert_lt(n, sizeof(stamp));
    memcpy(stamp, text, n);
    int64_t ms;
    cr_assert_eq(cf_time_parse(stamp, &ms, NULL), CF_OK, "'%s'", stamp);
    cr_assert_lt(llabs(ms - cf_now_ms()), 60000);
    free(text);
}

static void log_long(void)
{
    static char big[5000];
    memset(big, 'L', sizeof(big) - 1);
    cf_log_error("%s", big);
}

Test(log, long_message_is_one_truncated_line)
{
    char *text = capture_stderr(log_long);
    size_t len = strlen(text);
    cr_assert_eq(count_char(text, '\n'), 1);
    cr_assert_eq(text[len - 1], '\n');
    cr_assert_leq(len, 2048 + 64);
    cr_assert_gt(len, 2000);
    cr_assert_not_null(strstr(text, "LLL...\"\n"), "a cut message must say so: %s",
                       text + len - 20);
    free(text);
}

static void log_control(void)
{
    cf_log_error("user agent '%s'", "evil\n2026-01-01T00:00:00.000Z error forged\r");
}

Test(log, message_cannot_forge_lines)
{
    char *text = capture_stderr(log_control);
    cr_assert_eq(count_char(text, '\n'), 1, "a newline in a message split the line: %s", text);
    cr_assert_null(strchr(text, '\r'));
    cr_assert_not_null(strstr(text, "forged"));
    free(text);
}

static void log_event_fields(void)
{
    cf_log_event(CF_LOG_WARN, "login", CF_LOG_WORD("method", "universal-auth"),
                 CF_LOG_TEXT("who",
                             "x\" who=admin\n2026-01-01T00:00:00.000Z info forged\\ \r\t\x01\x7f"
                             "caf\xc3\xa9"),
                 CF_LOG_WORD("ip", "127.0.0.1"), CF_LOG_WORD("rc", "not found"),
                 CF_LOG_WORD("empty", ""), CF_LOG_TEXT("none", NULL), CF_LOG_INT("status", -401),
                 CF_LOG_MS("dur_ms", 1.239), CF_LOG_WORD("req_id", "0123abcd"));
}

Test(log, event_fields_are_quoted_and_escaped)
{
    char *text = capture_stderr(log_event_fields);
    cr_assert_eq(count_char(text, '\n'), 1, "%s", text);
    const char *expected =
        " warn login method=universal-auth who=\"x\\\" who=admin\\n2026-01-01T00:00:00.000Z info "
        "forged\\\\ \\r\\t\\x01\\x7fcaf\\xc3\\xa9\" ip=127.0.0.1 rc=\"not found\" empty=\"\" "
        "none=\"\" "
        "status=-401 dur_ms=1.24 req_id=0123abcd\n";
    cr_assert_not_null(strstr(text, expected), "got: %s", text);
    free(text);
}

static void log_event_plain_long(void)
{
    static char big[9000];
    memset(big, 'p', sizeof(big) - 1); /* one run of plain bytes, copied whole while it fits */
    cf_log_event(CF_LOG_INFO, "plain", CF_LOG_TEXT("a", big), CF_LOG_MS("ms", 0.0),
                 CF_LOG_MS("ms2", 12345.678), CF_LOG_INT("n", 0));
}

/* A run of plain bytes too long for the line is cut as byte-by-byte escaping would cut it: as
 * much as fits, the cut mark and the closing quote; the fields after it are left out whole. */
Test(log, long_plain_value_is_cut_within_its_quotes)
{
    char *text = capture_stderr(log_event_plain_long);
    size_t len = strlen(text);
    cr_assert_eq(count_char(text, '\n'), 1, "%s", text);
    cr_assert_eq(len, 4096, "the line fills its buffer: %zu", len);
    cr_assert_eq(strcmp(text + len - 6, "p...\"\n"), 0, "%s", text + len - 40);
    cr_assert_null(strstr(text, " ms="));
    free(text);
}

static void log_numbers(void)
{
    cf_log_event(CF_LOG_INFO, "n", CF_LOG_MS("a", 0.0), CF_LOG_MS("b", 0.004),
                 CF_LOG_MS("c", 0.006), CF_LOG_MS("d", 99.999), CF_LOG_MS("e", 12345.678),
                 CF_LOG_INT("f", 0), CF_LOG_INT("g", 9223372036854775807LL),
                 CF_LOG_INT("h", -9223372036854775807LL - 1));
}

Test(log, numbers_are_written_as_printf_would)
{
    char *text = capture_stderr(log_numbers);
    const char *expected = " info n a=0.00 b=0.00 c=0.01 d=100.00 e=12345.68 f=0 "
                           "g=9223372036854775807 h=-9223372036854775808\n";
    cr_assert_not_null(strstr(text, expected), "got: %s", text);
    free(text);
}

static void log_event_long(void)
{
    static char big[9000];
    memset(big, '"', sizeof(big) - 1); /* each one escaped to two bytes */
    cf_log_event(CF_LOG_ERROR, "big", CF_LOG_TEXT("a", big), CF_LOG_TEXT("b", "after"),
                 CF_LOG_WORD("c", "word"));
}

Test(log, long_value_is_cut_within_its_quotes)
{
    char *text = capture_stderr(log_event_long);
    size_t len = strlen(text);
    cr_assert_eq(count_char(text, '\n'), 1);
    cr_assert_eq(text[len - 1], '\n');
    cr_assert_leq(len, 4096);
    /* The value ends with the cut mark and its closing quote after a whole escape; what follows
     * never lands inside it. */
    cr_assert_not_null(strstr(text, "\\\"...\""), "%s", text + len - 40);
    cr_assert_null(strstr(text, "\\...\""));
    free(text);
}

static void log_event_fields_json(void)
{
    cf_log_set_format("json");
    log_event_fields();
    cf_log_info("free text \"%s\"", "quoted\n");
    cf_log_set_format("text");
}

Test(log, json_lines_are_objects_with_every_field)
{
    cr_assert_not(cf_log_set_format("xml"));
    char *text = capture_stderr(log_event_fields_json);
    cr_assert_eq(count_char(text, '\n'), 2, "%s", text);
    char *second = strchr(text, '\n') + 1;
    json_error_t jerr;
    json_t *event = json_loadb(text, (size_t)(second - text), 0, &jerr);
    cr_assert_not_null(event, "%s: %s", jerr.text, text);
    cr_assert_str_eq(json_string_value(json_object_get(event, "level")), "warn");
    cr_assert_str_eq(json_string_value(json_object_get(event, "event")), "login");
    cr_assert_str_eq(json_string_value(json_object_get(event, "method")), "universal-auth");
    /* the injected text is one string; bytes outside printable ASCII are \u00NN, one per byte */
    cr_assert_str_eq(json_string_value(json_object_get(event, "who")),
                     "x\" who=admin\n2026-01-01T00:00:00.000Z info forged\\ \r\t\x01\x7f"
                     "caf\xc3\x83\xc2\xa9");
    cr_assert_str_eq(json_string_value(json_object_get(event, "rc")), "not found");
    cr_assert_str_eq(json_string_value(json_object_get(event, "none")), "");
    cr_assert_eq(json_integer_value(json_object_get(event, "status")), -401);
    cr_assert_float_eq(json_real_value(json_object_get(event, "dur_ms")), 1.24, 1e-9);
    cr_assert_eq(json_object_size(event), 12, "%s", text);
    json_decref(event);
    json_t *msg = json_loads(second, 0, &jerr);
    cr_assert_not_null(msg, "%s: %s", jerr.text, second);
    cr_assert_str_eq(json_string_value(json_object_get(msg, "msg")), "free text \"quoted\n\"");
    json_decref(msg);
    free(text);
}

static void log_event_long_json(void)
{
    cf_log_set_format("json");
    log_event_long();
    cf_log_set_format("text");
}

Test(log, json_long_value_is_cut_and_the_line_still_parses)
{
    char *text = capture_stderr(log_event_long_json);
    cr_assert_leq(strlen(text), 4096);
    json_error_t jerr;
    json_t *event = json_loads(text, 0, &jerr);
    cr_assert_not_null(event, "%s", jerr.text);
    const char *a = json_string_value(json_object_get(event, "a"));
    cr_assert_not_null(a);
    cr_assert_eq(strcmp(a + strlen(a) - 3, "..."), 0);
    json_decref(event);
    free(text);
}

/* The gatherer: lines from many threads, more than its buffer holds, each whole, none lost, each
 * thread's in its order; lines logged after the stop come after every gathered one. */
#define GATHER_THREADS 8
#define GATHER_LINES 3000

static void *log_many(void *arg)
{
    int thread = (int)(intptr_t)arg;
    for (int i = 0; i < GATHER_LINES; i++)
        cf_log_event(CF_LOG_INFO, "gather", CF_LOG_INT("thread", thread), CF_LOG_INT("seq", i),
                     CF_LOG_TEXT("pad", "0123456789abcdef0123456789abcdef0123456789abcdef"));
    return NULL;
}

static void log_gathered(void)
{
    struct cf_err err;
    cf_err_clear(&err);
    cr_assert_eq(cf_log_gather_start(&err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_log_gather_start(&err), CF_OK, "a second start is a no-op");
    pthread_t threads[GATHER_THREADS];
    for (int t = 0; t < GATHER_THREADS; t++)
        cr_assert_eq(pthread_create(&threads[t], NULL, log_many, (void *)(intptr_t)t), 0);
    for (int t = 0; t < GATHER_THREADS; t++)
        pthread_join(threads[t], NULL);
    cf_log_gather_stop();
    cf_log_gather_stop(); /* a no-op */
    cf_log_info("after the stop");
}

Test(log, gathered_lines_are_whole_complete_and_in_order)
{
    char *text = capture_stderr(log_gathered);
    int next[GATHER_THREADS] = {0};
    size_t lines = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lines++;
        if (strstr(line, "after the stop")) {
            cr_expect_eq(lines, (size_t)GATHER_THREADS * GATHER_LINES + 1, "came early: %s", line);
            continue;
        }
        int thread = -1, seq = -1, used = 0;
        const char *at = strstr(line, " info gather thread=");
        cr_assert_not_null(at, "not a whole line: %s", line);
        cr_assert_eq(
            sscanf(at, " info gather thread=%d seq=%d pad=\"%*[0-9a-f]\"%n", &thread, &seq, &used),
            2, "%s", line);
        cr_assert_eq(at[used], '\0', "two lines in one: %s", line);
        cr_assert(thread >= 0 && thread < GATHER_THREADS, "%s", line);
        cr_assert_eq(seq, next[thread], "thread %d: %d after %d", thread, seq, next[thread] - 1);
        next[thread]++;
    }
    cr_expect_eq(lines, (size_t)GATHER_THREADS * GATHER_LINES + 1);
    free(text);
}

/* While gathering, a warning is out before its call returns, after the lines logged before it. */
static int gather_probe_fd = -1;

static void log_warning_gathered(void)
{
    struct cf_err err;
    cf_err_clear(&err);
    cr_assert_eq(cf_log_gather_start(&err), CF_OK, "%s", err.msg);
    cf_log_info("first");
    cf_log_warn("second");
    char seen[256] = "";
    ssize_t n = pread(gather_probe_fd, seen, sizeof(seen) - 1, 0);
    cr_assert_gt(n, 0, "nothing written when the warning returned");
    const char *first = strstr(seen, "msg=\"first\""), *second = strstr(seen, "msg=\"second\"");
    cr_expect(first && second && first < second, "%s", seen);
    cf_log_gather_stop();
}

Test(log, a_gathered_warning_is_written_before_it_returns)
{
    char path[] = "/tmp/cf_util_test_warn_XXXXXX";
    gather_probe_fd = mkstemp(path);
    cr_assert_geq(gather_probe_fd, 0);
    int saved = dup(STDERR_FILENO);
    cr_assert_geq(dup2(gather_probe_fd, STDERR_FILENO), 0);
    log_warning_gathered();
    cr_assert_geq(dup2(saved, STDERR_FILENO), 0);
    close(saved);
    close(gather_probe_fd);
    unlink(path);
}

/* ---- file ---- */

Test(file, replace_writes_whole_files_with_mode_0600)
{
    char dir[] = "/tmp/coffer-util-test-XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/head.json", dir);
    struct cf_err err;
    char *text = NULL;
    size_t len = 0;
    cr_assert_eq(cf_file_read(path, 100, &text, &len, &err), CF_ENOTFOUND);
    umask(022); /* a looser umask must not loosen the file */
    cr_assert_eq(cf_file_replace(path, "first\n", 6, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_file_replace(path, "second", 6, &err), CF_OK, "%s", err.msg);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(cf_file_read(path, 100, &text, &len, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(len, 6);
    cr_assert_str_eq(text, "second");
    free(text);
    cr_assert_eq(cf_file_read(path, 5, &text, &len, &err), CF_ETOOLARGE);
    cr_assert_eq(cf_file_read(path, 6, &text, &len, &err), CF_OK);
    free(text);
    unlink(path);
    cr_assert_eq(rmdir(dir), 0, "a temporary file was left behind");
    snprintf(path, sizeof(path), "%s/head.json", dir); /* the directory is gone now */
    cr_assert_eq(cf_file_replace(path, "x", 1, &err), CF_EIO);
    cr_assert(strstr(err.msg, "head.json"), "%s", err.msg);
}

/* Collects the items of text as "item|item|..." for comparison. */
static void list_items(const char *text, char *out, size_t size)
{
    struct cf_list_iter it;
    struct cf_str item;
    size_t used = 0;
    out[0] = '\0';
    cf_list_init(&it, text);
    while (cf_list_next(&it, &item)) {
        int w = snprintf(out + used, size - used, "%s%.*s", used ? "|" : "", (int)item.n, item.p);
        cr_assert(w >= 0 && (size_t)w < size - used);
        used += (size_t)w;
        if (!item.n && used + 2 < size) {
            out[used++] = '_'; /* marks an empty item */
            out[used] = '\0';
        }
    }
}

Test(str, list_iterator)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {NULL, ""},
        {"", ""},
        {"a", "a"},
        {"a,", "a"},
        {" a , b\t,c ", "a|b|c"},
        {"a,,b", "a|_|b"},
        {",a", "_|a"},
        {"a, ,b", "a|_|b"},
        {" ", "_"},
        {",", "_"},
        {"10.0.0.0/8,::1", "10.0.0.0/8|::1"},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        char got[128];
        list_items(cases[i].text, got, sizeof(got));
        cr_expect_str_eq(got, cases[i].want, "'%s'", cases[i].text ? cases[i].text : "(null)");
    }
    /* The iterator neither copies nor modifies: items point into the text. */
    const char *text = "x, y";
    struct cf_list_iter it;
    struct cf_str item;
    cf_list_init(&it, text);
    cr_assert(cf_list_next(&it, &item) && item.p == text && item.n == 1);
    cr_assert(cf_list_next(&it, &item) && item.p == text + 3 && item.n == 1);
    cr_assert(!cf_list_next(&it, &item));
    cr_assert(!cf_list_next(&it, &item));
}

Test(str, list_iterator_raw)
{
    struct cf_list_iter it;
    struct cf_str item;
    cf_list_init(&it, " a ,,b,");
    cr_assert(cf_list_next_raw(&it, &item) && item.n == 3 && memcmp(item.p, " a ", 3) == 0);
    cr_assert(cf_list_next_raw(&it, &item) && item.n == 0);
    cr_assert(cf_list_next_raw(&it, &item) && item.n == 1 && item.p[0] == 'b');
    cr_assert(!cf_list_next_raw(&it, &item));
    cf_list_init(&it, "");
    cr_assert(!cf_list_next_raw(&it, &item));
}

Test(str, array_size)
{
    int four[4];
    static const char *const two[] = {"a", "b"};
    cr_expect_eq(CF_ARRAY_SIZE(four), 4);
    cr_expect_eq(CF_ARRAY_SIZE(two), 2);
    (void)four;
}

Test(util, hex_digit)
{
    cr_assert_eq(cf_hex_digit('0'), 0);
    cr_assert_eq(cf_hex_digit('9'), 9);
    cr_assert_eq(cf_hex_digit('a'), 10);
    cr_assert_eq(cf_hex_digit('F'), 15);
    cr_assert_eq(cf_hex_digit('g'), -1);
    cr_assert_eq(cf_hex_digit('/'), -1);
    cr_assert_eq(cf_hex_digit('\0'), -1);
}

/* ---- the versioned cache ---- */

TestSuite(cache, .init = suite_init);

static bool cache_holds(struct cf_cache *cache, const char *key, int64_t version, const char *want)
{
    void *value;
    size_t len;
    if (!cf_cache_get(cache, key, version, &value, &len))
        return false;
    bool same = len == strlen(want) && memcmp(value, want, len) == 0;
    cf_cache_value_free(cache, value, len);
    return same;
}

Test(cache, an_entry_serves_only_its_version)
{
    struct cf_cache *cache = cf_cache_new(&(struct cf_cache_config){.max_entries = 8});
    cr_assert_not_null(cache);
    cf_cache_put(cache, "k", 1, "one", 3);
    cr_assert(cache_holds(cache, "k", 1, "one"));
    cr_assert(!cache_holds(cache, "k", 2, "one"), "another version is a miss");
    cr_assert(!cache_holds(cache, "k", 1, "one"), "and the stale entry is gone");
    cf_cache_put(cache, "k", 2, "two", 3);
    cf_cache_put(cache, "k", 2, "deux", 4); /* replaces */
    cr_assert(cache_holds(cache, "k", 2, "deux"));
    cr_assert(!cache_holds(cache, "other", 2, "deux"));
    struct cf_cache_stats stats;
    cf_cache_stats(cache, &stats);
    cr_assert_eq(stats.entries, 1);
    cr_assert_eq(stats.hits, 2);
    cr_assert_eq(stats.misses, 3);
    cf_cache_free(cache);
    cf_cache_free(NULL);
}

Test(cache, bounds_evict_the_least_recently_used)
{
    struct cf_cache *cache =
        cf_cache_new(&(struct cf_cache_config){.max_entries = 3, .max_bytes = 64, .wipe = true});
    cr_assert_not_null(cache);
    cf_cache_put(cache, "a", 0, "1", 1);
    cf_cache_put(cache, "b", 0, "2", 1);
    cf_cache_put(cache, "c", 0, "3", 1);
    cr_assert(cache_holds(cache, "a", 0, "1")); /* a is now the most recently used */
    cf_cache_put(cache, "d", 0, "4", 1);
    cr_assert(!cache_holds(cache, "b", 0, "2"), "b was the least recently used");
    cr_assert(cache_holds(cache, "a", 0, "1"));
    cr_assert(cache_holds(cache, "c", 0, "3"));
    cr_assert(cache_holds(cache, "d", 0, "4"));

    char big[70];
    memset(big, 'x', sizeof(big));
    cf_cache_put(cache, "e", 0, big, 62); /* 63 bytes with its key: evicts the rest */
    struct cf_cache_stats stats;
    cf_cache_stats(cache, &stats);
    cr_assert_eq(stats.entries, 1);
    cr_assert_eq(stats.bytes, 63);
    cf_cache_put(cache, "f", 0, big,
                 sizeof(big)); /* over the bound alone: not stored, nothing evicted */
    cr_assert(!cache_holds(cache, "f", 0, ""));
    cf_cache_stats(cache, &stats);
    cr_assert_eq(stats.entries, 1);
    cf_cache_free(cache);
}

/* A lease lends the stored bytes themselves and keeps them whole after the entry is replaced,
 * evicted, its version moved or the cache freed; each lease is freed with the last reference
 * (AddressSanitizer reports a block freed early or never). */
Test(cache, a_lease_outlives_its_entry)
{
    struct cf_cache *cache =
        cf_cache_new(&(struct cf_cache_config){.max_entries = 1, .max_bytes = 64, .wipe = true});
    cr_assert_not_null(cache);
    const void *value, *again, *other;
    size_t len, again_len, other_len;
    cr_assert_null(cf_cache_lease(cache, "k", 1, &value, &len), "nothing stored yet");
    cr_assert_null(value);
    cf_cache_put(cache, "k", 1, "first", 5);
    struct cf_cache_lease *a = cf_cache_lease(cache, "k", 1, &value, &len);
    struct cf_cache_lease *b = cf_cache_lease(cache, "k", 1, &again, &again_len);
    cr_assert_not_null(a);
    cr_assert_eq(a, b, "two leases of one entry share its bytes");
    cr_assert_eq(value, again);
    cr_assert_eq(len, 5);
    cr_assert_arr_eq(value, "first", 5);
    cr_assert_eq((uintptr_t)value % 16, 0, "the bytes are aligned");

    cf_cache_put(cache, "k", 1, "second", 6); /* replaces the entry */
    cr_assert_arr_eq(value, "first", 5, "a replaced entry's lease keeps its bytes");
    struct cf_cache_lease *c = cf_cache_lease(cache, "k", 1, &other, &other_len);
    cr_assert_not_null(c);
    cr_assert_arr_eq(other, "second", 6);
    cf_cache_put(cache, "j", 1, "evicts", 6); /* one entry at most: k goes */
    cr_assert_null(cf_cache_lease(cache, "k", 1, &value, &len));
    cr_assert_arr_eq(other, "second", 6, "an evicted entry's lease keeps its bytes");
    cr_assert_null(cf_cache_lease(cache, "j", 2, &value, &len), "another version: a miss");
    cf_cache_lease_release(a);
    cf_cache_free(cache);
    cr_assert_arr_eq(again, "first", 5, "the last lease holds the bytes after the cache is gone");
    cf_cache_lease_release(b);
    cf_cache_lease_release(c);
    cf_cache_lease_release(NULL);
}

Test(cache, zero_entries_keeps_nothing)
{
    struct cf_cache *cache = cf_cache_new(&(struct cf_cache_config){0});
    cr_assert_not_null(cache);
    cf_cache_put(cache, "k", 0, "v", 1);
    cr_assert(!cache_holds(cache, "k", 0, "v"));
    cf_cache_free(cache);
}

struct cache_worker {
    struct cf_cache *cache;
    int id;
    bool ok;
};

static void *cache_worker_main(void *arg)
{
    struct cache_worker *w = arg;
    char key[16], value[16];
    w->ok = true;
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof(key), "k%d", i % 50);
        snprintf(value, sizeof(value), "v%d", i % 50);
        cf_cache_put(w->cache, key, i % 3, value, strlen(value));
        void *got;
        size_t len;
        if (cf_cache_get(w->cache, key, i % 3, &got, &len)) {
            /* whoever stored it, a key always holds its own value */
            w->ok = w->ok && len == strlen(value) && memcmp(got, value, len) == 0;
            cf_cache_value_free(w->cache, got, len);
        }
    }
    return NULL;
}

Test(cache, threads_share_one_cache)
{
    struct cf_cache *cache = cf_cache_new(&(struct cf_cache_config){.max_entries = 32});
    cr_assert_not_null(cache);
    pthread_t threads[4];
    struct cache_worker workers[4];
    for (int i = 0; i < 4; i++) {
        workers[i] = (struct cache_worker){.cache = cache, .id = i};
        cr_assert_eq(pthread_create(&threads[i], NULL, cache_worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        cr_assert(workers[i].ok, "worker %d read a value that was not its key's", i);
    }
    struct cf_cache_stats stats;
    cf_cache_stats(cache, &stats);
    cr_assert_leq(stats.entries, 32);
    cf_cache_free(cache);
}

/* ---- gzip ---- */

Test(util, gzip_round_trip_and_bounds)
{
    struct cf_buf packed, text;
    struct cf_err err;
    char input[200000];
    for (size_t i = 0; i < sizeof(input); i++)
        input[i] = (char)('a' + (i * 7 % 26) * (i % 3 == 0));
    cf_buf_init(&packed, 0);
    cf_buf_init(&text, 0);
    cr_assert_eq(cf_gzip_compress(input, sizeof(input), &packed, &err), CF_OK, "%s", err.msg);
    cr_assert_lt(packed.len, sizeof(input) / 2);
    cr_assert_eq((unsigned char)packed.data[0], 0x1f); /* the gzip magic */
    cr_assert_eq((unsigned char)packed.data[1], 0x8b);
    cr_assert_eq(cf_gzip_decompress(packed.data, packed.len, &text, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(text.len, sizeof(input));
    cr_assert_eq(memcmp(text.data, input, sizeof(input)), 0);

    /* more than the buffer may hold */
    struct cf_buf small;
    cf_buf_init(&small, 1000);
    cr_assert_eq(cf_gzip_decompress(packed.data, packed.len, &small, &err), CF_ETOOLARGE);
    cf_buf_release(&small);
    /* cut short, damaged, not gzip */
    cf_buf_reset(&text);
    cr_assert_eq(cf_gzip_decompress(packed.data, packed.len / 2, &text, &err), CF_EVALIDATION);
    cr_assert(strstr(err.msg, "cut short") != NULL, "%s", err.msg);
    packed.data[packed.len - 5] ^= 0x55; /* the CRC */
    cf_buf_reset(&text);
    cr_assert_eq(cf_gzip_decompress(packed.data, packed.len, &text, &err), CF_EVALIDATION);
    cf_buf_reset(&text);
    cr_assert_eq(cf_gzip_decompress("plain text", 10, &text, &err), CF_EVALIDATION);
    cf_buf_reset(&text);
    cr_assert_eq(cf_gzip_decompress("", 0, &text, &err), CF_EVALIDATION);
    cf_buf_release(&packed);
    cf_buf_release(&text);
}

Test(util, gzip_accepted_follows_the_weights)
{
    /* listed, with or without a weight above zero, in any case */
    cr_assert(cf_gzip_accepted("gzip"));
    cr_assert(cf_gzip_accepted("gzip, deflate, br"));
    cr_assert(cf_gzip_accepted("br;q=1.0, GZIP;q=0.5"));
    cr_assert(cf_gzip_accepted("deflate, x-gzip"));
    cr_assert(cf_gzip_accepted("gzip ; q=0.001"));
    cr_assert(cf_gzip_accepted("*"));
    cr_assert(cf_gzip_accepted("br, *;q=0.1"));
    /* refused: a zero weight, absent, a wildcard at zero, a gzip-like name, no header */
    cr_assert_not(cf_gzip_accepted("gzip;q=0"));
    cr_assert_not(cf_gzip_accepted("gzip;q=0.000, deflate"));
    cr_assert_not(cf_gzip_accepted("gzip;q=0, *"));
    cr_assert_not(cf_gzip_accepted("deflate, br"));
    cr_assert_not(cf_gzip_accepted("*;q=0"));
    cr_assert_not(cf_gzip_accepted("gzipx, xgzip"));
    cr_assert_not(cf_gzip_accepted("identity"));
    cr_assert_not(cf_gzip_accepted(""));
    cr_assert_not(cf_gzip_accepted(NULL));
    /* a weight that does not parse refuses the coding rather than guessing */
    cr_assert_not(cf_gzip_accepted("gzip;q=2"));
    cr_assert_not(cf_gzip_accepted("gzip;q=0.5x"));
    cr_assert_not(cf_gzip_accepted("gzip;q=1.0001"));
    cr_assert_not(cf_gzip_accepted("gzip;q="));
}
