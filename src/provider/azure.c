/* Helpers shared by the Azure providers: a JSON request with retries through net/http.h, and
 * small encoders. */
#include "provider/azure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "net/http.h"
#include "provider/entra.h"

enum cf_rc cf_azure_call(const char *system, const char *method, const char *url,
                         const char *authorization, const char *content_type, const char *extra,
                         const char *body, long *status, json_t **json, struct cf_err *err)
{
    struct cf_http_response resp = {0};
    char *auth = NULL, ctype[128] = "";
    const char *headers[5];
    size_t h = 0;
    enum cf_rc rc;

    *status = 0;
    *json = NULL;
    if (authorization) {
        auth = cf_azure_auth_header(authorization);
        if (!auth)
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        headers[h++] = auth;
    }
    if (content_type) {
        snprintf(ctype, sizeof(ctype), "Content-Type: %s", content_type);
        headers[h++] = ctype;
    }
    if (extra)
        headers[h++] = extra;
    headers[h++] = "Accept: application/json";
    headers[h] = NULL;
    struct cf_http_request req = {
        .net = {.url = url},
        .method = method,
        .body = body,
        .headers = headers,
        .response_max = CF_AZURE_RESPONSE_MAX,
        .attempts = CF_AZURE_ATTEMPTS,
        .retry_base_ms = CF_AZURE_RETRY_BASE_MS,
    };
    rc = cf_http_perform(&req, &resp, err);
    if (rc != CF_OK) {
        if (rc != CF_ENOMEM) {
            char why[CF_ERR_MSG_MAX];
            snprintf(why, sizeof(why), "%s", err->msg);
            cf_err_set(err, rc, "%s is unreachable: %s", system, why);
        }
        goto out;
    }
    *status = resp.status;
    /* kept for the caller's error: how long the service asked to wait (429, 503) */
    err->retry_after_s = resp.retry_after_s > 86400 ? 86400 : (int)resp.retry_after_s;
    if (resp.body && resp.len)
        *json = json_loadb(resp.body, resp.len, 0, NULL);
out:
    cf_azure_secret_free(auth);
    /* a response may carry a secret value (a Key Vault GET) */
    if (resp.body)
        sodium_memzero(resp.body, resp.len);
    cf_http_response_release(&resp);
    return rc;
}

const char *cf_azure_cred(const struct cf_provider_conn *conn, const char *name)
{
    const char *v = json_string_value(json_object_get(conn->credentials, name));
    return v && v[0] ? v : NULL;
}

bool cf_azure_escape(const char *text, char *out, size_t size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || strchr("-._~", *p);
        if (o + (plain ? 1 : 3) >= size)
            return false;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (size == 0)
        return false;
    out[o] = '\0';
    return true;
}

bool cf_azure_b64url(const unsigned char *bytes, size_t n, char *out, size_t size)
{
    if (size < sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING))
        return false;
    sodium_bin2base64(out, size, bytes, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return true;
}

char *cf_azure_auth_header(const char *value)
{
    size_t size = strlen(value) + sizeof("Authorization: ");
    char *header = malloc(size);
    if (header)
        snprintf(header, size, "Authorization: %s", value);
    return header;
}

void cf_azure_secret_free(char *text)
{
    if (!text)
        return;
    sodium_memzero(text, strlen(text));
    free(text);
}

void cf_azure_first_line(const char *text, char *out, size_t size)
{
    size_t n = text ? strcspn(text, "\r\n") : 0;
    if (size == 0)
        return;
    if (n >= size)
        n = size - 1;
    memcpy(out, text ? text : "", n);
    out[n] = '\0';
}

void cf_azure_sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

enum cf_rc cf_azure_status_rc(long status)
{
    switch (status) {
    case 401:
        return CF_EUNAUTH;
    case 403:
        return CF_EFORBIDDEN;
    case 404:
        return CF_ENOTFOUND;
    case 409:
        return CF_ECONFLICT;
    case 429:
        return CF_ERATELIMIT;
    default:
        return status >= 400 && status < 500 ? CF_EVALIDATION : CF_EIO;
    }
}

enum cf_rc cf_azure_bearer(const struct cf_provider_conn *conn, const char *scope,
                           char **authorization, struct cf_err *err)
{
    char *token = NULL;
    enum cf_rc rc = cf_entra_token(conn, scope, &token, NULL, err);
    *authorization = NULL;
    if (rc != CF_OK)
        return rc;
    size_t size = strlen(token) + sizeof("Bearer ");
    *authorization = malloc(size);
    if (*authorization)
        snprintf(*authorization, size, "Bearer %s", token);
    cf_entra_token_free(token);
    return *authorization ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}
