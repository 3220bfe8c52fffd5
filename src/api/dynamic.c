/* HTTP handlers for dynamic secrets and their leases, in the shapes of Infisical's
 * /api/v1/dynamic-secrets API: create {provider: {type, inputs}, defaultTTL, maxTTL, name,
 * projectSlug, environmentSlug, path}, list, get, update {..., data: {newName, defaultTTL, maxTTL,
 * inputs}}, delete by name; leases: create {dynamicSecretName, projectSlug, environmentSlug, path,
 * ttl} answering {lease, dynamicSecret, data}, get, renew, delete (revoke). Coffer's own: the
 * connection as provider.inputs.connectionId (never a credential in the inputs), "postgres" as a
 * type (Infisical's "sql-database" with client "postgres" is taken too), and GET .../leases for the
 * caller's own leases (all=true: every lease, for admins). TTLs are durations (util/time.h:
 * "30m", "1h", "2d") or whole seconds. See docs/api.md, Dynamic secrets. */
#include <stdio.h>
#include <string.h>

#include "api/http.h"
#include "api/render.h"
#include "core/dynamic.h"
#include "core/leases.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

static const char *const project_names[] = {"projectSlug", "projectId", "workspaceId", NULL};
static const char *const env_names[] = {"environmentSlug", "environment", NULL};
static const char *const path_names[] = {"path", "secretPath", NULL};

/* A TTL field of obj ("1h", "30m", "90s", "2d", or whole seconds) into *ms; -1 when absent. */
static enum cf_rc read_ttl(json_t *obj, const char *field, int64_t *ms, struct cf_err *err)
{
    json_t *v = json_object_get(obj, field);
    *ms = -1;
    if (!v || json_is_null(v))
        return CF_OK;
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 1 || json_integer_value(v) > CF_DYNAMIC_TTL_MAX_MS / 1000)
            return cf_err_field(err, CF_EVALIDATION, field, "%s must be between 1s and 366d",
                                field);
        *ms = (int64_t)json_integer_value(v) * 1000;
        return CF_OK;
    }
    int64_t seconds = 0;
    struct cf_err ignored;
    if (!json_is_string(v) ||
        cf_duration_parse(json_string_value(v), &seconds, &ignored) != CF_OK ||
        seconds > CF_DYNAMIC_TTL_MAX_MS / 1000)
        return cf_err_field(err, CF_EVALIDATION, field,
                            "%s must be a duration such as 30m, 1h or 2d (at most 366d)", field);
    *ms = seconds * 1000;
    return CF_OK;
}

static json_t *ttl_text(int64_t ms)
{
    char text[32];
    snprintf(text, sizeof(text), "%llds", (long long)(ms / 1000));
    return json_string(text);
}

static json_t *render_dynamic(const struct cf_dynamic_view *v)
{
    const struct cf_dynamic_secret *d = &v->ds;
    json_t *inputs = cf_render_json_text(d->params, json_object());
    if (inputs)
        json_object_set_new(inputs, "connectionId", json_string(d->connection_id));
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s, s:s, s:o, s:s, s:o, s:o}", "id",
                     d->id, "name", d->name, "type", d->type, "defaultTTL",
                     ttl_text(d->default_ttl_ms), "maxTTL", ttl_text(d->max_ttl_ms), "projectId",
                     d->project_id, "projectSlug", v->project_slug, "environment", v->env_slug,
                     "secretPath", d->folder_path, "inputs", inputs ? inputs : json_object(),
                     "status", "active", "createdAt", cf_json_time(d->created_at), "updatedAt",
                     cf_json_time(d->updated_at));
}

