/* HTTP handlers for people (core/users.h): users (/api/v1/users), local sign-in and browser
 * sessions (/api/v1/auth/login, logout, sessions) and personal access tokens
 * (/api/v1/users/me/tokens). Users' project memberships are served with the identities' (api/
 * identities.c, user-memberships). Passwords, session secrets, CSRF tokens and tokens are never
 * logged or audited; a token is in the body of the one answer that creates it. See docs/users.md.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "api/http.h"
#include "api/render.h"
#include "core/users.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

json_t *cf_render_user(const struct cf_user *u)
{
    json_t *sso = u->sso_subject[0]
                      ? json_pack("{s:s, s:s}", "issuer", u->sso_issuer, "subject", u->sso_subject)
                      : json_null();
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:o, s:o, s:o, s:o}", "id", u->id, "email",
                     u->email, "name", u->name, "orgRole", u->org_role, "status", u->status,
                     "hasPassword", u->password_hash[0] != '\0', "sso", sso, "createdAt",
                     cf_json_time(u->created_at), "updatedAt", cf_json_time(u->updated_at),
                     "lastLoginAt", cf_json_time(u->last_login_at));
}

/* Notes action on the user or token target (its email or id, never a credential) in the audit
 * record's path: "user a@example.com", "token <id>". */
static void audit_target(struct cf_req *req, const char *action, const char *kind,
                         const char *target)
{
    char what[CF_EMAIL_MAX + 16];
    snprintf(what, sizeof(what), "%s %s", kind, target);
    cf_req_audit(req, action, NULL, NULL, what);
}

static enum cf_rc reply_user(const struct cf_user *user, json_t **out, struct cf_err *err)
{
    return cf_render_reply_member("user", cf_render_user(user), out, err);
}

/* An optional string field's value and length (password fields may not hold NUL either). */
static enum cf_rc secret_field(json_t *body, const char *field, bool required, const char **value,
                               size_t *len, struct cf_err *err)
{
    enum cf_rc rc = cf_json_string(body, field, required, value, err);
    *len = 0;
    if (rc == CF_OK && *value) {
        json_t *v = json_object_get(body, field);
        *len = json_string_length(v);
    }
    return rc;
}

/* POST /api/v1/users {email, name?, orgRole?, password?} -> {user} */
static enum cf_rc create_user(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_user user = {0};
    json_t *body = NULL;
    const char *email = NULL, *name = NULL, *role = NULL, *password = NULL;
    size_t password_len = 0;
    enum cf_rc rc;

    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "email", true, &email, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "name", false, &name, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "orgRole", false, &role, err);
    if (rc == CF_OK)
        rc = secret_field(body, "password", false, &password, &password_len, err);
    if (rc == CF_OK)
        rc = cf_users_create(cf_req_core(req), cf_req_principal(req), email, name, role, password,
                             password_len, &user, err);
    if (rc == CF_OK) {
        audit_target(req, "users.create", "user", user.email);
        rc = reply_user(&user, out, err);
    }
    return rc;
}

/* GET /api/v1/users -> {users: [User]} */
static enum cf_rc list_users(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_user_list list = {0};
    json_t *array = NULL;
    enum cf_rc rc = cf_users_list(cf_req_core(req), cf_req_principal(req), &list, err);
    if (rc != CF_OK)
        return rc;
    array = json_array();
    for (size_t i = 0; array && i < list.n; i++)
        array = cf_render_append(array, cf_render_user(&list.items[i]));
    rc = cf_render_reply_member("users", array, out, err);
    cf_user_list_release(&list);
    return rc;
}

/* The user a path names: ":userId" is an id, an email, or "me" (the caller). */
static const char *user_ref(struct cf_req *req)
{
    const char *ref = cf_req_param(req, "userId");
    const struct cf_principal *who = cf_req_principal(req);
    if (ref && strcmp(ref, "me") == 0 && who && who->kind == CF_PRINCIPAL_USER)
        return who->id;
    return ref;
}

/* GET /api/v1/users/{userId|email|me} -> {user} */
static enum cf_rc get_user(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_user user;
    enum cf_rc rc =
        cf_users_get(cf_req_core(req), cf_req_principal(req), user_ref(req), &user, err);
    return rc == CF_OK ? reply_user(&user, out, err) : rc;
}

