/* HTTP handlers for secret imports (a folder showing another environment's folder): list, create,
 * delete. See docs/api.md, Imports. projectId and workspaceId are aliases, as are path and
 * directory; each field is read from the body first, then from the query. */
#include <string.h>

#include "api/http.h"
#include "api/place.h"
#include "api/render.h"
#include "core/projects.h"
#include "util/banned.h"

/* Alias names of the project field, the first present winning. */
static const char *const project_names[] = {"projectId", "workspaceId", NULL};

/* A required string member of the "import" object, named "import.<member>" in errors. */
static enum cf_rc import_string(json_t *import, const char *member, const char *field,
                                const char **value, struct cf_err *err)
{
    json_t *v = json_object_get(import, member);
    *value = NULL;
    if (!v || json_is_null(v))
        return cf_err_field(err, CF_EVALIDATION, field, "%s: required", field);
    if (!json_is_string(v))
        return cf_err_field(err, CF_EINVAL, field, "%s: expected a string", field);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return cf_err_field(err, CF_EINVAL, field, "%s: must not contain NUL characters", field);
    *value = json_string_value(v);
    return CF_OK;
}

/* {message, secretImport} */
static enum cf_rc reply(const char *message, const struct cf_import_view *view, json_t **out,
                        struct cf_err *err)
{
    return cf_render_reply(
        json_pack("{s:s, s:o}", "message", message, "secretImport", cf_render_import(view)), out,
        err);
}

/* GET /api/v2/secret-imports?projectId&environment&path=/ -> {secretImports: [...]} */
static enum cf_rc list_imports(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_import_view_list list = {0};
    const char *project = NULL, *env = NULL, *path = NULL;
    json_t *array = NULL;
    enum cf_rc rc;

    rc = cf_api_read_place(req, NULL, project_names, &project, &env, &path, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_imports_list(cf_req_core(req), cf_req_principal(req), project, env, path, &list, err);
    if (rc != CF_OK)
        return rc;
    array = json_array();
    for (size_t i = 0; array && i < list.n; i++)
        array = cf_render_append(array, cf_render_import(&list.items[i]));
    rc = cf_render_reply_member("secretImports", array, out, err);
    cf_import_view_list_release(&list);
    return rc;
}

/* POST /api/v2/secret-imports {projectId, environment, path = "/", import: {environment, path}} */
static enum cf_rc create_import(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_import_view view = {0};
    json_t *body = NULL, *import = NULL;
    const char *project = NULL, *env = NULL, *path = NULL, *import_env = NULL, *import_path = NULL;
    enum cf_rc rc;

    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_api_read_place(req, body, project_names, &project, &env, &path, err);
    if (rc != CF_OK)
        return rc;
    import = json_object_get(body, "import");
    if (!import || json_is_null(import))
        return cf_err_field(err, CF_EVALIDATION, "import", "import: required");
    if (!json_is_object(import))
        return cf_err_field(err, CF_EINVAL, "import", "import: expected an object");
    rc = import_string(import, "environment", "import.environment", &import_env, err);
    if (rc == CF_OK)
        rc = import_string(import, "path", "import.path", &import_path, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_imports_create(cf_req_core(req), cf_req_principal(req), project, env, path, import_env,
                           import_path, &view, err);
    if (rc == CF_OK)
        rc = reply("Successfully created secret import", &view, out, err);
    return rc;
}

/* DELETE /api/v2/secret-imports/{importId} {projectId, environment, path} */
static enum cf_rc delete_import(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_import_view view = {0};
    json_t *body = NULL;
    const char *project = NULL, *env = NULL, *path = NULL;
    enum cf_rc rc;

    rc = cf_req_json(req, false, &body, err);
    if (rc == CF_OK)
        rc = cf_api_read_place(req, body, project_names, &project, &env, &path, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_imports_delete(cf_req_core(req), cf_req_principal(req), project, env, path,
                           cf_req_param(req, "importId"), &view, err);
    if (rc == CF_OK)
        rc = reply("Successfully deleted secret import", &view, out, err);
    return rc;
}

const struct cf_route cf_routes_imports[] = {
    {"GET", "/api/v2/secret-imports", list_imports, false},
    {"POST", "/api/v2/secret-imports", create_import, false},
    {"DELETE", "/api/v2/secret-imports/:importId", delete_import, false},
    {NULL, NULL, NULL, false},
};
