/* JWKS cache (see jwks.h). A small table searched linearly under one mutex; the mutex is never held
 * during a fetch: a fetcher notes its attempt, unlocks, fetches, and then stores the result into
 * the entry for its key (found again, or made again if it was evicted meanwhile). */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "auth/jwks.h"
#include "net/http.h"
#include "util/banned.h"

struct cf_jwks_set {
    atomic_int refs;
    struct cf_jwt_keys *keys;
};

struct entry {
    char *url;
    char *ca;                /* "" for the system CAs */
    struct cf_jwks_set *set; /* NULL until a fetch succeeds */
    int64_t expires_at;      /* ms: when set stops being used */
    int64_t refetched_at;    /* ms: the last unknown-kid refetch; 0: none */
    int64_t used_at;         /* ms: for eviction */
};

struct cf_jwks_cache {
    pthread_mutex_t lock;
    struct entry entries[CF_JWKS_CACHE_MAX];
    size_t n;
};

struct cf_jwks_cache *cf_jwks_cache_new(void)
{
    struct cf_jwks_cache *cache = calloc(1, sizeof(*cache));
    if (!cache)
        return NULL;
    pthread_mutex_init(&cache->lock, NULL);
    return cache;
}

static struct cf_jwks_set *set_ref(struct cf_jwks_set *set)
{
    atomic_fetch_add(&set->refs, 1);
    return set;
}

void cf_jwks_set_release(struct cf_jwks_set *set)
{
    if (set && atomic_fetch_sub(&set->refs, 1) == 1) {
        cf_jwt_keys_free(set->keys);
        free(set);
    }
}

const struct cf_jwt_keys *cf_jwks_set_keys(const struct cf_jwks_set *set)
{
    return set->keys;
}

static void entry_clear(struct entry *e)
{
    free(e->url);
    free(e->ca);
    cf_jwks_set_release(e->set);
    memset(e, 0, sizeof(*e));
}

void cf_jwks_cache_free(struct cf_jwks_cache *cache)
{
    if (!cache)
        return;
    for (size_t i = 0; i < cache->n; i++)
        entry_clear(&cache->entries[i]);
    pthread_mutex_destroy(&cache->lock);
    free(cache);
}

/* The entry for (url, ca), or NULL. Called with the lock held. */
static struct entry *find(struct cf_jwks_cache *cache, const char *url, const char *ca)
{
    for (size_t i = 0; i < cache->n; i++) {
        struct entry *e = &cache->entries[i];
        if (strcmp(e->url, url) == 0 && strcmp(e->ca, ca) == 0)
            return e;
    }
    return NULL;
}

/* The entry for (url, ca), made (evicting the least recently used one when full) if missing; NULL
 * when out of memory. Called with the lock held. */
static struct entry *find_or_add(struct cf_jwks_cache *cache, const char *url, const char *ca)
{
    struct entry *e = find(cache, url, ca);
    if (e)
        return e;
    if (cache->n < CF_JWKS_CACHE_MAX) {
        e = &cache->entries[cache->n];
    } else {
        e = &cache->entries[0];
        for (size_t i = 1; i < cache->n; i++) {
            if (cache->entries[i].used_at < e->used_at)
                e = &cache->entries[i];
        }
        entry_clear(e);
    }
    e->url = strdup(url);
    e->ca = strdup(ca);
    if (!e->url || !e->ca) {
        free(e->url);
        free(e->ca);
        memset(e, 0, sizeof(*e));
        return NULL;
    }
    if (e == &cache->entries[cache->n])
        cache->n++;
    return e;
}

/* Checks url's scheme and host. */
static enum cf_rc check_url(const char *url, char *reason, size_t reason_size)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    enum cf_rc rc = CF_EUNAUTH;

    if (!u)
        return CF_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        snprintf(reason, reason_size, "not a valid URL");
        goto out;
    }
    if (strcasecmp(scheme, "https") == 0 ||
        (strcasecmp(scheme, "http") == 0 && cf_net_is_loopback(host)))
        rc = CF_OK;
    else if (strcasecmp(scheme, "http") == 0)
        snprintf(reason, reason_size, "plain http is allowed only for loopback hosts, use https");
    else
        snprintf(reason, reason_size, "only https URLs are fetched");
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

