/* The "postgres" connection and the "postgres-credentials" rotator (provider/pgrole.h) against a
 * real throwaway PostgreSQL cluster (scripts/pg.sh) whose pg_hba.conf asks every role but the
 * bootstrap superuser for a SCRAM password: alternation of the two roles, logins with new and old
 * passwords, revocation, bad parameters, a login without the right to alter the roles, an
 * unreachable server, and messages and server logs that never hold a password. Skipped, with the
 * reason, where the PostgreSQL server binaries are not installed. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <glob.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "core/connections.h"
#include "provider/pgrole.h"
#include "provider/provider.h"
#include "provider/rotator.h"
#include "util/time.h"

#define ROTATOR_PASSWORD "rotator pass-4b1d-of-the-connection"
#define WEAK_PASSWORD "weak-pass-77aa19"
#define BLUE_INITIAL "blue-initial-5e0c"
#define GREEN_INITIAL "green-initial-a93f"

static char top_dir[64]; /* ours: holds the cluster's directory */
static char pg_dir[96];  /* the cluster (scripts/pg.sh) */
static bool cluster_up;

static int pg_script(const char *verb)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "sh %s/scripts/pg.sh %s %s >%s/pg-%s.log 2>&1", CF_SOURCE_DIR, verb,
             pg_dir, top_dir, verb);
    return system(cmd);
}

static PGconn *login(const char *user, const char *password)
{
    const char *const keys[] = {"host", "port", "dbname", "user", "password", NULL};
    const char *const values[] = {pg_dir, "5433", "postgres", user, password, NULL};
    return PQconnectdbParams(keys, values, 0);
}

static bool can_login(const char *user, const char *password)
{
    PGconn *pg = login(user, password);
    bool ok = PQstatus(pg) == CONNECTION_OK;
    PQfinish(pg);
    return ok;
}

static void superuser_exec(const char *sql)
{
    PGconn *pg = login("coffer", NULL);
    cr_assert_eq(PQstatus(pg), CONNECTION_OK, "superuser login: %s", PQerrorMessage(pg));
    PGresult *res = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(res);
    cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql,
              PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(pg);
}

