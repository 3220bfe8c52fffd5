/* Auto-unseal with Azure Key Vault (docs/operations.md "Auto-unseal with Azure Key Vault"): the
 * root key wrapped (RSA-OAEP-256) by a Key Vault RSA key, kept in the store's meta row
 * CF_AUTOUNSEAL_META as JSON {"kid", "tenantId", "clientId", "authorityHost"?, "wrapped"}
 * (base64url), or with "identity": "managed" (and "clientId"?, "imdsEndpoint"?) for a managed
 * identity; nothing in it is secret. The Entra ID client secret that may use the key comes from
 * the environment (CF_AUTOUNSEAL_SECRET_ENV) of every node and command that wraps or unwraps; a
 * managed identity needs none. */
#ifndef CF_SERVER_AUTOUNSEAL_H
#define CF_SERVER_AUTOUNSEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/keyring.h"
#include "provider/entra.h"
#include "util/err.h"

#define CF_AUTOUNSEAL_META "seal_azure"
#define CF_AUTOUNSEAL_SECRET_ENV "COFFER_SEAL_AZURE_CLIENT_SECRET"

/* Where the key is and who may use it (all borrowed). */
struct cf_autounseal_config {
    const char *key_url; /* https://NAME.vault.azure.net/keys/KEY[/VERSION] */
    const char *tenant_id;
    const char *client_id;
    const char *authority_host; /* NULL: Entra ID's */
    /* The machine's managed identity instead of a client secret (client_id: a user-assigned one,
     * or NULL for the system-assigned one; tenant_id unused) */
    bool managed_identity;
    const char *imds_endpoint; /* NULL: CF_ENTRA_IMDS_ENDPOINT */
};

/* Wraps root with the key and returns the record to store (*record: malloc'd JSON text, the caller
 * frees it). CF_EINVAL when the client secret's variable is not set; else the vault's errors. */
enum cf_rc cf_autounseal_wrap(const struct cf_autounseal_config *config,
                              const uint8_t root[CF_ROOT_KEY_BYTES], char **record,
                              struct cf_err *err);

/* Unwraps the root key of a stored record into root (the caller wipes it). entra (may be NULL)
 * caches the token. CF_EINVAL for a record that is not one or a missing client secret; the
 * vault's errors otherwise (403 for a disabled key or a missing role, 429, ...). */
enum cf_rc cf_autounseal_unwrap(const uint8_t *record, size_t len, struct cf_entra_cache *entra,
                                uint8_t root[CF_ROOT_KEY_BYTES], struct cf_err *err);

#endif
