/* Authentication: turns the Authorization header (or, without one, the session cookie) into a
 * principal. A bearer token starting "coffer_pat_" is a user's personal access token, and a session
 * cookie a user's browser session (core/users.h: both checked against the store, user status
 * included, on every request). A JWT-shaped bearer token is a
 * machine identity's access token (auth/token.h: signature, then the stored record); anything else,
 * or a JWT-shaped token this server did not issue, is checked against the admin token's stored hash
 * (auth/admin.h: read on every check, so a rotation takes effect at once). Credentials are compared
 * by hash in constant time and never echoed. */
#include <stdatomic.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "api/internal.h"
#include "auth/admin.h"
#include "auth/token.h"
#include "core/users.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define BREAK_GLASS_LOG_EVERY_MS 60000

static enum cf_rc identity_principal(struct cf_core *core, const char *token, const char *client_ip,
                                     struct cf_principal *out, struct cf_err *err)
{
    struct cf_access_token record;
    /* The token's record is all that decides: deleting an identity deletes its tokens. Its name is
     * looked up only when a refusal needs it (core/authz.c), not on every request. */
    enum cf_rc rc = cf_token_check(core->store, core->keyring, core->verified_tokens, token,
                                   client_ip, cf_now_ms(), true, &record, err);
    if (rc != CF_OK)
        return rc;
    out->kind = CF_PRINCIPAL_IDENTITY;
    memcpy(out->id, record.identity_id, sizeof(out->id));
    memcpy(out->token_id, record.id, sizeof(out->token_id));
    return CF_OK;
}

/* Whether token is the admin token: CF_OK with the admin principal, CF_EUNAUTH with refusal (the
 * message given) when it is not, another code when the store cannot say. */
static enum cf_rc admin_principal(struct cf_core *core, const char *token, const char *refusal,
                                  struct cf_principal *out, struct cf_err *err)
{
    bool admin = false;
    enum cf_rc rc =
        cf_admin_token_check(core->admin, core->store, token, strlen(token), &admin, NULL, err);
    if (rc == CF_ENOTFOUND)
        rc = CF_OK; /* a store without an admin token: no token is the admin's */
    if (rc != CF_OK)
        return rc;
    if (!admin)
        return cf_err_set(err, CF_EUNAUTH, "%s", refusal);
    bool disabled = false;
    rc = cf_admin_token_disabled(core->store, &disabled, err);
    if (rc != CF_OK)
        return rc;
    if (disabled)
        return cf_err_set(err, CF_EUNAUTH,
                          "the admin token is disabled (break-glass): an owner re-enables it "
                          "(coffer operator admin-token enable on the server host, or POST "
                          "/api/v1/admin-token/enable)");
    /* every use is a break-glass use, marked in its audit record; the log says so too, at most
     * once a minute with the count since, so that a busy admin token does not flood it */
    static _Atomic int64_t uses, logged_at;
    int64_t now = cf_now_ms(), last = atomic_load(&logged_at), n = atomic_fetch_add(&uses, 1) + 1;
    if (now - last >= BREAK_GLASS_LOG_EVERY_MS &&
        atomic_compare_exchange_strong(&logged_at, &last, now)) {
        atomic_fetch_sub(&uses, n);
        cf_log_event(CF_LOG_WARN, "break_glass", CF_LOG_WORD("who", "admin"),
                     CF_LOG_INT("uses", n));
    }
    out->kind = CF_PRINCIPAL_ADMIN;
    memcpy(out->name, "admin", sizeof("admin"));
    return CF_OK;
}

enum cf_rc cf_authn(struct cf_core *core, const char *authorization, const char *cookie,
                    bool unsafe, const char *csrf, const char *client_ip, struct cf_principal *out,
                    struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    if ((!authorization || !*authorization) && cookie && *cookie)
        return cf_users_authenticate_session(core, cookie, unsafe, csrf, out, err);
    if (!authorization || !*authorization)
        return cf_err_set(err, CF_EUNAUTH,
                          "missing credentials: send the header 'Authorization: Bearer <token>'");
    if (strncasecmp(authorization, "Bearer ", 7) != 0)
        return cf_err_set(err, CF_EUNAUTH,
                          "unsupported Authorization scheme: expected 'Bearer <token>'");
    const char *token = authorization + 7;
    while (*token == ' ')
        token++;
    if (!*token)
        return cf_err_set(err, CF_EUNAUTH, "empty bearer token");

    if (cf_users_is_pat(token))
        return cf_users_authenticate_pat(core, token, out, err);
    /* Access tokens first: they are the hot path, and their check reads one row. A JWT-shaped
     * token that is not one (an operator's bootstrap token may have two dots) may still be the
     * admin's; the refusal then is the access token's. */
    if (!cf_token_is_access_token(token))
        return admin_principal(core, token, "invalid token: it is not a token this server issued",
                               out, err);
    enum cf_rc rc = identity_principal(core, token, client_ip, out, err);
    if (rc != CF_EUNAUTH)
        return rc;
    char refusal[sizeof(err->msg)];
    memcpy(refusal, err->msg, sizeof(refusal));
    memset(out, 0, sizeof(*out));
    return admin_principal(core, token, refusal, out, err);
}
