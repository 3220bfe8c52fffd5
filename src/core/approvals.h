/* Approvals (docs/approvals.md): approval policies and change requests. A policy covers a project's
 * environment under a folder path glob. A user's write to a covered place does not apply: it
 * becomes a change request holding the proposed values sealed with the project key, which the
 * policy's approvers (users, named or through a group) approve or reject; once it has the
 * approvals the policy asks for, its author or an approver merges it, applying every change in one
 * store transaction, or is refused (409) when a key moved since the request was made. A machine
 * identity's write to a covered place is refused unless the policy allows machines.
 *
 * Outputs are filled by the callee and released by the caller with the matching _release (safe on
 * zeroed structs), left zeroed on failure. Every function is thread-safe. */
#ifndef CF_CORE_APPROVALS_H
#define CF_CORE_APPROVALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "core/secrets.h"

/* At most this many approvals required by one policy. */
#define CF_APPROVALS_REQUIRED_MAX 20

/* A policy to create; strings borrowed. approvers: user ids or emails, and group ids or names. */
struct cf_approval_policy_spec {
    const char *project; /* id or slug */
    const char *name;
    const char *env; /* slug */
    const char *path_glob;
    int64_t approvals;
    const char *enforcement; /* "hard" or "soft"; NULL: hard */
    bool allow_machines;
    const char *const *user_refs;
    size_t n_users;
    const char *const *group_refs;
    size_t n_groups;
};

/* Creates a policy; who must administer the project. CF_EVALIDATION naming the field (name, env,
 * secretPath, approvals, enforcement, approvers), CF_ENOTFOUND naming an unknown approver,
 * CF_EEXIST for a name the project has. */
enum cf_rc cf_approvals_policy_create(struct cf_core *core, const struct cf_principal *who,
                                      const struct cf_approval_policy_spec *spec,
                                      struct cf_approval_policy *out, struct cf_err *err);

/* A project's policies (who: any member of the project, or an org admin); project_id receives the
 * project's id and env_slugs (parallel to out, heap array the caller frees) their environments'
 * slugs. */
enum cf_rc cf_approvals_policy_list(struct cf_core *core, const struct cf_principal *who,
                                    const char *project, struct cf_approval_policy_list *out,
                                    char (**env_slugs)[CF_SLUG_MAX + 1], struct cf_err *err);

/* Deletes a project's policy by id or name (who must administer the project). Requests made under
 * it stay, and can no longer be approved. */
enum cf_rc cf_approvals_policy_delete(struct cf_core *core, const struct cf_principal *who,
                                      const char *project, const char *policy, struct cf_err *err);

/* What became of a write to a place (cf_approvals_intercept). */
struct cf_approval_hold {
    bool held;                         /* a change request was made instead of the write */
    char request_id[CF_UUID_LEN];      /* when held */
    char policy_name[CF_NAME_MAX + 1]; /* when held */
    int64_t approvals_required;
};

/* Called before a write of changes to scope's folder by who: when no policy covers the place, or
 * who is a machine identity that the covering policy allows, *hold is not held and the caller
 * applies the write. When who is a user, the changes become a change request (checked as the write
 * would be: who's permissions, existing and missing keys; tags, expiry and reminders cannot be
 * proposed) and *hold says which. A machine identity the policy does not allow, or the admin token,
 * gets CF_EFORBIDDEN naming the policy. Notifies the project's channels of a new request. */
enum cf_rc cf_approvals_intercept(struct cf_core *core, const struct cf_principal *who,
                                  const struct cf_scope *scope,
                                  const struct cf_secret_change *changes, size_t n,
                                  struct cf_approval_hold *hold, struct cf_err *err);

/* For writes that cannot become a change request (a rollback): CF_OK when no policy covers
 * scope's folder or who is a machine identity the covering policy allows, else CF_EFORBIDDEN
 * naming the policy. */
enum cf_rc cf_approvals_guard_direct(struct cf_core *core, const struct cf_principal *who,
                                     const struct cf_scope *scope, const char *what,
                                     struct cf_err *err);

/* A change request as a caller sees it: the stored request, where it is, the approvals counted
 * (the author's own never counts), and for each item the key's version now (0: absent), so that a
 * conflict shows before a merge is tried. */
struct cf_approval_view {
    struct cf_change_request req;
    char project_slug[CF_SLUG_MAX + 1];
    char env_slug[CF_SLUG_MAX + 1];
    int64_t approvals;
    int64_t *current_versions; /* heap, one per item */
    bool conflicts;            /* some item's key is not at its base version any more */
    bool approved;             /* approvals >= required */
};

void cf_approval_view_release(struct cf_approval_view *v);

struct cf_approval_view_list {
    struct cf_approval_view *items;
    size_t n;
};

void cf_approval_view_list_release(struct cf_approval_view_list *l);

/* A project's change requests, newest first; status "open", "merged", "rejected", "closed" or NULL
 * for any (CF_EVALIDATION naming status for another). Who sees a request: its author, the
 * approvers of its policy, the project's administrators and those who may read its place. */
enum cf_rc cf_approvals_request_list(struct cf_core *core, const struct cf_principal *who,
                                     const char *project, const char *status,
                                     struct cf_approval_view_list *out, struct cf_err *err);

/* One change request by id (CF_ENOTFOUND, or the same for one who may not see it). */
enum cf_rc cf_approvals_request_get(struct cf_core *core, const struct cf_principal *who,
                                    const char *id, struct cf_approval_view *out,
                                    struct cf_err *err);

/* An approver's decision on an open request: decision "approved" or "rejected" (any rejection
 * closes the request as rejected), comment up to CF_REVIEW_COMMENT_MAX bytes. The author may not
 * review its own request (CF_EFORBIDDEN), nor may one who is not an approver of its policy.
 * CF_ECONFLICT when it is no longer open. out: the request after the decision. Notifies. */
enum cf_rc cf_approvals_review(struct cf_core *core, const struct cf_principal *who, const char *id,
                               const char *decision, const char *comment,
                               struct cf_approval_view *out, struct cf_err *err);

/* Merges an open request (its author or an approver): applies its changes as its author in one
 * transaction. Without the approvals required: CF_EFORBIDDEN, unless the policy is soft, who is an
 * org owner and bypass_reason (non-empty) says why. CF_ECONFLICT, request left open, when a key
 * moved since the request was made (the message names each key with both versions). Notifies. */
enum cf_rc cf_approvals_merge(struct cf_core *core, const struct cf_principal *who, const char *id,
                              const char *bypass_reason, struct cf_approval_view *out,
                              struct cf_err *err);

/* Withdraws an open request (its author, or a project administrator): status "closed". */
enum cf_rc cf_approvals_close(struct cf_core *core, const struct cf_principal *who, const char *id,
                              struct cf_approval_view *out, struct cf_err *err);

/* One item's values for a reveal: proposed (when the item changes the value) and current (when the
 * key exists now). Plaintext: released with cf_approval_reveal_release, which wipes them. */
struct cf_approval_reveal_item {
    bool has_proposed;
    struct cf_buf proposed;
    bool has_current;
    struct cf_buf current;
};

struct cf_approval_reveal {
    struct cf_approval_reveal_item *items; /* one per request item */
    size_t n;
};

void cf_approval_reveal_release(struct cf_approval_reveal *r);

/* The proposed and current values of a request's items, for one who may see the request and read
 * its place (CF_EFORBIDDEN otherwise). view receives the request. */
enum cf_rc cf_approvals_reveal(struct cf_core *core, const struct cf_principal *who, const char *id,
                               struct cf_approval_view *view, struct cf_approval_reveal *out,
                               struct cf_err *err);

#endif
