/* Data-directory start-up shared by the server and operator commands (see boot.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "server/boot.h"
#include "core/seal.h"
#include "server/autounseal.h"
#include "server/pkcs11seal.h"
#include "crypto/shamir.h"
#include "util/log.h"
#include "util/banned.h"

#define META_ROOT_CHECK CF_SEAL_META_ROOT_CHECK
#define NEW_KEY_FILE CF_ROOT_KEY_FILE ".new"

const char *cf_boot_setting(const char *flag, const char *env, const char *def)
{
    if (flag)
        return flag;
    const char *v = env ? getenv(env) : NULL;
    return v && *v ? v : def;
}

static enum cf_rc lock_dir(const char *data_dir, int *fd_out, struct cf_err *err)
{
    char path[4096];
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST)
        return cf_err_set(err, CF_EIO, "cannot create data directory '%s': %s", data_dir,
                          strerror(errno));
    snprintf(path, sizeof(path), "%s/coffer.lock", data_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return cf_err_set(err, CF_EIO, "cannot open '%s': %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return cf_err_set(err, CF_EUNAVAIL,
                          "data directory '%s' is in use by another coffer server or operator "
                          "command",
                          data_dir);
    }
    *fd_out = fd;
    return CF_OK;
}

/* Verifies the root key against the store's check; when it fails and an interrupted rotation left
 * root.key.new behind that does match, finishes the rotation by promoting it. */
static enum cf_rc verify_root_key(const struct cf_boot_opts *opts, struct cf_boot *boot,
                                  struct cf_err *err)
{
    struct cf_store *st = boot->store;
    uint8_t *check = NULL;
    size_t check_len = 0;
    char new_path[4096], cur_path[4096];
    uint8_t key[CF_ROOT_KEY_BYTES];
    struct cf_keyring *candidate = NULL;
    enum cf_rc rc;

    snprintf(new_path, sizeof(new_path), "%s/%s", opts->data_dir, NEW_KEY_FILE);
    snprintf(cur_path, sizeof(cur_path), "%s/%s", opts->data_dir, CF_ROOT_KEY_FILE);

    rc = cf_store_meta_get(st, META_ROOT_CHECK, &check, &check_len, err);
    if (rc == CF_ENOTFOUND && opts->restoring) {
        rc = CF_OK; /* the backup brings its own check, compared before it is restored */
        goto out;
    }
    if (rc == CF_ENOTFOUND) {
        rc = cf_keyring_make_check(boot->keyring, &check, &check_len, err);
        if (rc == CF_OK)
            rc = cf_store_meta_insert(st, META_ROOT_CHECK, check, check_len, err);
        if (rc == CF_EEXIST) { /* another process initialised the store at the same moment */
            free(check);
            check = NULL;
            rc = cf_store_meta_get(st, META_ROOT_CHECK, &check, &check_len, err);
        } else {
            goto out;
        }
    }
    if (rc != CF_OK)
        goto out;
    rc = cf_keyring_verify_check(boot->keyring, check, check_len, err);
    if (rc == CF_OK) {
        if (!opts->root_key_b64 && !opts->root_key && !opts->beside_server)
            unlink(new_path); /* a rotation that never reached the store */
        goto out;
    }
    if (opts->root_key_b64 || opts->root_key || opts->beside_server ||
        cf_keyring_read_root_file(new_path, key, NULL) != CF_OK)
        goto out;
    /* The store was rewrapped but the key file not yet replaced: finish the rotation. */
    if (cf_keyring_from_bytes(key, &candidate, NULL) == CF_OK &&
        cf_keyring_verify_check(candidate, check, check_len, NULL) == CF_OK &&
        rename(new_path, cur_path) == 0) {
        cf_log_warn("finished an interrupted root key rotation: %s replaced %s", NEW_KEY_FILE,
                    CF_ROOT_KEY_FILE);
        cf_keyring_free(boot->keyring);
        boot->keyring = candidate;
        candidate = NULL;
        cf_err_clear(err);
        rc = CF_OK;
    }
out:
    sodium_memzero(key, sizeof(key));
    cf_keyring_free(candidate);
    free(check);
    return rc;
}

/* Sets boot->sealed when the store's root key is split into shares (a seal record in meta), and
 * refuses what cannot go with that: a caller that needs the key now, COFFER_ROOT_KEY. A root.key
 * left beside such a store (operator init stopped between recording the shares and removing the
 * file) is removed: it is the very key the shares guard. */
