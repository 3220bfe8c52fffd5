/* `coffer envs`: list, create, rename, reorder and delete a project's environments through
 * /api/v1/workspace/{projectId}/environments (docs/api.md, Environments). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/banned.h"
#include "util/str.h"

static const char *const env_headers[] = {"POSITION", "SLUG", "NAME", "ID"};
#define ENV_COLS (CF_ARRAY_SIZE(env_headers))

static enum cf_rc env_row(struct cf_table *table, json_t *env, void *ctx)
{
    char position[24];
    const char *row[ENV_COLS] = {cf_cli_int_str(env, "position", position, sizeof(position)),
                                 cf_cli_str(env, "slug"), cf_cli_str(env, "name"),
                                 cf_cli_str(env, "id")};
    (void)ctx;
    return cf_table_add(table, row);
}

/* Prints environments (a JSON array of Environment) as a table. */
static int print_envs(json_t *envs)
{
    return cf_cli_print_rows(envs, ENV_COLS, env_headers, env_row, NULL);
}

/* Sends body (may be NULL) to the environments collection (env NULL) or one environment and prints
 * the answer: the list for a GET of the collection, else the one environment. */
static int env_request(struct cf_cli *cli, const char *method, const char *env, json_t *body)
{
    struct cf_buf path;
    json_t *answer = NULL;
    cf_buf_init(&path, 0);
    int status = cf_cli_path(&path, "/v1/workspace", cli->project_id, "/environments", env, NULL);
    if (status == CF_EXIT_OK)
        status = cf_cli_request(cli, method, path.data, NULL, body, &answer);
    if (status == CF_EXIT_OK && !env && strcmp(method, "GET") == 0) {
        status = cli->json ? cf_cli_print_json(answer)
                           : print_envs(json_object_get(answer, "environments"));
    } else if (status == CF_EXIT_OK) {
        static const struct cf_cli_object env_object = {"environment", "environment", "slug",
                                                        print_envs};
        status = cf_cli_print_object(cli, method, answer, &env_object);
    }
    json_decref(answer);
    cf_buf_release(&path);
    return status;
}

static const char list_usage[] = "usage: coffer envs list --projectId ID [options]\n"
                                 "\n"
                                 "Lists a project's environments in position order.\n"
                                 "\n"
                                 "options:\n" CF_CLI_PROJECT_HELP CF_CLI_COMMON_HELP;

/* `list` (no ENV) and `delete ENV`: method on the collection or on ENV, no options of their own. */
static int env_command(int argc, char **argv, const char *usage, size_t nargs, const char *method)
{
    const struct cf_cli_spec spec = {usage, CF_CLI_PROJECT, nargs, nargs, NULL, 0};
    struct cf_cli cli;
    int status;

    if (cf_cli_begin(&cli, argc, argv, &spec, &status))
        status = env_request(&cli, method, nargs ? cli.args[0] : NULL, NULL);
    cf_cli_end(&cli);
    return status;
}

static int cmd_list(int argc, char **argv)
{
    return env_command(argc, argv, list_usage, 0, "GET");
}

static const char create_usage[] =
    "usage: coffer envs create NAME --slug SLUG [--position N] --projectId ID [options]\n"
    "\n"
    "Creates an environment.\n"
    "\n"
    "options:\n"
    "  --slug SLUG        the environment's slug ([a-z0-9-], 1..64 characters; required)\n"
    "  --position N       its place in the list (default: last)\n" CF_CLI_PROJECT_HELP
        CF_CLI_COMMON_HELP;

static int cmd_create(int argc, char **argv)
{
    const char *slug = NULL;
    struct cf_opt_int position = {0};
    const struct cf_opt opts[] = {
        {"slug", CF_OPT_STRING, &slug},
        {"position", CF_OPT_INT, &position},
    };
    const struct cf_cli_spec spec = {create_usage, CF_CLI_PROJECT, 1, 1, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    json_t *body = NULL;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (!slug) {
        status = cf_cli_usage_error(&cli, "--slug is required");
        goto out;
    }
    body = json_pack("{s:s, s:s}", "name", cli.args[0], "slug", slug);
    if (!body || (position.set &&
                  json_object_set_new(body, "position", json_integer(position.value)) != 0)) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    status = env_request(&cli, "POST", NULL, body);
out:
    json_decref(body);
    cf_cli_end(&cli);
    return status;
}

static const char rename_usage[] =
    "usage: coffer envs rename ENV [--name NAME] [--slug SLUG] --projectId ID [options]\n"
    "\n"
    "Renames an environment (given by slug or id): a new name, a new slug, or both.\n"
    "\n"
    "options:\n"
    "  --name NAME        the new name\n"
    "  --slug SLUG        the new slug\n" CF_CLI_PROJECT_HELP CF_CLI_COMMON_HELP;

static int cmd_rename(int argc, char **argv)
{
    const char *name = NULL, *slug = NULL;
    const struct cf_opt opts[] = {
        {"name", CF_OPT_STRING, &name},
        {"slug", CF_OPT_STRING, &slug},
    };
    const struct cf_cli_spec spec = {rename_usage, CF_CLI_PROJECT, 1, 1, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    json_t *body = NULL;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (!name && !slug) {
        status = cf_cli_usage_error(&cli, "give --name, --slug or both");
        goto out;
    }
    body = json_object();
    if (!body || (name && json_object_set_new(body, "name", json_string(name)) != 0) ||
        (slug && json_object_set_new(body, "slug", json_string(slug)) != 0)) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    status = env_request(&cli, "PATCH", cli.args[0], body);
out:
    json_decref(body);
    cf_cli_end(&cli);
    return status;
}

static const char move_usage[] =
    "usage: coffer envs move ENV --position N --projectId ID [options]\n"
    "\n"
    "Moves an environment (given by slug or id) to another place in the list.\n"
    "\n"
    "options:\n"
    "  --position N       the new position (required)\n" CF_CLI_PROJECT_HELP CF_CLI_COMMON_HELP;

static int cmd_move(int argc, char **argv)
{
    struct cf_opt_int position = {0};
    const struct cf_opt opts[] = {{"position", CF_OPT_INT, &position}};
    const struct cf_cli_spec spec = {move_usage, CF_CLI_PROJECT, 1, 1, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    json_t *body = NULL;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (!position.set) {
        status = cf_cli_usage_error(&cli, "--position is required");
        goto out;
    }
    body = json_pack("{s:I}", "position", (json_int_t)position.value);
    if (!body) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    status = env_request(&cli, "PATCH", cli.args[0], body);
out:
    json_decref(body);
    cf_cli_end(&cli);
    return status;
}

static const char delete_usage[] =
    "usage: coffer envs delete ENV --projectId ID [options]\n"
    "\n"
    "Deletes an environment (given by slug or id) with its folders and secrets.\n"
    "\n"
    "options:\n" CF_CLI_PROJECT_HELP CF_CLI_COMMON_HELP;

static int cmd_delete(int argc, char **argv)
{
    return env_command(argc, argv, delete_usage, 1, "DELETE");
}

static const struct cf_cli_sub subcommands[] = {
    {"list", cmd_list, "list environments"},
    {"create", cmd_create, "create an environment"},
    {"rename", cmd_rename, "change an environment's name or slug"},
    {"move", cmd_move, "change an environment's position"},
    {"delete", cmd_delete, "delete an environment and everything in it"},
};

int cf_cmd_envs(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, subcommands, CF_ARRAY_SIZE(subcommands), NULL);
}
