/* Azure Key Vault as a sync destination: set, soft-delete, recover and purge secrets, list them
 * through nextLink pages, with Coffer's tags marking the secrets it manages. */
#include "provider/keyvault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include <sodium.h>

#include "net/http.h"
#include "provider/azure.h"
#include "provider/entra.h"
#include "util/str.h"
#include "util/wipemem.h"

#define SYSTEM "Azure Key Vault"
#define URL_MAX 2048
#define POLLS 10 /* tries of an operation that waits for a recovery or deletion to finish */
#define POLL_MS 300

static const char *vault_url(const json_t *config)
{
    return json_string_value(json_object_get(config, "vaultBaseUrl"));
}

static enum cf_rc kv_config_check(const json_t *config, struct cf_err *err)
{
    const char *url = vault_url(config);
    const char *why;
    const json_t *purge = json_object_get(config, "purgeOnDelete");
    if (!json_is_object(config))
        return cf_err_field(err, CF_EVALIDATION, "destinationConfig",
                            "the destination config must be an object");
    if (!url || !url[0])
        return cf_err_field(err, CF_EVALIDATION, "vaultBaseUrl",
                            "\"vaultBaseUrl\" is required (https://NAME.vault.azure.net)");
    if (strlen(url) > 512 || (why = cf_net_url_refused(url)) != NULL)
        return cf_err_field(err, CF_EVALIDATION, "vaultBaseUrl", "\"vaultBaseUrl\" %s",
                            strlen(url) > 512 ? "is too long" : why);
    if (purge && !json_is_boolean(purge))
        return cf_err_field(err, CF_EVALIDATION, "purgeOnDelete",
                            "\"purgeOnDelete\" must be true or false");
    return CF_OK;
}

/* Key Vault names are ^[0-9a-zA-Z-]{1,127}$: '_' becomes '-', anything else is refused. */
static enum cf_rc kv_map_name(const char *name, char *out, size_t size, struct cf_err *err)
{
    size_t n = strlen(name);
    if (n == 0 || n > CF_KEYVAULT_NAME_MAX)
        return cf_err_field(err, CF_EVALIDATION, "name",
                            "Key Vault names are 1 to %d characters; \"%.64s\" has %zu",
                            CF_KEYVAULT_NAME_MAX, name, n);
    if (n >= size)
        return cf_err_field(err, CF_EVALIDATION, "name", "the name \"%.64s\" is too long", name);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')
            out[i] = c;
        else if (c == '_')
            out[i] = '-';
        else
            return cf_err_field(err, CF_EVALIDATION, "name",
                                "\"%.64s\" cannot be a Key Vault name: only letters, digits, "
                                "dashes and underscores (written as dashes) map",
                                name);
    }
    out[n] = '\0';
    return CF_OK;
}

/* The vault's base URL without a trailing slash, into out. */
static void base_url(const json_t *config, char *out, size_t size)
{
    snprintf(out, size, "%s", vault_url(config));
    size_t n = strlen(out);
    while (n > 0 && out[n - 1] == '/')
        out[--n] = '\0';
}

struct session {
    char base[600];
    char *bearer; /* "Bearer <token>", wiped */
};

static enum cf_rc session_open(struct session *s, const struct cf_provider_conn *conn,
                               const json_t *config, struct cf_err *err)
{
    memset(s, 0, sizeof(*s));
    base_url(config, s->base, sizeof(s->base));
    return cf_azure_bearer(conn, CF_ENTRA_SCOPE_VAULT, &s->bearer, err);
}

static void session_close(struct session *s)
{
    cf_azure_secret_free(s->bearer);
    s->bearer = NULL;
}

/* The most precise error code of a Key Vault error answer: error.innererror.code when there is
 * one (e.g. ObjectIsDeletedButRecoverable under Conflict, ForbiddenByRbac under Forbidden), else
 * error.code; NULL when the answer has none. */
static const char *error_code(const json_t *body)
{
    const json_t *e = json_object_get(body, "error");
    const char *inner =
        json_string_value(json_object_get(json_object_get(e, "innererror"), "code"));
    return inner ? inner : json_string_value(json_object_get(e, "code"));
}

/* err from a Key Vault error answer {"error":{"code","message","innererror"}}, naming what was
 * done. */
static enum cf_rc kv_error(long status, const json_t *body, const char *what, const char *name,
                           struct cf_err *err)
{
    const char *code = error_code(body);
    char message[120];
    cf_azure_first_line(
        json_string_value(json_object_get(json_object_get(body, "error"), "message")), message,
        sizeof(message));
    return cf_err_set(err, cf_azure_status_rc(status),
                      SYSTEM " refused to %s \"%.127s\" (%ld %.48s): %s", what, name, status,
                      code ? code : "no error code", message[0] ? message : "no message");
}

