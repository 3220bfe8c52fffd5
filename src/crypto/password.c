/* Argon2id password hashing over libsodium (password.h). */
#include <string.h>

#include <sodium.h>

#include "crypto/password.h"
#include "util/banned.h"

_Static_assert(CF_PASSWORD_HASH_SIZE == crypto_pwhash_STRBYTES, "an Argon2id string fits");

enum cf_rc cf_password_check_rules(const char *password, size_t len, const char *field,
                                   struct cf_err *err)
{
    if (!password || len == 0)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: required", field);
    if (len > CF_PASSWORD_MAX)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: at most %d bytes", field,
                            CF_PASSWORD_MAX);
    if (memchr(password, '\0', len))
        return cf_err_field(err, CF_EVALIDATION, field, "%s: must not contain NUL", field);
    if (len < CF_PASSWORD_MIN)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: at least %d characters", field,
                            CF_PASSWORD_MIN);
    return CF_OK;
}

enum cf_rc cf_password_hash(const char *password, size_t len, char out[CF_PASSWORD_HASH_SIZE],
                            struct cf_err *err)
{
    if (crypto_pwhash_str(out, password, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        out[0] = '\0';
        return cf_err_set(err, CF_ENOMEM, "out of memory hashing a password");
    }
    return CF_OK;
}

bool cf_password_verify(const char *hash, const char *password, size_t len)
{
    if (!hash || !hash[0]) {
        /* No hash to check: spend what a check spends, then refuse. */
        char scratch[CF_PASSWORD_HASH_SIZE];
        struct cf_err ignored;
        (void)cf_password_hash(password ? password : "", password ? len : 0, scratch, &ignored);
        sodium_memzero(scratch, sizeof(scratch));
        return false;
    }
    return crypto_pwhash_str_verify(hash, password, len) == 0;
}
