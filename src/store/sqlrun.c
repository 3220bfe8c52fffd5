/* The runner of the store's domain files (sqlrun.h) and the row helpers drivers share (sqldb.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqldb.h"
#include "store/sqlrun.h"
#include "util/banned.h"

/* Cache slots handed out so far, across every statement of the process. */
static atomic_int slots_taken;

/* stmt's cache slot, taken on its first run: an id below SQL_STMT_MAX, or -1 (uncached) once they
 * are all taken. Two threads racing on a new statement agree on the one slot stored first. */
static int stmt_slot(struct sql_stmt *stmt)
{
    int slot = atomic_load_explicit(&stmt->slot, memory_order_acquire);
    if (slot != 0)
        return slot > 0 ? slot - 1 : -1;
    int want = -1;
    if (atomic_load_explicit(&slots_taken, memory_order_relaxed) < SQL_STMT_MAX) {
        int n = atomic_fetch_add_explicit(&slots_taken, 1, memory_order_relaxed);
        if (n < SQL_STMT_MAX)
            want = n + 1;
    }
    int expected = 0;
    if (!atomic_compare_exchange_strong_explicit(&stmt->slot, &expected, want, memory_order_acq_rel,
                                                 memory_order_acquire))
        want = expected; /* another thread stored one first */
    return want > 0 ? want - 1 : -1;
}

enum cf_rc sql_conn_get(struct cf_store *base, struct db_conn **out, struct cf_err *err)
{
    struct sql_store *st = sql_store_of(base);
    return st->drv->conn_get(st, out, err);
}

enum cf_rc sql_run(struct db_conn *c, struct sql_stmt *stmt, const struct sq_arg *args,
                   size_t n_args, row_fn on_row, void *ctx, int64_t *count, struct cf_err *err)
{
    return c->st->drv->run(c, stmt_slot(stmt), stmt->sql, args, n_args, on_row, ctx, count, err);
}

enum cf_rc sql_exec(struct db_conn *c, struct sql_stmt *stmt, const struct sq_arg *args,
                    size_t n_args, int64_t *changes, struct cf_err *err)
{
    return sql_run(c, stmt, args, n_args, NULL, NULL, changes, err);
}

enum cf_rc sql_exec_in_tx(struct cf_store *base, struct sql_stmt *stmt, const struct sq_arg *args,
                          size_t n_args, int64_t *changes, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, stmt, args, n_args, changes, err);
    return sql_tx_end(c, rc, err);
}

struct first_row {
    row_fn read;
    void *out;
    bool found;
};

static enum cf_rc read_first(const struct db_row *row, void *ctx)
{
    struct first_row *first = ctx;
    if (first->found) /* queries by a unique key: never more than one row */
        return CF_OK;
    first->found = true;
    return first->read(row, first->out);
}

enum cf_rc sql_get_row(struct db_conn *c, struct sql_stmt *stmt, const struct sq_arg *args,
                       size_t n_args, row_fn read, void *out, bool *found, struct cf_err *err)
{
    struct first_row first = {.read = read, .out = out};
    enum cf_rc rc = sql_run(c, stmt, args, n_args, read_first, &first, NULL, err);
    *found = first.found;
    return rc;
}

enum cf_rc sql_get_required(struct db_conn *c, struct sql_stmt *stmt, const struct sq_arg *args,
                            size_t n_args, row_fn read, void *out, const char *what,
                            const char *name, struct cf_err *err)
{
    bool found;
    enum cf_rc rc = sql_get_row(c, stmt, args, n_args, read, out, &found, err);
    if (rc == CF_OK && !found)
        rc = cf_err_set(err, CF_ENOTFOUND, "%s '%s' not found", what, name);
    return rc;
}

enum cf_rc sql_get_one(struct cf_store *base, struct sql_stmt *stmt, const struct sq_arg *args,
                       size_t n_args, row_fn read, void *out, const char *what, const char *name,
                       struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_conn_get(base, &c, err);
    if (rc == CF_OK)
        rc = sql_get_required(c, stmt, args, n_args, read, out, what, name, err);
    return rc;
}

