/* `coffer expiring`: every secret expiry, rotation reminder, client-secret and app-connection
 * expiry the token can see that falls due within a window or already has, soonest first (GET
 * /api/v1/expiring, docs/api.md "Expiry"). With --fail it exits 3 when anything is listed, so that
 * a scheduled pipeline can gate on it. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/time.h"
#include "util/banned.h"
#include "util/str.h"

/* Something is listed and --fail was given. */
#define EXIT_FOUND 3

static const char usage[] =
    "usage: coffer expiring [--within D] [--projectId ID] [--include KINDS] [--fail]\n"
    "                       [options]\n"
    "\n"
    "Lists what expires or falls due for rotation within D (default 30d), and\n"
    "what already has, soonest first: secrets with an expiry (project/env:path\n"
    "KEY), rotation reminders of secrets left unchanged too long, and machine\n"
    "identities' client secrets, and (the admin's, without --projectId) the\n"
    "credentials of app connections. An identity's token sees the secrets it may\n"
    "read and its own client secrets; the admin token sees everything.\n"
    "\n"
    "options:\n"
    "  --within D         the window: 30d, 12h, 3600 (default 30d)\n"
    "  --projectId ID     one project (id or slug); client secrets of its members\n"
    "  --include KINDS    comma list of secrets, reminders, clientSecrets, connections\n"
    "                     (default all)\n"
    "  --fail             exit 3 when anything is listed (a gate for scheduled "
    "jobs)\n" CF_CLI_COMMON_HELP "\n"
    "exit status: 0 done (nothing listed, or --fail not given), 3 something listed\n"
    "with --fail, 1 the server refused or could not be reached, 2 usage error.\n";

/* "9d 23h", "5h 2m", "40m", "expired 2d 3h ago" / "overdue 1d ago". */
static void remaining(const char *status, const char *due, char *out, size_t size)
{
    struct cf_err err;
    int64_t due_ms = 0;
    cf_err_clear(&err);
    if (cf_time_parse(due, &due_ms, &err) != CF_OK) {
        snprintf(out, size, "?");
        return;
    }
    int64_t left = (due_ms - cf_now_ms()) / 1000, span = left < 0 ? -left : left;
    long long d = span / 86400, h = span % 86400 / 3600, m = span % 3600 / 60;
    char text[64];
    if (d > 0)
        snprintf(text, sizeof(text), "%lldd %lldh", d, h);
    else if (h > 0)
        snprintf(text, sizeof(text), "%lldh %lldm", h, m);
    else
        snprintf(text, sizeof(text), "%lldm", m);
    if (left < 0)
        snprintf(out, size, "%s %s ago", strcmp(status, "overdue") == 0 ? "due" : "expired", text);
    else
        snprintf(out, size, "%s", text);
}

static enum cf_rc item_row(struct cf_table *table, json_t *item, void *ctx)
{
    char left[96];
    (void)ctx;
    remaining(cf_cli_str(item, "status"), cf_cli_str(item, "dueAt"), left, sizeof(left));
    const char *row[] = {cf_cli_str(item, "status"), cf_cli_str(item, "dueAt"), left,
                         cf_cli_str(item, "kind"), cf_cli_str(item, "message")};
    return cf_table_add(table, row);
}

static int print_items(json_t *items)
{
    static const char *const headers[] = {"STATUS", "DUE", "IN", "KIND", "WHAT"};
    return cf_cli_print_rows(items, 5, headers, item_row, NULL);
}

int cf_cmd_expiring(int argc, char **argv)
{
    const char *within = NULL, *project = NULL, *include = NULL;
    bool fail = false;
    const struct cf_opt opts[] = {
        {"within", CF_OPT_STRING, &within},
        {"projectId", CF_OPT_STRING, &project},
        {"include", CF_OPT_STRING, &include},
        {"fail", CF_OPT_BOOL, &fail},
    };
    const struct cf_cli_spec spec = {usage, 0, 0, 0, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    json_t *answer = NULL;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (within) {
        struct cf_err err;
        int64_t seconds = 0;
        cf_err_clear(&err);
        if (cf_duration_parse(within, &seconds, &err) != CF_OK) {
            status = cf_cli_usage_error(&cli,
                                        "--within takes a duration such as 30d, 12h or "
                                        "3600, not '%.64s'",
                                        within);
            goto out;
        }
    }
    if (project && !*project) {
        status = cf_cli_usage_error(&cli, "--projectId is empty");
        goto out;
    }
    const struct cf_query_param query[] = {
        {"within", within ? within : "30d"},
        {"projectId", project},
        {"include", include},
        {NULL, NULL},
    };
    status = cf_cli_request(&cli, "GET", "/v1/expiring", query, NULL, &answer);
    if (status != CF_EXIT_OK)
        goto out;
    json_t *items = json_object_get(answer, "items");
    if (cli.json)
        status = cf_cli_print_json(answer);
    else if (json_array_size(items) == 0)
        status = printf("nothing expires or falls due within %s\n", within ? within : "30d") < 0
                     ? CF_EXIT_FAILURE
                     : CF_EXIT_OK;
    else
        status = print_items(items);
    if (status == CF_EXIT_OK && fail && json_array_size(items) > 0)
        status = EXIT_FOUND;
out:
    json_decref(answer);
    cf_cli_end(&cli);
    return status;
}
