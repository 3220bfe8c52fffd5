/* The audit log as the server keeps it (issue 6): events are recorded from request threads into a
 * bounded queue and written by one writer thread in batches (one transaction, one fsync for many
 * events), chained with the audit key (core/audit.h) and checkpointed every so often. The audit key
 * is generated on first use and stored wrapped by the root key (meta "audit_key"), so it survives
 * root key rotation when the rotation rewraps it.
 *
 * Two modes, as Vault has them:
 * - normal: recording never waits for the disk. If the store cannot take events, they wait in the
 *   queue (up to queue_max); beyond that the oldest are dropped, counted and logged, and requests go
 *   on being served;
 * - fail-closed: recording waits until the event is committed; when it cannot be, the caller gets
 *   CF_EUNAVAIL and must fail the request (503) rather than proceed unaudited.
 * Thread-safe. */
#ifndef CF_CORE_AUDITLOG_H
#define CF_CORE_AUDITLOG_H

#include "core/audit.h"
#include "crypto/keyring.h"
#include "store/store.h"

#define CF_AUDIT_KEY_META "audit_key" /* = CF_SERVER_KEY_AUDIT_META of auth/serverkey.h */
#define CF_AUDIT_KEY_LABEL "~audit"

struct cf_audit_log;

/* Called by the writer thread for every event it committed, in order (streaming sinks). */
typedef void (*cf_audit_sink_fn)(void *ctx, const struct cf_audit_event *event);

struct cf_audit_log_config {
    bool fail_closed;
    size_t queue_max;           /* events waiting at most; 0: 65536 */
    int64_t checkpoint_every;   /* events between checkpoints; 0: 1000 */
    int64_t checkpoint_ms;      /* at most this long between checkpoints when events came; 0: 60 s */
    int64_t fail_closed_wait_ms; /* how long a fail-closed record waits for its commit; 0: 5000 */
    cf_audit_sink_fn sink;      /* NULL: none */
    void (*sink_batch_end)(void *ctx); /* after the sink saw a committed batch; NULL: none */
    void *sink_ctx;
};

/* Loads (or makes, on first start) the audit key and starts the writer. store and keyring are
 * borrowed and must outlive the log. */
enum cf_rc cf_audit_log_open(struct cf_store *store, struct cf_keyring *keyring,
                             const struct cf_audit_log_config *config, struct cf_audit_log **out,
                             struct cf_err *err);

/* Writes what is queued, a last checkpoint, stops the writer and frees. NULL is a no-op. */
void cf_audit_log_close(struct cf_audit_log *log);

/* Records one event (copied; seq, hashes, id and time, when unset, are filled in). Normal mode:
 * CF_OK at once. Fail-closed mode: CF_OK once committed, CF_EUNAVAIL naming the cause otherwise. */
enum cf_rc cf_audit_record(struct cf_audit_log *log, const struct cf_audit_event *event,
                           struct cf_err *err);

/* Waits until everything recorded so far is committed (or has failed). */
void cf_audit_log_flush(struct cf_audit_log *log);

/* Signs a checkpoint over the last committed event now (after a flush). CF_ENOTFOUND when the log
 * is empty. */
enum cf_rc cf_audit_log_checkpoint(struct cf_audit_log *log, struct cf_err *err);

/* True in fail-closed mode. */
bool cf_audit_log_fail_closed(const struct cf_audit_log *log);

/* Events dropped in normal mode because the store could not take them. */
int64_t cf_audit_log_dropped(struct cf_audit_log *log);

/* The checkpoint public key. */
void cf_audit_log_public_key(struct cf_audit_log *log, uint8_t out[CF_AUDIT_PUBLIC_KEY_BYTES]);

/* Verifies the whole stored chain and every checkpoint (after a flush), reading in batches. */
enum cf_rc cf_audit_log_verify(struct cf_audit_log *log, struct cf_audit_report *report,
                               struct cf_err *err);

#endif
