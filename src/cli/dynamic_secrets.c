/* `coffer dynamic-secrets`: dynamic secrets through the API (docs/dynamic-secrets.md): create,
 * list, get, update and remove the dynamic secrets of a folder. Their leases are `coffer leases`
 * and `coffer run --lease`. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/str.h"
#include "util/banned.h"

#define PREFIX "/v1/dynamic-secrets"
#define PLACE (CF_CLI_PROJECT | CF_CLI_ENV | CF_CLI_PATH)

static const char *const headers[] = {"NAME", "TYPE", "DEFAULT TTL", "MAX TTL", "CONNECTION", "ID"};

static enum cf_rc dynamic_row(struct cf_table *table, json_t *d, void *ctx)
{
    (void)ctx;
    const char *row[] = {cf_cli_str(d, "name"),
                         cf_cli_str(d, "type"),
                         cf_cli_str(d, "defaultTTL"),
                         cf_cli_str(d, "maxTTL"),
                         cf_cli_str(json_object_get(d, "inputs"), "connectionId"),
                         cf_cli_str(d, "id")};
    return cf_table_add(table, row);
}

static int print_dynamic(json_t *list)
{
    return cf_cli_print_rows(list, CF_ARRAY_SIZE(headers), headers, dynamic_row, NULL);
}

/* The place of cli as query parameters. */
#define PLACE_QUERY(cli)                                                                           \
    {                                                                                              \
        {"projectSlug", (cli).project_id}, {"environmentSlug", (cli).env}, {"path", (cli).path},   \
        {                                                                                          \
            NULL, NULL                                                                             \
        }                                                                                          \
    }

/* The place of cli as a new body object; NULL when out of memory or not UTF-8. */
static json_t *place_body(const struct cf_cli *cli)
{
    return json_pack("{s:s, s:s, s:s}", "projectSlug", cli->project_id, "environmentSlug", cli->env,
                     "path", cli->path);
}

static const char list_usage[] = "usage: coffer dynamic-secrets list [options]\n"
                                 "\n"
                                 "Lists the dynamic secrets of a folder.\n"
                                 "\n"
                                 "options:\n" CF_CLI_PROJECT_HELP CF_CLI_ENV_HELP
                                 "  --path PATH        the folder (default /)\n" CF_CLI_COMMON_HELP;

static int cmd_list(int argc, char **argv)
{
    const struct cf_cli_spec spec = {list_usage, PLACE, 0, 0, NULL, 0};
    struct cf_cli cli;
    int status;
    if (cf_cli_begin(&cli, argc, argv, &spec, &status)) {
        const struct cf_query_param q[] = PLACE_QUERY(cli);
        status = cf_cli_request_list(&cli, PREFIX, q, "dynamicSecrets", print_dynamic);
    }
    cf_cli_end(&cli);
    return status;
}

static const char create_usage[] =
    "usage: coffer dynamic-secrets create NAME --provider TYPE --connectionId ID\n"
    "           --inputs JSON [--default-ttl TTL] [--max-ttl TTL] [options]\n"
    "\n"
    "Creates a dynamic secret NAME in a folder: each lease of it is a new credential made\n"
    "by the provider (postgres: a LOGIN role; mysql: a user; azure-entra-id-app: a client\n"
    "secret of an Entra ID application) that ends with the lease. The connection (an app\n"
    "connection of the provider's app: postgres, mysql, azure-client-secrets) holds the\n"
    "credential Coffer uses; --inputs holds the provider's settings, e.g. for postgres\n"
    "{\"grantRole\": \"app_read\"}, for mysql {\"privileges\": [\"SELECT\"]}, for\n"
    "azure-entra-id-app {\"objectId\": ..., \"clientId\": ...}, or statement templates\n"
    "with {{username}}, {{password}}, {{expiration}} (see docs/dynamic-secrets.md). TTLs are\n"
    "durations such as 30m, 1h, 2d (default 1h; the maximum defaults to the default).\n"
    "\n"
    "options:\n" CF_CLI_PROJECT_HELP CF_CLI_ENV_HELP "  --path PATH        the folder (default /)\n"
    "  --provider TYPE    the provider: postgres, mysql or azure-entra-id-app\n"
    "  --connectionId ID  the app connection the provider uses\n"
    "  --inputs JSON      the provider's settings (an object)\n"
    "  --default-ttl TTL  a lease's length when none is asked for\n"
    "  --max-ttl TTL      the longest a lease may last, renewals included\n" CF_CLI_COMMON_HELP;

