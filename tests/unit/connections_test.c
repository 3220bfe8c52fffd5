/* Unit tests for core/connections.c over a real SQLite store and keyring: validation per app and
 * method (each refusal names its field and never quotes a credential), only the admin manages
 * connections, credentials are sealed at rest and bound to their row, never in what the store
 * returns, and the engine's open/close: plaintext credentials for the providers, audited, wiped. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core_fixture.h"

#include "core/auditlog.h"
#include "core/connections.h"
#include "util/banned.h"

#define PAT "ado-pat-0123456789abcdefghijWXYZ"
#define WEBHOOK_KEY "whk-0123456789abcdef0123456789abcdef"

static const struct cf_principal machine = {.kind = CF_PRINCIPAL_IDENTITY,
                                            .id = "6f1c2d9e-0000-4000-8000-0000000001d0",
                                            .name = "pipeline"};

TestSuite(connections, .init = fx_setup, .fini = fx_teardown);

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    cr_assert_not_null(v, "%s: %s", text, jerr.text);
    return v;
}

/* Each case: app, method, credentials (JSON), the field named (NULL: valid), words of the message.
 */
static const struct {
    const char *app, *method, *credentials, *field, *words;
} cases[] = {
    {"azure-devops", "access-token", "{\"accessToken\":\"" PAT "\",\"orgName\":\"contoso\"}", NULL,
     NULL},
    {"azure-devops", "access-token", "{\"orgName\":\"contoso\"}", "credentials.accessToken",
     "credentials.accessToken is required for azure-devops access-token"},
    {"azure-devops", "access-token", "{\"accessToken\":\"" PAT "\"}", "credentials.orgName",
     "is required"},
    {"azure-devops", "access-token", "{\"accessToken\":\"" PAT "\",\"orgName\":\"c\",\"x\":\"y\"}",
     "credentials", "credentials.x: not a field of azure-devops access-token"},
    {"azure-devops", "access-token", "{\"accessToken\":5,\"orgName\":\"c\"}",
     "credentials.accessToken", "a string is expected"},
    {"azure-devops", "access-token", "{\"accessToken\":\"" PAT " \",\"orgName\":\"c\"}",
     "credentials.accessToken", "spaces or control characters"},
    {"azure-devops", "access-token",
     "{\"accessToken\":\"" PAT "\",\"orgName\":\"c\",\"instanceUrl\":\"dev.azure.com\"}",
     "credentials.instanceUrl", "an http(s) URL is expected"},
    {"azure-devops", "client-secret",
     "{\"tenantId\":\"t\",\"clientId\":\"c\",\"clientSecret\":\"s\",\"orgName\":\"o\"}", NULL,
     NULL},
    {"azure-devops", "certificate", "{\"tenantId\":\"t\",\"clientId\":\"c\",\"orgName\":\"o\"}",
     "credentials.certificate", "is required"},
    {"azure-key-vault", "client-secret", "{\"tenantId\":\"t\",\"clientSecret\":\"s\"}",
     "credentials.clientId", "is required for azure-key-vault client-secret"},
    {"azure-key-vault", "client-secret",
     "{\"tenantId\":\"t\",\"clientId\":\"c\",\"clientSecret\":\"s\",\"orgName\":\"o\"}",
     "credentials", "credentials.orgName: not a field"},
    {"azure-key-vault", "certificate",
     "{\"tenantId\":\"t\",\"clientId\":\"c\",\"certificate\":\"-----BEGIN CERTIFICATE-----\\nAA\"}",
     "credentials.certificate", "no PEM certificate could be read"},
    {"github", "app", "{\"appId\":\"1\",\"installationId\":\"2\",\"privateKey\":\"nope\"}",
     "credentials.privateKey", "no PEM private key"},
    {"github", "personal-access-token", "{\"personalAccessToken\":\"ghp_x\"}", NULL, NULL},
    {"github", "personal-access-token", "{\"personalAccessToken\":\"\"}",
     "credentials.personalAccessToken", "must not be empty"},
    {"github", "personal-access-token", "[]", "credentials", "an object is required"},
    {"github", "oauth", "{}", "method", "app or personal-access-token for github, not 'oauth'"},
    {"webhook", "signing-secret", "{\"signingSecret\":\"" WEBHOOK_KEY "\"}", NULL, NULL},
    {"webhook", "signing-secret", "{\"signingSecret\":\"short-key-0123456789abcdef0123\"}",
     "credentials.signingSecret", "credentials.signingSecret: at least 32 characters"},
    {"webhook", "signing-secret", "{}", "credentials.signingSecret", "is required"},
    {"webhook", "signing-secret", "{\"signingSecret\":\"" WEBHOOK_KEY " x\"}",
     "credentials.signingSecret", "spaces or control characters"},
    {"webhook", "hmac", "{}", "method", "signing-secret for webhook, not 'hmac'"},
    {"gitlab", "access-token", "{}", "app",
     "azure-client-secrets, azure-devops, azure-key-vault, github, mysql, postgres or webhook"},
    {"azure-client-secrets", "client-secret",
     "{\"tenantId\":\"t\",\"clientId\":\"c\",\"clientSecret\":\"s\",\"graphHost\":"
     "\"https://graph.microsoft.us\"}",
     NULL, NULL},
    {"azure-client-secrets", "client-secret",
     "{\"tenantId\":\"t\",\"clientId\":\"c\",\"clientSecret\":\"s\",\"orgName\":\"o\"}",
     "credentials", "credentials.orgName: not a field"},
    {"azure-client-secrets", "access-token", "{}", "method",
     "client-secret or certificate for azure-client-secrets"},
};

