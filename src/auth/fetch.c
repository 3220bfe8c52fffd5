/* Shared HTTP-fetch helpers of the auth modules (see fetch.h). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
