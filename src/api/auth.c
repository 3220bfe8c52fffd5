/* Login endpoints (no Authorization header, as Infisical's clients send none): universal-auth
 * JWT-auth and Kubernetes-auth login, token renew and revoke. Credentials arrive in the body, which
 * the server wipes after the request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api/http.h"
#include "auth/jwt.h"
#include "auth/jwt_auth.h"
#include "auth/k8s_auth.h"
#include "auth/universal.h"
#include "crypto/token.h"
#include "util/log.h"
#include "util/time.h"
#include "util/banned.h"

/* Infisical trims surrounding blanks of the credentials it is sent; so do we. The result points
 * into a copy the caller wipes. */
static const char *trimmed(const char *text, char *copy, size_t size)
{
    while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
        text++;
    size_t n = strlen(text);
    while (n && (text[n - 1] == ' ' || text[n - 1] == '\t' || text[n - 1] == '\n' ||
                 text[n - 1] == '\r'))
        n--;
    if (n >= size)
        n = size - 1;
    memcpy(copy, text, n);
    copy[n] = '\0';
    return copy;
}

static json_t *token_reply(const char *token, int64_t expires_in, int64_t max_ttl)
{
    return json_pack("{s:s, s:I, s:I, s:s}", "accessToken", token, "expiresIn",
                     (json_int_t)expires_in, "accessTokenMaxTTL", (json_int_t)max_ttl, "tokenType",
                     "Bearer");
}

/* The answer to every login; result (which holds the token) is wiped either way. Every outcome is
 * also logged as one line naming the method, who tried, from where and, for a refusal, the precise
 * reason (the same text as the 401's message), so that an operator (and the audit log) can tell
 * why a pipeline's login failed. Who tried is the client id or identity id as presented only when
 * the login method found it; anything else may be a credential pasted into the wrong field (a
 * hash-chained audit record can never be scrubbed), so it is named by its fingerprint. */
static enum cf_rc login_reply(struct cf_req *req, const char *method, const char *presented_id,
                              enum cf_rc rc, struct cf_login_result *result, json_t **out,
                              struct cf_err *err)
{
    char action[64], fingerprint[CF_TOKEN_FINGERPRINT_LEN];
    const char *who = presented_id;
    if (!result->subject_known) {
        cf_token_fingerprint(presented_id, strlen(presented_id), fingerprint);
        who = fingerprint;
    }
    snprintf(action, sizeof(action), "auth.login.%s", method);
    cf_req_audit(req, action, NULL, NULL, NULL);
    /* Universal auth names a client id; the other methods the identity itself. */
    bool by_client_id = strcmp(method, "universal-auth") == 0;
    cf_req_audit_actor(req, by_client_id ? "client-id" : "identity", who, "");
    if (rc != CF_OK)
        cf_log_event(CF_LOG_INFO, "login", CF_LOG_WORD("method", method), CF_LOG_TEXT("who", who),
                     CF_LOG_WORD("ip", cf_req_client_ip(req)), CF_LOG_WORD("result", "refused"),
                     CF_LOG_WORD("rc", cf_rc_str(rc)), CF_LOG_TEXT("reason", err->msg),
                     CF_LOG_WORD("req_id", cf_req_id(req)));
    else
        cf_log_event(CF_LOG_INFO, "login", CF_LOG_WORD("method", method), CF_LOG_TEXT("who", who),
                     CF_LOG_WORD("ip", cf_req_client_ip(req)), CF_LOG_WORD("result", "ok"),
                     CF_LOG_WORD("req_id", cf_req_id(req)));
    if (rc == CF_OK) {
        *out = token_reply(result->token, result->expires_in, result->max_ttl);
        if (!*out)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    sodium_memzero(result, sizeof(*result));
    return rc;
}

static enum cf_rc ua_login(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_core *core = cf_req_core(req);
    json_t *body = NULL;
    const char *client_id = NULL, *client_secret = NULL;
    char id_copy[256], secret_copy[512];
    struct cf_login_result result;
    enum cf_rc rc;

    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "clientId", true, &client_id, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "clientSecret", true, &client_secret, err);
    if (rc != CF_OK)
        return rc;
    struct cf_login_throttles throttles = {core->login_by_address_and_id, core->login_by_address};
    trimmed(client_id, id_copy, sizeof(id_copy));
    if (cf_token_looks_like_client_secret(id_copy)) {
        /* Swapped arguments, most likely: say so, and never look the secret up as an id. */
        memset(&result, 0, sizeof(result));
        rc = cf_err_field(err, CF_EVALIDATION, "clientId",
                          "clientId: this looks like a client secret (it starts with \"%s\"); pass "
                          "it as the client secret (--client-secret), and the identity's client id "
                          "as the client id",
                          CF_CLIENT_SECRET_PREFIX);
    } else {
        rc = cf_ua_login(core->store, core->keyring, &throttles, id_copy,
                         trimmed(client_secret, secret_copy, sizeof(secret_copy)),
                         cf_req_client_ip(req), cf_now_ms(), &result, err);
    }
    sodium_memzero(secret_copy, sizeof(secret_copy));
    rc = login_reply(req, "universal-auth", id_copy, rc, &result, out, err);
    sodium_memzero(id_copy, sizeof(id_copy)); /* it may have been a credential */
    return rc;
}

