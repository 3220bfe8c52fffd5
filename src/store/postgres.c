/* The PostgreSQL driver of the store (sqldb.h; the operations are in the domain files), over libpq.
 *
 * Connections: one per thread that uses the store, opened on its first call and kept in a pthread
 * key (closed by the key's destructor when the thread exits), at most pool_size of them; a thread
 * beyond the pool gets CF_EUNAVAIL. Each connection prepares the cached statements on first use (?N
 * rewritten to $N) with explicit parameter types (int8, text, bytea) and reads results in binary. A
 * connection that broke (the server restarted, the network failed) is dropped and reopened on the
 * next call, so a node recovers by itself when the database returns; meanwhile every call fails at
 * once with CF_EUNAVAIL (503). Every session runs with statement_timeout and lock_timeout = the
 * store's timeout, and connect_timeout, so no request waits on the database longer than that.
 *
 * Writes: BEGIN, then a transaction-scoped advisory lock that every Coffer node takes before its
 * first statement, so writers across all nodes run one at a time, each reading what the previous
 * one committed (READ COMMITTED takes a new snapshot per statement, after the lock). Two nodes
 * editing one secret therefore make two versions; nothing is overwritten unseen, and batches stay
 * all-or-nothing. The audit chain's appends and archiving take a lock of their own (db_lock): they
 * write tables nothing else writes, and under the one lock every secret write waited for the audit
 * batches' commits to reach the disk, each holding it through a WAL flush. Reads run concurrently
 * outside transactions.
 *
 * Migrations: the files of src/store/migrations, read as PostgreSQL (BLOB is BYTEA, INTEGER is
 * BIGINT, WITHOUT ROWID dropped) plus a few additions that only PostgreSQL needs, applied in one
 * transaction under a session advisory lock, so nodes starting together apply them exactly once.
 *
 * Background jobs: job_lock takes a session advisory lock per job name on a connection of its own
 * that the store keeps for its lifetime; when the node dies, PostgreSQL ends the session and
 * releases the lock, and another node's next try takes it. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "store/postgres.h"
#include "store/sqldb.h"
#include "store/sqlite.h" /* the migrations */
#include "util/dynlib.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_POOL_SIZE 16
/* Advisory lock keys (two int4 keys: a class and an id); the class is 0x436f6672, "Cofr". */
#define LOCK_CLASS 1131374194
#define LOCK_WRITE 1
#define LOCK_MIGRATE 2
#define LOCK_JOB 3 /* with the job name's hash as the second key */
#define LOCK_AUDIT 4
#define MAX_JOBS 8

/* PostgreSQL type oids (server/catalog/pg_type_d.h, stable since forever). */
#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25

struct pg_store;

struct pg_conn {
    struct db_conn base; /* first */
    struct pg_store *st;
    PGconn *pg;
    bool in_tx; /* between pg_begin and pg_end: a lost session is not replaced until pg_end */
    bool prepared[SQL_STMT_MAX];
    struct pg_conn *prev, *next;
};

struct pg_store {
    struct sql_store sql; /* first */
    char *dsn;            /* the URI as given; never logged (it may hold a password) */
    char *shown;          /* the URI without its password, for messages */
    int timeout_ms;
    int pool_size;
    pthread_key_t key;
    bool key_created;
    pthread_mutex_t lock;  /* guards conns, n_conns */
    struct pg_conn *conns; /* every open connection */
    int n_conns;
    /* job_lock's own session, kept for the store's lifetime (its locks live as long as it) */
    pthread_mutex_t job_mutex;
    struct pg_conn job;
    char jobs_held[MAX_JOBS][32];
    int n_jobs_held;
};

static struct pg_store *pg_store_of(struct sql_store *st)
{
    return (struct pg_store *)st;
}

static struct pg_conn *pg_conn_of(struct db_conn *c)
{
    return (struct pg_conn *)c;
}

/* ---- errors ---- */

/* The first line of libpq's message (the rest repeats it with context). */
static void first_line(const char *msg, char *out, size_t size)
{
    cf_strlcpy(out, msg ? msg : "", size);
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = '\0';
}

static enum cf_rc unreachable(const struct pg_store *st, const char *why, struct cf_err *err)
{
    char line[160];
    first_line(why, line, sizeof(line));
    return cf_err_set(err, CF_EUNAVAIL, "the database at %s is unreachable: %s", st->shown, line);
}

/* Maps a failed result (or a broken connection when res is NULL) to a cf_rc by its SQLSTATE. The
 * primary message only: PostgreSQL's DETAIL repeats the values of the row. */
