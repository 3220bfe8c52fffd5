/* Every request body, path and query the HTTP API decodes, through the real router and handlers,
 * in-process (no sockets: the request is built as libmicrohttpd's callbacks build it) against a
 * real SQLite store in a temporary directory, as the admin. Input: a first line "METHOD
 * PATH[?QUERY]", the rest is the body. Properties: no crash, leak, hang or sanitizer report; a
 * handler that fails sets an error code and a message; one that succeeds answers a JSON object or
 * raw bytes.
 *
 * Logins that fetch from the network (JWT, Kubernetes) and notification runs (webhook deliveries)
 * are left out: they would reach hosts named by the input. Everything else is in, the audit routes
 * with an audit log of their own (verify parses the anchors it is given). */
#include <stdlib.h>
#include <unistd.h>

#include "api/internal.h"
#include "auth/jwks.h"
#include "auth/throttle.h"
#include "core/auditlog.h"
#include "crypto/keyring.h"
#include "store/store.h"
#include "util/log.h"
#include "util/str.h"
#include "fuzz.h"

static struct cf_core core;

static bool left_out(const struct cf_route *route)
{
    return strstr(route->pattern, "jwt-auth/login") ||
           strstr(route->pattern, "kubernetes-auth/login") ||
           strstr(route->pattern, "notifications/run");
}

/* A query part as libmicrohttpd hands it to the server: '+' is a space, then the server's own
 * unescape callback. */
static void unescape_query(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '+')
            *p = ' ';
    cf_http_unescape(s);
}

/* One request; returns the handler's result (or the router's refusal). */
static enum cf_rc request(const char *method, char *target, const char *body, size_t body_len)
{
    struct cf_req req;
    struct cf_err err;
    json_t *out = NULL;
    enum cf_rc rc = CF_ENOTFOUND;

    memset(&req, 0, sizeof(req));
    req.core = &core;
    cf_strlcpy(req.reqid, "fuzz", sizeof(req.reqid));
    cf_strlcpy(req.client_ip, "127.0.0.1", sizeof(req.client_ip));
    cf_strlcpy(req.method, method, sizeof(req.method));
    cf_buf_init(&req.body, 1 << 20);
    cf_err_clear(&err);
    char *query = strchr(target, '?');
    if (query) {
        *query++ = '\0';
        for (char *pair = strtok(query, "&"); pair && req.n_query < CF_REQ_INPROC_QUERY_MAX;
             pair = strtok(NULL, "&")) {
            char *eq = strchr(pair, '=');
            if (eq)
                *eq++ = '\0';
            unescape_query(pair);
            if (eq)
                unescape_query(eq);
            req.query_names[req.n_query] = pair;
            req.query_values[req.n_query++] = eq ? eq : "";
        }
    }
    cf_http_unescape(target);
    cf_strlcpy(req.path, target, sizeof(req.path));
    if (cf_buf_append(&req.body, body, body_len) != CF_OK)
        goto out;
    if (cf_router_match(&req, method, target) != CF_ROUTE_FOUND || left_out(req.route))
        goto out;
    for (size_t i = 0; i < req.n_params; i++) /* the server refuses these before any handler */
        if (!cf_utf8_valid(req.param_values[i], strlen(req.param_values[i])))
            goto out;
    req.principal.kind = CF_PRINCIPAL_ADMIN;
    req.authenticated = true;
    rc = req.route->handler(&req, &out, &err);
    if (rc != CF_OK)
        FUZZ_CHECK(err.msg[0] != '\0', "%s %s failed (%s) without a message", method, target,
                   cf_rc_str(rc));
    else
        FUZZ_CHECK((out && json_is_object(out)) || (!out && req.raw_reply.len > 0),
                   "%s %s answered neither JSON nor bytes", method, target);
    json_decref(out);
out:
    cf_req_release(&req);
    return rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char dir[] = "/tmp/coffer-fuzz-api-XXXXXX";
    char db[64];
    struct cf_err err;
    static const struct cf_throttle_policy policy = {1000000, 60, 60};
    cf_log_set_level(
        "error"); /* the store's and the logins' info lines, once per input, are noise */
    if (!mkdtemp(dir))
        abort();
    snprintf(db, sizeof(db), "%s/coffer.db", dir);
    struct cf_store_config config = {.dsn = db};
    if (cf_keyring_load(dir, NULL, true, &core.keyring, &err) != CF_OK ||
        cf_store_open(&config, &core.store, &err) != CF_OK) {
        fprintf(stderr, "fuzz_api: %s\n", err.msg);
        abort();
    }
    core.login_by_address_and_id = cf_throttle_new(&policy);
    core.login_by_address = cf_throttle_new(&policy);
    core.jwks = cf_jwks_cache_new();
    /* the audit routes parse their input too (verify's anchors): an audit log without a head file
     */
    static const struct cf_audit_log_config audit_config = {0};
    if (cf_audit_log_open(core.store, core.keyring, &audit_config, &core.audit, &err) != CF_OK) {
        fprintf(stderr, "fuzz_api: %s\n", err.msg);
        abort();
    }
    /* the store lives in the temporary directory until the process ends; its files go now */
    char path[96];
    static const char *const files[] = {"coffer.db", "coffer.db-wal", "coffer.db-shm", "root.key"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    /* a project the inputs can name by its slug, with a secret and a folder */
    static const char *const seed[][3] = {
        {"POST", "/api/v2/workspace", "{\"projectName\":\"fuzz\",\"slug\":\"fuzz\"}"},
        {"POST", "/api/v3/secrets/raw/SEEDED",
         "{\"workspaceId\":\"fuzz\",\"environment\":\"dev\","
         "\"secretValue\":\"x ${OTHER}\"}"},
        {"POST", "/api/v1/folders",
         "{\"workspaceId\":\"fuzz\",\"environment\":\"dev\",\"name\":\"a\"}"},
    };
    for (size_t i = 0; i < sizeof(seed) / sizeof(seed[0]); i++) {
        char target[128];
        cf_strlcpy(target, seed[i][1], sizeof(target));
        request(seed[i][0], target, seed[i][2], strlen(seed[i][2]));
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!core.store)
        LLVMFuzzerInitialize(NULL, NULL);
    const uint8_t *nl = memchr(data, '\n', size);
    size_t line_len = nl ? (size_t)(nl - data) : size;
    if (line_len > 2048 || memchr(data, '\0', line_len))
        return 0;
    char line[2049];
    memcpy(line, data, line_len);
    line[line_len] = '\0';
    char *space = strchr(line, ' ');
    if (!space || space - line > 7)
        return 0;
    *space = '\0';
    const char *body = nl ? (const char *)nl + 1 : "";
    size_t body_len = nl ? size - line_len - 1 : 0;
    request(line, space + 1, body, body_len);
    return 0;
}
