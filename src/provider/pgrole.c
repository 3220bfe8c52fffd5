/* PostgreSQL logins as rotated credentials (see pgrole.h): sessions opened through libpq with the
 * connection's settings, the two-role rotator and the connection check. */
#include "provider/pgrole.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "util/buf.h"
#include "util/dynlib.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

/* The CA bundle verify-full trusts when the connection names no certificate (Debian's). */
#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
/* libpq's message, as much of it as an error message keeps. */
#define LIBPQ_MSG_MAX 150

static const char password_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* What a session needs from the connection's credentials (borrowed strings). */
struct pg_target {
    const char *host;
    char port[8];
    const char *database;
    const char *username;
    const char *password;
    const char *ca_pem; /* NULL: none given */
    const char *sslmode;
};

static const char *cred_string(const json_t *credentials, const char *name)
{
    const char *value = json_string_value(json_object_get(credentials, name));
    return value && *value ? value : NULL;
}

static enum cf_rc target_of(const struct cf_provider_conn *conn, struct pg_target *t,
                            struct cf_err *err)
{
    const json_t *c = conn->credentials;
    memset(t, 0, sizeof(*t));
    t->host = cred_string(c, "host");
    t->database = cred_string(c, "database");
    t->username = cred_string(c, "username");
    t->password = cred_string(c, "password");
    t->ca_pem = cred_string(c, "sslCertificate");
    const json_t *port = json_object_get(c, "port");
    if (json_is_integer(port) && json_integer_value(port) > 0 && json_integer_value(port) < 65536)
        snprintf(t->port, sizeof(t->port), "%d", (int)json_integer_value(port));
    else if (json_is_string(port) && json_string_length(port) < sizeof(t->port))
        cf_strlcpy(t->port, json_string_value(port), sizeof(t->port));
    if (!t->host || !t->port[0] || !t->database || !t->username || !t->password)
        return cf_err_set(err, CF_EINVAL,
                          "the postgres connection needs host, port, database, username and "
                          "password");
    if (!json_is_true(json_object_get(c, "sslEnabled")))
        t->sslmode = "prefer";
    else if (json_is_false(json_object_get(c, "sslRejectUnauthorized")))
        t->sslmode = "require";
    else
        t->sslmode = "verify-full";
    return CF_OK;
}

/* libpq's message on one line, cut to LIBPQ_MSG_MAX (libpq never quotes a password). */
static void one_line(const char *text, char out[LIBPQ_MSG_MAX + 1])
{
    size_t n = 0;
    bool space = false;
    for (const char *c = text ? text : ""; *c && n < LIBPQ_MSG_MAX; c++) {
        if ((unsigned char)*c < 0x20) {
            space = n > 0;
            continue;
        }
        if (space && n < LIBPQ_MSG_MAX)
            out[n++] = ' ';
        space = false;
        if (n < LIBPQ_MSG_MAX)
            out[n++] = *c;
    }
    out[n] = '\0';
}

/* The failure of a session that did not open: the server refused the login (CF_EUNAUTH), the
 * database does not exist (CF_ENOTFOUND), or it could not be reached or spoken to (CF_EIO). libpq
 * gives no code for these, only its message. */
static enum cf_rc connect_error(const struct pg_target *t, const char *user, PGconn *pg,
                                struct cf_err *err)
{
    char msg[LIBPQ_MSG_MAX + 1];
    const char *text = pg ? PQerrorMessage(pg) : "out of memory";
    one_line(text, msg);
    enum cf_rc rc = CF_EIO;
    if (strstr(text, "authentication failed") || strstr(text, "no password supplied") ||
        strstr(text, "pg_hba.conf") || (strstr(text, "role \"") && strstr(text, "does not exist")))
        rc = CF_EUNAUTH;
    else if (strstr(text, "database \"") && strstr(text, "does not exist"))
        rc = CF_ENOTFOUND;
    return cf_err_set(err, rc, "postgresql at \"%.64s\" port %s, login \"%.63s\": %s", t->host,
                      t->port, user, msg);
}

