/* Root key, project data keys and value sealing (see keyring.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "crypto/keyring.h"
#include "util/str.h"
#include "util/file.h"
#include "util/banned.h"

#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define CACHE_MAX 1024
#define CHECK_TEXT "coffer root key check v1"

/* Sealed blob layout: 1 format byte, nonce, ciphertext, tag. The format byte lets a later version
 * change the construction without guessing. */
#define FORMAT_V1 0x01
#define OVERHEAD (1 + NONCE_BYTES + TAG_BYTES)
#define WRAPPED_BYTES (KEY_BYTES + OVERHEAD)
/* The cache's copy of a project id or server key label ("~audit"). */
#define CACHE_ID_MAX 64
/* Room for the opened CHECK_TEXT. */
#define CHECK_TEXT_MAX 64
/* The value version as it goes into associated data: 8 bytes, little-endian. */
#define VERSION_AD_BYTES 8

_Static_assert(CF_KEYRING_KEY_BYTES == KEY_BYTES, "unwrapped keys are project-key sized");
_Static_assert(CF_SUBKEY_BYTES >= crypto_generichash_BYTES_MIN &&
                   CF_SUBKEY_BYTES <= crypto_generichash_BYTES_MAX,
               "a subkey is one BLAKE2b output");
_Static_assert(sizeof(CHECK_TEXT) < CHECK_TEXT_MAX, "the check text fits its buffer");
#define PROJECT_AD_MAX 256

/* A cache entry answers only for the exact wrapped blob it was unwrapped from, so that a result
 * never depends on what is cached: a wrong or stale wrapped key fails the same way whether or not
 * the project is cached. */
struct cached_key {
    char project_id[CACHE_ID_MAX];
    uint8_t wrapped[WRAPPED_BYTES];
    uint8_t *key; /* sodium_malloc'd, KEY_BYTES */
};

struct cf_keyring {
    uint8_t *root; /* sodium_malloc'd, KEY_BYTES */
    pthread_mutex_t lock;
    struct cached_key cache[CACHE_MAX];
    size_t cached;
};

void cf_keyring_generate_root(uint8_t key[CF_ROOT_KEY_BYTES])
{
    randombytes_buf(key, CF_ROOT_KEY_BYTES);
}

enum cf_rc cf_keyring_from_bytes(const uint8_t key[CF_ROOT_KEY_BYTES], struct cf_keyring **out,
                                 struct cf_err *err)
{
    /* sodium_malloc needs the library initialised; sodium_init is idempotent and thread-safe. */
    if (sodium_init() < 0)
        return cf_err_set(err, CF_ECRYPTO, "cannot initialise libsodium");
    struct cf_keyring *kr = calloc(1, sizeof(*kr));
    if (!kr)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    kr->root = sodium_malloc(KEY_BYTES);
    if (!kr->root) {
        free(kr);
        return cf_err_set(err, CF_ENOMEM, "cannot allocate locked memory for the root key");
    }
    memcpy(kr->root, key, KEY_BYTES);
    sodium_mprotect_readonly(kr->root);
    pthread_mutex_init(&kr->lock, NULL);
    *out = kr;
    return CF_OK;
}

void cf_keyring_free(struct cf_keyring *kr)
{
    if (!kr)
        return;
    for (size_t i = 0; i < kr->cached; i++)
        sodium_free(kr->cache[i].key);
    sodium_free(kr->root); /* sodium_free wipes before unmapping */
    pthread_mutex_destroy(&kr->lock);
    free(kr);
}

void cf_keyring_export_root(struct cf_keyring *kr, uint8_t key[CF_ROOT_KEY_BYTES])
{
    memcpy(key, kr->root, CF_ROOT_KEY_BYTES);
}

static enum cf_rc decode_key(const char *b64, size_t len, uint8_t key[CF_ROOT_KEY_BYTES],
                             const char *what, struct cf_err *err)
{
    static const int variants[] = {
        sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
        sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING};
    while (len && (b64[len - 1] == '\n' || b64[len - 1] == '\r' || b64[len - 1] == ' '))
        len--;
    for (size_t i = 0; i < CF_ARRAY_SIZE(variants); i++) {
        size_t got = 0;
        const char *end = NULL;
        if (sodium_base642bin(key, CF_ROOT_KEY_BYTES, b64, len, NULL, &got, &end, variants[i]) ==
                0 &&
            got == CF_ROOT_KEY_BYTES && end == b64 + len)
            return CF_OK;
    }
    sodium_memzero(key, CF_ROOT_KEY_BYTES);
    return cf_err_set(
        err, CF_EINVAL,
        "%s is not base64 of exactly 32 bytes (generate one with: openssl rand -base64 32)", what);
}

