/* The store's part of access requests and temporary grants (docs/approvals.md "Access requests"):
 * one row per request, which a decision turns into a grant (status "granted", from starts_at until
 * ends_at), a denial or, later, a revoked grant. Authorization reads a user's grants in a project
 * through cf_store_access_grants, kept in the lookup cache (a decision bumps its change counter);
 * whether a grant is still live is decided by the caller against its clock, so that a grant expires
 * without any job. */
#ifndef CF_STORE_ACCESS_H
#define CF_STORE_ACCESS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

#define CF_ACCESS_REASON_MAX 512 /* bytes of a request's reason or a decision's comment */
#define CF_ACCESS_STATUS_MAX 15

/* One access request. user_email and env_slug are read with it (joined), never written. */
struct cf_access_request {
    char id[CF_UUID_LEN];
    char user_id[CF_UUID_LEN];
    char user_email[CF_EMAIL_MAX + 1];
    char project_id[CF_UUID_LEN];
    char env_id[CF_UUID_LEN];
    char env_slug[CF_SLUG_MAX + 1];
    char path_glob[CF_PATH_MAX + 1];
    uint32_t actions;   /* CF_ACTION_BIT mask (core/authz.h) */
    int64_t duration_s; /* asked for; a grant may set another */
    char reason[CF_ACCESS_REASON_MAX + 1];
    char status[CF_ACCESS_STATUS_MAX + 1]; /* "pending", "granted", "denied", "revoked" */
    int64_t created_at;
    char decided_by[CF_EMAIL_MAX + 1]; /* "" while pending */
    int64_t decided_at;
    char comment[CF_ACCESS_REASON_MAX + 1];
    int64_t starts_at; /* a grant's: 0 otherwise */
    int64_t ends_at;
    char revoked_by[CF_EMAIL_MAX + 1];
    int64_t revoked_at;
};

struct cf_access_request_list {
    struct cf_access_request *items;
    size_t n;
};

void cf_access_request_list_release(struct cf_access_request_list *list);

/* What authorization needs of a grant. */
struct cf_access_grant {
    char id[CF_UUID_LEN];
    char env_id[CF_UUID_LEN];
    char path_glob[CF_PATH_MAX + 1];
    uint32_t actions;
    int64_t ends_at;
};

struct cf_access_grant_list {
    struct cf_access_grant *items; /* heap; NULL when none */
    size_t n;
};

void cf_access_grant_list_release(struct cf_access_grant_list *list);

/* Stores a new request (status "pending"; created_at 0: now). CF_ENOTFOUND when its user, project
 * or environment is gone, CF_EINVAL for an unterminated field. Thread-safe. */
enum cf_rc cf_store_access_request_create(struct cf_store *st, const struct cf_access_request *req,
                                          struct cf_err *err);

/* The request id into *out. CF_ENOTFOUND naming it. Thread-safe. */
enum cf_rc cf_store_access_request_get(struct cf_store *st, const char *id,
                                       struct cf_access_request *out, struct cf_err *err);

/* Which requests cf_store_access_request_list returns, newest first; each filter NULL or "" when
 * unused. live_at > 0 keeps only grants live at that time (status "granted", ends_at > live_at). */
struct cf_access_filter {
    const char *user_id;
    const char *project_id;
    const char *status;
    int64_t live_at;
    size_t limit; /* 0: 1000 */
};

/* Release *out with cf_access_request_list_release. Thread-safe. */
enum cf_rc cf_store_access_request_list(struct cf_store *st, const struct cf_access_filter *filter,
                                        struct cf_access_request_list *out, struct cf_err *err);

/* Writes a decision: req's status, decided_by/at, comment, starts_at/ends_at and revoked_by/at,
 * only while the stored status is still from_status (one statement), so that two deciders cannot
 * both decide. CF_ECONFLICT naming the status it has when it changed meanwhile, CF_ENOTFOUND when
 * it is gone. Thread-safe. */
enum cf_rc cf_store_access_request_decide(struct cf_store *st, const struct cf_access_request *req,
                                          const char *from_status, struct cf_err *err);

/* The grants (status "granted", whatever their end) of user_id in project_id, from the lookup
 * cache when it holds them: on the authorization path. The caller compares ends_at with its clock.
 * Release *out with cf_access_grant_list_release. Thread-safe. */
enum cf_rc cf_store_access_grants(struct cf_store *st, const char *user_id, const char *project_id,
                                  struct cf_access_grant_list *out, struct cf_err *err);

#endif
