/* `coffer secrets`: set, get, list and delete the secrets of one folder, show a secret's history
 * and roll it back, through /api/v3/secrets/raw, /api/v3/secrets/batch/raw and /api/v1/secret/{id}
 * (docs/api.md). `set` sends one all-or-nothing batch upsert. Values come from the command line, a
 * file (KEY=@path) or standard input (KEY=-); every copy is wiped after use: the read buffers, the
 * argv text, and (through the client's wiping allocator) the JSON documents. Tables mask values
 * unless --show-values is given. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/time.h"
#include "cli/fetch.h"
#include "util/format.h"
#include "util/str.h"
#include "util/banned.h"

#define SECRET_FLAGS (CF_CLI_PROJECT | CF_CLI_ENV | CF_CLI_PATH)
/* A value read from a file or stdin may not exceed the API's request body limit. */
#define VALUE_READ_MAX (1024u * 1024u)

#define SCOPE_HELP CF_CLI_PROJECT_HELP CF_CLI_ENV_HELP "  --path PATH        folder (default /)\n"

/* ---- shared pieces --------------------------------------------------------------------------- */

/* {workspaceId, environment, secretPath}; NULL when out of memory or not UTF-8. */
static json_t *scope_body(const struct cf_cli *cli)
{
    return json_pack("{s:s, s:s, s:s}", "workspaceId", cli->project_id, "environment", cli->env,
                     "secretPath", cli->path);
}

/* /v3/secrets/raw/{key} into path. */
static int key_path(struct cf_buf *path, const char *key)
{
    cf_buf_reset(path);
    if (cf_buf_puts(path, "/v3/secrets/raw") != CF_OK || cf_url_path_segment(path, key) != CF_OK)
        return cf_cli_fail("out of memory");
    return CF_EXIT_OK;
}

/* GET /v3/secrets/raw/{key}: *secret receives the answer's "secret" (a new reference). */
static int fetch_secret(struct cf_cli *cli, const char *key, const char *version, bool expand,
                        bool imports, bool with_value, json_t **secret)
{
    struct cf_buf path;
    json_t *answer = NULL;
    const struct cf_query_param query[] = {
        {"workspaceId", cli->project_id},
        {"environment", cli->env},
        {"secretPath", cli->path},
        {"version", version},
        {"expandSecretReferences", expand ? "true" : NULL},
        {"include_imports", imports ? "true" : NULL},
        {"viewSecretValue", with_value ? NULL : "false"},
        {NULL, NULL},
    };

    *secret = NULL;
    cf_buf_init(&path, 0);
    int status = key_path(&path, key);
    if (status == CF_EXIT_OK)
        status = cf_cli_request(cli, "GET", path.data, query, NULL, &answer);
    if (status == CF_EXIT_OK) {
        *secret = json_incref(json_object_get(answer, "secret"));
        if (!json_is_object(*secret))
            status = cf_cli_fail("the server's answer for '%s' has no secret", key);
    }
    json_decref(answer);
    cf_buf_release(&path);
    return status;
}

/* The id of secret key (into id), for the version endpoints. */
static int secret_id(struct cf_cli *cli, const char *key, char *id, size_t size)
{
    json_t *secret = NULL;
    int status = fetch_secret(cli, key, NULL, false, false, false, &secret);
    if (status == CF_EXIT_OK) {
        const char *found = cf_cli_str(secret, "id");
        if (!*found || !cf_strlcpy(id, found, size))
            status = cf_cli_fail("the server's answer for '%s' has no usable id", key);
    }
    json_decref(secret);
    return status;
}

/* /v1/secret/{id}/<what> into path. */
static int version_path(struct cf_buf *path, const char *id, const char *what)
{
    if (cf_buf_puts(path, "/v1/secret") != CF_OK || cf_url_path_segment(path, id) != CF_OK ||
        cf_buf_printf(path, "/%s", what) != CF_OK)
        return cf_cli_fail("out of memory");
    return CF_EXIT_OK;
}

/* ---- set ------------------------------------------------------------------------------------- */

