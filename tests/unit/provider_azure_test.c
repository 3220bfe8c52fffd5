/* The Azure providers (Entra ID tokens, Azure DevOps variable groups, Key Vault secrets) against
 * the local stand-in tests/fakes/azure.py, started per test on an ephemeral port: requests, their
 * answers, the request log, and messages that never hold a credential or a secret value. */
#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "net/http.h"
#include "provider/ado.h"
#include "provider/entra.h"
#include "provider/keyvault.h"
#include "provider/provider.h"
#include "azure_fake.h"

#define SECRET "s3cr3t-client-value"
#define PAT "pat-value-0123456789"
#define VALUE_A "value-of-a-7f3e"
#define VALUE_B "value-of-b-91c2"

/* The log file holds no secret value in clear. */
static void assert_log_clean(void)
{
    char path[128], buf[1 << 16];
    snprintf(path, sizeof(path), "%s/requests.jsonl", state_dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    for (const char *s = SECRET; s; s = NULL)
        cr_assert_null(strstr(buf, s));
    cr_assert_null(strstr(buf, PAT));
    cr_assert_null(strstr(buf, VALUE_A));
    cr_assert_null(strstr(buf, VALUE_B));
}

static void assert_msg_clean(const struct cf_err *err)
{
    cr_assert_null(strstr(err->msg, SECRET), "%s", err->msg);
    cr_assert_null(strstr(err->msg, PAT), "%s", err->msg);
    cr_assert_null(strstr(err->msg, VALUE_A), "%s", err->msg);
    cr_assert_null(strstr(err->msg, "-----BEGIN"), "%s", err->msg);
}

static char *read_pem(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/tests/testdata/azure/%s", CF_SOURCE_DIR, name);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    char *pem = calloc(1, 16384);
    size_t n = fread(pem, 1, 16383, f);
    (void)n;
    fclose(f);
    return pem;
}

static char sha_hex[80];
/* "sha256:<hex>" as the fake writes it. */
static const char *sha(const char *text)
{
    unsigned char d[32];
    EVP_Digest(text, strlen(text), d, NULL, EVP_sha256(), NULL);
    strcpy(sha_hex, "sha256:");
    for (int i = 0; i < 32; i++)
        snprintf(sha_hex + 7 + 2 * i, 3, "%02x", d[i]);
    return sha_hex;
}

/* Registers app c1 in tenant t1 with SECRET and client.pem, vault v1 where it is Secrets Officer,
 * org o1 with project p1, and PAT with scopes. */
static void seed(const char *pat_scopes)
{
    char *pem = read_pem("client.pem");
    json_decref(ctl("POST", "/_fake/entra/apps",
                    json_pack("{s:s, s:s, s:[{s:s}], s:s}", "tenant", "t1", "clientId", "c1",
                              "secrets", "value", SECRET, "certificate", pem)));
    free(pem);
    json_decref(ctl(
        "POST", "/_fake/kv/vaults",
        json_pack("{s:s, s:{s:[s]}}", "vault", "v1", "roles", "c1", "Key Vault Secrets Officer")));
    json_decref(ctl("POST", "/_fake/ado/orgs",
                    json_pack("{s:s, s:[{s:s, s:s}], s:{s:[s,s]}}", "org", "o1", "projects", "name",
                              "p1", "id", "11111111-2222-3333-4444-555555555555", "principals",
                              "c1", "vso.variablegroups_manage", "vso.project")));
    json_t *scopes = json_array();
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", pat_scopes);
    for (char *s = copy, *next; s && *s; s = next) {
        next = strchr(s, ',');
        if (next)
            *next++ = '\0';
        json_array_append_new(scopes, json_string(s));
    }
    json_decref(ctl("POST", "/_fake/ado/pats",
                    json_pack("{s:s, s:s, s:o}", "org", "o1", "token", PAT, "scopes", scopes)));
}

static json_t *entra_creds(const char *method)
{
    char authority[128];
    snprintf(authority, sizeof(authority), "%s/entra", base);
    json_t *c = json_pack("{s:s, s:s, s:s}", "tenantId", "t1", "clientId", "c1", "authorityHost",
                          authority);
    if (strcmp(method, "certificate") == 0) {
        char *pem = read_pem("client.pem");
        json_object_set_new(c, "certificate", json_string(pem));
        free(pem);
    } else {
        json_object_set_new(c, "clientSecret", json_string(SECRET));
    }
    return c;
}

static json_t *ado_pat_creds(void)
{
    char instance[128];
    snprintf(instance, sizeof(instance), "%s/ado", base);
    return json_pack("{s:s, s:s, s:s}", "accessToken", PAT, "orgName", "o1", "instanceUrl",
                     instance);
}

static json_t *vault_config(bool purge)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/kv/v1", base);
    return json_pack("{s:s, s:b}", "vaultBaseUrl", url, "purgeOnDelete", purge);
}

