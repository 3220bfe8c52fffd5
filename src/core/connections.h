/* App connections (docs/syncs.md "Connections"): the credentials Coffer holds to reach another
 * system (Azure DevOps, Azure Key Vault, GitHub), in the shapes of Infisical's app connections.
 *
 * A connection is organisation-wide: every operation on it is server administration, the admin
 * only (cf_authz_admin, "manage app connections"). Its credentials are checked per app and method
 * (the required fields are named in errors, a PEM is parsed, the whole is size-capped), sealed at
 * rest with the server's auth key (crypto/serverkey.h, bound to the connection's id) and never
 * given back: what callers see is the non-secret part (app, method, tenant and client ids, the
 * organisation name, the last four characters of the secret) and the credential's expiry, given by
 * the admin or learnt by a check. Every use is audited: create, update, delete, check, and every
 * time the sync engine opens a connection (cf_connection_open). A connection's credential expiry is
 * an item of the expiry query (core/expiry.h) and gets the expiry notices. */
#ifndef CF_CORE_CONNECTIONS_H
#define CF_CORE_CONNECTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"
#include "provider/provider.h"
#include "store/connections.h"

#define CF_CONN_CREDENTIALS_MAX (16 * 1024) /* the credentials object, as compact JSON */

/* A connection opened for the engine: the credentials in plaintext, for one run. */
struct cf_conn_opened {
    char id[CF_UUID_LEN];
    char name[CF_NAME_MAX + 1];
    char app[CF_CONN_APP_MAX];
    char method[CF_CONN_METHOD_MAX];
    int64_t expires_at;           /* the credential's expiry, Unix ms; 0: unknown */
    json_t *credentials;          /* owned: plaintext; cf_connection_close wipes and frees it */
    struct cf_provider_conn conn; /* points into the fields above and the core's token caches;
                                     pass &opened.conn to the providers */
};

/* Opens the connection id for the sync engine: unseals its credentials into out and records the
 * use in the audit log (action "app-connections.open", actor "system"). No authorization: the
 * engine runs syncs that an authorized caller created. CF_ENOTFOUND in Infisical's wording,
 * CF_ECRYPTO when the credentials do not open, CF_EUNAVAIL when the audit log is fail-closed and
 * cannot record the use. On failure out is left closed (cf_connection_close on it is a no-op).
 * Thread-safe. */
enum cf_rc cf_connection_open(struct cf_core *core, const char *id, struct cf_conn_opened *out,
                              struct cf_err *err);

/* Wipes and frees the plaintext credentials and clears c; safe on a zeroed or closed c. */
void cf_connection_close(struct cf_conn_opened *c);

/* struct cf_connection (the non-secret description the API shows) and its list are in
 * store/connections.h. */

/* The non-secret description of the connection id, without authorization and without audit (it
 * reads no credential): for the engine, e.g. to check that a sync's connection exists and is of
 * the destination's app. CF_ENOTFOUND in Infisical's wording. */
enum cf_rc cf_connection_lookup(struct cf_core *core, const char *id, struct cf_connection *out,
                                struct cf_err *err);

/* The apps and their methods, for validation and help: true when app (and, if non-NULL, method)
 * is one Coffer knows. */
bool cf_connection_app_known(const char *app, const char *method);

/* Checks credentials (borrowed) for app and method: an object with the required fields (named in
 * the message: "credentials.clientSecret is required for azure-key-vault client-secret"), of string
 * type, within the size cap, a PEM that parses where one is given. CF_EVALIDATION naming the field
 * otherwise; never quotes a credential value. */
enum cf_rc cf_connection_validate(const char *app, const char *method, const json_t *credentials,
                                  struct cf_err *err);

/* What to create: strings borrowed, credentials borrowed (the caller wipes it). */
struct cf_connection_spec {
    const char *app;
    const char *method;
    const char *name;
    const char *description; /* NULL: "" */
    const json_t *credentials;
    int64_t expires_at; /* Unix ms the admin gives for the credential; 0: none given */
};

/* Validates, seals and stores a new connection; *out is its non-secret description. CF_EEXIST
 * when the name is taken, CF_EVALIDATION naming the field. Admin only. */
enum cf_rc cf_connections_create(struct cf_core *core, const struct cf_principal *who,
                                 const struct cf_connection_spec *spec, struct cf_connection *out,
                                 struct cf_err *err);

/* Every connection, or (app non-NULL) those of one app, by name. Admin only. */
enum cf_rc cf_connections_list(struct cf_core *core, const struct cf_principal *who,
                               const char *app, struct cf_connection_list *out, struct cf_err *err);

/* The connection id (of app, when app is non-NULL: another app's connection is not found).
 * Admin only. */
enum cf_rc cf_connections_get(struct cf_core *core, const struct cf_principal *who, const char *app,
                              const char *id, struct cf_connection *out, struct cf_err *err);

/* A change: NULL fields are kept. credentials, when given, replace the whole credentials object
 * (validated for the connection's method, or for method when it changes too). expires_at: -1
 * keeps, 0 clears, else the new expiry. */
struct cf_connection_update {
    const char *name;
    const char *description;
    const char *method;
    const json_t *credentials;
    int64_t expires_at;
};

enum cf_rc cf_connections_update(struct cf_core *core, const struct cf_principal *who,
                                 const char *app, const char *id,
                                 const struct cf_connection_update *change,
                                 struct cf_connection *out, struct cf_err *err);

/* True when the credentials of app's method have a field named field that holds a secret (a
 * token, client secret or password). */
bool cf_connection_secret_field(const char *app, const char *method, const char *field);

/* Replaces, in the credentials of connection id, the value of each field of values (an object of
 * strings, borrowed) that the connection's method has, and sets its expiry to expires_at (0:
 * keep): a rotation giving a connection the credential it renewed. At least the field required
 * must be one of the method's (CF_EVALIDATION naming it otherwise). Otherwise as
 * cf_connections_update (admin only, audited by the caller); the plaintext copies are wiped. */
enum cf_rc cf_connection_replace_fields(struct cf_core *core, const struct cf_principal *who,
                                        const char *id, const json_t *values, const char *required,
                                        int64_t expires_at, struct cf_connection *out,
                                        struct cf_err *err);

/* Deletes the connection; *out (may be NULL) is what it was. Admin only. */
enum cf_rc cf_connections_delete(struct cf_core *core, const struct cf_principal *who,
                                 const char *app, const char *id, struct cf_connection *out,
                                 struct cf_err *err);

/* Checks the connection's credential against its system (cf_provider_check), records the result
 * and time, and the expiry the system reported (when it gives one). CF_OK with *report (a new JSON
 * object, the provider's report) and *out updated; otherwise the provider's error, recorded too
 * (*out then holds the recorded failure). Admin only. */
enum cf_rc cf_connections_check(struct cf_core *core, const struct cf_principal *who,
                                const char *app, const char *id, json_t **report,
                                struct cf_connection *out, struct cf_err *err);

#endif
