/* The storage interface: every operation Coffer performs on its database, in domain terms, each one
 * transaction. No SQL, no backend type and no JSON crosses it. The functions are written once, in
 * the domain files of src/store, over the SQLite or PostgreSQL driver of sqldb.h (cf_store_open
 * picks it); a driver's store embeds struct cf_store as its first member.
 *
 * Values arrive and leave sealed (see crypto/keyring.h): the store never sees plaintext.
 *
 * Conventions:
 * - Every function returns CF_OK or an error code with err filled; CF_ENOTFOUND for a missing row,
 *   CF_EEXIST for a uniqueness violation (the message names the duplicate), CF_ECONFLICT when an
 * expected version does not match, CF_EUNAVAIL when the database is busy or unreachable, CF_ESTORE
 * otherwise.
 * - Output structs and lists are filled by the callee and released by the caller with the matching
 *   cf_*_release function (safe on zeroed structs). Strings in fixed arrays are NUL-terminated.
 * - Times are Unix milliseconds. An id is a UUID string.
 * - The store is safe to use from many threads at once (SQLite: one connection per thread). */
#ifndef CF_STORE_STORE_H
#define CF_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "util/id.h"

#define CF_SLUG_MAX 64
#define CF_NAME_MAX 128
#define CF_DESC_MAX 1024
#define CF_PATH_MAX 1024
#define CF_KEY_MAX 256
#define CF_COLOR_MAX 32

/* Sizes of the fixed binary fields below, named here because the store sits under crypto/ and core/
 * and may not include them; where those define their own names, they assert equality. */
#define CF_TOKEN_HASH_LEN 32    /* keyed hash of a client secret or token (crypto/token.h) */
#define CF_AUDIT_HASH_LEN 32    /* chained hash of an audit event (core/audit.h) */
#define CF_AUDIT_SIG_LEN 64     /* Ed25519 signature of an audit checkpoint (core/audit.h) */
#define CF_COPY_CHECKSUM_LEN 32 /* BLAKE2b of a table's rows in a store copy (cf_store_copy) */
/* An audit event's request id with its NUL: room for more than the server's own (CF_REQID_LEN). */
#define CF_AUDIT_REQUEST_ID_LEN 40
_Static_assert(CF_AUDIT_REQUEST_ID_LEN >= CF_REQID_LEN, "an audit event holds a request id");

struct cf_project {
    char id[CF_UUID_LEN];
    char slug[CF_SLUG_MAX + 1];
    char name[CF_NAME_MAX + 1];
    char description[CF_DESC_MAX + 1];
    int64_t created_at;
    int64_t updated_at;
    uint8_t *wrapped_key; /* heap: the project data key wrapped by the root key */
    size_t wrapped_key_len;
};

struct cf_env {
    char id[CF_UUID_LEN];
    char project_id[CF_UUID_LEN];
    char slug[CF_SLUG_MAX + 1];
    char name[CF_NAME_MAX + 1];
    int position; /* 1-based, dense within a project */
    int64_t created_at;
    int64_t updated_at;
};

struct cf_folder {
    char id[CF_UUID_LEN];
    char env_id[CF_UUID_LEN];
    char parent_id[CF_UUID_LEN]; /* "" for the root folder */
    char name[CF_SLUG_MAX + 1];  /* "" for the root folder */
    char path[CF_PATH_MAX + 1];  /* "/" or "/a/b" */
    char description[CF_DESC_MAX + 1];
    int64_t created_at;
    int64_t updated_at;
};

/* One version of a secret. */
struct cf_secret {
    char id[CF_UUID_LEN]; /* stable across versions */
    char folder_id[CF_UUID_LEN];
    char project_id[CF_UUID_LEN]; /* filled on reads */
    char env_id[CF_UUID_LEN];     /* filled on reads */
    char path[CF_PATH_MAX + 1];   /* the folder's path, filled on reads */
    char key[CF_KEY_MAX + 1];     /* the key this version has (a rename makes a new version) */
    int64_t version;              /* 1, 2, ... */
    uint8_t *sealed;              /* heap: the sealed value */
    size_t sealed_len;
    char *comment;      /* heap, "" when none */
    char *tags;         /* heap: JSON array text of tag ids, "[]" when none; opaque to the store */
    int64_t expires_at; /* 0: no expiry */
    int64_t reminder_repeat_days; /* rotation reminder interval; 0: none */
    char *reminder_note;          /* heap, "" when none (NULL accepted on writes) */
    bool skip_multiline;
    int64_t created_at; /* when the secret was created (version 1) */
    int64_t updated_at; /* when this version was written */
};

/* A secret's current version without its value, comment or tags, and how many versions it has:
 * what an inventory shows (no sealed bytes are read). */
struct cf_secret_meta {
    char id[CF_UUID_LEN];
    char project_id[CF_UUID_LEN];
    char env_id[CF_UUID_LEN];
    char path[CF_PATH_MAX + 1]; /* the folder's path */
    char key[CF_KEY_MAX + 1];
    int64_t version;              /* the current version */
    int64_t version_count;        /* versions stored */
    int64_t expires_at;           /* 0: no expiry */
    int64_t reminder_repeat_days; /* 0: none */
    int64_t created_at;           /* when the secret was created (version 1) */
    int64_t updated_at;           /* when the current version was written */
};

struct cf_secret_meta_list {
    struct cf_secret_meta *items;
    size_t n;
};

struct cf_import {
    char id[CF_UUID_LEN];
    char folder_id[CF_UUID_LEN];     /* the importing folder */
    char import_env_id[CF_UUID_LEN]; /* the imported environment */
    char import_path[CF_PATH_MAX + 1];
    int position; /* 1-based order within the importing folder */
    int64_t created_at;
    int64_t updated_at;
};

struct cf_tag {
    char id[CF_UUID_LEN];
    char project_id[CF_UUID_LEN];
    char slug[CF_SLUG_MAX + 1];
    char name[CF_NAME_MAX + 1];
    char color[CF_COLOR_MAX + 1];
    int64_t created_at;
    int64_t updated_at;
};

struct cf_project_list {
    struct cf_project *items;
    size_t n;
};
struct cf_env_list {
    struct cf_env *items;
    size_t n;
};
struct cf_folder_list {
    struct cf_folder *items;
    size_t n;
};
struct cf_secret_list {
    struct cf_secret *items;
    size_t n;
};
struct cf_import_list {
    struct cf_import *items;
    size_t n;
};
struct cf_tag_list {
    struct cf_tag *items;
    size_t n;
};

/* ---- machine identities ---- */

#define CF_IPS_MAX 2048 /* comma-separated CIDR list */
#define CF_AUTH_METHOD_MAX 32
#define CF_ROLE_MAX 16

struct cf_identity {
    char id[CF_UUID_LEN];
    char name[CF_NAME_MAX + 1];
    int64_t created_at;
    int64_t updated_at;
};

/* What every auth method says about the access tokens it issues (accessTokenTTL,
 * accessTokenMaxTTL, accessTokenNumUsesLimit, accessTokenTrustedIps in the API). Durations in
 * seconds; 0 limits mean "none". Each method's configuration embeds one; core/identities.h
 * validates and defaults it, the store keeps it in the same four columns of every method's table.
 */
struct cf_token_policy {
    int64_t ttl;
    int64_t max_ttl;
    int64_t num_uses_limit;
    char trusted_ips[CF_IPS_MAX + 1]; /* comma-separated ranges, "0.0.0.0/0,::/0" when open */
};

/* Universal auth attached to an identity. */
struct cf_ua_config {
    char identity_id[CF_UUID_LEN];
    char client_id[CF_UUID_LEN];
    struct cf_token_policy token;
    char client_secret_trusted_ips[CF_IPS_MAX + 1]; /* "0.0.0.0/0,::/0" when open */
    int64_t created_at;
    int64_t updated_at;
};

/* JWT auth attached to an identity. Texts are public: public_keys is a JSON array of PEM
 * public keys, bound_claims a JSON object {path: "v1, v2"}, bound_audiences comma-separated; ""
 * means not bound. The texts that vary in size are heap strings owned by the configuration: a
 * configuration filled by jwt_auth_get or by core/identities.h has all seven non-NULL, and
 * cf_jwt_auth_config_release frees them (NULL pointers are fine there, and the store writes NULL
 * as ""). Their sizes are bounded by the limits below: the core refuses a longer one with an error
 * naming the field, the store refuses to write one. */
#define CF_JWT_KEYS_TEXT_MAX 32768 /* publicKeys, as JSON text */
#define CF_JWT_TEXT_MAX 4096       /* each other text of JWT and Kubernetes auth */
#define CF_JWT_CONFIG_TYPE_MAX 7   /* "static" or "jwks" */
struct cf_jwt_auth_config {
    char identity_id[CF_UUID_LEN];
    char configuration_type[CF_JWT_CONFIG_TYPE_MAX + 1];
    char *public_keys; /* at most CF_JWT_KEYS_TEXT_MAX characters */
    char *jwks_url;    /* this and the rest: at most CF_JWT_TEXT_MAX characters */
    char *jwks_ca_cert;
    char *bound_issuer;
    char *bound_audiences;
    char *bound_claims;
    char *bound_subject;
    int64_t clock_skew_leeway; /* seconds allowed on exp, nbf and iat */
    struct cf_token_policy token;
    int64_t created_at;
    int64_t updated_at;
};

