/* Unit tests of core/identities over a real SQLite store (tests/unit/core_fixture.h): identities
 * are created, renamed, listed and deleted by the admin only; universal auth is attached with
 * validated settings; a client secret is returned once, stored only as a hash, listed by prefix
 * and revoked; memberships validate their role and the project; every auth method is attached,
 * updated and read the same way. */
#include <unistd.h>

#include "core_fixture.h"

#include "core/identities.h"
#include "core/projects.h"
#include "util/str.h"
#include "util/banned.h"

TestSuite(identities, .init = fx_setup, .fini = fx_teardown);

static struct cf_identity make_identity(const char *name)
{
    struct cf_identity id = {0};
    cr_assert_eq(cf_identity_create(&fx_core, &fx_admin, name, &id, &err), CF_OK, "%s", err.msg);
    return id;
}

static struct cf_principal as_principal(const struct cf_identity *id)
{
    struct cf_principal who = {.kind = CF_PRINCIPAL_IDENTITY};
    snprintf(who.id, sizeof(who.id), "%s", id->id);
    snprintf(who.name, sizeof(who.name), "%s", id->name);
    return who;
}

Test(identities, create_rename_list_delete)
{
    struct cf_identity id = make_identity("deployer");
    struct cf_identity got = {0};
    cr_assert_eq(cf_identity_get(&fx_core, &fx_admin, id.id, &got, &err), CF_OK);
    cr_expect_str_eq(got.name, "deployer");
    cr_assert_eq(cf_identity_rename(&fx_core, &fx_admin, id.id, "release-bot", &got, &err), CF_OK,
                 "%s", err.msg);
    cr_expect_str_eq(got.name, "release-bot");
    cr_expect_eq(cf_identity_create(&fx_core, &fx_admin, "", &got, &err), CF_EVALIDATION);

    struct cf_identity_list list = {0};
    cr_assert_eq(cf_identity_list(&fx_core, &fx_admin, &list, &err), CF_OK);
    cr_expect_eq(list.n, 1);
    cf_identity_list_release(&list);

    cr_assert_eq(cf_identity_delete(&fx_core, &fx_admin, id.id, &got, &err), CF_OK);
    cr_expect_eq(cf_identity_get(&fx_core, &fx_admin, id.id, &got, &err), CF_ENOTFOUND);
    cr_expect_eq(cf_identity_delete(&fx_core, &fx_admin, id.id, &got, &err), CF_ENOTFOUND);
    cr_expect_eq(cf_identity_get(&fx_core, &fx_admin, "not-a-uuid", &got, &err) == CF_OK, false);
}

Test(identities, only_the_admin_manages_identities)
{
    struct cf_identity id = make_identity("limited");
    struct cf_principal who = as_principal(&id);
    struct cf_identity got = {0};
    cr_expect_eq(cf_identity_create(&fx_core, &who, "another", &got, &err), CF_EFORBIDDEN);
    cr_expect_eq(cf_identity_rename(&fx_core, &who, id.id, "boss", &got, &err), CF_EFORBIDDEN);
    cr_expect_eq(cf_identity_delete(&fx_core, &who, id.id, &got, &err), CF_EFORBIDDEN);
    struct cf_ua_settings settings = {0};
    struct cf_ua_config config = {0};
    cr_expect_eq(cf_auth_method_set(&fx_core, &who, &cf_auth_universal, id.id, &settings, true,
                                    &config, &err),
                 CF_EFORBIDDEN);
    char secret[CF_TOKEN_MAX];
    struct cf_client_secret cs = {0};
    cr_expect_eq(cf_client_secret_create(&fx_core, &who, id.id, "mine", 0, 0, 0, secret,
                                         sizeof(secret), &cs, &err),
                 CF_EFORBIDDEN);
}

