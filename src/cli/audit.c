/* `coffer audit`: the audit log through the admin API (docs/audit.md): list events with filters,
 * verify the chain and its signed checkpoints, sign a checkpoint now. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/str.h"
#include "util/banned.h"

/* `coffer audit verify` found the log tampered with: a status of its own, so that a scheduled job
 * tells "tampered" from "could not ask". */
#define EXIT_TAMPERED 3

static const char *const event_headers[] = {"SEQ",   "TIME", "ACTOR",  "ACTION",
                                            "WHERE", "KEYS", "RESULT", "REASON"};
#define EVENT_COLS (CF_ARRAY_SIZE(event_headers))

static enum cf_rc event_row(struct cf_table *table, json_t *event, void *ctx)
{
    char seq[24], actor[256], where[1200];
    struct cf_buf keys;
    (void)ctx;
    cf_cli_int_str(event, "seq", seq, sizeof(seq));
    json_t *who = json_object_get(event, "actor");
    const char *name = cf_cli_str(who, "name"), *id = cf_cli_str(who, "id");
    snprintf(actor, sizeof(actor), "%s%s%s", cf_cli_str(who, "kind"), *name || *id ? " " : "",
             *name ? name : id);
    const char *env = cf_cli_str(event, "environment");
    snprintf(where, sizeof(where), "%s%s%s", env, *env ? ":" : "", cf_cli_str(event, "secretPath"));
    cf_buf_init(&keys, 0);
    size_t i;
    json_t *key;
    enum cf_rc rc = CF_OK;
    json_array_foreach(json_object_get(event, "keys"), i, key)
    {
        if (i && rc == CF_OK)
            rc = cf_buf_append(&keys, ",", 1);
        if (rc == CF_OK)
            rc = cf_buf_puts(&keys, json_string_value(key) ? json_string_value(key) : "");
    }
    if (rc == CF_OK && cf_buf_puts(&keys, "") != CF_OK)
        rc = CF_ENOMEM;
    if (rc == CF_OK) {
        const char *row[EVENT_COLS] = {seq,
                                       cf_cli_str(event, "time"),
                                       actor,
                                       cf_cli_str(event, "action"),
                                       where,
                                       keys.data ? keys.data : "",
                                       cf_cli_str(event, "result"),
                                       cf_cli_str(event, "reason")};
        rc = cf_table_add(table, row);
    }
    cf_buf_release(&keys);
    return rc;
}

/* The events as a table fitted into width columns (0: no limit). */
static int print_events(json_t *events, size_t width)
{
    return cf_cli_print_rows_fit(events, EVENT_COLS, event_headers, event_row, NULL, width);
}

static const char list_usage[] =
    "usage: coffer audit list [--since T] [--until T] [--actor WHO] [--action A]\n"
    "                         [--projectId ID] [--after N] [--limit N] [options]\n"
    "\n"
    "Lists audit events, oldest first (admin token). Times are RFC 3339 or a\n"
    "duration meaning that long ago (--since 24h). --actor matches an identity's id\n"
    "or name; --action matches exactly, or every action under a prefix ending in\n"
    "'.' (--action secrets.). A page holds --limit events (default 100, at most\n"
    "1000); with --output json the answer's nextAfter is the --after of the next\n"
    "page (null on the last).\n"
    "\n"
    "The table fits the terminal (COLUMNS, else its width): the widest columns are\n"
    "cut, ending in '\xe2\x80\xa6'. Into a pipe or a file it is not cut unless COLUMNS is\n"
    "set; --wide never cuts.\n"
    "\n"
    "options:\n"
    "  --since T          events at or after T\n"
    "  --until T          events before T\n"
    "  --actor WHO        an identity id or name, or \"admin\"\n"
    "  --action A         e.g. secrets.read, auth.login.universal-auth, secrets.\n"
    "  --projectId ID     events about one project (its id)\n"
    "  --after N          events after event number N\n"
    "  --limit N          events per page\n"
    "  --wide             show every column in full\n" CF_CLI_COMMON_HELP;