static enum cf_rc db_error(struct pg_conn *c, const PGresult *res, struct cf_err *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char msg[200];
    first_line(primary ? primary : PQerrorMessage(c->pg), msg, sizeof(msg));
    if (!state || PQstatus(c->pg) != CONNECTION_OK || strncmp(state, "08", 2) == 0 ||
        strncmp(state, "57P", 3) == 0)
        return unreachable(c->st, msg, err);
    if (strcmp(state, "23505") == 0)
        return cf_err_set(err, CF_EEXIST, "already exists (%s)", msg);
    if (strcmp(state, "23503") == 0)
        return cf_err_set(err, CF_ENOTFOUND, "a referenced row does not exist");
    if (strncmp(state, "23", 2) == 0)
        return cf_err_set(err, CF_EINVAL, "rejected by the database: %s", msg);
    if (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0)
        return cf_err_set(err, CF_EUNAVAIL, "the database did not answer within %d ms, try again",
                          c->st->timeout_ms);
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
        return cf_err_set(err, CF_EUNAVAIL, "the database is busy, try again");
    if (strcmp(state, "53300") == 0)
        return cf_err_set(err, CF_EUNAVAIL, "the database has no free connection, try again");
    return cf_err_set(err, CF_ESTORE, "database error: %s", msg);
}

/* ---- connections ---- */

/* PostgreSQL's notices (NOTICE, WARNING: "relation already exists, skipping") go to the debug log,
 * not to stderr. */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    char line[200];
    first_line(message, line, sizeof(line));
    cf_log_debug("postgres: %s", line);
}

/* Opens a session with the store's settings; the URI's own settings win over these defaults. */
static PGconn *connect_db(const struct pg_store *st)
{
    char timeout_s[16], options[128];
    snprintf(timeout_s, sizeof(timeout_s), "%d", (st->timeout_ms + 999) / 1000);
    snprintf(options, sizeof(options),
             "-c statement_timeout=%d -c lock_timeout=%d -c idle_in_transaction_session_timeout=%d",
             st->timeout_ms, st->timeout_ms, st->timeout_ms * 4);
    const char *const keys[] = {"connect_timeout",  "options",
                                "application_name", "keepalives_idle",
                                "keepalives_count", "keepalives_interval",
                                "dbname",           NULL};
    const char *const values[] = {timeout_s, options, "coffer", "10", "3", "5", st->dsn, NULL};
    PGconn *pg = PQconnectdbParams(keys, values, 1);
    if (pg)
        PQsetNoticeProcessor(pg, on_notice, NULL);
    return pg;
}

static void conn_unlink(struct pg_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->st->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->st->n_conns--;
}

static void conn_free(struct pg_conn *c)
{
    if (!c)
        return;
    PQfinish(c->pg);
    free(c);
}

static void conn_destructor(void *arg)
{
    struct pg_conn *c = arg;
    pthread_mutex_lock(&c->st->lock);
    conn_unlink(c);
    pthread_mutex_unlock(&c->st->lock);
    conn_free(c);
}

/* (Re)connects c->pg; its prepared statements are gone with the old session. */
static enum cf_rc conn_connect(struct pg_conn *c, struct cf_err *err)
{
    PQfinish(c->pg);
    memset(c->prepared, 0, sizeof(c->prepared));
    c->pg = connect_db(c->st);
    if (!c->pg)
        return cf_err_set(err, CF_ENOMEM, "out of memory connecting to the database");
    if (PQstatus(c->pg) != CONNECTION_OK)
        return unreachable(c->st, PQerrorMessage(c->pg), err);
    return CF_OK;
}

static enum cf_rc pg_conn_get(struct sql_store *base, struct db_conn **out, struct cf_err *err)
{
    struct pg_store *st = pg_store_of(base);
    struct pg_conn *c = pthread_getspecific(st->key);
    *out = NULL;
    if (!c) {
        pthread_mutex_lock(&st->lock);
        if (st->n_conns >= st->pool_size) {
            pthread_mutex_unlock(&st->lock);
            return cf_err_set(err, CF_EUNAVAIL,
                              "all %d database connections are in use (raise --db-pool-size)",
                              st->pool_size);
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
            pthread_mutex_unlock(&st->lock);
            return cf_err_set(err, CF_ENOMEM, "out of memory opening the database");
        }
        c->st = st;
        c->base.st = &st->sql;
        c->next = st->conns;
        if (st->conns)
            st->conns->prev = c;
        st->conns = c;
        st->n_conns++;
        pthread_mutex_unlock(&st->lock);
        if (pthread_setspecific(st->key, c) != 0) {
            conn_destructor(c);
            return cf_err_set(err, CF_ENOMEM, "out of memory opening the database");
        }
    }
    /* A session that broke is reopened here, at the start of a call, never inside a transaction:
     * what followed would run outside it. Inside one, the statements fail until pg_end. */
    if ((!c->pg || PQstatus(c->pg) != CONNECTION_OK) && !c->in_tx) {
        enum cf_rc rc = conn_connect(c, err);
        if (rc != CF_OK)
            return rc;
    }
    *out = &c->base;
    return CF_OK;
}

