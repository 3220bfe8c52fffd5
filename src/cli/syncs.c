/* `coffer syncs`: secret syncs through the API (docs/syncs.md): list, create, get, run now,
 * remove, and the detailed status of one (its last outcome, the failure's cause, drift). A sync is
 * named by its id alone: the commands use the API's "any" destination segment. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/banned.h"
#include "util/str.h"

#define PREFIX "/v1/secret-syncs"

static const char *const headers[] = {"ID",     "NAME",   "DESTINATION", "SOURCE",
                                      "STATUS", "SYNCED", "ITEMS",       "DRIFT"};

static enum cf_rc sync_row(struct cf_table *table, json_t *s, void *ctx)
{
    char source[1200], items[24], drift[24];
    (void)ctx;
    json_t *env = json_object_get(s, "environment");
    json_t *folder = json_object_get(s, "folder");
    snprintf(source, sizeof(source), "%s:%s", cf_cli_str(env, "slug"), cf_cli_str(folder, "path"));
    snprintf(drift, sizeof(drift), "%zu", json_array_size(json_object_get(s, "drift")));
    const char *row[] = {cf_cli_str(s, "id"),
                         cf_cli_str(s, "name"),
                         cf_cli_str(s, "destination"),
                         source,
                         cf_cli_str(s, "syncStatus"),
                         json_is_string(json_object_get(s, "lastSyncedAt"))
                             ? cf_cli_str(s, "lastSyncedAt")
                             : "never",
                         cf_cli_int_str(s, "itemsPushed", items, sizeof(items)),
                         drift};
    return cf_table_add(table, row);
}

static int print_syncs(json_t *list)
{
    return cf_cli_print_rows(list, CF_ARRAY_SIZE(headers), headers, sync_row, NULL);
}

static const char list_usage[] =
    "usage: coffer syncs list --projectId ID [--destination D] [options]\n"
    "\n"
    "Lists a project's secret syncs with their status.\n"
    "\n"
    "options:\n" CF_CLI_PROJECT_HELP "  --destination D    only syncs to D (file, azure-devops, "
    "azure-key-vault, github)\n" CF_CLI_COMMON_HELP;

static int cmd_list(int argc, char **argv)
{
    const char *destination = NULL;
    const struct cf_opt opts[] = {{"destination", CF_OPT_STRING, &destination}};
    const struct cf_cli_spec spec = {list_usage, CF_CLI_PROJECT, 0, 0, opts, 1};
    struct cf_cli cli;
    struct cf_buf path;
    int status;
    cf_buf_init(&path, 0);
    if (cf_cli_begin(&cli, argc, argv, &spec, &status)) {
        const struct cf_query_param q[] = {{"projectId", cli.project_id}, {NULL, NULL}};
        status = destination ? cf_cli_path(&path, PREFIX, destination, NULL, NULL, NULL)
                             : cf_cli_path(&path, PREFIX, NULL, NULL, NULL, NULL);
        if (status == CF_EXIT_OK)
            status = cf_cli_request_list(&cli, path.data, q, "secretSyncs", print_syncs);
    }
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const char create_usage[] =
    "usage: coffer syncs create DESTINATION --projectId ID --name NAME [--env SLUG]\n"
    "           [--path PATH] [--connectionId ID] --config JSON [--key-schema S]\n"
    "           [--initial-behavior B] [--disable-deletion] [--auto-sync=false] [options]\n"
    "\n"
    "Creates a sync of the folder PATH of environment SLUG (its imports and references\n"
    "expanded) to DESTINATION: file, azure-devops, azure-key-vault or github. It runs at\n"
    "once, and again within seconds of every change to the project's secrets.\n"
    "\n"
    "options:\n" CF_CLI_PROJECT_HELP CF_CLI_ENV_HELP
    "  --path PATH        the source folder (default /)\n"
    "  --name NAME        the sync's name (unique in the project)\n"
    "  --description T    a description\n"
    "  --connectionId ID  the app connection (not for a file)\n"
    "  --config JSON      the destinationConfig object (see docs/syncs.md)\n"
    "  --key-schema S     destination names, e.g. TF_VAR_{{secretKey}} (default {{secretKey}})\n"
    "  --initial-behavior B  overwrite-destination (default), import-prioritize-source or\n"
    "                     import-prioritize-destination\n"
    "  --disable-deletion keep at the destination what is deleted in Coffer\n"
    "  --auto-sync=false  sync only when run (coffer syncs run)\n" CF_CLI_COMMON_HELP;

static int cmd_create(int argc, char **argv)
{
    const char *name = NULL, *description = NULL, *connection = NULL, *config = NULL;
    const char *schema = NULL, *initial = NULL;
    bool disable_deletion = false, auto_sync = true;
    const struct cf_opt opts[] = {
        {"name", CF_OPT_STRING, &name},
        {"description", CF_OPT_STRING, &description},
        {"connectionId", CF_OPT_STRING, &connection},
        {"config", CF_OPT_STRING, &config},
        {"key-schema", CF_OPT_STRING, &schema},
        {"initial-behavior", CF_OPT_STRING, &initial},
        {"disable-deletion", CF_OPT_BOOL, &disable_deletion},
        {"auto-sync", CF_OPT_BOOL, &auto_sync},
    };
    const struct cf_cli_spec spec = {
        create_usage, CF_CLI_PROJECT | CF_CLI_ENV | CF_CLI_PATH, 1, 1, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *body = NULL, *dest_config = NULL, *options = NULL;
    int status;

    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (!name) {
        status = cf_cli_usage_error(&cli, "--name is required");
        goto out;
    }
    json_error_t jerr;
    dest_config = json_loads(config ? config : "{}", 0, &jerr);
    if (!json_is_object(dest_config)) {
        status = cf_cli_usage_error(&cli, "--config: a JSON object is required (%s)",
                                    dest_config ? "not an object" : jerr.text);
        goto out;
    }
    options = json_pack("{s:b}", "disableSecretDeletion", disable_deletion);
    if (options && schema)
        json_object_set_new(options, "keySchema", json_string(schema));
    if (options && initial)
        json_object_set_new(options, "initialSyncBehavior", json_string(initial));
    body = json_pack("{s:s, s:s, s:s, s:s, s:O, s:O, s:b}", "projectId", cli.project_id, "name",
                     name, "environment", cli.env, "secretPath", cli.path, "destinationConfig",
                     dest_config, "syncOptions", options, "isAutoSyncEnabled", auto_sync);
    if (body && description)
        json_object_set_new(body, "description", json_string(description));
    if (body && connection)
        json_object_set_new(body, "connectionId", json_string(connection));
    if (!body) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    status = cf_cli_path(&path, PREFIX, cli.args[0], NULL, NULL, NULL);
    if (status == CF_EXIT_OK)
        status = cf_cli_request_member(&cli, "POST", path.data, body, "secretSync", print_syncs);
out:
    json_decref(body);
    json_decref(dest_config);
    json_decref(options);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

/* Prints a sync's status in detail; returns 1 when its last run failed. */
static int print_status(json_t *s)
{
    json_t *drift = json_object_get(s, "drift"), *entry;
    json_t *env = json_object_get(s, "environment");
    size_t i;
    char items[24], attempts[24];
    const char *message = cf_cli_str(s, "lastSyncMessage");
    printf("sync:         %s (%s)\n", cf_cli_str(s, "name"), cf_cli_str(s, "id"));
    printf("source:       %s:%s\n", cf_cli_str(env, "slug"),
           cf_cli_str(json_object_get(s, "folder"), "path"));
    printf("destination:  %s\n", cf_cli_str(s, "destination"));
    printf("status:       %s%s\n", cf_cli_str(s, "syncStatus"),
           json_is_true(json_object_get(s, "pending")) ? " (a change is waiting)" : "");
    printf("last synced:  %s\n", json_is_string(json_object_get(s, "lastSyncedAt"))
                                     ? cf_cli_str(s, "lastSyncedAt")
                                     : "never");
    printf("last attempt: %s\n", json_is_string(json_object_get(s, "lastSyncAttemptAt"))
                                     ? cf_cli_str(s, "lastSyncAttemptAt")
                                     : "never");
    printf("items pushed: %s\n", cf_cli_int_str(s, "itemsPushed", items, sizeof(items)));
    if (*message) {
        printf("last error:   %s\n", message);
        printf("cause:        %s\n", cf_cli_str(s, "lastSyncErrorCause"));
        printf("retry:        attempt %s failed; next at %s\n",
               cf_cli_int_str(s, "failedAttempts", attempts, sizeof(attempts)),
               cf_cli_str(s, "nextAttemptAt"));
    }
    if (json_array_size(drift) == 0) {
        printf("drift:        none\n");
    } else {
        printf("drift:        %zu name(s) changed at the destination outside Coffer:\n",
               json_array_size(drift));
        json_array_foreach(drift, i, entry)
        {
            printf("              %s (%s)\n", cf_cli_str(entry, "name"),
                   cf_cli_str(entry, "change"));
        }
    }
    return strcmp(cf_cli_str(s, "syncStatus"), "failed") == 0 ? CF_EXIT_FAILURE : CF_EXIT_OK;
}

