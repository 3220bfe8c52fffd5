/* The HTTP server (see server.h). libmicrohttpd calls on_request several times per request: once
 * when the headers are in, once per chunk of body, and once more when the body is complete. We
 * answer on that last call (answering on the first would make libmicrohttpd 0.9.75 close every
 * connection), except for a body over the cap, which is refused as early as possible so the client
 * can read the 413 before it has sent everything, and a request head that is refused (check_head),
 * whose answer closes the connection.
 *
 * A request that may write (any method but GET, HEAD and OPTIONS) runs on a writer thread when
 * there are any (config.write_threads): its connection is suspended and the request queued; a
 * writer thread dispatches it, keeps its answer in req->held, and resumes the connection (at once,
 * or once the commits the answer depends on are synced), and libmicrohttpd's next call sends it
 * (answer_held). So a worker thread never waits for a write, and the writes of several requests
 * are in the store at once, where they share a transaction and a commit (sql_combine, sqlrun.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "api/internal.h"
#include "api/metrics.h"
#include "api/web.h"
#include "core/auditlog.h"
#include "core/users.h"
#include "util/gzip.h"
#include "util/wipemem.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define DEFAULT_MAX_BODY (1024u * 1024u)
#define TLS_FILE_MAX (1024 * 1024)
#define DISCARD_FACTOR 8 /* how much of an oversized body is read and dropped before giving up */

/* Request heads are limited by Coffer first, so that their refusals are its own JSON answers with
 * the security headers: a request target over MAX_TARGET_BYTES is answered 414, a request line and
 * headers over MAX_HEAD_BYTES 431. libmicrohttpd refuses by itself (with its own static page) only
 * what does not fit in its per-connection memory, MHD_MEMORY_BYTES, well above both. */
#define MAX_TARGET_BYTES 8192
#define MAX_HEAD_BYTES 16384
#define MHD_MEMORY_BYTES (32 * 1024)

/* The TLS policy (GnuTLS priority string, docs/server.md "TLS"): TLS 1.3, or TLS 1.2 with an
 * ephemeral elliptic-curve key exchange (forward secrecy) and an AEAD cipher (AES-GCM, ChaCha20-
 * Poly1305); never TLS 1.1 or older, static RSA or finite-field DHE key exchange, CBC or RC4. The
 * SECURE levels keep GnuTLS's own floor for signatures and groups (no SHA-1 signatures); the
 * server's order wins, so a client that offers TLS 1.3 and AES-256-GCM gets them. */
#define TLS_PRIORITIES                                                                             \
    "SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:"    \
    "-CIPHER-ALL:+AES-256-GCM:+CHACHA20-POLY1305:+AES-128-GCM:-MAC-ALL:+AEAD:%SERVER_PRECEDENCE"

struct cf_server {
    struct MHD_Daemon *daemon;
    struct cf_core *core;
    struct cf_server_config config;
    atomic_int in_flight;
    atomic_int suspended; /* answers held until their commits are on disk */
    atomic_bool draining; /* shutting down: new requests are refused with 503 */
    uint16_t port;
    char *tls_cert;
    char *tls_key; /* private key PEM: wiped on stop */
    size_t tls_key_len;
    struct cf_metrics *metrics; /* NULL: GET /metrics is off */
    /* The writer threads (see the top of this file) and their queue, in arrival order. */
    pthread_mutex_t writers_lock;
    pthread_cond_t writers_wake; /* the writers but the first: a request of another route */
    pthread_cond_t batch_wake;   /* the first writer: a request of a batch route */
    struct cf_req *queue_head, **queue_tail;
    bool writers_ready; /* the queue's lock is set up (writers_start) */
    bool writers_stopping;
    /* Shared write transactions committed, and the requests they held (logged at the stop). */
    unsigned long long batches, batched;
    unsigned n_writers;    /* started so far */
    unsigned writer_count; /* to start: set before the first starts, read by them (take_work) */
    pthread_t writers[CF_SERVER_WRITE_THREADS_MAX];
    struct writer {
        struct cf_server *server;
        unsigned index; /* 0: the one that runs shared write transactions (take_work) */
    } writer_args[CF_SERVER_WRITE_THREADS_MAX];
};

/* Every answer is JSON for programs, never a page: nothing may be cached, sniffed, framed, given a
 * referrer or run as a document; over TLS, browsers are told to stay on https. */
static void add_common_headers(struct MHD_Response *resp, const char *reqid, bool tls, bool scim,
                               const char *content_type)
{
    MHD_add_response_header(resp, "Content-Type",
                            content_type ? content_type
                            : scim       ? "application/scim+json; charset=utf-8"
                                         : "application/json; charset=utf-8");
    MHD_add_response_header(resp, "X-Request-Id", reqid);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; frame-ancestors 'none'");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    if (tls)
        MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
}

struct cf_metrics *cf_server_metrics(const struct cf_server *server)
{
    return server ? server->metrics : NULL; /* NULL: a request built in-process (the API fuzzer) */
}

int cf_server_in_flight(struct cf_server *server)
{
    return atomic_load(&server->in_flight);
}

bool cf_server_cookies_secure(const struct cf_server *server)
{
    return server->tls_cert != NULL || server->config.allow_plain_http;
}

/* Response bodies can hold secret values: libmicrohttpd hands the buffer back when it is done
 * sending, and it is wiped before it is freed. */
static void free_body(void *cls)
{
    struct cf_buf *body = cls;
    cf_buf_release_wipe(body);
    free(body);
}

/* The store's syncer answered a held request: it resumes, and libmicrohttpd calls on_request
 * again, which sends the held answer (answer_held). Runs on the syncer thread; req may be gone
 * once the connection is resumed. */
static void on_synced(void *arg, enum cf_rc rc)
{
    struct cf_req *req = arg;
    struct cf_server *server = req->server;
    req->sync_rc = rc;
    MHD_resume_connection(req->conn);
    atomic_fetch_sub(&server->suspended, 1);
}

/* Has the store's syncer resume req's suspended connection (on_synced) once ticket is synced. */
static void resume_once_synced(struct cf_req *req, uint64_t ticket)
{
    req->sync_wait = (struct cf_store_sync_wait){.ticket = ticket, .done = on_synced, .arg = req};
    cf_store_sync_notify(req->core->store, &req->sync_wait);
}

/* Holds a dispatched request's answer resp (taken) while the commits it may depend on, its own or
 * those it may have read, are not yet on disk: the connection is suspended, so this worker goes on
 * serving others, and one sync of the log answers many held requests at once. */
