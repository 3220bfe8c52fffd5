/* Request accessors and field helpers for handlers, and the rendering of errors (see http.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api/internal.h"
#include "core/auditlog.h"
#include "core/users.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

struct cf_core *cf_req_core(struct cf_req *req)
{
    return req->core;
}

const struct cf_principal *cf_req_principal(struct cf_req *req)
{
    return req->authenticated ? &req->principal : NULL;
}

const char *cf_req_client_ip(struct cf_req *req)
{
    return req->client_ip;
}

const char *cf_req_id(struct cf_req *req)
{
    return req->reqid;
}

const void *cf_req_route_data(struct cf_req *req)
{
    return req->route ? req->route->data : NULL;
}

const char *cf_req_param(struct cf_req *req, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < req->n_params; i++) {
        /* param_names point into the route pattern and end at the next '/' or the pattern's end. */
        const char *p = req->param_names[i];
        if (strncmp(p, name, len) == 0 && (p[len] == '\0' || p[len] == '/'))
            return req->param_values[i];
    }
    return NULL;
}

/* Drops any body a handler gave for the answer. */
void cf_req_reply_drop(struct cf_req *req)
{
    cf_buf_release_wipe(&req->raw_reply);
    cf_cache_lease_release(req->lease);
    req->lease = NULL;
    req->leased_reply = NULL;
    req->leased_len = 0;
}

void cf_req_reply_raw(struct cf_req *req, struct cf_buf *body)
{
    cf_req_reply_drop(req);
    req->raw_reply = *body;
    cf_buf_init(body, 0);
}

void cf_req_reply_leased(struct cf_req *req, const char *body, size_t len,
                         struct cf_cache_lease *lease)
{
    cf_req_reply_drop(req);
    req->leased_reply = body;
    req->leased_len = len;
    req->lease = lease;
}

enum cf_rc cf_req_redirect(struct cf_req *req, const char *url, struct cf_err *err)
{
    char *copy = strdup(url);
    if (!copy)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    free(req->location);
    req->location = copy;
    return CF_OK;
}

void cf_req_error_extra(struct cf_req *req, json_t *extra)
{
    json_decref(req->error_extra);
    req->error_extra = extra;
}

/* The request's audit event, made on first use; NULL when out of memory (the record then carries
 * only what the server knows). */
static struct cf_audit_event *audit_of(struct cf_req *req)
{
    if (!req->audit)
        req->audit = calloc(1, sizeof(*req->audit));
    return req->audit;
}

void cf_req_audit_reason(struct cf_req *req, const char *reason)
{
    struct cf_audit_event *e = audit_of(req);
    if (e)
        cf_strlcpy(e->reason, reason, sizeof(e->reason));
}

void cf_req_audit(struct cf_req *req, const char *action, const char *project_id, const char *env,
                  const char *path)
{
    struct cf_audit_event *e = audit_of(req);
    if (!e)
        return;
    cf_strlcpy(e->action, action, sizeof(e->action));
    cf_strlcpy(e->project_id, project_id ? project_id : "", sizeof(e->project_id));
    cf_strlcpy(e->environment, env ? env : "", sizeof(e->environment));
    cf_strlcpy(e->path, path ? path : "", sizeof(e->path));
}

/* ---- the keys of the record, per place ---- */

/* A place values were read at, with the key names noted there. */
struct read_place {
    char env[CF_SLUG_MAX + 1];  /* "" for the request's own place */
    char path[CF_PATH_MAX + 1]; /* "" for the request's own place */
    struct cf_buf keys;         /* comma-separated (key names have no comma) */
};

struct cf_req_reads {
    struct read_place *places; /* in the order first noted */
    size_t n, cap;
};

static void reads_free(struct cf_req_reads *reads)
{
    if (!reads)
        return;
    for (size_t i = 0; i < reads->n; i++)
        cf_buf_release(&reads->places[i].keys);
    free(reads->places);
    free(reads);
}

/* The place env/path ("" and "" for the request's own) of req's notes, made on first use; NULL when
 * out of memory (the name is then left out of the record). */