/* PATCH /api/v1/users/{userId} {name?, orgRole?, status?} -> {user} */
static enum cf_rc update_user(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_user user;
    json_t *body = NULL;
    const char *name = NULL, *role = NULL, *status = NULL;
    enum cf_rc rc;

    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "name", false, &name, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "orgRole", false, &role, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "status", false, &status, err);
    if (rc == CF_OK)
        rc = cf_users_update(cf_req_core(req), cf_req_principal(req), user_ref(req), name, role,
                             status, &user, err);
    if (rc == CF_OK) {
        audit_target(req,
                     status ? (strcmp(status, "disabled") == 0 ? "users.disable" : "users.enable")
                            : "users.update",
                     "user", user.email);
        rc = reply_user(&user, out, err);
    }
    return rc;
}

/* DELETE /api/v1/users/{userId} -> {user} (as it was) */
static enum cf_rc delete_user(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_user user;
    enum cf_rc rc =
        cf_users_delete(cf_req_core(req), cf_req_principal(req), user_ref(req), &user, err);
    if (rc == CF_OK) {
        audit_target(req, "users.delete", "user", user.email);
        rc = reply_user(&user, out, err);
    }
    return rc;
}

/* POST /api/v1/users/{userId}/password {currentPassword?, password} -> {message} */
static enum cf_rc set_password(struct cf_req *req, json_t **out, struct cf_err *err)
{
    json_t *body = NULL;
    const char *current = NULL, *password = NULL;
    size_t current_len = 0, password_len = 0;
    enum cf_rc rc;

    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = secret_field(body, "currentPassword", false, &current, &current_len, err);
    if (rc == CF_OK)
        rc = secret_field(body, "password", true, &password, &password_len, err);
    if (rc == CF_OK)
        rc = cf_users_set_password(cf_req_core(req), cf_req_principal(req), user_ref(req), current,
                                   current_len, password, password_len, err);
    if (rc == CF_OK) {
        audit_target(req, "users.password", "user", user_ref(req));
        rc = cf_render_reply(json_pack("{s:s}", "message", "password set"), out, err);
    }
    return rc;
}

/* ---- sign-in and sessions ---- */

static json_t *render_pat(const struct cf_pat *p);

enum cf_rc cf_api_login_for_token(struct cf_req *req, const struct cf_user *user, const char *name,
                                  int64_t ttl, json_t **out, struct cf_err *err)
{
    struct cf_principal who;
    char token[CF_PAT_MAX] = "";
    struct cf_pat pat;
    cf_users_principal(user, &who);
    enum cf_rc rc = cf_users_pat_create(cf_req_core(req), &who, name, ttl, token, &pat, err);
    if (rc == CF_OK)
        rc = cf_render_reply(json_pack("{s:o, s:s, s:o}", "user", cf_render_user(user), "token",
                                       token, "personalAccessToken", render_pat(&pat)),
                             out, err);
    sodium_memzero(token, sizeof(token));
    return rc;
}

static json_t *render_session(const struct cf_user_session *s, const char *current)
{
    return json_pack("{s:s, s:b, s:s, s:s, s:o, s:o, s:o}", "id", s->id, "current",
                     current && strcmp(s->id, current) == 0, "sourceIp", s->source_ip, "userAgent",
                     s->user_agent, "createdAt", cf_json_time(s->created_at), "lastSeenAt",
                     cf_json_time(s->last_seen_at), "expiresAt", cf_json_time(s->expires_at));
}

/* The optional personalAccessToken {name, expiresIn} of a sign-in: *wanted says whether it is
 * there. */
static enum cf_rc pat_request(json_t *body, bool *wanted, const char **name, int64_t *ttl,
                              struct cf_err *err)
{
    json_t *want_pat = body ? json_object_get(body, "personalAccessToken") : NULL;
    enum cf_rc rc = CF_OK;
    *wanted = want_pat != NULL;
    *name = NULL;
    *ttl = 0;
    if (want_pat && !json_is_object(want_pat))
        rc = cf_err_field(err, CF_EINVAL, "personalAccessToken",
                          "personalAccessToken: expected an object {name, expiresIn}");
    if (rc == CF_OK && want_pat)
        rc = cf_json_string(want_pat, "name", true, name, err);
    if (rc == CF_OK && want_pat)
        rc = cf_api_pat_expires_in(want_pat, ttl, err);
    return rc;
}

