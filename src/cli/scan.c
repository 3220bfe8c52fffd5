/* `coffer scan`: the secret-leak gate for pipelines and commits (docs/scan.md). Scans files and
 * directories (honouring .gitignore), standard input, git history, or the staged changes, with the
 * built-in and user rules, and, with --known, for the values of the secrets the token can read.
 * Prints findings redacted as text, JSON or SARIF 2.1.0. With --mark-leaked, each Coffer secret
 * whose value was found is marked leaked on the server (POST /api/v1/secrets/leaked, naming where
 * it was found, never the value), and with --rotate-leaked its rotation is asked for. Exit status:
 * 0 clean, 1 findings, 2 an error (a usage error, an unreadable file, a failed request, a secret
 * that could not be marked): a scan that could not look at everything never passes. The scanning
 * itself lives in src/scan/. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <git2.h>
#include <jansson.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/scan_cmd.h"
#include "scan/dbcache.h"
#include "scan/engine.h"
#include "scan/git.h"
#include "scan/report.h"
#include "scan/rules.h"
#include "scan/walk.h"
#include "util/str.h"
#include "util/wipemem.h"
#include "util/banned.h"

/* Where a known value lives: what the server needs to mark it leaked. */
struct known_place {
    char *label; /* "project-slug/env/path/KEY", as findings name it */
    char *project_id, *env, *path, *key;
};

/* Everything a scan needs, made from the options. */
struct scan_setup {
    struct cf_scan_rules rules;
    struct known_place *places; /* with --known */
    size_t nplaces;
    struct cf_scan_engine *engine;
    struct cf_scan_report report;
    bool report_ready;
    enum cf_scan_format format;
};

/* Whether argv asks for --known (before "--"): the command then needs a client. */
static bool wants_known(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--known") == 0 || strcmp(argv[i], "--known=true") == 0)
            return true;
    }
    return false;
}

/* Starts a form of the command; returns false with *status set when it should stop. */
static bool begin(struct cf_cli *cli, int argc, char **argv, const char *text,
                  const struct cf_opt *opts, size_t nopts, size_t max_args, int *status)
{
    struct cf_cli_spec spec = {
        text, wants_known(argc, argv) ? 0u : (unsigned)CF_CLI_OFFLINE, 0, max_args, opts, nopts};
    /* git and install-hook are not declared as the spec's subcommands: the command tree (help,
       completion, man) takes those to accept the parent's options, and they have their own */
    if (cf_cli_begin(cli, argc, argv, &spec, status))
        return true;
    if (*status == CF_EXIT_FAILURE)
        *status = SCAN_EXIT_ERROR;
    return false;
}

/* Prints "coffer: <message>" on stderr; returns SCAN_EXIT_ERROR. */
static int scan_fail(const char *message)
{
    cf_cli_fail("%s", message);
    return SCAN_EXIT_ERROR;
}

/* ---- known values ---------------------------------------------------------------------------- */

struct known_set {
    struct cf_scan_known *items;
    struct known_place *places; /* places[i] is where items[i] lives */
    size_t count, cap;
    json_t *answers; /* the answers the values point into */
};

static void place_release(struct known_place *p)
{
    free(p->label);
    free(p->project_id);
    free(p->env);
    free(p->path);
    free(p->key);
}

static void places_free(struct known_place *places, size_t n)
{
    for (size_t i = 0; i < n; i++)
        place_release(&places[i]);
    free(places);
}

static void known_release(struct known_set *set)
{
    places_free(set->places, set->count);
    free(set->items);
    json_decref(set->answers);
    memset(set, 0, sizeof(*set));
}

