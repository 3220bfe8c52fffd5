/* People (users.h): users and their org roles, passwords, browser sessions, personal access tokens
 * and single sign-on provisioning, over the store. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "auth/throttle.h"
#include "core/users.h"
#include "crypto/password.h"
#include "crypto/token.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define WHAT "manage users"

static void user_principal(const struct cf_user *user, const char *token_id, const char *session_id,
                           struct cf_principal *who);

_Static_assert(CF_CSRF_TOKEN_MAX >= CF_TOKEN_MAX, "cf_token_new writes a CSRF token");

/* The user part of a failed-login throttle key: "user " and the email's BLAKE2b, so that the
 * throttle's table holds no address in the clear, as auth/login.c does for client ids. */
#define THROTTLE_KEY_MAX 160

static bool role_valid(const char *role)
{
    return strcmp(role, "owner") == 0 || strcmp(role, "admin") == 0 || strcmp(role, "member") == 0;
}

static bool is_owner(const struct cf_principal *who)
{
    return who->kind == CF_PRINCIPAL_ADMIN ||
           (who->kind == CF_PRINCIPAL_USER && strcmp(who->org_role, "owner") == 0);
}

/* Checks email (field "email") and writes it lower-cased into out. A plausible address: one '@'
 * with text on both sides, a dot in the domain, no blanks or control characters. */
static enum cf_rc email_normalise(const char *email, char out[CF_EMAIL_MAX + 1], struct cf_err *err)
{
    size_t len = email ? strlen(email) : 0;
    const char *at;

    if (len == 0)
        return cf_err_field(err, CF_EVALIDATION, "email", "email: required");
    if (len > CF_EMAIL_MAX)
        return cf_err_field(err, CF_EVALIDATION, "email", "email: at most %d characters",
                            CF_EMAIL_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)email[i];
        if (ch <= 0x20 || ch == 0x7f)
            return cf_err_field(err, CF_EVALIDATION, "email",
                                "email: must not contain blanks or control characters");
        out[i] = (char)tolower(ch);
    }
    out[len] = '\0';
    at = strchr(out, '@');
    if (!at || at == out || strchr(at + 1, '@') || !strchr(at + 1, '.') || at[1] == '.' ||
        out[len - 1] == '.')
        return cf_err_field(err, CF_EVALIDATION, "email", "email: '%.64s' is not an email address",
                            email);
    return CF_OK;
}

static enum cf_rc user_not_found(const char *ref, struct cf_err *err)
{
    return cf_err_set(err, CF_ENOTFOUND, "User '%.254s' not found", ref);
}

enum cf_rc cf_users_find(struct cf_core *core, const char *ref, struct cf_user *out,
                         struct cf_err *err)
{
    char email[CF_EMAIL_MAX + 1];
    struct cf_err ignored;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    if (!ref || !*ref)
        return cf_err_field(err, CF_EVALIDATION, "userId", "userId: required");
    if (cf_uuid_valid(ref))
        rc = cf_store_user_get(core->store, ref, out, err);
    else if (email_normalise(ref, email, &ignored) == CF_OK)
        rc = cf_store_user_get_by_email(core->store, email, out, err);
    else
        rc = CF_ENOTFOUND;
    if (rc == CF_ENOTFOUND)
        rc = user_not_found(ref, err);
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* Copies name (field "name", may be NULL: "") into out. */
static enum cf_rc name_field(const char *name, char out[CF_NAME_MAX + 1], struct cf_err *err)
{
    if (!name)
        name = "";
    if (!cf_utf8_valid(name, strlen(name)))
        return cf_err_field(err, CF_EINVAL, "name", "name: not valid UTF-8");
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return cf_err_field(err, CF_EVALIDATION, "name",
                                "name: must not contain control characters");
    }
    if (!cf_strlcpy(out, name, CF_NAME_MAX + 1))
        return cf_err_field(err, CF_EVALIDATION, "name", "name: at most %d characters",
                            CF_NAME_MAX);
    return CF_OK;
}

static enum cf_rc role_field(const char *role, struct cf_err *err)
{
    if (!role_valid(role))
        return cf_err_field(err, CF_EVALIDATION, "orgRole",
                            "orgRole: must be one of owner, admin, member");
    return CF_OK;
}

/* Hashes a new password after checking its rules (field "password"). */
static enum cf_rc password_field(const char *password, size_t len, char hash[CF_PASSWORD_HASH_SIZE],
                                 struct cf_err *err)
{
    enum cf_rc rc = cf_password_check_rules(password, len, "password", err);
    return rc == CF_OK ? cf_password_hash(password, len, hash, err) : rc;
}

