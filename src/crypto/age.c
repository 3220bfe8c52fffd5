/* Encryption to an age X25519 recipient (see age.h). */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <sodium.h>

#include "crypto/age.h"
#include "util/bech32.h"
#include "util/buf.h"
#include "util/banned.h"

#define FILE_KEY_BYTES 16
#define KEY_BYTES 32 /* every derived key, and an HMAC-SHA-256 */
#define PAYLOAD_NONCE_BYTES 16
#define CHUNK_BYTES (64 * 1024)
#define TAG_BYTES crypto_aead_chacha20poly1305_ietf_ABYTES
#define X25519_INFO "age-encryption.org/v1/X25519"
#define ARMOR_BEGIN "-----BEGIN AGE ENCRYPTED FILE-----\n"
#define ARMOR_END "-----END AGE ENCRYPTED FILE-----\n"
#define ARMOR_COLUMNS 64
#define RECIPIENT_DECODE_MAX 2048
/* unpadded base64 of 32 bytes, with its NUL */
#define B64_KEY_LEN sodium_base64_ENCODED_LEN(KEY_BYTES, sodium_base64_VARIANT_ORIGINAL_NO_PADDING)

_Static_assert(crypto_scalarmult_BYTES == CF_AGE_RECIPIENT_BYTES, "an X25519 point");
_Static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == KEY_BYTES, "a ChaCha20 key");

enum cf_rc cf_age_recipient_parse(const char *text, uint8_t key[CF_AGE_RECIPIENT_BYTES],
                                  struct cf_err *err)
{
    char hrp[CF_BECH32_HRP_MAX + 1];
    /* room for other recipient types' keys too, so that their prefix is what the error names */
    uint8_t data[RECIPIENT_DECODE_MAX];
    size_t data_len = 0;
    struct cf_err why;

    cf_err_clear(&why);
    if (cf_bech32_decode(text, hrp, data, sizeof(data), &data_len, &why) != CF_OK)
        return cf_err_set(err, CF_EINVAL, "'%s' is not a valid age recipient: %s", text, why.msg);
    if (strcmp(hrp, "age") != 0)
        return cf_err_set(err, CF_EINVAL,
                          "'%s' is not an age X25519 recipient: its prefix is '%s', not 'age' "
                          "(plugin and post-quantum recipients are not supported)",
                          text, hrp);
    if (data_len != CF_AGE_RECIPIENT_BYTES)
        return cf_err_set(err, CF_EINVAL, "'%s' is not a valid age recipient: %zu bytes, not %d",
                          text, data_len, CF_AGE_RECIPIENT_BYTES);
    /* a low-order point gives an all-zero shared secret for every scalar (X25519 clamps them to
     * multiples of the cofactor): nothing could be encrypted to it, so it is refused here */
    uint8_t probe_scalar[crypto_scalarmult_SCALARBYTES] = {9};
    uint8_t probe[crypto_scalarmult_BYTES];
    if (crypto_scalarmult(probe, probe_scalar, data) != 0)
        return cf_err_set(err, CF_EINVAL,
                          "'%s' is not a usable age recipient (a low-order X25519 point)", text);
    memcpy(key, data, CF_AGE_RECIPIENT_BYTES);
    return CF_OK;
}

/* HKDF-SHA-256 (RFC 5869) of ikm with salt (none when salt_len is 0) and info, 32 bytes. */
static enum cf_rc hkdf(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
                       const char *info, uint8_t out[KEY_BYTES], struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    OSSL_PARAM params[5], *p = params;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;

    *p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
    if (salt_len)
        *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
    *p = OSSL_PARAM_construct_end();
    if (!ctx || EVP_KDF_derive(ctx, out, KEY_BYTES, params) != 1)
        rc = cf_err_set(err, CF_ECRYPTO, "HKDF-SHA-256 failed");
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return rc;
}

/* The X25519 stanza wrapping file_key to recipient, and the header around it up to and
 * including its "---" mark (what the MAC covers), appended to header. */
