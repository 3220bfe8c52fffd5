/* Dynamic secrets and leases in the store (store/dynamic.h). Portable SQL for SQLite and
 * PostgreSQL; every write in the driver's write transaction, serial across every process sharing
 * the database, which is what makes a lease's claim taken by one node only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlrun.h"
#include "store/dynamic.h"
#include "util/str.h"
#include "util/banned.h"

#define DS_COLS                                                                                    \
    "id, project_id, env_id, folder_path, name, type, connection_id, params, default_ttl_ms,"      \
    " max_ttl_ms, created_at, updated_at"
#define LEASE_COLS                                                                                 \
    "id, dynamic_secret_id, project_id, actor_kind, actor_id, actor_name, created_at,"             \
    " expires_at, state, provider_id, revoke_attempts, next_attempt_at, last_error, notified,"     \
    " revoked_at, claim_owner, claim_until"

/* Active, not held by a live claim at ?1. */
#define FREE_WHERE "state = 'active' AND claim_until < ?1"
/* ... and ended, with its next revocation attempt due. */
#define DUE_WHERE FREE_WHERE " AND expires_at <= ?1 AND next_attempt_at <= ?1"

static enum cf_rc read_ds(const struct db_row *row, void *item)
{
    struct cf_dynamic_secret *d = item;
    int i = 0;
    db_row_text(row, i++, d->id, sizeof(d->id));
    db_row_text(row, i++, d->project_id, sizeof(d->project_id));
    db_row_text(row, i++, d->env_id, sizeof(d->env_id));
    db_row_text(row, i++, d->folder_path, sizeof(d->folder_path));
    db_row_text(row, i++, d->name, sizeof(d->name));
    db_row_text(row, i++, d->type, sizeof(d->type));
    db_row_text(row, i++, d->connection_id, sizeof(d->connection_id));
    db_row_text(row, i++, d->params, sizeof(d->params));
    d->default_ttl_ms = db_row_int64(row, i++);
    d->max_ttl_ms = db_row_int64(row, i++);
    d->created_at = db_row_int64(row, i++);
    d->updated_at = db_row_int64(row, i++);
    return db_row_status(row);
}

static enum cf_rc read_lease(const struct db_row *row, void *item)
{
    struct cf_lease *l = item;
    int i = 0;
    db_row_text(row, i++, l->id, sizeof(l->id));
    db_row_text(row, i++, l->dynamic_secret_id, sizeof(l->dynamic_secret_id));
    db_row_text(row, i++, l->project_id, sizeof(l->project_id));
    db_row_text(row, i++, l->actor_kind, sizeof(l->actor_kind));
    db_row_text(row, i++, l->actor_id, sizeof(l->actor_id));
    db_row_text(row, i++, l->actor_name, sizeof(l->actor_name));
    l->created_at = db_row_int64(row, i++);
    l->expires_at = db_row_int64(row, i++);
    db_row_text(row, i++, l->state, sizeof(l->state));
    db_row_text(row, i++, l->provider_id, sizeof(l->provider_id));
    l->revoke_attempts = db_row_int64(row, i++);
    l->next_attempt_at = db_row_int64(row, i++);
    db_row_text(row, i++, l->last_error, sizeof(l->last_error));
    l->notified = db_row_int64(row, i++) != 0;
    l->revoked_at = db_row_int64(row, i++);
    db_row_text(row, i++, l->claim_owner, sizeof(l->claim_owner));
    l->claim_until = db_row_int64(row, i++);
    return db_row_status(row);
}

