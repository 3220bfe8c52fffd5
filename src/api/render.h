/* JSON renderings of the structural objects of docs/api.md (Objects): project, environment, folder,
 * secret import and tag, shared by the handlers that return them (the secrets handler uses the
 * environment ones for imports). Each function returns a new reference, or NULL when out of memory;
 * arguments are borrowed. */
#ifndef CF_API_RENDER_H
#define CF_API_RENDER_H

#include <jansson.h>

#include "core/projects.h"
#include "store/access.h"

/* Environment: {id, name, slug, position, projectId, createdAt, updatedAt}. */
json_t *cf_render_env(const struct cf_env *env);

/* The short form used inside other objects: {id, name, slug}. */
json_t *cf_render_env_brief(const struct cf_env *env);

/* [Environment, ...] in the list's order. */
json_t *cf_render_env_list(const struct cf_env_list *envs);

/* Project: {id, name, slug, description, type: "secret-manager", environments: [Environment],
 * createdAt, updatedAt}. */
json_t *cf_render_project(const struct cf_project_view *view);

/* Folder: {id, name, path, envId, parentId (null for the root), description, version: 1,
 * isReserved: false, createdAt, updatedAt}. The root folder is named "root", as in Infisical. */
json_t *cf_render_folder(const struct cf_folder *folder);

/* Secret import: {id, importPath, importEnv: {id, name, slug}, position, folderId, isReplication:
 * false, createdAt, updatedAt}. */
json_t *cf_render_import(const struct cf_import_view *view);

/* Tag: {id, slug, name, color, projectId, createdAt, updatedAt}. */
json_t *cf_render_tag(const struct cf_tag *tag);

/* The short form carried by secrets: {id, slug, name, color}. */
json_t *cf_render_tag_brief(const struct cf_tag *tag);

/* User: {id, email, name, orgRole, status, hasPassword, sso: {issuer, subject} | null, createdAt,
 * updatedAt, lastLoginAt} (api/users.c). The password hash is never shown. */
json_t *cf_render_user(const struct cf_user *u);

/* Appends item (taken, may be NULL) to array (taken, may be NULL) and returns array, or NULL after
 * freeing both when either is NULL or the append fails: a rendering loop can go on while the
 * result is non-NULL. */
json_t *cf_render_append(json_t *array, json_t *item);

/* The JSON value stored as text (a stored configuration object), or fallback (taken) when text is
 * empty or does not parse; fallback is released when text parses. */
json_t *cf_render_json_text(const char *text, json_t *fallback);

/* Hands body to the handler's *out: CF_OK, or CF_ENOMEM with err filled when body is NULL (a failed
 * render). */
enum cf_rc cf_render_reply(json_t *body, json_t **out, struct cf_err *err);

/* cf_render_reply of {name: value}; value (taken) may be NULL, a failed render. */
enum cf_rc cf_render_reply_member(const char *name, json_t *value, json_t **out,
                                  struct cf_err *err);

/* AccessRequest (docs/api.md "Access requests"): {id, user: {id, email}, projectId, environment,
 * secretPath, actions, duration, reason, status ("expired" for a grant past its end), createdAt,
 * decidedBy, decidedAt, comment, startsAt, endsAt, revokedBy, revokedAt}. */
json_t *cf_render_access_request(const struct cf_access_request *r);

#endif
