/* Every operation of the store (store.h) once, as SQL on a driver (sqldb.h): SQLite (sqlite.c) or
 * PostgreSQL (postgres.c). The code is layered: statements (one table of SQL, portable between the
 * two dialects), a runner that hands a statement and its arguments to the driver, row readers (one
 * per struct), then the operations. Every write runs inside the driver's write transaction
 * (sql_tx_begin ... sql_tx_end), which both drivers make serial across every process sharing the
 * database.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "store/sqldb.h"
#include "store/sqlrun.h"
#include "store/store.h"
#include "util/id.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

/* ---- statements ---- */

#define PROJECT_COLS "id, slug, name, description, created_at, updated_at, wrapped_key"
/* ENV_COLS and IMPORT_COLS both have id first and position fifth: renumber() reads them alike. */
#define ENV_COLS "id, project_id, slug, name, position, created_at, updated_at"
#define IMPORT_COLS "id, folder_id, import_env_id, import_path, position, created_at, updated_at"
#define POSITION_COL 4
#define FOLDER_COLS                                                                                \
    "id, env_id, COALESCE(parent_id, ''), name, path, description, created_at, updated_at"
#define TAG_COLS "id, project_id, slug, name, color, created_at, updated_at"
#define IDENTITY_COLS "id, name, created_at, updated_at"
/* The columns of a struct cf_token_policy, in this order in every auth method's table (read by
 * read_token_policy, bound by A_TOKEN_POLICY). */
#define TOKEN_POLICY_COLS                                                                          \
    " access_token_ttl, access_token_max_ttl, access_token_num_uses_limit,"                        \
    " access_token_trusted_ips"
#define UA_COLS                                                                                    \
    "identity_id, client_id," TOKEN_POLICY_COLS ", client_secret_trusted_ips, created_at,"         \
    " updated_at"
#define JWT_COLS                                                                                   \
    "identity_id, configuration_type, public_keys, jwks_url, jwks_ca_cert, bound_issuer,"          \
    " bound_audiences, bound_claims, bound_subject," TOKEN_POLICY_COLS ", created_at, updated_at," \
    " clock_skew_leeway"
#define K8S_COLS                                                                                   \
    "identity_id, kubernetes_host, ca_cert, token_reviewer_jwt, allowed_namespaces,"               \
    " allowed_names, allowed_audience," TOKEN_POLICY_COLS ", created_at, updated_at"
#define CSECRET_COLS                                                                               \
    "id, identity_id, description, prefix, hash, expires_at, num_uses, num_uses_limit, revoked,"   \
    " created_at, updated_at"
#define TOKEN_COLS                                                                                 \
    "id, identity_id, client_secret_id, auth_method, hash, ttl, max_ttl, num_uses,"                \
    " num_uses_limit, revoked, trusted_ips, created_at, last_renewed_at"
#define MEMBERSHIP_COLS "id, identity_id, project_id, role, rules, created_at, updated_at"
#define CHANNEL_COLS "id, project_id, type, name, target, signing_secret, created_at"
#define NOTICE_COLS                                                                                \
    "n.id, n.channel_id, n.item_key, n.threshold, n.project_id, n.message, n.item, n.state,"       \
    " n.attempts, n.next_attempt_at, n.last_error, n.created_at, n.delivered_at"
#define AUDIT_COLS                                                                                 \
    "seq, id, time_us, actor_kind, actor_id, actor_name, source_ip, user_agent, action,"           \
    " project_id, environment, path, keys, result, reason, request_id, prev_hash, hash"
/* Counting one use of a credential: only while it is not revoked and has uses left, so that two
 * concurrent uses can never both take the last one (writes are serialised, and the test and the
 * increment are one statement). */
#define USE_ONE(table)                                                                             \
    "UPDATE " table " SET num_uses = num_uses + 1 WHERE id = ?1 AND revoked = 0"                   \
    " AND (num_uses_limit = 0 OR num_uses < num_uses_limit)"
#define SECRET_COLS                                                                                \
    "s.id, s.folder_id, e.project_id, f.env_id, f.path, v.key, v.version, v.sealed, v.comment, "   \
    "v.tags, v.expires_at, v.skip_multiline, s.created_at, v.created_at, v.reminder_repeat_days, " \
    "v.reminder_note"
/* A secret joined with one of its versions, its folder and its environment. */
#define SECRET_FROM                                                                                \
    " FROM secrets s JOIN secret_versions v ON v.secret_id = s.id"                                 \
    " JOIN folders f ON f.id = s.folder_id JOIN environments e ON e.id = f.env_id"
/* Current versions of the secrets of folders f: the listing queries start from the folder index. */
#define SECRET_LIST_FROM                                                                           \
    " FROM folders f JOIN secrets s ON s.folder_id = f.id"                                         \
    " JOIN secret_versions v ON v.secret_id = s.id AND v.version = s.version"                      \
    " JOIN environments e ON e.id = f.env_id"
/* path = ?2 or a descendant: ?3 is path + "/" and ?4 path + "0" ('0' follows '/'), see
 * subtree_bounds(). The range [?2, ?4) lets the (env_id, path) index bound the scan; the second
 * test drops siblings such as "/a-b" or "/a.b" that sort between "/a" and "/a/". */
#define SUBTREE(col) "(" col " >= ?2 AND " col " < ?4 AND (" col " = ?2 OR " col " > ?3))"

