/* Secrets in the store (store.h): batches of writes (create, update, delete) in one transaction,
 * listings by folder or subtree, versions and history, as SQL run through sqlrun.h. */
#include <string.h>

#include "store/shared.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define SECRET_COLS                                                                                \
    "s.id, s.folder_id, e.project_id, f.env_id, f.path, v.key, v.version, v.sealed, v.comment, "   \
    "v.tags, v.expires_at, v.skip_multiline, s.created_at, v.created_at, v.reminder_repeat_days, " \
    "v.reminder_note"

/* A secret joined with one of its versions, its folder and its environment. */
#define SECRET_FROM                                                                                \
    " FROM secrets s JOIN secret_versions v ON v.secret_id = s.id"                                 \
    " JOIN folders f ON f.id = s.folder_id JOIN environments e ON e.id = f.env_id"

/* Current versions of the secrets of folders f: the listing queries start from the folder index. */
#define SECRET_LIST_FROM                                                                           \
    " FROM folders f JOIN secrets s ON s.folder_id = f.id"                                         \
    " JOIN secret_versions v ON v.secret_id = s.id AND v.version = s.version"                      \
    " JOIN environments e ON e.id = f.env_id"

/* The columns of SECRET_COLS held in place in a struct cf_secret: all but the sealed value and
 * the text of any length. */
static enum cf_rc read_secret_fixed(const struct db_row *s, struct cf_secret *x)
{
    db_row_text(s, 0, x->id, sizeof(x->id));
    db_row_text(s, 1, x->folder_id, sizeof(x->folder_id));
    db_row_text(s, 2, x->project_id, sizeof(x->project_id));
    db_row_text(s, 3, x->env_id, sizeof(x->env_id));
    db_row_text(s, 4, x->path, sizeof(x->path));
    db_row_text(s, 5, x->key, sizeof(x->key));
    x->version = db_row_int64(s, 6);
    x->expires_at = db_row_int64(s, 10);
    x->skip_multiline = (int)db_row_int64(s, 11) != 0;
    x->created_at = db_row_int64(s, 12);
    x->updated_at = db_row_int64(s, 13);
    x->reminder_repeat_days = db_row_int64(s, 14);
    return db_row_status(s);
}

static enum cf_rc read_secret(const struct db_row *s, void *item)
{
    struct cf_secret *x = item;
    enum cf_rc rc = read_secret_fixed(s, x);
    if (rc == CF_OK)
        rc = sql_col_blob(s, 7, &x->sealed, &x->sealed_len);
    if (rc == CF_OK)
        rc = sql_col_strdup(s, 8, &x->comment);
    if (rc == CF_OK)
        rc = sql_col_strdup(s, 9, &x->tags);
    if (rc == CF_OK)
        rc = sql_col_strdup(s, 15, &x->reminder_note);
    return rc;
}

static enum cf_rc read_secret_meta(const struct db_row *s, void *item)
{
    struct cf_secret_meta *x = item;
    db_row_text(s, 0, x->id, sizeof(x->id));
    db_row_text(s, 1, x->project_id, sizeof(x->project_id));
    db_row_text(s, 2, x->env_id, sizeof(x->env_id));
    db_row_text(s, 3, x->path, sizeof(x->path));
    db_row_text(s, 4, x->key, sizeof(x->key));
    x->version = db_row_int64(s, 5);
    x->version_count = db_row_int64(s, 6);
    x->expires_at = db_row_int64(s, 7);
    x->reminder_repeat_days = db_row_int64(s, 8);
    x->created_at = db_row_int64(s, 9);
    x->updated_at = db_row_int64(s, 10);
    return db_row_status(s);
}

/* The path of folder_id into path (for messages; "?" when it is gone). */
static void folder_path_of(struct db_conn *c, const char *folder_id, char path[CF_PATH_MAX + 1])
{
    struct cf_folder folder;
    bool found = false;
    if (sql_get_row(c, &ST_FOLDER_BY_ID, ARGS(A_TEXT(folder_id)), sql_read_folder, &folder, &found,
                    NULL) == CF_OK &&
        found)
        cf_strlcpy(path, folder.path, CF_PATH_MAX + 1);
    else
        cf_strlcpy(path, "?", CF_PATH_MAX + 1);
}