/* Opens a session at t as user with password (the connection's own login when user is NULL). */
static enum cf_rc open_session(const struct pg_target *t, const char *user, const char *password,
                               PGconn **out, struct cf_err *err)
{
    *out = NULL;
    char timeout_s[16], options[128], ca_path[256];
    snprintf(timeout_s, sizeof(timeout_s), "%d", CF_PG_CONNECT_TIMEOUT_S);
    snprintf(options, sizeof(options), "-c statement_timeout=%d -c lock_timeout=%d",
             CF_PG_STATEMENT_TIMEOUT_MS, CF_PG_STATEMENT_TIMEOUT_MS);
    if (!user) {
        user = t->username;
        password = t->password;
    }
    enum cf_rc rc = cf_dynlib_load(&cf_lib_pq, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_provider_ca_file(t->ca_pem, ca_path, sizeof(ca_path), err);
    if (rc != CF_OK)
        return rc;
    const char *ca = ca_path[0]                               ? ca_path
                     : strcmp(t->sslmode, "verify-full") == 0 ? SYSTEM_CA_BUNDLE
                                                              : NULL;
    /* keywords and values, never a conninfo string: the password cannot be parsed into anything
     * else, and libpq never repeats it in a message; expand_dbname 0 keeps the database a name */
    const char *const keys[] = {"host",     "port",
                                "dbname",   "user",
                                "password", "connect_timeout",
                                "options",  "application_name",
                                "sslmode",  "sslrootcert",
                                NULL};
    const char *const values[] = {t->host, t->port,  t->database, user, password, timeout_s,
                                  options, "coffer", t->sslmode,  ca,   NULL};
    PGconn *pg = PQconnectdbParams(keys, values, 0);
    if (ca_path[0])
        unlink(ca_path);
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        rc = connect_error(t, user, pg, err);
        PQfinish(pg);
        return rc;
    }
    *out = pg;
    return CF_OK;
}

/* The failure of a statement: a missing privilege (CF_EFORBIDDEN), a role that does not exist
 * (CF_ENOTFOUND), anything else CF_EIO; the server's primary message, which for the statements
 * sent here never quotes the statement. */
static enum cf_rc sql_error(PGconn *pg, PGresult *res, const char *doing, struct cf_err *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char msg[LIBPQ_MSG_MAX + 1];
    one_line(primary ? primary : PQerrorMessage(pg), msg);
    enum cf_rc rc = CF_EIO;
    if (state && strcmp(state, "42501") == 0)
        rc = CF_EFORBIDDEN;
    else if (state && strcmp(state, "42704") == 0)
        rc = CF_ENOTFOUND;
    return cf_err_set(err, rc, "postgresql: %s: %s", doing, msg);
}

/* One text parameter, one row expected or none: *found, and the first column in value. */
static enum cf_rc query_one(PGconn *pg, const char *sql, const char *param, bool *found,
                            char *value, size_t size, const char *doing, struct cf_err *err)
{
    PGresult *res =
        PQexecParams(pg, sql, param ? 1 : 0, NULL, param ? &param : NULL, NULL, NULL, 0);
    enum cf_rc rc = CF_OK;
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = sql_error(pg, res, doing, err);
    *found = rc == CF_OK && PQntuples(res) > 0;
    if (*found && value)
        cf_strlcpy(value, PQgetvalue(res, 0, 0), size);
    PQclear(res);
    return rc;
}

static enum cf_rc run_statement(PGconn *pg, const char *sql, const char *doing, struct cf_err *err)
{
    PGresult *res = PQexec(pg, sql);
    /* a list of statements answers with its last one's result, which may be a SELECT */
    ExecStatusType status = PQresultStatus(res);
    enum cf_rc rc = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK
                        ? CF_OK
                        : sql_error(pg, res, doing, err);
    PQclear(res);
    return rc;
}

/* ---- parameters ---- */

