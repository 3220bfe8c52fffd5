/* `coffer operator ...`: offline maintenance of a data directory (the server must be stopped; the
 * data-dir lock enforces it).
 *
 * rotate-root-key: generates a new root key and rewraps every project's data key with it. Values
 * are not touched (they are sealed by the project keys). Crash-safe order: the new key is first
 * written to root.key.new, then the store is rewrapped in one transaction, then root.key.new
 * replaces root.key. A crash between the last two steps is finished at the next start (see
 * server/boot.c).
 *
 * rotate-admin-token: stores the keyed hash (auth/admin.h) of a new random admin token and prints
 * the token once. It runs beside a running server (the server reads the hash on every request, so
 * the old token stops working at its next request, on every node of a shared store): it does not
 * take the data directory's lock, and its only write is one transaction.
 *
 * admin-token disable|enable|status: the admin token's break-glass switch (core/admin_token.h),
 * written to the store directly beside a running server (which reads it on every use of the
 * token): on the server host, an operator re-enables the token for an organisation whose owners
 * cannot sign in any more (a lost identity provider). Disabling keeps the API's rule: refused
 * unless an active owner can sign in.
 *
 * init --shares N --threshold T: splits the root key's custody into Shamir shares (core/seal.h,
 * crypto/shamir.h): prints the shares once, records the seal in the store, and only then removes
 * root.key; the server starts sealed from then on. rekey: the same with new shares, given a
 * threshold of the current ones on standard input; it runs beside a running server (one
 * transaction, which the server reads at its next unseal). unseal and seal are clients of a
 * running server (cli/unseal.h).
 *
 * migrate --from DSN --to DSN: copies a whole store into an empty one (SQLite to PostgreSQL, or
 * back), ciphertexts as they are, and verifies every table's row count and checksum before
 * committing (see cf_store_copy). */
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include <pwd.h>
#include <unistd.h>

#include <sodium.h>

#include "net/http.h"
#include "server/autounseal.h"
#include "server/pkcs11seal.h"
#include "server/boot.h"
#include "auth/admin.h"
#include "core/admin_token.h"
#include "core/auditlog.h"
#include "crypto/serverkey.h"
#include "crypto/token.h"
#include "server/backup.h"
#include "server/commands.h"
#include "cli/common.h"
#include "cli/unseal.h"
#include "core/seal.h"
#include "crypto/shamir.h"
#include "crypto/sharewrap.h"
#include "util/str.h"
#include "util/banned.h"

static const char usage_text[] =
    "usage: coffer operator rotate-root-key [--data-dir DIR] [--db PATH]\n"
    "       coffer operator rotate-admin-token [--data-dir DIR] [--db PATH]\n"
    "       coffer operator admin-token disable|enable|status [--data-dir DIR] [--db PATH]\n"
    "       coffer operator migrate --from DSN --to DSN\n"
    "       coffer operator backup --to FILE | --verify FILE [--data-dir DIR] [--db PATH]\n"
    "       coffer operator restore --from FILE [--data-dir DIR] [--db PATH]\n"
    "       coffer operator init --shares N --threshold T [--data-dir DIR] [--db PATH]\n"
    "       coffer operator init --azure-key URL --azure-tenant T --azure-client-id C\n"
    "                            [--azure-authority URL] [--data-dir DIR] [--db PATH]\n"
    "       coffer operator init --azure-key URL --azure-managed-identity [--azure-client-id C]\n"
    "                            [--azure-imds-endpoint URL] [--data-dir DIR] [--db PATH]\n"
    "       coffer operator rekey --shares N --threshold T [--data-dir DIR] [--db PATH]\n"
    "       coffer operator unseal [--reset] [--domain URL]\n"
    "       coffer operator seal [--token T] [--domain URL]\n"
    "\n"
    "Offline maintenance (stop the server first).\n"
    "\n"
    "  rotate-root-key   generate a new root key and rewrap every project key with it.\n"
    "                    With DIR/root.key the file is replaced; with COFFER_ROOT_KEY set, the "
    "new\n"
    "                    key is printed on stdout (set COFFER_ROOT_KEY to it before the next "
    "start).\n"
    "  rotate-admin-token  replace the admin token with a new random one, printed once on\n"
    "                    stdout; the old one stops working at once. The server may keep running.\n"
    "  admin-token       the bootstrap admin token's break-glass switch: disable it (refused\n"
    "                    unless an active owner can sign in), enable it again (for an\n"
    "                    organisation that lost its owners' sign-in), or show its state. The\n"
    "                    server may keep running; it reads the switch on every use.\n"
    "  init              split the root key into N unseal shares, T of which unseal the server\n"
    "                    (2 <= T <= N <= 32): prints them once on stdout, then removes\n"
    "                    DIR/root.key. The server starts sealed from then on.\n"
    "  init --azure-key  wrap the root key with an Azure Key Vault RSA key instead, so that the\n"
    "                    server unseals itself (the client secret comes from\n"
    "                    COFFER_SEAL_AZURE_CLIENT_SECRET); a store sealed by shares moves to it\n"
    "                    given T of its shares on standard input.\n"
    "  init --pkcs11-module LIB --pkcs11-token-label L --pkcs11-key-label K\n"
    "                    encrypt the root key with the AES key K of the PKCS#11 token L (an HSM)\n"
    "                    instead, so that the server unseals itself (the user PIN comes from\n"
    "                    COFFER_SEAL_PKCS11_PIN or the file named by "
    "COFFER_SEAL_PKCS11_PIN_FILE);\n"
    "                    from a file key, or from shares given T of them on standard input.\n"
    "  init/rekey --share-keys KEY,KEY,...  encrypt each share to its holder's public key\n"
    "                    (one per share, in order), each KEY one of: an age recipient\n"
    "                    (age1..., inline or in a file), an OpenPGP public key file, or an RSA\n"
    "                    PEM public key file. The holder decrypts theirs with 'age -d',\n"
    "                    'gpg --decrypt' or 'openssl pkeyutl' (docs/operations.md).\n"
    "  rekey             make new shares (the old ones stop working), given T of the current\n"
    "                    ones on standard input, one a line. The server may keep running.\n"
    "  unseal, seal      talk to a running server: see 'coffer operator unseal --help'\n"
    "  --data-dir DIR    data directory (COFFER_DATA_DIR, default ./coffer-data)\n"
    "  --db PATH         SQLite database (COFFER_DB, default DIR/coffer.db)\n"
    "  migrate           copy every row of the store at --from (sqlite:PATH or a file path, or\n"
    "                    postgres://...) into the empty store at --to, sealed values unchanged "
    "(the\n"
    "                    root key stays the same), then compare every table's row count and "
    "checksum\n"
    "                    before committing: on any difference nothing is written. Stop the "
    "servers\n"
    "                    of both first.\n"
    "  backup --to FILE  write an encrypted backup of the store while servers keep serving: a\n"
    "                    snapshot of one instant, with a manifest of every table's rows and\n"
    "                    checksum and the audit chain's head (docs/operations.md). On a\n"
    "                    sealed store, T shares on standard input (one a line), or the key\n"
    "                    unwrapped by Key Vault or the PKCS#11 token as the server does.\n"
    "  backup --verify FILE  check a backup with this root key without restoring it (with\n"
    "                    no root key file, the sealed store's key taken as backup takes it).\n"
    "  restore --from FILE  check a backup, then restore it into the empty store at --db (or\n"
    "                    DIR/coffer.db), compare every table and verify the audit chain.\n"
    "                    DIR must hold the root key the backup was made with.\n";

