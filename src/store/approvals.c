/* Approvals in the store (store.h): approval policies with their approvers, change requests with
 * their items and reviews (migration 0022), as SQL run through sqlrun.h. A merge marks the request
 * merged and writes the secrets in one transaction (sql_secret_write_one of secrets.c). */
#include <stdlib.h>
#include <string.h>

#include "store/shared.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

void cf_approval_policy_release(struct cf_approval_policy *p)
{
    if (!p)
        return;
    free(p->approvers);
    p->approvers = NULL;
    p->n_approvers = 0;
}

void cf_approval_policy_list_release(struct cf_approval_policy_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        cf_approval_policy_release(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void cf_change_request_release(struct cf_change_request *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_items; i++) {
        free(r->items[i].sealed);
        free(r->items[i].comment);
    }
    free(r->items);
    free(r->reviews);
    r->items = NULL;
    r->reviews = NULL;
    r->n_items = r->n_reviews = 0;
}

void cf_change_request_list_release(struct cf_change_request_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        cf_change_request_release(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

/* ---- policies ---- */

#define POLICY_COLS                                                                                \
    "id, project_id, name, env_id, path_glob, approvals, enforcement, allow_machines, created_at," \
    " updated_at"

static enum cf_rc read_policy(const struct db_row *s, void *item)
{
    struct cf_approval_policy *p = item;
    db_row_text(s, 0, p->id, sizeof(p->id));
    db_row_text(s, 1, p->project_id, sizeof(p->project_id));
    db_row_text(s, 2, p->name, sizeof(p->name));
    db_row_text(s, 3, p->env_id, sizeof(p->env_id));
    db_row_text(s, 4, p->path_glob, sizeof(p->path_glob));
    p->approvals = db_row_int64(s, 5);
    db_row_text(s, 6, p->enforcement, sizeof(p->enforcement));
    p->allow_machines = db_row_int64(s, 7) != 0;
    p->created_at = db_row_int64(s, 8);
    p->updated_at = db_row_int64(s, 9);
    return db_row_status(s);
}

static enum cf_rc read_approver(const struct db_row *s, void *item)
{
    struct cf_approval_approver *a = item;
    db_row_text(s, 0, a->user_id, sizeof(a->user_id));
    db_row_text(s, 1, a->group_id, sizeof(a->group_id));
    db_row_text(s, 2, a->name, sizeof(a->name));
    return db_row_status(s);
}

static struct sql_stmt ST_POLICY_INSERT = SQL_STMT("INSERT INTO approval_policies (" POLICY_COLS
                                                   ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                                                   "?10)");

static struct sql_stmt ST_APPROVER_INSERT = SQL_STMT(
    "INSERT INTO approval_policy_approvers (policy_id, user_id, group_id) VALUES (?1, ?2, ?3)");

enum cf_rc cf_store_approval_policy_create(struct cf_store *base,
                                           const struct cf_approval_policy *p, struct cf_err *err)
{
    struct db_conn *c;
    int64_t now = cf_now_ms();
    enum cf_rc rc = sql_require_uuid(p->id, "policy", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(p->name, sizeof(p->name), "name", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(p->path_glob, sizeof(p->path_glob), "path", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(p->enforcement, sizeof(p->enforcement), "enforcement", err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_POLICY_INSERT,
                  ARGS(A_TEXT(p->id), A_TEXT(p->project_id), A_TEXT(p->name), A_TEXT(p->env_id),
                       A_TEXT(p->path_glob), A_INT(p->approvals), A_TEXT(p->enforcement),
                       A_INT(p->allow_machines ? 1 : 0), A_INT(sql_time_or_now(p->created_at, now)),
                       A_INT(sql_time_or_now(p->updated_at, now))),
                  NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_field(err, CF_EEXIST, "name", "approval policy '%s' already exists", p->name);
    for (size_t i = 0; i < p->n_approvers && rc == CF_OK; i++) {
        const struct cf_approval_approver *a = &p->approvers[i];
        rc = sql_exec(c, &ST_APPROVER_INSERT,
                      ARGS(A_TEXT(p->id), A_NULLABLE(a->user_id), A_NULLABLE(a->group_id)), NULL,
                      err);
        if (rc == CF_ENOTFOUND)
            rc = cf_err_field(err, CF_ENOTFOUND, "approvers", "approver '%s' not found",
                              a->name[0]      ? a->name
                              : a->user_id[0] ? a->user_id
                                              : a->group_id);
    }
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_POLICY_LIST =
    SQL_STMT("SELECT " POLICY_COLS " FROM approval_policies WHERE project_id = ?1 ORDER BY name");
static struct sql_stmt ST_POLICY_LIST_ENV =
    SQL_STMT("SELECT " POLICY_COLS " FROM approval_policies WHERE project_id = ?1"
             " AND env_id = ?2 ORDER BY name");
static struct sql_stmt ST_APPROVER_LIST =
    SQL_STMT("SELECT COALESCE(a.user_id, ''), COALESCE(a.group_id, ''),"
             " COALESCE(u.email, g.name, '') FROM approval_policy_approvers a"
             " LEFT JOIN users u ON u.id = a.user_id LEFT JOIN user_groups g ON g.id = a.group_id"
             " WHERE a.policy_id = ?1 ORDER BY 3");

enum cf_rc cf_store_approval_policy_list(struct cf_store *base, const char *project_id,
                                         const char *env_id, struct cf_approval_policy_list *out,
                                         struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_approval_policy), .read = read_policy};
    enum cf_rc rc;
    if (env_id)
        rc = sql_collect_all(base, &ST_POLICY_LIST_ENV, ARGS(A_TEXT(project_id), A_TEXT(env_id)),
                             &col, err);
    else
        rc = sql_collect_all(base, &ST_POLICY_LIST, ARGS(A_TEXT(project_id)), &col, err);
    out->items = col.items;
    out->n = col.n;
    for (size_t i = 0; i < out->n && rc == CF_OK; i++) {
        struct sql_collector ac = {.size = sizeof(struct cf_approval_approver),
                                   .read = read_approver};
        rc = sql_collect_all(base, &ST_APPROVER_LIST, ARGS(A_TEXT(out->items[i].id)), &ac, err);
        out->items[i].approvers = ac.items;
        out->items[i].n_approvers = ac.n;
    }
    if (rc != CF_OK)
        cf_approval_policy_list_release(out);
    return rc;
}

static struct sql_stmt ST_POLICY_DELETE =
    SQL_STMT("DELETE FROM approval_policies WHERE project_id = ?1 AND (id = ?2 OR name = ?2)");

enum cf_rc cf_store_approval_policy_delete(struct cf_store *base, const char *project_id,
                                           const char *id, struct cf_err *err)
{
    int64_t changes = 0;
    enum cf_rc rc = sql_exec_in_tx(base, &ST_POLICY_DELETE, ARGS(A_TEXT(project_id), A_TEXT(id)),
                                   &changes, err);
    if (rc == CF_OK && changes == 0)
        return cf_err_set(err, CF_ENOTFOUND, "approval policy '%s' not found", id);
    return rc;
}

static struct sql_stmt ST_IS_APPROVER = SQL_STMT(
    "SELECT 1 FROM approval_policy_approvers a WHERE a.policy_id = ?1 AND (a.user_id = ?2 OR"
    " EXISTS (SELECT 1 FROM user_group_members m WHERE m.group_id = a.group_id AND"
    " m.user_id = ?2))");

enum cf_rc cf_store_approval_is_approver(struct cf_store *base, const char *policy_id,
                                         const char *user_id, bool *out, struct cf_err *err)
{
    struct db_conn *c;
    int64_t rows = 0;
    *out = false;
    enum cf_rc rc = sql_conn_get(base, &c, err);
    if (rc == CF_OK)
        rc = sql_run(c, &ST_IS_APPROVER, ARGS(A_TEXT(policy_id), A_TEXT(user_id)), sql_count_row,
                     &rows, NULL, err);
    *out = rc == CF_OK && rows > 0;
    return rc;
}

static struct sql_stmt ST_GROUP_FIND =
    SQL_STMT("SELECT id FROM user_groups WHERE id = ?1 OR name = ?1 ORDER BY name = ?1 LIMIT 1");

enum cf_rc cf_store_approval_group_find(struct cf_store *base, const char *ref,
                                        char id[CF_UUID_LEN], struct cf_err *err)
{
    id[0] = '\0';
    return sql_get_one(base, &ST_GROUP_FIND, ARGS(A_TEXT(ref)), sql_read_id, id, "group", ref, err);
}

/* ---- change requests ---- */

#define REQUEST_COLS                                                                               \
    "r.id, r.project_id, COALESCE(r.policy_id, ''), r.policy_name, r.approvals_required,"          \
    " r.enforcement, r.env_id, r.folder_id, r.path, r.author_id, COALESCE(u.email, ''), r.status," \
    " r.merged_by, r.bypass_reason, r.created_at, r.updated_at"
#define REQUEST_FROM " FROM change_requests r LEFT JOIN users u ON u.id = r.author_id"

static enum cf_rc read_request(const struct db_row *s, void *item)
{
    struct cf_change_request *r = item;
    db_row_text(s, 0, r->id, sizeof(r->id));
    db_row_text(s, 1, r->project_id, sizeof(r->project_id));
    db_row_text(s, 2, r->policy_id, sizeof(r->policy_id));
    db_row_text(s, 3, r->policy_name, sizeof(r->policy_name));
    r->approvals_required = db_row_int64(s, 4);
    db_row_text(s, 5, r->enforcement, sizeof(r->enforcement));
    db_row_text(s, 6, r->env_id, sizeof(r->env_id));
    db_row_text(s, 7, r->folder_id, sizeof(r->folder_id));
    db_row_text(s, 8, r->path, sizeof(r->path));
    db_row_text(s, 9, r->author_id, sizeof(r->author_id));
    db_row_text(s, 10, r->author_email, sizeof(r->author_email));
    db_row_text(s, 11, r->status, sizeof(r->status));
    db_row_text(s, 12, r->merged_by, sizeof(r->merged_by));
    db_row_text(s, 13, r->bypass_reason, sizeof(r->bypass_reason));
    r->created_at = db_row_int64(s, 14);
    r->updated_at = db_row_int64(s, 15);
    return db_row_status(s);
}

static enum cf_rc read_item(const struct db_row *s, void *item)
{
    struct cf_change_item *x = item;
    db_row_text(s, 0, x->op, sizeof(x->op));
    db_row_text(s, 1, x->key, sizeof(x->key));
    db_row_text(s, 2, x->new_key, sizeof(x->new_key));
    x->base_version = db_row_int64(s, 3);
    x->skip_multiline = (int)db_row_int64(s, 7);
    enum cf_rc rc = db_row_status(s);
    if (rc == CF_OK && db_row_int64(s, 5))
        rc = sql_col_blob(s, 4, &x->sealed, &x->sealed_len);
    if (rc == CF_OK && db_row_int64(s, 8))
        rc = sql_col_strdup(s, 6, &x->comment);
    return rc;
}

static enum cf_rc read_review(const struct db_row *s, void *item)
{
    struct cf_change_review *x = item;
    db_row_text(s, 0, x->user_id, sizeof(x->user_id));
    db_row_text(s, 1, x->email, sizeof(x->email));
    db_row_text(s, 2, x->decision, sizeof(x->decision));
    db_row_text(s, 3, x->comment, sizeof(x->comment));
    x->created_at = db_row_int64(s, 4);
    return db_row_status(s);
}

static struct sql_stmt ST_REQUEST_INSERT = SQL_STMT(
    "INSERT INTO change_requests (id, project_id, policy_id, policy_name, approvals_required,"
    " enforcement, env_id, folder_id, path, author_id, status, created_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'open', ?11, ?11)");

static struct sql_stmt ST_ITEM_INSERT = SQL_STMT(
    "INSERT INTO change_request_items (request_id, position, op, key, new_key, base_version,"
    " sealed, comment, skip_multiline) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");

static struct sql_stmt ST_ITEM_INSERT_NULL_COMMENT = SQL_STMT(
    "INSERT INTO change_request_items (request_id, position, op, key, new_key, base_version,"
    " sealed, comment, skip_multiline) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8)");

enum cf_rc cf_store_change_request_create(struct cf_store *base, const struct cf_change_request *r,
                                          struct cf_err *err)
{
    struct db_conn *c;
    int64_t now = sql_time_or_now(r->created_at, cf_now_ms());
    enum cf_rc rc = sql_require_uuid(r->id, "change request", err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_REQUEST_INSERT,
                  ARGS(A_TEXT(r->id), A_TEXT(r->project_id), A_NULLABLE(r->policy_id),
                       A_TEXT(r->policy_name), A_INT(r->approvals_required), A_TEXT(r->enforcement),
                       A_TEXT(r->env_id), A_TEXT(r->folder_id), A_TEXT(r->path),
                       A_TEXT(r->author_id), A_INT(now)),
                  NULL, err);
    for (size_t i = 0; i < r->n_items && rc == CF_OK; i++) {
        const struct cf_change_item *x = &r->items[i];
        if (x->comment)
            rc = sql_exec(c, &ST_ITEM_INSERT,
                          ARGS(A_TEXT(r->id), A_INT(i), A_TEXT(x->op), A_TEXT(x->key),
                               A_NULLABLE(x->new_key), A_INT(x->base_version),
                               A_NULLABLE_BLOB(x->sealed, x->sealed_len), A_TEXT(x->comment),
                               A_INT(x->skip_multiline)),
                          NULL, err);
        else
            rc = sql_exec(c, &ST_ITEM_INSERT_NULL_COMMENT,
                          ARGS(A_TEXT(r->id), A_INT(i), A_TEXT(x->op), A_TEXT(x->key),
                               A_NULLABLE(x->new_key), A_INT(x->base_version),
                               A_NULLABLE_BLOB(x->sealed, x->sealed_len), A_INT(x->skip_multiline)),
                          NULL, err);
    }
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_REQUEST_GET =
    SQL_STMT("SELECT " REQUEST_COLS REQUEST_FROM " WHERE r.id = ?1");
static struct sql_stmt ST_REQUEST_LIST =
    SQL_STMT("SELECT " REQUEST_COLS REQUEST_FROM " WHERE r.project_id = ?1"
             " ORDER BY r.created_at DESC, r.id");
static struct sql_stmt ST_REQUEST_LIST_STATUS =
    SQL_STMT("SELECT " REQUEST_COLS REQUEST_FROM " WHERE r.project_id = ?1 AND r.status = ?2"
             " ORDER BY r.created_at DESC, r.id");
static struct sql_stmt ST_ITEM_LIST =
    SQL_STMT("SELECT op, key, COALESCE(new_key, ''), base_version, sealed,"
             " CASE WHEN sealed IS NULL THEN 0 ELSE 1 END, COALESCE(comment, ''), skip_multiline,"
             " CASE WHEN comment IS NULL THEN 0 ELSE 1 END"
             " FROM change_request_items WHERE request_id = ?1 ORDER BY position");
static struct sql_stmt ST_REVIEW_LIST =
    SQL_STMT("SELECT v.user_id, COALESCE(u.email, ''), v.decision, v.comment, v.created_at"
             " FROM change_request_reviews v LEFT JOIN users u ON u.id = v.user_id"
             " WHERE v.request_id = ?1 ORDER BY v.created_at, v.user_id");

/* Reads r's items and reviews. */
static enum cf_rc read_children(struct cf_store *base, struct cf_change_request *r,
                                struct cf_err *err)
{
    struct sql_collector items = {.size = sizeof(struct cf_change_item), .read = read_item};
    struct sql_collector reviews = {.size = sizeof(struct cf_change_review), .read = read_review};
    enum cf_rc rc = sql_collect_all(base, &ST_ITEM_LIST, ARGS(A_TEXT(r->id)), &items, err);
    r->items = items.items;
    r->n_items = items.n;
    if (rc == CF_OK)
        rc = sql_collect_all(base, &ST_REVIEW_LIST, ARGS(A_TEXT(r->id)), &reviews, err);
    r->reviews = reviews.items;
    r->n_reviews = reviews.n;
    return rc;
}

enum cf_rc cf_store_change_request_get(struct cf_store *base, const char *id,
                                       struct cf_change_request *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = sql_get_one(base, &ST_REQUEST_GET, ARGS(A_TEXT(id)), read_request, out,
                                "change request", id, err);
    if (rc == CF_OK)
        rc = read_children(base, out, err);
    if (rc != CF_OK)
        cf_change_request_release(out);
    return rc;
}

enum cf_rc cf_store_change_request_list(struct cf_store *base, const char *project_id,
                                        const char *status, struct cf_change_request_list *out,
                                        struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_change_request), .read = read_request};
    enum cf_rc rc;
    if (status)
        rc = sql_collect_all(base, &ST_REQUEST_LIST_STATUS,
                             ARGS(A_TEXT(project_id), A_TEXT(status)), &col, err);
    else
        rc = sql_collect_all(base, &ST_REQUEST_LIST, ARGS(A_TEXT(project_id)), &col, err);
    out->items = col.items;
    out->n = col.n;
    for (size_t i = 0; i < out->n && rc == CF_OK; i++)
        rc = read_children(base, &out->items[i], err);
    if (rc != CF_OK)
        cf_change_request_list_release(out);
    return rc;
}

static struct sql_stmt ST_REQUEST_TOUCH_OPEN =
    SQL_STMT("UPDATE change_requests SET updated_at = ?2 WHERE id = ?1 AND status = 'open'");
static struct sql_stmt ST_REVIEW_DELETE =
    SQL_STMT("DELETE FROM change_request_reviews WHERE request_id = ?1 AND user_id = ?2");
static struct sql_stmt ST_REVIEW_INSERT =
    SQL_STMT("INSERT INTO change_request_reviews (request_id, user_id, decision, comment,"
             " created_at) VALUES (?1, ?2, ?3, ?4, ?5)");
static struct sql_stmt ST_REQUEST_SET_STATUS = SQL_STMT(
    "UPDATE change_requests SET status = ?2, updated_at = ?3 WHERE id = ?1 AND status = 'open'");

/* CF_ECONFLICT naming the request when changes is 0 (it is no longer open). */
static enum cf_rc must_be_open(int64_t changes, const char *id, struct cf_err *err)
{
    return changes == 1
               ? CF_OK
               : cf_err_set(err, CF_ECONFLICT, "change request '%s' is no longer open", id);
}

enum cf_rc cf_store_change_request_review(struct cf_store *base, const char *request_id,
                                          const struct cf_change_review *review, struct cf_err *err)
{
    struct db_conn *c;
    int64_t now = cf_now_ms(), changes = 0;
    enum cf_rc rc =
        sql_require_terminated(review->comment, sizeof(review->comment), "comment", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(review->decision, sizeof(review->decision), "decision", err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_REQUEST_TOUCH_OPEN, ARGS(A_TEXT(request_id), A_INT(now)), &changes, err);
    if (rc == CF_OK)
        rc = must_be_open(changes, request_id, err);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_REVIEW_DELETE, ARGS(A_TEXT(request_id), A_TEXT(review->user_id)), NULL,
                      err);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_REVIEW_INSERT,
                      ARGS(A_TEXT(request_id), A_TEXT(review->user_id), A_TEXT(review->decision),
                           A_TEXT(review->comment), A_INT(now)),
                      NULL, err);
    if (rc == CF_OK && strcmp(review->decision, "rejected") == 0)
        rc = sql_exec(c, &ST_REQUEST_SET_STATUS,
                      ARGS(A_TEXT(request_id), A_TEXT("rejected"), A_INT(now)), NULL, err);
    return sql_tx_end(c, rc, err);
}

enum cf_rc cf_store_change_request_close(struct cf_store *base, const char *request_id,
                                         const char *status, struct cf_err *err)
{
    int64_t changes = 0;
    enum cf_rc rc =
        sql_exec_in_tx(base, &ST_REQUEST_SET_STATUS,
                       ARGS(A_TEXT(request_id), A_TEXT(status), A_INT(cf_now_ms())), &changes, err);
    return rc == CF_OK ? must_be_open(changes, request_id, err) : rc;
}

static struct sql_stmt ST_REQUEST_MERGE =
    SQL_STMT("UPDATE change_requests SET status = 'merged', merged_by = ?2, bypass_reason = ?3,"
             " updated_at = ?4 WHERE id = ?1 AND status = 'open'");

enum cf_rc cf_store_change_request_merge(struct cf_store *base, const char *request_id,
                                         const char *merged_by, const char *bypass_reason,
                                         const struct cf_secret_write *writes, size_t n,
                                         int64_t *syncs_marked, struct cf_err *err)
{
    struct db_conn *c;
    int64_t now = cf_now_ms(), changes = 0, marked = 0;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_REQUEST_MERGE,
                  ARGS(A_TEXT(request_id), A_TEXT(merged_by), A_TEXT(bypass_reason), A_INT(now)),
                  &changes, err);
    if (rc == CF_OK)
        rc = must_be_open(changes, request_id, err);
    for (size_t i = 0; i < n && rc == CF_OK; i++)
        rc = sql_secret_write_one(c, &writes[i], now, err);
    if (rc == CF_OK && n > 0)
        rc = sql_syncs_mark_project(c, writes[0].row.project_id, &marked, err);
    rc = sql_tx_end(c, rc, err);
    if (syncs_marked)
        *syncs_marked = rc == CF_OK ? marked : 0;
    return rc;
}
