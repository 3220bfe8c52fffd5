/* Unit tests of the store (store.h) over the SQLite backend: each operation, the error codes and
 * messages, cascades, all-or-nothing batches, migrations, persistence, and several threads and
 * processes at once (threads racing for the last uses of a credential among them). Each test has
 * its own temporary directory. Sealed values are arbitrary bytes here: the store never opens them.
 * Some checks read the database file directly with SQLite, to see what the interface hides. */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sqlite3.h>

#include "test_dir.h"

#include "store/leaks.h"
#include "store/sqlite.h"
#include "store/sqlrun.h"
#include "store/store.h"
#include "store/syncs.h"
#include "util/id.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

static char tmp_dir[64];
static char db_path[256];
static struct cf_store *st;
static struct cf_err err;

static const uint8_t wrapped_key[] = {0x00, 0x01, 0xfe, 0xff, 0x00, 0x42, 0x13, 0x37};

static struct cf_store *open_store(const char *dsn)
{
    struct cf_store_config config = {.dsn = dsn};
    struct cf_store *out = NULL;
    enum cf_rc rc = cf_store_open(&config, &out, &err);
    cr_assert_eq(rc, CF_OK, "cf_store_open('%s'): %s", dsn, err.msg);
    cr_assert_not_null(out);
    return out;
}

static void setup(void)
{
    cf_log_set_level("warn");
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/coffer-store-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp_dir));
    snprintf(db_path, sizeof(db_path), "%s/coffer.db", tmp_dir);
    st = open_store(db_path);
}

static void teardown(void)
{
    if (st)
        cf_store_close(st);
    st = NULL;
    test_dir_remove(tmp_dir);
}

TestSuite(store, .init = setup, .fini = teardown);

/* ---- helpers ---- */

/* Runs a one-number query on the database file directly. */
static long long raw_count(const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    long long n = -1;
    cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    if (sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

static void raw_exec(const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
}

static void fill_env(struct cf_env *env, const char *project_id, const char *slug)
{
    memset(env, 0, sizeof(*env));
    cf_uuid_new(env->id);
    snprintf(env->project_id, sizeof(env->project_id), "%s", project_id);
    snprintf(env->slug, sizeof(env->slug), "%s", slug);
    snprintf(env->name, sizeof(env->name), "Env %s", slug);
}

/* Creates project slug with environments dev, staging, prod; fills p and envs (may be NULL). */
static void make_project(const char *slug, struct cf_project *p, struct cf_env envs[3])
{
    struct cf_env local[3];
    struct cf_env *e = envs ? envs : local;
    memset(p, 0, sizeof(*p));
    cf_uuid_new(p->id);
    snprintf(p->slug, sizeof(p->slug), "%s", slug);
    snprintf(p->name, sizeof(p->name), "Project %s", slug);
    snprintf(p->description, sizeof(p->description), "about %s", slug);
    p->wrapped_key = (uint8_t *)wrapped_key;
    p->wrapped_key_len = sizeof(wrapped_key);
    fill_env(&e[0], p->id, "dev");
    fill_env(&e[1], p->id, "staging");
    fill_env(&e[2], p->id, "prod");
    cr_assert_eq(cf_store_project_create(st, p, e, 3, &err), CF_OK, "%s", err.msg);
    p->wrapped_key = NULL; /* borrowed, not ours to release */
    p->wrapped_key_len = 0;
}

static void get_folder(const char *env_id, const char *path, struct cf_folder *out)
{
    cr_assert_eq(cf_store_folder_get(st, env_id, path, out, &err), CF_OK, "%s: %s", path, err.msg);
}

/* Creates folder name under parent; fills out. */
static void make_folder(const struct cf_folder *parent, const char *name, struct cf_folder *out)
{
    struct cf_folder f = {0};
    cf_uuid_new(f.id);
    snprintf(f.env_id, sizeof(f.env_id), "%s", parent->env_id);
    snprintf(f.parent_id, sizeof(f.parent_id), "%s", parent->id);
    snprintf(f.name, sizeof(f.name), "%s", name);
    cr_assert_eq(cf_store_folder_create(st, &f, &err), CF_OK, "%s: %s", name, err.msg);
    char path[2 * CF_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", strcmp(parent->path, "/") ? parent->path : "", name);
    get_folder(parent->env_id, path, out);
    cr_assert_str_eq(out->id, f.id);
}

static struct cf_secret_write w_create(const char *folder_id, const char *key, const void *value,
                                       size_t len)
{
    struct cf_secret_write w = {.op = CF_SECRET_OP_CREATE};
    cf_uuid_new(w.row.id);
    snprintf(w.row.folder_id, sizeof(w.row.folder_id), "%s", folder_id);
    snprintf(w.row.key, sizeof(w.row.key), "%s", key);
    w.row.version = 1;
    w.row.sealed = (uint8_t *)value;
    w.row.sealed_len = len;
    w.row.comment = (char *)"a comment";
    w.row.tags = (char *)"[\"t1\"]";
    return w;
}

static struct cf_secret_write w_update(const char *secret_id, int64_t expected, const char *key,
                                       const void *value, size_t len)
{
    struct cf_secret_write w = {.op = CF_SECRET_OP_UPDATE, .expected_version = expected};
    snprintf(w.row.id, sizeof(w.row.id), "%s", secret_id);
    snprintf(w.row.key, sizeof(w.row.key), "%s", key);
    w.row.version = expected + 1;
    w.row.sealed = (uint8_t *)value;
    w.row.sealed_len = len;
    return w;
}

static struct cf_secret_write w_delete(const char *secret_id, int64_t expected)
{
    struct cf_secret_write w = {.op = CF_SECRET_OP_DELETE, .expected_version = expected};
    snprintf(w.row.id, sizeof(w.row.id), "%s", secret_id);
    return w;
}

static enum cf_rc write1(struct cf_secret_write w)
{
    return cf_store_secret_write(st, &w, 1, NULL, &err);
}

static void create_secret(const char *folder_id, const char *key, const char *value,
                          char id_out[CF_UUID_LEN])
{
    struct cf_secret_write w = w_create(folder_id, key, value, strlen(value));
    cr_assert_eq(write1(w), CF_OK, "create %s: %s", key, err.msg);
    if (id_out)
        snprintf(id_out, CF_UUID_LEN, "%s", w.row.id);
}

/* A project "p" and its dev root folder. */
struct world {
    struct cf_project project;
    struct cf_env envs[3];
    struct cf_folder root;
};

static void make_world(struct world *w)
{
    make_project("p", &w->project, w->envs);
    get_folder(w->envs[0].id, "/", &w->root);
}

/* ---- opening and migrations ---- */

Test(store, dsn_forms)
{
    char dsn[256];
    struct cf_store *other;
    /* PostgreSQL that is not there: unreachable (503), at once, without the password in the message
     */
    struct cf_store_config config = {
        .dsn = "postgresql://coffer:hunter2-password@/coffer?host=/nonexistent-coffer-dir"};
    cr_assert_eq(cf_store_open(&config, &other, &err), CF_EUNAVAIL, "%s", err.msg);
    cr_assert(strstr(err.msg, "unreachable"), "%s", err.msg);
    cr_assert(!strstr(err.msg, "hunter2"), "%s", err.msg);
    config.dsn = "";
    cr_assert_eq(cf_store_open(&config, &other, &err), CF_EINVAL);
    config.dsn = "sqlite:";
    cr_assert_eq(cf_store_open(&config, &other, &err), CF_EINVAL);
    config.dsn = ":memory:";
    cr_assert_eq(cf_store_open(&config, &other, &err), CF_EINVAL);

    snprintf(dsn, sizeof(dsn), "sqlite:%s/other.db", tmp_dir);
    other = open_store(dsn);
    cr_assert_str_eq(other->backend, "sqlite");
    cr_assert_eq(cf_store_ping(other, &err), CF_OK);
    cf_store_close(other);
    snprintf(dsn, sizeof(dsn), "sqlite://%s/other.db", tmp_dir);
    other = open_store(dsn);
    cf_store_close(other);
    snprintf(dsn, sizeof(dsn), "%s/other.db", tmp_dir);
    cr_assert_eq(access(dsn, F_OK), 0);
}

Test(store, dsn_shown_hides_the_password)
{
    char shown[256];
    cf_store_dsn_shown("postgres://coffer:s3cret@db.example:5432/coffer?sslmode=require", shown,
                       sizeof(shown));
    cr_assert_str_eq(shown, "postgres://coffer@db.example:5432/coffer?sslmode=require");
    cf_store_dsn_shown("postgresql:///coffer?host=/run/pg&password=s3cret&user=u", shown,
                       sizeof(shown));
    cr_assert_str_eq(shown, "postgresql:///coffer?host=/run/pg&password=***&user=u");
    cf_store_dsn_shown("postgres://u@h/db?password=s3cret", shown, sizeof(shown));
    cr_assert_str_eq(shown, "postgres://u@h/db?password=***");
    cf_store_dsn_shown("/var/lib/coffer/coffer.db", shown, sizeof(shown));
    cr_assert_str_eq(shown, "/var/lib/coffer/coffer.db");
    cf_store_dsn_shown("postgres://u:pw@h/db", shown, 8); /* truncated, never the password */
    cr_assert(!strstr(shown, "pw"), "%s", shown);
}

Test(store, not_a_database)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/junk.db", tmp_dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 256; i++)
        fputs("this is not a database file. ", f);
    fclose(f);
    struct cf_store_config config = {.dsn = path};
    struct cf_store *other = NULL;
    cr_assert_eq(cf_store_open(&config, &other, &err), CF_ESTORE);
    cr_assert_null(other);
    cr_assert(strstr(err.msg, "not a database"), "%s", err.msg);
}

Test(store, migrations_applied_once_and_settings)
{
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM schema_migrations"),
                 (long long)cf_store_migrations_n);
    cf_store_close(st);
    st = open_store(db_path);
    cf_store_close(st);
    st = open_store(db_path);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM schema_migrations"),
                 (long long)cf_store_migrations_n);
    cr_assert_eq(raw_count("SELECT MAX(version) FROM schema_migrations"),
                 (long long)cf_store_migrations[cf_store_migrations_n - 1].version);
    for (size_t i = 0; i < cf_store_migrations_n; i++)
        cr_assert_eq(cf_store_migrations[i].version, (int)i + 1);
    /* WAL is a property of the file. */
    cr_assert_eq(raw_count("SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
}

Test(store, newer_schema_refused)
{
    cf_store_close(st);
    st = NULL;
    raw_exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)");
    struct cf_store_config config = {.dsn = db_path};
    struct cf_store *other = NULL;
    cr_assert_eq(cf_store_open(&config, &other, &err), CF_ESTORE);
    cr_assert_null(other);
    cr_assert(strstr(err.msg, "schema version 999"), "%s", err.msg);
    cr_assert(strstr(err.msg, "newer coffer"), "%s", err.msg);
}

Test(store, processes_opening_a_new_database_at_once)
{
    enum { N = 4 };
    char path[256];
    pid_t pids[N];
    snprintf(path, sizeof(path), "%s/race.db", tmp_dir);
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        cr_assert_neq(pids[i], -1);
        if (pids[i] == 0) {
            struct cf_store_config config = {.dsn = path};
            struct cf_store *child = NULL;
            struct cf_err child_err;
            enum cf_rc rc = cf_store_open(&config, &child, &child_err);
            if (rc == CF_OK)
                rc = cf_store_meta_put(child, "k", (const uint8_t *)"v", 1, &child_err);
            if (child)
                cf_store_close(child);
            _exit(rc == CF_OK ? 0 : 10 + (int)rc);
        }
    }
    for (int i = 0; i < N; i++) {
        int status = 0;
        cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d status %d", i, status);
    }
    snprintf(db_path, sizeof(db_path), "%s", path);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM schema_migrations"),
                 (long long)cf_store_migrations_n);
}

/* ---- meta ---- */

Test(store, meta)
{
    static const uint8_t v1[] = {0, 1, 2, 0, 255};
    static const uint8_t v2[] = {9};
    uint8_t *value = NULL;
    size_t len = 0;

    cr_assert_eq(cf_store_meta_get(st, "admin", &value, &len, &err), CF_ENOTFOUND);
    cr_assert_null(value);
    cr_assert_eq(cf_store_meta_insert(st, "admin", v1, sizeof(v1), &err), CF_OK);
    cr_assert_eq(cf_store_meta_insert(st, "admin", v2, sizeof(v2), &err), CF_EEXIST);
    cr_assert(strstr(err.msg, "'admin'"), "%s", err.msg);
    cr_assert_eq(cf_store_meta_get(st, "admin", &value, &len, &err), CF_OK);
    cr_assert_eq(len, sizeof(v1));
    cr_assert_arr_eq(value, v1, sizeof(v1));
    free(value);
    cr_assert_eq(cf_store_meta_put(st, "admin", v2, sizeof(v2), &err), CF_OK);
    cr_assert_eq(cf_store_meta_get(st, "admin", &value, &len, &err), CF_OK);
    cr_assert_eq(len, 1);
    cr_assert_eq(value[0], 9);
    free(value);
    cr_assert_eq(cf_store_meta_put(st, "empty", NULL, 0, &err), CF_OK);
    cr_assert_eq(cf_store_meta_get(st, "empty", &value, &len, &err), CF_OK);
    cr_assert_not_null(value);
    cr_assert_eq(len, 0);
    free(value);
}

