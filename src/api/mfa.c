/* HTTP handlers for two-factor sign-in (core/mfa.h): enrolling a TOTP authenticator
 * (/api/v1/users/me/mfa/totp), recovery codes, its status and turning it off. The TOTP secret and
 * recovery codes appear in the one answer that makes them and never in a log or audit record. See
 * docs/users.md "Two-factor sign-in". The sign-in's second step is api/users.c's login/mfa. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "api/http.h"
#include "api/render.h"
#include "core/mfa.h"
#include "core/users.h"
#include "util/banned.h"

/* The user a path names: ":userId" is an id, an email, or "me" (the caller). */
static const char *mfa_user_ref(struct cf_req *req)
{
    const char *ref = cf_req_param(req, "userId");
    const struct cf_principal *who = cf_req_principal(req);
    return ref && strcmp(ref, "me") == 0 && who && who->kind == CF_PRINCIPAL_USER ? who->id : ref;
}

/* Notes action on the caller (a user) or the user named target in the audit record's path. */
static void audit_mfa(struct cf_req *req, const char *action, const char *target)
{
    char what[CF_EMAIL_MAX + 8];
    snprintf(what, sizeof(what), "user %s", target);
    cf_req_audit(req, action, NULL, NULL, what);
}

static json_t *render_status(const struct cf_mfa_status *s)
{
    return json_pack("{s:b, s:b, s:I}", "totpEnabled", s->totp_enabled, "totpPending",
                     s->totp_pending, "recoveryCodesRemaining",
                     (json_int_t)s->recovery_codes_remaining);
}

static json_t *render_codes(const struct cf_recovery_codes *codes)
{
    json_t *array = json_array();
    for (size_t i = 0; array && i < CF_RECOVERY_CODES_N; i++)
        array = cf_render_append(array, json_string(codes->codes[i]));
    return array;
}

/* The answer of a change: {mfa: status, recoveryCodes?}. */
static enum cf_rc reply_status(struct cf_req *req, const char *ref,
                               const struct cf_recovery_codes *codes, json_t **out,
                               struct cf_err *err)
{
    struct cf_mfa_status status;
    enum cf_rc rc = cf_mfa_status_get(cf_req_core(req), cf_req_principal(req), ref, &status, err);
    if (rc != CF_OK)
        return rc;
    json_t *body = json_pack("{s:o}", "mfa", render_status(&status));
    if (body && codes)
        json_object_set_new(body, "recoveryCodes", render_codes(codes));
    return cf_render_reply(body, out, err);
}

/* POST /api/v1/users/me/mfa/totp -> {secret, otpauthUri, issuer, accountName, algorithm, digits,
 * period}: begins enrolment; the authenticator counts once totp/verify accepts one of its codes. */
static enum cf_rc totp_begin(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const struct cf_principal *who = cf_req_principal(req);
    struct cf_totp_enrolment enrolment;
    audit_mfa(req, "users.mfa.totp.begin", who->email);
    enum cf_rc rc = cf_mfa_totp_begin(cf_req_core(req), who, &enrolment, err);
    if (rc == CF_OK)
        rc = cf_render_reply(json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i}", "secret",
                                       enrolment.secret, "otpauthUri", enrolment.otpauth_uri,
                                       "issuer", "Coffer", "accountName", who->email, "algorithm",
                                       "SHA1", "digits", CF_TOTP_DIGITS, "period", CF_TOTP_STEP_S),
                             out, err);
    sodium_memzero(&enrolment, sizeof(enrolment));
    return rc;
}

static enum cf_rc code_body(struct cf_req *req, bool required, const char **code,
                            struct cf_err *err)
{
    json_t *body = NULL;
    *code = NULL;
    enum cf_rc rc = cf_req_json(req, required, &body, err);
    if (rc == CF_OK && body)
        rc = cf_json_string(body, "code", required, code, err);
    return rc;
}

/* POST /api/v1/users/me/mfa/totp/verify {code} -> {mfa, recoveryCodes}: enables TOTP. */
static enum cf_rc totp_verify(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const struct cf_principal *who = cf_req_principal(req);
    struct cf_recovery_codes codes;
    const char *code = NULL;
    memset(&codes, 0, sizeof(codes));
    audit_mfa(req, "users.mfa.enable", who->email);
    enum cf_rc rc = code_body(req, true, &code, err);
    if (rc == CF_OK)
        rc = cf_mfa_totp_confirm(cf_req_core(req), who, code, &codes, err);
    if (rc == CF_OK)
        rc = reply_status(req, who->id, &codes, out, err);
    sodium_memzero(&codes, sizeof(codes));
    return rc;
}

/* POST /api/v1/users/me/mfa/recovery-codes {code} -> {mfa, recoveryCodes}: fresh codes. */
static enum cf_rc recovery_codes(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const struct cf_principal *who = cf_req_principal(req);
    struct cf_recovery_codes codes;
    const char *code = NULL;
    memset(&codes, 0, sizeof(codes));
    audit_mfa(req, "users.mfa.recovery-codes", who->email);
    enum cf_rc rc = code_body(req, true, &code, err);
    if (rc == CF_OK)
        rc = cf_mfa_recovery_regenerate(cf_req_core(req), who, code, &codes, err);
    if (rc == CF_OK)
        rc = reply_status(req, who->id, &codes, out, err);
    sodium_memzero(&codes, sizeof(codes));
    return rc;
}

/* GET /api/v1/users/{user}/mfa -> {mfa} */
static enum cf_rc mfa_status(struct cf_req *req, json_t **out, struct cf_err *err)
{
    return reply_status(req, mfa_user_ref(req), NULL, out, err);
}

/* POST /api/v1/users/{user}/mfa/disable {code?} -> {mfa}: the user itself with a code, or an
 * administrator resetting another user. */
static enum cf_rc mfa_disable(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_user target = {0};
    const char *code = NULL;
    enum cf_rc rc = code_body(req, false, &code, err);
    if (rc == CF_OK)
        rc = cf_mfa_disable(cf_req_core(req), cf_req_principal(req), mfa_user_ref(req), code,
                            &target, err);
    audit_mfa(req, "users.mfa.disable", target.email[0] ? target.email : mfa_user_ref(req));
    if (rc == CF_OK)
        rc = reply_status(req, target.id, NULL, out, err);
    return rc;
}

const struct cf_route cf_routes_mfa[] = {
    {"POST", "/api/v1/users/me/mfa/totp", totp_begin, false},
    {"POST", "/api/v1/users/me/mfa/totp/verify", totp_verify, false},
    {"POST", "/api/v1/users/me/mfa/recovery-codes", recovery_codes, false},
    {"GET", "/api/v1/users/:userId/mfa", mfa_status, false},
    {"POST", "/api/v1/users/:userId/mfa/disable", mfa_disable, false},
    {NULL, NULL, NULL, false},
};
