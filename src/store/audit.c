/* The audit log in the store (store.h): appending chained events, reading them back, signed
 * checkpoints, and retention: the anchor the live chain goes on from once older events are
 * archived, the claim on the archiving, and the last reads kept from archived events. What events
 * share (actor, source, action, place, keys, result) is stored once as a context that they refer to
 * (migration 0016), a context naming many keys stores its list of names once, in audit_key_sets
 * (migration 0012), and an event's prevHash is read from the event before it; reading resolves all
 * of it, so callers, the chain and its verification always see every field in full. Its tables are
 * written only here, in transactions under DB_LOCK_AUDIT (sqldb.h), so that appends and other
 * writes do not wait for each other. */
#include <string.h>

#include <sodium.h>

#include "store/shared.h"
#include "util/id.h"
#include "util/str.h"
#include "util/banned.h"

/* An event's id is stored as the UUID's 16 bytes, or only its last 8 when its first 8 are what
 * cf_uuid_v7 makes of the event's time (Coffer's own event ids), and its request id as the 8 bytes
 * of Coffer's 16 hex digits (migration 0016); any other id, and those of events stored before, as
 * its text. A reader takes a value of exactly those lengths as the binary forms. */
#define ID_BYTES 16
#define ID_TAIL_BYTES (ID_BYTES - CF_UUID_V7_HEAD_BYTES)
#define REQUEST_ID_BYTES 8

/* The value of a lower-case hex digit, -1 for anything else (an upper-case id would not read back
 * as the same text). */
