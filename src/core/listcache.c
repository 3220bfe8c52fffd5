/* Folder-list bodies kept for reuse (see listcache.h). An entry is the length of the names
 * (8 bytes, host order), the names, each followed by a NUL, then the body. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/listcache.h"
#include "util/cache.h"
#include "util/banned.h"

/* kind: 'L' for a list, 'G' for one secret; extra: the tag filter or the secret's name. */
static bool make_key(char *out, size_t size, char kind, const struct cf_scope *scope, bool hide,
                     const char *extra)
{
    /* Fields are separated by a byte no id, slug or normalised path holds; the only free text (the
     * tag filter, the name) comes last, so no two keys of different bodies can be equal. */
    int n = snprintf(out, size, "%c\x1f%s\x1f%s\x1f%s\x1f%s\x1f%c\x1f%s", kind, scope->project.id,
                     scope->folder.id, scope->env.slug, scope->folder.path, hide ? 'h' : 'v',
                     extra ? extra : "");
    return n > 0 && (size_t)n < size;
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

bool cf_listcache_get(struct cf_core *core, const char *key, struct cf_buf *body,
                      void (*on_name)(void *ctx, const char *name), void *ctx)
{
    int64_t version;
    uint8_t *entry = NULL;
    size_t len = 0;
    uint64_t names_len;
    bool ok = false;

    cf_buf_init(body, 0);
    if (!core->lists || !cf_store_content_version(core->store, &version) ||
        !cf_cache_get(core->lists, key, version, (void **)&entry, &len))
        return false;
    if (len < sizeof(names_len))
        goto out;
    memcpy(&names_len, entry, sizeof(names_len));
    if (names_len > len - sizeof(names_len))
        goto out;
    const char *names = (const char *)entry + sizeof(names_len);
    if (names_len && names[names_len - 1] != '\0')
        goto out;
    if (cf_buf_append(body, names + names_len, len - sizeof(names_len) - names_len) != CF_OK) {
        cf_buf_release_wipe(body);
        goto out;
    }
    for (size_t at = 0; at < names_len; at += strlen(names + at) + 1)
        on_name(ctx, names + at);
    ok = true;
out:
    cf_cache_value_free(core->lists, entry, len);
    return ok;
}

void cf_listcache_put(struct cf_core *core, const char *key, const char *names, size_t names_len,
                      const void *body, size_t len)
{
    int64_t version;
    uint64_t names_len64 = names_len;
    if (!core->lists || !cf_store_content_version(core->store, &version) ||
        len > SIZE_MAX - sizeof(names_len64) - names_len)
        return;
    size_t total = sizeof(names_len64) + names_len + len;
    /* The body holds secret values: the staging copy is wiped (the cache keeps its own copy in
     * guarded memory). */
    uint8_t *entry = malloc(total);
    if (!entry)
        return;
    memcpy(entry, &names_len64, sizeof(names_len64));
    if (names_len)
        memcpy(entry + sizeof(names_len64), names, names_len);
    if (len)
        memcpy(entry + sizeof(names_len64) + names_len, body, len);
    cf_cache_put(core->lists, key, version, entry, total);
    sodium_memzero(entry, total);
    free(entry);
}
