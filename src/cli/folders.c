/* `coffer folders`: list, create and delete the folders of one environment through /api/v1/folders
 * (docs/api.md, Folders). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/banned.h"
#include "util/str.h"

#define FOLDER_FLAGS (CF_CLI_PROJECT | CF_CLI_ENV | CF_CLI_PATH)

static const char *const folder_headers[] = {"NAME", "PATH", "ID"};
#define FOLDER_COLS (CF_ARRAY_SIZE(folder_headers))

static enum cf_rc folder_row(struct cf_table *table, json_t *folder, void *ctx)
{
    const char *row[FOLDER_COLS] = {cf_cli_str(folder, "name"), cf_cli_str(folder, "path"),
                                    cf_cli_str(folder, "id")};
    (void)ctx;
    return cf_table_add(table, row);
}

/* Prints folders (a JSON array of Folder) as a table. */
static int print_folders(json_t *folders)
{
    return cf_cli_print_rows(folders, FOLDER_COLS, folder_headers, folder_row, NULL);
}

/* {workspaceId, environment, path} of the command's scope; NULL when out of memory or not UTF-8. */
static json_t *scope_body(const struct cf_cli *cli)
{
    return json_pack("{s:s, s:s, s:s}", "workspaceId", cli->project_id, "environment", cli->env,
                     "path", cli->path);
}

static const char list_usage[] =
    "usage: coffer folders list [--path PATH] [--recursive]\n"
    "       --projectId ID [--env SLUG] [options]\n"
    "\n"
    "Lists the folders directly under PATH (default /), or all below it with\n"
    "--recursive.\n"
    "\n"
    "options:\n"
    "  --path PATH        the parent folder (default /)\n"
    "  --recursive        include folders at every depth\n" CF_CLI_PROJECT_HELP CF_CLI_ENV_HELP
        CF_CLI_COMMON_HELP;

static int cmd_list(int argc, char **argv)
{
    bool recursive = false;
    const struct cf_opt opts[] = {{"recursive", CF_OPT_BOOL, &recursive}};
    const struct cf_cli_spec spec = {list_usage, FOLDER_FLAGS, 0, 0, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    const struct cf_query_param query[] = {
        {"workspaceId", cli.project_id},
        {"environment", cli.env},
        {"path", cli.path},
        {"recursive", recursive ? "true" : "false"},
        {NULL, NULL},
    };
    status = cf_cli_request_list(&cli, "/v1/folders", query, "folders", print_folders);
out:
    cf_cli_end(&cli);
    return status;
}

static const char create_usage[] =
    "usage: coffer folders create NAME [--path PARENT]\n"
    "       --projectId ID [--env SLUG] [options]\n"
    "\n"
    "Creates folder NAME ([A-Za-z0-9_-], 1..64 characters) inside PARENT (default /).\n"
    "\n"
    "options:\n"
    "  --path PARENT      the parent folder (default /)\n"
    "  --description TEXT a description\n" CF_CLI_PROJECT_HELP CF_CLI_ENV_HELP CF_CLI_COMMON_HELP;

static int cmd_create(int argc, char **argv)
{
    const char *description = NULL;
    const struct cf_opt opts[] = {{"description", CF_OPT_STRING, &description}};
    const struct cf_cli_spec spec = {create_usage, FOLDER_FLAGS, 1, 1, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    json_t *body = NULL;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    body = scope_body(&cli);
    if (!body || json_object_set_new(body, "name", json_string(cli.args[0])) != 0 ||
        (description && json_object_set_new(body, "description", json_string(description)) != 0)) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    status = cf_cli_request_member(&cli, "POST", "/v1/folders", body, "folder", print_folders);
out:
    json_decref(body);
    cf_cli_end(&cli);
    return status;
}

static const char delete_usage[] =
    "usage: coffer folders delete NAME [--path PARENT]\n"
    "       --projectId ID [--env SLUG] [options]\n"
    "\n"
    "Deletes folder NAME (or the folder with that id) inside PARENT (default /),\n"
    "with its sub-folders and their secrets.\n"
    "\n"
    "options:\n"
    "  --path PARENT      the parent folder (default /)\n" CF_CLI_PROJECT_HELP CF_CLI_ENV_HELP
        CF_CLI_COMMON_HELP;

static int cmd_delete(int argc, char **argv)
{
    const struct cf_cli_spec spec = {delete_usage, FOLDER_FLAGS, 1, 1, NULL, 0};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *body = NULL, *answer = NULL;
    int status;

    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    body = scope_body(&cli);
    if (!body) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    status = cf_cli_path(&path, "/v1/folders", cli.args[0], NULL, NULL, NULL);
    if (status == CF_EXIT_OK)
        status = cf_cli_request(&cli, "DELETE", path.data, NULL, body, &answer);
    if (status != CF_EXIT_OK)
        goto out;
    if (cli.json) {
        status = cf_cli_print_json(answer);
    } else {
        json_t *folder = json_object_get(answer, "folder");
        printf("deleted folder %s (%s)\n",
               cf_cli_str(folder, "path")[0] ? cf_cli_str(folder, "path")
                                             : cf_cli_str(folder, "name"),
               cf_cli_str(folder, "id"));
    }
out:
    json_decref(answer);
    json_decref(body);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const struct cf_cli_sub subcommands[] = {
    {"list", cmd_list, "list folders"},
    {"create", cmd_create, "create a folder"},
    {"delete", cmd_delete, "delete a folder, its sub-folders and their secrets"},
};

int cf_cmd_folders(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, subcommands, CF_ARRAY_SIZE(subcommands), NULL);
}
