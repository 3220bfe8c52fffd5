/* coffer-scan: the scanner behind `coffer scan` (docs/scan.md), a program of its own so that its
 * libraries stay out of coffer's other commands and the server. coffer executes it as
 * `coffer-scan scan ARGS...` (cli/scan_front.c); it takes exactly what `coffer scan` takes. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/str.h"
#include "util/banned.h"

static const struct cf_cli_sub commands[] = {
    {"scan", cf_cmd_scan,
     "find secrets in files, git history and staged changes (a pre-commit gate)"},
};

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "scan") != 0) {
        fprintf(stderr, "coffer-scan: run by 'coffer scan' (usage: coffer-scan scan [options])\n");
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "coffer: libsodium failed to initialise\n");
        return 2;
    }
    cf_cli_set_program(commands, CF_ARRAY_SIZE(commands));
    return cf_cli_finish(cf_cli_run_command(argc - 1, argv + 1));
}
