/* `coffer scan` in the coffer program: the scanner itself is the program coffer-scan
 * (src/scan_main.c), installed beside coffer, so that Hyperscan, PCRE2, libgit2 and the C++ runtime
 * are loaded only by a scan, never by the server or the other commands. This half describes the
 * command (help, completion and man pages are made from coffer's command table), prints the plain
 * form's help, and otherwise executes coffer-scan with the same arguments, environment and
 * standard streams. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/scan_cmd.h"
#include "util/str.h"
#include "util/banned.h"

/* Records the plain form's options while the command tree is described, or prints its help. */
static int describe(int argc, char **argv)
{
    struct scan_opts o = {0};
    bool use_stdin = false, staged = false;
    struct cf_opt_int threads = {0};
    const struct cf_opt opts[] = {SCAN_TOP_OPTS(o, use_stdin, staged, threads)};
    const struct cf_cli_spec spec = {scan_usage, CF_CLI_OFFLINE, 0,
                                     SIZE_MAX,   opts,           CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    int status;
    (void)cf_cli_begin(&cli, argc, argv, &spec, &status);
    cf_cli_end(&cli);
    return status;
}

int cf_cmd_scan(int argc, char **argv)
{
    char self[PATH_MAX], dir[PATH_MAX], places[2][PATH_MAX + 64];

    /* the plain form's help is coffer's own (git and install-hook have theirs in coffer-scan) */
    bool subform =
        argc > 1 && (strcmp(argv[1], "git") == 0 || strcmp(argv[1], "install-hook") == 0);
    if (cf_cli_describing() || (!subform && cf_opt_wants_help(argc, argv)))
        return describe(argc, argv);
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        cf_cli_fail("cannot find this program's path to run the scanner: %s", strerror(errno));
        return SCAN_EXIT_ERROR;
    }
    self[n] = '\0';
    cf_strlcpy(dir, self, sizeof(dir));
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    /* beside coffer (a build tree), then where `make install` and the Debian package put it */
    snprintf(places[0], sizeof(places[0]), "%s/coffer-scan", dir);
    snprintf(places[1], sizeof(places[1]), "%s/../libexec/coffer/coffer-scan", dir);
    for (size_t i = 0; i < CF_ARRAY_SIZE(places); i++) {
        if (access(places[i], X_OK) != 0)
            continue;
        /* coffer-scan scan ARGS...: the scanner's own argv[0] is its path, then the command */
        char **args = calloc((size_t)argc + 2, sizeof(*args));
        if (!args) {
            cf_cli_fail("out of memory");
            return SCAN_EXIT_ERROR;
        }
        args[0] = places[i];
        memcpy(args + 1, argv, (size_t)argc * sizeof(*argv));
        fflush(NULL);
        execv(places[i], args);
        free(args);
        cf_cli_fail("cannot run the scanner %s: %s", places[i], strerror(errno));
        return SCAN_EXIT_ERROR;
    }
    cf_cli_fail("the scanner is not installed: neither %s nor %s exists (coffer-scan is installed "
                "with coffer; see docs/scan.md)",
                places[0], places[1]);
    return SCAN_EXIT_ERROR;
}