static bool error_code_is(const json_t *body, const char *code)
{
    const char *c = error_code(body);
    return c && strcmp(c, code) == 0;
}

/* One call on path under the vault ("secrets/NAME", ...). */
static enum cf_rc kv_call(const struct session *s, const char *method, const char *path,
                          const char *body, long *status, json_t **reply, struct cf_err *err)
{
    char url[URL_MAX];
    if ((size_t)snprintf(url, sizeof(url), "%s/%s%sapi-version=" CF_KEYVAULT_API_VERSION, s->base,
                         path, strchr(path, '?') ? "&" : "?") >= sizeof(url))
        return cf_err_set(err, CF_EINVAL, "the Key Vault URL is too long");
    return cf_azure_call(SYSTEM, method, url, s->bearer, body ? "application/json" : NULL, NULL,
                         body, status, reply, err);
}

/* The PUT body of item: value, attributes (enabled, exp) and Coffer's tags. */
static char *set_body(const struct cf_sync_item *item)
{
    char version[32];
    snprintf(version, sizeof(version), "%lld", (long long)item->version);
    json_t *attributes = json_pack("{s:b}", "enabled", 1);
    if (attributes && item->expires_at > 0)
        json_object_set_new(attributes, "exp", json_integer(item->expires_at / 1000));
    json_t *o = json_pack("{s:s%, s:s, s:o?, s:{s:s, s:s, s:s}}", "value", item->value,
                          item->value_len, "contentType", "text/plain", "attributes", attributes,
                          "tags", "coffer-location", item->location ? item->location : "",
                          "coffer-version", version, "coffer-key", item->key ? item->key : "");
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

static void free_body(char *text)
{
    if (text)
        sodium_memzero(text, strlen(text));
    cf_json_free_text(text);
}

/* PUT of one item; a name that is deleted but recoverable is recovered first, then written. */
static enum cf_rc put_item(const struct session *s, const struct cf_sync_item *item,
                           struct cf_err *err)
{
    char path[256], name[CF_KEYVAULT_NAME_MAX + 1];
    char *body = NULL;
    json_t *reply = NULL;
    long status = 0;
    bool recovered = false;
    enum cf_rc rc;

    rc = kv_map_name(item->name, name, sizeof(name), err);
    if (rc != CF_OK)
        return rc;
    if (strcmp(name, item->name) != 0)
        return cf_err_field(err, CF_EVALIDATION, "name",
                            "\"%.64s\" is not a Key Vault name (map it first)", item->name);
    body = set_body(item);
    if (!body)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    snprintf(path, sizeof(path), "secrets/%s", name);
    for (int attempt = 0; attempt < POLLS; attempt++) {
        json_decref(reply);
        reply = NULL;
        rc = kv_call(s, "PUT", path, body, &status, &reply, err);
        if (rc != CF_OK)
            goto out;
        if (status == 200)
            goto out;
        if (status == 409 && error_code_is(reply, "ObjectIsDeletedButRecoverable") && !recovered) {
            /* soft-deleted earlier (by a sync or by hand): bring it back, then write the new
             * version on top, as a re-created secret should be */
            char recover[256];
            long rstatus = 0;
            json_t *rreply = NULL;
            snprintf(recover, sizeof(recover), "deletedsecrets/%s/recover", name);
            rc = kv_call(s, "POST", recover, NULL, &rstatus, &rreply, err);
            if (rc == CF_OK && rstatus != 200)
                rc = kv_error(rstatus, rreply, "recover the deleted secret", name, err);
            json_decref(rreply);
            if (rc != CF_OK)
                goto out;
            recovered = true;
            continue;
        }
        if (status == 409 && recovered) {
            /* the recovery is still running on the service's side */
            cf_azure_sleep_ms(POLL_MS);
            continue;
        }
        break;
    }
    rc = kv_error(status, reply, "set the secret", name, err);
out:
    json_decref(reply);
    free_body(body);
    return rc;
}

/* Soft-deletes name (already gone is fine) and purges it when purge is set. */
static enum cf_rc delete_item(const struct session *s, const char *name, bool purge,
                              struct cf_err *err)
{
    char path[256];
    json_t *reply = NULL;
    long status = 0;
    enum cf_rc rc;

    if (strlen(name) > CF_KEYVAULT_NAME_MAX ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
                     "KLMNOPQRSTUVWXYZ0123456789-") != strlen(name))
        return cf_err_field(err, CF_EVALIDATION, "name", "\"%.64s\" is not a Key Vault name", name);
    snprintf(path, sizeof(path), "secrets/%s", name);
    rc = kv_call(s, "DELETE", path, NULL, &status, &reply, err);
    if (rc != CF_OK)
        goto out;
    if (status != 200 && status != 404) {
        rc = kv_error(status, reply, "delete the secret", name, err);
        goto out;
    }
    if (!purge)
        goto out;
    snprintf(path, sizeof(path), "deletedsecrets/%s", name);
    for (int attempt = 0; attempt < POLLS; attempt++) {
        json_decref(reply);
        reply = NULL;
        rc = kv_call(s, "DELETE", path, NULL, &status, &reply, err);
        if (rc != CF_OK || status == 204 || status == 404)
            goto out;
        if (status != 409)
            break;
        cf_azure_sleep_ms(POLL_MS); /* the deletion is still in progress */
    }
    rc = kv_error(status, reply, "purge the deleted secret", name, err);
out:
    json_decref(reply);
    return rc;
}

