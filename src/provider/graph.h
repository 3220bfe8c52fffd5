/* Microsoft Graph v1.0 for an Entra ID application's client secrets (addPassword, removePassword,
 * the application's passwordCredentials), the "azure-client-secrets" connection's check, and the
 * "azure-client-secret" rotator (provider/rotator.h) built on them, and a user's groups (single
 * sign-on's group overage, cf_graph_member_groups). The connection authenticates
 * with Entra ID client credentials (provider/entra.h) for scope CF_GRAPH_SCOPE; its optional
 * "graphHost" credential field replaces https://graph.microsoft.com (sovereign clouds, tests). */
#ifndef CF_PROVIDER_GRAPH_H
#define CF_PROVIDER_GRAPH_H

#include <stdint.h>

#include <jansson.h>

#include "provider/provider.h"
#include "provider/rotator.h"
#include "util/err.h"

#define CF_GRAPH_HOST "https://graph.microsoft.com"
#define CF_GRAPH_SCOPE "https://graph.microsoft.com/.default"
#define CF_GRAPH_KEY_ID_MAX 64 /* a keyId is a GUID (36 characters) */
#define CF_GRAPH_DEFAULT_LIFETIME_MS (180LL * 24 * 3600 * 1000)
#define CF_GRAPH_VERIFY_DEFAULT_MS                                                                 \
    (120 * 1000) /* how long verify waits for a secret to propagate */
/* The largest verifyTimeoutMs: verify's wait stays well inside the engine's claim of a step (a
 * 5 minute lease renewed when an attempt starts, core/rotations.c). After the bound the last token
 * request may still take four tries of at most 10 s each, and the outcome must be saved before
 * another node may take the rotation over; a longer bound is refused rather than risk two nodes
 * working on one rotation. */
#define CF_GRAPH_VERIFY_MAX_MS (3 * 60 * 1000)

/* A password credential Graph returned by addPassword. */
struct cf_graph_password {
    char key_id[CF_GRAPH_KEY_ID_MAX];
    char *secret_text; /* heap, wiped by cf_graph_password_release; NULL when Graph hides it */
    int64_t end_ms;    /* endDateTime in Unix ms; 0 when absent */
};

/* Wipes and frees p's secret and zeroes p; safe on a zeroed struct. */
void cf_graph_password_release(struct cf_graph_password *p);

/* POST {graphHost}/v1.0/applications/{object_id}/addPassword with displayName and endDateTime
 * end_ms: *out the new credential (release with cf_graph_password_release). Errors as rotator.h;
 * CF_EFORBIDDEN names Application.ReadWrite.OwnedBy. Thread-safe. */
enum cf_rc cf_graph_add_password(const struct cf_provider_conn *conn, const char *object_id,
                                 const char *display_name, int64_t end_ms,
                                 struct cf_graph_password *out, struct cf_err *err);

/* POST {graphHost}/v1.0/applications/{object_id}/removePassword {"keyId"}. A keyId the application
 * no longer has is CF_ENOTFOUND (the rotator turns it into CF_OK). Thread-safe. */
enum cf_rc cf_graph_remove_password(const struct cf_provider_conn *conn, const char *object_id,
                                    const char *key_id, struct cf_err *err);

/* cf_graph_remove_password, repeatable: CF_OK also when the application no longer holds key_id
 * (its removePassword 404 is told apart from an unknown application by a read of the
 * application's passwordCredentials). Thread-safe. */
enum cf_rc cf_graph_revoke_password(const struct cf_provider_conn *conn, const char *object_id,
                                    const char *key_id, struct cf_err *err);

/* GET {graphHost}/v1.0/applications/{object_id}?$select=id,appId,passwordCredentials: *creds a new
 * reference to the passwordCredentials array (keyId, displayName, endDateTime, hint; Graph never
 * returns secretText here), to json_decref. Thread-safe. */
enum cf_rc cf_graph_password_list(const struct cf_provider_conn *conn, const char *object_id,
                                  json_t **creds, struct cf_err *err);

/* The "azure-client-secrets" connection check (cf_provider_check): a Graph token, then a read of
 * the connection's own service principal (GET /v1.0/servicePrincipals(appId='{clientId}')). */
enum cf_rc cf_graph_check(const struct cf_provider_conn *conn, json_t **report, struct cf_err *err);

/* POST {graphHost}/v1.0/users/{user_id}/getMemberGroups {"securityEnabledOnly": false}: the ids
 * of every group user_id (an object id) is in, directly or not, as Entra ID's groups claim would
 * list them (https://learn.microsoft.com/graph/api/directoryobject-getmembergroups; application
 * permissions User.Read.All and GroupMember.Read.All). *groups (n of them) is a malloc'd array of
 * malloc'd strings the caller frees. A throttled Graph (429) is retried honouring Retry-After
 * (cf_azure_call), then CF_ERATELIMIT; more than max groups CF_EIO; a 403 CF_EFORBIDDEN naming
 * the permissions. Thread-safe. */
enum cf_rc cf_graph_member_groups(const struct cf_provider_conn *conn, const char *user_id,
                                  size_t max, char ***groups, size_t *n, struct cf_err *err);

/* The "azure-client-secret" rotator: params {"objectId", "clientId", "tenantId"?,
 * "verifyTimeoutMs"?}; outputs clientId and clientSecret. */
extern const struct cf_rotator_ops cf_rotator_azure_client_secret;

#endif
