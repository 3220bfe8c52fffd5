/* Access requests and temporary grants (docs/approvals.md "Access requests"): a user asks for
 * temporary actions (read by default; create, edit, delete at most, never administration) in one
 * environment of a project under a path glob, for a duration, with a reason; a project
 * administrator or an org owner/admin other than the requester grants it (possibly for another
 * duration), denies it, or later revokes the grant. A grant adds to what the user's memberships
 * allow: cf_authz_check consults cf_access_grant_allows when they refuse, and a grant stops
 * matching at its end time by itself (no job) or at once when revoked. Every request and decision
 * is told on the notification channels (core/channels.h); the API audits them.
 *
 * Operations take the shared context, the caller and a struct cf_err, as core.h describes;
 * outputs are filled by the callee and left zeroed on failure. Thread-safe. */
#ifndef CF_CORE_ACCESS_H
#define CF_CORE_ACCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "store/access.h"

#define CF_ACCESS_MAX_DEFAULT_S (24LL * 60 * 60) /* the longest access, unless configured */
#define CF_ACCESS_ACTIONS_TEXT_MAX 32            /* "read,create,edit,delete" and a NUL */

/* A request to make; strings borrowed. */
struct cf_access_spec {
    const char *project;  /* id or slug */
    const char *env;      /* slug or id */
    const char *path;     /* a path glob (core/authz.h); NULL or "": "/" and everything below */
    const char *actions;  /* "read,edit", comma-separated; NULL or "": "read" */
    const char *duration; /* "2h", or seconds */
    const char *reason;   /* required, at most CF_ACCESS_REASON_MAX bytes */
};

/* Records a request by who (a user) and tells the channels. CF_EFORBIDDEN for a caller who is not
 * a user, CF_EVALIDATION naming the field (projectId, environment, secretPath, actions, duration:
 * more than 0 and at most the configured maximum, reason), CF_ENOTFOUND for an unknown project or
 * environment. */
enum cf_rc cf_access_request_create(struct cf_core *core, const struct cf_principal *who,
                                    const struct cf_access_spec *spec,
                                    struct cf_access_request *out, struct cf_err *err);

/* The request id: for its requester and for those who may decide it. CF_ENOTFOUND otherwise too,
 * so that others cannot tell which requests exist. */
enum cf_rc cf_access_request_get(struct cf_core *core, const struct cf_principal *who,
                                 const char *id, struct cf_access_request *out, struct cf_err *err);

/* Requests newest first. project (id or slug) given: that project's, for who may decide there,
 * else CF_EFORBIDDEN. Not given: every request for the admin and org owners/admins, the caller's
 * own for others. status ("pending", "granted", "denied", "revoked", or "live": grants not yet
 * ended) narrows it; NULL: any. Release *out with cf_access_request_list_release. */
enum cf_rc cf_access_request_list(struct cf_core *core, const struct cf_principal *who,
                                  const char *project, const char *status,
                                  struct cf_access_request_list *out, struct cf_err *err);

/* Grants the pending request id from now for duration (NULL or "": the duration asked for; bounded
 * as in cf_access_request_create), with comment (may be NULL). CF_EFORBIDDEN when who may not
 * decide in its project or is its requester, CF_ECONFLICT when it is no longer pending. *out is
 * the request as decided. */
enum cf_rc cf_access_request_grant(struct cf_core *core, const struct cf_principal *who,
                                   const char *id, const char *duration, const char *comment,
                                   struct cf_access_request *out, struct cf_err *err);

/* Denies the pending request id (as cf_access_request_grant decides who may). */
enum cf_rc cf_access_request_deny(struct cf_core *core, const struct cf_principal *who,
                                  const char *id, const char *comment,
                                  struct cf_access_request *out, struct cf_err *err);

/* Ends the grant id at once: by who may decide in its project, or by its own user. CF_ECONFLICT
 * when it is not granted, or already ended. */
enum cf_rc cf_access_request_revoke(struct cf_core *core, const struct cf_principal *who,
                                    const char *id, const char *comment,
                                    struct cf_access_request *out, struct cf_err *err);

/* Whether a live grant of the user who allows action (not CF_ACTION_ADMIN) in env at path of
 * project_id. When one does, its id is written to who->grant_used (when set). Failures to read
 * the store allow nothing. */
bool cf_access_grant_allows(struct cf_core *core, const struct cf_principal *who,
                            enum cf_action action, const char *project_id, const struct cf_env *env,
                            const char *path);

/* The actions of mask as "read,edit" into out. */
void cf_access_actions_text(uint32_t mask, char out[CF_ACCESS_ACTIONS_TEXT_MAX]);

/* The status to show: the stored one, or "expired" for a grant whose end has passed. */
const char *cf_access_request_state(const struct cf_access_request *req, int64_t now_ms);

#endif
