/* Unit tests for the pieces of authorization and login protection that need no server: path globs,
 * roles, CIDR lists and the failed-login throttle. */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "auth/throttle.h"
#include "core/authz.h"
#include "core/core.h"
#include "core/names.h"
#include "util/cidr.h"
#include "util/str.h"

struct glob_case {
    const char *glob, *path;
    bool match;
};

Test(authz, globs)
{
    static const struct glob_case cases[] = {
        {"/", "/", true},
        {"/", "/a", false},
        {"/**", "/", true},
        {"/**", "/a/b/c", true},
        {"/backend/**", "/backend", true},
        {"/backend/**", "/backend/api/v1", true},
        {"/backend/**", "/backend-old", false},
        {"/backend/**", "/frontend/backend", false},
        {"/*", "/a", true},
        {"/*", "/a/b", false},
        {"/*", "/", false},
        {"/*/api", "/backend/api", true},
        {"/*/api", "/backend/web", false},
        {"/a/**/z", "/a/z", true},
        {"/a/**/z", "/a/b/c/z", true},
        {"/a/**/z", "/a/b/c/y", false},
        {"/backend", "/backend", true},
        {"/backend", "/backend/api", false},
        {"/Backend", "/backend", false},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++)
        cr_expect_eq(cf_glob_match(cases[i].glob, cases[i].path), cases[i].match, "%s vs %s",
                     cases[i].glob, cases[i].path);
}

/* The recursive matcher used before the linear one, kept as a model: exponential in the number of
 * double stars, but simple enough to trust on small inputs. */
static bool model_match_from(const char *g, const char *p)
{
    if (!*g)
        return !*p;
    const char *gs = strchr(g, '/');
    size_t glen = gs ? (size_t)(gs - g) : strlen(g);
    const char *gnext = gs ? gs + 1 : g + glen;
    if (glen == 2 && g[0] == '*' && g[1] == '*') {
        if (model_match_from(gnext, p))
            return true;
        if (!*p)
            return false;
        const char *ps = strchr(p, '/');
        return model_match_from(g, ps ? ps + 1 : p + strlen(p));
    }
    if (!*p)
        return false;
    const char *ps = strchr(p, '/');
    size_t plen = ps ? (size_t)(ps - p) : strlen(p);
    const char *pnext = ps ? ps + 1 : p + plen;
    if (!(glen == 1 && g[0] == '*') && (glen != plen || memcmp(g, p, plen) != 0))
        return false;
    return model_match_from(gnext, pnext);
}

/* Writes "/" plus the segments picked by digits of code in base n_parts (length segments). */
static void build(char *out, size_t size, const char *const *parts, size_t n_parts, size_t length,
                  size_t code)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < length; i++) {
        used += (size_t)snprintf(out + used, size - used, "/%s", parts[code % n_parts]);
        code /= n_parts;
    }
    if (length == 0)
        snprintf(out, size, "/");
}

/* Every glob of up to 5 segments over {a, b, *, **} against every path of up to 5 segments over
 * {a, b}: the linear matcher agrees with the model on all of them. */
Test(authz, glob_matches_model)
{
    static const char *const glob_parts[] = {"a", "b", "*", "**"};
    static const char *const path_parts[] = {"a", "b"};
    char glob[64], path[64];
    size_t compared = 0;
    for (size_t glen = 0; glen <= 5; glen++) {
        size_t gcount = 1;
        for (size_t i = 0; i < glen; i++)
            gcount *= 4;
        for (size_t gc = 0; gc < gcount; gc++) {
            build(glob, sizeof(glob), glob_parts, 4, glen, gc);
            for (size_t plen = 0; plen <= 5; plen++) {
                size_t pcount = (size_t)1 << plen;
                for (size_t pc = 0; pc < pcount; pc++) {
                    build(path, sizeof(path), path_parts, 2, plen, pc);
                    bool want = model_match_from(glob + 1, path + 1);
                    cr_expect_eq(cf_glob_match(glob, path), want, "%s vs %s: want %d", glob, path,
                                 want);
                    compared++;
                }
            }
        }
    }
    cr_expect_gt(compared, 80000u);
}