/* The logins that present a JWT for an identity (route data). */
enum jwt_login_method { LOGIN_JWT, LOGIN_KUBERNETES };
static const enum jwt_login_method login_jwt = LOGIN_JWT;
static const enum jwt_login_method login_kubernetes = LOGIN_KUBERNETES;

/* POST /api/v1/auth/{jwt-auth,kubernetes-auth}/login {identityId, jwt} -> the same reply as
 * universal auth. */
static enum cf_rc identity_jwt_login(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_core *core = cf_req_core(req);
    enum jwt_login_method method = *(const enum jwt_login_method *)cf_req_route_data(req);
    json_t *body = NULL;
    const char *identity_id = NULL, *jwt = NULL;
    char id_copy[256];
    struct cf_login_result result;
    enum cf_rc rc;

    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "identityId", true, &identity_id, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "jwt", true, &jwt, err);
    if (rc != CF_OK)
        return rc;
    if (method == LOGIN_KUBERNETES && strlen(jwt) > CF_K8S_JWT_MAX)
        return cf_err_field(err, CF_EVALIDATION, "jwt", "jwt: at most %d characters",
                            CF_K8S_JWT_MAX);
    /* JWT auth: one byte over the verifier's limit, so that an oversized token is refused by it. */
    size_t size = method == LOGIN_JWT ? CF_JWT_TOKEN_MAX + 2 : CF_K8S_JWT_MAX + 1;
    char *jwt_copy = malloc(size);
    if (!jwt_copy)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    struct cf_login_throttles throttles = {core->login_by_address_and_id, core->login_by_address};
    trimmed(identity_id, id_copy, sizeof(id_copy));
    trimmed(jwt, jwt_copy, size);
    if (method == LOGIN_JWT)
        rc = cf_jwt_login(core->store, core->keyring, &throttles, core->jwks, id_copy, jwt_copy,
                          cf_req_client_ip(req), cf_now_ms(), &result, err);
    else
        rc = cf_k8s_login(core->store, core->keyring, &throttles, id_copy, jwt_copy,
                          cf_req_client_ip(req), cf_now_ms(), &result, err);
    sodium_memzero(jwt_copy, size);
    free(jwt_copy);
    rc = login_reply(req, method == LOGIN_JWT ? "jwt-auth" : "kubernetes", id_copy, rc, &result,
                     out, err);
    sodium_memzero(id_copy, sizeof(id_copy)); /* it may have been a credential */
    return rc;
}

static enum cf_rc token_renew(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_core *core = cf_req_core(req);
    struct cf_access_token record;
    json_t *body = NULL;
    const char *token = NULL;
    int64_t expires_in = 0;
    enum cf_rc rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "accessToken", true, &token, err);
    if (rc == CF_OK)
        rc = cf_token_renew(core->store, core->keyring, token, cf_req_client_ip(req), cf_now_ms(),
                            &record, &expires_in, err);
    if (rc != CF_OK)
        return rc;
    *out = token_reply(token, expires_in, record.max_ttl);
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

static enum cf_rc token_revoke(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_core *core = cf_req_core(req);
    json_t *body = NULL;
    const char *token = NULL;
    enum cf_rc rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "accessToken", true, &token, err);
    if (rc == CF_OK)
        rc = cf_token_revoke(core->store, core->keyring, token, err);
    if (rc != CF_OK)
        return rc;
    *out = json_pack("{s:s}", "message", "Successfully revoked access token");
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

const struct cf_route cf_routes_auth[] = {
    {"POST", "/api/v1/auth/universal-auth/login", ua_login, true, NULL, true},
    {"POST", "/api/v1/auth/jwt-auth/login", identity_jwt_login, true, &login_jwt, true},
    {"POST", "/api/v1/auth/kubernetes-auth/login", identity_jwt_login, true, &login_kubernetes,
     true},
    {"POST", "/api/v1/auth/token/renew", token_renew, true, NULL, true},
    {"POST", "/api/v1/auth/token/revoke", token_revoke, true, NULL, true},
    {NULL, NULL, NULL, false, NULL},
};
