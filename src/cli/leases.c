/* `coffer leases`: leases of dynamic secrets through the API (docs/dynamic-secrets.md): create one
 * (the credential is printed once, never stored), renew, revoke, list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/wipemem.h"
#include "util/banned.h"

#define PREFIX "/v1/dynamic-secrets/leases"

static const char *const headers[] = {"ID",      "DYNAMIC SECRET", "STATUS",
                                      "EXPIRES", "CREDENTIAL",     "OWNER"};

static enum cf_rc lease_row(struct cf_table *table, json_t *l, void *ctx)
{
    (void)ctx;
    const char *row[] = {cf_cli_str(l, "id"),
                         cf_cli_str(l, "dynamicSecretName"),
                         cf_cli_str(l, "status"),
                         cf_cli_str(l, "expireAt"),
                         cf_cli_str(l, "externalEntityId"),
                         cf_cli_str(json_object_get(l, "actor"), "name")};
    return cf_table_add(table, row);
}

static int print_leases(json_t *list)
{
    return cf_cli_print_rows(list, CF_ARRAY_SIZE(headers), headers, lease_row, NULL);
}

static const char create_usage[] =
    "usage: coffer leases create NAME [--ttl TTL] [options]\n"
    "\n"
    "Creates a lease of dynamic secret NAME in a folder and prints its credential once, as\n"
    "NAME=value lines (DB_USERNAME, DB_PASSWORD, ...), after a comment line with the\n"
    "lease's id and end; with --output json, the server's whole answer. The credential is\n"
    "not kept anywhere: revoke it with `coffer leases revoke ID` when done, or let it end.\n"
    "\n"
    "options:\n" CF_CLI_PROJECT_HELP CF_CLI_ENV_HELP "  --path PATH        the folder (default /)\n"
    "  --ttl TTL          how long the lease lasts, e.g. 15m, 1h (default: the dynamic\n"
    "                     secret's default TTL)\n" CF_CLI_COMMON_HELP;

static int cmd_create(int argc, char **argv)
{
    const char *ttl = NULL;
    const struct cf_opt opts[] = {{"ttl", CF_OPT_STRING, &ttl}};
    const struct cf_cli_spec spec = {
        create_usage, CF_CLI_PROJECT | CF_CLI_ENV | CF_CLI_PATH, 1, 1, opts, 1};
    struct cf_cli cli;
    json_t *body = NULL, *answer = NULL;
    struct cf_buf out;
    int status;
    cf_buf_init(&out, 1024 * 1024);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    body = json_pack("{s:s, s:s, s:s, s:s}", "projectSlug", cli.project_id, "environmentSlug",
                     cli.env, "path", cli.path, "dynamicSecretName", cli.args[0]);
    if (!body) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    if (ttl)
        json_object_set_new(body, "ttl", json_string(ttl));
    status = cf_cli_request(&cli, "POST", PREFIX, NULL, body, &answer);
    if (status != CF_EXIT_OK)
        goto out;
    if (cli.json) {
        char *text = json_dumps(answer, JSON_INDENT(2));
        status = text && cf_buf_puts(&out, text) == CF_OK && cf_buf_puts(&out, "\n") == CF_OK
                     ? CF_EXIT_OK
                     : cf_cli_fail("out of memory");
        cf_json_free_text(text);
    } else {
        json_t *lease = json_object_get(answer, "lease");
        const char *key;
        json_t *value;
        enum cf_rc rc = cf_buf_printf(&out, "# lease %s of %s, ends %s\n", cf_cli_str(lease, "id"),
                                      cli.args[0], cf_cli_str(lease, "expireAt"));
        json_object_foreach(json_object_get(answer, "data"), key, value)
        {
            if (rc == CF_OK && json_is_string(value))
                rc = cf_buf_printf(&out, "%s=%s\n", key, json_string_value(value));
        }
        status = rc == CF_OK ? CF_EXIT_OK : cf_cli_fail("out of memory");
    }
    if (status == CF_EXIT_OK)
        status = cf_cli_write_secret(out.data ? out.data : "", out.len);
out:
    cf_buf_release_wipe(&out);
    json_decref(body);
    json_decref(answer);
    cf_cli_end(&cli);
    return status;
}

/* method on /v1/dynamic-secrets/leases/ID[suffix] with body, printing the lease. */
static int one_lease(int argc, char **argv, const char *usage, const char *method,
                     const char *suffix, bool with_ttl)
{
    const char *ttl = NULL;
    const struct cf_opt opts[] = {{"ttl", CF_OPT_STRING, &ttl}};
    const struct cf_cli_spec spec = {usage, 0, 1, 1, opts, with_ttl ? 1 : 0};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *body = NULL, *answer = NULL;
    int status;
    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (ttl)
        body = json_pack("{s:s}", "ttl", ttl);
    status = cf_cli_path(&path, PREFIX, cli.args[0], suffix, NULL, NULL);
    if (status == CF_EXIT_OK)
        status = cf_cli_request(&cli, method, path.data, NULL, body, &answer);
    if (status != CF_EXIT_OK)
        goto out;
    if (cli.json) {
        status = cf_cli_print_json(answer);
    } else {
        json_t *list = json_pack("[O]", json_object_get(answer, "lease"));
        status = print_leases(list);
        json_decref(list);
    }
out:
    json_decref(body);
    json_decref(answer);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const char get_usage[] = "usage: coffer leases get ID [options]\n"
                                "\n"
                                "Shows a lease (never its credential).\n"
                                "\n"
                                "options:\n" CF_CLI_COMMON_HELP;

static int cmd_get(int argc, char **argv)
{
    return one_lease(argc, argv, get_usage, "GET", NULL, false);
}

static const char renew_usage[] =
    "usage: coffer leases renew ID [--ttl TTL] [options]\n"
    "\n"
    "Moves the lease's end to TTL from now (default: the dynamic secret's default TTL),\n"
    "at the target too (PostgreSQL: the role's VALID UNTIL). A lease never lasts past its\n"
    "creation plus the dynamic secret's maximum TTL.\n"
    "\n"
    "options:\n"
    "  --ttl TTL          e.g. 15m, 1h\n" CF_CLI_COMMON_HELP;

static int cmd_renew(int argc, char **argv)
{
    return one_lease(argc, argv, renew_usage, "POST", "/renew", true);
}

static const char revoke_usage[] =
    "usage: coffer leases revoke ID [options]\n"
    "\n"
    "Revokes the lease now (PostgreSQL: its sessions end and its role is dropped). When\n"
    "the target cannot be reached the command fails and the server retries the\n"
    "revocation with backoff.\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP;

static int cmd_revoke(int argc, char **argv)
{
    return one_lease(argc, argv, revoke_usage, "DELETE", NULL, false);
}

static const char list_usage[] =
    "usage: coffer leases list [--all] [--include-ended] [options]\n"
    "       coffer leases list --name NAME [options]\n"
    "\n"
    "Lists your active leases; --all every lease (the admin and org admins); --name the\n"
    "leases of one dynamic secret of a folder (--projectId, --env, --path).\n"
    "\n"
    "options:\n"
    "  --all              every lease, not only yours\n"
    "  --include-ended    revoked leases too\n"
    "  --name NAME        the leases of dynamic secret NAME\n" CF_CLI_PROJECT_HELP CF_CLI_ENV_HELP
    "  --path PATH        the folder of --name (default /)\n" CF_CLI_COMMON_HELP;

static int cmd_list(int argc, char **argv)
{
    bool all = false, ended = false;
    const char *name = NULL;
    const struct cf_opt opts[] = {{"all", CF_OPT_BOOL, &all},
                                  {"include-ended", CF_OPT_BOOL, &ended},
                                  {"name", CF_OPT_STRING, &name}};
    /* the place is read only with --name: a project is not required otherwise */
    bool named = false;
    for (int i = 1; i < argc; i++)
        named |= strcmp(argv[i], "--name") == 0 || strncmp(argv[i], "--name=", 7) == 0;
    const struct cf_cli_spec spec = {
        list_usage,         named ? CF_CLI_PROJECT | CF_CLI_ENV | CF_CLI_PATH : 0, 0, 0, opts,
        CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    struct cf_buf path;
    int status;
    cf_buf_init(&path, 0);
    if (cf_cli_begin(&cli, argc, argv, &spec, &status)) {
        if (name) {
            const struct cf_query_param q[] = {{"projectSlug", cli.project_id},
                                               {"environmentSlug", cli.env},
                                               {"path", cli.path},
                                               {"includeEnded", ended ? "true" : "false"},
                                               {NULL, NULL}};
            status = cf_cli_path(&path, "/v1/dynamic-secrets", name, "/leases", NULL, NULL);
            if (status == CF_EXIT_OK)
                status = cf_cli_request_list(&cli, path.data, q, "leases", print_leases);
        } else {
            const struct cf_query_param q[] = {{"all", all ? "true" : "false"},
                                               {"includeEnded", ended ? "true" : "false"},
                                               {NULL, NULL}};
            status = cf_cli_request_list(&cli, PREFIX, q, "leases", print_leases);
        }
    }
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const struct cf_cli_sub subcommands[] = {
    {"create", cmd_create, "create a lease and print its credential once"},
    {"get", cmd_get, "show a lease"},
    {"list", cmd_list, "list your leases (--all: every lease)"},
    {"renew", cmd_renew, "move a lease's end"},
    {"revoke", cmd_revoke, "revoke a lease now"},
};

int cf_cmd_leases(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, subcommands, CF_ARRAY_SIZE(subcommands), NULL);
}
