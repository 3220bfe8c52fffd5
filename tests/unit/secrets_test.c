/* Unit tests of core/secrets over a real SQLite store and keyring (tests/unit/core_fixture.h):
 * values are sealed at rest and read back exactly, an update makes a version that history lists
 * and rollback restores, a batch is all-or-nothing, references expand (and a dangling one is
 * refused when strict), bad keys and duplicates are refused with the field named, and a viewer
 * reads but does not write. */
#include "core_fixture.h"

#include "core/identities.h"
#include "core/listcache.h"
#include "core/projects.h"
#include "core/secrets.h"
#include "util/cache.h"
#include "util/banned.h"

static struct cf_project_view project;
static struct cf_scope scope;

static void setup(void)
{
    fx_setup();
    cr_assert_eq(cf_projects_create(&fx_core, &fx_admin, "app", NULL, NULL, &project, &err), CF_OK,
                 "%s", err.msg);
    cr_assert_eq(
        cf_scope_resolve(&fx_core, &fx_admin, CF_ACTION_READ, "app", "dev", "/", &scope, &err),
        CF_OK, "%s", err.msg);
}

static void teardown(void)
{
    cf_scope_release(&scope);
    cf_project_view_release(&project);
    fx_teardown();
}

TestSuite(secrets, .init = setup, .fini = teardown);

static struct cf_secret_change upsert(const char *key, const char *value)
{
    return (struct cf_secret_change){.kind = CF_CHANGE_UPSERT,
                                     .key = key,
                                     .has_value = true,
                                     .value = value,
                                     .value_len = strlen(value)};
}

static enum cf_rc apply(const struct cf_principal *who, const struct cf_secret_change *changes,
                        size_t n)
{
    struct cf_plain_list out = {0};
    enum cf_rc rc = cf_secrets_apply(&fx_core, who, &scope, changes, n, &out, NULL, &err);
    cf_plain_list_release(&out);
    return rc;
}

/* The value of key as who reads it (expanded when expand), or NULL with err set. The caller
 * frees it. */
static char *read_value(const struct cf_principal *who, const char *key, bool expand)
{
    struct cf_read_opts opts = {.expand = expand};
    struct cf_plain p = {0};
    if (cf_secrets_get(&fx_core, who, &scope, key, 0, &opts, &p, &err) != CF_OK)
        return NULL;
    char *text = strndup((const char *)p.value.data, p.value.len);
    cf_plain_release(&p);
    return text;
}

Test(secrets, a_value_is_sealed_at_rest_and_read_back_exactly)
{
    const char *value = "canary-6e1d0c77-plaintext";
    struct cf_secret_change c = upsert("DB_PASSWORD", value);
    cr_assert_eq(apply(&fx_admin, &c, 1), CF_OK, "%s", err.msg);
    char *got = read_value(&fx_admin, "DB_PASSWORD", false);
    cr_assert_not_null(got, "%s", err.msg);
    cr_expect_str_eq(got, value);
    free(got);
    cr_expect(!fx_on_disk(value), "the plaintext value is in the data directory");
    cr_expect(fx_on_disk("DB_PASSWORD"), "the key is stored (it is not secret)");

    got = read_value(&fx_admin, "NOT_THERE", false);
    cr_expect_null(got);
    cr_expect_eq(err.rc, CF_ENOTFOUND);
    cr_expect(strstr(err.msg, "NOT_THERE") != NULL, "%s", err.msg);
}

Test(secrets, versions_history_and_rollback)
{
    struct cf_secret_change c = upsert("API_KEY", "one");
    cr_assert_eq(apply(&fx_admin, &c, 1), CF_OK, "%s", err.msg);
    c = upsert("API_KEY", "two");
    cr_assert_eq(apply(&fx_admin, &c, 1), CF_OK, "%s", err.msg);

    struct cf_plain current = {0};
    struct cf_read_opts opts = {0};
    cr_assert_eq(cf_secrets_get(&fx_core, &fx_admin, &scope, "API_KEY", 0, &opts, &current, &err),
                 CF_OK);
    cr_expect_eq(current.meta.version, 2);
    struct cf_plain v1 = {0};
    cr_assert_eq(cf_secrets_get(&fx_core, &fx_admin, &scope, "API_KEY", 1, &opts, &v1, &err), CF_OK,
                 "%s", err.msg);
    cr_expect_eq(v1.value.len, 3);
    cr_expect(memcmp(v1.value.data, "one", 3) == 0);
    cf_plain_release(&v1);

    /* history and rollback find the secret by id and say where it lives */
    struct cf_plain_list history = {0};
    struct cf_scope where = {0};
    cr_assert_eq(cf_secrets_history(&fx_core, &fx_admin, current.meta.id, &where, &history, &err),
                 CF_OK, "%s", err.msg);
    cr_expect_eq(history.n, 2);
    cr_expect_str_eq(where.env.slug, "dev");
    cf_plain_list_release(&history);
    cf_scope_release(&where);

    struct cf_plain rolled = {0};
    cr_assert_eq(
        cf_secrets_rollback(&fx_core, &fx_admin, current.meta.id, 1, &where, &rolled, &err), CF_OK,
        "%s", err.msg);
    cr_expect_eq(rolled.meta.version, 3, "a rollback is a new version");
    cf_plain_release(&rolled);
    cf_scope_release(&where);
    char *got = read_value(&fx_admin, "API_KEY", false);
    cr_expect_str_eq(got, "one");
    free(got);
    cr_expect_eq(
        cf_secrets_rollback(&fx_core, &fx_admin, current.meta.id, 99, &where, &rolled, &err),
        CF_ENOTFOUND);
    cf_scope_release(&where);
    cf_plain_release(&current);
}

