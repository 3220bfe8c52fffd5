/* `coffer connections`: app connections through the admin API (docs/syncs.md "Connections"): the
 * credentials Coffer holds to reach Azure DevOps, Azure Key Vault and GitHub.
 *
 * Credentials are read from a file or standard input, never from the command line: argv is
 * readable by every user of the host (ps, /proc/PID/cmdline) and lands in shell history, and a
 * connection's credential reaches into another system. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/file.h"
#include "util/str.h"
#include "util/banned.h"

#define PREFIX "/v1/app-connections"
/* The server refuses credentials over 16 KiB; a file may hold some whitespace more. */
#define CREDENTIALS_READ_MAX (64u * 1024u)

static const char *const headers[] = {"ID",      "NAME",    "APP",   "METHOD",
                                      "EXPIRES", "CHECKED", "CHECK", "DETAIL"};

/* The non-secret detail of the credentials: org, tenant/client, app id or the hint. */
static void detail_of(json_t *credentials, char *out, size_t size)
{
    const char *names[] = {"orgName", "tenantId", "clientId", "appId", "installationId"};
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < CF_ARRAY_SIZE(names) && used < size; i++) {
        const char *v = cf_cli_str(credentials, names[i]);
        if (!*v)
            continue;
        int w = snprintf(out + used, size - used, "%s%s=%s", used ? " " : "", names[i], v);
        used += w > 0 ? (size_t)w : 0;
    }
}

static enum cf_rc connection_row(struct cf_table *table, json_t *c, void *ctx)
{
    char detail[512];
    (void)ctx;
    detail_of(json_object_get(c, "credentials"), detail, sizeof(detail));
    const char *status = cf_cli_str(c, "lastCheckStatus");
    const char *row[] = {cf_cli_str(c, "id"),
                         cf_cli_str(c, "name"),
                         cf_cli_str(c, "app"),
                         cf_cli_str(c, "method"),
                         *cf_cli_str(c, "expiresAt") ? cf_cli_str(c, "expiresAt") : "-",
                         *cf_cli_str(c, "lastCheckedAt") ? cf_cli_str(c, "lastCheckedAt") : "never",
                         !*status                    ? "-"
                         : strcmp(status, "ok") == 0 ? "ok"
                                                     : cf_cli_str(c, "lastCheckMessage"),
                         detail};
    return cf_table_add(table, row);
}

static int print_connections(json_t *list)
{
    return cf_cli_print_rows(list, CF_ARRAY_SIZE(headers), headers, connection_row, NULL);
}

/* Reads the credentials object from file ("-": standard input) into *out (a new object), with the
 * PEM file, when given, as its "certificate" or "privateKey" member. */
static int read_credentials(const struct cf_cli *cli, const char *file, const char *pem_file,
                            const char *method, json_t **out)
{
    char *text = NULL, *pem = NULL;
    size_t len = 0, pem_len = 0;
    struct cf_err err = {0};
    int status = CF_EXIT_OK;
    *out = NULL;
    if (file && cf_file_read(strcmp(file, "-") == 0 ? "/dev/stdin" : file, CREDENTIALS_READ_MAX,
                             &text, &len, &err) != CF_OK) {
        status = cf_cli_fail("--credentials-file: %s", err.msg);
        goto out;
    }
    if (pem_file && cf_file_read(pem_file, CREDENTIALS_READ_MAX, &pem, &pem_len, &err) != CF_OK) {
        status = cf_cli_fail("--pem-file: %s", err.msg);
        goto out;
    }
    if (text) {
        json_error_t jerr;
        *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        /* jansson's message may quote the text, which holds credentials: only the place. */
        if (!json_is_object(*out)) {
            status = cf_cli_usage_error(cli,
                                        "the credentials are not a JSON object (line %d, column "
                                        "%d)",
                                        jerr.line, jerr.column);
            goto out;
        }
    } else {
        *out = json_object();
    }
    if (pem) {
        const char *member = method && strcmp(method, "app") == 0 ? "privateKey" : "certificate";
        if (!*out || json_object_set_new(*out, member, json_stringn(pem, pem_len)) != 0)
            status = cf_cli_fail("--pem-file: not UTF-8 text, or out of memory");
    }
out:
    if (status != CF_EXIT_OK) {
        json_decref(*out);
        *out = NULL;
    }
    if (text) {
        sodium_memzero(text, len);
        free(text);
    }
    if (pem) {
        sodium_memzero(pem, pem_len);
        free(pem);
    }
    return status;
}

