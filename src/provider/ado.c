/* Azure DevOps variable groups as a sync destination: find the group by name in the project,
 * create it or adopt it, write Coffer's variables as secret variables, keep the others unless the
 * sync owns the whole group. */
#include "provider/ado.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "net/http.h"
#include "provider/azure.h"
#include "provider/entra.h"
#include "util/str.h"
#include "util/time.h"
#include "util/wipemem.h"

#define SYSTEM "Azure DevOps"
#define URL_MAX 2048
#define SCOPE_MANAGE "vso.variablegroups_manage"
/* without it, a refused credential gets a 203 and a sign-in page instead of a 401 */
#define NO_REDIRECT "X-TFS-FedAuthRedirect: Suppress"

struct session {
    char base[600];       /* instance/org */
    char *authorization;  /* "Basic ..." or "Bearer ...", wiped */
    bool pat;             /* a personal access token, not an Entra ID token */
    char project_id[128]; /* resolved by project_resolve */
    char project_name[256];
};

static enum cf_rc ado_config_check(const json_t *config, struct cf_err *err)
{
    const json_t *name = json_object_get(config, "devopsProjectName");
    const json_t *id = json_object_get(config, "devopsProjectId");
    const json_t *group = json_object_get(config, "variableGroupName");
    const json_t *own = json_object_get(config, "ownGroup");
    if (!json_is_object(config))
        return cf_err_field(err, CF_EVALIDATION, "destinationConfig",
                            "the destination config must be an object");
    if ((name && (!json_is_string(name) || json_string_length(name) == 0 ||
                  json_string_length(name) > 64)) ||
        (id &&
         (!json_is_string(id) || json_string_length(id) == 0 || json_string_length(id) > 64)) ||
        (!name && !id))
        return cf_err_field(err, CF_EVALIDATION, name ? "devopsProjectName" : "devopsProjectId",
                            "\"devopsProjectName\" or \"devopsProjectId\" must name the Azure "
                            "DevOps project (1 to 64 characters)");
    if (!json_is_string(group) || json_string_length(group) == 0 || json_string_length(group) > 256)
        return cf_err_field(err, CF_EVALIDATION, "variableGroupName",
                            "\"variableGroupName\" is required (1 to 256 characters)");
    if (own && !json_is_boolean(own))
        return cf_err_field(err, CF_EVALIDATION, "ownGroup", "\"ownGroup\" must be true or false");
    return CF_OK;
}

/* Azure DevOps takes any variable name but treats names case-insensitively; the engine's key
 * schema decides the rest. */
static enum cf_rc ado_map_name(const char *name, char *out, size_t size, struct cf_err *err)
{
    size_t n = strlen(name);
    if (n == 0 || n >= size || strpbrk(name, " \t\r\n"))
        return cf_err_field(err, CF_EVALIDATION, "name",
                            "\"%.64s\" cannot be an Azure DevOps variable name", name);
    memcpy(out, name, n + 1);
    return CF_OK;
}

static enum cf_rc session_open(struct session *s, const struct cf_provider_conn *conn,
                               struct cf_err *err)
{
    const char *org = cf_azure_cred(conn, "orgName");
    const char *instance = cf_azure_cred(conn, "instanceUrl");
    char org_e[200];
    enum cf_rc rc = CF_OK;

    memset(s, 0, sizeof(*s));
    if (!org || !cf_azure_escape(org, org_e, sizeof(org_e)))
        return cf_err_field(err, CF_EINVAL, "orgName",
                            "the connection's credentials lack a valid \"orgName\"");
    /* the credential goes to this URL: https, or plain http to a loopback host only */
    if (instance && cf_net_url_refused(instance))
        return cf_err_field(err, CF_EINVAL, "instanceUrl", "\"instanceUrl\" %s",
                            cf_net_url_refused(instance));
    snprintf(s->base, sizeof(s->base), "%s/%s", instance ? instance : CF_ADO_INSTANCE, org_e);
    s->pat = conn->method && strcmp(conn->method, "access-token") == 0;
    if (s->pat) {
        const char *pat = cf_azure_cred(conn, "accessToken");
        if (!pat)
            return cf_err_field(err, CF_EINVAL, "accessToken",
                                "the connection's credentials lack \"accessToken\"");
        /* Basic with an empty user name: base64(":" PAT) */
        size_t plain_len = strlen(pat) + 1;
        char *plain = malloc(plain_len + 1);
        size_t enc_size = sodium_base64_ENCODED_LEN(plain_len, sodium_base64_VARIANT_ORIGINAL);
        s->authorization = malloc(enc_size + sizeof("Basic "));
        if (plain && s->authorization) {
            snprintf(plain, plain_len + 1, ":%s", pat);
            memcpy(s->authorization, "Basic ", 6);
            sodium_bin2base64(s->authorization + 6, enc_size, (const unsigned char *)plain,
                              plain_len, sodium_base64_VARIANT_ORIGINAL);
        } else {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        }
        if (plain) {
            sodium_memzero(plain, plain_len);
            free(plain);
        }
        return rc;
    }
    return cf_azure_bearer(conn, CF_ENTRA_SCOPE_DEVOPS, &s->authorization, err);
}

