/* Two-factor sign-in (mfa.h): TOTP enrolment, recovery codes and sign-in tickets over the store. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/mfa.h"
#include "core/users.h"
#include "crypto/serverkey.h"
#include "crypto/token.h"
#include "store/mfa.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

_Static_assert(CF_MFA_HASH_LEN == CF_TOKEN_HASH_BYTES, "tickets and codes are token hashes");
_Static_assert(CF_RECOVERY_CODES_N <= CF_RECOVERY_CODES_MAX, "the store keeps every code");
_Static_assert(CF_MFA_TICKET_MAX >= CF_TOKEN_MAX, "cf_token_new writes a ticket");

#define ISSUER "Coffer"
/* A user keeps at most this many sign-ins waiting for their code. */
#define TICKETS_PER_USER 5
/* Recovery codes: ten characters of the base32 alphabet (50 bits), shown as two groups of five. */
#define RECOVERY_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
#define RECOVERY_CHARS 10

static enum cf_rc require_user(const struct cf_principal *who, struct cf_err *err)
{
    if (who && who->kind == CF_PRINCIPAL_USER)
        return CF_OK;
    return cf_err_set(err, CF_EFORBIDDEN, "only a signed-in user has two-factor sign-in");
}

static void secret_context(const char *user_id, char out[CF_CREDENTIAL_CONTEXT_MAX])
{
    snprintf(out, CF_CREDENTIAL_CONTEXT_MAX, "totp:%s", user_id);
}

/* Appends text percent-encoded (RFC 3986: unreserved characters as they are) to out. */
static enum cf_rc uri_escape(struct cf_buf *out, const char *text)
{
    enum cf_rc rc = CF_OK;
    for (const unsigned char *p = (const unsigned char *)text; rc == CF_OK && *p; p++) {
        char piece[4];
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~')
            snprintf(piece, sizeof(piece), "%c", *p);
        else
            snprintf(piece, sizeof(piece), "%%%02X", *p);
        rc = cf_buf_append(out, piece, strlen(piece));
    }
    return rc;
}

/* otpauth://totp/Coffer:EMAIL?secret=S&issuer=Coffer&algorithm=SHA1&digits=6&period=30, the Key
 * Uri Format every authenticator app reads. */
static enum cf_rc otpauth_uri(const char *email, const char *secret, char *out, size_t size,
                              struct cf_err *err)
{
    struct cf_buf uri;
    char tail[160];
    cf_buf_init(&uri, size - 1);
    enum cf_rc rc =
        cf_buf_append(&uri, "otpauth://totp/" ISSUER ":", strlen("otpauth://totp/" ISSUER ":"));
    if (rc == CF_OK)
        rc = uri_escape(&uri, email);
    snprintf(tail, sizeof(tail), "?secret=%s&issuer=" ISSUER "&algorithm=SHA1&digits=%d&period=%d",
             secret, CF_TOTP_DIGITS, CF_TOTP_STEP_S);
    if (rc == CF_OK)
        rc = cf_buf_append(&uri, tail, strlen(tail));
    if (rc == CF_OK) {
        memcpy(out, uri.data, uri.len);
        out[uri.len] = '\0';
    } else {
        rc = cf_err_set(err, CF_EINTERNAL, "the otpauth URI does not fit");
    }
    sodium_memzero(tail, sizeof(tail));
    cf_buf_release_wipe(&uri);
    return rc;
}

