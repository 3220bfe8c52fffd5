/* What several domain files of the store share (shared.h). */
#include <string.h>

#include <sodium.h>

#include "store/shared.h"
#include "util/banned.h"

struct sql_stmt ST_FOLDER_BY_ID = SQL_STMT("SELECT " FOLDER_COLS " FROM folders WHERE id = ?1");

struct sql_stmt ST_FOLDER_BY_PATH =
    SQL_STMT("SELECT " FOLDER_COLS " FROM folders WHERE env_id = ?1 AND path = ?2");

struct sql_stmt ST_IDENTITY_BY_ID =
    SQL_STMT("SELECT " IDENTITY_COLS " FROM identities WHERE id = ?1");

struct sql_stmt ST_CSECRET_USE = SQL_STMT(USE_ONE("identity_client_secrets"));

struct sql_stmt ST_CSECRET_USE_STATE =
    SQL_STMT("SELECT revoked, num_uses, num_uses_limit FROM identity_client_secrets WHERE id = ?1");

enum cf_rc sql_read_folder(const struct db_row *s, void *item)
{
    struct cf_folder *f = item;
    db_row_text(s, 0, f->id, sizeof(f->id));
    db_row_text(s, 1, f->env_id, sizeof(f->env_id));
    db_row_text(s, 2, f->parent_id, sizeof(f->parent_id));
    db_row_text(s, 3, f->name, sizeof(f->name));
    db_row_text(s, 4, f->path, sizeof(f->path));
    db_row_text(s, 5, f->description, sizeof(f->description));
    f->created_at = db_row_int64(s, 6);
    f->updated_at = db_row_int64(s, 7);
    return db_row_status(s);
}

enum cf_rc sql_read_identity(const struct db_row *s, void *item)
{
    struct cf_identity *i = item;
    db_row_text(s, 0, i->id, sizeof(i->id));
    db_row_text(s, 1, i->name, sizeof(i->name));
    i->created_at = db_row_int64(s, 2);
    i->updated_at = db_row_int64(s, 3);
    return db_row_status(s);
}

enum cf_rc sql_col_fixed(const struct db_row *s, int i, uint8_t *dst, size_t size)
{
    size_t len = 0;
    const void *blob = db_row_bytes(s, i, &len);
    if (blob && len == size) {
        memcpy(dst, blob, size);
        return CF_OK;
    }
    if (s->fault && s->fault->rc == CF_OK)
        cf_err_set(s->fault, CF_ESTORE, "column '%.64s' holds %zu bytes, not the %zu it must hold",
                   s->ops->name(s, i), blob ? len : 0, size);
    return CF_ESTORE;
}

const char *sql_str_or_empty(const char *s)
{
    return s ? s : "";
}

int64_t sql_time_or_now(int64_t t, int64_t now)
{
    return t > 0 ? t : now;
}

enum cf_rc sql_require_uuid(const char *id, const char *what, struct cf_err *err)
{
    if (cf_uuid_valid(id))
        return CF_OK;
    return cf_err_set(err, CF_EINVAL, "%s id '%s' is not a UUID", what, sql_str_or_empty(id));
}

enum cf_rc sql_subtree_bounds(const char *path, struct subtree *b, struct cf_err *err)
{
    const char *prefix = strcmp(path, "/") == 0 ? "" : path;
    if (strlen(path) > CF_PATH_MAX)
        return cf_err_set(err, CF_EINVAL, "folder path is longer than %d bytes", CF_PATH_MAX);
    snprintf(b->lo, sizeof(b->lo), "%s/", prefix);
    snprintf(b->hi, sizeof(b->hi), "%s0", prefix);
    return CF_OK;
}

enum cf_rc sql_folder_must_exist(struct db_conn *c, const char *env_id, const char *path,
                                 struct cf_err *err)
{
    struct cf_folder folder;
    return sql_get_required(c, &ST_FOLDER_BY_PATH, ARGS(A_TEXT(env_id), A_TEXT(path)),
                            sql_read_folder, &folder, "folder", path, err);
}

enum cf_rc sql_require_terminated(const char *field, size_t size, const char *what,
                                  struct cf_err *err)
{
    if (memchr(field, '\0', size))
        return CF_OK;
    return cf_err_set(err, CF_EINVAL, "%s is longer than %zu bytes", what, size - 1);
}

enum cf_rc sql_read_use_state(const struct db_row *s, void *item)
{
    struct use_state *u = item;
    u->revoked = (int)db_row_int64(s, 0) != 0;
    u->num_uses = db_row_int64(s, 1);
    u->num_uses_limit = db_row_int64(s, 2);
    return CF_OK;
}

/* Counts one use inside the caller's transaction (see sql_count_use). */
enum cf_rc sql_count_use_in(struct db_conn *c, struct sql_stmt *use_stmt,
                            struct sql_stmt *state_stmt, const char *what, const char *id,
                            struct cf_err *err)
{
    struct use_state state;
    int64_t changes = 0;
    enum cf_rc rc = sql_exec(c, use_stmt, ARGS(A_TEXT(id)), &changes, err);
    if (rc != CF_OK || changes > 0)
        return rc;
    rc = sql_get_required(c, state_stmt, ARGS(A_TEXT(id)), sql_read_use_state, &state, what, id,
                          err);
    if (rc == CF_OK && state.revoked)
        rc = cf_err_set(err, CF_ECONFLICT, "%s '%s' is revoked", what, id);
    else if (rc == CF_OK)
        rc = cf_err_set(err, CF_ECONFLICT, "%s '%s' has reached its use limit of %lld", what, id,
                        (long long)state.num_uses_limit);
    return rc;
}

enum cf_rc sql_count_use(struct cf_store *base, struct sql_stmt *use_stmt,
                         struct sql_stmt *state_stmt, const char *what, const char *id,
                         struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_count_use_in(c, use_stmt, state_stmt, what, id, err);
    return sql_tx_end(c, rc, err);
}
