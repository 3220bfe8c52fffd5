/* GET /api/v1/inventory (docs/api.md "Inventory"): every secret the caller may see with
 * where it lives, its version count, last change, expiry and last read, and per environment the
 * machine identities that can read there (the blast radius). Query: workspaceId or projectId (id or
 * slug); without one, every project the caller can see; identityId (administrators only): the
 * inventory as that machine identity would see it, i.e. what it can read; leaked=true: only the
 * secrets marked leaked (core/leaks.h). No value is ever read. */
#include <string.h>

#include "api/http.h"
#include "api/render.h"
#include "core/access.h"
#include "core/inventory.h"
#include "core/leases.h"
#include "util/time.h"
#include "util/banned.h"

static const char *const project_names[] = {"workspaceId", "projectId", NULL};

/* {kind, id, name} of the last reader, or null while reads are not recorded or when the caller may
 * not see who it was. */
static json_t *render_last_read_by(const struct cf_inventory_secret *s)
{
    if (!s->last_read_known || !s->last_read_by_kind[0])
        return json_null();
    return json_pack("{s:s, s:s, s:s}", "kind", s->last_read_by_kind, "id", s->last_read_by_id,
                     "name", s->last_read_by_name);
}

/* "syncedTo": every destination that holds a copy. */
static json_t *render_copies(const struct cf_inventory_secret *s)
{
    json_t *array = json_array();
    for (size_t i = 0; array && i < s->n_copies; i++) {
        const struct cf_inventory_copy *c = &s->copies[i];
        array = cf_render_append(array,
                                 json_pack("{s:s, s:s, s:s, s:s, s:I, s:o}", "syncId", c->sync_id,
                                           "syncName", c->sync_name, "destination", c->destination,
                                           "name", c->name, "version", (json_int_t)c->version,
                                           "pushedAt", cf_json_time(c->pushed_at)));
    }
    return array;
}

/* "leak": {leakedAt, source, by: {kind, name}} for a secret marked leaked, else null. */
static json_t *render_leak(const struct cf_inventory_secret *s)
{
    if (!s->leaked)
        return json_null();
    return json_pack("{s:o, s:s, s:{s:s, s:s}}", "leakedAt", cf_json_time(s->leaked_at), "source",
                     s->leak_source, "by", "kind", s->leaked_by_kind, "name", s->leaked_by_name);
}

static json_t *render_secret(const struct cf_inventory_secret *s)
{
    return json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:o*, s:b, s:o*}", "secretId",
        s->secret_id, "secretKey", s->key, "secretPath", s->path, "version", (json_int_t)s->version,
        "versionCount", (json_int_t)s->version_count, "createdAt", cf_json_time(s->created_at),
        "lastChangedAt", cf_json_time(s->last_changed_at), "expiresAt", cf_json_time(s->expires_at),
        "secretReminderRepeatDays",
        s->reminder_repeat_days > 0 ? json_integer(s->reminder_repeat_days) : json_null(),
        "lastReadAt", s->last_read_known ? cf_json_time(s->last_read_at) : json_null(),
        "lastReadBy", render_last_read_by(s), "lastReadKnown", s->last_read_known, "syncedTo",
        render_copies(s), "leaked", s->leaked, "leak", render_leak(s));
}

static json_t *render_reader(const struct cf_inventory_reader *r)
{
    json_t *paths = json_array();
    for (size_t i = 0; paths && i < r->n_paths; i++)
        paths = cf_render_append(paths, json_string(r->paths[i]));
    return json_pack("{s:s, s:s, s:s, s:s, s:o}", "kind", r->kind, "identityId", r->identity_id,
                     "identityName", r->identity_name, "role", r->role, "paths", paths);
}

/* leaked_only: only the secrets marked leaked (?leaked=true). */
static json_t *render_env(const struct cf_inventory_env *env, bool leaked_only)
{
    json_t *readers = json_array(), *secrets = json_array();
    for (size_t i = 0; readers && i < env->n_readers; i++)
        readers = cf_render_append(readers, render_reader(&env->readers[i]));
    for (size_t i = 0; secrets && i < env->n_secrets; i++)
        if (!leaked_only || env->secrets[i].leaked)
            secrets = cf_render_append(secrets, render_secret(&env->secrets[i]));
    return json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", env->id, "slug", env->slug, "name",
                     env->name, "readers", readers, "secrets", secrets);
}

static json_t *render_project(const struct cf_inventory_project *p, bool leaked_only)
{
    json_t *envs = json_array();
    for (size_t i = 0; envs && i < p->n_envs; i++)
        envs = cf_render_append(envs, render_env(&p->envs[i], leaked_only));
    return json_pack("{s:s, s:s, s:s, s:o}", "id", p->id, "name", p->name, "slug", p->slug,
                     "environments", envs);
}