struct migrate_totals {
    int64_t tables, rows;
};

/* The bytes of a table's checksum shown in the report: enough for a person to compare. */
#define CHECKSUM_SHOWN_BYTES 8

/* The report callback of cf_store_copy (checksum: the table's whole checksum, as it declares). */
static void report_table(void *ctx, const char *table, int64_t rows, const uint8_t *checksum)
{
    struct migrate_totals *totals = ctx;
    char hex[2 * CHECKSUM_SHOWN_BYTES + 1];
    sodium_bin2hex(hex, sizeof(hex), checksum, CHECKSUM_SHOWN_BYTES);
    printf("  %-28s %8lld rows  checksum %s  identical\n", table, (long long)rows, hex);
    totals->tables++;
    totals->rows += rows;
}

static int migrate(const char *from, const char *to)
{
    struct cf_store *src = NULL, *dst = NULL;
    struct migrate_totals totals = {0};
    char from_shown[1024], to_shown[1024];
    struct cf_err err;
    int status = 1;

    cf_err_clear(&err);
    cf_store_dsn_shown(from, from_shown, sizeof(from_shown));
    cf_store_dsn_shown(to, to_shown, sizeof(to_shown));
    if (strcmp(from, to) == 0) {
        fprintf(stderr, "coffer operator migrate: --from and --to name the same database\n");
        return 2;
    }
    struct cf_store_config from_config = {.dsn = from, .must_exist = true}, to_config = {.dsn = to};
    if (cf_store_open(&from_config, &src, &err) != CF_OK) {
        fprintf(stderr, "coffer operator migrate: --from %s: %s\n", from_shown, err.msg);
        goto out;
    }
    if (cf_store_open(&to_config, &dst, &err) != CF_OK) {
        fprintf(stderr, "coffer operator migrate: --to %s: %s\n", to_shown, err.msg);
        goto out;
    }
    printf("copying %s to %s\n", from_shown, to_shown);
    if (cf_store_copy(src, dst, report_table, &totals, &err) != CF_OK) {
        fprintf(stderr, "coffer operator migrate: %s\n", err.msg);
        goto out;
    }
    printf("copied %lld rows in %lld tables; every table verified. Start the servers with --db %s "
           "and the same root key.\n",
           (long long)totals.rows, (long long)totals.tables, to_shown);
    status = 0;
out:
    if (dst)
        cf_store_close(dst);
    if (src)
        cf_store_close(src);
    return status;
}

