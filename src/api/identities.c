/* HTTP handlers for machine identities: the identities themselves, universal auth attached to them
 * (settings and client secrets), JWT auth attached to them (settings), and their project
 * memberships. See docs/api.md, Machine identities and universal auth. Bodies follow Infisical's
 * shapes (trusted IPs as [{ipAddress}], rules with action names); the core (core/identities.h)
 * validates and checks that the caller is the admin. A new client secret passes through this file
 * once, into the response; its buffer is wiped here and the JSON copies are wiped by the wiping
 * allocator. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api/http.h"
#include "auth/jwt.h"
#include "api/render.h"
#include "core/identities.h"
#include "crypto/token.h"
#include "util/str.h"
#include "util/wipemem.h"
#include "util/time.h"
#include "util/banned.h"

/* Rules per membership in a request; larger arrays are refused before anything is allocated. */
#define RULES_MAX 64

static const struct {
    const char *name;
    enum cf_action action;
} rule_actions[] = {
    {"read", CF_ACTION_READ},
    {"create", CF_ACTION_CREATE},
    {"edit", CF_ACTION_EDIT},
    {"delete", CF_ACTION_DELETE},
};

#define N_RULE_ACTIONS (CF_ARRAY_SIZE(rule_actions))

/* ---- rendering ------------------------------------------------------------------------------- */

/* The authMethods of an identity: bit 0 universal auth, bit 1 JWT auth, bit 2 Kubernetes auth. */
#define METHOD_UA 1u
#define METHOD_JWT 2u
#define METHOD_K8S 4u

static json_t *render_methods(unsigned methods)
{
    json_t *array = json_array();
    if (array && (methods & METHOD_UA))
        array = cf_render_append(array, json_string("universal-auth"));
    if (array && (methods & METHOD_JWT))
        array = cf_render_append(array, json_string("jwt-auth"));
    if (array && (methods & METHOD_K8S))
        array = cf_render_append(array, json_string("kubernetes-auth"));
    return array;
}

/* Identity: {id, name, authMethods: ["universal-auth", "jwt-auth", "kubernetes-auth"] or fewer,
 * createdAt, updatedAt}. */
static json_t *render_identity(const struct cf_identity *identity, unsigned methods)
{
    return json_pack("{s:s, s:s, s:o, s:o, s:o}", "id", identity->id, "name", identity->name,
                     "authMethods", render_methods(methods), "createdAt",
                     cf_json_time(identity->created_at), "updatedAt",
                     cf_json_time(identity->updated_at));
}

/* A stored comma-separated range list as [{ipAddress}, ...]. */
static json_t *render_ips(const char *list)
{
    json_t *array = json_array();
    struct cf_list_iter it;
    struct cf_str item;
    cf_list_init(&it, list);
    while (array && cf_list_next(&it, &item))
        if (item.n)
            array = cf_render_append(array, json_pack("{s:s#}", "ipAddress", item.p, (int)item.n));
    return array;
}

/* An auth method's configuration: its own members (method, NULL when out of memory), then
 * accessTokenTTL, accessTokenMaxTTL, accessTokenNumUsesLimit, accessTokenTrustedIps from its token
 * policy, then createdAt and updatedAt. Takes method; NULL when out of memory. */
static json_t *render_method(json_t *method, const struct cf_token_policy *policy,
                             int64_t created_at, int64_t updated_at)
{
    json_t *rest =
        json_pack("{s:I, s:I, s:I, s:o, s:o, s:o}", "accessTokenTTL", (json_int_t)policy->ttl,
                  "accessTokenMaxTTL", (json_int_t)policy->max_ttl, "accessTokenNumUsesLimit",
                  (json_int_t)policy->num_uses_limit, "accessTokenTrustedIps",
                  render_ips(policy->trusted_ips), "createdAt", cf_json_time(created_at),
                  "updatedAt", cf_json_time(updated_at));
    if (method && rest && json_object_update(method, rest) == 0) {
        json_decref(rest);
        return method;
    }
    json_decref(method);
    json_decref(rest);
    return NULL;
}

/* identityUniversalAuth: {id, identityId, clientId, clientSecretTrustedIps, and the members of
 * render_method}. The configuration has no id of its own: its client id stands in. */
static json_t *render_ua(const struct cf_ua_config *config)
{
    return render_method(json_pack("{s:s, s:s, s:s, s:o}", "id", config->client_id, "identityId",
                                   config->identity_id, "clientId", config->client_id,
                                   "clientSecretTrustedIps",
                                   render_ips(config->client_secret_trusted_ips)),
                         &config->token, config->created_at, config->updated_at);
}

/* ClientSecret: {id, identityId, description, clientSecretPrefix, clientSecretNumUses,
 * clientSecretNumUsesLimit, clientSecretTTL, expiresAt, isClientSecretRevoked, createdAt,
 * updatedAt}; clientSecretTTL is the lifetime given at creation in seconds (0: never expires). */
