/* Unit tests for util/jsonw: whatever it writes must parse back (with jansson) to exactly what was
 * written, for every byte sequence a secret value can hold. */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>

#include "util/jsonw.h"
#include "util/str.h"

static json_t *parse(const struct cf_buf *buf)
{
    json_error_t err;
    json_t *j = json_loadb(buf->data, buf->len, JSON_ALLOW_NUL, &err);
    cr_assert_not_null(j, "jansson refused our output: %s: %.200s", err.text, buf->data);
    return j;
}

Test(jsonw, document_shape)
{
    struct cf_buf buf;
    struct cf_jsonw w;
    cf_buf_init(&buf, 0);
    cf_jsonw_init(&w, &buf);
    cf_jsonw_object_begin(&w);
    cf_jsonw_kstr(&w, "a", "x");
    cf_jsonw_kint(&w, "n", -42);
    cf_jsonw_kbool(&w, "t", true);
    cf_jsonw_knull(&w, "z");
    cf_jsonw_ktime(&w, "when", 1798761599000LL);
    cf_jsonw_ktime(&w, "never", 0);
    cf_jsonw_key(&w, "list");
    cf_jsonw_array_begin(&w);
    cf_jsonw_int(&w, 1);
    cf_jsonw_array_begin(&w);
    cf_jsonw_array_end(&w);
    cf_jsonw_object_begin(&w);
    cf_jsonw_object_end(&w);
    cf_jsonw_array_end(&w);
    cf_jsonw_object_end(&w);
    cr_assert_eq(cf_jsonw_finish(&w), CF_OK);
    cr_expect_str_eq(buf.data, "{\"a\":\"x\",\"n\":-42,\"t\":true,\"z\":null,"
                               "\"when\":\"2026-12-31T23:59:59.000Z\",\"never\":null,"
                               "\"list\":[1,[],{}]}");
    json_decref(parse(&buf));
    cf_buf_release(&buf);
}

Test(jsonw, strings_round_trip)
{
    static const char *const samples[] = {
        "",
        "plain",
        "quote\" backslash\\ slash/",
        "line\nfeed\r\ttab\b\f",
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91",
        "\x01\x02\x1f\x7f",
        "${REF} $HOME %s %n",
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(samples); i++) {
        struct cf_buf buf;
        struct cf_jsonw w;
        cf_buf_init(&buf, 0);
        cf_jsonw_init(&w, &buf);
        cf_jsonw_array_begin(&w);
        cf_jsonw_cstr(&w, samples[i]);
        cf_jsonw_array_end(&w);
        cr_assert_eq(cf_jsonw_finish(&w), CF_OK, "sample %zu", i);
        json_t *j = parse(&buf);
        cr_expect_str_eq(json_string_value(json_array_get(j, 0)), samples[i]);
        json_decref(j);
        cf_buf_release(&buf);
    }
}

Test(jsonw, random_bytes_round_trip)
{
    /* Random ASCII including every control character, and embedded NULs. */
    for (int round = 0; round < 2000; round++) {
        char text[64];
        size_t n = randombytes_uniform(sizeof(text));
        for (size_t i = 0; i < n; i++)
            text[i] = (char)randombytes_uniform(128);
        struct cf_buf buf;
        struct cf_jsonw w;
        cf_buf_init(&buf, 0);
        cf_jsonw_init(&w, &buf);
        cf_jsonw_array_begin(&w);
        cf_jsonw_string(&w, text, n);
        cf_jsonw_array_end(&w);
        cr_assert_eq(cf_jsonw_finish(&w), CF_OK);
        json_t *j = parse(&buf);
        json_t *s = json_array_get(j, 0);
        cr_assert_eq(json_string_length(s), n);
        cr_assert(memcmp(json_string_value(s), text, n) == 0, "round %d differs", round);
        json_decref(j);
        cf_buf_release(&buf);
    }
}

Test(jsonw, invalid_utf8_refused)
{
    static const char *const bad[] = {"\xff", "a\xc3", "\xed\xa0\x80", "\xc0\xaf"};
    for (size_t i = 0; i < CF_ARRAY_SIZE(bad); i++) {
        struct cf_buf buf;
        struct cf_jsonw w;
        cf_buf_init(&buf, 0);
        cf_jsonw_init(&w, &buf);
        cf_jsonw_array_begin(&w);
        cf_jsonw_cstr(&w, bad[i]);
        cf_jsonw_array_end(&w);
        cr_expect_eq(cf_jsonw_finish(&w), CF_EINVAL, "sample %zu accepted", i);
        cf_buf_release(&buf);
    }
}

Test(jsonw, misuse_and_limits)
{
    struct cf_buf buf;
    struct cf_jsonw w;

    cf_buf_init(&buf, 0);
    cf_jsonw_init(&w, &buf);
    cf_jsonw_object_begin(&w);
    cf_jsonw_key(&w, "dangling");
    cf_jsonw_object_end(&w);
    cr_expect_eq(cf_jsonw_finish(&w), CF_EINVAL, "a key without a value");
    cf_buf_release(&buf);

    cf_buf_init(&buf, 0);
    cf_jsonw_init(&w, &buf);
    cf_jsonw_array_begin(&w);
    cr_expect_eq(cf_jsonw_finish(&w), CF_EINVAL, "an unclosed array");
    cf_buf_release(&buf);

    cf_buf_init(&buf, 16);
    cf_jsonw_init(&w, &buf);
    cf_jsonw_array_begin(&w);
    cf_jsonw_cstr(&w, "far more than sixteen bytes of text");
    cf_jsonw_array_end(&w);
    cr_expect_eq(cf_jsonw_finish(&w), CF_ETOOLARGE);
    cf_buf_release(&buf);
}