static int known_add(struct known_set *set, const char *label, const char *project_id,
                     const char *env, const char *path, const char *key, json_t *secret)
{
    const char *value = json_string_value(json_object_get(secret, "secretValue"));
    if (!value)
        return CF_EXIT_OK;
    if (set->count == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        struct cf_scan_known *grown = realloc(set->items, cap * sizeof(*grown));
        if (!grown)
            return cf_cli_fail("out of memory");
        set->items = grown;
        struct known_place *grown_places = realloc(set->places, cap * sizeof(*grown_places));
        if (!grown_places)
            return cf_cli_fail("out of memory");
        set->places = grown_places;
        set->cap = cap;
    }
    struct known_place place = {strdup(label), strdup(project_id), strdup(env), strdup(path),
                                strdup(key)};
    if (!place.label || !place.project_id || !place.env || !place.path || !place.key) {
        place_release(&place);
        return cf_cli_fail("out of memory");
    }
    set->places[set->count] = place;
    set->items[set->count++] = (struct cf_scan_known){
        value, json_string_length(json_object_get(secret, "secretValue")), place.label};
    return CF_EXIT_OK;
}

/* Reads every value the token can read: the inventory names the projects and environments, one
 * recursive list per environment gives the values. They stay in memory only (the client's JSON
 * allocator wipes them when released). */
