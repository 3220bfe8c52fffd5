/* `coffer access`: access requests and temporary grants through /api/v1/access-requests
 * (docs/approvals.md "Access requests"): a user asks for temporary access to a place; a project
 * administrator or an org owner/admin grants, denies or revokes it; everyone lists and shows the
 * requests they may see. */
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

static const char *const request_headers[] = {"ID",      "USER",   "ENV",   "PATH",
                                              "ACTIONS", "STATUS", "UNTIL", "REASON"};
#define REQUEST_COLS (CF_ARRAY_SIZE(request_headers))

static enum cf_rc request_row(struct cf_table *table, json_t *r, void *ctx)
{
    char actions[64] = "";
    size_t at = 0, i;
    json_t *a;
    (void)ctx;
    json_array_foreach(json_object_get(r, "actions"), i, a)
    {
        int n = snprintf(actions + at, sizeof(actions) - at, "%s%s", at ? "," : "",
                         json_string_value(a) ? json_string_value(a) : "");
        if (n < 0 || (size_t)n >= sizeof(actions) - at)
            break;
        at += (size_t)n;
    }
    const char *row[REQUEST_COLS] = {
        cf_cli_str(r, "id"),
        cf_cli_str(json_object_get(r, "user"), "email"),
        cf_cli_str(r, "environment"),
        cf_cli_str(r, "secretPath"),
        actions,
        cf_cli_str(r, "status"),
        cf_cli_str(r, "endsAt"),
        cf_cli_str(r, "reason"),
    };
    return cf_table_add(table, row);
}

static int print_requests(json_t *list)
{
    return cf_cli_print_rows(list, REQUEST_COLS, request_headers, request_row, NULL);
}

static const struct cf_cli_object request_object = {"access request", "accessRequest", "id",
                                                    print_requests};

