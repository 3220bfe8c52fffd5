/* Entra ID client-credentials tokens: the token request (client secret or RFC 7523 client
 * assertion, crypto/assertion.h), the error translation (AADSTS codes) and the token cache. */
#include "provider/entra.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "crypto/assertion.h"
#include "net/http.h"
#include "provider/azure.h"
#include "util/buf.h"
#include "util/time.h"
#include "util/wipemem.h"

#define KEY_MAX 1024

struct entry {
    char key[KEY_MAX]; /* authority|tenant|client|credential hash|scope */
    char *token;       /* wiped on release */
    int64_t expires_at;
};

struct cf_entra_cache {
    pthread_mutex_t lock;
    /* CF_ENTRA_CACHE_MAX of them (260 kB), made by the first token stored: a server that never
     * asks Entra ID for a token does not hold them */
    struct entry *entries;
    size_t n;
};

struct cf_entra_cache *cf_entra_cache_new(void)
{
    struct cf_entra_cache *cache = calloc(1, sizeof(*cache));
    if (cache)
        pthread_mutex_init(&cache->lock, NULL);
    return cache;
}

void cf_entra_cache_free(struct cf_entra_cache *cache)
{
    if (!cache)
        return;
    for (size_t i = 0; i < cache->n; i++)
        cf_azure_secret_free(cache->entries[i].token);
    free(cache->entries);
    pthread_mutex_destroy(&cache->lock);
    free(cache);
}

void cf_entra_token_free(char *token)
{
    cf_azure_secret_free(token);
}

/* A fresh copy of the cached token under key, or NULL. */
static char *cache_get(struct cf_entra_cache *cache, const char *key, int64_t *expires_at)
{
    char *token = NULL;
    int64_t now = cf_now_ms();
    pthread_mutex_lock(&cache->lock);
    for (size_t i = 0; i < cache->n; i++) {
        struct entry *e = &cache->entries[i];
        if (strcmp(e->key, key) == 0 && e->expires_at - CF_ENTRA_EARLY_MS > now) {
            token = strdup(e->token);
            if (token && expires_at)
                *expires_at = e->expires_at;
            break;
        }
    }
    pthread_mutex_unlock(&cache->lock);
    return token;
}

/* Stores a copy of token under key (replacing an older one; the oldest entry makes room). */
static void cache_put(struct cf_entra_cache *cache, const char *key, const char *token,
                      int64_t expires_at)
{
    char *copy = strdup(token);
    if (!copy)
        return; /* the cache is an optimisation: the next call asks again */
    pthread_mutex_lock(&cache->lock);
    if (!cache->entries && !(cache->entries = calloc(CF_ENTRA_CACHE_MAX, sizeof(struct entry)))) {
        pthread_mutex_unlock(&cache->lock);
        cf_azure_secret_free(copy);
        return;
    }
    struct entry *slot = NULL;
    for (size_t i = 0; i < cache->n && !slot; i++)
        if (strcmp(cache->entries[i].key, key) == 0)
            slot = &cache->entries[i];
    if (!slot && cache->n < CF_ENTRA_CACHE_MAX)
        slot = &cache->entries[cache->n++];
    if (!slot) {
        slot = &cache->entries[0];
        for (size_t i = 1; i < cache->n; i++)
            if (cache->entries[i].expires_at < slot->expires_at)
                slot = &cache->entries[i];
    }
    cf_azure_secret_free(slot->token);
    snprintf(slot->key, sizeof(slot->key), "%s", key);
    slot->token = copy;
    slot->expires_at = expires_at;
    pthread_mutex_unlock(&cache->lock);
}

/* Appends "name=escaped(value)&" to body. */
static enum cf_rc form_add(struct cf_buf *body, const char *name, const char *value)
{
    size_t size = strlen(value) * 3 + 1;
    char *escaped = malloc(size);
    enum cf_rc rc = CF_ENOMEM;
    if (escaped && cf_azure_escape(value, escaped, size))
        rc = cf_buf_printf(body, "%s%s=%s", body->len ? "&" : "", name, escaped);
    if (escaped) {
        sodium_memzero(escaped, size);
        free(escaped);
    }
    return rc;
}

/* err from an Entra error answer: names the credential kind, the status, the OAuth error and the
 * first line of error_description (which starts with the AADSTS code); *aadsts (may be NULL) the
 * first of error_codes. Body {error, error_description, error_codes, timestamp, trace_id,
 * correlation_id}: https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes
 */
