/* `coffer doctor`: checks a deployment from its host and says what to fix (docs/operations.md
 * "coffer doctor"). Opens the data directory beside a running server, as the operator's switch
 * commands do, and only reads: permissions of the directory and its key and database files, the
 * root key against the store, the database's reachability, latency and clock, the TLS certificate,
 * the audit chain and its head file, credentials that have expired or expire within 30 days, and
 * failing syncs, rotations and notices. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/auditlog.h"
#include "core/expiry.h"
#include "server/boot.h"
#include "server/commands.h"
#include "store/leaks.h"
#include "cli/common.h"
#include "util/dynlib.h"
#include "util/log.h"
#include "util/time.h"
#include "util/str.h"
#include "util/banned.h"

#define DAY_MS (86400LL * 1000)
#define EXPIRY_WINDOW_DAYS 30
#define CERT_WARN_DAYS 30
#define PING_ROUNDS 5
#define PING_WARN_MS 50.0
#define SKEW_WARN_MS 1000
#define SKEW_FAIL_MS 30000
#define LISTED_AT_MOST 5

static const char usage_text[] =
    "usage: coffer doctor [--data-dir DIR] [--db PATH|URI] [--tls-cert FILE] [--strict]\n"
    "\n"
    "Checks a deployment from the server's host and prints what to fix: the data directory's\n"
    "and key files' permissions, the root key against the store, the database (reachable,\n"
    "latency, clock skew), the TLS certificate's expiry, the audit chain and its head file,\n"
    "credentials expired or expiring within 30 days, failing syncs, rotations and notices,\n"
    "secrets marked leaked (coffer scan --mark-leaked) and not changed since.\n"
    "The server may keep running. Exit 0 when nothing failed (warnings too with --strict),\n"
    "1 when something did, 2 on a usage error.\n"
    "\n"
    "  --data-dir DIR    data directory (COFFER_DATA_DIR, default ./coffer-data)\n"
    "  --db PATH|URI     the store (COFFER_DB, default DIR/coffer.db)\n"
    "  --tls-cert FILE   the server's certificate (COFFER_TLS_CERT)\n"
    "  --strict          warnings count as failures\n";

enum verdict { OK, NOTE, WARN, FAIL };

struct report {
    int warned, failed;
};

__attribute__((format(printf, 4, 5))) static void say(struct report *r, enum verdict v,
                                                      const char *check, const char *fmt, ...)
{
    static const char *const words[] = {"ok", "note", "warn", "FAIL"};
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    printf("%-5s %-22s %s\n", words[v], check, text);
    r->warned += v == WARN;
    r->failed += v == FAIL;
}

/* A file or directory that must be the owner's alone (mode bits for group and others clear). */
static void check_private(struct report *r, const char *check, const char *path, bool directory,
                          bool required)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (required || errno != ENOENT)
            say(r, FAIL, check, "%s: %s", path, strerror(errno));
        return;
    }
    if (directory != S_ISDIR(sb.st_mode)) {
        say(r, FAIL, check, "%s is not a %s", path, directory ? "directory" : "regular file");
        return;
    }
    unsigned mode = (unsigned)sb.st_mode & 07777;
    if (mode & 077)
        say(r, FAIL, check, "%s has mode %04o: others may read it; run chmod %s %s", path, mode,
            directory ? "700" : "600", path);
    else if (sb.st_uid != geteuid())
        say(r, WARN, check, "%s (mode %04o) belongs to uid %u, not to the user running this (%u)",
            path, mode, (unsigned)sb.st_uid, (unsigned)geteuid());
    else
        say(r, OK, check, "%s, mode %04o", path, mode);
}

static void check_certificate(struct report *r, const char *path)
{
    if (!path) {
        say(r, NOTE, "tls certificate", "none given (--tls-cert or COFFER_TLS_CERT): not checked");
        return;
    }
    FILE *f = fopen(path, "r");
    X509 *cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (!cert) {
        say(r, FAIL, "tls certificate", "%s: %s", path,
            f ? "not a PEM certificate" : strerror(errno));
        return;
    }
    int days = 0, seconds = 0;
    if (!ASN1_TIME_diff(&days, &seconds, NULL, X509_get0_notAfter(cert)))
        say(r, FAIL, "tls certificate", "%s: its end date does not parse", path);
    else if (days < 0 || (days == 0 && seconds <= 0))
        say(r, FAIL, "tls certificate", "%s expired %d days ago: renew it", path, -days);
    else if (days < CERT_WARN_DAYS)
        say(r, WARN, "tls certificate", "%s expires in %d days: renew it", path, days);
    else
        say(r, OK, "tls certificate", "%s valid for %d more days", path, days);
    X509_free(cert);
}