static enum cf_rc check_role_name(const json_t *params, const char *name, const char **out,
                                  struct cf_err *err)
{
    char field[CF_ERR_FIELD_MAX];
    snprintf(field, sizeof(field), "parameters.%s", name);
    const json_t *v = json_object_get(params, name);
    *out = NULL;
    if (!v)
        return cf_err_field(err, CF_EVALIDATION, field, "%s is required", field);
    if (!json_is_string(v) || json_string_length(v) == 0)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: a role name is expected", field);
    if (json_string_length(v) > CF_PG_ROLE_MAX)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: at most %d bytes (PostgreSQL's limit)",
                            field, CF_PG_ROLE_MAX);
    const char *text = json_string_value(v);
    for (size_t i = 0; i < json_string_length(v); i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            return cf_err_field(err, CF_EVALIDATION, field, "%s: must not hold control characters",
                                field);
    *out = text;
    return CF_OK;
}

/* The two roles of params; CF_EVALIDATION naming the field that is wrong. */
static enum cf_rc roles_of(const json_t *params, const char **role1, const char **role2,
                           struct cf_err *err)
{
    if (!json_is_object(params))
        return cf_err_field(err, CF_EVALIDATION, "parameters",
                            "parameters: an object {\"username1\", \"username2\"} is expected");
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)params, key, value)
    {
        if (strcmp(key, "username1") != 0 && strcmp(key, "username2") != 0)
            return cf_err_field(err, CF_EVALIDATION, "parameters",
                                "parameters.%.48s: not a parameter of postgres-credentials", key);
    }
    enum cf_rc rc = check_role_name(params, "username1", role1, err);
    if (rc == CF_OK)
        rc = check_role_name(params, "username2", role2, err);
    if (rc == CF_OK && strcmp(*role1, *role2) == 0)
        rc = cf_err_field(err, CF_EVALIDATION, "parameters.username2",
                          "parameters.username2: must name a role other than username1 (the two "
                          "roles alternate)");
    return rc;
}

static enum cf_rc config_check(const json_t *params, struct cf_err *err)
{
    const char *role1, *role2;
    return roles_of(params, &role1, &role2, err);
}

/* The role issue sets a password on: the one not in use, username1 first. */
static const char *idle_role(const char *role1, const char *role2, const char *current)
{
    return current && strcmp(current, role1) == 0 ? role2 : role1;
}

/* CF_ENOTFOUND naming role unless it exists. */
static enum cf_rc role_exists(PGconn *pg, const char *role, struct cf_err *err)
{
    bool found = false;
    enum cf_rc rc = query_one(pg, "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", role,
                              &found, NULL, 0, "reading the roles", err);
    if (rc == CF_OK && !found)
        rc = cf_err_set(err, CF_ENOTFOUND, "postgresql: role \"%s\" does not exist", role);
    return rc;
}

/* ALTER ROLE role WITH PASSWORD <verifier or NULL> [VALID UNTIL until]: identifiers and literals
 * escaped by libpq; the statement, which holds the verifier, is wiped. */