enum cf_rc cf_mfa_totp_begin(struct cf_core *core, const struct cf_principal *who,
                             struct cf_totp_enrolment *out, struct cf_err *err)
{
    struct cf_user_totp row = {0};
    uint8_t secret[CF_TOTP_SECRET_BYTES];
    char context[CF_CREDENTIAL_CONTEXT_MAX];
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = require_user(who, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_totp_secret_new(secret, out->secret, err);
    if (rc == CF_OK)
        rc = otpauth_uri(who->email, out->secret, out->otpauth_uri, sizeof(out->otpauth_uri), err);
    secret_context(who->id, context);
    if (rc == CF_OK)
        rc = cf_credential_seal(core->store, core->keyring, context, out->secret, row.secret,
                                sizeof(row.secret), err);
    if (rc == CF_OK) {
        cf_strlcpy(row.user_id, who->id, sizeof(row.user_id));
        row.created_at = row.updated_at = cf_now_ms();
        rc = cf_store_totp_put_pending(core->store, &row, err);
    }
    if (rc == CF_ECONFLICT)
        rc = cf_err_set(err, CF_ECONFLICT,
                        "two-factor sign-in is enabled already: disable it first to enrol another "
                        "authenticator");
    sodium_memzero(secret, sizeof(secret));
    if (rc != CF_OK)
        sodium_memzero(out, sizeof(*out));
    return rc;
}

/* Reads and opens user_id's TOTP secret into secret (*n bytes) and its row into row. */
static enum cf_rc open_secret(struct cf_core *core, const char *user_id, struct cf_user_totp *row,
                              uint8_t secret[CF_TOTP_SECRET_BYTES], size_t *n, struct cf_err *err)
{
    struct cf_buf plain;
    char context[CF_CREDENTIAL_CONTEXT_MAX];
    *n = 0;
    enum cf_rc rc = cf_store_totp_get(core->store, user_id, row, err);
    if (rc != CF_OK)
        return rc;
    /* always sealed: a clear text secret would mean the row was not written by this server */
    if (strncmp(row->secret, CF_SEALED_PREFIX, strlen(CF_SEALED_PREFIX)) != 0)
        return cf_err_set(err, CF_ECRYPTO, "the TOTP secret of user '%s' is not sealed", user_id);
    secret_context(user_id, context);
    cf_buf_init(&plain, CF_TOTP_SECRET_B32_MAX);
    rc = cf_credential_open(core->store, core->keyring, context, row->secret, &plain, err);
    if (rc == CF_OK)
        rc = cf_buf_append(&plain, "", 1);
    if (rc == CF_OK)
        rc = cf_totp_secret_decode(plain.data, secret, CF_TOTP_SECRET_BYTES, n, err);
    cf_buf_release_wipe(&plain);
    return rc;
}

/* Checks a TOTP code of user_id and records its step (so that it works once). */
static enum cf_rc totp_accept(struct cf_core *core, const char *user_id, const char *code,
                              bool must_be_enabled, struct cf_err *err)
{
    struct cf_user_totp row;
    uint8_t secret[CF_TOTP_SECRET_BYTES];
    size_t n = 0;
    int64_t step = 0, now = cf_now_ms();
    enum cf_rc rc = open_secret(core, user_id, &row, secret, &n, err);
    if (rc == CF_OK && must_be_enabled && !row.enabled)
        rc = cf_err_set(err, CF_ENOTFOUND, "two-factor sign-in is not enabled");
    if (rc == CF_OK)
        rc = cf_totp_check(secret, n, now / 1000, code, row.last_step, &step, err);
    if (rc == CF_OK)
        rc = cf_store_totp_accept_step(core->store, user_id, step, now, err);
    if (rc == CF_ECONFLICT)
        rc = cf_err_set(err, CF_ECONFLICT,
                        "this authentication code was used already: wait for the next one");
    sodium_memzero(secret, sizeof(secret));
    sodium_memzero(&row, sizeof(row));
    return rc;
}

/* Normalises a recovery code as typed (any case, blanks and dashes ignored) into out
 * (RECOVERY_CHARS + 1 bytes); false when it cannot be one. */
static bool recovery_normal(const char *code, char out[RECOVERY_CHARS + 1])
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)code; *p; p++) {
        if (*p == '-' || *p == ' ')
            continue;
        int ch = toupper(*p);
        if (n == RECOVERY_CHARS || !strchr(RECOVERY_ALPHABET, ch) || ch == '\0')
            return false;
        out[n++] = (char)ch;
    }
    out[n] = '\0';
    return n == RECOVERY_CHARS;
}

/* Makes fresh recovery codes for user_id, replacing the old ones. */
static enum cf_rc recovery_make(struct cf_core *core, const char *user_id,
                                struct cf_recovery_codes *out, struct cf_err *err)
{
    uint8_t hashes[CF_RECOVERY_CODES_N][CF_MFA_HASH_LEN];
    char normal[RECOVERY_CHARS + 1];
    for (size_t i = 0; i < CF_RECOVERY_CODES_N; i++) {
        for (size_t j = 0; j < RECOVERY_CHARS; j++)
            normal[j] = RECOVERY_ALPHABET[randombytes_uniform(sizeof(RECOVERY_ALPHABET) - 1)];
        normal[RECOVERY_CHARS] = '\0';
        snprintf(out->codes[i], sizeof(out->codes[i]), "%.5s-%.5s", normal, normal + 5);
        cf_token_hash(normal, RECOVERY_CHARS, hashes[i]);
    }
    sodium_memzero(normal, sizeof(normal));
    enum cf_rc rc = cf_store_recovery_codes_replace(core->store, user_id,
                                                    (const uint8_t(*)[CF_MFA_HASH_LEN])hashes,
                                                    CF_RECOVERY_CODES_N, cf_now_ms(), err);
    sodium_memzero(hashes, sizeof(hashes));
    if (rc != CF_OK)
        sodium_memzero(out, sizeof(*out));
    return rc;
}

static enum cf_rc code_field(const char *code, struct cf_err *err)
{
    if (!code || !*code)
        return cf_err_field(err, CF_EVALIDATION, "code", "code: required");
    if (strlen(code) > 64)
        return cf_err_field(err, CF_EVALIDATION, "code", "code: at most 64 characters");
    return CF_OK;
}

