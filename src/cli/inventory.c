/* `coffer inventory`: every secret the token can see, where it lives, how many versions it has,
 * when it last changed, when it expires, who last read it and whether it is marked leaked, and per
 * environment which machine identities can read there, from GET /api/v1/inventory (docs/api.md,
 * Inventory). Output: a table of secrets followed by a "readers" block per environment, the
 * server's JSON, or CSV (the secrets, or with --readers the readers). Nothing here ever holds a
 * secret value: the server sends none. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/format.h"
#include "util/banned.h"
#include "util/str.h"

/* What the table and CSV show when the server cannot say whether a secret was read (its audit log
 * is off, or no longer holds the events). */
#define UNKNOWN "unknown"

static const char usage[] =
    "usage: coffer inventory [--projectId ID] [--identity ID] [--leaked]\n"
    "                        [--output table|json|csv] [--readers] [options]\n"
    "\n"
    "Lists every secret the token can see: project, environment, path, key, version\n"
    "count, last change, expiry and last read (\"unknown\" when the server's audit log is\n"
    "off or no longer holds the reads), when it was marked leaked and where its value\n"
    "was found ('coffer scan --known --mark-leaked'; a new version clears the mark),\n"
    "and per environment the machine identities that\n"
    "can read there, with the path globs their rules narrow them to. Values are never\n"
    "shown or fetched.\n"
    "The admin token sees every project and every reader; an identity's token sees\n"
    "what it may read and only itself among the readers.\n"
    "\n"
    "options:\n"
    "  --projectId ID     one project (id or slug); default every project. Unlike\n"
    "                     other commands, COFFER_PROJECT_ID is not read here\n"
    "  --identity ID      what this machine identity can read: the inventory as\n"
    "                     its own token sees it (admin token, org owners, admins)\n"
    "  --leaked           only the secrets marked leaked\n"
    "  --output FORMAT    table (default), json (the API's answer) or csv (RFC 4180\n"
    "                     quoting, a header line, one row per secret)\n"
    "  --readers          table and csv: list the readers only (csv: one row per\n"
    "                     identity and path glob)\n"
    "  --domain URL       server URL (env COFFER_API_URL or INFISICAL_API_URL)\n"
    "  --token TOKEN      access token (env COFFER_TOKEN, INFISICAL_TOKEN; default:\n"
    "                     the token stored by 'coffer login')\n"
    "  -h, --help         show this help\n";

enum output { OUTPUT_TABLE, OUTPUT_JSON, OUTPUT_CSV };

/* The answer's nesting, flattened: calls fn for each (project, environment). */
typedef enum cf_rc (*env_fn)(json_t *project, json_t *env, void *ctx);

static enum cf_rc each_env(json_t *answer, env_fn fn, void *ctx)
{
    size_t i, j;
    json_t *project, *env;
    json_array_foreach(json_object_get(answer, "projects"), i, project)
    {
        json_array_foreach(json_object_get(project, "environments"), j, env)
        {
            enum cf_rc rc = fn(project, env, ctx);
            if (rc != CF_OK)
                return rc;
        }
    }
    return CF_OK;
}

/* A time member, or none_text when it is null or absent. */
static const char *time_or(json_t *obj, const char *name, const char *none_text)
{
    const char *text = cf_cli_str(obj, name);
    return *text ? text : none_text;
}

/* "TIME by NAME" once reads are recorded ("TIME" when the server does not say who: another
 * identity's read, shown to a caller that is not a project admin), else "unknown". */
static enum cf_rc last_read(json_t *secret, struct cf_buf *out)
{
    cf_buf_reset(out);
    if (!json_is_true(json_object_get(secret, "lastReadKnown")))
        return cf_buf_puts(out, UNKNOWN);
    if (!json_is_object(json_object_get(secret, "lastReadBy")))
        return cf_buf_puts(out, time_or(secret, "lastReadAt", "-"));
    return cf_buf_printf(out, "%s by %s", time_or(secret, "lastReadAt", "-"),
                         cf_cli_str(json_object_get(secret, "lastReadBy"), "name"));
}

