/* The inventory: every secret that exists, where it lives (project, environment,
 * folder path), how many versions it has, when it last changed, when it expires and who last read
 * it; and for each environment which machine identities, users and groups of users can read in it,
 * with the path globs their rules narrow them to: the blast radius a reviewer needs. Pure C over
 * the store: nothing here opens a sealed value (the store's secret_inventory reads no value at
 * all).
 *
 * Last read: from the audit log (core/auditlog.h): the newest successful secrets.read, .list or
 * .versions event that names the secret's environment, path and key (the server records every value
 * that leaves it where it lives: read through a reference, an import or a recursive list, too).
 * With the audit log off, or no such event, last_read_known is false.
 *
 * Visibility: the admin sees every project (or the one asked for), every environment, every secret
 * and every reader. A machine identity sees the projects it is a member of and can read something
 * in, the environments it can read somewhere in, the secrets it may read (cf_authz_check, one
 * decision per folder), and itself as the only reader: the other memberships of a project are the
 * admin's to see (as everywhere else in the API), so readers_complete is false for it. Who last
 * read a secret is named to the admin, to a project admin (role admin, no rules) and to the reader
 * itself; anyone else sees when it was last read, not by whom. */
#ifndef CF_CORE_INVENTORY_H
#define CF_CORE_INVENTORY_H

#include "core/core.h"
#include "store/leaks.h"

/* The glob that matches every path of an environment ("/" and a double star). */
#define CF_INVENTORY_ALL_PATHS "/**"

/* A destination that holds a copy of a secret: what a secret sync (core/syncs.h) last pushed. */
struct cf_inventory_copy {
    char sync_id[CF_UUID_LEN];
    char sync_name[CF_NAME_MAX + 1];
    char destination[32];      /* "azure-devops", "azure-key-vault", "github", "file" */
    char name[CF_KEY_MAX + 1]; /* the name there */
    int64_t version;           /* the version pushed */
    int64_t pushed_at;
};

struct cf_inventory_secret {
    char secret_id[CF_UUID_LEN];
    char path[CF_PATH_MAX + 1];
    char key[CF_KEY_MAX + 1];
    int64_t version;              /* the current version */
    int64_t version_count;        /* versions stored */
    int64_t created_at;           /* version 1 */
    int64_t last_changed_at;      /* when the current version was written */
    int64_t expires_at;           /* 0: no expiry */
    int64_t reminder_repeat_days; /* 0: no rotation reminder */
    /* The last read the audit log knows of; false and the rest zero when none. */
    bool last_read_known;
    int64_t last_read_at;
    /* "admin" or "identity" (the audit event's actor kind); "" (and id and name "") when the
     * caller may not see who it was: see "Visibility" above. */
    char last_read_by_kind[16];
    char last_read_by_id[CF_UUID_LEN];
    char last_read_by_name[CF_NAME_MAX + 1];
    /* Marked leaked at the current version (core/leaks.h); the rest zero / "" when not. */
    bool leaked;
    int64_t leaked_at;
    char leak_source[CF_LEAK_SOURCE_MAX + 1];
    char leaked_by_kind[16];
    char leaked_by_name[CF_NAME_MAX + 1];
    /* Every destination that holds a copy (heap; by sync name). */
    struct cf_inventory_copy *copies;
    size_t n_copies;
};

/* A machine identity, a user or a group of users that can read somewhere in an environment
 * (a user reads also through its groups, which are listed as readers themselves). */
struct cf_inventory_reader {
    char kind[16]; /* "identity", "user", "group" */
    char identity_id[CF_UUID_LEN];
    char identity_name[CF_NAME_MAX + 1]; /* an identity's or group's name, a user's email */
    char role[CF_ROLE_MAX + 1];
    /* The globs of the paths it may read: just CF_INVENTORY_ALL_PATHS when the whole environment
     * (no rules, or a rule without a path), else the globs of its read rules for the environment,
     * in rule order, without duplicates. Heap. */
    char (*paths)[CF_PATH_MAX + 1];
    size_t n_paths;
};

struct cf_inventory_env {
    char id[CF_UUID_LEN];
    char slug[CF_SLUG_MAX + 1];
    char name[CF_NAME_MAX + 1];
    struct cf_inventory_reader *readers; /* heap; by identity name */
    size_t n_readers;
    struct cf_inventory_secret *secrets; /* heap; by path, then key */
    size_t n_secrets;
};

struct cf_inventory_project {
    char id[CF_UUID_LEN];
    char slug[CF_SLUG_MAX + 1];
    char name[CF_NAME_MAX + 1];
    struct cf_inventory_env *envs; /* heap; in position order */
    size_t n_envs;
};

struct cf_inventory {
    struct cf_inventory_project *projects; /* heap; in the store's project order */
    size_t n_projects;
    bool readers_complete; /* false: only the caller itself is listed among the readers */
};

/* Builds the inventory that who may see, of one project (id or slug) or, with project NULL, of
 * every project. CF_ENOTFOUND "Project with ID 'x' not found" for an unknown project or one an
 * identity is not a member of; CF_EFORBIDDEN naming the identity when it is a member of the named
 * project but can read nothing there. out is released with cf_inventory_release (zeroed on
 * failure). Thread-safe. */
enum cf_rc cf_inventory_build(struct cf_core *core, const struct cf_principal *who,
                              const char *project, struct cf_inventory *out, struct cf_err *err);

/* The inventory as the machine identity identity_id (borrowed) would see it with its own token:
 * "what can this identity read", for an administrator's dashboard or audit. who must be the admin
 * or an org owner or admin (CF_EFORBIDDEN otherwise); CF_ENOTFOUND for an unknown identity; then as
 * cf_inventory_build for that identity (readers_complete false, only that identity among the
 * readers, the last reader named only when it was that identity). Thread-safe. */
enum cf_rc cf_inventory_build_for_identity(struct cf_core *core, const struct cf_principal *who,
                                           const char *identity_id, const char *project,
                                           struct cf_inventory *out, struct cf_err *err);

void cf_inventory_release(struct cf_inventory *inventory);

#endif
