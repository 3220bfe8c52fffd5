/* Single sign-on's browser steps (docs/users.md "Single sign-on", docs/api.md):
 * GET /api/v1/sso/oidc/login?return=/path sends the browser to the identity provider (302), and
 * GET /api/v1/sso/oidc/callback?code=...&state=... is where the provider sends it back. Both are
 * public: the browser has no Coffer credential yet. The code and the tokens never reach the audit
 * record or the log (the callback's query is not logged, docs/server.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api/http.h"
#include "core/sso.h"
#include "util/banned.h"

static enum cf_rc sso_login(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const char *return_path = NULL;
    char *url = NULL;
    (void)out;
    cf_req_audit(req, "sso.login.begin", NULL, NULL, NULL);
    enum cf_rc rc = cf_req_query(req, "return", &return_path, err);
    if (rc == CF_OK)
        rc = cf_sso_begin(cf_req_core(req), return_path, cf_req_client_ip(req), &url, err);
    if (rc == CF_OK)
        rc = cf_req_redirect(req, url, err);
    free(url);
    return rc;
}

/* Names in the request's audit record what the sign-in changed of the user: its org role (mapped
 * from its groups) and the groups it joined or left. */
static void audit_changes(struct cf_req *req, const struct cf_user *user,
                          const struct cf_sso_changes *changes)
{
    char what[CF_GROUP_SYNC_NAMES_MAX * 2 + 400];
    int n = snprintf(what, sizeof(what), "user %s", user->email);
    if (strcmp(changes->role_before, changes->role_after) != 0)
        n += snprintf(what + n, sizeof(what) - (size_t)n, "; org role %s -> %s",
                      changes->role_before, changes->role_after);
    if (changes->groups.joined)
        n += snprintf(what + n, sizeof(what) - (size_t)n, "; joined %s",
                      changes->groups.joined_names);
    if (changes->groups.left)
        snprintf(what + n, sizeof(what) - (size_t)n, "; left %s", changes->groups.left_names);
    cf_req_audit(req, "sso.login", NULL, NULL, what);
}

static enum cf_rc sso_callback(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_oidc_callback cb = {0};
    struct cf_oidc_identity id;
    struct cf_user user = {0};
    struct cf_session_grant grant = {0};
    struct cf_sso_changes changes;
    enum cf_rc rc;
    (void)out;
    cf_req_audit(req, "sso.login", NULL, NULL, NULL);
    rc = cf_req_query(req, "state", &cb.state, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "code", &cb.code, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "error", &cb.error, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "error_description", &cb.error_description, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_sso_verify(cf_req_core(req), &cb, &id, err);
    if (rc != CF_OK)
        return rc;
    /* From here the record names who the provider vouched for, then the Coffer user. */
    cf_req_audit_actor(req, "user", id.subject, id.email);
    if (cf_sso_is_cli(&id)) {
        /* `coffer login --sso`: no browser session; the browser takes a one-time code to the CLI's
         * loopback port, and the CLI redeems it with its verifier (sso_cli_token). */
        char *loopback = NULL;
        rc = cf_sso_cli_finish(cf_req_core(req), &id, cf_req_client_ip(req), &user, &changes,
                               &loopback, err);
        if (user.id[0]) {
            cf_req_audit_actor(req, "user", user.id, user.email);
            audit_changes(req, &user, &changes);
        }
        if (rc == CF_OK)
            rc = cf_req_redirect(req, loopback, err);
        if (loopback) {
            sodium_memzero(loopback, strlen(loopback));
            free(loopback);
        }
        cf_oidc_identity_release(&id);
        return rc;
    }
    rc = cf_sso_finish(cf_req_core(req), &id, cf_req_client_ip(req), cf_req_user_agent(req), &user,
                       &grant, &changes, err);
    if (user.id[0]) {
        cf_req_audit_actor(req, "user", user.id, user.email);
        audit_changes(req, &user, &changes);
    }
    if (rc == CF_OK) {
        int64_t max_age = (grant.session.expires_at - grant.session.created_at) / 1000;
        cf_req_set_session_cookie(req, grant.cookie, max_age);
        cf_req_set_csrf_cookie(req, grant.csrf_token, max_age);
        rc = cf_req_redirect(req, id.return_path[0] ? id.return_path : "/", err);
    }
    sodium_memzero(&grant, sizeof(grant));
    cf_oidc_identity_release(&id);
    return rc;
}

/* GET /api/v1/sso/oidc/cli/login?port=P&challenge=C: as sso_login, for `coffer login --sso`
 * listening on 127.0.0.1:P with base64url(SHA-256(verifier)) = C. */
static enum cf_rc sso_cli_login(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const char *port = NULL, *challenge = NULL;
    char *url = NULL;
    (void)out;
    cf_req_audit(req, "sso.login.begin", NULL, NULL, "cli");
    enum cf_rc rc = cf_req_query(req, "port", &port, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "challenge", &challenge, err);
    if (rc == CF_OK)
        rc = cf_sso_cli_begin(cf_req_core(req), port, challenge, cf_req_client_ip(req), &url, err);
    if (rc == CF_OK)
        rc = cf_req_redirect(req, url, err);
    free(url);
    return rc;
}

/* POST /api/v1/sso/oidc/cli/token {code, codeVerifier, name?, expiresIn?} -> {user, token,
 * personalAccessToken}: the CLI redeems the code the browser brought to its loopback port. */
static enum cf_rc sso_cli_token(struct cf_req *req, json_t **out, struct cf_err *err)
{
    json_t *body = NULL;
    struct cf_user user = {0};
    int64_t ttl = 0;
    cf_req_audit(req, "sso.cli.token", NULL, NULL, NULL);
    enum cf_rc rc = cf_req_json(req, true, &body, err);
    if (rc != CF_OK)
        return rc;
    const char *name = json_string_value(json_object_get(body, "name"));
    json_t *code = json_object_get(body, "code"), *verifier = json_object_get(body, "codeVerifier");
    if ((code && !json_is_string(code)) || (verifier && !json_is_string(verifier)))
        return cf_err_field(err, CF_EINVAL, code && !json_is_string(code) ? "code" : "codeVerifier",
                            "%s: expected a string",
                            code && !json_is_string(code) ? "code" : "codeVerifier");
    if (json_object_get(body, "expiresIn"))
        rc = cf_api_pat_expires_in(body, &ttl, err);
    else
        ttl = CF_SSO_CLI_TOKEN_TTL_S;
    if (rc == CF_OK)
        rc = cf_sso_cli_redeem(cf_req_core(req), json_string_value(code),
                               json_string_value(verifier), &user, err);
    if (user.id[0])
        cf_req_audit_actor(req, "user", user.id, user.email);
    if (rc == CF_OK) {
        cf_req_audit(req, "sso.cli.token", NULL, NULL, user.email);
        rc = cf_api_login_for_token(req, &user, name && *name ? name : "coffer login --sso", ttl,
                                    out, err);
    }
    return rc;
}

const struct cf_route cf_routes_sso[] = {
    {"GET", "/api/v1/sso/oidc/login", sso_login, true},
    {"GET", "/api/v1/sso/oidc/callback", sso_callback, true},
    {"GET", "/api/v1/sso/oidc/cli/login", sso_cli_login, true},
    {"POST", "/api/v1/sso/oidc/cli/token", sso_cli_token, true},
    {NULL, NULL, NULL, false},
};
