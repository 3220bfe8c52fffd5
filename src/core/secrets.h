/* Secrets: reads (with reference expansion and imports), all-or-nothing batches of changes where
 * every change is a new version, history and rollback. Values are sealed by the keyring before they
 * reach the store and opened into wipeable buffers on the way out. */
#ifndef CF_CORE_SECRETS_H
#define CF_CORE_SECRETS_H

#include "core/core.h"
#include "core/refs.h"

/* What a read returns about a secret version besides its value: the fields of struct cf_secret a
 * caller renders, with every string in one heap block (so that a list of many secrets costs a few
 * hundred bytes a secret, not the fixed-size arrays of struct cf_secret). Read-only for callers;
 * cf_plain_release frees it. */
struct cf_plain_meta {
    char id[CF_UUID_LEN];
    const char *path;          /* the folder's path */
    const char *key;           /* the key this version has */
    const char *comment;       /* "" when none */
    const char *tags;          /* JSON array text of tag ids, "[]" when none */
    const char *reminder_note; /* "" when none */
    int64_t version;
    int64_t expires_at; /* 0: no expiry */
    int64_t reminder_repeat_days;
    int64_t created_at;
    int64_t updated_at;
    bool skip_multiline;
    char *text; /* the block the strings above point into */
};

/* A decrypted secret version. value is plaintext: release with cf_plain_release, which wipes it. */
struct cf_plain {
    struct cf_plain_meta meta;
    struct cf_buf value;
};

struct cf_plain_list {
    struct cf_plain *items;
    size_t n;
};

void cf_plain_release(struct cf_plain *p);
void cf_plain_list_release(struct cf_plain_list *l);

/* Told of each secret whose value a read fetched through a reference (env_slug, folder path and key
 * of the secret referenced), so that the caller can record it as read; ctx is on_ref_read_ctx. */
typedef void (*cf_ref_read_fn)(void *ctx, const char *env_slug, const char *path, const char *key);

struct cf_refs_budget;

/* A secret whose references cannot be followed because what they name does not exist (or they form
 * a cycle, or a chain too deep): reported by a read that goes on without expanding it, and by a
 * write that stores it all the same. */
struct cf_ref_problem {
    char env[CF_SLUG_MAX + 1];
    char path[CF_PATH_MAX + 1];
    char key[CF_KEY_MAX + 1];
    char reference[CF_REF_TEXT_MAX + 1]; /* "${...}" as written */
    char reason[CF_ERR_MSG_MAX];         /* names the secret and what is missing; no value */
};

struct cf_ref_problems {
    struct cf_ref_problem *items;
    size_t n;
};

void cf_ref_problems_release(struct cf_ref_problems *l);

struct cf_read_opts {
    bool recursive;             /* list: include sub-folders */
    bool expand;                /* expand ${...} references */
    cf_ref_read_fn on_ref_read; /* NULL: not told */
    void *on_ref_read_ctx;
    /* With expand: the limits shared by every read of one request (core/refs.h; borrowed). NULL:
     * each call has a budget of its own with the default limits. */
    struct cf_refs_budget *budget;
    /* With expand, for lists: where a secret that cannot be expanded (cf_ref_problem) is reported;
     * the list goes on and that secret keeps its unexpanded value. NULL: the whole read is refused
     * (CF_EVALIDATION naming the secret and the reference), as strict callers want. Refusals for
     * permission (CF_EFORBIDDEN) and the budget stay refusals either way. */
    struct cf_ref_problems *problems;
};

/* Lists the current version of each secret in scope's folder (and below when recursive). */
enum cf_rc cf_secrets_list(struct cf_core *core, const struct cf_principal *who,
                           const struct cf_scope *scope, const struct cf_read_opts *opts,
                           struct cf_plain_list *out, struct cf_err *err);

/* Reads one secret by key: its current version, or version when > 0. A value that cannot be
 * expanded is refused (CF_EVALIDATION) whatever opts->problems says: there is no other secret to
 * hand out instead. */
enum cf_rc cf_secrets_get(struct cf_core *core, const struct cf_principal *who,
                          const struct cf_scope *scope, const char *key, int64_t version,
                          const struct cf_read_opts *opts, struct cf_plain *out,
                          struct cf_err *err);

/* One imported folder's secrets, for a list with imports. */
struct cf_imported {
    struct cf_env env;
    char path[CF_PATH_MAX + 1];
    char folder_id[CF_UUID_LEN];
    struct cf_plain_list secrets;
};