static struct sql_stmt ST_SAVEPOINT = SQL_STMT("SAVEPOINT one_job");
static struct sql_stmt ST_RELEASE = SQL_STMT("RELEASE one_job");
static struct sql_stmt ST_ROLLBACK_TO = SQL_STMT("ROLLBACK TO one_job");
static struct sql_stmt ST_PING = SQL_STMT("SELECT 1");
static struct sql_stmt ST_MIGRATION_VERSION =
    SQL_STMT("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
static struct sql_stmt ST_MIGRATION_RECORD =
    SQL_STMT("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)");
static struct sql_stmt ST_META_GET = SQL_STMT("SELECT value FROM meta WHERE name = ?1");
static struct sql_stmt ST_META_PUT =
    SQL_STMT("INSERT INTO meta (name, value) VALUES (?1, ?2)"
             " ON CONFLICT (name) DO UPDATE SET value = excluded.value");
static struct sql_stmt ST_META_INSERT = SQL_STMT("INSERT INTO meta (name, value) VALUES (?1, ?2)");
static struct sql_stmt ST_META_SWAP =
    SQL_STMT("UPDATE meta SET value = ?3 WHERE name = ?1 AND value = ?2");
static struct sql_stmt ST_PROJECT_INSERT =
    SQL_STMT("INSERT INTO projects (" PROJECT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
static struct sql_stmt ST_PROJECT_BY_ID =
    SQL_STMT("SELECT " PROJECT_COLS " FROM projects WHERE id = ?1");
static struct sql_stmt ST_PROJECT_BY_SLUG =
    SQL_STMT("SELECT " PROJECT_COLS " FROM projects WHERE slug = ?1");
static struct sql_stmt ST_PROJECT_LIST =
    SQL_STMT("SELECT " PROJECT_COLS " FROM projects ORDER BY created_at, slug");
static struct sql_stmt ST_PROJECT_DELETE = SQL_STMT("DELETE FROM projects WHERE id = ?1");
static struct sql_stmt ST_PROJECT_SET_KEY =
    SQL_STMT("UPDATE projects SET wrapped_key = ?2, updated_at = ?3 WHERE id = ?1");
static struct sql_stmt ST_ENV_INSERT =
    SQL_STMT("INSERT INTO environments (" ENV_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
static struct sql_stmt ST_ENV_NEXT_POSITION =
    SQL_STMT("SELECT COALESCE(MAX(position), 0) + 1 FROM environments WHERE project_id = ?1");
static struct sql_stmt ST_ENV_BY_ID =
    SQL_STMT("SELECT " ENV_COLS " FROM environments WHERE project_id = ?1 AND id = ?2");
static struct sql_stmt ST_ENV_BY_SLUG =
    SQL_STMT("SELECT " ENV_COLS " FROM environments WHERE project_id = ?1 AND slug = ?2");
static struct sql_stmt ST_ENV_BY_ID_ANY_PROJECT =
    SQL_STMT("SELECT " ENV_COLS " FROM environments WHERE id = ?1");
static struct sql_stmt ST_ENV_LIST =
    SQL_STMT("SELECT " ENV_COLS " FROM environments WHERE project_id = ?1"
             " ORDER BY position, created_at, id");
static struct sql_stmt ST_ENV_UPDATE =
    SQL_STMT("UPDATE environments SET slug = COALESCE(NULLIF(?2, ''), slug),"
             " name = COALESCE(NULLIF(?3, ''), name), updated_at = ?4 WHERE id = ?1");
static struct sql_stmt ST_ENV_SET_POSITION =
    SQL_STMT("UPDATE environments SET position = ?2 WHERE id = ?1");
static struct sql_stmt ST_ENV_DELETE = SQL_STMT("DELETE FROM environments WHERE id = ?1");
static struct sql_stmt ST_ENV_IMPORTING_FOLDERS =
    SQL_STMT("SELECT DISTINCT folder_id FROM secret_imports WHERE import_env_id = ?1");
static struct sql_stmt ST_FOLDER_INSERT =
    SQL_STMT("INSERT INTO folders (id, env_id, parent_id, name, path, description,"
             " created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
static struct sql_stmt ST_FOLDER_BY_ID =
    SQL_STMT("SELECT " FOLDER_COLS " FROM folders WHERE id = ?1");
static struct sql_stmt ST_FOLDER_BY_PATH =
    SQL_STMT("SELECT " FOLDER_COLS " FROM folders WHERE env_id = ?1 AND path = ?2");
static struct sql_stmt ST_FOLDER_CHILDREN =
    SQL_STMT("SELECT c.id, c.env_id, c.parent_id, c.name, c.path, c.description, c.created_at,"
             " c.updated_at FROM folders p JOIN folders c ON c.parent_id = p.id"
             " WHERE p.env_id = ?1 AND p.path = ?2 ORDER BY c.path");
static struct sql_stmt ST_FOLDER_DESCENDANTS =
    SQL_STMT("SELECT " FOLDER_COLS " FROM folders"
             " WHERE env_id = ?1 AND path > ?2 AND path < ?3 ORDER BY path");
static struct sql_stmt ST_FOLDER_DELETE_SUBTREE =
    SQL_STMT("DELETE FROM folders WHERE env_id = ?1 AND " SUBTREE("path"));
static struct sql_stmt ST_SECRET_LIST = SQL_STMT(
    "SELECT " SECRET_COLS SECRET_LIST_FROM " WHERE f.env_id = ?1 AND f.path = ?2 ORDER BY s.key");
static struct sql_stmt ST_SECRET_LIST_SUBTREE =
    SQL_STMT("SELECT " SECRET_COLS SECRET_LIST_FROM
             " WHERE f.env_id = ?1 AND " SUBTREE("f.path") " ORDER BY f.path, s.key");
static struct sql_stmt ST_SECRET_BY_KEY =
    SQL_STMT("SELECT " SECRET_COLS SECRET_FROM " WHERE s.folder_id = ?1 AND s.key = ?2"
             " AND v.version = CASE WHEN ?3 > 0 THEN ?3 ELSE s.version END");
static struct sql_stmt ST_SECRET_BY_ID =
    SQL_STMT("SELECT " SECRET_COLS SECRET_FROM
             " WHERE s.id = ?1 AND v.version = CASE WHEN ?2 > 0 THEN ?2 ELSE s.version END");
static struct sql_stmt ST_SECRET_HISTORY =
    SQL_STMT("SELECT " SECRET_COLS SECRET_FROM " WHERE s.id = ?1 ORDER BY v.version DESC");
static struct sql_stmt ST_SECRET_STATE =
    SQL_STMT("SELECT id, folder_id, key, version FROM secrets WHERE id = ?1");
static struct sql_stmt ST_SECRET_INSERT =
    SQL_STMT("INSERT INTO secrets (id, folder_id, key, version, created_at, updated_at)"
             " VALUES (?1, ?2, ?3, 1, ?4, ?5)");
static struct sql_stmt ST_SECRET_BUMP =
    SQL_STMT("UPDATE secrets SET key = ?2, version = ?3, updated_at = ?4 WHERE id = ?1");
static struct sql_stmt ST_SECRET_DELETE = SQL_STMT("DELETE FROM secrets WHERE id = ?1");
static struct sql_stmt ST_VERSION_INSERT = SQL_STMT(
    "INSERT INTO secret_versions (secret_id, version, key, sealed, comment, tags, expires_at,"
    " skip_multiline, created_at, reminder_repeat_days, reminder_note)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
/* Expiry scans: each branch of the OR has its partial index. */
static struct sql_stmt ST_SECRET_EXPIRING = SQL_STMT(
    "SELECT " SECRET_COLS SECRET_LIST_FROM
    " WHERE (?1 = '' OR e.project_id = ?1) AND ((v.expires_at > 0 AND v.expires_at <= ?2)"
    " OR (v.reminder_repeat_days > 0 AND v.created_at + v.reminder_repeat_days * 86400000 <= "
    "?2))");
/* Inventory: the current versions of a project without their sealed values; the
 * count is a range over the (secret_id, version) key. */
static struct sql_stmt ST_SECRET_INVENTORY =
    SQL_STMT("SELECT s.id, e.project_id, f.env_id, f.path, v.key, v.version,"
             " (SELECT COUNT(*) FROM secret_versions c WHERE c.secret_id = s.id),"
             " v.expires_at, v.reminder_repeat_days, s.created_at, v.created_at" SECRET_LIST_FROM
             " WHERE e.project_id = ?1 ORDER BY e.position, f.path, s.key");
static struct sql_stmt ST_IMPORT_INSERT =
    SQL_STMT("INSERT INTO secret_imports (" IMPORT_COLS ") VALUES (?1, ?2, ?3, ?4,"
             " (SELECT COALESCE(MAX(position), 0) + 1 FROM secret_imports WHERE "
             "folder_id = ?2), ?5, ?6)");
static struct sql_stmt ST_IMPORT_BY_ID =
    SQL_STMT("SELECT " IMPORT_COLS " FROM secret_imports WHERE id = ?1");
static struct sql_stmt ST_IMPORT_LIST =
    SQL_STMT("SELECT " IMPORT_COLS " FROM secret_imports WHERE folder_id = ?1"
             " ORDER BY position, created_at, id");
static struct sql_stmt ST_IMPORT_SET_POSITION =
    SQL_STMT("UPDATE secret_imports SET position = ?2 WHERE id = ?1");
static struct sql_stmt ST_IMPORT_DELETE = SQL_STMT("DELETE FROM secret_imports WHERE id = ?1");
static struct sql_stmt ST_TAG_INSERT =
    SQL_STMT("INSERT INTO tags (" TAG_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
static struct sql_stmt ST_TAG_BY_ID =
    SQL_STMT("SELECT " TAG_COLS " FROM tags WHERE project_id = ?1 AND id = ?2");
static struct sql_stmt ST_TAG_BY_SLUG =
    SQL_STMT("SELECT " TAG_COLS " FROM tags WHERE project_id = ?1 AND slug = ?2");
static struct sql_stmt ST_TAG_LIST =
    SQL_STMT("SELECT " TAG_COLS " FROM tags WHERE project_id = ?1 ORDER BY slug");
static struct sql_stmt ST_IDENTITY_INSERT =
    SQL_STMT("INSERT INTO identities (" IDENTITY_COLS ") VALUES (?1, ?2, ?3, ?4)");
static struct sql_stmt ST_IDENTITY_BY_ID =
    SQL_STMT("SELECT " IDENTITY_COLS " FROM identities WHERE id = ?1");
static struct sql_stmt ST_IDENTITY_LIST =
    SQL_STMT("SELECT " IDENTITY_COLS " FROM identities ORDER BY created_at, name");
static struct sql_stmt ST_IDENTITY_RENAME =
    SQL_STMT("UPDATE identities SET name = ?2, updated_at = ?3 WHERE id = ?1");
static struct sql_stmt ST_IDENTITY_DELETE = SQL_STMT("DELETE FROM identities WHERE id = ?1");
static struct sql_stmt ST_UA_INSERT = SQL_STMT("INSERT INTO identity_universal_auths (" UA_COLS ")"
                                               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
static struct sql_stmt ST_UA_UPDATE =
    SQL_STMT("UPDATE identity_universal_auths SET access_token_ttl = ?2,"
             " access_token_max_ttl = ?3, access_token_num_uses_limit = ?4,"
             " access_token_trusted_ips = ?5, client_secret_trusted_ips = ?6,"
             " updated_at = ?7 WHERE identity_id = ?1");
static struct sql_stmt ST_UA_BY_IDENTITY =
    SQL_STMT("SELECT " UA_COLS " FROM identity_universal_auths WHERE identity_id = ?1");
static struct sql_stmt ST_UA_BY_CLIENT_ID =
    SQL_STMT("SELECT " UA_COLS " FROM identity_universal_auths WHERE client_id = ?1");
static struct sql_stmt ST_JWT_INSERT =
    SQL_STMT("INSERT INTO identity_jwt_auths (" JWT_COLS ")"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
             " ?16)");
static struct sql_stmt ST_JWT_UPDATE =
    SQL_STMT("UPDATE identity_jwt_auths SET configuration_type = ?2, public_keys = ?3,"
             " jwks_url = ?4, jwks_ca_cert = ?5, bound_issuer = ?6, bound_audiences = ?7,"
             " bound_claims = ?8, bound_subject = ?9, access_token_ttl = ?10,"
             " access_token_max_ttl = ?11, access_token_num_uses_limit = ?12,"
             " access_token_trusted_ips = ?13, updated_at = ?14, clock_skew_leeway = ?15"
             " WHERE identity_id = ?1");
static struct sql_stmt ST_JWT_BY_IDENTITY =
    SQL_STMT("SELECT " JWT_COLS " FROM identity_jwt_auths WHERE identity_id = ?1");
static struct sql_stmt ST_K8S_INSERT =
    SQL_STMT("INSERT INTO identity_kubernetes_auths (" K8S_COLS ")"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
static struct sql_stmt ST_K8S_UPDATE =
    SQL_STMT("UPDATE identity_kubernetes_auths SET kubernetes_host = ?2, ca_cert = ?3,"
             " token_reviewer_jwt = ?4, allowed_namespaces = ?5, allowed_names = ?6,"
             " allowed_audience = ?7, access_token_ttl = ?8, access_token_max_ttl = ?9,"
             " access_token_num_uses_limit = ?10, access_token_trusted_ips = ?11,"
             " updated_at = ?12 WHERE identity_id = ?1");
static struct sql_stmt ST_K8S_BY_IDENTITY =
    SQL_STMT("SELECT " K8S_COLS " FROM identity_kubernetes_auths WHERE identity_id = ?1");
static struct sql_stmt ST_CSECRET_INSERT =
    SQL_STMT("INSERT INTO identity_client_secrets (" CSECRET_COLS ")"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
static struct sql_stmt ST_CSECRET_BY_ID = SQL_STMT(
    "SELECT " CSECRET_COLS " FROM identity_client_secrets WHERE id = ?2 AND identity_id = ?1");
static struct sql_stmt ST_CSECRET_LIST =
    SQL_STMT("SELECT " CSECRET_COLS " FROM identity_client_secrets"
             " WHERE identity_id = ?1 ORDER BY created_at DESC, rowid DESC");
/* Revoking twice keeps the time of the first revocation. */
static struct sql_stmt ST_CSECRET_EXPIRING =
    SQL_STMT("SELECT " CSECRET_COLS " FROM identity_client_secrets"
             " WHERE expires_at > 0 AND revoked = 0 AND expires_at <= ?1"
             " ORDER BY expires_at, id");
static struct sql_stmt ST_CSECRET_REVOKE =
    SQL_STMT("UPDATE identity_client_secrets SET revoked = 1,"
             " updated_at = CASE WHEN revoked <> 0 THEN updated_at ELSE ?3 END"
             " WHERE id = ?2 AND identity_id = ?1");
static struct sql_stmt ST_CSECRET_USE = SQL_STMT(USE_ONE("identity_client_secrets"));
static struct sql_stmt ST_CSECRET_USE_STATE =
    SQL_STMT("SELECT revoked, num_uses, num_uses_limit FROM identity_client_secrets WHERE id = ?1");
static struct sql_stmt ST_TOKEN_INSERT =
    SQL_STMT("INSERT INTO identity_access_tokens (" TOKEN_COLS ")"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
/* With the state of the client secret that issued the token (0 when it has none or it is gone,
 * 1 live, 2 revoked; and its expiry): one statement, two primary-key seeks, so that every
 * request sees a revoked, deleted or expired secret at once, on every node. */
static struct sql_stmt ST_TOKEN_BY_ID = SQL_STMT(
    "SELECT " TOKEN_COLS ", COALESCE((SELECT CASE WHEN s.revoked <> 0 THEN 2 ELSE 1 END"
    " FROM identity_client_secrets s WHERE s.id = identity_access_tokens.client_secret_id), 0),"
    " COALESCE((SELECT s.expires_at FROM identity_client_secrets s"
    " WHERE s.id = identity_access_tokens.client_secret_id), 0)"
    " FROM identity_access_tokens WHERE id = ?1");
static struct sql_stmt ST_TOKEN_USE = SQL_STMT(USE_ONE("identity_access_tokens"));
static struct sql_stmt ST_TOKEN_USE_STATE =
    SQL_STMT("SELECT revoked, num_uses, num_uses_limit FROM identity_access_tokens WHERE id = ?1");
static struct sql_stmt ST_TOKEN_RENEW =
    SQL_STMT("UPDATE identity_access_tokens SET last_renewed_at = ?2 WHERE id = ?1");
static struct sql_stmt ST_TOKEN_REVOKE =
    SQL_STMT("UPDATE identity_access_tokens SET revoked = 1 WHERE id = ?1");
static struct sql_stmt ST_TOKEN_DELETE_BY_METHOD =
    SQL_STMT("DELETE FROM identity_access_tokens WHERE identity_id = ?1 AND auth_method = ?2");
static struct sql_stmt ST_UA_DELETE =
    SQL_STMT("DELETE FROM identity_universal_auths WHERE identity_id = ?1");
static struct sql_stmt ST_JWT_DELETE =
    SQL_STMT("DELETE FROM identity_jwt_auths WHERE identity_id = ?1");
static struct sql_stmt ST_K8S_DELETE =
    SQL_STMT("DELETE FROM identity_kubernetes_auths WHERE identity_id = ?1");
static struct sql_stmt ST_CSECRET_DELETE_ALL =
    SQL_STMT("DELETE FROM identity_client_secrets WHERE identity_id = ?1");
static struct sql_stmt ST_CHANNEL_INSERT =
    SQL_STMT("INSERT INTO notification_channels (" CHANNEL_COLS ")"
             " VALUES (?1, NULLIF(?2, ''), ?3, ?4, ?5, ?6, ?7)");
static struct sql_stmt ST_CHANNEL_LIST_ALL =
    SQL_STMT("SELECT " CHANNEL_COLS " FROM notification_channels"
             " ORDER BY created_at, id");
static struct sql_stmt ST_CHANNEL_LIST_PROJECT =
    SQL_STMT("SELECT " CHANNEL_COLS " FROM notification_channels"
             " WHERE project_id = ?1 ORDER BY created_at, id");
static struct sql_stmt ST_CHANNEL_DELETE =
    SQL_STMT("DELETE FROM notification_channels WHERE id = ?1");
static struct sql_stmt ST_THRESHOLDS_GET =
    SQL_STMT("SELECT thresholds FROM notification_settings WHERE project_id = ?1");
static struct sql_stmt ST_THRESHOLDS_PUT =
    SQL_STMT("INSERT INTO notification_settings (project_id, thresholds, updated_at)"
             " VALUES (?1, ?2, ?3) ON CONFLICT (project_id) DO UPDATE SET"
             " thresholds = excluded.thresholds, updated_at = excluded.updated_at");
static struct sql_stmt ST_NOTICE_CLAIM =
    SQL_STMT("INSERT INTO notices (id, channel_id, item_key, threshold, project_id,"
             " message, item, state, attempts, next_attempt_at, created_at)"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', 0, ?8, ?8)"
             " ON CONFLICT (item_key, threshold, channel_id) DO NOTHING");
static struct sql_stmt ST_NOTICE_DUE =
    SQL_STMT("SELECT " NOTICE_COLS " FROM notices n WHERE n.state = 'pending'"
             " AND n.next_attempt_at <= ?1 ORDER BY n.next_attempt_at, n.id LIMIT ?2");
static struct sql_stmt ST_NOTICE_UPDATE =
    SQL_STMT("UPDATE notices SET state = ?2, attempts = ?3, next_attempt_at = ?4,"
             " last_error = ?5, delivered_at = ?6 WHERE id = ?1");
static struct sql_stmt ST_NOTICE_LIST =
    SQL_STMT("SELECT " NOTICE_COLS " FROM notices n"
             " JOIN notification_channels c ON c.id = n.channel_id"
             " WHERE (?1 = '' OR c.project_id = ?1) AND (?2 = '' OR n.state = ?2)"
             " ORDER BY n.created_at DESC, n.id LIMIT ?3 OFFSET ?4");
static struct sql_stmt ST_AUDIT_LAST =
    SQL_STMT("SELECT " AUDIT_COLS " FROM audit_events ORDER BY seq DESC LIMIT 1");
static struct sql_stmt ST_AUDIT_GET =
    SQL_STMT("SELECT " AUDIT_COLS " FROM audit_events WHERE seq = ?1");
static struct sql_stmt ST_AUDIT_INSERT =
    SQL_STMT("INSERT INTO audit_events (" AUDIT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6,"
             " ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)");
static struct sql_stmt ST_AUDIT_LIST =
    SQL_STMT("SELECT " AUDIT_COLS " FROM audit_events WHERE seq > ?1"
             " AND (?2 = 0 OR time_us >= ?2) AND (?3 = 0 OR time_us < ?3)"
             " AND (?4 = '' OR actor_id = ?4 OR actor_name = ?4)"
             " AND (?5 = '' OR action = ?5"
             "      OR (substr(?5, length(?5), 1) = '.' AND substr(action, 1, length(?5)) = ?5))"
             " AND (?6 = '' OR project_id = ?6) ORDER BY seq LIMIT ?7");
static struct sql_stmt ST_AUDIT_CHECKPOINT_INSERT =
    SQL_STMT("INSERT INTO audit_checkpoints (event_seq, time_us, event_hash,"
             " signature) VALUES (?1, ?2, ?3, ?4)");
static struct sql_stmt ST_AUDIT_CHECKPOINT_LIST =
    SQL_STMT("SELECT event_seq, time_us, event_hash, signature"
             " FROM audit_checkpoints ORDER BY event_seq");
static struct sql_stmt ST_MEMBERSHIP_UPSERT = SQL_STMT(
    "INSERT INTO identity_memberships (" MEMBERSHIP_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    " ON CONFLICT (identity_id, project_id) DO UPDATE SET role = excluded.role,"
    " rules = excluded.rules, updated_at = excluded.updated_at");
static struct sql_stmt ST_MEMBERSHIP_GET =
    SQL_STMT("SELECT " MEMBERSHIP_COLS " FROM identity_memberships"
             " WHERE identity_id = ?1 AND project_id = ?2");
static struct sql_stmt ST_MEMBERSHIP_BY_IDENTITY =
    SQL_STMT("SELECT " MEMBERSHIP_COLS " FROM identity_memberships"
             " WHERE identity_id = ?1 ORDER BY created_at, project_id");
static struct sql_stmt ST_MEMBERSHIP_BY_PROJECT =
    SQL_STMT("SELECT " MEMBERSHIP_COLS " FROM identity_memberships"
             " WHERE project_id = ?1 ORDER BY created_at, identity_id");
static struct sql_stmt ST_MEMBERSHIP_DELETE =
    SQL_STMT("DELETE FROM identity_memberships WHERE identity_id = ?1 AND project_id = ?2");

/* ---- store and connections ---- */

/* A token waiting for the group commit. It lives on the waiting thread's stack. */
struct token_job {
    const struct cf_access_token *token;
    enum cf_rc rc;
    struct cf_err err;
    bool done;
    struct token_job *next;
};

/* This thread's connection. */
static enum cf_rc conn_get(struct sql_store *st, struct db_conn **out, struct cf_err *err)
{
    return st->drv->conn_get(st, out, err);
}

/* The arguments of TOKEN_POLICY_COLS from a struct cf_token_policy. */
#define A_TOKEN_POLICY(p)                                                                          \
    A_INT((p).ttl), A_INT((p).max_ttl), A_INT((p).num_uses_limit), A_TEXT((p).trusted_ips)

/* ---- row readers ---- */

static enum cf_rc read_project(const struct db_row *s, void *item)
{
    struct cf_project *p = item;
    db_row_text(s, 0, p->id, sizeof(p->id));
    db_row_text(s, 1, p->slug, sizeof(p->slug));
    db_row_text(s, 2, p->name, sizeof(p->name));
    db_row_text(s, 3, p->description, sizeof(p->description));
    p->created_at = db_row_int64(s, 4);
    p->updated_at = db_row_int64(s, 5);
    enum cf_rc rc = db_row_status(s);
    return rc == CF_OK ? sql_col_blob(s, 6, &p->wrapped_key, &p->wrapped_key_len) : rc;
}

static enum cf_rc read_env(const struct db_row *s, void *item)
{
    struct cf_env *e = item;
    db_row_text(s, 0, e->id, sizeof(e->id));
    db_row_text(s, 1, e->project_id, sizeof(e->project_id));
    db_row_text(s, 2, e->slug, sizeof(e->slug));
    db_row_text(s, 3, e->name, sizeof(e->name));
    e->position = (int)db_row_int64(s, POSITION_COL);
    e->created_at = db_row_int64(s, 5);
    e->updated_at = db_row_int64(s, 6);
    return db_row_status(s);
}

static enum cf_rc read_folder(const struct db_row *s, void *item)
{
    struct cf_folder *f = item;
    db_row_text(s, 0, f->id, sizeof(f->id));
    db_row_text(s, 1, f->env_id, sizeof(f->env_id));
    db_row_text(s, 2, f->parent_id, sizeof(f->parent_id));
    db_row_text(s, 3, f->name, sizeof(f->name));
    db_row_text(s, 4, f->path, sizeof(f->path));
    db_row_text(s, 5, f->description, sizeof(f->description));
    f->created_at = db_row_int64(s, 6);
    f->updated_at = db_row_int64(s, 7);
    return db_row_status(s);
}

static enum cf_rc read_secret(const struct db_row *s, void *item)
{
    struct cf_secret *x = item;
    enum cf_rc rc;
    db_row_text(s, 0, x->id, sizeof(x->id));
    db_row_text(s, 1, x->folder_id, sizeof(x->folder_id));
    db_row_text(s, 2, x->project_id, sizeof(x->project_id));
    db_row_text(s, 3, x->env_id, sizeof(x->env_id));
    db_row_text(s, 4, x->path, sizeof(x->path));
    db_row_text(s, 5, x->key, sizeof(x->key));
    x->version = db_row_int64(s, 6);
    x->expires_at = db_row_int64(s, 10);
    x->skip_multiline = (int)db_row_int64(s, 11) != 0;
    x->created_at = db_row_int64(s, 12);
    x->updated_at = db_row_int64(s, 13);
    x->reminder_repeat_days = db_row_int64(s, 14);
    rc = db_row_status(s);
    if (rc == CF_OK)
        rc = sql_col_blob(s, 7, &x->sealed, &x->sealed_len);
    if (rc == CF_OK)
        rc = sql_col_strdup(s, 8, &x->comment);
    if (rc == CF_OK)
        rc = sql_col_strdup(s, 9, &x->tags);
    if (rc == CF_OK)
        rc = sql_col_strdup(s, 15, &x->reminder_note);
    return rc;
}

static enum cf_rc read_secret_meta(const struct db_row *s, void *item)
{
    struct cf_secret_meta *x = item;
    db_row_text(s, 0, x->id, sizeof(x->id));
    db_row_text(s, 1, x->project_id, sizeof(x->project_id));
    db_row_text(s, 2, x->env_id, sizeof(x->env_id));
    db_row_text(s, 3, x->path, sizeof(x->path));
    db_row_text(s, 4, x->key, sizeof(x->key));
    x->version = db_row_int64(s, 5);
    x->version_count = db_row_int64(s, 6);
    x->expires_at = db_row_int64(s, 7);
    x->reminder_repeat_days = db_row_int64(s, 8);
    x->created_at = db_row_int64(s, 9);
    x->updated_at = db_row_int64(s, 10);
    return db_row_status(s);
}

static enum cf_rc read_import(const struct db_row *s, void *item)
{
    struct cf_import *im = item;
    db_row_text(s, 0, im->id, sizeof(im->id));
    db_row_text(s, 1, im->folder_id, sizeof(im->folder_id));
    db_row_text(s, 2, im->import_env_id, sizeof(im->import_env_id));
    db_row_text(s, 3, im->import_path, sizeof(im->import_path));
    im->position = (int)db_row_int64(s, POSITION_COL);
    im->created_at = db_row_int64(s, 5);
    im->updated_at = db_row_int64(s, 6);
    return db_row_status(s);
}

static enum cf_rc read_tag(const struct db_row *s, void *item)
{
    struct cf_tag *t = item;
    db_row_text(s, 0, t->id, sizeof(t->id));
    db_row_text(s, 1, t->project_id, sizeof(t->project_id));
    db_row_text(s, 2, t->slug, sizeof(t->slug));
    db_row_text(s, 3, t->name, sizeof(t->name));
    db_row_text(s, 4, t->color, sizeof(t->color));
    t->created_at = db_row_int64(s, 5);
    t->updated_at = db_row_int64(s, 6);
    return db_row_status(s);
}

static enum cf_rc read_identity(const struct db_row *s, void *item)
{
    struct cf_identity *i = item;
    db_row_text(s, 0, i->id, sizeof(i->id));
    db_row_text(s, 1, i->name, sizeof(i->name));
    i->created_at = db_row_int64(s, 2);
    i->updated_at = db_row_int64(s, 3);
    return db_row_status(s);
}

/* The TOKEN_POLICY_COLS of a row, starting at column first. */
static void read_token_policy(const struct db_row *s, int first, struct cf_token_policy *p)
{
    p->ttl = db_row_int64(s, first);
    p->max_ttl = db_row_int64(s, first + 1);
    p->num_uses_limit = db_row_int64(s, first + 2);
    db_row_text(s, first + 3, p->trusted_ips, sizeof(p->trusted_ips));
}

static enum cf_rc read_ua(const struct db_row *s, void *item)
{
    struct cf_ua_config *u = item;
    db_row_text(s, 0, u->identity_id, sizeof(u->identity_id));
    db_row_text(s, 1, u->client_id, sizeof(u->client_id));
    read_token_policy(s, 2, &u->token);
    db_row_text(s, 6, u->client_secret_trusted_ips, sizeof(u->client_secret_trusted_ips));
    u->created_at = db_row_int64(s, 7);
    u->updated_at = db_row_int64(s, 8);
    return db_row_status(s);
}

/* Allocates the heap texts of a struct cf_jwt_auth_config (released by
 * cf_jwt_auth_config_release, also after a partial read). */
static enum cf_rc read_jwt(const struct db_row *s, void *item)
{
    struct cf_jwt_auth_config *j = item;
    char **texts[] = {&j->public_keys,     &j->jwks_url,     &j->jwks_ca_cert, &j->bound_issuer,
                      &j->bound_audiences, &j->bound_claims, &j->bound_subject};
    enum cf_rc rc = CF_OK;
    db_row_text(s, 0, j->identity_id, sizeof(j->identity_id));
    db_row_text(s, 1, j->configuration_type, sizeof(j->configuration_type));
    rc = db_row_status(s);
    for (size_t i = 0; rc == CF_OK && i < CF_ARRAY_SIZE(texts); i++)
        rc = sql_col_strdup(s, 2 + (int)i, texts[i]);
    read_token_policy(s, 9, &j->token);
    j->created_at = db_row_int64(s, 13);
    j->updated_at = db_row_int64(s, 14);
    j->clock_skew_leeway = db_row_int64(s, 15);
    return rc;
}

static enum cf_rc read_k8s(const struct db_row *s, void *item)
{
    struct cf_k8s_auth_config *k = item;
    db_row_text(s, 0, k->identity_id, sizeof(k->identity_id));
    db_row_text(s, 1, k->kubernetes_host, sizeof(k->kubernetes_host));
    db_row_text(s, 2, k->ca_cert, sizeof(k->ca_cert));
    db_row_text(s, 3, k->token_reviewer_jwt, sizeof(k->token_reviewer_jwt));
    db_row_text(s, 4, k->allowed_namespaces, sizeof(k->allowed_namespaces));
    db_row_text(s, 5, k->allowed_names, sizeof(k->allowed_names));
    db_row_text(s, 6, k->allowed_audience, sizeof(k->allowed_audience));
    read_token_policy(s, 7, &k->token);
    k->created_at = db_row_int64(s, 11);
    k->updated_at = db_row_int64(s, 12);
    return CF_OK;
}

/* A blob column of exactly size bytes (a hash, a signature) into dst; CF_ESTORE, with the row's
 * fault naming the column, when it is NULL or has another size (the schema forbids both). */
static enum cf_rc col_fixed(const struct db_row *s, int i, uint8_t *dst, size_t size)
{
    size_t len = 0;
    const void *blob = db_row_bytes(s, i, &len);
    if (blob && len == size) {
        memcpy(dst, blob, size);
        return CF_OK;
    }
    if (s->fault && s->fault->rc == CF_OK)
        cf_err_set(s->fault, CF_ESTORE, "column '%.64s' holds %zu bytes, not the %zu it must hold",
                   s->ops->name(s, i), blob ? len : 0, size);
    return CF_ESTORE;
}

static enum cf_rc read_channel(const struct db_row *s, void *item)
{
    struct cf_channel *c = item;
    db_row_text(s, 0, c->id, sizeof(c->id));
    db_row_text(s, 1, c->project_id, sizeof(c->project_id));
    db_row_text(s, 2, c->type, sizeof(c->type));
    db_row_text(s, 3, c->name, sizeof(c->name));
    db_row_text(s, 4, c->target, sizeof(c->target));
    db_row_text(s, 5, c->signing_secret, sizeof(c->signing_secret));
    c->created_at = db_row_int64(s, 6);
    return db_row_status(s);
}

static enum cf_rc read_notice(const struct db_row *s, void *item)
{
    struct cf_notice *n = item;
    db_row_text(s, 0, n->id, sizeof(n->id));
    db_row_text(s, 1, n->channel_id, sizeof(n->channel_id));
    db_row_text(s, 2, n->item_key, sizeof(n->item_key));
    db_row_text(s, 3, n->threshold, sizeof(n->threshold));
    db_row_text(s, 4, n->project_id, sizeof(n->project_id));
    db_row_text(s, 5, n->message, sizeof(n->message));
    db_row_text(s, 6, n->item, sizeof(n->item));
    db_row_text(s, 7, n->state, sizeof(n->state));
    n->attempts = db_row_int64(s, 8);
    n->next_attempt_at = db_row_int64(s, 9);
    db_row_text(s, 10, n->last_error, sizeof(n->last_error));
    n->created_at = db_row_int64(s, 11);
    n->delivered_at = db_row_int64(s, 12);
    return db_row_status(s);
}

static enum cf_rc read_audit_event(const struct db_row *s, void *item)
{
    struct cf_audit_event *e = item;
    e->seq = db_row_int64(s, 0);
    db_row_text(s, 1, e->id, sizeof(e->id));
    e->time_us = db_row_int64(s, 2);
    db_row_text(s, 3, e->actor_kind, sizeof(e->actor_kind));
    db_row_text(s, 4, e->actor_id, sizeof(e->actor_id));
    db_row_text(s, 5, e->actor_name, sizeof(e->actor_name));
    db_row_text(s, 6, e->source_ip, sizeof(e->source_ip));
    db_row_text(s, 7, e->user_agent, sizeof(e->user_agent));
    db_row_text(s, 8, e->action, sizeof(e->action));
    db_row_text(s, 9, e->project_id, sizeof(e->project_id));
    db_row_text(s, 10, e->environment, sizeof(e->environment));
    db_row_text(s, 11, e->path, sizeof(e->path));
    db_row_text(s, 12, e->keys, sizeof(e->keys));
    db_row_text(s, 13, e->result, sizeof(e->result));
    db_row_text(s, 14, e->reason, sizeof(e->reason));
    db_row_text(s, 15, e->request_id, sizeof(e->request_id));
    enum cf_rc rc = db_row_status(s);
    if (rc == CF_OK)
        rc = col_fixed(s, 16, e->prev_hash, sizeof(e->prev_hash));
    return rc == CF_OK ? col_fixed(s, 17, e->hash, sizeof(e->hash)) : rc;
}

static enum cf_rc read_audit_checkpoint(const struct db_row *s, void *item)
{
    struct cf_audit_checkpoint *c = item;
    c->event_seq = db_row_int64(s, 0);
    c->time_us = db_row_int64(s, 1);
    enum cf_rc rc = col_fixed(s, 3, c->signature, sizeof(c->signature));
    return rc == CF_OK ? col_fixed(s, 2, c->event_hash, sizeof(c->event_hash)) : rc;
}

static enum cf_rc read_client_secret(const struct db_row *s, void *item)
{
    struct cf_client_secret *c = item;
    db_row_text(s, 0, c->id, sizeof(c->id));
    db_row_text(s, 1, c->identity_id, sizeof(c->identity_id));
    db_row_text(s, 2, c->description, sizeof(c->description));
    db_row_text(s, 3, c->prefix, sizeof(c->prefix));
    c->expires_at = db_row_int64(s, 5);
    c->num_uses = db_row_int64(s, 6);
    c->num_uses_limit = db_row_int64(s, 7);
    c->revoked = (int)db_row_int64(s, 8) != 0;
    c->created_at = db_row_int64(s, 9);
    c->updated_at = db_row_int64(s, 10);
    enum cf_rc rc = db_row_status(s);
    return rc == CF_OK ? col_fixed(s, 4, c->hash, sizeof(c->hash)) : rc;
}

static enum cf_rc read_token(const struct db_row *s, void *item)
{
    struct cf_access_token *t = item;
    db_row_text(s, 0, t->id, sizeof(t->id));
    db_row_text(s, 1, t->identity_id, sizeof(t->identity_id));
    db_row_text(s, 2, t->client_secret_id, sizeof(t->client_secret_id));
    db_row_text(s, 3, t->auth_method, sizeof(t->auth_method));
    t->ttl = db_row_int64(s, 5);
    t->max_ttl = db_row_int64(s, 6);
    t->num_uses = db_row_int64(s, 7);
    t->num_uses_limit = db_row_int64(s, 8);
    t->revoked = (int)db_row_int64(s, 9) != 0;
    db_row_text(s, 10, t->trusted_ips, sizeof(t->trusted_ips));
    t->created_at = db_row_int64(s, 11);
    t->last_renewed_at = db_row_int64(s, 12);
    int64_t secret_state = db_row_int64(s, 13);
    t->client_secret_found = secret_state != 0;
    t->client_secret_revoked = secret_state == 2;
    t->client_secret_expires_at = db_row_int64(s, 14);
    enum cf_rc rc = db_row_status(s);
    return rc == CF_OK ? col_fixed(s, 4, t->hash, sizeof(t->hash)) : rc;
}

/* Membership rules live in one column, so that reading a membership is one seek: a format byte,
 * then for each rule its actions (4 bytes, big-endian), the lengths of its environment field (1
 * byte) and of its path glob (2 bytes, big-endian), then those bytes without terminators. No rules:
 * NULL. The environment field is the environment's id (RULES_FORMAT); the legacy format
 * (RULES_FORMAT_SLUG) held its slug, which a rename could move to another environment, and is
 * decoded so that cf_store_open can bind it (store.h, CF_RULE_ENV_UNRESOLVED). The decoder trusts
 * nothing: every length is checked. */
#define RULES_FORMAT_SLUG 1
#define RULES_FORMAT 2
#define RULE_HEAD 7

static enum cf_rc rules_encode(const struct cf_membership_rule *rules, size_t n, uint8_t **out,
                               size_t *out_len, struct cf_err *err)
{
    uint8_t *buf, *p;
    size_t len = 1;

    *out = NULL;
    *out_len = 0;
    if (n == 0)
        return CF_OK;
    if (!rules)
        return cf_err_set(err, CF_EINVAL, "membership has %zu rules but none given", n);
    if (n > SIZE_MAX / (RULE_HEAD + CF_UUID_LEN + CF_PATH_MAX) - 1)
        return cf_err_set(err, CF_EINVAL, "membership has too many rules");
    for (size_t i = 0; i < n; i++) {
        size_t env_len = strnlen(rules[i].env_id, sizeof(rules[i].env_id));
        size_t glob_len = strnlen(rules[i].path_glob, sizeof(rules[i].path_glob));
        if (env_len >= CF_UUID_LEN || glob_len > CF_PATH_MAX)
            return cf_err_set(err, CF_EINVAL, "membership rule %zu has an unterminated field", i);
        if (!rules[i].env_id[0] && rules[i].env_slug[0])
            return cf_err_set(err, CF_EINVAL,
                              "membership rule %zu names environment '%.64s' without its id", i,
                              rules[i].env_slug);
        len += RULE_HEAD + env_len + glob_len;
    }
    buf = malloc(len);
    if (!buf)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    p = buf;
    *p++ = RULES_FORMAT;
    for (size_t i = 0; i < n; i++) {
        size_t env_len = strlen(rules[i].env_id);
        size_t glob_len = strlen(rules[i].path_glob);
        uint32_t actions = rules[i].actions;
        *p++ = (uint8_t)(actions >> 24);
        *p++ = (uint8_t)(actions >> 16);
        *p++ = (uint8_t)(actions >> 8);
        *p++ = (uint8_t)actions;
        *p++ = (uint8_t)env_len;
        *p++ = (uint8_t)(glob_len >> 8);
        *p++ = (uint8_t)glob_len;
        memcpy(p, rules[i].env_id, env_len);
        p += env_len;
        memcpy(p, rules[i].path_glob, glob_len);
        p += glob_len;
    }
    *out = buf;
    *out_len = len;
    return CF_OK;
}

/* Decodes column i into m->rules and m->n_rules: CF_ENOMEM, or CF_ESTORE when it is malformed. */
static enum cf_rc col_rules(const struct db_row *s, int i, struct cf_membership *m)
{
    size_t len;
    const uint8_t *blob = db_row_bytes(s, i, &len);
    size_t n = 0, at, env_max;

    m->rules = NULL;
    m->n_rules = 0;
    if (!blob)
        return CF_OK;
    if (len < 1 || (blob[0] != RULES_FORMAT && blob[0] != RULES_FORMAT_SLUG))
        return CF_ESTORE;
    env_max = blob[0] == RULES_FORMAT ? CF_UUID_LEN - 1 : CF_SLUG_MAX;
    /* First pass: validate and count. */
    for (at = 1; at < len; n++) {
        if (len - at < RULE_HEAD)
            return CF_ESTORE;
        size_t env_len = blob[at + 4];
        size_t glob_len = (size_t)blob[at + 5] << 8 | blob[at + 6];
        if (env_len > env_max || glob_len > CF_PATH_MAX ||
            len - at - RULE_HEAD < env_len + glob_len)
            return CF_ESTORE;
        at += RULE_HEAD + env_len + glob_len;
    }
    if (n == 0)
        return CF_ESTORE; /* no rules are stored as NULL */
    m->rules = calloc(n, sizeof(*m->rules));
    if (!m->rules)
        return CF_ENOMEM;
    m->n_rules = n;
    at = 1;
    for (size_t r = 0; r < n; r++) {
        struct cf_membership_rule *rule = &m->rules[r];
        const uint8_t *h = blob + at;
        size_t env_len = h[4];
        size_t glob_len = (size_t)h[5] << 8 | h[6];
        rule->actions = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
        if (blob[0] == RULES_FORMAT) {
            memcpy(rule->env_id, h + RULE_HEAD, env_len);
            rule->env_id[env_len] = '\0';
        } else if (env_len > 0) {
            /* A slug: it binds nothing until cf_store_open has looked it up. */
            memcpy(rule->env_slug, h + RULE_HEAD, env_len);
            rule->env_slug[env_len] = '\0';
            cf_strlcpy(rule->env_id, CF_RULE_ENV_UNRESOLVED, sizeof(rule->env_id));
        }
        memcpy(rule->path_glob, h + RULE_HEAD + env_len, glob_len);
        rule->path_glob[glob_len] = '\0';
        at += RULE_HEAD + env_len + glob_len;
    }
    return CF_OK;
}

static enum cf_rc read_membership(const struct db_row *s, void *item)
{
    struct cf_membership *m = item;
    db_row_text(s, 0, m->id, sizeof(m->id));
    db_row_text(s, 1, m->identity_id, sizeof(m->identity_id));
    db_row_text(s, 2, m->project_id, sizeof(m->project_id));
    db_row_text(s, 3, m->role, sizeof(m->role));
    m->created_at = db_row_int64(s, 5);
    m->updated_at = db_row_int64(s, 6);
    enum cf_rc rc = db_row_status(s);
    return rc == CF_OK ? col_rules(s, 4, m) : rc;
}

/* ---- shared helpers of the operations ---- */

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

/* A caller-supplied time, or now when it left it 0. */
static int64_t time_or_now(int64_t t, int64_t now)
{
    return t > 0 ? t : now;
}

/* When id_or_slug is a UUID, its lower-case form in buf (stored ids are lower-case); NULL for a
 * slug. */
static const char *as_id(const char *id_or_slug, char buf[CF_UUID_LEN])
{
    if (!cf_uuid_valid(id_or_slug))
        return NULL;
    for (size_t i = 0; i < CF_UUID_LEN - 1; i++)
        buf[i] = (char)tolower((unsigned char)id_or_slug[i]);
    buf[CF_UUID_LEN - 1] = '\0';
    return buf;
}

static enum cf_rc require_uuid(const char *id, const char *what, struct cf_err *err)
{
    if (cf_uuid_valid(id))
        return CF_OK;
    return cf_err_set(err, CF_EINVAL, "%s id '%s' is not a UUID", what, str_or_empty(id));
}

/* Range bounds for the folders strictly below path: lo = path + "/" and hi = path + "0" ('0' is the
 * byte after
 * '/'), the root's prefix being empty. Comparing with > and < never interprets the path, unlike
 * LIKE. */
struct subtree {
    char lo[CF_PATH_MAX + 2];
    char hi[CF_PATH_MAX + 2];
};

static enum cf_rc subtree_bounds(const char *path, struct subtree *b, struct cf_err *err)
{
    const char *prefix = strcmp(path, "/") == 0 ? "" : path;
    if (strlen(path) > CF_PATH_MAX)
        return cf_err_set(err, CF_EINVAL, "folder path is longer than %d bytes", CF_PATH_MAX);
    snprintf(b->lo, sizeof(b->lo), "%s/", prefix);
    snprintf(b->hi, sizeof(b->hi), "%s0", prefix);
    return CF_OK;
}

/* The path of folder_id into path (for messages; "?" when it is gone). */
static void folder_path_of(struct db_conn *c, const char *folder_id, char path[CF_PATH_MAX + 1])
{
    struct cf_folder folder;
    bool found = false;
    if (sql_get_row(c, &ST_FOLDER_BY_ID, ARGS(A_TEXT(folder_id)), read_folder, &folder, &found,
                    NULL) == CF_OK &&
        found)
        cf_strlcpy(path, folder.path, CF_PATH_MAX + 1);
    else
        cf_strlcpy(path, "?", CF_PATH_MAX + 1);
}

/* CF_OK when environment env_id has a folder at path, else CF_ENOTFOUND naming it. */
static enum cf_rc folder_must_exist(struct db_conn *c, const char *env_id, const char *path,
                                    struct cf_err *err)
{
    struct cf_folder folder;
    return sql_get_required(c, &ST_FOLDER_BY_PATH, ARGS(A_TEXT(env_id), A_TEXT(path)), read_folder,
                            &folder, "folder", path, err);
}

struct position_item {
    char id[CF_UUID_LEN];
    int64_t position;
};

static enum cf_rc read_position_item(const struct db_row *s, void *item)
{
    struct position_item *p = item;
    db_row_text(s, 0, p->id, sizeof(p->id));
    p->position = db_row_int64(s, POSITION_COL);
    return db_row_status(s);
}

/* Rewrites positions 1..n of the rows that list_stmt returns for scope_id (environments of a
 * project, imports of a folder) in their current order, after moving row move_id (when non-NULL) to
 * new_position (clamped to 1..n). Only rows whose position changes are written. */
static enum cf_rc renumber(struct db_conn *c, struct sql_stmt *list_stmt, struct sql_stmt *set_stmt,
                           const char *scope_id, const char *move_id, int64_t new_position,
                           struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct position_item), .read = read_position_item};
    struct position_item *items;
    enum cf_rc rc;

    rc = sql_run(c, list_stmt, ARGS(A_TEXT(scope_id)), sql_collect, &col, NULL, err);
    if (rc != CF_OK)
        goto out;
    items = col.items;
    for (size_t from = 0; move_id && from < col.n; from++) {
        if (strcmp(items[from].id, move_id) != 0)
            continue;
        struct position_item moved = items[from];
        size_t to = new_position < 1 ? 0 : (size_t)new_position - 1;
        if (to >= col.n)
            to = col.n - 1;
        if (to < from)
            memmove(&items[to + 1], &items[to], (from - to) * sizeof(*items));
        else
            memmove(&items[from], &items[from + 1], (to - from) * sizeof(*items));
        items[to] = moved;
        break;
    }
    for (size_t i = 0; i < col.n && rc == CF_OK; i++) {
        if (items[i].position != (int64_t)i + 1)
            rc = sql_exec(c, set_stmt, ARGS(A_TEXT(items[i].id), A_INT(i + 1)), NULL, err);
    }
out:
    free(col.items);
    return rc;
}

/* ---- server-wide values ---- */

/* Closes every connection (the driver's part) after releasing sql.c's part. The caller must have
 * stopped the threads that use the store. */
static void sq_close(struct cf_store *base)
{
    struct sql_store *st = sql_store_of(base);
    if (!st)
        return;
    sql_store_release(st);
    st->drv->close(st);
}

static enum cf_rc sq_job_lock(struct cf_store *base, const char *job, bool *held,
                              struct cf_err *err)
{
    struct sql_store *st = sql_store_of(base);
    if (!st->drv->job_lock) {
        *held = true;
        return CF_OK;
    }
    return st->drv->job_lock(st, job, held, err);
}

static enum cf_rc sq_ping(struct cf_store *base, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = conn_get(sql_store_of(base), &c, err);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_PING, NO_ARGS, NULL, err);
    return rc;
}

struct blob_out {
    uint8_t *data;
    size_t len;
};

static enum cf_rc read_blob_out(const struct db_row *s, void *item)
{
    struct blob_out *b = item;
    return sql_col_blob(s, 0, &b->data, &b->len);
}

static enum cf_rc sq_meta_get(struct cf_store *base, const char *name, uint8_t **value, size_t *len,
                              struct cf_err *err)
{
    struct blob_out blob = {0};
    struct db_conn *c;
    enum cf_rc rc;

    *value = NULL;
    *len = 0;
    rc = conn_get(sql_store_of(base), &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_required(c, &ST_META_GET, ARGS(A_TEXT(name)), read_blob_out, &blob, "meta value",
                          name, err);
    if (rc != CF_OK) {
        free(blob.data);
        return rc;
    }
    *value = blob.data;
    *len = blob.len;
    return CF_OK;
}

static enum cf_rc meta_write(struct cf_store *base, struct sql_stmt *id, const char *name,
                             const uint8_t *value, size_t len, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, id, ARGS(A_TEXT(name), A_BLOB(value, len)), NULL, err);
    if (rc == CF_EEXIST)
        cf_err_set(err, CF_EEXIST, "meta value '%s' already exists", name);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_meta_put(struct cf_store *base, const char *name, const uint8_t *value,
                              size_t len, struct cf_err *err)
{
    return meta_write(base, &ST_META_PUT, name, value, len, err);
}

static enum cf_rc sq_meta_insert(struct cf_store *base, const char *name, const uint8_t *value,
                                 size_t len, struct cf_err *err)
{
    return meta_write(base, &ST_META_INSERT, name, value, len, err);
}

static enum cf_rc exec_in_tx(struct cf_store *base, struct sql_stmt *id, const struct sq_arg *args,
                             size_t n_args, int64_t *changes, struct cf_err *err);

static enum cf_rc sq_meta_swap(struct cf_store *base, const char *name, const uint8_t *expected,
                               size_t expected_len, const uint8_t *value, size_t len,
                               struct cf_err *err)
{
    int64_t changes = 0;
    enum cf_rc rc = exec_in_tx(
        base, &ST_META_SWAP, ARGS(A_TEXT(name), A_BLOB(expected, expected_len), A_BLOB(value, len)),
        &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ECONFLICT, "meta value '%s' changed meanwhile", name);
    return rc;
}

static enum cf_rc sq_rewrap_keys(struct cf_store *base, const struct cf_key_update *updates,
                                 size_t n, const uint8_t *root_check, size_t root_check_len,
                                 struct cf_err *err)
{
    struct db_conn *c;
    int64_t now = cf_now_ms(), changes = 0;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    for (size_t i = 0; i < n && rc == CF_OK; i++) {
        const struct cf_key_update *u = &updates[i];
        if (u->meta_name) {
            rc = sql_exec(c, &ST_META_PUT,
                          ARGS(A_TEXT(u->meta_name), A_BLOB(u->wrapped_key, u->wrapped_key_len)),
                          NULL, err);
            continue;
        }
        rc = sql_exec(
            c, &ST_PROJECT_SET_KEY,
            ARGS(A_TEXT(u->project_id), A_BLOB(u->wrapped_key, u->wrapped_key_len), A_INT(now)),
            &changes, err);
        if (rc == CF_OK && changes == 0)
            rc = cf_err_set(err, CF_ENOTFOUND, "project '%s' not found", u->project_id);
    }
    if (rc == CF_OK && root_check)
        rc = sql_exec(c, &ST_META_PUT,
                      ARGS(A_TEXT(CF_META_ROOT_CHECK), A_BLOB(root_check, root_check_len)), NULL,
                      err);
    return sql_tx_end(c, rc, err);
}

/* ---- projects and environments ---- */

/* Inserts env at position, with its root folder "/". */
static enum cf_rc env_insert(struct db_conn *c, const struct cf_env *env, const char *project_id,
                             int64_t position, int64_t now, struct cf_err *err)
{
    char root_id[CF_UUID_LEN];
    int64_t created = time_or_now(env->created_at, now);
    enum cf_rc rc;

    rc = require_uuid(env->id, "environment", err);
    if (rc != CF_OK)
        return rc;
    if (!env->slug[0])
        return cf_err_set(err, CF_EINVAL, "environment slug is empty");
    rc = sql_exec(c, &ST_ENV_INSERT,
                  ARGS(A_TEXT(env->id), A_TEXT(project_id), A_TEXT(env->slug),
                       A_TEXT(env->name[0] ? env->name : env->slug), A_INT(position),
                       A_INT(created), A_INT(time_or_now(env->updated_at, now))),
                  NULL, err);
    if (rc == CF_EEXIST)
        return cf_err_set(err, CF_EEXIST, "environment '%s' already exists", env->slug);
    if (rc == CF_ENOTFOUND)
        return cf_err_set(err, CF_ENOTFOUND, "project '%s' not found", project_id);
    if (rc != CF_OK)
        return rc;
    cf_uuid_new(root_id);
    return sql_exec(c, &ST_FOLDER_INSERT,
                    ARGS(A_TEXT(root_id), A_TEXT(env->id), A_NULLABLE(""), A_TEXT(""), A_TEXT("/"),
                         A_TEXT(""), A_INT(created), A_INT(created)),
                    NULL, err);
}

static enum cf_rc sq_project_create(struct cf_store *base, const struct cf_project *project,
                                    const struct cf_env *envs, size_t n_envs, struct cf_err *err)
{
    struct db_conn *c;
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    rc = require_uuid(project->id, "project", err);
    if (rc != CF_OK)
        return rc;
    if (!project->slug[0])
        return cf_err_set(err, CF_EINVAL, "project slug is empty");
    if (!project->wrapped_key || !project->wrapped_key_len)
        return cf_err_set(err, CF_EINVAL, "project '%s' has no data key", project->slug);
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_PROJECT_INSERT,
                  ARGS(A_TEXT(project->id), A_TEXT(project->slug),
                       A_TEXT(project->name[0] ? project->name : project->slug),
                       A_TEXT(project->description), A_INT(time_or_now(project->created_at, now)),
                       A_INT(time_or_now(project->updated_at, now)),
                       A_BLOB(project->wrapped_key, project->wrapped_key_len)),
                  NULL, err);
    if (rc == CF_EEXIST)
        cf_err_set(err, CF_EEXIST, "project '%s' already exists", project->slug);
    for (size_t i = 0; i < n_envs && rc == CF_OK; i++)
        rc = env_insert(c, &envs[i], project->id, (int64_t)i + 1, now, err);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_project_get(struct cf_store *base, const char *id_or_slug,
                                 struct cf_project *out, struct cf_err *err)
{
    char id_buf[CF_UUID_LEN];
    const char *id = as_id(id_or_slug, id_buf);
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = sql_get_one(base, id ? &ST_PROJECT_BY_ID : &ST_PROJECT_BY_SLUG,
                     ARGS(A_TEXT(id ? id : id_or_slug)), read_project, out, "project", id_or_slug,
                     err);
    if (rc != CF_OK)
        cf_project_release(out);
    return rc;
}

static enum cf_rc sq_project_list(struct cf_store *base, struct cf_project_list *out,
                                  struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_project), .read = read_project};
    enum cf_rc rc = sql_collect_all(base, &ST_PROJECT_LIST, NO_ARGS, &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_project_list_release(out);
    return rc;
}

static enum cf_rc sq_project_delete(struct cf_store *base, const char *project_id,
                                    struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_PROJECT_DELETE, ARGS(A_TEXT(project_id)), &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "project '%s' not found", project_id);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_env_create(struct cf_store *base, const struct cf_env *env, struct cf_err *err)
{
    struct db_conn *c;
    int64_t next = 1;
    bool found;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_row(c, &ST_ENV_NEXT_POSITION, ARGS(A_TEXT(env->project_id)), sql_read_int64, &next,
                     &found, err);
    if (rc == CF_OK)
        rc = env_insert(c, env, env->project_id, next, cf_now_ms(), err);
    if (rc == CF_OK && env->position > 0 && env->position < next)
        rc = renumber(c, &ST_ENV_LIST, &ST_ENV_SET_POSITION, env->project_id, env->id,
                      env->position, err);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_env_list(struct cf_store *base, const char *project_id,
                              struct cf_env_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_env), .read = read_env};
    enum cf_rc rc = sql_collect_all(base, &ST_ENV_LIST, ARGS(A_TEXT(project_id)), &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_env_list_release(out);
    return rc;
}

static enum cf_rc sq_env_get(struct cf_store *base, const char *project_id, const char *id_or_slug,
                             struct cf_env *out, struct cf_err *err)
{
    char id_buf[CF_UUID_LEN];
    const char *id = as_id(id_or_slug, id_buf);

    memset(out, 0, sizeof(*out));
    return sql_get_one(base, id ? &ST_ENV_BY_ID : &ST_ENV_BY_SLUG,
                       ARGS(A_TEXT(project_id), A_TEXT(id ? id : id_or_slug)), read_env, out,
                       "environment", id_or_slug, err);
}

static enum cf_rc sq_env_update(struct cf_store *base, const struct cf_env *env, struct cf_err *err)
{
    struct cf_env current;
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_required(c, &ST_ENV_BY_ID_ANY_PROJECT, ARGS(A_TEXT(env->id)), read_env, &current,
                          "environment with id", env->id, err);
    if (rc != CF_OK)
        goto out;
    rc = sql_exec(c, &ST_ENV_UPDATE,
                  ARGS(A_TEXT(env->id), A_TEXT(env->slug), A_TEXT(env->name),
                       A_INT(time_or_now(env->updated_at, cf_now_ms()))),
                  NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "environment '%s' already exists", env->slug);
    if (rc == CF_OK && env->position > 0 && env->position != current.position)
        rc = renumber(c, &ST_ENV_LIST, &ST_ENV_SET_POSITION, current.project_id, env->id,
                      env->position, err);
out:
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_env_delete(struct cf_store *base, const char *env_id, struct cf_err *err)
{
    struct sql_collector importers = {.size = CF_UUID_LEN, .read = sql_read_id};
    struct cf_env current;
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_required(c, &ST_ENV_BY_ID_ANY_PROJECT, ARGS(A_TEXT(env_id)), read_env, &current,
                          "environment with id", env_id, err);
    /* Imports of this environment go with it: remember whose, to keep their positions dense. */
    if (rc == CF_OK)
        rc = sql_run(c, &ST_ENV_IMPORTING_FOLDERS, ARGS(A_TEXT(env_id)), sql_collect, &importers,
                     NULL, err);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_ENV_DELETE, ARGS(A_TEXT(env_id)), NULL, err);
    if (rc == CF_OK)
        rc = renumber(c, &ST_ENV_LIST, &ST_ENV_SET_POSITION, current.project_id, NULL, 0, err);
    for (size_t i = 0; i < importers.n && rc == CF_OK; i++)
        rc = renumber(c, &ST_IMPORT_LIST, &ST_IMPORT_SET_POSITION,
                      (const char *)importers.items + i * CF_UUID_LEN, NULL, 0, err);
    free(importers.items);
    return sql_tx_end(c, rc, err);
}

/* ---- folders ---- */

static enum cf_rc sq_folder_create(struct cf_store *base, const struct cf_folder *folder,
                                   struct cf_err *err)
{
    struct cf_folder parent;
    char path[CF_PATH_MAX + 1];
    struct db_conn *c;
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    rc = require_uuid(folder->id, "folder", err);
    if (rc != CF_OK)
        return rc;
    if (!folder->parent_id[0])
        return cf_err_set(err, CF_EINVAL,
                          "folder '%s' has no parent (root folders come with their environment)",
                          folder->path);
    if (!folder->name[0] || strchr(folder->name, '/'))
        return cf_err_set(err, CF_EINVAL, "folder name '%s' is empty or contains '/'",
                          folder->name);
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_required(c, &ST_FOLDER_BY_ID, ARGS(A_TEXT(folder->parent_id)), read_folder,
                          &parent, "parent folder with id", folder->parent_id, err);
    if (rc != CF_OK)
        goto out;
    if (folder->env_id[0] && strcmp(folder->env_id, parent.env_id) != 0) {
        rc =
            cf_err_set(err, CF_EINVAL, "parent folder '%s' is in another environment", parent.path);
        goto out;
    }
    /* The path is derived, not trusted: subtree queries depend on it matching the parent chain. */
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", strcmp(parent.path, "/") ? parent.path : "",
                         folder->name) >= sizeof(path)) {
        rc = cf_err_set(err, CF_EINVAL, "folder path is longer than %d bytes", CF_PATH_MAX);
        goto out;
    }
    if (folder->path[0] && strcmp(folder->path, path) != 0) {
        rc = cf_err_set(err, CF_EINVAL, "folder path '%s' does not match its parent '%s'",
                        folder->path, parent.path);
        goto out;
    }
    rc = sql_exec(c, &ST_FOLDER_INSERT,
                  ARGS(A_TEXT(folder->id), A_TEXT(parent.env_id), A_TEXT(parent.id),
                       A_TEXT(folder->name), A_TEXT(path), A_TEXT(folder->description),
                       A_INT(time_or_now(folder->created_at, now)),
                       A_INT(time_or_now(folder->updated_at, now))),
                  NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "folder '%s' already exists", path);
out:
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_folder_get(struct cf_store *base, const char *env_id, const char *path,
                                struct cf_folder *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_FOLDER_BY_PATH, ARGS(A_TEXT(env_id), A_TEXT(path)), read_folder,
                       out, "folder", path, err);
}

static enum cf_rc sq_folder_list(struct cf_store *base, const char *env_id, const char *path,
                                 bool recursive, struct cf_folder_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_folder), .read = read_folder};
    struct subtree bounds;
    struct db_conn *c;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = subtree_bounds(path, &bounds, err);
    if (rc == CF_OK)
        rc = conn_get(sql_store_of(base), &c, err);
    if (rc != CF_OK)
        return rc;
    if (recursive)
        rc = sql_run(c, &ST_FOLDER_DESCENDANTS,
                     ARGS(A_TEXT(env_id), A_TEXT(bounds.lo), A_TEXT(bounds.hi)), sql_collect, &col,
                     NULL, err);
    else
        rc = sql_run(c, &ST_FOLDER_CHILDREN, ARGS(A_TEXT(env_id), A_TEXT(path)), sql_collect, &col,
                     NULL, err);
    if (rc == CF_OK && col.n == 0) /* nothing below: is there a folder at all? */
        rc = folder_must_exist(c, env_id, path, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_folder_list_release(out);
    return rc;
}

static enum cf_rc sq_folder_delete(struct cf_store *base, const char *folder_id, struct cf_err *err)
{
    struct cf_folder folder;
    struct subtree bounds;
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_required(c, &ST_FOLDER_BY_ID, ARGS(A_TEXT(folder_id)), read_folder, &folder,
                          "folder with id", folder_id, err);
    if (rc == CF_OK && !folder.parent_id[0])
        rc = cf_err_set(err, CF_EINVAL, "the root folder of an environment cannot be deleted");
    if (rc == CF_OK)
        rc = subtree_bounds(folder.path, &bounds, err);
    /* The whole subtree in one statement; secrets, versions and imports follow by cascade. */
    if (rc == CF_OK)
        rc = sql_exec(
            c, &ST_FOLDER_DELETE_SUBTREE,
            ARGS(A_TEXT(folder.env_id), A_TEXT(folder.path), A_TEXT(bounds.lo), A_TEXT(bounds.hi)),
            NULL, err);
    return sql_tx_end(c, rc, err);
}

/* ---- secrets ---- */

struct secret_state {
    char id[CF_UUID_LEN];
    char folder_id[CF_UUID_LEN];
    char key[CF_KEY_MAX + 1];
    int64_t version;
};

static enum cf_rc read_secret_state(const struct db_row *s, void *item)
{
    struct secret_state *st = item;
    db_row_text(s, 0, st->id, sizeof(st->id));
    db_row_text(s, 1, st->folder_id, sizeof(st->folder_id));
    db_row_text(s, 2, st->key, sizeof(st->key));
    st->version = db_row_int64(s, 3);
    return db_row_status(s);
}

static enum cf_rc duplicate_key(struct db_conn *c, const char *folder_id, const char *key,
                                struct cf_err *err)
{
    char path[CF_PATH_MAX + 1];
    folder_path_of(c, folder_id, path);
    return cf_err_set(err, CF_EEXIST, "secret '%s' already exists in folder '%s'", key, path);
}

static enum cf_rc insert_version(struct db_conn *c, const struct cf_secret *row, int64_t version,
                                 int64_t written_at, struct cf_err *err)
{
    return sql_exec(c, &ST_VERSION_INSERT,
                    ARGS(A_TEXT(row->id), A_INT(version), A_TEXT(row->key),
                         A_BLOB(row->sealed, row->sealed_len), A_TEXT(str_or_empty(row->comment)),
                         A_TEXT(row->tags ? row->tags : "[]"), A_INT(row->expires_at),
                         A_INT(row->skip_multiline ? 1 : 0), A_INT(written_at),
                         A_INT(row->reminder_repeat_days),
                         A_TEXT(str_or_empty(row->reminder_note))),
                    NULL, err);
}

/* The current state of the secret an UPDATE or DELETE names, checked against expected_version. */
static enum cf_rc load_expected(struct db_conn *c, const struct cf_secret_write *w,
                                struct secret_state *cur, struct cf_err *err)
{
    bool found;
    enum cf_rc rc = sql_get_row(c, &ST_SECRET_STATE, ARGS(A_TEXT(w->row.id)), read_secret_state,
                                cur, &found, err);
    if (rc != CF_OK)
        return rc;
    if (!found)
        return cf_err_set(err, CF_ENOTFOUND, "secret with id '%s' not found", w->row.id);
    if (cur->version != w->expected_version)
        return cf_err_set(err, CF_ECONFLICT,
                          "secret '%s' was changed concurrently: it is at version %lld, not %lld",
                          cur->key, (long long)cur->version, (long long)w->expected_version);
    return CF_OK;
}

static enum cf_rc write_one(struct db_conn *c, const struct cf_secret_write *w, int64_t now,
                            struct cf_err *err)
{
    const struct cf_secret *row = &w->row;
    int64_t written_at = time_or_now(row->updated_at, now);
    struct secret_state cur;
    enum cf_rc rc;

    if (w->op != CF_SECRET_OP_DELETE) {
        if (!row->key[0])
            return cf_err_set(err, CF_EINVAL, "secret key is empty");
        if (!row->sealed)
            return cf_err_set(err, CF_EINVAL, "secret '%s' has no value", row->key);
    }
    switch (w->op) {
    case CF_SECRET_OP_CREATE:
        rc = require_uuid(row->id, "secret", err);
        if (rc != CF_OK)
            return rc;
        rc = sql_exec(c, &ST_SECRET_INSERT,
                      ARGS(A_TEXT(row->id), A_TEXT(row->folder_id), A_TEXT(row->key),
                           A_INT(time_or_now(row->created_at, now)), A_INT(written_at)),
                      NULL, err);
        if (rc == CF_EEXIST)
            return duplicate_key(c, row->folder_id, row->key, err);
        if (rc == CF_ENOTFOUND)
            return cf_err_set(err, CF_ENOTFOUND, "folder with id '%s' not found", row->folder_id);
        if (rc != CF_OK)
            return rc;
        return insert_version(c, row, 1, written_at, err);
    case CF_SECRET_OP_UPDATE:
        rc = load_expected(c, w, &cur, err);
        if (rc != CF_OK)
            return rc;
        rc = sql_exec(
            c, &ST_SECRET_BUMP,
            ARGS(A_TEXT(row->id), A_TEXT(row->key), A_INT(cur.version + 1), A_INT(written_at)),
            NULL, err);
        if (rc == CF_EEXIST)
            return duplicate_key(c, cur.folder_id, row->key, err);
        if (rc != CF_OK)
            return rc;
        return insert_version(c, row, cur.version + 1, written_at, err);
    case CF_SECRET_OP_DELETE:
        rc = load_expected(c, w, &cur, err);
        if (rc != CF_OK)
            return rc;
        return sql_exec(c, &ST_SECRET_DELETE, ARGS(A_TEXT(row->id)), NULL, err);
    }
    return cf_err_set(err, CF_EINVAL, "unknown secret operation %d", (int)w->op);
}

static enum cf_rc sq_secret_write(struct cf_store *base, const struct cf_secret_write *writes,
                                  size_t n, struct cf_err *err)
{
    struct db_conn *c;
    int64_t now = cf_now_ms();
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    for (size_t i = 0; i < n && rc == CF_OK; i++)
        rc = write_one(c, &writes[i], now, err);
    return sql_tx_end(c, rc, err);
}

/* Runs a secret query into out (released on failure). */
static enum cf_rc secret_query(struct db_conn *c, struct sql_stmt *id, const struct sq_arg *args,
                               size_t n_args, struct cf_secret_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_secret), .read = read_secret};
    enum cf_rc rc = sql_run(c, id, args, n_args, sql_collect, &col, NULL, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_secret_list_release(out);
    return rc;
}

static enum cf_rc sq_secret_list(struct cf_store *base, const char *env_id, const char *path,
                                 bool recursive, struct cf_secret_list *out, struct cf_err *err)
{
    struct subtree bounds;
    struct db_conn *c;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = subtree_bounds(path, &bounds, err);
    if (rc == CF_OK)
        rc = conn_get(sql_store_of(base), &c, err);
    if (rc != CF_OK)
        return rc;
    if (recursive)
        rc = secret_query(c, &ST_SECRET_LIST_SUBTREE,
                          ARGS(A_TEXT(env_id), A_TEXT(path), A_TEXT(bounds.lo), A_TEXT(bounds.hi)),
                          out, err);
    else
        rc = secret_query(c, &ST_SECRET_LIST, ARGS(A_TEXT(env_id), A_TEXT(path)), out, err);
    if (rc == CF_OK && out->n == 0)
        rc = folder_must_exist(c, env_id, path, err);
    return rc;
}

static enum cf_rc sq_secret_expiring(struct cf_store *base, const char *project_id, int64_t until,
                                     struct cf_secret_list *out, struct cf_err *err)
{
    struct db_conn *c;
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = conn_get(sql_store_of(base), &c, err);
    if (rc != CF_OK)
        return rc;
    return secret_query(c, &ST_SECRET_EXPIRING,
                        ARGS(A_TEXT(project_id ? project_id : ""), A_INT(until)), out, err);
}

static enum cf_rc sq_secret_inventory(struct cf_store *base, const char *project_id,
                                      struct cf_secret_meta_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_secret_meta), .read = read_secret_meta};
    enum cf_rc rc =
        sql_collect_all(base, &ST_SECRET_INVENTORY, ARGS(A_TEXT(project_id)), &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_secret_meta_list_release(out);
    return rc;
}

/* Moves the single row of a one-secret query into out. */
static enum cf_rc secret_one(struct db_conn *c, struct sql_stmt *id, const struct sq_arg *args,
                             size_t n_args, struct cf_secret *out, struct cf_err *err)
{
    bool found;
    enum cf_rc rc = sql_get_row(c, id, args, n_args, read_secret, out, &found, err);
    if (rc == CF_OK && !found)
        rc = CF_ENOTFOUND; /* the caller names what */
    if (rc != CF_OK)
        cf_secret_release(out);
    return rc;
}

static enum cf_rc sq_secret_get(struct cf_store *base, const char *folder_id, const char *key,
                                int64_t version, struct cf_secret *out, struct cf_err *err)
{
    char path[CF_PATH_MAX + 1];
    struct db_conn *c;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = conn_get(sql_store_of(base), &c, err);
    if (rc != CF_OK)
        return rc;
    rc = secret_one(c, &ST_SECRET_BY_KEY, ARGS(A_TEXT(folder_id), A_TEXT(key), A_INT(version)), out,
                    err);
    if (rc == CF_ENOTFOUND) {
        folder_path_of(c, folder_id, path);
        if (version > 0)
            rc = cf_err_set(err, CF_ENOTFOUND,
                            "version %lld of secret '%s' not found in folder '%s'",
                            (long long)version, key, path);
        else
            rc = cf_err_set(err, CF_ENOTFOUND, "secret '%s' not found in folder '%s'", key, path);
    }
    return rc;
}

static enum cf_rc sq_secret_get_by_id(struct cf_store *base, const char *secret_id, int64_t version,
                                      struct cf_secret *out, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = conn_get(sql_store_of(base), &c, err);
    if (rc != CF_OK)
        return rc;
    rc = secret_one(c, &ST_SECRET_BY_ID, ARGS(A_TEXT(secret_id), A_INT(version)), out, err);
    if (rc == CF_ENOTFOUND && version > 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "version %lld of secret with id '%s' not found",
                        (long long)version, secret_id);
    else if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "secret with id '%s' not found", secret_id);
    return rc;
}

static enum cf_rc sq_secret_history(struct cf_store *base, const char *secret_id,
                                    struct cf_secret_list *out, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = conn_get(sql_store_of(base), &c, err);
    if (rc != CF_OK)
        return rc;
    rc = secret_query(c, &ST_SECRET_HISTORY, ARGS(A_TEXT(secret_id)), out, err);
    if (rc == CF_OK && out->n == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "secret with id '%s' not found", secret_id);
    return rc;
}

/* ---- imports ---- */

static enum cf_rc sq_import_create(struct cf_store *base, const struct cf_import *import,
                                   struct cf_err *err)
{
    struct cf_folder folder;
    struct cf_env folder_env, import_env;
    struct db_conn *c;
    int64_t now = cf_now_ms();
    bool found;
    enum cf_rc rc;

    rc = require_uuid(import->id, "import", err);
    if (rc != CF_OK)
        return rc;
    if (import->import_path[0] != '/')
        return cf_err_set(err, CF_EINVAL, "import path '%s' does not start with '/'",
                          import->import_path);
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_required(c, &ST_FOLDER_BY_ID, ARGS(A_TEXT(import->folder_id)), read_folder,
                          &folder, "folder with id", import->folder_id, err);
    if (rc == CF_OK)
        rc = sql_get_required(c, &ST_ENV_BY_ID_ANY_PROJECT, ARGS(A_TEXT(import->import_env_id)),
                              read_env, &import_env, "environment with id", import->import_env_id,
                              err);
    if (rc == CF_OK)
        rc = sql_get_row(c, &ST_ENV_BY_ID_ANY_PROJECT, ARGS(A_TEXT(folder.env_id)), read_env,
                         &folder_env, &found, err);
    if (rc == CF_OK && !found) /* cannot happen: folders.env_id is a foreign key */
        rc = cf_err_set(err, CF_ESTORE, "folder '%s' has no environment", folder.path);
    if (rc == CF_OK && strcmp(folder_env.project_id, import_env.project_id) != 0)
        rc = cf_err_set(err, CF_EINVAL, "environment '%s' belongs to another project",
                        import_env.slug);
    if (rc != CF_OK)
        goto out;
    rc = sql_exec(c, &ST_IMPORT_INSERT,
                  ARGS(A_TEXT(import->id), A_TEXT(import->folder_id), A_TEXT(import->import_env_id),
                       A_TEXT(import->import_path), A_INT(time_or_now(import->created_at, now)),
                       A_INT(time_or_now(import->updated_at, now))),
                  NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "folder '%s' already imports '%s' from environment '%s'",
                        folder.path, import->import_path, import_env.slug);
out:
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_import_list(struct cf_store *base, const char *folder_id,
                                 struct cf_import_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_import), .read = read_import};
    struct cf_folder folder;
    struct db_conn *c;
    bool found = true;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = conn_get(sql_store_of(base), &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_run(c, &ST_IMPORT_LIST, ARGS(A_TEXT(folder_id)), sql_collect, &col, NULL, err);
    if (rc == CF_OK && col.n == 0)
        rc = sql_get_row(c, &ST_FOLDER_BY_ID, ARGS(A_TEXT(folder_id)), read_folder, &folder, &found,
                         err);
    if (rc == CF_OK && !found)
        rc = cf_err_set(err, CF_ENOTFOUND, "folder with id '%s' not found", folder_id);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_import_list_release(out);
    return rc;
}

static enum cf_rc sq_import_get(struct cf_store *base, const char *import_id, struct cf_import *out,
                                struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_IMPORT_BY_ID, ARGS(A_TEXT(import_id)), read_import, out,
                       "import with id", import_id, err);
}

