/* Internal to src/store: the SQLite driver's constructor (called by cf_store_open) and the schema
 * migrations that scripts/embed_sql.py compiles in from src/store/migrations/NNNN_name.sql. Nothing
 * outside src/store and its unit test includes this header; everyone else goes through store.h. */
#ifndef CF_STORE_SQLITE_H
#define CF_STORE_SQLITE_H

#include <stddef.h>

#include "store/store.h"
#include "util/err.h"

/* One numbered migration: the SQL of src/store/migrations/<version>_<name>.sql. */
struct cf_store_migration {
    int version; /* 1, 2, ... in array order, without gaps */
    const char *name;
    const char *sql;
};

/* Generated (store_migrations.c): every migration this binary knows, ordered by version. */
extern const struct cf_store_migration cf_store_migrations[];
extern const size_t cf_store_migrations_n;

/* Opens (creating when missing) the SQLite database file at path, applies pending migrations and
 * returns the store in *out (released with cf_store_close). busy_timeout_ms <= 0 means 5000.
 * CF_ESTORE when the file is not a usable database or its schema is newer than this binary;
 * CF_EUNAVAIL when it stays locked. */
enum cf_rc cf_sqlite_open(const char *path, int busy_timeout_ms, struct cf_store **out,
                          struct cf_err *err);

#endif
