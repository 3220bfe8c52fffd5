/* `coffer server`: opens the data directory, bootstraps the admin token on first start, serves the
 * API until SIGTERM or SIGINT, then drains in-flight requests and closes the store cleanly. */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <jansson.h>
#include <sodium.h>

#include "api/server.h"
#include "auth/admin.h"
#include "auth/jwks.h"
#include "auth/throttle.h"
#include "core/auditlog.h"
#include "net/http.h"
#include "notify/notify.h"
#include "stream/audit_stream.h"
#include "sync/worker.h"
#include "server/boot.h"
#include "server/commands.h"
#include "auth/token.h"
#include "cli/common.h"
#include "crypto/token.h"
#include "util/wipemem.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define BOOTSTRAP_MIN 16
#define DRAIN_MS 10000

static const char usage_text[] =
    "usage: coffer server [options]\n"
    "\n"
    "Runs the Coffer server. Every option has an environment variable twin.\n"
    "\n"
    "  --addr HOST:PORT     listen address (COFFER_ADDR, default 127.0.0.1:8080; port 0 picks "
    "one)\n"
    "  --data-dir DIR       data directory (COFFER_DATA_DIR, default ./coffer-data)\n"
    "  --db PATH|URI        SQLite database file, or postgres://user@host/db for PostgreSQL\n"
    "                       (COFFER_DB, default DIR/coffer.db)\n"
    "  --db-pool-size N     PostgreSQL: connections at most (COFFER_DB_POOL_SIZE, default\n"
    "                       threads + 8)\n"
    "  --db-timeout SECONDS the longest a database call may wait (COFFER_DB_TIMEOUT, default 5)\n"
    "  --tls-cert FILE      PEM certificate chain (COFFER_TLS_CERT)\n"
    "  --tls-key FILE       PEM private key (COFFER_TLS_KEY)\n"
    "  --allow-plain-http   serve plain HTTP on a non-loopback address (behind a TLS proxy)\n"
    "  --max-body BYTES     request body limit (COFFER_MAX_BODY, default 1048576)\n"
    "  --threads N          worker threads (COFFER_THREADS, default: number of cores)\n"
    "  --max-connections N  open connections at most (COFFER_MAX_CONNECTIONS, default 4096)\n"
    "  --max-connections-per-ip N  from one address at most (COFFER_MAX_CONNECTIONS_PER_IP,\n"
    "                       default 256)\n"
    "  --idle-timeout S     close a connection idle this many seconds (COFFER_IDLE_TIMEOUT,\n"
    "                       default 30)\n"
    "  --log-level LEVEL    debug, info, warn, error (COFFER_LOG_LEVEL, default info)\n"
    "  --audit MODE         on (the default), fail-closed (a request whose audit record cannot\n"
    "                       be stored fails with 503), or off (COFFER_AUDIT)\n"
    "  --audit-file PATH    also append every audit event to PATH as JSON lines\n"
    "                       (COFFER_AUDIT_FILE)\n"
    "  --audit-syslog ADDR  also send every event to syslog: unix:/dev/log, unix:PATH or\n"
    "                       udp:HOST:PORT (COFFER_AUDIT_SYSLOG)\n"
    "  --audit-http URL     also POST events in batches to URL, https except on loopback\n"
    "                       (COFFER_AUDIT_HTTP; bearer token from COFFER_AUDIT_HTTP_TOKEN)\n"
    "  --audit-http-ca-file FILE  CA bundle for --audit-http (COFFER_AUDIT_HTTP_CA_FILE)\n"
    "  --audit-checkpoint-interval D  sign a checkpoint (and the head) at least this often\n"
    "                       while events come, also after the last one\n"
    "                       (COFFER_AUDIT_CHECKPOINT_INTERVAL, default 10s)\n"
    "  --notify-interval D  how often expiry notices are sent (COFFER_NOTIFY_INTERVAL,\n"
    "                       default 60s; 0 turns the background pass off)\n"
    "  --notify-retry-base D  first retry delay of a failed delivery, doubled each time\n"
    "                       (COFFER_NOTIFY_RETRY_BASE, default 30s)\n"
    "  --smtp-url URL       smtp://HOST:PORT for e-mail notices (COFFER_SMTP_URL; password\n"
    "                       from COFFER_SMTP_PASSWORD)\n"
    "  --smtp-from ADDR     sender address (COFFER_SMTP_FROM)\n"
    "  --smtp-username U    (COFFER_SMTP_USERNAME)\n"
    "  --smtp-ca-file FILE  CA bundle for STARTTLS (COFFER_SMTP_CA_FILE)\n"
    "  --smtp-starttls on|off  STARTTLS required (default on; off only for loopback)\n"
    "  --max-token-ttl D    the longest an access token lives, renewals included: caps every\n"
    "                       TTL and max TTL, 0 (\"none\") too (COFFER_MAX_TOKEN_TTL, default 30d)\n"
    "  --outbound-allow CIDR[,CIDR...]  let outbound calls (JWKS, Kubernetes, webhooks, audit\n"
    "                       stream, SMTP) reach these otherwise refused link-local or metadata\n"
    "                       addresses, e.g. 169.254.0.0/16 (COFFER_OUTBOUND_ALLOW)\n"
    "\n"
    "COFFER_ROOT_KEY        base64 of 32 bytes; default: DIR/root.key, created on first start\n"
    "COFFER_BOOTSTRAP_TOKEN on first start, becomes the admin token (at least 16 characters)\n"
    "                       instead of a generated one\n";

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
 * heap instead. */
