/* Unit tests for core/refs: reference syntax, nesting, memoisation, cycles, missing targets, depth.
 * The resolver is a table standing in for the store; it counts lookups to prove memoisation. */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/core.h"
#include "core/refs.h"

struct fake_secret {
    const char *env, *path, *key, *value;
};

struct fake_store {
    const struct fake_secret *items;
    size_t n;
    int lookups;
};

static enum cf_rc fake_resolve(void *ctx, const char *env, const char *path, const char *key,
                               struct cf_buf *value, struct cf_err *err)
{
    struct fake_store *fs = ctx;
    fs->lookups++;
    for (size_t i = 0; i < fs->n; i++) {
        const struct fake_secret *s = &fs->items[i];
        if (!strcmp(s->env, env) && !strcmp(s->path, path) && !strcmp(s->key, key))
            return cf_buf_puts(value, s->value);
    }
    return cf_err_set(err, CF_ENOTFOUND, "no secret '%s' in %s:%s", key, env, path);
}

static const struct fake_secret world[] = {
    {"dev", "/", "HOST", "db.internal"},
    {"dev", "/", "PORT", "5432"},
    {"dev", "/", "URL", "postgres://${HOST}:${PORT}/app"},
    {"dev", "/", "WRAP", "[${URL}]"},
    {"prod", "/backend/api", "DB_PASSWORD", "s3cret"},
    {"prod", "/", "ROOTKEY", "r00t"},
    {"dev", "/svc", "LOCAL", "local-${NAME}"},
    {"dev", "/svc", "NAME", "svc"},
    {"dev", "/", "A", "${B}"},
    {"dev", "/", "B", "${C}"},
    {"dev", "/", "C", "${A}"},
    {"dev", "/", "SELF", "x${SELF}"},
    {"dev", "/", "MISSING", "${NOPE}"},
    {"dev", "/", "D0", "${D1}"},
    {"dev", "/", "D1", "${D2}"},
    {"dev", "/", "D2", "${D3}"},
    {"dev", "/", "D3", "${D4}"},
    {"dev", "/", "D4", "${D5}"},
    {"dev", "/", "D5", "${D6}"},
    {"dev", "/", "D6", "${D7}"},
    {"dev", "/", "D7", "${D8}"},
    {"dev", "/", "D8", "${D9}"},
    {"dev", "/", "D9", "${D10}"},
    {"dev", "/", "D10", "${D11}"},
    {"dev", "/", "D11", "end"},
};

static enum cf_rc expand(struct fake_store *fs, const char *env, const char *path, const char *key,
                         const char *value, char *out, size_t size, struct cf_err *err)
{
    struct cf_refs *refs = cf_refs_new(fake_resolve, fs);
    struct cf_buf buf;
    cf_buf_init(&buf, 0);
    enum cf_rc rc = cf_refs_expand(refs, env, path, key, value, strlen(value), &buf, err);
    snprintf(out, size, "%s", buf.data ? buf.data : "");
    cf_buf_release_wipe(&buf);
    cf_refs_free(refs);
    return rc;
}

static struct fake_store store_of_world(void)
{
    struct fake_store fs = {world, sizeof(world) / sizeof(world[0]), 0};
    return fs;
}

Test(refs, plain_text_untouched)
{
    struct fake_store fs = store_of_world();
    char out[256];
    struct cf_err err;
    static const char *const texts[] = {"no refs", "$HOME",         "${", "${}", "${a b}",
                                        "$${x",    "${unterminated"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        cr_expect_eq(expand(&fs, "dev", "/", "K", texts[i], out, sizeof(out), &err), CF_OK);
        cr_expect_str_eq(out, texts[i]);
    }
    cr_expect_eq(fs.lookups, 0);
}

Test(refs, same_folder_and_nested)
{
    struct fake_store fs = store_of_world();
    char out[256];
    struct cf_err err;
    cr_assert_eq(expand(&fs, "dev", "/", "X", "${WRAP}!", out, sizeof(out), &err), CF_OK, "%s",
                 err.msg);
    cr_expect_str_eq(out, "[postgres://db.internal:5432/app]!");
}

