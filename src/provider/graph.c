/* Microsoft Graph for Entra ID application client secrets, the "azure-client-secret" rotator, and
 * the group memberships of a user (single sign-on when a user is in too many groups for the token).
 *
 * Documented shapes (Graph v1.0):
 * - addPassword: POST /applications/{id}/addPassword {"passwordCredential": {"displayName",
 *   "endDateTime"}} -> 200 passwordCredential {keyId, secretText, endDateTime, hint, ...}
 *   https://learn.microsoft.com/en-us/graph/api/application-addpassword?view=graph-rest-1.0
 * - removePassword: POST /applications/{id}/removePassword {"keyId"} -> 204 No Content
 *   https://learn.microsoft.com/en-us/graph/api/application-removepassword?view=graph-rest-1.0
 * - passwordCredential resource (secretText only in addPassword's answer):
 *   https://learn.microsoft.com/en-us/graph/api/resources/passwordcredential?view=graph-rest-1.0
 * - errors {"error": {"code", "message", "innerError": {"date", "request-id", ...}}} and 429 with
 *   Retry-After: https://learn.microsoft.com/en-us/graph/errors,
 *   https://learn.microsoft.com/en-us/graph/throttling (the retries live in cf_azure_call). */
#include "provider/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "net/http.h"
#include "provider/azure.h"
#include "provider/entra.h"
#include "util/id.h"
#include "util/str.h"
#include "util/time.h"
#include "util/wipemem.h"
#include "util/banned.h"

#define SYSTEM "Microsoft Graph"
#define URL_MAX 1024
#define PERMISSION "Application.ReadWrite.OwnedBy"
/* what a 403 names: changing (or reading) an application's secrets, and reading a service
 * principal (least privilege Application.Read.All:
 * https://learn.microsoft.com/en-us/graph/api/serviceprincipal-get?view=graph-rest-1.0) */
#define NEEDS_OWNED PERMISSION " (and ownership of the application)"
#define NEEDS_READ "Application.Read.All (or a higher Graph permission)"
#define VERIFY_FIRST_WAIT_MS 250
#define VERIFY_MAX_WAIT_MS 5000

static const char *const outputs[] = {"clientId", "clientSecret", NULL};

void cf_graph_password_release(struct cf_graph_password *p)
{
    if (!p)
        return;
    cf_azure_secret_free(p->secret_text);
    sodium_memzero(p, sizeof(*p));
}

struct session {
    char base[600]; /* {graphHost}/v1.0 */
    char *bearer;   /* "Bearer <token>", wiped */
};

static enum cf_rc session_open(struct session *s, const struct cf_provider_conn *conn,
                               struct cf_err *err)
{
    const char *host = cf_azure_cred(conn, "graphHost");
    memset(s, 0, sizeof(*s));
    /* the token goes to this URL: https, or plain http to a loopback host only */
    if (host && cf_net_url_refused(host))
        return cf_err_field(err, CF_EINVAL, "graphHost", "\"graphHost\" %s",
                            cf_net_url_refused(host));
    if ((size_t)snprintf(s->base, sizeof(s->base), "%s/v1.0", host ? host : CF_GRAPH_HOST) >=
        sizeof(s->base))
        return cf_err_field(err, CF_EINVAL, "graphHost", "\"graphHost\" is too long");
    return cf_azure_bearer(conn, CF_GRAPH_SCOPE, &s->bearer, err);
}

static void session_close(struct session *s)
{
    cf_azure_secret_free(s->bearer);
    s->bearer = NULL;
}

/* err from a Graph error answer, naming what was done; a 403 names needs, the permission the call
 * asks for (NEEDS_OWNED or NEEDS_READ). A 429 is CF_ERATELIMIT and a 5xx CF_EIO (both retried
 * later by the engine, which leaves the previous secret in place); the answer's Retry-After stays
 * in err->retry_after_s for the engine's wait. */
