/* Single sign-on in the domain (core/sso.h). */
#include <stdio.h>
#include <string.h>

#include "core/sso.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/time.h"
#include "util/banned.h"

static enum cf_rc not_configured(struct cf_err *err)
{
    return cf_err_set(err, CF_ENOTFOUND,
                      "single sign-on is not configured on this server (see --oidc-issuer and "
                      "--oidc-entra-tenant)");
}

enum cf_rc cf_sso_begin(struct cf_core *core, const char *return_path, const char *source_ip,
                        char **authorize_url, struct cf_err *err)
{
    *authorize_url = NULL;
    if (!core->oidc)
        return not_configured(err);
    return cf_oidc_login_begin(core->oidc, core->store, core->keyring, return_path, source_ip,
                               cf_now_ms(), authorize_url, err);
}

enum cf_rc cf_sso_verify(struct cf_core *core, const struct cf_oidc_callback *cb,
                         struct cf_oidc_identity *id, struct cf_err *err)
{
    memset(id, 0, sizeof(*id));
    if (!core->oidc)
        return not_configured(err);
    return cf_oidc_login_finish(core->oidc, core->store, core->keyring, core->jwks, cb, cf_now_ms(),
                                id, err);
}

enum cf_rc cf_sso_finish(struct cf_core *core, const struct cf_oidc_identity *id,
                         const char *source_ip, const char *user_agent, struct cf_user *user,
                         struct cf_session_grant *grant, struct cf_err *err)
{
    struct cf_buf groups;
    /* Who signed in, for the operator: group ids and names are not secret, tokens never get here.
     * (The groups are not mapped to roles yet: docs/users.md.) */
    cf_buf_init(&groups, 4096);
    for (size_t i = 0; i < id->n_groups; i++)
        if (cf_buf_printf(&groups, "%s%s", i ? "," : "", id->groups[i]) != CF_OK)
            break;
    cf_log_event(
        CF_LOG_INFO, "sso_identity", CF_LOG_TEXT("issuer", id->issuer),
        CF_LOG_TEXT("subject", id->subject), CF_LOG_TEXT("email", id->email),
        CF_LOG_TEXT("name", id->name), CF_LOG_TEXT("tenant", id->tenant_id),
        CF_LOG_TEXT("object", id->object_id), CF_LOG_TEXT("groups", groups.data ? groups.data : ""),
        CF_LOG_INT("groups_overage", id->groups_overage), CF_LOG_TEXT("return", id->return_path));
    cf_buf_release(&groups);
    enum cf_rc rc =
        cf_users_sso_upsert(core, id->issuer, id->subject, id->email, id->name, user, err);
    if (rc == CF_OK)
        rc = cf_users_session_open(core, user->id, source_ip, user_agent, grant, err);
    return rc;
}
