/* The server's metrics in Prometheus' text format (docs/server.md "Metrics"): requests by route and
 * status with latency histograms, logins by method and result, the audit writer's backlog,
 * background jobs by state, items expiring soon, database connections and the process's memory.
 *
 * Off unless the server is given a scrape token (--metrics-token-file): GET /metrics then answers a
 * request bearing that token and nothing else. Counting is lock-free (relaxed atomics per route),
 * so it costs a request a few increments; the rest is read when scraped. */
#ifndef CF_API_METRICS_H
#define CF_API_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct cf_metrics;

/* The shortest scrape token accepted (bytes). */
#define CF_METRICS_TOKEN_MIN 24

/* Counters for every route of the router, checking scrapes against token (len bytes; only its hash
 * is kept). CF_EINVAL when the token is shorter than CF_METRICS_TOKEN_MIN, CF_ENOMEM. */
enum cf_rc cf_metrics_new(const char *token, size_t len, struct cf_metrics **out,
                          struct cf_err *err);
void cf_metrics_free(struct cf_metrics *m);

/* Counts one answered request: route_index from the router (or CF_METRICS_UNMATCHED /
 * CF_METRICS_DASHBOARD), its status and how long it took. Thread-safe, lock-free. */
#define CF_METRICS_UNMATCHED ((size_t)-1)
#define CF_METRICS_DASHBOARD ((size_t)-2)
void cf_metrics_observe(struct cf_metrics *m, size_t route_index, int status, int64_t dur_us);

#endif