static json_t *render_client_secret(const struct cf_client_secret *cs)
{
    int64_t ttl = 0;
    if (cs->expires_at > 0 && cs->expires_at > cs->created_at)
        ttl = (cs->expires_at - cs->created_at + 999) / 1000;
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:b, s:o, s:o}", "id", cs->id, "identityId",
        cs->identity_id, "description", cs->description, "clientSecretPrefix", cs->prefix,
        "clientSecretNumUses", (json_int_t)cs->num_uses, "clientSecretNumUsesLimit",
        (json_int_t)cs->num_uses_limit, "clientSecretTTL", (json_int_t)ttl, "expiresAt",
        cf_json_time(cs->expires_at), "isClientSecretRevoked", (int)cs->revoked, "createdAt",
        cf_json_time(cs->created_at), "updatedAt", cf_json_time(cs->updated_at));
}

static json_t *render_rule(const struct cf_membership_rule *rule)
{
    json_t *actions = json_array();
    for (size_t i = 0; actions && i < N_RULE_ACTIONS; i++) {
        if (rule->actions & (1u << rule_actions[i].action))
            actions = cf_render_append(actions, json_string(rule_actions[i].name));
    }
    /* The environment by its current slug; by its id once it was deleted (the rule then covers
     * nothing, and a new environment of the old name does not inherit it). */
    const char *env = rule->env_slug[0] ? rule->env_slug : rule->env_id;
    return json_pack("{s:o, s:o, s:o}", "actions", actions, "environment",
                     env[0] ? json_string(env) : json_null(), "secretPath",
                     rule->path_glob[0] ? json_string(rule->path_glob) : json_null());
}

/* identityMembership: {id, identityId, projectId, role, rules: [{actions, environment,
 * secretPath}], createdAt, updatedAt}. */
static json_t *render_membership(const struct cf_membership *m)
{
    json_t *rules = json_array();
    for (size_t i = 0; rules && i < m->n_rules; i++)
        rules = cf_render_append(rules, render_rule(&m->rules[i]));
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "id", m->id, "identityId",
                     m->identity_id, "projectId", m->project_id, "role", m->role, "rules", rules,
                     "createdAt", cf_json_time(m->created_at), "updatedAt",
                     cf_json_time(m->updated_at));
}

/* ---- identities ------------------------------------------------------------------------------ */

/* The auth methods attached to identity_id (METHOD_* bits); an identity gone meanwhile has none. */
static enum cf_rc has_universal_auth(struct cf_req *req, const char *identity_id,
                                     unsigned *attached, struct cf_err *err)
{
    struct cf_ua_config *config = calloc(1, sizeof(*config));
    struct cf_jwt_auth_config *jwt = calloc(1, sizeof(*jwt));
    struct cf_k8s_auth_config *k8s = calloc(1, sizeof(*k8s));
    enum cf_rc rc;

    *attached = 0;
    if (!config || !jwt || !k8s) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    rc = cf_ua_get(cf_req_core(req), cf_req_principal(req), identity_id, config, err);
    if (rc == CF_OK)
        *attached |= METHOD_UA;
    if (rc == CF_OK || rc == CF_ENOTFOUND)
        rc = cf_jwt_auth_get(cf_req_core(req), cf_req_principal(req), identity_id, jwt, err);
    if (rc == CF_OK)
        *attached |= METHOD_JWT;
    if (rc == CF_OK || rc == CF_ENOTFOUND)
        rc = cf_k8s_auth_get(cf_req_core(req), cf_req_principal(req), identity_id, k8s, err);
    if (rc == CF_OK)
        *attached |= METHOD_K8S;
    else if (rc == CF_ENOTFOUND)
        rc = CF_OK;
out:
    if (k8s)
        sodium_memzero(k8s, sizeof(*k8s));
    free(k8s);
    cf_jwt_auth_config_release(jwt);
    free(jwt);
    free(config);
    return rc;
}

/* Replies {identity} for identity, looking up its auth methods. */
static enum cf_rc reply_identity(struct cf_req *req, const struct cf_identity *identity,
                                 json_t **out, struct cf_err *err)
{
    unsigned attached = 0;
    enum cf_rc rc = has_universal_auth(req, identity->id, &attached, err);
    if (rc != CF_OK)
        return rc;
    return cf_render_reply_member("identity", render_identity(identity, attached), out, err);
}

/* POST /api/v1/identities {name} (organizationId and role ignored) -> {identity} */
static enum cf_rc create_identity(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_identity identity = {0};
    json_t *body = NULL;
    const char *name = NULL;
    enum cf_rc rc;

    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "name", true, &name, err);
    if (rc == CF_OK)
        rc = cf_identity_create(cf_req_core(req), cf_req_principal(req), name, &identity, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("identity", render_identity(&identity, 0), out, err);
    return rc;
}

