/* Machine identities, universal auth settings and client secrets, JWT auth settings, and project
 * memberships (see identities.h). Every operation is server administration: it asks cf_authz_admin
 * first, then resolves what it is given with Infisical's not-found wording, validates with the
 * API's field names (accessTokenTTL, rules[0].secretPath, ...), and makes one store call per change
 * so that every change is one transaction. A client secret exists in clear only in the caller's
 * buffer, once; the store keeps its keyed hash. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <jansson.h>

#include "auth/jwt.h"
#include "crypto/serverkey.h"
#include "core/authz.h"
#include "core/identities.h"
#include "core/groups.h"
#include "core/users.h"
#include "core/names.h"
#include "crypto/token.h"
#include "util/cidr.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define WHAT "manage identities"
#define OPEN_IPS "0.0.0.0/0,::/0"
#define DEFAULT_TTL 2592000 /* 30 days, Infisical's default */

/* Rules per membership; the HTTP handler refuses larger arrays before it allocates them. */
#define RULES_MAX 64

/* The actions a membership rule may name. */
#define RULE_ACTIONS                                                                               \
    (CF_ACTION_BIT(CF_ACTION_READ) | CF_ACTION_BIT(CF_ACTION_CREATE) |                             \
     CF_ACTION_BIT(CF_ACTION_EDIT) | CF_ACTION_BIT(CF_ACTION_DELETE) |                             \
     CF_ACTION_BIT(CF_ACTION_LEASE))

/* ---- helpers --------------------------------------------------------------------------------- */

static enum cf_rc identity_not_found(const char *id, struct cf_err *err)
{
    return cf_err_set(err, CF_ENOTFOUND, "Identity with ID '%s' not found", id);
}

/* The identity with id (a UUID; anything else is simply not found). */
static enum cf_rc find_identity(struct cf_core *core, const char *id, struct cf_identity *out,
                                struct cf_err *err)
{
    struct cf_store *st = core->store;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    if (!id || !*id)
        return cf_err_field(err, CF_EVALIDATION, "identityId", "identityId: required");
    if (!cf_uuid_valid(id))
        return identity_not_found(id, err);
    rc = cf_store_identity_get(st, id, out, err);
    if (rc == CF_ENOTFOUND)
        rc = identity_not_found(id, err);
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* The admin check and the identity, as every identity-scoped operation starts. */
static enum cf_rc admin_identity(struct cf_core *core, const struct cf_principal *who,
                                 const char *identity_id, struct cf_identity *out,
                                 struct cf_err *err)
{
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK)
        rc = find_identity(core, identity_id, out, err);
    return rc;
}

static enum cf_rc name_check(const char *name, struct cf_err *err)
{
    if (!name)
        return cf_err_field(err, CF_EVALIDATION, "name", "name: required");
    return cf_text_check(name, CF_NAME_MAX, true, "name", err);
}

static enum cf_rc duration_check(int64_t seconds, const char *field, struct cf_err *err)
{
    if (seconds < 0 || seconds > CF_TTL_MAX)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: must be between 0 and %lld", field,
                            CF_TTL_MAX);
    return CF_OK;
}

static enum cf_rc ips_check(const char *list, const char *field, struct cf_err *err)
{
    if (!list)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: required", field);
    if (strlen(list) > CF_IPS_MAX)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: at most %d characters", field,
                            CF_IPS_MAX);
    return cf_cidr_list_check(list, field, err);
}

/* ---- token policy --------------------------------------------------------------------------- */

void cf_token_policy_init(struct cf_token_policy *policy)
{
    memset(policy, 0, sizeof(*policy));
    policy->ttl = DEFAULT_TTL;
    policy->max_ttl = DEFAULT_TTL;
    cf_strlcpy(policy->trusted_ips, OPEN_IPS, sizeof(policy->trusted_ips));
}

enum cf_rc cf_token_policy_apply(const struct cf_token_settings *settings,
                                 struct cf_token_policy *policy, struct cf_err *err)
{
    struct cf_token_policy *next = NULL;
    enum cf_rc rc = CF_OK;

    if (!settings)
        return CF_OK;
    /* Built on a copy (2 KiB of IP list: off the stack) so that a refusal changes nothing. */
    next = malloc(sizeof(*next));
    if (!next)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    *next = *policy;
    if (settings->has_ttl) {
        rc = duration_check(settings->ttl, "accessTokenTTL", err);
        next->ttl = settings->ttl;
    }
    if (rc == CF_OK && settings->has_max_ttl) {
        rc = duration_check(settings->max_ttl, "accessTokenMaxTTL", err);
        next->max_ttl = settings->max_ttl;
    }
    if (rc == CF_OK && settings->has_num_uses) {
        if (settings->num_uses_limit < 0)
            rc = cf_err_field(err, CF_EVALIDATION, "accessTokenNumUsesLimit",
                              "accessTokenNumUsesLimit: must not be negative");
        next->num_uses_limit = settings->num_uses_limit;
    }
    if (rc == CF_OK && settings->has_trusted_ips) {
        rc = ips_check(settings->trusted_ips, "accessTokenTrustedIps", err);
        if (rc == CF_OK)
            cf_strlcpy(next->trusted_ips, settings->trusted_ips, sizeof(next->trusted_ips));
    }
    if (rc == CF_OK && next->max_ttl > 0 && next->ttl > next->max_ttl)
        rc = cf_err_field(err, CF_EVALIDATION, "accessTokenTTL",
                          "accessTokenTTL: cannot be greater than accessTokenMaxTTL");
    if (rc == CF_OK)
        *policy = *next;
    free(next);
    return rc;
}

