/* `coffer login`: exchanges a machine identity's universal-auth client id and client secret (POST
 * /api/v1/auth/universal-auth/login), or its identity id and a JWT (--method=jwt-auth, POST
 * /api/v1/auth/jwt-auth/login), or its identity id and the Kubernetes service account token read
 * from a file (--method=kubernetes, POST /api/v1/auth/kubernetes-auth/login), for an access token,
 * sent without an Authorization header (machine_login.h); with --jwt-from the JWT is fetched from
 * the CI system itself (ci_token.h). Flags and environment variables are those of Infisical's
 * CLI, so `INFISICAL_TOKEN=$(coffer login
 * --method=universal-auth --client-id=... --client-secret=... --silent --plain)` works unchanged.
 * With --plain only the token is printed; otherwise it is printed as Infisical prints it and also
 * stored (credentials.h) for later commands. The client secret or JWT given on the command line is
 * wiped from argv as soon as it is read; every copy of it and of the token is wiped.
 *
 * `coffer login --user EMAIL` signs a person in instead (POST /api/v1/auth/login asking for a
 * personal access token, docs/users.md): the password is read from the terminal without echo, or
 * from the first line of standard input with --password-stdin, never from the command line; the
 * personal access token is printed and stored the same way. `coffer login --sso` signs a person in
 * through the server's single sign-on in a browser (cli/sso_login.h) for the same kind of token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/credentials.h"
#include "cli/machine_login.h"
#include "cli/sso_login.h"
#include "client/client.h"
#include "util/banned.h"
#include "util/str.h"

static const char usage[] =
    "usage: coffer login [--method universal-auth] --client-id ID --client-secret SECRET\n"
    "                    [--plain] [--silent] [--domain URL]\n"
    "       coffer login --method jwt-auth --machine-identity-id ID --jwt TOKEN\n"
    "                    [--plain] [--silent] [--domain URL]\n"
    "       coffer login --method jwt-auth --machine-identity-id ID\n"
    "                    --jwt-from azure-devops|github-actions|gitlab|file:PATH|env:VAR\n"
    "                    [--jwt-audience AUD] [--azure-devops-service-connection ID]\n"
    "                    [--plain] [--silent] [--domain URL]\n"
    "       coffer login --method kubernetes --machine-identity-id ID\n"
    "                    [--service-account-token-path P] [--plain] [--silent] [--domain URL]\n"
    "       coffer login --user EMAIL [--password-stdin] [--mfa-code CODE] [--expires-in D]\n"
    "                    [--token-name N] [--plain] [--silent] [--domain URL]\n"
    "       coffer login --sso [--no-browser] [--timeout D] [--expires-in D] [--token-name N]\n"
    "                    [--plain] [--silent] [--domain URL]\n"
    "\n"
    "Logs a machine identity in with universal, JWT or Kubernetes auth and prints its access "
    "token.\n"
    "Without --plain the token is also stored in $XDG_CONFIG_HOME/coffer/credentials.json\n"
    "(default ~/.config/coffer; mode 0600), and later commands use it for that server\n"
    "when no --token, COFFER_TOKEN or INFISICAL_TOKEN is given. (coffer run and coffer\n"
    "export take the same login flags and use the token for themselves only.)\n"
    "\n"
    "With --user a person signs in with an email and password (asked on the terminal\n"
    "without echo, or read from standard input with --password-stdin) and a personal\n"
    "access token (coffer_pat_...) is printed and stored instead. An account with\n"
    "two-factor sign-in is asked for a code of its authenticator app (or a recovery\n"
    "code): on the terminal, from the next line of standard input with --password-stdin,\n"
    "or given with --mfa-code. With --sso the person\n"
    "signs in with the server's single sign-on in a browser, which comes back to a port\n"
    "on 127.0.0.1 that this command listens on, for the same kind of token.\n"
    "\n"
    "options:\n" CF_LOGIN_OPTIONS_HELP "  --user EMAIL       sign in as this user\n"
    "  --password-stdin   read the password from the first line of standard input (and\n"
    "                     the authentication code, when needed, from the second)\n"
    "  --mfa-code CODE    the authentication code of a two-factor sign-in\n"
    "  --sso              sign in with single sign-on in a browser\n"
    "  --no-browser       with --sso: print the URL to open instead of opening it\n"
    "  --timeout D        with --sso: how long to wait for the browser (default 5m)\n"
    "  --expires-in D     the personal access token's lifetime (default 30d, at most\n"
    "                     366d)\n"
    "  --token-name N     its name in the token list (default \"coffer login\"; with\n"
    "                     --sso \"coffer login --sso on HOST\")\n"
    "  --plain            print only the token and a newline; store nothing\n"
    "  --silent           no informational messages on standard error\n"
    "  --organization-slug S  accepted for compatibility with Infisical's CLI\n"
    "  --domain URL       server URL (env COFFER_API_URL or INFISICAL_API_URL;\n"
    "                     default: the last login's, else " CF_CLIENT_DEFAULT_DOMAIN ")\n"
    "  --output FORMAT    table (default) or json: the server's answer\n"
    "  -h, --help         show this help\n"
    "\n"
    "exit status: 0 logged in, 1 the server refused (its message is printed), could not\n"
    "be reached, or the CI system gave no token (the reason is printed), 2 usage error.\n";

/* Prints the token (the answer's member token_member) and, unless plain, stores it. */
static int report(const struct cf_cli *cli, json_t *answer, const char *token_member,
                  const char *domain, bool plain, bool silent, const char *method_name)
{
    const char *token = json_string_value(json_object_get(answer, token_member));
    struct cf_buf text, path;
    struct cf_err err;
    int status = CF_EXIT_OK;

    cf_err_clear(&err);
    cf_buf_init(&text, 0);
    cf_buf_init(&path, 0);
    if (!token || !*token) {
        status = cf_cli_fail("the server's answer holds no access token");
        goto out;
    }
    if (cli->json) {
        status = cf_cli_print_json(answer);
    } else if (plain) {
        if (cf_buf_printf(&text, "%s\n", token) != CF_OK)
            status = cf_cli_fail("out of memory");
        else
            status = cf_cli_write_secret(text.data, text.len);
    } else {
        if (cf_buf_printf(&text,
                          ">>>> Successfully authenticated with %s!\n\n"
                          "Access Token:\n%s\n\n"
                          "You can use this access token to authenticate through other commands "
                          "in the CLI.\n",
                          method_name, token) != CF_OK)
            status = cf_cli_fail("out of memory");
        else
            status = cf_cli_write_secret(text.data, text.len);
    }
    if (status != CF_EXIT_OK || plain)
        goto out;
    if (cf_credentials_save(domain, token, &path, &err) != CF_OK) {
        status = cf_cli_fail("logged in, but the token could not be stored: %s", err.msg);
        goto out;
    }
    if (!silent)
        fprintf(stderr,
                "coffer: token stored in %s (used when no --token is given, for this server, "
                "which commands given no --domain now talk to)\n",
                path.data);
out:
    cf_buf_release(&path);
    cf_buf_release_wipe(&text);
    return status;
}