Test(refs, other_environment_and_folder)
{
    struct fake_store fs = store_of_world();
    char out[256];
    struct cf_err err;
    cr_assert_eq(expand(&fs, "dev", "/", "X",
                        "pw=${prod.backend.api.DB_PASSWORD} r=${prod.ROOTKEY}", out, sizeof(out),
                        &err),
                 CF_OK, "%s", err.msg);
    cr_expect_str_eq(out, "pw=s3cret r=r00t");
    /* A short reference inside an imported value resolves relative to its own folder. */
    cr_assert_eq(expand(&fs, "dev", "/", "X", "${dev.svc.LOCAL}", out, sizeof(out), &err), CF_OK,
                 "%s", err.msg);
    cr_expect_str_eq(out, "local-svc");
}

Test(refs, memoised)
{
    struct fake_store fs = store_of_world();
    char out[512];
    struct cf_err err;
    cr_assert_eq(
        expand(&fs, "dev", "/", "X", "${HOST}${HOST}${HOST}${URL}${URL}", out, sizeof(out), &err),
        CF_OK);
    cr_expect_str_eq(out, "db.internaldb.internaldb.internalpostgres://db.internal:5432/"
                          "apppostgres://db.internal:5432/app");
    cr_expect_eq(fs.lookups, 3, "HOST, URL and PORT once each, got %d lookups", fs.lookups);
}

Test(refs, cycle_named)
{
    struct fake_store fs = store_of_world();
    char out[256];
    struct cf_err err;
    cr_expect_eq(expand(&fs, "dev", "/", "A", "${B}", out, sizeof(out), &err), CF_EVALIDATION);
    cr_expect(strstr(err.msg, "cycle") != NULL, "%s", err.msg);
    cr_expect(strstr(err.msg, "A -> B -> C -> A") != NULL, "%s", err.msg);

    struct cf_refs *refs = cf_refs_new(fake_resolve, &fs);
    struct cf_buf buf;
    cf_buf_init(&buf, 0);
    cr_assert_eq(cf_refs_add(refs, "dev", "/", "SELF", "x${SELF}", 8, &err), CF_OK);
    cr_expect_eq(cf_refs_expand(refs, "dev", "/", "SELF", "x${SELF}", 8, &buf, &err),
                 CF_EVALIDATION);
    cr_expect(strstr(err.msg, "SELF -> SELF") != NULL, "%s", err.msg);
    cf_buf_release_wipe(&buf);
    cf_refs_free(refs);
}

Test(refs, missing_named)
{
    struct fake_store fs = store_of_world();
    char out[256];
    struct cf_err err;
    cr_expect_eq(expand(&fs, "dev", "/", "MISSING", "${NOPE}", out, sizeof(out), &err),
                 CF_EVALIDATION);
    cr_expect(strstr(err.msg, "'MISSING' references ${NOPE}") != NULL, "%s", err.msg);
    cr_expect(strstr(err.msg, "no secret 'NOPE' in dev:/") != NULL, "%s", err.msg);
    cr_expect_eq(expand(&fs, "dev", "/", "X", "${qa.KEY}", out, sizeof(out), &err), CF_EVALIDATION);
    cr_expect(strstr(err.msg, "${qa.KEY}") != NULL, "%s", err.msg);
}

Test(refs, depth_limit)
{
    struct fake_store fs = store_of_world();
    char out[256];
    struct cf_err err;
    /* D2 .. D11 is a chain of 9 references below the root: allowed. */
    cr_expect_eq(expand(&fs, "dev", "/", "X", "${D2}", out, sizeof(out), &err), CF_OK, "%s",
                 err.msg);
    cr_expect_str_eq(out, "end");
    /* D0 .. D11 is 12 deep: refused, naming the chain. */
    cr_expect_eq(expand(&fs, "dev", "/", "X", "${D0}", out, sizeof(out), &err), CF_EVALIDATION);
    cr_expect(strstr(err.msg, "deeper than 10") != NULL, "%s", err.msg);
    cr_expect(strstr(err.msg, "X -> D0 -> D1") != NULL, "%s", err.msg);
}

Test(refs, present)
{
    cr_expect(cf_refs_present("a${B}c", 6));
    cr_expect(!cf_refs_present("a${}c", 5));
    cr_expect(!cf_refs_present("$B", 2));
}
