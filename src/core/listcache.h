/* Rendered bodies kept for reuse: core->lists, a cf_cache in wipe mode (values in guarded memory,
 * wiped when evicted, replaced or freed) bounded by the server's --cache-size. An entry holds the
 * body of GET /api/v3/secrets/raw (or v4) for one folder with one set of flags, or of one secret
 * read there (cf_listcache_one_key), and the names of the secrets it holds (the audit of a cached
 * read records them as the uncached read does). It is stored under the store's content version
 * (cf_store_content_version) read in the request's read scope, so a change to anything such a
 * body renders, committed on any server, retires it for every request that sees the change.
 *
 * Only bodies that depend on nothing but the folder and the flags are cached: one folder (not
 * recursive, whose sub-folders are left out by the caller's rights), no imports (an import the
 * caller may not read is left out), no expanded references (their targets depend on the caller's
 * rights in other folders). Such a body is served to any caller the authorization check lets read
 * that folder, which the caller of cf_listcache_get must have made on this request: a rule is a
 * path glob over folders, so who may read the folder may read every secret in it. */
#ifndef CF_CORE_LISTCACHE_H
#define CF_CORE_LISTCACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"
#include "util/buf.h"
#include "util/cache.h"

/* The longest key cf_listcache_key makes, terminator included. */
#define CF_LISTCACHE_KEY_MAX 1024

/* Writes the cache key of scope's folder list into out (size bytes): the project, the folder (id,
 * its environment's slug and its path, both rendered in the body), whether values are hidden
 * (viewSecretValue=false) and the tag filter (NULL or "": none; the same filter either way).
 * false when it does not fit, and then nothing may be cached. */
bool cf_listcache_key(char *out, size_t size, const struct cf_scope *scope, bool hide,
                      const char *tag_slugs);
/* The same for the body of one secret read (GET /api/v3/secrets/raw/{name}, current version, not
 * expanded) found in scope's folder itself: the folder as above, hidden values, and its name. Such
 * a body, too, depends on nothing but the folder, and is served only to a caller allowed to read
 * the folder. */
bool cf_listcache_one_key(char *out, size_t size, const struct cf_scope *scope, bool hide,
                          const char *name);

/* A cached body lent out: len bytes at body (NUL-terminated), readable and unchanged until the
 * lease is given back (cf_cache_lease_release, or cf_req_reply_leased, which sends the body as it
 * is and gives the lease back after). */
struct cf_listcache_hit {
    const char *body;
    size_t len;
    struct cf_cache_lease *lease;
};

/* When core->lists holds a body under key at the request's content version: true, *hit lends it
 * (see above), and on_names was called once with the secret names the body lists, in order and
 * comma-separated (len bytes, not terminated; not called when it lists none). false otherwise (no
 * cache, outside a read scope, or not there); *hit is then empty. */
bool cf_listcache_get(struct cf_core *core, const char *key, struct cf_listcache_hit *hit,
                      void (*on_names)(void *ctx, const char *names, size_t len), void *ctx);

/* Stores body (len bytes) under key at the request's content version, with names: the secret
 * names it lists, comma-separated (names_len bytes). Best effort: nothing is stored
 * without a cache, outside a read scope, or when the entry is over the cache's bounds. All
 * borrowed. */
/* The length of an entity tag cf_listcache_etag writes, quotes and terminator included. */
#define CF_LISTCACHE_ETAG_LEN 35

/* Writes the entity tag (ETag, RFC 9110 8.8.3) of the body cached or cacheable under key for the
 * caller who (borrowed) at the request's content version: a quoted BLAKE2b-128 digest, in hex, of
 * the caller's kind and id, the key and the version. The same folder, flags, caller and version
 * give the same tag on every server, and a change to anything a list renders changes it. The tag
 * reveals nothing of the body; whoever answers 304 to it must have checked the caller's read right
 * on the folder first. false outside a read scope or when the version cannot be read. */
bool cf_listcache_etag(struct cf_core *core, const char *key, const struct cf_principal *who,
                       char out[CF_LISTCACHE_ETAG_LEN]);

void cf_listcache_put(struct cf_core *core, const char *key, const char *names, size_t names_len,
                      const void *body, size_t len);

#endif
