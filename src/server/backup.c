/* Backups of a store (backup.h): snapshot, manifest, encryption, checks and restore. */
#include "server/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "core/audit.h"
#include "core/auditlog.h"
#include "core/seal.h"
#include "crypto/backupfile.h"
#include "server/autounseal.h"
#include "server/pkcs11seal.h"
#include "util/log.h"
#include "util/time.h"
#include "util/str.h"
#include "util/banned.h"

/* The root key's subkey that encrypts backups, and the bytes of the key id the manifest shows. */
#define KEY_CONTEXT "backup-file"
#define KEY_ID_BYTES 8
#define KEY_ID_HEX (2 * KEY_ID_BYTES + 1)
/* Format 2 is format 1 with a "seal" member (the store's seal record); a backup without one is
 * still written as format 1, which older versions read. */
#define MANIFEST_FORMAT 1
#define MANIFEST_FORMAT_SEALED 2
#define META_ROOT_CHECK "root_key_check" /* as boot.c keeps it */
/* The longest seal record a manifest carries (a Key Vault or PKCS#11 record is a short JSON). */
#define SEAL_RECORD_MAX 16384

/* The meta rows that seal a store (their presence makes it sealed), and the kind each is. */
static const struct {
    const char *meta;
    const char *type;
} seal_kinds[] = {
    {CF_SEAL_META_SHAMIR, "shamir"},
    {CF_AUTOUNSEAL_META, "azure-key-vault"},
    {CF_PKCS11SEAL_META, "pkcs11"},
};

/* The backup key of kr and its id (a keyed hash: names the key without revealing it). */
static void backup_key(struct cf_keyring *kr, uint8_t key[CF_BACKUP_KEY_BYTES],
                       char id_hex[KEY_ID_HEX])
{
    static const char label[] = "coffer backup key id";
    uint8_t id[KEY_ID_BYTES];
    cf_keyring_derive(kr, KEY_CONTEXT, key);
    crypto_generichash(id, sizeof(id), (const unsigned char *)label, sizeof(label) - 1, key,
                       CF_BACKUP_KEY_BYTES);
    sodium_bin2hex(id_hex, KEY_ID_HEX, id, sizeof(id));
}

/* What every command here does first: files it makes are the owner's alone, and the snapshot's
 * migrations are not narrated line by line. */
static void quiet_and_private(void)
{
    umask(077);
    cf_log_set_level("warn");
}

static double seconds_since(int64_t start_us)
{
    return (double)(cf_mono_us() - start_us) / 1e6;
}

/* ---- the snapshot file ---- */

/* A snapshot's SQLite file beside base: base.snapshot-XXXXXX (mode 0600), its name in path. */
static enum cf_rc snapshot_create(const char *base, char *path, size_t size, struct cf_err *err)
{
    if ((size_t)snprintf(path, size, "%s.snapshot-XXXXXX", base) >= size)
        return cf_err_set(err, CF_EINVAL, "the path %s is too long", base);
    int fd = mkstemp(path);
    if (fd < 0)
        return cf_err_set(err, CF_EIO, "cannot create a snapshot file beside %s: %s", base,
                          strerror(errno));
    close(fd);
    return CF_OK;
}

static void snapshot_remove(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal", "-gen"};
    char name[4200];
    if (!path[0])
        return;
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(name, sizeof(name), "%s%s", path, suffixes[i]);
        unlink(name);
    }
}

static enum cf_rc snapshot_open(const char *path, bool must_exist, struct cf_store **out,
                                struct cf_err *err)
{
    struct cf_store_config config = {.dsn = path, .must_exist = must_exist};
    return cf_store_open(&config, out, err);
}

/* ---- tables and their checksums ---- */

struct tables {
    json_t *list; /* [{name, rows, checksum}] */
    int64_t rows;
    bool failed;
};

static void collect_table(void *ctx, const char *table, int64_t rows,
                          const uint8_t checksum[CF_COPY_CHECKSUM_LEN])
{
    struct tables *t = ctx;
    char hex[2 * CF_COPY_CHECKSUM_LEN + 1];
    sodium_bin2hex(hex, sizeof(hex), checksum, CF_COPY_CHECKSUM_LEN);
    if (json_array_append_new(t->list, json_pack("{s:s, s:I, s:s}", "name", table, "rows",
                                                 (json_int_t)rows, "checksum", hex)) != 0)
        t->failed = true;
    t->rows += rows;
}