/* Kubernetes auth attached to an identity. token_reviewer_jwt is a credential ("": the
 * login token reviews itself): callers wipe it and never render it. allowed_namespaces and
 * allowed_names are comma-separated globs ("" = any). */
#define CF_K8S_JWT_MAX 8192
/* The reviewer JWT as stored: sealed (crypto/serverkey.h), "sealed:v1:" + base64, or plain text
 * when written before sealing existed. */
#define CF_K8S_REVIEWER_STORED_MAX 11264
struct cf_k8s_auth_config {
    char identity_id[CF_UUID_LEN];
    char kubernetes_host[CF_JWT_TEXT_MAX + 1];
    char ca_cert[CF_JWT_TEXT_MAX + 1];
    char token_reviewer_jwt[CF_K8S_REVIEWER_STORED_MAX + 1];
    char allowed_namespaces[CF_JWT_TEXT_MAX + 1];
    char allowed_names[CF_JWT_TEXT_MAX + 1];
    char allowed_audience[CF_JWT_TEXT_MAX + 1];
    struct cf_token_policy token;
    int64_t created_at;
    int64_t updated_at;
};

struct cf_client_secret {
    char id[CF_UUID_LEN];
    char identity_id[CF_UUID_LEN];
    char description[CF_DESC_MAX + 1];
    char prefix[9]; /* the first 8 characters of the secret, shown in lists */
    /* keyed hash of the whole secret (crypto/token.h); the secret is never stored */
    uint8_t hash[CF_TOKEN_HASH_LEN];
    int64_t expires_at; /* 0: never */
    int64_t num_uses;
    int64_t num_uses_limit; /* 0: unlimited */
    bool revoked;
    int64_t created_at;
    int64_t updated_at;
};

/* An issued access token. The token itself is never stored: only its hash. */
struct cf_access_token {
    char id[CF_UUID_LEN];
    char identity_id[CF_UUID_LEN];
    char client_secret_id[CF_UUID_LEN];       /* "" unless issued by universal auth */
    char auth_method[CF_AUTH_METHOD_MAX + 1]; /* "universal-auth", "jwt-auth" */
    uint8_t hash[CF_TOKEN_HASH_LEN];
    int64_t ttl;     /* seconds, counted from created_at or the last renewal */
    int64_t max_ttl; /* seconds from created_at; 0: none */
    int64_t num_uses;
    int64_t num_uses_limit; /* 0: unlimited */
    bool revoked;
    char trusted_ips[CF_IPS_MAX + 1];
    int64_t created_at;
    int64_t last_renewed_at; /* 0: never renewed */
    /* Read with the token (token_get, in the same statement), not stored with it: the state of the
     * client secret that issued it, when client_secret_id is set. A token dies with its secret. */
    bool client_secret_found;
    bool client_secret_revoked;
    int64_t client_secret_expires_at; /* 0: never */
};

/* A rule narrowing a membership: the actions it allows (bit 1 << enum cf_action of core/core.h), in
 * an environment ("" any) under a path glob ("" any; core/authz.h has the glob syntax). The
 * environment is bound by its id, so that renaming or re-slugging environments never changes what a
 * rule covers; a rule whose environment was deleted covers nothing (a new environment never
 * inherits it). env_slug is for display only: the store neither keeps nor fills it, except for a
 * rule read in the legacy format that named the slug (env_id is CF_RULE_ENV_UNRESOLVED then, which
 * matches no environment until cf_store_open has bound it). */
struct cf_membership_rule {
    uint32_t actions;
    char env_id[CF_UUID_LEN];
    char env_slug[CF_SLUG_MAX + 1];
    char path_glob[CF_PATH_MAX + 1];
};

/* The env_id of a rule whose environment is unknown: the nil UUID, never an environment's id (those
 * are random version-4 UUIDs), so the rule covers nothing. */
#define CF_RULE_ENV_UNRESOLVED "00000000-0000-0000-0000-000000000000"

struct cf_membership {
    char id[CF_UUID_LEN];
    char identity_id[CF_UUID_LEN];
    char project_id[CF_UUID_LEN];
    char role[CF_ROLE_MAX + 1];       /* "admin", "member", "viewer", "no-access" */
    struct cf_membership_rule *rules; /* heap; NULL when none (the role applies everywhere) */
    size_t n_rules;
    int64_t created_at;
    int64_t updated_at;
};

struct cf_identity_list {
    struct cf_identity *items;
    size_t n;
};
struct cf_client_secret_list {
    struct cf_client_secret *items;
    size_t n;
};
struct cf_membership_list {
    struct cf_membership *items;
    size_t n;
};

/* ---- people: users, their sessions and personal access tokens (core/users.h) ---- */

#define CF_EMAIL_MAX 254
#define CF_PASSWORD_HASH_MAX                                                                       \
    127                     /* an Argon2id string of crypto_pwhash_str (crypto_pwhash_STRBYTES) */
#define CF_SSO_TEXT_MAX 512 /* an OpenID Connect issuer URL or subject */
#define CF_USER_STATUS_MAX 15

/* A user of the (one) organisation. email is lower-cased; password_hash, sso_issuer and
 * sso_subject are "" when the user has none (stored as NULL). */
struct cf_user {
    char id[CF_UUID_LEN];
    char email[CF_EMAIL_MAX + 1];
    char name[CF_NAME_MAX + 1];
    char org_role[CF_ROLE_MAX + 1];      /* "owner", "admin", "member" */
    char status[CF_USER_STATUS_MAX + 1]; /* "active", "disabled" */
    char password_hash[CF_PASSWORD_HASH_MAX + 1];
    char sso_issuer[CF_SSO_TEXT_MAX + 1];
    char sso_subject[CF_SSO_TEXT_MAX + 1];
    int64_t created_at;
    int64_t updated_at;
    int64_t last_login_at; /* 0: never */
};

struct cf_user_list {
    struct cf_user *items;
    size_t n;
};

/* A browser session: hash and csrf_hash are keyed hashes (crypto/token.h) of its secret and of its
 * CSRF token; neither is stored. */
struct cf_user_session {
    char id[CF_UUID_LEN];
    char user_id[CF_UUID_LEN];
    uint8_t hash[CF_TOKEN_HASH_LEN];
    uint8_t csrf_hash[CF_TOKEN_HASH_LEN];
    char source_ip[64];
    char user_agent[256];
    int64_t created_at;
    int64_t last_seen_at;
    int64_t expires_at; /* the absolute timeout */
};

struct cf_user_session_list {
    struct cf_user_session *items;
    size_t n;
};

/* A personal access token; hash is the keyed hash of the whole token, which is never stored. */
struct cf_pat {
    char id[CF_UUID_LEN];
    char user_id[CF_UUID_LEN];
    char name[CF_NAME_MAX + 1];
    uint8_t hash[CF_TOKEN_HASH_LEN];
    int64_t expires_at;
    bool revoked;
    int64_t created_at;
};

struct cf_pat_list {
    struct cf_pat *items;
    size_t n;
};

/* A group of users (core/groups.h). external_id is the id the identity provider knows it by (an
 * Entra ID group object id, or what a SCIM client gave it); "" when none (stored as NULL). */
struct cf_group {
    char id[CF_UUID_LEN];
    char name[CF_NAME_MAX + 1];
    char external_id[CF_SSO_TEXT_MAX + 1];
    int64_t created_at;
    int64_t updated_at;
};

struct cf_group_list {
    struct cf_group *items;
    size_t n;
};

/* A SCIM client's bearer token (core/scim.h); hash is the keyed hash of the whole token, which is
 * never stored. created_by: the email of the owner who made it. */
struct cf_scim_token {
    char id[CF_UUID_LEN];
    char name[CF_NAME_MAX + 1];
    uint8_t hash[CF_TOKEN_HASH_LEN];
    bool revoked;
    char created_by[CF_EMAIL_MAX + 1];
    int64_t created_at;
    int64_t last_used_at; /* 0: never */
};

struct cf_scim_token_list {
    struct cf_scim_token *items;
    size_t n;
};

/* A user a SCIM client provisioned: the userName (lower-cased) and externalId ("" none) it gave. */
struct cf_scim_user {
    char user_id[CF_UUID_LEN];
    char user_name[CF_EMAIL_MAX + 1];
    char external_id[CF_SSO_TEXT_MAX + 1];
    int64_t created_at;
};

struct cf_scim_user_list {
    struct cf_scim_user *items;
    size_t n;
};

/* ---- the audit log (core/audit.h has the chain and the verification) ---- */

/* One audit event. Strings are NUL-terminated and never hold a secret value, a client secret or a
 * token; keys is a comma-separated list of secret key names ("" for none). */
/* A new member needs its line in core/auditlog.c copy_event too (it copies field by field). */
struct cf_audit_event {
    int64_t seq;     /* 1, 2, ... assigned when appended */
    int64_t time_us; /* UTC, microseconds since the epoch */
    char id[CF_UUID_LEN];
    char actor_kind[16]; /* "admin", "identity", "anonymous" */
    char actor_id[CF_UUID_LEN];
    char actor_name[CF_NAME_MAX + 1];
    char source_ip[64];
    char user_agent[256];
    char action[128]; /* e.g. "secrets.read", "auth.login" (docs/audit.md lists them) */
    char project_id[CF_UUID_LEN];
    char environment[CF_SLUG_MAX + 1];
    char path[CF_PATH_MAX + 1];
    char keys[4096];
    char result[16]; /* "ok", "denied", "failed" */
    char reason[512];
    char request_id[CF_AUDIT_REQUEST_ID_LEN];
    uint8_t prev_hash[CF_AUDIT_HASH_LEN];
    uint8_t hash[CF_AUDIT_HASH_LEN];
};

