/* `coffer server`: opens the data directory, bootstraps the admin token on first start, serves the
 * API until SIGTERM or SIGINT (SIGHUP reopens the log file), then drains in-flight requests and
 * closes the store cleanly. */
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "api/server.h"
#include "auth/admin.h"
#include "auth/jwks.h"
#include "auth/oidc.h"
#include "auth/throttle.h"
#include "core/auditarchive.h"
#include "core/auditlog.h"
#include "core/seal.h"
#include "core/syncs.h"
#include "provider/entra.h"
#include "provider/filedest.h"
#include "provider/github.h"
#include "net/http.h"
#include "notify/notify.h"
#include "stream/audit_stream.h"
#include "sync/worker.h"
#include "server/autounseal.h"
#include "server/pkcs11seal.h"
#include "server/boot.h"
#include "server/commands.h"
#include "auth/token.h"
#include "cli/common.h"
#include "crypto/token.h"
#include "util/wipemem.h"
#include "util/cache.h"
#include "util/file.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/sdnotify.h"
#include "util/banned.h"

#define BOOTSTRAP_MIN 16
#define DRAIN_MS 10000
/* Seconds between tries of an auto-unseal that failed (the vault refused or was unreachable). */
#define AUTO_UNSEAL_RETRY_S 2
/* Folder-list bodies kept at most (--cache-size bounds their bytes). */
#define LIST_CACHE_ENTRIES 4096
/* Access tokens whose signature is remembered as verified (auth/token.h): about 100 bytes each. */
#define VERIFIED_TOKEN_ENTRIES 8192

/* ---- options ----------------------------------------------------------------------------------
 */

/* How a flag's value is checked. */
enum flag_kind {
    FLAG_TEXT,     /* any text, or what the flag's check accepts */
    FLAG_SWITCH,   /* no value: given, it is on */
    FLAG_NUMBER,   /* a whole number within min..max */
    FLAG_DURATION, /* 0 or a duration such as 60s or 5m (cf_duration_parse), min seconds at least */
    FLAG_CHOICE,   /* one of the comma-separated words of choices */
};

/* One option of `coffer server`. The parser, the checks, the help (and so completion and the man
 * page) all read this one entry. */
struct server_flag {
    const char *name;          /* without the dashes */
    const char *metavar;       /* the value as the help names it; NULL for a FLAG_SWITCH */
    const char *env;           /* read when the flag is not given; NULL when there is none */
    const char *fallback;      /* used when neither is given; NULL when there is none */
    const char *shown_default; /* the help's words for a default the server works out, or NULL */
    enum flag_kind kind;
    long long min, max;    /* FLAG_NUMBER: the range; FLAG_DURATION: min, in seconds */
    const char *unit;      /* FLAG_NUMBER: said after the range when refused (" bytes"), or NULL */
    const char *too_small; /* FLAG_DURATION with min: the message when below it */
    const char *choices;   /* FLAG_CHOICE */
    /* FLAG_TEXT: NULL, or a check of the value that also puts it into effect */
    enum cf_rc (*check)(const char *value, struct cf_err *err);
    const char *help; /* what it does, without its environment variable and default */
};

/* The flags, by their place in server_flags. */
enum {
    F_ADDR,
    F_DATA_DIR,
    F_DB,
    F_TLS_CERT,
    F_TLS_KEY,
    F_METRICS_TOKEN_FILE,
    F_LOG_FORMAT,
    F_PLAIN_HTTP,
    F_MAX_BODY,
    F_THREADS,
    F_WRITE_THREADS,
    F_MAX_CONNECTIONS,
    F_MAX_CONNECTIONS_PER_IP,
    F_IDLE_TIMEOUT,
    F_DB_POOL_SIZE,
    F_DB_TIMEOUT,
    F_LOG_LEVEL,
    F_LOG_FILE,
    F_AUDIT,
    F_AUDIT_FILE,
    F_AUDIT_SYSLOG,
    F_AUDIT_HTTP,
    F_AUDIT_HTTP_CA_FILE,
    F_AUDIT_CHECKPOINT_INTERVAL,
    F_AUDIT_RETENTION,
    F_AUDIT_ARCHIVE,
    F_NOTIFY_INTERVAL,
    F_NOTIFY_RETRY_BASE,
    F_SMTP_URL,
    F_SMTP_FROM,
    F_SMTP_USERNAME,
    F_SMTP_CA_FILE,
    F_SMTP_STARTTLS,
    F_MAX_TOKEN_TTL,
    F_OUTBOUND_ALLOW,
    F_SYNC_FILE_DIR,
    F_CACHE_SIZE,
    F_OIDC_ISSUER,
    F_OIDC_ENTRA_TENANT,
    F_OIDC_ENTRA_AUTHORITY,
    F_OIDC_CLIENT_ID,
    F_OIDC_CLIENT_SECRET_FILE,
    F_OIDC_REDIRECT_URL,
    F_OIDC_SCOPES,
    F_OIDC_ALLOWED_DOMAINS,
    F_OIDC_CA_FILE,
    F_OIDC_CLIENT_CERTIFICATE,
    F_OIDC_GROUPS_CLAIM,
    F_OIDC_GROUP_ROLE,
    F_OIDC_REQUIRE_GROUP,
    F_OIDC_GRAPH_URL,
    F_SESSION_IDLE,
    F_SESSION_MAX_AGE,
    F_ACCESS_MAX_DURATION,
    F_COUNT
};