static enum cf_rc sq_import_delete(struct cf_store *base, const char *import_id, struct cf_err *err)
{
    struct cf_import import;
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_get_required(c, &ST_IMPORT_BY_ID, ARGS(A_TEXT(import_id)), read_import, &import,
                          "import with id", import_id, err);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_IMPORT_DELETE, ARGS(A_TEXT(import_id)), NULL, err);
    if (rc == CF_OK)
        rc = renumber(c, &ST_IMPORT_LIST, &ST_IMPORT_SET_POSITION, import.folder_id, NULL, 0, err);
    return sql_tx_end(c, rc, err);
}

/* ---- tags ---- */

static enum cf_rc sq_tag_create(struct cf_store *base, const struct cf_tag *tag, struct cf_err *err)
{
    struct db_conn *c;
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    rc = require_uuid(tag->id, "tag", err);
    if (rc != CF_OK)
        return rc;
    if (!tag->slug[0])
        return cf_err_set(err, CF_EINVAL, "tag slug is empty");
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_TAG_INSERT,
                  ARGS(A_TEXT(tag->id), A_TEXT(tag->project_id), A_TEXT(tag->slug),
                       A_TEXT(tag->name[0] ? tag->name : tag->slug), A_TEXT(tag->color),
                       A_INT(time_or_now(tag->created_at, now)),
                       A_INT(time_or_now(tag->updated_at, now))),
                  NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "tag '%s' already exists", tag->slug);
    else if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "project '%s' not found", tag->project_id);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_tag_get(struct cf_store *base, const char *project_id, const char *id_or_slug,
                             struct cf_tag *out, struct cf_err *err)
{
    char id_buf[CF_UUID_LEN];
    const char *id = as_id(id_or_slug, id_buf);

