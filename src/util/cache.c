/* The versioned cache (see cache.h): a chained hash table of entries, also on one list in order of
 * use, so that the least recently used entry is evicted first. An entry is one block: its header,
 * then its key; its value is a block of its own (guarded memory for a wipe cache), counted: the
 * entry holds one reference and each lease another, and the last one frees (and wipes) it. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "util/cache.h"
#include "util/banned.h"

/* The table grows no further than this many buckets (chains get longer instead). */
#define MAX_BUCKETS (1u << 16)

/* A stored value: its references, how it was allocated, then its bytes. The block's size is a
 * multiple of its alignment, so that sodium_malloc, which ends a block at its guard page, still
 * returns an aligned one. */
struct cf_cache_lease {
    atomic_size_t refs;
    bool wipe; /* in guarded memory: sodium_free wipes it */
    size_t len;
    _Alignas(16) unsigned char data[];
};

struct entry {
    struct entry *chain;         /* next in the bucket */
    struct entry *newer, *older; /* the use list */
    uint64_t hash;
    int64_t version;
    struct cf_cache_lease *value;
    size_t key_len; /* the value's length is value->len */
    char key[];
};

struct cf_cache {
    pthread_mutex_t lock;
    struct cf_cache_config config;
    struct entry **buckets;
    size_t n_buckets; /* a power of two */
    struct entry *newest, *oldest;
    size_t entries, bytes;
    uint64_t hits, misses, evictions;
};

/* FNV-1a: keys are short ids and paths chosen by the server or by authenticated callers. */
static uint64_t hash_key(const char *key, size_t len)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211u;
    }
    return h;
}

static size_t entry_bytes(const struct entry *e)
{
    return e->key_len + e->value->len;
}

struct cf_cache *cf_cache_new(const struct cf_cache_config *config)
{
    struct cf_cache *cache = calloc(1, sizeof(*cache));
    if (!cache)
        return NULL;
    cache->config = *config;
    size_t n = 16;
    while (n < config->max_entries && n < MAX_BUCKETS)
        n *= 2;
    cache->buckets = calloc(n, sizeof(*cache->buckets));
    if (!cache->buckets || pthread_mutex_init(&cache->lock, NULL) != 0) {
        free(cache->buckets);
        free(cache);
        return NULL;
    }
    cache->n_buckets = n;
    return cache;
}

/* A value block holding a copy of len bytes and one reference; NULL when out of memory. */
static struct cf_cache_lease *value_new(const struct cf_cache *cache, const void *bytes, size_t len)
{
    const size_t align = _Alignof(struct cf_cache_lease);
    size_t size = sizeof(struct cf_cache_lease) + len;
    if (len > SIZE_MAX - sizeof(struct cf_cache_lease) - align)
        return NULL;
    size = (size + align - 1) / align * align;
    struct cf_cache_lease *v = cache->config.wipe ? sodium_malloc(size) : malloc(size);
    if (!v)
        return NULL;
    atomic_init(&v->refs, 1);
    v->wipe = cache->config.wipe;
    v->len = len;
    if (len)
        memcpy(v->data, bytes, len);
    return v;
}