static int rotate_root_key(const struct cf_boot_opts *opts)
{
    struct cf_boot boot;
    struct cf_err err;
    struct cf_project_list projects = {0};
    struct cf_key_update *updates = NULL;
    struct cf_keyring *next = NULL;
    uint8_t key[CF_ROOT_KEY_BYTES];
    uint8_t *check = NULL;
    size_t check_len = 0;
    char path[4096], new_path[4096];
    int status = 1;

    cf_err_clear(&err);
    cf_keyring_generate_root(key);
    if (cf_boot_open(opts, &boot, &err) != CF_OK) {
        fprintf(stderr, "coffer operator: %s\n", err.msg);
        sodium_memzero(key, sizeof(key));
        return 1;
    }
    struct cf_store *st = boot.store;
    if (cf_keyring_from_bytes(key, &next, &err) != CF_OK ||
        cf_keyring_make_check(next, &check, &check_len, &err) != CF_OK ||
        cf_store_project_list(st, &projects, &err) != CF_OK)
        goto out;
    updates = calloc(projects.n + cf_server_keys_n, sizeof(*updates));
    if (!updates) {
        cf_err_set(&err, CF_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < projects.n; i++) {
        uint8_t *wrapped = NULL;
        size_t wrapped_len = 0;
        if (cf_keyring_rewrap(boot.keyring, next, projects.items[i].id,
                              projects.items[i].wrapped_key, projects.items[i].wrapped_key_len,
                              &wrapped, &wrapped_len, &err) != CF_OK)
            goto out;
        updates[i].project_id = projects.items[i].id;
        updates[i].wrapped_key = wrapped;
        updates[i].wrapped_key_len = wrapped_len;
    }
    /* The server keys (crypto/serverkey.h: the audit key, the key sealing stored credentials) that
     * the server has made are rewrapped too. */
    size_t n_updates = projects.n;
    for (size_t k = 0; k < cf_server_keys_n; k++) {
        uint8_t *stored = NULL;
        size_t stored_len = 0;
        enum cf_rc found =
            cf_store_meta_get(st, cf_server_keys[k].meta, &stored, &stored_len, &err);
        if (found == CF_ENOTFOUND)
            continue;
        if (found != CF_OK)
            goto out;
        struct cf_key_update *u = &updates[n_updates];
        uint8_t *wrapped = NULL;
        size_t wrapped_len = 0;
        enum cf_rc rewrapped = cf_keyring_rewrap(boot.keyring, next, cf_server_keys[k].label,
                                                 stored, stored_len, &wrapped, &wrapped_len, &err);
        free(stored);
        if (rewrapped != CF_OK)
            goto out;
        u->meta_name = cf_server_keys[k].meta;
        u->project_id = cf_server_keys[k].label;
        u->wrapped_key = wrapped;
        u->wrapped_key_len = wrapped_len;
        n_updates++;
    }
    if (!opts->root_key_b64 &&
        cf_keyring_write_root_file(opts->data_dir, CF_ROOT_KEY_FILE ".new", key, &err) != CF_OK)
        goto out;
    if (opts->root_key_b64) {
        /* Printed before the commit: once the store is rewrapped, this is the only copy of the key.
         */
        char text[sodium_base64_ENCODED_LEN(CF_ROOT_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL)];
        sodium_bin2base64(text, sizeof(text), key, sizeof(key), sodium_base64_VARIANT_ORIGINAL);
        printf("%s\n", text);
        fflush(stdout);
        sodium_memzero(text, sizeof(text));
    }
    if (cf_store_rewrap_keys(st, updates, n_updates, check, check_len, &err) != CF_OK)
        goto out;
    if (opts->root_key_b64) {
        fprintf(stderr,
                "coffer operator: rewrapped %zu project key(s); set COFFER_ROOT_KEY to the "
                "key printed above before the next start\n",
                projects.n);
    } else {
        snprintf(path, sizeof(path), "%s/%s", opts->data_dir, CF_ROOT_KEY_FILE);
        snprintf(new_path, sizeof(new_path), "%s/%s.new", opts->data_dir, CF_ROOT_KEY_FILE);
        if (rename(new_path, path) != 0) {
            cf_err_set(&err, CF_EIO,
                       "the store was rewrapped but '%s' could not replace '%s'; the next start "
                       "finishes the rotation",
                       new_path, path);
            goto out;
        }
        fprintf(stderr, "coffer operator: rewrapped %zu project key(s); %s replaced\n", projects.n,
                path);
    }
    status = 0;
out:
    if (status != 0)
        fprintf(stderr, "coffer operator: %s\n", err.msg);
    for (size_t i = 0; updates && i < projects.n + cf_server_keys_n; i++) /* and server keys */
        free((void *)updates[i].wrapped_key);
    free(updates);
    free(check);
    cf_project_list_release(&projects);
    cf_keyring_free(next);
    sodium_memzero(key, sizeof(key));
    cf_boot_close(&boot);
    return status;
}

static int rotate_admin_token(const struct cf_boot_opts *opts)
{
    struct cf_boot boot;
    struct cf_admin_auth *admin = NULL;
    struct cf_err err;
    char token[CF_TOKEN_MAX];
    int status = 1;

    cf_err_clear(&err);
    if (cf_boot_open(opts, &boot, &err) != CF_OK) {
        fprintf(stderr, "coffer operator: %s\n", err.msg);
        return 1;
    }
    cf_token_new(CF_ADMIN_TOKEN_PREFIX, token, sizeof(token));
    if (cf_admin_auth_open(boot.store, boot.keyring, &admin, &err) == CF_OK &&
        cf_admin_token_store(admin, boot.store, token, strlen(token), false, &err) == CF_OK) {
        printf("admin token: %s\n", token);
        fflush(stdout);
        fprintf(stderr, "coffer operator: the admin token was replaced; the old one no longer "
                        "works. The new one is shown once (only its keyed hash is stored).\n");
        status = 0;
    } else {
        fprintf(stderr, "coffer operator: %s\n", err.msg);
    }
    sodium_memzero(token, sizeof(token));
    cf_admin_auth_free(admin);
    cf_boot_close(&boot);
    return status;
}

/* Records a switch made on the host in the audit log, as the API's switch is recorded: the actor
 * is the operator (the host account that ran the command), result "ok" before the switch is made
 * (a switch that cannot be recorded is not made) and "error" when making it then failed. The chain
 * is extended inside the store's transaction, so a server running on the same store meanwhile is
 * no obstacle; the head file is left to the server, whose next checkpoint covers this event. */
/* Records one event of an operator command on the server host (the account that ran it as the
 * actor) in the audit log, and waits for it to be stored. */
static enum cf_rc audit_operator(struct cf_boot *boot, const char *action, const char *result,
                                 const char *reason, struct cf_err *err)
{
    struct cf_audit_log_config config = {.fail_closed = true};
    struct cf_audit_log *log = NULL;
    struct cf_audit_event event;
    const struct passwd *account = getpwuid(getuid());

    memset(&event, 0, sizeof(event));
    cf_strlcpy(event.actor_kind, "operator", sizeof(event.actor_kind));
    cf_strlcpy(event.actor_name, account && account->pw_name ? account->pw_name : "operator",
               sizeof(event.actor_name));
    cf_strlcpy(event.action, action, sizeof(event.action));
    cf_strlcpy(event.result, result, sizeof(event.result));
    cf_strlcpy(event.reason, reason, sizeof(event.reason));
    enum cf_rc rc = cf_audit_log_open(boot->store, boot->keyring, &config, &log, err);
    if (rc == CF_OK)
        rc = cf_audit_record(log, &event, err);
    cf_audit_log_close(log);
    return rc;
}

static enum cf_rc audit_switch(struct cf_boot *boot, const char *action, const char *result,
                               struct cf_err *err)
{
    char name[64];
    snprintf(name, sizeof(name), "admin-token.%s", action);
    enum cf_rc rc =
        audit_operator(boot, name, result, "coffer operator admin-token on the server host", err);
    if (rc != CF_OK) {
        char why[sizeof(err->msg)];
        memcpy(why, err->msg, sizeof(why));
        return cf_err_set(err, rc, "the switch could not be audited, so it was not made: %s", why);
    }
    return CF_OK;
}

static int admin_token_switch(const struct cf_boot_opts *opts, const char *action)
{
    struct cf_boot boot;
    struct cf_err err;
    bool disabled = false;
    int64_t owners = 0;
    enum cf_rc rc;

    cf_err_clear(&err);
    if (cf_boot_open(opts, &boot, &err) != CF_OK) {
        fprintf(stderr, "coffer operator: %s\n", err.msg);
        return 1;
    }
    rc = cf_admin_token_usable_owners(boot.store, &owners, &err);
    if (rc == CF_OK && strcmp(action, "disable") == 0 && owners < 1)
        rc = cf_err_set(&err, CF_ECONFLICT,
                        "no active owner can sign in (with a password or single sign-on): the "
                        "admin token stays enabled so that nobody is locked out");
    if (rc == CF_OK && strcmp(action, "status") != 0) {
        rc = audit_switch(&boot, action, "ok", &err);
        if (rc == CF_OK) {
            rc = cf_admin_token_set_disabled(boot.store, strcmp(action, "disable") == 0, &err);
            if (rc != CF_OK) {
                struct cf_err ignored;
                cf_err_clear(&ignored);
                (void)audit_switch(&boot, action, "error", &ignored);
            }
        }
    }
    if (rc == CF_OK)
        rc = cf_admin_token_disabled(boot.store, &disabled, &err);
    if (rc == CF_OK)
        printf("admin token: %s (active owners who can sign in: %lld)\n",
               disabled ? "disabled" : "enabled", (long long)owners);
    else
        fprintf(stderr, "coffer operator admin-token %s: %s\n", action, err.msg);
    cf_boot_close(&boot);
    return rc == CF_OK ? 0 : 1;
}

/* Records a change of the seal once it is committed; a failure to record is reported but does not
 * undo it (the store holds the new seal already, and the shares were printed). */
static void audit_seal(struct cf_boot *boot, const char *action, const char *reason)
{
    struct cf_err err;
    cf_err_clear(&err);
    if (audit_operator(boot, action, "ok", reason, &err) != CF_OK)
        fprintf(stderr, "coffer operator: the change is made but could not be audited: %s\n",
                err.msg);
}

/* Parses --shares and --threshold. Returns 0, or 2 after printing why. */
static int parse_split(const char *sub, const char *shares_text, const char *threshold_text,
                       unsigned *shares, unsigned *threshold)
{
    long long n = 0, t = 0;
    if (!shares_text || !threshold_text) {
        fprintf(stderr, "coffer operator %s: --shares and --threshold are required\n", sub);
        return 2;
    }
    if (!cf_parse_int64(shares_text, 1, CF_SHAMIR_MAX_SHARES, &n) ||
        !cf_parse_int64(threshold_text, 1, CF_SHAMIR_MAX_SHARES, &t) || t > n ||
        (t == 1 && n != 1)) {
        fprintf(stderr,
                "coffer operator %s: --shares must be 1..%d and --threshold 2..shares (or both "
                "1)\n",
                sub, CF_SHAMIR_MAX_SHARES);
        return 2;
    }
    *shares = (unsigned)n;
    *threshold = (unsigned)t;
    return 0;
}

/* The holders' public keys of --share-keys (entries borrowed from argv; n 0: shares in clear). */
struct share_keys {
    const char *entries[CF_SHAMIR_MAX_SHARES];
    unsigned n;
};

/* Prints the shares, each encrypted to its holder's key when keys->n (then equal to n). */
static enum cf_rc print_shares(const uint8_t (*shares)[CF_SHARE_BYTES], unsigned n,
                               unsigned threshold, const struct share_keys *keys,
                               struct cf_err *err)
{
    char text[CF_SHARE_TEXT_MAX];
    char *sealed[CF_SHAMIR_MAX_SHARES] = {NULL};
    enum cf_sharewrap_kind kinds[CF_SHAMIR_MAX_SHARES];
    enum cf_rc rc = CF_OK;
    /* every share encrypted before the first is printed: a failure prints none */
    for (unsigned i = 0; i < keys->n && rc == CF_OK; i++) {
        cf_shamir_share_encode(shares[i], text);
        rc = cf_sharewrap_encrypt(keys->entries[i], text, strlen(text), &sealed[i], &kinds[i], err);
    }
    sodium_memzero(text, sizeof(text));
    if (rc != CF_OK)
        goto out;
    for (unsigned i = 0; i < n; i++) {
        if (!keys->n) {
            cf_shamir_share_encode(shares[i], text);
            printf("Unseal share %u: %s\n", i + 1, text);
        } else if (kinds[i] == CF_SHAREWRAP_RSA) {
            printf("Unseal share %u (encrypted to %s, RSA): %s\n", i + 1, keys->entries[i],
                   sealed[i]);
        } else {
            /* an armored block, on the lines that follow */
            printf("Unseal share %u (encrypted to %s, %s):\n%s", i + 1, keys->entries[i],
                   cf_sharewrap_kind_name(kinds[i]), sealed[i]);
        }
    }
    sodium_memzero(text, sizeof(text));
    printf("\nAny %u of these %u shares unseal the server. They are shown only this once: give "
           "each to a different person, and keep none of them beside the data directory.\n",
           threshold, n);
    if (fflush(stdout) != 0 || ferror(stdout))
        rc = cf_err_set(err, CF_EIO, "cannot write the shares on stdout: nothing was changed");
out:
    for (unsigned i = 0; i < keys->n; i++)
        free(sealed[i]);
    return rc;
}

/* Splits kr's root key into n shares, prints them, and records the seal: inserted (init, old
 * NULL) or swapped for old (rekey). */
static enum cf_rc split_and_record(struct cf_boot *boot, unsigned n, unsigned threshold,
                                   const struct share_keys *keys, const uint8_t *old,
                                   size_t old_len, struct cf_err *err)
{
    uint8_t root[CF_ROOT_KEY_BYTES];
    uint8_t record[CF_SHAMIR_RECORD_BYTES];
    uint8_t(*shares)[CF_SHARE_BYTES] = sodium_malloc(CF_SHAMIR_MAX_SHARES * CF_SHARE_BYTES);
    enum cf_rc rc;

    if (!shares)
        return cf_err_set(err, CF_ENOMEM, "cannot allocate locked memory for the shares");
    cf_keyring_export_root(boot->keyring, root);
    rc = cf_shamir_seal(root, n, threshold, shares, record, err);
    sodium_memzero(root, sizeof(root));
    if (rc != CF_OK)
        goto out;
    /* Printed before the commit: once the store holds the record, the shares are the only way to
     * the key, so a failed print must leave the store as it was. */
    rc = print_shares((const uint8_t(*)[CF_SHARE_BYTES])shares, n, threshold, keys, err);
    if (rc != CF_OK)
        goto out;
    rc = old ? cf_store_meta_swap(boot->store, CF_SEAL_META_SHAMIR, old, old_len, record,
                                  sizeof(record), err)
             : cf_store_meta_insert(boot->store, CF_SEAL_META_SHAMIR, record, sizeof(record), err);
    if (rc == CF_EEXIST || rc == CF_ECONFLICT)
        cf_err_set(err, rc,
                   "the seal changed meanwhile (another init or rekey): the shares printed above "
                   "are void");
    else if (rc != CF_OK)
        cf_err_set(err, rc, "the seal could not be recorded: the shares printed above are void");
out:
    sodium_free(shares);
    return rc;
}

/* After init recorded the seal: tells the operator to unset COFFER_ROOT_KEY, or removes
 * root.key (done: what init did, next: what the server does from now on). */
static void retire_key_source(const struct cf_boot_opts *opts, const char *done, const char *next)
{
    char path[4096];
    if (opts->root_key_b64) {
        fprintf(stderr,
                "coffer operator init: %s; unset COFFER_ROOT_KEY (and destroy its copies) "
                "before the next start\n",
                done);
        return;
    }
    snprintf(path, sizeof(path), "%s/%s", opts->data_dir, CF_ROOT_KEY_FILE);
    if (unlink(path) != 0)
        fprintf(stderr,
                "coffer operator init: %s but '%s' could not be removed; the next server start "
                "removes it\n",
                done, path);
    else
        fprintf(stderr, "coffer operator init: %s and '%s' removed; %s\n", done, path, next);
}

static int init_seal(const struct cf_boot_opts *opts, unsigned n, unsigned threshold,
                     const struct share_keys *keys)
{
    struct cf_boot boot;
    struct cf_err err;
    int status = 1;

    cf_err_clear(&err);
    if (cf_boot_open(opts, &boot, &err) != CF_OK) {
        if (err.rc == CF_ESEALED)
            fprintf(stderr, "coffer operator init: the root key of this store is split into shares "
                            "already (make new ones with 'coffer operator rekey')\n");
        else
            fprintf(stderr, "coffer operator init: %s\n", err.msg);
        return 1;
    }
    if (split_and_record(&boot, n, threshold, keys, NULL, 0, &err) != CF_OK)
        goto out;
    status = 0;
    audit_seal(&boot, "seal.init", "split into unseal shares by coffer operator init");
    retire_key_source(opts, "the seal is recorded", "the server starts sealed from now on");
out:
    if (status != 0)
        fprintf(stderr, "coffer operator init: %s\n", err.msg);
    cf_boot_close(&boot);
    return status;
}

static int rekey(const struct cf_boot_opts *opts, unsigned n, unsigned threshold,
                 const struct share_keys *keys)
{
    struct cf_boot boot;
    struct cf_err err;
    uint8_t *record = NULL;
    size_t record_len = 0;
    int status = 1;

    cf_err_clear(&err);
    if (cf_boot_open(opts, &boot, &err) != CF_OK) {
        fprintf(stderr, "coffer operator rekey: %s\n", err.msg);
        return 1;
    }
    if (!boot.sealed || boot.auto_unseal) {
        cf_err_set(&err, CF_EINVAL,
                   "the root key of this store is not split into shares (use 'coffer operator "
                   "init')");
        goto out;
    }
    if (cf_boot_unseal_shares(&boot, &record, &record_len, &err) != CF_OK ||
        split_and_record(&boot, n, threshold, keys, record, record_len, &err) != CF_OK)
        goto out;
    audit_seal(&boot, "seal.rekey", "new unseal shares by coffer operator rekey");
    fprintf(stderr, "coffer operator rekey: the new shares are recorded; the old ones unseal "
                    "nothing any more\n");
    status = 0;
out:
    if (status != 0)
        fprintf(stderr, "coffer operator rekey: %s\n", err.msg);
    free(record);
    cf_boot_close(&boot);
    return status;
}

/* init --azure-key or --pkcs11-*: the root key wrapped by Key Vault (azure set) or by a PKCS#11
 * token (pkcs11 set), from a file-keyed store (root.key then removed) or from one sealed by shares
 * (T of them on standard input; the share record replaced in the same transaction). */
static int init_wrapped(const struct cf_boot_opts *opts, const struct cf_autounseal_config *azure,
                        const struct cf_pkcs11seal_config *pkcs11)
{
    const char *holder = azure ? "Azure Key Vault" : "the PKCS#11 token";
    const char *meta = azure ? CF_AUTOUNSEAL_META : CF_PKCS11SEAL_META;
    struct cf_boot boot;
    struct cf_err err;
    uint8_t *old = NULL;
    size_t old_len = 0;
    uint8_t root[CF_ROOT_KEY_BYTES];
    char *record = NULL;
    int status = 1;

    cf_err_clear(&err);
    sodium_memzero(root, sizeof(root));
    /* as `coffer server --outbound-allow` reads it: the managed identity endpoint is link-local */
    const char *allow = getenv("COFFER_OUTBOUND_ALLOW");
    if ((allow && cf_net_set_allow(allow, &err) != CF_OK) ||
        cf_boot_open(opts, &boot, &err) != CF_OK) {
        fprintf(stderr, "coffer operator init: %s\n", err.msg);
        return 1;
    }
    if (boot.auto_unseal) {
        cf_err_set(&err, CF_EINVAL, "the root key of this store is %s already",
                   cf_boot_seal_holder(&boot));
        goto out;
    }
    if (boot.sealed && cf_boot_unseal_shares(&boot, &old, &old_len, &err) != CF_OK)
        goto out;
    cf_keyring_export_root(boot.keyring, root);

    if ((azure ? cf_autounseal_wrap(azure, root, &record, &err)
               : cf_pkcs11seal_wrap(pkcs11, root, &record, &err)) != CF_OK)
        goto out;
    if ((old ? cf_store_meta_move(boot.store, CF_SEAL_META_SHAMIR, old, old_len, meta,
                                  (const uint8_t *)record, strlen(record), &err)
             : cf_store_meta_insert(boot.store, meta, (const uint8_t *)record, strlen(record),
                                    &err)) != CF_OK)
        goto out;
    status = 0;
    char what[128], done[128];
    snprintf(what, sizeof(what),
             old ? "moved from unseal shares to %s by coffer operator init"
                 : "wrapped by %s by coffer operator init",
             holder);
    snprintf(done, sizeof(done), "the root key is wrapped by %s", holder);
    audit_seal(&boot, "seal.init", what);
    if (old) {
        fprintf(stderr, "coffer operator init: %s; the unseal shares open nothing any more\n",
                done);
    } else {
        retire_key_source(opts, done, "the server unseals itself from now on");
    }
out:
    if (status != 0)
        fprintf(stderr, "coffer operator init: %s\n", err.msg);
    sodium_memzero(root, sizeof(root));
    free(record);
    free(old);
    cf_boot_close(&boot);
    return status;
}

int cf_cmd_operator(int argc, char **argv)
{
    /* unseal and seal, clients of a running server with options of their own, are dispatched
     * before this parser and left out of its words (its options are not theirs). */
    static const char *const subcommands[] = {
        "admin-token",        "backup",          "init", "migrate", "rekey", "restore",
        "rotate-admin-token", "rotate-root-key", NULL};
    const char *data_dir = NULL, *db = NULL, *from = NULL, *to = NULL, *verify = NULL;
    const char *shares_text = NULL, *threshold_text = NULL, *share_keys_text = NULL;
    struct cf_autounseal_config azure = {0};
    struct cf_pkcs11seal_config pkcs11 = {0};
    const struct cf_opt options[] = {
        {"verify", CF_OPT_STRING, &verify},
        {"data-dir", CF_OPT_STRING, &data_dir},
        {"db", CF_OPT_STRING, &db},
        {"from", CF_OPT_STRING, &from},
        {"to", CF_OPT_STRING, &to},
        {"shares", CF_OPT_STRING, &shares_text},
        {"threshold", CF_OPT_STRING, &threshold_text},
        {"share-keys", CF_OPT_STRING, &share_keys_text},
        {"azure-key", CF_OPT_STRING, &azure.key_url},
        {"azure-tenant", CF_OPT_STRING, &azure.tenant_id},
        {"azure-client-id", CF_OPT_STRING, &azure.client_id},
        {"azure-authority", CF_OPT_STRING, &azure.authority_host},
        {"azure-managed-identity", CF_OPT_BOOL, &azure.managed_identity},
        {"azure-imds-endpoint", CF_OPT_STRING, &azure.imds_endpoint},
        {"pkcs11-module", CF_OPT_STRING, &pkcs11.module},
        {"pkcs11-token-label", CF_OPT_STRING, &pkcs11.token_label},
        {"pkcs11-key-label", CF_OPT_STRING, &pkcs11.key_label},
    };
    /* The clients of a running server take the client's options (--domain, --token). */
    if (argc > 1 && strcmp(argv[1], "unseal") == 0)
        return cf_cmd_operator_unseal(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "seal") == 0)
        return cf_cmd_operator_seal(argc - 1, argv + 1);
    /* Every file an offline command makes (a new store, a key file, a backup) is the owner's alone,
     * as the server's are. */
    umask(077);
    const struct cf_cli_spec spec = {
        .usage = usage_text,
        .flags = CF_CLI_LOCAL,
        .max_args = 3, /* checked per subcommand below, so that the first extra one is named */
        .opts = options,
        .nopts = CF_ARRAY_SIZE(options),
        .subcommands = subcommands,
    };
    struct cf_cli cli;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status)) {
        cf_cli_end(&cli);
        return status;
    }
    const char *sub = cli.nargs ? cli.args[0] : "";
    const char *action = cli.nargs > 1 ? cli.args[1] : NULL;
    bool migrating = strcmp(sub, "migrate") == 0;
    bool admin_token = strcmp(sub, "rotate-admin-token") == 0;
    bool switching = strcmp(sub, "admin-token") == 0;
    bool backing_up = strcmp(sub, "backup") == 0, restoring = strcmp(sub, "restore") == 0;
    bool initing = strcmp(sub, "init") == 0;
    bool rekeying = strcmp(sub, "rekey") == 0;
    if (!migrating && !admin_token && !switching && !backing_up && !restoring && !initing &&
        !rekeying && strcmp(sub, "rotate-root-key") != 0) {
        fprintf(stderr, "coffer operator: unknown or missing subcommand\n%s", usage_text);
        cf_cli_end(&cli);
        return 2;
    }
    const char *extra = cli.nargs > (switching ? 2u : 1u) ? cli.args[switching ? 2 : 1] : NULL;
    if (extra) {
        fprintf(stderr, "coffer: unexpected argument '%s'\n%s", extra, usage_text);
        cf_cli_end(&cli);
        return 2;
    }
    if (switching && (!action || (strcmp(action, "disable") != 0 && strcmp(action, "enable") != 0 &&
                                  strcmp(action, "status") != 0))) {
        fprintf(stderr, "coffer operator: admin-token takes disable, enable or status\n%s",
                usage_text);
        cf_cli_end(&cli);
        return 2;
    }
    cf_cli_end(&cli); /* the values point into argv, not into cli */
    if (migrating) {
        if (!from || !to || data_dir || db) {
            fprintf(stderr, "coffer operator migrate: takes --from DSN and --to DSN (and nothing "
                            "else)\n");
            return 2;
        }
        return migrate(from, to);
    }
    if (backing_up && (!to) == (!verify)) {
        fprintf(stderr, "coffer operator backup: takes --to FILE (write a backup) or --verify FILE "
                        "(check one)\n");
        return 2;
    }
    if (restoring && !from) {
        fprintf(stderr, "coffer operator restore: takes --from FILE\n");
        return 2;
    }
    if ((from && !restoring) || (to && !backing_up)) {
        fprintf(stderr,
                "coffer operator %s: --from and --to belong to migrate, backup and "
                "restore\n",
                sub);
        return 2;
    }
    if (verify && !backing_up) {
        fprintf(stderr, "coffer operator %s: --verify belongs to backup\n", sub);
        return 2;
    }
    unsigned shares = 0, threshold = 0;
    if (!initing && !rekeying && (shares_text || threshold_text)) {
        fprintf(stderr, "coffer operator %s: --shares and --threshold belong to init and rekey\n",
                sub);
        return 2;
    }
    bool to_azure = azure.key_url || azure.tenant_id || azure.client_id || azure.authority_host ||
                    azure.managed_identity || azure.imds_endpoint;
    if (to_azure && (!initing || shares_text || threshold_text)) {
        fprintf(stderr,
                "coffer operator %s: the --azure-* options belong to init, without "
                "--shares and --threshold\n",
                sub);
        return 2;
    }
    if (to_azure && azure.managed_identity
            ? !azure.key_url || azure.tenant_id || azure.authority_host
            : to_azure &&
                  (!azure.key_url || !azure.tenant_id || !azure.client_id || azure.imds_endpoint)) {
        fprintf(stderr, "coffer operator init: --azure-key, --azure-tenant and --azure-client-id "
                        "go together; with --azure-managed-identity, --azure-key (and "
                        "--azure-client-id for a user-assigned identity) without --azure-tenant\n");
        return 2;
    }
    bool to_pkcs11 = pkcs11.module || pkcs11.token_label || pkcs11.key_label;
    if (to_pkcs11 && (!initing || shares_text || threshold_text || to_azure)) {
        fprintf(stderr,
                "coffer operator %s: the --pkcs11-* options belong to init, without "
                "--shares, --threshold or --azure-*\n",
                sub);
        return 2;
    }
    if (to_pkcs11 && (!pkcs11.module || !pkcs11.token_label || !pkcs11.key_label)) {
        fprintf(stderr, "coffer operator init: --pkcs11-module, --pkcs11-token-label and "
                        "--pkcs11-key-label go together\n");
        return 2;
    }
    if ((initing || rekeying) && !to_azure && !to_pkcs11 &&
        parse_split(sub, shares_text, threshold_text, &shares, &threshold) != 0)
        return 2;
    struct share_keys keys = {.n = 0};
    char keys_list[4096] = "";
    if (share_keys_text) {
        if ((!initing && !rekeying) || to_azure || to_pkcs11) {
            fprintf(stderr,
                    "coffer operator %s: --share-keys belongs to init and rekey with "
                    "--shares\n",
                    sub);
            return 2;
        }
        if (strlen(share_keys_text) >= sizeof(keys_list)) {
            fprintf(stderr, "coffer operator %s: --share-keys is too long\n", sub);
            return 2;
        }
        memcpy(keys_list, share_keys_text, strlen(share_keys_text) + 1);
        char *next = keys_list;
        for (; next && keys.n < CF_SHAMIR_MAX_SHARES; keys.n++) {
            char *comma = strchr(next, ',');
            if (comma)
                *comma = '\0';
            keys.entries[keys.n] = next;
            next = comma ? comma + 1 : NULL;
        }
        if (next || keys.n != shares) {
            fprintf(stderr,
                    "coffer operator %s: --share-keys names %u key(s) for %u shares: one "
                    "per share, separated by commas\n",
                    sub, keys.n, shares);
            return 2;
        }
        /* GPGME talks to gpg through pipes: a gpg that dies early must be an error returned, not
         * a SIGPIPE that ends this process (a closed stdout then fails the flush of the shares,
         * before anything is recorded) */
        signal(SIGPIPE, SIG_IGN);
        /* every entry checked before the store is opened: a bad one changes nothing */
        for (unsigned i = 0; i < keys.n; i++) {
            struct cf_err key_err;
            enum cf_sharewrap_kind kind;
            cf_err_clear(&key_err);
            if (cf_sharewrap_check(keys.entries[i], &kind, &key_err) != CF_OK) {
                fprintf(stderr, "coffer operator %s: share key %u: %s\n", sub, i + 1, key_err.msg);
                return key_err.rc == CF_EINVAL ? 2 : 1;
            }
        }
    }
    struct cf_boot_opts opts = {
        .data_dir = cf_boot_setting(data_dir, "COFFER_DATA_DIR", "./coffer-data"),
        .db = cf_boot_setting(db, "COFFER_DB", NULL),
        .root_key_b64 = cf_boot_setting(NULL, "COFFER_ROOT_KEY", NULL),
        .create_root_key = initing, /* init on a new data directory makes its first key */
        .beside_server = admin_token || switching || rekeying || backing_up,
        .allow_sealed = rekeying || to_azure || to_pkcs11 || backing_up,
        .restoring = restoring,
    };
    if (backing_up)
        return verify ? cf_backup_verify(&opts, verify) : cf_backup_run(&opts, to);
    if (restoring)
        return cf_backup_restore(&opts, from);
    if (to_azure || to_pkcs11)
        return init_wrapped(&opts, to_azure ? &azure : NULL, to_pkcs11 ? &pkcs11 : NULL);
    if (initing)
        return init_seal(&opts, shares, threshold, &keys);
    if (rekeying)
        return rekey(&opts, shares, threshold, &keys);
    if (switching)
        return admin_token_switch(&opts, action);
    return admin_token ? rotate_admin_token(&opts) : rotate_root_key(&opts);
}
