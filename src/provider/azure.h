/* What the Azure providers (Entra ID, Azure DevOps, Key Vault) share: one JSON-over-HTTP call with
 * retries, credential fields of a connection, URL escaping and base64url. Internal to provider/. */
#ifndef CF_PROVIDER_AZURE_H
#define CF_PROVIDER_AZURE_H

#include <stddef.h>

#include <jansson.h>

#include "provider/provider.h"
#include "util/err.h"

#define CF_AZURE_ATTEMPTS 4 /* tries per request: 429 and 5xx are retried, Retry-After honoured */
#define CF_AZURE_RETRY_BASE_MS 200 /* first backoff when no Retry-After came */
#define CF_AZURE_RESPONSE_MAX (4 * 1024 * 1024)

/* One request through net/http.h. system names the service in messages ("Azure DevOps").
 * authorization is the whole header value ("Bearer ...", "Basic ...") or NULL; content_type,
 * extra (one more "Name: value" header line) and body may be NULL. CF_OK when a response arrived:
 * *status its status, *json its body parsed (NULL when empty or not JSON; the caller decrefs)
 * and err->retry_after_s the answer's Retry-After in seconds (0: none; cf_err_set clears it, so a
 * caller that turns the answer into an error saves it first). Otherwise err says why ("Azure DevOps
 * is unreachable: ...") with the rc of cf_http_perform. Thread-safe. */
enum cf_rc cf_azure_call(const char *system, const char *method, const char *url,
                         const char *authorization, const char *content_type, const char *extra,
                         const char *body, long *status, json_t **json, struct cf_err *err);

/* The string field name of the connection's credentials, or NULL when absent or not a string. */
const char *cf_azure_cred(const struct cf_provider_conn *conn, const char *name);

/* Percent-encodes text (everything but unreserved characters) into out. false when it does not
 * fit. */
bool cf_azure_escape(const char *text, char *out, size_t size);

/* base64url without padding of n bytes into out (size: sodium_base64_ENCODED_LEN). false when it
 * does not fit. */
bool cf_azure_b64url(const unsigned char *bytes, size_t n, char *out, size_t size);

/* "Authorization: " followed by value, in a buffer from malloc that the caller frees with
 * cf_azure_secret_free (it holds a credential). NULL when out of memory. */
char *cf_azure_auth_header(const char *value);

/* *authorization: "Bearer <token>" for scope with conn's Entra ID credentials (cf_entra_token), to
 * free with cf_azure_secret_free. Errors as cf_entra_token's. */
enum cf_rc cf_azure_bearer(const struct cf_provider_conn *conn, const char *scope,
                           char **authorization, struct cf_err *err);

/* Wipes and frees a NUL-terminated secret string; NULL is a no-op. */
void cf_azure_secret_free(char *text);

/* Copies the first line of text (at most size - 1 bytes, cut before a CR or LF) into out. */
void cf_azure_first_line(const char *text, char *out, size_t size);

/* Sleeps ms milliseconds (the waits between polls of an operation Azure finishes later). */
void cf_azure_sleep_ms(long ms);

/* The rc that an Azure error status stands for: 401 CF_EUNAUTH, 403 CF_EFORBIDDEN, 404
 * CF_ENOTFOUND, 409 CF_ECONFLICT, 429 CF_ERATELIMIT, other 4xx CF_EVALIDATION, else CF_EIO. */
enum cf_rc cf_azure_status_rc(long status);

#endif