static enum cf_rc graph_error(long status, const json_t *body, const char *what, const char *object,
                              const char *needs, struct cf_err *err)
{
    const json_t *e = json_object_get(body, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    int retry_after_s = err->retry_after_s; /* from cf_azure_call */
    char message[120];
    enum cf_rc rc;
    cf_azure_first_line(json_string_value(json_object_get(e, "message")), message, sizeof(message));
    if (status == 403)
        rc = cf_err_set(err, CF_EFORBIDDEN,
                        "the Entra ID principal lacks %s to %s \"%.64s\" (403 %.48s: %s)", needs,
                        what, object, code ? code : "no error code", message);
    else
        rc = cf_err_set(err, cf_azure_status_rc(status),
                        SYSTEM " refused to %s \"%.64s\" (%ld %.48s): %s", what, object, status,
                        code ? code : "no error code", message[0] ? message : "no message");
    err->retry_after_s = retry_after_s;
    return rc;
}

/* One call on path under {graphHost}/v1.0; path parts are escaped by the caller. */
static enum cf_rc graph_call(const struct session *s, const char *method, const char *path,
                             const char *body, long *status, json_t **reply, struct cf_err *err)
{
    char url[URL_MAX];
    if ((size_t)snprintf(url, sizeof(url), "%s/%s", s->base, path) >= sizeof(url))
        return cf_err_set(err, CF_EINVAL, "the Microsoft Graph URL is too long");
    return cf_azure_call(SYSTEM, method, url, s->bearer, body ? "application/json" : NULL, NULL,
                         body, status, reply, err);
}

static enum cf_rc app_path(const char *object_id, const char *action, char *out, size_t size,
                           struct cf_err *err)
{
    char id_e[200];
    if (!object_id || !object_id[0] || !cf_azure_escape(object_id, id_e, sizeof(id_e)) ||
        (size_t)snprintf(out, size, "applications/%s%s%s", id_e, action ? "/" : "",
                         action ? action : "") >= size)
        return cf_err_field(err, CF_EVALIDATION, "objectId", "\"objectId\" is missing or too long");
    return CF_OK;
}

/* POST of request_take (taken, JSON) to path under {graphHost}/v1.0 with a fresh Graph token. */
static enum cf_rc graph_post(const struct cf_provider_conn *conn, const char *path,
                             json_t *request_take, long *status, json_t **reply, struct cf_err *err)
{
    struct session s = {0};
    char *body = request_take ? json_dumps(request_take, JSON_COMPACT) : NULL;
    enum cf_rc rc;

    *reply = NULL;
    if (!body)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    else
        rc = session_open(&s, conn, err);
    if (rc == CF_OK)
        rc = graph_call(&s, "POST", path, body, status, reply, err);
    session_close(&s);
    cf_json_free_text(body);
    json_decref(request_take);
    return rc;
}

enum cf_rc cf_graph_add_password(const struct cf_provider_conn *conn, const char *object_id,
                                 const char *display_name, int64_t end_ms,
                                 struct cf_graph_password *out, struct cf_err *err)
{
    char path[300], end[CF_TIME_RFC3339_LEN];
    json_t *reply = NULL;
    long status = 0;
    struct cf_err time_err = {0};
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = app_path(object_id, "addPassword", path, sizeof(path), err);
    if (rc != CF_OK)
        return rc;
    rc = graph_post(conn, path,
                    json_pack("{s:{s:s, s:s}}", "passwordCredential", "displayName", display_name,
                              "endDateTime", cf_time_format(end_ms, end)),
                    &status, &reply, err);
    if (rc != CF_OK)
        goto out;
    if (status != 200 && status != 201) {
        rc = graph_error(status, reply, "add a client secret to the application", object_id,
                         NEEDS_OWNED, err);
        goto out;
    }
    const char *key_id = json_string_value(json_object_get(reply, "keyId"));
    const char *secret = json_string_value(json_object_get(reply, "secretText"));
    const char *end_text = json_string_value(json_object_get(reply, "endDateTime"));
    if (!key_id || !secret || strlen(key_id) >= sizeof(out->key_id)) {
        rc = cf_err_set(err, CF_EIO, SYSTEM " answered addPassword without keyId or secretText");
        goto out;
    }
    snprintf(out->key_id, sizeof(out->key_id), "%s", key_id);
    out->secret_text = strdup(secret);
    if (!out->secret_text) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    if (!end_text || cf_time_parse(end_text, &out->end_ms, &time_err) != CF_OK)
        out->end_ms = end_ms;
out:
    if (rc != CF_OK)
        cf_graph_password_release(out);
    if (reply) {
        /* the answer's copy of secretText */
        const char *secret_copy = json_string_value(json_object_get(reply, "secretText"));
        if (secret_copy)
            sodium_memzero((char *)secret_copy, strlen(secret_copy));
    }
    json_decref(reply);
    return rc;
}

enum cf_rc cf_graph_remove_password(const struct cf_provider_conn *conn, const char *object_id,
                                    const char *key_id, struct cf_err *err)
{
    char path[300];
    json_t *reply = NULL;
    long status = 0;
    enum cf_rc rc = app_path(object_id, "removePassword", path, sizeof(path), err);
    if (rc != CF_OK)
        return rc;
    rc = graph_post(conn, path, json_pack("{s:s}", "keyId", key_id ? key_id : ""), &status, &reply,
                    err);
    if (rc == CF_OK && status != 204 && status != 200)
        rc = graph_error(status, reply, "remove a client secret from the application", object_id,
                         NEEDS_OWNED, err);
    json_decref(reply);
    return rc;
}

enum cf_rc cf_graph_revoke_password(const struct cf_provider_conn *conn, const char *object_id,
                                    const char *key_id, struct cf_err *err)
{
    enum cf_rc rc = cf_graph_remove_password(conn, object_id, key_id, err);
    if (rc != CF_ENOTFOUND)
        return rc;
    /* 404: the keyId or the application is gone. A keyId the application no longer has is
     * already revoked (repeatable); an unknown application stays an error. */
    json_t *creds = NULL, *c;
    size_t i;
    bool held = false;
    struct cf_err list_err = {0};
    if (cf_graph_password_list(conn, object_id, &creds, &list_err) != CF_OK)
        return rc;
    json_array_foreach(creds, i, c)
    {
        const char *key = json_string_value(json_object_get(c, "keyId"));
        held = held || (key && strcmp(key, key_id) == 0);
    }
    json_decref(creds);
    return held ? rc : CF_OK;
}

enum cf_rc cf_graph_password_list(const struct cf_provider_conn *conn, const char *object_id,
                                  json_t **creds, struct cf_err *err)
{
    struct session s = {0};
    char path[360];
    json_t *reply = NULL;
    long status = 0;
    enum cf_rc rc = app_path(object_id, NULL, path, sizeof(path) - 64, err);

    *creds = NULL;
    if (rc != CF_OK)
        return rc;
    strncat(path, "?$select=id,appId,passwordCredentials", sizeof(path) - strlen(path) - 1);
    rc = session_open(&s, conn, err);
    if (rc == CF_OK)
        rc = graph_call(&s, "GET", path, NULL, &status, &reply, err);
    if (rc != CF_OK)
        goto out;
    if (status != 200) {
        rc = graph_error(status, reply, "read the application", object_id, NEEDS_OWNED, err);
        goto out;
    }
    json_t *list = json_object_get(reply, "passwordCredentials");
    if (!json_is_array(list)) {
        rc = cf_err_set(err, CF_EIO, SYSTEM " answered without passwordCredentials");
        goto out;
    }
    *creds = json_incref(list);
out:
    session_close(&s);
    json_decref(reply);
    return rc;
}

enum cf_rc cf_graph_check(const struct cf_provider_conn *conn, json_t **report, struct cf_err *err)
{
    struct session s = {0};
    const char *client = cf_azure_cred(conn, "clientId");
    char path[300], client_e[200];
    json_t *reply = NULL;
    long status = 0;
    enum cf_rc rc;

    *report = NULL;
    if (!client || !cf_azure_escape(client, client_e, sizeof(client_e)))
        return cf_err_field(err, CF_EINVAL, "clientId",
                            "the connection's credentials lack \"clientId\"");
    rc = session_open(&s, conn, err);
    if (rc != CF_OK)
        goto out;
    snprintf(path, sizeof(path), "servicePrincipals(appId='%s')?$select=id,appId,displayName",
             client_e);
    rc = graph_call(&s, "GET", path, NULL, &status, &reply, err);
    if (rc != CF_OK)
        goto out;
    if (status != 200) {
        rc = graph_error(status, reply, "read the service principal of", client, NEEDS_READ, err);
        goto out;
    }
    *report = json_pack("{s:b, s:n, s:[s], s:s}", "ok", 1, "expiresAt", "scopes", CF_GRAPH_SCOPE,
                        "detail", "Microsoft Graph accepted the connection");
    if (!*report)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
out:
    session_close(&s);
    json_decref(reply);
    return rc;
}

/* ---- the rotator ---- */

static const char *param(const json_t *params, const char *name)
{
    return json_string_value(json_object_get(params, name));
}

static enum cf_rc acs_config_check(const json_t *params, struct cf_err *err)
{
    static const char *const required[] = {"objectId", "clientId"};
    const json_t *timeout = json_object_get(params, "verifyTimeoutMs");
    const json_t *tenant = json_object_get(params, "tenantId");
    if (!json_is_object(params))
        return cf_err_field(err, CF_EVALIDATION, "parameters", "the parameters must be an object");
    for (size_t i = 0; i < CF_ARRAY_SIZE(required); i++) {
        const char *v = param(params, required[i]);
        if (!v || !v[0] || strlen(v) > 128)
            return cf_err_field(err, CF_EVALIDATION, required[i],
                                "\"%s\" is required (the application's %s, at most 128 characters)",
                                required[i], i == 0 ? "object id" : "application (client) id");
    }
    if (tenant && (!json_is_string(tenant) || !json_string_value(tenant)[0] ||
                   json_string_length(tenant) > 128))
        return cf_err_field(err, CF_EVALIDATION, "tenantId", "\"tenantId\" must be a tenant id");
    if (timeout && (!json_is_integer(timeout) || json_integer_value(timeout) < 0 ||
                    json_integer_value(timeout) > CF_GRAPH_VERIFY_MAX_MS))
        return cf_err_field(err, CF_EVALIDATION, "verifyTimeoutMs",
                            "\"verifyTimeoutMs\" must be an integer from 0 to %d (the wait must "
                            "end well within the rotation's 5 minute claim)",
                            CF_GRAPH_VERIFY_MAX_MS);
    return CF_OK;
}

/* The displayName issue gives a secret: names Coffer, the rotation and its generation, and carries
 * the rotation id that list_issued looks for. */
static void display_name(const struct cf_rotation_ref *ref, char *out, size_t size)
{
    snprintf(out, size, "coffer rotation %.64s (%s) generation %lld", ref->name ? ref->name : "",
             ref->id, (long long)ref->generation);
}

static enum cf_rc acs_issue(const struct cf_provider_conn *conn, const json_t *params,
                            const struct cf_rotation_ref *ref, struct cf_rotated_cred *out,
                            struct cf_err *err)
{
    struct cf_graph_password p = {0};
    char name[256];
    int64_t lifetime = ref->lifetime_ms > 0 ? ref->lifetime_ms : CF_GRAPH_DEFAULT_LIFETIME_MS;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = acs_config_check(params, err);
    if (rc != CF_OK)
        return rc;
    display_name(ref, name, sizeof(name));
    rc = cf_graph_add_password(conn, param(params, "objectId"), name, cf_now_ms() + lifetime, &p,
                               err);
    if (rc != CF_OK)
        return rc;
    snprintf(out->id, sizeof(out->id), "%s", p.key_id);
    out->expires_at = p.end_ms;
    out->secret_len = strlen(p.secret_text);
    out->outputs = json_pack("{s:s, s:s}", "clientId", param(params, "clientId"), "clientSecret",
                             p.secret_text);
    out->secret = p.secret_text;
    p.secret_text = NULL;
    if (!out->outputs) {
        cf_rotated_cred_release(out);
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    cf_graph_password_release(&p);
    return rc;
}

static enum cf_rc acs_verify(const struct cf_provider_conn *conn, const json_t *params,
                             const struct cf_rotated_cred *cred, struct cf_err *err)
{
    const char *tenant = param(params, "tenantId");
    const json_t *timeout = json_object_get(params, "verifyTimeoutMs");
    int64_t bound =
        json_is_integer(timeout) ? json_integer_value(timeout) : CF_GRAPH_VERIFY_DEFAULT_MS;
    json_t *creds = NULL;
    char *token = NULL;
    long wait_ms = VERIFY_FIRST_WAIT_MS;
    enum cf_rc rc = acs_config_check(params, err);
    if (rc != CF_OK)
        return rc;
    if (!cred->secret)
        return cf_err_set(err, CF_EINVAL, "the credential to verify has no secret");
    if (!tenant)
        tenant = cf_azure_cred(conn, "tenantId");
    creds = json_pack("{s:s?, s:s, s:s%, s:s?}", "tenantId", tenant, "clientId",
                      param(params, "clientId"), "clientSecret", cred->secret, cred->secret_len,
                      "authorityHost", cf_azure_cred(conn, "authorityHost"));
    if (!creds)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    /* a connection of the rotated application itself, without the token cache: every try must
     * reach the token endpoint */
    struct cf_provider_conn self = {
        .app = "azure-client-secrets", .method = "client-secret", .credentials = creds};
    /* a secret addPassword just made is refused (AADSTS7000215) until it has propagated through
     * Entra ID: that refusal is retried until the bound; anything else (an unknown tenant or
     * application, an expired secret, an outage) ends the wait at once */
    int64_t deadline = cf_mono_us() / 1000 + bound;
    long aadsts = 0;
    for (;;) {
        rc = cf_entra_token_code(&self, CF_GRAPH_SCOPE, &token, &aadsts, err);
        cf_entra_token_free(token);
        token = NULL;
        if (rc != CF_EUNAUTH || aadsts != CF_ENTRA_AADSTS_INVALID_SECRET ||
            cf_mono_us() / 1000 + wait_ms > deadline)
            break;
        cf_azure_sleep_ms(wait_ms);
        wait_ms = wait_ms * 2 > VERIFY_MAX_WAIT_MS ? VERIFY_MAX_WAIT_MS : wait_ms * 2;
    }
    if (rc != CF_OK) {
        char cause[sizeof(err->msg)];
        int retry_after_s = err->retry_after_s;
        snprintf(cause, sizeof(cause), "%s", err->msg);
        if (aadsts == CF_ENTRA_AADSTS_INVALID_SECRET)
            cf_err_set(err, rc, "the new client secret \"%.40s\" was refused for %lld ms: %s",
                       cred->id, (long long)bound, cause);
        else
            cf_err_set(err, rc, "the new client secret \"%.40s\" could not be tested: %s", cred->id,
                       cause);
        err->retry_after_s = retry_after_s;
    }
    const char *secret = json_string_value(json_object_get(creds, "clientSecret"));
    if (secret)
        sodium_memzero((char *)secret, strlen(secret));
    json_decref(creds);
    return rc;
}

static enum cf_rc acs_revoke(const struct cf_provider_conn *conn, const json_t *params,
                             const struct cf_rotation_ref *ref, const char *id, struct cf_err *err)
{
    (void)ref;
    enum cf_rc rc = acs_config_check(params, err);
    if (rc != CF_OK)
        return rc;
    if (!id || !id[0])
        return cf_err_set(err, CF_EINVAL, "no client secret id to revoke");
    return cf_graph_revoke_password(conn, param(params, "objectId"), id, err);
}

static enum cf_rc acs_list_issued(const struct cf_provider_conn *conn, const json_t *params,
                                  const struct cf_rotation_ref *ref, char ***ids, size_t *n,
                                  struct cf_err *err)
{
    json_t *creds = NULL, *c;
    char marker[CF_ROTATED_ID_MAX + 4];
    size_t i;
    enum cf_rc rc = acs_config_check(params, err);

    *ids = NULL;
    *n = 0;
    if (rc != CF_OK)
        return rc;
    rc = cf_graph_password_list(conn, param(params, "objectId"), &creds, err);
    if (rc != CF_OK)
        return rc;
    snprintf(marker, sizeof(marker), "(%s)", ref->id);
    *ids = calloc(json_array_size(creds) + 1, sizeof(**ids));
    if (!*ids)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    json_array_foreach(creds, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "displayName"));
        const char *key = json_string_value(json_object_get(c, "keyId"));
        if (rc != CF_OK || !name || !key || !strstr(name, marker))
            continue;
        if (!((*ids)[*n] = strdup(key)))
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        else
            (*n)++;
    }
    if (rc != CF_OK) {
        cf_rotated_ids_free(*ids, *n);
        *ids = NULL;
        *n = 0;
    }
    json_decref(creds);
    return rc;
}

