/* Access tokens in the store (store.h): new tokens are written by a group commit (one transaction
 * for every token waiting), uses, renewals, revocations, removing an auth method with its
 * tokens, and pruning the tokens that have ended. */
#include <stdlib.h>
#include <string.h>

#include "store/shared.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

/* A token waiting for the group commit (sql_combine). It lives on the waiting thread's stack. */
struct token_job {
    struct sql_job job; /* first: a struct sql_job * of the tokens' batch is a struct token_job * */
    const struct cf_access_token *token;
    bool use_counted; /* its client secret's use was counted with the batch's others */
};

static struct token_job *next_token(const struct token_job *job)
{
    return (struct token_job *)job->job.next;
}

static enum cf_rc read_token(const struct db_row *s, void *item)
{
    struct cf_access_token *t = item;
    db_row_text(s, 0, t->id, sizeof(t->id));
    db_row_text(s, 1, t->identity_id, sizeof(t->identity_id));
    db_row_text(s, 2, t->client_secret_id, sizeof(t->client_secret_id));
    db_row_text(s, 3, t->auth_method, sizeof(t->auth_method));
    t->ttl = db_row_int64(s, 5);
    t->max_ttl = db_row_int64(s, 6);
    t->num_uses = db_row_int64(s, 7);
    t->num_uses_limit = db_row_int64(s, 8);
    t->revoked = (int)db_row_int64(s, 9) != 0;
    db_row_text(s, 10, t->trusted_ips, sizeof(t->trusted_ips));
    t->created_at = db_row_int64(s, 11);
    t->last_renewed_at = db_row_int64(s, 12);
    int64_t secret_state = db_row_int64(s, 13);
    t->client_secret_found = secret_state != 0;
    t->client_secret_revoked = secret_state == 2;
    t->client_secret_expires_at = db_row_int64(s, 14);
    enum cf_rc rc = db_row_status(s);
    return rc == CF_OK ? sql_col_fixed(s, 4, t->hash, sizeof(t->hash)) : rc;
}

static struct sql_stmt ST_TOKEN_INSERT =
    SQL_STMT("INSERT INTO identity_access_tokens (" TOKEN_COLS ")"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");

/* Counts n uses of a client secret in one statement, only when it has no use limit (and is not
 * revoked): a secret with a limit is counted one login at a time, so that none goes past it. */
static struct sql_stmt ST_CSECRET_USE_MANY =
    SQL_STMT("UPDATE identity_client_secrets SET num_uses = num_uses + ?2"
             " WHERE id = ?1 AND revoked = 0 AND num_uses_limit = 0");

/* Gives back the use of a login whose token could not be written. */
static struct sql_stmt ST_CSECRET_UNUSE =
    SQL_STMT("UPDATE identity_client_secrets SET num_uses = num_uses - 1 WHERE id = ?1");

/* Counts, in one UPDATE per client secret, the uses of every job of the batch whose secret has no
 * use limit and logs in more than once in it (the common case under load: one pipeline's secret);
 * those jobs are marked use_counted. The rest are counted one by one by insert_token. */
static void count_uses_together(struct db_conn *c, struct sql_job *jobs)
{
    struct token_job *batch = (struct token_job *)jobs;
    for (struct token_job *job = batch; job; job = next_token(job)) {
        const char *secret_id = job->token->client_secret_id;
        if (!secret_id[0] || job->use_counted)
            continue;
        int64_t n = 0;
        bool first = true; /* no earlier job has this secret: it was not tried yet */
        for (struct token_job *other = batch; other; other = next_token(other)) {
            if (strcmp(other->token->client_secret_id, secret_id) == 0) {
                first = first && (n > 0 || other == job);
                n++;
            }
        }
        if (!first || n < 2)
            continue;
        int64_t changes = 0;
        if (sql_exec(c, &ST_CSECRET_USE_MANY, ARGS(A_TEXT(secret_id), A_INT(n)), &changes, NULL) !=
                CF_OK ||
            changes != 1)
            continue; /* limited, revoked or gone: each job finds out on its own */
        for (struct token_job *other = batch; other; other = next_token(other)) {
            if (strcmp(other->token->client_secret_id, secret_id) == 0)
                other->use_counted = true;
        }
    }
}

/* Writes one token (and counts its client secret's use, unless the batch did) inside the batch's
 * transaction, under its savepoint. */
static enum cf_rc insert_token(struct db_conn *c, struct sql_job *queued, struct cf_err *err)
{
    struct token_job *job = (struct token_job *)queued;
    const struct cf_access_token *token = job->token;
    enum cf_rc rc = CF_OK;
    if (token->client_secret_id[0] && !job->use_counted)
        rc = sql_count_use_in(c, &ST_CSECRET_USE, &ST_CSECRET_USE_STATE, "client secret with id",
                              token->client_secret_id, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_TOKEN_INSERT,
                  ARGS(A_TEXT(token->id), A_TEXT(token->identity_id),
                       A_TEXT(token->client_secret_id), A_TEXT(token->auth_method),
                       A_BLOB(token->hash, sizeof(token->hash)), A_INT(token->ttl),
                       A_INT(token->max_ttl), A_INT(token->num_uses), A_INT(token->num_uses_limit),
                       A_INT(token->revoked ? 1 : 0), A_TEXT(token->trusted_ips),
                       A_INT(sql_time_or_now(token->created_at, cf_now_ms())),
                       A_INT(token->last_renewed_at)),
                  NULL, err);
    /* The row's only reference left to check is its identity: the client secret's use was
     * counted above, so a missing client secret keeps that message. */
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "access token with id '%s' already exists", token->id);
    else if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "identity with id '%s' not found", token->identity_id);
    return rc;
}

