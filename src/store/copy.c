/* Copying a whole store into another (cf_store_copy, for coffer operator migrate), table by
 * table, with row counts and checksums compared before the destination commits. */
#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "store/shared.h"
#include "util/str.h"
#include "util/banned.h"

/* Every table of the schema, parents before children, each column with the type it is bound with:
 * t text, n nullable text, i integer, b blob, B nullable blob. `order` lists rows so that a row's
 * parent row (folders: the parent folder) is copied first. Pending single sign-on logins
 * (sso_logins) are not copied: they live ten minutes, and a login begun before the move is simply
 * begun again. */
static const struct copy_table {
    const char *name;
    const char *columns;
    const char *types;
    const char *order;
} copy_tables[] = {
    {"meta", "name, value", "tb", "name"},
    {"projects", PROJECT_COLS, "ttttiib", "id"},
    {"environments", ENV_COLS, "ttttiii", "id"},
    {"folders", "id, env_id, parent_id, name, path, description, created_at, updated_at",
     "ttnttiii", "env_id, path"},
    {"secrets", "folder_id, key, id, version, created_at, updated_at", "tttiii", "id"},
    {"secret_versions",
     "secret_id, version, key, sealed, comment, tags, expires_at, skip_multiline, created_at,"
     " reminder_repeat_days, reminder_note",
     "titbttiiiit", "secret_id, version"},
    {"secret_leaks",
     "secret_id, version, leaked_at, source, fingerprint, actor_kind, actor_id, actor_name",
     "tiittttt", "secret_id"},
    {"secret_imports", IMPORT_COLS, "ttttiii", "id"},
    {"tags", TAG_COLS, "tttttii", "id"},
    {"identities", IDENTITY_COLS, "ttii", "id"},
    {"identity_universal_auths", UA_COLS, "ttiiittii", "identity_id"},
    {"identity_jwt_auths", JWT_COLS, "tttttttttiiitiii", "identity_id"},
    {"identity_kubernetes_auths", K8S_COLS, "tttttttiiitii", "identity_id"},
    {"identity_client_secrets", "rowid, " CSECRET_COLS, "ittttbiiiiii", "id"},
    {"identity_access_tokens", TOKEN_COLS, "ttttbiiiiitii", "id"},
    {"identity_memberships", MEMBERSHIP_COLS, "ttttBii", "id"},
    {"users", USER_COLS, "tttttnnniii", "id"},
    {"user_memberships", "id, user_id, project_id, role, rules, created_at, updated_at", "ttttBii",
     "id"},
    {"user_sessions", SESSION_COLS, "ttbbttiii", "id"},
    {"personal_access_tokens", PAT_COLS, "tttbiii", "id"},
    {"user_groups", "id, name, external_id, created_at, updated_at", "ttnii", "id"},
    {"user_group_members", "group_id, user_id, created_at", "tti", "group_id, user_id"},
    {"group_memberships", "id, group_id, project_id, role, rules, created_at, updated_at",
     "ttttBii", "id"},
    {"scim_tokens", "id, name, hash, revoked, created_by, created_at, last_used_at", "ttbitii",
     "id"},
    {"scim_users", "user_id, user_name, external_id, created_at", "ttni", "user_id"},
    {"access_requests",
     "id, user_id, project_id, env_id, path_glob, actions, duration_s, reason, status, created_at,"
     " decided_by, decided_at, comment, starts_at, ends_at, revoked_by, revoked_at",
     "tttttiittititiiti", "id"},
    {"audit_key_sets", "id, keys", "it", "id"},
    {"audit_contexts",
     "id, digest, actor_kind, actor_id, actor_name, source_ip, user_agent, action, project_id,"
     " environment, path, keys, key_set, result",
     "iBttttttttttit", "id"},
    {"audit_events", "seq, id, time_us, context, reason, request_id, hash", "ibiitbb", "seq"},
    {"audit_checkpoints", "event_seq, time_us, event_hash, signature", "iibb", "event_seq"},
    {"audit_archive_state",
     "id, anchor_seq, anchor_hash, anchor_time_us, anchor_signature, owner, lease_until_us",
     "iiBiBti", "id"},
    {"audit_last_reads",
     "project_id, environment, path, key, read_at_us, actor_kind, actor_id, actor_name", "ttttittt",
     "project_id, environment, path, key"},
    {"notification_channels", CHANNEL_COLS, "tntttti", "id"},
    {"notification_settings", "project_id, thresholds, updated_at", "tti", "project_id"},
    {"notices",
     "id, channel_id, item_key, threshold, project_id, message, item, state, attempts,"
     " next_attempt_at, last_error, created_at, delivered_at",
     "ttttttttiitii", "id"},
    {"app_connections",
     "id, name, app, method, description, credentials, public_fields, expires_at, expires_learned,"
     " created_at, updated_at, checked_at, check_ok, check_result, version",
     "tttttttiiiiiiti", "id"},
    {"syncs",
     "id, project_id, name, description, env_id, folder_path, destination, connection_id,"
     " destination_config, sync_options, auto_sync, sync_status, last_attempt_at, last_synced_at,"
     " last_error, last_error_cause, items_pushed, drift, initial_done, pending_gen, done_gen,"
     " claim_owner, claim_until, attempts, next_attempt_at, notified_error, created_at, updated_at",
     "ttttttttttitiittitiiitiiitii", "id"},
    {"sync_items",
     "sync_id, name, secret_env_id, secret_path, secret_key, version, value_hash, pushed_at",
     "tttttiti", "sync_id, name"},
    {"rotations",
     "id, project_id, name, description, env_id, folder_path, type, connection_id, parameters,"
     " secrets_mapping, consumers, interval_days, days_before_expiry, rotate_at_minute,"
     " grace_period_ms, lifetime_ms, auto_rotate, generation, current_cred_id,"
     " current_expires_at, previous_cred_id, pending_step, pending_generation, pending_cred_id,"
     " pending_expires_at, pending_version, pending_consumer, grace_until, step_started_at,"
     " step_attempts, next_attempt_at, last_error, last_error_cause, last_error_step,"
     " notified_error, status, run_requested, last_rotated_at, next_rotation_at, claim_owner,"
     " claim_until, created_at, updated_at",
     "tttttttttttiiiiiiitittitiiiiiiitttttiiitiii", "id"},
    {"rotation_history",
     "id, seq, rotation_id, generation, step, outcome, cause, message, credential_id, at",
     "titittttti", "rotation_id, seq"},
    {"dynamic_secrets",
     "id, project_id, env_id, folder_path, name, type, connection_id, params, default_ttl_ms,"
     " max_ttl_ms, created_at, updated_at",
     "ttttttttiiii", "id"},
    {"dynamic_leases",
     "id, dynamic_secret_id, project_id, actor_kind, actor_id, actor_name, created_at, expires_at,"
     " state, provider_id, revoke_attempts, next_attempt_at, last_error, notified, revoked_at,"
     " claim_owner, claim_until",
     "ttttttiittiitiiti", "id"},
};

