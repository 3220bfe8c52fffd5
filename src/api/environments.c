/* HTTP handlers for a project's environments: list, create, update (rename, re-slug, move), delete.
 * See docs/api.md, Environments. Changes answer {message, workspace (the project id), environment},
 * as Infisical does. */
#include <limits.h>

#include "api/http.h"
#include "api/render.h"
#include "core/projects.h"
#include "util/banned.h"

/* {message, workspace, environment} */
static enum cf_rc reply(const char *message, const struct cf_env *env, json_t **out,
                        struct cf_err *err)
{
    return cf_render_reply(json_pack("{s:s, s:s, s:o}", "message", message, "workspace",
                                     env->project_id, "environment", cf_render_env(env)),
                           out, err);
}

/* GET /api/v1/workspace/{projectId}/environments -> {environments: [Environment]} */
static enum cf_rc list_envs(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_env_list envs = {0};
    char project_id[CF_UUID_LEN];
    enum cf_rc rc;

    rc = cf_envs_list(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "projectId"),
                      project_id, &envs, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("environments", cf_render_env_list(&envs), out, err);
    cf_env_list_release(&envs);
    return rc;
}

/* POST /api/v1/workspace/{projectId}/environments {name, slug, position?} */
static enum cf_rc create_env(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_env env = {0};
    json_t *body = NULL;
    const char *name = NULL, *slug = NULL;
    long long position = 0;
    bool has_position = false;
    enum cf_rc rc;

    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "name", true, &name, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "slug", true, &slug, err);
    if (rc == CF_OK)
        rc = cf_json_int(body, "position", 1, INT_MAX, &position, &has_position, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_envs_create(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "projectId"),
                        name, slug, has_position ? (int)position : 0, &env, err);
    if (rc == CF_OK)
        rc = reply("Successfully created new environment", &env, out, err);
    return rc;
}

/* PATCH /api/v1/workspace/{projectId}/environments/{envId} {name?, slug?, position?} */
static enum cf_rc update_env(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_env env = {0};
    struct cf_env_patch patch = {0};
    json_t *body = NULL;
    long long position = 0;
    bool has_position = false;
    enum cf_rc rc;

    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "name", false, &patch.name, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "slug", false, &patch.slug, err);
    if (rc == CF_OK)
        rc = cf_json_int(body, "position", 1, INT_MAX, &position, &has_position, err);
    if (rc != CF_OK)
        return rc;
    patch.position = has_position ? (int)position : 0;
    rc = cf_envs_update(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "projectId"),
                        cf_req_param(req, "envId"), &patch, &env, err);
    if (rc == CF_OK)
        rc = reply("Successfully updated environment", &env, out, err);
    return rc;
}

/* DELETE /api/v1/workspace/{projectId}/environments/{envId} */
static enum cf_rc delete_env(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_env env = {0};
    enum cf_rc rc;

    rc = cf_envs_delete(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "projectId"),
                        cf_req_param(req, "envId"), &env, err);
    if (rc == CF_OK)
        rc = reply("Successfully deleted environment", &env, out, err);
    return rc;
}

const struct cf_route cf_routes_environments[] = {
    {"GET", "/api/v1/workspace/:projectId/environments", list_envs, false},
    {"POST", "/api/v1/workspace/:projectId/environments", create_env, false},
    {"PATCH", "/api/v1/workspace/:projectId/environments/:envId", update_env, false},
    {"DELETE", "/api/v1/workspace/:projectId/environments/:envId", delete_env, false},
    {NULL, NULL, NULL, false},
};
