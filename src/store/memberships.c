/* Project memberships of identities, users and groups of users in the store (store.h): role and
 * rules, the rules encoded in a versioned binary form (rules_encode / col_rules). The three kinds
 * live in three tables of the same shape (identity_memberships, user_memberships,
 * group_memberships), run by the same code over a table of statements each (struct member_table).
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "store/shared.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

/* Membership rules live in one column, so that reading a membership is one seek: a format byte,
 * then for each rule its actions (4 bytes, big-endian), the lengths of its environment field (1
 * byte) and of its path glob (2 bytes, big-endian), then those bytes without terminators. No rules:
 * NULL. The environment field is the environment's id (RULES_FORMAT); the legacy format
 * (RULES_FORMAT_SLUG) held its slug, which a rename could move to another environment, and is
 * decoded so that cf_store_open can bind it (store.h, CF_RULE_ENV_UNRESOLVED). The decoder trusts
 * nothing: every length is checked. */
#define RULES_FORMAT_SLUG 1

#define RULES_FORMAT 2

#define RULE_HEAD 7

static enum cf_rc rules_encode(const struct cf_membership_rule *rules, size_t n, uint8_t **out,
                               size_t *out_len, struct cf_err *err)
{
    uint8_t *buf, *p;
    size_t len = 1;

    *out = NULL;
    *out_len = 0;
    if (n == 0)
        return CF_OK;
    if (!rules)
        return cf_err_set(err, CF_EINVAL, "membership has %zu rules but none given", n);
    if (n > SIZE_MAX / (RULE_HEAD + CF_UUID_LEN + CF_PATH_MAX) - 1)
        return cf_err_set(err, CF_EINVAL, "membership has too many rules");
    for (size_t i = 0; i < n; i++) {
        size_t env_len = strnlen(rules[i].env_id, sizeof(rules[i].env_id));
        size_t glob_len = strnlen(rules[i].path_glob, sizeof(rules[i].path_glob));
        if (env_len >= CF_UUID_LEN || glob_len > CF_PATH_MAX)
            return cf_err_set(err, CF_EINVAL, "membership rule %zu has an unterminated field", i);
        if (!rules[i].env_id[0] && rules[i].env_slug[0])
            return cf_err_set(err, CF_EINVAL,
                              "membership rule %zu names environment '%.64s' without its id", i,
                              rules[i].env_slug);
        len += RULE_HEAD + env_len + glob_len;
    }
    buf = malloc(len);
    if (!buf)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    p = buf;
    *p++ = RULES_FORMAT;
    for (size_t i = 0; i < n; i++) {
        size_t env_len = strlen(rules[i].env_id);
        size_t glob_len = strlen(rules[i].path_glob);
        uint32_t actions = rules[i].actions;
        *p++ = (uint8_t)(actions >> 24);
        *p++ = (uint8_t)(actions >> 16);
        *p++ = (uint8_t)(actions >> 8);
        *p++ = (uint8_t)actions;
        *p++ = (uint8_t)env_len;
        *p++ = (uint8_t)(glob_len >> 8);
        *p++ = (uint8_t)glob_len;
        memcpy(p, rules[i].env_id, env_len);
        p += env_len;
        memcpy(p, rules[i].path_glob, glob_len);
        p += glob_len;
    }
    *out = buf;
    *out_len = len;
    return CF_OK;
}

/* Decodes column i into m->rules and m->n_rules: CF_ENOMEM, or CF_ESTORE when it is malformed. */
static enum cf_rc col_rules(const struct db_row *s, int i, struct cf_membership *m)
{
    size_t len;
    const uint8_t *blob = db_row_bytes(s, i, &len);
    size_t n = 0, at, env_max;

