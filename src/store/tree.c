/* Projects, environments, folders, imports and tags in the store (store.h): the tree secrets live
 * in, as SQL run through sqlrun.h. */
#include <ctype.h>
#include <string.h>

#include <sodium.h>

#include "store/shared.h"
#include "util/time.h"
#include "util/banned.h"

#define POSITION_COL 4

static enum cf_rc read_project(const struct db_row *s, void *item)
{
    struct cf_project *p = item;
    db_row_text(s, 0, p->id, sizeof(p->id));
    db_row_text(s, 1, p->slug, sizeof(p->slug));
    db_row_text(s, 2, p->name, sizeof(p->name));
    db_row_text(s, 3, p->description, sizeof(p->description));
    p->created_at = db_row_int64(s, 4);
    p->updated_at = db_row_int64(s, 5);
    enum cf_rc rc = db_row_status(s);
    return rc == CF_OK ? sql_col_blob(s, 6, &p->wrapped_key, &p->wrapped_key_len) : rc;
}

static enum cf_rc read_env(const struct db_row *s, void *item)
{
    struct cf_env *e = item;
    db_row_text(s, 0, e->id, sizeof(e->id));
    db_row_text(s, 1, e->project_id, sizeof(e->project_id));
    db_row_text(s, 2, e->slug, sizeof(e->slug));
    db_row_text(s, 3, e->name, sizeof(e->name));
    e->position = (int)db_row_int64(s, POSITION_COL);
    e->created_at = db_row_int64(s, 5);
    e->updated_at = db_row_int64(s, 6);
    return db_row_status(s);
}

static enum cf_rc read_import(const struct db_row *s, void *item)
{
    struct cf_import *im = item;
    db_row_text(s, 0, im->id, sizeof(im->id));
    db_row_text(s, 1, im->folder_id, sizeof(im->folder_id));
    db_row_text(s, 2, im->import_env_id, sizeof(im->import_env_id));
    db_row_text(s, 3, im->import_path, sizeof(im->import_path));
    im->position = (int)db_row_int64(s, POSITION_COL);
    im->created_at = db_row_int64(s, 5);
    im->updated_at = db_row_int64(s, 6);
    return db_row_status(s);
}

static enum cf_rc read_tag(const struct db_row *s, void *item)
{
    struct cf_tag *t = item;
    db_row_text(s, 0, t->id, sizeof(t->id));
    db_row_text(s, 1, t->project_id, sizeof(t->project_id));
    db_row_text(s, 2, t->slug, sizeof(t->slug));
    db_row_text(s, 3, t->name, sizeof(t->name));
    db_row_text(s, 4, t->color, sizeof(t->color));
    t->created_at = db_row_int64(s, 5);
    t->updated_at = db_row_int64(s, 6);
    return db_row_status(s);
}

/* When id_or_slug is a UUID, its lower-case form in buf (stored ids are lower-case); NULL for a
 * slug. */
static const char *as_id(const char *id_or_slug, char buf[CF_UUID_LEN])
{
    if (!cf_uuid_valid(id_or_slug))
        return NULL;
    for (size_t i = 0; i < CF_UUID_LEN - 1; i++)
        buf[i] = (char)tolower((unsigned char)id_or_slug[i]);
    buf[CF_UUID_LEN - 1] = '\0';
    return buf;
}

struct position_item {
    char id[CF_UUID_LEN];
    int64_t position;
};

static enum cf_rc read_position_item(const struct db_row *s, void *item)
{
    struct position_item *p = item;
    db_row_text(s, 0, p->id, sizeof(p->id));
    p->position = db_row_int64(s, POSITION_COL);
    return db_row_status(s);
}

/* Rewrites positions 1..n of the rows that list_stmt returns for scope_id (environments of a
 * project, imports of a folder) in their current order, after moving row move_id (when non-NULL) to
 * new_position (clamped to 1..n). Only rows whose position changes are written. */