static struct read_place *place_of(struct cf_req *req, const char *env, const char *path)
{
    struct cf_req_reads *reads = req->reads;
    if (!reads && !(reads = req->reads = calloc(1, sizeof(*reads))))
        return NULL;
    /* Newest first: notes come in runs per place (a folder's secrets, an import's). */
    for (size_t i = reads->n; i-- > 0;) {
        struct read_place *p = &reads->places[i];
        if (strcmp(p->path, path) == 0 && strcmp(p->env, env) == 0)
            return p;
    }
    if (reads->n == reads->cap) {
        size_t cap = reads->cap ? reads->cap * 2 : 4;
        struct read_place *grown = realloc(reads->places, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        reads->places = grown;
        reads->cap = cap;
    }
    struct read_place *p = &reads->places[reads->n++];
    cf_strlcpy(p->env, env, sizeof(p->env));
    cf_strlcpy(p->path, path, sizeof(p->path));
    cf_buf_init(&p->keys, 0);
    return p;
}

/* Appends names (n bytes: one name, or several comma-separated) to p's names. */
static void add_names(struct read_place *p, const char *names, size_t n)
{
    if (p->keys.len)
        cf_buf_append(&p->keys, ",", 1);
    cf_buf_append(&p->keys, names, n);
}

/* Appends key to p's names. A name longer than any valid key (a request naming a bad one) is cut,
 * so that every name fits one event. */
static void add_key(struct read_place *p, const char *key)
{
    size_t n = strlen(key);
    bool cut = n > CF_KEY_MAX;
    if (n == 0)
        return; /* names nothing; and no name in the list is empty (emit_keys copies it whole) */
    add_names(p, key, cut ? CF_KEY_MAX : n);
    if (cut)
        cf_buf_append(&p->keys, "...", 3);
}

/* True when p's names hold key. */
static bool has_key(const struct read_place *p, const char *key)
{
    size_t n = strlen(key);
    struct cf_list_iter it;
    struct cf_str name;
    cf_list_init(&it, p->keys.data);
    while (cf_list_next_raw(&it, &name))
        if (name.n == n && memcmp(name.p, key, n) == 0)
            return true;
    return false;
}

void cf_req_audit_key(struct cf_req *req, const char *key)
{
    struct read_place *p = place_of(req, "", "");
    if (p)
        add_key(p, key);
}

void cf_req_audit_keys(struct cf_req *req, const char *names, size_t len)
{
    struct read_place *p = place_of(req, "", "");
    if (p && len > 0)
        add_names(p, names, len);
}

void cf_req_audit_read(struct cf_req *req, const char *env, const char *path, const char *key)
{
    struct read_place *p = place_of(req, env ? env : "", path ? path : "");
    if (p && !has_key(p, key))
        add_key(p, key);
}

void cf_req_audit_ref_read(void *req, const char *env, const char *path, const char *key)
{
    cf_req_audit_read(req, env, path, key);
}

/* Fills events with names and records each one that is full: the request's own event first, then
 * copies of it for further names and places. */
struct emitter {
    struct cf_audit_log *log;
    struct cf_audit_event *e;    /* the request's event */
    struct cf_audit_event *more; /* the copy for further events, made on first need */
    struct cf_audit_event *cur;  /* being filled; NULL: the next name starts a new event */
    size_t used;                 /* bytes of cur->keys */
    bool e_recorded;
    bool lost; /* out of memory: names left out */
};

static enum cf_rc emit_flush(struct emitter *em, struct cf_err *err)
{
    enum cf_rc rc = cf_audit_record(em->log, em->cur, err);
    em->e_recorded = em->e_recorded || em->cur == em->e;
    em->cur = NULL;
    return rc;
}

/* The event being filled, or a new copy of e at env/path once e is recorded; NULL when out of
 * memory. */
static struct cf_audit_event *emit_event(struct emitter *em, const char *env, const char *path)
{
    if (em->cur)
        return em->cur;
    if (!em->more && !(em->more = malloc(sizeof(*em->more)))) {
        em->lost = true;
        return NULL;
    }
    *em->more = *em->e;
    cf_strlcpy(em->more->environment, env, sizeof(em->more->environment));
    cf_strlcpy(em->more->path, path, sizeof(em->more->path));
    em->more->keys[0] = '\0';
    em->used = 0;
    return em->cur = em->more;
}

/* Appends names (n bytes, one or several comma-separated) to cur's, which the caller made sure fit.
 */
static void emit_put(struct emitter *em, struct cf_audit_event *cur, const char *names, size_t n)
{
    if (em->used)
        cur->keys[em->used++] = ',';
    memcpy(cur->keys + em->used, names, n);
    em->used += n;
    cur->keys[em->used] = '\0';
}

/* Adds the names of keys (comma-separated) at env/path, recording each event that fills up. */
static enum cf_rc emit_keys(struct emitter *em, const struct cf_buf *keys, const char *env,
                            const char *path, struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    struct cf_list_iter it;
    struct cf_str name;
    /* The whole list at once when it fits the event being filled (most reads): it is already
     * comma-separated, with no empty name. */
    struct cf_audit_event *cur = keys->len ? emit_event(em, env, path) : NULL;
    if (cur && (em->used ? em->used + 1 : 0) + keys->len < sizeof(cur->keys)) {
        emit_put(em, cur, keys->data, keys->len);
        return CF_OK;
    }
    cf_list_init(&it, keys->data);
    while (rc == CF_OK && cf_list_next_raw(&it, &name)) {
        cur = emit_event(em, env, path);
        if (cur && em->used && em->used + 1 + name.n >= sizeof(cur->keys)) {
            rc = emit_flush(em, err);
            cur = rc == CF_OK ? emit_event(em, env, path) : NULL;
        }
        if (!cur)
            break;
        emit_put(em, cur, name.p, name.n);
    }
    return rc;
}

static bool own_place(const struct read_place *p, const struct cf_audit_event *e)
{
    return !p->env[0] || (strcmp(p->env, e->environment) == 0 && strcmp(p->path, e->path) == 0);
}

enum cf_rc cf_req_audit_record(struct cf_req *req, struct cf_audit_log *log,
                               struct cf_audit_event *e, struct cf_err *err)
{
    struct cf_req_reads *reads = req->reads;
    e->keys[0] = '\0';
    if (!reads || reads->n == 0)
        return cf_audit_record(log, e, err);
    struct emitter em = {.log = log, .e = e, .cur = e};
    enum cf_rc rc = CF_OK;
    /* The request's own place: the names noted for it and those noted at the same env and path. */
    for (size_t i = 0; rc == CF_OK && i < reads->n; i++)
        if (own_place(&reads->places[i], e))
            rc = emit_keys(&em, &reads->places[i].keys, e->environment, e->path, err);
    if (rc == CF_OK && !em.e_recorded) {
        em.cur = e; /* e itself, also without names */
        rc = emit_flush(&em, err);
    } else if (rc == CF_OK && em.cur) {
        rc = emit_flush(&em, err);
    }
    /* Every other place a successful request read at, in events of its own. */
    for (size_t i = 0; strcmp(e->result, "ok") == 0 && rc == CF_OK && i < reads->n; i++) {
        const struct read_place *p = &reads->places[i];
        if (own_place(p, e))
            continue;
        rc = emit_keys(&em, &p->keys, p->env, p->path, err);
        if (rc == CF_OK && em.cur)
            rc = emit_flush(&em, err);
    }
    if (rc == CF_OK && em.lost && cf_audit_log_fail_closed(log))
        rc = cf_err_set(err, CF_EUNAVAIL,
                        "the audit log is out of memory: the request was "
                        "refused rather than served unaudited");
    free(em.more);
    return rc;
}

static void drop_cookie(char **slot)
{
    if (*slot) {
        sodium_memzero(*slot, strlen(*slot));
        free(*slot);
        *slot = NULL;
    }
}

#define COOKIE_FMT "%s=%s; Path=/; Max-Age=%lld%s; SameSite=Strict%s"

/* Puts "name=value; attributes" in *slot; value NULL clears the cookie (Max-Age=0). */
static void set_cookie(struct cf_req *req, char **slot, const char *name, const char *value,
                       int64_t max_age_s, bool http_only)
{
    /* Secure unless this server speaks plain HTTP on loopback (a browser would not send a Secure
     * cookie there); behind a TLS-terminating proxy (--allow-plain-http) it is Secure too. */
    bool secure = req->server && cf_server_cookies_secure(req->server);
    char *text = NULL;
    int n;

    drop_cookie(slot);
    n = snprintf(NULL, 0, COOKIE_FMT, name, value ? value : "", (long long)(value ? max_age_s : 0),
                 http_only ? "; HttpOnly" : "", secure ? "; Secure" : "");
    if (n < 0 || !(text = malloc((size_t)n + 1)))
        return; /* no cookie: the client signs in again */
    snprintf(text, (size_t)n + 1, COOKIE_FMT, name, value ? value : "",
             (long long)(value ? max_age_s : 0), http_only ? "; HttpOnly" : "",
             secure ? "; Secure" : "");
    *slot = text;
}

void cf_req_set_session_cookie(struct cf_req *req, const char *value, int64_t max_age_s)
{
    set_cookie(req, &req->set_cookie, CF_SESSION_COOKIE, value, max_age_s, true);
}

void cf_req_set_csrf_cookie(struct cf_req *req, const char *value, int64_t max_age_s)
{
    set_cookie(req, &req->set_csrf_cookie, CF_CSRF_COOKIE, value, max_age_s, false);
}

const char *cf_req_user_agent(struct cf_req *req)
{
    const char *agent = req->conn ? MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                                MHD_HTTP_HEADER_USER_AGENT)
                                  : NULL;
    return agent ? agent : "";
}