static int fetch_known(struct cf_cli *cli, const char *project_id, struct known_set *set)
{
    json_t *inventory = NULL, *project, *env, *secret;
    size_t i, j, k;
    int status;
    const struct cf_query_param iq[] = {{"projectId", project_id}, {NULL, NULL}};
    set->answers = json_array();
    if (!set->answers)
        return cf_cli_fail("out of memory");
    status = cf_cli_request(cli, "GET", "/v1/inventory", iq, NULL, &inventory);
    if (status != CF_EXIT_OK)
        return status;
    json_array_foreach(json_object_get(inventory, "projects"), i, project)
    {
        const char *pid = json_string_value(json_object_get(project, "id"));
        const char *pslug = json_string_value(json_object_get(project, "slug"));
        json_array_foreach(json_object_get(project, "environments"), j, env)
        {
            const char *eslug = json_string_value(json_object_get(env, "slug"));
            json_t *answer = NULL;
            if (!pid || !pslug || !eslug)
                continue;
            if (json_array_size(json_object_get(env, "secrets")) == 0)
                continue;
            const struct cf_query_param q[] = {{"projectId", pid},
                                               {"environment", eslug},
                                               {"secretPath", "/"},
                                               {"recursive", "true"},
                                               {NULL, NULL}};
            status = cf_cli_request(cli, "GET", "/v4/secrets", q, NULL, &answer);
            if (status != CF_EXIT_OK)
                goto out;
            if (json_array_append_new(set->answers, answer)) {
                status = cf_cli_fail("out of memory");
                goto out;
            }
            json_array_foreach(json_object_get(answer, "secrets"), k, secret)
            {
                char label[1024];
                const char *path = json_string_value(json_object_get(secret, "secretPath"));
                const char *key = json_string_value(json_object_get(secret, "secretKey"));
                if (!key)
                    continue;
                if (!path)
                    path = "/";
                snprintf(label, sizeof(label), "%s/%s%s/%s", pslug, eslug,
                         strcmp(path, "/") == 0 ? "" : path, key);
                if ((status = known_add(set, label, pid, eslug, path, key, secret)) != CF_EXIT_OK)
                    goto out;
            }
        }
    }
out:
    json_decref(inventory);
    return status;
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int setup(struct cf_cli *cli, const struct scan_opts *o, struct scan_setup *s)
{
    struct cf_err err = {0};
    struct known_set known = {0};
    int status = CF_EXIT_OK;
    size_t skipped = 0;
    char *cache_dir = NULL;

    if (!o->output || strcmp(o->output, "text") == 0)
        s->format = CF_SCAN_TEXT;
    else if (strcmp(o->output, "json") == 0)
        s->format = CF_SCAN_JSON;
    else if (strcmp(o->output, "sarif") == 0)
        s->format = CF_SCAN_SARIF;
    else
        return cf_cli_usage_error(cli, "--output takes text, json or sarif, not '%.32s'",
                                  o->output);
    if (o->no_builtin && !o->rules_file)
        return cf_cli_usage_error(cli, "--no-builtin needs --rules FILE");
    if (o->project_id && !o->known)
        return cf_cli_usage_error(cli, "--projectId goes with --known");
    if (o->mark_leaked && !o->known)
        return cf_cli_usage_error(cli, "--mark-leaked goes with --known");
    if (o->rotate_leaked && !o->mark_leaked)
        return cf_cli_usage_error(cli, "--rotate-leaked goes with --mark-leaked");
    if (cf_scan_report_init(&s->report, &err) != CF_OK)
        return scan_fail(err.msg);
    s->report_ready = true;
    if ((!o->no_builtin && cf_scan_rules_add_builtin(&s->rules, &err) != CF_OK) ||
        (o->rules_file && cf_scan_rules_load(&s->rules, o->rules_file, &err) != CF_OK) ||
        (o->baseline && cf_scan_report_load_baseline(&s->report, o->baseline, &err) != CF_OK)) {
        status = scan_fail(err.msg);
        goto out;
    }
    if (o->known && (status = fetch_known(cli, o->project_id, &known)) != CF_EXIT_OK) {
        status = SCAN_EXIT_ERROR;
        goto out;
    }
    if (!o->known && !o->no_cache) {
        char why[300];
        cache_dir = cf_scan_cache_dir(why, sizeof(why));
        if (!cache_dir && why[0])
            fprintf(stderr, "coffer: not caching the compiled rules: %s\n", why);
    }
    if ((o->known
             ? cf_scan_engine_new(&s->engine, &s->rules, known.items, known.count, &skipped, &err)
             : cf_scan_engine_new_cached(&s->engine, &s->rules, cache_dir, &err)) != CF_OK ||
        cf_scan_report_use_rules(&s->report, &s->rules, &err) != CF_OK) {
        status = scan_fail(err.msg);
        goto out;
    }
    s->report.known_values = known.count - skipped;
    /* the places outlive the values: --mark-leaked names them after the scan */
    s->places = known.places;
    s->nplaces = known.count;
    known.places = NULL;
    known.count = 0;
    s->report.known_skipped = skipped;
    if (skipped)
        fprintf(stderr,
                "coffer: %zu known value%s shorter than %d bytes not matched (too short to tell "
                "from ordinary text)\n",
                skipped, skipped == 1 ? "" : "s", CF_SCAN_KNOWN_MIN);
out:
    free(cache_dir);
    known_release(&known);
    return status;
}

static void setup_release(struct scan_setup *s)
{
    places_free(s->places, s->nplaces);
    cf_scan_engine_free(s->engine);
    cf_scan_rules_release(&s->rules);
    if (s->report_ready)
        cf_scan_report_release(&s->report);
}

/* ---- marking leaked secrets ------------------------------------------------------------------ */

static const struct known_place *find_place(const struct scan_setup *s, const char *label)
{
    for (size_t i = 0; i < s->nplaces; i++)
        if (strcmp(s->places[i].label, label) == 0)
            return &s->places[i];
    return NULL;
}

/* The server's limit on a mark's source (store/leaks.h CF_LEAK_SOURCE_MAX, not a header the CLI
 * may include). */
#define LEAK_SOURCE_MAX 512

/* Where finding f was made, as a mark's source: "coffer scan: PATH:LINE" or "coffer scan: commit
 * ID PATH:LINE" ("staged PATH:LINE" for --staged), printable UTF-8 (other bytes shown as '?') of at
 * most LEAK_SOURCE_MAX bytes (a longer one keeps its end, where the file name and line are, after
 * "..."). */
static void leak_source(const struct cf_scan_finding *f, char out[LEAK_SOURCE_MAX + 1])
{
    char full[8192];
    if (f->commit && strcmp(f->commit, "staged") == 0)
        snprintf(full, sizeof(full), "coffer scan: staged %s:%llu", f->path,
                 (unsigned long long)f->line);
    else if (f->commit)
        snprintf(full, sizeof(full), "coffer scan: commit %.12s %s:%llu", f->commit, f->path,
                 (unsigned long long)f->line);
    else
        snprintf(full, sizeof(full), "coffer scan: %s:%llu", f->path, (unsigned long long)f->line);
    bool utf8 = cf_utf8_valid(full, strlen(full));
    for (char *c = full; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f || (!utf8 && (unsigned char)*c >= 0x80))
            *c = '?';
    size_t len = strlen(full);
    if (len <= LEAK_SOURCE_MAX) {
        memcpy(out, full, len + 1);
        return;
    }
    /* the tail, starting on a character's first byte */
    const char *tail = full + len - (LEAK_SOURCE_MAX - 16);
    while ((*tail & 0xC0) == 0x80)
        tail++;
    snprintf(out, LEAK_SOURCE_MAX + 1, "coffer scan: ...%s", tail);
}

/* What the answer of a mark says was done, into action (size bytes); false when a rotation asked
 * for was refused or failed. */
static bool describe_mark(json_t *answer, char *action, size_t size)
{
    json_t *leak = json_object_get(answer, "leak"), *rotation = json_object_get(answer, "rotation");
    const char *outcome = json_string_value(json_object_get(rotation, "outcome"));
    const char *status = json_string_value(json_object_get(rotation, "status"));
    const char *error = json_string_value(json_object_get(rotation, "error"));
    const char *name = json_string_value(json_object_get(rotation, "name"));
    int at = snprintf(action, size, "%s",
                      json_is_true(json_object_get(leak, "created")) ? "marked leaked"
                                                                     : "already marked leaked");
    if (at < 0 || (size_t)at >= size || !outcome)
        return true;
    if (strcmp(outcome, "none") == 0) {
        snprintf(action + at, size - (size_t)at, "; no rotation configured");
        return true;
    }
    if (strcmp(outcome, "triggered") == 0 && (!status || strcmp(status, "failed") != 0)) {
        snprintf(action + at, size - (size_t)at, "; rotation '%s' triggered (%s)",
                 name ? name : "?", status ? status : "?");
        return true;
    }
    snprintf(action + at, size - (size_t)at, "; rotation%s%s%s failed: %s", name ? " '" : "",
             name ? name : "", name ? "'" : "", error ? error : "no reason given");
    return false;
}

/* Marks each distinct Coffer secret among the findings leaked (and asks for its rotation with
 * --rotate-leaked), naming where it was first found; prints what was done per secret on stderr and
 * records it as the findings' action. Returns false when a secret could not be marked or its
 * rotation failed. */
static bool mark_leaked(struct cf_cli *cli, const struct scan_opts *o, struct scan_setup *s)
{
    bool ok = true;
    /* each secret once, at its first finding (the findings are in order) */
    bool *done = calloc(s->nplaces ? s->nplaces : 1, sizeof(*done));
    if (!done) {
        cf_cli_fail("out of memory");
        return false;
    }
    for (size_t i = 0; i < s->report.count; i++) {
        const struct cf_scan_finding *f = &s->report.items[i];
        char source[LEAK_SOURCE_MAX + 1], action[1024];
        json_t *body = NULL, *answer = NULL;
        if (!f->known_label)
            continue;
        const struct known_place *place = find_place(s, f->known_label);
        if (!place || done[place - s->places])
            continue;
        done[place - s->places] = true;
        leak_source(f, source);
        body =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "projectId", place->project_id,
                      "environment", place->env, "secretPath", place->path, "secretKey", place->key,
                      "source", source, "fingerprint", f->fingerprint, "rotate", o->rotate_leaked);
        if (!body) {
            cf_cli_fail("out of memory");
            ok = false;
            break;
        }
        if (cf_cli_request(cli, "POST", "/v1/secrets/leaked", NULL, body, &answer) != CF_EXIT_OK) {
            if (cli->last_status)
                snprintf(action, sizeof(action), "not marked leaked (HTTP %ld)", cli->last_status);
            else
                snprintf(action, sizeof(action), "not marked leaked (server not reached)");
            ok = false;
        } else if (!describe_mark(answer, action, sizeof(action)))
            ok = false;
        json_decref(body);
        json_decref(answer);
        fprintf(stderr, "coffer: %s: %s\n", f->known_label, action);
        if (cf_scan_report_set_action(&s->report, f->known_label, action) != CF_OK) {
            cf_cli_fail("out of memory");
            ok = false;
            break;
        }
    }
    free(done);
    return ok;
}