static bool hold_until_synced(struct cf_req *req, struct MHD_Response *resp)
{
    if (!req->dispatched || !req->conn)
        return false;
    uint64_t ticket = cf_store_sync_ticket(req->core->store);
    if (ticket == 0)
        return false;
    req->held = resp;
    atomic_fetch_add(&req->server->suspended, 1);
    MHD_suspend_connection(req->conn);
    resume_once_synced(req, ticket);
    return true;
}

/* Whether a request with this method may change something: every method but GET, HEAD and
 * OPTIONS. */
static bool method_may_write(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
           strcmp(method, "OPTIONS") != 0;
}

/* Sends body (its contents are taken; body is left empty) with status. */
/* A cached body (cf_req_reply_leased) goes out as it is: the cache's lease is given back when
 * libmicrohttpd is done with it. */
static void release_lease(void *cls)
{
    cf_cache_lease_release(cls);
}

static enum MHD_Result send_response(struct cf_req *req, int status, struct MHD_Response *resp);

static enum MHD_Result send_body(struct cf_req *req, int status, struct cf_buf *body)
{
    struct cf_buf *owned = malloc(sizeof(*owned));
    if (!owned) {
        cf_buf_release_wipe(body);
        return MHD_NO;
    }
    *owned = *body;
    cf_buf_init(body, 0);
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback_cls(
        owned->len, owned->data ? owned->data : "", free_body, owned);
    if (!resp) {
        free_body(owned);
        return MHD_NO;
    }
    return send_response(req, status, resp);
}

static enum MHD_Result send_leased(struct cf_req *req, int status)
{
    struct cf_cache_lease *lease = req->lease;
    req->lease = NULL;
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback_cls(
        req->leased_len, (void *)req->leased_reply, release_lease, lease);
    req->leased_reply = NULL;
    if (!resp) {
        cf_cache_lease_release(lease);
        return MHD_NO;
    }
    return send_response(req, status, resp);
}

/* Adds the headers every answer carries and queues resp (taken). */
static enum MHD_Result send_response(struct cf_req *req, int status, struct MHD_Response *resp)
{
    add_common_headers(resp, req->reqid, req->server->tls_cert != NULL,
                       req->route && req->route->scim, req->content_type);
    if (req->retry_after_s > 0) {
        char seconds[16];
        snprintf(seconds, sizeof(seconds), "%d", req->retry_after_s);
        MHD_add_response_header(resp, "Retry-After", seconds);
    }
    if (req->etag[0] && (status == 200 || status == 304))
        MHD_add_response_header(resp, "ETag", req->etag);
    if (status == 302 && req->location)
        MHD_add_response_header(resp, "Location", req->location);
    if (status == 413 || req->close_connection || atomic_load(&req->server->draining))
        MHD_add_response_header(resp, "Connection", "close");
    if (req->set_cookie)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, req->set_cookie);
    if (req->set_csrf_cookie)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, req->set_csrf_cookie);
    req->status = status;
    req->responded = true;
    if (req->on_writer) { /* the writer thread resumes the connection; answer_held sends it */
        req->held = resp;
        return MHD_YES;
    }
    if (hold_until_synced(req, resp))
        return MHD_YES;
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_error(struct cf_req *req, const struct cf_err *err);

static int dump_to_buf(const char *text, size_t n, void *data)
{
    return cf_buf_append(data, text, n) == CF_OK ? 0 : -1;
}

/* Serialises a handler's json_t and sends it (on failure, a 500 naming the problem). */
static enum MHD_Result send_json(struct cf_req *req, int status, json_t *json)
{
    struct cf_buf body;
    cf_buf_init(&body, 0);
    if (json_dump_callback(json, dump_to_buf, &body, JSON_COMPACT) != 0) {
        struct cf_err err;
        cf_buf_release_wipe(&body);
        cf_err_set(&err, CF_ENOMEM, "cannot render the response");
        return send_error(req, &err);
    }
    return send_body(req, status, &body);
}

static enum MHD_Result send_error(struct cf_req *req, const struct cf_err *err)
{
    json_t *body = NULL;
    int status = req->route && req->route->scim ? cf_api_render_scim_error(err, &body)
                                                : cf_api_render_error(req->reqid, err, &body);
    /* the operator needs these too (not a client's unknown HTTP version); messages never hold
     * secret values */
    if (status >= 500 && err->rc != CF_EVERSION)
        cf_log_event(CF_LOG_ERROR, "req_error", CF_LOG_WORD("req_id", req->reqid),
                     CF_LOG_WORD("rc", cf_rc_str(err->rc)), CF_LOG_TEXT("msg", err->msg));
    if (!body)
        return MHD_NO;
    if (req->error_extra && json_is_object(req->error_extra))
        json_object_update_missing(body, req->error_extra);
    if (err->rc == CF_ERATELIMIT && err->retry_after_s > 0)
        req->retry_after_s = err->retry_after_s;
    enum MHD_Result ret = send_json(req, status, body);
    json_decref(body);
    return ret;
}

/* Records the request in the audit log once its outcome (rc, err) is known, before the
 * answer goes out: in fail-closed mode a request whose record cannot be stored gets the audit log's
 * 503 instead of its answer. The health probe is not recorded. */
