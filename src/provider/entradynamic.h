/* Microsoft Entra ID application credentials as dynamic secrets: the "azure-entra-id-app" dynamic
 * provider (provider/dynamic.h). Infisical's "azure-entra-id" dynamic secret resets user passwords;
 * this one instead gives each lease a client secret of its own on one application, so that a
 * pipeline gets an Azure credential that lives as long as its lease and nothing else.
 *
 * Connection: an "azure-client-secrets" connection (provider/graph.h), whose principal may add and
 * remove the application's client secrets: Application.ReadWrite.OwnedBy as an owner of the
 * application, or Application.ReadWrite.All.
 *
 * Parameters {"objectId" (the application's object id), "clientId" (its application (client) id,
 * handed out as CLIENT_ID), "tenantId"? (handed out as TENANT_ID; default the connection's)}.
 *
 * create: POST {graphHost}/v1.0/applications/{objectId}/addPassword with displayName "coffer
 * lease <secret name> (<lease id>)" and endDateTime the lease's end, so that the secret dies at
 * Entra ID even if Coffer never revokes it; the lease holds the secret's keyId. A new secret may be
 * refused by the token endpoint for a short while until it has propagated (AADSTS7000215); create
 * does not wait for that. Fields: CLIENT_ID, CLIENT_SECRET, TENANT_ID.
 * renew: NULL. Graph cannot change a passwordCredential's endDateTime (there is no update of one:
 * only addPassword and removePassword), so a renewal moves only the lease's end, and the secret
 * still ends at the endDateTime it was created with: a lease renewed past it holds a dead secret.
 * revoke: POST .../removePassword {"keyId"}; CF_OK when the application no longer holds it.
 * Thread-safe. */
#ifndef CF_PROVIDER_ENTRADYNAMIC_H
#define CF_PROVIDER_ENTRADYNAMIC_H

#include "provider/dynamic.h"

/* The "azure-entra-id-app" dynamic provider. */
extern const struct cf_dynamic_ops cf_dynamic_entra_app;

#endif
