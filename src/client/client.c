/* The libcurl/jansson client of Coffer's API (see client.h). Every buffer that may hold a secret
 * (token, Authorization header, request and response bodies) is a struct cf_buf released with
 * cf_buf_release_wipe; the copies libcurl and jansson make themselves go through the wiping
 * allocator installed by cf_client_global_init. Error messages name URLs and statuses, never the
 * token or a body's contents. */
#include <ctype.h>
#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "client/client.h"
#include "util/dynlib.h"
#include "util/wipemem.h"
#include "util/banned.h"
#include "util/str.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_TIMEOUT_MS 60000L
#define URL_MAX (64u * 1024u)
#define BODY_MAX (64u * 1024u * 1024u)
#define EXTRA_HEADERS_MAX 4

struct cf_client {
    CURL *curl;
    char *base_url; /* normalised, ends in "/api" */
    char *user_agent;
    char *ca_file;             /* NULL: the system's CA certificates */
    struct cf_buf auth_header; /* "Authorization: Bearer <token>", empty when no token; wiped */
    size_t max_response;       /* largest answer body accepted */
    long connect_timeout_ms;
    long timeout_ms;
};

enum cf_rc cf_client_global_init(struct cf_err *err)
{
    static bool initialised; /* one-time library initialisation, see STYLE.md rule 18 */
    if (initialised)
        return CF_OK;
    cf_json_use_wiping_allocator();
    if (cf_dynlib_load(&cf_lib_curl, err) != CF_OK)
        return err->rc;
    CURLcode code = curl_global_init_mem(CURL_GLOBAL_DEFAULT, cf_wipe_malloc, cf_wipe_free,
                                         cf_wipe_realloc, cf_wipe_strdup, cf_wipe_calloc);
    if (code != CURLE_OK)
        return cf_err_set(err, CF_EINTERNAL, "libcurl failed to initialise: %s",
                          curl_easy_strerror(code));
    initialised = true;
    return CF_OK;
}

/* ---- URLs ------------------------------------------------------------------------------------ */

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

enum cf_rc cf_url_escape(struct cf_buf *out, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        enum cf_rc rc;
        if (is_unreserved(*p)) {
            rc = cf_buf_append(out, p, 1);
        } else {
            char enc[3] = {'%', hex[*p >> 4], hex[*p & 0x0f]};
            rc = cf_buf_append(out, enc, sizeof(enc));
        }
        if (rc != CF_OK)
            return rc;
    }
    return CF_OK;
}

enum cf_rc cf_url_path_segment(struct cf_buf *out, const char *segment)
{
    enum cf_rc rc = cf_buf_append(out, "/", 1);
    return rc == CF_OK ? cf_url_escape(out, segment) : rc;
}

enum cf_rc cf_client_normalize_domain(const char *domain, struct cf_buf *out, struct cf_err *err)
{
    cf_buf_reset(out);
    if (!domain)
        return cf_err_set(err, CF_EINVAL, "no server URL given");
    while (*domain == ' ' || *domain == '\t' || *domain == '\n' || *domain == '\r')
        domain++;
    size_t len = strlen(domain);
    while (len && (domain[len - 1] == ' ' || domain[len - 1] == '\t' || domain[len - 1] == '\n' ||
                   domain[len - 1] == '\r'))
        len--;
    size_t scheme_len;
    if (len >= 7 && strncasecmp(domain, "http://", 7) == 0)
        scheme_len = 7;
    else if (len >= 8 && strncasecmp(domain, "https://", 8) == 0)
        scheme_len = 8;
    else
        return cf_err_set(err, CF_EINVAL, "server URL '%.*s' must start with http:// or https://",
                          (int)(len > 200 ? 200 : len), domain);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)domain[i];
        if (c == '?' || c == '#')
            return cf_err_set(err, CF_EINVAL, "server URL '%.*s' must not have a query or fragment",
                              (int)(len > 200 ? 200 : len), domain);
        if (c <= 0x20 || c == 0x7f)
            return cf_err_set(err, CF_EINVAL,
                              "server URL must not contain blanks or control characters");
    }
    while (len > scheme_len && domain[len - 1] == '/')
        len--;
    /* The host must not be empty: "http://" or "http:///x". */
    if (len == scheme_len || domain[scheme_len] == '/')
        return cf_err_set(err, CF_EINVAL, "server URL '%.*s' has no host", (int)len, domain);
    const char *path = memchr(domain + scheme_len, '/', len - scheme_len);
    bool has_api =
        path && (size_t)(domain + len - path) >= 4 && memcmp(domain + len - 4, "/api", 4) == 0;
    enum cf_rc rc = cf_buf_append(out, domain, len);
    if (rc == CF_OK && !has_api)
        rc = cf_buf_puts(out, "/api");
    if (rc != CF_OK)
        return cf_err_set(err, rc, "server URL is too long");
    return CF_OK;
}