TestSuite(provider_azure, .init = fake_start, .fini = fake_stop, .timeout = 30);

Test(provider_azure, token_by_secret_is_cached)
{
    seed("vso.project");
    json_t *creds = entra_creds("client-secret");
    struct cf_entra_cache *cache = cf_entra_cache_new();
    struct cf_provider_conn conn = {"azure-key-vault", "client-secret", creds, cache};
    struct cf_err err;
    char *t1 = NULL, *t2 = NULL;
    int64_t exp = 0;
    cr_assert_eq(cf_entra_token(&conn, CF_ENTRA_SCOPE_VAULT, &t1, &exp, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_eq(cf_entra_token(&conn, CF_ENTRA_SCOPE_VAULT, &t2, NULL, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_str_eq(t1, t2);
    cr_assert_gt(exp, 0);
    cr_assert_eq(logged("POST", "/entra/t1/oauth2/v2.0/token", 200), 1);
    /* another scope is another token */
    cf_entra_token_free(t2);
    cr_assert_eq(cf_entra_token(&conn, CF_ENTRA_SCOPE_DEVOPS, &t2, NULL, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_eq(logged("POST", "/entra/", 200), 2);
    assert_log_clean();
    cf_entra_token_free(t1);
    cf_entra_token_free(t2);
    cf_entra_cache_free(cache);
    json_decref(creds);
}

Test(provider_azure, token_by_certificate)
{
    seed("vso.project");
    json_t *creds = entra_creds("certificate");
    struct cf_provider_conn conn = {"azure-key-vault", "certificate", creds, NULL};
    struct cf_err err;
    char *token = NULL;
    cr_assert_eq(cf_entra_token(&conn, CF_ENTRA_SCOPE_VAULT, &token, NULL, &err), CF_OK, "%s",
                 err.msg);
    cf_entra_token_free(token);
    /* a certificate the app does not have */
    char *other = read_pem("other.pem");
    json_object_set_new(creds, "certificate", json_string(other));
    free(other);
    cr_assert_eq(cf_entra_token(&conn, CF_ENTRA_SCOPE_VAULT, &token, NULL, &err), CF_EUNAUTH);
    cr_assert(strstr(err.msg, "AADSTS700027"), "%s", err.msg);
    cr_assert(strstr(err.msg, "certificate"), "%s", err.msg);
    assert_msg_clean(&err);
    json_decref(creds);
}

Test(provider_azure, token_errors_name_aadsts)
{
    seed("vso.project");
    json_t *creds = entra_creds("client-secret");
    struct cf_provider_conn conn = {"azure-key-vault", "client-secret", creds, NULL};
    struct cf_err err;
    char *token = NULL;
    json_decref(ctl("POST", "/_fake/entra/expire", json_pack("{s:s}", "clientId", "c1")));
    cr_assert_eq(cf_entra_token(&conn, CF_ENTRA_SCOPE_VAULT, &token, NULL, &err), CF_EUNAUTH);
    cr_assert(strstr(err.msg, "AADSTS7000222"), "%s", err.msg);
    cr_assert(strstr(err.msg, "401 invalid_client"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "Trace ID"), "%s", err.msg);
    assert_msg_clean(&err);
    json_object_set_new(creds, "clientSecret", json_string("wrong-" SECRET));
    cr_assert_eq(cf_entra_token(&conn, CF_ENTRA_SCOPE_VAULT, &token, NULL, &err), CF_EUNAUTH);
    cr_assert(strstr(err.msg, "AADSTS7000215"), "%s", err.msg);
    assert_msg_clean(&err);
    json_object_set_new(creds, "clientId", json_string("nobody"));
    cr_assert_eq(cf_entra_token(&conn, CF_ENTRA_SCOPE_VAULT, &token, NULL, &err), CF_EUNAUTH);
    cr_assert(strstr(err.msg, "AADSTS700016"), "%s", err.msg);
    /* a credential is never sent in clear off the machine */
    json_t *plain = json_deep_copy(creds);
    json_object_set_new(plain, "authorityHost", json_string("http://login.example.com"));
    struct cf_provider_conn plain_conn = {"azure-key-vault", "client-secret", plain, NULL};
    cr_assert_eq(cf_entra_token(&plain_conn, CF_ENTRA_SCOPE_VAULT, &token, NULL, &err), CF_EINVAL);
    cr_assert_str_eq(err.field, "authorityHost");
    json_decref(plain);
    json_object_set_new(creds, "tenantId", json_string("t-unknown"));
    cr_assert_eq(cf_entra_token(&conn, CF_ENTRA_SCOPE_VAULT, &token, NULL, &err), CF_EUNAUTH);
    cr_assert(strstr(err.msg, "AADSTS90002"), "%s", err.msg);
    assert_log_clean();
    json_decref(creds);
}

/* The fake's view of group name in o1/p1, or NULL. */
static json_t *group_state(const char *name)
{
    json_t *groups = ctl("GET", "/_fake/ado/groups?org=o1&project=p1", NULL);
    size_t i;
    json_t *g, *found = NULL;
    json_array_foreach(groups, i, g) if (strcmp(json_string_value(json_object_get(g, "name")),
                                                name) == 0) found = json_incref(g);
    json_decref(groups);
    return found;
}

Test(provider_azure, ado_create_adopt_keep_and_own)
{
    seed("vso.variablegroups_manage,vso.project");
    const struct cf_dest_ops *ado = cf_dest_find("azure-devops");
    cr_assert_not_null(ado);
    json_t *creds = ado_pat_creds();
    struct cf_provider_conn conn = {"azure-devops", "access-token", creds, NULL};
    struct cf_err err;
    struct cf_sync_item items[] = {
        {.name = "A", .key = "A", .value = VALUE_A, .value_len = strlen(VALUE_A), .version = 1},
        {.name = "B", .key = "B", .value = VALUE_B, .value_len = strlen(VALUE_B), .version = 1},
    };
    /* a new group is created */
    json_t *config =
        json_pack("{s:s, s:s}", "devopsProjectName", "p1", "variableGroupName", "fresh");
    cr_assert_eq(ado->config_check(config, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(ado->push(&conn, config, items, 2, NULL, 0, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(logged("POST", "/ado/o1/_apis/distributedtask/variablegroups", 200), 1);
    json_t *g = group_state("fresh");
    cr_assert_not_null(g);
    json_t *a = json_object_get(json_object_get(g, "variables"), "A");
    cr_assert(json_is_true(json_object_get(a, "isSecret")));
    cr_assert_str_eq(json_string_value(json_object_get(a, "valueSha256")), sha(VALUE_A));
    json_decref(g);
    json_decref(config);

    /* an existing group is adopted: its other variables stay */
    json_decref(ctl("POST", "/_fake/ado/groups",
                    json_pack("{s:s, s:s, s:s, s:{s:{s:s}, s:{s:s, s:b}}}", "org", "o1", "project",
                              "p1", "name", "shared", "variables", "KEEP", "value", "plain",
                              "HIDDEN", "value", "hidden-value", "isSecret", 1)));
    config = json_pack("{s:s, s:s}", "devopsProjectId", "11111111-2222-3333-4444-555555555555",
                       "variableGroupName", "shared");
    cr_assert_eq(ado->push(&conn, config, items, 2, NULL, 0, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(logged("PUT", "/ado/o1/_apis/distributedtask/variablegroups/", 200), 1);
    g = group_state("shared");
    json_t *vars = json_object_get(g, "variables");
    cr_assert_eq(json_object_size(vars), 4);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(vars, "HIDDEN"), "valueSha256")),
        sha("hidden-value"));
    json_decref(g);

    /* list: names, plain values, NULL for secret ones */
    struct cf_dest_list list = {0};
    cr_assert_eq(ado->list(&conn, config, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, 4);
    for (size_t i = 0; i < list.n; i++) {
        if (strcmp(list.items[i].name, "KEEP") == 0)
            cr_assert_str_eq(list.items[i].value, "plain");
        else
            cr_assert_null(list.items[i].value, "%s", list.items[i].name);
    }
    cf_dest_list_release(&list);

    /* a removal */
    const char *remove[] = {"B"};
    cr_assert_eq(ado->push(&conn, config, items, 1, remove, 1, &err), CF_OK, "%s", err.msg);
    g = group_state("shared");
    cr_assert_null(json_object_get(json_object_get(g, "variables"), "B"));
    cr_assert_not_null(json_object_get(json_object_get(g, "variables"), "KEEP"));
    json_decref(g);

    /* ownGroup: what Coffer does not hold goes */
    json_object_set_new(config, "ownGroup", json_true());
    cr_assert_eq(ado->push(&conn, config, items, 1, NULL, 0, &err), CF_OK, "%s", err.msg);
    g = group_state("shared");
    cr_assert_eq(json_object_size(json_object_get(g, "variables")), 1);
    cr_assert_not_null(json_object_get(json_object_get(g, "variables"), "A"));
    json_decref(g);
    /* every call carried the api-version and the redirect suppression */
    json_t *log = ctl("GET", "/_fake/log", NULL);
    size_t i;
    json_t *e;
    json_array_foreach(log, i, e)
    {
        cr_assert_str_eq(
            json_string_value(json_object_get(json_object_get(e, "query"), "api-version")), "7.1");
        cr_assert_str_eq(json_string_value(json_object_get(json_object_get(e, "headers"),
                                                           "X-TFS-FedAuthRedirect")),
                         "Suppress");
    }
    json_decref(log);
    assert_log_clean();
    json_decref(config);
    json_decref(creds);
}

Test(provider_azure, ado_refused_pat_and_scope)
{
    seed("vso.variablegroups_read,vso.project");
    const struct cf_dest_ops *ado = cf_dest_find("azure-devops");
    json_t *creds = ado_pat_creds();
    struct cf_provider_conn conn = {"azure-devops", "access-token", creds, NULL};
    struct cf_err err;
    struct cf_sync_item item = {
        .name = "A", .key = "A", .value = VALUE_A, .value_len = strlen(VALUE_A)};
    json_t *config = json_pack("{s:s, s:s}", "devopsProjectName", "p1", "variableGroupName", "g");
    cr_assert_eq(ado->push(&conn, config, &item, 1, NULL, 0, &err), CF_EFORBIDDEN);
    cr_assert(strstr(err.msg, "lacks scope vso.variablegroups_manage"), "%s", err.msg);
    cr_assert(strstr(err.msg, "403"), "%s", err.msg);
    assert_msg_clean(&err);
    /* the check reads, which the read scope allows */
    json_t *report = NULL;
    cr_assert_eq(cf_provider_check(&conn, &report, &err), CF_OK, "%s", err.msg);
    cr_assert(json_is_true(json_object_get(report, "ok")));
    json_decref(report);

    json_decref(ctl("POST", "/_fake/ado/pats/expire", json_pack("{s:s}", "token", PAT)));
    cr_assert_eq(ado->push(&conn, config, &item, 1, NULL, 0, &err), CF_EUNAUTH);
    cr_assert_str_eq(err.msg, "Azure DevOps refused the personal access token (401)");
    cr_assert_eq(cf_provider_check(&conn, &report, &err), CF_EUNAUTH);
    cr_assert_str_eq(err.msg, "Azure DevOps refused the personal access token (401)");
    json_object_set_new(creds, "accessToken", json_string("wrong-" PAT));
    cr_assert_eq(ado->push(&conn, config, &item, 1, NULL, 0, &err), CF_EUNAUTH);
    assert_msg_clean(&err);
    assert_log_clean();
    json_decref(config);
    json_decref(creds);
}

Test(provider_azure, ado_with_entra_token)
{
    seed("vso.project");
    const struct cf_dest_ops *ado = cf_dest_find("azure-devops");
    json_t *creds = entra_creds("client-secret");
    char instance[128];
    snprintf(instance, sizeof(instance), "%s/ado", base);
    json_object_set_new(creds, "orgName", json_string("o1"));
    json_object_set_new(creds, "instanceUrl", json_string(instance));
    struct cf_provider_conn conn = {"azure-devops", "client-secret", creds, NULL};
    struct cf_err err;
    struct cf_sync_item item = {
        .name = "A", .key = "A", .value = VALUE_A, .value_len = strlen(VALUE_A)};
    json_t *config = json_pack("{s:s, s:s}", "devopsProjectName", "p1", "variableGroupName", "g");
    cr_assert_eq(ado->push(&conn, config, &item, 1, NULL, 0, &err), CF_OK, "%s", err.msg);
    json_t *g = group_state("g");
    cr_assert_not_null(g);
    json_decref(g);
    /* listing a group that does not exist creates nothing */
    json_object_set_new(config, "variableGroupName", json_string("missing"));
    struct cf_dest_list list = {0};
    cr_assert_eq(ado->list(&conn, config, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, 0);
    cr_assert_eq(logged("POST", "/ado/", 0), 1);
    /* a principal the organization does not know */
    json_object_set_new(creds, "orgName", json_string("o1"));
    json_decref(ctl("POST", "/_fake/entra/apps",
                    json_pack("{s:s, s:s, s:[{s:s}]}", "tenant", "t1", "clientId", "c2", "secrets",
                              "value", SECRET)));
    json_object_set_new(creds, "clientId", json_string("c2"));
    cr_assert_eq(ado->push(&conn, config, &item, 1, NULL, 0, &err), CF_EUNAUTH);
    cr_assert_str_eq(err.msg, "Azure DevOps refused the Entra ID token (401)");
    json_decref(config);
    json_decref(creds);
}

Test(provider_azure, keyvault_put_tags_exp_and_names)
{
    seed("vso.project");
    const struct cf_dest_ops *kv = cf_dest_find("azure-key-vault");
    cr_assert_not_null(kv);
    json_t *creds = entra_creds("client-secret");
    struct cf_provider_conn conn = {"azure-key-vault", "client-secret", creds, NULL};
    struct cf_err err;
    char name[128];
    cr_assert_eq(kv->map_name("DB_PASSWORD", name, sizeof(name), &err), CF_OK);
    cr_assert_str_eq(name, "DB-PASSWORD");
    cr_assert_eq(kv->map_name("db.password", name, sizeof(name), &err), CF_EVALIDATION);
    cr_assert_eq(kv->map_name("", name, sizeof(name), &err), CF_EVALIDATION);
    struct cf_sync_item item = {.name = "DB-PASSWORD",
                                .key = "DB_PASSWORD",
                                .value = VALUE_A,
                                .value_len = strlen(VALUE_A),
                                .expires_at = 1900000000000LL,
                                .location = "shop/prod/db",
                                .version = 7};
    json_t *config = vault_config(false);
    cr_assert_eq(kv->push(&conn, config, &item, 1, NULL, 0, &err), CF_OK, "%s", err.msg);
    json_t *state = ctl("GET", "/_fake/kv/state?vault=v1", NULL);
    json_t *s = json_object_get(json_object_get(state, "secrets"), "DB-PASSWORD");
    cr_assert_str_eq(json_string_value(json_object_get(s, "valueSha256")), sha(VALUE_A));
    json_t *tags = json_object_get(s, "tags");
    cr_assert_str_eq(json_string_value(json_object_get(tags, "coffer-location")), "shop/prod/db");
    cr_assert_str_eq(json_string_value(json_object_get(tags, "coffer-version")), "7");
    cr_assert_str_eq(json_string_value(json_object_get(tags, "coffer-key")), "DB_PASSWORD");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(s, "attributes"), "exp")),
                 1900000000);
    json_decref(state);
    cr_assert_eq(logged("PUT", "/kv/v1/secrets/DB-PASSWORD", 200), 1);
    /* list reads the value back and knows it as Coffer's */
    struct cf_dest_list list = {0};
    cr_assert_eq(kv->list(&conn, config, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, 1);
    cr_assert_str_eq(list.items[0].value, VALUE_A);
    cr_assert(list.items[0].managed);
    cf_dest_list_release(&list);
    /* an unmapped name is refused before any request */
    item.name = "DB_PASSWORD";
    cr_assert_eq(kv->push(&conn, config, &item, 1, NULL, 0, &err), CF_EVALIDATION);
    assert_msg_clean(&err);
    /* a role that cannot write */
    json_decref(
        ctl("POST", "/_fake/kv/vaults",
            json_pack("{s:s, s:{s:[s]}}", "vault", "v1", "roles", "c1", "Key Vault Secrets User")));
    item.name = "DB-PASSWORD";
    cr_assert_eq(kv->push(&conn, config, &item, 1, NULL, 0, &err), CF_EFORBIDDEN);
    cr_assert(strstr(err.msg, "ForbiddenByRbac"), "%s", err.msg);
    assert_msg_clean(&err);
    assert_log_clean();
    json_decref(config);
    json_decref(creds);
}

Test(provider_azure, keyvault_delete_recreate_recovers_purge_when_told)
{
    seed("vso.project");
    const struct cf_dest_ops *kv = cf_dest_find("azure-key-vault");
    json_t *creds = entra_creds("client-secret");
    struct cf_provider_conn conn = {"azure-key-vault", "client-secret", creds, NULL};
    struct cf_err err;
    struct cf_sync_item item = {.name = "A",
                                .key = "A",
                                .value = VALUE_A,
                                .value_len = strlen(VALUE_A),
                                .location = "p/e/",
                                .version = 1};
    const char *remove[] = {"A"};
    json_t *config = vault_config(false);
    cr_assert_eq(kv->push(&conn, config, &item, 1, NULL, 0, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(kv->push(&conn, config, NULL, 0, remove, 1, &err), CF_OK, "%s", err.msg);
    json_t *state = ctl("GET", "/_fake/kv/state?vault=v1", NULL);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(state, "deleted"), 0)), "A");
    json_decref(state);
    /* re-created: recovered, then written (not a 409 failure) */
    item.value = VALUE_B;
    item.value_len = strlen(VALUE_B);
    cr_assert_eq(kv->push(&conn, config, &item, 1, NULL, 0, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(logged("PUT", "/kv/v1/secrets/A", 409), 1);
    cr_assert_eq(logged("POST", "/kv/v1/deletedsecrets/A/recover", 200), 1);
    state = ctl("GET", "/_fake/kv/state?vault=v1", NULL);
    json_t *a = json_object_get(json_object_get(state, "secrets"), "A");
    cr_assert_str_eq(json_string_value(json_object_get(a, "valueSha256")), sha(VALUE_B));
    cr_assert_eq(json_integer_value(json_object_get(a, "versions")), 2);
    cr_assert_eq(json_array_size(json_object_get(state, "deleted")), 0);
    json_decref(state);
    cr_assert_eq(logged("DELETE", "/kv/v1/deletedsecrets/", 0), 0);
    /* purge only when told */
    json_decref(config);
    config = vault_config(true);
    cr_assert_eq(kv->push(&conn, config, NULL, 0, remove, 1, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(logged("DELETE", "/kv/v1/deletedsecrets/A", 204), 1);
    state = ctl("GET", "/_fake/kv/state?vault=v1", NULL);
    cr_assert_eq(json_array_size(json_object_get(state, "deleted")), 0);
    cr_assert_eq(json_object_size(json_object_get(state, "secrets")), 0);
    json_decref(state);
    assert_log_clean();
    json_decref(config);
    json_decref(creds);
}

Test(provider_azure, keyvault_pages_and_throttling)
{
    seed("vso.project");
    const struct cf_dest_ops *kv = cf_dest_find("azure-key-vault");
    json_t *creds = entra_creds("certificate");
    struct cf_entra_cache *cache = cf_entra_cache_new();
    struct cf_provider_conn conn = {"azure-key-vault", "certificate", creds, cache};
    struct cf_err err;
    struct cf_sync_item items[30];
    char names[30][8];
    for (int i = 0; i < 30; i++) {
        snprintf(names[i], sizeof(names[i]), "S%02d", i);
        items[i] = (struct cf_sync_item){.name = names[i],
                                         .key = names[i],
                                         .value = VALUE_A,
                                         .value_len = strlen(VALUE_A),
                                         .location = "p/e/"};
    }
    json_t *config = vault_config(false);
    cr_assert_eq(kv->push(&conn, config, items, 30, NULL, 0, &err), CF_OK, "%s", err.msg);
    struct cf_dest_list list = {0};
    cr_assert_eq(kv->list(&conn, config, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, 30);
    cf_dest_list_release(&list);
    json_t *log = ctl("GET", "/_fake/log", NULL);
    size_t i;
    json_t *e;
    int pages = 0;
    json_array_foreach(log, i, e) if (strcmp(json_string_value(json_object_get(e, "path")),
                                             "/kv/v1/secrets") == 0) pages++;
    json_decref(log);
    cr_assert_eq(pages, 2);
    /* 429 with Retry-After: waited for and retried */
    json_decref(ctl("POST", "/_fake/throttle",
                    json_pack("{s:i, s:i, s:s}", "count", 2, "retryAfter", 1, "prefix", "/kv")));
    cr_assert_eq(kv->push(&conn, config, items, 1, NULL, 0, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(logged("PUT", "/kv/v1/secrets/S00", 429), 2);
    cr_assert_eq(logged("PUT", "/kv/v1/secrets/S00", 200), 2);
    /* the token came once for all of it */
    cr_assert_eq(logged("POST", "/entra/", 200), 1);
    /* check: a token, and one secret listed */
    char url[128];
    snprintf(url, sizeof(url), "%s/kv/v1", base);
    json_object_set_new(creds, "vaultBaseUrl", json_string(url));
    json_t *report = NULL;
    cr_assert_eq(cf_provider_check(&conn, &report, &err), CF_OK, "%s", err.msg);
    cr_assert(json_is_true(json_object_get(report, "ok")));
    json_decref(report);
    assert_log_clean();
    json_decref(config);
    cf_entra_cache_free(cache);
    json_decref(creds);
}