/* "TIME at SOURCE" of a secret marked leaked, "-" for one that is not. */
static enum cf_rc leaked(json_t *secret, struct cf_buf *out)
{
    json_t *leak = json_object_get(secret, "leak");
    cf_buf_reset(out);
    if (!json_is_object(leak))
        return cf_buf_puts(out, "-");
    return cf_buf_printf(out, "%s at %s", time_or(leak, "leakedAt", "-"),
                         cf_cli_str(leak, "source"));
}

/* ---- table ----------------------------------------------------------------------------------- */

static const char *const secret_headers[] = {"PROJECT",   "ENV",          "PATH",    "KEY",
                                             "VERSIONS",  "LAST-CHANGED", "EXPIRES", "LAST-READ",
                                             "SYNCED-TO", "LEAKED"};
#define SECRET_COLS (CF_ARRAY_SIZE(secret_headers))

/* "destination:name (sync), ..." of every destination holding a copy, "-" for none. */
static enum cf_rc synced_to(json_t *secret, struct cf_buf *out)
{
    json_t *copy;
    size_t i;
    enum cf_rc rc = CF_OK;
    cf_buf_reset(out);
    json_array_foreach(json_object_get(secret, "syncedTo"), i, copy)
    {
        char text[512];
        snprintf(text, sizeof(text), "%s%s:%s (%s)", i ? ", " : "", cf_cli_str(copy, "destination"),
                 cf_cli_str(copy, "name"), cf_cli_str(copy, "syncName"));
        if ((rc = cf_buf_append(out, text, strlen(text))) != CF_OK)
            return rc;
    }
    return out->len ? CF_OK : cf_buf_append(out, "-", 1);
}

static enum cf_rc secret_rows(json_t *project, json_t *env, void *ctx)
{
    struct cf_table *table = ctx;
    struct cf_buf read;
    size_t i;
    json_t *secret;
    enum cf_rc rc = CF_OK;
    char versions[24];

    struct cf_buf copies, leak;
    cf_buf_init(&read, 0);
    cf_buf_init(&copies, 0);
    cf_buf_init(&leak, 0);
    json_array_foreach(json_object_get(env, "secrets"), i, secret)
    {
        if ((rc = last_read(secret, &read)) != CF_OK ||
            (rc = synced_to(secret, &copies)) != CF_OK || (rc = leaked(secret, &leak)) != CF_OK)
            break;
        const char *row[SECRET_COLS] = {
            cf_cli_str(project, "slug"),
            cf_cli_str(env, "slug"),
            cf_cli_str(secret, "secretPath"),
            cf_cli_str(secret, "secretKey"),
            cf_cli_int_str(secret, "versionCount", versions, sizeof(versions)),
            time_or(secret, "lastChangedAt", "-"),
            time_or(secret, "expiresAt", "-"),
            read.data,
            copies.data,
            leak.data,
        };
        if ((rc = cf_table_add(table, row)) != CF_OK)
            break;
    }
    cf_buf_release(&leak);
    cf_buf_release(&copies);
    cf_buf_release(&read);
    return rc;
}

static const char *const reader_headers[] = {"IDENTITY", "IDENTITY ID", "ROLE", "PATHS"};
#define READER_COLS (CF_ARRAY_SIZE(reader_headers))

/* The reader's path globs joined by ", " into out. */
static enum cf_rc joined_paths(json_t *reader, struct cf_buf *out)
{
    size_t i;
    json_t *path;
    enum cf_rc rc = CF_OK;
    cf_buf_reset(out);
    json_array_foreach(json_object_get(reader, "paths"), i, path)
    {
        if (i && rc == CF_OK)
            rc = cf_buf_puts(out, ", ");
        if (rc == CF_OK)
            rc = cf_buf_puts(out, json_is_string(path) ? json_string_value(path) : "");
    }
    return rc;
}

/* Appends text with two blanks before each line. */
static enum cf_rc indent(struct cf_buf *out, const char *text)
{
    enum cf_rc rc = CF_OK;
    while (rc == CF_OK && *text) {
        const char *nl = strchr(text, '\n');
        size_t n = nl ? (size_t)(nl - text) + 1 : strlen(text);
        rc = cf_buf_append(out, "  ", 2);
        if (rc == CF_OK)
            rc = cf_buf_append(out, text, n);
        text += n;
    }
    return rc;
}

/* "readers of PROJECT/ENV:" and the environment's readers as an indented table, or a line saying
 * there are none. */