/* Each table's INSERT, built once, so that its statement is prepared once per connection (a slot
 * of the statement cache) rather than once per row. */
static char insert_text[CF_ARRAY_SIZE(copy_tables)][2048];
static struct sql_stmt insert_stmts[CF_ARRAY_SIZE(copy_tables)];
static pthread_once_t inserts_built = PTHREAD_ONCE_INIT;

static void build_inserts(void)
{
    for (size_t t = 0; t < CF_ARRAY_SIZE(copy_tables); t++) {
        char *insert = insert_text[t];
        size_t size = sizeof(insert_text[t]), n_cols = strlen(copy_tables[t].types);
        size_t at = (size_t)snprintf(insert, size, "INSERT INTO %s (%s) VALUES (",
                                     copy_tables[t].name, copy_tables[t].columns);
        for (size_t i = 0; i < n_cols && at < size; i++)
            at += (size_t)snprintf(insert + at, size - at, "%s?%zu", i ? ", " : "", i + 1);
        if (at + 2 >= size)
            CF_BUG("a copy statement longer than its buffer");
        memcpy(insert + at, ")", 2);
        insert_stmts[t] = (struct sql_stmt)SQL_STMT(insert);
    }
}

struct copy_state {
    const struct copy_table *table;
    size_t n_cols;
    struct db_conn *dst; /* NULL: only hash the rows */
    struct sql_stmt *insert;
    uint8_t *hashes; /* CF_COPY_CHECKSUM_LEN bytes per row, sorted at the end: the checksum
                       ignores row order */
    size_t n_rows, cap;
    struct cf_err
        insert_err; /* the insert's own error (the reader reports any row error as its own) */
    enum cf_rc rc;
};

