/* The "azure-entra-id-app" dynamic provider (provider/entradynamic.h) against the Graph and Entra
 * ID stand-in tests/fakes/azure.py: a lease's client secret named after the lease and ending with
 * it, which obtains a token until it is revoked and not after; revoking twice; a throttled Graph
 * whose Retry-After is waited for; the permission a refusal names; an application that does not
 * exist; bad parameters; and messages that never hold a secret. */
#include "azure_fake.h"

#include "provider/dynamic.h"
#include "provider/entra.h"
#include "provider/entradynamic.h"
#include "provider/graph.h"
#include "util/id.h"
#include "util/time.h"

#define ADMIN_SECRET "graph-admin-secret-9d1f"
#define OBJECT_ID "0b1ec7aa-0000-4000-8000-0000000000d1"
#define APP_ID "a990c11e-0000-4000-8000-0000000000d2"
#define LEASE_ID "1ea5e000-1111-4222-8333-444444444444"

/* Tenant t1, the admin app "admin" (ADMIN_SECRET, Application.ReadWrite.OwnedBy) and the target
 * application OBJECT_ID / APP_ID, owned by admin when owned. */
static void seed(bool owned)
{
    json_decref(ctl("POST", "/_fake/entra/apps",
                    json_pack("{s:s, s:s, s:[{s:s}]}", "tenant", "t1", "clientId", "admin",
                              "secrets", "value", ADMIN_SECRET)));
    json_decref(ctl("POST", "/_fake/graph/roles",
                    json_pack("{s:s, s:s, s:[s]}", "tenant", "t1", "clientId", "admin", "roles",
                              "Application.ReadWrite.OwnedBy")));
    json_decref(ctl("POST", "/_fake/graph/applications",
                    json_pack("{s:s, s:s, s:s, s:[s*]}", "tenant", "t1", "objectId", OBJECT_ID,
                              "appId", APP_ID, "owners", owned ? "admin" : NULL)));
}

static json_t *creds_new(void)
{
    char authority[128], graph[128];
    snprintf(authority, sizeof(authority), "%s/entra", base);
    snprintf(graph, sizeof(graph), "%s/graph", base);
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "tenantId", "t1", "clientId", "admin",
                     "clientSecret", ADMIN_SECRET, "authorityHost", authority, "graphHost", graph);
}

static json_t *params_new(void)
{
    return json_pack("{s:s, s:s}", "objectId", OBJECT_ID, "clientId", APP_ID);
}

/* A lease of app-sp ending in an hour (whole seconds, as Graph keeps endDateTime). */
static struct cf_lease_ref lease_new(void)
{
    return (struct cf_lease_ref){
        .id = LEASE_ID, .secret_name = "app-sp", .expires_at = (cf_now_ms() / 1000 + 3600) * 1000};
}

/* What a token request with the lease's fields answers: CF_OK, or the refusal and its AADSTS. */
static enum cf_rc token_with(const json_t *fields, long *aadsts)
{
    char authority[128];
    snprintf(authority, sizeof(authority), "%s/entra", base);
    json_t *creds = json_pack(
        "{s:s, s:s, s:s, s:s}", "tenantId", json_string_value(json_object_get(fields, "TENANT_ID")),
        "clientId", json_string_value(json_object_get(fields, "CLIENT_ID")), "clientSecret",
        json_string_value(json_object_get(fields, "CLIENT_SECRET")), "authorityHost", authority);
    struct cf_provider_conn conn = {
        .app = "azure-client-secrets", .method = "client-secret", .credentials = creds};
    char *token = NULL;
    struct cf_err err = {0};
    enum cf_rc rc = cf_entra_token_code(&conn, CF_GRAPH_SCOPE, &token, aadsts, &err);
    cf_entra_token_free(token);
    json_decref(creds);
    return rc;
}

static json_t *held(void)
{
    json_t *state = ctl("GET", "/_fake/graph/state?objectId=" OBJECT_ID, NULL);
    json_t *list = json_incref(json_object_get(state, "passwordCredentials"));
    json_decref(state);
    return list;
}

