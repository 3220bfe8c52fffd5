/* Users' passwords: hashed with Argon2id (libsodium's crypto_pwhash_str, interactive limits), the
 * string it makes being all that is stored. The password itself is never kept, logged or echoed. */
#ifndef CF_CRYPTO_PASSWORD_H
#define CF_CRYPTO_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

#define CF_PASSWORD_MIN 12        /* characters (bytes of UTF-8) */
#define CF_PASSWORD_MAX 256       /* bytes: longer ones are refused, not cut */
#define CF_PASSWORD_HASH_SIZE 128 /* crypto_pwhash_STRBYTES, with the NUL */

/* CF_OK when password (len bytes) is within the length rules above; CF_EVALIDATION naming field
 * and the rule otherwise (never the password). */
enum cf_rc cf_password_check_rules(const char *password, size_t len, const char *field,
                                   struct cf_err *err);

/* Hashes password (len bytes) into out (CF_PASSWORD_HASH_SIZE bytes). CF_ENOMEM when Argon2id
 * cannot get its memory. Thread-safe. */
enum cf_rc cf_password_hash(const char *password, size_t len, char out[CF_PASSWORD_HASH_SIZE],
                            struct cf_err *err);

/* Whether password matches hash (a string of cf_password_hash). hash NULL or "": false, after the
 * same work as a real check, so that an unknown account answers in the same time as a wrong
 * password. Thread-safe. */
bool cf_password_verify(const char *hash, const char *password, size_t len);

#endif
