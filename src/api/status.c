/* GET /api/status: liveness and store health for load balancers (no authentication); `sso` says
 * whether single sign-on is configured, so that the dashboard shows its sign-in button only then;
 * `sealed` whether the server is sealed (api/sys.c), with the unseal progress under `seal`.
 */
#include "api/http.h"
#include "util/banned.h"

static enum cf_rc status(struct cf_req *req, json_t **out, struct cf_err *err)
{
    enum cf_rc rc = cf_core_ping(cf_req_core(req), err);
    if (rc != CF_OK)
        return rc;
    json_t *seal = cf_api_seal_json(cf_req_core(req));
    json_t *sealed = json_object_get(seal, "sealed");
    *out = seal ? json_pack("{s:s, s:s, s:s, s:s, s:b, s:O, s:O}", "message", "Ok", "status", "ok",
                            "version", COFFER_VERSION, "store", cf_req_core(req)->store->backend,
                            "sso", cf_req_core(req)->oidc != NULL, "sealed", sealed, "seal", seal)
                : NULL;
    json_decref(seal);
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

const struct cf_route cf_routes_status[] = {
    {"GET", "/api/status", status, true, NULL, .quiet = true, .while_sealed = true},
    {NULL, NULL, NULL, false, NULL},
};