static void check_database(struct report *r, struct cf_boot *boot)
{
    struct cf_err err;
    double best = 0;
    for (int i = 0; i < PING_ROUNDS; i++) {
        int64_t start = cf_mono_us();
        if (cf_store_ping(boot->store, &err) != CF_OK) {
            say(r, FAIL, "database", "%s does not answer: %s", boot->db_shown, err.msg);
            return;
        }
        double ms = (double)(cf_mono_us() - start) / 1000.0;
        best = i == 0 || ms < best ? ms : best;
    }
    say(r, best > PING_WARN_MS ? WARN : OK, "database", "%s (%s) answers in %.2f ms%s",
        boot->db_shown, boot->store->backend, best,
        best > PING_WARN_MS ? ": slow; every request waits for it" : "");
    int64_t db_now = 0;
    int64_t before = cf_now_ms();
    if (cf_store_db_now_ms(boot->store, &db_now, &err) != CF_OK) {
        say(r, FAIL, "clock", "cannot read the database's clock: %s", err.msg);
        return;
    }
    int64_t skew = db_now - (before + cf_now_ms()) / 2;
    int64_t away = skew < 0 ? -skew : skew;
    if (strcmp(boot->store->backend, "postgres") != 0)
        say(r, OK, "clock", "SQLite: the database is on this host");
    else if (away > SKEW_FAIL_MS)
        say(r, FAIL, "clock",
            "this host and the database differ by %.1f s: token lifetimes, grants and expiry "
            "depend on it; run NTP (chronyd, systemd-timesyncd) on both",
            (double)skew / 1000.0);
    else
        say(r, away > SKEW_WARN_MS ? WARN : OK, "clock",
            "this host and the database differ by %lld ms", (long long)skew);
}

static void check_audit(struct report *r, struct cf_boot *boot, const char *data_dir)
{
    char head_path[4200];
    struct cf_err err;
    struct cf_audit_report report;
    snprintf(head_path, sizeof(head_path), "%s/%s", data_dir, CF_AUDIT_HEAD_FILE);
    struct cf_audit_log_config config = {.head_path = head_path};
    struct cf_audit_log *log = NULL;
    memset(&report, 0, sizeof(report));
    cf_err_clear(&err);
    enum cf_rc rc = cf_audit_log_open(boot->store, boot->keyring, &config, &log, &err);
    if (rc == CF_OK)
        rc = cf_audit_log_verify(log, NULL, 0, &report, &err);
    cf_audit_log_close(log);
    if (rc != CF_OK)
        say(r, FAIL, "audit chain", "cannot verify: %s", err.msg);
    else if (report.finding == CF_AUDIT_HEAD_MISSING)
        say(r, WARN, "audit chain",
            "%lld events verified, but no head file vouches for the end of the log yet: a server "
            "writes it at its next checkpoint (--audit-checkpoint-interval); if it has run longer, "
            "the file was removed: compare the log with a stream, then `coffer audit checkpoint`",
            (long long)report.events);
    else if (report.finding != CF_AUDIT_OK)
        say(r, FAIL, "audit chain", "%s: %s (coffer audit verify; docs/audit.md)",
            cf_audit_finding_name(report.finding), report.message);
    else
        say(r, OK, "audit chain", "%lld events and %lld checkpoints verified, intact to event %lld",
            (long long)report.events, (long long)report.checkpoints, (long long)report.last_seq);
}

/* What an expiry item is, for a line of the report. */
static void describe(const struct cf_expiry_item *it, char *out, size_t size)
{
    switch (it->kind) {
    case CF_EXPIRY_CLIENT_SECRET:
        snprintf(out, size, "client secret %.8s of identity %s", it->credential_id,
                 it->identity_name);
        break;
    case CF_EXPIRY_CONNECTION:
        snprintf(out, size, "connection %s (%s)", it->description, it->app);
        break;
    default:
        snprintf(out, size, "%s %s/%s%s%s",
                 it->kind == CF_EXPIRY_REMINDER ? "rotation of" : "secret", it->project_name,
                 it->env_slug, it->path, it->key);
    }
}