/* ---- running statements ---- */

static int64_t be_int(const unsigned char *p, int len)
{
    uint64_t v = 0;
    for (int i = 0; i < len; i++)
        v = v << 8 | p[i];
    /* sign-extend from len bytes */
    if (len > 0 && len < 8 && (p[0] & 0x80))
        v |= ~(uint64_t)0 << (8 * len);
    return (int64_t)v;
}

static int64_t pg_row_int64(const struct db_row *row, int i)
{
    const PGresult *res = row->handle;
    if (PQgetisnull(res, row->index, i))
        return 0;
    const unsigned char *v = (const unsigned char *)PQgetvalue(res, row->index, i);
    int len = PQgetlength(res, row->index, i);
    switch (PQftype(res, i)) {
    case OID_INT8:
    case OID_INT4:
    case OID_INT2:
    case OID_BOOL:
        return be_int(v, len);
    default: /* a text result */
        return strtoll((const char *)v, NULL, 10);
    }
}

static const void *pg_row_bytes(const struct db_row *row, int i, size_t *len)
{
    const PGresult *res = row->handle;
    if (PQgetisnull(res, row->index, i)) {
        *len = 0;
        return NULL;
    }
    *len = (size_t)PQgetlength(res, row->index, i);
    return PQgetvalue(res, row->index, i); /* NUL-terminated by libpq, also in binary */
}

static const char *pg_row_name(const struct db_row *row, int i)
{
    const char *name = PQfname(row->handle, i);
    return name ? name : "?";
}

static const struct db_row_ops pg_row_ops = {
    .int64 = pg_row_int64, .bytes = pg_row_bytes, .name = pg_row_name};

