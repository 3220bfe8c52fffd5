/* HTTP handlers for machine identities: the identities themselves, the auth methods attached to
 * them (universal auth with its client secrets, JWT auth, Kubernetes auth: one table row each,
 * auth_methods below, with its body parser and renderer), and their project memberships. See
 * docs/api.md, Machine identities and universal auth. Bodies follow Infisical's shapes (trusted IPs
 * as [{ipAddress}], rules with action names); the core (core/identities.h) validates and checks
 * that the caller is the admin. A new client secret passes through this file once, into the
 * response; its buffer is wiped here and the JSON copies are wiped by the wiping allocator. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "api/http.h"
#include "auth/jwt.h"
#include "api/render.h"
#include "core/identities.h"
#include "core/groups.h"
#include "core/users.h"
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
    {"read", CF_ACTION_READ},     {"create", CF_ACTION_CREATE}, {"edit", CF_ACTION_EDIT},
    {"delete", CF_ACTION_DELETE}, {"lease", CF_ACTION_LEASE},
};

#define N_RULE_ACTIONS (CF_ARRAY_SIZE(rule_actions))

/* ---- rendering ------------------------------------------------------------------------------- */

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
/* ---- auth methods: body parsers -------------------------------------------------------------- */

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

/* A method's settings as parsed from the body of an attach or update, with the buffers they refer
 * to: ips[0] holds accessTokenTrustedIps, ips[1] universal auth's clientSecretTrustedIps, texts the
 * JSON members kept as compact text (JWT auth's publicKeys and boundClaims; cf_json_free_text).
 * Allocated zeroed (it is large). */
struct method_body {
    union {
        struct cf_ua_settings ua;
        struct cf_jwt_auth_settings jwt;
        struct cf_k8s_auth_settings k8s;
    } settings;
    char ips[2][CF_IPS_MAX + 1];
    char *texts[2];
};

/* The token policy members of the body of any auth method's attach or update; ips is a
 * CF_IPS_MAX + 1 buffer the settings refer to. body may be NULL (no body). */
static enum cf_rc parse_token_settings(json_t *body, char *ips, struct cf_token_settings *settings,
                                       struct cf_err *err)
{
    long long value = 0;
    enum cf_rc rc;

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

/* A text member of a method's body: an optional JSON string, borrowed from the body into the
 * const char * at offset at of the method's settings. */
struct text_member {
    const char *name;
    size_t at;
};

/* Reads members[0..n) of body into settings, in that order (the first error wins). */
static enum cf_rc text_members(json_t *body, const struct text_member *members, size_t n,
                               void *settings, struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    for (size_t i = 0; rc == CF_OK && i < n; i++)
        rc = cf_json_string(body, members[i].name, false,
                            (const char **)((char *)settings + members[i].at), err);
    return rc;
}

/* Universal auth: {accessToken*?, clientSecretTrustedIps?}. */
static enum cf_rc parse_ua(json_t *body, struct method_body *b, struct cf_err *err)
{
    struct cf_ua_settings *s = &b->settings.ua;
    enum cf_rc rc = parse_token_settings(body, b->ips[0], &s->token, err);
    if (rc == CF_OK)
        rc = ips_field(body, "clientSecretTrustedIps", b->ips[1], &s->has_secret_ips, err);
    s->client_secret_trusted_ips = b->ips[1];
    return rc;
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

static const struct text_member jwt_texts[] = {
    {"configurationType", offsetof(struct cf_jwt_auth_settings, configuration_type)},
    {"jwksUrl", offsetof(struct cf_jwt_auth_settings, jwks_url)},
    {"jwksCaCert", offsetof(struct cf_jwt_auth_settings, jwks_ca_cert)},
    {"boundIssuer", offsetof(struct cf_jwt_auth_settings, bound_issuer)},
    {"boundAudiences", offsetof(struct cf_jwt_auth_settings, bound_audiences)},
    {"boundSubject", offsetof(struct cf_jwt_auth_settings, bound_subject)},
};

/* JWT auth: {configurationType?, jwksUrl?, jwksCaCert?, boundIssuer?, boundAudiences?,
 * boundSubject?, publicKeys?, boundClaims?, clockSkewLeeway?, accessToken*?}. */
static enum cf_rc parse_jwt(json_t *body, struct method_body *b, struct cf_err *err)
{
    struct cf_jwt_auth_settings *s = &b->settings.jwt;
    long long leeway = 0;
    enum cf_rc rc = parse_token_settings(body, b->ips[0], &s->token, err);

