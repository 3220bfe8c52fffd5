/* The outbound HTTP client and its destination policy (see http.h). The policy is enforced in
 * libcurl's open-socket callback, which sees each address the name resolved to just before the
 * socket is made: a refused address gets no socket, so libcurl tries the next one or fails with
 * "couldn't connect", and the guard remembers why for the message. As the check happens on the
 * address connected to, a name that resolves differently later (DNS rebinding) cannot get past it.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <sodium.h>

#include "net/http.h"
#include "util/cidr.h"
#include "util/dynlib.h"
#include "util/str.h"
#include "util/banned.h"

#define ALLOW_FLAG "--outbound-allow"
#define RETRY_BASE_MS 500
#define RETRY_DELAY_MAX_MS (30 * 1000)

/* Frozen configuration: set once at start by cf_net_set_allow. */
static char allow_list[CF_NET_ALLOW_MAX + 1];

/* ---- destination policy ---- */

static bool in4(const uint8_t *a, uint8_t b0, uint8_t b1, int bits)
{
    uint32_t addr = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
    uint32_t net = (uint32_t)b0 << 24 | (uint32_t)b1 << 16;
    uint32_t mask = bits ? 0xffffffffu << (32 - bits) : 0;
    return (addr & mask) == (net & mask);
}

static enum cf_net_class classify4(const uint8_t *a)
{
    if (a[0] == 169 && a[1] == 254)
        return a[2] == 169 && a[3] == 254 ? CF_NET_METADATA : CF_NET_LINK_LOCAL;
    if (a[0] == 100 && a[1] == 100 && a[2] == 100 && a[3] == 200) /* Alibaba Cloud metadata */
        return CF_NET_METADATA;
    if (a[0] == 0)
        return CF_NET_UNSPECIFIED;
    if (a[0] == 127)
        return CF_NET_LOOPBACK;
    if (a[0] >= 224) /* multicast, reserved and the broadcast address */
        return CF_NET_MULTICAST;
    if (a[0] == 10 || in4(a, 172, 16, 12) || in4(a, 192, 168, 16) || in4(a, 100, 64, 10))
        return CF_NET_PRIVATE;
    return CF_NET_PUBLIC;
}

static enum cf_net_class classify6(const uint8_t *a)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t zero[16] = {0};
    static const uint8_t aws_metadata[16] = {0xfd, 0, 0x0e, 0xc2, 0, 0, 0,    0,
                                             0,    0, 0,    0,    0, 0, 0x02, 0x54};
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0)
        return classify4(a + 12);
    if (memcmp(a, zero, 16) == 0)
        return CF_NET_UNSPECIFIED;
    if (memcmp(a, zero, 15) == 0 && a[15] == 1)
        return CF_NET_LOOPBACK;
    if (memcmp(a, aws_metadata, 16) == 0)
        return CF_NET_METADATA;
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
        return CF_NET_LINK_LOCAL;
    if (a[0] == 0xff)
        return CF_NET_MULTICAST;
    if ((a[0] & 0xfe) == 0xfc)
        return CF_NET_PRIVATE;
    return CF_NET_PUBLIC;
}

enum cf_net_class cf_net_classify(const char *address)
{
    uint8_t a[16];
    if (!address)
        return CF_NET_INVALID;
    if (inet_pton(AF_INET, address, a) == 1)
        return classify4(a);
    if (inet_pton(AF_INET6, address, a) == 1)
        return classify6(a);
    return CF_NET_INVALID;
}

const char *cf_net_class_name(enum cf_net_class c)
{
    switch (c) {
    case CF_NET_PUBLIC:
        return "public";
    case CF_NET_LOOPBACK:
        return "loopback";
    case CF_NET_PRIVATE:
        return "private";
    case CF_NET_LINK_LOCAL:
        return "link-local";
    case CF_NET_METADATA:
        return "cloud metadata";
    case CF_NET_UNSPECIFIED:
        return "unspecified";
    case CF_NET_MULTICAST:
        return "multicast or broadcast";
    case CF_NET_INVALID:
        break;
    }
    return "not an IP address";
}

bool cf_net_class_refused(enum cf_net_class c)
{
    return c != CF_NET_PUBLIC && c != CF_NET_LOOPBACK && c != CF_NET_PRIVATE;
}