Test(identities, universal_auth_and_client_secrets)
{
    struct cf_identity id = make_identity("pipeline");
    struct cf_ua_settings settings = {.token = {.has_ttl = true, .ttl = 600}};
    struct cf_ua_config config = {0};
    cr_assert_eq(cf_auth_method_set(&fx_core, &fx_admin, &cf_auth_universal, id.id, &settings, true,
                                    &config, &err),
                 CF_OK, "%s", err.msg);
    cr_expect_eq(config.token.ttl, 600);
    cr_expect_neq(config.client_id[0], '\0');
    cr_expect_eq(cf_auth_method_set(&fx_core, &fx_admin, &cf_auth_universal, id.id, &settings, true,
                                    &config, &err),
                 CF_EEXIST, "attached twice");

    struct cf_ua_settings too_long = {.token = {.has_ttl = true, .ttl = CF_TTL_MAX + 1}};
    cr_expect_eq(cf_auth_method_set(&fx_core, &fx_admin, &cf_auth_universal, id.id, &too_long,
                                    false, &config, &err),
                 CF_EVALIDATION);
    struct cf_ua_settings bad_ips = {
        .token = {.has_trusted_ips = true, .trusted_ips = "10.0.0.0/99"}};
    cr_expect_eq(cf_auth_method_set(&fx_core, &fx_admin, &cf_auth_universal, id.id, &bad_ips, false,
                                    &config, &err),
                 CF_EVALIDATION);
    cr_assert_eq(cf_auth_method_get(&fx_core, &fx_admin, &cf_auth_universal, id.id, &config, &err),
                 CF_OK);
    cr_expect_eq(config.token.ttl, 600, "a refused update changed the settings");

    char secret[CF_TOKEN_MAX];
    struct cf_client_secret cs = {0};
    cr_assert_eq(cf_client_secret_create(&fx_core, &fx_admin, id.id, "ci", 3600, 0, 0, secret,
                                         sizeof(secret), &cs, &err),
                 CF_OK, "%s", err.msg);
    cr_expect(strncmp(secret, CF_CLIENT_SECRET_PREFIX, strlen(CF_CLIENT_SECRET_PREFIX)) == 0);
    cr_expect(cf_token_looks_like_client_secret(secret));
    cr_expect(strncmp(cs.prefix, secret, 8) == 0, "the listed prefix is the secret's start");
    cr_expect_gt(cs.expires_at, 0);
    cr_expect(!fx_on_disk(secret), "the client secret is stored in clear");

    struct cf_client_secret_list list = {0};
    cr_assert_eq(cf_client_secret_list(&fx_core, &fx_admin, id.id, &list, &err), CF_OK);
    cr_assert_eq(list.n, 1);
    cr_expect(!list.items[0].revoked);
    cf_client_secret_list_release(&list);

    struct cf_client_secret revoked = {0};
    cr_assert_eq(cf_client_secret_revoke(&fx_core, &fx_admin, id.id, cs.id, &revoked, &err), CF_OK,
                 "%s", err.msg);
    cr_expect(revoked.revoked);
    sodium_memzero(secret, sizeof(secret));

    cr_expect_eq(cf_client_secret_create(&fx_core, &fx_admin, id.id, "bad", -5, 0, 0, secret,
                                         sizeof(secret), &cs, &err),
                 CF_EVALIDATION, "a negative ttl");
    struct cf_identity other = make_identity("no-ua");
    cr_expect_eq(
        cf_auth_method_get(&fx_core, &fx_admin, &cf_auth_universal, other.id, &config, &err),
        CF_ENOTFOUND);
}

Test(identities, memberships)
{
    struct cf_project_view project = {0};
    cr_assert_eq(cf_projects_create(&fx_core, &fx_admin, "infra", NULL, NULL, &project, &err),
                 CF_OK);
    struct cf_identity id = make_identity("member");
    struct cf_membership m = {0};
    cr_expect_eq(
        cf_membership_set(&fx_core, &fx_admin, "infra", id.id, "superuser", NULL, 0, &m, &err),
        CF_EVALIDATION);
    cr_expect_eq(cf_membership_set(&fx_core, &fx_admin, "no-such-project", id.id, "viewer", NULL, 0,
                                   &m, &err),
                 CF_ENOTFOUND);
    struct cf_membership_rule rule = {.actions = 1u << CF_ACTION_READ, .path_glob = "/**"};
    snprintf(rule.env_slug, sizeof(rule.env_slug), "no-such-env");
    cr_expect_eq(
        cf_membership_set(&fx_core, &fx_admin, "infra", id.id, "member", &rule, 1, &m, &err),
        CF_EVALIDATION, "a rule for an unknown environment");

    snprintf(rule.env_slug, sizeof(rule.env_slug), "prod");
    cr_assert_eq(
        cf_membership_set(&fx_core, &fx_admin, "infra", id.id, "member", &rule, 1, &m, &err), CF_OK,
        "%s", err.msg);
    cr_expect_str_eq(m.role, "member");
    cf_membership_release(&m);

    struct cf_membership_list list = {0};
    cr_assert_eq(cf_membership_list(&fx_core, &fx_admin, "infra", &list, &err), CF_OK);
    cr_expect_eq(list.n, 1);
    cf_membership_list_release(&list);
    cr_assert_eq(cf_membership_remove(&fx_core, &fx_admin, "infra", id.id, &m, &err), CF_OK);
    cf_membership_release(&m);
    cr_expect_eq(cf_membership_remove(&fx_core, &fx_admin, "infra", id.id, &m, &err), CF_ENOTFOUND);
    cf_project_view_release(&project);
}