/* The role's rolvaliduntil as text ("" when NULL). */
static void valid_until_of(const char *role, char *out, size_t size)
{
    PGconn *pg = login("coffer", NULL);
    const char *param = role;
    PGresult *res =
        PQexecParams(pg,
                     "SELECT coalesce(extract(epoch from rolvaliduntil)::text, '') FROM pg_roles "
                     "WHERE rolname = $1",
                     1, NULL, &param, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
    snprintf(out, size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    PQfinish(pg);
}

static void cluster_start(void)
{
    glob_t g;
    bool installed = glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) == 0;
    globfree(&g);
    if (!installed)
        cr_skip_test(
            "the PostgreSQL server binaries are not installed (apt-get install postgresql)");
    snprintf(top_dir, sizeof(top_dir), "/tmp/coffer-pgrole-XXXXXX");
    cr_assert_not_null(mkdtemp(top_dir));
    chmod(top_dir, 0755); /* as root the cluster runs as an unprivileged user */
    snprintf(pg_dir, sizeof(pg_dir), "%s/pg", top_dir);
    cr_assert_eq(pg_script("start"), 0, "scripts/pg.sh start failed (see %s/pg-start.log)",
                 top_dir);
    cluster_up = true;
    /* passwords are checked for every role but the bootstrap superuser the test works as; every
     * statement is logged, so that the log can be searched for passwords */
    char hba[160];
    snprintf(hba, sizeof(hba), "%s/data/pg_hba.conf", pg_dir);
    FILE *f = fopen(hba, "w");
    cr_assert_not_null(f);
    fputs("local all coffer trust\nlocal all all scram-sha-256\n", f);
    fclose(f);
    superuser_exec("ALTER SYSTEM SET log_statement = 'all'");
    superuser_exec("CREATE ROLE rotator LOGIN CREATEROLE PASSWORD '" ROTATOR_PASSWORD "'");
    superuser_exec("CREATE ROLE weak LOGIN PASSWORD '" WEAK_PASSWORD "'");
    superuser_exec("CREATE ROLE app_blue LOGIN PASSWORD '" BLUE_INITIAL "'");
    superuser_exec("CREATE ROLE app_green LOGIN PASSWORD '" GREEN_INITIAL "'");
    superuser_exec("SELECT pg_reload_conf()");
    /* the reload is a signal: wait until a wrong password is refused */
    for (int i = 0; i < 100 && can_login("app_blue", "wrong"); i++)
        usleep(50 * 1000);
    cr_assert_not(can_login("app_blue", "wrong"), "pg_hba.conf was not reloaded");
}

static void cluster_stop(void)
{
    if (cluster_up)
        pg_script("stop");
    if (top_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", top_dir);
        (void)system(cmd);
    }
}

TestSuite(provider_pg, .init = cluster_start, .fini = cluster_stop, .timeout = 120);

static json_t *conn_credentials(const char *user, const char *password)
{
    json_t *c = json_pack("{s:s, s:i, s:s, s:s, s:s}", "host", pg_dir, "port", 5433, "database",
                          "postgres", "username", user, "password", password);
    cr_assert_not_null(c);
    return c;
}

/* The rotator, a connection logging in as user, and the parameters naming the two roles. */
struct rig {
    const struct cf_rotator_ops *ops;
    json_t *creds;
    struct cf_provider_conn conn;
    json_t *params;
};

static void rig_init(struct rig *r, const char *user, const char *password)
{
    r->ops = cf_rotator_find("postgres-credentials");
    cr_assert_not_null(r->ops);
    r->creds = conn_credentials(user, password);
    r->conn = (struct cf_provider_conn){"postgres", "username-and-password", r->creds, NULL, NULL};
    r->params = json_pack("{s:s, s:s}", "username1", "app_blue", "username2", "app_green");
}

static void rig_release(struct rig *r)
{
    json_decref(r->params);
    json_decref(r->creds);
}

/* The words every error message is searched for. */
static const char *secrets_seen[16];
static size_t n_secrets;

static void remember(const char *secret)
{
    cr_assert_lt(n_secrets, sizeof(secrets_seen) / sizeof(secrets_seen[0]));
    secrets_seen[n_secrets++] = secret;
}

static void assert_no_secret(const struct cf_err *err)
{
    for (size_t i = 0; i < n_secrets; i++)
        cr_assert_null(strstr(err->msg, secrets_seen[i]), "a password in \"%s\"", err->msg);
}

static void assert_password_shape(const struct cf_rotated_cred *cred)
{
    cr_assert_eq(cred->secret_len, CF_PG_PASSWORD_LEN);
    cr_assert_eq(strlen(cred->secret), CF_PG_PASSWORD_LEN);
    for (size_t i = 0; i < cred->secret_len; i++)
        cr_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                         cred->secret[i]) != NULL);
    cr_assert_str_eq(json_string_value(json_object_get(cred->outputs, "username")), cred->id);
    cr_assert_str_eq(json_string_value(json_object_get(cred->outputs, "password")), cred->secret);
}

