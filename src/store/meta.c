/* The store itself (sqldb.h): its setup and release over a driver, the operations table, and the
 * server-wide operations of store.h: ping, the background-job lock, meta values, root key rewrap,
 * and the migration bookkeeping the drivers run. */
#include <sodium.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/shared.h"
#include "util/cache.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

/* Closes every connection (the driver's part) after releasing the driver-independent part. The
 * caller must have stopped the threads that use the store. */
void cf_store_close(struct cf_store *base)
{
    struct sql_store *st = sql_store_of(base);
    if (!st)
        return;
    sql_store_release(st);
    st->drv->close(st);
}

/* ---- read scopes and the lookup cache ---- */

/* The most distinct pieces of work one shared write transaction queues for after its commit
 * (cf_store_after_commit); more run at once, as outside a shared transaction. */
#define AFTER_COMMIT_MAX 8

/* This thread's read scope of one store: its depth, and the change counter value it read. */
struct read_scope {
    int depth;
    bool counted;    /* counter and content hold the values read in this scope */
    bool unreadable; /* reading them failed in this scope (the database is unreachable or slow):
                      * not tried again before the scope ends; cause says why */
    struct cf_err cause;
    int64_t counter; /* change_counters.lookups */
    int64_t content; /* change_counters.content (migration 0015) */
    /* The counters as last read from the database on this thread, and the driver's change
     * generation just before (db_driver.change_generation): while the generation has not moved,
     * and for at most COUNTERS_FRESH_US, a scope takes them from here instead of reading them. */
    bool remembered;
    uint64_t generation;
    int64_t remembered_at; /* cf_mono_us */
    int64_t remembered_counter, remembered_content;
    /* Work waiting for this thread's shared write transaction to commit (cf_store_after_commit). */
    struct after_commit {
        void (*fn)(void *);
        void *arg;
    } after[AFTER_COMMIT_MAX];
    size_t n_after;
};

/* How long counters taken over from an earlier scope are trusted without a read: a bound on what a
 * writer that does not move the generation (one that died between its commit and the second bump,
 * or a tool other than Coffer writing to the database) can leave unseen. */
#define COUNTERS_FRESH_US (1000 * 1000)

/* How many entries the lookup cache keeps at most, and their bytes together (a folder is about
 * 1.4 KB, an access token 0.5 KB). */
#define LOOKUP_CACHE_ENTRIES 4096
#define LOOKUP_CACHE_BYTES (8u << 20)

static struct read_scope *scope_of(struct sql_store *st)
{
    return st->scope_key_made ? pthread_getspecific(st->scope_key) : NULL;
}

/* This thread's scope of st, made on first use; NULL when it cannot be. */
static struct read_scope *thread_scope(struct sql_store *st)
{
    struct read_scope *scope = scope_of(st);
    if (!scope && st->scope_key_made) {
        scope = calloc(1, sizeof(*scope));
        if (scope && pthread_setspecific(st->scope_key, scope) != 0) {
            free(scope);
            scope = NULL;
        }
    }
    return scope;
}

void cf_store_read_begin(struct cf_store *base)
{
    struct sql_store *st = sql_store_of(base);
    struct read_scope *scope = thread_scope(st);
    if (scope && scope->depth++ == 0)
        scope->counted = false;
    if (st->drv->read_begin)
        st->drv->read_begin(st);
}

void cf_store_read_end(struct cf_store *base)
{
    struct sql_store *st = sql_store_of(base);
    struct read_scope *scope = scope_of(st);
    if (scope && scope->depth > 0 && --scope->depth == 0)
        scope->counted = scope->unreadable = false;
    if (st->drv->read_end)
        st->drv->read_end(st);
}

void cf_store_read_refresh(struct cf_store *base)
{
    struct sql_store *st = sql_store_of(base);
    sql_scope_changed(st);
    if (st->drv->read_refresh)
        st->drv->read_refresh(st);
}