static enum cf_rc renumber(struct db_conn *c, struct sql_stmt *list_stmt, struct sql_stmt *set_stmt,
                           const char *scope_id, const char *move_id, int64_t new_position,
                           struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct position_item), .read = read_position_item};
    struct position_item *items;
    enum cf_rc rc;

    rc = sql_run(c, list_stmt, ARGS(A_TEXT(scope_id)), sql_collect, &col, NULL, err);
    if (rc != CF_OK)
        goto out;
    items = col.items;
    for (size_t from = 0; move_id && from < col.n; from++) {
        if (strcmp(items[from].id, move_id) != 0)
            continue;
        struct position_item moved = items[from];
        size_t to = new_position < 1 ? 0 : (size_t)new_position - 1;
        if (to >= col.n)
            to = col.n - 1;
        if (to < from)
            memmove(&items[to + 1], &items[to], (from - to) * sizeof(*items));
        else
            memmove(&items[from], &items[from + 1], (to - from) * sizeof(*items));
        items[to] = moved;
        break;
    }
    for (size_t i = 0; i < col.n && rc == CF_OK; i++) {
        if (items[i].position != (int64_t)i + 1)
            rc = sql_exec(c, set_stmt, ARGS(A_TEXT(items[i].id), A_INT(i + 1)), NULL, err);
    }
out:
    free(col.items);
    return rc;
}

