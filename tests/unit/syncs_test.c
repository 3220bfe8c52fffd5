/* Unit tests for core/syncs: the key schema that names a secret at a sync's destination. */
#include <string.h>

#include <criterion/criterion.h>

#include "core/syncs.h"

struct schema_case {
    const char *schema;
    const char *key;
    const char *out; /* NULL: refused */
};

Test(syncs, key_schema)
{
    static const struct schema_case cases[] = {
        {"{{secretKey}}", "DB_URL", "DB_URL"},
        {"TF_VAR_{{secretKey}}", "DB_URL", "TF_VAR_DB_URL"},
        {"{{secretKey}}_PROD", "DB_URL", "DB_URL_PROD"},
        {"APP-{{secretKey}}-V1", "KEY", "APP-KEY-V1"},
        {"TF_VAR_", "DB_URL", NULL},
        {"", "DB_URL", NULL},
        {"{{secretkey}}", "DB_URL", NULL}, /* the placeholder is case-sensitive */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64];
        struct cf_err err;
        cf_err_clear(&err);
        enum cf_rc rc = cf_sync_key_apply(cases[i].schema, cases[i].key, out, sizeof(out), &err);
        if (cases[i].out) {
            cr_expect_eq(rc, CF_OK, "%s: %s", cases[i].schema, err.msg);
            cr_expect_str_eq(out, cases[i].out);
        } else {
            cr_expect_eq(rc, CF_EVALIDATION, "%s accepted", cases[i].schema);
            cr_expect(strstr(err.msg, "{{secretKey}}") != NULL, "%s", err.msg);
        }
    }
}

Test(syncs, key_schema_too_long)
{
    char out[16];
    struct cf_err err;
    cf_err_clear(&err);
    cr_expect_eq(
        cf_sync_key_apply("PREFIX_{{secretKey}}", "A_RATHER_LONG_KEY", out, sizeof(out), &err),
        CF_EVALIDATION);
    cr_expect(strstr(err.msg, "too long") != NULL, "%s", err.msg);
}
