/* Shared machinery of the commands that talk to a Coffer server (every command but server and
 * operator, which use only its option parser and help, with CF_CLI_LOCAL): the option parser
 * (`--flag value` and `--flag=value`), subcommand
 * dispatch with --help everywhere, resolution of the connection settings (--domain, --token,
 * --projectId and their environment variables), error reporting with the CLI's exit statuses (0
 * ok, 1 failure, 2 usage), and output helpers: aligned tables, masking and escaping of values, JSON
 * printing. A command file declares its options and usage text, calls cf_cli_begin, sends its
 * requests with cf_cli_request and renders with cf_table. */
#ifndef CF_CLI_COMMON_H
#define CF_CLI_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "client/client.h"
#include "util/buf.h"
#include "util/err.h"

#define CF_EXIT_OK 0
#define CF_EXIT_FAILURE 1
#define CF_EXIT_USAGE 2

/* What masked values look like: fixed, so a value's length is not revealed. */
#define CF_CLI_MASK "********"

/* ---- options --------------------------------------------------------------------------------- */

enum cf_opt_type {
    CF_OPT_BOOL,   /* --name (true), --name=true, --name=false; value: bool * */
    CF_OPT_STRING, /* --name VALUE or --name=VALUE; value: const char ** pointing into argv (last
                      wins) */
    CF_OPT_INT,    /* like STRING, a whole number >= 0; value: struct cf_opt_int * */
};

struct cf_opt_int {
    bool set;
    long long value;
};

struct cf_opt {
    const char *name; /* long name without the dashes, e.g. "projectId" */
    enum cf_opt_type type;
    void *value; /* see enum cf_opt_type */
};

/* The positional arguments left after option parsing (pointers into argv, in order). */
struct cf_args {
    char **items;
    size_t count;
};

/* Parses argv[1..argc-1] (argv[0] is the (sub)command name) against opts. Options may appear
 * anywhere; "--" ends them. "-h"/"--help" are not handled here (see cf_opt_wants_help). Fills args
 * (release with cf_args_release, also on failure). CF_EINVAL with a message for an unknown option,
 * a missing or malformed value; CF_ENOMEM. */
enum cf_rc cf_opt_parse(int argc, char **argv, const struct cf_opt *opts, size_t nopts,
                        struct cf_args *args, struct cf_err *err);
void cf_args_release(struct cf_args *args);

/* True when argv[1..] holds "--help" or "-h" before any "--". */
bool cf_opt_wants_help(int argc, char **argv);

/* The name among names[0..count-1] nearest to word[0..len-1], for "did you mean" hints: within a
 * small optimal-string-alignment distance (a third of the longer name, 1 at least, 3 at most), or
 * one a prefix of the other (3 characters at least). NULL when none is close. */
const char *cf_cli_nearest(const char *word, size_t len, const char *const *names, size_t count);

/* ---- command context ------------------------------------------------------------------------- */

/* Which shared options a subcommand takes. */
enum cf_cli_flags {
    CF_CLI_PROJECT =
        1u << 0,           /* --projectId (or COFFER_PROJECT_ID / INFISICAL_PROJECT_ID), required */
    CF_CLI_ENV = 1u << 1,  /* --env, default "dev" */
    CF_CLI_PATH = 1u << 2, /* --path, default "/" */
    CF_CLI_OFFLINE = 1u << 3, /* needs no server: no client is made (no token needed) */
    /* a command that opens the data directory itself (coffer server, coffer operator): none of
       the client's options (--output, --token, --domain), no client */
    CF_CLI_LOCAL = 1u << 4,
};

struct cf_login_flags;

/* A subcommand's description for cf_cli_begin. */
struct cf_cli_spec {
    const char *usage;         /* full help text printed by --help (stdout) */
    unsigned flags;            /* enum cf_cli_flags */
    size_t min_args;           /* positional arguments accepted */
    size_t max_args;           /* SIZE_MAX: no limit */
    const struct cf_opt *opts; /* the subcommand's own options */
    size_t nopts;
    /* The values of the login flags (machine_login.h) when opts holds them (CF_LOGIN_OPTS), or
     * NULL: when one is given, the command logs in with them and uses that access token, for
     * itself only (never stored). */
    struct cf_login_flags *login;
    /* NULL, or the words (NULL-terminated) the first positional argument may be: help,
     * completion and man pages show each as a subcommand taking the same options. */
    const char *const *subcommands;
};

struct cf_cli_flag;

