/* MySQL and MariaDB logins as dynamic secrets: the "mysql" app connection's check and the "mysql"
 * dynamic provider (provider/dynamic.h), through libmariadb.
 *
 * Connection, method "username-and-password": {"host" (a name, an address, or the absolute path of
 * the server's Unix socket), "port", "database", "username", "password", "sslEnabled"?,
 * "sslRejectUnauthorized"? (default true), "sslCertificate"? (PEM of the CA to trust; the system's
 * bundle otherwise)}, the shape of the "postgres" connection. With sslEnabled TLS is required, and
 * the server's certificate verified unless sslRejectUnauthorized is false. Each call opens one
 * session with connect, read and write timeouts, LOAD DATA LOCAL off and the utf8mb4 character set.
 *
 * Dynamic secret parameters (every one optional):
 * - "creationStatement": statements separated by ';' run to create a login; default
 *   CREATE USER '{{username}}'@'%' IDENTIFIED BY '{{password}}'; GRANT <privileges> ON
 *   `<database>`.* TO '{{username}}'@'%'
 * - "revocationStatement": default DROP USER IF EXISTS '{{username}}'@'%'
 * - "privileges": the privileges the default creation statement grants (names from MariaDB's
 *   list, CF_MYSQL_PRIVILEGES below; default ["SELECT"]); "database": the database they are granted
 *   on (letters, digits, '_', '$', '-'; default the connection's database). Both only with the
 *   default creation statement.
 * - "renewStatement" is refused: neither MariaDB nor MySQL keeps an end date on a login (no
 *   VALID UNTIL), so renewal only moves the lease's end and the ops' renew is NULL.
 *
 * Placeholders {{username}}, {{password}} and {{expiration}} (the lease's end, 'YYYY-MM-DD
 * HH:MM:SS' in UTC) are taken only inside single-quoted literals, where their value is escaped by
 * mysql_real_escape_string on the session (so it follows the server's sql_mode), or inside
 * backquoted identifiers, where backquotes are doubled. A placeholder anywhere else (bare, in
 * double quotes, whose meaning depends on ANSI_QUOTES, or in a comment) is refused, as is a
 * backslash anywhere in a statement. Statements are split at the semicolons outside quotes and
 * comments before anything is substituted, and each is sent alone (the session does not allow
 * several statements per query), so no value can end a statement or start another.
 *
 * Usernames are "cf_", eight hex digits of the lease id, '_' and twelve random [a-z0-9]: 24
 * characters, inside MySQL's 32; revoke takes only a name of that shape. Passwords are
 * CF_MYSQL_PASSWORD_LEN characters of [A-Za-z0-9] from libsodium's generator.
 *
 * When a creation statement fails after an earlier one succeeded, the revocation statements run
 * (their failure ignored) so that no half-made login stays behind. Revoking a login that is gone
 * is CF_OK (IF EXISTS, or ER_CANNOT_USER from a DROP USER without it). A server message that
 * quotes a statement holding the password is left out of err. Thread-safe: no shared state beyond
 * the client library's one-time initialisation. */
#ifndef CF_PROVIDER_MYSQLDYNAMIC_H
#define CF_PROVIDER_MYSQLDYNAMIC_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "provider/dynamic.h"
#include "provider/provider.h"
#include "util/err.h"

/* Seconds libmariadb waits to connect, and for each read or write. */
#define CF_MYSQL_CONNECT_TIMEOUT_S 10
#define CF_MYSQL_IO_TIMEOUT_S 15
/* Length of an issued password. */
#define CF_MYSQL_PASSWORD_LEN 32
/* MySQL's limit on a user name (MariaDB takes 80); issued names have 24 characters. */
#define CF_MYSQL_USER_MAX 32
/* Limits of a statement template: its length and the statements it may hold. */
#define CF_MYSQL_TEMPLATE_MAX 8192
#define CF_MYSQL_STATEMENTS_MAX 16
/* The privileges "privileges" may name (MariaDB's names, any case). */
#define CF_MYSQL_PRIVILEGES                                                                        \
    "ALTER", "ALTER ROUTINE", "CREATE", "CREATE ROUTINE", "CREATE TEMPORARY TABLES",               \
        "CREATE VIEW", "DELETE", "DELETE HISTORY", "DROP", "EVENT", "EXECUTE", "INDEX", "INSERT",  \
        "LOCK TABLES", "REFERENCES", "SELECT", "SHOW VIEW", "TRIGGER", "UPDATE"

/* libmariadb's session (MYSQL); tests and callers outside this module only pass it along. */
struct st_mysql;

/* The values of the placeholders; NULL: that placeholder is not allowed in the template. */
struct cf_mysql_values {
    const char *username;
    const char *password;
    const char *expiration;
};

/* Bits of cf_mysql_statements.used: the placeholders a template uses. */
#define CF_MYSQL_USES_USERNAME 1u
#define CF_MYSQL_USES_PASSWORD 2u
#define CF_MYSQL_USES_EXPIRATION 4u
#define CF_MYSQL_USES_LOGIN (CF_MYSQL_USES_USERNAME | CF_MYSQL_USES_PASSWORD)

/* Rendered statements, each a NUL-terminated string from malloc. */
struct cf_mysql_statements {
    char **items;
    size_t n;
    unsigned used; /* CF_MYSQL_USES_* of the placeholders the template holds */
};

/* Wipes (they may hold a password) and frees s's statements and zeroes s; safe on a zeroed
 * struct. */
void cf_mysql_statements_release(struct cf_mysql_statements *s);

/* Splits template into statements as described above and substitutes the placeholders of values,
 * escaping each for the session m (connected, or only initialised by mysql_init, which escapes as
 * for a server without NO_BACKSLASH_ESCAPES). m NULL only checks the template: *out stays
 * zeroed. field names the template in messages ("parameters.creationStatement"). CF_EVALIDATION
 * naming field for a template that is empty, too long, unterminated, holds a backslash, an unknown
 * placeholder, one whose value is NULL or one outside single quotes and backquotes; CF_ENOMEM. On
 * CF_OK *out holds the statements (release with cf_mysql_statements_release) and, with m NULL
 * too, the placeholders used. */
enum cf_rc cf_mysql_render(struct st_mysql *m, const char *field, const char *template,
                           const struct cf_mysql_values *values, struct cf_mysql_statements *out,
                           struct cf_err *err);

/* true when name has the shape of an issued login's name ("cf_", 8 hex digits, '_', 12 of
 * [a-z0-9]): revoke drops nothing else. */
bool cf_mysql_username_valid(const char *name);

/* The "mysql" dynamic provider. */
extern const struct cf_dynamic_ops cf_dynamic_mysql;

/* Checks a "mysql" connection: logs in, runs SELECT 1 and reports, in *report (a new object as
 * cf_provider_check describes), the login's global privileges as scopes and in detail whether it
 * may create logins (CREATE USER) and grant (WITH GRANT OPTION). CF_EUNAUTH when the server
 * refuses the login, CF_EIO when it cannot be reached in time. */
enum cf_rc cf_mysql_check(const struct cf_provider_conn *conn, json_t **report, struct cf_err *err);

#endif
