/* Internal to src/store: what several domain files of the store share: the column lists of their
 * tables, statements and row readers used by more than one domain, the checks of ids and paths. */
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

#define USER_COLS                                                                                  \
    "id, email, name, org_role, status, password_hash, sso_issuer, sso_subject, created_at,"       \
    " updated_at, last_login_at"

#define SESSION_COLS                                                                               \
    "id, user_id, hash, csrf_hash, source_ip, user_agent, created_at, last_seen_at, expires_at"

#define PAT_COLS "id, user_id, name, hash, expires_at, revoked, created_at"

#define CHANNEL_COLS "id, project_id, type, name, target, signing_secret, created_at"

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

/* A row of USER_COLS into a struct cf_user (users.c). */
enum cf_rc sql_read_user(const struct db_row *s, void *item);

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
/* One write of cf_store_secret_write inside the caller's transaction on c (secrets.c), for
 * operations that change secrets together with rows of their own (approvals.c). */
enum cf_rc sql_secret_write_one(struct db_conn *c, const struct cf_secret_write *w, int64_t now,
                                struct cf_err *err);

/* Marks project_id's auto-syncs pending inside the caller's transaction on c (syncs.c); *marked:
 * how many. */
enum cf_rc sql_syncs_mark_project(struct db_conn *c, const char *project_id, int64_t *marked,
                                  struct cf_err *err);

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

#endif