enum cf_rc sql_collect(const struct db_row *row, void *ctx)
{
    struct sql_collector *col = ctx;
    if (col->n == col->cap) {
        size_t cap = col->cap ? col->cap * 2 : 16;
        if (cap > SIZE_MAX / col->size)
            return CF_ENOMEM;
        void *grown = realloc(col->items, cap * col->size);
        if (!grown)
            return CF_ENOMEM;
        col->items = grown;
        col->cap = cap;
    }
    void *item = (char *)col->items + col->n * col->size;
    memset(item, 0, col->size);
    col->n++;
    return col->read(row, item);
}

enum cf_rc sql_collect_all(struct cf_store *base, struct sql_stmt *stmt, const struct sq_arg *args,
                           size_t n_args, struct sql_collector *col, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_conn_get(base, &c, err);
    if (rc == CF_OK)
        rc = sql_run(c, stmt, args, n_args, sql_collect, col, NULL, err);
    return rc;
}

enum cf_rc sql_tx_begin_locked(struct cf_store *base, enum db_lock lock, struct db_conn **out,
                               struct cf_err *err)
{
    enum cf_rc rc = sql_conn_get(base, out, err);
    if (rc == CF_OK)
        rc = (*out)->st->drv->begin(*out, lock, err);
    return rc;
}

enum cf_rc sql_tx_begin(struct cf_store *base, struct db_conn **out, struct cf_err *err)
{
    return sql_tx_begin_locked(base, DB_LOCK_WRITE, out, err);
}

enum cf_rc sql_tx_end(struct db_conn *c, enum cf_rc rc, struct cf_err *err)
{
    rc = c->st->drv->end(c, rc, err);
    /* what the transaction changed may have bumped the change counter */
    sql_scope_changed(c->st);
    return rc;
}

/* ---- combined writes ---- */

static struct sql_stmt ST_SAVEPOINT = SQL_STMT("SAVEPOINT one_job");

static struct sql_stmt ST_RELEASE = SQL_STMT("RELEASE one_job");

static struct sql_stmt ST_ROLLBACK_TO = SQL_STMT("ROLLBACK TO one_job");

/* Runs one job under its savepoint. *broken: its failure also ended the transaction (SQLite rolls
 * the whole transaction back on some errors: I/O, out of memory), so nothing of the batch stands.
 */
static enum cf_rc run_job(struct db_conn *c, const struct sql_batch_ops *ops, struct sql_job *job,
                          bool *broken)
{
    enum cf_rc rc = sql_exec(c, &ST_SAVEPOINT, NO_ARGS, NULL, &job->err);
    if (rc != CF_OK) {
        *broken = true;
        return rc;
    }
    rc = ops->run(c, job, &job->err);
    if (rc != CF_OK) {
        if (sql_exec(c, &ST_ROLLBACK_TO, NO_ARGS, NULL, NULL) != CF_OK) {
            *broken = true;
            return rc;
        }
        if (ops->undone)
            ops->undone(c, job);
    }
    if (sql_exec(c, &ST_RELEASE, NO_ARGS, NULL, NULL) != CF_OK)
        *broken = true;
    return rc;
}

/* Gives every job of batch the outcome rc, err. */
static void fail_all(struct sql_job *batch, enum cf_rc rc, const struct cf_err *err)
{
    for (struct sql_job *job = batch; job; job = job->next) {
        job->rc = rc;
        job->err = *err;
    }
}

/* The most jobs one transaction takes: it holds the write lock, which others wait for too. */
#define BATCH_MAX 64

/* The jobs queued on cb since the batch was taken (NULL: none), taken into it. */
static struct sql_job *take_queued(struct sql_combiner *cb)
{
    pthread_mutex_lock(&cb->lock);
    struct sql_job *more = cb->queue;
    cb->queue = NULL;
    cb->tail = &cb->queue;
    pthread_mutex_unlock(&cb->lock);
    return more;
}