static struct sql_stmt ST_ENV_INSERT =
    SQL_STMT("INSERT INTO environments (" ENV_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");

static struct sql_stmt ST_FOLDER_INSERT =
    SQL_STMT("INSERT INTO folders (id, env_id, parent_id, name, path, description,"
             " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");

/* Inserts env at position, with its root folder "/". */
static enum cf_rc env_insert(struct db_conn *c, const struct cf_env *env, const char *project_id,
                             int64_t position, int64_t now, struct cf_err *err)
{
    char root_id[CF_UUID_LEN];
    int64_t created = sql_time_or_now(env->created_at, now);
    enum cf_rc rc;

    rc = sql_require_uuid(env->id, "environment", err);
    if (rc != CF_OK)
        return rc;
    if (!env->slug[0])
        return cf_err_set(err, CF_EINVAL, "environment slug is empty");
    rc = sql_exec(c, &ST_ENV_INSERT,
                  ARGS(A_TEXT(env->id), A_TEXT(project_id), A_TEXT(env->slug),
                       A_TEXT(env->name[0] ? env->name : env->slug), A_INT(position),
                       A_INT(created), A_INT(sql_time_or_now(env->updated_at, now))),
                  NULL, err);
    if (rc == CF_EEXIST)
        return cf_err_set(err, CF_EEXIST, "environment '%s' already exists", env->slug);
    if (rc == CF_ENOTFOUND)
        return cf_err_set(err, CF_ENOTFOUND, "project '%s' not found", project_id);
    if (rc != CF_OK)
        return rc;
    cf_uuid_new(root_id);
    return sql_exec(c, &ST_FOLDER_INSERT,
                    ARGS(A_TEXT(root_id), A_TEXT(env->id), A_NULLABLE(""), A_TEXT(""), A_TEXT("/"),
                         A_TEXT(""), A_INT(created), A_INT(created)),
                    NULL, err);
}

static struct sql_stmt ST_PROJECT_INSERT =
    SQL_STMT("INSERT INTO projects (" PROJECT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");

enum cf_rc cf_store_project_create(struct cf_store *base, const struct cf_project *project,
                                   const struct cf_env *envs, size_t n_envs, struct cf_err *err)
{
    struct db_conn *c;
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    rc = sql_require_uuid(project->id, "project", err);
    if (rc != CF_OK)
        return rc;
    if (!project->slug[0])
        return cf_err_set(err, CF_EINVAL, "project slug is empty");
    if (!project->wrapped_key || !project->wrapped_key_len)
        return cf_err_set(err, CF_EINVAL, "project '%s' has no data key", project->slug);
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_PROJECT_INSERT,
                  ARGS(A_TEXT(project->id), A_TEXT(project->slug),
                       A_TEXT(project->name[0] ? project->name : project->slug),
                       A_TEXT(project->description),
                       A_INT(sql_time_or_now(project->created_at, now)),
                       A_INT(sql_time_or_now(project->updated_at, now)),
                       A_BLOB(project->wrapped_key, project->wrapped_key_len)),
                  NULL, err);
    if (rc == CF_EEXIST)
        cf_err_set(err, CF_EEXIST, "project '%s' already exists", project->slug);
    for (size_t i = 0; i < n_envs && rc == CF_OK; i++)
        rc = env_insert(c, &envs[i], project->id, (int64_t)i + 1, now, err);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_PROJECT_BY_ID =
    SQL_STMT("SELECT " PROJECT_COLS " FROM projects WHERE id = ?1");

static struct sql_stmt ST_PROJECT_BY_SLUG =
    SQL_STMT("SELECT " PROJECT_COLS " FROM projects WHERE slug = ?1");

enum cf_rc cf_store_project_get(struct cf_store *base, const char *id_or_slug,
                                struct cf_project *out, struct cf_err *err)
{
    char id_buf[CF_UUID_LEN];
    const char *id = as_id(id_or_slug, id_buf);
    enum cf_rc rc;

    char key[SQL_CACHE_KEY_MAX];
    bool cacheable = sql_cache_key(key, sizeof(key), 'p', id_or_slug, NULL);
    void *wrapped_key;
    size_t wrapped_key_len;

    memset(out, 0, sizeof(*out));
    if (cacheable && sql_cache_get_with(sql_store_of(base), key, out, sizeof(*out), &wrapped_key,
                                        &wrapped_key_len)) {
        out->wrapped_key = wrapped_key;
        out->wrapped_key_len = wrapped_key_len;
        return CF_OK;
    }
    rc = sql_get_one(base, id ? &ST_PROJECT_BY_ID : &ST_PROJECT_BY_SLUG,
                     ARGS(A_TEXT(id ? id : id_or_slug)), read_project, out, "project", id_or_slug,
                     err);
    if (rc == CF_OK && cacheable)
        sql_cache_put_with(sql_store_of(base), key, out, sizeof(*out), out->wrapped_key,
                           out->wrapped_key_len);
    if (rc != CF_OK)
        cf_project_release(out);
    return rc;
}

static struct sql_stmt ST_PROJECT_LIST =
    SQL_STMT("SELECT " PROJECT_COLS " FROM projects ORDER BY created_at, slug");

enum cf_rc cf_store_project_list(struct cf_store *base, struct cf_project_list *out,
                                 struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_project), .read = read_project};
    enum cf_rc rc = sql_collect_all(base, &ST_PROJECT_LIST, NO_ARGS, &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_project_list_release(out);
    return rc;
}

static struct sql_stmt ST_PROJECT_DELETE = SQL_STMT("DELETE FROM projects WHERE id = ?1");

enum cf_rc cf_store_project_delete(struct cf_store *base, const char *project_id,
                                   struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_PROJECT_DELETE, ARGS(A_TEXT(project_id)), &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "project '%s' not found", project_id);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_ENV_NEXT_POSITION =
    SQL_STMT("SELECT COALESCE(MAX(position), 0) + 1 FROM environments WHERE project_id = ?1");

static struct sql_stmt ST_ENV_LIST =
    SQL_STMT("SELECT " ENV_COLS " FROM environments WHERE project_id = ?1"
             " ORDER BY position, created_at, id");

static struct sql_stmt ST_ENV_SET_POSITION =
    SQL_STMT("UPDATE environments SET position = ?2 WHERE id = ?1");

enum cf_rc cf_store_env_create(struct cf_store *base, const struct cf_env *env, struct cf_err *err)
{
    struct db_conn *c;
    int64_t next = 1;
    bool found;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_row(c, &ST_ENV_NEXT_POSITION, ARGS(A_TEXT(env->project_id)), sql_read_int64, &next,
                     &found, err);
    if (rc == CF_OK)
        rc = env_insert(c, env, env->project_id, next, cf_now_ms(), err);
    if (rc == CF_OK && env->position > 0 && env->position < next)
        rc = renumber(c, &ST_ENV_LIST, &ST_ENV_SET_POSITION, env->project_id, env->id,
                      env->position, err);
    return sql_tx_end(c, rc, err);
}

enum cf_rc cf_store_env_list(struct cf_store *base, const char *project_id, struct cf_env_list *out,
                             struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_env), .read = read_env};
    enum cf_rc rc = sql_collect_all(base, &ST_ENV_LIST, ARGS(A_TEXT(project_id)), &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_env_list_release(out);
    return rc;
}

static struct sql_stmt ST_ENV_BY_ID =
    SQL_STMT("SELECT " ENV_COLS " FROM environments WHERE project_id = ?1 AND id = ?2");

static struct sql_stmt ST_ENV_BY_SLUG =
    SQL_STMT("SELECT " ENV_COLS " FROM environments WHERE project_id = ?1 AND slug = ?2");

