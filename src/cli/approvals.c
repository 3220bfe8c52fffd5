/* `coffer approvals`: approval policies and change requests through /api/v1/secret-approvals and
 * /api/v1/secret-approval-requests (docs/approvals.md). Tables for people, --output json (or
 * --json) for programs. Values are never printed: a request shows which keys change, not to what.
 */
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

#define JSON_HELP "  --json             print the server's answer as JSON (as --output json)\n"

#define REQUESTS "/v1/secret-approval-requests"

/* ---- policies ---- */

static const char *const policy_headers[] = {"ID",        "NAME",        "ENV",      "PATH",
                                             "APPROVALS", "ENFORCEMENT", "MACHINES", "APPROVERS"};
#define POLICY_COLS (CF_ARRAY_SIZE(policy_headers))

/* Joins the names of the objects of items (a JSON array), as name_of writes each into a buffer,
 * with commas into out (size bytes); a list too long for out ends at the last name that fits. */
static void join_names(json_t *items, void (*name_of)(json_t *item, char *buf, size_t size),
                       char *out, size_t size)
{
    char name[400];
    size_t i, at = 0;
    json_t *item;
    out[0] = '\0';
    json_array_foreach(items, i, item)
    {
        name_of(item, name, sizeof(name));
        int w = snprintf(out + at, size - at, "%s%s", at ? "," : "", name);
        if (w < 0 || (size_t)w >= size - at) {
            out[at] = '\0';
            break;
        }
        at += (size_t)w;
    }
}

/* An approver as the table shows it: the user's email, or "group:" and the group's name. */
static void approver_name(json_t *a, char *buf, size_t size)
{
    bool group = strcmp(cf_cli_str(a, "type"), "group") == 0;
    snprintf(buf, size, "%s%s", group ? "group:" : "", cf_cli_str(a, group ? "name" : "username"));
}

static enum cf_rc policy_row(struct cf_table *table, json_t *p, void *ctx)
{
    (void)ctx;
    char approvals[24], approvers[512];
    join_names(json_object_get(p, "approvers"), approver_name, approvers, sizeof(approvers));
    const char *row[POLICY_COLS] = {
        cf_cli_str(p, "id"),
        cf_cli_str(p, "name"),
        cf_cli_str(p, "environment"),
        cf_cli_str(p, "secretPath"),
        cf_cli_int_str(p, "approvals", approvals, sizeof(approvals)),
        cf_cli_str(p, "enforcementLevel"),
        json_is_true(json_object_get(p, "allowMachineIdentities")) ? "allowed" : "refused",
        approvers};
    return cf_table_add(table, row);
}

static int print_policies(json_t *list)
{
    return cf_cli_print_rows(list, POLICY_COLS, policy_headers, policy_row, NULL);
}

/* Prints answer as JSON when asked (--output json or --json), else by print. */
static int print_answer(const struct cf_cli *cli, bool json, json_t *answer, const char *member,
                        int (*print)(json_t *list))
{
    if (cli->json || json)
        return cf_cli_print_json(member && json_is_array(json_object_get(answer, member))
                                     ? json_object_get(answer, member)
                                     : answer);
    json_t *value = json_object_get(answer, member);
    if (json_is_array(value))
        return print(value);
    json_t *one = json_array();
    int status = one && json_array_append(one, value) == 0 ? print(one) : CF_EXIT_FAILURE;
    json_decref(one);
    return status;
}

/* Appends the comma-separated names of list to array as {type, key: name}. False when out of
 * memory or not valid UTF-8. */
static bool add_approvers(json_t *array, const char *list, const char *type, const char *key)
{
    struct cf_list_iter it;
    struct cf_str item;
    char name[320];
    if (!list)
        return true;
    cf_list_init(&it, list);
    while (cf_list_next(&it, &item)) {
        if (item.n == 0)
            continue;
        if (item.n >= sizeof(name))
            return false;
        memcpy(name, item.p, item.n);
        name[item.n] = '\0';
        json_t *a = json_pack("{s:s, s:s}", "type", type, key, name);
        if (!a || json_array_append_new(array, a) != 0)
            return false;
    }
    return true;
}

