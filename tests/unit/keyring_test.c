/* Unit tests for src/crypto: the keyring (root key loading and the root.key file, the check blob,
 * project data keys and their rewrapping, sealing of values bound to their associated data, the key
 * cache under concurrent use) and bearer tokens (format, keyed hash, constant-time equality). Every
 * test runs in its own process (Criterion) with its own temporary data directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "crypto/keyring.h"
#include "crypto/token.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/banned.h"
#include "util/str.h"

#define PROJECT_A "6f1c2a9e-3b7d-4e21-9a55-0c8f7e3d2b10"
#define PROJECT_B "0d4e8b7a-91c2-4f3e-b6a1-5e2d9c8f7a60"
/* sealed = format byte + 24-byte nonce + ciphertext + 16-byte tag */
#define SEAL_OVERHEAD (1 + 24 + 16)

static char data_dir[64];

static void setup(void)
{
    cr_assert(sodium_init() >= 0);
    snprintf(data_dir, sizeof(data_dir), "/tmp/cf_keyring_test_XXXXXX");
    cr_assert_not_null(mkdtemp(data_dir));
}

static void teardown(void)
{
    DIR *dir = opendir(data_dir);
    if (!dir)
        return;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", data_dir, entry->d_name);
        unlink(path);
    }
    closedir(dir);
    rmdir(data_dir);
}

static void file_path(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", data_dir, name);
}

static int count_entries(void)
{
    DIR *dir = opendir(data_dir);
    cr_assert_not_null(dir);
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        n += strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0;
    closedir(dir);
    return n;
}

static mode_t file_mode(const char *name)
{
    char path[512];
    struct stat st;
    file_path(path, sizeof(path), name);
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    cr_assert(S_ISREG(st.st_mode));
    return st.st_mode & 07777;
}