struct cf_audit_event_list {
    struct cf_audit_event *items;
    size_t n;
};

/* Which events a list returns: seq > after_seq, oldest first, at most limit; each filter "" or 0
 * when unused. actor matches the actor's id or name; action matches exactly, or as a prefix when it
 * ends with '.' ("secrets."). */
struct cf_audit_filter {
    int64_t after_seq;
    size_t limit;
    int64_t since_us; /* time_us >= since_us */
    int64_t until_us; /* time_us < until_us */
    const char *actor;
    const char *action;
    const char *project_id;
};

/* A signed statement that event event_seq has hash event_hash. */
struct cf_audit_checkpoint {
    int64_t event_seq;
    int64_t time_us;
    uint8_t event_hash[CF_AUDIT_HASH_LEN];
    uint8_t signature[CF_AUDIT_SIG_LEN];
};

struct cf_audit_checkpoint_list {
    struct cf_audit_checkpoint *items;
    size_t n;
};

/* The newest read of one secret among the archived events (migration 0014): what the inventory's
 * "last read" keeps once the events themselves are archived. */
struct cf_audit_last_read {
    char project_id[CF_UUID_LEN];
    char environment[CF_SLUG_MAX + 1];
    char path[CF_PATH_MAX + 1];
    char key[CF_KEY_MAX + 1];
    int64_t read_at_us;
    char actor_kind[16];
    char actor_id[CF_UUID_LEN];
    char actor_name[CF_NAME_MAX + 1];
};

struct cf_audit_last_read_list {
    struct cf_audit_last_read *items;
    size_t n;
};

/* ---- notifications ---- */

#define CF_CHANNEL_TARGET_MAX 2048
struct cf_channel {
    char id[CF_UUID_LEN];
    char project_id[CF_UUID_LEN]; /* "": server-wide */
    char type[16];                /* "webhook", "slack", "teams", "email" */
    char name[CF_NAME_MAX + 1];
    char target[CF_CHANNEL_TARGET_MAX + 1]; /* URL, or comma-separated recipients */
    char signing_secret[256];               /* sealed text (crypto/serverkey.h), "" for none */
    int64_t created_at;
};
struct cf_channel_list {
    struct cf_channel *items;
    size_t n;
};

#define CF_NOTICE_MESSAGE_MAX 2048
#define CF_NOTICE_ITEM_MAX 8192
struct cf_notice {
    char id[CF_UUID_LEN];
    char channel_id[CF_UUID_LEN];
    char item_key[CF_UUID_LEN + 96];
    char threshold[16];
    char project_id[CF_UUID_LEN];
    char message[CF_NOTICE_MESSAGE_MAX + 1];
    char item[CF_NOTICE_ITEM_MAX + 1]; /* JSON of the item */
    char state[16];                    /* "pending", "delivered", "failed" */
    int64_t attempts;
    int64_t next_attempt_at;
    char last_error[256];
    int64_t created_at;
    int64_t delivered_at;
};
struct cf_notice_list {
    struct cf_notice *items;
    size_t n;
};

enum cf_secret_op { CF_SECRET_OP_CREATE = 1, CF_SECRET_OP_UPDATE, CF_SECRET_OP_DELETE };

/* One write of a batch. CREATE: row is version 1 of a new secret (row.id a new UUID, row.folder_id,
 * row.key, sealed value, ...); CF_EEXIST if the folder already has row.key. UPDATE: row is the next
 * version of secret row.id (row.version == expected_version + 1; row.key may differ, which renames
 * it: CF_EEXIST if the folder has that key already). DELETE: removes secret row.id with all its
 * versions. UPDATE and DELETE fail with CF_ECONFLICT when the secret's current version is not
 * expected_version, and CF_ENOTFOUND when it is gone. */
struct cf_secret_write {
    enum cf_secret_op op;
    int64_t expected_version;
    struct cf_secret row; /* borrowed: the store copies what it keeps */
};

/* The meta name under which rewrap_keys stores its root_check (the root key check of
 * crypto/keyring.h). */
#define CF_META_ROOT_CHECK "root_key_check"

/* A rewrapped project key, for root key rotation; or, with meta_name set, a rewrapped server key
 * kept in meta under that name (the audit key). */
struct cf_key_update {
    const char *project_id;
    const uint8_t *wrapped_key;
    size_t wrapped_key_len;
    const char *meta_name;
};

struct cf_store;

/* Closes every connection of st and frees it; NULL is a no-op. */
void cf_store_close(struct cf_store *st);

/* Commits synced after the fact (group commit across requests). On SQLite in WAL mode a thread may
 * ask that its commits return before they reach the disk: they are visible to every reader at
 * once, and the store's syncer thread makes them durable, one fsync of the write-ahead log for
 * every commit made since its previous one. Nothing that depends on such a commit may leave the
 * process before the commit is on disk: the answer of the request that made it, and the answer of
 * any request that may have read it. So an answer takes a ticket when it is ready (it covers every
 * deferred commit begun so far) and goes out once that ticket is synced. Commits of threads that
 * did not ask (housekeeping, other processes) are synced before they are visible, as always; the
 * audit writer's are synced by the syncer too, but waited for by the writer alone
 * (cf_store_sync_unlocked). PostgreSQL syncs each commit itself (its own group commit is
 * commit_delay): there nothing is deferred and every ticket is 0. */

/* Makes the calling thread's commits on st deferred (above) when on, synced one by one again when
 * not. Returns whether they are deferred: never on PostgreSQL, on SQLite not in WAL mode, or when
 * the syncer cannot start (commits then stay synced, which is always correct). Thread-safe; cheap
 * when the thread is already in the mode asked for. */
bool cf_store_sync_defer(struct cf_store *st, bool on);

/* Makes the calling thread's commits on st synced outside the store's write lock: COMMIT writes the
 * transaction to the write-ahead log without syncing it, releases the lock, and returns once the
 * syncer's next sync covers it, so the caller sees what a synced commit gives (returned means on
 * disk; CF_EIO when the sync failed) while the other writers go on, and the sync is shared with
 * theirs instead of each such commit syncing the log with every writer of the process waiting.
 * Other readers may see such a commit for up to one sync before it is on disk, and answers take
 * no ticket for it (cf_store_sync_ticket): for the audit writer, whose events no answer depends on
 * before the writer reports its batch stored (the audit list flushes the writer first). Returns
 * whether the mode is in effect: never on PostgreSQL, on SQLite not in WAL mode, or when the
 * syncer cannot start (commits then stay synced inside COMMIT). Thread-safe. */
bool cf_store_sync_unlocked(struct cf_store *st);

/* Blocks until the ticket an answer ready now would take is synced: for threads that are about to
 * hand what they read to the outside world (a secret sync's push). CF_OK, or CF_EIO when the sync
 * failed. Thread-safe. */
enum cf_rc cf_store_sync_barrier(struct cf_store *st, struct cf_err *err);

/* The ticket an answer ready now must wait for; 0 when every deferred commit begun so far (but
 * those of cf_store_sync_unlocked) is already on disk (the answer may go at once). Thread-safe,
 * takes no lock. */
uint64_t cf_store_sync_ticket(struct cf_store *st);

/* Called once the commits a ticket covers are on disk (rc CF_OK) or could not be synced (CF_EIO:
 * they are visible but may not survive a power loss; after one failed fsync every later wait fails
 * too, until the server restarts, since a retried fsync may report success for lost pages). */
typedef void (*cf_store_synced_fn)(void *arg, enum cf_rc rc);

/* A wait for a ticket, kept by the caller (no allocation, so registering cannot fail): fill
 * ticket, done and arg; next belongs to the store while the wait is registered. */
struct cf_store_sync_wait {
    uint64_t ticket;
    cf_store_synced_fn done;
    void *arg;
    struct cf_store_sync_wait *next;
};

/* Registers w (borrowed until w->done has been called): w->done(w->arg, rc) is called once, from
 * the syncer thread, never from inside this call. w->ticket must be one cf_store_sync_ticket
 * returned non-zero on st. Thread-safe. */
void cf_store_sync_notify(struct cf_store *st, struct cf_store_sync_wait *w);

/* How many deferred commits and how many syncs of them st has made since it opened (0 and 0 on
 * PostgreSQL): commits per sync is the batching a benchmark reports. Thread-safe. */
void cf_store_sync_counts(struct cf_store *st, uint64_t *commits, uint64_t *syncs);
/* The database connections this process holds now and the most it opens (*size 0: no pool, as
 * with SQLite, whose connections are per thread, unbounded, and shared by idle threads:
 * cf_store_idle). Thread-safe. */
void cf_store_pool_use(struct cf_store *st, int *open, int *size);

/* The database server's clock (Unix ms) as it answers now: PostgreSQL's clock_timestamp(), the
 * local clock on SQLite (the same host). For `coffer doctor`'s clock-skew check. */
