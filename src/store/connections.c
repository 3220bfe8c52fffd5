/* App connections in the store (connections.h): the app_connections table of migration 0009, as
 * SQL run through the driver (sqldb.h). */
#include <stdlib.h>
#include <string.h>

#include "store/connections.h"
#include "store/sqldb.h"
#include "store/sqlrun.h"
#include "util/str.h"
#include "util/banned.h"

#define COLS                                                                                       \
    "id, name, app, method, description, public_fields, expires_at, expires_learned, created_at,"  \
    " updated_at, checked_at, check_ok, check_result, version"

/* Runs stmt on this thread's connection, in a write transaction when write is true. */
static enum cf_rc run(struct cf_store *base, bool write, struct sql_stmt *stmt,
                      const struct sq_arg *args, size_t n_args, row_fn on_row, void *ctx,
                      int64_t *count, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = write ? sql_tx_begin(base, &c, err) : sql_conn_get(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_run(c, stmt, args, n_args, on_row, ctx, count, err);
    return write ? sql_tx_end(c, rc, err) : rc;
}

static enum cf_rc read_connection(const struct db_row *row, void *item)
{
    struct cf_connection *c = item;
    enum cf_rc rc = CF_OK;
    struct {
        char *dst;
        size_t size;
    } texts[] = {{c->id, sizeof(c->id)},
                 {c->name, sizeof(c->name)},
                 {c->app, sizeof(c->app)},
                 {c->method, sizeof(c->method)},
                 {c->description, sizeof(c->description)},
                 {c->public_fields, sizeof(c->public_fields)}};
    for (int i = 0; rc == CF_OK && i < (int)CF_ARRAY_SIZE(texts); i++)
        rc = db_row_text(row, i, texts[i].dst, texts[i].size);
    c->expires_at = db_row_int64(row, 6);
    c->expires_learned = db_row_int64(row, 7) != 0;
    c->created_at = db_row_int64(row, 8);
    c->updated_at = db_row_int64(row, 9);
    c->checked_at = db_row_int64(row, 10);
    c->check_ok = db_row_int64(row, 11) != 0;
    if (rc == CF_OK)
        rc = db_row_text(row, 12, c->check_result, sizeof(c->check_result));
    c->version = db_row_int64(row, 13);
    return rc;
}

void cf_connection_list_release(struct cf_connection_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static enum cf_rc not_found(const char *id, struct cf_err *err)
{
    return cf_err_set(err, CF_ENOTFOUND, "app connection '%s' not found", id);
}

static struct sql_stmt ST_CONNECTION_INSERT =
    SQL_STMT("INSERT INTO app_connections (" COLS ", credentials) VALUES (?1, ?2, ?3, ?4, ?5,"
             " ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)");

enum cf_rc cf_store_connection_create(struct cf_store *st, const struct cf_connection *c,
                                      const char *sealed, struct cf_err *err)
{
    return run(st, true, &ST_CONNECTION_INSERT,
               ARGS(A_TEXT(c->id), A_TEXT(c->name), A_TEXT(c->app), A_TEXT(c->method),
                    A_TEXT(c->description), A_TEXT(c->public_fields), A_INT(c->expires_at),
                    A_INT(c->expires_learned), A_INT(c->created_at), A_INT(c->updated_at),
                    A_INT(c->checked_at), A_INT(c->check_ok), A_TEXT(c->check_result),
                    A_INT(c->version), A_TEXT(sealed)),
               NULL, NULL, NULL, err);
}

static struct sql_stmt ST_CONNECTION_GET =
    SQL_STMT("SELECT " COLS " FROM app_connections WHERE id = ?1");

enum cf_rc cf_store_connection_get(struct cf_store *st, const char *id, struct cf_connection *out,
                                   struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_connection), .read = read_connection};
    enum cf_rc rc =
        run(st, false, &ST_CONNECTION_GET, ARGS(A_TEXT(id)), sql_collect, &col, NULL, err);
    struct cf_connection_list l = {.items = col.items, .n = col.n};
    if (rc == CF_OK && l.n == 0)
        rc = not_found(id, err);
    if (rc == CF_OK)
        *out = l.items[0];
    else if (rc == CF_ESTORE || rc == CF_ENOMEM)
        cf_err_set(err, rc, "cannot read app connection '%s': %s", id, cf_rc_str(rc));
    cf_connection_list_release(&l);
    return rc;
}

struct sealed_text {
    char *text;
};

static enum cf_rc read_sealed(const struct db_row *row, void *ctx)
{
    struct sealed_text *s = ctx;
    size_t len;
    const char *text = db_row_bytes(row, 0, &len);
    free(s->text);
    if (!(s->text = malloc(len + 1)))
        return CF_ENOMEM;
    memcpy(s->text, text ? text : "", text ? len : 0);
    s->text[text ? len : 0] = '\0';
    return CF_OK;
}

static struct sql_stmt ST_CONNECTION_SEALED =
    SQL_STMT("SELECT credentials FROM app_connections WHERE id = ?1");

enum cf_rc cf_store_connection_sealed(struct cf_store *st, const char *id, char **sealed,
                                      struct cf_err *err)
{
    struct sealed_text s = {0};
    enum cf_rc rc =
        run(st, false, &ST_CONNECTION_SEALED, ARGS(A_TEXT(id)), read_sealed, &s, NULL, err);
    if (rc == CF_OK && !s.text)
        rc = not_found(id, err);
    if (rc == CF_ENOMEM)
        cf_err_set(err, rc, "out of memory");
    *sealed = rc == CF_OK ? s.text : NULL;
    if (rc != CF_OK)
        free(s.text);
    return rc;
}

