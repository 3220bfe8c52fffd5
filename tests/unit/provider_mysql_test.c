/* The "mysql" dynamic provider and connection (provider/mysqldynamic.h). The statement templates
 * without a server: placeholders escaped per quoting context, splitting at the semicolons outside
 * quotes and comments, every template that could carry a value outside a quoted place refused, and
 * the parameters' checks. Then against a real throwaway MariaDB (scripts/mariadb.sh, started once
 * for the whole run): hostile values sent through a rendered statement come back unchanged in both
 * sql_modes that change escaping; a created login logs in, may do what its grant allows and no
 * more, and no longer logs in after revocation; revoking twice; a half-made login removed; a
 * login without CREATE USER, a wrong password and an unreachable server; the connection check;
 * messages that never hold a password. The server tests are skipped, with the reason, where
 * MariaDB cannot be started. */
#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <mysql.h>
#include <mysqld_error.h>

#include "provider/dynamic.h"
#include "provider/mysqldynamic.h"
#include "provider/provider.h"

#define ADMIN_PASSWORD "admin pass-7c1e'of \"the\" connection"
#define WEAK_PASSWORD "weak-pass-55e0"
#define LEASE_ID "5f0c2a9e-1b3d-4c5e-8f70-91a2b3c4d5e6"

static const struct cf_lease_ref lease = {
    .id = LEASE_ID, .secret_name = "app-db", .expires_at = 1893456000000LL /* 2030-01-01 */};

/* ---- templates, without a server ---- */

/* Renders template with values on a session that is initialised but not connected (escaping as
 * for the default sql_mode). */
static enum cf_rc render(const char *template, const struct cf_mysql_values *values,
                         struct cf_mysql_statements *out, struct cf_err *err)
{
    MYSQL *m = mysql_init(NULL);
    cr_assert_not_null(m);
    enum cf_rc rc = cf_mysql_render(m, "parameters.creationStatement", template, values, out, err);
    mysql_close(m);
    return rc;
}

Test(mysql_template, placeholders_are_escaped_for_their_quotes)
{
    const struct cf_mysql_values values = {"a'b`c", "p\\'; DROP USER root; -- \"\n",
                                           "2030-01-01 00:00:00"};
    struct cf_mysql_statements s = {0};
    struct cf_err err = {0};
    cr_assert_eq(render("CREATE USER '{{username}}'@'%' IDENTIFIED BY '{{ password }}';"
                        "GRANT SELECT ON `{{username}}`.* TO '{{username}}'@'%';"
                        "SELECT '{{expiration}}'",
                        &values, &s, &err),
                 CF_OK, "%s", err.msg);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(
        s.items[0],
        "CREATE USER 'a\\'b`c'@'%' IDENTIFIED BY 'p\\\\\\'; DROP USER root; -- \\\"\\n'");
    cr_assert_str_eq(s.items[1], "GRANT SELECT ON `a'b``c`.* TO 'a\\'b`c'@'%'");
    cr_assert_str_eq(s.items[2], "SELECT '2030-01-01 00:00:00'");
    cr_assert_eq(s.used,
                 CF_MYSQL_USES_USERNAME | CF_MYSQL_USES_PASSWORD | CF_MYSQL_USES_EXPIRATION);
    cf_mysql_statements_release(&s);
    cr_assert_null(s.items);
}

Test(mysql_template, splits_only_outside_quotes_and_comments)
{
    const struct cf_mysql_values values = {"u", "p", "e"};
    struct cf_mysql_statements s = {0};
    struct cf_err err = {0};
    cr_assert_eq(render(";; SELECT 'a;b''c;' ; -- one; two\n SELECT `x;y``;`; /* ; */ # c;\n"
                        "SELECT \"q;\"\"r\" ;  ; -- only a comment; here\n",
                        &values, &s, &err),
                 CF_OK, "%s", err.msg);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.items[0], " SELECT 'a;b''c;' ");
    cr_assert_str_eq(s.items[1], " -- one; two\n SELECT `x;y``;`");
    cr_assert_str_eq(s.items[2], " /* ; */ # c;\nSELECT \"q;\"\"r\" ");
    cf_mysql_statements_release(&s);
}

struct refusal {
    const char *template;
    const char *words;
};

