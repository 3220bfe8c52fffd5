/* The "webhook" rotation consumer (provider/rotator.h): any system that can run an HTTPS endpoint
 * takes each new credential of a rotation from a signed POST, and proves on a second signed POST
 * that it works with it.
 *
 * Connection: app "webhook", method "signing-secret", credentials {"signingSecret"} (at least 32
 * characters); every request carries X-Coffer-Signature under it (crypto/sign.h).
 * Config: {"url": "https://...", "verifyUrl": "https://..." (optional; default url)}: https, or
 * plain http to a loopback host only, with no user name, password, query or fragment (a credential
 * in a URL would end up in logs: the signing secret is the receiver's proof).
 *
 * push POSTs to url {"event": "rotation.push", "rotation": {"id", "name", "generation"},
 * "credentialId", "expiresAt" (RFC 3339 or null), "values": {output: value, ...}};
 * verify POSTs to verifyUrl the same without "values" and with "event": "rotation.verify".
 * Headers: Content-Type: application/json, X-Coffer-Event (the event), X-Coffer-Delivery
 * ("<rotation id>.<generation>": the same for a push repeated after a crash, so the receiver can
 * de-duplicate), X-Coffer-Signature. A 2xx answer means taken (push) or works (verify); 429, or
 * 503 with Retry-After, is retried and then CF_ERATELIMIT; any other status is an error naming it
 * (verify: CF_EUNAUTH, the receiver refused the credential). Answers' bodies are not read. */
#ifndef CF_PROVIDER_WEBHOOK_H
#define CF_PROVIDER_WEBHOOK_H

#include "provider/rotator.h"

#define CF_WEBHOOK_URL_MAX 2048
#define CF_WEBHOOK_SECRET_MIN 32 /* characters of a connection's signingSecret, at least */

extern const struct cf_consumer_ops cf_consumer_webhook;

/* A webhook connection names no receiver (the rotations' consumers do), so there is nothing to
 * call: CF_EINVAL saying that its signing secret is proven at each rotation's push and verify. See
 * cf_provider_check. */
enum cf_rc cf_webhook_check(const struct cf_provider_conn *conn, json_t **report,
                            struct cf_err *err);

#endif