/* Applies universal auth settings over config and validates the result. */
static enum cf_rc apply_ua_settings(const struct cf_ua_settings *settings,
                                    struct cf_ua_config *config, struct cf_err *err)
{
    enum cf_rc rc;

    if (!settings)
        return CF_OK;
    rc = cf_token_policy_apply(&settings->token, &config->token, err);
    if (rc == CF_OK && settings->has_secret_ips) {
        rc = ips_check(settings->client_secret_trusted_ips, "clientSecretTrustedIps", err);
        if (rc == CF_OK)
            cf_strlcpy(config->client_secret_trusted_ips, settings->client_secret_trusted_ips,
                       sizeof(config->client_secret_trusted_ips));
    }
    return rc;
}

/* ---- identities ------------------------------------------------------------------------------ */

enum cf_rc cf_identity_create(struct cf_core *core, const struct cf_principal *who,
                              const char *name, struct cf_identity *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_identity identity;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    memset(&identity, 0, sizeof(identity));
    rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK)
        rc = name_check(name, err);
    if (rc != CF_OK)
        return rc;
    cf_uuid_new(identity.id);
    cf_strlcpy(identity.name, name, sizeof(identity.name));
    identity.created_at = cf_now_ms();
    identity.updated_at = identity.created_at;
    rc = cf_store_identity_create(st, &identity, err);
    if (rc == CF_EEXIST)
        rc = cf_err_field(err, CF_EEXIST, "name", "Identity with name '%s' already exists", name);
    if (rc == CF_OK)
        *out = identity;
    return rc;
}

enum cf_rc cf_identity_get(struct cf_core *core, const struct cf_principal *who, const char *id,
                           struct cf_identity *out, struct cf_err *err)
{
    return admin_identity(core, who, id, out, err);
}

enum cf_rc cf_identity_list(struct cf_core *core, const struct cf_principal *who,
                            struct cf_identity_list *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK)
        rc = cf_store_identity_list(st, out, err);
    if (rc != CF_OK)
        cf_identity_list_release(out);
    return rc;
}

enum cf_rc cf_identity_rename(struct cf_core *core, const struct cf_principal *who, const char *id,
                              const char *name, struct cf_identity *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_identity identity;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = admin_identity(core, who, id, &identity, err);
    if (rc == CF_OK)
        rc = name_check(name, err);
    if (rc != CF_OK)
        return rc;
    cf_strlcpy(identity.name, name, sizeof(identity.name));
    identity.updated_at = cf_now_ms();
    rc = cf_store_identity_update(st, &identity, err);
    if (rc == CF_ENOTFOUND) /* deleted concurrently */
        rc = identity_not_found(id, err);
    else if (rc == CF_EEXIST)
        rc = cf_err_field(err, CF_EEXIST, "name", "Identity with name '%s' already exists", name);
    if (rc == CF_OK)
        *out = identity;
    return rc;
}

enum cf_rc cf_identity_delete(struct cf_core *core, const struct cf_principal *who, const char *id,
                              struct cf_identity *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_identity identity;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = admin_identity(core, who, id, &identity, err);
    if (rc != CF_OK)
        return rc;
    rc = cf_store_identity_delete(st, identity.id, err);
    if (rc == CF_ENOTFOUND) /* deleted concurrently */
        rc = identity_not_found(id, err);
    if (rc == CF_OK)
        *out = identity;
    return rc;
}

/* ---- auth methods: attach, update and get, one row per method ------------------------------ */

/* What differs between the auth methods when one is attached, updated or read. The callbacks take
 * the method's configuration (struct cf_ua_config, cf_jwt_auth_config, cf_k8s_auth_config) and
 * settings (struct cf_ua_settings, ...) as void pointers. */
struct cf_auth_method {
    const char *title;        /* "<title> is already attached to identity 'N'" */
    const char *not_attached; /* the CF_ENOTFOUND message; NULL: "<title> is not attached to ..." */
    size_t size;              /* of the configuration */
    size_t updated_at;        /* offsetof the configuration's updated_at */
    /* The configuration of a newly attached method of identity. */
    enum cf_rc (*defaults)(const struct cf_identity *identity, void *config, struct cf_err *err);
    /* Applies settings over config and validates the result. */
    enum cf_rc (*apply)(struct cf_core *core, const void *settings, void *config,
                        struct cf_err *err);
    enum cf_rc (*get)(struct cf_store *st, const char *identity_id, void *config,
                      struct cf_err *err);
    enum cf_rc (*save)(struct cf_store *st, const void *config, bool attach, struct cf_err *err);
    /* Frees what config holds and zeroes it (on every failure, so that out is left zeroed). */
    void (*release)(void *config);
};

static enum cf_rc method_not_attached(const struct cf_auth_method *m,
                                      const struct cf_identity *identity, struct cf_err *err)
{
    if (m->not_attached)
        return cf_err_set(err, CF_ENOTFOUND, "%s", m->not_attached);
    return cf_err_set(err, CF_ENOTFOUND, "%s is not attached to identity '%s'", m->title,
                      identity->name);
}

/* The attached configuration of m on identity into out. */
static enum cf_rc method_find(struct cf_core *core, const struct cf_auth_method *m,
                              const struct cf_identity *identity, void *out, struct cf_err *err)
{
    enum cf_rc rc = m->get(core->store, identity->id, out, err);
    if (rc == CF_ENOTFOUND)
        rc = method_not_attached(m, identity, err);
    return rc;
}

