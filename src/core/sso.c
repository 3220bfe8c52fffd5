/* Single sign-on in the domain (core/sso.h). */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/sso.h"
#include "provider/graph.h"
#include "store/group_sync.h"
#include "util/buf.h"
#include "util/str.h"
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

/* The groups of id's user from Microsoft Graph, replacing id's (empty) list: Entra ID left them
 * out of the token because there are too many. */
static enum cf_rc overage_groups(struct cf_core *core, struct cf_oidc_identity *id,
                                 struct cf_err *err)
{
    json_t *creds = NULL;
    const char *method = NULL;
    char **groups = NULL;
    size_t n = 0;
    enum cf_rc rc = cf_oidc_graph_credentials(core->oidc, &creds, &method, err);
    if (rc != CF_OK)
        return rc;
    struct cf_provider_conn conn = {
        .app = "entra-sign-in", .method = method, .credentials = creds, .entra = core->entra};
    rc = cf_graph_member_groups(&conn, id->object_id, CF_OIDC_GRAPH_GROUPS_MAX, &groups, &n, err);
    if (rc == CF_OK) {
        cf_oidc_identity_set_groups(id, groups, n);
    } else if (rc != CF_ENOMEM) {
        char why[CF_ERR_MSG_MAX];
        cf_strlcpy(why, err->msg, sizeof(why));
        rc = cf_err_set(err, CF_EUNAVAIL,
                        "'%.100s' is in too many groups for the ID token and Microsoft Graph could "
                        "not list them: %s",
                        id->email, why);
    }
    const char *key;
    json_t *value;
    json_object_foreach(creds, key, value) /* the client secret or the certificate's key */
    {
        sodium_memzero((char *)json_string_value(value), json_string_length(value));
    }
    json_decref(creds);
    return rc;
}

enum cf_rc cf_sso_verify(struct cf_core *core, const struct cf_oidc_callback *cb,
                         struct cf_oidc_identity *id, struct cf_err *err)
{
    memset(id, 0, sizeof(*id));
    if (!core->oidc)
        return not_configured(err);
    enum cf_rc rc = cf_oidc_login_finish(core->oidc, core->store, core->keyring, core->jwks, cb,
                                         cf_now_ms(), id, err);
    if (rc == CF_OK && id->groups_overage && cf_oidc_is_entra(core->oidc))
        rc = overage_groups(core, id, err);
    if (rc == CF_OK)
        rc = cf_oidc_apply_group_roles(core->oidc, id, err);
    if (rc != CF_OK) {
        cf_oidc_identity_release(id);
        memset(id, 0, sizeof(*id));
    }
    return rc;
}

/* Gives user the org role role (mapped from its groups), unless that would leave no active owner.
 */
static enum cf_rc apply_role(struct cf_core *core, struct cf_user *user, const char *role,
                             struct cf_err *err)
{
    int64_t owners = 0;
    enum cf_rc rc;
    if (strcmp(user->org_role, role) == 0)
        return CF_OK;
    if (strcmp(user->org_role, "owner") == 0) {
        rc = cf_store_user_count_owners(core->store, &owners, err);
        if (rc != CF_OK)
            return rc;
        if (owners <= 1) {
            cf_log_event(CF_LOG_WARN, "sso_role_kept", CF_LOG_TEXT("user", user->email),
                         CF_LOG_TEXT("mapped_role", role),
                         CF_LOG_TEXT("why", "the last active owner stays an owner"));
            return CF_OK;
        }
    }
    cf_strlcpy(user->org_role, role, sizeof(user->org_role));
    user->updated_at = cf_now_ms();
    return cf_store_user_update(core->store, user, err);
}

