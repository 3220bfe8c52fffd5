/* The SQLite driver of the store (sqldb.h; the operations are in the domain files). One connection
 * per thread, opened on the thread's first call and kept in a pthread key whose destructor closes
 * it when the thread exits; every connection caches its prepared statements
 * (SQLITE_PREPARE_PERSISTENT) and resets them after each use. Connections run in WAL mode with
 * foreign keys on and synchronous=FULL, so a commit that returned survives kill -9 and power loss.
 * Every write runs inside BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any error): writers queue on the
 * database lock for busy_timeout_ms and readers never block. Reads run in autocommit mode (one
 * read transaction per statement) except inside a read scope (cf_store_read_begin), where they
 * share one deferred BEGIN ... COMMIT, begun at the scope's first read: a request's four to six
 * statements then take the WAL read lock (an fcntl on the -shm file and a scan of its read marks)
 * once instead of once each. A write in a scope commits the read transaction before it waits for
 * the write lock (a deferred transaction that read an older snapshot could not be upgraded, and a
 * snapshot held while waiting would keep checkpoints from reaching the log's end), and the scope's
 * next read begins a new one. Schema migrations (sqlite.h) are
 * applied at open in one such transaction, so two processes starting at once apply them exactly
 * once. Error mapping lives in db_error only.
 *
 * A thread may defer its commits' sync (cf_store_sync_defer, store.h): its connection then runs
 * with synchronous=NORMAL, so COMMIT returns once the transaction is in the write-ahead log but
 * before the log is synced, and the syncer thread syncs the log for every commit made meanwhile.
 * In WAL mode a commit's pages are all in the log file, and SQLite's checkpoints sync the log
 * before copying it into the database file (and the database file after), so one sync of the log
 * covers every commit written before it began. fsync works on the file, not on the descriptor
 * (POSIX: "all data for the open file descriptor ... the file"), so the syncer syncs the log
 * through its own connection's handle on it; keeping that connection open also keeps the log file
 * itself from being removed, which SQLite only does when its last connection closes.
 *
 * A thread may instead have its commits synced outside the write lock (cf_store_sync_unlocked:
 * the audit writer): its connection runs with synchronous=NORMAL too, and its COMMIT, once the
 * write lock is released, waits for the syncer's next sync before returning. With
 * synchronous=FULL the log's fsync runs inside COMMIT, while every other writer of the process
 * waits on the write lock; this way they go on, and one sync serves both. Answers take no ticket
 * for these commits (their thread waits for them itself), so reads do not wait for the audit
 * writer's batches.
 *
 * The same connections leave the log's checkpoints to a checkpointer thread. SQLite's automatic
 * checkpoint runs inside the COMMIT that takes the log over 1000 pages, and inside every later one
 * while the log stays that long (a checkpoint cannot copy frames a reader still uses): milliseconds
 * each, with the write lock held and every writer of the process waiting. A log hook
 * (sqlite3_wal_hook, which replaces the automatic one) only wakes the checkpointer, which runs a
 * PASSIVE checkpoint on its own connection (it waits for no reader or writer), at most once per
 * CHECKPOINT_GAP_MS.
 *
 * Every process using the database maps one shared counter, the change generation, from the file
 * beside it (DATABASE-gen; see change_generation in sqldb.h): a connection whose transaction wrote
 * to change_counters (the triggers do, for every change a cache depends on; an update hook sees
 * it) bumps the generation as its commit begins (commit hook) and again once it returned, so a
 * reader that finds the generation where it last read the counters knows they have not moved
 * without opening a read transaction. Bumping before the commit means no reader can pair the old
 * generation with the new counters; bumping after means a reader that read the counters between
 * the two bumps reads them again. */
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/sqldb.h"
#include "store/sqlite.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define DEFAULT_BUSY_TIMEOUT_MS 5000
/* The log's length in pages that wakes the checkpointer: four times SQLite's own automatic
 * threshold. Each round ends with a short pass under the write lock (two syncs, 2-4 ms) that every
 * writer waits for; under a steady stream of secret writes (about 24,000 log pages a second) a
 * round every 1,000 pages kept the lock taken 7% of the time, and the pages written again and again
 * (a folder's secrets, the counters) were copied into the database file once a round. A log of 16
 * MB is still short: SQLite's index of it stays at one or two 32 KB segments. */
#define CHECKPOINT_PAGES 4000
/* The least time between two checkpoints: while readers hold the log's start, a checkpoint leaves
 * it long, and every commit would otherwise wake the checkpointer again at once. */
#define CHECKPOINT_GAP_MS 20
/* The length in bytes a log file is cut back to when the log starts over (journal_size_limit):
 * 64 MB. */
#define LOG_SIZE_LIMIT "67108864"

/* The driver's own statements, cached after the SQL_STMT_MAX slots of the domain files'. */
enum {
    SQ_BEGIN = SQL_STMT_MAX,
    SQ_BEGIN_READ,
    SQ_COMMIT,
    SQ_ROLLBACK,
    SQ_JOURNAL_MODE,
    SQ_OPEN_LOG,
    SQ_SYNC_NORMAL,
    SQ_SYNC_FULL,
    SQ_SAVEPOINT,
    SQ_RELEASE,
    SQ_ROLLBACK_TO,
    SQ_LOOKUPS_ROW,
    SQ_STMT_COUNT
};
static const char *const own_sql[SQ_STMT_COUNT - SQL_STMT_MAX] = {
    [SQ_BEGIN - SQL_STMT_MAX] = "BEGIN IMMEDIATE",
    [SQ_BEGIN_READ - SQL_STMT_MAX] = "BEGIN",
    [SQ_COMMIT - SQL_STMT_MAX] = "COMMIT",
    [SQ_ROLLBACK - SQL_STMT_MAX] = "ROLLBACK",
    [SQ_JOURNAL_MODE - SQL_STMT_MAX] = "PRAGMA journal_mode",
    /* Any read of the database opens the connection's handle on the write-ahead log. */
    [SQ_OPEN_LOG - SQL_STMT_MAX] = "SELECT count(*) FROM sqlite_master",
    [SQ_SYNC_NORMAL - SQL_STMT_MAX] = "PRAGMA synchronous = NORMAL",
    [SQ_SYNC_FULL - SQL_STMT_MAX] = "PRAGMA synchronous = FULL",
    /* A transaction begun inside a shared write transaction (cf_store_batch_begin). */
    [SQ_SAVEPOINT - SQL_STMT_MAX] = "SAVEPOINT one_tx",
    [SQ_RELEASE - SQL_STMT_MAX] = "RELEASE one_tx",
    [SQ_ROLLBACK_TO - SQL_STMT_MAX] = "ROLLBACK TO one_tx",
    /* The row of the lookup cache's counter (migration 0013), told apart from the list cache's. */
    [SQ_LOOKUPS_ROW - SQL_STMT_MAX] = "SELECT rowid FROM change_counters WHERE name = 'lookups'",
};

/* The syncer of deferred commits (see the top of this file). Sequence numbers count deferred
 * commits from 1; begun and written move under the store's write_lock, in commit order. */
struct sq_syncer {
    pthread_mutex_t lock; /* guards the fields below but the atomics */
    pthread_cond_t wake;  /* to the syncer: a waiter or a commit came, or stop */
    pthread_cond_t ready; /* from the syncer: its connection is open, or could not be */
    pthread_t thread;
    bool launched;                 /* start was tried (once) */
    bool created;                  /* the thread exists: joined at close */
    bool running;                  /* the thread runs and syncs */
    bool start_done;               /* the thread said whether it runs */
    bool stopping;                 /* close: answer the waiters left, then end */
    bool failed;                   /* a sync failed: every wait fails from then on */
    atomic_uint_least64_t begun;   /* deferred commits whose COMMIT began */
    atomic_uint_least64_t shared;  /* the last begun whose readers' answers wait for it */
    atomic_uint_least64_t written; /* the last deferred commit whose COMMIT returned */
    atomic_uint_least64_t synced;  /* every deferred commit up to this one is on disk */
    atomic_uint_least64_t syncs;   /* syncs made */
    struct cf_store_sync_wait *waiters;
};