static enum cf_rc audit_now(struct cf_req *req, enum cf_rc rc, const struct cf_err *outcome,
                            struct cf_err *err)
{
    struct cf_audit_log *log = req->core->audit;
    if (!log || (req->route->quiet && rc == CF_OK))
        return CF_OK;
    struct cf_audit_event *e = req->audit ? req->audit : calloc(1, sizeof(*e));
    if (!e)
        return cf_audit_log_fail_closed(log)
                   ? cf_err_set(err, CF_EUNAVAIL,
                                "the audit log is out of memory: the request was "
                                "refused rather than served unaudited")
                   : CF_OK;
    req->audit = e;
    if (!e->action[0]) {
        /* Not annotated: the route names the operation, the request path its target (which
         * identity, client secret, membership, project, ...). */
        snprintf(e->action, sizeof(e->action), "http %s %.110s", req->method, req->route->pattern);
        cf_strlcpy(e->path, req->path, sizeof(e->path));
    }
    if (req->authenticated) {
        const struct cf_principal *who = &req->principal;
        bool admin = who->kind == CF_PRINCIPAL_ADMIN;
        bool user = who->kind == CF_PRINCIPAL_USER;
        cf_strlcpy(e->actor_kind,
                   admin  ? "admin"
                   : user ? "user"
                          : "identity",
                   sizeof(e->actor_kind));
        cf_strlcpy(e->actor_id, who->id, sizeof(e->actor_id));
        /* a user is named by email: the name is free text, the email unique */
        cf_strlcpy(e->actor_name,
                   admin  ? "admin"
                   : user ? who->email
                          : who->name,
                   sizeof(e->actor_name));
    } else if (!e->actor_kind[0]) {
        cf_strlcpy(e->actor_kind, "anonymous", sizeof(e->actor_kind));
    }
    cf_strlcpy(e->source_ip, req->client_ip, sizeof(e->source_ip));
    const char *agent =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_USER_AGENT);
    cf_strlcpy(e->user_agent, agent ? agent : "", sizeof(e->user_agent));
    cf_strlcpy(e->request_id, req->reqid, sizeof(e->request_id));
    const char *result = "ok";
    if (rc == CF_EUNAUTH || rc == CF_EFORBIDDEN || rc == CF_ERATELIMIT)
        result = "denied";
    else if (rc != CF_OK)
        result = "failed";
    cf_strlcpy(e->result, result, sizeof(e->result));
    /* a success keeps the reason its handler noted (cf_req_audit_reason) */
    if (rc != CF_OK || !e->reason[0])
        cf_strlcpy(e->reason, rc == CF_OK || !outcome ? "" : outcome->msg, sizeof(e->reason));
    if (rc == CF_OK && req->grant_used[0]) {
        /* what this user did only an access grant allowed: the record names the grant */
        size_t at = strlen(e->reason);
        snprintf(e->reason + at, sizeof(e->reason) - at, "%sunder access grant %s", at ? "; " : "",
                 req->grant_used);
    }
    return cf_req_audit_record(req, log, e, err);
}

/* Records req's outcome rc (outcome: its error) in the audit log; inside a shared write
 * transaction, once it committed (writer_main): until then the outcome is not known. Returns an
 * error only in fail-closed mode (the answer is then refused), which shared transactions are not
 * used in. */
static enum cf_rc audit_request(struct cf_req *req, enum cf_rc rc, const struct cf_err *outcome,
                                struct cf_err *err)
{
    if (!req->in_batch)
        return audit_now(req, rc, outcome, err);
    req->audit_later = true;
    req->audit_rc = rc;
    req->audit_has_outcome = outcome != NULL;
    if (outcome)
        req->audit_outcome = *outcome;
    return CF_OK;
}

/* Sends the answer held by hold_until_synced once the syncer resumed the connection; if the sync
 * failed, a 500 saying so instead (the change is visible but may not survive a power loss). */
static enum MHD_Result answer_held(struct cf_req *req)
{
    struct MHD_Response *resp = req->held;
    req->held = NULL;
    if (req->batch_err.rc != CF_OK) {
        MHD_destroy_response(resp);
        req->dispatched = false;
        return send_error(req, &req->batch_err);
    }
    if (req->sync_rc != CF_OK) {
        struct cf_err err;
        MHD_destroy_response(resp);
        req->dispatched = false; /* this answer depends on nothing more */
        cf_err_set(&err, CF_EIO,
                   "the database could not be synced to disk: the outcome of this request may "
                   "not survive a power loss (see the server log)");
        return send_error(req, &err);
    }
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)req->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result dispatch_in_scope(struct cf_req *req, const char *method, const char *url)
{
    struct cf_err audit_err;
    struct cf_err err;
    json_t *out = NULL;
    enum cf_rc rc;

    cf_err_clear(&err);
    switch (req->routed ? req->route_match : cf_router_match(req, method, url)) {
    case CF_ROUTE_NO_PATH:
        cf_err_set(&err, CF_ENOTFOUND, "Route %s %s not found", method, req->path);
        return send_error(req, &err);
    case CF_ROUTE_NO_METHOD:
        cf_err_set(&err, CF_EMETHOD, "method %s is not allowed on %s", method, req->path);
        return send_error(req, &err);
    case CF_ROUTE_FOUND:
        break;
    }
    if (req->core->sealed && !req->route->while_sealed) {
        cf_err_set(&err, CF_ESEALED,
                   "the server is sealed: unseal it with 'coffer operator unseal' (GET /api/status "
                   "shows the progress)");
        return send_error(req, &err);
    }
    cf_store_sync_defer(req->core->store, req->route->defer_sync);
    req->dispatched = true;

    for (size_t i = 0; i < req->n_params; i++) {
        if (!cf_utf8_valid(req->param_values[i], strlen(req->param_values[i]))) {
            cf_err_set(&err, CF_EINVAL, "the request path is not valid UTF-8");
            return send_error(req, &err);
        }
    }
    if (!req->route->public) {
        const char *auth =
            MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        const char *cookie =
            MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, CF_SESSION_COOKIE);
        const char *csrf = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "X-CSRF-Token");
        rc = cf_authn(req->core, auth, cookie, method_may_write(method), csrf, req->client_ip,
                      &req->principal, &err);
        if (rc != CF_OK) {
            cf_req_audit(req, "auth.token", NULL, NULL, NULL);
            if (audit_request(req, rc, &err, &audit_err) != CF_OK)
                return send_error(req, &audit_err);
            return send_error(req, &err);
        }
        req->authenticated = true;
        req->principal.grant_used = req->grant_used;
    }

    rc = req->route->handler(req, &out, &err);
    if (rc != CF_OK) {
        json_decref(out);
        if (err.rc == CF_OK)
            cf_err_set(&err, rc, "%s", cf_rc_str(rc));
        if (audit_request(req, rc, &err, &audit_err) != CF_OK)
            return send_error(req, &audit_err);
        return send_error(req, &err);
    }
    cf_err_clear(&audit_err);
    if (audit_request(req, CF_OK, NULL, &audit_err) != CF_OK) {
        json_decref(out); /* the answer is not given unaudited (fail-closed mode) */
        cf_req_reply_drop(req);
        return send_error(req, &audit_err);
    }
    if (!out && req->location) {
        out = json_pack("{s:s}", "location", req->location);
        if (!out) {
            cf_err_set(&err, CF_ENOMEM, "cannot render the response");
            return send_error(req, &err);
        }
        enum MHD_Result ret = send_json(req, 302, out);
        json_decref(out);
        return ret;
    }
    int status = req->reply_status ? req->reply_status : 200;
    if (!out && req->lease)
        return send_leased(req, status);
    if (!out)
        return send_body(req, status, &req->raw_reply);
    enum MHD_Result ret = send_json(req, status, out);
    json_decref(out);
    return ret;
}

