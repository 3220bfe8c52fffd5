/* The OIDC ID token of a pipeline, fetched from the CI system or read from where it put it (see
 * ci_token.h). Requests go through the API client's libcurl code (client.h:
 * cf_client_request_url) with its own limits: a small answer, short timeouts, no redirects, https
 * only (plain http to loopback alone, so that a test can stand in for the CI system: the job's
 * access token must not cross a network in clear). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/ci_token.h"
#include "client/client.h"
#include "util/banned.h"
#include "util/str.h"

/* Azure DevOps REST API, Distributedtask "Oidctoken - Create": the api-version the documentation
 * names for this call ("This should be set to '7.1-preview.1'"). */
#define AZURE_OIDC_API_VERSION "7.1-preview.1"

#define ENDPOINT_CONNECT_TIMEOUT_MS 10000L
#define ENDPOINT_TIMEOUT_MS 30000L
#define ENDPOINT_ANSWER_MAX (64u * 1024u)
#define URL_MAX (16u * 1024u)

enum cf_rc cf_ci_source_parse(const char *text, const char *audience,
                              const char *service_connection, struct cf_ci_source *out,
                              struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    if (strcmp(text, "azure-devops") == 0) {
        out->kind = CF_CI_AZURE_DEVOPS;
    } else if (strcmp(text, "github-actions") == 0) {
        out->kind = CF_CI_GITHUB_ACTIONS;
    } else if (strcmp(text, "gitlab") == 0) {
        out->kind = CF_CI_GITLAB;
        out->name = CF_CI_GITLAB_VAR;
    } else if (strncmp(text, "file:", 5) == 0) {
        out->kind = CF_CI_FILE;
        out->name = text + 5;
    } else if (strncmp(text, "env:", 4) == 0) {
        out->kind = CF_CI_ENV;
        out->name = text + 4;
    } else {
        return cf_err_set(err, CF_EINVAL,
                          "--jwt-from takes azure-devops, github-actions, gitlab, file:PATH or "
                          "env:VAR, not '%.64s'",
                          text);
    }
    if ((out->kind == CF_CI_FILE || out->kind == CF_CI_ENV) && !*out->name)
        return cf_err_set(err, CF_EINVAL, "--jwt-from %s needs a %s after the colon", text,
                          out->kind == CF_CI_FILE ? "file path" : "variable name");
    if (audience && out->kind != CF_CI_GITHUB_ACTIONS)
        return cf_err_set(err, CF_EINVAL,
                          "--jwt-audience is for --jwt-from github-actions (the other sources "
                          "issue the audience configured in the CI system)");
    if (service_connection && out->kind != CF_CI_AZURE_DEVOPS)
        return cf_err_set(err, CF_EINVAL,
                          "--azure-devops-service-connection is for --jwt-from azure-devops");
    if (audience && !*audience)
        return cf_err_set(err, CF_EINVAL, "--jwt-audience must not be empty");
    if (service_connection && !*service_connection)
        return cf_err_set(err, CF_EINVAL, "--azure-devops-service-connection must not be empty");
    out->audience = audience;
    out->service_connection = service_connection;
    return CF_OK;
}

/* ---- the token's shape ----------------------------------------------------------------------- */

