/* The "azure-entra-id-app" dynamic provider (see entradynamic.h): one client secret per lease on
 * an Entra ID application, through the Microsoft Graph client of graph.c. */
#include "provider/entradynamic.h"

#include <stdio.h>
#include <string.h>

#include "provider/azure.h"
#include "provider/graph.h"
#include "util/id.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

/* Graph's limit on an object id or application id we pass on is far below this; it bounds what a
 * message quotes. */
#define ID_MAX 128

static const char *const fields[] = {"CLIENT_ID", "CLIENT_SECRET", "TENANT_ID", NULL};

static const char *param(const json_t *params, const char *name)
{
    return json_string_value(json_object_get(params, name));
}

static enum cf_rc config_check(const json_t *params, struct cf_err *err)
{
    static const char *const names[] = {"objectId", "clientId", "tenantId", NULL};
    enum cf_rc rc = cf_dynamic_params_known(params, "azure-entra-id-app", names, err);
    if (rc != CF_OK)
        return rc;
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)params, key, value)
    {
        if (!json_is_string(value) || json_string_length(value) == 0 ||
            json_string_length(value) > ID_MAX ||
            strlen(json_string_value(value)) != json_string_length(value)) {
            char field[CF_ERR_FIELD_MAX];
            snprintf(field, sizeof(field), "parameters.%s", key);
            return cf_err_field(err, CF_EVALIDATION, field, "%s: 1 to %d characters expected",
                                field, ID_MAX);
        }
    }
    if (!param(params, "objectId"))
        return cf_err_field(err, CF_EVALIDATION, "parameters.objectId",
                            "parameters.objectId is required (the application's object id)");
    if (!param(params, "clientId"))
        return cf_err_field(err, CF_EVALIDATION, "parameters.clientId",
                            "parameters.clientId is required (the application (client) id)");
    return CF_OK;
}

/* The displayName a lease's secret carries: names Coffer, the dynamic secret and the lease. */
static void display_name(const struct cf_lease_ref *ref, char *out, size_t size)
{
    snprintf(out, size, "coffer lease %.64s (%s)", ref->secret_name ? ref->secret_name : "",
             ref->id ? ref->id : "");
}

static enum cf_rc ea_create(const struct cf_provider_conn *conn, const json_t *params,
                            const struct cf_lease_ref *ref, struct cf_leased_cred *out,
                            struct cf_err *err)
{
    struct cf_graph_password p = {0};
    char name[256];
    const char *tenant = param(params, "tenantId");
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = config_check(params, err);
    if (rc != CF_OK)
        return rc;
    if (!tenant)
        tenant = cf_azure_cred(conn, "tenantId");
    if (!tenant)
        return cf_err_field(err, CF_EVALIDATION, "parameters.tenantId",
                            "parameters.tenantId: the connection names no tenant, so the dynamic "
                            "secret must");
    if (!ref || ref->expires_at <= 0)
        return cf_err_set(err, CF_EINVAL, "an Entra ID lease needs its end date");
    display_name(ref, name, sizeof(name));
    rc = cf_graph_add_password(conn, param(params, "objectId"), name, ref->expires_at, &p, err);
    if (rc != CF_OK)
        return rc;
    snprintf(out->id, sizeof(out->id), "%s", p.key_id);
    out->expires_at = p.end_ms;
    out->fields = json_pack("{s:s, s:s, s:s}", "CLIENT_ID", param(params, "clientId"),
                            "CLIENT_SECRET", p.secret_text, "TENANT_ID", tenant);
    if (!out->fields) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        cf_leased_cred_release(out);
    }
    cf_graph_password_release(&p);
    return rc;
}

static enum cf_rc ea_revoke(const struct cf_provider_conn *conn, const json_t *params,
                            const struct cf_lease_ref *ref, const char *id, struct cf_err *err)
{
    (void)ref;
    enum cf_rc rc = config_check(params, err);
    if (rc != CF_OK)
        return rc;
    /* a keyId is a GUID: anything else did not come from addPassword */
    if (!cf_uuid_valid(id))
        return cf_err_set(err, CF_EINVAL, "\"%.40s\" is not a client secret's keyId", id ? id : "");
    return cf_graph_revoke_password(conn, param(params, "objectId"), id, err);
}

static void ea_plan(const struct cf_provider_conn *conn, const json_t *params,
                    const struct cf_lease_ref *ref, cf_rotation_plan_fn fn, void *ctx)
{
    const char *host = cf_azure_cred(conn, "graphHost");
    const char *object = param(params, "objectId");
    char target[1024], purpose[512], name[256], end[CF_TIME_RFC3339_LEN] = "the lease's end";
    if (ref && ref->expires_at > 0)
        cf_time_format(ref->expires_at, end);
    display_name(ref, name, sizeof(name));
    snprintf(target, sizeof(target), "%s/v1.0/applications/%.128s/addPassword",
             host ? host : CF_GRAPH_HOST, object ? object : "?");
    snprintf(purpose, sizeof(purpose),
             "add a client secret named \"%s\" with endDateTime %s (Entra ID ends it then)", name,
             end);
    fn(ctx, "create", "POST", target, purpose);
    fn(ctx, "renew", "-", "-",
       "nothing at Microsoft Graph, which cannot move a client secret's endDateTime: only the "
       "lease's end moves");
    snprintf(target, sizeof(target), "%s/v1.0/applications/%.128s/removePassword",
             host ? host : CF_GRAPH_HOST, object ? object : "?");
    fn(ctx, "revoke", "POST", target, "remove the lease's client secret by its keyId");
}

const struct cf_dynamic_ops cf_dynamic_entra_app = {
    .type = "azure-entra-id-app",
    .connection_app = "azure-client-secrets",
    .fields = fields,
    .config_check = config_check,
    .create = ea_create,
    .credential_end_fixed = true,
    .renew = NULL, /* Graph cannot move a passwordCredential's endDateTime */
    .revoke = ea_revoke,
    .plan = ea_plan,
};