void cf_store_idle(struct cf_store *base)
{
    struct sql_store *st = sql_store_of(base);
    /* the driver keeps a connection inside a read scope (its own depth counts the scopes) */
    if (st->drv->idle)
        st->drv->idle(st);
}

void sql_scope_changed(struct sql_store *st)
{
    struct read_scope *scope = scope_of(st);
    if (scope)
        scope->counted = false;
}

/* Both change counters in one statement: each read is a round trip on PostgreSQL. */
static struct sql_stmt ST_CHANGE_COUNTERS =
    SQL_STMT("SELECT (SELECT value FROM change_counters WHERE name = 'lookups'),"
             " (SELECT value FROM change_counters WHERE name = 'content')");

static enum cf_rc read_counters(const struct db_row *row, void *item)
{
    struct read_scope *scope = item;
    scope->counter = db_row_int64(row, 0);
    scope->content = db_row_int64(row, 1);
    return CF_OK;
}

static enum sql_batch_state batch_state(struct sql_store *st)
{
    return st->drv->batch_state ? st->drv->batch_state(st) : SQL_BATCH_NONE;
}

/* The scope, with the change counters read at its first use: NULL outside a scope, or when they
 * cannot be read, or in a shared write transaction that changed the lookups counter (its value is
 * not committed: an entry cached under it could outlive a failed commit), and then nothing is
 * cached. One that changed only the content counter (secret writes) still has the lookups counter
 * as committed, so lookups keep their cache; its content value is not one (content_version). */
static struct read_scope *counted_scope(struct sql_store *st)
{
    struct read_scope *scope = scope_of(st);
    enum sql_batch_state batch = batch_state(st);
    if (!scope || scope->depth == 0 || batch == SQL_BATCH_LOOKUPS)
        return NULL;
    if (!scope->counted) {
        struct db_conn *c;
        bool found = false;
        uint64_t generation = 0;
        bool generational =
            st->drv->change_generation && st->drv->change_generation(st, &generation);
        int64_t now = generational ? cf_mono_us() : 0;
        if (generational && scope->remembered && scope->generation == generation &&
            now - scope->remembered_at < COUNTERS_FRESH_US) {
            scope->counter = scope->remembered_counter;
            scope->content = scope->remembered_content;
            scope->counted = true;
            return scope;
        }
        if (scope->unreadable)
            return NULL;
        cf_err_clear(&scope->cause);
        if (sql_conn_get(&st->base, &c, &scope->cause) != CF_OK ||
            sql_get_row(c, &ST_CHANGE_COUNTERS, NO_ARGS, read_counters, scope, &found,
                        &scope->cause) != CF_OK) {
            scope->unreadable = true;
            return NULL;
        }
        if (!found)
            return NULL;
        scope->counted = true;
        /* The generation was taken before the read: a commit between the two moves it, and the
         * next scope reads the counters again. Values read inside a transaction that changed one
         * are not remembered: if it rolled back, no commit would move the generation past them. */
        scope->remembered = generational && batch != SQL_BATCH_CONTENT;
        scope->generation = generation;
        scope->remembered_at = now;
        scope->remembered_counter = scope->counter;
        scope->remembered_content = scope->content;
    }
    return scope;
}

/* The scope's lookups counter value: false outside a scope, without a lookup cache, or when it
 * cannot be read. */
static bool scope_counter(struct sql_store *st, int64_t *counter)
{
    struct read_scope *scope = st->lookups ? counted_scope(st) : NULL;
    if (!scope)
        return false;
    *counter = scope->counter;
    return true;
}

bool cf_store_content_version(struct cf_store *base, int64_t *version)
{
    struct sql_store *st = sql_store_of(base);
    struct read_scope *scope = counted_scope(st);
    if (!scope || batch_state(st) == SQL_BATCH_CONTENT)
        return false;
    *version = scope->content;
    return true;
}

bool sql_cache_get(struct sql_store *st, const char *key, void **value, size_t *len)
{
    int64_t counter;
    *value = NULL;
    *len = 0;
    return scope_counter(st, &counter) && cf_cache_get(st->lookups, key, counter, value, len);
}

