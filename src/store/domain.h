/* Internal to src/store: what the domain files (syncs.c, rotations.c: each a table's SQL beside its
 * code) share to run their statements through the driver of sqldb.h: argument macros, the
 * connection and transaction calls, and row collectors. Nothing outside src/store includes it. */
#ifndef CF_STORE_DOMAIN_H
#define CF_STORE_DOMAIN_H

#include <stddef.h>
#include <stdint.h>

#include "store/sqldb.h"
#include "util/id.h"

/* A text and an integer argument, and a bound list of them (pointer, count). */
#define DB_T(s)                                                                                    \
    {                                                                                              \
        .type = 't', .text = (s)                                                                   \
    }
#define DB_I(v)                                                                                    \
    {                                                                                              \
        .type = 'i', .num = (int64_t)(v)                                                           \
    }
#define DB_ARGV(...)                                                                               \
    (const struct sq_arg[]){__VA_ARGS__},                                                          \
        sizeof((const struct sq_arg[]){__VA_ARGS__}) / sizeof(struct sq_arg)

/* This thread's connection to base. */
enum cf_rc db_conn_of(struct cf_store *base, struct db_conn **c, struct cf_err *err);
/* Runs a one-off statement (not of sql.c's cached table); as db_driver.run. */
enum cf_rc db_exec(struct db_conn *c, const char *sql, const struct sq_arg *args, size_t n,
                   row_fn on_row, void *ctx, int64_t *count, struct cf_err *err);
/* This thread's connection, in a write transaction (end it with db_end). */
enum cf_rc db_begin(struct cf_store *base, struct db_conn **c, struct cf_err *err);
/* Commits when rc is CF_OK, else rolls back; returns the outcome. */
enum cf_rc db_end(struct db_conn *c, enum cf_rc rc, struct cf_err *err);

/* Rows into a growing array of size-byte items, zeroed before read fills them: pass db_add_row
 * as on_row and the struct as ctx; the caller frees items. */
struct db_rows {
    void *items;
    size_t n, cap, size;
    row_fn read;
};
enum cf_rc db_add_row(const struct db_row *row, void *ctx);

/* Counts rows into the int64_t ctx. */
enum cf_rc db_count_row(const struct db_row *row, void *ctx);

/* The first column of up to limit rows, as ids. */
struct db_ids {
    char (*ids)[CF_UUID_LEN];
    size_t n, limit;
};
enum cf_rc db_read_id(const struct db_row *row, void *ctx);

#endif