static const struct refusal refusals[] = {
    {"CREATE USER {{username}}", "must stand inside single quotes"},
    {"CREATE USER \"{{username}}\"", "must stand inside single quotes"},
    {"SELECT 1 -- {{password}}\n", "must stand inside single quotes"},
    {"SELECT 1 /* {{password}} */", "must stand inside single quotes"},
    {"SELECT 1 # {{password}}", "must stand inside single quotes"},
    /* "--" before a control character starts a comment for the server, so here too */
    {"SELECT 1 --\r'{{password}}'\n", "must stand inside single quotes"},
    {"SELECT 'a\\'", "a backslash"},
    {"SELECT '{{user}}'", "starts no placeholder"},
    {"SELECT '{{username'", "starts no placeholder"},
    {"SELECT '{{Username}}'", "starts no placeholder"},
    {"SELECT 'open", "an unterminated quote"},
    {"SELECT `open", "an unterminated quote"},
    {"SELECT 1 /* open", "an unterminated comment"},
    {"", "a statement is expected"},
    {" ; -- nothing\n ;", "holds no statement"},
    {"SELECT 1;SELECT 2;SELECT 3;SELECT 4;SELECT 5;SELECT 6;SELECT 7;SELECT 8;SELECT 9;SELECT 10;"
     "SELECT 11;SELECT 12;SELECT 13;SELECT 14;SELECT 15;SELECT 16;SELECT 17",
     "more than 16 statements"},
};

Test(mysql_template, refuses_what_could_carry_a_value_outside_quotes)
{
    const struct cf_mysql_values values = {"u", "p", "e"};
    for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
        struct cf_mysql_statements s = {0};
        struct cf_err err = {0};
        cr_assert_eq(render(refusals[i].template, &values, &s, &err), CF_EVALIDATION,
                     "template %zu was taken", i);
        cr_assert_str_eq(err.field, "parameters.creationStatement");
        cr_assert_not_null(strstr(err.msg, refusals[i].words), "%zu: %s", i, err.msg);
        cr_assert_eq(s.n, 0);
        /* the check alone (no session) refuses the same */
        cr_assert_eq(cf_mysql_render(NULL, "parameters.creationStatement", refusals[i].template,
                                     &values, &s, &err),
                     CF_EVALIDATION, "template %zu was taken without a session", i);
    }
    /* a placeholder whose value is not given (the password at revocation) */
    const struct cf_mysql_values no_password = {"u", NULL, "e"};
    struct cf_mysql_statements s = {0};
    struct cf_err err = {0};
    cr_assert_eq(render("DROP USER '{{username}}' -- '{{password}}'", &no_password, &s, &err),
                 CF_EVALIDATION);
    cr_assert_eq(render("SELECT '{{password}}'", &no_password, &s, &err), CF_EVALIDATION);
    cr_assert_not_null(strstr(err.msg, "{{password}} is not available"), "%s", err.msg);
    /* too long */
    char *huge = malloc(CF_MYSQL_TEMPLATE_MAX + 2);
    memset(huge, 'x', CF_MYSQL_TEMPLATE_MAX + 1);
    huge[CF_MYSQL_TEMPLATE_MAX + 1] = '\0';
    cr_assert_eq(render(huge, &values, &s, &err), CF_EVALIDATION);
    cr_assert_not_null(strstr(err.msg, "at most"), "%s", err.msg);
    free(huge);
}

