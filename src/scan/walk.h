/* The files a `coffer scan PATH...` reads: each named file, and every regular file under each
 * named directory, leaving out what the enclosing git work tree ignores (.gitignore, .git/info/
 * exclude and core.excludesFile, read by libgit2), .git directories and symbolic links. */
#ifndef CF_SCAN_WALK_H
#define CF_SCAN_WALK_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* The most files one walk lists. */
#define CF_SCAN_WALK_MAX 10000000

struct cf_scan_paths {
    char **items;
    uint64_t *sizes; /* of each item when listed, in bytes */
    size_t count, cap;
};

/* Appends to out the files of paths[0..n-1] (each a file or a directory), then orders out largest
 * file first (equal sizes in the order found): threads taking the files in turn then finish at
 * about the same time, instead of one scanning a large file found last while the others wait. A
 * named path that does not exist is CF_ENOTFOUND naming it; an unreadable directory CF_EIO;
 * CF_ENOMEM; CF_ETOOLARGE over CF_SCAN_WALK_MAX. Needs git_libgit2_init(). */
enum cf_rc cf_scan_walk(const char *const *paths, size_t n, struct cf_scan_paths *out,
                        struct cf_err *err);

void cf_scan_paths_release(struct cf_scan_paths *paths);

#endif