/* Prints the report and returns the exit status: 1 with findings, else 0 (failed: 2). With
 * --mark-leaked, marks the Coffer secrets found first (a mark that failed: 2). */
static int finish(struct cf_cli *cli, const struct scan_opts *o, struct scan_setup *s, bool failed)
{
    struct cf_err err = {0};
    cf_scan_report_finish(&s->report);
    if (o->mark_leaked && !mark_leaked(cli, o, s))
        failed = true;
    if (cf_scan_report_write(&s->report, s->format, &s->rules, stdout, &err) != CF_OK)
        return scan_fail(err.msg);
    if (s->format == CF_SCAN_TEXT) {
        fprintf(stderr, "coffer: %zu finding%s", s->report.count, s->report.count == 1 ? "" : "s");
        if (s->report.commits)
            fprintf(stderr, " in %llu commit%s", (unsigned long long)s->report.commits,
                    s->report.commits == 1 ? "" : "s");
        fprintf(stderr, " (%llu file%s, %llu bytes scanned", (unsigned long long)s->report.files,
                s->report.files == 1 ? "" : "s", (unsigned long long)s->report.bytes);
        if (s->report.binary_skipped)
            fprintf(stderr, ", %llu binary skipped", (unsigned long long)s->report.binary_skipped);
        if (s->report.baselined)
            fprintf(stderr, ", %zu in the baseline", s->report.baselined);
        if (s->report.known_values)
            fprintf(stderr, ", %zu known values", s->report.known_values);
        fprintf(stderr, ")\n");
    }
    if (s->report.dropped)
        fprintf(stderr, "coffer: %zu more findings not listed (over %d)\n", s->report.dropped,
                CF_SCAN_FINDINGS_MAX);
    if (failed)
        return SCAN_EXIT_ERROR;
    return s->report.count || s->report.dropped ? CF_EXIT_FAILURE : CF_EXIT_OK;
}