static void tune_malloc(void)
{
    mallopt(M_MMAP_THRESHOLD, 8 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 2 * 1024 * 1024);
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

int cf_cmd_server(int argc, char **argv)
{
    enum {
        OPT_ADDR = 1,
        OPT_DATA_DIR,
        OPT_DB,
        OPT_TLS_CERT,
        OPT_TLS_KEY,
        OPT_PLAIN,
        OPT_MAX_BODY,
        OPT_THREADS,
        OPT_MAX_CONNS,
        OPT_MAX_CONNS_PER_IP,
        OPT_IDLE_TIMEOUT,
        OPT_DB_POOL,
        OPT_DB_TIMEOUT,
        OPT_LOG_LEVEL,
        OPT_AUDIT,
        OPT_AUDIT_FILE,
        OPT_AUDIT_SYSLOG,
        OPT_AUDIT_HTTP,
        OPT_AUDIT_HTTP_CA,
        OPT_AUDIT_CHECKPOINT,
        OPT_NOTIFY_INTERVAL,
        OPT_NOTIFY_RETRY,
        OPT_SMTP_URL,
        OPT_SMTP_FROM,
        OPT_SMTP_USER,
        OPT_SMTP_CA,
        OPT_SMTP_STARTTLS,
        OPT_MAX_TOKEN_TTL,
        OPT_OUTBOUND_ALLOW,
        OPT_HELP
    };
    static const struct option options[] = {
        {"addr", required_argument, NULL, OPT_ADDR},
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"db", required_argument, NULL, OPT_DB},
        {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
        {"tls-key", required_argument, NULL, OPT_TLS_KEY},
        {"allow-plain-http", no_argument, NULL, OPT_PLAIN},
        {"max-body", required_argument, NULL, OPT_MAX_BODY},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"max-connections", required_argument, NULL, OPT_MAX_CONNS},
        {"max-connections-per-ip", required_argument, NULL, OPT_MAX_CONNS_PER_IP},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
        {"db-pool-size", required_argument, NULL, OPT_DB_POOL},
        {"db-timeout", required_argument, NULL, OPT_DB_TIMEOUT},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"audit", required_argument, NULL, OPT_AUDIT},
        {"audit-file", required_argument, NULL, OPT_AUDIT_FILE},
        {"audit-syslog", required_argument, NULL, OPT_AUDIT_SYSLOG},
        {"audit-http", required_argument, NULL, OPT_AUDIT_HTTP},
        {"audit-http-ca-file", required_argument, NULL, OPT_AUDIT_HTTP_CA},
        {"audit-checkpoint-interval", required_argument, NULL, OPT_AUDIT_CHECKPOINT},
        {"notify-interval", required_argument, NULL, OPT_NOTIFY_INTERVAL},
        {"notify-retry-base", required_argument, NULL, OPT_NOTIFY_RETRY},
        {"smtp-url", required_argument, NULL, OPT_SMTP_URL},
        {"smtp-from", required_argument, NULL, OPT_SMTP_FROM},
        {"smtp-username", required_argument, NULL, OPT_SMTP_USER},
        {"smtp-ca-file", required_argument, NULL, OPT_SMTP_CA},
        {"smtp-starttls", required_argument, NULL, OPT_SMTP_STARTTLS},
        {"max-token-ttl", required_argument, NULL, OPT_MAX_TOKEN_TTL},
        {"outbound-allow", required_argument, NULL, OPT_OUTBOUND_ALLOW},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *addr = NULL, *data_dir = NULL, *db = NULL, *tls_cert = NULL, *tls_key = NULL;
    const char *max_body = NULL, *threads = NULL, *log_level = NULL, *audit = NULL;
    const char *max_conns = NULL, *max_conns_per_ip = NULL, *idle_timeout = NULL;
    const char *db_pool = NULL, *db_timeout = NULL;
    unsigned db_pool_size = 0, db_timeout_s = 0;
    const char *notify_interval = NULL, *notify_retry = NULL, *smtp_url = NULL, *smtp_from = NULL;
    const char *smtp_user = NULL, *smtp_ca = NULL, *smtp_starttls = NULL;
    const char *max_token_ttl = NULL, *outbound_allow = NULL;
    int64_t max_token_ttl_ms = 0;
    const char *audit_file = NULL, *audit_syslog = NULL, *audit_http = NULL, *audit_http_ca = NULL;
    const char *audit_checkpoint = NULL;
    bool plain = false;
    int opt;

    if (cf_cli_describing()) {
        cf_cli_describe_getopt(usage_text, options, NULL);
        return 0;
    }
    if (cf_opt_wants_help(argc, argv)) { /* -h too, which getopt_long would refuse */
        cf_cli_print_getopt_help(stdout, usage_text, options);
        return 0;
    }
    optind = 1;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case OPT_ADDR:
            addr = optarg;
            break;
        case OPT_DATA_DIR:
            data_dir = optarg;
            break;
        case OPT_DB:
            db = optarg;
            break;
        case OPT_TLS_CERT:
            tls_cert = optarg;
            break;
        case OPT_TLS_KEY:
            tls_key = optarg;
            break;
        case OPT_PLAIN:
            plain = true;
            break;
        case OPT_MAX_BODY:
            max_body = optarg;
            break;
        case OPT_THREADS:
            threads = optarg;
            break;
        case OPT_MAX_CONNS:
            max_conns = optarg;
            break;
        case OPT_MAX_CONNS_PER_IP:
            max_conns_per_ip = optarg;
            break;
        case OPT_IDLE_TIMEOUT:
            idle_timeout = optarg;
            break;
        case OPT_DB_POOL:
            db_pool = optarg;
            break;
        case OPT_DB_TIMEOUT:
            db_timeout = optarg;
            break;
        case OPT_LOG_LEVEL:
            log_level = optarg;
            break;
        case OPT_AUDIT:
            audit = optarg;
            break;
        case OPT_AUDIT_FILE:
            audit_file = optarg;
            break;
        case OPT_AUDIT_SYSLOG:
            audit_syslog = optarg;
            break;
        case OPT_AUDIT_HTTP:
            audit_http = optarg;
            break;
        case OPT_AUDIT_HTTP_CA:
            audit_http_ca = optarg;
            break;
        case OPT_AUDIT_CHECKPOINT:
            audit_checkpoint = optarg;
            break;
        case OPT_NOTIFY_INTERVAL:
            notify_interval = optarg;
            break;
        case OPT_NOTIFY_RETRY:
            notify_retry = optarg;
            break;
        case OPT_SMTP_URL:
            smtp_url = optarg;
            break;
        case OPT_SMTP_FROM:
            smtp_from = optarg;
            break;
        case OPT_SMTP_USER:
            smtp_user = optarg;
            break;
        case OPT_SMTP_CA:
            smtp_ca = optarg;
            break;
        case OPT_SMTP_STARTTLS:
            smtp_starttls = optarg;
            break;
        case OPT_MAX_TOKEN_TTL:
            max_token_ttl = optarg;
            break;
        case OPT_OUTBOUND_ALLOW:
            outbound_allow = optarg;
            break;
        case OPT_HELP:
            cf_cli_print_getopt_help(stdout, usage_text, options);
            return 0;
        default:
            cf_cli_getopt_hint(argv[optind - 1], options);
            cf_cli_print_getopt_help(stderr, usage_text, options);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "coffer server: unexpected argument '%s'\n%s", argv[optind], usage_text);
        return 2;
    }

    struct cf_server_config config = {0};
    config.addr = cf_boot_setting(addr, "COFFER_ADDR", "127.0.0.1:8080");
    config.tls_cert_path = cf_boot_setting(tls_cert, "COFFER_TLS_CERT", NULL);
    config.tls_key_path = cf_boot_setting(tls_key, "COFFER_TLS_KEY", NULL);
    config.allow_plain_http = plain;
    config.store_name = "sqlite";
    long long n;
    const char *v = cf_boot_setting(max_body, "COFFER_MAX_BODY", NULL);
    if (v) {
        if (!cf_parse_int64(v, 1024, 64LL * 1024 * 1024, &n)) {
            fprintf(stderr, "coffer server: --max-body must be 1024..67108864 bytes\n");
            return 2;
        }
        config.max_body = (size_t)n;
    }
    v = cf_boot_setting(threads, "COFFER_THREADS", NULL);
    if (v) {
        if (!cf_parse_int64(v, 1, 256, &n)) {
            fprintf(stderr, "coffer server: --threads must be 1..256\n");
            return 2;
        }
        config.threads = (unsigned)n;
    }
    const struct {
        const char *value, *env, *flag;
        long long min, max;
        unsigned *out;
    } limits[] = {
        {max_conns, "COFFER_MAX_CONNECTIONS", "--max-connections", 16, 1000000,
         &config.max_connections},
        {max_conns_per_ip, "COFFER_MAX_CONNECTIONS_PER_IP", "--max-connections-per-ip", 1, 1000000,
         &config.max_connections_per_ip},
        {idle_timeout, "COFFER_IDLE_TIMEOUT", "--idle-timeout", 1, 3600, &config.timeout_s},
        {db_pool, "COFFER_DB_POOL_SIZE", "--db-pool-size", 2, 1000, &db_pool_size},
        {db_timeout, "COFFER_DB_TIMEOUT", "--db-timeout", 1, 300, &db_timeout_s},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(limits); i++) {
        v = cf_boot_setting(limits[i].value, limits[i].env, NULL);
        if (!v)
            continue;
        if (!cf_parse_int64(v, limits[i].min, limits[i].max, &n)) {
            fprintf(stderr, "coffer server: %s must be %lld..%lld\n", limits[i].flag, limits[i].min,
                    limits[i].max);
            return 2;
        }
        *limits[i].out = (unsigned)n;
    }
    if (!db_pool_size) { /* one connection per worker thread, and some for the background threads */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        db_pool_size = (config.threads ? config.threads : cores > 0 ? (unsigned)cores : 2) + 8;
    }
    v = cf_boot_setting(log_level, "COFFER_LOG_LEVEL", "info");
    if (!cf_log_set_level(v)) {
        fprintf(stderr, "coffer server: --log-level must be debug, info, warn or error\n");
        return 2;
    }

    const char *audit_mode = cf_boot_setting(audit, "COFFER_AUDIT", "on");
    if (strcmp(audit_mode, "on") != 0 && strcmp(audit_mode, "off") != 0 &&
        strcmp(audit_mode, "fail-closed") != 0) {
        fprintf(stderr, "coffer server: --audit must be on, fail-closed or off\n");
        return 2;
    }

    int64_t checkpoint_ms = 0;
    struct cf_notifier_config notify_config = {
        .smtp = {.url = cf_boot_setting(smtp_url, "COFFER_SMTP_URL", NULL),
                 .from = cf_boot_setting(smtp_from, "COFFER_SMTP_FROM", NULL),
                 .username = cf_boot_setting(smtp_user, "COFFER_SMTP_USERNAME", NULL),
                 .password = getenv("COFFER_SMTP_PASSWORD"),
                 .ca_file = cf_boot_setting(smtp_ca, "COFFER_SMTP_CA_FILE", NULL),
                 .starttls = true},
    };
    const struct {
        const char *value, *env, *flag, *fallback;
        int64_t *out;
    } durations[] = {
        {notify_interval, "COFFER_NOTIFY_INTERVAL", "--notify-interval", "60s",
         &notify_config.interval_ms},
        {notify_retry, "COFFER_NOTIFY_RETRY_BASE", "--notify-retry-base", "30s",
         &notify_config.retry_base_ms},
        {max_token_ttl, "COFFER_MAX_TOKEN_TTL", "--max-token-ttl", "30d", &max_token_ttl_ms},
        {audit_checkpoint, "COFFER_AUDIT_CHECKPOINT_INTERVAL", "--audit-checkpoint-interval", "10s",
         &checkpoint_ms},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(durations); i++) {
        int64_t seconds = 0;
        struct cf_err derr;
        v = cf_boot_setting(durations[i].value, durations[i].env, durations[i].fallback);
        if (strcmp(v, "0") != 0 && cf_duration_parse(v, &seconds, &derr) != CF_OK) {
            fprintf(stderr, "coffer server: %s takes a duration such as 60s or 5m, or 0\n",
                    durations[i].flag);
            return 2;
        }
        *durations[i].out = seconds * 1000;
    }
    /* 0 would mean "no limit", which is what this limit exists to prevent. */
    if (max_token_ttl_ms <= 0) {
        fprintf(stderr,
                "coffer server: --max-token-ttl takes a duration such as 12h or 30d (not 0)\n");
        return 2;
    }
    cf_token_set_max_ttl(max_token_ttl_ms / 1000);
    if (checkpoint_ms < 1000) {
        fprintf(stderr, "coffer server: --audit-checkpoint-interval must be at least 1s\n");
        return 2;
    }
    v = cf_boot_setting(smtp_starttls, "COFFER_SMTP_STARTTLS", "on");
    if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
        fprintf(stderr, "coffer server: --smtp-starttls must be on or off\n");
        return 2;
    }
    notify_config.smtp.starttls = strcmp(v, "on") == 0;
    v = cf_boot_setting(outbound_allow, "COFFER_OUTBOUND_ALLOW", NULL);
    struct cf_err net_err;
    if (v && cf_net_set_allow(v, &net_err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", net_err.msg);
        return 2;
    }

    harden_process();
    tune_malloc();
    cf_json_use_wiping_allocator();

    struct cf_boot_opts boot_opts = {
        .data_dir = cf_boot_setting(data_dir, "COFFER_DATA_DIR", "./coffer-data"),
        .db = cf_boot_setting(db, "COFFER_DB", NULL),
        .db_pool_size = (int)db_pool_size,
        .db_timeout_ms = (int)db_timeout_s * 1000,
        .root_key_b64 = cf_boot_setting(NULL, "COFFER_ROOT_KEY", NULL),
        .create_root_key = true,
    };
    struct cf_boot boot;
    struct cf_server *server = NULL;
    struct cf_throttle *by_addr_and_id = NULL, *by_addr = NULL;
    struct cf_jwks_cache *jwks = NULL;
    struct cf_audit_log *audit_log = NULL;
    struct cf_audit_streams *audit_streams = NULL;
    struct cf_notifier *notifier = NULL;
    struct cf_sync_worker *sync_worker = NULL;
    struct cf_err err;
    struct cf_admin_auth *admin = NULL;
    int status = 1;
    int64_t started = cf_mono_us();

    cf_err_clear(&err);
    if (cf_boot_open(&boot_opts, &boot, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        return 1;
    }
    if (cf_admin_auth_open(boot.store, boot.keyring, &admin, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        goto out;
    }

    /* Block the shutdown signals before libmicrohttpd starts its threads, so that only sigwait()
     * below receives them; a peer closing a socket must not kill the process. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

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
    if (!by_addr_and_id || !by_addr || !jwks) {
        fprintf(stderr, "coffer server: out of memory\n");
        goto out;
    }
    struct cf_audit_streams_config streams_config = {
        .file_path = cf_boot_setting(audit_file, "COFFER_AUDIT_FILE", NULL),
        .syslog_addr = cf_boot_setting(audit_syslog, "COFFER_AUDIT_SYSLOG", NULL),
        .http_url = cf_boot_setting(audit_http, "COFFER_AUDIT_HTTP", NULL),
        .http_ca_file = cf_boot_setting(audit_http_ca, "COFFER_AUDIT_HTTP_CA_FILE", NULL),
        .http_token = getenv("COFFER_AUDIT_HTTP_TOKEN"),
    };
    bool streaming =
        streams_config.file_path || streams_config.syslog_addr || streams_config.http_url;
    if (streaming && strcmp(audit_mode, "off") == 0) {
        fprintf(stderr, "coffer server: audit streams need the audit log (--audit on)\n");
        goto out;
    }
    if (streaming && cf_audit_streams_open(&streams_config, &audit_streams, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        goto out;
    }
    if (strcmp(audit_mode, "off") != 0) {
        /* Beside the store: in this node's data directory (each node of a PostgreSQL cluster keeps
         * the heads it signed). */
        char head_path[4200];
        int head_len =
            snprintf(head_path, sizeof(head_path), "%s/%s", boot_opts.data_dir, CF_AUDIT_HEAD_FILE);
        if (head_len < 0 || (size_t)head_len >= sizeof(head_path)) {
            fprintf(stderr, "coffer server: the data directory's path is too long\n");
            goto out;
        }
        struct cf_audit_log_config audit_config = {
            .fail_closed = strcmp(audit_mode, "fail-closed") == 0,
            .sink = audit_streams ? cf_audit_streams_event : NULL,
            .sink_batch_end = audit_streams ? cf_audit_streams_batch_end : NULL,
            .sink_head = audit_streams ? cf_audit_streams_head : NULL,
            .sink_ctx = audit_streams,
            .checkpoint_ms = checkpoint_ms,
            .head_path = head_path,
        };
        if (cf_audit_log_open(boot.store, boot.keyring, &audit_config, &audit_log, &err) != CF_OK) {
            fprintf(stderr, "coffer server: the audit log: %s\n", err.msg);
            goto out;
        }
    } else {
        cf_log_warn("the audit log is off (--audit off): requests are not recorded");
    }
    struct cf_core core = {.store = boot.store,
                           .keyring = boot.keyring,
                           .login_by_address_and_id = by_addr_and_id,
                           .login_by_address = by_addr,
                           .jwks = jwks,
                           .audit = audit_log,
                           .admin = admin};
    /* Notifications start after the core exists; the server thread pool only reads it. */
    if (cf_notifier_start(&core, &notify_config, &notifier, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        goto out;
    }
    core.notifier = notifier;
    if (cf_sync_worker_start(&core, &sync_worker, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        goto out;
    }
    if (cf_server_start(&config, &core, &server, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        goto out;
    }
    /* Only now, with the address bound, is a first admin token made: a start that cannot listen
     * (the port taken, TLS files refused) prints none, and the next start that can makes the one
     * to use. Until it is stored, the moment before the "listening on" line, a request with any
     * token is refused as unknown (401). */
    if (bootstrap_admin(boot.store, admin, &err) != CF_OK) {
        fprintf(stderr, "coffer server: %s\n", err.msg);
        goto out;
    }
    char host[256];
    cf_strlcpy(host, config.addr, sizeof(host));
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    cf_log_info("listening on %s://%s:%u (store %s, data dir %s, started in %.1f ms)",
                config.tls_cert_path ? "https" : "http", host, cf_server_port(server),
                boot.db_shown, boot_opts.data_dir, (double)(cf_mono_us() - started) / 1000.0);

    int sig = 0;
    sigwait(&signals, &sig);
    cf_log_info("received %s: finishing in-flight requests", sig == SIGINT ? "SIGINT" : "SIGTERM");
    cf_server_stop(server, DRAIN_MS);
    server = NULL;
    status = 0;
out:
    /* Still running only when a step after the start failed (the admin token). */
    cf_server_stop(server, 0);
    cf_sync_worker_stop(sync_worker);      /* before the store closes: it may be mid-run */
    cf_notifier_stop(notifier);            /* before the store closes: it may be mid-pass */
    cf_audit_log_close(audit_log);         /* after the server: every request's record is queued */
    cf_audit_streams_close(audit_streams); /* after the log: it feeds them */
    cf_throttle_free(by_addr_and_id);
    cf_throttle_free(by_addr);
    cf_jwks_cache_free(jwks);
    cf_admin_auth_free(admin);
    cf_boot_close(&boot);
    if (status == 0)
        cf_log_info("stopped");
    return status;
}
