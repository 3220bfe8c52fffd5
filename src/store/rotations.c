/* Secret rotations in the store (store/rotations.h): the rotations table with its state machine's
 * columns, and rotation_history. Portable SQL for SQLite and PostgreSQL, run through the driver of
 * sqldb.h; every write in the driver's write transaction, which is serial across every process
 * sharing the database: that is what makes a claim taken by one node only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlrun.h"
#include "store/rotations.h"
#include "util/str.h"
#include "util/banned.h"

#define ROT_COLS                                                                                   \
    "id, project_id, name, description, env_id, folder_path, type, connection_id, parameters,"     \
    " secrets_mapping, consumers, interval_days, days_before_expiry, rotate_at_minute,"            \
    " grace_period_ms, lifetime_ms, auto_rotate, generation, current_cred_id,"                     \
    " current_expires_at, previous_cred_id, pending_step, pending_generation, pending_cred_id,"    \
    " pending_expires_at, pending_version, pending_consumer, grace_until, step_started_at,"        \
    " step_attempts, next_attempt_at, last_error, last_error_cause, last_error_step,"              \
    " notified_error, status, run_requested, last_rotated_at, next_rotation_at, claim_owner,"      \
    " claim_until, created_at, updated_at"
#define EVENT_COLS "rotation_id, generation, step, outcome, cause, message, credential_id, at"

/* Due at ?1 and not claimed by a live lease. */
#define DUE_WHERE                                                                                  \
    "claim_until < ?1 AND next_attempt_at <= ?1 AND (pending_step <> '' OR run_requested = 1"      \
    " OR (auto_rotate = 1 AND next_rotation_at > 0 AND next_rotation_at <= ?1))"

static enum cf_rc read_rotation(const struct db_row *row, void *item)
{
    struct cf_rotation *r = item;
    int i = 0;
    db_row_text(row, i++, r->id, sizeof(r->id));
    db_row_text(row, i++, r->project_id, sizeof(r->project_id));
    db_row_text(row, i++, r->name, sizeof(r->name));
    db_row_text(row, i++, r->description, sizeof(r->description));
    db_row_text(row, i++, r->env_id, sizeof(r->env_id));
    db_row_text(row, i++, r->folder_path, sizeof(r->folder_path));
    db_row_text(row, i++, r->type, sizeof(r->type));
    db_row_text(row, i++, r->connection_id, sizeof(r->connection_id));
    db_row_text(row, i++, r->parameters, sizeof(r->parameters));
    db_row_text(row, i++, r->secrets_mapping, sizeof(r->secrets_mapping));
    db_row_text(row, i++, r->consumers, sizeof(r->consumers));
    r->interval_days = db_row_int64(row, i++);
    r->days_before_expiry = db_row_int64(row, i++);
    r->rotate_at_minute = db_row_int64(row, i++);
    r->grace_period_ms = db_row_int64(row, i++);
    r->lifetime_ms = db_row_int64(row, i++);
    r->auto_rotate = db_row_int64(row, i++) != 0;
    r->generation = db_row_int64(row, i++);
    db_row_text(row, i++, r->current_cred_id, sizeof(r->current_cred_id));
    r->current_expires_at = db_row_int64(row, i++);
    db_row_text(row, i++, r->previous_cred_id, sizeof(r->previous_cred_id));
    db_row_text(row, i++, r->pending_step, sizeof(r->pending_step));
    r->pending_generation = db_row_int64(row, i++);
    db_row_text(row, i++, r->pending_cred_id, sizeof(r->pending_cred_id));
    r->pending_expires_at = db_row_int64(row, i++);
    r->pending_version = db_row_int64(row, i++);
    r->pending_consumer = db_row_int64(row, i++);
    r->grace_until = db_row_int64(row, i++);
    r->step_started_at = db_row_int64(row, i++);
    r->step_attempts = db_row_int64(row, i++);
    r->next_attempt_at = db_row_int64(row, i++);
    db_row_text(row, i++, r->last_error, sizeof(r->last_error));
    db_row_text(row, i++, r->last_error_cause, sizeof(r->last_error_cause));
    db_row_text(row, i++, r->last_error_step, sizeof(r->last_error_step));
    db_row_text(row, i++, r->notified_error, sizeof(r->notified_error));
    db_row_text(row, i++, r->status, sizeof(r->status));
    r->run_requested = db_row_int64(row, i++) != 0;
    r->last_rotated_at = db_row_int64(row, i++);
    r->next_rotation_at = db_row_int64(row, i++);
    db_row_text(row, i++, r->claim_owner, sizeof(r->claim_owner));
    r->claim_until = db_row_int64(row, i++);
    r->created_at = db_row_int64(row, i++);
    r->updated_at = db_row_int64(row, i++);
    return db_row_status(row);
}

