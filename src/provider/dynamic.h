/* Dynamic secrets at the providers: credentials Coffer creates on request, each for one lease,
 * and removes when the lease ends.
 *
 * A dynamic provider owns one kind of short-lived credential at its system (a PostgreSQL or
 * MySQL/MariaDB login, an Entra ID application's client secret through Microsoft Graph): it
 * creates one with an end date, moves that end date (renewal), and revokes it. Like the rotators
 * of rotator.h it knows nothing of the store or of Coffer's projects: the lease engine
 * (core/leases.c) keeps the state, records every step and calls one step at a time, so that each
 * call is repeatable after a crash (revoke of a credential already gone is CF_OK).
 *
 * The connection is an app connection of connection_app (provider.h, core/connections.c); a
 * dynamic secret's own settings (statements, granted role, application id, ...) come as params, a
 * JSON object that config_check validated when the dynamic secret was created or updated.
 *
 * Return codes as in provider.h: CF_EUNAUTH the system refused the connection's credential,
 * CF_EFORBIDDEN a permission is missing (the message names it), CF_ENOTFOUND the object does not
 * exist, CF_EVALIDATION a configuration the system cannot take, CF_ERATELIMIT, CF_EIO (unreachable:
 * the engine retries with backoff), CF_ENOMEM. No credential, secret value or URL query ever
 * appears in err. */
#ifndef CF_PROVIDER_DYNAMIC_H
#define CF_PROVIDER_DYNAMIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "provider/provider.h"
#include "provider/rotator.h"
#include "util/err.h"

/* The longest provider-side name of a leased credential (a role or user name, an Entra keyId). */
#define CF_LEASED_ID_MAX 128

/* The lease a call works for. */
struct cf_lease_ref {
    const char *id;          /* the lease's UUID */
    const char *secret_name; /* the dynamic secret's name within its folder */
    int64_t expires_at;      /* Unix ms: the lease's end (create, renew) */
};

/* One created credential. */
struct cf_leased_cred {
    char id[CF_LEASED_ID_MAX]; /* the system's name for it (username, Entra keyId): what revoke
                                  takes, stored with the lease (not secret) */
    json_t *fields;            /* owned: every value handed to the caller by field name
                                  ({"DB_USERNAME": "...", "DB_PASSWORD": "..."} for databases,
                                  {"CLIENT_ID", "CLIENT_SECRET", "TENANT_ID"} for Entra); secret
                                  values included, so it is wiped on release */
    int64_t expires_at;        /* Unix ms the credential itself ends at the system; 0: no end of
                                  its own (only revocation ends it) */
};

/* Wipes the string values of c->fields, frees them and zeroes c; safe on a zeroed struct. */
void cf_leased_cred_release(struct cf_leased_cred *c);

/* For a config_check: CF_EVALIDATION (field "parameters") unless params is an object whose every
 * key is one of names (NULL-terminated); the message names the key, type and the names. */
enum cf_rc cf_dynamic_params_known(const json_t *params, const char *type, const char *const *names,
                                   struct cf_err *err);

struct cf_dynamic_ops {
    const char *type;           /* Infisical's provider slug: "sql-database" with a "client" of
                                   "postgres" or "mysql" is split here into "postgres", "mysql";
                                   "azure-entra-id-app" for Entra */
    const char *connection_app; /* the app of the connection it authenticates with; NULL: none
                                   (the calls then get conn NULL) */
    const char *const *fields;  /* the field names create fills, NULL-terminated */
    /* Checks a dynamic secret's params object: CF_EVALIDATION naming the field. */
    enum cf_rc (*config_check)(const json_t *params, struct cf_err *err);
    /* Creates a credential for ref, ending at ref->expires_at where the system can carry an end. */
    enum cf_rc (*create)(const struct cf_provider_conn *conn, const json_t *params,
                         const struct cf_lease_ref *ref, struct cf_leased_cred *out,
                         struct cf_err *err);
    /* true: the credential create makes carries the lease's end as its own end at the system
     * (cf_leased_cred.expires_at), and renew is NULL because the system cannot move that end (an
     * Entra ID client secret's endDateTime). The engine then never moves a lease's end later than
     * it is, so that a lease never outlives its credential. */
    bool credential_end_fixed;
    /* Moves the end of credential id to ref->expires_at; NULL where the system keeps no end or
     * cannot move it (the engine then only moves the lease's own end, see credential_end_fixed). */
    enum cf_rc (*renew)(const struct cf_provider_conn *conn, const json_t *params,
                        const struct cf_lease_ref *ref, const char *id, struct cf_err *err);
    /* Removes credential id; CF_OK when it is already gone (repeatable). id is "" for a lease whose
     * create never returned (the process died, or the store failed after it): a provider that can
     * tell from ref what create would have made (a name derived from ref->id) removes that, else it
     * answers CF_OK. */
    enum cf_rc (*revoke)(const struct cf_provider_conn *conn, const json_t *params,
                         const struct cf_lease_ref *ref, const char *id, struct cf_err *err);
    /* Describes, without calling anything, the calls create, renew and revoke would make (for the
     * docs and `--dry-run`); same callback as a rotation plan. */
    void (*plan)(const struct cf_provider_conn *conn, const json_t *params,
                 const struct cf_lease_ref *ref, cf_rotation_plan_fn fn, void *ctx);
};

/* The dynamic provider named type, or NULL. */
const struct cf_dynamic_ops *cf_dynamic_find(const char *type);

#endif
