/* The fallback cache of run and export (see fallback.h). A cache file is
 *
 *     magic "CFFBC1\n\0" (8) | saved at, ms since the epoch, big-endian (8) | nonce (24) |
 *     XChaCha20-Poly1305 ciphertext of the merged secrets as compact JSON
 *
 * with the first 16 bytes as associated data, so that the time it claims cannot be altered without
 * the key. The keys come from the token: root = BLAKE2b-256(token) under a fixed key naming this
 * use, then crypto_kdf subkeys 1 (encryption) and 2 (the file name's digest). A token is a random
 * credential of 256 bits or more, so a fast hash suffices (no password stretching). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/fallback.h"
#include "util/buf.h"
#include "util/file.h"
#include "util/time.h"
#include "util/banned.h"

#define MAGIC "CFFBC1\n"
#define MAGIC_LEN 8
#define HEADER_LEN (MAGIC_LEN + 8)
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define CACHE_MAX (CF_CLIENT_MAX_RESPONSE + HEADER_LEN + NONCE_LEN + TAG_LEN)
#define KDF_CONTEXT "cffallbk"

/* Creates dir and its missing parents with mode 0700. false with errno set on failure. */
static bool make_dirs(char *dir)
{
    for (char *slash = strchr(dir + 1, '/');; slash = strchr(slash + 1, '/')) {
        if (slash)
            *slash = '\0';
        bool made = mkdir(dir, 0700) == 0 || errno == EEXIST;
        if (slash)
            *slash = '/';
        if (!made)
            return false;
        if (!slash)
            return true;
    }
}

/* The cache directory: COFFER_FALLBACK_CACHE_DIR, else $XDG_CACHE_HOME/coffer/fallback, else
 * $HOME/.cache/coffer/fallback. */
static enum cf_rc cache_dir(struct cf_buf *out)
{
    const char *dir = getenv("COFFER_FALLBACK_CACHE_DIR");
    if (dir && *dir)
        return cf_buf_puts(out, dir);
    dir = getenv("XDG_CACHE_HOME");
    if (dir && *dir)
        return cf_buf_printf(out, "%s/coffer/fallback", dir);
    dir = getenv("HOME");
    if (!dir || !*dir)
        return CF_ENOTFOUND;
    return cf_buf_printf(out, "%s/.cache/coffer/fallback", dir);
}

/* Adds text and its terminating NUL to the digest: no two field lists run together. */
static void digest_field(crypto_generichash_state *state, const char *text)
{
    crypto_generichash_update(state, (const unsigned char *)text, strlen(text) + 1);
}

