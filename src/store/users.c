/* People in the store (store.h): users, their browser sessions and personal access tokens, as SQL
 * run through sqlrun.h. Their project memberships are in memberships.c. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "store/shared.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

enum cf_rc sql_read_user(const struct db_row *s, void *item)
{
    struct cf_user *u = item;
    db_row_text(s, 0, u->id, sizeof(u->id));
    db_row_text(s, 1, u->email, sizeof(u->email));
    db_row_text(s, 2, u->name, sizeof(u->name));
    db_row_text(s, 3, u->org_role, sizeof(u->org_role));
    db_row_text(s, 4, u->status, sizeof(u->status));
    db_row_text(s, 5, u->password_hash, sizeof(u->password_hash));
    db_row_text(s, 6, u->sso_issuer, sizeof(u->sso_issuer));
    db_row_text(s, 7, u->sso_subject, sizeof(u->sso_subject));
    u->created_at = db_row_int64(s, 8);
    u->updated_at = db_row_int64(s, 9);
    u->last_login_at = db_row_int64(s, 10);
    return db_row_status(s);
}

static enum cf_rc read_session(const struct db_row *s, void *item)
{
    struct cf_user_session *x = item;
    db_row_text(s, 0, x->id, sizeof(x->id));
    db_row_text(s, 1, x->user_id, sizeof(x->user_id));
    db_row_text(s, 4, x->source_ip, sizeof(x->source_ip));
    db_row_text(s, 5, x->user_agent, sizeof(x->user_agent));
    x->created_at = db_row_int64(s, 6);
    x->last_seen_at = db_row_int64(s, 7);
    x->expires_at = db_row_int64(s, 8);
    enum cf_rc rc = db_row_status(s);
    if (rc == CF_OK)
        rc = sql_col_fixed(s, 2, x->hash, sizeof(x->hash));
    return rc == CF_OK ? sql_col_fixed(s, 3, x->csrf_hash, sizeof(x->csrf_hash)) : rc;
}

static enum cf_rc read_pat(const struct db_row *s, void *item)
{
    struct cf_pat *p = item;
    db_row_text(s, 0, p->id, sizeof(p->id));
    db_row_text(s, 1, p->user_id, sizeof(p->user_id));
    db_row_text(s, 2, p->name, sizeof(p->name));
    p->expires_at = db_row_int64(s, 4);
    p->revoked = db_row_int64(s, 5) != 0;
    p->created_at = db_row_int64(s, 6);
    enum cf_rc rc = db_row_status(s);
    return rc == CF_OK ? sql_col_fixed(s, 3, p->hash, sizeof(p->hash)) : rc;
}

/* CF_OK when every text field of user is terminated and the required ones are set. */
static enum cf_rc user_check(const struct cf_user *user, struct cf_err *err)
{
    enum cf_rc rc = sql_require_uuid(user->id, "user", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(user->email, sizeof(user->email), "email", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(user->name, sizeof(user->name), "name", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(user->org_role, sizeof(user->org_role), "org role", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(user->status, sizeof(user->status), "status", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(user->password_hash, sizeof(user->password_hash),
                                    "password hash", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(user->sso_issuer, sizeof(user->sso_issuer), "issuer", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(user->sso_subject, sizeof(user->sso_subject), "subject", err);
    if (rc == CF_OK && !user->email[0])
        rc = cf_err_set(err, CF_EINVAL, "user email is empty");
    return rc;
}

static struct sql_stmt ST_USER_INSERT = SQL_STMT(
    "INSERT INTO users (" USER_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");

enum cf_rc cf_store_user_create(struct cf_store *base, const struct cf_user *user,
                                struct cf_err *err)
{
    struct db_conn *c;
    int64_t now = cf_now_ms();
    enum cf_rc rc = user_check(user, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_USER_INSERT,
                  ARGS(A_TEXT(user->id), A_TEXT(user->email), A_TEXT(user->name),
                       A_TEXT(user->org_role), A_TEXT(user->status),
                       A_NULLABLE(user->password_hash), A_NULLABLE(user->sso_issuer),
                       A_NULLABLE(user->sso_subject), A_INT(sql_time_or_now(user->created_at, now)),
                       A_INT(sql_time_or_now(user->updated_at, now)), A_INT(user->last_login_at)),
                  NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST,
                        user->sso_subject[0] ? "user '%s' (or its single sign-on subject) already "
                                               "exists"
                                             : "user '%s' already exists",
                        user->email);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_USER_BY_ID = SQL_STMT("SELECT " USER_COLS " FROM users WHERE id = ?1");

static struct sql_stmt ST_USER_BY_EMAIL =
    SQL_STMT("SELECT " USER_COLS " FROM users WHERE email = ?1");

static struct sql_stmt ST_USER_BY_SSO =
    SQL_STMT("SELECT " USER_COLS " FROM users WHERE sso_issuer = ?1 AND sso_subject = ?2");

enum cf_rc cf_store_user_get(struct cf_store *base, const char *id, struct cf_user *out,
                             struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_USER_BY_ID, ARGS(A_TEXT(id)), sql_read_user, out, "user", id, err);
}

enum cf_rc cf_store_user_get_by_email(struct cf_store *base, const char *email, struct cf_user *out,
                                      struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_USER_BY_EMAIL, ARGS(A_TEXT(email)), sql_read_user, out, "user",
                       email, err);
}

enum cf_rc cf_store_user_get_by_sso(struct cf_store *base, const char *issuer, const char *subject,
                                    struct cf_user *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_USER_BY_SSO, ARGS(A_TEXT(issuer), A_TEXT(subject)), sql_read_user,
                       out, "user with subject", subject, err);
}

static struct sql_stmt ST_USER_LIST = SQL_STMT("SELECT " USER_COLS " FROM users ORDER BY email");

enum cf_rc cf_store_user_list(struct cf_store *base, struct cf_user_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_user), .read = sql_read_user};
    enum cf_rc rc = sql_collect_all(base, &ST_USER_LIST, NO_ARGS, &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_user_list_release(out);
    return rc;
}

static struct sql_stmt ST_USER_UPDATE = SQL_STMT(
    "UPDATE users SET email = ?2, name = ?3, org_role = ?4, status = ?5, password_hash = ?6,"
    " sso_issuer = ?7, sso_subject = ?8, updated_at = ?9, last_login_at = ?10 WHERE id = ?1");

enum cf_rc cf_store_user_update(struct cf_store *base, const struct cf_user *user,
                                struct cf_err *err)
{
    int64_t changes = 0;
    enum cf_rc rc = user_check(user, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec_in_tx(base, &ST_USER_UPDATE,
                        ARGS(A_TEXT(user->id), A_TEXT(user->email), A_TEXT(user->name),
                             A_TEXT(user->org_role), A_TEXT(user->status),
                             A_NULLABLE(user->password_hash), A_NULLABLE(user->sso_issuer),
                             A_NULLABLE(user->sso_subject), A_INT(sql_time_or_now(0, cf_now_ms())),
                             A_INT(user->last_login_at)),
                        &changes, err);
    if (rc == CF_EEXIST)
        return cf_err_set(err, CF_EEXIST, "user '%s' already exists", user->email);
    if (rc == CF_OK && changes == 0)
        return cf_err_set(err, CF_ENOTFOUND, "user '%s' not found", user->id);
    return rc;
}

static struct sql_stmt ST_USER_DELETE = SQL_STMT("DELETE FROM users WHERE id = ?1");

enum cf_rc cf_store_user_delete(struct cf_store *base, const char *id, struct cf_err *err)
{
    int64_t changes = 0;
    enum cf_rc rc = sql_exec_in_tx(base, &ST_USER_DELETE, ARGS(A_TEXT(id)), &changes, err);
    if (rc == CF_OK && changes == 0)
        return cf_err_set(err, CF_ENOTFOUND, "user '%s' not found", id);
    return rc;
}

static struct sql_stmt ST_USER_OWNERS =
    SQL_STMT("SELECT COUNT(*) FROM users WHERE org_role = 'owner' AND status = 'active'");

enum cf_rc cf_store_user_count_owners(struct cf_store *base, int64_t *count, struct cf_err *err)
{
    *count = 0;
    return sql_get_one(base, &ST_USER_OWNERS, NO_ARGS, sql_read_int64, count, "owner count", "",
                       err);
}

/* Runs stmt, a write on one row (?1 the user, ?2 the row's id) of what, in its own transaction:
 * CF_ENOTFOUND "<what> '<id>' not found" when the user has no such row. */
static enum cf_rc change_own_row(struct cf_store *base, struct sql_stmt *stmt, const char *what,
                                 const char *user_id, const char *id, struct cf_err *err)
{
    int64_t changes = 0;
    enum cf_rc rc = sql_exec_in_tx(base, stmt, ARGS(A_TEXT(user_id), A_TEXT(id)), &changes, err);
    if (rc == CF_OK && changes == 0)
        return cf_err_set(err, CF_ENOTFOUND, "%s '%s' not found", what, id);
    return rc;
}

/* Collects the rows stmt returns for user_id (?1) into *items and *n (freed by the caller). */
static enum cf_rc collect_of_user(struct cf_store *base, struct sql_stmt *stmt, size_t size,
                                  row_fn read, const char *user_id, void **items, size_t *n,
                                  struct cf_err *err)
{
    struct sql_collector col = {.size = size, .read = read};
    enum cf_rc rc = sql_collect_all(base, stmt, ARGS(A_TEXT(user_id)), &col, err);
    *items = col.items;
    *n = col.n;
    return rc;
}

/* ---- sessions ---- */

static struct sql_stmt ST_SESSION_INSERT = SQL_STMT(
    "INSERT INTO user_sessions (" SESSION_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");

enum cf_rc cf_store_session_create(struct cf_store *base, const struct cf_user_session *session,
                                   struct cf_err *err)
{
    enum cf_rc rc = sql_require_uuid(session->id, "session", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(session->source_ip, sizeof(session->source_ip), "source ip",
                                    err);
    if (rc == CF_OK)
        rc = sql_require_terminated(session->user_agent, sizeof(session->user_agent), "user agent",
                                    err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec_in_tx(base, &ST_SESSION_INSERT,
                        ARGS(A_TEXT(session->id), A_TEXT(session->user_id),
                             A_BLOB(session->hash, sizeof(session->hash)),
                             A_BLOB(session->csrf_hash, sizeof(session->csrf_hash)),
                             A_TEXT(session->source_ip), A_TEXT(session->user_agent),
                             A_INT(session->created_at), A_INT(session->last_seen_at),
                             A_INT(session->expires_at)),
                        NULL, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "user '%s' not found", session->user_id);
    return rc;
}

static struct sql_stmt ST_SESSION_GET =
    SQL_STMT("SELECT " SESSION_COLS " FROM user_sessions WHERE id = ?1");

enum cf_rc cf_store_session_get(struct cf_store *base, const char *id, struct cf_user_session *out,
                                struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_SESSION_GET, ARGS(A_TEXT(id)), read_session, out, "session", id,
                       err);
}

static struct sql_stmt ST_SESSION_TOUCH =
    SQL_STMT("UPDATE user_sessions SET last_seen_at = ?2 WHERE id = ?1 AND last_seen_at < ?2");

enum cf_rc cf_store_session_touch(struct cf_store *base, const char *id, int64_t last_seen_at,
                                  struct cf_err *err)
{
    return sql_exec_in_tx(base, &ST_SESSION_TOUCH, ARGS(A_TEXT(id), A_INT(last_seen_at)), NULL,
                          err);
}

static struct sql_stmt ST_SESSION_LIST = SQL_STMT(
    "SELECT " SESSION_COLS " FROM user_sessions WHERE user_id = ?1 ORDER BY created_at DESC, id");

enum cf_rc cf_store_session_list(struct cf_store *base, const char *user_id,
                                 struct cf_user_session_list *out, struct cf_err *err)
{
    void *items = NULL;
    enum cf_rc rc = collect_of_user(base, &ST_SESSION_LIST, sizeof(*out->items), read_session,
                                    user_id, &items, &out->n, err);
    out->items = items;
    if (rc != CF_OK)
        cf_user_session_list_release(out);
    return rc;
}

static struct sql_stmt ST_SESSION_DELETE =
    SQL_STMT("DELETE FROM user_sessions WHERE user_id = ?1 AND id = ?2");

enum cf_rc cf_store_session_delete(struct cf_store *base, const char *user_id, const char *id,
                                   struct cf_err *err)
{
    return change_own_row(base, &ST_SESSION_DELETE, "session", user_id, id, err);
}

static struct sql_stmt ST_SESSION_DELETE_OTHERS =
    SQL_STMT("DELETE FROM user_sessions WHERE user_id = ?1 AND id <> ?2");

enum cf_rc cf_store_session_delete_others(struct cf_store *base, const char *user_id,
                                          const char *keep_id, int64_t *deleted, struct cf_err *err)
{
    int64_t changes = 0;
    enum cf_rc rc =
        sql_exec_in_tx(base, &ST_SESSION_DELETE_OTHERS,
                       ARGS(A_TEXT(user_id), A_TEXT(keep_id ? keep_id : "")), &changes, err);
    if (deleted)
        *deleted = rc == CF_OK ? changes : 0;
    return rc;
}

/* ---- personal access tokens ---- */

static struct sql_stmt ST_PAT_INSERT = SQL_STMT("INSERT INTO personal_access_tokens (" PAT_COLS
                                                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");

enum cf_rc cf_store_pat_create(struct cf_store *base, const struct cf_pat *pat, struct cf_err *err)
{
    enum cf_rc rc = sql_require_uuid(pat->id, "token", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(pat->name, sizeof(pat->name), "token name", err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec_in_tx(base, &ST_PAT_INSERT,
                        ARGS(A_TEXT(pat->id), A_TEXT(pat->user_id), A_TEXT(pat->name),
                             A_BLOB(pat->hash, sizeof(pat->hash)), A_INT(pat->expires_at),
                             A_INT(pat->revoked ? 1 : 0), A_INT(pat->created_at)),
                        NULL, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "user '%s' not found", pat->user_id);
    return rc;
}

static struct sql_stmt ST_PAT_GET =
    SQL_STMT("SELECT " PAT_COLS " FROM personal_access_tokens WHERE id = ?1");

enum cf_rc cf_store_pat_get(struct cf_store *base, const char *id, struct cf_pat *out,
                            struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_PAT_GET, ARGS(A_TEXT(id)), read_pat, out, "token", id, err);
}

static struct sql_stmt ST_PAT_LIST =
    SQL_STMT("SELECT " PAT_COLS " FROM personal_access_tokens WHERE user_id = ?1"
             " ORDER BY created_at DESC, id");

enum cf_rc cf_store_pat_list(struct cf_store *base, const char *user_id, struct cf_pat_list *out,
                             struct cf_err *err)
{
    void *items = NULL;
    enum cf_rc rc = collect_of_user(base, &ST_PAT_LIST, sizeof(*out->items), read_pat, user_id,
                                    &items, &out->n, err);
    out->items = items;
    if (rc != CF_OK)
        cf_pat_list_release(out);
    return rc;
}

static struct sql_stmt ST_PAT_REVOKE =
    SQL_STMT("UPDATE personal_access_tokens SET revoked = 1 WHERE user_id = ?1 AND id = ?2");

enum cf_rc cf_store_pat_revoke(struct cf_store *base, const char *user_id, const char *id,
                               struct cf_err *err)
{
    return change_own_row(base, &ST_PAT_REVOKE, "token", user_id, id, err);
}