    memset(out, 0, sizeof(*out));
    return sql_get_one(base, id ? &ST_TAG_BY_ID : &ST_TAG_BY_SLUG,
                       ARGS(A_TEXT(project_id), A_TEXT(id ? id : id_or_slug)), read_tag, out, "tag",
                       id_or_slug, err);
}

static enum cf_rc sq_tag_list(struct cf_store *base, const char *project_id,
                              struct cf_tag_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_tag), .read = read_tag};
    enum cf_rc rc = sql_collect_all(base, &ST_TAG_LIST, ARGS(A_TEXT(project_id)), &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_tag_list_release(out);
    return rc;
}

/* ---- machine identities ---- */

/* CF_OK when field (an array of size bytes) holds a terminated string, safe to bind as text. */
static enum cf_rc require_terminated(const char *field, size_t size, const char *what,
                                     struct cf_err *err)
{
    if (memchr(field, '\0', size))
        return CF_OK;
    return cf_err_set(err, CF_EINVAL, "%s is longer than %zu bytes", what, size - 1);
}

static enum cf_rc sq_identity_create(struct cf_store *base, const struct cf_identity *identity,
                                     struct cf_err *err)
{
    struct db_conn *c;
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    rc = require_uuid(identity->id, "identity", err);
    if (rc == CF_OK)
        rc = require_terminated(identity->name, sizeof(identity->name), "identity name", err);
    if (rc != CF_OK)
        return rc;
    if (!identity->name[0])
        return cf_err_set(err, CF_EINVAL, "identity name is empty");
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_IDENTITY_INSERT,
                  ARGS(A_TEXT(identity->id), A_TEXT(identity->name),
                       A_INT(time_or_now(identity->created_at, now)),
                       A_INT(time_or_now(identity->updated_at, now))),
                  NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "identity '%s' already exists", identity->name);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_identity_get(struct cf_store *base, const char *identity_id,
                                  struct cf_identity *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_IDENTITY_BY_ID, ARGS(A_TEXT(identity_id)), read_identity, out,
                       "identity with id", identity_id, err);
}