int cf_fallback_setup(struct cf_fallback *fb, const struct cf_cli *cli, const char *command,
                      const struct cf_fetch *fetch, bool login_used)
{
    static const unsigned char use[] = "coffer fallback cache key v1";
    unsigned char root[crypto_kdf_KEYBYTES], name_key[crypto_generichash_KEYBYTES];
    unsigned char name[16];
    char name_hex[2 * sizeof(name) + 1];
    crypto_generichash_state state;
    struct cf_buf path;
    struct cf_err err;
    int64_t max_age_s = 0;
    int status = CF_EXIT_FAILURE;

    cf_buf_init(&path, 0);
    cf_err_clear(&err);
    if (!fb->enabled) {
        if (fb->max_age)
            return cf_cli_usage_error(cli, "--fallback-max-age needs --fallback-cache");
        return CF_EXIT_OK;
    }
    if (login_used)
        return cf_cli_usage_error(cli,
                                  "--fallback-cache needs a token that stays the same from run "
                                  "to run (--token, COFFER_TOKEN or 'coffer login'); a login "
                                  "with the login flags makes a new one each time");
    if (cf_duration_parse(fb->max_age ? fb->max_age : CF_FALLBACK_DEFAULT_MAX_AGE, &max_age_s,
                          &err) != CF_OK)
        return cf_cli_usage_error(cli, "--fallback-max-age: %s", err.msg);
    fb->max_age_ms = max_age_s * 1000;
    const char *token = cf_client_token(cli->client);
    if (!token)
        return cf_cli_usage_error(cli, "--fallback-cache needs a token");
    fb->server = cf_client_base_url(cli->client);

    crypto_generichash(root, sizeof(root), (const unsigned char *)token, strlen(token), use,
                       sizeof(use) - 1);
    crypto_kdf_derive_from_key(fb->key, sizeof(fb->key), 1, KDF_CONTEXT, root);
    crypto_kdf_derive_from_key(name_key, sizeof(name_key), 2, KDF_CONTEXT, root);
    crypto_generichash_init(&state, name_key, sizeof(name_key), sizeof(name));
    digest_field(&state, command);
    digest_field(&state, fb->server);
    digest_field(&state, fetch->project_id);
    digest_field(&state, fetch->env);
    for (size_t i = 0; i < fetch->npaths; i++)
        digest_field(&state, fetch->paths[i]);
    char flags[] = {fetch->recursive ? 'r' : '-', fetch->include_imports ? 'i' : '-',
                    fetch->expand ? 'e' : '-', fetch->strict_refs ? 's' : '-', '\0'};
    digest_field(&state, flags);
    crypto_generichash_final(&state, name, sizeof(name));
    sodium_bin2hex(name_hex, sizeof(name_hex), name, sizeof(name));

    enum cf_rc rc = cache_dir(&path);
    if (rc == CF_ENOTFOUND) {
        status = cf_cli_fail("--fallback-cache: no cache directory (set HOME, XDG_CACHE_HOME or "
                             "COFFER_FALLBACK_CACHE_DIR)");
        goto out;
    }
    if (rc != CF_OK || !path.len) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    if (!make_dirs(path.data)) {
        status =
            cf_cli_fail("--fallback-cache: cannot create '%s': %s", path.data, strerror(errno));
        goto out;
    }
    if (cf_buf_printf(&path, "/%s.cache", name_hex) != CF_OK) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    fb->path = cf_buf_detach(&path, NULL);
    status = fb->path ? CF_EXIT_OK : cf_cli_fail("out of memory");
out:
    sodium_memzero(root, sizeof(root));
    sodium_memzero(name_key, sizeof(name_key));
    sodium_memzero(&state, sizeof(state));
    cf_buf_release(&path);
    return status;
}

static int dump_to_buf(const char *data, size_t size, void *userdata)
{
    return cf_buf_append(userdata, data, size) == CF_OK ? 0 : -1;
}

/* Encrypts set into the cache file. A failure is only a warning: the command goes on. */
static void save(const struct cf_fallback *fb, json_t *set)
{
    struct cf_buf plain, file;
    struct cf_err err;
    unsigned char header[HEADER_LEN];
    uint64_t now = (uint64_t)cf_now_ms();

    cf_err_clear(&err);
    cf_buf_init(&plain, CF_CLIENT_MAX_RESPONSE);
    cf_buf_init(&file, CACHE_MAX);
    memcpy(header, MAGIC, MAGIC_LEN);
    for (size_t i = 0; i < 8; i++)
        header[MAGIC_LEN + i] = (unsigned char)(now >> (56 - 8 * i));
    if (json_dump_callback(set, dump_to_buf, &plain, JSON_COMPACT) != 0 ||
        cf_buf_reserve(&file, HEADER_LEN + NONCE_LEN + plain.len + TAG_LEN) != CF_OK) {
        fprintf(stderr, "coffer: warning: the secrets are too large for the fallback cache\n");
        goto out;
    }
    unsigned char *at = (unsigned char *)file.data;
    memcpy(at, header, HEADER_LEN);
    randombytes_buf(at + HEADER_LEN, NONCE_LEN);
    unsigned long long sealed_len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(at + HEADER_LEN + NONCE_LEN, &sealed_len,
                                               (const unsigned char *)plain.data, plain.len, header,
                                               HEADER_LEN, NULL, at + HEADER_LEN, fb->key);
    file.len = HEADER_LEN + NONCE_LEN + (size_t)sealed_len;
    if (cf_file_replace(fb->path, file.data, file.len, &err) != CF_OK)
        fprintf(stderr, "coffer: warning: the fallback cache was not updated: %s\n", err.msg);
out:
    cf_buf_release_wipe(&plain);
    cf_buf_release(&file);
}

/* Whether the last request of cli found no server to answer: no answer at all, or a gateway in
 * front of it saying the server is down. */
static bool unreachable(const struct cf_cli *cli)
{
    if (cli->last_status == 0)
        return cli->last_rc == CF_EIO;
    return cli->last_status == 502 || cli->last_status == 503 || cli->last_status == 504;
}