/* The dashboard's policy: its own scripts, styles and API calls, nothing inline, nothing from
 * elsewhere (docs/dashboard.md "Security"). */
#define DASHBOARD_CSP                                                                              \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "                   \
    "frame-ancestors 'none'"

/* Answers a GET or HEAD of the dashboard (api/web.h): the file, gzip-compressed when the browser
 * takes it; content-hashed files cached for a year, index.html never (so that a new version is
 * picked up at once). Not audited: the files are public and hold no data. */
static enum MHD_Result send_web(struct cf_req *req, const char *url)
{
    struct cf_err err;
    if (cf_web_missing) {
        cf_err_set(&err, CF_EUNAVAIL, "%s", cf_web_missing);
        return send_error(req, &err);
    }
    const struct cf_web_asset *asset = cf_web_find(url);
    if (!asset) {
        cf_err_set(&err, CF_ENOTFOUND, "no such file of the dashboard: %s", req->path);
        return send_error(req, &err);
    }
    const char *accept =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    bool gz = asset->gzip && cf_gzip_accepted(accept);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        gz ? asset->gzip_len : asset->len, (void *)(gz ? asset->gzip : asset->data),
        MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", asset->content_type);
    if (gz)
        MHD_add_response_header(resp, "Content-Encoding", "gzip");
    if (asset->gzip)
        MHD_add_response_header(resp, "Vary", "Accept-Encoding");
    MHD_add_response_header(resp, "Cache-Control",
                            asset->immutable ? "public, max-age=31536000, immutable" : "no-store");
    MHD_add_response_header(resp, "X-Request-Id", req->reqid);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Content-Security-Policy", DASHBOARD_CSP);
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    if (req->server->tls_cert != NULL)
        MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
    if (req->close_connection || atomic_load(&req->server->draining))
        MHD_add_response_header(resp, "Connection", "close");
    req->status = 200;
    req->responded = true;
    enum MHD_Result ret = MHD_queue_response(req->conn, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Runs the request inside one read scope of the store (store.h): its token check, lookups and
 * reads share one read transaction and one snapshot instead of taking one per statement; its
 * writes still run in their own transactions. */
static enum MHD_Result dispatch(struct cf_req *req, const char *method, const char *url)
{
    cf_store_read_begin(req->core->store);
    enum MHD_Result ret = dispatch_in_scope(req, method, url);
    cf_store_read_end(req->core->store);
    return ret;
}

/* The most requests one shared write transaction takes: it holds the write lock, which every
 * other writer waits for, and its requests' answers all wait for its commit. */
#define WRITE_BATCH_MAX 64

/* Unlinks up to max queued requests whose batchable is as asked from the writers' queue into out,
 * in arrival order; returns how many. Called with writers_lock held. */
static size_t unlink_queued(struct cf_server *server, bool batchable, size_t max,
                            struct cf_req **out)
{
    size_t n = 0;
    struct cf_req **p = &server->queue_head;
    while (*p && n < max) {
        struct cf_req *req = *p;
        if (req->batchable != batchable) {
            p = &req->queued_next;
            continue;
        }
        if (!req->queued_next) /* the last one: the link before it becomes the tail */
            server->queue_tail = p;
        *p = req->queued_next;
        out[n++] = req;
    }
    return n;
}

/* Takes writer `index`'s next work off the queue into out (writers_lock held); returns how many
 * (0: none it may take). The first writer runs every shared transaction: it takes every queued
 * request of a batch route (up to WRITE_BATCH_MAX); the others take requests of other routes, one
 * at a time. One thread, so one shared transaction at a time (a second would only wait for the
 * first one's write lock, holding its requests back), and always on the same connection, whose
 * page cache its own commits keep valid. A lone writer takes both, in arrival order, so that a
 * stream of secret writes cannot hold a login back for ever. */
static size_t take_work(struct cf_server *server, unsigned index, struct cf_req **out)
{
    bool alone = server->writer_count == 1;
    if (index == 0 && (!alone || !server->queue_head || server->queue_head->batchable))
        return unlink_queued(server, true, WRITE_BATCH_MAX, out);
    return unlink_queued(server, false, 1, out);
}

/* Hands req's answer over once it may go (its commits synced), or closes it without one. */
static void writer_finish(struct cf_req *req)
{
    /* Without an answer (out of memory making one) the connection is closed. */
    req->close_now = !req->held;
    uint64_t ticket = req->held && req->dispatched ? cf_store_sync_ticket(req->core->store) : 0;
    if (ticket)
        resume_once_synced(req, ticket);
    else
        on_synced(req, CF_OK);
}

/* Runs reqs (of batch routes) in one shared write transaction: one commit, and one sync, for all
 * of them (docs/server.md "Shared write transactions"). Their audit records are written once the
 * commit is known. Without one (a store that has none, fail-closed audit) they run one by one. */
static void run_shared(struct cf_server *server, struct cf_req **reqs, size_t n)
{
    struct cf_core *core = reqs[0]->core;
    struct cf_err err;
    cf_err_clear(&err);
    cf_store_sync_defer(core->store, true); /* as the routes ask: set before the transaction */
    bool shared = !(core->audit && cf_audit_log_fail_closed(core->audit)) &&
                  cf_store_batch_begin(core->store, &err) == CF_OK;
    for (size_t i = 0; i < n; i++) {
        reqs[i]->in_batch = shared;
        reqs[i]->on_writer = true;
        dispatch(reqs[i], reqs[i]->method, reqs[i]->queued_url);
        reqs[i]->on_writer = false;
    }
    enum cf_rc rc = shared ? cf_store_batch_end(core->store, &err) : CF_OK;
    if (shared && rc == CF_OK) {
        pthread_mutex_lock(&server->writers_lock);
        server->batches++;
        server->batched += n;
        pthread_mutex_unlock(&server->writers_lock);
    }
    if (rc != CF_OK)
        cf_log(CF_LOG_ERROR, "a shared write transaction of %zu requests was not committed: %s", n,
               err.msg);
    for (size_t i = 0; i < n; i++) {
        struct cf_req *req = reqs[i];
        req->in_batch = false;
        if (rc != CF_OK)
            cf_err_set(&req->batch_err, rc, "nothing this request changed was stored: %s", err.msg);
        if (req->audit_later) {
            struct cf_err ignored;
            req->audit_later = false;
            if (rc != CF_OK)
                audit_now(req, rc, &req->batch_err, &ignored);
            else
                audit_now(req, req->audit_rc, req->audit_has_outcome ? &req->audit_outcome : NULL,
                          &ignored);
        }
    }
    for (size_t i = 0; i < n; i++)
        writer_finish(reqs[i]);
}

/* A writer thread: dispatches queued requests, those of batch routes together in shared write
 * transactions, the others one at a time (see the top of this file and take_work). */
static void *writer_main(void *arg)
{
    struct writer *self = arg;
    struct cf_server *server = self->server;
    pthread_cond_t *wake = self->index == 0 ? &server->batch_wake : &server->writers_wake;
    struct cf_req *work[WRITE_BATCH_MAX];
    pthread_mutex_lock(&server->writers_lock);
    for (;;) {
        size_t n;
        while ((n = take_work(server, self->index, work)) == 0 && !server->writers_stopping)
            pthread_cond_wait(wake, &server->writers_lock);
        if (n == 0)
            break; /* stopping, and nothing is left */
        pthread_mutex_unlock(&server->writers_lock);
        bool shared = work[0]->batchable;
        if (shared) {
            run_shared(server, work, n);
        } else {
            work[0]->on_writer = true;
            dispatch(work[0], work[0]->method, work[0]->queued_url);
            work[0]->on_writer = false;
            writer_finish(work[0]);
        }
        pthread_mutex_lock(&server->writers_lock);
    }
    pthread_mutex_unlock(&server->writers_lock);
    return NULL;
}

/* Hands a request that may write to the writer threads, suspending its connection; false when it
 * stays on this worker (no writer threads, a method that does not write, out of memory). */
static bool queue_for_writer(struct cf_server *server, struct cf_req *req, const char *method,
                             const char *url)
{
    if (server->n_writers == 0 || !method_may_write(method))
        return false;
    req->queued_url = strdup(url);
    if (!req->queued_url)
        return false;
    req->queued_next = NULL;
    req->route_match = cf_router_match(req, method, url);
    req->routed = true;
    req->batchable =
        req->route_match == CF_ROUTE_FOUND && req->route->batch && req->route->defer_sync;
    atomic_fetch_add(&server->suspended, 1); /* given back by on_synced */
    MHD_suspend_connection(req->conn);
    pthread_mutex_lock(&server->writers_lock);
    *server->queue_tail = req;
    server->queue_tail = &req->queued_next;
    /* Only a writer that may take it: a woken writer that may not goes back to sleep, which under
     * load cost a futex wake and two context switches per write. */
    pthread_cond_signal(req->batchable || server->writer_count == 1 ? &server->batch_wake
                                                                    : &server->writers_wake);
    pthread_mutex_unlock(&server->writers_lock);
    return true;
}

/* Sets up the writer threads' queue and starts n of them. */
static enum cf_rc writers_start(struct cf_server *server, unsigned n, struct cf_err *err)
{
    if (pthread_mutex_init(&server->writers_lock, NULL) != 0)
        return cf_err_set(err, CF_EINTERNAL, "cannot create a mutex");
    if (pthread_cond_init(&server->writers_wake, NULL) != 0) {
        pthread_mutex_destroy(&server->writers_lock);
        return cf_err_set(err, CF_EINTERNAL, "cannot create a condition variable");
    }
    if (pthread_cond_init(&server->batch_wake, NULL) != 0) {
        pthread_cond_destroy(&server->writers_wake);
        pthread_mutex_destroy(&server->writers_lock);
        return cf_err_set(err, CF_EINTERNAL, "cannot create a condition variable");
    }
    server->queue_tail = &server->queue_head;
    server->writers_ready = true;
    if (n > CF_SERVER_WRITE_THREADS_MAX)
        return cf_err_set(err, CF_EINVAL, "%u writer threads are more than the %d allowed", n,
                          CF_SERVER_WRITE_THREADS_MAX);
    server->writer_count = n;
    for (; server->n_writers < n; server->n_writers++) {
        pthread_t *t = &server->writers[server->n_writers];
        server->writer_args[server->n_writers] =
            (struct writer){.server = server, .index = server->n_writers};
        if (pthread_create(t, NULL, writer_main, &server->writer_args[server->n_writers]) != 0)
            return cf_err_set(err, CF_EINTERNAL, "cannot start writer thread %u of %u",
                              server->n_writers + 1, n);
        pthread_setname_np(*t, "writer");
    }
    return CF_OK;
}

/* Stops the writer threads once their queue is empty (libmicrohttpd has stopped: no request comes
 * any more) and frees what writers_start set up. */
static void writers_stop(struct cf_server *server)
{
    if (!server->writers_ready)
        return;
    pthread_mutex_lock(&server->writers_lock);
    server->writers_stopping = true;
    pthread_cond_broadcast(&server->writers_wake);
    pthread_cond_broadcast(&server->batch_wake);
    pthread_mutex_unlock(&server->writers_lock);
    for (unsigned i = 0; i < server->n_writers; i++)
        pthread_join(server->writers[i], NULL);
    if (server->batches)
        cf_log_info("shared write transactions: %llu requests in %llu", server->batched,
                    server->batches);
    pthread_cond_destroy(&server->writers_wake);
    pthread_cond_destroy(&server->batch_wake);
    pthread_mutex_destroy(&server->writers_lock);
}

/* The peer's address as text; an IPv4-mapped IPv6 address is shown as IPv4. */
static void client_address(struct MHD_Connection *conn, char *out, size_t size)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    out[0] = '\0';
    if (!info || !info->client_addr)
        return;
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)size);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, &a->s6_addr[12], out, (socklen_t)size);
        else
            inet_ntop(AF_INET6, a, out, (socklen_t)size);
    }
}

