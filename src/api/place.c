/* The project, environment and path of a folder-level request (see place.h). */
#include "api/place.h"
#include "util/banned.h"

static const char *const env_names[] = {"environment", NULL};
static const char *const path_names[] = {"path", "directory", NULL};

enum cf_rc cf_api_read_place(struct cf_req *req, json_t *body, const char *const *project_names,
                             const char **project, const char **env, const char **path,
                             struct cf_err *err)
{
    enum cf_rc rc = cf_req_field(req, body, project_names, true, project, err);
    if (rc == CF_OK)
        rc = cf_req_field(req, body, env_names, true, env, err);
    if (rc == CF_OK)
        rc = cf_req_field(req, body, path_names, false, path, err);
    return rc;
}
