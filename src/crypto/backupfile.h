/* Backup files (`coffer operator backup`): a header line, the manifest, then the payload encrypted.
 *
 * The manifest is one line of text (JSON, written by the caller) kept readable without a key, so an
 * operator can see what a file holds; the payload (a snapshot of the store as an SQLite file) is
 * encrypted with libsodium's secretstream (XChaCha20-Poly1305) in chunks of CF_BACKUP_CHUNK bytes,
 * under a key derived from the root key. The first chunk's associated data is the header line and
 * the manifest, so neither can be changed unnoticed; every chunk is authenticated in order, so none
 * can be dropped, repeated or moved; the last carries the FINAL tag, so a file cut short is found.
 *
 * Layout: "coffer-backup 1\n", the manifest and "\n", the 24-byte secretstream header, then chunks,
 * each a 4-byte big-endian length and that many bytes of ciphertext. */
#ifndef CF_CRYPTO_BACKUPFILE_H
#define CF_CRYPTO_BACKUPFILE_H

#include <stdint.h>

#include "util/err.h"

#define CF_BACKUP_KEY_BYTES 32
#define CF_BACKUP_CHUNK 65536
/* The longest manifest a file may hold. */
#define CF_BACKUP_MANIFEST_MAX (1024 * 1024)

/* Writes the backup file at path (which must not exist: CF_EEXIST) holding manifest (one line of
 * text: no newline) and everything read from payload_fd, encrypted with key: written to a temp
 * file beside it (mode 0600), fsync'd and renamed into place, so that no half-written backup ever
 * carries the name. */
enum cf_rc cf_backup_write(const char *path, const char *manifest,
                           const uint8_t key[CF_BACKUP_KEY_BYTES], int payload_fd,
                           struct cf_err *err);

/* Reads the manifest of the backup at path into *manifest (malloc'd; the caller frees it) without
 * a key. CF_EVALIDATION when path is not a Coffer backup, CF_EIO when it cannot be read. */
enum cf_rc cf_backup_read_manifest(const char *path, char **manifest, struct cf_err *err);

/* Decrypts the payload of the backup at path into out_fd, checking every chunk: CF_ECRYPTO when a
 * chunk does not authenticate (the file was altered, or made with another root key),
 * CF_EVALIDATION when it is cut short or carries bytes after its last chunk. Writes to out_fd may
 * have happened when it fails: the caller discards them. */
enum cf_rc cf_backup_decrypt(const char *path, const uint8_t key[CF_BACKUP_KEY_BYTES], int out_fd,
                             struct cf_err *err);

#endif