static void session_close(struct session *s)
{
    cf_azure_secret_free(s->authorization);
    s->authorization = NULL;
}

/* err from an Azure DevOps answer: 401 names the credential, 403 the scope a write needs; other
 * answers give ADO's typeKey and message. */
static enum cf_rc ado_error(const struct session *s, long status, const json_t *body,
                            const char *what, struct cf_err *err)
{
    const char *type = json_string_value(json_object_get(body, "typeKey"));
    char message[120];
    cf_azure_first_line(json_string_value(json_object_get(body, "message")), message,
                        sizeof(message));
    if (status == 401 || status == 203)
        return cf_err_set(err, CF_EUNAUTH, SYSTEM " refused the %s (%ld)",
                          s->pat ? "personal access token" : "Entra ID token",
                          status == 203 ? 401L : status);
    if (status == 403)
        return cf_err_set(err, CF_EFORBIDDEN,
                          "the %s lacks scope " SCOPE_MANAGE " to %s (403 %.48s: %s)",
                          s->pat ? "personal access token" : "Entra ID principal", what,
                          type ? type : "no type", message);
    return cf_err_set(err, cf_azure_status_rc(status), SYSTEM " refused to %s (%ld %.48s): %s",
                      what, status, type ? type : "no type", message[0] ? message : "no message");
}

static enum cf_rc ado_call(const struct session *s, const char *method, const char *url,
                           const char *body, long *status, json_t **reply, struct cf_err *err)
{
    return cf_azure_call(SYSTEM, method, url, s->authorization, body ? "application/json" : NULL,
                         NO_REDIRECT, body, status, reply, err);
}

/* Fills s->project_id and s->project_name from the projects API (the group's project reference
 * needs both). */
static enum cf_rc project_resolve(struct session *s, const json_t *config, struct cf_err *err)
{
    const char *project = json_string_value(json_object_get(config, "devopsProjectId"));
    char url[URL_MAX], project_e[200];
    json_t *reply = NULL;
    long status = 0;
    enum cf_rc rc;

    if (!project)
        project = json_string_value(json_object_get(config, "devopsProjectName"));
    if (!project || !cf_azure_escape(project, project_e, sizeof(project_e)))
        return cf_err_field(err, CF_EVALIDATION, "devopsProjectName", "no valid project given");
    snprintf(url, sizeof(url), "%s/_apis/projects/%s?api-version=" CF_ADO_API_VERSION, s->base,
             project_e);
    rc = ado_call(s, "GET", url, NULL, &status, &reply, err);
    if (rc != CF_OK)
        goto out;
    const char *id = json_string_value(json_object_get(reply, "id"));
    const char *name = json_string_value(json_object_get(reply, "name"));
    if (status == 404) {
        rc = cf_err_set(err, CF_ENOTFOUND, SYSTEM " has no project \"%.64s\"", project);
    } else if (status != 200) {
        rc = ado_error(s, status, reply, "read the project", err);
    } else if (!id || !name) {
        rc = cf_err_set(err, CF_EIO, SYSTEM " answered the project request without an id");
    } else {
        snprintf(s->project_id, sizeof(s->project_id), "%s", id);
        snprintf(s->project_name, sizeof(s->project_name), "%s", name);
    }
out:
    json_decref(reply);
    return rc;
}

/* *group: the project's variable group named name (a new reference), or NULL when there is
 * none. */