void cf_dynamic_secret_list_release(struct cf_dynamic_secret_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void cf_lease_list_release(struct cf_lease_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static enum cf_rc ds_not_found(const char *what, struct cf_err *err)
{
    return cf_err_set(err, CF_ENOTFOUND, "Dynamic secret '%s' not found", what);
}

static enum cf_rc lease_not_found(const char *id, struct cf_err *err)
{
    return cf_err_set(err, CF_ENOTFOUND, "Lease with ID '%s' not found", id);
}

/* ---- dynamic secrets ------------------------------------------------------------------------- */

static struct sql_stmt ST_DS_BY_ID =
    SQL_STMT("SELECT " DS_COLS " FROM dynamic_secrets WHERE id = ?1");

static enum cf_rc ds_read(struct db_conn *c, const char *id, struct cf_dynamic_secret *out,
                          struct cf_err *err)
{
    /* read aside: callers pass an id that lives in *out */
    struct cf_dynamic_secret got;
    memset(&got, 0, sizeof(got));
    enum cf_rc rc = sql_get_required(c, &ST_DS_BY_ID, ARGS(A_TEXT(id)), read_ds, &got,
                                     "Dynamic secret", id, err);
    if (rc == CF_OK)
        *out = got;
    return rc;
}

static struct sql_stmt ST_DS_NAME_TAKEN =
    SQL_STMT("SELECT id FROM dynamic_secrets WHERE project_id = ?1 AND env_id = ?2"
             " AND folder_path = ?3 AND name = ?4 AND id <> ?5");

static enum cf_rc ds_name_taken(struct db_conn *c, const struct cf_dynamic_secret *d,
                                struct cf_err *err)
{
    int64_t n = 0;
    enum cf_rc rc = sql_run(c, &ST_DS_NAME_TAKEN,
                            ARGS(A_TEXT(d->project_id), A_TEXT(d->env_id), A_TEXT(d->folder_path),
                                 A_TEXT(d->name), A_TEXT(d->id)),
                            sql_count_row, &n, NULL, err);
    if (rc == CF_OK && n > 0)
        rc = cf_err_set(err, CF_EEXIST, "A dynamic secret named '%s' already exists in this folder",
                        d->name);
    return rc;
}

static struct sql_stmt ST_DS_INSERT = SQL_STMT("INSERT INTO dynamic_secrets (" DS_COLS
                                               ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
                                               " ?11, ?12)");

enum cf_rc cf_store_dynamic_create(struct cf_store *st, const struct cf_dynamic_secret *d,
                                   struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = ds_name_taken(c, d, err);
    if (rc == CF_OK)
        rc = sql_run(c, &ST_DS_INSERT,
                     ARGS(A_TEXT(d->id), A_TEXT(d->project_id), A_TEXT(d->env_id),
                          A_TEXT(d->folder_path), A_TEXT(d->name), A_TEXT(d->type),
                          A_TEXT(d->connection_id), A_TEXT(d->params), A_INT(d->default_ttl_ms),
                          A_INT(d->max_ttl_ms), A_INT(d->created_at), A_INT(d->updated_at)),
                     NULL, NULL, NULL, err);
    return sql_tx_end(c, rc, err);
}

enum cf_rc cf_store_dynamic_get(struct cf_store *st, const char *id, struct cf_dynamic_secret *out,
                                struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_conn_get(st, &c, err);
    if (rc == CF_OK)
        rc = ds_read(c, id, out, err);
    return rc;
}

static struct sql_stmt ST_DS_FIND =
    SQL_STMT("SELECT " DS_COLS " FROM dynamic_secrets WHERE project_id = ?1 AND env_id = ?2"
             " AND folder_path = ?3 AND name = ?4");

enum cf_rc cf_store_dynamic_find(struct cf_store *st, const char *project_id, const char *env_id,
                                 const char *folder_path, const char *name,
                                 struct cf_dynamic_secret *out, struct cf_err *err)
{
    struct cf_dynamic_secret got; /* read aside: the place and name may live in *out */
    memset(&got, 0, sizeof(got));
    enum cf_rc rc =
        sql_get_one(st, &ST_DS_FIND,
                    ARGS(A_TEXT(project_id), A_TEXT(env_id), A_TEXT(folder_path), A_TEXT(name)),
                    read_ds, &got, "Dynamic secret", name, err);
    if (rc == CF_OK)
        *out = got;
    return rc;
}

static struct sql_stmt ST_DS_LIST =
    SQL_STMT("SELECT " DS_COLS " FROM dynamic_secrets WHERE project_id = ?1 AND env_id = ?2"
             " AND folder_path = ?3 ORDER BY name");

enum cf_rc cf_store_dynamic_list(struct cf_store *st, const char *project_id, const char *env_id,
                                 const char *folder_path, struct cf_dynamic_secret_list *out,
                                 struct cf_err *err)
{
    struct db_conn *c;
    struct sql_collector r = {.size = sizeof(struct cf_dynamic_secret), .read = read_ds};
    enum cf_rc rc = sql_conn_get(st, &c, err);
    if (rc == CF_OK)
        rc = sql_run(c, &ST_DS_LIST, ARGS(A_TEXT(project_id), A_TEXT(env_id), A_TEXT(folder_path)),
                     sql_collect, &r, NULL, err);
    out->items = r.items;
    out->n = r.n;
    if (rc != CF_OK)
        cf_dynamic_secret_list_release(out);
    return rc;
}

static struct sql_stmt ST_DS_UPDATE =
    SQL_STMT("UPDATE dynamic_secrets SET name = ?2, params = ?3, default_ttl_ms = ?4,"
             " max_ttl_ms = ?5, updated_at = ?6 WHERE id = ?1");

enum cf_rc cf_store_dynamic_update(struct cf_store *st, const struct cf_dynamic_secret *d,
                                   struct cf_err *err)
{
    struct db_conn *c;
    int64_t changed = 0;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = ds_name_taken(c, d, err);
    if (rc == CF_OK)
        rc = sql_run(c, &ST_DS_UPDATE,
                     ARGS(A_TEXT(d->id), A_TEXT(d->name), A_TEXT(d->params),
                          A_INT(d->default_ttl_ms), A_INT(d->max_ttl_ms), A_INT(d->updated_at)),
                     NULL, NULL, &changed, err);
    if (rc == CF_OK && changed == 0)
        rc = ds_not_found(d->id, err);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_DS_ACTIVE_LEASES =
    SQL_STMT("SELECT id FROM dynamic_leases WHERE dynamic_secret_id = ?1 AND state = 'active'");
static struct sql_stmt ST_DS_LEASES_DELETE =
    SQL_STMT("DELETE FROM dynamic_leases WHERE dynamic_secret_id = ?1");
static struct sql_stmt ST_DS_DELETE = SQL_STMT("DELETE FROM dynamic_secrets WHERE id = ?1");

enum cf_rc cf_store_dynamic_delete(struct cf_store *st, const char *id, struct cf_err *err)
{
    struct db_conn *c;
    int64_t active = 0, changed = 0;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_run(c, &ST_DS_ACTIVE_LEASES, ARGS(A_TEXT(id)), sql_count_row, &active, NULL, err);
    if (rc == CF_OK && active > 0)
        rc = cf_err_set(err, CF_ECONFLICT,
                        "dynamic secret '%s' has %lld active lease(s): revoke them first", id,
                        (long long)active);
    /* Leases first: both databases cascade, but SQLite only with foreign keys on. */
    if (rc == CF_OK)
        rc = sql_run(c, &ST_DS_LEASES_DELETE, ARGS(A_TEXT(id)), NULL, NULL, NULL, err);
    if (rc == CF_OK)
        rc = sql_run(c, &ST_DS_DELETE, ARGS(A_TEXT(id)), NULL, NULL, &changed, err);
    if (rc == CF_OK && changed == 0)
        rc = ds_not_found(id, err);
    return sql_tx_end(c, rc, err);
}

/* ---- leases ---------------------------------------------------------------------------------- */

static struct sql_stmt ST_LEASE_INSERT = SQL_STMT(
    "INSERT INTO dynamic_leases (" LEASE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
    " ?11, ?12, ?13, ?14, ?15, ?16, ?17)");

enum cf_rc cf_store_lease_create(struct cf_store *st, const struct cf_lease *l, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_run(c, &ST_LEASE_INSERT,
                 ARGS(A_TEXT(l->id), A_TEXT(l->dynamic_secret_id), A_TEXT(l->project_id),
                      A_TEXT(l->actor_kind), A_TEXT(l->actor_id), A_TEXT(l->actor_name),
                      A_INT(l->created_at), A_INT(l->expires_at), A_TEXT(l->state),
                      A_TEXT(l->provider_id), A_INT(l->revoke_attempts), A_INT(l->next_attempt_at),
                      A_TEXT(l->last_error), A_INT(l->notified), A_INT(l->revoked_at),
                      A_TEXT(l->claim_owner), A_INT(l->claim_until)),
                 NULL, NULL, NULL, err);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_LEASE_BY_ID =
    SQL_STMT("SELECT " LEASE_COLS " FROM dynamic_leases WHERE id = ?1");

static enum cf_rc lease_read(struct db_conn *c, const char *id, struct cf_lease *out,
                             struct cf_err *err)
{
    /* read aside: callers pass an id that lives in *out */
    struct cf_lease got;
    memset(&got, 0, sizeof(got));
    enum cf_rc rc = sql_get_required(c, &ST_LEASE_BY_ID, ARGS(A_TEXT(id)), read_lease, &got,
                                     "Lease with ID", id, err);
    if (rc == CF_OK)
        *out = got;
    return rc;
}

enum cf_rc cf_store_lease_get(struct cf_store *st, const char *id, struct cf_lease *out,
                              struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_conn_get(st, &c, err);
    if (rc == CF_OK)
        rc = lease_read(c, id, out, err);
    return rc;
}

/* ?1, ?2: '' for no filter on the dynamic secret, the actor; ?3 1: active only. */
static struct sql_stmt ST_LEASE_LIST =
    SQL_STMT("SELECT " LEASE_COLS " FROM dynamic_leases WHERE (?1 = '' OR dynamic_secret_id = ?1)"
             " AND (?2 = '' OR actor_id = ?2) AND (?3 = 0 OR state = 'active')"
             " ORDER BY created_at DESC, id LIMIT ?4");

enum cf_rc cf_store_lease_list(struct cf_store *st, const char *dynamic_secret_id,
                               const char *actor_id, bool active_only, size_t limit,
                               struct cf_lease_list *out, struct cf_err *err)
{
    struct db_conn *c;
    struct sql_collector r = {.size = sizeof(struct cf_lease), .read = read_lease};
    enum cf_rc rc = sql_conn_get(st, &c, err);
    if (rc == CF_OK)
        rc = sql_run(c, &ST_LEASE_LIST,
                     ARGS(A_TEXT(dynamic_secret_id ? dynamic_secret_id : ""),
                          A_TEXT(actor_id ? actor_id : ""), A_INT(active_only), A_INT(limit)),
                     sql_collect, &r, NULL, err);
    out->items = r.items;
    out->n = r.n;
    if (rc != CF_OK)
        cf_lease_list_release(out);
    return rc;
}

static struct sql_stmt ST_LEASE_SET_PROVIDER_ID =
    SQL_STMT("UPDATE dynamic_leases SET provider_id = ?2,"
             " expires_at = CASE WHEN ?3 > 0 AND ?3 < expires_at THEN ?3 ELSE expires_at END"
             " WHERE id = ?1");
static struct sql_stmt ST_LEASE_DELETE = SQL_STMT("DELETE FROM dynamic_leases WHERE id = ?1");

enum cf_rc cf_store_lease_created(struct cf_store *st, const char *id, const char *provider_id,
                                  int64_t credential_end, struct cf_err *err)
{
    struct db_conn *c;
    int64_t changed = 0;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    if (provider_id)
        rc = sql_run(c, &ST_LEASE_SET_PROVIDER_ID,
                     ARGS(A_TEXT(id), A_TEXT(provider_id), A_INT(credential_end)), NULL, NULL,
                     &changed, err);
    else
        rc = sql_run(c, &ST_LEASE_DELETE, ARGS(A_TEXT(id)), NULL, NULL, &changed, err);
    if (rc == CF_OK && changed == 0)
        rc = lease_not_found(id, err);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_LEASES_DUE =
    SQL_STMT("SELECT id FROM dynamic_leases WHERE " DUE_WHERE " ORDER BY expires_at, id LIMIT ?2");

enum cf_rc cf_store_leases_due(struct cf_store *st, int64_t now, size_t limit,
                               char (*ids)[CF_UUID_LEN], size_t *n, struct cf_err *err)
{
    struct db_conn *c;
    struct sql_ids r = {ids, 0, limit};
    enum cf_rc rc = sql_conn_get(st, &c, err);
    if (rc == CF_OK)
        rc =
            sql_run(c, &ST_LEASES_DUE, ARGS(A_INT(now), A_INT(limit)), sql_read_ids, &r, NULL, err);
    *n = r.n;
    return rc;
}

static struct sql_stmt ST_LEASE_CLAIM_DUE = SQL_STMT(
    "UPDATE dynamic_leases SET claim_owner = ?3, claim_until = ?4 WHERE id = ?2 AND " DUE_WHERE);
static struct sql_stmt ST_LEASE_CLAIM_ANY = SQL_STMT(
    "UPDATE dynamic_leases SET claim_owner = ?3, claim_until = ?4 WHERE id = ?2 AND " FREE_WHERE);

enum cf_rc cf_store_lease_claim(struct cf_store *st, const char *id, const char *owner, int64_t now,
                                int64_t claim_ms, bool any_time, bool *claimed,
                                struct cf_lease *out, struct cf_err *err)
{
    struct db_conn *c;
    int64_t changed = 0;
    *claimed = false;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_run(c, any_time ? &ST_LEASE_CLAIM_ANY : &ST_LEASE_CLAIM_DUE,
                 ARGS(A_INT(now), A_TEXT(id), A_TEXT(owner), A_INT(now + claim_ms)), NULL, NULL,
                 &changed, err);
    if (rc == CF_OK && changed == 1)
        rc = lease_read(c, id, out, err);
    rc = sql_tx_end(c, rc, err);
    *claimed = rc == CF_OK && changed == 1;
    return rc;
}

static struct sql_stmt ST_LEASE_SAVE =
    SQL_STMT("UPDATE dynamic_leases SET state = ?3, revoke_attempts = ?4, next_attempt_at = ?5,"
             " last_error = ?6, notified = ?7, revoked_at = ?8, expires_at = ?9, claim_owner = '',"
             " claim_until = 0"
             " WHERE id = ?1 AND claim_owner = ?2");

enum cf_rc cf_store_lease_save(struct cf_store *st, const struct cf_lease *l, const char *owner,
                               struct cf_err *err)
{
    struct db_conn *c;
    int64_t changed = 0;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_run(c, &ST_LEASE_SAVE,
                 ARGS(A_TEXT(l->id), A_TEXT(owner), A_TEXT(l->state), A_INT(l->revoke_attempts),
                      A_INT(l->next_attempt_at), A_TEXT(l->last_error), A_INT(l->notified),
                      A_INT(l->revoked_at), A_INT(l->expires_at)),
                 NULL, NULL, &changed, err);
    if (rc == CF_OK && changed == 0)
        rc = cf_err_set(err, CF_ECONFLICT, "the claim on lease '%s' was lost (it ran out)", l->id);
    return sql_tx_end(c, rc, err);
}
