/* HTTP handlers for access requests and temporary grants (core/access.h, docs/approvals.md
 * "Access requests"): /api/v1/access-requests. Every request and decision is audited with the
 * request's id and place; reads made under a grant are audited by the server naming the grant
 * (server.c). */
#include <stdio.h>
#include <string.h>

#include "api/http.h"
#include "api/render.h"
#include "core/access.h"
#include "core/authz.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

/* Names the request in the audit record: its place, and "access request ID of EMAIL: ACTIONS
 * until T" as the reason. */
static void audit_request(struct cf_req *req, const char *action, const struct cf_access_request *r)
{
    char note[384], actions[CF_ACCESS_ACTIONS_TEXT_MAX], until[CF_TIME_RFC3339_LEN] = "";
    cf_access_actions_text(r->actions, actions);
    if (r->ends_at)
        cf_time_format(r->ends_at, until);
    snprintf(note, sizeof(note), "access request %s of %.120s: %s%s%s", r->id, r->user_email,
             actions, until[0] ? " until " : "", until);
    cf_req_audit(req, action, r->project_id, r->env_slug, r->path_glob);
    cf_req_audit_reason(req, note);
}

/* A string field that is either a string or (for "actions") an array of strings joined by
 * commas into buf. */
static enum cf_rc actions_field(json_t *body, char *buf, size_t size, const char **value,
                                struct cf_err *err)
{
    json_t *v = json_object_get(body, "actions");
    *value = NULL;
    if (!v || json_is_null(v))
        return CF_OK;
    if (json_is_string(v)) {
        *value = json_string_value(v);
        return CF_OK;
    }
    if (!json_is_array(v))
        return cf_err_field(err, CF_EINVAL, "actions",
                            "actions: must be a list such as [\"read\"] or \"read,edit\"");
    size_t at = 0, i;
    json_t *item;
    buf[0] = '\0';
    json_array_foreach(v, i, item)
    {
        const char *name = json_string_value(item);
        int n = name ? snprintf(buf + at, size - at, "%s%s", at ? "," : "", name) : -1;
        if (n < 0 || (size_t)n >= size - at)
            return cf_err_field(err, CF_EVALIDATION, "actions",
                                "actions: each must be one of read, create, edit, delete");
        at += (size_t)n;
    }
    *value = buf;
    return CF_OK;
}

/* POST /api/v1/access-requests {projectId, environment, secretPath?, actions?, duration, reason}
 * -> {accessRequest} */
static enum cf_rc create_request(struct cf_req *req, json_t **out, struct cf_err *err)
{
    static const char *const project_names[] = {"projectId", "workspaceId", "projectSlug", NULL};
    static const char *const duration_names[] = {"duration", "temporaryRange", NULL};
    static const char *const reason_names[] = {"reason", "note", NULL};
    struct cf_access_spec spec = {0};
    struct cf_access_request r;
    char actions[64];
    json_t *body = NULL;

    cf_req_audit(req, "access-requests.create", NULL, NULL, NULL);
    enum cf_rc rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_req_field(req, body, project_names, false, &spec.project, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "environment", false, &spec.env, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "secretPath", false, &spec.path, err);
    if (rc == CF_OK)
        rc = actions_field(body, actions, sizeof(actions), &spec.actions, err);
    if (rc == CF_OK)
        rc = cf_req_field(req, body, duration_names, false, &spec.duration, err);
    if (rc == CF_OK)
        rc = cf_req_field(req, body, reason_names, false, &spec.reason, err);
    if (rc == CF_OK)
        rc = cf_access_request_create(cf_req_core(req), cf_req_principal(req), &spec, &r, err);
    if (rc != CF_OK)
        return rc;
    audit_request(req, "access-requests.create", &r);
    return cf_render_reply_member("accessRequest", cf_render_access_request(&r), out, err);
}