static enum cf_rc check_sealed(const struct cf_boot_opts *opts, struct cf_boot *boot,
                               struct cf_err *err)
{
    uint8_t *record = NULL;
    size_t record_len = 0;
    char path[4096];
    enum cf_rc rc = cf_store_meta_get(boot->store, CF_AUTOUNSEAL_META, &record, &record_len, err);
    free(record);
    record = NULL;
    if (rc == CF_ENOTFOUND) {
        rc = cf_store_meta_get(boot->store, CF_PKCS11SEAL_META, &record, &record_len, err);
        boot->pkcs11 = rc == CF_OK;
        free(record);
        record = NULL;
    }
    if (rc == CF_OK)
        boot->auto_unseal = true;
    else if (rc == CF_ENOTFOUND)
        rc = cf_store_meta_get(boot->store, CF_SEAL_META_SHAMIR, &record, &record_len, err);
    free(record);
    if (rc == CF_ENOTFOUND) {
        cf_err_clear(err);
        return CF_OK;
    }
    if (rc != CF_OK)
        return rc;
    if (!opts->allow_sealed)
        return cf_err_set(err, CF_ESEALED,
                          "the root key of this store is %s: this command needs the key itself "
                          "and cannot run on it",
                          cf_boot_seal_holder(boot));
    if (opts->root_key_b64)
        return cf_err_set(err, CF_EINVAL,
                          "COFFER_ROOT_KEY is set but the root key of this store is %s: unset it",
                          cf_boot_seal_holder(boot));
    snprintf(path, sizeof(path), "%s/%s", opts->data_dir, CF_ROOT_KEY_FILE);
    if (unlink(path) == 0)
        cf_log_warn("removed '%s': the root key of this store is kept sealed", path);
    boot->sealed = true;
    return CF_OK;
}

enum cf_rc cf_boot_unseal(struct cf_boot *boot, const uint8_t key[CF_ROOT_KEY_BYTES],
                          struct cf_err *err)
{
    struct cf_keyring *kr = NULL;
    uint8_t *check = NULL;
    size_t check_len = 0;
    enum cf_rc rc = cf_keyring_from_bytes(key, &kr, err);
    if (rc == CF_OK)
        rc = cf_store_meta_get(boot->store, META_ROOT_CHECK, &check, &check_len, err);
    if (rc == CF_OK)
        rc = cf_keyring_verify_check(kr, check, check_len, err);
    free(check);
    if (rc != CF_OK) {
        cf_keyring_free(kr);
        return rc;
    }
    cf_keyring_free(boot->keyring);
    boot->keyring = kr;
    return CF_OK;
}

enum cf_rc cf_boot_open(const struct cf_boot_opts *opts, struct cf_boot *out, struct cf_err *err)
{
    enum cf_rc rc;
    memset(out, 0, sizeof(*out));
    out->lock_fd = -1;

    if (!opts->beside_server) {
        rc = lock_dir(opts->data_dir, &out->lock_fd, err);
        if (rc != CF_OK)
            return rc;
    }
    if (opts->db)
        snprintf(out->db_path, sizeof(out->db_path), "%s", opts->db);
    else
        snprintf(out->db_path, sizeof(out->db_path), "%s/coffer.db", opts->data_dir);

    cf_store_dsn_shown(out->db_path, out->db_shown, sizeof(out->db_shown));
    struct cf_store_config config = {.dsn = out->db_path,
                                     .busy_timeout_ms = opts->db_timeout_ms,
                                     .pool_size = opts->db_pool_size,
                                     .must_exist = opts->beside_server};
    rc = cf_store_open(&config, &out->store, err);
    if (rc != CF_OK)
        goto fail;
    rc = check_sealed(opts, out, err);
    if (rc != CF_OK)
        goto fail;
    if (out->sealed)
        return CF_OK;
    rc = opts->root_key ? cf_keyring_from_bytes(opts->root_key, &out->keyring, err)
                        : cf_keyring_load(opts->data_dir, opts->root_key_b64, opts->create_root_key,
                                          &out->keyring, err);
    if (rc != CF_OK)
        goto fail;
    rc = verify_root_key(opts, out, err);
    if (rc != CF_OK)
        goto fail;
    return CF_OK;
fail:
    cf_boot_close(out);
    return rc;
}

/* Reads threshold shares, one a line, from standard input into shares. */
static enum cf_rc read_current_shares(unsigned threshold, uint8_t (*shares)[CF_SHARE_BYTES],
                                      struct cf_err *err)
{
    char line[512];
    unsigned got = 0;
    enum cf_rc rc = CF_OK;
    while (got < threshold && fgets(line, sizeof(line), stdin)) {
        size_t len = strcspn(line, "\r\n");
        if (len == 0)
            continue;
        rc = cf_shamir_share_decode(line, len, shares[got], err);
        if (rc != CF_OK)
            break;
        got++;
    }
    sodium_memzero(line, sizeof(line));
    if (rc == CF_OK && got < threshold)
        rc = cf_err_set(err, CF_EINVAL,
                        "%u of the %u current shares needed were given on standard input", got,
                        threshold);
    return rc;
}

/* Reads the threshold of shares of a Shamir record from standard input and opens the record into
 * root (the caller wipes it). CF_ECRYPTO when they do not open it. */