Test(secrets, bad_input_is_refused_and_a_batch_is_all_or_nothing)
{
    struct cf_secret_change bad = upsert("NOT A KEY", "v");
    cr_expect_eq(apply(&fx_admin, &bad, 1), CF_EVALIDATION);
    cr_expect_neq(err.field[0], '\0', "the field is named");

    struct cf_secret_change create = upsert("ONCE", "v");
    create.kind = CF_CHANGE_CREATE;
    cr_assert_eq(apply(&fx_admin, &create, 1), CF_OK, "%s", err.msg);
    cr_expect_eq(apply(&fx_admin, &create, 1), CF_EEXIST);

    struct cf_secret_change update = upsert("NEVER_CREATED", "v");
    update.kind = CF_CHANGE_UPDATE;
    cr_expect_eq(apply(&fx_admin, &update, 1), CF_ENOTFOUND);

    /* the second change fails: the first is not applied either */
    struct cf_secret_change batch[2] = {upsert("FIRST", "1"), upsert("SECOND", "2")};
    batch[1].kind = CF_CHANGE_CREATE;
    batch[1].key = "ONCE";
    cr_expect_neq(apply(&fx_admin, batch, 2), CF_OK);
    char *got = read_value(&fx_admin, "FIRST", false);
    cr_expect_null(got, "a refused batch wrote FIRST");
    free(got);

    char big[CF_VALUE_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct cf_secret_change huge = upsert("HUGE", big);
    cr_expect_neq(apply(&fx_admin, &huge, 1), CF_OK, "a value over CF_VALUE_MAX");

    struct cf_secret_change del = {.kind = CF_CHANGE_DELETE, .key = "ONCE"};
    cr_assert_eq(apply(&fx_admin, &del, 1), CF_OK, "%s", err.msg);
    cr_expect_eq(apply(&fx_admin, &del, 1), CF_ENOTFOUND);
}

Test(secrets, references_expand_and_dangling_ones_are_refused)
{
    struct cf_secret_change batch[2] = {upsert("HOST", "db.internal"),
                                        upsert("URL", "postgres://${HOST}:5432")};
    cr_assert_eq(apply(&fx_admin, batch, 2), CF_OK, "%s", err.msg);
    char *got = read_value(&fx_admin, "URL", true);
    cr_assert_not_null(got, "%s", err.msg);
    cr_expect_str_eq(got, "postgres://db.internal:5432");
    free(got);
    got = read_value(&fx_admin, "URL", false);
    cr_expect_str_eq(got, "postgres://${HOST}:5432");
    free(got);

    struct cf_secret_change dangling = upsert("BROKEN", "${NO_SUCH_KEY}");
    cr_assert_eq(apply(&fx_admin, &dangling, 1), CF_OK, "%s", err.msg);
    got = read_value(&fx_admin, "BROKEN", true);
    cr_expect_null(got, "a dangling reference expanded");
    cr_expect_neq(err.rc, CF_OK);
    cr_expect(strstr(err.msg, "NO_SUCH_KEY") != NULL, "%s", err.msg);
    free(got);
}

Test(secrets, a_viewer_reads_but_does_not_write)
{
    struct cf_secret_change c = upsert("TOKEN", "t0ken-value");
    cr_assert_eq(apply(&fx_admin, &c, 1), CF_OK, "%s", err.msg);
    struct cf_identity id = {0};
    cr_assert_eq(cf_identity_create(&fx_core, &fx_admin, "reader", &id, &err), CF_OK);
    struct cf_principal reader = {.kind = CF_PRINCIPAL_IDENTITY};
    snprintf(reader.id, sizeof(reader.id), "%s", id.id);

    char *got = read_value(&reader, "TOKEN", false);
    cr_expect_null(got, "read without a membership");
    cr_expect_eq(err.rc, CF_EFORBIDDEN);
    cr_expect(strstr(err.msg, "t0ken-value") == NULL, "the value is in the refusal");

    struct cf_membership m = {0};
    cr_assert_eq(cf_membership_set(&fx_core, &fx_admin, "app", id.id, "viewer", NULL, 0, &m, &err),
                 CF_OK, "%s", err.msg);
    cf_membership_release(&m);
    got = read_value(&reader, "TOKEN", false);
    cr_expect_str_eq(got, "t0ken-value");
    free(got);
    c = upsert("TOKEN", "overwritten");
    cr_expect_eq(apply(&reader, &c, 1), CF_EFORBIDDEN);
    got = read_value(&fx_admin, "TOKEN", false);
    cr_expect_str_eq(got, "t0ken-value");
    free(got);
}

/* ---- the list cache (core/listcache.h) ---- */

/* Collects what cf_listcache_get hands over, each call's names followed by '|'. */
static void collect_names(void *ctx, const char *names, size_t len)
{
    struct cf_buf *seen = ctx;
    cr_assert_gt(len, 0);
    cr_assert_eq(cf_buf_append(seen, names, len), CF_OK);
    cr_assert_eq(cf_buf_append(seen, "|", 1), CF_OK);
}

/* Keys differ in every part that shapes a body: folder, environment slug, path, hidden values, tag
 * filter; an empty filter is no filter. An oversized key is refused. */
Test(secrets, list_cache_keys_name_everything_that_shapes_the_body)
{
    char base[CF_LISTCACHE_KEY_MAX], other[CF_LISTCACHE_KEY_MAX];
    struct cf_scope s = scope;
    cr_assert(cf_listcache_key(base, sizeof(base), &scope, false, NULL));
    cr_assert(cf_listcache_key(other, sizeof(other), &scope, false, ""));
    cr_assert_str_eq(base, other);
    cr_assert(cf_listcache_key(other, sizeof(other), &scope, true, NULL));
    cr_assert_str_neq(base, other);
    cr_assert(cf_listcache_key(other, sizeof(other), &scope, false, "a,b"));
    cr_assert_str_neq(base, other);
    snprintf(s.folder.id, sizeof(s.folder.id), "another-folder");
    cr_assert(cf_listcache_key(other, sizeof(other), &s, false, NULL));
    cr_assert_str_neq(base, other);
    s = scope;
    snprintf(s.env.slug, sizeof(s.env.slug), "renamed");
    cr_assert(cf_listcache_key(other, sizeof(other), &s, false, NULL));
    cr_assert_str_neq(base, other);
    s = scope;
    snprintf(s.folder.path, sizeof(s.folder.path), "/moved");
    cr_assert(cf_listcache_key(other, sizeof(other), &s, false, NULL));
    cr_assert_str_neq(base, other);
    cr_assert_not(cf_listcache_key(other, 16, &scope, false, NULL));
    /* one secret's body is keyed apart from a list filtered by a tag of the same name */
    cr_assert(cf_listcache_key(base, sizeof(base), &scope, false, "K"));
    cr_assert(cf_listcache_one_key(other, sizeof(other), &scope, false, "K"));
    cr_assert_str_neq(base, other);
    cr_assert(cf_listcache_one_key(base, sizeof(base), &scope, false, "K2"));
    cr_assert_str_neq(base, other);
}

/* A body stored in a read scope is served in later scopes with its names, until a change to the
 * folder moves the content version; nothing without a cache or outside a scope. */
Test(secrets, list_cache_serves_a_body_until_the_folder_changes)
{
    static const char body[] = "{\"secrets\":[\"canary-cached\"]}";
    static const char names[] = "A,B";
    struct cf_cache_config config = {.max_entries = 8, .max_bytes = 1 << 20, .wipe = true};
    struct cf_listcache_hit got;
    struct cf_buf seen;
    char key[CF_LISTCACHE_KEY_MAX];

    cr_assert(cf_listcache_key(key, sizeof(key), &scope, false, NULL));
    cf_store_read_begin(fx_store);
    cf_listcache_put(&fx_core, key, names, strlen(names), body, strlen(body)); /* no cache */
    cf_store_read_end(fx_store);
    fx_core.lists = cf_cache_new(&config);
    cr_assert_not_null(fx_core.lists);
    cf_buf_init(&seen, 0);
    cf_listcache_put(&fx_core, key, names, strlen(names), body, strlen(body)); /* no scope */
    cf_store_read_begin(fx_store);
    cr_assert_not(cf_listcache_get(&fx_core, key, &got, collect_names, &seen));
    cf_listcache_put(&fx_core, key, names, strlen(names), body, strlen(body));
    cf_store_read_end(fx_store);

    cf_store_read_begin(fx_store);
    cr_assert(cf_listcache_get(&fx_core, key, &got, collect_names, &seen));
    cf_store_read_end(fx_store);
    cr_assert_eq(got.len, strlen(body));
    cr_assert_arr_eq(got.body, body, got.len);
    cr_assert_str_eq(seen.data, "A,B|"); /* all the names, in one call */

    /* The lent body outlives the entry: a change retires it while it is still being sent. */
    struct cf_listcache_hit held = got;
    struct cf_secret_change change = upsert("A", "changed");
    cr_assert_eq(apply(&fx_admin, &change, 1), CF_OK, "%s", err.msg);
    cf_store_read_begin(fx_store);
    cr_assert_not(cf_listcache_get(&fx_core, key, &got, collect_names, &seen));
    cf_store_read_end(fx_store);
    cr_assert_eq(got.len, 0);
    cr_assert_null(got.lease);
    cr_assert_arr_eq(held.body, body, held.len);
    cf_cache_lease_release(held.lease);

    cf_buf_release(&seen);
    cf_cache_free(fx_core.lists);
    fx_core.lists = NULL;
}