enum cf_rc cf_users_create(struct cf_core *core, const struct cf_principal *who, const char *email,
                           const char *name, const char *org_role, const char *password,
                           size_t password_len, struct cf_user *out, struct cf_err *err)
{
    struct cf_user user = {0};
    char hash[CF_PASSWORD_HASH_SIZE] = "";
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    if (!org_role)
        org_role = "member";
    rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK)
        rc = email_normalise(email, user.email, err);
    if (rc == CF_OK)
        rc = name_field(name, user.name, err);
    if (rc == CF_OK)
        rc = role_field(org_role, err);
    if (rc == CF_OK && strcmp(org_role, "owner") == 0 && !is_owner(who))
        rc = cf_err_set(err, CF_EFORBIDDEN, "only an owner may make owners");
    if (rc == CF_OK && password)
        rc = password_field(password, password_len, hash, err);
    if (rc != CF_OK)
        goto out;
    cf_uuid_new(user.id);
    cf_strlcpy(user.org_role, org_role, sizeof(user.org_role));
    cf_strlcpy(user.status, "active", sizeof(user.status));
    cf_strlcpy(user.password_hash, hash, sizeof(user.password_hash));
    user.created_at = user.updated_at = cf_now_ms();
    rc = cf_store_user_create(core->store, &user, err);
    if (rc == CF_EEXIST)
        rc = cf_err_field(err, CF_EEXIST, "email", "User '%s' already exists", user.email);
    if (rc == CF_OK)
        *out = user;
out:
    sodium_memzero(hash, sizeof(hash));
    sodium_memzero(&user, sizeof(user));
    return rc;
}

enum cf_rc cf_users_list(struct cf_core *core, const struct cf_principal *who,
                         struct cf_user_list *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    return rc == CF_OK ? cf_store_user_list(core->store, out, err) : rc;
}

static bool is_self(const struct cf_principal *who, const struct cf_user *user)
{
    return who && who->kind == CF_PRINCIPAL_USER && strcmp(who->id, user->id) == 0;
}

enum cf_rc cf_users_get(struct cf_core *core, const struct cf_principal *who, const char *ref,
                        struct cf_user *out, struct cf_err *err)
{
    enum cf_rc rc = cf_users_find(core, ref, out, err);
    if (rc == CF_OK && !is_self(who, out) && !cf_principal_is_admin(who)) {
        memset(out, 0, sizeof(*out));
        rc = cf_authz_admin(who, WHAT, err);
    }
    return rc;
}

/* CF_ECONFLICT when user is the last active owner and would stop being one. */
static enum cf_rc keep_an_owner(struct cf_core *core, const struct cf_user *user,
                                const char *action, struct cf_err *err)
{
    int64_t owners = 0;
    if (strcmp(user->org_role, "owner") != 0 || strcmp(user->status, "active") != 0)
        return CF_OK;
    enum cf_rc rc = cf_store_user_count_owners(core->store, &owners, err);
    if (rc == CF_OK && owners <= 1)
        rc = cf_err_set(err, CF_ECONFLICT,
                        "user '%s' is the last active owner and cannot be %s: make another owner "
                        "first",
                        user->email, action);
    return rc;
}

/* The administration check for changing target: an administrator, and an owner when target is
 * (or is made) an owner. */
static enum cf_rc may_change(const struct cf_principal *who, const struct cf_user *target,
                             const char *new_role, struct cf_err *err)
{
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK && !is_owner(who) &&
        (strcmp(target->org_role, "owner") == 0 || (new_role && strcmp(new_role, "owner") == 0)))
        rc = cf_err_set(err, CF_EFORBIDDEN, "only an owner may change an owner or make owners");
    return rc;
}

enum cf_rc cf_users_update(struct cf_core *core, const struct cf_principal *who, const char *ref,
                           const char *name, const char *org_role, const char *status,
                           struct cf_user *out, struct cf_err *err)
{
    struct cf_user user;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK)
        rc = cf_users_find(core, ref, &user, err);
    if (rc == CF_OK && org_role)
        rc = role_field(org_role, err);
    if (rc == CF_OK && status && strcmp(status, "active") != 0 && strcmp(status, "disabled") != 0)
        rc = cf_err_field(err, CF_EVALIDATION, "status", "status: must be active or disabled");
    if (rc == CF_OK)
        rc = may_change(who, &user, org_role, err);
    if (rc == CF_OK && ((org_role && strcmp(org_role, "owner") != 0) ||
                        (status && strcmp(status, "disabled") == 0)))
        rc = keep_an_owner(core, &user,
                           status && strcmp(status, "disabled") == 0 ? "disabled" : "demoted", err);
    if (rc == CF_OK && name)
        rc = name_field(name, user.name, err);
    if (rc != CF_OK)
        goto out;
    if (org_role)
        cf_strlcpy(user.org_role, org_role, sizeof(user.org_role));
    if (status)
        cf_strlcpy(user.status, status, sizeof(user.status));
    rc = cf_store_user_update(core->store, &user, err);
    if (rc == CF_OK)
        rc = cf_store_user_get(core->store, user.id, out, err);