/* ---- files ----------------------------------------------------------------------------------- */

struct file_job {
    const struct cf_scan_engine *engine;
    struct cf_scan_report *report;
    struct cf_scan_paths *paths;
    atomic_size_t next;
    atomic_bool failed;
};

struct file_ctx {
    struct cf_scan_report *report;
    const char *path;
};

static enum cf_rc on_file_hit(const struct cf_scan_hit *hit, void *ctx)
{
    struct file_ctx *f = ctx;
    return cf_scan_report_add(f->report, hit, f->path, NULL);
}

/* Scans one open file (or standard input) and adds to the totals. */
static bool scan_fd(struct cf_scanner *scanner, struct cf_scan_report *report, int fd,
                    const char *path, const char *what)
{
    struct cf_err err = {0};
    struct file_ctx ctx = {report, path};
    bool binary = false;
    uint64_t bytes = 0;
    enum cf_rc rc =
        cf_scanner_fd(scanner, fd, what, true, &binary, &bytes, on_file_hit, &ctx, &err);
    pthread_mutex_lock(&report->lock);
    if (binary)
        report->binary_skipped++;
    else
        report->files++;
    report->bytes += bytes;
    pthread_mutex_unlock(&report->lock);
    if (rc != CF_OK) {
        cf_cli_fail("%s", rc == CF_ENOMEM ? "out of memory" : err.msg);
        return false;
    }
    return true;
}

