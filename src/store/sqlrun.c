/* The runner of the store's domain files (sqlrun.h) and the row helpers drivers share (sqldb.h). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqldb.h"
#include "store/sqlrun.h"
#include "util/banned.h"

/* Cache slots handed out so far, across every statement of the process. */
static atomic_int slots_taken;

/* stmt's cache slot, taken on its first run: an id below SQL_STMT_MAX, or -1 (uncached) once they
 * are all taken. Two threads racing on a new statement agree on the one slot stored first. */
static int stmt_slot(struct sql_stmt *stmt)
{
    int slot = atomic_load_explicit(&stmt->slot, memory_order_acquire);
    if (slot != 0)
        return slot > 0 ? slot - 1 : -1;
    int want = -1;
    if (atomic_load_explicit(&slots_taken, memory_order_relaxed) < SQL_STMT_MAX) {
        int n = atomic_fetch_add_explicit(&slots_taken, 1, memory_order_relaxed);
        if (n < SQL_STMT_MAX)
            want = n + 1;
    }
    int expected = 0;
    if (!atomic_compare_exchange_strong_explicit(&stmt->slot, &expected, want, memory_order_acq_rel,
                                                 memory_order_acquire))
        want = expected; /* another thread stored one first */
    return want > 0 ? want - 1 : -1;
}

enum cf_rc sql_conn_get(struct cf_store *base, struct db_conn **out, struct cf_err *err)
{
    struct sql_store *st = sql_store_of(base);
    return st->drv->conn_get(st, out, err);
}

enum cf_rc sql_run(struct db_conn *c, struct sql_stmt *stmt, const struct sq_arg *args,
                   size_t n_args, row_fn on_row, void *ctx, int64_t *count, struct cf_err *err)
{
    return c->st->drv->run(c, stmt_slot(stmt), stmt->sql, args, n_args, on_row, ctx, count, err);
}

enum cf_rc sql_exec(struct db_conn *c, struct sql_stmt *stmt, const struct sq_arg *args,
                    size_t n_args, int64_t *changes, struct cf_err *err)
{
    return sql_run(c, stmt, args, n_args, NULL, NULL, changes, err);
}

enum cf_rc sql_exec_in_tx(struct cf_store *base, struct sql_stmt *stmt, const struct sq_arg *args,
                          size_t n_args, int64_t *changes, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, stmt, args, n_args, changes, err);
    return sql_tx_end(c, rc, err);
}

struct first_row {
    row_fn read;
    void *out;
    bool found;
};

static enum cf_rc read_first(const struct db_row *row, void *ctx)
{
    struct first_row *first = ctx;
    if (first->found) /* queries by a unique key: never more than one row */
        return CF_OK;
    first->found = true;
    return first->read(row, first->out);
}

enum cf_rc sql_get_row(struct db_conn *c, struct sql_stmt *stmt, const struct sq_arg *args,
                       size_t n_args, row_fn read, void *out, bool *found, struct cf_err *err)
{
    struct first_row first = {.read = read, .out = out};
    enum cf_rc rc = sql_run(c, stmt, args, n_args, read_first, &first, NULL, err);
    *found = first.found;
    return rc;
}

enum cf_rc sql_get_required(struct db_conn *c, struct sql_stmt *stmt, const struct sq_arg *args,
                            size_t n_args, row_fn read, void *out, const char *what,
                            const char *name, struct cf_err *err)
{
    bool found;
    enum cf_rc rc = sql_get_row(c, stmt, args, n_args, read, out, &found, err);
    if (rc == CF_OK && !found)
        rc = cf_err_set(err, CF_ENOTFOUND, "%s '%s' not found", what, name);
    return rc;
}

enum cf_rc sql_get_one(struct cf_store *base, struct sql_stmt *stmt, const struct sq_arg *args,
                       size_t n_args, row_fn read, void *out, const char *what, const char *name,
                       struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_conn_get(base, &c, err);
    if (rc == CF_OK)
        rc = sql_get_required(c, stmt, args, n_args, read, out, what, name, err);
    return rc;
}

enum cf_rc sql_collect(const struct db_row *row, void *ctx)
{
    struct sql_collector *col = ctx;
    if (col->n == col->cap) {
        size_t cap = col->cap ? col->cap * 2 : 16;
        if (cap > SIZE_MAX / col->size)
            return CF_ENOMEM;
        void *grown = realloc(col->items, cap * col->size);
        if (!grown)
            return CF_ENOMEM;
        col->items = grown;
        col->cap = cap;
    }
    void *item = (char *)col->items + col->n * col->size;
    memset(item, 0, col->size);
    col->n++;
    return col->read(row, item);
}