static enum cf_rc read_event(const struct db_row *row, void *item)
{
    struct cf_rotation_event *e = item;
    db_row_text(row, 0, e->rotation_id, sizeof(e->rotation_id));
    e->generation = db_row_int64(row, 1);
    db_row_text(row, 2, e->step, sizeof(e->step));
    db_row_text(row, 3, e->outcome, sizeof(e->outcome));
    db_row_text(row, 4, e->cause, sizeof(e->cause));
    db_row_text(row, 5, e->message, sizeof(e->message));
    db_row_text(row, 6, e->credential_id, sizeof(e->credential_id));
    e->at = db_row_int64(row, 7);
    return db_row_status(row);
}

void cf_rotation_list_release(struct cf_rotation_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void cf_rotation_event_list_release(struct cf_rotation_event_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static enum cf_rc not_found(const char *id, struct cf_err *err)
{
    return cf_err_set(err, CF_ENOTFOUND, "Secret rotation with ID '%s' not found", id);
}

static struct sql_stmt ST_ROTATION_BY_ID =
    SQL_STMT("SELECT " ROT_COLS " FROM rotations WHERE id = ?1");

/* The rotation id, read on c, or CF_ENOTFOUND. */
static enum cf_rc rotation_read(struct db_conn *c, const char *id, struct cf_rotation *out,
                                struct cf_err *err)
{
    struct sql_collector r = {.size = sizeof(struct cf_rotation), .read = read_rotation};
    enum cf_rc rc = sql_run(c, &ST_ROTATION_BY_ID, ARGS(A_TEXT(id)), sql_collect, &r, NULL, err);
    if (rc == CF_OK && r.n == 0)
        rc = not_found(id, err);
    if (rc == CF_OK)
        *out = *(struct cf_rotation *)r.items;
    free(r.items);
    return rc;
}

static struct sql_stmt ST_ROTATION_NAME_TAKEN =
    SQL_STMT("SELECT id FROM rotations WHERE project_id = ?1 AND name = ?2"
             " AND id <> ?3");

static enum cf_rc name_taken(struct db_conn *c, const struct cf_rotation *rot, struct cf_err *err)
{
    int64_t n = 0;
    enum cf_rc rc = sql_run(c, &ST_ROTATION_NAME_TAKEN,
                            ARGS(A_TEXT(rot->project_id), A_TEXT(rot->name), A_TEXT(rot->id)),
                            sql_count_row, &n, NULL, err);
    if (rc == CF_OK && n > 0)
        rc = cf_err_set(err, CF_EEXIST,
                        "A secret rotation named '%s' already exists in this project", rot->name);
    return rc;
}

static struct sql_stmt ST_ROTATION_INSERT =
    SQL_STMT("INSERT INTO rotations (id, project_id, name, description, env_id,"
             " folder_path, type, connection_id, parameters, secrets_mapping, consumers,"
             " interval_days, days_before_expiry, rotate_at_minute, grace_period_ms,"
             " lifetime_ms, auto_rotate, next_rotation_at, status, created_at, updated_at,"
             " current_cred_id, current_expires_at)"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
             " ?16, ?17, ?18, 'idle', ?19, ?19, ?20, ?21)");

enum cf_rc cf_store_rotation_create(struct cf_store *st, const struct cf_rotation *r,
                                    struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = name_taken(c, r, err);
    if (rc == CF_OK)
        rc = sql_run(c, &ST_ROTATION_INSERT,
                     ARGS(A_TEXT(r->id), A_TEXT(r->project_id), A_TEXT(r->name),
                          A_TEXT(r->description), A_TEXT(r->env_id), A_TEXT(r->folder_path),
                          A_TEXT(r->type), A_TEXT(r->connection_id), A_TEXT(r->parameters),
                          A_TEXT(r->secrets_mapping), A_TEXT(r->consumers), A_INT(r->interval_days),
                          A_INT(r->days_before_expiry), A_INT(r->rotate_at_minute),
                          A_INT(r->grace_period_ms), A_INT(r->lifetime_ms), A_INT(r->auto_rotate),
                          A_INT(r->next_rotation_at), A_INT(r->created_at),
                          A_TEXT(r->current_cred_id), A_INT(r->current_expires_at)),
                     NULL, NULL, NULL, err);
    return sql_tx_end(c, rc, err);
}

enum cf_rc cf_store_rotation_get(struct cf_store *st, const char *id, struct cf_rotation *out,
                                 struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_conn_get(st, &c, err);
    if (rc == CF_OK)
        rc = rotation_read(c, id, out, err);
    return rc;
}

static struct sql_stmt ST_ROTATION_LIST_ALL =
    SQL_STMT("SELECT " ROT_COLS " FROM rotations ORDER BY project_id, name, id");

static struct sql_stmt ST_ROTATION_LIST_PROJECT =
    SQL_STMT("SELECT " ROT_COLS " FROM rotations WHERE project_id = ?1 ORDER BY name, id");

enum cf_rc cf_store_rotation_list(struct cf_store *st, const char *project_id,
                                  struct cf_rotation_list *out, struct cf_err *err)
{
    struct db_conn *c;
    struct sql_collector r = {.size = sizeof(struct cf_rotation), .read = read_rotation};
    enum cf_rc rc = sql_conn_get(st, &c, err);
    if (rc == CF_OK && project_id)
        rc = sql_run(c, &ST_ROTATION_LIST_PROJECT, ARGS(A_TEXT(project_id)), sql_collect, &r, NULL,
                     err);
    else if (rc == CF_OK)
        rc = sql_run(c, &ST_ROTATION_LIST_ALL, NULL, 0, sql_collect, &r, NULL, err);
    out->items = r.items;
    out->n = r.n;
    if (rc != CF_OK)
        cf_rotation_list_release(out);
    return rc;
}

static struct sql_stmt ST_ROTATION_UPDATE =
    SQL_STMT("UPDATE rotations SET name = ?2, description = ?3, parameters = ?4,"
             " secrets_mapping = ?5, consumers = ?6, interval_days = ?7,"
             " days_before_expiry = ?8, rotate_at_minute = ?9, grace_period_ms = ?10,"
             " lifetime_ms = ?11, auto_rotate = ?12, next_rotation_at = ?13,"
             " updated_at = ?14 WHERE id = ?1");

enum cf_rc cf_store_rotation_update(struct cf_store *st, const struct cf_rotation *r,
                                    struct cf_err *err)
{
    struct db_conn *c;
    int64_t changed = 0;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = name_taken(c, r, err);
    if (rc == CF_OK)
        rc = sql_run(c, &ST_ROTATION_UPDATE,
                     ARGS(A_TEXT(r->id), A_TEXT(r->name), A_TEXT(r->description),
                          A_TEXT(r->parameters), A_TEXT(r->secrets_mapping), A_TEXT(r->consumers),
                          A_INT(r->interval_days), A_INT(r->days_before_expiry),
                          A_INT(r->rotate_at_minute), A_INT(r->grace_period_ms),
                          A_INT(r->lifetime_ms), A_INT(r->auto_rotate), A_INT(r->next_rotation_at),
                          A_INT(r->updated_at)),
                     NULL, NULL, &changed, err);
    if (rc == CF_OK && changed == 0)
        rc = not_found(r->id, err);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_ROTATION_DELETE = SQL_STMT("DELETE FROM rotations WHERE id = ?1");

static struct sql_stmt ST_ROTATION_HISTORY_DELETE =
    SQL_STMT("DELETE FROM rotation_history WHERE rotation_id = ?1");

enum cf_rc cf_store_rotation_delete(struct cf_store *st, const char *id, struct cf_err *err)
{
    struct db_conn *c;
    int64_t changed = 0;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    /* History first: both databases cascade, but SQLite only with foreign keys on. */
    rc = sql_run(c, &ST_ROTATION_HISTORY_DELETE, ARGS(A_TEXT(id)), NULL, NULL, NULL, err);
    if (rc == CF_OK)
        rc = sql_run(c, &ST_ROTATION_DELETE, ARGS(A_TEXT(id)), NULL, NULL, &changed, err);
    if (rc == CF_OK && changed == 0)
        rc = not_found(id, err);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_ROTATION_REQUEST_RUN =
    SQL_STMT("UPDATE rotations SET run_requested = 1, next_attempt_at = 0 WHERE id = ?1");

enum cf_rc cf_store_rotation_request(struct cf_store *st, const char *id, struct cf_err *err)
{
    struct db_conn *c;
    int64_t changed = 0;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_run(c, &ST_ROTATION_REQUEST_RUN, ARGS(A_TEXT(id)), NULL, NULL, &changed, err);
    if (rc == CF_OK && changed == 0)
        rc = not_found(id, err);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_ROTATION_DUE = SQL_STMT("SELECT id FROM rotations WHERE " DUE_WHERE
                                                  " ORDER BY next_attempt_at, updated_at LIMIT ?2");

enum cf_rc cf_store_rotations_due(struct cf_store *st, int64_t now, size_t limit,
                                  char (*ids)[CF_UUID_LEN], size_t *n, struct cf_err *err)
{
    struct db_conn *c;
    struct sql_ids r = {ids, 0, limit};
    enum cf_rc rc = sql_conn_get(st, &c, err);
    if (rc == CF_OK)
        rc = sql_run(c, &ST_ROTATION_DUE, ARGS(A_INT(now), A_INT(limit)), sql_read_ids, &r, NULL,
                     err);
    *n = r.n;
    return rc;
}

static struct sql_stmt ST_ROTATION_CLAIM = SQL_STMT(
    "UPDATE rotations SET claim_owner = ?3, claim_until = ?4 WHERE " DUE_WHERE " AND id = ?2");

enum cf_rc cf_store_rotation_claim(struct cf_store *st, const char *id, const char *owner,
                                   int64_t now, int64_t lease_ms, bool *claimed,
                                   struct cf_rotation *out, struct cf_err *err)
{
    struct db_conn *c;
    int64_t changed = 0;
    *claimed = false;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_run(c, &ST_ROTATION_CLAIM,
                 ARGS(A_INT(now), A_TEXT(id), A_TEXT(owner), A_INT(now + lease_ms)), NULL, NULL,
                 &changed, err);
    if (rc == CF_OK && changed == 1)
        rc = rotation_read(c, id, out, err);
    rc = sql_tx_end(c, rc, err);
    *claimed = rc == CF_OK && changed == 1;
    return rc;
}

static struct sql_stmt ST_ROTATION_HISTORY_INSERT =
    SQL_STMT("INSERT INTO rotation_history (id, seq, " EVENT_COLS ")"
             " VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM rotation_history"
             " WHERE rotation_id = ?2), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");

static struct sql_stmt ST_ROTATION_SAVE_STATE = SQL_STMT(
    "UPDATE rotations SET generation = ?3, current_cred_id = ?4, current_expires_at = ?5,"
    " previous_cred_id = ?6, pending_step = ?7, pending_generation = ?8,"
    " pending_cred_id = ?9, pending_expires_at = ?10, pending_version = ?11,"
    " pending_consumer = ?12, grace_until = ?13, step_started_at = ?14, step_attempts = ?15,"
    " next_attempt_at = ?16, last_error = ?17, last_error_cause = ?18,"
    " last_error_step = ?19, notified_error = ?20, status = ?21, run_requested = ?22,"
    " last_rotated_at = ?23, next_rotation_at = ?24, claim_until = ?25,"
    " claim_owner = CASE WHEN ?26 = 1 THEN '' ELSE claim_owner END, updated_at = ?27"
    " WHERE id = ?1 AND claim_owner = ?2");

enum cf_rc cf_store_rotation_save(struct cf_store *st, const struct cf_rotation *r,
                                  const char *owner, bool release,
                                  const struct cf_rotation_event *e, struct cf_err *err)
{
    struct db_conn *c;
    int64_t changed = 0;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_run(
        c, &ST_ROTATION_SAVE_STATE,
        ARGS(A_TEXT(r->id), A_TEXT(owner), A_INT(r->generation), A_TEXT(r->current_cred_id),
             A_INT(r->current_expires_at), A_TEXT(r->previous_cred_id), A_TEXT(r->pending_step),
             A_INT(r->pending_generation), A_TEXT(r->pending_cred_id), A_INT(r->pending_expires_at),
             A_INT(r->pending_version), A_INT(r->pending_consumer), A_INT(r->grace_until),
             A_INT(r->step_started_at), A_INT(r->step_attempts), A_INT(r->next_attempt_at),
             A_TEXT(r->last_error), A_TEXT(r->last_error_cause), A_TEXT(r->last_error_step),
             A_TEXT(r->notified_error), A_TEXT(r->status), A_INT(r->run_requested),
             A_INT(r->last_rotated_at), A_INT(r->next_rotation_at),
             A_INT(release ? 0 : r->claim_until), A_INT(release), A_INT(r->updated_at)),
        NULL, NULL, &changed, err);
    if (rc == CF_OK && changed == 0)
        rc = cf_err_set(err, CF_ECONFLICT,
                        "the claim on secret rotation '%s' was lost (its lease ran out)", r->id);
    if (rc == CF_OK && e) {
        char id[CF_UUID_LEN];
        cf_uuid_new(id);
        rc = sql_run(c, &ST_ROTATION_HISTORY_INSERT,
                     ARGS(A_TEXT(id), A_TEXT(r->id), A_INT(e->generation), A_TEXT(e->step),
                          A_TEXT(e->outcome), A_TEXT(e->cause), A_TEXT(e->message),
                          A_TEXT(e->credential_id), A_INT(e->at)),
                     NULL, NULL, NULL, err);
    }
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_ROTATION_HISTORY_LIST =
    SQL_STMT("SELECT " EVENT_COLS " FROM rotation_history WHERE rotation_id = ?1"
             " ORDER BY seq DESC LIMIT ?2");

enum cf_rc cf_store_rotation_history(struct cf_store *st, const char *id, size_t limit,
                                     struct cf_rotation_event_list *out, struct cf_err *err)
{
    struct db_conn *c;
    struct sql_collector r = {.size = sizeof(struct cf_rotation_event), .read = read_event};
    enum cf_rc rc = sql_conn_get(st, &c, err);
    /* seq, not at: several steps may end within one millisecond. */
    if (rc == CF_OK)
        rc = sql_run(c, &ST_ROTATION_HISTORY_LIST, ARGS(A_TEXT(id), A_INT(limit)), sql_collect, &r,
                     NULL, err);
    out->items = r.items;
    out->n = r.n;
    if (rc != CF_OK)
        cf_rotation_event_list_release(out);
    return rc;
}