static enum cf_rc group_find(const struct session *s, const char *name, json_t **group,
                             struct cf_err *err)
{
    char url[URL_MAX], name_e[800];
    json_t *reply = NULL;
    long status = 0;
    enum cf_rc rc;

    *group = NULL;
    if (!cf_azure_escape(name, name_e, sizeof(name_e)))
        return cf_err_field(err, CF_EVALIDATION, "variableGroupName", "the group name is too long");
    snprintf(
        url, sizeof(url),
        "%s/%s/_apis/distributedtask/variablegroups?groupName=%s&api-version=" CF_ADO_API_VERSION,
        s->base, s->project_id, name_e);
    rc = ado_call(s, "GET", url, NULL, &status, &reply, err);
    if (rc != CF_OK)
        goto out;
    if (status != 200) {
        rc = ado_error(s, status, reply, "list variable groups", err);
        goto out;
    }
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(reply, "value"), i, g)
    {
        /* groupName matches patterns and ignores case; the exact name wins */
        const char *gname = json_string_value(json_object_get(g, "name"));
        if (gname && strcasecmp(gname, name) == 0 && json_integer_value(json_object_get(g, "id"))) {
            *group = json_incref(g);
            break;
        }
    }
out:
    json_decref(reply);
    return rc;
}

/* Whether name is among the n items (ADO variable names ignore case). */
static bool in_items(const struct cf_sync_item *items, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(items[i].name, name) == 0)
            return true;
    return false;
}

/* Deletes the variable named name (any case) from vars. */
static void vars_remove(json_t *vars, const char *name)
{
    const char *key;
    json_t *value;
    void *tmp;
    json_object_foreach_safe(vars, tmp, key, value)
    {
        (void)value;
        if (strcasecmp(key, name) == 0)
            json_object_del(vars, key);
    }
}

/* Checks config, opens s and finds the configured group in its project (*group NULL when there is
 * none). s is set up even on failure, for session_close. */
static enum cf_rc group_open(struct session *s, const struct cf_provider_conn *conn,
                             const json_t *config, json_t **group, struct cf_err *err)
{
    enum cf_rc rc;
    memset(s, 0, sizeof(*s));
    *group = NULL;
    rc = ado_config_check(config, err);
    if (rc == CF_OK)
        rc = session_open(s, conn, err);
    if (rc == CF_OK)
        rc = project_resolve(s, config, err);
    if (rc == CF_OK)
        rc = group_find(s, json_string_value(json_object_get(config, "variableGroupName")), group,
                        err);
    return rc;
}

static enum cf_rc ado_push(const struct cf_provider_conn *conn, const json_t *config,
                           const struct cf_sync_item *items, size_t n, const char *const *remove,
                           size_t n_remove, struct cf_err *err)
{
    const char *group_name = json_string_value(json_object_get(config, "variableGroupName"));
    bool own = json_is_true(json_object_get(config, "ownGroup"));
    struct session s;
    json_t *group = NULL, *vars = NULL, *body = NULL, *reply = NULL;
    char *text = NULL, url[URL_MAX], what[320];
    long status = 0;
    enum cf_rc rc;

    rc = group_open(&s, conn, config, &group, err);
    if (rc != CF_OK)
        goto out;
    if (!group && n == 0)
        goto out; /* nothing to write, and an empty group cannot be created */
    vars = group ? json_deep_copy(json_object_get(group, "variables")) : json_object();
    if (!json_is_object(vars)) {
        json_decref(vars);
        vars = json_object();
    }
    if (own) {
        /* the sync owns the group: what Coffer does not hold goes */
        const char *key;
        json_t *value;
        void *tmp;
        json_object_foreach_safe(vars, tmp, key, value)
        {
            (void)value;
            if (!in_items(items, n, key))
                json_object_del(vars, key);
        }
    }
    for (size_t i = 0; i < n_remove; i++)
        vars_remove(vars, remove[i]);
    for (size_t i = 0; i < n; i++) {
        vars_remove(vars, items[i].name);
        json_object_set_new(
            vars, items[i].name,
            json_pack("{s:s%, s:b}", "value", items[i].value, items[i].value_len, "isSecret", 1));
    }
    if (json_object_size(vars) == 0) {
        rc = cf_err_set(err, CF_EVALIDATION,
                        SYSTEM " variable group \"%.64s\" would be left empty, which Azure DevOps "
                               "refuses",
                        group_name);
        goto out;
    }
    body = json_pack("{s:s, s:s, s:s, s:O, s:[{s:s, s:s, s:{s:s, s:s}}]}", "name", group_name,
                     "description", CF_ADO_DESCRIPTION, "type", "Vsts", "variables", vars,
                     "variableGroupProjectReferences", "name", group_name, "description",
                     CF_ADO_DESCRIPTION, "projectReference", "id", s.project_id, "name",
                     s.project_name);
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (!text) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    if (group) {
        snprintf(url, sizeof(url),
                 "%s/_apis/distributedtask/variablegroups/%lld?api-version=" CF_ADO_API_VERSION,
                 s.base, (long long)json_integer_value(json_object_get(group, "id")));
        rc = ado_call(&s, "PUT", url, text, &status, &reply, err);
    } else {
        snprintf(url, sizeof(url),
                 "%s/_apis/distributedtask/variablegroups?api-version=" CF_ADO_API_VERSION, s.base);
        rc = ado_call(&s, "POST", url, text, &status, &reply, err);
    }
    if (rc == CF_OK && status != 200) {
        snprintf(what, sizeof(what), "%s variable group \"%.64s\"", group ? "update" : "create",
                 group_name);
        rc = ado_error(&s, status, reply, what, err);
    }
out:
    if (text)
        sodium_memzero(text, strlen(text));
    cf_json_free_text(text);
    json_decref(reply);
    json_decref(body);
    json_decref(vars);
    json_decref(group);
    session_close(&s);
    return rc;
}