/* A token that could not be written: its savepoint came after the batch's count, so a use
 * counted there is given back by hand. */
static void token_undone(struct db_conn *c, struct sql_job *queued)
{
    struct token_job *job = (struct token_job *)queued;
    if (job->use_counted)
        sql_exec(c, &ST_CSECRET_UNUSE, ARGS(A_TEXT(job->token->client_secret_id)), NULL, NULL);
}

static const struct sql_batch_ops TOKEN_BATCH = {
    .prepare = count_uses_together,
    .run = insert_token,
    .undone = token_undone,
};

/* Logins arrive concurrently and each needs its token on disk before it answers. Rather than one
 * fsync per login, the first waiting thread writes every token queued so far in one transaction
 * while the next ones queue up behind it (group commit); each caller still gets its own result. */
enum cf_rc cf_store_token_create(struct cf_store *base, const struct cf_access_token *token,
                                 struct cf_err *err)
{
    struct sql_store *st = sql_store_of(base);
    enum cf_rc rc;

    rc = sql_require_uuid(token->id, "access token", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(token->client_secret_id, sizeof(token->client_secret_id),
                                    "client secret id", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(token->auth_method, sizeof(token->auth_method), "auth method",
                                    err);
    if (rc == CF_OK)
        rc = sql_require_terminated(token->trusted_ips, sizeof(token->trusted_ips),
                                    "access token trusted IP list", err);
    if (rc == CF_OK && !token->auth_method[0])
        rc = cf_err_set(err, CF_EINVAL, "access token has no auth method");
    if (rc == CF_OK && (token->num_uses < 0 || token->num_uses_limit < 0))
        rc = cf_err_set(err, CF_EINVAL, "access token use counts must not be negative");
    if (rc != CF_OK)
        return rc;

    struct token_job job = {.token = token};
    return sql_combine(st, &st->tokens, &TOKEN_BATCH, &job.job, err);
}

/* With the state of the client secret that issued the token (0 when it has none or it is gone,
 * 1 live, 2 revoked; and its expiry): one statement, two primary-key seeks, so that every
 * request sees a revoked, deleted or expired secret at once, on every node. */
static struct sql_stmt ST_TOKEN_BY_ID = SQL_STMT(
    "SELECT " TOKEN_COLS ", COALESCE((SELECT CASE WHEN s.revoked <> 0 THEN 2 ELSE 1 END"
    " FROM identity_client_secrets s WHERE s.id = identity_access_tokens.client_secret_id), 0),"
    " COALESCE((SELECT s.expires_at FROM identity_client_secrets s"
    " WHERE s.id = identity_access_tokens.client_secret_id), 0)"
    " FROM identity_access_tokens WHERE id = ?1");

/* On every request made with an access token: from the lookup cache (sqldb.h), else one seek in
 * the token table's primary key, with a statement prepared once per connection. */
enum cf_rc cf_store_token_get(struct cf_store *base, const char *token_id,
                              struct cf_access_token *out, struct cf_err *err)
{
    char key[SQL_CACHE_KEY_MAX];
    bool cacheable = sql_cache_key(key, sizeof(key), 't', token_id, NULL);

    memset(out, 0, sizeof(*out));
    if (cacheable && sql_cache_get_fixed(sql_store_of(base), key, out, sizeof(*out)))
        return CF_OK;
    enum cf_rc rc = sql_get_one(base, &ST_TOKEN_BY_ID, ARGS(A_TEXT(token_id)), read_token, out,
                                "access token with id", token_id, err);
    /* A token with a use limit is not cached: each use changes its count. */
    if (rc == CF_OK && cacheable && out->num_uses_limit == 0)
        sql_cache_put(sql_store_of(base), key, out, sizeof(*out));
    return rc;
}

static struct sql_stmt ST_TOKEN_USE = SQL_STMT(USE_ONE("identity_access_tokens"));

static struct sql_stmt ST_TOKEN_USE_STATE =
    SQL_STMT("SELECT revoked, num_uses, num_uses_limit FROM identity_access_tokens WHERE id = ?1");

enum cf_rc cf_store_token_use(struct cf_store *base, const char *token_id, struct cf_err *err)
{
    return sql_count_use(base, &ST_TOKEN_USE, &ST_TOKEN_USE_STATE, "access token with id", token_id,
                         err);
}

/* Runs a one-row update of token token_id; CF_ENOTFOUND when there is no such token. */
static enum cf_rc token_update(struct cf_store *base, struct sql_stmt *id,
                               const struct sq_arg *args, size_t n_args, const char *token_id,
                               struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, id, args, n_args, &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "access token with id '%s' not found", token_id);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_TOKEN_RENEW =
    SQL_STMT("UPDATE identity_access_tokens SET last_renewed_at = ?2 WHERE id = ?1");

enum cf_rc cf_store_token_renew(struct cf_store *base, const char *token_id, int64_t renewed_at,
                                struct cf_err *err)
{
    return token_update(base, &ST_TOKEN_RENEW,
                        ARGS(A_TEXT(token_id), A_INT(sql_time_or_now(renewed_at, cf_now_ms()))),
                        token_id, err);
}

static struct sql_stmt ST_TOKEN_REVOKE =
    SQL_STMT("UPDATE identity_access_tokens SET revoked = 1 WHERE id = ?1");

enum cf_rc cf_store_token_revoke(struct cf_store *base, const char *token_id, struct cf_err *err)
{
    return token_update(base, &ST_TOKEN_REVOKE, ARGS(A_TEXT(token_id)), token_id, err);
}

static struct sql_stmt ST_TOKEN_DELETE_BY_METHOD =
    SQL_STMT("DELETE FROM identity_access_tokens WHERE identity_id = ?1 AND auth_method = ?2");

static struct sql_stmt ST_UA_DELETE =
    SQL_STMT("DELETE FROM identity_universal_auths WHERE identity_id = ?1");

static struct sql_stmt ST_JWT_DELETE =
    SQL_STMT("DELETE FROM identity_jwt_auths WHERE identity_id = ?1");

static struct sql_stmt ST_K8S_DELETE =
    SQL_STMT("DELETE FROM identity_kubernetes_auths WHERE identity_id = ?1");

static struct sql_stmt ST_CSECRET_DELETE_ALL =
    SQL_STMT("DELETE FROM identity_client_secrets WHERE identity_id = ?1");

enum cf_rc cf_store_auth_method_remove(struct cf_store *base, const char *identity_id,
                                       const char *auth_method, struct cf_err *err)
{
    static const struct {
        const char *name;
        struct sql_stmt *remove;
    } methods[] = {
        {"universal-auth", &ST_UA_DELETE},
        {"jwt-auth", &ST_JWT_DELETE},
        {"kubernetes-auth", &ST_K8S_DELETE},
    };
    struct db_conn *c;
    int64_t changes = 0;
    size_t m = 0;
    while (m < CF_ARRAY_SIZE(methods) && strcmp(methods[m].name, auth_method) != 0)
        m++;
    if (m == CF_ARRAY_SIZE(methods))
        return cf_err_set(err, CF_EINVAL, "unknown auth method '%.32s'", auth_method);
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, methods[m].remove, ARGS(A_TEXT(identity_id)), &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "identity '%s' has no %s", identity_id, auth_method);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_TOKEN_DELETE_BY_METHOD, ARGS(A_TEXT(identity_id), A_TEXT(auth_method)),
                      NULL, err);
    /* Client secrets belong to universal auth: attached again, it starts with none. */
    if (rc == CF_OK && m == 0)
        rc = sql_exec(c, &ST_CSECRET_DELETE_ALL, ARGS(A_TEXT(identity_id)), NULL, err);
    return sql_tx_end(c, rc, err);
}