enum cf_rc cf_mfa_totp_confirm(struct cf_core *core, const struct cf_principal *who,
                               const char *code, struct cf_recovery_codes *out, struct cf_err *err)
{
    struct cf_user_totp row;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = require_user(who, err);
    if (rc == CF_OK)
        rc = code_field(code, err);
    if (rc == CF_OK && !cf_totp_code_shaped(code))
        rc = cf_err_field(err, CF_EVALIDATION, "code", "code: %d digits", CF_TOTP_DIGITS);
    if (rc == CF_OK)
        rc = cf_store_totp_get(core->store, who->id, &row, err);
    if (rc == CF_ENOTFOUND)
        return cf_err_set(err, CF_ENOTFOUND,
                          "no authenticator enrolment is pending: begin one with POST "
                          "/api/v1/users/me/mfa/totp");
    if (rc == CF_OK && row.enabled)
        rc = cf_err_set(err, CF_ECONFLICT, "two-factor sign-in is enabled already");
    sodium_memzero(&row, sizeof(row));
    if (rc == CF_OK)
        rc = totp_accept(core, who->id, code, false, err);
    if (rc == CF_EUNAUTH)
        rc = cf_err_field(err, CF_EUNAUTH, "code", "code: wrong authentication code");
    if (rc == CF_OK)
        rc = recovery_make(core, who->id, out, err);
    return rc;
}

enum cf_rc cf_mfa_check(struct cf_core *core, const char *user_id, const char *code,
                        bool *used_recovery, struct cf_err *err)
{
    char normal[RECOVERY_CHARS + 1];
    uint8_t hash[CF_MFA_HASH_LEN];
    enum cf_rc rc;

    *used_recovery = false;
    if (cf_totp_code_shaped(code))
        return totp_accept(core, user_id, code, true, err);
    if (!recovery_normal(code, normal))
        return cf_err_set(err, CF_EUNAUTH, "wrong authentication code");
    cf_token_hash(normal, RECOVERY_CHARS, hash);
    rc = cf_store_recovery_code_use(core->store, user_id, hash, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_EUNAUTH, "wrong or already used recovery code");
    *used_recovery = rc == CF_OK;
    sodium_memzero(normal, sizeof(normal));
    return rc;
}

static bool is_owner(const struct cf_principal *who)
{
    return who->kind == CF_PRINCIPAL_ADMIN ||
           (who->kind == CF_PRINCIPAL_USER && strcmp(who->org_role, "owner") == 0);
}

enum cf_rc cf_mfa_disable(struct cf_core *core, const struct cf_principal *who, const char *ref,
                          const char *code, struct cf_user *target, struct cf_err *err)
{
    bool self, recovery = false;
    enum cf_rc rc = cf_users_find(core, ref, target, err);
    if (rc != CF_OK)
        return rc;
    self = who->kind == CF_PRINCIPAL_USER && strcmp(who->id, target->id) == 0;
    if (self) {
        /* nothing enabled: nothing to prove (a pending enrolment is simply dropped) */
        struct cf_user_totp row;
        rc = cf_store_totp_get(core->store, target->id, &row, err);
        bool enabled = rc == CF_OK && row.enabled;
        sodium_memzero(&row, sizeof(row));
        if (rc == CF_ENOTFOUND)
            rc = cf_err_set(err, CF_ENOTFOUND, "two-factor sign-in is not enabled for '%s'",
                            target->email);
        if (rc != CF_OK || !enabled)
            goto out;
        rc = code_field(code, err);
        if (rc == CF_OK)
            rc = cf_mfa_check(core, target->id, code, &recovery, err);
        if (rc == CF_EUNAUTH) {
            char why[sizeof(err->msg)];
            memcpy(why, err->msg, sizeof(why));
            rc = cf_err_field(err, CF_EUNAUTH, "code", "code: %s", why);
        }
    } else {
        rc = cf_authz_admin(who, "reset another user's two-factor sign-in", err);
        if (rc == CF_OK && strcmp(target->org_role, "owner") == 0 && !is_owner(who))
            rc = cf_err_set(err, CF_EFORBIDDEN,
                            "only an owner may reset an owner's two-factor sign-in");
    }
out:
    if (rc == CF_OK)
        rc = cf_store_totp_delete(core->store, target->id, err);
    sodium_memzero(target->password_hash, sizeof(target->password_hash));
    return rc;
}

