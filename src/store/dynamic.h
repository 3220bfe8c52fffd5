/* The store's part of dynamic secrets (docs/dynamic-secrets.md): the dynamic secrets (a provider,
 * an app connection and its settings at a place) and their leases (one issued credential each, with
 * the state of its revocation). Nothing secret is written here: a lease's credential goes to the
 * caller once, and the connection's credentials stay sealed in app_connections.
 *
 * A lease is revoked by one node at a time: cf_store_lease_claim takes it for a short claim when it
 * is active (and, for the revocation worker, expired and due for an attempt), and
 * cf_store_lease_save writes the outcome only while the claim is held, so that two nodes never both
 * revoke one lease and a node whose claim ran out cannot overwrite another's result. */
#ifndef CF_STORE_DYNAMIC_H
#define CF_STORE_DYNAMIC_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"
#include "util/id.h"

#define CF_DYNAMIC_TYPE_MAX 48
#define CF_DYNAMIC_PARAMS_MAX 8192
#define CF_LEASE_ERROR_MAX 512
#define CF_LEASE_PROVIDER_ID_MAX 128 /* as provider/dynamic.h CF_LEASED_ID_MAX */

struct cf_dynamic_secret {
    char id[CF_UUID_LEN];
    char project_id[CF_UUID_LEN];
    char env_id[CF_UUID_LEN];
    char folder_path[CF_PATH_MAX + 1];
    char name[CF_NAME_MAX + 1];
    char type[CF_DYNAMIC_TYPE_MAX + 1];
    char connection_id[CF_UUID_LEN];
    char params[CF_DYNAMIC_PARAMS_MAX + 1]; /* JSON object */
    int64_t default_ttl_ms;
    int64_t max_ttl_ms;
    int64_t created_at;
    int64_t updated_at;
};

struct cf_dynamic_secret_list {
    struct cf_dynamic_secret *items;
    size_t n;
};

struct cf_lease {
    char id[CF_UUID_LEN];
    char dynamic_secret_id[CF_UUID_LEN];
    char project_id[CF_UUID_LEN];
    char actor_kind[16]; /* "identity", "user", "admin" */
    char actor_id[CF_UUID_LEN];
    char actor_name[CF_NAME_MAX + 1];
    int64_t created_at;
    int64_t expires_at;
    char state[16]; /* "active", "revoked", "failed" */
    char provider_id[CF_LEASE_PROVIDER_ID_MAX];
    int64_t revoke_attempts;
    int64_t next_attempt_at;
    char last_error[CF_LEASE_ERROR_MAX + 1];
    bool notified;
    int64_t revoked_at;
    char claim_owner[CF_UUID_LEN];
    int64_t claim_until;
};

struct cf_lease_list {
    struct cf_lease *items;
    size_t n;
};

void cf_dynamic_secret_list_release(struct cf_dynamic_secret_list *l);
void cf_lease_list_release(struct cf_lease_list *l);

/* Stores a new dynamic secret. CF_EEXIST when its place already has one of that name. */
enum cf_rc cf_store_dynamic_create(struct cf_store *st, const struct cf_dynamic_secret *ds,
                                   struct cf_err *err);
/* The dynamic secret id; CF_ENOTFOUND. */
enum cf_rc cf_store_dynamic_get(struct cf_store *st, const char *id, struct cf_dynamic_secret *out,
                                struct cf_err *err);
/* The dynamic secret named name at (project_id, env_id, folder_path); CF_ENOTFOUND naming it. */
enum cf_rc cf_store_dynamic_find(struct cf_store *st, const char *project_id, const char *env_id,
                                 const char *folder_path, const char *name,
                                 struct cf_dynamic_secret *out, struct cf_err *err);
/* The dynamic secrets of one folder, by name. */
enum cf_rc cf_store_dynamic_list(struct cf_store *st, const char *project_id, const char *env_id,
                                 const char *folder_path, struct cf_dynamic_secret_list *out,
                                 struct cf_err *err);
/* Replaces name, params and TTLs. CF_EEXIST for a name taken at the place, CF_ENOTFOUND. */
enum cf_rc cf_store_dynamic_update(struct cf_store *st, const struct cf_dynamic_secret *ds,
                                   struct cf_err *err);
/* Deletes the dynamic secret and its leases' rows. CF_ECONFLICT (nothing deleted) while a lease of
 * it is active; CF_ENOTFOUND. */
enum cf_rc cf_store_dynamic_delete(struct cf_store *st, const char *id, struct cf_err *err);

/* Stores a new lease. */
enum cf_rc cf_store_lease_create(struct cf_store *st, const struct cf_lease *lease,
                                 struct cf_err *err);
/* The lease id; CF_ENOTFOUND "Lease with ID 'x' not found". */
enum cf_rc cf_store_lease_get(struct cf_store *st, const char *id, struct cf_lease *out,
                              struct cf_err *err);
/* Leases, newest first, at most limit: of dynamic secret dynamic_secret_id when non-NULL, of the
 * actor actor_id when non-NULL; active ones only when active_only. */
enum cf_rc cf_store_lease_list(struct cf_store *st, const char *dynamic_secret_id,
                               const char *actor_id, bool active_only, size_t limit,
                               struct cf_lease_list *out, struct cf_err *err);
/* Records what a lease's create made at the provider (provider_id), or deletes the lease
 * (provider_id NULL: the create failed and made nothing). credential_end (Unix ms; 0: none) is the
 * end the credential carries at the provider: when it is earlier than the lease's end, the lease's
 * end moves to it, so that a lease never outlives its credential. */
enum cf_rc cf_store_lease_created(struct cf_store *st, const char *id, const char *provider_id,
                                  int64_t credential_end, struct cf_err *err);
/* Ids of active leases whose end has come at now, whose next attempt is due and which no live
 * claim holds; at most limit (ids: limit slots; *n the count). */
enum cf_rc cf_store_leases_due(struct cf_store *st, int64_t now, size_t limit,
                               char (*ids)[CF_UUID_LEN], size_t *n, struct cf_err *err);
/* Claims lease id for owner until now + claim_ms when it is active and no live claim holds it, and
 * (unless any_time) when it is due as cf_store_leases_due says. *claimed says whether it was; out
 * (when claimed) is the row as claimed. */
enum cf_rc cf_store_lease_claim(struct cf_store *st, const char *id, const char *owner, int64_t now,
                                int64_t claim_ms, bool any_time, bool *claimed,
                                struct cf_lease *out, struct cf_err *err);
/* Writes lease's end and the state of its revocation (expires_at, state, revoke_attempts,
 * next_attempt_at, last_error, notified, revoked_at) and ends the claim, when owner holds it.
 * CF_ECONFLICT otherwise. */
enum cf_rc cf_store_lease_save(struct cf_store *st, const struct cf_lease *lease, const char *owner,
                               struct cf_err *err);

#endif
