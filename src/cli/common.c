/* Shared machinery of the server commands (see common.h): option parsing, subcommand dispatch,
 * connection settings, error reporting and output helpers. Nothing here prints a token or, unless
 * asked to show it, a secret value; buffers that may hold either are wiped. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/common.h"
#include "cli/credentials.h"
#include "cli/machine_login.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define CELL_MAX (1024u * 1024u)

/* ---- options --------------------------------------------------------------------------------- */

static const struct cf_opt *find_opt(const struct cf_opt *opts, size_t nopts, const char *name,
                                     size_t len)
{
    for (size_t i = 0; i < nopts; i++) {
        if (strlen(opts[i].name) == len && memcmp(opts[i].name, name, len) == 0)
            return &opts[i];
    }
    return NULL;
}

void cf_args_release(struct cf_args *args)
{
    free(args->items);
    args->items = NULL;
    args->count = 0;
}

bool cf_opt_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
}

static enum cf_rc set_value(const struct cf_opt *opt, const char *value, struct cf_err *err)
{
    switch (opt->type) {
    case CF_OPT_BOOL:
        if (!value || strcmp(value, "true") == 0) {
            *(bool *)opt->value = true;
        } else if (strcmp(value, "false") == 0) {
            *(bool *)opt->value = false;
        } else {
            return cf_err_set(err, CF_EINVAL, "option '--%s' takes true or false", opt->name);
        }
        return CF_OK;
    case CF_OPT_STRING:
        *(const char **)opt->value = value;
        return CF_OK;
    case CF_OPT_INT: {
        struct cf_opt_int *target = opt->value;
        long long number;
        if (!cf_parse_int64(value, 0, INT64_MAX, &number))
            return cf_err_set(err, CF_EINVAL,
                              "option '--%s' needs a whole number >= 0, not '%.64s'", opt->name,
                              value);
        target->set = true;
        target->value = number;
        return CF_OK;
    }
    }
    CF_BUG("unknown option type");
}

/* Optimal string alignment distance (Damerau-Levenshtein without repeated edits of a substring)
 * between a[0..alen-1] and b[0..blen-1]; both at most NAME_MAX_LEN long. */
#define NAME_MAX_LEN 64
static size_t osa_distance(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t d[NAME_MAX_LEN + 1][NAME_MAX_LEN + 1];
    for (size_t i = 0; i <= alen; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= blen; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= alen; i++) {
        for (size_t j = 1; j <= blen; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[alen][blen];
}

const char *cf_cli_nearest(const char *word, size_t len, const char *const *names, size_t count)
{
    const char *best = NULL;
    size_t best_score = SIZE_MAX;
    if (len == 0 || len > NAME_MAX_LEN)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        size_t name_len = strlen(names[i]);
        if (name_len > NAME_MAX_LEN)
            continue;
        size_t longer = name_len > len ? name_len : len;
        size_t limit = longer / 3 < 1 ? 1 : (longer / 3 > 3 ? 3 : longer / 3);
        size_t score = osa_distance(word, len, names[i], name_len);
        if (score > limit) {
            /* --environment for --env, --project for --projectId: one is the other's prefix */
            size_t shorter = name_len < len ? name_len : len;
            if (shorter < 3 || memcmp(word, names[i], shorter) != 0)
                continue;
            score = limit + 1;
        }
        if (score < best_score) {
            best = names[i];
            best_score = score;
        }
    }
    return best;
}

/* The unknown option --name[0..len-1] of opts: a message with the nearest known one. */
static enum cf_rc unknown_option(const struct cf_opt *opts, size_t nopts, const char *name,
                                 size_t len, struct cf_err *err)
{
    const char **names = calloc(nopts + 1, sizeof(*names));
    const char *near = NULL;
    int shown = (int)(len > 64 ? 64 : len);
    if (names) {
        for (size_t i = 0; i < nopts; i++)
            names[i] = opts[i].name;
        names[nopts] = "help";
        near = cf_cli_nearest(name, len, names, nopts + 1);
    }
    if (near)
        cf_err_set(err, CF_EINVAL, "unknown option '--%.*s' (did you mean --%s?)", shown, name,
                   near);
    else
        cf_err_set(err, CF_EINVAL, "unknown option '--%.*s'", shown, name);
    free(names);
    return CF_EINVAL;
}

enum cf_rc cf_opt_parse(int argc, char **argv, const struct cf_opt *opts, size_t nopts,
                        struct cf_args *args, struct cf_err *err)
{
    bool options_done = false;

    args->count = 0;
    args->items = calloc(argc > 0 ? (size_t)argc : 1, sizeof(char *));
    if (!args->items)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            args->items[args->count++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (arg[1] != '-')
            return cf_err_set(err, CF_EINVAL, "unknown option '%.64s'", arg);
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        /* The name only: the text after '=' may be a token. */
        const struct cf_opt *opt = find_opt(opts, nopts, name, name_len);
        if (!opt)
            return unknown_option(opts, nopts, name, name_len, err);
        const char *value = eq ? eq + 1 : NULL;
        if (!value && opt->type != CF_OPT_BOOL) {
            if (i + 1 >= argc)
                return cf_err_set(err, CF_EINVAL, "option '--%s' needs a value", opt->name);
            value = argv[++i];
        }
        enum cf_rc rc = set_value(opt, value, err);
        if (rc != CF_OK)
            return rc;
    }
    return CF_OK;
}

/* ---- command context ------------------------------------------------------------------------- */

const char *cf_cli_first_env(const char *a, const char *b)
{
    const char *value = getenv(a);
    if (value && *value)
        return value;
    value = b ? getenv(b) : NULL;
    return value && *value ? value : NULL;
}

const char *cf_cli_domain_env(void)
{
    const char *value = cf_cli_first_env("COFFER_API_URL", "INFISICAL_DOMAIN");
    return value ? value : cf_cli_first_env("INFISICAL_API_URL", NULL);
}

const char *cf_cli_default_domain(struct cf_buf *stored)
{
    const char *value = cf_cli_domain_env();
    if (value)
        return value;
    /* A credentials file that cannot be used is reported where its token would be. */
    return cf_credentials_domain(stored) ? stored->data : NULL;
}

__attribute__((format(printf, 1, 0))) static void vprint_error(const char *fmt, va_list ap)
{
    char msg[1024];
    struct cf_buf shown;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    cf_buf_init(&shown, 0);
    if (cf_cli_escape(&shown, msg) == CF_OK)
        fprintf(stderr, "coffer: %s\n", shown.data);
    else
        fprintf(stderr, "coffer: %s\n", "out of memory");
    cf_buf_release(&shown);
}

int cf_cli_usage_error(const struct cf_cli *cli, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint_error(fmt, ap);
    va_end(ap);
    if (cli && cli->usage)
        cf_cli_print_synopsis(stderr, cli->usage, cli->flags, cli->nflags);
    return CF_EXIT_USAGE;
}

int cf_cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint_error(fmt, ap);
    va_end(ap);
    return CF_EXIT_FAILURE;
}