static void *file_worker(void *arg)
{
    struct file_job *job = arg;
    struct cf_scanner *scanner = NULL;
    struct cf_err err = {0};
    if (cf_scanner_new(&scanner, job->engine, &err) != CF_OK) {
        cf_cli_fail("%s", err.msg);
        atomic_store(&job->failed, true);
        return NULL;
    }
    for (;;) {
        size_t i = atomic_fetch_add(&job->next, 1);
        if (i >= job->paths->count)
            break;
        const char *path = job->paths->items[i];
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
            cf_cli_fail("cannot read '%s': %s", path, strerror(errno));
            atomic_store(&job->failed, true);
            continue;
        }
        /* opened without blocking so that a FIFO left in the tree cannot hang the scan */
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        if (!scan_fd(scanner, job->report, fd, path, path))
            atomic_store(&job->failed, true);
        close(fd);
    }
    cf_scanner_free(scanner);
    return NULL;
}

static long default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > SCAN_THREADS_MAX ? SCAN_THREADS_MAX : n;
}

static bool scan_files(struct scan_setup *s, struct cf_scan_paths *paths, long threads)
{
    struct file_job job = {s->engine, &s->report, paths, 0, false};
    pthread_t ids[SCAN_THREADS_MAX];
    long started = 0;
    if ((size_t)threads > paths->count)
        threads = paths->count ? (long)paths->count : 1;
    for (long i = 1; i < threads; i++) {
        if (pthread_create(&ids[started], NULL, file_worker, &job) != 0)
            break;
        started++;
    }
    file_worker(&job);
    for (long i = 0; i < started; i++)
        pthread_join(ids[i], NULL);
    return !atomic_load(&job.failed);
}

int cf_cmd_scan_git(int argc, char **argv);
int cf_cmd_scan_install_hook(int argc, char **argv);

int cf_cmd_scan(int argc, char **argv)
{
    struct scan_opts o = {0};
    bool use_stdin = false, staged = false;
    struct cf_opt_int threads = {0};
    const struct cf_opt opts[] = {SCAN_TOP_OPTS(o, use_stdin, staged, threads)};
    struct cf_cli cli;
    struct scan_setup s = {0};
    struct cf_scan_paths paths = {0};
    struct cf_err err = {0};
    int status;
    bool ok = true;

    if (argc > 1 && strcmp(argv[1], "git") == 0)
        return cf_cmd_scan_git(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "install-hook") == 0)
        return cf_cmd_scan_install_hook(argc - 1, argv + 1);
    cf_json_use_wiping_allocator();
    git_libgit2_init();
    if (!begin(&cli, argc, argv, scan_usage, opts, sizeof(opts) / sizeof(opts[0]), SIZE_MAX,
               &status))
        goto out;
    if (use_stdin && (staged || cli.nargs)) {
        status = cf_cli_usage_error(&cli, "--stdin takes no PATH and no --staged");
        goto out;
    }
    if (staged && cli.nargs > 1) {
        status = cf_cli_usage_error(&cli, "--staged takes at most one PATH (the repository)");
        goto out;
    }
    if (threads.set && (threads.value < 1 || threads.value > SCAN_THREADS_MAX)) {
        status = cf_cli_usage_error(&cli, "--threads takes 1 to %d", SCAN_THREADS_MAX);
        goto out;
    }
    if ((status = setup(&cli, &o, &s)) != CF_EXIT_OK)
        goto out;
    if (use_stdin) {
        struct cf_scanner *scanner = NULL;
        if (cf_scanner_new(&scanner, s.engine, &err) != CF_OK) {
            status = scan_fail(err.msg);
            goto out;
        }
        ok = scan_fd(scanner, &s.report, STDIN_FILENO, "(stdin)", "standard input");
        cf_scanner_free(scanner);
    } else if (staged) {
        enum cf_rc rc =
            cf_scan_git_staged(s.engine, cli.nargs ? cli.args[0] : ".", &s.report, &err);
        if (rc != CF_OK) {
            status = scan_fail(err.msg);
            goto out;
        }
    } else {
        static const char *const here[] = {"."};
        const char *const *roots = cli.nargs ? (const char *const *)cli.args : here;
        if (cf_scan_walk(roots, cli.nargs ? cli.nargs : 1, &paths, &err) != CF_OK) {
            status = scan_fail(err.msg);
            goto out;
        }
        ok = scan_files(&s, &paths, threads.set ? (long)threads.value : default_threads());
    }
    status = finish(&cli, &o, &s, !ok);
