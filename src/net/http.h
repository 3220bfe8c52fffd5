/* The server's one outbound HTTP client: every call the server makes to a URL an administrator
 * configured (JWKS endpoints, the Kubernetes TokenReview API, webhook/Slack/Teams channels, the
 * audit HTTP stream, and the connection settings of SMTP delivery) goes through here, so they share
 * one set of rules:
 * - connect and total timeouts, a response size cap, no redirects, a "coffer/VERSION" user agent;
 * - TLS verified against the system CAs or a given CA (PEM text in memory, or a file);
 * - proxies from the environment (http_proxy, https_proxy, no_proxy, as libcurl reads them), except
 *   that a loopback host is always reached directly;
 * - the destination policy (below), checked on the address actually connected to, after DNS;
 * - retries with exponential backoff that honour Retry-After, for the callers that ask;
 * - messages that never show a credential: URLs lose their userinfo, query and fragment, and
 *   request headers are never logged.
 *
 * Destination policy. Addresses fall into classes (cf_net_classify). Refused by default:
 * link-local (169.254.0.0/16, fe80::/10, where cloud metadata services such as 169.254.169.254
 * live), the known metadata addresses outside it (fd00:ec2::254, 100.100.100.200), unspecified
 * (0.0.0.0/8, ::) and multicast/broadcast. Allowed: public, private (10/8, 172.16/12, 192.168/16,
 * 100.64/10, fc00::/7) and loopback, since identity providers, Kubernetes API servers and webhook
 * receivers often live on internal networks. The server flag --outbound-allow CIDR[,CIDR...]
 * (COFFER_OUTBOUND_ALLOW) lets chosen refused ranges through. IPv4-mapped (::ffff:a.b.c.d) and
 * NAT64 (64:ff9b::a.b.c.d) IPv6 addresses are classified as the IPv4 address they carry. */
#ifndef CF_NET_HTTP_H
#define CF_NET_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#include "util/err.h"

#define CF_NET_CONNECT_TIMEOUT_MS 5000        /* default connect timeout */
#define CF_NET_TIMEOUT_MS 10000               /* default whole-transfer timeout */
#define CF_NET_RESPONSE_MAX (1024 * 1024)     /* default cap on a collected response body */
#define CF_NET_RETRY_AFTER_MAX_MS (60 * 1000) /* a longer Retry-After is cut to this */
#define CF_NET_ALLOW_MAX 1024                 /* --outbound-allow: characters at most */
#define CF_NET_ADDRESS_MAX 64                 /* a textual address, IPv6 included */

/* ---- destination policy ---- */

enum cf_net_class {
    CF_NET_PUBLIC = 0,
    CF_NET_LOOPBACK,
    CF_NET_PRIVATE,
    CF_NET_LINK_LOCAL,
    CF_NET_METADATA,
    CF_NET_UNSPECIFIED,
    CF_NET_MULTICAST,
    CF_NET_INVALID, /* not an IP address */
};

/* The class of address (textual IPv4 or IPv6, no brackets). */
enum cf_net_class cf_net_classify(const char *address);

/* The class's name for messages, e.g. "link-local". Never NULL. */
const char *cf_net_class_name(enum cf_net_class c);

/* Whether the class is refused unless --outbound-allow lets the address through. */
bool cf_net_class_refused(enum cf_net_class c);

/* CF_OK when list is a valid --outbound-allow value (1..64 comma-separated IP addresses or CIDR
 * ranges, at most CF_NET_ALLOW_MAX characters); CF_EINVAL naming the flag and the bad entry. */
enum cf_rc cf_net_allow_check(const char *list, struct cf_err *err);

/* Whether the policy lets the server connect to address given the allow list (NULL or "": none).
 * When not, why receives the message naming the address, its class and the flag. */
bool cf_net_policy_allows(const char *allow, const char *address, char *why, size_t why_size);

/* Sets the server's allow list (NULL: none) after checking it as cf_net_allow_check does. Frozen
 * configuration: call once at start, before any thread makes an outbound call. */
enum cf_rc cf_net_set_allow(const char *list, struct cf_err *err);

/* ---- URLs ---- */

/* Whether host (as curl_url_get gives it: IPv6 in brackets) is localhost, 127.0.0.0/8 or [::1]. */
bool cf_net_is_loopback(const char *host);

/* Coffer's rule for URLs it posts to (webhooks, audit streams): https, or plain http to a loopback
 * host. NULL when url follows it, else why not ("is not a URL", "must be https ..."). */
const char *cf_net_url_refused(const char *url);

