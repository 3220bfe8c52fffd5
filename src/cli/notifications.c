/* `coffer notifications`: expiry notices through the admin API (docs/notifications.md): channels,
 * a project's thresholds, a scan-and-deliver pass now, and the delivery log. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/banned.h"
#include "util/str.h"

#define PREFIX "/v1/notifications"

static const char *const channel_headers[] = {"ID", "TYPE", "NAME", "PROJECT", "TARGET", "SIGNED"};

static enum cf_rc channel_row(struct cf_table *table, json_t *c, void *ctx)
{
    (void)ctx;
    const char *target = cf_cli_str(c, "url");
    const char *row[] = {cf_cli_str(c, "id"),
                         cf_cli_str(c, "type"),
                         cf_cli_str(c, "name"),
                         json_is_string(json_object_get(c, "workspaceId"))
                             ? cf_cli_str(c, "workspaceId")
                             : "(server-wide)",
                         *target ? target : cf_cli_str(c, "recipients"),
                         json_is_true(json_object_get(c, "signed")) ? "yes" : "no"};
    return cf_table_add(table, row);
}

static int print_channels(json_t *list)
{
    return cf_cli_print_rows(list, 6, channel_headers, channel_row, NULL);
}

static const char add_usage[] =
    "usage: coffer notifications channels add --type webhook|slack|teams|email\n"
    "           (--url URL | --recipients A,B) [--name NAME] [--projectId ID]\n"
    "           [--signing-secret-file FILE] [options]\n"
    "\n"
    "Adds a channel for expiry notices: a project's (its secrets only) or, without\n"
    "--projectId, server-wide (everything, identities' client secrets included).\n"
    "A webhook's payloads are signed (X-Coffer-Signature, HMAC-SHA256): without\n"
    "--signing-secret-file the server makes a secret and this prints it once.\n"
    "\n"
    "options:\n"
    "  --type T           webhook (generic JSON), slack, teams or email\n"
    "  --url URL          https (plain http only to loopback)\n"
    "  --recipients A,B   e-mail addresses (type email; the server's --smtp-url sends)\n"
    "  --name NAME        a name for lists and logs\n"
    "  --projectId ID     the project (id or slug)\n"
    "  --signing-secret-file FILE  the webhook's signing secret, from a file\n" CF_CLI_COMMON_HELP;

static int cmd_add(int argc, char **argv)
{
    const char *type = NULL, *url = NULL, *recipients = NULL, *name = NULL, *project = NULL;
    const char *secret_file = NULL;
    const struct cf_opt opts[] = {
        {"type", CF_OPT_STRING, &type},
        {"url", CF_OPT_STRING, &url},
        {"recipients", CF_OPT_STRING, &recipients},
        {"name", CF_OPT_STRING, &name},
        {"projectId", CF_OPT_STRING, &project},
        {"signing-secret-file", CF_OPT_STRING, &secret_file},
    };
    const struct cf_cli_spec spec = {add_usage, 0, 0, 0, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    json_t *body = NULL, *answer = NULL;
    struct cf_buf secret;
    int status;

    cf_buf_init(&secret, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (!type) {
        status = cf_cli_usage_error(&cli, "--type is required (webhook, slack, teams or email)");
        goto out;
    }
    if (secret_file) {
        FILE *f = fopen(secret_file, "rb");
        char chunk[256];
        size_t n;
        if (!f) {
            status = cf_cli_fail("--signing-secret-file: cannot open %s", secret_file);
            goto out;
        }
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && secret.len < 4096)
            cf_buf_append(&secret, chunk, n);
        fclose(f);
        while (secret.len &&
               (secret.data[secret.len - 1] == '\n' || secret.data[secret.len - 1] == '\r'))
            secret.data[--secret.len] = '\0';
    }
    body = json_pack("{s:s}", "type", type);
    const struct {
        const char *value, *member;
    } fields[] = {{url, "url"},
                  {recipients, "recipients"},
                  {name, "name"},
                  {project, "workspaceId"},
                  {secret_file ? (secret.data ? secret.data : "") : NULL, "signingSecret"}};
    for (size_t i = 0; body && i < CF_ARRAY_SIZE(fields); i++)
        if (fields[i].value &&
            json_object_set_new(body, fields[i].member, json_string(fields[i].value)) != 0) {
            status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
            goto out;
        }
    status = cf_cli_request(&cli, "POST", PREFIX "/channels", NULL, body, &answer);
    if (status != CF_EXIT_OK)
        goto out;
    if (cli.json) {
        status = cf_cli_print_json(answer);
    } else {
        json_t *one = json_pack("[O]", json_object_get(answer, "channel"));
        status = print_channels(one);
        json_decref(one);
        const char *generated = cf_cli_str(answer, "signingSecret");
        if (*generated)
            fprintf(stderr,
                    "signing secret (shown once; the receiver verifies X-Coffer-Signature "
                    "with it):\n%s\n",
                    generated);
    }
out:
    if (body) {
        json_t *s = json_object_get(body, "signingSecret");
        if (json_is_string(s))
            sodium_memzero((char *)json_string_value(s), json_string_length(s));
    }
    json_decref(body);
    json_decref(answer);
    cf_buf_release_wipe(&secret);
    cf_cli_end(&cli);
    return status;
}

static const char list_usage[] =
    "usage: coffer notifications channels list [--projectId ID] "
    "[options]\n"
    "\n"
    "Lists notification channels (one project's, or all).\n"
    "\n"
    "options:\n"
    "  --projectId ID     one project (id or slug)\n" CF_CLI_COMMON_HELP;

static int cmd_list(int argc, char **argv)
{
    const char *project = NULL;
    const struct cf_opt opts[] = {{"projectId", CF_OPT_STRING, &project}};
    const struct cf_cli_spec spec = {list_usage, 0, 0, 0, opts, 1};
    struct cf_cli cli;
    int status;
    if (cf_cli_begin(&cli, argc, argv, &spec, &status)) {
        const struct cf_query_param q[] = {{"workspaceId", project}, {NULL, NULL}};
        status = cf_cli_request_list(&cli, PREFIX "/channels", q, "channels", print_channels);
    }
    cf_cli_end(&cli);
    return status;
}

static const char remove_usage[] = "usage: coffer notifications channels remove ID [options]\n"
                                   "\n"
                                   "Removes a channel and its delivery log.\n"
                                   "\n"
                                   "options:\n" CF_CLI_COMMON_HELP;

/* Parses a `channels <sub> ID` command line into cli and sends method to the channel's path plus
 * suffix (NULL: none); *answer is the reply (json_decref) or NULL. The caller ends cli
 * (cf_cli_end) in any case. Returns the exit status. */
