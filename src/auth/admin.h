/* The admin token at rest. Only a keyed BLAKE2b-256 hash of the token is stored (meta
 * "admin_token_hash": a format byte, 2, then the hash), keyed with the admin key: a server key
 * (crypto/serverkey.h, meta "admin_key") wrapped by the root key and rewrapped with it on root key
 * rotation. The database alone (a stolen backup) therefore cannot check a guess of an
 * operator-chosen bootstrap token; that needs the root key as well.
 *
 * The stored hash is read from the store on every check, never cached, so that `coffer operator
 * rotate-admin-token` ends the old token on every server (and every node sharing a PostgreSQL
 * store) at its next request. The unwrapped admin key does not change with a rotation and is kept.
 *
 * A store written before keyed hashes holds the bare 32-byte hash of crypto/token.h (a fixed public
 * key). It is still accepted, and re-keyed at its first successful check (at the latest, at the
 * next start with COFFER_BOOTSTRAP_TOKEN set to the token, or the token's next use), with a
 * compare-and-swap so that a rotation made meanwhile wins. */
#ifndef CF_AUTH_ADMIN_H
#define CF_AUTH_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include "crypto/keyring.h"
#include "store/store.h"
#include "util/err.h"

#define CF_ADMIN_TOKEN_META "admin_token_hash"
#define CF_ADMIN_TOKEN_PREFIX "cfadm_"
/* The break-glass switch: meta "admin_token_disabled" holds "1" while the admin token is disabled
 * (absent or "0": enabled). Read on every use of the token, as the hash is. */
#define CF_ADMIN_TOKEN_DISABLED_META "admin_token_disabled"

struct cf_admin_auth;

/* Unwraps the admin key (making and storing it on first use) into locked memory. *out is freed
 * with cf_admin_auth_free. Safe to share between threads once made. */
enum cf_rc cf_admin_auth_open(struct cf_store *st, struct cf_keyring *kr,
                              struct cf_admin_auth **out, struct cf_err *err);

/* Wipes and frees; NULL is a no-op. */
void cf_admin_auth_free(struct cf_admin_auth *admin);

/* Stores the hash of token (n bytes) as the admin token: replacing the current one (rotation), or
 * with only_if_absent (first start) CF_EEXIST when the store has one already. */
enum cf_rc cf_admin_token_store(struct cf_admin_auth *admin, struct cf_store *st, const char *token,
                                size_t n, bool only_if_absent, struct cf_err *err);

/* Whether token (n bytes) is the admin token: *ok. Reads the stored hash (CF_ENOTFOUND when there
 * is none); re-keys a hash of the old form on success. *legacy (may be NULL) says whether the
 * stored hash was of the old form before this check. */
enum cf_rc cf_admin_token_check(struct cf_admin_auth *admin, struct cf_store *st, const char *token,
                                size_t n, bool *ok, bool *legacy, struct cf_err *err);

/* Whether the admin token is disabled (the break-glass switch): *disabled. */
enum cf_rc cf_admin_token_disabled(struct cf_store *st, bool *disabled, struct cf_err *err);

/* Sets the break-glass switch. No check of who may: the callers do (core/admin_token.h, and the
 * operator command on the server host). */
enum cf_rc cf_admin_token_set_disabled(struct cf_store *st, bool disabled, struct cf_err *err);

#endif
