/* The signature Coffer puts on what it POSTs to a webhook receiver (notification channels of type
 * "webhook", the "webhook" rotation consumer), so that the receiver can tell a request came from
 * the holder of the shared signing secret and when it was signed:
 *
 *   X-Coffer-Signature: t=<Unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the secret>
 *
 * The timestamp is inside the signed text, so a receiver that refuses old timestamps also refuses a
 * replayed request. */
#ifndef CF_CRYPTO_SIGN_H
#define CF_CRYPTO_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* The signature header's name, and the length of its longest value ("t=" up to 20 digits, ",v1="
 * and 64 hex digits) with its NUL. */
#define CF_WEBHOOK_SIGNATURE_HEADER "X-Coffer-Signature"
#define CF_WEBHOOK_SIGNATURE_MAX 96

/* Writes the value of the X-Coffer-Signature header ("t=<t>,v1=<hex>") for body (body_len bytes)
 * signed at t (Unix seconds) with secret (secret_len bytes, borrowed) into out (size >=
 * CF_WEBHOOK_SIGNATURE_MAX). The intermediate HMAC state is wiped. CF_EINVAL when out is too small
 * or the secret is empty. Thread-safe. */
enum cf_rc cf_webhook_signature(const void *secret, size_t secret_len, int64_t t, const char *body,
                                size_t body_len, char *out, size_t size, struct cf_err *err);

#endif
