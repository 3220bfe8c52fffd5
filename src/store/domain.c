/* The helpers of the store's domain files (store/domain.h). */
#include <stdlib.h>
#include <string.h>

#include "store/domain.h"
#include "util/banned.h"

enum cf_rc db_conn_of(struct cf_store *base, struct db_conn **c, struct cf_err *err)
{
    struct sql_store *st = (struct sql_store *)base;
    return st->drv->conn_get(st, c, err);
}

enum cf_rc db_exec(struct db_conn *c, const char *sql, const struct sq_arg *args, size_t n,
                   row_fn on_row, void *ctx, int64_t *count, struct cf_err *err)
{
    /* -1: a statement of a domain file, not of sql.c's cached table. */
    return c->st->drv->run(c, -1, sql, args, n, on_row, ctx, count, err);
}

enum cf_rc db_begin(struct cf_store *base, struct db_conn **c, struct cf_err *err)
{
    enum cf_rc rc = db_conn_of(base, c, err);
    if (rc == CF_OK)
        rc = (*c)->st->drv->begin(*c, err);
    return rc;
}

enum cf_rc db_end(struct db_conn *c, enum cf_rc rc, struct cf_err *err)
{
    return c->st->drv->end(c, rc, err);
}

enum cf_rc db_add_row(const struct db_row *row, void *ctx)
{
    struct db_rows *r = ctx;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        void *grown = realloc(r->items, cap * r->size);
        if (!grown)
            return CF_ENOMEM;
        r->items = grown;
        r->cap = cap;
    }
    void *item = (char *)r->items + r->n * r->size;
    memset(item, 0, r->size);
    r->n++;
    return r->read(row, item);
}

enum cf_rc db_count_row(const struct db_row *row, void *ctx)
{
    (void)row;
    ++*(int64_t *)ctx;
    return CF_OK;
}

enum cf_rc db_read_id(const struct db_row *row, void *ctx)
{
    struct db_ids *r = ctx;
    if (r->n < r->limit)
        db_row_text(row, 0, r->ids[r->n++], CF_UUID_LEN);
    return db_row_status(row);
}