/* Makes cli->client. The token is, first found: --token, COFFER_TOKEN,
 * INFISICAL_UNIVERSAL_AUTH_ACCESS_TOKEN, INFISICAL_TOKEN (Infisical's order after COFFER_TOKEN),
 * then the login stored by `coffer login`, which is used only for the server it was issued by (and
 * names that server when none is given). On failure prints why, sets *exit_status (2 for a usage
 * error, 1 otherwise) and returns false. */
static bool make_client(struct cf_cli *cli, const char *domain, const char *token, int *exit_status)
{
    struct cf_client_options client_options = {0};
    struct cf_buf stored_token, stored_domain, default_domain;
    struct cf_err err;
    bool made = false;

    cf_err_clear(&err);
    cf_buf_init(&stored_token, 0);
    cf_buf_init(&stored_domain, 0);
    cf_buf_init(&default_domain, 0);
    *exit_status = CF_EXIT_USAGE;
    client_options.domain = domain ? domain : cf_cli_default_domain(&default_domain);
    client_options.ca_file = cf_cli_first_env("COFFER_CACERT", NULL);
    client_options.token = token;
    if (!client_options.token)
        client_options.token =
            cf_cli_first_env("COFFER_TOKEN", "INFISICAL_UNIVERSAL_AUTH_ACCESS_TOKEN");
    if (!client_options.token)
        client_options.token = cf_cli_first_env("INFISICAL_TOKEN", NULL);
    if (!client_options.token) {
        enum cf_rc rc =
            cf_credentials_for(client_options.domain, &stored_token, &stored_domain, &err);
        if (rc == CF_OK) {
            client_options.token = stored_token.data;
            if (!client_options.domain)
                client_options.domain = stored_domain.data;
        } else if (rc != CF_ENOTFOUND) {
            *exit_status = cf_cli_fail("%s", err.msg);
            goto out;
        }
    }
    if (!client_options.token) {
        cf_cli_usage_error(cli, "no token: pass --token, set COFFER_TOKEN, or run 'coffer login'");
        goto out;
    }
    enum cf_rc rc = cf_client_new(&client_options, &cli->client, &err);
    if (rc != CF_OK) {
        if (rc == CF_EINVAL)
            cf_cli_usage_error(cli, "%s", err.msg);
        else
            *exit_status = cf_cli_fail("%s", err.msg);
        goto out;
    }
    made = true;
out:
    cf_buf_release_wipe(&stored_token);
    cf_buf_release(&stored_domain);
    cf_buf_release(&default_domain);
    return made;
}

/* The values of the options cf_cli_begin adds to a spec's own. */
struct shared_values {
    const char *token, *domain, *output, *project_id, *env, *path;
};

/* The options cf_cli_begin parses: the spec's, then the shared ones chosen by its flags (the
 * spec's win on equal names, as the parser looks them up in order). NULL when out of memory;
 * free() it. */
static struct cf_opt *merged_options(const struct cf_cli_spec *spec, struct shared_values *values,
                                     size_t *count)
{
    struct cf_opt *opts = calloc(spec->nopts + 6, sizeof(*opts));
    size_t n = 0;
    if (!opts)
        return NULL;
    for (size_t i = 0; i < spec->nopts; i++)
        opts[n++] = spec->opts[i];
    if (!(spec->flags & CF_CLI_LOCAL))
        opts[n++] = (struct cf_opt){"output", CF_OPT_STRING, &values->output};
    if (!(spec->flags & (CF_CLI_OFFLINE | CF_CLI_LOCAL))) {
        opts[n++] = (struct cf_opt){"token", CF_OPT_STRING, &values->token};
        opts[n++] = (struct cf_opt){"domain", CF_OPT_STRING, &values->domain};
    }
    if (spec->flags & CF_CLI_PROJECT)
        opts[n++] = (struct cf_opt){"projectId", CF_OPT_STRING, &values->project_id};
    if (spec->flags & CF_CLI_ENV)
        opts[n++] = (struct cf_opt){"env", CF_OPT_STRING, &values->env};
    if (spec->flags & CF_CLI_PATH)
        opts[n++] = (struct cf_opt){"path", CF_OPT_STRING, &values->path};
    *count = n;
    return opts;
}

#define METAVAR_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_|,.:-"

/* The name a usage text gives the value of --name ("--env SLUG", "--expand=true|false"): the
 * first such word in capitals or listing choices; "" when there is none. */
static void find_metavar(const char *usage, const char *name, char *out, size_t size)
{
    size_t len = strlen(name);
    out[0] = '\0';
    for (const char *p = usage ? strstr(usage, "--") : NULL; p; p = strstr(p + 2, "--")) {
        const char *q = p + 2 + len;
        if (strncmp(p + 2, name, len) != 0 || (*q != ' ' && *q != '='))
            continue;
        q++;
        size_t n = strcspn(q, " ])\n");
        /* a word of the usage text goes into shell scripts (completion): plain characters only */
        if (n == 0 || n >= size || strspn(q, METAVAR_CHARS) < n ||
            !((q[0] >= 'A' && q[0] <= 'Z') || memchr(q, '|', n)))
            continue;
        memcpy(out, q, n);
        out[n] = '\0';
        return;
    }
}

