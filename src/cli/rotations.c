/* `coffer rotations`: secret rotations through the API (docs/rotation.md): list, create, get,
 * run now (or a dry run), status with history, remove, and the plan: every credential with an
 * end date the caller may see, whether a rotation covers it, when that next runs, and which
 * expire before their next rotation. A rotation is named by its id alone: the commands use the
 * API's "any" type segment. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define PREFIX "/v2/secret-rotations"

static const char *const headers[] = {"ID",     "NAME",       "TYPE",         "SECRETS",
                                      "STATUS", "GENERATION", "NEXT ROTATION"};

static const char *time_or(json_t *obj, const char *name, const char *none)
{
    return json_is_string(json_object_get(obj, name)) ? cf_cli_str(obj, name) : none;
}

static enum cf_rc rotation_row(struct cf_table *table, json_t *r, void *ctx)
{
    char where[1200], generation[24], status[64];
    (void)ctx;
    snprintf(where, sizeof(where), "%s:%s", cf_cli_str(json_object_get(r, "environment"), "slug"),
             cf_cli_str(json_object_get(r, "folder"), "path"));
    snprintf(status, sizeof(status), "%s%s%s", cf_cli_str(r, "rotationStatus"),
             json_is_string(json_object_get(r, "pendingStep")) ? " at " : "",
             json_is_string(json_object_get(r, "pendingStep")) ? cf_cli_str(r, "pendingStep") : "");
    const char *row[] = {cf_cli_str(r, "id"),
                         cf_cli_str(r, "name"),
                         cf_cli_str(r, "type"),
                         where,
                         status,
                         cf_cli_int_str(r, "generation", generation, sizeof(generation)),
                         time_or(r, "nextRotationAt", "none")};
    return cf_table_add(table, row);
}

static int print_rotations(json_t *list)
{
    return cf_cli_print_rows(list, CF_ARRAY_SIZE(headers), headers, rotation_row, NULL);
}

static const char list_usage[] = "usage: coffer rotations list --projectId ID [options]\n"
                                 "\n"
                                 "Lists a project's secret rotations with their status.\n"
                                 "\n"
                                 "options:\n" CF_CLI_PROJECT_HELP CF_CLI_COMMON_HELP;

static int cmd_list(int argc, char **argv)
{
    const struct cf_cli_spec spec = {list_usage, CF_CLI_PROJECT, 0, 0, NULL, 0};
    struct cf_cli cli;
    int status;
    if (cf_cli_begin(&cli, argc, argv, &spec, &status)) {
        const struct cf_query_param q[] = {{"projectId", cli.project_id}, {NULL, NULL}};
        status = cf_cli_request_list(&cli, PREFIX, q, "secretRotations", print_rotations);
    }
    cf_cli_end(&cli);
    return status;
}

static const char create_usage[] =
    "usage: coffer rotations create TYPE --projectId ID --name NAME [--env SLUG] [--path PATH]\n"
    "           [--connectionId ID] --parameters JSON --mapping JSON [--consumers JSON]\n"
    "           [--interval DAYS] [--days-before-expiry N] [--rotate-at HH:MM]\n"
    "           [--grace SECONDS] [--lifetime SECONDS] [--auto-rotate=false] [--adopt ID]\n"
    "           [options]\n"
    "\n"
    "Creates a rotation of TYPE (azure-client-secret, postgres-credentials) whose current\n"
    "value lives in the secrets of folder PATH of environment SLUG named by --mapping\n"
    "(output name -> secret key). With auto-rotation on, the first credential is issued at\n"
    "once; then it rotates every DAYS days at HH:MM UTC, or N days before the credential\n"
    "expires, whichever comes first. With --adopt, the credential in use today (an Entra\n"
    "client secret's keyId, or the PostgreSQL role whose password is in use) becomes the\n"
    "current one: nothing is issued until the schedule says so, and the first rotation\n"
    "retires it after the grace period.\n"
    "\n"
    "options:\n" CF_CLI_PROJECT_HELP CF_CLI_ENV_HELP
    "  --path PATH          the folder of the mapped secrets (default /)\n"
    "  --name NAME          the rotation's name (unique in the project)\n"
    "  --description T      a description\n"
    "  --connectionId ID    the app connection the rotator authenticates with\n"
    "  --parameters JSON    the rotator's parameters object (see docs/rotation.md)\n"
    "  --mapping JSON       the secretsMapping object, e.g. {\"clientSecret\": \"AZ_SECRET\"}\n"
    "  --consumers JSON     an array of {type, connectionId, config} to push each new value to\n"
    "  --interval DAYS      rotate every DAYS days (0: no interval)\n"
    "  --days-before-expiry N  rotate N days before the credential's end date\n"
    "  --rotate-at HH:MM    the time of day (UTC) of an interval rotation (default 00:00)\n"
    "  --grace SECONDS      how long the previous credential stays valid (default 3600)\n"
    "  --lifetime SECONDS   the lifetime asked for each new credential\n"
    "  --auto-rotate=false  rotate only when run (coffer rotations run)\n"
    "  --adopt ID           adopt the credential in use now "
    "(currentCredentialId)\n" CF_CLI_COMMON_HELP;

/* Parses text as a JSON value of the wanted kind (an object unless array) into *out. */
static int json_arg(struct cf_cli *cli, const char *option, const char *text, bool array,
                    json_t **out)
{
    json_error_t jerr;
    *out = text ? json_loads(text, 0, &jerr) : NULL;
    if (text && (array ? json_is_array(*out) : json_is_object(*out)))
        return CF_EXIT_OK;
    int status = cf_cli_usage_error(cli, "--%s: a JSON %s is required (%s)", option,
                                    array ? "array" : "object",
                                    !text ? "missing" : (*out ? "another kind" : jerr.text));
    json_decref(*out);
    *out = NULL;
    return status;
}