static enum cf_rc copy_row(const struct db_row *s, void *ctx)
{
    struct copy_state *cs = ctx;
    struct sq_arg args[SQL_PARAMS_MAX];
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, CF_COPY_CHECKSUM_LEN);
    for (size_t i = 0; i < cs->n_cols; i++) {
        char type = cs->table->types[i];
        size_t len = 0;
        const void *bytes = NULL;
        int64_t num = 0;
        char num_text[24];
        memset(&args[i], 0, sizeof(args[i]));
        if (type == 'i') {
            num = db_row_int64(s, (int)i);
            len = (size_t)snprintf(num_text, sizeof(num_text), "%lld", (long long)num);
            bytes = num_text;
            args[i] = (struct sq_arg)A_INT(num);
        } else {
            bytes = db_row_bytes(s, (int)i, &len);
            if (type == 't' || type == 'n') /* text as it is: NULL stays NULL, "" stays "" */
                args[i] = (struct sq_arg)A_TEXT(bytes);
            else /* an empty blob stays empty, a NULL one NULL */
                args[i] = (struct sq_arg){.type = bytes ? 'b' : 'B', .blob = bytes, .len = len};
        }
        /* canonical form: a NULL marker or the length, then the bytes */
        uint8_t head[9] = {bytes ? 1 : 0};
        for (int b = 0; b < 8; b++)
            head[1 + b] = (uint8_t)((uint64_t)len >> (8 * b));
        crypto_generichash_update(&h, head, sizeof(head));
        if (bytes && len)
            crypto_generichash_update(&h, bytes, len);
    }
    if (cs->n_rows == cs->cap) {
        size_t cap = cs->cap ? cs->cap * 2 : 256;
        uint8_t *grown = realloc(cs->hashes, cap * CF_COPY_CHECKSUM_LEN);
        if (!grown)
            return CF_ENOMEM;
        cs->hashes = grown;
        cs->cap = cap;
    }
    crypto_generichash_final(&h, cs->hashes + cs->n_rows * CF_COPY_CHECKSUM_LEN,
                             CF_COPY_CHECKSUM_LEN);
    cs->n_rows++;
    if (cs->dst) {
        enum cf_rc rc =
            sql_run(cs->dst, cs->insert, args, cs->n_cols, NULL, NULL, NULL, &cs->insert_err);
        if (rc != CF_OK) {
            cs->rc = rc;
            return rc;
        }
    }
    return CF_OK;
}

static int compare_hash(const void *a, const void *b)
{
    return memcmp(a, b, CF_COPY_CHECKSUM_LEN);
}

/* Reads every row of table t on c (copying each to cs->dst when set); the table's row count and
 * checksum (BLAKE2b of the sorted row hashes) in *rows and sum. */
static enum cf_rc scan_table(struct db_conn *c, const struct copy_table *t, struct db_conn *dst,
                             int64_t *rows, uint8_t sum[CF_COPY_CHECKSUM_LEN], struct cf_err *err)
{
    char select[1024];
    struct copy_state cs = {.table = t, .n_cols = strlen(t->types), .dst = dst};
    size_t n_columns = 1;
    for (const char *p = t->columns; *p; p++)
        n_columns += *p == ',';
    if (n_columns != cs.n_cols || cs.n_cols > SQL_PARAMS_MAX)
        CF_BUG("copy_tables: a table's types do not match its columns");
    snprintf(select, sizeof(select), "SELECT %s FROM %s ORDER BY %s", t->columns, t->name,
             t->order);
    if (dst) {
        pthread_once(&inserts_built, build_inserts);
        cs.insert = &insert_stmts[t - copy_tables];
    }
    enum cf_rc rc = c->st->drv->run(c, -1, select, NULL, 0, copy_row, &cs, NULL, err);
    if (rc != CF_OK &&
        cs.rc != CF_OK) { /* the insert's own error, not the reader's summary of it */
        rc = cf_err_set(err, cs.rc, "copying %s: %s", t->name, cs.insert_err.msg);
    }
    if (rc == CF_OK) {
        static const uint8_t none[1];
        if (cs.n_rows > 1)
            qsort(cs.hashes, cs.n_rows, CF_COPY_CHECKSUM_LEN, compare_hash);
        crypto_generichash(sum, CF_COPY_CHECKSUM_LEN, cs.n_rows ? cs.hashes : none,
                           cs.n_rows * CF_COPY_CHECKSUM_LEN, NULL, 0);
        *rows = (int64_t)cs.n_rows;
    }
    free(cs.hashes);
    return rc;
}

/* Fills store to (empty) from the source connection src, whose transaction the caller holds:
 * every table copied, read back inside the destination's transaction and compared. */