static enum cf_rc ado_list(const struct cf_provider_conn *conn, const json_t *config,
                           struct cf_dest_list *out, struct cf_err *err)
{
    struct session s;
    json_t *group = NULL;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = group_open(&s, conn, config, &group, err);
    if (rc != CF_OK || !group)
        goto out;
    json_t *vars = json_object_get(group, "variables");
    size_t size = json_object_size(vars);
    /* Azure DevOps keeps one change time per group, not per variable, and never returns a secret
     * variable's value: a hand edit shows only as the group's modifiedOn, given to every name. */
    const char *modified = json_string_value(json_object_get(group, "modifiedOn"));
    int64_t modified_ms = 0;
    struct cf_err time_err;
    if (!modified || cf_time_parse(modified, &modified_ms, &time_err) != CF_OK)
        modified_ms = 0;
    out->items = calloc(size ? size : 1, sizeof(*out->items));
    if (!out->items) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    const char *key;
    json_t *var;
    json_object_foreach(vars, key, var)
    {
        struct cf_dest_entry *e = &out->items[out->n];
        const char *value = json_string_value(json_object_get(var, "value"));
        e->name = strdup(key);
        if (!e->name) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        e->updated_at = modified_ms;
        out->n++;
        /* secret variables are never returned: their value stays unknown */
        if (!json_is_true(json_object_get(var, "isSecret")) && value &&
            !(e->value = strdup(value))) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
    }
out:
    if (rc != CF_OK)
        cf_dest_list_release(out);
    json_decref(group);
    session_close(&s);
    return rc;
}

enum cf_rc cf_ado_check(const struct cf_provider_conn *conn, json_t **report, struct cf_err *err)
{
    struct session s;
    json_t *reply = NULL;
    char url[URL_MAX], detail[300];
    long status = 0;
    enum cf_rc rc;