void cf_req_audit_actor(struct cf_req *req, const char *kind, const char *id, const char *name)
{
    struct cf_audit_event *e = audit_of(req);
    if (!e)
        return;
    cf_strlcpy(e->actor_kind, kind, sizeof(e->actor_kind));
    cf_strlcpy(e->actor_id, id ? id : "", sizeof(e->actor_id));
    cf_strlcpy(e->actor_name, name ? name : "", sizeof(e->actor_name));
}

size_t cf_http_unescape(char *s)
{
    char *out = s;
    for (const char *in = s; *in;) {
        int hi, lo;
        if (in[0] == '%' && (hi = cf_hex_digit(in[1])) >= 0 && (lo = cf_hex_digit(in[2])) >= 0 &&
            (hi | lo) != 0) {
            *out++ = (char)(hi * 16 + lo);
            in += 3;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
    return (size_t)(out - s);
}

void cf_req_release(struct cf_req *req)
{
    free(req->audit);
    req->audit = NULL;
    reads_free(req->reads);
    req->reads = NULL;
    cf_buf_release_wipe(&req->body);
    cf_req_reply_drop(req);
    free(req->location);
    req->location = NULL;
    json_decref(req->error_extra);
    req->error_extra = NULL;
    drop_cookie(&req->set_cookie);
    drop_cookie(&req->set_csrf_cookie);
    json_decref(req->json);
    req->json = NULL;
    for (size_t i = 0; i < req->n_params; i++)
        free(req->param_values[i]);
    req->n_params = 0;
}

enum cf_rc cf_req_query(struct cf_req *req, const char *name, const char **value,
                        struct cf_err *err)
{
    const char *v = NULL;
    if (req->conn) {
        v = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
    } else { /* built in-process: the first parameter of that name, as libmicrohttpd answers */
        for (size_t i = 0; i < req->n_query && !v; i++)
            if (strcmp(req->query_names[i], name) == 0)
                v = req->query_values[i];
    }
    *value = NULL;
    if (v && !cf_utf8_valid(v, strlen(v)))
        return cf_err_field(err, CF_EINVAL, name, "query parameter '%s' is not valid UTF-8", name);
    *value = v;
    return CF_OK;
}

enum cf_rc cf_req_query_bool(struct cf_req *req, const char *name, bool def, bool *value,
                             struct cf_err *err)
{
    const char *v = NULL;
    enum cf_rc rc = cf_req_query(req, name, &v, err);
    if (rc != CF_OK)
        return rc;
    if (!v || !*v) {
        *value = def;
        return CF_OK;
    }
    if (strcmp(v, "true") == 0) {
        *value = true;
        return CF_OK;
    }
    if (strcmp(v, "false") == 0) {
        *value = false;
        return CF_OK;
    }
    return cf_err_field(err, CF_EVALIDATION, name, "%s: must be 'true' or 'false'", name);
}

enum cf_rc cf_req_json(struct cf_req *req, bool required, json_t **body, struct cf_err *err)
{
    *body = NULL;
    if (!req->json_parsed) {
        req->json_parsed = true;
        if (req->body.len == 0) {
            if (required)
                return cf_err_set(err, CF_EINVAL, "the request body must be a JSON object");
            return CF_OK;
        }
        if (!cf_utf8_valid(req->body.data, req->body.len))
            return cf_err_set(err, CF_EINVAL, "the request body is not valid UTF-8 (or holds NUL)");
        json_error_t jerr;
        req->json = json_loadb(req->body.data, req->body.len,
                               JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
        if (!req->json) {
            /* jansson's own text may quote the body, which may hold secret values: never echo it.
             */
            if (json_error_code(&jerr) == json_error_duplicate_key)
                return cf_err_set(err, CF_EINVAL,
                                  "malformed JSON body: duplicate field at line %d, column %d",
                                  jerr.line, jerr.column);
            return cf_err_set(err, CF_EINVAL, "malformed JSON body at line %d, column %d",
                              jerr.line, jerr.column);
        }
        if (!json_is_object(req->json)) {
            json_decref(req->json);
            req->json = NULL;
            return cf_err_set(err, CF_EINVAL, "the request body must be a JSON object");
        }
    } else if (!req->json && req->body.len > 0) {
        return cf_err_set(err, CF_EINVAL, "malformed JSON body");
    }
    if (!req->json && required)
        return cf_err_set(err, CF_EINVAL, "the request body must be a JSON object");
    *body = req->json;
    return CF_OK;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

enum cf_rc cf_json_string(json_t *obj, const char *field, bool required, const char **value,
                          struct cf_err *err)
{
    json_t *v = obj ? json_object_get(obj, field) : NULL;
    *value = NULL;
    if (!v || json_is_null(v)) {
        if (required)
            return cf_err_field(err, CF_EVALIDATION, field, "%s: required", field);
        return CF_OK;
    }
    if (!json_is_string(v))
        return cf_err_field(err, CF_EINVAL, field, "%s: expected a string, got %s", field,
                            type_name(v));
    if (strlen(json_string_value(v)) != json_string_length(v))
        return cf_err_field(err, CF_EINVAL, field, "%s: must not contain NUL characters", field);
    *value = json_string_value(v);
    return CF_OK;
}

enum cf_rc cf_json_bool(json_t *obj, const char *field, bool *value, bool *present,
                        struct cf_err *err)
{
    json_t *v = obj ? json_object_get(obj, field) : NULL;
    *present = false;
    if (!v || json_is_null(v))
        return CF_OK;
    if (!json_is_boolean(v))
        return cf_err_field(err, CF_EINVAL, field, "%s: expected a boolean, got %s", field,
                            type_name(v));
    *value = json_is_true(v);
    *present = true;
    return CF_OK;
}

enum cf_rc cf_json_int(json_t *obj, const char *field, long long min, long long max,
                       long long *value, bool *present, struct cf_err *err)
{
    json_t *v = obj ? json_object_get(obj, field) : NULL;
    *present = false;
    if (!v || json_is_null(v))
        return CF_OK;
    if (!json_is_integer(v))
        return cf_err_field(err, CF_EINVAL, field, "%s: expected an integer, got %s", field,
                            type_name(v));
    long long n = json_integer_value(v);
    if (n < min || n > max)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: must be between %lld and %lld", field,
                            min, max);
    *value = n;
    *present = true;
    return CF_OK;
}

enum cf_rc cf_req_field(struct cf_req *req, json_t *body, const char *const *names, bool required,
                        const char **value, struct cf_err *err)
{
    enum cf_rc rc;
    *value = NULL;
    for (size_t i = 0; names[i]; i++) {
        rc = cf_json_string(body, names[i], false, value, err);
        if (rc != CF_OK || *value)
            return rc;
    }
    for (size_t i = 0; names[i]; i++) {
        rc = cf_req_query(req, names[i], value, err);
        if (rc != CF_OK || *value)
            return rc;
    }
    if (required)
        return cf_err_field(err, CF_EVALIDATION, names[0], "%s: required", names[0]);
    return CF_OK;
}

json_t *cf_json_time(int64_t unix_ms)
{
    char text[CF_TIME_RFC3339_LEN];
    if (unix_ms == 0)
        return json_null();
    return json_string(cf_time_format(unix_ms, text));
}

/* message, or its copy in safe with every byte above 0x7f made '?' when it is not valid UTF-8: a
 * message may quote request input (a key, a path), and bad bytes there must not cost the answer. */
static const char *utf8_safe(const char *message, char safe[CF_ERR_MSG_MAX])
{
    if (cf_utf8_valid(message, strlen(message)))
        return message;
    cf_strlcpy(safe, message, CF_ERR_MSG_MAX);
    for (char *p = safe; *p; p++) {
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    }
    return safe;
}

int cf_api_render_error(const char *reqid, const struct cf_err *err, json_t **body)
{
    int status;
    const char *name;
    const char *message = err->msg[0] ? err->msg : cf_rc_str(err->rc);

    switch (err->rc) {
    case CF_EINVAL:
        status = 400;
        name = "BadRequest";
        break;
    case CF_EEXIST:
        status = 400;
        name = "BadRequest";
        break;
    case CF_EVALIDATION:
        status = 422;
        name = "ValidationFailure";
        break;
    case CF_EUNAUTH:
        status = 401;
        name = "Unauthorized";
        break;
    case CF_EFORBIDDEN:
        status = 403;
        name = "PermissionDenied";
        break;
    case CF_ENOTFOUND:
        status = 404;
        name = "NotFound";
        break;
    case CF_EMETHOD:
        status = 405;
        name = "MethodNotAllowed";
        break;
    case CF_ECONFLICT:
        status = 409;
        name = "Conflict";
        break;
    case CF_ETOOLARGE:
        status = 413;
        name = "PayloadTooLarge";
        break;
    case CF_ETARGET:
        status = 414;
        name = "URITooLong";
        break;
    case CF_EHEADERS:
        status = 431;
        name = "RequestHeaderFieldsTooLarge";
        break;
    case CF_EVERSION:
        status = 505;
        name = "HTTPVersionNotSupported";
        break;
    case CF_ERATELIMIT:
        status = 429;
        name = "TooManyRequests";
        break;
    case CF_EUNAVAIL:
        status = 503;
        name = "ServiceUnavailable";
        break;
    case CF_ESEALED:
        status = 503;
        name = "Sealed";
        break;
    case CF_EUNSUPPORTED:
        status = 501;
        name = "NotImplemented";
        break;
    case CF_OK:
    case CF_ECRYPTO:
    case CF_ESTORE:
    case CF_ENOMEM:
    case CF_EIO:
    case CF_EINTERNAL:
    default:
        status = 500;
        name = "InternalServerError";
        break;
    }
    char safe[CF_ERR_MSG_MAX];
    message = utf8_safe(message, safe);
    json_t *j = json_pack("{s:s, s:i, s:s, s:s}", "reqId", reqid, "statusCode", status, "error",
                          name, "message", message);
    if (j && err->rc == CF_EVALIDATION) {
        json_t *detail = json_pack("{s:s, s:s}", "field", err->field, "message", message);
        json_object_set_new(j, "details", json_pack("[o]", detail));
    }
    *body = j;
    return status;
}

int cf_api_render_scim_error(const struct cf_err *err, json_t **body)
{
    json_t *ignored = NULL;
    int status = cf_api_render_error("", err, &ignored);
    const char *scim_type = NULL;
    const char *detail = err->msg[0] ? err->msg : cf_rc_str(err->rc);
    char status_text[8];

    json_decref(ignored);
    if (err->rc == CF_EEXIST) {
        status = 409;
        scim_type = "uniqueness";
    } else if (err->rc == CF_EVALIDATION || err->rc == CF_EINVAL) {
        status = 400;
        /* the field names the SCIM problem where the handler knew it (scim.c) */
        scim_type = strcmp(err->field, "filter") == 0 ? "invalidFilter"
                    : strcmp(err->field, "path") == 0 ? "invalidPath"
                    : strcmp(err->field, "op") == 0   ? "invalidSyntax"
                                                      : "invalidValue";
    }
    char safe[CF_ERR_MSG_MAX];
    detail = utf8_safe(detail, safe);
    snprintf(status_text, sizeof(status_text), "%d", status);
    json_t *j =
        json_pack("{s:[s], s:s, s:s}", "schemas", "urn:ietf:params:scim:api:messages:2.0:Error",
                  "status", status_text, "detail", detail);
    if (j && scim_type)
        json_object_set_new(j, "scimType", json_string(scim_type));
    *body = j;
    return status;
}

void cf_req_set_status(struct cf_req *req, int status)
{
    req->reply_status = status;
}

void cf_req_set_etag(struct cf_req *req, const char *etag)
{
    size_t len = strlen(etag);
    if (len < sizeof(req->etag))
        memcpy(req->etag, etag, len + 1);
}

const char *cf_req_header(struct cf_req *req, const char *name)
{
    return req->conn ? MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name) : NULL;
}
