/* Encryption to an age X25519 recipient (the age v1 format, https://age-encryption.org/v1), so
 * that the holder of the matching identity decrypts with the standard tool:
 *   age -d -i identity.txt
 * Only the encrypting side, one recipient, and the ASCII armor (a PEM block labelled
 * "AGE ENCRYPTED FILE") so that the result prints on a terminal. The primitives are libsodium's
 * (X25519, ChaCha20-Poly1305) and OpenSSL's (HKDF-SHA-256, HMAC-SHA-256); the format is ours.
 * Thread-safe (no shared state). */
#ifndef CF_CRYPTO_AGE_H
#define CF_CRYPTO_AGE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define CF_AGE_RECIPIENT_BYTES 32
/* The largest plaintext cf_age_encrypt_armored takes (a share is far smaller). */
#define CF_AGE_PLAINTEXT_MAX (1024 * 1024)

/* Decodes an age X25519 recipient ("age1" and 58 Bech32 characters; borrowed) into its public key.
 * CF_EINVAL when text is not one: a Bech32 error (checksum, alphabet, case), another
 * human-readable part than "age" (a plugin's or a post-quantum recipient), not 32 bytes, or a
 * low-order X25519 point (to which nothing can be encrypted). */
enum cf_rc cf_age_recipient_parse(const char *text, uint8_t key[CF_AGE_RECIPIENT_BYTES],
                                  struct cf_err *err);

/* Encrypts len bytes of plaintext (borrowed) to the recipient key, with a fresh file key, and
 * returns the armored age file in *out (NUL-terminated, ending with a newline; the caller frees
 * it with free). The file key and every key derived from it are wiped before returning.
 * CF_ECRYPTO when the key is a low-order point (no shared secret), CF_ETOOLARGE past
 * CF_AGE_PLAINTEXT_MAX, CF_ENOMEM. */
enum cf_rc cf_age_encrypt_armored(const uint8_t key[CF_AGE_RECIPIENT_BYTES], const void *plaintext,
                                  size_t len, char **out, struct cf_err *err);

#endif
