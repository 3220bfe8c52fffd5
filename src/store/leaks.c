/* Secrets marked leaked in the store (store/leaks.h): the secret_leaks table of migration 0026. */
#include <stdlib.h>
#include <string.h>

#include "store/leaks.h"
#include "store/shared.h"
#include "util/banned.h"

#define LEAK_COLS                                                                                  \
    "l.secret_id, l.version, l.leaked_at, l.source, l.fingerprint, l.actor_kind, l.actor_id,"      \
    " l.actor_name"

static enum cf_rc read_leak(const struct db_row *row, void *item)
{
    struct cf_secret_leak *l = item;
    db_row_text(row, 0, l->secret_id, sizeof(l->secret_id));
    l->version = db_row_int64(row, 1);
    l->leaked_at = db_row_int64(row, 2);
    db_row_text(row, 3, l->source, sizeof(l->source));
    db_row_text(row, 4, l->fingerprint, sizeof(l->fingerprint));
    db_row_text(row, 5, l->actor_kind, sizeof(l->actor_kind));
    db_row_text(row, 6, l->actor_id, sizeof(l->actor_id));
    db_row_text(row, 7, l->actor_name, sizeof(l->actor_name));
    return db_row_status(row);
}

void cf_secret_leak_list_release(struct cf_secret_leak_list *l)
{
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static struct sql_stmt ST_LEAK_GET =
    SQL_STMT("SELECT " LEAK_COLS " FROM secret_leaks l WHERE l.secret_id = ?1");

static struct sql_stmt ST_LEAK_DELETE = SQL_STMT("DELETE FROM secret_leaks WHERE secret_id = ?1");

static struct sql_stmt ST_LEAK_INSERT =
    SQL_STMT("INSERT INTO secret_leaks (secret_id, version, leaked_at, source, fingerprint,"
             " actor_kind, actor_id, actor_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");

enum cf_rc cf_store_leak_mark(struct cf_store *st, const struct cf_secret_leak *leak,
                              struct cf_secret_leak *out, bool *created, struct cf_err *err)
{
    struct db_conn *c;
    struct cf_secret_leak existing = {0};
    bool found = false;
    enum cf_rc rc = sql_require_uuid(leak->secret_id, "secret", err);
    *created = false;
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_row(c, &ST_LEAK_GET, ARGS(A_TEXT(leak->secret_id)), read_leak, &existing, &found,
                     err);
    bool standing = rc == CF_OK && found && existing.version == leak->version;
    if (rc == CF_OK && found && !standing)
        rc = sql_exec(c, &ST_LEAK_DELETE, ARGS(A_TEXT(leak->secret_id)), NULL, err);
    if (rc == CF_OK && !standing)
        rc =
            sql_exec(c, &ST_LEAK_INSERT,
                     ARGS(A_TEXT(leak->secret_id), A_INT(leak->version), A_INT(leak->leaked_at),
                          A_TEXT(leak->source), A_TEXT(leak->fingerprint), A_TEXT(leak->actor_kind),
                          A_TEXT(leak->actor_id), A_TEXT(leak->actor_name)),
                     NULL, err);
    rc = sql_tx_end(c, rc, err);
    if (rc == CF_OK) {
        *out = standing ? existing : *leak;
        *created = !standing;
    }
    return rc;
}

/* Only the marks of the current versions: a new version leaves the old mark out. */
static struct sql_stmt ST_LEAK_LIST =
    SQL_STMT("SELECT " LEAK_COLS " FROM secret_leaks l JOIN secrets s ON s.id = l.secret_id"
             " JOIN folders f ON f.id = s.folder_id JOIN environments e ON e.id = f.env_id"
             " WHERE e.project_id = ?1 AND s.version = l.version");

enum cf_rc cf_store_leak_list(struct cf_store *st, const char *project_id,
                              struct cf_secret_leak_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_secret_leak), .read = read_leak};
    enum cf_rc rc = sql_collect_all(st, &ST_LEAK_LIST, ARGS(A_TEXT(project_id)), &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_secret_leak_list_release(out);
    return rc;
}

static struct sql_stmt ST_LEAK_STANDING = SQL_STMT(
    "SELECT p.slug || '/' || e.slug || f.path || CASE WHEN f.path = '/' THEN '' ELSE '/' END"
    " || s.key, l.source, l.leaked_at FROM secret_leaks l JOIN secrets s ON s.id = l.secret_id"
    " JOIN folders f ON f.id = s.folder_id JOIN environments e ON e.id = f.env_id"
    " JOIN projects p ON p.id = e.project_id WHERE s.version = l.version"
    " ORDER BY l.leaked_at, l.secret_id");

static enum cf_rc read_standing(const struct db_row *row, void *item)
{
    struct cf_standing_leak *l = item;
    db_row_text(row, 0, l->place, sizeof(l->place));
    db_row_text(row, 1, l->source, sizeof(l->source));
    l->leaked_at = db_row_int64(row, 2);
    return db_row_status(row);
}

enum cf_rc cf_store_leak_standing(struct cf_store *st, struct cf_standing_leak **out, size_t *n,
                                  struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_standing_leak), .read = read_standing};
    enum cf_rc rc = sql_collect_all(st, &ST_LEAK_STANDING, NULL, 0, &col, err);
    *out = col.items;
    *n = col.n;
    if (rc != CF_OK) {
        free(col.items);
        *out = NULL;
        *n = 0;
    }
    return rc;
}