static enum cf_rc token_error(long status, const json_t *body, bool certificate, long *aadsts,
                              struct cf_err *err)
{
    const char *error = json_string_value(json_object_get(body, "error"));
    const json_t *first_code = json_array_get(json_object_get(body, "error_codes"), 0);
    char description[160];
    enum cf_rc rc = CF_EUNAUTH;
    if (aadsts && json_is_integer(first_code))
        *aadsts = (long)json_integer_value(first_code);
    cf_azure_first_line(json_string_value(json_object_get(body, "error_description")), description,
                        sizeof(description));
    if (status == 429)
        rc = CF_ERATELIMIT;
    else if (status >= 500 || (status < 400 && status != 0))
        rc = CF_EIO;
    return cf_err_set(err, rc, "Entra ID refused the %s (%ld %.32s): %s",
                      certificate ? "certificate" : "client secret", status,
                      error ? error : "no error code",
                      description[0] ? description : "no description");
}

/* cf_entra_token and cf_entra_token_code: *aadsts (may be NULL) as the latter's. */
/* Hands a token just received to the caller (*token: a copy) and to the cache under key. */
static enum cf_rc keep_token(const struct cf_provider_conn *conn, const char *key,
                             const char *access, long long expires_in, char **token,
                             int64_t *expires_at_ms, struct cf_err *err)
{
    int64_t expires_at = cf_now_ms() + (int64_t)expires_in * 1000;
    *token = strdup(access);
    if (!*token)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    if (expires_at_ms)
        *expires_at_ms = expires_at;
    if (conn->entra)
        cache_put(conn->entra, key, access, expires_at);
    return CF_OK;
}

/* A token from the managed identity endpoint of the Azure Instance Metadata Service: GET
 * {imdsEndpoint}?api-version=2018-02-01&resource=R[&client_id=C] with "Metadata: true" ->
 * {"access_token", "expires_in" (a string), ...}; errors {"error", "error_description"}
 * (https://learn.microsoft.com/en-us/entra/identity/managed-identities-azure-resources/
 * how-to-use-vm-token). clientId names a user-assigned identity; without it, the system-assigned
 * one. No credential is sent: the endpoint is reachable only from the machine itself. */
static enum cf_rc imds_token(const struct cf_provider_conn *conn, const char *scope, char **token,
                             int64_t *expires_at_ms, struct cf_err *err)
{
    const char *endpoint = cf_azure_cred(conn, "imdsEndpoint");
    const char *client = cf_azure_cred(conn, "clientId");
    char resource[256], resource_e[600], client_e[200], url[1024], key[KEY_MAX];
    json_t *reply = NULL;
    long status = 0;
    enum cf_rc rc;
    size_t resource_len = strlen(scope);

    *token = NULL;
    if (!endpoint)
        endpoint = CF_ENTRA_IMDS_ENDPOINT;
    if (resource_len > 9 && strcmp(scope + resource_len - 9, "/.default") == 0)
        resource_len -= 9; /* IMDS takes the resource, not a v2.0 scope */
    if (resource_len >= sizeof(resource))
        return cf_err_set(err, CF_EINVAL, "the managed identity's resource is too long");
    memcpy(resource, scope, resource_len);
    resource[resource_len] = '\0';
    client_e[0] = '\0';
    if (!cf_azure_escape(resource, resource_e, sizeof(resource_e)) ||
        (client && !cf_azure_escape(client, client_e, sizeof(client_e))) ||
        (size_t)snprintf(url, sizeof(url), "%s?api-version=2018-02-01&resource=%s%s%s", endpoint,
                         resource_e, client ? "&client_id=" : "",
                         client ? client_e : "") >= sizeof(url))
        return cf_err_set(err, CF_EINVAL, "the managed identity token URL is too long");
    snprintf(key, sizeof(key), "imds|%s|%s|%s", endpoint, client ? client : "", scope);
    if (conn->entra) {
        *token = cache_get(conn->entra, key, expires_at_ms);
        if (*token)
            return CF_OK;
    }
    rc = cf_azure_call("The managed identity endpoint", "GET", url, NULL, NULL, "Metadata: true",
                       NULL, &status, &reply, err);
    if (rc != CF_OK)
        goto out;
    const char *access = json_string_value(json_object_get(reply, "access_token"));
    const json_t *expires = json_object_get(reply, "expires_in");
    long long expires_in = json_is_integer(expires)  ? (long long)json_integer_value(expires)
                           : json_is_string(expires) ? strtoll(json_string_value(expires), NULL, 10)
                                                     : 0;
    if (status != 200 || !access) {
        char description[160];
        cf_azure_first_line(json_string_value(json_object_get(reply, "error_description")),
                            description, sizeof(description));
        const char *code = json_string_value(json_object_get(reply, "error"));
        rc = cf_err_set(err, status == 200 ? CF_EIO : cf_azure_status_rc(status),
                        "the managed identity endpoint gave no token for \"%s\" (%ld %s): %s",
                        resource, status, code ? code : "no error code",
                        description[0] ? description : "no description");
        goto out;
    }
    rc = keep_token(conn, key, access, expires_in, token, expires_at_ms, err);
out:
    json_decref(reply);
    return rc;
}

