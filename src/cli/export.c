/* `coffer export`: prints the secrets of one folder (with its imports, references expanded) in a
 * format a pipeline can consume: dotenv, dotenv-export, json, yaml, csv (Infisical's formats), and
 * azure-devops and github (logging commands / $GITHUB_ENV). The secrets are read with the same
 * request and merged with the same precedence as `coffer run` (fetch.h) and rendered by format.h,
 * sorted by name. Output goes to standard output with write(2) (no stdio buffer keeps a copy), or
 * with --output-file to a private file written atomically; every buffer is wiped. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/fallback.h"
#include "cli/fetch.h"
#include "util/format.h"
#include "cli/machine_login.h"
#include "util/banned.h"
#include "util/str.h"

static const char usage[] =
    "usage: coffer export [--format FORMAT] [--prefix PREFIX] [--output-file FILE]\n"
    "                     [--include-imports=true|false] [--expand=true|false] [options]\n"
    "\n"
    "Prints the secrets of a folder, sorted by name, merged with its imports (the\n"
    "folder's own keys win; a later import wins over an earlier one).\n"
    "\n"
    "formats:\n"
    "  dotenv          KEY='value' (the default)\n"
    "  dotenv-export   export KEY='value'; eval \"$(coffer export --format=dotenv-export)\"\n"
    "                  reproduces every value exactly\n"
    "  json            [{\"key\": ..., \"value\": ..., ...}] as Infisical's CLI prints it\n"
    "  yaml            KEY: \"value\"\n"
    "  csv             Key,Value rows\n"
    "  azure-devops    ##vso[task.setvariable variable=KEY;issecret=true]value lines\n"
    "  github          ::add-mask:: lines on standard output, and KEY<<DELIMITER blocks\n"
    "                  appended to $GITHUB_ENV (printed when it is not set)\n"
    "\n"
    "options:\n"
    "  --format FORMAT    output format (default dotenv)\n"
    "  --prefix PREFIX    prepend PREFIX to every name (e.g. TF_VAR_ for Terraform)\n"
    "  --output-file FILE write to FILE (mode 0600) instead of standard output; a\n"
    "                     directory gets the format's default file name (.env,\n"
    "                     secrets.json, ...), a name without extension gets one\n"
    "  --include-imports  add the folder's imports (default true)\n"
    "  --expand           expand ${...} references on the server (default true)\n"
    "  --strict-references refuse when a secret's reference cannot be followed\n"
    "                     (default: leave that secret out, with a warning)\n"
    "  --silent           no informational messages on standard error\n" CF_FALLBACK_OPTIONS_HELP
        CF_EXPIRY_OPTIONS_HELP
    "  --path PATH        folder (default /)\n" CF_CLI_PROJECT_HELP CF_CLI_ENV_HELP
        CF_CLI_COMMON_HELP "\n"
    "login flags: log in for this command alone (the token is not stored), e.g.\n"
    "  coffer export --method jwt-auth --jwt-from github-actions --machine-identity-id ID "
    "...\n" CF_LOGIN_OPTIONS_HELP "\n"
    "exit status: 0 exported, 1 the server refused or a secret cannot be written in the\n"
    "format (its name is printed; nothing is written then), 2 usage error, 3 with\n"
    "--fail-on-expired when a secret has expired (nothing is written). On any failure the\n"
    "formats a shell or CI agent consumes (dotenv, dotenv-export, azure-devops, github)\n"
    "print lines that make their consumer fail too (docs/cli.md, \"export\").\n";

static int write_fd(int fd, const char *data, size_t len, const char *what)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return cf_cli_fail("cannot write to %s: %s", what,
                               n < 0 ? strerror(errno) : "short write");
        data += n;
        len -= (size_t)n;
    }
    return CF_EXIT_OK;
}

/* What standard output carries when export fails, for the formats whose consumer would otherwise
 * take an empty output for "no secrets" and go on without them. The message itself is already on
 * standard error; these lines only make the consumer fail:
 *  - dotenv, dotenv-export (eval "$(coffer export)", or `. file`): a comment, then a line that
 *    exits a non-interactive shell with coffer's status, `set -e` or not (a bare `false` stops only
 *    a `set -e` shell), and in an interactive shell only sets $? to 1, so a mistyped command at a
 *    prompt does not close the terminal. The line is plain POSIX sh (bash, dash, zsh, ksh).
 *  - azure-devops: an error issue and `task.complete result=Failed`, so the agent fails the step
 *    (and skips the steps that would have used the variables) even when the script goes on.
 *  - github: an `::error::` annotation; redirected into an env file, the line is no valid entry.
 * json, yaml and csv get nothing: their readers fail on an empty document themselves, or are not
 * shells. Nothing is written with --output-file (the file is left as it was). */
