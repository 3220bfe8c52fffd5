/* The azure-key-vault destination: secrets of one vault through the Key Vault REST API
 * (api-version CF_KEYVAULT_API_VERSION), with an Entra ID token for https://vault.azure.net.
 * destinationConfig: {"vaultBaseUrl": "https://NAME.vault.azure.net", "purgeOnDelete": false}. */
#ifndef CF_PROVIDER_KEYVAULT_H
#define CF_PROVIDER_KEYVAULT_H

#include "provider/provider.h"

#define CF_KEYVAULT_API_VERSION "7.5"
#define CF_KEYVAULT_NAME_MAX 127   /* ^[0-9a-zA-Z-]{1,127}$ */
#define CF_KEYVAULT_PAGE_TEXT "25" /* maxresults asked for per list page */
#define CF_KEYVAULT_PAGES_MAX 1000 /* nextLink pages followed at most */

extern const struct cf_dest_ops cf_dest_azure_key_vault;

/* Checks an azure-key-vault connection: gets a token for the vault resource and, when the
 * credentials name a "vaultBaseUrl", lists one secret of that vault. See cf_provider_check. */
enum cf_rc cf_keyvault_check(const struct cf_provider_conn *conn, json_t **report,
                             struct cf_err *err);

/* Auto-unseal (docs/operations.md "Auto-unseal with Azure Key Vault"): wraps plain (a root key)
 * with the RSA key at key_url (https://NAME.vault.azure.net/keys/KEY, optionally /VERSION) by
 * RSA-OAEP-256, through the vault's wrapkey operation with conn's Entra ID credentials. kid
 * receives the full key identifier (with its version) that unwrapping needs; wrapped the
 * ciphertext. Errors as the vault's answers (CF_EFORBIDDEN for 403, a disabled key included;
 * CF_ERATELIMIT after the retries; CF_EUNAUTH, CF_ENOTFOUND, CF_EIO), messages naming the key and
 * the vault's error code, never a key. Thread-safe. */
enum cf_rc cf_keyvault_wrap_key(const struct cf_provider_conn *conn, const char *key_url,
                                const uint8_t *plain, size_t plain_len, char *kid, size_t kid_size,
                                uint8_t *wrapped, size_t wrapped_max, size_t *wrapped_len,
                                struct cf_err *err);

/* The reverse, with the kid given by cf_keyvault_wrap_key: plain receives the key (the caller
 * wipes it). */
enum cf_rc cf_keyvault_unwrap_key(const struct cf_provider_conn *conn, const char *kid,
                                  const uint8_t *wrapped, size_t wrapped_len, uint8_t *plain,
                                  size_t plain_max, size_t *plain_len, struct cf_err *err);

#endif