/* GET /api/v1/access-requests?projectId=&status= -> {accessRequests: [..]} */
static enum cf_rc list_requests(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_access_request_list list = {0};
    const char *project = NULL, *status = NULL;
    json_t *array = NULL;
    static const char *const project_names[] = {"projectId", "workspaceId", "projectSlug", NULL};

    cf_req_audit(req, "access-requests.list", NULL, NULL, NULL);
    enum cf_rc rc = cf_req_field(req, NULL, project_names, false, &project, err);
    if (rc == CF_OK)
        rc = cf_req_query(req, "status", &status, err);
    if (rc == CF_OK)
        rc = cf_access_request_list(cf_req_core(req), cf_req_principal(req), project, status, &list,
                                    err);
    if (rc != CF_OK)
        return rc;
    array = json_array();
    for (size_t i = 0; array && i < list.n; i++)
        array = cf_render_append(array, cf_render_access_request(&list.items[i]));
    rc = cf_render_reply_member("accessRequests", array, out, err);
    cf_access_request_list_release(&list);
    return rc;
}

/* GET /api/v1/access-requests/{id} -> {accessRequest} */
static enum cf_rc get_request(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_access_request r;
    enum cf_rc rc = cf_access_request_get(cf_req_core(req), cf_req_principal(req),
                                          cf_req_param(req, "requestId"), &r, err);
    if (rc != CF_OK)
        return rc;
    cf_req_audit(req, "access-requests.get", r.project_id, r.env_slug, r.path_glob);
    return cf_render_reply_member("accessRequest", cf_render_access_request(&r), out, err);
}

enum decision { GRANT, DENY, REVOKE };

static const char *const decision_actions[] = {"access-requests.grant", "access-requests.deny",
                                               "access-requests.revoke"};

/* POST /api/v1/access-requests/{id}/grant {duration?, comment?}, /deny {comment?},
 * /revoke {comment?} -> {accessRequest} as decided */
static enum cf_rc decide(struct cf_req *req, json_t **out, struct cf_err *err)
{
    static const char *const duration_names[] = {"duration", "temporaryRange", NULL};
    const enum decision *what = cf_req_route_data(req);
    const char *id = cf_req_param(req, "requestId");
    const char *duration = NULL, *comment = NULL;
    struct cf_access_request r;
    json_t *body = NULL;
    char target[CF_UUID_LEN + 96];

    snprintf(target, sizeof(target), "access request %.64s", id);
    cf_req_audit(req, decision_actions[*what], NULL, NULL, target);
    enum cf_rc rc = cf_req_json(req, false, &body, err);
    if (rc == CF_OK && body && *what == GRANT)
        rc = cf_req_field(req, body, duration_names, false, &duration, err);
    if (rc == CF_OK && body)
        rc = cf_json_string(body, "comment", false, &comment, err);
    if (rc != CF_OK)
        return rc;
    struct cf_core *core = cf_req_core(req);
    const struct cf_principal *who = cf_req_principal(req);
    if (*what == GRANT)
        rc = cf_access_request_grant(core, who, id, duration, comment, &r, err);
    else if (*what == DENY)
        rc = cf_access_request_deny(core, who, id, comment, &r, err);
    else
        rc = cf_access_request_revoke(core, who, id, comment, &r, err);
    if (rc != CF_OK)
        return rc;
    audit_request(req, decision_actions[*what], &r);
    return cf_render_reply_member("accessRequest", cf_render_access_request(&r), out, err);
}

static const enum decision grant = GRANT, deny = DENY, revoke = REVOKE;

const struct cf_route cf_routes_access[] = {
    {"POST", "/api/v1/access-requests", create_request, false},
    {"GET", "/api/v1/access-requests", list_requests, false},
    {"GET", "/api/v1/access-requests/:requestId", get_request, false},
    {"POST", "/api/v1/access-requests/:requestId/grant", decide, false, &grant},
    {"POST", "/api/v1/access-requests/:requestId/deny", decide, false, &deny},
    {"POST", "/api/v1/access-requests/:requestId/revoke", decide, false, &revoke},
    {NULL, NULL, NULL, false},
};
