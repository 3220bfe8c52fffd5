/* Single sign-on's relying party (auth/oidc.h) without a provider: the return-path rule that keeps
 * the login from being an open redirect, the configuration checks, and the pending logins of the
 * store (store/sso.h): single use, the ten-minute deadline, expired rows pruned, the bound. */
#include <criterion/criterion.h>

#include "core_fixture.h"

#include "auth/oidc.h"
#include "util/str.h"
#include "core/sso.h"
#include "store/sso.h"

TestSuite(oidc, .init = fx_setup, .fini = fx_teardown);

static const struct cf_sso_login_limits roomy = {.max_pending = 10, .max_per_source = 10};

Test(oidc, return_paths)
{
    static const char *const good[] = {"/", "/projects/abc", "/a?b=c&d=%2F", "/é"};
    static const char *const bad[] = {
        "",         "//evil.example", "/\\evil.example", "https://evil.example/",
        "relative", "/a b",           "/a\tb",           "/a\\b",
        "/\x7f",    "/\xff"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_expect(cf_oidc_return_ok(good[i]), "%s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect(!cf_oidc_return_ok(bad[i]), "%s", bad[i]);
    char longest[CF_SSO_RETURN_MAX + 2];
    memset(longest, 'a', sizeof(longest));
    longest[0] = '/';
    longest[CF_SSO_RETURN_MAX] = '\0';
    cr_expect(cf_oidc_return_ok(longest));
    longest[CF_SSO_RETURN_MAX] = 'a';
    longest[CF_SSO_RETURN_MAX + 1] = '\0';
    cr_expect(!cf_oidc_return_ok(longest));
}

struct config_case {
    struct cf_oidc_config config;
    const char *words; /* NULL: accepted */
};

Test(oidc, configuration)
{
    const char *cb = "https://coffer.example/api/v1/sso/oidc/callback";
    const char *tenant = "7f3c2a1e-9b4d-4c8e-a2f1-5d6e7f8a9b0c";
    const struct config_case cases[] = {
        {{.entra_tenant = tenant, .client_id = "c", .client_secret = "s", .redirect_url = cb},
         NULL},
        {{.issuer = "https://idp.example/",
          .client_id = "c",
          .client_secret = "s",
          .redirect_url = cb},
         NULL},
        {{.issuer = "http://127.0.0.1:9/x",
          .client_id = "c",
          .client_secret = "s",
          .redirect_url = "http://127.0.0.1:8080/api/v1/sso/oidc/callback"},
         NULL},
        {{.client_id = "c", .client_secret = "s", .redirect_url = cb}, "exactly one of"},
        {{.issuer = "https://idp.example",
          .entra_tenant = tenant,
          .client_id = "c",
          .client_secret = "s",
          .redirect_url = cb},
         "exactly one of"},
        {{.entra_tenant = tenant, .client_secret = "s", .redirect_url = cb}, "--oidc-client-id"},
        {{.entra_tenant = tenant, .client_id = "c", .redirect_url = cb}, "client secret"},
        {{.entra_tenant = tenant, .client_id = "c", .client_secret = "s"}, "--oidc-redirect-url"},
        {{.entra_tenant = tenant,
          .client_id = "c",
          .client_secret = "s",
          .redirect_url = "http://coffer.example/cb"},
         "--oidc-redirect-url"},
        {{.issuer = "http://idp.example",
          .client_id = "c",
          .client_secret = "s",
          .redirect_url = cb},
         "--oidc-issuer"},
        {{.entra_tenant = "a/b", .client_id = "c", .client_secret = "s", .redirect_url = cb},
         "--oidc-entra-tenant"},
        {{.entra_tenant = tenant,
          .entra_authority = "ftp://x",
          .client_id = "c",
          .client_secret = "s",
          .redirect_url = cb},
         "--oidc-entra-authority"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cf_oidc *oidc = NULL;
        struct cf_err e;
        cf_err_clear(&e);
        enum cf_rc rc = cf_oidc_new(&cases[i].config, &oidc, &e);
        if (!cases[i].words) {
            cr_expect_eq(rc, CF_OK, "case %zu: %s", i, e.msg);
            cr_expect_not_null(oidc);
        } else {
            cr_expect_eq(rc, CF_EINVAL, "case %zu", i);
            cr_expect_null(oidc);
            cr_expect(strstr(e.msg, cases[i].words) != NULL, "case %zu: %s", i, e.msg);
        }
        cf_oidc_free(oidc);
    }
}

Test(oidc, pending_logins_are_single_use_and_expire)
{
    uint8_t a[CF_SSO_STATE_HASH_LEN], b[CF_SSO_STATE_HASH_LEN];
    char ret[CF_SSO_RETURN_MAX + 1];
    int64_t expires = 0;
    randombytes_buf(a, sizeof(a));
    randombytes_buf(b, sizeof(b));
    cr_assert_eq(cf_store_sso_login_put(fx_store, a, "/x", "127.0.0.1", 1000, 2000, &roomy, &err),
                 CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_sso_login_take(fx_store, a, ret, sizeof(ret), &expires, &err), CF_OK,
                 "%s", err.msg);
    cr_expect_str_eq(ret, "/x");
    cr_expect_eq(expires, 2000);
    cr_expect_eq(cf_store_sso_login_take(fx_store, a, ret, sizeof(ret), &expires, &err),
                 CF_ENOTFOUND);
    cr_expect_eq(cf_store_sso_login_take(fx_store, b, ret, sizeof(ret), &expires, &err),
                 CF_ENOTFOUND);
    /* an expired login is pruned by the next put */
    cr_assert_eq(cf_store_sso_login_put(fx_store, a, "/old", "127.0.0.1", 1000, 2000, &roomy, &err),
                 CF_OK);
    cr_assert_eq(cf_store_sso_login_put(fx_store, b, "/new", "127.0.0.1", 3000, 4000, &roomy, &err),
                 CF_OK);
    cr_expect_eq(cf_store_sso_login_take(fx_store, a, ret, sizeof(ret), &expires, &err),
                 CF_ENOTFOUND);
    cr_expect_eq(cf_store_sso_login_take(fx_store, b, ret, sizeof(ret), &expires, &err), CF_OK);
}

Test(oidc, pending_logins_are_bounded)
{
    const struct cf_sso_login_limits limits = {.max_pending = 4, .max_per_source = 2};
    uint8_t h[CF_SSO_STATE_HASH_LEN];
    for (int i = 0; i < 2; i++) {
        randombytes_buf(h, sizeof(h));
        cr_assert_eq(
            cf_store_sso_login_put(fx_store, h, "/", "10.0.0.1", 1000, 2000, &limits, &err), CF_OK);
    }
    /* one address has its share; another still begins logins, until the whole bound */
    randombytes_buf(h, sizeof(h));
    cr_expect_eq(cf_store_sso_login_put(fx_store, h, "/", "10.0.0.1", 1000, 2000, &limits, &err),
                 CF_ERATELIMIT);
    cr_expect(strstr(err.msg, "begun from 10.0.0.1") != NULL, "%s", err.msg);
    for (int i = 0; i < 2; i++) {
        randombytes_buf(h, sizeof(h));
        cr_assert_eq(cf_store_sso_login_put(fx_store, h, "/", i ? "10.0.0.3" : "10.0.0.2", 1000,
                                            2000, &limits, &err),
                     CF_OK, "%s", err.msg);
    }
    randombytes_buf(h, sizeof(h));
    cr_expect_eq(cf_store_sso_login_put(fx_store, h, "/", "10.0.0.4", 1000, 2000, &limits, &err),
                 CF_ERATELIMIT);
    cr_expect(strstr(err.msg, "the most this server keeps") != NULL, "%s", err.msg);
    /* once they expired, there is room again */
    cr_expect_eq(cf_store_sso_login_put(fx_store, h, "/", "10.0.0.1", 2001, 3000, &limits, &err),
                 CF_OK, "%s", err.msg);
}

Test(oidc, not_configured)
{
    char *url = NULL;
    struct cf_oidc_identity id;
    struct cf_oidc_callback cb = {.state = "s", .code = "c"};
    cr_expect_eq(cf_sso_begin(&fx_core, "/", "127.0.0.1", &url, &err), CF_ENOTFOUND);
    cr_expect_null(url);
    cr_expect(strstr(err.msg, "not configured") != NULL, "%s", err.msg);
    cr_expect_eq(cf_sso_verify(&fx_core, &cb, &id, &err), CF_ENOTFOUND);
}

Test(oidc, finish_provisions_once_and_refuses_a_disabled_user)
{
    const struct cf_principal admin = {.kind = CF_PRINCIPAL_ADMIN};
    struct cf_oidc_identity id = {0};
    struct cf_user first = {0}, again = {0}, changed = {0};
    struct cf_session_grant grant = {0};
    cf_strlcpy(id.issuer, "https://login.example/tenant/v2.0", sizeof(id.issuer));
    cf_strlcpy(id.subject, "sub-1", sizeof(id.subject));
    cf_strlcpy(id.email, "alice@contoso.example", sizeof(id.email));
    cf_strlcpy(id.name, "Alice", sizeof(id.name));

    cr_assert_eq(cf_sso_finish(&fx_core, &id, "127.0.0.1", "test", &first, &grant, NULL, &err),
                 CF_OK, "%s", err.msg);
    cr_expect_str_eq(first.email, "alice@contoso.example");
    cr_expect_str_eq(first.org_role, "member");
    cr_expect_neq(grant.cookie[0], '\0');
    cr_expect_neq(grant.csrf_token[0], '\0');
    /* The same issuer and subject is the same user, not a second account. */
    cr_assert_eq(cf_sso_finish(&fx_core, &id, "127.0.0.1", "test", &again, &grant, NULL, &err),
                 CF_OK, "%s", err.msg);
    cr_expect_str_eq(again.id, first.id);

    cr_assert_eq(
        cf_users_update(&fx_core, &admin, first.id, NULL, NULL, "disabled", &changed, &err), CF_OK,
        "%s", err.msg);
    cr_expect_eq(cf_sso_finish(&fx_core, &id, "127.0.0.1", "test", &again, &grant, NULL, &err),
                 CF_EUNAUTH);
    /* Another subject claiming the same e-mail never takes the account over. */
    cf_strlcpy(id.subject, "sub-2", sizeof(id.subject));
    cr_expect_eq(cf_sso_finish(&fx_core, &id, "127.0.0.1", "test", &again, &grant, NULL, &err),
                 CF_EEXIST);
}