bool sql_cache_get_fixed(struct sql_store *st, const char *key, void *out, size_t size)
{
    void *value;
    size_t len;
    if (!sql_cache_get(st, key, &value, &len))
        return false;
    bool fits = len == size;
    if (fits)
        memcpy(out, value, size);
    free(value);
    return fits;
}

void sql_cache_put_with(struct sql_store *st, const char *key, const void *row, size_t size,
                        const void *extra, size_t extra_len)
{
    if (extra_len > SIZE_MAX - size)
        return;
    uint8_t *entry = malloc(size + extra_len);
    if (!entry)
        return;
    memcpy(entry, row, size);
    if (extra_len)
        memcpy(entry + size, extra, extra_len);
    sql_cache_put(st, key, entry, size + extra_len);
    free(entry);
}

bool sql_cache_get_with(struct sql_store *st, const char *key, void *row, size_t size, void **extra,
                        size_t *extra_len)
{
    uint8_t *entry;
    size_t len;
    *extra = NULL;
    *extra_len = 0;
    if (!sql_cache_get(st, key, (void **)&entry, &len))
        return false;
    bool ok = len >= size;
    if (ok && len > size) {
        *extra = malloc(len - size);
        ok = *extra != NULL;
        if (ok) {
            memcpy(*extra, entry + size, len - size);
            *extra_len = len - size;
        }
    }
    if (ok)
        memcpy(row, entry, size);
    free(entry);
    return ok;
}

bool sql_cache_key(char *out, size_t size, char kind, const char *part1, const char *part2)
{
    const char kind_text[2] = {kind, '\0'};
    const char *const parts[] = {kind_text, part1, part2};
    return cf_join(out, size, '\x1f', parts, CF_ARRAY_SIZE(parts));
}

void sql_cache_put(struct sql_store *st, const char *key, const void *value, size_t len)
{
    struct read_scope *scope = scope_of(st);
    /* Stored under the value read before the row was: a change committed in between bumped the
     * counter past it, so the entry is never used after that change. Inside a shared write
     * transaction that has not changed the lookups counter, the rows it guards read as committed
     * (any change to one bumps it). */
    if (st->lookups && scope && scope->depth > 0 && scope->counted &&
        batch_state(st) != SQL_BATCH_LOOKUPS)
        cf_cache_put(st->lookups, key, scope->counter, value, len);
}

enum cf_rc cf_store_batch_begin(struct cf_store *base, struct cf_err *err)
{
    struct sql_store *st = sql_store_of(base);
    if (!st->drv->batch_begin)
        return cf_err_set(err, CF_EUNSUPPORTED, "the %s store has no shared write transactions",
                          st->drv->name);
    struct read_scope *scope = thread_scope(st);
    if (!scope)
        return cf_err_set(err, CF_ENOMEM, "out of memory beginning a shared write transaction");
    enum cf_rc rc = st->drv->batch_begin(st, err);
    if (rc == CF_OK) {
        scope->n_after = 0;
        sql_scope_changed(st); /* its counters are read again inside the transaction */
    }
    return rc;
}

enum cf_rc cf_store_batch_end(struct cf_store *base, struct cf_err *err)
{
    struct sql_store *st = sql_store_of(base);
    if (!st->drv->batch_end || batch_state(st) == SQL_BATCH_NONE)
        return cf_err_set(err, CF_EINTERNAL, "no shared write transaction is open on this thread");
    enum cf_rc rc = st->drv->batch_end(st, err);
    sql_scope_changed(st);
    struct read_scope *scope = scope_of(st);
    size_t n = scope ? scope->n_after : 0;
    for (size_t i = 0; i < n; i++)
        scope->after[i].fn(scope->after[i].arg);
    if (scope)
        scope->n_after = 0;
    return rc;
}

