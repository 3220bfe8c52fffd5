/* Pieces shared by the auth modules that call out over HTTP with libcurl (JWKS fetching, Kubernetes
 * TokenReview): a bounded response collector and the loopback test behind "plain http only on
 * loopback". */
#ifndef CF_AUTH_FETCH_H
#define CF_AUTH_FETCH_H

#include <stdbool.h>
#include <stddef.h>

/* A response body collected by cf_fetch_on_data; data is malloc'd and NUL-terminated (free it). */
struct cf_fetch_body {
    char *data;
    size_t len;
    size_t max; /* responses longer than this stop the transfer and set too_large */
    bool too_large;
};

/* CURLOPT_WRITEFUNCTION for a struct cf_fetch_body (CURLOPT_WRITEDATA). */
size_t cf_fetch_on_data(char *ptr, size_t size, size_t nmemb, void *userdata);

/* Whether host (as curl_url_get gives it: IPv6 in brackets) is localhost, 127.0.0.0/8 or [::1]. */
bool cf_fetch_is_loopback(const char *host);

/* Coffer's rule for URLs it posts to (webhooks, audit streams): https, or plain http to a loopback
 * host. NULL when url follows it, else why not ("is not a URL", "must be https ..."). */
const char *cf_fetch_url_refused(const char *url);

#endif