static const struct server_flag server_flags[F_COUNT] = {
    [F_ADDR] = {"addr", "HOST:PORT", "COFFER_ADDR", "127.0.0.1:8080",
                .help = "listen address; port 0 picks one"},
    [F_DATA_DIR] = {"data-dir", "DIR", "COFFER_DATA_DIR", "./coffer-data",
                    .help = "data directory"},
    [F_DB] = {"db", "PATH|URI", "COFFER_DB", .shown_default = "DIR/coffer.db",
              .help = "SQLite database file, or postgres://user@host/db for PostgreSQL"},
    [F_TLS_CERT] = {"tls-cert", "FILE", "COFFER_TLS_CERT", .help = "PEM certificate chain"},
    [F_TLS_KEY] = {"tls-key", "FILE", "COFFER_TLS_KEY", .help = "PEM private key"},
    [F_LOG_FORMAT] = {"log-format", "FORMAT", "COFFER_LOG_FORMAT", "text", .kind = FLAG_CHOICE,
                      .choices = "text,json",
                      .help = "text (logfmt) or json (one object per line)"},
    [F_METRICS_TOKEN_FILE] = {"metrics-token-file", "FILE", "COFFER_METRICS_TOKEN_FILE",
                              .help = "serve Prometheus metrics at GET /metrics to scrapes bearing "
                                      "the token in FILE (off without it)"},
    [F_PLAIN_HTTP] = {"allow-plain-http", .kind = FLAG_SWITCH,
                      .help = "serve plain HTTP on a non-loopback address (behind a TLS proxy)"},
    [F_MAX_BODY] = {"max-body", "BYTES", "COFFER_MAX_BODY", .shown_default = "1048576",
                    .kind = FLAG_NUMBER, .min = 1024, .max = 64LL * 1024 * 1024, .unit = " bytes",
                    .help = "request body limit"},
    [F_THREADS] = {"threads", "N", "COFFER_THREADS", .shown_default = "the number of cores",
                   .kind = FLAG_NUMBER, .min = 1, .max = 256, .help = "worker threads"},
    [F_WRITE_THREADS] = {"write-threads", "N", "COFFER_WRITE_THREADS", "4", .kind = FLAG_NUMBER,
                         .min = 0, .max = CF_SERVER_WRITE_THREADS_MAX,
                         .help = "threads that run requests which may write, so that their "
                                 "writes share commits (0: the worker threads run them)"},
    [F_MAX_CONNECTIONS] = {"max-connections", "N", "COFFER_MAX_CONNECTIONS",
                           .shown_default = "4096", .kind = FLAG_NUMBER, .min = 16, .max = 1000000,
                           .help = "open connections at most"},
    [F_MAX_CONNECTIONS_PER_IP] = {"max-connections-per-ip", "N", "COFFER_MAX_CONNECTIONS_PER_IP",
                                  .shown_default = "256", .kind = FLAG_NUMBER, .min = 1,
                                  .max = 1000000,
                                  .help = "open connections from one address at most"},
    [F_IDLE_TIMEOUT] = {"idle-timeout", "S", "COFFER_IDLE_TIMEOUT", .shown_default = "30",
                        .kind = FLAG_NUMBER, .min = 1, .max = 3600,
                        .help = "close a connection idle this many seconds"},
    [F_DB_POOL_SIZE] = {"db-pool-size", "N", "COFFER_DB_POOL_SIZE",
                        .shown_default = "threads + write threads + 8", .kind = FLAG_NUMBER,
                        .min = 2, .max = 1000, .help = "PostgreSQL: connections at most"},
    [F_DB_TIMEOUT] = {"db-timeout", "SECONDS", "COFFER_DB_TIMEOUT", .shown_default = "5",
                      .kind = FLAG_NUMBER, .min = 1, .max = 300,
                      .help = "the longest a database call may wait"},
    [F_LOG_LEVEL] = {"log-level", "LEVEL", "COFFER_LOG_LEVEL", "info", .kind = FLAG_CHOICE,
                     .choices = "debug,info,warn,error", .help = "debug, info, warn, error"},
    [F_LOG_FILE] = {"log-file", "PATH", "COFFER_LOG_FILE",
                    .help = "append the log to PATH instead of stderr (under systemd, stderr "
                            "goes to the journal); reopened on SIGHUP, as logrotate's postrotate "
                            "expects"},
    [F_AUDIT] = {"audit", "MODE", "COFFER_AUDIT", "on", .kind = FLAG_CHOICE,
                 .choices = "on,fail-closed,off",
                 .help = "on, fail-closed (a request whose audit record cannot be stored fails "
                         "with 503), or off"},
    [F_AUDIT_FILE] = {"audit-file", "PATH", "COFFER_AUDIT_FILE",
                      .help = "also append every audit event to PATH as JSON lines"},
    [F_AUDIT_SYSLOG] = {"audit-syslog", "ADDR", "COFFER_AUDIT_SYSLOG",
                        .help = "also send every event to syslog: unix:/dev/log, unix:PATH or "
                                "udp:HOST:PORT"},
    [F_AUDIT_HTTP] = {"audit-http", "URL", "COFFER_AUDIT_HTTP",
                      .help = "also POST events in batches to URL, https except on loopback; the "
                              "bearer token comes from COFFER_AUDIT_HTTP_TOKEN"},
    [F_AUDIT_HTTP_CA_FILE] = {"audit-http-ca-file", "FILE", "COFFER_AUDIT_HTTP_CA_FILE",
                              .help = "CA bundle for --audit-http"},
    [F_AUDIT_CHECKPOINT_INTERVAL] = {"audit-checkpoint-interval", "D",
                                     "COFFER_AUDIT_CHECKPOINT_INTERVAL", "10s",
                                     .kind = FLAG_DURATION, .min = 1,
                                     .too_small = "--audit-checkpoint-interval must be at least 1s",
                                     .help = "sign a checkpoint (and the head) at least this often "
                                             "while events come, also after the last one"},
    [F_AUDIT_RETENTION] = {"audit-retention", "D", "COFFER_AUDIT_RETENTION", "0",
                           .kind = FLAG_DURATION,
                           .help = "archive audit events older than this (e.g. 90d) to signed, "
                                   "compressed files in --audit-archive and remove them from the "
                                   "store; 0 keeps every event in the store"},
    [F_AUDIT_ARCHIVE] = {"audit-archive", "DIR", "COFFER_AUDIT_ARCHIVE",
                         .shown_default = "DIR/audit-archive",
                         .help = "where --audit-retention writes the archive files"},
    [F_NOTIFY_INTERVAL] = {"notify-interval", "D", "COFFER_NOTIFY_INTERVAL", "60s",
                           .kind = FLAG_DURATION,
                           .help = "how often expiry notices are sent; 0 turns the background "
                                   "pass off"},
    [F_NOTIFY_RETRY_BASE] = {"notify-retry-base", "D", "COFFER_NOTIFY_RETRY_BASE", "30s",
                             .kind = FLAG_DURATION,
                             .help = "first retry delay of a failed delivery, doubled each time"},
    [F_SMTP_URL] = {"smtp-url", "URL", "COFFER_SMTP_URL",
                    .help = "smtp://HOST:PORT for e-mail notices; the password comes from "
                            "COFFER_SMTP_PASSWORD"},
    [F_SMTP_FROM] = {"smtp-from", "ADDR", "COFFER_SMTP_FROM", .help = "sender address"},
    [F_SMTP_USERNAME] = {"smtp-username", "U", "COFFER_SMTP_USERNAME", .help = "SMTP user name"},
    [F_SMTP_CA_FILE] = {"smtp-ca-file", "FILE", "COFFER_SMTP_CA_FILE",
                        .help = "CA bundle for STARTTLS"},
    [F_SMTP_STARTTLS] = {"smtp-starttls", "on|off", "COFFER_SMTP_STARTTLS", "on",
                         .kind = FLAG_CHOICE, .choices = "on,off",
                         .help = "STARTTLS required (off only for loopback)"},
    [F_MAX_TOKEN_TTL] = {"max-token-ttl", "D", "COFFER_MAX_TOKEN_TTL", "30d", .kind = FLAG_DURATION,
                         .min = 1,
                         .too_small = "--max-token-ttl takes a duration such as 12h or 30d (not 0)",
                         .help = "the longest an access token lives, renewals included: caps "
                                 "every TTL and max TTL, 0 (\"none\") too"},
    [F_OUTBOUND_ALLOW] = {"outbound-allow", "CIDR,...", "COFFER_OUTBOUND_ALLOW",
                          .check = cf_net_set_allow,
                          .help = "let outbound calls (JWKS, Kubernetes, webhooks, audit stream, "
                                  "SMTP) reach these otherwise refused link-local or metadata "
                                  "addresses, e.g. 169.254.0.0/16"},
    [F_SYNC_FILE_DIR] = {"sync-file-dir", "DIR", "COFFER_SYNC_FILE_DIR",
                         .check = cf_filedest_set_root,
                         .help = "let secret syncs write files below this directory (file syncs "
                                 "are off without it)"},
    [F_CACHE_SIZE] = {"cache-size", "BYTES", "COFFER_CACHE_SIZE", "67108864", .kind = FLAG_NUMBER,
                      .min = 0, .max = 64LL * 1024 * 1024 * 1024, .unit = " bytes",
                      .help = "memory for rendered folder lists served again until a change "
                              "(values in guarded memory); 0 keeps none"},
    [F_OIDC_ISSUER] = {"oidc-issuer", "URL", "COFFER_OIDC_ISSUER",
                       .help = "single sign-on with this OpenID Connect provider (its discovery "
                               "document is URL/.well-known/openid-configuration)"},
    [F_OIDC_ENTRA_TENANT] = {"oidc-entra-tenant", "TENANT", "COFFER_OIDC_ENTRA_TENANT",
                             .help = "single sign-on with this Microsoft Entra ID tenant (id or "
                                     "domain) instead of --oidc-issuer"},
    [F_OIDC_ENTRA_AUTHORITY] = {"oidc-entra-authority", "URL", "COFFER_OIDC_ENTRA_AUTHORITY",
                                .shown_default = "https://login.microsoftonline.com",
                                .help = "Entra ID's sign-in host (a national cloud)"},
    [F_OIDC_CLIENT_ID] = {"oidc-client-id", "ID", "COFFER_OIDC_CLIENT_ID",
                          .help = "the client (application) id registered at the provider"},
    [F_OIDC_CLIENT_SECRET_FILE] = {"oidc-client-secret-file", "FILE",
                                   "COFFER_OIDC_CLIENT_SECRET_FILE",
                                   .help = "file holding the client secret (or set "
                                           "COFFER_OIDC_CLIENT_SECRET)"},
    [F_OIDC_REDIRECT_URL] = {"oidc-redirect-url", "URL", "COFFER_OIDC_REDIRECT_URL",
                             .help = "this server's https://HOST/api/v1/sso/oidc/callback, as "
                                     "registered at the provider"},
    [F_OIDC_SCOPES] = {"oidc-scopes", "SCOPES", "COFFER_OIDC_SCOPES", "openid profile email",
                       .help = "scopes asked for at sign-in"},
    [F_OIDC_ALLOWED_DOMAINS] = {"oidc-allowed-domains", "D,...", "COFFER_OIDC_ALLOWED_DOMAINS",
                                .help = "only e-mail addresses in these domains may sign in"},
    [F_OIDC_CA_FILE] = {"oidc-ca-file", "FILE", "COFFER_OIDC_CA_FILE",
                        .help = "CA bundle for the provider's TLS"},
    [F_OIDC_CLIENT_CERTIFICATE] = {"oidc-client-certificate", "FILE",
                                   "COFFER_OIDC_CLIENT_CERTIFICATE",
                                   .help = "PEM file with the certificate and RSA private key "
                                           "registered at Entra ID, instead of a client secret"},
    [F_OIDC_GROUPS_CLAIM] = {"oidc-groups-claim", "NAME", "COFFER_OIDC_GROUPS_CLAIM", "groups",
                             .help = "the ID token claim listing the user's groups"},
    [F_OIDC_GROUP_ROLE] = {"oidc-group-role", "G=ROLE,...", "COFFER_OIDC_GROUP_ROLE",
                           .help = "org role (owner, admin, member) of the members of group G, "
                                   "set at every sign-in; the highest wins, no group gives "
                                   "member"},
    [F_OIDC_REQUIRE_GROUP] = {"oidc-require-group", .env = "COFFER_OIDC_REQUIRE_GROUP",
                              .kind = FLAG_SWITCH,
                              .help = "refuse sign-ins of users in none of the "
                                      "--oidc-group-role groups"},
    [F_OIDC_GRAPH_URL] = {"oidc-graph-url", "URL", "COFFER_OIDC_GRAPH_URL",
                          .shown_default = "https://graph.microsoft.com",
                          .help = "Microsoft Graph, asked for the groups of an Entra ID user in "
                                  "too many to fit the token"},
    [F_SESSION_IDLE] = {"session-idle-timeout", "D", "COFFER_SESSION_IDLE_TIMEOUT", "1h",
                        .kind = FLAG_DURATION, .min = 60,
                        .too_small = "--session-idle-timeout must be at least 1m",
                        .help = "a user's browser session ends after this long without a "
                                "request"},
    [F_SESSION_MAX_AGE] = {"session-max-age", "D", "COFFER_SESSION_MAX_AGE", "12h",
                           .kind = FLAG_DURATION, .min = 60,
                           .too_small = "--session-max-age must be at least 1m",
                           .help = "a user's browser session ends this long after sign-in, "
                                   "however active"},
    [F_ACCESS_MAX_DURATION] = {"access-max-duration", "D", "COFFER_ACCESS_MAX_DURATION", "24h",
                               .kind = FLAG_DURATION, .min = 60,
                               .too_small = "--access-max-duration must be at least 1m",
                               .help = "the longest temporary access an access request may ask "
                                       "for or a grant may give"},
};