/* The token policy every auth method embeds: validated once, for all of them. */
Test(identities, token_policy_validation)
{
    struct cf_token_policy policy, before;
    struct cf_err e = {0};

    cf_token_policy_init(&policy);
    cr_expect_eq(policy.ttl, 2592000);
    cr_expect_eq(policy.max_ttl, 2592000);
    cr_expect_eq(policy.num_uses_limit, 0);
    cr_expect_str_eq(policy.trusted_ips, "0.0.0.0/0,::/0");
    before = policy;

    const struct {
        struct cf_token_settings settings;
        const char *field;
    } bad[] = {
        {{.has_ttl = true, .ttl = -1}, "accessTokenTTL"},
        {{.has_ttl = true, .ttl = CF_TTL_MAX + 1}, "accessTokenTTL"},
        {{.has_max_ttl = true, .max_ttl = -5}, "accessTokenMaxTTL"},
        {{.has_ttl = true, .ttl = 600, .has_max_ttl = true, .max_ttl = 60}, "accessTokenTTL"},
        {{.has_num_uses = true, .num_uses_limit = -1}, "accessTokenNumUsesLimit"},
        {{.has_trusted_ips = true, .trusted_ips = "10.0.0.0/99"}, "accessTokenTrustedIps"},
        {{.has_trusted_ips = true, .trusted_ips = "not-an-ip"}, "accessTokenTrustedIps"},
        {{.has_trusted_ips = true, .trusted_ips = NULL}, "accessTokenTrustedIps"},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(bad); i++) {
        memset(&e, 0, sizeof(e));
        cr_expect_eq(cf_token_policy_apply(&bad[i].settings, &policy, &e), CF_EVALIDATION,
                     "case %zu", i);
        cr_expect_str_eq(e.field, bad[i].field, "case %zu", i);
        cr_expect_eq(memcmp(&policy, &before, sizeof(policy)), 0, "case %zu changed the policy", i);
    }

    struct cf_token_settings good = {.has_ttl = true,
                                     .ttl = 60,
                                     .has_max_ttl = true,
                                     .max_ttl = 0,
                                     .has_num_uses = true,
                                     .num_uses_limit = 3,
                                     .has_trusted_ips = true,
                                     .trusted_ips = "10.0.0.0/8,::1"};
    cr_assert_eq(cf_token_policy_apply(&good, &policy, &e), CF_OK, "%s", e.msg);
    cr_expect_eq(policy.ttl, 60);
    cr_expect_eq(policy.max_ttl, 0);
    cr_expect_eq(policy.num_uses_limit, 3);
    cr_expect_str_eq(policy.trusted_ips, "10.0.0.0/8,::1");
    /* max TTL 0 means none: any TTL within bounds is accepted. */
    struct cf_token_settings long_ttl = {.has_ttl = true, .ttl = CF_TTL_MAX};
    cr_expect_eq(cf_token_policy_apply(&long_ttl, &policy, &e), CF_OK);
    cr_expect_eq(cf_token_policy_apply(NULL, &policy, &e), CF_OK);
}

/* Every auth method goes through the same attach, update and get: the refusals name the method
 * and the identity, an update keeps created_at and moves updated_at, and a refused call leaves its
 * output zeroed. */