enum cf_rc cf_keyring_read_root_file(const char *path, uint8_t key[CF_ROOT_KEY_BYTES],
                                     struct cf_err *err)
{
    char text[256];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return cf_err_set(err, CF_ENOTFOUND, "root key file '%s' does not exist", path);
        return cf_err_set(err, CF_EIO, "cannot open root key file '%s': %s", path, strerror(errno));
    }
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n < 0)
        return cf_err_set(err, CF_EIO, "cannot read root key file '%s'", path);
    enum cf_rc rc = decode_key(text, (size_t)n, key, "the root key file", err);
    sodium_memzero(text, sizeof(text));
    return rc;
}

/* Writes the key as base64 to data_dir/name, whole and with mode 0600 (util/file.h): replacing
 * the file, or (exclusive) only when it does not exist yet (CF_EEXIST then). The text is wiped. */
static enum cf_rc write_key_file(const char *data_dir, const char *name,
                                 const uint8_t key[CF_ROOT_KEY_BYTES], bool exclusive,
                                 struct cf_err *err)
{
    char path[4096];
    char text[sodium_base64_ENCODED_LEN(CF_ROOT_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL) + 1];

    int n = snprintf(path, sizeof(path), "%s/%s", data_dir, name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return cf_err_set(err, CF_EINVAL, "data directory path '%.200s...' is too long", data_dir);
    sodium_bin2base64(text, sizeof(text) - 1, key, CF_ROOT_KEY_BYTES,
                      sodium_base64_VARIANT_ORIGINAL);
    size_t len = strlen(text);
    text[len++] = '\n';
    enum cf_rc rc =
        exclusive ? cf_file_create(path, text, len, err) : cf_file_replace(path, text, len, err);
    sodium_memzero(text, sizeof(text));
    return rc;
}

enum cf_rc cf_keyring_write_root_file(const char *data_dir, const char *name,
                                      const uint8_t key[CF_ROOT_KEY_BYTES], struct cf_err *err)
{
    return write_key_file(data_dir, name, key, false, err);
}

enum cf_rc cf_keyring_load(const char *data_dir, const char *root_key_b64, bool create,
                           struct cf_keyring **out, struct cf_err *err)
{
    uint8_t key[CF_ROOT_KEY_BYTES];
    char path[4096];
    enum cf_rc rc;

