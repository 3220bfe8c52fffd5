/* The keyring: Coffer's root key and the per-project data keys it wraps, and the sealing of secret
 * values.
 *
 * Root key: 32 random bytes, from COFFER_ROOT_KEY (base64) or <data dir>/root.key (base64 text,
 * mode 0600, created on first start). Each project has a 32-byte data key stored wrapped
 * (XChaCha20-Poly1305) by the root key, bound to the project id. Each value version is sealed with
 * its project's data key, with associated data binding project id, environment id, folder path, key
 * name and version, so a ciphertext copied into another row fails to open. Key material lives in
 * sodium_malloc'd (locked, guarded) memory and is wiped on free.
 *
 * Unwrapped project keys are cached (bounded); the keyring is safe to share between threads. */
#ifndef CF_CRYPTO_KEYRING_H
#define CF_CRYPTO_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

#define CF_ROOT_KEY_BYTES 32
/* A key unwrapped by cf_keyring_unwrap_key (the size of a project data key). */
#define CF_KEYRING_KEY_BYTES 32
/* A subkey made by cf_keyring_derive (BLAKE2b-256 output). */
#define CF_SUBKEY_BYTES 32
#define CF_ROOT_KEY_FILE "root.key"

struct cf_keyring;

/* What a sealed value is bound to. Every string must be non-NULL. */
struct cf_seal_ad {
    const char *project_id;
    const char *env_id;
    const char *path;
    const char *key;
    int64_t version;
};

/* Loads the root key from root_key_b64 when non-NULL (standard or URL-safe base64 of exactly 32
 * bytes), else from <data_dir>/root.key; when that file is missing and create is true, generates a
 * key and writes the file (mode 0600, fsync, atomic rename). *out is owned by the caller
 * (cf_keyring_free). */
enum cf_rc cf_keyring_load(const char *data_dir, const char *root_key_b64, bool create,
                           struct cf_keyring **out, struct cf_err *err);

/* Builds a keyring from raw key bytes (copied). */
enum cf_rc cf_keyring_from_bytes(const uint8_t key[CF_ROOT_KEY_BYTES], struct cf_keyring **out,
                                 struct cf_err *err);

/* Fills key with fresh random root key bytes. */
void cf_keyring_generate_root(uint8_t key[CF_ROOT_KEY_BYTES]);

/* Writes key as base64 text to <data_dir>/<name> with mode 0600: temp file, fsync, rename, fsync of
 * the directory. */
enum cf_rc cf_keyring_write_root_file(const char *data_dir, const char *name,
                                      const uint8_t key[CF_ROOT_KEY_BYTES], struct cf_err *err);

/* Reads a root key file written by cf_keyring_write_root_file. CF_ENOTFOUND when it does not exist.
 */
enum cf_rc cf_keyring_read_root_file(const char *path, uint8_t key[CF_ROOT_KEY_BYTES],
                                     struct cf_err *err);

/* Wipes and frees; NULL is a no-op. */
void cf_keyring_free(struct cf_keyring *kr);

/* Copies the root key into key, for sealing it under another key (Shamir shares, `coffer
 * operator init` and `rekey`). The caller wipes key. */
void cf_keyring_export_root(struct cf_keyring *kr, uint8_t key[CF_ROOT_KEY_BYTES]);

/* A check blob (a known text sealed by the root key), kept in the store so that a start with the
 * wrong root key fails at once with a clear message instead of at the first read. *check is
 * malloc'd; the caller frees it. */
enum cf_rc cf_keyring_make_check(struct cf_keyring *kr, uint8_t **check, size_t *check_len,
                                 struct cf_err *err);
/* CF_ECRYPTO when check was not made by this root key. */
enum cf_rc cf_keyring_verify_check(struct cf_keyring *kr, const uint8_t *check, size_t check_len,
                                   struct cf_err *err);

/* Generates a project data key and returns it wrapped by the root key (malloc'd; caller frees). */
enum cf_rc cf_keyring_new_project_key(struct cf_keyring *kr, const char *project_id,
                                      uint8_t **wrapped, size_t *wrapped_len, struct cf_err *err);