static enum cf_rc list_of(struct cf_store *st, struct sql_stmt *stmt, const struct sq_arg *args,
                          size_t n_args, struct cf_connection_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_connection), .read = read_connection};
    enum cf_rc rc = run(st, false, stmt, args, n_args, sql_collect, &col, NULL, err);
    out->items = col.items;
    out->n = col.n;
    if (rc == CF_ESTORE || rc == CF_ENOMEM)
        cf_err_set(err, rc, "cannot read app connections: %s", cf_rc_str(rc));
    if (rc != CF_OK)
        cf_connection_list_release(out);
    return rc;
}

static struct sql_stmt ST_CONNECTION_LIST_APP =
    SQL_STMT("SELECT " COLS " FROM app_connections WHERE app = ?1 ORDER BY name");
static struct sql_stmt ST_CONNECTION_LIST =
    SQL_STMT("SELECT " COLS " FROM app_connections ORDER BY name");

enum cf_rc cf_store_connection_list(struct cf_store *st, const char *app,
                                    struct cf_connection_list *out, struct cf_err *err)
{
    if (app)
        return list_of(st, &ST_CONNECTION_LIST_APP, ARGS(A_TEXT(app)), out, err);
    return list_of(st, &ST_CONNECTION_LIST, NO_ARGS, out, err);
}

static struct sql_stmt ST_CONNECTION_EXPIRING =
    SQL_STMT("SELECT " COLS " FROM app_connections WHERE expires_at > 0 AND expires_at <= ?1"
             " ORDER BY expires_at, name");

enum cf_rc cf_store_connection_expiring(struct cf_store *st, int64_t until,
                                        struct cf_connection_list *out, struct cf_err *err)
{
    return list_of(st, &ST_CONNECTION_EXPIRING, ARGS(A_INT(until)), out, err);
}

/* A write of one row: CF_ENOTFOUND when it changed none. */
static enum cf_rc write_one(struct cf_store *st, const char *id, struct sql_stmt *stmt,
                            const struct sq_arg *args, size_t n_args, struct cf_err *err)
{
    int64_t changes = 0;
    enum cf_rc rc = run(st, true, stmt, args, n_args, NULL, NULL, &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = not_found(id, err);
    return rc;
}

static struct sql_stmt ST_CONNECTION_UPDATE = SQL_STMT(
    "UPDATE app_connections SET name = ?2, method = ?3, description = ?4, public_fields = ?5,"
    " expires_at = ?6, expires_learned = ?7, updated_at = ?8, checked_at = ?9, check_ok = ?10,"
    " check_result = ?11, version = ?12, credentials = COALESCE(?13, credentials)"
    " WHERE id = ?1 AND version = ?12 - 1");

enum cf_rc cf_store_connection_update(struct cf_store *st, const struct cf_connection *c,
                                      const char *sealed, struct cf_err *err)
{
    enum cf_rc rc = write_one(
        st, c->id, &ST_CONNECTION_UPDATE,
        ARGS(A_TEXT(c->id), A_TEXT(c->name), A_TEXT(c->method), A_TEXT(c->description),
             A_TEXT(c->public_fields), A_INT(c->expires_at), A_INT(c->expires_learned),
             A_INT(c->updated_at), A_INT(c->checked_at), A_INT(c->check_ok),
             A_TEXT(c->check_result), A_INT(c->version), A_NULLABLE(sealed ? sealed : "")),
        err);
    if (rc == CF_ENOTFOUND) {
        /* gone, or another update came first */
        struct cf_connection now;
        struct cf_err ignored;
        if (cf_store_connection_get(st, c->id, &now, &ignored) == CF_OK)
            rc = cf_err_set(err, CF_ECONFLICT,
                            "app connection '%s' was changed meanwhile: read it again", c->id);
    }
    return rc;
}

static struct sql_stmt ST_CONNECTION_CHECKED_EXPIRY =
    SQL_STMT("UPDATE app_connections SET checked_at = ?2, check_ok = ?3,"
             " check_result = ?4, expires_at = ?5, expires_learned = 1 WHERE id = ?1");
static struct sql_stmt ST_CONNECTION_CHECKED =
    SQL_STMT("UPDATE app_connections SET checked_at = ?2, check_ok = ?3, check_result = ?4"
             " WHERE id = ?1");

enum cf_rc cf_store_connection_checked(struct cf_store *st, const char *id, int64_t checked_at,
                                       bool ok, const char *result, int64_t expires_at,
                                       struct cf_err *err)
{
    if (expires_at >= 0)
        return write_one(
            st, id, &ST_CONNECTION_CHECKED_EXPIRY,
            ARGS(A_TEXT(id), A_INT(checked_at), A_INT(ok), A_TEXT(result), A_INT(expires_at)), err);
    return write_one(st, id, &ST_CONNECTION_CHECKED,
                     ARGS(A_TEXT(id), A_INT(checked_at), A_INT(ok), A_TEXT(result)), err);
}

static struct sql_stmt ST_CONNECTION_DELETE = SQL_STMT("DELETE FROM app_connections WHERE id = ?1");

enum cf_rc cf_store_connection_delete(struct cf_store *st, const char *id, struct cf_err *err)
{
    return write_one(st, id, &ST_CONNECTION_DELETE, ARGS(A_TEXT(id)), err);
}