/* The settings of one start: each flag's value, else its environment variable's, else its
 * fallback (NULL when none), and what that value says. Values point into argv or the
 * environment. */
struct server_settings {
    const char *value[F_COUNT];
    long long number[F_COUNT]; /* FLAG_NUMBER: the number (0 when unset); FLAG_DURATION: in ms */
    bool on[F_COUNT];          /* FLAG_SWITCH */
};

#define HELP_COLUMN 23
#define HELP_WIDTH 80

/* Appends flag's lines of the help: "  --name METAVAR" then its description from HELP_COLUMN,
 * wrapped at HELP_WIDTH. */
static enum cf_rc add_flag_help(struct cf_buf *out, const struct server_flag *flag)
{
    const char *fallback = flag->shown_default ? flag->shown_default : flag->fallback;
    char text[640];
    if (flag->env && fallback)
        snprintf(text, sizeof(text), "%s (%s, default %s)", flag->help, flag->env, fallback);
    else if (flag->env)
        snprintf(text, sizeof(text), "%s (%s)", flag->help, flag->env);
    else
        snprintf(text, sizeof(text), "%s", flag->help);

    size_t line_start = out->len;
    enum cf_rc rc = cf_buf_printf(out, "  --%s%s%s", flag->name, flag->metavar ? " " : "",
                                  flag->metavar ? flag->metavar : "");
    size_t column = out->len - line_start;
    bool line_empty = true;
    if (rc == CF_OK)
        rc = cf_buf_printf(out, "%*s", (int)(column < HELP_COLUMN - 1 ? HELP_COLUMN - column : 2),
                           "");
    column = column < HELP_COLUMN - 1 ? HELP_COLUMN : column + 2;
    for (const char *word = text; rc == CF_OK && *word;) {
        size_t len = strcspn(word, " ");
        if (!line_empty && column + 1 + len > HELP_WIDTH) {
            rc = cf_buf_printf(out, "\n%*s", HELP_COLUMN, "");
            column = HELP_COLUMN;
            line_empty = true;
        }
        if (rc == CF_OK)
            rc = cf_buf_printf(out, "%s%.*s", line_empty ? "" : " ", (int)len, word);
        column += len + (line_empty ? 0 : 1);
        line_empty = false;
        word += len + strspn(word + len, " ");
    }
    return rc == CF_OK ? cf_buf_puts(out, "\n") : rc;
}

/* The help of `coffer server`, made from server_flags once and kept for the life of the process
 * (help and completion borrow it); NULL when out of memory. */
static const char *server_usage(void)
{
    static char *usage;
    struct cf_buf text;
    enum cf_rc rc;

    if (usage)
        return usage;
    cf_buf_init(&text, 0);
    rc = cf_buf_puts(&text, "usage: coffer server [options]\n"
                            "\n"
                            "Runs the Coffer server. An option not given is taken from the "
                            "environment\n"
                            "variable named beside it.\n"
                            "\n");
    for (size_t i = 0; rc == CF_OK && i < F_COUNT; i++)
        rc = add_flag_help(&text, &server_flags[i]);
    if (rc == CF_OK)
        rc = cf_buf_puts(
            &text,
            "\n"
            "COFFER_ROOT_KEY        base64 of 32 bytes; default: DIR/root.key, created on first "
            "start\n"
            "COFFER_BOOTSTRAP_TOKEN on first start, becomes the admin token (at least 16 "
            "characters)\n"
            "                       instead of a generated one\n"
            "COFFER_OIDC_CLIENT_SECRET  single sign-on's client secret (instead of "
            "--oidc-client-secret-file)\n"
            "COFFER_LOGIN_MAX_FAILURES  failed logins a minute from one address for one identity\n"
            "                       before a minute's lockout (default 10)\n");
    if (rc == CF_OK)
        usage = cf_buf_detach(&text, NULL);
    cf_buf_release(&text);
    return usage;
}

/* Checks value, the setting of flag, and sets *number to what it says (FLAG_NUMBER: the number,
 * FLAG_DURATION: milliseconds). CF_EINVAL with the message to print. */
static enum cf_rc check_flag(const struct server_flag *flag, const char *value, long long *number,
                             struct cf_err *err)
{
    int64_t seconds = 0;
    struct cf_list_iter words;
    struct cf_str word;
    size_t count = 0, shown = 0;
    char choices[160] = "";

