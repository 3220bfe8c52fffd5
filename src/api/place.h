/* The place a folder-level request names: project, environment and secret path, shared by the
 * folder and import handlers. Each field may come under several alias names (workspaceId and
 * projectId; path and directory) and is read from the body first, then from the query. */
#ifndef CF_API_PLACE_H
#define CF_API_PLACE_H

#include <jansson.h>

#include "api/http.h"

/* Reads the project (required; its alias names, NULL-terminated, in project_names, the first
 * present winning), the environment (required) and the path (optional: NULL when absent) of req;
 * body may be NULL. The strings are borrowed from body or req. Returns CF_OK, or the
 * cf_req_field error naming the field. */
enum cf_rc cf_api_read_place(struct cf_req *req, json_t *body, const char *const *project_names,
                             const char **project, const char **env, const char **path,
                             struct cf_err *err);

#endif
