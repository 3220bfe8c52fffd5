/* The admin token at rest (see admin.h). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth/admin.h"
#include "crypto/serverkey.h"
#include "crypto/token.h"
#include "util/banned.h"

#define FORMAT_KEYED 2
#define STORED_LEN (1 + CF_TOKEN_HASH_BYTES)

struct cf_admin_auth {
    uint8_t *key; /* sodium_malloc'd, 32 bytes */
};

enum cf_rc cf_admin_auth_open(struct cf_store *st, struct cf_keyring *kr,
                              struct cf_admin_auth **out, struct cf_err *err)
{
    uint8_t *wrapped = NULL;
    size_t wrapped_len = 0;
    struct cf_admin_auth *admin = calloc(1, sizeof(*admin));
    enum cf_rc rc = CF_OK;

    *out = NULL;
    if (admin)
        admin->key = sodium_malloc(crypto_generichash_KEYBYTES);
    if (!admin || !admin->key) {
        rc = cf_err_set(err, CF_ENOMEM, "cannot allocate locked memory");
        goto out;
    }
    rc = cf_server_key_wrapped(st, kr, CF_SERVER_KEY_ADMIN_META, CF_SERVER_KEY_ADMIN_LABEL,
                               &wrapped, &wrapped_len, err);
    if (rc == CF_OK)
        rc = cf_keyring_unwrap_key(kr, CF_SERVER_KEY_ADMIN_LABEL, wrapped, wrapped_len, admin->key,
                                   err);
    if (rc == CF_OK) {
        *out = admin;
        admin = NULL;
    }
out:
    free(wrapped);
    cf_admin_auth_free(admin);
    return rc;
}

void cf_admin_auth_free(struct cf_admin_auth *admin)
{
    if (!admin)
        return;
    if (admin->key)
        sodium_free(admin->key);
    free(admin);
}

/* The stored form of token: the format byte, then its hash keyed with the admin key. */
static void keyed_form(const struct cf_admin_auth *admin, const char *token, size_t n,
                       uint8_t stored[STORED_LEN])
{
    stored[0] = FORMAT_KEYED;
    crypto_generichash(stored + 1, CF_TOKEN_HASH_BYTES, (const uint8_t *)token, n, admin->key,
                       crypto_generichash_KEYBYTES);
}

enum cf_rc cf_admin_token_store(struct cf_admin_auth *admin, struct cf_store *st, const char *token,
                                size_t n, bool only_if_absent, struct cf_err *err)
{
    uint8_t stored[STORED_LEN];
    keyed_form(admin, token, n, stored);
    enum cf_rc rc = only_if_absent
                        ? cf_store_meta_insert(st, CF_ADMIN_TOKEN_META, stored, STORED_LEN, err)
                        : cf_store_meta_put(st, CF_ADMIN_TOKEN_META, stored, STORED_LEN, err);
    sodium_memzero(stored, sizeof(stored));
    return rc;
}

enum cf_rc cf_admin_token_check(struct cf_admin_auth *admin, struct cf_store *st, const char *token,
                                size_t n, bool *ok, bool *legacy, struct cf_err *err)
{
    uint8_t *stored = NULL;
    size_t stored_len = 0;
    uint8_t given[STORED_LEN];
    bool old_form = false;

    *ok = false;
    enum cf_rc rc = cf_store_meta_get_lookup(st, CF_ADMIN_TOKEN_META, &stored, &stored_len, err);
    if (rc != CF_OK)
        goto out;
    if (stored_len == STORED_LEN && stored[0] == FORMAT_KEYED) {
        keyed_form(admin, token, n, given);
        *ok = cf_token_hash_equal(given + 1, stored + 1);
    } else if (stored_len == CF_TOKEN_HASH_BYTES) {
        old_form = true;
        cf_token_hash(token, n, given);
        *ok = cf_token_hash_equal(given, stored);
    } else {
        rc = cf_err_set(err, CF_ESTORE, "the stored admin token hash is corrupt");
        goto out;
    }
    if (*ok && old_form) {
        /* Re-keyed unless a rotation replaced the old form meanwhile: then that one stands, and
         * this token no longer counts. */
        keyed_form(admin, token, n, given);
        rc =
            cf_store_meta_swap(st, CF_ADMIN_TOKEN_META, stored, stored_len, given, STORED_LEN, err);
        if (rc == CF_ECONFLICT) {
            *ok = false;
            rc = CF_OK;
        }
    }
out:
    if (legacy)
        *legacy = old_form;
    sodium_memzero(given, sizeof(given));
    free(stored);
    return rc;
}

enum cf_rc cf_admin_token_disabled(struct cf_store *st, bool *disabled, struct cf_err *err)
{
    uint8_t *value = NULL;
    size_t len = 0;
    *disabled = false;
    enum cf_rc rc = cf_store_meta_get_lookup(st, CF_ADMIN_TOKEN_DISABLED_META, &value, &len, err);
    if (rc == CF_ENOTFOUND)
        rc = CF_OK;
    else if (rc == CF_OK)
        *disabled = len == 1 && value[0] == '1';
    free(value);
    return rc;
}

enum cf_rc cf_admin_token_set_disabled(struct cf_store *st, bool disabled, struct cf_err *err)
{
    const uint8_t value = disabled ? '1' : '0';
    return cf_store_meta_put(st, CF_ADMIN_TOKEN_DISABLED_META, &value, 1, err);
}
