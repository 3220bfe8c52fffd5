/* Coffer's domain layer, shared part: the context, the caller, the single authorization check and
 * scope resolution. The operations live in projects.h (projects, environments, folders, imports,
 * tags), secrets.h (secrets with versions, references and imports), identities.h, expiry.h,
 * inventory.h, channels.h (notifications) and auditlog.h. Pure C over the store and the keyring, no
 * HTTP; JSON only where a record's form is JSON (render.h; JWT auth's key lists in identities.c).
 *
 * Every operation takes the shared context (struct cf_core, thread-safe), the caller (struct
 * cf_principal), and a struct cf_err that names the problem on failure. Not-found messages use
 * Infisical's wording so that clients written for Infisical show familiar errors. */
#ifndef CF_CORE_CORE_H
#define CF_CORE_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/keyring.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

#define CF_VALUE_MAX (64 * 1024)
#define CF_COMMENT_MAX 4096
#define CF_BATCH_MAX 1000
#define CF_REF_DEPTH_MAX 10

struct cf_throttle;
struct cf_jwks_cache;
struct cf_audit_log;
struct cf_cache;
struct cf_notifier;
struct cf_oidc;

struct cf_entra_cache;
struct cf_github_cache;
struct cf_rotator_ops;
struct cf_consumer_ops;
struct cf_dynamic_ops;
struct cf_seal;

struct cf_core {
    struct cf_store *store;     /* borrowed */
    struct cf_keyring *keyring; /* borrowed */
    /* borrowed: failed-login throttling, per (address, id) and per address (auth/universal.h) */
    struct cf_throttle *login_by_address_and_id;
    struct cf_throttle *login_by_address; /* borrowed */
    struct cf_jwks_cache *jwks;           /* borrowed: JWKS key sets for JWT auth (auth/jwks.h) */
    /* borrowed: Entra ID access tokens and GitHub installation tokens of the connections, reused
     * across sync runs and checks until shortly before they expire (provider/entra.h, github.h);
     * NULL: none (each use asks for a new one) */
    struct cf_entra_cache *entra;
    struct cf_github_cache *github;
    struct cf_audit_log *audit; /* borrowed: the audit log (core/auditlog.h); NULL: off */
    /* borrowed: rendered folder-list bodies (core/listcache.h), a wipe cf_cache (util/cache.h);
     * NULL: none are kept */
    struct cf_cache *lists;
    /* borrowed: the ids of access tokens whose signature verified, by token hash (the verified
     * cache of auth/token.h's cf_token_check, for this server's keyring); NULL: none */
    struct cf_cache *verified_tokens;
    struct cf_notifier *notifier; /* borrowed: notifications (notify/notify.h) */
    struct cf_admin_auth *admin;  /* borrowed: checks the admin token (auth/admin.h) */
    /* borrowed: the OpenID Connect relying party of single sign-on (auth/oidc.h); NULL: single
     * sign-on is not configured */
    struct cf_oidc *oidc;
    /* Wakes this server's secret-sync worker (sync/worker.h) after a change; NULL: none. */
    void (*sync_wake)(void *ctx);
    void *sync_wake_ctx;
    /* Wakes this server's rotation worker (sync/worker.h) after a change; NULL: none. */
    void (*rotation_wake)(void *ctx);
    void *rotation_wake_ctx;
    /* Browser sessions (core/users.h), frozen configuration: a session ends after idle_s seconds
     * without a request, and absolute_s seconds after it began; 0: the defaults there. */
    int64_t session_idle_s;
    int64_t session_absolute_s;
    /* Access requests (core/access.h), frozen configuration: the longest temporary access a request
     * may ask for or a grant may give, in seconds; 0: CF_ACCESS_MAX_DEFAULT_S. */
    int64_t access_max_s;
    /* The rotators and consumers the rotation engine (core/rotations.h) uses, by type; NULL:
     * provider/rotator.h's tables. Frozen configuration: a unit test sets its own before use. */
    const struct cf_rotator_ops *(*rotator_find)(const char *type);
    const struct cf_consumer_ops *(*consumer_find)(const char *type);
    /* The dynamic-secret providers core/dynamic.c and core/leases.c use, by type; NULL:
     * provider/dynamic.h's table. Frozen configuration, as rotator_find. */
    const struct cf_dynamic_ops *(*dynamic_find)(const char *type);
    /* Wakes this server's lease revocation worker (sync/worker.h); NULL: none. */
    void (*lease_wake)(void *ctx);
    void *lease_wake_ctx;
    /* borrowed: the seal of a server whose root key is split into shares (core/seal.h); NULL: the
     * root key is a file or COFFER_ROOT_KEY */
    struct cf_seal *seal;
    /* The server is sealed: this core has a store and a seal and nothing else (no keyring, no
     * admin check, no audit log), and only the routes marked while_sealed are served. */
    bool sealed;
};

enum cf_principal_kind { CF_PRINCIPAL_ADMIN = 1, CF_PRINCIPAL_IDENTITY, CF_PRINCIPAL_USER };

/* Who is calling: the admin (bootstrap token), a machine identity (access token) or a user (a
 * personal access token or a browser session; core/users.h). */