/* The live access grants (core/access.h) the caller may see: of project when it decides there, of
 * every project for org administrators, else (no project named) its own; [] otherwise. NULL when
 * out of memory. */
static json_t *live_grants(struct cf_req *req, const char *project)
{
    struct cf_access_request_list list = {0};
    struct cf_err ignored;
    const struct cf_principal *who = cf_req_principal(req);
    json_t *array = json_array();
    /* a refusal (not a decider in project, or a machine identity) leaves the list empty */
    cf_access_request_list(cf_req_core(req), who, project, "live", &list, &ignored);
    for (size_t i = 0; array && i < list.n; i++)
        array = cf_render_append(array, cf_render_access_request(&list.items[i]));
    cf_access_request_list_release(&list);
    return array;
}

/* The live leases of dynamic secrets (core/leases.h) the caller may see: every lease for the admin
 * and org admins, else its own; of project (id or slug) when one is named. NULL when out of memory.
 */
static json_t *live_leases(struct cf_req *req, const char *project)
{
    struct cf_lease_view_list list = {0};
    struct cf_err ignored;
    const struct cf_principal *who = cf_req_principal(req);
    json_t *array = json_array();
    cf_leases_list(cf_req_core(req), who, NULL, cf_principal_is_admin(who), false, &list, &ignored);
    for (size_t i = 0; array && i < list.n; i++) {
        const struct cf_lease_view *v = &list.items[i];
        if (project && strcmp(project, v->lease.project_id) != 0 &&
            strcmp(project, v->dynamic.project_slug) != 0)
            continue;
        array = cf_render_append(
            array, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "id", v->lease.id,
                             "dynamicSecret", v->dynamic.ds.name, "projectId", v->lease.project_id,
                             "environment", v->dynamic.env_slug, "secretPath",
                             v->dynamic.ds.folder_path, "credential", v->lease.provider_id, "actor",
                             v->lease.actor_name, "expireAt", cf_json_time(v->lease.expires_at)));
    }
    cf_lease_view_list_release(&list);
    return array;
}

/* GET /api/v1/inventory?workspaceId=&identityId=&leaked= -> {generatedAt, readersComplete,
 * projects: [...], accessGrants: [...], leases: [...]} */
static enum cf_rc inventory(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_inventory inv = {0};
    const char *project = NULL;
    enum cf_rc rc = cf_req_field(req, NULL, project_names, false, &project, err);
    if (rc != CF_OK)
        return rc;
    if (project && !*project)
        return cf_err_field(err, CF_EVALIDATION, "workspaceId",
                            "workspaceId: must not be empty (leave it out for every project)");
    const char *identity_id = NULL;
    rc = cf_req_query(req, "identityId", &identity_id, err);
    if (rc != CF_OK)
        return rc;
    if (identity_id && !*identity_id)
        return cf_err_field(
            err, CF_EVALIDATION, "identityId",
            "identityId: must not be empty (leave it out for the caller's own view)");
    bool leaked_only = false;
    rc = cf_req_query_bool(req, "leaked", false, &leaked_only, err);
    if (rc != CF_OK)
        return rc;
    int64_t now = cf_now_ms();
    if (identity_id)
        rc = cf_inventory_build_for_identity(cf_req_core(req), cf_req_principal(req), identity_id,
                                             project, &inv, err);
    else
        rc = cf_inventory_build(cf_req_core(req), cf_req_principal(req), project, &inv, err);
    if (rc != CF_OK)
        return rc;
    json_t *projects = json_array();
    for (size_t i = 0; projects && i < inv.n_projects; i++)
        projects = cf_render_append(projects, render_project(&inv.projects[i], leaked_only));
    /* the access grants of users and the leases are no part of what a machine identity can read */
    json_t *grants = identity_id ? json_array() : live_grants(req, project);
    json_t *leases = identity_id ? json_array() : live_leases(req, project);
    rc = cf_render_reply(projects && grants && leases
                             ? json_pack("{s:o, s:b, s:o, s:o, s:o}", "generatedAt",
                                         cf_json_time(now), "readersComplete", inv.readers_complete,
                                         "projects", projects, "accessGrants", grants, "leases",
                                         leases)
                             : NULL,
                         out, err);
    if (!projects || !grants || !leases) {
        json_decref(projects);
        json_decref(grants);
        json_decref(leases);
    }
    cf_inventory_release(&inv);
    return rc;
}

const struct cf_route cf_routes_inventory[] = {
    {"GET", "/api/v1/inventory", inventory, false, NULL},
    {NULL, NULL, NULL, false, NULL},
};
