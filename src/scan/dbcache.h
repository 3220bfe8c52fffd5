/* A per-user cache of compiled Hyperscan databases, so that a scan does not pay for compiling its
 * rules (70-100 ms for the built-in set) at every run: a pre-commit hook runs on every commit.
 *
 * A database is stored under a key that names everything it was compiled from (the Hyperscan
 * version, the processor it was tuned for, the mode, and every expression with its flags and id),
 * with the rules that Hyperscan took only as prefilters, and a checksum over the whole file. A file
 * that does not read back exactly (wrong magic, key, rule count, checksum, or a database Hyperscan
 * refuses) is not used: the rules are compiled and the file replaced.
 *
 * Never used for a database holding known values (those are secrets): the caller passes no
 * directory then. The directory must be the user's own and writable by no one else, or it is not
 * used at all (a planted database could hide findings). At most CF_SCAN_CACHE_FILES databases are
 * kept; the least recently used beyond that are removed. */
#ifndef CF_SCAN_DBCACHE_H
#define CF_SCAN_DBCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hs/hs.h>

#define CF_SCAN_CACHE_KEY_BYTES 32
#define CF_SCAN_CACHE_FILES 16
/* A cached file larger than this is not read (the built-in rules' database is about 1 MiB). */
#define CF_SCAN_CACHE_MAX_BYTES (64 * 1024 * 1024)

/* The directory a scan caches in: $XDG_CACHE_HOME/coffer when that is an absolute path, else
 * $HOME/.cache/coffer; made (0700) if missing. NULL when there is none or it cannot be made (why
 * is "" then: nothing to tell), or when it is not safe to use: not a directory, not owned by this
 * user, or writable by group or others (why, in why[0..size-1], says which). The result is
 * malloc'd. */
char *cf_scan_cache_dir(char *why, size_t size);

/* The key of a database compiled from count expressions with these flags and ids, in mode, for
 * platform (NULL: the generic target). */
void cf_scan_cache_key(const char *const *expressions, const unsigned *flags, const unsigned *ids,
                       size_t count, unsigned mode, const hs_platform_info_t *platform,
                       uint8_t key[CF_SCAN_CACHE_KEY_BYTES]);

/* Loads the database stored under key in dir, compiled for nrules rules: true with *db set and
 * prefiltered[i] (nrules bytes) saying whether rule i went to Hyperscan as a prefilter; false when
 * there is none or it does not read back exactly (nothing is changed then). */
bool cf_scan_cache_load(const char *dir, const uint8_t key[CF_SCAN_CACHE_KEY_BYTES], size_t nrules,
                        uint8_t *prefiltered, hs_database_t **db);

/* Stores the database serialized in bytes[0..len-1] (hs_serialize_database) under key in dir
 * (written to a temporary file, then renamed: a reader never sees part of one), and removes the
 * least recently used files beyond CF_SCAN_CACHE_FILES. Failures are not errors: the cache is only
 * an optimisation; false says one happened. */
bool cf_scan_cache_store(const char *dir, const uint8_t key[CF_SCAN_CACHE_KEY_BYTES], size_t nrules,
                         const uint8_t *prefiltered, const char *bytes, size_t len);

#endif