/* Long-lived server keys other than project keys (the audit key): made with
 * cf_keyring_new_project_key under a label that is not a project id (e.g. "~audit"), stored
 * wrapped, rewrapped with cf_keyring_rewrap on root key rotation like a project key. This unwraps
 * one into out (CF_KEYRING_KEY_BYTES; the caller keeps it in locked memory and wipes it).
 * CF_ECRYPTO when it was not wrapped by this root key under this label. */
enum cf_rc cf_keyring_unwrap_key(struct cf_keyring *kr, const char *label, const uint8_t *wrapped,
                                 size_t wrapped_len, uint8_t out[CF_KEYRING_KEY_BYTES],
                                 struct cf_err *err);

/* Unwraps with `from` and rewraps with `to` (root key rotation). *out is malloc'd; the caller frees
 * it. */
enum cf_rc cf_keyring_rewrap(struct cf_keyring *from, struct cf_keyring *to, const char *project_id,
                             const uint8_t *wrapped, size_t wrapped_len, uint8_t **out,
                             size_t *out_len, struct cf_err *err);

/* Seals n plaintext bytes with the project key (given wrapped) and ad. *sealed (nonce || ciphertext
 * || tag) is malloc'd; the caller frees it (it holds no plaintext). */
enum cf_rc cf_keyring_seal(struct cf_keyring *kr, const uint8_t *wrapped, size_t wrapped_len,
                           const struct cf_seal_ad *ad, const void *plain, size_t n,
                           uint8_t **sealed, size_t *sealed_len, struct cf_err *err);

/* Opens a sealed value, appending the plaintext to out (which the caller must release with
 * cf_buf_release_wipe). CF_ECRYPTO when the ciphertext, key or associated data do not match. */
enum cf_rc cf_keyring_open(struct cf_keyring *kr, const uint8_t *wrapped, size_t wrapped_len,
                           const struct cf_seal_ad *ad, const uint8_t *sealed, size_t sealed_len,
                           struct cf_buf *out, struct cf_err *err);

/* Room for the associated data of one value: a label, the project and environment ids, the folder
 * path, the key name and the version (what a store can hold, with room to spare). */
#define CF_KEYRING_AD_MAX 4096

/* Opens many values of one project and environment, for a read of many secrets: the project key
 * is unwrapped (or taken from the cache) once, and the associated data's fixed part (label, project
 * id, environment id) written once. Embedded by the caller: cf_keyring_opener_init, then any number
 * of cf_keyring_opener_open, then cf_keyring_opener_release, which wipes the key (safe on a zeroed
 * opener and after a failed init). The fields are private. One opener serves one thread. */
struct cf_keyring_opener {
    uint8_t key[CF_KEYRING_KEY_BYTES];
    uint8_t ad[CF_KEYRING_AD_MAX];
    size_t prefix_len; /* bytes of ad that every value of the project and environment shares */
    bool ready;
};

/* Prepares o for values of project_id (whose data key is given wrapped) and env_id. CF_ECRYPTO when
 * the wrapped key does not open, CF_ETOOLARGE when the ids do not fit. */
enum cf_rc cf_keyring_opener_init(struct cf_keyring_opener *o, struct cf_keyring *kr,
                                  const uint8_t *wrapped, size_t wrapped_len,
                                  const char *project_id, const char *env_id, struct cf_err *err);

/* cf_keyring_open for the value of key at path, version version, in o's project and environment:
 * the plaintext is appended to out (released by the caller with cf_buf_release_wipe). */
enum cf_rc cf_keyring_opener_open(struct cf_keyring_opener *o, const char *path, const char *key,
                                  int64_t version, const uint8_t *sealed, size_t sealed_len,
                                  struct cf_buf *out, struct cf_err *err);

/* Wipes o's key. */
void cf_keyring_opener_release(struct cf_keyring_opener *o);

/* Derives a subkey (CF_SUBKEY_BYTES) of the root key for one purpose (e.g. "access-token" signing),
 * so that no other key needs storing. context is a short ASCII label; the same label always gives
 * the same key for the same root key (rotating the root key changes it). The caller wipes out. */
void cf_keyring_derive(struct cf_keyring *kr, const char *context, uint8_t out[CF_SUBKEY_BYTES]);

/* Drops a project's cached data key (after the project is deleted). */
void cf_keyring_forget(struct cf_keyring *kr, const char *project_id);

#endif