/* The state of one subcommand run. Fields are read-only for commands. */
struct cf_cli {
    const char *usage;
    struct cf_cli_flag *flags; /* every option the parser takes, for the synopsis */
    size_t nflags;
    bool env_defaulted;     /* CF_CLI_ENV without --env: "dev" was used */
    const char *project_id; /* resolved (CF_CLI_PROJECT) */
    const char *env;        /* resolved (CF_CLI_ENV) */
    const char *path;       /* resolved (CF_CLI_PATH) */
    bool json;              /* --output json */
    char **args;            /* positional arguments */
    size_t nargs;
    struct cf_client *client; /* NULL with CF_CLI_OFFLINE */
    /* The outcome of the last cf_cli_request: its HTTP status (0 when no answer arrived) and its
     * code (CF_EIO for a connection failure), so that a command can tell an unreachable server
     * from a refusal. */
    long last_status;
    enum cf_rc last_rc;
    /* private */
    struct cf_args parsed;
};

/* Starts a subcommand: prints help and stops on --help; parses the options (the spec's plus
 * --token, --domain, --output and those chosen by spec->flags); checks the positional count;
 * resolves the environment variables; makes the client, whose token is the one a login with
 * spec->login's flags obtains when one is given (--token is refused with them), else the first
 * found of --token, COFFER_TOKEN, INFISICAL_UNIVERSAL_AUTH_ACCESS_TOKEN, INFISICAL_TOKEN and the
 * login stored by `coffer login` for the same server (credentials.h). The token given with --token
 * is copied and then wiped from argv. Returns true when the command should go on; otherwise
 * *exit_status says how to exit (0 after help, 2 after a usage error, 1 when the client cannot be
 * made) and the message has been printed. Call cf_cli_end in every case. */
bool cf_cli_begin(struct cf_cli *cli, int argc, char **argv, const struct cf_cli_spec *spec,
                  int *exit_status);
void cf_cli_end(struct cf_cli *cli);

/* Prints "coffer: <message>" and a hint to run --help on stderr; returns CF_EXIT_USAGE. */
int cf_cli_usage_error(const struct cf_cli *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "coffer: <message>" on stderr; returns CF_EXIT_FAILURE. */
int cf_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sends a request with cli->client. On success *out takes the response JSON (json_decref it) and
 * the result is CF_EXIT_OK. On failure prints "coffer: <server message> (HTTP <status>, request id
 * <id>)", or the connection problem, and returns CF_EXIT_FAILURE with *out NULL. */
int cf_cli_request(struct cf_cli *cli, const char *method, const char *path,
                   const struct cf_query_param *query, json_t *body, json_t **out);

/* Subcommand dispatch: argv[0] is the command ("secrets"), argv[1] the subcommand.
 * "--help"/"-h"/"help" or no subcommand prints the overview (stdout, exit 0 for help; stderr, exit
 * 2 when missing), unless default_sub names a subcommand to run when argv[1] is absent or an
 * option; "help SUB..." prints that subcommand's help. Unknown subcommands exit 2 with the nearest
 * one suggested. */
struct cf_cli_sub {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};
int cf_cli_dispatch(int argc, char **argv, const struct cf_cli_sub *subs, size_t nsubs,
                    const char *default_sub);

/* ---- the command tree ------------------------------------------------------------------------ */

/* What help, completion and man pages know of a command: taken from the very tables the parser
 * uses (cf_cli_begin's merged options, cf_cli_dispatch's subcommands), by running each command
 * with "--help" while a description is being taken, so none of them can drift from the parser. */
struct cf_cli_flag {
    const char *name; /* without the dashes; borrowed from the option table */
    bool takes_value; /* false for a CF_OPT_BOOL */
    char metavar[32]; /* "SLUG", "FILE", "true|false", ...: taken from the usage text */
};

struct cf_cli_node {
    const char *name;    /* borrowed from the command table */
    const char *summary; /* borrowed; "" when unknown */
    const char *usage;   /* borrowed; NULL for a group of subcommands */
    struct cf_cli_flag *flags;
    size_t nflags;
    struct cf_cli_node *children; /* the subcommands, in table order */
    size_t nchildren;
};

/* Registers the program's command table (main.c's, sorted by name) once at start-up, before any
 * command runs: `coffer help`, completion and man pages read it. commands is borrowed for the
 * life of the process. */
void cf_cli_set_program(const struct cf_cli_sub *commands, size_t count);

/* Prints the program's overview: the commands with their summaries. */
void cf_cli_print_program_usage(FILE *out);

/* Runs `coffer COMMAND` with argv (argv[0] the command's name) from the registered table, or
 * reports an unknown command with the nearest one suggested and returns CF_EXIT_USAGE. */
int cf_cli_run_command(int argc, char **argv);

/* Whether the command tree is being described (cf_cli_tree_new runs each command with --help to
 * record its options): a command that normally runs another program describes itself instead. */
bool cf_cli_describing(void);

/* Ends the process with status once a command has returned (main's last step; see common.c). */
int cf_cli_finish(int status);

