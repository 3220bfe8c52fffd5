/* Universal auth: a machine identity logs in with a client id and one of its client secrets and
 * receives an access token (auth/token.h). Secrets are high-entropy random strings, so they are
 * stored as keyed hashes and compared in constant time; no slow KDF is needed, and logins are
 * cheap. Client ids are not secret, so failed logins are throttled by source address: per (address,
 * client id) and per address (auth/throttle.h), never per client id alone, so that failures from
 * one address never refuse a login from another. */
#ifndef CF_AUTH_UNIVERSAL_H
#define CF_AUTH_UNIVERSAL_H

#include "auth/throttle.h"
#include "auth/token.h"

struct cf_login_result {
    char token[CF_ACCESS_TOKEN_MAX]; /* the caller wipes it */
    int64_t expires_in;              /* seconds; 0: no expiry */
    int64_t max_ttl;                 /* seconds; 0: none */
    /* Set, success or not, once the presented client id (or identity id) was found: the caller may
     * then log and audit it as it is. Otherwise it may be a credential pasted into the wrong field,
     * and only its fingerprint (crypto/token.h) may be kept. */
    bool subject_known;
};

/* The failed-login throttles shared by every login method: by_address_and_id is keyed by (source
 * address, client id or identity id), by_address by the address alone (a larger budget, as many
 * clients may share one NAT address). */
struct cf_login_throttles {
    struct cf_throttle *by_address_and_id;
    struct cf_throttle *by_address;
};

/* What a successful login grants: the token settings of the identity's auth method. */
struct cf_login_grant {
    const char *identity_id;
    const char *auth_method;      /* "universal-auth", "jwt-auth", "kubernetes-auth" */
    const char *client_secret_id; /* universal auth: its use is counted with the token; else NULL */
    int64_t ttl;
    int64_t max_ttl;
    int64_t num_uses_limit;
    const char *trusted_ips;
};

/* Issues the access token of a successful login into out (CF_ECONFLICT when the client secret is
 * out of uses, as token_create says) and clears the throttle failures of (client_ip, key); the
 * address's own count stays. */
enum cf_rc cf_login_issue(struct cf_store *st, struct cf_keyring *kr,
                          const struct cf_login_throttles *throttles, const char *key,
                          const char *client_ip, const struct cf_login_grant *grant, int64_t now,
                          struct cf_login_result *out, struct cf_err *err);

/* Before a login attempt: CF_ERATELIMIT (with retry_after_s) when the address, or the key (a client
 * id, an identity id; `what` names it in the message) from this address, is locked out by failed
 * attempts. The same key from another address is never refused for them. */
enum cf_rc cf_login_throttle_check(const struct cf_login_throttles *t, const char *key,
                                   const char *what, const char *client_ip, int64_t now,
                                   struct cf_err *err);

/* Records a failed attempt of key from client_ip against both throttles and returns rc (for `return
 * cf_login_failed(...)`). */
enum cf_rc cf_login_failed(const struct cf_login_throttles *t, const char *key,
                           const char *client_ip, int64_t now, enum cf_rc rc);

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