static enum cf_rc readers_block(json_t *project, json_t *env, void *ctx)
{
    struct cf_buf *out = ctx;
    struct cf_buf paths, text;
    struct cf_table *table = NULL;
    size_t i;
    json_t *reader;
    json_t *readers = json_object_get(env, "readers");
    enum cf_rc rc;

    cf_buf_init(&paths, 0);
    cf_buf_init(&text, 0);
    rc = cf_buf_puts(out, "\nreaders of ");
    if (rc == CF_OK)
        rc = cf_cli_escape(out, cf_cli_str(project, "slug"));
    if (rc == CF_OK)
        rc = cf_buf_puts(out, "/");
    if (rc == CF_OK)
        rc = cf_cli_escape(out, cf_cli_str(env, "slug"));
    if (rc == CF_OK)
        rc = cf_buf_puts(out, ":\n");
    if (rc == CF_OK && json_array_size(readers) == 0) {
        rc = cf_buf_puts(out, "  no machine identity\n");
        goto out;
    }
    if (rc == CF_OK && !(table = cf_table_new(READER_COLS, reader_headers)))
        rc = CF_ENOMEM;
    json_array_foreach(readers, i, reader)
    {
        if (rc == CF_OK)
            rc = joined_paths(reader, &paths);
        const char *row[READER_COLS] = {cf_cli_str(reader, "identityName"),
                                        cf_cli_str(reader, "identityId"),
                                        cf_cli_str(reader, "role"), paths.data};
        if (rc == CF_OK)
            rc = cf_table_add(table, row);
    }
    if (rc == CF_OK)
        rc = cf_table_render(table, &text);
    if (rc == CF_OK)
        rc = indent(out, text.data ? text.data : "");
out:
    cf_table_free(table);
    cf_buf_release(&text);
    cf_buf_release(&paths);
    return rc;
}

/* The live access grants (docs/approvals.md "Access requests"): who, where, until when. */
static enum cf_rc grants_block(json_t *answer, struct cf_buf *out)
{
    json_t *grants = json_object_get(answer, "accessGrants");
    json_t *g, *a;
    size_t i, j;
    enum cf_rc rc = json_array_size(grants) ? cf_buf_puts(out, "\naccess grants:\n") : CF_OK;
    json_array_foreach(grants, i, g)
    {
        if (rc != CF_OK)
            break;
        rc = cf_buf_printf(
            out, "  %s  %s:%s  until %s  (", cf_cli_str(json_object_get(g, "user"), "email"),
            cf_cli_str(g, "environment"), cf_cli_str(g, "secretPath"), cf_cli_str(g, "endsAt"));
        json_array_foreach(json_object_get(g, "actions"), j, a)
        {
            if (rc == CF_OK)
                rc = cf_buf_printf(out, "%s%s", j ? "," : "",
                                   json_string_value(a) ? json_string_value(a) : "");
        }
        if (rc == CF_OK)
            rc = cf_buf_printf(out, "; grant %s)\n", cf_cli_str(g, "id"));
    }
    return rc;
}

/* The live leases of dynamic secrets (docs/dynamic-secrets.md): which credential, where, whose,
 * until when. */
static enum cf_rc leases_block(json_t *answer, struct cf_buf *out)
{
    json_t *leases = json_object_get(answer, "leases");
    json_t *l;
    size_t i;
    enum cf_rc rc = json_array_size(leases) ? cf_buf_puts(out, "\nlive leases:\n") : CF_OK;
    json_array_foreach(leases, i, l)
    {
        if (rc == CF_OK)
            rc = cf_buf_printf(out, "  %s  %s:%s/%s  %s  until %s  (lease %s)\n",
                               cf_cli_str(l, "credential"), cf_cli_str(l, "environment"),
                               cf_cli_str(l, "secretPath"), cf_cli_str(l, "dynamicSecret"),
                               cf_cli_str(l, "actor"), cf_cli_str(l, "expireAt"),
                               cf_cli_str(l, "id"));
    }
    return rc;
}