/* Overwrites the credentials' strings before the object is freed. */
static void wipe_credentials(json_t *body)
{
    json_t *credentials = json_object_get(body, "credentials");
    const char *key;
    json_t *v;
    json_object_foreach(credentials, key, v)
    {
        if (json_is_string(v))
            sodium_memzero((char *)json_string_value(v), json_string_length(v));
    }
}

/* Sets body.expiresAt from --expires-at: an RFC 3339 time, or "none" (null: no expiry). */
static int set_expiry(const struct cf_cli *cli, json_t *body, const char *text)
{
    if (!text)
        return CF_EXIT_OK;
    if (strcmp(text, "none") == 0)
        return json_object_set_new(body, "expiresAt", json_null()) == 0
                   ? CF_EXIT_OK
                   : cf_cli_fail("out of memory");
    return cf_cli_set_time(cli, body, "--expires-at", "expiresAt", text);
}

/* Finds the connection named by ref (its id or its name) among all: *app and *id are set (strings
 * owned by *all, which the caller json_decrefs). */
static int resolve(struct cf_cli *cli, const char *ref, json_t **all, const char **app,
                   const char **id)
{
    json_t *answer = NULL;
    *all = NULL;
    int status = cf_cli_request(cli, "GET", PREFIX, NULL, NULL, &answer);
    if (status != CF_EXIT_OK)
        return status;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(answer, "appConnections"), i, c)
    {
        if (strcmp(cf_cli_str(c, "id"), ref) == 0 || strcmp(cf_cli_str(c, "name"), ref) == 0) {
            *app = cf_cli_str(c, "app");
            *id = cf_cli_str(c, "id");
            *all = answer;
            return CF_EXIT_OK;
        }
    }
    json_decref(answer);
    return cf_cli_fail("App Connection '%s' not found (by id or name)", ref);
}

#define CREDENTIALS_HELP                                                                           \
    "  --credentials-file FILE  the credentials as a JSON object, from FILE ('-':\n"               \
    "                     standard input); never on the command line, where other\n"               \
    "                     users (ps) and the shell history would see them\n"                       \
    "  --pem-file FILE    a PEM file added as credentials.certificate (method\n"                   \
    "                     certificate: the certificate and its key) or\n"                          \
    "                     credentials.privateKey (method app)\n"

static const char create_usage[] =
    "usage: coffer connections create --app APP --method METHOD --name NAME\n"
    "           --credentials-file FILE [--pem-file FILE] [--description TEXT]\n"
    "           [--expires-at TIME] [options]\n"
    "\n"
    "Creates an app connection: credentials Coffer keeps sealed and never shows\n"
    "again. The admin only. Apps and methods, with the credentials' fields:\n"
    "  azure-devops     access-token: accessToken, orgName\n"
    "                   client-secret: tenantId, clientId, clientSecret, orgName\n"
    "                   certificate: tenantId, clientId, certificate, orgName\n"
    "  azure-key-vault  client-secret: tenantId, clientId, clientSecret\n"
    "                   certificate: tenantId, clientId, certificate\n"
    "  github           app: appId, privateKey, installationId\n"
    "                   personal-access-token: personalAccessToken\n"
    "  mysql            username-and-password: as postgres (MySQL, MariaDB)\n"
    "  postgres         username-and-password: host, port, database, username,\n"
    "                   password [, sslEnabled, sslRejectUnauthorized,\n"
    "                   sslCertificate]\n"
    "  webhook          signing-secret: signingSecret (32 characters at least)\n"
    "Optional endpoint overrides: instanceUrl (Azure DevOps), authorityHost\n"
    "(Entra ID), host (GitHub API).\n"
    "\n"
    "options:\n"
    "  --app APP          azure-client-secrets, azure-devops, azure-key-vault, github,\n"
    "                     mysql, postgres or webhook\n"
    "  --method METHOD    see above\n"
    "  --name NAME        a unique name (letters, digits, '-', '_', '.')\n"
    "  --description TEXT  what it is for\n" CREDENTIALS_HELP
    "  --expires-at TIME  when the credential expires (RFC 3339), for `coffer\n"
    "                     expiring` and the expiry notices; a certificate's own\n"
    "                     date and a check's finding are used otherwise\n" CF_CLI_COMMON_HELP;