static bool result_ok(const PGresult *res)
{
    ExecStatusType status = PQresultStatus(res);
    return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

/* The result of the query just sent on c (the first failed one when it held several statements).
 * The server enforces statement_timeout; this is the backstop for a server that stopped answering
 * at all (hung, or its host gone): past the store's timeout and a second the session is dropped,
 * NULL returned and *timed_out set (the next call reconnects; the server rolls back what was open).
 */
static PGresult *await_result(struct pg_conn *c, bool *timed_out)
{
    int64_t deadline = cf_mono_us() / 1000 + c->st->timeout_ms + 1000;
    PGresult *kept = NULL;
    *timed_out = false;
    for (;;) {
        while (PQisBusy(c->pg)) {
            int64_t left = deadline - cf_mono_us() / 1000;
            if (left <= 0) {
                *timed_out = true;
                PQclear(kept);
                PQfinish(c->pg);
                c->pg = NULL;
                return NULL;
            }
            struct pollfd fd = {.fd = PQsocket(c->pg), .events = POLLIN};
            if (poll(&fd, 1, (int)left) < 0 && errno != EINTR)
                break;
            if (!PQconsumeInput(c->pg))
                break; /* the connection broke: PQgetResult reports it */
        }
        PGresult *res = PQgetResult(c->pg);
        if (!res)
            return kept;
        if (kept && !result_ok(kept)) {
            PQclear(res); /* the first failure is the one to report */
        } else {
            PQclear(kept);
            kept = res;
        }
        if (!result_ok(kept) && PQstatus(c->pg) != CONNECTION_OK)
            return kept; /* a broken session yields no end-of-results marker to wait for */
    }
}

/* A query sent (sent true) and its result awaited: CF_OK with *res (TUPLES_OK or COMMAND_OK), or
 * the mapped error. */
static enum cf_rc finish_query(struct pg_conn *c, bool sent, PGresult **res, struct cf_err *err)
{
    bool timed_out = false;
    *res = sent ? await_result(c, &timed_out) : NULL;
    if (timed_out)
        return cf_err_set(err, CF_EUNAVAIL, "the database at %s did not answer within %d ms",
                          c->st->shown, c->st->timeout_ms);
    if (*res && result_ok(*res))
        return CF_OK;
    enum cf_rc rc = db_error(c, *res, err);
    PQclear(*res);
    *res = NULL;
    return rc;
}

/* A statement's SQL with ?N parameters as $N (outside quoted literals). Caller frees. */
static char *dollar_params(const char *sql)
{
    size_t n = strlen(sql);
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    bool quoted = false;
    for (size_t i = 0, o = 0;; i++) {
        char ch = sql[i];
        if (ch == '\'')
            quoted = !quoted;
        out[o++] = (!quoted && ch == '?') ? '$' : ch;
        if (!ch)
            break;
    }
    return out;
}

/* n_args was checked against SQL_PARAMS_MAX by run_once. */
static void param_types(const struct sq_arg *args, size_t n_args, Oid types[SQL_PARAMS_MAX])
{
    if (n_args > SQL_PARAMS_MAX)
        CF_BUG("a statement with more parameters than SQL_PARAMS_MAX");
    for (size_t i = 0; i < n_args; i++)
        types[i] = args[i].type == 'i'                          ? OID_INT8
                   : args[i].type == 'b' || args[i].type == 'B' ? OID_BYTEA
                                                                : OID_TEXT;
}

static enum cf_rc prepare(struct pg_conn *c, int id, const char *sql, const struct sq_arg *args,
                          size_t n_args, struct cf_err *err)
{
    if (c->prepared[id])
        return CF_OK;
    Oid types[SQL_PARAMS_MAX];
    param_types(args, n_args, types);
    char name[16];
    snprintf(name, sizeof(name), "s%d", id);
    char *text = dollar_params(sql);
    if (!text)
        return cf_err_set(err, CF_ENOMEM, "out of memory preparing a statement");
    PGresult *res = NULL;
    enum cf_rc rc =
        finish_query(c, PQsendPrepare(c->pg, name, text, (int)n_args, types) == 1, &res, err);
    free(text);
    if (rc == CF_OK)
        c->prepared[id] = true;
    PQclear(res);
    return rc;
}

static enum cf_rc run_once(struct pg_conn *c, int id, const char *sql, const struct sq_arg *args,
                           size_t n_args, row_fn on_row, void *ctx, int64_t *count,
                           struct cf_err *err)
{
    const char *values[SQL_PARAMS_MAX];
    int lengths[SQL_PARAMS_MAX], formats[SQL_PARAMS_MAX];
    unsigned char ints[SQL_PARAMS_MAX][8];
    PGresult *res = NULL;
    enum cf_rc rc = CF_OK;

    rc = sql_params_check(n_args, err);
    if (rc != CF_OK)
        return rc;
    if (id >= 0) {
        rc = prepare(c, id, sql, args, n_args, err);
        if (rc != CF_OK)
            return rc;
    }
    for (size_t i = 0; i < n_args; i++) {
        const struct sq_arg *a = &args[i];
        values[i] = NULL;
        lengths[i] = 0;
        formats[i] = 1;
        switch (a->type) {
        case 'n':
            if (!a->text || !*a->text)
                break;
            /* fall through */
        case 't':
            values[i] = a->text;
            formats[i] = 0;
            break;
        case 'i':
            for (int b = 0; b < 8; b++)
                ints[i][b] = (unsigned char)((uint64_t)a->num >> (56 - 8 * b));
            values[i] = (const char *)ints[i];
            lengths[i] = 8;
            break;
        case 'B':
            if (a->len == 0)
                break;
            /* fall through */
        case 'b':
            values[i] = a->len ? a->blob : "";
            lengths[i] = (int)a->len;
            break;
        default:
            CF_BUG("unknown sq_arg type");
        }
    }
    char name[16];
    snprintf(name, sizeof(name), "s%d", id);
    bool sent;
    if (id < 0) {
        Oid types[SQL_PARAMS_MAX];
        param_types(args, n_args, types);
        char *text = dollar_params(sql);
        if (!text)
            return cf_err_set(err, CF_ENOMEM, "out of memory preparing a statement");
        sent = PQsendQueryParams(c->pg, text, (int)n_args, types, values, lengths, formats, 1) == 1;
        free(text);
    } else {
        sent = PQsendQueryPrepared(c->pg, name, (int)n_args, values, lengths, formats, 1) == 1;
    }
    rc = finish_query(c, sent, &res, err);
    if (rc != CF_OK)
        goto out;
    ExecStatusType status = PQresultStatus(res);
    int rows = PQntuples(res);
    struct cf_err fault = {0};
    struct db_row row = {.ops = &pg_row_ops, .handle = res, .fault = &fault};
    for (int r = 0; on_row && r < rows; r++) {
        row.index = r;
        rc = db_row_done(&row, on_row(&row, ctx), err);
        if (rc != CF_OK)
            goto out;
    }
    if (count)
        *count = on_row || status == PGRES_TUPLES_OK ? rows : strtoll(PQcmdTuples(res), NULL, 10);
out:
    PQclear(res);
    return rc;
}

/* A session can die unnoticed (the database restarted, a proxy dropped it): libpq learns it from
 * the first statement sent afterwards, which fails. Outside a transaction, when that first
 * statement is a read, it is sent once more on a new session, so that each worker thread does not
 * answer one request 503 after every outage. A write is not: it may have run before the session
 * broke. A timeout (no session left) is not retried either: it would double the wait. */
static bool worth_retrying(const struct pg_conn *c, enum cf_rc rc)
{
    return rc == CF_EUNAVAIL && !c->in_tx && c->pg && PQstatus(c->pg) != CONNECTION_OK;
}

static bool is_read(const char *sql)
{
    while (*sql == ' ' || *sql == '\n')
        sql++;
    return strncasecmp(sql, "SELECT", 6) == 0;
}

static enum cf_rc pg_run(struct db_conn *base, int id, const char *sql, const struct sq_arg *args,
                         size_t n_args, row_fn on_row, void *ctx, int64_t *count,
                         struct cf_err *err)
{
    struct pg_conn *c = pg_conn_of(base);
    enum cf_rc rc = run_once(c, id, sql, args, n_args, on_row, ctx, count, err);
    if (worth_retrying(c, rc) && is_read(sql) && conn_connect(c, err) == CF_OK)
        rc = run_once(c, id, sql, args, n_args, on_row, ctx, count, err);
    return rc;
}

/* A statement of the driver's own, without parameters or rows. */
static enum cf_rc exec_simple(struct pg_conn *c, const char *sql, struct cf_err *err)
{
    PGresult *res = NULL;
    enum cf_rc rc = finish_query(c, PQsendQuery(c->pg, sql) == 1, &res, err);
    PQclear(res);
    return rc;
}

/* ---- transactions ---- */

#define STR2(x) #x
#define STR(x) STR2(x)

static enum cf_rc pg_begin(struct db_conn *base, enum db_lock lock, struct cf_err *err)
{
    struct pg_conn *c = pg_conn_of(base);
    const char *begin =
        lock == DB_LOCK_AUDIT
            ? "BEGIN; SELECT pg_advisory_xact_lock(" STR(LOCK_CLASS) ", " STR(LOCK_AUDIT) ")"
            : "BEGIN; SELECT pg_advisory_xact_lock(" STR(LOCK_CLASS) ", " STR(LOCK_WRITE) ")";
    enum cf_rc rc = exec_simple(c, begin, err);
    /* Nothing has run yet: on a session that had died unnoticed, begin again on a new one. */
    if (worth_retrying(c, rc) && conn_connect(c, err) == CF_OK)
        rc = exec_simple(c, begin, err);
    if (rc != CF_OK && c->pg && PQstatus(c->pg) == CONNECTION_OK &&
        PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        exec_simple(c, "ROLLBACK", NULL);
    c->in_tx = rc == CF_OK;
    return rc;
}

static enum cf_rc pg_end(struct db_conn *base, enum cf_rc rc, struct cf_err *err)
{
    struct pg_conn *c = pg_conn_of(base);
    c->in_tx = false;
    if (rc == CF_OK)
        rc = exec_simple(c, "COMMIT", err);
    if (rc != CF_OK && c->pg && PQstatus(c->pg) == CONNECTION_OK &&
        PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        exec_simple(c, "ROLLBACK", NULL);
    return rc;
}

static enum cf_rc pg_snapshot_begin(struct db_conn *base, struct cf_err *err)
{
    struct pg_conn *c = pg_conn_of(base);
    static const char begin[] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    enum cf_rc rc = exec_simple(c, begin, err);
    if (worth_retrying(c, rc) && conn_connect(c, err) == CF_OK)
        rc = exec_simple(c, begin, err);
    c->in_tx = rc == CF_OK;
    return rc;
}

/* ---- background jobs ---- */

static uint32_t job_hash(const char *job)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)job; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h & 0x7fffffff;
}

static enum cf_rc pg_job_lock(struct sql_store *base, const char *job, bool *held,
                              struct cf_err *err)
{
    struct pg_store *st = pg_store_of(base);
    struct pg_conn *c = &st->job;
    PGresult *res = NULL;
    char sql[128];
    enum cf_rc rc = CF_OK;

    *held = false;
    pthread_mutex_lock(&st->job_mutex);
    /* the session may have died since (then every lock it held is gone): a round trip tells */
    if (c->pg && exec_simple(c, "SELECT 1", NULL) != CF_OK) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    if (!c->pg) {
        st->n_jobs_held = 0;
        rc = conn_connect(c, err);
        if (rc != CF_OK)
            goto out;
    }
    for (int i = 0; i < st->n_jobs_held; i++)
        *held |= strcmp(st->jobs_held[i], job) == 0;
    if (*held)
        goto out;
    snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%d, %d)", LOCK_CLASS,
             (int)job_hash(job));
    rc = finish_query(c, PQsendQuery(c->pg, sql) == 1, &res, err);
    if (rc != CF_OK)
        goto out;
    /* a text result: "t" or "f" */
    *held = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    if (*held && st->n_jobs_held < MAX_JOBS)
        cf_strlcpy(st->jobs_held[st->n_jobs_held++], job, sizeof(st->jobs_held[0]));