/* Reads one line into out: the next line of standard input (from_stdin), or asked on the terminal
 * after prompt, with echo off when secret. what names it in errors. Returns the exit status. */
static int read_line(const struct cf_cli *cli, bool from_stdin, const char *prompt, bool secret,
                     const char *what, struct cf_buf *out)
{
    char line[1024];
    struct termios saved, quiet;
    bool tty = !from_stdin && isatty(STDIN_FILENO);
    bool ok;

    if (!from_stdin && !tty)
        return cf_cli_usage_error(cli,
                                  "--user needs a terminal to ask the %s on, or "
                                  "--password-stdin",
                                  what);
    if (tty) {
        fprintf(stderr, "%s: ", prompt);
        fflush(stderr);
        tcgetattr(STDIN_FILENO, &saved);
        quiet = saved;
        if (secret)
            quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    ok = fgets(line, sizeof(line), stdin) != NULL;
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        if (secret)
            fputc('\n', stderr);
    }
    size_t n = ok ? strlen(line) : 0;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    int status = n == 0                            ? cf_cli_usage_error(cli, "no %s given%s", what,
                                             from_stdin ? " on standard input" : "")
                 : cf_buf_puts(out, line) != CF_OK ? cf_cli_fail("out of memory")
                                                   : CF_EXIT_OK;
    sodium_memzero(line, sizeof(line));
    return status;
}