/* Writes an age in ms as "3d4h", "2h5m", "4m10s" or "12s". */
static void format_age(int64_t age_ms, char *out, size_t size)
{
    int64_t s = age_ms < 0 ? 0 : age_ms / 1000;
    if (s >= 86400)
        snprintf(out, size, "%lldd%lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
    else if (s >= 3600)
        snprintf(out, size, "%lldh%lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else if (s >= 60)
        snprintf(out, size, "%lldm%llds", (long long)(s / 60), (long long)(s % 60));
    else
        snprintf(out, size, "%llds", (long long)s);
}

/* Reads the cache into *set. CF_EXIT_OK after the warning, else CF_EXIT_FAILURE saying why. */
static int load(const struct cf_fallback *fb, json_t **set)
{
    char *file = NULL;
    size_t len = 0;
    unsigned char *plain = NULL;
    unsigned long long plain_len = 0;
    struct cf_err err;
    char age_text[32], saved_text[CF_TIME_RFC3339_LEN], max_text[32];
    json_error_t json_error;
    int status = CF_EXIT_FAILURE;

    cf_err_clear(&err);
    enum cf_rc rc = cf_file_read(fb->path, CACHE_MAX, &file, &len, &err);
    if (rc == CF_ENOTFOUND) {
        status = cf_cli_fail("the server cannot be reached, and there is no fallback cache for "
                             "this token and these secrets (--fallback-cache keeps one after a "
                             "successful run)");
        goto out;
    }
    if (rc != CF_OK) {
        status = cf_cli_fail("the server cannot be reached, and the fallback cache cannot be "
                             "read: %s",
                             err.msg);
        goto out;
    }
    if (len < HEADER_LEN + NONCE_LEN + TAG_LEN || memcmp(file, MAGIC, MAGIC_LEN) != 0) {
        status = cf_cli_fail("the server cannot be reached, and the fallback cache '%s' is not a "
                             "cache file",
                             fb->path);
        goto out;
    }
    plain = malloc(len);
    if (!plain) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            plain, &plain_len, NULL, (const unsigned char *)file + HEADER_LEN + NONCE_LEN,
            len - HEADER_LEN - NONCE_LEN, (const unsigned char *)file, HEADER_LEN,
            (const unsigned char *)file + HEADER_LEN, fb->key) != 0) {
        status = cf_cli_fail("the server cannot be reached, and the fallback cache '%s' cannot "
                             "be opened with this token (made with another credential, or "
                             "damaged)",
                             fb->path);
        goto out;
    }
    uint64_t saved_at = 0;
    for (size_t i = 0; i < 8; i++)
        saved_at = saved_at << 8 | (unsigned char)file[MAGIC_LEN + i];
    int64_t age_ms = cf_now_ms() - (int64_t)saved_at;
    format_age(age_ms, age_text, sizeof(age_text));
    format_age(fb->max_age_ms, max_text, sizeof(max_text));
    cf_time_format((int64_t)saved_at, saved_text);
    if (age_ms > fb->max_age_ms) {
        status = cf_cli_fail("the server cannot be reached, and the fallback cache is %s old "
                             "(saved %s), older than --fallback-max-age %s: not used",
                             age_text, saved_text, max_text);
        goto out;
    }
    *set = json_loadb((const char *)plain, (size_t)plain_len, 0, &json_error);
    sodium_memzero(&json_error, sizeof(json_error));
    if (!json_is_object(*set)) {
        json_decref(*set);
        *set = NULL;
        status = cf_cli_fail("the fallback cache '%s' holds no secrets", fb->path);
        goto out;
    }
    fprintf(stderr,
            "coffer: WARNING: the server at %s cannot be reached; using the FALLBACK CACHE saved "
            "%s ago (%s): the secrets may be out of date\n",
            fb->server, age_text, saved_text);
    status = CF_EXIT_OK;
out:
    if (plain) {
        sodium_memzero(plain, len);
        free(plain);
    }
    if (file) {
        sodium_memzero(file, len);
        free(file);
    }
    return status;
}

int cf_fallback_apply(struct cf_fallback *fb, const struct cf_cli *cli, int status, json_t **set)
{
    if (!fb->enabled || !fb->path)
        return status;
    if (status == CF_EXIT_OK) {
        save(fb, *set);
        return status;
    }
    if (!unreachable(cli))
        return status;
    return load(fb, set);
}

void cf_fallback_release(struct cf_fallback *fb)
{
    sodium_memzero(fb->key, sizeof(fb->key));
    free(fb->path);
    fb->path = NULL;
}