/* Runs batch in one transaction. Jobs that queue on cb while it runs join it before its commit (up
 * to BATCH_MAX in all), appended to batch: they would wait for the write lock anyway, and share
 * the commit instead. */
static void run_batch(struct sql_store *st, struct sql_combiner *cb,
                      const struct sql_batch_ops *ops, struct sql_job *batch)
{
    size_t taken = 0;
    struct db_conn *c = NULL;
    struct cf_err err;
    bool broken = false;
    cf_err_clear(&err);
    enum cf_rc rc = sql_tx_begin(&st->base, &c, &err);
    if (rc != CF_OK) {
        fail_all(batch, rc, &err);
        return;
    }
    if (ops->prepare)
        ops->prepare(c, batch);
    for (struct sql_job *job = batch; job && !broken; job = job->next) {
        cf_err_clear(&job->err);
        job->rc = run_job(c, ops, job, &broken);
        if (broken) {
            rc = job->rc != CF_OK ? job->rc : CF_ESTORE;
            err = job->err;
            if (job->rc == CF_OK)
                cf_err_set(&err, CF_ESTORE, "a write's savepoint could not be released");
        }
        if (++taken < BATCH_MAX && !job->next && !broken)
            job->next = take_queued(cb);
    }
    if (broken) {
        struct cf_err ignored;
        sql_tx_end(c, rc, &ignored); /* rolls back what is left and gives the lock back */
        fail_all(batch, rc, &err);
        return;
    }
    rc = sql_tx_end(c, CF_OK, &err);
    for (struct sql_job *job = batch; rc != CF_OK && job; job = job->next) {
        if (job->rc == CF_OK) {
            job->rc = rc;
            job->err = err;
        }
    }
}

/* Runs job alone in a transaction of its own, which inside a shared write transaction is a
 * savepoint: a failure rolls all of it back (what prepare did too, so undone has nothing to give
 * back), and the job needs no savepoint of its own. */
static enum cf_rc run_alone(struct sql_store *st, const struct sql_batch_ops *ops,
                            struct sql_job *job)
{
    struct db_conn *c = NULL;
    cf_err_clear(&job->err);
    enum cf_rc rc = sql_tx_begin(&st->base, &c, &job->err);
    if (rc != CF_OK)
        return rc;
    job->next = NULL;
    if (ops->prepare)
        ops->prepare(c, job);
    rc = ops->run(c, job, &job->err);
    struct cf_err ignored;
    enum cf_rc end = sql_tx_end(c, rc, rc == CF_OK ? &job->err : &ignored);
    return rc != CF_OK ? rc : end;
}

enum cf_rc sql_combine(struct sql_store *st, struct sql_combiner *cb,
                       const struct sql_batch_ops *ops, struct sql_job *job, struct cf_err *err)
{
    bool led = false; /* this thread ran the batch that wrote job */
    if (st->drv->batch_state && st->drv->batch_state(st) != SQL_BATCH_NONE) {
        /* This thread's shared write transaction (cf_store_batch_begin) holds the write lock:
         * the job runs in it, at once. */
        job->rc = run_alone(st, ops, job);
        if (job->rc != CF_OK && err)
            *err = job->err;
        return job->rc;
    }
    /* A read scope's snapshot is given up before waiting, not after: a snapshot held while this
     * thread waits for another's commit keeps every checkpoint from reaching the log's end, and
     * with writer threads always waiting in turn, SQLite would never start the log over. */
    cf_store_read_refresh(&st->base);
    job->next = NULL;
    job->done = false;
    pthread_mutex_lock(&cb->lock);
    *cb->tail = job;
    cb->tail = &job->next;
    while (!job->done) {
        if (cb->committing) {
            pthread_cond_wait(&cb->done, &cb->lock);
            continue;
        }
        struct sql_job *batch = cb->queue;
        cb->queue = NULL;
        cb->tail = &cb->queue;
        cb->committing = true;
        pthread_mutex_unlock(&cb->lock);
        run_batch(st, cb, ops, batch);
        pthread_mutex_lock(&cb->lock);
        /* Each job's thread may return (and its stack go) once done is set and the lock is free. */
        for (struct sql_job *j = batch; j;) {
            struct sql_job *next = j->next;
            led |= j == job;
            j->done = true;
            j = next;
        }
        cb->committing = false;
        pthread_cond_broadcast(&cb->done);
    }
    pthread_mutex_unlock(&cb->lock);
    enum cf_rc rc = job->rc;
    if (!led) {
        /* Another thread's transaction wrote this job: this thread's cached counters may be older
         * than the commit. */
        cf_store_read_refresh(&st->base);
        /* A caller whose commits are synced before they return keeps that when a thread that
         * defers its syncs committed the batch. */
        if (rc == CF_OK && !(st->drv->sync_deferred && st->drv->sync_deferred(st)))
            rc = cf_store_sync_barrier(&st->base, &job->err);
    }
    if (rc != CF_OK && err)
        *err = job->err;
    return rc;
}