static enum cf_rc alter_password(PGconn *pg, const char *login, const char *role,
                                 const char *password, const char *valid_until, struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    char *ident = PQescapeIdentifier(pg, role, strlen(role));
    char *verifier = NULL, *verifier_literal = NULL, *until_literal = NULL;
    struct cf_buf sql;
    cf_buf_init(&sql, 4096);
    if (password) {
        verifier = PQencryptPasswordConn(pg, password, role, "scram-sha-256");
        verifier_literal = verifier ? PQescapeLiteral(pg, verifier, strlen(verifier)) : NULL;
    }
    if (valid_until)
        until_literal = PQescapeLiteral(pg, valid_until, strlen(valid_until));
    if (!ident || (password && !verifier_literal) || (valid_until && !until_literal)) {
        rc = cf_err_set(err, CF_ENOMEM, "postgresql: cannot prepare the password of \"%s\"", role);
        goto out;
    }
    rc = cf_buf_printf(&sql, "ALTER ROLE %s WITH PASSWORD %s", ident,
                       verifier_literal ? verifier_literal : "NULL");
    if (rc == CF_OK && until_literal)
        rc = cf_buf_printf(&sql, " VALID UNTIL %s", until_literal);
    if (rc == CF_OK)
        rc = cf_buf_append(&sql, "", 1);
    if (rc != CF_OK) {
        rc = cf_err_set(err, rc, "postgresql: cannot prepare the password of \"%s\"", role);
        goto out;
    }
    char doing[160];
    snprintf(doing, sizeof(doing), "setting the password of role \"%s\"", role);
    rc = run_statement(pg, sql.data, doing, err);
    if (rc == CF_EFORBIDDEN)
        cf_err_set(
            err, rc,
            "postgresql: login \"%.63s\" may not change the password of role \"%s\": it needs "
            "CREATEROLE (and, from PostgreSQL 16, ADMIN OPTION on the role)",
            login, role);
    else if (rc == CF_ENOTFOUND)
        cf_err_set(err, rc, "postgresql: role \"%s\" does not exist", role);
out:
    if (verifier) {
        sodium_memzero(verifier, strlen(verifier));
        PQfreemem(verifier);
    }
    if (verifier_literal) {
        sodium_memzero(verifier_literal, strlen(verifier_literal));
        PQfreemem(verifier_literal);
    }
    PQfreemem(until_literal);
    PQfreemem(ident);
    cf_buf_release_wipe(&sql);
    return rc;
}

/* A new password: CF_PG_PASSWORD_LEN characters of [A-Za-z0-9] (5.95 bits each). */
static enum cf_rc new_password(char **out, struct cf_err *err)
{
    char *password = malloc(CF_PG_PASSWORD_LEN + 1);
    if (!password)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; i < CF_PG_PASSWORD_LEN; i++)
        password[i] = password_alphabet[randombytes_uniform(sizeof(password_alphabet) - 1)];
    password[CF_PG_PASSWORD_LEN] = '\0';
    *out = password;
    return CF_OK;
}

/* The wall clock, as PostgreSQL's server sees it (not Coffer's test clock). */
static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum cf_rc pg_issue(const struct cf_provider_conn *conn, const json_t *params,
                           const struct cf_rotation_ref *ref, struct cf_rotated_cred *out,
                           struct cf_err *err)
{
    const char *role1, *role2;
    struct pg_target t;
    PGconn *pg = NULL;
    char *password = NULL;
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = roles_of(params, &role1, &role2, err);
    if (rc == CF_OK)
        rc = target_of(conn, &t, err);
    if (rc == CF_OK)
        rc = open_session(&t, NULL, NULL, &pg, err);
    /* both roles: the one issued now and the one that will be issued next time */
    if (rc == CF_OK)
        rc = role_exists(pg, role1, err);
    if (rc == CF_OK)
        rc = role_exists(pg, role2, err);
    if (rc != CF_OK)
        goto out;
    const char *role = idle_role(role1, role2, ref ? ref->current : NULL);
    /* Always set VALID UNTIL: an earlier rotation's date would otherwise stay on the role and end
     * the new password early. With a lifetime, the password dies by itself if Coffer never comes
     * back to rotate it. */
    char until[CF_TIME_RFC3339_LEN] = "infinity";
    int64_t lifetime_ms = ref ? ref->lifetime_ms : 0;
    if (lifetime_ms > 0)
        cf_time_format(wall_ms() + lifetime_ms, until);
    rc = new_password(&password, err);
    if (rc == CF_OK)
        rc = alter_password(pg, t.username, role, password, until, err);
    if (rc != CF_OK)
        goto out;
    cf_strlcpy(out->id, role, sizeof(out->id));
    out->expires_at = lifetime_ms > 0 ? cf_now_ms() + lifetime_ms : 0;
    out->outputs = json_pack("{s:s, s:s}", "username", role, "password", password);
    if (!out->outputs) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    out->secret = password;
    out->secret_len = CF_PG_PASSWORD_LEN;
    password = NULL;
out:
    if (password) {
        sodium_memzero(password, CF_PG_PASSWORD_LEN);
        free(password);
    }
    if (rc != CF_OK)
        cf_rotated_cred_release(out);
    PQfinish(pg);
    return rc;
}