struct secret_state {
    char id[CF_UUID_LEN];
    char folder_id[CF_UUID_LEN];
    char key[CF_KEY_MAX + 1];
    int64_t version;
};

static enum cf_rc read_secret_state(const struct db_row *s, void *item)
{
    struct secret_state *st = item;
    db_row_text(s, 0, st->id, sizeof(st->id));
    db_row_text(s, 1, st->folder_id, sizeof(st->folder_id));
    db_row_text(s, 2, st->key, sizeof(st->key));
    st->version = db_row_int64(s, 3);
    return db_row_status(s);
}

static enum cf_rc duplicate_key(struct db_conn *c, const char *folder_id, const char *key,
                                struct cf_err *err)
{
    char path[CF_PATH_MAX + 1];
    folder_path_of(c, folder_id, path);
    return cf_err_set(err, CF_EEXIST, "secret '%s' already exists in folder '%s'", key, path);
}

static struct sql_stmt ST_VERSION_INSERT = SQL_STMT(
    "INSERT INTO secret_versions (secret_id, version, key, sealed, comment, tags, expires_at,"
    " skip_multiline, created_at, reminder_repeat_days, reminder_note)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");

static enum cf_rc insert_version(struct db_conn *c, const struct cf_secret *row, int64_t version,
                                 int64_t written_at, struct cf_err *err)
{
    return sql_exec(
        c, &ST_VERSION_INSERT,
        ARGS(A_TEXT(row->id), A_INT(version), A_TEXT(row->key),
             A_BLOB(row->sealed, row->sealed_len), A_TEXT(sql_str_or_empty(row->comment)),
             A_TEXT(row->tags ? row->tags : "[]"), A_INT(row->expires_at),
             A_INT(row->skip_multiline ? 1 : 0), A_INT(written_at),
             A_INT(row->reminder_repeat_days), A_TEXT(sql_str_or_empty(row->reminder_note))),
        NULL, err);
}

static struct sql_stmt ST_SECRET_STATE =
    SQL_STMT("SELECT id, folder_id, key, version FROM secrets WHERE id = ?1");

/* The current state of the secret an UPDATE or DELETE names, checked against expected_version. */
static enum cf_rc load_expected(struct db_conn *c, const struct cf_secret_write *w,
                                struct secret_state *cur, struct cf_err *err)
{
    bool found;
    enum cf_rc rc = sql_get_row(c, &ST_SECRET_STATE, ARGS(A_TEXT(w->row.id)), read_secret_state,
                                cur, &found, err);
    if (rc != CF_OK)
        return rc;
    if (!found)
        return cf_err_set(err, CF_ENOTFOUND, "secret with id '%s' not found", w->row.id);
    if (cur->version != w->expected_version)
        return cf_err_set(err, CF_ECONFLICT,
                          "secret '%s' was changed concurrently: it is at version %lld, not %lld",
                          cur->key, (long long)cur->version, (long long)w->expected_version);
    return CF_OK;
}

static struct sql_stmt ST_SECRET_INSERT =
    SQL_STMT("INSERT INTO secrets (id, folder_id, key, version, created_at, updated_at)"
             " VALUES (?1, ?2, ?3, 1, ?4, ?5)");

/* A new version under the same key. key is not in the SET list: SQLite rewrites a row's index
 * entries (its primary key's, and id's, which holds the primary key) for every key column named
 * there, changed or not, and that is one more page in the log per write. */
static struct sql_stmt ST_SECRET_BUMP =
    SQL_STMT("UPDATE secrets SET version = ?2, updated_at = ?3 WHERE id = ?1");