enum cf_rc cf_net_allow_check(const char *list, struct cf_err *err)
{
    struct cf_err cerr;
    if (!list || strlen(list) > CF_NET_ALLOW_MAX)
        return cf_err_set(err, CF_EINVAL, ALLOW_FLAG ": at most %d characters", CF_NET_ALLOW_MAX);
    if (cf_cidr_list_check(list, ALLOW_FLAG, &cerr) != CF_OK)
        return cf_err_set(err, CF_EINVAL, "%s", cerr.msg);
    return CF_OK;
}

bool cf_net_policy_allows(const char *allow, const char *address, char *why, size_t why_size)
{
    enum cf_net_class c = cf_net_classify(address);
    if (!cf_net_class_refused(c))
        return true;
    if (c != CF_NET_INVALID && allow && *allow && cf_cidr_list_match(allow, address))
        return true;
    /* NAT64 addresses are matched against the allow list as the IPv4 address they carry too */
    uint8_t a[16];
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    char v4[INET_ADDRSTRLEN];
    if (allow && *allow && inet_pton(AF_INET6, address, a) == 1 && memcmp(a, nat64, 12) == 0 &&
        inet_ntop(AF_INET, a + 12, v4, sizeof(v4)) && cf_cidr_list_match(allow, v4))
        return true;
    if (c == CF_NET_INVALID)
        snprintf(why, why_size, "outbound policy: '%.64s' is not an IP address", address);
    else
        snprintf(why, why_size,
                 "outbound policy: connecting to %.64s (a %s address) is refused; "
                 "allow it with " ALLOW_FLAG " (COFFER_OUTBOUND_ALLOW)",
                 address, cf_net_class_name(c));
    return false;
}

enum cf_rc cf_net_set_allow(const char *list, struct cf_err *err)
{
    if (!list) {
        allow_list[0] = '\0';
        return CF_OK;
    }
    enum cf_rc rc = cf_net_allow_check(list, err);
    if (rc == CF_OK)
        cf_strlcpy(allow_list, list, sizeof(allow_list));
    return rc;
}

/* ---- URLs ---- */

bool cf_net_is_loopback(const char *host)
{
    struct in_addr v4;
    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
        return true;
    return inet_pton(AF_INET, host, &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

const char *cf_net_url_refused(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    const char *why = NULL;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        why = "is not a URL";
    else if (strcmp(scheme, "https") != 0 &&
             !(strcmp(scheme, "http") == 0 && cf_net_is_loopback(host)))
        why = "must be https (plain http only to a loopback address)";
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return why;
}

void cf_net_url_redact(const char *url, char *out, size_t size)
{
    CURLU *u = curl_url();
    char *clean = NULL;
    if (!size)
        return;
    out[0] = '\0';
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_USER, NULL, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_OPTIONS, NULL, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_QUERY, NULL, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &clean, 0) == CURLUE_OK) {
        cf_strlcpy(out, clean, size);
    } else {
        size_t n = strcspn(url, "?#");
        const char *at = memchr(url, '@', n);
        const char *start = url;
        while (at) { /* the last '@' before the cut ends any userinfo */
            start = at + 1;
            at = memchr(start, '@', n - (size_t)(start - url));
        }
        n -= (size_t)(start - url);
        snprintf(out, size, "%.*s", (int)(n > size ? size : n), start);
    }
    curl_free(clean);
    curl_url_cleanup(u);
}

/* ---- transfers ---- */

/* CURLOPT_OPENSOCKETFUNCTION: the policy check on each resolved address before it is connected. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *sa)
{
    struct cf_net_guard *guard = clientp;
    char address[CF_NET_ADDRESS_MAX] = "";
    (void)purpose;
    if (sa->family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&sa->addr)->sin_addr, address,
                  sizeof(address));
    else if (sa->family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&sa->addr)->sin6_addr, address,
                  sizeof(address));
    if (sa->family == AF_INET || sa->family == AF_INET6) {
        if (!cf_net_policy_allows(allow_list, address, guard->refused, sizeof(guard->refused)))
            return CURL_SOCKET_BAD;
    } else if (sa->family != AF_UNIX) {
        snprintf(guard->refused, sizeof(guard->refused),
                 "outbound policy: address family %d is refused", sa->family);
        return CURL_SOCKET_BAD;
    }
    return socket(sa->family, sa->socktype | SOCK_CLOEXEC, sa->protocol);
}

/* A literal IP host of url that the policy refuses: caught before any proxy is asked to reach it.
 * CF_EINVAL when url does not parse. */