out:
    PQclear(res);
    pthread_mutex_unlock(&st->job_mutex);
    return rc;
}

/* ---- closing, migrations, opening ---- */

static void pg_close(struct sql_store *base)
{
    struct pg_store *st = pg_store_of(base);
    if (st->key_created) {
        pthread_key_delete(st->key);
        pthread_mutex_lock(&st->lock);
        while (st->conns) {
            struct pg_conn *c = st->conns;
            conn_unlink(c);
            conn_free(c);
        }
        pthread_mutex_unlock(&st->lock);
        pthread_mutex_destroy(&st->lock);
        PQfinish(st->job.pg);
        pthread_mutex_destroy(&st->job_mutex);
    }
    if (st->dsn) {
        sodium_memzero(st->dsn, strlen(st->dsn));
        free(st->dsn);
    }
    free(st->shown);
    free(st);
}

static void pg_pool_use(struct sql_store *base, int *open, int *size)
{
    struct pg_store *st = pg_store_of(base);
    pthread_mutex_lock(&st->lock);
    *open = st->n_conns;
    *size = st->pool_size;
    pthread_mutex_unlock(&st->lock);
}

static const struct db_driver pg_driver = {
    .name = "postgres",
    .conn_get = pg_conn_get,
    .run = pg_run,
    .begin = pg_begin,
    .end = pg_end,
    .job_lock = pg_job_lock,
    .snapshot_begin = pg_snapshot_begin,
    .snapshot_end = pg_end,
    .pool_use = pg_pool_use,
    .after_copy_sql = "SELECT setval(pg_get_serial_sequence('identity_client_secrets', 'rowid'),"
                      " COALESCE(MAX(rowid), 0) + 1, false) FROM identity_client_secrets",
    .close = pg_close,
};