/* Twelve double stars against a path 32 folders deep that they cannot match: the model takes
 * C(44, 12) ~ 2e10 steps (hours); the linear matcher at most 13 x 33. The timeout is a margin of
 * many thousand times, not a benchmark. */
Test(authz, glob_many_double_stars_linear, .timeout = 10)
{
    char glob[256] = "", path[256] = "";
    size_t used = 0;
    for (int i = 0; i < 12; i++)
        used += (size_t)snprintf(glob + used, sizeof(glob) - used, "/**");
    snprintf(glob + used, sizeof(glob) - used, "/nomatch");
    used = 0;
    for (int i = 0; i < 32; i++)
        used += (size_t)snprintf(path + used, sizeof(path) - used, "/d%d", i);
    for (int i = 0; i < 1000; i++) {
        cr_assert(!cf_glob_match(glob, path));
        cr_assert(cf_glob_match("/**/d5/**/*/d31", path));
        cr_assert(!cf_glob_match("/**/d5/**/d5/**", path));
    }
}

Test(authz, glob_check_limits)
{
    struct cf_err err;
    char glob[512] = "";
    size_t used = 0;
    for (int i = 0; i < CF_GLOB_WILDCARDS_MAX; i++)
        used += (size_t)snprintf(glob + used, sizeof(glob) - used, i % 2 ? "/*" : "/**");
    cr_expect_eq(cf_glob_check(glob, "secretPath", &err), CF_OK, "%s: %s", glob, err.msg);
    snprintf(glob + used, sizeof(glob) - used, "/**");
    cr_expect_eq(cf_glob_check(glob, "secretPath", &err), CF_EVALIDATION, "%s accepted", glob);
    cr_expect(strstr(err.msg, "wildcards") != NULL, "%s", err.msg);
    cr_expect_str_eq(err.field, "secretPath");
    /* more segments than any path has folders */
    used = 0;
    for (int i = 0; i <= CF_PATH_DEPTH_MAX; i++)
        used += (size_t)snprintf(glob + used, sizeof(glob) - used, "/f");
    cr_expect_eq(cf_glob_check(glob, "secretPath", &err), CF_EVALIDATION, "%s accepted", glob);
    cr_expect(strstr(err.msg, "segments") != NULL, "%s", err.msg);
}

Test(authz, glob_check)
{
    struct cf_err err;
    static const char *const good[] = {"/", "/**", "/backend/**", "/*/api", "/a_b/c-d"};
    static const char *const bad[] = {"", "backend", "/a/", "/a b", "/a/***", "/a/b*", "//"};
    for (size_t i = 0; i < CF_ARRAY_SIZE(good); i++)
        cr_expect_eq(cf_glob_check(good[i], "secretPath", &err), CF_OK, "%s: %s", good[i], err.msg);
    for (size_t i = 0; i < CF_ARRAY_SIZE(bad); i++) {
        cr_expect_eq(cf_glob_check(bad[i], "secretPath", &err), CF_EVALIDATION, "'%s' accepted",
                     bad[i]);
        cr_expect_str_eq(err.field, "secretPath");
    }
}

Test(authz, roles)
{
    uint32_t a;
    cr_assert(cf_role_actions("viewer", &a));
    cr_expect_eq(a, CF_ACTION_BIT(CF_ACTION_READ));
    cr_assert(cf_role_actions("member", &a));
    cr_expect(a & CF_ACTION_BIT(CF_ACTION_DELETE));
    cr_expect(!(a & CF_ACTION_BIT(CF_ACTION_ADMIN)));
    cr_assert(cf_role_actions("admin", &a));
    cr_expect(a & CF_ACTION_BIT(CF_ACTION_ADMIN));
    cr_assert(cf_role_actions("no-access", &a));
    cr_expect_eq(a, 0u);
    cr_expect(!cf_role_actions("owner", &a));
}