/* The common update in one statement: the key kept, and the version the one the caller read. */
static struct sql_stmt ST_SECRET_BUMP_EXPECTED =
    SQL_STMT("UPDATE secrets SET version = ?2, updated_at = ?3"
             " WHERE id = ?1 AND version = ?4 AND key = ?5");

static struct sql_stmt ST_SECRET_RENAME =
    SQL_STMT("UPDATE secrets SET key = ?2, version = ?3, updated_at = ?4 WHERE id = ?1");

static struct sql_stmt ST_SECRET_DELETE = SQL_STMT("DELETE FROM secrets WHERE id = ?1");

enum cf_rc sql_secret_write_one(struct db_conn *c, const struct cf_secret_write *w, int64_t now,
                                struct cf_err *err)
{
    const struct cf_secret *row = &w->row;
    int64_t written_at = sql_time_or_now(row->updated_at, now);
    struct secret_state cur;
    enum cf_rc rc;

    if (w->op != CF_SECRET_OP_DELETE) {
        if (!row->key[0])
            return cf_err_set(err, CF_EINVAL, "secret key is empty");
        if (!row->sealed)
            return cf_err_set(err, CF_EINVAL, "secret '%s' has no value", row->key);
    }
    switch (w->op) {
    case CF_SECRET_OP_CREATE:
        rc = sql_require_uuid(row->id, "secret", err);
        if (rc != CF_OK)
            return rc;
        rc = sql_exec(c, &ST_SECRET_INSERT,
                      ARGS(A_TEXT(row->id), A_TEXT(row->folder_id), A_TEXT(row->key),
                           A_INT(sql_time_or_now(row->created_at, now)), A_INT(written_at)),
                      NULL, err);
        if (rc == CF_EEXIST)
            return duplicate_key(c, row->folder_id, row->key, err);
        if (rc == CF_ENOTFOUND)
            return cf_err_set(err, CF_ENOTFOUND, "folder with id '%s' not found", row->folder_id);
        if (rc != CF_OK)
            return rc;
        return insert_version(c, row, 1, written_at, err);
    case CF_SECRET_OP_UPDATE: {
        int64_t bumped = 0;
        rc = sql_exec(c, &ST_SECRET_BUMP_EXPECTED,
                      ARGS(A_TEXT(row->id), A_INT(w->expected_version + 1), A_INT(written_at),
                           A_INT(w->expected_version), A_TEXT(row->key)),
                      &bumped, err);
        if (rc != CF_OK)
            return rc;
        if (bumped == 1)
            return insert_version(c, row, w->expected_version + 1, written_at, err);
        /* A rename, or a secret changed or deleted since it was read: said below. */
        rc = load_expected(c, w, &cur, err);
        if (rc != CF_OK)
            return rc;
        if (strcmp(cur.key, row->key) == 0)
            rc = sql_exec(c, &ST_SECRET_BUMP,
                          ARGS(A_TEXT(row->id), A_INT(cur.version + 1), A_INT(written_at)), NULL,
                          err);
        else
            rc = sql_exec(
                c, &ST_SECRET_RENAME,
                ARGS(A_TEXT(row->id), A_TEXT(row->key), A_INT(cur.version + 1), A_INT(written_at)),
                NULL, err);
        if (rc == CF_EEXIST)
            return duplicate_key(c, cur.folder_id, row->key, err);
        if (rc != CF_OK)
            return rc;
        return insert_version(c, row, cur.version + 1, written_at, err);
    }
    case CF_SECRET_OP_DELETE:
        rc = load_expected(c, w, &cur, err);
        if (rc != CF_OK)
            return rc;
        return sql_exec(c, &ST_SECRET_DELETE, ARGS(A_TEXT(row->id)), NULL, err);
    }
    return cf_err_set(err, CF_EINVAL, "unknown secret operation %d", (int)w->op);
}

/* One caller's writes, all or none, waiting to share a transaction with other callers'
 * (sql_combine). It lives on the caller's stack. */