void cf_store_after_commit(struct cf_store *base, void (*fn)(void *), void *arg)
{
    struct sql_store *st = sql_store_of(base);
    struct read_scope *scope = scope_of(st);
    if (!scope || batch_state(st) == SQL_BATCH_NONE) {
        fn(arg);
        return;
    }
    for (size_t i = 0; i < scope->n_after; i++)
        if (scope->after[i].fn == fn && scope->after[i].arg == arg)
            return;
    if (scope->n_after == AFTER_COMMIT_MAX) {
        fn(arg); /* at worst early: a worker woken before the commit finds it at its next pass */
        return;
    }
    scope->after[scope->n_after++] = (struct after_commit){.fn = fn, .arg = arg};
}

bool cf_store_sync_defer(struct cf_store *base, bool on)
{
    struct sql_store *st = sql_store_of(base);
    return st->drv->sync_defer ? st->drv->sync_defer(st, on) : false;
}

bool cf_store_sync_unlocked(struct cf_store *base)
{
    struct sql_store *st = sql_store_of(base);
    return st->drv->sync_unlocked ? st->drv->sync_unlocked(st) : false;
}

/* A blocking wait for sql_sync_wait. */
struct barrier {
    pthread_mutex_t lock;
    pthread_cond_t done;
    bool answered;
    enum cf_rc rc;
};

static void barrier_done(void *arg, enum cf_rc rc)
{
    struct barrier *b = arg;
    pthread_mutex_lock(&b->lock);
    b->answered = true;
    b->rc = rc;
    pthread_cond_signal(&b->done);
    pthread_mutex_unlock(&b->lock);
}

enum cf_rc sql_sync_wait(struct sql_store *st, uint64_t ticket, struct cf_err *err)
{
    struct barrier b = {.lock = PTHREAD_MUTEX_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};
    struct cf_store_sync_wait w = {.ticket = ticket, .done = barrier_done, .arg = &b};
    st->drv->sync_notify(st, &w); /* a ticket comes only from a driver that defers */
    pthread_mutex_lock(&b.lock);
    while (!b.answered)
        pthread_cond_wait(&b.done, &b.lock);
    pthread_mutex_unlock(&b.lock);
    pthread_mutex_destroy(&b.lock);
    pthread_cond_destroy(&b.done);
    if (b.rc != CF_OK)
        return cf_err_set(err, b.rc, "the database's recent changes could not be synced to disk");
    return CF_OK;
}

enum cf_rc cf_store_sync_barrier(struct cf_store *base, struct cf_err *err)
{
    uint64_t ticket = cf_store_sync_ticket(base);
    return ticket == 0 ? CF_OK : sql_sync_wait(sql_store_of(base), ticket, err);
}

uint64_t cf_store_sync_ticket(struct cf_store *base)
{
    struct sql_store *st = sql_store_of(base);
    return st->drv->sync_ticket ? st->drv->sync_ticket(st) : 0;
}

void cf_store_sync_notify(struct cf_store *base, struct cf_store_sync_wait *w)
{
    struct sql_store *st = sql_store_of(base);
    /* A ticket comes only from a driver that defers: anything else is a caller's bug. */
    if (!st->drv->sync_notify)
        CF_BUG("a sync ticket on a store that defers no commit");
    st->drv->sync_notify(st, w);
}

void cf_store_sync_counts(struct cf_store *base, uint64_t *commits, uint64_t *syncs)
{
    struct sql_store *st = sql_store_of(base);
    *commits = *syncs = 0;
    if (st->drv->sync_counts)
        st->drv->sync_counts(st, commits, syncs);
}

void cf_store_pool_use(struct cf_store *base, int *open, int *size)
{
    struct sql_store *st = sql_store_of(base);
    *open = *size = 0;
    if (st->drv->pool_use)
        st->drv->pool_use(st, open, size);
}

static struct sql_stmt ST_PG_NOW =
    SQL_STMT("SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)");
static struct sql_stmt ST_SQLITE_NOW =
    SQL_STMT("SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)");