/* The answer of a sign-in whose credentials were right (rc CF_OK) or the refusal rc: the actor
 * named once the account is known (an unknown email is not recorded); a personal access token
 * when one was asked for, else the session cookie and {user, csrfToken, session}. */
static enum cf_rc login_reply(struct cf_req *req, enum cf_rc rc, const struct cf_user *user,
                              struct cf_session_grant *grant, bool want_pat, const char *pat_name,
                              int64_t ttl, json_t **out, struct cf_err *err)
{
    if (user->id[0])
        cf_req_audit_actor(req, "user", user->id, user->email);
    if (rc != CF_OK)
        return rc;
    if (want_pat)
        return cf_api_login_for_token(req, user, pat_name, ttl, out, err);
    int64_t max_age = (grant->session.expires_at - grant->session.created_at) / 1000;
    cf_req_set_session_cookie(req, grant->cookie, max_age);
    return cf_render_reply(json_pack("{s:o, s:s, s:o}", "user", cf_render_user(user), "csrfToken",
                                     grant->csrf_token, "session",
                                     render_session(&grant->session, grant->session.id)),
                           out, err);
}

/* POST /api/v1/auth/login {email, password, personalAccessToken?: {name, expiresIn}} -> Set-Cookie
 * coffer_session, {user, csrfToken, session}; with personalAccessToken, no session: {user, token,
 * personalAccessToken} (`coffer login --user`). A user with two-factor sign-in gets 401 with
 * {mfaRequired: true, mfaTicket, mfaTicketExpiresAt, mfaMethods} and goes on at login/mfa. */
static enum cf_rc login(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_session_grant grant;
    struct cf_mfa_challenge challenge;
    struct cf_user user;
    json_t *body = NULL;
    const char *email = NULL, *password = NULL, *pat_name = NULL;
    size_t password_len = 0;
    bool want_pat = false;
    int64_t ttl = 0;
    enum cf_rc rc;

    memset(&grant, 0, sizeof(grant));
    memset(&challenge, 0, sizeof(challenge));
    memset(&user, 0, sizeof(user));
    cf_req_audit(req, "auth.login", NULL, NULL, NULL);
    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "email", true, &email, err);
    if (rc == CF_OK)
        rc = secret_field(body, "password", true, &password, &password_len, err);
    if (rc == CF_OK)
        rc = pat_request(body, &want_pat, &pat_name, &ttl, err);
    if (rc == CF_OK)
        rc = cf_users_login(cf_req_core(req), email, password, password_len, cf_req_client_ip(req),
                            cf_req_user_agent(req), &user, want_pat ? NULL : &grant, &challenge,
                            err);
    if (rc == CF_EUNAUTH && challenge.ticket[0])
        cf_req_error_extra(req, json_pack("{s:b, s:s, s:o, s:[s, s]}", "mfaRequired", 1,
                                          "mfaTicket", challenge.ticket, "mfaTicketExpiresAt",
                                          cf_json_time(challenge.expires_at), "mfaMethods", "totp",
                                          "recoveryCode"));
    rc = login_reply(req, rc, &user, &grant, want_pat, pat_name, ttl, out, err);
    sodium_memzero(&challenge, sizeof(challenge));
    sodium_memzero(&grant, sizeof(grant));
    return rc;
}

/* POST /api/v1/auth/login/mfa {mfaTicket, code, personalAccessToken?} -> the answers of login:
 * the second step of a sign-in with two-factor sign-in; code is a TOTP code or a recovery code. */