/* GET /api/v1/identities -> {identities: [Identity]} */
static enum cf_rc list_identities(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_identity_list list = {0};
    json_t *array = NULL;
    enum cf_rc rc;

    rc = cf_identity_list(cf_req_core(req), cf_req_principal(req), &list, err);
    if (rc != CF_OK)
        return rc;
    array = json_array();
    for (size_t i = 0; array && i < list.n; i++) {
        unsigned attached = 0;
        rc = has_universal_auth(req, list.items[i].id, &attached, err);
        if (rc != CF_OK)
            break;
        array = cf_render_append(array, render_identity(&list.items[i], attached));
    }
    if (rc == CF_OK)
        rc = cf_render_reply_member("identities", array, out, err);
    else
        json_decref(array);
    cf_identity_list_release(&list);
    return rc;
}

/* GET /api/v1/identities/{identityId} -> {identity} */
static enum cf_rc get_identity(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_identity identity = {0};
    enum cf_rc rc;

    rc = cf_identity_get(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "identityId"),
                         &identity, err);
    if (rc == CF_OK)
        rc = reply_identity(req, &identity, out, err);
    return rc;
}

/* PATCH /api/v1/identities/{identityId} {name?} -> {identity} */
static enum cf_rc update_identity(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_identity identity = {0};
    const char *id = cf_req_param(req, "identityId");
    json_t *body = NULL;
    const char *name = NULL;
    enum cf_rc rc;

    rc = cf_req_json(req, false, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "name", false, &name, err);
    if (rc != CF_OK)
        return rc;
    if (name)
        rc = cf_identity_rename(cf_req_core(req), cf_req_principal(req), id, name, &identity, err);
    else /* nothing to change (Infisical's role is not Coffer's) */
        rc = cf_identity_get(cf_req_core(req), cf_req_principal(req), id, &identity, err);
    if (rc == CF_OK)
        rc = reply_identity(req, &identity, out, err);
    return rc;
}