static void write_failure_marker(enum cf_format format, int status)
{
    char text[256];
    int len = 0;
    switch (format) {
    case CF_FORMAT_DOTENV:
    case CF_FORMAT_DOTENV_EXPORT:
        len = snprintf(text, sizeof(text),
                       "# coffer export failed: no secret was exported (the reason is on standard "
                       "error)\ncase $- in *i*) false ;; *) exit %d ;; esac\n",
                       status);
        break;
    case CF_FORMAT_AZURE_DEVOPS:
        len = snprintf(text, sizeof(text), "%s",
                       "##vso[task.logissue type=error]coffer export failed: no variable was set "
                       "(the reason is in the log above)\n"
                       "##vso[task.complete result=Failed;]coffer export failed\n");
        break;
    case CF_FORMAT_GITHUB:
        len = snprintf(text, sizeof(text), "%s",
                       "::error::coffer export failed: no secret was exported (the reason is in "
                       "the log above)\n");
        break;
    case CF_FORMAT_JSON:
    case CF_FORMAT_YAML:
    case CF_FORMAT_CSV:
        return;
    }
    if (len > 0 && (size_t)len < sizeof(text))
        (void)write_fd(STDOUT_FILENO, text, (size_t)len, "standard output");
}

/* Builds the final path of --output-file (as Infisical's CLI does) into path. */
static int resolve_output_path(const char *given, enum cf_format format, struct cf_buf *path)
{
    struct stat st;
    size_t len = strlen(given);

    cf_buf_reset(path);
    if (len == 0)
        return cf_cli_fail("--output-file must not be empty");
    if (stat(given, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (cf_buf_printf(path, "%s%s%s", given, given[len - 1] == '/' ? "" : "/",
                          cf_format_default_filename(format)) != CF_OK)
            return cf_cli_fail("out of memory");
        return CF_EXIT_OK;
    }
    if (given[len - 1] == '/') {
        if (mkdir(given, 0700) != 0 && errno != EEXIST)
            return cf_cli_fail("cannot create the directory '%s': %s", given, strerror(errno));
        if (cf_buf_printf(path, "%s%s", given, cf_format_default_filename(format)) != CF_OK)
            return cf_cli_fail("out of memory");
        return CF_EXIT_OK;
    }
    const char *base = strrchr(given, '/');
    base = base ? base + 1 : given;
    const char *dot = strrchr(base, '.');
    bool has_extension = dot && dot != base && dot[1] != '\0';
    if (cf_buf_printf(path, "%s%s", given,
                      has_extension || base[0] == '.' ? "" : cf_format_default_extension(format)) !=
        CF_OK)
        return cf_cli_fail("out of memory");
    return CF_EXIT_OK;
}

/* Writes text to path through a private temporary file in the same directory, fsync and rename. */
static int write_file(const char *path, const struct cf_buf *text)
{
    struct cf_buf tmp;
    int fd = -1, status = CF_EXIT_FAILURE;
    bool tmp_exists = false;

    cf_buf_init(&tmp, 0);
    if (cf_buf_printf(&tmp, "%s.tmp-XXXXXX", path) != CF_OK) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    fd = mkostemp(tmp.data, O_CLOEXEC);
    if (fd < 0) {
        status = cf_cli_fail("cannot create '%s': %s", tmp.data, strerror(errno));
        goto out;
    }
    tmp_exists = true;
    if (fchmod(fd, 0600) != 0) {
        status = cf_cli_fail("cannot set the mode of '%s': %s", tmp.data, strerror(errno));
        goto out;
    }
    status = write_fd(fd, text->data ? text->data : "", text->len, tmp.data);
    if (status != CF_EXIT_OK)
        goto out;
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        status = cf_cli_fail("cannot write '%s': %s", tmp.data, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp.data, path) != 0) {
        status = cf_cli_fail("cannot rename '%s' to '%s': %s", tmp.data, path, strerror(errno));
        goto out;
    }
    tmp_exists = false;
    status = CF_EXIT_OK;
out:
    if (fd >= 0)
        close(fd);
    if (tmp_exists)
        unlink(tmp.data);
    cf_buf_release(&tmp);
    return status;
}