static enum cf_rc sq_identity_list(struct cf_store *base, struct cf_identity_list *out,
                                   struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_identity), .read = read_identity};
    enum cf_rc rc = sql_collect_all(base, &ST_IDENTITY_LIST, NO_ARGS, &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_identity_list_release(out);
    return rc;
}

static enum cf_rc sq_identity_update(struct cf_store *base, const struct cf_identity *identity,
                                     struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc;

    rc = require_terminated(identity->name, sizeof(identity->name), "identity name", err);
    if (rc != CF_OK)
        return rc;
    if (!identity->name[0])
        return cf_err_set(err, CF_EINVAL, "identity name is empty");
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_IDENTITY_RENAME,
                  ARGS(A_TEXT(identity->id), A_TEXT(identity->name),
                       A_INT(time_or_now(identity->updated_at, cf_now_ms()))),
                  &changes, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "identity '%s' already exists", identity->name);
    else if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "identity with id '%s' not found", identity->id);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_identity_delete(struct cf_store *base, const char *identity_id,
                                     struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    /* Its universal auth, client secrets, tokens and memberships follow by cascade. */
    rc = sql_exec(c, &ST_IDENTITY_DELETE, ARGS(A_TEXT(identity_id)), &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "identity with id '%s' not found", identity_id);
    return sql_tx_end(c, rc, err);
}