static enum cf_rc x25519_stanza(const uint8_t recipient[CF_AGE_RECIPIENT_BYTES],
                                const uint8_t file_key[FILE_KEY_BYTES], struct cf_buf *header,
                                struct cf_err *err)
{
    uint8_t eph_secret[crypto_scalarmult_SCALARBYTES];
    uint8_t eph_share[crypto_scalarmult_BYTES];
    uint8_t shared[crypto_scalarmult_BYTES];
    uint8_t salt[2 * crypto_scalarmult_BYTES];
    uint8_t wrap_key[KEY_BYTES];
    uint8_t body[FILE_KEY_BYTES + TAG_BYTES];
    uint8_t zero_nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES] = {0};
    char share_b64[B64_KEY_LEN], body_b64[B64_KEY_LEN];
    enum cf_rc rc = CF_OK;

    randombytes_buf(eph_secret, sizeof(eph_secret));
    if (crypto_scalarmult_base(eph_share, eph_secret) != 0 ||
        crypto_scalarmult(shared, eph_secret, recipient) != 0) {
        /* libsodium refuses an all-zero shared secret, as age requires */
        rc = cf_err_set(err, CF_ECRYPTO, "the age recipient is not a usable X25519 public key");
        goto out;
    }
    memcpy(salt, eph_share, sizeof(eph_share));
    memcpy(salt + sizeof(eph_share), recipient, CF_AGE_RECIPIENT_BYTES);
    rc = hkdf(shared, sizeof(shared), salt, sizeof(salt), X25519_INFO, wrap_key, err);
    if (rc != CF_OK)
        goto out;
    crypto_aead_chacha20poly1305_ietf_encrypt(body, NULL, file_key, FILE_KEY_BYTES, NULL, 0, NULL,
                                              zero_nonce, wrap_key);
    sodium_bin2base64(share_b64, sizeof(share_b64), eph_share, sizeof(eph_share),
                      sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    sodium_bin2base64(body_b64, sizeof(body_b64), body, sizeof(body),
                      sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    /* the body (43 characters) is shorter than a full 64-column line, so it is its final line */
    rc = cf_buf_printf(header, "age-encryption.org/v1\n-> X25519 %s\n%s\n---", share_b64, body_b64);
    if (rc != CF_OK)
        cf_err_set(err, rc, "out of memory");
out:
    sodium_memzero(eph_secret, sizeof(eph_secret));
    sodium_memzero(shared, sizeof(shared));
    sodium_memzero(wrap_key, sizeof(wrap_key));
    return rc;
}

/* Appends the header MAC line: HMAC-SHA-256 under HKDF(file key, info "header") of the header so
 * far. */
static enum cf_rc header_mac(const uint8_t file_key[FILE_KEY_BYTES], struct cf_buf *header,
                             struct cf_err *err)
{
    uint8_t mac_key[KEY_BYTES], mac[KEY_BYTES];
    unsigned int mac_len = sizeof(mac);
    char mac_b64[B64_KEY_LEN];
    enum cf_rc rc = hkdf(file_key, FILE_KEY_BYTES, NULL, 0, "header", mac_key, err);
    if (rc != CF_OK)
        goto out;
    if (!HMAC(EVP_sha256(), mac_key, sizeof(mac_key), (const unsigned char *)header->data,
              header->len, mac, &mac_len) ||
        mac_len != sizeof(mac)) {
        rc = cf_err_set(err, CF_ECRYPTO, "HMAC-SHA-256 failed");
        goto out;
    }
    sodium_bin2base64(mac_b64, sizeof(mac_b64), mac, sizeof(mac),
                      sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    rc = cf_buf_printf(header, " %s\n", mac_b64);
    if (rc != CF_OK)
        cf_err_set(err, rc, "out of memory");
out:
    sodium_memzero(mac_key, sizeof(mac_key));
    return rc;
}

/* Appends the payload: a fresh nonce, then the plaintext in STREAM chunks of 64 KiB under
 * HKDF(file key, salt nonce, info "payload"), the last chunk flagged (an empty plaintext is one
 * empty final chunk). */
static enum cf_rc payload(const uint8_t file_key[FILE_KEY_BYTES], const uint8_t *plaintext,
                          size_t len, struct cf_buf *file, struct cf_err *err)
{
    uint8_t nonce[PAYLOAD_NONCE_BYTES];
    uint8_t payload_key[KEY_BYTES];
    uint8_t chunk_nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
    enum cf_rc rc;
    size_t offset = 0;
    uint64_t counter = 0;

    randombytes_buf(nonce, sizeof(nonce));
    rc = hkdf(file_key, FILE_KEY_BYTES, nonce, sizeof(nonce), "payload", payload_key, err);
    if (rc != CF_OK)
        goto out;
    rc = cf_buf_append(file, nonce, sizeof(nonce));
    if (rc == CF_OK)
        rc = cf_buf_reserve(file, len + (len / CHUNK_BYTES + 1) * TAG_BYTES);
    if (rc != CF_OK) {
        cf_err_set(err, rc, "out of memory");
        goto out;
    }
    for (;;) {
        size_t n = len - offset < CHUNK_BYTES ? len - offset : CHUNK_BYTES;
        bool last = offset + n == len;
        /* 11 bytes of big-endian counter, then the last-chunk flag */
        memset(chunk_nonce, 0, sizeof(chunk_nonce));
        for (int i = 0; i < 8; i++)
            chunk_nonce[10 - i] = (uint8_t)(counter >> (8 * i));
        chunk_nonce[11] = last ? 1 : 0;
        crypto_aead_chacha20poly1305_ietf_encrypt((unsigned char *)file->data + file->len, NULL,
                                                  plaintext + offset, n, NULL, 0, NULL, chunk_nonce,
                                                  payload_key);
        file->len += n + TAG_BYTES; /* room reserved above */
        file->data[file->len] = '\0';
        offset += n;
        counter++;
        if (last)
            break;
    }
out:
    sodium_memzero(payload_key, sizeof(payload_key));
    return rc;
}

/* The PEM armor of the binary file: standard padded base64 at 64 columns. */
static enum cf_rc armor(const struct cf_buf *file, char **out, struct cf_err *err)
{
    size_t b64_size = sodium_base64_ENCODED_LEN(file->len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(b64_size);
    struct cf_buf text;
    enum cf_rc rc = CF_OK;

    cf_buf_init(&text, 0);
    if (!b64) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    sodium_bin2base64(b64, b64_size, (const unsigned char *)file->data, file->len,
                      sodium_base64_VARIANT_ORIGINAL);
    rc = cf_buf_puts(&text, ARMOR_BEGIN);
    for (size_t at = 0, b64_len = strlen(b64); rc == CF_OK && at < b64_len; at += ARMOR_COLUMNS) {
        size_t n = b64_len - at < ARMOR_COLUMNS ? b64_len - at : ARMOR_COLUMNS;
        rc = cf_buf_append(&text, b64 + at, n);
        if (rc == CF_OK)
            rc = cf_buf_puts(&text, "\n");
    }
    if (rc == CF_OK)
        rc = cf_buf_puts(&text, ARMOR_END);
    if (rc == CF_OK && !(*out = cf_buf_detach(&text, NULL)))
        rc = CF_ENOMEM;
    if (rc != CF_OK)
        cf_err_set(err, rc, "out of memory");
out:
    cf_buf_release(&text);
    free(b64);
    return rc;
}

enum cf_rc cf_age_encrypt_armored(const uint8_t key[CF_AGE_RECIPIENT_BYTES], const void *plaintext,
                                  size_t len, char **out, struct cf_err *err)
{
    uint8_t file_key[FILE_KEY_BYTES];
    struct cf_buf file;
    enum cf_rc rc;

    if (len > CF_AGE_PLAINTEXT_MAX)
        return cf_err_set(err, CF_ETOOLARGE, "the plaintext is longer than %d bytes",
                          CF_AGE_PLAINTEXT_MAX);
    cf_buf_init(&file, 0);
    randombytes_buf(file_key, sizeof(file_key));
    rc = x25519_stanza(key, file_key, &file, err);
    if (rc == CF_OK)
        rc = header_mac(file_key, &file, err);
    if (rc == CF_OK)
        rc = payload(file_key, plaintext, len, &file, err);
    if (rc == CF_OK)
        rc = armor(&file, out, err);
    sodium_memzero(file_key, sizeof(file_key));
    cf_buf_release(&file);
    return rc;
}