    switch (flag->kind) {
    case FLAG_TEXT:
        return flag->check ? flag->check(value, err) : CF_OK;
    case FLAG_SWITCH:
        return CF_OK;
    case FLAG_NUMBER:
        if (!cf_parse_int64(value, flag->min, flag->max, number))
            return cf_err_set(err, CF_EINVAL, "--%s must be %lld..%lld%s", flag->name, flag->min,
                              flag->max, flag->unit ? flag->unit : "");
        return CF_OK;
    case FLAG_DURATION:
        if (strcmp(value, "0") != 0 && cf_duration_parse(value, &seconds, err) != CF_OK)
            return cf_err_set(err, CF_EINVAL, "--%s takes a duration such as 60s or 5m, or 0",
                              flag->name);
        if (seconds < flag->min)
            return cf_err_set(err, CF_EINVAL, "%s", flag->too_small);
        *number = seconds * 1000;
        return CF_OK;
    case FLAG_CHOICE:
        cf_list_init(&words, flag->choices);
        while (cf_list_next(&words, &word)) {
            if (word.n == strlen(value) && memcmp(word.p, value, word.n) == 0)
                return CF_OK;
            count++;
        }
        /* "--audit must be on, fail-closed or off" */
        cf_list_init(&words, flag->choices);
        while (cf_list_next(&words, &word)) {
            size_t used = strlen(choices);
            shown++;
            snprintf(choices + used, sizeof(choices) - used, "%s%.*s",
                     shown == 1       ? ""
                     : shown == count ? " or "
                                      : ", ",
                     (int)word.n, word.p);
        }
        return cf_err_set(err, CF_EINVAL, "--%s must be %s", flag->name, choices);
    }
    CF_BUG("unknown flag kind");
}

/* Parses argv against server_flags, then takes and checks every setting (exit status 2 and a
 * message for the first refused). Returns true when the server should start; otherwise *status
 * says how to exit (0 after --help). */
static bool parse_settings(int argc, char **argv, struct server_settings *set, int *status)
{
    struct cf_opt opts[F_COUNT];
    struct cf_cli cli;
    struct cf_err err;

    memset(set, 0, sizeof(*set));
    for (size_t i = 0; i < F_COUNT; i++) {
        bool on_off = server_flags[i].kind == FLAG_SWITCH;
        opts[i] = (struct cf_opt){server_flags[i].name, on_off ? CF_OPT_BOOL : CF_OPT_STRING,
                                  on_off ? (void *)&set->on[i] : (void *)&set->value[i]};
    }
    const struct cf_cli_spec spec = {
        .usage = server_usage(),
        .flags = CF_CLI_LOCAL,
        .opts = opts,
        .nopts = F_COUNT,
    };
    if (!spec.usage) {
        fprintf(stderr, "coffer server: out of memory\n");
        *status = 1;
        return false;
    }
    bool proceed = cf_cli_begin(&cli, argc, argv, &spec, status);
    cf_cli_end(&cli);
    if (!proceed)
        return false;
    cf_err_clear(&err);
    for (size_t i = 0; i < F_COUNT; i++) {
        const struct server_flag *flag = &server_flags[i];
        if (flag->kind == FLAG_SWITCH) {
            /* a switch's variable says true or false; the flag, when given, wins */
            const char *env = flag->env ? getenv(flag->env) : NULL;
            if (!set->on[i] && env && *env && strcmp(env, "true") != 0 &&
                strcmp(env, "false") != 0) {
                fprintf(stderr, "coffer server: %s must be true or false\n", flag->env);
                *status = 2;
                return false;
            }
            set->on[i] = set->on[i] || (env && strcmp(env, "true") == 0);
            continue;
        }
        set->value[i] = cf_boot_setting(set->value[i], flag->env, flag->fallback);
        if (set->value[i] && check_flag(flag, set->value[i], &set->number[i], &err) != CF_OK) {
            fprintf(stderr, "coffer server: %s\n", err.msg);
            *status = 2;
            return false;
        }
    }
    return true;
}

/* Makes sure the store holds an admin token hash. On first start it comes from
 * COFFER_BOOTSTRAP_TOKEN or is generated and printed once. Later, COFFER_BOOTSTRAP_TOKEN is only
 * checked: when it is the admin token and the store still holds the old, unkeyed form of its hash,
 * the check re-keys it (auth/admin.h). */
static enum cf_rc bootstrap_admin(struct cf_store *st, struct cf_admin_auth *admin,
                                  struct cf_err *err)
{
    char token[CF_TOKEN_MAX];
    const char *bootstrap = getenv("COFFER_BOOTSTRAP_TOKEN");
    bool given = bootstrap && *bootstrap, ok = false, legacy = false;
    enum cf_rc rc;

    rc = cf_admin_token_check(admin, st, given ? bootstrap : "", given ? strlen(bootstrap) : 0, &ok,
                              &legacy, err);
    if (rc == CF_OK) {
        if (given && !ok)
            cf_log_warn("COFFER_BOOTSTRAP_TOKEN ignored: this store already has an admin token");
        else if (given && legacy)
            cf_log_info("the stored admin token hash was re-keyed with the server's admin key");
        else if (legacy)
            cf_log_warn("the stored admin token hash has the old, unkeyed form: it is re-keyed at "
                        "the admin token's next use (or start with COFFER_BOOTSTRAP_TOKEN set to "
                        "it, or run `coffer operator rotate-admin-token`)");
        return CF_OK;
    }
    if (rc != CF_ENOTFOUND)
        return rc;

    if (given) {
        if (strlen(bootstrap) < BOOTSTRAP_MIN)
            return cf_err_set(err, CF_EINVAL,
                              "COFFER_BOOTSTRAP_TOKEN must be at least %d characters",
                              BOOTSTRAP_MIN);
        rc = cf_admin_token_store(admin, st, bootstrap, strlen(bootstrap), true, err);
    } else {
        cf_token_new(CF_ADMIN_TOKEN_PREFIX, token, sizeof(token));
        rc = cf_admin_token_store(admin, st, token, strlen(token), true, err);
    }
    if (rc == CF_EEXIST) {
        sodium_memzero(token, sizeof(token));
        return bootstrap_admin(st, admin, err); /* another process won the race */
    }
    if (rc == CF_OK) {
        if (!given) {
            printf("admin token: %s\n", token);
            printf("(shown once; only its keyed hash is stored. Use it as COFFER_TOKEN.)\n");
            fflush(stdout);
        } else {
            cf_log_info("admin token set from COFFER_BOOTSTRAP_TOKEN");
        }
    }
    sodium_memzero(token, sizeof(token));
    return rc;
}

/* glibc serves allocations above its mmap threshold (128 KiB at first) with fresh mappings, and a
 * list of 100 secrets allocates a few such blocks per request: mapping, faulting in and unmapping
 * them (with TLB shoot-downs across threads) cost more than the request itself. Keep them in the
 * heap instead. The trim threshold is what a big answer needs: a list of 10,000 secrets frees a
 * few MiB at the top of its thread's heap, and with a low threshold glibc hands them back to the
 * kernel at once, so the next such list faults every page in again (about 2,000 faults, half its
 * time on this kind of VM). A thread's heap therefore keeps up to 16 MiB free for the next answer;
 * the idle server's size is unchanged (bench/README.md "Big folders"). */
static void tune_malloc(void)
{
    mallopt(M_MMAP_THRESHOLD, 8 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 16 * 1024 * 1024);
}

#define OIDC_SECRET_FILE_MAX 4096

/* The single sign-on relying party the settings ask for into *out (NULL when no --oidc-* flag is
 * set). The client secret is read from --oidc-client-secret-file (its last line break dropped) or
 * COFFER_OIDC_CLIENT_SECRET and wiped once copied. CF_EINVAL naming the flag at fault. */
static enum cf_rc open_oidc(const struct server_settings *set, struct cf_oidc **out,
                            struct cf_err *err)
{
    char *file_secret = NULL;
    size_t len = 0;
    enum cf_rc rc = CF_OK;
    bool any = false;

