/* MySQL and MariaDB logins as dynamic secrets (see mysqldynamic.h): the statement templates and
 * their placeholders, sessions opened through libmariadb with the connection's settings, the
 * "mysql" dynamic provider and the connection check. */
#include "provider/mysqldynamic.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <mysql.h>
#include <mysqld_error.h>
#include <errmsg.h>
#include <sodium.h>

#include "util/buf.h"
#include "util/dynlib.h"
#include "util/str.h"
#include "util/banned.h"

/* The CA bundle a verified session trusts when the connection names no certificate (Debian's). */
#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
/* The server's message, as much of it as an error message keeps. */
#define SERVER_MSG_MAX 150
/* A rendered statement at most: the template and every substituted value escaped. */
#define STATEMENT_MAX (4 * CF_MYSQL_TEMPLATE_MAX)
/* 'YYYY-MM-DD HH:MM:SS' */
#define EXPIRATION_LEN 20
#define RANDOM_PART_LEN 12

static const char password_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
static const char username_alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
static const char *const privilege_names[] = {CF_MYSQL_PRIVILEGES};
static const char *const fields[] = {"DB_USERNAME", "DB_PASSWORD", NULL};
static const char *const param_names[] = {
    "creationStatement", "revocationStatement", "renewStatement", "privileges", "database", NULL};

/* ---- statement templates ---- */

void cf_mysql_statements_release(struct cf_mysql_statements *s)
{
    if (!s)
        return;
    /* a check (no session) counts statements without keeping them: items stays NULL */
    for (size_t i = 0; s->items && i < s->n; i++) {
        sodium_memzero(s->items[i], strlen(s->items[i]));
        free(s->items[i]);
    }
    free(s->items);
    s->items = NULL;
    s->n = 0;
}

bool cf_mysql_username_valid(const char *name)
{
    /* "cf_", 8 hex digits, '_', RANDOM_PART_LEN of username_alphabet (new_username) */
    if (!name || strlen(name) != 3 + 8 + 1 + RANDOM_PART_LEN || strncmp(name, "cf_", 3) != 0 ||
        name[11] != '_')
        return false;
    for (size_t i = 3; i < 11; i++)
        if (!strchr("0123456789abcdef", name[i]))
            return false;
    for (size_t i = 12; name[i]; i++)
        if (!strchr(username_alphabet, name[i]))
            return false;
    return true;
}

enum lex_state { IN_CODE, IN_SINGLE, IN_DOUBLE, IN_BACKQUOTE, IN_LINE_COMMENT, IN_BLOCK_COMMENT };

static const char *const placeholder_names[] = {"username", "password", "expiration"};

/* The placeholder "{{ name }}" at p: its index in placeholder_names and *len its length; -1 when
 * p does not start with "{{", -2 when what follows is not a known placeholder. */
static int placeholder_at(const char *p, size_t *len)
{
    if (p[0] != '{' || p[1] != '{')
        return -1;
    const char *q = p + 2;
    while (*q == ' ')
        q++;
    const char *name = q;
    while (*q >= 'a' && *q <= 'z')
        q++;
    size_t name_len = (size_t)(q - name);
    while (*q == ' ')
        q++;
    if (q[0] != '}' || q[1] != '}')
        return -2;
    for (size_t i = 0; i < CF_ARRAY_SIZE(placeholder_names); i++)
        if (strlen(placeholder_names[i]) == name_len &&
            strncmp(placeholder_names[i], name, name_len) == 0) {
            *len = (size_t)(q + 2 - p);
            return (int)i;
        }
    return -2;
}

static const char *value_of(const struct cf_mysql_values *v, int index)
{
    return index == 0 ? v->username : index == 1 ? v->password : v->expiration;
}

/* Appends value to statement as the inside of a '...' literal (escaped by the session) or of a
 * `...` identifier (backquotes doubled). */
static enum cf_rc append_value(MYSQL *m, struct cf_buf *statement, const char *value, bool literal)
{
    size_t len = strlen(value);
    enum cf_rc rc = CF_OK;
    if (!literal) {
        for (size_t i = 0; i < len && rc == CF_OK; i++)
            rc = cf_buf_append(statement, value[i] == '`' ? "``" : &value[i],
                               value[i] == '`' ? 2 : 1);
        return rc;
    }
    char *escaped = malloc(2 * len + 1);
    if (!escaped)
        return CF_ENOMEM;
    unsigned long n = mysql_real_escape_string(m, escaped, value, (unsigned long)len);
    rc = n == (unsigned long)-1 ? CF_EINVAL : cf_buf_append(statement, escaped, n);
    sodium_memzero(escaped, 2 * len + 1);
    free(escaped);
    return rc;
}