struct cf_principal {
    enum cf_principal_kind kind;
    char id[CF_UUID_LEN]; /* the identity's or the user's id; "" for the admin */
    char name[CF_NAME_MAX + 1];
    char token_id[CF_UUID_LEN]; /* the access token or personal access token used; "" otherwise */
    /* A user's: the org role ("owner", "admin", "member"), email and browser session ("" when the
     * request came with a personal access token). */
    char org_role[CF_ROLE_MAX + 1];
    char email[CF_EMAIL_MAX + 1];
    char session_id[CF_UUID_LEN];
    /* borrowed, CF_UUID_LEN bytes: where cf_authz_check writes the id of the access grant
     * (core/access.h) that allowed an action the user's memberships do not, for the audit record;
     * NULL: not noted */
    char *grant_used;
};

/* Whether who may administer the whole server: the admin, or a user whose org role is owner or
 * admin (audited as that user). */
bool cf_principal_is_admin(const struct cf_principal *who);

/* The membership of who (an identity or a user) in project_id, as cf_store_membership_get /
 * cf_store_user_membership_get give it; for a user who belongs to groups with memberships there,
 * the union of its own and theirs (the strongest role, with every membership's rules narrowed to
 * its own role), so that every authorization decision covers group access. CF_ENOTFOUND when there
 * is none (also for the admin, who needs none). Release out with cf_membership_release. */
enum cf_rc cf_principal_membership(struct cf_core *core, const struct cf_principal *who,
                                   const char *project_id, struct cf_membership *out,
                                   struct cf_err *err);

enum cf_action {
    CF_ACTION_READ = 1, /* read values */
    CF_ACTION_CREATE,
    CF_ACTION_EDIT,
    CF_ACTION_DELETE,
    CF_ACTION_ADMIN, /* manage projects, environments, folders, imports, tags */
    CF_ACTION_LEASE, /* mint a credential from a dynamic secret (core/leases.h); a role's rule-less
                        membership gives it to admins only, a rule naming it to members */
};

/* The one authorization decision: may principal perform action on project/env/path? env (borrowed)
 * and path may be NULL for project-wide actions. Rules match the environment by env->id only (its
 * slug names it in the message), so renaming environments never changes a decision. CF_OK or
 * CF_EFORBIDDEN with a message naming what was refused and where. The admin may do everything. An
 * identity may do what its membership in the project allows (role, narrowed by rules; see
 * core/authz.h); without a membership, nothing. Deny by default. */
enum cf_rc cf_authz_check(struct cf_core *core, const struct cf_principal *who,
                          enum cf_action action, const char *project_id, const struct cf_env *env,
                          const char *path, struct cf_err *err);

/* The project (id or slug, field "projectId") for who, a project administrator there:
 * CF_EVALIDATION when project is empty, the 404 or 403 of cf_scope_not_found when it does not
 * exist, the 403 of cf_authz_check when who may not administer it. Release out with
 * cf_project_release (zeroed on failure). For the engines' management calls (syncs, rotations). */
enum cf_rc cf_project_for_admin(struct cf_core *core, const struct cf_principal *who,
                                const char *project, struct cf_project *out, struct cf_err *err);

/* Whether the store answers (GET /api/status, no caller): CF_OK, or CF_EUNAVAIL naming why. */
enum cf_rc cf_core_ping(struct cf_core *core, struct cf_err *err);

/* Server-wide administration (projects, identities, memberships, users): the admin, or an org
 * owner or admin (cf_principal_is_admin). CF_EFORBIDDEN naming what (e.g. "manage identities")
 * otherwise. */
enum cf_rc cf_authz_admin(const struct cf_principal *who, const char *what, struct cf_err *err);

/* A resolved place: project (with its wrapped key), environment and folder. */
struct cf_scope {
    struct cf_project project;
    struct cf_env env;
    struct cf_folder folder;
};

/* Resolves project (id or slug), environment (slug or id) and folder path (normalised here) with
 * Infisical's 404 messages, for who about to do action there. The folder must exist. What is
 * missing is answered as cf_scope_not_found does: a caller that may not do action at the place it
 * named gets the 403 an existing place would give, not the 404 (who NULL: always the 404). This
 * does not authorize the action on an existing place: the operation asks cf_authz_check itself.
 * Release with cf_scope_release. */
enum cf_rc cf_scope_resolve(struct cf_core *core, const struct cf_principal *who,
                            enum cf_action action, const char *project, const char *env,
                            const char *path, struct cf_scope *out, struct cf_err *err);
void cf_scope_release(struct cf_scope *scope);

/* The answer for a place that does not exist (project, env and path as the caller named them; env
 * and path may be NULL for project-wide actions), err holding its 404: CF_ENOTFOUND with err kept
 * when who may do action there (the admin, a project admin, an identity whose rules cover the
 * place: it could see the place if it existed), else the CF_EFORBIDDEN that cf_authz_check gives
 * for that place, so that a limited identity cannot tell a missing place from one it may not see.
 * who NULL: CF_ENOTFOUND. */
enum cf_rc cf_scope_not_found(struct cf_core *core, const struct cf_principal *who,
                              enum cf_action action, const char *project, const char *env,
                              const char *path, struct cf_err *err);

#endif