/* The flags of opts as help and completion show them: one per name (the first wins, as in the
 * parser), then --help. NULL when out of memory; free() it. */
static struct cf_cli_flag *make_flags(const char *usage, const struct cf_opt *opts, size_t nopts,
                                      size_t *count)
{
    struct cf_cli_flag *flags = calloc(nopts + 1, sizeof(*flags));
    size_t n = 0;
    if (!flags)
        return NULL;
    for (size_t i = 0; i < nopts; i++) {
        bool seen = false;
        for (size_t k = 0; k < n && !seen; k++)
            seen = strcmp(flags[k].name, opts[i].name) == 0;
        if (seen)
            continue;
        struct cf_cli_flag *flag = &flags[n++];
        flag->name = opts[i].name;
        flag->takes_value = opts[i].type != CF_OPT_BOOL;
        if (flag->takes_value) {
            find_metavar(usage, flag->name, flag->metavar, sizeof(flag->metavar));
            if (!flag->metavar[0])
                cf_strlcpy(flag->metavar, opts[i].type == CF_OPT_INT ? "N" : "VALUE",
                           sizeof(flag->metavar));
        }
    }
    flags[n++] = (struct cf_cli_flag){"help", false, ""};
    *count = n;
    return flags;
}

/* The node being described (cf_cli_tree_new), or NULL: set only while a description is taken,
 * in the single thread of the CLI, and restored before cf_cli_tree_new returns. */
static struct cf_cli_node *describing;
/* The first failure while describing (out of memory). */
static enum cf_rc describe_rc;

/* Records a command's usage and options into the node being described. */
static void describe_leaf(const char *usage, const struct cf_opt *opts, size_t nopts)
{
    describing->usage = usage;
    describing->flags = make_flags(usage, opts, nopts, &describing->nflags);
    if (!describing->flags)
        describe_rc = CF_ENOMEM;
}

/* Records a command's usage and options into the node being described, and gives it a child
 * with the same for each of words (NULL-terminated; may be NULL). */
static void describe_words(const char *usage, const struct cf_opt *opts, size_t nopts,
                           const char *const *words)
{
    struct cf_cli_node *node = describing;
    size_t nwords = 0;
    describe_leaf(usage, opts, nopts);
    while (words && words[nwords])
        nwords++;
    if (!nwords)
        return;
    node->children = calloc(nwords, sizeof(*node->children));
    if (!node->children) {
        describe_rc = CF_ENOMEM;
        return;
    }
    for (size_t i = 0; i < nwords; i++) {
        struct cf_cli_node *child = &node->children[node->nchildren++];
        child->name = words[i];
        child->summary = "";
        describing = child;
        describe_leaf(usage, opts, nopts);
        describing = node;
    }
}

/* Describes node by running fn with "--help" while node is the one being described. */
static void describe_node(struct cf_cli_node *node, int (*fn)(int argc, char **argv))
{
    char help[] = "--help";
    char *argv[] = {(char *)node->name, help, NULL};
    struct cf_cli_node *outer = describing;
    describing = node;
    fn(2, argv);
    describing = outer;
}

/* Gives the node being described a child per subcommand and describes each. */
static void describe_subs(const struct cf_cli_sub *subs, size_t nsubs)
{
    struct cf_cli_node *node = describing;
    node->children = calloc(nsubs ? nsubs : 1, sizeof(*node->children));
    if (!node->children) {
        describe_rc = CF_ENOMEM;
        return;
    }
    node->nchildren = nsubs;
    for (size_t i = 0; i < nsubs; i++) {
        node->children[i].name = subs[i].name;
        node->children[i].summary = subs[i].summary;
        describe_node(&node->children[i], subs[i].fn);
    }
}

/* A command's help: its usage text with the synopsis completed (cf_cli_print_synopsis). */
static void print_help(FILE *out, const char *usage, const struct cf_cli_flag *flags, size_t nflags)
{
    const char *blank = strstr(usage, "\n\n");
    cf_cli_print_synopsis(out, usage, flags, nflags);
    if (blank)
        fputs(blank + 1, out);
}

static void free_node(struct cf_cli_node *node)
{
    for (size_t i = 0; i < node->nchildren; i++)
        free_node(&node->children[i]);
    free(node->children);
    free(node->flags);
}

void cf_cli_tree_free(struct cf_cli_node *root)
{
    if (!root)
        return;
    free_node(root);
    free(root);
}

static const struct cf_cli_sub *program_commands;
static size_t program_ncommands;

void cf_cli_set_program(const struct cf_cli_sub *commands, size_t count)
{
    program_commands = commands;
    program_ncommands = count;
}

enum cf_rc cf_cli_tree_new(struct cf_cli_node **root)
{
    *root = calloc(1, sizeof(**root));
    if (!*root)
        return CF_ENOMEM;
    (*root)->name = "coffer";
    (*root)->summary = "secrets manager with Infisical's API";
    describe_rc = CF_OK;
    describing = *root;
    describe_subs(program_commands, program_ncommands);
    describing = NULL;
    if (describe_rc != CF_OK) {
        cf_cli_tree_free(*root);
        *root = NULL;
    }
    return describe_rc;
}