/* Ends the statement in cur: kept in out when it holds more than blanks and comments. */
static enum cf_rc end_statement(struct cf_buf *cur, bool has_code, struct cf_mysql_statements *out,
                                bool keep)
{
    enum cf_rc rc = CF_OK;
    if (has_code && keep) {
        if (out->n == CF_MYSQL_STATEMENTS_MAX)
            return CF_ETOOLARGE;
        char **items = realloc(out->items, (out->n + 1) * sizeof(*items));
        if (!items)
            return CF_ENOMEM;
        out->items = items;
        if (cur->data)
            out->items[out->n] = cf_buf_detach(cur, NULL);
        else
            out->items[out->n] = strdup("");
        if (!out->items[out->n])
            rc = CF_ENOMEM;
        else
            out->n++;
    } else if (has_code) {
        out->n++; /* only counted: a check renders nothing */
        if (out->n > CF_MYSQL_STATEMENTS_MAX)
            rc = CF_ETOOLARGE;
    }
    cf_buf_release_wipe(cur);
    cf_buf_init(cur, STATEMENT_MAX);
    return rc;
}

enum cf_rc cf_mysql_render(struct st_mysql *m, const char *field, const char *template,
                           const struct cf_mysql_values *values, struct cf_mysql_statements *out,
                           struct cf_err *err)
{
    struct cf_mysql_statements rendered = {0};
    struct cf_buf cur;
    enum lex_state state = IN_CODE;
    bool has_code = false;
    enum cf_rc rc = CF_OK;
    size_t len = template ? strlen(template) : 0;

    memset(out, 0, sizeof(*out));
    cf_buf_init(&cur, STATEMENT_MAX);
    if (len == 0)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: a statement is expected", field);
    if (len > CF_MYSQL_TEMPLATE_MAX)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: at most %d bytes", field,
                            CF_MYSQL_TEMPLATE_MAX);
    for (size_t i = 0; i < len && rc == CF_OK;) {
        const char *p = template + i;
        size_t ph_len = 0;
        int ph = placeholder_at(p, &ph_len);
        if (ph == -2) {
            rc = cf_err_field(err, CF_EVALIDATION, field,
                              "%s: '{{' at byte %zu starts no placeholder ({{username}}, "
                              "{{password}} or {{expiration}})",
                              field, i);
            break;
        }
        if (ph >= 0) {
            const char *value = value_of(values, ph);
            if (state != IN_SINGLE && state != IN_BACKQUOTE)
                rc = cf_err_field(err, CF_EVALIDATION, field,
                                  "%s: {{%s}} at byte %zu must stand inside single quotes "
                                  "('...') or backquotes (`...`)",
                                  field, placeholder_names[ph], i);
            else if (!value)
                rc = cf_err_field(err, CF_EVALIDATION, field,
                                  "%s: {{%s}} is not available in this statement", field,
                                  placeholder_names[ph]);
            else if (m && append_value(m, &cur, value, state == IN_SINGLE) != CF_OK)
                rc = cf_err_set(err, CF_ENOMEM, "%s: cannot render {{%s}}", field,
                                placeholder_names[ph]);
            rendered.used |= 1u << ph;
            i += ph_len;
            continue;
        }
        char c = *p, next = p[1];
        size_t take = 1;
        if (c == '\\') {
            rc = cf_err_field(err, CF_EVALIDATION, field,
                              "%s: a backslash at byte %zu (its meaning depends on the server's "
                              "sql_mode: write quotes doubled instead)",
                              field, i);
            break;
        }
        switch (state) {
        case IN_CODE:
            if (c == ';') {
                rc = end_statement(&cur, has_code, &rendered, m != NULL);
                if (rc != CF_OK)
                    rc = cf_err_field(err, rc == CF_ETOOLARGE ? CF_EVALIDATION : rc, field,
                                      "%s: more than %d statements, or out of memory", field,
                                      CF_MYSQL_STATEMENTS_MAX);
                has_code = false;
                i++;
                continue;
            }
            if (c == '\'')
                state = IN_SINGLE;
            else if (c == '"')
                state = IN_DOUBLE;
            else if (c == '`')
                state = IN_BACKQUOTE;
            /* "#", and "--" before a blank, a control character or the end, as the server reads
             * comments */
            else if (c == '#' || (c == '-' && next == '-' && (unsigned char)p[2] <= ' '))
                state = IN_LINE_COMMENT;
            else if (c == '/' && next == '*') {
                state = IN_BLOCK_COMMENT;
                take = 2;
            }
            if (state != IN_LINE_COMMENT && state != IN_BLOCK_COMMENT && c != ' ' && c != '\t' &&
                c != '\n' && c != '\r')
                has_code = true;
            break;
        case IN_SINGLE:
        case IN_DOUBLE:
        case IN_BACKQUOTE: {
            char quote = state == IN_SINGLE ? '\'' : state == IN_DOUBLE ? '"' : '`';
            if (c == quote && next == quote)
                take = 2; /* a doubled quote stays inside */
            else if (c == quote)
                state = IN_CODE;
            break;
        }
        case IN_LINE_COMMENT:
            if (c == '\n')
                state = IN_CODE;
            break;
        case IN_BLOCK_COMMENT:
            if (c == '*' && next == '/') {
                state = IN_CODE;
                take = 2;
            }
            break;
        }
        if (m && cf_buf_append(&cur, p, take) != CF_OK)
            rc = cf_err_set(err, CF_ENOMEM, "%s: out of memory", field);
        i += take;
    }
    if (rc == CF_OK && state != IN_CODE && state != IN_LINE_COMMENT)
        rc = cf_err_field(err, CF_EVALIDATION, field, "%s: an unterminated %s", field,
                          state == IN_BLOCK_COMMENT ? "comment" : "quote");
    if (rc == CF_OK) {
        rc = end_statement(&cur, has_code, &rendered, m != NULL);
        if (rc != CF_OK)
            rc = cf_err_field(err, rc == CF_ETOOLARGE ? CF_EVALIDATION : rc, field,
                              "%s: more than %d statements, or out of memory", field,
                              CF_MYSQL_STATEMENTS_MAX);
    }
    if (rc == CF_OK && rendered.n == 0)
        rc = cf_err_field(err, CF_EVALIDATION, field, "%s: holds no statement", field);
    cf_buf_release_wipe(&cur);
    if (rc == CF_OK && m)
        *out = rendered;
    else if (rc == CF_OK)
        out->used = rendered.used;
    else
        cf_mysql_statements_release(&rendered);
    return rc;
}

