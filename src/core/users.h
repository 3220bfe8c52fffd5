/* People: the users of the server's one organisation, their local passwords, browser sessions and
 * personal access tokens, and just-in-time provisioning for single sign-on. A user has an org role
 * (owner, admin, member): owners and admins administer the whole server as the admin token does
 * (cf_principal_is_admin), audited as themselves; members get project memberships exactly as
 * machine identities do (core/identities.h, cf_member_set with CF_MEMBER_USER), so cf_authz_check
 * decides for both.
 *
 * Managing users is server administration (cf_authz_admin, "manage users"); only an owner (or the
 * admin token) may make or unmake owners or touch an owner's account, and the last active owner
 * cannot be demoted, disabled or deleted. A disabled or deleted user's sessions and tokens stop
 * working at once: every request reads the user's status (cf_users_authenticate_*).
 *
 * Outputs are filled by the callee (zeroed on failure); lists are released with their store.h
 * release functions. Credentials written to caller buffers are wiped by the caller. Thread-safe. */
#ifndef CF_CORE_USERS_H
#define CF_CORE_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "core/mfa.h"

#define CF_PAT_PREFIX "coffer_pat_"
/* "coffer_pat_" + id + "_" + 43 base64url characters, with room to spare and the NUL */
#define CF_PAT_MAX 128
#define CF_PAT_TTL_MAX_S (366LL * 24 * 3600) /* a token lives at most a year */

#define CF_SESSION_COOKIE "coffer_session"
/* The cookie that carries a redirect-opened session's CSRF token to the page (api/http.h). */
#define CF_CSRF_COOKIE "coffer_csrf"
/* "<id>.<secret>" with the NUL */
#define CF_SESSION_VALUE_MAX 96
#define CF_CSRF_TOKEN_MAX 128                          /* CF_TOKEN_MAX of crypto/token.h */
#define CF_SESSION_IDLE_DEFAULT_S (60LL * 60)          /* an hour without a request */
#define CF_SESSION_ABSOLUTE_DEFAULT_S (12LL * 60 * 60) /* twelve hours after signing in */

/* The user named by ref: its id, or its email (any case). CF_ENOTFOUND "User 'ref' not found";
 * CF_EVALIDATION when ref is empty. No authorization: for core's own lookups. */
enum cf_rc cf_users_find(struct cf_core *core, const char *ref, struct cf_user *out,
                         struct cf_err *err);

/* Creates a user: email (required, a plausible address, stored lower-cased; CF_EEXIST when taken),
 * name ("" allowed), org_role (NULL: "member"), password (NULL: none, the user then signs in only
 * through SSO until one is set; else the length rules of crypto/password.h). */
enum cf_rc cf_users_create(struct cf_core *core, const struct cf_principal *who, const char *email,
                           const char *name, const char *org_role, const char *password,
                           size_t password_len, struct cf_user *out, struct cf_err *err);
enum cf_rc cf_users_list(struct cf_core *core, const struct cf_principal *who,
                         struct cf_user_list *out, struct cf_err *err);
/* A user; a user may always read itself. */
enum cf_rc cf_users_get(struct cf_core *core, const struct cf_principal *who, const char *ref,
                        struct cf_user *out, struct cf_err *err);
/* Changes what is not NULL: name, org_role, status ("active", "disabled"). */
enum cf_rc cf_users_update(struct cf_core *core, const struct cf_principal *who, const char *ref,
                           const char *name, const char *org_role, const char *status,
                           struct cf_user *out, struct cf_err *err);
/* Deletes the user with its memberships, sessions and tokens; out is the user as it was. */
enum cf_rc cf_users_delete(struct cf_core *core, const struct cf_principal *who, const char *ref,
                           struct cf_user *out, struct cf_err *err);
/* Sets ref's password. A user changing its own password gives the current one (current NULL is
 * refused with CF_EUNAUTH when it has one); an administrator setting another's password does not.
 */
enum cf_rc cf_users_set_password(struct cf_core *core, const struct cf_principal *who,
                                 const char *ref, const char *current, size_t current_len,
                                 const char *password, size_t password_len, struct cf_err *err);

/* Just-in-time provisioning for single sign-on: the user with (issuer, subject), created on first
 * login as an active member with email (lower-cased) and name; an existing one gets email and name
 * refreshed. CF_EUNAUTH when that user is disabled; CF_EEXIST when email belongs to another user
 * (a local account is never taken over by an SSO login). No caller: the identity provider vouched
 * for the user. */
enum cf_rc cf_users_sso_upsert(struct cf_core *core, const char *issuer, const char *subject,
                               const char *email, const char *name, struct cf_user *out,
                               struct cf_err *err);

/* A session just opened: the cookie value "<id>.<secret>" and the CSRF token, each shown once
 * (the caller wipes them), and the session's record. */