static json_t *render_lease(const struct cf_lease_view *v)
{
    const struct cf_lease *l = &v->lease;
    return json_pack(
        "{s:s, s:s, s:s, s:o, s:s, s:s, s:{s:s, s:s, s:s}, s:o, s:o, s:I, s:o, s:o,"
        " s:s, s:s, s:s}",
        "id", l->id, "dynamicSecretId", l->dynamic_secret_id, "dynamicSecretName",
        v->dynamic.ds.name, "expireAt", cf_json_time(l->expires_at), "status", l->state,
        "externalEntityId", l->provider_id, "actor", "kind", l->actor_kind, "id", l->actor_id,
        "name", l->actor_name, "createdAt", cf_json_time(l->created_at), "revokedAt",
        cf_json_time(l->revoked_at), "revokeAttempts", (json_int_t)l->revoke_attempts,
        "nextAttemptAt", cf_json_time(l->revoke_attempts ? l->next_attempt_at : 0), "lastError",
        l->last_error[0] ? json_string(l->last_error) : json_null(), "projectId", l->project_id,
        "environment", v->dynamic.env_slug, "secretPath", v->dynamic.ds.folder_path);
}

/* The place of a request: body fields first, then query parameters. name: the path's :name, or
 * (NULL) the body's dynamicSecretName. */
static enum cf_rc read_where(struct cf_req *req, json_t *body, bool need_name,
                             struct cf_dynamic_where *where, struct cf_err *err)
{
    static const char *const name_names[] = {"dynamicSecretName", "name", NULL};
    memset(where, 0, sizeof(*where));
    enum cf_rc rc = cf_req_field(req, body, project_names, true, &where->project, err);
    if (rc == CF_OK)
        rc = cf_req_field(req, body, env_names, true, &where->environment, err);
    if (rc == CF_OK)
        rc = cf_req_field(req, body, path_names, false, &where->path, err);
    where->name = cf_req_param(req, "name");
    if (rc == CF_OK && !where->name && need_name)
        rc = cf_req_field(req, body, name_names, true, &where->name, err);
    return rc;
}

static void audit_dynamic(struct cf_req *req, const char *action, const struct cf_dynamic_view *v)
{
    cf_req_audit(req, action, v->ds.project_id, v->env_slug, v->ds.folder_path);
    cf_req_audit_key(req, v->ds.name);
}

