/* HTTP handlers of the seal (core/seal.h, docs/operations.md "Seal and unseal"):
 * GET /api/v1/sys/seal-status and POST /api/v1/sys/unseal, served while sealed and without a
 * token (nobody can authenticate while the root key is not in memory), and POST /api/v1/sys/seal
 * (the admin token or an org owner), which seals a running server. */
#include <string.h>

#include "api/http.h"
#include "core/seal.h"
#include "util/banned.h"

/* Longest "key" accepted: a share's text with room for blanks around it. */
#define SHARE_FIELD_MAX 256

/* The seal state as the status, seal-status and unseal answers show it. The status routes say
 * sealed until the unsealed server answers them (so that a client polling them waits for it);
 * the unseal answer (taken) says unsealed as soon as the last share was accepted. */
static json_t *render_seal(struct cf_core *core, bool taken)
{
    struct cf_seal_status st;
    if (!core->seal)
        return json_pack("{s:b, s:s}", "sealed", core->sealed, "type", "file");
    cf_seal_status(core->seal, &st);
    if (!taken)
        st.key_ready = false;
    if (strcmp(st.type, "shamir") != 0)
        return json_pack("{s:b, s:s, s:s?}", "sealed", core->sealed && !st.key_ready, "type",
                         st.type, "error", st.error[0] ? st.error : NULL);
    return json_pack("{s:b, s:s, s:i, s:i, s:i, s:s}", "sealed", core->sealed && !st.key_ready,
                     "type", "shamir", "t", (int)st.threshold, "n", (int)st.shares, "progress",
                     (int)st.progress, "nonce", st.nonce);
}

json_t *cf_api_seal_json(struct cf_core *core)
{
    return render_seal(core, false);
}
static enum cf_rc seal_status(struct cf_req *req, json_t **out, struct cf_err *err)
{
    *out = render_seal(cf_req_core(req), false);
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

/* POST /api/v1/sys/unseal {key, nonce?} or {reset: true} -> the seal state */
static enum cf_rc unseal(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_core *core = cf_req_core(req);
    json_t *body = NULL;
    const char *key = NULL, *nonce = NULL;
    int reset = 0;
    enum cf_rc rc = cf_req_json(req, true, &body, err);
    if (rc != CF_OK) {
        /* the parser's message may quote the text (a share in it): said without it */
        if (core->seal)
            cf_seal_note_malformed(core->seal, cf_req_client_ip(req),
                                   "the body could not be read as JSON");
        return rc;
    }
    if (!core->seal) {
        rc = cf_err_set(err, CF_EINVAL,
                        "this server's root key is not split into shares (see 'coffer operator "
                        "init')");
        goto out;
    }
    json_t *key_field = json_object_get(body, "key");
    json_t *nonce_field = json_object_get(body, "nonce");
    json_t *reset_field = json_object_get(body, "reset");
    if (reset_field && !json_is_boolean(reset_field)) {
        rc = cf_err_field(err, CF_EVALIDATION, "reset", "'reset' must be true or false");
        goto out;
    }
    reset = reset_field && json_is_true(reset_field);
    if (nonce_field && !json_is_string(nonce_field)) {
        rc = cf_err_field(err, CF_EVALIDATION, "nonce", "'nonce' must be a string");
        goto out;
    }
    nonce = nonce_field ? json_string_value(nonce_field) : NULL;
    if (reset) {
        if (key_field) {
            rc = cf_err_field(err, CF_EVALIDATION, "key", "give either 'key' or 'reset', not both");
            goto out;
        }
        cf_seal_reset(core->seal, cf_req_client_ip(req), NULL);
    } else {
        if (!key_field || !json_is_string(key_field)) {
            rc = cf_err_field(err, CF_EVALIDATION, "key",
                              "'key' (one unseal share, a string) is required");
            goto out;
        }
        key = json_string_value(key_field);
        size_t len = json_string_length(key_field);
        if (len > SHARE_FIELD_MAX || strlen(key) != len) {
            rc = cf_err_field(err, CF_EVALIDATION, "key", "'key' is not a share (too long)");
            goto out;
        }
        rc = cf_seal_submit(core->seal, key, len, nonce, cf_req_client_ip(req), NULL, err);
        if (rc != CF_OK)
            goto out;
    }
    *out = render_seal(core, true);
    rc = *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
out:
    /* a refused body counts as an attempt too (cf_seal_submit records the ones it saw) */
    if (rc == CF_EVALIDATION && core->seal)
        cf_seal_note_malformed(core->seal, cf_req_client_ip(req), err->msg);
    return rc; /* body belongs to the request, whose release wipes the share's text */
}

/* POST /api/v1/sys/seal -> {sealed: true}: the server drops its keys and services once this
 * request is answered. */
static enum cf_rc seal(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_core *core = cf_req_core(req);
    const struct cf_principal *who = cf_req_principal(req);
    cf_req_audit(req, "server.seal", NULL, NULL, "server");
    if (!who || (who->kind != CF_PRINCIPAL_ADMIN &&
                 (who->kind != CF_PRINCIPAL_USER || strcmp(who->org_role, "owner") != 0)))
        return cf_err_set(err, CF_EFORBIDDEN,
                          "only the admin token or an organisation owner may seal the server");
    if (!core->seal)
        return cf_err_set(err, CF_EINVAL,
                          "this server's root key is not split into shares, so it could not be "
                          "unsealed again (see 'coffer operator init')");
    enum cf_rc rc = cf_seal_request(core->seal, err);
    if (rc != CF_OK)
        return rc;
    *out = json_pack("{s:b}", "sealed", 1);
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

const struct cf_route cf_routes_sys[] = {
    {"GET", "/api/v1/sys/seal-status", seal_status, true, NULL, .quiet = true,
     .while_sealed = true},
    {"POST", "/api/v1/sys/unseal", unseal, true, NULL, .while_sealed = true},
    {"POST", "/api/v1/sys/seal", seal, false, NULL},
    {NULL, NULL, NULL, false, NULL},
};
