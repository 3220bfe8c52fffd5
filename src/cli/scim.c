/* `coffer scim token create|list|revoke`: the bearer tokens of SCIM clients (docs/users.md "SCIM
 * provisioning"), through /api/v1/scim/tokens. Owners only; a token is printed once. */
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

static const char *const token_headers[] = {"ID", "NAME", "REVOKED", "CREATED BY", "LAST USED"};
#define TOKEN_COLS (CF_ARRAY_SIZE(token_headers))

static enum cf_rc token_row(struct cf_table *table, json_t *t, void *ctx)
{
    (void)ctx;
    const char *row[TOKEN_COLS] = {cf_cli_str(t, "id"), cf_cli_str(t, "name"),
                                   json_is_true(json_object_get(t, "revoked")) ? "yes" : "no",
                                   cf_cli_str(t, "createdBy"), cf_cli_str(t, "lastUsedAt")};
    return cf_table_add(table, row);
}

static int print_tokens(json_t *tokens)
{
    return cf_cli_print_rows(tokens, TOKEN_COLS, token_headers, token_row, NULL);
}

static const char create_usage[] =
    "usage: coffer scim token create NAME [options]\n"
    "\n"
    "Makes a SCIM token for an identity provider's provisioning (Entra ID: the\n"
    "enterprise application's Provisioning > Secret Token) and prints it once. It is\n"
    "accepted by /scim/v2 only. Owners only.\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_create(int argc, char **argv)
{
    const struct cf_cli_spec spec = {create_usage, 0, 1, 1, NULL, 0};
    struct cf_cli cli;
    json_t *body = NULL, *answer = NULL;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    body = json_pack("{s:s}", "name", cli.args[0]);
    if (!body) {
        status = cf_cli_usage_error(&cli, "the name must be valid UTF-8");
        goto out;
    }
    status = cf_cli_request(&cli, "POST", "/v1/scim/tokens", NULL, body, &answer);
    if (status != CF_EXIT_OK)
        goto out;
    if (cli.json)
        status = cf_cli_print_json(answer);
    else
        printf("%s\n", cf_cli_str(answer, "token"));
out:
    json_decref(answer);
    json_decref(body);
    cf_cli_end(&cli);
    return status;
}

static const char list_usage[] = "usage: coffer scim token list [options]\n"
                                 "\n"
                                 "Lists the SCIM tokens (never the tokens themselves).\n"
                                 "\n"
                                 "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_list(int argc, char **argv)
{
    const struct cf_cli_spec spec = {list_usage, 0, 0, 0, NULL, 0};
    struct cf_cli cli;
    int status;

    if (cf_cli_begin(&cli, argc, argv, &spec, &status))
        status = cf_cli_request_list(&cli, "/v1/scim/tokens", NULL, "scimTokens", print_tokens);
    cf_cli_end(&cli);
    return status;
}

static const char revoke_usage[] = "usage: coffer scim token revoke ID [options]\n"
                                   "\n"
                                   "Revokes a SCIM token: its next request gets 401.\n"
                                   "\n"
                                   "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_revoke(int argc, char **argv)
{
    const struct cf_cli_spec spec = {revoke_usage, 0, 1, 1, NULL, 0};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *answer = NULL;
    int status;

    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    status = cf_cli_path(&path, "/v1/scim/tokens", cli.args[0], NULL, NULL, NULL);
    if (status == CF_EXIT_OK)
        status = cf_cli_request(&cli, "DELETE", path.data, NULL, NULL, &answer);
    if (status == CF_EXIT_OK && cli.json)
        status = cf_cli_print_json(answer);
    else if (status == CF_EXIT_OK)
        printf("revoked SCIM token %s\n", cli.args[0]);
out:
    json_decref(answer);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const struct cf_cli_sub token_subcommands[] = {
    {"create", cmd_create, "make a SCIM token (printed once)"},
    {"list", cmd_list, "list SCIM tokens"},
    {"revoke", cmd_revoke, "revoke a SCIM token"},
};

static int cmd_token(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, token_subcommands, CF_ARRAY_SIZE(token_subcommands), NULL);
}

static const struct cf_cli_sub subcommands[] = {
    {"token", cmd_token, "SCIM tokens: create, list, revoke"},
};

int cf_cmd_scim(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, subcommands, CF_ARRAY_SIZE(subcommands), NULL);
}
