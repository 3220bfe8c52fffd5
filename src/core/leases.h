/* Leases of dynamic secrets (docs/dynamic-secrets.md): one credential minted by a dynamic secret's
 * provider for one caller, valid until the lease ends. The credential is handed to the caller
 * once, in the answer to its creation, and is never stored or logged; the store keeps what
 * revocation needs (the provider's name for it) and who asked.
 *
 * Rights: creating a lease needs the action "lease" at the dynamic secret's place (cf_authz_check:
 * admins have it, a member only through a rule naming it, reading secrets never implies it). A
 * lease is its creator's: the creator, the admin and org admins, and the project administrators of
 * its place may see, renew and revoke it; cf_leases_list shows the caller's own, or every lease
 * for the admin and org admins.
 *
 * Revocation is guaranteed: a lease whose end has come is revoked by the worker of every server
 * (cf_leases_execute, sync/worker.h), including leases that ended while no server ran; one node
 * claims it in the store, so it is revoked once; a failure (the target unreachable) is retried with
 * exponential backoff (CF_LEASE_BACKOFF_FIRST_MS doubling to CF_LEASE_BACKOFF_MAX_MS) and, after
 * CF_LEASE_ALERT_AFTER failed attempts, told once to the notification channels. Where the provider
 * can, the credential also carries its own end (PostgreSQL VALID UNTIL), so it dies even if Coffer
 * never comes back. Every create, renew and revoke is audited, without the credential. Thread-safe.
 */
#ifndef CF_CORE_LEASES_H
#define CF_CORE_LEASES_H

#include <jansson.h>

#include "core/core.h"
#include "core/dynamic.h"
#include "store/dynamic.h"

#define CF_LEASE_BACKOFF_FIRST_MS 5000
#define CF_LEASE_BACKOFF_MAX_MS (10 * 60 * 1000)
#define CF_LEASE_ALERT_AFTER 3
#define CF_LEASE_CLAIM_MS (2 * 60 * 1000)
#define CF_LEASE_LIST_MAX 1000

/* A lease as shown: the row and its dynamic secret. */
struct cf_lease_view {
    struct cf_lease lease;
    struct cf_dynamic_view dynamic;
};

struct cf_lease_view_list {
    struct cf_lease_view *items;
    size_t n;
};

void cf_lease_view_list_release(struct cf_lease_view_list *l);

/* Creates a lease of the dynamic secret where names, ending ttl_ms from now (0: the dynamic
 * secret's default TTL). *data receives the credential's fields (a new object holding secrets:
 * the caller wipes it with cf_lease_data_free). CF_EVALIDATION for a ttl over the maximum TTL or
 * under CF_DYNAMIC_TTL_MIN_MS ("ttl"); the provider's error otherwise (CF_EIO when the target is
 * unreachable: no lease is kept then). */
enum cf_rc cf_lease_create(struct cf_core *core, const struct cf_principal *who,
                           const struct cf_dynamic_where *where, int64_t ttl_ms,
                           struct cf_lease_view *out, json_t **data, struct cf_err *err);

/* Wipes the string values of data and frees it; NULL is a no-op. */
void cf_lease_data_free(json_t *data);

/* The lease id, for who (see above). CF_ENOTFOUND "Lease with ID 'x' not found" also for a lease
 * who may not see. */
enum cf_rc cf_lease_get(struct cf_core *core, const struct cf_principal *who, const char *id,
                        struct cf_lease_view *out, struct cf_err *err);

/* Moves the end of the active lease id to ttl_ms from now (0: the default TTL), at the provider
 * too where it keeps one. CF_EVALIDATION ("ttl") when that passes the lease's creation + the
 * maximum TTL; CF_ECONFLICT when the lease has ended, is revoked, or is being revoked. owner: the
 * claim owner for the duration of the call. */
enum cf_rc cf_lease_renew(struct cf_core *core, const struct cf_principal *who, const char *id,
                          int64_t ttl_ms, const char *owner, struct cf_lease_view *out,
                          struct cf_err *err);

/* Revokes the lease id now. CF_OK with out's state "revoked"; the provider's error when it could
 * not (the lease then ends now and the worker retries it with backoff); CF_ECONFLICT when it is
 * already revoked or being revoked. */
enum cf_rc cf_lease_revoke(struct cf_core *core, const struct cf_principal *who, const char *id,
                           const char *owner, struct cf_lease_view *out, struct cf_err *err);

/* Leases, newest first: of the dynamic secret where names when where is non-NULL (its leases
 * who may see), else the caller's own (all = true: every lease, for the admin and org admins
 * only, CF_EFORBIDDEN otherwise); active ones only unless include_ended. */
enum cf_rc cf_leases_list(struct cf_core *core, const struct cf_principal *who,
                          const struct cf_dynamic_where *where, bool all, bool include_ended,
                          struct cf_lease_view_list *out, struct cf_err *err);

/* Revocation worker: claims the lease id for owner when it is due (ended, next attempt due, no live
 * claim) and revokes it, recording the outcome (and the backoff after a failure). *ran says
 * whether this call claimed it. CF_OK unless the store failed. */
enum cf_rc cf_leases_execute(struct cf_core *core, const char *id, const char *owner, bool *ran,
                             struct cf_err *err);

/* Revokes lease (claimed by owner) at its provider and records the outcome with save; the lease's
 * audit record says actor (NULL: the revocation worker). For core/dynamic.c. */
enum cf_rc cf_lease_revoke_claimed(struct cf_core *core, struct cf_lease *lease, const char *owner,
                                   const struct cf_principal *actor, struct cf_err *err);

#endif
