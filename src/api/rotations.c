/* HTTP handlers for secret rotations, in the shapes of Infisical's /api/v2/secret-rotations API
 * (create, list, get, update, delete, and rotate now: rotate-secrets; the fields name, projectId,
 * connectionId, environment, secretPath, parameters, secretsMapping, rotationInterval in days,
 * rotateAtUtc {hours, minutes}, isAutoRotationEnabled), plus Coffer's own: consumers,
 * gracePeriod and lifetime (seconds), daysBeforeExpiry, the state machine's status, the history
 * (GET .../history) and a dry run (rotate-secrets?dryRun=true). A failure at the provider is a
 * status of the rotation, never an HTTP error of the request. See docs/api.md, Secret rotations. */
#include <string.h>

#include "api/http.h"
#include "api/render.h"
#include "core/rotations.h"
#include "util/str.h"
#include "util/banned.h"

#define SECONDS_MAX (10LL * 365 * 24 * 3600)

static json_t *text_or_null(const char *text)
{
    return text && text[0] ? json_string(text) : json_null();
}

static json_t *render_rotation(const struct cf_rotation_view *v)
{
    const struct cf_rotation *r = &v->rot;
    json_t *j = json_object();
    if (!j)
        return NULL;
    json_object_set_new(j, "id", json_string(r->id));
    json_object_set_new(j, "name", json_string(r->name));
    json_object_set_new(j, "description", json_string(r->description));
    json_object_set_new(j, "type", json_string(r->type));
    json_object_set_new(j, "projectId", json_string(r->project_id));
    json_object_set_new(j, "connectionId", text_or_null(r->connection_id));
    json_object_set_new(j, "environment",
                        json_pack("{s:s, s:s}", "slug", v->env_slug, "id", r->env_id));
    json_object_set_new(j, "folder", json_pack("{s:s}", "path", r->folder_path));
    json_object_set_new(j, "parameters", cf_render_json_text(r->parameters, json_object()));
    json_object_set_new(j, "secretsMapping",
                        cf_render_json_text(r->secrets_mapping, json_object()));
    json_object_set_new(j, "isAutoRotationEnabled", json_boolean(r->auto_rotate));
    json_object_set_new(j, "rotationInterval", json_integer(r->interval_days));
    json_object_set_new(j, "rotateAtUtc",
                        json_pack("{s:I, s:I}", "hours", (json_int_t)(r->rotate_at_minute / 60),
                                  "minutes", (json_int_t)(r->rotate_at_minute % 60)));
    json_object_set_new(j, "rotationStatus", json_string(r->status));
    json_object_set_new(j, "lastRotatedAt", cf_json_time(r->last_rotated_at));
    json_object_set_new(j, "lastRotationMessage", text_or_null(r->last_error));
    json_object_set_new(j, "nextRotationAt", cf_json_time(r->next_rotation_at));
    json_object_set_new(j, "createdAt", cf_json_time(r->created_at));
    json_object_set_new(j, "updatedAt", cf_json_time(r->updated_at));
    /* Coffer's own fields. */
    json_object_set_new(j, "consumers", cf_render_json_text(r->consumers, json_array()));
    json_object_set_new(j, "gracePeriod", json_integer(r->grace_period_ms / 1000));
    json_object_set_new(j, "lifetime", json_integer(r->lifetime_ms / 1000));
    json_object_set_new(j, "daysBeforeExpiry", json_integer(r->days_before_expiry));
    json_object_set_new(j, "generation", json_integer(r->generation));
    json_object_set_new(j, "currentCredentialId", text_or_null(r->current_cred_id));
    json_object_set_new(j, "currentCredentialExpiresAt", cf_json_time(r->current_expires_at));
    json_object_set_new(j, "previousCredentialId", text_or_null(r->previous_cred_id));
    json_object_set_new(j, "pendingStep", text_or_null(r->pending_step));
    json_object_set_new(j, "pendingCredentialId", text_or_null(r->pending_cred_id));
    json_object_set_new(j, "graceUntil", cf_json_time(r->grace_until));
    json_object_set_new(j, "stepAttempts", json_integer(r->step_attempts));
    json_object_set_new(j, "nextAttemptAt",
                        cf_json_time(r->pending_step[0] ? r->next_attempt_at : 0));
    json_object_set_new(j, "lastErrorStep", text_or_null(r->last_error_step));
    json_object_set_new(j, "lastErrorCause", text_or_null(r->last_error_cause));
    return j;
}