/* One statement-level trigger bumping the content counter after any change to table. */
#define PG_CONTENT_TRIGGER(table)                                                                  \
    " CREATE TRIGGER " table "_content AFTER INSERT OR UPDATE OR DELETE ON " table                 \
    " FOR EACH STATEMENT EXECUTE FUNCTION coffer_bump_content();"
/* What PostgreSQL needs beyond a migration's shared SQL, run right after it. */
static const char *const pg_additions[] = {
    /* the list of client secrets orders ties of created_at by insertion, as SQLite's rowid does */
    [2] = "ALTER TABLE identity_client_secrets ADD COLUMN rowid BIGSERIAL",
    /* the triggers of the lookup cache's change counter, as sqlite.c's sq_additions: one bump per
     * statement that may change a cached row */
    [13] = "CREATE FUNCTION coffer_bump_lookups() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
           " UPDATE change_counters SET value = value + 1 WHERE name = 'lookups'; RETURN NULL;"
           " END $$;"
           " CREATE TRIGGER projects_lookups AFTER INSERT OR UPDATE OR DELETE ON projects"
           " FOR EACH STATEMENT EXECUTE FUNCTION coffer_bump_lookups();"
           " CREATE TRIGGER environments_lookups AFTER INSERT OR UPDATE OR DELETE ON environments"
           " FOR EACH STATEMENT EXECUTE FUNCTION coffer_bump_lookups();"
           " CREATE TRIGGER folders_lookups AFTER INSERT OR UPDATE OR DELETE ON folders"
           " FOR EACH STATEMENT EXECUTE FUNCTION coffer_bump_lookups();"
           " CREATE TRIGGER memberships_lookups AFTER INSERT OR UPDATE OR DELETE ON"
           " identity_memberships FOR EACH STATEMENT EXECUTE FUNCTION coffer_bump_lookups();"
           " CREATE TRIGGER identities_lookups AFTER DELETE ON identities"
           " FOR EACH STATEMENT EXECUTE FUNCTION coffer_bump_lookups();"
           " CREATE TRIGGER tokens_lookups AFTER UPDATE OF revoked, last_renewed_at OR DELETE ON"
           " identity_access_tokens FOR EACH STATEMENT EXECUTE FUNCTION coffer_bump_lookups();"
           " CREATE TRIGGER client_secrets_lookups AFTER UPDATE OF revoked, expires_at OR DELETE"
           " ON identity_client_secrets FOR EACH STATEMENT EXECUTE FUNCTION"
           " coffer_bump_lookups()",
    /* the triggers of the list cache's content counter, as sqlite.c's sq_additions */
    [15] = "CREATE FUNCTION coffer_bump_content() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
           " UPDATE change_counters SET value = value + 1 WHERE name = 'content'; RETURN NULL;"
           " END $$;" PG_CONTENT_TRIGGER("secrets") PG_CONTENT_TRIGGER("secret_versions")
               PG_CONTENT_TRIGGER("secret_imports") PG_CONTENT_TRIGGER("tags")
                   PG_CONTENT_TRIGGER("folders") PG_CONTENT_TRIGGER("environments")
                       PG_CONTENT_TRIGGER("projects"),
    /* users, as sqlite.c's sq_additions */
    [17] = "CREATE TRIGGER users_lookups AFTER UPDATE OR DELETE ON users"
           " FOR EACH STATEMENT EXECUTE FUNCTION coffer_bump_lookups();"
           " CREATE TRIGGER user_memberships_lookups AFTER INSERT OR UPDATE OR DELETE ON"
           " user_memberships FOR EACH STATEMENT EXECUTE FUNCTION coffer_bump_lookups();"
           " CREATE TRIGGER user_sessions_lookups AFTER DELETE ON user_sessions"
           " FOR EACH STATEMENT EXECUTE FUNCTION coffer_bump_lookups();"
           " CREATE TRIGGER pats_lookups AFTER UPDATE OF revoked OR DELETE ON"
           " personal_access_tokens FOR EACH STATEMENT EXECUTE FUNCTION coffer_bump_lookups()",
    /* groups, as sqlite.c's sq_additions */
    [19] = "CREATE TRIGGER user_groups_lookups AFTER DELETE ON user_groups"
           " FOR EACH STATEMENT EXECUTE FUNCTION coffer_bump_lookups();"
           " CREATE TRIGGER group_members_lookups AFTER INSERT OR DELETE ON user_group_members"
           " FOR EACH STATEMENT EXECUTE FUNCTION coffer_bump_lookups();"
           " CREATE TRIGGER group_memberships_lookups AFTER INSERT OR UPDATE OR DELETE ON"
           " group_memberships FOR EACH STATEMENT EXECUTE FUNCTION coffer_bump_lookups()",
    /* access requests, as sqlite.c's sq_additions */
    [23] = "CREATE TRIGGER access_requests_lookups AFTER UPDATE OF status, ends_at OR DELETE ON"
           " access_requests FOR EACH STATEMENT EXECUTE FUNCTION coffer_bump_lookups()",
    /* the admin token's meta rows, as sqlite.c's sq_additions (row triggers: only those rows) */
    [24] =
        "CREATE OR REPLACE TRIGGER meta_write_lookups AFTER INSERT OR UPDATE ON meta FOR EACH ROW"
        " WHEN (NEW.name IN ('admin_token_hash', 'admin_token_disabled'))"
        " EXECUTE FUNCTION coffer_bump_lookups();"
        " CREATE OR REPLACE TRIGGER meta_delete_lookups AFTER DELETE ON meta FOR EACH ROW"
        " WHEN (OLD.name IN ('admin_token_hash', 'admin_token_disabled'))"
        " EXECUTE FUNCTION coffer_bump_lookups()",
};
#undef PG_CONTENT_TRIGGER