enum cf_rc db_row_text(const struct db_row *row, int i, char *dst, size_t size)
{
    size_t len = 0;
    const char *text = db_row_bytes(row, i, &len);
    if (!text)
        len = 0;
    if (len < size) {
        memcpy(dst, text ? text : "", len);
        dst[len] = '\0';
        return CF_OK;
    }
    if (size)
        dst[0] = '\0';
    if (row->fault && row->fault->rc == CF_OK)
        cf_err_set(row->fault, CF_ESTORE,
                   "column '%.64s' holds %zu bytes of text, more than the %zu this coffer reads",
                   row->ops->name(row, i), len, size ? size - 1 : 0);
    return CF_ESTORE;
}

enum cf_rc sql_params_check(size_t n_args, struct cf_err *err)
{
    if (n_args <= SQL_PARAMS_MAX)
        return CF_OK;
    return cf_err_set(err, CF_ESTORE,
                      "a statement with %zu parameters, more than the %d one may bind", n_args,
                      SQL_PARAMS_MAX);
}

enum cf_rc db_row_done(const struct db_row *row, enum cf_rc rc, struct cf_err *err)
{
    if (rc == CF_OK)
        rc = db_row_status(row);
    if (rc == CF_OK)
        return CF_OK;
    if (row->fault && row->fault->rc != CF_OK)
        return cf_err_set(err, row->fault->rc, "%s", row->fault->msg);
    if (rc == CF_ENOMEM)
        return cf_err_set(err, rc, "out of memory reading the database");
    return cf_err_set(err, rc, "the database holds a value this coffer cannot read");
}

enum cf_rc sql_col_strdup(const struct db_row *row, int i, char **out)
{
    size_t len;
    const char *text = db_row_bytes(row, i, &len);
    if (!text)
        len = 0;
    *out = malloc(len + 1);
    if (!*out)
        return CF_ENOMEM;
    if (text)
        memcpy(*out, text, len);
    (*out)[len] = '\0';
    return CF_OK;
}

enum cf_rc sql_col_blob(const struct db_row *row, int i, uint8_t **out, size_t *len)
{
    const void *blob = db_row_bytes(row, i, len);
    if (!blob)
        *len = 0;
    *out = malloc(*len ? *len : 1);
    if (!*out)
        return CF_ENOMEM;
    if (*len)
        memcpy(*out, blob, *len);
    return CF_OK;
}

enum cf_rc sql_read_int64(const struct db_row *row, void *item)
{
    *(int64_t *)item = db_row_int64(row, 0);
    return CF_OK;
}

enum cf_rc sql_read_id(const struct db_row *row, void *item)
{
    db_row_text(row, 0, item, CF_UUID_LEN);
    return db_row_status(row);
}

enum cf_rc sql_count_row(const struct db_row *row, void *ctx)
{
    (void)row;
    ++*(int64_t *)ctx;
    return CF_OK;
}

enum cf_rc sql_read_ids(const struct db_row *row, void *ctx)
{
    struct sql_ids *r = ctx;
    if (r->n < r->limit)
        db_row_text(row, 0, r->ids[r->n++], CF_UUID_LEN);
    return db_row_status(row);
}