/* CF_OK when got (collected tables) is exactly the manifest's list; else CF_ESTORE naming the
 * first table that differs and how. */
static enum cf_rc compare_tables(const json_t *manifest_tables, const json_t *got, const char *what,
                                 struct cf_err *err)
{
    size_t i;
    json_t *t;
    json_array_foreach(got, i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        const json_t *want = NULL;
        size_t j;
        json_t *m;
        json_array_foreach(manifest_tables, j, m)
        {
            if (json_is_string(json_object_get(m, "name")) &&
                strcmp(json_string_value(json_object_get(m, "name")), name) == 0)
                want = m;
        }
        if (!want)
            return cf_err_set(err, CF_ESTORE, "%s: table %s is not in the backup's manifest", what,
                              name);
        json_int_t rows = json_integer_value(json_object_get(t, "rows"));
        const char *sum = json_string_value(json_object_get(t, "checksum"));
        const char *want_sum = json_string_value(json_object_get(want, "checksum"));
        if (rows != json_integer_value(json_object_get(want, "rows")) || !want_sum ||
            strcmp(sum, want_sum) != 0)
            return cf_err_set(err, CF_ESTORE,
                              "%s: table %s holds %lld rows (checksum %.16s...) where the "
                              "manifest says %lld (checksum %.16s...)",
                              what, name, (long long)rows, sum,
                              (long long)json_integer_value(json_object_get(want, "rows")),
                              want_sum ? want_sum : "none");
    }
    if (json_array_size(got) != json_array_size(manifest_tables))
        return cf_err_set(err, CF_ESTORE, "%s: %zu tables where the manifest lists %zu", what,
                          json_array_size(got), json_array_size(manifest_tables));
    return CF_OK;
}

