/* The "postgres" dynamic provider (see pgdynamic.h): templates expanded with libpq's escaping and
 * run on a session of the "postgres" app connection. */
#include "provider/pgdynamic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "provider/pgrole.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define STATEMENT_MAX 4096
#define PREFIX_MAX 24
#define DEFAULT_PREFIX "coffer_"
#define SQL_MAX (64 * 1024)

static const char default_create[] =
    "CREATE ROLE {{username}} WITH LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}}; "
    "GRANT {{role}} TO {{username}}; GRANT {{username}} TO CURRENT_USER;";
static const char default_renew[] = "ALTER ROLE {{username}} VALID UNTIL {{expiration}};";
static const char default_revoke[] = "REASSIGN OWNED BY {{username}} TO CURRENT_USER; "
                                     "DROP OWNED BY {{username}}; DROP ROLE {{username}};";

static const char password_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

static const char *const placeholders[] = {"username", "password", "expiration", "role"};

static const char *param_string(const json_t *params, const char *name)
{
    const char *v = json_string_value(json_object_get(params, name));
    return v && *v ? v : NULL;
}

/* CF_EVALIDATION unless every {{...}} of text names a known placeholder. */
static enum cf_rc check_template(const char *field, const char *text, struct cf_err *err)
{
    char name[CF_ERR_FIELD_MAX];
    snprintf(name, sizeof(name), "inputs.%s", field);
    if (strlen(text) > STATEMENT_MAX)
        return cf_err_field(err, CF_EVALIDATION, name, "%s: at most %d bytes", name, STATEMENT_MAX);
    for (const char *p = strstr(text, "{{"); p; p = strstr(p + 2, "{{")) {
        const char *end = strstr(p + 2, "}}");
        bool known = false;
        for (size_t i = 0; end && i < CF_ARRAY_SIZE(placeholders); i++)
            known |= (size_t)(end - p - 2) == strlen(placeholders[i]) &&
                     strncmp(p + 2, placeholders[i], strlen(placeholders[i])) == 0;
        if (!known)
            return cf_err_field(err, CF_EVALIDATION, name,
                                "%s: only {{username}}, {{password}}, {{expiration}} and {{role}} "
                                "may appear between double braces",
                                name);
    }
    return CF_OK;
}

static enum cf_rc config_check(const json_t *params, struct cf_err *err)
{
    static const char *const known[] = {"grantRole", "usernamePrefix", "creationStatement",
                                        "renewStatement", "revocationStatement"};
    const char *key;
    json_t *value;
    if (!json_is_object(params))
        return cf_err_field(err, CF_EVALIDATION, "inputs", "inputs: an object is expected");
    json_object_foreach((json_t *)params, key, value)
    {
        bool ok = false;
        for (size_t i = 0; i < CF_ARRAY_SIZE(known); i++)
            ok |= strcmp(key, known[i]) == 0;
        if (!ok)
            return cf_err_field(err, CF_EVALIDATION, "inputs",
                                "inputs.%.48s: not a setting of the postgres provider", key);
        if (!json_is_string(value))
            return cf_err_field(err, CF_EVALIDATION, "inputs", "inputs.%s: a string is expected",
                                key);
        const char *text = json_string_value(value);
        for (size_t i = 0; i < json_string_length(value); i++)
            if (text[i] == '\0')
                return cf_err_field(err, CF_EVALIDATION, "inputs",
                                    "inputs.%s: must not hold a NUL byte", key);
    }
    const char *role = param_string(params, "grantRole");
    if (role && strlen(role) > CF_PG_ROLE_MAX)
        return cf_err_field(err, CF_EVALIDATION, "inputs.grantRole",
                            "inputs.grantRole: at most %d bytes (PostgreSQL's limit)",
                            CF_PG_ROLE_MAX);
    const char *prefix = json_string_value(json_object_get(params, "usernamePrefix"));
    if (prefix) {
        bool ok = strlen(prefix) <= PREFIX_MAX;
        for (const char *c = prefix; ok && *c; c++)
            ok = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_';
        if (!ok)
            return cf_err_field(err, CF_EVALIDATION, "inputs.usernamePrefix",
                                "inputs.usernamePrefix: at most %d characters of a-z, 0-9 and _",
                                PREFIX_MAX);
    }
    if (!role && !param_string(params, "creationStatement"))
        return cf_err_field(err, CF_EVALIDATION, "inputs.grantRole",
                            "inputs.grantRole is required unless inputs.creationStatement is "
                            "given");
    static const char *const templates[] = {"creationStatement", "renewStatement",
                                            "revocationStatement"};
    for (size_t i = 0; i < CF_ARRAY_SIZE(templates); i++) {
        const char *text = param_string(params, templates[i]);
        enum cf_rc rc = text ? check_template(templates[i], text, err) : CF_OK;
        if (rc != CF_OK)
            return rc;
        if (text && strstr(text, "{{role}}") && !role)
            return cf_err_field(err, CF_EVALIDATION, "inputs.grantRole",
                                "inputs.%s uses {{role}}: inputs.grantRole is required",
                                templates[i]);
    }
    return CF_OK;
}

