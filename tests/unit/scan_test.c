/* Unit tests for src/scan: every built-in rule against examples of its shape (fake tokens made
 * here from a seeded generator, never real ones) and against near misses; the chunked reader
 * (matches across chunk boundaries on short and on very long lines, found once, at the right line
 * and column); binary input; known values in their raw, base64 (every alignment), base64url and
 * URL-encoded forms and the short ones left out; entropy, allow lists, keywords and the inline
 * allow mark; user rule files (YAML) and their errors; redaction, fingerprints and baselines; the
 * walk's order (largest file first). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <git2.h>
#include <sodium.h>

#include "scan/engine.h"
#include "scan/report.h"
#include "scan/rules.h"
#include "scan/walk.h"
#include "util/banned.h"

#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
#define UPPER32 "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
#define LOWER32 "abcdefghijklmnopqrstuvwxyz234567"
#define B64 ALNUM "+/"
#define B64URL ALNUM "-_"
#define HEX "0123456789abcdef"
#define DIGITS "0123456789"

/* A fixed-seed generator, so a failure repeats; printed by the failing assertion's text. */
static uint64_t rng_state;

static unsigned rnd(unsigned bound)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % bound);
}

/* Appends n characters drawn from alphabet to out (a NUL-terminated string). */
static void gen(char *out, const char *alphabet, size_t n)
{
    size_t len = strlen(out), k = strlen(alphabet);
    for (size_t i = 0; i < n; i++)
        out[len + i] = alphabet[rnd((unsigned)k)];
    out[len + n] = '\0';
}

static void cat(char *out, const char *text)
{
    memmove(out + strlen(out), text, strlen(text) + 1);
}

struct found {
    char rule[64];
    char secret[1200];
    char label[256];
    char encoding[16];
    uint64_t line, column, offset;
};

struct collect {
    struct found items[64];
    size_t count;
};

static enum cf_rc collect_hit(const struct cf_scan_hit *hit, void *ctx)
{
    struct collect *c = ctx;
    if (c->count >= 64)
        return CF_OK;
    struct found *f = &c->items[c->count++];
    snprintf(f->rule, sizeof(f->rule), "%s", hit->rule ? hit->rule->id : "known");
    snprintf(f->secret, sizeof(f->secret), "%.*s", (int)hit->secret_len, hit->secret);
    snprintf(f->label, sizeof(f->label), "%s", hit->known_label ? hit->known_label : "");
    snprintf(f->encoding, sizeof(f->encoding), "%s", hit->encoding ? hit->encoding : "");
    f->line = hit->line;
    f->column = hit->column;
    f->offset = hit->offset;
    return CF_OK;
}

static struct cf_scan_rules rules;
static struct cf_scan_engine *engine;
static struct cf_scanner *scanner;