out:
    sodium_memzero(&user, sizeof(user));
    return rc;
}

enum cf_rc cf_users_delete(struct cf_core *core, const struct cf_principal *who, const char *ref,
                           struct cf_user *out, struct cf_err *err)
{
    struct cf_user user;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK)
        rc = cf_users_find(core, ref, &user, err);
    if (rc == CF_OK)
        rc = may_change(who, &user, NULL, err);
    if (rc == CF_OK)
        rc = keep_an_owner(core, &user, "deleted", err);
    if (rc == CF_OK)
        rc = cf_store_user_delete(core->store, user.id, err);
    if (rc == CF_OK) {
        *out = user;
        sodium_memzero(out->password_hash, sizeof(out->password_hash));
    }
    sodium_memzero(&user, sizeof(user));
    return rc;
}

enum cf_rc cf_users_set_password(struct cf_core *core, const struct cf_principal *who,
                                 const char *ref, const char *current, size_t current_len,
                                 const char *password, size_t password_len, struct cf_err *err)
{
    struct cf_user user;
    char hash[CF_PASSWORD_HASH_SIZE] = "";
    enum cf_rc rc;

    rc = cf_users_find(core, ref, &user, err);
    if (rc != CF_OK)
        return rc;
    if (is_self(who, &user)) {
        if (user.password_hash[0] &&
            (!current || !cf_password_verify(user.password_hash, current, current_len)))
            rc = cf_err_field(err, CF_EUNAUTH, "currentPassword",
                              "currentPassword: the current password is wrong or missing");
    } else {
        rc = may_change(who, &user, NULL, err);
    }
    if (rc == CF_OK)
        rc = password_field(password, password_len, hash, err);
    if (rc == CF_OK) {
        cf_strlcpy(user.password_hash, hash, sizeof(user.password_hash));
        rc = cf_store_user_update(core->store, &user, err);
    }
    sodium_memzero(hash, sizeof(hash));
    sodium_memzero(&user, sizeof(user));
    return rc;
}

/* Whether email is the address of a user a SCIM client provisioned that has not signed in through
 * single sign-on yet (user receives it then): the identity provider that provisioned it vouches for
 * the address, so its first sign-in links it. */
static bool scim_unlinked(struct cf_core *core, const char *email, struct cf_user *user)
{
    struct cf_scim_user scim;
    struct cf_err ignored;
    return cf_store_user_get_by_email(core->store, email, user, &ignored) == CF_OK &&
           !user->sso_subject[0] &&
           cf_store_scim_user_get(core->store, user->id, &scim, &ignored) == CF_OK;
}

enum cf_rc cf_users_sso_upsert(struct cf_core *core, const char *issuer, const char *subject,
                               const char *email, const char *name, struct cf_user *out,
                               struct cf_err *err)
{
    struct cf_user user = {0};
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    if (!issuer || !*issuer || strlen(issuer) > CF_SSO_TEXT_MAX)
        return cf_err_set(err, CF_EINVAL, "the identity provider's issuer is missing or too long");
    if (!subject || !*subject || strlen(subject) > CF_SSO_TEXT_MAX)
        return cf_err_set(err, CF_EINVAL, "the ID token's subject is missing or too long");
    rc = email_normalise(email, user.email, err);
    if (rc == CF_OK)
        rc = name_field(name, user.name, err);
    if (rc != CF_OK)
        return rc;
    char fresh_email[CF_EMAIL_MAX + 1], fresh_name[CF_NAME_MAX + 1];
    memcpy(fresh_email, user.email, sizeof(fresh_email));
    memcpy(fresh_name, user.name, sizeof(fresh_name));