/* DELETE /api/v1/identities/{identityId} -> {identity} (as it was) */
static enum cf_rc delete_identity(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_identity identity = {0};
    const char *id = cf_req_param(req, "identityId");
    unsigned attached = 0;
    enum cf_rc rc;

    /* Its auth methods are gone with it: ask first (this also answers 403 and 404). */
    rc = cf_identity_get(cf_req_core(req), cf_req_principal(req), id, &identity, err);
    if (rc == CF_OK)
        rc = has_universal_auth(req, identity.id, &attached, err);
    if (rc == CF_OK)
        rc = cf_identity_delete(cf_req_core(req), cf_req_principal(req), id, &identity, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("identity", render_identity(&identity, attached), out, err);
    return rc;
}

/* ---- universal auth -------------------------------------------------------------------------- */

/* Reads a trusted-IP list field into out as comma-separated ranges: [{ipAddress}, ...] (Infisical's
 * shape), an array of strings, or one comma-separated string. *present false when absent or null.
 * The ranges themselves are checked by the core. */
static enum cf_rc ips_field(json_t *body, const char *field, char out[CF_IPS_MAX + 1],
                            bool *present, struct cf_err *err)
{
    json_t *v = json_object_get(body, field);
    json_t *item;
    size_t i, len = 0;

    *present = false;
    out[0] = '\0';
    if (!v || json_is_null(v))
        return CF_OK;
    if (json_is_string(v)) {
        if (strlen(json_string_value(v)) != json_string_length(v))
            return cf_err_field(err, CF_EINVAL, field, "%s: must not contain NUL characters",
                                field);
        if (!cf_strlcpy(out, json_string_value(v), CF_IPS_MAX + 1))
            return cf_err_field(err, CF_EVALIDATION, field, "%s: at most %d characters", field,
                                CF_IPS_MAX);
        *present = true;
        return CF_OK;
    }
    if (!json_is_array(v))
        return cf_err_field(err, CF_EINVAL, field, "%s: expected an array of {ipAddress} objects",
                            field);
    json_array_foreach(v, i, item)
    {
        json_t *address = json_is_object(item) ? json_object_get(item, "ipAddress") : item;
        if (!json_is_string(address) ||
            strlen(json_string_value(address)) != json_string_length(address))
            return cf_err_field(err, CF_EINVAL, field,
                                "%s[%zu]: expected {ipAddress: \"<address or CIDR range>\"}", field,
                                i);
        size_t n = json_string_length(address);
        if (len + n + (len > 0) > CF_IPS_MAX)
            return cf_err_field(err, CF_EVALIDATION, field, "%s: at most %d characters", field,
                                CF_IPS_MAX);
        if (len > 0)
            out[len++] = ',';
        memcpy(out + len, json_string_value(address), n);
        len += n;
        out[len] = '\0';
    }
    *present = true;
    return CF_OK;
}

/* The token policy members of the body of any auth method's attach or update; ips is a
 * CF_IPS_MAX + 1 buffer the settings refer to. */
static enum cf_rc parse_token_settings(struct cf_req *req, char *ips,
                                       struct cf_token_settings *settings, struct cf_err *err)
{
    json_t *body = NULL;
    long long value = 0;
    enum cf_rc rc;

    memset(settings, 0, sizeof(*settings));
    rc = cf_req_json(req, false, &body, err);
    if (rc == CF_OK)
        rc = cf_json_int(body, "accessTokenTTL", 0, CF_TTL_MAX, &value, &settings->has_ttl, err);
    settings->ttl = value;
    if (rc == CF_OK)
        rc = cf_json_int(body, "accessTokenMaxTTL", 0, CF_TTL_MAX, &value, &settings->has_max_ttl,
                         err);
    settings->max_ttl = settings->has_max_ttl ? value : 0;
    if (rc == CF_OK)
        rc = cf_json_int(body, "accessTokenNumUsesLimit", 0, INT64_MAX, &value,
                         &settings->has_num_uses, err);
    settings->num_uses_limit = settings->has_num_uses ? value : 0;
    if (rc == CF_OK)
        rc = ips_field(body, "accessTokenTrustedIps", ips, &settings->has_trusted_ips, err);
    settings->trusted_ips = ips;
    return rc;
}

/* The body of a universal auth attach or update; ips points at two CF_IPS_MAX + 1 buffers the
 * settings refer to. */
static enum cf_rc parse_ua_settings(struct cf_req *req, char (*ips)[CF_IPS_MAX + 1],
                                    struct cf_ua_settings *settings, struct cf_err *err)
{
    json_t *body = NULL;
    enum cf_rc rc;

    memset(settings, 0, sizeof(*settings));
    rc = parse_token_settings(req, ips[0], &settings->token, err);
    if (rc == CF_OK)
        rc = cf_req_json(req, false, &body, err);
    if (rc == CF_OK)
        rc = ips_field(body, "clientSecretTrustedIps", ips[1], &settings->has_secret_ips, err);
    settings->client_secret_trusted_ips = ips[1];
    return rc;
}

/* POST (attach) and PATCH (update) /api/v1/auth/universal-auth/identities/{identityId}
 * {accessTokenTTL?, accessTokenMaxTTL?, accessTokenNumUsesLimit?, accessTokenTrustedIps?,
 * clientSecretTrustedIps?} -> {identityUniversalAuth}. Route data: non-NULL for attach. */
static enum cf_rc set_universal_auth(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const char *id = cf_req_param(req, "identityId");
    char(*ips)[CF_IPS_MAX + 1] = NULL;
    struct cf_ua_config *config = NULL;
    struct cf_ua_settings settings;
    enum cf_rc rc;

    ips = calloc(2, sizeof(*ips));
    config = calloc(1, sizeof(*config));
    if (!ips || !config) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    rc = parse_ua_settings(req, ips, &settings, err);
    if (rc != CF_OK)
        goto out;
    if (cf_req_route_data(req))
        rc = cf_ua_attach(cf_req_core(req), cf_req_principal(req), id, &settings, config, err);
    else
        rc = cf_ua_update(cf_req_core(req), cf_req_principal(req), id, &settings, config, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("identityUniversalAuth", render_ua(config), out, err);
out:
    free(config);
    free(ips);
    return rc;
}

/* After a successful read of an identity's auth method: with route data (the method's name), the
 * DELETE that removes it, its tokens with it; the reply is the configuration as it was. */
static enum cf_rc remove_if_asked(struct cf_req *req, const char *identity_id, struct cf_err *err)
{
    const char *method = cf_req_route_data(req);
    if (!method)
        return CF_OK;
    return cf_auth_method_remove(cf_req_core(req), cf_req_principal(req), identity_id, method, err);
}

/* GET (read) and DELETE (remove) /api/v1/auth/universal-auth/identities/{identityId} ->
 * {identityUniversalAuth} */
static enum cf_rc get_universal_auth(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_ua_config *config = calloc(1, sizeof(*config));
    enum cf_rc rc;

    if (!config)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    rc = cf_ua_get(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "identityId"), config,
                   err);
    if (rc == CF_OK)
        rc = remove_if_asked(req, config->identity_id, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("identityUniversalAuth", render_ua(config), out, err);
    free(config);
    return rc;
}

/* ---- JWT auth -------------------------------------------------------------------------------- */

/* identityJwtAuth: {id, identityId, configurationType, jwksUrl, jwksCaCert, publicKeys,
 * boundIssuer, boundAudiences, boundClaims, boundSubject, clockSkewLeeway, accessTokenTTL,
 * accessTokenMaxTTL,
 * accessTokenNumUsesLimit, accessTokenTrustedIps, createdAt, updatedAt}. The configuration has no
 * id of its own: the identity id stands in. */
static json_t *render_jwt_auth(const struct cf_jwt_auth_config *c)
{
    json_t *keys = json_loads(c->public_keys, 0, NULL);
    json_t *claims = json_loads(c->bound_claims, 0, NULL);
    return render_method(
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:o, s:s, s:I}", "id", c->identity_id,
                  "identityId", c->identity_id, "configurationType", c->configuration_type,
                  "jwksUrl", c->jwks_url, "jwksCaCert", c->jwks_ca_cert, "publicKeys",
                  keys ? keys : json_array(), "boundIssuer", c->bound_issuer, "boundAudiences",
                  c->bound_audiences, "boundClaims", claims ? claims : json_object(),
                  "boundSubject", c->bound_subject, "clockSkewLeeway",
                  (json_int_t)c->clock_skew_leeway),
        &c->token, c->created_at, c->updated_at);
}