/* The checkpointer (see the top of this file). */
struct sq_checkpointer {
    pthread_mutex_t lock; /* guards the fields below but due */
    pthread_cond_t wake;  /* to the checkpointer: a checkpoint is due, or stop */
    pthread_t thread;
    bool launched; /* start was tried (once) */
    bool created;  /* the thread runs: joined at close, and the log hooks wake it */
    bool stopping;
    atomic_bool due; /* a commit left the log over CHECKPOINT_PAGES since the last checkpoint */
};

/* ---- store and connections ---- */

struct sq_conn;

struct sq_store {
    struct sql_store sql; /* first: a struct cf_store * is a struct sql_store * is a sq_store * */
    char *path;
    int busy_timeout_ms;
    pthread_key_t key; /* this thread's struct sq_conn */
    bool key_created;
    pthread_mutex_t lock;  /* guards conns and spare */
    struct sq_conn *conns; /* every open connection, so that close can close them all */
    /* A connection no thread holds: left by a thread going idle (sq_idle), taken by the next
     * thread without one (conn_get). Also in conns. */
    struct sq_conn *spare;
    /* Held from BEGIN to COMMIT: this process's writers queue here in turn instead of meeting
     * SQLITE_BUSY, whose retry sleeps put hundreds of milliseconds on the tail latency of writes.
     * Other processes (an operator command) are still kept apart by SQLite's own lock. */
    pthread_mutex_t write_lock;
    bool wal; /* the database is in WAL mode: commits may be deferred */
    /* the change generation, mapped from DATABASE-gen and shared by every process using the
     * database; NULL when that file could not be made (readers then always read the counters) */
    _Atomic uint64_t *generation;
    struct sq_syncer sync;       /* deferred commits; set up with the locks */
    struct sq_checkpointer ckpt; /* started with the syncer */
};

struct sq_conn {
    struct db_conn base; /* first */
    struct sq_store *st;
    sqlite3 *db;
    sqlite3_stmt *stmts[SQ_STMT_COUNT]; /* prepared on first use */
    /* Open read scopes (cf_store_read_begin): while above zero, a read outside a write
     * transaction first begins a read transaction, which the last read_end commits. */
    int read_depth;
    bool deferred; /* synchronous=NORMAL: the syncer syncs its commits */
    bool unlocked; /* synchronous=NORMAL, and sq_end waits for the syncer after the write lock */
    bool hooked;   /* its checkpoints are the checkpointer's (log_hook) */
    /* the open transaction wrote to change_counters: its commit bumps the generation */
    bool counters_written;
    /* ... and the row of the lookup cache's counter among them, or a row it cannot tell apart
     * from it (lookups_row 0: not known) */
    bool lookups_written;
    int64_t lookups_row; /* that row's rowid, read when a shared write transaction begins */
    /* In a shared write transaction (cf_store_batch_begin): write_lock is held, and begin and end
     * open and close savepoints; broken: one of them could not be closed, so the transaction can
     * only be rolled back. */
    bool batch, batch_broken;
    struct sq_conn *prev, *next;
};

static struct sq_store *sq_store_of(struct sql_store *st)
{
    return (struct sq_store *)st;
}

static struct sq_conn *sq_conn_of(struct db_conn *c)
{
    return (struct sq_conn *)c;
}

/* Finalizes the statements and closes the database; c must already be unlinked. */
static void conn_free(struct sq_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < SQ_STMT_COUNT; i++)
        sqlite3_finalize(c->stmts[i]);
    sqlite3_close(c->db);
    free(c);
}

static void conn_unlink(struct sq_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->st->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* pthread key destructor: the thread is exiting. */
static void conn_destructor(void *arg)
{
    struct sq_conn *c = arg;
    pthread_mutex_lock(&c->st->lock);
    conn_unlink(c);
    pthread_mutex_unlock(&c->st->lock);
    conn_free(c);
}

/* Maps a failed SQLite call to a cf_rc. Callers that know which row a UNIQUE or FOREIGN KEY
 * violation is about replace the message with one naming it. */
static enum cf_rc db_error(struct sq_conn *c, int code, struct cf_err *err)
{
    switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return cf_err_set(err, CF_EUNAVAIL, "the database is busy, try again");
    case SQLITE_NOMEM:
        return cf_err_set(err, CF_ENOMEM, "out of memory in the database");
    case SQLITE_CONSTRAINT:
        if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY)
            return cf_err_set(err, CF_EEXIST, "already exists (%s)", sqlite3_errmsg(c->db));
        if (code == SQLITE_CONSTRAINT_FOREIGNKEY)
            return cf_err_set(err, CF_ENOTFOUND, "a referenced row does not exist");
        return cf_err_set(err, CF_EINVAL, "rejected by the database: %s", sqlite3_errmsg(c->db));
    default:
        return cf_err_set(err, CF_ESTORE, "database error: %s", sqlite3_errmsg(c->db));
    }
}

/* ---- the change generation ---- */

static void bump_generation(struct sq_store *st)
{
    if (st->generation)
        atomic_fetch_add_explicit(st->generation, 1, memory_order_seq_cst);
}

static void on_row_change(void *arg, int op, const char *db, const char *table, sqlite3_int64 row)
{
    struct sq_conn *c = arg;
    (void)op;
    (void)db;
    if (strcmp(table, "change_counters") == 0) {
        c->counters_written = true;
        if (c->lookups_row == 0 || row == c->lookups_row)
            c->lookups_written = true;
    }
}

/* A commit begins (an explicit COMMIT or a statement's own): the first bump. */
static int on_commit(void *arg)
{
    struct sq_conn *c = arg;
    if (c->counters_written)
        bump_generation(c->st);
    return 0; /* 0: the commit goes on */
}

static void on_rollback(void *arg)
{
    struct sq_conn *c = arg;
    c->counters_written = c->lookups_written = false;
}

/* After a statement: once a transaction that wrote the counters is over (committed: rolled back
 * ones cleared the mark), the second bump. */
static void after_commit(struct sq_conn *c)
{
    if (c->counters_written && sqlite3_get_autocommit(c->db)) {
        c->counters_written = c->lookups_written = false;
        bump_generation(c->st);
    }
}

/* Maps DATABASE-gen (made 0600 if missing) into st->generation; leaves it NULL, silently, when the
 * file cannot be made or mapped (an in-memory database, a read-only directory): readers then read
 * the counters every time, as they would without it. Only in WAL mode, which already needs every
 * process using the database on one host with shared memory (the -shm file). */
static void open_generation(struct sq_store *st)
{
    char path[4096];
    if (strcmp(st->path, ":memory:") == 0 || st->path[0] == '\0' ||
        (size_t)snprintf(path, sizeof(path), "%s-gen", st->path) >= sizeof(path))
        return;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return;
    struct stat sb;
    void *map = MAP_FAILED;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
        (sb.st_size >= (off_t)sizeof(uint64_t) || ftruncate(fd, sizeof(uint64_t)) == 0))
        map = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (map != MAP_FAILED)
        st->generation = map;
}

static bool sq_change_generation(struct sql_store *base, uint64_t *out)
{
    struct sq_store *st = sq_store_of(base);
    if (!st->generation)
        return false;
    *out = atomic_load_explicit(st->generation, memory_order_seq_cst);
    return true;
}

static enum cf_rc conn_open(struct sq_store *st, struct sq_conn **out, struct cf_err *err)
{
    /* journal_size_limit: when SQLite starts the log over, it cuts a log file left longer than
     * this back to it. A reader that keeps an old snapshot (a long export, an operator command)
     * lets the log grow while it reads, and without a limit the file kept that size for as long as
     * the server ran. Well above the length the checkpointer keeps the log at under load (about
     * 25 MB), so that the file is not cut and grown again at every start over. */
    static const char pragmas[] = "PRAGMA journal_mode = WAL;"
                                  "PRAGMA foreign_keys = ON;"
                                  "PRAGMA synchronous = FULL;"
                                  "PRAGMA journal_size_limit = " LOG_SIZE_LIMIT ";";
    struct sq_conn *c;
    enum cf_rc rc;
    int sr;