/* ---- parameters ---- */

/* The privilege list of params, each as MariaDB spells it, joined by ", " into out. */
static enum cf_rc privileges_of(const json_t *params, char *out, size_t size, struct cf_err *err)
{
    const json_t *list = json_object_get(params, "privileges");
    size_t used = 0;
    out[0] = '\0';
    if (!list)
        return cf_strlcpy(out, "SELECT", size) ? CF_OK
                                               : cf_err_set(err, CF_EINTERNAL, "privileges");
    if (!json_is_array(list) || json_array_size(list) == 0 ||
        json_array_size(list) > CF_ARRAY_SIZE(privilege_names))
        return cf_err_field(err, CF_EVALIDATION, "parameters.privileges",
                            "parameters.privileges: a list of privilege names is expected (such as "
                            "[\"SELECT\", \"INSERT\"])");
    size_t i;
    const json_t *item;
    json_array_foreach(list, i, item)
    {
        const char *name = json_string_value(item);
        const char *known = NULL;
        for (size_t k = 0; name && k < CF_ARRAY_SIZE(privilege_names); k++)
            if (strcasecmp(name, privilege_names[k]) == 0)
                known = privilege_names[k];
        if (!known)
            return cf_err_field(err, CF_EVALIDATION, "parameters.privileges",
                                "parameters.privileges: '%.40s' is not a privilege Coffer grants "
                                "(table and routine privileges such as SELECT, INSERT, UPDATE, "
                                "DELETE, EXECUTE)",
                                name ? name : "(not a string)");
        int w = snprintf(out + used, size - used, "%s%s", used ? ", " : "", known);
        if (w < 0 || (size_t)w >= size - used)
            return cf_err_set(err, CF_EINTERNAL, "the privilege list does not fit");
        used += (size_t)w;
    }
    return CF_OK;
}

/* A database name the default grant may name inside backquotes. */
static bool database_name_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '$' || c == '-'))
            return false;
    }
    return true;
}

/* A statement parameter: absent, or a string without NUL bytes. */
static enum cf_rc statement_param(const json_t *params, const char *name, const char **out,
                                  struct cf_err *err)
{
    const json_t *v = json_object_get(params, name);
    *out = NULL;
    if (!v || json_is_null(v))
        return CF_OK;
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return cf_err_field(err, CF_EVALIDATION, name, "parameters.%s: a string is expected", name);
    *out = json_string_value(v);
    return CF_OK;
}

/* The creation template of params into creation (borrowed from params, or built in built), and
 * the revocation template into revocation; database is the connection's database (NULL: none
 * given, while checking a dynamic secret's parameters alone). */
