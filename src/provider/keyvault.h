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

#endif
