/* `coffer identities`: machine identities and what they may do, through the admin API (docs/api.md,
 * Machine identities and universal auth): the identities themselves (/api/v1/identities), universal
 * auth attached to one (/api/v1/auth/universal-auth/identities/{id}), its client secrets (shown
 * once, on creation) and its project memberships
 * (/api/v2/workspace/{projectId}/identity-memberships). Durations are given as 90, 90s, 15m, 12h or
 * 180d and sent in seconds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define EXIT_HELP                                                                                  \
    "\nexit status: 0 done, 1 the server refused (its message is printed) or could not be\n"       \
    "reached, 2 usage error.\n"

/* ---- shared pieces --------------------------------------------------------------------------- */

/* Parses a duration option into seconds; usage error naming the option otherwise. */
static int parse_duration(const struct cf_cli *cli, const char *option, const char *text,
                          long long *seconds)
{
    struct cf_err err;
    int64_t value = 0;
    cf_err_clear(&err);
    if (cf_duration_parse(text, &value, &err) != CF_OK)
        return cf_cli_usage_error(cli,
                                  "--%s takes a duration such as 90, 90s, 15m, 12h or 180d, "
                                  "not '%.64s'",
                                  option, text);
    *seconds = value;
    return CF_EXIT_OK;
}

/* "a, b,c" -> [{ipAddress: "a"}, {ipAddress: "b"}, {ipAddress: "c"}]; NULL on a bad list. */
static json_t *ip_list(const char *text)
{
    json_t *list = json_array();
    struct cf_list_iter it;
    struct cf_str item;
    cf_list_init(&it, text);
    while (list && cf_list_next(&it, &item)) {
        if (!item.n || json_array_append_new(
                           list, json_pack("{s:s#}", "ipAddress", item.p, (int)item.n)) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    if (list && json_array_size(list) == 0) {
        json_decref(list);
        return NULL;
    }
    return list;
}

/* The ipAddress members of a [{ipAddress}] array joined with ",", into out. */
static enum cf_rc join_ips(json_t *list, struct cf_buf *out)
{
    size_t i;
    json_t *item;
    enum cf_rc rc = CF_OK;
    json_array_foreach(list, i, item)
    {
        if (i && rc == CF_OK)
            rc = cf_buf_append(out, ",", 1);
        if (rc == CF_OK)
            rc = cf_buf_puts(out, cf_cli_str(item, "ipAddress"));
    }
    return rc;
}

#define UA_PATH "/v1/auth/universal-auth/identities"

/* A command with no options of its own that sends one request and prints the answer. Its path
 * is prefix, the first identifier, suffix, the second identifier and suffix2, the identifiers
 * being the project (with CF_CLI_PROJECT) and then the arguments; the answer's member is printed
 * with print_table, as a whole list (list true: method is GET) or as the one object it is. */
struct plain_command {
    const char *usage;
    unsigned flags;
    size_t nargs;
    const char *method, *prefix, *suffix, *suffix2, *member;
    int (*print_table)(json_t *list);
    bool list;
};

static int run_plain(int argc, char **argv, const struct plain_command *c)
{
    const struct cf_cli_spec spec = {c->usage, c->flags, c->nargs, c->nargs, NULL, 0};
    const char *ids[3] = {NULL, NULL, NULL};
    size_t n = 0;
    struct cf_cli cli;
    struct cf_buf path;
    int status;

    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (c->flags & CF_CLI_PROJECT)
        ids[n++] = cli.project_id;
    for (size_t i = 0; i < cli.nargs && n < 2; i++)
        ids[n++] = cli.args[i];
    status = cf_cli_path(&path, c->prefix, ids[0], c->suffix, ids[1], c->suffix2);
    if (status == CF_EXIT_OK)
        status = c->list ? cf_cli_request_list(&cli, path.data, NULL, c->member, c->print_table)
                         : cf_cli_request_member(&cli, c->method, path.data, NULL, c->member,
                                                 c->print_table);
out:
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

/* ---- identities ------------------------------------------------------------------------------ */

static const char *const identity_headers[] = {"ID", "NAME", "AUTH METHODS", "CREATED AT"};
#define IDENTITY_COLS (CF_ARRAY_SIZE(identity_headers))

static enum cf_rc identity_row(struct cf_table *table, json_t *identity, void *ctx)
{
    struct cf_buf methods;
    size_t i;
    json_t *method;
    enum cf_rc rc = CF_OK;

    (void)ctx;
    cf_buf_init(&methods, 0);
    json_array_foreach(json_object_get(identity, "authMethods"), i, method)
    {
        if (i && rc == CF_OK)
            rc = cf_buf_append(&methods, ",", 1);
        if (rc == CF_OK && json_is_string(method))
            rc = cf_buf_puts(&methods, json_string_value(method));
    }
    if (rc == CF_OK) {
        const char *row[IDENTITY_COLS] = {cf_cli_str(identity, "id"), cf_cli_str(identity, "name"),
                                          methods.data, cf_cli_str(identity, "createdAt")};
        rc = cf_table_add(table, row);
    }
    cf_buf_release(&methods);
    return rc;
}

static int print_identities(json_t *list)
{
    return cf_cli_print_rows(list, IDENTITY_COLS, identity_headers, identity_row, NULL);
}

static const char create_usage[] =
    "usage: coffer identities create NAME [--plain] [options]\n"
    "\n"
    "Creates a machine identity. Attach universal auth to it and give it project\n"
    "memberships before it can do anything.\n"
    "\n"
    "options:\n"
    "  --plain            print only the new identity's id, as in\n"
    "                     ID=$(coffer identities create NAME --plain)\n"
    "" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_create(int argc, char **argv)
{
    bool plain = false;
    const struct cf_opt opts[] = {{"plain", CF_OPT_BOOL, &plain}};
    const struct cf_cli_spec spec = {create_usage, 0, 1, 1, opts, 1};
    struct cf_cli cli;
    json_t *body = NULL;
    int status;

    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    body = json_pack("{s:s}", "name", cli.args[0]);
    if (!body) {
        status = cf_cli_usage_error(&cli, "the name must be valid UTF-8");
        goto out;
    }
    status = plain ? cf_cli_request_field(&cli, "POST", "/v1/identities", body, "identity", "id")
                   : cf_cli_request_member(&cli, "POST", "/v1/identities", body, "identity",
                                           print_identities);
out:
    json_decref(body);
    cf_cli_end(&cli);
    return status;
}

static const char list_usage[] = "usage: coffer identities list [options]\n"
                                 "\n"
                                 "Lists the machine identities.\n"
                                 "\n"
                                 "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_list(int argc, char **argv)
{
    static const struct plain_command c = {
        .usage = list_usage,
        .method = "GET",
        .prefix = "/v1/identities",
        .member = "identities",
        .print_table = print_identities,
        .list = true,
    };
    return run_plain(argc, argv, &c);
}

static const char get_usage[] = "usage: coffer identities get ID [options]\n"
                                "\n"
                                "Shows a machine identity.\n"
                                "\n"
                                "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static const char delete_usage[] =
    "usage: coffer identities delete ID [options]\n"
    "\n"
    "Deletes a machine identity with its auth methods, client secrets and memberships;\n"
    "its access tokens stop working at once.\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static const struct cf_cli_object identity_object = {"identity", "identity", "name",
                                                     print_identities};

static int cmd_get(int argc, char **argv)
{
    return cf_cli_object_command(argc, argv, get_usage, "GET", "/v1/identities", &identity_object);
}

static int cmd_delete(int argc, char **argv)
{
    return cf_cli_object_command(argc, argv, delete_usage, "DELETE", "/v1/identities",
                                 &identity_object);
}

static const char rename_usage[] = "usage: coffer identities rename ID NAME [options]\n"
                                   "\n"
                                   "Renames a machine identity.\n"
                                   "\n"
                                   "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cmd_rename(int argc, char **argv)
{
    const struct cf_cli_spec spec = {rename_usage, 0, 2, 2, NULL, 0};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *body = NULL;
    int status;

    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    body = json_pack("{s:s}", "name", cli.args[1]);
    if (!body) {
        status = cf_cli_usage_error(&cli, "the name must be valid UTF-8");
        goto out;
    }
    status = cf_cli_path(&path, "/v1/identities", cli.args[0], NULL, NULL, NULL);
    if (status == CF_EXIT_OK)
        status =
            cf_cli_request_member(&cli, "PATCH", path.data, body, "identity", print_identities);
out:
    json_decref(body);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

/* ---- universal auth -------------------------------------------------------------------------- */

static const char *const ua_headers[] = {"CLIENT ID",  "TOKEN TTL",         "TOKEN MAX TTL",
                                         "TOKEN USES", "TOKEN TRUSTED IPS", "SECRET TRUSTED IPS"};
#define UA_COLS (CF_ARRAY_SIZE(ua_headers))

static enum cf_rc ua_row(struct cf_table *table, json_t *ua, void *ctx)
{
    struct cf_buf token_ips, secret_ips;
    char ttl[24], max_ttl[24], uses[24];
    enum cf_rc rc;

    (void)ctx;
    cf_buf_init(&token_ips, 0);
    cf_buf_init(&secret_ips, 0);
    rc = join_ips(json_object_get(ua, "accessTokenTrustedIps"), &token_ips);
    if (rc == CF_OK)
        rc = join_ips(json_object_get(ua, "clientSecretTrustedIps"), &secret_ips);
    if (rc == CF_OK) {
        const char *row[UA_COLS] = {
            cf_cli_str(ua, "clientId"),
            cf_cli_int_str(ua, "accessTokenTTL", ttl, sizeof(ttl)),
            cf_cli_int_str(ua, "accessTokenMaxTTL", max_ttl, sizeof(max_ttl)),
            cf_cli_int_str(ua, "accessTokenNumUsesLimit", uses, sizeof(uses)),
            token_ips.data,
            secret_ips.data,
        };
        rc = cf_table_add(table, row);
    }
    cf_buf_release(&secret_ips);
    cf_buf_release(&token_ips);
    return rc;
}

static int print_ua(json_t *list)
{
    return cf_cli_print_rows(list, UA_COLS, ua_headers, ua_row, NULL);
}

/* ---- auth-method settings: one table-driven attach/update for every method ------------------- */

/* What one option of an attach/update command becomes in the request body. */
enum field_kind {
    F_TEXT,        /* a string member */
    F_FILE,        /* a string member read from a file (- for standard input) */
    F_SECRET_FILE, /* the same, for a credential: the buffer is wiped */
    F_PEM_FILE,    /* a one-element array member read from a file (public keys) */
    F_DURATION,    /* seconds, from 90 / 90s / 15m / 12h / 180d */
    F_COUNT,       /* a whole number >= 0 */
    F_IPS,         /* [{ipAddress}] from "a, b/24" */
    F_CLAIMS,      /* {name: "v1, v2"} from a JSON object or "name=v1,v2;other=v3" */
};

struct method_field {
    const char *option;
    enum field_kind kind;
    const char *member;
    const char *sets_type; /* also set configurationType to this (JWT: static / jwks) */
};

struct method_command {
    const char *usage;
    const char *prefix; /* JWT_PATH, ... */
    const char *member; /* identityJwtAuth, ... */
    int (*print_table)(json_t *list);
    const struct method_field *fields;
    size_t nfields;
    /* the member of the answer's object that --plain prints; NULL: no --plain */
    const char *plain_field;
};

#define METHOD_FIELDS_MAX 16
#define FILE_MAX 65536

/* Reads a whole (small) file, or standard input for "-", into buf. */
static int read_small_file(const char *option, const char *name, struct cf_buf *buf)
{
    char chunk[4096];
    size_t n;
    FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "rb");
    if (!f)
        return cf_cli_fail("--%s: cannot open %s: %s", option, name, strerror(errno));
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (buf->len + n > FILE_MAX || cf_buf_append(buf, chunk, n) != CF_OK) {
            sodium_memzero(chunk, sizeof(chunk));
            if (f != stdin)
                fclose(f);
            return cf_cli_fail("--%s: %s is larger than %d bytes", option, name, FILE_MAX);
        }
    }
    sodium_memzero(chunk, sizeof(chunk));
    bool failed = ferror(f);
    if (f != stdin)
        fclose(f);
    if (failed)
        return cf_cli_fail("--%s: cannot read %s", option, name);
    /* A credential file usually ends with a newline that is not part of it. */
    while (buf->len && (buf->data[buf->len - 1] == '\n' || buf->data[buf->len - 1] == '\r'))
        buf->data[--buf->len] = '\0';
    return CF_EXIT_OK;
}

/* "name=v1,v2;other=v3" or a JSON object -> {name: "v1,v2", other: "v3"}; NULL when malformed. */
static json_t *claims_object(const char *text)
{
    if (*text == '{') {
        json_t *obj = json_loads(text, 0, NULL);
        if (json_is_object(obj))
            return obj;
        json_decref(obj);
        return NULL;
    }
    json_t *obj = json_object();
    const char *p = text;
    while (obj && *p) {
        const char *semi = strchr(p, ';');
        size_t n = semi ? (size_t)(semi - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (!eq || eq == p) {
            json_decref(obj);
            return NULL;
        }
        char name[256];
        size_t name_len = (size_t)(eq - p);
        if (name_len >= sizeof(name) ||
            json_object_set_new(obj, (memcpy(name, p, name_len), name[name_len] = '\0', name),
                                json_stringn(eq + 1, n - name_len - 1)) != 0) {
            json_decref(obj);
            return NULL;
        }
        p += n + (semi ? 1 : 0);
    }
    return obj;
}

/* Sets member of body from one option's text. Returns the exit status (message printed). */
static int set_field(const struct cf_cli *cli, json_t *body, const struct method_field *f,
                     const char *text)
{
    long long number = 0;
    json_t *value = NULL;
    struct cf_buf file;
    int status = CF_EXIT_OK;

    cf_buf_init(&file, 0);
    switch (f->kind) {
    case F_TEXT:
        value = json_string(text);
        break;
    case F_FILE:
    case F_SECRET_FILE:
    case F_PEM_FILE:
        status = read_small_file(f->option, text, &file);
        if (status == CF_EXIT_OK) {
            value = json_stringn(file.data ? file.data : "", file.len);
            if (value && f->kind == F_PEM_FILE)
                value = json_pack("[o]", value);
        }
        break;
    case F_DURATION:
        status = parse_duration(cli, f->option, text, &number);
        if (status == CF_EXIT_OK)
            value = json_integer(number);
        break;
    case F_COUNT:
        if (!cf_parse_int64(text, 0, INT32_MAX, &number))
            return cf_cli_usage_error(cli, "--%s takes a whole number >= 0, not '%.64s'", f->option,
                                      text);
        value = json_integer(number);
        break;
    case F_IPS:
        value = ip_list(text);
        if (!value)
            return cf_cli_usage_error(cli,
                                      "--%s takes a comma-separated list of addresses or CIDR "
                                      "ranges",
                                      f->option);
        break;
    case F_CLAIMS:
        value = claims_object(text);
        if (!value)
            return cf_cli_usage_error(cli,
                                      "--%s takes name=value pairs separated by ';' (a value may "
                                      "list several, comma-separated) or a JSON object",
                                      f->option);
        break;
    }
    if (f->kind == F_SECRET_FILE)
        cf_buf_release_wipe(&file);
    else
        cf_buf_release(&file);
    if (status != CF_EXIT_OK)
        return status;
    if (!value)
        return cf_cli_usage_error(cli, "--%s must be valid UTF-8 text", f->option);
    if (json_object_set_new(body, f->member, value) != 0 ||
        (f->sets_type &&
         json_object_set_new(body, "configurationType", json_string(f->sets_type)) != 0))
        return cf_cli_fail("out of memory");
    return CF_EXIT_OK;
}

/* attach (POST) and update (PATCH) of one auth method: every option given becomes its member of the
 * body; those not given are left out (update keeps them). */
static int method_set(int argc, char **argv, const struct method_command *m, const char *method)
{
    const char *values[METHOD_FIELDS_MAX] = {0};
    struct cf_opt opts[METHOD_FIELDS_MAX + 1];
    size_t nopts = 0;
    bool plain = false;
    struct cf_cli cli;
    struct cf_buf path;
    json_t *body = NULL;
    int status;

    for (size_t i = 0; i < m->nfields; i++)
        opts[nopts++] = (struct cf_opt){m->fields[i].option, CF_OPT_STRING, &values[i]};
    if (m->plain_field)
        opts[nopts++] = (struct cf_opt){"plain", CF_OPT_BOOL, &plain};
    const struct cf_cli_spec spec = {m->usage, 0, 1, 1, opts, nopts};
    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    body = json_object();
    if (!body) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    for (size_t i = 0; i < m->nfields; i++) {
        if (values[i] && (status = set_field(&cli, body, &m->fields[i], values[i])) != CF_EXIT_OK)
            goto out;
    }
    status = cf_cli_path(&path, m->prefix, cli.args[0], NULL, NULL, NULL);
    if (status == CF_EXIT_OK && plain)
        status = cf_cli_request_field(&cli, method, path.data, body, m->member, m->plain_field);
    else if (status == CF_EXIT_OK)
        status = cf_cli_request_member(&cli, method, path.data, body, m->member, m->print_table);
out:
    if (body) { /* it may hold a credential read from a file */
        json_t *secret = json_object_get(body, "tokenReviewerJwt");
        if (json_is_string(secret))
            sodium_memzero((char *)json_string_value(secret), json_string_length(secret));
    }
    json_decref(body);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

/* The token policy every method shares (as universal auth names its options). */
#define TOKEN_FIELDS                                                                               \
    {"access-token-ttl", F_DURATION, "accessTokenTTL", NULL},                                      \
        {"access-token-max-ttl", F_DURATION, "accessTokenMaxTTL", NULL},                           \
        {"num-uses", F_COUNT, "accessTokenNumUsesLimit", NULL},                                    \
    {                                                                                              \
        "trusted-ips", F_IPS, "accessTokenTrustedIps", NULL                                        \
    }

#define TOKEN_OPTIONS_HELP                                                                         \
    "  --access-token-ttl D      lifetime of an access token (default 30d)\n"                      \
    "  --access-token-max-ttl D  renewals never go past this age (default 30d)\n"                  \
    "  --num-uses N              requests an access token may make (0: unlimited)\n"               \
    "  --trusted-ips CIDR,...    addresses access tokens may be used from\n"                       \
    "                            (default 0.0.0.0/0,::/0)\n"

#define UA_OPTIONS_HELP                                                                            \
    TOKEN_OPTIONS_HELP                                                                             \
    "  --client-secret-trusted-ips CIDR,...\n"                                                     \
    "                            addresses that may log in (default any)\n"                        \
    "durations: 90 (seconds), 90s, 15m, 12h, 180d.\n"

static const struct method_field ua_fields[] = {
    TOKEN_FIELDS,
    {"client-secret-trusted-ips", F_IPS, "clientSecretTrustedIps", NULL},
};

static const char attach_usage[] =
    "usage: coffer identities universal-auth attach ID [--access-token-ttl D]\n"
    "           [--access-token-max-ttl D] [--num-uses N] [--trusted-ips CIDR,...]\n"
    "           [--client-secret-trusted-ips CIDR,...] [--plain] [options]\n"
    "\n"
    "Attaches universal auth (client id and client secrets) to an identity and prints\n"
    "its client id.\n"
    "\n"
    "options:\n" UA_OPTIONS_HELP
    "  --plain                   print only the client id, as in CLIENT_ID=$(coffer\n"
    "                            identities universal-auth attach ID --plain)\n"
    "" CF_CLI_COMMON_HELP EXIT_HELP;

static const char update_usage[] =
    "usage: coffer identities universal-auth update ID [--access-token-ttl D]\n"
    "           [--access-token-max-ttl D] [--num-uses N] [--trusted-ips CIDR,...]\n"
    "           [--client-secret-trusted-ips CIDR,...] [options]\n"
    "\n"
    "Changes an identity's universal-auth settings; those not given stay as they are.\n"
    "\n"
    "options:\n" UA_OPTIONS_HELP CF_CLI_COMMON_HELP EXIT_HELP;

static int ua_attach(int argc, char **argv)
{
    static const struct method_command m = {.usage = attach_usage,
                                            .prefix = UA_PATH,
                                            .member = "identityUniversalAuth",
                                            .print_table = print_ua,
                                            .fields = ua_fields,
                                            .nfields = CF_ARRAY_SIZE(ua_fields),
                                            .plain_field = "clientId"};
    return method_set(argc, argv, &m, "POST");
}

static int ua_update(int argc, char **argv)
{
    static const struct method_command m = {update_usage, UA_PATH,   "identityUniversalAuth",
                                            print_ua,     ua_fields, CF_ARRAY_SIZE(ua_fields)};
    return method_set(argc, argv, &m, "PATCH");
}

static const char ua_get_usage[] = "usage: coffer identities universal-auth get ID [options]\n"
                                   "\n"
                                   "Shows an identity's universal-auth settings and client id.\n"
                                   "\n"
                                   "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int ua_get(int argc, char **argv)
{
    static const struct plain_command c = {
        .usage = ua_get_usage,
        .nargs = 1,
        .method = "GET",
        .prefix = UA_PATH,
        .member = "identityUniversalAuth",
        .print_table = print_ua,
    };
    return run_plain(argc, argv, &c);
}

static const struct cf_cli_sub ua_subcommands[] = {
    {"attach", ua_attach, "attach universal auth to an identity"},
    {"get", ua_get, "show an identity's universal-auth settings and client id"},
    {"update", ua_update, "change an identity's universal-auth settings"},
};

static int cmd_universal_auth(int argc, char **argv)
{
    char name[] = "identities universal-auth"; /* for the overview's usage line */
    argv[0] = name;
    return cf_cli_dispatch(argc, argv, ua_subcommands, CF_ARRAY_SIZE(ua_subcommands), NULL);
}

/* ---- JWT auth -------------------------------------------------------------------------------- */

#define JWT_PATH "/v1/auth/jwt-auth/identities"

static const char *const jwt_headers[] = {
    "TYPE", "KEYS / JWKS URL", "BOUND ISSUER", "BOUND AUDIENCES", "BOUND SUBJECT", "TOKEN TTL"};
#define JWT_COLS (CF_ARRAY_SIZE(jwt_headers))

static enum cf_rc jwt_row(struct cf_table *table, json_t *jwt, void *ctx)
{
    char keys[24], ttl[24];
    (void)ctx;
    snprintf(keys, sizeof(keys), "%zu key(s)", json_array_size(json_object_get(jwt, "publicKeys")));
    bool jwks = strcmp(cf_cli_str(jwt, "configurationType"), "jwks") == 0;
    const char *row[JWT_COLS] = {
        cf_cli_str(jwt, "configurationType"),
        jwks ? cf_cli_str(jwt, "jwksUrl") : keys,
        cf_cli_str(jwt, "boundIssuer"),
        cf_cli_str(jwt, "boundAudiences"),
        cf_cli_str(jwt, "boundSubject"),
        cf_cli_int_str(jwt, "accessTokenTTL", ttl, sizeof(ttl)),
    };
    return cf_table_add(table, row);
}

static int print_jwt(json_t *list)
{
    return cf_cli_print_rows(list, JWT_COLS, jwt_headers, jwt_row, NULL);
}

static const struct method_field jwt_fields[] = {
    {"public-key-file", F_PEM_FILE, "publicKeys", "static"},
    {"jwks-url", F_TEXT, "jwksUrl", "jwks"},
    {"jwks-ca-file", F_FILE, "jwksCaCert", NULL},
    {"bound-issuer", F_TEXT, "boundIssuer", NULL},
    {"bound-audiences", F_TEXT, "boundAudiences", NULL},
    {"bound-subject", F_TEXT, "boundSubject", NULL},
    {"bound-claims", F_CLAIMS, "boundClaims", NULL},
    {"clock-skew-leeway", F_COUNT, "clockSkewLeeway", NULL},
    TOKEN_FIELDS,
};

#define JWT_OPTIONS_HELP                                                                           \
    "  --public-key-file FILE    PEM public key(s) (RSA >= 2048 bits, EC P-256/P-384, Ed25519):\n" \
    "                            a static configuration\n"                                         \
    "  --jwks-url URL            fetch the keys from a JWKS (https; http only to loopback):\n"     \
    "                            a jwks configuration\n"                                           \
    "  --jwks-ca-file FILE       PEM CA certificate(s) for the JWKS URL\n"                         \
    "  --bound-issuer ISS        required \"iss\" claim\n"                                         \
    "  --bound-audiences A,B     one of them must be in the \"aud\" claim\n"                       \
    "  --bound-subject SUB       required \"sub\" claim (glob)\n"                                  \
    "  --bound-claims 'c=v1,v2;d=v3'  required claims (each a list of allowed values,\n"           \
    "                            globs allowed), or a JSON object {\"c\": \"v1,v2\"}\n"            \
    "  --clock-skew-leeway S     seconds of clock skew allowed on exp, nbf, iat (default "         \
    "60)\n" TOKEN_OPTIONS_HELP "durations: 90 (seconds), 90s, 15m, 12h, 180d.\n"

static const char jwt_attach_usage[] =
    "usage: coffer identities jwt-auth attach ID (--public-key-file FILE | --jwks-url URL)\n"
    "           [--bound-issuer ISS] [--bound-audiences A,B] [--bound-subject SUB]\n"
    "           [--bound-claims C] [--access-token-ttl D] [options]\n"
    "\n"
    "Attaches JWT auth to an identity: it may then log in with `coffer login --method\n"
    "jwt-auth` and a JWT (e.g. the OIDC token of a CI run) signed by one of the keys.\n"
    "\n"
    "options:\n" JWT_OPTIONS_HELP CF_CLI_COMMON_HELP EXIT_HELP;

static const char jwt_update_usage[] =
    "usage: coffer identities jwt-auth update ID [options of attach]\n"
    "\n"
    "Changes an identity's JWT-auth settings; those not given stay as they are.\n"
    "\n"
    "options:\n" JWT_OPTIONS_HELP CF_CLI_COMMON_HELP EXIT_HELP;

static int jwt_attach(int argc, char **argv)
{
    static const struct method_command m = {jwt_attach_usage,  JWT_PATH,
                                            "identityJwtAuth", print_jwt,
                                            jwt_fields,        CF_ARRAY_SIZE(jwt_fields)};
    return method_set(argc, argv, &m, "POST");
}

static int jwt_update(int argc, char **argv)
{
    static const struct method_command m = {jwt_update_usage,  JWT_PATH,
                                            "identityJwtAuth", print_jwt,
                                            jwt_fields,        CF_ARRAY_SIZE(jwt_fields)};
    return method_set(argc, argv, &m, "PATCH");
}

static const char jwt_get_usage[] = "usage: coffer identities jwt-auth get ID [options]\n"
                                    "\n"
                                    "Shows an identity's JWT-auth settings.\n"
                                    "\n"
                                    "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int jwt_get(int argc, char **argv)
{
    static const struct plain_command c = {
        .usage = jwt_get_usage,
        .nargs = 1,
        .method = "GET",
        .prefix = JWT_PATH,
        .member = "identityJwtAuth",
        .print_table = print_jwt,
    };
    return run_plain(argc, argv, &c);
}

static const struct cf_cli_sub jwt_subcommands[] = {
    {"attach", jwt_attach, "attach JWT auth (static keys or a JWKS URL) to an identity"},
    {"get", jwt_get, "show an identity's JWT-auth settings"},
    {"update", jwt_update, "change an identity's JWT-auth settings"},
};

static int cmd_jwt_auth(int argc, char **argv)
{
    char name[] = "identities jwt-auth"; /* for the overview's usage line */
    argv[0] = name;
    return cf_cli_dispatch(argc, argv, jwt_subcommands, CF_ARRAY_SIZE(jwt_subcommands), NULL);
}

/* ---- Kubernetes auth ------------------------------------------------------------------------- */

#define K8S_PATH "/v1/auth/kubernetes-auth/identities"

static const char *const k8s_headers[] = {"KUBERNETES HOST", "NAMESPACES",   "SERVICE ACCOUNTS",
                                          "AUDIENCE",        "REVIEWER JWT", "TOKEN TTL"};
#define K8S_COLS (CF_ARRAY_SIZE(k8s_headers))

static enum cf_rc k8s_row(struct cf_table *table, json_t *k8s, void *ctx)
{
    char ttl[24];
    (void)ctx;
    const char *row[K8S_COLS] = {
        cf_cli_str(k8s, "kubernetesHost"),
        cf_cli_str(k8s, "allowedNamespaces"),
        cf_cli_str(k8s, "allowedNames"),
        cf_cli_str(k8s, "allowedAudience"),
        json_is_true(json_object_get(k8s, "hasTokenReviewerJwt")) ? "set" : "none (self-review)",
        cf_cli_int_str(k8s, "accessTokenTTL", ttl, sizeof(ttl)),
    };
    return cf_table_add(table, row);
}

static int print_k8s(json_t *list)
{
    return cf_cli_print_rows(list, K8S_COLS, k8s_headers, k8s_row, NULL);
}

static const struct method_field k8s_fields[] = {
    {"kubernetes-host", F_TEXT, "kubernetesHost", NULL},
    {"ca-cert-file", F_FILE, "caCert", NULL},
    {"token-reviewer-jwt-file", F_SECRET_FILE, "tokenReviewerJwt", NULL},
    {"allowed-namespaces", F_TEXT, "allowedNamespaces", NULL},
    {"allowed-names", F_TEXT, "allowedNames", NULL},
    {"allowed-audience", F_TEXT, "allowedAudience", NULL},
    TOKEN_FIELDS,
};

#define K8S_OPTIONS_HELP                                                                           \
    "  --kubernetes-host URL     the cluster's API server (https)\n"                               \
    "  --ca-cert-file FILE       PEM CA certificate of the API server\n"                           \
    "  --token-reviewer-jwt-file FILE  a service-account token allowed to create\n"                \
    "                            TokenReviews (- reads standard input). A file, never an\n"        \
    "                            argument: arguments are visible to every local user.\n"           \
    "                            Without one, each login token reviews itself.\n"                  \
    "  --allowed-namespaces A,B  namespaces that may log in (globs)\n"                             \
    "  --allowed-names A,B       service-account names that may log in (globs; default any)\n"     \
    "  --allowed-audience AUD    the audience the login token must carry\n" TOKEN_OPTIONS_HELP     \
    "durations: 90 (seconds), 90s, 15m, 12h, 180d.\n"

static const char k8s_attach_usage[] =
    "usage: coffer identities kubernetes-auth attach ID --kubernetes-host URL\n"
    "           --allowed-namespaces A,B [--allowed-names A,B] [--allowed-audience AUD]\n"
    "           [--ca-cert-file FILE] [--token-reviewer-jwt-file FILE] [options]\n"
    "\n"
    "Attaches Kubernetes auth to an identity: a pod whose service account is allowed\n"
    "logs in with `coffer login --method kubernetes`, its token checked by the\n"
    "cluster's TokenReview API.\n"
    "\n"
    "options:\n" K8S_OPTIONS_HELP CF_CLI_COMMON_HELP EXIT_HELP;

static const char k8s_update_usage[] =
    "usage: coffer identities kubernetes-auth update ID [options of attach]\n"
    "\n"
    "Changes an identity's Kubernetes-auth settings; those not given stay as they are.\n"
    "\n"
    "options:\n" K8S_OPTIONS_HELP CF_CLI_COMMON_HELP EXIT_HELP;

static int k8s_attach(int argc, char **argv)
{
    static const struct method_command m = {
        k8s_attach_usage, K8S_PATH,   "identityKubernetesAuth",
        print_k8s,        k8s_fields, CF_ARRAY_SIZE(k8s_fields)};
    return method_set(argc, argv, &m, "POST");
}

static int k8s_update(int argc, char **argv)
{
    static const struct method_command m = {
        k8s_update_usage, K8S_PATH,   "identityKubernetesAuth",
        print_k8s,        k8s_fields, CF_ARRAY_SIZE(k8s_fields)};
    return method_set(argc, argv, &m, "PATCH");
}

static const char k8s_get_usage[] = "usage: coffer identities kubernetes-auth get ID [options]\n"
                                    "\n"
                                    "Shows an identity's Kubernetes-auth settings (never the\n"
                                    "reviewer JWT: only whether one is set).\n"
                                    "\n"
                                    "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int k8s_get(int argc, char **argv)
{
    static const struct plain_command c = {
        .usage = k8s_get_usage,
        .nargs = 1,
        .method = "GET",
        .prefix = K8S_PATH,
        .member = "identityKubernetesAuth",
        .print_table = print_k8s,
    };
    return run_plain(argc, argv, &c);
}

static const struct cf_cli_sub k8s_subcommands[] = {
    {"attach", k8s_attach, "attach Kubernetes auth to an identity"},
    {"get", k8s_get, "show an identity's Kubernetes-auth settings"},
    {"update", k8s_update, "change an identity's Kubernetes-auth settings"},
};

static int cmd_kubernetes_auth(int argc, char **argv)
{
    char name[] = "identities kubernetes-auth"; /* for the overview's usage line */
    argv[0] = name;
    return cf_cli_dispatch(argc, argv, k8s_subcommands, CF_ARRAY_SIZE(k8s_subcommands), NULL);
}

/* ---- client secrets -------------------------------------------------------------------------- */

static const char *const cs_headers[] = {"ID",         "PREFIX", "DESCRIPTION", "CREATED AT",
                                         "EXPIRES AT", "USES",   "REVOKED"};
#define CS_COLS (CF_ARRAY_SIZE(cs_headers))

static enum cf_rc cs_row(struct cf_table *table, json_t *cs, void *ctx)
{
    char uses[24], limit[24], shown[56];
    (void)ctx;
    cf_cli_int_str(cs, "clientSecretNumUses", uses, sizeof(uses));
    cf_cli_int_str(cs, "clientSecretNumUsesLimit", limit, sizeof(limit));
    if (strcmp(limit, "0") == 0 || !limit[0])
        snprintf(shown, sizeof(shown), "%s", uses);
    else
        snprintf(shown, sizeof(shown), "%s/%s", uses, limit);
    const char *row[CS_COLS] = {
        cf_cli_str(cs, "id"),
        cf_cli_str(cs, "clientSecretPrefix"),
        cf_cli_str(cs, "description"),
        cf_cli_str(cs, "createdAt"),
        json_is_string(json_object_get(cs, "expiresAt")) ? cf_cli_str(cs, "expiresAt") : "never",
        shown,
        json_is_true(json_object_get(cs, "isClientSecretRevoked")) ? "yes" : "no",
    };
    return cf_table_add(table, row);
}

static int print_client_secrets(json_t *list)
{
    return cf_cli_print_rows(list, CS_COLS, cs_headers, cs_row, NULL);
}

static const char cs_create_usage[] =
    "usage: coffer identities client-secrets create ID [--description TEXT]\n"
    "           [--ttl D | --expires-at TIME] [--num-uses N] [--plain] [options]\n"
    "\n"
    "Creates a client secret for an identity with universal auth and prints it on\n"
    "standard output (details on standard error), as in\n"
    "CLIENT_SECRET=$(coffer identities client-secrets create ID). The secret is shown\n"
    "only this once: the server keeps only a hash of it.\n"
    "\n"
    "options:\n"
    "  --description TEXT  what the secret is for (named in login errors)\n"
    "  --ttl D             expires D after now (90, 90s, 15m, 12h, 180d; default never)\n"
    "  --expires-at TIME   expires at an RFC 3339 time, e.g. 2027-01-01T00:00:00Z\n"
    "  --num-uses N        logins it allows (default 0: unlimited)\n"
    "  --plain             the secret alone: no details on standard error\n"
    "" CF_CLI_COMMON_HELP
    "  (with --output json the server's answer, secret included, is printed)\n" EXIT_HELP;

static int cs_create(int argc, char **argv)
{
    const char *description = NULL, *ttl = NULL, *expires_at = NULL;
    struct cf_opt_int num_uses = {0};
    bool plain = false;
    const struct cf_opt opts[] = {
        {"description", CF_OPT_STRING, &description},
        {"ttl", CF_OPT_STRING, &ttl},
        {"expires-at", CF_OPT_STRING, &expires_at},
        {"num-uses", CF_OPT_INT, &num_uses},
        {"plain", CF_OPT_BOOL, &plain},
    };
    const struct cf_cli_spec spec = {cs_create_usage, 0, 1, 1, opts, CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    struct cf_buf path, text;
    json_t *body = NULL, *answer = NULL;
    long long seconds = 0;
    int status;

    cf_buf_init(&path, 0);
    cf_buf_init(&text, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (ttl && expires_at) {
        status = cf_cli_usage_error(&cli, "--ttl and --expires-at do not go together");
        goto out;
    }
    body = json_pack("{s:s}", "description", description ? description : "");
    if (!body) {
        status = cf_cli_usage_error(&cli, "the description must be valid UTF-8");
        goto out;
    }
    if (ttl) {
        status = parse_duration(&cli, "ttl", ttl, &seconds);
        if (status != CF_EXIT_OK)
            goto out;
        if (json_object_set_new(body, "ttl", json_integer(seconds)) != 0) {
            status = cf_cli_fail("out of memory");
            goto out;
        }
    }
    if (expires_at) {
        status = cf_cli_set_time(&cli, body, "expires-at", "expiresAt", expires_at);
        if (status != CF_EXIT_OK)
            goto out;
    }
    if (num_uses.set &&
        json_object_set_new(body, "numUsesLimit", json_integer(num_uses.value)) != 0) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    status = cf_cli_path(&path, UA_PATH, cli.args[0], "/client-secrets", NULL, NULL);
    if (status == CF_EXIT_OK)
        status = cf_cli_request(&cli, "POST", path.data, NULL, body, &answer);
    if (status != CF_EXIT_OK)
        goto out;
    if (cli.json) {
        status = cf_cli_print_json(answer);
        goto out;
    }
    const char *secret = json_string_value(json_object_get(answer, "clientSecret"));
    json_t *data = json_object_get(answer, "clientSecretData");
    if (!secret) {
        status = cf_cli_fail("the server's answer holds no client secret");
        goto out;
    }
    if (cf_buf_printf(&text, "%s\n", secret) != CF_OK) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    status = cf_cli_write_secret(text.data, text.len);
    if (status != CF_EXIT_OK)
        goto out;
    if (!plain)
        fprintf(stderr,
                "coffer: client secret %s (prefix %s) created for identity %s; expires %s; it is "
                "shown only this once\n",
                cf_cli_str(data, "id"), cf_cli_str(data, "clientSecretPrefix"), cli.args[0],
                json_is_string(json_object_get(data, "expiresAt")) ? cf_cli_str(data, "expiresAt")
                                                                   : "never");
out:
    json_decref(answer);
    json_decref(body);
    cf_buf_release_wipe(&text);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const char cs_list_usage[] =
    "usage: coffer identities client-secrets list ID [options]\n"
    "\n"
    "Lists an identity's client secrets (never the secrets themselves): prefix,\n"
    "description, creation, expiry, uses (of the limit) and whether revoked.\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cs_list(int argc, char **argv)
{
    static const struct plain_command c = {
        .usage = cs_list_usage,
        .nargs = 1,
        .method = "GET",
        .prefix = UA_PATH,
        .suffix = "/client-secrets",
        .member = "clientSecretData",
        .print_table = print_client_secrets,
        .list = true,
    };
    return run_plain(argc, argv, &c);
}

static const char cs_revoke_usage[] =
    "usage: coffer identities client-secrets revoke ID SECRET_ID [options]\n"
    "\n"
    "Revokes a client secret: logins with it fail from now on (access tokens it\n"
    "already produced stay valid until they expire).\n"
    "\n"
    "options:\n" CF_CLI_COMMON_HELP EXIT_HELP;

static int cs_revoke(int argc, char **argv)
{
    static const struct plain_command c = {
        .usage = cs_revoke_usage,
        .nargs = 2,
        .method = "POST",
        .prefix = UA_PATH,
        .suffix = "/client-secrets",
        .suffix2 = "/revoke",
        .member = "clientSecretData",
        .print_table = print_client_secrets,
    };
    return run_plain(argc, argv, &c);
}

static const struct cf_cli_sub cs_subcommands[] = {
    {"create", cs_create, "create a client secret (printed once)"},
    {"list", cs_list, "list an identity's client secrets"},
    {"revoke", cs_revoke, "revoke a client secret"},
};

static int cmd_client_secrets(int argc, char **argv)
{
    char name[] = "identities client-secrets";
    argv[0] = name;
    return cf_cli_dispatch(argc, argv, cs_subcommands, CF_ARRAY_SIZE(cs_subcommands), NULL);
}

/* ---- memberships ----------------------------------------------------------------------------- */

static const char *const membership_headers[] = {"MEMBER", "ROLE", "RULES", "CREATED AT"};
#define MEMBERSHIP_COLS (CF_ARRAY_SIZE(membership_headers))

/* Whose memberships a command manages: machine identities', users' or groups' (commands.h). */
struct member_kind {
    const char *noun;   /* "identity", "user" */
    const char *suffix; /* "/identity-memberships" */
    const char *one;    /* the answer's member holding one membership */
    const char *many;   /* ... and the list */
    const char *add_usage, *remove_usage, *list_usage;
};

/* "read,create env=prod path=/backend/(glob); ..." for a table cell. */
static enum cf_rc format_rules(json_t *rules, struct cf_buf *out)
{
    size_t i, k;
    json_t *rule, *action;
    enum cf_rc rc = CF_OK;
    json_array_foreach(rules, i, rule)
    {
        if (i && rc == CF_OK)
            rc = cf_buf_puts(out, "; ");
        json_array_foreach(json_object_get(rule, "actions"), k, action)
        {
            if (k && rc == CF_OK)
                rc = cf_buf_append(out, ",", 1);
            if (rc == CF_OK && json_is_string(action))
                rc = cf_buf_puts(out, json_string_value(action));
        }
        const char *env = json_string_value(json_object_get(rule, "environment"));
        const char *path = json_string_value(json_object_get(rule, "secretPath"));
        if (rc == CF_OK && env)
            rc = cf_buf_printf(out, " env=%s", env);
        if (rc == CF_OK && path)
            rc = cf_buf_printf(out, " path=%s", path);
    }
    return rc;
}

static enum cf_rc membership_row(struct cf_table *table, json_t *m, void *ctx)
{
    struct cf_buf rules;
    enum cf_rc rc;
    (void)ctx;
    cf_buf_init(&rules, 0);
    rc = format_rules(json_object_get(m, "rules"), &rules);
    if (rc == CF_OK) {
        json_t *user = json_object_get(m, "user");
        json_t *group = json_object_get(m, "group");
        const char *member = user    ? cf_cli_str(user, "email")
                             : group ? cf_cli_str(group, "name")
                                     : cf_cli_str(m, "identityId");
        const char *row[MEMBERSHIP_COLS] = {member, cf_cli_str(m, "role"), rules.data,
                                            cf_cli_str(m, "createdAt")};
        rc = cf_table_add(table, row);
    }
    cf_buf_release(&rules);
    return rc;
}

static int print_memberships(json_t *list)
{
    return cf_cli_print_rows(list, MEMBERSHIP_COLS, membership_headers, membership_row, NULL);
}

static const char add_usage[] =
    "usage: coffer identities add-to-project ID --projectId P\n"
    "           --role admin|member|viewer|no-access [--env SLUG] [--path GLOB]\n"
    "           [--actions read,create,edit,delete] [options]\n"
    "\n"
    "Gives an identity a role in a project (replacing any earlier membership there).\n"
    "--env, --path and --actions narrow the role to one rule: the listed actions\n"
    "(default all the role allows), in that environment (default any), on secret\n"
    "paths matching the glob (default any; '*' matches within a folder name, '**'\n"
    "any number of folders: /backend/** is /backend and everything below).\n"
    "\n"
    "options:\n"
    "  --role ROLE        admin, member (read and write secrets), viewer (read\n"
    "                     secrets) or no-access\n"
    "  --env SLUG         the rule's environment\n"
    "  --path GLOB        the rule's secret path glob\n"
    "  --actions LIST     the rule's actions: read, create, edit, delete, "
    "lease\n" CF_CLI_PROJECT_HELP CF_CLI_COMMON_HELP EXIT_HELP;

static int add_member(int argc, char **argv, const struct member_kind *kind)
{
    const char *role = NULL, *env = NULL, *path_glob = NULL, *actions = NULL;
    const struct cf_opt opts[] = {
        {"role", CF_OPT_STRING, &role},
        {"env", CF_OPT_STRING, &env},
        {"path", CF_OPT_STRING, &path_glob},
        {"actions", CF_OPT_STRING, &actions},
    };
    const struct cf_cli_spec spec = {kind->add_usage,    CF_CLI_PROJECT, 1, 1, opts,
                                     CF_ARRAY_SIZE(opts)};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *body = NULL, *rule = NULL, *list = NULL;
    int status;

    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (!role || !*role) {
        status = cf_cli_usage_error(&cli, "--role is required (admin, member, viewer or "
                                          "no-access)");
        goto out;
    }
    body = json_pack("{s:s}", "role", role);
    if (!body) {
        status = cf_cli_usage_error(&cli, "--role must be valid UTF-8");
        goto out;
    }
    if (env || path_glob || actions) {
        list = json_array();
        rule = json_object();
        if (!list || !rule) {
            status = cf_cli_fail("out of memory");
            goto out;
        }
        json_t *names = json_array();
        struct cf_list_iter it;
        struct cf_str name;
        cf_list_init(&it, actions ? actions : "read,create,edit,delete");
        while (names && cf_list_next_raw(&it, &name))
            if (name.n == 0 || json_array_append_new(names, json_stringn(name.p, name.n)) != 0) {
                json_decref(names);
                names = NULL;
            }
        if (!names || json_array_size(names) == 0 ||
            json_object_set_new(rule, "actions", names) != 0) {
            status = cf_cli_usage_error(&cli, "--actions takes a comma-separated list of read, "
                                              "create, edit and delete");
            goto out;
        }
        if ((env && json_object_set_new(rule, "environment", json_string(env)) != 0) ||
            (path_glob && json_object_set_new(rule, "secretPath", json_string(path_glob)) != 0) ||
            json_array_append(list, rule) != 0 || json_object_set(body, "rules", list) != 0) {
            status = cf_cli_usage_error(&cli, "--env and --path must be valid UTF-8");
            goto out;
        }
    }
    status = cf_cli_path(&path, "/v2/workspace", cli.project_id, kind->suffix, cli.args[0], NULL);
    if (status == CF_EXIT_OK)
        status = cf_cli_request_member(&cli, "POST", path.data, body, kind->one, print_memberships);
out:
    json_decref(list);
    json_decref(rule);
    json_decref(body);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const char remove_usage[] =
    "usage: coffer identities remove-from-project ID --projectId P [options]\n"
    "\n"
    "Removes an identity's membership of a project: its tokens can no longer reach\n"
    "anything there.\n"
    "\n"
    "options:\n" CF_CLI_PROJECT_HELP CF_CLI_COMMON_HELP EXIT_HELP;

static int remove_member(int argc, char **argv, const struct member_kind *kind)
{
    const struct cf_cli_spec spec = {kind->remove_usage, CF_CLI_PROJECT, 1, 1, NULL, 0};
    struct cf_cli cli;
    struct cf_buf path;
    json_t *answer = NULL;
    int status;

    cf_buf_init(&path, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    status = cf_cli_path(&path, "/v2/workspace", cli.project_id, kind->suffix, cli.args[0], NULL);
    if (status == CF_EXIT_OK)
        status = cf_cli_request(&cli, "DELETE", path.data, NULL, NULL, &answer);
    if (status != CF_EXIT_OK)
        goto out;
    if (cli.json)
        status = cf_cli_print_json(answer);
    else
        printf("removed %s %s from project %s\n", kind->noun, cli.args[0], cli.project_id);
out:
    json_decref(answer);
    cf_buf_release(&path);
    cf_cli_end(&cli);
    return status;
}

static const char memberships_usage[] =
    "usage: coffer identities memberships --projectId P [options]\n"
    "\n"
    "Lists the identities that are members of a project, with their roles and rules.\n"
    "\n"
    "options:\n" CF_CLI_PROJECT_HELP CF_CLI_COMMON_HELP EXIT_HELP;

static int list_members(int argc, char **argv, const struct member_kind *kind)
{
    const struct plain_command c = {
        .usage = kind->list_usage,
        .flags = CF_CLI_PROJECT,
        .method = "GET",
        .prefix = "/v2/workspace",
        .suffix = kind->suffix,
        .member = kind->many,
        .print_table = print_memberships,
        .list = true,
    };
    return run_plain(argc, argv, &c);
}

static const struct member_kind identity_kind = {
    "identity",   "/identity-memberships", "identityMembership", "identityMemberships", add_usage,
    remove_usage, memberships_usage};

static int cmd_add_to_project(int argc, char **argv)
{
    return add_member(argc, argv, &identity_kind);
}

static int cmd_remove_from_project(int argc, char **argv)
{
    return remove_member(argc, argv, &identity_kind);
}

static int cmd_memberships(int argc, char **argv)
{
    return list_members(argc, argv, &identity_kind);
}

static const char user_add_usage[] =
    "usage: coffer users add-to-project EMAIL|ID --projectId P\n"
    "           --role admin|member|viewer|no-access [--env SLUG] [--path GLOB]\n"
    "           [--actions read,create,edit,delete] [options]\n"
    "\n"
    "Gives a user a role in a project (replacing any earlier membership there), with\n"
    "the same roles and rules as identities (coffer help identities add-to-project).\n"
    "Org owners and admins need none: they administer every project.\n"
    "\n"
    "options:\n"
    "  --role ROLE        admin, member, viewer or no-access\n"
    "  --env SLUG         the rule's environment\n"
    "  --path GLOB        the rule's secret path glob\n"
    "  --actions LIST     the rule's actions: read, create, edit, delete, "
    "lease\n" CF_CLI_PROJECT_HELP CF_CLI_COMMON_HELP EXIT_HELP;

static const char user_remove_usage[] =
    "usage: coffer users remove-from-project EMAIL|ID --projectId P [options]\n"
    "\n"
    "Removes a user's membership of a project.\n"
    "\n"
    "options:\n" CF_CLI_PROJECT_HELP CF_CLI_COMMON_HELP EXIT_HELP;

static const char user_memberships_usage[] =
    "usage: coffer users memberships --projectId P [options]\n"
    "\n"
    "Lists the users that are members of a project, with their roles and rules.\n"
    "\n"
    "options:\n" CF_CLI_PROJECT_HELP CF_CLI_COMMON_HELP EXIT_HELP;

static const struct member_kind user_kind = {
    "user",         "/user-memberships", "userMembership",      "userMemberships",
    user_add_usage, user_remove_usage,   user_memberships_usage};

int cf_cmd_users_add_to_project(int argc, char **argv)
{
    return add_member(argc, argv, &user_kind);
}

int cf_cmd_users_remove_from_project(int argc, char **argv)
{
    return remove_member(argc, argv, &user_kind);
}

int cf_cmd_users_memberships(int argc, char **argv)
{
    return list_members(argc, argv, &user_kind);
}

static const char group_add_usage[] =
    "usage: coffer groups add-to-project NAME|ID --projectId P\n"
    "           --role admin|member|viewer|no-access [--env SLUG] [--path GLOB]\n"
    "           [--actions read,create,edit,delete] [options]\n"
    "\n"
    "Gives a group a role in a project (replacing any earlier membership there), with\n"
    "the same roles and rules as users (coffer help identities add-to-project). Every\n"
    "member of the group holds it besides its own: a user may do what any of its\n"
    "memberships allows.\n"
    "\n"
    "options:\n"
    "  --role ROLE        admin, member, viewer or no-access\n"
    "  --env SLUG         the rule's environment\n"
    "  --path GLOB        the rule's secret path glob\n"
    "  --actions LIST     the rule's actions: read, create, edit, delete, "
    "lease\n" CF_CLI_PROJECT_HELP CF_CLI_COMMON_HELP EXIT_HELP;

static const char group_remove_usage[] =
    "usage: coffer groups remove-from-project NAME|ID --projectId P [options]\n"
    "\n"
    "Removes a group's membership of a project: its members lose what it gave them at\n"
    "once.\n"
    "\n"
    "options:\n" CF_CLI_PROJECT_HELP CF_CLI_COMMON_HELP EXIT_HELP;

static const char group_memberships_usage[] =
    "usage: coffer groups memberships --projectId P [options]\n"
    "\n"
    "Lists the groups that are members of a project, with their roles and rules.\n"
    "\n"
    "options:\n" CF_CLI_PROJECT_HELP CF_CLI_COMMON_HELP EXIT_HELP;

static const struct member_kind group_kind = {
    "group",         "/group-memberships", "groupMembership",      "groupMemberships",
    group_add_usage, group_remove_usage,   group_memberships_usage};

int cf_cmd_groups_add_to_project(int argc, char **argv)
{
    return add_member(argc, argv, &group_kind);
}

int cf_cmd_groups_remove_from_project(int argc, char **argv)
{
    return remove_member(argc, argv, &group_kind);
}

int cf_cmd_groups_memberships(int argc, char **argv)
{
    return list_members(argc, argv, &group_kind);
}

static const struct cf_cli_sub subcommands[] = {
    {"create", cmd_create, "create a machine identity"},
    {"list", cmd_list, "list machine identities"},
    {"get", cmd_get, "show a machine identity"},
    {"rename", cmd_rename, "rename a machine identity"},
    {"delete", cmd_delete, "delete a machine identity (its tokens stop working)"},
    {"universal-auth", cmd_universal_auth,
     "attach, show or change universal auth (attach|get|update)"},
    {"jwt-auth", cmd_jwt_auth, "attach, change or show JWT auth (attach|update|get)"},
    {"kubernetes-auth", cmd_kubernetes_auth,
     "attach, change or show Kubernetes auth (attach|update|get)"},
    {"client-secrets", cmd_client_secrets, "create, list or revoke client secrets"},
    {"add-to-project", cmd_add_to_project, "give an identity a role in a project"},
    {"remove-from-project", cmd_remove_from_project, "remove an identity from a project"},
    {"memberships", cmd_memberships, "list a project's identity memberships"},
};

int cf_cmd_identities(int argc, char **argv)
{
    return cf_cli_dispatch(argc, argv, subcommands, CF_ARRAY_SIZE(subcommands), NULL);
}
