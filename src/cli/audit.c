/* `coffer audit`: the audit log through the admin API (docs/audit.md): list events with filters,
 * verify the chain and its signed checkpoints, verify archive files on their own, sign a
 * checkpoint now. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/file.h"
#include "util/gzip.h"
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
    "       coffer audit verify --archive FILE [FILE...] [--public-key KEY] [options]\n"
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
    "--archive verifies archive files (written by --audit-retention) here, on\n"
    "their own: the audit key's signature over each, its events numbered without\n"
    "gaps and each linked to the one before it, and, for several files, that\n"
    "each one goes on where the one before it ends. The public key is the\n"
    "server's (GET /api/v1/audit/public-key) unless --public-key gives it.\n"
    "\n"
    "exit status: 0 intact, 3 tampered with (the finding is printed), 1 the\n"
    "server refused or could not be reached, 2 usage error.\n"
    "\n"
    "options:\n"
    "  --anchor FILE|SEQ:HASH  a head kept outside the server\n"
    "  --archive FILE          verify archive files instead of the live log\n"
    "  --public-key KEY        the audit public key (base64) for --archive\n" CF_CLI_COMMON_HELP;

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

/* ---- archive files (docs/audit.md "Retention"; the format: core/auditarchive.h) ---- */

#define ARCHIVE_FILE_MAX (64u * 1024 * 1024)
#define ARCHIVE_TEXT_MAX (64u * 1024 * 1024)

/* What one archive file holds, once verified. */
struct archive_span {
    const char *path;
    json_int_t first_seq, last_seq;
    char prev_hash[ANCHOR_HASH_HEX + 1], last_hash[ANCHOR_HASH_HEX + 1];
};

/* Copies a 64-hex-digit hash member of obj into out; false when it is not one. */
static bool hash_member(json_t *obj, const char *name, char out[ANCHOR_HASH_HEX + 1])
{
    const char *hex = json_string_value(json_object_get(obj, name));
    if (!hex || strlen(hex) != ANCHOR_HASH_HEX ||
        strspn(hex, "0123456789abcdef") != ANCHOR_HASH_HEX)
        return false;
    memcpy(out, hex, ANCHOR_HASH_HEX + 1);
    return true;
}

/* Parses the line at text[*at..] (up to its newline) as a JSON object; NULL when it is not one.
 * *at moves past the line. */
static json_t *next_line(const char *text, size_t len, size_t *at)
{
    const char *start = text + *at;
    const char *end = memchr(start, '\n', len - *at);
    size_t n = end ? (size_t)(end - start) : len - *at;
    *at += n + (end ? 1 : 0);
    json_t *json = json_loadb(start, n, 0, NULL);
    if (json && !json_is_object(json)) {
        json_decref(json);
        json = NULL;
    }
    return json;
}

/* Checks the signature line at the end of an archive's text: true when it signs everything before
 * it (*signed_len) under public_key. */
static bool archive_signed(const char *text, size_t len, const uint8_t *public_key,
                           size_t *signed_len, char *why, size_t why_size)
{
    if (len < 2 || text[len - 1] != '\n') {
        snprintf(why, why_size, "it does not end with a signature line (cut short)");
        return false;
    }
    size_t sig_at = len - 1;
    while (sig_at > 0 && text[sig_at - 1] != '\n')
        sig_at--;
    size_t at = sig_at;
    json_t *line = next_line(text, len, &at);
    const char *sig_b64 = json_string_value(json_object_get(line, "signature"));
    uint8_t signature[crypto_sign_BYTES];
    size_t sig_len = 0;
    bool ok = sig_b64 && strcmp(cf_cli_str(line, "type"), "signature") == 0 &&
              sodium_base642bin(signature, sizeof(signature), sig_b64, strlen(sig_b64), NULL,
                                &sig_len, NULL, sodium_base64_VARIANT_ORIGINAL) == 0 &&
              sig_len == sizeof(signature);
    json_decref(line);
    if (!ok) {
        snprintf(why, why_size, "its last line is not a signature");
        return false;
    }
    if (crypto_sign_verify_detached(signature, (const uint8_t *)text, sig_at, public_key) != 0) {
        snprintf(why, why_size,
                 "its signature does not verify: the file was changed after it was written, or "
                 "another audit key signed it");
        return false;
    }
    *signed_len = sig_at;
    return true;
}

