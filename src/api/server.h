/* Coffer's HTTP server: libmicrohttpd with an epoll thread pool, request bodies bounded by a size
 * cap, one log line per request, and graceful shutdown. Routing lives in router.c, the rendering of
 * errors (the one map from cf_rc to HTTP, cf_api_render_error) in request.c; authentication in
 * authn.c. */
#ifndef CF_API_SERVER_H
#define CF_API_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "crypto/token.h"
#include "util/err.h"

#define CF_SERVER_WRITE_THREADS_MAX 64

struct cf_server_config {
    const char *addr;          /* "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:443"; port 0 picks one */
    const char *tls_cert_path; /* PEM; both or neither */
    const char *tls_key_path;
    bool allow_plain_http; /* serve plain HTTP on a non-loopback address */
    size_t max_body;       /* bytes; 0: 1 MiB */
    unsigned threads;      /* 0: number of cores */
    /* Threads that run the requests which may write (server.c); 0: the worker threads run them.
     * At most CF_SERVER_WRITE_THREADS_MAX. */
    unsigned write_threads;
    unsigned timeout_s;              /* idle connection timeout; 0: 30 */
    unsigned max_connections;        /* open connections at most; 0: 4096 */
    unsigned max_connections_per_ip; /* open connections from one address at most; 0: 256 */
    const char *store_name;          /* for /api/status */
    /* A file holding the token a metrics scrape must bear (api/metrics.h); NULL: GET /metrics is
     * off. */
    const char *metrics_token_file;
    /* NULL: the server binds addr. Otherwise, when *keep_port is 0 the server binds addr and
     * stores the port it bound there, else it binds addr's host on *keep_port: so that a sealed
     * server and the unsealed one after it (or the reverse) serve one address, port 0 included.
     * Between the two, connections are refused for a moment. */
    uint16_t *keep_port;
};

struct cf_server;

/* Starts serving. core is borrowed (core->admin checks the admin token on every request); *out is
 * stopped and freed by cf_server_stop. */
enum cf_rc cf_server_start(const struct cf_server_config *config, struct cf_core *core,
                           struct cf_server **out, struct cf_err *err);

/* The port actually bound (useful with port 0). */
uint16_t cf_server_port(struct cf_server *server);

/* Stops accepting connections, lets in-flight requests finish (up to drain_ms), then stops and
 * frees. */
void cf_server_stop(struct cf_server *server, int drain_ms);

#endif
