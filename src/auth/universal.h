/* Universal auth: a machine identity logs in with a client id and one of its client secrets and
 * receives an access token (auth/token.h). Secrets are high-entropy random strings, so they are
 * stored as keyed hashes and compared in constant time; no slow KDF is needed, and logins are
 * cheap. Client ids are not secret, so failed logins are throttled by source address: per (address,
 * client id) and per address (auth/throttle.h), never per client id alone, so that failures from
 * one address never refuse a login from another. */
#ifndef CF_AUTH_UNIVERSAL_H
#define CF_AUTH_UNIVERSAL_H

#include "auth/login.h"

/* Logs in. Every refusal is CF_EUNAUTH: a wrong client secret and an unknown client id get the same
 * message after the same work (an unknown client id's secrets are listed and compared as an
 * identity's that cannot exist); once the secret is right, the refusal names its cause (address not
 * allowed; client secret expired at T, revoked, out of uses). CF_ERATELIMIT with retry_after_s once
 * the failures of this client id from this address, or of this address, pass the limit. */
enum cf_rc cf_ua_login(struct cf_store *st, struct cf_keyring *kr,
                       const struct cf_login_throttles *throttles, const char *client_id,
                       const char *client_secret, const char *client_ip, int64_t now,
                       struct cf_login_result *out, struct cf_err *err);

#endif
