/* The audit log as the server keeps it: events are recorded from request threads into a
 * bounded queue and written by one writer thread in batches (one transaction, one fsync for many
 * events), chained with the audit key (core/audit.h) and checkpointed every so often. The audit key
 * is generated on first use and stored wrapped by the root key (meta "audit_key"), so it survives
 * root key rotation when the rotation rewraps it.
 *
 * Two modes, as Vault has them:
 * - normal: recording never waits for the disk. If the store cannot take events, they wait in the
 *   queue (up to queue_max); beyond that the oldest are dropped, counted and logged, and requests
 * go on being served;
 * - fail-closed: recording waits until the event is committed; when it cannot be, the caller gets
 *   CF_EUNAVAIL and must fail the request (503) rather than proceed unaudited.
 *
 * The head (docs/audit.md "The head"): with every checkpoint the log signs a head over the same
 * event and keeps it outside the database, in the head file (atomically replaced, mode 0600) and in
 * every stream, so that cutting the end of the log from the database (events and checkpoints) is
 * still found. The head file is evidence: it is only replaced by a head that extends it. When the
 * store contradicts it at start (or it is missing while the store holds events, or its signature
 * is wrong), it is kept as it is, the server logs the fact, and verification reports it; an
 * operator's explicit checkpoint writes a new one only once the old file has been moved away.
 * Thread-safe. */
#ifndef CF_CORE_AUDITLOG_H
#define CF_CORE_AUDITLOG_H

#include "core/audit.h"
#include "crypto/keyring.h"
#include "store/store.h"

#define CF_AUDIT_KEY_META "audit_key" /* = CF_SERVER_KEY_AUDIT_META of crypto/serverkey.h */
#define CF_AUDIT_KEY_LABEL "~audit"
#define CF_AUDIT_HEAD_FILE "audit-head.json" /* in the data directory */

struct cf_audit_log;

/* Called by the writer thread for every event it committed, in order (streaming sinks). */
typedef void (*cf_audit_sink_fn)(void *ctx, const struct cf_audit_event *event);

struct cf_audit_log_config {
    bool fail_closed;
    size_t queue_max;            /* events waiting at most; 0: 8192 */
    int64_t checkpoint_every;    /* events between checkpoints; 0: 1000 */
    int64_t checkpoint_ms;       /* at most this long between checkpoints when events came, also
                                  * when no event follows them; 0: 10 s */
    int64_t fail_closed_wait_ms; /* how long a fail-closed record waits for its commit; 0: 5000 */
    /* How long a record waits for room in a full queue while the store takes events (the writer
     * is merely behind) before the oldest waiting event is dropped; 0: 1000. */
    int64_t full_wait_ms;
    cf_audit_sink_fn sink;             /* NULL: none */
    void (*sink_batch_end)(void *ctx); /* after the sink saw a committed batch; NULL: none */
    /* After each checkpoint: the signed head. NULL: none. The sinks are never called from two
     * threads at once. */
    void (*sink_head)(void *ctx, const struct cf_audit_checkpoint *head);
    void *sink_ctx;
    const char *head_path; /* the head file (copied); NULL: none (the head is kept in memory) */
    /* Retention (docs/audit.md "Retention"): events older than this are archived into
     * archive_dir (copied) by cf_audit_log_archive and removed from the store. 0: kept forever. */
    int64_t retention_ms;
    const char *archive_dir;
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

/* Waits until everything recorded so far is committed (or has failed), then refreshes the calling
 * thread's read scope of the store (cf_store_read_refresh) so that its next read sees it. */
void cf_audit_log_flush(struct cf_audit_log *log);

/* The stored events filter selects (filter borrowed), oldest first, after a flush so that what was
 * recorded before the call is listed, their text UTF-8 ('?' for other bytes, which only events
 * recorded by an older Coffer hold): for showing, not for verifying. Release *out with
 * cf_audit_event_list_release. */
enum cf_rc cf_audit_log_list(struct cf_audit_log *log, const struct cf_audit_filter *filter,
                             struct cf_audit_event_list *out, struct cf_err *err);

/* Signs a checkpoint over the last committed event now (after a flush), and its head. The
 * operator's act: a missing head file is written anew (a head file the store contradicts is not
 * replaced). CF_ENOTFOUND when the log is empty. */
enum cf_rc cf_audit_log_checkpoint(struct cf_audit_log *log, struct cf_err *err);

/* One archiving run (core/auditarchive.h) over the events older than the retention, as owner
 * (the claim's owner: a UUID per process). *archived receives how many events went (0 when the
 * retention is off, nothing was due, or another server holds the claim); *more is true when more
 * are due at once. Logs what it did. */
enum cf_rc cf_audit_log_archive(struct cf_audit_log *log, const char *owner, int64_t *archived,
                                bool *more, struct cf_err *err);

/* The retention in milliseconds (0: off). */
int64_t cf_audit_log_retention_ms(const struct cf_audit_log *log);

/* True in fail-closed mode. */
bool cf_audit_log_fail_closed(const struct cf_audit_log *log);

/* Events dropped in normal mode because the store could not take them. */
int64_t cf_audit_log_dropped(struct cf_audit_log *log);

/* The events recorded but not yet committed (*waiting, those the writer holds included) and how
 * long the oldest of them has waited (*oldest_ms; 0 when none waits): the writer's lag. */
void cf_audit_log_backlog(struct cf_audit_log *log, int64_t *waiting, int64_t *oldest_ms);
/* The checkpoint public key. */
void cf_audit_log_public_key(struct cf_audit_log *log, uint8_t out[CF_AUDIT_PUBLIC_KEY_BYTES]);

/* A head the operator kept (a copy of the head file, a record of a stream, a noted SEQ:HASH). */
struct cf_audit_anchor {
    struct cf_audit_checkpoint head; /* time_us 0: unknown */
    bool is_signed;                  /* head.signature is set: it is checked */
};

/* Verifies the whole stored chain and every checkpoint (after a flush), reading in batches, then
 * compares the log with the head file, the last head this server wrote, and the n anchors
 * (borrowed; reordered, highest seq first). A missing head file is a finding when the log has
 * events. When events were archived, the chain is verified from the stored anchor (its signature
 * checked: bad-head when it does not verify), and heads and checkpoints over archived events are
 * left to the archive files (`coffer audit verify --archive`). */
enum cf_rc cf_audit_log_verify(struct cf_audit_log *log, struct cf_audit_anchor *anchors, size_t n,
                               struct cf_audit_report *report, struct cf_err *err);

#endif