enum cf_rc cf_store_db_now_ms(struct cf_store *st, int64_t *now_ms, struct cf_err *err);

/* One count of background jobs in one state (cf_store_job_states). */
struct cf_store_job_state {
    char kind[16];  /* "sync", "rotation", "notice" */
    char state[24]; /* the job's own state word: syncs 'pending', 'running', 'succeeded', 'failed';
                       rotations 'idle', 'rotating', 'succeeded', 'failed'; notices 'pending',
                       'delivered', 'failed' */
    int64_t count;
};

/* How many syncs, rotations and notices are in each state, in *out (malloc'd, *n of them; free()
 * it), ordered by kind and state. A state with no job is absent. */
enum cf_rc cf_store_job_states(struct cf_store *st, struct cf_store_job_state **out, size_t *n,
                               struct cf_err *err);

/* Cheap liveness probe for /api/status. */
enum cf_rc cf_store_ping(struct cf_store *st, struct cf_err *err);
/* A read scope around one request: until the matching cf_store_read_end, the reads this thread
 * runs share one read transaction instead of one each (SQLite: a deferred BEGIN run at the first
 * read and one COMMIT at the end, so one snapshot of the database and one WAL read lock per
 * request). A write inside the scope first ends the open read transaction and runs in its own
 * write transaction as always; the next read starts a new read transaction, which sees the write.
 * Scopes nest (counted); both calls must come from the same thread. Keep a scope short: an open
 * read transaction holds WAL checkpoints back. A read started in a scope does not see what another
 * thread commits afterwards until the scope ends or this thread writes. Cannot fail: when the
 * thread's connection cannot be opened, no scope is made and the reads report the error. On
 * PostgreSQL each statement keeps its own snapshot (see struct db_driver in sqldb.h). On both, a
 * scope enables the lookup cache (sqldb.h, sql_cache_get): projects, environments, folders,
 * memberships and access tokens read in a scope may come from memory, checked against the
 * database's change counter once per scope, so a change committed by any process is seen by the
 * next scope that begins after it. */
void cf_store_read_begin(struct cf_store *st);
void cf_store_read_end(struct cf_store *st);
/* Shared write transactions: several requests' changes in one transaction on one thread, one
 * commit for all of them. cf_store_batch_begin opens one on the calling thread's connection and
 * takes the write lock; until cf_store_batch_end, every transaction the thread begins is a
 * savepoint inside it (its end releases it, or rolls back to it on failure: a request's failed
 * write takes nothing of the others with it), its reads see the batch's changes so far, and the
 * lookup cache is neither filled nor, once the batch changed the change counters, read. Nothing is
 * visible to others, or on disk, before cf_store_batch_end commits: work that must see a change
 * committed (waking a worker that reads it) goes through cf_store_after_commit. Only for work
 * that waits for nothing outside the process and no other thread's write (the batch holds the
 * write lock): fail-closed audit records wait for the audit writer's commit, so not those.
 * cf_store_batch_begin answers CF_EUNSUPPORTED when the driver has no shared transactions
 * (PostgreSQL), CF_EINTERNAL when the thread is in a write transaction already. cf_store_batch_end
 * commits (a deferred commit, as the thread's mode says: cf_store_sync_defer), runs the
 * after-commit work queued, and returns the commit's outcome; when the transaction broke before (an
 * I/O error or a full disk makes SQLite roll all of it back), it fails with the cause, and nothing
 * of the batch was stored. */
enum cf_rc cf_store_batch_begin(struct cf_store *st, struct cf_err *err);
enum cf_rc cf_store_batch_end(struct cf_store *st, struct cf_err *err);
/* fn(arg) once what the calling thread changed so far is committed: at once outside a shared
 * transaction (a transaction's end has committed it), else after cf_store_batch_end's commit
 * (also when it failed: fn must not assume the change is there, only that nothing of it is still
 * to come). The same fn and arg are queued once per batch. */
void cf_store_after_commit(struct cf_store *st, void (*fn)(void *), void *arg);
/* Inside a read scope: lets the scope's next read see every commit made so far, also those of
 * other threads (SQLite: ends the open read transaction; the next read begins a new one), and
 * makes its next cached lookup check the change counter again. For a request that waited for
 * another thread's commit (the audit writer's) and then reads what it wrote. No effect outside a
 * scope. Thread-safe as read_begin. */
void cf_store_read_refresh(struct cf_store *st);
/* This thread goes idle (a background worker between its passes, the main thread once the server
 * runs): its connection may serve the next thread that needs one instead of staying with it, so
 * that idle threads do not hold a connection each (SQLite: about 0.3 MB of memory each). The store
 * keeps one such connection for the next taker and closes any other. A thread inside a
 * transaction or a read scope, or whose commits are deferred or synced after the lock
 * (cf_store_sync_defer, cf_store_sync_unlocked), keeps its own. The thread's next store call takes
 * the kept connection or opens one. No effect on PostgreSQL, whose connections are pooled. */
void cf_store_idle(struct cf_store *st);
/* Inside a read scope: the value of the content change counter (migration 0015), read once per
 * scope together with the lookup cache's counter (and again after the scope's own writes or a
 * refresh). Triggers bump it in the transaction of every change that can alter what a folder list
 * answers, on whichever server makes it, so a body made under one value is current for every
 * request that reads the same value. false outside a scope or when it cannot be read. */
bool cf_store_content_version(struct cf_store *st, int64_t *version);
/* Background jobs (expiry notices, ...) run on one server at a time: takes the named job's
 * lock when no other server holds it (*held true) and keeps it while this process's database
 * session lives; a server that dies loses it, and another one takes it on its next try. With
 * SQLite (one server per database) *held is always true. */
enum cf_rc cf_store_job_lock(struct cf_store *st, const char *job, bool *held, struct cf_err *err);

/* Server-wide values (admin token hash, root key check). *value is malloc'd. */
enum cf_rc cf_store_meta_get(struct cf_store *st, const char *name, uint8_t **value, size_t *len,
                             struct cf_err *err);
/* cf_store_meta_get through the lookup cache inside a read scope (cf_store_read_begin), for the
 * rows whose every change bumps the lookup counter: the admin token's (migration 0024), and no
 * other. */
enum cf_rc cf_store_meta_get_lookup(struct cf_store *st, const char *name, uint8_t **value,
                                    size_t *len, struct cf_err *err);
/* Inserts or replaces. */
enum cf_rc cf_store_meta_put(struct cf_store *st, const char *name, const uint8_t *value,
                             size_t len, struct cf_err *err);
/* Inserts only if absent: CF_EEXIST otherwise (first-start races). */
enum cf_rc cf_store_meta_insert(struct cf_store *st, const char *name, const uint8_t *value,
                                size_t len, struct cf_err *err);
/* Replaces the value of name only while it is still expected (expected_len bytes):
 * CF_ECONFLICT when it changed meanwhile (or is gone), and nothing is written. */
enum cf_rc cf_store_meta_swap(struct cf_store *st, const char *name, const uint8_t *expected,
                              size_t expected_len, const uint8_t *value, size_t len,
                              struct cf_err *err);
/* In one transaction: deletes old_name while it still holds expected (CF_ECONFLICT otherwise) and
 * inserts new_name (CF_EEXIST when present), so that a value changes its name and form at once
 * (a seal moving from shares to Azure Key Vault). Nothing is written on failure. */
enum cf_rc cf_store_meta_move(struct cf_store *st, const char *old_name, const uint8_t *expected,
                              size_t expected_len, const char *new_name, const uint8_t *value,
                              size_t len, struct cf_err *err);
/* Replaces every project's wrapped key and the root key check in one transaction. */
enum cf_rc cf_store_rewrap_keys(struct cf_store *st, const struct cf_key_update *updates, size_t n,
                                const uint8_t *root_check, size_t root_check_len,
                                struct cf_err *err);

/* Creates the project, its environments (with their root folders "/") in one transaction. */
enum cf_rc cf_store_project_create(struct cf_store *st, const struct cf_project *project,
                                   const struct cf_env *envs, size_t n_envs, struct cf_err *err);
/* Finds by id, or by slug when id_or_slug is not a UUID. */
enum cf_rc cf_store_project_get(struct cf_store *st, const char *id_or_slug, struct cf_project *out,
                                struct cf_err *err);
enum cf_rc cf_store_project_list(struct cf_store *st, struct cf_project_list *out,
                                 struct cf_err *err);
/* Deletes the project and everything in it. */
enum cf_rc cf_store_project_delete(struct cf_store *st, const char *project_id, struct cf_err *err);

/* Creates the environment and its root folder; position is appended when env->position <= 0. */
enum cf_rc cf_store_env_create(struct cf_store *st, const struct cf_env *env, struct cf_err *err);
enum cf_rc cf_store_env_list(struct cf_store *st, const char *project_id, struct cf_env_list *out,
                             struct cf_err *err);
/* Finds by id, or by slug when id_or_slug is not a UUID. */
enum cf_rc cf_store_env_get(struct cf_store *st, const char *project_id, const char *id_or_slug,
                            struct cf_env *out, struct cf_err *err);
/* Sets slug and name of env->id, and moves it to env->position (1..n; others renumbered
 * densely). */
