/* HTTP handlers for folders: create, list (direct or recursive), delete by id or name under a
 * parent path, and the refusal of renames and moves. See docs/api.md, Folders. workspaceId and
 * projectId are aliases, as are path and directory; each field is read from the body first, then
 * from the query. */
#include "api/http.h"
#include "api/place.h"
#include "api/render.h"
#include "core/projects.h"
#include "util/banned.h"

/* Alias names of the project field, the first present winning. */
static const char *const project_names[] = {"workspaceId", "projectId", NULL};

/* POST /api/v1/folders {workspaceId, environment, name, path = "/", description?} -> {folder} */
static enum cf_rc create_folder(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_folder folder = {0};
    json_t *body = NULL;
    const char *project = NULL, *env = NULL, *path = NULL, *name = NULL, *description = NULL;
    enum cf_rc rc;

    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_api_read_place(req, body, project_names, &project, &env, &path, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "name", true, &name, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "description", false, &description, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_folders_create(cf_req_core(req), cf_req_principal(req), project, env, path, name,
                           description, &folder, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("folder", cf_render_folder(&folder), out, err);
    return rc;
}

/* GET /api/v1/folders?workspaceId&environment&path=/&recursive=false -> {folders: [Folder]} */
static enum cf_rc list_folders(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_folder_list list = {0};
    const char *project = NULL, *env = NULL, *path = NULL;
    bool recursive = false;
    json_t *array = NULL;
    enum cf_rc rc;

    rc = cf_api_read_place(req, NULL, project_names, &project, &env, &path, err);
    if (rc == CF_OK)
        rc = cf_req_query_bool(req, "recursive", false, &recursive, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_folders_list(cf_req_core(req), cf_req_principal(req), project, env, path, recursive,
                         &list, err);
    if (rc != CF_OK)
        return rc;
    array = json_array();
    for (size_t i = 0; array && i < list.n; i++)
        array = cf_render_append(array, cf_render_folder(&list.items[i]));
    rc = cf_render_reply_member("folders", array, out, err);
    cf_folder_list_release(&list);
    return rc;
}

/* DELETE /api/v1/folders/{folderIdOrName} {workspaceId, environment, path = "/"} -> {folder} */
static enum cf_rc delete_folder(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_folder folder = {0};
    json_t *body = NULL;
    const char *project = NULL, *env = NULL, *path = NULL;
    enum cf_rc rc;

    rc = cf_req_json(req, false, &body, err);
    if (rc == CF_OK)
        rc = cf_api_read_place(req, body, project_names, &project, &env, &path, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_folders_delete(cf_req_core(req), cf_req_principal(req), project, env, path,
                           cf_req_param(req, "folderIdOrName"), &folder, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("folder", cf_render_folder(&folder), out, err);
    return rc;
}

/* PATCH /api/v1/folders/{folderIdOrName}: Infisical renames (and moves) folders here; Coffer
 * refuses with 409 (core/projects.h, cf_folders_update says why). */
static enum cf_rc update_folder(struct cf_req *req, json_t **out, struct cf_err *err)
{
    (void)out;
    return cf_folders_update(cf_req_core(req), cf_req_principal(req), err);
}

const struct cf_route cf_routes_folders[] = {
    {"POST", "/api/v1/folders", create_folder, false},
    {"GET", "/api/v1/folders", list_folders, false},
    {"PATCH", "/api/v1/folders/:folderIdOrName", update_folder, false},
    {"DELETE", "/api/v1/folders/:folderIdOrName", delete_folder, false},
    {NULL, NULL, NULL, false},
};