enum cf_rc cf_sso_provision(struct cf_core *core, const struct cf_oidc_identity *id,
                            struct cf_user *user, struct cf_sso_changes *changes,
                            struct cf_err *err)
{
    struct cf_buf groups;
    struct cf_sso_changes local;
    if (!changes)
        changes = &local;
    memset(changes, 0, sizeof(*changes));
    /* Who signed in, for the operator: group ids and names are not secret, tokens never get here.
     */
    cf_buf_init(&groups, 4096);
    for (size_t i = 0; i < id->n_groups; i++)
        if (cf_buf_printf(&groups, "%s%s", i ? "," : "", id->groups[i]) != CF_OK)
            break;
    cf_log_event(CF_LOG_INFO, "sso_identity", CF_LOG_TEXT("issuer", id->issuer),
                 CF_LOG_TEXT("subject", id->subject), CF_LOG_TEXT("email", id->email),
                 CF_LOG_TEXT("name", id->name), CF_LOG_TEXT("tenant", id->tenant_id),
                 CF_LOG_TEXT("object", id->object_id),
                 CF_LOG_TEXT("groups", groups.data ? groups.data : ""),
                 CF_LOG_INT("groups_overage", id->groups_overage),
                 CF_LOG_TEXT("org_role", id->org_role), CF_LOG_TEXT("return", id->return_path));
    cf_buf_release(&groups);
    enum cf_rc rc =
        cf_users_sso_upsert(core, id->issuer, id->subject, id->email, id->name, user, err);
    if (rc != CF_OK)
        return rc;
    cf_strlcpy(changes->role_before, user->org_role, sizeof(changes->role_before));
    if (id->org_role[0])
        rc = apply_role(core, user, id->org_role, err);
    cf_strlcpy(changes->role_after, user->org_role, sizeof(changes->role_after));
    if (rc == CF_OK && id->groups_claimed)
        rc = cf_store_user_groups_sync(core->store, user->id, id->groups, id->n_groups, cf_now_ms(),
                                       &changes->groups, err);
    if (rc == CF_OK && (changes->groups.joined || changes->groups.left ||
                        strcmp(changes->role_before, changes->role_after) != 0))
        cf_log_event(CF_LOG_INFO, "sso_user_changed", CF_LOG_TEXT("user", user->email),
                     CF_LOG_TEXT("role_before", changes->role_before),
                     CF_LOG_TEXT("role_after", changes->role_after),
                     CF_LOG_TEXT("joined", changes->groups.joined_names),
                     CF_LOG_TEXT("left", changes->groups.left_names));
    return rc;
}

enum cf_rc cf_sso_finish(struct cf_core *core, const struct cf_oidc_identity *id,
                         const char *source_ip, const char *user_agent, struct cf_user *user,
                         struct cf_session_grant *grant, struct cf_sso_changes *changes,
                         struct cf_err *err)
{
    enum cf_rc rc = cf_sso_provision(core, id, user, changes, err);
    if (rc == CF_OK)
        rc = cf_users_session_open(core, user->id, source_ip, user_agent, grant, err);
    return rc;
}

enum cf_rc cf_sso_cli_begin(struct cf_core *core, const char *port, const char *challenge,
                            const char *source_ip, char **authorize_url, struct cf_err *err)
{
    *authorize_url = NULL;
    if (!core->oidc)
        return not_configured(err);
    return cf_oidc_cli_login_begin(core->oidc, core->store, core->keyring, port, challenge,
                                   source_ip, cf_now_ms(), authorize_url, err);
}

bool cf_sso_is_cli(const struct cf_oidc_identity *id)
{
    int port;
    char challenge[CF_OIDC_CODE_SIZE];
    return cf_oidc_cli_return(id->return_path, &port, challenge);
}

enum cf_rc cf_sso_cli_finish(struct cf_core *core, const struct cf_oidc_identity *id,
                             const char *source_ip, struct cf_user *user,
                             struct cf_sso_changes *changes, char **redirect, struct cf_err *err)
{
    char challenge[CF_OIDC_CODE_SIZE], code[CF_OIDC_CODE_SIZE] = "";
    char url[128];
    int port = 0;
    *redirect = NULL;
    if (!cf_oidc_cli_return(id->return_path, &port, challenge))
        CF_BUG("cf_sso_cli_finish of a browser sign-in");
    enum cf_rc rc = cf_sso_provision(core, id, user, changes, err);
    if (rc == CF_OK)
        rc = cf_oidc_cli_code_issue(core->store, core->keyring, user->id, challenge, source_ip,
                                    cf_now_ms(), code, err);
    if (rc == CF_OK) {
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/callback?code=%s", port, code);
        *redirect = strdup(url);
        if (!*redirect)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    sodium_memzero(code, sizeof(code));
    sodium_memzero(url, sizeof(url));
    return rc;
}

enum cf_rc cf_sso_cli_redeem(struct cf_core *core, const char *code, const char *verifier,
                             struct cf_user *user, struct cf_err *err)
{
    char user_id[CF_OIDC_USER_ID_SIZE];
    memset(user, 0, sizeof(*user));
    if (!core->oidc)
        return not_configured(err);
    enum cf_rc rc = cf_oidc_cli_code_redeem(core->store, core->keyring, code, verifier, cf_now_ms(),
                                            user_id, err);
    if (rc == CF_OK)
        rc = cf_users_find(core, user_id, user, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_EUNAUTH, "the user who signed in no longer exists");
    if (rc == CF_OK && strcmp(user->status, "active") != 0)
        rc = cf_err_set(err, CF_EUNAUTH, "user '%s' is disabled", user->email);
    sodium_memzero(user->password_hash, sizeof(user->password_hash));
    return rc;
}
