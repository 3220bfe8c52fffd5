/* Internal to src/store: what several domain files of the store share: the column lists of their
 * tables, statements and row readers used by more than one domain, the checks of ids and paths,
 * and the operations the store's table of operations (meta.c) points at. */
#ifndef CF_STORE_SHARED_H
#define CF_STORE_SHARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/sqldb.h"
#include "store/sqlrun.h"
#include "store/store.h"
#include "util/err.h"

#define PROJECT_COLS "id, slug, name, description, created_at, updated_at, wrapped_key"

/* ENV_COLS and IMPORT_COLS both have id first and position fifth: renumber() reads them alike. */
#define ENV_COLS "id, project_id, slug, name, position, created_at, updated_at"

#define IMPORT_COLS "id, folder_id, import_env_id, import_path, position, created_at, updated_at"

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

#define AUDIT_COLS                                                                                 \
    "seq, id, time_us, actor_kind, actor_id, actor_name, source_ip, user_agent, action,"           \
    " project_id, environment, path, keys, result, reason, request_id, prev_hash, hash"

/* Counting one use of a credential: only while it is not revoked and has uses left, so that two
 * concurrent uses can never both take the last one (writes are serialised, and the test and the
 * increment are one statement). */
#define USE_ONE(table)                                                                             \
    "UPDATE " table " SET num_uses = num_uses + 1 WHERE id = ?1 AND revoked = 0"                   \
    " AND (num_uses_limit = 0 OR num_uses < num_uses_limit)"

/* path = ?2 or a descendant: ?3 is path + "/" and ?4 path + "0" ('0' follows '/'), see
 * sql_subtree_bounds(). The range [?2, ?4) lets the (env_id, path) index bound the scan; the second
 * test drops siblings such as "/a-b" or "/a.b" that sort between "/a" and "/a/". */
#define SUBTREE(col) "(" col " >= ?2 AND " col " < ?4 AND (" col " = ?2 OR " col " > ?3))"

extern struct sql_stmt ST_FOLDER_BY_ID;

extern struct sql_stmt ST_FOLDER_BY_PATH;

extern struct sql_stmt ST_IDENTITY_BY_ID;

extern struct sql_stmt ST_CSECRET_USE;

extern struct sql_stmt ST_CSECRET_USE_STATE;

enum cf_rc sql_read_folder(const struct db_row *s, void *item);

enum cf_rc sql_read_identity(const struct db_row *s, void *item);

/* A blob column of exactly size bytes (a hash, a signature) into dst; CF_ESTORE, with the row's
 * fault naming the column, when it is NULL or has another size (the schema forbids both). */
enum cf_rc sql_col_fixed(const struct db_row *s, int i, uint8_t *dst, size_t size);

const char *sql_str_or_empty(const char *s);

/* A caller-supplied time, or now when it left it 0. */
int64_t sql_time_or_now(int64_t t, int64_t now);

enum cf_rc sql_require_uuid(const char *id, const char *what, struct cf_err *err);

/* Range bounds for the folders strictly below path: lo = path + "/" and hi = path + "0" ('0' is the
 * byte after
 * '/'), the root's prefix being empty. Comparing with > and < never interprets the path, unlike
 * LIKE. */
struct subtree {
    char lo[CF_PATH_MAX + 2];
    char hi[CF_PATH_MAX + 2];
};

enum cf_rc sql_subtree_bounds(const char *path, struct subtree *b, struct cf_err *err);

/* CF_OK when environment env_id has a folder at path, else CF_ENOTFOUND naming it. */
enum cf_rc sql_folder_must_exist(struct db_conn *c, const char *env_id, const char *path,
                                 struct cf_err *err);

/* CF_OK when field (an array of size bytes) holds a terminated string, safe to bind as text. */
enum cf_rc sql_require_terminated(const char *field, size_t size, const char *what,
                                  struct cf_err *err);

struct use_state {
    bool revoked;
    int64_t num_uses, num_uses_limit;
};