static void check_expiry(struct report *r, struct cf_boot *boot)
{
    struct cf_core core = {.store = boot->store, .keyring = boot->keyring};
    struct cf_principal admin = {.kind = CF_PRINCIPAL_ADMIN};
    int64_t now = cf_now_ms();
    struct cf_expiry_query q = {.now = now,
                                .within_ms = EXPIRY_WINDOW_DAYS * DAY_MS,
                                .secrets = true,
                                .reminders = true,
                                .client_secrets = true,
                                .connections = true};
    struct cf_expiry_list list = {0};
    struct cf_err err;
    if (cf_expiry_list(&core, &admin, &q, &list, &err) != CF_OK) {
        say(r, FAIL, "expiry", "cannot list what expires: %s", err.msg);
        return;
    }
    size_t past = 0, soon = 0;
    for (size_t i = 0; i < list.n; i++) {
        const struct cf_expiry_item *it = &list.items[i];
        char what[2400];
        describe(it, what, sizeof(what));
        int64_t days = (it->due_at - now) / DAY_MS;
        if (it->past && past++ < LISTED_AT_MOST)
            say(r, FAIL, "expiry", "%s %s %lld days ago", what,
                it->kind == CF_EXPIRY_REMINDER ? "was due" : "expired", (long long)-days);
        else if (!it->past && soon++ < LISTED_AT_MOST)
            say(r, WARN, "expiry", "%s %s in %lld days", what,
                it->kind == CF_EXPIRY_REMINDER ? "is due" : "expires", (long long)days);
    }
    if (past > LISTED_AT_MOST || soon > LISTED_AT_MOST)
        say(r, past > LISTED_AT_MOST ? FAIL : WARN, "expiry",
            "%zu expired and %zu expiring within %d days in all: coffer expiring --within %dd",
            past, soon, EXPIRY_WINDOW_DAYS, EXPIRY_WINDOW_DAYS);
    else if (!past && !soon)
        say(r, OK, "expiry", "nothing expired or expiring within %d days", EXPIRY_WINDOW_DAYS);
    cf_expiry_list_release(&list);
}

static void check_jobs(struct report *r, struct cf_boot *boot)
{
    struct cf_store_job_state *states = NULL;
    size_t n = 0;
    struct cf_err err;
    if (cf_store_job_states(boot->store, &states, &n, &err) != CF_OK) {
        say(r, FAIL, "jobs", "cannot read the syncs' and rotations' states: %s", err.msg);
        return;
    }
    int64_t failing[3] = {0}, total = 0;
    static const char *const kinds[] = {"sync", "rotation", "notice"};
    static const char *const fixes[] = {"coffer syncs status", "coffer rotations status",
                                        "the delivery log: coffer notifications log"};
    for (size_t i = 0; i < n; i++) {
        total += states[i].count;
        for (int k = 0; k < 3; k++)
            if (strcmp(states[i].kind, kinds[k]) == 0 && strcmp(states[i].state, "failed") == 0)
                failing[k] += states[i].count;
    }
    free(states);
    for (int k = 0; k < 3; k++)
        if (failing[k])
            say(r, k == 2 ? WARN : FAIL, "jobs", "%lld %s%s failing: see %s", (long long)failing[k],
                kinds[k], failing[k] == 1 ? " is" : "s are", fixes[k]);
    if (!failing[0] && !failing[1] && !failing[2])
        say(r, OK, "jobs", "%lld syncs, rotations and notices, none failing", (long long)total);
}

/* A secret marked leaked by `coffer scan --mark-leaked` whose value has not changed since is a
 * credential anyone who saw the leak may be using: a failure until it is rotated. */
static void check_leaks(struct report *r, struct cf_boot *boot)
{
    struct cf_standing_leak *leaks = NULL;
    size_t n = 0;
    struct cf_err err;
    if (cf_store_leak_standing(boot->store, &leaks, &n, &err) != CF_OK) {
        say(r, FAIL, "leaks", "cannot read the secrets marked leaked: %s", err.msg);
        return;
    }
    for (size_t i = 0; i < n && i < LISTED_AT_MOST; i++) {
        char when[CF_TIME_RFC3339_LEN];
        say(r, FAIL, "leaks",
            "%s was found leaked (%s, %s) and has not changed since: give it a new value "
            "(rotate it where it is used), which clears the mark",
            leaks[i].place, leaks[i].source, cf_time_format(leaks[i].leaked_at, when));
    }
    if (n > LISTED_AT_MOST)
        say(r, FAIL, "leaks", "%zu secrets marked leaked in all: coffer inventory --leaked", n);
    else if (n == 0)
        say(r, OK, "leaks", "no secret is marked leaked (coffer scan --known --mark-leaked)");
    free(leaks);
}

/* The libraries the server loads at their first use (util/dynlib.h) must be there when that use
 * comes: a host whose copy of coffer lacks one starts and serves, and fails only later, at a sync,
 * a JWKS fetch, a dynamic secret. Loading them here, in this process, costs the server nothing. */