    rc = cf_store_user_get_by_sso(core->store, issuer, subject, &user, err);
    if (rc == CF_OK) {
        if (strcmp(user.status, "active") != 0) {
            rc = cf_err_set(err, CF_EUNAUTH, "user '%s' is disabled", user.email);
            goto out;
        }
        if (strcmp(user.email, fresh_email) != 0 || strcmp(user.name, fresh_name) != 0) {
            memcpy(user.email, fresh_email, sizeof(user.email));
            memcpy(user.name, fresh_name, sizeof(user.name));
            rc = cf_store_user_update(core->store, &user, err);
        }
    } else if (rc == CF_ENOTFOUND && scim_unlinked(core, fresh_email, &user)) {
        /* provisioned by SCIM (core/scim.h) and never signed in: this is its first sign-in */
        if (strcmp(user.status, "active") != 0) {
            rc = cf_err_set(err, CF_EUNAUTH, "user '%s' is disabled", user.email);
            goto out;
        }
        cf_strlcpy(user.sso_issuer, issuer, sizeof(user.sso_issuer));
        cf_strlcpy(user.sso_subject, subject, sizeof(user.sso_subject));
        if (fresh_name[0])
            memcpy(user.name, fresh_name, sizeof(user.name));
        rc = cf_store_user_update(core->store, &user, err);
    } else if (rc == CF_ENOTFOUND) {
        memset(&user, 0, sizeof(user));
        cf_uuid_new(user.id);
        memcpy(user.email, fresh_email, sizeof(user.email));
        memcpy(user.name, fresh_name, sizeof(user.name));
        cf_strlcpy(user.org_role, "member", sizeof(user.org_role));
        cf_strlcpy(user.status, "active", sizeof(user.status));
        cf_strlcpy(user.sso_issuer, issuer, sizeof(user.sso_issuer));
        cf_strlcpy(user.sso_subject, subject, sizeof(user.sso_subject));
        user.created_at = user.updated_at = cf_now_ms();
        rc = cf_store_user_create(core->store, &user, err);
    }
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST,
                        "email '%s' belongs to another Coffer user: an administrator must link "
                        "or remove that account first",
                        fresh_email);
    if (rc == CF_OK)
        *out = user;
out:
    sodium_memzero(&user, sizeof(user));
    return rc;
}

/* ---- sessions ---- */

static int64_t idle_s(const struct cf_core *core)
{
    return core->session_idle_s > 0 ? core->session_idle_s : CF_SESSION_IDLE_DEFAULT_S;
}

static int64_t absolute_s(const struct cf_core *core)
{
    return core->session_absolute_s > 0 ? core->session_absolute_s : CF_SESSION_ABSOLUTE_DEFAULT_S;
}

enum cf_rc cf_users_session_open(struct cf_core *core, const char *user_id, const char *source_ip,
                                 const char *user_agent, struct cf_session_grant *out,
                                 struct cf_err *err)
{
    struct cf_user user;
    char secret[CF_TOKEN_MAX];
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = cf_store_user_get(core->store, user_id, &user, err);
    if (rc == CF_OK && strcmp(user.status, "active") != 0)
        rc = cf_err_set(err, CF_EUNAUTH, "user '%s' is disabled", user.email);
    if (rc != CF_OK)
        goto out;
    struct cf_user_session *s = &out->session;
    cf_uuid_new(s->id);
    memcpy(s->user_id, user.id, sizeof(s->user_id));
    cf_token_new("", secret, sizeof(secret));
    snprintf(out->cookie, sizeof(out->cookie), "%s.%.43s", s->id, secret);
    cf_token_hash(secret, strlen(secret), s->hash);
    cf_token_new("", out->csrf_token, sizeof(out->csrf_token));
    cf_token_hash(out->csrf_token, strlen(out->csrf_token), s->csrf_hash);
    cf_strlcpy(s->source_ip, source_ip ? source_ip : "", sizeof(s->source_ip));
    /* A long user agent is cut: it is a description, not an identifier. The session list shows it
     * as JSON, so bytes that are not UTF-8 (or a character cut here) become '?'. */
    cf_strlcpy(s->user_agent, user_agent ? user_agent : "", sizeof(s->user_agent));
    cf_utf8_repair(s->user_agent);
    s->created_at = s->last_seen_at = now;
    s->expires_at = now + absolute_s(core) * 1000;
    rc = cf_store_session_create(core->store, s, err);
    if (rc == CF_OK) {
        user.last_login_at = now;
        rc = cf_store_user_update(core->store, &user, err);
    }
out:
    sodium_memzero(secret, sizeof(secret));
    sodium_memzero(&user, sizeof(user));
    if (rc != CF_OK)
        sodium_memzero(out, sizeof(*out));
    return rc;
}