struct cf_session_grant {
    char cookie[CF_SESSION_VALUE_MAX];
    char csrf_token[CF_CSRF_TOKEN_MAX];
    struct cf_user_session session;
};

/* Opens a browser session for the active user user_id (used after a password login and by the
 * SSO callback), recording source_ip and user_agent (either may be NULL) and the user's last
 * login. CF_EUNAUTH when the user is disabled. */
enum cf_rc cf_users_session_open(struct cf_core *core, const char *user_id, const char *source_ip,
                                 const char *user_agent, struct cf_session_grant *out,
                                 struct cf_err *err);

/* Local login: email and password (throttled per source address and per (address, account) with
 * the core's login throttles, never per account alone, so nobody can lock a user out from
 * elsewhere); the same CF_EUNAUTH "invalid email or password" after the same work for an unknown
 * email, a user without a password and a wrong password; a disabled user is refused only once the
 * password is right. A user with two-factor sign-in (core/mfa.h) then gets CF_EUNAUTH with
 * challenge->ticket set (else it is left ""): the sign-in goes on with cf_users_login_mfa. On
 * success opens a session as cf_users_session_open does, unless out is NULL (a login for a
 * personal access token, `coffer login --user`): then only the last login is recorded. */
enum cf_rc cf_users_login(struct cf_core *core, const char *email, const char *password,
                          size_t password_len, const char *client_ip, const char *user_agent,
                          struct cf_user *user, struct cf_session_grant *out,
                          struct cf_mfa_challenge *challenge, struct cf_err *err);

/* The second step of a sign-in: the ticket of cf_users_login's challenge and a code (a TOTP code
 * or a recovery code), throttled as the password is (per address, and per (address, account)
 * once the ticket names the account); a wrong code leaves the ticket usable until it expires, a
 * good one uses it up. Then as cf_users_login: a session into out, or (out NULL) only the last
 * login recorded. user receives the account once the ticket is known. */
enum cf_rc cf_users_login_mfa(struct cf_core *core, const char *ticket, const char *code,
                              const char *client_ip, const char *user_agent, struct cf_user *user,
                              struct cf_session_grant *out, bool *used_recovery,
                              struct cf_err *err);

/* Fills who as user (kind user, no token or session): for acting as a user just signed in. */
void cf_users_principal(const struct cf_user *user, struct cf_principal *who);

/* Whether text has the shape of a personal access token. */
bool cf_users_is_pat(const char *text);

/* Authenticates a personal access token: CF_OK with who filled (kind user), CF_EUNAUTH naming
 * the cause (unknown, revoked, expired at T, user disabled) otherwise. */
enum cf_rc cf_users_authenticate_pat(struct cf_core *core, const char *token,
                                     struct cf_principal *who, struct cf_err *err);

/* Authenticates a session cookie's value. unsafe: the request's method changes state, so csrf
 * (the X-Coffer... header's value, may be NULL) must match the session's CSRF token (CF_EFORBIDDEN
 * otherwise). CF_EUNAUTH naming the cause (unknown, idle for too long, expired, user disabled).
 * Notes the request as the session's last activity. */
enum cf_rc cf_users_authenticate_session(struct cf_core *core, const char *cookie, bool unsafe,
                                         const char *csrf, struct cf_principal *who,
                                         struct cf_err *err);

/* The caller's own sessions (who must be a user). */
enum cf_rc cf_users_sessions_list(struct cf_core *core, const struct cf_principal *who,
                                  struct cf_user_session_list *out, struct cf_err *err);
/* Ends one of the caller's sessions (its current one: logout). */
enum cf_rc cf_users_session_revoke(struct cf_core *core, const struct cf_principal *who,
                                   const char *session_id, struct cf_err *err);
/* Ends every session of the caller but the current one; *revoked receives how many. */
enum cf_rc cf_users_sessions_revoke_others(struct cf_core *core, const struct cf_principal *who,
                                           int64_t *revoked, struct cf_err *err);

/* Personal access tokens of the caller (a user). create: name required (at most CF_NAME_MAX),
 * ttl_s required, 1 s to CF_PAT_TTL_MAX_S; token receives the token (CF_PAT_MAX bytes), shown
 * once. */
enum cf_rc cf_users_pat_create(struct cf_core *core, const struct cf_principal *who,
                               const char *name, int64_t ttl_s, char token[CF_PAT_MAX],
                               struct cf_pat *out, struct cf_err *err);
enum cf_rc cf_users_pat_list(struct cf_core *core, const struct cf_principal *who,
                             struct cf_pat_list *out, struct cf_err *err);
enum cf_rc cf_users_pat_revoke(struct cf_core *core, const struct cf_principal *who,
                               const char *pat_id, struct cf_err *err);

#endif