static const char policies_list_usage[] =
    "usage: coffer approvals policies list --projectId ID [--json] [options]\n"
    "\n"
    "Lists a project's approval policies.\n"
    "\n"
    "options:\n" JSON_HELP CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_policies_list(int argc, char **argv)
{
    bool json = false;
    const struct cf_opt opts[] = {{"json", CF_OPT_BOOL, &json}};
    const struct cf_cli_spec spec = {policies_list_usage, CF_CLI_PROJECT, 0, 0, opts,
                                     CF_ARRAY_SIZE(opts)};
    const struct cf_query_param query[] = {{"workspaceId", NULL}, {NULL, NULL}};
    struct cf_query_param q[2];
    struct cf_cli cli;
    json_t *answer = NULL;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    memcpy(q, query, sizeof(q));
    q[0].value = cli.project_id;
    status = cf_cli_request(&cli, "GET", "/v1/secret-approvals", q, NULL, &answer);
    if (status == CF_EXIT_OK)
        status = print_answer(&cli, json, answer, "approvals", print_policies);
out:
    json_decref(answer);
    cf_cli_end(&cli);
    return status;
}

static const char policies_create_usage[] =
    "usage: coffer approvals policies create --projectId ID --name NAME --env SLUG\n"
    "           [--path GLOB] [--approvals N] [--approvers EMAIL,...] [--groups NAME,...]\n"
    "           [--enforcement hard|soft] [--allow-machines] [options]\n"
    "\n"
    "Makes writes to a place need approval: a person's change to secrets of the\n"
    "environment under the path glob becomes a change request that needs N approvals\n"
    "from the approvers before it is merged. Machine identities writing there are\n"
    "refused unless --allow-machines. A soft policy lets an org owner merge without the\n"
    "approvals, giving a reason; a hard one lets nobody.\n"
    "\n"
    "options:\n"
    "  --name NAME          the policy's name, unique in the project\n"
    "  --env SLUG           the environment it covers\n"
    "  --path GLOB          the folders it covers, e.g. / or /backend/** (default /)\n"
    "  --approvals N        approvals a request needs (default 1)\n"
    "  --approvers EMAIL    users who may approve, comma-separated (emails or ids)\n"
    "  --groups NAME        groups whose members may approve, comma-separated\n"
    "  --enforcement LEVEL  hard (default) or soft\n"
    "  --allow-machines     let machine identities write without a request\n" JSON_HELP
        CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_policies_create(int argc, char **argv)
{
    const char *name = NULL, *env = NULL, *path = NULL, *approvers = NULL, *groups = NULL;
    const char *enforcement = NULL;
    struct cf_opt_int approvals = {0};
    bool allow_machines = false, json = false;
    const struct cf_opt opts[] = {
        {"name", CF_OPT_STRING, &name},
        {"env", CF_OPT_STRING, &env},
        {"path", CF_OPT_STRING, &path},
        {"approvals", CF_OPT_INT, &approvals},
        {"approvers", CF_OPT_STRING, &approvers},
        {"groups", CF_OPT_STRING, &groups},
        {"enforcement", CF_OPT_STRING, &enforcement},
        {"allow-machines", CF_OPT_BOOL, &allow_machines},
        {"json", CF_OPT_BOOL, &json},
    };
    const struct cf_cli_spec spec = {policies_create_usage, CF_CLI_PROJECT, 0, 0, opts,
                                     CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    json_t *body = NULL, *list = NULL, *answer = NULL;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (!name || !env) {
        status = cf_cli_usage_error(&cli, "--name and --env are required");
        goto out;
    }
    if (!approvers && !groups) {
        status = cf_cli_usage_error(&cli, "give the approvers: --approvers and/or --groups");
        goto out;
    }
    list = json_array();
    body = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:b}", "workspaceId", cli.project_id, "name",
                     name, "environment", env, "secretPath", path ? path : "/", "approvals",
                     (json_int_t)(approvals.set ? approvals.value : 1), "enforcementLevel",
                     enforcement ? enforcement : "hard", "allowMachineIdentities", allow_machines);
    if (!list || !body || !add_approvers(list, approvers, "user", "username") ||
        !add_approvers(list, groups, "group", "name") ||
        json_object_set(body, "approvers", list) != 0) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8 (names under 320 bytes)");
        goto out;
    }
    status = cf_cli_request(&cli, "POST", "/v1/secret-approvals", NULL, body, &answer);
    if (status == CF_EXIT_OK)
        status = print_answer(&cli, json, answer, "approval", print_policies);
out:
    json_decref(answer);
    json_decref(list);
    json_decref(body);
    cf_cli_end(&cli);
    return status;
}