static void throttle_key(const char *client_ip, const char *email, char out[THROTTLE_KEY_MAX])
{
    uint8_t digest[16];
    char hex[sizeof(digest) * 2 + 1];
    crypto_generichash(digest, sizeof(digest), (const uint8_t *)email, strlen(email), NULL, 0);
    sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
    snprintf(out, THROTTLE_KEY_MAX, "%.46s user %s", client_ip, hex);
}

/* The end of a sign-in whose credentials were right: a session into out, or (out NULL) the last
 * login recorded; a disabled user refused. */
static enum cf_rc login_finish(struct cf_core *core, const char *client_ip, const char *user_agent,
                               struct cf_user *user, struct cf_session_grant *out,
                               struct cf_err *err)
{
    if (out)
        return cf_users_session_open(core, user->id, client_ip, user_agent, out, err);
    if (strcmp(user->status, "active") != 0)
        return cf_err_set(err, CF_EUNAUTH, "user '%s' is disabled", user->email);
    user->last_login_at = cf_now_ms();
    return cf_store_user_update(core->store, user, err);
}

enum cf_rc cf_users_login(struct cf_core *core, const char *email, const char *password,
                          size_t password_len, const char *client_ip, const char *user_agent,
                          struct cf_user *user, struct cf_session_grant *out,
                          struct cf_mfa_challenge *challenge, struct cf_err *err)
{
    char normal[CF_EMAIL_MAX + 1];
    char key[THROTTLE_KEY_MAX];
    struct cf_err lookup;
    int64_t now = cf_now_ms();
    bool found = false;
    enum cf_rc rc;

    memset(user, 0, sizeof(*user));
    memset(challenge, 0, sizeof(*challenge));
    if (out)
        memset(out, 0, sizeof(*out));
    if (!client_ip)
        client_ip = "";
    rc = email_normalise(email, normal, err);
    if (rc == CF_OK && (!password || password_len == 0))
        rc = cf_err_field(err, CF_EVALIDATION, "password", "password: required");
    if (rc == CF_OK && password_len > CF_PASSWORD_MAX)
        rc = cf_err_field(err, CF_EVALIDATION, "password", "password: at most %d bytes",
                          CF_PASSWORD_MAX);
    if (rc != CF_OK)
        return rc;
    throttle_key(client_ip, normal, key);
    if (core->login_by_address)
        rc = cf_throttle_check(core->login_by_address, client_ip, "this address", now, err);
    if (rc == CF_OK && core->login_by_address_and_id)
        rc = cf_throttle_check(core->login_by_address_and_id, key, "this account from this address",
                               now, err);
    if (rc != CF_OK)
        return rc;

    cf_err_clear(&lookup);
    rc = cf_store_user_get_by_email(core->store, normal, user, &lookup);
    if (rc == CF_OK)
        found = true;
    else if (rc != CF_ENOTFOUND)
        return cf_err_set(err, rc, "%s", lookup.msg);
    /* Unknown user, no password, wrong password: one answer after one Argon2id's work. */
    if (!cf_password_verify(found ? user->password_hash : NULL, password, password_len)) {
        if (core->login_by_address_and_id)
            cf_throttle_failure(core->login_by_address_and_id, key, now);
        if (core->login_by_address)
            cf_throttle_failure(core->login_by_address, client_ip, now);
        rc = cf_err_set(err, CF_EUNAUTH, "invalid email or password");
        goto out;
    }
    if (core->login_by_address_and_id)
        cf_throttle_success(core->login_by_address_and_id, key);
    bool second_factor = false;
    if (strcmp(user->status, "active") == 0)
        rc = cf_mfa_required(core, user->id, &second_factor, err);
    if (rc == CF_OK && second_factor) {
        rc = cf_mfa_ticket_issue(core, user->id, client_ip, challenge->ticket,
                                 &challenge->expires_at, err);
        if (rc == CF_OK)
            rc = cf_err_set(err, CF_EUNAUTH,
                            "a second factor is required: send an authentication code (or a "
                            "recovery code) with the mfaTicket to POST /api/v1/auth/login/mfa");
        goto out;
    }
    if (rc == CF_OK)
        rc = login_finish(core, client_ip, user_agent, user, out, err);
out:
    sodium_memzero(user->password_hash, sizeof(user->password_hash));
    if (rc != CF_OK && rc != CF_EUNAUTH)
        memset(user, 0, sizeof(*user));
    return rc;
}

enum cf_rc cf_users_login_mfa(struct cf_core *core, const char *ticket, const char *code,
                              const char *client_ip, const char *user_agent, struct cf_user *user,
                              struct cf_session_grant *out, bool *used_recovery, struct cf_err *err)
{
    char user_id[CF_UUID_LEN] = "";
    char key[THROTTLE_KEY_MAX];
    int64_t now = cf_now_ms();
    enum cf_rc rc = CF_OK;

