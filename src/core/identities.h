/* Machine identities: the identities themselves, the auth methods attached to them (universal auth
 * with its client secrets, JWT auth, Kubernetes auth: one set of calls for all), and their project
 * memberships. Every operation here is server administration and checks cf_authz_admin first.
 * Logging in and access tokens live in src/auth/. */
#ifndef CF_CORE_IDENTITIES_H
#define CF_CORE_IDENTITIES_H

#include "core/core.h"
#include "crypto/token.h"

#define CF_TTL_MAX 315360000LL /* ten years, Infisical's bound */

enum cf_rc cf_identity_create(struct cf_core *core, const struct cf_principal *who,
                              const char *name, struct cf_identity *out, struct cf_err *err);
enum cf_rc cf_identity_get(struct cf_core *core, const struct cf_principal *who, const char *id,
                           struct cf_identity *out, struct cf_err *err);
enum cf_rc cf_identity_list(struct cf_core *core, const struct cf_principal *who,
                            struct cf_identity_list *out, struct cf_err *err);
enum cf_rc cf_identity_rename(struct cf_core *core, const struct cf_principal *who, const char *id,
                              const char *name, struct cf_identity *out, struct cf_err *err);
enum cf_rc cf_identity_delete(struct cf_core *core, const struct cf_principal *who, const char *id,
                              struct cf_identity *out, struct cf_err *err);

/* The token policy of an auth method as given by a request (accessTokenTTL, accessTokenMaxTTL,
 * accessTokenNumUsesLimit, accessTokenTrustedIps); has_* false keeps the current (or default)
 * value. trusted_ips is borrowed: comma-separated CIDRs or addresses (cf_cidr_list_check). */
struct cf_token_settings {
    bool has_ttl, has_max_ttl, has_num_uses, has_trusted_ips;
    int64_t ttl;
    int64_t max_ttl;
    int64_t num_uses_limit;
    const char *trusted_ips;
};

/* The policy of a newly attached method: TTL and max TTL 30 days, no use limit, any IP. */
void cf_token_policy_init(struct cf_token_policy *policy);

/* Applies settings (NULL: none) over policy and validates the result: durations from 0 to
 * CF_TTL_MAX, a use limit not negative, a trusted-IP list that parses and fits CF_IPS_MAX, and a
 * TTL not above a non-zero max TTL. CF_EVALIDATION names the API field (err->field); policy is left
 * unchanged then. */
enum cf_rc cf_token_policy_apply(const struct cf_token_settings *settings,
                                 struct cf_token_policy *policy, struct cf_err *err);

/* Each auth method is one immutable object (thread-safe) driven by the cf_auth_method_* calls
 * below; its settings and configuration are its own structs, passed as void pointers:
 *   cf_auth_universal   struct cf_ua_settings       -> struct cf_ua_config
 *   cf_auth_jwt         struct cf_jwt_auth_settings -> struct cf_jwt_auth_config
 *   cf_auth_kubernetes  struct cf_k8s_auth_settings -> struct cf_k8s_auth_config
 * Every settings struct starts with the access-token policy (token); a NULL text or a false has_*
 * keeps the current (on attach, the default) value. */
struct cf_auth_method;
extern const struct cf_auth_method cf_auth_universal;
extern const struct cf_auth_method cf_auth_jwt;
extern const struct cf_auth_method cf_auth_kubernetes;

/* Universal auth: the client secrets' trusted IP list (has_secret_ips false keeps it). Attached
 * with a fresh client id and client secrets from any IP. */
struct cf_ua_settings {
    struct cf_token_settings token;
    bool has_secret_ips;
    const char *client_secret_trusted_ips;
};

/* JWT auth. public_keys is a JSON array of PEM public keys (each must load with
 * cf_jwt_keys_from_pem), bound_claims a JSON object of strings, bound_audiences comma-separated.
 * Attached with configurationType "static"; a static configuration needs at least one public key,
 * a "jwks" one a jwksUrl (CF_EVALIDATION). The configuration holds heap texts. */
struct cf_jwt_auth_settings {
    struct cf_token_settings token;
    const char *configuration_type; /* "static" or "jwks" */
    const char *public_keys;
    const char *jwks_url;
    const char *jwks_ca_cert;
    const char *bound_issuer;
    const char *bound_audiences;
    const char *bound_claims;
    const char *bound_subject;
    bool has_clock_skew_leeway;
    int64_t clock_skew_leeway; /* seconds, 0..3600 */
};

/* Kubernetes auth. kubernetes_host is required on attach (an http(s) URL, or a host that gets
 * "https://"); token_reviewer_jwt is a credential, sealed at rest and never returned ("" removes
 * it). The configuration is large and holds the sealed reviewer JWT: allocate it, and release
 * (wipes) it. */
struct cf_k8s_auth_settings {
    struct cf_token_settings token;
    const char *kubernetes_host;
    const char *ca_cert;
    const char *token_reviewer_jwt;
    const char *allowed_namespaces;
    const char *allowed_names;
    const char *allowed_audience;
};

