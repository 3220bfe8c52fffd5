/* GET /metrics (api/metrics.h): counters kept per route, the rest read at scrape time. */
#include "api/metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sodium.h>

#include "api/http.h"
#include "api/internal.h"
#include "core/auditlog.h"
#include "core/expiry.h"
#include "util/buf.h"
#include "util/time.h"
#include "util/banned.h"

/* The statuses Coffer answers with, each a counter of its own; any other is counted as "other". */
static const int statuses[] = {200, 201, 202, 204, 302, 304, 400, 401, 403, 404, 405,
                               409, 410, 413, 415, 422, 429, 500, 502, 503, 504};
#define N_STATUSES (sizeof(statuses) / sizeof(statuses[0]))

/* Latency bucket bounds in microseconds (the histogram's `le` labels, in seconds). */
static const int64_t bounds_us[] = {500,    1000,   2500,   5000,    10000,   25000,   50000,
                                    100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
#define N_BOUNDS (sizeof(bounds_us) / sizeof(bounds_us[0]))

struct route_stats {
    atomic_uint_fast64_t by_status[N_STATUSES + 1]; /* the last: any other status */
    atomic_uint_fast64_t buckets[N_BOUNDS]; /* requests within each bound (not cumulative) */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_us;
};

struct cf_metrics {
    size_t n_routes;
    struct route_stats *routes; /* n_routes + 2: the router's, then unmatched and dashboard */
    uint8_t token_hash[crypto_generichash_BYTES];
    int64_t started_ms;
};

enum cf_rc cf_metrics_new(const char *token, size_t len, struct cf_metrics **out,
                          struct cf_err *err)
{
    *out = NULL;
    if (len < CF_METRICS_TOKEN_MIN)
        return cf_err_set(err, CF_EINVAL,
                          "the metrics token is %zu bytes long; it must be at least %d (e.g. "
                          "`openssl rand -hex 32`)",
                          len, CF_METRICS_TOKEN_MIN);
    struct cf_metrics *m = calloc(1, sizeof(*m));
    if (m) {
        m->n_routes = cf_router_count();
        m->routes = calloc(m->n_routes + 2, sizeof(*m->routes));
    }
    if (!m || !m->routes) {
        cf_metrics_free(m);
        return cf_err_set(err, CF_ENOMEM, "out of memory for the metrics");
    }
    crypto_generichash(m->token_hash, sizeof(m->token_hash), (const unsigned char *)token, len,
                       NULL, 0);
    m->started_ms = cf_now_ms();
    *out = m;
    return CF_OK;
}

void cf_metrics_free(struct cf_metrics *m)
{
    if (!m)
        return;
    free(m->routes);
    sodium_memzero(m, sizeof(*m));
    free(m);
}

void cf_metrics_observe(struct cf_metrics *m, size_t route_index, int status, int64_t dur_us)
{
    if (!m)
        return;
    size_t i = route_index == CF_METRICS_UNMATCHED   ? m->n_routes
               : route_index == CF_METRICS_DASHBOARD ? m->n_routes + 1
                                                     : route_index;
    if (i >= m->n_routes + 2)
        return;
    struct route_stats *r = &m->routes[i];
    size_t s = 0;
    while (s < N_STATUSES && statuses[s] != status)
        s++;
    atomic_fetch_add_explicit(&r->by_status[s], 1, memory_order_relaxed);
    if (dur_us < 0)
        dur_us = 0;
    size_t b = 0;
    while (b < N_BOUNDS && dur_us > bounds_us[b])
        b++;
    if (b < N_BOUNDS)
        atomic_fetch_add_explicit(&r->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->sum_us, (uint_fast64_t)dur_us, memory_order_relaxed);
}

/* ---- the scrape ---- */

/* The page being rendered, and whether an append failed (out of memory: the scrape fails rather
 * than answering a page cut short). */
struct page {
    struct cf_buf buf;
    bool failed;
};

__attribute__((format(printf, 2, 3))) static void emit(struct page *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line) || cf_buf_append(&b->buf, line, (size_t)n) != CF_OK)
        b->failed = true;
}