struct write_job {
    struct sql_job job; /* first: the batch's struct sql_job * is a struct write_job * */
    const struct cf_secret_write *writes;
    size_t n;
    int64_t now;
    int64_t syncs_marked;
};

static enum cf_rc run_write_job(struct db_conn *c, struct sql_job *queued, struct cf_err *err)
{
    struct write_job *job = (struct write_job *)queued;
    enum cf_rc rc = CF_OK;
    for (size_t i = 0; i < job->n && rc == CF_OK; i++)
        rc = sql_secret_write_one(c, &job->writes[i], job->now, err);
    /* Under the job's savepoint: a job that fails leaves no mark either. */
    if (rc == CF_OK && job->n > 0)
        rc = sql_syncs_mark_project(c, job->writes[0].row.project_id, &job->syncs_marked, err);
    return rc;
}

static const struct sql_batch_ops WRITE_BATCH = {.run = run_write_job};

/* Writes from concurrent requests share one transaction: the pages they change together (the
 * folder's rows, the change counters, the versions' last pages) and the commit are paid once. The
 * syncs' mark rides along: in a read and a transaction of its own after the write, it cost every
 * write a read transaction whose pages the write's commit had just made stale. */
enum cf_rc cf_store_secret_write(struct cf_store *base, const struct cf_secret_write *writes,
                                 size_t n, int64_t *syncs_marked, struct cf_err *err)
{
    struct sql_store *st = sql_store_of(base);
    struct write_job job = {.writes = writes, .n = n, .now = cf_now_ms()};
    enum cf_rc rc = sql_combine(st, &st->secret_writes, &WRITE_BATCH, &job.job, err);
    if (syncs_marked)
        *syncs_marked = rc == CF_OK ? job.syncs_marked : 0;
    return rc;
}

/* Runs a secret query into out (released on failure). */
static enum cf_rc secret_query(struct db_conn *c, struct sql_stmt *id, const struct sq_arg *args,
                               size_t n_args, struct cf_secret_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_secret), .read = read_secret};
    enum cf_rc rc = sql_run(c, id, args, n_args, sql_collect, &col, NULL, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_secret_list_release(out);
    return rc;
}

static struct sql_stmt ST_SECRET_LIST = SQL_STMT(
    "SELECT " SECRET_COLS SECRET_LIST_FROM " WHERE f.env_id = ?1 AND f.path = ?2 ORDER BY s.key");

static struct sql_stmt ST_SECRET_LIST_SUBTREE =
    SQL_STMT("SELECT " SECRET_COLS SECRET_LIST_FROM
             " WHERE f.env_id = ?1 AND " SUBTREE("f.path") " ORDER BY f.path, s.key");

/* Runs the folder listing (the subtree when recursive), handing each row to fn(row, ctx);
 * CF_ENOTFOUND when it yields no row because the folder does not exist. */
static enum cf_rc list_rows(struct cf_store *base, const char *env_id, const char *path,
                            bool recursive, row_fn fn, void *ctx, struct cf_err *err)
{
    struct subtree bounds;
    struct db_conn *c;
    int64_t rows = 0;
    enum cf_rc rc = sql_subtree_bounds(path, &bounds, err);
    if (rc == CF_OK)
        rc = sql_conn_get(base, &c, err);
    if (rc != CF_OK)
        return rc;
    if (recursive)
        rc = sql_run(c, &ST_SECRET_LIST_SUBTREE,
                     ARGS(A_TEXT(env_id), A_TEXT(path), A_TEXT(bounds.lo), A_TEXT(bounds.hi)), fn,
                     ctx, &rows, err);
    else
        rc = sql_run(c, &ST_SECRET_LIST, ARGS(A_TEXT(env_id), A_TEXT(path)), fn, ctx, &rows, err);
    if (rc == CF_OK && rows == 0)
        rc = sql_folder_must_exist(c, env_id, path, err);
    return rc;
}

enum cf_rc cf_store_secret_list(struct cf_store *base, const char *env_id, const char *path,
                                bool recursive, struct cf_secret_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_secret), .read = read_secret};
    enum cf_rc rc = list_rows(base, env_id, path, recursive, sql_collect, &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_secret_list_release(out);
    return rc;
}

