/* Shared HTTP-fetch helpers of the auth modules (see fetch.h). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "auth/fetch.h"
#include "util/banned.h"

size_t cf_fetch_on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct cf_fetch_body *b = userdata;
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

bool cf_fetch_is_loopback(const char *host)
{
    struct in_addr v4;
    if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0)
        return true;
    return inet_pton(AF_INET, host, &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127;
}

const char *cf_fetch_url_refused(const char *url)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    const char *why = NULL;
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        why = "is not a URL";
    else if (strcmp(scheme, "https") != 0 &&
             !(strcmp(scheme, "http") == 0 && cf_fetch_is_loopback(host)))
        why = "must be https (plain http only to a loopback address)";
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return why;
}