enum cf_rc sql_read_use_state(const struct db_row *s, void *item);

/* Counts one use inside the caller's transaction (see sql_count_use). */
enum cf_rc sql_count_use_in(struct db_conn *c, struct sql_stmt *use_stmt,
                            struct sql_stmt *state_stmt, const char *what, const char *id,
                            struct cf_err *err);

/* Counts one use of credential id (what names its kind in messages) with use_stmt, in one write
 * transaction. When nothing changed, state_stmt tells why, in the same transaction: gone
 * (CF_ENOTFOUND), or revoked or out of uses (CF_ECONFLICT). */
enum cf_rc sql_count_use(struct cf_store *base, struct sql_stmt *use_stmt,
                         struct sql_stmt *state_stmt, const char *what, const char *id,
                         struct cf_err *err);

/* The operations of store.h, each in its domain file. */
void sq_close(struct cf_store *base);
enum cf_rc sq_job_lock(struct cf_store *base, const char *job, bool *held, struct cf_err *err);
enum cf_rc sq_ping(struct cf_store *base, struct cf_err *err);
enum cf_rc sq_meta_get(struct cf_store *base, const char *name, uint8_t **value, size_t *len,
                       struct cf_err *err);
enum cf_rc sq_meta_put(struct cf_store *base, const char *name, const uint8_t *value, size_t len,
                       struct cf_err *err);
enum cf_rc sq_meta_insert(struct cf_store *base, const char *name, const uint8_t *value, size_t len,
                          struct cf_err *err);
enum cf_rc sq_meta_swap(struct cf_store *base, const char *name, const uint8_t *expected,
                        size_t expected_len, const uint8_t *value, size_t len, struct cf_err *err);
enum cf_rc sq_rewrap_keys(struct cf_store *base, const struct cf_key_update *updates, size_t n,
                          const uint8_t *root_check, size_t root_check_len, struct cf_err *err);
enum cf_rc sq_project_create(struct cf_store *base, const struct cf_project *project,
                             const struct cf_env *envs, size_t n_envs, struct cf_err *err);
enum cf_rc sq_project_get(struct cf_store *base, const char *id_or_slug, struct cf_project *out,
                          struct cf_err *err);
enum cf_rc sq_project_list(struct cf_store *base, struct cf_project_list *out, struct cf_err *err);
enum cf_rc sq_project_delete(struct cf_store *base, const char *project_id, struct cf_err *err);
enum cf_rc sq_env_create(struct cf_store *base, const struct cf_env *env, struct cf_err *err);
enum cf_rc sq_env_list(struct cf_store *base, const char *project_id, struct cf_env_list *out,
                       struct cf_err *err);
enum cf_rc sq_env_get(struct cf_store *base, const char *project_id, const char *id_or_slug,
                      struct cf_env *out, struct cf_err *err);
enum cf_rc sq_env_update(struct cf_store *base, const struct cf_env *env, struct cf_err *err);
enum cf_rc sq_env_delete(struct cf_store *base, const char *env_id, struct cf_err *err);
enum cf_rc sq_folder_create(struct cf_store *base, const struct cf_folder *folder,
                            struct cf_err *err);
enum cf_rc sq_folder_get(struct cf_store *base, const char *env_id, const char *path,
                         struct cf_folder *out, struct cf_err *err);
enum cf_rc sq_folder_list(struct cf_store *base, const char *env_id, const char *path,
                          bool recursive, struct cf_folder_list *out, struct cf_err *err);
enum cf_rc sq_folder_delete(struct cf_store *base, const char *folder_id, struct cf_err *err);
enum cf_rc sq_secret_write(struct cf_store *base, const struct cf_secret_write *writes, size_t n,
                           struct cf_err *err);
enum cf_rc sq_secret_list(struct cf_store *base, const char *env_id, const char *path,
                          bool recursive, struct cf_secret_list *out, struct cf_err *err);
enum cf_rc sq_secret_expiring(struct cf_store *base, const char *project_id, int64_t until,
                              struct cf_secret_list *out, struct cf_err *err);