    memset(user, 0, sizeof(*user));
    *used_recovery = false;
    if (out)
        memset(out, 0, sizeof(*out));
    if (!client_ip)
        client_ip = "";
    if (!ticket || !*ticket)
        return cf_err_field(err, CF_EVALIDATION, "mfaTicket", "mfaTicket: required");
    if (!code || !*code)
        return cf_err_field(err, CF_EVALIDATION, "code", "code: required");
    if (strlen(code) > 64)
        return cf_err_field(err, CF_EVALIDATION, "code", "code: at most 64 characters");
    if (core->login_by_address)
        rc = cf_throttle_check(core->login_by_address, client_ip, "this address", now, err);
    if (rc == CF_OK)
        rc = cf_mfa_ticket_user(core, ticket, user_id, err);
    if (rc == CF_EUNAUTH && core->login_by_address)
        cf_throttle_failure(core->login_by_address, client_ip, now);
    if (rc == CF_OK)
        rc = cf_store_user_get(core->store, user_id, user, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_EUNAUTH, "the user of this sign-in ticket no longer exists");
    if (rc != CF_OK)
        goto out;
    throttle_key(client_ip, user->email, key);
    if (core->login_by_address_and_id)
        rc = cf_throttle_check(core->login_by_address_and_id, key, "this account from this address",
                               now, err);
    if (rc == CF_OK)
        rc = cf_mfa_check(core, user->id, code, used_recovery, err);
    if (rc == CF_EUNAUTH || rc == CF_ECONFLICT) {
        /* a replayed code is a failed attempt too, and answered as one */
        if (core->login_by_address_and_id)
            cf_throttle_failure(core->login_by_address_and_id, key, now);
        if (core->login_by_address)
            cf_throttle_failure(core->login_by_address, client_ip, now);
        if (rc == CF_ECONFLICT) {
            char why[sizeof(err->msg)];
            memcpy(why, err->msg, sizeof(why));
            rc = cf_err_set(err, CF_EUNAUTH, "%s", why);
        }
        goto out;
    }
    if (rc == CF_OK)
        rc = cf_mfa_ticket_take(core, ticket, err);
    if (rc != CF_OK)
        goto out;
    if (core->login_by_address_and_id)
        cf_throttle_success(core->login_by_address_and_id, key);
    rc = login_finish(core, client_ip, user_agent, user, out, err);
out:
    sodium_memzero(user->password_hash, sizeof(user->password_hash));
    if (rc != CF_OK && rc != CF_EUNAUTH && rc != CF_ERATELIMIT)
        memset(user, 0, sizeof(*user));
    return rc;
}

void cf_users_principal(const struct cf_user *user, struct cf_principal *who)
{
    user_principal(user, NULL, NULL, who);
}

/* Fills who for user, as authenticated by a token (token_id) or a session (session_id). */
static void user_principal(const struct cf_user *user, const char *token_id, const char *session_id,
                           struct cf_principal *who)
{
    memset(who, 0, sizeof(*who));
    who->kind = CF_PRINCIPAL_USER;
    memcpy(who->id, user->id, sizeof(who->id));
    cf_strlcpy(who->name, user->name[0] ? user->name : user->email, sizeof(who->name));
    memcpy(who->email, user->email, sizeof(who->email));
    memcpy(who->org_role, user->org_role, sizeof(who->org_role));
    if (token_id)
        cf_strlcpy(who->token_id, token_id, sizeof(who->token_id));
    if (session_id)
        cf_strlcpy(who->session_id, session_id, sizeof(who->session_id));
}

/* The active user of a session or token: CF_EUNAUTH when it is gone or disabled. */
static enum cf_rc active_user(struct cf_core *core, const char *user_id, struct cf_user *out,
                              struct cf_err *err)
{
    enum cf_rc rc = cf_store_user_get(core->store, user_id, out, err);
    if (rc == CF_ENOTFOUND)
        return cf_err_set(err, CF_EUNAUTH, "the user of this credential no longer exists");
    if (rc == CF_OK && strcmp(out->status, "active") != 0)
        rc = cf_err_set(err, CF_EUNAUTH, "user '%s' is disabled", out->email);
    return rc;
}

bool cf_users_is_pat(const char *text)
{
    return text && strncmp(text, CF_PAT_PREFIX, strlen(CF_PAT_PREFIX)) == 0;
}