/* Reads all of fd into value (a wiped buffer, VALUE_READ_MAX at most). */
static int read_value(int fd, const char *key, const char *source, struct cf_buf *value)
{
    char chunk[4096];
    int status = CF_EXIT_OK;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            status = cf_cli_fail("cannot read the value of '%s' from %s: %s", key, source,
                                 strerror(errno));
            break;
        }
        if (n == 0)
            break;
        if (cf_buf_append(value, chunk, (size_t)n) != CF_OK) {
            status = cf_cli_fail("the value of '%s' from %s is larger than %u bytes", key, source,
                                 VALUE_READ_MAX);
            break;
        }
    }
    sodium_memzero(chunk, sizeof(chunk));
    return status;
}

/* Resolves the text after "KEY=" into value: "-" is standard input, "@path" a file, "@@x" the
 * literal "@x", anything else itself. */
static int load_value(const struct cf_cli *cli, const char *key, const char *spec, bool *stdin_used,
                      struct cf_buf *value)
{
    if (strcmp(spec, "-") == 0) {
        if (*stdin_used)
            return cf_cli_usage_error(cli, "only one value can come from standard input");
        *stdin_used = true;
        return read_value(STDIN_FILENO, key, "standard input", value);
    }
    if (spec[0] == '@' && spec[1] != '@') {
        const char *file = spec + 1;
        if (!*file)
            return cf_cli_usage_error(cli, "'%s=@' needs a file name after '@'", key);
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return cf_cli_fail("cannot open '%s' (value of '%s'): %s", file, key, strerror(errno));
        char source[300];
        snprintf(source, sizeof(source), "'%s'", file);
        int status = read_value(fd, key, source, value);
        close(fd);
        return status;
    }
    if (spec[0] == '@')
        spec++; /* "@@x" stands for "@x" */
    if (cf_buf_puts(value, spec) != CF_OK)
        return cf_cli_fail("the value of '%s' is larger than %u bytes", key, VALUE_READ_MAX);
    return CF_EXIT_OK;
}

/* Builds one batch item from a KEY=VALUE argument and appends it to items. */
static int add_item(const struct cf_cli *cli, const char *arg, json_t *item_extra, json_t *items,
                    bool *stdin_used)
{
    const char *eq = strchr(arg, '=');
    struct cf_buf key, value;
    json_t *item = NULL;
    int status;

    cf_buf_init(&key, 0);
    cf_buf_init(&value, VALUE_READ_MAX);
    if (!eq) {
        status = cf_cli_usage_error(cli, "expected KEY=VALUE, not '%.64s'", arg);
        goto out;
    }
    if (eq == arg) {
        status = cf_cli_usage_error(cli, "an argument has no key before '='");
        goto out;
    }
    if (cf_buf_append(&key, arg, (size_t)(eq - arg)) != CF_OK) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(items); i++) {
        if (strcmp(cf_cli_str(json_array_get(items, i), "secretKey"), key.data) == 0) {
            status = cf_cli_usage_error(cli, "key '%.64s' is given twice", key.data);
            goto out;
        }
    }
    status = load_value(cli, key.data, eq + 1, stdin_used, &value);
    if (status != CF_EXIT_OK)
        goto out;
    if (!cf_utf8_valid(key.data, key.len)) {
        status = cf_cli_usage_error(cli, "a key is not valid UTF-8");
        goto out;
    }
    if (!cf_utf8_valid(value.data ? value.data : "", value.len)) {
        status = cf_cli_usage_error(
            cli, "the value of '%s' is not UTF-8 text (encode binary values, e.g. base64)",
            key.data);
        goto out;
    }
    item = json_pack("{s:s, s:s%}", "secretKey", key.data, "secretValue",
                     value.data ? value.data : "", value.len);
    if (!item || json_object_update(item, item_extra) != 0 || json_array_append(items, item) != 0) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
out:
    json_decref(item);
    cf_buf_release_wipe(&value);
    cf_buf_release(&key);
    return status;
}