static enum cf_rc reply_rotation(const struct cf_rotation_view *v, json_t **out, struct cf_err *err)
{
    return cf_render_reply_member("secretRotation", render_rotation(v), out, err);
}

/* A whole-number field into *value (scaled by scale) when present. */
static enum cf_rc read_int(json_t *body, const char *field, long long max, int64_t scale,
                           int64_t *value, struct cf_err *err)
{
    long long n = 0;
    bool present = false;
    enum cf_rc rc = cf_json_int(body, field, 0, max, &n, &present, err);
    if (rc == CF_OK && present)
        *value = (int64_t)n * scale;
    return rc;
}

/* The fields of a create or update body into spec (borrowed from body). */
static enum cf_rc read_spec(json_t *body, bool create, struct cf_rotation_spec *spec,
                            struct cf_err *err)
{
    bool present = false, auto_rotate = true;
    memset(spec, 0, sizeof(*spec));
    spec->interval_days = spec->days_before_expiry = spec->rotate_at_minute = -1;
    spec->grace_period_ms = spec->lifetime_ms = -1;
    spec->auto_rotate = -1;
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
        rc = cf_json_bool(body, "isAutoRotationEnabled", &auto_rotate, &present, err);
    if (rc == CF_OK && present)
        spec->auto_rotate = auto_rotate ? 1 : 0;
    if (rc == CF_OK)
        rc = read_int(body, "rotationInterval", CF_ROTATION_INTERVAL_DAYS_MAX, 1,
                      &spec->interval_days, err);
    if (rc == CF_OK)
        rc = read_int(body, "daysBeforeExpiry", CF_ROTATION_INTERVAL_DAYS_MAX, 1,
                      &spec->days_before_expiry, err);
    if (rc == CF_OK)
        rc = read_int(body, "gracePeriod", SECONDS_MAX, 1000, &spec->grace_period_ms, err);
    if (rc == CF_OK)
        rc = read_int(body, "lifetime", SECONDS_MAX, 1000, &spec->lifetime_ms, err);
    json_t *at = json_object_get(body, "rotateAtUtc");
    if (rc == CF_OK && at && !json_is_object(at))
        rc = cf_err_field(err, CF_EINVAL, "rotateAtUtc",
                          "rotateAtUtc must be an object {hours, minutes}");
    if (rc == CF_OK && at) {
        int64_t hours = 0, minutes = 0;
        rc = read_int(at, "hours", 23, 1, &hours, err);
        if (rc == CF_OK)
            rc = read_int(at, "minutes", 59, 1, &minutes, err);
        spec->rotate_at_minute = hours * 60 + minutes;
    }
    spec->parameters = json_object_get(body, "parameters");
    spec->secrets_mapping = json_object_get(body, "secretsMapping");
    spec->consumers = json_object_get(body, "consumers");
    if (rc == CF_OK && create && !json_is_null(json_object_get(body, "currentCredentialId")))
        rc = cf_json_string(body, "currentCredentialId", false, &spec->current_credential_id, err);
    else if (rc == CF_OK && !create && json_object_get(body, "currentCredentialId"))
        rc = cf_err_field(err, CF_EVALIDATION, "currentCredentialId",
                          "currentCredentialId can only be given when the rotation is created");
    return rc;
}

/* The type segment of the path: NULL (any type) for Coffer's "any". */
static const char *type_param(struct cf_req *req)
{
    const char *t = cf_req_param(req, "type");
    return t && strcmp(t, "any") == 0 ? NULL : t;
}