    if (rc == CF_OK)
        rc = text_members(body, jwt_texts, CF_ARRAY_SIZE(jwt_texts), s, err);
    if (rc == CF_OK)
        rc = json_text_field(body, "publicKeys", true, &b->texts[0], err);
    if (rc == CF_OK)
        rc = json_text_field(body, "boundClaims", false, &b->texts[1], err);
    if (rc == CF_OK)
        rc = cf_json_int(body, "clockSkewLeeway", 0, CF_JWT_LEEWAY_MAX_S, &leeway,
                         &s->has_clock_skew_leeway, err);
    s->clock_skew_leeway = leeway;
    s->public_keys = b->texts[0];
    s->bound_claims = b->texts[1];
    return rc;
}

static const struct text_member k8s_texts[] = {
    {"kubernetesHost", offsetof(struct cf_k8s_auth_settings, kubernetes_host)},
    {"caCert", offsetof(struct cf_k8s_auth_settings, ca_cert)},
    {"tokenReviewerJwt", offsetof(struct cf_k8s_auth_settings, token_reviewer_jwt)},
    {"allowedNamespaces", offsetof(struct cf_k8s_auth_settings, allowed_namespaces)},
    {"allowedNames", offsetof(struct cf_k8s_auth_settings, allowed_names)},
    {"allowedAudience", offsetof(struct cf_k8s_auth_settings, allowed_audience)},
};

/* Kubernetes auth: {kubernetesHost?, caCert?, tokenReviewerJwt?, allowedNamespaces?,
 * allowedNames?, allowedAudience?, accessToken*?}. */
static enum cf_rc parse_k8s(json_t *body, struct method_body *b, struct cf_err *err)
{
    struct cf_k8s_auth_settings *s = &b->settings.k8s;
    enum cf_rc rc = parse_token_settings(body, b->ips[0], &s->token, err);

