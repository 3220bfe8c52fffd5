/* The root key wrapped by an Azure Key Vault key (see autounseal.h). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "provider/keyvault.h"
#include "server/autounseal.h"
#include "util/wipemem.h"
#include "util/banned.h"

/* An RSA-OAEP ciphertext is the key's modulus long: 512 bytes for RSA-4096. */
#define WRAPPED_MAX 512
#define KID_MAX 512

/* The credentials of a managed identity (client_id and endpoint may be NULL): a new reference, or
 * NULL with err set. */
static json_t *managed_credentials(const char *client_id, const char *endpoint, struct cf_err *err)
{
    json_t *creds = json_object();
    if (creds && client_id)
        json_object_set_new(creds, "clientId", json_string(client_id));
    if (creds && endpoint)
        json_object_set_new(creds, "imdsEndpoint", json_string(endpoint));
    if (!creds)
        cf_err_set(err, CF_ENOMEM, "out of memory");
    return creds;
}

/* The credentials of a connection to Entra ID with the secret from the environment (a new
 * reference; NULL with err set). */
static json_t *credentials(const char *tenant_id, const char *client_id, const char *authority,
                           struct cf_err *err)
{
    const char *secret = getenv(CF_AUTOUNSEAL_SECRET_ENV);
    json_t *creds;
    if (!secret || !*secret) {
        cf_err_set(err, CF_EINVAL,
                   "%s is not set: the client secret of the Entra ID application that may use "
                   "the Key Vault key",
                   CF_AUTOUNSEAL_SECRET_ENV);
        return NULL;
    }
    creds = json_pack("{s:s, s:s, s:s}", "tenantId", tenant_id, "clientId", client_id,
                      "clientSecret", secret);
    if (creds && authority)
        json_object_set_new(creds, "authorityHost", json_string(authority));
    if (!creds)
        cf_err_set(err, CF_ENOMEM, "out of memory");
    return creds;
}

enum cf_rc cf_autounseal_wrap(const struct cf_autounseal_config *config,
                              const uint8_t root[CF_ROOT_KEY_BYTES], char **record,
                              struct cf_err *err)
{
    uint8_t wrapped[WRAPPED_MAX];
    size_t wrapped_len = 0;
    char kid[KID_MAX];
    char text[sodium_base64_ENCODED_LEN(WRAPPED_MAX, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    json_t *creds = NULL, *out = NULL;
    enum cf_rc rc;

    *record = NULL;
    if (!config->key_url ||
        (!config->managed_identity && (!config->tenant_id || !config->client_id)))
        return cf_err_set(err, CF_EINVAL,
                          "--azure-key, --azure-tenant and --azure-client-id go together");
    creds = config->managed_identity
                ? managed_credentials(config->client_id, config->imds_endpoint, err)
                : credentials(config->tenant_id, config->client_id, config->authority_host, err);
    if (!creds)
        return err->rc;
    struct cf_provider_conn conn = {.app = "azure-key-vault",
                                    .method = config->managed_identity ? "managed-identity"
                                                                       : "client-secret",
                                    .credentials = creds};
    rc = cf_keyvault_wrap_key(&conn, config->key_url, root, CF_ROOT_KEY_BYTES, kid, sizeof(kid),
                              wrapped, sizeof(wrapped), &wrapped_len, err);
    if (rc != CF_OK)
        goto out;
    sodium_bin2base64(text, sizeof(text), wrapped, wrapped_len,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out = config->managed_identity
              ? json_pack("{s:s, s:s, s:s?, s:s?, s:s}", "kid", kid, "identity", "managed",
                          "clientId", config->client_id, "imdsEndpoint", config->imds_endpoint,
                          "wrapped", text)
              : json_pack("{s:s, s:s, s:s, s:s, s:s?}", "kid", kid, "tenantId", config->tenant_id,
                          "clientId", config->client_id, "wrapped", text, "authorityHost",
                          config->authority_host);
    char *text_out = out ? json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    /* handed over in malloc'd memory: json_dumps' may come from the wiping allocator */
    *record = text_out ? strdup(text_out) : NULL;
    cf_json_free_text(text_out);
    if (!*record)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
out:
    json_decref(out);
    json_decref(creds); /* the secret is wiped by the wiping allocator */
    return rc;
}

enum cf_rc cf_autounseal_unwrap(const uint8_t *record, size_t len, struct cf_entra_cache *entra,
                                uint8_t root[CF_ROOT_KEY_BYTES], struct cf_err *err)
{
    json_error_t parse_error;
    uint8_t wrapped[WRAPPED_MAX];
    size_t wrapped_len = 0, root_len = 0;
    const char *end = NULL;
    json_t *creds = NULL;
    enum cf_rc rc;
    json_t *doc = json_loadb((const char *)record, len, 0, &parse_error);
    const char *kid = json_string_value(json_object_get(doc, "kid"));
    const char *tenant = json_string_value(json_object_get(doc, "tenantId"));
    const char *client = json_string_value(json_object_get(doc, "clientId"));
    const char *authority = json_string_value(json_object_get(doc, "authorityHost"));
    const char *text = json_string_value(json_object_get(doc, "wrapped"));
    const char *identity = json_string_value(json_object_get(doc, "identity"));
    bool managed = identity && strcmp(identity, "managed") == 0;

    if (!kid || (!managed && (!tenant || !client)) || !text ||
        sodium_base642bin(wrapped, sizeof(wrapped), text, strlen(text), NULL, &wrapped_len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != text + strlen(text)) {
        rc = cf_err_set(err, CF_EINVAL, "the stored Azure Key Vault seal record is not one");
        goto out;
    }
    creds = managed ? managed_credentials(
                          client, json_string_value(json_object_get(doc, "imdsEndpoint")), err)
                    : credentials(tenant, client, authority, err);
    if (!creds) {
        rc = err->rc;
        goto out;
    }
    struct cf_provider_conn conn = {.app = "azure-key-vault",
                                    .method = managed ? "managed-identity" : "client-secret",
                                    .credentials = creds,
                                    .entra = entra};
    rc = cf_keyvault_unwrap_key(&conn, kid, wrapped, wrapped_len, root, CF_ROOT_KEY_BYTES,
                                &root_len, err);
    if (rc == CF_OK && root_len != CF_ROOT_KEY_BYTES)
        rc = cf_err_set(err, CF_ECRYPTO, "the key unwrapped by Azure Key Vault is not a root key");
    if (rc != CF_OK)
        sodium_memzero(root, CF_ROOT_KEY_BYTES);
out:
    json_decref(creds);
    json_decref(doc);
    return rc;
}
