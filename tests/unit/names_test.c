/* Unit tests for core/names: paths, keys, slugs, text and value normalisation. */
#include <string.h>

#include <criterion/criterion.h>

#include "core/names.h"
#include "util/str.h"

struct path_case {
    const char *in;
    const char *out; /* NULL: must be refused */
};

Test(names, path_normalize)
{
    static const struct path_case cases[] = {
        {"", "/"},
        {"/", "/"},
        {"  /backend/api/  ", "/backend/api"},
        {"backend", "/backend"},
        {"/a_b/C-d/9", "/a_b/C-d/9"},
        {"//", NULL},
        {"/a//b", NULL},
        {"c//", NULL}, /* found by fuzz_names: normalised to "/c/", a path with an empty name */
        {"/a/b//", NULL},
        {"/a/../b", NULL},
        {"/a/./b", NULL},
        {"/a b", NULL},
        {"/caf\xc3\xa9", NULL},
        {"/a/b%2F", NULL},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        char out[CF_PATH_MAX + 1];
        struct cf_err err;
        enum cf_rc rc = cf_path_normalize(cases[i].in, out, "secretPath", &err);
        if (cases[i].out) {
            cr_expect_eq(rc, CF_OK, "'%s' refused: %s", cases[i].in, err.msg);
            cr_expect_str_eq(out, cases[i].out);
        } else {
            cr_expect_eq(rc, CF_EVALIDATION, "'%s' accepted", cases[i].in);
            cr_expect_str_eq(err.field, "secretPath");
        }
    }
}

Test(names, path_limits)
{
    char deep[40 * 3 + 1] = "";
    for (int i = 0; i < 33; i++)
        strcat(deep, "/ab");
    char out[CF_PATH_MAX + 1];
    struct cf_err err;
    cr_expect_eq(cf_path_normalize(deep, out, "path", &err), CF_EVALIDATION);
    cr_expect(strstr(err.msg, "deep") != NULL, "%s", err.msg);
    deep[32 * 3] = '\0';
    cr_expect_eq(cf_path_normalize(deep, out, "path", &err), CF_OK);

    char segment[80];
    memset(segment, 'x', 66);
    segment[0] = '/';
    segment[66] = '\0';
    cr_expect_eq(cf_path_normalize(segment, out, "path", &err), CF_EVALIDATION);
}

Test(names, keys)
{
    static const char *const good[] = {"DB_PASSWORD", "a", "_x", "TEST-SECRET-1", "api.key", "-x"};
    static const char *const bad[] = {"",    "1ABC", ".hidden", "A B",
                                      "A/B", "A:B",  "${X}",    "K\xc3\xa9"};
    struct cf_err err;
    for (size_t i = 0; i < CF_ARRAY_SIZE(good); i++)
        cr_expect_eq(cf_key_check(good[i], "secretKey", &err), CF_OK, "%s: %s", good[i], err.msg);
    for (size_t i = 0; i < CF_ARRAY_SIZE(bad); i++) {
        cr_expect_eq(cf_key_check(bad[i], "secretKey", &err), CF_EVALIDATION, "'%s' accepted",
                     bad[i]);
        cr_expect_str_eq(err.field, "secretKey");
    }
    char long_key[CF_KEY_MAX + 2];
    memset(long_key, 'K', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    cr_expect_eq(cf_key_check(long_key, "secretKey", &err), CF_EVALIDATION);
    long_key[CF_KEY_MAX] = '\0';
    cr_expect_eq(cf_key_check(long_key, "secretKey", &err), CF_OK);
}

Test(names, slugs_and_text)
{
    struct cf_err err;
    cr_expect_eq(cf_slug_check("prod", "slug", &err), CF_OK);
    cr_expect_eq(cf_slug_check("my-app-2", "slug", &err), CF_OK);
    cr_expect_eq(cf_slug_check("Prod", "slug", &err), CF_EVALIDATION);
    cr_expect_eq(cf_slug_check("", "slug", &err), CF_EVALIDATION);
    cr_expect_eq(cf_slug_check("a_b", "slug", &err), CF_EVALIDATION);
    cr_expect_eq(cf_text_check("My Project", 128, true, "name", &err), CF_OK);
    cr_expect_eq(cf_text_check("   ", 128, true, "name", &err), CF_EVALIDATION);
    cr_expect_eq(cf_text_check("", 128, false, "name", &err), CF_OK);
    cr_expect_eq(cf_text_check("a\nb", 128, false, "name", &err), CF_EVALIDATION);
    cr_expect_eq(cf_text_check("abcdef", 5, false, "name", &err), CF_EVALIDATION);
}

Test(names, slugify)
{
    char out[CF_SLUG_MAX + 1];
    cf_slugify("My Backend API", out);
    cr_expect_str_eq(out, "my-backend-api");
    cf_slugify("  --Hello__World!! ", out);
    cr_expect_str_eq(out, "hello-world");
    cf_slugify("!!!", out);
    cr_expect_str_eq(out, "project");
    char name[200];
    memset(name, 'a', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    cf_slugify(name, out);
    cr_expect_eq(strlen(out), CF_SLUG_MAX);
}

Test(names, value_normalize)
{
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        {"value", "value"},
        {"  padded\t", "padded"},
        {"-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
         "-----BEGIN KEY-----\nabc\n-----END KEY-----\n"},
        {"line  \n", "line\n"},
        {"trail\n\n\n", "trail\n"},
        {"", ""},
        {"\n", "\n"},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        struct cf_buf out;
        cf_buf_init(&out, 0);
        cr_assert_eq(cf_value_normalize(cases[i].in, strlen(cases[i].in), &out), CF_OK);
        cr_expect_eq(out.len, strlen(cases[i].out), "case %zu", i);
        cr_expect(out.len == 0 || memcmp(out.data, cases[i].out, out.len) == 0, "case %zu", i);
        cf_buf_release_wipe(&out);
    }
}