/* A command on one sync: method (and suffix) on /v1/secret-syncs/any/ID. */
static int one_sync(int argc, char **argv, const char *usage, const char *method,
                    const char *suffix, bool detail)
{
    const struct cf_cli_spec spec = {usage, 0, 1, 1, NULL, 0};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *answer = NULL;
    int status;
    cf_buf_init(&path, 0);
    bool began = cf_cli_begin(&cli, argc, argv, &spec, &status);
    if (began) {
        status = cf_cli_path(&path, PREFIX "/any", cli.args[0], suffix, NULL, NULL);
        if (status == CF_EXIT_OK)
            status = cf_cli_request(&cli, method, path.data, NULL, NULL, &answer);
    }
    if (began && status == CF_EXIT_OK) {
        json_t *s = json_object_get(answer, "secretSync");
        if (cli.json)
            status = cf_cli_print_json(answer);
        else if (strcmp(method, "DELETE") == 0)
            printf("removed secret sync %s (%s)\n", cf_cli_str(s, "name"), cf_cli_str(s, "id"));
        else if (detail)
            status = print_status(s);
        else
            status = cf_cli_print_member(&cli, answer, "secretSync", print_syncs);
    }
    json_decref(answer);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const char get_usage[] = "usage: coffer syncs get ID [options]\n"
                                "\n"
                                "Shows one secret sync.\n"
                                "\n"
                                "options:\n" CF_CLI_COMMON_HELP;

static int cmd_get(int argc, char **argv)
{
    return one_sync(argc, argv, get_usage, "GET", NULL, false);
}

static const char status_usage[] =
    "usage: coffer syncs status ID [options]\n"
    "\n"
    "Shows a sync's status: its last success and attempt, the last error with its\n"
    "cause, the items pushed and the names that drifted at the destination. Exits 1\n"
    "when the last run failed.\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP;

static int cmd_status(int argc, char **argv)
{
    return one_sync(argc, argv, status_usage, "GET", NULL, true);
}

static const char run_usage[] = "usage: coffer syncs run ID [options]\n"
                                "\n"
                                "Runs a sync now and shows its status afterwards (exit 1 when\n"
                                "the run failed).\n"
                                "\n"
                                "options:\n" CF_CLI_COMMON_HELP;

static int cmd_run(int argc, char **argv)
{
    return one_sync(argc, argv, run_usage, "POST", "/sync-secrets", true);
}

static const char remove_usage[] = "usage: coffer syncs remove ID [options]\n"
                                   "\n"
                                   "Removes a sync. What it pushed stays at the destination.\n"
                                   "\n"
                                   "options:\n" CF_CLI_COMMON_HELP;

static int cmd_remove(int argc, char **argv)
{
    return one_sync(argc, argv, remove_usage, "DELETE", NULL, false);
}

static const struct cf_cli_sub subcommands[] = {
    {"create", cmd_create, "create a secret sync"},
    {"get", cmd_get, "show a secret sync"},
    {"list", cmd_list, "list a project's secret syncs"},
    {"remove", cmd_remove, "remove a secret sync"},
    {"run", cmd_run, "run a secret sync now"},
    {"status", cmd_status, "a secret sync's status, errors and drift"},
};

int cf_cmd_syncs(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, subcommands, CF_ARRAY_SIZE(subcommands), NULL);
}