enum cf_rc cf_auth_method_set(struct cf_core *core, const struct cf_principal *who,
                              const struct cf_auth_method *m, const char *identity_id,
                              const void *settings, bool attach, void *out, struct cf_err *err)
{
    struct cf_identity identity;
    enum cf_rc rc;

    memset(out, 0, m->size);
    rc = admin_identity(core, who, identity_id, &identity, err);
    if (rc != CF_OK)
        return rc;
    rc = attach ? m->defaults(&identity, out, err) : method_find(core, m, &identity, out, err);
    if (rc == CF_OK)
        rc = m->apply(core, settings, out, err);
    if (rc != CF_OK)
        goto out;
    if (!attach)
        *(int64_t *)((char *)out + m->updated_at) = cf_now_ms();
    rc = m->save(core->store, out, attach, err);
    if (rc == CF_EEXIST && attach)
        rc = cf_err_set(err, CF_EEXIST, "%s is already attached to identity '%s'", m->title,
                        identity.name);
    else if (rc == CF_ENOTFOUND) /* deleted (or detached) concurrently */
        rc = attach ? identity_not_found(identity_id, err) : method_not_attached(m, &identity, err);
out:
    if (rc != CF_OK)
        m->release(out);
    return rc;
}

enum cf_rc cf_auth_method_get(struct cf_core *core, const struct cf_principal *who,
                              const struct cf_auth_method *m, const char *identity_id, void *out,
                              struct cf_err *err)
{
    struct cf_identity identity;
    enum cf_rc rc;

    memset(out, 0, m->size);
    rc = admin_identity(core, who, identity_id, &identity, err);
    if (rc == CF_OK)
        rc = method_find(core, m, &identity, out, err);
    if (rc != CF_OK)
        m->release(out);
    return rc;
}

size_t cf_auth_method_config_size(const struct cf_auth_method *m)
{
    return m->size;
}

void cf_auth_method_release(const struct cf_auth_method *m, void *config)
{
    m->release(config);
}

/* ---- universal auth -------------------------------------------------------------------------- */

static enum cf_rc ua_defaults(const struct cf_identity *identity, void *config, struct cf_err *err)
{
    struct cf_ua_config *c = config;
    (void)err;
    memcpy(c->identity_id, identity->id, sizeof(identity->id));
    cf_uuid_new(c->client_id);
    cf_token_policy_init(&c->token);
    cf_strlcpy(c->client_secret_trusted_ips, OPEN_IPS, sizeof(c->client_secret_trusted_ips));
    c->created_at = cf_now_ms();
    c->updated_at = c->created_at;
    return CF_OK;
}

static enum cf_rc ua_apply(struct cf_core *core, const void *settings, void *config,
                           struct cf_err *err)
{
    (void)core;
    return apply_ua_settings(settings, config, err);
}

static enum cf_rc ua_get(struct cf_store *st, const char *identity_id, void *config,
                         struct cf_err *err)
{
    return cf_store_ua_get(st, identity_id, config, err);
}

static enum cf_rc ua_save(struct cf_store *st, const void *config, bool attach, struct cf_err *err)
{
    return attach ? cf_store_ua_attach(st, config, err) : cf_store_ua_update(st, config, err);
}

static void ua_release(void *config)
{
    memset(config, 0, sizeof(struct cf_ua_config));
}

const struct cf_auth_method cf_auth_universal = {
    "universal auth",
    NULL,
    sizeof(struct cf_ua_config),
    offsetof(struct cf_ua_config, updated_at),
    ua_defaults,
    ua_apply,
    ua_get,
    ua_save,
    ua_release,
};

enum cf_rc cf_auth_method_remove(struct cf_core *core, const struct cf_principal *who,
                                 const char *identity_id, const char *auth_method,
                                 struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_identity identity;
    enum cf_rc rc = admin_identity(core, who, identity_id, &identity, err);
    if (rc == CF_OK)
        rc = cf_store_auth_method_remove(st, identity.id, auth_method, err);
    return rc;
}

/* ---- JWT auth -------------------------------------------------------------------------------- */

#define JWT_NOT_ATTACHED "JWT auth method not found for identity, did you configure JWT auth?"

/* Copies text (when given) into dst, an array of size bytes, after a length check. */
static enum cf_rc fixed_text(const char *text, char *dst, size_t size, const char *field,
                             struct cf_err *err)
{
    if (!text)
        return CF_OK;
    if (strlen(text) >= size)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: at most %zu characters", field,
                            size - 1);
    cf_strlcpy(dst, text, size);
    return CF_OK;
}

/* Replaces *dst (a heap text of a configuration) with a copy of text when given, after a length
 * check naming field. */
static enum cf_rc method_text(const char *text, char **dst, size_t max, const char *field,
                              struct cf_err *err)
{
    char *copy;

    if (!text)
        return CF_OK;
    if (strlen(text) > max)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: at most %zu characters", field, max);
    copy = strdup(text);
    if (!copy)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    free(*dst);
    *dst = copy;
    return CF_OK;
}

/* publicKeys: a JSON array of PEM public keys, each of which must load. */
static enum cf_rc public_keys_check(const char *text, struct cf_err *err)
{
    json_t *keys = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    enum cf_rc rc = CF_OK;
    size_t i;
    json_t *key;

    if (!json_is_array(keys))
        rc = cf_err_field(err, CF_EVALIDATION, "publicKeys", "publicKeys: must be an array");
    json_array_foreach(keys, i, key)
    {
        struct cf_jwt_keys *set = NULL;
        struct cf_err why = {0};
        if (rc != CF_OK)
            break;
        if (!json_is_string(key) ||
            cf_jwt_keys_from_pem(json_string_value(key), json_string_length(key), &set, &why) !=
                CF_OK)
            rc = cf_err_field(err, CF_EVALIDATION, "publicKeys", "publicKeys[%zu]: %s", i,
                              json_is_string(key) ? why.msg : "must be a PEM public key");
        cf_jwt_keys_free(set);
    }
    json_decref(keys);
    return rc;
}

