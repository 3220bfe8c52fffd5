/* The file sync destination (provider/filedest.c): each format written and read back exactly,
 * mode 0600, atomic replacement, entries merged, and the paths it refuses. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "provider/filedest.h"
#include "util/file.h"
#include "util/str.h"
#include "util/banned.h"

static char dir[256];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/cf-filedest-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    struct cf_err err;
    cr_assert_eq(cf_filedest_set_root(dir, &err), CF_OK, "%s", err.msg);
}

static void teardown(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

TestSuite(provider_file, .init = setup, .fini = teardown);

static json_t *config(const char *name, const char *format)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return json_pack("{ssss}", "path", path, "format", format);
}

static char *slurp(const char *name)
{
    char path[512], *text = NULL;
    size_t len;
    struct cf_err err;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    cr_assert_eq(cf_file_read(path, 1 << 20, &text, &len, &err), CF_OK, "%s", err.msg);
    return text;
}

static const char *value_of(const struct cf_dest_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->items[i].name, name) == 0)
            return l->items[i].value;
    }
    return NULL;
}

#define V(text) .value = text, .value_len = sizeof(text) - 1

/* Values that stress every format's quoting. */
static const struct cf_sync_item tricky[] = {
    {.name = "PLAIN", V("hello")},
    {.name = "QUOTES", V("it's \"quoted\" \\ $HOME `x`")},
    {.name = "MULTI", V("line1\nline2\r\n\tend ")},
    {.name = "EMPTY", V("")},
    {.name = "UNICODE", V("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91")},
    {.name = "HASH", V("a # not a comment: yes")},
};
#define NTRICKY (sizeof(tricky) / sizeof(tricky[0]))

static void round_trip(const char *format)
{
    const struct cf_dest_ops *ops = cf_dest_find("file");
    json_t *cfg = config("out", format);
    struct cf_err err;
    struct cf_dest_list l = {0};
    struct stat st;
    char path[512];

    cr_assert_not_null(ops);
    cr_assert_eq(ops->config_check(cfg, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(ops->push(NULL, cfg, tricky, NTRICKY, NULL, 0, &err), CF_OK, "%s: %s", format,
                 err.msg);
    snprintf(path, sizeof(path), "%s/out", dir);
    cr_assert_eq(lstat(path, &st), 0);
    cr_assert(S_ISREG(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0600, "%s: mode %o", format, st.st_mode & 0777);
    cr_assert_eq(ops->list(NULL, cfg, &l, &err), CF_OK, "%s: %s", format, err.msg);
    cr_assert_eq(l.n, NTRICKY, "%s: %zu entries", format, l.n);
    for (size_t i = 0; i < NTRICKY; i++) {
        const char *v = value_of(&l, tricky[i].name);
        cr_assert_not_null(v, "%s: %s missing", format, tricky[i].name);
        cr_assert_eq(strlen(v), tricky[i].value_len, "%s: %s", format, tricky[i].name);
        cr_assert_eq(memcmp(v, tricky[i].value, tricky[i].value_len), 0, "%s: %s is '%s'", format,
                     tricky[i].name, v);
    }
    cf_dest_list_release(&l);
    json_decref(cfg);
}

Test(provider_file, dotenv_round_trip_and_text)
{
    round_trip("dotenv");
    char *text = slurp("out");
    /* the same lines `coffer export --format dotenv` prints */
    cr_assert_not_null(strstr(text, "PLAIN='hello'\n"), "%s", text);
    cr_assert_not_null(strstr(text, "QUOTES='it'\\''s \"quoted\" \\ $HOME `x`'\n"), "%s", text);
    free(text);
}

Test(provider_file, json_round_trip_and_shape)
{
    round_trip("json");
    char *text = slurp("out");
    json_t *doc = json_loads(text, 0, NULL);
    cr_assert(json_is_array(doc), "%s", text);
    cr_assert_eq(json_array_size(doc), NTRICKY);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(doc, 0), "key")), "PLAIN");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(doc, 0), "value")), "hello");
    json_decref(doc);
    free(text);
}

Test(provider_file, yaml_round_trip)
{
    round_trip("yaml");
    char *text = slurp("out");
    cr_assert_not_null(strstr(text, "PLAIN: \"hello\"\n"), "%s", text);
    cr_assert_not_null(strstr(text, "MULTI: \"line1\\nline2\\r\\n\\tend \"\n"), "%s", text);
    free(text);
}