static void audit_rotation(struct cf_req *req, const char *action, const struct cf_rotation_view *v)
{
    cf_req_audit(req, action, v->rot.project_id, v->env_slug[0] ? v->env_slug : NULL,
                 v->rot.folder_path[0] ? v->rot.folder_path : NULL);
}

/* POST /api/v2/secret-rotations/{type} -> {secretRotation} */
static enum cf_rc create_rotation(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_rotation_view view;
    struct cf_rotation_spec spec;
    json_t *body = NULL;
    cf_req_audit(req, "secret-rotations.create", NULL, NULL, NULL);
    enum cf_rc rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = read_spec(body, true, &spec, err);
    if (rc == CF_OK)
        rc = cf_rotations_create(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "type"),
                                 &spec, &view, err);
    if (rc != CF_OK)
        return rc;
    audit_rotation(req, "secret-rotations.create", &view);
    return reply_rotation(&view, out, err);
}

/* GET /api/v2/secret-rotations[/{type}]?projectId= -> {secretRotations: [...]} */
static enum cf_rc list_rotations(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_rotation_view_list list = {0};
    const char *project = NULL;
    cf_req_audit(req, "secret-rotations.list", NULL, NULL, NULL);
    enum cf_rc rc = cf_req_query(req, "projectId", &project, err);
    if (rc == CF_OK && !project)
        rc = cf_err_field(err, CF_EVALIDATION, "projectId", "projectId is required");
    if (rc == CF_OK)
        rc = cf_rotations_list(cf_req_core(req), cf_req_principal(req), project, type_param(req),
                               &list, err);
    if (rc != CF_OK)
        return rc;
    json_t *array = json_array();
    for (size_t i = 0; array && i < list.n; i++)
        array = cf_render_append(array, render_rotation(&list.items[i]));
    if (list.n)
        cf_req_audit(req, "secret-rotations.list", list.items[0].rot.project_id, NULL, NULL);
    cf_rotation_view_list_release(&list);
    return cf_render_reply_member("secretRotations", array, out, err);
}

/* GET /api/v2/secret-rotations/{type}/{rotationId} -> {secretRotation} */
static enum cf_rc get_rotation(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_rotation_view view;
    cf_req_audit(req, "secret-rotations.get", NULL, NULL, NULL);
    enum cf_rc rc = cf_rotations_get(cf_req_core(req), cf_req_principal(req), type_param(req),
                                     cf_req_param(req, "rotationId"), &view, err);
    if (rc != CF_OK)
        return rc;
    audit_rotation(req, "secret-rotations.get", &view);
    return reply_rotation(&view, out, err);
}

/* PATCH /api/v2/secret-rotations/{type}/{rotationId} -> {secretRotation} */
static enum cf_rc update_rotation(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_rotation_view view;
    struct cf_rotation_spec spec;
    json_t *body = NULL;
    cf_req_audit(req, "secret-rotations.update", NULL, NULL, NULL);
    enum cf_rc rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = read_spec(body, false, &spec, err);
    if (rc == CF_OK)
        rc = cf_rotations_update(cf_req_core(req), cf_req_principal(req), type_param(req),
                                 cf_req_param(req, "rotationId"), &spec, &view, err);
    if (rc != CF_OK)
        return rc;
    audit_rotation(req, "secret-rotations.update", &view);
    return reply_rotation(&view, out, err);
}

/* DELETE /api/v2/secret-rotations/{type}/{rotationId} -> {secretRotation} */
static enum cf_rc delete_rotation(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_rotation_view view;
    cf_req_audit(req, "secret-rotations.delete", NULL, NULL, NULL);
    enum cf_rc rc = cf_rotations_delete(cf_req_core(req), cf_req_principal(req), type_param(req),
                                        cf_req_param(req, "rotationId"), &view, err);
    if (rc != CF_OK)
        return rc;
    audit_rotation(req, "secret-rotations.delete", &view);
    return reply_rotation(&view, out, err);
}

