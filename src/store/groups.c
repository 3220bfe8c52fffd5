/* Groups of users in the store (store.h): the groups, their members, as SQL run through sqlrun.h.
 * Their project memberships are in memberships.c. */
#include <stdlib.h>
#include <string.h>

#include "store/shared.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define GROUP_COLS "id, name, external_id, created_at, updated_at"

static enum cf_rc read_group(const struct db_row *s, void *item)
{
    struct cf_group *g = item;
    db_row_text(s, 0, g->id, sizeof(g->id));
    db_row_text(s, 1, g->name, sizeof(g->name));
    db_row_text(s, 2, g->external_id, sizeof(g->external_id));
    g->created_at = db_row_int64(s, 3);
    g->updated_at = db_row_int64(s, 4);
    return db_row_status(s);
}

/* CF_OK when every text field of group is terminated and the required ones are set. */
static enum cf_rc group_check(const struct cf_group *group, struct cf_err *err)
{
    enum cf_rc rc = sql_require_uuid(group->id, "group", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(group->name, sizeof(group->name), "name", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(group->external_id, sizeof(group->external_id), "external id",
                                    err);
    if (rc == CF_OK && !group->name[0])
        rc = cf_err_set(err, CF_EINVAL, "group name is empty");
    return rc;
}

static enum cf_rc group_exists(const struct cf_group *group, struct cf_err *err)
{
    return cf_err_set(err, CF_EEXIST,
                      group->external_id[0] ? "group '%s' (or its external id) already exists"
                                            : "group '%s' already exists",
                      group->name);
}

static struct sql_stmt ST_GROUP_INSERT =
    SQL_STMT("INSERT INTO user_groups (" GROUP_COLS ") VALUES (?1, ?2, ?3, ?4, ?5)");

enum cf_rc cf_store_group_create(struct cf_store *base, const struct cf_group *group,
                                 struct cf_err *err)
{
    int64_t now = cf_now_ms();
    enum cf_rc rc = group_check(group, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec_in_tx(base, &ST_GROUP_INSERT,
                        ARGS(A_TEXT(group->id), A_TEXT(group->name), A_NULLABLE(group->external_id),
                             A_INT(sql_time_or_now(group->created_at, now)),
                             A_INT(sql_time_or_now(group->updated_at, now))),
                        NULL, err);
    return rc == CF_EEXIST ? group_exists(group, err) : rc;
}

static struct sql_stmt ST_GROUP_BY_ID =
    SQL_STMT("SELECT " GROUP_COLS " FROM user_groups WHERE id = ?1");
static struct sql_stmt ST_GROUP_BY_NAME =
    SQL_STMT("SELECT " GROUP_COLS " FROM user_groups WHERE name = ?1");
static struct sql_stmt ST_GROUP_BY_EXTERNAL =
    SQL_STMT("SELECT " GROUP_COLS " FROM user_groups WHERE external_id = ?1");

enum cf_rc cf_store_group_get(struct cf_store *base, const char *id, struct cf_group *out,
                              struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_GROUP_BY_ID, ARGS(A_TEXT(id)), read_group, out, "group", id, err);
}

enum cf_rc cf_store_group_get_by_name(struct cf_store *base, const char *name, struct cf_group *out,
                                      struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_GROUP_BY_NAME, ARGS(A_TEXT(name)), read_group, out, "group", name,
                       err);
}

enum cf_rc cf_store_group_get_by_external_id(struct cf_store *base, const char *external_id,
                                             struct cf_group *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_GROUP_BY_EXTERNAL, ARGS(A_TEXT(external_id)), read_group, out,
                       "group with external id", external_id, err);
}

static enum cf_rc collect_groups(struct cf_store *base, struct sql_stmt *stmt,
                                 const struct sq_arg *args, size_t n_args,
                                 struct cf_group_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_group), .read = read_group};
    enum cf_rc rc = sql_collect_all(base, stmt, args, n_args, &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_group_list_release(out);
    return rc;
}

static struct sql_stmt ST_GROUP_LIST =
    SQL_STMT("SELECT " GROUP_COLS " FROM user_groups ORDER BY name");

enum cf_rc cf_store_group_list(struct cf_store *base, struct cf_group_list *out, struct cf_err *err)
{
    return collect_groups(base, &ST_GROUP_LIST, NO_ARGS, out, err);
}

static struct sql_stmt ST_GROUP_UPDATE =
    SQL_STMT("UPDATE user_groups SET name = ?2, external_id = ?3, updated_at = ?4 WHERE id = ?1");

