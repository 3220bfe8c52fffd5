/* Definitions shared by the files of the HTTP layer (server.c, request.c, router.c, authn.c) and
 * nothing else: the request object, the router and authentication. Handlers use http.h only. */
#ifndef CF_API_INTERNAL_H
#define CF_API_INTERNAL_H

#include <microhttpd.h>

#include "api/http.h"
#include "api/server.h"
#include "net/http.h"
#include "store/store.h"
#include "util/buf.h"

#define CF_REQ_INPROC_QUERY_MAX 8

enum cf_route_match { CF_ROUTE_FOUND, CF_ROUTE_NO_PATH, CF_ROUTE_NO_METHOD };

struct cf_req {
    struct cf_server *server;
    struct cf_core *core;
    struct MHD_Connection *conn;
    char reqid[CF_REQID_LEN];
    char client_ip[CF_NET_ADDRESS_MAX];
    char method[8];
    char path[512]; /* for the log line; truncated */
    int64_t start_us;
    struct cf_buf body;      /* may hold secret values: released with a wipe */
    struct cf_buf raw_reply; /* a handler's pre-rendered 200 body (cf_req_reply_raw) */
    /* or a cached one (cf_req_reply_leased): lent by the cache until the answer is sent */
    const char *leased_reply;
    size_t leased_len;
    struct cf_cache_lease *lease;
    char *location;      /* a handler's redirect (cf_req_redirect): answered 302; or NULL */
    json_t *error_extra; /* members added to an error answer (cf_req_error_extra); or NULL */
    char etag[40];       /* the answer's ETag header (cf_req_set_etag); "" for none */
    bool body_too_large;
    size_t discarded; /* bytes of an oversized body read and dropped */
    json_t *json;
    bool json_parsed;
    const struct cf_route *route;
    size_t route_index; /* route's place in the tables (cf_router_at) */
    size_t n_params;
    const char *param_names[CF_ROUTE_MAX_PARAMS];
    char *param_values[CF_ROUTE_MAX_PARAMS];
    struct cf_principal principal;
    bool authenticated;
    struct cf_audit_event *audit; /* what handlers noted for the audit record; NULL: nothing */
    /* the access grant that allowed an action of this request (principal.grant_used points here;
     * core/access.h), named in the record; "" when none did */
    char grant_used[CF_UUID_LEN];
    struct cf_req_reads *reads; /* key names noted per place (request.c); NULL: none */
    int status;
    int reply_status;         /* a successful answer's status (cf_req_set_status); 0: 200 */
    int retry_after_s;        /* sent as Retry-After when > 0 */
    const char *content_type; /* static text: the answer's Content-Type instead of JSON; or NULL */
    bool responded;
    /* Past routing: the answer may depend on the store, so it waits for the commits it may have
     * seen to be on disk (server.c, cf_store_sync_ticket). */
    bool dispatched;
    /* The answer, ready but held while the connection is suspended until sync_wait is answered;
     * sync_rc is set by the store's syncer thread before it resumes the connection. */
    struct MHD_Response *held;
    struct cf_store_sync_wait sync_wait;
    enum cf_rc sync_rc;
    /* A request run by a writer thread (server.c): its URL (heap) and its place in their queue;
     * on_writer while a writer thread runs it (its answer is then held, never queued from there),
     * close_now when it ended without an answer. */
    char *queued_url;
    struct cf_req *queued_next;
    bool on_writer;
    bool close_now;
    /* Its route may share a write transaction with others (route->batch); in_batch while it runs
     * in one, its audit record then waiting for the commit (audit_later: the handler's outcome in
     * audit_rc and, when audit_has_outcome, audit_outcome). batch_err: that commit failed, so
     * nothing the request changed was stored, and its answer is this error instead. */
    bool batchable;
    /* Routed when queued for a writer thread (route_match: the outcome), so that dispatch does
     * not route it again. */
    bool routed;
    enum cf_route_match route_match;
    bool in_batch;
    bool audit_later;
    bool audit_has_outcome;
    enum cf_rc audit_rc;
    struct cf_err audit_outcome;
    struct cf_err batch_err;
    /* A Set-Cookie header's value for the answer (heap, wiped on release: it may hold a session
     * secret); NULL: none. */
    char *set_cookie;      /* the session cookie to set, if any (wiped) */
    char *set_csrf_cookie; /* the CSRF cookie to set, if any (wiped) */
    /* The answer closes the connection: where the request ends is in doubt. */
    bool close_connection;
    /* A request built in-process has no connection (conn NULL: the API fuzzer, fuzz/fuzz_api.c):
     * its query parameters are these, borrowed from whoever built it. */
    size_t n_query;
    const char *query_names[CF_REQ_INPROC_QUERY_MAX];
    const char *query_values[CF_REQ_INPROC_QUERY_MAX];
};

/* Finds the route for method + path and captures its parameters into req (req->route and its
 * place in the table, req->route_index). */
enum cf_route_match cf_router_match(struct cf_req *req, const char *method, const char *path);

/* How many routes the tables hold, and the route at index (0 .. count-1; NULL past the end): the
 * index req->route_index gives, stable for the life of the binary. */
size_t cf_router_count(void);
const struct cf_route *cf_router_at(size_t index);

/* The resource of the route at index ("secrets", "identities": the table it is in, api/router.c),
 * static text; NULL past the end. */
const char *cf_router_resource(size_t index);

/* Resolves an Authorization header value (may be NULL) to a principal: the admin token (checked
 * against the stored hash, core->admin), a machine identity's access token (checked against its
 * stored record, counting a use) or a user's personal access token; without an Authorization
 * header, the session cookie's value (may be NULL), whose CSRF token (csrf, the X-CSRF-Token
 * header, may be NULL) must come with an unsafe method (core/users.h). CF_EUNAUTH naming the
 * cause, CF_EFORBIDDEN for a missing or wrong CSRF token. */
enum cf_rc cf_authn(struct cf_core *core, const char *authorization, const char *cookie,
                    bool unsafe, const char *csrf, const char *client_ip, struct cf_principal *out,
                    struct cf_err *err);

/* The server's metrics (api/metrics.h); NULL when GET /metrics is off. */
struct cf_metrics *cf_server_metrics(const struct cf_server *server);

/* Requests being answered now. */
int cf_server_in_flight(struct cf_server *server);

/* Whether session cookies are marked Secure: the server speaks TLS, or plain HTTP only behind a
 * TLS-terminating proxy (--allow-plain-http); not for plain HTTP on loopback. */
bool cf_server_cookies_secure(const struct cf_server *server);

/* Decodes %HH escapes of a request's path or query in place (libmicrohttpd's unescape callback),
 * except %00: a NUL would silently cut a name short ("AB%00C" read as "AB"), so it stays as the
 * literal text "%00", which no name validation accepts. Returns the new length. */
size_t cf_http_unescape(char *s);

/* Records the request's audit event e (complete but for its keys) in log: e with the key names
 * noted at its own place, then, when e->result is "ok", one copy of e per further place values
 * were read at (cf_req_audit_read), and a further copy whenever a place's names do not fit one
 * event. cf_audit_record's result (CF_EUNAVAIL in fail-closed mode when one cannot be stored). */
enum cf_rc cf_req_audit_record(struct cf_req *req, struct cf_audit_log *log,
                               struct cf_audit_event *e, struct cf_err *err);

/* Releases what a request holds (wiping its body); the struct itself is freed by the caller. */
void cf_req_release(struct cf_req *req);
/* Drops the body a handler gave for the answer (cf_req_reply_raw or _leased), if any. */
void cf_req_reply_drop(struct cf_req *req);

#endif