static enum cf_rc open_with_shares(const uint8_t *record, size_t record_len,
                                   uint8_t root[CF_ROOT_KEY_BYTES], struct cf_err *err)
{
    unsigned n = 0, threshold = 0;
    uint8_t(*current)[CF_SHARE_BYTES] = sodium_malloc(CF_SHAMIR_MAX_SHARES * CF_SHARE_BYTES);
    if (!current)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    enum cf_rc rc = cf_shamir_record_info(record, record_len, &n, &threshold, err);
    if (rc == CF_OK)
        rc = read_current_shares(threshold, current, err);
    if (rc == CF_OK)
        rc = cf_shamir_open(record, record_len, (const uint8_t(*)[CF_SHARE_BYTES])current,
                            threshold, root, err);
    sodium_free(current); /* wipes */
    return rc;
}

enum cf_rc cf_boot_unseal_shares(struct cf_boot *boot, uint8_t **record, size_t *record_len,
                                 struct cf_err *err)
{
    uint8_t root[CF_ROOT_KEY_BYTES];
    enum cf_rc rc = cf_store_meta_get(boot->store, CF_SEAL_META_SHAMIR, record, record_len, err);
    if (rc == CF_OK)
        rc = open_with_shares(*record, *record_len, root, err);
    if (rc == CF_ECRYPTO)
        cf_err_set(err, CF_EINVAL,
                   "the shares given do not unseal this store: at least one of them is wrong");
    if (rc == CF_OK)
        rc = cf_boot_unseal(boot, root, err);
    sodium_memzero(root, sizeof(root));
    return rc;
}

enum cf_rc cf_boot_open_record(const char *meta_name, const uint8_t *record, size_t record_len,
                               uint8_t key[CF_ROOT_KEY_BYTES], struct cf_err *err)
{
    enum cf_rc rc;
    if (strcmp(meta_name, CF_SEAL_META_SHAMIR) == 0) {
        rc = open_with_shares(record, record_len, key, err);
        if (rc == CF_ECRYPTO)
            cf_err_set(err, CF_EINVAL,
                       "the shares given do not open the backup's seal record: at least one of "
                       "them is wrong (or not of the store the backup was taken from), or the "
                       "record was altered");
    } else if (strcmp(meta_name, CF_PKCS11SEAL_META) == 0) {
        rc = cf_pkcs11seal_unwrap(record, record_len, key, err);
    } else if (strcmp(meta_name, CF_AUTOUNSEAL_META) == 0) {
        rc = cf_autounseal_unwrap(record, record_len, NULL, key, err);
    } else {
        rc = cf_err_set(err, CF_EVALIDATION,
                        "the seal record's kind '%s' is not one this version of Coffer knows",
                        meta_name);
    }
    if (rc != CF_OK)
        sodium_memzero(key, CF_ROOT_KEY_BYTES);
    return rc;
}

enum cf_rc cf_boot_auto_unseal(struct cf_boot *boot, struct cf_err *err)
{
    uint8_t *record = NULL;
    size_t record_len = 0;
    uint8_t key[CF_ROOT_KEY_BYTES];
    enum cf_rc rc =
        cf_store_meta_get(boot->store, boot->pkcs11 ? CF_PKCS11SEAL_META : CF_AUTOUNSEAL_META,
                          &record, &record_len, err);
    sodium_memzero(key, sizeof(key));
    if (rc == CF_OK)
        rc = boot->pkcs11 ? cf_pkcs11seal_unwrap(record, record_len, key, err)
                          : cf_autounseal_unwrap(record, record_len, NULL, key, err);
    if (rc == CF_OK)
        rc = cf_boot_unseal(boot, key, err);
    sodium_memzero(key, sizeof(key));
    free(record);
    return rc;
}

enum cf_rc cf_boot_unseal_offline(struct cf_boot *boot, struct cf_err *err)
{
    uint8_t *record = NULL;
    size_t record_len = 0;
    enum cf_rc rc;
    if (!boot->sealed || boot->keyring)
        return CF_OK;
    if (boot->auto_unseal)
        return cf_boot_auto_unseal(boot, err);
    rc = cf_boot_unseal_shares(boot, &record, &record_len, err);
    free(record);
    return rc;
}

const char *cf_boot_seal_holder(const struct cf_boot *boot)
{
    if (boot->pkcs11)
        return "wrapped by a PKCS#11 token";
    return boot->auto_unseal ? "wrapped by Azure Key Vault" : "split into unseal shares";
}

void cf_boot_close(struct cf_boot *boot)
{
    if (boot->store)
        cf_store_close(boot->store);
    cf_keyring_free(boot->keyring);
    if (boot->lock_fd >= 0)
        close(boot->lock_fd);
    sodium_memzero(boot->db_path, sizeof(boot->db_path));
    boot->store = NULL;
    boot->keyring = NULL;
    boot->lock_fd = -1;
}