    m->rules = NULL;
    m->n_rules = 0;
    if (!blob)
        return CF_OK;
    if (len < 1 || (blob[0] != RULES_FORMAT && blob[0] != RULES_FORMAT_SLUG))
        return CF_ESTORE;
    env_max = blob[0] == RULES_FORMAT ? CF_UUID_LEN - 1 : CF_SLUG_MAX;
    /* First pass: validate and count. */
    for (at = 1; at < len; n++) {
        if (len - at < RULE_HEAD)
            return CF_ESTORE;
        size_t env_len = blob[at + 4];
        size_t glob_len = (size_t)blob[at + 5] << 8 | blob[at + 6];
        if (env_len > env_max || glob_len > CF_PATH_MAX ||
            len - at - RULE_HEAD < env_len + glob_len)
            return CF_ESTORE;
        at += RULE_HEAD + env_len + glob_len;
    }
    if (n == 0)
        return CF_ESTORE; /* no rules are stored as NULL */
    m->rules = calloc(n, sizeof(*m->rules));
    if (!m->rules)
        return CF_ENOMEM;
    m->n_rules = n;
    at = 1;
    for (size_t r = 0; r < n; r++) {
        struct cf_membership_rule *rule = &m->rules[r];
        const uint8_t *h = blob + at;
        size_t env_len = h[4];
        size_t glob_len = (size_t)h[5] << 8 | h[6];
        rule->actions = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        if (blob[0] == RULES_FORMAT) {
            memcpy(rule->env_id, h + RULE_HEAD, env_len);
            rule->env_id[env_len] = '\0';
        } else if (env_len > 0) {
            /* A slug: it binds nothing until cf_store_open has looked it up. */
            memcpy(rule->env_slug, h + RULE_HEAD, env_len);
            rule->env_slug[env_len] = '\0';
            cf_strlcpy(rule->env_id, CF_RULE_ENV_UNRESOLVED, sizeof(rule->env_id));
        }
        memcpy(rule->path_glob, h + RULE_HEAD + env_len, glob_len);
        rule->path_glob[glob_len] = '\0';
        at += RULE_HEAD + env_len + glob_len;
    }
    return CF_OK;
}

static enum cf_rc read_membership(const struct db_row *s, void *item)
{
    struct cf_membership *m = item;
    db_row_text(s, 0, m->id, sizeof(m->id));
    db_row_text(s, 1, m->identity_id, sizeof(m->identity_id));
    db_row_text(s, 2, m->project_id, sizeof(m->project_id));
    db_row_text(s, 3, m->role, sizeof(m->role));
    m->created_at = db_row_int64(s, 5);
    m->updated_at = db_row_int64(s, 6);
    enum cf_rc rc = db_row_status(s);
    return rc == CF_OK ? col_rules(s, 4, m) : rc;
}

/* The statements of one membership table, and what its members are called in messages. */
struct member_table {
    struct sql_stmt *upsert, *get, *by_member, *by_project, *del, *member_by_id;
    char cache_kind;    /* sql_cache_key's kind of its entries */
    const char *member; /* "identity", "user" */
};

#define MEMBER_STMTS(table, member_col)                                                            \
    SQL_STMT("INSERT INTO " table " (id, " member_col ", project_id, role, rules, created_at,"     \
             " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"                                    \
             " ON CONFLICT (" member_col ", project_id) DO UPDATE SET role = excluded.role,"       \
             " rules = excluded.rules, updated_at = excluded.updated_at"),                         \
        SQL_STMT("SELECT id, " member_col ", project_id, role, rules, created_at, updated_at"      \
                 " FROM " table " WHERE " member_col " = ?1 AND project_id = ?2"),                 \
        SQL_STMT("SELECT id, " member_col ", project_id, role, rules, created_at, updated_at"      \
                 " FROM " table " WHERE " member_col " = ?1 ORDER BY created_at, project_id"),     \
        SQL_STMT("SELECT id, " member_col ", project_id, role, rules, created_at, updated_at"      \
                 " FROM " table " WHERE project_id = ?1 ORDER BY created_at, " member_col),        \
        SQL_STMT("DELETE FROM " table " WHERE " member_col " = ?1 AND project_id = ?2")

static struct sql_stmt identity_stmts[] = {MEMBER_STMTS("identity_memberships", "identity_id")};
static struct sql_stmt user_stmts[] = {MEMBER_STMTS("user_memberships", "user_id")};
static struct sql_stmt group_stmts[] = {MEMBER_STMTS("group_memberships", "group_id")};
static struct sql_stmt ST_USER_EXISTS = SQL_STMT("SELECT id FROM users WHERE id = ?1");
static struct sql_stmt ST_GROUP_EXISTS = SQL_STMT("SELECT id FROM user_groups WHERE id = ?1");