static void check_libraries(struct report *r)
{
    static const struct {
        struct cf_dynlib *lib;
        enum verdict missing;
        const char *needed_for;
    } libs[] = {
        {&cf_lib_curl, FAIL,
         "every outbound request (secret syncs, JWKS and OIDC discovery, webhooks, notices, "
         "rotations) and every client command"},
        {&cf_lib_pq, WARN, "the PostgreSQL store, PostgreSQL dynamic secrets and rotated roles"},
        {&cf_lib_mariadb, WARN, "MySQL and MariaDB dynamic secrets"},
        {&cf_lib_gpgme, WARN, "unseal shares encrypted to OpenPGP keys"},
        {&cf_lib_crypto, FAIL,
         "JWT logins, SSO, client certificates and assertions, unseal shares encrypted to RSA "
         "keys, age files"},
        {&cf_lib_cjose, FAIL, "JWT and OIDC logins (their signatures)"},
    };
    int missing = 0;
    for (size_t i = 0; i < CF_ARRAY_SIZE(libs); i++) {
        struct cf_err err;
        cf_err_clear(&err);
        if (cf_dynlib_load(libs[i].lib, &err) != CF_OK) {
            say(r, libs[i].missing, "libraries",
                "%s; it is needed for %s (install it: debian/control)", err.msg,
                libs[i].needed_for);
            missing++;
        }
    }
    if (!missing)
        say(r, OK, "libraries",
            "libcurl, libpq, libmariadb, GPGME, libcrypto and cjose load (the server loads "
            "each at its first use)");
}

int cf_cmd_doctor(int argc, char **argv)
{
    const char *data_dir = NULL, *db = NULL, *tls_cert = NULL;
    bool strict = false;
    const struct cf_opt options[] = {
        {"data-dir", CF_OPT_STRING, &data_dir},
        {"db", CF_OPT_STRING, &db},
        {"tls-cert", CF_OPT_STRING, &tls_cert},
        {"strict", CF_OPT_BOOL, &strict},
    };
    const struct cf_cli_spec spec = {
        .usage = usage_text,
        .flags = CF_CLI_LOCAL,
        .opts = options,
        .nopts = CF_ARRAY_SIZE(options),
    };
    struct cf_cli cli;
    int status;
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status)) {
        cf_cli_end(&cli);
        return status;
    }
    cf_cli_end(&cli);
    cf_log_set_level("warn");
    struct report r = {0, 0};
    struct cf_boot_opts opts = {
        .data_dir = cf_boot_setting(data_dir, "COFFER_DATA_DIR", "./coffer-data"),
        .db = cf_boot_setting(db, "COFFER_DB", NULL),
        .root_key_b64 = cf_boot_setting(NULL, "COFFER_ROOT_KEY", NULL),
        .beside_server = true,
        .allow_sealed = true, /* a store whose key is in shares or Key Vault is checked too */
    };
    char path[4200];
    struct stat sb;
    if (stat(opts.data_dir, &sb) != 0) {
        say(&r, FAIL, "data directory", "%s: %s", opts.data_dir, strerror(errno));
        printf("1 failed: nothing else can be checked without the data directory\n");
        return 1;
    }
    check_private(&r, "data directory", opts.data_dir, true, true);
    if (opts.root_key_b64) {
        say(&r, OK, "root key", "from COFFER_ROOT_KEY (not on disk)");
    } else {
        snprintf(path, sizeof(path), "%s/%s", opts.data_dir, CF_ROOT_KEY_FILE);
        check_private(&r, "root key", path, false, false);
        if (access(path, F_OK) == 0)
            say(&r, NOTE, "root key",
                "kept beside the database: whoever copies %s holds every secret "
                "(docs/security.md)",
                opts.data_dir);
    }
    if (!opts.db) {
        snprintf(path, sizeof(path), "%s/coffer.db", opts.data_dir);
        check_private(&r, "database file", path, false, true);
    }
    snprintf(path, sizeof(path), "%s/%s", opts.data_dir, CF_AUDIT_HEAD_FILE);
    check_private(&r, "audit head file", path, false, false);
    check_certificate(&r, cf_boot_setting(tls_cert, "COFFER_TLS_CERT", NULL));
    check_libraries(&r);

    struct cf_boot boot;
    struct cf_err err;
    cf_err_clear(&err);
    if (cf_boot_open(&opts, &boot, &err) != CF_OK) {
        say(&r, FAIL, "store", "%s", err.msg);
    } else {
        if (boot.sealed)
            say(&r, OK, "store",
                "%s opened; its root key is %s (docs/operations.md): the audit chain is not "
                "checked here",
                boot.db_shown,
                boot.auto_unseal ? cf_boot_seal_holder(&boot) : "held by unseal shares");
        else
            say(&r, OK, "store", "%s opened; the root key matches it", boot.db_shown);
        check_database(&r, &boot);
        if (!boot.sealed)
            check_audit(&r, &boot, opts.data_dir);
        check_expiry(&r, &boot);
        check_jobs(&r, &boot);
        check_leaks(&r, &boot);
        cf_boot_close(&boot);
    }
    bool failed = r.failed > 0 || (strict && r.warned > 0);
    printf("%d failed, %d warnings%s\n", r.failed, r.warned,
           failed ? "" : ": this deployment looks healthy");
    return failed ? 1 : 0;
}