/* The personalAccessToken {name, expiresIn} a sign-in asks for. */
static json_t *pat_wanted(const char *expires_in, const char *token_name)
{
    return json_pack("{s:s, s:s}", "name", token_name ? token_name : "coffer login", "expiresIn",
                     expires_in ? expires_in : "30d");
}

/* The second step of a sign-in with two-factor sign-in: the answer of the first (401 with
 * mfaRequired and mfaTicket) in resp; the code is code, else the next line of standard input
 * (--password-stdin) or asked on the terminal. On success resp holds the answer of login/mfa. */
static int second_factor(const struct cf_cli *cli, struct cf_client *client, bool from_stdin,
                         const char *code, const char *expires_in, const char *token_name,
                         struct cf_response *resp)
{
    const char *ticket = json_string_value(json_object_get(resp->json, "mfaTicket"));
    struct cf_buf typed;
    struct cf_err err;
    json_t *body = NULL;
    int status = CF_EXIT_OK;

    cf_err_clear(&err);
    cf_buf_init(&typed, 0);
    if (!ticket) {
        status = cf_cli_fail("the server asks for a second factor but sent no mfaTicket");
        goto out;
    }
    if (!code) {
        status = read_line(cli, from_stdin,
                           "Authentication code (authenticator app, or a recovery code)", false,
                           "authentication code (the account has two-factor sign-in; --mfa-code "
                           "gives it)",
                           &typed);
        code = typed.data;
    }
    if (status != CF_EXIT_OK)
        goto out;
    body = json_pack("{s:s, s:s, s:o}", "mfaTicket", ticket, "code", code, "personalAccessToken",
                     pat_wanted(expires_in, token_name));
    cf_response_release(resp);
    if (!body)
        status = cf_cli_usage_error(cli, "the authentication code must be valid UTF-8");
    else if (cf_client_request(client, "POST", "/v1/auth/login/mfa", NULL, body, resp, &err) !=
             CF_OK)
        status = cf_cli_fail("%s (HTTP %ld)", err.msg, resp->status);
out:
    json_decref(body);
    cf_buf_release_wipe(&typed);
    return status;
}

/* Signs user in with a password (and, when the account has it, a second factor) for a personal
 * access token: the answer in *answer, the server's base URL in base_url. Returns the exit
 * status. */
static int user_login(const struct cf_cli *cli, const char *user, bool password_stdin,
                      const char *mfa_code, const char *expires_in, const char *token_name,
                      const char *domain, json_t **answer, struct cf_buf *base_url)
{
    struct cf_client_options client_options = {0};
    struct cf_client *client = NULL;
    struct cf_response resp = CF_RESPONSE_INIT;
    struct cf_buf password, default_domain;
    struct cf_err err;
    json_t *body = NULL;
    int status;

    *answer = NULL;
    cf_err_clear(&err);
    cf_buf_init(&password, 0);
    cf_buf_init(&default_domain, 0);
    status = read_line(cli, password_stdin, "Password", true, "password", &password);
    if (status != CF_EXIT_OK)
        goto out;
    body = json_pack("{s:s, s:s, s:o}", "email", user, "password", password.data,
                     "personalAccessToken", pat_wanted(expires_in, token_name));
    if (!body) {
        status = cf_cli_usage_error(cli, "the email, password and options must be valid UTF-8");
        goto out;
    }
    client_options.domain = domain ? domain : cf_cli_default_domain(&default_domain);
    client_options.ca_file = cf_cli_first_env("COFFER_CACERT", NULL);
    if (cf_client_new(&client_options, &client, &err) != CF_OK) {
        status = err.rc == CF_EINVAL ? cf_cli_usage_error(cli, "%s", err.msg)
                                     : cf_cli_fail("%s", err.msg);
        goto out;
    }
    if (cf_client_request(client, "POST", "/v1/auth/login", NULL, body, &resp, &err) != CF_OK) {
        if (resp.status == 401 && json_is_true(json_object_get(resp.json, "mfaRequired")))
            status =
                second_factor(cli, client, password_stdin, mfa_code, expires_in, token_name, &resp);
        else
            status = resp.status ? cf_cli_fail("%s (HTTP %ld)", err.msg, resp.status)
                                 : cf_cli_fail("%s", err.msg);
        if (status != CF_EXIT_OK)
            goto out;
    }
    if (cf_buf_puts(base_url, cf_client_base_url(client)) != CF_OK) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    *answer = resp.json;
    resp.json = NULL;
out:
    cf_response_release(&resp);
    json_decref(body); /* jansson's memory is wiped when freed (util/wipemem.h) */
    cf_client_free(client);
    cf_buf_release_wipe(&password);
    cf_buf_release(&default_domain);
    return status;
}

