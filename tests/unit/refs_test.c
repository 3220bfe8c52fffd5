/* Unit tests for core/refs: reference syntax, nesting, memoisation, cycles, missing targets, depth.
 * The resolver is a table standing in for the store; it counts lookups to prove memoisation. */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/core.h"
#include "core/refs.h"
#include "util/str.h"

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
    struct fake_store fs = {world, CF_ARRAY_SIZE(world), 0};
    return fs;
}

Test(refs, plain_text_untouched)
{
    struct fake_store fs = store_of_world();
    char out[256];
    struct cf_err err;
    static const char *const texts[] = {"no refs", "$HOME",         "${", "${}", "${a b}",
                                        "$${x",    "${unterminated"};
    for (size_t i = 0; i < CF_ARRAY_SIZE(texts); i++) {
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

/* Values for the budget tests: BIG is 1000 bytes; DOUBLE and QUAD multiply it; E is empty and
 * MANY_E names it 100 times, NEST_E names MANY_E 100 times (10,100 substitutions, no bytes). */
static char big[1001];
static char many_e[4 * 100 + 1];
static char nest_e[9 * 100 + 1];
static struct fake_secret budget_world[] = {
    {"dev", "/", "BIG", big},
    {"dev", "/", "DOUBLE", "${BIG}${BIG}"},
    {"dev", "/", "QUAD", "${DOUBLE}${DOUBLE}"},
    {"dev", "/", "E", ""},
    {"dev", "/", "MANY_E", many_e},
    {"dev", "/", "NEST_E", nest_e},
};

static struct fake_store store_of_budget_world(void)
{
    memset(big, 'b', 1000);
    many_e[0] = nest_e[0] = '\0';
    for (int i = 0; i < 100; i++) {
        strcat(many_e, "${E}");
        strcat(nest_e, "${MANY_E}");
    }
    struct fake_store fs = {budget_world, CF_ARRAY_SIZE(budget_world), 0};
    return fs;
}

/* An expansion is exactly as large as measured, and counts against the budget: bytes fetched
 * (BIG, DOUBLE, QUAD once each) plus bytes produced. */
Test(refs, budget_counts_fetched_and_expanded_bytes)
{
    struct fake_store fs = store_of_budget_world();
    struct cf_refs_budget budget;
    cf_refs_budget_init(&budget);
    struct cf_refs *refs = cf_refs_new(fake_resolve, &fs);
    cf_refs_use_budget(refs, &budget);
    struct cf_buf out;
    cf_buf_init(&out, 0);
    struct cf_err err;
    cr_assert_eq(cf_refs_expand(refs, "dev", "/", "X", "<${QUAD}>", 9, &out, &err), CF_OK, "%s",
                 err.msg);
    cr_expect_eq(out.len, 4002u);
    cr_expect_eq(out.cap, 4003u, "the buffer is allocated once, at the measured size");
    cr_expect_eq(budget.bytes_used, 1000u + 12u + 18u + 4002u);
    cr_expect_eq(budget.refs_used, 7u, "QUAD, 2 DOUBLE, 4 BIG");
    cf_buf_release_wipe(&out);
    cf_refs_free(refs);
}

/* Expands value as key with a budget of the default limits except one (*limit = max), and
 * expects a refusal naming key and max with nothing appended. */
static void expect_refused(struct fake_store *fs, size_t *limit, size_t max,
                           struct cf_refs_budget *budget, const char *key, const char *value)
{
    struct cf_refs *refs = cf_refs_new(fake_resolve, fs);
    struct cf_buf out;
    struct cf_err err;
    char max_text[32], key_text[64];
    cf_buf_init(&out, 0);
    *limit = max;
    cf_refs_use_budget(refs, budget);
    /* a first expansion within the limits leaves less for the second */
    cr_expect_eq(cf_refs_expand(refs, "dev", "/", "FIRST", "${BIG}", 6, &out, &err), CF_OK, "%s",
                 err.msg);
    cf_buf_release_wipe(&out);
    cr_expect_eq(cf_refs_expand(refs, "dev", "/", key, value, strlen(value), &out, &err),
                 CF_EVALIDATION);
    snprintf(max_text, sizeof(max_text), "%zu", max);
    snprintf(key_text, sizeof(key_text), "'%s'", key);
    cr_expect(strstr(err.msg, key_text) && strstr(err.msg, max_text), "%s", err.msg);
    cr_expect_str_eq(err.field, key);
    cr_expect_null(out.data);
    cf_refs_free(refs);
}

/* Over a limit: a 422-style error naming the secret and the limit, and nothing appended. */
Test(refs, limits_refuse_before_allocating)
{
    struct fake_store fs = store_of_budget_world();
    struct cf_refs_budget budget;
    cf_refs_budget_init(&budget);
    expect_refused(&fs, &budget.value_max, 3999, &budget, "X", "${QUAD}");
    /* per request: FIRST used 2000 (BIG fetched, then expanded); QUAD needs 30 more fetched and
     * 4000 expanded */
    cf_refs_budget_init(&budget);
    expect_refused(&fs, &budget.bytes_max, 6000, &budget, "Y", "${QUAD}");
    /* substitutions that produce nothing */
    cf_refs_budget_init(&budget);
    expect_refused(&fs, &budget.refs_max, 10000, &budget, "Z", "${NEST_E}");
    cr_expect_lt(fs.lookups, 15, "each value fetched once per request, got %d lookups", fs.lookups);
}

/* The write check: references that cannot be followed count as empty (one lookup each), the
 * limits are those of one value, and the field is secretValue. */
Test(refs, write_check)
{
    struct fake_store fs = store_of_budget_world();
    struct cf_refs *refs = cf_refs_new(fake_resolve, &fs);
    struct cf_err err;
    char value[7 * 1000 + 1] = "";
    for (int i = 0; i < 1000; i++)
        strcat(value, "${NOPE}");
    cr_expect_eq(cf_refs_check(refs, "dev", "/", "W", value, strlen(value), &err), CF_OK, "%s",
                 err.msg);
    cr_expect_eq(fs.lookups, 1);
    cr_expect_eq(cf_refs_check(refs, "dev", "/", "W", "${A}", 4, &err), CF_OK, "%s", err.msg);
    value[0] = '\0';
    for (int i = 0; i < 300; i++)
        strcat(value, "${QUAD}"); /* 1.2 MB */
    cr_expect_eq(cf_refs_check(refs, "dev", "/", "W", value, strlen(value), &err), CF_EVALIDATION);
    cr_expect_str_eq(err.field, "secretValue");
    cr_expect(strstr(err.msg, "'W'") && strstr(err.msg, "1048576"), "%s", err.msg);
    cf_refs_free(refs);
}

/* The depth limit holds through memoised values too: C0 -> C1 -> ... -> C19, measured from the
 * end (as a list in that order would), is refused from C8 on, exactly as when nothing is memoised;
 * so expansion never recurses deeper than the limit. */
Test(refs, depth_counts_memoised_levels)
{
    struct fake_store fs = {NULL, 0, 0};
    struct cf_refs *refs = cf_refs_new(fake_resolve, &fs);
    struct cf_err err;
    char key[8], values[20][16];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "C%d", i);
        if (i < 19)
            snprintf(values[i], sizeof(values[i]), "${C%d}", i + 1);
        else
            snprintf(values[i], sizeof(values[i]), "end");
        cr_assert_eq(cf_refs_add(refs, "dev", "/", key, values[i], strlen(values[i]), &err), CF_OK);
    }
    for (int i = 18; i >= 0; i--) {
        struct cf_buf out;
        cf_buf_init(&out, 0);
        snprintf(key, sizeof(key), "C%d", i);
        enum cf_rc rc =
            cf_refs_expand(refs, "dev", "/", key, values[i], strlen(values[i]), &out, &err);
        if (i >= 9) {
            cr_expect_eq(rc, CF_OK, "%s: %s", key, err.msg);
            cr_expect_str_eq(out.data, "end");
        } else {
            cr_expect_eq(rc, CF_EVALIDATION, "%s expanded", key);
            cr_expect(strstr(err.msg, "deeper than 10") != NULL, "%s", err.msg);
        }
        cf_buf_release_wipe(&out);
    }
    cf_refs_free(refs);
}

