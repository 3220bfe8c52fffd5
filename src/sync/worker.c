/* The background workers of sync/worker.h: one loop, given what it claims and runs (secret syncs,
 * secret rotations) or the housekeeping it does (pruning ended access tokens, archiving audit
 * events past the retention). */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "auth/token.h"
#include "core/auditlog.h"
#include "core/leases.h"
#include "core/rotations.h"
#include "core/syncs.h"
#include "store/store.h"
#include "sync/worker.h"
#include "util/id.h"
#include "util/log.h"
#include "util/time.h"
#include "util/banned.h"

#define POLL_MS 1000
#define DUE_BATCH 32
/* How often ended access tokens are pruned, on the server's clock (so that a test build that moves
 * its clock prunes on its next poll), and how many batches one pass deletes at most before it lets
 * the next poll go on (a backlog is worked off a pass per poll). */
#define PRUNE_EVERY_MS (5 * 60 * 1000)
#define PRUNE_BATCHES 10

/* What a worker claims and runs. */
struct job {
    const char *what; /* for the log: "secret sync" */
    enum cf_rc (*due)(struct cf_store *st, int64_t now, size_t limit, char (*ids)[CF_UUID_LEN],
                      size_t *n, struct cf_err *err);
    enum cf_rc (*execute)(struct cf_core *core, const char *id, const char *owner, bool *ran,
                          struct cf_err *err);
    /* Instead of due and execute: one round of housekeeping; true when it left work behind. */
    bool (*sweep)(struct cf_sync_worker *w);
};

static bool prune_tokens(struct cf_sync_worker *w);
static bool archive_audit(struct cf_sync_worker *w);

static const struct job syncs = {"secret sync", cf_store_syncs_due, cf_syncs_execute};
static const struct job rotations = {"secret rotation", cf_store_rotations_due,
                                     cf_rotations_execute};
static const struct job leases = {"lease revocation", cf_store_leases_due, cf_leases_execute};
static const struct job token_pruning = {"access token pruning", .sweep = prune_tokens};
static const struct job audit_archiving = {"audit archiving", .sweep = archive_audit};

struct cf_sync_worker {
    struct cf_core *core;
    const struct job *job;
    /* the core's wake hook this worker answers (core->sync_wake or core->rotation_wake) */
    void (**wake_fn)(void *ctx);
    void **wake_ctx;
    char owner[CF_UUID_LEN];
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool woken, stopping, started;
    int first_pass_ms;     /* the wait before the first pass: see start */
    int64_t next_sweep_at; /* ms on the server's clock; 0: at once */
    int64_t next_trim_at;  /* ms on the monotonic clock (housekeeping) */
};