static void assert_clean(const struct cf_err *err, const char *secret)
{
    cr_assert_null(strstr(err->msg, ADMIN_SECRET), "%s", err->msg);
    if (secret)
        cr_assert_null(strstr(err->msg, secret), "%s", err->msg);
}

/* Each test's connection (the admin app's, at the stand-in) and parameters (the application). */
static json_t *creds, *params;
static struct cf_provider_conn conn;

static void rig_start(void)
{
    fake_start();
    creds = creds_new();
    params = params_new();
    conn = (struct cf_provider_conn){
        .app = "azure-client-secrets", .method = "client-secret", .credentials = creds};
}

static void rig_stop(void)
{
    json_decref(params);
    json_decref(creds);
    fake_stop();
}

TestSuite(entra_dynamic, .init = rig_start, .fini = rig_stop, .timeout = 60);

Test(entra_dynamic, lease_secret_works_until_revoked)
{
    seed(true);
    const struct cf_dynamic_ops *ops = cf_dynamic_find("azure-entra-id-app");
    cr_assert_not_null(ops);
    cr_assert_eq(ops, &cf_dynamic_entra_app);
    cr_assert_str_eq(ops->connection_app, "azure-client-secrets");
    cr_assert_null(ops->renew, "Graph cannot move endDateTime: the engine must not expect it");
    struct cf_lease_ref ref = lease_new();
    struct cf_leased_cred cred = {0};
    struct cf_err err = {0};
    long aadsts = 0;

    cr_assert_eq(ops->create(&conn, params, &ref, &cred, &err), CF_OK, "%s", err.msg);
    cr_assert(cf_uuid_valid(cred.id), "%s", cred.id);
    cr_assert_eq(cred.expires_at, ref.expires_at);
    cr_assert_str_eq(json_string_value(json_object_get(cred.fields, "CLIENT_ID")), APP_ID);
    cr_assert_str_eq(json_string_value(json_object_get(cred.fields, "TENANT_ID")), "t1");
    const char *secret = json_string_value(json_object_get(cred.fields, "CLIENT_SECRET"));
    cr_assert(secret && strlen(secret) >= 16);
    char *secret_copy = strdup(secret);
    /* the application holds it under the lease's name, ending with the lease */
    json_t *list = held();
    cr_assert_eq(json_array_size(list), 1);
    json_t *entry = json_array_get(list, 0);
    cr_assert_str_eq(json_string_value(json_object_get(entry, "keyId")), cred.id);
    cr_assert_str_eq(json_string_value(json_object_get(entry, "displayName")),
                     "coffer lease app-sp (" LEASE_ID ")");
    char end[CF_TIME_RFC3339_LEN];
    int64_t end_ms = 0;
    cr_assert_eq(
        cf_time_parse(json_string_value(json_object_get(entry, "endDateTime")), &end_ms, &err),
        CF_OK);
    cr_assert_eq(end_ms, ref.expires_at, "endDateTime %s, lease end %s",
                 json_string_value(json_object_get(entry, "endDateTime")),
                 cf_time_format(ref.expires_at, end));
    json_decref(list);
    /* the addPassword request carried the lease's end */
    cr_assert_eq(logged("POST", "/graph/v1.0/applications/" OBJECT_ID "/addPassword", 200), 1);

    cr_assert_eq(token_with(cred.fields, &aadsts), CF_OK, "the lease's secret obtains no token");

    cr_assert_eq(ops->revoke(&conn, params, &ref, cred.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(token_with(cred.fields, &aadsts), CF_EUNAUTH, "a revoked secret still works");
    cr_assert_eq(aadsts, CF_ENTRA_AADSTS_INVALID_SECRET);
    list = held();
    cr_assert_eq(json_array_size(list), 0);
    json_decref(list);
    /* repeatable: the keyId is gone, the application is not */
    cr_assert_eq(ops->revoke(&conn, params, &ref, cred.id, &err), CF_OK, "%s", err.msg);

    cf_leased_cred_release(&cred);
    cr_assert_null(cred.fields);
    free(secret_copy);
}

Test(entra_dynamic, revoking_one_lease_leaves_the_others)
{
    seed(true);
    const struct cf_dynamic_ops *ops = &cf_dynamic_entra_app;
    struct cf_lease_ref ref = lease_new();
    struct cf_leased_cred a = {0}, b = {0};
    struct cf_err err = {0};
    long aadsts = 0;
    cr_assert_eq(ops->create(&conn, params, &ref, &a, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(ops->create(&conn, params, &ref, &b, &err), CF_OK, "%s", err.msg);
    cr_assert_str_neq(a.id, b.id);
    cr_assert_eq(ops->revoke(&conn, params, &ref, a.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(token_with(a.fields, &aadsts), CF_EUNAUTH);
    cr_assert_eq(token_with(b.fields, &aadsts), CF_OK);
    cr_assert_eq(ops->revoke(&conn, params, &ref, b.id, &err), CF_OK, "%s", err.msg);
    cf_leased_cred_release(&a);
    cf_leased_cred_release(&b);
}

Test(entra_dynamic, throttled_graph_is_waited_for)
{
    seed(true);
    const struct cf_dynamic_ops *ops = &cf_dynamic_entra_app;
    struct cf_lease_ref ref = lease_new();
    struct cf_leased_cred cred = {0};
    struct cf_err err = {0};

    json_decref(ctl("POST", "/_fake/throttle",
                    json_pack("{s:i, s:i, s:s}", "count", 1, "retryAfter", 1, "prefix", "/graph")));
    int64_t started = cf_mono_us();
    cr_assert_eq(ops->create(&conn, params, &ref, &cred, &err), CF_OK, "%s", err.msg);
    int64_t waited_ms = (cf_mono_us() - started) / 1000;
    cr_assert_geq(waited_ms, 1000, "Retry-After: 1 was not waited for (%lld ms)",
                  (long long)waited_ms);
    cr_assert_eq(logged("POST", "/graph/v1.0/applications/" OBJECT_ID "/addPassword", 429), 1);
    cr_assert_eq(logged("POST", "/graph/v1.0/applications/" OBJECT_ID "/addPassword", 200), 1);

    /* throttled on every try: CF_ERATELIMIT, the secret's keyId not leaked, nothing made */
    json_decref(ctl("POST", "/_fake/throttle",
                    json_pack("{s:i, s:i, s:s}", "count", 8, "retryAfter", 0, "prefix", "/graph")));
    cr_assert_eq(ops->revoke(&conn, params, &ref, cred.id, &err), CF_ERATELIMIT);
    assert_clean(&err, json_string_value(json_object_get(cred.fields, "CLIENT_SECRET")));
    json_decref(ctl("POST", "/_fake/throttle",
                    json_pack("{s:i, s:i, s:s}", "count", 0, "retryAfter", 0, "prefix", "/graph")));
    cr_assert_eq(ops->revoke(&conn, params, &ref, cred.id, &err), CF_OK, "%s", err.msg);
    cf_leased_cred_release(&cred);
}

Test(entra_dynamic, refusals)
{
    seed(false); /* the admin app does not own the application */
    const struct cf_dynamic_ops *ops = &cf_dynamic_entra_app;
    struct cf_lease_ref ref = lease_new();
    struct cf_leased_cred cred = {0};
    struct cf_err err = {0};

    cr_assert_eq(ops->create(&conn, params, &ref, &cred, &err), CF_EFORBIDDEN);
    cr_assert_not_null(strstr(err.msg, "Application.ReadWrite.OwnedBy"), "%s", err.msg);
    assert_clean(&err, NULL);
    cr_assert_null(cred.fields);

    /* an application that does not exist: revoking is an error, not "already gone" */
    json_t *missing = json_pack("{s:s, s:s}", "objectId", "0b1ec7aa-0000-4000-8000-00000000dead",
                                "clientId", APP_ID);
    cr_assert_eq(ops->revoke(&conn, missing, &ref, "6a1d0f00-0000-4000-8000-000000000001", &err),
                 CF_ENOTFOUND);
    json_decref(missing);

    /* a keyId that is not a GUID is never sent */
    cr_assert_eq(ops->revoke(&conn, params, &ref, "../../applications", &err), CF_EINVAL);
    cr_assert_eq(logged(NULL, "/graph/v1.0/applications/" OBJECT_ID "/removePassword", 0), 0);

    /* a wrong connection secret */
    json_object_set_new(creds, "clientSecret", json_string("wrong-secret-0000"));
    cr_assert_eq(ops->create(&conn, params, &ref, &cred, &err), CF_EUNAUTH);
    cr_assert_null(strstr(err.msg, "wrong-secret-0000"), "%s", err.msg);

    /* a lease without an end, and a connection and parameters without a tenant */
    ref.expires_at = 0;
    cr_assert_eq(ops->create(&conn, params, &ref, &cred, &err), CF_EINVAL);
    json_object_del(creds, "tenantId");
    ref = lease_new();
    cr_assert_eq(ops->create(&conn, params, &ref, &cred, &err), CF_EVALIDATION);
    cr_assert_str_eq(err.field, "parameters.tenantId");
}

struct param_case {
    const char *json;
    const char *field; /* NULL: accepted */
};

static const struct param_case param_cases[] = {
    {"{\"objectId\": \"o\", \"clientId\": \"c\"}", NULL},
    {"{\"objectId\": \"o\", \"clientId\": \"c\", \"tenantId\": \"t\"}", NULL},
    {"[]", "parameters"},
    {"{\"clientId\": \"c\"}", "parameters.objectId"},
    {"{\"objectId\": \"o\"}", "parameters.clientId"},
    {"{\"objectId\": \"o\", \"clientId\": \"c\", \"lifetime\": 3}", "parameters"},
    {"{\"objectId\": \"\", \"clientId\": \"c\"}", "parameters.objectId"},
    {"{\"objectId\": 7, \"clientId\": \"c\"}", "parameters.objectId"},
    {"{\"objectId\": \"o\", \"clientId\": \"c\\u0000x\"}", "parameters.clientId"},
};

static void plan_collect(void *ctx, const char *step, const char *method, const char *target,
                         const char *purpose)
{
    json_array_append_new(ctx, json_pack("[s, s, s, s]", step, method, target, purpose));
}

Test(entra_dynamic, parameters_and_plan)
{
    const struct cf_dynamic_ops *ops = &cf_dynamic_entra_app;
    for (size_t i = 0; i < sizeof(param_cases) / sizeof(param_cases[0]); i++) {
        json_t *given = json_loads(param_cases[i].json, JSON_ALLOW_NUL, NULL);
        cr_assert_not_null(given, "%zu", i);
        struct cf_err err = {0};
        enum cf_rc rc = ops->config_check(given, &err);
        if (!param_cases[i].field)
            cr_assert_eq(rc, CF_OK, "%zu: %s", i, err.msg);
        else {
            cr_assert_eq(rc, CF_EVALIDATION, "%zu was taken", i);
            cr_assert_str_eq(err.field, param_cases[i].field, "%zu: %s", i, err.msg);
        }
        json_decref(given);
    }
    json_t *plan = json_array();
    struct cf_lease_ref ref = lease_new();
    ops->plan(&conn, params, &ref, plan_collect, plan);
    cr_assert_eq(json_array_size(plan), 3);
    cr_assert_not_null(strstr(json_string_value(json_array_get(json_array_get(plan, 0), 2)),
                              "/graph/v1.0/applications/" OBJECT_ID "/addPassword"));
    cr_assert_not_null(
        strstr(json_string_value(json_array_get(json_array_get(plan, 2), 2)), "/removePassword"));
    char *text = json_dumps(plan, 0);
    cr_assert_null(strstr(text, ADMIN_SECRET));
    free(text);
    json_decref(plan);
}
