/* Notification channels, thresholds and notices in the store (store.h), as SQL run through
 * sqlrun.h. */
#include "store/shared.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define NOTICE_COLS                                                                                \
    "n.id, n.channel_id, n.item_key, n.threshold, n.project_id, n.message, n.item, n.state,"       \
    " n.attempts, n.next_attempt_at, n.last_error, n.created_at, n.delivered_at"

static enum cf_rc read_channel(const struct db_row *s, void *item)
{
    struct cf_channel *c = item;
    db_row_text(s, 0, c->id, sizeof(c->id));
    db_row_text(s, 1, c->project_id, sizeof(c->project_id));
    db_row_text(s, 2, c->type, sizeof(c->type));
    db_row_text(s, 3, c->name, sizeof(c->name));
    db_row_text(s, 4, c->target, sizeof(c->target));
    db_row_text(s, 5, c->signing_secret, sizeof(c->signing_secret));
    c->created_at = db_row_int64(s, 6);
    return db_row_status(s);
}

static enum cf_rc read_notice(const struct db_row *s, void *item)
{
    struct cf_notice *n = item;
    db_row_text(s, 0, n->id, sizeof(n->id));
    db_row_text(s, 1, n->channel_id, sizeof(n->channel_id));
    db_row_text(s, 2, n->item_key, sizeof(n->item_key));
    db_row_text(s, 3, n->threshold, sizeof(n->threshold));
    db_row_text(s, 4, n->project_id, sizeof(n->project_id));
    db_row_text(s, 5, n->message, sizeof(n->message));
    db_row_text(s, 6, n->item, sizeof(n->item));
    db_row_text(s, 7, n->state, sizeof(n->state));
    n->attempts = db_row_int64(s, 8);
    n->next_attempt_at = db_row_int64(s, 9);
    db_row_text(s, 10, n->last_error, sizeof(n->last_error));
    n->created_at = db_row_int64(s, 11);
    n->delivered_at = db_row_int64(s, 12);
    return db_row_status(s);
}

static struct sql_stmt ST_CHANNEL_INSERT =
    SQL_STMT("INSERT INTO notification_channels (" CHANNEL_COLS ")"
             " VALUES (?1, NULLIF(?2, ''), ?3, ?4, ?5, ?6, ?7)");

enum cf_rc cf_store_channel_create(struct cf_store *base, const struct cf_channel *ch,
                                   struct cf_err *err)
{
    enum cf_rc rc = sql_exec_in_tx(base, &ST_CHANNEL_INSERT,
                                   ARGS(A_TEXT(ch->id), A_TEXT(ch->project_id), A_TEXT(ch->type),
                                        A_TEXT(ch->name), A_TEXT(ch->target),
                                        A_TEXT(ch->signing_secret), A_INT(ch->created_at)),
                                   NULL, err);
    if (rc == CF_EEXIST || rc == CF_ECONFLICT)
        rc = cf_err_set(err, CF_ENOTFOUND, "Project with ID '%s' not found", ch->project_id);
    return rc;
}

static struct sql_stmt ST_CHANNEL_LIST_ALL =
    SQL_STMT("SELECT " CHANNEL_COLS " FROM notification_channels"
             " ORDER BY created_at, id");

static struct sql_stmt ST_CHANNEL_LIST_PROJECT =
    SQL_STMT("SELECT " CHANNEL_COLS " FROM notification_channels"
             " WHERE project_id = ?1 ORDER BY created_at, id");

enum cf_rc cf_store_channel_list(struct cf_store *base, const char *project_id,
                                 struct cf_channel_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_channel), .read = read_channel};
    enum cf_rc rc = project_id ? sql_collect_all(base, &ST_CHANNEL_LIST_PROJECT,
                                                 ARGS(A_TEXT(project_id)), &col, err)
                               : sql_collect_all(base, &ST_CHANNEL_LIST_ALL, NO_ARGS, &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_channel_list_release(out);
    return rc;
}

static struct sql_stmt ST_CHANNEL_DELETE =
    SQL_STMT("DELETE FROM notification_channels WHERE id = ?1");

enum cf_rc cf_store_channel_delete(struct cf_store *base, const char *channel_id,
                                   struct cf_err *err)
{
    int64_t changes = 0;
    enum cf_rc rc =
        sql_exec_in_tx(base, &ST_CHANNEL_DELETE, ARGS(A_TEXT(channel_id)), &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "notification channel '%s' not found", channel_id);
    return rc;
}

struct thresholds_text {
    char text[256];
};

static enum cf_rc read_thresholds(const struct db_row *s, void *item)
{
    struct thresholds_text *out = item;
    db_row_text(s, 0, out->text, sizeof(out->text));
    return db_row_status(s);
}

