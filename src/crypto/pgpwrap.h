/* Encryption to an OpenPGP public key with GPGME, so that its holder decrypts with
 * `gpg --decrypt`. The key is imported into a temporary GnuPG home of its own (a fresh directory
 * of mode 0700 that holds only that public key, removed before returning whatever happens); the
 * plaintext goes to gpg from memory, through a pipe, and never touches a disk. The key is used
 * with "always trust" (the operator chose it), but only when it is the one key given, is neither
 * expired, revoked nor disabled, and has a valid encryption subkey.
 * Thread-safe (each call has its own GnuPG home and context). */
#ifndef CF_CRYPTO_PGPWRAP_H
#define CF_CRYPTO_PGPWRAP_H

#include <stddef.h>

#include "util/err.h"

/* Checks that key (key_len bytes, ASCII-armored or binary; borrowed) is exactly one OpenPGP
 * public key that can encrypt now. name (borrowed) is what messages call it (its file).
 * CF_EINVAL naming it otherwise (a secret key, several keys or none, expired, revoked, disabled,
 * no encryption subkey); CF_EUNSUPPORTED when gpg cannot be run; CF_EIO when the temporary home
 * cannot be made. */
enum cf_rc cf_pgpwrap_check(const char *name, const char *key, size_t key_len, struct cf_err *err);

/* As cf_pgpwrap_check, then encrypts len bytes of text (borrowed) to the key and returns the
 * ASCII-armored OpenPGP message in *out (NUL-terminated; the caller frees it with free).
 * CF_ECRYPTO when gpg fails to encrypt. */
enum cf_rc cf_pgpwrap_encrypt(const char *name, const char *key, size_t key_len, const void *text,
                              size_t len, char **out, struct cf_err *err);

#endif