    if (rc == CF_OK)
        rc = text_members(body, k8s_texts, CF_ARRAY_SIZE(k8s_texts), s, err);
    return rc;
}

/* ---- auth methods: renderers ----------------------------------------------------------------- */

/* identityUniversalAuth: {id, identityId, clientId, clientSecretTrustedIps, and the members of
 * render_method}. The configuration has no id of its own: its client id stands in. */
static json_t *render_ua(const void *config)
{
    const struct cf_ua_config *c = config;
    return render_method(json_pack("{s:s, s:s, s:s, s:o}", "id", c->client_id, "identityId",
                                   c->identity_id, "clientId", c->client_id,
                                   "clientSecretTrustedIps",
                                   render_ips(c->client_secret_trusted_ips)),
                         &c->token, c->created_at, c->updated_at);
}

/* identityJwtAuth: {id, identityId, configurationType, jwksUrl, jwksCaCert, publicKeys,
 * boundIssuer, boundAudiences, boundClaims, boundSubject, clockSkewLeeway, accessTokenTTL,
 * accessTokenMaxTTL,
 * accessTokenNumUsesLimit, accessTokenTrustedIps, createdAt, updatedAt}. The configuration has no
 * id of its own: the identity id stands in. */
static json_t *render_jwt_auth(const void *config)
{
    const struct cf_jwt_auth_config *c = config;
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

/* identityKubernetesAuth: {id, identityId, kubernetesHost, caCert, hasTokenReviewerJwt,
 * allowedNamespaces, allowedNames, allowedAudience, accessTokenTTL, accessTokenMaxTTL,
 * accessTokenNumUsesLimit, accessTokenTrustedIps, createdAt, updatedAt}. The reviewer JWT is a
 * credential: only whether one is set is shown. */
static json_t *render_k8s_auth(const void *config)
{
    const struct cf_k8s_auth_config *c = config;
    return render_method(json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s}", "id", c->identity_id,
                                   "identityId", c->identity_id, "kubernetesHost",
                                   c->kubernetes_host, "caCert", c->ca_cert, "hasTokenReviewerJwt",
                                   c->token_reviewer_jwt[0] != '\0', "allowedNamespaces",
                                   c->allowed_namespaces, "allowedNames", c->allowed_names,
                                   "allowedAudience", c->allowed_audience),
                         &c->token, c->created_at, c->updated_at);
}

/* ---- auth methods: one row each -------------------------------------------------------------- */

/* An auth method as the API serves it at /api/v1/auth/<name>/identities/{identityId}: POST
 * attaches, PATCH updates, GET reads, DELETE removes (with every token it issued; the reply is the
 * configuration as it was). The rows are in the order of an identity's authMethods. */
struct api_method {
    const char *name;   /* the path segment, the authMethods entry, cf_auth_method_remove's name */
    const char *member; /* the reply's member: {identityUniversalAuth: ...} */
    const struct cf_auth_method *core;
    size_t identity_id; /* offsetof the configuration's identity_id */
    /* The method's body members into b->settings (the union member the core method takes). */
    enum cf_rc (*parse)(json_t *body, struct method_body *b, struct cf_err *err);
    /* The configuration (of core) as the reply's member; NULL when out of memory. */
    json_t *(*render)(const void *config);
};

enum { METHOD_UA, METHOD_JWT, METHOD_K8S, N_METHODS };

static const struct api_method auth_methods[N_METHODS] = {
    [METHOD_UA] = {"universal-auth", "identityUniversalAuth", &cf_auth_universal,
                   offsetof(struct cf_ua_config, identity_id), parse_ua, render_ua},
    [METHOD_JWT] = {"jwt-auth", "identityJwtAuth", &cf_auth_jwt,
                    offsetof(struct cf_jwt_auth_config, identity_id), parse_jwt, render_jwt_auth},
    [METHOD_K8S] = {"kubernetes-auth", "identityKubernetesAuth", &cf_auth_kubernetes,
                    offsetof(struct cf_k8s_auth_config, identity_id), parse_k8s, render_k8s_auth},
};

/* POST (attach) and PATCH (update) of the route's method -> {<member>: configuration}. */
static enum cf_rc set_method(struct cf_req *req, bool attach, json_t **out, struct cf_err *err)
{
    const struct api_method *m = cf_req_route_data(req);
    struct method_body *b = calloc(1, sizeof(*b));
    void *config = calloc(1, cf_auth_method_config_size(m->core));
    json_t *body = NULL;
    enum cf_rc rc;

    if (!b || !config) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    rc = cf_req_json(req, false, &body, err);
    if (rc == CF_OK)
        rc = m->parse(body, b, err);
    if (rc == CF_OK)
        rc = cf_auth_method_set(cf_req_core(req), cf_req_principal(req), m->core,
                                cf_req_param(req, "identityId"), &b->settings, attach, config, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member(m->member, m->render(config), out, err);
out:
    if (config)
        cf_auth_method_release(m->core, config);
    free(config);
    if (b) {
        for (size_t i = 0; i < CF_ARRAY_SIZE(b->texts); i++)
            cf_json_free_text(b->texts[i]);
        free(b);
    }
    return rc;
}

/* GET (read) and DELETE (remove) of the route's method -> {<member>: configuration} */
static enum cf_rc read_method(struct cf_req *req, bool remove, json_t **out, struct cf_err *err)
{
    const struct api_method *m = cf_req_route_data(req);
    void *config = calloc(1, cf_auth_method_config_size(m->core));
    enum cf_rc rc;