    c = calloc(1, sizeof(*c));
    if (!c)
        return cf_err_set(err, CF_ENOMEM, "out of memory opening the database");
    c->st = st;
    c->base.st = &st->sql;
    /* NOMUTEX: a connection is only ever used by the thread that opened it. */
    sr = sqlite3_open_v2(st->path, &c->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (sr != SQLITE_OK) {
        rc = cf_err_set(err, sr == SQLITE_NOMEM ? CF_ENOMEM : CF_ESTORE,
                        "cannot open database '%s': %s", st->path,
                        c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(sr));
        goto fail;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, st->busy_timeout_ms);
    sqlite3_update_hook(c->db, on_row_change, c);
    sqlite3_commit_hook(c->db, on_commit, c);
    sqlite3_rollback_hook(c->db, on_rollback, c);
    /* Switching a new database to WAL needs a moment alone with it, and SQLite answers BUSY at once
     * (without its busy handler) when several processes try together: retry within the timeout. */
    for (int waited = 0;; waited += 10) {
        sr = sqlite3_exec(c->db, pragmas, NULL, NULL, NULL);
        if (((sr & 0xff) != SQLITE_BUSY && (sr & 0xff) != SQLITE_LOCKED) ||
            waited >= st->busy_timeout_ms)
            break;
        usleep(10 * 1000);
    }
    if (sr != SQLITE_OK) {
        if ((sr & 0xff) == SQLITE_BUSY || (sr & 0xff) == SQLITE_LOCKED)
            rc = db_error(c, sr, err);
        else
            rc = cf_err_set(err, CF_ESTORE, "cannot open database '%s': %s", st->path,
                            sqlite3_errmsg(c->db));
        goto fail;
    }
    pthread_mutex_lock(&st->lock);
    c->next = st->conns;
    if (st->conns)
        st->conns->prev = c;
    st->conns = c;
    pthread_mutex_unlock(&st->lock);
    if (pthread_setspecific(st->key, c) != 0) {
        pthread_mutex_lock(&st->lock);
        conn_unlink(c);
        pthread_mutex_unlock(&st->lock);
        rc = cf_err_set(err, CF_ENOMEM, "out of memory opening the database");
        goto fail;
    }
    *out = c;
    return CF_OK;
fail:
    conn_free(c);
    return rc;
}

/* This thread's connection: its own, else the spare one, else a new one. */
static enum cf_rc conn_get(struct sq_store *st, struct sq_conn **out, struct cf_err *err)
{
    *out = pthread_getspecific(st->key);
    if (*out)
        return CF_OK;
    pthread_mutex_lock(&st->lock);
    struct sq_conn *c = st->spare;
    st->spare = NULL;
    pthread_mutex_unlock(&st->lock);
    if (c && pthread_setspecific(st->key, c) == 0) {
        *out = c;
        return CF_OK;
    }
    if (c) {
        pthread_mutex_lock(&st->lock);
        st->spare = c;
        pthread_mutex_unlock(&st->lock);
    }
    return conn_open(st, out, err);
}

/* ---- running statements ---- */

static int64_t sq_row_int64(const struct db_row *row, int i)
{
    return sqlite3_column_int64(row->handle, i);
}

static const void *sq_row_bytes(const struct db_row *row, int i, size_t *len)
{
    sqlite3_stmt *s = row->handle;
    /* the type first: asking for the bytes may convert the value */
    if (sqlite3_column_type(s, i) == SQLITE_NULL) {
        *len = 0;
        return NULL;
    }
    const void *bytes = sqlite3_column_type(s, i) == SQLITE_BLOB ? sqlite3_column_blob(s, i)
                                                                 : sqlite3_column_text(s, i);
    *len = (size_t)sqlite3_column_bytes(s, i);
    return bytes ? bytes : ""; /* an empty blob comes back as NULL */
}

static const char *sq_row_name(const struct db_row *row, int i)
{
    const char *name = sqlite3_column_name(row->handle, i);
    return name ? name : "?";
}

static const struct db_row_ops sq_row_ops = {
    .int64 = sq_row_int64, .bytes = sq_row_bytes, .name = sq_row_name};

static enum cf_rc prepare(struct sq_conn *c, int id, const char *sql, sqlite3_stmt **out,
                          struct cf_err *err)
{
    if (!c->stmts[id]) {
        int sr = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->stmts[id], NULL);
        if (sr != SQLITE_OK) {
            c->stmts[id] = NULL;
            return db_error(c, sr, err);
        }
    }
    *out = c->stmts[id];
    return CF_OK;
}

static int bind_one(sqlite3_stmt *s, int index, const struct sq_arg *a)
{
    switch (a->type) {
    case 'n':
        if (!a->text || !*a->text)
            return sqlite3_bind_null(s, index);
        /* fall through */
    case 't':
        return a->text ? sqlite3_bind_text(s, index, a->text, -1, SQLITE_STATIC)
                       : sqlite3_bind_null(s, index);
    case 'i':
        return sqlite3_bind_int64(s, index, a->num);
    case 'B':
        if (a->len == 0)
            return sqlite3_bind_null(s, index);
        /* fall through */
    case 'b':
        if (a->len == 0)
            return sqlite3_bind_zeroblob(s, index, 0); /* empty, not NULL */
        return sqlite3_bind_blob64(s, index, a->blob, a->len, SQLITE_STATIC);
    default:
        CF_BUG("unknown sq_arg type");
    }
}

static enum cf_rc run_stmt(struct sq_conn *c, int id, const char *sql, const struct sq_arg *args,
                           size_t n_args, row_fn on_row, void *ctx, int64_t *count,
                           struct cf_err *err)
{
    sqlite3_stmt *s = NULL;
    int64_t rows = 0;
    enum cf_rc rc = CF_OK;
    int sr;

