/* The contract between Coffer's HTTP server (server.c, router.c) and its resource handlers (one
 * file per resource in src/api/). A handler reads the request through the accessors below, calls
 * core, and either fills *out with the JSON body of a 200 response or returns an error code with
 * err filled; exactly one function (cf_api_render_error) turns errors into HTTP statuses and
 * bodies. Handlers never see libmicrohttpd. */
#ifndef CF_API_HTTP_H
#define CF_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"
#include "util/buf.h"
#include "util/cache.h"
#include "util/err.h"
#include "util/id.h"

#define CF_ROUTE_MAX_PARAMS 4

struct cf_req; /* one HTTP request, owned by the server */

/* A handler: on CF_OK, *out (a new reference) is the 200 body. Otherwise err says what went wrong.
 */
typedef enum cf_rc (*cf_handler_fn)(struct cf_req *req, json_t **out, struct cf_err *err);

struct cf_route {
    const char *method;  /* "GET", "POST", "PATCH", "DELETE" */
    const char *pattern; /* "/api/v3/secrets/raw/:name": ':' segments capture one path segment */
    cf_handler_fn handler;
    bool public;      /* true: no Authorization needed (status, logins) */
    const void *data; /* per-route constant for handlers shared by several routes */
    /* The route's commits return before their fsync and its answer waits, suspended, for the
     * shared sync that makes them durable (cf_store_sync_defer): for routes that reach nothing
     * outside Coffer between a commit and the answer (a provider, a webhook), since those would
     * act on a change that is not yet on disk. */
    bool defer_sync;
    /* A SCIM 2.0 route (api/scim.c): answers are application/scim+json and errors SCIM error
     * bodies (cf_api_render_scim_error). */
    bool scim;
    /* A success is not audited (health checks and metrics scrapes, polled every few seconds); a
     * refusal is. */
    bool quiet;
    /* Served while the server is sealed (the status and unseal routes); every other route answers
     * 503 "sealed" then. */
    bool while_sealed;
    /* Writer threads may run the route with other requests of such routes in one shared write
     * transaction (cf_store_batch_begin; docs/server.md "Shared write transactions"): for routes
     * with defer_sync whose handler waits for nothing outside the process (no provider, no JWKS,
     * no database of a dynamic secret) and for no other thread's write. */
    bool batch;
};

/* Route tables, one per resource file. Each ends with a {NULL} entry. */
extern const struct cf_route cf_routes_status[];
extern const struct cf_route cf_routes_metrics[];
extern const struct cf_route cf_routes_auth[];
extern const struct cf_route cf_routes_identities[];
extern const struct cf_route cf_routes_projects[];
extern const struct cf_route cf_routes_environments[];
extern const struct cf_route cf_routes_folders[];
extern const struct cf_route cf_routes_secrets[];
extern const struct cf_route cf_routes_imports[];
extern const struct cf_route cf_routes_tags[];
extern const struct cf_route cf_routes_expiry[];
extern const struct cf_route cf_routes_audit[];
extern const struct cf_route cf_routes_notifications[];
extern const struct cf_route cf_routes_inventory[];
extern const struct cf_route cf_routes_connections[];
extern const struct cf_route cf_routes_syncs[];
extern const struct cf_route cf_routes_rotations[];
extern const struct cf_route cf_routes_sso[];
extern const struct cf_route cf_routes_users[];
extern const struct cf_route cf_routes_mfa[];
extern const struct cf_route cf_routes_admin_token[];
extern const struct cf_route cf_routes_sys[];

/* The seal state for an answer (api/sys.c): {sealed, type: "file"|"shamir", and for "shamir" t,
 * n, progress, nonce}. New reference, or NULL when out of memory. */
json_t *cf_api_seal_json(struct cf_core *core);
extern const struct cf_route cf_routes_groups[];
extern const struct cf_route cf_routes_scim[];
extern const struct cf_route cf_routes_approvals[];
extern const struct cf_route cf_routes_access[];
extern const struct cf_route cf_routes_dynamic[];
extern const struct cf_route cf_routes_leaks[];
extern const struct cf_route cf_routes_openapi[];

/* The core context shared by every request (thread-safe). */
struct cf_core *cf_req_core(struct cf_req *req);