static struct sql_stmt ST_THRESHOLDS_GET =
    SQL_STMT("SELECT thresholds FROM notification_settings WHERE project_id = ?1");

enum cf_rc cf_store_notify_thresholds_get(struct cf_store *base, const char *project_id, char *out,
                                          size_t size, struct cf_err *err)
{
    struct thresholds_text got = {""};
    enum cf_rc rc = sql_get_one(base, &ST_THRESHOLDS_GET, ARGS(A_TEXT(project_id)), read_thresholds,
                                &got, "notification settings of project", project_id, err);
    if (rc == CF_OK)
        cf_strlcpy(out, got.text, size);
    return rc;
}

static struct sql_stmt ST_THRESHOLDS_PUT =
    SQL_STMT("INSERT INTO notification_settings (project_id, thresholds, updated_at)"
             " VALUES (?1, ?2, ?3) ON CONFLICT (project_id) DO UPDATE SET"
             " thresholds = excluded.thresholds, updated_at = excluded.updated_at");

enum cf_rc cf_store_notify_thresholds_put(struct cf_store *base, const char *project_id,
                                          const char *thresholds, struct cf_err *err)
{
    return sql_exec_in_tx(base, &ST_THRESHOLDS_PUT,
                          ARGS(A_TEXT(project_id), A_TEXT(thresholds), A_INT(cf_now_ms())), NULL,
                          err);
}

static struct sql_stmt ST_NOTICE_CLAIM =
    SQL_STMT("INSERT INTO notices (id, channel_id, item_key, threshold, project_id,"
             " message, item, state, attempts, next_attempt_at, created_at)"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', 0, ?8, ?8)"
             " ON CONFLICT (item_key, threshold, channel_id) DO NOTHING");

enum cf_rc cf_store_notice_claim(struct cf_store *base, const struct cf_notice *n, bool *created,
                                 struct cf_err *err)
{
    int64_t changes = 0;
    enum cf_rc rc = sql_exec_in_tx(base, &ST_NOTICE_CLAIM,
                                   ARGS(A_TEXT(n->id), A_TEXT(n->channel_id), A_TEXT(n->item_key),
                                        A_TEXT(n->threshold), A_TEXT(n->project_id),
                                        A_TEXT(n->message), A_TEXT(n->item), A_INT(n->created_at)),
                                   &changes, err);
    *created = rc == CF_OK && changes == 1;
    return rc;
}

static struct sql_stmt ST_NOTICE_DUE =
    SQL_STMT("SELECT " NOTICE_COLS " FROM notices n WHERE n.state = 'pending'"
             " AND n.next_attempt_at <= ?1 ORDER BY n.next_attempt_at, n.id LIMIT ?2");

enum cf_rc cf_store_notice_due(struct cf_store *base, int64_t now, size_t limit,
                               struct cf_notice_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_notice), .read = read_notice};
    enum cf_rc rc =
        sql_collect_all(base, &ST_NOTICE_DUE, ARGS(A_INT(now), A_INT(limit)), &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_notice_list_release(out);
    return rc;
}

static struct sql_stmt ST_NOTICE_UPDATE =
    SQL_STMT("UPDATE notices SET state = ?2, attempts = ?3, next_attempt_at = ?4,"
             " last_error = ?5, delivered_at = ?6 WHERE id = ?1");

enum cf_rc cf_store_notice_update(struct cf_store *base, const struct cf_notice *n,
                                  struct cf_err *err)
{
    return sql_exec_in_tx(base, &ST_NOTICE_UPDATE,
                          ARGS(A_TEXT(n->id), A_TEXT(n->state), A_INT(n->attempts),
                               A_INT(n->next_attempt_at), A_TEXT(n->last_error),
                               A_INT(n->delivered_at)),
                          NULL, err);
}

static struct sql_stmt ST_NOTICE_LIST =
    SQL_STMT("SELECT " NOTICE_COLS " FROM notices n"
             " JOIN notification_channels c ON c.id = n.channel_id"
             " WHERE (?1 = '' OR c.project_id = ?1) AND (?2 = '' OR n.state = ?2)"
             " ORDER BY n.created_at DESC, n.id LIMIT ?3 OFFSET ?4");

enum cf_rc cf_store_notice_list(struct cf_store *base, const char *project_id, const char *state,
                                size_t limit, size_t offset, struct cf_notice_list *out,
                                struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_notice), .read = read_notice};
    enum cf_rc rc =
        sql_collect_all(base, &ST_NOTICE_LIST,
                        ARGS(A_TEXT(sql_str_or_empty(project_id)), A_TEXT(sql_str_or_empty(state)),
                             A_INT(limit), A_INT(offset)),
                        &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_notice_list_release(out);
    return rc;
}
