/* `coffer groups`: groups of users through /api/v1/groups (docs/users.md "Groups"): create, list,
 * show, rename, delete, add and remove members, list members, and the group's project memberships
 * (the identities' commands, cli/identities.c). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/str.h"
#include "util/banned.h"

#define EXIT_HELP                                                                                  \
    "\nexit status: 0 done, 1 the server refused (its message is printed) or could not be\n"       \
    "reached, 2 usage error.\n"

static const char *const group_headers[] = {"ID", "NAME", "EXTERNAL ID", "CREATED AT"};
#define GROUP_COLS (CF_ARRAY_SIZE(group_headers))

static enum cf_rc group_row(struct cf_table *table, json_t *group, void *ctx)
{
    (void)ctx;
    const char *row[GROUP_COLS] = {cf_cli_str(group, "id"), cf_cli_str(group, "name"),
                                   cf_cli_str(group, "externalId"), cf_cli_str(group, "createdAt")};
    return cf_table_add(table, row);
}

static int print_groups(json_t *groups)
{
    return cf_cli_print_rows(groups, GROUP_COLS, group_headers, group_row, NULL);
}

static const struct cf_cli_object group_object = {"group", "group", "name", print_groups};

static const char *const member_headers[] = {"ID", "EMAIL", "NAME", "STATUS"};
#define MEMBER_COLS (CF_ARRAY_SIZE(member_headers))

static enum cf_rc member_row(struct cf_table *table, json_t *user, void *ctx)
{
    (void)ctx;
    const char *row[MEMBER_COLS] = {cf_cli_str(user, "id"), cf_cli_str(user, "email"),
                                    cf_cli_str(user, "name"), cf_cli_str(user, "status")};
    return cf_table_add(table, row);
}

static int print_members(json_t *users)
{
    return cf_cli_print_rows(users, MEMBER_COLS, member_headers, member_row, NULL);
}

static const char create_usage[] =
    "usage: coffer groups create NAME [--external-id ID] [options]\n"
    "\n"
    "Creates a group of users. Give it roles in projects with coffer groups\n"
    "add-to-project; every member holds them besides its own.\n"
    "\n"
    "options:\n"
    "  --external-id ID   the id the identity provider knows the group by (an Entra\n"
    "                     ID group's object id)\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_create(int argc, char **argv)
{
    const char *external_id = NULL;
    const struct cf_opt opts[] = {{"external-id", CF_OPT_STRING, &external_id}};
    const struct cf_cli_spec spec = {create_usage, 0, 1, 1, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    json_t *body = NULL;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    body = json_pack("{s:s}", "name", cli.args[0]);
    if (!body ||
        (external_id && json_object_set_new(body, "externalId", json_string(external_id)) != 0)) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    status = cf_cli_request_member(&cli, "POST", "/v1/groups", body, "group", print_groups);
out:
    json_decref(body);
    cf_cli_end(&cli);
    return status;
}

static const char list_usage[] = "usage: coffer groups list [options]\n"
                                 "\n"
                                 "Lists the groups of the organisation.\n"
                                 "\n"
                                 "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_list(int argc, char **argv)
{
    const struct cf_cli_spec spec = {list_usage, 0, 0, 0, NULL, 0};
    struct cf_cli cli;
    int status;

    if (cf_cli_begin(&cli, argc, argv, &spec, &status))
        status = cf_cli_request_list(&cli, "/v1/groups", NULL, "groups", print_groups);
    cf_cli_end(&cli);
    return status;
}

static const char get_usage[] = "usage: coffer groups show NAME|ID [options]\n"
                                "\n"
                                "Shows one group.\n"
                                "\n"
                                "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_get(int argc, char **argv)
{
    return cf_cli_object_command(argc, argv, get_usage, "GET", "/v1/groups", &group_object);
}

static const char delete_usage[] =
    "usage: coffer groups delete NAME|ID [options]\n"
    "\n"
    "Deletes a group with its project memberships: its members lose what it gave\n"
    "them at once (the users themselves stay).\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_delete(int argc, char **argv)
{
    return cf_cli_object_command(argc, argv, delete_usage, "DELETE", "/v1/groups", &group_object);
}

static const char rename_usage[] = "usage: coffer groups rename NAME|ID NEW-NAME [options]\n"
                                   "\n"
                                   "Renames a group.\n"
                                   "\n"
                                   "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_rename(int argc, char **argv)
{
    const struct cf_cli_spec spec = {rename_usage, 0, 2, 2, NULL, 0};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *body = NULL;
    int status;

    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    body = json_pack("{s:s}", "name", cli.args[1]);
    if (!body) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    status = cf_cli_path(&path, "/v1/groups", cli.args[0], NULL, NULL, NULL);
    if (status == CF_EXIT_OK)
        status = cf_cli_request_member(&cli, "PATCH", path.data, body, "group", print_groups);
out:
    json_decref(body);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

/* method on /v1/groups/{args[0]}/users/{args[1]}, printing the user. */
static int change_member(int argc, char **argv, const char *usage, const char *method,
                         const char *done)
{
    const struct cf_cli_spec spec = {usage, 0, 2, 2, NULL, 0};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *answer = NULL;
    int status;

    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    status = cf_cli_path(&path, "/v1/groups", cli.args[0], "/users", cli.args[1], NULL);
    if (status == CF_EXIT_OK)
        status = cf_cli_request(&cli, method, path.data, NULL, NULL, &answer);
    if (status != CF_EXIT_OK)
        goto out;
    if (cli.json)
        status = cf_cli_print_json(answer);
    else
        printf("%s %s %s group %s\n", done, cli.args[1],
               strcmp(method, "POST") == 0 ? "to" : "from", cli.args[0]);
out:
    json_decref(answer);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const char add_member_usage[] =
    "usage: coffer groups add-member NAME|ID EMAIL|USER-ID [options]\n"
    "\n"
    "Adds a user to a group: it holds the group's project memberships from its next\n"
    "request. Adding a member again changes nothing.\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_add_member(int argc, char **argv)
{
    return change_member(argc, argv, add_member_usage, "POST", "added");
}

static const char remove_member_usage[] =
    "usage: coffer groups remove-member NAME|ID EMAIL|USER-ID [options]\n"
    "\n"
    "Removes a user from a group: what the group gave it ends with its next request.\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_remove_member(int argc, char **argv)
{
    return change_member(argc, argv, remove_member_usage, "DELETE", "removed");
}

static const char members_usage[] = "usage: coffer groups members NAME|ID [options]\n"
                                    "\n"
                                    "Lists the members of a group.\n"
                                    "\n"
                                    "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_members(int argc, char **argv)
{
    const struct cf_cli_spec spec = {members_usage, 0, 1, 1, NULL, 0};
    struct cf_cli cli;
    struct cf_buf path;
    int status;

    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    status = cf_cli_path(&path, "/v1/groups", cli.args[0], "/users", NULL, NULL);
    if (status == CF_EXIT_OK)
        status = cf_cli_request_list(&cli, path.data, NULL, "users", print_members);
out:
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const struct cf_cli_sub subcommands[] = {
    {"create", cmd_create, "create a group"},
    {"list", cmd_list, "list groups"},
    {"show", cmd_get, "show a group"},
    {"rename", cmd_rename, "rename a group"},
    {"delete", cmd_delete, "delete a group"},
    {"add-member", cmd_add_member, "add a user to a group"},
    {"remove-member", cmd_remove_member, "remove a user from a group"},
    {"members", cmd_members, "list a group's members"},
    {"add-to-project", cf_cmd_groups_add_to_project, "give a group a role in a project"},
    {"remove-from-project", cf_cmd_groups_remove_from_project, "remove a group from a project"},
    {"memberships", cf_cmd_groups_memberships, "list a project's group memberships"},
};

int cf_cmd_groups(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, subcommands, CF_ARRAY_SIZE(subcommands), NULL);
}
