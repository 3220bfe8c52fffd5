/* Dynamic secrets (docs/dynamic-secrets.md): at a place (project, environment, folder) like other
 * secrets, a provider (provider/dynamic.h: "postgres", ...), the app connection it authenticates
 * with (sealed in app_connections, never returned), its settings (params, checked by the
 * provider) and a default and maximum TTL for the leases issued from it (core/leases.h), in the
 * shapes of Infisical's /api/v1/dynamic-secrets.
 *
 * Creating one aims an organisation-wide connection, so it is the admin's (or an org admin's), as
 * for syncs and rotations; changing and removing one is a project administrator's right at its
 * place; reading one (its settings, no credential) needs the right to lease from it or to
 * administer the place. Removing one revokes its active leases first and is refused (CF_ECONFLICT)
 * while one of them cannot be revoked.
 *
 * Outputs are filled by the callee and left zeroed on failure; lists are released with their
 * _release. Thread-safe. */
#ifndef CF_CORE_DYNAMIC_H
#define CF_CORE_DYNAMIC_H

#include <jansson.h>

#include "core/core.h"
#include "store/dynamic.h"

#define CF_DYNAMIC_TTL_MAX_MS (366LL * 24 * 3600 * 1000)
#define CF_DYNAMIC_TTL_MIN_MS 1000
#define CF_DYNAMIC_TTL_DEFAULT_MS (3600LL * 1000)

/* A place and a name, as the caller gives them (borrowed). */
struct cf_dynamic_where {
    const char *project;     /* id or slug */
    const char *environment; /* slug */
    const char *path;        /* NULL: "/" */
    const char *name;
};

/* A new dynamic secret or a change to one (NULL / -1: keep, or the default on create). */
struct cf_dynamic_spec {
    const char *type; /* a provider's type; on update, only the current one */
    const char
        *connection_id;     /* on update, only the current one (a client sends back what it read) */
    const json_t *params;   /* required on create; replaces the whole object on update */
    int64_t default_ttl_ms; /* -1: keep (one hour on create, capped by max) */
    int64_t max_ttl_ms;     /* -1: keep (the default TTL on create... at least it) */
    const char *new_name;   /* update only; NULL: keep */
};

/* A dynamic secret as shown: the row and the place's slugs. */
struct cf_dynamic_view {
    struct cf_dynamic_secret ds;
    char project_slug[CF_SLUG_MAX + 1];
    char env_slug[CF_SLUG_MAX + 1];
};

struct cf_dynamic_view_list {
    struct cf_dynamic_view *items;
    size_t n;
};

void cf_dynamic_view_list_release(struct cf_dynamic_view_list *l);

/* The provider of type: core->dynamic_find's, else provider/dynamic.h's; NULL when unknown. */
const struct cf_dynamic_ops *cf_dynamic_provider(struct cf_core *core, const char *type);

/* Creates a dynamic secret named where->name at where's place. CF_EVALIDATION naming the field (an
 * unknown type or a connection of another app as "provider.type" / "provider.inputs.connectionId",
 * params the provider refuses, a TTL out of range or a default over the maximum, a bad name);
 * CF_EEXIST for a name taken at the place; CF_EFORBIDDEN for a caller not an admin. */
enum cf_rc cf_dynamic_create(struct cf_core *core, const struct cf_principal *who,
                             const struct cf_dynamic_where *where,
                             const struct cf_dynamic_spec *spec, struct cf_dynamic_view *out,
                             struct cf_err *err);

/* The dynamic secrets of where's place (name ignored), by name. */
enum cf_rc cf_dynamic_list(struct cf_core *core, const struct cf_principal *who,
                           const struct cf_dynamic_where *where, struct cf_dynamic_view_list *out,
                           struct cf_err *err);

/* The dynamic secret where names, for who (it may lease from it or administer its place); action
 * is the right asked for (CF_ACTION_LEASE to lease, CF_ACTION_ADMIN to change it). */
enum cf_rc cf_dynamic_get(struct cf_core *core, const struct cf_principal *who,
                          const struct cf_dynamic_where *where, enum cf_action action,
                          struct cf_dynamic_view *out, struct cf_err *err);

/* The dynamic secret id, without authorization (for the lease engine). */
enum cf_rc cf_dynamic_get_by_id(struct cf_core *core, const char *id, struct cf_dynamic_view *out,
                                struct cf_err *err);

/* Changes name, params or TTLs (leases already issued keep their ends). */
enum cf_rc cf_dynamic_update(struct cf_core *core, const struct cf_principal *who,
                             const struct cf_dynamic_where *where,
                             const struct cf_dynamic_spec *change, struct cf_dynamic_view *out,
                             struct cf_err *err);

/* Revokes the active leases of the dynamic secret where names (owner: the claim owner of these
 * revocations), then removes it; *out is what it was. CF_ECONFLICT naming the lease whose
 * revocation failed (that lease is left to the revocation worker, which retries it). */
enum cf_rc cf_dynamic_delete(struct cf_core *core, const struct cf_principal *who,
                             const struct cf_dynamic_where *where, const char *owner,
                             struct cf_dynamic_view *out, struct cf_err *err);

#endif
