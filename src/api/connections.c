/* App connections' API (docs/api.md "App connections", docs/syncs.md "Connections"), in
 * Infisical's shapes, for the admin only:
 *
 *   POST   /api/v1/app-connections/{app}                    {method, name, description?,
 *                                                            credentials, expiresAt?}
 *   GET    /api/v1/app-connections                          -> {appConnections: [...]}
 *   GET    /api/v1/app-connections/{app}                    -> {appConnections: [...]}
 *   GET    /api/v1/app-connections/{app}/{connectionId}     -> {appConnection}
 *   PATCH  /api/v1/app-connections/{app}/{connectionId}     {name?, description?, method?,
 *                                                            credentials?, expiresAt?}
 *   DELETE /api/v1/app-connections/{app}/{connectionId}     -> {appConnection}
 *   POST   /api/v1/app-connections/{app}/{connectionId}/check -> {appConnection, check}
 *
 * The credentials go in and never come out: an appConnection carries only their non-secret
 * fields. */
#include <stdio.h>
#include <string.h>

#include "api/http.h"
#include "api/render.h"
#include "core/connections.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

static json_t *time_or_null(int64_t unix_ms)
{
    return unix_ms > 0 ? cf_json_time(unix_ms) : json_null();
}

/* appConnection: {id, name, app, method, description, credentials (the non-secret fields), version,
 * expiresAt, createdAt, updatedAt, lastCheckedAt, lastCheckStatus ("ok", "failed" or null),
 * lastCheckMessage}. */
static json_t *render_connection(const struct cf_connection *c)
{
    json_error_t jerr;
    json_t *shown = json_loads(c->public_fields, 0, &jerr);
    if (!shown)
        shown = json_object();
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:o}", "id", c->id, "name",
        c->name, "app", c->app, "method", c->method, "description", c->description, "credentials",
        shown, "version", (json_int_t)c->version, "expiresAt", time_or_null(c->expires_at),
        "createdAt", cf_json_time(c->created_at), "updatedAt", cf_json_time(c->updated_at),
        "lastCheckedAt", time_or_null(c->checked_at), "lastCheckStatus",
        c->checked_at ? json_string(c->check_ok ? "ok" : "failed") : json_null(),
        "lastCheckMessage", c->checked_at ? json_string(c->check_result) : json_null());
}

/* Names the request in the audit log: what was done to which connection. */
static void audit(struct cf_req *req, const char *action, const char *app, const char *id)
{
    char path[CF_PATH_MAX + 1];
    snprintf(path, sizeof(path), "/api/v1/app-connections/%s%s%s", app ? app : "",
             id && *id ? "/" : "", id ? id : "");
    cf_req_audit(req, action, NULL, NULL, path);
}

/* expiresAt of body: -1 absent, 0 null (none), else the time. */
static enum cf_rc expires_of(json_t *body, int64_t *expires_at, struct cf_err *err)
{
    json_t *v = json_object_get(body, "expiresAt");
    const char *text = NULL;
    *expires_at = -1;
    if (!v)
        return CF_OK;
    if (json_is_null(v)) {
        *expires_at = 0;
        return CF_OK;
    }
    enum cf_rc rc = cf_json_string(body, "expiresAt", false, &text, err);
    struct cf_err parse_err = {0};
    if (rc == CF_OK && cf_time_parse(text, expires_at, &parse_err) != CF_OK)
        rc = cf_err_field(err, CF_EVALIDATION, "expiresAt", "expiresAt: not an RFC 3339 time (%s)",
                          parse_err.msg);
    return rc;
}

static enum cf_rc create_connection(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const char *app = cf_req_param(req, "app");
    json_t *body = NULL;
    struct cf_connection_spec spec = {.app = app};
    struct cf_connection c;
    audit(req, "app-connections.create", app, NULL);
    enum cf_rc rc = cf_authz_admin(cf_req_principal(req), "manage app connections", err);
    if (rc == CF_OK)
        rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "method", true, &spec.method, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "name", true, &spec.name, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "description", false, &spec.description, err);
    if (rc == CF_OK)
        rc = expires_of(body, &spec.expires_at, err);
    if (rc == CF_OK && spec.expires_at < 0)
        spec.expires_at = 0;
    if (rc == CF_OK && !(spec.credentials = json_object_get(body, "credentials")))
        rc = cf_err_field(err, CF_EVALIDATION, "credentials", "credentials: required");
    if (rc == CF_OK)
        rc = cf_connections_create(cf_req_core(req), cf_req_principal(req), &spec, &c, err);
    if (rc != CF_OK)
        return rc;
    audit(req, "app-connections.create", app, c.id);
    return cf_render_reply_member("appConnection", render_connection(&c), out, err);
}

