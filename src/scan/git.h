/* `coffer scan` over git (libgit2): every commit's added lines (history), the staged changes (the
 * pre-commit hook) and the hook itself. Each finding carries the commit, author, date, path and
 * the line number in the file as that commit left it. */
#ifndef CF_SCAN_GIT_H
#define CF_SCAN_GIT_H

#include <stdbool.h>

#include "scan/engine.h"
#include "scan/report.h"
#include "util/err.h"

/* Scans the history of the repository at or above repo_path: the commits reachable from HEAD (or
 * with all, from every reference), newest first, each diffed against its first parent (merges are
 * left out: what they bring was scanned in the commits merged); with since (a revision), only the
 * commits not reachable from it. Binary files are skipped. Findings go to report. CF_ENOTFOUND
 * when repo_path is not in a repository or since does not resolve; CF_EIO for other libgit2
 * failures; CF_ENOMEM. Needs git_libgit2_init(). */
enum cf_rc cf_scan_git_history(const struct cf_scan_engine *engine, const char *repo_path,
                               const char *since, bool all, struct cf_scan_report *report,
                               struct cf_err *err);

/* Scans the lines the index adds to HEAD (everything staged, for a first commit). */
enum cf_rc cf_scan_git_staged(const struct cf_scan_engine *engine, const char *repo_path,
                              struct cf_scan_report *report, struct cf_err *err);

/* Writes the repository's pre-commit hook (hooks/ under the git directory, or core.hooksPath),
 * mode 0755, running `<program> scan --staged` with any extra arguments (borrowed; each quoted for
 * sh). An existing hook is kept unless force (CF_EEXIST naming it). *written receives the hook's
 * path (free() it). */
enum cf_rc cf_scan_git_install_hook(const char *repo_path, const char *program,
                                    const char *const *extra, size_t nextra, bool force,
                                    char **written, struct cf_err *err);

#endif
