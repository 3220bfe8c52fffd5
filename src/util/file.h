/* Small files that must never be seen half-written: replaced whole, with the mode they need. */
#ifndef CF_UTIL_FILE_H
#define CF_UTIL_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

/* Writes all n bytes to fd, retrying short writes and EINTR. false on failure (errno says why). */
bool cf_write_all(int fd, const void *data, size_t n);

/* Replaces path with len bytes of data, atomically: a fresh temp file beside it (mode 0600), fsync,
 * rename over path, fsync of the directory. A reader sees the old contents or the new, never a mix;
 * a crash leaves one of the two. CF_EIO naming the file otherwise (the temp file is removed).
 * Thread-safe for different paths. */
enum cf_rc cf_file_replace(const char *path, const void *data, size_t len, struct cf_err *err);

/* As cf_file_replace, but path must not exist yet: CF_EEXIST when it does (two processes creating
 * it cannot both succeed; on a file system without hard links the last one wins). */
enum cf_rc cf_file_create(const char *path, const void *data, size_t len, struct cf_err *err);

/* Reads at most max bytes of path into a new NUL-terminated buffer (*out, freed by the caller with
 * free; *len without the NUL). CF_ENOTFOUND when path does not exist, CF_ETOOLARGE when it is
 * longer than max, CF_EIO otherwise. */
enum cf_rc cf_file_read(const char *path, size_t max, char **out, size_t *len, struct cf_err *err);

#endif