/* Copies the (decoded) path for the log line, percent-encoding blanks, control bytes, bytes above
 * 0x7e and
 * '%', so that a request cannot forge fields or lines in the log. */
static void log_safe_path(char *out, size_t size, const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)path; *p && n + 4 < size; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '%') {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        } else {
            out[n++] = (char)*p;
        }
    }
    out[n] = '\0';
}

/* What on_target learnt of the raw request target, handed to the request's first call as its
 * connection context (three distinct addresses; nothing to free if the request ends earlier). */
enum target_verdict { TARGET_OK, TARGET_MALFORMED, TARGET_TOO_LONG, TARGET_VERDICTS };
static const char target_verdicts[TARGET_VERDICTS];

static bool is_target_verdict(const void *context)
{
    for (int i = 0; i < TARGET_VERDICTS; i++) {
        if (context == &target_verdicts[i])
            return true;
    }
    return false;
}

/* libmicrohttpd's URI log callback: sees the request target as sent (before %-decoding, with its
 * query), which the access handler no longer can. Coffer serves paths only ("/..."); a blank or
 * control byte there is refused (libmicrohttpd would take "GET /a b HTTP/1.1" as the path "/a b").
 */
static void *on_target(void *cls, const char *target, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    size_t len = strlen(target);
    if (len > MAX_TARGET_BYTES)
        return (void *)&target_verdicts[TARGET_TOO_LONG];
    if (target[0] != '/')
        return (void *)&target_verdicts[TARGET_MALFORMED];
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c <= 0x20 || c == 0x7f)
            return (void *)&target_verdicts[TARGET_MALFORMED];
    }
    return (void *)&target_verdicts[TARGET_OK];
}

