/* JWT auth login: a machine identity logs in with a JWT signed by a key its JWT auth
 * configuration trusts and receives an access token (auth/token.h) with auth method "jwt-auth".
 * The keys are the configuration's static PEM public keys, or the key set of its JWKS URL, taken
 * from the server's JWKS cache (auth/jwks.h). Failed logins are throttled per (source address,
 * identity id) and per source address, with the same throttles as universal auth. */
#ifndef CF_AUTH_JWT_AUTH_H
#define CF_AUTH_JWT_AUTH_H

#include "auth/jwks.h"
#include "auth/login.h"

/* Logs in. now is in Unix milliseconds. Refusals: CF_ENOTFOUND "JWT auth method not found for
 * identity, did you configure JWT auth?" (also for an unknown identity), CF_EUNAUTH with
 * cf_jwt_verify's message for a token it refuses or cf_jwks_get's "JWKS endpoint <url> could not be
 * fetched: <reason>" for a "jwks" configuration (when the set lacks the token's key id, it is
 * refetched once, as the cache allows, before "unknown key id" is the answer), CF_ERATELIMIT with
 * retry_after_s once the failures of this identity from this address, or of this address, pass the
 * limit. out->subject_known is set once the identity's JWT auth is found. The token is never copied
 * into a message. */
enum cf_rc cf_jwt_login(struct cf_store *st, struct cf_keyring *kr,
                        const struct cf_login_throttles *throttles, struct cf_jwks_cache *jwks,
                        const char *identity_id, const char *jwt, const char *client_ip,
                        int64_t now, struct cf_login_result *out, struct cf_err *err);

#endif