/* ---- universal auth ---- */

/* The token policy of an auth method (named by method in the message) before it is written. */
static enum cf_rc token_policy_check(const struct cf_token_policy *p, const char *method,
                                     struct cf_err *err)
{
    enum cf_rc rc = require_terminated(p->trusted_ips, sizeof(p->trusted_ips),
                                       "access token trusted IP list", err);
    if (rc == CF_OK && (p->ttl < 0 || p->max_ttl < 0 || p->num_uses_limit < 0))
        rc = cf_err_set(err, CF_EINVAL, "%s durations and limits must not be negative", method);
    return rc;
}

static enum cf_rc ua_check(const struct cf_ua_config *config, struct cf_err *err)
{
    enum cf_rc rc = token_policy_check(&config->token, "universal auth", err);
    if (rc == CF_OK)
        rc = require_terminated(config->client_secret_trusted_ips,
                                sizeof(config->client_secret_trusted_ips),
                                "client secret trusted IP list", err);
    return rc;
}

static enum cf_rc sq_ua_attach(struct cf_store *base, const struct cf_ua_config *config,
                               struct cf_err *err)
{
    struct cf_ua_config *existing = NULL;
    struct db_conn *c;
    int64_t now = cf_now_ms();
    bool found = false;
    enum cf_rc rc;

    rc = require_uuid(config->identity_id, "identity", err);
    if (rc == CF_OK)
        rc = require_uuid(config->client_id, "client", err);
    if (rc == CF_OK)
        rc = ua_check(config, err);
    if (rc != CF_OK)
        return rc;
    /* Over 4 KiB: off the stack. */
    existing = malloc(sizeof(*existing));
    if (!existing)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        goto out;
    rc = sql_get_row(c, &ST_UA_BY_IDENTITY, ARGS(A_TEXT(config->identity_id)), read_ua, existing,
                     &found, err);
    if (rc == CF_OK && found)
        rc = cf_err_set(err, CF_EEXIST, "universal auth is already attached to identity '%s'",
                        config->identity_id);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_UA_INSERT,
                      ARGS(A_TEXT(config->identity_id), A_TEXT(config->client_id),
                           A_TOKEN_POLICY(config->token), A_TEXT(config->client_secret_trusted_ips),
                           A_INT(time_or_now(config->created_at, now)),
                           A_INT(time_or_now(config->updated_at, now))),
                      NULL, err);
    if (rc == CF_EEXIST && !found) /* the identity has none: the client id is taken */
        rc = cf_err_set(err, CF_EEXIST, "client id '%s' already exists", config->client_id);
    else if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "identity with id '%s' not found", config->identity_id);
    rc = sql_tx_end(c, rc, err);
out:
    free(existing);
    return rc;
}

static enum cf_rc sq_ua_update(struct cf_store *base, const struct cf_ua_config *config,
                               struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc = ua_check(config, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_UA_UPDATE,
                  ARGS(A_TEXT(config->identity_id), A_TOKEN_POLICY(config->token),
                       A_TEXT(config->client_secret_trusted_ips),
                       A_INT(time_or_now(config->updated_at, cf_now_ms()))),
                  &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "universal auth is not attached to identity '%s'",
                        config->identity_id);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_ua_get(struct cf_store *base, const char *identity_id,
                            struct cf_ua_config *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_UA_BY_IDENTITY, ARGS(A_TEXT(identity_id)), read_ua, out,
                       "universal auth of identity", identity_id, err);
}

static enum cf_rc sq_ua_get_by_client_id(struct cf_store *base, const char *client_id,
                                         struct cf_ua_config *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_UA_BY_CLIENT_ID, ARGS(A_TEXT(client_id)), read_ua, out,
                       "universal auth with client id", client_id, err);
}

/* ---- JWT auth ---- */

/* CF_OK when text (NULL reads as "") has at most max characters. */
static enum cf_rc require_within(const char *text, size_t max, const char *what, struct cf_err *err)
{
    if (!text || strlen(text) <= max)
        return CF_OK;
    return cf_err_set(err, CF_EINVAL, "%s is longer than %zu bytes", what, max);
}

static const char *or_empty(const char *text)
{
    return text ? text : "";
}

static enum cf_rc jwt_check(const struct cf_jwt_auth_config *j, struct cf_err *err)
{
    const struct {
        const char *text;
        size_t max;
        const char *what;
    } texts[] = {
        {j->public_keys, CF_JWT_KEYS_TEXT_MAX, "JWT public keys"},
        {j->jwks_url, CF_JWT_TEXT_MAX, "JWKS URL"},
        {j->jwks_ca_cert, CF_JWT_TEXT_MAX, "JWKS CA certificate"},
        {j->bound_issuer, CF_JWT_TEXT_MAX, "JWT bound issuer"},
        {j->bound_audiences, CF_JWT_TEXT_MAX, "JWT bound audiences"},
        {j->bound_claims, CF_JWT_TEXT_MAX, "JWT bound claims"},
        {j->bound_subject, CF_JWT_TEXT_MAX, "JWT bound subject"},
    };
    enum cf_rc rc = require_uuid(j->identity_id, "identity", err);
    if (rc == CF_OK)
        rc = require_terminated(j->configuration_type, sizeof(j->configuration_type),
                                "JWT configuration type", err);
    for (size_t i = 0; rc == CF_OK && i < CF_ARRAY_SIZE(texts); i++)
        rc = require_within(texts[i].text, texts[i].max, texts[i].what, err);
    if (rc == CF_OK)
        rc = token_policy_check(&j->token, "JWT auth", err);
    return rc;
}

/* &ST_JWT_INSERT (attach) or &ST_JWT_UPDATE, whose parameters are the same but for created_at. */
static enum cf_rc jwt_write(struct db_conn *c, const struct cf_jwt_auth_config *j, bool attach,
                            int64_t *changes, struct cf_err *err)
{
    int64_t now = cf_now_ms();
    if (attach)
        return sql_exec(c, &ST_JWT_INSERT,
                        ARGS(A_TEXT(j->identity_id), A_TEXT(j->configuration_type),
                             A_TEXT(or_empty(j->public_keys)), A_TEXT(or_empty(j->jwks_url)),
                             A_TEXT(or_empty(j->jwks_ca_cert)), A_TEXT(or_empty(j->bound_issuer)),
                             A_TEXT(or_empty(j->bound_audiences)),
                             A_TEXT(or_empty(j->bound_claims)), A_TEXT(or_empty(j->bound_subject)),
                             A_TOKEN_POLICY(j->token), A_INT(time_or_now(j->created_at, now)),
                             A_INT(time_or_now(j->updated_at, now)), A_INT(j->clock_skew_leeway)),
                        changes, err);
    return sql_exec(c, &ST_JWT_UPDATE,
                    ARGS(A_TEXT(j->identity_id), A_TEXT(j->configuration_type),
                         A_TEXT(or_empty(j->public_keys)), A_TEXT(or_empty(j->jwks_url)),
                         A_TEXT(or_empty(j->jwks_ca_cert)), A_TEXT(or_empty(j->bound_issuer)),
                         A_TEXT(or_empty(j->bound_audiences)), A_TEXT(or_empty(j->bound_claims)),
                         A_TEXT(or_empty(j->bound_subject)), A_TOKEN_POLICY(j->token),
                         A_INT(time_or_now(j->updated_at, now)), A_INT(j->clock_skew_leeway)),
                    changes, err);
}

static enum cf_rc sq_jwt_auth_attach(struct cf_store *base, const struct cf_jwt_auth_config *config,
                                     struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = jwt_check(config, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = jwt_write(c, config, true, NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "JWT auth is already attached to identity '%s'",
                        config->identity_id);
    else if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "identity with id '%s' not found", config->identity_id);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_jwt_auth_update(struct cf_store *base, const struct cf_jwt_auth_config *config,
                                     struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc = jwt_check(config, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = jwt_write(c, config, false, &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "JWT auth is not attached to identity '%s'",
                        config->identity_id);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_jwt_auth_get(struct cf_store *base, const char *identity_id,
                                  struct cf_jwt_auth_config *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = sql_get_one(base, &ST_JWT_BY_IDENTITY, ARGS(A_TEXT(identity_id)), read_jwt, out,
                                "JWT auth of identity", identity_id, err);
    if (rc != CF_OK)
        cf_jwt_auth_config_release(out);
    return rc;
}

/* ---- Kubernetes auth ---- */

static enum cf_rc k8s_check(const struct cf_k8s_auth_config *k, struct cf_err *err)
{
    const struct {
        const char *text;
        size_t size;
        const char *what;
    } texts[] = {
        {k->kubernetes_host, sizeof(k->kubernetes_host), "Kubernetes host"},
        {k->ca_cert, sizeof(k->ca_cert), "Kubernetes CA certificate"},
        {k->token_reviewer_jwt, sizeof(k->token_reviewer_jwt), "token reviewer JWT"},
        {k->allowed_namespaces, sizeof(k->allowed_namespaces), "allowed namespaces"},
        {k->allowed_names, sizeof(k->allowed_names), "allowed names"},
        {k->allowed_audience, sizeof(k->allowed_audience), "allowed audience"},
    };
    enum cf_rc rc = require_uuid(k->identity_id, "identity", err);
    for (size_t i = 0; rc == CF_OK && i < CF_ARRAY_SIZE(texts); i++)
        rc = require_terminated(texts[i].text, texts[i].size, texts[i].what, err);
    if (rc == CF_OK)
        rc = token_policy_check(&k->token, "Kubernetes auth", err);
    return rc;
}

/* &ST_K8S_INSERT (attach) or &ST_K8S_UPDATE, whose parameters are the same but for created_at. */
static enum cf_rc k8s_write(struct db_conn *c, const struct cf_k8s_auth_config *k, bool attach,
                            int64_t *changes, struct cf_err *err)
{
    int64_t now = cf_now_ms();
    if (attach)
        return sql_exec(c, &ST_K8S_INSERT,
                        ARGS(A_TEXT(k->identity_id), A_TEXT(k->kubernetes_host), A_TEXT(k->ca_cert),
                             A_TEXT(k->token_reviewer_jwt), A_TEXT(k->allowed_namespaces),
                             A_TEXT(k->allowed_names), A_TEXT(k->allowed_audience),
                             A_TOKEN_POLICY(k->token), A_INT(time_or_now(k->created_at, now)),
                             A_INT(time_or_now(k->updated_at, now))),
                        changes, err);
    return sql_exec(c, &ST_K8S_UPDATE,
                    ARGS(A_TEXT(k->identity_id), A_TEXT(k->kubernetes_host), A_TEXT(k->ca_cert),
                         A_TEXT(k->token_reviewer_jwt), A_TEXT(k->allowed_namespaces),
                         A_TEXT(k->allowed_names), A_TEXT(k->allowed_audience),
                         A_TOKEN_POLICY(k->token), A_INT(time_or_now(k->updated_at, now))),
                    changes, err);
}

static enum cf_rc sq_k8s_auth_attach(struct cf_store *base, const struct cf_k8s_auth_config *config,
                                     struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = k8s_check(config, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = k8s_write(c, config, true, NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "Kubernetes auth is already attached to identity '%s'",
                        config->identity_id);
    else if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "identity with id '%s' not found", config->identity_id);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_k8s_auth_update(struct cf_store *base, const struct cf_k8s_auth_config *config,
                                     struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc = k8s_check(config, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = k8s_write(c, config, false, &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "Kubernetes auth is not attached to identity '%s'",
                        config->identity_id);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_k8s_auth_get(struct cf_store *base, const char *identity_id,
                                  struct cf_k8s_auth_config *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_K8S_BY_IDENTITY, ARGS(A_TEXT(identity_id)), read_k8s, out,
                       "Kubernetes auth of identity", identity_id, err);
}

/* ---- client secrets ---- */

static enum cf_rc sq_client_secret_create(struct cf_store *base,
                                          const struct cf_client_secret *secret, struct cf_err *err)
{
    struct db_conn *c;
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    rc = require_uuid(secret->id, "client secret", err);
    if (rc == CF_OK)
        rc = require_terminated(secret->description, sizeof(secret->description),
                                "client secret description", err);
    if (rc == CF_OK)
        rc =
            require_terminated(secret->prefix, sizeof(secret->prefix), "client secret prefix", err);
    if (rc == CF_OK && (secret->num_uses < 0 || secret->num_uses_limit < 0))
        rc = cf_err_set(err, CF_EINVAL, "client secret use counts must not be negative");
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_CSECRET_INSERT,
                  ARGS(A_TEXT(secret->id), A_TEXT(secret->identity_id), A_TEXT(secret->description),
                       A_TEXT(secret->prefix), A_BLOB(secret->hash, sizeof(secret->hash)),
                       A_INT(secret->expires_at), A_INT(secret->num_uses),
                       A_INT(secret->num_uses_limit), A_INT(secret->revoked ? 1 : 0),
                       A_INT(time_or_now(secret->created_at, now)),
                       A_INT(time_or_now(secret->updated_at, now))),
                  NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "client secret with id '%s' already exists", secret->id);
    else if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "identity with id '%s' not found", secret->identity_id);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_client_secret_list(struct cf_store *base, const char *identity_id,
                                        struct cf_client_secret_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_client_secret),
                                .read = read_client_secret};
    enum cf_rc rc = sql_collect_all(base, &ST_CSECRET_LIST, ARGS(A_TEXT(identity_id)), &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_client_secret_list_release(out);
    return rc;
}

static enum cf_rc sq_client_secret_expiring(struct cf_store *base, int64_t until,
                                            struct cf_client_secret_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_client_secret),
                                .read = read_client_secret};
    enum cf_rc rc = sql_collect_all(base, &ST_CSECRET_EXPIRING, ARGS(A_INT(until)), &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_client_secret_list_release(out);
    return rc;
}

static enum cf_rc sq_client_secret_get(struct cf_store *base, const char *identity_id,
                                       const char *secret_id, struct cf_client_secret *out,
                                       struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_CSECRET_BY_ID, ARGS(A_TEXT(identity_id), A_TEXT(secret_id)),
                       read_client_secret, out, "client secret with id", secret_id, err);
}

static enum cf_rc sq_client_secret_revoke(struct cf_store *base, const char *identity_id,
                                          const char *secret_id, struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_CSECRET_REVOKE,
                  ARGS(A_TEXT(identity_id), A_TEXT(secret_id), A_INT(cf_now_ms())), &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "client secret with id '%s' not found", secret_id);
    return sql_tx_end(c, rc, err);
}