Test(authz, admin_only)
{
    struct cf_principal admin = {.kind = CF_PRINCIPAL_ADMIN};
    struct cf_principal identity = {.kind = CF_PRINCIPAL_IDENTITY, .name = "ci"};
    struct cf_err err;
    cr_expect_eq(cf_authz_admin(&admin, "manage identities", &err), CF_OK);
    cr_expect_eq(cf_authz_admin(&identity, "manage identities", &err), CF_EFORBIDDEN);
    cr_expect(strstr(err.msg, "manage identities") != NULL, "%s", err.msg);
    cr_expect_eq(cf_authz_admin(NULL, "x", &err), CF_EFORBIDDEN);
}

struct cidr_case {
    const char *list, *address;
    bool match;
};

Test(cidr, matching)
{
    static const struct cidr_case cases[] = {
        {"0.0.0.0/0,::/0", "127.0.0.1", true},
        {"0.0.0.0/0,::/0", "::1", true},
        {"10.0.0.0/8", "10.255.1.2", true},
        {"10.0.0.0/8", "11.0.0.1", false},
        {"10.0.0.0/8, 192.168.1.7", "192.168.1.7", true},
        {"192.168.1.7", "192.168.1.8", false},
        {"192.168.1.0/25", "192.168.1.127", true},
        {"192.168.1.0/25", "192.168.1.128", false},
        {"2001:db8::/32", "2001:db8:1::5", true},
        {"2001:db8::/32", "2001:db9::5", false},
        {"10.0.0.0/8", "::ffff:10.1.2.3", true},
        {"10.0.0.0/8", "not-an-ip", false},
        {"10.0.0.0/8", "10.0.0.0/8", false},
        {"garbage", "10.0.0.1", false},
        /* found by fuzz_cidr: an invalid list matched through its valid part */
        {"10.0.\"\".0.0/0,::/0", "::ff", false},
        {"bad entry, 0.0.0.0/0", "10.0.0.1", false},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++)
        cr_expect_eq(cf_cidr_list_match(cases[i].list, cases[i].address), cases[i].match,
                     "%s in %s", cases[i].address, cases[i].list);
}

Test(cidr, checking)
{
    struct cf_err err;
    cr_expect_eq(cf_cidr_list_check("10.0.0.0/8, ::1, 2001:db8::/32", "ips", &err), CF_OK);
    cr_expect_eq(cf_cidr_list_check("", "ips", &err), CF_EVALIDATION);
    cr_expect_eq(cf_cidr_list_check("10.0.0.0/33", "ips", &err), CF_EVALIDATION);
    cr_expect(strstr(err.msg, "10.0.0.0/33") != NULL, "%s", err.msg);
    cr_expect_eq(cf_cidr_list_check("10.0.0.0/8,,", "ips", &err), CF_EVALIDATION);
    cr_expect_eq(cf_cidr_list_check("::/129", "ips", &err), CF_EVALIDATION);
    cr_expect_eq(cf_cidr_list_check("1.2.3.4/-1", "ips", &err), CF_EVALIDATION);
}

/* The list's edges: entries are trimmed of spaces and tabs, and every entry, the empty ones
 * included (a trailing comma, a blank list), must be a range. */