enum cf_rc cf_store_env_get(struct cf_store *base, const char *project_id, const char *id_or_slug,
                            struct cf_env *out, struct cf_err *err)
{
    char id_buf[CF_UUID_LEN];
    const char *id = as_id(id_or_slug, id_buf);

    char key[SQL_CACHE_KEY_MAX];
    bool cacheable = sql_cache_key(key, sizeof(key), 'e', project_id, id_or_slug);

    memset(out, 0, sizeof(*out));
    if (cacheable && sql_cache_get_fixed(sql_store_of(base), key, out, sizeof(*out)))
        return CF_OK;
    enum cf_rc rc = sql_get_one(base, id ? &ST_ENV_BY_ID : &ST_ENV_BY_SLUG,
                                ARGS(A_TEXT(project_id), A_TEXT(id ? id : id_or_slug)), read_env,
                                out, "environment", id_or_slug, err);
    if (rc == CF_OK && cacheable)
        sql_cache_put(sql_store_of(base), key, out, sizeof(*out));
    return rc;
}

static struct sql_stmt ST_ENV_BY_ID_ANY_PROJECT =
    SQL_STMT("SELECT " ENV_COLS " FROM environments WHERE id = ?1");

static struct sql_stmt ST_ENV_UPDATE =
    SQL_STMT("UPDATE environments SET slug = COALESCE(NULLIF(?2, ''), slug),"
             " name = COALESCE(NULLIF(?3, ''), name), updated_at = ?4 WHERE id = ?1");

enum cf_rc cf_store_env_update(struct cf_store *base, const struct cf_env *env, struct cf_err *err)
{
    struct cf_env current;
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_required(c, &ST_ENV_BY_ID_ANY_PROJECT, ARGS(A_TEXT(env->id)), read_env, &current,
                          "environment with id", env->id, err);
    if (rc != CF_OK)
        goto out;
    rc = sql_exec(c, &ST_ENV_UPDATE,
                  ARGS(A_TEXT(env->id), A_TEXT(env->slug), A_TEXT(env->name),
                       A_INT(sql_time_or_now(env->updated_at, cf_now_ms()))),
                  NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "environment '%s' already exists", env->slug);
    if (rc == CF_OK && env->position > 0 && env->position != current.position)
        rc = renumber(c, &ST_ENV_LIST, &ST_ENV_SET_POSITION, current.project_id, env->id,
                      env->position, err);
out:
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_ENV_DELETE = SQL_STMT("DELETE FROM environments WHERE id = ?1");

static struct sql_stmt ST_ENV_IMPORTING_FOLDERS =
    SQL_STMT("SELECT DISTINCT folder_id FROM secret_imports WHERE import_env_id = ?1");

static struct sql_stmt ST_IMPORT_LIST =
    SQL_STMT("SELECT " IMPORT_COLS " FROM secret_imports WHERE folder_id = ?1"
             " ORDER BY position, created_at, id");

static struct sql_stmt ST_IMPORT_SET_POSITION =
    SQL_STMT("UPDATE secret_imports SET position = ?2 WHERE id = ?1");

enum cf_rc cf_store_env_delete(struct cf_store *base, const char *env_id, struct cf_err *err)
{
    struct sql_collector importers = {.size = CF_UUID_LEN, .read = sql_read_id};
    struct cf_env current;
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_required(c, &ST_ENV_BY_ID_ANY_PROJECT, ARGS(A_TEXT(env_id)), read_env, &current,
                          "environment with id", env_id, err);
    /* Imports of this environment go with it: remember whose, to keep their positions dense. */
    if (rc == CF_OK)
        rc = sql_run(c, &ST_ENV_IMPORTING_FOLDERS, ARGS(A_TEXT(env_id)), sql_collect, &importers,
                     NULL, err);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_ENV_DELETE, ARGS(A_TEXT(env_id)), NULL, err);
    if (rc == CF_OK)
        rc = renumber(c, &ST_ENV_LIST, &ST_ENV_SET_POSITION, current.project_id, NULL, 0, err);
    for (size_t i = 0; i < importers.n && rc == CF_OK; i++)
        rc = renumber(c, &ST_IMPORT_LIST, &ST_IMPORT_SET_POSITION,
                      (const char *)importers.items + i * CF_UUID_LEN, NULL, 0, err);
    free(importers.items);
    return sql_tx_end(c, rc, err);
}