/* A JSON member (array for publicKeys, object for boundClaims) as compact text into *text (free it
 * with cf_json_free_text); NULL when absent or null. */
static enum cf_rc json_text_field(json_t *body, const char *field, bool array, char **text,
                                  struct cf_err *err)
{
    json_t *v = json_object_get(body, field);
    *text = NULL;
    if (!v || json_is_null(v))
        return CF_OK;
    if (array ? !json_is_array(v) : !json_is_object(v))
        return cf_err_field(err, CF_EINVAL, field, "%s: expected an %s", field,
                            array ? "array of PEM public keys" : "object {claim: \"v1, v2\"}");
    *text = json_dumps(v, JSON_COMPACT);
    return *text ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
}

/* POST (attach) and PATCH (update) /api/v1/auth/jwt-auth/identities/{identityId}
 * {configurationType?, publicKeys?, jwksUrl?, jwksCaCert?, boundIssuer?, boundAudiences?,
 * boundClaims?, boundSubject?, accessTokenTTL?, accessTokenMaxTTL?, accessTokenNumUsesLimit?,
 * accessTokenTrustedIps?} -> {identityJwtAuth}. Route data: non-NULL for attach. */
static enum cf_rc set_jwt_auth(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const char *id = cf_req_param(req, "identityId");
    char(*ips)[CF_IPS_MAX + 1] = NULL;
    struct cf_jwt_auth_config *config = NULL;
    struct cf_jwt_auth_settings settings;
    char *keys = NULL, *claims = NULL;
    json_t *body = NULL;
    enum cf_rc rc;

    memset(&settings, 0, sizeof(settings));
    ips = calloc(2, sizeof(*ips));
    config = calloc(1, sizeof(*config));
    if (!ips || !config) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    rc = parse_token_settings(req, ips[0], &settings.token, err);
    if (rc == CF_OK)
        rc = cf_req_json(req, false, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "configurationType", false, &settings.configuration_type, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "jwksUrl", false, &settings.jwks_url, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "jwksCaCert", false, &settings.jwks_ca_cert, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "boundIssuer", false, &settings.bound_issuer, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "boundAudiences", false, &settings.bound_audiences, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "boundSubject", false, &settings.bound_subject, err);
    if (rc == CF_OK)
        rc = json_text_field(body, "publicKeys", true, &keys, err);
    if (rc == CF_OK)
        rc = json_text_field(body, "boundClaims", false, &claims, err);
    if (rc == CF_OK) {
        long long leeway = 0;
        bool present = false;
        rc = cf_json_int(body, "clockSkewLeeway", 0, CF_JWT_LEEWAY_MAX_S, &leeway, &present, err);
        settings.has_clock_skew_leeway = present;
        settings.clock_skew_leeway = leeway;
    }
    if (rc != CF_OK)
        goto out;
    settings.public_keys = keys;
    settings.bound_claims = claims;
    if (cf_req_route_data(req))
        rc =
            cf_jwt_auth_attach(cf_req_core(req), cf_req_principal(req), id, &settings, config, err);
    else
        rc =
            cf_jwt_auth_update(cf_req_core(req), cf_req_principal(req), id, &settings, config, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("identityJwtAuth", render_jwt_auth(config), out, err);
out:
    cf_json_free_text(keys);
    cf_json_free_text(claims);
    cf_jwt_auth_config_release(config);
    free(config);
    free(ips);
    return rc;
}

/* GET (read) and DELETE (remove) /api/v1/auth/jwt-auth/identities/{identityId} ->
 * {identityJwtAuth} */
static enum cf_rc get_jwt_auth(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_jwt_auth_config *config = calloc(1, sizeof(*config));
    enum cf_rc rc;

    if (!config)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    rc = cf_jwt_auth_get(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "identityId"),
                         config, err);
    if (rc == CF_OK)
        rc = remove_if_asked(req, config->identity_id, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("identityJwtAuth", render_jwt_auth(config), out, err);
    cf_jwt_auth_config_release(config);
    free(config);
    return rc;
}

/* ---- Kubernetes auth ------------------------------------------------------------------------- */

/* identityKubernetesAuth: {id, identityId, kubernetesHost, caCert, hasTokenReviewerJwt,
 * allowedNamespaces, allowedNames, allowedAudience, accessTokenTTL, accessTokenMaxTTL,
 * accessTokenNumUsesLimit, accessTokenTrustedIps, createdAt, updatedAt}. The reviewer JWT is a
 * credential: only whether one is set is shown. */
static json_t *render_k8s_auth(const struct cf_k8s_auth_config *c)
{
    return render_method(json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s}", "id", c->identity_id,
                                   "identityId", c->identity_id, "kubernetesHost",
                                   c->kubernetes_host, "caCert", c->ca_cert, "hasTokenReviewerJwt",
                                   c->token_reviewer_jwt[0] != '\0', "allowedNamespaces",
                                   c->allowed_namespaces, "allowedNames", c->allowed_names,
                                   "allowedAudience", c->allowed_audience),
                         &c->token, c->created_at, c->updated_at);
}