/* A listing handed row by row to the caller (cf_store_secret_list_each): one struct cf_secret and
 * one buffer for its text, both reused for every row. */
struct row_visit {
    cf_secret_row_fn fn;
    void *ctx;
    struct cf_secret row;
    struct cf_buf text; /* the row's comment, tags and reminder note, each NUL-terminated */
    struct cf_err *err;
};

/* Appends text column i and its NUL to buf; *at receives where it starts. */
static enum cf_rc text_into(const struct db_row *s, int i, struct cf_buf *buf, size_t *at)
{
    size_t len = 0;
    const char *text = db_row_bytes(s, i, &len);
    *at = buf->len;
    enum cf_rc rc = cf_buf_append(buf, text ? text : "", text ? len : 0);
    if (rc == CF_OK)
        rc = cf_buf_append(buf, "", 1);
    return rc;
}

static enum cf_rc visit_row(const struct db_row *s, void *ctx)
{
    static const uint8_t empty[1];
    struct row_visit *v = ctx;
    struct cf_secret *x = &v->row;
    size_t comment = 0, tags = 0, note = 0;
    enum cf_rc rc = read_secret_fixed(s, x);
    if (rc != CF_OK)
        return rc;
    v->text.len = 0;
    rc = text_into(s, 8, &v->text, &comment);
    if (rc == CF_OK)
        rc = text_into(s, 9, &v->text, &tags);
    if (rc == CF_OK)
        rc = text_into(s, 15, &v->text, &note);
    if (rc != CF_OK)
        return rc;
    x->comment = v->text.data + comment;
    x->tags = v->text.data + tags;
    x->reminder_note = v->text.data + note;
    /* The sealed bytes stay where the driver holds them: borrowed, valid until the next row. */
    const uint8_t *sealed = db_row_bytes(s, 7, &x->sealed_len);
    x->sealed = (uint8_t *)(sealed ? sealed : empty);
    if (!sealed)
        x->sealed_len = 0;
    rc = v->fn(v->ctx, x, v->err);
    /* The callee's own message reaches the caller of the listing through the driver's fault. */
    if (rc != CF_OK && s->fault && s->fault->rc == CF_OK)
        *s->fault = *v->err;
    return rc;
}

enum cf_rc cf_store_secret_list_each(struct cf_store *base, const char *env_id, const char *path,
                                     bool recursive, cf_secret_row_fn fn, void *ctx,
                                     struct cf_err *err)
{
    struct cf_err refusal = {0};
    struct row_visit v = {.fn = fn, .ctx = ctx, .err = &refusal};
    cf_buf_init(&v.text, 0);
    enum cf_rc rc = list_rows(base, env_id, path, recursive, visit_row, &v, err);
    cf_buf_release(&v.text);
    return rc;
}

/* Expiry scans: each branch of the OR has its partial index. */
static struct sql_stmt ST_SECRET_EXPIRING = SQL_STMT(
    "SELECT " SECRET_COLS SECRET_LIST_FROM
    " WHERE (?1 = '' OR e.project_id = ?1) AND ((v.expires_at > 0 AND v.expires_at <= ?2)"
    " OR (v.reminder_repeat_days > 0 AND v.created_at + v.reminder_repeat_days * 86400000 <= "
    "?2))");

enum cf_rc cf_store_secret_expiring(struct cf_store *base, const char *project_id, int64_t until,
                                    struct cf_secret_list *out, struct cf_err *err)
{
    struct db_conn *c;
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = sql_conn_get(base, &c, err);
    if (rc != CF_OK)
        return rc;
    return secret_query(c, &ST_SECRET_EXPIRING,
                        ARGS(A_TEXT(project_id ? project_id : ""), A_INT(until)), out, err);
}

/* Inventory: the current versions of a project without their sealed values; the
 * count is a range over the (secret_id, version) key. */