/* A token's limits as cf_token_cap_ttls (auth/token.h) reads them, ?2 being the server's maximum in
 * seconds: a max TTL of 0 or above it is the maximum, a TTL of 0 or above the max TTL is the max
 * TTL. */
#define MAX_TTL_CAPPED "(CASE WHEN max_ttl <= 0 OR max_ttl > ?2 THEN ?2 ELSE max_ttl END)"
#define TTL_CAPPED                                                                                 \
    "(CASE WHEN ttl <= 0 OR ttl > " MAX_TTL_CAPPED " THEN " MAX_TTL_CAPPED " ELSE ttl END)"

/* A token has ended when either deadline auth/token.c checks has passed: its max TTL from its
 * creation, or its TTL from its last renewal (its creation when never renewed). Revoked tokens go
 * by the same deadlines. */
#define TOKEN_ENDED                                                                                \
    "(created_at + " MAX_TTL_CAPPED " * 1000 <= ?1 OR (CASE WHEN last_renewed_at <> 0 THEN"        \
    " last_renewed_at ELSE created_at END) + " TTL_CAPPED " * 1000 <= ?1)"

/* The scan has no index to use (one would cost every login more than the scan costs a few times
 * an hour), so it runs as a read, outside the write lock: writers, logins included, never wait
 * for it. */