Test(connections, validation_names_the_field)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *credentials = parse(cases[i].credentials);
        cf_err_clear(&err);
        enum cf_rc rc = cf_connection_validate(cases[i].app, cases[i].method, credentials, &err);
        if (!cases[i].field) {
            cr_expect_eq(rc, CF_OK, "case %zu: %s", i, err.msg);
        } else {
            cr_expect_eq(rc, CF_EVALIDATION, "case %zu", i);
            cr_expect_str_eq(err.field, cases[i].field, "case %zu: %s", i, err.msg);
            cr_expect_not_null(strstr(err.msg, cases[i].words), "case %zu: %s", i, err.msg);
            cr_expect_null(strstr(err.msg, PAT), "case %zu quotes the credential", i);
        }
        json_decref(credentials);
    }
}

Test(connections, size_cap)
{
    char *big = malloc(CF_CONN_CREDENTIALS_MAX + 1);
    memset(big, 'a', CF_CONN_CREDENTIALS_MAX);
    big[CF_CONN_CREDENTIALS_MAX] = '\0';
    json_t *credentials = json_pack("{s:s, s:s}", "accessToken", big, "orgName", "c");
    cr_assert_eq(cf_connection_validate("azure-devops", "access-token", credentials, &err),
                 CF_EVALIDATION);
    cr_assert_str_eq(err.field, "credentials");
    cr_assert_not_null(strstr(err.msg, "at most 16384 bytes"), "%s", err.msg);
    json_decref(credentials);
    free(big);
}

static void create_pat(const char *name, struct cf_connection *out)
{
    json_t *credentials = json_pack("{s:s, s:s}", "accessToken", PAT, "orgName", "contoso");
    struct cf_connection_spec spec = {.app = "azure-devops",
                                      .method = "access-token",
                                      .name = name,
                                      .credentials = credentials,
                                      .expires_at = 1893456000000};
    cr_assert_eq(cf_connections_create(&fx_core, &fx_admin, &spec, out, &err), CF_OK, "%s",
                 err.msg);
    json_decref(credentials);
}