int cf_cmd_login(int argc, char **argv)
{
    const char *domain = NULL, *org_slug = NULL, *method_name = NULL;
    struct cf_login_flags flags = {0};
    const char *user = NULL, *expires_in = NULL, *token_name = NULL, *mfa_code = NULL;
    bool plain = false, silent = false, password_stdin = false, sso = false, no_browser = false;
    const char *timeout = NULL;
    const struct cf_opt opts[] = {
        CF_LOGIN_OPTS(&flags),
        {"user", CF_OPT_STRING, &user},
        {"password-stdin", CF_OPT_BOOL, &password_stdin},
        {"mfa-code", CF_OPT_STRING, &mfa_code},
        {"sso", CF_OPT_BOOL, &sso},
        {"no-browser", CF_OPT_BOOL, &no_browser},
        {"timeout", CF_OPT_STRING, &timeout},
        {"expires-in", CF_OPT_STRING, &expires_in},
        {"token-name", CF_OPT_STRING, &token_name},
        {"plain", CF_OPT_BOOL, &plain},
        {"silent", CF_OPT_BOOL, &silent},
        {"organization-slug", CF_OPT_STRING, &org_slug},
        {"domain", CF_OPT_STRING, &domain},
    };
    const struct cf_cli_spec spec = {usage, CF_CLI_OFFLINE, 0, 0, opts, CF_ARRAY_SIZE(opts)};
    struct cf_buf base_url;
    struct cf_cli cli;
    json_t *answer = NULL;
    int status;

    cf_buf_init(&base_url, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (sso && user) {
        status = cf_cli_usage_error(&cli, "--sso and --user do not go together");
        goto out;
    }
    if ((no_browser || timeout) && !sso) {
        status = cf_cli_usage_error(&cli, "--no-browser and --timeout go with --sso");
        goto out;
    }
    if (sso) {
        const struct cf_sso_login_options sso_options = {.domain = domain,
                                                         .expires_in = expires_in,
                                                         .token_name = token_name,
                                                         .timeout = timeout,
                                                         .no_browser = no_browser,
                                                         .silent = silent};
        status = cf_sso_login_run(&cli, &sso_options, &answer, &base_url);
        if (status == CF_EXIT_OK)
            status = report(&cli, answer, "token", base_url.data, plain, silent, "single sign-on");
        goto out;
    }
    if (user) {
        status = user_login(&cli, user, password_stdin, mfa_code, expires_in, token_name, domain,
                            &answer, &base_url);
        if (status == CF_EXIT_OK)
            status = report(&cli, answer, "token", base_url.data, plain, silent, "a password");
        goto out;
    }
    if (password_stdin || mfa_code || expires_in || token_name) {
        status = cf_cli_usage_error(&cli, "--password-stdin, --mfa-code, --expires-in and "
                                          "--token-name go "
                                          "with --user (--expires-in and --token-name also with "
                                          "--sso)");
        goto out;
    }
    status = cf_login_run(&cli, &flags, domain, org_slug, &answer, &base_url, &method_name);
    if (status == CF_EXIT_OK)
        status = report(&cli, answer, "accessToken", base_url.data, plain, silent, method_name);
out:
    /* The secrets given as flags leave argv whatever happened. */
    cf_login_flags_wipe(&flags);
    json_decref(answer);
    cf_buf_release(&base_url);
    cf_cli_end(&cli);
    return status;
}