static const struct member_table identity_table = {&identity_stmts[0],
                                                   &identity_stmts[1],
                                                   &identity_stmts[2],
                                                   &identity_stmts[3],
                                                   &identity_stmts[4],
                                                   &ST_IDENTITY_BY_ID,
                                                   'm',
                                                   "identity"};
static const struct member_table user_table = {&user_stmts[0],
                                               &user_stmts[1],
                                               &user_stmts[2],
                                               &user_stmts[3],
                                               &user_stmts[4],
                                               &ST_USER_EXISTS,
                                               'U',
                                               "user"};
static const struct member_table group_table = {&group_stmts[0],
                                                &group_stmts[1],
                                                &group_stmts[2],
                                                &group_stmts[3],
                                                &group_stmts[4],
                                                &ST_GROUP_EXISTS,
                                                'G',
                                                "group"};

static enum cf_rc read_exists(const struct db_row *s, void *item)
{
    (void)s;
    (void)item;
    return CF_OK;
}

static enum cf_rc membership_put(struct cf_store *base, const struct member_table *t,
                                 const struct cf_membership *membership, struct cf_err *err)
{
    uint8_t *rules = NULL;
    size_t rules_len = 0;
    struct db_conn *c;
    int64_t now = cf_now_ms();
    bool found = false;
    enum cf_rc rc;

    rc = sql_require_uuid(membership->id, "membership", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(membership->role, sizeof(membership->role), "role", err);
    if (rc == CF_OK && !membership->role[0])
        rc = cf_err_set(err, CF_EINVAL, "membership has no role");
    if (rc == CF_OK)
        rc = rules_encode(membership->rules, membership->n_rules, &rules, &rules_len, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        goto out;
    /* One statement: a new membership, or the existing one (keeping its id and creation time)
     * with its role and rules replaced. */
    rc = sql_exec(c, t->upsert,
                  ARGS(A_TEXT(membership->id), A_TEXT(membership->identity_id),
                       A_TEXT(membership->project_id), A_TEXT(membership->role),
                       A_NULLABLE_BLOB(rules, rules_len),
                       A_INT(sql_time_or_now(membership->created_at, now)),
                       A_INT(sql_time_or_now(membership->updated_at, now))),
                  NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "membership with id '%s' already exists", membership->id);
    else if (rc == CF_ENOTFOUND) {
        /* Which of the two is missing? */
        struct cf_identity identity;
        rc = sql_get_row(c, t->member_by_id, ARGS(A_TEXT(membership->identity_id)),
                         t == &identity_table ? sql_read_identity : read_exists, &identity, &found,
                         err);
        if (rc == CF_OK && !found)
            rc = cf_err_set(err, CF_ENOTFOUND, "%s with id '%s' not found", t->member,
                            membership->identity_id);
        else if (rc == CF_OK)
            rc = cf_err_set(err, CF_ENOTFOUND, "project '%s' not found", membership->project_id);
    }
    rc = sql_tx_end(c, rc, err);
out:
    free(rules);
    return rc;
}

/* On every authorization check of a member: one seek in the membership table's primary key. */
static enum cf_rc membership_get(struct cf_store *base, const struct member_table *t,
                                 const char *member_id, const char *project_id,
                                 struct cf_membership *out, struct cf_err *err)
{
    struct db_conn *c;
    bool found = false;
    enum cf_rc rc;

    char key[SQL_CACHE_KEY_MAX];
    bool cacheable = sql_cache_key(key, sizeof(key), t->cache_kind, member_id, project_id);
    void *rules;
    size_t rules_len;

    memset(out, 0, sizeof(*out));
    if (cacheable &&
        sql_cache_get_with(sql_store_of(base), key, out, sizeof(*out), &rules, &rules_len)) {
        out->rules = rules;
        out->n_rules = rules_len / sizeof(*out->rules);
        if (out->n_rules * sizeof(*out->rules) == rules_len)
            return CF_OK;
        cf_membership_release(out); /* not an entry this code stored: read the database */
    }
    rc = sql_conn_get(base, &c, err);
    if (rc == CF_OK)
        rc = sql_get_row(c, t->get, ARGS(A_TEXT(member_id), A_TEXT(project_id)), read_membership,
                         out, &found, err);
    if (rc == CF_OK && found && cacheable)
        sql_cache_put_with(sql_store_of(base), key, out, sizeof(*out), out->rules,
                           out->n_rules * sizeof(*out->rules));
    if (rc == CF_OK && !found)
        rc = cf_err_set(err, CF_ENOTFOUND, "%s '%s' is not a member of project '%s'", t->member,
                        member_id, project_id);
    if (rc != CF_OK)
        cf_membership_release(out);
    return rc;
}

static enum cf_rc membership_list(struct cf_store *base, const struct member_table *t,
                                  const char *member_id, const char *project_id,
                                  struct cf_membership_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_membership), .read = read_membership};
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    if (member_id && project_id) /* at most the one membership */
        rc = sql_collect_all(base, t->get, ARGS(A_TEXT(member_id), A_TEXT(project_id)), &col, err);
    else if (member_id)
        rc = sql_collect_all(base, t->by_member, ARGS(A_TEXT(member_id)), &col, err);
    else if (project_id)
        rc = sql_collect_all(base, t->by_project, ARGS(A_TEXT(project_id)), &col, err);
    else
        return cf_err_set(err, CF_EINVAL, "list memberships of a %s or of a project", t->member);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_membership_list_release(out);
    return rc;
}