enum cf_rc cf_client_build_url(const char *base_url, const char *path,
                               const struct cf_query_param *query, struct cf_buf *out,
                               struct cf_err *err)
{
    cf_buf_reset(out);
    if (!path || path[0] != '/')
        return cf_err_set(err, CF_EINVAL, "API path '%s' must start with '/'",
                          path ? path : "(null)");
    enum cf_rc rc = cf_buf_puts(out, base_url);
    if (rc == CF_OK)
        rc = cf_buf_puts(out, path);
    char sep = strchr(path, '?') ? '&' : '?';
    for (const struct cf_query_param *q = query; rc == CF_OK && q && q->name; q++) {
        if (!q->value)
            continue;
        rc = cf_buf_append(out, &sep, 1);
        sep = '&';
        if (rc == CF_OK)
            rc = cf_url_escape(out, q->name);
        if (rc == CF_OK)
            rc = cf_buf_append(out, "=", 1);
        if (rc == CF_OK)
            rc = cf_url_escape(out, q->value);
    }
    if (rc != CF_OK)
        return cf_err_set(err, rc, "URL for '%s' is too long", path);
    return CF_OK;
}

enum cf_rc cf_client_status_rc(long status)
{
    if (status >= 200 && status < 300)
        return CF_OK;
    switch (status) {
    case 400:
        return CF_EINVAL;
    case 401:
        return CF_EUNAUTH;
    case 403:
        return CF_EFORBIDDEN;
    case 404:
        return CF_ENOTFOUND;
    case 405:
        return CF_EMETHOD;
    case 409:
        return CF_ECONFLICT;
    case 413:
        return CF_ETOOLARGE;
    case 422:
        return CF_EVALIDATION;
    case 429:
        return CF_ERATELIMIT;
    case 503:
        return CF_EUNAVAIL;
    default:
        return CF_EINTERNAL;
    }
}

/* ---- the client ------------------------------------------------------------------------------ */

static char *dup_text(const char *text)
{
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    if (copy)
        memcpy(copy, text, len + 1);
    return copy;
}

enum cf_rc cf_client_new(const struct cf_client_options *options, struct cf_client **out,
                         struct cf_err *err)
{
    static const struct cf_client_options defaults = {0};
    struct cf_buf base;
    enum cf_rc rc;
    struct cf_client *client = NULL;

