/* Single sign-on in the domain (docs/users.md "Single sign-on"): beginning a login at the
 * configured OpenID Connect provider, turning its answer into a verified identity (auth/oidc.h),
 * and the one place where that identity becomes a Coffer user with a session (cf_sso_finish). */
#ifndef CF_CORE_SSO_H
#define CF_CORE_SSO_H

#include "auth/oidc.h"
#include "core/core.h"
#include "core/users.h"
#include "store/group_sync.h"
#include "util/err.h"

/* Begins a login for a browser at source_ip that returns to return_path (NULL: "/"): *authorize_url
 * (malloc'd, the caller frees it) is where to send the browser. CF_ENOTFOUND when single sign-on is
 * not configured; otherwise as cf_oidc_login_begin. Thread-safe. */
enum cf_rc cf_sso_begin(struct cf_core *core, const char *return_path, const char *source_ip,
                        char **authorize_url, struct cf_err *err);

/* Checks the provider's answer at the callback and verifies the identity it vouches for (as
 * cf_oidc_login_finish; CF_ENOTFOUND when single sign-on is not configured). When Entra ID left
 * the groups out (overage), they are read from Microsoft Graph with the application's own
 * credentials (CF_EUNAVAIL naming why when Graph cannot answer). Then --oidc-group-role decides
 * id->org_role (CF_EFORBIDDEN when --oidc-require-group refuses the user). On CF_OK release *id
 * with cf_oidc_identity_release. Thread-safe. */
enum cf_rc cf_sso_verify(struct cf_core *core, const struct cf_oidc_callback *cb,
                         struct cf_oidc_identity *id, struct cf_err *err);

/* What a sign-in changed of the user besides its last sign-in: the org role (before and after;
 * equal when unchanged) and its groups. */
struct cf_sso_changes {
    char role_before[16];
    char role_after[16];
    struct cf_group_sync_result groups;
};

/* Makes the verified identity id a user: finds the user by issuer and subject or provisions it
 * just in time as a member (cf_users_sso_upsert), gives it id->org_role when one was mapped (the
 * last active owner stays an owner: a warning is logged instead), and, when the provider named
 * the user's groups, syncs its membership of groups with an external id (store/group_sync.h);
 * *changes says what changed (may be NULL). On CF_OK *user is the user; CF_EUNAUTH for a disabled
 * user, CF_EEXIST when the e-mail belongs to another account. Thread-safe. */
enum cf_rc cf_sso_provision(struct cf_core *core, const struct cf_oidc_identity *id,
                            struct cf_user *user, struct cf_sso_changes *changes,
                            struct cf_err *err);

/* cf_sso_provision, then opens a browser session for the user from source_ip/user_agent
 * (cf_users_session_open): *grant the session (the caller wipes it). Thread-safe. */
enum cf_rc cf_sso_finish(struct cf_core *core, const struct cf_oidc_identity *id,
                         const char *source_ip, const char *user_agent, struct cf_user *user,
                         struct cf_session_grant *grant, struct cf_sso_changes *changes,
                         struct cf_err *err);

/* ---- `coffer login --sso` (auth/oidc.h "sign-in for the CLI") ---- */

#define CF_SSO_CLI_TOKEN_TTL_S (30LL * 24 * 3600) /* its token's lifetime when none is asked */

/* Begins a CLI sign-in for the loopback port and challenge (cf_oidc_cli_login_begin). */
enum cf_rc cf_sso_cli_begin(struct cf_core *core, const char *port, const char *challenge,
                            const char *source_ip, char **authorize_url, struct cf_err *err);

/* Whether the verified identity id finishes a CLI sign-in rather than a browser's. */
bool cf_sso_is_cli(const struct cf_oidc_identity *id);

/* Finishes a CLI sign-in at the callback: cf_sso_provision, then a one-time code for the CLI.
 * *redirect (malloc'd, the caller frees it) is http://127.0.0.1:PORT/callback?code=CODE, where
 * the browser goes next. Errors as cf_sso_provision's, CF_ERATELIMIT. Thread-safe. */
enum cf_rc cf_sso_cli_finish(struct cf_core *core, const struct cf_oidc_identity *id,
                             const char *source_ip, struct cf_user *user,
                             struct cf_sso_changes *changes, char **redirect, struct cf_err *err);

/* Redeems a CLI sign-in's code with its verifier (cf_oidc_cli_code_redeem): *user the user it was
 * made for, who must still be active (CF_EUNAUTH naming it otherwise); the caller then gives it its
 * personal access token. CF_ENOTFOUND when single sign-on is not configured. Thread-safe. */
enum cf_rc cf_sso_cli_redeem(struct cf_core *core, const char *code, const char *verifier,
                             struct cf_user *user, struct cf_err *err);

#endif