static int channel_request(struct cf_cli *cli, int argc, char **argv, const char *usage,
                           const char *method, const char *suffix, json_t **answer)
{
    const struct cf_cli_spec spec = {usage, 0, 1, 1, NULL, 0};
    struct cf_buf path;
    int status;
    *answer = NULL;
    cf_buf_init(&path, 0);
    if (cf_cli_begin(cli, argc, argv, &spec, &status)) {
        status = cf_cli_path(&path, PREFIX "/channels", cli->args[0], suffix, NULL, NULL);
        if (status == CF_EXIT_OK)
            status = cf_cli_request(cli, method, path.data, NULL, NULL, answer);
    }
    cf_buf_release(&path);
    return status;
}

static int cmd_remove(int argc, char **argv)
{
    struct cf_cli cli;
    json_t *answer = NULL;
    int status = channel_request(&cli, argc, argv, remove_usage, "DELETE", NULL, &answer);
    if (answer)
        printf("removed channel %s\n", cli.args[0]);
    json_decref(answer);
    cf_cli_end(&cli);
    return status;
}

static const char test_usage[] =
    "usage: coffer notifications channels test ID [options]\n"
    "\n"
    "Sends one test message to the channel now (signed like a notice;\n"
    "not kept in the delivery log). Exits 1 when the channel refuses it.\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP;

static int cmd_test(int argc, char **argv)
{
    struct cf_cli cli;
    json_t *answer = NULL;
    int status = channel_request(&cli, argc, argv, test_usage, "POST", "/test", &answer);
    if (answer && cli.json) {
        status = cf_cli_print_json(answer);
        if (status == CF_EXIT_OK && !json_is_true(json_object_get(answer, "delivered")))
            status = CF_EXIT_FAILURE;
    } else if (answer && json_is_true(json_object_get(answer, "delivered"))) {
        printf("test message delivered to channel %s\n", cli.args[0]);
    } else if (answer) {
        status = cf_cli_fail("channel '%s' refused the test message: %s", cli.args[0],
                             cf_cli_str(answer, "error"));
    }
    json_decref(answer);
    cf_cli_end(&cli);
    return status;
}

