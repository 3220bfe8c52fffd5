/* The file destination of secret syncs: a dotenv, JSON or YAML file on the server's host, for
 * programs that read their settings from a file. destinationConfig: {"path": absolute path,
 * "format": "dotenv" (default) | "json" | "yaml"}. The file is rendered by util/format.h exactly as
 * `coffer export` renders the same format (dotenv `KEY='value'`, Infisical's JSON array of
 * {key, value, ...}, YAML double-quoted scalars), written with mode 0600 to a temporary file in the
 * same directory, synced and renamed over the path, so that a reader never sees a partial file.
 * A path that is relative, a directory, a symbolic link or anything but a regular file is refused,
 * and so is any path outside the one directory the server's administrator allows
 * (cf_filedest_set_root, from --sync-file-dir): file syncs are off until one is set.
 * Entries already in the file that a push neither writes nor removes are kept. */
#ifndef CF_PROVIDER_FILEDEST_H
#define CF_PROVIDER_FILEDEST_H

#include "provider/provider.h"

/* Largest file the destination reads back or writes. */
#define CF_FILEDEST_MAX (8 * 1024 * 1024)

/* The "file" destination. Needs no connection (conn may be NULL). Thread-safe for different
 * paths; two pushes to one path at once may lose one's entries (the engine runs one job per sync at
 * a time). */
extern const struct cf_dest_ops cf_file_dest;

/* Allows file syncs below dir (NULL or "": none, which turns file syncs off), after checking that
 * it is an absolute path to a directory other than /. Frozen configuration: call once at start.
 * CF_EINVAL naming the flag --sync-file-dir when it is not. */
enum cf_rc cf_filedest_set_root(const char *dir, struct cf_err *err);

#endif