Test(mysql_template, issued_names_only)
{
    cr_assert(cf_mysql_username_valid("cf_5f0c2a9e_abcdefgh0123"));
    static const char *const bad[] = {NULL,
                                      "",
                                      "root",
                                      "cf_5f0c2a9e_abcdefgh012",
                                      "cf_5f0c2a9e_abcdefgh01234",
                                      "cf_5F0C2A9E_abcdefgh0123",
                                      "cf_5f0c2a9g_abcdefgh0123",
                                      "cf_5f0c2a9e-abcdefgh0123",
                                      "cf_5f0c2a9e_abcdefgh012'",
                                      "cf_5f0c2a9e_ABCDEFGH0123",
                                      "xx_5f0c2a9e_abcdefgh0123"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(cf_mysql_username_valid(bad[i]), "%zu taken", i);
}

struct param_case {
    const char *json;
    const char *field; /* NULL: accepted */
    const char *words;
};

static const struct param_case param_cases[] = {
    {"{}", NULL, NULL},
    {"{\"privileges\": [\"select\", \"INSERT\", \"Show View\"], \"database\": \"app_db-1$\"}", NULL,
     NULL},
    {"{\"creationStatement\": \"CREATE USER '{{username}}'@'localhost' IDENTIFIED BY "
     "'{{password}}'\", \"revocationStatement\": \"DROP USER '{{username}}'@'localhost'\"}",
     NULL, NULL},
    {"{\"renewStatement\": null}", NULL, NULL},
    {"[]", "parameters", "an object is expected"},
    {"{\"statement\": \"x\"}", "parameters", "not a parameter of mysql"},
    {"{\"renewStatement\": \"ALTER USER x\"}", "parameters.renewStatement", "no VALID UNTIL"},
    {"{\"privileges\": [\"ALL PRIVILEGES\"]}", "parameters.privileges", "not a privilege"},
    {"{\"privileges\": [\"SELECT ON *.* TO x; --\"]}", "parameters.privileges", "not a privilege"},
    {"{\"privileges\": []}", "parameters.privileges", "a list of privilege names"},
    {"{\"privileges\": \"SELECT\"}", "parameters.privileges", "a list of privilege names"},
    {"{\"database\": \"app`db\"}", "parameters.database", "letters, digits"},
    {"{\"database\": \"\"}", "parameters.database", "letters, digits"},
    {"{\"creationStatement\": \"CREATE USER '{{username}}'@'%' IDENTIFIED BY '{{password}}'\", "
     "\"privileges\": [\"SELECT\"]}",
     "parameters.privileges", "default creation statement only"},
    {"{\"creationStatement\": \"CREATE USER '{{username}}'@'%'\"}", "parameters.creationStatement",
     "must use {{username}} and {{password}}"},
    {"{\"creationStatement\": \"CREATE USER '{{username}}'@'%' IDENTIFIED BY '{{password}}' -- "
     "password\"}",
     NULL, NULL},
    {"{\"creationStatement\": \"CREATE USER 'x'@'%' IDENTIFIED BY 'y' -- {{username}} "
     "{{password}}\"}",
     "parameters.creationStatement", "must stand inside single quotes"},
    {"{\"revocationStatement\": \"DROP USER 'x'@'%'\"}", "parameters.revocationStatement",
     "must use {{username}}"},
    {"{\"revocationStatement\": \"DROP USER '{{username}}'@'%'; SELECT '{{password}}'\"}",
     "parameters.revocationStatement", "{{password}} is not available"},
    {"{\"creationStatement\": 7}", "creationStatement", "a string is expected"},
    {"{\"creationStatement\": \"SELECT '{{username}}{{password}}'\\u0000; DROP USER root\"}",
     "creationStatement", "a string is expected"},
};

Test(mysql_template, parameters)
{
    const struct cf_dynamic_ops *ops = cf_dynamic_find("mysql");
    cr_assert_not_null(ops);
    cr_assert_str_eq(ops->connection_app, "mysql");
    cr_assert_null(ops->renew, "MariaDB has no VALID UNTIL: the engine must not expect a renewal");
    cr_assert_str_eq(ops->fields[0], "DB_USERNAME");
    cr_assert_str_eq(ops->fields[1], "DB_PASSWORD");
    cr_assert_null(ops->fields[2]);
    for (size_t i = 0; i < sizeof(param_cases) / sizeof(param_cases[0]); i++) {
        json_error_t jerr;
        json_t *params = json_loads(param_cases[i].json, JSON_ALLOW_NUL, &jerr);
        cr_assert_not_null(params, "%zu: %s", i, jerr.text);
        struct cf_err err = {0};
        enum cf_rc rc = ops->config_check(params, &err);
        if (!param_cases[i].field) {
            cr_assert_eq(rc, CF_OK, "%zu: %s", i, err.msg);
        } else {
            cr_assert_eq(rc, CF_EVALIDATION, "%zu was taken", i);
            cr_assert_str_eq(err.field, param_cases[i].field, "%zu: %s", i, err.msg);
            cr_assert_not_null(strstr(err.msg, param_cases[i].words), "%zu: %s", i, err.msg);
        }
        json_decref(params);
    }
}

static void plan_collect(void *ctx, const char *step, const char *method, const char *target,
                         const char *purpose)
{
    json_array_append_new(ctx, json_pack("[s, s, s, s]", step, method, target, purpose));
}

Test(mysql_template, plan_shows_the_statements_without_the_password)
{
    const struct cf_dynamic_ops *ops = cf_dynamic_find("mysql");
    json_t *creds =
        json_pack("{s:s, s:i, s:s, s:s, s:s}", "host", "db.internal", "port", 3306, "database",
                  "appdb", "username", "dynadmin", "password", ADMIN_PASSWORD);
    struct cf_provider_conn conn = {"mysql", "username-and-password", creds, NULL, NULL};
    json_t *params = json_pack("{s:[s, s]}", "privileges", "select", "insert");
    json_t *plan = json_array();
    ops->plan(&conn, params, &lease, plan_collect, plan);
    cr_assert_eq(json_array_size(plan), 4, "%s", json_dumps(plan, 0));
    const char *create = json_string_value(json_array_get(json_array_get(plan, 0), 2));
    const char *grant = json_string_value(json_array_get(json_array_get(plan, 1), 2));
    const char *drop = json_string_value(json_array_get(json_array_get(plan, 3), 2));
    cr_assert_not_null(strstr(create, "CREATE USER 'cf_5f0c2a9e_"), "%s", create);
    cr_assert_not_null(strstr(create, "IDENTIFIED BY '***'"), "%s", create);
    cr_assert_not_null(strstr(grant, "GRANT SELECT, INSERT ON `appdb`.* TO 'cf_5f0c2a9e_"), "%s",
                       grant);
    cr_assert_str_eq(json_string_value(json_array_get(json_array_get(plan, 2), 0)), "renew");
    cr_assert_not_null(strstr(drop, "DROP USER IF EXISTS 'cf_5f0c2a9e_"), "%s", drop);
    char *text = json_dumps(plan, 0);
    cr_assert_null(strstr(text, ADMIN_PASSWORD));
    free(text);
    json_decref(plan);
    json_decref(params);
    json_decref(creds);
}

/* ---- against a real MariaDB ---- */

/* The run's server, started once before every test (the tests run in processes of their own, which
 * inherit the environment): COFFER_TEST_MARIADB_SOCKET its socket, or COFFER_TEST_MARIADB_SKIP why
 * there is none. */
static char top_dir[64];

static int mariadb_script(const char *verb, const char *dir)
{
    char cmd[640];
    snprintf(cmd, sizeof(cmd),
             "MARIADB_TLS_DIR=%s/tls sh %s/scripts/mariadb.sh %s %s >%s/mariadb-%s.log 2>&1",
             top_dir, CF_SOURCE_DIR, verb, dir, top_dir, verb);
    return system(cmd);
}

/* openssl req's options for a new P-256 key, unencrypted */
#define EC_KEY "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"

/* The server's certificate (CN and SAN localhost) under a CA of the run, and a second CA that
 * signed nothing the server shows, in top_dir/tls: openssl's command line, as an operator would. */
static int make_certificates(void)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "(cd %s && mkdir tls && cd tls && "
             "openssl req -x509 " EC_KEY " -keyout "
             "ca-key.pem -out ca.pem -days 2 "
             "-subj '/CN=coffer test CA' && "
             "openssl req -x509 " EC_KEY " -keyout "
             "other-key.pem -out other-ca.pem "
             "-days 2 -subj '/CN=coffer other CA' && "
             "openssl req " EC_KEY " -keyout "
             "server-key.pem -out server.csr "
             "-subj '/CN=localhost' && "
             "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext && "
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial "
             "-out server-cert.pem -days 2 -extfile ext && chmod 755 . && chmod 644 *.pem) "
             ">%s/openssl.log 2>&1",
             top_dir, top_dir);
    return system(cmd);
}

