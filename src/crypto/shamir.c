/* Shamir shares of an unseal key that wraps the root key (see shamir.h). */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <libgfshare.h>
#include <sodium.h>

#include "crypto/shamir.h"
#include "util/banned.h"

#define FORMAT_V1 0x01
#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define HEADER_BYTES 3
#define AD_LABEL "coffer shamir seal v1"

_Static_assert(CF_SHAMIR_RECORD_BYTES == HEADER_BYTES + NONCE_BYTES + CF_ROOT_KEY_BYTES + TAG_BYTES,
               "the record layout");
_Static_assert(sodium_base64_ENCODED_LEN(CF_SHARE_BYTES,
                                         sodium_base64_VARIANT_URLSAFE_NO_PADDING) <=
                   CF_SHARE_TEXT_MAX,
               "a share's text fits");

/* libgfshare draws its polynomial coefficients from this hook, and overwrites its buffers with it
 * when a context is freed; it has no usable default. */
static void fill_random(unsigned char *buf, unsigned int n)
{
    randombytes_buf(buf, n);
}

static pthread_once_t random_once = PTHREAD_ONCE_INIT;

static void set_random(void)
{
    gfshare_fill_rand = fill_random;
}

/* The associated data: a label and the record's header, so that the share count and threshold
 * shown to operators cannot be altered without the record failing to open. */
static void make_ad(const uint8_t header[HEADER_BYTES], uint8_t ad[sizeof(AD_LABEL) + HEADER_BYTES])
{
    memcpy(ad, AD_LABEL, sizeof(AD_LABEL));
    memcpy(ad + sizeof(AD_LABEL), header, HEADER_BYTES);
}

enum cf_rc cf_shamir_seal(const uint8_t root[CF_ROOT_KEY_BYTES], unsigned n, unsigned threshold,
                          uint8_t (*shares)[CF_SHARE_BYTES], uint8_t record[CF_SHAMIR_RECORD_BYTES],
                          struct cf_err *err)
{
    uint8_t *unseal_key = NULL;
    uint8_t xs[CF_SHAMIR_MAX_SHARES];
    uint8_t ad[sizeof(AD_LABEL) + HEADER_BYTES];
    gfshare_ctx *ctx = NULL;
    enum cf_rc rc = CF_OK;

    if (n < 1 || n > CF_SHAMIR_MAX_SHARES || threshold < 1 || threshold > n ||
        (threshold == 1 && n != 1))
        return cf_err_set(err, CF_EINVAL,
                          "the threshold must be 2..shares (shares at most %d), or both 1",
                          CF_SHAMIR_MAX_SHARES);
    if (sodium_init() < 0)
        return cf_err_set(err, CF_ECRYPTO, "cannot initialise libsodium");
    unseal_key = sodium_malloc(CF_ROOT_KEY_BYTES);
    if (!unseal_key)
        return cf_err_set(err, CF_ENOMEM, "cannot allocate locked memory for the unseal key");
    randombytes_buf(unseal_key, CF_ROOT_KEY_BYTES);

    record[0] = FORMAT_V1;
    record[1] = (uint8_t)n;
    record[2] = (uint8_t)threshold;
    randombytes_buf(record + HEADER_BYTES, NONCE_BYTES);
    make_ad(record, ad);
    crypto_aead_xchacha20poly1305_ietf_encrypt(record + HEADER_BYTES + NONCE_BYTES, NULL, root,
                                               CF_ROOT_KEY_BYTES, ad, sizeof(ad), NULL,
                                               record + HEADER_BYTES, unseal_key);

    if (n == 1) { /* one share: the unseal key itself */
        shares[0][0] = 1;
        memcpy(shares[0] + 1, unseal_key, CF_ROOT_KEY_BYTES);
        goto out;
    }
    for (unsigned i = 0; i < n; i++)
        xs[i] = (uint8_t)(i + 1);
    pthread_once(&random_once, set_random);
    ctx = gfshare_ctx_init_enc(xs, n, (unsigned char)threshold, CF_ROOT_KEY_BYTES);
    if (!ctx) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    gfshare_ctx_enc_setsecret(ctx, unseal_key);
    for (unsigned i = 0; i < n; i++) {
        shares[i][0] = xs[i];
        gfshare_ctx_enc_getshare(ctx, (unsigned char)i, shares[i] + 1);
    }
out:
    if (ctx)
        gfshare_ctx_free(ctx); /* overwrites its coefficients before freeing them */
    sodium_free(unseal_key);
    return rc;
}