void cf_cli_print_program_usage(FILE *out)
{
    size_t width = 0;
    for (size_t i = 0; i < program_ncommands; i++)
        width = strlen(program_commands[i].name) > width ? strlen(program_commands[i].name) : width;
    fprintf(out, "usage: coffer <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < program_ncommands; i++)
        fprintf(out, "  %-*s  %s\n", (int)width, program_commands[i].name,
                program_commands[i].summary);
    fprintf(out,
            "\nRun 'coffer help <command>' or 'coffer <command> --help' for a command's options.\n"
            "Environment: COFFER_API_URL (or INFISICAL_API_URL), COFFER_TOKEN (or "
            "INFISICAL_TOKEN).\n");
}

/* The index of name in subs, or, printing "unknown <what> (did you mean ...?)", nsubs. */
static size_t find_sub(const struct cf_cli_sub *subs, size_t nsubs, const char *name,
                       const char *what, const char *parent)
{
    const char *names[64];
    size_t n = 0;
    for (size_t i = 0; i < nsubs; i++) {
        if (strcmp(subs[i].name, name) == 0)
            return i;
        if (n < CF_ARRAY_SIZE(names))
            names[n++] = subs[i].name;
    }
    const char *near = cf_cli_nearest(name, strlen(name), names, n);
    char hint[128] = "";
    if (near)
        snprintf(hint, sizeof(hint), " (did you mean '%s'?)", near);
    if (parent)
        cf_cli_fail("unknown %s '%.64s' for '%s'%s", what, name, parent, hint);
    else
        cf_cli_fail("unknown %s '%.64s'%s", what, name, hint);
    return nsubs;
}

bool cf_cli_describing(void)
{
    return describing != NULL;
}

/* Every command has released and wiped what it holds by the time it returns, so what exit() would
 * still do is the libraries' own teardown: their destructors and atexit handlers (OpenSSL's
 * cleanup, GnuTLS's, the loader unwinding some forty libraries), which only frees memory the
 * kernel takes back anyway and costs a client command ~9% of its run. Standard output and error
 * are flushed first, as exit() would. Builds that must see the normal exit (sanitizers check for
 * leaks then, coverage writes its counters) get it: meson.build defines CF_NORMAL_EXIT for them. */
int cf_cli_finish(int status)
{
#ifndef CF_NORMAL_EXIT
    fflush(NULL);
    _exit(status);
#endif
    return status;
}

int cf_cli_run_command(int argc, char **argv)
{
    size_t i = find_sub(program_commands, program_ncommands, argv[0], "command", NULL);
    if (i < program_ncommands)
        return program_commands[i].fn(argc, argv);
    fputc('\n', stderr);
    cf_cli_print_program_usage(stderr);
    return CF_EXIT_USAGE;
}

/* Whether synopsis names --name (not as the start of a longer option name). */
static bool names_flag(const char *synopsis, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = strstr(synopsis, "--"); p; p = strstr(p + 2, "--")) {
        if (strncmp(p + 2, name, len) != 0)
            continue;
        char next = p[2 + len]; /* within the string: the name matched up to here */
        if (!((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') ||
              (next >= '0' && next <= '9') || next == '-'))
            return true;
    }
    return false;
}

#define SYNOPSIS_WIDTH 80
#define SYNOPSIS_INDENT_MAX 30

/* Where the continuation of a synopsis line starts: under its first word after the command words
 * ("usage: coffer secrets list " or a continuation line's own blanks), 30 at most. */
static size_t synopsis_indent(const char *line)
{
    size_t column = strspn(line, " ");
    if (column == 0) {
        const char *p = line;
        if (strncmp(p, "usage: ", 7) == 0)
            p += 7;
        p += strspn(p, " ");
        while (*p >= 'a' && *p <= 'z') {
            p += strspn(p, "abcdefghijklmnopqrstuvwxyz-");
            p += strspn(p, " ");
        }
        column = (size_t)(p - line);
    }
    return column > SYNOPSIS_INDENT_MAX ? SYNOPSIS_INDENT_MAX : column < 2 ? 2 : column;
}

void cf_cli_print_synopsis(FILE *out, const char *usage, const struct cf_cli_flag *flags,
                           size_t nflags)
{
    const char *blank = strstr(usage, "\n\n");
    size_t len = blank ? (size_t)(blank - usage) : strlen(usage);
    char *synopsis = strndup(usage, len);
    bool *named = calloc(nflags ? nflags : 1, sizeof(bool));
    if (!synopsis || !named) {
        fprintf(out, "%.*s\n", (int)len, usage);
        goto out;
    }
    for (size_t i = 0; i < nflags; i++)
        named[i] = strcmp(flags[i].name, "help") == 0 || names_flag(synopsis, flags[i].name);
    /* The options go where the synopsis says "[options]" (the first time), else at its end. */
    char *at = strstr(synopsis, "[options]");
    const char *rest = at ? at + strlen("[options]") : "";
    if (at)
        *at = '\0';
    for (size_t end = strlen(synopsis);
         end && (synopsis[end - 1] == ' ' || synopsis[end - 1] == '\n'); end--)
        synopsis[end - 1] = '\0';
    char *line = strrchr(synopsis, '\n');
    line = line ? line + 1 : synopsis;
    size_t column = strlen(line);
    size_t indent = synopsis_indent(line);
    fputs(synopsis, out);
    for (size_t i = 0; i < nflags; i++) {
        char token[160];
        if (named[i])
            continue;
        if (flags[i].takes_value)
            snprintf(token, sizeof(token), " [--%s %s]", flags[i].name, flags[i].metavar);
        else
            snprintf(token, sizeof(token), " [--%s]", flags[i].name);
        if (column + strlen(token) > SYNOPSIS_WIDTH && column > indent) {
            fprintf(out, "\n%*s", (int)indent - 1, "");
            column = indent - 1;
        }
        fputs(token, out);
        column += strlen(token);
    }
    fprintf(out, "%s\n", rest);
out:
    free(named);
    free(synopsis);
}

bool cf_cli_begin(struct cf_cli *cli, int argc, char **argv, const struct cf_cli_spec *spec,
                  int *exit_status)
{
    struct shared_values values = {0};
    struct cf_opt *opts = NULL;
    struct cf_buf login_token;
    struct cf_err err;
    size_t nopts = 0;
    bool proceed = false;

    cf_buf_init(&login_token, 0);
    memset(cli, 0, sizeof(*cli));
    cli->usage = spec->usage;
    cf_err_clear(&err);
    *exit_status = CF_EXIT_FAILURE;
    opts = merged_options(spec, &values, &nopts);
    if (opts)
        cli->flags = make_flags(spec->usage, opts, nopts, &cli->nflags);
    if (!opts || !cli->flags) {
        if (describing)
            describe_rc = CF_ENOMEM;
        else
            cf_cli_fail("out of memory");
        goto out;
    }
    if (describing) {
        describe_words(spec->usage, opts, nopts, spec->subcommands);
        *exit_status = CF_EXIT_OK;
        goto out;
    }
    if (cf_opt_wants_help(argc, argv)) {
        print_help(stdout, spec->usage, cli->flags, cli->nflags);
        *exit_status = CF_EXIT_OK;
        goto out;
    }
    if (!(spec->flags & CF_CLI_LOCAL) && cf_client_global_init(&err) != CF_OK) {
        cf_cli_fail("%s", err.msg);
        goto out;
    }

    *exit_status = CF_EXIT_USAGE;
    if (cf_opt_parse(argc, argv, opts, nopts, &cli->parsed, &err) != CF_OK) {
        cf_cli_usage_error(cli, "%s", err.msg);
        goto out;
    }
    cli->args = cli->parsed.items;
    cli->nargs = cli->parsed.count;
    if (cli->nargs < spec->min_args) {
        cf_cli_usage_error(cli, "missing argument%s", spec->min_args - cli->nargs > 1 ? "s" : "");
        goto out;
    }
    if (cli->nargs > spec->max_args) {
        cf_cli_usage_error(cli, "unexpected argument '%.64s'", cli->args[spec->max_args]);
        goto out;
    }
    if (!values.output || strcmp(values.output, "table") == 0) {
        cli->json = false;
    } else if (strcmp(values.output, "json") == 0) {
        cli->json = true;
    } else {
        cf_cli_usage_error(cli, "--output takes table or json, not '%.32s'", values.output);
        goto out;
    }
    if (spec->flags & CF_CLI_PROJECT) {
        cli->project_id = values.project_id
                              ? values.project_id
                              : cf_cli_first_env("COFFER_PROJECT_ID", "INFISICAL_PROJECT_ID");
        if (!cli->project_id || !*cli->project_id) {
            cf_cli_usage_error(cli, "--projectId is required (or set COFFER_PROJECT_ID)");
            goto out;
        }
    }
    if (spec->flags & CF_CLI_ENV) {
        /* Infisical's CLI also reads "dev" when no --env is given; a 403 or 404 then says so. */
        cli->env_defaulted = !values.env;
        cli->env = values.env ? values.env : "dev";
        if (!*cli->env) {
            cf_cli_usage_error(cli, "--env must not be empty");
            goto out;
        }
    }
    if (spec->flags & CF_CLI_PATH)
        cli->path = values.path && *values.path ? values.path : "/";

    if (spec->login && cf_login_flags_given(spec->login)) {
        if (values.token) {
            cf_cli_usage_error(cli, "--token and the login flags (--method, --client-id, "
                                    "--jwt-from, ...) exclude each other");
            goto out;
        }
        *exit_status = cf_login_access_token(cli, spec->login, values.domain, &login_token);
        if (*exit_status != CF_EXIT_OK)
            goto out;
    }
    if (!(spec->flags & (CF_CLI_OFFLINE | CF_CLI_LOCAL)) &&
        !make_client(cli, values.domain, login_token.len ? login_token.data : values.token,
                     exit_status))
        goto out;
    proceed = true;
    *exit_status = CF_EXIT_OK;
out:
    if (spec->login)
        cf_login_flags_wipe(spec->login);
    cf_buf_release_wipe(&login_token);
    /* The client holds its own copy; the one in argv would otherwise stay readable in
     * /proc/<pid>/cmdline. */
    if (values.token)
        sodium_memzero((char *)values.token, strlen(values.token));
    free(opts);
    return proceed;
}

void cf_cli_end(struct cf_cli *cli)
{
    cf_client_free(cli->client);
    cli->client = NULL;
    cf_args_release(&cli->parsed);
    free(cli->flags);
    cli->flags = NULL;
    cli->nflags = 0;
    cli->args = NULL;
    cli->nargs = 0;
}

int cf_cli_request(struct cf_cli *cli, const char *method, const char *path,
                   const struct cf_query_param *query, json_t *body, json_t **out)
{
    struct cf_response resp = CF_RESPONSE_INIT;
    struct cf_err err;
    int status;

    *out = NULL;
    cf_err_clear(&err);
    enum cf_rc rc = cf_client_request(cli->client, method, path, query, body, &resp, &err);
    cli->last_status = resp.status;
    cli->last_rc = rc;
    if (rc == CF_OK) {
        *out = resp.json;
        resp.json = NULL;
        status = CF_EXIT_OK;
    } else if (resp.status) {
        status = cf_cli_fail("%s (HTTP %ld, request id %s)%s", err.msg, resp.status,
                             resp.request_id[0] ? resp.request_id : "unknown",
                             cli->env_defaulted && (resp.status == 403 || resp.status == 404)
                                 ? " (no --env given: used 'dev')"
                                 : "");
    } else {
        status = cf_cli_fail("%s", err.msg);
    }
    cf_response_release(&resp);
    return status;
}

static void print_overview(FILE *out, const char *command, const struct cf_cli_sub *subs,
                           size_t nsubs)
{
    size_t width = 0;
    for (size_t i = 0; i < nsubs; i++)
        width = strlen(subs[i].name) > width ? strlen(subs[i].name) : width;
    fprintf(out, "usage: coffer %s <subcommand> [options]\n\nsubcommands:\n", command);
    for (size_t i = 0; i < nsubs; i++)
        fprintf(out, "  %-*s  %s\n", (int)width, subs[i].name, subs[i].summary);
    fprintf(out, "\nRun 'coffer %s <subcommand> --help' for a subcommand's options.\n", command);
}

int cf_cli_dispatch(int argc, char **argv, const struct cf_cli_sub *subs, size_t nsubs,
                    const char *default_sub)
{
    const char *command = argv[0];
    const char *wanted = argc > 1 ? argv[1] : NULL;

    if (describing) {
        describe_subs(subs, nsubs);
        return CF_EXIT_OK;
    }
    if (wanted && strcmp(wanted, "help") == 0 && argc > 2) {
        /* "help SUB [SUB2...]" is "SUB [SUB2...] --help" */
        char help[] = "--help";
        char **sub_argv = calloc((size_t)argc, sizeof(char *));
        if (!sub_argv)
            return cf_cli_fail("out of memory");
        for (int i = 2; i < argc; i++)
            sub_argv[i - 2] = argv[i];
        sub_argv[argc - 2] = help;
        size_t i = find_sub(subs, nsubs, sub_argv[0], "subcommand", command);
        int status = i < nsubs ? subs[i].fn(argc - 1, sub_argv) : CF_EXIT_USAGE;
        free(sub_argv);
        return status;
    }
    if (wanted && (strcmp(wanted, "--help") == 0 || strcmp(wanted, "-h") == 0 ||
                   strcmp(wanted, "help") == 0)) {
        print_overview(stdout, command, subs, nsubs);
        return CF_EXIT_OK;
    }
    if (!wanted || wanted[0] == '-') {
        for (size_t i = 0; default_sub && i < nsubs; i++) {
            if (strcmp(subs[i].name, default_sub) == 0)
                return subs[i].fn(argc, argv); /* argv[0] stands in for the subcommand name */
        }
        if (!wanted)
            fprintf(stderr, "coffer: '%s' needs a subcommand\n", command);
        else
            fprintf(stderr, "coffer: '%s' needs a subcommand before its options\n", command);
        print_overview(stderr, command, subs, nsubs);
        return CF_EXIT_USAGE;
    }
    size_t i = find_sub(subs, nsubs, wanted, "subcommand", command);
    if (i < nsubs)
        return subs[i].fn(argc - 1, argv + 1);
    print_overview(stderr, command, subs, nsubs);
    return CF_EXIT_USAGE;
}

/* ---- output ---------------------------------------------------------------------------------- */

enum cf_rc cf_cli_escape(struct cf_buf *out, const char *text)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)text;
    enum cf_rc rc = CF_OK;
    while (rc == CF_OK && *p) {
        unsigned char c = *p;
        if (c == '\n') {
            rc = cf_buf_append(out, "\\n", 2);
        } else if (c == '\r') {
            rc = cf_buf_append(out, "\\r", 2);
        } else if (c == '\t') {
            rc = cf_buf_append(out, "\\t", 2);
        } else if (c < 0x20 || c == 0x7f) {
            char enc[4] = {'\\', 'x', hex[c >> 4], hex[c & 0x0f]};
            rc = cf_buf_append(out, enc, sizeof(enc));
        } else if (c == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            /* C1 controls (U+0080..U+009F), e.g. the one-byte CSI some terminals obey. */
            char enc[4] = {'\\', 'x', hex[p[1] >> 4], hex[p[1] & 0x0f]};
            rc = cf_buf_append(out, enc, sizeof(enc));
            p++;
        } else {
            rc = cf_buf_append(out, p, 1);
        }
        p++;
    }
    return rc;
}