static bool is_word_char(char ch)
{
    return ch == '_' || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
           (ch >= '0' && ch <= '9');
}

/* A migration file read as PostgreSQL: BLOB -> BYTEA, INTEGER -> BIGINT, no WITHOUT ROWID. The
 * words are replaced whole and only in upper case, as the files write their types. Caller frees. */
static char *pg_dialect(const char *sql)
{
    static const struct {
        const char *from, *to;
    } words[] = {{"BLOB", "BYTEA"}, {"INTEGER", "BIGINT"}, {" WITHOUT ROWID", ""}};
    size_t cap = strlen(sql) * 2 + 1;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t o = 0;
    for (const char *p = sql; *p;) {
        bool replaced = false;
        for (size_t w = 0; w < CF_ARRAY_SIZE(words) && !replaced; w++) {
            size_t len = strlen(words[w].from);
            if (strncmp(p, words[w].from, len) != 0)
                continue;
            bool starts = words[w].from[0] == ' ' || p == sql || !is_word_char(p[-1]);
            if (!starts || is_word_char(p[len])) /* p[len] is at most the terminating NUL */
                continue;
            size_t to = strlen(words[w].to);
            memcpy(out + o, words[w].to, to);
            o += to;
            p += len;
            replaced = true;
        }
        if (!replaced)
            out[o++] = *p++;
    }
    out[o] = '\0';
    return out;
}