/* The text of top_dir/tls/name (a PEM), malloc'd. */
static char *read_pem(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/tls/%s", getenv("COFFER_TEST_MARIADB_TOP"), name);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char *text = calloc(1, 16384);
    size_t n = fread(text, 1, 16383, f);
    fclose(f);
    cr_assert_gt(n, 0);
    return text;
}

static MYSQL *connect_as(const char *user, const char *password, const char *database)
{
    MYSQL *m = mysql_init(NULL);
    cr_assert_not_null(m);
    if (!mysql_real_connect(m, "localhost", user, password, database, 0,
                            getenv("COFFER_TEST_MARIADB_SOCKET"), 0)) {
        mysql_close(m);
        return NULL;
    }
    return m;
}

static void exec_on(MYSQL *m, const char *sql)
{
    if (mysql_query(m, sql) != 0)
        cr_assert_fail("%s: %s", sql, mysql_error(m));
    mysql_free_result(mysql_store_result(m));
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
    (void)set;
    char socket_path[160], data_dir[96];
    if (access("/usr/sbin/mariadbd", X_OK) != 0) {
        setenv("COFFER_TEST_MARIADB_SKIP",
               "the MariaDB server is not installed (apt-get install mariadb-server)", 1);
        return;
    }
    snprintf(top_dir, sizeof(top_dir), "/tmp/coffer-mysql-XXXXXX");
    if (!mkdtemp(top_dir)) {
        setenv("COFFER_TEST_MARIADB_SKIP", "cannot make a temporary directory", 1);
        return;
    }
    chmod(top_dir, 0755); /* as root the server runs as an unprivileged user */
    setenv("COFFER_TEST_MARIADB_TOP", top_dir, 1);
    if (make_certificates() != 0) {
        setenv("COFFER_TEST_MARIADB_SKIP", "openssl could not make the test certificates", 1);
        return;
    }
    snprintf(data_dir, sizeof(data_dir), "%s/db", top_dir);
    snprintf(socket_path, sizeof(socket_path), "%s/mysqld.sock", data_dir);
    if (mariadb_script("start", data_dir) != 0) {
        setenv("COFFER_TEST_MARIADB_SKIP", "scripts/mariadb.sh start failed", 1);
        return;
    }
    setenv("COFFER_TEST_MARIADB_SOCKET", socket_path, 1);
    setenv("COFFER_TEST_MARIADB_DIR", data_dir, 1);
    MYSQL *m = mysql_init(NULL);
    if (!m || !mysql_real_connect(m, "localhost", "root", "", NULL, 0, socket_path, 0)) {
        setenv("COFFER_TEST_MARIADB_SKIP", "cannot log in as root", 1);
        mysql_close(m);
        return;
    }
    static const char *const setup[] = {
        "CREATE DATABASE appdb",
        "CREATE DATABASE otherdb",
        "CREATE TABLE appdb.t (id INT)",
        "INSERT INTO appdb.t VALUES (1)",
        "CREATE TABLE appdb.issued (username VARCHAR(80), ends VARCHAR(32))",
        "CREATE TABLE otherdb.t2 (id INT)",
        "CREATE USER 'dynadmin'@'localhost' IDENTIFIED BY 'admin pass-7c1e''of \"the\" connection'",
        "GRANT CREATE USER ON *.* TO 'dynadmin'@'localhost'",
        "GRANT SELECT, INSERT ON appdb.* TO 'dynadmin'@'localhost' WITH GRANT OPTION",
        "CREATE USER 'weak'@'localhost' IDENTIFIED BY '" WEAK_PASSWORD "'",
        "GRANT SELECT ON appdb.* TO 'weak'@'localhost' WITH GRANT OPTION",
        /* a login that may only come over TLS */
        "CREATE USER 'tlsadmin'@'localhost' IDENTIFIED BY '" WEAK_PASSWORD "' REQUIRE SSL",
        "GRANT CREATE USER ON *.* TO 'tlsadmin'@'localhost'",
        "GRANT SELECT ON appdb.* TO 'tlsadmin'@'localhost' WITH GRANT OPTION",
    };
    for (size_t i = 0; i < sizeof(setup) / sizeof(setup[0]); i++)
        if (mysql_query(m, setup[i]) != 0) {
            fprintf(stderr, "%s: %s\n", setup[i], mysql_error(m));
            setenv("COFFER_TEST_MARIADB_SKIP", "the test's setup statements failed", 1);
            break;
        }
    mysql_close(m);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
    (void)stats;
    if (getenv("COFFER_TEST_MARIADB_DIR"))
        mariadb_script("stop", getenv("COFFER_TEST_MARIADB_DIR"));
    if (top_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", top_dir);
        (void)system(cmd);
    }
}