static enum cf_rc templates_of(const json_t *params, const char *database, const char **creation,
                               const char **revocation, char *built, size_t built_size,
                               struct cf_err *err)
{
    enum cf_rc rc = cf_dynamic_params_known(params, "mysql", param_names, err);
    if (rc != CF_OK)
        return rc;
    if (json_object_get(params, "renewStatement") &&
        !json_is_null(json_object_get(params, "renewStatement")))
        return cf_err_field(err, CF_EVALIDATION, "parameters.renewStatement",
                            "parameters.renewStatement: MySQL and MariaDB keep no end date on a "
                            "login (no VALID UNTIL), so a renewal moves only the lease's end");
    rc = statement_param(params, "creationStatement", creation, err);
    if (rc == CF_OK)
        rc = statement_param(params, "revocationStatement", revocation, err);
    if (rc != CF_OK)
        return rc;
    if (!*revocation)
        *revocation = "DROP USER IF EXISTS '{{username}}'@'%'";
    if (*creation) {
        if (json_object_get(params, "privileges") || json_object_get(params, "database"))
            return cf_err_field(err, CF_EVALIDATION,
                                json_object_get(params, "privileges") ? "parameters.privileges"
                                                                      : "parameters.database",
                                "parameters: privileges and database apply to the default "
                                "creation statement only; write the GRANT in creationStatement");
        return CF_OK;
    }
    char privileges[512];
    rc = privileges_of(params, privileges, sizeof(privileges), err);
    if (rc != CF_OK)
        return rc;
    const json_t *db = json_object_get(params, "database");
    if (db && !database_name_valid(json_string_value(db)))
        return cf_err_field(err, CF_EVALIDATION, "parameters.database",
                            "parameters.database: 1 to 64 letters, digits, '_', '$' or '-'");
    const char *grant_on = db ? json_string_value(db) : database;
    if (!grant_on) /* only checking: the connection's database is not known here */
        grant_on = "database";
    if (!database_name_valid(grant_on))
        return cf_err_field(err, CF_EVALIDATION, "parameters.database",
                            "parameters.database: the connection's database '%.64s' cannot be "
                            "named in the default GRANT; give a database",
                            grant_on);
    if ((size_t)snprintf(built, built_size,
                         "CREATE USER '{{username}}'@'%%' IDENTIFIED BY '{{password}}'; "
                         "GRANT %s ON `%s`.* TO '{{username}}'@'%%'",
                         privileges, grant_on) >= built_size)
        return cf_err_set(err, CF_EINTERNAL, "the default creation statement does not fit");
    *creation = built;
    return CF_OK;
}

static enum cf_rc config_check(const json_t *params, struct cf_err *err)
{
    const char *creation = NULL, *revocation = NULL;
    char built[1024];
    struct cf_mysql_statements created = {0}, revoked = {0};
    const struct cf_mysql_values create_values = {"u", "p", "e"};
    const struct cf_mysql_values revoke_values = {"u", NULL, "e"};
    enum cf_rc rc = templates_of(params, NULL, &creation, &revocation, built, sizeof(built), err);
    if (rc == CF_OK)
        rc = cf_mysql_render(NULL, "parameters.creationStatement", creation, &create_values,
                             &created, err);
    /* a creation statement that never names the login or its password makes nothing usable */
    if (rc == CF_OK && (created.used & CF_MYSQL_USES_LOGIN) != CF_MYSQL_USES_LOGIN)
        rc = cf_err_field(err, CF_EVALIDATION, "parameters.creationStatement",
                          "parameters.creationStatement: must use {{username}} and {{password}}");
    if (rc == CF_OK)
        rc = cf_mysql_render(NULL, "parameters.revocationStatement", revocation, &revoke_values,
                             &revoked, err);
    if (rc == CF_OK && !(revoked.used & CF_MYSQL_USES_USERNAME))
        rc = cf_err_field(err, CF_EVALIDATION, "parameters.revocationStatement",
                          "parameters.revocationStatement: must use {{username}}");
    return rc;
}

/* ---- sessions ---- */

/* What a session needs from the connection's credentials (borrowed strings). */
struct my_target {
    const char *host;   /* a host name or address; NULL with a socket */
    const char *socket; /* the Unix socket's path; NULL over TCP */
    unsigned int port;
    const char *database;
    const char *username;
    const char *password;
    const char *ca_pem;
    bool tls, verify;
};

static const char *cred_string(const json_t *credentials, const char *name)
{
    const char *value = json_string_value(json_object_get(credentials, name));
    return value && *value ? value : NULL;
}

