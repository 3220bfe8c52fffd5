/* JSON renderings of projects, environments, folders, imports and tags (see render.h). Field names
 * and constant fields follow Infisical's objects so that its SDK and CLI parse them. */
#include "api/http.h"
#include "api/render.h"
#include "core/access.h"
#include "core/authz.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

json_t *cf_render_env(const struct cf_env *env)
{
    return json_pack("{s:s, s:s, s:s, s:i, s:s, s:o, s:o}", "id", env->id, "name", env->name,
                     "slug", env->slug, "position", env->position, "projectId", env->project_id,
                     "createdAt", cf_json_time(env->created_at), "updatedAt",
                     cf_json_time(env->updated_at));
}

json_t *cf_render_env_brief(const struct cf_env *env)
{
    return json_pack("{s:s, s:s, s:s}", "id", env->id, "name", env->name, "slug", env->slug);
}

json_t *cf_render_env_list(const struct cf_env_list *envs)
{
    json_t *array = json_array();
    for (size_t i = 0; array && i < envs->n; i++)
        array = cf_render_append(array, cf_render_env(&envs->items[i]));
    return array;
}

json_t *cf_render_project(const struct cf_project_view *view)
{
    const struct cf_project *p = &view->project;
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "id", p->id, "name", p->name,
                     "slug", p->slug, "description", p->description, "type", "secret-manager",
                     "environments", cf_render_env_list(&view->envs), "createdAt",
                     cf_json_time(p->created_at), "updatedAt", cf_json_time(p->updated_at));
}

json_t *cf_render_folder(const struct cf_folder *folder)
{
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:s, s:i, s:b, s:o, s:o}", "id", folder->id, "name",
        folder->name[0] ? folder->name : "root", "path", folder->path, "envId", folder->env_id,
        "parentId", folder->parent_id[0] ? json_string(folder->parent_id) : json_null(),
        "description", folder->description, "version", 1, "isReserved", 0, "createdAt",
        cf_json_time(folder->created_at), "updatedAt", cf_json_time(folder->updated_at));
}

json_t *cf_render_import(const struct cf_import_view *view)
{
    const struct cf_import *imp = &view->import;
    return json_pack("{s:s, s:s, s:o, s:i, s:s, s:b, s:o, s:o}", "id", imp->id, "importPath",
                     imp->import_path, "importEnv", cf_render_env_brief(&view->env), "position",
                     imp->position, "folderId", imp->folder_id, "isReplication", 0, "createdAt",
                     cf_json_time(imp->created_at), "updatedAt", cf_json_time(imp->updated_at));
}

json_t *cf_render_tag(const struct cf_tag *tag)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "id", tag->id, "slug", tag->slug,
                     "name", tag->name, "color", tag->color, "projectId", tag->project_id,
                     "createdAt", cf_json_time(tag->created_at), "updatedAt",
                     cf_json_time(tag->updated_at));
}

json_t *cf_render_tag_brief(const struct cf_tag *tag)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "id", tag->id, "slug", tag->slug, "name", tag->name,
                     "color", tag->color);
}

json_t *cf_render_append(json_t *array, json_t *item)
{
    /* json_array_append_new frees item whatever happens, also when array is NULL. */
    if (json_array_append_new(array, item) != 0) {
        json_decref(array);
        return NULL;
    }
    return array;
}

enum cf_rc cf_render_reply(json_t *body, json_t **out, struct cf_err *err)
{
    *out = body;
    if (!body)
        return cf_err_set(err, CF_ENOMEM, "out of memory while rendering the response");
    return CF_OK;
}

enum cf_rc cf_render_reply_member(const char *name, json_t *value, json_t **out, struct cf_err *err)
{
    return cf_render_reply(value ? json_pack("{s:o}", name, value) : NULL, out, err);
}

json_t *cf_render_json_text(const char *text, json_t *fallback)
{
    json_t *v = text && text[0] ? json_loads(text, 0, NULL) : NULL;
    if (v) {
        json_decref(fallback);
        return v;
    }
    return fallback;
}

/* AccessRequest: {id, user: {id, email}, projectId, environment, secretPath, actions: [..],
 * duration (seconds asked for), reason, status ("pending", "granted", "expired", "denied",
 * "revoked"), createdAt, decidedBy, decidedAt, comment, startsAt, endsAt, revokedBy, revokedAt}. */
json_t *cf_render_access_request(const struct cf_access_request *r)
{
    json_t *actions = json_array();
    static const struct {
        const char *name;
        enum cf_action action;
    } names[] = {{"read", CF_ACTION_READ},
                 {"create", CF_ACTION_CREATE},
                 {"edit", CF_ACTION_EDIT},
                 {"delete", CF_ACTION_DELETE}};
    for (size_t i = 0; actions && i < CF_ARRAY_SIZE(names); i++)
        if (r->actions & CF_ACTION_BIT(names[i].action))
            actions = cf_render_append(actions, json_string(names[i].name));
    if (!actions)
        return NULL;
    return json_pack("{s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:o, s:I, s:s, s:s, s:o, s:s, s:o, s:s,"
                     " s:o, s:o, s:s, s:o}",
                     "id", r->id, "user", "id", r->user_id, "email", r->user_email, "projectId",
                     r->project_id, "environment", r->env_slug, "secretPath", r->path_glob,
                     "actions", actions, "duration", (json_int_t)r->duration_s, "reason", r->reason,
                     "status", cf_access_request_state(r, cf_now_ms()), "createdAt",
                     cf_json_time(r->created_at), "decidedBy", r->decided_by, "decidedAt",
                     cf_json_time(r->decided_at), "comment", r->comment, "startsAt",
                     cf_json_time(r->starts_at), "endsAt", cf_json_time(r->ends_at), "revokedBy",
                     r->revoked_by, "revokedAt", cf_json_time(r->revoked_at));
}
