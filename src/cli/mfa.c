/* `coffer users mfa`: two-factor sign-in of the signed-in user (docs/users.md "Two-factor
 * sign-in"): enrol an authenticator app, confirm it, see the status, replace the recovery codes,
 * turn it off; administrators see and reset other users'. The TOTP secret and the recovery codes
 * are written with write(2) so that no stdio buffer keeps them, and wiped with the answer. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/str.h"
#include "util/banned.h"

#define EXIT_HELP                                                                                  \
    "\nexit status: 0 done, 1 the server refused (its message is printed) or could not be\n"       \
    "reached, 2 usage error.\n"

#define MFA_PATH "/v1/users/me/mfa"

static const char *const status_headers[] = {"TOTP", "RECOVERY CODES LEFT"};

static enum cf_rc status_row(struct cf_table *table, json_t *mfa, void *ctx)
{
    (void)ctx;
    char left[24];
    const char *totp = json_is_true(json_object_get(mfa, "totpEnabled"))   ? "enabled"
                       : json_is_true(json_object_get(mfa, "totpPending")) ? "pending confirmation"
                                                                           : "off";
    snprintf(left, sizeof(left), "%lld",
             (long long)json_integer_value(json_object_get(mfa, "recoveryCodesRemaining")));
    const char *row[] = {totp, left};
    return cf_table_add(table, row);
}

static int print_status(json_t *list)
{
    return cf_cli_print_rows(list, CF_ARRAY_SIZE(status_headers), status_headers, status_row, NULL);
}

/* Prints the recovery codes of answer (one per line on stdout, the advice on stderr), else the
 * status. Returns the exit status. */
static int print_codes(const struct cf_cli *cli, json_t *answer)
{
    json_t *codes = json_object_get(answer, "recoveryCodes"), *code;
    struct cf_buf text;
    size_t i;
    int status = CF_EXIT_OK;

    if (cli->json || !json_is_array(codes))
        return cf_cli_print_member(cli, answer, "mfa", print_status);
    cf_buf_init(&text, 0);
    json_array_foreach(
        codes, i, code) if (cf_buf_printf(&text, "%s\n",
                                          json_string_value(code) ? json_string_value(code) : "") !=
                            CF_OK) status = cf_cli_fail("out of memory");
    if (status == CF_EXIT_OK) {
        fprintf(stderr, "coffer: two-factor sign-in is on. Recovery codes (each works once, in "
                        "place of a code; shown only now, keep them apart from the "
                        "authenticator):\n");
        status = cf_cli_write_secret(text.data ? text.data : "", text.len);
    }
    cf_buf_release_wipe(&text);
    return status;
}

/* POSTs {code} (or an empty body) to path and prints the answer with print_codes. */
static int post_code(struct cf_cli *cli, const char *path, const char *code)
{
    json_t *body = code ? json_pack("{s:s}", "code", code) : json_object(), *answer = NULL;
    int status;

    if (!body)
        return cf_cli_usage_error(cli, "the code must be valid UTF-8");
    status = cf_cli_request(cli, "POST", path, NULL, body, &answer);
    if (status == CF_EXIT_OK)
        status = print_codes(cli, answer);
    json_decref(answer);
    json_decref(body);
    return status;
}

/* Asks for a code on the terminal into out (echo on: a code works once). False when there is no
 * terminal or nothing was typed. */
static bool ask_code(char *out, size_t size)
{
    if (!isatty(STDIN_FILENO))
        return false;
    fprintf(stderr, "Code shown by the authenticator app: ");
    fflush(stderr);
    if (!fgets(out, (int)size, stdin))
        return false;
    out[strcspn(out, "\r\n")] = '\0';
    return out[0] != '\0';
}

static const char enable_usage[] =
    "usage: coffer users mfa enable [--code CODE] [options]\n"
    "\n"
    "Begins two-factor sign-in for the signed-in user: prints a TOTP secret and its\n"
    "otpauth:// URI to add to an authenticator app (SHA-1, 6 digits, 30 seconds), then\n"
    "asks for one of its codes on the terminal (or takes --code) and, when it is right,\n"
    "turns two-factor sign-in on and prints ten recovery codes. Without a terminal and\n"
    "--code, confirm later with `coffer users mfa verify CODE`.\n"
    "\n"
    "options:\n"
    "  --code CODE        a code of the authenticator, to confirm at once\n" CF_CLI_COMMON_HELP
        EXIT_HELP;