struct use_state {
    bool revoked;
    int64_t num_uses, num_uses_limit;
};

static enum cf_rc read_use_state(const struct db_row *s, void *item)
{
    struct use_state *u = item;
    u->revoked = (int)db_row_int64(s, 0) != 0;
    u->num_uses = db_row_int64(s, 1);
    u->num_uses_limit = db_row_int64(s, 2);
    return CF_OK;
}

/* Counts one use of credential id (what names its kind in messages) with use_stmt, in one write
 * transaction. When nothing changed, state_stmt tells why, in the same transaction: gone
 * (CF_ENOTFOUND), or revoked or out of uses (CF_ECONFLICT). */
/* Counts one use inside the caller's transaction (see count_use). */
static enum cf_rc count_use_in(struct db_conn *c, struct sql_stmt *use_stmt,
                               struct sql_stmt *state_stmt, const char *what, const char *id,
                               struct cf_err *err)
{
    struct use_state state;
    int64_t changes = 0;
    enum cf_rc rc = sql_exec(c, use_stmt, ARGS(A_TEXT(id)), &changes, err);
    if (rc != CF_OK || changes > 0)
        return rc;
    rc = sql_get_required(c, state_stmt, ARGS(A_TEXT(id)), read_use_state, &state, what, id, err);
    if (rc == CF_OK && state.revoked)
        rc = cf_err_set(err, CF_ECONFLICT, "%s '%s' is revoked", what, id);
    else if (rc == CF_OK)
        rc = cf_err_set(err, CF_ECONFLICT, "%s '%s' has reached its use limit of %lld", what, id,
                        (long long)state.num_uses_limit);
    return rc;
}

static enum cf_rc count_use(struct cf_store *base, struct sql_stmt *use_stmt,
                            struct sql_stmt *state_stmt, const char *what, const char *id,
                            struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = count_use_in(c, use_stmt, state_stmt, what, id, err);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_client_secret_use(struct cf_store *base, const char *secret_id,
                                       struct cf_err *err)
{
    return count_use(base, &ST_CSECRET_USE, &ST_CSECRET_USE_STATE, "client secret with id",
                     secret_id, err);
}

/* ---- access tokens ---- */

/* Writes one token (and counts its client secret's use) inside the batch's transaction, under a
 * savepoint so that its failure undoes only its own part. */
static enum cf_rc insert_token(struct db_conn *c, const struct cf_access_token *token,
                               struct cf_err *err)
{
    enum cf_rc rc = sql_exec(c, &ST_SAVEPOINT, NO_ARGS, NULL, err);
    if (rc != CF_OK)
        return rc;
    if (token->client_secret_id[0])
        rc = count_use_in(c, &ST_CSECRET_USE, &ST_CSECRET_USE_STATE, "client secret with id",
                          token->client_secret_id, err);
    if (rc == CF_OK) {
        rc = sql_exec(
            c, &ST_TOKEN_INSERT,
            ARGS(A_TEXT(token->id), A_TEXT(token->identity_id), A_TEXT(token->client_secret_id),
                 A_TEXT(token->auth_method), A_BLOB(token->hash, sizeof(token->hash)),
                 A_INT(token->ttl), A_INT(token->max_ttl), A_INT(token->num_uses),
                 A_INT(token->num_uses_limit), A_INT(token->revoked ? 1 : 0),
                 A_TEXT(token->trusted_ips), A_INT(time_or_now(token->created_at, cf_now_ms())),
                 A_INT(token->last_renewed_at)),
            NULL, err);
        /* The row's only reference left to check is its identity: the client secret's use was
         * counted above, so a missing client secret keeps that message. */
        if (rc == CF_EEXIST)
            rc = cf_err_set(err, CF_EEXIST, "access token with id '%s' already exists", token->id);
        else if (rc == CF_ENOTFOUND)
            rc = cf_err_set(err, CF_ENOTFOUND, "identity with id '%s' not found",
                            token->identity_id);
    }
    if (rc != CF_OK)
        sql_exec(c, &ST_ROLLBACK_TO, NO_ARGS, NULL, NULL);
    sql_exec(c, &ST_RELEASE, NO_ARGS, NULL, NULL);
    return rc;
}

/* Writes a batch of tokens in one transaction: one fsync for all of them. */
static void commit_jobs(struct sql_store *st, struct token_job *batch)
{
    struct db_conn *c = NULL;
    struct cf_err err;
    cf_err_clear(&err);
    enum cf_rc rc = sql_tx_begin(&st->base, &c, &err);
    for (struct token_job *job = batch; job; job = job->next) {
        cf_err_clear(&job->err);
        job->rc = rc == CF_OK ? insert_token(c, job->token, &job->err) : rc;
        if (rc != CF_OK)
            job->err = err;
    }
    if (rc != CF_OK)
        return;
    rc = sql_tx_end(c, CF_OK, &err);
    for (struct token_job *job = batch; rc != CF_OK && job; job = job->next) {
        if (job->rc == CF_OK) {
            job->rc = rc;
            job->err = err;
        }
    }
}

/* Logins arrive concurrently and each needs its token on disk before it answers. Rather than one
 * fsync per login, the first waiting thread writes every token queued so far in one transaction
 * while the next ones queue up behind it (group commit); each caller still gets its own result. */
static enum cf_rc sq_token_create(struct cf_store *base, const struct cf_access_token *token,
                                  struct cf_err *err)
{
    struct sql_store *st = sql_store_of(base);
    enum cf_rc rc;

    rc = require_uuid(token->id, "access token", err);
    if (rc == CF_OK)
        rc = require_terminated(token->client_secret_id, sizeof(token->client_secret_id),
                                "client secret id", err);
    if (rc == CF_OK)
        rc = require_terminated(token->auth_method, sizeof(token->auth_method), "auth method", err);
    if (rc == CF_OK)
        rc = require_terminated(token->trusted_ips, sizeof(token->trusted_ips),
                                "access token trusted IP list", err);
    if (rc == CF_OK && !token->auth_method[0])
        rc = cf_err_set(err, CF_EINVAL, "access token has no auth method");
    if (rc == CF_OK && (token->num_uses < 0 || token->num_uses_limit < 0))
        rc = cf_err_set(err, CF_EINVAL, "access token use counts must not be negative");
    if (rc != CF_OK)
        return rc;

    struct token_job job = {.token = token};
    pthread_mutex_lock(&st->jobs_lock);
    job.next = st->jobs;
    st->jobs = &job;
    while (!job.done) {
        if (st->committing) {
            pthread_cond_wait(&st->jobs_done, &st->jobs_lock);
            continue;
        }
        struct token_job *batch = st->jobs;
        st->jobs = NULL;
        st->committing = true;
        pthread_mutex_unlock(&st->jobs_lock);
        commit_jobs(st, batch);
        pthread_mutex_lock(&st->jobs_lock);
        for (struct token_job *j = batch; j; j = j->next)
            j->done = true;
        st->committing = false;
        pthread_cond_broadcast(&st->jobs_done);
    }
    pthread_mutex_unlock(&st->jobs_lock);
    if (job.rc != CF_OK && err)
        *err = job.err;
    return job.rc;
}

/* On every request made with an access token: one seek in the token table's primary key, with a
 * statement prepared once per connection. */
static enum cf_rc sq_token_get(struct cf_store *base, const char *token_id,
                               struct cf_access_token *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_TOKEN_BY_ID, ARGS(A_TEXT(token_id)), read_token, out,
                       "access token with id", token_id, err);
}

static enum cf_rc sq_token_use(struct cf_store *base, const char *token_id, struct cf_err *err)
{
    return count_use(base, &ST_TOKEN_USE, &ST_TOKEN_USE_STATE, "access token with id", token_id,
                     err);
}

/* Runs a one-row update of token token_id; CF_ENOTFOUND when there is no such token. */
static enum cf_rc token_update(struct cf_store *base, struct sql_stmt *id,
                               const struct sq_arg *args, size_t n_args, const char *token_id,
                               struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, id, args, n_args, &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "access token with id '%s' not found", token_id);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_token_renew(struct cf_store *base, const char *token_id, int64_t renewed_at,
                                 struct cf_err *err)
{
    return token_update(base, &ST_TOKEN_RENEW,
                        ARGS(A_TEXT(token_id), A_INT(time_or_now(renewed_at, cf_now_ms()))),
                        token_id, err);
}

static enum cf_rc sq_token_revoke(struct cf_store *base, const char *token_id, struct cf_err *err)
{
    return token_update(base, &ST_TOKEN_REVOKE, ARGS(A_TEXT(token_id)), token_id, err);
}

static enum cf_rc sq_auth_method_remove(struct cf_store *base, const char *identity_id,
                                        const char *auth_method, struct cf_err *err)
{
    static const struct {
        const char *name;
        struct sql_stmt *remove;
    } methods[] = {
        {"universal-auth", &ST_UA_DELETE},
        {"jwt-auth", &ST_JWT_DELETE},
        {"kubernetes-auth", &ST_K8S_DELETE},
    };
    struct db_conn *c;
    int64_t changes = 0;
    size_t m = 0;
    while (m < CF_ARRAY_SIZE(methods) && strcmp(methods[m].name, auth_method) != 0)
        m++;
    if (m == CF_ARRAY_SIZE(methods))
        return cf_err_set(err, CF_EINVAL, "unknown auth method '%.32s'", auth_method);
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, methods[m].remove, ARGS(A_TEXT(identity_id)), &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "identity '%s' has no %s", identity_id, auth_method);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_TOKEN_DELETE_BY_METHOD, ARGS(A_TEXT(identity_id), A_TEXT(auth_method)),
                      NULL, err);
    /* Client secrets belong to universal auth: attached again, it starts with none. */
    if (rc == CF_OK && m == 0)
        rc = sql_exec(c, &ST_CSECRET_DELETE_ALL, ARGS(A_TEXT(identity_id)), NULL, err);
    return sql_tx_end(c, rc, err);
}

/* ---- memberships ---- */

static enum cf_rc sq_membership_put(struct cf_store *base, const struct cf_membership *membership,
                                    struct cf_err *err)
{
    struct cf_identity identity;
    uint8_t *rules = NULL;
    size_t rules_len = 0;
    struct db_conn *c;
    int64_t now = cf_now_ms();
    bool found = false;
    enum cf_rc rc;

    rc = require_uuid(membership->id, "membership", err);
    if (rc == CF_OK)
        rc = require_terminated(membership->role, sizeof(membership->role), "role", err);
    if (rc == CF_OK && !membership->role[0])
        rc = cf_err_set(err, CF_EINVAL, "membership has no role");
    if (rc == CF_OK)
        rc = rules_encode(membership->rules, membership->n_rules, &rules, &rules_len, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        goto out;
    /* One statement: a new membership, or the existing one (keeping its id and creation time)
     * with its role and rules replaced. */
    rc = sql_exec(c, &ST_MEMBERSHIP_UPSERT,
                  ARGS(A_TEXT(membership->id), A_TEXT(membership->identity_id),
                       A_TEXT(membership->project_id), A_TEXT(membership->role),
                       A_NULLABLE_BLOB(rules, rules_len),
                       A_INT(time_or_now(membership->created_at, now)),
                       A_INT(time_or_now(membership->updated_at, now))),
                  NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "membership with id '%s' already exists", membership->id);
    else if (rc == CF_ENOTFOUND) {
        /* Which of the two is missing? */
        rc = sql_get_row(c, &ST_IDENTITY_BY_ID, ARGS(A_TEXT(membership->identity_id)),
                         read_identity, &identity, &found, err);
        if (rc == CF_OK && !found)
            rc = cf_err_set(err, CF_ENOTFOUND, "identity with id '%s' not found",
                            membership->identity_id);
        else if (rc == CF_OK)
            rc = cf_err_set(err, CF_ENOTFOUND, "project '%s' not found", membership->project_id);
    }
    rc = sql_tx_end(c, rc, err);
out:
    free(rules);
    return rc;
}

/* On every authorization check of an identity: one seek in the membership table's primary key. */
static enum cf_rc sq_membership_get(struct cf_store *base, const char *identity_id,
                                    const char *project_id, struct cf_membership *out,
                                    struct cf_err *err)
{
    struct db_conn *c;
    bool found = false;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = conn_get(sql_store_of(base), &c, err);
    if (rc == CF_OK)
        rc = sql_get_row(c, &ST_MEMBERSHIP_GET, ARGS(A_TEXT(identity_id), A_TEXT(project_id)),
                         read_membership, out, &found, err);
    if (rc == CF_OK && !found)
        rc = cf_err_set(err, CF_ENOTFOUND, "identity '%s' is not a member of project '%s'",
                        identity_id, project_id);
    if (rc != CF_OK)
        cf_membership_release(out);
    return rc;
}

static enum cf_rc sq_membership_list(struct cf_store *base, const char *identity_id,
                                     const char *project_id, struct cf_membership_list *out,
                                     struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_membership), .read = read_membership};
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    if (identity_id && project_id) /* at most the one membership */
        rc = sql_collect_all(base, &ST_MEMBERSHIP_GET,
                             ARGS(A_TEXT(identity_id), A_TEXT(project_id)), &col, err);
    else if (identity_id)
        rc =
            sql_collect_all(base, &ST_MEMBERSHIP_BY_IDENTITY, ARGS(A_TEXT(identity_id)), &col, err);
    else if (project_id)
        rc = sql_collect_all(base, &ST_MEMBERSHIP_BY_PROJECT, ARGS(A_TEXT(project_id)), &col, err);
    else
        return cf_err_set(err, CF_EINVAL, "list memberships of an identity or of a project");
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_membership_list_release(out);
    return rc;
}

static enum cf_rc sq_membership_delete(struct cf_store *base, const char *identity_id,
                                       const char *project_id, struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_MEMBERSHIP_DELETE, ARGS(A_TEXT(identity_id), A_TEXT(project_id)), &changes,
                  err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "identity '%s' is not a member of project '%s'",
                        identity_id, project_id);
    return sql_tx_end(c, rc, err);
}

/* ---- notifications ---- */

/* One write statement in its own transaction; *changes (when non-NULL) receives the rows changed.
 */