static enum cf_rc migrate(struct pg_store *st, struct pg_conn *c, struct cf_err *err)
{
    const int known = (int)cf_store_migrations_n;
    int64_t current = 0;
    enum cf_rc rc;

    /* one node at a time; the others wait here, then find the migrations applied */
    rc = exec_simple(c, "SELECT pg_advisory_lock(" STR(LOCK_CLASS) ", " STR(LOCK_MIGRATE) ")", err);
    if (rc != CF_OK)
        return rc;
    rc = exec_simple(c,
                     "BEGIN; CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY"
                     " KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
                     err);
    if (rc == CF_OK)
        rc = sql_migration_version(&c->base, &current, err);
    if (rc == CF_OK && current > known)
        rc = cf_err_set(err, CF_ESTORE,
                        "database %s has schema version %lld but this coffer knows versions up to "
                        "%d: run a newer coffer",
                        st->shown, (long long)current, known);
    for (size_t i = 0; i < cf_store_migrations_n && rc == CF_OK; i++) {
        const struct cf_store_migration *m = &cf_store_migrations[i];
        if (m->version <= current)
            continue;
        char *sql = pg_dialect(m->sql);
        if (!sql) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory applying migrations");
            break;
        }
        rc = exec_simple(c, sql, err);
        free(sql);
        size_t n_add = CF_ARRAY_SIZE(pg_additions);
        if (rc == CF_OK && (size_t)m->version < n_add && pg_additions[m->version])
            rc = exec_simple(c, pg_additions[m->version], err);
        if (rc != CF_OK) {
            if (rc != CF_EUNAVAIL)
                rc = cf_err_set(err, CF_ESTORE, "migration %04d_%s failed: %s", m->version, m->name,
                                err->msg);
            break;
        }
        rc = sql_migration_record(&c->base, m->version, m->name, err);
        if (rc == CF_OK)
            cf_log_info("applied database migration %04d_%s", m->version, m->name);
    }
    rc = pg_end(&c->base, rc, err);
    exec_simple(c, "SELECT pg_advisory_unlock(" STR(LOCK_CLASS) ", " STR(LOCK_MIGRATE) ")", NULL);
    return rc;
}

enum cf_rc cf_postgres_open(const char *dsn, int timeout_ms, int pool_size, struct cf_store **out,
                            struct cf_err *err)
{
    struct pg_store *st;
    struct db_conn *c;
    enum cf_rc rc;

    *out = NULL;
    /* libpq is loaded here, not at the program's start (util/dynlib.h) */
    rc = cf_dynlib_load(&cf_lib_pq, err);
    if (rc != CF_OK)
        return rc;
    st = calloc(1, sizeof(*st));
    if (!st)
        return cf_err_set(err, CF_ENOMEM, "out of memory opening the database");
    st->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
    st->pool_size = pool_size > 0 ? pool_size : DEFAULT_POOL_SIZE;
    st->job.st = st;
    st->job.base.st = &st->sql;
    st->dsn = strdup(dsn);
    st->shown = malloc(strlen(dsn) + 16);
    if (st->shown)
        cf_store_dsn_shown(dsn, st->shown, strlen(dsn) + 16);
    if (!st->dsn || !st->shown) {
        free(st->dsn);
        free(st->shown);
        free(st);
        return cf_err_set(err, CF_ENOMEM, "out of memory opening the database");
    }
    rc = sql_store_init(&st->sql, &pg_driver, err);
    if (rc != CF_OK) {
        pg_close(&st->sql);
        return rc;
    }
    if (pthread_mutex_init(&st->lock, NULL) != 0 || pthread_mutex_init(&st->job_mutex, NULL) != 0 ||
        pthread_key_create(&st->key, conn_destructor) != 0) {
        sql_store_release(&st->sql);
        free(st->dsn);
        free(st->shown);
        free(st);
        return cf_err_set(err, CF_ESTORE, "cannot create the database's locks");
    }
    st->key_created = true;
    rc = pg_conn_get(&st->sql, &c, err);
    if (rc == CF_OK)
        rc = migrate(st, pg_conn_of(c), err);
    if (rc != CF_OK) {
        cf_store_close(&st->sql.base);
        return rc;
    }
    *out = &st->sql.base;
    return CF_OK;
}