    *out = NULL;
    for (int f = F_OIDC_ISSUER; f <= F_OIDC_GRAPH_URL; f++)
        if (f != F_OIDC_SCOPES && f != F_OIDC_GROUPS_CLAIM && (set->value[f] || set->on[f]))
            any = true;
    if (!any && !getenv("COFFER_OIDC_CLIENT_SECRET"))
        return CF_OK;
    const char *secret = getenv("COFFER_OIDC_CLIENT_SECRET");
    if (set->value[F_OIDC_CLIENT_SECRET_FILE]) {
        rc = cf_file_read(set->value[F_OIDC_CLIENT_SECRET_FILE], OIDC_SECRET_FILE_MAX, &file_secret,
                          &len, err);
        if (rc != CF_OK) {
            char why[CF_ERR_MSG_MAX];
            cf_strlcpy(why, err->msg, sizeof(why));
            return cf_err_set(err, CF_EINVAL, "--oidc-client-secret-file: %s", why);
        }
        while (len > 0 && (file_secret[len - 1] == '\n' || file_secret[len - 1] == '\r'))
            file_secret[--len] = '\0';
        secret = file_secret;
    }
    char *certificate = NULL;
    size_t certificate_len = 0;
    if (set->value[F_OIDC_CLIENT_CERTIFICATE]) {
        rc = cf_file_read(set->value[F_OIDC_CLIENT_CERTIFICATE], OIDC_SECRET_FILE_MAX * 4,
                          &certificate, &certificate_len, err);
        if (rc != CF_OK) {
            char why[CF_ERR_MSG_MAX];
            cf_strlcpy(why, err->msg, sizeof(why));
            if (file_secret) {
                sodium_memzero(file_secret, len);
                free(file_secret);
            }
            return cf_err_set(err, CF_EINVAL, "--oidc-client-certificate: %s", why);
        }
    }
    struct cf_oidc_config config = {
        .issuer = set->value[F_OIDC_ISSUER],
        .entra_tenant = set->value[F_OIDC_ENTRA_TENANT],
        .entra_authority = set->value[F_OIDC_ENTRA_AUTHORITY],
        .client_id = set->value[F_OIDC_CLIENT_ID],
        .client_secret = secret,
        .redirect_url = set->value[F_OIDC_REDIRECT_URL],
        .scopes = set->value[F_OIDC_SCOPES],
        .allowed_domains = set->value[F_OIDC_ALLOWED_DOMAINS],
        .ca_file = set->value[F_OIDC_CA_FILE],
        .client_certificate = certificate,
        .groups_claim = set->value[F_OIDC_GROUPS_CLAIM],
        .group_roles = set->value[F_OIDC_GROUP_ROLE],
        .require_group = set->on[F_OIDC_REQUIRE_GROUP],
        .graph_url = set->value[F_OIDC_GRAPH_URL],
    };
    rc = cf_oidc_new(&config, out, err);
    if (certificate) {
        sodium_memzero(certificate, certificate_len);
        free(certificate);
    }
    if (file_secret) {
        sodium_memzero(file_secret, len);
        free(file_secret);
    }
    return rc;
}

static void harden_process(void)
{
    /* Files the server creates (database, WAL, key file) are for its own user only. */
    umask(077);
    /* No core dumps: they would hold keys and plaintext values. */
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* The audit log as the settings ask for it (--audit, --audit-checkpoint-interval, retention,
 * archive) with its streams (--audit-file, --audit-syslog, --audit-http): *streams and *log stay
 * NULL when off. The head file and the default archive live in the node's data directory (each node
 * of a PostgreSQL cluster keeps the heads it signed). */
static enum cf_rc open_audit(const struct server_settings *set, const char *data_dir,
                             struct cf_boot *boot, struct cf_audit_streams **streams,
                             struct cf_audit_log **log, struct cf_err *err)
{
    const char *mode = set->value[F_AUDIT];
    struct cf_audit_streams_config streams_config = {
        .file_path = set->value[F_AUDIT_FILE],
        .syslog_addr = set->value[F_AUDIT_SYSLOG],
        .http_url = set->value[F_AUDIT_HTTP],
        .http_ca_file = set->value[F_AUDIT_HTTP_CA_FILE],
        .http_token = getenv("COFFER_AUDIT_HTTP_TOKEN"),
    };
    bool streaming =
        streams_config.file_path || streams_config.syslog_addr || streams_config.http_url;
    if (strcmp(mode, "off") == 0) {
        if (streaming)
            return cf_err_set(err, CF_EINVAL, "audit streams need the audit log (--audit on)");
        if (set->number[F_AUDIT_RETENTION] > 0)
            return cf_err_set(err, CF_EINVAL, "--audit-retention needs the audit log (--audit on)");
        cf_log_warn("the audit log is off (--audit off): requests are not recorded");
        return CF_OK;
    }
    if (streaming && cf_audit_streams_open(&streams_config, streams, err) != CF_OK)
        return err->rc;
    char head_path[4200], archive_dir[4200];
    const char *archive = set->value[F_AUDIT_ARCHIVE];
    int head_len = snprintf(head_path, sizeof(head_path), "%s/%s", data_dir, CF_AUDIT_HEAD_FILE);
    if (head_len < 0 || (size_t)head_len >= sizeof(head_path))
        return cf_err_set(err, CF_EINVAL, "the data directory's path is too long");
    int archive_len = archive ? snprintf(archive_dir, sizeof(archive_dir), "%s", archive)
                              : snprintf(archive_dir, sizeof(archive_dir), "%s/%s", data_dir,
                                         CF_AUDIT_ARCHIVE_DIR);
    if (archive_len < 0 || (size_t)archive_len >= sizeof(archive_dir))
        return cf_err_set(err, CF_EINVAL, "the audit archive directory's path is too long");
    struct cf_audit_log_config config = {
        .retention_ms = set->number[F_AUDIT_RETENTION],
        .archive_dir = archive_dir,
        .fail_closed = strcmp(mode, "fail-closed") == 0,
        .sink = *streams ? cf_audit_streams_event : NULL,
        .sink_batch_end = *streams ? cf_audit_streams_batch_end : NULL,
        .sink_head = *streams ? cf_audit_streams_head : NULL,
        .sink_ctx = *streams,
        .checkpoint_ms = set->number[F_AUDIT_CHECKPOINT_INTERVAL],
        .head_path = head_path,
    };
    if (cf_audit_log_open(boot->store, boot->keyring, &config, log, err) != CF_OK) {
        char why[sizeof(err->msg)];
        memcpy(why, err->msg, sizeof(why));
        return cf_err_set(err, err->rc, "the audit log: %s", why);
    }
    return CF_OK;
}

/* Waits for SIGTERM or SIGINT (the signals are blocked in every thread and taken here), reopening
 * the log file on each SIGHUP. SIGUSR1 is the seal's own wake-up (wake_main): with seal given,
 * it returns SIGUSR1 when the seal has something for the main thread (a root key to take while
 * sealed, a request to seal while unsealed), and ignores it otherwise. While systemd asks for a
 * watchdog (WatchdogSec=), it is pinged at half its interval: a server whose main loop stops is
 * restarted. Returns the signal, or 0 when timeout_s (> 0) seconds passed first. */
static int wait_for_stop(const sigset_t *signals, const char *log_file, struct cf_seal *seal,
                         bool sealed, int timeout_s)
{
    uint64_t watchdog_us = cf_sd_watchdog_usec();
    struct timespec tick = {.tv_sec = (time_t)(watchdog_us / 2 / 1000000),
                            .tv_nsec = (long)(watchdog_us / 2 % 1000000) * 1000};
    int64_t deadline_us = timeout_s > 0 ? cf_mono_us() + (int64_t)timeout_s * 1000000 : 0;
    int sig = 0;
    for (;;) {
        if (watchdog_us)
            cf_sd_notify("WATCHDOG=1");
        if (timeout_s > 0 || watchdog_us) {
            int64_t left_us = deadline_us ? deadline_us - cf_mono_us() : INT64_MAX;
            if (left_us <= 0)
                return 0;
            struct timespec wait = {.tv_sec = (time_t)(left_us / 1000000),
                                    .tv_nsec = (long)(left_us % 1000000) * 1000};
            if (watchdog_us && (uint64_t)left_us > watchdog_us / 2)
                wait = tick;
            sig = sigtimedwait(signals, NULL, &wait);
            if (sig < 0) {
                if (deadline_us && cf_mono_us() >= deadline_us)
                    return 0; /* the time ran out */
                continue;     /* the watchdog's tick, or an interruption */
            }
        } else {
            sigwait(signals, &sig);
        }
        if (sig == SIGUSR1) {
            struct cf_seal_status st;
            if (!seal)
                continue;
            cf_seal_status(seal, &st);
            if (sealed ? st.key_ready : cf_seal_take_request(seal))
                return sig;
            continue;
        }
        if (sig != SIGHUP)
            return sig;
        struct cf_err reopen_err;
        cf_err_clear(&reopen_err);
        if (!log_file)
            cf_log_info("received SIGHUP: the log goes to stderr (no --log-file), nothing to "
                        "reopen");
        else if (cf_log_reopen(&reopen_err) != CF_OK)
            cf_log_error("received SIGHUP: %s; the log stays in the file it was in",
                         reopen_err.msg);
        else
            cf_log_info("received SIGHUP: reopened the log file '%s'", log_file);
    }
}

