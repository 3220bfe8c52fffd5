/* `coffer users`: the people of the organisation through /api/v1/users (docs/users.md): create,
 * list, show, disable, enable, delete, change the org role, and project memberships (the
 * identities' commands, cli/identities.c). A password is read from standard input
 * (--password-stdin), never from the command line, where other users of the machine could see it.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/str.h"
#include "util/banned.h"

#define EXIT_HELP                                                                                  \
    "\nexit status: 0 done, 1 the server refused (its message is printed) or could not be\n"       \
    "reached, 2 usage error.\n"

#define PASSWORD_READ_MAX 1024

static const char *const user_headers[] = {"ID", "EMAIL", "NAME", "ROLE", "STATUS", "LAST LOGIN"};
#define USER_COLS (CF_ARRAY_SIZE(user_headers))

static enum cf_rc user_row(struct cf_table *table, json_t *user, void *ctx)
{
    (void)ctx;
    const char *row[USER_COLS] = {cf_cli_str(user, "id"),     cf_cli_str(user, "email"),
                                  cf_cli_str(user, "name"),   cf_cli_str(user, "orgRole"),
                                  cf_cli_str(user, "status"), cf_cli_str(user, "lastLoginAt")};
    return cf_table_add(table, row);
}

static int print_users(json_t *users)
{
    return cf_cli_print_rows(users, USER_COLS, user_headers, user_row, NULL);
}

static const struct cf_cli_object user_object = {"user", "user", "email", print_users};

/* Reads one line (the password) from standard input into out, without its newline. Returns false
 * when there is none or it is too long. */
static bool read_password(char *out, size_t size)
{
    if (!fgets(out, (int)size, stdin))
        return false;
    size_t n = strlen(out);
    if (n == size - 1 && out[n - 1] != '\n')
        return false;
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
    return n > 0;
}

static const char create_usage[] =
    "usage: coffer users create EMAIL [--name NAME] [--role owner|admin|member]\n"
    "           [--password-stdin] [options]\n"
    "\n"
    "Creates a user of the organisation. Owners and admins administer the server and\n"
    "every project; members reach projects through memberships (coffer users\n"
    "add-to-project). The first owner is created with the admin token.\n"
    "\n"
    "options:\n"
    "  --name NAME        the user's display name\n"
    "  --role ROLE        owner, admin or member (default member)\n"
    "  --password-stdin   read a local password (12 characters or more) from the\n"
    "                     first line of standard input; without it the user has no\n"
    "                     password until one is set\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_create(int argc, char **argv)
{
    const char *name = NULL, *role = NULL;
    bool password_stdin = false;
    const struct cf_opt opts[] = {
        {"name", CF_OPT_STRING, &name},
        {"role", CF_OPT_STRING, &role},
        {"password-stdin", CF_OPT_BOOL, &password_stdin},
    };
    const struct cf_cli_spec spec = {create_usage, 0, 1, 1, opts, CF_ARRAY_SIZE(opts)};
    char password[PASSWORD_READ_MAX];
    struct cf_cli cli;
    json_t *body = NULL;
    int status;

    password[0] = '\0';
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    body = json_pack("{s:s}", "email", cli.args[0]);
    if (!body || (name && json_object_set_new(body, "name", json_string(name)) != 0) ||
        (role && json_object_set_new(body, "orgRole", json_string(role)) != 0)) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    if (password_stdin) {
        if (!read_password(password, sizeof(password))) {
            status = cf_cli_usage_error(&cli, "--password-stdin: no password on standard input "
                                              "(one line, at most 1023 bytes)");
            goto out;
        }
        if (json_object_set_new(body, "password", json_string(password)) != 0) {
            status = cf_cli_usage_error(&cli, "the password must be valid UTF-8");
            goto out;
        }
    }
    status = cf_cli_request_member(&cli, "POST", "/v1/users", body, "user", print_users);
out:
    sodium_memzero(password, sizeof(password));
    json_decref(body);
    cf_cli_end(&cli);
    return status;
}

