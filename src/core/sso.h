/* Single sign-on in the domain (docs/users.md "Single sign-on"): beginning a login at the
 * configured OpenID Connect provider, turning its answer into a verified identity (auth/oidc.h),
 * and the one place where that identity becomes a Coffer user with a session (cf_sso_finish). */
#ifndef CF_CORE_SSO_H
#define CF_CORE_SSO_H

#include "auth/oidc.h"
#include "core/core.h"
#include "core/users.h"
#include "util/err.h"

/* Begins a login for a browser at source_ip that returns to return_path (NULL: "/"): *authorize_url
 * (malloc'd, the caller frees it) is where to send the browser. CF_ENOTFOUND when single sign-on is
 * not configured; otherwise as cf_oidc_login_begin. Thread-safe. */
enum cf_rc cf_sso_begin(struct cf_core *core, const char *return_path, const char *source_ip,
                        char **authorize_url, struct cf_err *err);

/* Checks the provider's answer at the callback and verifies the identity it vouches for (as
 * cf_oidc_login_finish; CF_ENOTFOUND when single sign-on is not configured). On CF_OK release *id
 * with cf_oidc_identity_release. Thread-safe. */
enum cf_rc cf_sso_verify(struct cf_core *core, const struct cf_oidc_callback *cb,
                         struct cf_oidc_identity *id, struct cf_err *err);

/* Makes the verified identity id a signed-in user: finds the user by issuer and subject or
 * provisions it just in time as a member (cf_users_sso_upsert), then opens a browser session for
 * it from source_ip/user_agent (cf_users_session_open). On CF_OK *user is the user and *grant the
 * session (the caller wipes it); CF_EUNAUTH for a disabled user, CF_EEXIST when the e-mail belongs
 * to another account. Thread-safe. */
enum cf_rc cf_sso_finish(struct cf_core *core, const struct cf_oidc_identity *id,
                         const char *source_ip, const char *user_agent, struct cf_user *user,
                         struct cf_session_grant *grant, struct cf_err *err);

#endif
