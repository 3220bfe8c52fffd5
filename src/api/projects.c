/* HTTP handlers for projects (Infisical's "workspaces"): create, list, get, delete. See
 * docs/api.md, Projects. */
#include <string.h>

#include "api/http.h"
#include "api/render.h"
#include "core/projects.h"
#include "util/banned.h"

/* POST /api/v2/workspace {projectName, slug?, projectDescription?, type?} -> {project} */
static enum cf_rc create_project(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_project_view view = {0};
    json_t *body = NULL;
    const char *name = NULL, *slug = NULL, *description = NULL, *type = NULL;
    enum cf_rc rc;

    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "projectName", true, &name, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "slug", false, &slug, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "projectDescription", false, &description, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "type", false, &type, err);
    if (rc != CF_OK)
        return rc;
    if (type && strcmp(type, "secret-manager") != 0)
        return cf_err_field(err, CF_EVALIDATION, "type",
                            "type: only 'secret-manager' is supported");
    rc = cf_projects_create(cf_req_core(req), cf_req_principal(req), name, slug, description, &view,
                            err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("project", cf_render_project(&view), out, err);
    cf_project_view_release(&view);
    return rc;
}

/* GET /api/v1/workspace -> {workspaces: [Project]} */
static enum cf_rc list_projects(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_project_view_list list = {0};
    json_t *array = NULL;
    enum cf_rc rc;

    rc = cf_projects_list(cf_req_core(req), cf_req_principal(req), &list, err);
    if (rc != CF_OK)
        return rc;
    array = json_array();
    for (size_t i = 0; array && i < list.n; i++)
        array = cf_render_append(array, cf_render_project(&list.items[i]));
    rc = cf_render_reply_member("workspaces", array, out, err);
    cf_project_view_list_release(&list);
    return rc;
}

/* GET /api/v1/workspace/{projectId} -> {workspace: Project} */
static enum cf_rc get_project(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_project_view view = {0};
    enum cf_rc rc;

    rc = cf_projects_get(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "projectId"),
                         &view, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("workspace", cf_render_project(&view), out, err);
    cf_project_view_release(&view);
    return rc;
}

/* DELETE /api/v1/workspace/{projectId} -> {workspace: Project} (as it was) */
static enum cf_rc delete_project(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_project_view view = {0};
    enum cf_rc rc;

    rc = cf_projects_delete(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "projectId"),
                            &view, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("workspace", cf_render_project(&view), out, err);
    cf_project_view_release(&view);
    return rc;
}

const struct cf_route cf_routes_projects[] = {
    {"POST", "/api/v2/workspace", create_project, false},
    {"GET", "/api/v1/workspace", list_projects, false},
    {"GET", "/api/v1/workspace/:projectId", get_project, false},
    {"DELETE", "/api/v1/workspace/:projectId", delete_project, false},
    {NULL, NULL, NULL, false},
};