/* The authenticated caller (NULL on public routes). */
const struct cf_principal *cf_req_principal(struct cf_req *req);

/* The client's address as text ("127.0.0.1", "::1"), for trusted-IP checks and throttling. */
const char *cf_req_client_ip(struct cf_req *req);

/* The request id (also in X-Request-Id and the log line). */
const char *cf_req_id(struct cf_req *req);

/* The matched route's data pointer. */
const void *cf_req_route_data(struct cf_req *req);

/* A captured path parameter by name (":name" in the pattern), percent-decoded; NULL when absent. */
const char *cf_req_param(struct cf_req *req, const char *name);

/* A query parameter's value (percent-decoded), NULL when absent. CF_EINVAL when it is not valid
 * UTF-8. */
enum cf_rc cf_req_query(struct cf_req *req, const char *name, const char **value,
                        struct cf_err *err);

/* The request body parsed as a JSON object (borrowed; NULL and CF_OK when the body is empty and
 * !required). CF_EINVAL naming the problem for malformed JSON, invalid UTF-8 or a non-object. */
enum cf_rc cf_req_json(struct cf_req *req, bool required, json_t **body, struct cf_err *err);

/* Field and parameter helpers for handlers. Each reads an optional or required field of a JSON
 * object or a query parameter, checks its type, and on failure fills err naming the field
 * (CF_EVALIDATION for missing, CF_EINVAL for a wrong type). *value is borrowed from the
 * object/request. */
enum cf_rc cf_json_string(json_t *obj, const char *field, bool required, const char **value,
                          struct cf_err *err);
enum cf_rc cf_json_bool(json_t *obj, const char *field, bool *value, bool *present,
                        struct cf_err *err);
enum cf_rc cf_json_int(json_t *obj, const char *field, long long min, long long max,
                       long long *value, bool *present, struct cf_err *err);
/* Boolean query parameter: only "true" or "false" (else CF_EVALIDATION); def when absent. */
enum cf_rc cf_req_query_bool(struct cf_req *req, const char *name, bool def, bool *value,
                             struct cf_err *err);
/* First present of several alias fields (body first, then query): e.g. workspaceId/projectId. */
enum cf_rc cf_req_field(struct cf_req *req, json_t *body, const char *const *names, bool required,
                        const char **value, struct cf_err *err);

/* Formats an RFC 3339 time as a new JSON string (or JSON null for 0). */
json_t *cf_json_time(int64_t unix_ms);

/* Renders err as Coffer's error body {reqId, statusCode, error, message[, details]} into *body (a
 * new reference; NULL when out of memory) and returns the HTTP status. This is the only place that
 * maps enum cf_rc to HTTP. */
int cf_api_render_error(const char *reqid, const struct cf_err *err, json_t **body);

/* Renders err as a SCIM error body (RFC 7644 section 3.12: {schemas, status, scimType?, detail})
 * into *body and returns the HTTP status: cf_api_render_error's, except a duplicate (CF_EEXIST),
 * which SCIM clients expect as 409 with scimType "uniqueness". */
int cf_api_render_scim_error(const struct cf_err *err, json_t **body);

/* The status of the handler's successful answer instead of 200: 201 Created, or 204 No Content
 * (the handler then leaves *out NULL and nothing is sent). */
void cf_req_set_status(struct cf_req *req, int status);

/* The entity tag of the successful answer (a quoted string of at most 37 characters; a longer one
 * is dropped), sent as its ETag header, also on a 304. */
void cf_req_set_etag(struct cf_req *req, const char *etag);

/* A request header's value (borrowed), NULL when absent. */
const char *cf_req_header(struct cf_req *req, const char *name);

/* For hot paths that render JSON text themselves (util/jsonw.h): takes body's contents as the 200
 * response; the handler then returns CF_OK with *out left NULL. */
void cf_req_reply_raw(struct cf_req *req, struct cf_buf *body);
/* The same for a body held in a cache (util/cache.h): body (len bytes) is sent as it is, without a
 * copy, and lease is given back once it has been sent or the request ends unanswered. Takes the
 * lease. */
void cf_req_reply_leased(struct cf_req *req, const char *body, size_t len,
                         struct cf_cache_lease *lease);