/* The lease's role: the prefix and the lease id's hex digits. */
static void username_of(const json_t *params, const struct cf_lease_ref *ref, char *out,
                        size_t size)
{
    const char *prefix = json_string_value(json_object_get(params, "usernamePrefix"));
    size_t n = 0;
    n = (size_t)snprintf(out, size, "%s", prefix ? prefix : DEFAULT_PREFIX);
    for (const char *c = ref->id; *c && n + 1 < size; c++)
        if (*c != '-')
            out[n++] = (char)((*c >= 'A' && *c <= 'F') ? *c - 'A' + 'a' : *c);
    out[n < size ? n : size - 1] = '\0';
}

/* The values of one expansion, already escaped by libpq (each freed with PQfreemem). */
struct expansion {
    char *username;
    char *password; /* a literal of the verifier: wiped */
    char *expiration;
    char *role;
};

static void expansion_release(struct expansion *x)
{
    if (x->password) {
        sodium_memzero(x->password, strlen(x->password));
        PQfreemem(x->password);
    }
    PQfreemem(x->username);
    PQfreemem(x->expiration);
    PQfreemem(x->role);
    memset(x, 0, sizeof(*x));
}

/* The lease's end as PostgreSQL's clock sees it: Coffer's clock may be a test clock. */
static void expiration_text(int64_t expires_at, char out[CF_TIME_RFC3339_LEN])
{
    cf_time_format(cf_pg_wall_ms() + (expires_at - cf_now_ms()), out);
}

static enum cf_rc expansion_init(PGconn *pg, const json_t *params, const char *username,
                                 const char *verifier, int64_t expires_at, struct expansion *x,
                                 struct cf_err *err)
{
    char until[CF_TIME_RFC3339_LEN];
    const char *role = param_string(params, "grantRole");
    memset(x, 0, sizeof(*x));
    expiration_text(expires_at, until);
    x->username = PQescapeIdentifier(pg, username, strlen(username));
    x->expiration = PQescapeLiteral(pg, until, strlen(until));
    if (verifier)
        x->password = PQescapeLiteral(pg, verifier, strlen(verifier));
    if (role)
        x->role = PQescapeIdentifier(pg, role, strlen(role));
    if (!x->username || !x->expiration || (verifier && !x->password) || (role && !x->role)) {
        expansion_release(x);
        return cf_err_set(err, CF_ENOMEM, "postgresql: cannot escape the statement's values");
    }
    return CF_OK;
}

/* Expands template into sql (wiped by the caller): each placeholder by its escaped value. */
static enum cf_rc expand(const char *template, const struct expansion *x, struct cf_buf *sql,
                         struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    const char *p = template;
    while (rc == CF_OK && *p) {
        const char *open = strstr(p, "{{");
        if (!open) {
            rc = cf_buf_puts(sql, p);
            break;
        }
        rc = cf_buf_append(sql, p, (size_t)(open - p));
        const char *end = strstr(open, "}}");
        size_t len = end ? (size_t)(end - open - 2) : 0;
        const char *value = NULL;
        if (end && len == 8 && strncmp(open + 2, "username", 8) == 0)
            value = x->username;
        else if (end && len == 8 && strncmp(open + 2, "password", 8) == 0)
            value = x->password;
        else if (end && len == 10 && strncmp(open + 2, "expiration", 10) == 0)
            value = x->expiration;
        else if (end && len == 4 && strncmp(open + 2, "role", 4) == 0)
            value = x->role;
        if (!value) /* config_check refused these; a password in a renew or revoke template */
            return cf_err_set(
                err, CF_EVALIDATION,
                "postgresql: the statement uses a placeholder that has no value here");
        if (rc == CF_OK)
            rc = cf_buf_puts(sql, value);
        p = end + 2;
    }
    if (rc == CF_OK)
        rc = cf_buf_append(sql, "", 1);
    if (rc != CF_OK)
        return cf_err_set(err, rc, "postgresql: the expanded statement is too large");
    return CF_OK;
}