static int cmd_list(int argc, char **argv)
{
    const char *since = NULL, *until = NULL, *actor = NULL, *action = NULL, *project = NULL;
    const char *after = NULL, *limit = NULL;
    bool wide = false;
    const struct cf_opt opts[] = {
        {"wide", CF_OPT_BOOL, &wide},       {"since", CF_OPT_STRING, &since},
        {"until", CF_OPT_STRING, &until},   {"actor", CF_OPT_STRING, &actor},
        {"action", CF_OPT_STRING, &action}, {"projectId", CF_OPT_STRING, &project},
        {"after", CF_OPT_STRING, &after},   {"limit", CF_OPT_STRING, &limit},
    };
    const struct cf_cli_spec spec = {list_usage, 0, 0, 0, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    int status;
    if (cf_cli_begin(&cli, argc, argv, &spec, &status)) {
        const struct cf_query_param query[] = {
            {"since", since},       {"until", until}, {"actor", actor}, {"action", action},
            {"projectId", project}, {"after", after}, {"limit", limit}, {NULL, NULL},
        };
        json_t *answer = NULL;
        status = cf_cli_request(&cli, "GET", "/v1/audit/events", query, NULL, &answer);
        if (status == CF_EXIT_OK)
            status = cli.json ? cf_cli_print_json(answer)
                              : print_events(json_object_get(answer, "events"),
                                             cf_cli_table_width(wide));
        json_decref(answer);
    }
    cf_cli_end(&cli);
    return status;
}

static const char verify_usage[] =
    "usage: coffer audit verify [--anchor FILE|SEQ:HASH] [options]\n"
    "\n"
    "Verifies the whole audit log (admin token): every event's hash, the chain\n"
    "that links each event to the one before it, every signed checkpoint, and the\n"
    "signed head kept outside the database (the server's head file). Reports the\n"
    "first broken link precisely: an event edited, deleted, inserted or moved, or\n"
    "a log cut short (naming the missing events), or a head file that is missing.\n"
    "\n"
    "--anchor also compares the log with a head the operator kept: a copy of the\n"
    "head file, an audit stream file (JSON lines: its last head or event), or\n"
    "SEQ:HASH (an event's number and its 64 hex digit hash, noted down).\n"
    "\n"
    "exit status: 0 intact, 3 tampered with (the finding is printed), 1 the\n"
    "server refused or could not be reached, 2 usage error.\n"
    "\n"
    "options:\n"
    "  --anchor FILE|SEQ:HASH  a head kept outside the server\n" CF_CLI_COMMON_HELP;

#define ANCHOR_HASH_HEX 64
#define ANCHORS_MAX 1000 /* = the server's */

/* {seq, hash[, timeUs, signature]} of a head or event record; NULL when it has no seq and hash. */
static json_t *anchor_of_record(json_t *record)
{
    json_t *seq = json_object_get(record, "seq"), *hash = json_object_get(record, "hash");
    if (!json_is_integer(seq) || !json_is_string(hash))
        return NULL;
    json_t *anchor = json_pack("{s:O, s:O}", "seq", seq, "hash", hash);
    const char *const optional[] = {"timeUs", "signature"};
    for (size_t i = 0; anchor && i < CF_ARRAY_SIZE(optional); i++) {
        json_t *value = json_object_get(record, optional[i]);
        if (value)
            json_object_set(anchor, optional[i], value);
    }
    return anchor;
}

static json_int_t anchor_seq(json_t *anchor)
{
    return json_integer_value(json_object_get(anchor, "seq"));
}

/* The heads an anchor file vouches for: a head file (one record), or a stream (JSON lines of events
 * and heads), whose records only ever go forward. Sent: its last record, and every record after
 * which the numbers went back (where the log was cut and grown again, or restored), so that a cut
 * is found even after the server has written more events over it. */
static int anchors_from_file(const char *path, json_t *anchors)
{
    char *line = NULL;
    size_t size = 0;
    json_t *prev = NULL;
    int status = CF_EXIT_OK;
    FILE *f = fopen(path, "re");
    if (!f)
        return cf_cli_fail("--anchor: cannot read '%s': %s", path, strerror(errno));
    while (status == CF_EXIT_OK && getline(&line, &size, f) >= 0) {
        json_t *record = json_loads(line, 0, NULL);
        json_t *anchor = anchor_of_record(record);
        json_decref(record);
        if (!anchor)
            continue;
        if (prev && anchor_seq(anchor) <= anchor_seq(prev)) {
            if (json_array_size(anchors) + 1 >= ANCHORS_MAX)
                status = cf_cli_fail("--anchor: '%s' goes back more than %d times", path,
                                     ANCHORS_MAX - 1);
            else
                json_array_append(anchors, prev);
        }
        json_decref(prev);
        prev = anchor;
    }
    if (status == CF_EXIT_OK && ferror(f))
        status = cf_cli_fail("--anchor: cannot read '%s': %s", path, strerror(errno));
    if (status == CF_EXIT_OK && prev)
        json_array_append(anchors, prev);
    if (status == CF_EXIT_OK && !prev) {
        /* A head file written over several lines. */
        json_t *record = json_load_file(path, 0, NULL);
        json_t *anchor = anchor_of_record(record);
        json_decref(record);
        if (anchor)
            json_array_append_new(anchors, anchor);
        else
            status = cf_cli_fail("--anchor: '%s' holds no head or event (a JSON object with seq "
                                 "and hash)",
                                 path);
    }
    json_decref(prev);
    free(line);
    fclose(f);
    return status;
}

/* --anchor FILE|SEQ:HASH as the body of the verify request ({"anchor": {...}}). */
static int anchor_body(const struct cf_cli *cli, const char *given, json_t **body)
{
    size_t digits = strspn(given, "0123456789");
    int status = CF_EXIT_OK;
    if (!*given)
        return cf_cli_usage_error(cli, "--anchor: expected FILE or SEQ:HASH");
    json_t *anchors = json_array();
    if (!anchors)
        return cf_cli_fail("out of memory");
    if (digits > 0 && digits < 19 && given[digits] == ':') {
        const char *hash = given + digits + 1;
        char number[20];
        long long seq = 0;
        memcpy(number, given, digits);
        number[digits] = '\0';
        if (strlen(hash) != ANCHOR_HASH_HEX ||
            strspn(hash, "0123456789abcdefABCDEF") != ANCHOR_HASH_HEX ||
            !cf_parse_int64(number, 1, INT64_MAX, &seq))
            status = cf_cli_usage_error(cli,
                                        "--anchor: '%.100s' is not SEQ:HASH (SEQ: an event "
                                        "number from 1; HASH: its hash, 64 hex digits)",
                                        given);
        else if (json_array_append_new(
                     anchors, json_pack("{s:I, s:s}", "seq", (json_int_t)seq, "hash", hash)) != 0)
            status = cf_cli_fail("out of memory");
    } else {
        status = anchors_from_file(given, anchors);
    }
    if (status == CF_EXIT_OK) {
        *body = json_pack("{s:O}", "anchor", anchors);
        if (!*body)
            status = cf_cli_fail("out of memory");
    }
    json_decref(anchors);
    return status;
}

static int cmd_verify(int argc, char **argv)
{
    const char *anchor = NULL;
    const struct cf_opt opts[] = {{"anchor", CF_OPT_STRING, &anchor}};
    const struct cf_cli_spec spec = {verify_usage, 0, 0, 0, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    json_t *answer = NULL, *body = NULL;
    int status;
    bool going = cf_cli_begin(&cli, argc, argv, &spec, &status);
    if (going && anchor) {
        status = anchor_body(&cli, anchor, &body);
        going = status == CF_EXIT_OK;
    }
    if (going)
        status = cf_cli_request(&cli, "POST", "/v1/audit/verify", NULL, body, &answer);
    if (answer) {
        bool ok = json_is_true(json_object_get(answer, "ok"));
        char events[24], checkpoints[24];
        if (cli.json) {
            status = cf_cli_print_json(answer);
        } else if (ok) {
            printf("audit log intact: %s events, %s signed checkpoints\n",
                   cf_cli_int_str(answer, "events", events, sizeof(events)),
                   cf_cli_int_str(answer, "checkpoints", checkpoints, sizeof(checkpoints)));
        } else {
            printf("audit log TAMPERED (%s): %s\n", cf_cli_str(answer, "finding"),
                   cf_cli_str(answer, "message"));
        }
        if (status == CF_EXIT_OK && !ok)
            status = EXIT_TAMPERED;
    }
    json_decref(answer);
    json_decref(body);
    cf_cli_end(&cli);
    return status;
}

static const char checkpoint_usage[] =
    "usage: coffer audit checkpoint [options]\n"
    "\n"
    "Signs a checkpoint over the last event now (admin token), and its head. The\n"
    "server also signs one every 1000 events and, while events come, at least every\n"
    "10 seconds (coffer server --audit-checkpoint-interval). When the server's head\n"
    "file has been moved away (after checking the log against a stream or an\n"
    "anchor), this writes a new one.\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP;

static int cmd_checkpoint(int argc, char **argv)
{
    const struct cf_cli_spec spec = {checkpoint_usage, 0, 0, 0, NULL, 0};
    struct cf_cli cli;
    json_t *answer = NULL;
    int status;
    if (cf_cli_begin(&cli, argc, argv, &spec, &status))
        status = cf_cli_request(&cli, "POST", "/v1/audit/checkpoints", NULL, NULL, &answer);
    if (answer)
        status = cli.json
                     ? cf_cli_print_json(answer)
                     : (puts(cf_cli_str(answer, "message")) < 0 ? CF_EXIT_FAILURE : CF_EXIT_OK);
    json_decref(answer);
    cf_cli_end(&cli);
    return status;
}

static const struct cf_cli_sub subcommands[] = {
    {"list", cmd_list, "list audit events"},
    {"verify", cmd_verify, "verify the audit log's chain and checkpoints"},
    {"checkpoint", cmd_checkpoint, "sign a checkpoint over the last event now"},
};

int cf_cmd_audit(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, subcommands, CF_ARRAY_SIZE(subcommands), NULL);
}