/* A fresh login as the issued role with its new password: SELECT current_user names it. */
static enum cf_rc pg_verify(const struct cf_provider_conn *conn, const json_t *params,
                            const struct cf_rotated_cred *cred, struct cf_err *err)
{
    const char *role1, *role2;
    struct pg_target t;
    PGconn *pg = NULL;
    char user[CF_PG_ROLE_MAX + 1] = "";
    bool found = false;
    enum cf_rc rc = roles_of(params, &role1, &role2, err);
    if (rc == CF_OK && strcmp(cred->id, role1) != 0 && strcmp(cred->id, role2) != 0)
        rc = cf_err_set(err, CF_EINVAL, "postgresql: \"%.63s\" is not one of the rotation's roles",
                        cred->id);
    if (rc == CF_OK && !cred->secret)
        rc = cf_err_set(err, CF_EINVAL, "postgresql: no password to verify for \"%s\"", cred->id);
    if (rc == CF_OK)
        rc = target_of(conn, &t, err);
    if (rc == CF_OK)
        rc = open_session(&t, cred->id, cred->secret, &pg, err);
    if (rc == CF_OK)
        rc = query_one(pg, "SELECT current_user", NULL, &found, user, sizeof(user),
                       "logging in with the new password", err);
    if (rc == CF_OK && (!found || strcmp(user, cred->id) != 0))
        rc = cf_err_set(err, CF_EUNAUTH, "postgresql: the login as \"%s\" answered as \"%s\"",
                        cred->id, user);
    PQfinish(pg);
    return rc;
}

/* PASSWORD NULL: no password logs in as id any more, and doing it again changes nothing. */
static enum cf_rc pg_revoke(const struct cf_provider_conn *conn, const json_t *params,
                            const struct cf_rotation_ref *ref, const char *id, struct cf_err *err)
{
    (void)ref;
    const char *role1, *role2;
    struct pg_target t;
    PGconn *pg = NULL;
    enum cf_rc rc = roles_of(params, &role1, &role2, err);
    /* only the two roles of the rotation: an id from anywhere else is never disabled */
    if (rc == CF_OK && (!id || (strcmp(id, role1) != 0 && strcmp(id, role2) != 0)))
        rc = cf_err_set(err, CF_EINVAL, "postgresql: \"%.63s\" is not one of the rotation's roles",
                        id ? id : "");
    if (rc == CF_OK)
        rc = target_of(conn, &t, err);
    if (rc == CF_OK)
        rc = open_session(&t, NULL, NULL, &pg, err);
    if (rc == CF_OK)
        rc = alter_password(pg, t.username, id, NULL, NULL, err);
    PQfinish(pg);
    return rc;
}

/* A role name in double quotes as PostgreSQL would read it, for a plan's text only (nothing here
 * is sent to a server). */
static void display_ident(const char *role, char *out, size_t size)
{
    size_t n = 0;
    if (size < 3)
        return;
    out[n++] = '"';
    for (const char *c = role; *c && n + 3 < size; c++) {
        if (*c == '"')
            out[n++] = '"';
        out[n++] = *c;
    }
    out[n++] = '"';
    out[n] = '\0';
}