/* RFC 9110 tchar: the bytes of a method or a header name. */
static bool is_token(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr("!#$%&'*+-.^_`|~", c))))
            return false;
    }
    return true;
}

/* What check_header found in a request's headers. */
struct head_scan {
    bool malformed; /* a name that is not a token, a control byte in a value */
    int content_length;
    int transfer_encoding;
    bool not_chunked; /* a Transfer-Encoding other than exactly "chunked" */
    int host;
};

static enum MHD_Result check_header(void *cls, enum MHD_ValueKind kind, const char *name,
                                    size_t name_len, const char *value, size_t value_len)
{
    struct head_scan *scan = cls;
    (void)kind;
    /* A name with a blank, a control byte or a folded continuation (libmicrohttpd 0.9.75 appends
     * a continuation line to the name) is not a token. */
    if (!is_token(name, name_len) || strlen(name) != name_len) {
        scan->malformed = true;
        return MHD_NO;
    }
    /* Bare CR, and any other control byte but HTAB: a proxy in front may end the line there. */
    for (size_t i = 0; value && i < value_len; i++) {
        unsigned char c = (unsigned char)value[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            scan->malformed = true;
            return MHD_NO;
        }
    }
    if (strcasecmp(name, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        scan->content_length++;
    } else if (strcasecmp(name, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        scan->transfer_encoding++;
        if (!value || strcasecmp(value, "chunked") != 0)
            scan->not_chunked = true;
    } else if (strcasecmp(name, MHD_HTTP_HEADER_HOST) == 0) {
        scan->host++;
    }
    return MHD_YES;
}

/* Refuses, before any handler runs, a request head that a proxy in front of Coffer could read
 * differently (request smuggling: which bytes are the body, where the next request starts) or
 * that is over the limits. libmicrohttpd has already refused what it cannot parse (with its own
 * answer, docs/server.md); what it accepts but leaves ambiguous is checked here. */
static enum cf_rc check_head(struct MHD_Connection *conn, const char *method, const char *version,
                             const void *verdict, struct cf_err *err)
{
    if (verdict == &target_verdicts[TARGET_TOO_LONG])
        return cf_err_set(err, CF_ETARGET, "the request target is over the limit of %d bytes",
                          MAX_TARGET_BYTES);
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (info && info->header_size > MAX_HEAD_BYTES)
        return cf_err_set(err, CF_EHEADERS,
                          "the request line and headers are over the limit of %d bytes",
                          MAX_HEAD_BYTES);
    if (strcmp(version, MHD_HTTP_VERSION_1_1) != 0 && strcmp(version, MHD_HTTP_VERSION_1_0) != 0)
        return cf_err_set(err, CF_EVERSION, "only HTTP/1.1 and HTTP/1.0 are served");
    if (!is_token(method, strlen(method)) || verdict != &target_verdicts[TARGET_OK])
        return cf_err_set(err, CF_EINVAL, "malformed request line");

    struct head_scan scan = {0};
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, check_header, &scan);
    if (scan.malformed)
        return cf_err_set(err, CF_EINVAL,
                          "malformed request header (a name that is not a token, a folded line, "
                          "or a control character such as a bare CR)");
    if (scan.content_length > 1)
        return cf_err_set(err, CF_EINVAL, "more than one Content-Length header");
    if (scan.transfer_encoding > 1 || scan.not_chunked)
        return cf_err_set(err, CF_EINVAL,
                          "the only Transfer-Encoding served is a single 'chunked'");
    if (scan.content_length && scan.transfer_encoding)
        return cf_err_set(err, CF_EINVAL, "both Content-Length and Transfer-Encoding");
    if (scan.host > 1)
        return cf_err_set(err, CF_EINVAL, "more than one Host header");
    return CF_OK;
}

static enum MHD_Result send_too_large(struct cf_req *req, struct cf_server *server)
{
    struct cf_err err;
    cf_err_set(&err, CF_ETOOLARGE, "request body is over the limit of %zu bytes",
               server->config.max_body);
    return send_error(req, &err);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct cf_server *server = cls;
    struct cf_req *req = *con_cls;
    struct cf_err err;

    if (!req || is_target_verdict(req)) {
        const void *verdict = req;
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        req->server = server;
        req->core = server->core;
        req->conn = conn;
        req->start_us = cf_mono_us();
        cf_reqid_new(req->reqid);
        client_address(conn, req->client_ip, sizeof(req->client_ip));
        cf_strlcpy(req->method, method, sizeof(req->method));
        log_safe_path(req->path, sizeof(req->path), url);
        cf_buf_init(&req->body, server->config.max_body);
        atomic_fetch_add(&server->in_flight, 1);
        *con_cls = req;

        if (atomic_load(&server->draining)) {
            cf_err_set(&err, CF_EUNAVAIL, "the server is shutting down; retry on another node");
            return send_error(req, &err);
        }
        if (check_head(conn, method, version, verdict, &err) != CF_OK) {
            /* Where this request ends is in doubt: nothing more is read from the connection. */
            req->close_connection = true;
            return send_error(req, &err);
        }

        const char *length =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        long long declared = 0;
        if (length && cf_parse_int64(length, 0, LLONG_MAX, &declared) &&
            (unsigned long long)declared > server->config.max_body) {
            cf_err_set(&err, CF_ETOOLARGE,
                       "request body of %lld bytes is over the limit of %zu bytes", declared,
                       server->config.max_body);
            req->body_too_large = true;
            return send_error(req, &err);
        }
        return MHD_YES;
    }

    if (req->close_now)
        return MHD_NO;
    if (req->held)
        return answer_held(req); /* resumed by on_synced */
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->responded)
            return MHD_YES; /* discarding the rest of a refused body */
        if (req->body_too_large) {
            /* Keep reading (and dropping) what the client already sent, so that the 413 is not lost
             * to a reset connection; give up on a client that goes on for much longer. */
            req->discarded += n;
            if (req->discarded <= DISCARD_FACTOR * server->config.max_body)
                return MHD_YES;
            return send_too_large(req, server);
        }
        if (cf_buf_append(&req->body, upload_data, n) != CF_OK) {
            cf_buf_release_wipe(&req->body);
            req->body_too_large = true;
            req->discarded = n;
        }
        return MHD_YES;
    }
    if (req->responded)
        return MHD_YES;
    if (req->body_too_large)
        return send_too_large(req, server);
    if ((strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) && cf_web_path(url))
        return send_web(req, url);
    if (queue_for_writer(server, req, method, url))
        return MHD_YES; /* answered by answer_held, once a writer thread resumes it */
    return dispatch(req, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct cf_server *server = cls;
    struct cf_req *req = *con_cls;
    (void)conn;
    if (!req || is_target_verdict(req))
        return; /* ended before its first call: there is no request to log or free */
    int64_t dur_us = cf_mono_us() - req->start_us;
    double ms = (double)dur_us / 1000.0;
    if (server->metrics)
        cf_metrics_observe(server->metrics,
                           req->route               ? req->route_index
                           : cf_web_path(req->path) ? CF_METRICS_DASHBOARD
                                                    : CF_METRICS_UNMATCHED,
                           req->status, dur_us);
    /* who asked, by kind and id (names are free text and may be anything) */
    char actor[CF_UUID_LEN + 16] = "";
    if (req->authenticated) {
        const char *const who[] = {req->principal.kind == CF_PRINCIPAL_ADMIN  ? "admin"
                                   : req->principal.kind == CF_PRINCIPAL_USER ? "user"
                                                                              : "identity",
                                   req->principal.id};
        cf_join(actor, sizeof(actor), ':', who, req->principal.id[0] ? 2 : 1);
    }
    const struct cf_log_field fields[] = {
        CF_LOG_TEXT("method", req->method),
        CF_LOG_TEXT("path", req->path),
        CF_LOG_INT("status", req->status),
        CF_LOG_MS("dur_ms", ms),
        CF_LOG_WORD("req_id", req->reqid),
        CF_LOG_TEXT("route", req->route ? req->route->pattern : ""),
        CF_LOG_WORD("actor", actor),
        CF_LOG_INT("aborted", 1),
    };
    size_t n = CF_ARRAY_SIZE(fields);
    cf_log_fields(CF_LOG_INFO, "req", fields,
                  toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? n - 1 : n); /* aborted=1 last */
    if (req->held)
        MHD_destroy_response(req->held);
    free(req->queued_url);
    cf_req_release(req);
    free(req);
    *con_cls = NULL;
    atomic_fetch_sub(&server->in_flight, 1);
}