/* Checks the signed text of an archive: its header, its events linked in order, its end. */
static bool archive_linked(const char *text, size_t len, struct archive_span *span, char *why,
                           size_t why_size)
{
    size_t at = 0;
    json_t *line = next_line(text, len, &at);
    span->first_seq = json_integer_value(json_object_get(line, "firstSeq"));
    bool ok = line && strcmp(cf_cli_str(line, "type"), "coffer-audit-archive") == 0 &&
              json_integer_value(json_object_get(line, "version")) == 1 && span->first_seq >= 1 &&
              hash_member(line, "prevHash", span->prev_hash);
    json_decref(line);
    if (!ok) {
        snprintf(why, why_size, "its first line is not an archive header of version 1");
        return false;
    }
    json_int_t expect = span->first_seq, events = 0;
    char prev[ANCHOR_HASH_HEX + 1], hash[ANCHOR_HASH_HEX + 1], event_prev[ANCHOR_HASH_HEX + 1];
    memcpy(prev, span->prev_hash, sizeof(prev));
    while (at < len) {
        line = next_line(text, len, &at);
        if (line && strcmp(cf_cli_str(line, "type"), "end") == 0) {
            json_int_t last = json_integer_value(json_object_get(line, "lastSeq"));
            json_int_t count = json_integer_value(json_object_get(line, "events"));
            ok = hash_member(line, "lastHash", span->last_hash) && last == expect - 1 &&
                 count == events && events > 0 && strcmp(span->last_hash, prev) == 0 && at == len;
            json_decref(line);
            if (!ok) {
                snprintf(why, why_size, "its end line does not match its events");
                return false;
            }
            span->last_seq = last;
            return true;
        }
        json_int_t seq = json_integer_value(json_object_get(line, "seq"));
        ok = line && seq == expect && hash_member(line, "prevHash", event_prev) &&
             hash_member(line, "hash", hash) && strcmp(event_prev, prev) == 0;
        json_decref(line);
        if (!ok) {
            snprintf(why, why_size, "event %lld does not follow event %lld", (long long)expect,
                     (long long)expect - 1);
            return false;
        }
        memcpy(prev, hash, sizeof(prev));
        expect++;
        events++;
    }
    snprintf(why, why_size, "it has no end line");
    return false;
}

/* Verifies one archive file: CF_EXIT_OK, EXIT_TAMPERED (printed), or CF_EXIT_FAILURE when it
 * cannot be read (printed). */
static int verify_archive_file(const char *path, const uint8_t *public_key,
                               struct archive_span *span)
{
    char *packed = NULL;
    size_t packed_len = 0, signed_len = 0;
    struct cf_buf text;
    struct cf_err err;
    char why[256] = "";
    int status = CF_EXIT_OK;
    cf_buf_init(&text, ARCHIVE_TEXT_MAX);
    cf_err_clear(&err);
    span->path = path;
    if (cf_file_read(path, ARCHIVE_FILE_MAX, &packed, &packed_len, &err) != CF_OK) {
        status = cf_cli_fail("--archive: %s", err.msg);
        goto out;
    }
    if (cf_gzip_decompress(packed, packed_len, &text, &err) != CF_OK)
        snprintf(why, sizeof(why), "%s", err.msg);
    else if (archive_signed(text.data, text.len, public_key, &signed_len, why, sizeof(why)))
        archive_linked(text.data, signed_len, span, why, sizeof(why));
    if (why[0]) {
        printf("archive '%s' TAMPERED: %s\n", path, why);
        status = EXIT_TAMPERED;
    }
out:
    free(packed);
    cf_buf_release(&text);
    return status;
}

static int by_first_seq(const void *a, const void *b)
{
    json_int_t x = ((const struct archive_span *)a)->first_seq;
    json_int_t y = ((const struct archive_span *)b)->first_seq;
    return (x > y) - (x < y);
}