/* Expands template with x and runs it on pg. */
static enum cf_rc run_template(PGconn *pg, const char *template, const struct expansion *x,
                               const char *doing, struct cf_err *err)
{
    struct cf_buf sql;
    cf_buf_init(&sql, SQL_MAX);
    enum cf_rc rc = expand(template, x, &sql, err);
    if (rc == CF_OK)
        rc = cf_pg_exec(pg, sql.data, doing, err);
    cf_buf_release_wipe(&sql);
    return rc;
}

static enum cf_rc new_password(char *out, size_t len)
{
    for (size_t i = 0; i < len; i++)
        out[i] = password_alphabet[randombytes_uniform(sizeof(password_alphabet) - 1)];
    out[len] = '\0';
    return CF_OK;
}

static enum cf_rc pg_create(const struct cf_provider_conn *conn, const json_t *params,
                            const struct cf_lease_ref *ref, struct cf_leased_cred *out,
                            struct cf_err *err)
{
    PGconn *pg = NULL;
    char *verifier = NULL;
    struct expansion x = {0};
    char username[CF_PG_ROLE_MAX + 1], password[CF_PG_PASSWORD_LEN + 1], doing[128];
    const char *login = NULL;
    memset(out, 0, sizeof(*out));
    username_of(params, ref, username, sizeof(username));
    new_password(password, CF_PG_PASSWORD_LEN);
    enum cf_rc rc = cf_pg_connect(conn, &pg, &login, err);
    if (rc != CF_OK)
        goto out;
    verifier = PQencryptPasswordConn(pg, password, username, "scram-sha-256");
    if (!verifier) {
        rc = cf_err_set(err, CF_ENOMEM, "postgresql: cannot make the password's verifier");
        goto out;
    }
    rc = expansion_init(pg, params, username, verifier, ref->expires_at, &x, err);
    if (rc != CF_OK)
        goto out;
    const char *template = param_string(params, "creationStatement");
    snprintf(doing, sizeof(doing), "creating role \"%s\"", username);
    rc = run_template(pg, template ? template : default_create, &x, doing, err);
    if (rc == CF_EFORBIDDEN)
        cf_err_set(err, rc,
                   "postgresql: login \"%.63s\" may not create role \"%s\" or grant its role: it "
                   "needs CREATEROLE and ADMIN OPTION on the granted role (%.120s)",
                   login, username, err->msg);
    if (rc != CF_OK)
        goto out;
    cf_strlcpy(out->id, username, sizeof(out->id));
    out->expires_at = ref->expires_at;
    const char *port_text = json_string_value(json_object_get(conn->credentials, "port"));
    char port[16] = "";
    if (port_text)
        cf_strlcpy(port, port_text, sizeof(port));
    else
        snprintf(port, sizeof(port), "%lld",
                 (long long)json_integer_value(json_object_get(conn->credentials, "port")));
    out->fields = json_pack(
        "{s:s, s:s, s:s, s:s, s:s}", "DB_USERNAME", username, "DB_PASSWORD", password, "DB_HOST",
        json_string_value(json_object_get(conn->credentials, "host")) ?: "", "DB_PORT", port,
        "DB_NAME", json_string_value(json_object_get(conn->credentials, "database")) ?: "");
    if (!out->fields)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
out:
    expansion_release(&x);
    if (verifier) {
        sodium_memzero(verifier, strlen(verifier));
        PQfreemem(verifier);
    }
    sodium_memzero(password, sizeof(password));
    if (rc != CF_OK)
        cf_leased_cred_release(out);
    PQfinish(pg);
    return rc;
}

