/* The Kubernetes API client (kube.h): requests and watch streams over libcurl. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <curl/curl.h>
#include <sodium.h>

#include "kube/kube.h"
#include "client/client.h"
#include "util/buf.h"
#include "util/file.h"
#include "util/str.h"
#include "util/wipemem.h"
#include "util/banned.h"

#define CONNECT_TIMEOUT_MS 5000L
#define REQUEST_TIMEOUT_MS 30000L
#define SERVER_MAX 512

struct cf_kube {
    char server[SERVER_MAX];
    char *token_file;
    char *ca_file; /* NULL: the system CAs */
    CURL *curl;    /* for requests; a watch takes a handle of its own */
};

/* Whether url is http to a loopback host (the only plain-http server accepted). */
static bool http_loopback(const char *url)
{
    bool ok = false;
    char *scheme = NULL, *host = NULL;
    CURLU *u = curl_url();
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto out;
    ok = strcmp(scheme, "http") == 0 &&
         (strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
          strcmp(host, "[::1]") == 0);
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

static enum cf_rc set_server(struct cf_kube *kube, const char *server, struct cf_err *err)
{
    if (server && *server) {
        if (strncmp(server, "https://", 8) != 0 && !http_loopback(server))
            return cf_err_set(err, CF_EINVAL,
                              "kubernetes server '%s' must be an https URL (plain http only to a "
                              "loopback host)",
                              server);
        if (!cf_strlcpy(kube->server, server, sizeof(kube->server)))
            return cf_err_set(err, CF_EINVAL, "kubernetes server URL is too long");
    } else {
        const char *host = getenv("KUBERNETES_SERVICE_HOST");
        const char *port = getenv("KUBERNETES_SERVICE_PORT");
        if (!host || !*host || !port || !*port)
            return cf_err_set(err, CF_EINVAL,
                              "not running in a cluster: KUBERNETES_SERVICE_HOST and "
                              "KUBERNETES_SERVICE_PORT are not set (give --kube-server)");
        /* An IPv6 service address goes in brackets, as client-go's net.JoinHostPort does. */
        int n = snprintf(kube->server, sizeof(kube->server),
                         strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
        if (n < 0 || (size_t)n >= sizeof(kube->server))
            return cf_err_set(err, CF_EINVAL, "KUBERNETES_SERVICE_HOST is too long");
    }
    size_t len = strlen(kube->server);
    while (len > 0 && kube->server[len - 1] == '/')
        kube->server[--len] = '\0';
    return CF_OK;
}

enum cf_rc cf_kube_new(const struct cf_kube_options *options, struct cf_kube **out,
                       struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    struct cf_kube *kube = calloc(1, sizeof(*kube));
    *out = NULL;
    if (!kube)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    rc = set_server(kube, options->server, err);
    if (rc != CF_OK)
        goto out;
    kube->token_file = strdup(options->token_file ? options->token_file : CF_KUBE_SA_DIR "/token");
    if (options->ca_file)
        kube->ca_file = strdup(options->ca_file);
    else if (access(CF_KUBE_SA_DIR "/ca.crt", R_OK) == 0)
        kube->ca_file = strdup(CF_KUBE_SA_DIR "/ca.crt");
    kube->curl = curl_easy_init();
    if (!kube->token_file || (options->ca_file && !kube->ca_file) || !kube->curl) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    /* Fail at start, not at the first request, when the token cannot be read. */
    char *token = NULL;
    size_t len = 0;
    rc = cf_file_read(kube->token_file, CF_KUBE_TOKEN_MAX, &token, &len, err);
    if (token) {
        sodium_memzero(token, len);
        free(token);
    }
    if (rc != CF_OK) {
        char why[CF_ERR_MSG_MAX];
        cf_strlcpy(why, err->msg, sizeof(why));
        rc = cf_err_set(err, CF_EIO, "kubernetes token: %s", why);
        goto out;
    }
    *out = kube;
    kube = NULL;
out:
    cf_kube_free(kube);
    return rc;
}

void cf_kube_free(struct cf_kube *kube)
{
    if (!kube)
        return;
    curl_easy_cleanup(kube->curl);
    free(kube->token_file);
    free(kube->ca_file);
    free(kube);
}

const char *cf_kube_server(const struct cf_kube *kube)
{
    return kube->server;
}

void cf_kube_reply_release(struct cf_kube_reply *reply)
{
    json_decref(reply->json);
    memset(reply, 0, sizeof(*reply));
}

const char *cf_kube_reply_message(const struct cf_kube_reply *reply)
{
    const char *message = json_string_value(json_object_get(reply->json, "message"));
    if (message && *message)
        return message;
    switch (reply->status) {
    case 401:
        return "unauthorized";
    case 403:
        return "forbidden";
    case 404:
        return "not found";
    case 409:
        return "conflict";
    case 410:
        return "gone";
    case 429:
        return "too many requests";
    default:
        return "unexpected answer";
    }
}

/* The headers of a request: the bearer token (read from its file now), Accept and Content-Type.
 * The token's copies are wiped: libcurl's slist copies go through the wiping allocator that
 * cf_client_global_init installs. */
static enum cf_rc auth_headers(struct cf_kube *kube, const char *content_type,
                               struct curl_slist **out, struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    char *token = NULL;
    size_t len = 0;
    struct cf_buf line;
    struct curl_slist *headers = NULL, *next = NULL;
    cf_buf_init(&line, CF_KUBE_TOKEN_MAX + 64);
    *out = NULL;
    rc = cf_file_read(kube->token_file, CF_KUBE_TOKEN_MAX, &token, &len, err);
    if (rc != CF_OK) {
        char why[CF_ERR_MSG_MAX];
        cf_strlcpy(why, err->msg, sizeof(why));
        rc = cf_err_set(err, CF_EIO, "kubernetes token: %s", why);
        goto out;
    }
    while (len > 0 && (token[len - 1] == '\n' || token[len - 1] == '\r' || token[len - 1] == ' '))
        token[--len] = '\0';
    if (len == 0 || strpbrk(token, "\r\n") || cf_buf_puts(&line, "Authorization: Bearer ") ||
        cf_buf_append(&line, token, len)) {
        rc = cf_err_set(err, CF_EINVAL, "kubernetes token file '%s' is empty or not one line",
                        kube->token_file);
        goto out;
    }
    next = curl_slist_append(headers, line.data);
    if (next)
        next = curl_slist_append(headers = next, "Accept: application/json");
    if (next && content_type) {
        char type[128];
        snprintf(type, sizeof(type), "Content-Type: %s", content_type);
        next = curl_slist_append(headers = next, type);
    }
    if (!next) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    headers = next;
    *out = headers;
    headers = NULL;
out:
    curl_slist_free_all(headers);
    cf_buf_release_wipe(&line);
    if (token) {
        sodium_memzero(token, len);
        free(token);
    }
    return rc;
}

static enum cf_rc setup(struct cf_kube *kube, CURL *curl, const char *url,
                        struct curl_slist *headers, long timeout_ms, struct cf_err *err)
{
    curl_easy_reset(curl);
    if (curl_easy_setopt(curl, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK)
        return cf_err_set(err, CF_EINVAL, "bad kubernetes URL");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "coffer-k8s-operator/" COFFER_VERSION);
    /* The API server is reached directly, as client-go does for in-cluster config. */
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    if (kube->ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, kube->ca_file);
    return CF_OK;
}

static size_t collect(char *data, size_t size, size_t n, void *userdata)
{
    struct cf_buf *buf = userdata;
    return cf_buf_append(buf, data, size * n) == CF_OK ? size * n : 0;
}

enum cf_rc cf_kube_request(struct cf_kube *kube, const char *method, const char *path,
                           const char *content_type, json_t *body, struct cf_kube_reply *reply,
                           struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    struct curl_slist *headers = NULL;
    struct cf_buf url, answer;
    char *text = NULL;
    cf_buf_init(&url, 8192);
    cf_buf_init(&answer, CF_KUBE_RESPONSE_MAX);
    memset(reply, 0, sizeof(*reply));
    if (body) {
        /* Request bodies may hold secret data (a Secret's values): the dump is wiped. */
        text = json_dumps(body, JSON_COMPACT);
        if (!text) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
    }
    rc = auth_headers(kube, body ? (content_type ? content_type : "application/json") : NULL,
                      &headers, err);
    if (rc != CF_OK)
        goto out;
    if (cf_buf_puts(&url, kube->server) || cf_buf_puts(&url, path)) {
        rc = cf_err_set(err, CF_ETOOLARGE, "kubernetes request path is too long");
        goto out;
    }
    rc = setup(kube, kube->curl, url.data, headers, REQUEST_TIMEOUT_MS, err);
    if (rc != CF_OK)
        goto out;
    curl_easy_setopt(kube->curl, CURLOPT_CUSTOMREQUEST, method);
    if (text)
        curl_easy_setopt(kube->curl, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(kube->curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(kube->curl, CURLOPT_WRITEDATA, &answer);
    CURLcode code = curl_easy_perform(kube->curl);
    if (code != CURLE_OK) {
        rc = cf_err_set(err, code == CURLE_WRITE_ERROR ? CF_ETOOLARGE : CF_EIO,
                        "kubernetes API %s %s: %s", method, kube->server, curl_easy_strerror(code));
        goto out;
    }
    curl_easy_getinfo(kube->curl, CURLINFO_RESPONSE_CODE, &reply->status);
    curl_off_t retry_after = 0;
    if (curl_easy_getinfo(kube->curl, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK)
        reply->retry_after_s = (long)retry_after;
    if (answer.len > 0)
        reply->json = json_loadb(answer.data, answer.len, 0, NULL);
out:
    cf_json_free_text(text); /* wiped by the allocator cf_client_global_init installed */
    curl_slist_free_all(headers);
    cf_buf_release_wipe(&answer);
    cf_buf_release(&url);
    return rc;
}

/* A watch in progress: the bytes of the line being received and the callback. */
struct watch {
    struct cf_buf line;
    cf_kube_event_fn fn;
    void *ctx;
    long status;
    CURL *curl;
    enum cf_rc rc;
    struct cf_err *err;
};

static enum cf_rc watch_line(struct watch *w, const char *text, size_t len)
{
    enum cf_rc rc = CF_OK;
    json_error_t jerr;
    json_t *event = json_loadb(text, len, 0, &jerr);
    const char *type = json_string_value(json_object_get(event, "type"));
    json_t *object = json_object_get(event, "object");
    if (!type || !json_is_object(object)) {
        rc = cf_err_set(w->err, CF_EINVAL, "kubernetes watch: a line is not an event (%s)",
                        event ? "no type or object" : jerr.text);
        goto out;
    }
    rc = w->fn(type, object, w->ctx);
out:
    json_decref(event);
    return rc;
}

static size_t watch_data(char *data, size_t size, size_t n, void *userdata)
{
    struct watch *w = userdata;
    size_t total = size * n;
    if (w->status == 0)
        curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &w->status);
    if (w->status != 200) {
        /* A refusal: keep its Status body for the message. */
        return cf_buf_append(&w->line, data, total) == CF_OK ? total : 0;
    }
    size_t at = 0;
    while (at < total) {
        const char *newline = memchr(data + at, '\n', total - at);
        size_t take = newline ? (size_t)(newline - (data + at)) : total - at;
        if (cf_buf_append(&w->line, data + at, take) != CF_OK) {
            w->rc = cf_err_set(w->err, CF_ETOOLARGE, "kubernetes watch: an event is over %d bytes",
                               CF_KUBE_RESPONSE_MAX);
            return 0;
        }
        at += take;
        if (!newline)
            break;
        at++;
        if (w->line.len > 0)
            w->rc = watch_line(w, w->line.data, w->line.len);
        cf_buf_reset(&w->line);
        if (w->rc != CF_OK)
            return 0;
    }
    return total;
}

enum cf_rc cf_kube_watch(struct cf_kube *kube, const char *path, long timeout_s,
                         cf_kube_event_fn fn, void *ctx, struct cf_kube_reply *reply,
                         struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    struct curl_slist *headers = NULL;
    struct cf_buf url;
    struct watch w = {.fn = fn, .ctx = ctx, .err = err};
    cf_buf_init(&url, 8192);
    cf_buf_init(&w.line, CF_KUBE_RESPONSE_MAX);
    memset(reply, 0, sizeof(*reply));
    w.curl = curl_easy_init();
    if (!w.curl) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    rc = auth_headers(kube, NULL, &headers, err);
    if (rc != CF_OK)
        goto out;
    if (cf_buf_puts(&url, kube->server) || cf_buf_puts(&url, path)) {
        rc = cf_err_set(err, CF_ETOOLARGE, "kubernetes watch path is too long");
        goto out;
    }
    rc = setup(kube, w.curl, url.data, headers, timeout_s * 1000 + REQUEST_TIMEOUT_MS, err);
    if (rc != CF_OK)
        goto out;
    curl_easy_setopt(w.curl, CURLOPT_WRITEFUNCTION, watch_data);
    curl_easy_setopt(w.curl, CURLOPT_WRITEDATA, &w);
    CURLcode code = curl_easy_perform(w.curl);
    if (w.status == 0)
        curl_easy_getinfo(w.curl, CURLINFO_RESPONSE_CODE, &w.status);
    reply->status = w.status;
    curl_off_t retry_after = 0;
    if (curl_easy_getinfo(w.curl, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK)
        reply->retry_after_s = (long)retry_after;
    if (w.rc != CF_OK) {
        rc = w.rc;
        goto out;
    }
    if (code != CURLE_OK) {
        rc = cf_err_set(err, CF_EIO, "kubernetes watch %s: %s", kube->server,
                        curl_easy_strerror(code));
        goto out;
    }
    if (w.status != 200) {
        struct cf_kube_reply refusal = {.status = w.status};
        refusal.json = w.line.len ? json_loadb(w.line.data, w.line.len, 0, NULL) : NULL;
        rc = cf_err_set(err, CF_EIO, "kubernetes watch refused (HTTP %ld): %s", w.status,
                        cf_kube_reply_message(&refusal));
        cf_kube_reply_release(&refusal);
        goto out;
    }
    /* A last line without its newline still is an event. */
    if (w.line.len > 0)
        rc = watch_line(&w, w.line.data, w.line.len);
out:
    curl_easy_cleanup(w.curl);
    curl_slist_free_all(headers);
    cf_buf_release_wipe(&w.line);
    cf_buf_release(&url);
    return rc;
}