enum cf_rc cf_mfa_status_get(struct cf_core *core, const struct cf_principal *who, const char *ref,
                             struct cf_mfa_status *out, struct cf_err *err)
{
    struct cf_user user;
    struct cf_user_totp row;
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = cf_users_get(core, who, ref, &user, err);
    if (rc == CF_OK)
        rc = cf_store_totp_get(core->store, user.id, &row, err);
    if (rc == CF_OK) {
        out->totp_enabled = row.enabled;
        out->totp_pending = !row.enabled;
    } else if (rc == CF_ENOTFOUND && user.id[0]) {
        rc = CF_OK;
    }
    if (rc == CF_OK)
        rc = cf_store_recovery_codes_count(core->store, user.id, &out->recovery_codes_remaining,
                                           err);
    sodium_memzero(&row, sizeof(row));
    sodium_memzero(&user, sizeof(user));
    return rc;
}

enum cf_rc cf_mfa_recovery_regenerate(struct cf_core *core, const struct cf_principal *who,
                                      const char *code, struct cf_recovery_codes *out,
                                      struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = require_user(who, err);
    if (rc == CF_OK)
        rc = code_field(code, err);
    if (rc == CF_OK && !cf_totp_code_shaped(code))
        rc = cf_err_field(err, CF_EVALIDATION, "code",
                          "code: a current %d-digit code of the "
                          "authenticator",
                          CF_TOTP_DIGITS);
    if (rc == CF_OK)
        rc = totp_accept(core, who->id, code, true, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "two-factor sign-in is not enabled");
    if (rc == CF_EUNAUTH)
        rc = cf_err_field(err, CF_EUNAUTH, "code", "code: wrong authentication code");
    if (rc == CF_OK)
        rc = recovery_make(core, who->id, out, err);
    return rc;
}

enum cf_rc cf_mfa_required(struct cf_core *core, const char *user_id, bool *required,
                           struct cf_err *err)
{
    struct cf_user_totp row;
    *required = false;
    enum cf_rc rc = cf_store_totp_get(core->store, user_id, &row, err);
    if (rc == CF_ENOTFOUND)
        return CF_OK;
    if (rc == CF_OK)
        *required = row.enabled;
    sodium_memzero(&row, sizeof(row));
    return rc;
}

enum cf_rc cf_mfa_ticket_issue(struct cf_core *core, const char *user_id, const char *client_ip,
                               char ticket[CF_MFA_TICKET_MAX], int64_t *expires_at,
                               struct cf_err *err)
{
    uint8_t hash[CF_MFA_HASH_LEN];
    int64_t now = cf_now_ms();
    cf_token_new(CF_MFA_TICKET_PREFIX, ticket, CF_MFA_TICKET_MAX);
    cf_token_hash(ticket, strlen(ticket), hash);
    *expires_at = now + CF_MFA_TICKET_TTL_S * 1000;
    enum cf_rc rc = cf_store_mfa_ticket_put(core->store, hash, user_id, client_ip ? client_ip : "",
                                            now, *expires_at, TICKETS_PER_USER, err);
    if (rc != CF_OK) {
        sodium_memzero(ticket, CF_MFA_TICKET_MAX);
        *expires_at = 0;
    }
    return rc;
}

static enum cf_rc ticket_hash(const char *ticket, uint8_t hash[CF_MFA_HASH_LEN], struct cf_err *err)
{
    size_t len = ticket ? strlen(ticket) : 0;
    if (len == 0 || len >= CF_MFA_TICKET_MAX ||
        strncmp(ticket, CF_MFA_TICKET_PREFIX, strlen(CF_MFA_TICKET_PREFIX)) != 0)
        return cf_err_set(err, CF_EUNAUTH, "invalid sign-in ticket: sign in again");
    cf_token_hash(ticket, len, hash);
    return CF_OK;
}

enum cf_rc cf_mfa_ticket_user(struct cf_core *core, const char *ticket, char user_id[CF_UUID_LEN],
                              struct cf_err *err)
{
    uint8_t hash[CF_MFA_HASH_LEN];
    int64_t expires_at = 0;
    char when[CF_TIME_RFC3339_LEN];
    user_id[0] = '\0';
    enum cf_rc rc = ticket_hash(ticket, hash, err);
    if (rc == CF_OK)
        rc = cf_store_mfa_ticket_get(core->store, hash, user_id, &expires_at, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_EUNAUTH, "unknown or already used sign-in ticket: sign in again");
    if (rc == CF_OK && expires_at <= cf_now_ms()) {
        cf_time_format(expires_at, when);
        rc = cf_err_set(err, CF_EUNAUTH, "the sign-in ticket expired at %s: sign in again", when);
    }
    if (rc != CF_OK)
        user_id[0] = '\0';
    return rc;
}

enum cf_rc cf_mfa_ticket_take(struct cf_core *core, const char *ticket, struct cf_err *err)
{
    uint8_t hash[CF_MFA_HASH_LEN];
    enum cf_rc rc = ticket_hash(ticket, hash, err);
    if (rc == CF_OK)
        rc = cf_store_mfa_ticket_take(core->store, hash, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_EUNAUTH, "unknown or already used sign-in ticket: sign in again");
    return rc;
}