/* A row of the table `set` prints: KEY, VERSION, UPDATED AT. */
static enum cf_rc set_row(struct cf_table *table, json_t *secret, void *ctx)
{
    char version[24];
    const char *row[] = {cf_cli_str(secret, "secretKey"),
                         cf_cli_int_str(secret, "version", version, sizeof(version)),
                         cf_cli_str(secret, "updatedAt")};
    (void)ctx;
    return cf_table_add(table, row);
}

static const char set_usage[] =
    "usage: coffer secrets set KEY=VALUE... [--comment TEXT] [--expires-at TIME | --expires-in D]\n"
    "                          [--reminder-every D] [--reminder-note TEXT] [options]\n"
    "\n"
    "Creates or updates secrets in one all-or-nothing request. A value may come\n"
    "from a file with KEY=@path (e.g. a PEM key) or from standard input with\n"
    "KEY=- (one key at most); write KEY=@@text for a literal value starting\n"
    "with '@'.\n"
    "\n"
    "options:\n"
    "  --comment TEXT     comment stored with every secret set\n"
    "  --expires-at TIME  RFC 3339 expiry stored with every secret set,\n"
    "                     e.g. 2026-12-31T23:00:00Z (the end date of a credential)\n"
    "  --expires-in D     the same, as a duration from now: 180d, 12h\n"
    "  --reminder-every D remind to rotate when unchanged this long (whole days:\n"
    "                     90d); `off` removes the reminder\n"
    "  --reminder-note TEXT  said with the reminder, e.g. how to rotate\n" SCOPE_HELP
        CF_CLI_COMMON_HELP;

/* --expires-in 180d: now + the duration, as the RFC 3339 expiresAt the API takes. */
static int set_expires_in(const struct cf_cli *cli, json_t *extra, const char *text)
{
    struct cf_err err;
    int64_t seconds = 0;
    char stamp[CF_TIME_RFC3339_LEN];
    cf_err_clear(&err);
    if (cf_duration_parse(text, &seconds, &err) != CF_OK || seconds <= 0)
        return cf_cli_usage_error(cli,
                                  "--expires-in takes a duration such as 180d or 12h, not "
                                  "'%.64s'",
                                  text);
    cf_time_format(cf_now_ms() + seconds * 1000, stamp);
    return json_object_set_new(extra, "expiresAt", json_string(stamp)) == 0
               ? CF_EXIT_OK
               : cf_cli_fail("out of memory");
}

/* --reminder-every 90d (whole days) or off: secretReminderRepeatDays. */
static int set_reminder(const struct cf_cli *cli, json_t *extra, const char *text)
{
    struct cf_err err;
    int64_t seconds = 0;
    json_t *days;
    cf_err_clear(&err);
    if (strcmp(text, "off") == 0) {
        days = json_null();
    } else {
        if (cf_duration_parse(text, &seconds, &err) != CF_OK || seconds <= 0 ||
            seconds % 86400 != 0)
            return cf_cli_usage_error(cli,
                                      "--reminder-every takes whole days such as 90d, or "
                                      "off, not '%.64s'",
                                      text);
        days = json_integer(seconds / 86400);
    }
    return json_object_set_new(extra, "secretReminderRepeatDays", days) == 0
               ? CF_EXIT_OK
               : cf_cli_fail("out of memory");
}

/* A write to a place that needs approval is answered 202 with a change request instead of the
 * secrets (docs/approvals.md): says so, and how to follow it. True when answer is such a one. */
static bool print_held(const struct cf_cli *cli, json_t *answer)
{
    json_t *request = json_object_get(answer, "approvalRequest");
    if (!json_is_true(json_object_get(answer, "approvalRequired")) || !request)
        return false;
    if (cli->json) {
        cf_cli_print_json(answer);
        return true;
    }
    printf("%s\nfollow it with: coffer approvals show %s\n", cf_cli_str(answer, "message"),
           cf_cli_str(request, "id"));
    return true;
}