/* The last audit event's seq and hash (hex) of st, as JSON; null when the log is empty. */
static enum cf_rc audit_head(struct cf_store *st, json_t **out, struct cf_err *err)
{
    struct cf_audit_event last;
    memset(&last, 0, sizeof(last));
    enum cf_rc rc = cf_store_audit_get(st, 0, &last, err);
    *out = NULL;
    if (rc == CF_ENOTFOUND) {
        cf_err_clear(err);
        *out = json_null();
        return CF_OK;
    }
    if (rc != CF_OK)
        return rc;
    char hex[2 * CF_AUDIT_HASH_LEN + 1];
    sodium_bin2hex(hex, sizeof(hex), last.hash, CF_AUDIT_HASH_LEN);
    *out = json_pack("{s:I, s:s}", "seq", (json_int_t)last.seq, "hash", hex);
    return *out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

/* ---- the seal record in the manifest ---- */

/* The manifest's "seal" member for the store st ({type, meta, record: base64}), or NULL in *out
 * when st is not sealed (its key is a file or COFFER_ROOT_KEY). The record is not secret: it is
 * what the shares, Key Vault or the token open, and it is authenticated with the manifest. */
static enum cf_rc seal_member(struct cf_store *st, json_t **out, struct cf_err *err)
{
    *out = NULL;
    for (size_t i = 0; i < sizeof(seal_kinds) / sizeof(seal_kinds[0]); i++) {
        uint8_t *record = NULL;
        size_t len = 0;
        enum cf_rc rc = cf_store_meta_get(st, seal_kinds[i].meta, &record, &len, err);
        if (rc == CF_ENOTFOUND) {
            cf_err_clear(err);
            continue;
        }
        if (rc != CF_OK)
            return rc;
        size_t b64_len = sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = len <= SEAL_RECORD_MAX ? malloc(b64_len) : NULL;
        if (b64) {
            sodium_bin2base64(b64, b64_len, record, len, sodium_base64_VARIANT_ORIGINAL);
            *out = json_pack("{s:s, s:s, s:s}", "type", seal_kinds[i].type, "meta",
                             seal_kinds[i].meta, "record", b64);
        }
        free(b64);
        free(record);
        if (!*out)
            return cf_err_set(err, len > SEAL_RECORD_MAX ? CF_ETOOLARGE : CF_ENOMEM,
                              "cannot put the seal record '%s' (%zu bytes) in the manifest",
                              seal_kinds[i].meta, len);
        return CF_OK;
    }
    return CF_OK;
}

/* The seal record of a manifest's "seal" member: its meta row's name (borrowed from the manifest)
 * and its bytes (malloc'd; the caller frees them). CF_ENOTFOUND when the manifest has none. */
static enum cf_rc manifest_seal_record(const json_t *manifest, const char *path, const char **meta,
                                       uint8_t **record, size_t *len, struct cf_err *err)
{
    const json_t *seal = json_object_get(manifest, "seal");
    const char *b64 = json_string_value(json_object_get(seal, "record"));
    *meta = json_string_value(json_object_get(seal, "meta"));
    *record = NULL;
    *len = 0;
    if (!seal)
        return CF_ENOTFOUND;
    size_t b64_len = b64 ? strlen(b64) : 0;
    *record = b64 && *meta && b64_len <= 2 * SEAL_RECORD_MAX ? malloc(b64_len + 1) : NULL;
    if (!*record ||
        sodium_base642bin(*record, b64_len + 1, b64, b64_len, NULL, len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        *len == 0) {
        free(*record);
        *record = NULL;
        return cf_err_set(err, CF_EVALIDATION, "%s: the seal record in its manifest is malformed",
                          path);
    }
    return CF_OK;
}

/* ---- backup ---- */

static enum cf_rc write_backup(struct cf_boot *boot, const char *path, struct tables *tables,
                               json_int_t *bytes, struct cf_err *err)
{
    char snap_path[4200] = "";
    struct cf_store *snap = NULL;
    json_t *head = NULL, *manifest = NULL, *seal = NULL;
    char *text = NULL;
    uint8_t key[CF_BACKUP_KEY_BYTES];
    char key_id[KEY_ID_HEX];
    struct stat sb;
    int fd = -1;

    enum cf_rc rc = snapshot_create(path, snap_path, sizeof(snap_path), err);
    if (rc == CF_OK)
        rc = snapshot_open(snap_path, false, &snap, err);
    if (rc == CF_OK)
        rc = cf_store_snapshot_copy(boot->store, snap, collect_table, tables, err);
    if (rc == CF_OK && tables->failed)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory listing the tables");
    if (rc == CF_OK)
        rc = audit_head(snap, &head, err);
    /* the snapshot's own record: a rekey beside a running server may replace the store's */
    if (rc == CF_OK)
        rc = seal_member(snap, &seal, err);
    if (snap)
        cf_store_close(snap); /* its WAL checkpointed into the file */
    if (rc == CF_OK) {
        fd = open(snap_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &sb) != 0)
            rc = cf_err_set(err, CF_EIO, "cannot read the snapshot %s: %s", snap_path,
                            strerror(errno));
    }
    if (rc == CF_OK) {
        char created[32];
        time_t now = (time_t)(cf_now_ms() / 1000);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
        backup_key(boot->keyring, key, key_id);
        *bytes = (json_int_t)sb.st_size;
        manifest = json_pack("{s:i, s:s, s:s, s:s, s:s, s:O, s:I, s:O, s:I}", "format",
                             seal ? MANIFEST_FORMAT_SEALED : MANIFEST_FORMAT, "createdAt", created,
                             "cofferVersion", COFFER_VERSION, "source", boot->store->backend,
                             "keyId", key_id, "tables", tables->list, "rows",
                             (json_int_t)tables->rows, "auditHead", head, "snapshotBytes", *bytes);
        if (manifest && seal && json_object_set(manifest, "seal", seal) != 0) {
            json_decref(manifest);
            manifest = NULL;
        }
        text = manifest ? json_dumps(manifest, JSON_COMPACT) : NULL;
        rc = text ? cf_backup_write(path, text, key, fd, err)
                  : cf_err_set(err, CF_ENOMEM, "out of memory writing the manifest");
        sodium_memzero(key, sizeof(key));
    }
    if (fd >= 0)
        close(fd);
    snapshot_remove(snap_path);
    free(text);
    json_decref(manifest);
    json_decref(seal);
    json_decref(head);
    return rc;
}

int cf_backup_run(const struct cf_boot_opts *opts, const char *path)
{
    struct cf_boot boot;
    struct cf_err err;
    struct tables tables = {.list = json_array()};
    json_int_t bytes = 0;
    int64_t start = cf_mono_us();

    quiet_and_private();
    cf_err_clear(&err);
    if (!tables.list || cf_boot_open(opts, &boot, &err) != CF_OK) {
        fprintf(stderr, "coffer operator backup: %s\n", tables.list ? err.msg : "out of memory");
        json_decref(tables.list);
        return 1;
    }
    /* a sealed store's key: shares on standard input, or unwrapped as the server does */
    if (cf_boot_unseal_offline(&boot, &err) != CF_OK) {
        fprintf(stderr, "coffer operator backup: %s\n", err.msg);
        cf_boot_close(&boot);
        json_decref(tables.list);
        return 1;
    }
    enum cf_rc rc = write_backup(&boot, path, &tables, &bytes, &err);
    cf_boot_close(&boot);
    if (rc != CF_OK) {
        fprintf(stderr, "coffer operator backup: %s\n", err.msg);
        json_decref(tables.list);
        return 1;
    }
    printf("backup %s written: %zu tables, %lld rows, %lld bytes of snapshot, in %.2f s\n", path,
           json_array_size(tables.list), (long long)tables.rows, (long long)bytes,
           seconds_since(start));
    json_decref(tables.list);
    return 0;
}

/* ---- checking a backup ---- */

struct checked {
    char snap_path[4200];
    struct cf_store *snap;
    json_t *manifest;
};

static void checked_release(struct checked *c)
{
    if (c->snap)
        cf_store_close(c->snap);
    snapshot_remove(c->snap_path);
    json_decref(c->manifest);
    memset(c, 0, sizeof(*c));
}

/* A text member of the manifest, "?" when absent (a manifest is authenticated, but one written by
 * another version may lack a member this one prints). */
static const char *manifest_text(const json_t *manifest, const char *name)
{
    const char *text = json_string_value(json_object_get(manifest, name));
    return text ? text : "?";
}

/* Reads the manifest of path and checks that it is one this version writes. */
static enum cf_rc read_manifest(const char *path, json_t **out, struct cf_err *err)
{
    char *text = NULL;
    json_error_t jerr;
    enum cf_rc rc = cf_backup_read_manifest(path, &text, err);
    if (rc != CF_OK)
        return rc;
    *out = json_loads(text, 0, &jerr);
    free(text);
    json_int_t format = *out ? json_integer_value(json_object_get(*out, "format")) : 0;
    const json_t *seal = *out ? json_object_get(*out, "seal") : NULL;
    if (!*out || !json_is_object(*out) ||
        (format != MANIFEST_FORMAT && format != MANIFEST_FORMAT_SEALED) ||
        !json_is_array(json_object_get(*out, "tables")) ||
        !json_is_string(json_object_get(*out, "keyId")) ||
        (seal && (!json_is_string(json_object_get(seal, "meta")) ||
                  !json_is_string(json_object_get(seal, "record"))))) {
        json_decref(*out);
        *out = NULL;
        return cf_err_set(err, CF_EVALIDATION,
                          "%s: its manifest is not one this version of Coffer reads (formats %d "
                          "and %d)",
                          path, MANIFEST_FORMAT, MANIFEST_FORMAT_SEALED);
    }
    return CF_OK;
}

/* Decrypts path beside dir_file into a snapshot, then checks it against its manifest (every table's
 * rows and checksum) and against kr (the key id, the store's root key check). */
static enum cf_rc check_backup(struct cf_keyring *kr, const char *path, const char *beside,
                               struct checked *c, struct cf_err *err)
{
    uint8_t key[CF_BACKUP_KEY_BYTES], *check = NULL;
    size_t check_len = 0;
    char key_id[KEY_ID_HEX];
    struct tables tables = {.list = json_array()};

