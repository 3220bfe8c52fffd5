/* Unseal shares encrypted to their holders' public keys (docs/operations.md "Shares encrypted to
 * their holders"), so that each holder decrypts theirs with a standard tool and no one else, the
 * operator running `init` included, ever sees it in clear. A share key entry is one of:
 *   - an age X25519 recipient, inline ("age1...") or in a file (age-keygen's public key line or a
 *     recipients file with one "age1" line; '#' comments allowed): an armored age file
 *     (crypto/age.h), decrypted with `age -d -i identity.txt`;
 *   - an OpenPGP public key file, armored or binary: an armored OpenPGP message (crypto/pgpwrap.h),
 *     decrypted with `gpg --decrypt`;
 *   - an RSA public key PEM file (at least CF_SHAREWRAP_MIN_BITS): RSA-OAEP with SHA-256 (and MGF1
 *     SHA-256) over the share's text, printed as base64 on one line and decrypted with
 *       base64 -d | openssl pkeyutl -decrypt -inkey KEY.pem -pkeyopt rsa_padding_mode:oaep
 *           -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
 * An entry starting with "age1" that is not an existing file is an inline recipient; anything
 * else is a file, told apart by its contents. Secret keys given by mistake (an age identity, an
 * OpenPGP secret key, a PEM private key) are refused, and their contents never quoted.
 * Thread-safe (no shared state). */
#ifndef CF_CRYPTO_SHAREWRAP_H
#define CF_CRYPTO_SHAREWRAP_H

#include <stddef.h>

#include "util/err.h"

/* The smallest RSA modulus accepted, in bits. */
#define CF_SHAREWRAP_MIN_BITS 2048
/* The largest share key file read. */
#define CF_SHAREWRAP_FILE_MAX (1024 * 1024)

enum cf_sharewrap_kind {
    CF_SHAREWRAP_RSA,
    CF_SHAREWRAP_AGE,
    CF_SHAREWRAP_OPENPGP,
};

/* "RSA", "age" or "OpenPGP". */
const char *cf_sharewrap_kind_name(enum cf_sharewrap_kind kind);

/* Checks that entry (borrowed) is a public key a share can be encrypted to, and says which kind
 * in *kind. CF_EINVAL naming the entry and the problem otherwise (unreadable file, unknown
 * contents, a secret key, a bad age recipient, an unusable OpenPGP or RSA key);
 * CF_EUNSUPPORTED when an OpenPGP key is given and gpg cannot be run. */
enum cf_rc cf_sharewrap_check(const char *entry, enum cf_sharewrap_kind *kind, struct cf_err *err);

/* Encrypts text (len bytes, a share's text; borrowed) to the key of entry and returns the result
 * in *out (NUL-terminated text; the caller frees it with free): base64 on one line for RSA, an
 * armored block of lines, each ending with a newline, for age and OpenPGP. *kind says which.
 * The errors of cf_sharewrap_check; CF_ECRYPTO when the encryption fails. */
enum cf_rc cf_sharewrap_encrypt(const char *entry, const char *text, size_t len, char **out,
                                enum cf_sharewrap_kind *kind, struct cf_err *err);

#endif