enum cf_rc cf_users_authenticate_pat(struct cf_core *core, const char *token,
                                     struct cf_principal *who, struct cf_err *err)
{
    const size_t prefix = strlen(CF_PAT_PREFIX);
    char id[CF_UUID_LEN];
    uint8_t hash[CF_TOKEN_HASH_BYTES];
    struct cf_pat pat;
    struct cf_user user;
    struct cf_err ignored;
    char when[CF_TIME_RFC3339_LEN];
    enum cf_rc rc;

    memset(who, 0, sizeof(*who));
    size_t len = strlen(token);
    if (!cf_users_is_pat(token) || len < prefix + CF_UUID_LEN || len >= CF_PAT_MAX ||
        token[prefix + CF_UUID_LEN - 1] != '_')
        return cf_err_set(err, CF_EUNAUTH, "invalid personal access token");
    memcpy(id, token + prefix, CF_UUID_LEN - 1);
    id[CF_UUID_LEN - 1] = '\0';
    if (!cf_uuid_valid(id))
        return cf_err_set(err, CF_EUNAUTH, "invalid personal access token");
    rc = cf_store_pat_get(core->store, id, &pat, &ignored);
    if (rc == CF_ENOTFOUND)
        return cf_err_set(err, CF_EUNAUTH, "invalid personal access token");
    if (rc != CF_OK)
        return cf_err_set(err, rc, "%s", ignored.msg);
    cf_token_hash(token, len, hash);
    if (!cf_token_hash_equal(hash, pat.hash))
        return cf_err_set(err, CF_EUNAUTH, "invalid personal access token");
    if (pat.revoked)
        return cf_err_set(err, CF_EUNAUTH, "personal access token '%s' was revoked", pat.id);
    if (pat.expires_at <= cf_now_ms()) {
        cf_time_format(pat.expires_at, when);
        return cf_err_set(err, CF_EUNAUTH, "personal access token '%s' expired at %s", pat.id,
                          when);
    }
    rc = active_user(core, pat.user_id, &user, err);
    if (rc == CF_OK)
        user_principal(&user, pat.id, NULL, who);
    sodium_memzero(&user, sizeof(user));
    return rc;
}

enum cf_rc cf_users_authenticate_session(struct cf_core *core, const char *cookie, bool unsafe,
                                         const char *csrf, struct cf_principal *who,
                                         struct cf_err *err)
{
    char id[CF_UUID_LEN];
    uint8_t hash[CF_TOKEN_HASH_BYTES];
    struct cf_user_session s;
    struct cf_user user;
    struct cf_err ignored;
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    memset(who, 0, sizeof(*who));
    const char *dot = cookie ? strchr(cookie, '.') : NULL;
    if (!dot || dot - cookie != CF_UUID_LEN - 1 || strlen(dot + 1) >= CF_SESSION_VALUE_MAX)
        return cf_err_set(err, CF_EUNAUTH, "invalid session: sign in again");
    memcpy(id, cookie, CF_UUID_LEN - 1);
    id[CF_UUID_LEN - 1] = '\0';
    if (!cf_uuid_valid(id))
        return cf_err_set(err, CF_EUNAUTH, "invalid session: sign in again");
    rc = cf_store_session_get(core->store, id, &s, &ignored);
    if (rc == CF_ENOTFOUND)
        return cf_err_set(err, CF_EUNAUTH, "the session has ended: sign in again");
    if (rc != CF_OK)
        return cf_err_set(err, rc, "%s", ignored.msg);
    cf_token_hash(dot + 1, strlen(dot + 1), hash);
    if (!cf_token_hash_equal(hash, s.hash))
        return cf_err_set(err, CF_EUNAUTH, "invalid session: sign in again");
    if (s.expires_at <= now)
        return cf_err_set(err, CF_EUNAUTH, "the session expired: sign in again");
    if (s.last_seen_at + idle_s(core) * 1000 <= now)
        return cf_err_set(err, CF_EUNAUTH, "the session was idle for too long: sign in again");
    rc = active_user(core, s.user_id, &user, err);
    if (rc != CF_OK)
        goto out;
    if (unsafe) {
        cf_token_hash(csrf ? csrf : "", csrf ? strlen(csrf) : 0, hash);
        if (!csrf || !*csrf || !cf_token_hash_equal(hash, s.csrf_hash)) {
            rc = cf_err_set(err, CF_EFORBIDDEN,
                            "missing or wrong CSRF token: send the token given at sign-in in the "
                            "X-CSRF-Token header");
            goto out;
        }
    }
    /* Idle time is counted in minutes: one write a minute per session at most. */
    if (now - s.last_seen_at >= 60 * 1000)
        rc = cf_store_session_touch(core->store, s.id, now, err);
    if (rc == CF_OK)
        user_principal(&user, NULL, s.id, who);
out:
    sodium_memzero(&user, sizeof(user));
    return rc;
}

