/* Internal to src/store: the SQL drivers under the store's operations. The operations of store.h
 * are written once, as SQL with row readers, in domain files (meta.c, tree.c, secrets.c,
 * identities.c, tokens.c, memberships.c, notifications.c, audit.c, copy.c, connections.c,
 * syncs.c), each statement beside the code that runs it and run through sqlrun.h; a driver
 * (sqlite.c, postgres.c) runs those statements on its database: it owns connections, binding,
 * transactions and error mapping. Nothing outside src/store includes this header.
 *
 * The SQL of the table is written for SQLite and PostgreSQL alike: ?N parameters (the PostgreSQL
 * driver rewrites them to $N), integers 0/1 for booleans, ON CONFLICT upserts, no dialect
 * functions. */
#ifndef CF_STORE_SQLDB_H
#define CF_STORE_SQLDB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

/* Cached statements have ids below this (a slot each, taken on first run, see sqlrun.h): drivers
 * size their statement caches by it. */
#define SQL_STMT_MAX 256

/* The most parameters a statement may bind: drivers size their parameter arrays by it and refuse
 * a statement with more (CF_ESTORE), as does a store copy for a table with more columns. */
#define SQL_PARAMS_MAX 48

/* One bound parameter; built with the A_* macros of sqlrun.h, passed as ARGS(...). */
struct sq_arg {
    char type; /* 't' text, 'n' text with "" bound as NULL, 'i' integer, 'b' blob, 'B' blob with
                  an empty one bound as NULL */
    const char *text;
    int64_t num;
    const void *blob;
    size_t len;
};

/* The current row of a query, read through db_row_int64 / db_row_bytes. */
struct db_row;
struct db_row_ops {
    /* Column i as an integer (0 for NULL). */
    int64_t (*int64)(const struct db_row *row, int i);
    /* Column i's bytes (text or blob) and their length; NULL for SQL NULL. Text is NUL-terminated.
     */
    const void *(*bytes)(const struct db_row *row, int i, size_t *len);
    /* Column i's name as the query returned it, for error messages. */
    const char *(*name)(const struct db_row *row, int i);
};
struct db_row {
    const struct db_row_ops *ops;
    void *handle; /* the driver's statement or result */
    int index;    /* the row within a result, for drivers that need it */
    /* The first value a reader could not take (db_row_text), rc CF_OK while none: set up by the
     * driver, which stops at it, so that its message reaches the caller of run. */
    struct cf_err *fault;
};

static inline int64_t db_row_int64(const struct db_row *row, int i)
{
    return row->ops->int64(row, i);
}

static inline const void *db_row_bytes(const struct db_row *row, int i, size_t *len)
{
    return row->ops->bytes(row, i, len);
}

/* Copies text column i into dst (size bytes; "" for NULL). A longer value is not cut: dst becomes
 * "", row->fault names the column and both sizes, and CF_ESTORE is returned. */
enum cf_rc db_row_text(const struct db_row *row, int i, char *dst, size_t size);

/* CF_OK, or the rc of the row's first fault: what a reader returns once its columns are read. */
static inline enum cf_rc db_row_status(const struct db_row *row)
{
    return row->fault ? row->fault->rc : CF_OK;
}

/* For drivers: the outcome of on_row (rc) for row, with err describing a failure (the row's fault
 * when it has one). A reader that ignored db_row_text's error still fails here. */
enum cf_rc db_row_done(const struct db_row *row, enum cf_rc rc, struct cf_err *err);

/* For drivers: CF_OK when a statement may bind n_args parameters, else CF_ESTORE saying so. */
enum cf_rc sql_params_check(size_t n_args, struct cf_err *err);

/* Reads the current row into item; CF_OK, CF_ENOMEM, or CF_ESTORE for a value the store cannot
 * decode. */
typedef enum cf_rc (*row_fn)(const struct db_row *row, void *item);

struct sql_store;

/* A connection: the first member of each driver's connection struct. */
struct db_conn {
    struct sql_store *st;
};

/* What a write transaction locks against writers of other transactions (db_driver.begin). The
 * audit chain's tables are written only under DB_LOCK_AUDIT, and every other table only under
 * DB_LOCK_WRITE, so that appending audit events never waits for a secret write or a login to reach
 * the disk, nor they for it. */
enum db_lock {
    DB_LOCK_WRITE, /* everything but the audit chain */
    DB_LOCK_AUDIT, /* the audit tables (store/audit.c) */
};

/* Where this thread stands towards a shared write transaction (db_driver.batch_state). */
enum sql_batch_state {
    SQL_BATCH_NONE,  /* not in one */
    SQL_BATCH_CLEAN, /* in one that has not changed change_counters: they read as committed */
    /* in one that changed only the 'content' counter (secrets and what lists render): its value
     * is not committed yet, 'lookups' still reads as committed, and so do the rows it guards */
    SQL_BATCH_CONTENT,
    SQL_BATCH_LOOKUPS, /* in one that changed the 'lookups' counter: neither reads as committed */
};