static void need_server(void)
{
    if (getenv("COFFER_TEST_MARIADB_SKIP"))
        cr_skip_test("%s", getenv("COFFER_TEST_MARIADB_SKIP"));
    cr_assert_not_null(getenv("COFFER_TEST_MARIADB_SOCKET"));
}

TestSuite(mysql_server, .init = need_server, .timeout = 60);

/* The connection's credentials: as user over the run's socket. */
static json_t *creds_of(const char *user, const char *password)
{
    json_t *c =
        json_pack("{s:s, s:i, s:s, s:s, s:s}", "host", getenv("COFFER_TEST_MARIADB_SOCKET"), "port",
                  3306, "database", "appdb", "username", user, "password", password);
    cr_assert_not_null(c);
    return c;
}

static bool can_login(const char *user, const char *password)
{
    MYSQL *m = connect_as(user, password, NULL);
    mysql_close(m);
    return m != NULL;
}

/* mysql_errno of sql run as user, 0 when it succeeds. */
static unsigned int run_as(const char *user, const char *password, const char *sql)
{
    MYSQL *m = connect_as(user, password, NULL);
    cr_assert_not_null(m, "%s cannot log in", user);
    unsigned int code = mysql_query(m, sql) == 0 ? 0 : mysql_errno(m);
    mysql_free_result(mysql_store_result(m));
    mysql_close(m);
    return code;
}

static unsigned long users_like(const char *prefix)
{
    MYSQL *root = connect_as("root", "", NULL);
    cr_assert_not_null(root);
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM mysql.user WHERE User LIKE '%s%%'", prefix);
    exec_on(root, "DO 0");
    cr_assert_eq(mysql_query(root, sql), 0, "%s", mysql_error(root));
    MYSQL_RES *res = mysql_store_result(root);
    MYSQL_ROW row = mysql_fetch_row(res);
    unsigned long n = strtoul(row[0], NULL, 10);
    mysql_free_result(res);
    mysql_close(root);
    return n;
}

static void assert_clean(const struct cf_err *err, const char *password)
{
    cr_assert_null(strstr(err->msg, ADMIN_PASSWORD), "%s", err->msg);
    cr_assert_null(strstr(err->msg, "admin pass-7c1e"), "%s", err->msg);
    if (password)
        cr_assert_null(strstr(err->msg, password), "%s", err->msg);
}