static enum cf_rc target_of(const struct cf_provider_conn *conn, struct my_target *t,
                            struct cf_err *err)
{
    const json_t *c = conn ? conn->credentials : NULL;
    long long port = 0;
    memset(t, 0, sizeof(*t));
    const char *host = cred_string(c, "host");
    t->database = cred_string(c, "database");
    t->username = cred_string(c, "username");
    t->password = cred_string(c, "password");
    t->ca_pem = cred_string(c, "sslCertificate");
    const json_t *port_value = json_object_get(c, "port");
    if (json_is_integer(port_value))
        port = json_integer_value(port_value);
    else if (json_is_string(port_value) &&
             !cf_parse_int64(json_string_value(port_value), 1, 65535, &port))
        port = 0;
    if (!host || port < 1 || port > 65535 || !t->database || !t->username || !t->password)
        return cf_err_set(err, CF_EINVAL,
                          "the mysql connection needs host, port, database, username and "
                          "password");
    t->port = (unsigned int)port;
    if (host[0] == '/')
        t->socket = host;
    else
        t->host = host;
    t->tls = json_is_true(json_object_get(c, "sslEnabled"));
    t->verify = t->tls && !json_is_false(json_object_get(c, "sslRejectUnauthorized"));
    return CF_OK;
}

static pthread_once_t library_once = PTHREAD_ONCE_INIT;

/* mysql_init initialises the client library on first use, which is not thread-safe */
static void library_init(void)
{
    (void)mysql_library_init(0, NULL, NULL);
}

/* The server's message on one line, cut to SERVER_MSG_MAX; left out when it quotes secret. */
static void server_message(MYSQL *m, const char *secret, char out[SERVER_MSG_MAX + 1])
{
    const char *text = mysql_error(m);
    size_t n = 0;
    if (secret && *secret && strstr(text, secret)) {
        snprintf(out, SERVER_MSG_MAX + 1, "(the server's message quotes the statement)");
        return;
    }
    for (const char *c = text; *c && n < SERVER_MSG_MAX; c++)
        out[n++] = (unsigned char)*c < 0x20 ? ' ' : *c;
    out[n] = '\0';
}

/* The failure of a session that did not open: the server refused the login (CF_EUNAUTH), the
 * database does not exist (CF_ENOTFOUND), the login may not use it (CF_EFORBIDDEN), or it could not
 * be reached or spoken to (CF_EIO). */
static enum cf_rc connect_error(const struct my_target *t, const char *user, MYSQL *m,
                                struct cf_err *err)
{
    char msg[SERVER_MSG_MAX + 1];
    unsigned int code = mysql_errno(m);
    server_message(m, NULL, msg);
    enum cf_rc rc = code == ER_ACCESS_DENIED_ERROR     ? CF_EUNAUTH
                    : code == ER_BAD_DB_ERROR          ? CF_ENOTFOUND
                    : code == ER_DBACCESS_DENIED_ERROR ? CF_EFORBIDDEN
                                                       : CF_EIO;
    return cf_err_set(err, rc, "mysql at \"%.64s\" port %u, login \"%.32s\": %s",
                      t->socket ? t->socket : t->host, t->port, user, msg);
}

/* Opens a session at t as user with password (the connection's own login when user is NULL). */
static enum cf_rc open_session(const struct my_target *t, const char *user, const char *password,
                               MYSQL **out, struct cf_err *err)
{
    char ca_path[256] = "";
    unsigned int connect_timeout = CF_MYSQL_CONNECT_TIMEOUT_S, io_timeout = CF_MYSQL_IO_TIMEOUT_S;
    unsigned int local_infile = 0;
    my_bool on = 1, verify = t->verify;
    enum cf_rc rc = CF_OK;

    *out = NULL;
    if (!user) {
        user = t->username;
        password = t->password;
    }
    rc = cf_dynlib_load(&cf_lib_mariadb, err);
    if (rc != CF_OK)
        return rc;
    pthread_once(&library_once, library_init);
    MYSQL *m = mysql_init(NULL);
    if (!m)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
    mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
    mysql_options(m, MYSQL_OPT_LOCAL_INFILE, &local_infile);
    mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (t->tls) {
        mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &on);
        mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
        if (t->verify) {
            rc = cf_provider_ca_file(t->ca_pem, ca_path, sizeof(ca_path), err);
            if (rc != CF_OK)
                goto out;
            mysql_options(m, MYSQL_OPT_SSL_CA, ca_path[0] ? ca_path : SYSTEM_CA_BUNDLE);
        }
    }
    /* no CLIENT_MULTI_STATEMENTS: every query is one statement */
    if (!mysql_real_connect(m, t->socket ? "localhost" : t->host, user, password, t->database,
                            t->port, t->socket, 0))
        rc = connect_error(t, user, m, err);