static void value_unref(struct cf_cache_lease *v)
{
    if (atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (v->wipe)
        sodium_free(v); /* wipes the block */
    else
        free(v);
}

static void unlink_use(struct cf_cache *cache, struct entry *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        cache->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        cache->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void push_newest(struct cf_cache *cache, struct entry *e)
{
    e->older = cache->newest;
    e->newer = NULL;
    if (cache->newest)
        cache->newest->newer = e;
    cache->newest = e;
    if (!cache->oldest)
        cache->oldest = e;
}

/* Unlinks e from its bucket and the use list and frees it. */
static void drop(struct cf_cache *cache, struct entry *e)
{
    struct entry **link = &cache->buckets[e->hash & (cache->n_buckets - 1)];
    while (*link != e)
        link = &(*link)->chain;
    *link = e->chain;
    unlink_use(cache, e);
    cache->entries--;
    cache->bytes -= entry_bytes(e);
    value_unref(e->value);
    free(e);
}

static struct entry *find(struct cf_cache *cache, const char *key, size_t key_len, uint64_t hash)
{
    for (struct entry *e = cache->buckets[hash & (cache->n_buckets - 1)]; e; e = e->chain)
        if (e->hash == hash && e->key_len == key_len && memcmp(e->key, key, key_len) == 0)
            return e;
    return NULL;
}

void cf_cache_free(struct cf_cache *cache)
{
    if (!cache)
        return;
    while (cache->oldest)
        drop(cache, cache->oldest);
    pthread_mutex_destroy(&cache->lock);
    free(cache->buckets);
    free(cache);
}

/* The current entry under key at version, made the most recently used (a hit), or NULL (a miss;
 * an entry of another version is dropped). Called with the lock held. */
static struct entry *lookup(struct cf_cache *cache, const char *key, int64_t version)
{
    size_t key_len = strlen(key);
    struct entry *e = find(cache, key, key_len, hash_key(key, key_len));
    if (e && e->version != version) {
        drop(cache, e);
        e = NULL;
    }
    if (e) {
        unlink_use(cache, e);
        push_newest(cache, e);
        cache->hits++;
    } else {
        cache->misses++;
    }
    return e;
}

bool cf_cache_get(struct cf_cache *cache, const char *key, int64_t version, void **value,
                  size_t *len)
{
    *value = NULL;
    *len = 0;
    pthread_mutex_lock(&cache->lock);
    struct entry *e = lookup(cache, key, version);
    if (e) {
        *value = malloc(e->value->len ? e->value->len : 1);
        if (*value) {
            memcpy(*value, e->value->data, e->value->len);
            *len = e->value->len;
        }
    }
    pthread_mutex_unlock(&cache->lock);
    return *value != NULL;
}

struct cf_cache_lease *cf_cache_lease(struct cf_cache *cache, const char *key, int64_t version,
                                      const void **value, size_t *len)
{
    struct cf_cache_lease *lease = NULL;
    *value = NULL;
    *len = 0;
    pthread_mutex_lock(&cache->lock);
    struct entry *e = lookup(cache, key, version);
    if (e) {
        lease = e->value;
        atomic_fetch_add_explicit(&lease->refs, 1, memory_order_relaxed);
        *value = lease->data;
        *len = lease->len;
    }
    pthread_mutex_unlock(&cache->lock);
    return lease;
}

void cf_cache_lease_release(struct cf_cache_lease *lease)
{
    if (lease)
        value_unref(lease);
}

void cf_cache_put(struct cf_cache *cache, const char *key, int64_t version, const void *value,
                  size_t len)
{
    size_t key_len = strlen(key);
    size_t max_bytes = cache->config.max_bytes;
    if (cache->config.max_entries == 0 ||
        (max_bytes && (key_len > max_bytes || len > max_bytes || key_len + len > max_bytes)))
        return;
    uint64_t hash = hash_key(key, key_len);
    struct entry *e = malloc(sizeof(*e) + key_len + 1);
    struct cf_cache_lease *copy = value_new(cache, value, len);
    if (!e || !copy) {
        free(e);
        if (copy)
            value_unref(copy);
        return;
    }
    memcpy(e->key, key, key_len + 1);
    e->key_len = key_len;
    e->hash = hash;
    e->version = version;
    e->value = copy;

    pthread_mutex_lock(&cache->lock);
    struct entry *old = find(cache, key, key_len, hash);
    if (old)
        drop(cache, old);
    while (cache->oldest && (cache->entries + 1 > cache->config.max_entries ||
                             (max_bytes && cache->bytes + entry_bytes(e) > max_bytes))) {
        drop(cache, cache->oldest);
        cache->evictions++;
    }
    struct entry **bucket = &cache->buckets[hash & (cache->n_buckets - 1)];
    e->chain = *bucket;
    *bucket = e;
    push_newest(cache, e);
    cache->entries++;
    cache->bytes += entry_bytes(e);
    pthread_mutex_unlock(&cache->lock);
}

void cf_cache_value_free(const struct cf_cache *cache, void *value, size_t len)
{
    if (!value)
        return;
    if (cache->config.wipe)
        sodium_memzero(value, len);
    free(value);
}

void cf_cache_stats(struct cf_cache *cache, struct cf_cache_stats *out)
{
    pthread_mutex_lock(&cache->lock);
    out->entries = cache->entries;
    out->bytes = cache->bytes;
    out->hits = cache->hits;
    out->misses = cache->misses;
    out->evictions = cache->evictions;
    pthread_mutex_unlock(&cache->lock);
}
