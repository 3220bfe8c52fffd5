/* The structure secrets live in: projects (each with its data key and its environments),
 * environments, folders, folder imports and tags. Every operation validates its inputs (field names
 * in messages are the API's: projectName, slug, name, path, ...), resolves projects and
 * environments given by id or slug, asks cf_authz_check (CF_ACTION_ADMIN for changes,
 * CF_ACTION_READ for reads), and answers not-found with Infisical's wording. Pure C over the store
 * and the keyring; every function is thread-safe (all state is in the store).
 *
 * Outputs are filled by the callee and released by the caller with the matching release function
 * (safe on zeroed structs); on failure they are left zeroed. String parameters are borrowed. */
#ifndef CF_CORE_PROJECTS_H
#define CF_CORE_PROJECTS_H

#include "core/core.h"

/* ---- projects -------------------------------------------------------------------------------- */

/* A project with its environments in position order. project.wrapped_key is NULL in views. */
struct cf_project_view {
    struct cf_project project;
    struct cf_env_list envs;
};

struct cf_project_view_list {
    struct cf_project_view *items;
    size_t n;
};

void cf_project_view_release(struct cf_project_view *view);
void cf_project_view_list_release(struct cf_project_view_list *list);

/* Creates a project with a fresh data key and the environments dev, staging and prod (named
 * Development, Staging, Production), each with its root folder. name (projectName) is required;
 * slug NULL derives it from the name (cf_slugify); description may be NULL. CF_EVALIDATION naming
 * the field; CF_EEXIST ("Project with slug 'x' already exists") for a duplicate slug. */
enum cf_rc cf_projects_create(struct cf_core *core, const struct cf_principal *who,
                              const char *name, const char *slug, const char *description,
                              struct cf_project_view *out, struct cf_err *err);

/* The projects the caller may read, each with its environments. */
enum cf_rc cf_projects_list(struct cf_core *core, const struct cf_principal *who,
                            struct cf_project_view_list *out, struct cf_err *err);

/* One project by id or slug. CF_ENOTFOUND: "Project with ID 'x' not found". */
enum cf_rc cf_projects_get(struct cf_core *core, const struct cf_principal *who,
                           const char *project, struct cf_project_view *out, struct cf_err *err);

/* Deletes a project with everything in it; out receives the project as it was. The keyring forgets
 * its key. */
enum cf_rc cf_projects_delete(struct cf_core *core, const struct cf_principal *who,
                              const char *project, struct cf_project_view *out, struct cf_err *err);

/* ---- environments ---------------------------------------------------------------------------- */

/* The project's environments in position order; project_id receives the resolved project id. */
enum cf_rc cf_envs_list(struct cf_core *core, const struct cf_principal *who, const char *project,
                        char project_id[CF_UUID_LEN], struct cf_env_list *out, struct cf_err *err);

/* Creates an environment (with its root folder). name and slug are required; position 0 appends,
 * else it must be 1..n+1 (the others move down). CF_EEXIST for a duplicate slug. out->project_id is
 * the resolved project. */
enum cf_rc cf_envs_create(struct cf_core *core, const struct cf_principal *who, const char *project,
                          const char *name, const char *slug, int position, struct cf_env *out,
                          struct cf_err *err);

/* What to change in an environment: NULL strings and position 0 keep the current value. */
struct cf_env_patch {
    const char *name;
    const char *slug;
    int position; /* 1..n */
};

/* Renames, re-slugs and/or moves the environment env (id or slug). out is the environment
 * afterwards. */
enum cf_rc cf_envs_update(struct cf_core *core, const struct cf_principal *who, const char *project,
                          const char *env, const struct cf_env_patch *patch, struct cf_env *out,
                          struct cf_err *err);

/* Deletes the environment env (id or slug) with its folders, secrets and imports; out is what was
 * deleted. */
enum cf_rc cf_envs_delete(struct cf_core *core, const struct cf_principal *who, const char *project,
                          const char *env, struct cf_env *out, struct cf_err *err);