enum cf_rc cf_store_db_now_ms(struct cf_store *base, int64_t *now_ms, struct cf_err *err)
{
    *now_ms = 0;
    bool pg = strcmp(base->backend, "postgres") == 0;
    return sql_get_one(base, pg ? &ST_PG_NOW : &ST_SQLITE_NOW, NO_ARGS, sql_read_int64, now_ms,
                       "database clock", "", err);
}

static struct sql_stmt ST_JOB_STATES =
    SQL_STMT("SELECT 'notice', state, COUNT(*) FROM notices GROUP BY state"
             " UNION ALL SELECT 'rotation', status, COUNT(*) FROM rotations GROUP BY status"
             " UNION ALL SELECT 'sync', sync_status, COUNT(*) FROM syncs GROUP BY sync_status"
             " ORDER BY 1, 2");

static enum cf_rc read_job_state(const struct db_row *row, void *out)
{
    struct cf_store_job_state *s = out;
    db_row_text(row, 0, s->kind, sizeof(s->kind));
    db_row_text(row, 1, s->state, sizeof(s->state));
    s->count = db_row_int64(row, 2);
    return db_row_status(row);
}

enum cf_rc cf_store_job_states(struct cf_store *base, struct cf_store_job_state **out, size_t *n,
                               struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(**out), .read = read_job_state};
    enum cf_rc rc = sql_collect_all(base, &ST_JOB_STATES, NO_ARGS, &col, err);
    if (rc != CF_OK) {
        free(col.items);
        *out = NULL;
        *n = 0;
        return rc;
    }
    *out = col.items;
    *n = col.n;
    return CF_OK;
}

enum cf_rc cf_store_job_lock(struct cf_store *base, const char *job, bool *held, struct cf_err *err)
{
    struct sql_store *st = sql_store_of(base);
    if (!st->drv->job_lock) {
        *held = true;
        return CF_OK;
    }
    return st->drv->job_lock(st, job, held, err);
}

static struct sql_stmt ST_PING = SQL_STMT("SELECT 1");

enum cf_rc cf_store_ping(struct cf_store *base, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_conn_get(base, &c, err);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_PING, NO_ARGS, NULL, err);
    return rc;
}

struct blob_out {
    uint8_t *data;
    size_t len;
};

static enum cf_rc read_blob_out(const struct db_row *s, void *item)
{
    struct blob_out *b = item;
    return sql_col_blob(s, 0, &b->data, &b->len);
}

static struct sql_stmt ST_META_GET = SQL_STMT("SELECT value FROM meta WHERE name = ?1");

enum cf_rc cf_store_meta_get(struct cf_store *base, const char *name, uint8_t **value, size_t *len,
                             struct cf_err *err)
{
    struct blob_out blob = {0};
    struct db_conn *c;
    enum cf_rc rc;