/* boundClaims: a JSON object whose members are strings ("v1, v2"). */
static enum cf_rc bound_claims_check(const char *text, struct cf_err *err)
{
    json_t *claims = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    enum cf_rc rc = CF_OK;
    const char *name;
    json_t *value;

    if (!json_is_object(claims))
        rc = cf_err_field(err, CF_EVALIDATION, "boundClaims", "boundClaims: must be an object");
    json_object_foreach(claims, name, value)
    {
        if (rc == CF_OK && (!*name || !json_is_string(value)))
            rc = cf_err_field(err, CF_EVALIDATION, "boundClaims",
                              "boundClaims: values must be strings under non-empty names");
    }
    json_decref(claims);
    return rc;
}

/* Applies the given settings over config and validates the result. */
static enum cf_rc apply_jwt_settings(const struct cf_jwt_auth_settings *s,
                                     struct cf_jwt_auth_config *config, struct cf_err *err)
{
    const struct {
        const char *given;
        char **text;
        size_t max;
        const char *field;
    } texts[] = {
        {s->public_keys, &config->public_keys, CF_JWT_KEYS_TEXT_MAX, "publicKeys"},
        {s->jwks_url, &config->jwks_url, CF_JWT_TEXT_MAX, "jwksUrl"},
        {s->jwks_ca_cert, &config->jwks_ca_cert, CF_JWT_TEXT_MAX, "jwksCaCert"},
        {s->bound_issuer, &config->bound_issuer, CF_JWT_TEXT_MAX, "boundIssuer"},
        {s->bound_audiences, &config->bound_audiences, CF_JWT_TEXT_MAX, "boundAudiences"},
        {s->bound_claims, &config->bound_claims, CF_JWT_TEXT_MAX, "boundClaims"},
        {s->bound_subject, &config->bound_subject, CF_JWT_TEXT_MAX, "boundSubject"},
    };
    enum cf_rc rc;

    if (s->has_clock_skew_leeway) {
        if (s->clock_skew_leeway < 0 || s->clock_skew_leeway > CF_JWT_LEEWAY_MAX_S)
            return cf_err_field(err, CF_EVALIDATION, "clockSkewLeeway",
                                "clockSkewLeeway: seconds from 0 to %d", CF_JWT_LEEWAY_MAX_S);
        config->clock_skew_leeway = s->clock_skew_leeway;
    }
    rc = cf_token_policy_apply(&s->token, &config->token, err);
    if (rc == CF_OK && s->configuration_type && strcmp(s->configuration_type, "static") != 0 &&
        strcmp(s->configuration_type, "jwks") != 0)
        rc = cf_err_field(err, CF_EVALIDATION, "configurationType",
                          "configurationType: must be \"static\" or \"jwks\"");
    if (rc == CF_OK && s->configuration_type)
        cf_strlcpy(config->configuration_type, s->configuration_type,
                   sizeof(config->configuration_type));
    for (size_t i = 0; rc == CF_OK && i < CF_ARRAY_SIZE(texts); i++)
        rc = method_text(texts[i].given, texts[i].text, texts[i].max, texts[i].field, err);
    if (rc == CF_OK)
        rc = public_keys_check(config->public_keys, err);
    if (rc == CF_OK)
        rc = bound_claims_check(config->bound_claims, err);
    if (rc == CF_OK && strcmp(config->configuration_type, "static") == 0 &&
        strcmp(config->public_keys, "[]") == 0)
        rc = cf_err_field(err, CF_EVALIDATION, "publicKeys",
                          "publicKeys: at least one is required when configurationType is static");
    if (rc == CF_OK && strcmp(config->configuration_type, "jwks") == 0 && !config->jwks_url[0])
        rc = cf_err_field(err, CF_EVALIDATION, "jwksUrl",
                          "jwksUrl: required when configurationType is jwks");
    return rc;
}

/* The configuration of a newly attached JWT auth: every text allocated ("" but for the empty
 * JSON publicKeys and boundClaims). */
static enum cf_rc jwt_defaults(const struct cf_identity *identity, void *config, struct cf_err *err)
{
    struct cf_jwt_auth_config *out = config;
    char **texts[] = {&out->public_keys,  &out->jwks_url,        &out->jwks_ca_cert,
                      &out->bound_issuer, &out->bound_audiences, &out->bound_claims,
                      &out->bound_subject};

    memcpy(out->identity_id, identity->id, sizeof(identity->id));
    cf_strlcpy(out->configuration_type, "static", sizeof(out->configuration_type));
    out->clock_skew_leeway = CF_JWT_LEEWAY_DEFAULT_S;
    cf_token_policy_init(&out->token);
    out->created_at = cf_now_ms();
    out->updated_at = out->created_at;
    for (size_t i = 0; i < CF_ARRAY_SIZE(texts); i++) {
        const char *initial = texts[i] == &out->public_keys    ? "[]"
                              : texts[i] == &out->bound_claims ? "{}"
                                                               : "";
        *texts[i] = strdup(initial);
        if (!*texts[i])
            return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    return CF_OK;
}

static enum cf_rc jwt_apply(struct cf_core *core, const void *settings, void *config,
                            struct cf_err *err)
{
    (void)core;
    return apply_jwt_settings(settings, config, err);
}

static enum cf_rc jwt_get(struct cf_store *st, const char *identity_id, void *config,
                          struct cf_err *err)
{
    return cf_store_jwt_auth_get(st, identity_id, config, err);
}

static enum cf_rc jwt_save(struct cf_store *st, const void *config, bool attach, struct cf_err *err)
{
    return attach ? cf_store_jwt_auth_attach(st, config, err)
                  : cf_store_jwt_auth_update(st, config, err);
}

static void jwt_release(void *config)
{
    cf_jwt_auth_config_release(config);
}

const struct cf_auth_method cf_auth_jwt = {
    "JWT auth",
    JWT_NOT_ATTACHED,
    sizeof(struct cf_jwt_auth_config),
    offsetof(struct cf_jwt_auth_config, updated_at),
    jwt_defaults,
    jwt_apply,
    jwt_get,
    jwt_save,
    jwt_release,
};

/* ---- Kubernetes auth ------------------------------------------------------------------------- */

#define K8S_NOT_ATTACHED                                                                           \
    "Kubernetes auth method not found for identity, did you configure Kubernetes auth?"

/* Applies the given settings over config and validates the result. */
static enum cf_rc apply_k8s_settings(const struct cf_k8s_auth_settings *s,
                                     struct cf_k8s_auth_config *config, struct cf_err *err)
{
    enum cf_rc rc = cf_token_policy_apply(&s->token, &config->token, err);

