/* Unseal shares encrypted to their holders' RSA public keys (docs/operations.md "Shares encrypted
 * to their holders"): RSA-OAEP with SHA-256 (and MGF1 SHA-256) over the share's text, printed as
 * base64, so that each holder decrypts theirs with the standard tool and no one else, the operator
 * running `init` included, ever sees it in clear:
 *   base64 -d | openssl pkeyutl -decrypt -inkey KEY.pem -pkeyopt rsa_padding_mode:oaep
 *       -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
 * Thread-safe (no shared state). */
#ifndef CF_CRYPTO_SHAREWRAP_H
#define CF_CRYPTO_SHAREWRAP_H

#include <stddef.h>

#include "util/err.h"

/* The smallest RSA modulus accepted, in bits. */
#define CF_SHAREWRAP_MIN_BITS 2048
/* The largest base64 text an encrypted share takes (RSA-8192), with its NUL. */
#define CF_SHAREWRAP_TEXT_MAX 1400

/* Checks that the PEM file at path holds an RSA public key of at least CF_SHAREWRAP_MIN_BITS.
 * CF_EINVAL naming the file otherwise. */
enum cf_rc cf_sharewrap_check(const char *path, struct cf_err *err);

/* Encrypts text (len bytes, a share's text; borrowed) to the public key in the PEM file at path and
 * writes the ciphertext as base64 into out (CF_SHAREWRAP_TEXT_MAX bytes). CF_EINVAL for a key
 * cf_sharewrap_check refuses; CF_ECRYPTO when the encryption fails. */
enum cf_rc cf_sharewrap_encrypt(const char *path, const char *text, size_t len,
                                char out[CF_SHAREWRAP_TEXT_MAX], struct cf_err *err);

#endif
