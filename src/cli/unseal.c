/* The seal commands of `coffer operator` that are clients of a running server (see unseal.h). */
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/common.h"
#include "cli/unseal.h"
#include "client/client.h"
#include "util/str.h"
#include "util/banned.h"

/* Room for one line of standard input: a share is 44 characters. */
#define SHARE_LINE_MAX 512
/* How long to wait for a server that has taken its last share to serve unsealed. */
#define UNSEALED_WAIT_MS 15000

static const char unseal_usage[] =
    "usage: coffer operator unseal [--reset] [--domain URL]\n"
    "\n"
    "Hands unseal shares to a sealed server: one asked on the terminal (not echoed), or\n"
    "every line of standard input when it is not a terminal. Shows the progress (k of t)\n"
    "and the attempt's nonce; after the last share, waits until the server serves unsealed.\n"
    "Shares are never taken from the command line. No token is needed.\n"
    "\n"
    "  --reset       drop the shares handed in so far (start the attempt again)\n"
    "  --domain URL  the server (COFFER_API_URL, default http://127.0.0.1:8080)\n";

static const char seal_usage[] =
    "usage: coffer operator seal [--token T] [--domain URL]\n"
    "\n"
    "Seals a running server: it finishes the requests in flight, stops its background\n"
    "work, wipes its keys from memory and answers 503 to every request but the status\n"
    "and unseal ones until it is unsealed again. Needs the admin token or an owner's.\n";

/* Reads the next share: a line of standard input, or asked on the terminal with echo off. false
 * at the end of input. The caller wipes line. */
static bool read_share(bool tty, char line[SHARE_LINE_MAX], unsigned progress, unsigned threshold)
{
    struct termios saved, quiet;
    if (tty) {
        if (threshold)
            fprintf(stderr, "Unseal share (%u of %u given so far): ", progress, threshold);
        else
            fprintf(stderr, "Unseal share: ");
        fflush(stderr);
        tcgetattr(STDIN_FILENO, &saved);
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    bool ok = fgets(line, SHARE_LINE_MAX, stdin) != NULL;
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        fputc('\n', stderr);
    }
    return ok;
}

/* Prints the seal state of an unseal answer; returns the progress and threshold. */
static bool show_progress(json_t *state, unsigned *progress, unsigned *threshold)
{
    bool sealed = json_is_true(json_object_get(state, "sealed"));
    *progress = (unsigned)json_integer_value(json_object_get(state, "progress"));
    *threshold = (unsigned)json_integer_value(json_object_get(state, "t"));
    if (sealed)
        printf("Sealed: true\nUnseal progress: %u of %u\nUnseal nonce: %s\n", *progress, *threshold,
               json_string_value(json_object_get(state, "nonce")));
    fflush(stdout);
    return sealed;
}

/* Polls GET /api/status until the server serves unsealed (the sealed listener hands over to the
 * full server a moment after the last share). */
static int wait_unsealed(struct cf_client *client)
{
    struct cf_err err;
    for (int waited = 0; waited < UNSEALED_WAIT_MS; waited += 100) {
        struct cf_response resp = CF_RESPONSE_INIT;
        cf_err_clear(&err);
        enum cf_rc rc = cf_client_request(client, "GET", "/status", NULL, NULL, &resp, &err);
        bool unsealed = rc == CF_OK && json_is_false(json_object_get(resp.json, "sealed"));
        cf_response_release(&resp);
        if (unsealed) {
            printf("Sealed: false\n");
            return CF_EXIT_OK;
        }
        usleep(100 * 1000);
    }
    return cf_cli_fail("the server took every share but does not serve unsealed yet: see its log");
}

int cf_cmd_operator_unseal(int argc, char **argv)
{
    bool reset = false;
    const char *domain = NULL;
    const struct cf_opt options[] = {
        {"reset", CF_OPT_BOOL, &reset},
        {"domain", CF_OPT_STRING, &domain},
    };
    const struct cf_cli_spec spec = {
        .usage = unseal_usage,
        .flags = CF_CLI_OFFLINE,
        .opts = options,
        .nopts = CF_ARRAY_SIZE(options),
    };
    struct cf_cli cli;
    struct cf_client *client = NULL;
    struct cf_buf default_domain;
    struct cf_err err;
    char line[SHARE_LINE_MAX];
    unsigned progress = 0, threshold = 0, given = 0;
    int status;

    cf_buf_init(&default_domain, 0);
    cf_err_clear(&err);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status)) {
        cf_cli_end(&cli);
        return status;
    }
    struct cf_client_options client_options = {
        .domain = domain ? domain : cf_cli_default_domain(&default_domain),
        .ca_file = cf_cli_first_env("COFFER_CACERT", NULL),
    };
    if (cf_client_new(&client_options, &client, &err) != CF_OK) {
        status = err.rc == CF_EINVAL ? cf_cli_usage_error(&cli, "%s", err.msg)
                                     : cf_cli_fail("%s", err.msg);
        goto out;
    }
    bool tty = isatty(STDIN_FILENO);
    status = CF_EXIT_OK;
    for (;;) {
        json_t *body = NULL;
        if (reset) {
            body = json_pack("{s:b}", "reset", 1);
        } else {
            if (!read_share(tty, line, progress, threshold))
                break;
            size_t len = strcspn(line, "\r\n");
            line[len] = '\0';
            if (len == 0)
                continue; /* a blank line between shares */
            body = json_pack("{s:s}", "key", line);
            sodium_memzero(line, sizeof(line));
            given++;
        }
        if (!body) {
            status = cf_cli_fail("out of memory");
            goto out;
        }
        struct cf_response resp = CF_RESPONSE_INIT;
        cf_err_clear(&err);
        enum cf_rc rc =
            cf_client_request(client, "POST", "/v1/sys/unseal", NULL, body, &resp, &err);
        json_decref(body); /* wiped: jansson's allocator wipes (cf_client_global_init) */
        if (rc != CF_OK) {
            status = resp.status ? cf_cli_fail("%s (HTTP %ld, request id %s)", err.msg, resp.status,
                                               resp.request_id)
                                 : cf_cli_fail("%s", err.msg);
            cf_response_release(&resp);
            goto out;
        }
        bool sealed = show_progress(resp.json, &progress, &threshold);
        cf_response_release(&resp);
        if (reset)
            goto out;
        if (!sealed) {
            status = wait_unsealed(client);
            goto out;
        }
        if (tty)
            break; /* one share per person at the terminal: each runs the command */
    }
    if (!reset && given == 0)
        status = cf_cli_usage_error(&cli, "no share given on standard input");
out:
    sodium_memzero(line, sizeof(line));
    cf_client_free(client);
    cf_buf_release(&default_domain);
    cf_cli_end(&cli);
    return status;
}

int cf_cmd_operator_seal(int argc, char **argv)
{
    const struct cf_cli_spec spec = {.usage = seal_usage};
    struct cf_cli cli;
    json_t *out = NULL;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status)) {
        cf_cli_end(&cli);
        return status;
    }
    status = cf_cli_request(&cli, "POST", "/v1/sys/seal", NULL, NULL, &out);
    if (status == CF_EXIT_OK)
        printf("Sealed: true\n");
    json_decref(out);
    cf_cli_end(&cli);
    return status;
}