static enum cf_rc exec_in_tx(struct cf_store *base, struct sql_stmt *id, const struct sq_arg *args,
                             size_t n_args, int64_t *changes, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, id, args, n_args, changes, err);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_channel_create(struct cf_store *base, const struct cf_channel *ch,
                                    struct cf_err *err)
{
    enum cf_rc rc =
        exec_in_tx(base, &ST_CHANNEL_INSERT,
                   ARGS(A_TEXT(ch->id), A_TEXT(ch->project_id), A_TEXT(ch->type), A_TEXT(ch->name),
                        A_TEXT(ch->target), A_TEXT(ch->signing_secret), A_INT(ch->created_at)),
                   NULL, err);
    if (rc == CF_EEXIST || rc == CF_ECONFLICT)
        rc = cf_err_set(err, CF_ENOTFOUND, "Project with ID '%s' not found", ch->project_id);
    return rc;
}

static enum cf_rc sq_channel_list(struct cf_store *base, const char *project_id,
                                  struct cf_channel_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_channel), .read = read_channel};
    enum cf_rc rc = project_id ? sql_collect_all(base, &ST_CHANNEL_LIST_PROJECT,
                                                 ARGS(A_TEXT(project_id)), &col, err)
                               : sql_collect_all(base, &ST_CHANNEL_LIST_ALL, NO_ARGS, &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_channel_list_release(out);
    return rc;
}

static enum cf_rc sq_channel_delete(struct cf_store *base, const char *channel_id,
                                    struct cf_err *err)
{
    int64_t changes = 0;
    enum cf_rc rc = exec_in_tx(base, &ST_CHANNEL_DELETE, ARGS(A_TEXT(channel_id)), &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "notification channel '%s' not found", channel_id);
    return rc;
}

struct thresholds_text {
    char text[256];
};

static enum cf_rc read_thresholds(const struct db_row *s, void *item)
{
    struct thresholds_text *out = item;
    db_row_text(s, 0, out->text, sizeof(out->text));
    return db_row_status(s);
}

static enum cf_rc sq_notify_thresholds_get(struct cf_store *base, const char *project_id, char *out,
                                           size_t size, struct cf_err *err)
{
    struct thresholds_text got = {""};
    enum cf_rc rc = sql_get_one(base, &ST_THRESHOLDS_GET, ARGS(A_TEXT(project_id)), read_thresholds,
                                &got, "notification settings of project", project_id, err);
    if (rc == CF_OK)
        cf_strlcpy(out, got.text, size);
    return rc;
}

static enum cf_rc sq_notify_thresholds_put(struct cf_store *base, const char *project_id,
                                           const char *thresholds, struct cf_err *err)
{
    return exec_in_tx(base, &ST_THRESHOLDS_PUT,
                      ARGS(A_TEXT(project_id), A_TEXT(thresholds), A_INT(cf_now_ms())), NULL, err);
}

static enum cf_rc sq_notice_claim(struct cf_store *base, const struct cf_notice *n, bool *created,
                                  struct cf_err *err)
{
    int64_t changes = 0;
    enum cf_rc rc = exec_in_tx(base, &ST_NOTICE_CLAIM,
                               ARGS(A_TEXT(n->id), A_TEXT(n->channel_id), A_TEXT(n->item_key),
                                    A_TEXT(n->threshold), A_TEXT(n->project_id), A_TEXT(n->message),
                                    A_TEXT(n->item), A_INT(n->created_at)),
                               &changes, err);
    *created = rc == CF_OK && changes == 1;
    return rc;
}

static enum cf_rc sq_notice_due(struct cf_store *base, int64_t now, size_t limit,
                                struct cf_notice_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_notice), .read = read_notice};
    enum cf_rc rc =
        sql_collect_all(base, &ST_NOTICE_DUE, ARGS(A_INT(now), A_INT(limit)), &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_notice_list_release(out);
    return rc;
}

static enum cf_rc sq_notice_update(struct cf_store *base, const struct cf_notice *n,
                                   struct cf_err *err)
{
    return exec_in_tx(base, &ST_NOTICE_UPDATE,
                      ARGS(A_TEXT(n->id), A_TEXT(n->state), A_INT(n->attempts),
                           A_INT(n->next_attempt_at), A_TEXT(n->last_error),
                           A_INT(n->delivered_at)),
                      NULL, err);
}

static enum cf_rc sq_notice_list(struct cf_store *base, const char *project_id, const char *state,
                                 size_t limit, size_t offset, struct cf_notice_list *out,
                                 struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_notice), .read = read_notice};
    enum cf_rc rc = sql_collect_all(base, &ST_NOTICE_LIST,
                                    ARGS(A_TEXT(str_or_empty(project_id)),
                                         A_TEXT(str_or_empty(state)), A_INT(limit), A_INT(offset)),
                                    &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_notice_list_release(out);
    return rc;
}

/* ---- audit log ---- */

static enum cf_rc sq_audit_append(struct cf_store *base, struct cf_audit_event *events, size_t n,
                                  void (*chain)(void *ctx, struct cf_audit_event *event), void *ctx,
                                  struct cf_err *err)
{
    struct db_conn *c;
    struct cf_audit_event *last = NULL;
    bool found = false;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    last = malloc(sizeof(*last));
    if (!last)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    if (rc == CF_OK)
        rc = sql_get_row(c, &ST_AUDIT_LAST, NO_ARGS, read_audit_event, last, &found, err);
    int64_t seq = found ? last->seq : 0;
    const uint8_t *prev = found ? last->hash : NULL;
    for (size_t i = 0; rc == CF_OK && i < n; i++) {
        struct cf_audit_event *e = &events[i];
        e->seq = ++seq;
        if (prev)
            memcpy(e->prev_hash, prev, sizeof(e->prev_hash));
        else
            memset(e->prev_hash, 0, sizeof(e->prev_hash));
        chain(ctx, e);
        rc = sql_exec(c, &ST_AUDIT_INSERT,
                      ARGS(A_INT(e->seq), A_TEXT(e->id), A_INT(e->time_us), A_TEXT(e->actor_kind),
                           A_TEXT(e->actor_id), A_TEXT(e->actor_name), A_TEXT(e->source_ip),
                           A_TEXT(e->user_agent), A_TEXT(e->action), A_TEXT(e->project_id),
                           A_TEXT(e->environment), A_TEXT(e->path), A_TEXT(e->keys),
                           A_TEXT(e->result), A_TEXT(e->reason), A_TEXT(e->request_id),
                           A_BLOB(e->prev_hash, sizeof(e->prev_hash)),
                           A_BLOB(e->hash, sizeof(e->hash))),
                      NULL, err);
        prev = e->hash;
    }
    free(last);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_audit_list(struct cf_store *base, const struct cf_audit_filter *f,
                                struct cf_audit_event_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_audit_event), .read = read_audit_event};
    enum cf_rc rc = sql_collect_all(
        base, &ST_AUDIT_LIST,
        ARGS(A_INT(f->after_seq), A_INT(f->since_us), A_INT(f->until_us),
             A_TEXT(str_or_empty(f->actor)), A_TEXT(str_or_empty(f->action)),
             A_TEXT(str_or_empty(f->project_id)), A_INT(f->limit ? (int64_t)f->limit : -1)),
        &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_audit_event_list_release(out);
    return rc;
}

static enum cf_rc sq_audit_get(struct cf_store *base, int64_t seq, struct cf_audit_event *out,
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

static enum cf_rc sq_audit_checkpoint_add(struct cf_store *base,
                                          const struct cf_audit_checkpoint *cp, struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_AUDIT_CHECKPOINT_INSERT,
                  ARGS(A_INT(cp->event_seq), A_INT(cp->time_us),
                       A_BLOB(cp->event_hash, sizeof(cp->event_hash)),
                       A_BLOB(cp->signature, sizeof(cp->signature))),
                  NULL, err);
    return sql_tx_end(c, rc, err);
}

static enum cf_rc sq_audit_checkpoint_list(struct cf_store *base,
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

static const struct cf_store_ops sq_ops = {
    .close = sq_close,
    .job_lock = sq_job_lock,
    .ping = sq_ping,
    .meta_get = sq_meta_get,
    .meta_put = sq_meta_put,
    .meta_insert = sq_meta_insert,
    .rewrap_keys = sq_rewrap_keys,
    .project_create = sq_project_create,
    .project_get = sq_project_get,
    .project_list = sq_project_list,
    .project_delete = sq_project_delete,
    .env_create = sq_env_create,
    .env_list = sq_env_list,
    .env_get = sq_env_get,
    .env_update = sq_env_update,
    .env_delete = sq_env_delete,
    .folder_create = sq_folder_create,
    .folder_get = sq_folder_get,
    .folder_list = sq_folder_list,
    .folder_delete = sq_folder_delete,
    .secret_write = sq_secret_write,
    .secret_list = sq_secret_list,
    .secret_expiring = sq_secret_expiring,
    .secret_inventory = sq_secret_inventory,
    .secret_get = sq_secret_get,
    .secret_get_by_id = sq_secret_get_by_id,
    .secret_history = sq_secret_history,
    .import_create = sq_import_create,
    .import_list = sq_import_list,
    .import_get = sq_import_get,
    .import_delete = sq_import_delete,
    .tag_create = sq_tag_create,
    .tag_get = sq_tag_get,
    .tag_list = sq_tag_list,
    .identity_create = sq_identity_create,
    .identity_get = sq_identity_get,
    .identity_list = sq_identity_list,
    .identity_update = sq_identity_update,
    .identity_delete = sq_identity_delete,
    .ua_attach = sq_ua_attach,
    .ua_update = sq_ua_update,
    .ua_get = sq_ua_get,
    .ua_get_by_client_id = sq_ua_get_by_client_id,
    .jwt_auth_attach = sq_jwt_auth_attach,
    .jwt_auth_update = sq_jwt_auth_update,
    .jwt_auth_get = sq_jwt_auth_get,
    .kubernetes_auth_attach = sq_k8s_auth_attach,
    .kubernetes_auth_update = sq_k8s_auth_update,
    .kubernetes_auth_get = sq_k8s_auth_get,
    .client_secret_create = sq_client_secret_create,
    .client_secret_list = sq_client_secret_list,
    .channel_create = sq_channel_create,
    .channel_list = sq_channel_list,
    .channel_delete = sq_channel_delete,
    .notify_thresholds_get = sq_notify_thresholds_get,
    .notify_thresholds_put = sq_notify_thresholds_put,
    .notice_claim = sq_notice_claim,
    .notice_due = sq_notice_due,
    .notice_update = sq_notice_update,
    .notice_list = sq_notice_list,
    .audit_append = sq_audit_append,
    .audit_list = sq_audit_list,
    .audit_get = sq_audit_get,
    .audit_checkpoint_add = sq_audit_checkpoint_add,
    .audit_checkpoint_list = sq_audit_checkpoint_list,
    .client_secret_expiring = sq_client_secret_expiring,
    .client_secret_get = sq_client_secret_get,
    .client_secret_revoke = sq_client_secret_revoke,
    .client_secret_use = sq_client_secret_use,
    .token_create = sq_token_create,
    .token_get = sq_token_get,
    .token_use = sq_token_use,
    .token_renew = sq_token_renew,
    .token_revoke = sq_token_revoke,
    .membership_put = sq_membership_put,
    .membership_get = sq_membership_get,
    .membership_list = sq_membership_list,
    .membership_delete = sq_membership_delete,
    .auth_method_remove = sq_auth_method_remove,
    .meta_swap = sq_meta_swap,
};

enum cf_rc sql_store_init(struct sql_store *st, const struct db_driver *drv, struct cf_err *err)
{
    st->base.ops = &sq_ops;
    st->base.backend = drv->name;
    st->drv = drv;
    if (pthread_mutex_init(&st->jobs_lock, NULL) != 0)
        return cf_err_set(err, CF_ESTORE, "cannot create a mutex");
    if (pthread_cond_init(&st->jobs_done, NULL) != 0) {
        pthread_mutex_destroy(&st->jobs_lock);
        return cf_err_set(err, CF_ESTORE, "cannot create a condition variable");
    }
    return CF_OK;
}

void sql_store_release(struct sql_store *st)
{
    if (!st || !st->drv)
        return;
    pthread_mutex_destroy(&st->jobs_lock);
    pthread_cond_destroy(&st->jobs_done);
}

enum cf_rc sql_migration_version(struct db_conn *c, int64_t *version, struct cf_err *err)
{
    bool found;
    *version = 0;
    return sql_get_row(c, &ST_MIGRATION_VERSION, NO_ARGS, sql_read_int64, version, &found, err);
}

enum cf_rc sql_migration_record(struct db_conn *c, int version, const char *name,
                                struct cf_err *err)
{
    return sql_exec(c, &ST_MIGRATION_RECORD, ARGS(A_INT(version), A_TEXT(name), A_INT(cf_now_ms())),
                    NULL, err);
}

/* ---- copying a whole store (coffer operator migrate) ---- */

/* Every table of the schema, parents before children, each column with the type it is bound with:
 * t text, n nullable text, i integer, b blob, B nullable blob. `order` lists rows so that a row's
 * parent row (folders: the parent folder) is copied first. */
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
    {"secret_imports", IMPORT_COLS, "ttttiii", "id"},
    {"tags", TAG_COLS, "tttttii", "id"},
    {"identities", IDENTITY_COLS, "ttii", "id"},
    {"identity_universal_auths", UA_COLS, "ttiiittii", "identity_id"},
    {"identity_jwt_auths", JWT_COLS, "tttttttttiiitiii", "identity_id"},
    {"identity_kubernetes_auths", K8S_COLS, "tttttttiiitii", "identity_id"},
    {"identity_client_secrets", "rowid, " CSECRET_COLS, "ittttbiiiiii", "id"},
    {"identity_access_tokens", TOKEN_COLS, "ttttbiiiiitii", "id"},
    {"identity_memberships", MEMBERSHIP_COLS, "ttttBii", "id"},
    {"audit_events", AUDIT_COLS, "ititttttttttttttbb", "seq"},
    {"audit_checkpoints", "event_seq, time_us, event_hash, signature", "iibb", "event_seq"},
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
};

struct copy_state {
    const struct copy_table *table;
    size_t n_cols;
    struct db_conn *dst; /* NULL: only hash the rows */
    char *insert_sql;
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
        enum cf_rc rc = cs->dst->st->drv->run(cs->dst, -1, cs->insert_sql, args, cs->n_cols, NULL,
                                              NULL, NULL, &cs->insert_err);
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
    char select[1024], insert[2048];
    struct copy_state cs = {.table = t, .n_cols = strlen(t->types), .dst = dst};
    size_t n_columns = 1;
    for (const char *p = t->columns; *p; p++)
        n_columns += *p == ',';
    if (n_columns != cs.n_cols || cs.n_cols > SQL_PARAMS_MAX)
        CF_BUG("copy_tables: a table's types do not match its columns");
    snprintf(select, sizeof(select), "SELECT %s FROM %s ORDER BY %s", t->columns, t->name,
             t->order);
    if (dst) {
        size_t at = (size_t)snprintf(insert, sizeof(insert), "INSERT INTO %s (%s) VALUES (",
                                     t->name, t->columns);
        for (size_t i = 0; i < cs.n_cols && at < sizeof(insert); i++)
            at +=
                (size_t)snprintf(insert + at, sizeof(insert) - at, "%s?%zu", i ? ", " : "", i + 1);
        if (at + 2 >= sizeof(insert))
            CF_BUG("a copy statement longer than its buffer");
        memcpy(insert + at, ")", 2);
        cs.insert_sql = insert;
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

enum cf_rc cf_store_copy(struct cf_store *from, struct cf_store *to,
                         void (*report)(void *ctx, const char *table, int64_t rows,
                                        const uint8_t checksum[CF_COPY_CHECKSUM_LEN]),
                         void *ctx, struct cf_err *err)
{
    struct sql_store *dst_st = sql_store_of(to);
    struct db_conn *src = NULL, *dst = NULL;
    int64_t existing = 0;
    bool found;
    enum cf_rc rc;

    /* both ends locked for writing: the source holds still, the destination fills all or nothing */
    rc = sql_tx_begin(from, &src, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(to, &dst, err);
    if (rc != CF_OK)
        return sql_tx_end(src, rc, err);
    for (size_t i = 0; rc == CF_OK && i < CF_ARRAY_SIZE(copy_tables); i++) {
        char count[128];
        snprintf(count, sizeof(count), "SELECT COUNT(*) FROM %s", copy_tables[i].name);
        struct sql_stmt count_stmt = SQL_ONCE(count);
        rc = sql_get_row(dst, &count_stmt, NO_ARGS, sql_read_int64, &existing, &found, err);
        if (rc == CF_OK && found && existing > 0)
            rc = cf_err_set(err, CF_EEXIST,
                            "the destination already holds data (%lld rows in %s): migrate into an "
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
    rc = sql_tx_end(dst, rc, err);
    sql_tx_end(src, CF_OK, NULL); /* nothing was written to the source */
    return rc;
}
