/* PostgreSQL logins as credentials Coffer rotates: the "postgres" app connection's check and the
 * "postgres-credentials" rotator (Infisical's "PostgreSQL Credentials" rotation), through libpq.
 *
 * Connection, method "username-and-password": {"host" (a name, an address, or a Unix socket
 * directory as an absolute path), "port", "database", "username", "password", "sslEnabled"?,
 * "sslRejectUnauthorized"? (default true), "sslCertificate"? (PEM of the CA to trust; the system's
 * bundle otherwise)}. Without sslEnabled libpq's "prefer" applies; with it TLS is required, and
 * verified (verify-full) unless sslRejectUnauthorized is false. Each call opens one session with a
 * connect_timeout of CF_PG_CONNECT_TIMEOUT_S and statement and lock timeouts, passing the password
 * as a PQconnectdbParams value, never inside a conninfo string.
 *
 * Rotation parameters {"username1", "username2"}: two roles that already exist, may log in and have
 * the same grants. Each issue sets a new password on the role not in use (ref->current; username1
 * first), so the role applications hold keeps working until the engine switches the secret and
 * revokes it. The password is 40 characters of [A-Za-z0-9] from libsodium's generator and reaches
 * the server only as a SCRAM-SHA-256 verifier (PQencryptPasswordConn), so neither the server's
 * statement log nor pg_stat_statements ever sees it. Outputs: "username", "password".
 *
 * Revoking a role sets PASSWORD NULL: no password (old or new) logs in as it any more, its grants
 * and memberships stay for the next issue, and doing it twice changes nothing. Sessions already
 * open stay open (a pool drains them as it recycles); issuing replaces rather than adds, so there
 * is nothing to list after a crash (list_issued is NULL).
 *
 * The connection's login needs the right to change the two roles' passwords: superuser, or
 * CREATEROLE (PostgreSQL up to 15) and, from PostgreSQL 16, ADMIN OPTION on each role. A refusal is
 * CF_EFORBIDDEN naming the login and the role. Thread-safe: no shared state. */
#ifndef CF_PROVIDER_PGROLE_H
#define CF_PROVIDER_PGROLE_H

#include <libpq-fe.h>

#include "provider/provider.h"
#include "provider/rotator.h"

/* Seconds libpq waits to establish a session (each address tried). */
#define CF_PG_CONNECT_TIMEOUT_S 10
/* Milliseconds a statement or a lock may wait. */
#define CF_PG_STATEMENT_TIMEOUT_MS 15000
/* Length of an issued password. */
#define CF_PG_PASSWORD_LEN 40
/* PostgreSQL's identifier limit (NAMEDATALEN - 1). */
#define CF_PG_ROLE_MAX 63

/* The "postgres-credentials" rotator. */
extern const struct cf_rotator_ops cf_rotator_postgres_credentials;

/* Checks a "postgres" connection: logs in, runs SELECT 1 and reports, in *report (a new object as
 * cf_provider_check describes), whether the login may change other roles' passwords ("scopes":
 * "SUPERUSER", "CREATEROLE", and the roles it holds with ADMIN OPTION as "ADMIN:role"; "detail"
 * says what is missing). CF_EUNAUTH when the server refuses the login, CF_EIO when it cannot be
 * reached in time. */
enum cf_rc cf_pg_check(const struct cf_provider_conn *conn, json_t **report, struct cf_err *err);

/* Opens a session with conn's settings as its own login (the dynamic providers' way in, see
 * pgdynamic.c): *out is the session (close it with PQfinish) and *login (borrowed from conn) the
 * login's name, for messages. Errors as above (CF_EINVAL for a connection missing a setting). */
enum cf_rc cf_pg_connect(const struct cf_provider_conn *conn, PGconn **out, const char **login,
                         struct cf_err *err);

/* Opens a session at conn's server and database as user with password (a login Coffer issued, to
 * check it); errors as cf_pg_connect. */
enum cf_rc cf_pg_connect_as(const struct cf_provider_conn *conn, const char *user,
                            const char *password, PGconn **out, struct cf_err *err);

/* Runs sql (one or more statements, one implicit transaction) on pg. CF_EFORBIDDEN for a missing
 * privilege, CF_ENOTFOUND for an object that does not exist, CF_EIO otherwise, the message naming
 * doing and the server's primary message (never the statement). */
enum cf_rc cf_pg_exec(PGconn *pg, const char *sql, const char *doing, struct cf_err *err);

/* Runs sql with one text parameter $1 (NULL: none); *found says whether it returned a row, and the
 * first column of that row goes to value (size bytes; value NULL: not kept). Errors as cf_pg_exec.
 */
enum cf_rc cf_pg_query_one(PGconn *pg, const char *sql, const char *param, bool *found, char *value,
                           size_t size, const char *doing, struct cf_err *err);

/* The wall clock in Unix ms, as the PostgreSQL server sees it (never Coffer's test clock). */
int64_t cf_pg_wall_ms(void);

#endif