/* Fetches and parses the JWKS at url. */
static enum cf_rc fetch(const char *url, const char *ca, struct cf_jwt_keys **keys,
                        struct cf_err *err)
{
    struct cf_http_request req = {
        .net = {.url = url,
                .ca_pem = ca,
                .connect_timeout_ms = CF_JWKS_CONNECT_TIMEOUT_MS,
                .timeout_ms = CF_JWKS_TIMEOUT_MS},
        .response_max = CF_JWKS_RESPONSE_MAX,
    };
    struct cf_http_response resp = {0};
    char reason[CF_ERR_MSG_MAX] = "", shown[CF_ERR_MSG_MAX];
    enum cf_rc rc;

    *keys = NULL;
    rc = check_url(url, reason, sizeof(reason));
    if (rc != CF_OK)
        goto out;
    rc = cf_http_perform(&req, &resp, err);
    if (rc == CF_ENOMEM)
        goto out;
    if (rc != CF_OK) {
        rc = CF_EUNAUTH;
        snprintf(reason, sizeof(reason), "%s", err->msg);
        goto out;
    }
    if (resp.status != 200) {
        rc = CF_EUNAUTH;
        snprintf(reason, sizeof(reason), "HTTP status %ld", resp.status);
        goto out;
    }
    rc = cf_jwt_keys_from_jwks(resp.body ? resp.body : "", resp.len, keys, err);
    if (rc == CF_EINVAL) {
        rc = CF_EUNAUTH;
        snprintf(reason, sizeof(reason), "%s", err->msg);
    }
out:
    if (rc == CF_EUNAUTH) {
        cf_net_url_redact(url, shown, sizeof(shown));
        cf_err_set(err, rc, "JWKS endpoint %s could not be fetched: %s", shown, reason);
    } else if (rc == CF_ENOMEM) {
        cf_err_set(err, rc, "out of memory");
    }
    cf_http_response_release(&resp);
    return rc;
}

enum cf_rc cf_jwks_get(struct cf_jwks_cache *cache, const char *url, const char *ca_pem,
                       bool refetch, int64_t now, struct cf_jwks_set **out, bool *fetched,
                       struct cf_err *err)
{
    const char *ca = ca_pem ? ca_pem : "";
    struct cf_jwt_keys *keys = NULL;
    struct cf_jwks_set *set = NULL;
    struct entry *e;
    enum cf_rc rc;

    *out = NULL;
    *fetched = false;
    pthread_mutex_lock(&cache->lock);
    e = find_or_add(cache, url, ca);
    if (!e) {
        pthread_mutex_unlock(&cache->lock);
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    e->used_at = now;
    bool fresh = e->set && now < e->expires_at;
    if (fresh && refetch && e->refetched_at && now - e->refetched_at < CF_JWKS_REFETCH_MS)
        refetch = false; /* refetched recently: the set stays as it is */
    if (fresh && !refetch) {
        *out = set_ref(e->set);
        pthread_mutex_unlock(&cache->lock);
        return CF_OK;
    }
    if (fresh)
        e->refetched_at = now;
    pthread_mutex_unlock(&cache->lock);

    rc = fetch(url, ca, &keys, err);
    if (rc == CF_OK) {
        set = calloc(1, sizeof(*set));
        if (!set) {
            cf_jwt_keys_free(keys);
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        }
        atomic_init(&set->refs, 1);
        set->keys = keys;
    }

    pthread_mutex_lock(&cache->lock);
    e = find_or_add(cache, url, ca);
    if (set) {
        if (e) {
            cf_jwks_set_release(e->set);
            e->set = set_ref(set);
            e->expires_at = now + CF_JWKS_TTL_MS;
        }
        *out = set;
        *fetched = true;
    } else if (rc != CF_ENOMEM && e && e->set && now < e->expires_at) {
        /* The last good set keeps working until it expires. */
        *out = set_ref(e->set);
        rc = CF_OK;
    }
    pthread_mutex_unlock(&cache->lock);
    return rc;
}
