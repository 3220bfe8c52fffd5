/* HTTP handlers for secret syncs, in the shapes of Infisical's /api/v1/secret-syncs API: create,
 * list, get, update, delete, and run now (sync-secrets). A sync's status (syncStatus, lastSyncedAt,
 * lastSyncMessage, as Infisical names them, plus Coffer's itemsPushed, drift and retry state) is
 * part of the sync object. A failure of the outside system is a status of the sync, never an HTTP
 * error of the request: a 401 from Azure DevOps must not read as "your Coffer token is bad". See
 * docs/api.md, Secret syncs. */
#include <string.h>

#include "api/http.h"
#include "api/render.h"
#include "core/syncs.h"
#include "util/banned.h"

static json_t *render_sync(const struct cf_sync_view *v)
{
    const struct cf_sync *s = &v->sync;
    json_t *j = json_object();
    if (!j)
        return NULL;
    json_object_set_new(j, "id", json_string(s->id));
    json_object_set_new(j, "name", json_string(s->name));
    json_object_set_new(j, "description", json_string(s->description));
    json_object_set_new(j, "projectId", json_string(s->project_id));
    json_object_set_new(j, "destination", json_string(s->destination));
    json_object_set_new(j, "connectionId",
                        s->connection_id[0] ? json_string(s->connection_id) : json_null());
    json_object_set_new(j, "connection",
                        s->connection_id[0]
                            ? json_pack("{s:s, s:s, s:s}", "app",
                                        v->connection_app[0] ? v->connection_app : s->destination,
                                        "name", v->connection_name, "id", s->connection_id)
                            : json_null());
    json_object_set_new(
        j, "environment",
        json_pack("{s:s, s:s, s:s}", "slug", v->env_slug, "name", v->env_name, "id", s->env_id));
    json_object_set_new(j, "folder", json_pack("{s:s}", "path", s->folder_path));
    json_object_set_new(j, "destinationConfig",
                        cf_render_json_text(s->destination_config, json_object()));
    json_object_set_new(j, "syncOptions", cf_render_json_text(s->sync_options, json_object()));
    json_object_set_new(j, "isAutoSyncEnabled", json_boolean(s->auto_sync));
    json_object_set_new(j, "createdAt", cf_json_time(s->created_at));
    json_object_set_new(j, "updatedAt", cf_json_time(s->updated_at));
    json_object_set_new(j, "syncStatus", json_string(s->sync_status));
    json_object_set_new(j, "lastSyncedAt", cf_json_time(s->last_synced_at));
    json_object_set_new(j, "lastSyncMessage",
                        s->last_error[0] ? json_string(s->last_error) : json_null());
    /* Coffer's own status fields. */
    json_object_set_new(j, "lastSyncAttemptAt", cf_json_time(s->last_attempt_at));
    json_object_set_new(j, "lastSyncErrorCause",
                        s->last_error_cause[0] ? json_string(s->last_error_cause) : json_null());
    json_object_set_new(j, "itemsPushed", json_integer(s->items_pushed));
    json_object_set_new(j, "drift", cf_render_json_text(s->drift, json_array()));
    json_object_set_new(j, "pending", json_boolean(s->pending_gen > s->done_gen));
    json_object_set_new(j, "failedAttempts", json_integer(s->attempts));
    json_object_set_new(j, "nextAttemptAt",
                        s->attempts > 0 ? cf_json_time(s->next_attempt_at) : json_null());
    return j;
}

static enum cf_rc reply_sync(const struct cf_sync_view *v, json_t **out, struct cf_err *err)
{
    return cf_render_reply_member("secretSync", render_sync(v), out, err);
}

/* The fields of a create or update body into spec (borrowed from body). */
static enum cf_rc read_spec(json_t *body, bool create, struct cf_sync_spec *spec,
                            struct cf_err *err)
{
    bool present = false, auto_sync = true;
    memset(spec, 0, sizeof(*spec));
    spec->auto_sync = -1;
    enum cf_rc rc = CF_OK;
    if (create)
        rc = cf_json_string(body, "projectId", true, &spec->project, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "name", create, &spec->name, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "description", false, &spec->description, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "environment", create, &spec->environment, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "secretPath", create, &spec->secret_path, err);
    if (rc == CF_OK && !json_is_null(json_object_get(body, "connectionId")))
        rc = cf_json_string(body, "connectionId", false, &spec->connection_id, err);
    if (rc == CF_OK)
        rc = cf_json_bool(body, "isAutoSyncEnabled", &auto_sync, &present, err);
    if (rc == CF_OK && present)
        spec->auto_sync = auto_sync ? 1 : 0;
    spec->destination_config = json_object_get(body, "destinationConfig");
    spec->sync_options = json_object_get(body, "syncOptions");
    if (rc == CF_OK && create && !spec->destination_config)
        rc =
            cf_err_field(err, CF_EVALIDATION, "destinationConfig", "destinationConfig is required");
    return rc;
}

/* The destination segment of the path: NULL (any destination) for Coffer's "any". */
static const char *dest_param(struct cf_req *req)
{
    const char *d = cf_req_param(req, "destination");
    return d && strcmp(d, "any") == 0 ? NULL : d;
}

