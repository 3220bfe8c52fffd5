/* Internal to src/store: the PostgreSQL driver's constructor, called by cf_store_open for a
 * postgres:// or postgresql:// DSN. Everyone else goes through store.h. */
#ifndef CF_STORE_POSTGRES_H
#define CF_STORE_POSTGRES_H

#include "store/store.h"
#include "util/err.h"

/* Connects to the database named by dsn (a libpq URI; the password is never shown in messages),
 * applies pending migrations under a lock shared by every node, and returns the store in *out
 * (released with cf_store_close). timeout_ms <= 0 means 5000: the longest a connection attempt,
 * a statement or a lock wait may take. pool_size <= 0 means 16: the most connections this process
 * opens. CF_EUNAVAIL when the database cannot be reached; CF_ESTORE when its schema is newer than
 * this binary or a migration fails. */
enum cf_rc cf_postgres_open(const char *dsn, int timeout_ms, int pool_size, struct cf_store **out,
                            struct cf_err *err);

#endif