static const char list_usage[] = "usage: coffer users list [options]\n"
                                 "\n"
                                 "Lists the users of the organisation.\n"
                                 "\n"
                                 "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_list(int argc, char **argv)
{
    const struct cf_cli_spec spec = {list_usage, 0, 0, 0, NULL, 0};
    struct cf_cli cli;
    int status;

    if (cf_cli_begin(&cli, argc, argv, &spec, &status))
        status = cf_cli_request_list(&cli, "/v1/users", NULL, "users", print_users);
    cf_cli_end(&cli);
    return status;
}

static const char get_usage[] = "usage: coffer users get EMAIL|ID|me [options]\n"
                                "\n"
                                "Shows one user; 'me' is the signed-in user.\n"
                                "\n"
                                "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_get(int argc, char **argv)
{
    return cf_cli_object_command(argc, argv, get_usage, "GET", "/v1/users", &user_object);
}

static const char delete_usage[] =
    "usage: coffer users delete EMAIL|ID [options]\n"
    "\n"
    "Deletes a user with its memberships, sessions and personal access tokens, which\n"
    "stop working at once. The last active owner cannot be deleted.\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_delete(int argc, char **argv)
{
    return cf_cli_object_command(argc, argv, delete_usage, "DELETE", "/v1/users", &user_object);
}

/* PATCH /v1/users/{args[0]} with {member: value}, value the command's fixed one or args[1]. */
static int patch_user(int argc, char **argv, const char *usage, size_t nargs, const char *member,
                      const char *value)
{
    const struct cf_cli_spec spec = {usage, 0, nargs, nargs, NULL, 0};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *body = NULL;
    int status;

    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    body = json_pack("{s:s}", member, value ? value : cli.args[1]);
    if (!body) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    status = cf_cli_path(&path, "/v1/users", cli.args[0], NULL, NULL, NULL);
    if (status == CF_EXIT_OK)
        status = cf_cli_request_member(&cli, "PATCH", path.data, body, "user", print_users);
out:
    json_decref(body);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const char disable_usage[] =
    "usage: coffer users disable EMAIL|ID [options]\n"
    "\n"
    "Disables a user: its sessions and personal access tokens fail from their next\n"
    "request, and it cannot sign in, until it is enabled again.\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_disable(int argc, char **argv)
{
    return patch_user(argc, argv, disable_usage, 1, "status", "disabled");
}

static const char enable_usage[] = "usage: coffer users enable EMAIL|ID [options]\n"
                                   "\n"
                                   "Enables a disabled user again.\n"
                                   "\n"
                                   "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_enable(int argc, char **argv)
{
    return patch_user(argc, argv, enable_usage, 1, "status", "active");
}

static const char set_role_usage[] =
    "usage: coffer users set-role EMAIL|ID owner|admin|member [options]\n"
    "\n"
    "Changes a user's org role. Only an owner (or the admin token) makes or unmakes\n"
    "owners; the last active owner keeps the role.\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_set_role(int argc, char **argv)
{
    return patch_user(argc, argv, set_role_usage, 2, "orgRole", NULL);
}

static const struct cf_cli_sub subcommands[] = {
    {"create", cmd_create, "create a user"},
    {"list", cmd_list, "list users"},
    {"get", cmd_get, "show a user"},
    {"disable", cmd_disable, "disable a user (its sessions and tokens stop working)"},
    {"enable", cmd_enable, "enable a disabled user"},
    {"delete", cmd_delete, "delete a user"},
    {"set-role", cmd_set_role, "change a user's org role"},
    {"add-to-project", cf_cmd_users_add_to_project, "give a user a role in a project"},
    {"remove-from-project", cf_cmd_users_remove_from_project, "remove a user from a project"},
    {"memberships", cf_cmd_users_memberships, "list a project's user memberships"},
    {"mfa", cf_cmd_users_mfa, "two-factor sign-in (enable|verify|status|recovery-codes|disable)"},
};

int cf_cmd_users(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, subcommands, CF_ARRAY_SIZE(subcommands), NULL);
}
