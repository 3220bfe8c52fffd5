/* JWT auth login (issue 4): a machine identity logs in with a JWT signed by a key its JWT auth
 * configuration trusts and receives an access token (auth/token.h) with auth method "jwt-auth".
 * Only static public keys are verified for now: a "jwks" configuration is stored but logging in
 * with it is refused. Failed logins are throttled per identity id and per source address, with the
 * same throttles as universal auth. */
#ifndef CF_AUTH_JWT_AUTH_H
#define CF_AUTH_JWT_AUTH_H

#include "auth/universal.h"

/* Logs in. now is in Unix milliseconds. Refusals: CF_ENOTFOUND "JWT auth method not found for
 * identity, did you configure JWT auth?" (also for an unknown identity), CF_EINVAL "JWKS fetching
 * is not implemented yet" for a "jwks" configuration, CF_EUNAUTH with cf_jwt_verify's message for a
 * token it refuses, CF_ERATELIMIT with retry_after_s once the failures of this identity or address
 * pass the limit. by_client_id of throttles is keyed by identity id here. The token is never
 * copied into a message. */
enum cf_rc cf_jwt_login(struct cf_store *st, struct cf_keyring *kr,
                        const struct cf_login_throttles *throttles, const char *identity_id,
                        const char *jwt, const char *client_ip, int64_t now,
                        struct cf_login_result *out, struct cf_err *err);

#endif