Test(connections, sealed_at_rest_never_returned_opened_for_the_engine)
{
    struct cf_connection c, got;
    create_pat("ado", &c);
    cr_assert_str_eq(c.public_fields, "{\"accessTokenHint\":\"****WXYZ\",\"orgName\":\"contoso\"}");
    cr_assert_eq(c.expires_at, 1893456000000);
    cr_assert_not(fx_on_disk(PAT), "the credential is on disk in clear");
    cr_assert_eq(cf_connections_get(&fx_core, &fx_admin, "azure-devops", c.id, &got, &err), CF_OK);
    cr_assert_null(strstr(got.public_fields, PAT));
    /* another app's path does not find it; lookup needs no caller */
    cr_assert_eq(cf_connections_get(&fx_core, &fx_admin, "github", c.id, &got, &err), CF_ENOTFOUND);
    cr_assert_eq(cf_connection_lookup(&fx_core, c.id, &got, &err), CF_OK);
    cr_assert_str_eq(got.app, "azure-devops");

    struct cf_conn_opened opened;
    cr_assert_eq(cf_connection_open(&fx_core, c.id, &opened, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(opened.conn.app, "azure-devops");
    cr_assert_str_eq(opened.conn.method, "access-token");
    cr_assert_str_eq(opened.name, "ado");
    cr_assert_str_eq(json_string_value(json_object_get(opened.conn.credentials, "accessToken")),
                     PAT);
    cf_connection_close(&opened);
    cr_assert_null(opened.credentials);
    cr_assert_null(opened.conn.credentials);
    cf_connection_close(&opened); /* twice is harmless */

    cr_assert_eq(
        cf_connection_open(&fx_core, "00000000-0000-4000-8000-000000000000", &opened, &err),
        CF_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "App Connection with ID"), "%s", err.msg);
    cr_assert_null(opened.credentials);
}

Test(connections, credentials_are_bound_to_their_row)
{
    struct cf_connection a, b;
    struct cf_conn_opened opened;
    sqlite3 *db;
    char sql[512];
    create_pat("first", &a);
    create_pat("second", &b);
    /* Someone with the database copies b's sealed credentials onto a: they do not open there. */
    cr_assert_eq(sqlite3_open(fx_db, &db), SQLITE_OK);
    snprintf(sql, sizeof(sql),
             "UPDATE app_connections SET credentials = (SELECT credentials FROM app_connections "
             "WHERE id = '%s') WHERE id = '%s'",
             b.id, a.id);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    cr_assert_eq(cf_connection_open(&fx_core, a.id, &opened, &err), CF_ECRYPTO);
    cr_assert_eq(cf_connection_open(&fx_core, b.id, &opened, &err), CF_OK, "%s", err.msg);
    cf_connection_close(&opened);
}

Test(connections, only_the_admin)
{
    struct cf_connection c, got;
    struct cf_connection_list list;
    json_t *report = NULL;
    create_pat("ado", &c);
    cr_assert_eq(cf_connections_list(&fx_core, &machine, NULL, &list, &err), CF_EFORBIDDEN);
    cr_assert_str_eq(err.msg, "only the admin or an org admin may manage app connections");
    cr_assert_eq(cf_connections_get(&fx_core, &machine, NULL, c.id, &got, &err), CF_EFORBIDDEN);
    cr_assert_eq(cf_connections_delete(&fx_core, &machine, NULL, c.id, NULL, &err), CF_EFORBIDDEN);
    cr_assert_eq(cf_connections_check(&fx_core, &machine, NULL, c.id, &report, &got, &err),
                 CF_EFORBIDDEN);
    struct cf_connection_update change = {.name = "mine", .expires_at = -1};
    cr_assert_eq(cf_connections_update(&fx_core, &machine, NULL, c.id, &change, &got, &err),
                 CF_EFORBIDDEN);
    cr_assert_eq(cf_connections_list(&fx_core, &fx_admin, NULL, &list, &err), CF_OK);
    cr_assert_eq(list.n, 1);
    cr_assert_str_eq(list.items[0].name, "ado");
    cf_connection_list_release(&list);
}

Test(connections, update_rekeys_and_names_stay_unique)
{
    struct cf_connection a, b, got;
    create_pat("a", &a);
    create_pat("b", &b);
    struct cf_connection_update rename = {.name = "a", .expires_at = -1};
    cr_assert_eq(cf_connections_update(&fx_core, &fx_admin, NULL, b.id, &rename, &got, &err),
                 CF_EEXIST);
    cr_assert_str_eq(err.field, "name");
    json_t *fresh = json_pack("{s:s, s:s}", "accessToken", "fresh-token-0000000000-NEW9", "orgName",
                              "fabrikam");
    struct cf_connection_update rekey = {.credentials = fresh, .expires_at = 0};
    cr_assert_eq(cf_connections_update(&fx_core, &fx_admin, NULL, a.id, &rekey, &got, &err), CF_OK,
                 "%s", err.msg);
    cr_assert_eq(got.version, 2);
    cr_assert_eq(got.expires_at, 0);
    cr_assert_not_null(strstr(got.public_fields, "****NEW9"));
    struct cf_conn_opened opened;
    cr_assert_eq(cf_connection_open(&fx_core, a.id, &opened, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(json_string_value(json_object_get(opened.credentials, "orgName")), "fabrikam");
    cf_connection_close(&opened);
    json_decref(fresh);
}

Test(connections, every_open_is_audited)
{
    struct cf_audit_log_config config = {0};
    struct cf_audit_log *log = NULL;
    struct cf_connection c;
    struct cf_conn_opened opened;
    cr_assert_eq(cf_audit_log_open(fx_store, fx_keyring, &config, &log, &err), CF_OK, "%s",
                 err.msg);
    fx_core.audit = log;
    create_pat("audited", &c);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(cf_connection_open(&fx_core, c.id, &opened, &err), CF_OK, "%s", err.msg);
        cf_connection_close(&opened);
    }
    struct cf_audit_filter filter = {.limit = 100, .action = "app-connections.open"};
    struct cf_audit_event_list events = {0};
    cr_assert_eq(cf_audit_log_list(log, &filter, &events, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(events.n, 2);
    cr_assert_str_eq(events.items[0].actor_kind, "system");
    cr_assert_str_eq(events.items[0].keys, "audited");
    cr_assert_not_null(strstr(events.items[0].path, c.id));
    cr_assert_null(strstr(events.items[0].reason, PAT));
    cf_audit_event_list_release(&events);
    fx_core.audit = NULL;
    cf_audit_log_close(log);
}