/* The seal's on_change (core/seal.h), on a request thread: wakes the main thread in
 * wait_for_stop. */
static void wake_main(void *ctx)
{
    (void)ctx;
    kill(getpid(), SIGUSR1);
}

/* How a phase of serving ended. */
enum phase_end {
    PHASE_FAILED,   /* a start-up step failed (printed) */
    PHASE_STOPPED,  /* SIGTERM or SIGINT: the server is done */
    PHASE_SEALED,   /* an admin sealed the server: its services are down, the key still in boot */
    PHASE_UNSEALED, /* enough shares came: boot->keyring holds the root key */
};

/* What every phase of one run of the server shares. */
struct server_run {
    const struct server_settings *set;
    struct cf_server_config *config;
    const struct cf_notifier_config *notify_config;
    struct cf_boot *boot;
    const char *data_dir;
    struct cf_seal *seal; /* NULL: the root key is not split into shares */
    bool admin_sealed;    /* sealed by an admin: an auto-unseal waits for the next start */
    const sigset_t *signals;
    int64_t started; /* cf_mono_us at the start, for the "listening on" line */
};

static void log_listening(const struct server_run *run, struct cf_server *server, bool sealed)
{
    char host[256];
    cf_strlcpy(host, run->config->addr, sizeof(host));
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    cf_log_info("listening on %s://%s:%u (store %s, data dir %s, started in %.1f ms)%s",
                run->config->tls_cert_path ? "https" : "http", host, cf_server_port(server),
                run->boot->db_shown, run->data_dir, (double)(cf_mono_us() - run->started) / 1000.0,
                sealed ? "; sealed: unseal with 'coffer operator unseal'" : "");
}

/* Serves while sealed: only the status and unseal routes (api/sys.c), on a core that holds the
 * store and the seal and nothing else, until enough shares rebuild a root key that passes the
 * store's check (PHASE_UNSEALED, boot->keyring set) or a stop signal. */
static enum phase_end serve_sealed(struct server_run *run)
{
    struct cf_core core = {.store = run->boot->store, .seal = run->seal, .sealed = true};
    struct cf_server *server = NULL;
    struct cf_err err;
    uint8_t key[CF_ROOT_KEY_BYTES];
    enum phase_end end = PHASE_FAILED;
    bool automatic = run->boot->auto_unseal && !run->admin_sealed;
    char last_error[sizeof(err.msg)] = "";

    cf_err_clear(&err);
    if (cf_server_start(run->config, &core, &server, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        return PHASE_FAILED;
    }
    log_listening(run, server, !automatic);
    /* ready while sealed too: the server answers (status, unseal), and an operator must reach it */
    char ready[512];
    snprintf(ready, sizeof(ready),
             "READY=1\nSTATUS=sealed on port %u: unseal with 'coffer operator unseal'",
             cf_server_port(server));
    cf_sd_notify(ready);
    for (;;) {
        if (automatic) {
            if (cf_boot_auto_unseal(run->boot, &err) == CF_OK) {
                cf_seal_set_error(run->seal, NULL);
                end = PHASE_UNSEALED;
                break;
            }
            /* A token counts every refused PIN towards locking the user PIN, and the PIN comes
             * from this process's start: trying again could only lock the token. */
            cf_seal_note_auto_failure(run->seal, err.msg);
            if (run->boot->pkcs11 && err.rc == CF_EUNAUTH) {
                cf_log_error("auto-unseal with the PKCS#11 token failed: %s; staying sealed and "
                             "not trying again with this PIN (each refusal counts towards "
                             "locking it): fix it and restart the server",
                             err.msg);
                cf_seal_set_error(run->seal, err.msg);
                automatic = false;
                continue;
            }
            /* logged once per distinct failure, not at every retry */
            if (strcmp(err.msg, last_error) != 0)
                cf_log_error("auto-unseal with %s failed: %s; staying sealed and "
                             "trying again every %d s",
                             run->boot->pkcs11 ? "the PKCS#11 token" : "Azure Key Vault", err.msg,
                             AUTO_UNSEAL_RETRY_S);
            memcpy(last_error, err.msg, sizeof(last_error));
            cf_seal_set_error(run->seal, err.msg);
        }
        int sig = wait_for_stop(run->signals, run->set->value[F_LOG_FILE], run->seal, true,
                                automatic ? AUTO_UNSEAL_RETRY_S : 0);
        if (sig == 0)
            continue;
        if (sig != SIGUSR1) {
            cf_log_info("received %s while sealed", sig == SIGINT ? "SIGINT" : "SIGTERM");
            end = PHASE_STOPPED;
            break;
        }
        if (!cf_seal_take_key(run->seal, key))
            continue;
        enum cf_rc rc = cf_boot_unseal(run->boot, key, &err);
        sodium_memzero(key, sizeof(key));
        if (rc == CF_OK) {
            end = PHASE_UNSEALED;
            break;
        }
        cf_log_error("unseal: %s; staying sealed", err.msg);
        cf_seal_set_sealed(run->seal, true);
    }
    cf_server_stop(server, DRAIN_MS);
    return end;
}

/* Writes the unseal attempts the sealed server remembered (core/seal.h) to its audit log, oldest
 * first, as server.unseal.attempt events at the time each happened, with a
 * server.unseal.attempts_dropped event where attempts were not kept; the seal keeps none after.
 * Without a log they are dropped (they were logged as they happened). Failures are logged, not
 * fatal: the key is in use already. */
static void audit_unseal_attempts(struct cf_audit_log *log, struct cf_seal *seal, bool automatic,
                                  bool pkcs11)
{
    struct cf_seal_attempts attempts;
    struct cf_audit_event event;
    struct cf_err err;
    cf_err_clear(&err);
    if (cf_seal_take_attempts(seal, &attempts, &err) != CF_OK) {
        cf_log_error("the unseal attempts could not be audited: %s", err.msg);
        return;
    }
    for (size_t i = 0; log && i <= attempts.n; i++) {
        if (i == attempts.dropped_after && attempts.dropped > 0) {
            memset(&event, 0, sizeof(event));
            event.time_us = i < attempts.n ? attempts.items[i].time_ms * 1000 : 0;
            cf_strlcpy(event.actor_kind, "operator", sizeof(event.actor_kind));
            cf_strlcpy(event.actor_name, "unseal", sizeof(event.actor_name));
            cf_strlcpy(event.action, "server.unseal.attempts_dropped", sizeof(event.action));
            cf_strlcpy(event.result, "failed", sizeof(event.result));
            snprintf(event.reason, sizeof(event.reason),
                     "%llu unseal attempt(s) after the first %d and before the last %d were not "
                     "kept (the server log has each)",
                     (unsigned long long)attempts.dropped, CF_SEAL_ATTEMPTS_KEPT,
                     CF_SEAL_ATTEMPTS_KEPT);
            if (cf_audit_record(log, &event, &err) != CF_OK)
                cf_log_error("an unseal attempt could not be audited: %s", err.msg);
        }
        if (i == attempts.n)
            break;
        const struct cf_seal_attempt *a = &attempts.items[i];
        bool by_share = a->outcome != CF_SEAL_AUTO_FAILED;
        memset(&event, 0, sizeof(event));
        event.time_us = a->time_ms * 1000;
        cf_strlcpy(event.actor_kind, by_share ? "anonymous" : "operator", sizeof(event.actor_kind));
        cf_strlcpy(event.actor_name,
                   by_share || !automatic ? "unseal shares"
                   : pkcs11               ? "pkcs11"
                                          : "azure-key-vault",
                   sizeof(event.actor_name));
        cf_strlcpy(event.source_ip, a->source, sizeof(event.source_ip));
        cf_strlcpy(event.action, "server.unseal.attempt", sizeof(event.action));
        cf_strlcpy(event.result,
                   a->outcome == CF_SEAL_REJECTED      ? "denied"
                   : a->outcome == CF_SEAL_AUTO_FAILED ? "failed"
                                                       : "ok",
                   sizeof(event.result));
        snprintf(event.reason, sizeof(event.reason), "%s: %s", cf_seal_outcome_name(a->outcome),
                 a->detail);
        if (cf_audit_record(log, &event, &err) != CF_OK)
            cf_log_error("an unseal attempt could not be audited: %s", err.msg);
    }
    cf_seal_attempts_release(&attempts);
}

/* Records that the server was unsealed (by shares or by the vault) in its audit log, when it has
 * one; a failure is logged, not fatal: the key is in use already. */
static void audit_unseal(struct cf_audit_log *log, bool automatic, bool pkcs11)
{
    struct cf_audit_event event;
    struct cf_err err;
    if (!log)
        return;
    memset(&event, 0, sizeof(event));
    cf_err_clear(&err);
    cf_strlcpy(event.actor_kind, "operator", sizeof(event.actor_kind));
    cf_strlcpy(event.actor_name,
               !automatic ? "unseal shares"
               : pkcs11   ? "pkcs11"
                          : "azure-key-vault",
               sizeof(event.actor_name));
    cf_strlcpy(event.action, "server.unseal", sizeof(event.action));
    cf_strlcpy(event.result, "ok", sizeof(event.result));
    cf_strlcpy(event.reason,
               !automatic ? "root key rebuilt from shares"
               : pkcs11   ? "root key unwrapped by the PKCS#11 token"
                          : "root key unwrapped by Azure Key Vault",
               sizeof(event.reason));
    if (cf_audit_record(log, &event, &err) != CF_OK)
        cf_log_error("the unseal could not be audited: %s", err.msg);
}

/* Serves unsealed: brings up the admin check, single sign-on, the audit log, the notifier and the
 * background workers over boot->keyring, serves every route, and takes all of it down again on a
 * stop signal (PHASE_STOPPED) or an admin's seal (PHASE_SEALED; boot->keyring is left for the
 * caller to wipe). */
static enum phase_end serve_unsealed(struct server_run *run)
{
    const struct server_settings *set = run->set;
    struct cf_boot *boot = run->boot;
    struct cf_server *server = NULL;
    struct cf_throttle *by_addr_and_id = NULL, *by_addr = NULL;
    struct cf_jwks_cache *jwks = NULL;
    struct cf_entra_cache *entra = NULL;
    struct cf_github_cache *github = NULL;
    struct cf_cache *lists = NULL;
    struct cf_cache *verified_tokens = NULL;
    struct cf_audit_log *audit_log = NULL;
    struct cf_audit_streams *audit_streams = NULL;
    struct cf_notifier *notifier = NULL;
    struct cf_sync_worker *sync_worker = NULL;
    struct cf_sync_worker *rotation_worker = NULL;
    struct cf_sync_worker *lease_worker = NULL;
    struct cf_sync_worker *prune_worker = NULL;
    struct cf_sync_worker *archive_worker = NULL;
    struct cf_err err;
    struct cf_admin_auth *admin = NULL;
    struct cf_oidc *oidc = NULL;
    enum phase_end end = PHASE_FAILED;