static void write_text_file(const char *name, const char *text, mode_t mode)
{
    char path[512];
    file_path(path, sizeof(path), name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    cr_assert_eq(chmod(path, mode), 0);
}

static struct cf_keyring *keyring_from(const uint8_t key[CF_ROOT_KEY_BYTES])
{
    struct cf_keyring *kr = NULL;
    struct cf_err err;
    cr_assert_eq(cf_keyring_from_bytes(key, &kr, &err), CF_OK, "%s", err.msg);
    cr_assert_not_null(kr);
    return kr;
}

static struct cf_keyring *random_keyring(void)
{
    uint8_t key[CF_ROOT_KEY_BYTES];
    cf_keyring_generate_root(key);
    struct cf_keyring *kr = keyring_from(key);
    sodium_memzero(key, sizeof(key));
    return kr;
}

/* True when a and b hold the same root key: a check blob made by one verifies under the other. */
static bool same_root(struct cf_keyring *a, struct cf_keyring *b)
{
    uint8_t *check = NULL;
    size_t check_len = 0;
    struct cf_err err;
    cr_assert_eq(cf_keyring_make_check(a, &check, &check_len, &err), CF_OK);
    enum cf_rc rc = cf_keyring_verify_check(b, check, check_len, &err);
    free(check);
    cr_assert(rc == CF_OK || rc == CF_ECRYPTO, "unexpected rc %d", rc);
    return rc == CF_OK;
}

struct project {
    uint8_t *wrapped;
    size_t wrapped_len;
};

static struct project new_project(struct cf_keyring *kr, const char *id)
{
    struct project p = {0};
    struct cf_err err;
    cr_assert_eq(cf_keyring_new_project_key(kr, id, &p.wrapped, &p.wrapped_len, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_eq(p.wrapped_len, CF_ROOT_KEY_BYTES + SEAL_OVERHEAD);
    return p;
}

static void seal(struct cf_keyring *kr, const struct project *p, const struct cf_seal_ad *ad,
                 const void *plain, size_t n, uint8_t **sealed, size_t *sealed_len)
{
    struct cf_err err;
    cr_assert_eq(
        cf_keyring_seal(kr, p->wrapped, p->wrapped_len, ad, plain, n, sealed, sealed_len, &err),
        CF_OK, "%s", err.msg);
    cr_assert_eq(*sealed_len, n + SEAL_OVERHEAD);
}

/* Opens and returns the rc; on success checks the plaintext equals expect/n. */
static enum cf_rc open_expect(struct cf_keyring *kr, const struct project *p,
                              const struct cf_seal_ad *ad, const uint8_t *sealed, size_t sealed_len,
                              const void *expect, size_t n)
{
    struct cf_buf out;
    struct cf_err err;
    cf_buf_init(&out, 0);
    cr_assert_eq(cf_buf_puts(&out, "keep:"), CF_OK);
    cf_err_clear(&err);
    enum cf_rc rc =
        cf_keyring_open(kr, p->wrapped, p->wrapped_len, ad, sealed, sealed_len, &out, &err);
    if (rc == CF_OK) {
        cr_assert_eq(out.len, 5 + n);
        cr_assert_eq(memcmp(out.data, "keep:", 5), 0, "open must append, not overwrite");
        cr_assert_eq(memcmp(out.data + 5, expect, n), 0, "plaintext differs");
        cr_assert_eq(out.data[out.len], '\0');
    } else {
        cr_assert_eq(err.rc, rc);
        cr_assert_neq(err.msg[0], '\0');
        cr_assert_eq(out.len, 5, "a failed open must leave out as it was");
        cr_assert_str_eq(out.data, "keep:");
    }
    cf_buf_release_wipe(&out);
    return rc;
}

static const struct cf_seal_ad base_ad = {
    .project_id = PROJECT_A,
    .env_id = "4c1d9e2a-7b3f-4a8e-9d6c-2f1e0b9a8c7d",
    .path = "/backend/api",
    .key = "DB_PASSWORD",
    .version = 3,
};

/* ---- root key loading ---- */

TestSuite(root, .init = setup, .fini = teardown);

Test(root, load_creates_file_0600_and_reloads_same_key)
{
    umask(0); /* the file must be 0600 whatever the umask */
    struct cf_keyring *kr1 = NULL, *kr2 = NULL;
    struct cf_err err;
    cr_assert_eq(cf_keyring_load(data_dir, NULL, true, &kr1, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(file_mode(CF_ROOT_KEY_FILE), 0600);
    cr_assert_eq(count_entries(), 1, "only root.key is left in the data dir");

    /* The file is base64 of 32 bytes and a newline. */
    char path[512], text[128] = "";
    file_path(path, sizeof(path), CF_ROOT_KEY_FILE);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    cr_assert_eq(n, 45);
    cr_assert_eq(text[44], '\n');
    uint8_t from_file[CF_ROOT_KEY_BYTES];
    size_t got = 0;
    cr_assert_eq(sodium_base642bin(from_file, sizeof(from_file), text, 44, NULL, &got, NULL,
                                   sodium_base64_VARIANT_ORIGINAL),
                 0);
    cr_assert_eq(got, CF_ROOT_KEY_BYTES);

    /* read_root_file agrees, and the loaded keyring holds that key. */
    uint8_t read_back[CF_ROOT_KEY_BYTES];
    cr_assert_eq(cf_keyring_read_root_file(path, read_back, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(memcmp(read_back, from_file, CF_ROOT_KEY_BYTES), 0);
    struct cf_keyring *direct = keyring_from(from_file);
    cr_assert(same_root(kr1, direct));

    /* A second load (create or not) reads the same key and does not rewrite the file. */
    struct stat before, after;
    cr_assert_eq(stat(path, &before), 0);
    cr_assert_eq(cf_keyring_load(data_dir, NULL, true, &kr2, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(stat(path, &after), 0);
    cr_assert_eq(before.st_ino, after.st_ino);
    cr_assert(same_root(kr1, kr2));
    cf_keyring_free(kr2);
    kr2 = NULL;
    cr_assert_eq(cf_keyring_load(data_dir, NULL, false, &kr2, &err), CF_OK, "%s", err.msg);
    cr_assert(same_root(kr2, kr1));

    /* Values sealed under the first keyring open under the reloaded one. */
    struct project p = new_project(kr1, PROJECT_A);
    uint8_t *sealed;
    size_t sealed_len;
    seal(kr1, &p, &base_ad, "s3cret", 6, &sealed, &sealed_len);
    cr_assert_eq(open_expect(kr2, &p, &base_ad, sealed, sealed_len, "s3cret", 6), CF_OK);

    free(sealed);
    free(p.wrapped);
    cf_keyring_free(direct);
    cf_keyring_free(kr1);
    cf_keyring_free(kr2);
}

Test(root, two_data_dirs_get_different_keys)
{
    struct cf_keyring *kr1 = NULL, *kr2 = NULL;
    struct cf_err err;
    cr_assert_eq(cf_keyring_load(data_dir, NULL, true, &kr1, &err), CF_OK, "%s", err.msg);
    char path[512];
    file_path(path, sizeof(path), CF_ROOT_KEY_FILE);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(cf_keyring_load(data_dir, NULL, true, &kr2, &err), CF_OK, "%s", err.msg);
    cr_assert_not(same_root(kr1, kr2));
    cf_keyring_free(kr1);
    cf_keyring_free(kr2);
}

Test(root, missing_file_without_create)
{
    struct cf_keyring *kr = NULL;
    struct cf_err err;
    cr_assert_eq(cf_keyring_load(data_dir, NULL, false, &kr, &err), CF_ENOTFOUND);
    cr_assert_null(kr);
    cr_assert_eq(count_entries(), 0, "nothing is created when create is false");
    char path[512];
    uint8_t key[CF_ROOT_KEY_BYTES];
    file_path(path, sizeof(path), "nope.key");
    cr_assert_eq(cf_keyring_read_root_file(path, key, &err), CF_ENOTFOUND);
}

Test(root, missing_data_dir_fails_cleanly)
{
    struct cf_keyring *kr = NULL;
    struct cf_err err;
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/does/not/exist", data_dir);
    cr_assert_eq(cf_keyring_load(dir, NULL, true, &kr, &err), CF_EIO);
    cr_assert_null(kr);
    cr_assert_neq(err.msg[0], '\0');
}

Test(root, stale_temp_file_does_not_leak_mode)
{
    /* A temp file left behind by a crash, readable by everyone, must not make the new key readable.
     */
    umask(022);
    write_text_file(CF_ROOT_KEY_FILE ".tmp", "stale\n", 0644);
    struct cf_keyring *kr = NULL;
    struct cf_err err;
    cr_assert_eq(cf_keyring_load(data_dir, NULL, true, &kr, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(file_mode(CF_ROOT_KEY_FILE), 0600, "root.key mode is %o",
                 (unsigned)file_mode(CF_ROOT_KEY_FILE));
    cf_keyring_free(kr);
}

Test(root, write_root_file_replaces_atomically_with_0600)
{
    umask(0);
    write_text_file("rotated.key", "old contents\n", 0644);
    uint8_t key[CF_ROOT_KEY_BYTES];
    cf_keyring_generate_root(key);
    struct cf_err err;
    cf_err_clear(&err);
    cr_assert_eq(cf_keyring_write_root_file(data_dir, "rotated.key", key, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_eq(file_mode("rotated.key"), 0600);
    cr_assert_eq(count_entries(), 1, "no temp file is left behind");
    char path[512];
    uint8_t back[CF_ROOT_KEY_BYTES];
    file_path(path, sizeof(path), "rotated.key");
    cr_assert_eq(cf_keyring_read_root_file(path, back, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(memcmp(key, back, sizeof(key)), 0);
}

Test(root, write_root_file_error_leaves_nothing_and_no_secret)
{
    uint8_t key[CF_ROOT_KEY_BYTES];
    cf_keyring_generate_root(key);
    char b64[64];
    sodium_bin2base64(b64, sizeof(b64), key, sizeof(key), sodium_base64_VARIANT_ORIGINAL);
    struct cf_err err;
    /* The target is a directory: the rename fails after the temp file was written. */
    char sub[512];
    file_path(sub, sizeof(sub), "adir");
    cr_assert_eq(mkdir(sub, 0700), 0);
    write_text_file("adir/inner", "x", 0600);
    cf_err_clear(&err);
    cr_assert_eq(cf_keyring_write_root_file(data_dir, "adir", key, &err), CF_EIO);
    cr_assert_null(strstr(err.msg, b64), "the key appears in the error message");
    cr_assert_eq(count_entries(), 1, "the temp file holding the key was left behind");
    char inner[600];
    snprintf(inner, sizeof(inner), "%s/inner", sub);
    unlink(inner);
    rmdir(sub);

    snprintf(sub, sizeof(sub), "%s/missing", data_dir);
    cr_assert_eq(cf_keyring_write_root_file(sub, "root.key", key, &err), CF_EIO);
    cr_assert_null(strstr(err.msg, b64));
}

Test(root, read_root_file_variants)
{
    uint8_t key[CF_ROOT_KEY_BYTES], back[CF_ROOT_KEY_BYTES];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(0xf0 + i); /* high bytes so that '+' '/' and '-' '_' appear */
    char b64[64], text[160], path[512];
    struct cf_err err;
    file_path(path, sizeof(path), "k");

    sodium_bin2base64(b64, sizeof(b64), key, sizeof(key), sodium_base64_VARIANT_ORIGINAL);
    snprintf(text, sizeof(text), "%s\r\n", b64);
    write_text_file("k", text, 0600);
    cr_assert_eq(cf_keyring_read_root_file(path, back, &err), CF_OK, "CRLF: %s", err.msg);
    cr_assert_eq(memcmp(key, back, sizeof(key)), 0);

    write_text_file("k", b64, 0600);
    cr_assert_eq(cf_keyring_read_root_file(path, back, &err), CF_OK, "no newline: %s", err.msg);
    cr_assert_eq(memcmp(key, back, sizeof(key)), 0);

    static const char *const bad[] = {
        "", "\n", "not base64 at all\n",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n" /* 31 bytes */,
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n" /* 33 bytes */};
    for (size_t i = 0; i < CF_ARRAY_SIZE(bad); i++) {
        write_text_file("k", bad[i], 0600);
        cf_err_clear(&err);
        cr_assert_eq(cf_keyring_read_root_file(path, back, &err), CF_EINVAL, "case %zu", i);
        cr_assert_neq(err.msg[0], '\0');
    }
    /* Two keys concatenated must not be read as the first. */
    snprintf(text, sizeof(text), "%s\n%s\n", b64, b64);
    write_text_file("k", text, 0600);
    cr_assert_eq(cf_keyring_read_root_file(path, back, &err), CF_EINVAL);
}

#define RACERS 8

struct racer {
    pthread_barrier_t *barrier;
    struct cf_keyring *kr;
    enum cf_rc rc;
    char msg[CF_ERR_MSG_MAX];
};

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    struct cf_err err;
    cf_err_clear(&err);
    pthread_barrier_wait(r->barrier);
    r->rc = cf_keyring_load(data_dir, NULL, true, &r->kr, &err);
    snprintf(r->msg, sizeof(r->msg), "%s", err.msg);
    return NULL;
}

Test(root, concurrent_first_start_agrees_on_one_key)
{
    /* Several starts racing to create root.key must all end up with the key that is on disk. */
    char path[512];
    file_path(path, sizeof(path), CF_ROOT_KEY_FILE);
    for (int iteration = 0; iteration < 40; iteration++) {
        unlink(path);
        pthread_barrier_t barrier;
        pthread_barrier_init(&barrier, NULL, RACERS);
        pthread_t tids[RACERS];
        struct racer racers[RACERS];
        for (int i = 0; i < RACERS; i++) {
            racers[i] = (struct racer){.barrier = &barrier};
            cr_assert_eq(pthread_create(&tids[i], NULL, racer_main, &racers[i]), 0);
        }
        for (int i = 0; i < RACERS; i++)
            pthread_join(tids[i], NULL);
        pthread_barrier_destroy(&barrier);
        struct cf_keyring *on_disk = NULL;
        struct cf_err err;
        cr_assert_eq(cf_keyring_load(data_dir, NULL, false, &on_disk, &err), CF_OK, "%s", err.msg);
        for (int i = 0; i < RACERS; i++) {
            cr_assert_eq(racers[i].rc, CF_OK, "racer %d: %s", i, racers[i].msg);
            cr_assert(same_root(racers[i].kr, on_disk),
                      "iteration %d: racer %d uses a key not on disk", iteration, i);
            cf_keyring_free(racers[i].kr);
        }
        cf_keyring_free(on_disk);
        cr_assert_eq(count_entries(), 1, "temp files left behind");
        cr_assert_eq(file_mode(CF_ROOT_KEY_FILE), 0600);
    }
}

/* ---- COFFER_ROOT_KEY ---- */

Test(root, env_key_base64_variants_accepted)
{
    uint8_t key[CF_ROOT_KEY_BYTES];
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(0xfb ^ (i * 37)); /* includes bytes that encode to + / - _ */
    struct cf_keyring *expected = keyring_from(key);
    static const int variants[] = {
        sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
        sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING};
    bool saw_plus = false, saw_dash = false;
    for (size_t v = 0; v < 4; v++) {
        char b64[64], with_nl[70];
        sodium_bin2base64(b64, sizeof(b64), key, sizeof(key), variants[v]);
        saw_plus |= strpbrk(b64, "+/") != NULL;
        saw_dash |= strpbrk(b64, "-_") != NULL;
        snprintf(with_nl, sizeof(with_nl), "%s\n", b64);
        const char *inputs[] = {b64, with_nl};
        for (size_t k = 0; k < 2; k++) {
            struct cf_keyring *kr = NULL;
            struct cf_err err;
            cr_assert_eq(cf_keyring_load(data_dir, inputs[k], false, &kr, &err), CF_OK,
                         "variant %zu '%s': %s", v, inputs[k], err.msg);
            cr_assert(same_root(kr, expected), "variant %zu decoded to another key", v);
            cf_keyring_free(kr);
        }
    }
    cr_assert(saw_plus && saw_dash, "the test key must exercise both alphabets");
    cr_assert_eq(count_entries(), 0, "an explicit key never creates root.key");
    cf_keyring_free(expected);
}

Test(root, env_key_wins_over_file)
{
    struct cf_keyring *from_file = NULL, *from_env = NULL;
    struct cf_err err;
    cr_assert_eq(cf_keyring_load(data_dir, NULL, true, &from_file, &err), CF_OK);
    uint8_t key[CF_ROOT_KEY_BYTES];
    cf_keyring_generate_root(key);
    char b64[64];
    sodium_bin2base64(b64, sizeof(b64), key, sizeof(key), sodium_base64_VARIANT_ORIGINAL);
    cr_assert_eq(cf_keyring_load(data_dir, b64, true, &from_env, &err), CF_OK);
    struct cf_keyring *expected = keyring_from(key);
    cr_assert(same_root(from_env, expected));
    cr_assert_not(same_root(from_env, from_file));
    cf_keyring_free(from_file);
    cf_keyring_free(from_env);
    cf_keyring_free(expected);
}

Test(root, env_key_wrong_lengths_and_junk_rejected)
{
    char inputs[16][160];
    size_t n = 0;
    uint8_t bytes[64];
    randombytes_buf(bytes, sizeof(bytes));
    static const size_t lengths[] = {0, 1, 16, 31, 33, 48, 64};
    for (size_t i = 0; i < CF_ARRAY_SIZE(lengths); i++)
        sodium_bin2base64(inputs[n++], sizeof(inputs[0]), bytes, lengths[i],
                          sodium_base64_VARIANT_ORIGINAL);
    /* 32 bytes hex-encoded (what `openssl rand -hex 32` prints) is 64 characters: not base64 of 32
     * bytes. */
    sodium_bin2hex(inputs[n++], sizeof(inputs[0]), bytes, 32);
    /* Valid base64 of 32 bytes with junk around or inside it. */
    char good[64];
    sodium_bin2base64(good, sizeof(good), bytes, 32, sodium_base64_VARIANT_ORIGINAL);
    snprintf(inputs[n++], sizeof(inputs[0]), "%s!", good);
    snprintf(inputs[n++], sizeof(inputs[0]), "%.20s %s", good, good + 20);
    snprintf(inputs[n++], sizeof(inputs[0]), "%s%s", good, good);
    snprintf(inputs[n++], sizeof(inputs[0]), "%.43s*", good);
    /* Non-canonical: the last character carries non-zero padding bits. */
    snprintf(inputs[n++], sizeof(inputs[0]), "%s", good);
    char *last = inputs[n - 1] + 42;
    *last = (*last == 'B') ? 'C' : (*last == 'A' ? 'B' : (char)(*last ^ 1));
    snprintf(inputs[n++], sizeof(inputs[0]), "%s", "not base64 at all");
    cr_assert_leq(n, 16);

    for (size_t i = 0; i < n; i++) {
        struct cf_keyring *kr = NULL;
        struct cf_err err;
        cf_err_clear(&err);
        cr_assert_eq(cf_keyring_load(data_dir, inputs[i], true, &kr, &err), CF_EINVAL,
                     "'%s' accepted", inputs[i]);
        cr_assert_null(kr);
        cr_assert_neq(err.msg[0], '\0');
        if (inputs[i][0])
            cr_assert_null(strstr(err.msg, inputs[i]), "the key text appears in the error message");
    }
    cr_assert_eq(count_entries(), 0,
                 "a bad COFFER_ROOT_KEY must not fall back to creating root.key");
}

/* ---- check blob ---- */

TestSuite(check, .init = setup, .fini = teardown);

Test(check, verifies_with_right_key_only)
{
    struct cf_keyring *kr = random_keyring(), *other = random_keyring();
    uint8_t *check = NULL;
    size_t check_len = 0;
    struct cf_err err;
    cr_assert_eq(cf_keyring_make_check(kr, &check, &check_len, &err), CF_OK);
    cr_assert_gt(check_len, SEAL_OVERHEAD);
    cr_assert_eq(cf_keyring_verify_check(kr, check, check_len, &err), CF_OK);
    cf_err_clear(&err);
    cr_assert_eq(cf_keyring_verify_check(other, check, check_len, &err), CF_ECRYPTO);
    cr_assert_eq(err.rc, CF_ECRYPTO);
    cr_assert_neq(err.msg[0], '\0');

    /* Any flipped bit or truncation fails. */
    for (size_t i = 0; i < check_len; i++) {
        check[i] ^= 0x01;
        cr_assert_eq(cf_keyring_verify_check(kr, check, check_len, &err), CF_ECRYPTO, "byte %zu",
                     i);
        check[i] ^= 0x01;
    }
    for (size_t len = 0; len < check_len; len++)
        cr_assert_eq(cf_keyring_verify_check(kr, check, len, &err), CF_ECRYPTO, "length %zu", len);
    cr_assert_eq(cf_keyring_verify_check(kr, check, check_len, &err), CF_OK);

    /* Two checks by the same key differ (random nonce) and both verify. */
    uint8_t *check2 = NULL;
    size_t check2_len = 0;
    cr_assert_eq(cf_keyring_make_check(kr, &check2, &check2_len, &err), CF_OK);
    cr_assert_eq(check2_len, check_len);
    cr_assert_neq(memcmp(check, check2, check_len), 0);
    cr_assert_eq(cf_keyring_verify_check(kr, check2, check2_len, &err), CF_OK);

    free(check);
    free(check2);
    cf_keyring_free(kr);
    cf_keyring_free(other);
}

Test(check, value_blob_is_not_a_check)
{
    /* A project key blob (sealed by the root key under other associated data) is not a valid check.
     */
    struct cf_keyring *kr = random_keyring();
    struct project p = new_project(kr, PROJECT_A);
    struct cf_err err;
    cr_assert_eq(cf_keyring_verify_check(kr, p.wrapped, p.wrapped_len, &err), CF_ECRYPTO);
    free(p.wrapped);
    cf_keyring_free(kr);
}

/* ---- sealing ---- */

TestSuite(seal, .init = setup, .fini = teardown);

Test(seal, round_trip)
{
    struct cf_keyring *kr = random_keyring();
    struct project p = new_project(kr, PROJECT_A);
    const char *value = "correct horse battery staple";
    uint8_t *s1, *s2;
    size_t l1, l2;
    seal(kr, &p, &base_ad, value, strlen(value), &s1, &l1);
    seal(kr, &p, &base_ad, value, strlen(value), &s2, &l2);
    cr_assert_neq(memcmp(s1, s2, l1), 0, "two seals of one value must differ (fresh nonce)");
    cr_assert_null(memmem(s1, l1, value, strlen(value)), "plaintext visible in the sealed blob");
    cr_assert_eq(open_expect(kr, &p, &base_ad, s1, l1, value, strlen(value)), CF_OK);
    cr_assert_eq(open_expect(kr, &p, &base_ad, s2, l2, value, strlen(value)), CF_OK);

    /* A fresh keyring with the same root (nothing cached) opens too. */
    cf_keyring_forget(kr, PROJECT_A);
    cr_assert_eq(open_expect(kr, &p, &base_ad, s1, l1, value, strlen(value)), CF_OK);
    free(s1);
    free(s2);
    free(p.wrapped);
    cf_keyring_free(kr);
}

Test(seal, empty_and_64k_values)
{
    struct cf_keyring *kr = random_keyring();
    struct project p = new_project(kr, PROJECT_A);
    uint8_t *sealed;
    size_t sealed_len;

    seal(kr, &p, &base_ad, "", 0, &sealed, &sealed_len);
    cr_assert_eq(sealed_len, SEAL_OVERHEAD);
    cr_assert_eq(open_expect(kr, &p, &base_ad, sealed, sealed_len, "", 0), CF_OK);
    struct cf_buf out;
    struct cf_err err;
    cf_buf_init(&out, 0);
    cr_assert_eq(
        cf_keyring_open(kr, p.wrapped, p.wrapped_len, &base_ad, sealed, sealed_len, &out, &err),
        CF_OK);
    cr_assert_not_null(out.data);
    cr_assert_str_eq(out.data, "");
    cf_buf_release_wipe(&out);
    free(sealed);

    size_t n = 64 * 1024;
    uint8_t *big = malloc(n);
    cr_assert_not_null(big);
    randombytes_buf(big, n);
    big[0] = 0; /* binary values with NUL bytes survive */
    big[n / 2] = 0;
    seal(kr, &p, &base_ad, big, n, &sealed, &sealed_len);
    cr_assert_eq(open_expect(kr, &p, &base_ad, sealed, sealed_len, big, n), CF_OK);

    /* Opening into a buffer whose max is too small fails without leaving plaintext. */
    cf_buf_init(&out, 1024);
    cr_assert_eq(cf_buf_puts(&out, "x"), CF_OK);
    cr_assert_eq(
        cf_keyring_open(kr, p.wrapped, p.wrapped_len, &base_ad, sealed, sealed_len, &out, &err),
        CF_ETOOLARGE);
    cr_assert_eq(out.len, 1);
    cf_buf_release_wipe(&out);

    free(sealed);
    free(big);
    free(p.wrapped);
    cf_keyring_free(kr);
}

enum ad_field { AD_PROJECT, AD_ENV, AD_PATH, AD_KEY, AD_VERSION };

Test(seal, any_associated_data_change_fails)
{
    struct cf_keyring *kr = random_keyring();
    struct project p = new_project(kr, PROJECT_A);
    const char *value = "v4lue";
    uint8_t *sealed;
    size_t sealed_len;
    seal(kr, &p, &base_ad, value, 5, &sealed, &sealed_len);

    static const struct {
        enum ad_field field;
        const char *text;
        int64_t version;
    } changes[] = {
        {AD_PROJECT, PROJECT_B, 0},
        {AD_PROJECT, "6F1C2A9E-3B7D-4E21-9A55-0C8F7E3D2B10", 0}, /* case matters */
        {AD_PROJECT, "", 0},
        {AD_ENV, "4c1d9e2a-7b3f-4a8e-9d6c-2f1e0b9a8c7e", 0},
        {AD_ENV, "", 0},
        {AD_PATH, "/backend", 0},
        {AD_PATH, "/backend/api/", 0},
        {AD_PATH, "/", 0},
        {AD_KEY, "DB_PASSWORd", 0},
        {AD_KEY, "DB_PASSWORD ", 0},
        {AD_KEY, "", 0},
        {AD_VERSION, NULL, 2},
        {AD_VERSION, NULL, 4},
        {AD_VERSION, NULL, 0},
        {AD_VERSION, NULL, -3},
        {AD_VERSION, NULL, 3 + (1LL << 32)},
        {AD_VERSION, NULL, 3 + (1LL << 56)},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(changes); i++) {
        struct cf_seal_ad ad = base_ad;
        switch (changes[i].field) {
        case AD_PROJECT:
            ad.project_id = changes[i].text;
            break;
        case AD_ENV:
            ad.env_id = changes[i].text;
            break;
        case AD_PATH:
            ad.path = changes[i].text;
            break;
        case AD_KEY:
            ad.key = changes[i].text;
            break;
        case AD_VERSION:
            ad.version = changes[i].version;
            break;
        }
        cr_assert_eq(open_expect(kr, &p, &ad, sealed, sealed_len, value, 5), CF_ECRYPTO,
                     "change %zu", i);
    }
    /* The unchanged associated data still opens: the failures above are not from a broken keyring.
     */
    cr_assert_eq(open_expect(kr, &p, &base_ad, sealed, sealed_len, value, 5), CF_OK);
    free(sealed);
    free(p.wrapped);
    cf_keyring_free(kr);
}

Test(seal, field_boundaries_are_unambiguous)
{
    struct cf_keyring *kr = random_keyring();
    struct project p = new_project(kr, PROJECT_A);
    struct cf_seal_ad ad = base_ad;
    ad.path = "/a";
    ad.key = "BC";
    uint8_t *sealed;
    size_t sealed_len;
    seal(kr, &p, &ad, "x", 1, &sealed, &sealed_len);
    struct cf_seal_ad moved = ad;
    moved.path = "/aB";
    moved.key = "C";
    cr_assert_eq(open_expect(kr, &p, &moved, sealed, sealed_len, "x", 1), CF_ECRYPTO);
    moved.path = "/";
    moved.key = "aBC";
    cr_assert_eq(open_expect(kr, &p, &moved, sealed, sealed_len, "x", 1), CF_ECRYPTO);
    cr_assert_eq(open_expect(kr, &p, &ad, sealed, sealed_len, "x", 1), CF_OK);
    free(sealed);
    free(p.wrapped);
    cf_keyring_free(kr);
}

Test(seal, flipped_truncated_or_extended_ciphertext_fails)
{
    struct cf_keyring *kr = random_keyring();
    struct project p = new_project(kr, PROJECT_A);
    const char *value = "tamper-evident";
    size_t n = strlen(value);
    uint8_t *sealed;
    size_t sealed_len;
    seal(kr, &p, &base_ad, value, n, &sealed, &sealed_len);
    for (size_t i = 0; i < sealed_len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            sealed[i] ^= (uint8_t)(1u << bit);
            cr_assert_eq(open_expect(kr, &p, &base_ad, sealed, sealed_len, value, n), CF_ECRYPTO,
                         "byte %zu bit %d", i, bit);
            sealed[i] ^= (uint8_t)(1u << bit);
        }
    }
    for (size_t len = 0; len < sealed_len; len++)
        cr_assert_eq(open_expect(kr, &p, &base_ad, sealed, len, value, n), CF_ECRYPTO, "length %zu",
                     len);
    uint8_t *longer = malloc(sealed_len + 1);
    memcpy(longer, sealed, sealed_len);
    longer[sealed_len] = 0;
    cr_assert_eq(open_expect(kr, &p, &base_ad, longer, sealed_len + 1, value, n), CF_ECRYPTO);
    cr_assert_eq(open_expect(kr, &p, &base_ad, sealed, sealed_len, value, n), CF_OK);
    free(longer);
    free(sealed);
    free(p.wrapped);
    cf_keyring_free(kr);
}

Test(seal, value_of_another_project_fails)
{
    struct cf_keyring *kr = random_keyring();
    struct project a = new_project(kr, PROJECT_A), b = new_project(kr, PROJECT_B);
    uint8_t *sealed;
    size_t sealed_len;
    seal(kr, &a, &base_ad, "x", 1, &sealed, &sealed_len);
    struct cf_seal_ad ad_b = base_ad;
    ad_b.project_id = PROJECT_B;
    /* B's key cannot open A's value, even with B's associated data. */
    cr_assert_eq(open_expect(kr, &b, &ad_b, sealed, sealed_len, "x", 1), CF_ECRYPTO);
    free(sealed);
    free(a.wrapped);
    free(b.wrapped);
    cf_keyring_free(kr);
}

static void check_wrong_wrapped(struct cf_keyring *kr, struct project *a, struct project *b,
                                const uint8_t *sealed, size_t sealed_len)
{
    struct cf_seal_ad ad_b = base_ad;
    ad_b.project_id = PROJECT_B;
    /* A's value with B's wrapped key. */
    cr_assert_eq(open_expect(kr, b, &base_ad, sealed, sealed_len, "x", 1), CF_ECRYPTO);
    /* A's wrapped key presented as B's. */
    cr_assert_eq(open_expect(kr, a, &ad_b, sealed, sealed_len, "x", 1), CF_ECRYPTO);
    /* Sealing with a mismatched wrapped key fails as well. */
    uint8_t *out = NULL;
    size_t out_len = 0;
    struct cf_err err;
    cr_assert_eq(
        cf_keyring_seal(kr, b->wrapped, b->wrapped_len, &base_ad, "y", 1, &out, &out_len, &err),
        CF_ECRYPTO);
    cr_assert_null(out);
}

Test(seal, wrapped_key_of_another_project_fails_uncached)
{
    uint8_t key[CF_ROOT_KEY_BYTES];
    cf_keyring_generate_root(key);
    struct cf_keyring *kr = keyring_from(key);
    struct project a = new_project(kr, PROJECT_A), b = new_project(kr, PROJECT_B);
    uint8_t *sealed;
    size_t sealed_len;
    seal(kr, &a, &base_ad, "x", 1, &sealed, &sealed_len);
    struct cf_keyring *fresh = keyring_from(key); /* nothing cached */
    check_wrong_wrapped(fresh, &a, &b, sealed, sealed_len);
    free(sealed);
    free(a.wrapped);
    free(b.wrapped);
    cf_keyring_free(kr);
    cf_keyring_free(fresh);
}

Test(seal, wrapped_key_of_another_project_fails_cached)
{
    /* The result must not depend on what the cache holds: the same calls after A and B were used.
     */
    struct cf_keyring *kr = random_keyring();
    struct project a = new_project(kr, PROJECT_A), b = new_project(kr, PROJECT_B);
    uint8_t *sealed;
    size_t sealed_len;
    seal(kr, &a, &base_ad, "x", 1, &sealed, &sealed_len);
    struct cf_seal_ad ad_b = base_ad;
    ad_b.project_id = PROJECT_B;
    uint8_t *sealed_b;
    size_t sealed_b_len;
    seal(kr, &b, &ad_b, "z", 1, &sealed_b, &sealed_b_len); /* B is cached too */
    cr_assert_eq(open_expect(kr, &a, &base_ad, sealed, sealed_len, "x", 1), CF_OK);
    check_wrong_wrapped(kr, &a, &b, sealed, sealed_len);
    free(sealed);
    free(sealed_b);
    free(a.wrapped);
    free(b.wrapped);
    cf_keyring_free(kr);
}

Test(seal, wrapped_key_corrupt_or_other_root_fails)
{
    struct cf_keyring *kr = random_keyring(), *other = random_keyring();
    struct project a = new_project(kr, PROJECT_A);
    uint8_t *sealed;
    size_t sealed_len;
    seal(kr, &a, &base_ad, "x", 1, &sealed, &sealed_len);
    cr_assert_eq(open_expect(other, &a, &base_ad, sealed, sealed_len, "x", 1), CF_ECRYPTO);
    /* other never holds A's key, so every call below unwraps. */
    struct cf_keyring *fresh = other;
    for (size_t i = 0; i < a.wrapped_len; i++) {
        a.wrapped[i] ^= 0x80;
        cr_assert_eq(open_expect(fresh, &a, &base_ad, sealed, sealed_len, "x", 1), CF_ECRYPTO,
                     "byte %zu", i);
        a.wrapped[i] ^= 0x80;
    }
    struct project truncated = {a.wrapped, a.wrapped_len - 1};
    cf_keyring_forget(kr, PROJECT_A);
    cr_assert_eq(open_expect(kr, &truncated, &base_ad, sealed, sealed_len, "x", 1), CF_ECRYPTO);
    struct project empty = {a.wrapped, 0};
    cr_assert_eq(open_expect(kr, &empty, &base_ad, sealed, sealed_len, "x", 1), CF_ECRYPTO);
    cr_assert_eq(open_expect(kr, &a, &base_ad, sealed, sealed_len, "x", 1), CF_OK);
    free(sealed);
    free(a.wrapped);
    cf_keyring_free(kr);
    cf_keyring_free(other);
}

Test(seal, long_project_ids_are_fully_bound)
{
    /* Two project ids that share a long prefix must not share a wrapped key. */
    char id1[300], id2[300];
    memset(id1, 'p', sizeof(id1) - 1);
    id1[sizeof(id1) - 1] = '\0';
    memcpy(id2, id1, sizeof(id2));
    id2[sizeof(id2) - 2] = 'q';
    struct cf_keyring *kr = random_keyring();
    uint8_t *wrapped = NULL;
    size_t wrapped_len = 0;
    struct cf_err err;
    enum cf_rc rc = cf_keyring_new_project_key(kr, id1, &wrapped, &wrapped_len, &err);
    if (rc == CF_OK) {
        struct cf_seal_ad ad = base_ad;
        ad.project_id = id2;
        uint8_t *sealed = NULL;
        size_t sealed_len = 0;
        cr_assert_eq(
            cf_keyring_seal(kr, wrapped, wrapped_len, &ad, "x", 1, &sealed, &sealed_len, &err),
            CF_ECRYPTO, "the wrapped key of one project unwrapped for another");
        ad.project_id = id1;
        cr_assert_eq(
            cf_keyring_seal(kr, wrapped, wrapped_len, &ad, "x", 1, &sealed, &sealed_len, &err),
            CF_OK, "%s", err.msg);
        free(sealed);
    } else {
        cr_assert_eq(rc, CF_EINVAL, "an id that cannot be bound is refused, got %d", rc);
        cr_assert_null(wrapped);
    }
    free(wrapped);
    cf_keyring_free(kr);
}

/* An opener opens what cf_keyring_seal sealed, for every path, key and version of its project and
 * environment, appending like cf_keyring_open; a value of another environment or a tampered one
 * fails without touching out; a wrong wrapped key fails at init; release wipes the key. */
Test(seal, opener_opens_many_values_of_one_environment)
{
    struct cf_keyring *kr = random_keyring();
    struct project p = new_project(kr, PROJECT_A);
    struct project other = new_project(kr, PROJECT_B);
    struct cf_keyring_opener o;
    struct cf_err err;
    static const char *const paths[] = {"/", "/backend/api", "/a/b/c"};
    static const char *const keys[] = {"DB_PASSWORD", "K", "API_TOKEN_2"};
    uint8_t *sealed[9];
    size_t sealed_len[9];
    char plain[9][32];

    for (size_t i = 0; i < 9; i++) {
        struct cf_seal_ad ad = base_ad;
        ad.path = paths[i % 3];
        ad.key = keys[i / 3];
        ad.version = (int64_t)i + 1;
        snprintf(plain[i], sizeof(plain[i]), "value %zu", i);
        seal(kr, &p, &ad, plain[i], strlen(plain[i]), &sealed[i], &sealed_len[i]);
    }
    cr_assert_eq(
        cf_keyring_opener_init(&o, kr, p.wrapped, p.wrapped_len, PROJECT_A, base_ad.env_id, &err),
        CF_OK, "%s", err.msg);
    for (size_t i = 0; i < 9; i++) {
        struct cf_buf out;
        cf_buf_init(&out, 0);
        cr_assert_eq(cf_buf_puts(&out, "keep:"), CF_OK);
        cr_assert_eq(cf_keyring_opener_open(&o, paths[i % 3], keys[i / 3], (int64_t)i + 1,
                                            sealed[i], sealed_len[i], &out, &err),
                     CF_OK, "value %zu: %s", i, err.msg);
        cr_assert_eq(out.len, 5 + strlen(plain[i]));
        cr_assert_eq(memcmp(out.data + 5, plain[i], strlen(plain[i])), 0, "value %zu differs", i);
        /* the same bytes under another key, path or version fail, and leave out as it was */
        cr_assert_eq(cf_keyring_opener_open(&o, paths[(i + 1) % 3], keys[i / 3], (int64_t)i + 1,
                                            sealed[i], sealed_len[i], &out, &err),
                     CF_ECRYPTO);
        cr_assert_eq(cf_keyring_opener_open(&o, paths[i % 3], keys[i / 3], (int64_t)i + 2,
                                            sealed[i], sealed_len[i], &out, &err),
                     CF_ECRYPTO);
        cr_assert_eq(out.len, 5 + strlen(plain[i]), "a failed open must leave out as it was");
        cf_buf_release_wipe(&out);
    }

    /* a path longer than the associated data can hold is refused, naming the key */
    char long_path[CF_KEYRING_AD_MAX + 2];
    memset(long_path, 'p', sizeof(long_path) - 1);
    long_path[sizeof(long_path) - 1] = '\0';
    struct cf_buf out;
    cf_buf_init(&out, 0);
    cr_assert_eq(
        cf_keyring_opener_open(&o, long_path, "K", 1, sealed[0], sealed_len[0], &out, &err),
        CF_ETOOLARGE);
    cr_assert(strstr(err.msg, "'K'"), "%s", err.msg);
    cr_assert_eq(out.len, 0);
    cf_buf_release_wipe(&out);

    cf_keyring_opener_release(&o);
    uint8_t zero[CF_KEYRING_KEY_BYTES] = {0};
    cr_assert_eq(memcmp(o.key, zero, sizeof(zero)), 0, "release must wipe the key");

    /* an opener of another environment opens none of them */
    cr_assert_eq(cf_keyring_opener_init(&o, kr, p.wrapped, p.wrapped_len, PROJECT_A,
                                        "4c1d9e2a-7b3f-4a8e-9d6c-2f1e0b9a8c7e", &err),
                 CF_OK, "%s", err.msg);
    cf_buf_init(&out, 0);
    cr_assert_eq(
        cf_keyring_opener_open(&o, paths[0], keys[0], 1, sealed[0], sealed_len[0], &out, &err),
        CF_ECRYPTO);
    cf_keyring_opener_release(&o);
    cf_buf_release_wipe(&out);

    /* the wrapped key of another project does not unwrap for this one */
    cr_assert_eq(cf_keyring_opener_init(&o, kr, other.wrapped, other.wrapped_len, PROJECT_A,
                                        base_ad.env_id, &err),
                 CF_ECRYPTO);
    cf_keyring_opener_release(&o);

    for (size_t i = 0; i < 9; i++)
        free(sealed[i]);
    free(p.wrapped);
    free(other.wrapped);
    cf_keyring_free(kr);
}

/* ---- rewrap ---- */

TestSuite(rewrap, .init = setup, .fini = teardown);

Test(rewrap, values_stay_readable_under_new_root)
{
    struct cf_keyring *old_root = random_keyring(), *new_root = random_keyring();
    struct project p = new_project(old_root, PROJECT_A);
    uint8_t *sealed;
    size_t sealed_len;
    seal(old_root, &p, &base_ad, "before rotation", 15, &sealed, &sealed_len);

    struct project q = {0};
    struct cf_err err;
    cr_assert_eq(cf_keyring_rewrap(old_root, new_root, PROJECT_A, p.wrapped, p.wrapped_len,
                                   &q.wrapped, &q.wrapped_len, &err),
                 CF_OK, "%s", err.msg);
    cr_assert_eq(q.wrapped_len, p.wrapped_len);
    cr_assert_neq(memcmp(q.wrapped, p.wrapped, p.wrapped_len), 0);

    /* The old value opens under the new root with the rewrapped key; new values too. */
    cr_assert_eq(open_expect(new_root, &q, &base_ad, sealed, sealed_len, "before rotation", 15),
                 CF_OK);
    uint8_t *sealed2;
    size_t sealed2_len;
    seal(new_root, &q, &base_ad, "after", 5, &sealed2, &sealed2_len);
    cr_assert_eq(open_expect(new_root, &q, &base_ad, sealed2, sealed2_len, "after", 5), CF_OK);

    /* The old wrapped key is useless under the new root and the new one under the old root
     * (old_root has A cached by now: the answer must still depend on the wrapped key given). */
    cr_assert_eq(open_expect(new_root, &p, &base_ad, sealed, sealed_len, "before rotation", 15),
                 CF_ECRYPTO);
    cf_keyring_forget(old_root, PROJECT_A);
    cr_assert_eq(open_expect(old_root, &q, &base_ad, sealed, sealed_len, "before rotation", 15),
                 CF_ECRYPTO);

    /* A keyring loaded fresh from the new root key bytes works too: check via a check blob round
     * trip. */
    free(sealed);
    free(sealed2);
    free(p.wrapped);
    free(q.wrapped);
    cf_keyring_free(old_root);
    cf_keyring_free(new_root);
}

Test(rewrap, wrong_source_or_project_fails)
{
    struct cf_keyring *old_root = random_keyring(), *new_root = random_keyring(),
                      *other = random_keyring();
    struct project p = new_project(old_root, PROJECT_A);
    uint8_t *out = NULL;
    size_t out_len = 0;
    struct cf_err err;
    cr_assert_eq(cf_keyring_rewrap(other, new_root, PROJECT_A, p.wrapped, p.wrapped_len, &out,
                                   &out_len, &err),
                 CF_ECRYPTO);
    cr_assert_null(out);
    cr_assert_eq(cf_keyring_rewrap(old_root, new_root, PROJECT_B, p.wrapped, p.wrapped_len, &out,
                                   &out_len, &err),
                 CF_ECRYPTO);
    cr_assert_null(out);
    cr_assert_eq(cf_keyring_rewrap(old_root, new_root, PROJECT_A, p.wrapped, p.wrapped_len - 1,
                                   &out, &out_len, &err),
                 CF_ECRYPTO);
    cr_assert_null(out);
    free(p.wrapped);
    cf_keyring_free(old_root);
    cf_keyring_free(new_root);
    cf_keyring_free(other);
}

/* ---- concurrency ---- */

TestSuite(threads, .init = setup, .fini = teardown);

#define THREADS 8
#define PROJECTS 6
#define ROUNDS 400

struct shared {
    struct cf_keyring *kr;
    struct project projects[PROJECTS];
    char ids[PROJECTS][40];
};

struct worker {
    struct shared *shared;
    int index;
    int failures;
    char first_failure[CF_ERR_MSG_MAX + 32];
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct shared *s = w->shared;
    uint8_t plain[512];
    for (int round = 0; round < ROUNDS; round++) {
        int j = (int)randombytes_uniform(PROJECTS);
        size_t n = randombytes_uniform(sizeof(plain));
        randombytes_buf(plain, n);
        char key[32];
        snprintf(key, sizeof(key), "K_%d_%d", w->index, round);
        struct cf_seal_ad ad = base_ad;
        ad.project_id = s->ids[j];
        ad.key = key;
        ad.version = round;
        uint8_t *sealed = NULL;
        size_t sealed_len = 0;
        struct cf_err err;
        struct cf_buf out;
        cf_buf_init(&out, 0);
        enum cf_rc rc = cf_keyring_seal(s->kr, s->projects[j].wrapped, s->projects[j].wrapped_len,
                                        &ad, plain, n, &sealed, &sealed_len, &err);
        if (rc == CF_OK)
            rc = cf_keyring_open(s->kr, s->projects[j].wrapped, s->projects[j].wrapped_len, &ad,
                                 sealed, sealed_len, &out, &err);
        if (rc == CF_OK && (out.len != n || memcmp(out.data, plain, n) != 0))
            rc = cf_err_set(&err, CF_EINTERNAL, "round trip mismatch");
        /* A value of project j must not open as project (j + 1). */
        if (rc == CF_OK) {
            int k = (j + 1) % PROJECTS;
            struct cf_buf other;
            cf_buf_init(&other, 0);
            ad.project_id = s->ids[k];
            if (cf_keyring_open(s->kr, s->projects[k].wrapped, s->projects[k].wrapped_len, &ad,
                                sealed, sealed_len, &other, NULL) != CF_ECRYPTO)
                rc = cf_err_set(&err, CF_EINTERNAL, "opened under another project");
            cf_buf_release_wipe(&other);
        }
        if (round % 37 == 0)
            cf_keyring_forget(s->kr, s->ids[(j + 2) % PROJECTS]);
        if (rc != CF_OK && w->failures++ == 0)
            snprintf(w->first_failure, sizeof(w->first_failure), "round %d: %s", round, err.msg);
        cf_buf_release_wipe(&out);
        free(sealed);
    }
    return NULL;
}

Test(threads, concurrent_seal_open_and_forget)
{
    struct shared s;
    s.kr = random_keyring();
    for (int j = 0; j < PROJECTS; j++) {
        snprintf(s.ids[j], sizeof(s.ids[j]), "00000000-0000-4000-8000-%012d", j);
        s.projects[j] = new_project(s.kr, s.ids[j]);
    }
    pthread_t tids[THREADS];
    struct worker workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){.shared = &s, .index = i};
        cr_assert_eq(pthread_create(&tids[i], NULL, worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(tids[i], NULL);
    for (int i = 0; i < THREADS; i++)
        cr_assert_eq(workers[i].failures, 0, "thread %d: %d failures, first: %s", i,
                     workers[i].failures, workers[i].first_failure);
    for (int j = 0; j < PROJECTS; j++)
        free(s.projects[j].wrapped);
    cf_keyring_free(s.kr);
}

Test(threads, many_projects_beyond_cache_bound)
{
    /* More projects than the cache holds keep working (the cache is bounded, not a correctness
     * boundary). */
    struct cf_keyring *kr = random_keyring();
    enum { N = 1300 };
    static struct project projects[N];
    static char ids[N][40];
    static uint8_t *sealed[N];
    static size_t sealed_len[N];
    for (int j = 0; j < N; j++) {
        snprintf(ids[j], sizeof(ids[j]), "00000000-0000-4000-8000-%012d", j);
        projects[j] = new_project(kr, ids[j]);
        struct cf_seal_ad ad = base_ad;
        ad.project_id = ids[j];
        seal(kr, &projects[j], &ad, ids[j], strlen(ids[j]), &sealed[j], &sealed_len[j]);
    }
    for (int j = N - 1; j >= 0; j--) {
        struct cf_seal_ad ad = base_ad;
        ad.project_id = ids[j];
        cr_assert_eq(
            open_expect(kr, &projects[j], &ad, sealed[j], sealed_len[j], ids[j], strlen(ids[j])),
            CF_OK, "project %d", j);
        free(sealed[j]);
        free(projects[j].wrapped);
    }
    cf_keyring_free(kr);
}

Test(threads, free_null_is_noop)
{
    cf_keyring_free(NULL);
}

/* ---- tokens ---- */

TestSuite(token, .init = setup, .fini = teardown);

static bool is_b64url(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

Test(token, format_is_prefix_and_43_base64url)
{
    static const char *const prefixes[] = {"cfadm_", "", "x", "sixteen_chars_ok"};
    for (size_t i = 0; i < CF_ARRAY_SIZE(prefixes); i++) {
        char a[CF_TOKEN_MAX], b[CF_TOKEN_MAX];
        size_t plen = strlen(prefixes[i]);
        cf_token_new(prefixes[i], a, sizeof(a));
        cf_token_new(prefixes[i], b, sizeof(b));
        cr_assert_eq(strlen(a), plen + 43, "'%s'", a);
        cr_assert_eq(strncmp(a, prefixes[i], plen), 0, "'%s'", a);
        cr_assert(is_b64url(a + plen, 43), "'%s'", a);
        cr_assert_str_neq(a, b, "two tokens are equal");
        /* 32 random bytes: decodes back to exactly 32 bytes. */
        uint8_t raw[64];
        size_t got = 0;
        cr_assert_eq(sodium_base642bin(raw, sizeof(raw), a + plen, 43, NULL, &got, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
        cr_assert_eq(got, 32);
        sodium_memzero(a, sizeof(a));
        sodium_memzero(b, sizeof(b));
    }
}

Test(token, overlong_prefix_is_a_bug, .signal = SIGABRT)
{
    char out[CF_TOKEN_MAX];
    cf_token_new("seventeen_chars__", out, sizeof(out));
}

Test(token, small_buffer_is_a_bug, .signal = SIGABRT)
{
    char out[CF_TOKEN_MAX - 1];
    cf_token_new("cfadm_", out, sizeof(out));
}

Test(token, hash_is_deterministic_and_keyed)
{
    char token[CF_TOKEN_MAX];
    cf_token_new("cfadm_", token, sizeof(token));
    size_t n = strlen(token);
    uint8_t h1[CF_TOKEN_HASH_BYTES], h2[CF_TOKEN_HASH_BYTES], plain[CF_TOKEN_HASH_BYTES];
    cf_token_hash(token, n, h1);
    cf_token_hash(token, n, h2);
    cr_assert_eq(memcmp(h1, h2, sizeof(h1)), 0);
    cr_assert(cf_token_hash_equal(h1, h2));
    /* Not an unkeyed hash of the token. */
    crypto_generichash(plain, sizeof(plain), (const uint8_t *)token, n, NULL, 0);
    cr_assert_neq(memcmp(h1, plain, sizeof(h1)), 0);
    /* Only the first n bytes count, and every byte does. */
    char copy[CF_TOKEN_MAX];
    memcpy(copy, token, sizeof(copy));
    copy[n] = 'Z';
    cf_token_hash(copy, n, h2);
    cr_assert(cf_token_hash_equal(h1, h2));
    for (size_t i = 0; i < n; i++) {
        memcpy(copy, token, sizeof(copy));
        copy[i] ^= 0x01;
        cf_token_hash(copy, n, h2);
        cr_assert_not(cf_token_hash_equal(h1, h2), "byte %zu ignored", i);
    }
    cf_token_hash(token, n - 1, h2);
    cr_assert_not(cf_token_hash_equal(h1, h2));
    cf_token_hash("", 0, h2);
    cr_assert_not(cf_token_hash_equal(h1, h2));
    sodium_memzero(token, sizeof(token));
    sodium_memzero(copy, sizeof(copy));
}

Test(token, hash_equal_checks_every_byte)
{
    uint8_t a[CF_TOKEN_HASH_BYTES], b[CF_TOKEN_HASH_BYTES];
    randombytes_buf(a, sizeof(a));
    memcpy(b, a, sizeof(a));
    cr_assert(cf_token_hash_equal(a, b));
    for (size_t i = 0; i < sizeof(a); i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            cr_assert_not(cf_token_hash_equal(a, b), "byte %zu bit %d", i, bit);
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    cr_assert(cf_token_hash_equal(a, b));
}
