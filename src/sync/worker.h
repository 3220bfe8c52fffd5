/* The secret-sync worker of `coffer server` (docs/syncs.md "Propagation"): one thread that claims
 * pending syncs in the store and runs them (core/syncs.h cf_syncs_execute), one at a time. It is
 * woken at once by a change on this server (core->sync_wake) and looks for work every second
 * otherwise, which is how changes made on other servers sharing a PostgreSQL database, retries
 * whose backoff has run out and syncs left pending by a server that stopped are picked up. */
#ifndef CF_SYNC_WORKER_H
#define CF_SYNC_WORKER_H

#include "core/core.h"

struct cf_sync_worker;

/* Starts the worker thread and sets core->sync_wake to wake it. core is borrowed and must outlive
 * the worker. CF_EINTERNAL when the thread cannot start. */
enum cf_rc cf_sync_worker_start(struct cf_core *core, struct cf_sync_worker **out,
                                struct cf_err *err);

/* This worker's claim owner (a UUID per process), for runs started elsewhere on this server. */
const char *cf_sync_worker_owner(const struct cf_sync_worker *worker);

/* Stops the thread (after the run in progress) and frees the worker; clears core->sync_wake.
 * NULL is a no-op. */
void cf_sync_worker_stop(struct cf_sync_worker *worker);

#endif