/* Stands in for a store where the caller may not read environment "locked". */
static enum cf_rc guarded_resolve(void *ctx, const char *env, const char *path, const char *key,
                                  struct cf_buf *value, struct cf_err *err)
{
    if (strcmp(env, "locked") == 0)
        return cf_err_set(err, CF_EFORBIDDEN, "not allowed to read locked:%s", path);
    return fake_resolve(ctx, env, path, key, value, err);
}

static enum cf_rc measure(struct cf_refs *refs, const char *key, const char *value,
                          struct cf_err *err)
{
    size_t size = 0;
    return cf_refs_measure(refs, "dev", "/", key, value, strlen(value), &size, err);
}

/* A value that cannot be expanded (missing target, cycle, chain too deep) is the value's own
 * fault, told apart from refusals (permission, budget), and a missing target is looked up once. */
Test(refs, broken_told_from_refusals)
{
    struct fake_store fs = store_of_world();
    struct cf_refs *refs = cf_refs_new(guarded_resolve, &fs);
    struct cf_err err;
    const char *reference = "unset";

    cr_expect_eq(measure(refs, "X", "a${NOPE}b", &err), CF_EVALIDATION);
    cr_expect(cf_refs_broken(refs, &reference));
    cr_expect_str_eq(reference, "${NOPE}");
    int lookups = fs.lookups;
    cr_expect_eq(measure(refs, "Y", "${NOPE}${NOPE}${dev.NOPE}", &err), CF_EVALIDATION);
    cr_expect(strstr(err.msg, "'Y' references ${NOPE}") && strstr(err.msg, "no secret 'NOPE'"),
              "%s", err.msg);
    cr_expect_eq(fs.lookups, lookups, "a missing target is remembered");
    /* through another secret: the reference that cannot be followed is the inner one */
    cr_expect_eq(measure(refs, "W", "${MISSING}", &err), CF_EVALIDATION);
    cr_expect(cf_refs_broken(refs, &reference));
    cr_expect_str_eq(reference, "${NOPE}");
    cr_expect_eq(measure(refs, "Z", "${A}", &err), CF_EVALIDATION);
    cr_expect(cf_refs_broken(refs, &reference) && strstr(err.msg, "cycle"), "%s", err.msg);
    cr_expect_eq(measure(refs, "Q", "${D0}", &err), CF_EVALIDATION);
    cr_expect(cf_refs_broken(refs, &reference) && strstr(err.msg, "deeper"), "%s", err.msg);

    /* refusals */
    cr_expect_eq(measure(refs, "P", "${locked.KEY}", &err), CF_EFORBIDDEN);
    cr_expect(!cf_refs_broken(refs, &reference));
    cr_expect_null(reference);
    struct cf_refs_budget budget;
    cf_refs_budget_init(&budget);
    budget.value_max = 4;
    cf_refs_use_budget(refs, &budget);
    cr_expect_eq(measure(refs, "U", "${HOST}", &err), CF_EVALIDATION);
    cr_expect(!cf_refs_broken(refs, &reference), "over the budget is a refusal: %s", err.msg);
    budget.value_max = CF_EXPAND_VALUE_MAX;
    cr_expect_eq(measure(refs, "V", "${HOST}", &err), CF_OK, "%s", err.msg);
    cf_refs_free(refs);
}