/* fmt is libmicrohttpd's own format string */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    cf_log_warn("http %s", line);
}

/* libmicrohttpd's unescape callback: cf_http_unescape (request.c). */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return cf_http_unescape(s);
}

static enum cf_rc read_file(const char *path, char **out, size_t *len, struct cf_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cf_err_set(err, CF_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct cf_buf buf;
    cf_buf_init(&buf, TLS_FILE_MAX);
    char chunk[4096];
    size_t n;
    enum cf_rc rc = CF_OK;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (cf_buf_append(&buf, chunk, n) != CF_OK) {
            rc = cf_err_set(err, CF_ETOOLARGE, "'%s' is larger than 1 MiB", path);
            break;
        }
    }
    sodium_memzero(chunk, sizeof(chunk));
    fclose(f);
    if (rc != CF_OK) {
        cf_buf_release_wipe(&buf);
        return rc;
    }
    *out = cf_buf_detach(&buf, len);
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

/* Parses "host:port" or "[v6]:port" into a socket address. */
static enum cf_rc parse_addr(const char *addr, struct sockaddr_storage *ss, bool *loopback,
                             struct cf_err *err)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || !colon[1])
        return cf_err_set(err, CF_EINVAL, "address '%s' must be HOST:PORT, e.g. 127.0.0.1:8080",
                          addr);
    size_t hlen = (size_t)(colon - addr);
    const char *h = addr;
    if (addr[0] == '[' && hlen >= 2 && addr[hlen - 1] == ']') {
        h = addr + 1;
        hlen -= 2;
    }
    if (hlen >= sizeof(host))
        return cf_err_set(err, CF_EINVAL, "address '%s' is too long", addr);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    long long port;
    if (!cf_parse_int64(colon + 1, 0, 65535, &port))
        return cf_err_set(err, CF_EINVAL, "port in '%s' must be 0..65535", addr);

    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%lld", port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0 || !res)
        return cf_err_set(err, CF_EINVAL, "cannot resolve '%s': %s", host, gai_strerror(gai));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        *loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        *loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return CF_OK;
}

/* Binds and listens on ss ourselves rather than through libmicrohttpd, which reports a failed bind
 * only as a log line ("Failed to bind to port 0" for an address given as a sockaddr): here the
 * caller gets the errno, "cannot listen on 127.0.0.1:8080: address already in use". The socket is
 * non-blocking (the thread pool's workers share it) and, as libmicrohttpd does, SO_REUSEADDR, so
 * a restart does not wait for the old connections' TIME_WAIT; an IPv6 address serves IPv6 only.
 * *fd is the socket, *port the port bound (port 0 picks one). */
static enum cf_rc listen_on(const struct sockaddr_storage *ss, const char *addr, int *fd,
                            uint16_t *port, struct cf_err *err)
{
    socklen_t len =
        ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof(bound);
    const char *step = "socket";
    int one = 1;
    int s = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (s < 0)
        goto fail;
    step = "setsockopt";
    if (setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (ss->ss_family == AF_INET6 &&
         setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0))
        goto fail;
    step = NULL;
    if (bind(s, (const struct sockaddr *)ss, len) != 0 || listen(s, SOMAXCONN) != 0 ||
        getsockname(s, (struct sockaddr *)&bound, &bound_len) != 0)
        goto fail;
    *port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)&bound)->sin_port);
    *fd = s;
    return CF_OK;
fail:;
    /* strerror's sentence, lower-cased as every message here is */
    char cause[128];
    cf_strlcpy(cause, strerror(errno), sizeof(cause));
    cause[0] = (char)tolower((unsigned char)cause[0]);
    if (s >= 0)
        close(s);
    if (step)
        return cf_err_set(err, CF_EIO, "cannot listen on %s: %s: %s", addr, step, cause);
    return cf_err_set(err, CF_EIO, "cannot listen on %s: %s", addr, cause);
}