    if (rc == CF_OK)
        rc = fixed_text(s->kubernetes_host, config->kubernetes_host,
                        sizeof(config->kubernetes_host), "kubernetesHost", err);
    if (rc == CF_OK)
        rc = fixed_text(s->ca_cert, config->ca_cert, sizeof(config->ca_cert), "caCert", err);
    if (rc == CF_OK && s->token_reviewer_jwt && strlen(s->token_reviewer_jwt) > CF_K8S_JWT_MAX)
        rc = cf_err_field(err, CF_EVALIDATION, "tokenReviewerJwt",
                          "tokenReviewerJwt: at most %d characters", CF_K8S_JWT_MAX);
    if (rc == CF_OK)
        rc = fixed_text(s->allowed_namespaces, config->allowed_namespaces,
                        sizeof(config->allowed_namespaces), "allowedNamespaces", err);
    if (rc == CF_OK)
        rc = fixed_text(s->allowed_names, config->allowed_names, sizeof(config->allowed_names),
                        "allowedNames", err);
    if (rc == CF_OK)
        rc = fixed_text(s->allowed_audience, config->allowed_audience,
                        sizeof(config->allowed_audience), "allowedAudience", err);
    if (rc == CF_OK && !config->kubernetes_host[0])
        rc = cf_err_field(err, CF_EVALIDATION, "kubernetesHost", "kubernetesHost: required");
    for (const char *p = config->kubernetes_host; rc == CF_OK && *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr(":./-", *p)))
            rc = cf_err_field(err, CF_EVALIDATION, "kubernetesHost",
                              "kubernetesHost: only letters, digits and : . / - are allowed");
    return rc;
}

static enum cf_rc k8s_defaults(const struct cf_identity *identity, void *config, struct cf_err *err)
{
    struct cf_k8s_auth_config *c = config;
    (void)err;
    memcpy(c->identity_id, identity->id, sizeof(identity->id));
    cf_token_policy_init(&c->token);
    c->created_at = cf_now_ms();
    c->updated_at = c->created_at;
    return CF_OK;
}

static enum cf_rc k8s_apply(struct cf_core *core, const void *settings, void *config,
                            struct cf_err *err)
{
    const struct cf_k8s_auth_settings *s = settings;
    struct cf_k8s_auth_config *c = config;
    enum cf_rc rc = apply_k8s_settings(s, c, err);
    if (rc == CF_OK && s->token_reviewer_jwt) {
        /* A credential: kept sealed at rest, bound to this identity (crypto/serverkey.h). */
        char context[CF_CREDENTIAL_CONTEXT_MAX];
        snprintf(context, sizeof(context), "k8s-reviewer:%s", c->identity_id);
        if (!*s->token_reviewer_jwt)
            c->token_reviewer_jwt[0] = '\0'; /* "" removes it: the login token reviews itself */
        else
            rc = cf_credential_seal(core->store, core->keyring, context, s->token_reviewer_jwt,
                                    c->token_reviewer_jwt, sizeof(c->token_reviewer_jwt), err);
    }
    return rc;
}

static enum cf_rc k8s_get(struct cf_store *st, const char *identity_id, void *config,
                          struct cf_err *err)
{
    return cf_store_kubernetes_auth_get(st, identity_id, config, err);
}

static enum cf_rc k8s_save(struct cf_store *st, const void *config, bool attach, struct cf_err *err)
{
    return attach ? cf_store_kubernetes_auth_attach(st, config, err)
                  : cf_store_kubernetes_auth_update(st, config, err);
}

static void k8s_release(void *config)
{
    sodium_memzero(config, sizeof(struct cf_k8s_auth_config));
}

const struct cf_auth_method cf_auth_kubernetes = {
    "Kubernetes auth",
    K8S_NOT_ATTACHED,
    sizeof(struct cf_k8s_auth_config),
    offsetof(struct cf_k8s_auth_config, updated_at),
    k8s_defaults,
    k8s_apply,
    k8s_get,
    k8s_save,
    k8s_release,
};

/* ---- client secrets -------------------------------------------------------------------------- */

/* The admin check, the identity and its universal auth, as every client secret operation starts. */
static enum cf_rc admin_ua_identity(struct cf_core *core, const struct cf_principal *who,
                                    const char *identity_id, struct cf_identity *identity,
                                    struct cf_err *err)
{
    struct cf_ua_config *config;
    enum cf_rc rc = admin_identity(core, who, identity_id, identity, err);
    if (rc != CF_OK)
        return rc;
    config = calloc(1, sizeof(*config));
    if (!config)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    rc = method_find(core, &cf_auth_universal, identity, config, err);
    free(config);
    return rc;
}

