/* The grant-and-issue block every login method shares: the failed-login throttles, reading the
 * method's configuration (an unknown one refused and counted), verifying the credential with the
 * method's own check, the address the login may come from, and issuing the access token
 * (auth/token.h) under the method's token policy. A method supplies only what differs, as a table
 * of callbacks (struct cf_login_method): universal auth (universal.h), JWT auth (jwt_auth.h) and
 * Kubernetes auth (k8s_auth.h). */
#ifndef CF_AUTH_LOGIN_H
#define CF_AUTH_LOGIN_H

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

/* What a verified credential grants, filled by the method's verify callback; the pointers point
 * into the method's context and stay valid until cf_login_with returns. */
struct cf_login_grant {
    const char *identity_id;
    const char *client_secret_id; /* universal auth: its use is counted with the token; else NULL */
    const struct cf_token_policy *policy; /* the method's token policy: TTLs, uses, token IPs */
    /* Address ranges the login itself may come from (comma-separated, as cf_cidr_list_match), or
     * NULL when the method does not restrict it. */
    const char *login_ips;
};

/* What a callback may use besides its context: borrowed, valid during cf_login_with. */
struct cf_login_call {
    struct cf_store *st;
    struct cf_keyring *kr;
    const char *client_ip; /* never NULL ("" when unknown) */
    int64_t now;           /* Unix milliseconds */
};

/* A login method: its name and callbacks, each given the caller's ctx. */
struct cf_login_method {
    const char *auth_method; /* "universal-auth", "jwt-auth", "kubernetes-auth" */
    const char *what;        /* the key in a throttle refusal: "this identity from this address" */
    /* The CF_ENOTFOUND message when get finds no configuration (a failed attempt); NULL when get
     * answers an unknown key itself (universal auth goes on as for a wrong secret). */
    const char *not_found;
    /* Reads the method's configuration of key into ctx; CF_ENOTFOUND when there is none. Sets
     * *known when the key was found (then the caller may log it as it is). */
    enum cf_rc (*get)(void *ctx, const struct cf_login_call *call, const char *key, bool *known,
                      struct cf_err *err);
    /* Checks the presented credential against the configuration and, on CF_OK, fills grant.
     * CF_EUNAUTH is a failed attempt (counted by the throttles); other codes are returned as
     * they are. */
    enum cf_rc (*verify)(void *ctx, const struct cf_login_call *call, struct cf_login_grant *grant,
                         struct cf_err *err);
    /* Optional: the refusal of a login from an address outside grant->login_ips (a failed
     * attempt); NULL: "IP address A is not allowed to log in". */
    enum cf_rc (*refuse_address)(void *ctx, const struct cf_login_call *call, struct cf_err *err);
    /* Optional: refusals, not counted as failed attempts, once the credential is right and the
     * address allowed (universal auth: a revoked or expired client secret). */
    enum cf_rc (*admit)(void *ctx, const struct cf_login_call *call, struct cf_err *err);
};

/* Logs in with method: CF_ERATELIMIT (with retry_after_s) when the address, or key (a client id or
 * an identity id) from this address, is locked out by failed attempts; then get, the not-found
 * refusal, verify, the login address check and admit as struct cf_login_method says, each failed
 * attempt counted against (client_ip, key) and client_ip; then the access token is issued into out
 * with the grant's token policy (TTLs capped by cf_token_cap_ttls; CF_ECONFLICT when the client
 * secret is out of uses, as token_create says) and the failures of (client_ip, key) are cleared
 * (the address's own count stays). out is zeroed first; its token is wiped on failure. client_ip
 * may be NULL (unknown). Thread-safe when the store and the callbacks are. */
enum cf_rc cf_login_with(struct cf_store *st, struct cf_keyring *kr,
                         const struct cf_login_throttles *throttles,
                         const struct cf_login_method *method, void *ctx, const char *key,
                         const char *client_ip, int64_t now, struct cf_login_result *out,
                         struct cf_err *err);

#endif