enum cf_rc sql_collect_all(struct cf_store *base, struct sql_stmt *stmt, const struct sq_arg *args,
                           size_t n_args, struct sql_collector *col, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_conn_get(base, &c, err);
    if (rc == CF_OK)
        rc = sql_run(c, stmt, args, n_args, sql_collect, col, NULL, err);
    return rc;
}

enum cf_rc sql_tx_begin_locked(struct cf_store *base, enum db_lock lock, struct db_conn **out,
                               struct cf_err *err)
{
    enum cf_rc rc = sql_conn_get(base, out, err);
    if (rc == CF_OK)
        rc = (*out)->st->drv->begin(*out, lock, err);
    return rc;
}

enum cf_rc sql_tx_begin(struct cf_store *base, struct db_conn **out, struct cf_err *err)
{
    return sql_tx_begin_locked(base, DB_LOCK_WRITE, out, err);
}

enum cf_rc sql_tx_end(struct db_conn *c, enum cf_rc rc, struct cf_err *err)
{
    rc = c->st->drv->end(c, rc, err);
    /* what the transaction changed may have bumped the change counter */
    sql_scope_changed(c->st);
    return rc;
}

enum cf_rc db_row_text(const struct db_row *row, int i, char *dst, size_t size)
{
    size_t len = 0;
    const char *text = db_row_bytes(row, i, &len);
    if (!text)
        len = 0;
    if (len < size) {
        memcpy(dst, text ? text : "", len);
        dst[len] = '\0';
        return CF_OK;
    }
    if (size)
        dst[0] = '\0';
    if (row->fault && row->fault->rc == CF_OK)
        cf_err_set(row->fault, CF_ESTORE,
                   "column '%.64s' holds %zu bytes of text, more than the %zu this coffer reads",
                   row->ops->name(row, i), len, size ? size - 1 : 0);
    return CF_ESTORE;
}

enum cf_rc sql_params_check(size_t n_args, struct cf_err *err)
{
    if (n_args <= SQL_PARAMS_MAX)
        return CF_OK;
    return cf_err_set(err, CF_ESTORE,
                      "a statement with %zu parameters, more than the %d one may bind", n_args,
                      SQL_PARAMS_MAX);
}

enum cf_rc db_row_done(const struct db_row *row, enum cf_rc rc, struct cf_err *err)
{
    if (rc == CF_OK)
        rc = db_row_status(row);
    if (rc == CF_OK)
        return CF_OK;
    if (row->fault && row->fault->rc != CF_OK)
        return cf_err_set(err, row->fault->rc, "%s", row->fault->msg);
    if (rc == CF_ENOMEM)
        return cf_err_set(err, rc, "out of memory reading the database");
    return cf_err_set(err, rc, "the database holds a value this coffer cannot read");
}

enum cf_rc sql_col_strdup(const struct db_row *row, int i, char **out)
{
    size_t len;
    const char *text = db_row_bytes(row, i, &len);
    if (!text)
        len = 0;
    *out = malloc(len + 1);
    if (!*out)
        return CF_ENOMEM;
    if (text)
        memcpy(*out, text, len);
    (*out)[len] = '\0';
    return CF_OK;
}

enum cf_rc sql_col_blob(const struct db_row *row, int i, uint8_t **out, size_t *len)
{
    const void *blob = db_row_bytes(row, i, len);
    if (!blob)
        *len = 0;
    *out = malloc(*len ? *len : 1);
    if (!*out)
        return CF_ENOMEM;
    if (*len)
        memcpy(*out, blob, *len);
    return CF_OK;
}

enum cf_rc sql_read_int64(const struct db_row *row, void *item)
{
    *(int64_t *)item = db_row_int64(row, 0);
    return CF_OK;
}

enum cf_rc sql_read_id(const struct db_row *row, void *item)
{
    db_row_text(row, 0, item, CF_UUID_LEN);
    return db_row_status(row);
}

enum cf_rc sql_count_row(const struct db_row *row, void *ctx)
{
    (void)row;
    ++*(int64_t *)ctx;
    return CF_OK;
}

enum cf_rc sql_read_ids(const struct db_row *row, void *ctx)
{
    struct sql_ids *r = ctx;
    if (r->n < r->limit)
        db_row_text(row, 0, r->ids[r->n++], CF_UUID_LEN);
    return db_row_status(row);
}