static void setup_builtin(void)
{
    struct cf_err err = {0};
    cr_assert(sodium_init() >= 0);
    rng_state = 0x9e3779b97f4a7c15ULL;
    cr_assert_eq(cf_scan_rules_add_builtin(&rules, &err), CF_OK);
    cr_assert_eq(cf_scan_engine_new(&engine, &rules, NULL, 0, NULL, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_scanner_new(&scanner, engine, &err), CF_OK);
}

static void teardown_builtin(void)
{
    cf_scanner_free(scanner);
    cf_scan_engine_free(engine);
    cf_scan_rules_release(&rules);
    scanner = NULL;
    engine = NULL;
}

static void scan_text(const char *text, struct collect *c)
{
    struct cf_err err = {0};
    memset(c, 0, sizeof(*c));
    cr_assert_eq(cf_scanner_mem(scanner, text, strlen(text), collect_hit, c, &err), CF_OK, "%s",
                 err.msg);
}

static const struct found *find_rule(const struct collect *c, const char *rule)
{
    for (size_t i = 0; i < c->count; i++)
        if (strcmp(c->items[i].rule, rule) == 0)
            return &c->items[i];
    return NULL;
}

/* ---- built-in rules: each with examples of its shape and near misses ---------------------- */

/* Fills line with one example for rule (positive: a credential of the rule's shape, whose secret
 * part goes into secret; else a near miss). */
typedef void (*example_fn)(bool positive, char *line, char *secret);

static void ex_entra(bool positive, char *line, char *secret)
{
    secret[0] = '\0';
    gen(secret, ALNUM, 3);
    gen(secret, DIGITS, 1);
    cat(secret, positive ? "Q~" : "Q-");
    gen(secret, ALNUM "_~.-", 34);
    snprintf(line, 2048, "AZURE_CLIENT_SECRET: '%s'", secret);
}

static void ex_storage(bool positive, char *line, char *secret)
{
    secret[0] = '\0';
    gen(secret, B64, positive ? 86 : 40);
    cat(secret, "==");
    snprintf(line, 2048,
             "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=%s;EndpointSuffix="
             "core.windows.net",
             secret);
}

static void ex_sas(bool positive, char *line, char *secret)
{
    secret[0] = '\0';
    gen(secret, ALNUM, positive ? 40 : 12);
    cat(secret, "%2B");
    gen(secret, ALNUM, 2);
    cat(secret, "%3D");
    snprintf(line, 2048,
             "https://acct.blob.core.windows.net/c/f.txt?sv=2022-11-02&ss=b&sp=r&se=2030-01-"
             "01T00:00:00Z&spr=https&sig=%s",
             secret);
}

static void ex_ado(bool positive, char *line, char *secret)
{
    secret[0] = '\0';
    gen(secret, LOWER32, positive ? 52 : 40);
    snprintf(line, 2048, "AZURE_DEVOPS_PAT=%s", secret);
}

static void ex_ado2(bool positive, char *line, char *secret)
{
    secret[0] = '\0';
    gen(secret, ALNUM, 76);
    cat(secret, positive ? "AZDO" : "AZD0");
    gen(secret, ALNUM, 4);
    snprintf(line, 2048, "token: %s", secret);
}

static void ex_aws_id(bool positive, char *line, char *secret)
{
    snprintf(secret, 64, "AKIA");
    if (positive)
        gen(secret, UPPER32, 16);
    else
        cat(secret, "IOSFODNN7EXAMPLE"); /* the documentation's sample: allow-listed */
    snprintf(line, 2048, "aws_access_key_id = %s", secret);
}

static void ex_aws_secret(bool positive, char *line, char *secret)
{
    secret[0] = '\0';
    if (positive)
        gen(secret, B64, 40);
    else
        cat(secret, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"); /* no entropy */
    snprintf(line, 2048, "aws_secret_access_key = %s", secret);
}

static void ex_gcp_sa(bool positive, char *line, char *secret)
{
    secret[0] = '\0';
    gen(secret, HEX, positive ? 40 : 39);
    snprintf(line, 2048, "  \"type\": \"service_account\", \"private_key_id\": \"%s\",", secret);
}

static void ex_gcp_api(bool positive, char *line, char *secret)
{
    snprintf(secret, 64, "AIza");
    gen(secret, B64URL, positive ? 35 : 20);
    snprintf(line, 2048, "const key = '%s';", secret);
}

static void ex_github(bool positive, char *line, char *secret)
{
    snprintf(secret, 64, positive ? "ghp_" : "ghx_");
    gen(secret, ALNUM, 36);
    snprintf(line, 2048, "GITHUB_TOKEN=%s", secret);
}

static void ex_github_fg(bool positive, char *line, char *secret)
{
    snprintf(secret, 128, "github_pat_");
    gen(secret, ALNUM, 22);
    cat(secret, "_");
    gen(secret, ALNUM, positive ? 59 : 30);
    snprintf(line, 2048, "token: %s end", secret);
}

static void ex_gitlab(bool positive, char *line, char *secret)
{
    snprintf(secret, 64, "glpat-");
    gen(secret, B64URL, positive ? 20 : 12);
    snprintf(line, 2048, "GITLAB %s", secret);
}

static void ex_slack(bool positive, char *line, char *secret)
{
    snprintf(secret, 128, positive ? "xoxb-" : "xoxz-");
    gen(secret, DIGITS, 11);
    cat(secret, "-");
    gen(secret, DIGITS, 12);
    cat(secret, "-");
    gen(secret, ALNUM, 24);
    snprintf(line, 2048, "slack: %s", secret);
}

static void ex_slack_hook(bool positive, char *line, char *secret)
{
    snprintf(secret, 256, "https://hooks.slack.com/services/T");
    gen(secret, UPPER32, 9);
    cat(secret, "/B");
    gen(secret, UPPER32, 9);
    cat(secret, "/");
    gen(secret, ALNUM, positive ? 24 : 10);
    snprintf(line, 2048, "webhook_url: %s", secret);
}

static void ex_stripe(bool positive, char *line, char *secret)
{
    snprintf(secret, 128, positive ? "sk_live_" : "pk_live_");
    gen(secret, ALNUM, 24);
    snprintf(line, 2048, "Stripe.apiKey = \"%s\";", secret);
}

static void ex_pem(bool positive, char *line, char *secret)
{
    snprintf(secret, 128, "%s",
             positive ? "-----BEGIN OPENSSH PRIVATE KEY-----" : "-----BEGIN PUBLIC KEY-----");
    snprintf(line, 2048, "%s", secret);
}

static void ex_putty(bool positive, char *line, char *secret)
{
    snprintf(secret, 128, "%s",
             positive ? "PuTTY-User-Key-File-3: ssh-ed25519" : "PuTTY-User-Key-File: ssh");
    snprintf(line, 2048, "%s", secret);
}

static void ex_jwt(bool positive, char *line, char *secret)
{
    snprintf(secret, 512, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ");
    gen(secret, B64URL, 30);
    if (positive) {
        cat(secret, ".");
        gen(secret, B64URL, 43);
    }
    snprintf(line, 2048, "Authorization: Bearer %s", secret);
}

static void ex_conn_url(bool positive, char *line, char *secret)
{
    secret[0] = '\0';
    if (positive)
        gen(secret, ALNUM, 16);
    else
        cat(secret, "${DB_PASSWORD}");
    snprintf(line, 2048, "DATABASE_URL=postgres://app:%s@db.internal:5432/app", secret);
}

static void ex_conn(bool positive, char *line, char *secret)
{
    secret[0] = '\0';
    if (positive)
        gen(secret, ALNUM, 18);
    else
        cat(secret, "<password>");
    snprintf(line, 2048,
             "\"Server=tcp:db.example.net,1433;Initial Catalog=app;User ID=app;Password=%s;\"",
             secret);
}

static void ex_generic(bool positive, char *line, char *secret)
{
    secret[0] = '\0';
    if (positive)
        gen(secret, ALNUM, 20);
    else
        cat(secret, "hunter2hunter2"); /* a word: too little entropy */
    snprintf(line, 2048, "    db_password = \"%s\"", secret);
}

static void ex_dotenv(bool positive, char *line, char *secret)
{
    secret[0] = '\0';
    if (positive)
        gen(secret, ALNUM, 24);
    else
        cat(secret, "${API_TOKEN}");
    snprintf(line, 2048, "export API_TOKEN=%s", secret);
}

static void ex_coffer(bool positive, char *line, char *secret)
{
    snprintf(secret, 128, "cfadm_");
    gen(secret, B64URL, positive ? 43 : 20);
    snprintf(line, 2048, "COFFER_TOKEN=%s ", secret);
}

static void ex_coffer_user(bool positive, char *line, char *secret)
{
    snprintf(secret, 256, "coffer_pat_");
    gen(secret, HEX, 8);
    cat(secret, "-");
    gen(secret, HEX, 4);
    cat(secret, "-");
    gen(secret, HEX, 4);
    cat(secret, "-");
    gen(secret, HEX, 4);
    cat(secret, "-");
    gen(secret, HEX, 12);
    if (positive) {
        cat(secret, "_");
        gen(secret, B64URL, 43);
    }
    snprintf(line, 2048, "pat = %s", secret);
}

static const struct {
    const char *rule;
    example_fn fn;
} examples[] = {
    {"entra-client-secret", ex_entra},
    {"azure-storage-key", ex_storage},
    {"azure-sas-token", ex_sas},
    {"azure-devops-pat", ex_ado},
    {"azure-devops-pat-v2", ex_ado2},
    {"aws-access-key-id", ex_aws_id},
    {"aws-secret-access-key", ex_aws_secret},
    {"gcp-service-account-key", ex_gcp_sa},
    {"gcp-api-key", ex_gcp_api},
    {"github-token", ex_github},
    {"github-fine-grained-pat", ex_github_fg},
    {"gitlab-token", ex_gitlab},
    {"slack-token", ex_slack},
    {"slack-webhook", ex_slack_hook},
    {"stripe-key", ex_stripe},
    {"private-key", ex_pem},
    {"putty-private-key", ex_putty},
    {"jwt", ex_jwt},
    {"connection-string-url", ex_conn_url},
    {"connection-string", ex_conn},
    {"generic-password", ex_generic},
    {"dotenv-secret", ex_dotenv},
    {"coffer-token", ex_coffer},
    {"coffer-user-token", ex_coffer_user},
};
#define NEXAMPLES (sizeof(examples) / sizeof(examples[0]))

TestSuite(rules, .init = setup_builtin, .fini = teardown_builtin);

Test(rules, every_builtin_rule_has_examples)
{
    cr_assert_eq(rules.count, NEXAMPLES, "%zu built-in rules, %zu with examples", rules.count,
                 NEXAMPLES);
    for (size_t i = 0; i < NEXAMPLES; i++)
        cr_assert(cf_scan_rules_find(&rules, examples[i].rule) >= 0, "no rule '%s'",
                  examples[i].rule);
}

Test(rules, each_rule_finds_its_shape)
{
    static char line[2048], secret[1024];
    struct collect c;
    for (size_t i = 0; i < NEXAMPLES; i++) {
        for (int round = 0; round < 20; round++) {
            examples[i].fn(true, line, secret);
            scan_text(line, &c);
            const struct found *f = find_rule(&c, examples[i].rule);
            cr_assert(f, "rule '%s' missed: %s", examples[i].rule, line);
            cr_assert_str_eq(f->secret, secret, "rule '%s' took the wrong part of: %s",
                             examples[i].rule, line);
            cr_assert_eq(f->line, 1);
            cr_assert_eq(f->column, (uint64_t)(strstr(line, secret) - line) + 1, "%s: column",
                         examples[i].rule);
        }
    }
}

Test(rules, each_rule_leaves_its_near_misses)
{
    static char line[2048], secret[1024];
    struct collect c;
    for (size_t i = 0; i < NEXAMPLES; i++) {
        for (int round = 0; round < 20; round++) {
            examples[i].fn(false, line, secret);
            scan_text(line, &c);
            cr_assert_null(find_rule(&c, examples[i].rule), "rule '%s' matched a near miss: %s",
                           examples[i].rule, line);
        }
    }
}

Test(rules, ordinary_code_is_clean)
{
    struct collect c;
    scan_text("int main(void) { return password_check(get_password(), \"x\"); }\n"
              "password = os.environ[\"DB_PASSWORD\"]\n"
              "url = \"https://example.com/path?q=1\"\n"
              "sha = \"3f786850e387550fdab836ed7e6dc881de23001b\"\n"
              "AKIA is a prefix; ghp_ is too\n"
              "-----BEGIN CERTIFICATE-----\n",
              &c);
    cr_assert_eq(c.count, 0, "found '%s' in ordinary code", c.count ? c.items[0].rule : "");
}

Test(rules, inline_allow_mark_skips_the_line_only)
{
    static char text[8192], secret[1024], line[2048];
    struct collect c;
    ex_github(true, line, secret);
    snprintf(text, sizeof(text), "%s # coffer:allow\n%s\n", line, line);
    scan_text(text, &c);
    cr_assert_eq(c.count, 2, "the token and the assignment to GITHUB_TOKEN on line 2");
    cr_assert_eq(c.items[0].line, 2);
    cr_assert_eq(c.items[1].line, 2);
}

Test(rules, many_findings_on_one_line_each_once)
{
    static char text[8192], secret[1024], line[2048];
    struct collect c;
    text[0] = '\0';
    for (int i = 0; i < 5; i++) {
        ex_github(true, line, secret);
        cat(text, line);
        cat(text, " ");
    }
    scan_text(text, &c);
    cr_assert_eq(c.count, 5);
    for (size_t i = 1; i < c.count; i++)
        cr_assert_gt(c.items[i].offset, c.items[i - 1].offset);
}

/* The Hyperscan prefilters of the rules keyed on names start at those names (or, for the
 * connection strings, at the password's end of the rule): every form of name the full expression
 * takes (case, separators, the longer names containing a shorter one) and of the text between name
 * and value still reaches PCRE2. */
Test(rules, keyword_rules_find_every_form_of_their_names)
{
    static const struct {
        const char *rule;
        const char *before, *after; /* the text around the secret */
        const char *alphabet;
        size_t len;
    } forms[] = {
        {"azure-devops-pat", "ado_token: '", "'", LOWER32, 52},
        {"azure-devops-pat", "  AzureDevOps.Pat = \"", "\"", LOWER32, 52},
        {"azure-devops-pat", "azure-devops=", "", LOWER32, 52},
        {"azure-devops-pat", "VSTS_KEY : ", "", LOWER32, 52},
        {"azure-devops-pat", "SYSTEM_ACCESSTOKEN=", "", LOWER32, 52},
        {"azure-devops-pat", "system-accesstoken: \"", "\"", LOWER32, 52},
        {"azure-devops-pat", "pat=", "", LOWER32, 52},
        {"generic-password", "Passwd: \"", "\"", ALNUM, 20},
        {"generic-password", "PWD := '", "'", ALNUM, 20},
        {"generic-password", "client_secret => `", "`", ALNUM, 20},
        {"generic-password", "'Api-Key': '", "'", ALNUM, 20},
        {"generic-password", "apikey=\"", "\"", ALNUM, 20},
        {"generic-password", "ACCESS_KEY = \"", "\"", ALNUM, 20},
        {"generic-password", "authToken: \"", "\"", ALNUM, 20},
        {"generic-password", "refresh_token=\"", "\"", ALNUM, 20},
        {"dotenv-secret", "PASSWORD=", "", ALNUM, 24},
        {"dotenv-secret", "  export DB_PASSWD = ", " \t", ALNUM, 24},
        {"dotenv-secret", "AppSecret=", "", ALNUM, 24},
        {"dotenv-secret", "GITLAB_TOKEN_2=", "", ALNUM, 24},
        {"dotenv-secret", "STRIPE_APIKEY=", "", ALNUM, 24},
        {"dotenv-secret", "api_key=", "", ALNUM, 24},
        {"dotenv-secret", "SSH_PRIVATE_KEY=", "", ALNUM, 24},
        {"dotenv-secret", "privatekey=", "", ALNUM, 24},
        {"connection-string", "Server=db;Database=app;Pwd=", ";", ALNUM, 16},
        {"connection-string", "\"Data Source=db; User Id=app; PASSWORD = ", "\"", ALNUM, 16},
        {"connection-string", "host=db port=5432;password=", "", ALNUM, 16},
        {"connection-string-url", "mysql://root:", "@db.internal/app", ALNUM, 16},
        {"connection-string-url", "url: amqp+ssl://user:", "@[::1]:5671", ALNUM, 16},
        {"connection-string-url", "'redis://default:", "@10.0.0.7:6379'", ALNUM, 16},
    };
    static char line[2048], text[4096], secret[128];
    struct collect c;
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        secret[0] = '\0';
        gen(secret, forms[i].alphabet, forms[i].len);
        snprintf(line, sizeof(line), "%s%s%s", forms[i].before, secret, forms[i].after);
        /* alone, and as a line among others */
        for (int among = 0; among < 2; among++) {
            snprintf(text, sizeof(text), "%s%s\n%s", among ? "x = 1\n" : "", line,
                     among ? "y = 2\n" : "");
            scan_text(text, &c);
            const struct found *f = find_rule(&c, forms[i].rule);
            cr_assert(f, "rule '%s' missed: %s", forms[i].rule, line);
            cr_assert_str_eq(f->secret, secret, "rule '%s' took the wrong part of: %s",
                             forms[i].rule, line);
            cr_assert_eq(f->line, (uint64_t)(among ? 2 : 1), "%s", line);
        }
    }
    /* a dotenv value that does not end its line is not one (the rule's "$") */
    snprintf(line, sizeof(line), "API_TOKEN=");
    gen(line, ALNUM, 24);
    cat(line, " # rotated monthly\nTOKEN=");
    gen(line, ALNUM, 24);
    cat(line, "\"\n");
    scan_text(line, &c);
    cr_assert_null(find_rule(&c, "dotenv-secret"), "dotenv-secret matched: %s", line);
}

Test(rules, entropy)
{
    cr_assert_float_eq(cf_scan_entropy("aaaa", 4), 0.0, 1e-9);
    cr_assert_float_eq(cf_scan_entropy("abcd", 4), 2.0, 1e-9);
    cr_assert_float_eq(cf_scan_entropy("", 0), 0.0, 1e-9);
}

/* ---- the chunked reader ---------------------------------------------------------------------- */

/* Writes text to a pipe-backed temporary file and scans it from its descriptor. */
static void scan_file(const char *text, size_t len, size_t chunk, struct collect *c, bool *binary)
{
    struct cf_err err = {0};
    FILE *file = tmpfile();
    cr_assert(file);
    cr_assert_eq(fwrite(text, 1, len, file), len);
    fflush(file);
    rewind(file);
    memset(c, 0, sizeof(*c));
    cf_scanner_set_chunk(scanner, chunk);
    cr_assert_eq(
        cf_scanner_fd(scanner, fileno(file), "test", true, binary, NULL, collect_hit, c, &err),
        CF_OK, "%s", err.msg);
    fclose(file);
}

TestSuite(chunks, .init = setup_builtin, .fini = teardown_builtin);

/* A token placed at every offset around a chunk boundary is found once, on its line, at its column,
 * with short lines (the carry is the unfinished line) and on one long line (the carry is the
 * overlap). */
Test(chunks, match_across_boundaries_found_once)
{
    const size_t chunk = 3 * CF_SCAN_OVERLAP;
    const size_t size = 4 * chunk;
    char *text = malloc(size + 1);
    static char token[64];
    cr_assert(text);
    for (int long_line = 0; long_line < 2; long_line++) {
        for (size_t at = chunk - 50; at < chunk + 10; at += 3) {
            for (size_t i = 0; i < size; i++)
                text[i] = (!long_line && i % 61 == 60) ? '\n' : 'x';
            /* a separator before the token so that its left boundary holds */
            snprintf(token, sizeof(token), " ghp_");
            gen(token, ALNUM, 36);
            memcpy(text + at, token, strlen(token));
            if (!long_line)
                for (size_t i = at; i < at + strlen(token); i++)
                    cr_assert_neq(text[i], '\n');
            text[at + strlen(token)] = ' ';
            /* no newline may cut the token: move the newlines around it */
            struct collect c;
            bool binary = false;
            uint64_t want_line = 1, want_col;
            size_t bol = 0;
            for (size_t i = 0; i < at + 1; i++)
                if (text[i] == '\n') {
                    want_line++;
                    bol = i + 1;
                }
            want_col = at + 1 - bol + 1;
            scan_file(text, size, chunk, &c, &binary);
            size_t found = 0;
            for (size_t i = 0; i < c.count; i++)
                if (strcmp(c.items[i].rule, "github-token") == 0) {
                    found++;
                    cr_assert_str_eq(c.items[i].secret, token + 1);
                    cr_assert_eq(c.items[i].offset, at + 1);
                    cr_assert_eq(c.items[i].line, want_line, "line %llu, want %llu",
                                 (unsigned long long)c.items[i].line,
                                 (unsigned long long)want_line);
                    cr_assert_eq(c.items[i].column, want_col, "column %llu, want %llu (at %zu)",
                                 (unsigned long long)c.items[i].column,
                                 (unsigned long long)want_col, at);
                }
            cr_assert_eq(found, 1, "token at %zu (long line %d) found %zu times", at, long_line,
                         found);
        }
    }
    free(text);
}

/* Line numbers carried over many chunks: lines of every length from empty to several hundred
 * bytes and a run of empty lines (the newline counter's 16-byte blocks, its 255-block batches and
 * its tail), tokens on some
 * of them; each found at its line and column whatever the chunk size, as in memory. */
Test(chunks, line_numbers_carried_over_many_chunks)
{
    const size_t size = 300 * 1024;
    char *text = malloc(size + 1);
    static char token[64];
    size_t want_line[32], want_col[32], ntokens = 0, len = 0;
    uint64_t line = 1;
    cr_assert(text);
    /* first a run of empty lines: every byte counter of a batch at its maximum */
    for (; len < 5000; len++, line++)
        text[len] = '\n';
    while (len + 700 < size) {
        size_t n = rnd(9) == 0 ? 0 : rnd(rnd(8) == 0 ? 600 : 90);
        if (ntokens < 32 && rnd(97) == 0) {
            size_t col = rnd(40);
            memset(text + len, 'y', col);
            snprintf(token, sizeof(token), " ghp_");
            gen(token, ALNUM, 36);
            memcpy(text + len + col, token, strlen(token));
            want_line[ntokens] = line;
            want_col[ntokens] = col + 2;
            ntokens++;
            n = col + strlen(token);
        } else {
            memset(text + len, 'z', n);
        }
        len += n;
        text[len++] = '\n';
        line++;
    }
    text[len] = '\0';
    cr_assert_gt(ntokens, 10, "the generator placed %zu tokens", ntokens);
    const size_t chunks[] = {2 * CF_SCAN_OVERLAP, 3 * CF_SCAN_OVERLAP + 17, 64 * 1024, 0};
    for (size_t k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
        struct collect c;
        bool binary = false;
        if (chunks[k])
            scan_file(text, len, chunks[k], &c, &binary);
        else
            scan_text(text, &c);
        cr_assert_eq(c.count, ntokens, "chunk %zu: %zu findings for %zu tokens", chunks[k], c.count,
                     ntokens);
        for (size_t i = 0; i < ntokens; i++) {
            cr_assert_eq(c.items[i].line, want_line[i], "chunk %zu, token %zu: line %llu, want %zu",
                         chunks[k], i, (unsigned long long)c.items[i].line, want_line[i]);
            cr_assert_eq(c.items[i].column, want_col[i], "chunk %zu, token %zu: column %llu",
                         chunks[k], i, (unsigned long long)c.items[i].column);
        }
    }
    free(text);
}

Test(chunks, binary_input_is_skipped)
{
    static char text[256], secret[128], line[2048];
    struct collect c;
    bool binary = false;
    ex_github(true, line, secret);
    memset(text, 0, sizeof(text));
    memcpy(text + 10, line, strlen(line));
    scan_file(text, sizeof(text), CF_SCAN_CHUNK, &c, &binary);
    cr_assert(binary);
    cr_assert_eq(c.count, 0);
    /* the same bytes without the NUL are text and found */
    scan_file(line, strlen(line), CF_SCAN_CHUNK, &c, &binary);
    cr_assert_not(binary);
    cr_assert(find_rule(&c, "github-token"));
}

/* ---- the walk ------------------------------------------------------------------------------- */

TestSuite(walk);

static void write_sized(const char *dir, const char *name, size_t size)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *file = fopen(path, "wb");
    cr_assert(file, "cannot write %s", path);
    for (size_t i = 0; i < size; i++)
        fputc(i % 64 == 63 ? '\n' : 'a', file);
    fclose(file);
}

/* The files are listed largest first (so that the threads taking them in turn finish together),
 * a file named on the command line among them, each with its size, none lost or repeated. */
Test(walk, files_listed_largest_first)
{
    static const struct {
        const char *name;
        size_t size;
    } files[] = {{"small.txt", 10},      {"big.txt", 50000},        {"mid.txt", 3000},
                 {"empty.txt", 0},       {"sub/bigger.txt", 90000}, {"sub/tiny.txt", 1},
                 {"also-big.txt", 50000}};
    char dir[] = "/tmp/cf-scan-walk-XXXXXX", sub[64], named[64];
    struct cf_scan_paths paths = {0};
    struct cf_err err = {0};
    cr_assert(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    cr_assert_eq(mkdir(sub, 0700), 0);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        write_sized(dir, files[i].name, files[i].size);
    write_sized(dir, "named.txt", 70000);
    snprintf(named, sizeof(named), "%s/named.txt", dir);
    const char *roots[] = {sub, named, dir};
    git_libgit2_init();
    cr_assert_eq(cf_scan_walk(roots, 3, &paths, &err), CF_OK, "%s", err.msg);
    /* sub's two files twice (as sub and inside dir), the named file twice, dir's five */
    cr_assert_eq(paths.count, 2 + 1 + 8, "%zu files", paths.count);
    for (size_t i = 0; i < paths.count; i++) {
        struct stat st;
        cr_assert_eq(stat(paths.items[i], &st), 0, "%s", paths.items[i]);
        cr_assert_eq(paths.sizes[i], (uint64_t)st.st_size, "%s", paths.items[i]);
        if (i > 0)
            cr_assert_geq(paths.sizes[i - 1], paths.sizes[i], "%s before %s", paths.items[i - 1],
                          paths.items[i]);
    }
    cr_assert_eq(paths.sizes[0], 90000);
    cr_assert_eq(paths.sizes[paths.count - 1], 0);
    cf_scan_paths_release(&paths);
    git_libgit2_shutdown();
    char command[128];
    snprintf(command, sizeof(command), "rm -rf '%s'", dir);
    cr_assert_eq(system(command), 0);
}

/* ---- known values ---------------------------------------------------------------------------- */

TestSuite(known, .init = setup_builtin, .fini = teardown_builtin);

Test(known, every_encoding_and_alignment)
{
    static const char value[] = "s3cr3t:value/with+specials";
    struct cf_scan_known known[] = {{value, strlen(value), "payments/prod/db/DB_PASSWORD"},
                                    {"short", 5, "payments/prod/SHORT"}};
    struct cf_scan_engine *kengine = NULL;
    struct cf_scanner *kscanner = NULL;
    struct cf_scan_rules none = {0};
    struct cf_err err = {0};
    size_t skipped = 0;
    cr_assert_eq(cf_scan_engine_new(&kengine, &none, known, 2, &skipped, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_eq(skipped, 1, "the 5-byte value is skipped and counted");
    cr_assert_eq(cf_scanner_new(&kscanner, kengine, &err), CF_OK);

    const char *encodings[] = {"raw", "url", "base64", "base64url"};
    for (size_t e = 0; e < 4; e++) {
        for (size_t prefix = 0; prefix < 3; prefix++) {
            unsigned char data[128];
            char text[600], encoded[512];
            memcpy(data, "ab", prefix);
            memcpy(data + prefix, value, strlen(value));
            memcpy(data + prefix + strlen(value), "!?", 2);
            size_t dlen = prefix + strlen(value) + 2;
            if (e == 0)
                snprintf(encoded, sizeof(encoded), "%.*s", (int)dlen, (const char *)data);
            else if (e == 1) {
                encoded[0] = '\0';
                for (size_t i = 0; i < dlen; i++) {
                    char part[4];
                    unsigned char ch = data[i];
                    bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                                 (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
                                 ch == '~';
                    snprintf(part, sizeof(part), plain ? "%c" : "%%%02X", ch);
                    cat(encoded, part);
                }
            } else
                sodium_bin2base64(encoded, sizeof(encoded), data, dlen,
                                  e == 2 ? sodium_base64_VARIANT_ORIGINAL
                                         : sodium_base64_VARIANT_URLSAFE);
            snprintf(text, sizeof(text), "line one\nvalue: %s\n", encoded);
            struct collect c = {0};
            cr_assert_eq(cf_scanner_mem(kscanner, text, strlen(text), collect_hit, &c, &err),
                         CF_OK);
            bool hit = false;
            for (size_t i = 0; i < c.count; i++) {
                cr_assert_str_eq(c.items[i].label, "payments/prod/db/DB_PASSWORD");
                cr_assert_eq(c.items[i].line, 2);
                if (strcmp(c.items[i].encoding, encodings[e]) == 0 ||
                    (e == 3 && strcmp(c.items[i].encoding, "base64") == 0))
                    hit = true;
            }
            cr_assert(hit, "%s at alignment %zu not found in %s", encodings[e], prefix, text);
        }
    }
    struct collect c = {0};
    cr_assert_eq(cf_scanner_mem(kscanner, "short short value", 17, collect_hit, &c, &err), CF_OK);
    cr_assert_eq(c.count, 0);
    cf_scanner_free(kscanner);
    cf_scan_engine_free(kengine);
}

/* ---- user rules ------------------------------------------------------------------------------ */

static char *write_temp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/scan_test_XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

TestSuite(yaml, .init = setup_builtin, .fini = teardown_builtin);

Test(yaml, user_rule_with_keywords_entropy_and_allowlist)
{
    struct cf_scan_rules user = {0};
    struct cf_scan_engine *e = NULL;
    struct cf_scanner *s = NULL;
    struct cf_err err = {0};
    char *path = write_temp("rules:\n"
                            "  - id: acme-key\n"
                            "    description: ACME API key\n"
                            "    regex: 'acme_([a-z0-9]{16})'\n"
                            "    keywords: [Vendor]\n"
                            "    entropy: 2.5\n"
                            "    allowlist: ['^0+$', 'example']\n"
                            "    path: '\\.env$'\n");
    cr_assert_eq(cf_scan_rules_load_yaml(&user, path, &err), CF_OK, "%s", err.msg);
    unlink(path);
    cr_assert_eq(user.count, 1);
    cr_assert_str_eq(user.items[0].keywords[0], "vendor");
    cr_assert_str_eq(user.items[0].path, "\\.env$");
    cr_assert_eq(cf_scan_engine_new(&e, &user, NULL, 0, NULL, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_scanner_new(&s, e, &err), CF_OK);
    struct {
        const char *text;
        size_t want;
    } cases[] = {
        {"VENDOR: acme_k3j4h5g6f7d8s9a1\n", 1}, /* keyword in any case */
        {"key: acme_k3j4h5g6f7d8s9a1\n", 0},    /* no keyword on the line */
        {"vendor acme_0000000000000000\n", 0},  /* allow-listed */
        {"vendor acme_aaaaaaaaaaaaaaaa\n", 0},  /* entropy too low */
        {"vendor acme_exampleab12cd34e\n", 0},  /* allow list matches a part */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct collect c = {0};
        cr_assert_eq(cf_scanner_mem(s, cases[i].text, strlen(cases[i].text), collect_hit, &c, &err),
                     CF_OK);
        cr_assert_eq(c.count, cases[i].want, "case %zu: %s", i, cases[i].text);
    }
    cf_scanner_free(s);
    cf_scan_engine_free(e);
    cf_scan_rules_release(&user);
}

Test(yaml, same_id_replaces_a_builtin_rule)
{
    struct cf_err err = {0};
    size_t before = rules.count;
    char *path = write_temp("rules:\n  - id: github-token\n    regex: 'ghp_never'\n");
    cr_assert_eq(cf_scan_rules_load_yaml(&rules, path, &err), CF_OK, "%s", err.msg);
    unlink(path);
    cr_assert_eq(rules.count, before);
    cr_assert_str_eq(rules.items[cf_scan_rules_find(&rules, "github-token")].regex, "ghp_never");
}

Test(yaml, bad_files_are_refused_naming_the_problem)
{
    struct {
        const char *text;
        const char *words;
    } cases[] = {
        {"rules: [", "line"},
        {"- a\n- b\n", "mapping with a 'rules' list"},
        {"rules: {}\n", "'rules' must be a list"},
        {"rules:\n  - regex: x\n", "no 'id'"},
        {"rules:\n  - id: a\n", "rule 'a' has no 'regex'"},
        {"rules:\n  - id: 'a b'\n    regex: x\n", "letters, digits"},
        {"rules:\n  - id: a\n    regex: x\n    colour: red\n", "unknown key 'colour'"},
        {"rules:\n  - id: a\n    regex: x\n    entropy: nine\n", "'entropy' must be a number"},
        {"rules:\n  - id: a\n    regex: x\n    entropy: 9\n", "'entropy' must be a number"},
        {"rules:\n  - id: a\n    regex: x\n    keywords: k\n", "'keywords' must be a list"},
        {"rules:\n  - id: a\n    regex: x\n    allowlist: [[1]]\n", "'allowlist' must be a list"},
        {"other: 1\n", "unknown top-level key"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cf_scan_rules user = {0};
        struct cf_err err = {0};
        char *path = write_temp(cases[i].text);
        cr_assert_eq(cf_scan_rules_load_yaml(&user, path, &err), CF_EINVAL, "case %zu accepted", i);
        cr_assert(strstr(err.msg, cases[i].words), "case %zu: '%s' lacks '%s'", i, err.msg,
                  cases[i].words);
        cr_assert(strstr(err.msg, path), "case %zu: '%s' does not name the file", i, err.msg);
        unlink(path);
        cf_scan_rules_release(&user);
    }
    struct cf_scan_rules user = {0};
    struct cf_err err = {0};
    cr_assert_eq(cf_scan_rules_load_yaml(&user, "/nonexistent/rules.yaml", &err), CF_EIO);
}

Test(yaml, a_regex_that_does_not_compile_names_the_rule)
{
    struct cf_scan_rules user = {0};
    struct cf_scan_engine *e = NULL;
    struct cf_err err = {0};
    char *path = write_temp("rules:\n  - id: broken\n    regex: 'a(b'\n");
    cr_assert_eq(cf_scan_rules_load_yaml(&user, path, &err), CF_OK);
    unlink(path);
    cr_assert_eq(cf_scan_engine_new(&e, &user, NULL, 0, NULL, &err), CF_EINVAL);
    cr_assert(strstr(err.msg, "rule 'broken'"), "%s", err.msg);
    cf_scan_rules_release(&user);
}

/* ---- report ---------------------------------------------------------------------------------- */

TestSuite(report, .init = setup_builtin, .fini = teardown_builtin);

Test(report, redaction_shows_two_characters_each_side)
{
    char out[32];
    cf_scan_redact("ghp_abcdefghijklmnopqrstuvwxyz0123456789", 40, out, sizeof(out));
    cr_assert_str_eq(out, "gh...89");
    cf_scan_redact("short", 5, out, sizeof(out));
    cr_assert_str_eq(out, "****");
    cf_scan_redact("\x01\x02middle\x7f\x80", 10, out, sizeof(out));
    cr_assert_str_eq(out, "??...??");
}

Test(report, fingerprint_depends_on_rule_path_and_secret)
{
    char a[CF_SCAN_FINGERPRINT_LEN], b[CF_SCAN_FINGERPRINT_LEN];
    cf_scan_fingerprint("r", "p", "secret", 6, a);
    cf_scan_fingerprint("r", "p", "secret", 6, b);
    cr_assert_str_eq(a, b);
    cf_scan_fingerprint("r", "q", "secret", 6, b);
    cr_assert_str_neq(a, b);
    cf_scan_fingerprint("r2", "p", "secret", 6, b);
    cr_assert_str_neq(a, b);
    cf_scan_fingerprint("r", "p", "secreT", 6, b);
    cr_assert_str_neq(a, b);
    cr_assert_eq(strlen(a), 32);
}

Test(report, baseline_accepts_exactly_its_findings)
{
    struct cf_scan_report report;
    struct cf_err err = {0};
    char fp[CF_SCAN_FINGERPRINT_LEN], json[256];
    const struct cf_scan_rule *rule = &rules.items[cf_scan_rules_find(&rules, "github-token")];
    struct cf_scan_hit hit = {rule, NULL, NULL, 1, 1, 0, "ghp_one", 7};
    cf_scan_fingerprint(rule->id, "a.txt", "ghp_one", 7, fp);
    snprintf(json, sizeof(json), "{\"findings\": [{\"fingerprint\": \"%s\"}]}", fp);
    char *path = write_temp(json);
    cr_assert_eq(cf_scan_report_init(&report, &err), CF_OK);
    cr_assert_eq(cf_scan_report_load_baseline(&report, path, &err), CF_OK, "%s", err.msg);
    unlink(path);
    cr_assert_eq(cf_scan_report_add(&report, &hit, "a.txt", NULL), CF_OK);
    cr_assert_eq(report.count, 0);
    cr_assert_eq(report.baselined, 1);
    cr_assert_eq(cf_scan_report_add(&report, &hit, "b.txt", NULL), CF_OK);
    cr_assert_eq(report.count, 1);
    cr_assert_str_eq(report.items[0].path, "b.txt");
    cr_assert_str_eq(report.items[0].redacted, "****");
    cf_scan_report_release(&report);

    const char *bad[] = {"not json", "{}", "{\"findings\": [{}]}"};
    for (size_t i = 0; i < 3; i++) {
        path = write_temp(bad[i]);
        cr_assert_eq(cf_scan_report_init(&report, &err), CF_OK);
        cr_assert_eq(cf_scan_report_load_baseline(&report, path, &err), CF_EINVAL, "%s", bad[i]);
        cr_assert(strstr(err.msg, path));
        unlink(path);
        cf_scan_report_release(&report);
    }
}

/* A generic rule's finding of the same secret as a shape rule is dropped; apart, both stay. */
Test(report, generic_finding_under_a_shape_finding_is_dropped)
{
    struct cf_scan_report report;
    struct cf_err err = {0};
    const struct cf_scan_rule *shape = &rules.items[cf_scan_rules_find(&rules, "github-token")];
    const struct cf_scan_rule *generic = &rules.items[cf_scan_rules_find(&rules, "dotenv-secret")];
    cr_assert(generic->generic);
    cr_assert_not(shape->generic);
    struct cf_scan_hit hits[] = {
        {generic, NULL, NULL, 3, 14, 40, "ghp_aaaaaaaaaaaaaaaa", 20},
        {shape, NULL, NULL, 3, 14, 40, "ghp_aaaaaaaaaaaaaaaa", 20},
        {generic, NULL, NULL, 3, 70, 96, "zzzzzzzzzzzzzzzzzzzz", 20},
        {generic, NULL, NULL, 4, 1, 140, "yyyyyyyyyyyyyyyyyyyy", 20},
    };
    cr_assert_eq(cf_scan_report_init(&report, &err), CF_OK);
    for (size_t i = 0; i < 4; i++)
        cr_assert_eq(cf_scan_report_add(&report, &hits[i], "x.env", NULL), CF_OK);
    cf_scan_report_finish(&report);
    cr_assert_eq(report.count, 3);
    cr_assert_str_eq(report.items[0].rule_id, "github-token");
    cr_assert_eq(report.items[1].column, 70);
    cr_assert_eq(report.items[2].line, 4);
    cf_scan_report_release(&report);
}