/* Times repeat across the secrets of a list: the writer copies the last one's text, and must never
 * give one time the text of another (two alternating, a repeat after null, one in an array). */
Test(jsonw, repeated_and_alternating_times)
{
    static const int64_t times[] = {1798761599000LL, 1798761599000LL, 0,   1798761599000LL, 1000,
                                    1798761599001LL, 1798761599000LL, 1000};
    static const char *const texts[] = {"\"2026-12-31T23:59:59.000Z\"",
                                        "\"2026-12-31T23:59:59.000Z\"",
                                        "null",
                                        "\"2026-12-31T23:59:59.000Z\"",
                                        "\"1970-01-01T00:00:01.000Z\"",
                                        "\"2026-12-31T23:59:59.001Z\"",
                                        "\"2026-12-31T23:59:59.000Z\"",
                                        "\"1970-01-01T00:00:01.000Z\""};
    struct cf_buf buf, want;
    struct cf_jsonw w;
    cf_buf_init(&buf, 0);
    cf_buf_init(&want, 0);
    cf_jsonw_init(&w, &buf);
    cf_jsonw_object_begin(&w);
    cr_assert_eq(cf_buf_puts(&want, "{"), CF_OK);
    for (size_t i = 0; i < CF_ARRAY_SIZE(times); i++) {
        char key[8];
        snprintf(key, sizeof(key), "t%zu", i);
        cf_jsonw_ktime(&w, key, times[i]);
        cr_assert_eq(cf_buf_printf(&want, "%s\"%s\":%s", i ? "," : "", key, texts[i]), CF_OK);
    }
    cf_jsonw_key(&w, "a");
    cf_jsonw_array_begin(&w);
    cf_jsonw_time(&w, 1000);
    cf_jsonw_time(&w, 1000);
    cf_jsonw_array_end(&w);
    cf_jsonw_object_end(&w);
    cr_assert_eq(cf_buf_puts(&want, ",\"a\":[\"1970-01-01T00:00:01.000Z\","
                                    "\"1970-01-01T00:00:01.000Z\"]}"),
                 CF_OK);
    cr_assert_eq(cf_jsonw_finish(&w), CF_OK);
    cr_expect_str_eq(buf.data, want.data);
    json_decref(parse(&buf));
    cf_buf_release(&buf);
    cf_buf_release(&want);
}

/* Every single byte: below 0x20, quote and backslash escaped, other ASCII as is, and a byte above
 * 0x7f alone is not UTF-8 (refused), while the same byte in a valid sequence passes. */
Test(jsonw, every_byte_value)
{
    for (int c = 0; c < 256; c++) {
        char text[3] = {'a', (char)c, 'b'};
        struct cf_buf buf;
        struct cf_jsonw w;
        cf_buf_init(&buf, 0);
        cf_jsonw_init(&w, &buf);
        cf_jsonw_array_begin(&w);
        cf_jsonw_string(&w, text, sizeof(text));
        cf_jsonw_array_end(&w);
        if (c >= 0x80) {
            cr_expect_eq(cf_jsonw_finish(&w), CF_EINVAL, "byte 0x%02x accepted alone", c);
        } else {
            cr_assert_eq(cf_jsonw_finish(&w), CF_OK, "byte 0x%02x", c);
            bool escape = c < 0x20 || c == '"' || c == '\\';
            cr_expect_eq(buf.len,
                         2 + 2 + 3 + (escape ? (strchr("\"\\\n\r\t\b\f", c) && c ? 1 : 5) : 0),
                         "byte 0x%02x written as %s", c, buf.data);
            json_t *j = parse(&buf);
            json_t *s = json_array_get(j, 0);
            cr_assert_eq(json_string_length(s), 3);
            cr_assert(memcmp(json_string_value(s), text, 3) == 0, "byte 0x%02x differs", c);
            json_decref(j);
        }
        cf_buf_release(&buf);
    }
    /* U+00E9 and U+10FFFF: bytes above 0x7f in valid sequences */
    static const char *const valid[] = {"\xc3\xa9", "\xf4\x8f\xbf\xbf"};
    for (size_t i = 0; i < CF_ARRAY_SIZE(valid); i++) {
        struct cf_buf buf;
        struct cf_jsonw w;
        cf_buf_init(&buf, 0);
        cf_jsonw_init(&w, &buf);
        cf_jsonw_array_begin(&w);
        cf_jsonw_cstr(&w, valid[i]);
        cf_jsonw_array_end(&w);
        cr_assert_eq(cf_jsonw_finish(&w), CF_OK);
        json_decref(parse(&buf));
        cf_buf_release(&buf);
    }
}