static enum cf_rc render_table(json_t *answer, bool readers_only, struct cf_buf *out)
{
    enum cf_rc rc = CF_OK;
    if (!readers_only) {
        struct cf_table *table = cf_table_new(SECRET_COLS, secret_headers);
        if (!table)
            return CF_ENOMEM;
        rc = each_env(answer, secret_rows, table);
        if (rc == CF_OK)
            rc = cf_table_render(table, out);
        cf_table_free(table);
    }
    if (rc == CF_OK && !json_is_true(json_object_get(answer, "readersComplete")))
        rc = cf_buf_puts(out, "\n(readers: only this token's own identity is shown; the admin "
                              "token sees every reader)\n");
    if (rc == CF_OK)
        rc = each_env(answer, readers_block, out);
    if (rc == CF_OK)
        rc = grants_block(answer, out);
    if (rc == CF_OK && !readers_only)
        rc = leases_block(answer, out);
    /* --readers: drop the blank line that separates the blocks from a secrets table. */
    if (rc == CF_OK && readers_only && out->len > 0 && out->data[0] == '\n') {
        memmove(out->data, out->data + 1, out->len);
        out->len--;
    }
    return rc;
}

/* ---- csv ------------------------------------------------------------------------------------- */

/* Appends one CSV record of n fields and its line end. */
static enum cf_rc csv_record(struct cf_buf *out, const char *const *fields, size_t n)
{
    enum cf_rc rc = CF_OK;
    for (size_t i = 0; rc == CF_OK && i < n; i++) {
        if (i)
            rc = cf_buf_append(out, ",", 1);
        if (rc == CF_OK)
            rc = cf_format_csv_field(out, fields[i], strlen(fields[i]));
    }
    return rc == CF_OK ? cf_buf_append(out, "\n", 1) : rc;
}

static const char *const csv_secret_headers[] = {"project",
                                                 "projectName",
                                                 "environment",
                                                 "path",
                                                 "key",
                                                 "version",
                                                 "versionCount",
                                                 "createdAt",
                                                 "lastChangedAt",
                                                 "expiresAt",
                                                 "secretReminderRepeatDays",
                                                 "lastReadAt",
                                                 "lastReadBy",
                                                 "syncedTo",
                                                 "leakedAt",
                                                 "leakSource"};
#define CSV_SECRET_COLS (CF_ARRAY_SIZE(csv_secret_headers))

static enum cf_rc csv_secrets(json_t *project, json_t *env, void *ctx)
{
    struct cf_buf *out = ctx;
    size_t i;
    json_t *secret;
    enum cf_rc rc = CF_OK;
    char version[24], count[24], reminder[24];
    struct cf_buf copies;

    cf_buf_init(&copies, 0);
    json_array_foreach(json_object_get(env, "secrets"), i, secret)
    {
        if ((rc = synced_to(secret, &copies)) != CF_OK)
            break;
        bool known = json_is_true(json_object_get(secret, "lastReadKnown"));
        const char *row[CSV_SECRET_COLS] = {
            cf_cli_str(project, "slug"),
            cf_cli_str(project, "name"),
            cf_cli_str(env, "slug"),
            cf_cli_str(secret, "secretPath"),
            cf_cli_str(secret, "secretKey"),
            cf_cli_int_str(secret, "version", version, sizeof(version)),
            cf_cli_int_str(secret, "versionCount", count, sizeof(count)),
            cf_cli_str(secret, "createdAt"),
            cf_cli_str(secret, "lastChangedAt"),
            cf_cli_str(secret, "expiresAt"),
            cf_cli_int_str(secret, "secretReminderRepeatDays", reminder, sizeof(reminder)),
            known ? cf_cli_str(secret, "lastReadAt") : UNKNOWN,
            known ? cf_cli_str(json_object_get(secret, "lastReadBy"), "name") : UNKNOWN,
            copies.data,
            cf_cli_str(json_object_get(secret, "leak"), "leakedAt"),
            cf_cli_str(json_object_get(secret, "leak"), "source"),
        };
        if ((rc = csv_record(out, row, CSV_SECRET_COLS)) != CF_OK)
            break;
    }
    cf_buf_release(&copies);
    return rc;
}

static const char *const csv_reader_headers[] = {
    "project", "projectName", "environment", "identityId", "identityName", "role", "path"};
#define CSV_READER_COLS (CF_ARRAY_SIZE(csv_reader_headers))

static enum cf_rc csv_readers(json_t *project, json_t *env, void *ctx)
{
    struct cf_buf *out = ctx;
    size_t i, j;
    json_t *reader, *path;
    enum cf_rc rc = CF_OK;

