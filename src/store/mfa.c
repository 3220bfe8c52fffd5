/* Two-factor sign-in in the store (store/mfa.h): TOTP enrolments, recovery codes and sign-in
 * tickets. */
#include <string.h>

#include "store/mfa.h"
#include "store/shared.h"
#include "util/banned.h"

static enum cf_rc read_totp(const struct db_row *row, void *item)
{
    struct cf_user_totp *t = item;
    db_row_text(row, 0, t->user_id, sizeof(t->user_id));
    db_row_text(row, 1, t->secret, sizeof(t->secret));
    t->enabled = db_row_int64(row, 2) != 0;
    t->last_step = db_row_int64(row, 3);
    t->created_at = db_row_int64(row, 4);
    t->updated_at = db_row_int64(row, 5);
    return db_row_status(row);
}

static struct sql_stmt ST_TOTP_GET =
    SQL_STMT("SELECT user_id, secret, enabled, last_step, created_at, updated_at FROM user_totp"
             " WHERE user_id = ?1");

static struct sql_stmt ST_TOTP_DELETE_PENDING =
    SQL_STMT("DELETE FROM user_totp WHERE user_id = ?1 AND enabled = 0");

static struct sql_stmt ST_TOTP_INSERT =
    SQL_STMT("INSERT INTO user_totp (user_id, secret, enabled, last_step, created_at, updated_at)"
             " VALUES (?1, ?2, 0, 0, ?3, ?3)");

enum cf_rc cf_store_totp_put_pending(struct cf_store *st, const struct cf_user_totp *totp,
                                     struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_require_uuid(totp->user_id, "user", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(totp->secret, sizeof(totp->secret), "TOTP secret", err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_TOTP_DELETE_PENDING, ARGS(A_TEXT(totp->user_id)), NULL, err);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_TOTP_INSERT,
                      ARGS(A_TEXT(totp->user_id), A_TEXT(totp->secret), A_INT(totp->created_at)),
                      NULL, err);
    /* the row left is an enabled one */
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_ECONFLICT, "two-factor sign-in is enabled already");
    return sql_tx_end(c, rc, err);
}

enum cf_rc cf_store_totp_get(struct cf_store *st, const char *user_id, struct cf_user_totp *out,
                             struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(st, &ST_TOTP_GET, ARGS(A_TEXT(user_id)), read_totp, out, "TOTP of user",
                       user_id, err);
}

static struct sql_stmt ST_TOTP_ACCEPT =
    SQL_STMT("UPDATE user_totp SET last_step = ?2, enabled = 1, updated_at = ?3"
             " WHERE user_id = ?1 AND last_step < ?2");

enum cf_rc cf_store_totp_accept_step(struct cf_store *st, const char *user_id, int64_t step,
                                     int64_t now_ms, struct cf_err *err)
{
    int64_t changed = 0;
    enum cf_rc rc = sql_exec_in_tx(
        st, &ST_TOTP_ACCEPT, ARGS(A_TEXT(user_id), A_INT(step), A_INT(now_ms)), &changed, err);
    if (rc == CF_OK && changed != 1)
        rc = cf_err_set(err, CF_ECONFLICT, "this code (or a later one) was used already");
    return rc;
}

static struct sql_stmt ST_TOTP_DELETE = SQL_STMT("DELETE FROM user_totp WHERE user_id = ?1");

static struct sql_stmt ST_CODES_DELETE =
    SQL_STMT("DELETE FROM user_recovery_codes WHERE user_id = ?1");

enum cf_rc cf_store_totp_delete(struct cf_store *st, const char *user_id, struct cf_err *err)
{
    struct db_conn *c;
    int64_t deleted = 0;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_TOTP_DELETE, ARGS(A_TEXT(user_id)), &deleted, err);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_CODES_DELETE, ARGS(A_TEXT(user_id)), NULL, err);
    if (rc == CF_OK && deleted == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "two-factor sign-in is not enabled");
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_CODE_INSERT = SQL_STMT(
    "INSERT INTO user_recovery_codes (user_id, code_hash, created_at) VALUES (?1, ?2, ?3)");

enum cf_rc cf_store_recovery_codes_replace(struct cf_store *st, const char *user_id,
                                           const uint8_t (*hashes)[CF_MFA_HASH_LEN], size_t n,
                                           int64_t now_ms, struct cf_err *err)
{
    struct db_conn *c;
    if (n > CF_RECOVERY_CODES_MAX)
        return cf_err_set(err, CF_EINVAL, "at most %d recovery codes", CF_RECOVERY_CODES_MAX);
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_CODES_DELETE, ARGS(A_TEXT(user_id)), NULL, err);
    for (size_t i = 0; rc == CF_OK && i < n; i++)
        rc = sql_exec(c, &ST_CODE_INSERT,
                      ARGS(A_TEXT(user_id), A_BLOB(hashes[i], CF_MFA_HASH_LEN), A_INT(now_ms)),
                      NULL, err);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_CODE_USE =
    SQL_STMT("DELETE FROM user_recovery_codes WHERE user_id = ?1 AND code_hash = ?2");