static enum cf_rc kv_push(const struct cf_provider_conn *conn, const json_t *config,
                          const struct cf_sync_item *items, size_t n, const char *const *remove,
                          size_t n_remove, struct cf_err *err)
{
    struct session s;
    enum cf_rc rc = kv_config_check(config, err);
    if (rc != CF_OK)
        return rc;
    rc = session_open(&s, conn, config, err);
    bool purge = json_is_true(json_object_get(config, "purgeOnDelete"));
    for (size_t i = 0; rc == CF_OK && i < n; i++)
        rc = put_item(&s, &items[i], err);
    for (size_t i = 0; rc == CF_OK && i < n_remove; i++)
        rc = delete_item(&s, remove[i], purge, err);
    session_close(&s);
    return rc;
}

/* Appends the secret described by item (a SecretItem of a list page) to out, with its value. */
static enum cf_rc list_add(const struct session *s, const json_t *item, struct cf_dest_list *out,
                           struct cf_err *err)
{
    const char *id = json_string_value(json_object_get(item, "id"));
    const char *slash = id ? strstr(id, "/secrets/") : NULL;
    const json_t *tags = json_object_get(item, "tags");
    char name[CF_KEYVAULT_NAME_MAX + 1], path[256];
    json_t *reply = NULL;
    long status = 0;
    enum cf_rc rc;

    /* secrets that back Key Vault certificates are the service's, not ours */
    if (!slash || json_is_true(json_object_get(item, "managed")))
        return CF_OK;
    snprintf(name, sizeof(name), "%s", slash + strlen("/secrets/"));
    name[strcspn(name, "/?")] = '\0';
    struct cf_dest_entry *grown = realloc(out->items, (out->n + 1) * sizeof(*grown));
    if (!grown)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    out->items = grown;
    struct cf_dest_entry *e = &out->items[out->n];
    memset(e, 0, sizeof(*e));
    e->name = strdup(name);
    if (!e->name)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    out->n++;
    e->managed = json_object_get(tags, "coffer-location") != NULL;
    e->updated_at =
        json_integer_value(json_object_get(json_object_get(item, "attributes"), "updated")) * 1000;
    snprintf(path, sizeof(path), "secrets/%s", name);
    rc = kv_call(s, "GET", path, NULL, &status, &reply, err);
    if (rc == CF_OK && status == 200) {
        const char *value = json_string_value(json_object_get(reply, "value"));
        if (value && !(e->value = strdup(value)))
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    } else if (rc == CF_OK && status != 404 && status != 403) {
        /* 403: the role may list but not read (Key Vault Secrets Officer reads; a custom role
         * may not): the value stays unknown. 404: deleted since the page was read. */
        rc = kv_error(status, reply, "read the secret", name, err);
    }
    json_decref(reply);
    return rc;
}

/* Whether url is on the vault at base: same scheme, host and port (nextLink spells the default
 * port out: https://NAME.vault.azure.net:443/secrets?...) and a path under base's. */