static enum cf_rc copy_from(struct db_conn *src, struct cf_store *to,
                            void (*report)(void *ctx, const char *table, int64_t rows,
                                           const uint8_t checksum[CF_COPY_CHECKSUM_LEN]),
                            void *ctx, struct cf_err *err)
{
    struct sql_store *dst_st = sql_store_of(to);
    struct db_conn *dst = NULL;
    int64_t existing = 0;
    bool found;
    enum cf_rc rc = sql_tx_begin(to, &dst, err);
    if (rc != CF_OK)
        return rc;
    for (size_t i = 0; rc == CF_OK && i < CF_ARRAY_SIZE(copy_tables); i++) {
        char count[128];
        snprintf(count, sizeof(count), "SELECT COUNT(*) FROM %s", copy_tables[i].name);
        struct sql_stmt count_stmt = SQL_ONCE(count);
        rc = sql_get_row(dst, &count_stmt, NO_ARGS, sql_read_int64, &existing, &found, err);
        if (rc == CF_OK && found && existing > 0)
            rc = cf_err_set(err, CF_EEXIST,
                            "the destination already holds data (%lld rows in %s): copy into an "
                            "empty database",
                            (long long)existing, copy_tables[i].name);
    }
    for (size_t i = 0; rc == CF_OK && i < CF_ARRAY_SIZE(copy_tables); i++) {
        const struct copy_table *t = &copy_tables[i];
        int64_t copied = 0, landed = 0;
        uint8_t sum[CF_COPY_CHECKSUM_LEN], check[CF_COPY_CHECKSUM_LEN];
        rc = scan_table(src, t, dst, &copied, sum, err);
        /* read back what landed, inside the same transaction: a difference undoes everything */
        if (rc == CF_OK)
            rc = scan_table(dst, t, NULL, &landed, check, err);
        if (rc == CF_OK &&
            (landed != copied || sodium_memcmp(sum, check, CF_COPY_CHECKSUM_LEN) != 0))
            rc = cf_err_set(
                err, CF_ESTORE,
                "table %s did not copy identically (%lld rows read, %lld found): nothing "
                "was written",
                t->name, (long long)copied, (long long)landed);
        if (rc == CF_OK && report)
            report(ctx, t->name, copied, sum);
    }
    if (rc == CF_OK && dst_st->drv->after_copy_sql)
        rc =
            dst->st->drv->run(dst, -1, dst_st->drv->after_copy_sql, NULL, 0, NULL, NULL, NULL, err);
    return sql_tx_end(dst, rc, err);
}

enum cf_rc cf_store_copy(struct cf_store *from, struct cf_store *to,
                         void (*report)(void *ctx, const char *table, int64_t rows,
                                        const uint8_t checksum[CF_COPY_CHECKSUM_LEN]),
                         void *ctx, struct cf_err *err)
{
    struct db_conn *src = NULL;
    /* the source locked for writing: it holds still while the destination fills all or nothing */
    enum cf_rc rc = sql_tx_begin(from, &src, err);
    if (rc != CF_OK)
        return rc;
    rc = copy_from(src, to, report, ctx, err);
    sql_tx_end(src, CF_OK, NULL); /* nothing was written to the source */
    return rc;
}

/* This thread's connection to st, in a snapshot transaction (ended with drv->snapshot_end). */
static enum cf_rc snapshot_conn(struct cf_store *st, struct db_conn **c, struct cf_err *err)
{
    struct sql_store *base = sql_store_of(st);
    enum cf_rc rc = base->drv->conn_get(base, c, err);
    return rc == CF_OK ? base->drv->snapshot_begin(*c, err) : rc;
}

enum cf_rc cf_store_snapshot_copy(struct cf_store *from, struct cf_store *to,
                                  void (*report)(void *ctx, const char *table, int64_t rows,
                                                 const uint8_t checksum[CF_COPY_CHECKSUM_LEN]),
                                  void *ctx, struct cf_err *err)
{
    struct db_conn *src = NULL;
    enum cf_rc rc = snapshot_conn(from, &src, err);
    if (rc != CF_OK)
        return rc;
    rc = copy_from(src, to, report, ctx, err);
    return sql_store_of(from)->drv->snapshot_end(src, rc, err);
}

enum cf_rc cf_store_checksums(struct cf_store *st,
                              void (*report)(void *ctx, const char *table, int64_t rows,
                                             const uint8_t checksum[CF_COPY_CHECKSUM_LEN]),
                              void *ctx, struct cf_err *err)
{
    struct db_conn *c = NULL;
    enum cf_rc rc = snapshot_conn(st, &c, err);
    if (rc != CF_OK)
        return rc;
    for (size_t i = 0; rc == CF_OK && i < CF_ARRAY_SIZE(copy_tables); i++) {
        int64_t rows = 0;
        uint8_t sum[CF_COPY_CHECKSUM_LEN];
        rc = scan_table(c, &copy_tables[i], NULL, &rows, sum, err);
        if (rc == CF_OK)
            report(ctx, copy_tables[i].name, rows, sum);
    }
    return sql_store_of(st)->drv->snapshot_end(c, rc, err);
}