static void acs_plan(const struct cf_provider_conn *conn, const json_t *params,
                     const struct cf_rotation_ref *ref, cf_rotation_plan_fn fn, void *ctx)
{
    const char *host = cf_azure_cred(conn, "graphHost");
    const char *authority = cf_azure_cred(conn, "authorityHost");
    const char *tenant = param(params, "tenantId");
    const char *object = param(params, "objectId");
    char target[URL_MAX];
    (void)ref;
    if (!tenant)
        tenant = cf_azure_cred(conn, "tenantId");
    snprintf(target, sizeof(target), "%s/v1.0/applications/%.128s/addPassword",
             host ? host : CF_GRAPH_HOST, object ? object : "?");
    fn(ctx, "issue", "POST", target, "add a client secret named after the rotation");
    snprintf(target, sizeof(target), "%s/%.128s/oauth2/v2.0/token",
             authority ? authority : CF_ENTRA_AUTHORITY, tenant ? tenant : "?");
    fn(ctx, "verify", "POST", target, "obtain a token with the new client secret");
    snprintf(target, sizeof(target), "%s/v1.0/applications/%.128s/removePassword",
             host ? host : CF_GRAPH_HOST, object ? object : "?");
    fn(ctx, "revoke", "POST", target, "remove the previous client secret after the grace period");
}

