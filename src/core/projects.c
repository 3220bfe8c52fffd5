/* Projects, environments, folders, imports and tags (see projects.h). Each operation resolves what
 * it is given (by id or slug) with Infisical's not-found wording, asks cf_authz_check once the
 * project is known, validates with names.h, and makes one store call per change, so that every
 * change is one transaction. Store errors other than not-found and duplicates pass through
 * unchanged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/names.h"
#include "core/projects.h"
#include "core/syncs.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

/* The environments every new project starts with. */
static const struct {
    const char *slug;
    const char *name;
} default_envs[] = {
    {"dev", "Development"},
    {"staging", "Staging"},
    {"prod", "Production"},
};

#define N_DEFAULT_ENVS (CF_ARRAY_SIZE(default_envs))

/* ---- helpers --------------------------------------------------------------------------------- */

static enum cf_rc required(const char *value, const char *field, struct cf_err *err)
{
    if (!value || !*value)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: required", field);
    return CF_OK;
}

/* A slug must also not look like a UUID: lookups take "id or slug", and such a slug could never be
 * found. */
static enum cf_rc slug_check(const char *slug, const char *field, struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    if (!slug)
        rc = cf_err_field(err, CF_EVALIDATION, field, "%s: required", field);
    if (rc == CF_OK)
        rc = cf_slug_check(slug, field, err);
    if (rc == CF_OK && cf_uuid_valid(slug))
        rc = cf_err_field(err, CF_EVALIDATION, field, "%s: a slug must not have the form of an id",
                          field);
    return rc;
}

/* Drops the wrapped data key, which no caller of this module needs. */
static void strip_key(struct cf_project *p)
{
    if (p->wrapped_key)
        sodium_memzero(p->wrapped_key, p->wrapped_key_len);
    free(p->wrapped_key);
    p->wrapped_key = NULL;
    p->wrapped_key_len = 0;
}

static enum cf_rc resolve_project(struct cf_core *core, const char *project, struct cf_project *out,
                                  struct cf_err *err)
{
    struct cf_store *st = core->store;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    if (!project || !*project)
        return cf_err_field(err, CF_EVALIDATION, "workspaceId", "workspaceId: required");
    rc = cf_store_project_get(st, project, out, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "Project with ID '%s' not found", project);
    if (rc != CF_OK)
        cf_project_release(out);
    else
        strip_key(out);
    return rc;
}