    rc = sql_params_check(n_args, err); /* as on PostgreSQL, though SQLite has no such limit */
    if (rc != CF_OK)
        return rc;
    if (id < 0) {
        sr = sqlite3_prepare_v2(c->db, sql, -1, &s, NULL);
        if (sr != SQLITE_OK)
            return db_error(c, sr, err);
    } else {
        rc = prepare(c, id, sql, &s, err);
        if (rc != CF_OK)
            return rc;
    }
    for (size_t i = 0; i < n_args; i++) {
        sr = bind_one(s, (int)i + 1, &args[i]);
        if (sr != SQLITE_OK) {
            rc = db_error(c, sr, err);
            goto out;
        }
    }
    struct cf_err fault = {0};
    struct db_row row = {.ops = &sq_row_ops, .handle = s, .fault = &fault};
    while ((sr = sqlite3_step(s)) == SQLITE_ROW) {
        rows++;
        if (on_row) {
            rc = db_row_done(&row, on_row(&row, ctx), err);
            if (rc != CF_OK)
                goto out;
        }
    }
    if (sr != SQLITE_DONE) {
        rc = db_error(c, sr, err);
        goto out;
    }
    if (count)
        *count = on_row ? rows : sqlite3_changes64(c->db);
out:
    if (id < 0) {
        sqlite3_finalize(s);
    } else {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    after_commit(c);
    return rc;
}

/* One of the driver's own statements. */
static enum cf_rc own(struct sq_conn *c, int id, struct cf_err *err)
{
    return run_stmt(c, id, own_sql[id - SQL_STMT_MAX], NULL, 0, NULL, NULL, NULL, err);
}

/* Whether c is inside a transaction: a write transaction (the caller holds write_lock) or a read
 * scope's read transaction. Some errors (busy, I/O, out of memory) end a transaction by
 * themselves, which this sees. */
static bool in_transaction(const struct sq_conn *c)
{
    return !sqlite3_get_autocommit(c->db);
}

/* The error of any statement after a shared write transaction ended by itself: nothing of it
 * stands, and a statement run now would run outside it. */
static enum cf_rc batch_ended(struct cf_err *err)
{
    return cf_err_set(err, CF_ESTORE,
                      "the shared write transaction this request was part of was rolled back by "
                      "an earlier error (see the server log): nothing of it was stored");
}

static enum cf_rc sq_run(struct db_conn *base, int id, const char *sql, const struct sq_arg *args,
                         size_t n_args, row_fn on_row, void *ctx, int64_t *count,
                         struct cf_err *err)
{
    struct sq_conn *c = sq_conn_of(base);
    if (c->batch && !in_transaction(c))
        return batch_ended(err);
    if (c->read_depth > 0 && !in_transaction(c)) {
        enum cf_rc rc = own(c, SQ_BEGIN_READ, err);
        if (rc != CF_OK)
            return rc;
    }
    return run_stmt(c, id, sql, args, n_args, on_row, ctx, count, err);
}

/* Ends the read scope's open read transaction, if any: it only read, so COMMIT ends it, and
 * ROLLBACK is the fallback when that fails. The caller holds no write transaction. */
static void end_read_tx(struct sq_conn *c)
{
    if (in_transaction(c) && own(c, SQ_COMMIT, NULL) != CF_OK && in_transaction(c))
        own(c, SQ_ROLLBACK, NULL);
}

static enum cf_rc sq_conn_get(struct sql_store *st, struct db_conn **out, struct cf_err *err)
{
    struct sq_conn *c;
    enum cf_rc rc = conn_get(sq_store_of(st), &c, err);
    *out = rc == CF_OK ? &c->base : NULL;
    return rc;
}

/* Hands this thread's connection over (cf_store_idle): kept as the spare when there is none, else
 * closed. Each thread's first statement parses the schema into its connection, and its page cache
 * fills: about 0.3 MB. A deferred or unlocked connection goes back to synchronous=FULL first (the
 * mode is the thread's: it asks again on its next connection); its commits have all been handed
 * to the syncer, which syncs the log, not a connection. Kept: a connection in a transaction or
 * read scope, or whose mode cannot be reset. */
static void sq_idle(struct sql_store *base)
{
    struct sq_store *st = sq_store_of(base);
    struct sq_conn *c = pthread_getspecific(st->key);
    if (!c || c->read_depth > 0 || in_transaction(c))
        return;
    if (c->deferred || c->unlocked) {
        struct cf_err err;
        if (own(c, SQ_SYNC_FULL, &err) != CF_OK)
            return;
        c->deferred = c->unlocked = false;
    }
    if (pthread_setspecific(st->key, NULL) != 0)
        return;
    /* Its page cache goes too: the next taker reads the few pages it needs from the kernel's
     * cache again, instead of an idle connection keeping every page its threads ever read (the
     * start's migrations read them all). */
    sqlite3_db_release_memory(c->db);
    pthread_mutex_lock(&st->lock);
    bool kept = !st->spare;
    if (kept)
        st->spare = c;
    else
        conn_unlink(c);
    pthread_mutex_unlock(&st->lock);
    if (!kept) {
        conn_free(c);
        malloc_trim(0);
    }
}

/* ---- transactions ---- */

/* One lock for every writer whatever the lock asked for: SQLite lets one transaction write at a
 * time. */
static enum cf_rc sq_begin(struct db_conn *base, enum db_lock lock, struct cf_err *err)
{
    struct sq_conn *c = sq_conn_of(base);
    (void)lock;
    if (c->batch)
        return in_transaction(c) ? own(c, SQ_SAVEPOINT, err) : batch_ended(err);
    /* Writes do not nest (write_lock is not recursive), so an open transaction here is a read
     * scope's: its snapshot may be older than the last commit, and SQLite cannot upgrade it. It
     * ends before the wait for the lock: a snapshot held while waiting keeps checkpoints from
     * reaching the log's end. */
    end_read_tx(c);
    pthread_mutex_lock(&c->st->write_lock);
    enum cf_rc rc = own(c, SQ_BEGIN, err);
    if (rc != CF_OK)
        pthread_mutex_unlock(&c->st->write_lock);
    return rc;
}

static enum cf_rc sq_snapshot_begin(struct db_conn *base, struct cf_err *err)
{
    struct sq_conn *c = sq_conn_of(base);
    if (c->batch)
        return cf_err_set(err, CF_EINTERNAL,
                          "a snapshot cannot begin inside a shared write transaction");
    end_read_tx(c); /* a read scope's older snapshot, if one is open */
    enum cf_rc rc = own(c, SQ_BEGIN_READ, err);
    /* SQLite takes the snapshot at the first read, not at BEGIN: read once now */
    if (rc == CF_OK)
        rc = run_stmt(c, -1, "SELECT COUNT(*) FROM meta", NULL, 0, NULL, NULL, NULL, err);
    return rc;
}

static enum cf_rc sq_snapshot_end(struct db_conn *base, enum cf_rc rc, struct cf_err *err)
{
    struct sq_conn *c = sq_conn_of(base);
    (void)err;
    end_read_tx(c);
    return rc;
}

/* Tells the syncer that a deferred commit was written, when someone waits for one. */
static void sync_kick(struct sq_syncer *sy)
{
    pthread_mutex_lock(&sy->lock);
    if (sy->waiters)
        pthread_cond_signal(&sy->wake);
    pthread_mutex_unlock(&sy->lock);
}

/* How an unlocked commit (cf_store_sync_unlocked) reaches the disk now: CF_OK when the syncer will
 * sync it (*by_syncer), or when this thread must sync the log itself because the syncer is
 * stopping; CF_EIO when a sync already failed, since a commit made now could not be made durable.
 */
static enum cf_rc unlocked_route(struct sq_syncer *sy, bool *by_syncer, struct cf_err *err)
{
    pthread_mutex_lock(&sy->lock);
    bool failed = sy->failed;
    *by_syncer = sy->running && !sy->stopping;
    pthread_mutex_unlock(&sy->lock);
    if (failed)
        return cf_err_set(err, CF_EIO,
                          "the database's recent changes could not be synced to "
                          "disk: nothing more is committed until the server restarts");
    return CF_OK;
}

/* Syncs the write-ahead log through c's own handle on it. */
static enum cf_rc sync_own_log(struct sq_conn *c, struct cf_err *err)
{
    sqlite3_file *log = NULL;
    if (sqlite3_file_control(c->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &log) != SQLITE_OK ||
        !log || !log->pMethods)
        return cf_err_set(err, CF_EIO, "the database's write-ahead log is not open");
    int sr = log->pMethods->xSync(log, SQLITE_SYNC_NORMAL);
    if (sr != SQLITE_OK)
        return cf_err_set(err, CF_EIO, "syncing the write-ahead log failed: %s",
                          sqlite3_errstr(sr));
    return CF_OK;
}

/* Ends a transaction begun inside a shared write transaction: releases its savepoint, after
 * rolling back to it when rc is not CF_OK. A savepoint that cannot be closed breaks the shared
 * transaction: its commit rolls everything back instead (sq_batch_end). */
static enum cf_rc savepoint_end(struct sq_conn *c, enum cf_rc rc, struct cf_err *err)
{
    if (!in_transaction(c))
        return rc != CF_OK ? rc : batch_ended(err);
    if (rc != CF_OK && own(c, SQ_ROLLBACK_TO, NULL) != CF_OK)
        c->batch_broken = true;
    struct cf_err release_err;
    if (own(c, SQ_RELEASE, &release_err) != CF_OK) {
        c->batch_broken = true;
        if (rc == CF_OK)
            rc = cf_err_set(err, release_err.rc, "%s", release_err.msg);
    }
    return rc;
}

static enum cf_rc sq_end(struct db_conn *base, enum cf_rc rc, struct cf_err *err)
{
    struct sq_conn *c = sq_conn_of(base);
    struct sq_syncer *sy = &c->st->sync;
    uint64_t wait_for = 0; /* an unlocked commit's sequence number */
    if (c->batch)
        return savepoint_end(c, rc, err);
    bool by_syncer = false;
    if (rc == CF_OK && c->unlocked && !c->deferred)
        rc = unlocked_route(sy, &by_syncer, err);
    if (rc == CF_OK && (c->deferred || by_syncer)) {
        /* Counted before COMMIT, which makes it visible: a reader that saw it answers after a
         * ticket that covers it. A COMMIT that fails still counts as written (nothing to sync). */
        uint64_t seq = atomic_fetch_add(&sy->begun, 1) + 1;
        if (c->deferred)
            atomic_store(&sy->shared, seq);
        rc = own(c, SQ_COMMIT, err);
        atomic_store(&sy->written, seq);
        sync_kick(sy);
        if (rc == CF_OK && c->unlocked)
            wait_for = seq;
    } else if (rc == CF_OK) {
        rc = own(c, SQ_COMMIT, err);
        if (rc == CF_OK && c->unlocked) /* synchronous=NORMAL and no syncer left */
            rc = sync_own_log(c, err);
    }
    /* Some errors (busy, I/O, out of memory) already rolled the transaction back. */
    if (rc != CF_OK && !sqlite3_get_autocommit(c->db))
        own(c, SQ_ROLLBACK, NULL);
    pthread_mutex_unlock(&c->st->write_lock);
    if (wait_for)
        rc = sql_sync_wait(&c->st->sql, wait_for, err);
    return rc;
}

/* ---- read scopes ---- */

static void sq_read_begin(struct sql_store *base)
{
    struct sq_conn *c;
    struct cf_err ignored;
    /* Lazy: the read transaction begins at the scope's first read (sq_run), so a request that
     * reads nothing costs nothing. */
    if (conn_get(sq_store_of(base), &c, &ignored) == CF_OK)
        c->read_depth++;
}

static void sq_read_end(struct sql_store *base)
{
    struct sq_conn *c = pthread_getspecific(sq_store_of(base)->key);
    if (!c || c->read_depth == 0) /* read_begin made no scope: its connection could not open */
        return;
    if (--c->read_depth == 0 && !c->batch)
        end_read_tx(c);
}

static void sq_read_refresh(struct sql_store *base)
{
    struct sq_conn *c = pthread_getspecific(sq_store_of(base)->key);
    if (c && c->read_depth > 0 && !c->batch)
        end_read_tx(c);
}

/* ---- shared write transactions ---- */

static enum cf_rc read_rowid(const struct db_row *row, void *item)
{
    *(int64_t *)item = db_row_int64(row, 0);
    return CF_OK;
}

static enum cf_rc sq_batch_begin(struct sql_store *base, struct cf_err *err)
{
    struct sq_conn *c;
    enum cf_rc rc = conn_get(sq_store_of(base), &c, err);
    if (rc != CF_OK)
        return rc;
    if (c->batch)
        return cf_err_set(err, CF_EINTERNAL, "a shared write transaction is open already");
    rc = sq_begin(&c->base, DB_LOCK_WRITE, err);
    c->batch = rc == CF_OK;
    c->batch_broken = false;
    /* Read inside the transaction, so that it names the row its writes bump; when it cannot be
     * read, every write of a counter counts as one of 'lookups'. */
    c->lookups_row = 0;
    if (c->batch)
        run_stmt(c, SQ_LOOKUPS_ROW, own_sql[SQ_LOOKUPS_ROW - SQL_STMT_MAX], NULL, 0, read_rowid,
                 &c->lookups_row, NULL, NULL);
    return rc;
}

static enum cf_rc sq_batch_end(struct sql_store *base, struct cf_err *err)
{
    struct sq_conn *c = pthread_getspecific(sq_store_of(base)->key);
    if (!c || !c->batch)
        return cf_err_set(err, CF_EINTERNAL, "no shared write transaction is open");
    c->batch = false;
    if (!c->batch_broken && in_transaction(c))
        return sq_end(&c->base, CF_OK, err);
    if (in_transaction(c))
        own(c, SQ_ROLLBACK, NULL);
    c->counters_written = c->lookups_written = false; /* rolled back: nothing to announce */
    pthread_mutex_unlock(&c->st->write_lock);
    return batch_ended(err);
}

static enum sql_batch_state sq_batch_state(struct sql_store *base)
{
    struct sq_conn *c = pthread_getspecific(sq_store_of(base)->key);
    if (!c || !c->batch)
        return SQL_BATCH_NONE;
    if (c->lookups_written)
        return SQL_BATCH_LOOKUPS;
    return c->counters_written ? SQL_BATCH_CONTENT : SQL_BATCH_CLEAN;
}

/* ---- deferred commits and their syncer ---- */

/* Moves every waiter the syncs so far answer (all of them after a failure) off the list. Called
 * with sy->lock held. */
static struct cf_store_sync_wait *take_answered(struct sq_syncer *sy)
{
    uint64_t synced = atomic_load(&sy->synced);
    struct cf_store_sync_wait *answered = NULL;
    struct cf_store_sync_wait **p = &sy->waiters;
    while (*p) {
        struct cf_store_sync_wait *w = *p;
        if (sy->failed || w->ticket <= synced) {
            *p = w->next;
            w->next = answered;
            answered = w;
        } else {
            p = &w->next;
        }
    }
    return answered;
}

/* Opens the syncer's connection and finds its handle on the write-ahead log. */
static enum cf_rc open_log(struct sq_store *st, sqlite3_file **log, struct cf_err *err)
{
    struct sq_conn *c = NULL;
    enum cf_rc rc = conn_get(st, &c, err);
    if (rc == CF_OK)
        rc = own(c, SQ_OPEN_LOG, err);
    if (rc != CF_OK)
        return rc;
    *log = NULL;
    if (sqlite3_file_control(c->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, log) != SQLITE_OK ||
        !*log || !(*log)->pMethods)
        return cf_err_set(err, CF_ESTORE, "the database's write-ahead log is not open");
    return CF_OK;
}

/* The syncer: while someone waits, syncs the log up to the last deferred commit written, then
 * answers every waiter that sync covers. Commits that come while it syncs wait for the next sync,
 * which covers all of them at once. */
static void *syncer_main(void *arg)
{
    struct sq_store *st = arg;
    struct sq_syncer *sy = &st->sync;
    sqlite3_file *log = NULL;
    struct cf_err err;
    cf_err_clear(&err);
    enum cf_rc rc = open_log(st, &log, &err);

    pthread_mutex_lock(&sy->lock);
    sy->running = rc == CF_OK;
    sy->start_done = true;
    pthread_cond_broadcast(&sy->ready);
    if (rc != CF_OK) {
        pthread_mutex_unlock(&sy->lock);
        cf_log_warn("database '%s': commits stay synced one by one: %s", st->path, err.msg);
        return NULL;
    }
    for (;;) {
        if (!sy->waiters) {
            if (sy->stopping)
                break;
            pthread_cond_wait(&sy->wake, &sy->lock);
            continue;
        }
        uint64_t target = atomic_load(&sy->written);
        if (target > atomic_load(&sy->synced) && !sy->failed) {
            pthread_mutex_unlock(&sy->lock);
            int sr = log->pMethods->xSync(log, SQLITE_SYNC_NORMAL);
            pthread_mutex_lock(&sy->lock);
            if (sr == SQLITE_OK) {
                atomic_store(&sy->synced, target);
                atomic_fetch_add(&sy->syncs, 1);
            } else {
                sy->failed = true;
                cf_log_error("database '%s': syncing the write-ahead log failed (%s): every "
                             "change from now on is refused an answer until the server restarts",
                             st->path, sqlite3_errstr(sr));
            }
        }
        struct cf_store_sync_wait *answered = take_answered(sy);
        if (answered) {
            enum cf_rc outcome = sy->failed ? CF_EIO : CF_OK;
            pthread_mutex_unlock(&sy->lock);
            while (answered) {
                struct cf_store_sync_wait *next = answered->next; /* done may free it */
                answered->next = NULL;
                answered->done(answered->arg, outcome);
                answered = next;
            }
            pthread_mutex_lock(&sy->lock);
            continue;
        }
        /* What is left waits for a commit that is still running. */
        if (atomic_load(&sy->written) <= atomic_load(&sy->synced))
            pthread_cond_wait(&sy->wake, &sy->lock);
    }
    pthread_mutex_unlock(&sy->lock);
    return NULL;
}

/* ---- the checkpointer ---- */

/* SQLite's log hook, run by COMMIT (write lock held) with the log's length in pages: wakes the
 * checkpointer when the log is long, once until its next checkpoint. */
static int log_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct sq_checkpointer *ck = arg;
    (void)db;
    (void)name;
    if (pages >= CHECKPOINT_PAGES && !atomic_exchange(&ck->due, true)) {
        pthread_mutex_lock(&ck->lock);
        pthread_cond_signal(&ck->wake);
        pthread_mutex_unlock(&ck->lock);
    }
    return SQLITE_OK;
}