/* Makes the answer a 302 Found with Location: url (copied) and the body {"location": url}, for
 * the browser steps of single sign-on; the handler then returns CF_OK with *out left NULL. url is
 * never a credential (it is logged nowhere, but browsers keep it in their history). CF_ENOMEM. */
enum cf_rc cf_req_redirect(struct cf_req *req, const char *url, struct cf_err *err);

/* Adds the members of extra (a JSON object; the request takes the reference) to the answer when
 * the handler fails, next to the error's own: for a refusal a client acts on by machine (a sign-in
 * that needs a second factor: mfaRequired and its ticket). */
void cf_req_error_extra(struct cf_req *req, json_t *extra);

/* The reason recorded in the request's audit record when it succeeds (a failure records its error
 * instead): why an approval was bypassed. Never a secret value. */
void cf_req_audit_reason(struct cf_req *req, const char *reason);

/* Audit notes (docs/audit.md): every authenticated request (and every login) is recorded
 * when it ends, with the actor, source, route, result and reason; a handler names what it did more
 * precisely. action e.g. "secrets.read"; project_id, env and path may be NULL. Never pass a secret
 * value. */
void cf_req_audit(struct cf_req *req, const char *action, const char *project_id, const char *env,
                  const char *path);
/* Adds a secret key name at the request's own place (the project, env and path of cf_req_audit) to
 * the record: every name in full, however many (a long list is recorded as several events of the
 * same request, see docs/audit.md). */
void cf_req_audit_key(struct cf_req *req, const char *key);
/* cf_req_audit_key for each of names (len bytes, comma-separated, as cf_req_audit_key would have
 * joined them: valid key names, none empty), added in one step. */
void cf_req_audit_keys(struct cf_req *req, const char *names, size_t len);
/* Notes that the value of key in env (slug) at folder path left the server from another place than
 * the request's own: a reference's target, an imported folder, a sub-folder of a recursive list.
 * When the request succeeds it is recorded as read there, each place in an event of its own with
 * the request's action, actor and request id (a key noted twice at one place is recorded once). */
void cf_req_audit_read(struct cf_req *req, const char *env, const char *path, const char *key);
/* cf_req_audit_read as a cf_ref_read_fn of core/secrets.h (ctx: the request). */
void cf_req_audit_ref_read(void *req, const char *env, const char *path, const char *key);
/* Sets the session cookie (core/users.h CF_SESSION_COOKIE) on the answer: value (a session's
 * "<id>.<secret>", copied and wiped after sending) for max_age_s seconds, or NULL to clear it.
 * HttpOnly, SameSite=Strict, Path=/, Secure unless the server speaks plain HTTP on loopback. */
void cf_req_set_session_cookie(struct cf_req *req, const char *value, int64_t max_age_s);
/* Sets the CSRF cookie (core/users.h CF_CSRF_COOKIE) as cf_req_set_session_cookie does, but
 * readable by the page's script (not HttpOnly): a session opened by a redirect (single sign-on)
 * hands its CSRF token to the page this way; the page sends it back in X-CSRF-Token. */
void cf_req_set_csrf_cookie(struct cf_req *req, const char *value, int64_t max_age_s);

/* The request's User-Agent header ("" when none). */
const char *cf_req_user_agent(struct cf_req *req);

/* For logins: who tried (the identity, or the client id when no identity is known). */
void cf_req_audit_actor(struct cf_req *req, const char *kind, const char *id, const char *name);

/* Personal access tokens handed out by a login (api/users.c; single sign-on's CLI sign-in in
 * api/sso.c uses them too). cf_api_pat_expires_in: body's expiresIn, seconds (a number) or a
 * duration ("90d", "12h"), required (CF_EVALIDATION / CF_EINVAL naming it).
 * cf_api_login_for_token: makes a token named name for ttl seconds for user and answers
 * {user, token, personalAccessToken}. */
enum cf_rc cf_api_pat_expires_in(json_t *body, int64_t *seconds, struct cf_err *err);
enum cf_rc cf_api_login_for_token(struct cf_req *req, const struct cf_user *user, const char *name,
                                  int64_t ttl, json_t **out, struct cf_err *err);

#endif