    *report = NULL;
    rc = session_open(&s, conn, err);
    if (rc != CF_OK)
        goto out;
    snprintf(url, sizeof(url), "%s/_apis/projects?$top=1&api-version=" CF_ADO_API_VERSION, s.base);
    rc = ado_call(&s, "GET", url, NULL, &status, &reply, err);
    if (rc != CF_OK)
        goto out;
    if (status != 200) {
        rc = ado_error(&s, status, reply, "list projects", err);
        goto out;
    }
    const json_t *first = json_array_get(json_object_get(reply, "value"), 0);
    const char *id = json_string_value(json_object_get(first, "id"));
    snprintf(detail, sizeof(detail), "the organization has no project to read variable groups of");
    if (id) {
        snprintf(
            url, sizeof(url),
            "%s/%.64s/_apis/distributedtask/variablegroups?$top=1&api-version=" CF_ADO_API_VERSION,
            s.base, id);
        json_decref(reply);
        reply = NULL;
        rc = ado_call(&s, "GET", url, NULL, &status, &reply, err);
        if (rc != CF_OK)
            goto out;
        if (status != 200) {
            rc = ado_error(&s, status, reply, "list variable groups", err);
            goto out;
        }
        snprintf(detail, sizeof(detail), "%s lists the variable groups of a project",
                 s.pat ? "the personal access token" : "the Entra ID principal");
    }
    /* a PAT's expiry is shown only to its owner's session (not to the token itself); reading
     * proves vso.variablegroups_read, a write is what proves SCOPE_MANAGE */
    *report = json_pack("{s:b, s:n, s:[s], s:s}", "ok", 1, "expiresAt", "scopes",
                        "vso.variablegroups_read", "detail", detail);
    if (!*report)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
out:
    json_decref(reply);
    session_close(&s);
    return rc;
}

const struct cf_dest_ops cf_dest_azure_devops = {
    .destination = "azure-devops",
    .config_check = ado_config_check,
    .map_name = ado_map_name,
    .list = ado_list,
    .push = ado_push,
};

/* ---- the "azure-devops-service-connection" consumer ----
 * Service endpoints, api-version 7.1:
 * https://learn.microsoft.com/en-us/rest/api/azure/devops/serviceendpoint/endpoints?view=azure-devops-rest-7.1
 *   GET {org}/{project}/_apis/serviceendpoint/endpoints/{endpointId}   (Get)
 *   PUT {org}/_apis/serviceendpoint/endpoints/{endpointId}             (Update Service Endpoint:
 * the whole ServiceEndpoint; GET hides authorization.parameters.serviceprincipalkey, so it is set
 *       again on every update)
 * Execution of a data source on the endpoint, api-version 7.1-preview.1:
 * https://learn.microsoft.com/en-us/rest/api/azure/devops/serviceendpoint/endpointproxy/execute-service-endpoint-request?view=azure-devops-rest-7.1
 *   POST {org}/{project}/_apis/serviceendpoint/endpointproxy?endpointId=... with a
 *   ServiceEndpointRequest {"dataSourceDetails": {"dataSourceName": "TestConnection", ...},
 *   "resultTransformationDetails": {}, "serviceEndpointDetails": null} ->
 *   ServiceEndpointRequestResult {"statusCode", "errorMessage", "result", ...}.
 * Security roles on one service connection: Reader views it, User uses it, Administrator manages
 * it:
 * https://learn.microsoft.com/en-us/azure/devops/pipelines/library/service-endpoints#secure-a-service-connection
 * So the identity needs the Administrator role to update the key, User to run the test request,
 * and a token or PAT with scope vso.serviceendpoint_manage for all three calls. A refusal for a
 * missing role is a 403 of type ServiceEndpointException; for a missing scope another type. */
#define SCOPE_ENDPOINTS "vso.serviceendpoint_manage"
#define PROXY_API_VERSION "7.1-preview.1"

static enum cf_rc sc_config_check(const json_t *config, struct cf_err *err)
{
    static const char *const required[] = {"project", "endpointId"};
    if (!json_is_object(config))
        return cf_err_field(err, CF_EVALIDATION, "config", "the consumer config must be an object");
    for (size_t i = 0; i < CF_ARRAY_SIZE(required); i++) {
        const char *v = json_string_value(json_object_get(config, required[i]));
        if (!v || !v[0] || strlen(v) > 128)
            return cf_err_field(err, CF_EVALIDATION, required[i],
                                "\"%s\" is required (the %s, at most 128 characters)", required[i],
                                i == 0 ? "Azure DevOps project name or id"
                                       : "service connection's id");
    }
    return CF_OK;
}

/* err from an answer to a call that needs role on the service connection: a 403 names the role,
 * or the scope when the refusal is not about the role. */