/* Appends the env-file lines to $GITHUB_ENV (opened for appending, created 0600 if missing). */
static int append_github_env(const char *path, const struct cf_buf *env)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return cf_cli_fail("cannot open $GITHUB_ENV ('%s'): %s", path, strerror(errno));
    int status = write_fd(fd, env->data ? env->data : "", env->len, "$GITHUB_ENV");
    if (close(fd) != 0 && status == CF_EXIT_OK)
        status = cf_cli_fail("cannot write $GITHUB_ENV ('%s'): %s", path, strerror(errno));
    return status;
}

/* Fills items (n entries, sorted by key) from set; names[i] receives prefix + key. */
static int build_items(json_t *set, const char *prefix, struct cf_format_item **items_out,
                       char ***names_out, size_t *n_out)
{
    size_t n = 0;
    const char **keys = cf_secrets_sorted_keys(set, &n);
    struct cf_format_item *items = NULL;
    char **names = NULL;
    int status = CF_EXIT_OK;

    *items_out = NULL;
    *names_out = NULL;
    *n_out = 0;
    if (n == 0)
        goto out;
    items = calloc(n, sizeof(*items));
    names = calloc(n, sizeof(*names));
    if (!keys || !items || !names) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *secret = json_object_get(set, keys[i]);
        size_t len = strlen(prefix) + strlen(keys[i]) + 1;
        names[i] = malloc(len);
        if (!names[i]) {
            status = cf_cli_fail("out of memory");
            goto out;
        }
        snprintf(names[i], len, "%s%s", prefix, keys[i]);
        items[i].name = names[i];
        items[i].value = cf_secret_value(secret, &items[i].value_len);
        items[i].id = json_string_value(json_object_get(secret, "id"));
        if (!items[i].id)
            items[i].id = json_string_value(json_object_get(secret, "_id"));
        items[i].workspace = json_string_value(json_object_get(secret, "workspace"));
        items[i].type = json_string_value(json_object_get(secret, "type"));
        items[i].secret_path = json_string_value(json_object_get(secret, "secretPath"));
        items[i].comment = json_string_value(json_object_get(secret, "secretComment"));
        items[i].tags = json_object_get(secret, "tags");
        items[i].skip_multiline = json_is_true(json_object_get(secret, "skipMultilineEncoding"));
    }
    /* Two keys can meet only through the prefix, which is the same for all: names stay unique. */
    *items_out = items;
    *names_out = names;
    *n_out = n;
    items = NULL;
    names = NULL;
out:
    if (names) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
    }
    free(names);
    free(items);
    free(keys);
    return status;
}