    cf_err_clear(&err);
    if (cf_admin_auth_open(boot->store, boot->keyring, &admin, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        goto out;
    }

    if (open_oidc(set, &oidc, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        goto out;
    }

    /* Failed logins: per (source address, client id or identity id), COFFER_LOGIN_MAX_FAILURES
     * (default 10) a minute, then a minute's lockout; per source address ten times that, since many
     * pipelines may share one NAT address. Never per client id alone: client ids are not secret,
     * and one address's failures must not lock the genuine client out everywhere. */
    long long max_failures = 10;
    const char *mf = getenv("COFFER_LOGIN_MAX_FAILURES");
    if (mf && !cf_parse_int64(mf, 1, 1000000, &max_failures)) {
        fprintf(stderr, "coffer server: COFFER_LOGIN_MAX_FAILURES must be a positive number\n");
        goto out;
    }
    struct cf_throttle_policy by_address_and_id = {(int)max_failures, 60, 60};
    struct cf_throttle_policy by_address = {(int)max_failures * 10, 60, 60};
    by_addr_and_id = cf_throttle_new(&by_address_and_id);
    by_addr = cf_throttle_new(&by_address);
    jwks = cf_jwks_cache_new();
    entra = cf_entra_cache_new();
    github = cf_github_cache_new();
    /* Folder lists (core/listcache.h): bounded by --cache-size, and by entries since each one
     * takes at least a few pages of guarded memory. */
    struct cf_cache_config lists_config = {.max_entries = LIST_CACHE_ENTRIES,
                                           .max_bytes = (size_t)set->number[F_CACHE_SIZE],
                                           .wipe = true};
    if (set->number[F_CACHE_SIZE] > 0)
        lists = cf_cache_new(&lists_config);
    /* Token hashes and ids only, nothing secret: plain memory. */
    verified_tokens = cf_cache_new(
        &(struct cf_cache_config){.max_entries = VERIFIED_TOKEN_ENTRIES, .wipe = false});
    if (!by_addr_and_id || !by_addr || !jwks || !entra || !github || !verified_tokens ||
        (set->number[F_CACHE_SIZE] > 0 && !lists)) {
        fprintf(stderr, "coffer server: out of memory\n");
        goto out;
    }
    if (open_audit(set, run->data_dir, boot, &audit_streams, &audit_log, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        goto out;
    }
    struct cf_core core = {.store = boot->store,
                           .keyring = boot->keyring,
                           .login_by_address_and_id = by_addr_and_id,
                           .login_by_address = by_addr,
                           .jwks = jwks,
                           .entra = entra,
                           .github = github,
                           .audit = audit_log,
                           .lists = lists,
                           .verified_tokens = verified_tokens,
                           .admin = admin,
                           .oidc = oidc,
                           .session_idle_s = set->number[F_SESSION_IDLE] / 1000,
                           .session_absolute_s = set->number[F_SESSION_MAX_AGE] / 1000,
                           .access_max_s = set->number[F_ACCESS_MAX_DURATION] / 1000,
                           .seal = run->seal};
    /* Notifications start after the core exists; the server thread pool only reads it. */
    if (cf_notifier_start(&core, run->notify_config, &notifier, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        goto out;
    }
    core.notifier = notifier;
    if (cf_sync_worker_start(&core, &sync_worker, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        goto out;
    }
    /* A change may have committed just before a crash without its sync being marked. */
    cf_syncs_recover(&core);
    /* Its first pass resumes the rotations a stopped server left in progress (once their lease
     * ran out) and runs those that came due meanwhile. */
    if (cf_rotation_worker_start(&core, &rotation_worker, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        goto out;
    }
    /* Its first pass revokes the leases that ended while no server ran. */
    if (cf_lease_worker_start(&core, &lease_worker, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        goto out;
    }
    if (cf_prune_worker_start(&core, &prune_worker, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        goto out;
    }
    if (audit_log && set->number[F_AUDIT_RETENTION] > 0 &&
        cf_archive_worker_start(&core, &archive_worker, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        goto out;
    }
    /* For the requests, not for the start: the start's large blocks (the migrations', a cache's
     * table) stay out of the heap, so it does not keep their pages once they are freed. */
    tune_malloc();
    if (cf_server_start(run->config, &core, &server, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        goto out;
    }
    /* Only now, with the address bound, is a first admin token made: a start that cannot listen
     * (the port taken, TLS files refused) prints none, and the next start that can makes the one
     * to use. Until it is stored, the moment before the "listening on" line, a request with any
     * token is refused as unknown (401). */
    if (bootstrap_admin(boot->store, admin, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        goto out;
    }
    if (run->seal) {
        cf_seal_set_sealed(run->seal, false);
        audit_unseal_attempts(audit_log, run->seal, run->boot->auto_unseal, run->boot->pkcs11);
        audit_unseal(audit_log, run->boot->auto_unseal, run->boot->pkcs11);
    }
    log_listening(run, server, false);
    /* From here on a line per request: gathered, many lines per write() (util/log.h), until the
     * requests are drained. */
    if (cf_log_gather_start(&err) != CF_OK)
        cf_log_warn("the log is written a line at a time: %s", err.msg);
    char ready[512];
    snprintf(ready, sizeof(ready), "READY=1\nSTATUS=serving on port %u, store %s",
             cf_server_port(server), boot->store->backend);
    cf_sd_notify(ready);
    /* The start's connection serves the background workers from here on (cf_store_idle): their
     * first passes come after this (sync/worker.c), so none opens one of its own, whose memory
     * would stay in that thread's heap after it is given up. */
    cf_store_idle(boot->store);

    int sig = wait_for_stop(run->signals, set->value[F_LOG_FILE], run->seal, false, 0);
    cf_sd_notify(sig == SIGUSR1 ? "STATUS=sealing"
                                : "STOPPING=1\nSTATUS=finishing in-flight requests");
    if (sig == SIGUSR1)
        cf_log_info("sealing: finishing in-flight requests, then stopping every service and "
                    "wiping the keys");
    else
        cf_log_info("received %s: finishing in-flight requests",
                    sig == SIGINT ? "SIGINT" : "SIGTERM");
    cf_server_stop(server, DRAIN_MS);
    server = NULL;
    cf_log_gather_stop();
    end = sig == SIGUSR1 ? PHASE_SEALED : PHASE_STOPPED;
    uint64_t deferred = 0, syncs = 0;
    cf_store_sync_counts(boot->store, &deferred, &syncs);
    if (deferred > 0 && end == PHASE_STOPPED) /* how well the group commit batched */
        cf_log_info("group commit: %llu deferred commits in %llu syncs of the log",
                    (unsigned long long)deferred, (unsigned long long)syncs);
out:
    /* Still running only when a step after the start failed (the admin token). */
    cf_server_stop(server, 0);
    cf_sync_worker_stop(archive_worker);   /* before the store closes: it may be mid-file */
    cf_sync_worker_stop(prune_worker);     /* before the store closes: it may be mid-batch */
    cf_sync_worker_stop(rotation_worker);  /* before the store closes: it may be mid-step */
    cf_sync_worker_stop(lease_worker);     /* before the store closes: it may be mid-revocation */
    cf_sync_worker_stop(sync_worker);      /* before the store closes: it may be mid-run */
    cf_notifier_stop(notifier);            /* before the store closes: it may be mid-pass */
    cf_audit_log_close(audit_log);         /* after the server: every request's record is queued */
    cf_audit_streams_close(audit_streams); /* after the log: it feeds them */
    cf_throttle_free(by_addr_and_id);
    cf_throttle_free(by_addr);
    cf_jwks_cache_free(jwks);
    cf_entra_cache_free(entra); /* after the sync worker and the server: they borrow them */
    cf_github_cache_free(github);
    cf_cache_free(lists);           /* after the server: requests borrow it; wipes every body */
    cf_cache_free(verified_tokens); /* after the server: requests borrow it */
    cf_admin_auth_free(admin);
    cf_oidc_free(oidc); /* after the server: requests borrow it */
    return end;
}

int cf_cmd_server(int argc, char **argv)
{
    struct server_settings set;
    int status;

    if (!parse_settings(argc, argv, &set, &status))
        return status;
    cf_log_set_level(set.value[F_LOG_LEVEL]);   /* checked: one of its choices */
    cf_log_set_format(set.value[F_LOG_FORMAT]); /* likewise */
    /* Block the signals sigwait() below answers before any thread starts (threads inherit the
     * mask), so that only it receives them: SIGHUP, whose default would end the process, reopens
     * the log file instead. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    struct cf_err log_err;
    cf_err_clear(&log_err);
    if (set.value[F_LOG_FILE] && cf_log_open_file(set.value[F_LOG_FILE], &log_err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", log_err.msg);
        return 1;
    }
    cf_token_set_max_ttl(set.number[F_MAX_TOKEN_TTL] / 1000);

    struct cf_server_config config = {
        .addr = set.value[F_ADDR],
        .tls_cert_path = set.value[F_TLS_CERT],
        .tls_key_path = set.value[F_TLS_KEY],
        .metrics_token_file = set.value[F_METRICS_TOKEN_FILE],
        .allow_plain_http = set.on[F_PLAIN_HTTP],
        .store_name = "sqlite",
        .max_body = (size_t)set.number[F_MAX_BODY],
        .threads = (unsigned)set.number[F_THREADS],
        .write_threads = (unsigned)set.number[F_WRITE_THREADS],
        .max_connections = (unsigned)set.number[F_MAX_CONNECTIONS],
        .max_connections_per_ip = (unsigned)set.number[F_MAX_CONNECTIONS_PER_IP],
        .timeout_s = (unsigned)set.number[F_IDLE_TIMEOUT],
    };
    unsigned db_pool_size = (unsigned)set.number[F_DB_POOL_SIZE];
    if (!db_pool_size) { /* one connection per worker and writer thread, and some for the
                          * background threads */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        db_pool_size = (config.threads ? config.threads
                        : cores > 0    ? (unsigned)cores
                                       : 2) +
                       config.write_threads + 8;
    }
    struct cf_notifier_config notify_config = {
        .smtp = {.url = set.value[F_SMTP_URL],
                 .from = set.value[F_SMTP_FROM],
                 .username = set.value[F_SMTP_USERNAME],
                 .password = getenv("COFFER_SMTP_PASSWORD"),
                 .ca_file = set.value[F_SMTP_CA_FILE],
                 .starttls = strcmp(set.value[F_SMTP_STARTTLS], "on") == 0},
        .interval_ms = set.number[F_NOTIFY_INTERVAL],
        .retry_base_ms = set.number[F_NOTIFY_RETRY_BASE],
    };

    harden_process();
    cf_json_use_wiping_allocator();

    struct cf_boot_opts boot_opts = {
        .data_dir = set.value[F_DATA_DIR],
        .db = set.value[F_DB],
        .db_pool_size = (int)db_pool_size,
        .db_timeout_ms = (int)set.number[F_DB_TIMEOUT] * 1000,
        .root_key_b64 = cf_boot_setting(NULL, "COFFER_ROOT_KEY", NULL),
        .create_root_key = true,
        .allow_sealed = true,
    };
    struct cf_boot boot;
    struct cf_seal *seal = NULL;
    struct cf_err err;
    uint16_t port = 0;
    config.keep_port = &port;
    struct server_run run = {.set = &set,
                             .config = &config,
                             .notify_config = &notify_config,
                             .boot = &boot,
                             .data_dir = boot_opts.data_dir,
                             .signals = &signals,
                             .started = cf_mono_us()};

    status = 1; /* until the server has run and stopped */
    cf_err_clear(&err);
    if (cf_boot_open(&boot_opts, &boot, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        return 1;
    }
    if (boot.sealed &&
        (boot.auto_unseal ? cf_seal_new_auto(boot.pkcs11 ? "pkcs11" : "azure-key-vault", wake_main,
                                             NULL, &seal, &err)
                          : cf_seal_new(boot.store, wake_main, NULL, &seal, &err)) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        goto out;
    }
    run.seal = seal;

    /* A peer closing a socket must not kill the process. */
    signal(SIGPIPE, SIG_IGN);

    for (;;) {
        enum phase_end end = boot.keyring ? serve_unsealed(&run) : serve_sealed(&run);
        if (end == PHASE_FAILED)
            goto out;
        if (end == PHASE_STOPPED)
            break;
        if (end == PHASE_SEALED) {
            /* Every service is down: nothing borrows the keyring any more. */
            cf_keyring_free(boot.keyring); /* wipes the root key and every cached project key */
            boot.keyring = NULL;
            cf_seal_set_sealed(seal, true);
            run.admin_sealed = true;
            cf_log_info("sealed: the root key is wiped from memory; every route but the status "
                        "and unseal ones answers 503 until the server is unsealed");
        } else {
            cf_log_info("unsealed: the root key matches the store; starting the services");
        }
        run.started = cf_mono_us();
    }
    status = 0;
out:
    cf_seal_free(seal);
    cf_boot_close(&boot);
    if (status == 0)
        cf_log_info("stopped");
    return status;
}
