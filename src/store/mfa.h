/* The store's part of two-factor sign-in (docs/users.md "Two-factor sign-in"): a user's TOTP
 * enrolment (its secret as sealed text, never in clear), its single-use recovery codes (keyed
 * hashes) and the short-lived tickets of sign-ins that still need a code (keyed hashes). Every
 * write that decides a single use (a time step, a recovery code, a ticket) is one conditional
 * statement, so that two nodes sharing a PostgreSQL store cannot both accept the same thing.
 * Thread-safe. */
#ifndef CF_STORE_MFA_H
#define CF_STORE_MFA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

#define CF_MFA_HASH_LEN 32       /* bytes of a recovery code's or ticket's keyed hash */
#define CF_TOTP_SEALED_MAX 256   /* characters of a sealed TOTP secret */
#define CF_RECOVERY_CODES_MAX 16 /* recovery codes a user holds at most */

struct cf_user_totp {
    char user_id[CF_UUID_LEN];
    char secret[CF_TOTP_SEALED_MAX]; /* sealed text (crypto/serverkey.h) */
    bool enabled;
    int64_t last_step; /* the last accepted time step; 0: none */
    int64_t created_at;
    int64_t updated_at;
};

/* Stores a pending enrolment (enabled false, last_step 0) for totp->user_id, replacing a pending
 * one; CF_ECONFLICT when the user's TOTP is enabled already. */
enum cf_rc cf_store_totp_put_pending(struct cf_store *st, const struct cf_user_totp *totp,
                                     struct cf_err *err);
/* The user's TOTP: CF_ENOTFOUND when it has none. */
enum cf_rc cf_store_totp_get(struct cf_store *st, const char *user_id, struct cf_user_totp *out,
                             struct cf_err *err);
/* Records that the code of step was accepted, and enables a pending enrolment, only while the
 * stored last_step is below step: CF_ECONFLICT otherwise (that step, or a later one, was used). */
enum cf_rc cf_store_totp_accept_step(struct cf_store *st, const char *user_id, int64_t step,
                                     int64_t now_ms, struct cf_err *err);
/* Deletes the user's TOTP and recovery codes (CF_ENOTFOUND when it had no TOTP). */
enum cf_rc cf_store_totp_delete(struct cf_store *st, const char *user_id, struct cf_err *err);

/* Replaces the user's recovery codes with the n hashes (CF_MFA_HASH_LEN bytes each, n at most
 * CF_RECOVERY_CODES_MAX), in one transaction. */
enum cf_rc cf_store_recovery_codes_replace(struct cf_store *st, const char *user_id,
                                           const uint8_t (*hashes)[CF_MFA_HASH_LEN], size_t n,
                                           int64_t now_ms, struct cf_err *err);
/* Uses (deletes) the recovery code of hash: CF_ENOTFOUND when the user has no such unused code. */
enum cf_rc cf_store_recovery_code_use(struct cf_store *st, const char *user_id,
                                      const uint8_t hash[CF_MFA_HASH_LEN], struct cf_err *err);
/* How many unused recovery codes the user has. */
enum cf_rc cf_store_recovery_codes_count(struct cf_store *st, const char *user_id, int64_t *count,
                                         struct cf_err *err);

/* Records a ticket of user_id (hash of CF_MFA_HASH_LEN bytes) issued to source_ip, usable until
 * expires_ms. Tickets expired before now_ms are deleted in the same transaction, and the user's
 * oldest are deleted beyond max_per_user, so that the table stays small. */
enum cf_rc cf_store_mfa_ticket_put(struct cf_store *st, const uint8_t hash[CF_MFA_HASH_LEN],
                                   const char *user_id, const char *source_ip, int64_t now_ms,
                                   int64_t expires_ms, int64_t max_per_user, struct cf_err *err);
/* The ticket of hash: its user into user_id, its deadline into *expires_ms. CF_ENOTFOUND when
 * there is none (unknown or already used). */
enum cf_rc cf_store_mfa_ticket_get(struct cf_store *st, const uint8_t hash[CF_MFA_HASH_LEN],
                                   char user_id[CF_UUID_LEN], int64_t *expires_ms,
                                   struct cf_err *err);
/* Takes (deletes) the ticket: CF_ENOTFOUND when another request took it first. */
enum cf_rc cf_store_mfa_ticket_take(struct cf_store *st, const uint8_t hash[CF_MFA_HASH_LEN],
                                    struct cf_err *err);

#endif