    *out = NULL;
    if (!options)
        options = &defaults;
    cf_buf_init(&base, URL_MAX);
    rc = cf_client_normalize_domain(options->domain ? options->domain : CF_CLIENT_DEFAULT_DOMAIN,
                                    &base, err);
    if (rc != CF_OK)
        goto out;
    client = calloc(1, sizeof(*client));
    if (!client) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    cf_buf_init(&client->auth_header, 64 * 1024);
    client->base_url = cf_buf_detach(&base, NULL);
    client->user_agent = dup_text(options->user_agent ? options->user_agent : CF_CLIENT_USER_AGENT);
    client->ca_file = options->ca_file ? dup_text(options->ca_file) : NULL;
    if (!client->base_url || !client->user_agent || (options->ca_file && !client->ca_file)) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    client->connect_timeout_ms =
        options->connect_timeout_ms > 0 ? options->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    client->timeout_ms = options->timeout_ms > 0 ? options->timeout_ms : DEFAULT_TIMEOUT_MS;
    client->max_response =
        options->max_response > 0 && options->max_response < CF_CLIENT_MAX_RESPONSE
            ? options->max_response
            : CF_CLIENT_MAX_RESPONSE;
    rc = cf_client_set_token(client, options->token, err);
    if (rc != CF_OK)
        goto out;
    client->curl = curl_easy_init();
    if (!client->curl) {
        rc = cf_err_set(err, CF_EINTERNAL, "libcurl could not create a handle");
        goto out;
    }
    *out = client;
    client = NULL;
out:
    cf_client_free(client);
    cf_buf_release(&base);
    return rc;
}

void cf_client_free(struct cf_client *client)
{
    if (!client)
        return;
    if (client->curl)
        curl_easy_cleanup(client->curl);
    cf_buf_release_wipe(&client->auth_header);
    free(client->base_url);
    free(client->user_agent);
    free(client->ca_file);
    free(client);
}

const char *cf_client_base_url(const struct cf_client *client)
{
    return client->base_url;
}

enum cf_rc cf_client_set_token(struct cf_client *client, const char *token, struct cf_err *err)
{
    cf_buf_release_wipe(&client->auth_header);
    cf_buf_init(&client->auth_header, 64 * 1024);
    if (!token)
        return CF_OK;
    if (!*token)
        return cf_err_set(err, CF_EINVAL, "the token is empty");
    /* Only visible ASCII: anything else could split the header or smuggle another one. */
    for (const unsigned char *p = (const unsigned char *)token; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f)
            return cf_err_set(err, CF_EINVAL, "the token contains blanks or non-ASCII characters");
    }
    enum cf_rc rc = cf_buf_puts(&client->auth_header, "Authorization: Bearer ");
    if (rc == CF_OK)
        rc = cf_buf_puts(&client->auth_header, token);
    if (rc != CF_OK) {
        cf_buf_release_wipe(&client->auth_header);
        return cf_err_set(err, rc, "the token is too long");
    }
    return CF_OK;
}

void cf_response_release(struct cf_response *resp)
{
    if (!resp)
        return;
    json_decref(resp->json);
    resp->json = NULL;
    resp->status = 0;
    resp->request_id[0] = '\0';
    resp->etag[0] = '\0';
}

/* State shared with the curl callbacks during one transfer. */
struct transfer {
    struct cf_buf body; /* response body, wiped */
    enum cf_rc body_rc; /* why the write callback gave up, if it did */
    struct cf_response *resp;
    CURL *curl;
};

