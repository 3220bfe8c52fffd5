/* Bearer credentials (see token.h). */
#include <string.h>

#include <sodium.h>

#include "crypto/token.h"
#include "util/err.h"
#include "util/banned.h"

void cf_token_new(const char *prefix, char *out, size_t size)
{
    uint8_t raw[CF_TOKEN_RANDOM_BYTES];
    size_t plen = strlen(prefix);
    /* Dropping or cutting the prefix would make a credential that nothing recognises: a caller
     * breaking the contract is a bug, not bad input. */
    if (size < CF_TOKEN_MAX || plen > 16)
        CF_BUG("cf_token_new: prefix over 16 characters or buffer under CF_TOKEN_MAX");
    memcpy(out, prefix, plen);
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(out + plen, size - plen, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
}

void cf_token_hash(const char *token, size_t n, uint8_t out[CF_TOKEN_HASH_BYTES])
{
    /* A fixed key separates this use of BLAKE2b from any other; the credentials are high-entropy,
     * so a fast hash is enough (a slow password hash would put seconds on every request). */
    static const uint8_t domain[crypto_generichash_KEYBYTES] = "coffer credential hash v1";
    crypto_generichash(out, CF_TOKEN_HASH_BYTES, (const uint8_t *)token, n, domain, sizeof(domain));
}

bool cf_token_looks_like_client_secret(const char *text)
{
    return strncmp(text, CF_CLIENT_SECRET_PREFIX, strlen(CF_CLIENT_SECRET_PREFIX)) == 0;
}

void cf_token_fingerprint(const char *text, size_t n, char out[CF_TOKEN_FINGERPRINT_LEN])
{
    uint8_t digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, (const uint8_t *)text, n);
    memcpy(out, "sha256:", 7);
    sodium_bin2hex(out + 7, CF_TOKEN_FINGERPRINT_LEN - 7, digest, 4);
}

bool cf_token_hash_equal(const uint8_t a[CF_TOKEN_HASH_BYTES], const uint8_t b[CF_TOKEN_HASH_BYTES])
{
    return sodium_memcmp(a, b, CF_TOKEN_HASH_BYTES) == 0;
}