static enum cf_rc client_secret_not_found(const char *secret_id, struct cf_err *err)
{
    return cf_err_set(err, CF_ENOTFOUND, "Client secret with ID '%s' not found", secret_id);
}

enum cf_rc cf_client_secret_create(struct cf_core *core, const struct cf_principal *who,
                                   const char *identity_id, const char *description, int64_t ttl,
                                   int64_t expires_at, int64_t num_uses_limit, char *secret,
                                   size_t secret_size, struct cf_client_secret *out,
                                   struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_identity identity;
    struct cf_client_secret row;
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    memset(&row, 0, sizeof(row));
    if (!secret || secret_size < CF_TOKEN_MAX)
        return cf_err_set(err, CF_EINTERNAL, "client secret buffer too small");
    secret[0] = '\0';
    rc = admin_ua_identity(core, who, identity_id, &identity, err);
    if (rc != CF_OK)
        return rc;
    if (!description)
        description = "";
    rc = cf_text_check(description, CF_DESC_MAX, false, "description", err);
    if (rc == CF_OK)
        rc = duration_check(ttl, "ttl", err);
    if (rc == CF_OK && num_uses_limit < 0)
        rc =
            cf_err_field(err, CF_EVALIDATION, "numUsesLimit", "numUsesLimit: must not be negative");
    if (rc == CF_OK && ttl > 0 && expires_at != 0)
        rc = cf_err_field(err, CF_EVALIDATION, "expiresAt",
                          "expiresAt: give either ttl or expiresAt, not both");
    if (rc == CF_OK && expires_at != 0 && expires_at <= now)
        rc = cf_err_field(err, CF_EVALIDATION, "expiresAt", "expiresAt: must be in the future");
    if (rc != CF_OK)
        return rc;

    cf_uuid_new(row.id);
    memcpy(row.identity_id, identity.id, sizeof(identity.id));
    cf_strlcpy(row.description, description, sizeof(row.description));
    row.expires_at = ttl > 0 ? now + ttl * 1000 : expires_at;
    row.num_uses = 0;
    row.num_uses_limit = num_uses_limit;
    row.revoked = false;
    row.created_at = now;
    row.updated_at = now;
    cf_token_new(CF_CLIENT_SECRET_PREFIX, secret, secret_size);
    cf_token_hash(secret, strlen(secret), row.hash);
    /* The prefix shown in lists: as many leading characters as the field holds. */
    cf_strlcpy(row.prefix, secret, sizeof(row.prefix));
    rc = cf_store_client_secret_create(st, &row, err);
    if (rc == CF_ENOTFOUND) /* deleted concurrently */
        rc = identity_not_found(identity_id, err);
    if (rc == CF_OK)
        *out = row;
    else
        sodium_memzero(secret, secret_size);
    sodium_memzero(&row, sizeof(row));
    return rc;
}

enum cf_rc cf_client_secret_list(struct cf_core *core, const struct cf_principal *who,
                                 const char *identity_id, struct cf_client_secret_list *out,
                                 struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_identity identity;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = admin_ua_identity(core, who, identity_id, &identity, err);
    if (rc == CF_OK)
        rc = cf_store_client_secret_list(st, identity.id, out, err);
    if (rc != CF_OK)
        cf_client_secret_list_release(out);
    return rc;
}