int cf_cmd_export(int argc, char **argv)
{
    const char *format_name = NULL, *prefix = NULL, *output_file = NULL;
    bool include_imports = true, expand = true, silent = false, strict_refs = false;
    struct cf_expiry_check expiry = {0};
    struct cf_login_flags login = {0};
    struct cf_fallback fallback = {0};
    int64_t warn_ms = 0;
    const struct cf_opt opts[] = {
        {"format", CF_OPT_STRING, &format_name},
        {"prefix", CF_OPT_STRING, &prefix},
        {"output-file", CF_OPT_STRING, &output_file},
        {"include-imports", CF_OPT_BOOL, &include_imports},
        {"expand", CF_OPT_BOOL, &expand},
        {"strict-references", CF_OPT_BOOL, &strict_refs},
        {"silent", CF_OPT_BOOL, &silent},
        {"expiry-warning", CF_OPT_STRING, &expiry.warning},
        {"fail-on-expired", CF_OPT_BOOL, &expiry.fail_on_expired},
        CF_FALLBACK_OPTS(&fallback),
        CF_LOGIN_OPTS(&login),
    };
    const struct cf_cli_spec spec = {
        usage, CF_CLI_PROJECT | CF_CLI_ENV | CF_CLI_PATH, 0, 0, opts, CF_ARRAY_SIZE(opts), &login};
    enum cf_format format = CF_FORMAT_DOTENV;
    struct cf_format_item *items = NULL;
    char **names = NULL;
    size_t n = 0;
    struct cf_buf out, env, path;
    struct cf_err err;
    struct cf_cli cli;
    json_t *set = NULL;
    int status;

    cf_err_clear(&err);
    cf_buf_init(&out, 0);
    cf_buf_init(&env, 0);
    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (format_name && !cf_format_from_name(format_name, &format)) {
        status = cf_cli_usage_error(&cli,
                                    "unknown format '%.64s' (dotenv, dotenv-export, json, yaml, "
                                    "csv, azure-devops, github)",
                                    format_name);
        goto out;
    }
    if (cli.json) {
        status = cf_cli_usage_error(&cli, "use --format json, not --output json");
        goto out;
    }
    if (format == CF_FORMAT_GITHUB && output_file) {
        status = cf_cli_usage_error(&cli, "--format github writes to $GITHUB_ENV; --output-file "
                                          "does not apply");
        goto out;
    }
    if (output_file && (status = resolve_output_path(output_file, format, &path)) != CF_EXIT_OK)
        goto out;
    if ((status = cf_expiry_check_setup(&cli, &expiry, &warn_ms)) != CF_EXIT_OK)
        goto out;

    const char *paths[] = {cli.path};
    const struct cf_fetch fetch = {cli.project_id, cli.env,         paths,  1,
                                   false,          include_imports, expand, strict_refs};
    status = cf_fallback_setup(&fallback, &cli, "export", &fetch, cf_login_flags_given(&login));
    if (status != CF_EXIT_OK)
        goto out;
    status = cf_fetch_secrets(&cli, &fetch, &set);
    status = cf_fallback_apply(&fallback, &cli, status, &set);
    if (status == CF_EXIT_OK)
        status = cf_secrets_expiry_warn(set, &expiry, warn_ms); /* before anything is written */
    if (status != CF_EXIT_OK)
        goto out;
    status = build_items(set, prefix ? prefix : "", &items, &names, &n);
    if (status != CF_EXIT_OK)
        goto out;
    enum cf_rc rc = format == CF_FORMAT_GITHUB ? cf_format_github(items, n, &out, &env, &err)
                                               : cf_format_render(format, items, n, &out, &err);
    if (rc != CF_OK) {
        status = cf_cli_fail("%s", err.msg);
        goto out;
    }
    if (format == CF_FORMAT_GITHUB) {
        const char *github_env = getenv("GITHUB_ENV");
        status = write_fd(STDOUT_FILENO, out.data ? out.data : "", out.len, "standard output");
        if (status == CF_EXIT_OK && github_env && *github_env)
            status = append_github_env(github_env, &env);
        else if (status == CF_EXIT_OK)
            status = write_fd(STDOUT_FILENO, env.data ? env.data : "", env.len, "standard output");
        if (status == CF_EXIT_OK && github_env && *github_env && !silent)
            fprintf(stderr, "coffer: %zu secrets added to $GITHUB_ENV\n", n);
    } else if (output_file) {
        status = write_file(path.data, &out);
        if (status == CF_EXIT_OK && !silent)
            fprintf(stderr, "Successfully exported secrets to: %s\n", path.data);
    } else {
        status = write_fd(STDOUT_FILENO, out.data ? out.data : "", out.len, "standard output");
    }
out:
    if (status != CF_EXIT_OK && !output_file) {
        /* A format not given or not known yet (a usage error) is taken as the default, dotenv:
         * what a mistyped `eval "$(coffer export --fromat=...)"` would have consumed. */
        if (format_name && !cf_format_from_name(format_name, &format))
            format = CF_FORMAT_DOTENV;
        write_failure_marker(format, status);
    }
    if (names) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
    }
    free(names);
    free(items);
    json_decref(set);
    cf_fallback_release(&fallback);
    cf_buf_release(&path);
    cf_buf_release_wipe(&env);
    cf_buf_release_wipe(&out);
    cf_cli_end(&cli);
    return status;
}
