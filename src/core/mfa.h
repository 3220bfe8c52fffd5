/* Two-factor sign-in for local accounts (docs/users.md "Two-factor sign-in"): a TOTP authenticator
 * (RFC 6238, crypto/totp.h) enrolled by the user itself, single-use recovery codes, and the
 * short-lived tickets that join the two steps of a sign-in (password, then code).
 *
 * Enrolment: cf_mfa_totp_begin makes a secret (sealed at rest, crypto/serverkey.h) shown once as
 * base32 and as an otpauth:// URI; it counts for sign-in only after cf_mfa_totp_confirm with a
 * valid code, which also makes CF_RECOVERY_CODES_N recovery codes, shown once and stored as keyed
 * hashes. A code is accepted for its step and one either side, and never twice: the last accepted
 * step is kept and a code of it or an earlier step is refused (CF_ECONFLICT).
 *
 * Outputs are filled by the callee and zeroed on failure; the caller wipes the codes and secrets
 * it receives. Thread-safe. */
#ifndef CF_CORE_MFA_H
#define CF_CORE_MFA_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "crypto/totp.h"

#define CF_RECOVERY_CODES_N 10
#define CF_RECOVERY_CODE_MAX 16 /* "XXXXX-XXXXX" and the NUL */
#define CF_MFA_TICKET_PREFIX "mfa_"
#define CF_MFA_TICKET_MAX                                                                          \
    128 /* "mfa_" and 43 base64url characters: CF_TOKEN_MAX of crypto/token.h */
#define CF_MFA_TICKET_TTL_S 300 /* a sign-in's second step must come within five minutes */
#define CF_MFA_OTPAUTH_MAX 640

struct cf_totp_enrolment {
    char secret[CF_TOTP_SECRET_B32_MAX]; /* base32, for typing into an authenticator */
    char otpauth_uri[CF_MFA_OTPAUTH_MAX];
};

struct cf_recovery_codes {
    char codes[CF_RECOVERY_CODES_N][CF_RECOVERY_CODE_MAX];
};

/* A password sign-in that still needs a code: the ticket for the second step (shown once; the
 * caller wipes it) and when it expires (Unix ms). */
struct cf_mfa_challenge {
    char ticket[CF_MFA_TICKET_MAX];
    int64_t expires_at;
};

struct cf_mfa_status {
    bool totp_enabled;
    bool totp_pending; /* enrolment begun, not yet confirmed */
    int64_t recovery_codes_remaining;
};

/* Begins the caller's (a user's) TOTP enrolment, replacing one not yet confirmed. CF_ECONFLICT
 * when it has TOTP enabled already. */
enum cf_rc cf_mfa_totp_begin(struct cf_core *core, const struct cf_principal *who,
                             struct cf_totp_enrolment *out, struct cf_err *err);

/* Confirms the caller's pending enrolment with a code of its authenticator: TOTP is enabled and
 * out receives fresh recovery codes. CF_ENOTFOUND when no enrolment is pending, CF_ECONFLICT when
 * TOTP is enabled already, CF_EUNAUTH (field "code") for a wrong code. */
enum cf_rc cf_mfa_totp_confirm(struct cf_core *core, const struct cf_principal *who,
                               const char *code, struct cf_recovery_codes *out, struct cf_err *err);

/* Turns two-factor sign-in off for user ref (its TOTP and recovery codes deleted). For the caller
 * itself, code (a current TOTP code or a recovery code) is required; an administrator resets
 * another user without one (an owner's only by an owner). CF_ENOTFOUND when it is not enabled. */
enum cf_rc cf_mfa_disable(struct cf_core *core, const struct cf_principal *who, const char *ref,
                          const char *code, struct cf_user *target, struct cf_err *err);

/* Whether user ref has two-factor sign-in, and how many recovery codes are left: the user itself
 * or an administrator. */
enum cf_rc cf_mfa_status_get(struct cf_core *core, const struct cf_principal *who, const char *ref,
                             struct cf_mfa_status *out, struct cf_err *err);

/* Replaces the caller's recovery codes with fresh ones, given a current TOTP code. */
enum cf_rc cf_mfa_recovery_regenerate(struct cf_core *core, const struct cf_principal *who,
                                      const char *code, struct cf_recovery_codes *out,
                                      struct cf_err *err);

/* ---- for sign-in (core/users.c) ---- */

/* Whether user_id must give a code to sign in (TOTP enabled). */
enum cf_rc cf_mfa_required(struct cf_core *core, const char *user_id, bool *required,
                           struct cf_err *err);

/* Issues a sign-in ticket for user_id (CF_MFA_TICKET_MAX bytes into ticket, shown once) valid
 * CF_MFA_TICKET_TTL_S seconds; *expires_at (Unix ms). */
enum cf_rc cf_mfa_ticket_issue(struct cf_core *core, const char *user_id, const char *client_ip,
                               char ticket[CF_MFA_TICKET_MAX], int64_t *expires_at,
                               struct cf_err *err);

/* The user of ticket: CF_EUNAUTH naming the cause when it is unknown, used or expired. */
enum cf_rc cf_mfa_ticket_user(struct cf_core *core, const char *ticket, char user_id[CF_UUID_LEN],
                              struct cf_err *err);

/* Uses the ticket up: CF_EUNAUTH when another request used it first. */
enum cf_rc cf_mfa_ticket_take(struct cf_core *core, const char *ticket, struct cf_err *err);

/* Checks a second factor of user_id: a TOTP code (its step then recorded, so that it works once)
 * or, when code is not a code's shape, a recovery code (then used up). CF_EUNAUTH "wrong
 * authentication code", CF_ECONFLICT for a TOTP code used already. *used_recovery says which. */
enum cf_rc cf_mfa_check(struct cf_core *core, const char *user_id, const char *code,
                        bool *used_recovery, struct cf_err *err);

#endif