static int cmd_create(int argc, char **argv)
{
    const char *app = NULL, *method = NULL, *name = NULL, *description = NULL;
    const char *file = NULL, *pem_file = NULL, *expires = NULL;
    const struct cf_opt opts[] = {
        {"app", CF_OPT_STRING, &app},
        {"method", CF_OPT_STRING, &method},
        {"name", CF_OPT_STRING, &name},
        {"description", CF_OPT_STRING, &description},
        {"credentials-file", CF_OPT_STRING, &file},
        {"pem-file", CF_OPT_STRING, &pem_file},
        {"expires-at", CF_OPT_STRING, &expires},
    };
    const struct cf_cli_spec spec = {create_usage, 0, 0, 0, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *body = NULL, *credentials = NULL;
    int status;
    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (!app || !method || !name) {
        status = cf_cli_usage_error(&cli, "--app, --method and --name are required");
        goto out;
    }
    if (!file && !pem_file) {
        status = cf_cli_usage_error(&cli, "--credentials-file FILE (or -) is required");
        goto out;
    }
    status = read_credentials(&cli, file, pem_file, method, &credentials);
    if (status != CF_EXIT_OK)
        goto out;
    body = json_pack("{s:s, s:s, s:o}", "method", method, "name", name, "credentials", credentials);
    credentials = NULL; /* body holds it */
    if (!body ||
        (description && json_object_set_new(body, "description", json_string(description)) != 0)) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    status = set_expiry(&cli, body, expires);
    if (status == CF_EXIT_OK)
        status = cf_cli_path(&path, PREFIX, app, NULL, NULL, NULL);
    if (status == CF_EXIT_OK)
        status = cf_cli_request_member(&cli, "POST", path.data, body, "appConnection",
                                       print_connections);
out:
    wipe_credentials(body);
    json_decref(body);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const char list_usage[] =
    "usage: coffer connections list [--app APP] [options]\n"
    "\n"
    "Lists app connections (of one app, or all), without their\n"
    "credentials: the non-secret fields, the expiry, the last check.\n"
    "\n"
    "options:\n"
    "  --app APP          azure-client-secrets, azure-devops, "
    "azure-key-vault, github,\n"
    "                     mysql, postgres or webhook\n" CF_CLI_COMMON_HELP;

static int cmd_list(int argc, char **argv)
{
    const char *app = NULL;
    const struct cf_opt opts[] = {{"app", CF_OPT_STRING, &app}};
    const struct cf_cli_spec spec = {list_usage, 0, 0, 0, opts, 1};
    struct cf_cli cli;
    struct cf_buf path;
    int status;
    cf_buf_init(&path, 0);
    if (cf_cli_begin(&cli, argc, argv, &spec, &status)) {
        status = cf_cli_path(&path, PREFIX, app, NULL, NULL, NULL);
        if (status == CF_EXIT_OK)
            status =
                cf_cli_request_list(&cli, path.data, NULL, "appConnections", print_connections);
    }
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

/* A command on one connection named by its id or name: method on .../{app}/{id}{suffix}. */
static int one_connection(int argc, char **argv, const char *usage, const char *method,
                          const char *suffix)
{
    const struct cf_cli_spec spec = {usage, 0, 1, 1, NULL, 0};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *all = NULL, *answer = NULL;
    const char *app = NULL, *id = NULL;
    int status;
    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    status = resolve(&cli, cli.args[0], &all, &app, &id);
    if (status == CF_EXIT_OK)
        status = cf_cli_path(&path, PREFIX, app, NULL, id, suffix);
    if (status == CF_EXIT_OK)
        status = cf_cli_request(&cli, method, path.data, NULL, NULL, &answer);
    if (status != CF_EXIT_OK)
        goto out;
    if (strcmp(method, "DELETE") == 0 && !cli.json) {
        json_t *c = json_object_get(answer, "appConnection");
        printf("removed app connection %s (%s)\n", cf_cli_str(c, "name"), cf_cli_str(c, "id"));
    } else if (suffix && !cli.json) {
        /* check: the connection's row, then what the system said */
        status = cf_cli_print_member(&cli, answer, "appConnection", print_connections);
        json_t *report = json_object_get(answer, "check");
        const char *detail = cf_cli_str(report, "detail");
        if (status == CF_EXIT_OK && *detail)
            printf("%s\n", detail);
    } else {
        status = cf_cli_print_member(&cli, answer, "appConnection", print_connections);
    }
out:
    json_decref(answer);
    json_decref(all);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const char get_usage[] = "usage: coffer connections get ID|NAME [options]\n"
                                "\n"
                                "Shows an app connection (never its credentials).\n"
                                "\n"
                                "options:\n" CF_CLI_COMMON_HELP;

static int cmd_get(int argc, char **argv)
{
    return one_connection(argc, argv, get_usage, "GET", NULL);
}

static const char check_usage[] =
    "usage: coffer connections check ID|NAME [options]\n"
    "\n"
    "Validates the connection's credential against its system now and records\n"
    "the result (and the expiry the system reports). On failure, says precisely\n"
    "why: the system, its HTTP status, its error code and description.\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP;

static int cmd_check(int argc, char **argv)
{
    return one_connection(argc, argv, check_usage, "POST", "/check");
}

static const char remove_usage[] = "usage: coffer connections remove ID|NAME [options]\n"
                                   "\n"
                                   "Deletes an app connection and its sealed credentials.\n"
                                   "\n"
                                   "options:\n" CF_CLI_COMMON_HELP;

static int cmd_remove(int argc, char **argv)
{
    return one_connection(argc, argv, remove_usage, "DELETE", NULL);
}

static const char update_usage[] =
    "usage: coffer connections update ID|NAME [--name NAME] [--description TEXT]\n"
    "           [--method METHOD] [--credentials-file FILE] [--pem-file FILE]\n"
    "           [--expires-at TIME|none] [options]\n"
    "\n"
    "Changes an app connection. New credentials replace the old ones whole (and\n"
    "clear the last check); a new method needs new credentials.\n"
    "\n"
    "options:\n"
    "  --name NAME        a new name\n"
    "  --description TEXT  a new description\n"
    "  --method METHOD    a new method (with --credentials-file)\n" CREDENTIALS_HELP
    "  --expires-at TIME  the credential's expiry (RFC 3339), or 'none'\n" CF_CLI_COMMON_HELP;

static int cmd_update(int argc, char **argv)
{
    const char *name = NULL, *description = NULL, *method = NULL, *file = NULL, *pem_file = NULL;
    const char *expires = NULL;
    const struct cf_opt opts[] = {
        {"name", CF_OPT_STRING, &name},         {"description", CF_OPT_STRING, &description},
        {"method", CF_OPT_STRING, &method},     {"credentials-file", CF_OPT_STRING, &file},
        {"pem-file", CF_OPT_STRING, &pem_file}, {"expires-at", CF_OPT_STRING, &expires},
    };
    const struct cf_cli_spec spec = {update_usage, 0, 1, 1, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *all = NULL, *body = NULL, *credentials = NULL;
    const char *app = NULL, *id = NULL;
    int status;
    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    body = json_object();
    const struct {
        const char *value, *member;
    } fields[] = {{name, "name"}, {description, "description"}, {method, "method"}};
    for (size_t i = 0; body && i < CF_ARRAY_SIZE(fields); i++)
        if (fields[i].value &&
            json_object_set_new(body, fields[i].member, json_string(fields[i].value)) != 0) {
            status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
            goto out;
        }
    status = body ? set_expiry(&cli, body, expires) : cf_cli_fail("out of memory");
    if (status == CF_EXIT_OK && (file || pem_file)) {
        /* the method the PEM belongs to: the new one, else the connection's */
        status = resolve(&cli, cli.args[0], &all, &app, &id);
        const char *current = method;
        if (status == CF_EXIT_OK && !current) {
            size_t i;
            json_t *c;
            json_array_foreach(json_object_get(all, "appConnections"), i, c)
            {
                if (strcmp(cf_cli_str(c, "id"), id) == 0)
                    current = cf_cli_str(c, "method");
            }
        }
        if (status == CF_EXIT_OK)
            status = read_credentials(&cli, file, pem_file, current, &credentials);
        if (status == CF_EXIT_OK && json_object_set_new(body, "credentials", credentials) != 0)
            status = cf_cli_fail("out of memory");
        credentials = NULL; /* body holds it (or it was freed) */
    } else if (status == CF_EXIT_OK) {
        status = resolve(&cli, cli.args[0], &all, &app, &id);
    }
    if (status == CF_EXIT_OK)
        status = cf_cli_path(&path, PREFIX, app, NULL, id, NULL);
    if (status == CF_EXIT_OK)
        status = cf_cli_request_member(&cli, "PATCH", path.data, body, "appConnection",
                                       print_connections);
out:
    wipe_credentials(body);
    json_decref(body);
    json_decref(all);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const struct cf_cli_sub subcommands[] = {
    {"list", cmd_list, "list app connections (never their credentials)"},
    {"create", cmd_create, "create an app connection from a credentials file"},
    {"get", cmd_get, "show an app connection"},
    {"update", cmd_update, "rename, describe, re-key or re-date an app connection"},
    {"check", cmd_check, "validate a connection's credential against its system now"},
    {"remove", cmd_remove, "delete an app connection"},
};

int cf_cmd_connections(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, subcommands, CF_ARRAY_SIZE(subcommands), NULL);
}