enum cf_rc cf_store_folder_create(struct cf_store *base, const struct cf_folder *folder,
                                  struct cf_err *err)
{
    struct cf_folder parent;
    char path[CF_PATH_MAX + 1];
    struct db_conn *c;
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    rc = sql_require_uuid(folder->id, "folder", err);
    if (rc != CF_OK)
        return rc;
    if (!folder->parent_id[0])
        return cf_err_set(err, CF_EINVAL,
                          "folder '%s' has no parent (root folders come with their environment)",
                          folder->path);
    if (!folder->name[0] || strchr(folder->name, '/'))
        return cf_err_set(err, CF_EINVAL, "folder name '%s' is empty or contains '/'",
                          folder->name);
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_required(c, &ST_FOLDER_BY_ID, ARGS(A_TEXT(folder->parent_id)), sql_read_folder,
                          &parent, "parent folder with id", folder->parent_id, err);
    if (rc != CF_OK)
        goto out;
    if (folder->env_id[0] && strcmp(folder->env_id, parent.env_id) != 0) {
        rc =
            cf_err_set(err, CF_EINVAL, "parent folder '%s' is in another environment", parent.path);
        goto out;
    }
    /* The path is derived, not trusted: subtree queries depend on it matching the parent chain. */
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", strcmp(parent.path, "/") ? parent.path : "",
                         folder->name) >= sizeof(path)) {
        rc = cf_err_set(err, CF_EINVAL, "folder path is longer than %d bytes", CF_PATH_MAX);
        goto out;
    }
    if (folder->path[0] && strcmp(folder->path, path) != 0) {
        rc = cf_err_set(err, CF_EINVAL, "folder path '%s' does not match its parent '%s'",
                        folder->path, parent.path);
        goto out;
    }
    rc = sql_exec(c, &ST_FOLDER_INSERT,
                  ARGS(A_TEXT(folder->id), A_TEXT(parent.env_id), A_TEXT(parent.id),
                       A_TEXT(folder->name), A_TEXT(path), A_TEXT(folder->description),
                       A_INT(sql_time_or_now(folder->created_at, now)),
                       A_INT(sql_time_or_now(folder->updated_at, now))),
                  NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "folder '%s' already exists", path);
out:
    return sql_tx_end(c, rc, err);
}

enum cf_rc cf_store_folder_get(struct cf_store *base, const char *env_id, const char *path,
                               struct cf_folder *out, struct cf_err *err)
{
    char key[SQL_CACHE_KEY_MAX];
    bool cacheable = sql_cache_key(key, sizeof(key), 'f', env_id, path);

    memset(out, 0, sizeof(*out));
    if (cacheable && sql_cache_get_fixed(sql_store_of(base), key, out, sizeof(*out)))
        return CF_OK;
    enum cf_rc rc = sql_get_one(base, &ST_FOLDER_BY_PATH, ARGS(A_TEXT(env_id), A_TEXT(path)),
                                sql_read_folder, out, "folder", path, err);
    if (rc == CF_OK && cacheable)
        sql_cache_put(sql_store_of(base), key, out, sizeof(*out));
    return rc;
}

static struct sql_stmt ST_FOLDER_CHILDREN =
    SQL_STMT("SELECT c.id, c.env_id, c.parent_id, c.name, c.path, c.description, c.created_at,"
             " c.updated_at FROM folders p JOIN folders c ON c.parent_id = p.id"
             " WHERE p.env_id = ?1 AND p.path = ?2 ORDER BY c.path");

static struct sql_stmt ST_FOLDER_DESCENDANTS =
    SQL_STMT("SELECT " FOLDER_COLS " FROM folders"
             " WHERE env_id = ?1 AND path > ?2 AND path < ?3 ORDER BY path");