static const char policies_delete_usage[] =
    "usage: coffer approvals policies delete ID|NAME --projectId ID [options]\n"
    "\n"
    "Deletes an approval policy: writes to its place apply directly again. Open\n"
    "requests made under it stay, and can no longer be approved.\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_policies_delete(int argc, char **argv)
{
    const struct cf_cli_spec spec = {policies_delete_usage, CF_CLI_PROJECT, 1, 1, NULL, 0};
    struct cf_query_param q[] = {{"workspaceId", NULL}, {NULL, NULL}};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *answer = NULL;
    int status;

    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    q[0].value = cli.project_id;
    status = cf_cli_path(&path, "/v1/secret-approvals", cli.args[0], NULL, NULL, NULL);
    if (status == CF_EXIT_OK)
        status = cf_cli_request(&cli, "DELETE", path.data, q, NULL, &answer);
    if (status == CF_EXIT_OK) {
        if (cli.json)
            status = cf_cli_print_json(answer);
        else
            printf("deleted approval policy %s\n", cli.args[0]);
    }
out:
    json_decref(answer);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const struct cf_cli_sub policy_subcommands[] = {
    {"list", cmd_policies_list, "list a project's approval policies"},
    {"create", cmd_policies_create, "make a place need approval"},
    {"delete", cmd_policies_delete, "delete an approval policy"},
};

static int cmd_policies(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, policy_subcommands, CF_ARRAY_SIZE(policy_subcommands), NULL);
}

/* ---- requests ---- */

static const char *const request_headers[] = {"ID",        "STATUS", "ENV",       "PATH",
                                              "APPROVALS", "KEYS",   "COMMITTER", "POLICY"};
#define REQUEST_COLS (CF_ARRAY_SIZE(request_headers))

/* A change as the table shows it: its key. */
static void change_key(json_t *c, char *buf, size_t size)
{
    snprintf(buf, size, "%s", cf_cli_str(c, "secretKey"));
}

static enum cf_rc request_row(struct cf_table *table, json_t *r, void *ctx)
{
    (void)ctx;
    char approvals[64], keys[512];
    join_names(json_object_get(r, "commits"), change_key, keys, sizeof(keys));
    snprintf(approvals, sizeof(approvals), "%lld/%lld",
             (long long)json_integer_value(json_object_get(r, "approvals")),
             (long long)json_integer_value(json_object_get(r, "approvalsRequired")));
    const char *row[REQUEST_COLS] = {cf_cli_str(r, "id"),
                                     cf_cli_str(r, "status"),
                                     cf_cli_str(r, "environment"),
                                     cf_cli_str(r, "secretPath"),
                                     approvals,
                                     keys,
                                     cf_cli_str(r, "committer"),
                                     cf_cli_str(json_object_get(r, "policy"), "name")};
    return cf_table_add(table, row);
}

static int print_requests(json_t *list)
{
    return cf_cli_print_rows(list, REQUEST_COLS, request_headers, request_row, NULL);
}

/* One request in full, for people: the place, the approvals, each change and each review. */
static int print_request(json_t *list)
{
    json_t *r = json_array_get(list, 0), *policy = json_object_get(r, "policy"), *x;
    size_t i;
    printf("change request %s: %s, %lld of %lld approvals%s%s\n", cf_cli_str(r, "id"),
           cf_cli_str(r, "status"), (long long)json_integer_value(json_object_get(r, "approvals")),
           (long long)json_integer_value(json_object_get(r, "approvalsRequired")),
           json_is_true(json_object_get(r, "approved")) ? " (approved)" : "",
           json_is_true(json_object_get(r, "conflicts")) ? ", CONFLICTS with changes made since"
                                                         : "");
    printf("place:     %s:%s (project %s)\n", cf_cli_str(r, "environment"),
           cf_cli_str(r, "secretPath"), cf_cli_str(r, "workspace"));
    printf("policy:    %s (%s)\n", cf_cli_str(policy, "name"),
           cf_cli_str(policy, "enforcementLevel"));
    printf("committer: %s\n", cf_cli_str(r, "committer"));
    if (cf_cli_str(r, "mergedBy")[0])
        printf("merged by: %s\n", cf_cli_str(r, "mergedBy"));
    if (cf_cli_str(r, "bypassReason")[0])
        printf("bypassed:  %s\n", cf_cli_str(r, "bypassReason"));
    printf("changes (values hidden):\n");
    json_array_foreach(json_object_get(r, "commits"), i, x)
    {
        const char *op = cf_cli_str(x, "op");
        char base[24], now[24];
        printf("  %s %s",
               strcmp(op, "create") == 0   ? "+"
               : strcmp(op, "delete") == 0 ? "-"
                                           : "~",
               cf_cli_str(x, "secretKey"));
        if (cf_cli_str(x, "newSecretName")[0])
            printf(" -> %s", cf_cli_str(x, "newSecretName"));
        printf(" (%s%s; version %s, now %s%s)\n", op,
               json_is_true(json_object_get(x, "valueChanged")) ? ", value" : "",
               cf_cli_int_str(x, "baseVersion", base, sizeof(base)),
               cf_cli_int_str(x, "currentVersion", now, sizeof(now)),
               json_is_true(json_object_get(x, "conflict")) ? ": CONFLICT" : "");
    }
    json_t *reviews = json_object_get(r, "reviewers");
    if (json_array_size(reviews))
        printf("reviews:\n");
    json_array_foreach(reviews, i, x)
    {
        printf("  %s %s%s%s\n", cf_cli_str(x, "email"), cf_cli_str(x, "status"),
               cf_cli_str(x, "comment")[0] ? ": " : "", cf_cli_str(x, "comment"));
    }
    printf("url:       %s\n", cf_cli_str(r, "url"));
    return CF_EXIT_OK;
}