/* POST (attach) and PATCH (update) /api/v1/auth/kubernetes-auth/identities/{identityId}
 * {kubernetesHost?, caCert?, tokenReviewerJwt?, allowedNamespaces?, allowedNames?,
 * allowedAudience?, accessTokenTTL?, accessTokenMaxTTL?, accessTokenNumUsesLimit?,
 * accessTokenTrustedIps?} -> {identityKubernetesAuth}. Route data: non-NULL for attach. */
static enum cf_rc set_k8s_auth(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const char *id = cf_req_param(req, "identityId");
    char(*ips)[CF_IPS_MAX + 1] = NULL;
    struct cf_k8s_auth_config *config = NULL;
    struct cf_k8s_auth_settings settings;
    json_t *body = NULL;
    enum cf_rc rc;

    memset(&settings, 0, sizeof(settings));
    ips = calloc(2, sizeof(*ips));
    config = calloc(1, sizeof(*config));
    if (!ips || !config) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    rc = parse_token_settings(req, ips[0], &settings.token, err);
    if (rc == CF_OK)
        rc = cf_req_json(req, false, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "kubernetesHost", false, &settings.kubernetes_host, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "caCert", false, &settings.ca_cert, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "tokenReviewerJwt", false, &settings.token_reviewer_jwt, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "allowedNamespaces", false, &settings.allowed_namespaces, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "allowedNames", false, &settings.allowed_names, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "allowedAudience", false, &settings.allowed_audience, err);
    if (rc != CF_OK)
        goto out;
    if (cf_req_route_data(req))
        rc =
            cf_k8s_auth_attach(cf_req_core(req), cf_req_principal(req), id, &settings, config, err);
    else
        rc =
            cf_k8s_auth_update(cf_req_core(req), cf_req_principal(req), id, &settings, config, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("identityKubernetesAuth", render_k8s_auth(config), out, err);
out:
    if (config)
        sodium_memzero(config, sizeof(*config));
    free(config);
    free(ips);
    return rc;
}

/* GET (read) and DELETE (remove) /api/v1/auth/kubernetes-auth/identities/{identityId} ->
 * {identityKubernetesAuth} */
static enum cf_rc get_k8s_auth(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_k8s_auth_config *config = calloc(1, sizeof(*config));
    enum cf_rc rc;

    if (!config)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    rc = cf_k8s_auth_get(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "identityId"),
                         config, err);
    if (rc == CF_OK)
        rc = remove_if_asked(req, config->identity_id, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("identityKubernetesAuth", render_k8s_auth(config), out, err);
    sodium_memzero(config, sizeof(*config));
    free(config);
    return rc;
}

/* ---- client secrets -------------------------------------------------------------------------- */

/* POST /api/v1/auth/universal-auth/identities/{identityId}/client-secrets
 * {description = "", ttl = 0, expiresAt?, numUsesLimit = 0} -> {clientSecret, clientSecretData} */
static enum cf_rc create_client_secret(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_client_secret data = {0};
    char secret[CF_TOKEN_MAX];
    json_t *body = NULL;
    const char *description = NULL, *expires_text = NULL;
    long long ttl = 0, num_uses_limit = 0;
    int64_t expires_at = 0;
    bool present = false;
    enum cf_rc rc;

    secret[0] = '\0';
    rc = cf_req_json(req, false, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "description", false, &description, err);
    if (rc == CF_OK)
        rc = cf_json_int(body, "ttl", 0, CF_TTL_MAX, &ttl, &present, err);
    if (rc == CF_OK)
        rc = cf_json_int(body, "numUsesLimit", 0, INT64_MAX, &num_uses_limit, &present, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "expiresAt", false, &expires_text, err);
    if (rc == CF_OK && expires_text) {
        struct cf_err parse_err = {0};
        if (cf_time_parse(expires_text, &expires_at, &parse_err) != CF_OK)
            rc = cf_err_field(err, CF_EVALIDATION, "expiresAt",
                              "expiresAt: not an RFC 3339 time (%s)", parse_err.msg);
    }
    if (rc != CF_OK)
        return rc;
    rc = cf_client_secret_create(cf_req_core(req), cf_req_principal(req),
                                 cf_req_param(req, "identityId"), description ? description : "",
                                 ttl, expires_at, num_uses_limit, secret, sizeof(secret), &data,
                                 err);
    if (rc == CF_OK)
        rc = cf_render_reply(json_pack("{s:s, s:o}", "clientSecret", secret, "clientSecretData",
                                       render_client_secret(&data)),
                             out, err);
    sodium_memzero(secret, sizeof(secret));
    return rc;
}

/* GET /api/v1/auth/universal-auth/identities/{identityId}/client-secrets
 * -> {clientSecretData: [ClientSecret]} */
static enum cf_rc list_client_secrets(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_client_secret_list list = {0};
    json_t *array = NULL;
    enum cf_rc rc;

    rc = cf_client_secret_list(cf_req_core(req), cf_req_principal(req),
                               cf_req_param(req, "identityId"), &list, err);
    if (rc != CF_OK)
        return rc;
    array = json_array();
    for (size_t i = 0; array && i < list.n; i++)
        array = cf_render_append(array, render_client_secret(&list.items[i]));
    rc = cf_render_reply_member("clientSecretData", array, out, err);
    cf_client_secret_list_release(&list);
    return rc;
}

/* POST /api/v1/auth/universal-auth/identities/{identityId}/client-secrets/{clientSecretId}/revoke
 * -> {clientSecretData} */
static enum cf_rc revoke_client_secret(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_client_secret data = {0};
    enum cf_rc rc;

    rc = cf_client_secret_revoke(cf_req_core(req), cf_req_principal(req),
                                 cf_req_param(req, "identityId"),
                                 cf_req_param(req, "clientSecretId"), &data, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("clientSecretData", render_client_secret(&data), out, err);
    return rc;
}

/* ---- memberships ----------------------------------------------------------------------------- */

/* Copies the optional string field key of rules[i] into out (size bytes); "" when absent or null.
 */
static enum cf_rc rule_string(json_t *item, const char *key, size_t i, char *out, size_t size,
                              struct cf_err *err)
{
    char field[CF_ERR_FIELD_MAX];
    json_t *v = json_object_get(item, key);

    out[0] = '\0';
    if (!v || json_is_null(v))
        return CF_OK;
    snprintf(field, sizeof(field), "rules[%zu].%s", i, key);
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v))
        return cf_err_field(err, CF_EINVAL, field, "%s: expected a string", field);
    if (!cf_strlcpy(out, json_string_value(v), size))
        return cf_err_field(err, CF_EVALIDATION, field, "%s: at most %zu characters", field,
                            size - 1);
    return CF_OK;
}