enum cf_rc cf_cli_display_value(struct cf_buf *out, const char *value, bool show)
{
    if (!show)
        return cf_buf_puts(out, CF_CLI_MASK);
    return value ? cf_cli_escape(out, value) : CF_OK;
}

enum cf_rc cf_cli_normalize_path(struct cf_buf *out, const char *path)
{
    cf_buf_reset(out);
    while (*path == ' ' || *path == '\t')
        path++;
    size_t len = strlen(path);
    while (len && (path[len - 1] == ' ' || path[len - 1] == '\t'))
        len--;
    while (len && path[len - 1] == '/')
        len--;
    enum cf_rc rc = CF_OK;
    if (len == 0 || path[0] != '/')
        rc = cf_buf_append(out, "/", 1);
    if (rc == CF_OK && len)
        rc = cf_buf_append(out, path, len);
    return rc;
}

struct cf_table {
    size_t width; /* columns to fit into, 0: no limit */
    size_t ncols;
    size_t nrows; /* including the header row */
    size_t cap;   /* rows allocated */
    char **cells; /* row-major, cap * ncols */
};

static void wipe_text(char *text)
{
    if (text) {
        sodium_memzero(text, strlen(text));
        free(text);
    }
}

static enum cf_rc add_row(struct cf_table *table, const char *const *cells)
{
    if (table->nrows == table->cap) {
        size_t cap = table->cap ? table->cap * 2 : 16;
        char **grown = calloc(cap * table->ncols, sizeof(char *));
        if (!grown)
            return CF_ENOMEM;
        if (table->cells)
            memcpy(grown, table->cells, table->nrows * table->ncols * sizeof(char *));
        free(table->cells);
        table->cells = grown;
        table->cap = cap;
    }
    char **row = table->cells + table->nrows * table->ncols;
    for (size_t c = 0; c < table->ncols; c++) {
        struct cf_buf cell;
        cf_buf_init(&cell, CELL_MAX);
        enum cf_rc rc = cf_cli_escape(&cell, cells[c] ? cells[c] : "");
        row[c] = rc == CF_OK ? cf_buf_detach(&cell, NULL) : NULL;
        cf_buf_release_wipe(&cell);
        if (!row[c]) {
            for (size_t k = 0; k < c; k++) {
                wipe_text(row[k]);
                row[k] = NULL;
            }
            return rc == CF_OK ? CF_ENOMEM : rc;
        }
    }
    table->nrows++;
    return CF_OK;
}

