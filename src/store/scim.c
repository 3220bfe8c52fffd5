/* SCIM provisioning in the store (store.h): the SCIM clients' tokens and the record of the users
 * they provisioned, as SQL run through sqlrun.h. */
#include <stdlib.h>
#include <string.h>

#include "store/shared.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define SCIM_TOKEN_COLS "id, name, hash, revoked, created_by, created_at, last_used_at"
#define SCIM_USER_COLS "user_id, user_name, external_id, created_at"

static enum cf_rc read_token(const struct db_row *s, void *item)
{
    struct cf_scim_token *t = item;
    db_row_text(s, 0, t->id, sizeof(t->id));
    db_row_text(s, 1, t->name, sizeof(t->name));
    t->revoked = db_row_int64(s, 3) != 0;
    db_row_text(s, 4, t->created_by, sizeof(t->created_by));
    t->created_at = db_row_int64(s, 5);
    t->last_used_at = db_row_int64(s, 6);
    enum cf_rc rc = db_row_status(s);
    return rc == CF_OK ? sql_col_fixed(s, 2, t->hash, sizeof(t->hash)) : rc;
}

static enum cf_rc read_scim_user(const struct db_row *s, void *item)
{
    struct cf_scim_user *u = item;
    db_row_text(s, 0, u->user_id, sizeof(u->user_id));
    db_row_text(s, 1, u->user_name, sizeof(u->user_name));
    db_row_text(s, 2, u->external_id, sizeof(u->external_id));
    u->created_at = db_row_int64(s, 3);
    return db_row_status(s);
}

static struct sql_stmt ST_TOKEN_INSERT =
    SQL_STMT("INSERT INTO scim_tokens (" SCIM_TOKEN_COLS ") VALUES (?1, ?2, ?3, 0, ?4, ?5, 0)");

enum cf_rc cf_store_scim_token_create(struct cf_store *base, const struct cf_scim_token *token,
                                      struct cf_err *err)
{
    enum cf_rc rc = sql_require_uuid(token->id, "SCIM token", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(token->name, sizeof(token->name), "name", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(token->created_by, sizeof(token->created_by), "creator", err);
    if (rc != CF_OK)
        return rc;
    return sql_exec_in_tx(base, &ST_TOKEN_INSERT,
                          ARGS(A_TEXT(token->id), A_TEXT(token->name),
                               A_BLOB(token->hash, sizeof(token->hash)), A_TEXT(token->created_by),
                               A_INT(sql_time_or_now(token->created_at, cf_now_ms()))),
                          NULL, err);
}

static struct sql_stmt ST_TOKEN_GET =
    SQL_STMT("SELECT " SCIM_TOKEN_COLS " FROM scim_tokens WHERE id = ?1");

enum cf_rc cf_store_scim_token_get(struct cf_store *base, const char *id, struct cf_scim_token *out,
                                   struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_TOKEN_GET, ARGS(A_TEXT(id)), read_token, out, "SCIM token", id,
                       err);
}

static struct sql_stmt ST_TOKEN_LIST =
    SQL_STMT("SELECT " SCIM_TOKEN_COLS " FROM scim_tokens ORDER BY created_at DESC, id");

enum cf_rc cf_store_scim_token_list(struct cf_store *base, struct cf_scim_token_list *out,
                                    struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_scim_token), .read = read_token};
    enum cf_rc rc = sql_collect_all(base, &ST_TOKEN_LIST, NO_ARGS, &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_scim_token_list_release(out);
    return rc;
}

static struct sql_stmt ST_TOKEN_REVOKE =
    SQL_STMT("UPDATE scim_tokens SET revoked = 1 WHERE id = ?1");

