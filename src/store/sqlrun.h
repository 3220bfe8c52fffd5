/* Internal to src/store: what every domain file of the store (meta.c, secrets.c, connections.c,
 * ...) uses to run its SQL on the driver of sqldb.h. A domain file defines each statement beside
 * the code that runs it, as a static struct sql_stmt (SQL_STMT("SELECT ...")), and runs it with
 * sql_run, sql_get_one, sql_collect_all, ...; its writes run between sql_tx_begin and sql_tx_end,
 * the driver's write transaction, which both drivers make serial across every process sharing the
 * database. Row readers take columns with db_row_text (sqldb.h), sql_col_strdup and sql_col_blob.
 *
 * A statement gets a slot of the drivers' statement caches (below SQL_STMT_MAX) the first time it
 * runs, so no list of every statement exists; once the slots are taken, further statements run
 * uncached (prepared on each run), which is slower but correct. */
#ifndef CF_STORE_SQLRUN_H
#define CF_STORE_SQLRUN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/sqldb.h"
#include "store/store.h"
#include "util/err.h"
#include "util/id.h"

/* A statement: its SQL (static text, portable between SQLite and PostgreSQL, see sqldb.h) and its
 * cache slot: 0 until it first runs, then the slot plus one, or -1 when none was free. Define one
 * with SQL_STMT; never const, since the slot is written on first use (atomically: statements run
 * from many threads). */
struct sql_stmt {
    const char *sql;
    atomic_int slot;
};
#define SQL_STMT(text)                                                                             \
    {                                                                                              \
        .sql = (text), .slot = 0                                                                   \
    }

/* A statement built at run time (a table name of a store copy, ...): run uncached. */
#define SQL_ONCE(text)                                                                             \
    {                                                                                              \
        .sql = (text), .slot = -1                                                                  \
    }

/* Bound parameters, passed as ARGS(A_TEXT(x), A_INT(n), ...) or NO_ARGS. */
#define A_TEXT(s)                                                                                  \
    {                                                                                              \
        .type = 't', .text = (s)                                                                   \
    }
#define A_NULLABLE(s)                                                                              \
    {                                                                                              \
        .type = 'n', .text = (s)                                                                   \
    }
#define A_INT(v)                                                                                   \
    {                                                                                              \
        .type = 'i', .num = (int64_t)(v)                                                           \
    }
#define A_BLOB(p, n)                                                                               \
    {                                                                                              \
        .type = 'b', .blob = (p), .len = (n)                                                       \
    }
#define A_NULLABLE_BLOB(p, n)                                                                      \
    {                                                                                              \
        .type = 'B', .blob = (p), .len = (n)                                                       \
    }
#define ARGS(...)                                                                                  \
    (const struct sq_arg[]){__VA_ARGS__},                                                          \
        sizeof((const struct sq_arg[]){__VA_ARGS__}) / sizeof(struct sq_arg)
#define NO_ARGS NULL, 0

static inline struct sql_store *sql_store_of(struct cf_store *base)
{
    return (struct sql_store *)base;
}

/* This thread's connection to base's database. */
enum cf_rc sql_conn_get(struct cf_store *base, struct db_conn **out, struct cf_err *err);

/* Runs stmt with args bound (borrowed until it returns), calling on_row(row, ctx) for each row when
 * on_row is given. *count (when non-NULL) receives the number of rows returned, or for a statement
 * run without on_row the number of rows it changed. */
enum cf_rc sql_run(struct db_conn *c, struct sql_stmt *stmt, const struct sq_arg *args,
                   size_t n_args, row_fn on_row, void *ctx, int64_t *count, struct cf_err *err);

/* Runs a statement that returns no rows; *changes (when non-NULL) receives the rows it changed. */
enum cf_rc sql_exec(struct db_conn *c, struct sql_stmt *stmt, const struct sq_arg *args,
                    size_t n_args, int64_t *changes, struct cf_err *err);

/* One write statement in its own transaction; *changes (when non-NULL) receives the rows changed.
 */
enum cf_rc sql_exec_in_tx(struct cf_store *base, struct sql_stmt *stmt, const struct sq_arg *args,
                          size_t n_args, int64_t *changes, struct cf_err *err);

/* Reads the first row into out with read; *found says whether there was one. */
enum cf_rc sql_get_row(struct db_conn *c, struct sql_stmt *stmt, const struct sq_arg *args,
                       size_t n_args, row_fn read, void *out, bool *found, struct cf_err *err);