struct missing_seen {
    int calls;
    char last[128];
};

static void on_missing(void *ctx, const char *holder, const char *inner, size_t inner_len,
                       const char *reason)
{
    struct missing_seen *seen = ctx;
    seen->calls++;
    snprintf(seen->last, sizeof(seen->last), "%s:%.*s:%s", holder, (int)inner_len, inner, reason);
}

/* A write check accepts a missing target and tells of it; a forbidden one it neither refuses nor
 * tells (that would say whether it exists). */
Test(refs, write_check_tells_missing_targets)
{
    struct fake_store fs = store_of_world();
    struct cf_refs *refs = cf_refs_new(guarded_resolve, &fs);
    struct missing_seen seen = {0};
    struct cf_err err;
    cf_refs_on_missing(refs, on_missing, &seen);
    cr_expect_eq(cf_refs_check(refs, "dev", "/", "W", "${GONE}", 7, &err), CF_OK, "%s", err.msg);
    cr_expect_eq(seen.calls, 1);
    cr_expect_str_eq(seen.last, "W:GONE:no secret 'GONE' in dev:/");
    cr_expect_eq(cf_refs_check(refs, "dev", "/", "W", "${locked.K}", 11, &err), CF_OK, "%s",
                 err.msg);
    cr_expect_eq(seen.calls, 1);
    cr_expect_eq(cf_refs_check(refs, "dev", "/", "W", "${HOST}", 7, &err), CF_OK, "%s", err.msg);
    cr_expect_eq(seen.calls, 1);
    cf_refs_free(refs);
}