/* The audit public key: key_b64, else the server's. */
static int archive_public_key(struct cf_cli *cli, const char *key_b64,
                              uint8_t out[crypto_sign_PUBLICKEYBYTES])
{
    json_t *answer = NULL;
    size_t key_len = 0;
    int status = CF_EXIT_OK;
    if (!key_b64) {
        status = cf_cli_request(cli, "GET", "/v1/audit/public-key", NULL, NULL, &answer);
        key_b64 = status == CF_EXIT_OK ? cf_cli_str(answer, "publicKey") : NULL;
    }
    if (status == CF_EXIT_OK &&
        (!key_b64 ||
         sodium_base642bin(out, crypto_sign_PUBLICKEYBYTES, key_b64, strlen(key_b64), NULL,
                           &key_len, NULL, sodium_base64_VARIANT_ORIGINAL) != 0 ||
         key_len != crypto_sign_PUBLICKEYBYTES))
        status = cf_cli_usage_error(cli, "--public-key: expected the audit public key, 32 bytes "
                                         "in base64 (GET /api/v1/audit/public-key)");
    json_decref(answer);
    return status;
}

/* coffer audit verify --archive FILE [FILE...]: each file on its own, then their links. */
static int verify_archives(struct cf_cli *cli, const char *first, const char *key_b64)
{
    uint8_t public_key[crypto_sign_PUBLICKEYBYTES];
    int status = archive_public_key(cli, key_b64, public_key);
    size_t n = 1 + cli->nargs;
    struct archive_span *spans = calloc(n, sizeof(*spans));
    if (status == CF_EXIT_OK && !spans)
        status = cf_cli_fail("out of memory");
    bool tampered = false;
    for (size_t i = 0; status == CF_EXIT_OK && i < n; i++) {
        int one = verify_archive_file(i == 0 ? first : cli->args[i - 1], public_key, &spans[i]);
        if (one == EXIT_TAMPERED)
            tampered = true;
        else if (one != CF_EXIT_OK)
            status = one;
    }
    if (status == CF_EXIT_OK && !tampered && n > 1) {
        qsort(spans, n, sizeof(*spans), by_first_seq);
        for (size_t i = 1; i < n && !tampered; i++) {
            if (spans[i].first_seq != spans[i - 1].last_seq + 1 ||
                strcmp(spans[i].prev_hash, spans[i - 1].last_hash) != 0) {
                printf("archives TAMPERED: '%s' does not go on where '%s' ends (event %lld)\n",
                       spans[i].path, spans[i - 1].path, (long long)spans[i - 1].last_seq);
                tampered = true;
            }
        }
    }
    for (size_t i = 0; status == CF_EXIT_OK && !tampered && i < n; i++)
        printf("archive '%s' intact: events %lld..%lld, signed; first links to %.16s..., last "
               "hash %s\n",
               spans[i].path, (long long)spans[i].first_seq, (long long)spans[i].last_seq,
               spans[i].prev_hash, spans[i].last_hash);
    free(spans);
    return status == CF_EXIT_OK && tampered ? EXIT_TAMPERED : status;
}

static int cmd_verify(int argc, char **argv)
{
    const char *anchor = NULL, *archive = NULL, *public_key = NULL;
    const struct cf_opt opts[] = {{"anchor", CF_OPT_STRING, &anchor},
                                  {"archive", CF_OPT_STRING, &archive},
                                  {"public-key", CF_OPT_STRING, &public_key}};
    const struct cf_cli_spec spec = {verify_usage, 0, 0, SIZE_MAX, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    json_t *answer = NULL, *body = NULL;
    int status;
    bool going = cf_cli_begin(&cli, argc, argv, &spec, &status);
    if (going && !archive && cli.nargs > 0) {
        status = cf_cli_usage_error(
            &cli, "unexpected argument '%s' (archive files follow --archive)", cli.args[0]);
        going = false;
    }
    if (going && !archive && public_key) {
        status = cf_cli_usage_error(&cli, "--public-key goes with --archive");
        going = false;
    }
    if (going && archive && anchor) {
        status = cf_cli_usage_error(&cli, "--anchor and --archive verify different things: give "
                                          "one of them");
        going = false;
    }
    if (going && archive) {
        status = verify_archives(&cli, archive, public_key);
        going = false;
    }
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
            char archived[24];
            printf("audit log intact: %s events, %s signed checkpoints",
                   cf_cli_int_str(answer, "events", events, sizeof(events)),
                   cf_cli_int_str(answer, "checkpoints", checkpoints, sizeof(checkpoints)));
            if (json_integer_value(json_object_get(answer, "archivedSeq")) > 0)
                printf(" (from the archive anchor: events up to %s are in the archive files)",
                       cf_cli_int_str(answer, "archivedSeq", archived, sizeof(archived)));
            printf("\n");
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