/* The client secret keyId of the application, made before the rotation (in the portal, by a
 * script): found among the application's passwordCredentials, its endDateTime read. */
static enum cf_rc acs_adopt(const struct cf_provider_conn *conn, const json_t *params,
                            const char *id, int64_t *expires_at, struct cf_err *err)
{
    json_t *creds = NULL, *c;
    size_t i;
    bool found = false;
    enum cf_rc rc = acs_config_check(params, err);

    *expires_at = 0;
    if (rc == CF_OK && !cf_uuid_valid(id))
        rc = cf_err_field(err, CF_EVALIDATION, "currentCredentialId",
                          "currentCredentialId: '%.40s' is not a client secret's keyId (a UUID)",
                          id);
    if (rc == CF_OK)
        rc = cf_graph_password_list(conn, param(params, "objectId"), &creds, err);
    json_array_foreach(creds, i, c)
    {
        const char *key = json_string_value(json_object_get(c, "keyId"));
        const char *end = json_string_value(json_object_get(c, "endDateTime"));
        struct cf_err ignored;
        if (rc != CF_OK || found || !key || strcasecmp(key, id) != 0)
            continue;
        found = true;
        if (end && cf_time_parse(end, expires_at, &ignored) != CF_OK)
            *expires_at = 0;
    }
    json_decref(creds);
    if (rc == CF_OK && !found)
        rc = cf_err_field(err, CF_ENOTFOUND, "currentCredentialId",
                          "currentCredentialId: the application %s has no client secret with "
                          "keyId %s",
                          param(params, "objectId"), id);
    return rc;
}