static size_t on_body(char *data, size_t size, size_t count, void *userdata)
{
    struct transfer *transfer = userdata;
    size_t n = size * count;
    curl_off_t announced = -1;
    /* Sized once from Content-Length (within the buffer's ceiling) rather than doubled from 64
     * bytes: each doubling copies the body and touches fresh pages, which for a 100-secret answer
     * cost more than parsing it. A length over the ceiling is left to the append below to refuse.
     */
    if (transfer->body.cap == 0 &&
        curl_easy_getinfo(transfer->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced) ==
            CURLE_OK &&
        announced > 0 && (uint64_t)announced <= transfer->body.max)
        cf_buf_reserve(&transfer->body, (size_t)announced);
    enum cf_rc rc = cf_buf_append(&transfer->body, data, n);
    if (rc != CF_OK) {
        transfer->body_rc = rc;
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t count, void *userdata)
{
    struct transfer *transfer = userdata;
    size_t n = size * count;
    static const char name[] = "x-request-id:";
    /* A new status line (after a 100 Continue or a redirect) starts a new set of headers. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        transfer->resp->request_id[0] = '\0';
        transfer->resp->etag[0] = '\0';
    }
    if (n > 5 && strncasecmp(data, "etag:", 5) == 0) {
        const char *value = data + 5;
        size_t len = n - 5;
        while (len && (*value == ' ' || *value == '\t')) {
            value++;
            len--;
        }
        while (len && (value[len - 1] == '\r' || value[len - 1] == '\n' || value[len - 1] == ' '))
            len--;
        bool printable = len < sizeof(transfer->resp->etag);
        for (size_t i = 0; printable && i < len; i++)
            printable = (unsigned char)value[i] >= 0x20 && (unsigned char)value[i] < 0x7f;
        if (printable) {
            memcpy(transfer->resp->etag, value, len);
            transfer->resp->etag[len] = '\0';
        }
    }
    if (n > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
        const char *value = data + sizeof(name) - 1;
        size_t len = n - (sizeof(name) - 1);
        while (len && (*value == ' ' || *value == '\t')) {
            value++;
            len--;
        }
        while (len && (value[len - 1] == '\r' || value[len - 1] == '\n' || value[len - 1] == ' '))
            len--;
        size_t keep = 0;
        /* Keep it printable: it ends up on the user's terminal. */
        for (size_t i = 0; i < len && keep + 1 < sizeof(transfer->resp->request_id); i++) {
            unsigned char c = (unsigned char)value[i];
            if (c > 0x20 && c < 0x7f)
                transfer->resp->request_id[keep++] = (char)c;
        }
        transfer->resp->request_id[keep] = '\0';
    }
    return n;
}

static int dump_to_buf(const char *data, size_t size, void *userdata)
{
    return cf_buf_append(userdata, data, size) == CF_OK ? 0 : -1;
}

/* Fills err from a non-2xx answer: the server's "message" when it sent Coffer's error shape. */
static enum cf_rc answer_error(struct cf_response *resp, const char *url, struct cf_err *err)
{
    enum cf_rc rc = cf_client_status_rc(resp->status);
    json_t *message = resp->json ? json_object_get(resp->json, "message") : NULL;
    if (!resp->request_id[0] && resp->json) {
        const char *req_id = json_string_value(json_object_get(resp->json, "reqId"));
        if (req_id)
            snprintf(resp->request_id, sizeof(resp->request_id), "%s", req_id);
    }
    if (json_is_string(message))
        return cf_err_set(err, rc, "%s", json_string_value(message));
    return cf_err_set(err, rc, "the server at '%s' answered HTTP %ld without an error message", url,
                      resp->status);
}

/* Whether host[:port] (hostport_len bytes, from an https URL) answers a plain HTTP request: a
 * HEAD of / with short timeouts, straight to it (no proxy), any HTTP answer counting. Only asked
 * after a failed TLS handshake, to name the cause. */