static enum cf_rc sc_error(long status, const json_t *body, const char *what, const char *role,
                           struct cf_err *err)
{
    const char *type = json_string_value(json_object_get(body, "typeKey"));
    char message[120];
    cf_azure_first_line(json_string_value(json_object_get(body, "message")), message,
                        sizeof(message));
    if (status == 401 || status == 203)
        return cf_err_set(err, CF_EUNAUTH, SYSTEM " refused the connection's credential (401)");
    if (status == 403 && type && strcmp(type, "ServiceEndpointException") == 0)
        return cf_err_set(err, CF_EFORBIDDEN,
                          "the identity lacks the %s role on the service connection to %s (403 "
                          "%.32s: %s)",
                          role, what, type, message);
    if (status == 403)
        return cf_err_set(err, CF_EFORBIDDEN,
                          "the identity lacks scope " SCOPE_ENDPOINTS
                          " (and the %s role on the service connection) to %s (403 %.48s: %s)",
                          role, what, type ? type : "no type", message);
    return cf_err_set(err, cf_azure_status_rc(status), SYSTEM " refused to %s (%ld %.48s): %s",
                      what, status, type ? type : "no type", message[0] ? message : "no message");
}

/* "{base}/{project}/_apis/serviceendpoint/..." and "{base}/_apis/..." parts, escaped. */
static enum cf_rc sc_names(const json_t *config, char *project_e, char *endpoint_e, size_t size,
                           struct cf_err *err)
{
    if (!cf_azure_escape(json_string_value(json_object_get(config, "project")), project_e, size) ||
        !cf_azure_escape(json_string_value(json_object_get(config, "endpointId")), endpoint_e,
                         size))
        return cf_err_field(err, CF_EVALIDATION, "endpointId", "\"endpointId\" is too long");
    return CF_OK;
}

static enum cf_rc sc_push(const struct cf_provider_conn *conn, const json_t *config,
                          const struct cf_rotation_ref *ref, const struct cf_rotated_cred *cred,
                          struct cf_err *err)
{
    struct session s = {0};
    char url[URL_MAX], project_e[400], endpoint_e[400];
    json_t *endpoint = NULL, *reply = NULL;
    char *body = NULL;
    long status = 0;
    enum cf_rc rc;
    (void)ref;

    rc = sc_config_check(config, err);
    if (rc == CF_OK)
        rc = sc_names(config, project_e, endpoint_e, 200, err);
    if (rc != CF_OK)
        return rc;
    if (!cred || !cred->secret)
        return cf_err_set(err, CF_EINVAL, "no credential to push to the service connection");
    rc = session_open(&s, conn, err);
    if (rc != CF_OK)
        goto out;
    snprintf(url, sizeof(url),
             "%s/%s/_apis/serviceendpoint/endpoints/%s?api-version=" CF_ADO_API_VERSION, s.base,
             project_e, endpoint_e);
    rc = ado_call(&s, "GET", url, NULL, &status, &endpoint, err);
    if (rc != CF_OK)
        goto out;
    /* a missing endpoint, or one the identity has no role on, answers 200 with an empty body */
    if (status == 200 && !json_is_object(endpoint)) {
        rc = cf_err_set(err, CF_ENOTFOUND,
                        "the service connection \"%.64s\" does not exist (or the identity has "
                        "no role on it)",
                        json_string_value(json_object_get(config, "endpointId")));
        goto out;
    }
    if (status != 200) {
        rc = sc_error(status, endpoint, "read the service connection", "Reader", err);
        goto out;
    }
    json_t *parameters = json_object_get(json_object_get(endpoint, "authorization"), "parameters");
    if (!json_is_object(parameters)) {
        rc = cf_err_set(err, CF_EVALIDATION,
                        "the service connection has no authorization parameters to hold a client "
                        "secret");
        goto out;
    }
    const char *client_id = json_string_value(json_object_get(cred->outputs, "clientId"));
    if (json_object_set_new(parameters, "serviceprincipalkey",
                            json_stringn(cred->secret, cred->secret_len)) != 0 ||
        (client_id &&
         json_object_set_new(parameters, "serviceprincipalid", json_string(client_id)) != 0) ||
        !(body = json_dumps(endpoint, JSON_COMPACT))) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(url, sizeof(url),
             "%s/_apis/serviceendpoint/endpoints/%s?api-version=" CF_ADO_API_VERSION, s.base,
             endpoint_e);
    rc = ado_call(&s, "PUT", url, body, &status, &reply, err);
    if (rc == CF_OK && status != 200)
        rc = sc_error(status, reply, "update the service connection", "Administrator", err);
out:
    if (body) {
        sodium_memzero(body, strlen(body));
        cf_json_free_text(body);
    }
    if (endpoint) {
        json_t *parameters_ =
            json_object_get(json_object_get(endpoint, "authorization"), "parameters");
        const char *key = json_string_value(json_object_get(parameters_, "serviceprincipalkey"));
        if (key)
            sodium_memzero((char *)key, strlen(key));
    }
    json_decref(reply);
    json_decref(endpoint);
    session_close(&s);
    return rc;
}