static int cmd_set(int argc, char **argv)
{
    const char *comment = NULL, *expires_at = NULL, *expires_in = NULL;
    const char *reminder_every = NULL, *reminder_note = NULL;
    const struct cf_opt opts[] = {
        {"comment", CF_OPT_STRING, &comment},
        {"expires-at", CF_OPT_STRING, &expires_at},
        {"expires-in", CF_OPT_STRING, &expires_in},
        {"reminder-every", CF_OPT_STRING, &reminder_every},
        {"reminder-note", CF_OPT_STRING, &reminder_note},
    };
    const struct cf_cli_spec spec = {set_usage, SECRET_FLAGS, 1,
                                     SIZE_MAX,  opts,         CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    json_t *body = NULL, *items = NULL, *extra = NULL, *answer = NULL;
    bool stdin_used = false;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    extra = json_object();
    items = json_array();
    body = scope_body(&cli);
    if (!extra || !items || !body) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    if (comment && json_object_set_new(extra, "secretComment", json_string(comment)) != 0) {
        status = cf_cli_usage_error(&cli, "--comment must be valid UTF-8");
        goto out;
    }
    if (expires_at && expires_in) {
        status = cf_cli_usage_error(&cli, "--expires-at and --expires-in are two ways to say the "
                                          "same thing: give one");
        goto out;
    }
    if (expires_at) {
        status = cf_cli_set_time(&cli, extra, "expires-at", "expiresAt", expires_at);
        if (status != CF_EXIT_OK)
            goto out;
    }
    if (expires_in) {
        status = set_expires_in(&cli, extra, expires_in);
        if (status != CF_EXIT_OK)
            goto out;
    }
    if (reminder_every) {
        status = set_reminder(&cli, extra, reminder_every);
        if (status != CF_EXIT_OK)
            goto out;
    }
    if (reminder_note &&
        json_object_set_new(extra, "secretReminderNote", json_string(reminder_note)) != 0) {
        status = cf_cli_usage_error(&cli, "--reminder-note must be valid UTF-8");
        goto out;
    }
    for (size_t i = 0; i < cli.nargs; i++) {
        status = add_item(&cli, cli.args[i], extra, items, &stdin_used);
        if (status != CF_EXIT_OK)
            goto out;
    }
    if (json_object_set_new(body, "mode", json_string("upsert")) != 0 ||
        json_object_set(body, "secrets", items) != 0) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    status = cf_cli_request(&cli, "PATCH", "/v3/secrets/batch/raw", NULL, body, &answer);
    if (status != CF_EXIT_OK || print_held(&cli, answer))
        goto out;
    /* The server accepts '-' and '.' in keys (other consumers read them); say what they cost. */
    for (size_t i = 0; i < json_array_size(items); i++) {
        const char *key = cf_cli_str(json_array_get(items, i), "secretKey");
        if (!cf_format_shell_name(key))
            fprintf(stderr,
                    "coffer: warning: '%s' is not a valid environment variable name "
                    "([A-Za-z_][A-Za-z0-9_]*): `coffer run` passes it on, but a shell cannot "
                    "read it and `coffer export` refuses it in the dotenv formats\n",
                    key);
    }
    cf_secrets_warn_broken(json_object_get(answer, "brokenReferences"), "stored, but");
    if (cli.json) {
        status = cf_cli_print_json(answer);
        goto out;
    }
    static const char *const headers[] = {"KEY", "VERSION", "UPDATED AT"};
    status = cf_cli_print_rows(json_object_get(answer, "secrets"), 3, headers, set_row, NULL);
out:
    /* The values given on the command line are in the request now (or not needed): wipe argv's
     * copy. */
    for (int a = 1; a < argc; a++) {
        char *eq = argv[a][0] != '-' ? strchr(argv[a], '=') : NULL;
        if (eq)
            sodium_memzero(eq + 1, strlen(eq + 1));
    }
    json_decref(answer);
    json_decref(body);
    json_decref(items);
    json_decref(extra);
    cf_cli_end(&cli);
    return status;
}

/* ---- get ------------------------------------------------------------------------------------- */

/* Prints values bare, each followed by a newline unless it already ends with one (so a PEM file
 * comes back byte for byte). */
static int print_plain(json_t *secrets)
{
    size_t i;
    json_t *secret;
    json_array_foreach(secrets, i, secret)
    {
        json_t *value = json_object_get(secret, "secretValue");
        const char *text = json_string_value(value);
        size_t len = json_string_length(value);
        if (!text)
            text = "";
        if ((len && fwrite(text, 1, len, stdout) != len) ||
            ((len == 0 || text[len - 1] != '\n') && fputc('\n', stdout) == EOF))
            return cf_cli_fail("cannot write to standard output");
    }
    if (fflush(stdout) != 0)
        return cf_cli_fail("cannot write to standard output");
    return CF_EXIT_OK;
}

/* A row of the table `get` prints: KEY, VERSION, COMMENT, VALUE. */
static enum cf_rc get_row(struct cf_table *table, json_t *secret, void *ctx)
{
    char number[24];
    const char *row[] = {cf_cli_str(secret, "secretKey"),
                         cf_cli_int_str(secret, "version", number, sizeof(number)),
                         cf_cli_str(secret, "secretComment"), cf_cli_str(secret, "secretValue")};
    (void)ctx;
    return cf_table_add(table, row);
}

static const char get_usage[] =
    "usage: coffer secrets get KEY... [--plain] [--expand] [--include-imports]\n"
    "                             [--version N] [options]\n"
    "\n"
    "Shows secrets with their values. With --plain only the values are printed,\n"
    "one per line (a value that ends with a newline is printed as is), e.g.\n"
    "  coffer secrets get TLS_KEY --plain > key.pem\n"
    "\n"
    "options:\n"
    "  --plain            print the bare values\n"
    "  --expand           expand ${...} references (server-side)\n"
    "  --include-imports  also look in the folder's imports\n"
    "  --version N        the value as it was at version N\n" SCOPE_HELP CF_CLI_COMMON_HELP;

static int cmd_get(int argc, char **argv)
{
    bool plain = false, expand = false, imports = false;
    struct cf_opt_int version = {0};
    const struct cf_opt opts[] = {
        {"plain", CF_OPT_BOOL, &plain},
        {"expand", CF_OPT_BOOL, &expand},
        {"include-imports", CF_OPT_BOOL, &imports},
        {"version", CF_OPT_INT, &version},
    };
    const struct cf_cli_spec spec = {get_usage, SECRET_FLAGS, 1,
                                     SIZE_MAX,  opts,         CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    json_t *secrets = NULL, *secret = NULL, *wrapped = NULL;
    char version_text[24];
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (plain && cli.json) {
        status = cf_cli_usage_error(&cli, "--plain and --output json do not go together");
        goto out;
    }
    snprintf(version_text, sizeof(version_text), "%lld", version.value);
    secrets = json_array();
    if (!secrets) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    /* Fetch everything first: either all values are printed or none. */
    for (size_t i = 0; i < cli.nargs; i++) {
        status = fetch_secret(&cli, cli.args[i], version.set ? version_text : NULL, expand, imports,
                              true, &secret);
        if (status != CF_EXIT_OK)
            goto out;
        if (json_array_append_new(secrets, secret) != 0) {
            secret = NULL;
            status = cf_cli_fail("out of memory");
            goto out;
        }
        secret = NULL;
    }
    if (plain) {
        status = print_plain(secrets);
        goto out;
    }
    if (cli.json) {
        wrapped = cli.nargs == 1 ? json_pack("{s:O}", "secret", json_array_get(secrets, 0))
                                 : json_pack("{s:O}", "secrets", secrets);
        status = wrapped ? cf_cli_print_json(wrapped) : cf_cli_fail("out of memory");
        goto out;
    }
    static const char *const headers[] = {"KEY", "VERSION", "COMMENT", "VALUE"};
    status = cf_cli_print_rows(secrets, 4, headers, get_row, NULL);
out:
    json_decref(wrapped);
    json_decref(secret);
    json_decref(secrets);
    cf_cli_end(&cli);
    return status;
}

/* ---- list ------------------------------------------------------------------------------------ */

/* Adds one secret to the table; from is the import it came from ("" for the folder's own). */
static enum cf_rc list_row(struct cf_table *table, json_t *secret, bool show, bool recursive,
                           bool imports, const char *from)
{
    struct cf_buf value;
    char version[24];
    enum cf_rc rc;
    const char *row[5];
    size_t n = 0;

    cf_buf_init(&value, 0);
    rc = cf_cli_display_value(&value, json_string_value(json_object_get(secret, "secretValue")),
                              show);
    if (rc != CF_OK)
        goto out;
    row[n++] = cf_cli_str(secret, "secretKey");
    row[n++] = cf_cli_int_str(secret, "version", version, sizeof(version));
    if (recursive)
        row[n++] = cf_cli_str(secret, "secretPath");
    if (imports)
        row[n++] = from;
    row[n++] = value.data; /* last: long values do not push the other columns away */
    rc = cf_table_add(table, row);
out:
    cf_buf_release_wipe(&value);
    return rc;
}

/* What list_merged_row needs to add a row. */
struct list_rows {
    struct cf_table *table;
    struct cf_buf from;
    bool show, recursive, imports;
};

/* cf_merge_fn: one row per secret that the merge keeps, naming the import it came from. */
static enum cf_rc list_merged_row(json_t *secret, json_t *import, void *ctx)
{
    struct list_rows *rows = ctx;
    cf_buf_reset(&rows->from);
    if (import && cf_buf_printf(&rows->from, "%s:%s", cf_cli_str(import, "environment"),
                                cf_cli_str(import, "secretPath")) != CF_OK)
        return CF_ENOMEM;
    return list_row(rows->table, secret, rows->show, rows->recursive, rows->imports,
                    import ? rows->from.data : "");
}

/* The table for `secrets list`: the folder's secrets, then those of its imports that the merge of
 * `run` and `export` keeps (fetch.h: local keys win, then later imports). */
static int print_list(json_t *answer, bool show, bool recursive, bool imports)
{
    static const char *const headers[] = {"KEY", "VERSION", "PATH", "FROM", "VALUE"};
    const char *chosen[5] = {headers[0], headers[1]};
    size_t ncols = 2;
    struct list_rows rows = {NULL, {0}, show, recursive, imports};
    int status;

    cf_buf_init(&rows.from, 0);
    if (recursive)
        chosen[ncols++] = headers[2];
    if (imports)
        chosen[ncols++] = headers[3];
    chosen[ncols++] = headers[4];
    rows.table = cf_table_new(ncols, chosen);
    if (!rows.table || cf_secrets_merge(answer, list_merged_row, &rows) != CF_OK)
        status = cf_cli_fail("out of memory");
    else
        status = cf_table_print(rows.table);
    cf_buf_release(&rows.from);
    cf_table_free(rows.table);
    return status;
}

static const char list_usage[] =
    "usage: coffer secrets list [--show-values] [--recursive] [--include-imports]\n"
    "                           [--expand] [options]\n"
    "\n"
    "Lists the secrets of a folder. Values are masked (and not even fetched)\n"
    "unless --show-values is given. `coffer secrets` alone also lists.\n"
    "\n"
    "options:\n"
    "  --show-values      show the values\n"
    "  --recursive        include the secrets of every sub-folder\n"
    "  --include-imports  add the secrets of the folder's imports (local keys win,\n"
    "                     then later imports, as for run and export)\n"
    "  --expand           expand ${...} references (server-side)\n" SCOPE_HELP CF_CLI_COMMON_HELP;

static int cmd_list(int argc, char **argv)
{
    bool show = false, recursive = false, imports = false, expand = false;
    const struct cf_opt opts[] = {
        {"show-values", CF_OPT_BOOL, &show},
        {"recursive", CF_OPT_BOOL, &recursive},
        {"include-imports", CF_OPT_BOOL, &imports},
        {"expand", CF_OPT_BOOL, &expand},
    };
    const struct cf_cli_spec spec = {list_usage, SECRET_FLAGS, 0, 0, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    json_t *answer = NULL;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    const struct cf_query_param query[] = {
        {"workspaceId", cli.project_id},
        {"environment", cli.env},
        {"secretPath", cli.path},
        {"recursive", recursive ? "true" : "false"},
        {"include_imports", imports ? "true" : "false"},
        {"expandSecretReferences", expand ? "true" : "false"},
        {"viewSecretValue", show ? "true" : "false"},
        {NULL, NULL},
    };
    status = cf_cli_request(&cli, "GET", "/v3/secrets/raw", query, NULL, &answer);
    if (status == CF_EXIT_OK)
        cf_secrets_warn_broken(json_object_get(answer, "brokenReferences"), "shown unexpanded");
    if (status == CF_EXIT_OK)
        status =
            cli.json ? cf_cli_print_json(answer) : print_list(answer, show, recursive, imports);
out:
    json_decref(answer);
    cf_cli_end(&cli);
    return status;
}

/* ---- delete ---------------------------------------------------------------------------------- */

static const char delete_usage[] =
    "usage: coffer secrets delete KEY... [options]\n"
    "\n"
    "Deletes secrets in one all-or-nothing request (every key must exist).\n"
    "\n"
    "options:\n" SCOPE_HELP CF_CLI_COMMON_HELP;

static int cmd_delete(int argc, char **argv)
{
    const struct cf_cli_spec spec = {delete_usage, SECRET_FLAGS, 1, SIZE_MAX, NULL, 0};
    struct cf_cli cli;
    json_t *body = NULL, *items = NULL, *answer = NULL;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    body = scope_body(&cli);
    items = json_array();
    if (!body || !items) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    for (size_t i = 0; i < cli.nargs; i++) {
        if (json_array_append_new(items, json_pack("{s:s}", "secretKey", cli.args[i])) != 0) {
            status = cf_cli_usage_error(&cli, "keys must be valid UTF-8");
            goto out;
        }
    }
    if (json_object_set(body, "secrets", items) != 0) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    status = cf_cli_request(&cli, "DELETE", "/v3/secrets/batch/raw", NULL, body, &answer);
    if (status != CF_EXIT_OK || print_held(&cli, answer))
        goto out;
    if (cli.json) {
        status = cf_cli_print_json(answer);
        goto out;
    }
    size_t i;
    json_t *secret;
    json_array_foreach(json_object_get(answer, "secrets"), i, secret)
        printf("deleted secret %s\n", cf_cli_str(secret, "secretKey"));
out:
    json_decref(answer);
    json_decref(items);
    json_decref(body);
    cf_cli_end(&cli);
    return status;
}

/* ---- history and rollback -------------------------------------------------------------------- */

/* A row of the table `history` prints; ctx points to the bool "show the values". */
static enum cf_rc history_row(struct cf_table *table, json_t *version, void *ctx)
{
    const bool *show = ctx;
    struct cf_buf value;
    char number[24];
    enum cf_rc rc;

    cf_buf_init(&value, 0);
    rc = cf_cli_display_value(&value, json_string_value(json_object_get(version, "secretValue")),
                              *show);
    if (rc == CF_OK) {
        const char *row[] = {cf_cli_int_str(version, "version", number, sizeof(number)),
                             cf_cli_str(version, "createdAt"), cf_cli_str(version, "expiresAt"),
                             cf_cli_str(version, "secretComment"), value.data};
        rc = cf_table_add(table, row);
    }
    cf_buf_release_wipe(&value);
    return rc;
}

static const char history_usage[] =
    "usage: coffer secrets history KEY [--show-values] [--limit N] [--offset N]\n"
    "                              [options]\n"
    "\n"
    "Lists a secret's versions, newest first. Values are masked unless\n"
    "--show-values is given.\n"
    "\n"
    "options:\n"
    "  --show-values      show the values\n"
    "  --limit N          versions per page (default 20, at most 100)\n"
    "  --offset N         versions to skip (default 0)\n" SCOPE_HELP CF_CLI_COMMON_HELP;

static int cmd_history(int argc, char **argv)
{
    bool show = false;
    struct cf_opt_int limit = {0}, offset = {0};
    const struct cf_opt opts[] = {
        {"show-values", CF_OPT_BOOL, &show},
        {"limit", CF_OPT_INT, &limit},
        {"offset", CF_OPT_INT, &offset},
    };
    const struct cf_cli_spec spec = {history_usage, SECRET_FLAGS, 1, 1, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *answer = NULL;
    char id[128], limit_text[24], offset_text[24];
    int status;

    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    snprintf(limit_text, sizeof(limit_text), "%lld", limit.set ? limit.value : 20);
    snprintf(offset_text, sizeof(offset_text), "%lld", offset.value);
    const struct cf_query_param query[] = {
        {"offset", offset_text}, {"limit", limit_text}, {NULL, NULL}};
    status = secret_id(&cli, cli.args[0], id, sizeof(id));
    if (status == CF_EXIT_OK)
        status = version_path(&path, id, "secret-versions");
    if (status == CF_EXIT_OK)
        status = cf_cli_request(&cli, "GET", path.data, query, NULL, &answer);
    if (status != CF_EXIT_OK)
        goto out;
    if (cli.json) {
        status = cf_cli_print_json(answer);
        goto out;
    }
    static const char *const headers[] = {"VERSION", "CREATED AT", "EXPIRES AT", "COMMENT",
                                          "VALUE"};
    status = cf_cli_print_rows(json_object_get(answer, "secretVersions"), 5, headers, history_row,
                               &show);
out:
    json_decref(answer);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const char rollback_usage[] =
    "usage: coffer secrets rollback KEY --version N [options]\n"
    "\n"
    "Restores version N of a secret (value, comment, tags and expiry) as a new\n"
    "version.\n"
    "\n"
    "options:\n"
    "  --version N        the version to restore (required; see 'secrets history')\n" SCOPE_HELP
        CF_CLI_COMMON_HELP;

static int cmd_rollback(int argc, char **argv)
{
    struct cf_opt_int version = {0};
    const struct cf_opt opts[] = {{"version", CF_OPT_INT, &version}};
    const struct cf_cli_spec spec = {rollback_usage, SECRET_FLAGS, 1, 1, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *body = NULL, *answer = NULL;
    char id[128];
    int status;

    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (!version.set) {
        status = cf_cli_usage_error(&cli, "--version is required");
        goto out;
    }
    body = json_pack("{s:I}", "version", (json_int_t)version.value);
    if (!body) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    status = secret_id(&cli, cli.args[0], id, sizeof(id));
    if (status == CF_EXIT_OK)
        status = version_path(&path, id, "rollback");
    if (status == CF_EXIT_OK)
        status = cf_cli_request(&cli, "POST", path.data, NULL, body, &answer);
    if (status != CF_EXIT_OK)
        goto out;
    if (cli.json) {
        status = cf_cli_print_json(answer);
    } else {
        char number[24];
        json_t *secret = json_object_get(answer, "secret");
        printf("rolled back %s to version %lld (now version %s)\n", cf_cli_str(secret, "secretKey"),
               version.value, cf_cli_int_str(secret, "version", number, sizeof(number)));
    }
out:
    json_decref(answer);
    json_decref(body);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const struct cf_cli_sub subcommands[] = {
    {"set", cmd_set, "create or update secrets (one all-or-nothing request)"},
    {"get", cmd_get, "show secrets with their values"},
    {"list", cmd_list, "list a folder's secrets (values masked)"},
    {"delete", cmd_delete, "delete secrets"},
    {"history", cmd_history, "list a secret's versions"},
    {"rollback", cmd_rollback, "restore an earlier version of a secret"},
};

int cf_cmd_secrets(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, subcommands, CF_ARRAY_SIZE(subcommands), "list");
}