/* text parsed as a JSON object into *out. */
static int object_arg(struct cf_cli *cli, const char *option, const char *text, json_t **out)
{
    json_error_t jerr;
    *out = json_loads(text, 0, &jerr);
    if (json_is_object(*out))
        return CF_EXIT_OK;
    int status = cf_cli_usage_error(cli, "--%s: a JSON object is required (%s)", option,
                                    *out ? "another kind" : jerr.text);
    json_decref(*out);
    *out = NULL;
    return status;
}

static int cmd_create(int argc, char **argv)
{
    const char *provider = NULL, *connection = NULL, *inputs_text = NULL, *default_ttl = NULL,
               *max_ttl = NULL;
    const struct cf_opt opts[] = {
        {"provider", CF_OPT_STRING, &provider},  {"connectionId", CF_OPT_STRING, &connection},
        {"inputs", CF_OPT_STRING, &inputs_text}, {"default-ttl", CF_OPT_STRING, &default_ttl},
        {"max-ttl", CF_OPT_STRING, &max_ttl},
    };
    const struct cf_cli_spec spec = {create_usage, PLACE, 1, 1, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    json_t *body = NULL, *inputs = NULL;
    int status;
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (!provider || !connection || !inputs_text) {
        status = cf_cli_usage_error(&cli, "--provider, --connectionId and --inputs are required");
        goto out;
    }
    status = object_arg(&cli, "inputs", inputs_text, &inputs);
    if (status != CF_EXIT_OK)
        goto out;
    json_object_set_new(inputs, "connectionId", json_string(connection));
    body = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:O}}", "projectSlug", cli.project_id,
                     "environmentSlug", cli.env, "path", cli.path, "name", cli.args[0], "provider",
                     "type", provider, "inputs", inputs);
    if (!body) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    if (default_ttl)
        json_object_set_new(body, "defaultTTL", json_string(default_ttl));
    if (max_ttl)
        json_object_set_new(body, "maxTTL", json_string(max_ttl));
    status = cf_cli_request_member(&cli, "POST", PREFIX, body, "dynamicSecret", print_dynamic);
out:
    json_decref(body);
    json_decref(inputs);
    cf_cli_end(&cli);
    return status;
}

static const char get_usage[] = "usage: coffer dynamic-secrets get NAME [options]\n"
                                "\n"
                                "Shows a dynamic secret (its settings; never a credential).\n"
                                "\n"
                                "options:\n" CF_CLI_PROJECT_HELP CF_CLI_ENV_HELP
                                "  --path PATH        the folder (default /)\n" CF_CLI_COMMON_HELP;