static int cmd_enable(int argc, char **argv)
{
    const char *code = NULL;
    const struct cf_opt opts[] = {{"code", CF_OPT_STRING, &code}};
    const struct cf_cli_spec spec = {enable_usage, 0, 0, 0, opts, CF_ARRAY_SIZE(opts)};
    char typed[64];
    struct cf_buf text;
    struct cf_cli cli;
    json_t *body = NULL, *answer = NULL;
    int status;

    typed[0] = '\0';
    cf_buf_init(&text, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    body = json_object();
    status = cf_cli_request(&cli, "POST", MFA_PATH "/totp", NULL, body, &answer);
    if (status != CF_EXIT_OK)
        goto out;
    if (cli.json) {
        status = cf_cli_print_json(answer);
    } else if (cf_buf_printf(&text, "secret:      %s\notpauth URI: %s\n",
                             cf_cli_str(answer, "secret"),
                             cf_cli_str(answer, "otpauthUri")) != CF_OK) {
        status = cf_cli_fail("out of memory");
    } else {
        fprintf(stderr, "coffer: add this to an authenticator app (type the secret, or make a QR "
                        "code of the URI):\n");
        status = cf_cli_write_secret(text.data, text.len);
    }
    if (status != CF_EXIT_OK)
        goto out;
    if (!code && ask_code(typed, sizeof(typed)))
        code = typed;
    if (code)
        status = post_code(&cli, MFA_PATH "/totp/verify", code);
    else
        fprintf(stderr,
                "coffer: not on yet: confirm with `coffer users mfa verify CODE` and a code "
                "of the authenticator\n");
out:
    sodium_memzero(typed, sizeof(typed));
    cf_buf_release_wipe(&text);
    json_decref(answer); /* jansson's memory is wiped when freed (util/wipemem.h) */
    json_decref(body);
    cf_cli_end(&cli);
    return status;
}

/* A command whose one positional argument or --code is a code, POSTed to path. */
static int code_command(int argc, char **argv, const char *usage, const char *path, bool positional)
{
    const char *code = NULL;
    const struct cf_opt opts[] = {{"code", CF_OPT_STRING, &code}};
    const struct cf_cli_spec spec = {usage,
                                     0,
                                     positional ? 1 : 0,
                                     positional ? 1 : 0,
                                     positional ? NULL : opts,
                                     positional ? 0 : CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (positional)
        code = cli.args[0];
    status = code ? post_code(&cli, path, code) : cf_cli_usage_error(&cli, "--code is required");
out:
    cf_cli_end(&cli);
    return status;
}

static const char verify_usage[] =
    "usage: coffer users mfa verify CODE [options]\n"
    "\n"
    "Confirms the enrolment begun by `coffer users mfa enable` with a code of the\n"
    "authenticator: two-factor sign-in is on, and ten recovery codes are printed once.\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_verify(int argc, char **argv)
{
    return code_command(argc, argv, verify_usage, MFA_PATH "/totp/verify", true);
}

static const char recovery_usage[] =
    "usage: coffer users mfa recovery-codes --code CODE [options]\n"
    "\n"
    "Replaces the signed-in user's recovery codes with ten new ones (the old ones stop\n"
    "working), given a current code of the authenticator.\n"
    "\n"
    "options:\n"
    "  --code CODE        a current code of the authenticator\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_recovery_codes(int argc, char **argv)
{
    return code_command(argc, argv, recovery_usage, MFA_PATH "/recovery-codes", false);
}

static const char status_usage[] =
    "usage: coffer users mfa status [EMAIL|ID|me] [options]\n"
    "\n"
    "Shows whether a user (default: the signed-in one) has two-factor sign-in and how\n"
    "many recovery codes are left. Another user's: administrators.\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

/* The path /v1/users/{ref}/mfa{suffix}, ref the first positional argument or "me". */
static int user_mfa_path(const struct cf_cli *cli, const char *suffix, struct cf_buf *path)
{
    return cf_cli_path(path, "/v1/users", cli->nargs ? cli->args[0] : "me", suffix, NULL, NULL);
}

static int cmd_status(int argc, char **argv)
{
    const struct cf_cli_spec spec = {status_usage, 0, 0, 1, NULL, 0};
    struct cf_buf path;
    struct cf_cli cli;
    int status;

    cf_buf_init(&path, 0);
    if (cf_cli_begin(&cli, argc, argv, &spec, &status)) {
        status = user_mfa_path(&cli, "/mfa", &path);
        if (status == CF_EXIT_OK)
            status = cf_cli_request_member(&cli, "GET", path.data, NULL, "mfa", print_status);
    }
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const char disable_usage[] =
    "usage: coffer users mfa disable [EMAIL|ID|me] [--code CODE] [options]\n"
    "\n"
    "Turns two-factor sign-in off: for the signed-in user with a current code (or a\n"
    "recovery code); an administrator resets another user's (who lost the\n"
    "authenticator and the recovery codes) without one. An owner's only an owner resets.\n"
    "\n"
    "options:\n"
    "  --code CODE        a current code or a recovery code (your own account)\n" CF_CLI_COMMON_HELP
        EXIT_HELP;

static int cmd_disable(int argc, char **argv)
{
    const char *code = NULL;
    const struct cf_opt opts[] = {{"code", CF_OPT_STRING, &code}};
    const struct cf_cli_spec spec = {disable_usage, 0, 0, 1, opts, CF_ARRAY_SIZE(opts)};
    struct cf_buf path;
    struct cf_cli cli;
    int status;

    cf_buf_init(&path, 0);
    if (cf_cli_begin(&cli, argc, argv, &spec, &status)) {
        status = user_mfa_path(&cli, "/mfa/disable", &path);
        if (status == CF_EXIT_OK)
            status = post_code(&cli, path.data, code);
    }
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const struct cf_cli_sub subcommands[] = {
    {"enable", cmd_enable, "enrol an authenticator app for two-factor sign-in"},
    {"verify", cmd_verify, "confirm the enrolment with a code"},
    {"status", cmd_status, "show whether a user has two-factor sign-in"},
    {"recovery-codes", cmd_recovery_codes, "replace the recovery codes"},
    {"disable", cmd_disable, "turn two-factor sign-in off (or reset another user's)"},
};

int cf_cmd_users_mfa(int argc, char **argv)
{
    char name[] = "users mfa"; /* for the overview's usage line */
    argv[0] = name;
    return cf_cli_dispatch(argc, argv, subcommands, CF_ARRAY_SIZE(subcommands), NULL);
}