/* Hands c's checkpoints to the checkpointer when it runs; else SQLite's automatic ones stay. */
static void hook_log(struct sq_store *st, struct sq_conn *c)
{
    if (c->hooked || !st->ckpt.created)
        return;
    sqlite3_wal_hook(c->db, log_hook, &st->ckpt);
    c->hooked = true;
}

/* Copies the log into the database file without the write lock, then what was committed meanwhile
 * with it: under a steady stream of commits the first pass alone never catches up with the log's
 * end, and SQLite starts the log over only once a checkpoint has reached it, so the log would grow
 * without bound. The second pass is short: the frames committed during the first, none at all
 * when nothing was. */
static void checkpoint(struct sq_store *st, struct sq_conn *c)
{
    int sr = sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (sr == SQLITE_OK) {
        int log = 0, copied = 0;
        pthread_mutex_lock(&st->write_lock);
        sr = sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
        /* The whole log is in the database file: the next commit starts it over. The commits made
         * during the first pass found the log still long and asked for another checkpoint, which
         * would find a short new log and hold the write lock for nothing. A commit that still finds
         * it long (a reader kept the log from starting over) asks again. */
        if (sr == SQLITE_OK && log == copied)
            atomic_store(&st->ckpt.due, false);
        pthread_mutex_unlock(&st->write_lock);
    }
    if (sr != SQLITE_OK && (sr & 0xff) != SQLITE_BUSY)
        cf_log_warn("database '%s': checkpoint failed: %s", st->path, sqlite3_errstr(sr));
}