struct db_driver {
    const char *name; /* "sqlite", "postgres" */
    /* This thread's connection (opened on first use, and reopened after the database was lost). */
    enum cf_rc (*conn_get)(struct sql_store *st, struct db_conn **out, struct cf_err *err);
    /* Runs statement id (its SQL: sql; id < 0: a one-off statement, not cached) with args bound
     * (borrowed until it returns), calling on_row(row, ctx) for each row when on_row is given;
     * *count (when non-NULL) receives the rows returned, or for a statement without on_row the rows
     * it changed. An error of on_row stops it. */
    enum cf_rc (*run)(struct db_conn *c, int id, const char *sql, const struct sq_arg *args,
                      size_t n_args, row_fn on_row, void *ctx, int64_t *count, struct cf_err *err);
    /* Begins a write transaction under lock: writers under the same lock, of every process sharing
     * the database, run one at a time, each reading the state the previous one committed. */
    enum cf_rc (*begin)(struct db_conn *c, enum db_lock lock, struct cf_err *err);
    /* Commits when rc is CF_OK, else (or when the commit fails) rolls back; returns the outcome. */
    enum cf_rc (*end)(struct db_conn *c, enum cf_rc rc, struct cf_err *err);
    /* Begins a read-only transaction whose reads all see the database as it was at one instant,
     * without holding back writers (SQLite: a WAL read transaction; PostgreSQL: REPEATABLE READ
     * READ ONLY); snapshot_end finishes it (rc passed through, as end does). */
    enum cf_rc (*snapshot_begin)(struct db_conn *c, struct cf_err *err);
    enum cf_rc (*snapshot_end)(struct db_conn *c, enum cf_rc rc, struct cf_err *err);
    /* Opens (read_begin) and closes (read_end) a read scope on this thread's connection: see
     * cf_store_read_begin in store.h. Scopes nest; the last read_end ends the scope. NULL when the
     * driver runs every read on its own (PostgreSQL: each statement takes its own snapshot outside
     * a transaction, and a BEGIN and COMMIT around them would add two round trips and save none).
     */
    void (*read_begin)(struct sql_store *st);
    void (*read_end)(struct sql_store *st);
    /* Ends the open read transaction of this thread's read scope, if any, keeping the scope: its
     * next read sees every commit made so far (see cf_store_read_refresh). NULL with read_begin. */
    void (*read_refresh)(struct sql_store *st);
    /* The change generation: a number shared by every process using the database that moves
     * whenever a commit that changed change_counters begins and again once it returned (true,
     * *out), so that while it stays the same the counters have not moved. NULL, or false, when
     * the driver keeps none: the counters are then read on every scope. */
    bool (*change_generation)(struct sql_store *st, uint64_t *out);
    /* Takes the named background-job lock when free (true in *held), keeping it until the process
     * (or its connection) ends; NULL when every process may run every job (one process per
     * database). */
    enum cf_rc (*job_lock)(struct sql_store *st, const char *job, bool *held, struct cf_err *err);
    /* Run on the destination at the end of a store copy (cf_store_copy), inside its transaction:
     * what the dialect needs after rows arrived with their keys (PostgreSQL: sequences). NULL:
     * none. */
    const char *after_copy_sql;
    /* Deferred commits (cf_store_sync_* of store.h); NULL when the driver syncs every commit
     * itself (PostgreSQL). */
    bool (*sync_defer)(struct sql_store *st, bool on);
    bool (*sync_unlocked)(struct sql_store *st);
    uint64_t (*sync_ticket)(struct sql_store *st);
    void (*sync_notify)(struct sql_store *st, struct cf_store_sync_wait *w);
    void (*sync_counts)(struct sql_store *st, uint64_t *commits, uint64_t *syncs);
    /* Whether this thread's commits return before they are synced (cf_store_sync_defer). */
    bool (*sync_deferred)(struct sql_store *st);
    /* Shared write transactions (cf_store_batch_begin, store.h): batch_begin opens one on this
     * thread's connection, under DB_LOCK_WRITE; until batch_end commits it, this thread's begin
     * and end open and close savepoints inside it, and read scopes read inside it. batch_state
     * says whether this thread is in one (SQL_BATCH_NONE when not). NULL: no shared transactions
     * (PostgreSQL: a commit is a round trip whatever it holds, and its own group commit shares the
     * syncs). */
    enum cf_rc (*batch_begin)(struct sql_store *st, struct cf_err *err);
    enum cf_rc (*batch_end)(struct sql_store *st, struct cf_err *err);
    enum sql_batch_state (*batch_state)(struct sql_store *st);
    /* This thread goes idle (cf_store_idle): its connection may be handed to the next thread
     * without one, unless it is inside a read scope or transaction. NULL: each thread keeps its
     * own. */
    void (*idle)(struct sql_store *st);
    /* Connections open now and the most the driver opens (cf_store_pool_use); NULL: no pool. */
    void (*pool_use)(struct sql_store *st, int *open, int *size);
    /* Closes every connection and frees the driver's store (sql_store_release is called first). */
    void (*close)(struct sql_store *st);
};