    if (!config)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    rc = cf_auth_method_get(cf_req_core(req), cf_req_principal(req), m->core,
                            cf_req_param(req, "identityId"), config, err);
    if (rc == CF_OK && remove)
        rc = cf_auth_method_remove(cf_req_core(req), cf_req_principal(req),
                                   (const char *)config + m->identity_id, m->name, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member(m->member, m->render(config), out, err);
    cf_auth_method_release(m->core, config);
    free(config);
    return rc;
}

static enum cf_rc attach_method(struct cf_req *req, json_t **out, struct cf_err *err)
{
    return set_method(req, true, out, err);
}

static enum cf_rc update_method(struct cf_req *req, json_t **out, struct cf_err *err)
{
    return set_method(req, false, out, err);
}

static enum cf_rc get_method(struct cf_req *req, json_t **out, struct cf_err *err)
{
    return read_method(req, false, out, err);
}

static enum cf_rc remove_method(struct cf_req *req, json_t **out, struct cf_err *err)
{
    return read_method(req, true, out, err);
}

/* ---- identities ------------------------------------------------------------------------------ */

/* The authMethods of an identity: bit i set for auth_methods[i] attached. */
static json_t *render_methods(unsigned methods)
{
    json_t *array = json_array();
    for (size_t i = 0; array && i < N_METHODS; i++)
        if (methods & (1u << i))
            array = cf_render_append(array, json_string(auth_methods[i].name));
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

/* The auth methods attached to identity_id (bit i for auth_methods[i]); an identity gone meanwhile
 * has none. */
static enum cf_rc attached_methods(struct cf_req *req, const char *identity_id, unsigned *attached,
                                   struct cf_err *err)
{
    enum cf_rc rc = CF_OK;

    *attached = 0;
    for (size_t i = 0; rc == CF_OK && i < N_METHODS; i++) {
        const struct cf_auth_method *m = auth_methods[i].core;
        void *config = calloc(1, cf_auth_method_config_size(m));
        if (!config)
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        rc = cf_auth_method_get(cf_req_core(req), cf_req_principal(req), m, identity_id, config,
                                err);
        if (rc == CF_OK)
            *attached |= 1u << i;
        else if (rc == CF_ENOTFOUND)
            rc = CF_OK;
        cf_auth_method_release(m, config);
        free(config);
    }
    return rc;
}

/* Replies {identity} for identity, looking up its auth methods. */
static enum cf_rc reply_identity(struct cf_req *req, const struct cf_identity *identity,
                                 json_t **out, struct cf_err *err)
{
    unsigned attached = 0;
    enum cf_rc rc = attached_methods(req, identity->id, &attached, err);
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
        rc = attached_methods(req, list.items[i].id, &attached, err);
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
        rc = attached_methods(req, identity.id, &attached, err);
    if (rc == CF_OK)
        rc = cf_identity_delete(cf_req_core(req), cf_req_principal(req), id, &identity, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member("identity", render_identity(&identity, attached), out, err);
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
                                "%s: unknown action '%.32s' (read, create, edit, delete, lease)",
                                field, name);
        rule->actions |= 1u << rule_actions[k].action;
    }
    rc = rule_string(item, "environment", i, rule->env_slug, sizeof(rule->env_slug), err);
    if (rc == CF_OK)
        rc = rule_string(item, "secretPath", i, rule->path_glob, sizeof(rule->path_glob), err);
    return rc;
}

/* Which members a membership route is about (its route data): machine identities or users. */
struct member_route {
    enum cf_member_kind kind;
    const char *param; /* the member's path parameter */
    const char *one;   /* the member of the answer that holds one membership */
    const char *many;  /* ... and a list of them */
};

static const struct member_route identity_members = {CF_MEMBER_IDENTITY, "identityId",
                                                     "identityMembership", "identityMemberships"};
static const struct member_route user_members = {CF_MEMBER_USER, "userId", "userMembership",
                                                 "userMemberships"};
static const struct member_route group_members = {CF_MEMBER_GROUP, "groupId", "groupMembership",
                                                  "groupMemberships"};

/* POST /api/v2/workspace/{projectId}/identity-memberships/{identityId} {role, rules?}
 * -> {identityMembership}; the same for users under user-memberships/{userId} (id or email) */
static enum cf_rc set_membership(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const struct member_route *route = cf_req_route_data(req);
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
        rc = cf_member_set(cf_req_core(req), cf_req_principal(req), route->kind,
                           cf_req_param(req, "projectId"), cf_req_param(req, route->param), role,
                           rules, n_rules, &membership, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member(route->one, render_membership(&membership), out, err);
    cf_membership_release(&membership);
    free(rules);
    return rc;
}

/* The member object of a listed membership: {id, name} of an identity, {id, email, name} of a
 * user, {id, name, externalId} of a group. */
static json_t *render_member(const struct cf_membership *m,
                             const struct cf_identity_list *identities,
                             const struct cf_user_list *users, const struct cf_group_list *groups)
{
    for (size_t j = 0; j < groups->n; j++) {
        if (strcmp(groups->items[j].id, m->identity_id) == 0)
            return json_pack("{s:s, s:s, s:s}", "id", m->identity_id, "name", groups->items[j].name,
                             "externalId", groups->items[j].external_id);
    }
    for (size_t j = 0; j < identities->n; j++) {
        if (strcmp(identities->items[j].id, m->identity_id) == 0)
            return json_pack("{s:s, s:s}", "id", m->identity_id, "name", identities->items[j].name);
    }
    for (size_t j = 0; j < users->n; j++) {
        if (strcmp(users->items[j].id, m->identity_id) == 0)
            return json_pack("{s:s, s:s, s:s}", "id", m->identity_id, "email",
                             users->items[j].email, "name", users->items[j].name);
    }
    return json_pack("{s:s, s:s}", "id", m->identity_id, "name", "");
}

/* GET /api/v2/workspace/{projectId}/identity-memberships
 * -> {identityMemberships: [identityMembership + identity: {id, name}]}; for users
 * user-memberships -> {userMemberships: [userMembership + user: {id, email, name}]} */
static enum cf_rc list_memberships(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const struct member_route *route = cf_req_route_data(req);
    struct cf_membership_list list = {0};
    struct cf_identity_list identities = {0};
    struct cf_user_list users = {0};
    struct cf_group_list groups = {0};
    json_t *array = NULL;
    enum cf_rc rc;

    rc = cf_member_list(cf_req_core(req), cf_req_principal(req), route->kind,
                        cf_req_param(req, "projectId"), &list, err);
    if (rc == CF_OK && list.n > 0 && route->kind == CF_MEMBER_IDENTITY)
        rc = cf_identity_list(cf_req_core(req), cf_req_principal(req), &identities, err);
    if (rc == CF_OK && list.n > 0 && route->kind == CF_MEMBER_USER)
        rc = cf_users_list(cf_req_core(req), cf_req_principal(req), &users, err);
    if (rc == CF_OK && list.n > 0 && route->kind == CF_MEMBER_GROUP)
        rc = cf_groups_list(cf_req_core(req), cf_req_principal(req), &groups, err);
    if (rc != CF_OK)
        goto out;
    array = json_array();
    for (size_t i = 0; array && i < list.n; i++) {
        const struct cf_membership *m = &list.items[i];
        json_t *item = render_membership(m);
        const char *member = route->kind == CF_MEMBER_USER    ? "user"
                             : route->kind == CF_MEMBER_GROUP ? "group"
                                                              : "identity";
        if (item && json_object_set_new(item, member,
                                        render_member(m, &identities, &users, &groups)) != 0) {
            json_decref(item);
            item = NULL;
        }
        array = cf_render_append(array, item);
    }
    rc = cf_render_reply_member(route->many, array, out, err);
out:
    cf_group_list_release(&groups);
    cf_user_list_release(&users);
    cf_identity_list_release(&identities);
    cf_membership_list_release(&list);
    return rc;
}

/* DELETE /api/v2/workspace/{projectId}/identity-memberships/{identityId} -> {identityMembership}
 * (as it was); the same for users */
static enum cf_rc remove_membership(struct cf_req *req, json_t **out, struct cf_err *err)
{
    const struct member_route *route = cf_req_route_data(req);
    struct cf_membership membership = {0};
    enum cf_rc rc;

    rc = cf_member_remove(cf_req_core(req), cf_req_principal(req), route->kind,
                          cf_req_param(req, "projectId"), cf_req_param(req, route->param),
                          &membership, err);
    if (rc == CF_OK)
        rc = cf_render_reply_member(route->one, render_membership(&membership), out, err);
    cf_membership_release(&membership);
    return rc;
}

const struct cf_route cf_routes_identities[] = {
    {"POST", "/api/v1/identities", create_identity, false},
    {"GET", "/api/v1/identities", list_identities, false},
    {"GET", "/api/v1/identities/:identityId", get_identity, false},
    {"PATCH", "/api/v1/identities/:identityId", update_identity, false},
    {"DELETE", "/api/v1/identities/:identityId", delete_identity, false},
    {"POST", "/api/v1/auth/universal-auth/identities/:identityId", attach_method, false,
     &auth_methods[METHOD_UA]},
    {"GET", "/api/v1/auth/universal-auth/identities/:identityId", get_method, false,
     &auth_methods[METHOD_UA]},
    {"DELETE", "/api/v1/auth/universal-auth/identities/:identityId", remove_method, false,
     &auth_methods[METHOD_UA]},
    {"PATCH", "/api/v1/auth/universal-auth/identities/:identityId", update_method, false,
     &auth_methods[METHOD_UA]},
    {"POST", "/api/v1/auth/jwt-auth/identities/:identityId", attach_method, false,
     &auth_methods[METHOD_JWT]},
    {"GET", "/api/v1/auth/jwt-auth/identities/:identityId", get_method, false,
     &auth_methods[METHOD_JWT]},
    {"DELETE", "/api/v1/auth/jwt-auth/identities/:identityId", remove_method, false,
     &auth_methods[METHOD_JWT]},
    {"PATCH", "/api/v1/auth/jwt-auth/identities/:identityId", update_method, false,
     &auth_methods[METHOD_JWT]},
    {"POST", "/api/v1/auth/kubernetes-auth/identities/:identityId", attach_method, false,
     &auth_methods[METHOD_K8S]},
    {"GET", "/api/v1/auth/kubernetes-auth/identities/:identityId", get_method, false,
     &auth_methods[METHOD_K8S]},
    {"DELETE", "/api/v1/auth/kubernetes-auth/identities/:identityId", remove_method, false,
     &auth_methods[METHOD_K8S]},
    {"PATCH", "/api/v1/auth/kubernetes-auth/identities/:identityId", update_method, false,
     &auth_methods[METHOD_K8S]},
    {"POST", "/api/v1/auth/universal-auth/identities/:identityId/client-secrets",
     create_client_secret, false},
    {"GET", "/api/v1/auth/universal-auth/identities/:identityId/client-secrets",
     list_client_secrets, false},
    {"POST",
     "/api/v1/auth/universal-auth/identities/:identityId/client-secrets/:clientSecretId/revoke",
     revoke_client_secret, false},
    {"POST", "/api/v2/workspace/:projectId/identity-memberships/:identityId", set_membership, false,
     &identity_members},
    {"GET", "/api/v2/workspace/:projectId/identity-memberships", list_memberships, false,
     &identity_members},
    {"DELETE", "/api/v2/workspace/:projectId/identity-memberships/:identityId", remove_membership,
     false, &identity_members},
    {"POST", "/api/v2/workspace/:projectId/user-memberships/:userId", set_membership, false,
     &user_members},
    {"GET", "/api/v2/workspace/:projectId/user-memberships", list_memberships, false,
     &user_members},
    {"DELETE", "/api/v2/workspace/:projectId/user-memberships/:userId", remove_membership, false,
     &user_members},
    {"POST", "/api/v2/workspace/:projectId/group-memberships/:groupId", set_membership, false,
     &group_members},
    {"GET", "/api/v2/workspace/:projectId/group-memberships", list_memberships, false,
     &group_members},
    {"DELETE", "/api/v2/workspace/:projectId/group-memberships/:groupId", remove_membership, false,
     &group_members},
    {NULL, NULL, NULL, false},
};