static enum cf_rc membership_delete(struct cf_store *base, const struct member_table *t,
                                    const char *member_id, const char *project_id,
                                    struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, t->del, ARGS(A_TEXT(member_id), A_TEXT(project_id)), &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "%s '%s' is not a member of project '%s'", t->member,
                        member_id, project_id);
    return sql_tx_end(c, rc, err);
}

enum cf_rc cf_store_membership_put(struct cf_store *base, const struct cf_membership *membership,
                                   struct cf_err *err)
{
    return membership_put(base, &identity_table, membership, err);
}

enum cf_rc cf_store_membership_get(struct cf_store *base, const char *identity_id,
                                   const char *project_id, struct cf_membership *out,
                                   struct cf_err *err)
{
    return membership_get(base, &identity_table, identity_id, project_id, out, err);
}

enum cf_rc cf_store_membership_list(struct cf_store *base, const char *identity_id,
                                    const char *project_id, struct cf_membership_list *out,
                                    struct cf_err *err)
{
    return membership_list(base, &identity_table, identity_id, project_id, out, err);
}

enum cf_rc cf_store_membership_delete(struct cf_store *base, const char *identity_id,
                                      const char *project_id, struct cf_err *err)
{
    return membership_delete(base, &identity_table, identity_id, project_id, err);
}

enum cf_rc cf_store_user_membership_put(struct cf_store *base,
                                        const struct cf_membership *membership, struct cf_err *err)
{
    return membership_put(base, &user_table, membership, err);
}

enum cf_rc cf_store_user_membership_get(struct cf_store *base, const char *user_id,
                                        const char *project_id, struct cf_membership *out,
                                        struct cf_err *err)
{
    return membership_get(base, &user_table, user_id, project_id, out, err);
}

enum cf_rc cf_store_user_membership_list(struct cf_store *base, const char *user_id,
                                         const char *project_id, struct cf_membership_list *out,
                                         struct cf_err *err)
{
    return membership_list(base, &user_table, user_id, project_id, out, err);
}

enum cf_rc cf_store_user_membership_delete(struct cf_store *base, const char *user_id,
                                           const char *project_id, struct cf_err *err)
{
    return membership_delete(base, &user_table, user_id, project_id, err);
}

enum cf_rc cf_store_group_membership_put(struct cf_store *base,
                                         const struct cf_membership *membership, struct cf_err *err)
{
    return membership_put(base, &group_table, membership, err);
}

enum cf_rc cf_store_group_membership_get(struct cf_store *base, const char *group_id,
                                         const char *project_id, struct cf_membership *out,
                                         struct cf_err *err)
{
    return membership_get(base, &group_table, group_id, project_id, out, err);
}

enum cf_rc cf_store_group_membership_list(struct cf_store *base, const char *group_id,
                                          const char *project_id, struct cf_membership_list *out,
                                          struct cf_err *err)
{
    return membership_list(base, &group_table, group_id, project_id, out, err);
}