static const struct cf_cli_sub channel_subs[] = {
    {"add", cmd_add, "add a channel"},
    {"list", cmd_list, "list channels"},
    {"remove", cmd_remove, "remove a channel"},
    {"test", cmd_test, "send a test message to a channel"},
};

static int cmd_channels(int argc, char **argv)
{
    char name[] = "notifications channels";
    argv[0] = name;
    return cf_cli_dispatch(argc, argv, channel_subs, CF_ARRAY_SIZE(channel_subs), NULL);
}

static const char run_usage[] = "usage: coffer notifications run [options]\n"
                                "\n"
                                "Scans for expiry now and delivers what is due (the server also\n"
                                "does it every --notify-interval).\n"
                                "\n"
                                "options:\n" CF_CLI_COMMON_HELP;

static int cmd_run(int argc, char **argv)
{
    const struct cf_cli_spec spec = {run_usage, 0, 0, 0, NULL, 0};
    struct cf_cli cli;
    json_t *answer = NULL;
    int status;
    if (cf_cli_begin(&cli, argc, argv, &spec, &status))
        status = cf_cli_request(&cli, "POST", PREFIX "/run", NULL, NULL, &answer);
    if (answer) {
        char a[24], b[24], c[24], d[24], e[24];
        if (cli.json)
            status = cf_cli_print_json(answer);
        else
            printf("%s items, %s new notices, %s delivered, %s retrying, %s failed\n",
                   cf_cli_int_str(answer, "items", a, sizeof(a)),
                   cf_cli_int_str(answer, "created", b, sizeof(b)),
                   cf_cli_int_str(answer, "delivered", c, sizeof(c)),
                   cf_cli_int_str(answer, "retrying", d, sizeof(d)),
                   cf_cli_int_str(answer, "failed", e, sizeof(e)));
    }
    json_decref(answer);
    cf_cli_end(&cli);
    return status;
}

static const char *const log_headers[] = {"CREATED", "STATUS",  "ATTEMPTS",  "THRESHOLD",
                                          "CHANNEL", "MESSAGE", "LAST ERROR"};

static enum cf_rc log_row(struct cf_table *table, json_t *n, void *ctx)
{
    char attempts[24];
    (void)ctx;
    const char *row[] = {cf_cli_str(n, "createdAt"),
                         cf_cli_str(n, "status"),
                         cf_cli_int_str(n, "attempts", attempts, sizeof(attempts)),
                         cf_cli_str(n, "threshold"),
                         cf_cli_str(n, "channelId"),
                         cf_cli_str(n, "message"),
                         cf_cli_str(n, "lastError")};
    return cf_table_add(table, row);
}

static int print_log(json_t *list)
{
    return cf_cli_print_rows(list, 7, log_headers, log_row, NULL);
}

static const char log_usage[] =
    "usage: coffer notifications log [--projectId ID] [--status S] [--limit N] [options]\n"
    "\n"
    "The delivery log, newest first: each notice, its state (pending, delivered,\n"
    "failed), attempts and last error.\n"
    "\n"
    "options:\n"
    "  --projectId ID     one project's channels\n"
    "  --status S         pending, delivered or failed\n"
    "  --limit N          at most N (default 100)\n" CF_CLI_COMMON_HELP;

static int cmd_log(int argc, char **argv)
{
    const char *project = NULL, *state = NULL, *limit = NULL;
    const struct cf_opt opts[] = {{"projectId", CF_OPT_STRING, &project},
                                  {"status", CF_OPT_STRING, &state},
                                  {"limit", CF_OPT_STRING, &limit}};
    const struct cf_cli_spec spec = {log_usage, 0, 0, 0, opts, 3};
    struct cf_cli cli;
    int status;
    if (cf_cli_begin(&cli, argc, argv, &spec, &status)) {
        const struct cf_query_param q[] = {
            {"workspaceId", project}, {"status", state}, {"limit", limit}, {NULL, NULL}};
        status = cf_cli_request_list(&cli, PREFIX "/deliveries", q, "deliveries", print_log);
    }
    cf_cli_end(&cli);
    return status;
}

static const struct cf_cli_sub subcommands[] = {
    {"channels", cmd_channels, "add, list, remove or test notification channels"},
    {"run", cmd_run, "scan for expiry and deliver due notices now"},
    {"log", cmd_log, "the delivery log"},
};

int cf_cmd_notifications(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, subcommands, CF_ARRAY_SIZE(subcommands), NULL);
}