static enum cf_rc check_literal_host(const char *url, bool *loopback, char *why, size_t why_size)
{
    CURLU *u = curl_url();
    char *host = NULL;
    enum cf_rc rc = CF_OK;
    if (!u)
        return CF_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(why, why_size, "not a valid URL");
        rc = CF_EINVAL;
        goto out;
    }
    *loopback = cf_net_is_loopback(host);
    char bare[CF_NET_ADDRESS_MAX];
    size_t n = strlen(host);
    if (host[0] == '[' && n >= 2 && n - 2 < sizeof(bare)) {
        /* [addr%zone] as curl gives IPv6 hosts; the zone is curl's business */
        snprintf(bare, sizeof(bare), "%.*s", (int)(n - 2), host + 1);
        bare[strcspn(bare, "%")] = '\0';
    } else {
        cf_strlcpy(bare, host, sizeof(bare));
    }
    if (cf_net_classify(bare) != CF_NET_INVALID &&
        !cf_net_policy_allows(allow_list, bare, why, why_size))
        rc = CF_EFORBIDDEN;
out:
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static bool curl_ready; /* written once under curl_once */

static void curl_init_once(void)
{
    curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

CURL *cf_net_curl_new(struct cf_err *err)
{
    pthread_once(&curl_once, curl_init_once);
    if (!curl_ready) {
        if (cf_dynlib_load(&cf_lib_curl, err) == CF_OK)
            cf_err_set(err, CF_EINTERNAL, "libcurl failed to initialise");
        return NULL;
    }
    CURL *curl = curl_easy_init();
    if (!curl)
        cf_err_set(err, CF_ENOMEM, "out of memory");
    return curl;
}

enum cf_rc cf_net_curl_setup(CURL *curl, const struct cf_net_options *o, struct cf_net_guard *guard,
                             struct cf_err *err)
{
    char why[CF_ERR_MSG_MAX] = "";
    memset(guard, 0, sizeof(*guard));
    enum cf_rc rc = check_literal_host(o->url, &guard->loopback, why, sizeof(why));
    if (rc == CF_ENOMEM)
        return cf_err_set(err, rc, "out of memory");
    if (rc != CF_OK)
        return cf_err_set(err, rc, "%s", why);
    curl_easy_setopt(curl, CURLOPT_URL, o->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, o->protocols ? o->protocols : "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     o->connect_timeout_ms ? o->connect_timeout_ms
                                           : (long)CF_NET_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                     o->timeout_ms ? o->timeout_ms : (long)CF_NET_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "coffer/" COFFER_VERSION);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, guard->curl_msg);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, guard);
    /* a proxy from the environment never stands between the server and a loopback host */
    if (guard->loopback)
        curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    if (o->ca_pem && *o->ca_pem) {
        struct curl_blob blob = {(void *)o->ca_pem, strlen(o->ca_pem), CURL_BLOB_COPY};
        curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &blob);
    } else if (o->ca_file) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, o->ca_file);
    }
    return CF_OK;
}

void cf_net_curl_error(CURLcode code, const struct cf_net_guard *guard, char *why, size_t size)
{
    if (guard->refused[0])
        snprintf(why, size, "%s", guard->refused);
    else
        snprintf(why, size, "%s", guard->curl_msg[0] ? guard->curl_msg : curl_easy_strerror(code));
}

/* A response body collected up to max; data is NUL-terminated. */
struct body {
    char *data;
    size_t len, max;
    bool too_large;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct body *b = userdata;
    size_t n = size * nmemb;
    if (n > b->max - b->len) {
        b->too_large = true;
        return 0;
    }
    char *grown = realloc(b->data, b->len + n + 1);
    if (!grown)
        return 0;
    b->data = grown;
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    (void)userdata;
    return size * nmemb;
}