/* Like sql_get_row, but a missing row is CF_ENOTFOUND with the message "<what> '<name>' not
 * found". */
enum cf_rc sql_get_required(struct db_conn *c, struct sql_stmt *stmt, const struct sq_arg *args,
                            size_t n_args, row_fn read, void *out, const char *what,
                            const char *name, struct cf_err *err);

/* sql_get_required on this thread's connection, for the single-row reads of the store. */
enum cf_rc sql_get_one(struct cf_store *base, struct sql_stmt *stmt, const struct sq_arg *args,
                       size_t n_args, row_fn read, void *out, const char *what, const char *name,
                       struct cf_err *err);

/* Accumulates rows into a growing array of size-byte items (zeroed before read fills them): set
 * size and read, the rest zero. n counts an item as soon as it is allocated, so releasing n items
 * also frees a partly read one. The caller frees items, also on failure. */
struct sql_collector {
    void *items;
    size_t n, cap, size;
    row_fn read;
};

/* A row_fn for sql_run with a struct sql_collector as ctx. */
enum cf_rc sql_collect(const struct db_row *row, void *ctx);

/* Runs query stmt on this thread's connection, collecting its rows into col. */
enum cf_rc sql_collect_all(struct cf_store *base, struct sql_stmt *stmt, const struct sq_arg *args,
                           size_t n_args, struct sql_collector *col, struct cf_err *err);

/* Gets this thread's connection and begins a write transaction (under DB_LOCK_WRITE; the audit
 * chain's under DB_LOCK_AUDIT with sql_tx_begin_locked). On success the caller must end it with
 * sql_tx_end. */
enum cf_rc sql_tx_begin(struct cf_store *base, struct db_conn **out, struct cf_err *err);
enum cf_rc sql_tx_begin_locked(struct cf_store *base, enum db_lock lock, struct db_conn **out,
                               struct cf_err *err);

/* Commits when rc is CF_OK, else (or when the commit fails) rolls back. Returns the outcome. */
enum cf_rc sql_tx_end(struct db_conn *c, enum cf_rc rc, struct cf_err *err);

/* What one kind of combined write does inside the shared transaction (sql_combine). */
struct sql_batch_ops {
    /* Runs first, once for the batch (NULL: nothing). */
    void (*prepare)(struct db_conn *c, struct sql_job *batch);
    /* Writes one job, under a savepoint of its own: its failure undoes its part only. */
    enum cf_rc (*run)(struct db_conn *c, struct sql_job *job, struct cf_err *err);
    /* After a failed job's savepoint was rolled back (NULL: nothing). */
    void (*undone)(struct db_conn *c, struct sql_job *job);
};

/* Writes that arrive together share one transaction, so one commit (its lock, its log pages, its
 * sync) serves them all: the first waiting thread runs every job queued on cb so far in one
 * transaction, each under its savepoint, while the next ones queue up behind it; each caller gets
 * its own job's outcome, and its own reads see the commit afterwards. A job fails alone unless the
 * transaction itself fails (begin, commit, or an error that ends it), which fails them all. A
 * caller whose commits are synced before they return (cf_store_sync_defer off) returns once the
 * shared commit is synced too. Always use cb with the same ops. */
enum cf_rc sql_combine(struct sql_store *st, struct sql_combiner *cb,
                       const struct sql_batch_ops *ops, struct sql_job *job, struct cf_err *err);

/* malloc'd copy of text column i ("" for NULL): CF_OK or CF_ENOMEM. */
enum cf_rc sql_col_strdup(const struct db_row *row, int i, char **out);

/* malloc'd copy of blob column i (never NULL on success, even when empty): CF_OK or CF_ENOMEM. */
enum cf_rc sql_col_blob(const struct db_row *row, int i, uint8_t **out, size_t *len);

/* Row readers of a single column: an integer into an int64_t, an id (or slug) into a
 * char[CF_UUID_LEN]. */
enum cf_rc sql_read_int64(const struct db_row *row, void *item);
enum cf_rc sql_read_id(const struct db_row *row, void *item);

/* A row_fn that counts the rows into the int64_t ctx (for "does one exist" queries). */
enum cf_rc sql_count_row(const struct db_row *row, void *ctx);

/* The first column of up to limit rows, as ids: a row_fn (sql_read_ids) with this as ctx. */
struct sql_ids {
    char (*ids)[CF_UUID_LEN];
    size_t n, limit;
};
enum cf_rc sql_read_ids(const struct db_row *row, void *ctx);

#endif