enum cf_rc cf_store_env_update(struct cf_store *st, const struct cf_env *env, struct cf_err *err);
/* Deletes the environment with its folders and secrets; positions renumbered. */
enum cf_rc cf_store_env_delete(struct cf_store *st, const char *env_id, struct cf_err *err);

/* Creates a folder; its parent (folder->parent_id) must exist. CF_EEXIST on a duplicate path.
 */
enum cf_rc cf_store_folder_create(struct cf_store *st, const struct cf_folder *folder,
                                  struct cf_err *err);
enum cf_rc cf_store_folder_get(struct cf_store *st, const char *env_id, const char *path,
                               struct cf_folder *out, struct cf_err *err);
/* Direct children of path (all descendants when recursive), ordered by path. */
enum cf_rc cf_store_folder_list(struct cf_store *st, const char *env_id, const char *path,
                                bool recursive, struct cf_folder_list *out, struct cf_err *err);
/* Deletes the folder, its descendants and their secrets and imports. */
enum cf_rc cf_store_folder_delete(struct cf_store *st, const char *folder_id, struct cf_err *err);

/* Applies every write or none (all of one project: writes[0].row.project_id), and in the same
 * transaction marks that project's auto-syncs pending, *syncs_marked (when not NULL) receiving how
 * many: a change and its syncs' mark are committed together, without a transaction of their own. */
enum cf_rc cf_store_secret_write(struct cf_store *st, const struct cf_secret_write *writes,
                                 size_t n, int64_t *syncs_marked, struct cf_err *err);
/* Current version of each secret in the folder at path (and its descendant folders when
 * recursive), ordered by path then key. */
enum cf_rc cf_store_secret_list(struct cf_store *st, const char *env_id, const char *path,
                                bool recursive, struct cf_secret_list *out, struct cf_err *err);
/* Told of each row of cf_store_secret_list_each, in order. row is the store's and borrowed for the
 * call only: its sealed, comment, tags and reminder_note point into the store's own memory (sealed
 * is not NUL-terminated), so the callee copies what it keeps and frees none of them. A return other
 * than CF_OK stops the listing, and the listing returns it with err as the callee set it. */
typedef enum cf_rc (*cf_secret_row_fn)(void *ctx, const struct cf_secret *row, struct cf_err *err);

/* What cf_store_secret_list returns, handed to fn(ctx, row, err) one row at a time instead of
 * collected: nothing per row is allocated, so a listing of many secrets costs memory only where
 * the caller keeps it. CF_ENOTFOUND when the folder does not exist. */
enum cf_rc cf_store_secret_list_each(struct cf_store *st, const char *env_id, const char *path,
                                     bool recursive, cf_secret_row_fn fn, void *ctx,
                                     struct cf_err *err);
/* A secret by folder and key: its current version, or the given version when version > 0. */
enum cf_rc cf_store_secret_get(struct cf_store *st, const char *folder_id, const char *key,
                               int64_t version, struct cf_secret *out, struct cf_err *err);
/* A secret by id: its current version, or the given version when version > 0. */
enum cf_rc cf_store_secret_get_by_id(struct cf_store *st, const char *secret_id, int64_t version,
                                     struct cf_secret *out, struct cf_err *err);
/* Every version of a secret, newest first. */
enum cf_rc cf_store_secret_history(struct cf_store *st, const char *secret_id,
                                   struct cf_secret_list *out, struct cf_err *err);
/* The current versions, in every project (project_id NULL) or one, that expire by `until` (ms,
 * expired ones included) or whose rotation reminder falls due by then (created_at + the
 * interval); unordered. */
enum cf_rc cf_store_secret_expiring(struct cf_store *st, const char *project_id, int64_t until,
                                    struct cf_secret_list *out, struct cf_err *err);
/* Every secret of a project, in all its environments and folders: the current version's
 * metadata and the number of versions, never the value. Ordered by environment position,
 * folder path, key. An unknown project has none. */
enum cf_rc cf_store_secret_inventory(struct cf_store *st, const char *project_id,
                                     struct cf_secret_meta_list *out, struct cf_err *err);

/* Adds an import at the end of the folder's list (import->position is ignored). CF_EEXIST when
 * the folder already imports that environment and path. */
enum cf_rc cf_store_import_create(struct cf_store *st, const struct cf_import *import,
                                  struct cf_err *err);
enum cf_rc cf_store_import_list(struct cf_store *st, const char *folder_id,
                                struct cf_import_list *out, struct cf_err *err);
enum cf_rc cf_store_import_get(struct cf_store *st, const char *import_id, struct cf_import *out,
                               struct cf_err *err);
enum cf_rc cf_store_import_delete(struct cf_store *st, const char *import_id, struct cf_err *err);

/* CF_EEXIST on a duplicate slug within the project. */
enum cf_rc cf_store_tag_create(struct cf_store *st, const struct cf_tag *tag, struct cf_err *err);
/* Finds by id, or by slug when id_or_slug is not a UUID. */
enum cf_rc cf_store_tag_get(struct cf_store *st, const char *project_id, const char *id_or_slug,
                            struct cf_tag *out, struct cf_err *err);
enum cf_rc cf_store_tag_list(struct cf_store *st, const char *project_id, struct cf_tag_list *out,
                             struct cf_err *err);

/* ---- machine identities ---- */

enum cf_rc cf_store_identity_create(struct cf_store *st, const struct cf_identity *identity,
                                    struct cf_err *err);
enum cf_rc cf_store_identity_get(struct cf_store *st, const char *identity_id,
                                 struct cf_identity *out, struct cf_err *err);
enum cf_rc cf_store_identity_list(struct cf_store *st, struct cf_identity_list *out,
                                  struct cf_err *err);
/* Renames identity->id. */
enum cf_rc cf_store_identity_update(struct cf_store *st, const struct cf_identity *identity,
                                    struct cf_err *err);
/* Deletes the identity with its auth configuration, client secrets, tokens and memberships (so
 * its tokens stop working at once). */
enum cf_rc cf_store_identity_delete(struct cf_store *st, const char *identity_id,
                                    struct cf_err *err);

/* Attaches universal auth: CF_EEXIST when the identity already has it. */
enum cf_rc cf_store_ua_attach(struct cf_store *st, const struct cf_ua_config *config,
                              struct cf_err *err);
/* Replaces the settings of config->identity_id (client_id is kept). */
enum cf_rc cf_store_ua_update(struct cf_store *st, const struct cf_ua_config *config,
                              struct cf_err *err);
enum cf_rc cf_store_ua_get(struct cf_store *st, const char *identity_id, struct cf_ua_config *out,
                           struct cf_err *err);
enum cf_rc cf_store_ua_get_by_client_id(struct cf_store *st, const char *client_id,
                                        struct cf_ua_config *out, struct cf_err *err);

/* Attaches JWT auth: CF_EEXIST when the identity already has it, CF_ENOTFOUND when the identity
 * does not exist. */
enum cf_rc cf_store_jwt_auth_attach(struct cf_store *st, const struct cf_jwt_auth_config *config,
                                    struct cf_err *err);
/* Replaces the settings of config->identity_id; CF_ENOTFOUND when it has no JWT auth. */
enum cf_rc cf_store_jwt_auth_update(struct cf_store *st, const struct cf_jwt_auth_config *config,
                                    struct cf_err *err);
enum cf_rc cf_store_jwt_auth_get(struct cf_store *st, const char *identity_id,
                                 struct cf_jwt_auth_config *out, struct cf_err *err);

/* Kubernetes auth, as JWT auth: CF_EEXIST / CF_ENOTFOUND alike. */
enum cf_rc cf_store_kubernetes_auth_attach(struct cf_store *st,
                                           const struct cf_k8s_auth_config *config,
                                           struct cf_err *err);
enum cf_rc cf_store_kubernetes_auth_update(struct cf_store *st,
                                           const struct cf_k8s_auth_config *config,
                                           struct cf_err *err);
enum cf_rc cf_store_kubernetes_auth_get(struct cf_store *st, const char *identity_id,
                                        struct cf_k8s_auth_config *out, struct cf_err *err);

enum cf_rc cf_store_client_secret_create(struct cf_store *st, const struct cf_client_secret *secret,
                                         struct cf_err *err);
/* Newest first, revoked ones included. */
enum cf_rc cf_store_client_secret_list(struct cf_store *st, const char *identity_id,
                                       struct cf_client_secret_list *out, struct cf_err *err);
enum cf_rc cf_store_client_secret_get(struct cf_store *st, const char *identity_id,
                                      const char *secret_id, struct cf_client_secret *out,
                                      struct cf_err *err);
enum cf_rc cf_store_client_secret_revoke(struct cf_store *st, const char *identity_id,
                                         const char *secret_id, struct cf_err *err);
/* The client secrets of every identity, not revoked, that expire by `until` (ms; expired ones
 * included), soonest first. */
enum cf_rc cf_store_client_secret_expiring(struct cf_store *st, int64_t until,
                                           struct cf_client_secret_list *out, struct cf_err *err);
/* Counts one use: in one transaction, fails with CF_ECONFLICT when the secret is revoked or its
 * use limit is already reached (nothing changes then), else increments num_uses. */
enum cf_rc cf_store_client_secret_use(struct cf_store *st, const char *secret_id,
                                      struct cf_err *err);

/* Stores a new token. When token->client_secret_id is set, also counts one use of that client
 * secret in the same transaction, failing like client_secret_use (nothing is stored then). */