static const char requests_usage[] =
    "usage: coffer approvals requests --projectId ID [--status STATUS] [--plain] [--json]\n"
    "           [options]\n"
    "\n"
    "Lists a project's change requests that you may see (yours, those you approve,\n"
    "those in places you may read), newest first.\n"
    "\n"
    "options:\n"
    "  --status STATUS    open, merged, rejected or closed (default: all)\n"
    "  --plain            print only the ids, one a line (for REQUEST=$(...))\n" JSON_HELP
        CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_requests(int argc, char **argv)
{
    const char *status_filter = NULL;
    bool json = false, plain = false;
    const struct cf_opt opts[] = {{"status", CF_OPT_STRING, &status_filter},
                                  {"plain", CF_OPT_BOOL, &plain},
                                  {"json", CF_OPT_BOOL, &json}};
    const struct cf_cli_spec spec = {requests_usage, CF_CLI_PROJECT,     0, 0,
                                     opts,           CF_ARRAY_SIZE(opts)};
    struct cf_query_param q[] = {{"workspaceId", NULL}, {"status", NULL}, {NULL, NULL}};
    struct cf_cli cli;
    json_t *answer = NULL;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    q[0].value = cli.project_id;
    if (status_filter)
        q[1].value = status_filter;
    else
        q[1].name = NULL;
    status = cf_cli_request(&cli, "GET", REQUESTS, q, NULL, &answer);
    if (status == CF_EXIT_OK && plain && !cli.json && !json) {
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(answer, "approvals"), i, r)
        {
            printf("%s\n", cf_cli_str(r, "id"));
        }
    } else if (status == CF_EXIT_OK) {
        status = print_answer(&cli, json, answer, "approvals", print_requests);
    }
out:
    json_decref(answer);
    cf_cli_end(&cli);
    return status;
}

/* method on REQUESTS/{ID}[/suffix] with body (may be NULL), the answer's request printed in full
 * (print_request) or as JSON. */