Test(provider_file, push_merges_updates_and_removes)
{
    const struct cf_dest_ops *ops = cf_dest_find("file");
    json_t *cfg = config("merge.env", "dotenv");
    struct cf_err err;
    struct cf_dest_list l = {0};
    char path[512];
    snprintf(path, sizeof(path), "%s/merge.env", dir);
    /* a file someone wrote by hand: a comment, export, double quotes, a bare value */
    const char *hand = "# kept\nexport KEEP=\"by hand\\n\"\nOLD='gone'\nUPD=bare\n";
    cr_assert_eq(cf_file_replace(path, hand, strlen(hand), &err), CF_OK);
    const struct cf_sync_item items[] = {{.name = "UPD", V("new")}, {.name = "ADDED", V("a")}};
    const char *remove[] = {"OLD", "NEVER_THERE"};
    cr_assert_eq(ops->push(NULL, cfg, items, 2, remove, 2, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(ops->list(NULL, cfg, &l, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(l.n, 3);
    cr_assert_str_eq(l.items[0].name, "KEEP");
    cr_assert_str_eq(l.items[0].value, "by hand\n");
    cr_assert_str_eq(value_of(&l, "UPD"), "new");
    cr_assert_str_eq(value_of(&l, "ADDED"), "a");
    cr_assert_null(value_of(&l, "OLD"));
    cf_dest_list_release(&l);
    json_decref(cfg);
}

Test(provider_file, replace_is_atomic)
{
    const struct cf_dest_ops *ops = cf_dest_find("file");
    json_t *cfg = config("atomic.env", "dotenv");
    struct cf_err err;
    char path[512], old[64] = "";
    const struct cf_sync_item v1 = {.name = "K", V("one")};
    const struct cf_sync_item v2 = {.name = "K", V("two")};
    snprintf(path, sizeof(path), "%s/atomic.env", dir);
    cr_assert_eq(ops->push(NULL, cfg, &v1, 1, NULL, 0, &err), CF_OK, "%s", err.msg);
    /* A reader that opened the file before the push keeps reading the old file whole: the new
     * contents arrive by rename, never by writing into the file a reader has open. */
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ops->push(NULL, cfg, &v2, 1, NULL, 0, &err), CF_OK, "%s", err.msg);
    cr_assert_gt(read(fd, old, sizeof(old) - 1), 0);
    close(fd);
    cr_assert_str_eq(old, "K='one'\n");
    char *now = slurp("atomic.env");
    cr_assert_str_eq(now, "K='two'\n");
    free(now);
    /* no temporary file left beside it */
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        files += e->d_name[0] != '.';
    closedir(d);
    cr_assert_eq(files, 1);
    json_decref(cfg);
}

Test(provider_file, refuses_symlink_directory_relative)
{
    const struct cf_dest_ops *ops = cf_dest_find("file");
    struct cf_err err;
    char target[512], link_path[512];
    const struct cf_sync_item item = {.name = "K", V("s3cr3t-value")};
    snprintf(target, sizeof(target), "%s/target", dir);
    snprintf(link_path, sizeof(link_path), "%s/link", dir);
    cr_assert_eq(cf_file_replace(target, "ORIG='x'\n", 9, &err), CF_OK);
    cr_assert_eq(symlink(target, link_path), 0);

    json_t *cfg = config("link", "dotenv");
    cr_assert_eq(ops->push(NULL, cfg, &item, 1, NULL, 0, &err), CF_EINVAL);
    cr_assert_not_null(strstr(err.msg, "symbolic link"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "s3cr3t"));
    char *kept = slurp("target");
    cr_assert_str_eq(kept, "ORIG='x'\n");
    free(kept);
    struct stat st;
    cr_assert_eq(lstat(link_path, &st), 0);
    cr_assert(S_ISLNK(st.st_mode));
    json_decref(cfg);

    char sub[512];
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    cfg = config("sub", "dotenv");
    cr_assert_eq(ops->push(NULL, cfg, &item, 1, NULL, 0, &err), CF_EINVAL);
    cr_assert_not_null(strstr(err.msg, "directory"), "%s", err.msg);
    json_decref(cfg);

    cfg = json_pack("{ss}", "path", "relative/out.env");
    cr_assert_eq(ops->config_check(cfg, &err), CF_EVALIDATION);
    cr_assert_str_eq(err.field, "path");
    cr_assert_eq(ops->push(NULL, cfg, &item, 1, NULL, 0, &err), CF_EVALIDATION);
    json_decref(cfg);
    cfg = config("x", "csv");
    cr_assert_eq(ops->config_check(cfg, &err), CF_EVALIDATION);
    cr_assert_str_eq(err.field, "format");
    json_decref(cfg);
}

/* File syncs write only below the directory the server's administrator named (--sync-file-dir):
 * without one they are off, and no path, link or ".." leads out of it. */
Test(provider_file, paths_outside_the_allowed_directory_are_refused)
{
    const struct cf_dest_ops *ops = cf_dest_find("file");
    struct cf_err err;
    char path[512];
    json_t *cfg = config("out.env", "dotenv");
    cr_assert_eq(ops->config_check(cfg, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_filedest_set_root(NULL, &err), CF_OK);
    cr_assert_eq(ops->config_check(cfg, &err), CF_EVALIDATION);
    cr_assert_not_null(strstr(err.msg, "--sync-file-dir"), "%s", err.msg);
    json_decref(cfg);

    cr_assert_eq(cf_filedest_set_root("relative", &err), CF_EINVAL);
    cr_assert_eq(cf_filedest_set_root("/", &err), CF_EINVAL);
    cr_assert_eq(cf_filedest_set_root("/nonexistent-coffer-dir", &err), CF_EINVAL);
    snprintf(path, sizeof(path), "%s/file", dir);
    cr_assert_eq(cf_file_create(path, "x", 1, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_filedest_set_root(path, &err), CF_EINVAL);
    cr_assert_not_null(strstr(err.msg, "not a directory"), "%s", err.msg);
    cr_assert_eq(cf_filedest_set_root(dir, &err), CF_OK, "%s", err.msg);

    const char *outside[] = {"/etc/coffer.env", "/tmp/coffer-outside.env"};
    for (size_t i = 0; i < CF_ARRAY_SIZE(outside); i++) {
        cfg = json_pack("{ss}", "path", outside[i]);
        cr_assert_eq(ops->config_check(cfg, &err), CF_EVALIDATION, "%s", outside[i]);
        cr_assert_not_null(strstr(err.msg, "below"), "%s", err.msg);
        json_decref(cfg);
    }
    const char *dotted[] = {"/../out.env", "/./out.env", "//out.env", "/sub/../../out.env"};
    for (size_t i = 0; i < CF_ARRAY_SIZE(dotted); i++) {
        snprintf(path, sizeof(path), "%s%s", dir, dotted[i]);
        cfg = json_pack("{ss}", "path", path);
        cr_assert_eq(ops->config_check(cfg, &err), CF_EVALIDATION, "%s", path);
        cr_assert_not_null(strstr(err.msg, "components"), "%s: %s", path, err.msg);
        json_decref(cfg);
    }
    /* a link inside the directory that leads out of it */
    snprintf(path, sizeof(path), "%s/link", dir);
    cr_assert_eq(symlink("/tmp", path), 0);
    char name[64];
    snprintf(name, sizeof(name), "link/coffer-filedest-%d.env", (int)getpid());
    cfg = config(name, "dotenv");
    cr_assert_eq(ops->config_check(cfg, &err), CF_EVALIDATION);
    cr_assert_not_null(strstr(err.msg, "below"), "%s", err.msg);
    struct cf_sync_item item = {.name = "A", .key = "A", .value = "v", .value_len = 1};
    cr_assert_eq(ops->push(NULL, cfg, &item, 1, NULL, 0, &err), CF_EVALIDATION);
    json_decref(cfg);
    /* a link to a directory that does not exist (yet) */
    snprintf(path, sizeof(path), "%s/dangling", dir);
    cr_assert_eq(symlink("/nonexistent-coffer-dir/x", path), 0);
    cfg = config("dangling/out.env", "dotenv");
    cr_assert_eq(ops->config_check(cfg, &err), CF_EVALIDATION);
    json_decref(cfg);
    /* a directory that does not exist yet below the allowed one is fine */
    cfg = config("later/out.env", "dotenv");
    cr_assert_eq(ops->config_check(cfg, &err), CF_OK, "%s", err.msg);
    json_decref(cfg);
    snprintf(path, sizeof(path), "/tmp/%s", name + 5);
    cr_assert_eq(access(path, F_OK), -1, "a push through the link wrote outside the directory");
}

Test(provider_file, errors_never_show_values)
{
    const struct cf_dest_ops *ops = cf_dest_find("file");
    struct cf_err err;
    struct cf_dest_list l = {0};
    char path[512];
    json_t *cfg = config("bad.env", "dotenv");
    snprintf(path, sizeof(path), "%s/bad.env", dir);
    const char *broken = "GOOD='fine'\nBAD='s3cr3t-unterminated\n";
    cr_assert_eq(cf_file_replace(path, broken, strlen(broken), &err), CF_OK);
    cr_assert_eq(ops->list(NULL, cfg, &l, &err), CF_EINVAL);
    cr_assert_not_null(strstr(err.msg, "line 2"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "s3cr3t"), "%s", err.msg);
    cr_assert_eq(l.n, 0);
    const struct cf_sync_item nul = {.name = "N", V("s3cr3t\0x")};
    unlink(path);
    cr_assert_eq(ops->push(NULL, cfg, &nul, 1, NULL, 0, &err), CF_EVALIDATION);
    cr_assert_null(strstr(err.msg, "s3cr3t"), "%s", err.msg);
    json_decref(cfg);
}

Test(provider_file, names_and_lookup)
{
    const struct cf_dest_ops *ops = cf_dest_find("file");
    struct cf_err err;
    char out[64];
    cr_assert_not_null(cf_dest_find("github"));
    cr_assert_null(cf_dest_find("nope"));
    cr_assert_eq(ops->map_name("DB_URL", out, sizeof(out), &err), CF_OK);
    cr_assert_str_eq(out, "DB_URL");
    cr_assert_eq(ops->map_name("db-url", out, sizeof(out), &err), CF_EVALIDATION);
    cr_assert_eq(ops->map_name("1X", out, sizeof(out), &err), CF_EVALIDATION);
    /* a missing file lists empty */
    json_t *cfg = config("absent", "json");
    struct cf_dest_list l = {0};
    cr_assert_eq(ops->list(NULL, cfg, &l, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(l.n, 0);
    json_decref(cfg);
}