/* POST /api/v1/dynamic-secrets -> {dynamicSecret} */
static enum cf_rc create_dynamic(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_dynamic_where where;
    struct cf_dynamic_view view;
    struct cf_dynamic_spec spec = {0};
    json_t *body = NULL, *inputs_copy = NULL;
    cf_req_audit(req, "dynamic-secrets.create", NULL, NULL, NULL);
    enum cf_rc rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = read_where(req, body, true, &where, err);
    json_t *provider = json_object_get(body, "provider");
    if (rc == CF_OK && !json_is_object(provider))
        rc = cf_err_field(err, CF_EVALIDATION, "provider",
                          "provider: an object {type, inputs} is required");
    json_t *inputs = json_object_get(provider, "inputs");
    if (rc == CF_OK)
        rc = cf_json_string(provider, "type", true, &spec.type, err);
    if (rc == CF_OK && !json_is_object(inputs))
        rc = cf_err_field(err, CF_EVALIDATION, "provider.inputs",
                          "provider.inputs: an object is required");
    if (rc == CF_OK)
        rc = cf_json_string(inputs, "connectionId", false, &spec.connection_id, err);
    if (rc == CF_OK)
        rc = read_ttl(body, "defaultTTL", &spec.default_ttl_ms, err);
    if (rc == CF_OK)
        rc = read_ttl(body, "maxTTL", &spec.max_ttl_ms, err);
    if (rc == CF_OK) {
        /* Infisical's "sql-database" names its database in inputs.client */
        const char *client = json_string_value(json_object_get(inputs, "client"));
        if (strcmp(spec.type, "sql-database") == 0 && client)
            spec.type = strcmp(client, "postgres") == 0 ? "postgres" : client;
        inputs_copy = json_deep_copy(inputs);
        if (!inputs_copy)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    if (rc == CF_OK) {
        json_object_del(inputs_copy, "connectionId");
        json_object_del(inputs_copy, "client");
        spec.params = inputs_copy;
        rc = cf_dynamic_create(cf_req_core(req), cf_req_principal(req), &where, &spec, &view, err);
    }
    json_decref(inputs_copy);
    if (rc != CF_OK)
        return rc;
    audit_dynamic(req, "dynamic-secrets.create", &view);
    return cf_render_reply_member("dynamicSecret", render_dynamic(&view), out, err);
}

/* GET /api/v1/dynamic-secrets?projectSlug&environmentSlug&path -> {dynamicSecrets} */
static enum cf_rc list_dynamic(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_dynamic_where where;
    struct cf_dynamic_view_list list = {0};
    cf_req_audit(req, "dynamic-secrets.list", NULL, NULL, NULL);
    enum cf_rc rc = read_where(req, NULL, false, &where, err);
    if (rc == CF_OK)
        rc = cf_dynamic_list(cf_req_core(req), cf_req_principal(req), &where, &list, err);
    if (rc != CF_OK)
        return rc;
    json_t *array = json_array();
    for (size_t i = 0; array && i < list.n; i++)
        array = cf_render_append(array, render_dynamic(&list.items[i]));
    if (list.n)
        cf_req_audit(req, "dynamic-secrets.list", list.items[0].ds.project_id,
                     list.items[0].env_slug, list.items[0].ds.folder_path);
    cf_dynamic_view_list_release(&list);
    return cf_render_reply_member("dynamicSecrets", array, out, err);
}

/* GET /api/v1/dynamic-secrets/{name}?projectSlug&environmentSlug&path -> {dynamicSecret} */
static enum cf_rc get_dynamic(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_dynamic_where where;
    struct cf_dynamic_view view;
    cf_req_audit(req, "dynamic-secrets.get", NULL, NULL, NULL);
    enum cf_rc rc = read_where(req, NULL, true, &where, err);
    if (rc == CF_OK)
        rc = cf_dynamic_get(cf_req_core(req), cf_req_principal(req), &where, CF_ACTION_READ, &view,
                            err);
    if (rc != CF_OK)
        return rc;
    audit_dynamic(req, "dynamic-secrets.get", &view);
    return cf_render_reply_member("dynamicSecret", render_dynamic(&view), out, err);
}

/* PATCH /api/v1/dynamic-secrets/{name} -> {dynamicSecret} */
static enum cf_rc update_dynamic(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_dynamic_where where;
    struct cf_dynamic_view view;
    struct cf_dynamic_spec change = {0};
    json_t *body = NULL;
    cf_req_audit(req, "dynamic-secrets.update", NULL, NULL, NULL);
    enum cf_rc rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = read_where(req, body, true, &where, err);
    json_t *data = json_object_get(body, "data");
    if (rc == CF_OK && !json_is_object(data))
        rc = cf_err_field(err, CF_EVALIDATION, "data",
                          "data: an object {newName, defaultTTL, maxTTL, inputs} is required");
    if (rc == CF_OK)
        rc = cf_json_string(data, "newName", false, &change.new_name, err);
    if (rc == CF_OK)
        rc = read_ttl(data, "defaultTTL", &change.default_ttl_ms, err);
    if (rc == CF_OK)
        rc = read_ttl(data, "maxTTL", &change.max_ttl_ms, err);
    json_t *inputs = json_object_get(data, "inputs"), *params = NULL;
    if (rc == CF_OK && inputs && !json_is_object(inputs))
        rc = cf_err_field(err, CF_EVALIDATION, "data.inputs", "data.inputs: an object is expected");
    /* the connection comes back with the inputs a client read: kept apart from the settings */
    if (rc == CF_OK && inputs)
        rc = cf_json_string(inputs, "connectionId", false, &change.connection_id, err);
    if (rc == CF_OK && inputs) {
        params = json_deep_copy(inputs);
        if (!params)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        json_object_del(params, "connectionId");
    }
    change.params = params;
    if (rc == CF_OK)
        rc =
            cf_dynamic_update(cf_req_core(req), cf_req_principal(req), &where, &change, &view, err);
    json_decref(params);
    if (rc != CF_OK)
        return rc;
    audit_dynamic(req, "dynamic-secrets.update", &view);
    return cf_render_reply_member("dynamicSecret", render_dynamic(&view), out, err);
}

/* DELETE /api/v1/dynamic-secrets/{name} -> {dynamicSecret} */
static enum cf_rc delete_dynamic(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_dynamic_where where;
    struct cf_dynamic_view view;
    json_t *body = NULL;
    char owner[CF_UUID_LEN];
    cf_uuid_new(owner);
    cf_req_audit(req, "dynamic-secrets.delete", NULL, NULL, NULL);
    enum cf_rc rc = cf_req_json(req, false, &body, err);
    if (rc == CF_OK)
        rc = read_where(req, body, true, &where, err);
    if (rc == CF_OK)
        rc = cf_dynamic_delete(cf_req_core(req), cf_req_principal(req), &where, owner, &view, err);
    if (rc != CF_OK)
        return rc;
    audit_dynamic(req, "dynamic-secrets.delete", &view);
    return cf_render_reply_member("dynamicSecret", render_dynamic(&view), out, err);
}

/* ---- leases ---- */

static void audit_lease(struct cf_req *req, const char *action, const struct cf_lease_view *v)
{
    char reason[160];
    cf_req_audit(req, action, v->lease.project_id, v->dynamic.env_slug, v->dynamic.ds.folder_path);
    cf_req_audit_key(req, v->dynamic.ds.name);
    snprintf(reason, sizeof(reason), "lease %s, credential '%.64s', ends %lld", v->lease.id,
             v->lease.provider_id, (long long)v->lease.expires_at);
    cf_req_audit_reason(req, reason);
}

/* The answer {lease, dynamicSecret}. */
static enum cf_rc reply_lease(const struct cf_lease_view *v, json_t **out, struct cf_err *err)
{
    *out = json_pack("{s:o, s:o}", "lease", render_lease(v), "dynamicSecret",
                     render_dynamic(&v->dynamic));
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

/* POST /api/v1/dynamic-secrets/leases -> {lease, dynamicSecret, data} */
static enum cf_rc create_lease(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_dynamic_where where;
    struct cf_lease_view view;
    json_t *body = NULL, *data = NULL;
    int64_t ttl_ms = -1;
    cf_req_audit(req, "dynamic-secrets.lease-create", NULL, NULL, NULL);
    enum cf_rc rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = read_where(req, body, true, &where, err);
    if (rc == CF_OK)
        rc = read_ttl(body, "ttl", &ttl_ms, err);
    if (rc == CF_OK)
        rc = cf_lease_create(cf_req_core(req), cf_req_principal(req), &where,
                             ttl_ms < 0 ? 0 : ttl_ms, &view, &data, err);
    if (rc != CF_OK)
        return rc;
    audit_lease(req, "dynamic-secrets.lease-create", &view);
    cf_req_set_status(req, 201);
    *out = json_pack("{s:o, s:o, s:o}", "lease", render_lease(&view), "dynamicSecret",
                     render_dynamic(&view.dynamic), "data", data);
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

/* GET /api/v1/dynamic-secrets/leases/{leaseId} -> {lease, dynamicSecret} */
static enum cf_rc get_lease(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_lease_view view;
    cf_req_audit(req, "dynamic-secrets.lease-get", NULL, NULL, NULL);
    enum cf_rc rc = cf_lease_get(cf_req_core(req), cf_req_principal(req),
                                 cf_req_param(req, "leaseId"), &view, err);
    if (rc != CF_OK)
        return rc;
    audit_lease(req, "dynamic-secrets.lease-get", &view);
    return reply_lease(&view, out, err);
}

/* POST /api/v1/dynamic-secrets/leases/{leaseId}/renew {ttl?} -> {lease} */
static enum cf_rc renew_lease(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_lease_view view;
    json_t *body = NULL;
    int64_t ttl_ms = -1;
    char owner[CF_UUID_LEN];
    cf_uuid_new(owner);
    cf_req_audit(req, "dynamic-secrets.lease-renew", NULL, NULL, NULL);
    enum cf_rc rc = cf_req_json(req, false, &body, err);
    if (rc == CF_OK)
        rc = read_ttl(body, "ttl", &ttl_ms, err);
    if (rc == CF_OK)
        rc = cf_lease_renew(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "leaseId"),
                            ttl_ms < 0 ? 0 : ttl_ms, owner, &view, err);
    if (rc != CF_OK)
        return rc;
    audit_lease(req, "dynamic-secrets.lease-renew", &view);
    return reply_lease(&view, out, err);
}

/* DELETE /api/v1/dynamic-secrets/leases/{leaseId} -> {lease} */
static enum cf_rc revoke_lease(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_lease_view view;
    char owner[CF_UUID_LEN];
    cf_uuid_new(owner);
    cf_req_audit(req, "dynamic-secrets.lease-revoke", NULL, NULL, NULL);
    enum cf_rc rc = cf_lease_revoke(cf_req_core(req), cf_req_principal(req),
                                    cf_req_param(req, "leaseId"), owner, &view, err);
    if (rc != CF_OK)
        return rc;
    audit_lease(req, "dynamic-secrets.lease-revoke", &view);
    return reply_lease(&view, out, err);
}

static enum cf_rc reply_leases(struct cf_lease_view_list *list, json_t **out, struct cf_err *err)
{
    json_t *array = json_array();
    for (size_t i = 0; array && i < list->n; i++)
        array = cf_render_append(array, render_lease(&list->items[i]));
    cf_lease_view_list_release(list);
    return cf_render_reply_member("leases", array, out, err);
}

/* GET /api/v1/dynamic-secrets/leases[?all=true][&includeEnded=true] -> {leases} (the caller's own,
 * or every lease) */
static enum cf_rc list_leases(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_lease_view_list list = {0};
    bool all = false, ended = false;
    cf_req_audit(req, "dynamic-secrets.lease-list", NULL, NULL, NULL);
    enum cf_rc rc = cf_req_query_bool(req, "all", false, &all, err);
    if (rc == CF_OK)
        rc = cf_req_query_bool(req, "includeEnded", false, &ended, err);
    if (rc == CF_OK)
        rc = cf_leases_list(cf_req_core(req), cf_req_principal(req), NULL, all, ended, &list, err);
    return rc == CF_OK ? reply_leases(&list, out, err) : rc;
}

/* GET /api/v1/dynamic-secrets/{name}/leases?projectSlug&environmentSlug&path -> {leases} */
static enum cf_rc list_secret_leases(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_dynamic_where where;
    struct cf_lease_view_list list = {0};
    bool ended = false;
    cf_req_audit(req, "dynamic-secrets.lease-list", NULL, NULL, NULL);
    enum cf_rc rc = read_where(req, NULL, true, &where, err);
    if (rc == CF_OK)
        rc = cf_req_query_bool(req, "includeEnded", false, &ended, err);
    if (rc == CF_OK)
        rc = cf_leases_list(cf_req_core(req), cf_req_principal(req), &where, false, ended, &list,
                            err);
    return rc == CF_OK ? reply_leases(&list, out, err) : rc;
}

/* The lease routes come first: "leases" is not a dynamic secret's name. */
const struct cf_route cf_routes_dynamic[] = {
    {"GET", "/api/v1/dynamic-secrets/leases", list_leases, false},
    {"POST", "/api/v1/dynamic-secrets/leases", create_lease, false},
    {"GET", "/api/v1/dynamic-secrets/leases/:leaseId", get_lease, false},
    {"DELETE", "/api/v1/dynamic-secrets/leases/:leaseId", revoke_lease, false},
    {"POST", "/api/v1/dynamic-secrets/leases/:leaseId/renew", renew_lease, false},
    {"GET", "/api/v1/dynamic-secrets", list_dynamic, false},
    {"POST", "/api/v1/dynamic-secrets", create_dynamic, false},
    {"GET", "/api/v1/dynamic-secrets/:name", get_dynamic, false},
    {"PATCH", "/api/v1/dynamic-secrets/:name", update_dynamic, false},
    {"DELETE", "/api/v1/dynamic-secrets/:name", delete_dynamic, false},
    {"GET", "/api/v1/dynamic-secrets/:name/leases", list_secret_leases, false},
    {NULL, NULL, NULL, false},
};