static void add_call(void *ctx, const char *step, const char *method, const char *target,
                     const char *purpose)
{
    json_t *calls = ctx;
    json_array_append_new(calls, json_pack("{s:s, s:s, s:s, s:s}", "step", step, "method", method,
                                           "target", target, "purpose", purpose));
}

/* POST /api/v2/secret-rotations/{type}/{rotationId}/rotate-secrets[?dryRun=true] ->
 * {secretRotation} (its status holds the outcome), or {dryRun: true, calls: [...]} */
static enum cf_rc rotate_rotation(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_rotation_view view;
    char owner[CF_UUID_LEN];
    bool dry_run = false;
    cf_uuid_new(owner);
    cf_req_audit(req, "secret-rotations.rotate", NULL, NULL, NULL);
    enum cf_rc rc = cf_req_query_bool(req, "dryRun", false, &dry_run, err);
    if (rc == CF_OK && dry_run) {
        json_t *calls = json_array();
        if (!calls)
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        rc = cf_rotations_dry_run(cf_req_core(req), cf_req_principal(req), type_param(req),
                                  cf_req_param(req, "rotationId"), add_call, calls, err);
        if (rc != CF_OK) {
            json_decref(calls);
            return rc;
        }
        *out = json_pack("{s:b, s:o}", "dryRun", 1, "calls", calls);
        return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    if (rc == CF_OK)
        rc = cf_rotations_trigger(cf_req_core(req), cf_req_principal(req), type_param(req),
                                  cf_req_param(req, "rotationId"), owner, &view, err);
    if (rc != CF_OK)
        return rc;
    audit_rotation(req, "secret-rotations.rotate", &view);
    return reply_rotation(&view, out, err);
}

/* GET /api/v2/secret-rotations/{type}/{rotationId}/history?limit= -> {history: [...]} */
static enum cf_rc history_rotation(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_rotation_event_list list = {0};
    const char *limit_text = NULL;
    long long limit = 100;
    cf_req_audit(req, "secret-rotations.history", NULL, NULL, NULL);
    enum cf_rc rc = cf_req_query(req, "limit", &limit_text, err);
    if (rc == CF_OK && limit_text && !cf_parse_int64(limit_text, 1, 1000, &limit))
        rc = cf_err_field(err, CF_EVALIDATION, "limit", "limit must be between 1 and 1000");
    if (rc == CF_OK)
        rc = cf_rotations_history(cf_req_core(req), cf_req_principal(req),
                                  cf_req_param(req, "rotationId"), (size_t)limit, &list, err);
    if (rc != CF_OK)
        return rc;
    json_t *array = json_array();
    for (size_t i = 0; array && i < list.n; i++) {
        const struct cf_rotation_event *e = &list.items[i];
        array = cf_render_append(
            array,
            json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:o}", "generation",
                      (json_int_t)e->generation, "step", e->step, "outcome", e->outcome, "cause",
                      text_or_null(e->cause), "message", text_or_null(e->message), "credentialId",
                      text_or_null(e->credential_id), "at", cf_json_time(e->at)));
    }
    cf_rotation_event_list_release(&list);
    return cf_render_reply_member("history", array, out, err);
}

const struct cf_route cf_routes_rotations[] = {
    {"GET", "/api/v2/secret-rotations", list_rotations, false},
    {"GET", "/api/v2/secret-rotations/:type", list_rotations, false},
    {"POST", "/api/v2/secret-rotations/:type", create_rotation, false},
    {"GET", "/api/v2/secret-rotations/:type/:rotationId", get_rotation, false},
    {"PATCH", "/api/v2/secret-rotations/:type/:rotationId", update_rotation, false},
    {"DELETE", "/api/v2/secret-rotations/:type/:rotationId", delete_rotation, false},
    {"POST", "/api/v2/secret-rotations/:type/:rotationId/rotate-secrets", rotate_rotation, false},
    {"GET", "/api/v2/secret-rotations/:type/:rotationId/history", history_rotation, false},
    {NULL, NULL, NULL, false},
};
