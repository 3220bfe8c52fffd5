/* Secret syncs in the store (store/syncs.h): the syncs table with its queue state, and sync_items
 * (what each sync holds at its destination). Portable SQL for SQLite and PostgreSQL, run through
 * the driver of sqldb.h; every write in the driver's write transaction, which is serial across
 * every process sharing the database: that is what makes a claim taken by one node only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqldb.h"
#include "store/sqlrun.h"
#include "store/syncs.h"
#include "util/str.h"
#include "util/banned.h"

#define SYNC_COLS                                                                                  \
    "id, project_id, name, description, env_id, folder_path, destination, connection_id,"          \
    " destination_config, sync_options, auto_sync, sync_status, last_attempt_at, last_synced_at,"  \
    " last_error, last_error_cause, items_pushed, drift, initial_done, pending_gen, done_gen,"     \
    " claim_owner, claim_until, attempts, next_attempt_at, notified_error, created_at, updated_at"
#define ITEM_COLS                                                                                  \
    "i.sync_id, i.name, i.secret_env_id, i.secret_path, i.secret_key, i.version, i.value_hash,"    \
    " i.pushed_at"

static enum cf_rc read_sync(const struct db_row *row, void *item)
{
    struct cf_sync *s = item;
    db_row_text(row, 0, s->id, sizeof(s->id));
    db_row_text(row, 1, s->project_id, sizeof(s->project_id));
    db_row_text(row, 2, s->name, sizeof(s->name));
    db_row_text(row, 3, s->description, sizeof(s->description));
    db_row_text(row, 4, s->env_id, sizeof(s->env_id));
    db_row_text(row, 5, s->folder_path, sizeof(s->folder_path));
    db_row_text(row, 6, s->destination, sizeof(s->destination));
    db_row_text(row, 7, s->connection_id, sizeof(s->connection_id));
    db_row_text(row, 8, s->destination_config, sizeof(s->destination_config));
    db_row_text(row, 9, s->sync_options, sizeof(s->sync_options));
    s->auto_sync = db_row_int64(row, 10) != 0;
    db_row_text(row, 11, s->sync_status, sizeof(s->sync_status));
    s->last_attempt_at = db_row_int64(row, 12);
    s->last_synced_at = db_row_int64(row, 13);
    db_row_text(row, 14, s->last_error, sizeof(s->last_error));
    db_row_text(row, 15, s->last_error_cause, sizeof(s->last_error_cause));
    s->items_pushed = db_row_int64(row, 16);
    db_row_text(row, 17, s->drift, sizeof(s->drift));
    s->initial_done = db_row_int64(row, 18) != 0;
    s->pending_gen = db_row_int64(row, 19);
    s->done_gen = db_row_int64(row, 20);
    db_row_text(row, 21, s->claim_owner, sizeof(s->claim_owner));
    s->claim_until = db_row_int64(row, 22);
    s->attempts = db_row_int64(row, 23);
    s->next_attempt_at = db_row_int64(row, 24);
    db_row_text(row, 25, s->notified_error, sizeof(s->notified_error));
    s->created_at = db_row_int64(row, 26);
    s->updated_at = db_row_int64(row, 27);
    return db_row_status(row);
}

static enum cf_rc read_item(const struct db_row *row, void *item)
{
    struct cf_sync_item_row *it = item;
    db_row_text(row, 0, it->sync_id, sizeof(it->sync_id));
    db_row_text(row, 1, it->name, sizeof(it->name));
    db_row_text(row, 2, it->secret_env_id, sizeof(it->secret_env_id));
    db_row_text(row, 3, it->secret_path, sizeof(it->secret_path));
    db_row_text(row, 4, it->secret_key, sizeof(it->secret_key));
    it->version = db_row_int64(row, 5);
    db_row_text(row, 6, it->value_hash, sizeof(it->value_hash));
    it->pushed_at = db_row_int64(row, 7);
    return db_row_status(row);
}

/* Rows into a growing array of size-byte items, zeroed before read fills them. */
void cf_sync_list_release(struct cf_sync_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void cf_sync_item_list_release(struct cf_sync_item_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static struct sql_stmt ST_SYNC_GET = SQL_STMT("SELECT " SYNC_COLS " FROM syncs WHERE id = ?1");

/* The sync id, read inside a transaction (c), or CF_ENOTFOUND. */
static enum cf_rc sync_read(struct db_conn *c, const char *id, struct cf_sync *out,
                            struct cf_err *err)
{
    struct sql_collector r = {.size = sizeof(struct cf_sync), .read = read_sync};
    enum cf_rc rc = sql_run(c, &ST_SYNC_GET, ARGS(A_TEXT(id)), sql_collect, &r, NULL, err);
    if (rc == CF_OK && r.n == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "Secret sync with ID '%s' not found", id);
    if (rc == CF_OK)
        *out = *(struct cf_sync *)r.items;
    free(r.items);
    return rc;
}

static struct sql_stmt ST_SYNC_NAME_TAKEN =
    SQL_STMT("SELECT id FROM syncs WHERE project_id = ?1 AND name = ?2 AND id <> ?3");

static enum cf_rc name_taken(struct db_conn *c, const struct cf_sync *sync, struct cf_err *err)
{
    int64_t n = 0;
    enum cf_rc rc = sql_run(c, &ST_SYNC_NAME_TAKEN,
                            ARGS(A_TEXT(sync->project_id), A_TEXT(sync->name), A_TEXT(sync->id)),
                            sql_count_row, &n, NULL, err);
    if (rc == CF_OK && n > 0)
        rc = cf_err_set(err, CF_EEXIST, "A secret sync named '%s' already exists in this project",
                        sync->name);
    return rc;
}

static struct sql_stmt ST_SYNC_INSERT =
    SQL_STMT("INSERT INTO syncs (id, project_id, name, description, env_id, folder_path,"
             " destination, connection_id, destination_config, sync_options, auto_sync,"
             " sync_status, pending_gen, done_gen, created_at, updated_at)"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'pending', 1, 0, ?12,"
             " ?12)");

enum cf_rc cf_store_sync_create(struct cf_store *st, const struct cf_sync *s, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = name_taken(c, s, err);
    if (rc == CF_OK)
        rc = sql_run(c, &ST_SYNC_INSERT,
                     ARGS(A_TEXT(s->id), A_TEXT(s->project_id), A_TEXT(s->name),
                          A_TEXT(s->description), A_TEXT(s->env_id), A_TEXT(s->folder_path),
                          A_TEXT(s->destination), A_TEXT(s->connection_id),
                          A_TEXT(s->destination_config), A_TEXT(s->sync_options),
                          A_INT(s->auto_sync), A_INT(s->created_at)),
                     NULL, NULL, NULL, err);
    return sql_tx_end(c, rc, err);
}

enum cf_rc cf_store_sync_get(struct cf_store *st, const char *id, struct cf_sync *out,
                             struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_conn_get(st, &c, err);
    if (rc == CF_OK)
        rc = sync_read(c, id, out, err);
    return rc;
}

static struct sql_stmt ST_SYNC_LIST =
    SQL_STMT("SELECT " SYNC_COLS " FROM syncs ORDER BY project_id, name, id");

static struct sql_stmt ST_SYNC_LIST_PROJECT =
    SQL_STMT("SELECT " SYNC_COLS " FROM syncs WHERE project_id = ?1 ORDER BY name, id");

enum cf_rc cf_store_sync_list(struct cf_store *st, const char *project_id, struct cf_sync_list *out,
                              struct cf_err *err)
{
    struct db_conn *c;
    struct sql_collector r = {.size = sizeof(struct cf_sync), .read = read_sync};
    enum cf_rc rc = sql_conn_get(st, &c, err);
    if (rc == CF_OK && project_id)
        rc =
            sql_run(c, &ST_SYNC_LIST_PROJECT, ARGS(A_TEXT(project_id)), sql_collect, &r, NULL, err);
    else if (rc == CF_OK)
        rc = sql_run(c, &ST_SYNC_LIST, NO_ARGS, sql_collect, &r, NULL, err);
    out->items = r.items;
    out->n = r.n;
    if (rc != CF_OK)
        cf_sync_list_release(out);
    return rc;
}

static struct sql_stmt ST_SYNC_UPDATE =
    SQL_STMT("UPDATE syncs SET name = ?2, description = ?3, env_id = ?4, folder_path = ?5,"
             " connection_id = ?6, destination_config = ?7, sync_options = ?8,"
             " auto_sync = ?9, updated_at = ?10, pending_gen = pending_gen + 1,"
             " attempts = 0, next_attempt_at = 0,"
             " sync_status = CASE WHEN sync_status = 'running' THEN sync_status"
             " ELSE 'pending' END WHERE id = ?1");

enum cf_rc cf_store_sync_update(struct cf_store *st, const struct cf_sync *s, struct cf_err *err)
{
    struct db_conn *c;
    int64_t changed = 0;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = name_taken(c, s, err);
    if (rc == CF_OK)
        rc = sql_run(c, &ST_SYNC_UPDATE,
                     ARGS(A_TEXT(s->id), A_TEXT(s->name), A_TEXT(s->description), A_TEXT(s->env_id),
                          A_TEXT(s->folder_path), A_TEXT(s->connection_id),
                          A_TEXT(s->destination_config), A_TEXT(s->sync_options),
                          A_INT(s->auto_sync), A_INT(s->updated_at)),
                     NULL, NULL, &changed, err);
    if (rc == CF_OK && changed == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "Secret sync with ID '%s' not found", s->id);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_SYNC_DELETE = SQL_STMT("DELETE FROM syncs WHERE id = ?1");

static struct sql_stmt ST_SYNC_ITEMS_DELETE = SQL_STMT("DELETE FROM sync_items WHERE sync_id = ?1");

enum cf_rc cf_store_sync_delete(struct cf_store *st, const char *id, struct cf_err *err)
{
    struct db_conn *c;
    int64_t changed = 0;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    /* Items first: PostgreSQL and SQLite both cascade, but SQLite only with foreign keys on. */
    rc = sql_run(c, &ST_SYNC_ITEMS_DELETE, ARGS(A_TEXT(id)), NULL, NULL, NULL, err);
    if (rc == CF_OK)
        rc = sql_run(c, &ST_SYNC_DELETE, ARGS(A_TEXT(id)), NULL, NULL, &changed, err);
    if (rc == CF_OK && changed == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "Secret sync with ID '%s' not found", id);
    return sql_tx_end(c, rc, err);
}

/* Raises the pending generation of auto-syncs; a sync waiting out a backoff keeps its wait (the
 * change is delivered by the retry). */
#define MARK_PENDING                                                                               \
    "UPDATE syncs SET pending_gen = pending_gen + 1,"                                              \
    " sync_status = CASE WHEN sync_status = 'running' THEN sync_status ELSE 'pending' END"

static struct sql_stmt ST_SYNCS_MARK_PROJECT =
    SQL_STMT(MARK_PENDING " WHERE project_id = ?1 AND auto_sync = 1");
static struct sql_stmt ST_SYNCS_MARK_ALL = SQL_STMT(MARK_PENDING " WHERE auto_sync = 1");
static struct sql_stmt ST_SYNCS_ANY_AUTO =
    SQL_STMT("SELECT 1 FROM syncs WHERE project_id = ?1 AND auto_sync = 1 LIMIT 1");

/* Runs one of the marks above in a transaction of its own; *marked (may be NULL): the syncs it
 * marked. */
static enum cf_rc mark(struct cf_store *st, struct sql_stmt *stmt, const struct sq_arg *args,
                       size_t n_args, int64_t *marked, struct cf_err *err)
{
    struct db_conn *c;
    int64_t changed = 0;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_run(c, stmt, args, n_args, NULL, NULL, &changed, err);
    rc = sql_tx_end(c, rc, err);
    if (marked)
        *marked = rc == CF_OK ? changed : 0;
    return rc;
}

enum cf_rc sql_syncs_mark_project(struct db_conn *c, const char *project_id, int64_t *marked,
                                  struct cf_err *err)
{
    *marked = 0;
    return sql_run(c, &ST_SYNCS_MARK_PROJECT, ARGS(A_TEXT(project_id)), NULL, NULL, marked, err);
}

enum cf_rc cf_store_syncs_mark(struct cf_store *st, const char *project_id, int64_t *marked,
                               struct cf_err *err)
{
    /* Imports and deleted folders come here (a secret write or a merge marks in its own
     * transaction): most projects have no auto-sync, and a read costs far less than a write
     * transaction (its lock, its commit) that would change nothing. */
    struct db_conn *c;
    int64_t any = 0;
    enum cf_rc rc = sql_conn_get(st, &c, err);
    if (rc == CF_OK)
        rc = sql_run(c, &ST_SYNCS_ANY_AUTO, ARGS(A_TEXT(project_id)), sql_count_row, &any, NULL,
                     err);
    if (rc == CF_OK && any == 0) {
        if (marked)
            *marked = 0;
        return CF_OK;
    }
    return mark(st, &ST_SYNCS_MARK_PROJECT, ARGS(A_TEXT(project_id)), marked, err);
}

enum cf_rc cf_store_syncs_mark_all(struct cf_store *st, int64_t *marked, struct cf_err *err)
{
    return mark(st, &ST_SYNCS_MARK_ALL, NO_ARGS, marked, err);
}

static struct sql_stmt ST_SYNC_MARK_ONE =
    SQL_STMT("UPDATE syncs SET pending_gen = pending_gen + 1, next_attempt_at = 0,"
             " sync_status = CASE WHEN sync_status = 'running' THEN sync_status ELSE 'pending'"
             " END WHERE id = ?1");

enum cf_rc cf_store_sync_mark_one(struct cf_store *st, const char *id, struct cf_err *err)
{
    struct db_conn *c;
    int64_t changed = 0;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_run(c, &ST_SYNC_MARK_ONE, ARGS(A_TEXT(id)), NULL, NULL, &changed, err);
    if (rc == CF_OK && changed == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "Secret sync with ID '%s' not found", id);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_SYNC_DUE =
    SQL_STMT("SELECT id FROM syncs WHERE pending_gen > done_gen AND next_attempt_at <= ?1"
             " AND claim_until < ?1 ORDER BY next_attempt_at, updated_at LIMIT ?2");

enum cf_rc cf_store_syncs_due(struct cf_store *st, int64_t now, size_t limit,
                              char (*ids)[CF_UUID_LEN], size_t *n, struct cf_err *err)
{
    struct db_conn *c;
    struct sql_ids r = {ids, 0, limit};
    enum cf_rc rc = sql_conn_get(st, &c, err);
    if (rc == CF_OK)
        rc = sql_run(c, &ST_SYNC_DUE, ARGS(A_INT(now), A_INT(limit)), sql_read_ids, &r, NULL, err);
    *n = r.n;
    return rc;
}

static struct sql_stmt ST_SYNC_CLAIM =
    SQL_STMT("UPDATE syncs SET claim_owner = ?2, claim_until = ?4, sync_status = 'running'"
             " WHERE id = ?1 AND pending_gen > done_gen AND next_attempt_at <= ?3"
             " AND claim_until < ?3");

enum cf_rc cf_store_sync_claim(struct cf_store *st, const char *id, const char *owner, int64_t now,
                               int64_t lease_ms, bool *claimed, struct cf_sync *out,
                               struct cf_err *err)
{
    struct db_conn *c;
    int64_t changed = 0;
    *claimed = false;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_run(c, &ST_SYNC_CLAIM,
                 ARGS(A_TEXT(id), A_TEXT(owner), A_INT(now), A_INT(now + lease_ms)), NULL, NULL,
                 &changed, err);
    if (rc == CF_OK && changed == 1)
        rc = sync_read(c, id, out, err);
    rc = sql_tx_end(c, rc, err);
    *claimed = rc == CF_OK && changed == 1;
    return rc;
}

static struct sql_stmt ST_SYNC_ITEM_INSERT =
    SQL_STMT("INSERT INTO sync_items (sync_id, name, secret_env_id, secret_path,"
             " secret_key, version, value_hash, pushed_at)"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");

static struct sql_stmt ST_SYNC_FINISH_FAILED =
    SQL_STMT("UPDATE syncs SET claim_owner = '', claim_until = 0, last_attempt_at = ?3,"
             " last_error = ?4, last_error_cause = ?5, attempts = attempts + 1,"
             " next_attempt_at = ?6, sync_status = 'failed',"
             " notified_error = COALESCE(?7, notified_error)"
             " WHERE id = ?1 AND claim_owner = ?2");

static struct sql_stmt ST_SYNC_FINISH_OK =
    SQL_STMT("UPDATE syncs SET claim_owner = '', claim_until = 0, last_attempt_at = ?3,"
             " last_synced_at = ?3, last_error = '', last_error_cause = '', attempts = 0,"
             " next_attempt_at = 0, items_pushed = ?4, drift = ?5, initial_done = ?6,"
             " done_gen = CASE WHEN done_gen > ?7 THEN done_gen ELSE ?7 END,"
             " notified_error = '',"
             " sync_status = CASE WHEN pending_gen > ?7 THEN 'pending' ELSE 'succeeded' END"
             " WHERE id = ?1 AND claim_owner = ?2");

enum cf_rc cf_store_sync_finish(struct cf_store *st, const struct cf_sync_outcome *o,
                                struct cf_err *err)
{
    struct db_conn *c;
    int64_t changed = 0;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    if (o->ok)
        rc = sql_run(c, &ST_SYNC_FINISH_OK,
                     ARGS(A_TEXT(o->id), A_TEXT(o->owner), A_INT(o->finished_at),
                          A_INT(o->items_pushed), A_TEXT(o->drift ? o->drift : "[]"),
                          A_INT(o->initial_done), A_INT(o->gen)),
                     NULL, NULL, &changed, err);
    else
        rc = sql_run(c, &ST_SYNC_FINISH_FAILED,
                     ARGS(A_TEXT(o->id), A_TEXT(o->owner), A_INT(o->finished_at),
                          A_TEXT(o->error ? o->error : ""), A_TEXT(o->cause ? o->cause : ""),
                          A_INT(o->next_attempt_at),
                          A_NULLABLE(o->notified_error ? o->notified_error : "")),
                     NULL, NULL, &changed, err);
    if (rc == CF_OK && changed == 0)
        rc = cf_err_set(err, CF_ECONFLICT,
                        "the claim on secret sync '%s' was lost (its lease ran out)", o->id);
    if (rc == CF_OK && o->ok) {
        rc = sql_run(c, &ST_SYNC_ITEMS_DELETE, ARGS(A_TEXT(o->id)), NULL, NULL, NULL, err);
        for (size_t i = 0; rc == CF_OK && i < o->n_items; i++) {
            const struct cf_sync_item_row *it = &o->items[i];
            rc = sql_run(c, &ST_SYNC_ITEM_INSERT,
                         ARGS(A_TEXT(o->id), A_TEXT(it->name), A_TEXT(it->secret_env_id),
                              A_TEXT(it->secret_path), A_TEXT(it->secret_key), A_INT(it->version),
                              A_TEXT(it->value_hash), A_INT(it->pushed_at)),
                         NULL, NULL, NULL, err);
        }
    }
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_SYNC_ITEMS_OF_PROJECT =
    SQL_STMT("SELECT " ITEM_COLS " FROM sync_items i JOIN syncs s ON s.id = i.sync_id"
             " WHERE s.project_id = ?1 ORDER BY i.secret_env_id, i.secret_path,"
             " i.secret_key, s.name");

static struct sql_stmt ST_SYNC_ITEMS_OF_SYNC =
    SQL_STMT("SELECT " ITEM_COLS " FROM sync_items i WHERE i.sync_id = ?1 ORDER BY i.name");

enum cf_rc cf_store_sync_items(struct cf_store *st, const char *sync_id, const char *project_id,
                               struct cf_sync_item_list *out, struct cf_err *err)
{
    struct db_conn *c;
    struct sql_collector r = {.size = sizeof(struct cf_sync_item_row), .read = read_item};
    enum cf_rc rc = sql_conn_get(st, &c, err);
    if (rc == CF_OK && sync_id)
        rc = sql_run(c, &ST_SYNC_ITEMS_OF_SYNC, ARGS(A_TEXT(sync_id)), sql_collect, &r, NULL, err);
    else if (rc == CF_OK)
        rc = sql_run(c, &ST_SYNC_ITEMS_OF_PROJECT, ARGS(A_TEXT(project_id ? project_id : "")),
                     sql_collect, &r, NULL, err);
    out->items = r.items;
    out->n = r.n;
    if (rc != CF_OK)
        cf_sync_item_list_release(out);
    return rc;
}
