/* Microsoft Graph and the "azure-client-secret" rotator against the local stand-in
 * tests/fakes/azure.py: addPassword, removePassword and passwordCredentials, a new secret that
 * works only after it propagates, a removed secret refused afterwards, the permission Graph asks
 * for, throttling, an outage (5xx), the bound of verify's wait, the roles a service connection
 * asks for, and messages that never hold a secret. */
#include "azure_fake.h"

#include <pthread.h>

#include "provider/ado.h"
#include "provider/graph.h"
#include "provider/provider.h"
#include "provider/rotator.h"
#include "util/time.h"

#define ADMIN_SECRET "graph-admin-secret-4711"
#define OBJECT_ID "0b1ec7aa-0000-4000-8000-000000000001"
#define APP_ID "a990c11e-0000-4000-8000-000000000002"
#define ROTATION_ID "7a7a7a7a-1111-4222-8333-444444444444"

/* Tenant t1 with the admin app "admin" (ADMIN_SECRET, the given Graph roles) and the target
 * application OBJECT_ID / APP_ID, owned by admin when owned. */
static void seed(const char *role, bool owned)
{
    json_decref(ctl("POST", "/_fake/entra/apps",
                    json_pack("{s:s, s:s, s:[{s:s}]}", "tenant", "t1", "clientId", "admin",
                              "secrets", "value", ADMIN_SECRET)));
    json_decref(
        ctl("POST", "/_fake/graph/roles",
            json_pack("{s:s, s:s, s:[s]}", "tenant", "t1", "clientId", "admin", "roles", role)));
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

static json_t *params_new(long verify_timeout_ms)
{
    return json_pack("{s:s, s:s, s:I}", "objectId", OBJECT_ID, "clientId", APP_ID,
                     "verifyTimeoutMs", (json_int_t)verify_timeout_ms);
}

static const struct cf_rotation_ref ref = {
    .id = ROTATION_ID, .name = "pipeline-sp", .generation = 3, .lifetime_ms = 0, .current = ""};

static void assert_clean(const struct cf_err *err, const struct cf_rotated_cred *cred)
{
    cr_assert_null(strstr(err->msg, ADMIN_SECRET), "%s", err->msg);
    if (cred && cred->secret)
        cr_assert_null(strstr(err->msg, cred->secret), "%s", err->msg);
}

/* How many passwordCredentials the target application holds. */
static size_t secrets_held(void)
{
    json_t *state = ctl("GET", "/_fake/graph/state?objectId=" OBJECT_ID, NULL);
    size_t n = json_array_size(json_object_get(state, "passwordCredentials"));
    json_decref(state);
    return n;
}

static void plan_collect(void *ctx, const char *step, const char *method, const char *target,
                         const char *purpose)
{
    json_array_append_new(ctx, json_pack("[s, s, s, s]", step, method, target, purpose));
}

TestSuite(provider_graph, .init = fake_start, .fini = fake_stop, .timeout = 60);

Test(provider_graph, rotator_is_registered_with_its_outputs)
{
    const struct cf_rotator_ops *r = cf_rotator_find("azure-client-secret");
    cr_assert_not_null(r);
    cr_assert_str_eq(r->connection_app, "azure-client-secrets");
    cr_assert_str_eq(r->secret_output, "clientSecret");
    struct cf_err err = {0};
    json_t *bad = json_pack("{s:s}", "clientId", APP_ID);
    cr_assert_eq(r->config_check(bad, &err), CF_EVALIDATION);
    cr_assert_str_eq(err.field, "objectId");
    json_decref(bad);
    bad = json_pack("{s:s, s:s, s:i}", "objectId", OBJECT_ID, "clientId", APP_ID, "verifyTimeoutMs",
                    -1);
    cr_assert_eq(r->config_check(bad, &err), CF_EVALIDATION);
    json_decref(bad);
    /* the token is never sent to a plain-http Graph host other than loopback */
    json_t *creds = creds_new(), *params = params_new(0);
    json_object_set_new(creds, "graphHost", json_string("http://graph.example.com"));
    struct cf_provider_conn conn = {
        .app = "azure-client-secrets", .method = "client-secret", .credentials = creds};
    struct cf_rotated_cred cred = {0};
    cr_assert_eq(r->issue(&conn, params, &ref, &cred, &err), CF_EINVAL);
    cr_assert_str_eq(err.field, "graphHost");
    json_decref(params);
    json_decref(creds);
}

Test(provider_graph, issue_verify_revoke_list)
{
    seed("Application.ReadWrite.OwnedBy", true);
    const struct cf_rotator_ops *r = cf_rotator_find("azure-client-secret");
    json_t *creds = creds_new(), *params = params_new(5000);
    struct cf_provider_conn conn = {
        .app = "azure-client-secrets", .method = "client-secret", .credentials = creds};
    struct cf_rotated_cred cred = {0};
    struct cf_err err = {0};
    char **ids = NULL;
    size_t n = 0;

    int64_t before = cf_now_ms();
    cr_assert_eq(r->issue(&conn, params, &ref, &cred, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(json_string_value(json_object_get(cred.outputs, "clientId")), APP_ID);
    cr_assert_str_eq(json_string_value(json_object_get(cred.outputs, "clientSecret")), cred.secret);
    /* endDateTime = now + the default lifetime, to the second */
    cr_assert_geq(cred.expires_at, before + CF_GRAPH_DEFAULT_LIFETIME_MS - 2000);
    cr_assert_leq(cred.expires_at, before + CF_GRAPH_DEFAULT_LIFETIME_MS + 2000);
    cr_assert_eq(r->verify(&conn, params, &cred, &err), CF_OK, "%s", err.msg);

    cr_assert_eq(r->list_issued(&conn, params, &ref, &ids, &n, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(ids[0], cred.id);
    cf_rotated_ids_free(ids, n);
    /* another rotation's credential is not listed */
    struct cf_rotation_ref other = ref;
    other.id = "99999999-1111-4222-8333-444444444444";
    cr_assert_eq(r->list_issued(&conn, params, &other, &ids, &n, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(n, 0);
    cf_rotated_ids_free(ids, n);

    cr_assert_eq(r->revoke(&conn, params, &ref, cred.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(secrets_held(), 0);
    /* revoking twice is fine */
    cr_assert_eq(r->revoke(&conn, params, &ref, cred.id, &err), CF_OK, "%s", err.msg);
    /* the removed secret is really refused */
    json_t *p0 = params_new(0);
    cr_assert_eq(r->verify(&conn, p0, &cred, &err), CF_EUNAUTH);
    cr_assert_not_null(strstr(err.msg, "AADSTS7000215"), "%s", err.msg);
    assert_clean(&err, &cred);
    cr_assert_eq(logged("POST", "/graph/v1.0/applications/" OBJECT_ID "/removePassword", 204), 1);
    cr_assert_eq(logged("POST", "/graph/v1.0/applications/" OBJECT_ID "/removePassword", 404), 1);

    /* an unknown application stays an error */
    json_t *ghost = json_pack("{s:s, s:s}", "objectId", "no-such-app", "clientId", APP_ID);
    cr_assert_eq(r->revoke(&conn, ghost, &ref, cred.id, &err), CF_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "Request_ResourceNotFound"), "%s", err.msg);
    json_decref(ghost);
    json_decref(p0);
    cf_rotated_cred_release(&cred);
    json_decref(params);
    json_decref(creds);
}

Test(provider_graph, verify_waits_for_propagation_within_its_bound)
{
    seed("Application.ReadWrite.All", false);
    json_decref(ctl("POST", "/_fake/entra/propagation", json_pack("{s:f}", "seconds", 1.5)));
    const struct cf_rotator_ops *r = cf_rotator_find("azure-client-secret");
    json_t *creds = creds_new(), *params = params_new(10000), *short_params = params_new(300);
    struct cf_provider_conn conn = {
        .app = "azure-client-secrets", .method = "client-secret", .credentials = creds};
    struct cf_rotated_cred cred = {0};
    struct cf_err err = {0};

    cr_assert_eq(r->issue(&conn, params, &ref, &cred, &err), CF_OK, "%s", err.msg);
    /* a bound shorter than the propagation gives up with Entra's answer */
    cr_assert_eq(r->verify(&conn, short_params, &cred, &err), CF_EUNAUTH);
    cr_assert_not_null(strstr(err.msg, "AADSTS7000215"), "%s", err.msg);
    assert_clean(&err, &cred);
    int before = logged("POST", "/entra/t1/oauth2/v2.0/token", 401);
    cr_assert_eq(r->verify(&conn, params, &cred, &err), CF_OK, "%s", err.msg);
    cr_assert_gt(logged("POST", "/entra/t1/oauth2/v2.0/token", 401), before);
    /* a refusal that waiting cannot cure (an unknown tenant, AADSTS90002) ends the wait at once */
    json_t *wrong_tenant = params_new(10000);
    json_object_set_new(wrong_tenant, "tenantId", json_string("t-unknown"));
    int64_t started = cf_mono_us();
    cr_assert_eq(r->verify(&conn, wrong_tenant, &cred, &err), CF_EUNAUTH);
    cr_assert_lt(cf_mono_us() - started, 3 * 1000 * 1000);
    cr_assert_eq(logged("POST", "/entra/t-unknown/oauth2/v2.0/token", 400), 1);
    cr_assert_not_null(strstr(err.msg, "could not be tested"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "AADSTS90002"), "%s", err.msg);
    assert_clean(&err, &cred);
    json_decref(wrong_tenant);
    cf_rotated_cred_release(&cred);
    json_decref(short_params);
    json_decref(params);
    json_decref(creds);
}

Test(provider_graph, forbidden_without_ownership_or_role)
{
    seed("Application.ReadWrite.OwnedBy", false);
    const struct cf_rotator_ops *r = cf_rotator_find("azure-client-secret");
    json_t *creds = creds_new(), *params = params_new(0);
    struct cf_provider_conn conn = {
        .app = "azure-client-secrets", .method = "client-secret", .credentials = creds};
    struct cf_rotated_cred cred = {0};
    struct cf_err err = {0};

    cr_assert_eq(r->issue(&conn, params, &ref, &cred, &err), CF_EFORBIDDEN);
    cr_assert_not_null(strstr(err.msg, "Application.ReadWrite.OwnedBy"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "Authorization_RequestDenied"), "%s", err.msg);
    assert_clean(&err, NULL);
    cr_assert_eq(secrets_held(), 0);
    /* the connection check reads the service principal: allowed without ownership */
    json_t *report = NULL;
    cr_assert_eq(cf_provider_check(&conn, &report, &err), CF_OK, "%s", err.msg);
    cr_assert(json_is_true(json_object_get(report, "ok")));
    json_decref(report);
    /* without any Graph application permission even that read is refused */
    json_decref(ctl("POST", "/_fake/graph/roles",
                    json_pack("{s:s, s:s, s:[]}", "tenant", "t1", "clientId", "admin", "roles")));
    report = NULL;
    cr_assert_eq(cf_provider_check(&conn, &report, &err), CF_EFORBIDDEN);
    cr_assert_not_null(strstr(err.msg, "Authorization_RequestDenied"), "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "lacks Application.Read.All"), "%s", err.msg);
    cr_assert_null(report);
    json_decref(params);
    json_decref(creds);
}

Test(provider_graph, check_refuses_a_wrong_secret_and_throttling_is_retried)
{
    seed("Application.ReadWrite.OwnedBy", true);
    json_t *creds = creds_new(), *report = NULL;
    struct cf_provider_conn conn = {
        .app = "azure-client-secrets", .method = "client-secret", .credentials = creds};
    struct cf_err err = {0};
    struct cf_graph_password p = {0};

    json_decref(ctl("POST", "/_fake/throttle",
                    json_pack("{s:i, s:i, s:s}", "count", 2, "retryAfter", 0, "prefix", "/graph")));
    cr_assert_eq(cf_graph_add_password(&conn, OBJECT_ID, "x", cf_now_ms() + 3600000, &p, &err),
                 CF_OK, "%s", err.msg);
    cr_assert_eq(logged("POST", "/graph/v1.0/applications/" OBJECT_ID "/addPassword", 429), 2);
    cr_assert_eq(cf_graph_remove_password(&conn, OBJECT_ID, p.key_id, &err), CF_OK, "%s", err.msg);
    cf_graph_password_release(&p);

    json_object_set_new(creds, "clientSecret", json_string("wrong-secret-value"));
    cr_assert_eq(cf_provider_check(&conn, &report, &err), CF_EUNAUTH);
    cr_assert_not_null(strstr(err.msg, "AADSTS7000215"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "wrong-secret-value"), "%s", err.msg);
    cr_assert_null(report);
    json_decref(creds);
}

/* A Graph outage (5xx) is CF_EIO, with the answer's Retry-After kept for the engine; nothing is
 * added or removed while it lasts, and calls work again once it ends. */
Test(provider_graph, outage_is_retryable_and_changes_nothing)
{
    seed("Application.ReadWrite.OwnedBy", true);
    const struct cf_rotator_ops *r = cf_rotator_find("azure-client-secret");
    json_t *creds = creds_new(), *params = params_new(0);
    struct cf_provider_conn conn = {
        .app = "azure-client-secrets", .method = "client-secret", .credentials = creds};
    struct cf_rotated_cred cred = {0}, during = {0};
    struct cf_err err = {0};

    cr_assert_eq(r->issue(&conn, params, &ref, &cred, &err), CF_OK, "%s", err.msg);
    json_decref(ctl("POST", "/_fake/graph/outage",
                    json_pack("{s:i, s:i}", "status", 503, "retryAfter", 1)));
    cr_assert_eq(r->issue(&conn, params, &ref, &during, &err), CF_EIO);
    cr_assert_not_null(strstr(err.msg, "503 serviceNotAvailable"), "%s", err.msg);
    cr_assert_eq(err.retry_after_s, 1);
    cr_assert_null(during.secret);
    /* each call was tried CF_AZURE_ATTEMPTS times, then given back to the engine */
    cr_assert_eq(logged("POST", "/graph/v1.0/applications/" OBJECT_ID "/addPassword", 503), 4);
    cr_assert_eq(r->revoke(&conn, params, &ref, cred.id, &err), CF_EIO);
    assert_clean(&err, &cred);

    json_decref(ctl("POST", "/_fake/graph/outage", json_pack("{s:i}", "status", 500)));
    cr_assert_eq(r->revoke(&conn, params, &ref, cred.id, &err), CF_EIO);
    cr_assert_not_null(strstr(err.msg, "500 generalException"), "%s", err.msg);
    cr_assert_eq(err.retry_after_s, 0);
    cr_assert_eq(secrets_held(), 1);
    /* the secret issued before the outage still signs in: the token endpoint is not Graph */
    cr_assert_eq(r->verify(&conn, params, &cred, &err), CF_OK, "%s", err.msg);

    json_decref(ctl("POST", "/_fake/graph/outage", json_pack("{s:i}", "status", 0)));
    cr_assert_eq(r->revoke(&conn, params, &ref, cred.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(secrets_held(), 0);
    cr_assert_eq(logged("POST", "/graph/v1.0/applications/" OBJECT_ID "/removePassword", 204), 1);
    cf_rotated_cred_release(&cred);
    json_decref(params);
    json_decref(creds);
}

/* verifyTimeoutMs is bounded well below the engine's 5 minute claim of a step. */
Test(provider_graph, verify_bound_above_the_limit_is_refused)
{
    const struct cf_rotator_ops *r = cf_rotator_find("azure-client-secret");
    struct cf_err err = {0};
    json_t *ok = params_new(CF_GRAPH_VERIFY_MAX_MS),
           *too_long = params_new(CF_GRAPH_VERIFY_MAX_MS + 1);
    cr_assert_lt(CF_GRAPH_VERIFY_MAX_MS, 5 * 60 * 1000 - 60 * 1000);
    cr_assert_eq(r->config_check(ok, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(r->config_check(too_long, &err), CF_EVALIDATION);
    cr_assert_str_eq(err.field, "verifyTimeoutMs");
    cr_assert_not_null(strstr(err.msg, "\"verifyTimeoutMs\" must be an integer from 0 to 180000"),
                       "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "claim"), "%s", err.msg);
    json_decref(too_long);
    json_decref(ok);
}

Test(provider_graph, plan_names_the_calls_without_secrets)
{
    const struct cf_rotator_ops *r = cf_rotator_find("azure-client-secret");
    json_t *creds = creds_new(), *params = params_new(0);
    struct cf_provider_conn conn = {
        .app = "azure-client-secrets", .method = "client-secret", .credentials = creds};
    json_t *calls = json_array();
    r->plan(&conn, params, &ref, plan_collect, calls);
    cr_assert_eq(json_array_size(calls), 3);
    char *text = json_dumps(calls, 0);
    cr_assert_not_null(strstr(text, "/v1.0/applications/" OBJECT_ID "/addPassword"), "%s", text);
    cr_assert_not_null(strstr(text, "/removePassword"), "%s", text);
    cr_assert_null(strstr(text, ADMIN_SECRET));
    free(text);
    json_decref(calls);
    json_decref(params);
    json_decref(creds);
}

/* Org o1 with project p1, where admin may manage service endpoints, and endpoint "sc1" holding
 * key for APP_ID in tenant t1. */
static void seed_endpoint(const char *key)
{
    json_decref(ctl("POST", "/_fake/ado/orgs",
                    json_pack("{s:s, s:[{s:s}], s:{s:[s]}}", "org", "o1", "projects", "name", "p1",
                              "principals", "admin", "vso.serviceendpoint_manage")));
    json_decref(ctl("POST", "/_fake/ado/endpoints",
                    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "org", "o1", "project", "p1", "id",
                              "sc1", "tenantId", "t1", "clientId", APP_ID, "key", key)));
}

static json_t *ado_creds_new(void)
{
    json_t *c = creds_new();
    char instance[128];
    snprintf(instance, sizeof(instance), "%s/ado", base);
    json_object_set_new(c, "orgName", json_string("o1"));
    json_object_set_new(c, "instanceUrl", json_string(instance));
    json_object_del(c, "graphHost");
    return c;
}

/* What a test of the rotator with the service connection consumer holds: both connections (the
 * Graph one as admin, the Azure DevOps one as admin too), the rotator's parameters and the
 * consumer's config for endpoint "sc1" of project "p1". */
struct rig {
    const struct cf_rotator_ops *r;
    const struct cf_consumer_ops *c;
    json_t *graph_creds, *ado_creds, *params, *config;
    struct cf_provider_conn graph, ado;
};

static void rig_open(struct rig *t, long verify_timeout_ms)
{
    t->r = cf_rotator_find("azure-client-secret");
    t->c = cf_consumer_find("azure-devops-service-connection");
    cr_assert_not_null(t->r);
    cr_assert_not_null(t->c);
    t->graph_creds = creds_new();
    t->ado_creds = ado_creds_new();
    t->params = params_new(verify_timeout_ms);
    t->config = json_pack("{s:s, s:s}", "project", "p1", "endpointId", "sc1");
    t->graph = (struct cf_provider_conn){
        .app = "azure-client-secrets", .method = "client-secret", .credentials = t->graph_creds};
    t->ado = (struct cf_provider_conn){
        .app = "azure-devops", .method = "client-secret", .credentials = t->ado_creds};
}

static void rig_close(struct rig *t)
{
    json_decref(t->config);
    json_decref(t->params);
    json_decref(t->ado_creds);
    json_decref(t->graph_creds);
}

/* Whether a pipeline logging in through the fake service connection succeeds now. */
static bool pipeline_ok(void)
{
    char url[256];
    char *body = NULL;
    const char *headers[] = {"Content-Type: application/json", NULL};
    json_t *b = json_pack("{s:s, s:s}", "org", "o1", "id", "sc1");
    body = json_dumps(b, JSON_COMPACT);
    snprintf(url, sizeof(url), "%s/_fake/ado/use-endpoint", base);
    struct cf_http_request req = {
        .net = {.url = url}, .method = "POST", .body = body, .headers = headers};
    struct cf_http_response resp = {0};
    struct cf_err err;
    cr_assert_eq(cf_http_perform(&req, &resp, &err), CF_OK, "%s", err.msg);
    long status = resp.status;
    cf_http_response_release(&resp);
    free(body);
    json_decref(b);
    return status == 200;
}

Test(provider_graph, consumer_push_verify_and_a_wrong_key)
{
    seed("Application.ReadWrite.OwnedBy", true);
    seed_endpoint("stale-key-value-0000");
    struct rig t;
    rig_open(&t, 5000);
    cr_assert_str_eq(t.c->connection_app, "azure-devops");
    struct cf_rotated_cred cred = {0};
    struct cf_err err = {0};

    /* the stale key fails the test connection with Entra's answer, and the pipeline too */
    cr_assert(!pipeline_ok());
    cr_assert_eq(t.c->verify(&t.ado, t.config, NULL, NULL, &err), CF_EUNAUTH);
    cr_assert_not_null(strstr(err.msg, "AADSTS7000215"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "stale-key-value-0000"), "%s", err.msg);

    cr_assert_eq(t.r->issue(&t.graph, t.params, &ref, &cred, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(t.c->push(&t.ado, t.config, &ref, &cred, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(t.c->verify(&t.ado, t.config, NULL, NULL, &err), CF_OK, "%s", err.msg);
    cr_assert(pipeline_ok());
    json_t *state = ctl("GET", "/_fake/ado/endpoints?org=o1&id=sc1", NULL);
    cr_assert_str_eq(json_string_value(json_object_get(state, "serviceprincipalid")), APP_ID);
    cr_assert_eq(json_integer_value(json_object_get(state, "updates")), 1);
    json_decref(state);
    cr_assert_eq(logged("PUT", "/ado/o1/_apis/serviceendpoint/endpoints/sc1", 200), 1);

    /* once the secret is revoked the connection fails again, with a clean message */
    cr_assert_eq(t.r->revoke(&t.graph, t.params, &ref, cred.id, &err), CF_OK, "%s", err.msg);
    cr_assert(!pipeline_ok());
    cr_assert_eq(t.c->verify(&t.ado, t.config, NULL, NULL, &err), CF_EUNAUTH);
    assert_clean(&err, &cred);

    /* an unknown endpoint and a bad config */
    json_t *ghost = json_pack("{s:s, s:s}", "project", "p1", "endpointId", "nope");
    cr_assert_eq(t.c->push(&t.ado, ghost, &ref, &cred, &err), CF_ENOTFOUND);
    json_decref(ghost);
    json_t *bad = json_pack("{s:s}", "project", "p1");
    cr_assert_eq(t.c->config_check(bad, &err), CF_EVALIDATION);
    cr_assert_str_eq(err.field, "endpointId");
    json_decref(bad);

    cf_rotated_cred_release(&cred);
    rig_close(&t);
}

Test(provider_graph, consumer_needs_the_endpoint_scope)
{
    seed("Application.ReadWrite.OwnedBy", true);
    seed_endpoint("stale-key-value-0000");
    json_decref(ctl("POST", "/_fake/ado/orgs",
                    json_pack("{s:s, s:{s:[s]}}", "org", "o1", "principals", "admin",
                              "vso.variablegroups_read")));
    const struct cf_consumer_ops *c = cf_consumer_find("azure-devops-service-connection");
    json_t *ado_creds = ado_creds_new();
    json_t *config = json_pack("{s:s, s:s}", "project", "p1", "endpointId", "sc1");
    struct cf_provider_conn ado = {
        .app = "azure-devops", .method = "client-secret", .credentials = ado_creds};
    struct cf_err err = {0};
    cr_assert_eq(c->verify(&ado, config, NULL, NULL, &err), CF_EFORBIDDEN);
    cr_assert_not_null(strstr(err.msg, "vso.serviceendpoint_manage"), "%s", err.msg);
    json_decref(config);
    json_decref(ado_creds);
}

/* Roles on the service connection: a User may run its test request but not update its key; a
 * Reader may do neither. The refusal names the role and leaves the endpoint's key alone. */
Test(provider_graph, consumer_needs_the_administrator_role_to_push)
{
    seed("Application.ReadWrite.OwnedBy", true);
    seed_endpoint("stale-key-value-0000");
    struct rig t;
    rig_open(&t, 5000);
    struct cf_rotated_cred cred = {0};
    struct cf_err err = {0};

    json_decref(ctl("POST", "/_fake/ado/endpoints/roles",
                    json_pack("{s:s, s:s, s:s, s:s}", "org", "o1", "id", "sc1", "identity", "admin",
                              "role", "User")));
    cr_assert_eq(t.r->issue(&t.graph, t.params, &ref, &cred, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(t.c->push(&t.ado, t.config, &ref, &cred, &err), CF_EFORBIDDEN);
    cr_assert_not_null(strstr(err.msg, "lacks the Administrator role on the service connection"),
                       "%s", err.msg);
    cr_assert_not_null(strstr(err.msg, "ServiceEndpointException"), "%s", err.msg);
    assert_clean(&err, &cred);
    json_t *state = ctl("GET", "/_fake/ado/endpoints?org=o1&id=sc1", NULL);
    cr_assert_eq(json_integer_value(json_object_get(state, "updates")), 0);
    json_decref(state);
    /* a User may run the test request (which fails on the stale key, not on the role) */
    cr_assert_eq(t.c->verify(&t.ado, t.config, NULL, NULL, &err), CF_EUNAUTH);
    cr_assert_not_null(strstr(err.msg, "AADSTS7000215"), "%s", err.msg);

    json_decref(ctl("POST", "/_fake/ado/endpoints/roles",
                    json_pack("{s:s, s:s, s:s, s:s}", "org", "o1", "id", "sc1", "identity", "admin",
                              "role", "Reader")));
    cr_assert_eq(t.c->verify(&t.ado, t.config, NULL, NULL, &err), CF_EFORBIDDEN);
    cr_assert_not_null(strstr(err.msg, "lacks the User role"), "%s", err.msg);
    /* without any role the service connection is not visible at all */
    json_decref(ctl(
        "POST", "/_fake/ado/endpoints/roles",
        json_pack("{s:s, s:s, s:s, s:n}", "org", "o1", "id", "sc1", "identity", "admin", "role")));
    cr_assert_eq(t.c->push(&t.ado, t.config, &ref, &cred, &err), CF_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "does not exist"), "%s", err.msg);

    json_decref(ctl("POST", "/_fake/ado/endpoints/roles",
                    json_pack("{s:s, s:s, s:s, s:s}", "org", "o1", "id", "sc1", "identity", "admin",
                              "role", "Administrator")));
    cr_assert_eq(t.c->push(&t.ado, t.config, &ref, &cred, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(t.c->verify(&t.ado, t.config, NULL, NULL, &err), CF_OK, "%s", err.msg);

    cf_rotated_cred_release(&cred);
    rig_close(&t);
}

struct pipeline {
    pthread_mutex_t lock;
    bool stop;
    int runs, failures;
};

/* A pipeline signing in through the service connection every 100 ms until told to stop. */
static void *pipeline_loop(void *arg)
{
    struct pipeline *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        bool stop = p->stop;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        char url[256];
        const char *headers[] = {"Content-Type: application/json", NULL};
        snprintf(url, sizeof(url), "%s/_fake/ado/use-endpoint", base);
        struct cf_http_request req = {.net = {.url = url},
                                      .method = "POST",
                                      .body = "{\"org\":\"o1\",\"id\":\"sc1\"}",
                                      .headers = headers};
        struct cf_http_response resp = {0};
        struct cf_err err;
        bool ok = cf_http_perform(&req, &resp, &err) == CF_OK && resp.status == 200;
        cf_http_response_release(&resp);
        pthread_mutex_lock(&p->lock);
        p->runs++;
        p->failures += !ok;
        pthread_mutex_unlock(&p->lock);
        usleep(100 * 1000);
    }
    return NULL;
}

Test(provider_graph, a_pipeline_never_fails_across_a_rotation)
{
    seed("Application.ReadWrite.OwnedBy", true);
    struct rig t;
    rig_open(&t, 10000);
    struct cf_rotated_cred old = {0}, next = {0};
    struct cf_rotation_ref ref2 = ref;
    struct cf_err err = {0};
    struct pipeline p = {.lock = PTHREAD_MUTEX_INITIALIZER};
    pthread_t loop;

    /* generation 1 in place before the pipeline starts */
    cr_assert_eq(t.r->issue(&t.graph, t.params, &ref, &old, &err), CF_OK, "%s", err.msg);
    seed_endpoint(old.secret);
    json_decref(ctl("POST", "/_fake/entra/propagation", json_pack("{s:f}", "seconds", 1.0)));
    cr_assert_eq(pthread_create(&loop, NULL, pipeline_loop, &p), 0);

    /* issue, verify (waits out the propagation), push, verify the consumer, revoke the old */
    ref2.generation = ref.generation + 1;
    ref2.current = old.id;
    cr_assert_eq(t.r->issue(&t.graph, t.params, &ref2, &next, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(t.r->verify(&t.graph, t.params, &next, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(t.c->push(&t.ado, t.config, &ref2, &next, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(t.c->verify(&t.ado, t.config, NULL, NULL, &err), CF_OK, "%s", err.msg);
    usleep(300 * 1000);
    cr_assert_eq(t.r->revoke(&t.graph, t.params, &ref, old.id, &err), CF_OK, "%s", err.msg);
    usleep(300 * 1000);

    pthread_mutex_lock(&p.lock);
    p.stop = true;
    pthread_mutex_unlock(&p.lock);
    pthread_join(loop, NULL);
    cr_log_info("pipeline runs across the rotation: %d, failures: %d", p.runs, p.failures);
    cr_assert_gt(p.runs, 10);
    cr_assert_eq(p.failures, 0);
    /* the old secret is refused now */
    json_t *p0 = params_new(0);
    cr_assert_eq(t.r->verify(&t.graph, p0, &old, &err), CF_EUNAUTH);
    json_decref(p0);
    cf_rotated_cred_release(&next);
    cf_rotated_cred_release(&old);
    rig_close(&t);
}