    json_array_foreach(json_object_get(env, "readers"), i, reader)
    {
        json_array_foreach(json_object_get(reader, "paths"), j, path)
        {
            const char *row[CSV_READER_COLS] = {cf_cli_str(project, "slug"),
                                                cf_cli_str(project, "name"),
                                                cf_cli_str(env, "slug"),
                                                cf_cli_str(reader, "identityId"),
                                                cf_cli_str(reader, "identityName"),
                                                cf_cli_str(reader, "role"),
                                                json_is_string(path) ? json_string_value(path)
                                                                     : ""};
            if ((rc = csv_record(out, row, CSV_READER_COLS)) != CF_OK)
                return rc;
        }
    }
    return rc;
}

static enum cf_rc render_csv(json_t *answer, bool readers, struct cf_buf *out)
{
    if (readers) {
        enum cf_rc rc = csv_record(out, csv_reader_headers, CSV_READER_COLS);
        return rc == CF_OK ? each_env(answer, csv_readers, out) : rc;
    }
    enum cf_rc rc = csv_record(out, csv_secret_headers, CSV_SECRET_COLS);
    return rc == CF_OK ? each_env(answer, csv_secrets, out) : rc;
}

/* ---- command --------------------------------------------------------------------------------- */

int cf_cmd_inventory(int argc, char **argv)
{
    const char *project = NULL, *identity = NULL, *output_name = NULL;
    bool readers = false, leaked_only = false;
    /* --output is declared here too: the parser takes the first declaration of a name, so this
     * one (which also accepts csv) shadows the shared table|json option of cf_cli_begin. */
    const struct cf_opt opts[] = {
        {"projectId", CF_OPT_STRING, &project},  {"identity", CF_OPT_STRING, &identity},
        {"output", CF_OPT_STRING, &output_name}, {"readers", CF_OPT_BOOL, &readers},
        {"leaked", CF_OPT_BOOL, &leaked_only},
    };
    const struct cf_cli_spec spec = {usage, 0, 0, 0, opts, CF_ARRAY_SIZE(opts)};
    struct cf_query_param query[] = {
        {"workspaceId", NULL}, {"identityId", NULL}, {"leaked", NULL}, {NULL, NULL}};
    struct cf_cli cli;
    struct cf_buf text;
    json_t *answer = NULL;
    enum output output = OUTPUT_TABLE;
    enum cf_rc rc;
    int status;

    cf_buf_init(&text, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (output_name && strcmp(output_name, "json") == 0) {
        output = OUTPUT_JSON;
    } else if (output_name && strcmp(output_name, "csv") == 0) {
        output = OUTPUT_CSV;
    } else if (output_name && strcmp(output_name, "table") != 0) {
        status =
            cf_cli_usage_error(&cli, "--output takes table, json or csv, not '%.32s'", output_name);
        goto out;
    }
    if (readers && output == OUTPUT_JSON) {
        status = cf_cli_usage_error(&cli, "--readers is for table and csv output; the JSON "
                                          "answer always holds the readers");
        goto out;
    }
    if (project && !*project) {
        status = cf_cli_usage_error(&cli, "--projectId must not be empty");
        goto out;
    }
    if (identity && !*identity) {
        status = cf_cli_usage_error(&cli, "--identity must not be empty");
        goto out;
    }
    query[0].value = project;
    query[1].value = identity;
    query[2].value = leaked_only ? "true" : NULL;
    status = cf_cli_request(&cli, "GET", "/v1/inventory", query, NULL, &answer);
    if (status != CF_EXIT_OK)
        goto out;
    if (output == OUTPUT_JSON) {
        status = cf_cli_print_json(answer);
        goto out;
    }
    rc = output == OUTPUT_CSV ? render_csv(answer, readers, &text)
                              : render_table(answer, readers, &text);
    if (rc == CF_ETOOLARGE)
        status = cf_cli_fail("the inventory is over 64 MiB as text; narrow it with --projectId or "
                             "use --output json");
    else if (rc != CF_OK)
        status = cf_cli_fail("out of memory");
    else if ((text.len && fwrite(text.data, 1, text.len, stdout) != text.len) ||
             fflush(stdout) != 0)
        status = cf_cli_fail("cannot write to standard output");
out:
    json_decref(answer);
    cf_buf_release(&text);
    cf_cli_end(&cli);
    return status;
}