/* url without what may be a credential (userinfo, query, fragment) into out (always terminated);
 * an unparsable url is cut before any '?' or '#' and loses anything up to an '@'. */
void cf_net_url_redact(const char *url, char *out, size_t size);

/* ---- transfers ---- */

struct cf_net_options {
    const char *url;
    const char *protocols;   /* CURLOPT_PROTOCOLS_STR; NULL: "http,https" */
    const char *ca_pem;      /* CA certificates as PEM text; NULL or "": see ca_file */
    const char *ca_file;     /* CA bundle file; NULL: the system CAs */
    long connect_timeout_ms; /* 0: CF_NET_CONNECT_TIMEOUT_MS */
    long timeout_ms;         /* 0: CF_NET_TIMEOUT_MS */
};

/* Per-transfer state of the policy check, on the caller's stack for the transfer's lifetime. */
struct cf_net_guard {
    char refused[CF_ERR_MSG_MAX]; /* the policy's message when it refused an address, else "" */
    char curl_msg[CURL_ERROR_SIZE];
    bool loopback; /* the URL's host is a loopback one */
};

/* A fresh curl handle, for cf_net_curl_setup; the caller frees it with curl_easy_cleanup. The first
 * call loads libcurl (util/dynlib.h) and initialises it (curl_global_init, once per process, from
 * whichever thread comes first), so a server that never makes an outbound request never pays for
 * it: libcurl and the libraries it brings, and its initialisation, which loads OpenSSL's
 * configuration and algorithm tables, are about 4 MB of resident memory. NULL with err set when
 * libcurl could not be loaded or initialised (CF_EUNSUPPORTED, CF_EINTERNAL) or memory ran out.
 * Thread-safe. */
CURL *cf_net_curl_new(struct cf_err *err);

/* Applies the module's settings (options, the policy check, user agent, no redirects, proxy rule)
 * to a fresh curl handle, for callers that need protocol options of their own (SMTP). guard must
 * outlive the transfer. CF_EINVAL (err says why) when the URL does not parse, CF_EFORBIDDEN when
 * its host is an address the policy refuses. Not for http(s) callers: use cf_http_perform. */
enum cf_rc cf_net_curl_setup(CURL *curl, const struct cf_net_options *options,
                             struct cf_net_guard *guard, struct cf_err *err);

/* Why a transfer set up with cf_net_curl_setup failed with code: the policy's message when it
 * refused the address, else libcurl's, into why. */
void cf_net_curl_error(CURLcode code, const struct cf_net_guard *guard, char *why, size_t size);

struct cf_http_request {
    struct cf_net_options net;
    const char *method;         /* NULL: POST when body is set, else GET */
    const char *body;           /* NULL: none */
    size_t body_len;            /* 0: strlen(body) */
    const char *const *headers; /* NULL-terminated "Name: value" lines or NULL; never logged */
    size_t response_max;        /* collect the body up to this (0: CF_NET_RESPONSE_MAX) */
    bool discard_body;          /* do not collect the body */
    int attempts;               /* tries at most (0 or 1: one); retried: connection failures,
                                   408, 429, 500, 502, 503, 504 */
    long retry_base_ms;         /* first backoff (doubles each time); 0: 500 */
    const char *want_header;    /* a response header to copy into the response's header_value
                                   (NULL: none), e.g. GitHub's token expiration */
};

struct cf_http_response {
    long status;
    char *body; /* NUL-terminated, malloc'd (cf_http_response_release), or NULL */
    size_t len;
    long retry_after_s; /* the answer's Retry-After in seconds (0: none), for callers that retry
                           statuses of their own (GitHub's secondary limits answer 403) */
    char *header_value; /* the request's want_header, malloc'd, or NULL when absent */
};

/* Performs req. CF_OK when an HTTP response arrived (of any status: the caller judges it);
 * otherwise CF_EIO (connection, TLS, timeout, response over its cap), CF_EFORBIDDEN (refused by the
 * destination policy), CF_EINVAL (a bad URL) or CF_ENOMEM, with err->msg the reason, which never
 * holds a header or the URL's credentials. Thread-safe. */
enum cf_rc cf_http_perform(const struct cf_http_request *req, struct cf_http_response *resp,
                           struct cf_err *err);

/* Frees resp's body and clears it. */
void cf_http_response_release(struct cf_http_response *resp);

/* The wait before attempt number attempt + 1 (attempt >= 1): retry_after_s when the server sent
 * one (cut to CF_NET_RETRY_AFTER_MAX_MS), else base_ms * 2^(attempt-1), at most 30 s. */
long cf_http_retry_delay_ms(int attempt, long base_ms, long retry_after_s);

#endif