enum cf_rc cf_store_token_create(struct cf_store *st, const struct cf_access_token *token,
                                 struct cf_err *err);
enum cf_rc cf_store_token_get(struct cf_store *st, const char *token_id,
                              struct cf_access_token *out, struct cf_err *err);
/* Counts one use, like client_secret_use (CF_ECONFLICT when revoked or out of uses). */
enum cf_rc cf_store_token_use(struct cf_store *st, const char *token_id, struct cf_err *err);
enum cf_rc cf_store_token_renew(struct cf_store *st, const char *token_id, int64_t renewed_at,
                                struct cf_err *err);
enum cf_rc cf_store_token_revoke(struct cf_store *st, const char *token_id, struct cf_err *err);
/* Deletes at most limit access tokens that ended at or before ended_before (ms): past their max TTL
 * or their TTL (from the last renewal), each capped at max_ttl_s seconds as cf_token_cap_ttls
 * caps them; revoked tokens once past the same deadlines. The tokens are found by a read (no write
 * lock held while the table is scanned), then deleted by id in one transaction, each only if it
 * has still ended; *deleted receives how many went (0 when the transaction rolled back). A token
 * another node deleted first is simply not counted, so several servers sharing a database may
 * prune at once. CF_EINVAL when max_ttl_s or limit is not positive. */
enum cf_rc cf_store_tokens_prune(struct cf_store *st, int64_t ended_before, int64_t max_ttl_s,
                                 size_t limit, int64_t *deleted, struct cf_err *err);
/* Removes auth_method ("universal-auth", "jwt-auth", "kubernetes-auth") from an identity in one
 * transaction, with every access token that method issued to it (and, for universal auth, its
 * client secrets), so those tokens stop working at once and attaching the method again revives
 * none of them. CF_ENOTFOUND when the identity does not have it. */
enum cf_rc cf_store_auth_method_remove(struct cf_store *st, const char *identity_id,
                                       const char *auth_method, struct cf_err *err);

/* ---- notifications ---- */

enum cf_rc cf_store_channel_create(struct cf_store *st, const struct cf_channel *channel,
                                   struct cf_err *err);
/* Every channel (project_id NULL), or a project's (server-wide ones not included). */
enum cf_rc cf_store_channel_list(struct cf_store *st, const char *project_id,
                                 struct cf_channel_list *out, struct cf_err *err);
enum cf_rc cf_store_channel_delete(struct cf_store *st, const char *channel_id, struct cf_err *err);
/* A project's thresholds text ("30d,7d,1d"); CF_ENOTFOUND when it has none of its own. */
enum cf_rc cf_store_notify_thresholds_get(struct cf_store *st, const char *project_id, char *out,
                                          size_t size, struct cf_err *err);
enum cf_rc cf_store_notify_thresholds_put(struct cf_store *st, const char *project_id,
                                          const char *thresholds, struct cf_err *err);
/* Creates the notice unless one for its (item_key, threshold, channel_id) exists: *created
 * says which. The claim that makes every notice exist once. */
enum cf_rc cf_store_notice_claim(struct cf_store *st, const struct cf_notice *notice, bool *created,
                                 struct cf_err *err);
/* Pending notices whose next attempt is due by now, oldest first, at most limit. */
enum cf_rc cf_store_notice_due(struct cf_store *st, int64_t now, size_t limit,
                               struct cf_notice_list *out, struct cf_err *err);
/* Records a delivery attempt's outcome: state, attempts, next attempt, last error, delivered
 * time. */
enum cf_rc cf_store_notice_update(struct cf_store *st, const struct cf_notice *notice,
                                  struct cf_err *err);
/* The delivery log: newest first, of one project's channels or (NULL) all, optionally of one
 * state, at most limit after offset. */
enum cf_rc cf_store_notice_list(struct cf_store *st, const char *project_id, const char *state,
                                size_t limit, size_t offset, struct cf_notice_list *out,
                                struct cf_err *err);

/* ---- audit log ---- */

/* Appends *events[0..n) in order, in one transaction: each gets seq = the last seq + 1 and
 * prev_hash = the hash of the event before it, then chain(ctx, event) sets its hash. All or none.
 */
enum cf_rc cf_store_audit_append(struct cf_store *st, struct cf_audit_event *const *events,
                                 size_t n, void (*chain)(void *ctx, struct cf_audit_event *event),
                                 void *ctx, struct cf_err *err);
/* The events the filter selects, oldest first. */
enum cf_rc cf_store_audit_list(struct cf_store *st, const struct cf_audit_filter *filter,
                               struct cf_audit_event_list *out, struct cf_err *err);
/* Event seq, or (seq 0) the last one; CF_ENOTFOUND when there is none. */
enum cf_rc cf_store_audit_get(struct cf_store *st, int64_t seq, struct cf_audit_event *out,
                              struct cf_err *err);
/* CF_EEXIST when event_seq already has a checkpoint. */
enum cf_rc cf_store_audit_checkpoint_add(struct cf_store *st,
                                         const struct cf_audit_checkpoint *checkpoint,
                                         struct cf_err *err);
/* Every checkpoint, by event_seq. */
enum cf_rc cf_store_audit_checkpoint_list(struct cf_store *st, struct cf_audit_checkpoint_list *out,
                                          struct cf_err *err);

/* ---- audit retention (docs/audit.md "Retention") ---- */

/* The anchor: the last archived event's seq and hash (event_seq, event_hash), when it was archived
 * (time_us) and the audit key's signature over them (core/audit.h cf_audit_anchor_sign).
 * *found false (and *out zeroed) while nothing was ever archived. */
enum cf_rc cf_store_audit_anchor_get(struct cf_store *st, struct cf_audit_checkpoint *out,
                                     bool *found, struct cf_err *err);
/* Claims the archiving for owner until lease_until_us, unless another owner holds an unexpired
 * claim at now_us: *claimed says which. The claim that lets one server at a time archive. */
enum cf_rc cf_store_audit_archive_claim(struct cf_store *st, const char *owner, int64_t now_us,
                                        int64_t lease_until_us, bool *claimed, struct cf_err *err);
/* Gives owner's claim up (nothing when another owner holds it). */
enum cf_rc cf_store_audit_archive_release(struct cf_store *st, const char *owner,
                                          struct cf_err *err);
/* In one transaction: moves the anchor from old_seq to anchor (the events after old_seq up to
 * anchor->event_seq having been archived), keeps the newest of the n last reads per secret,
 * deletes those events and the checkpoints over them. CF_ECONFLICT when owner no longer holds the
 * claim or the anchor is no longer at old_seq (another server archived meanwhile): nothing is
 * changed then. */
enum cf_rc cf_store_audit_archive_commit(struct cf_store *st, const char *owner, int64_t old_seq,
                                         const struct cf_audit_checkpoint *anchor,
                                         const struct cf_audit_last_read *reads, size_t n,
                                         struct cf_err *err);
/* A project's last reads kept from archived events. */
enum cf_rc cf_store_audit_last_reads(struct cf_store *st, const char *project_id,
                                     struct cf_audit_last_read_list *out, struct cf_err *err);

/* Creates or replaces the membership of membership->identity_id in membership->project_id,
 * rules included. */
enum cf_rc cf_store_membership_put(struct cf_store *st, const struct cf_membership *membership,
                                   struct cf_err *err);
enum cf_rc cf_store_membership_get(struct cf_store *st, const char *identity_id,
                                   const char *project_id, struct cf_membership *out,
                                   struct cf_err *err);
/* By project (identity_id NULL) or by identity (project_id NULL). */
enum cf_rc cf_store_membership_list(struct cf_store *st, const char *identity_id,
                                    const char *project_id, struct cf_membership_list *out,
                                    struct cf_err *err);
enum cf_rc cf_store_membership_delete(struct cf_store *st, const char *identity_id,
                                      const char *project_id, struct cf_err *err);

/* Users. create: CF_EEXIST naming the email (or the SSO subject) when taken. get_by: one of id,
 * email (lower-cased by the caller) or the (issuer, subject) pair. update replaces every field but
 * id and created_at. */
enum cf_rc cf_store_user_create(struct cf_store *st, const struct cf_user *user,
                                struct cf_err *err);
enum cf_rc cf_store_user_get(struct cf_store *st, const char *id, struct cf_user *out,
                             struct cf_err *err);
enum cf_rc cf_store_user_get_by_email(struct cf_store *st, const char *email, struct cf_user *out,
                                      struct cf_err *err);
enum cf_rc cf_store_user_get_by_sso(struct cf_store *st, const char *issuer, const char *subject,
                                    struct cf_user *out, struct cf_err *err);
/* Every user, by email. */
enum cf_rc cf_store_user_list(struct cf_store *st, struct cf_user_list *out, struct cf_err *err);
enum cf_rc cf_store_user_update(struct cf_store *st, const struct cf_user *user,
                                struct cf_err *err);
/* Deletes the user with its memberships, sessions and tokens. CF_ENOTFOUND when missing. */
enum cf_rc cf_store_user_delete(struct cf_store *st, const char *id, struct cf_err *err);
/* How many active owners there are. */
enum cf_rc cf_store_user_count_owners(struct cf_store *st, int64_t *count, struct cf_err *err);