static enum cf_rc list_connections(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const char *app = cf_req_param(req, "app");
    struct cf_connection_list list = {0};
    audit(req, "app-connections.list", app, NULL);
    enum cf_rc rc = cf_connections_list(cf_req_core(req), cf_req_principal(req), app, &list, err);
    if (rc != CF_OK)
        return rc;
    json_t *array = json_array();
    for (size_t i = 0; array && i < list.n; i++)
        array = cf_render_append(array, render_connection(&list.items[i]));
    cf_connection_list_release(&list);
    return cf_render_reply_member("appConnections", array, out, err);
}

static enum cf_rc get_connection(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const char *app = cf_req_param(req, "app"), *id = cf_req_param(req, "connectionId");
    struct cf_connection c;
    audit(req, "app-connections.get", app, id);
    enum cf_rc rc = cf_connections_get(cf_req_core(req), cf_req_principal(req), app, id, &c, err);
    return rc == CF_OK ? cf_render_reply_member("appConnection", render_connection(&c), out, err)
                       : rc;
}

static enum cf_rc update_connection(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const char *app = cf_req_param(req, "app"), *id = cf_req_param(req, "connectionId");
    json_t *body = NULL;
    struct cf_connection_update change = {0};
    struct cf_connection c;
    audit(req, "app-connections.update", app, id);
    enum cf_rc rc = cf_authz_admin(cf_req_principal(req), "manage app connections", err);
    if (rc == CF_OK)
        rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "name", false, &change.name, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "description", false, &change.description, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "method", false, &change.method, err);
    if (rc == CF_OK)
        rc = expires_of(body, &change.expires_at, err);
    if (rc == CF_OK)
        change.credentials = json_object_get(body, "credentials");
    if (rc == CF_OK)
        rc = cf_connections_update(cf_req_core(req), cf_req_principal(req), app, id, &change, &c,
                                   err);
    return rc == CF_OK ? cf_render_reply_member("appConnection", render_connection(&c), out, err)
                       : rc;
}

static enum cf_rc delete_connection(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const char *app = cf_req_param(req, "app"), *id = cf_req_param(req, "connectionId");
    struct cf_connection c;
    audit(req, "app-connections.delete", app, id);
    enum cf_rc rc =
        cf_connections_delete(cf_req_core(req), cf_req_principal(req), app, id, &c, err);
    return rc == CF_OK ? cf_render_reply_member("appConnection", render_connection(&c), out, err)
                       : rc;
}

static enum cf_rc check_connection(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const char *app = cf_req_param(req, "app"), *id = cf_req_param(req, "connectionId");
    struct cf_connection c;
    json_t *report = NULL;
    audit(req, "app-connections.check", app, id);
    enum cf_rc rc =
        cf_connections_check(cf_req_core(req), cf_req_principal(req), app, id, &report, &c, err);
    if (rc != CF_OK)
        return rc;
    return cf_render_reply(
        json_pack("{s:o, s:o}", "appConnection", render_connection(&c), "check", report), out, err);
}

const struct cf_route cf_routes_connections[] = {
    {"POST", "/api/v1/app-connections/:app", create_connection, false, NULL},
    {"GET", "/api/v1/app-connections", list_connections, false, NULL},
    {"GET", "/api/v1/app-connections/:app", list_connections, false, NULL},
    {"GET", "/api/v1/app-connections/:app/:connectionId", get_connection, false, NULL},
    {"PATCH", "/api/v1/app-connections/:app/:connectionId", update_connection, false, NULL},
    {"DELETE", "/api/v1/app-connections/:app/:connectionId", delete_connection, false, NULL},
    {"POST", "/api/v1/app-connections/:app/:connectionId/check", check_connection, false, NULL},
    {NULL, NULL, NULL, false, NULL},
};
