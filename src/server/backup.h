/* `coffer operator backup`, `backup --verify` and `restore` (docs/operations.md "Backup and
 * restore"): a consistent snapshot of a store, taken while servers keep serving, in an encrypted
 * file (crypto/backupfile.h) with a manifest of every table's row count and checksum and the audit
 * chain's head; checked without restoring, and restored into an empty store, compared table by
 * table and the audit chain verified. Each returns an exit status (0 done, 1 failed). */
#ifndef CF_SERVER_BACKUP_H
#define CF_SERVER_BACKUP_H

#include "server/boot.h"

/* Writes the backup of the store opts names to path (which must not exist). Runs beside a
 * running server (opts->beside_server). */
int cf_backup_run(const struct cf_boot_opts *opts, const char *path);

/* Checks the backup at path with the root key opts names: every chunk, every table's rows and
 * checksum against the manifest, the root key check and the audit chain. */
int cf_backup_verify(const struct cf_boot_opts *opts, const char *path);

/* Restores the backup at path into the empty store opts names, after checking it as
 * cf_backup_verify does; then compares every table again and verifies the restored audit chain,
 * writing the data directory's audit head. */
int cf_backup_restore(const struct cf_boot_opts *opts, const char *path);

#endif