struct cf_table *cf_table_new(size_t ncols, const char *const *headers)
{
    if (ncols == 0)
        return NULL;
    struct cf_table *table = calloc(1, sizeof(*table));
    if (!table)
        return NULL;
    table->ncols = ncols;
    if (add_row(table, headers) != CF_OK) {
        cf_table_free(table);
        return NULL;
    }
    return table;
}

void cf_table_free(struct cf_table *table)
{
    if (!table)
        return;
    for (size_t i = 0; i < table->nrows * table->ncols; i++)
        wipe_text(table->cells[i]);
    free(table->cells);
    free(table);
}

enum cf_rc cf_table_add(struct cf_table *table, const char *const *cells)
{
    return add_row(table, cells);
}

size_t cf_table_rows(const struct cf_table *table)
{
    return table->nrows - 1;
}

/* Display width: UTF-8 characters (continuation bytes do not count). */
static size_t text_width(const char *text)
{
    size_t width = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        width += (*p & 0xc0) != 0x80;
    return width;
}

void cf_table_set_width(struct cf_table *table, size_t width)
{
    table->width = width;
}

size_t cf_cli_table_width(bool wide)
{
    const char *columns = getenv("COLUMNS");
    long long parsed = 0;
    bool have_columns = columns && cf_parse_int64(columns, 10, 100000, &parsed);
    if (wide)
        return 0;
    if (isatty(STDOUT_FILENO)) {
        struct winsize size;
        if (have_columns)
            return (size_t)parsed;
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col >= 10)
            return size.ws_col;
        return 80;
    }
    return have_columns ? (size_t)parsed : 0;
}

