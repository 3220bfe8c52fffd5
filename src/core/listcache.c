/* Bodies kept for reuse (see listcache.h). An entry is the body, a NUL, the names (comma-separated,
 * as the audit record holds them), then the body's length (8 bytes, host order): the entry the
 * cache lends out is sent as the response as it is, the body first and NUL-terminated. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/listcache.h"
#include "util/cache.h"
#include "util/str.h"
#include "util/banned.h"

/* kind: 'L' for a list, 'G' for one secret; extra: the tag filter or the secret's name. */
static bool make_key(char *out, size_t size, char kind, const struct cf_scope *scope, bool hide,
                     const char *extra)
{
    /* Fields are separated by a byte no id, slug or normalised path holds; the only free text (the
     * tag filter, the name) comes last, so no two keys of different bodies can be equal. */
    const char kind_text[2] = {kind, '\0'};
    const char *const parts[] = {kind_text,
                                 scope->project.id,
                                 scope->folder.id,
                                 scope->env.slug,
                                 scope->folder.path,
                                 hide ? "h" : "v",
                                 extra};
    return cf_join(out, size, '\x1f', parts, CF_ARRAY_SIZE(parts));
}

bool cf_listcache_key(char *out, size_t size, const struct cf_scope *scope, bool hide,
                      const char *tag_slugs)
{
    return make_key(out, size, 'L', scope, hide, tag_slugs);
}

bool cf_listcache_one_key(char *out, size_t size, const struct cf_scope *scope, bool hide,
                          const char *name)
{
    return make_key(out, size, 'G', scope, hide, name);
}

bool cf_listcache_get(struct cf_core *core, const char *key, struct cf_listcache_hit *hit,
                      void (*on_names)(void *ctx, const char *names, size_t len), void *ctx)
{
    int64_t version;
    const char *entry;
    size_t len = 0;
    uint64_t body_len;

    memset(hit, 0, sizeof(*hit));
    if (!core->lists || !cf_store_content_version(core->store, &version))
        return false;
    struct cf_cache_lease *lease =
        cf_cache_lease(core->lists, key, version, (const void **)&entry, &len);
    if (!lease)
        return false;
    if (len < sizeof(body_len) + 1)
        goto bad;
    memcpy(&body_len, entry + len - sizeof(body_len), sizeof(body_len));
    size_t names_end = len - sizeof(body_len);
    if (body_len >= names_end || entry[body_len] != '\0')
        goto bad;
    if (names_end > body_len + 1)
        on_names(ctx, entry + body_len + 1, names_end - body_len - 1);
    /* The cached bytes themselves become the response: no copy of the body. */
    hit->body = entry;
    hit->len = body_len;
    hit->lease = lease;
    return true;
bad:
    cf_cache_lease_release(lease);
    return false;
}

bool cf_listcache_etag(struct cf_core *core, const char *key, const struct cf_principal *who,
                       char out[CF_LISTCACHE_ETAG_LEN])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char digest[16];
    unsigned char kind = (unsigned char)who->kind, version_be[8];
    crypto_generichash_state state;
    int64_t version;

    if (!cf_store_content_version(core->store, &version))
        return false;
    for (size_t i = 0; i < sizeof(version_be); i++)
        version_be[i] = (unsigned char)((uint64_t)version >> (56 - 8 * i));
    /* Each part is followed by a NUL (the id and key hold none), so no two inputs run together. */
    crypto_generichash_init(&state, NULL, 0, sizeof(digest));
    crypto_generichash_update(&state, &kind, 1);
    crypto_generichash_update(&state, (const unsigned char *)who->id, strlen(who->id) + 1);
    crypto_generichash_update(&state, (const unsigned char *)key, strlen(key) + 1);
    crypto_generichash_update(&state, version_be, sizeof(version_be));
    crypto_generichash_final(&state, digest, sizeof(digest));
    out[0] = '"';
    for (size_t i = 0; i < sizeof(digest); i++) {
        out[1 + 2 * i] = hex[digest[i] >> 4];
        out[2 + 2 * i] = hex[digest[i] & 15];
    }
    out[1 + 2 * sizeof(digest)] = '"';
    out[2 + 2 * sizeof(digest)] = '\0';
    return true;
}

void cf_listcache_put(struct cf_core *core, const char *key, const char *names, size_t names_len,
                      const void *body, size_t len)
{
    int64_t version;
    uint64_t body_len = len;
    if (!core->lists || !cf_store_content_version(core->store, &version) ||
        len > SIZE_MAX - sizeof(body_len) - 1 - names_len)
        return;
    size_t total = len + 1 + names_len + sizeof(body_len);
    /* The body holds secret values: the staging copy is wiped (the cache keeps its own copy in
     * guarded memory). */
    char *entry = malloc(total);
    if (!entry)
        return;
    if (len)
        memcpy(entry, body, len);
    entry[len] = '\0';
    if (names_len)
        memcpy(entry + len + 1, names, names_len);
    memcpy(entry + total - sizeof(body_len), &body_len, sizeof(body_len));
    cf_cache_put(core->lists, key, version, entry, total);
    sodium_memzero(entry, total);
    free(entry);
}