/* Users' project memberships, as the identities' above (membership->identity_id holds the user's
 * id). */
enum cf_rc cf_store_user_membership_put(struct cf_store *st, const struct cf_membership *membership,
                                        struct cf_err *err);
enum cf_rc cf_store_user_membership_get(struct cf_store *st, const char *user_id,
                                        const char *project_id, struct cf_membership *out,
                                        struct cf_err *err);
enum cf_rc cf_store_user_membership_list(struct cf_store *st, const char *user_id,
                                         const char *project_id, struct cf_membership_list *out,
                                         struct cf_err *err);
enum cf_rc cf_store_user_membership_delete(struct cf_store *st, const char *user_id,
                                           const char *project_id, struct cf_err *err);

/* Groups. create: CF_EEXIST naming the name (or the external id) when taken. get_by_name and
 * get_by_external_id: exact match. update replaces name and external_id. delete: the group with its
 * members and project memberships. */
enum cf_rc cf_store_group_create(struct cf_store *st, const struct cf_group *group,
                                 struct cf_err *err);
enum cf_rc cf_store_group_get(struct cf_store *st, const char *id, struct cf_group *out,
                              struct cf_err *err);
enum cf_rc cf_store_group_get_by_name(struct cf_store *st, const char *name, struct cf_group *out,
                                      struct cf_err *err);
enum cf_rc cf_store_group_get_by_external_id(struct cf_store *st, const char *external_id,
                                             struct cf_group *out, struct cf_err *err);
/* Every group, by name. */
enum cf_rc cf_store_group_list(struct cf_store *st, struct cf_group_list *out, struct cf_err *err);
enum cf_rc cf_store_group_update(struct cf_store *st, const struct cf_group *group,
                                 struct cf_err *err);
enum cf_rc cf_store_group_delete(struct cf_store *st, const char *id, struct cf_err *err);
/* Adds user_id to group_id (nothing when it is a member already; *added, may be NULL, says which).
 * CF_ENOTFOUND naming the group or the user when either is missing. */
enum cf_rc cf_store_group_member_add(struct cf_store *st, const char *group_id, const char *user_id,
                                     bool *added, struct cf_err *err);
/* CF_ENOTFOUND when user_id is not a member of group_id. */
enum cf_rc cf_store_group_member_remove(struct cf_store *st, const char *group_id,
                                        const char *user_id, struct cf_err *err);
/* The members of a group, by email. */
enum cf_rc cf_store_group_members(struct cf_store *st, const char *group_id,
                                  struct cf_user_list *out, struct cf_err *err);
/* The groups user_id belongs to, by name. */
enum cf_rc cf_store_user_groups(struct cf_store *st, const char *user_id, struct cf_group_list *out,
                                struct cf_err *err);

/* Groups' project memberships, as the identities' above (membership->identity_id holds the group's
 * id). */
enum cf_rc cf_store_group_membership_put(struct cf_store *st,
                                         const struct cf_membership *membership,
                                         struct cf_err *err);
enum cf_rc cf_store_group_membership_get(struct cf_store *st, const char *group_id,
                                         const char *project_id, struct cf_membership *out,
                                         struct cf_err *err);
enum cf_rc cf_store_group_membership_list(struct cf_store *st, const char *group_id,
                                          const char *project_id, struct cf_membership_list *out,
                                          struct cf_err *err);
enum cf_rc cf_store_group_membership_delete(struct cf_store *st, const char *group_id,
                                            const char *project_id, struct cf_err *err);
/* The memberships in project_id of every group user_id belongs to (none: an empty list), by group
 * id; membership->identity_id holds the group's id. Read on every authorization check of a user,
 * so served from the lookup cache when it can be. */
enum cf_rc cf_store_user_group_memberships(struct cf_store *st, const char *user_id,
                                           const char *project_id, struct cf_membership_list *out,
                                           struct cf_err *err);

/* SCIM tokens. revoke: CF_ENOTFOUND when missing. used: records last_used_at (best effort). */
enum cf_rc cf_store_scim_token_create(struct cf_store *st, const struct cf_scim_token *token,
                                      struct cf_err *err);
enum cf_rc cf_store_scim_token_get(struct cf_store *st, const char *id, struct cf_scim_token *out,
                                   struct cf_err *err);
enum cf_rc cf_store_scim_token_list(struct cf_store *st, struct cf_scim_token_list *out,
                                    struct cf_err *err);
enum cf_rc cf_store_scim_token_revoke(struct cf_store *st, const char *id, struct cf_err *err);
enum cf_rc cf_store_scim_token_used(struct cf_store *st, const char *id, int64_t at,
                                    struct cf_err *err);
/* SCIM-provisioned users. put creates or replaces the record of scim->user_id (CF_EEXIST naming
 * the userName or externalId when another user has it). get: by user id; by_user_name,
 * by_external_id: exact match. list: every one, by userName. */
enum cf_rc cf_store_scim_user_put(struct cf_store *st, const struct cf_scim_user *scim,
                                  struct cf_err *err);
enum cf_rc cf_store_scim_user_get(struct cf_store *st, const char *user_id,
                                  struct cf_scim_user *out, struct cf_err *err);
enum cf_rc cf_store_scim_user_by_user_name(struct cf_store *st, const char *user_name,
                                           struct cf_scim_user *out, struct cf_err *err);
enum cf_rc cf_store_scim_user_by_external_id(struct cf_store *st, const char *external_id,
                                             struct cf_scim_user *out, struct cf_err *err);
enum cf_rc cf_store_scim_user_list(struct cf_store *st, struct cf_scim_user_list *out,
                                   struct cf_err *err);

/* Sessions. touch sets last_seen_at. delete: one session of user_id (CF_ENOTFOUND when it has no
 * such session); delete_others: every session of user_id but keep_id ("" or NULL: all), *deleted
 * (may be NULL) receiving how many went. */
enum cf_rc cf_store_session_create(struct cf_store *st, const struct cf_user_session *session,
                                   struct cf_err *err);
enum cf_rc cf_store_session_get(struct cf_store *st, const char *id, struct cf_user_session *out,
                                struct cf_err *err);
enum cf_rc cf_store_session_touch(struct cf_store *st, const char *id, int64_t last_seen_at,
                                  struct cf_err *err);
/* A user's sessions, newest first. */
enum cf_rc cf_store_session_list(struct cf_store *st, const char *user_id,
                                 struct cf_user_session_list *out, struct cf_err *err);
enum cf_rc cf_store_session_delete(struct cf_store *st, const char *user_id, const char *id,
                                   struct cf_err *err);
enum cf_rc cf_store_session_delete_others(struct cf_store *st, const char *user_id,
                                          const char *keep_id, int64_t *deleted,
                                          struct cf_err *err);

/* Personal access tokens. list: a user's, newest first, revoked ones included. revoke:
 * CF_ENOTFOUND when user_id has no such token. */
enum cf_rc cf_store_pat_create(struct cf_store *st, const struct cf_pat *pat, struct cf_err *err);
enum cf_rc cf_store_pat_get(struct cf_store *st, const char *id, struct cf_pat *out,
                            struct cf_err *err);
enum cf_rc cf_store_pat_list(struct cf_store *st, const char *user_id, struct cf_pat_list *out,
                             struct cf_err *err);
enum cf_rc cf_store_pat_revoke(struct cf_store *st, const char *user_id, const char *id,
                               struct cf_err *err);

struct cf_store {
    const char *backend; /* "sqlite", "postgres" */
};

struct cf_store_config {
    const char *dsn;     /* a SQLite file path ("sqlite:" prefix optional), or postgres://... */
    int busy_timeout_ms; /* how long a writer waits for the database lock (and, on PostgreSQL, the
                            longest any statement may run); 0: 5000 */
    int pool_size;       /* PostgreSQL: the most connections this process opens; 0: 16 */
    bool must_exist;     /* SQLite: a missing file is CF_ENOTFOUND instead of a new database */
};

/* Opens the backend named by config->dsn (a SQLite file, or a postgres:// / postgresql:// URI),
 * applying pending migrations, then binds membership rules still stored by environment slug to the
 * environments' ids (see struct cf_membership_rule). *out is released with cf_store_close(st). */
enum cf_rc cf_store_open(const struct cf_store_config *config, struct cf_store **out,
                         struct cf_err *err);

/* Copies every row of store from into store to (an empty store, just opened: migrated, no data),
 * sealed values as they are (the root key does not change), in one transaction on each side; then
 * reads every table back inside the destination's transaction and compares its row count and
 * checksum (BLAKE2b over the sorted hashes of its rows) with the source's: on any difference
 * nothing is written. report (may be NULL) hears each table's row count and checksum. CF_EEXIST
 * when the destination holds data; CF_ESTORE on a difference. Both stores stay locked for writing
 * meanwhile: stop the servers first. */
enum cf_rc cf_store_copy(struct cf_store *from, struct cf_store *to,
                         void (*report)(void *ctx, const char *table, int64_t rows,
                                        const uint8_t checksum[CF_COPY_CHECKSUM_LEN]),
                         void *ctx, struct cf_err *err);

/* cf_store_copy reading the source in one snapshot instead of holding its write lock: servers on
 * from keep serving, and writing, meanwhile, and to receives from as it was at one instant (a
 * backup). */