/* Narrows widths (ncols columns, natural widths) until the row, with two blanks between
 * columns, fits into width: the widest column that can still give way loses one at a time. */
static void fit_widths(const struct cf_table *table, size_t *widths)
{
    size_t ncols = table->ncols, total = 2 * (ncols - 1);
    for (size_t c = 0; c < ncols; c++)
        total += widths[c];
    while (total > table->width) {
        size_t widest = ncols;
        for (size_t c = 0; c < ncols; c++) {
            size_t floor = text_width(table->cells[c]); /* the header */
            floor = floor < 5 ? 5 : floor;
            if (widths[c] > floor && (widest == ncols || widths[c] > widths[widest]))
                widest = c;
        }
        if (widest == ncols)
            return; /* every column at its floor: wider than asked, but readable */
        widths[widest]--;
        total--;
    }
}

/* Appends text cut to width display columns: its first width - 1 characters and an ellipsis.
 * *shown receives the columns appended. */
static enum cf_rc put_cell(struct cf_buf *out, const char *text, size_t width, size_t *shown)
{
    size_t natural = text_width(text);
    if (natural <= width) {
        *shown = natural;
        return cf_buf_puts(out, text);
    }
    size_t chars = 0, len = 0;
    for (; text[len]; len++) {
        if (((unsigned char)text[len] & 0xc0) != 0x80) {
            if (chars == width - 1)
                break;
            chars++;
        }
    }
    *shown = width;
    enum cf_rc rc = cf_buf_append(out, text, len);
    return rc == CF_OK ? cf_buf_puts(out, "\xe2\x80\xa6") : rc; /* U+2026 */
}

enum cf_rc cf_table_render(const struct cf_table *table, struct cf_buf *out)
{
    size_t *widths = calloc(table->ncols, sizeof(size_t));
    enum cf_rc rc = CF_OK;
    if (!widths)
        return CF_ENOMEM;
    for (size_t r = 0; r < table->nrows; r++) {
        for (size_t c = 0; c < table->ncols; c++) {
            size_t w = text_width(table->cells[r * table->ncols + c]);
            widths[c] = w > widths[c] ? w : widths[c];
        }
    }
    if (table->width)
        fit_widths(table, widths);
    for (size_t r = 0; rc == CF_OK && r < table->nrows; r++) {
        char *const *row = table->cells + r * table->ncols;
        size_t last = 0; /* the last non-empty cell: nothing is padded after it */
        for (size_t c = 0; c < table->ncols; c++) {
            if (row[c][0])
                last = c;
        }
        for (size_t c = 0; rc == CF_OK && c <= last; c++) {
            size_t pad = 0;
            rc = put_cell(out, row[c], widths[c], &pad);
            for (; rc == CF_OK && c < last && pad < widths[c] + 2; pad++)
                rc = cf_buf_append(out, " ", 1);
        }
        if (rc == CF_OK)
            rc = cf_buf_append(out, "\n", 1);
    }
    free(widths);
    return rc;
}

static int write_stdout(const struct cf_buf *text)
{
    if (text->len && fwrite(text->data, 1, text->len, stdout) != text->len)
        return cf_cli_fail("cannot write to standard output");
    if (fflush(stdout) != 0)
        return cf_cli_fail("cannot write to standard output");
    return CF_EXIT_OK;
}