static void pg_plan(const struct cf_provider_conn *conn, const json_t *params,
                    const struct cf_rotation_ref *ref, cf_rotation_plan_fn fn, void *ctx)
{
    const char *role1, *role2;
    struct cf_err err = {0};
    if (roles_of(params, &role1, &role2, &err) != CF_OK) {
        fn(ctx, "issue", "SQL", "-", err.msg);
        return;
    }
    const char *role = idle_role(role1, role2, ref ? ref->current : NULL);
    const char *other = role == role1 ? role2 : role1;
    const char *host = conn ? cred_string(conn->credentials, "host") : NULL;
    char ident[2 * CF_PG_ROLE_MAX + 3], other_ident[2 * CF_PG_ROLE_MAX + 3], until[64] = "infinity";
    char statement[512], purpose[256];
    display_ident(role, ident, sizeof(ident));
    display_ident(other, other_ident, sizeof(other_ident));
    if (ref && ref->lifetime_ms > 0) {
        char when[CF_TIME_RFC3339_LEN];
        snprintf(until, sizeof(until), "%s", cf_time_format(wall_ms() + ref->lifetime_ms, when));
    }
    snprintf(statement, sizeof(statement), "ALTER ROLE %s WITH PASSWORD '***' VALID UNTIL '%s'",
             ident, until);
    snprintf(purpose, sizeof(purpose),
             "set a new password (sent as a SCRAM-SHA-256 verifier) on the idle role %s at %s",
             ident, host ? host : "the connection's server");
    fn(ctx, "issue", "SQL", statement, purpose);
    snprintf(statement, sizeof(statement), "SELECT current_user");
    snprintf(purpose, sizeof(purpose), "log in as %s with the new password", ident);
    fn(ctx, "verify", "SQL", statement, purpose);
    snprintf(statement, sizeof(statement), "ALTER ROLE %s WITH PASSWORD NULL", other_ident);
    snprintf(purpose, sizeof(purpose),
             "after the grace period, leave the previous role %s with no password", other_ident);
    fn(ctx, "revoke", "SQL", statement, purpose);
}

/* One of the two roles, whose password was set before the rotation: it exists; its VALID UNTIL
 * (none or infinity: 0) is the end date. */
static enum cf_rc pg_adopt(const struct cf_provider_conn *conn, const json_t *params,
                           const char *id, int64_t *expires_at, struct cf_err *err)
{
    const char *role1, *role2;
    struct pg_target t;
    PGconn *pg = NULL;
    char until[32] = "";
    bool found = false;
    enum cf_rc rc = roles_of(params, &role1, &role2, err);
    *expires_at = 0;
    if (rc == CF_OK && strcmp(id, role1) != 0 && strcmp(id, role2) != 0)
        rc = cf_err_field(err, CF_EVALIDATION, "currentCredentialId",
                          "currentCredentialId: \"%.63s\" is not one of the rotation's roles "
                          "(parameters.username1, parameters.username2)",
                          id);
    if (rc == CF_OK)
        rc = target_of(conn, &t, err);
    if (rc == CF_OK)
        rc = open_session(&t, NULL, NULL, &pg, err);
    if (rc == CF_OK)
        rc = query_one(pg,
                       "SELECT CASE WHEN rolvaliduntil IS NULL OR rolvaliduntil = 'infinity' "
                       "THEN 0 ELSE (extract(epoch FROM rolvaliduntil) * 1000)::bigint END "
                       "FROM pg_catalog.pg_roles WHERE rolname = $1",
                       id, &found, until, sizeof(until), "reading the role", err);
    if (rc == CF_OK && !found)
        rc = cf_err_field(err, CF_ENOTFOUND, "currentCredentialId",
                          "currentCredentialId: role \"%.63s\" does not exist", id);
    if (rc == CF_OK) {
        long long ms = 0;
        if (cf_parse_int64(until, 0, INT64_MAX, &ms))
            *expires_at = ms;
    }
    PQfinish(pg);
    return rc;
}

static const char *const outputs[] = {"username", "password", NULL};

const struct cf_rotator_ops cf_rotator_postgres_credentials = {
    .type = "postgres-credentials",
    .connection_app = "postgres",
    .outputs = outputs,
    .secret_output = "password",
    .config_check = config_check,
    .issue = pg_issue,
    .verify = pg_verify,
    .revoke = pg_revoke,
    .list_issued = NULL, /* issuing replaces a password; it never adds a credential */
    .plan = pg_plan,
    .adopt = pg_adopt,
};

/* ---- the connection check ---- */