/* CF_OK with *exists whether role id exists at pg. */
static enum cf_rc role_exists(PGconn *pg, const char *id, bool *exists, struct cf_err *err)
{
    return cf_pg_query_one(pg, "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", id, exists,
                           NULL, 0, "reading the roles", err);
}

static enum cf_rc pg_renew(const struct cf_provider_conn *conn, const json_t *params,
                           const struct cf_lease_ref *ref, const char *id, struct cf_err *err)
{
    PGconn *pg = NULL;
    struct expansion x = {0};
    bool exists = false;
    char doing[128];
    enum cf_rc rc = cf_pg_connect(conn, &pg, NULL, err);
    if (rc == CF_OK)
        rc = role_exists(pg, id, &exists, err);
    if (rc == CF_OK && !exists)
        rc = cf_err_set(err, CF_ENOTFOUND, "postgresql: role \"%s\" no longer exists", id);
    if (rc == CF_OK)
        rc = expansion_init(pg, params, id, NULL, ref->expires_at, &x, err);
    if (rc == CF_OK) {
        const char *template = param_string(params, "renewStatement");
        snprintf(doing, sizeof(doing), "renewing role \"%s\"", id);
        rc = run_template(pg, template ? template : default_renew, &x, doing, err);
    }
    expansion_release(&x);
    PQfinish(pg);
    return rc;
}

static enum cf_rc pg_revoke(const struct cf_provider_conn *conn, const json_t *params,
                            const struct cf_lease_ref *ref, const char *id, struct cf_err *err)
{
    PGconn *pg = NULL;
    struct expansion x = {0};
    bool exists = false, ignored = false;
    char doing[128], derived[CF_PG_ROLE_MAX + 1];
    /* a lease whose create was never recorded: its role's name follows from the lease */
    if (!id || !id[0]) {
        username_of(params, ref, derived, sizeof(derived));
        id = derived;
    }
    enum cf_rc rc = cf_pg_connect(conn, &pg, NULL, err);
    if (rc == CF_OK)
        rc = role_exists(pg, id, &exists, err);
    if (rc != CF_OK || !exists) /* gone already: revoked (repeatable) */
        goto out;
    snprintf(doing, sizeof(doing), "ending the sessions of role \"%s\"", id);
    rc = cf_pg_query_one(pg,
                         "SELECT pg_catalog.pg_terminate_backend(pid) FROM "
                         "pg_catalog.pg_stat_activity WHERE usename = $1",
                         id, &ignored, NULL, 0, doing, err);
    if (rc == CF_OK)
        rc = expansion_init(pg, params, id, NULL, ref->expires_at, &x, err);
    if (rc == CF_OK) {
        const char *template = param_string(params, "revocationStatement");
        snprintf(doing, sizeof(doing), "dropping role \"%s\"", id);
        rc = run_template(pg, template ? template : default_revoke, &x, doing, err);
    }
out:
    expansion_release(&x);
    PQfinish(pg);
    return rc;
}

static void pg_plan(const struct cf_provider_conn *conn, const json_t *params,
                    const struct cf_lease_ref *ref, cf_rotation_plan_fn fn, void *ctx)
{
    (void)conn;
    (void)ref;
    const char *create = param_string(params, "creationStatement");
    const char *renew = param_string(params, "renewStatement");
    const char *revoke = param_string(params, "revocationStatement");
    fn(ctx, "create", "SQL", create ? create : default_create,
       "create the lease's role; {{password}} is its SCRAM-SHA-256 verifier");
    fn(ctx, "renew", "SQL", renew ? renew : default_renew, "move the role's end");
    fn(ctx, "revoke", "SQL",
       "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
       "end the role's sessions");
    fn(ctx, "revoke", "SQL", revoke ? revoke : default_revoke, "remove the role");
}

static const char *const fields[] = {"DB_USERNAME", "DB_PASSWORD", "DB_HOST",
                                     "DB_PORT",     "DB_NAME",     NULL};

const struct cf_dynamic_ops cf_dynamic_postgres = {
    .type = "postgres",
    .connection_app = "postgres",
    .fields = fields,
    .config_check = config_check,
    .create = pg_create,
    .renew = pg_renew,
    .revoke = pg_revoke,
    .plan = pg_plan,
};