/* resolve_project, then asks whether who may do action on it; out is released on failure. */
static enum cf_rc authorized_project(struct cf_core *core, const struct cf_principal *who,
                                     enum cf_action action, const char *project,
                                     struct cf_project *out, struct cf_err *err)
{
    enum cf_rc rc = resolve_project(core, project, out, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_scope_not_found(core, who, action, project, NULL, NULL, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_authz_check(core, who, action, out->id, NULL, NULL, err);
    if (rc != CF_OK)
        cf_project_release(out);
    return rc;
}

/* The id of project, which who must be allowed to read, into project_id ("" on failure). */
static enum cf_rc readable_project_id(struct cf_core *core, const struct cf_principal *who,
                                      const char *project, char project_id[CF_UUID_LEN],
                                      struct cf_err *err)
{
    struct cf_project found;
    enum cf_rc rc = authorized_project(core, who, CF_ACTION_READ, project, &found, err);
    project_id[0] = '\0';
    if (rc == CF_OK)
        memcpy(project_id, found.id, CF_UUID_LEN);
    cf_project_release(&found);
    return rc;
}

static enum cf_rc env_not_found(const char *env, const char *project_id, struct cf_err *err)
{
    if (cf_uuid_valid(env))
        return cf_err_set(err, CF_ENOTFOUND,
                          "Environment with ID '%s' in project with ID %s not found", env,
                          project_id);
    return cf_err_set(err, CF_ENOTFOUND,
                      "Environment with slug '%s' in project with ID %s not found", env,
                      project_id);
}

static enum cf_rc resolve_env(struct cf_core *core, const char *project_id, const char *env,
                              struct cf_env *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    if (!env || !*env)
        return cf_err_field(err, CF_EVALIDATION, "environment", "environment: required");
    rc = cf_store_env_get(st, project_id, env, out, err);
    if (rc == CF_ENOTFOUND)
        rc = env_not_found(env, project_id, err);
    return rc;
}

static enum cf_rc folder_not_found(const char *path, const char *env_slug, struct cf_err *err)
{
    return cf_err_set(err, CF_ENOTFOUND,
                      "Folder with path '%s' in environment with slug '%s' not found", path,
                      env_slug);
}

/* Normalises path (NULL is the root) and resolves project, environment and the folder at path for
 * who about to do action there (cf_scope_resolve: what is missing is a 403 to a caller who may not
 * do action there; who NULL: always the 404). */
static enum cf_rc resolve_scope(struct cf_core *core, const struct cf_principal *who,
                                enum cf_action action, const char *project, const char *env,
                                const char *path, const char *path_field, struct cf_scope *out,
                                struct cf_err *err)
{
    char norm[CF_PATH_MAX + 1];
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    if (!project || !*project)
        return cf_err_field(err, CF_EVALIDATION, "workspaceId", "workspaceId: required");
    if (!env || !*env)
        return cf_err_field(err, CF_EVALIDATION, "environment", "environment: required");
    rc = cf_path_normalize(path ? path : "/", norm, path_field, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_scope_resolve(core, who, action, project, env, norm, out, err);
    if (rc == CF_OK)
        strip_key(&out->project);
    return rc;
}

/* resolve_scope (path named "path" in errors), then asks whether who may do action on the folder;
 * out is released on failure. */
static enum cf_rc authorized_scope(struct cf_core *core, const struct cf_principal *who,
                                   enum cf_action action, const char *project, const char *env,
                                   const char *path, struct cf_scope *out, struct cf_err *err)
{
    enum cf_rc rc = resolve_scope(core, who, action, project, env, path, "path", out, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_authz_check(core, who, action, out->project.id, &out->env, out->folder.path, err);
    if (rc != CF_OK)
        cf_scope_release(out);
    return rc;
}

/* The project's environments in position order, as a view. */
static enum cf_rc fill_view(struct cf_core *core, struct cf_project *project,
                            struct cf_project_view *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    enum cf_rc rc = cf_store_env_list(st, project->id, &out->envs, err);
    if (rc != CF_OK)
        return rc;
    strip_key(project);
    out->project = *project;
    memset(project, 0, sizeof(*project));
    return CF_OK;
}

void cf_project_view_release(struct cf_project_view *view)
{
    if (!view)
        return;
    cf_project_release(&view->project);
    cf_env_list_release(&view->envs);
}

void cf_project_view_list_release(struct cf_project_view_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->n; i++)
        cf_project_view_release(&list->items[i]);
    free(list->items);
    memset(list, 0, sizeof(*list));
}

/* ---- projects -------------------------------------------------------------------------------- */

enum cf_rc cf_projects_create(struct cf_core *core, const struct cf_principal *who,
                              const char *name, const char *slug, const char *description,
                              struct cf_project_view *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_project project;
    struct cf_env *envs = NULL;
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    memset(&project, 0, sizeof(project));
    rc = cf_authz_admin(who, "create projects", err);
    if (rc != CF_OK)
        goto out;
    rc = required(name, "projectName", err);
    if (rc == CF_OK)
        rc = cf_text_check(name, CF_NAME_MAX, true, "projectName", err);
    if (rc != CF_OK)
        goto out;
    if (slug) {
        rc = slug_check(slug, "slug", err);
        if (rc != CF_OK)
            goto out;
        cf_strlcpy(project.slug, slug, sizeof(project.slug));
    } else {
        cf_slugify(name, project.slug);
        rc = slug_check(project.slug, "projectName", err);
        if (rc != CF_OK)
            goto out;
    }
    if (description) {
        rc = cf_text_check(description, CF_DESC_MAX, false, "projectDescription", err);
        if (rc != CF_OK)
            goto out;
        cf_strlcpy(project.description, description, sizeof(project.description));
    }
    cf_strlcpy(project.name, name, sizeof(project.name));
    cf_uuid_new(project.id);
    project.created_at = now;
    project.updated_at = now;
    rc = cf_keyring_new_project_key(core->keyring, project.id, &project.wrapped_key,
                                    &project.wrapped_key_len, err);
    if (rc != CF_OK)
        goto out;

    envs = calloc(N_DEFAULT_ENVS, sizeof(*envs));
    if (!envs) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < N_DEFAULT_ENVS; i++) {
        cf_uuid_new(envs[i].id);
        memcpy(envs[i].project_id, project.id, sizeof(project.id));
        cf_strlcpy(envs[i].slug, default_envs[i].slug, sizeof(envs[i].slug));
        cf_strlcpy(envs[i].name, default_envs[i].name, sizeof(envs[i].name));
        envs[i].position = (int)i + 1;
        envs[i].created_at = now;
        envs[i].updated_at = now;
    }
    rc = cf_store_project_create(st, &project, envs, N_DEFAULT_ENVS, err);
    if (rc == CF_EEXIST)
        rc = cf_err_field(err, CF_EEXIST, "slug", "Project with slug '%s' already exists",
                          project.slug);
    if (rc != CF_OK)
        goto out;

    strip_key(&project);
    out->project = project;
    memset(&project, 0, sizeof(project));
    out->envs.items = envs;
    out->envs.n = N_DEFAULT_ENVS;
    envs = NULL;
out:
    free(envs);
    cf_project_release(&project);
    return rc;
}

enum cf_rc cf_projects_list(struct cf_core *core, const struct cf_principal *who,
                            struct cf_project_view_list *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_project_list projects = {0};
    struct cf_err denied;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = cf_store_project_list(st, &projects, err);
    if (rc != CF_OK)
        goto out;
    if (projects.n > 0) {
        out->items = calloc(projects.n, sizeof(*out->items));
        if (!out->items) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < projects.n; i++) {
        /* The list holds only what the caller may read; a refusal here is not an error. */
        rc = cf_authz_check(core, who, CF_ACTION_READ, projects.items[i].id, NULL, NULL, &denied);
        if (rc == CF_EFORBIDDEN)
            continue;
        if (rc != CF_OK) {
            *err = denied;
            goto out;
        }
        rc = fill_view(core, &projects.items[i], &out->items[out->n], err);
        if (rc != CF_OK)
            goto out;
        out->n++;
    }
    rc = CF_OK;
out:
    if (rc != CF_OK)
        cf_project_view_list_release(out);
    cf_project_list_release(&projects);
    return rc;
}

enum cf_rc cf_projects_get(struct cf_core *core, const struct cf_principal *who,
                           const char *project, struct cf_project_view *out, struct cf_err *err)
{
    struct cf_project found;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = authorized_project(core, who, CF_ACTION_READ, project, &found, err);
    if (rc == CF_OK)
        rc = fill_view(core, &found, out, err);
    if (rc != CF_OK)
        cf_project_view_release(out);
    cf_project_release(&found);
    return rc;
}

enum cf_rc cf_projects_delete(struct cf_core *core, const struct cf_principal *who,
                              const char *project, struct cf_project_view *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_project found = {0}; /* released below even when the admin check refuses first */
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    /* Deleting a whole project is server administration, not a project role's right. */
    rc = cf_authz_admin(who, "delete projects", err);
    if (rc == CF_OK)
        rc = authorized_project(core, who, CF_ACTION_ADMIN, project, &found, err);
    if (rc == CF_OK)
        rc = fill_view(core, &found, out, err);
    if (rc == CF_OK) {
        rc = cf_store_project_delete(st, out->project.id, err);
        if (rc == CF_ENOTFOUND) /* deleted concurrently */
            rc = cf_err_set(err, CF_ENOTFOUND, "Project with ID '%s' not found", project);
    }
    if (rc == CF_OK)
        cf_keyring_forget(core->keyring, out->project.id);
    else
        cf_project_view_release(out);
    cf_project_release(&found);
    return rc;
}

/* ---- environments ---------------------------------------------------------------------------- */

enum cf_rc cf_envs_list(struct cf_core *core, const struct cf_principal *who, const char *project,
                        char project_id[CF_UUID_LEN], struct cf_env_list *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = readable_project_id(core, who, project, project_id, err);
    if (rc == CF_OK)
        rc = cf_store_env_list(st, project_id, out, err);
    if (rc != CF_OK)
        project_id[0] = '\0';
    return rc;
}

/* CF_EVALIDATION unless 1 <= position <= max. */
static enum cf_rc position_check(int position, size_t max, struct cf_err *err)
{
    if (position < 1 || (size_t)position > max)
        return cf_err_field(err, CF_EVALIDATION, "position", "position: must be between 1 and %zu",
                            max);
    return CF_OK;
}

static enum cf_rc env_exists(const char *slug, const char *project_id, struct cf_err *err)
{
    return cf_err_field(err, CF_EEXIST, "slug",
                        "Environment with slug '%s' already exists in project with ID %s", slug,
                        project_id);
}

enum cf_rc cf_envs_create(struct cf_core *core, const struct cf_principal *who, const char *project,
                          const char *name, const char *slug, int position, struct cf_env *out,
                          struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_project found;
    struct cf_env_list envs = {0};
    struct cf_env env;
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    memset(&env, 0, sizeof(env));
    rc = authorized_project(core, who, CF_ACTION_ADMIN, project, &found, err);
    if (rc != CF_OK)
        return rc;
    rc = required(name, "name", err);
    if (rc == CF_OK)
        rc = cf_text_check(name, CF_NAME_MAX, true, "name", err);
    if (rc == CF_OK)
        rc = slug_check(slug, "slug", err);
    if (rc != CF_OK)
        goto out;
    if (position != 0) {
        rc = cf_store_env_list(st, found.id, &envs, err);
        if (rc == CF_OK)
            rc = position_check(position, envs.n + 1, err);
        if (rc != CF_OK)
            goto out;
    }

    cf_uuid_new(env.id);
    memcpy(env.project_id, found.id, sizeof(found.id));
    cf_strlcpy(env.slug, slug, sizeof(env.slug));
    cf_strlcpy(env.name, name, sizeof(env.name));
    env.position = 0; /* appended; moved below when another place was asked for */
    env.created_at = now;
    env.updated_at = now;
    rc = cf_store_env_create(st, &env, err);
    if (rc == CF_EEXIST)
        rc = env_exists(slug, found.id, err);
    if (rc != CF_OK)
        goto out;
    if (position != 0 && (size_t)position != envs.n + 1) {
        /* Two transactions: if the move fails, the environment stays at the end, which is still
         * valid. */
        env.position = position;
        rc = cf_store_env_update(st, &env, err);
        if (rc != CF_OK)
            goto out;
    }
    rc = cf_store_env_get(st, found.id, env.id, out, err);
out:
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    cf_env_list_release(&envs);
    cf_project_release(&found);
    return rc;
}

enum cf_rc cf_envs_update(struct cf_core *core, const struct cf_principal *who, const char *project,
                          const char *env, const struct cf_env_patch *patch, struct cf_env *out,
                          struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_project found;
    struct cf_env_list envs = {0};
    struct cf_env current;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = resolve_project(core, project, &found, err);
    if (rc == CF_OK)
        rc = resolve_env(core, found.id, env, &current, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_scope_not_found(core, who, CF_ACTION_ADMIN, project, env, NULL, err);
    if (rc != CF_OK)
        goto out;
    rc = cf_authz_check(core, who, CF_ACTION_ADMIN, found.id, &current, NULL, err);
    if (rc != CF_OK)
        goto out;
    if (patch->name) {
        rc = cf_text_check(patch->name, CF_NAME_MAX, true, "name", err);
        if (rc != CF_OK)
            goto out;
        cf_strlcpy(current.name, patch->name, sizeof(current.name));
    }
    if (patch->slug) {
        rc = slug_check(patch->slug, "slug", err);
        if (rc != CF_OK)
            goto out;
        cf_strlcpy(current.slug, patch->slug, sizeof(current.slug));
    }
    if (patch->position != 0) {
        rc = cf_store_env_list(st, found.id, &envs, err);
        if (rc == CF_OK)
            rc = position_check(patch->position, envs.n, err);
        if (rc != CF_OK)
            goto out;
        current.position = patch->position;
    }
    current.updated_at = cf_now_ms();
    rc = cf_store_env_update(st, &current, err);
    if (rc == CF_EEXIST)
        rc = env_exists(current.slug, found.id, err);
    else if (rc == CF_ENOTFOUND)
        rc = env_not_found(env, found.id, err);
    if (rc == CF_OK)
        rc = cf_store_env_get(st, found.id, current.id, out, err);
out:
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    cf_env_list_release(&envs);
    cf_project_release(&found);
    return rc;
}

enum cf_rc cf_envs_delete(struct cf_core *core, const struct cf_principal *who, const char *project,
                          const char *env, struct cf_env *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_project found;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = resolve_project(core, project, &found, err);
    if (rc == CF_OK)
        rc = resolve_env(core, found.id, env, out, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_scope_not_found(core, who, CF_ACTION_ADMIN, project, env, NULL, err);
    if (rc == CF_OK)
        rc = cf_authz_check(core, who, CF_ACTION_ADMIN, found.id, out, NULL, err);
    if (rc == CF_OK) {
        rc = cf_store_env_delete(st, out->id, err);
        if (rc == CF_ENOTFOUND)
            rc = env_not_found(env, found.id, err);
    }
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    cf_project_release(&found);
    return rc;
}

/* ---- folders --------------------------------------------------------------------------------- */

/* Joins parent (normalised) and a folder name into child, checking the result's length and depth.
 */
static enum cf_rc child_path(const char *parent, const char *name, char child[CF_PATH_MAX + 1],
                             const char *field, struct cf_err *err)
{
    char joined[CF_PATH_MAX + CF_SLUG_MAX + 3];
    snprintf(joined, sizeof(joined), "%s/%s", strcmp(parent, "/") == 0 ? "" : parent, name);
    return cf_path_normalize(joined, child, field, err);
}

enum cf_rc cf_folders_create(struct cf_core *core, const struct cf_principal *who,
                             const char *project, const char *env, const char *parent_path,
                             const char *name, const char *description, struct cf_folder *out,
                             struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_scope scope;
    struct cf_folder folder;
    char path[CF_PATH_MAX + 1];
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    memset(&folder, 0, sizeof(folder));
    rc = required(name, "name", err);
    if (rc == CF_OK)
        rc = cf_folder_name_check(name, "name", err);
    if (rc == CF_OK && description)
        rc = cf_text_check(description, CF_DESC_MAX, false, "description", err);
    if (rc != CF_OK)
        return rc;
    /* The new folder's path, as named, is where the action is judged, the parent existing or not.
     */
    char parent[CF_PATH_MAX + 1];
    rc = cf_path_normalize(parent_path ? parent_path : "/", parent, "path", err);
    if (rc == CF_OK)
        rc = child_path(parent, name, path, "name", err);
    if (rc == CF_OK)
        rc = resolve_scope(core, NULL, CF_ACTION_ADMIN, project, env, parent, "path", &scope, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_scope_not_found(core, who, CF_ACTION_ADMIN, project, env, path, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_authz_check(core, who, CF_ACTION_ADMIN, scope.project.id, &scope.env, path, err);
    if (rc != CF_OK)
        goto out;

    cf_uuid_new(folder.id);
    memcpy(folder.env_id, scope.env.id, sizeof(folder.env_id));
    memcpy(folder.parent_id, scope.folder.id, sizeof(folder.parent_id));
    cf_strlcpy(folder.name, name, sizeof(folder.name));
    cf_strlcpy(folder.path, path, sizeof(folder.path));
    if (description)
        cf_strlcpy(folder.description, description, sizeof(folder.description));
    folder.created_at = now;
    folder.updated_at = now;
    rc = cf_store_folder_create(st, &folder, err);
    if (rc == CF_EEXIST)
        rc = cf_err_field(err, CF_EEXIST, "name",
                          "Folder with name '%s' already exists in path '%s' of environment with "
                          "slug '%s'",
                          name, scope.folder.path, scope.env.slug);
    else if (rc == CF_ENOTFOUND) /* the parent went away meanwhile */
        rc = folder_not_found(scope.folder.path, scope.env.slug, err);
    if (rc == CF_OK)
        *out = folder;
out:
    cf_scope_release(&scope);
    return rc;
}

enum cf_rc cf_folders_list(struct cf_core *core, const struct cf_principal *who,
                           const char *project, const char *env, const char *path, bool recursive,
                           struct cf_folder_list *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_scope scope;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = authorized_scope(core, who, CF_ACTION_READ, project, env, path, &scope, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_store_folder_list(st, scope.env.id, scope.folder.path, recursive, out, err);
    /* A limited identity sees only the folders it may read (a recursive list would otherwise show
     * the whole tree below a folder it may read). */
    size_t kept = 0;
    for (size_t i = 0; rc == CF_OK && i < out->n; i++) {
        struct cf_err hidden;
        if (cf_authz_check(core, who, CF_ACTION_READ, scope.project.id, &scope.env,
                           out->items[i].path, &hidden) == CF_OK)
            out->items[kept++] = out->items[i];
    }
    if (rc == CF_OK)
        out->n = kept;
    cf_scope_release(&scope);
    return rc;
}

enum cf_rc cf_folders_delete(struct cf_core *core, const struct cf_principal *who,
                             const char *project, const char *env, const char *parent_path,
                             const char *id_or_name, struct cf_folder *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_scope scope;
    struct cf_folder_list children = {0};
    const struct cf_folder *target = NULL;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = required(id_or_name, "folderIdOrName", err);
    if (rc != CF_OK)
        return rc;
    /* The folder to delete, as named (a name below parent_path, or just parent_path for an id), is
     * where a refusal is judged when the parent or the folder does not exist. */
    char named[CF_PATH_MAX + 1];
    rc = cf_path_normalize(parent_path ? parent_path : "/", named, "path", err);
    if (rc == CF_OK && !cf_uuid_valid(id_or_name) &&
        child_path(named, id_or_name, named, "folderIdOrName", err) != CF_OK)
        rc = cf_path_normalize(parent_path ? parent_path : "/", named, "path", err);
    if (rc == CF_OK)
        rc = resolve_scope(core, NULL, CF_ACTION_ADMIN, project, env, parent_path, "path", &scope,
                           err);
    if (rc == CF_ENOTFOUND)
        rc = cf_scope_not_found(core, who, CF_ACTION_ADMIN, project, env, named, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_store_folder_list(st, scope.env.id, scope.folder.path, false, &children, err);
    if (rc != CF_OK)
        goto out;
    /* An id wins over a name: folder names may have the form of a UUID too. */
    for (size_t i = 0; i < children.n && !target; i++) {
        if (strcmp(children.items[i].id, id_or_name) == 0)
            target = &children.items[i];
    }
    for (size_t i = 0; i < children.n && !target; i++) {
        if (strcmp(children.items[i].name, id_or_name) == 0)
            target = &children.items[i];
    }
    if (!target) {
        if (cf_uuid_valid(id_or_name)) {
            rc = cf_err_set(
                err, CF_ENOTFOUND,
                "Folder with ID '%s' in path '%s' of environment with slug '%s' not found",
                id_or_name, scope.folder.path, scope.env.slug);
        } else {
            char path[CF_PATH_MAX + CF_SLUG_MAX + 3];
            snprintf(path, sizeof(path), "%s/%s",
                     strcmp(scope.folder.path, "/") == 0 ? "" : scope.folder.path, id_or_name);
            rc = folder_not_found(path, scope.env.slug, err);
        }
        if (rc == CF_ENOTFOUND)
            rc = cf_scope_not_found(core, who, CF_ACTION_ADMIN, scope.project.id, scope.env.slug,
                                    named, err);
        goto out;
    }
    rc =
        cf_authz_check(core, who, CF_ACTION_ADMIN, scope.project.id, &scope.env, target->path, err);
    if (rc != CF_OK)
        goto out;
    rc = cf_store_folder_delete(st, target->id, err);
    if (rc == CF_ENOTFOUND)
        rc = folder_not_found(target->path, scope.env.slug, err);
    if (rc == CF_OK) {
        *out = *target;
        cf_syncs_changed(core, scope.project.id); /* its secrets are gone */
    }
out:
    cf_folder_list_release(&children);
    cf_scope_release(&scope);
    return rc;
}

enum cf_rc cf_folders_update(struct cf_core *core, const struct cf_principal *who,
                             struct cf_err *err)
{
    (void)core;
    (void)who;
    return cf_err_set(
        err, CF_ECONFLICT,
        "folders cannot be renamed or moved: rules grant access by folder path, so "
        "a renamed or moved folder would hand its secrets to whoever may read the new "
        "path; create the new folder, copy the secrets into it and delete the old "
        "one instead");
}

/* ---- imports --------------------------------------------------------------------------------- */

void cf_import_view_list_release(struct cf_import_view_list *list)
{
    if (!list)
        return;
    free(list->items);
    memset(list, 0, sizeof(*list));
}

static enum cf_rc import_not_found(const char *import_id, struct cf_err *err)
{
    return cf_err_set(err, CF_ENOTFOUND, "Secret import with ID '%s' not found", import_id);
}

enum cf_rc cf_imports_create(struct cf_core *core, const struct cf_principal *who,
                             const char *project, const char *env, const char *path,
                             const char *import_env, const char *import_path,
                             struct cf_import_view *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_scope scope;
    struct cf_env source;
    struct cf_folder source_folder;
    struct cf_import import;
    char source_path[CF_PATH_MAX + 1];
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    memset(&import, 0, sizeof(import));
    rc = required(import_env, "import.environment", err);
    if (rc == CF_OK)
        rc = required(import_path, "import.path", err);
    if (rc == CF_OK)
        rc = cf_path_normalize(import_path, source_path, "import.path", err);
    if (rc != CF_OK)
        return rc;
    rc = authorized_scope(core, who, CF_ACTION_ADMIN, project, env, path, &scope, err);
    if (rc != CF_OK)
        return rc;
    rc = resolve_env(core, scope.project.id, import_env, &source, err);
    if (rc != CF_OK)
        goto out;
    /* Whoever makes a folder show another one's secrets must be able to read them. */
    rc = cf_authz_check(core, who, CF_ACTION_READ, scope.project.id, &source, source_path, err);
    if (rc != CF_OK)
        goto out;
    rc = cf_store_folder_get(st, source.id, source_path, &source_folder, err);
    if (rc == CF_ENOTFOUND)
        rc = folder_not_found(source_path, source.slug, err);
    if (rc != CF_OK)
        goto out;
    if (strcmp(source_folder.id, scope.folder.id) == 0) {
        rc = cf_err_field(err, CF_EINVAL, "import",
                          "folder '%s' of environment '%s' cannot import itself", scope.folder.path,
                          scope.env.slug);
        goto out;
    }

    cf_uuid_new(import.id);
    memcpy(import.folder_id, scope.folder.id, sizeof(import.folder_id));
    memcpy(import.import_env_id, source.id, sizeof(import.import_env_id));
    cf_strlcpy(import.import_path, source_path, sizeof(import.import_path));
    import.created_at = now;
    import.updated_at = now;
    rc = cf_store_import_create(st, &import, err);
    if (rc == CF_EEXIST)
        rc =
            cf_err_field(err, CF_EEXIST, "import",
                         "folder '%s' of environment '%s' already imports '%s' of environment '%s'",
                         scope.folder.path, scope.env.slug, source_path, source.slug);
    if (rc != CF_OK)
        goto out;
    /* Read it back for the position the store gave it. */
    rc = cf_store_import_get(st, import.id, &out->import, err);
    if (rc == CF_ENOTFOUND)
        rc = import_not_found(import.id, err);
    if (rc == CF_OK) {
        out->env = source;
        cf_syncs_changed(core, scope.project.id); /* syncs carry imported secrets too */
    }
out:
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    cf_scope_release(&scope);
    return rc;
}

static int import_view_cmp(const void *a, const void *b)
{
    const struct cf_import_view *x = a, *y = b;
    return (x->import.position > y->import.position) - (x->import.position < y->import.position);
}

enum cf_rc cf_imports_list(struct cf_core *core, const struct cf_principal *who,
                           const char *project, const char *env, const char *path,
                           struct cf_import_view_list *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_scope scope;
    struct cf_import_list imports = {0};
    struct cf_env_list envs = {0};
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = authorized_scope(core, who, CF_ACTION_READ, project, env, path, &scope, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_store_import_list(st, scope.folder.id, &imports, err);
    if (rc == CF_OK && imports.n > 0)
        rc = cf_store_env_list(st, scope.project.id, &envs, err);
    if (rc != CF_OK)
        goto out;
    if (imports.n > 0) {
        out->items = calloc(imports.n, sizeof(*out->items));
        if (!out->items) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < imports.n; i++) {
        const struct cf_env *source = NULL;
        for (size_t j = 0; j < envs.n && !source; j++) {
            if (strcmp(envs.items[j].id, imports.items[i].import_env_id) == 0)
                source = &envs.items[j];
        }
        if (!source) /* its environment was deleted meanwhile (which deletes the import too) */
            continue;
        /* A source the caller may not read is left out: its path is not the caller's to see. */
        struct cf_err hidden;
        if (cf_authz_check(core, who, CF_ACTION_READ, scope.project.id, source,
                           imports.items[i].import_path, &hidden) != CF_OK)
            continue;
        out->items[out->n].import = imports.items[i];
        out->items[out->n].env = *source;
        out->n++;
    }
    if (out->n > 1)
        qsort(out->items, out->n, sizeof(*out->items), import_view_cmp);
out:
    if (rc != CF_OK)
        cf_import_view_list_release(out);
    cf_env_list_release(&envs);
    cf_import_list_release(&imports);
    cf_scope_release(&scope);
    return rc;
}

enum cf_rc cf_imports_delete(struct cf_core *core, const struct cf_principal *who,
                             const char *project, const char *env, const char *path,
                             const char *import_id, struct cf_import_view *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_scope scope;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = required(import_id, "importId", err);
    if (rc != CF_OK)
        return rc;
    rc = authorized_scope(core, who, CF_ACTION_ADMIN, project, env, path, &scope, err);
    if (rc != CF_OK)
        return rc;
    if (!cf_uuid_valid(import_id)) {
        rc = import_not_found(import_id, err);
        goto out;
    }
    rc = cf_store_import_get(st, import_id, &out->import, err);
    if (rc == CF_OK && strcmp(out->import.folder_id, scope.folder.id) != 0)
        rc = CF_ENOTFOUND; /* it belongs to another folder */
    if (rc == CF_ENOTFOUND)
        rc = import_not_found(import_id, err);
    if (rc != CF_OK)
        goto out;
    rc = cf_store_env_get(st, scope.project.id, out->import.import_env_id, &out->env, err);
    if (rc == CF_ENOTFOUND)
        rc = import_not_found(import_id, err);
    if (rc != CF_OK)
        goto out;
    rc = cf_store_import_delete(st, import_id, err);
    if (rc == CF_ENOTFOUND)
        rc = import_not_found(import_id, err);
    if (rc == CF_OK)
        cf_syncs_changed(core, scope.project.id);
out:
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    cf_scope_release(&scope);
    return rc;
}

/* ---- tags ------------------------------------------------------------------------------------ */

enum cf_rc cf_tags_create(struct cf_core *core, const struct cf_principal *who, const char *project,
                          const char *slug, const char *name, const char *color, struct cf_tag *out,
                          struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_project found;
    struct cf_tag tag;
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    memset(&tag, 0, sizeof(tag));
    rc = authorized_project(core, who, CF_ACTION_ADMIN, project, &found, err);
    if (rc != CF_OK)
        return rc;
    rc = slug_check(slug, "slug", err);
    if (rc == CF_OK && name && *name)
        rc = cf_text_check(name, CF_NAME_MAX, true, "name", err);
    if (rc == CF_OK && color)
        rc = cf_text_check(color, CF_COLOR_MAX, false, "color", err);
    if (rc != CF_OK)
        goto out;

    cf_uuid_new(tag.id);
    memcpy(tag.project_id, found.id, sizeof(tag.project_id));
    cf_strlcpy(tag.slug, slug, sizeof(tag.slug));
    cf_strlcpy(tag.name, name && *name ? name : slug, sizeof(tag.name));
    if (color)
        cf_strlcpy(tag.color, color, sizeof(tag.color));
    tag.created_at = now;
    tag.updated_at = now;
    rc = cf_store_tag_create(st, &tag, err);
    if (rc == CF_EEXIST)
        rc = cf_err_field(err, CF_EEXIST, "slug", "Tag with slug '%s' already exists", slug);
    if (rc == CF_OK)
        *out = tag;
out:
    cf_project_release(&found);
    return rc;
}

enum cf_rc cf_tags_get(struct cf_core *core, const struct cf_principal *who, const char *project,
                       const char *slug, struct cf_tag *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_project found;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = authorized_project(core, who, CF_ACTION_READ, project, &found, err);
    if (rc != CF_OK)
        return rc;
    /* By slug only: the store's lookup also takes ids, which this route does not. */
    if (!slug || !*slug || cf_uuid_valid(slug)) {
        rc = CF_ENOTFOUND;
    } else {
        rc = cf_store_tag_get(st, found.id, slug, out, err);
        if (rc == CF_OK && strcmp(out->slug, slug) != 0)
            rc = CF_ENOTFOUND;
    }
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "Tag with slug '%s' not found", slug ? slug : "");
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    cf_project_release(&found);
    return rc;
}

enum cf_rc cf_tags_list(struct cf_core *core, const struct cf_principal *who, const char *project,
                        char project_id[CF_UUID_LEN], struct cf_tag_list *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = readable_project_id(core, who, project, project_id, err);
    if (rc == CF_OK)
        rc = cf_store_tag_list(st, project_id, out, err);
    if (rc != CF_OK)
        project_id[0] = '\0';
    return rc;
}
