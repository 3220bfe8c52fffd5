/* Random bearer credentials and their stored form. A credential is 32 random bytes in base64url
 * behind a short prefix that says what it is (e.g. "cfadm_"); only its keyed BLAKE2b-256 hash is
 * ever stored. Hashes are compared in constant time. */
#ifndef CF_CRYPTO_TOKEN_H
#define CF_CRYPTO_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CF_TOKEN_HASH_BYTES 32
#define CF_TOKEN_RANDOM_BYTES 32        /* the random part of a credential, before base64url */
#define CF_CLIENT_SECRET_PREFIX "cfcs_" /* machine identities' client secrets */
#define CF_TOKEN_FINGERPRINT_LEN 16     /* "sha256:", 8 hex digits and the NUL */
#define CF_TOKEN_MAX                                                                               \
    128 /* room for a prefix of up to 16 characters, 43 base64url characters and the NUL */

/* Writes prefix followed by 43 base64url characters (32 random bytes) into out (size >=
 * CF_TOKEN_MAX). The caller wipes out when done. */
void cf_token_new(const char *prefix, char *out, size_t size);

/* Hashes a presented credential (n bytes) for storage or lookup. */
void cf_token_hash(const char *token, size_t n, uint8_t out[CF_TOKEN_HASH_BYTES]);

/* Whether text has the shape of a client secret (CF_CLIENT_SECRET_PREFIX): such a text in another
 * field (a client id) is refused with a hint instead of being looked up. */
bool cf_token_looks_like_client_secret(const char *text);

/* A short, labelled fingerprint of text (n bytes) for logs and audit records: "sha256:" and the
 * first 8 hex digits of its SHA-256. It names an unknown id, which may be a credential pasted into
 * the wrong field, without keeping it: an operator can match it (`printf %s ID | sha256sum`), and
 * 32 bits say nothing useful about a high-entropy credential. */
void cf_token_fingerprint(const char *text, size_t n, char out[CF_TOKEN_FINGERPRINT_LEN]);

/* Constant-time equality of two hashes. */
bool cf_token_hash_equal(const uint8_t a[CF_TOKEN_HASH_BYTES],
                         const uint8_t b[CF_TOKEN_HASH_BYTES]);

#endif
