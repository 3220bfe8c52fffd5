/* The azure-devops destination: one variable group of an Azure DevOps project through the
 * Distributed Task REST API (api-version CF_ADO_API_VERSION), authenticated by a personal access
 * token (Basic, empty user) or an Entra ID token for the Azure DevOps resource.
 * destinationConfig: {"devopsProjectName" or "devopsProjectId", "variableGroupName",
 * "ownGroup": false}. */
#ifndef CF_PROVIDER_ADO_H
#define CF_PROVIDER_ADO_H

#include "provider/provider.h"
#include "provider/rotator.h"

#define CF_ADO_API_VERSION "7.1"
#define CF_ADO_INSTANCE "https://dev.azure.com"
#define CF_ADO_DESCRIPTION "Managed by Coffer"

extern const struct cf_dest_ops cf_dest_azure_devops;

/* The "azure-devops-service-connection" consumer (provider/rotator.h): config {"project" (name or
 * id), "endpointId"}; push reads the service endpoint and updates it with the new client secret as
 * authorization.parameters.serviceprincipalkey (and serviceprincipalid from the "clientId"
 * output); verify runs its TestConnection data source through the endpoint proxy (a failure is
 * CF_EUNAUTH with the message Azure DevOps returned). */
extern const struct cf_consumer_ops cf_consumer_ado_service_connection;

/* Checks an azure-devops connection: lists one project, then one variable group of it (which needs
 * vso.variablegroups_read at least). See cf_provider_check. */
enum cf_rc cf_ado_check(const struct cf_provider_conn *conn, json_t **report, struct cf_err *err);

#endif
