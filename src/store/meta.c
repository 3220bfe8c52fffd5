/* The store itself (sqldb.h): its setup and release over a driver, the operations table, and the
 * server-wide operations of store.h: ping, the background-job lock, meta values, root key rewrap,
 * and the migration bookkeeping the drivers run. */
#include <sodium.h>

#include "store/shared.h"
#include "util/time.h"
#include "util/banned.h"

/* Closes every connection (the driver's part) after releasing the driver-independent part. The
 * caller must have stopped the threads that use the store. */
void sq_close(struct cf_store *base)
{
    struct sql_store *st = sql_store_of(base);
    if (!st)
        return;
    sql_store_release(st);
    st->drv->close(st);
}

enum cf_rc sq_job_lock(struct cf_store *base, const char *job, bool *held, struct cf_err *err)
{
    struct sql_store *st = sql_store_of(base);
    if (!st->drv->job_lock) {
        *held = true;
        return CF_OK;
    }
    return st->drv->job_lock(st, job, held, err);
}

static struct sql_stmt ST_PING = SQL_STMT("SELECT 1");

enum cf_rc sq_ping(struct cf_store *base, struct cf_err *err)
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

enum cf_rc sq_meta_get(struct cf_store *base, const char *name, uint8_t **value, size_t *len,
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

enum cf_rc sq_meta_put(struct cf_store *base, const char *name, const uint8_t *value, size_t len,
                       struct cf_err *err)
{
    return meta_write(base, &ST_META_PUT, name, value, len, err);
}

static struct sql_stmt ST_META_INSERT = SQL_STMT("INSERT INTO meta (name, value) VALUES (?1, ?2)");

enum cf_rc sq_meta_insert(struct cf_store *base, const char *name, const uint8_t *value, size_t len,
                          struct cf_err *err)
{
    return meta_write(base, &ST_META_INSERT, name, value, len, err);
}

static struct sql_stmt ST_META_SWAP =
    SQL_STMT("UPDATE meta SET value = ?3 WHERE name = ?1 AND value = ?2");

enum cf_rc sq_meta_swap(struct cf_store *base, const char *name, const uint8_t *expected,
                        size_t expected_len, const uint8_t *value, size_t len, struct cf_err *err)
{
    int64_t changes = 0;
    enum cf_rc rc = sql_exec_in_tx(
        base, &ST_META_SWAP, ARGS(A_TEXT(name), A_BLOB(expected, expected_len), A_BLOB(value, len)),
        &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ECONFLICT, "meta value '%s' changed meanwhile", name);
    return rc;
}

static struct sql_stmt ST_PROJECT_SET_KEY =
    SQL_STMT("UPDATE projects SET wrapped_key = ?2, updated_at = ?3 WHERE id = ?1");

enum cf_rc sq_rewrap_keys(struct cf_store *base, const struct cf_key_update *updates, size_t n,
                          const uint8_t *root_check, size_t root_check_len, struct cf_err *err)
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

static const struct cf_store_ops sq_ops = {
    .close = sq_close,
    .job_lock = sq_job_lock,
    .ping = sq_ping,
    .meta_get = sq_meta_get,
    .meta_put = sq_meta_put,
    .meta_insert = sq_meta_insert,
    .rewrap_keys = sq_rewrap_keys,
    .project_create = sq_project_create,
    .project_get = sq_project_get,
    .project_list = sq_project_list,
    .project_delete = sq_project_delete,
    .env_create = sq_env_create,
    .env_list = sq_env_list,
    .env_get = sq_env_get,
    .env_update = sq_env_update,
    .env_delete = sq_env_delete,
    .folder_create = sq_folder_create,
    .folder_get = sq_folder_get,
    .folder_list = sq_folder_list,
    .folder_delete = sq_folder_delete,
    .secret_write = sq_secret_write,
    .secret_list = sq_secret_list,
    .secret_expiring = sq_secret_expiring,
    .secret_inventory = sq_secret_inventory,
    .secret_get = sq_secret_get,
    .secret_get_by_id = sq_secret_get_by_id,
    .secret_history = sq_secret_history,
    .import_create = sq_import_create,
    .import_list = sq_import_list,
    .import_get = sq_import_get,
    .import_delete = sq_import_delete,
    .tag_create = sq_tag_create,
    .tag_get = sq_tag_get,
    .tag_list = sq_tag_list,
    .identity_create = sq_identity_create,
    .identity_get = sq_identity_get,
    .identity_list = sq_identity_list,
    .identity_update = sq_identity_update,
    .identity_delete = sq_identity_delete,
    .ua_attach = sq_ua_attach,
    .ua_update = sq_ua_update,
    .ua_get = sq_ua_get,
    .ua_get_by_client_id = sq_ua_get_by_client_id,
    .jwt_auth_attach = sq_jwt_auth_attach,
    .jwt_auth_update = sq_jwt_auth_update,
    .jwt_auth_get = sq_jwt_auth_get,
    .kubernetes_auth_attach = sq_k8s_auth_attach,
    .kubernetes_auth_update = sq_k8s_auth_update,
    .kubernetes_auth_get = sq_k8s_auth_get,
    .client_secret_create = sq_client_secret_create,
    .client_secret_list = sq_client_secret_list,
    .channel_create = sq_channel_create,
    .channel_list = sq_channel_list,
    .channel_delete = sq_channel_delete,
    .notify_thresholds_get = sq_notify_thresholds_get,
    .notify_thresholds_put = sq_notify_thresholds_put,
    .notice_claim = sq_notice_claim,
    .notice_due = sq_notice_due,
    .notice_update = sq_notice_update,
    .notice_list = sq_notice_list,
    .audit_append = sq_audit_append,
    .audit_list = sq_audit_list,
    .audit_get = sq_audit_get,
    .audit_checkpoint_add = sq_audit_checkpoint_add,
    .audit_checkpoint_list = sq_audit_checkpoint_list,
    .client_secret_expiring = sq_client_secret_expiring,
    .client_secret_get = sq_client_secret_get,
    .client_secret_revoke = sq_client_secret_revoke,
    .client_secret_use = sq_client_secret_use,
    .token_create = sq_token_create,
    .token_get = sq_token_get,
    .token_use = sq_token_use,
    .token_renew = sq_token_renew,
    .token_revoke = sq_token_revoke,
    .membership_put = sq_membership_put,
    .membership_get = sq_membership_get,
    .membership_list = sq_membership_list,
    .membership_delete = sq_membership_delete,
    .auth_method_remove = sq_auth_method_remove,
    .meta_swap = sq_meta_swap,
};

enum cf_rc sql_store_init(struct sql_store *st, const struct db_driver *drv, struct cf_err *err)
{
    st->base.ops = &sq_ops;
    st->base.backend = drv->name;
    st->drv = drv;
    if (pthread_mutex_init(&st->jobs_lock, NULL) != 0)
        return cf_err_set(err, CF_ESTORE, "cannot create a mutex");
    if (pthread_cond_init(&st->jobs_done, NULL) != 0) {
        pthread_mutex_destroy(&st->jobs_lock);
        return cf_err_set(err, CF_ESTORE, "cannot create a condition variable");
    }
    return CF_OK;
}

void sql_store_release(struct sql_store *st)
{
    if (!st || !st->drv)
        return;
    pthread_mutex_destroy(&st->jobs_lock);
    pthread_cond_destroy(&st->jobs_done);
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