static bool same_vault(const char *base, const char *url)
{
    CURLU *a = curl_url(), *b = curl_url();
    char *parts[2][4] = {{NULL}};
    static const CURLUPart which[4] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT,
                                       CURLUPART_PATH};
    bool same = false;
    if (a && b && curl_url_set(a, CURLUPART_URL, base, 0) == CURLUE_OK &&
        curl_url_set(b, CURLUPART_URL, url, 0) == CURLUE_OK) {
        same = true;
        for (int i = 0; i < 4; i++) {
            if (curl_url_get(a, which[i], &parts[0][i], CURLU_DEFAULT_PORT) != CURLUE_OK ||
                curl_url_get(b, which[i], &parts[1][i], CURLU_DEFAULT_PORT) != CURLUE_OK)
                same = false;
        }
        if (same) {
            size_t base_path = strlen(parts[0][3]);
            while (base_path > 0 && parts[0][3][base_path - 1] == '/')
                base_path--;
            same = strcasecmp(parts[0][0], parts[1][0]) == 0 &&
                   strcasecmp(parts[0][1], parts[1][1]) == 0 &&
                   strcmp(parts[0][2], parts[1][2]) == 0 &&
                   strncmp(parts[0][3], parts[1][3], base_path) == 0 &&
                   parts[1][3][base_path] == '/';
        }
    }
    for (int i = 0; i < 4; i++) {
        curl_free(parts[0][i]);
        curl_free(parts[1][i]);
    }
    curl_url_cleanup(a);
    curl_url_cleanup(b);
    return same;
}

static enum cf_rc kv_list(const struct cf_provider_conn *conn, const json_t *config,
                          struct cf_dest_list *out, struct cf_err *err)
{
    struct session s;
    json_t *page = NULL;
    char *next = NULL;
    long status = 0;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = kv_config_check(config, err);
    if (rc != CF_OK)
        return rc;
    rc = session_open(&s, conn, config, err);
    if (rc != CF_OK)
        goto out;
    rc = kv_call(&s, "GET", "secrets?maxresults=" CF_KEYVAULT_PAGE_TEXT, NULL, &status, &page, err);
    for (int pages = 0; rc == CF_OK; pages++) {
        if (status != 200) {
            rc = kv_error(status, page, "list the secrets of", s.base, err);
            break;
        }
        const json_t *items = json_object_get(page, "value");
        size_t i;
        const json_t *item;
        json_array_foreach(items, i, item)
        {
            rc = list_add(&s, item, out, err);
            if (rc != CF_OK)
                goto out;
        }
        const char *link = json_string_value(json_object_get(page, "nextLink"));
        if (!link || !link[0])
            break;
        /* the bearer token goes only to the vault itself */
        if (!same_vault(s.base, link)) {
            rc = cf_err_set(err, CF_EIO, SYSTEM " gave a nextLink outside the vault");
            break;
        }
        if (pages + 1 >= CF_KEYVAULT_PAGES_MAX) {
            rc =
                cf_err_set(err, CF_EIO, SYSTEM " listed more than %d pages", CF_KEYVAULT_PAGES_MAX);
            break;
        }
        free(next);
        next = strdup(link);
        json_decref(page);
        page = NULL;
        if (!next) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            break;
        }
        rc = cf_azure_call(SYSTEM, "GET", next, s.bearer, NULL, NULL, NULL, &status, &page, err);
    }
out:
    if (rc != CF_OK)
        cf_dest_list_release(out);
    free(next);
    json_decref(page);
    session_close(&s);
    return rc;
}

enum cf_rc cf_keyvault_check(const struct cf_provider_conn *conn, json_t **report,
                             struct cf_err *err)
{
    char *token = NULL;
    int64_t token_expires = 0;
    const char *vault = cf_azure_cred(conn, "vaultBaseUrl");
    char detail[300];
    enum cf_rc rc;

    *report = NULL;
    rc = cf_entra_token(conn, CF_ENTRA_SCOPE_VAULT, &token, &token_expires, err);
    cf_entra_token_free(token);
    if (rc != CF_OK)
        return rc;
    snprintf(detail, sizeof(detail), "Entra ID issued a token for Key Vault");
    if (vault) {
        json_t *config = json_pack("{s:s}", "vaultBaseUrl", vault);
        struct session s;
        json_t *page = NULL;
        long status = 0;
        rc = config ? kv_config_check(config, err) : cf_err_set(err, CF_ENOMEM, "out of memory");
        if (rc == CF_OK)
            rc = session_open(&s, conn, config, err);
        if (rc == CF_OK) {
            rc = kv_call(&s, "GET", "secrets?maxresults=1", NULL, &status, &page, err);
            if (rc == CF_OK && status != 200)
                rc = kv_error(status, page, "list the secrets of", s.base, err);
            session_close(&s);
        }
        json_decref(page);
        json_decref(config);
        if (rc != CF_OK)
            return rc;
        snprintf(detail, sizeof(detail),
                 "Entra ID issued a token for Key Vault, and the vault lists its secrets");
    }
    /* the client secret's own expiry is not visible to the app itself (only to Graph with
     * Application.Read.All): expiresAt stays null unless the engine knows it */
    *report = json_pack("{s:b, s:n, s:[s], s:s}", "ok", 1, "expiresAt", "scopes",
                        CF_ENTRA_SCOPE_VAULT, "detail", detail);
    return *report ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

const struct cf_dest_ops cf_dest_azure_key_vault = {
    .destination = "azure-key-vault",
    .config_check = kv_config_check,
    .map_name = kv_map_name,
    .list = kv_list,
    .push = kv_push,
};

/* wrapkey or unwrapkey (op) of in with the key at key_url
 * (https://NAME.vault.azure.net/keys/KEY[/VERSION]): POST {key_url}/{op}?api-version=...
 * {"alg": "RSA-OAEP-256", "value": base64url(in)} -> {"kid", "value": base64url(out)}
 * (https://learn.microsoft.com/en-us/rest/api/keyvault/keys/wrap-key/wrap-key, .../unwrap-key). */
static enum cf_rc key_operation(const struct cf_provider_conn *conn, const char *key_url,
                                const char *op, const uint8_t *in, size_t in_len, char *kid,
                                size_t kid_size, uint8_t *out, size_t out_max, size_t *out_len,
                                struct cf_err *err)
{
    char *bearer = NULL, *body = NULL;
    char url[URL_MAX];
    char value[1024];
    json_t *reply = NULL;
    long status = 0;
    size_t url_len = strlen(key_url);
    enum cf_rc rc;