/* ---- folders --------------------------------------------------------------------------------- */

/* Creates folder name under parent_path (normalised; NULL is "/") in project/env. The parent must
 * exist (CF_ENOTFOUND naming its path); CF_EEXIST when the folder exists already. description may
 * be NULL. */
enum cf_rc cf_folders_create(struct cf_core *core, const struct cf_principal *who,
                             const char *project, const char *env, const char *parent_path,
                             const char *name, const char *description, struct cf_folder *out,
                             struct cf_err *err);

/* The folders directly under path (all below it when recursive), ordered by path. path must exist.
 */
enum cf_rc cf_folders_list(struct cf_core *core, const struct cf_principal *who,
                           const char *project, const char *env, const char *path, bool recursive,
                           struct cf_folder_list *out, struct cf_err *err);

/* Deletes the folder directly under parent_path whose id or name is id_or_name, with its
 * sub-folders, their secrets and imports; out is the deleted folder. */
enum cf_rc cf_folders_delete(struct cf_core *core, const struct cf_principal *who,
                             const char *project, const char *env, const char *parent_path,
                             const char *id_or_name, struct cf_folder *out, struct cf_err *err);

/* Renaming or moving a folder is refused, always, with CF_ECONFLICT and a message saying why and
 * what to do instead: rules grant access by path glob, so a folder that took another name or
 * parent would hand its secrets to whoever may read the new path, and no check on the caller can
 * tell which of the other identities that would widen. Copying the secrets to a new folder and
 * deleting the old one is the same change made of reads and writes, each authorized. Nothing is
 * looked up, so the answer says nothing about what exists. */
enum cf_rc cf_folders_update(struct cf_core *core, const struct cf_principal *who,
                             struct cf_err *err);

/* ---- imports --------------------------------------------------------------------------------- */

/* An import with the environment it imports from. */
struct cf_import_view {
    struct cf_import import;
    struct cf_env env;
};

struct cf_import_view_list {
    struct cf_import_view *items;
    size_t n;
};

void cf_import_view_list_release(struct cf_import_view_list *list);

/* Makes the folder at path in project/env import folder import_path of environment import_env (same
 * project). Both folders must exist; a folder importing itself is CF_EINVAL; an existing identical
 * import CF_EEXIST. */
enum cf_rc cf_imports_create(struct cf_core *core, const struct cf_principal *who,
                             const char *project, const char *env, const char *path,
                             const char *import_env, const char *import_path,
                             struct cf_import_view *out, struct cf_err *err);

/* The imports of the folder at path, in position order. */
enum cf_rc cf_imports_list(struct cf_core *core, const struct cf_principal *who,
                           const char *project, const char *env, const char *path,
                           struct cf_import_view_list *out, struct cf_err *err);

/* Deletes import import_id of the folder at path; CF_ENOTFOUND when that folder has no such import.
 */
enum cf_rc cf_imports_delete(struct cf_core *core, const struct cf_principal *who,
                             const char *project, const char *env, const char *path,
                             const char *import_id, struct cf_import_view *out, struct cf_err *err);

/* ---- tags ------------------------------------------------------------------------------------ */

/* Creates a tag. slug is required; name NULL or "" defaults to the slug; color may be NULL.
 * CF_EEXIST for a duplicate slug. */
enum cf_rc cf_tags_create(struct cf_core *core, const struct cf_principal *who, const char *project,
                          const char *slug, const char *name, const char *color, struct cf_tag *out,
                          struct cf_err *err);

/* A tag by slug. CF_ENOTFOUND: "Tag with slug 'x' not found". */
enum cf_rc cf_tags_get(struct cf_core *core, const struct cf_principal *who, const char *project,
                       const char *slug, struct cf_tag *out, struct cf_err *err);

/* The project's tags. project_id receives the resolved project id. */
enum cf_rc cf_tags_list(struct cf_core *core, const struct cf_principal *who, const char *project,
                        char project_id[CF_UUID_LEN], struct cf_tag_list *out, struct cf_err *err);

#endif