Test(store, rewrap_keys)
{
    struct cf_project a, b, got;
    static const uint8_t ka[] = {1, 2, 3}, kb[] = {4, 5, 6, 7}, check[] = {0xc, 0xc};
    uint8_t *value = NULL;
    size_t len;

    make_project("a", &a, NULL);
    make_project("b", &b, NULL);
    struct cf_key_update bad[] = {{a.id, ka, sizeof(ka)}, {"no-such-project", kb, sizeof(kb)}};
    cr_assert_eq(cf_store_rewrap_keys(st, bad, 2, check, sizeof(check), &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_project_get(st, "a", &got, &err), CF_OK);
    cr_assert_eq(got.wrapped_key_len, sizeof(wrapped_key)); /* rolled back */
    cr_assert_arr_eq(got.wrapped_key, wrapped_key, sizeof(wrapped_key));
    cf_project_release(&got);
    cr_assert_eq(cf_store_meta_get(st, CF_META_ROOT_CHECK, &value, &len, &err), CF_ENOTFOUND);

    struct cf_key_update good[] = {{a.id, ka, sizeof(ka)}, {b.id, kb, sizeof(kb)}};
    cr_assert_eq(cf_store_rewrap_keys(st, good, 2, check, sizeof(check), &err), CF_OK, "%s",
                 err.msg);
    cr_assert_eq(cf_store_project_get(st, b.id, &got, &err), CF_OK);
    cr_assert_eq(got.wrapped_key_len, sizeof(kb));
    cr_assert_arr_eq(got.wrapped_key, kb, sizeof(kb));
    cf_project_release(&got);
    cr_assert_eq(cf_store_meta_get(st, CF_META_ROOT_CHECK, &value, &len, &err), CF_OK);
    cr_assert_eq(len, sizeof(check));
    free(value);
}

/* ---- projects and environments ---- */

Test(store, projects)
{
    struct cf_project p, q, got;
    struct cf_env envs[3];
    struct cf_project_list list;
    char upper[CF_UUID_LEN];

    make_project("alpha", &p, envs);
    make_project("beta", &q, NULL);

    cr_assert_eq(cf_store_project_get(st, p.id, &got, &err), CF_OK);
    cr_assert_str_eq(got.slug, "alpha");
    cr_assert_str_eq(got.name, "Project alpha");
    cr_assert_str_eq(got.description, "about alpha");
    cr_assert_eq(got.wrapped_key_len, sizeof(wrapped_key));
    cr_assert_arr_eq(got.wrapped_key, wrapped_key, sizeof(wrapped_key));
    cr_assert_gt(got.created_at, 0);
    cf_project_release(&got);
    cr_assert_null(got.wrapped_key);

    for (size_t i = 0; i < CF_UUID_LEN; i++)
        upper[i] = (char)(p.id[i] >= 'a' && p.id[i] <= 'f' ? p.id[i] - 32 : p.id[i]);
    cr_assert_eq(cf_store_project_get(st, upper, &got, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(got.id, p.id);
    cf_project_release(&got);
    cr_assert_eq(cf_store_project_get(st, "beta", &got, &err), CF_OK);
    cr_assert_str_eq(got.id, q.id);
    cf_project_release(&got);

    cr_assert_eq(cf_store_project_get(st, "gamma", &got, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, "'gamma'"), "%s", err.msg);

    struct cf_project dup = p;
    cf_uuid_new(dup.id);
    dup.wrapped_key = (uint8_t *)wrapped_key;
    dup.wrapped_key_len = sizeof(wrapped_key);
    cr_assert_eq(cf_store_project_create(st, &dup, NULL, 0, &err), CF_EEXIST);
    cr_assert_str_eq(err.msg, "project 'alpha' already exists");

    cr_assert_eq(cf_store_project_list(st, &list, &err), CF_OK);
    cr_assert_eq(list.n, 2);
    cr_assert(strcmp(list.items[0].slug, "alpha") == 0 || strcmp(list.items[1].slug, "alpha") == 0);
    cr_assert_not_null(list.items[0].wrapped_key);
    cf_project_list_release(&list);
    cr_assert_eq(list.n, 0);

    /* Every environment came with its root folder. */
    for (int i = 0; i < 3; i++) {
        struct cf_folder root;
        get_folder(envs[i].id, "/", &root);
        cr_assert_str_eq(root.parent_id, "");
        cr_assert_str_eq(root.name, "");
    }
}

Test(store, project_create_is_all_or_nothing)
{
    struct cf_project p = {0};
    struct cf_env envs[2];
    cf_uuid_new(p.id);
    snprintf(p.slug, sizeof(p.slug), "p");
    p.wrapped_key = (uint8_t *)wrapped_key;
    p.wrapped_key_len = sizeof(wrapped_key);
    fill_env(&envs[0], p.id, "dev");
    fill_env(&envs[1], p.id, "dev");
    cr_assert_eq(cf_store_project_create(st, &p, envs, 2, &err), CF_EEXIST);
    cr_assert_str_eq(err.msg, "environment 'dev' already exists");
    struct cf_project got;
    cr_assert_eq(cf_store_project_get(st, "p", &got, &err), CF_ENOTFOUND);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM folders"), 0);
}

static void assert_env_order(const char *project_id, const char *const *slugs, size_t n)
{
    struct cf_env_list list;
    cr_assert_eq(cf_store_env_list(st, project_id, &list, &err), CF_OK);
    cr_assert_eq(list.n, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(list.items[i].slug, slugs[i], "position %zu", i + 1);
        cr_assert_eq(list.items[i].position, (int)i + 1);
    }
    cf_env_list_release(&list);
}

Test(store, environments)
{
    struct cf_project p, q;
    struct cf_env envs[3], qenvs[3], e, got;

    make_project("p", &p, envs);
    make_project("q", &q, qenvs);
    assert_env_order(p.id, (const char *const[]){"dev", "staging", "prod"}, 3);

    fill_env(&e, p.id, "qa"); /* appended */
    cr_assert_eq(cf_store_env_create(st, &e, &err), CF_OK, "%s", err.msg);
    fill_env(&e, p.id, "local");
    e.position = 1; /* inserted first */
    cr_assert_eq(cf_store_env_create(st, &e, &err), CF_OK, "%s", err.msg);
    assert_env_order(p.id, (const char *const[]){"local", "dev", "staging", "prod", "qa"}, 5);

    fill_env(&e, p.id, "prod");
    cr_assert_eq(cf_store_env_create(st, &e, &err), CF_EEXIST);
    cr_assert_str_eq(err.msg, "environment 'prod' already exists");
    fill_env(&e, "00000000-0000-4000-8000-000000000000", "x");
    cr_assert_eq(cf_store_env_create(st, &e, &err), CF_ENOTFOUND);

    /* By slug and by id, only within the project. */
    cr_assert_eq(cf_store_env_get(st, p.id, "prod", &got, &err), CF_OK);
    cr_assert_str_eq(got.id, envs[2].id);
    cr_assert_str_eq(got.name, "Env prod");
    cr_assert_eq(cf_store_env_get(st, p.id, envs[1].id, &got, &err), CF_OK);
    cr_assert_str_eq(got.slug, "staging");
    cr_assert_eq(cf_store_env_get(st, q.id, envs[1].id, &got, &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_env_get(st, p.id, "nope", &got, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, "'nope'"), "%s", err.msg);

    /* Moves keep positions dense, both ways. */
    e = envs[2];
    e.position = 1;
    cr_assert_eq(cf_store_env_update(st, &e, &err), CF_OK, "%s", err.msg);
    assert_env_order(p.id, (const char *const[]){"prod", "local", "dev", "staging", "qa"}, 5);
    e.position = 99; /* clamped to the end */
    snprintf(e.slug, sizeof(e.slug), "production");
    snprintf(e.name, sizeof(e.name), "Production");
    cr_assert_eq(cf_store_env_update(st, &e, &err), CF_OK, "%s", err.msg);
    assert_env_order(p.id, (const char *const[]){"local", "dev", "staging", "qa", "production"}, 5);
    e = envs[0];
    e.position = 4;
    cr_assert_eq(cf_store_env_update(st, &e, &err), CF_OK, "%s", err.msg);
    assert_env_order(p.id, (const char *const[]){"local", "staging", "qa", "dev", "production"}, 5);
    cr_assert_eq(cf_store_env_get(st, p.id, "production", &got, &err), CF_OK);
    cr_assert_str_eq(got.name, "Production");

    e = envs[1];
    snprintf(e.slug, sizeof(e.slug), "dev");
    cr_assert_eq(cf_store_env_update(st, &e, &err), CF_EEXIST);
    cr_assert_str_eq(err.msg, "environment 'dev' already exists");
    fill_env(&e, p.id, "ghost");
    cr_assert_eq(cf_store_env_update(st, &e, &err), CF_ENOTFOUND);

    /* Delete renumbers. */
    cr_assert_eq(cf_store_env_delete(st, envs[1].id, &err), CF_OK, "%s", err.msg);
    assert_env_order(p.id, (const char *const[]){"local", "qa", "dev", "production"}, 4);
    cr_assert_eq(cf_store_env_delete(st, envs[1].id, &err), CF_ENOTFOUND);
    assert_env_order(q.id, (const char *const[]){"dev", "staging", "prod"}, 3);
}

/* ---- folders ---- */

static void assert_folder_paths(const char *env_id, const char *path, bool recursive,
                                const char *const *paths, size_t n)
{
    struct cf_folder_list list;
    cr_assert_eq(cf_store_folder_list(st, env_id, path, recursive, &list, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_eq(list.n, n, "folders below %s: %zu, expected %zu", path, list.n, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(list.items[i].path, paths[i]);
    cf_folder_list_release(&list);
}

Test(store, folders)
{
    struct world w;
    struct cf_folder a, ab, abc, a_dash, a_pct, a_under, got;

    make_world(&w);
    make_folder(&w.root, "a", &a);
    make_folder(&a, "b", &ab);
    make_folder(&ab, "c", &abc);
    make_folder(&w.root, "a-b", &a_dash);
    make_folder(&w.root, "a%", &a_pct);
    make_folder(&w.root, "a_", &a_under);
    cr_assert_str_eq(abc.path, "/a/b/c");
    cr_assert_str_eq(abc.parent_id, ab.id);
    cr_assert_str_eq(abc.name, "c");
    cr_assert_str_eq(abc.env_id, w.envs[0].id);

    assert_folder_paths(w.envs[0].id, "/", false, (const char *const[]){"/a", "/a%", "/a-b", "/a_"},
                        4);
    assert_folder_paths(w.envs[0].id, "/", true,
                        (const char *const[]){"/a", "/a%", "/a-b", "/a/b", "/a/b/c", "/a_"}, 6);
    assert_folder_paths(w.envs[0].id, "/a", true, (const char *const[]){"/a/b", "/a/b/c"}, 2);
    assert_folder_paths(w.envs[0].id, "/a%", true, NULL, 0); /* no LIKE wildcard */
    assert_folder_paths(w.envs[0].id, "/a_", true, NULL, 0);
    assert_folder_paths(w.envs[0].id, "/a/b/c", false, NULL, 0);
    assert_folder_paths(w.envs[1].id, "/", true, NULL, 0);

    struct cf_folder_list list;
    cr_assert_eq(cf_store_folder_list(st, w.envs[0].id, "/zz", false, &list, &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_folder_get(st, w.envs[0].id, "/zz", &got, &err), CF_ENOTFOUND);
    cr_assert_str_eq(err.msg, "folder '/zz' not found");
    cr_assert_eq(cf_store_folder_get(st, w.envs[1].id, "/a", &got, &err), CF_ENOTFOUND);

    /* Duplicates, a wrong path, missing or absent parents. */
    struct cf_folder f = {0};
    cf_uuid_new(f.id);
    snprintf(f.parent_id, sizeof(f.parent_id), "%s", a.id);
    snprintf(f.name, sizeof(f.name), "b");
    cr_assert_eq(cf_store_folder_create(st, &f, &err), CF_EEXIST);
    cr_assert_str_eq(err.msg, "folder '/a/b' already exists");
    snprintf(f.name, sizeof(f.name), "x");
    snprintf(f.path, sizeof(f.path), "/elsewhere/x");
    cr_assert_eq(cf_store_folder_create(st, &f, &err), CF_EINVAL);
    snprintf(f.path, sizeof(f.path), "/a/x");
    snprintf(f.env_id, sizeof(f.env_id), "%s", w.envs[1].id);
    cr_assert_eq(cf_store_folder_create(st, &f, &err), CF_EINVAL);
    f.env_id[0] = '\0';
    cf_uuid_new(f.parent_id);
    cr_assert_eq(cf_store_folder_create(st, &f, &err), CF_ENOTFOUND);
    f.parent_id[0] = '\0';
    cr_assert_eq(cf_store_folder_create(st, &f, &err), CF_EINVAL);

    /* Delete takes the subtree with its secrets and imports, and nothing beside it. */
    char kept_id[CF_UUID_LEN];
    create_secret(abc.id, "DEEP", "v", NULL);
    create_secret(a_dash.id, "KEPT", "v", kept_id);
    struct cf_import im = {0};
    cf_uuid_new(im.id);
    snprintf(im.folder_id, sizeof(im.folder_id), "%s", ab.id);
    snprintf(im.import_env_id, sizeof(im.import_env_id), "%s", w.envs[2].id);
    snprintf(im.import_path, sizeof(im.import_path), "/");
    cr_assert_eq(cf_store_import_create(st, &im, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_folder_delete(st, a.id, &err), CF_OK, "%s", err.msg);
    assert_folder_paths(w.envs[0].id, "/", true, (const char *const[]){"/a%", "/a-b", "/a_"}, 3);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM secrets"), 1);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM secret_versions"), 1);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM secret_imports"), 0);
    struct cf_secret s;
    cr_assert_eq(cf_store_secret_get_by_id(st, kept_id, 0, &s, &err), CF_OK);
    cf_secret_release(&s);
    cr_assert_eq(cf_store_folder_delete(st, a.id, &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_folder_delete(st, w.root.id, &err), CF_EINVAL);
}

/* ---- secrets ---- */

static void assert_keys(const struct cf_secret_list *list, const char *const *keys, size_t n)
{
    cr_assert_eq(list->n, n, "%zu secrets, expected %zu", list->n, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(list->items[i].key, keys[i]);
}

Test(store, secrets_create_read_list)
{
    struct world w;
    struct cf_folder backend;
    static const uint8_t blob[] = {0, 0xff, 0, 0x10, 0x80};
    struct cf_secret s;
    struct cf_secret_list list;

    make_world(&w);
    make_folder(&w.root, "backend", &backend);

    struct cf_secret_write batch[3] = {
        w_create(backend.id, "ZED", "z", 1),
        w_create(backend.id, "DB_PASSWORD", blob, sizeof(blob)),
        w_create(w.root.id, "ROOTKEY", "r", 1),
    };
    batch[1].row.expires_at = 1234567;
    batch[1].row.skip_multiline = true;
    batch[1].row.created_at = 1000;
    batch[1].row.updated_at = 1000;
    cr_assert_eq(cf_store_secret_write(st, batch, 3, NULL, &err), CF_OK, "%s", err.msg);

    cr_assert_eq(cf_store_secret_get(st, backend.id, "DB_PASSWORD", 0, &s, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_str_eq(s.id, batch[1].row.id);
    cr_assert_str_eq(s.folder_id, backend.id);
    cr_assert_str_eq(s.project_id, w.project.id);
    cr_assert_str_eq(s.env_id, w.envs[0].id);
    cr_assert_str_eq(s.path, "/backend");
    cr_assert_eq(s.version, 1);
    cr_assert_eq(s.sealed_len, sizeof(blob));
    cr_assert_arr_eq(s.sealed, blob, sizeof(blob));
    cr_assert_str_eq(s.comment, "a comment");
    cr_assert_str_eq(s.tags, "[\"t1\"]");
    cr_assert_eq(s.expires_at, 1234567);
    cr_assert(s.skip_multiline);
    cr_assert_eq(s.created_at, 1000);
    cr_assert_eq(s.updated_at, 1000);

    struct cf_secret copy;
    cr_assert_eq(cf_secret_copy(&copy, &s), CF_OK);
    cf_secret_release(&s);
    cr_assert_arr_eq(copy.sealed, blob, sizeof(blob));
    cr_assert_str_eq(copy.comment, "a comment");
    cr_assert_str_eq(copy.path, "/backend");
    cf_secret_release(&copy);

    /* Comment and tags default to "" and "[]". */
    struct cf_secret_write bare = w_create(backend.id, "BARE", "b", 1);
    bare.row.comment = NULL;
    bare.row.tags = NULL;
    cr_assert_eq(write1(bare), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_secret_get_by_id(st, bare.row.id, 0, &s, &err), CF_OK);
    cr_assert_str_eq(s.comment, "");
    cr_assert_str_eq(s.tags, "[]");
    cr_assert_gt(s.created_at, 0);
    cf_secret_release(&s);

    cr_assert_eq(cf_store_secret_list(st, w.envs[0].id, "/backend", false, &list, &err), CF_OK);
    assert_keys(&list, (const char *const[]){"BARE", "DB_PASSWORD", "ZED"}, 3);
    cr_assert_str_eq(list.items[1].path, "/backend");
    cr_assert_str_eq(list.items[1].project_id, w.project.id);
    cr_assert_arr_eq(list.items[1].sealed, blob, sizeof(blob));
    cf_secret_list_release(&list);

    cr_assert_eq(cf_store_secret_list(st, w.envs[0].id, "/", true, &list, &err), CF_OK);
    assert_keys(&list, (const char *const[]){"ROOTKEY", "BARE", "DB_PASSWORD", "ZED"}, 4);
    cr_assert_str_eq(list.items[0].path, "/");
    cr_assert_str_eq(list.items[3].path, "/backend");
    cf_secret_list_release(&list);

    /* A sibling that sorts between "/backend" and "/backend/" is not below "/backend". */
    struct cf_folder sibling, child;
    make_folder(&w.root, "backend-old", &sibling);
    make_folder(&backend, "api", &child);
    create_secret(sibling.id, "SIBLING", "s", NULL);
    create_secret(child.id, "CHILD", "c", NULL);
    cr_assert_eq(cf_store_secret_list(st, w.envs[0].id, "/backend", true, &list, &err), CF_OK);
    assert_keys(&list, (const char *const[]){"BARE", "DB_PASSWORD", "ZED", "CHILD"}, 4);
    cr_assert_str_eq(list.items[3].path, "/backend/api");
    cf_secret_list_release(&list);

    cr_assert_eq(cf_store_secret_list(st, w.envs[0].id, "/", false, &list, &err), CF_OK);
    assert_keys(&list, (const char *const[]){"ROOTKEY"}, 1);
    cf_secret_list_release(&list);
    cr_assert_eq(cf_store_secret_list(st, w.envs[1].id, "/", true, &list, &err), CF_OK);
    cr_assert_eq(list.n, 0);
    cr_assert_eq(cf_store_secret_list(st, w.envs[0].id, "/nope", false, &list, &err), CF_ENOTFOUND);
    cr_assert_null(list.items);

    /* Duplicates and missing rows, with messages naming them. */
    cr_assert_eq(write1(w_create(backend.id, "DB_PASSWORD", "x", 1)), CF_EEXIST);
    cr_assert_str_eq(err.msg, "secret 'DB_PASSWORD' already exists in folder '/backend'");
    cr_assert_eq(cf_store_secret_get(st, backend.id, "MISSING", 0, &s, &err), CF_ENOTFOUND);
    cr_assert_str_eq(err.msg, "secret 'MISSING' not found in folder '/backend'");
    cr_assert_eq(cf_store_secret_get(st, backend.id, "ZED", 2, &s, &err), CF_ENOTFOUND);
    cr_assert_null(s.sealed);
    char ghost[CF_UUID_LEN];
    cf_uuid_new(ghost);
    cr_assert_eq(cf_store_secret_get_by_id(st, ghost, 0, &s, &err), CF_ENOTFOUND);
    cr_assert_eq(write1(w_create(ghost, "K", "x", 1)), CF_ENOTFOUND); /* no such folder */
    cr_assert_eq(write1(w_create(backend.id, "", "x", 1)), CF_EINVAL);
}

/* What a cf_store_secret_list_each callee saw: copies of every row, and when to refuse. */
struct each_seen {
    struct cf_secret_list rows;
    size_t stop_at; /* refuse the row at this index (SIZE_MAX: none) */
};

static enum cf_rc each_copy(void *ctx, const struct cf_secret *row, struct cf_err *e)
{
    struct each_seen *seen = ctx;
    if (seen->rows.n == seen->stop_at)
        return cf_err_set(e, CF_ECRYPTO, "refused row '%s'", row->key);
    struct cf_secret *grown =
        realloc(seen->rows.items, (seen->rows.n + 1) * sizeof(*seen->rows.items));
    cr_assert_not_null(grown);
    seen->rows.items = grown;
    cr_assert_eq(cf_secret_copy(&seen->rows.items[seen->rows.n], row), CF_OK);
    seen->rows.n++;
    return CF_OK;
}

/* The same rows, in the same order, with the same fields as cf_store_secret_list. */
static void assert_each_matches_list(const char *env_id, const char *path, bool recursive)
{
    struct cf_secret_list list;
    struct each_seen seen = {.stop_at = SIZE_MAX};
    cr_assert_eq(cf_store_secret_list(st, env_id, path, recursive, &list, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_eq(cf_store_secret_list_each(st, env_id, path, recursive, each_copy, &seen, &err),
                 CF_OK, "%s", err.msg);
    cr_assert_eq(seen.rows.n, list.n);
    for (size_t i = 0; i < list.n; i++) {
        const struct cf_secret *a = &list.items[i], *b = &seen.rows.items[i];
        cr_assert_str_eq(b->id, a->id);
        cr_assert_str_eq(b->folder_id, a->folder_id);
        cr_assert_str_eq(b->project_id, a->project_id);
        cr_assert_str_eq(b->env_id, a->env_id);
        cr_assert_str_eq(b->path, a->path);
        cr_assert_str_eq(b->key, a->key);
        cr_assert_eq(b->version, a->version);
        cr_assert_eq(b->sealed_len, a->sealed_len);
        cr_assert_arr_eq(b->sealed, a->sealed, a->sealed_len);
        cr_assert_str_eq(b->comment, a->comment);
        cr_assert_str_eq(b->tags, a->tags);
        cr_assert_str_eq(b->reminder_note, a->reminder_note);
        cr_assert_eq(b->expires_at, a->expires_at);
        cr_assert_eq(b->reminder_repeat_days, a->reminder_repeat_days);
        cr_assert_eq(b->skip_multiline, a->skip_multiline);
        cr_assert_eq(b->created_at, a->created_at);
        cr_assert_eq(b->updated_at, a->updated_at);
    }
    cf_secret_list_release(&list);
    cf_secret_list_release(&seen.rows);
}

Test(store, secret_list_each_hands_rows_one_at_a_time)
{
    struct world w;
    struct cf_folder backend, child;
    static const uint8_t blob[] = {0, 0xff, 0, 0x10, 0x80};
    char key[32];

    make_world(&w);
    make_folder(&w.root, "backend", &backend);
    make_folder(&backend, "api", &child);
    /* More rows than any first allocation, values of every length from 0, NUL bytes included. */
    struct cf_secret_write batch[300];
    uint8_t values[300][310];
    for (size_t i = 0; i < CF_ARRAY_SIZE(batch); i++) {
        snprintf(key, sizeof(key), "KEY_%03zu", i);
        memset(values[i], (int)(i & 0xff), sizeof(values[i]));
        batch[i] = w_create(i % 3 ? backend.id : child.id, key, values[i], i);
        batch[i].row.reminder_note = (char *)(i % 2 ? "rotate" : "");
        batch[i].row.reminder_repeat_days = (int64_t)(i % 2);
        batch[i].row.skip_multiline = i % 5 == 0;
        batch[i].row.expires_at = (int64_t)i * 1000;
    }
    batch[7].row.sealed = (uint8_t *)blob;
    batch[7].row.sealed_len = sizeof(blob);
    batch[8].row.comment = NULL;
    batch[8].row.tags = NULL;
    cr_assert_eq(cf_store_secret_write(st, batch, CF_ARRAY_SIZE(batch), NULL, &err), CF_OK, "%s",
                 err.msg);
    assert_each_matches_list(w.envs[0].id, "/backend", false);
    assert_each_matches_list(w.envs[0].id, "/backend", true);
    assert_each_matches_list(w.envs[0].id, "/", true);
    assert_each_matches_list(w.envs[0].id, "/", false); /* an empty folder: no call */

    /* The callee's refusal stops the listing and reaches the caller with its own words. */
    struct each_seen seen = {.stop_at = 5};
    cr_assert_eq(
        cf_store_secret_list_each(st, w.envs[0].id, "/backend", false, each_copy, &seen, &err),
        CF_ECRYPTO);
    cr_assert_eq(seen.rows.n, 5);
    cr_assert_str_eq(err.msg, "refused row 'KEY_008'");
    cf_secret_list_release(&seen.rows);

    /* A folder that does not exist is not found, and the callee is never called. */
    seen.stop_at = 0;
    cr_assert_eq(
        cf_store_secret_list_each(st, w.envs[0].id, "/nope", false, each_copy, &seen, &err),
        CF_ENOTFOUND);
    cr_assert_eq(seen.rows.n, 0);
    cr_assert_eq(cf_store_secret_list_each(st, w.envs[0].id, "/nope", true, each_copy, &seen, &err),
                 CF_ENOTFOUND);
}

/* An auto-sync of project_id (or not: auto false) made in the store; its id in id_out. */
static void make_sync(const struct cf_project *project, const struct cf_env *env, bool auto_sync,
                      char id_out[CF_UUID_LEN])
{
    struct cf_sync s = {0};
    cf_uuid_new(s.id);
    cf_strlcpy(s.project_id, project->id, sizeof(s.project_id));
    snprintf(s.name, sizeof(s.name), "sync-%.8s", s.id);
    cf_strlcpy(s.env_id, env->id, sizeof(s.env_id));
    cf_strlcpy(s.folder_path, "/", sizeof(s.folder_path));
    cf_strlcpy(s.destination, "file", sizeof(s.destination));
    cf_strlcpy(s.destination_config, "{}", sizeof(s.destination_config));
    cf_strlcpy(s.sync_options, "{}", sizeof(s.sync_options));
    s.auto_sync = auto_sync;
    s.created_at = cf_now_ms();
    cr_assert_eq(cf_store_sync_create(st, &s, &err), CF_OK, "%s", err.msg);
    cf_strlcpy(id_out, s.id, CF_UUID_LEN);
}

static long long sync_pending_gen(const char *id)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT pending_gen FROM syncs WHERE id = '%s'", id);
    return raw_count(sql);
}

/* A secret write marks its project's auto-syncs pending in its own transaction, and only those; a
 * write that fails marks nothing. */
Test(store, a_secret_write_marks_its_projects_auto_syncs_with_it)
{
    struct world w;
    struct cf_project other;
    struct cf_env other_envs[3];
    char auto_id[CF_UUID_LEN], manual_id[CF_UUID_LEN], elsewhere_id[CF_UUID_LEN];
    int64_t marked = -1;

    make_world(&w);
    make_project("q", &other, other_envs);
    make_sync(&w.project, &w.envs[0], true, auto_id);
    make_sync(&w.project, &w.envs[0], false, manual_id);
    make_sync(&other, &other_envs[0], true, elsewhere_id);
    long long before = sync_pending_gen(auto_id), manual_before = sync_pending_gen(manual_id),
              elsewhere_before = sync_pending_gen(elsewhere_id);

    struct cf_secret_write write = w_create(w.root.id, "MARKED", "v", 1);
    cf_strlcpy(write.row.project_id, w.project.id, sizeof(write.row.project_id));
    cr_assert_eq(cf_store_secret_write(st, &write, 1, &marked, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(marked, 1, "%lld syncs marked, not the project's one auto-sync",
                 (long long)marked);
    cr_assert_eq(sync_pending_gen(auto_id), before + 1);
    cr_assert_eq(sync_pending_gen(manual_id), manual_before, "a sync without auto-sync was marked");
    cr_assert_eq(sync_pending_gen(elsewhere_id), elsewhere_before,
                 "another project's sync was marked");

    /* the same key again: the write fails, and so does its mark */
    struct cf_secret_write again = w_create(w.root.id, "MARKED", "v", 1);
    cf_strlcpy(again.row.project_id, w.project.id, sizeof(again.row.project_id));
    marked = -1;
    cr_assert_eq(cf_store_secret_write(st, &again, 1, &marked, &err), CF_EEXIST, "%s", err.msg);
    cr_assert_eq(marked, 0);
    cr_assert_eq(sync_pending_gen(auto_id), before + 1, "a failed write left its mark");
}

/* cf_store_after_commit's work in the tests below: counts its calls and what another connection
 * saw of the key then. */
struct after_seen {
    int calls;
    long long committed;
    const char *sql;
};

static void note_after_commit(void *arg)
{
    struct after_seen *seen = arg;
    seen->calls++;
    seen->committed = raw_count(seen->sql);
}

/* A shared write transaction: each write keeps its own outcome (a failed one takes nothing of the
 * others with it), its reads see the batch's changes, other connections see nothing before the
 * commit, and work queued for after the commit runs after it, once. */
Test(store, a_shared_write_transaction_commits_its_writes_together)
{
    struct world w;
    struct cf_secret s;
    struct after_seen seen = {.sql = "SELECT count(*) FROM secrets WHERE key = 'SHARED_A'"};
    int64_t content = 0, content_after = 0;

    make_world(&w);
    cf_store_read_begin(st); /* as a request runs */
    cr_assert_eq(cf_store_batch_end(st, &err), CF_EINTERNAL, "an end without a begin");
    cr_assert_eq(cf_store_batch_begin(st, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_batch_begin(st, &err), CF_EINTERNAL, "a second begin on one thread");
    cr_assert(cf_store_content_version(st, &content), "the counters read as committed");

    char a_id[CF_UUID_LEN];
    create_secret(w.root.id, "SHARED_A", "a", a_id);
    cr_assert_eq(write1(w_create(w.root.id, "SHARED_A", "again", 5)), CF_EEXIST, "%s", err.msg);
    /* one request's writes, all or none: the second fails, so the first is undone too */
    struct cf_secret_write pair[2] = {w_create(w.root.id, "SHARED_C", "c", 1),
                                      w_update(a_id, 7, "SHARED_A", "stale", 5)};
    cr_assert_eq(cf_store_secret_write(st, pair, 2, NULL, &err), CF_ECONFLICT, "%s", err.msg);
    create_secret(w.root.id, "SHARED_B", "b", NULL);
    cr_assert_eq(cf_store_secret_get(st, w.root.id, "SHARED_A", 0, &s, &err), CF_OK, "%s", err.msg);
    cr_assert_arr_eq(s.sealed, "a", 1);
    cf_secret_release(&s);
    cr_assert_not(cf_store_content_version(st, &content_after),
                  "the content counter the batch changed was taken for a committed one");

    cr_assert_eq(raw_count(seen.sql), 0, "another connection saw the write before the commit");
    cf_store_after_commit(st, note_after_commit, &seen);
    cf_store_after_commit(st, note_after_commit, &seen);
    cr_assert_eq(seen.calls, 0, "the work ran before the commit");

    cr_assert_eq(cf_store_batch_end(st, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(seen.calls, 1, "queued twice, the same work runs once");
    cr_assert_eq(seen.committed, 1, "the work ran before the change was committed");
    cr_assert_eq(raw_count("SELECT count(*) FROM secrets WHERE key IN ('SHARED_A', 'SHARED_B')"),
                 2);
    cr_assert_eq(raw_count("SELECT count(*) FROM secret_versions WHERE key = 'SHARED_A'"), 1,
                 "the failed write left a version");
    cr_assert_eq(raw_count("SELECT count(*) FROM secrets WHERE key = 'SHARED_C'"), 0,
                 "a failed request's first write stayed");
    cf_store_read_refresh(st);
    cr_assert(cf_store_content_version(st, &content_after));
    cr_assert_gt(content_after, content);

    /* outside a shared transaction the work runs at once */
    cf_store_after_commit(st, note_after_commit, &seen);
    cr_assert_eq(seen.calls, 2);
    cf_store_read_end(st);
}

static struct sql_stmt ST_ROLLBACK_ALL = SQL_STMT("ROLLBACK");

/* A shared transaction that ended by itself (SQLite rolls all of it back on an I/O error or a full
 * disk) stores nothing: the writes after it fail instead of running outside it, and so does the
 * end, which gives the write lock back. */
Test(store, a_shared_write_transaction_that_broke_stores_nothing)
{
    struct world w;
    struct db_conn *c;

    make_world(&w);
    cr_assert_eq(cf_store_batch_begin(st, &err), CF_OK, "%s", err.msg);
    create_secret(w.root.id, "BROKEN_A", "a", NULL);
    cr_assert_eq(sql_conn_get(st, &c, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(sql_exec(c, &ST_ROLLBACK_ALL, NO_ARGS, NULL, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(write1(w_create(w.root.id, "BROKEN_B", "b", 1)), CF_ESTORE);
    cr_assert(strstr(err.msg, "rolled back"), "%s", err.msg);
    cr_assert_eq(cf_store_batch_end(st, &err), CF_ESTORE);
    cr_assert(strstr(err.msg, "nothing of it was stored"), "%s", err.msg);
    cr_assert_eq(raw_count("SELECT count(*) FROM secrets WHERE key LIKE 'BROKEN_%'"), 0);
    /* the lock is free again: a write of its own commits */
    create_secret(w.root.id, "AFTER", "c", NULL);
    cr_assert_eq(raw_count("SELECT count(*) FROM secrets WHERE key = 'AFTER'"), 1);
}

Test(store, secrets_versions_rename_conflict_delete)
{
    struct world w;
    char id[CF_UUID_LEN], other[CF_UUID_LEN];
    struct cf_secret s;
    struct cf_secret_list list;

    make_world(&w);
    create_secret(w.root.id, "API_KEY", "v1", id);
    create_secret(w.root.id, "OTHER", "o1", other);

    struct cf_secret_write up = w_update(id, 1, "API_KEY", "v2", 2);
    up.row.comment = (char *)"second";
    cr_assert_eq(write1(up), CF_OK, "%s", err.msg);
    cr_assert_eq(write1(w_update(id, 2, "API_TOKEN", "v3", 2)), CF_OK, "%s", err.msg); /* rename */

    cr_assert_eq(cf_store_secret_get(st, w.root.id, "API_KEY", 0, &s, &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_secret_get(st, w.root.id, "API_TOKEN", 0, &s, &err), CF_OK);
    cr_assert_eq(s.version, 3);
    cr_assert_arr_eq(s.sealed, "v3", 2);
    cf_secret_release(&s);
    cr_assert_eq(cf_store_secret_get(st, w.root.id, "API_TOKEN", 2, &s, &err), CF_OK);
    cr_assert_eq(s.version, 2);
    cr_assert_str_eq(s.key, "API_KEY"); /* the key that version had */
    cr_assert_str_eq(s.comment, "second");
    cr_assert_arr_eq(s.sealed, "v2", 2);
    cf_secret_release(&s);
    cr_assert_eq(cf_store_secret_get_by_id(st, id, 1, &s, &err), CF_OK);
    cr_assert_arr_eq(s.sealed, "v1", 2);
    cf_secret_release(&s);
    cr_assert_eq(cf_store_secret_get_by_id(st, id, 4, &s, &err), CF_ENOTFOUND);

    cr_assert_eq(cf_store_secret_history(st, id, &list, &err), CF_OK);
    cr_assert_eq(list.n, 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(list.items[i].version, 3 - (int64_t)i);
    cr_assert_str_eq(list.items[0].key, "API_TOKEN");
    cr_assert_str_eq(list.items[2].key, "API_KEY");
    cr_assert_eq(list.items[2].created_at, list.items[0].created_at);
    cf_secret_list_release(&list);

    /* Stale versions conflict; renames onto an existing key collide. */
    cr_assert_eq(write1(w_update(id, 2, "API_TOKEN", "x", 1)), CF_ECONFLICT);
    cr_assert(strstr(err.msg, "'API_TOKEN'") && strstr(err.msg, "version 3"), "%s", err.msg);
    cr_assert_eq(write1(w_update(id, 3, "OTHER", "x", 1)), CF_EEXIST);
    cr_assert_str_eq(err.msg, "secret 'OTHER' already exists in folder '/'");
    cr_assert_eq(write1(w_delete(id, 1)), CF_ECONFLICT);
    char ghost[CF_UUID_LEN];
    cf_uuid_new(ghost);
    cr_assert_eq(write1(w_update(ghost, 1, "G", "x", 1)), CF_ENOTFOUND);
    cr_assert_eq(write1(w_delete(ghost, 1)), CF_ENOTFOUND);
    cr_assert_eq(cf_store_secret_history(st, ghost, &list, &err), CF_ENOTFOUND);

    /* Delete takes every version. */
    cr_assert_eq(write1(w_delete(id, 3)), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_secret_get_by_id(st, id, 0, &s, &err), CF_ENOTFOUND);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM secret_versions"), 1);
    cr_assert_eq(write1(w_delete(id, 3)), CF_ENOTFOUND);
}

/* A mark of secret_id at version by source. */
static struct cf_secret_leak leak_of(const char *secret_id, int64_t version, const char *source)
{
    struct cf_secret_leak l = {0};
    snprintf(l.secret_id, sizeof(l.secret_id), "%s", secret_id);
    l.version = version;
    l.leaked_at = 1000 + version;
    snprintf(l.source, sizeof(l.source), "%s", source);
    snprintf(l.fingerprint, sizeof(l.fingerprint), "fp%lld", (long long)version);
    snprintf(l.actor_kind, sizeof(l.actor_kind), "admin");
    snprintf(l.actor_name, sizeof(l.actor_name), "admin");
    return l;
}

Test(store, leak_marks_hold_for_their_version_only)
{
    struct world w;
    char id[CF_UUID_LEN], other[CF_UUID_LEN];
    struct cf_secret_leak got, mark;
    struct cf_secret_leak_list list = {0};
    bool created = false;

    make_world(&w);
    create_secret(w.root.id, "API_KEY", "v1", id);
    create_secret(w.root.id, "OTHER", "o1", other);
    mark = leak_of(id, 1, "a.txt:3");
    cr_assert_eq(cf_store_leak_mark(st, &mark, &got, &created, &err), CF_OK, "%s", err.msg);
    cr_assert(created);
    cr_assert_str_eq(got.source, "a.txt:3");
    /* the same version again: the first mark stands */
    mark = leak_of(id, 1, "b.txt:9");
    cr_assert_eq(cf_store_leak_mark(st, &mark, &got, &created, &err), CF_OK, "%s", err.msg);
    cr_assert_not(created);
    cr_assert_str_eq(got.source, "a.txt:3");
    cr_assert_str_eq(got.fingerprint, "fp1");
    cr_assert_eq(cf_store_leak_list(st, w.project.id, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, 1);
    cr_assert_str_eq(list.items[0].secret_id, id);
    cr_assert_eq(list.items[0].leaked_at, 1001);
    cf_secret_leak_list_release(&list);
    /* a new version leaves the mark out; marking it replaces the stale one */
    cr_assert_eq(write1(w_update(id, 1, "API_KEY", "v2", 2)), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_leak_list(st, w.project.id, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, 0);
    cf_secret_leak_list_release(&list);
    mark = leak_of(id, 2, "c.txt:1");
    cr_assert_eq(cf_store_leak_mark(st, &mark, &got, &created, &err), CF_OK, "%s", err.msg);
    cr_assert(created);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM secret_leaks"), 1);
    cr_assert_eq(cf_store_leak_list(st, w.project.id, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, 1);
    cr_assert_str_eq(list.items[0].source, "c.txt:1");
    cf_secret_leak_list_release(&list);
    /* another project has none; a malformed id is refused; deleting the secret drops its mark */
    cr_assert_eq(cf_store_leak_list(st, w.envs[1].id, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, 0);
    cf_secret_leak_list_release(&list);
    mark = leak_of("not-a-uuid", 1, "x");
    cr_assert_neq(cf_store_leak_mark(st, &mark, &got, &created, &err), CF_OK);
    cr_assert_eq(write1(w_delete(id, 2)), CF_OK, "%s", err.msg);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM secret_leaks"), 0);
}

Test(store, secret_batch_is_all_or_nothing)
{
    struct world w;
    char id[CF_UUID_LEN];
    struct cf_secret_list list;

    make_world(&w);
    create_secret(w.root.id, "EXISTING", "e1", id);

    struct cf_secret_write batch[4] = {
        w_create(w.root.id, "NEW1", "n", 1), w_update(id, 1, "EXISTING", "e2", 2),
        w_create(w.root.id, "NEW2", "n", 1),
        w_create(w.root.id, "NEW1", "again", 5), /* fails: NEW1 was created above */
    };
    cr_assert_eq(cf_store_secret_write(st, batch, 4, NULL, &err), CF_EEXIST);
    cr_assert_str_eq(err.msg, "secret 'NEW1' already exists in folder '/'");
    cr_assert_eq(cf_store_secret_list(st, w.envs[0].id, "/", true, &list, &err), CF_OK);
    assert_keys(&list, (const char *const[]){"EXISTING"}, 1);
    cr_assert_eq(list.items[0].version, 1);
    cf_secret_list_release(&list);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM secret_versions"), 1);

    /* Same with a conflict last; then the batch without it goes through, in order. */
    batch[3] = w_update(id, 1, "EXISTING", "stale", 5); /* stale: batch[1] made version 2 */
    cr_assert_eq(cf_store_secret_write(st, batch, 4, NULL, &err), CF_ECONFLICT);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM secrets"), 1);
    batch[3] = w_update(id, 2, "EXISTING", "e3", 2);
    cr_assert_eq(cf_store_secret_write(st, batch, 4, NULL, &err), CF_OK, "%s", err.msg);
    struct cf_secret s;
    cr_assert_eq(cf_store_secret_get_by_id(st, id, 0, &s, &err), CF_OK);
    cr_assert_eq(s.version, 3);
    cr_assert_arr_eq(s.sealed, "e3", 2);
    cf_secret_release(&s);
}

/* ---- imports and tags ---- */

static void make_import(const char *folder_id, const char *env_id, const char *path,
                        struct cf_import *out)
{
    memset(out, 0, sizeof(*out));
    cf_uuid_new(out->id);
    snprintf(out->folder_id, sizeof(out->folder_id), "%s", folder_id);
    snprintf(out->import_env_id, sizeof(out->import_env_id), "%s", env_id);
    snprintf(out->import_path, sizeof(out->import_path), "%s", path);
    cr_assert_eq(cf_store_import_create(st, out, &err), CF_OK, "%s", err.msg);
}

static void assert_imports(const char *folder_id, const char *const *paths, size_t n)
{
    struct cf_import_list list;
    cr_assert_eq(cf_store_import_list(st, folder_id, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_str_eq(list.items[i].import_path, paths[i]);
        cr_assert_eq(list.items[i].position, (int)i + 1);
    }
    cf_import_list_release(&list);
}

Test(store, imports)
{
    struct world w;
    struct cf_import one, two, three, got;
    struct cf_project q;
    struct cf_env qenvs[3];

    make_world(&w);
    make_project("q", &q, qenvs);
    assert_imports(w.root.id, NULL, 0);
    make_import(w.root.id, w.envs[1].id, "/shared", &one);
    make_import(w.root.id, w.envs[2].id, "/", &two);
    make_import(w.root.id, w.envs[1].id, "/other", &three);
    assert_imports(w.root.id, (const char *const[]){"/shared", "/", "/other"}, 3);

    cr_assert_eq(cf_store_import_get(st, two.id, &got, &err), CF_OK);
    cr_assert_str_eq(got.import_env_id, w.envs[2].id);
    cr_assert_str_eq(got.folder_id, w.root.id);
    cr_assert_eq(got.position, 2);

    struct cf_import dup = one;
    cf_uuid_new(dup.id);
    cr_assert_eq(cf_store_import_create(st, &dup, &err), CF_EEXIST);
    cr_assert_str_eq(err.msg, "folder '/' already imports '/shared' from environment 'staging'");
    snprintf(dup.import_env_id, sizeof(dup.import_env_id), "%s", qenvs[0].id);
    cr_assert_eq(cf_store_import_create(st, &dup, &err), CF_EINVAL); /* another project */
    cf_uuid_new(dup.import_env_id);
    cr_assert_eq(cf_store_import_create(st, &dup, &err), CF_ENOTFOUND);
    cf_uuid_new(dup.folder_id);
    cr_assert_eq(cf_store_import_create(st, &dup, &err), CF_ENOTFOUND);
    struct cf_import_list list;
    cr_assert_eq(cf_store_import_list(st, dup.folder_id, &list, &err), CF_ENOTFOUND);

    cr_assert_eq(cf_store_import_delete(st, one.id, &err), CF_OK, "%s", err.msg);
    assert_imports(w.root.id, (const char *const[]){"/", "/other"}, 2);
    cr_assert_eq(cf_store_import_delete(st, one.id, &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_import_get(st, one.id, &got, &err), CF_ENOTFOUND);

    /* Deleting an imported environment drops its imports and renumbers the rest. */
    make_import(w.root.id, w.envs[1].id, "/last", &one);
    assert_imports(w.root.id, (const char *const[]){"/", "/other", "/last"}, 3);
    cr_assert_eq(cf_store_env_delete(st, w.envs[2].id, &err), CF_OK, "%s", err.msg);
    assert_imports(w.root.id, (const char *const[]){"/other", "/last"}, 2);
}

Test(store, tags)
{
    struct cf_project p, q;
    struct cf_tag t = {0}, got;
    struct cf_tag_list list;

    make_project("p", &p, NULL);
    make_project("q", &q, NULL);
    const char *slugs[] = {"zeta", "alpha"};
    for (int i = 0; i < 2; i++) {
        cf_uuid_new(t.id);
        snprintf(t.project_id, sizeof(t.project_id), "%s", p.id);
        snprintf(t.slug, sizeof(t.slug), "%s", slugs[i]);
        snprintf(t.name, sizeof(t.name), "Tag %s", slugs[i]);
        snprintf(t.color, sizeof(t.color), "#00ff0%d", i);
        cr_assert_eq(cf_store_tag_create(st, &t, &err), CF_OK, "%s", err.msg);
    }
    cr_assert_eq(cf_store_tag_create(st, &t, &err), CF_EEXIST);
    cf_uuid_new(t.id);
    cr_assert_eq(cf_store_tag_create(st, &t, &err), CF_EEXIST);
    cr_assert_str_eq(err.msg, "tag 'alpha' already exists");
    snprintf(t.project_id, sizeof(t.project_id), "%s", q.id); /* same slug, other project */
    cr_assert_eq(cf_store_tag_create(st, &t, &err), CF_OK, "%s", err.msg);

    cr_assert_eq(cf_store_tag_get(st, p.id, "alpha", &got, &err), CF_OK);
    cr_assert_str_eq(got.color, "#00ff01");
    cr_assert_str_eq(got.name, "Tag alpha");
    char id[CF_UUID_LEN];
    snprintf(id, sizeof(id), "%s", got.id);
    cr_assert_eq(cf_store_tag_get(st, p.id, id, &got, &err), CF_OK);
    cr_assert_str_eq(got.slug, "alpha");
    cr_assert_eq(cf_store_tag_get(st, q.id, id, &got, &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_tag_get(st, p.id, "beta", &got, &err), CF_ENOTFOUND);

    cr_assert_eq(cf_store_tag_list(st, p.id, &list, &err), CF_OK);
    cr_assert_eq(list.n, 2);
    cr_assert_str_eq(list.items[0].slug, "alpha");
    cr_assert_str_eq(list.items[1].slug, "zeta");
    cf_tag_list_release(&list);
}

/* ---- cascades and persistence ---- */

Test(store, deleting_environment_and_project_cascades)
{
    struct world w, other;
    struct cf_folder f;
    struct cf_tag t = {0};

    make_world(&w);
    make_project("other", &other.project, other.envs);
    get_folder(other.envs[0].id, "/", &other.root);
    make_folder(&w.root, "app", &f);
    create_secret(f.id, "A", "a", NULL);
    create_secret(w.root.id, "B", "b", NULL);
    create_secret(other.root.id, "C", "c", NULL);
    cf_uuid_new(t.id);
    snprintf(t.project_id, sizeof(t.project_id), "%s", w.project.id);
    snprintf(t.slug, sizeof(t.slug), "t");
    cr_assert_eq(cf_store_tag_create(st, &t, &err), CF_OK);

    cr_assert_eq(cf_store_env_delete(st, w.envs[0].id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM secrets"), 1);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM secret_versions"), 1);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM folders"), 5); /* the other roots */

    cr_assert_eq(cf_store_project_delete(st, w.project.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_project_delete(st, w.project.id, &err), CF_ENOTFOUND);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM environments"), 3);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM folders"), 3);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM tags"), 0);
    cr_assert_eq(cf_store_project_delete(st, other.project.id, &err), CF_OK);
    const char *tables[] = {"projects",        "environments",   "folders", "secrets",
                            "secret_versions", "secret_imports", "tags"};
    for (size_t i = 0; i < CF_ARRAY_SIZE(tables); i++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", tables[i]);
        cr_assert_eq(raw_count(sql), 0, "%s", tables[i]);
    }
}

/* The name of project slug as the store reads it now. */
static void expect_project_name(const char *slug, const char *name)
{
    struct cf_project got;
    cr_assert_eq(cf_store_project_get(st, slug, &got, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(got.name, name);
    cf_project_release(&got);
}

/* A read scope runs its reads in one transaction: a commit made meanwhile by another connection
 * is not seen until the scope ends (one snapshot), a write inside the scope goes through and the
 * reads after it see the database as it is then; nested scopes keep the outer one's transaction. */
Test(store, read_scope_shares_one_snapshot)
{
    struct cf_project p, q;
    make_project("alpha", &p, NULL);

    cf_store_read_end(st); /* without a scope: nothing to end */
    cf_store_read_begin(st);
    expect_project_name("alpha", "Project alpha");
    raw_exec("UPDATE projects SET name = 'renamed' WHERE slug = 'alpha'");
    expect_project_name("alpha", "Project alpha");

    /* A write in the scope: its own write transaction, then a new read transaction. */
    make_project("beta", &q, NULL);
    expect_project_name("alpha", "renamed");
    expect_project_name("beta", "Project beta");

    raw_exec("UPDATE projects SET name = 'third' WHERE slug = 'alpha'");
    cf_store_read_begin(st);
    expect_project_name("alpha", "renamed");
    cf_store_read_end(st);
    expect_project_name("alpha", "renamed"); /* still the outer scope's snapshot */
    cf_store_read_end(st);
    expect_project_name("alpha", "third");

    /* No transaction is left open: a checkpoint can copy the whole log back. */
    cr_assert_eq(raw_count("PRAGMA wal_checkpoint(TRUNCATE)"), 0);
}

/* Scopes are per thread: one thread's open read transaction does not hold another thread's reads
 * to its snapshot. */
struct scope_reader {
    const char *expect;
    bool same;
};

static void *scope_reader_main(void *arg)
{
    struct scope_reader *r = arg;
    struct cf_project got;
    struct cf_err thread_err;
    r->same = cf_store_project_get(st, "alpha", &got, &thread_err) == CF_OK &&
              strcmp(got.name, r->expect) == 0;
    cf_project_release(&got);
    return NULL;
}

Test(store, read_scope_is_per_thread)
{
    struct cf_project p;
    pthread_t thread;
    make_project("alpha", &p, NULL);
    cf_store_read_begin(st);
    expect_project_name("alpha", "Project alpha");
    raw_exec("UPDATE projects SET name = 'renamed' WHERE slug = 'alpha'");
    struct scope_reader reader = {.expect = "renamed"};
    cr_assert_eq(pthread_create(&thread, NULL, scope_reader_main, &reader), 0);
    pthread_join(thread, NULL);
    cr_assert(reader.same, "another thread reads the latest commit");
    expect_project_name("alpha", "Project alpha");
    cf_store_read_end(st);
    expect_project_name("alpha", "renamed");
}

Test(store, data_persists_across_reopen)
{
    struct world w;
    char id[CF_UUID_LEN];
    struct cf_secret s;

    make_world(&w);
    create_secret(w.root.id, "KEEP", "kept", id);
    cr_assert_eq(write1(w_update(id, 1, "KEEP", "kept2", 5)), CF_OK);
    cf_store_close(st);
    st = open_store(db_path);
    cr_assert_eq(cf_store_secret_get(st, w.root.id, "KEEP", 0, &s, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(s.version, 2);
    cr_assert_arr_eq(s.sealed, "kept2", 5);
    cf_secret_release(&s);
    struct cf_project p;
    cr_assert_eq(cf_store_project_get(st, "p", &p, &err), CF_OK);
    cf_project_release(&p);
}

Test(store, busy_database_is_unavailable)
{
    sqlite3 *db = NULL;
    struct cf_store_config config = {.dsn = db_path, .busy_timeout_ms = 100};
    struct cf_store *impatient = NULL;
    struct cf_project p;
    uint8_t *value = NULL;
    size_t len;

    make_project("p", &p, NULL);
    cr_assert_eq(cf_store_open(&config, &impatient, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(sqlite3_open(db_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    cr_assert_eq(cf_store_meta_put(impatient, "k", (const uint8_t *)"v", 1, &err), CF_EUNAVAIL);
    cr_assert_eq(cf_store_project_delete(impatient, p.id, &err), CF_EUNAVAIL);
    /* Readers are not blocked by a writer (WAL). */
    struct cf_project got;
    cr_assert_eq(cf_store_project_get(impatient, "p", &got, &err), CF_OK, "%s", err.msg);
    cf_project_release(&got);
    cr_assert_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    cr_assert_eq(cf_store_meta_put(impatient, "k", (const uint8_t *)"v", 1, &err), CF_OK);
    cr_assert_eq(cf_store_meta_get(st, "k", &value, &len, &err), CF_OK);
    free(value);
    cf_store_close(impatient);
}

/* ---- threads ---- */

enum { THREADS = 4, ROUNDS = 40 };

struct worker {
    pthread_t thread;
    int index;
    const char *folder_id;
    const char *env_id;
    const char *counter_id;
    int updates;   /* successful updates of the shared counter */
    int conflicts; /* expected: other threads won the race */
    int failures;  /* anything else */
    char failure[CF_ERR_MSG_MAX];
};

static void note_failure(struct worker *wk, const struct cf_err *e)
{
    if (!wk->failures++)
        snprintf(wk->failure, sizeof(wk->failure), "%s", e->msg);
}

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    struct cf_err e;
    for (int round = 0; round < ROUNDS; round++) {
        char key[64], value[64];
        snprintf(key, sizeof(key), "T%d_R%d", wk->index, round);
        snprintf(value, sizeof(value), "value %d/%d", wk->index, round);
        struct cf_secret_write w = w_create(wk->folder_id, key, value, strlen(value));
        if (cf_store_secret_write(st, &w, 1, NULL, &e) != CF_OK)
            note_failure(wk, &e);

        /* Read-modify-write of the shared counter, optimistic. */
        struct cf_secret cur;
        if (cf_store_secret_get_by_id(st, wk->counter_id, 0, &cur, &e) != CF_OK) {
            note_failure(wk, &e);
            continue;
        }
        struct cf_secret_write up =
            w_update(wk->counter_id, cur.version, "COUNTER", value, strlen(value));
        cf_secret_release(&cur);
        enum cf_rc rc = cf_store_secret_write(st, &up, 1, NULL, &e);
        if (rc == CF_OK)
            wk->updates++;
        else if (rc == CF_ECONFLICT)
            wk->conflicts++;
        else
            note_failure(wk, &e);

        struct cf_secret_list list;
        if (cf_store_secret_list(st, wk->env_id, "/", true, &list, &e) != CF_OK)
            note_failure(wk, &e);
        else if (list.n < 2)
            note_failure(wk, &(struct cf_err){.msg = "list lost rows"});
        cf_secret_list_release(&list);
    }
    return NULL; /* the thread's connection is closed by the key destructor */
}

Test(store, threads_write_and_read_concurrently)
{
    struct world w;
    char counter[CF_UUID_LEN];
    struct worker workers[THREADS];
    int updates = 0;

    make_world(&w);
    create_secret(w.root.id, "COUNTER", "0", counter);
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){
            .index = i, .folder_id = w.root.id, .env_id = w.envs[0].id, .counter_id = counter};
        cr_assert_eq(pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(workers[i].thread, NULL);
        cr_expect_eq(workers[i].failures, 0, "thread %d: %s", i, workers[i].failure);
        cr_assert_eq(workers[i].updates + workers[i].conflicts, ROUNDS);
        updates += workers[i].updates;
    }
    cr_assert_gt(updates, 0);
    struct cf_secret s;
    cr_assert_eq(cf_store_secret_get_by_id(st, counter, 0, &s, &err), CF_OK);
    cr_assert_eq(s.version, 1 + updates, "version %lld after %d updates", (long long)s.version,
                 updates);
    cf_secret_release(&s);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM secrets"), 1 + THREADS * ROUNDS);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM secret_versions"), 1 + THREADS * ROUNDS + updates);
}

/* ---- machine identities ---- */

static void make_identity(const char *name, int64_t created_at, struct cf_identity *out)
{
    memset(out, 0, sizeof(*out));
    cf_uuid_new(out->id);
    snprintf(out->name, sizeof(out->name), "%s", name);
    out->created_at = created_at;
    out->updated_at = created_at;
    cr_assert_eq(cf_store_identity_create(st, out, &err), CF_OK, "%s: %s", name, err.msg);
}

/* Universal-auth settings for identity_id with a fresh client id (heap: it is over 4 KiB). */
static struct cf_ua_config *new_ua(const char *identity_id)
{
    struct cf_ua_config *ua = calloc(1, sizeof(*ua));
    cr_assert_not_null(ua);
    snprintf(ua->identity_id, sizeof(ua->identity_id), "%s", identity_id);
    cf_uuid_new(ua->client_id);
    ua->token.ttl = 3600;
    ua->token.max_ttl = 7200;
    ua->token.num_uses_limit = 5;
    snprintf(ua->token.trusted_ips, sizeof(ua->token.trusted_ips), "10.0.0.0/8");
    snprintf(ua->client_secret_trusted_ips, sizeof(ua->client_secret_trusted_ips),
             "0.0.0.0/0,::/0");
    ua->created_at = 1000;
    ua->updated_at = 1000;
    return ua;
}

static void fill_hash(uint8_t hash[32], uint8_t seed)
{
    for (int i = 0; i < 32; i++)
        hash[i] = (uint8_t)(seed + i * 7); /* includes 0x00 bytes for some seeds */
}

static void make_client_secret(const char *identity_id, const char *description,
                               int64_t num_uses_limit, int64_t created_at,
                               struct cf_client_secret *out)
{
    memset(out, 0, sizeof(*out));
    cf_uuid_new(out->id);
    snprintf(out->identity_id, sizeof(out->identity_id), "%s", identity_id);
    snprintf(out->description, sizeof(out->description), "%s", description);
    snprintf(out->prefix, sizeof(out->prefix), "cs_%.4s", description);
    fill_hash(out->hash, (uint8_t)description[0]);
    out->expires_at = created_at + 60000;
    out->num_uses_limit = num_uses_limit;
    out->created_at = created_at;
    out->updated_at = created_at;
    cr_assert_eq(cf_store_client_secret_create(st, out, &err), CF_OK, "%s: %s", description,
                 err.msg);
}

/* An access token of identity_id, issued through client secret client_secret_id ("" for none). */
static struct cf_access_token *new_token(const char *identity_id, const char *client_secret_id,
                                         int64_t num_uses_limit)
{
    struct cf_access_token *t = calloc(1, sizeof(*t));
    cr_assert_not_null(t);
    cf_uuid_new(t->id);
    snprintf(t->identity_id, sizeof(t->identity_id), "%s", identity_id);
    snprintf(t->client_secret_id, sizeof(t->client_secret_id), "%s", client_secret_id);
    snprintf(t->auth_method, sizeof(t->auth_method), "universal-auth");
    fill_hash(t->hash, 0x80);
    t->ttl = 3600;
    t->max_ttl = 86400;
    t->num_uses_limit = num_uses_limit;
    snprintf(t->trusted_ips, sizeof(t->trusted_ips), "192.168.0.0/16,fd00::/8");
    t->created_at = 5000;
    cr_assert_eq(cf_store_token_create(st, t, &err), CF_OK, "%s", err.msg);
    return t;
}

Test(store, identities)
{
    struct cf_identity a, b, got, dup;
    struct cf_identity_list list;

    make_identity("deployer", 2000, &a);
    make_identity("backup", 1000, &b);
    cr_assert_eq(cf_store_identity_get(st, a.id, &got, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(got.id, a.id);
    cr_assert_str_eq(got.name, "deployer");
    cr_assert_eq(got.created_at, 2000);
    cr_assert_eq(got.updated_at, 2000);

    /* Names are unique; ids must be UUIDs; names must not be empty. */
    dup = a;
    cf_uuid_new(dup.id);
    cr_assert_eq(cf_store_identity_create(st, &dup, &err), CF_EEXIST);
    cr_assert(strstr(err.msg, "identity 'deployer' already exists"), "%s", err.msg);
    snprintf(dup.id, sizeof(dup.id), "not-a-uuid");
    snprintf(dup.name, sizeof(dup.name), "other");
    cr_assert_eq(cf_store_identity_create(st, &dup, &err), CF_EINVAL);
    cf_uuid_new(dup.id);
    dup.name[0] = '\0';
    cr_assert_eq(cf_store_identity_create(st, &dup, &err), CF_EINVAL);

    /* Oldest first. */
    cr_assert_eq(cf_store_identity_list(st, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, 2);
    cr_assert_str_eq(list.items[0].name, "backup");
    cr_assert_str_eq(list.items[1].name, "deployer");
    cf_identity_list_release(&list);

    /* Renaming. */
    snprintf(a.name, sizeof(a.name), "deployer-2");
    a.updated_at = 3000;
    cr_assert_eq(cf_store_identity_update(st, &a, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_identity_get(st, a.id, &got, &err), CF_OK);
    cr_assert_str_eq(got.name, "deployer-2");
    cr_assert_eq(got.created_at, 2000);
    cr_assert_eq(got.updated_at, 3000);
    snprintf(a.name, sizeof(a.name), "backup");
    cr_assert_eq(cf_store_identity_update(st, &a, &err), CF_EEXIST);
    cr_assert(strstr(err.msg, "'backup'"), "%s", err.msg);
    cr_assert_eq(cf_store_identity_get(st, a.id, &got, &err), CF_OK);
    cr_assert_str_eq(got.name, "deployer-2");
    cf_uuid_new(dup.id);
    snprintf(dup.name, sizeof(dup.name), "ghost");
    cr_assert_eq(cf_store_identity_update(st, &dup, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, dup.id), "%s", err.msg);

    /* Deleting. */
    cr_assert_eq(cf_store_identity_delete(st, b.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_identity_delete(st, b.id, &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_identity_get(st, b.id, &got, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, b.id), "%s", err.msg);
    cr_assert_eq(cf_store_identity_list(st, &list, &err), CF_OK);
    cr_assert_eq(list.n, 1);
    cr_assert_str_eq(list.items[0].id, a.id);
    cf_identity_list_release(&list);
}

Test(store, universal_auth)
{
    struct cf_identity a, b;
    struct cf_ua_config *ua, *got, *other;

    make_identity("a", 0, &a);
    make_identity("b", 0, &b);
    ua = new_ua(a.id);
    /* Trusted IP lists are opaque text, up to CF_IPS_MAX bytes. */
    memset(ua->client_secret_trusted_ips, '7', CF_IPS_MAX);
    ua->client_secret_trusted_ips[CF_IPS_MAX] = '\0';
    cr_assert_eq(cf_store_ua_attach(st, ua, &err), CF_OK, "%s", err.msg);

    got = calloc(1, sizeof(*got));
    cr_assert_not_null(got);
    cr_assert_eq(cf_store_ua_get(st, a.id, got, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(memcmp(got, ua, sizeof(*ua)), 0);
    memset(got, 0xff, sizeof(*got));
    cr_assert_eq(cf_store_ua_get_by_client_id(st, ua->client_id, got, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(got->identity_id, a.id);
    cr_assert_eq(memcmp(got, ua, sizeof(*ua)), 0);

    /* Attaching twice; a client id taken; an unknown identity. */
    other = new_ua(a.id);
    cr_assert_eq(cf_store_ua_attach(st, other, &err), CF_EEXIST);
    cr_assert(strstr(err.msg, "universal auth is already attached to identity"), "%s", err.msg);
    cr_assert(strstr(err.msg, a.id), "%s", err.msg);
    snprintf(other->identity_id, sizeof(other->identity_id), "%s", b.id);
    snprintf(other->client_id, sizeof(other->client_id), "%s", ua->client_id);
    cr_assert_eq(cf_store_ua_attach(st, other, &err), CF_EEXIST);
    cr_assert(strstr(err.msg, "client id"), "%s", err.msg);
    cf_uuid_new(other->identity_id);
    cf_uuid_new(other->client_id);
    cr_assert_eq(cf_store_ua_attach(st, other, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, other->identity_id), "%s", err.msg);
    cr_assert_eq(cf_store_ua_get(st, b.id, got, &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_ua_get_by_client_id(st, other->client_id, got, &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_ua_get_by_client_id(st, "not a client id", got, &err), CF_ENOTFOUND);

    /* Updating replaces the settings and keeps the client id and the creation time. */
    ua->token.ttl = 60;
    ua->token.max_ttl = 0;
    ua->token.num_uses_limit = 0;
    snprintf(ua->token.trusted_ips, sizeof(ua->token.trusted_ips), "::1/128");
    snprintf(ua->client_secret_trusted_ips, sizeof(ua->client_secret_trusted_ips), "1.2.3.4/32");
    char client_id[CF_UUID_LEN];
    memcpy(client_id, ua->client_id, sizeof(client_id));
    cf_uuid_new(ua->client_id);
    ua->created_at = 9999;
    ua->updated_at = 2000;
    cr_assert_eq(cf_store_ua_update(st, ua, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_ua_get(st, a.id, got, &err), CF_OK);
    cr_assert_str_eq(got->client_id, client_id);
    cr_assert_eq(got->token.ttl, 60);
    cr_assert_eq(got->token.max_ttl, 0);
    cr_assert_eq(got->token.num_uses_limit, 0);
    cr_assert_str_eq(got->token.trusted_ips, "::1/128");
    cr_assert_str_eq(got->client_secret_trusted_ips, "1.2.3.4/32");
    cr_assert_eq(got->created_at, 1000);
    cr_assert_eq(got->updated_at, 2000);
    snprintf(ua->identity_id, sizeof(ua->identity_id), "%s", b.id);
    cr_assert_eq(cf_store_ua_update(st, ua, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, "not attached"), "%s", err.msg);

    /* An unterminated list is refused, not read past. */
    memset(ua->token.trusted_ips, 'x', sizeof(ua->token.trusted_ips));
    snprintf(ua->identity_id, sizeof(ua->identity_id), "%s", a.id);
    cr_assert_eq(cf_store_ua_update(st, ua, &err), CF_EINVAL);
    free(ua);
    free(got);
    free(other);
}

Test(store, jwt_auth)
{
    struct cf_identity a, b;
    struct cf_jwt_auth_config *jwt = calloc(1, sizeof(*jwt)), *got = calloc(1, sizeof(*got));

    cr_assert(jwt && got);
    make_identity("ja", 0, &a);
    make_identity("jb", 0, &b);
    memcpy(jwt->identity_id, a.id, CF_UUID_LEN);
    snprintf(jwt->configuration_type, sizeof(jwt->configuration_type), "static");
    /* Texts are opaque, up to their full size. */
    jwt->public_keys = calloc(1, CF_JWT_KEYS_TEXT_MAX + 2);
    cr_assert(jwt->public_keys);
    memset(jwt->public_keys, 'k', CF_JWT_KEYS_TEXT_MAX);
    jwt->bound_issuer = strdup("https://ci.example");
    jwt->bound_audiences = strdup("a, b");
    jwt->bound_claims = strdup("{\"team\":\"x\"}");
    snprintf(jwt->token.trusted_ips, sizeof(jwt->token.trusted_ips), "0.0.0.0/0");
    jwt->token.ttl = 60;
    jwt->created_at = 1000;
    jwt->updated_at = 1000;
    cr_assert_eq(cf_store_jwt_auth_attach(st, jwt, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_jwt_auth_get(st, a.id, got, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(strlen(got->public_keys), CF_JWT_KEYS_TEXT_MAX);
    cr_assert_str_eq(got->configuration_type, "static");
    cr_assert_str_eq(got->bound_issuer, "https://ci.example");
    cr_assert_str_eq(got->bound_audiences, "a, b");
    cr_assert_str_eq(got->bound_claims, "{\"team\":\"x\"}");
    cr_assert_str_eq(got->bound_subject, "");
    cr_assert_eq(got->token.ttl, 60);
    cr_assert_eq(got->created_at, 1000);

    cr_assert_eq(cf_store_jwt_auth_attach(st, jwt, &err), CF_EEXIST);
    cr_assert(strstr(err.msg, "JWT auth is already attached to identity"), "%s", err.msg);
    cf_jwt_auth_config_release(got);
    cr_assert_eq(cf_store_jwt_auth_get(st, b.id, got, &err), CF_ENOTFOUND);
    memcpy(jwt->identity_id, b.id, CF_UUID_LEN);
    cr_assert_eq(cf_store_jwt_auth_update(st, jwt, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, "JWT auth is not attached to identity"), "%s", err.msg);
    cf_uuid_new(jwt->identity_id);
    cr_assert_eq(cf_store_jwt_auth_attach(st, jwt, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, "identity with id"), "%s", err.msg);
    cr_assert(strstr(err.msg, jwt->identity_id), "%s", err.msg);
    /* A text over its limit is refused. */
    memcpy(jwt->identity_id, b.id, CF_UUID_LEN);
    jwt->public_keys[CF_JWT_KEYS_TEXT_MAX] = 'k';
    cr_assert_eq(cf_store_jwt_auth_attach(st, jwt, &err), CF_EINVAL);
    jwt->public_keys[CF_JWT_KEYS_TEXT_MAX] = '\0';

    /* Update replaces the settings and keeps the creation time; deleting the identity deletes it.
     */
    memcpy(jwt->identity_id, a.id, CF_UUID_LEN);
    snprintf(jwt->configuration_type, sizeof(jwt->configuration_type), "jwks");
    jwt->jwks_url = strdup("https://ci.example/jwks");
    jwt->created_at = 5;
    jwt->updated_at = 2000;
    cr_assert_eq(cf_store_jwt_auth_update(st, jwt, &err), CF_OK, "%s", err.msg);
    cf_jwt_auth_config_release(got);
    cr_assert_eq(cf_store_jwt_auth_get(st, a.id, got, &err), CF_OK);
    cr_assert_str_eq(got->configuration_type, "jwks");
    cr_assert_str_eq(got->jwks_url, "https://ci.example/jwks");
    cr_assert_eq(got->created_at, 1000);
    cr_assert_eq(got->updated_at, 2000);
    snprintf(jwt->configuration_type, sizeof(jwt->configuration_type), "other");
    cr_assert_neq(cf_store_jwt_auth_update(st, jwt, &err), CF_OK);
    cr_assert_eq(cf_store_identity_delete(st, a.id, &err), CF_OK);
    cf_jwt_auth_config_release(got);
    cr_assert_eq(cf_store_jwt_auth_get(st, a.id, got, &err), CF_ENOTFOUND);
    cf_jwt_auth_config_release(got);
    cf_jwt_auth_config_release(jwt);
    free(jwt);
    free(got);
}

Test(store, kubernetes_auth)
{
    struct cf_identity a, b;
    struct cf_k8s_auth_config *k = calloc(1, sizeof(*k)), *got = calloc(1, sizeof(*got));

    cr_assert(k && got);
    make_identity("ka", 0, &a);
    make_identity("kb", 0, &b);
    memcpy(k->identity_id, a.id, CF_UUID_LEN);
    snprintf(k->kubernetes_host, sizeof(k->kubernetes_host), "https://k8s.example:6443");
    memset(k->token_reviewer_jwt, 'r', CF_K8S_JWT_MAX);
    snprintf(k->allowed_namespaces, sizeof(k->allowed_namespaces), "prod, team-*");
    snprintf(k->allowed_audience, sizeof(k->allowed_audience), "coffer");
    snprintf(k->token.trusted_ips, sizeof(k->token.trusted_ips), "0.0.0.0/0");
    k->token.ttl = 60;
    k->created_at = 1000;
    k->updated_at = 1000;
    cr_assert_eq(cf_store_kubernetes_auth_attach(st, k, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_kubernetes_auth_get(st, a.id, got, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(got->kubernetes_host, "https://k8s.example:6443");
    cr_assert_eq(strlen(got->token_reviewer_jwt), CF_K8S_JWT_MAX);
    cr_assert_str_eq(got->allowed_namespaces, "prod, team-*");
    cr_assert_str_eq(got->allowed_names, "");
    cr_assert_str_eq(got->allowed_audience, "coffer");
    cr_assert_eq(got->token.ttl, 60);
    cr_assert_eq(got->created_at, 1000);

    cr_assert_eq(cf_store_kubernetes_auth_attach(st, k, &err), CF_EEXIST);
    cr_assert(strstr(err.msg, "Kubernetes auth is already attached to identity"), "%s", err.msg);
    cr_assert_eq(cf_store_kubernetes_auth_get(st, b.id, got, &err), CF_ENOTFOUND);
    memcpy(k->identity_id, b.id, CF_UUID_LEN);
    cr_assert_eq(cf_store_kubernetes_auth_update(st, k, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, "Kubernetes auth is not attached to identity"), "%s", err.msg);
    cf_uuid_new(k->identity_id);
    cr_assert_eq(cf_store_kubernetes_auth_attach(st, k, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, "identity with id"), "%s", err.msg);
    cr_assert(strstr(err.msg, k->identity_id), "%s", err.msg);
    memcpy(k->identity_id, b.id, CF_UUID_LEN);
    memset(k->allowed_names, 'n', sizeof(k->allowed_names));
    cr_assert_eq(cf_store_kubernetes_auth_attach(st, k, &err), CF_EINVAL);
    k->allowed_names[0] = '\0';

    memcpy(k->identity_id, a.id, CF_UUID_LEN);
    k->token_reviewer_jwt[0] = '\0';
    k->created_at = 5;
    k->updated_at = 2000;
    cr_assert_eq(cf_store_kubernetes_auth_update(st, k, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_kubernetes_auth_get(st, a.id, got, &err), CF_OK);
    cr_assert_str_eq(got->token_reviewer_jwt, "");
    cr_assert_eq(got->created_at, 1000);
    cr_assert_eq(got->updated_at, 2000);
    cr_assert_eq(cf_store_identity_delete(st, a.id, &err), CF_OK);
    cr_assert_eq(cf_store_kubernetes_auth_get(st, a.id, got, &err), CF_ENOTFOUND);
    free(k);
    free(got);
}

Test(store, client_secrets)
{
    struct cf_identity a, b;
    struct cf_client_secret s1, s2, s3, sb, got;
    struct cf_client_secret_list list;

    make_identity("a", 0, &a);
    make_identity("b", 0, &b);
    make_client_secret(a.id, "first", 0, 1000, &s1);
    make_client_secret(a.id, "second", 3, 2000, &s2);
    make_client_secret(a.id, "third", 0, 2000, &s3); /* same millisecond as second */
    make_client_secret(b.id, "other", 0, 500, &sb);

    /* Newest first; the later of two in one millisecond first. */
    cr_assert_eq(cf_store_client_secret_list(st, a.id, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, 3);
    cr_assert_str_eq(list.items[0].id, s3.id);
    cr_assert_str_eq(list.items[1].id, s2.id);
    cr_assert_str_eq(list.items[2].id, s1.id);
    cr_assert_eq(memcmp(&list.items[1], &s2, sizeof(s2)), 0);
    cf_client_secret_list_release(&list);

    cr_assert_eq(cf_store_client_secret_get(st, a.id, s2.id, &got, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(memcmp(&got, &s2, sizeof(s2)), 0); /* every field, the 32-byte hash included */
    cr_assert_str_eq(got.prefix, "cs_seco");
    /* A secret is found only under its own identity. */
    cr_assert_eq(cf_store_client_secret_get(st, b.id, s2.id, &got, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, s2.id), "%s", err.msg);
    cr_assert_eq(cf_store_client_secret_revoke(st, b.id, s2.id, &err), CF_ENOTFOUND);

    /* Revoking is idempotent and keeps the first revocation's time; revoked ones are listed. */
    cr_assert_eq(cf_store_client_secret_revoke(st, a.id, s2.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_client_secret_get(st, a.id, s2.id, &got, &err), CF_OK);
    cr_assert(got.revoked);
    cr_assert_gt(got.updated_at, 2000);
    int64_t revoked_at = got.updated_at;
    raw_exec("UPDATE identity_client_secrets SET updated_at = updated_at - 5");
    revoked_at -= 5;
    cr_assert_eq(cf_store_client_secret_revoke(st, a.id, s2.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_client_secret_get(st, a.id, s2.id, &got, &err), CF_OK);
    cr_assert(got.revoked);
    cr_assert_eq(got.updated_at, revoked_at);
    cr_assert_eq(cf_store_client_secret_list(st, a.id, &list, &err), CF_OK);
    cr_assert_eq(list.n, 3);
    cr_assert(list.items[1].revoked && !list.items[0].revoked && !list.items[2].revoked);
    cf_client_secret_list_release(&list);

    /* Unknown identity, duplicate id, bad id. */
    struct cf_client_secret bad = s1;
    cf_uuid_new(bad.identity_id);
    cf_uuid_new(bad.id);
    cr_assert_eq(cf_store_client_secret_create(st, &bad, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, bad.identity_id), "%s", err.msg);
    bad = s1;
    cr_assert_eq(cf_store_client_secret_create(st, &bad, &err), CF_EEXIST);
    snprintf(bad.id, sizeof(bad.id), "x");
    cr_assert_eq(cf_store_client_secret_create(st, &bad, &err), CF_EINVAL);
    cr_assert_eq(cf_store_client_secret_list(st, b.id, &list, &err), CF_OK);
    cr_assert_eq(list.n, 1);
    cf_client_secret_list_release(&list);
    cf_uuid_new(bad.identity_id);
    cr_assert_eq(cf_store_client_secret_list(st, bad.identity_id, &list, &err), CF_OK);
    cr_assert_eq(list.n, 0);
    cf_client_secret_list_release(&list);
}

Test(store, client_secret_use_counts_and_limits)
{
    struct cf_identity a;
    struct cf_client_secret limited, open, got;
    char unknown[CF_UUID_LEN];

    make_identity("a", 0, &a);
    make_client_secret(a.id, "limited", 2, 1000, &limited);
    make_client_secret(a.id, "open", 0, 1000, &open);
    cr_assert_eq(cf_store_client_secret_use(st, limited.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_client_secret_use(st, limited.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_client_secret_use(st, limited.id, &err), CF_ECONFLICT);
    cr_assert(strstr(err.msg, "use limit of 2"), "%s", err.msg);
    cr_assert_eq(cf_store_client_secret_get(st, a.id, limited.id, &got, &err), CF_OK);
    cr_assert_eq(got.num_uses, 2);

    for (int i = 0; i < 10; i++)
        cr_assert_eq(cf_store_client_secret_use(st, open.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_client_secret_get(st, a.id, open.id, &got, &err), CF_OK);
    cr_assert_eq(got.num_uses, 10);
    /* Revoked: refused, nothing counted. */
    cr_assert_eq(cf_store_client_secret_revoke(st, a.id, open.id, &err), CF_OK);
    cr_assert_eq(cf_store_client_secret_use(st, open.id, &err), CF_ECONFLICT);
    cr_assert(strstr(err.msg, "revoked"), "%s", err.msg);
    cr_assert_eq(cf_store_client_secret_get(st, a.id, open.id, &got, &err), CF_OK);
    cr_assert_eq(got.num_uses, 10);

    cf_uuid_new(unknown);
    cr_assert_eq(cf_store_client_secret_use(st, unknown, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, unknown), "%s", err.msg);
    /* Nothing is left open: a write goes through at once. */
    cr_assert_eq(cf_store_meta_put(st, "k", (const uint8_t *)"v", 1, &err), CF_OK, "%s", err.msg);
}

/* A token whose identity or client secret is missing is refused naming which. */
Test(store, token_create_names_what_is_missing)
{
    struct cf_identity a;
    struct cf_access_token t = {0};
    char unknown[CF_UUID_LEN], expected[128];

    make_identity("a", 0, &a);
    cf_uuid_new(unknown);
    cf_uuid_new(t.id);
    snprintf(t.identity_id, sizeof(t.identity_id), "%s", unknown);
    snprintf(t.auth_method, sizeof(t.auth_method), "universal-auth");
    fill_hash(t.hash, 0x81);
    cr_assert_eq(cf_store_token_create(st, &t, &err), CF_ENOTFOUND);
    snprintf(expected, sizeof(expected), "identity with id '%s' not found", unknown);
    cr_assert_str_eq(err.msg, expected);

    snprintf(t.identity_id, sizeof(t.identity_id), "%s", a.id);
    snprintf(t.client_secret_id, sizeof(t.client_secret_id), "%s", unknown);
    cr_assert_eq(cf_store_token_create(st, &t, &err), CF_ENOTFOUND);
    snprintf(expected, sizeof(expected), "client secret with id '%s' not found", unknown);
    cr_assert_str_eq(err.msg, expected);
    cr_assert_eq(cf_store_token_get(st, t.id, &t, &err), CF_ENOTFOUND);
}

Test(store, access_tokens)
{
    struct cf_identity a;
    struct cf_client_secret secret;
    struct cf_access_token *t, *unlimited, *got;
    char unknown[CF_UUID_LEN];

    make_identity("a", 0, &a);
    make_client_secret(a.id, "s", 0, 1000, &secret);
    t = new_token(a.id, secret.id, 2);
    unlimited = new_token(a.id, "", 0);
    got = calloc(1, sizeof(*got));
    cr_assert_not_null(got);

    /* Read with the token: the state of its client secret. */
    t->client_secret_found = true;
    t->client_secret_expires_at = secret.expires_at;
    cr_assert_eq(cf_store_token_get(st, t->id, got, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(memcmp(got, t, sizeof(*t)), 0); /* every field */
    cr_assert_eq(cf_store_token_get(st, unlimited->id, got, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(got->client_secret_id, "");
    cr_assert_eq(got->last_renewed_at, 0);
    cr_assert(!got->client_secret_found);

    /* Uses. */
    cr_assert_eq(cf_store_token_use(st, t->id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_token_use(st, t->id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_token_use(st, t->id, &err), CF_ECONFLICT);
    cr_assert(strstr(err.msg, "use limit of 2"), "%s", err.msg);
    cr_assert_eq(cf_store_token_get(st, t->id, got, &err), CF_OK);
    cr_assert_eq(got->num_uses, 2);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(cf_store_token_use(st, unlimited->id, &err), CF_OK, "%s", err.msg);

    /* Renewing. */
    cr_assert_eq(cf_store_token_renew(st, unlimited->id, 123456, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_token_get(st, unlimited->id, got, &err), CF_OK);
    cr_assert_eq(got->last_renewed_at, 123456);
    cr_assert_eq(got->created_at, 5000);
    cr_assert_eq(got->num_uses, 5);

    /* Revoking: idempotent; a revoked token can no longer be used. */
    cr_assert_eq(cf_store_token_revoke(st, unlimited->id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_token_revoke(st, unlimited->id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_token_get(st, unlimited->id, got, &err), CF_OK);
    cr_assert(got->revoked);
    cr_assert_eq(cf_store_token_use(st, unlimited->id, &err), CF_ECONFLICT);
    cr_assert(strstr(err.msg, "revoked"), "%s", err.msg);
    cr_assert_eq(cf_store_token_get(st, t->id, got, &err), CF_OK);
    cr_assert(!got->revoked);

    /* Unknown ids. */
    cf_uuid_new(unknown);
    cr_assert_eq(cf_store_token_get(st, unknown, got, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, unknown), "%s", err.msg);
    cr_assert_eq(cf_store_token_use(st, unknown, &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_token_renew(st, unknown, 1, &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_token_revoke(st, unknown, &err), CF_ENOTFOUND);

    /* Creating: duplicate id, unknown identity. */
    cr_assert_eq(cf_store_token_create(st, t, &err), CF_EEXIST);
    cf_uuid_new(t->id);
    cf_uuid_new(t->identity_id);
    cr_assert_eq(cf_store_token_create(st, t, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, t->identity_id), "%s", err.msg);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM identity_access_tokens"), 2);
    free(t);
    free(unlimited);
    free(got);
}

/* A token follows its client secret (revoked, deleted) and its auth method (removed). */
Test(store, token_credential_state)
{
    struct cf_identity a;
    struct cf_client_secret secret, other;
    struct cf_access_token *t, *t_other, *jwt, *got;
    struct cf_ua_config *ua;

    make_identity("a", 0, &a);
    ua = new_ua(a.id);
    cr_assert_eq(cf_store_ua_attach(st, ua, &err), CF_OK, "%s", err.msg);
    make_client_secret(a.id, "s", 0, 1000, &secret);
    make_client_secret(a.id, "o", 0, 1000, &other);
    t = new_token(a.id, secret.id, 0);
    t_other = new_token(a.id, other.id, 0);
    jwt = new_token(a.id, "", 0);
    got = calloc(1, sizeof(*got));
    cr_assert_not_null(got);
    char sql[256];
    snprintf(sql, sizeof(sql),
             "UPDATE identity_access_tokens SET auth_method = 'jwt-auth' WHERE id = '%s'", jwt->id);
    raw_exec(sql);

    cr_assert_eq(cf_store_client_secret_revoke(st, a.id, secret.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_token_get(st, t->id, got, &err), CF_OK, "%s", err.msg);
    cr_assert(got->client_secret_found && got->client_secret_revoked);
    cr_assert_eq(got->client_secret_expires_at, secret.expires_at);
    cr_assert_eq(cf_store_token_get(st, t_other->id, got, &err), CF_OK, "%s", err.msg);
    cr_assert(got->client_secret_found && !got->client_secret_revoked);
    snprintf(sql, sizeof(sql), "DELETE FROM identity_client_secrets WHERE id = '%s'", secret.id);
    raw_exec(sql);
    cr_assert_eq(cf_store_token_get(st, t->id, got, &err), CF_OK, "%s", err.msg);
    cr_assert(!got->client_secret_found && !got->client_secret_revoked);

    /* Removing universal auth takes its tokens and secrets, not the JWT-auth token. */
    cr_assert_eq(cf_store_auth_method_remove(st, a.id, "universal-auth", &err), CF_OK, "%s",
                 err.msg);
    cr_assert_eq(cf_store_token_get(st, t_other->id, got, &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_token_get(st, t->id, got, &err), CF_ENOTFOUND);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM identity_client_secrets"), 0);
    cr_assert_eq(cf_store_token_get(st, jwt->id, got, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_auth_method_remove(st, a.id, "universal-auth", &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_auth_method_remove(st, a.id, "jwt-auth", &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_token_get(st, jwt->id, got, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_auth_method_remove(st, a.id, "magic", &err), CF_EINVAL);
    free(ua);
    free(t);
    free(t_other);
    free(jwt);
    free(got);
}

/* Membership rules used below: every field at its maximum length, empty fields, NUL-free bytes. */
static void fill_rules(struct cf_membership_rule rules[3])
{
    memset(rules, 0, 3 * sizeof(*rules));
    rules[0].actions = 1u << 1 | 1u << 2;
    snprintf(rules[0].env_id, sizeof(rules[0].env_id), "0c6e2b1a-52f4-4e0b-9f5e-6d3c2a1b0f9e");
    snprintf(rules[0].path_glob, sizeof(rules[0].path_glob), "/backend/**");
    rules[1].actions = 0xffffffffu;
    memset(rules[1].env_id, 'e', CF_UUID_LEN - 1);
    memset(rules[1].path_glob, 'p', CF_PATH_MAX);
    rules[1].path_glob[0] = '/';
    rules[2].actions = 1u << 1;
}

static void assert_rules_eq(const struct cf_membership *m, const struct cf_membership_rule *rules,
                            size_t n)
{
    cr_assert_eq(m->n_rules, n);
    if (n == 0) {
        cr_assert_null(m->rules);
        return;
    }
    cr_assert_not_null(m->rules);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(m->rules[i].actions, rules[i].actions, "rule %zu", i);
        cr_assert_str_eq(m->rules[i].env_id, rules[i].env_id, "rule %zu", i);
        cr_assert_str_eq(m->rules[i].env_slug, "", "rule %zu: the store keeps no slug", i);
        cr_assert_str_eq(m->rules[i].path_glob, rules[i].path_glob, "rule %zu", i);
    }
}

static void fill_membership(struct cf_membership *m, const char *identity_id,
                            const char *project_id, const char *role, int64_t at)
{
    memset(m, 0, sizeof(*m));
    cf_uuid_new(m->id);
    snprintf(m->identity_id, sizeof(m->identity_id), "%s", identity_id);
    snprintf(m->project_id, sizeof(m->project_id), "%s", project_id);
    snprintf(m->role, sizeof(m->role), "%s", role);
    m->created_at = at;
    m->updated_at = at;
}

Test(store, memberships_upsert_with_rules)
{
    struct cf_project p, q;
    struct cf_identity a, b;
    struct cf_membership_rule rules[3];
    struct cf_membership m, again, got;
    struct cf_membership_list list;

    make_project("p", &p, NULL);
    make_project("q", &q, NULL);
    make_identity("a", 0, &a);
    make_identity("b", 0, &b);
    fill_rules(rules);

    cr_assert_eq(cf_store_membership_get(st, a.id, p.id, &got, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, a.id) && strstr(err.msg, p.id), "%s", err.msg);

    fill_membership(&m, a.id, p.id, "member", 1000);
    m.rules = rules;
    m.n_rules = 3;
    cr_assert_eq(cf_store_membership_put(st, &m, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_membership_get(st, a.id, p.id, &got, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(got.id, m.id);
    cr_assert_str_eq(got.identity_id, a.id);
    cr_assert_str_eq(got.project_id, p.id);
    cr_assert_str_eq(got.role, "member");
    cr_assert_eq(got.created_at, 1000);
    cr_assert_eq(got.updated_at, 1000);
    assert_rules_eq(&got, rules, 3);
    cf_membership_release(&got);

    /* Replacing, even under another id: the row keeps its id and creation time, takes the new role
     * and rules. */
    fill_membership(&again, a.id, p.id, "viewer", 5000);
    again.rules = &rules[2];
    again.n_rules = 1;
    cr_assert_eq(cf_store_membership_put(st, &again, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_membership_get(st, a.id, p.id, &got, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(got.id, m.id);
    cr_assert_str_eq(got.role, "viewer");
    cr_assert_eq(got.created_at, 1000);
    cr_assert_eq(got.updated_at, 5000);
    assert_rules_eq(&got, &rules[2], 1);
    cf_membership_release(&got);
    /* Without rules. */
    again.rules = NULL;
    again.n_rules = 0;
    snprintf(again.role, sizeof(again.role), "admin");
    cr_assert_eq(cf_store_membership_put(st, &again, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_membership_get(st, a.id, p.id, &got, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(got.role, "admin");
    assert_rules_eq(&got, NULL, 0);
    cf_membership_release(&got);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM identity_memberships"), 1);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM identity_memberships WHERE rules IS NULL"), 1);

    /* More memberships, then the lists. */
    fill_membership(&m, a.id, q.id, "no-access", 2000);
    cr_assert_eq(cf_store_membership_put(st, &m, &err), CF_OK, "%s", err.msg);
    fill_membership(&m, b.id, p.id, "member", 3000);
    m.rules = rules;
    m.n_rules = 2;
    cr_assert_eq(cf_store_membership_put(st, &m, &err), CF_OK, "%s", err.msg);

    cr_assert_eq(cf_store_membership_list(st, a.id, NULL, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, 2);
    cr_assert_str_eq(list.items[0].project_id, p.id);
    cr_assert_str_eq(list.items[1].project_id, q.id);
    cr_assert_str_eq(list.items[1].role, "no-access");
    cf_membership_list_release(&list);
    cr_assert_eq(cf_store_membership_list(st, NULL, p.id, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, 2);
    cr_assert_str_eq(list.items[0].identity_id, a.id);
    cr_assert_str_eq(list.items[1].identity_id, b.id);
    assert_rules_eq(&list.items[1], rules, 2);
    cf_membership_list_release(&list);
    cr_assert_eq(cf_store_membership_list(st, b.id, q.id, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, 0);
    cf_membership_list_release(&list);
    cr_assert_eq(cf_store_membership_list(st, b.id, p.id, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, 1);
    cf_membership_list_release(&list);
    cr_assert_eq(cf_store_membership_list(st, NULL, NULL, &list, &err), CF_EINVAL);

    /* Deleting. */
    cr_assert_eq(cf_store_membership_delete(st, a.id, q.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_membership_delete(st, a.id, q.id, &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_membership_get(st, a.id, q.id, &got, &err), CF_ENOTFOUND);

    /* Unknown identity or project: named. */
    fill_membership(&m, a.id, a.id, "member", 0);
    cr_assert_eq(cf_store_membership_put(st, &m, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, "project"), "%s", err.msg);
    fill_membership(&m, p.id, p.id, "member", 0);
    cr_assert_eq(cf_store_membership_put(st, &m, &err), CF_ENOTFOUND);
    cr_assert(strstr(err.msg, "identity"), "%s", err.msg);
    /* Rules claimed but missing; an unterminated rule field. */
    fill_membership(&m, a.id, q.id, "member", 0);
    m.n_rules = 1;
    cr_assert_eq(cf_store_membership_put(st, &m, &err), CF_EINVAL);
    memset(rules[0].env_id, 'x', sizeof(rules[0].env_id));
    m.rules = rules;
    cr_assert_eq(cf_store_membership_put(st, &m, &err), CF_EINVAL);
    /* A rule naming its environment by slug alone would cover every environment: refused. */
    fill_rules(rules);
    rules[0].env_id[0] = '\0';
    snprintf(rules[0].env_slug, sizeof(rules[0].env_slug), "staging");
    cr_assert_eq(cf_store_membership_put(st, &m, &err), CF_EINVAL);
    cr_assert(strstr(err.msg, "staging"), "%s", err.msg);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM identity_memberships"), 2);
}

Test(store, membership_with_unreadable_rules)
{
    struct cf_project p;
    struct cf_identity a;
    struct cf_membership m, got;
    static const char *const corrupt[] = {
        "x'03'",                                             /* unknown format */
        "x'02'",                                             /* no rules, yet not NULL */
        "x'01'",                                             /* no rules, yet not NULL */
        "x'0100000002'",                                     /* truncated header */
        "x'01000000020105'",                                 /* lengths past the end */
        "CAST(x'0100000002410000' || zeroblob(65) AS BLOB)", /* slug over CF_SLUG_MAX */
        "CAST(x'0200000002250000' || zeroblob(37) AS BLOB)", /* id over 36 characters */
        "x''",
    };

    make_project("p", &p, NULL);
    make_identity("a", 0, &a);
    fill_membership(&m, a.id, p.id, "member", 0);
    cr_assert_eq(cf_store_membership_put(st, &m, &err), CF_OK, "%s", err.msg);
    for (size_t i = 0; i < CF_ARRAY_SIZE(corrupt); i++) {
        char sql[256];
        snprintf(sql, sizeof(sql), "UPDATE identity_memberships SET rules = %s", corrupt[i]);
        raw_exec(sql);
        cr_assert_eq(cf_store_membership_get(st, a.id, p.id, &got, &err), CF_ESTORE, "%s",
                     corrupt[i]);
        cr_assert_null(got.rules);
        cr_assert(strstr(err.msg, "cannot read"), "%s", err.msg);
    }
    /* A valid encoding written by hand decodes: read + delete, env "e", glob "/g". */
    raw_exec("UPDATE identity_memberships SET rules = x'0100000012010002652f67'");
    cr_assert_eq(cf_store_membership_get(st, a.id, p.id, &got, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(got.n_rules, 1);
    cr_assert_eq(got.rules[0].actions, 0x12);
    cr_assert_str_eq(got.rules[0].env_slug, "e");
    /* the legacy format names a slug: it covers nothing until cf_store_open binds it */
    cr_assert_str_eq(got.rules[0].env_id, CF_RULE_ENV_UNRESOLVED);
    cr_assert_str_eq(got.rules[0].path_glob, "/g");
    cf_membership_release(&got);
}

/* Rows for over_long_text_is_an_error_not_cut, and readers of one text field of each. */
struct long_text_rows {
    struct cf_project project;
    struct cf_env envs[3];
    struct cf_identity identity;
};

static enum cf_rc read_project_name(const struct long_text_rows *r, char *out, size_t size)
{
    struct cf_project got;
    enum cf_rc rc = cf_store_project_get(st, r->project.id, &got, &err);
    if (rc == CF_OK)
        snprintf(out, size, "%s", got.name);
    cf_project_release(&got);
    return rc;
}

static enum cf_rc list_projects(void)
{
    struct cf_project_list l = {0};
    enum cf_rc rc = cf_store_project_list(st, &l, &err);
    cf_project_list_release(&l);
    return rc;
}

static enum cf_rc read_folder_description(const struct long_text_rows *r, char *out, size_t size)
{
    struct cf_folder got;
    enum cf_rc rc = cf_store_folder_get(st, r->envs[0].id, "/", &got, &err);
    if (rc == CF_OK)
        snprintf(out, size, "%s", got.description);
    return rc;
}

static enum cf_rc read_identity_name(const struct long_text_rows *r, char *out, size_t size)
{
    struct cf_identity got;
    enum cf_rc rc = cf_store_identity_get(st, r->identity.id, &got, &err);
    if (rc == CF_OK)
        snprintf(out, size, "%s", got.name);
    return rc;
}

static enum cf_rc list_identities(void)
{
    struct cf_identity_list l = {0};
    enum cf_rc rc = cf_store_identity_list(st, &l, &err);
    cf_identity_list_release(&l);
    return rc;
}

/* Sets column of every row of table to len copies of fill, with SQL. */
static void set_text(const char *table, const char *column, char fill, size_t len)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "UPDATE %s SET %s = CAST(replace(hex(zeroblob(%zu)), '00', '%c') AS TEXT)", table,
             column, len, fill);
    raw_exec(sql);
}

/* A stored text longer than the field it is read into is an error naming the column and both
 * sizes, never a value cut to fit; one that just fits still reads whole. Written with SQL, as a
 * hand edit or another program could leave it. */
Test(store, over_long_text_is_an_error_not_cut)
{
    static const struct {
        const char *table, *column;
        size_t max;
        enum cf_rc (*read)(const struct long_text_rows *r, char *out, size_t size);
        enum cf_rc (*list)(void); /* NULL: no list reads the column */
    } cases[] = {
        {"projects", "name", CF_NAME_MAX, read_project_name, list_projects},
        {"folders", "description", CF_DESC_MAX, read_folder_description, NULL},
        {"identities", "name", CF_NAME_MAX, read_identity_name, list_identities},
    };
    struct long_text_rows r;
    char value[CF_DESC_MAX + 2], sizes[128];

    make_project("p", &r.project, r.envs);
    make_identity("a", 0, &r.identity);
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        set_text(cases[i].table, cases[i].column, 'v', cases[i].max);
        cr_assert_eq(cases[i].read(&r, value, sizeof(value)), CF_OK, "%s", err.msg);
        cr_assert_eq(strlen(value), cases[i].max, "%s.%s", cases[i].table, cases[i].column);

        set_text(cases[i].table, cases[i].column, 'w', cases[i].max + 1);
        memset(&err, 0, sizeof(err));
        value[0] = '\0';
        cr_assert_eq(cases[i].read(&r, value, sizeof(value)), CF_ESTORE, "%s.%s: %s",
                     cases[i].table, cases[i].column, err.msg);
        cr_assert_str_empty(value);
        snprintf(sizes, sizeof(sizes), "column '%s' holds %zu bytes of text, more than the %zu",
                 cases[i].column, cases[i].max + 1, cases[i].max);
        cr_assert(strstr(err.msg, sizes), "%s", err.msg);
        cr_assert_null(strstr(err.msg, "www"), "the value is not in the message: %s", err.msg);
        if (cases[i].list)
            cr_assert_eq(cases[i].list(), CF_ESTORE, "%s: %s", cases[i].table, err.msg);

        set_text(cases[i].table, cases[i].column, 'x', 1); /* readable for the next case */
    }
}

/* Stores written before rules were bound by environment id: opening binds each slug to the id of
 * the environment that bore it then, so a later rename cannot hand the rule another environment. */
Test(store, legacy_rules_are_bound_to_environment_ids_at_open)
{
    struct cf_project p;
    struct cf_env envs[3];
    struct cf_identity a;
    struct cf_membership m, got;

    make_project("p", &p, envs);
    make_identity("a", 0, &a);
    fill_membership(&m, a.id, p.id, "viewer", 0);
    cr_assert_eq(cf_store_membership_put(st, &m, &err), CF_OK, "%s", err.msg);
    /* read on "staging" /g; read on "gone" (no such environment); read anywhere */
    raw_exec("UPDATE identity_memberships SET rules = x'01"
             "00000002"
             "07"
             "0002"
             "73746167696e67"
             "2f67"
             "00000002"
             "04"
             "0000"
             "676f6e65"
             "00000002"
             "00"
             "0000'");
    cf_store_close(st);
    st = open_store(db_path);
    cr_assert_eq(cf_store_membership_get(st, a.id, p.id, &got, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(got.n_rules, 3);
    cr_assert_str_eq(got.rules[0].env_id, envs[1].id);
    cr_assert_str_eq(got.rules[0].env_slug, "");
    cr_assert_str_eq(got.rules[0].path_glob, "/g");
    cr_assert_str_eq(got.rules[1].env_id, CF_RULE_ENV_UNRESOLVED);
    cr_assert_str_eq(got.rules[2].env_id, "");
    cr_assert_eq(got.rules[2].actions, 2);
    cf_membership_release(&got);
    cr_assert_eq(
        raw_count("SELECT COUNT(*) FROM identity_memberships WHERE substr(rules, 1, 1) = x'02'"),
        1);
    /* Bound once: opening again changes nothing. */
    cf_store_close(st);
    st = open_store(db_path);
    cr_assert_eq(cf_store_membership_get(st, a.id, p.id, &got, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(got.rules[0].env_id, envs[1].id);
    cf_membership_release(&got);
    /* A damaged rules column is no reason to refuse the store: that membership stays unreadable. */
    raw_exec("UPDATE identity_memberships SET rules = x'0100000002'");
    cf_store_close(st);
    st = open_store(db_path);
    cr_assert_eq(cf_store_membership_get(st, a.id, p.id, &got, &err), CF_ESTORE);
}

Test(store, deleting_identity_or_project_cascades)
{
    struct cf_project p, q;
    struct cf_identity a, b;
    struct cf_client_secret sa, sb;
    struct cf_ua_config *ua_a, *ua_b;
    struct cf_access_token *ta, *tb, *got;
    struct cf_membership m;
    struct cf_membership_rule rules[3];
    struct cf_membership_list list;

    make_project("p", &p, NULL);
    make_project("q", &q, NULL);
    make_identity("a", 0, &a);
    make_identity("b", 0, &b);
    ua_a = new_ua(a.id);
    ua_b = new_ua(b.id);
    cr_assert_eq(cf_store_ua_attach(st, ua_a, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_ua_attach(st, ua_b, &err), CF_OK, "%s", err.msg);
    make_client_secret(a.id, "sa", 0, 1, &sa);
    make_client_secret(b.id, "sb", 0, 1, &sb);
    ta = new_token(a.id, sa.id, 0);
    tb = new_token(b.id, sb.id, 0);
    fill_rules(rules);
    const char *const ids[] = {a.id, b.id};
    const char *const projects[] = {p.id, q.id};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            fill_membership(&m, ids[i], projects[j], "member", 0);
            m.rules = rules;
            m.n_rules = 3;
            cr_assert_eq(cf_store_membership_put(st, &m, &err), CF_OK, "%s", err.msg);
        }

    cr_assert_eq(cf_store_identity_delete(st, a.id, &err), CF_OK, "%s", err.msg);
    got = calloc(1, sizeof(*got));
    cr_assert_not_null(got);
    /* Its token stops working at once: the record is gone. */
    cr_assert_eq(cf_store_token_get(st, ta->id, got, &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_token_use(st, ta->id, &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_ua_get_by_client_id(st, ua_a->client_id, ua_a, &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_client_secret_use(st, sa.id, &err), CF_ENOTFOUND);
    cr_assert_eq(cf_store_membership_list(st, a.id, NULL, &list, &err), CF_OK);
    cr_assert_eq(list.n, 0);
    cf_membership_list_release(&list);
    /* The other identity keeps everything. */
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM identity_universal_auths"), 1);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM identity_client_secrets"), 1);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM identity_access_tokens"), 1);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM identity_memberships"), 2);
    cr_assert_eq(cf_store_token_get(st, tb->id, got, &err), CF_OK, "%s", err.msg);

    /* Deleting a project takes its memberships along, not the identity's others. */
    cr_assert_eq(cf_store_project_delete(st, p.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_membership_list(st, b.id, NULL, &list, &err), CF_OK);
    cr_assert_eq(list.n, 1);
    cr_assert_str_eq(list.items[0].project_id, q.id);
    cf_membership_list_release(&list);
    cr_assert_eq(cf_store_identity_delete(st, b.id, &err), CF_OK, "%s", err.msg);
    const char *tables[] = {"identities", "identity_universal_auths", "identity_client_secrets",
                            "identity_access_tokens", "identity_memberships"};
    for (size_t i = 0; i < CF_ARRAY_SIZE(tables); i++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", tables[i]);
        cr_assert_eq(raw_count(sql), 0, "%s", tables[i]);
    }
    free(ua_a);
    free(ua_b);
    free(ta);
    free(tb);
    free(got);
}

Test(store, identities_migration_applies_to_an_existing_database)
{
    struct cf_project p;
    struct cf_identity a;
    struct cf_project got;

    /* A database at schema version 1, with data. */
    make_project("p", &p, NULL);
    cf_store_close(st);
    st = NULL;
    raw_exec(
        "DROP TRIGGER projects_insert_lookups; DROP TRIGGER projects_update_lookups;"
        " DROP TRIGGER projects_delete_lookups; DROP TRIGGER environments_insert_lookups;"
        " DROP TRIGGER environments_update_lookups; DROP TRIGGER environments_delete_lookups;"
        " DROP TRIGGER folders_insert_lookups; DROP TRIGGER folders_update_lookups;"
        " DROP TRIGGER folders_delete_lookups; DROP TABLE change_counters;"
        " DROP TRIGGER secrets_insert_content; DROP TRIGGER secrets_update_content;"
        " DROP TRIGGER secrets_delete_content; DROP TRIGGER secret_versions_insert_content;"
        " DROP TRIGGER secret_versions_update_content;"
        " DROP TRIGGER secret_versions_delete_content; DROP TRIGGER secret_imports_insert_content;"
        " DROP TRIGGER secret_imports_update_content;"
        " DROP TRIGGER secret_imports_delete_content; DROP TRIGGER tags_insert_content;"
        " DROP TRIGGER tags_update_content; DROP TRIGGER tags_delete_content;"
        " DROP TRIGGER folders_insert_content; DROP TRIGGER folders_update_content;"
        " DROP TRIGGER folders_delete_content; DROP TRIGGER environments_insert_content;"
        " DROP TRIGGER environments_update_content; DROP TRIGGER environments_delete_content;"
        " DROP TRIGGER projects_insert_content; DROP TRIGGER projects_update_content;"
        " DROP TRIGGER projects_delete_content;"
        " DROP TRIGGER meta_insert_lookups; DROP TRIGGER meta_update_lookups;"
        " DROP TRIGGER meta_delete_lookups;"
        " DROP TABLE mfa_tickets; DROP TABLE user_recovery_codes; DROP TABLE user_totp;"
        " DROP TABLE scim_users; DROP TABLE scim_tokens;"
        " DROP TABLE secret_leaks; DROP TABLE dynamic_leases; DROP TABLE dynamic_secrets;"
        " DROP TABLE access_requests; DROP TABLE change_request_reviews; DROP TABLE "
        "change_request_items;"
        " DROP TABLE change_requests; DROP TABLE approval_policy_approvers;"
        " DROP TABLE approval_policies; DROP TABLE group_memberships;"
        " DROP TABLE user_group_members; DROP TABLE user_groups;"
        " DROP TABLE user_memberships; DROP TABLE user_sessions;"
        " DROP TABLE personal_access_tokens; DROP TABLE users;"
        " DROP TABLE rotation_history; DROP TABLE rotations;"
        " DROP TABLE sync_items; DROP TABLE syncs; DROP TABLE app_connections;"
        " DROP TABLE identity_kubernetes_auths; DROP TABLE identity_jwt_auths;"
        " DROP TABLE identity_memberships;"
        " DROP TABLE identity_access_tokens; DROP TABLE identity_client_secrets;"
        " DROP TABLE identity_universal_auths; DROP TABLE identities;"
        " DROP TABLE audit_events; DROP TABLE audit_contexts; DROP TABLE audit_checkpoints;"
        " DROP TABLE audit_key_sets;"
        " DROP TABLE audit_archive_state; DROP TABLE audit_last_reads;"
        " DROP TABLE notices; DROP TABLE notification_channels;"
        " DROP TABLE notification_settings; DROP TABLE sso_logins;"
        " DROP INDEX secret_versions_expires; DROP INDEX secret_versions_reminder;"
        " ALTER TABLE secret_versions DROP COLUMN reminder_repeat_days;"
        " ALTER TABLE secret_versions DROP COLUMN reminder_note;"
        " DELETE FROM schema_migrations WHERE version >= 2");
    st = open_store(db_path);
    cr_assert_eq(raw_count("SELECT MAX(version) FROM schema_migrations"),
                 (long long)cf_store_migrations_n);
    cr_assert_eq(cf_store_project_get(st, "p", &got, &err), CF_OK, "%s", err.msg);
    cf_project_release(&got);
    make_identity("a", 0, &a);
}

/* ---- use limits under concurrency ---- */

enum { USE_THREADS = 4, USE_ATTEMPTS = 30, USE_LIMIT = 50 };

struct user {
    pthread_t thread;
    enum cf_rc (*use)(struct cf_store *st, const char *id, struct cf_err *err);
    const char *id;
    int ok, conflicts, failures;
    char failure[CF_ERR_MSG_MAX];
};

static enum cf_rc use_client_secret(struct cf_store *s, const char *id, struct cf_err *e)
{
    return cf_store_client_secret_use(s, id, e);
}

static enum cf_rc use_token(struct cf_store *s, const char *id, struct cf_err *e)
{
    return cf_store_token_use(s, id, e);
}

static void *user_main(void *arg)
{
    struct user *u = arg;
    struct cf_err e;
    for (int i = 0; i < USE_ATTEMPTS; i++) {
        enum cf_rc rc = u->use(st, u->id, &e);
        if (rc == CF_OK)
            u->ok++;
        else if (rc == CF_ECONFLICT)
            u->conflicts++;
        else if (!u->failures++)
            snprintf(u->failure, sizeof(u->failure), "%s", e.msg);
    }
    return NULL;
}

/* USE_THREADS threads make USE_ATTEMPTS uses each (120) of a credential allowing USE_LIMIT (50):
 * exactly USE_LIMIT succeed, the rest are refused, the counter stops at the limit. */
static void race_uses(enum cf_rc (*use)(struct cf_store *, const char *, struct cf_err *),
                      const char *id)
{
    struct user users[USE_THREADS];
    int ok = 0, conflicts = 0;
    for (int i = 0; i < USE_THREADS; i++) {
        users[i] = (struct user){.use = use, .id = id};
        cr_assert_eq(pthread_create(&users[i].thread, NULL, user_main, &users[i]), 0);
    }
    for (int i = 0; i < USE_THREADS; i++) {
        pthread_join(users[i].thread, NULL);
        cr_expect_eq(users[i].failures, 0, "thread %d: %s", i, users[i].failure);
        ok += users[i].ok;
        conflicts += users[i].conflicts;
    }
    cr_assert_eq(ok, USE_LIMIT, "%d uses succeeded", ok);
    cr_assert_eq(conflicts, USE_THREADS * USE_ATTEMPTS - USE_LIMIT);
}

Test(store, concurrent_client_secret_uses_never_exceed_the_limit)
{
    struct cf_identity a;
    struct cf_client_secret s, got;
    make_identity("a", 0, &a);
    make_client_secret(a.id, "raced", USE_LIMIT, 1, &s);
    race_uses(use_client_secret, s.id);
    cr_assert_eq(cf_store_client_secret_get(st, a.id, s.id, &got, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(got.num_uses, USE_LIMIT);
}

/* A login: a new access token issued through client secret id, which counts one of its uses in
 * the group commit of tokens.c (several logins of one secret in a batch are counted together). */
static char login_identity[CF_UUID_LEN];

static enum cf_rc use_by_login(struct cf_store *s, const char *id, struct cf_err *e)
{
    struct cf_access_token t = {.ttl = 3600, .max_ttl = 86400, .created_at = 5000};
    cf_uuid_new(t.id);
    cf_strlcpy(t.identity_id, login_identity, sizeof(t.identity_id));
    cf_strlcpy(t.client_secret_id, id, sizeof(t.client_secret_id));
    cf_strlcpy(t.auth_method, "universal-auth", sizeof(t.auth_method));
    return cf_store_token_create(s, &t, e);
}

Test(store, concurrent_logins_never_exceed_the_client_secret_limit)
{
    struct cf_identity a;
    struct cf_client_secret s, got;
    make_identity("a", 0, &a);
    cf_strlcpy(login_identity, a.id, sizeof(login_identity));
    make_client_secret(a.id, "raced", USE_LIMIT, 1, &s);
    race_uses(use_by_login, s.id);
    cr_assert_eq(cf_store_client_secret_get(st, a.id, s.id, &got, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(got.num_uses, USE_LIMIT);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM identity_access_tokens"), USE_LIMIT);
}

/* Without a limit every login counts, exactly, whether its batch counted it alone or with others.
 */
Test(store, concurrent_logins_counted_exactly_without_a_limit)
{
    struct cf_identity a;
    struct cf_client_secret s, got;
    struct user users[USE_THREADS];
    make_identity("a", 0, &a);
    cf_strlcpy(login_identity, a.id, sizeof(login_identity));
    make_client_secret(a.id, "unlimited", 0, 1, &s);
    for (int i = 0; i < USE_THREADS; i++) {
        users[i] = (struct user){.use = use_by_login, .id = s.id};
        cr_assert_eq(pthread_create(&users[i].thread, NULL, user_main, &users[i]), 0);
    }
    for (int i = 0; i < USE_THREADS; i++) {
        pthread_join(users[i].thread, NULL);
        cr_assert_eq(users[i].ok, USE_ATTEMPTS, "thread %d: %s", i, users[i].failure);
    }
    cr_assert_eq(cf_store_client_secret_get(st, a.id, s.id, &got, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(got.num_uses, USE_THREADS * USE_ATTEMPTS);
    /* A revoked secret is refused even to a batch. */
    cr_assert_eq(cf_store_client_secret_revoke(st, a.id, s.id, &err), CF_OK, "%s", err.msg);
    cr_assert_neq(use_by_login(st, s.id, &err), CF_OK);
}

Test(store, concurrent_token_uses_never_exceed_the_limit)
{
    struct cf_identity a;
    struct cf_access_token *t, *got;
    make_identity("a", 0, &a);
    t = new_token(a.id, "", USE_LIMIT);
    race_uses(use_token, t->id);
    got = calloc(1, sizeof(*got));
    cr_assert_not_null(got);
    cr_assert_eq(cf_store_token_get(st, t->id, got, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(got->num_uses, USE_LIMIT);
    free(t);
    free(got);
}

/* ---- notifications ---- */

Test(store, a_notice_is_claimed_once)
{
    struct cf_channel ch = {0};
    struct cf_notice n = {0};
    bool created = false;
    cf_uuid_new(ch.id);
    snprintf(ch.type, sizeof(ch.type), "webhook");
    snprintf(ch.name, sizeof(ch.name), "hook");
    snprintf(ch.target, sizeof(ch.target), "https://example.com/hook");
    ch.created_at = 1;
    cr_assert_eq(cf_store_channel_create(st, &ch, &err), CF_OK, "%s", err.msg);
    cf_uuid_new(n.id);
    memcpy(n.channel_id, ch.id, sizeof(n.channel_id));
    snprintf(n.item_key, sizeof(n.item_key), "secret/abc/123");
    snprintf(n.threshold, sizeof(n.threshold), "7d");
    snprintf(n.message, sizeof(n.message), "secret \"K\" expires");
    snprintf(n.item, sizeof(n.item), "{}");
    n.created_at = 1000;
    cr_assert_eq(cf_store_notice_claim(st, &n, &created, &err), CF_OK, "%s", err.msg);
    cr_assert(created);
    /* Another scan (another server) with a new notice id for the same item, threshold and channel.
     */
    cf_uuid_new(n.id);
    cr_assert_eq(cf_store_notice_claim(st, &n, &created, &err), CF_OK, "%s", err.msg);
    cr_assert(!created, "the same notice was claimed twice");
    /* Another threshold is another notice. */
    snprintf(n.threshold, sizeof(n.threshold), "1d");
    cr_assert_eq(cf_store_notice_claim(st, &n, &created, &err), CF_OK, "%s", err.msg);
    cr_assert(created);
    struct cf_notice_list due = {0};
    cr_assert_eq(cf_store_notice_due(st, 2000, 10, &due, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(due.n, 2);
    cr_assert_str_eq(due.items[0].state, "pending");
    snprintf(due.items[0].state, sizeof(due.items[0].state), "delivered");
    due.items[0].attempts = 1;
    due.items[0].delivered_at = 1500;
    cr_assert_eq(cf_store_notice_update(st, &due.items[0], &err), CF_OK, "%s", err.msg);
    cf_notice_list_release(&due);
    cr_assert_eq(cf_store_notice_due(st, 2000, 10, &due, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(due.n, 1);
    cf_notice_list_release(&due);
    /* Removing the channel removes its notices. */
    cr_assert_eq(cf_store_channel_delete(st, ch.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_notice_list(st, NULL, NULL, 10, 0, &due, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(due.n, 0);
    cf_notice_list_release(&due);
}

/* Pruning ended access tokens: each deadline as auth/token.c checks it (TTL from the last renewal,
 * max TTL from creation, both capped by the server's maximum), revoked tokens by the same
 * deadlines, in batches of at most the limit, and again with nothing left. */
Test(store, tokens_prune)
{
    static const int64_t created = 5000, cutoff = 5000 + 3600 * 1000;
    static const struct {
        int64_t ttl, max_ttl;
        int64_t renewed_after_ms; /* 0: never renewed */
        bool revoked;
        bool ended; /* at cutoff, under a server maximum of a day */
    } cases[] = {
        {3600, 86400, 0, false, true},      /* its TTL ran out at the cutoff exactly */
        {3600, 86400, 1, false, false},     /* renewed: a millisecond left */
        {7200, 3600, 0, false, true},       /* a TTL above the max TTL is the max TTL */
        {0, 0, 0, false, false},            /* "none" is the server's maximum */
        {0, 3600, 0, false, true},          /* TTL "none" is the max TTL */
        {3600, 3600, 1000000, false, true}, /* renewed, but its max TTL is reached */
        {86400, 86400, 0, true, false},     /* revoked, still within its TTL: kept */
        {3600, 86400, 0, true, true},       /* revoked and ended */
        {100000, 100000, 0, false, false},  /* above the server's maximum: capped to a day */
    };
    struct cf_identity a;
    struct cf_access_token *tokens[CF_ARRAY_SIZE(cases)];
    struct cf_access_token got;
    char sql[512];
    int64_t deleted = -1, total = 0, ended = 0;

    make_identity("a", 0, &a);
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        tokens[i] = new_token(a.id, "", 0);
        snprintf(sql, sizeof(sql),
                 "UPDATE identity_access_tokens SET ttl = %lld, max_ttl = %lld,"
                 " last_renewed_at = %lld, revoked = %d, created_at = %lld WHERE id = '%s'",
                 (long long)cases[i].ttl, (long long)cases[i].max_ttl,
                 (long long)(cases[i].renewed_after_ms ? created + cases[i].renewed_after_ms : 0),
                 cases[i].revoked ? 1 : 0, (long long)created, tokens[i]->id);
        raw_exec(sql);
        ended += cases[i].ended ? 1 : 0;
    }
    do {
        cr_assert_eq(cf_store_tokens_prune(st, cutoff, 86400, 2, &deleted, &err), CF_OK, "%s",
                     err.msg);
        cr_assert(deleted >= 0 && deleted <= 2, "a batch of %lld", (long long)deleted);
        total += deleted;
    } while (deleted == 2);
    cr_assert_eq(total, ended);
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++)
        cr_assert_eq(cf_store_token_get(st, tokens[i]->id, &got, &err),
                     cases[i].ended ? CF_ENOTFOUND : CF_OK, "case %zu: %s", i, err.msg);
    /* Idempotent: what is left has not ended. */
    cr_assert_eq(cf_store_tokens_prune(st, cutoff, 86400, 100, &deleted, &err), CF_OK);
    cr_assert_eq(deleted, 0);
    /* A lower server maximum (an hour) caps every max TTL, "none" and those above it included:
     * every token left was created an hour before the cutoff, so all have ended. */
    cr_assert_eq(cf_store_tokens_prune(st, cutoff, 3600, 100, &deleted, &err), CF_OK);
    cr_assert_eq(deleted, (int64_t)CF_ARRAY_SIZE(cases) - ended);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM identity_access_tokens"), 0);
    /* Refused: no maximum, no batch. */
    cr_assert_eq(cf_store_tokens_prune(st, cutoff, 0, 100, &deleted, &err), CF_EINVAL);
    cr_assert_eq(cf_store_tokens_prune(st, cutoff, 3600, 0, &deleted, &err), CF_EINVAL);
    cr_assert(strstr(err.msg, "batch"), "%s", err.msg);
    for (size_t i = 0; i < CF_ARRAY_SIZE(tokens); i++)
        free(tokens[i]);
}

static void no_chain(void *ctx, struct cf_audit_event *event)
{
    (void)ctx;
    memset(event->hash, 0x11, sizeof(event->hash));
}

/* Appends one event naming keys and returns its seq. */
static int64_t append_read(const char *keys)
{
    struct cf_audit_event *e = calloc(1, sizeof(*e));
    cr_assert_not_null(e);
    cf_uuid_new(e->id);
    snprintf(e->actor_kind, sizeof(e->actor_kind), "admin");
    snprintf(e->action, sizeof(e->action), "secrets.list");
    snprintf(e->result, sizeof(e->result), "ok");
    snprintf(e->keys, sizeof(e->keys), "%s", keys);
    cr_assert_eq(cf_store_audit_append(st, &e, 1, no_chain, NULL, &err), CF_OK, "%s", err.msg);
    int64_t seq = e->seq;
    free(e);
    return seq;
}

static void assert_keys_read(int64_t seq, const char *keys)
{
    struct cf_audit_event *got = calloc(1, sizeof(*got));
    cr_assert_not_null(got);
    cr_assert_eq(cf_store_audit_get(st, seq, got, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(got->keys, keys, "event %lld", (long long)seq);
    free(got);
}

/* Events alike in one append share one context, found once; events that differ in any field, also
 * interleaved (A, B, A, B, ...) or differing only in the last field, each get the right one back;
 * so do those of a later append, whose contexts are found stored before its transaction.
 */
Test(store, an_append_gives_each_event_its_own_context)
{
    enum { N = 12 };
    struct cf_audit_event *events = calloc(N, sizeof(*events));
    cr_assert_not_null(events);
    for (size_t i = 0; i < N; i++) {
        struct cf_audit_event *e = &events[i];
        cf_uuid_new(e->id);
        snprintf(e->actor_kind, sizeof(e->actor_kind), "identity");
        snprintf(e->actor_name, sizeof(e->actor_name), "%s", i % 2 ? "deployer" : "builder");
        snprintf(e->action, sizeof(e->action), "secrets.read");
        snprintf(e->path, sizeof(e->path), "/backend");
        snprintf(e->keys, sizeof(e->keys), "DB_PASSWORD");
        snprintf(e->result, sizeof(e->result), "%s", i == N - 1 ? "denied" : "ok");
    }
    long long before = raw_count("SELECT COUNT(*) FROM audit_contexts");
    struct cf_audit_event *each[N];
    for (size_t i = 0; i < N; i++)
        each[i] = &events[i];
    for (int round = 0; round < 2; round++) {
        if (round == 1) { /* the same events again, last first: every context is stored now */
            for (size_t i = 0; i < N; i++) {
                cf_uuid_new(events[i].id);
                each[i] = &events[N - 1 - i];
            }
        }
        cr_assert_eq(cf_store_audit_append(st, each, N, no_chain, NULL, &err), CF_OK, "%s",
                     err.msg);
        /* builder/ok, deployer/ok, deployer/denied */
        cr_assert_eq(raw_count("SELECT COUNT(*) FROM audit_contexts"), before + 3);
        for (size_t i = 0; i < N; i++) {
            struct cf_audit_event *got = calloc(1, sizeof(*got));
            cr_assert_not_null(got);
            cr_assert_eq(cf_store_audit_get(st, events[i].seq, got, &err), CF_OK, "%s", err.msg);
            cr_assert_str_eq(got->actor_name, events[i].actor_name, "event %zu", i);
            cr_assert_str_eq(got->result, events[i].result, "event %zu", i);
            cr_assert_str_eq(got->keys, "DB_PASSWORD");
            free(got);
        }
    }
    free(events);
}

/* A long list of names is stored once and referred to; every reader gets the whole list back; a
 * short list stays in its event; a key set that holds another list under the same id is never
 * used for this one. */
/* The key set an event's context refers to (0: none). */
#define EVENT_KEY_SET                                                                              \
    "SELECT c.key_set FROM audit_events e JOIN audit_contexts c ON c.id = e.context"               \
    " WHERE e.seq = %lld"

/* Event and request ids read back as the text they were appended with, whichever form stores them:
 * Coffer's own ids (lower-case hex) in binary, anything else (upper case, a dash out of place, too
 * short or long, not hex) as text. */
Test(store, audit_ids_read_back_as_written)
{
    static const char *const ids[] = {
        "0192f0c4-7b1e-7c3d-9a4b-5e6f708192a3",
        "0192F0C4-7B1E-7C3D-9A4B-5E6F708192A3",
        "0192f0c47b1e-7c3d-9a4b-5e6f708192a3-",
        "0192f0c4-7b1e-7c3d-9a4b-5e6f708192a",
        "0192f0c4-7b1e-7c3d-9a4b-5e6f7081-2a3",
        "0192f0c4-7b1e-7c3d-9a4b-5e6f708192g3",
        "imported-event",
    };
    static const char *const request_ids[] = {
        "0123456789abcdef",  "0123456789ABCDEF", "0123456789abcde",
        "0123456789abcdef0", "0123456789abcdeg", "",
        "0123456789abcdef", // the last two pair with the last two ids
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(ids); i++) {
        struct cf_audit_event *e = calloc(1, sizeof(*e)), *got = calloc(1, sizeof(*got));
        cr_assert(e && got);
        cf_strlcpy(e->id, ids[i], sizeof(e->id));
        cf_strlcpy(e->request_id, request_ids[i], sizeof(e->request_id));
        e->time_us = 1730000000000000;
        snprintf(e->actor_kind, sizeof(e->actor_kind), "admin");
        snprintf(e->action, sizeof(e->action), "secrets.read");
        snprintf(e->result, sizeof(e->result), "ok");
        cr_assert_eq(cf_store_audit_append(st, &e, 1, no_chain, NULL, &err), CF_OK, "%s", err.msg);
        cr_assert_eq(cf_store_audit_get(st, e->seq, got, &err), CF_OK, "%s", err.msg);
        cr_assert_str_eq(got->id, ids[i]);
        cr_assert_str_eq(got->request_id, request_ids[i]);
        free(e);
        free(got);
    }
}

Test(store, audit_key_sets)
{
    char many[4000] = "", other[4000] = "", sql[256];
    for (int i = 1; i <= 100; i++) {
        char key[32];
        snprintf(key, sizeof(key), "%sKEY_%03d", i > 1 ? "," : "", i);
        cf_strlcpy(many + strlen(many), key, sizeof(many) - strlen(many));
        snprintf(key, sizeof(key), "%sOTHER_%03d", i > 1 ? "," : "", i);
        cf_strlcpy(other + strlen(other), key, sizeof(other) - strlen(other));
    }
    int64_t first = append_read(many), second = append_read(many), third = append_read(other);
    int64_t shortlist = append_read("A,B");
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM audit_key_sets"), 2);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM audit_events e JOIN audit_contexts c"
                           " ON c.id = e.context WHERE c.key_set <> 0 AND c.keys = ''"),
                 3);
    snprintf(sql, sizeof(sql), EVENT_KEY_SET, (long long)shortlist);
    cr_assert_eq(raw_count(sql), 0);
    assert_keys_read(first, many);
    assert_keys_read(second, many);
    assert_keys_read(third, other);
    assert_keys_read(shortlist, "A,B");

    /* The list page of the audit log resolves them too. */
    struct cf_audit_filter filter = {.limit = 10};
    struct cf_audit_event_list list = {0};
    cr_assert_eq(cf_store_audit_list(st, &filter, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, 4);
    cr_assert_str_eq(list.items[1].keys, many);
    cf_audit_event_list_release(&list);

    /* Another list found under this list's id (a collision, or an edit): the new event keeps its
     * own list inline rather than refer to a wrong one. */
    snprintf(sql, sizeof(sql),
             "UPDATE audit_key_sets SET keys = 'X' WHERE id = (" EVENT_KEY_SET ")",
             (long long)first);
    raw_exec(sql);
    int64_t fourth = append_read(many);
    snprintf(sql, sizeof(sql), EVENT_KEY_SET, (long long)fourth);
    cr_assert_eq(raw_count(sql), 0);
    assert_keys_read(fourth, many);
    assert_keys_read(first, "X"); /* what the chain then finds edited */

    /* Text written into the keys column of a context that refers to a key set is what is read. */
    snprintf(sql, sizeof(sql),
             "UPDATE audit_contexts SET keys = 'EDITED' WHERE id = (SELECT context FROM"
             " audit_events WHERE seq = %lld)",
             (long long)third);
    raw_exec(sql);
    assert_keys_read(third, "EDITED");
}

/* ---- the lookup cache ---- */

/* Rows looked up in a read scope come from memory in later scopes while the change counter keeps
 * its value: a change made behind the triggers' back (one dropped here) is not seen until the
 * counter moves. Outside a scope nothing is cached. */
Test(store, lookup_cache_serves_rows_until_the_counter_moves)
{
    struct cf_project p;
    make_project("alpha", &p, NULL);
    cf_store_read_begin(st);
    expect_project_name("alpha", "Project alpha");
    cf_store_read_end(st);

    raw_exec("DROP TRIGGER projects_update_lookups;"
             " UPDATE projects SET name = 'behind' WHERE slug = 'alpha'");
    expect_project_name("alpha", "behind"); /* no scope: the database */
    cf_store_read_begin(st);
    expect_project_name("alpha", "Project alpha"); /* the cached row */
    cf_store_read_end(st);

    /* Any commit of a Coffer handle that moves the counter (here another handle's, for another
     * row) retires every cached row. */
    struct cf_store *other = open_store(db_path);
    cr_assert_eq(cf_store_meta_put(other, "admin_token_hash", (const uint8_t *)"x", 1, &err),
                 CF_OK);
    cf_store_read_begin(st);
    expect_project_name("alpha", "behind");
    cf_store_read_end(st);
    cf_store_close(other);
}

/* The admin token's meta rows (read by every admin request) come from the lookup cache inside a
 * read scope, an absent row too; a change made through a second handle (another server, or
 * `coffer operator` on the host) moves the counter and is seen by the next scope. Other meta rows
 * are never cached. */
Test(store, admin_token_rows_are_cached_until_they_change)
{
    uint8_t *v = NULL;
    size_t n = 0;
    struct cf_store *other = open_store(db_path);
    cr_assert_eq(cf_store_meta_put(st, "admin_token_hash", (const uint8_t *)"one", 3, &err), CF_OK);
    cf_store_read_begin(st);
    cr_assert_eq(cf_store_meta_get_lookup(st, "admin_token_hash", &v, &n, &err), CF_OK, "%s",
                 err.msg);
    cr_assert(n == 3 && memcmp(v, "one", 3) == 0);
    free(v);
    cr_assert_eq(cf_store_meta_get_lookup(st, "admin_token_disabled", &v, &n, &err), CF_ENOTFOUND);
    cf_store_read_end(st);

    /* behind the triggers' back: the cache still answers, the database has changed */
    raw_exec("DROP TRIGGER meta_update_lookups; DROP TRIGGER meta_insert_lookups;"
             " UPDATE meta SET value = X'6265686964' WHERE name = 'admin_token_hash';"
             " INSERT INTO meta (name, value) VALUES ('admin_token_disabled', X'31')");
    cf_store_read_begin(st);
    cr_assert_eq(cf_store_meta_get_lookup(st, "admin_token_hash", &v, &n, &err), CF_OK);
    cr_assert(n == 3 && memcmp(v, "one", 3) == 0, "the cached row");
    free(v);
    cr_assert_eq(cf_store_meta_get_lookup(st, "admin_token_disabled", &v, &n, &err), CF_ENOTFOUND,
                 "the cached absence");
    cf_store_read_end(st);

    /* put the triggers back (as migration 0024 made them) and change both from the other handle */
    raw_exec("CREATE TRIGGER meta_insert_lookups AFTER INSERT ON meta WHEN NEW.name IN"
             " ('admin_token_hash', 'admin_token_disabled') BEGIN UPDATE change_counters SET"
             " value = value + 1 WHERE name = 'lookups'; END;"
             " CREATE TRIGGER meta_update_lookups AFTER UPDATE ON meta WHEN NEW.name IN"
             " ('admin_token_hash', 'admin_token_disabled') OR OLD.name IN ('admin_token_hash',"
             " 'admin_token_disabled') BEGIN UPDATE change_counters SET value = value + 1 WHERE"
             " name = 'lookups'; END;");
    cr_assert_eq(cf_store_meta_put(other, "admin_token_hash", (const uint8_t *)"two", 3, &err),
                 CF_OK);
    cf_store_read_begin(st);
    cr_assert_eq(cf_store_meta_get_lookup(st, "admin_token_hash", &v, &n, &err), CF_OK);
    cr_assert(n == 3 && memcmp(v, "two", 3) == 0, "a rotation on another server is seen");
    free(v);
    cr_assert_eq(cf_store_meta_get_lookup(st, "admin_token_disabled", &v, &n, &err), CF_OK);
    cr_assert(n == 1 && v[0] == '1');
    free(v);
    cf_store_read_end(st);
    cr_assert_eq(cf_store_meta_put(other, "admin_token_disabled", (const uint8_t *)"0", 1, &err),
                 CF_OK);
    cf_store_read_begin(st);
    cr_assert_eq(cf_store_meta_get_lookup(st, "admin_token_disabled", &v, &n, &err), CF_OK);
    cr_assert(n == 1 && v[0] == '0', "re-enabled on another server");
    free(v);
    cf_store_read_end(st);

    /* another meta row changes without moving the counter: no entry may be kept for it */
    long long before = raw_count("SELECT value FROM change_counters WHERE name = 'lookups'");
    cr_assert_eq(cf_store_meta_put(other, "something_else", (const uint8_t *)"x", 1, &err), CF_OK);
    cr_assert_eq(raw_count("SELECT value FROM change_counters WHERE name = 'lookups'"), before);
    cf_store_close(other);
}

/* The change generation (store/sqlite.c): a scope whose thread read the counters before takes them
 * over without a read while the generation stands; a commit through any Coffer handle moves it,
 * so the change is seen at once; a writer that changes the counters without moving it (a tool
 * other than Coffer) is seen once the taken-over counters are a second old. */
Test(store, change_generation_moves_with_every_counted_commit)
{
    uint8_t *v = NULL;
    size_t n = 0;
    char gen_path[4200];
    struct stat sb;
    snprintf(gen_path, sizeof(gen_path), "%s-gen", db_path);
    cr_assert_eq(stat(gen_path, &sb), 0, "the generation file is made beside the database");
    cr_assert_eq(sb.st_mode & 0777, 0600);

    struct cf_store *other = open_store(db_path);
    cr_assert_eq(cf_store_meta_put(st, "admin_token_hash", (const uint8_t *)"one", 3, &err), CF_OK);
    for (int round = 0; round < 2; round++) { /* the second round takes the counters over */
        cf_store_read_begin(st);
        cr_assert_eq(cf_store_meta_get_lookup(st, "admin_token_hash", &v, &n, &err), CF_OK);
        cr_assert(n == 3 && memcmp(v, "one", 3) == 0);
        free(v);
        cf_store_read_end(st);
    }
    cr_assert_eq(cf_store_meta_put(other, "admin_token_hash", (const uint8_t *)"two", 3, &err),
                 CF_OK);
    cf_store_read_begin(st);
    cr_assert_eq(cf_store_meta_get_lookup(st, "admin_token_hash", &v, &n, &err), CF_OK);
    cr_assert(n == 3 && memcmp(v, "two", 3) == 0, "another handle's commit is seen at once");
    free(v);
    cf_store_read_end(st);

    /* The counters move behind the generation's back (triggers intact, a raw connection). */
    raw_exec("UPDATE meta SET value = X'7468726565' WHERE name = 'admin_token_hash'");
    usleep(1100 * 1000);
    cf_store_read_begin(st);
    cr_assert_eq(cf_store_meta_get_lookup(st, "admin_token_hash", &v, &n, &err), CF_OK);
    cr_assert(n == 5 && memcmp(v, "three", 5) == 0, "seen once the taken-over counters aged");
    free(v);
    cf_store_read_end(st);
    cf_store_close(other);
}

/* What a second store handle on the same database (another server) changes. */
enum remote_change {
    DELETE_FOLDER,
    RENAME_ENV,
    REVOKE_TOKEN,
    NARROW_RULES,
    ROTATE_ROOT_KEY,
    DELETE_IDENTITY,
    REVOKE_CLIENT_SECRET,
};

struct looked_up {
    struct cf_project project;
    struct cf_env env;
    struct cf_folder folder;
    struct cf_membership membership;
    struct cf_access_token token;
    enum cf_rc project_rc, env_rc, folder_rc, membership_rc, token_rc;
};

/* Every cached lookup of the world, in one read scope of st. */
static void look_up(const struct cf_project *p, const struct cf_env *dev, const char *identity_id,
                    const char *token_id, struct looked_up *out)
{
    cf_store_read_begin(st);
    out->project_rc = cf_store_project_get(st, p->slug, &out->project, &err);
    out->env_rc = cf_store_env_get(st, p->id, "dev", &out->env, &err);
    out->folder_rc = cf_store_folder_get(st, dev->id, "/app", &out->folder, &err);
    out->membership_rc = cf_store_membership_get(st, identity_id, p->id, &out->membership, &err);
    out->token_rc = cf_store_token_get(st, token_id, &out->token, &err);
    cf_store_read_end(st);
}

static void looked_up_release(struct looked_up *l)
{
    cf_project_release(&l->project);
    cf_membership_release(&l->membership);
}

/* A change on another server is seen by this one's next read scope, for each kind of cached row:
 * the same lookups before the change (twice, so that the second comes from the cache) and after. */
Test(store, lookup_cache_sees_changes_made_by_another_server)
{
    static const uint8_t new_key[] = {9, 9, 9}, check[] = {0xc};
    for (enum remote_change change = DELETE_FOLDER; change <= REVOKE_CLIENT_SECRET; change++) {
        struct cf_project p;
        struct cf_env envs[3];
        struct cf_folder root, app;
        struct cf_identity id;
        struct cf_client_secret secret;
        struct cf_membership m;
        struct cf_membership_rule rule = {.actions = 1};
        struct looked_up before, cached, after;
        char slug[16];

        snprintf(slug, sizeof(slug), "%cp", (char)('a' + (int)change)); /* own hash each */
        make_project(slug, &p, envs);
        get_folder(envs[0].id, "/", &root);
        make_folder(&root, "app", &app);
        make_identity(slug, 0, &id);
        make_client_secret(id.id, slug, 0, cf_now_ms(), &secret);
        fill_membership(&m, id.id, p.id, "member", 1000);
        cr_assert_eq(cf_store_membership_put(st, &m, &err), CF_OK, "%s", err.msg);
        struct cf_access_token *t = new_token(id.id, secret.id, 0);

        look_up(&p, &envs[0], id.id, t->id, &before);
        look_up(&p, &envs[0], id.id, t->id, &cached);
        cr_assert_eq(before.folder_rc, CF_OK);
        cr_assert_eq(cached.token_rc, CF_OK);
        cr_assert_eq(cached.membership_rc, CF_OK);

        struct cf_store *other = open_store(db_path);
        enum cf_rc rc = CF_OK;
        switch (change) {
        case DELETE_FOLDER:
            rc = cf_store_folder_delete(other, app.id, &err);
            break;
        case RENAME_ENV: {
            struct cf_env renamed = envs[0];
            snprintf(renamed.slug, sizeof(renamed.slug), "development");
            rc = cf_store_env_update(other, &renamed, &err);
            break;
        }
        case REVOKE_TOKEN:
            rc = cf_store_token_revoke(other, t->id, &err);
            break;
        case NARROW_RULES:
            snprintf(rule.env_id, sizeof(rule.env_id), "%s", envs[1].id);
            m.rules = &rule;
            m.n_rules = 1;
            rc = cf_store_membership_put(other, &m, &err);
            break;
        case ROTATE_ROOT_KEY: {
            struct cf_key_update update = {p.id, new_key, sizeof(new_key)};
            rc = cf_store_rewrap_keys(other, &update, 1, check, sizeof(check), &err);
            break;
        }
        case DELETE_IDENTITY:
            rc = cf_store_identity_delete(other, id.id, &err);
            break;
        case REVOKE_CLIENT_SECRET:
            rc = cf_store_client_secret_revoke(other, id.id, secret.id, &err);
            break;
        }
        cr_assert_eq(rc, CF_OK, "change %d: %s", (int)change, err.msg);
        cf_store_close(other);

        look_up(&p, &envs[0], id.id, t->id, &after);
        switch (change) {
        case DELETE_FOLDER:
            cr_assert_eq(after.folder_rc, CF_ENOTFOUND, "a deleted folder is not found");
            break;
        case RENAME_ENV:
            cr_assert_eq(after.env_rc, CF_ENOTFOUND, "the old slug no longer names it");
            break;
        case REVOKE_TOKEN:
            cr_assert(after.token_rc == CF_OK && after.token.revoked, "the token reads revoked");
            break;
        case NARROW_RULES:
            cr_assert_eq(after.membership_rc, CF_OK);
            assert_rules_eq(&after.membership, &rule, 1);
            break;
        case ROTATE_ROOT_KEY:
            cr_assert_eq(after.project.wrapped_key_len, sizeof(new_key));
            cr_assert_arr_eq(after.project.wrapped_key, new_key, sizeof(new_key));
            break;
        case DELETE_IDENTITY:
            cr_assert_eq(after.token_rc, CF_ENOTFOUND, "the identity's tokens are gone");
            cr_assert_eq(after.membership_rc, CF_ENOTFOUND, "and its memberships");
            break;
        case REVOKE_CLIENT_SECRET:
            cr_assert(after.token_rc == CF_OK && after.token.client_secret_revoked,
                      "the token reads its client secret revoked");
            break;
        }
        looked_up_release(&before);
        looked_up_release(&cached);
        looked_up_release(&after);
        free(t);
    }
}

/* A write inside a scope is seen by the same scope's next lookup. */
Test(store, lookup_cache_sees_the_scopes_own_write)
{
    struct world w;
    struct cf_folder app, got;
    make_world(&w);
    make_folder(&w.root, "app", &app);
    cf_store_read_begin(st);
    cr_assert_eq(cf_store_folder_get(st, w.envs[0].id, "/app", &got, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_folder_get(st, w.envs[0].id, "/app", &got, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_folder_delete(st, app.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_folder_get(st, w.envs[0].id, "/app", &got, &err), CF_ENOTFOUND);
    cf_store_read_end(st);
}

/* Inside a shared write transaction, secret writes change only the list cache's counter, so
 * lookups keep the lookup cache (served, and filled) while the rows it guards read as committed;
 * once the transaction changes one of them (a folder here), the transaction's own view is read.
 * The changes made behind the triggers' back tell a cached row from the database's. */
Test(store, lookup_cache_serves_a_shared_write_transaction_until_it_changes_a_lookup)
{
    struct world w;
    struct cf_project alpha, beta;
    struct cf_folder app;
    int64_t content;
    make_world(&w);
    make_project("alpha", &alpha, NULL);
    make_project("beta", &beta, NULL);
    cf_store_read_begin(st);
    expect_project_name("alpha", "Project alpha");
    cf_store_read_end(st);
    raw_exec("DROP TRIGGER projects_update_lookups;"
             " UPDATE projects SET name = 'behind' WHERE slug = 'alpha'");

    cf_store_read_begin(st);
    cr_assert_eq(cf_store_batch_begin(st, &err), CF_OK, "%s", err.msg);
    create_secret(w.root.id, "IN_BATCH", "v", NULL);
    cr_assert_not(cf_store_content_version(st, &content), "an uncommitted content counter");
    expect_project_name("alpha", "Project alpha"); /* served from the cache after the write */
    expect_project_name("beta", "Project beta");   /* read, and cached */
    cr_assert_eq(cf_store_batch_end(st, &err), CF_OK, "%s", err.msg);
    cf_store_read_end(st);

    raw_exec("UPDATE projects SET name = 'behind too' WHERE slug = 'beta'");
    cf_store_read_begin(st);
    expect_project_name("beta", "Project beta"); /* the row the transaction cached */
    cf_store_read_end(st);

    cf_store_read_begin(st);
    cr_assert_eq(cf_store_batch_begin(st, &err), CF_OK, "%s", err.msg);
    create_secret(w.root.id, "IN_BATCH_2", "v", NULL);
    make_folder(&w.root, "app", &app); /* moves the lookups counter, uncommitted */
    expect_project_name("alpha", "behind");
    expect_project_name("beta", "behind too");
    cr_assert_eq(cf_store_batch_end(st, &err), CF_OK, "%s", err.msg);
    cf_store_read_end(st);
}

/* A token with a use limit is read from the database every time: its count changes on each use. */
Test(store, lookup_cache_keeps_no_token_with_a_use_limit)
{
    struct cf_identity id;
    struct cf_access_token got;
    make_identity("limited", 0, &id);
    struct cf_access_token *t = new_token(id.id, "", 3);
    cf_store_read_begin(st);
    cr_assert_eq(cf_store_token_get(st, t->id, &got, &err), CF_OK, "%s", err.msg);
    cf_store_read_end(st);
    cr_assert_eq(cf_store_token_use(st, t->id, &err), CF_OK, "%s", err.msg);
    cf_store_read_begin(st);
    cr_assert_eq(cf_store_token_get(st, t->id, &got, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(got.num_uses, 1);
    cf_store_read_end(st);
    free(t);
}

/* Retention in the store: one claim at a time; the commit moves the anchor only from where the
 * archiver found it, deletes the archived events and the checkpoints over them, and keeps the
 * newest read per secret; an emptied log goes on from the anchor. */
Test(store, audit_archive_claim_commit_and_anchor)
{
    bool claimed = false, found = true;
    struct cf_audit_checkpoint anchor = {0};
    cr_assert_eq(cf_store_audit_anchor_get(st, &anchor, &found, &err), CF_OK, "%s", err.msg);
    cr_assert_not(found);
    for (int i = 0; i < 4; i++)
        append_read("A,B");
    struct cf_audit_checkpoint cp = {.event_seq = 2, .time_us = 1};
    cr_assert_eq(cf_store_audit_checkpoint_add(st, &cp, &err), CF_OK, "%s", err.msg);

    cr_assert_eq(cf_store_audit_archive_claim(st, "one", 1000, 2000, &claimed, &err), CF_OK);
    cr_assert(claimed);
    cr_assert_eq(cf_store_audit_archive_claim(st, "two", 1500, 2500, &claimed, &err), CF_OK);
    cr_assert_not(claimed, "a live claim is another's");
    cr_assert_eq(cf_store_audit_archive_claim(st, "two", 2001, 3000, &claimed, &err), CF_OK);
    cr_assert(claimed, "an expired claim may be taken over");

    struct cf_audit_checkpoint moved = {.event_seq = 3, .time_us = 5};
    memset(moved.event_hash, 0x11, sizeof(moved.event_hash));
    struct cf_audit_last_read reads[2] = {{.project_id = "p",
                                           .environment = "dev",
                                           .path = "/",
                                           .key = "A",
                                           .read_at_us = 10,
                                           .actor_kind = "admin"},
                                          {.project_id = "p",
                                           .environment = "dev",
                                           .path = "/",
                                           .key = "B",
                                           .read_at_us = 20,
                                           .actor_kind = "admin"}};
    cr_assert_eq(cf_store_audit_archive_commit(st, "one", 0, &moved, reads, 2, &err), CF_ECONFLICT,
                 "the claim moved to another owner");
    cr_assert_eq(cf_store_audit_archive_commit(st, "two", 1, &moved, reads, 2, &err), CF_ECONFLICT,
                 "the anchor is not where the run found it");
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM audit_events"), 4, "nothing changed");
    cr_assert_eq(cf_store_audit_archive_commit(st, "two", 0, &moved, reads, 2, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM audit_events"), 1);
    cr_assert_eq(raw_count("SELECT MIN(seq) FROM audit_events"), 4);
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM audit_checkpoints"), 0);
    cr_assert_eq(cf_store_audit_anchor_get(st, &anchor, &found, &err), CF_OK, "%s", err.msg);
    cr_assert(found);
    cr_assert_eq(anchor.event_seq, 3);

    /* an older read does not replace a newer one */
    reads[1].read_at_us = 15;
    reads[0].read_at_us = 30;
    moved.event_seq = 4;
    cr_assert_eq(cf_store_audit_archive_commit(st, "two", 3, &moved, reads, 2, &err), CF_OK, "%s",
                 err.msg);
    struct cf_audit_last_read_list kept = {0};
    cr_assert_eq(cf_store_audit_last_reads(st, "p", &kept, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(kept.n, 2);
    for (size_t i = 0; i < kept.n; i++)
        cr_assert_eq(kept.items[i].read_at_us, strcmp(kept.items[i].key, "A") == 0 ? 30 : 20);
    cf_audit_last_read_list_release(&kept);

    /* every event archived: the next one follows the anchor */
    cr_assert_eq(raw_count("SELECT COUNT(*) FROM audit_events"), 0);
    cr_assert_eq(append_read("C"), 5);
    struct cf_audit_event *got = calloc(1, sizeof(*got));
    cr_assert_not_null(got);
    cr_assert_eq(cf_store_audit_get(st, 5, got, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(memcmp(got->prev_hash, moved.event_hash, sizeof(got->prev_hash)), 0);
    free(got);
    cr_assert_eq(cf_store_audit_archive_release(st, "two", &err), CF_OK);
    cr_assert_eq(cf_store_audit_archive_claim(st, "one", 2002, 3000, &claimed, &err), CF_OK);
    cr_assert(claimed, "a released claim is free");
}

/* ---- commits synced after the fact (cf_store_sync_*) ---- */

struct synced_count {
    pthread_mutex_t lock;
    int calls;
    enum cf_rc last;
};

static void count_synced(void *arg, enum cf_rc rc)
{
    struct synced_count *c = arg;
    pthread_mutex_lock(&c->lock);
    c->calls++;
    c->last = rc;
    pthread_mutex_unlock(&c->lock);
}

/* Closes the store, opens it again and checks that meta value name is there with len bytes. */
static void assert_kept_after_reopen(const char *name, size_t len)
{
    cf_store_close(st);
    st = open_store(db_path);
    uint8_t *got = NULL;
    size_t got_len = 0;
    cr_assert_eq(cf_store_meta_get(st, name, &got, &got_len, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(got_len, len);
    free(got);
}

Test(store, deferred_commits_share_one_sync)
{
    static const uint8_t value[] = {1, 2, 3};
    uint64_t commits = 0, syncs = 0;
    cr_assert(cf_store_sync_defer(st, true), "SQLite in WAL mode defers");
    cr_assert(cf_store_sync_defer(st, true), "asking again is harmless");
    cr_assert_eq(cf_store_sync_ticket(st), 0, "nothing committed yet");
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf(name, sizeof(name), "deferred-%d", i);
        cr_assert_eq(cf_store_meta_put(st, name, value, sizeof(value), &err), CF_OK, "%s", err.msg);
    }
    uint64_t ticket = cf_store_sync_ticket(st);
    cr_assert_eq(ticket, 20, "the ticket covers every deferred commit begun");

    struct synced_count count = {.lock = PTHREAD_MUTEX_INITIALIZER, .last = CF_ESTORE};
    struct cf_store_sync_wait waits[3];
    for (size_t i = 0; i < CF_ARRAY_SIZE(waits); i++) {
        waits[i] =
            (struct cf_store_sync_wait){.ticket = ticket, .done = count_synced, .arg = &count};
        cf_store_sync_notify(st, &waits[i]);
    }
    cr_assert_eq(cf_store_sync_barrier(st, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_sync_ticket(st), 0, "after the barrier everything is on disk");
    for (int tries = 0; tries < 1000; tries++) {
        pthread_mutex_lock(&count.lock);
        int calls = count.calls;
        pthread_mutex_unlock(&count.lock);
        if (calls == 3)
            break;
        usleep(1000);
    }
    cr_assert_eq(count.calls, 3, "every wait answered once");
    cr_assert_eq(count.last, CF_OK);
    cf_store_sync_counts(st, &commits, &syncs);
    cr_assert_eq(commits, 20);
    cr_assert(syncs >= 1 && syncs <= 2, "one sync covers the 20 commits (%llu syncs)",
              (unsigned long long)syncs);

    /* Synced one by one again: such commits need no ticket. */
    cr_assert_not(cf_store_sync_defer(st, false));
    cr_assert_eq(cf_store_meta_put(st, "synced", value, sizeof(value), &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_sync_ticket(st), 0);
    cf_store_sync_counts(st, &commits, &syncs);
    cr_assert_eq(commits, 20);

    /* What was deferred is in the database after it is closed and opened again. */
    assert_kept_after_reopen("deferred-19", sizeof(value));
}

/* A thread that did not defer its commits still takes the tickets of those that did: what it
 * reads may be one of their commits. */
static void *deferred_writer(void *arg)
{
    static const uint8_t value[] = {9};
    struct cf_err thread_err;
    cr_assert(cf_store_sync_defer(st, true));
    *(enum cf_rc *)arg = cf_store_meta_put(st, "from-thread", value, sizeof(value), &thread_err);
    return NULL;
}

/* Runs writer(&rc) on a thread of its own (rc starts CF_OK) and returns rc once it ended. */
static enum cf_rc on_own_thread(void *(*writer)(void *))
{
    pthread_t thread;
    enum cf_rc rc = CF_OK;
    cr_assert_eq(pthread_create(&thread, NULL, writer, &rc), 0);
    pthread_join(thread, NULL);
    return rc;
}

Test(store, ticket_covers_other_threads_commits)
{
    cr_assert_eq(on_own_thread(deferred_writer), CF_OK);
    cr_assert_eq(cf_store_sync_ticket(st), 1, "this thread's answer would wait for the commit");
    cr_assert_eq(cf_store_sync_barrier(st, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_store_sync_ticket(st), 0);
}

/* Commits synced outside the write lock (the audit writer's) come back only once a sync covers
 * each of them, and are in the database after it is opened again. */
static void *unlocked_writer(void *arg)
{
    static const uint8_t value[] = {7};
    struct cf_err thread_err;
    uint64_t commits = 0, syncs = 0;
    enum cf_rc *rc = arg;
    cr_assert(cf_store_sync_unlocked(st), "SQLite in WAL mode syncs outside the write lock");
    cr_assert(cf_store_sync_unlocked(st), "asking again is harmless");
    for (int i = 0; i < 5 && *rc == CF_OK; i++) {
        char name[32];
        snprintf(name, sizeof(name), "unlocked-%d", i);
        *rc = cf_store_meta_put(st, name, value, sizeof(value), &thread_err);
        cf_store_sync_counts(st, &commits, &syncs);
        /* One at a time, each waited for its own sync before returning. */
        cr_assert_eq(commits, (uint64_t)i + 1);
        cr_assert_geq(syncs, (uint64_t)i + 1, "commit %d came back before a sync covered it", i);
    }
    return NULL;
}

Test(store, unlocked_commits_return_once_synced)
{
    cr_assert_eq(on_own_thread(unlocked_writer), CF_OK);
    cr_assert_eq(cf_store_sync_ticket(st), 0, "answers take no ticket for these commits");
    assert_kept_after_reopen("unlocked-4", 1);
}

/* The write-ahead log's size in pages (of 4096 bytes, SQLite's default); 0 when there is none. */
static long log_pages(void)
{
    char path[300];
    snprintf(path, sizeof(path), "%s-wal", db_path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    return size / 4096;
}

/* Deferred commits leave checkpoints to the checkpointer thread; under a steady stream of commits
 * it still brings the log back to its start, so the log stays far shorter than what was written
 * through it. */
Test(store, checkpointer_keeps_the_log_short)
{
    uint8_t value[3000];
    memset(value, 'x', sizeof(value));
    cr_assert(cf_store_sync_defer(st, true));
    int commits = 0;
    /* About one page a commit: at least 30,000 pages written, for at least one second, so that
     * the checkpointer (woken every 4,000 pages) runs many times. */
    int64_t started = cf_mono_us();
    while (commits < 30000 || cf_mono_us() - started < 1000000) {
        char name[32];
        snprintf(name, sizeof(name), "bulk-%d", commits % 50);
        /* A new value each time: SQLite writes no page for a row rewritten as it was. */
        memcpy(value, &commits, sizeof(commits));
        cr_assert_eq(cf_store_meta_put(st, name, value, sizeof(value), &err), CF_OK, "%s", err.msg);
        commits++;
    }
    cr_assert_eq(cf_store_sync_barrier(st, &err), CF_OK, "%s", err.msg);
    long pages = log_pages();
    cr_assert_lt(pages, commits / 3,
                 "the log holds %ld pages after %d commits: it was not checkpointed", pages,
                 commits);
}

/* A reader that keeps an old snapshot lets the log grow past its usual length while it reads; once
 * it is done and the log starts over, the file is cut back to 64 MB (LOG_SIZE_LIMIT in sqlite.c)
 * instead of keeping its largest size for as long as the server runs. */
Test(store, a_log_grown_under_a_long_reader_is_cut_back)
{
    static uint8_t value[60000]; /* about 15 pages a commit */
    const long limit_pages = 64L * 1024 * 1024 / 4096;
    sqlite3 *reader = NULL;
    cr_assert_eq(sqlite3_open_v2(db_path, &reader, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM meta;", NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(reader));
    cr_assert(cf_store_sync_defer(st, true));
    int commits = 0;
    while (log_pages() <= limit_pages + 1000) {
        /* A new value each time: SQLite writes no page for a row rewritten as it was. */
        memcpy(value, &commits, sizeof(commits));
        cr_assert_eq(cf_store_meta_put(st, "long-reader", value, sizeof(value), &err), CF_OK, "%s",
                     err.msg);
        commits++;
    }
    long grown = log_pages();
    cr_assert_eq(sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(reader);
    /* Writes go on: the checkpointer catches up, and a commit starts the log over. */
    int64_t started = cf_mono_us();
    while (log_pages() > limit_pages && cf_mono_us() - started < 20 * 1000000) {
        memcpy(value, &commits, sizeof(commits));
        cr_assert_eq(cf_store_meta_put(st, "after", value, 100, &err), CF_OK, "%s", err.msg);
        commits++;
    }
    cr_assert_eq(cf_store_sync_barrier(st, &err), CF_OK, "%s", err.msg);
    long pages = log_pages();
    cr_assert_leq(pages, limit_pages,
                  "the log file kept %ld pages after growing to %ld under the reader: it was not "
                  "cut back to %ld",
                  pages, grown, limit_pages);
}

/* ---- the content version (the list cache's) ---- */

/* The content version read in a fresh read scope (the test fails outside one). */
static int64_t content_version(struct cf_store *store)
{
    int64_t version = -1;
    cf_store_read_begin(store);
    cr_assert(cf_store_content_version(store, &version));
    cf_store_read_end(store);
    return version;
}

/* Every change that can alter a folder list moves the content version, made by this server or
 * another on the same database; a token or an identity does not. Within one read scope the value
 * stays what the scope read first. Outside a scope there is none. */
Test(store, content_version_moves_with_every_change_a_list_shows)
{
    static const uint8_t new_key[] = {7, 7, 7}, check[] = {0xd};
    struct cf_project p;
    struct cf_env envs[3];
    struct cf_folder root, app;
    struct cf_identity id;
    char secret_id[CF_UUID_LEN];
    int64_t v, now;

    cr_assert_not(cf_store_content_version(st, &v));
    make_project("cv", &p, envs);
    get_folder(envs[0].id, "/", &root);
    v = content_version(st);

    make_folder(&root, "app", &app);
    cr_assert_gt(now = content_version(st), v, "a new folder");
    v = now;
    create_secret(root.id, "K", "one", secret_id);
    cr_assert_gt(now = content_version(st), v, "a new secret");
    v = now;

    /* a scope keeps its first value while another server writes */
    struct cf_store *other = open_store(db_path);
    cf_store_read_begin(st);
    int64_t in_scope = -1, again = -1;
    cr_assert(cf_store_content_version(st, &in_scope));
    struct cf_secret_write w = w_update(secret_id, 1, "K", "two", 3);
    cr_assert_eq(cf_store_secret_write(other, &w, 1, NULL, &err), CF_OK, "%s", err.msg);
    cr_assert(cf_store_content_version(st, &again));
    cr_assert_eq(again, in_scope);
    cf_store_read_end(st);
    cr_assert_gt(now = content_version(st), v, "an update on another server");
    v = now;

    struct cf_tag tag = {0};
    cf_uuid_new(tag.id);
    snprintf(tag.project_id, sizeof(tag.project_id), "%s", p.id);
    snprintf(tag.slug, sizeof(tag.slug), "t");
    snprintf(tag.color, sizeof(tag.color), "#fff");
    cr_assert_eq(cf_store_tag_create(other, &tag, &err), CF_OK, "%s", err.msg);
    cr_assert_gt(now = content_version(st), v, "a tag");
    v = now;

    struct cf_key_update update = {p.id, new_key, sizeof(new_key)};
    cr_assert_eq(cf_store_rewrap_keys(other, &update, 1, check, sizeof(check), &err), CF_OK, "%s",
                 err.msg);
    cr_assert_gt(now = content_version(st), v, "a root key rotation");
    v = now;

    make_identity("cv", 0, &id);
    cr_assert_eq(content_version(st), v, "an identity changes no list");
    cf_store_close(other);
}

/* ---- writes sharing one transaction (sql_combine, sqlrun.h) ---- */

#define COMBINED 4

/* A job that writes a meta row named name, then fails when fail is set. */
struct named_job {
    struct sql_job job; /* first */
    const char *name;
    bool fail;
    bool deferred; /* its thread defers its syncs */
    enum cf_rc rc;
    struct cf_err err;
    pthread_t thread;
};

static struct sql_combiner combiner;
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate = PTHREAD_COND_INITIALIZER;
static bool first_running; /* the first job runs, and holds its transaction open */

static size_t queued_jobs(void)
{
    size_t n = 0;
    pthread_mutex_lock(&combiner.lock);
    for (struct sql_job *j = combiner.queue; j; j = j->next)
        n++;
    pthread_mutex_unlock(&combiner.lock);
    return n;
}

/* The first job, inside its transaction: says it runs, then waits until n more jobs queue behind
 * it. */
static void lead_until_queued(size_t n)
{
    pthread_mutex_lock(&gate_lock);
    first_running = true;
    pthread_cond_broadcast(&gate);
    pthread_mutex_unlock(&gate_lock);
    while (queued_jobs() < n)
        usleep(1000);
}

static void wait_first_running(void)
{
    pthread_mutex_lock(&gate_lock);
    while (!first_running)
        pthread_cond_wait(&gate, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
}

static void combiner_init(void)
{
    cr_assert_eq(pthread_mutex_init(&combiner.lock, NULL), 0);
    cr_assert_eq(pthread_cond_init(&combiner.done, NULL), 0);
    combiner.queue = NULL;
    combiner.tail = &combiner.queue;
    combiner.committing = false;
    first_running = false;
}

static void combiner_destroy(void)
{
    pthread_cond_destroy(&combiner.done);
    pthread_mutex_destroy(&combiner.lock);
}

static struct sql_stmt ST_NAMED_INSERT = SQL_STMT("INSERT INTO meta (name, value) VALUES (?1, ?2)");

static enum cf_rc run_named(struct db_conn *c, struct sql_job *queued, struct cf_err *e)
{
    struct named_job *job = (struct named_job *)queued;
    if (strcmp(job->name, "job-0") == 0) {
        /* Every other job queues behind the first: they join its transaction before its commit.
         */
        lead_until_queued(COMBINED - 1);
    }
    enum cf_rc rc = sql_exec(c, &ST_NAMED_INSERT, ARGS(A_TEXT(job->name), A_BLOB("v", 1)), NULL, e);
    if (rc == CF_OK && job->fail)
        rc = cf_err_set(e, CF_EINVAL, "%s fails on purpose", job->name);
    return rc;
}

static const struct sql_batch_ops NAMED_BATCH = {.run = run_named};

static void *combine_main(void *arg)
{
    struct named_job *job = arg;
    cr_assert_eq(cf_store_sync_defer(st, job->deferred), job->deferred);
    cf_err_clear(&job->err);
    job->rc = sql_combine(sql_store_of(st), &combiner, &NAMED_BATCH, &job->job, &job->err);
    return NULL;
}

static int64_t meta_rows_named(const char *name)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM meta WHERE name = '%s'", name);
    return raw_count(sql);
}

Test(store, combined_writes_share_a_commit_and_fail_alone)
{
    static const char *const names[COMBINED] = {"job-0", "job-1", "job-2", "job-3"};
    struct named_job jobs[COMBINED];
    uint64_t commits0 = 0, syncs0 = 0, commits1 = 0, syncs1 = 0;

    combiner_init();
    cf_store_sync_counts(st, &commits0, &syncs0);

    for (int i = 0; i < COMBINED; i++) {
        /* job-1 and job-3 fail after writing their row; job-2's thread syncs its commits itself */
        jobs[i] = (struct named_job){.name = names[i], .fail = i % 2 == 1, .deferred = i != 2};
        cr_assert_eq(pthread_create(&jobs[i].thread, NULL, combine_main, &jobs[i]), 0);
        if (i == 0) /* the others start once the first holds the transaction */
            wait_first_running();
    }
    for (int i = 0; i < COMBINED; i++)
        pthread_join(jobs[i].thread, NULL);

    for (int i = 0; i < COMBINED; i++) {
        if (jobs[i].fail) {
            cr_expect_eq(jobs[i].rc, CF_EINVAL, "%s: %s", names[i], jobs[i].err.msg);
            cr_expect(strstr(jobs[i].err.msg, names[i]), "%s got another job's error: %s", names[i],
                      jobs[i].err.msg);
            cr_expect_eq(meta_rows_named(names[i]), 0, "%s failed but its row stayed", names[i]);
        } else {
            cr_expect_eq(jobs[i].rc, CF_OK, "%s: %s", names[i], jobs[i].err.msg);
            cr_expect_eq(meta_rows_named(names[i]), 1, "%s succeeded but its row is missing",
                         names[i]);
        }
    }
    cf_store_sync_counts(st, &commits1, &syncs1);
    cr_assert_eq(commits1 - commits0, 1, "the four jobs took %llu commits, not one",
                 (unsigned long long)(commits1 - commits0));
    /* job-2's thread does not defer: it came back only once the shared commit was on disk */
    cr_assert_eq(cf_store_sync_ticket(st), 0, "a commit is still waiting for its sync");
    combiner_destroy();
}

static void meta_text(const char *name, char *out, size_t size);

/* A thread that waits for another thread's shared transaction holds no read snapshot meanwhile:
 * with writer threads always waiting in turn, a snapshot kept while waiting stopped every
 * checkpoint short of the log's end, SQLite never started the log over, and under a steady stream
 * of writes it grew by about 100 MB a second. */
static pthread_barrier_t snapped, queueing;
static int log_frames = -1, checkpointed_frames = -1;

static enum cf_rc run_checkpointing(struct db_conn *c, struct sql_job *queued, struct cf_err *e)
{
    struct named_job *job = (struct named_job *)queued;
    if (strcmp(job->name, "leader") == 0) {
        lead_until_queued(1);
        /* The other thread waits for this transaction now: checkpoint what the log holds. */
        sqlite3 *raw = NULL;
        cr_assert_eq(sqlite3_open_v2(db_path, &raw, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        /* a first read opens the connection's view of the log */
        cr_assert_eq(sqlite3_exec(raw, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL),
                     SQLITE_OK);
        cr_assert_eq(sqlite3_wal_checkpoint_v2(raw, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                               &checkpointed_frames),
                     SQLITE_OK, "%s", sqlite3_errmsg(raw));
        sqlite3_close(raw);
    }
    return sql_exec(c, &ST_NAMED_INSERT, ARGS(A_TEXT(job->name), A_BLOB("v", 1)), NULL, e);
}

static const struct sql_batch_ops CHECKPOINTING_BATCH = {.run = run_checkpointing};

static void *lead_checkpointing(void *arg)
{
    struct named_job *job = arg;
    job->rc = sql_combine(sql_store_of(st), &combiner, &CHECKPOINTING_BATCH, &job->job, &job->err);
    return NULL;
}

static void *read_then_wait_to_write(void *arg)
{
    struct named_job *job = arg;
    char got[16];
    cf_store_read_begin(st);
    meta_text("snap", got, sizeof(got)); /* the scope's snapshot is taken here */
    cr_expect_str_eq(got, "1");
    pthread_barrier_wait(&snapped);
    pthread_barrier_wait(&queueing); /* the leader holds its transaction open */
    job->rc = sql_combine(sql_store_of(st), &combiner, &CHECKPOINTING_BATCH, &job->job, &job->err);
    cf_store_read_end(st);
    return NULL;
}

Test(store, a_thread_waiting_for_a_shared_write_holds_no_snapshot)
{
    struct named_job leader = {.name = "leader"}, waiting = {.name = "waiting"};
    combiner_init();
    cr_assert_eq(pthread_barrier_init(&snapped, NULL, 2), 0);
    cr_assert_eq(pthread_barrier_init(&queueing, NULL, 2), 0);

    cr_assert_eq(cf_store_meta_put(st, "snap", (const uint8_t *)"1", 1, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_eq(pthread_create(&waiting.thread, NULL, read_then_wait_to_write, &waiting), 0);
    pthread_barrier_wait(&snapped);
    /* a commit after the waiting thread's snapshot: the log now holds frames it does not see */
    cr_assert_eq(cf_store_meta_put(st, "snap", (const uint8_t *)"2", 1, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_eq(pthread_create(&leader.thread, NULL, lead_checkpointing, &leader), 0);
    wait_first_running();
    pthread_barrier_wait(&queueing);
    pthread_join(leader.thread, NULL);
    pthread_join(waiting.thread, NULL);

    cr_expect_eq(leader.rc, CF_OK, "%s", leader.err.msg);
    cr_expect_eq(waiting.rc, CF_OK, "%s", waiting.err.msg);
    cr_expect_eq(meta_rows_named("waiting"), 1, "the waiting thread's write is missing");
    cr_assert_gt(log_frames, 0, "the log is empty: nothing was checked");
    cr_assert_eq(checkpointed_frames, log_frames,
                 "the checkpoint stopped at frame %d of %d: the waiting thread kept its snapshot",
                 checkpointed_frames, log_frames);
    pthread_barrier_destroy(&snapped);
    pthread_barrier_destroy(&queueing);
    combiner_destroy();
}

/* ---- idle threads share one connection (cf_store_idle) ---- */

/* The connections the store holds now (cf_store_pool_use). */
static int open_connections(void)
{
    int open = 0, size = -1;
    cf_store_pool_use(st, &open, &size);
    cr_assert_eq(size, 0, "SQLite has no pool limit");
    return open;
}

/* The meta row name as text ("" when absent), read on the calling thread's connection. */
static void meta_text(const char *name, char *out, size_t size)
{
    uint8_t *value = NULL;
    size_t len = 0;
    struct cf_err e;
    out[0] = '\0';
    if (cf_store_meta_get(st, name, &value, &len, &e) == CF_OK)
        snprintf(out, size, "%.*s", (int)len, (const char *)value);
    free(value);
}

static void *read_then_idle(void *arg)
{
    char got[16];
    meta_text("idle", got, sizeof(got));
    cr_expect_str_eq(got, "1");
    cf_store_idle(st);
    return arg;
}

static pthread_barrier_t holding, counted;

static void *hold_then_idle(void *arg)
{
    char got[16];
    meta_text("idle", got, sizeof(got));
    pthread_barrier_wait(&holding); /* both threads hold a connection */
    pthread_barrier_wait(&counted);
    cf_store_idle(st);
    return arg;
}

Test(store, idle_threads_share_one_connection)
{
    cr_assert_eq(cf_store_meta_put(st, "idle", (const uint8_t *)"1", 1, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_eq(open_connections(), 1, "the test thread's connection");
    cf_store_idle(st);
    cr_assert_eq(open_connections(), 1, "the connection given up stays open for the next thread");
    for (int i = 0; i < 4; i++) {
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, read_then_idle, NULL), 0);
        pthread_join(t, NULL);
        cr_expect_eq(open_connections(), 1, "thread %d opened a connection of its own", i);
    }

    /* Two threads at once: the second opens one; once both are idle, one is kept. */
    pthread_t a, b;
    cr_assert_eq(pthread_barrier_init(&holding, NULL, 3), 0);
    cr_assert_eq(pthread_barrier_init(&counted, NULL, 3), 0);
    cr_assert_eq(pthread_create(&a, NULL, hold_then_idle, NULL), 0);
    cr_assert_eq(pthread_create(&b, NULL, hold_then_idle, NULL), 0);
    pthread_barrier_wait(&holding);
    cr_expect_eq(open_connections(), 2, "two threads working at once hold one connection each");
    pthread_barrier_wait(&counted);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    cr_expect_eq(open_connections(), 1, "the second idle connection was not closed");
    pthread_barrier_destroy(&holding);
    pthread_barrier_destroy(&counted);

    /* The test thread's next call takes the kept one: still one. */
    char got[16];
    meta_text("idle", got, sizeof(got));
    cr_expect_str_eq(got, "1");
    cr_expect_eq(open_connections(), 1);
}

static pthread_mutex_t scope_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t scope_cond = PTHREAD_COND_INITIALIZER;
static int scope_step;

static void scope_step_to(int step)
{
    pthread_mutex_lock(&scope_lock);
    scope_step = step;
    pthread_cond_broadcast(&scope_cond);
    pthread_mutex_unlock(&scope_lock);
}

static void scope_wait_for(int step)
{
    pthread_mutex_lock(&scope_lock);
    while (scope_step < step)
        pthread_cond_wait(&scope_cond, &scope_lock);
    pthread_mutex_unlock(&scope_lock);
}

/* Reads inside a scope, goes idle in it, and reads again after another thread's write. */
static void *idle_inside_a_scope(void *arg)
{
    char *seen = arg; /* two 16-byte slots */
    cf_store_read_begin(st);
    meta_text("scoped", seen, 16);
    cf_store_idle(st);
    scope_step_to(1);
    scope_wait_for(2); /* the other thread changed the row */
    meta_text("scoped", seen + 16, 16);
    cf_store_read_end(st);
    cf_store_idle(st);
    return NULL;
}

Test(store, a_thread_in_a_read_scope_keeps_its_connection)
{
    char seen[32] = "";
    cr_assert_eq(cf_store_meta_put(st, "scoped", (const uint8_t *)"old", 3, &err), CF_OK, "%s",
                 err.msg);
    cf_store_idle(st); /* the reader takes this one */
    scope_step = 0;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, idle_inside_a_scope, seen), 0);
    scope_wait_for(1);
    /* The reader kept its connection: this thread finds no spare and opens one. */
    cr_assert_eq(cf_store_meta_put(st, "scoped", (const uint8_t *)"new", 3, &err), CF_OK, "%s",
                 err.msg);
    cr_expect_eq(open_connections(), 2, "the reader gave up its connection inside its read scope");
    scope_step_to(2);
    pthread_join(t, NULL);
    /* Its scope's reads all saw the database as it was when the scope's first read began. */
    cr_expect_str_eq(seen, "old");
    cr_expect_str_eq(seen + 16, "old", "the scope's second read saw a later commit");
}

static struct sql_stmt ST_SYNC_MODE = SQL_STMT("PRAGMA synchronous");

static enum cf_rc read_mode(const struct db_row *row, void *item)
{
    *(int64_t *)item = db_row_int64(row, 0);
    return CF_OK;
}

/* PRAGMA synchronous of the calling thread's connection (2: FULL, 1: NORMAL). */
static int64_t sync_mode(void)
{
    struct sql_store *s = sql_store_of(st);
    struct db_conn *c = NULL;
    int64_t mode = -1;
    bool found = false;
    cr_assert_eq(s->drv->conn_get(s, &c, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(sql_get_row(c, &ST_SYNC_MODE, NULL, 0, read_mode, &mode, &found, &err), CF_OK,
                 "%s", err.msg);
    return mode;
}

static void *defer_write_then_idle(void *arg)
{
    (void)arg;
    cr_assert(cf_store_sync_defer(st, true));
    cr_expect_eq(sync_mode(), 1, "a deferring thread's connection runs synchronous=NORMAL");
    struct cf_err e;
    cr_expect_eq(cf_store_meta_put(st, "deferred", (const uint8_t *)"1", 1, &e), CF_OK, "%s",
                 e.msg);
    cf_store_idle(st);
    return NULL;
}

Test(store, a_deferring_threads_connection_is_handed_on_synced_in_full)
{
    cr_assert_eq(sync_mode(), 2, "a thread's connection syncs every commit by default");
    cf_store_idle(st);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, defer_write_then_idle, NULL), 0);
    pthread_join(t, NULL);
    /* This thread takes the connection the deferring thread gave up, back in FULL mode. */
    cr_expect_eq(sync_mode(), 2, "the next thread inherited the deferring thread's mode");
    char got[16];
    meta_text("deferred", got, sizeof(got));
    cr_expect_str_eq(got, "1");
}
