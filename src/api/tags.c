/* HTTP handlers for a project's tags: list, get by slug, create. See docs/api.md, Tags. */
#include "api/http.h"
#include "api/render.h"
#include "core/projects.h"
#include "util/banned.h"

/* GET /api/v1/projects/{projectId}/tags -> {workspaceTags: [Tag]} */
static enum cf_rc list_tags(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_tag_list list = {0};
    char project_id[CF_UUID_LEN];
    json_t *array = NULL;
    enum cf_rc rc;

    rc = cf_tags_list(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "projectId"),
                      project_id, &list, err);
    if (rc != CF_OK)
        return rc;
    array = json_array();
    for (size_t i = 0; array && i < list.n; i++)
        array = cf_render_append(array, cf_render_tag(&list.items[i]));
    rc = cf_render_reply_member("workspaceTags", array, out, err);
    cf_tag_list_release(&list);
    return rc;
}

/* GET /api/v1/projects/{projectId}/tags/slug/{tagSlug} -> {tag} */
static enum cf_rc get_tag(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_tag tag = {0};
    enum cf_rc rc;

    rc = cf_tags_get(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "projectId"),
                     cf_req_param(req, "tagSlug"), &tag, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("tag", cf_render_tag(&tag), out, err);
    return rc;
}

/* POST /api/v1/projects/{projectId}/tags {slug, name?, color?} -> {tag} */
static enum cf_rc create_tag(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_tag tag = {0};
    json_t *body = NULL;
    const char *slug = NULL, *name = NULL, *color = NULL;
    enum cf_rc rc;

    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "slug", true, &slug, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "name", false, &name, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "color", false, &color, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_tags_create(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "projectId"),
                        slug, name, color, &tag, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("tag", cf_render_tag(&tag), out, err);
    return rc;
}

const struct cf_route cf_routes_tags[] = {
    {"GET", "/api/v1/projects/:projectId/tags", list_tags, false},
    {"POST", "/api/v1/projects/:projectId/tags", create_tag, false},
    {"GET", "/api/v1/projects/:projectId/tags/slug/:tagSlug", get_tag, false},
    {NULL, NULL, NULL, false},
};