    if (root_key_b64) {
        rc = decode_key(root_key_b64, strlen(root_key_b64), key, "COFFER_ROOT_KEY", err);
        if (rc != CF_OK)
            return rc;
    } else {
        int n = data_dir ? snprintf(path, sizeof(path), "%s/%s", data_dir, CF_ROOT_KEY_FILE) : -1;
        if (n < 0 || (size_t)n >= sizeof(path))
            return cf_err_set(err, CF_EINVAL, "no usable data directory for the root key file");
        rc = cf_keyring_read_root_file(path, key, err);
        if (rc == CF_ENOTFOUND && create) {
            cf_keyring_generate_root(key);
            rc = write_key_file(data_dir, CF_ROOT_KEY_FILE, key, true, err);
            if (rc == CF_EEXIST) /* another process created it first: use its key, not ours */
                rc = cf_keyring_read_root_file(path, key, err);
        }
        if (rc != CF_OK)
            goto out;
    }
    rc = cf_keyring_from_bytes(key, out, err);
out:
    sodium_memzero(key, sizeof(key));
    return rc;
}

/* AEAD with a fresh random nonce: out = format || nonce || ciphertext || tag. */
static enum cf_rc seal_raw(const uint8_t *key, const uint8_t *ad, size_t ad_len, const void *plain,
                           size_t n, uint8_t **out, size_t *out_len, struct cf_err *err)
{
    if (n > SIZE_MAX - OVERHEAD || n > crypto_aead_xchacha20poly1305_ietf_MESSAGEBYTES_MAX)
        return cf_err_set(err, CF_ETOOLARGE, "value too large to seal");
    uint8_t *blob = malloc(n + OVERHEAD);
    if (!blob)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    blob[0] = FORMAT_V1;
    randombytes_buf(blob + 1, NONCE_BYTES);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(blob + 1 + NONCE_BYTES, &clen, plain, n, ad, ad_len,
                                               NULL, blob + 1, key);
    *out = blob;
    *out_len = 1 + NONCE_BYTES + (size_t)clen;
    return CF_OK;
}

/* Opens into dst, which must hold blob_len - OVERHEAD bytes. */
static bool open_raw(const uint8_t *key, const uint8_t *ad, size_t ad_len, const uint8_t *blob,
                     size_t blob_len, uint8_t *dst)
{
    if (blob_len < OVERHEAD || blob[0] != FORMAT_V1)
        return false;
    unsigned long long mlen = 0;
    return crypto_aead_xchacha20poly1305_ietf_decrypt(dst, &mlen, NULL, blob + 1 + NONCE_BYTES,
                                                      blob_len - 1 - NONCE_BYTES, ad, ad_len,
                                                      blob + 1, key) == 0;
}

/* The associated data of a wrapped project key: a label, a NUL and the whole project id. An id too
 * long for it is refused rather than cut, which would let ids sharing a prefix share a wrapped key.
 */
static enum cf_rc project_key_ad(const char *project_id, uint8_t ad[PROJECT_AD_MAX], size_t *ad_len,
                                 struct cf_err *err)
{
    int n = snprintf((char *)ad, PROJECT_AD_MAX, "coffer project key v1%c%s", 0, project_id);
    if (n < 0 || (size_t)n >= PROJECT_AD_MAX)
        return cf_err_set(err, CF_EINVAL, "project id '%.64s...' is too long", project_id);
    *ad_len = (size_t)n;
    return CF_OK;
}

enum cf_rc cf_keyring_make_check(struct cf_keyring *kr, uint8_t **check, size_t *check_len,
                                 struct cf_err *err)
{
    return seal_raw(kr->root, (const uint8_t *)"check", 5, CHECK_TEXT, strlen(CHECK_TEXT), check,
                    check_len, err);
}

enum cf_rc cf_keyring_verify_check(struct cf_keyring *kr, const uint8_t *check, size_t check_len,
                                   struct cf_err *err)
{
    uint8_t text[CHECK_TEXT_MAX];
    if (check_len < OVERHEAD || check_len - OVERHEAD >= sizeof(text) ||
        !open_raw(kr->root, (const uint8_t *)"check", 5, check, check_len, text))
        return cf_err_set(
            err, CF_ECRYPTO,
            "the root key does not match this store (wrong COFFER_ROOT_KEY or root.key)");
    return CF_OK;
}

enum cf_rc cf_keyring_new_project_key(struct cf_keyring *kr, const char *project_id,
                                      uint8_t **wrapped, size_t *wrapped_len, struct cf_err *err)
{
    uint8_t ad[PROJECT_AD_MAX];
    size_t ad_len = 0;
    enum cf_rc rc = project_key_ad(project_id, ad, &ad_len, err);
    if (rc != CF_OK)
        return rc;
    uint8_t *key = sodium_malloc(KEY_BYTES);
    if (!key)
        return cf_err_set(err, CF_ENOMEM, "cannot allocate locked memory");
    crypto_aead_xchacha20poly1305_ietf_keygen(key);
    rc = seal_raw(kr->root, ad, ad_len, key, KEY_BYTES, wrapped, wrapped_len, err);
    sodium_free(key);
    return rc;
}

static enum cf_rc unwrap(struct cf_keyring *kr, const char *project_id, const uint8_t *wrapped,
                         size_t wrapped_len, uint8_t *key, struct cf_err *err)
{
    uint8_t ad[PROJECT_AD_MAX];
    size_t ad_len = 0;
    enum cf_rc rc = project_key_ad(project_id, ad, &ad_len, err);
    if (rc != CF_OK)
        return rc;
    if (wrapped_len != WRAPPED_BYTES || !open_raw(kr->root, ad, ad_len, wrapped, wrapped_len, key))
        return cf_err_set(err, CF_ECRYPTO, "cannot unwrap the data key of project '%s'",
                          project_id);
    return CF_OK;
}

enum cf_rc cf_keyring_unwrap_key(struct cf_keyring *kr, const char *label, const uint8_t *wrapped,
                                 size_t wrapped_len, uint8_t out[CF_KEYRING_KEY_BYTES],
                                 struct cf_err *err)
{
    return unwrap(kr, label, wrapped, wrapped_len, out, err);
}

enum cf_rc cf_keyring_rewrap(struct cf_keyring *from, struct cf_keyring *to, const char *project_id,
                             const uint8_t *wrapped, size_t wrapped_len, uint8_t **out,
                             size_t *out_len, struct cf_err *err)
{
    uint8_t ad[PROJECT_AD_MAX];
    size_t ad_len = 0;
    enum cf_rc rc = project_key_ad(project_id, ad, &ad_len, err);
    if (rc != CF_OK)
        return rc;
    uint8_t *key = sodium_malloc(KEY_BYTES);
    if (!key)
        return cf_err_set(err, CF_ENOMEM, "cannot allocate locked memory");
    rc = unwrap(from, project_id, wrapped, wrapped_len, key, err);
    if (rc == CF_OK)
        rc = seal_raw(to->root, ad, ad_len, key, KEY_BYTES, out, out_len, err);
    sodium_free(key);
    return rc;
}

/* Unwrapped data keys are cached by project id and wrapped blob, one entry per project: a rewrapped
 * blob (after root key rotation) replaces the old one. */
static enum cf_rc project_key(struct cf_keyring *kr, const char *project_id, const uint8_t *wrapped,
                              size_t wrapped_len, uint8_t *key, struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    struct cached_key *slot = NULL;
    pthread_mutex_lock(&kr->lock);
    for (size_t i = 0; i < kr->cached; i++) {
        if (strcmp(kr->cache[i].project_id, project_id) == 0) {
            slot = &kr->cache[i];
            break;
        }
    }
    if (slot && wrapped_len == WRAPPED_BYTES &&
        memcmp(slot->wrapped, wrapped, WRAPPED_BYTES) == 0) {
        memcpy(key, slot->key, KEY_BYTES);
        goto out;
    }
    rc = unwrap(kr, project_id, wrapped, wrapped_len, key, err);
    if (rc != CF_OK || strlen(project_id) >= sizeof(kr->cache[0].project_id))
        goto out;
    if (!slot && kr->cached < CACHE_MAX) {
        uint8_t *copy = sodium_malloc(KEY_BYTES);
        if (copy) {
            slot = &kr->cache[kr->cached++];
            cf_strlcpy(slot->project_id, project_id, sizeof(slot->project_id));
            slot->key = copy;
        }
    }
    if (slot) {
        memcpy(slot->wrapped, wrapped, WRAPPED_BYTES);
        memcpy(slot->key, key, KEY_BYTES);
    }
out:
    pthread_mutex_unlock(&kr->lock);
    return rc;
}

void cf_keyring_forget(struct cf_keyring *kr, const char *project_id)
{
    pthread_mutex_lock(&kr->lock);
    for (size_t i = 0; i < kr->cached; i++) {
        if (strcmp(kr->cache[i].project_id, project_id) == 0) {
            sodium_free(kr->cache[i].key);
            kr->cache[i] = kr->cache[--kr->cached];
            break;
        }
    }
    pthread_mutex_unlock(&kr->lock);
}

/* Associated data: a label and each field NUL-separated, then the version as 8 little-endian bytes.
 * Fields cannot contain NUL (they are validated names), so the encoding is unambiguous. The label
 * and the ids come first, so that the values of one environment share that part (the opener's
 * prefix). Each helper appends to ad[0..*len) and fails when the room runs out. */
static bool ad_put(uint8_t ad[CF_KEYRING_AD_MAX], size_t *len, const char *field)
{
    size_t n = strlen(field) + 1;
    if (n > CF_KEYRING_AD_MAX - *len)
        return false;
    memcpy(ad + *len, field, n);
    *len += n;
    return true;
}

static bool ad_prefix(uint8_t ad[CF_KEYRING_AD_MAX], size_t *len, const char *project_id,
                      const char *env_id)
{
    *len = 0;
    return ad_put(ad, len, "coffer value v1") && ad_put(ad, len, project_id) &&
           ad_put(ad, len, env_id);
}

static bool ad_value(uint8_t ad[CF_KEYRING_AD_MAX], size_t *len, const char *path, const char *key,
                     int64_t version)
{
    if (!ad_put(ad, len, path) || !ad_put(ad, len, key) ||
        CF_KEYRING_AD_MAX - *len < VERSION_AD_BYTES)
        return false;
    for (int i = 0; i < VERSION_AD_BYTES; i++)
        ad[(*len)++] = (uint8_t)((uint64_t)version >> (8 * i));
    return true;
}

static enum cf_rc ad_too_long(const char *key, struct cf_err *err)
{
    return cf_err_set(err, CF_ETOOLARGE, "the names of '%.64s' are too long to seal", key);
}

enum cf_rc cf_keyring_seal(struct cf_keyring *kr, const uint8_t *wrapped, size_t wrapped_len,
                           const struct cf_seal_ad *ad, const void *plain, size_t n,
                           uint8_t **sealed, size_t *sealed_len, struct cf_err *err)
{
    uint8_t key[KEY_BYTES];
    uint8_t adbuf[CF_KEYRING_AD_MAX];
    size_t ad_len = 0;
    if (!ad_prefix(adbuf, &ad_len, ad->project_id, ad->env_id) ||
        !ad_value(adbuf, &ad_len, ad->path, ad->key, ad->version))
        return ad_too_long(ad->key, err);
    enum cf_rc rc = project_key(kr, ad->project_id, wrapped, wrapped_len, key, err);
    if (rc == CF_OK)
        rc = seal_raw(key, adbuf, ad_len, plain, n, sealed, sealed_len, err);
    sodium_memzero(key, sizeof(key));
    return rc;
}

enum cf_rc cf_keyring_opener_init(struct cf_keyring_opener *o, struct cf_keyring *kr,
                                  const uint8_t *wrapped, size_t wrapped_len,
                                  const char *project_id, const char *env_id, struct cf_err *err)
{
    o->ready = false;
    if (!ad_prefix(o->ad, &o->prefix_len, project_id, env_id))
        return cf_err_set(err, CF_ETOOLARGE, "the ids of project '%.64s' are too long to seal",
                          project_id);
    enum cf_rc rc = project_key(kr, project_id, wrapped, wrapped_len, o->key, err);
    o->ready = rc == CF_OK;
    return rc;
}

enum cf_rc cf_keyring_opener_open(struct cf_keyring_opener *o, const char *path, const char *key,
                                  int64_t version, const uint8_t *sealed, size_t sealed_len,
                                  struct cf_buf *out, struct cf_err *err)
{
    size_t start = out->len;
    size_t ad_len = o->prefix_len;
    if (!o->ready)
        CF_BUG("cf_keyring_opener_open on an opener that is not initialised");
    if (!ad_value(o->ad, &ad_len, path, key, version))
        return ad_too_long(key, err);
    if (sealed_len < OVERHEAD)
        return cf_err_set(err, CF_ECRYPTO, "value of '%s' version %lld is corrupt", key,
                          (long long)version);
    /* Reserve room in out, decrypt in place there, and trim on failure. */
    size_t plain_len = sealed_len - OVERHEAD;
    enum cf_rc rc =
        cf_buf_append(out, sealed, plain_len); /* placeholder bytes, overwritten below */
    if (rc != CF_OK)
        return cf_err_set(err, rc, "value of '%s' is too large", key);
    if (!open_raw(o->key, o->ad, ad_len, sealed, sealed_len, (uint8_t *)out->data + start)) {
        sodium_memzero(out->data + start, plain_len);
        out->len = start;
        out->data[start] = '\0';
        return cf_err_set(err, CF_ECRYPTO,
                          "value of '%s' version %lld failed authentication (moved or tampered "
                          "ciphertext, or wrong key)",
                          key, (long long)version);
    }
    return CF_OK;
}

void cf_keyring_opener_release(struct cf_keyring_opener *o)
{
    sodium_memzero(o->key, sizeof(o->key));
    o->ready = false;
}

enum cf_rc cf_keyring_open(struct cf_keyring *kr, const uint8_t *wrapped, size_t wrapped_len,
                           const struct cf_seal_ad *ad, const uint8_t *sealed, size_t sealed_len,
                           struct cf_buf *out, struct cf_err *err)
{
    struct cf_keyring_opener o;
    enum cf_rc rc =
        cf_keyring_opener_init(&o, kr, wrapped, wrapped_len, ad->project_id, ad->env_id, err);
    if (rc == CF_OK)
        rc = cf_keyring_opener_open(&o, ad->path, ad->key, ad->version, sealed, sealed_len, out,
                                    err);
    cf_keyring_opener_release(&o);
    return rc;
}

void cf_keyring_derive(struct cf_keyring *kr, const char *context, uint8_t out[CF_SUBKEY_BYTES])
{
    /* BLAKE2b keyed with the root key over a labelled context: a PRF, so subkeys for different
     * labels are independent and reveal nothing about the root key. */
    static const char label[] = "coffer subkey v1";
    crypto_generichash_state state;
    crypto_generichash_init(&state, kr->root, KEY_BYTES, CF_SUBKEY_BYTES);
    crypto_generichash_update(&state, (const uint8_t *)label, sizeof(label));
    crypto_generichash_update(&state, (const uint8_t *)context, strlen(context));
    crypto_generichash_final(&state, out, CF_SUBKEY_BYTES);
    sodium_memzero(&state, sizeof(state));
}