enum cf_rc cf_store_folder_list(struct cf_store *base, const char *env_id, const char *path,
                                bool recursive, struct cf_folder_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_folder), .read = sql_read_folder};
    struct subtree bounds;
    struct db_conn *c;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = sql_subtree_bounds(path, &bounds, err);
    if (rc == CF_OK)
        rc = sql_conn_get(base, &c, err);
    if (rc != CF_OK)
        return rc;
    if (recursive)
        rc = sql_run(c, &ST_FOLDER_DESCENDANTS,
                     ARGS(A_TEXT(env_id), A_TEXT(bounds.lo), A_TEXT(bounds.hi)), sql_collect, &col,
                     NULL, err);
    else
        rc = sql_run(c, &ST_FOLDER_CHILDREN, ARGS(A_TEXT(env_id), A_TEXT(path)), sql_collect, &col,
                     NULL, err);
    if (rc == CF_OK && col.n == 0) /* nothing below: is there a folder at all? */
        rc = sql_folder_must_exist(c, env_id, path, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_folder_list_release(out);
    return rc;
}

static struct sql_stmt ST_FOLDER_DELETE_SUBTREE =
    SQL_STMT("DELETE FROM folders WHERE env_id = ?1 AND " SUBTREE("path"));

enum cf_rc cf_store_folder_delete(struct cf_store *base, const char *folder_id, struct cf_err *err)
{
    struct cf_folder folder;
    struct subtree bounds;
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_required(c, &ST_FOLDER_BY_ID, ARGS(A_TEXT(folder_id)), sql_read_folder, &folder,
                          "folder with id", folder_id, err);
    if (rc == CF_OK && !folder.parent_id[0])
        rc = cf_err_set(err, CF_EINVAL, "the root folder of an environment cannot be deleted");
    if (rc == CF_OK)
        rc = sql_subtree_bounds(folder.path, &bounds, err);
    /* The whole subtree in one statement; secrets, versions and imports follow by cascade. */
    if (rc == CF_OK)
        rc = sql_exec(
            c, &ST_FOLDER_DELETE_SUBTREE,
            ARGS(A_TEXT(folder.env_id), A_TEXT(folder.path), A_TEXT(bounds.lo), A_TEXT(bounds.hi)),
            NULL, err);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_IMPORT_INSERT =
    SQL_STMT("INSERT INTO secret_imports (" IMPORT_COLS ") VALUES (?1, ?2, ?3, ?4,"
             " (SELECT COALESCE(MAX(position), 0) + 1 FROM secret_imports WHERE "
             "folder_id = ?2), ?5, ?6)");

enum cf_rc cf_store_import_create(struct cf_store *base, const struct cf_import *import,
                                  struct cf_err *err)
{
    struct cf_folder folder;
    struct cf_env folder_env, import_env;
    struct db_conn *c;
    int64_t now = cf_now_ms();
    bool found;
    enum cf_rc rc;

    rc = sql_require_uuid(import->id, "import", err);
    if (rc != CF_OK)
        return rc;
    if (import->import_path[0] != '/')
        return cf_err_set(err, CF_EINVAL, "import path '%s' does not start with '/'",
                          import->import_path);
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_required(c, &ST_FOLDER_BY_ID, ARGS(A_TEXT(import->folder_id)), sql_read_folder,
                          &folder, "folder with id", import->folder_id, err);
    if (rc == CF_OK)
        rc = sql_get_required(c, &ST_ENV_BY_ID_ANY_PROJECT, ARGS(A_TEXT(import->import_env_id)),
                              read_env, &import_env, "environment with id", import->import_env_id,
                              err);
    if (rc == CF_OK)
        rc = sql_get_row(c, &ST_ENV_BY_ID_ANY_PROJECT, ARGS(A_TEXT(folder.env_id)), read_env,
                         &folder_env, &found, err);
    if (rc == CF_OK && !found) /* cannot happen: folders.env_id is a foreign key */
        rc = cf_err_set(err, CF_ESTORE, "folder '%s' has no environment", folder.path);
    if (rc == CF_OK && strcmp(folder_env.project_id, import_env.project_id) != 0)
        rc = cf_err_set(err, CF_EINVAL, "environment '%s' belongs to another project",
                        import_env.slug);
    if (rc != CF_OK)
        goto out;
    rc = sql_exec(c, &ST_IMPORT_INSERT,
                  ARGS(A_TEXT(import->id), A_TEXT(import->folder_id), A_TEXT(import->import_env_id),
                       A_TEXT(import->import_path), A_INT(sql_time_or_now(import->created_at, now)),
                       A_INT(sql_time_or_now(import->updated_at, now))),
                  NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "folder '%s' already imports '%s' from environment '%s'",
                        folder.path, import->import_path, import_env.slug);
out:
    return sql_tx_end(c, rc, err);
}

enum cf_rc cf_store_import_list(struct cf_store *base, const char *folder_id,
                                struct cf_import_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_import), .read = read_import};
    struct cf_folder folder;
    struct db_conn *c;
    bool found = true;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = sql_conn_get(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_run(c, &ST_IMPORT_LIST, ARGS(A_TEXT(folder_id)), sql_collect, &col, NULL, err);
    if (rc == CF_OK && col.n == 0)
        rc = sql_get_row(c, &ST_FOLDER_BY_ID, ARGS(A_TEXT(folder_id)), sql_read_folder, &folder,
                         &found, err);
    if (rc == CF_OK && !found)
        rc = cf_err_set(err, CF_ENOTFOUND, "folder with id '%s' not found", folder_id);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_import_list_release(out);
    return rc;
}

