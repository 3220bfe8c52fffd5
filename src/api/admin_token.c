/* HTTP handlers of the admin token's break-glass switch (core/admin_token.h):
 * GET /api/v1/admin-token, POST /api/v1/admin-token/disable and /enable. See docs/users.md "The
 * admin token as break-glass". */
#include "api/http.h"
#include "api/render.h"
#include "core/admin_token.h"
#include "util/banned.h"

static enum cf_rc reply_state(const struct cf_admin_token_state *s, json_t **out,
                              struct cf_err *err)
{
    return cf_render_reply_member("adminToken",
                                  json_pack("{s:b, s:I}", "enabled", s->enabled, "usableOwners",
                                            (json_int_t)s->usable_owners),
                                  out, err);
}

/* GET /api/v1/admin-token -> {adminToken: {enabled, usableOwners}} */
static enum cf_rc state(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_admin_token_state s;
    enum cf_rc rc = cf_admin_token_state_get(cf_req_core(req), cf_req_principal(req), &s, err);
    return rc == CF_OK ? reply_state(&s, out, err) : rc;
}

static const bool disabling = true, enabling = false;

/* POST /api/v1/admin-token/{disable,enable} -> {adminToken} (route data: which) */
static enum cf_rc flip(struct cf_req *req, json_t **out, struct cf_err *err)
{
    bool disable = *(const bool *)cf_req_route_data(req);
    struct cf_admin_token_state s;
    cf_req_audit(req, disable ? "admin-token.disable" : "admin-token.enable", NULL, NULL,
                 "admin token");
    enum cf_rc rc =
        cf_admin_token_switch(cf_req_core(req), cf_req_principal(req), disable, &s, err);
    return rc == CF_OK ? reply_state(&s, out, err) : rc;
}

const struct cf_route cf_routes_admin_token[] = {
    {"GET", "/api/v1/admin-token", state, false},
    {"POST", "/api/v1/admin-token/disable", flip, false, &disabling},
    {"POST", "/api/v1/admin-token/enable", flip, false, &enabling},
    {NULL, NULL, NULL, false},
};