static bool answers_plain_http(const char *hostport, int hostport_len)
{
    char url[512];
    int n = snprintf(url, sizeof(url), "http://%.*s/", hostport_len, hostport);
    if (n < 0 || (size_t)n >= sizeof(url))
        return false;
    CURL *probe = curl_easy_init();
    if (!probe)
        return false;
    curl_easy_setopt(probe, CURLOPT_URL, url);
    curl_easy_setopt(probe, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(probe, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(probe, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(probe, CURLOPT_TIMEOUT_MS, 3000L);
    curl_easy_setopt(probe, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(probe, CURLOPT_PROTOCOLS_STR, "http");
    bool answered = curl_easy_perform(probe) == CURLE_OK;
    curl_easy_cleanup(probe);
    return answered;
}

/* Says in words why a request to url never got an answer (code and detail are curl's), naming
 * the server by url's origin (scheme://host:port) and what to check. */
static enum cf_rc transport_error(const struct cf_client *client, CURLcode code, const char *detail,
                                  const char *url, struct cf_err *err)
{
    const char *host = strstr(url, "://");
    int origin_len = host ? (int)(host + 3 - url + strcspn(host + 3, "/")) : (int)strlen(url);
    const char *origin = url;
    bool https = strncasecmp(origin, "https://", 8) == 0;
    long os_errno = 0;

    switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return cf_err_set(err, CF_EIO,
                          "cannot find the server %.*s: its name does not resolve (DNS)",
                          origin_len, origin);
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(client->curl, CURLINFO_OS_ERRNO, &os_errno);
        if (os_errno == ECONNREFUSED)
            return cf_err_set(err, CF_EIO,
                              "nothing is listening at %.*s (connection refused; is the server "
                              "running, on that port?)",
                              origin_len, origin);
        return cf_err_set(err, CF_EIO, "cannot connect to %.*s: %s", origin_len, origin,
                          os_errno ? strerror((int)os_errno) : detail);
    case CURLE_OPERATION_TIMEDOUT:
        return cf_err_set(err, CF_EIO, "the server at %.*s did not answer in time (%s)", origin_len,
                          origin, detail);
    case CURLE_SSL_CONNECT_ERROR:
        /* OpenSSL reads a plain HTTP answer as a TLS record of a wrong version or length. */
        if (strstr(detail, "wrong version number") || strstr(detail, "packet length") ||
            strstr(detail, "record layer failure") || strstr(detail, "http request"))
            return cf_err_set(err, CF_EIO,
                              "the server at %.*s does not speak TLS (is it plain http://?)",
                              origin_len, origin);
        /* A plain server may also close at once on a handshake it cannot parse (whether it answers
         * first depends on the random bytes of the hello): ask it once in plain HTTP. */
        if (https && answers_plain_http(origin + 8, origin_len - 8))
            return cf_err_set(err, CF_EIO,
                              "the server at %.*s does not speak TLS (is it plain http://?)",
                              origin_len, origin);
        return cf_err_set(err, CF_EIO, "the TLS handshake with %.*s failed: %s", origin_len, origin,
                          detail);
    case CURLE_PEER_FAILED_VERIFICATION:
        return cf_err_set(err, CF_EIO,
                          "the server's certificate is not trusted: %s (server %.*s; set "
                          "COFFER_CACERT to a PEM file of the CA that signed it)",
                          detail, origin_len, origin);
    case CURLE_SSL_CACERT_BADFILE:
        return cf_err_set(err, CF_EIO, "cannot use the CA certificates in '%s' (COFFER_CACERT): %s",
                          client->ca_file ? client->ca_file : "", detail);
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        if (!https)
            return cf_err_set(err, CF_EIO,
                              "the server at %.*s closed the connection without an answer "
                              "(does it speak TLS? then use https://)",
                              origin_len, origin);
        return cf_err_set(err, CF_EIO,
                          "the server at %.*s closed the connection without an answer: %s",
                          origin_len, origin, detail);
    default:
        return cf_err_set(err, CF_EIO, "request to '%s' failed: %s", url, detail);
    }
}

/* Sends METHOD url (shown_url names it in messages: no query) with the header lines of headers
 * (NULL entries skipped; a Content-Type is added for a body) and body, and fills resp as
 * cf_client_request describes. */
static enum cf_rc perform(struct cf_client *client, const char *method, const char *url,
                          const char *shown_url, const char *const *headers, size_t nheaders,
                          json_t *body, struct cf_response *resp, struct cf_err *err)
{
    struct cf_buf request_body;
    struct transfer transfer;
    struct curl_slist *header_list = NULL, *grown;
    char curl_error[CURL_ERROR_SIZE] = "";
    json_error_t json_error;
    enum cf_rc rc;
    CURL *curl = client->curl;

    cf_buf_init(&request_body, BODY_MAX);
    cf_buf_init(&transfer.body, client->max_response);
    transfer.body_rc = CF_OK;
    transfer.resp = resp;
    transfer.curl = curl;
    resp->status = 0;
    resp->json = NULL;
    resp->request_id[0] = '\0';
    resp->etag[0] = '\0';

    if (body && json_dump_callback(body, dump_to_buf, &request_body, JSON_COMPACT) != 0) {
        rc = cf_err_set(err, CF_ETOOLARGE, "request body for '%s' could not be encoded", shown_url);
        goto out;
    }
    for (size_t i = 0; i <= nheaders; i++) {
        const char *line = i < nheaders ? headers[i]
                           : body       ? "Content-Type: application/json"
                                        : NULL;
        if (!line)
            continue;
        grown = curl_slist_append(header_list, line);
        if (!grown) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        header_list = grown;
    }

    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION,
                     0L); /* a redirect must not carry the token elsewhere */
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, client->connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, client->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, client->user_agent);
    if (client->ca_file)
        curl_easy_setopt(curl, CURLOPT_CAINFO, client->ca_file);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
    if (body || strcmp(method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? request_body.data : "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)request_body.len);
    } else {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);

    CURLcode code = curl_easy_perform(curl);
    /* The handle keeps pointers to our headers and error buffer; drop them before they go away. */
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
    if (code != CURLE_OK) {
        const char *detail = curl_error[0] ? curl_error : curl_easy_strerror(code);
        if (transfer.body_rc != CF_OK)
            rc = cf_err_set(err, transfer.body_rc, "the answer from '%s' is larger than %zu bytes",
                            shown_url, client->max_response);
        else
            rc = transport_error(client, code, detail, shown_url, err);
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
    if (transfer.body.len) {
        /* json_error_t may quote the body, which can hold secrets: it is wiped and never reported.
         */
        resp->json = json_loadb(transfer.body.data, transfer.body.len, 0, &json_error);
        sodium_memzero(&json_error, sizeof(json_error));
    }
    if (resp->status < 200 || resp->status >= 300) {
        rc = answer_error(resp, shown_url, err);
        goto out;
    }
    if (!json_is_object(resp->json) && !json_is_array(resp->json)) {
        rc = cf_err_set(err, CF_EINVAL, "the answer from '%s' (HTTP %ld) is not JSON", shown_url,
                        resp->status);
        goto out;
    }
    rc = CF_OK;
out:
    curl_slist_free_all(header_list);
    cf_buf_release_wipe(&transfer.body);
    cf_buf_release_wipe(&request_body);
    return rc;
}

/* cf_client_request with one more header line (NULL: none). */
static enum cf_rc request_with(struct cf_client *client, const char *method, const char *path,
                               const struct cf_query_param *query, const char *extra_header,
                               json_t *body, struct cf_response *resp, struct cf_err *err)
{
    struct cf_buf url, plain_url;
    enum cf_rc rc;

    cf_buf_init(&url, URL_MAX);
    cf_buf_init(&plain_url, URL_MAX);
    resp->status = 0;
    resp->json = NULL;
    resp->request_id[0] = '\0';
    resp->etag[0] = '\0';
    rc = cf_client_build_url(client->base_url, path, query, &url, err);
    if (rc != CF_OK)
        goto out;
    /* For messages: the URL without its query string. */
    rc = cf_client_build_url(client->base_url, path, NULL, &plain_url, err);
    if (rc != CF_OK)
        goto out;
    const char *headers[] = {"Accept: application/json",
                             "Expect:", client->auth_header.len ? client->auth_header.data : NULL,
                             extra_header};
    rc = perform(client, method, url.data, plain_url.data, headers, CF_ARRAY_SIZE(headers), body,
                 resp, err);
out:
    cf_buf_release(&plain_url);
    cf_buf_release(&url);
    return rc;
}

const char *cf_client_token(const struct cf_client *client)
{
    static const char prefix[] = "Authorization: Bearer ";
    if (client->auth_header.len <= sizeof(prefix) - 1 ||
        strncmp(client->auth_header.data, prefix, sizeof(prefix) - 1) != 0)
        return NULL;
    return client->auth_header.data + sizeof(prefix) - 1;
}

enum cf_rc cf_client_request(struct cf_client *client, const char *method, const char *path,
                             const struct cf_query_param *query, json_t *body,
                             struct cf_response *resp, struct cf_err *err)
{
    return request_with(client, method, path, query, NULL, body, resp, err);
}

enum cf_rc cf_client_get_if_none_match(struct cf_client *client, const char *path,
                                       const struct cf_query_param *query,
                                       const char *if_none_match, struct cf_response *resp,
                                       struct cf_err *err)
{
    char header[CF_CLIENT_ETAG_MAX + 32] = "";
    if (if_none_match && *if_none_match) {
        for (const unsigned char *p = (const unsigned char *)if_none_match; *p; p++) {
            if (*p < 0x20 || *p >= 0x7f)
                return cf_err_set(err, CF_EINVAL, "the entity tag holds control characters");
        }
        int n = snprintf(header, sizeof(header), "If-None-Match: %s", if_none_match);
        if (n < 0 || (size_t)n >= sizeof(header))
            return cf_err_set(err, CF_EINVAL, "the entity tag is too long");
    }
    enum cf_rc rc =
        request_with(client, "GET", path, query, header[0] ? header : NULL, NULL, resp, err);
    if (rc != CF_OK && resp->status == 304 && header[0]) {
        cf_err_clear(err);
        json_decref(resp->json);
        resp->json = NULL;
        rc = CF_OK;
    }
    return rc;
}

enum cf_rc cf_client_request_url(struct cf_client *client, const char *method, const char *url,
                                 const char *authorization, const char *const *extra_headers,
                                 json_t *body, struct cf_response *resp, struct cf_err *err)
{
    struct cf_buf auth_header, shown;
    enum cf_rc rc;

    cf_buf_init(&auth_header, 64 * 1024);
    cf_buf_init(&shown, URL_MAX);
    resp->status = 0;
    resp->json = NULL;
    resp->request_id[0] = '\0';
    resp->etag[0] = '\0';
    /* Messages name the scheme and host only: the path of a token endpoint is long enough to crowd
     * out the reason, and the query may carry anything. */
    const char *authority = strstr(url, "://");
    size_t shown_len = authority ? (size_t)(authority + 3 - url) + strcspn(authority + 3, "/?#")
                                 : strcspn(url, "/?#");
    if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
        rc = cf_err_set(err, CF_EINVAL, "'%.*s' is not an http or https URL",
                        (int)(shown_len > 200 ? 200 : shown_len), url);
        goto out;
    }
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f) {
            rc = cf_err_set(err, CF_EINVAL, "the URL '%.*s' contains blanks or control characters",
                            (int)(shown_len > 200 ? 200 : shown_len), url);
            goto out;
        }
    }
    rc = cf_buf_append(&shown, url, shown_len);
    if (rc == CF_OK && authorization) {
        /* Only visible ASCII (and the blank after the scheme): nothing that splits the header. */
        for (const unsigned char *p = (const unsigned char *)authorization; *p; p++) {
            if (*p < 0x20 || *p >= 0x7f) {
                rc = cf_err_set(err, CF_EINVAL,
                                "the credential for '%s' contains control or "
                                "non-ASCII characters",
                                shown.data);
                goto out;
            }
        }
        rc = cf_buf_puts(&auth_header, "Authorization: ");
        if (rc == CF_OK)
            rc = cf_buf_puts(&auth_header, authorization);
    }
    if (rc != CF_OK) {
        rc = cf_err_set(err, rc, "the URL or credential for '%.200s' is too long", url);
        goto out;
    }
    const char *headers[3 + EXTRA_HEADERS_MAX] = {
        "Accept: application/json", "Expect:", auth_header.len ? auth_header.data : NULL};
    size_t nheaders = 3;
    for (size_t i = 0; extra_headers && extra_headers[i]; i++) {
        if (i == EXTRA_HEADERS_MAX)
            CF_BUG("too many extra headers");
        headers[nheaders++] = extra_headers[i];
    }
    rc = perform(client, method, url, shown.data, headers, nheaders, body, resp, err);
out:
    cf_buf_release_wipe(&auth_header);
    cf_buf_release(&shown);
    return rc;
}
