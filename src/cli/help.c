/* `coffer help [COMMAND [SUBCOMMAND...]]`: the overview of every command, or the help of one, the
 * same text as `coffer COMMAND [SUBCOMMAND...] --help`, on standard output with exit 0. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/banned.h"

static const char usage[] =
    "usage: coffer help [COMMAND [SUBCOMMAND...]]\n"
    "\n"
    "Shows the list of commands, or the help of one command or subcommand\n"
    "(as 'coffer COMMAND [SUBCOMMAND...] --help' does): coffer help secrets\n"
    "list. An unknown name is a usage error (exit 2) naming the nearest one.\n"
    "\n"
    "options:\n"
    "  --output FORMAT    ignored (help is text)\n"
    "  -h, --help         show this help\n";

int cf_cmd_help(int argc, char **argv)
{
    const struct cf_cli_spec spec = {usage, CF_CLI_OFFLINE, 0, SIZE_MAX, NULL, 0};
    struct cf_cli cli;
    char **command = NULL;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (cli.nargs == 0) {
        cf_cli_print_program_usage(stdout);
        goto out;
    }
    /* COMMAND [SUBCOMMAND...] --help */
    command = calloc(cli.nargs + 2, sizeof(char *));
    if (!command) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    for (size_t i = 0; i < cli.nargs; i++)
        command[i] = cli.args[i];
    char help[] = "--help";
    command[cli.nargs] = help;
    status = cf_cli_run_command((int)cli.nargs + 1, command);
out:
    free(command);
    cf_cli_end(&cli);
    return status;
}