enum cf_rc cf_store_group_membership_delete(struct cf_store *base, const char *group_id,
                                            const char *project_id, struct cf_err *err)
{
    return membership_delete(base, &group_table, group_id, project_id, err);
}

static struct sql_stmt ST_USER_GROUP_MEMBERSHIPS = SQL_STMT(
    "SELECT gm.id, gm.group_id, gm.project_id, gm.role, gm.rules, gm.created_at, gm.updated_at"
    " FROM user_group_members m JOIN group_memberships gm ON gm.group_id = m.group_id"
    " WHERE m.user_id = ?1 AND gm.project_id = ?2 ORDER BY gm.group_id");

/* A cached list of memberships is one entry: a count, the memberships (their rules pointers
 * meaningless), then every membership's rules in order. */
static void group_memberships_cache_put(struct cf_store *base, const char *key,
                                        const struct cf_membership_list *list)
{
    size_t n_rules = 0;
    for (size_t i = 0; i < list->n; i++)
        n_rules += list->items[i].n_rules;
    size_t len = sizeof(size_t) + list->n * sizeof(*list->items) +
                 n_rules * sizeof(struct cf_membership_rule);
    uint8_t *entry = malloc(len);
    if (!entry)
        return;
    uint8_t *p = entry;
    memcpy(p, &list->n, sizeof(size_t));
    p += sizeof(size_t);
    if (list->n > 0) /* items is NULL for an empty list */
        memcpy(p, list->items, list->n * sizeof(*list->items));
    p += list->n * sizeof(*list->items);
    for (size_t i = 0; i < list->n; i++) {
        if (list->items[i].n_rules > 0)
            memcpy(p, list->items[i].rules, list->items[i].n_rules * sizeof(*list->items[i].rules));
        p += list->items[i].n_rules * sizeof(*list->items[i].rules);
    }
    sql_cache_put(sql_store_of(base), key, entry, len);
    free(entry);
}

/* false when there is no usable entry under key (out zeroed then). */
static bool group_memberships_cache_get(struct cf_store *base, const char *key,
                                        struct cf_membership_list *out)
{
    uint8_t *entry = NULL;
    size_t len = 0, n = 0;
    bool ok = false;

    memset(out, 0, sizeof(*out));
    if (!sql_cache_get(sql_store_of(base), key, (void **)&entry, &len))
        return false;
    if (len < sizeof(size_t))
        goto out;
    memcpy(&n, entry, sizeof(size_t));
    size_t at = sizeof(size_t);
    if (n > (len - at) / sizeof(*out->items))
        goto out;
    if (n > 0) {
        out->items = calloc(n, sizeof(*out->items));
        if (!out->items)
            goto out;
        memcpy(out->items, entry + at, n * sizeof(*out->items));
        at += n * sizeof(*out->items);
    }
    out->n = n;
    for (size_t i = 0; i < n; i++) {
        struct cf_membership *m = &out->items[i];
        size_t bytes = m->n_rules * sizeof(*m->rules);
        m->rules = NULL;
        if (m->n_rules > (len - at) / sizeof(*m->rules)) {
            m->n_rules = 0;
            goto out;
        }
        if (bytes > 0) {
            m->rules = malloc(bytes);
            if (!m->rules) {
                m->n_rules = 0;
                goto out;
            }
            memcpy(m->rules, entry + at, bytes);
            at += bytes;
        }
    }
    ok = at == len;
out:
    free(entry);
    if (!ok)
        cf_membership_list_release(out);
    return ok;
}

enum cf_rc cf_store_user_group_memberships(struct cf_store *base, const char *user_id,
                                           const char *project_id, struct cf_membership_list *out,
                                           struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_membership), .read = read_membership};
    char key[SQL_CACHE_KEY_MAX];
    bool cacheable = sql_cache_key(key, sizeof(key), 'g', user_id, project_id);
    enum cf_rc rc;

    if (cacheable && group_memberships_cache_get(base, key, out))
        return CF_OK;
    rc = sql_collect_all(base, &ST_USER_GROUP_MEMBERSHIPS,
                         ARGS(A_TEXT(user_id), A_TEXT(project_id)), &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc == CF_OK && cacheable)
        group_memberships_cache_put(base, key, out);
    if (rc != CF_OK)
        cf_membership_list_release(out);
    return rc;
}
