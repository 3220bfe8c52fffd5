/* Group membership from the identity provider's groups (store/group_sync.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/group_sync.h"
#include "store/shared.h"
#include "util/banned.h"

#define GROUP_NAME_MAX 256
#define EXTERNAL_ID_MAX 512

struct synced_group {
    char id[CF_UUID_LEN];
    char name[GROUP_NAME_MAX + 1];
    char external_id[EXTERNAL_ID_MAX + 1];
};

static enum cf_rc read_group(const struct db_row *row, void *item)
{
    struct synced_group *g = item;
    enum cf_rc rc = db_row_text(row, 0, g->id, sizeof(g->id));
    if (rc == CF_OK)
        rc = db_row_text(row, 1, g->name, sizeof(g->name));
    if (rc == CF_OK)
        rc = db_row_text(row, 2, g->external_id, sizeof(g->external_id));
    return rc;
}

/* Appends name to the comma-separated list in names (size bytes), ending it with "..." once full.
 */
static void note_name(char *names, size_t size, const char *name)
{
    size_t used = strlen(names);
    if (used + 4 >= size || (used >= 3 && strcmp(names + used - 3, "...") == 0))
        return;
    int n = snprintf(names + used, size - used, "%s%s", used ? "," : "", name);
    if (n < 0 || (size_t)n >= size - used)
        snprintf(names + (used < size - 4 ? used : size - 4), 4, "...");
}

static struct sql_stmt ST_GS_FIND =
    SQL_STMT("SELECT id, name, external_id FROM user_groups WHERE external_id = ?1");

static struct sql_stmt ST_GS_JOIN =
    SQL_STMT("INSERT INTO user_group_members (group_id, user_id, created_at) VALUES (?1, ?2, ?3)"
             " ON CONFLICT (group_id, user_id) DO NOTHING");

static struct sql_stmt ST_GS_CURRENT =
    SQL_STMT("SELECT g.id, g.name, g.external_id FROM user_group_members m"
             " JOIN user_groups g ON g.id = m.group_id"
             " WHERE m.user_id = ?1 AND g.external_id IS NOT NULL");

static struct sql_stmt ST_GS_LEAVE =
    SQL_STMT("DELETE FROM user_group_members WHERE group_id = ?1 AND user_id = ?2");

static bool claimed(char *const *external_ids, size_t n, const char *external_id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(external_ids[i], external_id) == 0)
            return true;
    return false;
}

enum cf_rc cf_store_user_groups_sync(struct cf_store *st, const char *user_id,
                                     char *const *external_ids, size_t n, int64_t now_ms,
                                     struct cf_group_sync_result *out, struct cf_err *err)
{
    struct sql_collector current = {.size = sizeof(struct synced_group), .read = read_group};
    struct db_conn *c;
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    for (size_t i = 0; rc == CF_OK && i < n; i++) {
        struct synced_group g = {0};
        bool found = false;
        int64_t added = 0;
        rc =
            sql_get_row(c, &ST_GS_FIND, ARGS(A_TEXT(external_ids[i])), read_group, &g, &found, err);
        if (rc != CF_OK || !found)
            continue;
        rc = sql_exec(c, &ST_GS_JOIN, ARGS(A_TEXT(g.id), A_TEXT(user_id), A_INT(now_ms)), &added,
                      err);
        if (rc == CF_OK && added > 0) {
            out->joined++;
            note_name(out->joined_names, sizeof(out->joined_names), g.name);
        } else if (rc == CF_OK) {
            out->kept++;
        }
    }
    if (rc == CF_OK)
        rc = sql_run(c, &ST_GS_CURRENT, ARGS(A_TEXT(user_id)), sql_collect, &current, NULL, err);
    struct synced_group *groups = current.items;
    for (size_t i = 0; rc == CF_OK && i < current.n; i++) {
        if (claimed(external_ids, n, groups[i].external_id))
            continue;
        rc = sql_exec(c, &ST_GS_LEAVE, ARGS(A_TEXT(groups[i].id), A_TEXT(user_id)), NULL, err);
        if (rc == CF_OK) {
            out->left++;
            note_name(out->left_names, sizeof(out->left_names), groups[i].name);
        }
    }
    free(current.items);
    return sql_tx_end(c, rc, err);
}