static bool is_base64url(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Trims surrounding blanks and newlines in place and checks for header.payload.signature, each a
 * non-empty base64url text. where names the source in the message. */
static enum cf_rc check_shape(struct cf_buf *jwt, const char *where, struct cf_err *err)
{
    size_t start = 0;
    while (jwt->len && strchr(" \t\r\n", jwt->data[jwt->len - 1]))
        jwt->data[--jwt->len] = '\0';
    while (start < jwt->len && strchr(" \t\r\n", jwt->data[start]))
        start++;
    if (start) {
        memmove(jwt->data, jwt->data + start, jwt->len - start + 1);
        jwt->len -= start;
    }
    if (jwt->len == 0)
        return cf_err_set(err, CF_EINVAL, "the token from %s is empty", where);
    size_t dots = 0, part = 0;
    for (size_t i = 0; i < jwt->len; i++) {
        unsigned char c = (unsigned char)jwt->data[i];
        if (c == '.') {
            if (part == 0)
                break;
            dots++;
            part = 0;
        } else if (is_base64url(c)) {
            part++;
        } else {
            dots = 0;
            break;
        }
    }
    if (dots != 2 || part == 0)
        return cf_err_set(err, CF_EINVAL,
                          "the token from %s is not a signed JWT (three base64url parts "
                          "separated by dots)",
                          where);
    return CF_OK;
}

enum cf_rc cf_ci_token_read_file(const char *path, const char *what, struct cf_buf *token,
                                 struct cf_err *err)
{
    char chunk[4096];
    ssize_t n = 0;
    enum cf_rc rc = CF_OK;
    int fd;

    cf_buf_reset(token);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cf_err_set(err, CF_EIO, "cannot read %s %s: %s", what, path, strerror(errno));
    for (;;) {
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = cf_err_set(err, CF_EIO, "cannot read %s %s: %s", what, path, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        if (token->len + (size_t)n > CF_CI_TOKEN_MAX) {
            rc = cf_err_set(err, CF_ETOOLARGE, "%s %s is larger than %u bytes", what, path,
                            CF_CI_TOKEN_MAX);
            break;
        }
        if (cf_buf_append(token, chunk, (size_t)n) != CF_OK) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            break;
        }
    }
    close(fd);
    sodium_memzero(chunk, sizeof(chunk));
    if (rc != CF_OK)
        return rc;
    while (token->len && strchr(" \t\r\n", token->data[token->len - 1]))
        token->data[--token->len] = '\0';
    if (token->len == 0)
        return cf_err_set(err, CF_EINVAL, "%s %s is empty", what, path);
    return CF_OK;
}

/* ---- endpoints ------------------------------------------------------------------------------- */

/* True for https, and for http to a loopback host (a test standing in for the CI system). */
static bool transport_is_safe(const char *url)
{
    if (strncasecmp(url, "https://", 8) == 0)
        return true;
    if (strncasecmp(url, "http://", 7) != 0)
        return false;
    const char *host = url + 7;
    size_t len = strcspn(host, "/?#");
    /* "http://127.0.0.1:80@elsewhere/" names the host after the '@'. */
    if (memchr(host, '@', len))
        return false;
    static const char *const loopback[] = {"127.0.0.1", "localhost", "[::1]"};
    for (size_t i = 0; i < CF_ARRAY_SIZE(loopback); i++) {
        size_t n = strlen(loopback[i]);
        if (len >= n && strncasecmp(host, loopback[i], n) == 0 && (len == n || host[n] == ':'))
            return true;
    }
    return false;
}

/* The endpoint's own words about a failure, never quoting the credential: the "message" of a JSON
 * error answer, else the client's account of the transport failure. */
static void endpoint_detail(const struct cf_response *resp, const char *client_message,
                            const char *credential, char *out, size_t size)
{
    const char *message = json_string_value(json_object_get(resp->json, "message"));
    if (!message)
        message = resp->status ? "no error message" : client_message;
    size_t probe = strlen(credential) < 16 ? strlen(credential) : 16;
    if (probe >= 8 && memmem(message, strlen(message), credential, probe))
        snprintf(out, size, "%s", "its message is withheld: it quotes the credential");
    else
        snprintf(out, size, "%s", message);
}

/* A request to a CI system's token endpoint: METHOD url, the query appended (after '&' when url has
 * one already), with "Authorization: Bearer credential" and the extra headers; the string member of
 * the JSON answer goes into jwt. system names the CI system, url_var and credential_var the
 * variables the URL and credential came from, and hint what to check after a 401 or 403. */
struct endpoint_call {
    const char *system;
    const char *method;
    const char *url;
    const struct cf_query_param *query;
    const char *url_var;
    const char *credential;
    const char *credential_var;
    const char *const *headers;
    const char *member;
    const char *hint;
};

static enum cf_rc call_endpoint(const struct endpoint_call *call, struct cf_buf *jwt,
                                struct cf_err *err)
{
    struct cf_client_options options = {0};
    struct cf_client *client = NULL;
    struct cf_response resp = CF_RESPONSE_INIT;
    struct cf_buf authorization, url;
    char detail[CF_ERR_MSG_MAX];
    enum cf_rc rc;

    cf_buf_init(&authorization, CF_CI_TOKEN_MAX + 16);
    cf_buf_init(&url, URL_MAX);
    rc = cf_buf_puts(&url, call->url);
    for (const struct cf_query_param *q = call->query; rc == CF_OK && q && q->name; q++) {
        if (!q->value)
            continue;
        rc = cf_buf_puts(&url, strchr(url.data, '?') ? "&" : "?");
        if (rc == CF_OK)
            rc = cf_buf_printf(&url, "%s=", q->name);
        if (rc == CF_OK)
            rc = cf_url_escape(&url, q->value);
    }
    if (rc != CF_OK) {
        rc = cf_err_set(err, rc, "%s is too long", call->url_var);
        goto out;
    }
    if (!transport_is_safe(call->url)) {
        rc = cf_err_set(err, CF_EINVAL,
                        "%s must be an https URL (plain http only to this host): %s would "
                        "travel in clear",
                        call->url_var, call->credential_var);
        goto out;
    }
    /* The CI system's own certificate authorities, not COFFER_CACERT (which is the server's). */
    options.connect_timeout_ms = ENDPOINT_CONNECT_TIMEOUT_MS;
    options.timeout_ms = ENDPOINT_TIMEOUT_MS;
    options.max_response = ENDPOINT_ANSWER_MAX;
    rc = cf_client_new(&options, &client, err);
    if (rc != CF_OK)
        goto out;
    if (cf_buf_puts(&authorization, "Bearer ") != CF_OK ||
        cf_buf_puts(&authorization, call->credential) != CF_OK) {
        rc = cf_err_set(err, CF_ETOOLARGE, "%s is too long", call->credential_var);
        goto out;
    }
    rc = cf_client_request_url(client, call->method, url.data, authorization.data, call->headers,
                               NULL, &resp, err);
    if (rc != CF_OK) {
        endpoint_detail(&resp, err->msg, call->credential, detail, sizeof(detail));
        if (resp.status == 401 || resp.status == 403)
            rc = cf_err_set(err, rc, "%s refused the ID token request (HTTP %ld: %s); %s",
                            call->system, resp.status, detail, call->hint);
        else if (resp.status >= 200 && resp.status < 300)
            rc = cf_err_set(
                err, CF_EINVAL, "%s answered the ID token request with HTTP %ld but not JSON%s%s%s",
                call->system, resp.status, resp.status == 203 ? " (a sign-in page: " : "",
                resp.status == 203 ? call->credential_var : "",
                resp.status == 203 ? " was not accepted)" : "");
        else if (resp.status >= 400 && resp.status < 500)
            rc = cf_err_set(err, rc, "%s refused the ID token request (HTTP %ld: %s)", call->system,
                            resp.status, detail);
        else if (resp.status)
            rc = cf_err_set(err, rc, "%s could not answer the ID token request (HTTP %ld: %s)",
                            call->system, resp.status, detail);
        else
            rc = cf_err_set(err, rc, "cannot get an ID token from %s (%s): %s", call->system,
                            call->url_var, detail);
        goto out;
    }
    json_t *value = json_object_get(resp.json, call->member);
    if (!json_is_string(value) || json_string_length(value) == 0) {
        rc = cf_err_set(err, CF_EINVAL,
                        "%s answered the ID token request (HTTP %ld) without a \"%s\" string",
                        call->system, resp.status, call->member);
        goto out;
    }
    cf_buf_reset(jwt);
    if (json_string_length(value) > CF_CI_TOKEN_MAX ||
        cf_buf_append(jwt, json_string_value(value), json_string_length(value)) != CF_OK) {
        rc = cf_err_set(err, CF_ETOOLARGE, "the token from %s is larger than %u bytes",
                        call->system, CF_CI_TOKEN_MAX);
        goto out;
    }
    rc = check_shape(jwt, call->system, err);
out:
    cf_response_release(&resp);
    cf_client_free(client);
    cf_buf_release(&url);
    cf_buf_release_wipe(&authorization);
    return rc;
}

static const char *env_value(const char *name)
{
    const char *value = getenv(name);
    return value && *value ? value : NULL;
}

/* Azure DevOps: the documented REST call (see ci_token.h). System.OidcRequestUri reaches scripts
 * as SYSTEM_OIDCREQUESTURI; System.AccessToken is a secret variable that a step must map into its
 * environment itself (env: SYSTEM_ACCESSTOKEN: $(System.AccessToken)). X-TFS-FedAuthRedirect:
 * Suppress makes Azure DevOps answer a refused token with 401 instead of a sign-in page, as
 * Microsoft's own AzurePipelinesCredential asks. */
static enum cf_rc fetch_azure_devops(const struct cf_ci_source *source, struct cf_buf *jwt,
                                     struct cf_err *err)
{
    static const char *const headers[] = {"X-TFS-FedAuthRedirect: Suppress", NULL};
    const char *request_uri = env_value("SYSTEM_OIDCREQUESTURI");
    const char *access_token = env_value("SYSTEM_ACCESSTOKEN");

    if (!request_uri)
        return cf_err_set(err, CF_EINVAL,
                          "SYSTEM_OIDCREQUESTURI is not set: is this an Azure DevOps pipeline "
                          "job? (the agent sets it from System.OidcRequestUri)");
    if (!access_token)
        return cf_err_set(err, CF_EINVAL,
                          "SYSTEM_ACCESSTOKEN is not set: map the job access token into the "
                          "step's environment (env: SYSTEM_ACCESSTOKEN: $(System.AccessToken))");
    const struct cf_query_param query[] = {
        {"api-version", AZURE_OIDC_API_VERSION},
        {"serviceConnectionId", source->service_connection},
        {NULL, NULL},
    };
    const struct endpoint_call call = {
        .system = "Azure DevOps",
        .method = "POST",
        .url = request_uri,
        .query = query,
        .url_var = "SYSTEM_OIDCREQUESTURI",
        .credential = access_token,
        .credential_var = "SYSTEM_ACCESSTOKEN",
        .headers = headers,
        .member = "oidcToken",
        .hint = source->service_connection
                    ? "is SYSTEM_ACCESSTOKEN this job's $(System.AccessToken), and may this "
                      "pipeline use the service connection?"
                    : "is SYSTEM_ACCESSTOKEN this job's $(System.AccessToken)?",
    };
    return call_endpoint(&call, jwt, err);
}

/* GitHub Actions: a job with `permissions: id-token: write` gets the request URL (which already
 * carries a query) and a bearer token for it. */
static enum cf_rc fetch_github_actions(const struct cf_ci_source *source, struct cf_buf *jwt,
                                       struct cf_err *err)
{
    const char *request_url = env_value("ACTIONS_ID_TOKEN_REQUEST_URL");
    const char *request_token = env_value("ACTIONS_ID_TOKEN_REQUEST_TOKEN");

    if (!request_url || !request_token)
        return cf_err_set(err, CF_EINVAL,
                          "%s is not set: is this a GitHub Actions job allowed to request an ID "
                          "token (permissions: id-token: write)?",
                          request_url ? "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
                                      : "ACTIONS_ID_TOKEN_REQUEST_URL");
    const struct cf_query_param query[] = {{"audience", source->audience}, {NULL, NULL}};
    const struct endpoint_call call = {
        .system = "GitHub Actions",
        .method = "GET",
        .url = request_url,
        .query = query,
        .url_var = "ACTIONS_ID_TOKEN_REQUEST_URL",
        .credential = request_token,
        .credential_var = "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        .member = "value",
        .hint = "is ACTIONS_ID_TOKEN_REQUEST_TOKEN this job's, and has the job id-token: write?",
    };
    return call_endpoint(&call, jwt, err);
}

enum cf_rc cf_ci_token_fetch(const struct cf_ci_source *source, struct cf_buf *jwt,
                             struct cf_err *err)
{
    char where[128];
    const char *value;

    cf_buf_reset(jwt);
    switch (source->kind) {
    case CF_CI_AZURE_DEVOPS:
        return fetch_azure_devops(source, jwt, err);
    case CF_CI_GITHUB_ACTIONS:
        return fetch_github_actions(source, jwt, err);
    case CF_CI_FILE: {
        enum cf_rc rc = cf_ci_token_read_file(source->name, "the token file", jwt, err);
        if (rc != CF_OK)
            return rc;
        snprintf(where, sizeof(where), "the file %.100s", source->name);
        return check_shape(jwt, where, err);
    }
    case CF_CI_GITLAB:
    case CF_CI_ENV:
        value = env_value(source->name);
        if (!value && source->kind == CF_CI_GITLAB)
            return cf_err_set(err, CF_EINVAL,
                              "%s is not set: declare it in the job's id_tokens (id_tokens: "
                              "%s: aud: ...), or name another variable with --jwt-from env:NAME",
                              source->name, source->name);
        if (!value)
            return cf_err_set(err, CF_EINVAL,
                              "the variable %.64s (--jwt-from env:%.64s) is not set", source->name,
                              source->name);
        if (strlen(value) > CF_CI_TOKEN_MAX || cf_buf_puts(jwt, value) != CF_OK)
            return cf_err_set(err, CF_ETOOLARGE, "the variable %.64s is larger than %u bytes",
                              source->name, CF_CI_TOKEN_MAX);
        snprintf(where, sizeof(where), "the variable %.64s", source->name);
        return check_shape(jwt, where, err);
    }
    CF_BUG("unknown token source");
}