enum cf_rc cf_store_recovery_code_use(struct cf_store *st, const char *user_id,
                                      const uint8_t hash[CF_MFA_HASH_LEN], struct cf_err *err)
{
    int64_t deleted = 0;
    enum cf_rc rc = sql_exec_in_tx(
        st, &ST_CODE_USE, ARGS(A_TEXT(user_id), A_BLOB(hash, CF_MFA_HASH_LEN)), &deleted, err);
    if (rc == CF_OK && deleted != 1)
        rc = cf_err_set(err, CF_ENOTFOUND, "no such unused recovery code");
    return rc;
}

static struct sql_stmt ST_CODES_COUNT =
    SQL_STMT("SELECT count(*) FROM user_recovery_codes WHERE user_id = ?1");

enum cf_rc cf_store_recovery_codes_count(struct cf_store *st, const char *user_id, int64_t *count,
                                         struct cf_err *err)
{
    *count = 0;
    return sql_get_one(st, &ST_CODES_COUNT, ARGS(A_TEXT(user_id)), sql_read_int64, count,
                       "recovery codes of user", user_id, err);
}

static struct sql_stmt ST_TICKET_PRUNE = SQL_STMT("DELETE FROM mfa_tickets WHERE expires_at < ?1");

static struct sql_stmt ST_TICKET_KEEP_NEWEST =
    SQL_STMT("DELETE FROM mfa_tickets WHERE user_id = ?1 AND ticket_hash NOT IN"
             " (SELECT ticket_hash FROM mfa_tickets WHERE user_id = ?1"
             " ORDER BY created_at DESC LIMIT ?2)");

static struct sql_stmt ST_TICKET_INSERT =
    SQL_STMT("INSERT INTO mfa_tickets (ticket_hash, user_id, source_ip, created_at, expires_at)"
             " VALUES (?1, ?2, ?3, ?4, ?5)");

enum cf_rc cf_store_mfa_ticket_put(struct cf_store *st, const uint8_t hash[CF_MFA_HASH_LEN],
                                   const char *user_id, const char *source_ip, int64_t now_ms,
                                   int64_t expires_ms, int64_t max_per_user, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(st, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_TICKET_PRUNE, ARGS(A_INT(now_ms)), NULL, err);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_TICKET_INSERT,
                      ARGS(A_BLOB(hash, CF_MFA_HASH_LEN), A_TEXT(user_id), A_TEXT(source_ip),
                           A_INT(now_ms), A_INT(expires_ms)),
                      NULL, err);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_TICKET_KEEP_NEWEST, ARGS(A_TEXT(user_id), A_INT(max_per_user)), NULL,
                      err);
    return sql_tx_end(c, rc, err);
}

struct ticket_row {
    char *user_id;
    int64_t expires_ms;
};

static enum cf_rc read_ticket(const struct db_row *row, void *item)
{
    struct ticket_row *t = item;
    t->expires_ms = db_row_int64(row, 1);
    return db_row_text(row, 0, t->user_id, CF_UUID_LEN);
}

static struct sql_stmt ST_TICKET_GET =
    SQL_STMT("SELECT user_id, expires_at FROM mfa_tickets WHERE ticket_hash = ?1");

enum cf_rc cf_store_mfa_ticket_get(struct cf_store *st, const uint8_t hash[CF_MFA_HASH_LEN],
                                   char user_id[CF_UUID_LEN], int64_t *expires_ms,
                                   struct cf_err *err)
{
    struct ticket_row t = {.user_id = user_id};
    user_id[0] = '\0';
    enum cf_rc rc = sql_get_one(st, &ST_TICKET_GET, ARGS(A_BLOB(hash, CF_MFA_HASH_LEN)),
                                read_ticket, &t, "sign-in ticket", "", err);
    *expires_ms = rc == CF_OK ? t.expires_ms : 0;
    return rc;
}

static struct sql_stmt ST_TICKET_DELETE =
    SQL_STMT("DELETE FROM mfa_tickets WHERE ticket_hash = ?1");

enum cf_rc cf_store_mfa_ticket_take(struct cf_store *st, const uint8_t hash[CF_MFA_HASH_LEN],
                                    struct cf_err *err)
{
    int64_t deleted = 0;
    enum cf_rc rc =
        sql_exec_in_tx(st, &ST_TICKET_DELETE, ARGS(A_BLOB(hash, CF_MFA_HASH_LEN)), &deleted, err);
    if (rc == CF_OK && deleted != 1)
        rc = cf_err_set(err, CF_ENOTFOUND, "the sign-in ticket was used already");
    return rc;
}