enum cf_rc cf_shamir_record_info(const uint8_t *record, size_t len, unsigned *n,
                                 unsigned *threshold, struct cf_err *err)
{
    if (len != CF_SHAMIR_RECORD_BYTES || record[0] != FORMAT_V1 || record[2] < 1 ||
        record[2] > record[1] || record[1] > CF_SHAMIR_MAX_SHARES)
        return cf_err_set(err, CF_EINVAL, "the stored seal record is not one this version reads");
    *n = record[1];
    *threshold = record[2];
    return CF_OK;
}

enum cf_rc cf_shamir_open(const uint8_t *record, size_t len,
                          const uint8_t (*shares)[CF_SHARE_BYTES], unsigned count,
                          uint8_t root[CF_ROOT_KEY_BYTES], struct cf_err *err)
{
    uint8_t *unseal_key = NULL;
    uint8_t xs[CF_SHAMIR_MAX_SHARES];
    uint8_t ad[sizeof(AD_LABEL) + HEADER_BYTES];
    unsigned n = 0, threshold = 0;
    gfshare_ctx *ctx = NULL;
    enum cf_rc rc = cf_shamir_record_info(record, len, &n, &threshold, err);

    if (rc != CF_OK)
        return rc;
    if (count < threshold || count > CF_SHAMIR_MAX_SHARES)
        return cf_err_set(err, CF_EINVAL, "%u share(s) given, %u needed", count, threshold);
    for (unsigned i = 0; i < count; i++) {
        xs[i] = shares[i][0];
        for (unsigned j = 0; j < i; j++)
            if (xs[j] == xs[i])
                return cf_err_set(err, CF_EINVAL, "the same share was given twice");
    }
    /* sodium_malloc needs the library initialised; sodium_init is idempotent and thread-safe */
    if (sodium_init() < 0)
        return cf_err_set(err, CF_ECRYPTO, "cannot initialise libsodium");
    unseal_key = sodium_malloc(CF_ROOT_KEY_BYTES);
    if (!unseal_key)
        return cf_err_set(err, CF_ENOMEM, "cannot allocate locked memory for the unseal key");
    if (threshold == 1) {
        memcpy(unseal_key, shares[0] + 1, CF_ROOT_KEY_BYTES);
    } else {
        pthread_once(&random_once, set_random);
        ctx = gfshare_ctx_init_dec(xs, count, CF_ROOT_KEY_BYTES);
        if (!ctx) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        for (unsigned i = 0; i < count; i++)
            gfshare_ctx_dec_giveshare(ctx, (unsigned char)i, (unsigned char *)shares[i] + 1);
        gfshare_ctx_dec_extract(ctx, unseal_key);
    }
    make_ad(record, ad);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            root, NULL, NULL, record + HEADER_BYTES + NONCE_BYTES, CF_ROOT_KEY_BYTES + TAG_BYTES,
            ad, sizeof(ad), record + HEADER_BYTES, unseal_key) != 0) {
        sodium_memzero(root, CF_ROOT_KEY_BYTES);
        rc = cf_err_set(err, CF_ECRYPTO,
                        "the shares do not unseal this store: at least one of them is wrong or "
                        "belongs to another key");
    }
out:
    if (ctx)
        gfshare_ctx_free(ctx);
    sodium_free(unseal_key);
    return rc;
}

void cf_shamir_share_encode(const uint8_t share[CF_SHARE_BYTES], char text[CF_SHARE_TEXT_MAX])
{
    sodium_bin2base64(text, CF_SHARE_TEXT_MAX, share, CF_SHARE_BYTES,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

enum cf_rc cf_shamir_share_decode(const char *text, size_t len, uint8_t share[CF_SHARE_BYTES],
                                  struct cf_err *err)
{
    size_t got = 0;
    const char *end = NULL;
    while (len && (text[0] == ' ' || text[0] == '\t' || text[0] == '\n' || text[0] == '\r')) {
        text++;
        len--;
    }
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\n' ||
                   text[len - 1] == '\r'))
        len--;
    if (sodium_base642bin(share, CF_SHARE_BYTES, text, len, NULL, &got, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        got != CF_SHARE_BYTES || end != text + len || share[0] == 0) {
        sodium_memzero(share, CF_SHARE_BYTES);
        return cf_err_set(err, CF_EINVAL,
                          "a share is 44 characters of URL-safe base64 as printed by 'coffer "
                          "operator init' (%zu characters given)",
                          len);
    }
    return CF_OK;
}