Test(identities, auth_methods_attach_update_get)
{
    struct cf_identity id = make_identity("methods");
    struct cf_ua_settings ua = {.token = {.has_ttl = true, .ttl = 600}};
    struct cf_jwt_auth_settings jwt = {.token = {.has_ttl = true, .ttl = 600},
                                       .configuration_type = "jwks",
                                       .jwks_url = "https://issuer.example/jwks",
                                       .bound_issuer = "https://issuer.example"};
    struct cf_k8s_auth_settings k8s = {.token = {.has_ttl = true, .ttl = 600},
                                       .kubernetes_host = "https://k8s.example:6443",
                                       .token_reviewer_jwt = "reviewer.jwt.value"};
    struct cf_ua_config *ua_c = calloc(1, sizeof(*ua_c));
    struct cf_jwt_auth_config *jwt_c = calloc(1, sizeof(*jwt_c));
    struct cf_k8s_auth_config *k8s_c = calloc(1, sizeof(*k8s_c));
    cr_assert(ua_c && jwt_c && k8s_c);

    /* Not attached yet: update and get are refused with each method's message. */
    cr_expect_eq(
        cf_auth_method_set(&fx_core, &fx_admin, &cf_auth_universal, id.id, &ua, false, ua_c, &err),
        CF_ENOTFOUND);
    cr_expect_str_eq(err.msg, "universal auth is not attached to identity 'methods'");
    cr_expect_eq(cf_auth_method_get(&fx_core, &fx_admin, &cf_auth_jwt, id.id, jwt_c, &err),
                 CF_ENOTFOUND);
    cr_expect_str_eq(err.msg,
                     "JWT auth method not found for identity, did you configure JWT auth?");
    cr_expect_eq(cf_auth_method_set(&fx_core, &fx_admin, &cf_auth_kubernetes, id.id, &k8s, false,
                                    k8s_c, &err),
                 CF_ENOTFOUND);
    cr_expect_str_eq(err.msg, "Kubernetes auth method not found for identity, did you configure "
                              "Kubernetes auth?");

    cr_assert_eq(
        cf_auth_method_set(&fx_core, &fx_admin, &cf_auth_universal, id.id, &ua, true, ua_c, &err),
        CF_OK, "%s", err.msg);
    cr_assert_eq(
        cf_auth_method_set(&fx_core, &fx_admin, &cf_auth_jwt, id.id, &jwt, true, jwt_c, &err),
        CF_OK, "%s", err.msg);
    cf_jwt_auth_config_release(jwt_c);
    cr_assert_eq(cf_auth_method_set(&fx_core, &fx_admin, &cf_auth_kubernetes, id.id, &k8s, true,
                                    k8s_c, &err),
                 CF_OK, "%s", err.msg);
    cr_expect_str_neq(k8s_c->token_reviewer_jwt, "reviewer.jwt.value", "stored unsealed");
    cr_expect_eq(k8s_c->token.ttl, 600);
    int64_t created = k8s_c->created_at;

    cr_expect_eq(
        cf_auth_method_set(&fx_core, &fx_admin, &cf_auth_universal, id.id, &ua, true, ua_c, &err),
        CF_EEXIST);
    cr_expect_str_eq(err.msg, "universal auth is already attached to identity 'methods'");
    cr_expect_eq(ua_c->identity_id[0], '\0', "a refused attach left its output filled");
    cr_expect_eq(
        cf_auth_method_set(&fx_core, &fx_admin, &cf_auth_jwt, id.id, &jwt, true, jwt_c, &err),
        CF_EEXIST);
    cr_expect_str_eq(err.msg, "JWT auth is already attached to identity 'methods'");
    cr_expect_null(jwt_c->bound_issuer, "a refused attach kept its texts");
    cr_expect_eq(cf_auth_method_set(&fx_core, &fx_admin, &cf_auth_kubernetes, id.id, &k8s, true,
                                    k8s_c, &err),
                 CF_EEXIST);
    cr_expect_str_eq(err.msg, "Kubernetes auth is already attached to identity 'methods'");

    usleep(3000); /* updated_at is in milliseconds: let one pass */
    struct cf_k8s_auth_settings ttl_only = {.token = {.has_ttl = true, .ttl = 60}};
    cr_assert_eq(cf_auth_method_set(&fx_core, &fx_admin, &cf_auth_kubernetes, id.id, &ttl_only,
                                    false, k8s_c, &err),
                 CF_OK, "%s", err.msg);
    cr_expect_eq(k8s_c->token.ttl, 60);
    cr_expect_str_eq(k8s_c->kubernetes_host, "https://k8s.example:6443", "the update lost a field");
    cr_expect_eq(k8s_c->created_at, created);
    cr_expect_gt(k8s_c->updated_at, created);
    cr_assert_eq(cf_auth_method_get(&fx_core, &fx_admin, &cf_auth_jwt, id.id, jwt_c, &err), CF_OK,
                 "%s", err.msg);
    cr_expect_str_eq(jwt_c->bound_issuer, "https://issuer.example");
    cf_jwt_auth_config_release(jwt_c);

    struct cf_k8s_auth_settings bad = {.kubernetes_host = "https://bad host"};
    cr_expect_eq(cf_auth_method_set(&fx_core, &fx_admin, &cf_auth_kubernetes, id.id, &bad, false,
                                    k8s_c, &err),
                 CF_EVALIDATION);
    cr_expect_eq(k8s_c->identity_id[0], '\0', "a refused update left its output filled");

    free(ua_c);
    free(jwt_c);
    free(k8s_c);
}
