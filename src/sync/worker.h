/* The secret-sync worker of `coffer server` (docs/syncs.md "Propagation"): one thread that claims
 * pending syncs in the store and runs them (core/syncs.h cf_syncs_execute), one at a time. It is
 * woken at once by a change on this server (core->sync_wake) and looks for work every second
 * otherwise, which is how changes made on other servers sharing a PostgreSQL database, retries
 * whose backoff has run out and syncs left pending by a server that stopped are picked up. The
 * secret-rotation worker is the same loop over rotations, and the housekeeping worker the same loop
 * over a periodic sweep (ended access tokens). */
#ifndef CF_SYNC_WORKER_H
#define CF_SYNC_WORKER_H

#include "core/core.h"

struct cf_sync_worker;

/* Starts the worker thread and sets core->sync_wake to wake it. core is borrowed and must outlive
 * the worker. CF_EINTERNAL when the thread cannot start. */
enum cf_rc cf_sync_worker_start(struct cf_core *core, struct cf_sync_worker **out,
                                struct cf_err *err);

/* Starts the secret-rotation worker (docs/rotation.md): the same loop over due rotations
 * (core/rotations.h cf_rotations_execute: scheduled ones, retries whose backoff ran out, steps
 * that waited, and rotations a stopped server left in progress, once their claim's lease ran
 * out), woken by core->rotation_wake, which it sets. Stop it with cf_sync_worker_stop. */
enum cf_rc cf_rotation_worker_start(struct cf_core *core, struct cf_sync_worker **out,
                                    struct cf_err *err);

/* Starts the lease revocation worker (docs/dynamic-secrets.md): the same loop over the leases of
 * dynamic secrets whose end has come (core/leases.h cf_leases_execute: also those that ended while
 * no server ran, and retries whose backoff ran out), woken by core->lease_wake, which it sets. Stop
 * it with cf_sync_worker_stop. */
enum cf_rc cf_lease_worker_start(struct cf_core *core, struct cf_sync_worker **out,
                                 struct cf_err *err);

/* Starts the housekeeping worker: every five minutes on the server's clock (at once on start),
 * it deletes the access tokens that ended over an hour ago (auth/token.h cf_token_prune), in
 * bounded batches; a backlog is worked off a pass per second. Several servers sharing a store may
 * all run it. Stop it with cf_sync_worker_stop. */
enum cf_rc cf_prune_worker_start(struct cf_core *core, struct cf_sync_worker **out,
                                 struct cf_err *err);

/* Starts the audit archiver (docs/audit.md "Retention"): every quarter of --audit-retention
 * (between 1 s and 60 s, on the server's clock, at once on start) it archives the audit events
 * older than the retention (core/auditlog.h cf_audit_log_archive), a file at a time; a backlog is
 * worked off a file per poll. Several servers sharing a store may all run it: the store's claim
 * lets one archive at a time. Does nothing when the retention is off. Stop it with
 * cf_sync_worker_stop. */
enum cf_rc cf_archive_worker_start(struct cf_core *core, struct cf_sync_worker **out,
                                   struct cf_err *err);

/* This worker's claim owner (a UUID per process), for runs started elsewhere on this server. */
const char *cf_sync_worker_owner(const struct cf_sync_worker *worker);

/* Stops the thread (after the run in progress) and frees the worker; clears the wake hook it set.
 * NULL is a no-op. */
void cf_sync_worker_stop(struct cf_sync_worker *worker);

#endif