/* rules[i] {actions: ["read", ...], environment?, secretPath?} into rule. */
static enum cf_rc parse_rule(json_t *item, size_t i, struct cf_membership_rule *rule,
                             struct cf_err *err)
{
    char field[CF_ERR_FIELD_MAX];
    json_t *actions, *action;
    size_t j;
    enum cf_rc rc;

    snprintf(field, sizeof(field), "rules[%zu]", i);
    if (!json_is_object(item))
        return cf_err_field(err, CF_EINVAL, field, "%s: expected an object", field);
    snprintf(field, sizeof(field), "rules[%zu].actions", i);
    actions = json_object_get(item, "actions");
    if (!actions || json_is_null(actions))
        return cf_err_field(err, CF_EVALIDATION, field, "%s: required", field);
    if (!json_is_array(actions))
        return cf_err_field(err, CF_EINVAL, field, "%s: expected an array of action names", field);
    json_array_foreach(actions, j, action)
    {
        const char *name = json_string_value(action);
        size_t k;
        if (!name)
            return cf_err_field(err, CF_EINVAL, field, "%s: expected an array of action names",
                                field);
        for (k = 0; k < N_RULE_ACTIONS; k++) {
            if (strcmp(name, rule_actions[k].name) == 0)
                break;
        }
        if (k == N_RULE_ACTIONS)
            return cf_err_field(err, CF_EVALIDATION, field,
                                "%s: unknown action '%.32s' (read, create, edit, delete)", field,
                                name);
        rule->actions |= 1u << rule_actions[k].action;
    }
    rc = rule_string(item, "environment", i, rule->env_slug, sizeof(rule->env_slug), err);
    if (rc == CF_OK)
        rc = rule_string(item, "secretPath", i, rule->path_glob, sizeof(rule->path_glob), err);
    return rc;
}

/* POST /api/v2/workspace/{projectId}/identity-memberships/{identityId} {role, rules?}
 * -> {identityMembership} */
