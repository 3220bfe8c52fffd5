/* `coffer scan`: the secret-leak gate for pipelines and commits (docs/scan.md). Scans files and
 * directories (honouring .gitignore), standard input, git history, or the staged changes, with the
 * built-in and user rules, and, with --known, for the values of the secrets the token can read.
 * Prints findings redacted as text, JSON or SARIF 2.1.0. Exit status: 0 clean, 1 findings, 2 an
 * error (a usage error, an unreadable file, a failed request): a scan that could not look at
 * everything never passes. The scanning itself lives in src/scan/. */
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
#include "scan/engine.h"
#include "scan/git.h"
#include "scan/report.h"
#include "scan/rules.h"
#include "scan/walk.h"
#include "util/wipemem.h"
#include "util/banned.h"

/* Everything a scan needs, made from the options. */
struct scan_setup {
    struct cf_scan_rules rules;
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
    size_t count, cap;
    json_t *answers; /* the answers the values point into */
};

static void known_release(struct known_set *set)
{
    for (size_t i = 0; i < set->count; i++)
        free((char *)set->items[i].label);
    free(set->items);
    json_decref(set->answers);
    memset(set, 0, sizeof(*set));
}

static int known_add(struct known_set *set, const char *label, json_t *secret)
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
        set->cap = cap;
    }
    char *copy = strdup(label);
    if (!copy)
        return cf_cli_fail("out of memory");
    set->items[set->count++] = (struct cf_scan_known){
        value, json_string_length(json_object_get(secret, "secretValue")), copy};
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
                if (!path || strcmp(path, "/") == 0)
                    path = "";
                snprintf(label, sizeof(label), "%s/%s%s/%s", pslug, eslug, path, key);
                if ((status = known_add(set, label, secret)) != CF_EXIT_OK)
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
    if (cf_scan_report_init(&s->report, &err) != CF_OK)
        return scan_fail(err.msg);
    s->report_ready = true;
    if ((!o->no_builtin && cf_scan_rules_add_builtin(&s->rules, &err) != CF_OK) ||
        (o->rules_file && cf_scan_rules_load_yaml(&s->rules, o->rules_file, &err) != CF_OK) ||
        (o->baseline && cf_scan_report_load_baseline(&s->report, o->baseline, &err) != CF_OK)) {
        status = scan_fail(err.msg);
        goto out;
    }
    if (o->known && (status = fetch_known(cli, o->project_id, &known)) != CF_EXIT_OK) {
        status = SCAN_EXIT_ERROR;
        goto out;
    }
    if (cf_scan_engine_new(&s->engine, &s->rules, known.items, known.count, &skipped, &err) !=
        CF_OK) {
        status = scan_fail(err.msg);
        goto out;
    }
    s->report.known_values = known.count - skipped;
    s->report.known_skipped = skipped;
    if (skipped)
        fprintf(stderr,
                "coffer: %zu known value%s shorter than %d bytes not matched (too short to tell "
                "from ordinary text)\n",
                skipped, skipped == 1 ? "" : "s", CF_SCAN_KNOWN_MIN);
out:
    known_release(&known);
    return status;
}

static void setup_release(struct scan_setup *s)
{
    cf_scan_engine_free(s->engine);
    cf_scan_rules_release(&s->rules);
    if (s->report_ready)
        cf_scan_report_release(&s->report);
}

/* Prints the report and returns the exit status: 1 with findings, else 0 (failed: 2). */
static int finish(struct scan_setup *s, bool failed)
{
    struct cf_err err = {0};
    cf_scan_report_finish(&s->report);
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
    status = finish(&s, !ok);
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
    status = finish(&s, false);
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