long cf_http_retry_delay_ms(int attempt, long base_ms, long retry_after_s)
{
    if (retry_after_s > 0)
        return retry_after_s > CF_NET_RETRY_AFTER_MAX_MS / 1000 ? CF_NET_RETRY_AFTER_MAX_MS
                                                                : retry_after_s * 1000;
    long delay = base_ms > 0 ? base_ms : RETRY_BASE_MS;
    for (int i = 1; i < attempt && delay < RETRY_DELAY_MAX_MS; i++)
        delay *= 2;
    return delay < RETRY_DELAY_MAX_MS ? delay : RETRY_DELAY_MAX_MS;
}

static bool status_retried(long status)
{
    return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
           status == 504;
}

/* One try of req into resp; *retry_after_s receives the server's Retry-After (0: none). */
static enum cf_rc perform_once(const struct cf_http_request *req, struct curl_slist *headers,
                               struct cf_http_response *resp, long *retry_after_s,
                               struct cf_err *err)
{
    size_t max = req->response_max ? req->response_max : CF_NET_RESPONSE_MAX;
    struct body b = {.max = max};
    struct cf_net_guard guard;
    CURL *curl = cf_net_curl_new(err);
    enum cf_rc rc;

    *retry_after_s = 0;
    if (!curl)
        return err->rc;
    rc = cf_net_curl_setup(curl, &req->net, &guard, err);
    if (rc != CF_OK)
        goto out;
    if (req->body) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(req->body_len ? req->body_len : strlen(req->body)));
    }
    if (req->method)
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
    if (headers)
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    if (req->discard_body) {
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    } else {
        curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    }
    CURLcode code = curl_easy_perform(curl);
    if (code != CURLE_OK) {
        char why[CF_ERR_MSG_MAX];
        if (b.too_large || code == CURLE_FILESIZE_EXCEEDED) {
            rc = cf_err_set(err, CF_EIO, "response over %zu bytes", max);
        } else {
            cf_net_curl_error(code, &guard, why, sizeof(why));
            rc = cf_err_set(err, guard.refused[0] ? CF_EFORBIDDEN : CF_EIO, "%s", why);
        }
        goto out;
    }
    curl_off_t after = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
    if (curl_easy_getinfo(curl, CURLINFO_RETRY_AFTER, &after) == CURLE_OK && after > 0)
        *retry_after_s = after > 86400 ? 86400 : (long)after;
    resp->retry_after_s = *retry_after_s;
    struct curl_header *wanted = NULL;
    if (req->want_header &&
        curl_easy_header(curl, req->want_header, 0, CURLH_HEADER, -1, &wanted) == CURLHE_OK &&
        !(resp->header_value = strdup(wanted->value))) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    resp->body = b.data;
    resp->len = b.len;
    b.data = NULL;
out:
    free(b.data);
    curl_easy_cleanup(curl);
    return rc;
}

enum cf_rc cf_http_perform(const struct cf_http_request *req, struct cf_http_response *resp,
                           struct cf_err *err)
{
    struct curl_slist *headers = NULL;
    enum cf_rc rc = CF_OK;
    int attempts = req->attempts > 1 ? req->attempts : 1;

    memset(resp, 0, sizeof(*resp));
    for (const char *const *h = req->headers; h && *h; h++) {
        struct curl_slist *more = curl_slist_append(headers, *h);
        if (!more) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        headers = more;
    }
    for (int attempt = 1;; attempt++) {
        long retry_after_s = 0;
        rc = perform_once(req, headers, resp, &retry_after_s, err);
        bool again = rc == CF_EIO || (rc == CF_OK && status_retried(resp->status));
        if (!again || attempt >= attempts)
            break;
        cf_http_response_release(resp);
        long delay = cf_http_retry_delay_ms(attempt, req->retry_base_ms, retry_after_s);
        struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
out:
    /* headers may carry credentials (Authorization): wipe the copies curl_slist made */
    for (struct curl_slist *h = headers; h; h = h->next)
        sodium_memzero(h->data, strlen(h->data));
    curl_slist_free_all(headers);
    return rc;
}

void cf_http_response_release(struct cf_http_response *resp)
{
    free(resp->body);
    free(resp->header_value);
    memset(resp, 0, sizeof(*resp));
}
