/* PostgreSQL logins as dynamic secrets: the "postgres" dynamic provider (provider/dynamic.h), one
 * LOGIN role per lease, through libpq with the "postgres" app connection (provider/pgrole.h).
 *
 * Params {"grantRole"?, "usernamePrefix"? (default "coffer_"), "creationStatement"?,
 * "renewStatement"?, "revocationStatement"?}. A statement is a template of one or more SQL
 * statements with placeholders, each replaced by libpq's escaping, never spliced raw:
 *   {{username}}   the lease's role, as an identifier (PQescapeIdentifier);
 *   {{password}}   a literal (PQescapeLiteral) holding the SCRAM-SHA-256 verifier of the new
 *                  password (PQencryptPasswordConn), so no statement log ever sees the password;
 *   {{expiration}} a literal holding the lease's end as an RFC 3339 timestamp;
 *   {{role}}       grantRole, as an identifier.
 * Any other {{...}} is refused when the dynamic secret is saved. The defaults:
 *   create  CREATE ROLE {{username}} WITH LOGIN PASSWORD {{password}} VALID UNTIL {{expiration}};
 *           GRANT {{role}} TO {{username}}; GRANT {{username}} TO CURRENT_USER;
 *   renew   ALTER ROLE {{username}} VALID UNTIL {{expiration}};
 *   revoke  REASSIGN OWNED BY {{username}} TO CURRENT_USER; DROP OWNED BY {{username}};
 *           DROP ROLE {{username}};
 * (grantRole is required unless a creationStatement is given; the connection's login becomes a
 * member of each lease's role so that, with CREATEROLE and ADMIN OPTION on the granted role and no
 * superuser right, it may end the role's sessions and reassign and drop what it owns.) A template
 * runs as one implicit
 * transaction. Before the revocation statement, the role's sessions are ended
 * (pg_terminate_backend, the name passed as a bound parameter); a role that no longer exists is
 * revoked already. The role's name is the prefix and the lease id's 32 hex digits, so a lease can
 * be revoked even if its create never recorded what it made.
 *
 * Fields handed to the caller: DB_USERNAME, DB_PASSWORD (40 characters of [A-Za-z0-9]), DB_HOST,
 * DB_PORT, DB_NAME. Thread-safe: no shared state. */
#ifndef CF_PROVIDER_PGDYNAMIC_H
#define CF_PROVIDER_PGDYNAMIC_H

#include "provider/dynamic.h"

/* The "postgres" dynamic provider. */
extern const struct cf_dynamic_ops cf_dynamic_postgres;

#endif