static int cmd_get(int argc, char **argv)
{
    const struct cf_cli_spec spec = {get_usage, PLACE, 1, 1, NULL, 0};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *answer = NULL;
    int status;
    cf_buf_init(&path, 0);
    if (cf_cli_begin(&cli, argc, argv, &spec, &status)) {
        const struct cf_query_param q[] = PLACE_QUERY(cli);
        status = cf_cli_path(&path, PREFIX, cli.args[0], NULL, NULL, NULL);
        if (status == CF_EXIT_OK)
            status = cf_cli_request(&cli, "GET", path.data, q, NULL, &answer);
        if (status == CF_EXIT_OK)
            status = cf_cli_print_member(&cli, answer, "dynamicSecret", print_dynamic);
    }
    json_decref(answer);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const char update_usage[] =
    "usage: coffer dynamic-secrets update NAME [--new-name NAME] [--inputs JSON]\n"
    "           [--default-ttl TTL] [--max-ttl TTL] [options]\n"
    "\n"
    "Changes a dynamic secret's name, settings (--inputs replaces the whole object) or\n"
    "TTLs. Leases already issued keep their ends. The provider and the connection\n"
    "cannot change.\n"
    "\n"
    "options:\n" CF_CLI_PROJECT_HELP CF_CLI_ENV_HELP "  --path PATH        the folder (default /)\n"
    "  --new-name NAME    the new name\n"
    "  --inputs JSON      the provider's settings (an object)\n"
    "  --default-ttl TTL  a lease's length when none is asked for\n"
    "  --max-ttl TTL      the longest a lease may last\n" CF_CLI_COMMON_HELP;

static int cmd_update(int argc, char **argv)
{
    const char *new_name = NULL, *inputs_text = NULL, *default_ttl = NULL, *max_ttl = NULL;
    const struct cf_opt opts[] = {
        {"new-name", CF_OPT_STRING, &new_name},
        {"inputs", CF_OPT_STRING, &inputs_text},
        {"default-ttl", CF_OPT_STRING, &default_ttl},
        {"max-ttl", CF_OPT_STRING, &max_ttl},
    };
    const struct cf_cli_spec spec = {update_usage, PLACE, 1, 1, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *body = NULL, *data = NULL, *inputs = NULL;
    int status;
    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (!new_name && !inputs_text && !default_ttl && !max_ttl) {
        status = cf_cli_usage_error(
            &cli, "nothing to change: give --new-name, --inputs, --default-ttl or --max-ttl");
        goto out;
    }
    if (inputs_text && (status = object_arg(&cli, "inputs", inputs_text, &inputs)) != CF_EXIT_OK)
        goto out;
    data = json_object();
    body = place_body(&cli);
    if (!data || !body) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    if (new_name)
        json_object_set_new(data, "newName", json_string(new_name));
    if (inputs)
        json_object_set(data, "inputs", inputs);
    if (default_ttl)
        json_object_set_new(data, "defaultTTL", json_string(default_ttl));
    if (max_ttl)
        json_object_set_new(data, "maxTTL", json_string(max_ttl));
    json_object_set(body, "data", data);
    status = cf_cli_path(&path, PREFIX, cli.args[0], NULL, NULL, NULL);
    if (status == CF_EXIT_OK)
        status =
            cf_cli_request_member(&cli, "PATCH", path.data, body, "dynamicSecret", print_dynamic);
out:
    json_decref(body);
    json_decref(data);
    json_decref(inputs);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const char remove_usage[] =
    "usage: coffer dynamic-secrets remove NAME [options]\n"
    "\n"
    "Revokes the dynamic secret's active leases, then removes it. When a lease cannot be\n"
    "revoked (its target is unreachable) nothing is removed and the command fails; the\n"
    "server keeps retrying that revocation.\n"
    "\n"
    "options:\n" CF_CLI_PROJECT_HELP CF_CLI_ENV_HELP
    "  --path PATH        the folder (default /)\n" CF_CLI_COMMON_HELP;

static int cmd_remove(int argc, char **argv)
{
    const struct cf_cli_spec spec = {remove_usage, PLACE, 1, 1, NULL, 0};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *body = NULL, *answer = NULL;
    int status;
    cf_buf_init(&path, 0);
    if (cf_cli_begin(&cli, argc, argv, &spec, &status)) {
        body = place_body(&cli);
        status = cf_cli_path(&path, PREFIX, cli.args[0], NULL, NULL, NULL);
        if (status == CF_EXIT_OK)
            status = cf_cli_request(&cli, "DELETE", path.data, NULL, body, &answer);
        if (status == CF_EXIT_OK && cli.json)
            status = cf_cli_print_json(answer);
        else if (status == CF_EXIT_OK)
            printf("removed dynamic secret %s (%s)\n",
                   cf_cli_str(json_object_get(answer, "dynamicSecret"), "name"),
                   cf_cli_str(json_object_get(answer, "dynamicSecret"), "id"));
    }
    json_decref(body);
    json_decref(answer);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const struct cf_cli_sub subcommands[] = {
    {"create", cmd_create, "create a dynamic secret"},
    {"get", cmd_get, "show a dynamic secret"},
    {"list", cmd_list, "list the dynamic secrets of a folder"},
    {"remove", cmd_remove, "revoke a dynamic secret's leases and remove it"},
    {"update", cmd_update, "change a dynamic secret's name, settings or TTLs"},
};

int cf_cmd_dynamic_secrets(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, subcommands, CF_ARRAY_SIZE(subcommands), NULL);
}