enum cf_rc cf_store_scim_token_revoke(struct cf_store *base, const char *id, struct cf_err *err)
{
    int64_t changes = 0;
    enum cf_rc rc = sql_exec_in_tx(base, &ST_TOKEN_REVOKE, ARGS(A_TEXT(id)), &changes, err);
    if (rc == CF_OK && changes == 0)
        return cf_err_set(err, CF_ENOTFOUND, "SCIM token '%s' not found", id);
    return rc;
}

static struct sql_stmt ST_TOKEN_USED =
    SQL_STMT("UPDATE scim_tokens SET last_used_at = ?2 WHERE id = ?1");

enum cf_rc cf_store_scim_token_used(struct cf_store *base, const char *id, int64_t at,
                                    struct cf_err *err)
{
    return sql_exec_in_tx(base, &ST_TOKEN_USED, ARGS(A_TEXT(id), A_INT(at)), NULL, err);
}

static struct sql_stmt ST_SCIM_USER_PUT =
    SQL_STMT("INSERT INTO scim_users (" SCIM_USER_COLS ") VALUES (?1, ?2, ?3, ?4)"
             " ON CONFLICT (user_id) DO UPDATE SET user_name = excluded.user_name,"
             " external_id = excluded.external_id");

enum cf_rc cf_store_scim_user_put(struct cf_store *base, const struct cf_scim_user *scim,
                                  struct cf_err *err)
{
    enum cf_rc rc = sql_require_uuid(scim->user_id, "user", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(scim->user_name, sizeof(scim->user_name), "userName", err);
    if (rc == CF_OK)
        rc =
            sql_require_terminated(scim->external_id, sizeof(scim->external_id), "externalId", err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec_in_tx(base, &ST_SCIM_USER_PUT,
                        ARGS(A_TEXT(scim->user_id), A_TEXT(scim->user_name),
                             A_NULLABLE(scim->external_id),
                             A_INT(sql_time_or_now(scim->created_at, cf_now_ms()))),
                        NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "userName '%s' or externalId '%s' belongs to another user",
                        scim->user_name, scim->external_id);
    else if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "user '%s' not found", scim->user_id);
    return rc;
}

static struct sql_stmt ST_SCIM_USER_GET =
    SQL_STMT("SELECT " SCIM_USER_COLS " FROM scim_users WHERE user_id = ?1");
static struct sql_stmt ST_SCIM_USER_BY_NAME =
    SQL_STMT("SELECT " SCIM_USER_COLS " FROM scim_users WHERE user_name = ?1");
static struct sql_stmt ST_SCIM_USER_BY_EXTERNAL =
    SQL_STMT("SELECT " SCIM_USER_COLS " FROM scim_users WHERE external_id = ?1");

enum cf_rc cf_store_scim_user_get(struct cf_store *base, const char *user_id,
                                  struct cf_scim_user *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_SCIM_USER_GET, ARGS(A_TEXT(user_id)), read_scim_user, out,
                       "SCIM user", user_id, err);
}

enum cf_rc cf_store_scim_user_by_user_name(struct cf_store *base, const char *user_name,
                                           struct cf_scim_user *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_SCIM_USER_BY_NAME, ARGS(A_TEXT(user_name)), read_scim_user, out,
                       "SCIM user", user_name, err);
}

enum cf_rc cf_store_scim_user_by_external_id(struct cf_store *base, const char *external_id,
                                             struct cf_scim_user *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_SCIM_USER_BY_EXTERNAL, ARGS(A_TEXT(external_id)), read_scim_user,
                       out, "SCIM user with externalId", external_id, err);
}

static struct sql_stmt ST_SCIM_USER_LIST =
    SQL_STMT("SELECT " SCIM_USER_COLS " FROM scim_users ORDER BY user_name");

enum cf_rc cf_store_scim_user_list(struct cf_store *base, struct cf_scim_user_list *out,
                                   struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_scim_user), .read = read_scim_user};
    enum cf_rc rc = sql_collect_all(base, &ST_SCIM_USER_LIST, NO_ARGS, &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_scim_user_list_release(out);
    return rc;
}