static const char request_usage[] =
    "usage: coffer access request --project P --env ENV [--path GLOB] --duration D\n"
    "           --reason TEXT [--actions read,create,edit,delete] [options]\n"
    "\n"
    "Asks for temporary access to a place of a project: read by default, or the\n"
    "actions named (at most read, create, edit and delete). A project administrator\n"
    "or an org owner or admin other than you grants it (coffer access grant ID); the\n"
    "grant ends by itself after its duration (at most the server's\n"
    "--access-max-duration, 24h unless configured).\n"
    "\n"
    "options:\n"
    "  --project P        the project's id or slug (also --projectId)\n"
    "  --env ENV          the environment's slug\n"
    "  --path GLOB        the folder path glob, e.g. /backend or /backend/** (default\n"
    "                     /**: every folder)\n"
    "  --duration D       how long, e.g. 30m, 2h\n"
    "  --reason TEXT      why (shown to those who decide, kept in the record)\n"
    "  --actions LIST     comma-separated: read, create, edit, delete (default "
    "read)\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_request(int argc, char **argv)
{
    const char *project = NULL, *project_id = NULL, *env = NULL, *path = NULL, *duration = NULL,
               *reason = NULL, *actions = NULL;
    const struct cf_opt opts[] = {
        {"project", CF_OPT_STRING, &project},   {"projectId", CF_OPT_STRING, &project_id},
        {"env", CF_OPT_STRING, &env},           {"path", CF_OPT_STRING, &path},
        {"duration", CF_OPT_STRING, &duration}, {"reason", CF_OPT_STRING, &reason},
        {"actions", CF_OPT_STRING, &actions},
    };
    const struct cf_cli_spec spec = {request_usage, 0, 0, 0, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    json_t *body = NULL;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (!project)
        project = project_id;
    if (!project || !env || !duration || !reason) {
        status = cf_cli_usage_error(&cli, "%s is required",
                                    !project    ? "--project"
                                    : !env      ? "--env"
                                    : !duration ? "--duration"
                                                : "--reason");
        goto out;
    }
    body = json_pack("{s:s, s:s, s:s, s:s}", "projectId", project, "environment", env, "duration",
                     duration, "reason", reason);
    if (!body || (path && json_object_set_new(body, "secretPath", json_string(path)) != 0) ||
        (actions && json_object_set_new(body, "actions", json_string(actions)) != 0)) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    status = cf_cli_request_member(&cli, "POST", "/v1/access-requests", body, "accessRequest",
                                   print_requests);
out:
    json_decref(body);
    cf_cli_end(&cli);
    return status;
}

/* POST /v1/access-requests/{ID}/{verb} with {duration?, comment?}. */
static int decide(int argc, char **argv, const char *usage, const char *verb, bool has_duration)
{
    const char *duration = NULL, *comment = NULL;
    const struct cf_opt opts[] = {
        {"comment", CF_OPT_STRING, &comment},
        {"duration", CF_OPT_STRING, &duration},
    };
    const struct cf_cli_spec spec = {usage, 0, 1, 1, opts, has_duration ? 2 : 1};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *body = NULL;
    int status;
    char suffix[16];

    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    body = json_object();
    if (!body || (comment && json_object_set_new(body, "comment", json_string(comment)) != 0) ||
        (duration && json_object_set_new(body, "duration", json_string(duration)) != 0)) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    snprintf(suffix, sizeof(suffix), "/%s", verb);
    status = cf_cli_path(&path, "/v1/access-requests", cli.args[0], suffix, NULL, NULL);
    if (status == CF_EXIT_OK)
        status =
            cf_cli_request_member(&cli, "POST", path.data, body, "accessRequest", print_requests);
out:
    json_decref(body);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const char grant_usage[] =
    "usage: coffer access grant ID [--duration D] [--comment TEXT] [options]\n"
    "\n"
    "Grants a pending access request from now, for the duration asked for or D. Project\n"
    "administrators and org owners and admins decide; nobody grants their own request.\n"
    "\n"
    "options:\n"
    "  --duration D       grant for this long instead (e.g. 1h)\n"
    "  --comment TEXT     a note kept with the decision\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_grant(int argc, char **argv)
{
    return decide(argc, argv, grant_usage, "grant", true);
}

static const char deny_usage[] =
    "usage: coffer access deny ID [--comment TEXT] [options]\n"
    "\n"
    "Denies a pending access request.\n"
    "\n"
    "options:\n"
    "  --comment TEXT     a note kept with the decision\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_deny(int argc, char **argv)
{
    return decide(argc, argv, deny_usage, "deny", false);
}

static const char revoke_usage[] =
    "usage: coffer access revoke ID [--comment TEXT] [options]\n"
    "\n"
    "Ends a grant at once (its user may also give it up).\n"
    "\n"
    "options:\n"
    "  --comment TEXT     a note kept with the decision\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_revoke(int argc, char **argv)
{
    return decide(argc, argv, revoke_usage, "revoke", false);
}

static const char list_usage[] =
    "usage: coffer access list [--project P] [--status S] [options]\n"
    "\n"
    "Lists access requests, newest first: a project's (for those who decide there),\n"
    "else every request for org owners and admins and your own for others.\n"
    "\n"
    "options:\n"
    "  --project P        the project's id or slug (also --projectId)\n"
    "  --status S         pending, granted, denied, revoked, or live (grants not yet\n"
    "                     ended)\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_list(int argc, char **argv)
{
    const char *project = NULL, *project_id = NULL, *state = NULL;
    const struct cf_opt opts[] = {
        {"project", CF_OPT_STRING, &project},
        {"projectId", CF_OPT_STRING, &project_id},
        {"status", CF_OPT_STRING, &state},
    };
    const struct cf_cli_spec spec = {list_usage, 0, 0, 0, opts, CF_ARRAY_SIZE(opts)};
    struct cf_query_param query[3] = {{0}};
    size_t n = 0;
    struct cf_cli cli;
    int status;

    if (cf_cli_begin(&cli, argc, argv, &spec, &status)) {
        if (project || project_id)
            query[n++] = (struct cf_query_param){"projectId", project ? project : project_id};
        if (state)
            query[n++] = (struct cf_query_param){"status", state};
        status = cf_cli_request_list(&cli, "/v1/access-requests", query, "accessRequests",
                                     print_requests);
    }
    cf_cli_end(&cli);
    return status;
}

static const char show_usage[] = "usage: coffer access show ID [options]\n"
                                 "\n"
                                 "Shows one access request.\n"
                                 "\n"
                                 "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_show(int argc, char **argv)
{
    return cf_cli_object_command(argc, argv, show_usage, "GET", "/v1/access-requests",
                                 &request_object);
}

static const struct cf_cli_sub subcommands[] = {
    {"request", cmd_request, "ask for temporary access to a place"},
    {"grant", cmd_grant, "grant a pending access request"},
    {"deny", cmd_deny, "deny a pending access request"},
    {"revoke", cmd_revoke, "end a grant at once"},
    {"list", cmd_list, "list access requests"},
    {"show", cmd_show, "show an access request"},
};

int cf_cmd_access(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, subcommands, CF_ARRAY_SIZE(subcommands), NULL);
}