static struct sql_stmt ST_TOKENS_ENDED =
    SQL_STMT("SELECT id FROM identity_access_tokens WHERE " TOKEN_ENDED " LIMIT ?3");

/* One primary-key seek per token under the write lock; the condition is checked again, so that
 * only a token that has ended goes whatever happened since the scan. */
static struct sql_stmt ST_TOKEN_DELETE_ENDED =
    SQL_STMT("DELETE FROM identity_access_tokens WHERE id = ?3 AND " TOKEN_ENDED);

struct token_id {
    char id[CF_UUID_LEN];
};

static enum cf_rc read_token_id(const struct db_row *s, void *item)
{
    struct token_id *t = item;
    db_row_text(s, 0, t->id, sizeof(t->id));
    return db_row_status(s);
}

enum cf_rc cf_store_tokens_prune(struct cf_store *base, int64_t ended_before, int64_t max_ttl_s,
                                 size_t limit, int64_t *deleted, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct token_id), .read = read_token_id};
    struct db_conn *c;
    *deleted = 0;
    if (max_ttl_s <= 0 || limit == 0 || limit > INT64_MAX)
        return cf_err_set(err, CF_EINVAL,
                          "pruning access tokens needs a positive maximum TTL and batch size");
    enum cf_rc rc = sql_collect_all(
        base, &ST_TOKENS_ENDED, ARGS(A_INT(ended_before), A_INT(max_ttl_s), A_INT((int64_t)limit)),
        &col, err);
    if (rc == CF_OK && col.n > 0 && (rc = sql_tx_begin(base, &c, err)) == CF_OK) {
        const struct token_id *ids = col.items;
        for (size_t i = 0; rc == CF_OK && i < col.n; i++) {
            int64_t changes = 0;
            rc = sql_exec(c, &ST_TOKEN_DELETE_ENDED,
                          ARGS(A_INT(ended_before), A_INT(max_ttl_s), A_TEXT(ids[i].id)), &changes,
                          err);
            *deleted += changes;
        }
        rc = sql_tx_end(c, rc, err);
        if (rc != CF_OK)
            *deleted = 0; /* rolled back */
    }
    free(col.items);
    return rc;
}
