/* What `coffer scan` takes, shared by its two halves: cli/scan_front.c in coffer (help, completion
 * and man pages are made from these, and a run executes coffer-scan) and cli/scan.c in coffer-scan,
 * which parses them again and scans. The tables are static: each program includes this once. */
#ifndef CF_CLI_SCAN_CMD_H
#define CF_CLI_SCAN_CMD_H

#include <stdbool.h>

#include "cli/common.h"

/* The exit status of a scan that could not be completed (docs/scan.md: 0 clean, 1 findings, 2 an
 * error), also for failures the rest of the CLI reports with 1. */
#define SCAN_EXIT_ERROR 2
#define SCAN_THREADS_MAX 64

#define SCAN_COMMON_HELP                                                                           \
    "  --rules FILE       also use the rules of this YAML or TOML file (by its\n"                  \
    "                     extension; a gitleaks.toml too, docs/scan.md); a rule with a\n"          \
    "                     built-in rule's id replaces it\n"                                        \
    "  --no-builtin       use only the rules of --rules\n"                                         \
    "  --baseline FILE    accept the findings of an earlier --output json report\n"                \
    "  --known            also report the values of every secret the token can read\n"             \
    "                     (raw, base64, base64url and URL-encoded; values shorter than\n"          \
    "                     8 bytes are skipped, and said so); needs a token\n"                      \
    "  --projectId ID     with --known: only this project's secrets\n"                             \
    "  --mark-leaked      with --known: mark each Coffer secret found leaked on the\n"             \
    "                     server (where it was found, never the value)\n"                          \
    "  --rotate-leaked    with --mark-leaked: also ask for the rotation whose output\n"            \
    "                     is that secret, where one is configured\n"                               \
    "  --no-cache         compile the rules afresh, neither reading nor writing the\n"             \
    "                     compiled-rules cache ($XDG_CACHE_HOME/coffer, else\n"                    \
    "                     ~/.cache/coffer; never used with --known)\n"                             \
    "  --output FORMAT    text (default), json or sarif (SARIF 2.1.0)\n"                           \
    "  --domain URL       with --known: server URL (env COFFER_API_URL)\n"                         \
    "  --token TOKEN      with --known: access token (env COFFER_TOKEN; default: the\n"            \
    "                     token stored by 'coffer login')\n"                                       \
    "  -h, --help         show this help\n"                                                        \
    "\n"                                                                                           \
    "Findings show the secret's first and last two characters only. A line holding\n"              \
    "'coffer:allow' is not reported. Exit status: 0 nothing found, 1 findings, 2 an\n"             \
    "error (nothing is reported as clean that could not be read; a secret that\n"                  \
    "--mark-leaked could not mark, or whose rotation failed, is an error too).\n"

static const char scan_usage[] =
    "usage: coffer scan [PATH...] [--stdin] [--staged] [--threads N] [options]\n"
    "       coffer scan git [DIR] [--since REV] [--all] [options]\n"
    "       coffer scan install-hook [DIR] [--force] [options]\n"
    "\n"
    "Looks for secrets: in files and directories (default '.'; what .gitignore\n"
    "ignores is left out, binary files are skipped), standard input (--stdin), the\n"
    "changes staged for the next commit (--staged, in the repository at PATH or\n"
    "'.'), or git history (coffer scan git). Every rule runs in one pass over each\n"
    "file. install-hook writes a pre-commit hook running 'coffer scan --staged'.\n"
    "\n"
    "options:\n"
    "  --stdin            scan standard input\n"
    "  --staged           scan the lines staged for the next commit\n"
    "  --threads N        files scanned at once (default: the number of "
    "processors)\n" SCAN_COMMON_HELP;

static const char scan_git_usage[] =
    "usage: coffer scan git [DIR] [--since REV] [--all] [options]\n"
    "\n"
    "Scans the lines every commit of the repository at DIR (default '.') added,\n"
    "newest first, reporting each finding with its commit, author, date, path and\n"
    "line. Merge commits are left out (what they bring is in the commits merged).\n"
    "\n"
    "options:\n"
    "  --since REV        only the commits not reachable from REV\n"
    "  --all              the commits of every reference, not only HEAD's\n" SCAN_COMMON_HELP;

static const char scan_hook_usage[] =
    "usage: coffer scan install-hook [DIR] [--force] [--rules FILE] [--baseline FILE]\n"
    "\n"
    "Writes the pre-commit hook of the repository at DIR (default '.'): it runs this\n"
    "coffer's 'scan --staged' (with --rules and --baseline when given, relative to\n"
    "the work tree) and so refuses a commit whose staged lines hold a secret.\n"
    "\n"
    "options:\n"
    "  --force            replace an existing pre-commit hook\n"
    "  --rules FILE       passed on to the hook's scan\n"
    "  --baseline FILE    passed on to the hook's scan\n"
    "  -h, --help         show this help\n";

/* What every form of the command takes. */
struct scan_opts {
    const char *rules_file;
    const char *baseline;
    const char *output;
    const char *project_id;
    bool no_builtin;
    bool no_cache;
    bool known;
    bool mark_leaked;
    bool rotate_leaked;
};

#define SCAN_COMMON_OPTS(o)                                                                        \
    {"rules", CF_OPT_STRING, &(o).rules_file}, {"baseline", CF_OPT_STRING, &(o).baseline},         \
        {"output", CF_OPT_STRING, &(o).output}, {"projectId", CF_OPT_STRING, &(o).project_id},     \
        {"no-builtin", CF_OPT_BOOL, &(o).no_builtin}, {"known", CF_OPT_BOOL, &(o).known},          \
        {"no-cache", CF_OPT_BOOL, &(o).no_cache}, {"mark-leaked", CF_OPT_BOOL, &(o).mark_leaked},  \
    {                                                                                              \
        "rotate-leaked", CF_OPT_BOOL, &(o).rotate_leaked                                           \
    }

/* The options of the plain form (files, --stdin, --staged), in the order both halves declare them.
 */
#define SCAN_TOP_OPTS(o, use_stdin, staged, threads)                                               \
    SCAN_COMMON_OPTS(o), {"stdin", CF_OPT_BOOL, &(use_stdin)}, {"staged", CF_OPT_BOOL, &(staged)}, \
    {                                                                                              \
        "threads", CF_OPT_INT, &(threads)                                                          \
    }

#endif
