/* A bounded, thread-safe key-value cache whose entries carry a version: a lookup names the version
 * it wants and gets an entry only when the stored one has exactly that version, so a caller
 * invalidates everything at once by moving to a new version (a change counter read from the
 * database, say) without touching the cache. Values are copied in and out as bytes. The cache
 * holds at most max_entries entries and max_bytes bytes of keys and values together, evicting the
 * least recently used ones to make room. With wipe set, values live in guarded memory
 * (sodium_malloc) and are wiped when replaced, evicted or freed, and the copies handed out are
 * wiped by cf_cache_value_free. One mutex guards each cache. */
#ifndef CF_UTIL_CACHE_H
#define CF_UTIL_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cf_cache;
struct cf_cache_lease;

struct cf_cache_config {
    size_t max_entries; /* 0: no entry is kept (the cache is off) */
    size_t max_bytes;   /* keys and values together; 0: no limit but max_entries */
    bool wipe;          /* values in guarded memory, wiped on release (see above) */
};

/* A new empty cache (NULL when out of memory). Free with cf_cache_free. */
struct cf_cache *cf_cache_new(const struct cf_cache_config *config);
/* Frees every entry (wiping values of a wipe cache) and the cache; NULL is a no-op. */
void cf_cache_free(struct cf_cache *cache);

/* Copies the value stored under key at exactly version into a new malloc'd block (*value, *len),
 * released by the caller with cf_cache_value_free. false when
 * there is none, it has another version (it is then dropped), or out of memory. Thread-safe. */
bool cf_cache_get(struct cf_cache *cache, const char *key, int64_t version, void **value,
                  size_t *len);
/* Stores a copy of value (len bytes, borrowed) under key at version, replacing what was there.
 * Best effort: nothing is stored when the entry alone is over the bounds or memory runs out.
 * Thread-safe. */
void cf_cache_put(struct cf_cache *cache, const char *key, int64_t version, const void *value,
                  size_t len);
/* A reference to the value stored under key at exactly version, without a copy: *value (len bytes)
 * stays readable, unchanged, until cf_cache_lease_release, even when the entry is replaced,
 * evicted or the version moves meanwhile (it is freed, and wiped in a wipe cache, when the last
 * reference goes). NULL when there is none or it has another version (then dropped). The value must
 * not be written. Thread-safe; a lease may be released on any thread. */
struct cf_cache_lease *cf_cache_lease(struct cf_cache *cache, const char *key, int64_t version,
                                      const void **value, size_t *len);
/* Gives a lease back; NULL is a no-op. */
void cf_cache_lease_release(struct cf_cache_lease *lease);
/* Releases a value cf_cache_get returned (wiping it for a wipe cache); NULL is a no-op. */
void cf_cache_value_free(const struct cf_cache *cache, void *value, size_t len);

/* What a cache holds now and has done since it was made. */
struct cf_cache_stats {
    size_t entries, bytes;
    uint64_t hits, misses, evictions;
};
void cf_cache_stats(struct cf_cache *cache, struct cf_cache_stats *out);

#endif
