/* Rotations at the providers: credentials Coffer renews by itself.
 *
 * A rotator owns one kind of credential at its system (an Entra ID application's client secret
 * through Microsoft Graph, a PostgreSQL login's password): it issues a new one, proves it works,
 * and revokes an old one. A consumer is a system that holds a copy of the credential and must be
 * given each new one (an Azure DevOps service connection): it takes the new value and proves that
 * it works with it. Like the destinations of provider.h they know nothing of the store or of
 * Coffer's projects: the rotation engine (core/rotations.c) keeps the state, records every step
 * and calls them one step at a time, so that each call is repeatable after a crash.
 *
 * Return codes as in provider.h: CF_EUNAUTH the system refused the connection's credential,
 * CF_EFORBIDDEN a permission is missing (the message names it), CF_ENOTFOUND the object does not
 * exist, CF_EVALIDATION a configuration the system cannot take, CF_ERATELIMIT, CF_EIO, CF_ENOMEM.
 * No credential, secret value or URL query ever appears in err. */
#ifndef CF_PROVIDER_ROTATOR_H
#define CF_PROVIDER_ROTATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "provider/provider.h"
#include "util/err.h"

/* The longest provider-side credential id (an Entra keyId is a UUID; a PostgreSQL role name at most
 * 63 bytes). */
#define CF_ROTATED_ID_MAX 128

/* The rotation a call works for: names what it issues, so that a credential found at the provider
 * can be traced to the rotation and generation that made it. */
struct cf_rotation_ref {
    const char *id;      /* the rotation's UUID */
    const char *name;    /* its name within the project */
    int64_t generation;  /* 1 for the first credential the rotation issues, then 2, 3, ... */
    int64_t lifetime_ms; /* the lifetime asked for the new credential; 0: the provider's default */
    const char *current; /* the id of the credential in use now ("" before the first rotation) */
};

/* One issued credential. */
struct cf_rotated_cred {
    char id[CF_ROTATED_ID_MAX]; /* the system's name for it: Entra keyId, PostgreSQL role */
    char *secret;               /* heap, wiped by cf_rotated_cred_release: secretText, password */
    size_t secret_len;
    int64_t expires_at; /* Unix ms; 0: none */
    json_t *outputs;    /* owned: every value the rotation maps to a Coffer secret, by output name
                           ({"clientId": "...", "clientSecret": "..."}); secret values included,
                           so it is wiped on release */
};

/* Wipes and frees c's heap members and zeroes it; safe on a zeroed struct. */
void cf_rotated_cred_release(struct cf_rotated_cred *c);

/* Receives one call a step would make, for a dry run: method ("POST", "SQL", ...), target (a URL
 * without query, or a statement with the password replaced by "***") and why. */
typedef void (*cf_rotation_plan_fn)(void *ctx, const char *step, const char *method,
                                    const char *target, const char *purpose);

struct cf_rotator_ops {
    const char *type; /* Infisical's slug: "azure-client-secret", "postgres-credentials" */
    const char *connection_app; /* the app of the connection it authenticates with */
    const char *const *outputs; /* the output names it fills, NULL-terminated */
    const char *secret_output;  /* the output that holds cred->secret */
    /* Checks a rotation's parameters object: CF_EVALIDATION naming the field. */
    enum cf_rc (*config_check)(const json_t *params, struct cf_err *err);
    /* Issues a new credential for ref (its generation names it at the provider where the system has
     * a place for a name). */
    enum cf_rc (*issue)(const struct cf_provider_conn *conn, const json_t *params,
                        const struct cf_rotation_ref *ref, struct cf_rotated_cred *out,
                        struct cf_err *err);
    /* Proves that cred works at its own system (Entra ID: a token from the v2.0 token endpoint,
     * retried for a bounded time while the new secret propagates; PostgreSQL: a login). */
    enum cf_rc (*verify)(const struct cf_provider_conn *conn, const json_t *params,
                         const struct cf_rotated_cred *cred, struct cf_err *err);
    /* Revokes the credential named id; CF_OK when it is already gone (repeatable). */
    enum cf_rc (*revoke)(const struct cf_provider_conn *conn, const json_t *params,
                         const struct cf_rotation_ref *ref, const char *id, struct cf_err *err);
    /* The ids of the credentials rotation ref->id issued that the system still holds, found by the
     * name issue gave them (*ids a malloc'd array of malloc'd strings, *n of them): after a crash
     * between issuing and recording, the engine revokes those it does not know. NULL where issuing
     * cannot leave an orphan (it replaces instead of adding). */
    enum cf_rc (*list_issued)(const struct cf_provider_conn *conn, const json_t *params,
                              const struct cf_rotation_ref *ref, char ***ids, size_t *n,
                              struct cf_err *err);
    /* Describes, without calling anything, the calls issue, verify and revoke would make. */
    void (*plan)(const struct cf_provider_conn *conn, const json_t *params,
                 const struct cf_rotation_ref *ref, cf_rotation_plan_fn fn, void *ctx);
    /* Looks up the credential id that was in use before the rotation existed, which the rotation
     * adopts (its first rotation retires it after the grace period, as it retires its own):
     * CF_ENOTFOUND naming it when the system holds no such credential, CF_EVALIDATION when id
     * cannot be one of this rotation's; *expires_at its end date (Unix ms; 0: none). NULL where
     * the kind cannot adopt. */
    enum cf_rc (*adopt)(const struct cf_provider_conn *conn, const json_t *params, const char *id,
                        int64_t *expires_at, struct cf_err *err);
};

struct cf_consumer_ops {
    const char *type;           /* "azure-devops-service-connection", "webhook" */
    const char *connection_app; /* the app of the connection it needs; NULL: none */
    /* Checks a consumer's configuration object: CF_EVALIDATION naming the field. */
    enum cf_rc (*config_check)(const json_t *config, struct cf_err *err);
    /* Gives the consumer cred (conn NULL when connection_app is NULL). */
    enum cf_rc (*push)(const struct cf_provider_conn *conn, const json_t *config,
                       const struct cf_rotation_ref *ref, const struct cf_rotated_cred *cred,
                       struct cf_err *err);
    /* Proves that the consumer works with what it now holds: cred, which push gave it for ref
     * (a consumer that can test the credential itself ignores both). */
    enum cf_rc (*verify)(const struct cf_provider_conn *conn, const json_t *config,
                         const struct cf_rotation_ref *ref, const struct cf_rotated_cred *cred,
                         struct cf_err *err);
    /* Describes, without calling anything, the calls push and verify would make. */
    void (*plan)(const struct cf_provider_conn *conn, const json_t *config,
                 const struct cf_rotation_ref *ref, cf_rotation_plan_fn fn, void *ctx);
};

/* The rotator or consumer named type, or NULL. */
const struct cf_rotator_ops *cf_rotator_find(const char *type);
const struct cf_consumer_ops *cf_consumer_find(const char *type);

/* Frees an id array from list_issued; NULL is a no-op. */
void cf_rotated_ids_free(char **ids, size_t n);

#endif
