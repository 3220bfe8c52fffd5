/* Shamir's secret sharing of the root key (libgfshare), for servers that start sealed.
 *
 * The root key is not split itself: a random 32-byte unseal key is, and the root key is stored
 * wrapped by it (XChaCha20-Poly1305) in a record kept in the store. Any `threshold` of the shares
 * rebuild the unseal key, which opens the record; fewer, or a set with a wrong share, rebuild
 * another key, which the record's authentication tag refuses. Changing the shares (rekey) makes a
 * new unseal key, so old shares open nothing any more even though the root key stays the same.
 *
 * A share is 1 byte (its x coordinate, 1..255) then the 32 bytes of the unseal key's polynomial at
 * x; as text it is URL-safe base64 without padding (44 characters). Nothing here keeps state but
 * libgfshare's random source, set once (libsodium's); every function is thread-safe. */
#ifndef CF_CRYPTO_SHAMIR_H
#define CF_CRYPTO_SHAMIR_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/keyring.h"
#include "util/err.h"

#define CF_SHAMIR_MAX_SHARES 32
#define CF_SHARE_BYTES (1 + CF_ROOT_KEY_BYTES)
/* A share as text, with its terminating NUL. */
#define CF_SHARE_TEXT_MAX 48
/* The record kept in the store: format, shares, threshold, nonce, wrapped root key, tag. */
#define CF_SHAMIR_RECORD_BYTES (3 + 24 + CF_ROOT_KEY_BYTES + 16)

/* Makes a new unseal key, wraps root under it into record, and splits it into shares (n of them,
 * any threshold of which rebuild it): shares[i] for i < n. 2 <= threshold <= n <=
 * CF_SHAMIR_MAX_SHARES, or threshold == n == 1; CF_EINVAL otherwise. The caller wipes shares. */
enum cf_rc cf_shamir_seal(const uint8_t root[CF_ROOT_KEY_BYTES], unsigned n, unsigned threshold,
                          uint8_t (*shares)[CF_SHARE_BYTES], uint8_t record[CF_SHAMIR_RECORD_BYTES],
                          struct cf_err *err);

/* Reads the number of shares and the threshold of a record. CF_EINVAL when it is not one. */
enum cf_rc cf_shamir_record_info(const uint8_t *record, size_t len, unsigned *n,
                                 unsigned *threshold, struct cf_err *err);

/* Rebuilds the unseal key from count shares (at least the record's threshold, distinct x) and
 * opens the record into root (the caller wipes it). CF_ECRYPTO when the shares do not open it (a
 * wrong share, or shares of another split); the message never says which share. CF_EINVAL for
 * too few or repeated shares. */
enum cf_rc cf_shamir_open(const uint8_t *record, size_t len,
                          const uint8_t (*shares)[CF_SHARE_BYTES], unsigned count,
                          uint8_t root[CF_ROOT_KEY_BYTES], struct cf_err *err);

/* Writes share as text into text (CF_SHARE_TEXT_MAX bytes). The caller wipes text. */
void cf_shamir_share_encode(const uint8_t share[CF_SHARE_BYTES], char text[CF_SHARE_TEXT_MAX]);

/* Reads a share's text (surrounding blanks ignored) into share. CF_EINVAL with a message that
 * quotes none of the text when it is not one. The caller wipes share. */
enum cf_rc cf_shamir_share_decode(const char *text, size_t len, uint8_t share[CF_SHARE_BYTES],
                                  struct cf_err *err);

#endif