/* Describes the whole registered program: *root receives a tree (free with cf_cli_tree_free)
 * whose children are the commands. CF_ENOMEM. */
enum cf_rc cf_cli_tree_new(struct cf_cli_node **root);
void cf_cli_tree_free(struct cf_cli_node *root);

/* Prints a usage text's synopsis (its lines up to the first blank one) with every option the
 * parser takes: those the synopsis does not name stand in place of "[options]" (or are added at
 * its end), wrapped to 80 columns. */
void cf_cli_print_synopsis(FILE *out, const char *usage, const struct cf_cli_flag *flags,
                           size_t nflags);

/* The options every server command takes, for usage texts. */
#define CF_CLI_COMMON_HELP                                                                         \
    "  --domain URL       server URL (env COFFER_API_URL or INFISICAL_API_URL; default:\n"         \
    "                     the last 'coffer login''s, else " CF_CLIENT_DEFAULT_DOMAIN ")\n"         \
    "  --token TOKEN      access token (env COFFER_TOKEN, INFISICAL_TOKEN; default:\n"             \
    "                     the token stored by 'coffer login')\n"                                   \
    "  --output FORMAT    table (default) or json (the API's JSON, for scripts)\n"                 \
    "  -h, --help         show this help\n"
#define CF_CLI_PROJECT_HELP                                                                        \
    "  --projectId ID     project id or slug (env COFFER_PROJECT_ID or\n"                          \
    "                     INFISICAL_PROJECT_ID)\n"
#define CF_CLI_ENV_HELP "  --env SLUG         environment (default dev)\n"

/* ---- output ---------------------------------------------------------------------------------- */

/* Appends text with control characters made visible (\n, \r, \t, \xNN for other C0/C1 controls and
 * DEL), so that a value cannot break a table or drive the terminal. */
enum cf_rc cf_cli_escape(struct cf_buf *out, const char *text);

/* Appends how a secret value is shown in a table: escaped when show is true, else CF_CLI_MASK (an
 * absent value, NULL, is shown as "" when show is true). */
enum cf_rc cf_cli_display_value(struct cf_buf *out, const char *value, bool show);

/* Normalises a folder path as the server does: blanks trimmed, leading '/' added, trailing '/'
 * removed. Appends to out (cleared first). */
enum cf_rc cf_cli_normalize_path(struct cf_buf *out, const char *path);

/* A table: a header row and rows of cells, printed with columns aligned (two spaces between
 * columns, no trailing blanks). Cells are copied escaped (cf_cli_escape) into memory wiped by
 * cf_table_free, so a cell may hold a secret value. Widths count UTF-8 characters. */
struct cf_table;

/* Makes a table with ncols columns named by headers (borrowed strings, copied). NULL when out of
 * memory. */
struct cf_table *cf_table_new(size_t ncols, const char *const *headers);
void cf_table_free(struct cf_table *table);

/* Adds a row of ncols cells (NULL cells print as ""). CF_ENOMEM / CF_ETOOLARGE. */
enum cf_rc cf_table_add(struct cf_table *table, const char *const *cells);

/* Number of rows added. */
size_t cf_table_rows(const struct cf_table *table);

/* Fits the rendered table into width columns (0, the default: no limit): the widest columns
 * give way first, none below its header's width (5 at least), and a cut cell ends with an
 * ellipsis (U+2026). */
void cf_table_set_width(struct cf_table *table, size_t width);

/* The width a table of a command with --wide (wide true) or without it is fitted to: 0 (no
 * limit) with --wide; on a terminal, COLUMNS or else the terminal's width (80 if unknown); into a
 * pipe or a file, COLUMNS when set, else 0, so that scripts get every character. */
size_t cf_cli_table_width(bool wide);

/* Renders the table into out (appended). */
enum cf_rc cf_table_render(const struct cf_table *table, struct cf_buf *out);

/* Renders to stdout through a wiped buffer. Returns CF_EXIT_OK or CF_EXIT_FAILURE (message
 * printed). */
int cf_table_print(const struct cf_table *table);

/* Adds the row of item to table (with cf_table_add); ctx is cf_cli_print_rows's. CF_OK, or an
 * error (reported as out of memory). */
typedef enum cf_rc (*cf_cli_row_fn)(struct cf_table *table, json_t *item, void *ctx);

/* Prints items (a JSON array; borrowed) as a table of ncols columns named by headers, a row per
 * item added by fill_row. Returns CF_EXIT_OK or CF_EXIT_FAILURE (message printed). */
int cf_cli_print_rows(json_t *items, size_t ncols, const char *const *headers,
                      cf_cli_row_fn fill_row, void *ctx);