static int cmd_create(int argc, char **argv)
{
    const char *name = NULL, *description = NULL, *connection = NULL, *params_text = NULL;
    const char *mapping_text = NULL, *consumers_text = NULL, *interval = NULL, *before = NULL;
    const char *rotate_at = NULL, *grace = NULL, *lifetime = NULL, *adopt = NULL;
    bool auto_rotate = true;
    const struct cf_opt opts[] = {
        {"name", CF_OPT_STRING, &name},
        {"description", CF_OPT_STRING, &description},
        {"connectionId", CF_OPT_STRING, &connection},
        {"parameters", CF_OPT_STRING, &params_text},
        {"mapping", CF_OPT_STRING, &mapping_text},
        {"consumers", CF_OPT_STRING, &consumers_text},
        {"interval", CF_OPT_STRING, &interval},
        {"days-before-expiry", CF_OPT_STRING, &before},
        {"rotate-at", CF_OPT_STRING, &rotate_at},
        {"grace", CF_OPT_STRING, &grace},
        {"lifetime", CF_OPT_STRING, &lifetime},
        {"auto-rotate", CF_OPT_BOOL, &auto_rotate},
        {"adopt", CF_OPT_STRING, &adopt},
    };
    const struct cf_cli_spec spec = {
        create_usage, CF_CLI_PROJECT | CF_CLI_ENV | CF_CLI_PATH, 1, 1, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *body = NULL, *params = NULL, *mapping = NULL, *consumers = NULL;
    int status;

    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (!name) {
        status = cf_cli_usage_error(&cli, "--name is required");
        goto out;
    }
    status = json_arg(&cli, "parameters", params_text, false, &params);
    if (status == CF_EXIT_OK)
        status = json_arg(&cli, "mapping", mapping_text, false, &mapping);
    if (status == CF_EXIT_OK)
        status =
            json_arg(&cli, "consumers", consumers_text ? consumers_text : "[]", true, &consumers);
    if (status != CF_EXIT_OK)
        goto out;
    body = json_pack("{s:s, s:s, s:s, s:s, s:O, s:O, s:O, s:b}", "projectId", cli.project_id,
                     "name", name, "environment", cli.env, "secretPath", cli.path, "parameters",
                     params, "secretsMapping", mapping, "consumers", consumers,
                     "isAutoRotationEnabled", auto_rotate);
    if (!body) {
        status = cf_cli_usage_error(&cli, "arguments must be valid UTF-8");
        goto out;
    }
    if (description)
        json_object_set_new(body, "description", json_string(description));
    if (connection)
        json_object_set_new(body, "connectionId", json_string(connection));
    if (adopt)
        json_object_set_new(body, "currentCredentialId", json_string(adopt));
    const struct {
        const char *option, *field, *text;
    } numbers[] = {{"interval", "rotationInterval", interval},
                   {"days-before-expiry", "daysBeforeExpiry", before},
                   {"grace", "gracePeriod", grace},
                   {"lifetime", "lifetime", lifetime}};
    for (size_t i = 0; i < CF_ARRAY_SIZE(numbers); i++) {
        long long n = 0;
        if (!numbers[i].text)
            continue;
        if (!cf_parse_int64(numbers[i].text, 0, 10LL * 365 * 86400, &n)) {
            status = cf_cli_usage_error(&cli, "--%s: a whole number >= 0 is required, not '%s'",
                                        numbers[i].option, numbers[i].text);
            goto out;
        }
        json_object_set_new(body, numbers[i].field, json_integer(n));
    }
    if (rotate_at) {
        unsigned hours = 0, minutes = 0;
        char end = 0;
        if (sscanf(rotate_at, "%2u:%2u%c", &hours, &minutes, &end) != 2 || hours > 23 ||
            minutes > 59) {
            status = cf_cli_usage_error(&cli, "--rotate-at: HH:MM (UTC) is required, not '%s'",
                                        rotate_at);
            goto out;
        }
        json_object_set_new(body, "rotateAtUtc",
                            json_pack("{s:i, s:i}", "hours", (int)hours, "minutes", (int)minutes));
    }
    status = cf_cli_path(&path, PREFIX, cli.args[0], NULL, NULL, NULL);
    if (status == CF_EXIT_OK)
        status =
            cf_cli_request_member(&cli, "POST", path.data, body, "secretRotation", print_rotations);
out:
    json_decref(body);
    json_decref(params);
    json_decref(mapping);
    json_decref(consumers);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

/* Prints a rotation's state in detail; returns 1 when it is failing. */
static int print_status(json_t *r)
{
    char generation[24], attempts[24];
    printf("rotation:      %s (%s)\n", cf_cli_str(r, "name"), cf_cli_str(r, "id"));
    printf("type:          %s\n", cf_cli_str(r, "type"));
    printf("secrets:       %s:%s\n", cf_cli_str(json_object_get(r, "environment"), "slug"),
           cf_cli_str(json_object_get(r, "folder"), "path"));
    printf("status:        %s\n", cf_cli_str(r, "rotationStatus"));
    printf("generation:    %s (credential %s, expires %s)\n",
           cf_cli_int_str(r, "generation", generation, sizeof(generation)),
           json_is_string(json_object_get(r, "currentCredentialId"))
               ? cf_cli_str(r, "currentCredentialId")
               : "none",
           time_or(r, "currentCredentialExpiresAt", "never"));
    printf("last rotated:  %s\n", time_or(r, "lastRotatedAt", "never"));
    printf("next rotation: %s\n", time_or(r, "nextRotationAt", "none scheduled"));
    if (json_is_string(json_object_get(r, "pendingStep")))
        printf("in progress:   step %s (attempt %s)%s%s\n", cf_cli_str(r, "pendingStep"),
               cf_cli_int_str(r, "stepAttempts", attempts, sizeof(attempts)),
               json_is_string(json_object_get(r, "graceUntil")) ? ", grace until " : "",
               time_or(r, "graceUntil", ""));
    if (json_is_string(json_object_get(r, "previousCredentialId")))
        printf("previous:      %s (revoked after the grace period)\n",
               cf_cli_str(r, "previousCredentialId"));
    if (json_is_string(json_object_get(r, "lastRotationMessage"))) {
        printf("last error:    %s\n", cf_cli_str(r, "lastRotationMessage"));
        printf("step, cause:   %s, %s\n", cf_cli_str(r, "lastErrorStep"),
               cf_cli_str(r, "lastErrorCause"));
        printf("retry at:      %s\n", time_or(r, "nextAttemptAt", "-"));
    }
    return strcmp(cf_cli_str(r, "rotationStatus"), "failed") == 0 ? CF_EXIT_FAILURE : CF_EXIT_OK;
}

static void print_history(json_t *history)
{
    size_t i;
    json_t *e;
    if (json_array_size(history))
        printf("history (newest first):\n");
    json_array_foreach(history, i, e)
    {
        char generation[24];
        printf(
            "  %s  gen %s  %-7s %-8s %s%s%s%s%s\n", cf_cli_str(e, "at"),
            cf_cli_int_str(e, "generation", generation, sizeof(generation)), cf_cli_str(e, "step"),
            cf_cli_str(e, "outcome"), json_is_string(json_object_get(e, "credentialId")) ? "[" : "",
            json_is_string(json_object_get(e, "credentialId")) ? cf_cli_str(e, "credentialId") : "",
            json_is_string(json_object_get(e, "credentialId")) ? "] " : "",
            json_is_string(json_object_get(e, "cause")) ? cf_cli_str(e, "cause") : "",
            json_is_string(json_object_get(e, "message")) ? cf_cli_str(e, "message") : "");
    }
}

/* A command on one rotation: method (and suffix) on /v2/secret-rotations/any/ID. */
static int one_rotation(int argc, char **argv, const char *usage, const char *method,
                        const char *suffix, bool detail)
{
    bool dry_run = false;
    const struct cf_opt opts[] = {{"dry-run", CF_OPT_BOOL, &dry_run}};
    const struct cf_cli_spec spec = {usage, 0, 1, 1, opts, strcmp(method, "POST") == 0 ? 1 : 0};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *answer = NULL, *history = NULL;
    int status;
    cf_buf_init(&path, 0);
    bool began = cf_cli_begin(&cli, argc, argv, &spec, &status);
    if (began) {
        const struct cf_query_param q[] = {{"dryRun", "true"}, {NULL, NULL}};
        status = cf_cli_path(&path, PREFIX "/any", cli.args[0], suffix, NULL, NULL);
        if (status == CF_EXIT_OK)
            status = cf_cli_request(&cli, method, path.data, dry_run ? q : NULL, NULL, &answer);
    }
    if (began && status == CF_EXIT_OK && detail && !dry_run) {
        cf_buf_reset(&path);
        status = cf_cli_path(&path, PREFIX "/any", cli.args[0], "/history", NULL, NULL);
        if (status == CF_EXIT_OK)
            status = cf_cli_request(&cli, "GET", path.data, NULL, NULL, &history);
    }
    if (began && status == CF_EXIT_OK) {
        json_t *r = json_object_get(answer, "secretRotation");
        if (cli.json) {
            if (history)
                json_object_set(answer, "history", json_object_get(history, "history"));
            status = cf_cli_print_json(answer);
        } else if (dry_run) {
            size_t i;
            json_t *c;
            printf("a rotation would make these calls (nothing was called):\n");
            json_array_foreach(json_object_get(answer, "calls"), i, c)
            {
                printf("  %-7s %-6s %s  (%s)\n", cf_cli_str(c, "step"), cf_cli_str(c, "method"),
                       cf_cli_str(c, "target"), cf_cli_str(c, "purpose"));
            }
        } else if (strcmp(method, "DELETE") == 0) {
            printf("removed secret rotation %s (%s)\n", cf_cli_str(r, "name"), cf_cli_str(r, "id"));
        } else if (detail) {
            status = print_status(r);
            print_history(json_object_get(history, "history"));
        } else {
            status = cf_cli_print_member(&cli, answer, "secretRotation", print_rotations);
        }
    }
    json_decref(answer);
    json_decref(history);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const char get_usage[] = "usage: coffer rotations get ID [options]\n"
                                "\n"
                                "Shows one secret rotation.\n"
                                "\n"
                                "options:\n" CF_CLI_COMMON_HELP;

static int cmd_get(int argc, char **argv)
{
    return one_rotation(argc, argv, get_usage, "GET", NULL, false);
}

static const char status_usage[] =
    "usage: coffer rotations status ID [options]\n"
    "\n"
    "Shows a rotation's state: the current credential and its end date, a rotation in\n"
    "progress with its step, the last error with its step and cause, and the history.\n"
    "Exits 1 when the rotation is failing.\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP;

static int cmd_status(int argc, char **argv)
{
    return one_rotation(argc, argv, status_usage, "GET", NULL, true);
}

static const char run_usage[] =
    "usage: coffer rotations run ID [--dry-run] [options]\n"
    "\n"
    "Rotates now and shows the status afterwards (exit 1 when a step failed); what waits\n"
    "(the syncs, the grace period) the server finishes. --dry-run lists the calls a\n"
    "rotation would make, and makes none.\n"
    "\n"
    "options:\n"
    "  --dry-run          list the calls only\n" CF_CLI_COMMON_HELP;

static int cmd_run(int argc, char **argv)
{
    return one_rotation(argc, argv, run_usage, "POST", "/rotate-secrets", true);
}

static const char remove_usage[] =
    "usage: coffer rotations remove ID [options]\n"
    "\n"
    "Removes a rotation. Its credential and secrets stay; a rotation in progress past\n"
    "its first step is refused (it would leave a credential nobody revokes).\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP;

static int cmd_remove(int argc, char **argv)
{
    return one_rotation(argc, argv, remove_usage, "DELETE", NULL, false);
}

/* ---- plan ---- */

static const char plan_usage[] =
    "usage: coffer rotations plan --projectId ID [options]\n"
    "\n"
    "Shows every credential with an end date the caller may see (secrets with expiresAt,\n"
    "client secrets of identities, and the credentials of the app connections the project's\n"
    "rotations use, where their end date is known), whether a rotation of the project covers\n"
    "it and when that next runs, and flags each one that expires before its next rotation\n"
    "(exit 1 when any is flagged). A connection is covered by a rotation that pushes to it\n"
    "(an app-connection consumer).\n"
    "\n"
    "options:\n" CF_CLI_PROJECT_HELP CF_CLI_COMMON_HELP;

static int64_t time_ms(json_t *obj, const char *name)
{
    struct cf_err err;
    int64_t ms = 0;
    if (!json_is_string(json_object_get(obj, name)) ||
        cf_time_parse(cf_cli_str(obj, name), &ms, &err) != CF_OK)
        return 0;
    return ms;
}

/* The rotation of rotations that gives connection id each new credential (an app-connection
 * consumer), or NULL. */
static json_t *covering_connection(json_t *rotations, const char *id)
{
    size_t i, j;
    json_t *r, *c;
    json_array_foreach(rotations, i, r)
    {
        json_array_foreach(json_object_get(r, "consumers"), j, c)
        {
            if (strcmp(cf_cli_str(c, "type"), "app-connection") == 0 &&
                strcmp(cf_cli_str(c, "connectionId"), id) == 0)
                return r;
        }
    }
    return NULL;
}

/* True when a rotation of rotations authenticates with connection id or pushes through it. */
static bool used_by(json_t *rotations, const char *id)
{
    size_t i, j;
    json_t *r, *c;
    json_array_foreach(rotations, i, r)
    {
        if (strcmp(cf_cli_str(r, "connectionId"), id) == 0)
            return true;
        json_array_foreach(json_object_get(r, "consumers"), j, c)
        {
            if (strcmp(cf_cli_str(c, "connectionId"), id) == 0)
                return true;
        }
    }
    return false;
}

/* The rotation of rotations that keeps item's value (a secret in its folder and mapping, or a
 * connection it pushes to), or NULL. */
static json_t *covering(json_t *rotations, json_t *item)
{
    size_t i;
    json_t *r;
    json_t *connection = json_object_get(item, "appConnection");
    if (connection)
        return covering_connection(rotations, cf_cli_str(connection, "id"));
    if (strcmp(cf_cli_str(item, "kind"), "secret") != 0)
        return NULL;
    json_array_foreach(rotations, i, r)
    {
        const char *key;
        json_t *mapped;
        if (strcmp(cf_cli_str(json_object_get(r, "environment"), "slug"),
                   cf_cli_str(item, "environment")) != 0 ||
            strcmp(cf_cli_str(json_object_get(r, "folder"), "path"),
                   cf_cli_str(item, "secretPath")) != 0)
            continue;
        json_object_foreach(json_object_get(r, "secretsMapping"), key, mapped)
        {
            if (json_is_string(mapped) &&
                strcmp(json_string_value(mapped), cf_cli_str(item, "secretKey")) == 0)
                return r;
        }
    }
    return NULL;
}

static const char *or_dash(const char *text)
{
    return text[0] ? text : "-";
}

static enum cf_rc plan_row(struct cf_table *table, json_t *item, void *ctx)
{
    (void)ctx;
    const char *row[] = {cf_cli_str(item, "credential"), cf_cli_str(item, "expiresAt"),
                         or_dash(cf_cli_str(item, "rotation")),
                         or_dash(cf_cli_str(item, "nextRotationAt")), cf_cli_str(item, "flag")};
    return cf_table_add(table, row);
}

static int cmd_plan(int argc, char **argv)
{
    const struct cf_cli_spec spec = {plan_usage, CF_CLI_PROJECT, 0, 0, NULL, 0};
    static const char *const plan_headers[] = {"CREDENTIAL", "EXPIRES", "ROTATION", "NEXT ROTATION",
                                               "FLAG"};
    struct cf_cli cli;
    json_t *expiring = NULL, *connections = NULL, *rotations = NULL, *out = NULL;
    int status;
    size_t flagged = 0;
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    const struct cf_query_param eq[] = {{"projectId", cli.project_id},
                                        {"within", "3650d"},
                                        {"include", "secrets,clientSecrets,connections"},
                                        {NULL, NULL}};
    /* connections are organisation-wide: listed without a project (the admin's; none for others) */
    const struct cf_query_param cq[] = {
        {"within", "3650d"}, {"include", "connections"}, {NULL, NULL}};
    const struct cf_query_param rq[] = {{"projectId", cli.project_id}, {NULL, NULL}};
    status = cf_cli_request(&cli, "GET", "/v1/expiring", eq, NULL, &expiring);
    if (status == CF_EXIT_OK)
        status = cf_cli_request(&cli, "GET", "/v1/expiring", cq, NULL, &connections);
    if (status == CF_EXIT_OK)
        status = cf_cli_request(&cli, "GET", PREFIX, rq, NULL, &rotations);
    if (status != CF_EXIT_OK)
        goto out;
    json_t *list = json_object_get(rotations, "secretRotations");
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(connections, "items"), i, item)
    {
        const char *id = cf_cli_str(json_object_get(item, "appConnection"), "id");
        if (used_by(list, id))
            json_array_append(json_object_get(expiring, "items"), item);
    }
    out = json_array();
    json_array_foreach(json_object_get(expiring, "items"), i, item)
    {
        char name[1400];
        const char *kind = cf_cli_str(item, "kind");
        json_t *r = covering(list, item);
        int64_t expires = time_ms(item, "expiresAt");
        int64_t next = r ? time_ms(r, "nextRotationAt") : 0;
        const char *flag = "";
        if (!expires)
            continue;
        if (!r)
            flag = "no rotation";
        else if (!next || next > expires)
            flag = "EXPIRES BEFORE ITS NEXT ROTATION";
        if (strcmp(kind, "secret") == 0)
            snprintf(name, sizeof(name), "secret %s:%s/%s", cf_cli_str(item, "environment"),
                     cf_cli_str(item, "secretPath"), cf_cli_str(item, "secretKey"));
        else if (strcmp(kind, "connection") == 0 || json_object_get(item, "appConnection"))
            snprintf(name, sizeof(name), "connection %s",
                     cf_cli_str(json_object_get(item, "appConnection"), "name"));
        else
            snprintf(name, sizeof(name), "client secret of %s (%s)",
                     cf_cli_str(json_object_get(item, "identity"), "name"),
                     cf_cli_str(item, "clientSecretId"));
        flagged += !r || flag[0] == 'E';
        json_array_append_new(out,
                              json_pack("{s:s, s:s, s:s, s:s, s:s}", "credential", name,
                                        "expiresAt", cf_cli_str(item, "expiresAt"), "rotation",
                                        r ? cf_cli_str(r, "name") : "", "nextRotationAt",
                                        r ? time_or(r, "nextRotationAt", "") : "", "flag", flag));
    }
    if (cli.json) {
        status = cf_cli_print_json(out);
    } else {
        status = cf_cli_print_rows(out, CF_ARRAY_SIZE(plan_headers), plan_headers, plan_row, NULL);
        printf("%zu credential(s) with an end date, %zu not covered in time\n",
               json_array_size(out), flagged);
    }
    if (status == CF_EXIT_OK && flagged)
        status = CF_EXIT_FAILURE;
out:
    json_decref(out);
    json_decref(expiring);
    json_decref(connections);
    json_decref(rotations);
    cf_cli_end(&cli);
    return status;
}

static const struct cf_cli_sub subcommands[] = {
    {"create", cmd_create, "create a secret rotation"},
    {"get", cmd_get, "show a secret rotation"},
    {"list", cmd_list, "list a project's secret rotations"},
    {"plan", cmd_plan, "every credential with an end date and the rotation covering it"},
    {"remove", cmd_remove, "remove a secret rotation"},
    {"run", cmd_run, "rotate now (or --dry-run: list the calls)"},
    {"status", cmd_status, "a secret rotation's state, last error and history"},
};

int cf_cmd_rotations(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, subcommands, CF_ARRAY_SIZE(subcommands), NULL);
}