    *value = NULL;
    *len = 0;
    rc = sql_conn_get(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_required(c, &ST_META_GET, ARGS(A_TEXT(name)), read_blob_out, &blob, "meta value",
                          name, err);
    if (rc != CF_OK) {
        free(blob.data);
        return rc;
    }
    *value = blob.data;
    *len = blob.len;
    return CF_OK;
}

enum cf_rc cf_store_meta_get_lookup(struct cf_store *base, const char *name, uint8_t **value,
                                    size_t *len, struct cf_err *err)
{
    struct sql_store *st = sql_store_of(base);
    char key[SQL_CACHE_KEY_MAX];
    uint8_t *entry = NULL;
    size_t entry_len = 0;
    bool cacheable = sql_cache_key(key, sizeof(key), 'M', name, NULL);

    *value = NULL;
    *len = 0;
    /* an entry is a presence byte, then the value: an absent row is remembered too */
    if (cacheable && sql_cache_get(st, key, (void **)&entry, &entry_len) && entry_len >= 1) {
        bool present = entry[0] == 1;
        if (present) {
            memmove(entry, entry + 1, entry_len - 1);
            *value = entry;
            *len = entry_len - 1;
            return CF_OK;
        }
        free(entry);
        return cf_err_set(err, CF_ENOTFOUND, "meta value '%s' not found", name);
    }
    free(entry);
    /* the database did not answer the scope's counter read just now: say so at once rather than
     * wait for it a second time */
    struct read_scope *scope = scope_of(st);
    if (scope && scope->depth > 0 && scope->unreadable)
        return cf_err_set(err, scope->cause.rc != CF_OK ? scope->cause.rc : CF_EUNAVAIL, "%s",
                          scope->cause.msg);
    enum cf_rc rc = cf_store_meta_get(base, name, value, len, err);
    if (cacheable && (rc == CF_OK || rc == CF_ENOTFOUND)) {
        uint8_t *copy = malloc(1 + *len);
        if (copy) {
            copy[0] = rc == CF_OK;
            if (*len)
                memcpy(copy + 1, *value, *len);
            sql_cache_put(st, key, copy, 1 + *len);
            sodium_memzero(copy, 1 + *len);
            free(copy);
        }
    }
    return rc;
}

static enum cf_rc meta_write(struct cf_store *base, struct sql_stmt *id, const char *name,
                             const uint8_t *value, size_t len, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, id, ARGS(A_TEXT(name), A_BLOB(value, len)), NULL, err);
    if (rc == CF_EEXIST)
        cf_err_set(err, CF_EEXIST, "meta value '%s' already exists", name);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_META_PUT =
    SQL_STMT("INSERT INTO meta (name, value) VALUES (?1, ?2)"
             " ON CONFLICT (name) DO UPDATE SET value = excluded.value");

enum cf_rc cf_store_meta_put(struct cf_store *base, const char *name, const uint8_t *value,
                             size_t len, struct cf_err *err)
{
    return meta_write(base, &ST_META_PUT, name, value, len, err);
}

static struct sql_stmt ST_META_INSERT = SQL_STMT("INSERT INTO meta (name, value) VALUES (?1, ?2)");

enum cf_rc cf_store_meta_insert(struct cf_store *base, const char *name, const uint8_t *value,
                                size_t len, struct cf_err *err)
{
    return meta_write(base, &ST_META_INSERT, name, value, len, err);
}

static struct sql_stmt ST_META_SWAP =
    SQL_STMT("UPDATE meta SET value = ?3 WHERE name = ?1 AND value = ?2");

enum cf_rc cf_store_meta_swap(struct cf_store *base, const char *name, const uint8_t *expected,
                              size_t expected_len, const uint8_t *value, size_t len,
                              struct cf_err *err)
{
    int64_t changes = 0;
    enum cf_rc rc = sql_exec_in_tx(
        base, &ST_META_SWAP, ARGS(A_TEXT(name), A_BLOB(expected, expected_len), A_BLOB(value, len)),
        &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ECONFLICT, "meta value '%s' changed meanwhile", name);
    return rc;
}

static struct sql_stmt ST_META_DELETE_IF =
    SQL_STMT("DELETE FROM meta WHERE name = ?1 AND value = ?2");

enum cf_rc cf_store_meta_move(struct cf_store *base, const char *old_name, const uint8_t *expected,
                              size_t expected_len, const char *new_name, const uint8_t *value,
                              size_t len, struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_META_DELETE_IF, ARGS(A_TEXT(old_name), A_BLOB(expected, expected_len)),
                  &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ECONFLICT, "meta value '%s' changed meanwhile", old_name);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_META_INSERT, ARGS(A_TEXT(new_name), A_BLOB(value, len)), NULL, err);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_PROJECT_SET_KEY =
    SQL_STMT("UPDATE projects SET wrapped_key = ?2, updated_at = ?3 WHERE id = ?1");