static int lower_hex(char c)
{
    return (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* The binary form of text: lower-case hex digits (with the UUID's dashes when dashed) that read
 * back as the same text; false when text is not in that form (then it is stored as text). */

static bool id_pack(const char *text, bool dashed, uint8_t *out, size_t n)
{
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (dashed && (i == 4 || i == 6 || i == 8 || i == 10) && text[at++] != '-')
            return false;
        int hi = lower_hex(text[at]);
        int lo = hi < 0 ? -1 : lower_hex(text[at + 1]);
        if (lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
        at += 2;
    }
    return text[at] == '\0';
}

/* Writes the n bytes of an id as text: hex digits, with the UUID's dashes when dashed. */
static void id_unpack(const uint8_t *bytes, size_t n, bool dashed, char *dst, size_t size)
{
    size_t o = 0;
    for (size_t b = 0; b < n && o + 3 <= size; b++) {
        if (dashed && (b == 4 || b == 6 || b == 8 || b == 10))
            dst[o++] = '-';
        sodium_bin2hex(dst + o, 3, bytes + b, 1);
        o += 2;
    }
}

/* Column i as an id: binary (n bytes) or text; see id_pack. */
static void id_column(const struct db_row *s, int i, bool dashed, size_t n, char *dst, size_t size)
{
    size_t len = 0;
    const uint8_t *bytes = db_row_bytes(s, i, &len);
    if (bytes && len == n)
        id_unpack(bytes, n, dashed, dst, size);
    else
        db_row_text(s, i, dst, size);
}

/* Column i as an event's id, for an event of time_us: see ID_BYTES. */
static void event_id_column(const struct db_row *s, int i, int64_t time_us, char *dst, size_t size)
{
    size_t len = 0;
    const uint8_t *bytes = db_row_bytes(s, i, &len);
    if (!bytes || len != ID_TAIL_BYTES) {
        id_column(s, i, true, ID_BYTES, dst, size);
        return;
    }
    uint8_t whole[ID_BYTES];
    cf_uuid_v7_head(time_us, whole);
    memcpy(whole + ID_BYTES - ID_TAIL_BYTES, bytes, ID_TAIL_BYTES);
    id_unpack(whole, sizeof(whole), true, dst, size);
}

/* The context's columns of a row, from column first on: actor kind, id and name, source IP, user
 * agent, action, project, environment, path, keys, result. */
static void read_context(const struct db_row *s, int first, struct cf_audit_event *e)
{
    char *const fields[] = {e->actor_kind, e->actor_id, e->actor_name, e->source_ip,
                            e->user_agent, e->action,   e->project_id, e->environment,
                            e->path,       e->keys,     e->result};
    const size_t sizes[] = {sizeof(e->actor_kind), sizeof(e->actor_id),    sizeof(e->actor_name),
                            sizeof(e->source_ip),  sizeof(e->user_agent),  sizeof(e->action),
                            sizeof(e->project_id), sizeof(e->environment), sizeof(e->path),
                            sizeof(e->keys),       sizeof(e->result)};
    for (size_t i = 0; i < CF_ARRAY_SIZE(fields); i++)
        db_row_text(s, first + (int)i, fields[i], sizes[i]);
}

static enum cf_rc read_audit_event(const struct db_row *s, void *item)
{
    struct cf_audit_event *e = item;
    e->seq = db_row_int64(s, 0);
    e->time_us = db_row_int64(s, 2);
    event_id_column(s, 1, e->time_us, e->id, sizeof(e->id));
    read_context(s, 3, e);
    db_row_text(s, 14, e->reason, sizeof(e->reason));
    id_column(s, 15, false, REQUEST_ID_BYTES, e->request_id, sizeof(e->request_id));
    enum cf_rc rc = db_row_status(s);
    /* No event before it (event 1, or the one before was deleted): zeros, as event 1 links. */
    size_t len = 0;
    if (rc == CF_OK && !db_row_bytes(s, 16, &len))
        memset(e->prev_hash, 0, sizeof(e->prev_hash));
    else if (rc == CF_OK)
        rc = sql_col_fixed(s, 16, e->prev_hash, sizeof(e->prev_hash));
    return rc == CF_OK ? sql_col_fixed(s, 17, e->hash, sizeof(e->hash)) : rc;
}

static enum cf_rc read_audit_checkpoint(const struct db_row *s, void *item)
{
    struct cf_audit_checkpoint *c = item;
    c->event_seq = db_row_int64(s, 0);
    c->time_us = db_row_int64(s, 1);
    enum cf_rc rc = sql_col_fixed(s, 3, c->signature, sizeof(c->signature));
    return rc == CF_OK ? sql_col_fixed(s, 2, c->event_hash, sizeof(c->event_hash)) : rc;
}

/* An event as read: its own columns, its context's (NULL, read as "", when the context is gone:
 * an edit for the chain), keys from the context or its key set (the context's keys column when it
 * has no key set or when that column is not empty: text written there afterwards is read, and the
 * chain sees the edit; "" when the key set is gone), and prevHash: the hash of the event before it,
 * or the anchor's when that event is the last archived one (NULL, read as zeros, when neither
 * exists). */
#define AUDIT_FROM " FROM audit_events e LEFT JOIN audit_contexts c ON c.id = e.context"
#define AUDIT_READ_COLS                                                                            \
    "e.seq, e.id, e.time_us, c.actor_kind, c.actor_id, c.actor_name, c.source_ip, c.user_agent,"   \
    " c.action, c.project_id, c.environment, c.path, CASE WHEN c.key_set = 0 OR c.keys <> ''"      \
    " THEN c.keys ELSE COALESCE((SELECT k.keys FROM audit_key_sets k WHERE k.id = c.key_set), '')" \
    " END, c.result, e.reason, e.request_id,"                                                      \
    " COALESCE((SELECT p.hash FROM audit_events p WHERE p.seq = e.seq - 1),"                       \
    " (SELECT a.anchor_hash FROM audit_archive_state a WHERE a.id = 1"                             \
    " AND a.anchor_seq = e.seq - 1)), e.hash"

/* A list of names at most this long stays in its context: a reference would save less than it
 * costs (a lookup per event, and the key set's row for a list seen once). */
#define KEY_SET_MIN_LEN 48

static struct sql_stmt ST_AUDIT_LAST =
    SQL_STMT("SELECT " AUDIT_READ_COLS AUDIT_FROM " ORDER BY e.seq DESC LIMIT 1");

static struct sql_stmt ST_AUDIT_INSERT =
    SQL_STMT("INSERT INTO audit_events (seq, id, time_us, context, reason, request_id, hash)"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");

static struct sql_stmt ST_KEY_SET_GET = SQL_STMT("SELECT keys FROM audit_key_sets WHERE id = ?1");

static struct sql_stmt ST_KEY_SET_ADD =
    SQL_STMT("INSERT INTO audit_key_sets (id, keys) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING");

static void digest_text(crypto_generichash_state *h, const char *text)
{
    uint8_t len[8];
    uint64_t n = strlen(text);
    for (int i = 7; i >= 0; i--, n >>= 8)
        len[i] = (uint8_t)n;
    crypto_generichash_update(h, len, sizeof(len));
    crypto_generichash_update(h, (const uint8_t *)text, strlen(text));
}

/* The id of a list of names: the first 8 bytes of its BLAKE2b-256 hash, never 0 (0 means "no key
 * set"). Two lists with the same id are told apart by key_set_of. */
static int64_t key_set_id(const char *keys)
{
    uint8_t digest[crypto_generichash_BYTES];
    static const char domain[] = "coffer-audit-key-set-v1";
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, sizeof(digest));
    crypto_generichash_update(&h, (const uint8_t *)domain, sizeof(domain));
    crypto_generichash_update(&h, (const uint8_t *)keys, strlen(keys));
    crypto_generichash_final(&h, digest, sizeof(digest));
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id = id << 8 | digest[i];
    return id ? (int64_t)id : 1;
}
/* Reads the stored list of a key set and says whether it is probe->keys. */
struct key_set_probe {
    const char *keys;
    bool same;
};

static enum cf_rc probe_key_set(const struct db_row *s, void *item)
{
    struct key_set_probe *probe = item;
    char *stored = NULL;
    enum cf_rc rc = sql_col_strdup(s, 0, &stored);
    probe->same = rc == CF_OK && strcmp(stored, probe->keys) == 0;
    free(stored);
    return rc;
}

/* The key set an event naming keys refers to, added when new (inside the append's transaction, so
 * it commits or rolls back with the event); *id 0 when keys stays in the event: a short list, or
 * (never seen in practice, but possible) another list stored under the same id. Adding is
 * idempotent, so servers sharing a database may add the same list at once. */
static enum cf_rc key_set_of(struct db_conn *c, const char *keys, int64_t *id, struct cf_err *err)
{
    *id = 0;
    if (strlen(keys) <= KEY_SET_MIN_LEN)
        return CF_OK;
    int64_t candidate = key_set_id(keys);
    struct key_set_probe probe = {.keys = keys};
    bool found = false;
    int64_t added = 0;
    enum cf_rc rc =
        sql_get_row(c, &ST_KEY_SET_GET, ARGS(A_INT(candidate)), probe_key_set, &probe, &found, err);
    if (rc == CF_OK && !found)
        rc = sql_exec(c, &ST_KEY_SET_ADD, ARGS(A_INT(candidate), A_TEXT(keys)), &added, err);
    /* Added meanwhile by another server: what it added decides. */
    if (rc == CF_OK && !found && added == 0)
        rc = sql_get_row(c, &ST_KEY_SET_GET, ARGS(A_INT(candidate)), probe_key_set, &probe, &found,
                         err);
    if (rc == CF_OK && (added == 1 || (found && probe.same)))
        *id = candidate;
    return rc;
}

/* A context as read (its keys resolved as AUDIT_READ_COLS does), found by its digest. */
static struct sql_stmt ST_CONTEXT_GET =
    SQL_STMT("SELECT c.id, c.actor_kind, c.actor_id, c.actor_name, c.source_ip, c.user_agent,"
             " c.action, c.project_id, c.environment, c.path, CASE WHEN c.key_set = 0 OR"
             " c.keys <> '' THEN c.keys ELSE COALESCE((SELECT k.keys FROM audit_key_sets k"
             " WHERE k.id = c.key_set), '') END, c.result FROM audit_contexts c"
             " WHERE c.digest = ?1");

static struct sql_stmt ST_CONTEXT_ID = SQL_STMT("SELECT id FROM audit_contexts WHERE digest = ?1");

/* Reads a context found by its digest and says whether it holds probe->event's fields. */
struct context_probe {
    const struct cf_audit_event *event;
    struct cf_audit_event *stored; /* scratch */
    int64_t id;
    bool same;
};

/* Whether two events have the same context: every field a context holds. */
static bool same_context(const struct cf_audit_event *x, const struct cf_audit_event *e)
{
    return strcmp(x->actor_kind, e->actor_kind) == 0 && strcmp(x->actor_id, e->actor_id) == 0 &&
           strcmp(x->actor_name, e->actor_name) == 0 && strcmp(x->source_ip, e->source_ip) == 0 &&
           strcmp(x->user_agent, e->user_agent) == 0 && strcmp(x->action, e->action) == 0 &&
           strcmp(x->project_id, e->project_id) == 0 &&
           strcmp(x->environment, e->environment) == 0 && strcmp(x->path, e->path) == 0 &&
           strcmp(x->keys, e->keys) == 0 && strcmp(x->result, e->result) == 0;
}

static enum cf_rc probe_context(const struct db_row *s, void *item)
{
    struct context_probe *probe = item;
    probe->id = db_row_int64(s, 0);
    read_context(s, 1, probe->stored);
    /* A value too long for its field is a context edited after the fact: not this event's. */
    probe->same = db_row_status(s) == CF_OK && same_context(probe->stored, probe->event);
    return CF_OK;
}

/* The contexts one append has found or made already, inside its own transaction: the events of a
 * batch alike (a pipeline polling one secret) share one, looked up once. */
#define CONTEXT_MEMO 8
struct context_memo {
    const struct cf_audit_event *event[CONTEXT_MEMO];
    int64_t id[CONTEXT_MEMO];
    size_t n, next;
};

static bool memo_find(const struct context_memo *memo, const struct cf_audit_event *e, int64_t *id)
{
    for (size_t i = 0; i < memo->n; i++) {
        if (same_context(memo->event[i], e)) {
            *id = memo->id[i];
            return true;
        }
    }
    return false;
}

static void memo_add(struct context_memo *memo, const struct cf_audit_event *e, int64_t id)
{
    memo->event[memo->next] = e;
    memo->id[memo->next] = id;
    memo->next = (memo->next + 1) % CONTEXT_MEMO;
    if (memo->n < CONTEXT_MEMO)
        memo->n++;
}

/* A new context takes the next id: appends run one at a time (a write transaction each), so the
 * maximum cannot move meanwhile; two servers adding the same context at once both find it by its
 * digest afterwards. */
static struct sql_stmt ST_CONTEXT_ADD = SQL_STMT(
    "INSERT INTO audit_contexts (id, digest, actor_kind, actor_id, actor_name, source_ip,"
    " user_agent, action, project_id, environment, path, keys, key_set, result)"
    " VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM audit_contexts), ?1, ?2, ?3, ?4, ?5, ?6, ?7,"
    " ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT (digest) DO NOTHING");

static struct sql_stmt ST_CONTEXT_LAST = SQL_STMT("SELECT MAX(id) FROM audit_contexts");

#define CONTEXT_DIGEST_BYTES 16

/* The digest of an event's context: a hash of every field a context holds, the full list of
 * names whichever way the context stores it. */
static void context_digest(const struct cf_audit_event *e, uint8_t digest[CONTEXT_DIGEST_BYTES])
{
    static const char domain[] = "coffer-audit-context-v1";
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, CONTEXT_DIGEST_BYTES);
    crypto_generichash_update(&h, (const uint8_t *)domain, sizeof(domain));
    const char *const fields[] = {e->actor_kind, e->actor_id, e->actor_name, e->source_ip,
                                  e->user_agent, e->action,   e->project_id, e->environment,
                                  e->path,       e->keys,     e->result};
    for (size_t i = 0; i < CF_ARRAY_SIZE(fields); i++)
        digest_text(&h, fields[i]);
    crypto_generichash_final(&h, digest, CONTEXT_DIGEST_BYTES);
}

/* The stored context found by the digest of e's fields: *id is its id when it holds exactly them
 * (0 otherwise); *found says whether there is one under the digest at all. */
static enum cf_rc context_find(struct db_conn *c, const struct cf_audit_event *e,
                               const uint8_t digest[CONTEXT_DIGEST_BYTES], int64_t *id, bool *found,
                               struct cf_err *err)
{
    struct context_probe probe = {.event = e, .stored = malloc(sizeof(struct cf_audit_event))};
    *id = 0;
    *found = false;
    if (!probe.stored)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    enum cf_rc rc = sql_get_row(c, &ST_CONTEXT_GET, ARGS(A_BLOB(digest, CONTEXT_DIGEST_BYTES)),
                                probe_context, &probe, found, err);
    free(probe.stored);
    if (rc == CF_OK && *found && probe.same)
        *id = probe.id;
    return rc;
}

/* The context of an event (audit_contexts, migration 0016): the one found by the digest of its
 * fields when it holds them, else a new one (inside the append's transaction, so it commits or
 * rolls back with the event). A context found with other fields (edited since it was stored, or a
 * digest collision) is never referred to: the event gets a context of its own, without a digest. */
static enum cf_rc context_of(struct db_conn *c, const struct cf_audit_event *e, int64_t *id,
                             struct cf_err *err)
{
    uint8_t digest[CONTEXT_DIGEST_BYTES];
    context_digest(e, digest);
    bool found = false;
    int64_t key_set = 0;
    enum cf_rc rc = context_find(c, e, digest, id, &found, err);
    if (rc == CF_OK && *id != 0)
        return CF_OK;
    if (rc == CF_OK)
        rc = key_set_of(c, e->keys, &key_set, err);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_CONTEXT_ADD,
                      ARGS(found ? (struct sq_arg)A_NULLABLE_BLOB(NULL, 0)
                                 : (struct sq_arg)A_BLOB(digest, CONTEXT_DIGEST_BYTES),
                           A_TEXT(e->actor_kind), A_TEXT(e->actor_id), A_TEXT(e->actor_name),
                           A_TEXT(e->source_ip), A_TEXT(e->user_agent), A_TEXT(e->action),
                           A_TEXT(e->project_id), A_TEXT(e->environment), A_TEXT(e->path),
                           A_TEXT(key_set ? "" : e->keys), A_INT(key_set), A_TEXT(e->result)),
                      NULL, err);
    /* Without a digest: the one just added (the newest). With one: the one under it (added
     * here, or meanwhile by another server). */
    if (rc == CF_OK && found)
        rc = sql_get_row(c, &ST_CONTEXT_LAST, NO_ARGS, sql_read_int64, id, &found, err);
    else if (rc == CF_OK)
        rc = sql_get_row(c, &ST_CONTEXT_ID, ARGS(A_BLOB(digest, CONTEXT_DIGEST_BYTES)),
                         sql_read_int64, id, &found, err);
    if (rc == CF_OK && *id == 0)
        rc = cf_err_set(err, CF_ESTORE, "the audit event's context could not be stored");
    return rc;
}

static struct sql_stmt ST_ANCHOR_GET =
    SQL_STMT("SELECT anchor_seq, anchor_time_us, anchor_hash, anchor_signature"
             " FROM audit_archive_state WHERE id = 1");

/* The anchor row; event_seq 0 while nothing was archived (the blobs are NULL then). */
static enum cf_rc read_anchor(const struct db_row *s, void *item)
{
    struct cf_audit_checkpoint *a = item;
    memset(a, 0, sizeof(*a));
    a->event_seq = db_row_int64(s, 0);
    a->time_us = db_row_int64(s, 1);
    if (a->event_seq == 0)
        return CF_OK;
    enum cf_rc rc = sql_col_fixed(s, 2, a->event_hash, sizeof(a->event_hash));
    return rc == CF_OK ? sql_col_fixed(s, 3, a->signature, sizeof(a->signature)) : rc;
}

/* Finds the stored contexts of events before the append's transaction: known[i] is event i's
 * context id, or 0 when it is to be found or made inside it. A context row is never changed or
 * removed by Coffer (retention included), so one found holding an event's fields still does when
 * the event is inserted, and these lookups (a third of an append's time under a steady stream of
 * requests) no longer hold the write lock every writer waits for. Best effort: whatever fails here
 * is looked for again inside. */
static void contexts_known(struct cf_store *base, struct cf_audit_event *const *events, size_t n,
                           int64_t *known)
{
    struct context_memo memo = {0};
    struct db_conn *c;
    struct cf_err ignored;
    if (sql_conn_get(base, &c, &ignored) != CF_OK)
        return;
    cf_store_read_begin(base); /* one read transaction for all of them */
    for (size_t i = 0; i < n; i++) {
        if (memo_find(&memo, events[i], &known[i]))
            continue;
        uint8_t digest[CONTEXT_DIGEST_BYTES];
        bool found;
        context_digest(events[i], digest);
        if (context_find(c, events[i], digest, &known[i], &found, &ignored) != CF_OK)
            known[i] = 0;
        memo_add(&memo, events[i], known[i]);
    }
    cf_store_read_end(base);
}

enum cf_rc cf_store_audit_append(struct cf_store *base, struct cf_audit_event *const *events,
                                 size_t n, void (*chain)(void *ctx, struct cf_audit_event *event),
                                 void *ctx, struct cf_err *err)
{
    struct db_conn *c;
    struct cf_audit_event *last = NULL;
    struct context_memo memo = {0};
    bool found = false;
    int64_t *known = calloc(n ? n : 1, sizeof(*known));
    if (!known)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    contexts_known(base, events, n, known);
    enum cf_rc rc = sql_tx_begin_locked(base, DB_LOCK_AUDIT, &c, err);
    if (rc != CF_OK) {
        free(known);
        return rc;
    }
    last = malloc(sizeof(*last));
    if (!last)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    if (rc == CF_OK)
        rc = sql_get_row(c, &ST_AUDIT_LAST, NO_ARGS, read_audit_event, last, &found, err);
    /* Every event archived (the archiver keeps the newest, but a store edited by hand may not):
     * the chain goes on from the anchor. */
    struct cf_audit_checkpoint anchor = {0};
    bool anchored = false;
    if (rc == CF_OK && !found)
        rc = sql_get_row(c, &ST_ANCHOR_GET, NO_ARGS, read_anchor, &anchor, &anchored, err);
    anchored = anchored && anchor.event_seq > 0;
    int64_t seq = found ? last->seq : anchored ? anchor.event_seq : 0;
    const uint8_t *prev = found ? last->hash : anchored ? anchor.event_hash : NULL;
    for (size_t i = 0; rc == CF_OK && i < n; i++) {
        struct cf_audit_event *e = events[i];
        e->seq = ++seq;
        if (prev)
            memcpy(e->prev_hash, prev, sizeof(e->prev_hash));
        else
            memset(e->prev_hash, 0, sizeof(e->prev_hash));
        chain(ctx, e); /* over the full list of names, whichever way it is stored */
        int64_t context = known[i];
        if (context == 0 && !memo_find(&memo, e, &context)) {
            rc = context_of(c, e, &context, err);
            if (rc != CF_OK)
                break;
            memo_add(&memo, e, context);
        }
        uint8_t id[ID_BYTES], head[CF_UUID_V7_HEAD_BYTES], request_id[REQUEST_ID_BYTES];
        bool id_binary = id_pack(e->id, true, id, sizeof(id));
        cf_uuid_v7_head(e->time_us, head);
        size_t id_from = id_binary && memcmp(id, head, sizeof(head)) == 0 ? sizeof(head) : 0;
        bool request_id_binary = id_pack(e->request_id, false, request_id, sizeof(request_id));
        rc = sql_exec(c, &ST_AUDIT_INSERT,
                      ARGS(A_INT(e->seq),
                           id_binary ? (struct sq_arg)A_BLOB(id + id_from, sizeof(id) - id_from)
                                     : (struct sq_arg)A_BLOB(e->id, strlen(e->id)),
                           A_INT(e->time_us), A_INT(context), A_TEXT(e->reason),
                           request_id_binary
                               ? (struct sq_arg)A_BLOB(request_id, sizeof(request_id))
                               : (struct sq_arg)A_BLOB(e->request_id, strlen(e->request_id)),
                           A_BLOB(e->hash, sizeof(e->hash))),
                      NULL, err);
        prev = e->hash;
    }
    free(last);
    free(known);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_AUDIT_LIST =
    SQL_STMT("SELECT " AUDIT_READ_COLS AUDIT_FROM " WHERE e.seq > ?1"
             " AND (?2 = 0 OR e.time_us >= ?2) AND (?3 = 0 OR e.time_us < ?3)"
             " AND (?4 = '' OR c.actor_id = ?4 OR c.actor_name = ?4)"
             " AND (?5 = '' OR c.action = ?5"
             "      OR (substr(?5, length(?5), 1) = '.' AND substr(c.action, 1, length(?5)) = ?5))"
             " AND (?6 = '' OR c.project_id = ?6) ORDER BY e.seq LIMIT ?7");

enum cf_rc cf_store_audit_list(struct cf_store *base, const struct cf_audit_filter *f,
                               struct cf_audit_event_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_audit_event), .read = read_audit_event};
    enum cf_rc rc = sql_collect_all(
        base, &ST_AUDIT_LIST,
        ARGS(A_INT(f->after_seq), A_INT(f->since_us), A_INT(f->until_us),
             A_TEXT(sql_str_or_empty(f->actor)), A_TEXT(sql_str_or_empty(f->action)),
             A_TEXT(sql_str_or_empty(f->project_id)), A_INT(f->limit ? (int64_t)f->limit : -1)),
        &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_audit_event_list_release(out);
    return rc;
}

static struct sql_stmt ST_AUDIT_GET =
    SQL_STMT("SELECT " AUDIT_READ_COLS AUDIT_FROM " WHERE e.seq = ?1");

enum cf_rc cf_store_audit_get(struct cf_store *base, int64_t seq, struct cf_audit_event *out,
                              struct cf_err *err)
{
    char name[24];
    snprintf(name, sizeof(name), "%lld", (long long)seq);
    if (seq == 0)
        return sql_get_one(base, &ST_AUDIT_LAST, NO_ARGS, read_audit_event, out, "audit event",
                           "last", err);
    return sql_get_one(base, &ST_AUDIT_GET, ARGS(A_INT(seq)), read_audit_event, out, "audit event",
                       name, err);
}

static struct sql_stmt ST_AUDIT_CHECKPOINT_INSERT =
    SQL_STMT("INSERT INTO audit_checkpoints (event_seq, time_us, event_hash,"
             " signature) VALUES (?1, ?2, ?3, ?4)");

enum cf_rc cf_store_audit_checkpoint_add(struct cf_store *base,
                                         const struct cf_audit_checkpoint *cp, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin_locked(base, DB_LOCK_AUDIT, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_AUDIT_CHECKPOINT_INSERT,
                  ARGS(A_INT(cp->event_seq), A_INT(cp->time_us),
                       A_BLOB(cp->event_hash, sizeof(cp->event_hash)),
                       A_BLOB(cp->signature, sizeof(cp->signature))),
                  NULL, err);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_AUDIT_CHECKPOINT_LIST =
    SQL_STMT("SELECT event_seq, time_us, event_hash, signature"
             " FROM audit_checkpoints ORDER BY event_seq");

enum cf_rc cf_store_audit_checkpoint_list(struct cf_store *base,
                                          struct cf_audit_checkpoint_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_audit_checkpoint),
                                .read = read_audit_checkpoint};
    enum cf_rc rc = sql_collect_all(base, &ST_AUDIT_CHECKPOINT_LIST, NO_ARGS, &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_audit_checkpoint_list_release(out);
    return rc;
}

/* ---- retention ---- */

enum cf_rc cf_store_audit_anchor_get(struct cf_store *base, struct cf_audit_checkpoint *out,
                                     bool *found, struct cf_err *err)
{
    struct db_conn *c;
    bool row = false;
    *found = false;
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = sql_tx_begin_locked(base, DB_LOCK_AUDIT, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_row(c, &ST_ANCHOR_GET, NO_ARGS, read_anchor, out, &row, err);
    rc = sql_tx_end(c, rc, err);
    *found = rc == CF_OK && row && out->event_seq > 0;
    return rc;
}

static struct sql_stmt ST_ARCHIVE_CLAIM =
    SQL_STMT("UPDATE audit_archive_state SET owner = ?1, lease_until_us = ?3"
             " WHERE id = 1 AND (owner = ?1 OR owner = '' OR lease_until_us < ?2)");

static struct sql_stmt ST_ARCHIVE_STATE_ADD =
    SQL_STMT("INSERT INTO audit_archive_state (id) VALUES (1) ON CONFLICT (id) DO NOTHING");

enum cf_rc cf_store_audit_archive_claim(struct cf_store *base, const char *owner, int64_t now_us,
                                        int64_t lease_until_us, bool *claimed, struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc = sql_tx_begin_locked(base, DB_LOCK_AUDIT, &c, err);
    if (rc != CF_OK)
        return rc;
    /* The state row, on the first claim of a store (idempotent: servers may race to make it). */
    rc = sql_exec(c, &ST_ARCHIVE_STATE_ADD, NO_ARGS, NULL, err);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_ARCHIVE_CLAIM,
                      ARGS(A_TEXT(owner), A_INT(now_us), A_INT(lease_until_us)), &changes, err);
    rc = sql_tx_end(c, rc, err);
    *claimed = rc == CF_OK && changes == 1;
    return rc;
}

static struct sql_stmt ST_ARCHIVE_RELEASE = SQL_STMT(
    "UPDATE audit_archive_state SET owner = '', lease_until_us = 0 WHERE id = 1 AND owner = ?1");

enum cf_rc cf_store_audit_archive_release(struct cf_store *base, const char *owner,
                                          struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin_locked(base, DB_LOCK_AUDIT, &c, err);
    if (rc == CF_OK)
        rc = sql_tx_end(c, sql_exec(c, &ST_ARCHIVE_RELEASE, ARGS(A_TEXT(owner)), NULL, err), err);
    return rc;
}

/* Moves the anchor, only from where the archiver found it and while it holds the claim. */
static struct sql_stmt ST_ANCHOR_MOVE =
    SQL_STMT("UPDATE audit_archive_state SET anchor_seq = ?3, anchor_time_us = ?4,"
             " anchor_hash = ?5, anchor_signature = ?6"
             " WHERE id = 1 AND owner = ?1 AND anchor_seq = ?2");

static struct sql_stmt ST_LAST_READ_PUT =
    SQL_STMT("INSERT INTO audit_last_reads (project_id, environment, path, key, read_at_us,"
             " actor_kind, actor_id, actor_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
             " ON CONFLICT (project_id, environment, path, key) DO UPDATE SET"
             " read_at_us = excluded.read_at_us, actor_kind = excluded.actor_kind,"
             " actor_id = excluded.actor_id, actor_name = excluded.actor_name"
             " WHERE excluded.read_at_us > audit_last_reads.read_at_us");

static struct sql_stmt ST_ARCHIVED_EVENTS_DELETE =
    SQL_STMT("DELETE FROM audit_events WHERE seq > ?1 AND seq <= ?2");

static struct sql_stmt ST_ARCHIVED_CHECKPOINTS_DELETE =
    SQL_STMT("DELETE FROM audit_checkpoints WHERE event_seq <= ?1");

enum cf_rc cf_store_audit_archive_commit(struct cf_store *base, const char *owner, int64_t old_seq,
                                         const struct cf_audit_checkpoint *anchor,
                                         const struct cf_audit_last_read *reads, size_t n,
                                         struct cf_err *err)
{
    struct db_conn *c;
    int64_t moved = 0;
    enum cf_rc rc = sql_tx_begin_locked(base, DB_LOCK_AUDIT, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_ANCHOR_MOVE,
                  ARGS(A_TEXT(owner), A_INT(old_seq), A_INT(anchor->event_seq),
                       A_INT(anchor->time_us),
                       A_BLOB(anchor->event_hash, sizeof(anchor->event_hash)),
                       A_BLOB(anchor->signature, sizeof(anchor->signature))),
                  &moved, err);
    if (rc == CF_OK && moved != 1)
        rc = cf_err_set(err, CF_ECONFLICT,
                        "the audit archive moved on meanwhile (another server archived, or the "
                        "claim ran out)");
    for (size_t i = 0; rc == CF_OK && i < n; i++) {
        const struct cf_audit_last_read *r = &reads[i];
        rc = sql_exec(c, &ST_LAST_READ_PUT,
                      ARGS(A_TEXT(r->project_id), A_TEXT(r->environment), A_TEXT(r->path),
                           A_TEXT(r->key), A_INT(r->read_at_us), A_TEXT(r->actor_kind),
                           A_TEXT(r->actor_id), A_TEXT(r->actor_name)),
                      NULL, err);
    }
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_ARCHIVED_EVENTS_DELETE, ARGS(A_INT(old_seq), A_INT(anchor->event_seq)),
                      NULL, err);
    if (rc == CF_OK)
        rc =
            sql_exec(c, &ST_ARCHIVED_CHECKPOINTS_DELETE, ARGS(A_INT(anchor->event_seq)), NULL, err);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc read_last_read(const struct db_row *s, void *item)
{
    struct cf_audit_last_read *r = item;
    db_row_text(s, 0, r->project_id, sizeof(r->project_id));
    db_row_text(s, 1, r->environment, sizeof(r->environment));
    db_row_text(s, 2, r->path, sizeof(r->path));
    db_row_text(s, 3, r->key, sizeof(r->key));
    r->read_at_us = db_row_int64(s, 4);
    db_row_text(s, 5, r->actor_kind, sizeof(r->actor_kind));
    db_row_text(s, 6, r->actor_id, sizeof(r->actor_id));
    db_row_text(s, 7, r->actor_name, sizeof(r->actor_name));
    return db_row_status(s);
}

static struct sql_stmt ST_LAST_READS =
    SQL_STMT("SELECT project_id, environment, path, key, read_at_us, actor_kind, actor_id,"
             " actor_name FROM audit_last_reads WHERE project_id = ?1");

enum cf_rc cf_store_audit_last_reads(struct cf_store *base, const char *project_id,
                                     struct cf_audit_last_read_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_audit_last_read), .read = read_last_read};
    enum cf_rc rc = sql_collect_all(base, &ST_LAST_READS, ARGS(A_TEXT(project_id)), &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_audit_last_read_list_release(out);
    return rc;
}