enum cf_rc sq_secret_inventory(struct cf_store *base, const char *project_id,
                               struct cf_secret_meta_list *out, struct cf_err *err);
enum cf_rc sq_secret_get(struct cf_store *base, const char *folder_id, const char *key,
                         int64_t version, struct cf_secret *out, struct cf_err *err);
enum cf_rc sq_secret_get_by_id(struct cf_store *base, const char *secret_id, int64_t version,
                               struct cf_secret *out, struct cf_err *err);
enum cf_rc sq_secret_history(struct cf_store *base, const char *secret_id,
                             struct cf_secret_list *out, struct cf_err *err);
enum cf_rc sq_import_create(struct cf_store *base, const struct cf_import *import,
                            struct cf_err *err);
enum cf_rc sq_import_list(struct cf_store *base, const char *folder_id, struct cf_import_list *out,
                          struct cf_err *err);
enum cf_rc sq_import_get(struct cf_store *base, const char *import_id, struct cf_import *out,
                         struct cf_err *err);
enum cf_rc sq_import_delete(struct cf_store *base, const char *import_id, struct cf_err *err);
enum cf_rc sq_tag_create(struct cf_store *base, const struct cf_tag *tag, struct cf_err *err);
enum cf_rc sq_tag_get(struct cf_store *base, const char *project_id, const char *id_or_slug,
                      struct cf_tag *out, struct cf_err *err);
enum cf_rc sq_tag_list(struct cf_store *base, const char *project_id, struct cf_tag_list *out,
                       struct cf_err *err);
enum cf_rc sq_identity_create(struct cf_store *base, const struct cf_identity *identity,
                              struct cf_err *err);
enum cf_rc sq_identity_get(struct cf_store *base, const char *identity_id, struct cf_identity *out,
                           struct cf_err *err);
enum cf_rc sq_identity_list(struct cf_store *base, struct cf_identity_list *out,
                            struct cf_err *err);
enum cf_rc sq_identity_update(struct cf_store *base, const struct cf_identity *identity,
                              struct cf_err *err);
enum cf_rc sq_identity_delete(struct cf_store *base, const char *identity_id, struct cf_err *err);
enum cf_rc sq_ua_attach(struct cf_store *base, const struct cf_ua_config *config,
                        struct cf_err *err);
enum cf_rc sq_ua_update(struct cf_store *base, const struct cf_ua_config *config,
                        struct cf_err *err);
enum cf_rc sq_ua_get(struct cf_store *base, const char *identity_id, struct cf_ua_config *out,
                     struct cf_err *err);
enum cf_rc sq_ua_get_by_client_id(struct cf_store *base, const char *client_id,
                                  struct cf_ua_config *out, struct cf_err *err);
enum cf_rc sq_jwt_auth_attach(struct cf_store *base, const struct cf_jwt_auth_config *config,
                              struct cf_err *err);
enum cf_rc sq_jwt_auth_update(struct cf_store *base, const struct cf_jwt_auth_config *config,
                              struct cf_err *err);
enum cf_rc sq_jwt_auth_get(struct cf_store *base, const char *identity_id,
                           struct cf_jwt_auth_config *out, struct cf_err *err);
enum cf_rc sq_k8s_auth_attach(struct cf_store *base, const struct cf_k8s_auth_config *config,
                              struct cf_err *err);
enum cf_rc sq_k8s_auth_update(struct cf_store *base, const struct cf_k8s_auth_config *config,
                              struct cf_err *err);
enum cf_rc sq_k8s_auth_get(struct cf_store *base, const char *identity_id,
                           struct cf_k8s_auth_config *out, struct cf_err *err);
enum cf_rc sq_client_secret_create(struct cf_store *base, const struct cf_client_secret *secret,
                                   struct cf_err *err);
enum cf_rc sq_client_secret_list(struct cf_store *base, const char *identity_id,
                                 struct cf_client_secret_list *out, struct cf_err *err);