static enum cf_rc sc_verify(const struct cf_provider_conn *conn, const json_t *config,
                            const struct cf_rotation_ref *ref, const struct cf_rotated_cred *cred,
                            struct cf_err *err)
{
    (void)ref; /* the endpoint's own test request uses what the endpoint holds */
    (void)cred;
    struct session s = {0};
    char url[URL_MAX], project_e[400], endpoint_e[400], message[160];
    json_t *request = NULL, *reply = NULL;
    char *body = NULL;
    long status = 0;
    enum cf_rc rc;

    rc = sc_config_check(config, err);
    if (rc == CF_OK)
        rc = sc_names(config, project_e, endpoint_e, 200, err);
    if (rc != CF_OK)
        return rc;
    request = json_pack("{s:{s:s, s:s, s:s, s:{}}, s:{}, s:n}", "dataSourceDetails",
                        "dataSourceName", "TestConnection", "dataSourceUrl", "", "resourceUrl", "",
                        "parameters", "resultTransformationDetails", "serviceEndpointDetails");
    body = request ? json_dumps(request, JSON_COMPACT) : NULL;
    if (!body) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    rc = session_open(&s, conn, err);
    if (rc != CF_OK)
        goto out;
    snprintf(
        url, sizeof(url),
        "%s/%s/_apis/serviceendpoint/endpointproxy?endpointId=%s&api-version=" PROXY_API_VERSION,
        s.base, project_e, endpoint_e);
    rc = ado_call(&s, "POST", url, body, &status, &reply, err);
    if (rc != CF_OK)
        goto out;
    if (status != 200) {
        rc = sc_error(status, reply, "test the service connection", "User", err);
        goto out;
    }
    const char *code = json_string_value(json_object_get(reply, "statusCode"));
    if (!code || strcasecmp(code, "ok") != 0) {
        cf_azure_first_line(json_string_value(json_object_get(reply, "errorMessage")), message,
                            sizeof(message));
        rc = cf_err_set(err, CF_EUNAUTH, "the service connection failed its test (%.32s): %s",
                        code ? code : "no status", message[0] ? message : "no message");
    }
out:
    session_close(&s);
    json_decref(reply);
    cf_json_free_text(body);
    json_decref(request);
    return rc;
}

static void sc_plan(const struct cf_provider_conn *conn, const json_t *config,
                    const struct cf_rotation_ref *ref, cf_rotation_plan_fn fn, void *ctx)
{
    const char *instance = cf_azure_cred(conn, "instanceUrl");
    const char *org = cf_azure_cred(conn, "orgName");
    const char *project = json_string_value(json_object_get(config, "project"));
    const char *endpoint = json_string_value(json_object_get(config, "endpointId"));
    char target[URL_MAX];
    (void)ref;
    if (!instance)
        instance = CF_ADO_INSTANCE;
    snprintf(target, sizeof(target), "%s/%.128s/%.128s/_apis/serviceendpoint/endpoints/%.128s",
             instance, org ? org : "?", project ? project : "?", endpoint ? endpoint : "?");
    fn(ctx, "push", "GET", target, "read the service connection");
    snprintf(target, sizeof(target), "%s/%.128s/_apis/serviceendpoint/endpoints/%.128s", instance,
             org ? org : "?", endpoint ? endpoint : "?");
    fn(ctx, "push", "PUT", target, "set the new client secret as serviceprincipalkey");
    snprintf(target, sizeof(target), "%s/%.128s/%.128s/_apis/serviceendpoint/endpointproxy",
             instance, org ? org : "?", project ? project : "?");
    fn(ctx, "verify", "POST", target, "run the service connection's TestConnection request");
}

const struct cf_consumer_ops cf_consumer_ado_service_connection = {
    .type = "azure-devops-service-connection",
    .connection_app = "azure-devops",
    .config_check = sc_config_check,
    .push = sc_push,
    .verify = sc_verify,
    .plan = sc_plan,
};