enum cf_rc cf_store_group_update(struct cf_store *base, const struct cf_group *group,
                                 struct cf_err *err)
{
    int64_t changes = 0;
    enum cf_rc rc = group_check(group, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec_in_tx(base, &ST_GROUP_UPDATE,
                        ARGS(A_TEXT(group->id), A_TEXT(group->name), A_NULLABLE(group->external_id),
                             A_INT(cf_now_ms())),
                        &changes, err);
    if (rc == CF_EEXIST)
        return group_exists(group, err);
    if (rc == CF_OK && changes == 0)
        return cf_err_set(err, CF_ENOTFOUND, "group '%s' not found", group->id);
    return rc;
}

static struct sql_stmt ST_GROUP_DELETE = SQL_STMT("DELETE FROM user_groups WHERE id = ?1");

enum cf_rc cf_store_group_delete(struct cf_store *base, const char *id, struct cf_err *err)
{
    int64_t changes = 0;
    enum cf_rc rc = sql_exec_in_tx(base, &ST_GROUP_DELETE, ARGS(A_TEXT(id)), &changes, err);
    if (rc == CF_OK && changes == 0)
        return cf_err_set(err, CF_ENOTFOUND, "group '%s' not found", id);
    return rc;
}

static struct sql_stmt ST_MEMBER_ADD =
    SQL_STMT("INSERT INTO user_group_members (group_id, user_id, created_at) VALUES (?1, ?2, ?3)"
             " ON CONFLICT (group_id, user_id) DO NOTHING");
static struct sql_stmt ST_GROUP_EXISTS = SQL_STMT("SELECT id FROM user_groups WHERE id = ?1");

static enum cf_rc read_nothing(const struct db_row *s, void *item)
{
    (void)s;
    (void)item;
    return CF_OK;
}

enum cf_rc cf_store_group_member_add(struct cf_store *base, const char *group_id,
                                     const char *user_id, bool *added, struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    bool found = false;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_MEMBER_ADD, ARGS(A_TEXT(group_id), A_TEXT(user_id), A_INT(cf_now_ms())),
                  &changes, err);
    if (rc == CF_ENOTFOUND) { /* a foreign key: which of the two is missing? */
        rc = sql_get_row(c, &ST_GROUP_EXISTS, ARGS(A_TEXT(group_id)), read_nothing, NULL, &found,
                         err);
        if (rc == CF_OK)
            rc = found ? cf_err_set(err, CF_ENOTFOUND, "user '%s' not found", user_id)
                       : cf_err_set(err, CF_ENOTFOUND, "group '%s' not found", group_id);
    }
    if (added)
        *added = rc == CF_OK && changes > 0;
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_MEMBER_REMOVE =
    SQL_STMT("DELETE FROM user_group_members WHERE group_id = ?1 AND user_id = ?2");

enum cf_rc cf_store_group_member_remove(struct cf_store *base, const char *group_id,
                                        const char *user_id, struct cf_err *err)
{
    int64_t changes = 0;
    enum cf_rc rc = sql_exec_in_tx(base, &ST_MEMBER_REMOVE, ARGS(A_TEXT(group_id), A_TEXT(user_id)),
                                   &changes, err);
    if (rc == CF_OK && changes == 0)
        return cf_err_set(err, CF_ENOTFOUND, "user '%s' is not a member of group '%s'", user_id,
                          group_id);
    return rc;
}

static struct sql_stmt ST_GROUP_MEMBERS =
    SQL_STMT("SELECT u.id, u.email, u.name, u.org_role, u.status, u.password_hash, u.sso_issuer,"
             " u.sso_subject, u.created_at, u.updated_at, u.last_login_at FROM user_group_members m"
             " JOIN users u ON u.id = m.user_id WHERE m.group_id = ?1 ORDER BY u.email");

enum cf_rc cf_store_group_members(struct cf_store *base, const char *group_id,
                                  struct cf_user_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_user), .read = sql_read_user};
    enum cf_rc rc = sql_collect_all(base, &ST_GROUP_MEMBERS, ARGS(A_TEXT(group_id)), &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_user_list_release(out);
    return rc;
}

static struct sql_stmt ST_USER_GROUPS =
    SQL_STMT("SELECT g.id, g.name, g.external_id, g.created_at, g.updated_at"
             " FROM user_group_members m JOIN user_groups g ON g.id = m.group_id"
             " WHERE m.user_id = ?1 ORDER BY g.name");

enum cf_rc cf_store_user_groups(struct cf_store *base, const char *user_id,
                                struct cf_group_list *out, struct cf_err *err)
{
    return collect_groups(base, &ST_USER_GROUPS, ARGS(A_TEXT(user_id)), out, err);
}