struct cf_imported_list {
    struct cf_imported *items;
    size_t n;
};

void cf_imported_list_release(struct cf_imported_list *l);

/* The folder's imports in position order, each with its secrets (expanded when opts->expand). An
 * import whose environment or folder no longer exists is skipped. */
enum cf_rc cf_secrets_list_imports(struct cf_core *core, const struct cf_principal *who,
                                   const struct cf_scope *scope, const struct cf_read_opts *opts,
                                   struct cf_imported_list *out, struct cf_err *err);

enum cf_change_kind { CF_CHANGE_CREATE = 1, CF_CHANGE_UPDATE, CF_CHANGE_UPSERT, CF_CHANGE_DELETE };

/* One requested change. Strings are borrowed. For UPDATE/UPSERT, only the has_* fields change. */
struct cf_secret_change {
    enum cf_change_kind kind;
    const char *key;
    const char *new_key; /* rename (UPDATE), NULL to keep */
    bool has_value;
    const char *value;
    size_t value_len;
    bool has_comment;
    const char *comment;
    bool has_tags;
    const char *tags_json; /* JSON array text of tag ids, already validated */
    bool has_expires;
    int64_t expires_at; /* 0 clears */
    bool has_skip_multiline;
    bool skip_multiline;
    /* Rotation reminder: the interval in days (0 clears) and a note ("" clears). */
    bool has_reminder_days;
    int64_t reminder_repeat_days;
    bool has_reminder_note;
    const char *reminder_note;
};

/* Rotation reminders: an interval of at most this many days, a note of at most this many bytes. */
#define CF_REMINDER_DAYS_MAX 3650
#define CF_REMINDER_NOTE_MAX 1024

/* Applies changes to scope's folder all-or-nothing, each a new version. A value whose references
 * would expand past the limits of core/refs.h → CF_EVALIDATION naming the key and the limit (a
 * lower bound: references the writer cannot follow count as empty). A reference to a secret,
 * folder or environment that does not exist (where the writer may read) is accepted and, when
 * dangling is not NULL, reported there (release with cf_ref_problems_release). Duplicate keys
 * within changes → CF_EINVAL; CREATE of an existing key → CF_EEXIST; UPDATE/DELETE of a missing key
 * → CF_ENOTFOUND. out receives the resulting secrets (for DELETE, the deleted ones), in the order
 * of changes. */
enum cf_rc cf_secrets_apply(struct cf_core *core, const struct cf_principal *who,
                            const struct cf_scope *scope, const struct cf_secret_change *changes,
                            size_t n, struct cf_plain_list *out, struct cf_ref_problems *dangling,
                            struct cf_err *err);

/* As cf_secrets_apply, for merging a change request (core/approvals.h): each change's key must be
 * at base_versions[i] still (0: must not exist), else CF_ECONFLICT naming the key and both versions
 * (no retry); the writes and marking request_id merged by merged_by (with bypass_reason, "" when
 * none) commit in one store transaction (cf_store_change_request_merge). */
enum cf_rc cf_secrets_apply_merge(struct cf_core *core, const struct cf_principal *who,
                                  const struct cf_scope *scope,
                                  const struct cf_secret_change *changes,
                                  const int64_t *base_versions, size_t n, const char *request_id,
                                  const char *merged_by, const char *bypass_reason,
                                  struct cf_plain_list *out, struct cf_err *err);

/* Every version of a secret by id, newest first (values decrypted). scope receives where the secret
 * lives (release with cf_scope_release). */
enum cf_rc cf_secrets_history(struct cf_core *core, const struct cf_principal *who,
                              const char *secret_id, struct cf_scope *scope,
                              struct cf_plain_list *out, struct cf_err *err);

/* Writes a new version of secret_id holding version's value, comment, tags and expiry (the key
 * keeps its current name). scope receives where the secret lives (release with cf_scope_release).
 */
enum cf_rc cf_secrets_rollback(struct cf_core *core, const struct cf_principal *who,
                               const char *secret_id, int64_t version, struct cf_scope *scope,
                               struct cf_plain *out, struct cf_err *err);

/* The project's tags, for validating tag ids and rendering secrets' tags. */
enum cf_rc cf_secrets_tags(struct cf_core *core, const char *project_id, struct cf_tag_list *out,
                           struct cf_err *err);

#endif