/* The size of m's configuration struct, for the caller that allocates out. */
size_t cf_auth_method_config_size(const struct cf_auth_method *m);

/* Attaches m to identity_id (attach true: a new configuration with the token policy of
 * cf_token_policy_init and the method's defaults) or updates the attached one, applying settings
 * over it; out (cf_auth_method_config_size bytes) receives the stored configuration, which the
 * caller releases with cf_auth_method_release; on failure it is released already. CF_EEXIST when
 * attaching a method attached already, CF_ENOTFOUND when updating one that is not, CF_EVALIDATION
 * naming the field (err->field) for a bad setting or a text over its limit (store/store.h). */
enum cf_rc cf_auth_method_set(struct cf_core *core, const struct cf_principal *who,
                              const struct cf_auth_method *m, const char *identity_id,
                              const void *settings, bool attach, void *out, struct cf_err *err);

/* Reads m of identity_id into out (released as in cf_auth_method_set); CF_ENOTFOUND when the
 * identity does not exist or does not have m. */
enum cf_rc cf_auth_method_get(struct cf_core *core, const struct cf_principal *who,
                              const struct cf_auth_method *m, const char *identity_id, void *out,
                              struct cf_err *err);

/* Frees what config (of m) holds and wipes it; config itself stays the caller's. */
void cf_auth_method_release(const struct cf_auth_method *m, void *config);

/* Removes an auth method ("universal-auth", "jwt-auth", "kubernetes-auth") from an identity, with
 * every access token it issued (and, for universal auth, the client secrets): they stop working at
 * the next request. Memberships stay. CF_ENOTFOUND when the identity does not have it. */
enum cf_rc cf_auth_method_remove(struct cf_core *core, const struct cf_principal *who,
                                 const char *identity_id, const char *auth_method,
                                 struct cf_err *err);

/* Creates a client secret: CF_CLIENT_SECRET_PREFIX + 43 random base64url characters, written into
 * secret (size >= CF_TOKEN_MAX; the caller wipes it) and returned only this once; the store keeps
 * its hash. Expiry: expires_at (absolute) or ttl seconds from now, whichever is given (0 and 0:
 * never). */
enum cf_rc cf_client_secret_create(struct cf_core *core, const struct cf_principal *who,
                                   const char *identity_id, const char *description, int64_t ttl,
                                   int64_t expires_at, int64_t num_uses_limit, char *secret,
                                   size_t secret_size, struct cf_client_secret *out,
                                   struct cf_err *err);
enum cf_rc cf_client_secret_list(struct cf_core *core, const struct cf_principal *who,
                                 const char *identity_id, struct cf_client_secret_list *out,
                                 struct cf_err *err);
enum cf_rc cf_client_secret_revoke(struct cf_core *core, const struct cf_principal *who,
                                   const char *identity_id, const char *secret_id,
                                   struct cf_client_secret *out, struct cf_err *err);

/* Memberships. role: admin, member, viewer, no-access. Rules are validated (known actions, env
 * slug, path glob syntax). The project and identity must exist, and so must each rule's environment
 * (rules[i].env_slug: a slug or an id; CF_EVALIDATION otherwise): the rule is bound to its id. Out,
 * rules carry env_id and the environment's current slug in env_slug ("" when it was deleted). */
enum cf_rc cf_membership_set(struct cf_core *core, const struct cf_principal *who,
                             const char *project, const char *identity_id, const char *role,
                             const struct cf_membership_rule *rules, size_t n_rules,
                             struct cf_membership *out, struct cf_err *err);
enum cf_rc cf_membership_list(struct cf_core *core, const struct cf_principal *who,
                              const char *project, struct cf_membership_list *out,
                              struct cf_err *err);
enum cf_rc cf_membership_remove(struct cf_core *core, const struct cf_principal *who,
                                const char *project, const char *identity_id,
                                struct cf_membership *out, struct cf_err *err);

/* The same for any kind of member: a machine identity (by id), a user (by id or email;
 * core/users.h) or a group of users (by id, name or external id; core/groups.h), whose memberships
 * live apart (store.h). The cf_membership_* functions above are these with CF_MEMBER_IDENTITY.
 * out->identity_id holds the member's id. */
enum cf_member_kind { CF_MEMBER_IDENTITY = 1, CF_MEMBER_USER, CF_MEMBER_GROUP };
enum cf_rc cf_member_set(struct cf_core *core, const struct cf_principal *who,
                         enum cf_member_kind kind, const char *project, const char *member,
                         const char *role, const struct cf_membership_rule *rules, size_t n_rules,
                         struct cf_membership *out, struct cf_err *err);
enum cf_rc cf_member_list(struct cf_core *core, const struct cf_principal *who,
                          enum cf_member_kind kind, const char *project,
                          struct cf_membership_list *out, struct cf_err *err);
enum cf_rc cf_member_remove(struct cf_core *core, const struct cf_principal *who,
                            enum cf_member_kind kind, const char *project, const char *member,
                            struct cf_membership *out, struct cf_err *err);

#endif
