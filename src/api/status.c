/* GET /api/status: liveness and store health for load balancers (no authentication); `sso` says
 * whether single sign-on is configured, so that the dashboard shows its sign-in button only then.
 */
#include "api/http.h"
#include "util/banned.h"

static enum cf_rc status(struct cf_req *req, json_t **out, struct cf_err *err)
{
    enum cf_rc rc = cf_core_ping(cf_req_core(req), err);
    if (rc != CF_OK)
        return rc;
    *out = json_pack("{s:s, s:s, s:s, s:s, s:b}", "message", "Ok", "status", "ok", "version",
                     COFFER_VERSION, "store", cf_req_core(req)->store->backend, "sso",
                     cf_req_core(req)->oidc != NULL);
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

const struct cf_route cf_routes_status[] = {
    {"GET", "/api/status", status, true, NULL, .quiet = true},
    {NULL, NULL, NULL, false, NULL},
};
