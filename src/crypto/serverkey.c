/* Server keys and sealed credentials (see serverkey.h). */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/serverkey.h"
#include "util/banned.h"
#include "util/str.h"

const struct cf_server_key_name cf_server_keys[] = {
    {CF_SERVER_KEY_AUDIT_META, CF_SERVER_KEY_AUDIT_LABEL},
    {CF_SERVER_KEY_AUTH_META, CF_SERVER_KEY_AUTH_LABEL},
    {CF_SERVER_KEY_ADMIN_META, CF_SERVER_KEY_ADMIN_LABEL},
};
const size_t cf_server_keys_n = CF_ARRAY_SIZE(cf_server_keys);

enum cf_rc cf_server_key_wrapped(struct cf_store *st, struct cf_keyring *kr, const char *meta,
                                 const char *label, uint8_t **wrapped, size_t *wrapped_len,
                                 struct cf_err *err)
{
    *wrapped = NULL;
    enum cf_rc rc = cf_store_meta_get(st, meta, wrapped, wrapped_len, err);
    if (rc != CF_ENOTFOUND)
        return rc;
    rc = cf_keyring_new_project_key(kr, label, wrapped, wrapped_len, err);
    if (rc == CF_OK)
        rc = cf_store_meta_insert(st, meta, *wrapped, *wrapped_len, err);
    if (rc == CF_EEXIST) { /* another server made it first: use theirs */
        free(*wrapped);
        *wrapped = NULL;
        rc = cf_store_meta_get(st, meta, wrapped, wrapped_len, err);
    }
    if (rc != CF_OK) {
        free(*wrapped);
        *wrapped = NULL;
    }
    return rc;
}

static struct cf_seal_ad credential_ad(const char *context)
{
    struct cf_seal_ad ad = {CF_SERVER_KEY_AUTH_LABEL, context, "", "credential", 1};
    return ad;
}

enum cf_rc cf_credential_seal(struct cf_store *st, struct cf_keyring *kr, const char *context,
                              const char *plain, char *out, size_t size, struct cf_err *err)
{
    uint8_t *wrapped = NULL, *sealed = NULL;
    size_t wrapped_len = 0, sealed_len = 0;
    struct cf_seal_ad ad = credential_ad(context);
    enum cf_rc rc = cf_server_key_wrapped(st, kr, CF_SERVER_KEY_AUTH_META, CF_SERVER_KEY_AUTH_LABEL,
                                          &wrapped, &wrapped_len, err);
    if (rc == CF_OK)
        rc = cf_keyring_seal(kr, wrapped, wrapped_len, &ad, plain, strlen(plain), &sealed,
                             &sealed_len, err);
    if (rc == CF_OK) {
        size_t prefix = strlen(CF_SEALED_PREFIX);
        size_t need =
            prefix + sodium_base64_ENCODED_LEN(sealed_len, sodium_base64_VARIANT_ORIGINAL);
        if (need > size) {
            rc = cf_err_set(err, CF_EVALIDATION, "the credential is too long to be stored");
        } else {
            memcpy(out, CF_SEALED_PREFIX, prefix);
            sodium_bin2base64(out + prefix, size - prefix, sealed, sealed_len,
                              sodium_base64_VARIANT_ORIGINAL);
        }
    }
    free(sealed);
    free(wrapped);
    return rc;
}

enum cf_rc cf_credential_open(struct cf_store *st, struct cf_keyring *kr, const char *context,
                              const char *stored, struct cf_buf *out, struct cf_err *err)
{
    size_t prefix = strlen(CF_SEALED_PREFIX);
    if (strncmp(stored, CF_SEALED_PREFIX, prefix) != 0)
        return cf_buf_puts(out, stored) == CF_OK ? CF_OK
                                                 : cf_err_set(err, CF_ENOMEM, "out of memory");
    const char *b64 = stored + prefix;
    size_t b64_len = strlen(b64);
    uint8_t *sealed = malloc(b64_len + 1), *wrapped = NULL;
    size_t sealed_len = 0, wrapped_len = 0;
    struct cf_seal_ad ad = credential_ad(context);
    enum cf_rc rc = sealed ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
    if (rc == CF_OK && sodium_base642bin(sealed, b64_len + 1, b64, b64_len, NULL, &sealed_len, NULL,
                                         sodium_base64_VARIANT_ORIGINAL) != 0)
        rc = cf_err_set(err, CF_ECRYPTO, "a sealed credential in the store is malformed");
    if (rc == CF_OK)
        rc = cf_server_key_wrapped(st, kr, CF_SERVER_KEY_AUTH_META, CF_SERVER_KEY_AUTH_LABEL,
                                   &wrapped, &wrapped_len, err);
    if (rc == CF_OK)
        rc = cf_keyring_open(kr, wrapped, wrapped_len, &ad, sealed, sealed_len, out, err);
    if (rc == CF_ECRYPTO)
        rc = cf_err_set(err, CF_ECRYPTO,
                        "a sealed credential does not open (the store was altered, or the "
                        "root key is not the one that sealed it)");
    free(sealed);
    free(wrapped);
    return rc;
}
