/* Kubernetes auth login (see k8s_auth.h): one TokenReview request through net/http.h (with a
 * timeout, a size cap and the configured CA), then the reviewed username is held
 * against the configuration's allowed namespaces, names and audience. */
#include <arpa/inet.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "auth/k8s_auth.h"
#include "crypto/serverkey.h"
#include "auth/token.h"
#include "net/http.h"
#include "util/wipemem.h"
#include "util/str.h"
#include "util/banned.h"

#define NOT_ATTACHED                                                                               \
    "Kubernetes auth method not found for identity, did you configure Kubernetes auth?"
#define SA_PREFIX "system:serviceaccount:"

/* The TokenReview URL of host into url. */
static enum cf_rc review_url(const char *host, char *url, size_t size, char *reason,
                             size_t reason_size)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *name = NULL;
    enum cf_rc rc = CF_EUNAUTH;
    size_t n = strlen(host);

    if (!u)
        return CF_ENOMEM;
    while (n && host[n - 1] == '/')
        n--;
    snprintf(url, size, "%s%.*s/apis/authentication.k8s.io/v1/tokenreviews",
             strstr(host, "://") ? "" : "https://", (int)n, host);
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &name, 0) != CURLUE_OK) {
        snprintf(reason, reason_size, "kubernetesHost is not a valid URL");
        goto out;
    }
    if (strcasecmp(scheme, "https") == 0 ||
        (strcasecmp(scheme, "http") == 0 && cf_net_is_loopback(name)))
        rc = CF_OK;
    else
        snprintf(reason, reason_size, "only https is allowed (plain http only for loopback hosts)");
out:
    curl_free(scheme);
    curl_free(name);
    curl_url_cleanup(u);
    return rc;
}

/* Sends the TokenReview of jwt and parses the reply (the whole TokenReview object); reviewer is
 * the opened reviewer JWT ("" when the login token reviews itself). */
static enum cf_rc review(const struct cf_k8s_auth_config *config, const char *reviewer,
                         const char *jwt, json_t **reply, struct cf_err *err)
{
    char url[CF_JWT_TEXT_MAX + 64], reason[CF_ERR_MSG_MAX] = "";
    struct cf_http_response resp = {0};
    char *auth = NULL, *request = NULL;
    json_t *req = NULL;
    enum cf_rc rc;

    *reply = NULL;
    rc = review_url(config->kubernetes_host, url, sizeof(url), reason, sizeof(reason));
    if (rc != CF_OK)
        goto out;
    const char *bearer = reviewer[0] ? reviewer : jwt;
    size_t auth_size = strlen(bearer) + sizeof("Authorization: Bearer ");
    auth = malloc(auth_size);
    req = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "authentication.k8s.io/v1", "kind",
                    "TokenReview", "spec", "token", jwt);
    if (req && config->allowed_audience[0])
        json_object_set_new(json_object_get(req, "spec"), "audiences",
                            json_pack("[s]", config->allowed_audience));
    request = req ? json_dumps(req, JSON_COMPACT) : NULL;
    if (!auth || !request) {
        rc = CF_ENOMEM;
        goto out;
    }
    snprintf(auth, auth_size, "Authorization: Bearer %s", bearer);
    const char *headers[] = {"Content-Type: application/json", auth, NULL};
    struct cf_http_request http = {
        .net = {.url = url,
                .ca_pem = config->ca_cert,
                .connect_timeout_ms = CF_K8S_TIMEOUT_MS,
                .timeout_ms = CF_K8S_TIMEOUT_MS},
        .body = request,
        .headers = headers,
        .response_max = CF_K8S_RESPONSE_MAX,
    };
    rc = cf_http_perform(&http, &resp, err);
    if (rc == CF_ENOMEM)
        goto out;
    if (rc != CF_OK) {
        rc = CF_EUNAUTH;
        snprintf(reason, sizeof(reason), "%s", err->msg);
        goto out;
    }
    *reply = json_loadb(resp.body ? resp.body : "", resp.len, 0, NULL);
    if (resp.status != 200 && resp.status != 201) {
        rc = CF_EUNAUTH;
        snprintf(reason, sizeof(reason), "HTTP status %ld", resp.status);
    } else if (!json_is_object(json_object_get(*reply, "status"))) {
        rc = CF_EUNAUTH;
        snprintf(reason, sizeof(reason), "the reply has no status");
    }
out:
    if (rc == CF_EUNAUTH)
        cf_err_set(err, rc, "Kubernetes TokenReview failed: %s", reason);
    else if (rc == CF_ENOMEM)
        cf_err_set(err, rc, "out of memory");
    if (rc != CF_OK) {
        json_decref(*reply);
        *reply = NULL;
    }
    if (auth) {
        sodium_memzero(auth, strlen(auth));
        free(auth);
    }
    cf_json_free_text(request);
    json_decref(req);
    cf_http_response_release(&resp);
    return rc;
}

/* Whether name matches one of the comma-separated globs of list ("" allows any). */
static bool allowed(const char *list, const char *name)
{
    struct cf_list_iter it;
    struct cf_str item;
    bool any = false;
    cf_list_init(&it, list);
    while (cf_list_next(&it, &item)) {
        char glob[CF_JWT_TEXT_MAX + 1];
        if (!item.n)
            continue;
        any = true;
        memcpy(glob, item.p, item.n);
        glob[item.n] = '\0';
        if (fnmatch(glob, name, 0) == 0)
            return true;
    }
    return !any;
}

