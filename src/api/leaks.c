/* POST /api/v1/secrets/leaked (docs/api.md "Leaked secrets"): marks a secret whose value was found
 * where it should not be (core/leaks.h), and with rotate: true asks for its rotation. The body
 * names the secret and where its value was found, never the value. Audited as secret.leaked with
 * the place, the key and the source as the reason. */
#include <stdio.h>
#include <string.h>

#include "api/http.h"
#include "api/render.h"
#include "core/leaks.h"
#include "util/id.h"
#include "util/banned.h"

static const char *rotation_word(enum cf_leak_rotation r)
{
    switch (r) {
    case CF_LEAK_ROTATION_NONE:
        return "none";
    case CF_LEAK_ROTATION_TRIGGERED:
        return "triggered";
    case CF_LEAK_ROTATION_FAILED:
        return "failed";
    default:
        return "not-asked";
    }
}

/* {outcome, rotationId?, name?, status?, error?}, or null when no rotation was asked for. */
static json_t *render_rotation(const struct cf_leak_outcome *o)
{
    if (o->rotation == CF_LEAK_ROTATION_NOT_ASKED)
        return json_null();
    json_t *r = json_pack("{s:s}", "outcome", rotation_word(o->rotation));
    if (r && o->rotation_id[0])
        json_object_set_new(r, "rotationId", json_string(o->rotation_id));
    if (r && o->rotation_name[0])
        json_object_set_new(r, "name", json_string(o->rotation_name));
    if (r && o->rotation_status[0])
        json_object_set_new(r, "status", json_string(o->rotation_status));
    if (r && o->rotation_error[0])
        json_object_set_new(r, "error", json_string(o->rotation_error));
    return r;
}

/* POST /api/v1/secrets/leaked {projectId|workspaceId, environment, secretPath?, secretKey, source,
 * fingerprint?, rotate?} -> {leak: {secretId, projectId, environment, secretPath, secretKey,
 * version, leakedAt, source, fingerprint, by, created}, rotation} */
static enum cf_rc mark_leaked(struct cf_req *req, json_t **out, struct cf_err *err)
{
    static const char *const project_names[] = {"projectId", "workspaceId", NULL};
    struct cf_leak_spec spec = {0};
    struct cf_leak_outcome o;
    char owner[CF_UUID_LEN], note[CF_LEAK_SOURCE_MAX + CF_LEAK_FINGERPRINT_MAX + 64];
    bool present = false;
    json_t *body = NULL;

    cf_req_audit(req, "secret.leaked", NULL, NULL, NULL);
    cf_uuid_new(owner);
    enum cf_rc rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_req_field(req, body, project_names, true, &spec.project, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "environment", true, &spec.environment, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "secretPath", false, &spec.secret_path, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "secretKey", true, &spec.secret_key, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "source", true, &spec.source, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "fingerprint", false, &spec.fingerprint, err);
    if (rc == CF_OK)
        rc = cf_json_bool(body, "rotate", &spec.rotate, &present, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_leaks_mark(cf_req_core(req), cf_req_principal(req), &spec, owner, &o, err);
    if (rc != CF_OK)
        return rc;
    cf_req_audit(req, "secret.leaked", o.project_id, o.env_slug, o.path);
    cf_req_audit_key(req, o.key);
    snprintf(note, sizeof(note), "found at %s%s%s%s", o.leak.source,
             o.leak.fingerprint[0] ? " (fingerprint " : "", o.leak.fingerprint,
             o.leak.fingerprint[0] ? ")" : "");
    cf_req_audit_reason(req, note);
    json_t *leak =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:s, s:s, s:{s:s, s:s, s:s}, s:b}",
                  "secretId", o.leak.secret_id, "projectId", o.project_id, "environment",
                  o.env_slug, "secretPath", o.path, "secretKey", o.key, "version",
                  (json_int_t)o.leak.version, "leakedAt", cf_json_time(o.leak.leaked_at), "source",
                  o.leak.source, "fingerprint", o.leak.fingerprint, "by", "kind", o.leak.actor_kind,
                  "id", o.leak.actor_id, "name", o.leak.actor_name, "created", o.created);
    json_t *rotation = render_rotation(&o);
    if (!leak || !rotation) {
        json_decref(leak);
        json_decref(rotation);
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    return cf_render_reply(json_pack("{s:o, s:o}", "leak", leak, "rotation", rotation), out, err);
}

const struct cf_route cf_routes_leaks[] = {
    {"POST", "/api/v1/secrets/leaked", mark_leaked, false, NULL},
    {NULL, NULL, NULL, false, NULL},
};