enum cf_rc cf_client_secret_revoke(struct cf_core *core, const struct cf_principal *who,
                                   const char *identity_id, const char *secret_id,
                                   struct cf_client_secret *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_identity identity;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = admin_ua_identity(core, who, identity_id, &identity, err);
    if (rc != CF_OK)
        return rc;
    if (!secret_id || !cf_uuid_valid(secret_id))
        return client_secret_not_found(secret_id ? secret_id : "", err);
    rc = cf_store_client_secret_get(st, identity.id, secret_id, out, err);
    /* Revoking twice is not an error: the secret is revoked either way. */
    if (rc == CF_OK && !out->revoked)
        rc = cf_store_client_secret_revoke(st, identity.id, secret_id, err);
    if (rc == CF_OK)
        rc = cf_store_client_secret_get(st, identity.id, secret_id, out, err);
    if (rc == CF_ENOTFOUND)
        rc = client_secret_not_found(secret_id, err);
    if (rc != CF_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- memberships ----------------------------------------------------------------------------- */

static enum cf_rc find_project(struct cf_core *core, const char *project, char id[CF_UUID_LEN],
                               struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_project found;
    enum cf_rc rc;

    memset(&found, 0, sizeof(found));
    id[0] = '\0';
    if (!project || !*project)
        return cf_err_field(err, CF_EVALIDATION, "projectId", "projectId: required");
    rc = cf_store_project_get(st, project, &found, err);
    if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "Project with ID '%s' not found", project);
    if (rc == CF_OK)
        memcpy(id, found.id, CF_UUID_LEN);
    cf_project_release(&found);
    return rc;
}

/* Validates rule i (the API's rules[i]) into out. */
static enum cf_rc rule_check(const struct cf_membership_rule *rule, size_t i,
                             struct cf_membership_rule *out, struct cf_err *err)
{
    char field[CF_ERR_FIELD_MAX];
    enum cf_rc rc;

    *out = *rule;
    out->env_slug[sizeof(out->env_slug) - 1] = '\0';
    out->path_glob[sizeof(out->path_glob) - 1] = '\0';
    snprintf(field, sizeof(field), "rules[%zu].actions", i);
    if (out->actions == 0)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: name at least one action", field);
    if (out->actions & ~RULE_ACTIONS)
        return cf_err_field(err, CF_EVALIDATION, field,
                            "%s: only read, create, edit and delete are allowed", field);
    if (out->env_slug[0]) {
        snprintf(field, sizeof(field), "rules[%zu].environment", i);
        rc = cf_slug_check(out->env_slug, field, err);
        if (rc != CF_OK)
            return rc;
    }
    if (out->path_glob[0]) {
        snprintf(field, sizeof(field), "rules[%zu].secretPath", i);
        rc = cf_glob_check(out->path_glob, field, err);
        if (rc != CF_OK)
            return rc;
    }
    return CF_OK;
}

/* Binds rule i to the environment its env_slug names (a slug, or an id as shown for a deleted
 * environment) in project_id: env_id is what the store keeps and authorization compares, so that
 * renaming environments never changes what the rule covers. An environment that does not exist is
 * CF_EVALIDATION naming the field: a rule for an environment created later would otherwise grant
 * whatever comes to bear that name. */
static enum cf_rc rule_bind(struct cf_core *core, const char *project_id, size_t i,
                            struct cf_membership_rule *rule, struct cf_err *err)
{
    char field[CF_ERR_FIELD_MAX];
    struct cf_env env;

    rule->env_id[0] = '\0';
    if (!rule->env_slug[0])
        return CF_OK;
    enum cf_rc rc = cf_store_env_get(core->store, project_id, rule->env_slug, &env, err);
    if (rc == CF_ENOTFOUND) {
        snprintf(field, sizeof(field), "rules[%zu].environment", i);
        return cf_err_field(err, CF_EVALIDATION, field, "%s: no environment '%s' in this project",
                            field, rule->env_slug);
    }
    if (rc != CF_OK)
        return rc;
    memcpy(rule->env_id, env.id, sizeof(rule->env_id));
    memcpy(rule->env_slug, env.slug, sizeof(rule->env_slug));
    return CF_OK;
}

/* Fills the display slugs of the rules of memberships (n of them, all in project_id) from the
 * project's environments as they are named now; a rule whose environment is gone keeps env_slug
 * "" (the API then shows its id). */
static enum cf_rc name_rule_envs(struct cf_core *core, const char *project_id,
                                 struct cf_membership *memberships, size_t n, struct cf_err *err)
{
    struct cf_env_list envs = {0};
    enum cf_rc rc = cf_store_env_list(core->store, project_id, &envs, err);
    for (size_t m = 0; rc == CF_OK && m < n; m++) {
        for (size_t r = 0; r < memberships[m].n_rules; r++) {
            struct cf_membership_rule *rule = &memberships[m].rules[r];
            rule->env_slug[0] = '\0';
            for (size_t e = 0; rule->env_id[0] && e < envs.n; e++)
                if (strcmp(envs.items[e].id, rule->env_id) == 0)
                    memcpy(rule->env_slug, envs.items[e].slug, sizeof(rule->env_slug));
        }
    }
    cf_env_list_release(&envs);
    return rc;
}

static const char *member_kind_name(enum cf_member_kind kind)
{
    return kind == CF_MEMBER_USER ? "User" : kind == CF_MEMBER_GROUP ? "Group" : "Identity";
}

static const char *member_what(enum cf_member_kind kind)
{
    return kind == CF_MEMBER_USER    ? "manage users"
           : kind == CF_MEMBER_GROUP ? "manage groups"
                                     : WHAT;
}

static enum cf_rc membership_not_found(enum cf_member_kind kind, const char *member_id,
                                       const char *project_id, struct cf_err *err)
{
    return cf_err_set(err, CF_ENOTFOUND, "%s with ID '%s' is not a member of project with ID '%s'",
                      member_kind_name(kind), member_id, project_id);
}

/* The member's id: an identity by id, or a user by id or email (core/users.h). */
static enum cf_rc find_member(struct cf_core *core, enum cf_member_kind kind, const char *member,
                              char id[CF_UUID_LEN], struct cf_err *err)
{
    struct cf_identity identity;
    struct cf_user user;
    struct cf_group group;
    enum cf_rc rc;

    if (kind == CF_MEMBER_GROUP) {
        rc = cf_groups_find(core, member, &group, err);
        if (rc == CF_OK)
            memcpy(id, group.id, CF_UUID_LEN);
        return rc;
    }
    if (kind == CF_MEMBER_USER) {
        rc = cf_users_find(core, member, &user, err);
        if (rc == CF_OK)
            memcpy(id, user.id, CF_UUID_LEN);
        return rc;
    }
    rc = find_identity(core, member, &identity, err);
    if (rc == CF_OK)
        memcpy(id, identity.id, CF_UUID_LEN);
    return rc;
}

static enum cf_rc member_get(struct cf_store *st, enum cf_member_kind kind, const char *member_id,
                             const char *project_id, struct cf_membership *out, struct cf_err *err)
{
    if (kind == CF_MEMBER_GROUP)
        return cf_store_group_membership_get(st, member_id, project_id, out, err);
    return kind == CF_MEMBER_USER
               ? cf_store_user_membership_get(st, member_id, project_id, out, err)
               : cf_store_membership_get(st, member_id, project_id, out, err);
}

enum cf_rc cf_member_set(struct cf_core *core, const struct cf_principal *who,
                         enum cf_member_kind kind, const char *project, const char *member,
                         const char *role, const struct cf_membership_rule *rules, size_t n_rules,
                         struct cf_membership *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    struct cf_membership membership = {0}, existing = {0};
    char member_id[CF_UUID_LEN] = "";
    uint32_t role_actions;
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = cf_authz_admin(who, member_what(kind), err);
    if (rc == CF_OK)
        rc = find_project(core, project, membership.project_id, err);
    if (rc == CF_OK)
        rc = find_member(core, kind, member, member_id, err);
    if (rc != CF_OK)
        goto out;
    if (!role) {
        rc = cf_err_field(err, CF_EVALIDATION, "role", "role: required");
        goto out;
    }
    if (!cf_role_actions(role, &role_actions)) {
        rc = cf_err_field(err, CF_EVALIDATION, "role",
                          "role: must be one of admin, member, viewer, no-access");
        goto out;
    }
    if (n_rules > RULES_MAX) {
        rc = cf_err_field(err, CF_EVALIDATION, "rules", "rules: at most %d rules", RULES_MAX);
        goto out;
    }
    if (n_rules > 0) {
        membership.rules = calloc(n_rules, sizeof(*membership.rules));
        if (!membership.rules) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < n_rules; i++) {
        rc = rule_check(&rules[i], i, &membership.rules[i], err);
        if (rc == CF_OK)
            rc = rule_bind(core, membership.project_id, i, &membership.rules[i], err);
        if (rc != CF_OK)
            goto out;
    }
    membership.n_rules = n_rules;
    memcpy(membership.identity_id, member_id, sizeof(member_id));
    cf_strlcpy(membership.role, role, sizeof(membership.role));
    membership.updated_at = now;

    /* Replacing keeps the membership's id and creation time. */
    rc = member_get(st, kind, member_id, membership.project_id, &existing, err);
    if (rc == CF_OK) {
        memcpy(membership.id, existing.id, sizeof(existing.id));
        membership.created_at = existing.created_at;
    } else if (rc == CF_ENOTFOUND) {
        cf_uuid_new(membership.id);
        membership.created_at = now;
    } else {
        goto out;
    }
    if (kind == CF_MEMBER_GROUP)
        rc = cf_store_group_membership_put(st, &membership, err);
    else
        rc = kind == CF_MEMBER_USER ? cf_store_user_membership_put(st, &membership, err)
                                    : cf_store_membership_put(st, &membership, err);
    if (rc == CF_ENOTFOUND) /* the project or the member was deleted concurrently */
        rc = cf_err_set(err, CF_ENOTFOUND, "%s with ID '%s' or project with ID '%s' not found",
                        member_kind_name(kind), member_id, membership.project_id);
    if (rc == CF_OK) {
        *out = membership;
        memset(&membership, 0, sizeof(membership));
    }
out:
    cf_membership_release(&existing);
    cf_membership_release(&membership);
    return rc;
}

enum cf_rc cf_member_list(struct cf_core *core, const struct cf_principal *who,
                          enum cf_member_kind kind, const char *project,
                          struct cf_membership_list *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    char project_id[CF_UUID_LEN];
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = cf_authz_admin(who, member_what(kind), err);
    if (rc == CF_OK)
        rc = find_project(core, project, project_id, err);
    if (rc == CF_OK && kind == CF_MEMBER_GROUP)
        rc = cf_store_group_membership_list(st, NULL, project_id, out, err);
    else if (rc == CF_OK)
        rc = kind == CF_MEMBER_USER ? cf_store_user_membership_list(st, NULL, project_id, out, err)
                                    : cf_store_membership_list(st, NULL, project_id, out, err);
    if (rc == CF_OK)
        rc = name_rule_envs(core, project_id, out->items, out->n, err);
    if (rc != CF_OK)
        cf_membership_list_release(out);
    return rc;
}

enum cf_rc cf_member_remove(struct cf_core *core, const struct cf_principal *who,
                            enum cf_member_kind kind, const char *project, const char *member,
                            struct cf_membership *out, struct cf_err *err)
{
    struct cf_store *st = core->store;
    char member_id[CF_UUID_LEN] = "";
    char project_id[CF_UUID_LEN];
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    rc = cf_authz_admin(who, member_what(kind), err);
    if (rc == CF_OK)
        rc = find_project(core, project, project_id, err);
    if (rc == CF_OK)
        rc = find_member(core, kind, member, member_id, err);
    if (rc != CF_OK)
        return rc;
    rc = member_get(st, kind, member_id, project_id, out, err);
    if (rc == CF_OK && kind == CF_MEMBER_GROUP)
        rc = cf_store_group_membership_delete(st, member_id, project_id, err);
    else if (rc == CF_OK)
        rc = kind == CF_MEMBER_USER
                 ? cf_store_user_membership_delete(st, member_id, project_id, err)
                 : cf_store_membership_delete(st, member_id, project_id, err);
    if (rc == CF_ENOTFOUND)
        rc = membership_not_found(kind, member_id, project_id, err);
    if (rc == CF_OK)
        rc = name_rule_envs(core, project_id, out, 1, err);
    if (rc != CF_OK)
        cf_membership_release(out);
    return rc;
}

enum cf_rc cf_membership_set(struct cf_core *core, const struct cf_principal *who,
                             const char *project, const char *identity_id, const char *role,
                             const struct cf_membership_rule *rules, size_t n_rules,
                             struct cf_membership *out, struct cf_err *err)
{
    return cf_member_set(core, who, CF_MEMBER_IDENTITY, project, identity_id, role, rules, n_rules,
                         out, err);
}

enum cf_rc cf_membership_list(struct cf_core *core, const struct cf_principal *who,
                              const char *project, struct cf_membership_list *out,
                              struct cf_err *err)
{
    return cf_member_list(core, who, CF_MEMBER_IDENTITY, project, out, err);
}

enum cf_rc cf_membership_remove(struct cf_core *core, const struct cf_principal *who,
                                const char *project, const char *identity_id,
                                struct cf_membership *out, struct cf_err *err)
{
    return cf_member_remove(core, who, CF_MEMBER_IDENTITY, project, identity_id, out, err);
}
