/* Pending single sign-on logins (store/sso.h): put when a login begins, taken once when the
 * browser comes back. */
#include <string.h>

#include "store/shared.h"
#include "store/sso.h"
#include "util/banned.h"

static struct sql_stmt ST_SSO_PRUNE = SQL_STMT("DELETE FROM sso_logins WHERE expires_at < ?1");

static struct sql_stmt ST_SSO_COUNT = SQL_STMT("SELECT count(*) FROM sso_logins");

static struct sql_stmt ST_SSO_COUNT_SOURCE =
    SQL_STMT("SELECT count(*) FROM sso_logins WHERE source_ip = ?1");

static struct sql_stmt ST_SSO_INSERT =
    SQL_STMT("INSERT INTO sso_logins (state_hash, return_path, source_ip, created_at, expires_at)"
             " VALUES (?1, ?2, ?3, ?4, ?5)");

enum cf_rc cf_store_sso_login_put(struct cf_store *st, const uint8_t *state_hash,
                                  const char *return_path, const char *source_ip, int64_t now_ms,
                                  int64_t expires_ms, const struct cf_sso_login_limits *limits,
                                  struct cf_err *err)
{
    struct db_conn *c;
    int64_t pending = 0, from_source = 0;
    bool found = false;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_SSO_PRUNE, ARGS(A_INT(now_ms)), NULL, err);
    if (rc == CF_OK)
        rc = sql_get_row(c, &ST_SSO_COUNT, NO_ARGS, sql_read_int64, &pending, &found, err);
    if (rc == CF_OK)
        rc = sql_get_row(c, &ST_SSO_COUNT_SOURCE, ARGS(A_TEXT(source_ip)), sql_read_int64,
                         &from_source, &found, err);
    if (rc == CF_OK && from_source >= limits->max_per_source)
        rc = cf_err_set(err, CF_ERATELIMIT,
                        "%lld single sign-on logins begun from %.64s are pending, the most one "
                        "address may have: finish one, or try again in a few minutes",
                        (long long)from_source, source_ip);
    if (rc == CF_OK && pending >= limits->max_pending)
        rc = cf_err_set(err, CF_ERATELIMIT,
                        "%lld single sign-on logins are pending, the most this server keeps: try "
                        "again in a few minutes",
                        (long long)pending);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_SSO_INSERT,
                      ARGS(A_BLOB(state_hash, CF_SSO_STATE_HASH_LEN), A_TEXT(return_path),
                           A_TEXT(source_ip), A_INT(now_ms), A_INT(expires_ms)),
                      NULL, err);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_SSO_GET =
    SQL_STMT("SELECT return_path, expires_at FROM sso_logins WHERE state_hash = ?1");

static struct sql_stmt ST_SSO_DELETE = SQL_STMT("DELETE FROM sso_logins WHERE state_hash = ?1");

struct taken_login {
    char *return_path;
    size_t size;
    int64_t expires_ms;
};

static enum cf_rc read_login(const struct db_row *row, void *item)
{
    struct taken_login *t = item;
    t->expires_ms = db_row_int64(row, 1);
    return db_row_text(row, 0, t->return_path, t->size);
}

enum cf_rc cf_store_sso_login_take(struct cf_store *st, const uint8_t *state_hash,
                                   char *return_path, size_t size, int64_t *expires_ms,
                                   struct cf_err *err)
{
    struct db_conn *c;
    struct taken_login t = {.return_path = return_path, .size = size};
    int64_t deleted = 0;
    bool found = false;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_row(c, &ST_SSO_GET, ARGS(A_BLOB(state_hash, CF_SSO_STATE_HASH_LEN)), read_login,
                     &t, &found, err);
    /* The delete decides: of two takes racing on two nodes, only one deletes the row. */
    if (rc == CF_OK && found)
        rc = sql_exec(c, &ST_SSO_DELETE, ARGS(A_BLOB(state_hash, CF_SSO_STATE_HASH_LEN)), &deleted,
                      err);
    if (rc == CF_OK && (!found || deleted != 1))
        rc = cf_err_set(err, CF_ENOTFOUND, "no pending login has this state");
    if (rc == CF_OK)
        *expires_ms = t.expires_ms;
    return sql_tx_end(c, rc, err);
}