Test(mysql_server, hostile_values_come_back_unchanged)
{
    static const char *const hostile[] = {
        "'",    "\\",      "\\'",        "' OR '1'='1", "'; DROP DATABASE appdb; -- ",
        "\"",   "`",       "``x`",       "\n\r\t\x1a",  "%_",
        "a''b", "\\\\'\\", "é ü 日本 ∑", "/* */ # --",  "{{password}}",
    };
    static const char *const modes[] = {
        "SET SESSION sql_mode = DEFAULT",
        "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES,ANSI_QUOTES'"};
    MYSQL *m = connect_as("root", "", NULL);
    cr_assert_not_null(m);
    mysql_set_character_set(m, "utf8mb4");
    for (size_t k = 0; k < 2; k++) {
        exec_on(m, modes[k]);
        for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
            const struct cf_mysql_values values = {hostile[i], hostile[i], "e"};
            struct cf_mysql_statements s = {0};
            struct cf_err err = {0};
            cr_assert_eq(cf_mysql_render(m, "t", "SELECT '{{password}}' AS `{{username}}`", &values,
                                         &s, &err),
                         CF_OK, "%s", err.msg);
            cr_assert_eq(s.n, 1);
            cr_assert_eq(mysql_query(m, s.items[0]), 0, "mode %zu value %zu: %s", k, i,
                         mysql_error(m));
            MYSQL_RES *res = mysql_store_result(m);
            cr_assert_not_null(res);
            cr_assert_eq(mysql_num_rows(res), 1);
            MYSQL_ROW row = mysql_fetch_row(res);
            unsigned long *lengths = mysql_fetch_lengths(res);
            cr_assert_eq(lengths[0], strlen(hostile[i]), "mode %zu value %zu", k, i);
            cr_assert_eq(memcmp(row[0], hostile[i], lengths[0]), 0, "mode %zu value %zu", k, i);
            /* the identifier too (MariaDB strips an alias's leading blanks and control
             * characters, which a quoted identifier keeps elsewhere) */
            if ((unsigned char)hostile[i][0] > ' ')
                cr_assert_str_eq(mysql_fetch_field(res)->name, hostile[i], "mode %zu value %zu", k,
                                 i);
            mysql_free_result(res);
            cf_mysql_statements_release(&s);
        }
    }
    /* nothing the values said was run */
    exec_on(m, "SET SESSION sql_mode = DEFAULT");
    cr_assert_eq(mysql_select_db(m, "appdb"), 0, "appdb was dropped: %s", mysql_error(m));
    mysql_close(m);
}