static enum cf_rc login_mfa(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_session_grant grant;
    struct cf_user user;
    json_t *body = NULL;
    const char *ticket = NULL, *code = NULL, *pat_name = NULL;
    bool want_pat = false, used_recovery = false;
    int64_t ttl = 0;
    enum cf_rc rc;

    memset(&grant, 0, sizeof(grant));
    memset(&user, 0, sizeof(user));
    cf_req_audit(req, "auth.login.mfa", NULL, NULL, NULL);
    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "mfaTicket", true, &ticket, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "code", true, &code, err);
    if (rc == CF_OK)
        rc = pat_request(body, &want_pat, &pat_name, &ttl, err);
    if (rc == CF_OK)
        rc = cf_users_login_mfa(cf_req_core(req), ticket, code, cf_req_client_ip(req),
                                cf_req_user_agent(req), &user, want_pat ? NULL : &grant,
                                &used_recovery, err);
    if (used_recovery) /* a recovery code used up: its own action, so that it stands out */
        audit_target(req, "auth.login.recovery-code", "user", user.email);
    rc = login_reply(req, rc, &user, &grant, want_pat, pat_name, ttl, out, err);
    sodium_memzero(&grant, sizeof(grant));
    return rc;
}

/* POST /api/v1/auth/logout -> {message}: ends the caller's session and clears the cookie. */
static enum cf_rc logout(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const struct cf_principal *who = cf_req_principal(req);
    enum cf_rc rc;

    if (who->kind != CF_PRINCIPAL_USER || !who->session_id[0])
        return cf_err_set(err, CF_EINVAL, "logout ends a browser session: this request has none");
    rc = cf_users_session_revoke(cf_req_core(req), who, who->session_id, err);
    if (rc == CF_OK) {
        cf_req_audit(req, "auth.logout", NULL, NULL, NULL);
        cf_req_set_session_cookie(req, NULL, 0);
        rc = cf_render_reply(json_pack("{s:s}", "message", "signed out"), out, err);
    }
    return rc;
}

/* GET /api/v1/auth/sessions -> {sessions: [{id, current, sourceIp, userAgent, createdAt,
 * lastSeenAt, expiresAt}]} */
static enum cf_rc list_sessions(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const struct cf_principal *who = cf_req_principal(req);
    struct cf_user_session_list list = {0};
    json_t *array = NULL;
    enum cf_rc rc = cf_users_sessions_list(cf_req_core(req), who, &list, err);
    if (rc != CF_OK)
        return rc;
    array = json_array();
    for (size_t i = 0; array && i < list.n; i++)
        array = cf_render_append(array, render_session(&list.items[i], who->session_id));
    rc = cf_render_reply_member("sessions", array, out, err);
    cf_user_session_list_release(&list);
    return rc;
}

/* DELETE /api/v1/auth/sessions/{sessionId} -> {message} */
static enum cf_rc revoke_session(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const struct cf_principal *who = cf_req_principal(req);
    const char *id = cf_req_param(req, "sessionId");
    enum cf_rc rc = cf_users_session_revoke(cf_req_core(req), who, id, err);
    if (rc == CF_OK) {
        cf_req_audit(req, "auth.session.revoke", NULL, NULL, NULL);
        if (strcmp(id, who->session_id) == 0)
            cf_req_set_session_cookie(req, NULL, 0);
        rc = cf_render_reply(json_pack("{s:s}", "message", "session ended"), out, err);
    }
    return rc;
}

/* POST /api/v1/auth/sessions/revoke-others -> {revoked: n} */
static enum cf_rc revoke_other_sessions(struct cf_req *req, json_t **out, struct cf_err *err)
{
    int64_t revoked = 0;
    enum cf_rc rc =
        cf_users_sessions_revoke_others(cf_req_core(req), cf_req_principal(req), &revoked, err);
    if (rc == CF_OK) {
        cf_req_audit(req, "auth.session.revoke", NULL, NULL, NULL);
        rc = cf_render_reply(json_pack("{s:I}", "revoked", (json_int_t)revoked), out, err);
    }
    return rc;
}

/* ---- personal access tokens ---- */

static json_t *render_pat(const struct cf_pat *p)
{
    return json_pack("{s:s, s:s, s:b, s:o, s:o}", "id", p->id, "name", p->name, "revoked",
                     p->revoked, "createdAt", cf_json_time(p->created_at), "expiresAt",
                     cf_json_time(p->expires_at));
}

