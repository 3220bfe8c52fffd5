/* GET /api/status: liveness and store health for load balancers (no authentication). */
#include "api/http.h"
#include "util/banned.h"

static enum cf_rc status(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_store *st = cf_req_core(req)->store;
    struct cf_err ping_err;
    bool ok = st->ops->ping(st, &ping_err) == CF_OK;
    if (!ok)
        return cf_err_set(err, CF_EUNAVAIL, "the store does not answer: %s", ping_err.msg);
    *out = json_pack("{s:s, s:s, s:s, s:s}", "message", "Ok", "status", "ok", "version",
                     COFFER_VERSION, "store", st->backend);
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

const struct cf_route cf_routes_status[] = {
    {"GET", "/api/status", status, true, NULL},
    {NULL, NULL, NULL, false, NULL},
};