out:
    if (ca_path[0])
        unlink(ca_path);
    if (rc != CF_OK)
        mysql_close(m);
    else
        *out = m;
    return rc;
}

/* The failure of a statement: a missing privilege (CF_EFORBIDDEN), an unknown database
 * (CF_ENOTFOUND), a statement the server cannot parse (CF_EVALIDATION), anything else CF_EIO;
 * the server's message unless it quotes password. */
static enum cf_rc statement_error(MYSQL *m, const char *doing, const char *password,
                                  struct cf_err *err)
{
    char msg[SERVER_MSG_MAX + 1];
    unsigned int code = mysql_errno(m);
    server_message(m, password, msg);
    switch (code) {
    case ER_SPECIFIC_ACCESS_DENIED_ERROR:
    case ER_DBACCESS_DENIED_ERROR:
    case ER_ACCESS_DENIED_ERROR:
    case ER_TABLEACCESS_DENIED_ERROR:
    case ER_COLUMNACCESS_DENIED_ERROR:
    case ER_PROCACCESS_DENIED_ERROR:
    case ER_PASSWORD_NO_MATCH:
        return cf_err_set(err, CF_EFORBIDDEN, "mysql: %s: %s", doing, msg);
    case ER_BAD_DB_ERROR:
        return cf_err_set(err, CF_ENOTFOUND, "mysql: %s: %s", doing, msg);
    case ER_PARSE_ERROR:
    case ER_SYNTAX_ERROR:
        /* the message quotes the statement, which may hold the password */
        return cf_err_set(err, CF_EVALIDATION, "mysql: %s: the server cannot parse it (%u)", doing,
                          code);
    default:
        return cf_err_set(err, CF_EIO, "mysql: %s: %s (%u)", doing, msg, code);
    }
}

/* Runs statements in order; *failed_at the index of the one that failed. ER_CANNOT_USER (a DROP
 * USER of a login that is gone) counts as done when gone_ok. */
static enum cf_rc run_statements(MYSQL *m, const struct cf_mysql_statements *s, const char *what,
                                 const char *password, bool gone_ok, size_t *failed_at,
                                 struct cf_err *err)
{
    for (size_t i = 0; i < s->n; i++) {
        if (mysql_real_query(m, s->items[i], (unsigned long)strlen(s->items[i])) == 0) {
            MYSQL_RES *res = mysql_store_result(m); /* a statement that answers rows */
            mysql_free_result(res);
            continue;
        }
        if (gone_ok && mysql_errno(m) == ER_CANNOT_USER)
            continue;
        char doing[96];
        snprintf(doing, sizeof(doing), "%s statement %zu of %zu", what, i + 1, s->n);
        *failed_at = i;
        return statement_error(m, doing, password, err);
    }
    return CF_OK;
}

/* ---- the provider ---- */