static enum cf_rc set_membership(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_membership membership = {0};
    struct cf_membership_rule *rules = NULL;
    json_t *body = NULL, *rules_json = NULL;
    const char *role = NULL;
    size_t n_rules = 0;
    enum cf_rc rc;

    rc = cf_req_json(req, true, &body, err);
    if (rc == CF_OK)
        rc = cf_json_string(body, "role", true, &role, err);
    if (rc != CF_OK)
        return rc;
    rules_json = json_object_get(body, "rules");
    if (rules_json && !json_is_null(rules_json)) {
        if (!json_is_array(rules_json))
            return cf_err_field(err, CF_EINVAL, "rules", "rules: expected an array");
        n_rules = json_array_size(rules_json);
        if (n_rules > RULES_MAX)
            return cf_err_field(err, CF_EVALIDATION, "rules", "rules: at most %d rules", RULES_MAX);
    }
    if (n_rules > 0) {
        rules = calloc(n_rules, sizeof(*rules));
        if (!rules)
            return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    for (size_t i = 0; rc == CF_OK && i < n_rules; i++)
        rc = parse_rule(json_array_get(rules_json, i), i, &rules[i], err);
    if (rc == CF_OK)
        rc = cf_membership_set(cf_req_core(req), cf_req_principal(req),
                               cf_req_param(req, "projectId"), cf_req_param(req, "identityId"),
                               role, rules, n_rules, &membership, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("identityMembership", render_membership(&membership), out, err);
    cf_membership_release(&membership);
    free(rules);
    return rc;
}

/* GET /api/v2/workspace/{projectId}/identity-memberships
 * -> {identityMemberships: [identityMembership + identity: {id, name}]} */
static enum cf_rc list_memberships(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_membership_list list = {0};
    struct cf_identity_list identities = {0};
    json_t *array = NULL;
    enum cf_rc rc;

    rc = cf_membership_list(cf_req_core(req), cf_req_principal(req), cf_req_param(req, "projectId"),
                            &list, err);
    if (rc == CF_OK && list.n > 0)
        rc = cf_identity_list(cf_req_core(req), cf_req_principal(req), &identities, err);
    if (rc != CF_OK)
        goto out;
    array = json_array();
    for (size_t i = 0; array && i < list.n; i++) {
        const struct cf_membership *m = &list.items[i];
        const char *name = "";
        for (size_t j = 0; j < identities.n; j++) {
            if (strcmp(identities.items[j].id, m->identity_id) == 0) {
                name = identities.items[j].name;
                break;
            }
        }
        json_t *item = render_membership(m);
        if (item &&
            json_object_set_new(item, "identity",
                                json_pack("{s:s, s:s}", "id", m->identity_id, "name", name)) != 0) {
            json_decref(item);
            item = NULL;
        }
        array = cf_render_append(array, item);
    }
    rc = cf_render_reply_member("identityMemberships", array, out, err);
out:
    cf_identity_list_release(&identities);
    cf_membership_list_release(&list);
    return rc;
}

/* DELETE /api/v2/workspace/{projectId}/identity-memberships/{identityId} -> {identityMembership}
 * (as it was) */
static enum cf_rc remove_membership(struct cf_req *req, json_t **out, struct cf_err *err)
{
    struct cf_membership membership = {0};
    enum cf_rc rc;

    rc = cf_membership_remove(cf_req_core(req), cf_req_principal(req),
                              cf_req_param(req, "projectId"), cf_req_param(req, "identityId"),
                              &membership, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("identityMembership", render_membership(&membership), out, err);
    cf_membership_release(&membership);
    return rc;
}

static const char remove_ua[] = "universal-auth", remove_jwt[] = "jwt-auth",
                  remove_k8s[] = "kubernetes-auth";
static const int attach = 1;

const struct cf_route cf_routes_identities[] = {
    {"POST", "/api/v1/identities", create_identity, false},
    {"GET", "/api/v1/identities", list_identities, false},
    {"GET", "/api/v1/identities/:identityId", get_identity, false},
    {"PATCH", "/api/v1/identities/:identityId", update_identity, false},
    {"DELETE", "/api/v1/identities/:identityId", delete_identity, false},
    {"POST", "/api/v1/auth/universal-auth/identities/:identityId", set_universal_auth, false,
     &attach},
    {"GET", "/api/v1/auth/universal-auth/identities/:identityId", get_universal_auth, false},
    {"DELETE", "/api/v1/auth/universal-auth/identities/:identityId", get_universal_auth, false,
     remove_ua},
    {"PATCH", "/api/v1/auth/universal-auth/identities/:identityId", set_universal_auth, false},
    {"POST", "/api/v1/auth/jwt-auth/identities/:identityId", set_jwt_auth, false, &attach},
    {"GET", "/api/v1/auth/jwt-auth/identities/:identityId", get_jwt_auth, false},
    {"DELETE", "/api/v1/auth/jwt-auth/identities/:identityId", get_jwt_auth, false, remove_jwt},
    {"PATCH", "/api/v1/auth/jwt-auth/identities/:identityId", set_jwt_auth, false},
    {"POST", "/api/v1/auth/kubernetes-auth/identities/:identityId", set_k8s_auth, false, &attach},
    {"GET", "/api/v1/auth/kubernetes-auth/identities/:identityId", get_k8s_auth, false},
    {"DELETE", "/api/v1/auth/kubernetes-auth/identities/:identityId", get_k8s_auth, false,
     remove_k8s},
    {"PATCH", "/api/v1/auth/kubernetes-auth/identities/:identityId", set_k8s_auth, false},
    {"POST", "/api/v1/auth/universal-auth/identities/:identityId/client-secrets",
     create_client_secret, false},
    {"GET", "/api/v1/auth/universal-auth/identities/:identityId/client-secrets",
     list_client_secrets, false},
    {"POST",
     "/api/v1/auth/universal-auth/identities/:identityId/client-secrets/:clientSecretId/revoke",
     revoke_client_secret, false},
    {"POST", "/api/v2/workspace/:projectId/identity-memberships/:identityId", set_membership,
     false},
    {"GET", "/api/v2/workspace/:projectId/identity-memberships", list_memberships, false},
    {"DELETE", "/api/v2/workspace/:projectId/identity-memberships/:identityId", remove_membership,
     false},
    {NULL, NULL, NULL, false},
};