    memset(c, 0, sizeof(*c));
    enum cf_rc rc = tables.list ? read_manifest(path, &c->manifest, err)
                                : cf_err_set(err, CF_ENOMEM, "out of memory");
    if (rc == CF_OK) {
        backup_key(kr, key, key_id);
        const char *made_with = json_string_value(json_object_get(c->manifest, "keyId"));
        if (strcmp(made_with, key_id) != 0)
            rc = cf_err_set(err, CF_ECRYPTO,
                            "%s was made with another root key (its key id %s; this root key's "
                            "is %s)",
                            path, made_with, key_id);
    }
    if (rc == CF_OK)
        rc = snapshot_create(beside, c->snap_path, sizeof(c->snap_path), err);
    if (rc == CF_OK) {
        int fd = open(c->snap_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        rc = fd < 0 ? cf_err_set(err, CF_EIO, "cannot write %s: %s", c->snap_path, strerror(errno))
                    : cf_backup_decrypt(path, key, fd, err);
        if (fd >= 0 && close(fd) != 0 && rc == CF_OK)
            rc = cf_err_set(err, CF_EIO, "cannot write %s: %s", c->snap_path, strerror(errno));
    }
    sodium_memzero(key, sizeof(key));
    if (rc == CF_OK)
        rc = snapshot_open(c->snap_path, true, &c->snap, err);
    if (rc == CF_OK)
        rc = cf_store_checksums(c->snap, collect_table, &tables, err);
    if (rc == CF_OK)
        rc = compare_tables(json_object_get(c->manifest, "tables"), tables.list, path, err);
    if (rc == CF_OK)
        rc = cf_store_meta_get(c->snap, META_ROOT_CHECK, &check, &check_len, err);
    if (rc == CF_OK && cf_keyring_verify_check(kr, check, check_len, err) != CF_OK)
        rc = cf_err_set(err, CF_ECRYPTO, "%s holds a store of another root key", path);
    free(check);
    json_decref(tables.list);
    if (rc != CF_OK)
        checked_release(c);
    return rc;
}

/* Verifies the audit chain of st (opened with the keyring; head_path may be NULL) and that it ends
 * at the manifest's head. With head_path, first writes the head file anew (a restored data
 * directory has none). */
static enum cf_rc verify_audit(struct cf_store *st, struct cf_keyring *kr, const json_t *manifest,
                               const char *head_path, struct cf_audit_report *report,
                               struct cf_err *err)
{
    struct cf_audit_log_config config = {.head_path = head_path};
    struct cf_audit_log *log = NULL;
    const json_t *head = json_object_get(manifest, "auditHead");
    memset(report, 0, sizeof(*report));
    enum cf_rc rc = cf_audit_log_open(st, kr, &config, &log, err);
    if (rc == CF_OK && head_path && json_is_object(head)) {
        rc = cf_audit_log_checkpoint(log, err);
        if (rc == CF_ENOTFOUND)
            rc = CF_OK;
    }
    if (rc == CF_OK)
        rc = cf_audit_log_verify(log, NULL, 0, report, err);
    cf_audit_log_close(log);
    if (rc != CF_OK)
        return rc;
    if (report->finding != CF_AUDIT_OK)
        return cf_err_set(err, CF_ESTORE, "the audit chain does not verify: %s (%s)",
                          cf_audit_finding_name(report->finding), report->message);
    json_int_t want = json_is_object(head) ? json_integer_value(json_object_get(head, "seq")) : 0;
    if (report->last_seq < want)
        return cf_err_set(err, CF_ESTORE,
                          "the audit chain ends at event %lld where the manifest's head is %lld",
                          (long long)report->last_seq, (long long)want);
    return CF_OK;
}

/* A backup's manifest names a seal record only when the snapshot holds the same one (the
 * manifest is authenticated by the decryption; this also keeps the restored store sealed exactly
 * as the manifest says). CF_OK when the manifest names none. */
static enum cf_rc check_seal_record(const struct checked *c, const char *path, struct cf_err *err)
{
    const char *meta = NULL;
    uint8_t *record = NULL, *held = NULL;
    size_t len = 0, held_len = 0;
    enum cf_rc rc = manifest_seal_record(c->manifest, path, &meta, &record, &len, err);
    if (rc == CF_ENOTFOUND)
        return CF_OK;
    if (rc == CF_OK)
        rc = cf_store_meta_get(c->snap, meta, &held, &held_len, err);
    if (rc == CF_ENOTFOUND || (rc == CF_OK && (held_len != len || memcmp(held, record, len) != 0)))
        rc = cf_err_set(err, CF_ECRYPTO,
                        "%s: the seal record in its manifest is not the one its snapshot holds",
                        path);
    free(held);
    free(record);
    return rc;
}

static enum cf_rc key_from_manifest(const char *path, const char *data_dir,
                                    uint8_t key[CF_ROOT_KEY_BYTES], struct cf_err *err);

/* Whether the backup at path has a readable manifest with a seal record, or with a "seal" member
 * that is not one (key_from_manifest then says what is wrong with it). */
static bool carries_seal_record(const char *path)
{
    json_t *manifest = NULL;
    uint8_t *record = NULL;
    size_t len = 0;
    const char *meta = NULL;
    struct cf_err ignored;
    bool found =
        read_manifest(path, &manifest, &ignored) == CF_OK &&
        manifest_seal_record(manifest, path, &meta, &record, &len, &ignored) != CF_ENOTFOUND;
    free(record);
    json_decref(manifest);
    return found;
}

/* The keyring of a sealed store's backup, from its own seal record (key_from_manifest). */
static enum cf_rc keyring_from_manifest(const char *path, const char *data_dir,
                                        struct cf_keyring **out, struct cf_err *err)
{
    uint8_t *root = sodium_malloc(CF_ROOT_KEY_BYTES);
    enum cf_rc rc = root ? key_from_manifest(path, data_dir, root, err)
                         : cf_err_set(err, CF_ENOMEM, "out of memory");
    if (rc == CF_OK)
        rc = cf_keyring_from_bytes(root, out, err);
    sodium_free(root); /* wipes */
    return rc;
}

int cf_backup_verify(const struct cf_boot_opts *opts, const char *path)
{
    struct cf_keyring *kr = NULL;
    struct checked c;
    struct cf_audit_report report;
    struct cf_err err;
    int64_t start = cf_mono_us();

    quiet_and_private();
    cf_err_clear(&err);
    memset(&c, 0, sizeof(c));
    struct cf_boot boot = {.lock_fd = -1};
    struct cf_err sealed_err;
    enum cf_rc rc = cf_keyring_load(opts->data_dir, opts->root_key_b64, false, &kr, &err);
    /* No key file: the data directory's store may be sealed, its key then taken as backup takes
     * it (this directory's key is the one the backup must open with). */
    cf_err_clear(&sealed_err);
    if (rc != CF_OK && !opts->root_key_b64 && cf_boot_open(opts, &boot, &sealed_err) == CF_OK &&
        boot.sealed) {
        rc = cf_boot_unseal_offline(&boot, &err);
        if (rc == CF_OK) {
            kr = boot.keyring; /* taken over from the store, which is closed next */
            boot.keyring = NULL;
        }
    }
    cf_boot_close(&boot);
    /* Neither a key nor a sealed store here (the backup is checked on another host, say): a sealed
     * store's backup opens with its own seal record, as restore opens it. */
    if (rc != CF_OK && !opts->root_key_b64 && !boot.sealed && carries_seal_record(path))
        rc = keyring_from_manifest(path, opts->data_dir, &kr, &err);
    if (rc == CF_OK)
        rc = check_backup(kr, path, path, &c, &err);
    if (rc == CF_OK)
        rc = check_seal_record(&c, path, &err);
    if (rc == CF_OK)
        rc = verify_audit(c.snap, kr, c.manifest, NULL, &report, &err);
    if (rc == CF_OK)
        printf("backup %s verified in %.2f s: %zu tables, %lld rows, each as its manifest says "
               "(taken %s from %s); audit chain intact to event %lld\n",
               path, seconds_since(start), json_array_size(json_object_get(c.manifest, "tables")),
               (long long)json_integer_value(json_object_get(c.manifest, "rows")),
               manifest_text(c.manifest, "createdAt"), manifest_text(c.manifest, "source"),
               (long long)report.last_seq);
    else
        fprintf(stderr, "coffer operator backup --verify: %s\n", err.msg);
    checked_release(&c);
    cf_keyring_free(kr);
    return rc == CF_OK ? 0 : 1;
}

/* ---- restore ---- */

/* The root key of a sealed store's backup, for a restore into a data directory without one: the
 * manifest's seal record opened as `backup` takes the key (shares on standard input, or unwrapped
 * by Key Vault or the PKCS#11 token), then checked against the manifest's key id, into key (the
 * caller wipes it). Writes nothing anywhere. */
static enum cf_rc key_from_manifest(const char *path, const char *data_dir,
                                    uint8_t key[CF_ROOT_KEY_BYTES], struct cf_err *err)
{
    json_t *manifest = NULL;
    uint8_t *record = NULL;
    size_t len = 0;
    const char *meta = NULL;
    struct cf_keyring *kr = NULL;
    uint8_t backup[CF_BACKUP_KEY_BYTES];
    char key_id[KEY_ID_HEX];

    enum cf_rc rc = read_manifest(path, &manifest, err);
    if (rc == CF_OK)
        rc = manifest_seal_record(manifest, path, &meta, &record, &len, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_EINVAL,
                        "%s carries no seal record (an unsealed store's or an older backup): "
                        "restore it with its root key in COFFER_ROOT_KEY or %s/%s",
                        path, data_dir, CF_ROOT_KEY_FILE);
    if (rc == CF_OK)
        rc = cf_boot_open_record(meta, record, len, key, err);
    if (rc == CF_OK)
        rc = cf_keyring_from_bytes(key, &kr, err);
    if (rc == CF_OK) {
        backup_key(kr, backup, key_id);
        sodium_memzero(backup, sizeof(backup));
        if (strcmp(json_string_value(json_object_get(manifest, "keyId")), key_id) != 0)
            rc = cf_err_set(err, CF_ECRYPTO,
                            "%s: its seal record opens to another root key than the one the "
                            "backup was made with (the manifest was altered)",
                            path);
    }
    if (rc != CF_OK)
        sodium_memzero(key, CF_ROOT_KEY_BYTES);
    cf_keyring_free(kr);
    free(record);
    json_decref(manifest);
    return rc;
}

int cf_backup_restore(const struct cf_boot_opts *opts, const char *path)
{
    struct cf_boot boot;
    struct checked c;
    struct cf_audit_report report;
    struct cf_err err;
    struct tables copied = {.list = json_array()};
    char head_path[4200], beside[4200], key_path[4200];
    struct cf_boot_opts with_key = *opts;
    uint8_t *root = NULL;
    int64_t start = cf_mono_us();

    quiet_and_private();
    cf_err_clear(&err);
    memset(&c, 0, sizeof(c));
    /* No root key at hand: a sealed store's backup brings its seal record, opened before anything
     * (the data directory included) is made, so that wrong or too few shares leave no trace. */
    snprintf(key_path, sizeof(key_path), "%s/%s", opts->data_dir, CF_ROOT_KEY_FILE);
    if (copied.list && !opts->root_key_b64 && access(key_path, F_OK) != 0) {
        root = sodium_malloc(CF_ROOT_KEY_BYTES);
        if (!root || key_from_manifest(path, opts->data_dir, root, &err) != CF_OK) {
            fprintf(stderr, "coffer operator restore: %s\n", root ? err.msg : "out of memory");
            sodium_free(root);
            json_decref(copied.list);
            return 1;
        }
        with_key.root_key = root;
    }
    if (!copied.list || cf_boot_open(&with_key, &boot, &err) != CF_OK) {
        fprintf(stderr, "coffer operator restore: %s\n", copied.list ? err.msg : "out of memory");
        sodium_free(root); /* wipes */
        json_decref(copied.list);
        return 1;
    }
    /* the snapshot is decrypted inside the data directory (mode 0700), never in a shared /tmp */
    snprintf(beside, sizeof(beside), "%s/restore", opts->data_dir);
    snprintf(head_path, sizeof(head_path), "%s/%s", opts->data_dir, CF_AUDIT_HEAD_FILE);
    enum cf_rc rc = check_backup(boot.keyring, path, beside, &c, &err);
    if (rc == CF_OK)
        rc = check_seal_record(&c, path, &err);
    if (rc == CF_OK)
        rc = cf_store_copy(c.snap, boot.store, collect_table, &copied, &err);
    if (rc == CF_OK)
        rc = compare_tables(json_object_get(c.manifest, "tables"), copied.list,
                            "the restored store", &err);
    if (rc == CF_OK)
        rc = verify_audit(boot.store, boot.keyring, c.manifest, head_path, &report, &err);
    if (rc == CF_OK) {
        const char *sealed =
            json_string_value(json_object_get(json_object_get(c.manifest, "seal"), "type"));
        printf("restored %s into %s in %.2f s: %zu tables, %lld rows, every table's rows and "
               "checksum as the manifest says; audit chain intact to event %lld\n",
               path, boot.db_shown, seconds_since(start), json_array_size(copied.list),
               (long long)copied.rows, (long long)report.last_seq);
        if (sealed)
            printf("the restored store is sealed as its source was (%s): a server started on it "
                   "%s\n",
                   sealed,
                   strcmp(sealed, "shamir") == 0 ? "starts sealed and takes the same shares"
                                                 : "unseals itself as its source did");
    } else {
        fprintf(stderr, "coffer operator restore: %s\n", err.msg);
    }
    checked_release(&c);
    cf_boot_close(&boot);
    sodium_free(root);
    json_decref(copied.list);
    return rc == CF_OK ? 0 : 1;
}
