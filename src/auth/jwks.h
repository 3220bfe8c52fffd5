/* JWKS fetching for JWT auth: a bounded, thread-safe cache of key sets per (JWKS URL, CA
 * certificate PEM), fetched with libcurl. HTTPS is verified with the configured CA PEM when there
 * is one and with the system CAs otherwise; plain http is allowed only for loopback hosts
 * (127.0.0.0/8, ::1, localhost). Fetches connect within CF_JWKS_CONNECT_TIMEOUT_MS, finish within
 * CF_JWKS_TIMEOUT_MS, follow no redirects, and read at most CF_JWKS_RESPONSE_MAX bytes; a 200
 * answer is parsed with cf_jwt_keys_from_jwks (auth/jwt.h). A fetched set is used for
 * CF_JWKS_TTL_MS; a failed fetch leaves the last good set in use until it expires. When a token
 * names a key id the cached set lacks, the caller may ask for a refetch, which happens at most once
 * per CF_JWKS_REFETCH_MS per cache entry, so bogus key ids cannot make Coffer hammer the endpoint.
 * No lock is held during a fetch. Key sets are shared by reference count: a set handed out stays
 * valid until released, whatever the cache does meanwhile. */
#ifndef CF_AUTH_JWKS_H
#define CF_AUTH_JWKS_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/jwt.h"
#include "util/err.h"

#define CF_JWKS_CACHE_MAX 256           /* entries; the least recently used gives way */
#define CF_JWKS_TTL_MS (10 * 60 * 1000) /* a fetched set is used this long */
#define CF_JWKS_REFETCH_MS (30 * 1000)  /* at most one unknown-kid refetch per entry this often */
#define CF_JWKS_CONNECT_TIMEOUT_MS 2000
#define CF_JWKS_TIMEOUT_MS 4000
#define CF_JWKS_RESPONSE_MAX (1024 * 1024)

struct cf_jwks_cache;
struct cf_jwks_set; /* a reference-counted key set */

/* A new, empty cache (fetches go through net/http.h, which initialises libcurl on first use). NULL
 * when out of memory. */
struct cf_jwks_cache *cf_jwks_cache_new(void);

/* Frees the cache and drops its references; sets handed out stay valid until released. NULL is a
 * no-op. */
void cf_jwks_cache_free(struct cf_jwks_cache *cache);

/* The key set for url (with ca_pem, NULL or "" for the system CAs) at now (milliseconds). Without
 * refetch: the cached set while it is fresh, else a fetch. With refetch (the caller's token named a
 * key id the set lacks): a fetch if the entry has not been refetched so for CF_JWKS_REFETCH_MS,
 * else the cached set. A failed fetch falls back to a cached set that has not expired. *fetched
 * tells whether *out was just fetched. On CF_OK *out is a reference (cf_jwks_set_release it).
 * Refusals: CF_EUNAUTH "JWKS endpoint <url> could not be fetched: <reason>" (a URL that is not
 * http(s), http to a host that is not loopback, a network error or timeout, a status other than
 * 200, an oversized or unusable document); CF_ENOMEM. Thread-safe. */
enum cf_rc cf_jwks_get(struct cf_jwks_cache *cache, const char *url, const char *ca_pem,
                       bool refetch, int64_t now, struct cf_jwks_set **out, bool *fetched,
                       struct cf_err *err);

/* The keys of a set; valid while the reference is held. */
const struct cf_jwt_keys *cf_jwks_set_keys(const struct cf_jwks_set *set);

/* Drops a reference; NULL is a no-op. */
void cf_jwks_set_release(struct cf_jwks_set *set);

#endif