    while (url_len > 0 && key_url[url_len - 1] == '/')
        url_len--;
    if (strncmp(key_url, "https://", 8) != 0 && strncmp(key_url, "http://", 7) != 0)
        return cf_err_set(err, CF_EINVAL,
                          "the Key Vault key must be a URL: https://NAME.vault.azure.net/keys/KEY");
    if ((size_t)snprintf(url, sizeof(url), "%.*s/%s?api-version=" CF_KEYVAULT_API_VERSION,
                         (int)url_len, key_url, op) >= sizeof(url))
        return cf_err_set(err, CF_EINVAL, "the Key Vault key URL is too long");
    if (!cf_azure_b64url(in, in_len, value, sizeof(value)))
        return cf_err_set(err, CF_EINVAL, "the value to %s is too long", op);
    json_t *request = json_pack("{s:s, s:s}", "alg", "RSA-OAEP-256", "value", value);
    sodium_memzero(value, sizeof(value));
    body = request ? json_dumps(request, JSON_COMPACT) : NULL;
    json_decref(request);
    if (!body)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    rc = cf_azure_bearer(conn, CF_ENTRA_SCOPE_VAULT, &bearer, err);
    if (rc == CF_OK)
        rc = cf_azure_call(SYSTEM, "POST", url, bearer, "application/json", NULL, body, &status,
                           &reply, err);
    if (rc != CF_OK)
        goto out;
    if (status != 200) {
        rc = kv_error(status, reply, op, key_url, err);
        goto out;
    }
    const char *got = json_string_value(json_object_get(reply, "value"));
    const char *got_kid = json_string_value(json_object_get(reply, "kid"));
    const char *end = NULL;
    if (!got || !got_kid ||
        sodium_base642bin(out, out_max, got, strlen(got), NULL, out_len, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != got + strlen(got)) {
        rc = cf_err_set(err, CF_EIO, SYSTEM " answered %s without a usable kid and value", op);
        goto out;
    }
    if (kid && !cf_strlcpy(kid, got_kid, kid_size)) {
        rc = cf_err_set(err, CF_EIO, SYSTEM " answered %s with a kid that is too long", op);
        goto out;
    }
out:
    json_decref(reply); /* the unwrapped value is wiped by the wiping allocator */
    free_body(body);
    cf_azure_secret_free(bearer);
    return rc;
}

enum cf_rc cf_keyvault_wrap_key(const struct cf_provider_conn *conn, const char *key_url,
                                const uint8_t *plain, size_t plain_len, char *kid, size_t kid_size,
                                uint8_t *wrapped, size_t wrapped_max, size_t *wrapped_len,
                                struct cf_err *err)
{
    return key_operation(conn, key_url, "wrapkey", plain, plain_len, kid, kid_size, wrapped,
                         wrapped_max, wrapped_len, err);
}

enum cf_rc cf_keyvault_unwrap_key(const struct cf_provider_conn *conn, const char *kid,
                                  const uint8_t *wrapped, size_t wrapped_len, uint8_t *plain,
                                  size_t plain_max, size_t *plain_len, struct cf_err *err)
{
    return key_operation(conn, kid, "unwrapkey", wrapped, wrapped_len, NULL, 0, plain, plain_max,
                         plain_len, err);
}