enum cf_rc sq_client_secret_expiring(struct cf_store *base, int64_t until,
                                     struct cf_client_secret_list *out, struct cf_err *err);
enum cf_rc sq_client_secret_get(struct cf_store *base, const char *identity_id,
                                const char *secret_id, struct cf_client_secret *out,
                                struct cf_err *err);
enum cf_rc sq_client_secret_revoke(struct cf_store *base, const char *identity_id,
                                   const char *secret_id, struct cf_err *err);
enum cf_rc sq_client_secret_use(struct cf_store *base, const char *secret_id, struct cf_err *err);
enum cf_rc sq_token_create(struct cf_store *base, const struct cf_access_token *token,
                           struct cf_err *err);
enum cf_rc sq_token_get(struct cf_store *base, const char *token_id, struct cf_access_token *out,
                        struct cf_err *err);
enum cf_rc sq_token_use(struct cf_store *base, const char *token_id, struct cf_err *err);
enum cf_rc sq_token_renew(struct cf_store *base, const char *token_id, int64_t renewed_at,
                          struct cf_err *err);
enum cf_rc sq_token_revoke(struct cf_store *base, const char *token_id, struct cf_err *err);
enum cf_rc sq_auth_method_remove(struct cf_store *base, const char *identity_id,
                                 const char *auth_method, struct cf_err *err);
enum cf_rc sq_membership_put(struct cf_store *base, const struct cf_membership *membership,
                             struct cf_err *err);
enum cf_rc sq_membership_get(struct cf_store *base, const char *identity_id, const char *project_id,
                             struct cf_membership *out, struct cf_err *err);
enum cf_rc sq_membership_list(struct cf_store *base, const char *identity_id,
                              const char *project_id, struct cf_membership_list *out,
                              struct cf_err *err);
enum cf_rc sq_membership_delete(struct cf_store *base, const char *identity_id,
                                const char *project_id, struct cf_err *err);
enum cf_rc sq_channel_create(struct cf_store *base, const struct cf_channel *ch,
                             struct cf_err *err);
enum cf_rc sq_channel_list(struct cf_store *base, const char *project_id,
                           struct cf_channel_list *out, struct cf_err *err);
enum cf_rc sq_channel_delete(struct cf_store *base, const char *channel_id, struct cf_err *err);
enum cf_rc sq_notify_thresholds_get(struct cf_store *base, const char *project_id, char *out,
                                    size_t size, struct cf_err *err);
enum cf_rc sq_notify_thresholds_put(struct cf_store *base, const char *project_id,
                                    const char *thresholds, struct cf_err *err);
enum cf_rc sq_notice_claim(struct cf_store *base, const struct cf_notice *n, bool *created,
                           struct cf_err *err);
enum cf_rc sq_notice_due(struct cf_store *base, int64_t now, size_t limit,
                         struct cf_notice_list *out, struct cf_err *err);
enum cf_rc sq_notice_update(struct cf_store *base, const struct cf_notice *n, struct cf_err *err);
enum cf_rc sq_notice_list(struct cf_store *base, const char *project_id, const char *state,
                          size_t limit, size_t offset, struct cf_notice_list *out,
                          struct cf_err *err);
enum cf_rc sq_audit_append(struct cf_store *base, struct cf_audit_event *events, size_t n,
                           void (*chain)(void *ctx, struct cf_audit_event *event), void *ctx,
                           struct cf_err *err);
enum cf_rc sq_audit_list(struct cf_store *base, const struct cf_audit_filter *f,
                         struct cf_audit_event_list *out, struct cf_err *err);
enum cf_rc sq_audit_get(struct cf_store *base, int64_t seq, struct cf_audit_event *out,
                        struct cf_err *err);
enum cf_rc sq_audit_checkpoint_add(struct cf_store *base, const struct cf_audit_checkpoint *cp,
                                   struct cf_err *err);
enum cf_rc sq_audit_checkpoint_list(struct cf_store *base, struct cf_audit_checkpoint_list *out,
                                    struct cf_err *err);

#endif