Test(provider_pg, two_roles_alternate_and_revoked_passwords_stop_working)
{
    struct rig rig;
    rig_init(&rig, "rotator", ROTATOR_PASSWORD);
    const struct cf_rotator_ops *ops = rig.ops;
    struct cf_provider_conn conn = rig.conn;
    json_t *params = rig.params;
    cr_assert_str_eq(ops->connection_app, "postgres");
    cr_assert_null(ops->list_issued);
    struct cf_err err = {0};
    struct cf_rotated_cred gen1 = {0}, gen2 = {0}, gen3 = {0};
    char *pw1 = NULL, *pw2 = NULL;

    /* the first rotation takes username1 */
    struct cf_rotation_ref ref = {"rot-id", "db", 1, 0, ""};
    cr_assert_eq(ops->issue(&conn, params, &ref, &gen1, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(gen1.id, "app_blue");
    cr_assert_eq(gen1.expires_at, 0);
    assert_password_shape(&gen1);
    remember(gen1.secret);
    cr_assert_eq(ops->verify(&conn, params, &gen1, &err), CF_OK, "%s", err.msg);
    cr_assert(can_login("app_blue", gen1.secret));
    cr_assert_not(can_login("app_blue", BLUE_INITIAL), "the password before the first rotation");
    cr_assert(can_login("app_green", GREEN_INITIAL), "the idle role is untouched");
    pw1 = strdup(gen1.secret);

    /* the second takes the idle role; the one in use keeps working until it is revoked */
    ref = (struct cf_rotation_ref){"rot-id", "db", 2, 0, "app_blue"};
    cr_assert_eq(ops->issue(&conn, params, &ref, &gen2, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(gen2.id, "app_green");
    assert_password_shape(&gen2);
    remember(gen2.secret);
    cr_assert_str_neq(gen2.secret, pw1);
    cr_assert_eq(ops->verify(&conn, params, &gen2, &err), CF_OK, "%s", err.msg);
    cr_assert(can_login("app_blue", pw1), "the role in use works until it is revoked");
    cr_assert_not(can_login("app_green", GREEN_INITIAL));
    cr_assert_eq(ops->revoke(&conn, params, &ref, "app_blue", &err), CF_OK, "%s", err.msg);
    cr_assert_not(can_login("app_blue", pw1), "a revoked password is refused");
    cr_assert_eq(ops->verify(&conn, params, &gen1, &err), CF_EUNAUTH);
    assert_no_secret(&err);
    cr_assert_eq(ops->revoke(&conn, params, &ref, "app_blue", &err), CF_OK, "revoking twice: %s",
                 err.msg);
    cr_assert(can_login("app_green", gen2.secret));
    pw2 = strdup(gen2.secret);

    /* the third returns to username1, with a password none of the earlier ones */
    ref = (struct cf_rotation_ref){"rot-id", "db", 3, 0, "app_green"};
    cr_assert_eq(ops->issue(&conn, params, &ref, &gen3, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(gen3.id, "app_blue");
    remember(gen3.secret);
    cr_assert_str_neq(gen3.secret, pw1);
    cr_assert_eq(ops->verify(&conn, params, &gen3, &err), CF_OK, "%s", err.msg);
    cr_assert_not(can_login("app_blue", pw1), "the idle role's old password stays refused");
    cr_assert_eq(ops->revoke(&conn, params, &ref, "app_green", &err), CF_OK, "%s", err.msg);
    cr_assert_not(can_login("app_green", pw2));
    cr_assert(can_login("app_blue", gen3.secret));

    /* revoke never touches a role outside the rotation */
    cr_assert_eq(ops->revoke(&conn, params, &ref, "weak", &err), CF_EINVAL);
    cr_assert(can_login("weak", WEAK_PASSWORD));

    /* the server's statement log saw verifiers, never a password */
    char log_path[160], line[4096];
    snprintf(log_path, sizeof(log_path), "%s/server.log", pg_dir);
    FILE *log = fopen(log_path, "r");
    cr_assert_not_null(log);
    bool alter_logged = false;
    while (fgets(line, sizeof(line), log)) {
        alter_logged = alter_logged || strstr(line, "ALTER ROLE \"app_blue\" WITH PASSWORD");
        cr_assert_null(strstr(line, pw1), "a password in the server log");
        cr_assert_null(strstr(line, pw2), "a password in the server log");
        cr_assert_null(strstr(line, gen3.secret), "a password in the server log");
    }
    fclose(log);
    cr_assert(alter_logged, "the statement log is on, so the search above means something");

    free(pw1);
    free(pw2);
    cf_rotated_cred_release(&gen1);
    cf_rotated_cred_release(&gen2);
    cf_rotated_cred_release(&gen3);
    rig_release(&rig);
}

Test(provider_pg, lifetime_sets_valid_until_and_no_lifetime_clears_it)
{
    struct rig rig;
    rig_init(&rig, "rotator", ROTATOR_PASSWORD);
    const struct cf_rotator_ops *ops = rig.ops;
    struct cf_provider_conn conn = rig.conn;
    json_t *params = rig.params;
    struct cf_err err = {0};
    struct cf_rotated_cred cred = {0};
    char until[64];

    struct cf_rotation_ref ref = {"rot-id", "db", 1, 3600 * 1000, ""};
    int64_t before = cf_now_ms();
    cr_assert_eq(ops->issue(&conn, params, &ref, &cred, &err), CF_OK, "%s", err.msg);
    cr_assert_geq(cred.expires_at, before + 3600 * 1000);
    cr_assert_leq(cred.expires_at, cf_now_ms() + 3600 * 1000);
    valid_until_of("app_blue", until, sizeof(until));
    double epoch = strtod(until, NULL);
    double expected = (double)time(NULL) + 3600;
    cr_assert(epoch > expected - 60 && epoch < expected + 60, "rolvaliduntil %s", until);
    cr_assert_eq(ops->verify(&conn, params, &cred, &err), CF_OK, "%s", err.msg);
    cf_rotated_cred_release(&cred);

    /* a date left on the role (by hand, or by a rotation with a lifetime) would end the next
     * password early: without a lifetime, issue clears it */
    superuser_exec("ALTER ROLE app_blue VALID UNTIL '2000-01-01'");
    ref.lifetime_ms = 0;
    cr_assert_eq(ops->issue(&conn, params, &ref, &cred, &err), CF_OK, "%s", err.msg);
    valid_until_of("app_blue", until, sizeof(until));
    cr_assert_str_eq(until, "Infinity", "an old date is cleared");
    cr_assert_eq(ops->verify(&conn, params, &cred, &err), CF_OK, "%s", err.msg);
    cf_rotated_cred_release(&cred);
    rig_release(&rig);
}

Test(provider_pg, missing_role_and_missing_privilege_are_named)
{
    struct rig rig;
    rig_init(&rig, "rotator", ROTATOR_PASSWORD);
    const struct cf_rotator_ops *ops = rig.ops;
    struct cf_provider_conn conn = rig.conn;
    json_t *params = rig.params;
    struct rig weak_rig;
    rig_init(&weak_rig, "weak", WEAK_PASSWORD);
    struct cf_provider_conn weak = weak_rig.conn;
    json_t *ghost = json_pack("{s:s, s:s}", "username1", "app_blue", "username2", "no_such_role");
    struct cf_err err = {0};
    struct cf_rotated_cred cred = {0};
    struct cf_rotation_ref ref = {"rot-id", "db", 1, 0, ""};
    remember(ROTATOR_PASSWORD);
    remember(WEAK_PASSWORD);

    cr_assert_eq(ops->issue(&conn, ghost, &ref, &cred, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, "\"no_such_role\"") != NULL, "%s", err.msg);
    cr_assert_null(cred.secret);

    cr_assert_eq(ops->issue(&weak, params, &ref, &cred, &err), CF_EFORBIDDEN);
    cr_assert(strstr(err.msg, "\"weak\"") && strstr(err.msg, "\"app_blue\"") &&
                  strstr(err.msg, "CREATEROLE"),
              "%s", err.msg);
    assert_no_secret(&err);
    cr_assert_null(cred.secret);
    cr_assert_eq(ops->revoke(&weak, params, &ref, "app_green", &err), CF_EFORBIDDEN);
    assert_no_secret(&err);

    /* the check reports what each login may do */
    json_t *report = NULL;
    cr_assert_eq(cf_provider_check(&conn, &report, &err), CF_OK, "%s", err.msg);
    cr_assert(json_is_true(json_object_get(report, "ok")));
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(report, "scopes"), 0)),
                     "CREATEROLE");
    json_decref(report);
    cr_assert_eq(cf_provider_check(&weak, &report, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(json_array_size(json_object_get(report, "scopes")), 0);
    cr_assert(strstr(json_string_value(json_object_get(report, "detail")), "may not") != NULL);
    json_decref(report);

    /* a wrong connection password: refused, and not repeated */
    json_t *wrong_creds = conn_credentials("rotator", "wrong-password-3c9d");
    struct cf_provider_conn wrong = {"postgres", "username-and-password", wrong_creds, NULL, NULL};
    remember("wrong-password-3c9d");
    cr_assert_eq(cf_provider_check(&wrong, &report, &err), CF_EUNAUTH);
    cr_assert_null(report);
    cr_assert(strstr(err.msg, "\"rotator\"") != NULL, "%s", err.msg);
    assert_no_secret(&err);
    cr_assert_eq(ops->issue(&wrong, params, &ref, &cred, &err), CF_EUNAUTH);
    assert_no_secret(&err);

    json_decref(wrong_creds);
    json_decref(ghost);
    rig_release(&weak_rig);
    rig_release(&rig);
}

/* ---- without a cluster ---- */

Test(provider_pg_params, bad_parameters_are_named)
{
    const struct cf_rotator_ops *ops = cf_rotator_find("postgres-credentials");
    cr_assert_not_null(ops);
    static const struct {
        const char *json;
        const char *field;
    } cases[] = {
        {"{\"username1\": \"a\"}", "parameters.username2"},
        {"{\"username2\": \"a\"}", "parameters.username1"},
        {"{\"username1\": \"a\", \"username2\": \"a\"}", "parameters.username2"},
        {"{\"username1\": \"a\", \"username2\": 7}", "parameters.username2"},
        {"{\"username1\": \"\", \"username2\": \"b\"}", "parameters.username1"},
        {"{\"username1\": \"a\", \"username2\": \"b\", \"extra\": 1}", "parameters"},
        {"{\"username1\": \"a\\nb\", \"username2\": \"b\"}", "parameters.username1"},
        {"{\"username1\": \"a123456789a123456789a123456789a123456789a123456789a123456789abcd\", "
         "\"username2\": \"b\"}",
         "parameters.username1"},
        {"[]", "parameters"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *params = json_loads(cases[i].json, 0, NULL);
        cr_assert_not_null(params, "%s", cases[i].json);
        struct cf_err err = {0};
        cr_assert_eq(ops->config_check(params, &err), CF_EVALIDATION, "%s", cases[i].json);
        cr_assert_str_eq(err.field, cases[i].field, "%s: %s", cases[i].json, err.msg);
        /* issue checks them too, before it connects anywhere */
        struct cf_rotated_cred cred = {0};
        struct cf_rotation_ref ref = {"r", "n", 1, 0, ""};
        json_t *creds = json_pack("{s:s, s:i, s:s, s:s, s:s}", "host", "127.0.0.1", "port", 1,
                                  "database", "d", "username", "u", "password", "p");
        struct cf_provider_conn conn = {"postgres", "username-and-password", creds, NULL, NULL};
        cr_assert_eq(ops->issue(&conn, params, &ref, &cred, &err), CF_EVALIDATION);
        json_decref(creds);
        json_decref(params);
    }
    json_t *good = json_pack("{s:s, s:s}", "username1", "a", "username2", "b");
    struct cf_err err = {0};
    cr_assert_eq(ops->config_check(good, &err), CF_OK, "%s", err.msg);
    json_decref(good);
}

static void record_plan(void *ctx, const char *step, const char *method, const char *target,
                        const char *purpose)
{
    (void)purpose;
    json_array_append_new(ctx, json_pack("[s, s, s]", step, method, target));
}

Test(provider_pg_params, plan_names_the_idle_role_and_hides_the_password)
{
    const struct cf_rotator_ops *ops = cf_rotator_find("postgres-credentials");
    json_t *params = json_pack("{s:s, s:s}", "username1", "app\"blue", "username2", "app_green");
    json_t *calls = json_array();
    struct cf_rotation_ref ref = {"r", "n", 2, 0, "app\"blue"};
    ops->plan(NULL, params, &ref, record_plan, calls);
    cr_assert_eq(json_array_size(calls), 3);
    cr_assert_str_eq(json_string_value(json_array_get(json_array_get(calls, 0), 2)),
                     "ALTER ROLE \"app_green\" WITH PASSWORD '***' VALID UNTIL 'infinity'");
    cr_assert_str_eq(json_string_value(json_array_get(json_array_get(calls, 2), 2)),
                     "ALTER ROLE \"app\"\"blue\" WITH PASSWORD NULL");
    json_decref(calls);
    json_decref(params);
}

Test(provider_pg_params, connection_credentials_are_validated)
{
    static const struct {
        const char *json;
        const char *field; /* NULL: valid */
    } cases[] = {
        {"{\"host\": \"db.example\", \"port\": 5432, \"database\": \"app\", \"username\": \"r\", "
         "\"password\": \"a pass with spaces\", \"sslEnabled\": true, "
         "\"sslRejectUnauthorized\": false}",
         NULL},
        {"{\"host\": \"db.example\", \"port\": \"5432\", \"database\": \"app\", \"username\": "
         "\"r\", \"password\": \"p\"}",
         NULL},
        {"{\"host\": \"db.example\", \"port\": 5432, \"database\": \"app\", \"username\": \"r\"}",
         "credentials.password"},
        {"{\"host\": \"db.example\", \"port\": 70000, \"database\": \"app\", \"username\": \"r\", "
         "\"password\": \"p\"}",
         "credentials.port"},
        {"{\"host\": \"db.example\", \"port\": \"54x\", \"database\": \"app\", \"username\": "
         "\"r\", "
         "\"password\": \"p\"}",
         "credentials.port"},
        {"{\"host\": \"db.example\", \"port\": 5432, \"database\": \"app\", \"username\": \"r\", "
         "\"password\": \"p\", \"sslEnabled\": \"yes\"}",
         "credentials.sslEnabled"},
        {"{\"host\": \"db.example\", \"port\": 5432, \"database\": \"app\", \"username\": \"r\", "
         "\"password\": \"p\", \"sslCertificate\": \"not a pem\"}",
         "credentials.sslCertificate"},
        {"{\"host\": \"db.example\", \"port\": 5432, \"database\": \"app\", \"username\": \"r\", "
         "\"password\": \"p\\n\"}",
         "credentials.password"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *creds = json_loads(cases[i].json, 0, NULL);
        cr_assert_not_null(creds, "%s", cases[i].json);
        struct cf_err err = {0};
        enum cf_rc rc = cf_connection_validate("postgres", "username-and-password", creds, &err);
        if (!cases[i].field) {
            cr_assert_eq(rc, CF_OK, "%s: %s", cases[i].json, err.msg);
        } else {
            cr_assert_eq(rc, CF_EVALIDATION, "%s", cases[i].json);
            cr_assert_str_eq(err.field, cases[i].field, "%s: %s", cases[i].json, err.msg);
            cr_assert_null(strstr(err.msg, "a pass with"));
        }
        json_decref(creds);
    }
}

/* A port where something accepts TCP connections and never answers: libpq's connect_timeout
 * must end the wait. */
Test(provider_pg_params, unreachable_server_is_eio_in_bounded_time)
{
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    cr_assert_eq(bind(listener, (struct sockaddr *)&addr, sizeof(addr)), 0);
    cr_assert_eq(listen(listener, 8), 0);
    cr_assert_eq(getsockname(listener, (struct sockaddr *)&addr, &len), 0);
    int silent_port = ntohs(addr.sin_port);

    const struct cf_rotator_ops *ops = cf_rotator_find("postgres-credentials");
    json_t *params = json_pack("{s:s, s:s}", "username1", "a", "username2", "b");
    struct cf_rotation_ref ref = {"r", "n", 1, 0, ""};
    struct cf_rotated_cred cred = {0};
    struct cf_err err = {0};
    json_t *creds = json_pack("{s:s, s:i, s:s, s:s, s:s}", "host", "127.0.0.1", "port", silent_port,
                              "database", "d", "username", "u", "password", "pw-never-shown-1234");
    struct cf_provider_conn conn = {"postgres", "username-and-password", creds, NULL, NULL};
    int64_t start = cf_mono_us();
    cr_assert_eq(ops->issue(&conn, params, &ref, &cred, &err), CF_EIO, "%s", err.msg);
    int64_t took_ms = (cf_mono_us() - start) / 1000;
    cr_assert_lt(took_ms, (CF_PG_CONNECT_TIMEOUT_S + 5) * 1000, "took %lld ms", (long long)took_ms);
    cr_assert_null(strstr(err.msg, "pw-never-shown-1234"));
    cr_assert(strstr(err.msg, "127.0.0.1") != NULL, "%s", err.msg);
    close(listener);

    /* nothing listening at all: refused at once */
    start = cf_mono_us();
    json_t *report = NULL;
    cr_assert_eq(cf_provider_check(&conn, &report, &err), CF_EIO, "%s", err.msg);
    cr_assert_lt((cf_mono_us() - start) / 1000, (CF_PG_CONNECT_TIMEOUT_S + 5) * 1000);
    cr_assert_null(strstr(err.msg, "pw-never-shown-1234"));
    json_decref(creds);
    json_decref(params);
}