/* Checks the TokenReview status against config. */
static enum cf_rc check_status(const struct cf_k8s_auth_config *config, json_t *status,
                               struct cf_err *err)
{
    const char *why = json_string_value(json_object_get(status, "error"));
    const char *user =
        json_string_value(json_object_get(json_object_get(status, "user"), "username"));
    char ns[256], name[256];

    if (!json_is_true(json_object_get(status, "authenticated")))
        return cf_err_set(err, CF_EUNAUTH, "Kubernetes token not authenticated: %s",
                          why && *why ? why : "no reason given");
    if (!user || strncmp(user, SA_PREFIX, strlen(SA_PREFIX)) != 0)
        return cf_err_set(err, CF_EUNAUTH,
                          "Kubernetes token not authenticated: not a service account token");
    const char *rest = user + strlen(SA_PREFIX), *colon = strchr(rest, ':');
    if (!colon || (size_t)(colon - rest) >= sizeof(ns) || strlen(colon + 1) >= sizeof(name) ||
        colon == rest || !colon[1] || strchr(colon + 1, ':'))
        return cf_err_set(err, CF_EUNAUTH,
                          "Kubernetes token not authenticated: bad service account username");
    memcpy(ns, rest, (size_t)(colon - rest));
    ns[colon - rest] = '\0';
    snprintf(name, sizeof(name), "%s", colon + 1);
    if (!allowed(config->allowed_namespaces, ns))
        return cf_err_set(err, CF_EUNAUTH, "namespace %s not allowed", ns);
    if (!allowed(config->allowed_names, name))
        return cf_err_set(err, CF_EUNAUTH, "service account %s not allowed", name);
    if (config->allowed_audience[0]) {
        json_t *audiences = json_object_get(status, "audiences"), *a;
        size_t i;
        bool found = false;
        json_array_foreach(audiences, i, a)
        {
            if (json_is_string(a) && strcmp(json_string_value(a), config->allowed_audience) == 0)
                found = true;
        }
        if (!found)
            return cf_err_set(err, CF_EUNAUTH, "audience %s not allowed", config->allowed_audience);
    }
    return CF_OK;
}

/* A Kubernetes-auth login in progress: the presented token and the configuration found (which
 * holds the sealed reviewer JWT: wiped before it is freed). */
struct k8s_login {
    const char *jwt;
    struct cf_k8s_auth_config config;
};

static enum cf_rc k8s_get(void *ctx, const struct cf_login_call *call, const char *identity_id,
                          bool *known, struct cf_err *err)
{
    struct k8s_login *login = ctx;
    enum cf_rc rc = cf_store_kubernetes_auth_get(call->st, identity_id, &login->config, err);
    *known = rc == CF_OK;
    return rc;
}

static enum cf_rc k8s_verify(void *ctx, const struct cf_login_call *call,
                             struct cf_login_grant *grant, struct cf_err *err)
{
    struct k8s_login *login = ctx;
    const struct cf_k8s_auth_config *config = &login->config;
    char context[CF_CREDENTIAL_CONTEXT_MAX];
    struct cf_buf reviewer;
    json_t *reply = NULL;
    enum cf_rc rc;

    if (!*login->jwt)
        return cf_err_set(err, CF_EUNAUTH, "Kubernetes token not authenticated: empty token");
    cf_buf_init(&reviewer, 0);
    snprintf(context, sizeof(context), "k8s-reviewer:%s", config->identity_id);
    rc =
        cf_credential_open(call->st, call->kr, context, config->token_reviewer_jwt, &reviewer, err);
    if (rc == CF_OK)
        rc = review(config, reviewer.data ? reviewer.data : "", login->jwt, &reply, err);
    cf_buf_release_wipe(&reviewer);
    if (rc == CF_OK)
        rc = check_status(config, json_object_get(reply, "status"), err);
    json_decref(reply);
    if (rc != CF_OK)
        return rc;
    grant->identity_id = config->identity_id;
    grant->policy = &config->token;
    return CF_OK;
}

static const struct cf_login_method k8s_method = {
    .auth_method = "kubernetes-auth",
    .what = "this identity from this address",
    .not_found = NOT_ATTACHED,
    .get = k8s_get,
    .verify = k8s_verify,
};

enum cf_rc cf_k8s_login(struct cf_store *st, struct cf_keyring *kr,
                        const struct cf_login_throttles *throttles, const char *identity_id,
                        const char *jwt, const char *client_ip, int64_t now,
                        struct cf_login_result *out, struct cf_err *err)
{
    struct k8s_login *login = calloc(1, sizeof(*login));
    enum cf_rc rc;

    if (!login) {
        memset(out, 0, sizeof(*out));
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    login->jwt = jwt;
    rc =
        cf_login_with(st, kr, throttles, &k8s_method, login, identity_id, client_ip, now, out, err);
    sodium_memzero(login, sizeof(*login));
    free(login);
    return rc;
}