static void *checkpointer_main(void *arg)
{
    struct sq_store *st = arg;
    struct sq_checkpointer *ck = &st->ckpt;
    struct sq_conn *c = NULL;
    bool warned = false;
    pthread_mutex_lock(&ck->lock);
    while (!ck->stopping) {
        if (!atomic_load(&ck->due)) {
            pthread_cond_wait(&ck->wake, &ck->lock);
            continue;
        }
        pthread_mutex_unlock(&ck->lock);
        /* Cleared first: a commit that finds the log still long afterwards asks again. */
        atomic_store(&ck->due, false);
        /* Opened at the first checkpoint: a server that writes little never needs one. */
        struct cf_err err;
        if (!c && conn_get(st, &c, &err) != CF_OK && !warned) {
            cf_log_warn("database '%s': the checkpointer has no connection (%s): the log grows "
                        "until another connection checkpoints it",
                        st->path, err.msg);
            warned = true;
        }
        if (c)
            checkpoint(st, c);
        pthread_mutex_lock(&ck->lock);
        struct timespec gap;
        cf_deadline_in(&gap, CHECKPOINT_GAP_MS);
        while (!ck->stopping && pthread_cond_timedwait(&ck->wake, &ck->lock, &gap) == 0) {
        }
    }
    pthread_mutex_unlock(&ck->lock);
    return NULL;
}

/* Starts a background thread of the store (run(st)) on the first call, with the lock guarding
 * *launched held; false when this call could not create it (what says what follows from that). */
static bool thread_launch(bool *launched, bool *created, pthread_t *thread, void *(*run)(void *),
                          struct sq_store *st, const char *what)
{
    if (*launched)
        return true;
    *launched = true;
    *created = pthread_create(thread, NULL, run, st) == 0;
    if (!*created)
        cf_log_warn("database '%s': cannot start the %s", st->path, what);
    return *created;
}

/* Starts the checkpointer, once; without it the connections keep SQLite's own checkpoints. */
static void checkpointer_start(struct sq_store *st)
{
    struct sq_checkpointer *ck = &st->ckpt;
    pthread_mutex_lock(&ck->lock);
    thread_launch(&ck->launched, &ck->created, &ck->thread, checkpointer_main, st,
                  "checkpointer thread: commits checkpoint the log themselves");
    pthread_mutex_unlock(&ck->lock);
}

/* Ends a background thread of the store (the checkpointer, the syncer): sets *stopping under lock
 * and wakes it, then joins it when it was created. */
static void thread_stop(pthread_mutex_t *lock, pthread_cond_t *wake, bool *stopping, bool *created,
                        pthread_t *thread)
{
    pthread_mutex_lock(lock);
    bool joinable = *created;
    pthread_t id = *thread;
    *stopping = true;
    pthread_cond_signal(wake);
    pthread_mutex_unlock(lock);
    if (joinable)
        pthread_join(id, NULL);
}

static void checkpointer_stop(struct sq_store *st)
{
    struct sq_checkpointer *ck = &st->ckpt;
    thread_stop(&ck->lock, &ck->wake, &ck->stopping, &ck->created, &ck->thread);
}

/* Starts the syncer on first use; whether it runs. */
static bool syncer_start(struct sq_store *st)
{
    struct sq_syncer *sy = &st->sync;
    pthread_mutex_lock(&sy->lock);
    if (!thread_launch(&sy->launched, &sy->created, &sy->thread, syncer_main, st,
                       "syncer thread: commits stay synced one by one"))
        sy->start_done = true;
    while (!sy->start_done)
        pthread_cond_wait(&sy->ready, &sy->lock);
    bool running = sy->running;
    pthread_mutex_unlock(&sy->lock);
    if (running)
        checkpointer_start(st);
    return running;
}

static bool sq_sync_defer(struct sql_store *base, bool on)
{
    struct sq_store *st = sq_store_of(base);
    struct sq_conn *c = NULL;
    struct cf_err err;
    if (conn_get(st, &c, &err) != CF_OK)
        return false;
    if (c->deferred == on)
        return on;
    if (on && (!st->wal || !syncer_start(st)))
        return false;
    if (!c->unlocked && own(c, on ? SQ_SYNC_NORMAL : SQ_SYNC_FULL, &err) != CF_OK)
        return c->deferred; /* unchanged */
    c->deferred = on;
    if (on)
        hook_log(st, c);
    return on;
}

static bool sq_sync_deferred(struct sql_store *base)
{
    struct sq_conn *c = pthread_getspecific(sq_store_of(base)->key);
    return c && c->deferred;
}

static bool sq_sync_unlocked(struct sql_store *base)
{
    struct sq_store *st = sq_store_of(base);
    struct sq_conn *c = NULL;
    struct cf_err err;
    if (conn_get(st, &c, &err) != CF_OK)
        return false;
    if (c->unlocked)
        return true;
    if (!st->wal || !syncer_start(st))
        return false;
    if (!c->deferred && own(c, SQ_SYNC_NORMAL, &err) != CF_OK)
        return false;
    c->unlocked = true;
    hook_log(st, c);
    return true;
}

static uint64_t sq_sync_ticket(struct sql_store *base)
{
    struct sq_syncer *sy = &sq_store_of(base)->sync;
    /* shared first: when synced has reached it, so has every commit a reader must wait for. */
    uint64_t shared = atomic_load(&sy->shared);
    return shared > atomic_load(&sy->synced) ? shared : 0;
}