static struct sql_stmt ST_SECRET_INVENTORY =
    SQL_STMT("SELECT s.id, e.project_id, f.env_id, f.path, v.key, v.version,"
             " (SELECT COUNT(*) FROM secret_versions c WHERE c.secret_id = s.id),"
             " v.expires_at, v.reminder_repeat_days, s.created_at, v.created_at" SECRET_LIST_FROM
             " WHERE e.project_id = ?1 ORDER BY e.position, f.path, s.key");

enum cf_rc cf_store_secret_inventory(struct cf_store *base, const char *project_id,
                                     struct cf_secret_meta_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_secret_meta), .read = read_secret_meta};
    enum cf_rc rc =
        sql_collect_all(base, &ST_SECRET_INVENTORY, ARGS(A_TEXT(project_id)), &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_secret_meta_list_release(out);
    return rc;
}

/* Moves the single row of a one-secret query into out. */
static enum cf_rc secret_one(struct db_conn *c, struct sql_stmt *id, const struct sq_arg *args,
                             size_t n_args, struct cf_secret *out, struct cf_err *err)
{
    bool found;
    enum cf_rc rc = sql_get_row(c, id, args, n_args, read_secret, out, &found, err);
    if (rc == CF_OK && !found)
        rc = CF_ENOTFOUND; /* the caller names what */
    if (rc != CF_OK)
        cf_secret_release(out);
    return rc;
}

static struct sql_stmt ST_SECRET_BY_KEY =
    SQL_STMT("SELECT " SECRET_COLS SECRET_FROM " WHERE s.folder_id = ?1 AND s.key = ?2"
             " AND v.version = CASE WHEN ?3 > 0 THEN ?3 ELSE s.version END");

enum cf_rc cf_store_secret_get(struct cf_store *base, const char *folder_id, const char *key,
                               int64_t version, struct cf_secret *out, struct cf_err *err)
{
    char path[CF_PATH_MAX + 1];
    struct db_conn *c;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = sql_conn_get(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = secret_one(c, &ST_SECRET_BY_KEY, ARGS(A_TEXT(folder_id), A_TEXT(key), A_INT(version)), out,
                    err);
    if (rc == CF_ENOTFOUND) {
        folder_path_of(c, folder_id, path);
        if (version > 0)
            rc = cf_err_set(err, CF_ENOTFOUND,
                            "version %lld of secret '%s' not found in folder '%s'",
                            (long long)version, key, path);
        else
            rc = cf_err_set(err, CF_ENOTFOUND, "secret '%s' not found in folder '%s'", key, path);
    }
    return rc;
}

static struct sql_stmt ST_SECRET_BY_ID =
    SQL_STMT("SELECT " SECRET_COLS SECRET_FROM
             " WHERE s.id = ?1 AND v.version = CASE WHEN ?2 > 0 THEN ?2 ELSE s.version END");

enum cf_rc cf_store_secret_get_by_id(struct cf_store *base, const char *secret_id, int64_t version,
                                     struct cf_secret *out, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = sql_conn_get(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = secret_one(c, &ST_SECRET_BY_ID, ARGS(A_TEXT(secret_id), A_INT(version)), out, err);
    if (rc == CF_ENOTFOUND && version > 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "version %lld of secret with id '%s' not found",
                        (long long)version, secret_id);
    else if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "secret with id '%s' not found", secret_id);
    return rc;
}

static struct sql_stmt ST_SECRET_HISTORY =
    SQL_STMT("SELECT " SECRET_COLS SECRET_FROM " WHERE s.id = ?1 ORDER BY v.version DESC");

enum cf_rc cf_store_secret_history(struct cf_store *base, const char *secret_id,
                                   struct cf_secret_list *out, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = sql_conn_get(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = secret_query(c, &ST_SECRET_HISTORY, ARGS(A_TEXT(secret_id)), out, err);
    if (rc == CF_OK && out->n == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "secret with id '%s' not found", secret_id);
    return rc;
}