struct cf_cache;

/* A write waiting to share a transaction with others (sql_combine in sqlrun.h). It lives on the
 * waiting thread's stack, first member of the caller's own job struct. */
struct sql_job {
    struct sql_job *next;
    enum cf_rc rc;
    struct cf_err err;
    bool done;
};

/* Writes of one kind queued for the next shared transaction, and whether a thread is running one.
 */
struct sql_combiner {
    pthread_mutex_t lock;
    pthread_cond_t done;
    struct sql_job *queue; /* in arrival order */
    struct sql_job **tail;
    bool committing;
};

/* The driver-independent part of a store (meta.c, tokens.c): the first member of each driver's
 * store struct. */
struct sql_store {
    struct cf_store base; /* first: a struct cf_store * is a struct sql_store * */
    const struct db_driver *drv;
    /* Writes that share one transaction (sql_combine): new access tokens (tokens.c) and secret
     * writes (secrets.c). */
    struct sql_combiner tokens;
    struct sql_combiner secret_writes;
    /* The lookup cache (meta.c, sql_cache_get): rows read on every request, valid while the
     * database's change counter keeps the value it had when they were read. */
    struct cf_cache *lookups;
    pthread_key_t scope_key; /* this thread's read scope (struct read_scope of meta.c) */
    bool scope_key_made;
};

/* Sets up the driver-independent part of a store (meta.c): backend, drv, the group-commit
 * state. */
enum cf_rc sql_store_init(struct sql_store *st, const struct db_driver *drv, struct cf_err *err);
/* Releases what sql_store_init set up. */
void sql_store_release(struct sql_store *st);

/* The lookup cache of a read scope (meta.c). Outside a read scope (cf_store_read_begin) nothing is
 * cached: background jobs and the operator's commands always read the database. Inside one, the
 * change counter (table change_counters, bumped by triggers in the transaction of every change to
 * what is cached: migration 0013) is read once, at the scope's first lookup and again after each
 * write transaction of the thread, and an entry is used only when it was stored under that same
 * value. sql_cache_get copies the entry under key into a malloc'd block the caller frees (false:
 * none); sql_cache_put stores a copy (borrowed value) under the counter value the scope read. Never
 * for secret values. */
bool sql_cache_get(struct sql_store *st, const char *key, void **value, size_t *len);
void sql_cache_put(struct sql_store *st, const char *key, const void *value, size_t len);
/* sql_cache_get of an entry of exactly size bytes, copied into out: false (out untouched) when
 * there is none or its size differs. */
bool sql_cache_get_fixed(struct sql_store *st, const char *key, void *out, size_t size);
/* A row of size bytes with one heap member (extra, extra_len bytes) kept in one entry: the caller
 * sets the member's pointer from *extra (malloc'd, NULL when extra_len is 0; the caller frees it)
 * after a get, never trusting the one stored in the row's copy. */
void sql_cache_put_with(struct sql_store *st, const char *key, const void *row, size_t size,
                        const void *extra, size_t extra_len);
bool sql_cache_get_with(struct sql_store *st, const char *key, void *row, size_t size, void **extra,
                        size_t *extra_len);
/* The key of a cached row: kind, then the parts (borrowed, NULL ends them early) joined by the
 * unit separator. false when it does not fit out (size bytes): the row is then not cached. */
bool sql_cache_key(char *out, size_t size, char kind, const char *part1, const char *part2);
/* Room for a key of two ids, or an id and a folder path. */
#define SQL_CACHE_KEY_MAX (CF_PATH_MAX + 2 * CF_UUID_LEN + 8)
/* Forgets the counter value this thread's scope read, so that its next lookup reads it again:
 * after a write transaction ends (sql_tx_end) and when the scope is refreshed. */
void sql_scope_changed(struct sql_store *st);

/* Blocks until the driver's syncer has synced ticket (a sequence number of its deferred commits,
 * not 0): CF_OK, or CF_EIO when the sync failed (meta.c; cf_store_sync_barrier and the driver's
 * cf_store_sync_unlocked commits wait through it). */
enum cf_rc sql_sync_wait(struct sql_store *st, uint64_t ticket, struct cf_err *err);

/* The migration bookkeeping statements a driver's migrate uses, run through its own run. */
enum cf_rc sql_migration_version(struct db_conn *c, int64_t *version, struct cf_err *err);
enum cf_rc sql_migration_record(struct db_conn *c, int version, const char *name,
                                struct cf_err *err);

#endif