enum cf_rc cf_api_pat_expires_in(json_t *body, int64_t *seconds, struct cf_err *err)
{
    json_t *v = json_object_get(body, "expiresIn");
    struct cf_err detail;
    *seconds = 0;
    if (!v || json_is_null(v))
        return cf_err_field(err, CF_EVALIDATION, "expiresIn",
                            "expiresIn: required (seconds, or a duration such as 90d)");
    if (json_is_integer(v)) {
        *seconds = (int64_t)json_integer_value(v);
        return CF_OK;
    }
    if (!json_is_string(v))
        return cf_err_field(err, CF_EINVAL, "expiresIn",
                            "expiresIn: expected a number of seconds or a duration string");
    if (cf_duration_parse(json_string_value(v), seconds, &detail) != CF_OK)
        return cf_err_field(err, CF_EVALIDATION, "expiresIn", "expiresIn: %s", detail.msg);
    return CF_OK;
}

/* POST /api/v1/users/me/tokens {name, expiresIn} -> {token, personalAccessToken} */
static enum cf_rc create_pat(struct cf_req *req, json_t **out, struct cf_err *err)
{
    char token[CF_PAT_MAX] = "";
    struct cf_pat pat;
    json_t *body = NULL;
    const char *name = NULL;
    int64_t ttl = 0;
    enum cf_rc rc;

    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "name", true, &name, err);
    if (rc == CF_OK)
        rc = cf_api_pat_expires_in(body, &ttl, err);
    if (rc == CF_OK)
        rc = cf_users_pat_create(cf_req_core(req), cf_req_principal(req), name, ttl, token, &pat,
                                 err);
    if (rc == CF_OK) {
        audit_target(req, "users.token.create", "token", pat.id);
        rc = cf_render_reply(
            json_pack("{s:s, s:o}", "token", token, "personalAccessToken", render_pat(&pat)), out,
            err);
    }
    sodium_memzero(token, sizeof(token));
    return rc;
}

/* GET /api/v1/users/me/tokens -> {personalAccessTokens: [..]} */
static enum cf_rc list_pats(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_pat_list list = {0};
    json_t *array = NULL;
    enum cf_rc rc = cf_users_pat_list(cf_req_core(req), cf_req_principal(req), &list, err);
    if (rc != CF_OK)
        return rc;
    array = json_array();
    for (size_t i = 0; array && i < list.n; i++)
        array = cf_render_append(array, render_pat(&list.items[i]));
    rc = cf_render_reply_member("personalAccessTokens", array, out, err);
    cf_pat_list_release(&list);
    return rc;
}

/* DELETE /api/v1/users/me/tokens/{tokenId} -> {message} */
static enum cf_rc revoke_pat(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const char *id = cf_req_param(req, "tokenId");
    enum cf_rc rc = cf_users_pat_revoke(cf_req_core(req), cf_req_principal(req), id, err);
    if (rc == CF_OK) {
        audit_target(req, "users.token.revoke", "token", id);
        rc = cf_render_reply(json_pack("{s:s}", "message", "token revoked"), out, err);
    }
    return rc;
}

const struct cf_route cf_routes_users[] = {
    {"POST", "/api/v1/users", create_user, false},
    {"GET", "/api/v1/users", list_users, false},
    {"POST", "/api/v1/users/me/tokens", create_pat, false},
    {"GET", "/api/v1/users/me/tokens", list_pats, false},
    {"DELETE", "/api/v1/users/me/tokens/:tokenId", revoke_pat, false},
    {"GET", "/api/v1/users/:userId", get_user, false},
    {"PATCH", "/api/v1/users/:userId", update_user, false},
    {"DELETE", "/api/v1/users/:userId", delete_user, false},
    {"POST", "/api/v1/users/:userId/password", set_password, false},
    {"POST", "/api/v1/auth/login", login, true},
    {"POST", "/api/v1/auth/login/mfa", login_mfa, true},
    {"POST", "/api/v1/auth/logout", logout, false},
    {"GET", "/api/v1/auth/sessions", list_sessions, false},
    {"POST", "/api/v1/auth/sessions/revoke-others", revoke_other_sessions, false},
    {"DELETE", "/api/v1/auth/sessions/:sessionId", revoke_session, false},
    {NULL, NULL, NULL, false},
};