enum cf_rc cf_server_start(const struct cf_server_config *config, struct cf_core *core,
                           struct cf_server **out, struct cf_err *err)
{
    struct sockaddr_storage ss;
    bool loopback = false;
    bool tls = config->tls_cert_path && config->tls_key_path;
    int listen_fd = -1, mhd_fd = -1;
    enum cf_rc rc;

    if ((config->tls_cert_path != NULL) != (config->tls_key_path != NULL))
        return cf_err_set(err, CF_EINVAL, "--tls-cert and --tls-key must be given together");
    rc = parse_addr(config->addr, &ss, &loopback, err);
    if (rc != CF_OK)
        return rc;
    if (!loopback && !tls && !config->allow_plain_http)
        return cf_err_set(err, CF_EINVAL,
                          "refusing to serve plain HTTP on non-loopback address '%s': give "
                          "--tls-cert and --tls-key, or --allow-plain-http behind a TLS proxy",
                          config->addr);

    struct cf_server *server = calloc(1, sizeof(*server));
    if (!server)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    server->core = core;
    server->config = *config;
    if (!server->config.max_body)
        server->config.max_body = DEFAULT_MAX_BODY;
    if (!server->config.timeout_s)
        server->config.timeout_s = 30;
    if (!server->config.max_connections)
        server->config.max_connections = 4096;
    if (!server->config.max_connections_per_ip)
        server->config.max_connections_per_ip = 256;
    if (!server->config.threads) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        server->config.threads = cores > 0 ? (unsigned)cores : 2;
    }

    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (tls) {
        size_t cert_len = 0;
        rc = read_file(config->tls_cert_path, &server->tls_cert, &cert_len, err);
        if (rc == CF_OK)
            rc = read_file(config->tls_key_path, &server->tls_key, &server->tls_key_len, err);
        if (rc != CF_OK)
            goto fail;
        flags |= MHD_USE_TLS;
    }
    if (config->metrics_token_file) {
        char *token = NULL;
        size_t len = 0;
        rc = read_file(config->metrics_token_file, &token, &len, err);
        if (rc == CF_OK) {
            while (len && (token[len - 1] == '\n' || token[len - 1] == '\r' ||
                           token[len - 1] == ' ' || token[len - 1] == '\t'))
                len--; /* a file written by echo or an editor ends with a newline */
            rc = cf_metrics_new(token, len, &server->metrics, err);
            sodium_memzero(token, len);
        }
        free(token);
        if (rc != CF_OK) {
            char why[sizeof(err->msg)];
            memcpy(why, err->msg, sizeof(why));
            cf_err_set(err, rc, "--metrics-token-file %s: %s", config->metrics_token_file, why);
            goto fail;
        }
    }
    if (config->keep_port && *config->keep_port) {
        if (ss.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons(*config->keep_port);
        else
            ((struct sockaddr_in *)&ss)->sin_port = htons(*config->keep_port);
    }
    rc = writers_start(server, config->write_threads, err);
    if (rc == CF_OK)
        rc = listen_on(&ss, config->addr, &listen_fd, &server->port, err);
    if (rc != CF_OK)
        goto fail;
    if (config->keep_port)
        *config->keep_port = server->port;
    /* libmicrohttpd closes the socket it is given when it stops, and maybe when it fails to start:
     * it gets a duplicate, so that ours is closed here exactly once either way. */
    mhd_fd = fcntl(listen_fd, F_DUPFD_CLOEXEC, 0);
    if (mhd_fd < 0) {
        rc = cf_err_set(err, CF_EIO, "cannot listen on %s: %s", config->addr, strerror(errno));
        goto fail;
    }

    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, NULL}, /* first, or MHD logs by itself */
        {MHD_OPTION_LISTEN_SOCKET, mhd_fd, NULL},
        {MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)server->config.threads, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)server->config.timeout_s, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)server->config.max_connections, NULL},
        /* A slow client (one byte a second, slowloris) costs a connection slot, not a worker: the
         * workers are event loops. The per-address cap keeps one source from taking every slot. */
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)server->config.max_connections_per_ip, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, server},
        {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape, NULL},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_target, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, MHD_MEMORY_BYTES, NULL},
        {tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, server->tls_cert},
        {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, server->tls_key},
        {tls ? MHD_OPTION_HTTPS_PRIORITIES : MHD_OPTION_END, 0, (void *)TLS_PRIORITIES},
        {MHD_OPTION_END, 0, NULL},
    };
    server->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, server, MHD_OPTION_ARRAY,
                                      opts, MHD_OPTION_END);
    if (!server->daemon) {
        /* The socket is bound: what failed is libmicrohttpd's own set-up, logged just above (with
         * TLS, most often a certificate or key that GnuTLS refuses). */
        if (tls)
            rc = cf_err_set(err, CF_EINVAL,
                            "cannot serve on %s: the TLS certificate or key was refused (see the "
                            "log line above)",
                            config->addr);
        else
            rc = cf_err_set(err, CF_EIO, "cannot serve on %s (see the log line above)",
                            config->addr);
        goto fail;
    }
    close(listen_fd);
    *out = server;
    return CF_OK;
fail:
    writers_stop(server);
    if (listen_fd >= 0)
        close(listen_fd);
    free(server->tls_cert);
    if (server->tls_key) {
        sodium_memzero(server->tls_key, server->tls_key_len);
        free(server->tls_key);
    }
    free(server);
    return rc;
}

uint16_t cf_server_port(struct cf_server *server)
{
    return server->port;
}

void cf_server_stop(struct cf_server *server, int drain_ms)
{
    if (!server)
        return;
    /* Not MHD_quiesce_daemon: with an epoll thread pool it can race a worker that is adding or
     * removing the listening socket in its own epoll set, and libmicrohttpd 0.9.75 aborts the
     * process when that happens. Instead new requests are answered 503 while those in flight
     * finish. */
    atomic_store(&server->draining, true);
    for (int waited = 0; waited < drain_ms && atomic_load(&server->in_flight) > 0; waited += 10)
        usleep(10 * 1000);
    /* libmicrohttpd aborts when stopped with a connection suspended; the syncer answers every held
     * request (with a failure at worst) within a sync. */
    while (atomic_load(&server->suspended) > 0)
        usleep(1000);
    MHD_stop_daemon(server->daemon);
    writers_stop(server);
    cf_metrics_free(server->metrics);
    free(server->tls_cert);
    if (server->tls_key) {
        sodium_memzero(server->tls_key, server->tls_key_len);
        free(server->tls_key);
    }
    free(server);
}