static uint64_t load(atomic_uint_fast64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

/* The labels of route i: method and pattern (the pattern, not the path, so that the series stay
 * few and name no project or secret). */
static void route_labels(const struct cf_metrics *m, size_t i, const char **method,
                         const char **route)
{
    if (i < m->n_routes) {
        const struct cf_route *r = cf_router_at(i);
        *method = r->method;
        *route = r->pattern;
    } else {
        *method = "";
        *route = i == m->n_routes ? "unmatched" : "dashboard";
    }
}

/* The login method a route signs in with ("universal-auth", "password", ...), or NULL. */
static const char *login_method(const struct cf_route *r)
{
    static const struct {
        const char *pattern, *method;
    } named[] = {
        {"/api/v1/auth/login", "password"},
        {"/api/v1/auth/login/mfa", "mfa"},
        {"/api/v1/sso/oidc/callback", "sso"},
    };
    if (!r || strcmp(r->method, "POST") != 0) {
        if (r && strcmp(r->pattern, "/api/v1/sso/oidc/callback") == 0)
            return "sso";
        return NULL;
    }
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
        if (strcmp(r->pattern, named[i].pattern) == 0)
            return named[i].method;
    /* /api/v1/auth/<method>-auth/login: universal-auth, jwt-auth, kubernetes-auth, ... */
    static const char prefix[] = "/api/v1/auth/", suffix[] = "-auth/login";
    size_t n = strlen(r->pattern);
    if (strncmp(r->pattern, prefix, sizeof(prefix) - 1) == 0 && n > sizeof(prefix) + 10 &&
        strcmp(r->pattern + n - (sizeof(suffix) - 1), suffix) == 0)
        return r->pattern + sizeof(prefix) - 1;
    return NULL;
}

/* A login's result by its status. */
static const char *login_result(int status)
{
    if (status == 200 || status == 302)
        return "ok";
    if (status == 401 || status == 403)
        return "denied";
    if (status == 429)
        return "throttled";
    return status >= 500 || status == 0 ? "error" : "invalid";
}

static void put_status(struct page *b, size_t s)
{
    if (s < N_STATUSES)
        emit(b, "%d", statuses[s]);
    else
        emit(b, "%s", "other");
}

static void render_requests(const struct cf_metrics *m, struct page *b)
{
    emit(b, "%s",
         "# HELP coffer_http_requests_total HTTP requests answered, by route pattern "
         "and status.\n# TYPE coffer_http_requests_total counter\n");
    for (size_t i = 0; i < m->n_routes + 2; i++) {
        const char *method, *route;
        route_labels(m, i, &method, &route);
        for (size_t s = 0; s <= N_STATUSES; s++) {
            uint64_t n = load(&m->routes[i].by_status[s]);
            if (!n)
                continue;
            emit(b, "coffer_http_requests_total{method=\"%s\",route=\"%s\",status=\"", method,
                 route);
            put_status(b, s);
            emit(b, "\"} %llu\n", (unsigned long long)n);
        }
    }
    emit(b, "%s",
         "# HELP coffer_http_request_duration_seconds Time from a request's arrival "
         "to the end of its answer.\n"
         "# TYPE coffer_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < m->n_routes + 2; i++) {
        struct route_stats *r = &m->routes[i];
        uint64_t count = load(&r->count);
        if (!count)
            continue;
        const char *method, *route;
        route_labels(m, i, &method, &route);
        uint64_t cumulative = 0;
        for (size_t k = 0; k < N_BOUNDS; k++) {
            cumulative += load(&r->buckets[k]);
            emit(b,
                 "coffer_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\","
                 "le=\"%g\"} %llu\n",
                 method, route, (double)bounds_us[k] / 1e6, (unsigned long long)cumulative);
        }
        emit(b,
             "coffer_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\","
             "le=\"+Inf\"} %llu\n"
             "coffer_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n"
             "coffer_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} "
             "%llu\n",
             method, route, (unsigned long long)count, method, route,
             (double)load(&r->sum_us) / 1e6, method, route, (unsigned long long)count);
    }
}

static void render_logins(const struct cf_metrics *m, struct page *b)
{
    static const char *const results[] = {"ok", "denied", "throttled", "invalid", "error"};
    emit(b, "%s",
         "# HELP coffer_logins_total Sign-ins answered, by method and result.\n"
         "# TYPE coffer_logins_total counter\n");
    for (size_t i = 0; i < m->n_routes; i++) {
        const struct cf_route *r = cf_router_at(i);
        const char *method = login_method(r);
        if (!method)
            continue;
        /* "universal-auth/login" names the method up to its slash */
        int len = (int)strcspn(method, "/");
        for (size_t k = 0; k < sizeof(results) / sizeof(results[0]); k++) {
            uint64_t n = 0;
            for (size_t s = 0; s <= N_STATUSES; s++)
                if (strcmp(login_result(s < N_STATUSES ? statuses[s] : 0), results[k]) == 0)
                    n += load(&m->routes[i].by_status[s]);
            emit(b, "coffer_logins_total{method=\"%.*s\",result=\"%s\"} %llu\n", len, method,
                 results[k], (unsigned long long)n);
        }
    }
}

static void render_audit(struct cf_core *core, struct page *b)
{
    if (!core->audit)
        return;
    int64_t waiting = 0, oldest_ms = 0;
    cf_audit_log_backlog(core->audit, &waiting, &oldest_ms);
    emit(b,
         "# HELP coffer_audit_queue_events Audit events recorded and not yet committed.\n"
         "# TYPE coffer_audit_queue_events gauge\ncoffer_audit_queue_events %lld\n"
         "# HELP coffer_audit_queue_lag_seconds How long the oldest waiting audit event "
         "has waited.\n# TYPE coffer_audit_queue_lag_seconds gauge\n"
         "coffer_audit_queue_lag_seconds %.3f\n"
         "# HELP coffer_audit_dropped_events_total Audit events dropped because the "
         "store could not take them (normal mode).\n"
         "# TYPE coffer_audit_dropped_events_total counter\n"
         "coffer_audit_dropped_events_total %lld\n",
         (long long)waiting, (double)oldest_ms / 1000.0,
         (long long)cf_audit_log_dropped(core->audit));
}

static enum cf_rc render_jobs(struct cf_core *core, struct page *b, struct cf_err *err)
{
    struct cf_store_job_state *states = NULL;
    size_t n = 0;
    enum cf_rc rc = cf_store_job_states(core->store, &states, &n, err);
    if (rc != CF_OK)
        return rc;
    emit(b, "%s",
         "# HELP coffer_jobs Secret syncs, rotations and notices, by state.\n"
         "# TYPE coffer_jobs gauge\n");
    for (size_t i = 0; i < n; i++)
        emit(b, "coffer_jobs{kind=\"%s\",state=\"%s\"} %lld\n", states[i].kind, states[i].state,
             (long long)states[i].count);
    free(states);
    return CF_OK;
}

static enum cf_rc render_expiring(struct cf_core *core, struct page *b, struct cf_err *err)
{
    static const int64_t day_ms = 86400LL * 1000;
    struct cf_principal admin = {.kind = CF_PRINCIPAL_ADMIN};
    int64_t now = cf_now_ms();
    struct cf_expiry_query q = {.now = now,
                                .within_ms = 30 * day_ms,
                                .secrets = true,
                                .reminders = true,
                                .client_secrets = true,
                                .connections = true};
    struct cf_expiry_list list = {0};
    enum cf_rc rc = cf_expiry_list(core, &admin, &q, &list, err);
    if (rc != CF_OK)
        return rc;
    /* indexed by kind - CF_EXPIRY_SECRET */
    enum { KINDS = CF_EXPIRY_CONNECTION - CF_EXPIRY_SECRET + 1 };
    int64_t past[KINDS] = {0}, week[KINDS] = {0}, month[KINDS] = {0};
    for (size_t i = 0; i < list.n; i++) {
        size_t k = (size_t)list.items[i].kind - CF_EXPIRY_SECRET;
        if (k >= KINDS)
            continue;
        if (list.items[i].past)
            past[k]++;
        else if (list.items[i].due_at <= now + 7 * day_ms)
            week[k]++;
        month[k]++; /* due within 30 days, expired ones included */
    }
    cf_expiry_list_release(&list);
    emit(b, "%s",
         "# HELP coffer_expiring_items Secrets, rotation reminders, client secrets and "
         "connection credentials that end within the window (expired ones included).\n"
         "# TYPE coffer_expiring_items gauge\n");
    for (size_t k = 0; k < KINDS; k++) {
        const char *kind = cf_expiry_kind_name((enum cf_expiry_kind)(k + CF_EXPIRY_SECRET));
        emit(b,
             "coffer_expiring_items{kind=\"%s\",within=\"7d\"} %lld\n"
             "coffer_expiring_items{kind=\"%s\",within=\"30d\"} %lld\n",
             kind, (long long)(past[k] + week[k]), kind, (long long)month[k]);
    }
    emit(b, "%s",
         "# HELP coffer_expired_items Items already expired (or whose rotation is "
         "overdue).\n# TYPE coffer_expired_items gauge\n");
    for (size_t k = 0; k < KINDS; k++)
        emit(b, "coffer_expired_items{kind=\"%s\"} %lld\n",
             cf_expiry_kind_name((enum cf_expiry_kind)(k + CF_EXPIRY_SECRET)), (long long)past[k]);
    return CF_OK;
}

static void render_process(const struct cf_metrics *m, struct cf_core *core, struct page *b)
{
    int open = 0, size = 0;
    cf_store_pool_use(core->store, &open, &size);
    emit(b,
         "# HELP coffer_db_connections Database connections this process holds.\n"
         "# TYPE coffer_db_connections gauge\ncoffer_db_connections %d\n"
         "# HELP coffer_db_connections_max The most it opens (0: no limit, SQLite).\n"
         "# TYPE coffer_db_connections_max gauge\ncoffer_db_connections_max %d\n",
         open, size);
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    emit(b,
         "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
         "# TYPE process_resident_memory_bytes gauge\n"
         "process_resident_memory_bytes %lld\n"
         "# HELP process_start_time_seconds Start time of the process since the Unix "
         "epoch in seconds.\n# TYPE process_start_time_seconds gauge\n"
         "process_start_time_seconds %.3f\n"
         "# HELP coffer_build_info The running version.\n# TYPE coffer_build_info gauge\n"
         "coffer_build_info{version=\"%s\",store=\"%s\"} 1\n",
         (long long)resident * sysconf(_SC_PAGESIZE), (double)m->started_ms / 1000.0,
         COFFER_VERSION, core->store->backend);
}

/* Whether authorization (a header value, may be NULL) bears the scrape token. */
static bool scrape_allowed(const struct cf_metrics *m, const char *authorization)
{
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return false;
    const char *token = authorization + 7;
    uint8_t hash[crypto_generichash_BYTES];
    crypto_generichash(hash, sizeof(hash), (const unsigned char *)token, strlen(token), NULL, 0);
    /* both sides are hashes, so the comparison's time says nothing of the token's length */
    return sodium_memcmp(hash, m->token_hash, sizeof(hash)) == 0;
}

static enum cf_rc metrics(struct cf_req *req, json_t **out, struct cf_err *err)
{
    (void)out;
    struct cf_metrics *m = cf_server_metrics(req->server);
    if (!m)
        return cf_err_set(err, CF_ENOTFOUND,
                          "metrics are off: start the server with --metrics-token-file FILE "
                          "(docs/server.md \"Metrics\")");
    if (!scrape_allowed(m, cf_req_header(req, "Authorization")))
        return cf_err_set(err, CF_EUNAUTH,
                          "a metrics scrape needs the header Authorization: Bearer <the token in "
                          "the server's --metrics-token-file>");
    struct cf_core *core = cf_req_core(req);
    struct page page = {.failed = false};
    cf_buf_init(&page.buf, 0);
    render_requests(m, &page);
    render_logins(m, &page);
    render_audit(core, &page);
    enum cf_rc rc = render_jobs(core, &page, err);
    if (rc == CF_OK)
        rc = render_expiring(core, &page, err);
    if (rc == CF_OK) {
        render_process(m, core, &page);
        emit(&page,
             "# HELP coffer_http_requests_in_flight Requests being answered now.\n"
             "# TYPE coffer_http_requests_in_flight gauge\n"
             "coffer_http_requests_in_flight %d\n",
             cf_server_in_flight(req->server));
    }
    if (rc == CF_OK && page.failed)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory rendering the metrics");
    if (rc != CF_OK) {
        cf_buf_release(&page.buf);
        return rc;
    }
    req->content_type = "text/plain; version=0.0.4; charset=utf-8";
    cf_req_reply_raw(req, &page.buf);
    return CF_OK;
}

const struct cf_route cf_routes_metrics[] = {
    {"GET", "/metrics", metrics, true, NULL, .quiet = true},
    {NULL, NULL, NULL, false, NULL},
};