const struct cf_rotator_ops cf_rotator_azure_client_secret = {
    .type = "azure-client-secret",
    .connection_app = "azure-client-secrets",
    .outputs = outputs,
    .secret_output = "clientSecret",
    .config_check = acs_config_check,
    .issue = acs_issue,
    .verify = acs_verify,
    .revoke = acs_revoke,
    .list_issued = acs_list_issued,
    .plan = acs_plan,
    .adopt = acs_adopt,
};

/* ---- group memberships of a user (single sign-on's group overage) ---- */

enum cf_rc cf_graph_member_groups(const struct cf_provider_conn *conn, const char *user_id,
                                  size_t max, char ***groups, size_t *n, struct cf_err *err)
{
    char id_e[200], path[300];
    json_t *reply = NULL;
    long status = 0;
    char **out = NULL;
    size_t count = 0;
    enum cf_rc rc;

    *groups = NULL;
    *n = 0;
    if (!user_id || !user_id[0] || !cf_azure_escape(user_id, id_e, sizeof(id_e)))
        return cf_err_set(err, CF_EINVAL, "the user's object id (oid) is missing or too long");
    snprintf(path, sizeof(path), "users/%s/getMemberGroups", id_e);
    rc = graph_post(conn, path, json_pack("{s:b}", "securityEnabledOnly", 0), &status, &reply, err);
    if (rc == CF_OK && status != 200)
        rc = graph_error(status, reply, "list the groups of user", user_id,
                         "User.Read.All and GroupMember.Read.All", err);
    json_t *value = json_object_get(reply, "value");
    if (rc == CF_OK && !json_is_array(value))
        rc = cf_err_set(err, CF_EIO, SYSTEM "'s getMemberGroups answer has no \"value\" array");
    if (rc == CF_OK && json_array_size(value) > max)
        rc = cf_err_set(err, CF_EIO,
                        "user \"%.64s\" is in %zu groups, more than the %zu single sign-on takes",
                        user_id, json_array_size(value), max);
    if (rc == CF_OK && json_array_size(value) > 0) {
        out = calloc(json_array_size(value), sizeof(*out));
        if (!out)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    size_t i;
    json_t *g;
    json_array_foreach(value, i, g)
    {
        if (rc != CF_OK)
            break;
        if (!json_is_string(g) || json_string_length(g) == 0 || json_string_length(g) > 320) {
            rc = cf_err_set(err, CF_EIO,
                            SYSTEM "'s getMemberGroups answer holds a value that is "
                                   "not a group id");
            break;
        }
        out[count] = strdup(json_string_value(g));
        if (!out[count]) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            break;
        }
        count++;
    }
    if (rc == CF_OK) {
        *groups = out;
        *n = count;
    } else {
        for (size_t k = 0; k < count; k++)
            free(out[k]);
        free(out);
    }
    json_decref(reply);
    return rc;
}