static enum cf_rc require_user(const struct cf_principal *who, const char *what, struct cf_err *err)
{
    if (who && who->kind == CF_PRINCIPAL_USER)
        return CF_OK;
    return cf_err_set(err, CF_EFORBIDDEN, "only a signed-in user has %s", what);
}

/* The check of a call on one of the caller's own rows (a session, a token): a user, and an id that
 * can be one (else the 404 an unknown id gets). */
static enum cf_rc own_row(const struct cf_principal *who, const char *what, const char *kind,
                          const char *id, struct cf_err *err)
{
    enum cf_rc rc = require_user(who, what, err);
    if (rc == CF_OK && (!id || !cf_uuid_valid(id)))
        rc = cf_err_set(err, CF_ENOTFOUND, "%s '%.64s' not found", kind, id ? id : "");
    return rc;
}

enum cf_rc cf_users_sessions_list(struct cf_core *core, const struct cf_principal *who,
                                  struct cf_user_session_list *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = require_user(who, "sessions", err);
    return rc == CF_OK ? cf_store_session_list(core->store, who->id, out, err) : rc;
}

enum cf_rc cf_users_session_revoke(struct cf_core *core, const struct cf_principal *who,
                                   const char *session_id, struct cf_err *err)
{
    enum cf_rc rc = own_row(who, "sessions", "session", session_id, err);
    return rc == CF_OK ? cf_store_session_delete(core->store, who->id, session_id, err) : rc;
}

enum cf_rc cf_users_sessions_revoke_others(struct cf_core *core, const struct cf_principal *who,
                                           int64_t *revoked, struct cf_err *err)
{
    *revoked = 0;
    enum cf_rc rc = require_user(who, "sessions", err);
    return rc == CF_OK
               ? cf_store_session_delete_others(core->store, who->id, who->session_id, revoked, err)
               : rc;
}

/* ---- personal access tokens ---- */

enum cf_rc cf_users_pat_create(struct cf_core *core, const struct cf_principal *who,
                               const char *name, int64_t ttl_s, char token[CF_PAT_MAX],
                               struct cf_pat *out, struct cf_err *err)
{
    char secret[CF_TOKEN_MAX];
    struct cf_pat pat = {0};
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    token[0] = '\0';
    rc = require_user(who, "personal access tokens", err);
    if (rc == CF_OK && (!name || !*name))
        rc = cf_err_field(err, CF_EVALIDATION, "name", "name: required");
    if (rc == CF_OK)
        rc = name_field(name, pat.name, err);
    if (rc == CF_OK && (ttl_s < 1 || ttl_s > CF_PAT_TTL_MAX_S))
        rc = cf_err_field(err, CF_EVALIDATION, "expiresIn",
                          "expiresIn: required, from 1 second to %lld days",
                          (long long)(CF_PAT_TTL_MAX_S / 86400));
    if (rc != CF_OK)
        return rc;
    cf_uuid_new(pat.id);
    memcpy(pat.user_id, who->id, sizeof(pat.user_id));
    cf_token_new("", secret, sizeof(secret));
    snprintf(token, CF_PAT_MAX, "%s%s_%.43s", CF_PAT_PREFIX, pat.id, secret);
    cf_token_hash(token, strlen(token), pat.hash);
    pat.created_at = cf_now_ms();
    pat.expires_at = pat.created_at + ttl_s * 1000;
    rc = cf_store_pat_create(core->store, &pat, err);
    if (rc == CF_OK)
        *out = pat;
    else
        sodium_memzero(token, CF_PAT_MAX);
    sodium_memzero(secret, sizeof(secret));
    return rc;
}

enum cf_rc cf_users_pat_list(struct cf_core *core, const struct cf_principal *who,
                             struct cf_pat_list *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = require_user(who, "personal access tokens", err);
    return rc == CF_OK ? cf_store_pat_list(core->store, who->id, out, err) : rc;
}

enum cf_rc cf_users_pat_revoke(struct cf_core *core, const struct cf_principal *who,
                               const char *pat_id, struct cf_err *err)
{
    enum cf_rc rc = own_row(who, "personal access tokens", "token", pat_id, err);
    return rc == CF_OK ? cf_store_pat_revoke(core->store, who->id, pat_id, err) : rc;
}