static void sq_sync_notify(struct sql_store *base, struct cf_store_sync_wait *w)
{
    struct sq_syncer *sy = &sq_store_of(base)->sync;
    pthread_mutex_lock(&sy->lock);
    if (!sy->running)
        CF_BUG("a sync ticket without a syncer");
    w->next = sy->waiters;
    sy->waiters = w;
    pthread_cond_signal(&sy->wake);
    pthread_mutex_unlock(&sy->lock);
}

static void sq_sync_counts(struct sql_store *base, uint64_t *commits, uint64_t *syncs)
{
    struct sq_syncer *sy = &sq_store_of(base)->sync;
    *commits = atomic_load(&sy->begun);
    *syncs = atomic_load(&sy->syncs);
}

/* Answers the waiters left and ends the syncer thread (its connection closes as it exits). */
static void syncer_stop(struct sq_store *st)
{
    struct sq_syncer *sy = &st->sync;
    thread_stop(&sy->lock, &sy->wake, &sy->stopping, &sy->created, &sy->thread);
}

/* ---- closing, migrations and opening ---- */

/* Closes every connection, including those of threads still alive (their key destructor no longer
 * runs). The caller must have stopped the threads that use the store, or at least their use of it:
 * a thread that exits while close runs could race with it. */
static void sq_close(struct sql_store *base)
{
    struct sq_store *st = sq_store_of(base);
    if (st->key_created) {
        /* First, while their threads' connections still close by the key's destructor. */
        checkpointer_stop(st);
        syncer_stop(st);
        /* No destructor runs for this key after this; the connections are closed below instead. */
        pthread_key_delete(st->key);
        pthread_mutex_lock(&st->lock);
        st->spare = NULL;
        while (st->conns) {
            struct sq_conn *c = st->conns;
            conn_unlink(c);
            conn_free(c);
        }
        pthread_mutex_unlock(&st->lock);
        pthread_mutex_destroy(&st->lock);
        pthread_mutex_destroy(&st->write_lock);
        pthread_mutex_destroy(&st->sync.lock);
        pthread_cond_destroy(&st->sync.wake);
        pthread_cond_destroy(&st->sync.ready);
        pthread_mutex_destroy(&st->ckpt.lock);
        pthread_cond_destroy(&st->ckpt.wake);
    }
    if (st->generation)
        munmap((void *)st->generation, sizeof(uint64_t));
    free(st->path);
    free(st);
}

/* Every open connection, the spare included; no limit (*size 0): one per thread that uses the
 * store, fewer while threads are idle (sq_idle). */
static void sq_pool_use(struct sql_store *base, int *open, int *size)
{
    struct sq_store *st = sq_store_of(base);
    int n = 0;
    pthread_mutex_lock(&st->lock);
    for (const struct sq_conn *c = st->conns; c; c = c->next)
        n++;
    pthread_mutex_unlock(&st->lock);
    *open = n;
    *size = 0;
}

static const struct db_driver sq_driver = {
    .name = "sqlite",
    .conn_get = sq_conn_get,
    .run = sq_run,
    .begin = sq_begin,
    .end = sq_end,
    .snapshot_begin = sq_snapshot_begin,
    .snapshot_end = sq_snapshot_end,
    .read_begin = sq_read_begin,
    .read_end = sq_read_end,
    .read_refresh = sq_read_refresh,
    .change_generation = sq_change_generation,
    .sync_defer = sq_sync_defer,
    .sync_unlocked = sq_sync_unlocked,
    .sync_ticket = sq_sync_ticket,
    .sync_deferred = sq_sync_deferred,
    .batch_begin = sq_batch_begin,
    .batch_end = sq_batch_end,
    .batch_state = sq_batch_state,
    .sync_notify = sq_sync_notify,
    .sync_counts = sq_sync_counts,
    .idle = sq_idle,
    .pool_use = sq_pool_use,
    .close = sq_close,
};

/* The triggers that bump the lookup cache's change counter (migration 0013; meta.c reads it):
 * every change to a row the cache may hold. Tokens and client secrets change it only when a
 * token's validity can change (revoked, renewed, expired, deleted), not when a use is counted. */
#define BUMP " BEGIN UPDATE change_counters SET value = value + 1 WHERE name = 'lookups'; END;"
/* the meta rows of the admin token (auth/admin.h CF_ADMIN_TOKEN_META, CF_ADMIN_TOKEN_DISABLED_META)
 */
#define ADMIN_META_NAMES "'admin_token_hash', 'admin_token_disabled'"
/* The triggers that bump the list cache's content counter (migration 0015; meta.c reads it): every
 * insert, update and delete of a table whose rows a folder list renders. */
#define BUMP_CONTENT                                                                               \
    " BEGIN UPDATE change_counters SET value = value + 1 WHERE name = 'content'; END;"
#define CONTENT_TRIGGERS(table)                                                                    \
    "CREATE TRIGGER " table "_insert_content AFTER INSERT ON " table BUMP_CONTENT                  \
    "CREATE TRIGGER " table "_update_content AFTER UPDATE ON " table BUMP_CONTENT                  \
    "CREATE TRIGGER " table "_delete_content AFTER DELETE ON " table BUMP_CONTENT
static const char *const sq_additions[] = {
    [13] =
        "CREATE TRIGGER projects_insert_lookups AFTER INSERT ON projects" BUMP
        "CREATE TRIGGER projects_update_lookups AFTER UPDATE ON projects" BUMP
        "CREATE TRIGGER projects_delete_lookups AFTER DELETE ON projects" BUMP
        "CREATE TRIGGER environments_insert_lookups AFTER INSERT ON environments" BUMP
        "CREATE TRIGGER environments_update_lookups AFTER UPDATE ON environments" BUMP
        "CREATE TRIGGER environments_delete_lookups AFTER DELETE ON environments" BUMP
        "CREATE TRIGGER folders_insert_lookups AFTER INSERT ON folders" BUMP
        "CREATE TRIGGER folders_update_lookups AFTER UPDATE ON folders" BUMP
        "CREATE TRIGGER folders_delete_lookups AFTER DELETE ON folders" BUMP
        "CREATE TRIGGER memberships_insert_lookups AFTER INSERT ON identity_memberships" BUMP
        "CREATE TRIGGER memberships_update_lookups AFTER UPDATE ON identity_memberships" BUMP
        "CREATE TRIGGER memberships_delete_lookups AFTER DELETE ON identity_memberships" BUMP
        "CREATE TRIGGER identities_delete_lookups AFTER DELETE ON identities" BUMP
        "CREATE TRIGGER tokens_update_lookups AFTER UPDATE OF revoked, last_renewed_at"
        " ON identity_access_tokens" BUMP
        "CREATE TRIGGER tokens_delete_lookups AFTER DELETE ON identity_access_tokens" BUMP
        "CREATE TRIGGER client_secrets_update_lookups AFTER UPDATE OF revoked, expires_at"
        " ON identity_client_secrets" BUMP
        "CREATE TRIGGER client_secrets_delete_lookups AFTER DELETE ON identity_client_secrets" BUMP,
    [15] = CONTENT_TRIGGERS("secrets") CONTENT_TRIGGERS("secret_versions")
        CONTENT_TRIGGERS("secret_imports") CONTENT_TRIGGERS("tags") CONTENT_TRIGGERS("folders")
            CONTENT_TRIGGERS("environments") CONTENT_TRIGGERS("projects"),
    /* users: every change that can end a session or token, or alter a member's access */
    [17] =
        "CREATE TRIGGER users_update_lookups AFTER UPDATE ON users" BUMP
        "CREATE TRIGGER users_delete_lookups AFTER DELETE ON users" BUMP
        "CREATE TRIGGER user_memberships_insert_lookups AFTER INSERT ON user_memberships" BUMP
        "CREATE TRIGGER user_memberships_update_lookups AFTER UPDATE ON user_memberships" BUMP
        "CREATE TRIGGER user_memberships_delete_lookups AFTER DELETE ON user_memberships" BUMP
        "CREATE TRIGGER user_sessions_delete_lookups AFTER DELETE ON user_sessions" BUMP
        "CREATE TRIGGER pats_update_lookups AFTER UPDATE OF revoked ON personal_access_tokens" BUMP
        "CREATE TRIGGER pats_delete_lookups AFTER DELETE ON personal_access_tokens" BUMP,
    /* groups: every change of a group's members or project access alters its members' access */
    [19] = "CREATE TRIGGER user_groups_delete_lookups AFTER DELETE ON user_groups" BUMP
           "CREATE TRIGGER group_members_insert_lookups AFTER INSERT ON user_group_members" BUMP
           "CREATE TRIGGER group_members_delete_lookups AFTER DELETE ON user_group_members" BUMP
           "CREATE TRIGGER group_memberships_insert_lookups AFTER INSERT ON group_memberships" BUMP
           "CREATE TRIGGER group_memberships_update_lookups AFTER UPDATE ON group_memberships" BUMP
           "CREATE TRIGGER group_memberships_delete_lookups AFTER DELETE ON group_memberships" BUMP,
    /* access requests: a grant given, revoked or deleted alters its user's access (a request is
     * inserted pending, which grants nothing) */
    [23] = "CREATE TRIGGER access_requests_update_lookups AFTER UPDATE OF status, ends_at"
           " ON access_requests" BUMP
           "CREATE TRIGGER access_requests_delete_lookups AFTER DELETE ON access_requests" BUMP,
    /* the admin token's hash and switch (meta rows every admin request reads) */
    [24] = "CREATE TRIGGER IF NOT EXISTS meta_insert_lookups AFTER INSERT ON meta WHEN NEW.name IN"
           " (" ADMIN_META_NAMES ")" BUMP
           "CREATE TRIGGER IF NOT EXISTS meta_update_lookups AFTER UPDATE ON meta WHEN NEW.name IN"
           " (" ADMIN_META_NAMES ") OR OLD.name IN (" ADMIN_META_NAMES ")" BUMP
           "CREATE TRIGGER IF NOT EXISTS meta_delete_lookups AFTER DELETE ON meta WHEN OLD.name IN"
           " (" ADMIN_META_NAMES ")" BUMP,
};
#undef CONTENT_TRIGGERS
#undef BUMP_CONTENT
#undef ADMIN_META_NAMES
#undef BUMP

