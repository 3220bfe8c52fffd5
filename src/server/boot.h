/* Opening a data directory for the commands that own it (`coffer server`, `coffer operator ...`):
 * the exclusive lock that keeps a second server or an offline operator command out, the root key
 * (with recovery of an interrupted root-key rotation), the store, and the check that the root key
 * belongs to the store. */
#ifndef CF_SERVER_BOOT_H
#define CF_SERVER_BOOT_H

#include "crypto/keyring.h"
#include "store/store.h"
#include "util/err.h"

struct cf_boot_opts {
    const char *data_dir;     /* created (0700) when missing */
    const char *db;           /* NULL: <data_dir>/coffer.db */
    int db_pool_size;         /* PostgreSQL connections at most; 0: the store's default */
    int db_timeout_ms;        /* 0: the store's default */
    const char *root_key_b64; /* COFFER_ROOT_KEY, or NULL for <data_dir>/root.key */
    bool create_root_key;
    /* Beside a running server: the data directory's lock is not taken (the server holds it) and an
     * interrupted root key rotation is neither finished nor cleaned up. Only for commands whose
     * every write is one transaction the server tolerates (rotate-admin-token). */
    bool beside_server;
    /* A restore into this store: an empty store gets no root key check (the backup's own, checked
     * against the root key before anything is copied, arrives with its rows). */
    bool restoring;
    /* A store whose root key is split into shares (core/seal.h) opens sealed: no keyring, and
     * cf_boot.sealed set (the server unseals it later with cf_boot_unseal). Without this, such a
     * store is refused with a message saying so. */
    bool allow_sealed;
    /* The root key in hand (a restore of a sealed store's backup: the key opened from the
     * backup's seal record, cf_boot_open_record), used instead of root.key or COFFER_ROOT_KEY and
     * never written anywhere; borrowed, the caller wipes it. NULL: the usual sources. */
    const uint8_t *root_key;
};

struct cf_boot {
    int lock_fd;
    char db_path[4096];         /* may hold a PostgreSQL password: wiped by cf_boot_close */
    char db_shown[4096];        /* db_path without a password, for messages */
    struct cf_keyring *keyring; /* NULL while sealed */
    struct cf_store *store;
    bool sealed;      /* the store's root key is split into shares or wrapped by Key Vault */
    bool auto_unseal; /* sealed, by Azure Key Vault (server/autounseal.h) or a PKCS#11 token */
    bool pkcs11;      /* auto_unseal by a PKCS#11 token (server/pkcs11seal.h) */
};

/* Locks the data directory (unless opts->beside_server), loads the root key, opens the store and
 * verifies (or, on a new store, records) the root key check. On failure nothing stays open. */
enum cf_rc cf_boot_open(const struct cf_boot_opts *opts, struct cf_boot *out, struct cf_err *err);

/* Takes key (the root key rebuilt from shares; copied, the caller wipes it) into use as
 * boot->keyring once it passes the store's root key check (CF_ECRYPTO otherwise). */
enum cf_rc cf_boot_unseal(struct cf_boot *boot, const uint8_t key[CF_ROOT_KEY_BYTES],
                          struct cf_err *err);

/* For a store sealed by shares: reads its seal record into *record (malloc'd; the caller frees
 * it), T current shares from standard input (one a line), and takes the root key they rebuild into
 * use as boot->keyring. CF_EINVAL for too few shares or shares that do not open the record. */
enum cf_rc cf_boot_unseal_shares(struct cf_boot *boot, uint8_t **record, size_t *record_len,
                                 struct cf_err *err);

/* For a store that unseals itself: unwraps the root key with Azure Key Vault or the PKCS#11 token
 * its record names and takes it into use as boot->keyring; their errors otherwise. */
enum cf_rc cf_boot_auto_unseal(struct cf_boot *boot, struct cf_err *err);

/* Opens a seal record that is not in a store (the one a backup's manifest carries), of the kind
 * meta_name names (CF_SEAL_META_SHAMIR, CF_AUTOUNSEAL_META or CF_PKCS11SEAL_META), into key (the
 * caller wipes it): T shares read from standard input for shares, unwrapped by Key Vault or the
 * PKCS#11 token with the server's environment otherwise. CF_EINVAL for too few shares or shares
 * that do not open the record, CF_EVALIDATION for an unknown meta_name; the unwraps' errors. */
enum cf_rc cf_boot_open_record(const char *meta_name, const uint8_t *record, size_t record_len,
                               uint8_t key[CF_ROOT_KEY_BYTES], struct cf_err *err);

/* Takes a sealed store's root key into use for an offline command, as the server would: shares
 * from standard input, or unwrapped by Key Vault or the PKCS#11 token. CF_OK at once when the
 * store is not sealed or already unsealed. */
enum cf_rc cf_boot_unseal_offline(struct cf_boot *boot, struct cf_err *err);

/* What keeps the root key of a sealed store, for messages ("split into unseal shares", ...). */
const char *cf_boot_seal_holder(const struct cf_boot *boot);

/* Closes the store, wipes the keyring and releases the lock. */
void cf_boot_close(struct cf_boot *boot);

/* The value of flag, else of the environment variable env, else def. */
const char *cf_boot_setting(const char *flag, const char *env, const char *def);

#endif
