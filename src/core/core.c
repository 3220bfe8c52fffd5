/* Scope resolution shared by every operation (see core.h). The authorization decision is in
 * authz.c. */
#include <string.h>

#include "core/core.h"
#include "core/names.h"
#include "util/str.h"
#include "util/banned.h"

void cf_scope_release(struct cf_scope *scope)
{
    cf_project_release(&scope->project);
    memset(scope, 0, sizeof(*scope));
}

enum cf_rc cf_scope_not_found(struct cf_core *core, const struct cf_principal *who,
                              enum cf_action action, const char *project, const char *env,
                              const char *path, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_project found = {0};
    struct cf_err refusal;

    if (!who || cf_principal_is_admin(who))
        return CF_ENOTFOUND;
    /* Rules are per project: ask in the project when it exists (a missing one has no members). */
    cf_err_clear(&refusal);
    const char *project_id = project;
    if (cf_store_project_get(st, project, &found, &refusal) == CF_OK)
        project_id = found.id;
    /* Rules bind environments by id: an existing environment (a missing folder in it) is judged by
     * its id, a missing one by an empty id that no rule names, under the slug the caller gave. */
    struct cf_env place = {0};
    if (env) {
        cf_err_clear(&refusal);
        if (!found.id[0] || cf_store_env_get(st, found.id, env, &place, &refusal) != CF_OK) {
            memset(&place, 0, sizeof(place));
            cf_strlcpy(place.slug, env, sizeof(place.slug));
        }
    }
    cf_err_clear(&refusal);
    enum cf_rc rc =
        cf_authz_check(core, who, action, project_id, env ? &place : NULL, path, &refusal);
    cf_project_release(&found);
    if (rc == CF_OK)
        return CF_ENOTFOUND;
    *err = refusal;
    return rc;
}

enum cf_rc cf_core_ping(struct cf_core *core, struct cf_err *err)
{
    struct cf_err ping_err;
    if (cf_store_ping(core->store, &ping_err) != CF_OK)
        return cf_err_set(err, CF_EUNAVAIL, "the store does not answer: %s", ping_err.msg);
    return CF_OK;
}

enum cf_rc cf_scope_resolve(struct cf_core *core, const struct cf_principal *who,
                            enum cf_action action, const char *project, const char *env,
                            const char *path, struct cf_scope *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    char norm[CF_PATH_MAX + 1];
    char env_slug[CF_SLUG_MAX + 1] = "";
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = cf_path_normalize(path ? path : "/", norm, "secretPath", err);
    if (rc != CF_OK)
        return rc;
    rc = cf_store_project_get(st, project, &out->project, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "Project with ID '%s' not found", project);
    if (rc != CF_OK)
        goto fail;
    rc = cf_store_env_get(st, out->project.id, env, &out->env, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND,
                        "Environment with slug '%s' in project with ID %s not found", env,
                        out->project.id);
    if (rc != CF_OK)
        goto fail;
    rc = cf_store_folder_get(st, out->env.id, norm, &out->folder, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND,
                        "Folder with path '%s' in environment with slug '%s' not found", norm,
                        out->env.slug);
    if (rc != CF_OK)
        goto fail;
    return CF_OK;
fail:
    /* A missing folder of an existing environment is judged by the environment's slug, as the
     * refusal of an existing folder there would be. */
    if (out->env.slug[0])
        cf_strlcpy(env_slug, out->env.slug, sizeof(env_slug));
    cf_scope_release(out);
    if (rc == CF_ENOTFOUND)
        rc =
            cf_scope_not_found(core, who, action, project, env_slug[0] ? env_slug : env, norm, err);
    return rc;
}

enum cf_rc cf_project_for_admin(struct cf_core *core, const struct cf_principal *who,
                                const char *project, struct cf_project *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    if (!project || !project[0])
        return cf_err_field(err, CF_EVALIDATION, "projectId", "projectId is required");
    enum cf_rc rc = cf_store_project_get(core->store, project, out, err);
    if (rc == CF_ENOTFOUND) {
        cf_err_set(err, CF_ENOTFOUND, "Project with ID '%s' not found", project);
        return cf_scope_not_found(core, who, CF_ACTION_ADMIN, project, NULL, NULL, err);
    }
    if (rc == CF_OK)
        rc = cf_authz_check(core, who, CF_ACTION_ADMIN, out->id, NULL, NULL, err);
    if (rc != CF_OK)
        cf_project_release(out);
    return rc;
}