static enum cf_rc token_get(const struct cf_provider_conn *conn, const char *scope, char **token,
                            int64_t *expires_at_ms, long *aadsts, struct cf_err *err)
{
    if (conn->method && strcmp(conn->method, "managed-identity") == 0) {
        if (aadsts)
            *aadsts = 0;
        return imds_token(conn, scope, token, expires_at_ms, err);
    }

    const char *tenant = cf_azure_cred(conn, "tenantId");
    const char *client = cf_azure_cred(conn, "clientId");
    const char *authority = cf_azure_cred(conn, "authorityHost");
    bool certificate = conn->method && strcmp(conn->method, "certificate") == 0;
    const char *credential = cf_azure_cred(conn, certificate ? "certificate" : "clientSecret");
    struct cf_buf body, assertion;
    char url[512], key[KEY_MAX], tenant_e[200], hash_hex[33];
    unsigned char hash[16];
    json_t *reply = NULL;
    long status = 0;
    enum cf_rc rc;

    *token = NULL;
    if (aadsts)
        *aadsts = 0;
    cf_buf_init(&body, 64 * 1024);
    cf_buf_init(&assertion, 64 * 1024);
    if (!tenant || !client || !credential) {
        const char *field = !tenant       ? "tenantId"
                            : !client     ? "clientId"
                            : certificate ? "certificate"
                                          : "clientSecret";
        rc = cf_err_field(err, CF_EINVAL, field, "the connection's credentials lack \"%s\"", field);
        goto out;
    }
    if (!authority)
        authority = CF_ENTRA_AUTHORITY;
    /* the credential goes to this URL: https, or plain http to a loopback host only */
    if (cf_net_url_refused(authority)) {
        rc = cf_err_field(err, CF_EINVAL, "authorityHost", "\"authorityHost\" %s",
                          cf_net_url_refused(authority));
        goto out;
    }
    if (!cf_azure_escape(tenant, tenant_e, sizeof(tenant_e)) ||
        (size_t)snprintf(url, sizeof(url), "%s/%s/oauth2/v2.0/token", authority, tenant_e) >=
            sizeof(url)) {
        rc = cf_err_field(err, CF_EINVAL, "tenantId", "the Entra ID token URL is too long");
        goto out;
    }
    /* the credential's hash is part of the key, so that a replaced secret is not served the
     * token the old one earned */
    crypto_generichash(hash, sizeof(hash), (const unsigned char *)credential, strlen(credential),
                       NULL, 0);
    sodium_bin2hex(hash_hex, sizeof(hash_hex), hash, sizeof(hash));
    snprintf(key, sizeof(key), "%s|%s|%s|%s|%s", authority, tenant, client, hash_hex, scope);
    if (conn->entra) {
        *token = cache_get(conn->entra, key, expires_at_ms);
        if (*token) {
            rc = CF_OK;
            goto out;
        }
    }
    rc = form_add(&body, "client_id", client);
    if (rc == CF_OK)
        rc = form_add(&body, "scope", scope);
    if (rc == CF_OK)
        rc = form_add(&body, "grant_type", "client_credentials");
    if (rc == CF_OK && certificate) {
        rc = cf_assertion_sign(credential, "the connection's \"certificate\"", client, url,
                               cf_now_ms() / 1000, &assertion, err);
        if (rc != CF_OK)
            goto out;
        rc = form_add(&body, "client_assertion_type",
                      "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
        if (rc == CF_OK)
            rc = form_add(&body, "client_assertion", assertion.data);
    } else if (rc == CF_OK) {
        rc = form_add(&body, "client_secret", credential);
    }
    if (rc != CF_OK) {
        cf_err_set(err, rc, "out of memory");
        goto out;
    }
    rc = cf_azure_call("Entra ID", "POST", url, NULL, "application/x-www-form-urlencoded", NULL,
                       body.data, &status, &reply, err);
    if (rc != CF_OK)
        goto out;
    const char *access = json_string_value(json_object_get(reply, "access_token"));
    json_int_t expires_in = json_integer_value(json_object_get(reply, "expires_in"));
    if (status != 200 || !access) {
        rc = token_error(status, reply, certificate, aadsts, err);
        goto out;
    }
    rc = keep_token(conn, key, access, expires_in, token, expires_at_ms, err);
out:
    json_decref(reply); /* the wiping allocator, when installed, clears the token's copy */
    cf_buf_release_wipe(&body);
    cf_buf_release_wipe(&assertion);
    return rc;
}

enum cf_rc cf_entra_token(const struct cf_provider_conn *conn, const char *scope, char **token,
                          int64_t *expires_at_ms, struct cf_err *err)
{
    return token_get(conn, scope, token, expires_at_ms, NULL, err);
}

enum cf_rc cf_entra_token_code(const struct cf_provider_conn *conn, const char *scope, char **token,
                               long *aadsts, struct cf_err *err)
{
    return token_get(conn, scope, token, NULL, aadsts, err);
}