static void worker_wake(void *ctx)
{
    struct cf_sync_worker *w = ctx;
    pthread_mutex_lock(&w->lock);
    w->woken = true;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

/* Gives the free memory of the heaps back to the kernel every TRIM_EVERY_MS: the server keeps up
 * to 16 MiB free per heap so that a burst of big answers does not fault its pages in again for
 * each one (server.c tune_malloc), and this keeps that from lasting once the burst is over. On the
 * monotonic clock: a moved test clock must not make it spin. */
#define TRIM_EVERY_MS (30 * 1000)

static void trim_heaps(struct cf_sync_worker *w)
{
    int64_t now = cf_mono_us() / 1000;
    if (now < w->next_trim_at)
        return;
    malloc_trim(0);
    w->next_trim_at = now + TRIM_EVERY_MS;
}

/* Prunes the access tokens that ended, every PRUNE_EVERY_MS (and trims the heaps); true when a
 * backlog is left. */
static bool prune_tokens(struct cf_sync_worker *w)
{
    trim_heaps(w);
    int64_t now = cf_now_ms();
    /* (A clock set back by more than the interval does not hold pruning off until it catches up.)
     */
    if (now < w->next_sweep_at && w->next_sweep_at - now <= PRUNE_EVERY_MS)
        return false;
    int64_t deleted = 0;
    bool more = false;
    struct cf_err err;
    cf_err_clear(&err);
    if (cf_token_prune(w->core->store, now, PRUNE_BATCHES, &deleted, &more, &err) != CF_OK)
        cf_log(CF_LOG_ERROR, "%s: %s", w->job->what, err.msg);
    else if (deleted > 0)
        cf_log(CF_LOG_INFO, "%s: deleted %lld access tokens that ended over an hour ago",
               w->job->what, (long long)deleted);
    if (!more)
        w->next_sweep_at = now + PRUNE_EVERY_MS;
    return more;
}

/* How often the archiver looks for events past the retention: a quarter of the retention, between
 * a second and ARCHIVE_EVERY_MAX_MS (events are archived at most that much later than due). */
#define ARCHIVE_EVERY_MAX_MS (60 * 1000)

static bool archive_audit(struct cf_sync_worker *w)
{
    int64_t now = cf_now_ms();
    if (now < w->next_sweep_at && w->next_sweep_at - now <= ARCHIVE_EVERY_MAX_MS)
        return false;
    int64_t every = cf_audit_log_retention_ms(w->core->audit) / 4;
    every = every < POLL_MS ? POLL_MS : every > ARCHIVE_EVERY_MAX_MS ? ARCHIVE_EVERY_MAX_MS : every;
    int64_t archived = 0;
    bool more = false;
    struct cf_err err;
    cf_err_clear(&err);
    if (cf_audit_log_archive(w->core->audit, w->owner, &archived, &more, &err) != CF_OK)
        cf_log(CF_LOG_ERROR, "%s: %s", w->job->what, err.msg);
    if (!more)
        w->next_sweep_at = now + every;
    return more;
}

/* Runs every due item once; true when one ran (there may be more). */
static bool pass(struct cf_sync_worker *w)
{
    if (w->job->sweep)
        return w->job->sweep(w);
    char ids[DUE_BATCH][CF_UUID_LEN];
    size_t n = 0;
    bool any = false;
    struct cf_err err;
    cf_err_clear(&err);
    if (w->job->due(w->core->store, cf_now_ms(), DUE_BATCH, ids, &n, &err) != CF_OK) {
        cf_log(CF_LOG_ERROR, "%s: %s", w->job->what, err.msg);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        bool ran = false;
        cf_err_clear(&err);
        if (w->job->execute(w->core, ids[i], w->owner, &ran, &err) != CF_OK)
            cf_log(CF_LOG_ERROR, "%s %s: %s", w->job->what, ids[i], err.msg);
        any = any || ran;
        pthread_mutex_lock(&w->lock);
        bool stopping = w->stopping;
        pthread_mutex_unlock(&w->lock);
        if (stopping)
            break;
    }
    return any;
}

static void *worker_main(void *arg)
{
    struct cf_sync_worker *w = arg;
    bool more = false;
    int wait_ms = w->first_pass_ms; /* that pass finds the work left before a restart */
    pthread_mutex_lock(&w->lock);
    while (!w->stopping) {
        if (!more && !w->woken) {
            struct timespec ts;
            cf_deadline_in(&ts, wait_ms);
            pthread_cond_timedwait(&w->wake, &w->lock, &ts);
            wait_ms = POLL_MS;
        }
        if (w->stopping)
            break;
        w->woken = false;
        pthread_mutex_unlock(&w->lock);
        more = pass(w);
        /* Between passes the worker holds no connection: the idle workers share one. */
        if (!more)
            cf_store_idle(w->core->store);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static enum cf_rc start(struct cf_core *core, const struct job *job, void (**wake_fn)(void *ctx),
                        void **wake_ctx, struct cf_sync_worker **out, struct cf_err *err)
{
    struct cf_sync_worker *w = calloc(1, sizeof(*w));
    if (!w)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    /* The workers of one server start together; each makes its first pass a fifth of a poll
     * after the previous one's, so that their passes (a few hundred microseconds when there is
     * nothing to do) do not meet and one store connection serves them all in turn
     * (cf_store_idle). The first waits a tenth of a poll: by then the server's start, which
     * hands them its connection when it is done, has ended. A wake-up (work made on this server)
     * runs a pass at once. */
    static atomic_int started;
    w->first_pass_ms = atomic_fetch_add(&started, 1) % 5 * (POLL_MS / 5) + POLL_MS / 10;
    w->core = core;
    w->job = job;
    w->wake_fn = wake_fn;
    w->wake_ctx = wake_ctx;
    cf_uuid_new(w->owner);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        cf_sync_worker_stop(w);
        return cf_err_set(err, CF_EINTERNAL, "cannot start the %s thread", job->what);
    }
    w->started = true;
    if (wake_fn) {
        *wake_ctx = w;
        *wake_fn = worker_wake;
    }
    *out = w;
    return CF_OK;
}

enum cf_rc cf_sync_worker_start(struct cf_core *core, struct cf_sync_worker **out,
                                struct cf_err *err)
{
    return start(core, &syncs, &core->sync_wake, &core->sync_wake_ctx, out, err);
}

enum cf_rc cf_rotation_worker_start(struct cf_core *core, struct cf_sync_worker **out,
                                    struct cf_err *err)
{
    return start(core, &rotations, &core->rotation_wake, &core->rotation_wake_ctx, out, err);
}

enum cf_rc cf_lease_worker_start(struct cf_core *core, struct cf_sync_worker **out,
                                 struct cf_err *err)
{
    return start(core, &leases, &core->lease_wake, &core->lease_wake_ctx, out, err);
}

enum cf_rc cf_prune_worker_start(struct cf_core *core, struct cf_sync_worker **out,
                                 struct cf_err *err)
{
    return start(core, &token_pruning, NULL, NULL, out, err);
}

enum cf_rc cf_archive_worker_start(struct cf_core *core, struct cf_sync_worker **out,
                                   struct cf_err *err)
{
    return start(core, &audit_archiving, NULL, NULL, out, err);
}

const char *cf_sync_worker_owner(const struct cf_sync_worker *w)
{
    return w->owner;
}

void cf_sync_worker_stop(struct cf_sync_worker *w)
{
    if (!w)
        return;
    if (w->wake_ctx && *w->wake_ctx == w) {
        *w->wake_fn = NULL;
        *w->wake_ctx = NULL;
    }
    if (w->started) {
        pthread_mutex_lock(&w->lock);
        w->stopping = true;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
    }
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