static struct sql_stmt ST_IMPORT_BY_ID =
    SQL_STMT("SELECT " IMPORT_COLS " FROM secret_imports WHERE id = ?1");

enum cf_rc cf_store_import_get(struct cf_store *base, const char *import_id, struct cf_import *out,
                               struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_IMPORT_BY_ID, ARGS(A_TEXT(import_id)), read_import, out,
                       "import with id", import_id, err);
}

static struct sql_stmt ST_IMPORT_DELETE = SQL_STMT("DELETE FROM secret_imports WHERE id = ?1");

enum cf_rc cf_store_import_delete(struct cf_store *base, const char *import_id, struct cf_err *err)
{
    struct cf_import import;
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_required(c, &ST_IMPORT_BY_ID, ARGS(A_TEXT(import_id)), read_import, &import,
                          "import with id", import_id, err);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_IMPORT_DELETE, ARGS(A_TEXT(import_id)), NULL, err);
    if (rc == CF_OK)
        rc = renumber(c, &ST_IMPORT_LIST, &ST_IMPORT_SET_POSITION, import.folder_id, NULL, 0, err);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_TAG_INSERT =
    SQL_STMT("INSERT INTO tags (" TAG_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");

enum cf_rc cf_store_tag_create(struct cf_store *base, const struct cf_tag *tag, struct cf_err *err)
{
    struct db_conn *c;
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    rc = sql_require_uuid(tag->id, "tag", err);
    if (rc != CF_OK)
        return rc;
    if (!tag->slug[0])
        return cf_err_set(err, CF_EINVAL, "tag slug is empty");
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_TAG_INSERT,
                  ARGS(A_TEXT(tag->id), A_TEXT(tag->project_id), A_TEXT(tag->slug),
                       A_TEXT(tag->name[0] ? tag->name : tag->slug), A_TEXT(tag->color),
                       A_INT(sql_time_or_now(tag->created_at, now)),
                       A_INT(sql_time_or_now(tag->updated_at, now))),
                  NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "tag '%s' already exists", tag->slug);
    else if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "project '%s' not found", tag->project_id);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_TAG_BY_ID =
    SQL_STMT("SELECT " TAG_COLS " FROM tags WHERE project_id = ?1 AND id = ?2");

static struct sql_stmt ST_TAG_BY_SLUG =
    SQL_STMT("SELECT " TAG_COLS " FROM tags WHERE project_id = ?1 AND slug = ?2");

enum cf_rc cf_store_tag_get(struct cf_store *base, const char *project_id, const char *id_or_slug,
                            struct cf_tag *out, struct cf_err *err)
{
    char id_buf[CF_UUID_LEN];
    const char *id = as_id(id_or_slug, id_buf);

    memset(out, 0, sizeof(*out));
    return sql_get_one(base, id ? &ST_TAG_BY_ID : &ST_TAG_BY_SLUG,
                       ARGS(A_TEXT(project_id), A_TEXT(id ? id : id_or_slug)), read_tag, out, "tag",
                       id_or_slug, err);
}

static struct sql_stmt ST_TAG_LIST =
    SQL_STMT("SELECT " TAG_COLS " FROM tags WHERE project_id = ?1 ORDER BY slug");

enum cf_rc cf_store_tag_list(struct cf_store *base, const char *project_id, struct cf_tag_list *out,
                             struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_tag), .read = read_tag};
    enum cf_rc rc = sql_collect_all(base, &ST_TAG_LIST, ARGS(A_TEXT(project_id)), &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_tag_list_release(out);
    return rc;
}
