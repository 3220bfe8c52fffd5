/* The webhook signature of crypto/sign.h: HMAC-SHA256 (libsodium) over "<t>." and the body. */
#include "crypto/sign.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "util/banned.h"

enum cf_rc cf_webhook_signature(const void *secret, size_t secret_len, int64_t t, const char *body,
                                size_t body_len, char *out, size_t size, struct cf_err *err)
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char hex[2 * sizeof(mac) + 1], stamp[32];
    crypto_auth_hmacsha256_state st;

    if (size > 0)
        out[0] = '\0';
    if (size < CF_WEBHOOK_SIGNATURE_MAX)
        return cf_err_set(err, CF_EINVAL, "no room for the webhook signature");
    if (!secret || secret_len == 0)
        return cf_err_set(err, CF_EINVAL, "the webhook signing secret is empty");
    snprintf(stamp, sizeof(stamp), "%" PRId64 ".", t);
    crypto_auth_hmacsha256_init(&st, secret, secret_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)stamp, strlen(stamp));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, body_len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
    sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
    snprintf(out, size, "t=%" PRId64 ",v1=%s", t, hex);
    sodium_memzero(mac, sizeof(mac));
    return CF_OK;
}