out:
    cf_scan_paths_release(&paths);
    setup_release(&s);
    cf_cli_end(&cli);
    git_libgit2_shutdown();
    return status;
}

int cf_cmd_scan_git(int argc, char **argv)
{
    struct scan_opts o = {0};
    const char *since = NULL;
    bool all = false;
    const struct cf_opt opts[] = {
        SCAN_COMMON_OPTS(o),
        {"since", CF_OPT_STRING, &since},
        {"all", CF_OPT_BOOL, &all},
    };
    struct cf_cli cli;
    struct scan_setup s = {0};
    struct cf_err err = {0};
    int status;

    cf_json_use_wiping_allocator();
    git_libgit2_init();
    if (!begin(&cli, argc, argv, scan_git_usage, opts, sizeof(opts) / sizeof(opts[0]), 1, &status))
        goto out;
    if ((status = setup(&cli, &o, &s)) != CF_EXIT_OK)
        goto out;
    if (cf_scan_git_history(s.engine, cli.nargs ? cli.args[0] : ".", since, all, &s.report, &err) !=
        CF_OK) {
        status = scan_fail(err.msg);
        goto out;
    }
    status = finish(&cli, &o, &s, false);
out:
    setup_release(&s);
    cf_cli_end(&cli);
    git_libgit2_shutdown();
    return status;
}

int cf_cmd_scan_install_hook(int argc, char **argv)
{
    const char *rules_file = NULL, *baseline = NULL;
    bool force = false;
    const struct cf_opt opts[] = {
        {"force", CF_OPT_BOOL, &force},
        {"rules", CF_OPT_STRING, &rules_file},
        {"baseline", CF_OPT_STRING, &baseline},
    };
    const struct cf_cli_spec spec = {
        scan_hook_usage, CF_CLI_OFFLINE, 0, 1, opts, sizeof(opts) / sizeof(opts[0])};
    struct cf_cli cli;
    struct cf_err err = {0};
    char program[PATH_MAX];
    const char *extra[4];
    size_t nextra = 0;
    char *written = NULL;
    int status;

    git_libgit2_init();
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status)) {
        if (status == CF_EXIT_FAILURE)
            status = SCAN_EXIT_ERROR;
        goto out;
    }
    ssize_t n = readlink("/proc/self/exe", program, sizeof(program) - 1);
    if (n <= 0) {
        cf_cli_fail("cannot find this program's path: %s", strerror(errno));
        status = SCAN_EXIT_ERROR;
        goto out;
    }
    program[n] = '\0';
    if (rules_file) {
        extra[nextra++] = "--rules";
        extra[nextra++] = rules_file;
    }
    if (baseline) {
        extra[nextra++] = "--baseline";
        extra[nextra++] = baseline;
    }
    if (cf_scan_git_install_hook(cli.nargs ? cli.args[0] : ".", program, extra, nextra, force,
                                 &written, &err) != CF_OK) {
        status = scan_fail(err.msg);
        goto out;
    }
    printf("wrote %s\n", written);
    status = CF_EXIT_OK;
out:
    free(written);
    cf_cli_end(&cli);
    git_libgit2_shutdown();
    return status;
}