static int request_call(int argc, char **argv, const char *usage, const struct cf_opt *extra,
                        size_t nextra, const char *method, const char *suffix,
                        json_t *(*make_body)(const struct cf_cli *cli, void *ctx), void *ctx,
                        bool *json)
{
    const struct cf_cli_spec spec = {usage, 0, 1, 1, extra, nextra};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *body = NULL, *answer = NULL;
    int status;

    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (make_body) {
        body = make_body(&cli, ctx);
        if (!body) {
            status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
            goto out;
        }
    }
    status = cf_cli_path(&path, REQUESTS, cli.args[0], suffix, NULL, NULL);
    if (status == CF_EXIT_OK)
        status = cf_cli_request(&cli, method, path.data, NULL, body, &answer);
    if (status == CF_EXIT_OK)
        status = print_answer(&cli, *json, answer, "approval", print_request);
out:
    json_decref(answer);
    json_decref(body);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const char show_usage[] = "usage: coffer approvals show ID [--json] [options]\n"
                                 "\n"
                                 "Shows a change request: its place, approvals, the keys it adds,\n"
                                 "changes and deletes (values hidden), reviews and conflicts.\n"
                                 "\n"
                                 "options:\n" JSON_HELP CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_show(int argc, char **argv)
{
    bool json = false;
    const struct cf_opt opts[] = {{"json", CF_OPT_BOOL, &json}};
    return request_call(argc, argv, show_usage, opts, CF_ARRAY_SIZE(opts), "GET", NULL, NULL, NULL,
                        &json);
}

struct review_args {
    const char *decision;
    const char *comment;
};

static json_t *review_body(const struct cf_cli *cli, void *ctx)
{
    (void)cli;
    const struct review_args *r = ctx;
    return json_pack("{s:s, s:s}", "status", r->decision, "comment", r->comment ? r->comment : "");
}

static const char approve_usage[] =
    "usage: coffer approvals approve ID [--comment TEXT] [--json] [options]\n"
    "\n"
    "Approves a change request, as an approver of its policy. Its author cannot.\n"
    "\n"
    "options:\n"
    "  --comment TEXT     why (recorded in the request and the audit log)\n" JSON_HELP
        CF_CLI_COMMON_HELP EXIT_HELP;

static const char reject_usage[] =
    "usage: coffer approvals reject ID [--comment TEXT] [--json] [options]\n"
    "\n"
    "Rejects a change request, as an approver of its policy: one rejection closes it.\n"
    "\n"
    "options:\n"
    "  --comment TEXT     why (recorded in the request and the audit log)\n" JSON_HELP
        CF_CLI_COMMON_HELP EXIT_HELP;

static int review(int argc, char **argv, const char *usage, const char *decision)
{
    struct review_args args = {decision, NULL};
    bool json = false;
    const struct cf_opt opts[] = {{"comment", CF_OPT_STRING, &args.comment},
                                  {"json", CF_OPT_BOOL, &json}};
    return request_call(argc, argv, usage, opts, CF_ARRAY_SIZE(opts), "POST", "/review",
                        review_body, &args, &json);
}

static int cmd_approve(int argc, char **argv)
{
    return review(argc, argv, approve_usage, "approved");
}

static int cmd_reject(int argc, char **argv)
{
    return review(argc, argv, reject_usage, "rejected");
}

static json_t *merge_body(const struct cf_cli *cli, void *ctx)
{
    (void)cli;
    const char *const *reason = ctx;
    return *reason ? json_pack("{s:s}", "bypassReason", *reason) : json_object();
}

static const char merge_usage[] =
    "usage: coffer approvals merge ID [--bypass-reason TEXT] [--json] [options]\n"
    "\n"
    "Applies an approved change request (its author or an approver), all changes at\n"
    "once. Refused, the request left open, when a key changed since it was made.\n"
    "\n"
    "options:\n"
    "  --bypass-reason TEXT  merge without the approvals (org owners, soft policies\n"
    "                        only); the reason is audited\n" JSON_HELP CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_merge(int argc, char **argv)
{
    const char *reason = NULL;
    bool json = false;
    const struct cf_opt opts[] = {{"bypass-reason", CF_OPT_STRING, &reason},
                                  {"json", CF_OPT_BOOL, &json}};
    return request_call(argc, argv, merge_usage, opts, CF_ARRAY_SIZE(opts), "POST", "/merge",
                        merge_body, &reason, &json);
}

static json_t *close_body(const struct cf_cli *cli, void *ctx)
{
    (void)cli;
    (void)ctx;
    return json_pack("{s:s}", "status", "close");
}

static const char close_usage[] = "usage: coffer approvals close ID [--json] [options]\n"
                                  "\n"
                                  "Withdraws a change request (its author or a project admin).\n"
                                  "\n"
                                  "options:\n" JSON_HELP CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_close(int argc, char **argv)
{
    bool json = false;
    const struct cf_opt opts[] = {{"json", CF_OPT_BOOL, &json}};
    return request_call(argc, argv, close_usage, opts, CF_ARRAY_SIZE(opts), "POST", "/status",
                        close_body, NULL, &json);
}

static const struct cf_cli_sub subcommands[] = {
    {"policies", cmd_policies, "list, create and delete approval policies"},
    {"requests", cmd_requests, "list a project's change requests"},
    {"show", cmd_show, "show a change request (values hidden)"},
    {"approve", cmd_approve, "approve a change request"},
    {"reject", cmd_reject, "reject a change request"},
    {"merge", cmd_merge, "apply an approved change request"},
    {"close", cmd_close, "withdraw a change request"},
};

int cf_cmd_approvals(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, subcommands, CF_ARRAY_SIZE(subcommands), NULL);
}
