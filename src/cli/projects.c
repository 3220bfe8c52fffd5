/* `coffer projects`: create, list, show and delete projects through /api/v2/workspace and
 * /api/v1/workspace (docs/api.md, Projects). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/banned.h"
#include "util/str.h"

static const char *const project_headers[] = {"ID", "NAME", "SLUG", "ENVIRONMENTS", "CREATED AT"};
#define PROJECT_COLS (CF_ARRAY_SIZE(project_headers))

/* Comma-separated environment slugs of a project, into out. */
static enum cf_rc env_slugs(json_t *project, struct cf_buf *out)
{
    json_t *envs = json_object_get(project, "environments");
    size_t i;
    json_t *env;
    enum cf_rc rc = CF_OK;
    json_array_foreach(envs, i, env)
    {
        if (i && rc == CF_OK)
            rc = cf_buf_append(out, ",", 1);
        if (rc == CF_OK)
            rc = cf_buf_puts(out, cf_cli_str(env, "slug"));
    }
    return rc;
}

static enum cf_rc project_row(struct cf_table *table, json_t *project, void *ctx)
{
    struct cf_buf slugs;
    enum cf_rc rc;

    (void)ctx;
    cf_buf_init(&slugs, 0);
    rc = env_slugs(project, &slugs);
    if (rc == CF_OK) {
        const char *row[PROJECT_COLS] = {cf_cli_str(project, "id"), cf_cli_str(project, "name"),
                                         cf_cli_str(project, "slug"), slugs.data,
                                         cf_cli_str(project, "createdAt")};
        rc = cf_table_add(table, row);
    }
    cf_buf_release(&slugs);
    return rc;
}

/* Prints projects (a JSON array of Project) as a table. */
static int print_projects(json_t *projects)
{
    return cf_cli_print_rows(projects, PROJECT_COLS, project_headers, project_row, NULL);
}

static const struct cf_cli_object project_object = {"project", "workspace", "slug", print_projects};

static const char create_usage[] =
    "usage: coffer projects create NAME [--slug SLUG] [--description TEXT] [--plain]\n"
    "           [options]\n"
    "\n"
    "Creates a project with the environments dev, staging and prod. The slug\n"
    "defaults to the name lower-cased with other characters turned into '-'.\n"
    "\n"
    "options:\n"
    "  --slug SLUG        the project's slug ([a-z0-9-], 1..64 characters)\n"
    "  --description TEXT a description\n"
    "  --plain            print only the new project's id, as in\n"
    "                     PROJECT=$(coffer projects create NAME --plain)\n" CF_CLI_COMMON_HELP;

static int cmd_create(int argc, char **argv)
{
    const char *slug = NULL, *description = NULL;
    bool plain = false;
    const struct cf_opt opts[] = {
        {"slug", CF_OPT_STRING, &slug},
        {"description", CF_OPT_STRING, &description},
        {"plain", CF_OPT_BOOL, &plain},
    };
    const struct cf_cli_spec spec = {create_usage, 0, 1, 1, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    json_t *body = NULL;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    body = json_pack("{s:s}", "projectName", cli.args[0]);
    if (!body || (slug && json_object_set_new(body, "slug", json_string(slug)) != 0) ||
        (description &&
         json_object_set_new(body, "projectDescription", json_string(description)) != 0)) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    status = plain ? cf_cli_request_field(&cli, "POST", "/v2/workspace", body, "project", "id")
                   : cf_cli_request_member(&cli, "POST", "/v2/workspace", body, "project",
                                           print_projects);
out:
    json_decref(body);
    cf_cli_end(&cli);
    return status;
}

static const char list_usage[] = "usage: coffer projects list [options]\n"
                                 "\n"
                                 "Lists the projects the token can see.\n"
                                 "\n"
                                 "options:\n" CF_CLI_COMMON_HELP;

static int cmd_list(int argc, char **argv)
{
    const struct cf_cli_spec spec = {list_usage, 0, 0, 0, NULL, 0};
    struct cf_cli cli;
    int status;

    if (cf_cli_begin(&cli, argc, argv, &spec, &status))
        status = cf_cli_request_list(&cli, "/v1/workspace", NULL, "workspaces", print_projects);
    cf_cli_end(&cli);
    return status;
}

static const char get_usage[] = "usage: coffer projects get ID [options]\n"
                                "\n"
                                "Shows one project (by id or slug) with its environments.\n"
                                "\n"
                                "options:\n" CF_CLI_COMMON_HELP;

static int cmd_get(int argc, char **argv)
{
    return cf_cli_object_command(argc, argv, get_usage, "GET", "/v1/workspace", &project_object);
}

static const char delete_usage[] =
    "usage: coffer projects delete ID [options]\n"
    "\n"
    "Deletes a project (by id or slug) and everything in it: environments,\n"
    "folders, secrets and their versions.\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP;

static int cmd_delete(int argc, char **argv)
{
    return cf_cli_object_command(argc, argv, delete_usage, "DELETE", "/v1/workspace",
                                 &project_object);
}

static const struct cf_cli_sub subcommands[] = {
    {"create", cmd_create, "create a project"},
    {"list", cmd_list, "list projects"},
    {"get", cmd_get, "show a project"},
    {"delete", cmd_delete, "delete a project and everything in it"},
};

int cf_cmd_projects(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, subcommands, CF_ARRAY_SIZE(subcommands), NULL);
}