Test(cidr, list_edges)
{
    struct cf_err err;
    cr_expect_eq(cf_cidr_list_check(" \t10.0.0.0/8 \t,\t::1 ", "ips", &err), CF_OK);
    cr_expect(cf_cidr_list_match(" 10.0.0.0/8 ,\t::1\t", "::1"));
    static const char *const refused[] = {"10.0.0.0/8,", "10.0.0.0/8, ", ",10.0.0.0/8", " ",
                                          "10.0.0.0/8,,::1"};
    for (size_t i = 0; i < CF_ARRAY_SIZE(refused); i++) {
        cf_err_clear(&err);
        cr_expect_eq(cf_cidr_list_check(refused[i], "ips", &err), CF_EVALIDATION, "%s", refused[i]);
        cr_expect(strstr(err.msg, "ips: '' is not an IP address or CIDR range") != NULL, "%s: %s",
                  refused[i], err.msg);
        cr_expect(!cf_cidr_list_match(refused[i], "10.0.0.1"), "%s", refused[i]);
    }
    /* 64 ranges are allowed; a 65th, even an empty one after a trailing comma, is one too many */
    char list[64 * 16] = "";
    for (int i = 0; i < 64; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s10.0.0.%d", i ? "," : "", i);
    cr_expect_eq(cf_cidr_list_check(list, "ips", &err), CF_OK, "%s", err.msg);
    cr_expect(cf_cidr_list_match(list, "10.0.0.63"));
    size_t len = strlen(list);
    cf_strlcpy(list + len, ",", sizeof list - len);
    cr_expect_eq(cf_cidr_list_check(list, "ips", &err), CF_EVALIDATION);
    cr_expect(strstr(err.msg, "at most 64 address ranges") != NULL, "%s", err.msg);
    cf_strlcpy(list + len, ",10.0.1.1", sizeof list - len);
    cr_expect_eq(cf_cidr_list_check(list, "ips", &err), CF_EVALIDATION);
    cr_expect(strstr(err.msg, "at most 64 address ranges") != NULL, "%s", err.msg);
}

Test(throttle, lockout_and_release)
{
    struct cf_throttle_policy policy = {3, 60, 30};
    struct cf_throttle *t = cf_throttle_new(&policy);
    struct cf_err err;
    int64_t now = 1000000;
    cr_assert_not_null(t);
    cr_expect_eq(cf_throttle_check(t, "id-a", "client id", now, &err), CF_OK);
    cf_throttle_failure(t, "id-a", now);
    cf_throttle_failure(t, "id-a", now + 1);
    cr_expect_eq(cf_throttle_check(t, "id-a", "client id", now + 2, &err), CF_OK);
    cf_throttle_failure(t, "id-a", now + 2);
    cr_expect_eq(cf_throttle_check(t, "id-a", "client id", now + 3, &err), CF_ERATELIMIT);
    cr_expect(err.retry_after_s >= 29 && err.retry_after_s <= 30, "%d", err.retry_after_s);
    cr_expect_eq(cf_throttle_check(t, "id-b", "client id", now + 3, &err), CF_OK,
                 "another key is not affected");
    cr_expect_eq(cf_throttle_check(t, "id-a", "client id", now + 31000, &err), CF_OK,
                 "the lockout ends");
    cf_throttle_free(t);
}

Test(throttle, window_and_success)
{
    struct cf_throttle_policy policy = {3, 10, 30};
    struct cf_throttle *t = cf_throttle_new(&policy);
    struct cf_err err;
    int64_t now = 5000000;
    cf_throttle_failure(t, "k", now);
    cf_throttle_failure(t, "k", now + 1);
    cf_throttle_failure(t, "k", now + 11000); /* the window restarted: one failure */
    cr_expect_eq(cf_throttle_check(t, "k", "x", now + 11001, &err), CF_OK);
    cf_throttle_failure(t, "k", now + 11002);
    cf_throttle_success(t, "k"); /* clears */
    cf_throttle_failure(t, "k", now + 11003);
    cr_expect_eq(cf_throttle_check(t, "k", "x", now + 11004, &err), CF_OK);
    cf_throttle_free(t);
}

Test(throttle, bounded_table)
{
    struct cf_throttle_policy policy = {2, 60, 60};
    struct cf_throttle *t = cf_throttle_new(&policy);
    struct cf_err err;
    char key[32];
    /* Lock one key, then flood with many others: the locked key must stay locked. */
    cf_throttle_failure(t, "victim", 1000);
    cf_throttle_failure(t, "victim", 1001);
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        cf_throttle_failure(t, key, 2000 + i);
    }
    cr_expect_eq(cf_throttle_check(t, "victim", "x", 30000, &err), CF_ERATELIMIT);
    cf_throttle_free(t);
}