enum cf_rc cf_store_snapshot_copy(struct cf_store *from, struct cf_store *to,
                                  void (*report)(void *ctx, const char *table, int64_t rows,
                                                 const uint8_t checksum[CF_COPY_CHECKSUM_LEN]),
                                  void *ctx, struct cf_err *err);

/* Each table's row count and checksum as cf_store_copy reports them, read in one snapshot: what a
 * backup's manifest records and a restore compares. */
enum cf_rc cf_store_checksums(struct cf_store *st,
                              void (*report)(void *ctx, const char *table, int64_t rows,
                                             const uint8_t checksum[CF_COPY_CHECKSUM_LEN]),
                              void *ctx, struct cf_err *err);

/* dsn without a password (postgres://user:pw@host/db -> postgres://user@host/db, password=... in
 * the query string masked), for messages and logs; truncated to size. */
void cf_store_dsn_shown(const char *dsn, char *out, size_t size);

/* Release functions: free heap members and zero the struct; safe on zeroed structs. */
void cf_project_release(struct cf_project *p);
void cf_secret_release(struct cf_secret *s);
void cf_project_list_release(struct cf_project_list *l);
void cf_env_list_release(struct cf_env_list *l);
void cf_folder_list_release(struct cf_folder_list *l);
void cf_secret_list_release(struct cf_secret_list *l);
void cf_secret_meta_list_release(struct cf_secret_meta_list *l);
void cf_import_list_release(struct cf_import_list *l);
void cf_tag_list_release(struct cf_tag_list *l);
void cf_identity_list_release(struct cf_identity_list *l);
/* Frees the heap texts of c and zeroes it (c itself stays the caller's); NULL is a no-op. */
void cf_jwt_auth_config_release(struct cf_jwt_auth_config *c);
void cf_client_secret_list_release(struct cf_client_secret_list *l);
void cf_membership_release(struct cf_membership *m);
void cf_membership_list_release(struct cf_membership_list *l);
void cf_audit_event_list_release(struct cf_audit_event_list *l);
void cf_channel_list_release(struct cf_channel_list *l);
void cf_notice_list_release(struct cf_notice_list *l);
void cf_audit_checkpoint_list_release(struct cf_audit_checkpoint_list *l);
void cf_audit_last_read_list_release(struct cf_audit_last_read_list *l);
void cf_user_list_release(struct cf_user_list *l);
void cf_user_session_list_release(struct cf_user_session_list *l);
void cf_pat_list_release(struct cf_pat_list *l);
void cf_group_list_release(struct cf_group_list *l);
void cf_scim_token_list_release(struct cf_scim_token_list *l);
void cf_scim_user_list_release(struct cf_scim_user_list *l);

/* ---- approvals: policies and change requests (core/approvals.h, migration 0022) ---- */

#define CF_APPROVERS_MAX 50
#define CF_REVIEW_COMMENT_MAX 1024
#define CF_BYPASS_REASON_MAX 512

/* One approver of a policy: a user (user_id set) or a group (group_id set); name is the user's
 * email or the group's name, filled on reads. */
struct cf_approval_approver {
    char user_id[CF_UUID_LEN];
    char group_id[CF_UUID_LEN];
    char name[CF_EMAIL_MAX + 1];
};

struct cf_approval_policy {
    char id[CF_UUID_LEN];
    char project_id[CF_UUID_LEN];
    char name[CF_NAME_MAX + 1];
    char env_id[CF_UUID_LEN];
    char path_glob[CF_PATH_MAX + 1];
    int64_t approvals;
    char enforcement[8]; /* "hard" or "soft" */
    bool allow_machines;
    int64_t created_at;
    int64_t updated_at;
    struct cf_approval_approver *approvers; /* heap, n_approvers of them */
    size_t n_approvers;
};

struct cf_approval_policy_list {
    struct cf_approval_policy *items;
    size_t n;
};

/* One change of a change request. op "create", "update" or "delete"; base_version the key's
 * version when the request was made (0: it did not exist). sealed (heap) is the proposed value
 * sealed as core/approvals.c says, NULL when the value is not changed; new_key "" keeps the key;
 * comment (heap) NULL keeps it; skip_multiline -1 keeps it, else 0 or 1. */
struct cf_change_item {
    char op[8];
    char key[CF_KEY_MAX + 1];
    char new_key[CF_KEY_MAX + 1];
    int64_t base_version;
    uint8_t *sealed;
    size_t sealed_len;
    char *comment;
    int skip_multiline;
};

/* One reviewer's decision ("approved" or "rejected"); email filled on reads. */
struct cf_change_review {
    char user_id[CF_UUID_LEN];
    char email[CF_EMAIL_MAX + 1];
    char decision[16];
    char comment[CF_REVIEW_COMMENT_MAX + 1];
    int64_t created_at;
};

struct cf_change_request {
    char id[CF_UUID_LEN];
    char project_id[CF_UUID_LEN];
    char policy_id[CF_UUID_LEN]; /* "" once the policy was deleted */
    char policy_name[CF_NAME_MAX + 1];
    int64_t approvals_required;
    char enforcement[8];
    char env_id[CF_UUID_LEN];
    char folder_id[CF_UUID_LEN];
    char path[CF_PATH_MAX + 1];
    char author_id[CF_UUID_LEN];
    char author_email[CF_EMAIL_MAX + 1]; /* filled on reads */
    char status[16];                     /* "open", "merged", "rejected", "closed" */
    char merged_by[CF_EMAIL_MAX + 1];
    char bypass_reason[CF_BYPASS_REASON_MAX + 1];
    int64_t created_at;
    int64_t updated_at;
    struct cf_change_item *items; /* heap */
    size_t n_items;
    struct cf_change_review *reviews; /* heap, oldest first */
    size_t n_reviews;
};

struct cf_change_request_list {
    struct cf_change_request *items;
    size_t n;
};

/* Policies. create stores the policy with its approvers (CF_EEXIST when the project has a policy
 * of that name, CF_ENOTFOUND when an approver is gone); list: a project's (env_id NULL) or those of
 * one environment, by name, with their approvers; delete: CF_ENOTFOUND when project_id has no such
 * policy. */
enum cf_rc cf_store_approval_policy_create(struct cf_store *st,
                                           const struct cf_approval_policy *policy,
                                           struct cf_err *err);
enum cf_rc cf_store_approval_policy_list(struct cf_store *st, const char *project_id,
                                         const char *env_id, struct cf_approval_policy_list *out,
                                         struct cf_err *err);
enum cf_rc cf_store_approval_policy_delete(struct cf_store *st, const char *project_id,
                                           const char *id, struct cf_err *err);
/* Whether user_id is an approver of policy_id, named or through a group it is a member of. */
enum cf_rc cf_store_approval_is_approver(struct cf_store *st, const char *policy_id,
                                         const char *user_id, bool *out, struct cf_err *err);

/* The id of a group of users (0019's user_groups) by id or name; CF_ENOTFOUND naming ref. */
enum cf_rc cf_store_approval_group_find(struct cf_store *st, const char *ref, char id[CF_UUID_LEN],
                                        struct cf_err *err);

/* Change requests. create stores the request with its items; get reads one with its items and
 * reviews (CF_ENOTFOUND naming it); list: a project's, newest first, status NULL for any, with
 * items and reviews. */
enum cf_rc cf_store_change_request_create(struct cf_store *st, const struct cf_change_request *req,
                                          struct cf_err *err);
enum cf_rc cf_store_change_request_get(struct cf_store *st, const char *id,
                                       struct cf_change_request *out, struct cf_err *err);
enum cf_rc cf_store_change_request_list(struct cf_store *st, const char *project_id,
                                        const char *status, struct cf_change_request_list *out,
                                        struct cf_err *err);
/* Records review (replacing the reviewer's earlier decision) on an open request; a rejection also
 * sets the request's status to "rejected", in the same transaction. CF_ECONFLICT when the request
 * is no longer open. */
enum cf_rc cf_store_change_request_review(struct cf_store *st, const char *request_id,
                                          const struct cf_change_review *review,
                                          struct cf_err *err);
/* Moves an open request to status ("closed"); CF_ECONFLICT when it is no longer open. */
enum cf_rc cf_store_change_request_close(struct cf_store *st, const char *request_id,
                                         const char *status, struct cf_err *err);
/* Merges an open request: marks it merged (by merged_by, with bypass_reason, "" when none) and
 * applies writes as cf_store_secret_write does (the project's auto-syncs marked with them,
 * *syncs_marked), all in one transaction: every write or none, and the request stays open when
 * any fails. CF_ECONFLICT when the request is no longer open or a secret's version moved. */
enum cf_rc cf_store_change_request_merge(struct cf_store *st, const char *request_id,
                                         const char *merged_by, const char *bypass_reason,
                                         const struct cf_secret_write *writes, size_t n,
                                         int64_t *syncs_marked, struct cf_err *err);

void cf_approval_policy_release(struct cf_approval_policy *p);
void cf_approval_policy_list_release(struct cf_approval_policy_list *l);
void cf_change_request_release(struct cf_change_request *r);
void cf_change_request_list_release(struct cf_change_request_list *l);

/* Deep copy of src into dst (heap members duplicated); CF_ENOMEM on failure (dst zeroed). */
enum cf_rc cf_secret_copy(struct cf_secret *dst, const struct cf_secret *src);

#endif