/* cf_cli_print_rows with the table fitted into width columns (cf_table_set_width). */
int cf_cli_print_rows_fit(json_t *items, size_t ncols, const char *const *headers,
                          cf_cli_row_fn fill_row, void *ctx, size_t width);

/* Writes len bytes of text to standard output with write(2) after flushing stdio, so that no stdio
 * buffer keeps a copy of a secret (a token, a client secret, recovery codes). Returns CF_EXIT_OK or
 * CF_EXIT_FAILURE (message printed). */
int cf_cli_write_secret(const char *text, size_t len);

/* Prints json to stdout, indented, followed by a newline. Returns CF_EXIT_OK or CF_EXIT_FAILURE. */
int cf_cli_print_json(json_t *json);

/* Prints a server's answer about one object: the whole answer as JSON with --output json, else its
 * member as a one-row table, by print_table (which takes a JSON array of such objects and returns
 * an exit status). Returns CF_EXIT_OK or CF_EXIT_FAILURE (message printed). */
int cf_cli_print_member(const struct cf_cli *cli, json_t *answer, const char *member,
                        int (*print_table)(json_t *list));

/* Sends a request (cf_cli_request, no query) and prints the answer with cf_cli_print_member.
 * Returns the exit status. */
int cf_cli_request_member(struct cf_cli *cli, const char *method, const char *path, json_t *body,
                          const char *member, int (*print_table)(json_t *list));

/* Sends a request (cf_cli_request, no query) and prints only the string answer[member][field] and a
 * newline: what --plain prints of an object just made (its id), for `ID=$(coffer ...)`. Not for
 * secret values (stdio keeps a copy). Returns the exit status. */
int cf_cli_request_field(struct cf_cli *cli, const char *method, const char *path, json_t *body,
                         const char *member, const char *field);

/* GETs path with query (may be NULL) and prints the answer: as JSON with --output json, else its
 * member (a JSON array) by print_table. Returns the exit status. */
int cf_cli_request_list(struct cf_cli *cli, const char *path, const struct cf_query_param *query,
                        const char *member, int (*print_table)(json_t *list));

/* Resets path to prefix, then the escaped id, suffix, the escaped id2 and suffix2, each skipped
 * when NULL: ("/v1/identities", id, "/client-secrets", NULL, NULL). Returns the exit status
 * (CF_EXIT_FAILURE, message printed, when out of memory). */
int cf_cli_path(struct cf_buf *path, const char *prefix, const char *id, const char *suffix,
                const char *id2, const char *suffix2);

/* One kind of object a command shows or deletes. */
struct cf_cli_object {
    const char *noun;   /* "identity", as in "deleted identity NAME (ID)" */
    const char *member; /* the member of the server's answer that holds the object */
    const char *label;  /* the object's member shown before its id when deleted: "name", "slug" */
    int (*print_table)(json_t *list); /* prints a JSON array of such objects */
};

/* Prints the server's answer about one object after method: "deleted NOUN LABEL (ID)" for a
 * DELETE without --output json, else as cf_cli_print_member. Returns the exit status. */
int cf_cli_print_object(const struct cf_cli *cli, const char *method, json_t *answer,
                        const struct cf_cli_object *obj);

/* A whole `get ID` or `delete ID` command (usage its help, no options of its own): method on
 * prefix/{ID}, the answer printed with cf_cli_print_object. Returns the exit status. */
int cf_cli_object_command(int argc, char **argv, const char *usage, const char *method,
                          const char *prefix, const struct cf_cli_object *obj);

/* Checks that text, the value of --option, is an RFC 3339 time (a usage error otherwise) and sets
 * obj's member to it. Returns the exit status. */
int cf_cli_set_time(const struct cf_cli *cli, json_t *obj, const char *option, const char *member,
                    const char *text);

/* A string member of obj, or "" when absent or not a string (for table cells). Borrowed. */
const char *cf_cli_str(json_t *obj, const char *name);

/* An integer member of obj formatted into buf (size >= 24), or "" when absent. Returns buf. */
const char *cf_cli_int_str(json_t *obj, const char *name, char *buf, size_t size);

/* The first non-empty of the environment variables a and b (b may be NULL), or NULL. */
const char *cf_cli_first_env(const char *a, const char *b);

/* The server URL from the environment: COFFER_API_URL, then INFISICAL_DOMAIN, then
 * INFISICAL_API_URL (Infisical's CLI reads the last two in that order), or NULL. */
const char *cf_cli_domain_env(void);

/* The server a command given no --domain talks to: the environment's (cf_cli_domain_env), else
 * that of the last `coffer login` that stored a token (copied into stored, which the result may
 * point into), else NULL for the built-in CF_CLIENT_DEFAULT_DOMAIN. */
const char *cf_cli_default_domain(struct cf_buf *stored);

#endif
