/* The store's part of single sign-on (docs/users.md "Single sign-on"): pending logins, one row per
 * browser sent to the identity provider, keyed by a keyed hash of its state (auth/oidc.c makes
 * it), holding the path to return to and the login's deadline. A row is taken (read and deleted in
 * one transaction) when the browser comes back, so that every state is used at most once, on
 * whichever node sharing the store the browser reaches. */
#ifndef CF_STORE_SSO_H
#define CF_STORE_SSO_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

#define CF_SSO_STATE_HASH_LEN 32 /* bytes of a state's keyed hash */
#define CF_SSO_RETURN_MAX 512    /* characters of a return path */

/* The bounds of cf_store_sso_login_put: pending logins at most, in all and per source address. */
struct cf_sso_login_limits {
    int64_t max_pending;
    int64_t max_per_source;
};

/* Records a pending login begun by source_ip: state_hash (CF_SSO_STATE_HASH_LEN bytes),
 * return_path (at most CF_SSO_RETURN_MAX characters), made at now_ms and usable until expires_ms.
 * Logins that expired before now_ms are deleted in the same transaction. CF_ERATELIMIT when
 * limits->max_per_source logins of source_ip, or limits->max_pending in all, are already pending
 * (so that an anonymous caller cannot grow the table without bound, nor one address fill it for
 * everyone), CF_ESTORE, CF_EUNAVAIL. Thread-safe. */
enum cf_rc cf_store_sso_login_put(struct cf_store *st, const uint8_t *state_hash,
                                  const char *return_path, const char *source_ip, int64_t now_ms,
                                  int64_t expires_ms, const struct cf_sso_login_limits *limits,
                                  struct cf_err *err);

/* Takes the pending login of state_hash: copies its return path into return_path (size bytes) and
 * its deadline into *expires_ms, and deletes it, in one transaction, so that a second take of the
 * same state finds nothing. CF_ENOTFOUND when there is none (unknown or already used), CF_ESTORE
 * (also for a return path over size), CF_EUNAVAIL. Thread-safe. */
enum cf_rc cf_store_sso_login_take(struct cf_store *st, const uint8_t *state_hash,
                                   char *return_path, size_t size, int64_t *expires_ms,
                                   struct cf_err *err);

#endif