static void audit_sync(struct cf_req *req, const char *action, const struct cf_sync_view *v)
{
    cf_req_audit(req, action, v->sync.project_id, v->env_slug[0] ? v->env_slug : NULL,
                 v->sync.folder_path[0] ? v->sync.folder_path : NULL);
}

/* POST /api/v1/secret-syncs/{destination} -> {secretSync} */
static enum cf_rc create_sync(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_sync_view view;
    struct cf_sync_spec spec;
    json_t *body = NULL;
    cf_req_audit(req, "secret-syncs.create", NULL, NULL, NULL);
    enum cf_rc rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = read_spec(body, true, &spec, err);
    if (rc == CF_OK)
        rc = cf_syncs_create(cf_req_core(req), cf_req_principal(req),
                             cf_req_param(req, "destination"), &spec, &view, err);
    if (rc != CF_OK)
        return rc;
    audit_sync(req, "secret-syncs.create", &view);
    return reply_sync(&view, out, err);
}

/* GET /api/v1/secret-syncs[/{destination}]?projectId= -> {secretSyncs: [...]} */
static enum cf_rc list_syncs(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_sync_view_list list = {0};
    const char *project = NULL;
    cf_req_audit(req, "secret-syncs.list", NULL, NULL, NULL);
    enum cf_rc rc = cf_req_query(req, "projectId", &project, err);
    if (rc == CF_OK && !project)
        rc = cf_err_field(err, CF_EVALIDATION, "projectId", "projectId is required");
    if (rc == CF_OK)
        rc = cf_syncs_list(cf_req_core(req), cf_req_principal(req), project, dest_param(req), &list,
                           err);
    if (rc != CF_OK)
        return rc;
    json_t *array = json_array();
    for (size_t i = 0; array && i < list.n; i++)
        array = cf_render_append(array, render_sync(&list.items[i]));
    if (list.n)
        cf_req_audit(req, "secret-syncs.list", list.items[0].sync.project_id, NULL, NULL);
    cf_sync_view_list_release(&list);
    return cf_render_reply_member("secretSyncs", array, out, err);
}

/* GET /api/v1/secret-syncs/{destination}/{syncId} -> {secretSync} */
static enum cf_rc get_sync(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_sync_view view;
    cf_req_audit(req, "secret-syncs.get", NULL, NULL, NULL);
    enum cf_rc rc = cf_syncs_get(cf_req_core(req), cf_req_principal(req), dest_param(req),
                                 cf_req_param(req, "syncId"), &view, err);
    if (rc != CF_OK)
        return rc;
    audit_sync(req, "secret-syncs.get", &view);
    return reply_sync(&view, out, err);
}

/* PATCH /api/v1/secret-syncs/{destination}/{syncId} -> {secretSync} */
static enum cf_rc update_sync(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_sync_view view;
    struct cf_sync_spec spec;
    json_t *body = NULL;
    cf_req_audit(req, "secret-syncs.update", NULL, NULL, NULL);
    enum cf_rc rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = read_spec(body, false, &spec, err);
    if (rc == CF_OK)
        rc = cf_syncs_update(cf_req_core(req), cf_req_principal(req), dest_param(req),
                             cf_req_param(req, "syncId"), &spec, &view, err);
    if (rc != CF_OK)
        return rc;
    audit_sync(req, "secret-syncs.update", &view);
    return reply_sync(&view, out, err);
}

/* DELETE /api/v1/secret-syncs/{destination}/{syncId} -> {secretSync} */
static enum cf_rc delete_sync(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_sync_view view;
    cf_req_audit(req, "secret-syncs.delete", NULL, NULL, NULL);
    enum cf_rc rc = cf_syncs_delete(cf_req_core(req), cf_req_principal(req), dest_param(req),
                                    cf_req_param(req, "syncId"), &view, err);
    if (rc != CF_OK)
        return rc;
    audit_sync(req, "secret-syncs.delete", &view);
    return reply_sync(&view, out, err);
}

/* POST /api/v1/secret-syncs/{destination}/{syncId}/sync-secrets -> {secretSync}: runs it now; the
 * outcome is in the sync's status. */
static enum cf_rc run_sync(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_sync_view view;
    char owner[CF_UUID_LEN];
    cf_uuid_new(owner);
    cf_req_audit(req, "secret-syncs.run", NULL, NULL, NULL);
    enum cf_rc rc = cf_syncs_trigger(cf_req_core(req), cf_req_principal(req), dest_param(req),
                                     cf_req_param(req, "syncId"), owner, &view, err);
    if (rc != CF_OK)
        return rc;
    audit_sync(req, "secret-syncs.run", &view);
    return reply_sync(&view, out, err);
}

const struct cf_route cf_routes_syncs[] = {
    {"GET", "/api/v1/secret-syncs", list_syncs, false},
    {"GET", "/api/v1/secret-syncs/:destination", list_syncs, false},
    {"POST", "/api/v1/secret-syncs/:destination", create_sync, false},
    {"GET", "/api/v1/secret-syncs/:destination/:syncId", get_sync, false},
    {"PATCH", "/api/v1/secret-syncs/:destination/:syncId", update_sync, false},
    {"DELETE", "/api/v1/secret-syncs/:destination/:syncId", delete_sync, false},
    {"POST", "/api/v1/secret-syncs/:destination/:syncId/sync-secrets", run_sync, false},
    {NULL, NULL, NULL, false},
};