Test(mysql_server, created_login_works_within_its_grant_until_revoked)
{
    const struct cf_dynamic_ops *ops = cf_dynamic_find("mysql");
    json_t *creds = creds_of("dynadmin", ADMIN_PASSWORD);
    struct cf_provider_conn conn = {"mysql", "username-and-password", creds, NULL, NULL};
    json_t *params = json_pack("{s:[s]}", "privileges", "SELECT");
    struct cf_leased_cred cred = {0};
    struct cf_err err = {0};

    cr_assert_eq(ops->create(&conn, params, &lease, &cred, &err), CF_OK, "%s", err.msg);
    const char *user = json_string_value(json_object_get(cred.fields, "DB_USERNAME"));
    const char *password = json_string_value(json_object_get(cred.fields, "DB_PASSWORD"));
    cr_assert_not_null(user);
    cr_assert_not_null(password);
    cr_assert_str_eq(cred.id, user);
    cr_assert(cf_mysql_username_valid(user), "%s", user);
    cr_assert_eq(strncmp(user, "cf_5f0c2a9e_", 12), 0, "%s", user);
    cr_assert_eq(strlen(password), CF_MYSQL_PASSWORD_LEN);
    cr_assert_eq(cred.expires_at, 0, "a MariaDB login carries no end of its own");
    char *user_copy = strdup(user), *password_copy = strdup(password);

    /* what the grant allows, and no more */
    cr_assert_eq(run_as(user_copy, password_copy, "SELECT id FROM appdb.t"), 0);
    cr_assert_eq(run_as(user_copy, password_copy, "INSERT INTO appdb.t VALUES (2)"),
                 ER_TABLEACCESS_DENIED_ERROR);
    cr_assert_eq(run_as(user_copy, password_copy, "SELECT id FROM otherdb.t2"),
                 ER_TABLEACCESS_DENIED_ERROR);
    cr_assert_eq(run_as(user_copy, password_copy, "CREATE USER 'x'@'%'"),
                 ER_SPECIFIC_ACCESS_DENIED_ERROR);
    cr_assert_not(can_login(user_copy, "wrong"));

    /* a second lease gets another login and password */
    struct cf_leased_cred other = {0};
    cr_assert_eq(ops->create(&conn, params, &lease, &other, &err), CF_OK, "%s", err.msg);
    cr_assert_str_neq(other.id, cred.id);
    cr_assert_str_neq(json_string_value(json_object_get(other.fields, "DB_PASSWORD")),
                      password_copy);

    cr_assert_eq(ops->revoke(&conn, params, &lease, cred.id, &err), CF_OK, "%s", err.msg);
    cr_assert_not(can_login(user_copy, password_copy), "the login survived its revocation");
    cr_assert(can_login(other.id, json_string_value(json_object_get(other.fields, "DB_PASSWORD"))),
              "revoking one lease ended another");
    /* repeatable */
    cr_assert_eq(ops->revoke(&conn, params, &lease, cred.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(ops->revoke(&conn, params, &lease, other.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(users_like(user_copy), 0);

    /* revoke drops only names it issues */
    cr_assert_eq(ops->revoke(&conn, params, &lease, "dynadmin", &err), CF_EINVAL);
    cr_assert(can_login("dynadmin", ADMIN_PASSWORD));

    cf_leased_cred_release(&cred);
    cf_leased_cred_release(&other);
    cr_assert_null(cred.fields);
    free(user_copy);
    free(password_copy);
    json_decref(params);
    json_decref(creds);
}

Test(mysql_server, custom_statements_with_expiration_and_plain_drop)
{
    const struct cf_dynamic_ops *ops = cf_dynamic_find("mysql");
    json_t *creds = creds_of("dynadmin", ADMIN_PASSWORD);
    struct cf_provider_conn conn = {"mysql", "username-and-password", creds, NULL, NULL};
    json_t *params = json_pack(
        "{s:s, s:s}", "creationStatement",
        "CREATE USER '{{username}}'@'localhost' IDENTIFIED BY '{{password}}';\n"
        "GRANT SELECT, INSERT ON `appdb`.* TO '{{username}}'@'localhost';\n"
        "INSERT INTO appdb.issued VALUES ('{{username}}', '{{expiration}}') -- for the record\n",
        "revocationStatement", "DROP USER '{{username}}'@'localhost'");
    struct cf_leased_cred cred = {0};
    struct cf_err err = {0};
    cr_assert_eq(ops->config_check(params, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(ops->create(&conn, params, &lease, &cred, &err), CF_OK, "%s", err.msg);
    const char *password = json_string_value(json_object_get(cred.fields, "DB_PASSWORD"));
    cr_assert_eq(run_as(cred.id, password, "INSERT INTO appdb.t VALUES (3)"), 0);

    MYSQL *root = connect_as("root", "", NULL);
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT ends FROM appdb.issued WHERE username = '%s'", cred.id);
    cr_assert_eq(mysql_query(root, sql), 0, "%s", mysql_error(root));
    MYSQL_RES *res = mysql_store_result(root);
    MYSQL_ROW row = mysql_fetch_row(res);
    cr_assert_not_null(row);
    cr_assert_str_eq(row[0], "2030-01-01 00:00:00");
    mysql_free_result(res);
    mysql_close(root);

    cr_assert_eq(ops->revoke(&conn, params, &lease, cred.id, &err), CF_OK, "%s", err.msg);
    cr_assert_not(can_login(cred.id, password));
    /* DROP USER of a login that is gone (ER_CANNOT_USER) counts as revoked */
    cr_assert_eq(ops->revoke(&conn, params, &lease, cred.id, &err), CF_OK, "%s", err.msg);
    cf_leased_cred_release(&cred);
    json_decref(params);
    json_decref(creds);
}

Test(mysql_server, half_made_login_is_removed)
{
    const struct cf_dynamic_ops *ops = cf_dynamic_find("mysql");
    json_t *creds = creds_of("dynadmin", ADMIN_PASSWORD);
    struct cf_provider_conn conn = {"mysql", "username-and-password", creds, NULL, NULL};
    /* dynadmin may create the login but holds nothing on otherdb to grant */
    json_t *params = json_pack("{s:[s], s:s}", "privileges", "SELECT", "database", "otherdb");
    struct cf_lease_ref ref = lease;
    ref.id = "abcdef01-0000-4000-8000-000000000000";
    struct cf_leased_cred cred = {0};
    struct cf_err err = {0};
    cr_assert_eq(ops->create(&conn, params, &ref, &cred, &err), CF_EFORBIDDEN);
    cr_assert_not_null(strstr(err.msg, "creation statement 2 of 2"), "%s", err.msg);
    assert_clean(&err, NULL);
    cr_assert_null(strstr(err.msg, "IDENTIFIED"), "%s", err.msg);
    cr_assert_null(cred.fields);
    cr_assert_eq(users_like("cf_abcdef01_"), 0, "the login without its grant stayed");
    json_decref(params);
    json_decref(creds);
}

Test(mysql_server, refusals_name_the_cause_without_a_password)
{
    const struct cf_dynamic_ops *ops = cf_dynamic_find("mysql");
    json_t *params = json_object();
    struct cf_leased_cred cred = {0};
    struct cf_err err = {0};

    /* a login without CREATE USER */
    json_t *weak = creds_of("weak", WEAK_PASSWORD);
    struct cf_provider_conn conn = {"mysql", "username-and-password", weak, NULL, NULL};
    cr_assert_eq(ops->create(&conn, params, &lease, &cred, &err), CF_EFORBIDDEN);
    cr_assert_not_null(strstr(err.msg, "creation statement 1 of 2"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, WEAK_PASSWORD), "%s", err.msg);
    json_t *report = NULL;
    cr_assert_eq(cf_provider_check(&conn, &report, &err), CF_OK, "%s", err.msg);
    cr_assert_not_null(
        strstr(json_string_value(json_object_get(report, "detail")), "may not create logins"));
    json_decref(report);
    json_decref(weak);

    /* a wrong password */
    json_t *wrong = creds_of("dynadmin", "not the " ADMIN_PASSWORD);
    conn.credentials = wrong;
    cr_assert_eq(ops->create(&conn, params, &lease, &cred, &err), CF_EUNAUTH);
    cr_assert_not_null(strstr(err.msg, "login \"dynadmin\""), "%s", err.msg);
    assert_clean(&err, NULL);
    cr_assert_eq(ops->revoke(&conn, params, &lease, "cf_5f0c2a9e_abcdefgh0123", &err), CF_EUNAUTH);
    json_decref(wrong);

    /* the connection check of the right login */
    json_t *good = creds_of("dynadmin", ADMIN_PASSWORD);
    conn.credentials = good;
    cr_assert_eq(cf_provider_check(&conn, &report, &err), CF_OK, "%s", err.msg);
    cr_assert(json_is_true(json_object_get(report, "ok")));
    json_t *scopes = json_object_get(report, "scopes");
    cr_assert_str_eq(json_string_value(json_array_get(scopes, 0)), "CREATE USER");
    cr_assert_not_null(strstr(json_string_value(json_object_get(report, "detail")),
                              "may create logins but grants nothing globally"));
    json_decref(report);
    json_decref(good);
    json_decref(params);
}

Test(mysql_server, unreachable_server_is_eio)
{
    const struct cf_dynamic_ops *ops = cf_dynamic_find("mysql");
    json_t *params = json_object();
    struct cf_leased_cred cred = {0};
    struct cf_err err = {0};

    /* a socket that does not exist */
    json_t *creds = creds_of("dynadmin", ADMIN_PASSWORD);
    json_object_set_new(creds, "host", json_string("/nonexistent/mysqld.sock"));
    struct cf_provider_conn conn = {"mysql", "username-and-password", creds, NULL, NULL};
    cr_assert_eq(ops->create(&conn, params, &lease, &cred, &err), CF_EIO);
    cr_assert_not_null(strstr(err.msg, "/nonexistent/mysqld.sock"), "%s", err.msg);
    cr_assert_eq(ops->revoke(&conn, params, &lease, "cf_5f0c2a9e_abcdefgh0123", &err), CF_EIO);
    assert_clean(&err, NULL);

    /* a loopback TCP port nothing listens on (bound, then closed, so that it was free) */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    json_object_set_new(creds, "host", json_string("127.0.0.1"));
    json_object_set_new(creds, "port", json_integer(ntohs(addr.sin_port)));
    cr_assert_eq(ops->create(&conn, params, &lease, &cred, &err), CF_EIO);
    cr_assert_not_null(strstr(err.msg, "127.0.0.1"), "%s", err.msg);
    json_t *report = NULL;
    cr_assert_eq(cf_provider_check(&conn, &report, &err), CF_EIO);
    cr_assert_null(report);

    /* a connection without its fields */
    json_object_del(creds, "password");
    cr_assert_eq(ops->create(&conn, params, &lease, &cred, &err), CF_EINVAL);
    cr_assert_not_null(strstr(err.msg, "needs host, port, database, username and password"));
    json_decref(creds);
    json_decref(params);
}

Test(mysql_server, tls_verified_against_the_connections_ca)
{
    const struct cf_dynamic_ops *ops = cf_dynamic_find("mysql");
    json_t *params = json_object();
    json_t *creds = creds_of("tlsadmin", WEAK_PASSWORD);
    struct cf_provider_conn conn = {"mysql", "username-and-password", creds, NULL, NULL};
    struct cf_leased_cred cred = {0};
    struct cf_err err = {0};
    char *ca = read_pem("ca.pem"), *other = read_pem("other-ca.pem");

    /* without TLS the login that requires it is refused */
    cr_assert_eq(ops->create(&conn, params, &lease, &cred, &err), CF_EUNAUTH, "%s", err.msg);

    /* TLS with the server's CA: verified, and the login works */
    json_object_set_new(creds, "sslEnabled", json_true());
    json_object_set_new(creds, "sslCertificate", json_string(ca));
    cr_assert_eq(ops->create(&conn, params, &lease, &cred, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(ops->revoke(&conn, params, &lease, cred.id, &err), CF_OK, "%s", err.msg);
    cf_leased_cred_release(&cred);

    /* a CA that did not sign the server's certificate: refused before anything is sent */
    json_object_set_new(creds, "sslCertificate", json_string(other));
    cr_assert_eq(ops->create(&conn, params, &lease, &cred, &err), CF_EIO);
    cr_assert_null(cred.fields);
    json_t *report = NULL;
    cr_assert_eq(cf_provider_check(&conn, &report, &err), CF_EIO);
    /* ... unless verification is turned off */
    json_object_set_new(creds, "sslRejectUnauthorized", json_false());
    cr_assert_eq(ops->create(&conn, params, &lease, &cred, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(ops->revoke(&conn, params, &lease, cred.id, &err), CF_OK, "%s", err.msg);
    cf_leased_cred_release(&cred);
    free(ca);
    free(other);
    json_decref(creds);
    json_decref(params);
}