enum cf_rc cf_pg_check(const struct cf_provider_conn *conn, json_t **report, struct cf_err *err)
{
    struct pg_target t;
    PGconn *pg = NULL;
    PGresult *res = NULL;
    json_t *scopes = NULL;
    *report = NULL;
    bool found = false, superuser = false, createrole = false;
    enum cf_rc rc = target_of(conn, &t, err);
    if (rc == CF_OK)
        rc = open_session(&t, NULL, NULL, &pg, err);
    char one[8] = "";
    if (rc == CF_OK)
        rc = query_one(pg, "SELECT 1", NULL, &found, one, sizeof(one), "SELECT 1", err);
    if (rc != CF_OK)
        goto out;
    res = PQexec(pg, "SELECT rolsuper, rolcreaterole FROM pg_catalog.pg_roles "
                     "WHERE rolname = current_user");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        rc = sql_error(pg, res, "reading the login's attributes", err);
        goto out;
    }
    superuser = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    createrole = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    PQclear(res);
    res = PQexec(pg, "SELECT r.rolname FROM pg_catalog.pg_auth_members m "
                     "JOIN pg_catalog.pg_roles r ON r.oid = m.roleid "
                     "JOIN pg_catalog.pg_roles u ON u.oid = m.member "
                     "WHERE u.rolname = current_user AND m.admin_option ORDER BY 1");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        rc = sql_error(pg, res, "reading the login's memberships", err);
        goto out;
    }
    scopes = json_array();
    bool ok = scopes != NULL;
    if (ok && superuser)
        ok = json_array_append_new(scopes, json_string("SUPERUSER")) == 0;
    if (ok && createrole)
        ok = json_array_append_new(scopes, json_string("CREATEROLE")) == 0;
    for (int i = 0; ok && i < PQntuples(res); i++) {
        char scope[CF_PG_ROLE_MAX + 8];
        snprintf(scope, sizeof(scope), "ADMIN:%s", PQgetvalue(res, i, 0));
        ok = json_array_append_new(scopes, json_string(scope)) == 0;
    }
    const char *detail =
        superuser ? "the login is a superuser: it may change any role's password"
        : createrole && PQserverVersion(pg) < 160000
            ? "the login has CREATEROLE: it may change the password of any role that is not a "
              "superuser"
        : createrole ? "the login has CREATEROLE: it may change the passwords of the roles it "
                       "holds with ADMIN OPTION (listed in scopes)"
                     : "the login may not change other roles' passwords: grant it CREATEROLE (and, "
                       "from PostgreSQL 16, ADMIN OPTION on each rotated role)";
    if (ok)
        *report = json_pack("{s:b, s:n, s:O, s:s}", "ok", 1, "expiresAt", "scopes", scopes,
                            "detail", detail);
    if (!*report)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
out:
    json_decref(scopes);
    PQclear(res);
    PQfinish(pg);
    return rc;
}

/* ---- for the dynamic providers ---- */

enum cf_rc cf_pg_connect(const struct cf_provider_conn *conn, PGconn **out, const char **login,
                         struct cf_err *err)
{
    struct pg_target t;
    *out = NULL;
    enum cf_rc rc = target_of(conn, &t, err);
    if (rc == CF_OK)
        rc = open_session(&t, NULL, NULL, out, err);
    if (rc == CF_OK && login)
        *login = t.username;
    return rc;
}

enum cf_rc cf_pg_connect_as(const struct cf_provider_conn *conn, const char *user,
                            const char *password, PGconn **out, struct cf_err *err)
{
    struct pg_target t;
    *out = NULL;
    enum cf_rc rc = target_of(conn, &t, err);
    if (rc == CF_OK)
        rc = open_session(&t, user, password, out, err);
    return rc;
}

enum cf_rc cf_pg_exec(PGconn *pg, const char *sql, const char *doing, struct cf_err *err)
{
    return run_statement(pg, sql, doing, err);
}

enum cf_rc cf_pg_query_one(PGconn *pg, const char *sql, const char *param, bool *found, char *value,
                           size_t size, const char *doing, struct cf_err *err)
{
    return query_one(pg, sql, param, found, value, size, doing, err);
}

int64_t cf_pg_wall_ms(void)
{
    return wall_ms();
}