/* The lease's end as MariaDB's DATETIME literal reads it, in UTC. */
static void expiration_of(int64_t unix_ms, char out[EXPIRATION_LEN])
{
    time_t seconds = (time_t)(unix_ms / 1000);
    struct tm tm;
    if (unix_ms <= 0 || !gmtime_r(&seconds, &tm) ||
        strftime(out, EXPIRATION_LEN, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(out, EXPIRATION_LEN, "9999-12-31 23:59:59");
}

/* "cf_" + 8 hex digits of the lease id + "_" + 12 random characters. */
static void new_username(const struct cf_lease_ref *ref, char out[CF_MYSQL_USER_MAX + 1])
{
    size_t n = 0;
    memcpy(out, "cf_", 3);
    n = 3;
    for (const char *c = ref && ref->id ? ref->id : ""; *c && n < 11; c++)
        if (cf_hex_digit(*c) >= 0)
            out[n++] = (char)(*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
    while (n < 11)
        out[n++] = "0123456789abcdef"[randombytes_uniform(16)];
    out[n++] = '_';
    for (size_t i = 0; i < RANDOM_PART_LEN; i++)
        out[n++] = username_alphabet[randombytes_uniform(sizeof(username_alphabet) - 1)];
    out[n] = '\0';
}

static enum cf_rc new_password(char **out, struct cf_err *err)
{
    char *password = malloc(CF_MYSQL_PASSWORD_LEN + 1);
    if (!password)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; i < CF_MYSQL_PASSWORD_LEN; i++)
        password[i] = password_alphabet[randombytes_uniform(sizeof(password_alphabet) - 1)];
    password[CF_MYSQL_PASSWORD_LEN] = '\0';
    *out = password;
    return CF_OK;
}

/* Runs the revocation statements for username on the open session m. */
static enum cf_rc drop_login(MYSQL *m, const char *revocation, const char *username,
                             const char *expiration, struct cf_err *err)
{
    struct cf_mysql_statements s = {0};
    const struct cf_mysql_values values = {username, NULL, expiration};
    size_t failed_at = 0;
    enum cf_rc rc =
        cf_mysql_render(m, "parameters.revocationStatement", revocation, &values, &s, err);
    if (rc == CF_OK)
        rc = run_statements(m, &s, "revocation", NULL, true, &failed_at, err);
    cf_mysql_statements_release(&s);
    return rc;
}

static enum cf_rc my_create(const struct cf_provider_conn *conn, const json_t *params,
                            const struct cf_lease_ref *ref, struct cf_leased_cred *out,
                            struct cf_err *err)
{
    struct my_target t;
    struct cf_mysql_statements s = {0};
    const char *creation = NULL, *revocation = NULL;
    char built[1024], username[CF_MYSQL_USER_MAX + 1], expiration[EXPIRATION_LEN];
    char *password = NULL;
    MYSQL *m = NULL;
    size_t failed_at = 0;

    memset(out, 0, sizeof(*out));
    enum cf_rc rc = config_check(params, err);
    if (rc == CF_OK)
        rc = target_of(conn, &t, err);
    if (rc == CF_OK)
        rc = templates_of(params, t.database, &creation, &revocation, built, sizeof(built), err);
    if (rc == CF_OK)
        rc = new_password(&password, err);
    if (rc == CF_OK)
        rc = open_session(&t, NULL, NULL, &m, err);
    if (rc != CF_OK)
        goto out;
    new_username(ref, username);
    expiration_of(ref ? ref->expires_at : 0, expiration);
    const struct cf_mysql_values values = {username, password, expiration};
    rc = cf_mysql_render(m, "parameters.creationStatement", creation, &values, &s, err);
    if (rc == CF_OK)
        rc = run_statements(m, &s, "creation", password, false, &failed_at, err);
    if (rc != CF_OK) {
        /* a login half made (created, not granted) is removed; the first error is the answer */
        struct cf_err ignored = {0};
        if (failed_at > 0)
            (void)drop_login(m, revocation, username, expiration, &ignored);
        goto out;
    }
    cf_strlcpy(out->id, username, sizeof(out->id));
    out->expires_at = 0; /* no end of its own: only revocation ends it */
    out->fields = json_pack("{s:s, s:s}", "DB_USERNAME", username, "DB_PASSWORD", password);
    if (!out->fields)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
out:
    cf_mysql_statements_release(&s);
    if (password) {
        sodium_memzero(password, CF_MYSQL_PASSWORD_LEN);
        free(password);
    }
    if (rc != CF_OK)
        cf_leased_cred_release(out);
    mysql_close(m);
    return rc;
}

static enum cf_rc my_revoke(const struct cf_provider_conn *conn, const json_t *params,
                            const struct cf_lease_ref *ref, const char *id, struct cf_err *err)
{
    struct my_target t;
    const char *creation = NULL, *revocation = NULL;
    char built[1024], expiration[EXPIRATION_LEN];
    MYSQL *m = NULL;
    enum cf_rc rc = config_check(params, err);
    /* only a name Coffer could have issued: anything else is never dropped */
    if (rc == CF_OK && !cf_mysql_username_valid(id))
        rc = cf_err_set(err, CF_EINVAL, "mysql: \"%.40s\" is not a login Coffer issues",
                        id ? id : "");
    if (rc == CF_OK)
        rc = target_of(conn, &t, err);
    if (rc == CF_OK)
        rc = templates_of(params, t.database, &creation, &revocation, built, sizeof(built), err);
    if (rc == CF_OK)
        rc = open_session(&t, NULL, NULL, &m, err);
    expiration_of(ref ? ref->expires_at : 0, expiration);
    if (rc == CF_OK)
        rc = drop_login(m, revocation, id, expiration, err);
    mysql_close(m);
    return rc;
}

static void my_plan(const struct cf_provider_conn *conn, const json_t *params,
                    const struct cf_lease_ref *ref, cf_rotation_plan_fn fn, void *ctx)
{
    struct my_target t;
    struct cf_err err = {0};
    struct cf_mysql_statements created = {0}, revoked = {0};
    const char *creation = NULL, *revocation = NULL;
    char built[1024], username[CF_MYSQL_USER_MAX + 1], expiration[EXPIRATION_LEN];
    const char *database = target_of(conn, &t, &err) == CF_OK ? t.database : NULL;
    MYSQL *m = NULL;

    if (config_check(params, &err) != CF_OK ||
        templates_of(params, database, &creation, &revocation, built, sizeof(built), &err) !=
            CF_OK) {
        fn(ctx, "create", "SQL", "-", err.msg);
        return;
    }
    if (cf_dynlib_load(&cf_lib_mariadb, &err) != CF_OK) {
        fn(ctx, "create", "SQL", "-", err.msg);
        return;
    }
    pthread_once(&library_once, library_init);
    m = mysql_init(NULL); /* escapes as for a server in the default sql_mode */
    new_username(ref, username);
    expiration_of(ref ? ref->expires_at : 0, expiration);
    const struct cf_mysql_values values = {username, "***", expiration};
    const struct cf_mysql_values revoke_values = {username, NULL, expiration};
    if (!m ||
        cf_mysql_render(m, "parameters.creationStatement", creation, &values, &created, &err) !=
            CF_OK ||
        cf_mysql_render(m, "parameters.revocationStatement", revocation, &revoke_values, &revoked,
                        &err) != CF_OK) {
        fn(ctx, "create", "SQL", "-", m ? err.msg : "out of memory");
        goto out;
    }
    char purpose[256];
    snprintf(purpose, sizeof(purpose),
             "create the lease's login at %s (its name and password new "
             "for each lease)",
             database ? (t.socket ? t.socket : t.host) : "the connection's server");
    for (size_t i = 0; i < created.n; i++)
        fn(ctx, "create", "SQL", created.items[i], purpose);
    fn(ctx, "renew", "-", "-",
       "nothing at the server: MySQL and MariaDB keep no end date on a login, so only the "
       "lease's end moves");
    for (size_t i = 0; i < revoked.n; i++)
        fn(ctx, "revoke", "SQL", revoked.items[i], "remove the login at the lease's end");
out:
    cf_mysql_statements_release(&created);
    cf_mysql_statements_release(&revoked);
    mysql_close(m);
}

const struct cf_dynamic_ops cf_dynamic_mysql = {
    .type = "mysql",
    .connection_app = "mysql",
    .fields = fields,
    .config_check = config_check,
    .create = my_create,
    .renew = NULL, /* no VALID UNTIL in MySQL or MariaDB */
    .revoke = my_revoke,
    .plan = my_plan,
};

/* ---- the connection check ---- */

enum cf_rc cf_mysql_check(const struct cf_provider_conn *conn, json_t **report, struct cf_err *err)
{
    struct my_target t;
    MYSQL *m = NULL;
    MYSQL_RES *res = NULL;
    json_t *scopes = NULL;
    bool create_user = false, grant_option = false;
    *report = NULL;
    enum cf_rc rc = target_of(conn, &t, err);
    if (rc == CF_OK)
        rc = open_session(&t, NULL, NULL, &m, err);
    if (rc != CF_OK)
        goto out;
    /* the login's global privileges: information_schema shows the current user's own, and every
     * user's to a login that may read the mysql schema, hence the filter on CURRENT_USER() */
    static const char query[] =
        "SELECT PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES "
        "WHERE GRANTEE = CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', "
        "SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''') ORDER BY 1";
    if (mysql_real_query(m, query, sizeof(query) - 1) != 0 || !(res = mysql_store_result(m))) {
        rc = statement_error(m, "reading the login's privileges", NULL, err);
        goto out;
    }
    scopes = json_array();
    bool ok = scopes != NULL;
    MYSQL_ROW row;
    while (ok && (row = mysql_fetch_row(res))) {
        if (!row[0] || strcmp(row[0], "USAGE") == 0)
            continue;
        create_user = create_user || strcmp(row[0], "CREATE USER") == 0;
        grant_option = grant_option || (row[1] && strcmp(row[1], "YES") == 0);
        ok = json_array_append_new(scopes, json_string(row[0])) == 0;
    }
    if (ok && grant_option)
        ok = json_array_append_new(scopes, json_string("GRANT OPTION")) == 0;
    const char *detail =
        create_user && grant_option
            ? "the login may create logins (CREATE USER) and grant its own privileges (WITH GRANT "
              "OPTION)"
        : create_user ? "the login may create logins but grants nothing globally: it needs WITH "
                        "GRANT OPTION on the privileges it grants (globally or on the database)"
                      : "the login may not create logins: grant it CREATE USER, and the privileges "
                        "it grants WITH GRANT OPTION";
    if (ok)
        *report = json_pack("{s:b, s:n, s:O, s:s}", "ok", 1, "expiresAt", "scopes", scopes,
                            "detail", detail);
    if (!*report)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
out:
    json_decref(scopes);
    mysql_free_result(res);
    mysql_close(m);
    return rc;
}