/* Applies the migrations the database lacks, all in one write transaction: a second process opening
 * the same new database waits on the lock, then finds them applied. */
static enum cf_rc migrate(struct sq_store *st, struct sq_conn *c, struct cf_err *err)
{
    const int known = (int)cf_store_migrations_n;
    int64_t current = 0;
    int sr;
    enum cf_rc rc;

    rc = sq_begin(&c->base, DB_LOCK_WRITE, err);
    if (rc != CF_OK)
        return rc;
    sr = sqlite3_exec(c->db,
                      "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                      " name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
                      NULL, NULL, NULL);
    if (sr != SQLITE_OK) {
        rc = db_error(c, sr, err);
        goto out;
    }
    rc = sql_migration_version(&c->base, &current, err);
    if (rc != CF_OK)
        goto out;
    if (current > known) {
        rc =
            cf_err_set(err, CF_ESTORE,
                       "database '%s' has schema version %lld but this coffer knows versions up to "
                       "%d: run a newer coffer",
                       st->path, (long long)current, known);
        goto out;
    }
    for (size_t i = 0; i < cf_store_migrations_n && rc == CF_OK; i++) {
        const struct cf_store_migration *m = &cf_store_migrations[i];
        if (m->version <= current)
            continue;
        sr = sqlite3_exec(c->db, m->sql, NULL, NULL, NULL);
        if (sr == SQLITE_OK && (size_t)m->version < CF_ARRAY_SIZE(sq_additions) &&
            sq_additions[m->version])
            sr = sqlite3_exec(c->db, sq_additions[m->version], NULL, NULL, NULL);
        if (sr != SQLITE_OK) {
            rc = db_error(c, sr, err);
            if (rc != CF_EUNAVAIL)
                rc = cf_err_set(err, CF_ESTORE, "migration %04d_%s failed: %s", m->version, m->name,
                                sqlite3_errmsg(c->db));
            break;
        }
        rc = sql_migration_record(&c->base, m->version, m->name, err);
        if (rc == CF_OK)
            cf_log_info("applied database migration %04d_%s", m->version, m->name);
    }
out:
    return sq_end(&c->base, rc, err);
}

static enum cf_rc read_text_16(const struct db_row *row, void *item)
{
    return db_row_text(row, 0, item, 16);
}

/* One-time library set-up. Memory statistics take a global mutex on every SQLite allocation, which
 * serialises the per-thread connections; nothing here reads them. No bulk allocation of a page
 * cache's first 20 pages (86 kB) when it starts: the pages come one at a time as they are read,
 * so a background thread whose pass reads a few pages through the shared idle connection
 * (sq_idle) does not leave 86 kB in its own malloc arena each time. Fails harmlessly
 * (SQLITE_MISUSE) when something else in the process initialised SQLite first. */
static void sqlite_once(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
}

enum cf_rc cf_sqlite_open(const char *path, int busy_timeout_ms, struct cf_store **out,
                          struct cf_err *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct sq_store *st;
    struct sq_conn *c;
    char mode[16] = "";
    enum cf_rc rc;

    *out = NULL;
    pthread_once(&once, sqlite_once);
    st = calloc(1, sizeof(*st));
    if (!st)
        return cf_err_set(err, CF_ENOMEM, "out of memory opening the database");
    st->busy_timeout_ms = busy_timeout_ms > 0 ? busy_timeout_ms : DEFAULT_BUSY_TIMEOUT_MS;
    st->path = strdup(path);
    if (!st->path) {
        free(st);
        return cf_err_set(err, CF_ENOMEM, "out of memory opening the database");
    }
    rc = sql_store_init(&st->sql, &sq_driver, err);
    if (rc != CF_OK) {
        free(st->path);
        free(st);
        return rc;
    }
    if (pthread_mutex_init(&st->lock, NULL) != 0 ||
        pthread_mutex_init(&st->write_lock, NULL) != 0 ||
        pthread_mutex_init(&st->sync.lock, NULL) != 0 ||
        pthread_cond_init(&st->sync.wake, NULL) != 0 ||
        pthread_cond_init(&st->sync.ready, NULL) != 0 ||
        pthread_mutex_init(&st->ckpt.lock, NULL) != 0 ||
        pthread_cond_init(&st->ckpt.wake, NULL) != 0 ||
        pthread_key_create(&st->key, conn_destructor) != 0) {
        /* a process that cannot create a mutex or a key is not going to run much else */
        sql_store_release(&st->sql);
        free(st->path);
        free(st);
        return cf_err_set(err, CF_ESTORE, "cannot create the database's locks");
    }
    st->key_created = true;

    rc = conn_get(st, &c, err);
    if (rc == CF_OK)
        rc = sq_run(&c->base, SQ_JOURNAL_MODE, own_sql[SQ_JOURNAL_MODE - SQL_STMT_MAX], NULL, 0,
                    read_text_16, mode, NULL, err);
    st->wal = strcmp(mode, "wal") == 0;
    /* WAL mode works only with every process on one host, sharing memory: so does the generation.
     */
    if (rc == CF_OK && st->wal)
        open_generation(st);
    if (rc == CF_OK && !st->wal)
        cf_log_warn("database '%s' could not be switched to WAL mode (it is in %s mode): writers "
                    "will block readers",
                    path, mode);
    if (rc == CF_OK)
        rc = migrate(st, c, err);
    if (rc != CF_OK) {
        cf_store_close(&st->sql.base);
        return rc;
    }
    *out = &st->sql.base;
    return CF_OK;
}