int cf_cli_write_secret(const char *text, size_t len)
{
    fflush(stdout);
    while (len) {
        ssize_t n = write(STDOUT_FILENO, text, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return cf_cli_fail("cannot write to standard output: %s",
                               n < 0 ? strerror(errno) : "short write");
        text += n;
        len -= (size_t)n;
    }
    return CF_EXIT_OK;
}

int cf_table_print(const struct cf_table *table)
{
    struct cf_buf text;
    int status;
    cf_buf_init(&text, 0);
    if (cf_table_render(table, &text) != CF_OK)
        status = cf_cli_fail("out of memory");
    else
        status = write_stdout(&text);
    cf_buf_release_wipe(&text);
    return status;
}

int cf_cli_print_rows(json_t *items, size_t ncols, const char *const *headers,
                      cf_cli_row_fn fill_row, void *ctx)
{
    return cf_cli_print_rows_fit(items, ncols, headers, fill_row, ctx, 0);
}

int cf_cli_print_rows_fit(json_t *items, size_t ncols, const char *const *headers,
                          cf_cli_row_fn fill_row, void *ctx, size_t width)
{
    struct cf_table *table = cf_table_new(ncols, headers);
    size_t i;
    json_t *item;
    int status;

    if (!table)
        return cf_cli_fail("out of memory");
    json_array_foreach(items, i, item)
    {
        if (fill_row(table, item, ctx) != CF_OK) {
            cf_table_free(table);
            return cf_cli_fail("out of memory");
        }
    }
    cf_table_set_width(table, width);
    status = cf_table_print(table);
    cf_table_free(table);
    return status;
}

static int dump_to_buf(const char *data, size_t size, void *userdata)
{
    return cf_buf_append(userdata, data, size) == CF_OK ? 0 : -1;
}

int cf_cli_print_json(json_t *json)
{
    struct cf_buf text;
    int status;
    cf_buf_init(&text, 0);
    if (json_dump_callback(json, dump_to_buf, &text, JSON_INDENT(2)) != 0 ||
        cf_buf_append(&text, "\n", 1) != CF_OK)
        status = cf_cli_fail("out of memory");
    else
        status = write_stdout(&text);
    cf_buf_release_wipe(&text);
    return status;
}

int cf_cli_print_member(const struct cf_cli *cli, json_t *answer, const char *member,
                        int (*print_table)(json_t *list))
{
    if (cli->json)
        return cf_cli_print_json(answer);
    json_t *list = json_array();
    if (!list || json_array_append(list, json_object_get(answer, member)) != 0) {
        json_decref(list);
        return cf_cli_fail("out of memory");
    }
    int status = print_table(list);
    json_decref(list);
    return status;
}

int cf_cli_request_member(struct cf_cli *cli, const char *method, const char *path, json_t *body,
                          const char *member, int (*print_table)(json_t *list))
{
    json_t *answer = NULL;
    int status = cf_cli_request(cli, method, path, NULL, body, &answer);
    if (status == CF_EXIT_OK)
        status = cf_cli_print_member(cli, answer, member, print_table);
    json_decref(answer);
    return status;
}

int cf_cli_request_field(struct cf_cli *cli, const char *method, const char *path, json_t *body,
                         const char *member, const char *field)
{
    json_t *answer = NULL;
    int status = cf_cli_request(cli, method, path, NULL, body, &answer);
    if (status == CF_EXIT_OK) {
        const char *value =
            json_string_value(json_object_get(json_object_get(answer, member), field));
        if (!value)
            status = cf_cli_fail("the server's answer holds no %s.%s", member, field);
        else if (printf("%s\n", value) < 0 || fflush(stdout) != 0)
            status = cf_cli_fail("cannot write to standard output");
    }
    json_decref(answer);
    return status;
}

int cf_cli_request_list(struct cf_cli *cli, const char *path, const struct cf_query_param *query,
                        const char *member, int (*print_table)(json_t *list))
{
    json_t *answer = NULL;
    int status = cf_cli_request(cli, "GET", path, query, NULL, &answer);
    if (status == CF_EXIT_OK)
        status =
            cli->json ? cf_cli_print_json(answer) : print_table(json_object_get(answer, member));
    json_decref(answer);
    return status;
}

int cf_cli_path(struct cf_buf *path, const char *prefix, const char *id, const char *suffix,
                const char *id2, const char *suffix2)
{
    cf_buf_reset(path);
    if (cf_buf_puts(path, prefix) != CF_OK || (id && cf_url_path_segment(path, id) != CF_OK) ||
        (suffix && cf_buf_puts(path, suffix) != CF_OK) ||
        (id2 && cf_url_path_segment(path, id2) != CF_OK) ||
        (suffix2 && cf_buf_puts(path, suffix2) != CF_OK))
        return cf_cli_fail("out of memory");
    return CF_EXIT_OK;
}

int cf_cli_print_object(const struct cf_cli *cli, const char *method, json_t *answer,
                        const struct cf_cli_object *obj)
{
    if (strcmp(method, "DELETE") != 0 || cli->json)
        return cf_cli_print_member(cli, answer, obj->member, obj->print_table);
    json_t *item = json_object_get(answer, obj->member);
    printf("deleted %s %s (%s)\n", obj->noun, cf_cli_str(item, obj->label), cf_cli_str(item, "id"));
    return CF_EXIT_OK;
}

int cf_cli_object_command(int argc, char **argv, const char *usage, const char *method,
                          const char *prefix, const struct cf_cli_object *obj)
{
    const struct cf_cli_spec spec = {usage, 0, 1, 1, NULL, 0};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *answer = NULL;
    int status;

    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    status = cf_cli_path(&path, prefix, cli.args[0], NULL, NULL, NULL);
    if (status == CF_EXIT_OK)
        status = cf_cli_request(&cli, method, path.data, NULL, NULL, &answer);
    if (status == CF_EXIT_OK)
        status = cf_cli_print_object(&cli, method, answer, obj);
out:
    json_decref(answer);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

int cf_cli_set_time(const struct cf_cli *cli, json_t *obj, const char *option, const char *member,
                    const char *text)
{
    struct cf_err err;
    int64_t unix_ms;
    cf_err_clear(&err);
    if (cf_time_parse(text, &unix_ms, &err) != CF_OK)
        return cf_cli_usage_error(cli, "--%s: %s", option, err.msg);
    if (json_object_set_new(obj, member, json_string(text)) != 0)
        return cf_cli_fail("out of memory");
    return CF_EXIT_OK;
}

const char *cf_cli_str(json_t *obj, const char *name)
{
    const char *value = json_string_value(json_object_get(obj, name));
    return value ? value : "";
}

const char *cf_cli_int_str(json_t *obj, const char *name, char *buf, size_t size)
{
    json_t *value = json_object_get(obj, name);
    if (json_is_integer(value))
        snprintf(buf, size, "%lld", (long long)json_integer_value(value));
    else if (size)
        buf[0] = '\0';
    return buf;
}