enum cf_rc cf_store_rewrap_keys(struct cf_store *base, const struct cf_key_update *updates,
                                size_t n, const uint8_t *root_check, size_t root_check_len,
                                struct cf_err *err)
{
    struct db_conn *c;
    int64_t now = cf_now_ms(), changes = 0;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    for (size_t i = 0; i < n && rc == CF_OK; i++) {
        const struct cf_key_update *u = &updates[i];
        if (u->meta_name) {
            rc = sql_exec(c, &ST_META_PUT,
                          ARGS(A_TEXT(u->meta_name), A_BLOB(u->wrapped_key, u->wrapped_key_len)),
                          NULL, err);
            continue;
        }
        rc = sql_exec(
            c, &ST_PROJECT_SET_KEY,
            ARGS(A_TEXT(u->project_id), A_BLOB(u->wrapped_key, u->wrapped_key_len), A_INT(now)),
            &changes, err);
        if (rc == CF_OK && changes == 0)
            rc = cf_err_set(err, CF_ENOTFOUND, "project '%s' not found", u->project_id);
    }
    if (rc == CF_OK && root_check)
        rc = sql_exec(c, &ST_META_PUT,
                      ARGS(A_TEXT(CF_META_ROOT_CHECK), A_BLOB(root_check, root_check_len)), NULL,
                      err);
    return sql_tx_end(c, rc, err);
}

static void free_scope(void *scope)
{
    free(scope);
}

static enum cf_rc combiner_init(struct sql_combiner *cb, struct cf_err *err)
{
    if (pthread_mutex_init(&cb->lock, NULL) != 0)
        return cf_err_set(err, CF_ESTORE, "cannot create a mutex");
    if (pthread_cond_init(&cb->done, NULL) != 0) {
        pthread_mutex_destroy(&cb->lock);
        return cf_err_set(err, CF_ESTORE, "cannot create a condition variable");
    }
    cb->queue = NULL;
    cb->tail = &cb->queue;
    cb->committing = false;
    return CF_OK;
}

static void combiner_release(struct sql_combiner *cb)
{
    pthread_mutex_destroy(&cb->lock);
    pthread_cond_destroy(&cb->done);
}

enum cf_rc sql_store_init(struct sql_store *st, const struct db_driver *drv, struct cf_err *err)
{
    st->base.backend = drv->name;
    st->drv = drv;
    enum cf_rc rc = combiner_init(&st->tokens, err);
    if (rc != CF_OK)
        return rc;
    rc = combiner_init(&st->secret_writes, err);
    if (rc != CF_OK) {
        combiner_release(&st->tokens);
        return rc;
    }
    /* Without the cache or the key, every lookup reads the database: slower, still correct. */
    st->lookups = cf_cache_new(&(struct cf_cache_config){.max_entries = LOOKUP_CACHE_ENTRIES,
                                                         .max_bytes = LOOKUP_CACHE_BYTES});
    st->scope_key_made = pthread_key_create(&st->scope_key, free_scope) == 0;
    return CF_OK;
}

void sql_store_release(struct sql_store *st)
{
    if (!st || !st->drv)
        return;
    combiner_release(&st->tokens);
    combiner_release(&st->secret_writes);
    if (st->scope_key_made) {
        /* the calling thread's scope; those of other threads are freed as they exit */
        free(pthread_getspecific(st->scope_key));
        pthread_key_delete(st->scope_key);
        st->scope_key_made = false;
    }
    cf_cache_free(st->lookups);
    st->lookups = NULL;
}

static struct sql_stmt ST_MIGRATION_VERSION =
    SQL_STMT("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");

enum cf_rc sql_migration_version(struct db_conn *c, int64_t *version, struct cf_err *err)
{
    bool found;
    *version = 0;
    return sql_get_row(c, &ST_MIGRATION_VERSION, NO_ARGS, sql_read_int64, version, &found, err);
}

static struct sql_stmt ST_MIGRATION_RECORD =
    SQL_STMT("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)");

enum cf_rc sql_migration_record(struct db_conn *c, int version, const char *name,
                                struct cf_err *err)
{
    return sql_exec(c, &ST_MIGRATION_RECORD, ARGS(A_INT(version), A_TEXT(name), A_INT(cf_now_ms())),
                    NULL, err);
}
