/* Access requests and temporary grants in the store (store/access.h), as SQL run through sqlrun.h.
 */
#include <stdlib.h>
#include <string.h>

#include "store/access.h"
#include "store/shared.h"
#include "util/time.h"
#include "util/banned.h"

#define ACCESS_COLS                                                                                \
    "r.id, r.user_id, u.email, r.project_id, r.env_id, e.slug, r.path_glob, r.actions,"            \
    " r.duration_s, r.reason, r.status, r.created_at, r.decided_by, r.decided_at, r.comment,"      \
    " r.starts_at, r.ends_at, r.revoked_by, r.revoked_at"
#define ACCESS_FROM                                                                                \
    " FROM access_requests r JOIN users u ON u.id = r.user_id"                                     \
    " JOIN environments e ON e.id = r.env_id"

#define ACCESS_LIST_DEFAULT 1000

void cf_access_request_list_release(struct cf_access_request_list *list)
{
    if (!list)
        return;
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

void cf_access_grant_list_release(struct cf_access_grant_list *list)
{
    if (!list)
        return;
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

static enum cf_rc read_request(const struct db_row *s, void *item)
{
    struct cf_access_request *r = item;
    db_row_text(s, 0, r->id, sizeof(r->id));
    db_row_text(s, 1, r->user_id, sizeof(r->user_id));
    db_row_text(s, 2, r->user_email, sizeof(r->user_email));
    db_row_text(s, 3, r->project_id, sizeof(r->project_id));
    db_row_text(s, 4, r->env_id, sizeof(r->env_id));
    db_row_text(s, 5, r->env_slug, sizeof(r->env_slug));
    db_row_text(s, 6, r->path_glob, sizeof(r->path_glob));
    r->actions = (uint32_t)db_row_int64(s, 7);
    r->duration_s = db_row_int64(s, 8);
    db_row_text(s, 9, r->reason, sizeof(r->reason));
    db_row_text(s, 10, r->status, sizeof(r->status));
    r->created_at = db_row_int64(s, 11);
    db_row_text(s, 12, r->decided_by, sizeof(r->decided_by));
    r->decided_at = db_row_int64(s, 13);
    db_row_text(s, 14, r->comment, sizeof(r->comment));
    r->starts_at = db_row_int64(s, 15);
    r->ends_at = db_row_int64(s, 16);
    db_row_text(s, 17, r->revoked_by, sizeof(r->revoked_by));
    r->revoked_at = db_row_int64(s, 18);
    return db_row_status(s);
}

static enum cf_rc read_grant(const struct db_row *s, void *item)
{
    struct cf_access_grant *g = item;
    db_row_text(s, 0, g->id, sizeof(g->id));
    db_row_text(s, 1, g->env_id, sizeof(g->env_id));
    db_row_text(s, 2, g->path_glob, sizeof(g->path_glob));
    g->actions = (uint32_t)db_row_int64(s, 3);
    g->ends_at = db_row_int64(s, 4);
    return db_row_status(s);
}

/* CF_OK when every text field of r that is written is terminated and the ids are set. */
static enum cf_rc request_check(const struct cf_access_request *r, struct cf_err *err)
{
    enum cf_rc rc = sql_require_uuid(r->id, "access request", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(r->user_id, sizeof(r->user_id), "user", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(r->project_id, sizeof(r->project_id), "project", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(r->env_id, sizeof(r->env_id), "environment", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(r->path_glob, sizeof(r->path_glob), "path", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(r->reason, sizeof(r->reason), "reason", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(r->status, sizeof(r->status), "status", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(r->decided_by, sizeof(r->decided_by), "decided by", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(r->comment, sizeof(r->comment), "comment", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(r->revoked_by, sizeof(r->revoked_by), "revoked by", err);
    return rc;
}

static struct sql_stmt ST_ACCESS_INSERT = SQL_STMT(
    "INSERT INTO access_requests (id, user_id, project_id, env_id, path_glob, actions, duration_s,"
    " reason, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?9)");

enum cf_rc cf_store_access_request_create(struct cf_store *base, const struct cf_access_request *r,
                                          struct cf_err *err)
{
    enum cf_rc rc = request_check(r, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec_in_tx(base, &ST_ACCESS_INSERT,
                        ARGS(A_TEXT(r->id), A_TEXT(r->user_id), A_TEXT(r->project_id),
                             A_TEXT(r->env_id), A_TEXT(r->path_glob), A_INT(r->actions),
                             A_INT(r->duration_s), A_TEXT(r->reason),
                             A_INT(sql_time_or_now(r->created_at, cf_now_ms()))),
                        NULL, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND,
                        "the user, project or environment of access request '%s' is gone", r->id);
    return rc;
}

static struct sql_stmt ST_ACCESS_GET =
    SQL_STMT("SELECT " ACCESS_COLS ACCESS_FROM " WHERE r.id = ?1");

enum cf_rc cf_store_access_request_get(struct cf_store *base, const char *id,
                                       struct cf_access_request *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_ACCESS_GET, ARGS(A_TEXT(id)), read_request, out, "access request",
                       id, err);
}

static struct sql_stmt ST_ACCESS_LIST =
    SQL_STMT("SELECT " ACCESS_COLS ACCESS_FROM " WHERE (?1 = '' OR r.user_id = ?1)"
             " AND (?2 = '' OR r.project_id = ?2) AND (?3 = '' OR r.status = ?3)"
             " AND (?4 = 0 OR (r.status = 'granted' AND r.ends_at > ?4))"
             " ORDER BY r.created_at DESC, r.id LIMIT ?5");

enum cf_rc cf_store_access_request_list(struct cf_store *base, const struct cf_access_filter *f,
                                        struct cf_access_request_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_access_request), .read = read_request};
    enum cf_rc rc = sql_collect_all(base, &ST_ACCESS_LIST,
                                    ARGS(A_TEXT(f->user_id ? f->user_id : ""),
                                         A_TEXT(f->project_id ? f->project_id : ""),
                                         A_TEXT(f->status ? f->status : ""), A_INT(f->live_at),
                                         A_INT(f->limit ? (int64_t)f->limit : ACCESS_LIST_DEFAULT)),
                                    &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_access_request_list_release(out);
    return rc;
}

static struct sql_stmt ST_ACCESS_DECIDE = SQL_STMT(
    "UPDATE access_requests SET status = ?2, decided_by = ?3, decided_at = ?4, comment = ?5,"
    " starts_at = ?6, ends_at = ?7, revoked_by = ?8, revoked_at = ?9 WHERE id = ?1"
    " AND status = ?10");

static struct sql_stmt ST_ACCESS_STATUS =
    SQL_STMT("SELECT status FROM access_requests WHERE id = ?1");

static enum cf_rc read_status(const struct db_row *s, void *item)
{
    db_row_text(s, 0, item, CF_ACCESS_STATUS_MAX + 1);
    return db_row_status(s);
}

enum cf_rc cf_store_access_request_decide(struct cf_store *base, const struct cf_access_request *r,
                                          const char *from_status, struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    char status[CF_ACCESS_STATUS_MAX + 1] = "";
    bool found = false;
    enum cf_rc rc = request_check(r, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc =
        sql_exec(c, &ST_ACCESS_DECIDE,
                 ARGS(A_TEXT(r->id), A_TEXT(r->status), A_TEXT(r->decided_by), A_INT(r->decided_at),
                      A_TEXT(r->comment), A_INT(r->starts_at), A_INT(r->ends_at),
                      A_TEXT(r->revoked_by), A_INT(r->revoked_at), A_TEXT(from_status)),
                 &changes, err);
    if (rc == CF_OK && changes == 0) {
        rc = sql_get_row(c, &ST_ACCESS_STATUS, ARGS(A_TEXT(r->id)), read_status, status, &found,
                         err);
        if (rc == CF_OK && !found)
            rc = cf_err_set(err, CF_ENOTFOUND, "access request '%s' not found", r->id);
        else if (rc == CF_OK)
            rc = cf_err_set(err, CF_ECONFLICT, "access request '%s' is %s, not %s", r->id, status,
                            from_status);
    }
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_ACCESS_GRANTS =
    SQL_STMT("SELECT id, env_id, path_glob, actions, ends_at FROM access_requests"
             " WHERE user_id = ?1 AND project_id = ?2 AND status = 'granted' ORDER BY id");

/* A cache entry is a marker byte and then the grants, so that "none" (the usual answer) is cached
 * too. */
#define GRANTS_ENTRY 'g'

enum cf_rc cf_store_access_grants(struct cf_store *base, const char *user_id,
                                  const char *project_id, struct cf_access_grant_list *out,
                                  struct cf_err *err)
{
    struct sql_store *st = sql_store_of(base);
    struct sql_collector col = {.size = sizeof(struct cf_access_grant), .read = read_grant};
    char key[SQL_CACHE_KEY_MAX];
    bool cacheable = sql_cache_key(key, sizeof(key), 'A', user_id, project_id);
    uint8_t *entry = NULL;
    size_t len = 0;
    enum cf_rc rc = CF_OK;

    memset(out, 0, sizeof(*out));
    if (cacheable && sql_cache_get(st, key, (void **)&entry, &len)) {
        size_t n = len > 0 ? (len - 1) / sizeof(struct cf_access_grant) : 0;
        if (len > 0 && entry[0] == GRANTS_ENTRY && n * sizeof(struct cf_access_grant) == len - 1) {
            if (n > 0) {
                out->items = malloc(len - 1);
                if (!out->items) {
                    rc = cf_err_set(err, CF_ENOMEM, "out of memory");
                    goto out;
                }
                memcpy(out->items, entry + 1, len - 1);
            }
            out->n = n;
            goto out;
        }
        free(entry); /* not an entry this code stored: read the database */
        entry = NULL;
    }
    rc = sql_collect_all(base, &ST_ACCESS_GRANTS, ARGS(A_TEXT(user_id), A_TEXT(project_id)), &col,
                         err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK || !cacheable)
        goto out;
    len = 1 + out->n * sizeof(struct cf_access_grant);
    entry = malloc(len);
    if (entry) {
        entry[0] = GRANTS_ENTRY;
        if (out->n > 0)
            memcpy(entry + 1, out->items, len - 1);
        sql_cache_put(st, key, entry, len);
    }
out:
    free(entry);
    if (rc != CF_OK)
        cf_access_grant_list_release(out);
    return rc;
}
