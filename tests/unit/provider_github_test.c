/* The GitHub sync destination (provider/github.c) against the stand-in tests/fakes/github.py, which
 * opens each sealed box with its private key so that the values that arrived can be compared: App
 * JWTs and installation tokens (and their cache), fine-grained tokens, repository and environment
 * secrets, deletes, pagination, throttling, and the precise errors, none holding a secret. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include "net/http.h"
#include "provider/github.h"
#include "util/banned.h"

static pid_t fake_pid;
static char base[64];
static char *app_pem; /* the App's private key */
static char *app_pub; /* and its public key, registered with the fake */
static struct cf_github_cache *cache;

/* A BIO's bytes as a C string (not strndup: the BIO's memory has no terminating NUL, which strict
 * ASan string checks flag). */
static char *bio_text(BIO *b)
{
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *out = malloc((size_t)n + 1);
    cr_assert_not_null(out);
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    return out;
}

static void rsa_pair(char **priv, char **pub)
{
    EVP_PKEY *key = EVP_RSA_gen(
        1024) /* small: fast to make, and size does not matter to the code under test */;
    BIO *b1 = BIO_new(BIO_s_mem()), *b2 = BIO_new(BIO_s_mem());
    cr_assert_not_null(key);
    cr_assert_eq(PEM_write_bio_PrivateKey(b1, key, NULL, NULL, 0, NULL, NULL), 1);
    cr_assert_eq(PEM_write_bio_PUBKEY(b2, key), 1);
    *priv = bio_text(b1);
    *pub = bio_text(b2);
    BIO_free(b1);
    BIO_free(b2);
    EVP_PKEY_free(key);
}

/* A control or API call to the fake: the answer's JSON (NULL for none), status in *status. */
static json_t *fake(const char *method, const char *path, json_t *body, long *status)
{
    char url[256];
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    const char *headers[] = {"Content-Type: application/json", NULL};
    struct cf_http_response resp;
    struct cf_err err;
    snprintf(url, sizeof(url), "%s%s", base, path);
    struct cf_http_request req = {
        .net = {.url = url}, .method = method, .body = text, .headers = headers};
    cr_assert_eq(cf_http_perform(&req, &resp, &err), CF_OK, "%s", err.msg);
    json_t *doc = resp.body ? json_loadb(resp.body, resp.len, 0, NULL) : NULL;
    if (status)
        *status = resp.status;
    cf_http_response_release(&resp);
    free(text);
    json_decref(body);
    return doc;
}

static void fake_ok(const char *method, const char *path, json_t *body)
{
    long status;
    json_decref(fake(method, path, body, &status));
    cr_assert(status == 200 || status == 201, "%s %s: %ld", method, path, status);
}

static void start(void)
{
    int fds[2];
    char line[32] = "";
    cr_assert_eq(pipe(fds), 0);
    fake_pid = fork();
    cr_assert_geq(fake_pid, 0);
    if (fake_pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execl(CF_PYTHON, CF_PYTHON, CF_FAKES_DIR "/github.py", "--port", "0", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    cr_assert_not_null(fgets(line, sizeof(line), in), "the GitHub stand-in did not start");
    fclose(in);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", (int)strtol(line, NULL, 10));
    rsa_pair(&app_pem, &app_pub);
    cache = cf_github_cache_new();
    fake_ok("POST", "/_fake/repos",
            json_pack("{sssss[s]}", "owner", "acme", "repo", "web", "environments", "prod env"));
    fake_ok("POST", "/_fake/repos", json_pack("{ssss}", "owner", "acme", "repo", "other"));
}

static void stop(void)
{
    if (fake_pid > 0) {
        kill(fake_pid, SIGTERM);
        waitpid(fake_pid, NULL, 0);
    }
    cf_github_cache_free(cache);
    free(app_pem);
    free(app_pub);
}

TestSuite(provider_github, .init = start, .fini = stop, .timeout = 30);

/* Registers App 4242 with installation 77 on acme/web with the given permissions and token TTL. */
static void register_app(const char *public_key, json_t *permissions, int ttl)
{
    fake_ok("POST", "/_fake/apps",
            json_pack("{sssss[{sisos[s]si}]}", "appId", "4242", "publicKey", public_key,
                      "installations", "id", 77, "permissions", permissions, "repositories",
                      "acme/web", "tokenTtl", ttl));
}

static json_t *write_permissions(void)
{
    return json_pack("{ssssss}", "secrets", "write", "environments", "write", "metadata", "read");
}

static struct cf_provider_conn app_conn(json_t **creds)
{
    *creds = json_pack("{sssssiss}", "appId", "4242", "privateKey", app_pem, "installationId", 77,
                       "host", base);
    return (struct cf_provider_conn){
        .app = "github", .method = "app", .credentials = *creds, .github = cache};
}

static char *new_pat(json_t *permissions, const char *repo, int expires_in)
{
    json_t *req = json_pack("{sos[s]}", "permissions", permissions, "repositories", repo);
    if (expires_in > 0)
        json_object_set_new(req, "expiresIn", json_integer(expires_in));
    json_t *answer = fake("POST", "/_fake/pats", req, NULL);
    char *token = strdup(json_string_value(json_object_get(answer, "token")));
    json_decref(answer);
    return token;
}

static struct cf_provider_conn pat_conn(const char *token, json_t **creds)
{
    *creds = json_pack("{ssss}", "personalAccessToken", token, "host", base);
    return (struct cf_provider_conn){
        .app = "github", .method = "personal-access-token", .credentials = *creds};
}

static json_t *repo_config(void)
{
    return json_pack("{ssssss}", "scope", "repository", "owner", "acme", "repo", "web");
}

/* The plaintext the fake holds for name (NULL: none); free it. */
static char *stored(const char *name, const char *env)
{
    char path[128];
    snprintf(path, sizeof(path), "/_fake/secrets?owner=acme&repo=web%s%s", env ? "&env=" : "",
             env ? env : "");
    json_t *all = fake("GET", path, NULL, NULL);
    const char *v = json_string_value(json_object_get(json_object_get(all, name), "value"));
    char *copy = v ? strdup(v) : NULL;
    json_decref(all);
    return copy;
}

/* The request log as one string, and the number of entries matching method, a path fragment and a
 * status (0: any). */
static char *log_text(void)
{
    json_t *log = fake("GET", "/_fake/log", NULL, NULL);
    char *text = json_dumps(log, JSON_COMPACT);
    json_decref(log);
    return text;
}

static int log_count(const char *method, const char *fragment, long status)
{
    json_t *log = fake("GET", "/_fake/log", NULL, NULL);
    size_t i;
    json_t *e;
    int n = 0;
    json_array_foreach(log, i, e)
    {
        const char *m = json_string_value(json_object_get(e, "method"));
        const char *p = json_string_value(json_object_get(e, "path"));
        long s = (long)json_integer_value(json_object_get(e, "status"));
        n += strcmp(m, method) == 0 && strstr(p, fragment) && (!status || s == status);
    }
    json_decref(log);
    return n;
}

static int minted(void)
{
    json_t *t = fake("GET", "/_fake/tokens", NULL, NULL);
    int n = (int)json_integer_value(json_object_get(t, "minted"));
    json_decref(t);
    return n;
}

#define V(text) .value = text, .value_len = sizeof(text) - 1

static const struct cf_sync_item two[] = {
    {.name = "DB_PASSWORD", V("s3cr3t-\xc3\xa9-one\nline two")},
    {.name = "API_KEY", V("s3cr3t-two 'quoted' \"x\"")},
};

Test(provider_github, app_push_creates_updates_caches_token)
{
    json_t *creds, *cfg = repo_config();
    struct cf_err err;
    register_app(app_pub, write_permissions(), 3600);
    struct cf_provider_conn conn = app_conn(&creds);
    const struct cf_dest_ops *ops = cf_dest_find("github");
    cr_assert_eq(ops->config_check(cfg, &err), CF_OK, "%s", err.msg);

    cr_assert_eq(ops->push(&conn, cfg, two, 2, NULL, 0, &err), CF_OK, "%s", err.msg);
    for (size_t i = 0; i < 2; i++) {
        char *v = stored(two[i].name, NULL);
        cr_assert_not_null(v, "%s did not arrive", two[i].name);
        cr_assert_str_eq(v, two[i].value);
        free(v);
    }
    cr_assert_eq(log_count("PUT", "/repos/acme/web/actions/secrets/", 201), 2);

    const struct cf_sync_item changed = {.name = "API_KEY", V("s3cr3t-changed")};
    cr_assert_eq(ops->push(&conn, cfg, &changed, 1, NULL, 0, &err), CF_OK, "%s", err.msg);
    char *v = stored("API_KEY", NULL);
    cr_assert_str_eq(v, "s3cr3t-changed");
    free(v);
    cr_assert_eq(log_count("PUT", "/actions/secrets/API_KEY", 204), 1);
    /* one installation token served both pushes */
    cr_assert_eq(minted(), 1);
    cr_assert_eq(log_count("POST", "/app/installations/77/access_tokens", 201), 1);

    /* the documented headers went out, and the log holds hashes, never a value */
    json_t *log = fake("GET", "/_fake/log", NULL, NULL);
    json_t *put = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(log, i, e)
    {
        json_t *h = json_object_get(e, "headers");
        cr_assert_str_eq(json_string_value(json_object_get(h, "accept")),
                         "application/vnd.github+json");
        cr_assert_str_eq(json_string_value(json_object_get(h, "x-github-api-version")),
                         "2022-11-28");
        cr_assert_not_null(json_string_value(json_object_get(h, "user-agent")));
        if (strcmp(json_string_value(json_object_get(e, "method")), "PUT") == 0 && !put)
            put = json_object_get(e, "body");
    }
    unsigned char digest[crypto_hash_sha256_BYTES];
    char hex[sizeof(digest) * 2 + 1];
    crypto_hash_sha256(digest, (const unsigned char *)two[0].value, two[0].value_len);
    sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
    cr_assert_str_eq(json_string_value(json_object_get(put, "value_sha256")), hex);
    json_decref(log);
    char *text = log_text();
    cr_assert_null(strstr(text, "s3cr3t"), "a value reached the log");
    free(text);
    json_decref(cfg);
    json_decref(creds);
}

Test(provider_github, token_renewed_within_margin)
{
    json_t *creds, *cfg = repo_config();
    struct cf_err err;
    /* a token that lives less than the 5-minute margin is never reused */
    register_app(app_pub, write_permissions(), CF_GITHUB_TOKEN_MARGIN_S - 10);
    struct cf_provider_conn conn = app_conn(&creds);
    const struct cf_dest_ops *ops = cf_dest_find("github");
    cr_assert_eq(ops->push(&conn, cfg, two, 1, NULL, 0, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(ops->push(&conn, cfg, two, 1, NULL, 0, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(minted(), 2);
    /* no cache: a token per call */
    conn.github = NULL;
    cr_assert_eq(ops->push(&conn, cfg, two, 1, NULL, 0, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(minted(), 3);
    json_decref(cfg);
    json_decref(creds);
}

Test(provider_github, pat_list_and_delete)
{
    json_t *creds, *cfg = repo_config();
    struct cf_err err;
    struct cf_dest_list l = {0};
    char *token = new_pat(json_pack("{ss}", "secrets", "write"), "acme/web", 0);
    struct cf_provider_conn conn = pat_conn(token, &creds);
    const struct cf_dest_ops *ops = cf_dest_find("github");
    const struct cf_sync_item three[] = {two[0], two[1], {.name = "lower_case", V("s3cr3t-3")}};
    cr_assert_eq(ops->push(&conn, cfg, three, 3, NULL, 0, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(ops->list(&conn, cfg, &l, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(l.n, 3);
    bool upper = false;
    for (size_t i = 0; i < l.n; i++) {
        cr_assert_null(l.items[i].value);
        cr_assert_gt(l.items[i].updated_at, 1700000000000LL);
        upper |= strcmp(l.items[i].name, "LOWER_CASE") == 0; /* GitHub upper-cases names */
    }
    cr_assert(upper);
    cf_dest_list_release(&l);

    const char *remove[] = {"API_KEY", "NEVER_EXISTED"};
    cr_assert_eq(ops->push(&conn, cfg, NULL, 0, remove, 2, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(log_count("DELETE", "/actions/secrets/API_KEY", 204), 1);
    cr_assert_eq(log_count("DELETE", "/actions/secrets/NEVER_EXISTED", 404), 1);
    char *gone = stored("API_KEY", NULL);
    cr_assert_null(gone);
    cr_assert_eq(ops->list(&conn, cfg, &l, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(l.n, 2);
    cf_dest_list_release(&l);
    cr_assert_eq(minted(), 0);
    free(token);
    json_decref(cfg);
    json_decref(creds);
}

Test(provider_github, environment_secrets)
{
    json_t *creds;
    struct cf_err err;
    register_app(app_pub, write_permissions(), 3600);
    struct cf_provider_conn conn = app_conn(&creds);
    const struct cf_dest_ops *ops = cf_dest_find("github");
    json_t *cfg = json_pack("{ssssssss}", "scope", "repository-environment", "owner", "acme",
                            "repo", "web", "env", "prod env");
    cr_assert_eq(ops->config_check(cfg, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(ops->push(&conn, cfg, two, 2, NULL, 0, &err), CF_OK, "%s", err.msg);
    char *v = stored("DB_PASSWORD", "prod%20env");
    cr_assert_not_null(v);
    cr_assert_str_eq(v, two[0].value);
    free(v);
    cr_assert_null(stored("DB_PASSWORD", NULL), "a repository secret was written");
    cr_assert_eq(
        log_count("GET", "/repos/acme/web/environments/prod%20env/secrets/public-key", 200), 1);
    struct cf_dest_list l = {0};
    cr_assert_eq(ops->list(&conn, cfg, &l, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(l.n, 2);
    cf_dest_list_release(&l);

    /* an environment the repository lacks */
    json_object_set_new(cfg, "env", json_string("staging"));
    cr_assert_eq(ops->push(&conn, cfg, two, 1, NULL, 0, &err), CF_ENOTFOUND);
    cr_assert_not_null(strstr(err.msg, "environment 'staging' of 'acme/web'"), "%s", err.msg);
    json_decref(cfg);
    json_decref(creds);
}

Test(provider_github, list_follows_pages)
{
    json_t *creds, *cfg = repo_config();
    struct cf_err err;
    struct cf_dest_list l = {0};
    for (int i = 0; i < 105; i++) {
        char name[32];
        snprintf(name, sizeof(name), "SEEDED_%03d", i);
        fake_ok(
            "POST", "/_fake/secrets",
            json_pack("{ssssssss}", "owner", "acme", "repo", "web", "name", name, "value", "x"));
    }
    char *token = new_pat(json_pack("{ss}", "secrets", "read"), "acme/web", 0);
    struct cf_provider_conn conn = pat_conn(token, &creds);
    cr_assert_eq(cf_dest_find("github")->list(&conn, cfg, &l, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(l.n, 105);
    cr_assert_str_eq(l.items[104].name, "SEEDED_104");
    cr_assert_eq(log_count("GET", "/repos/acme/web/actions/secrets", 200), 2);
    cf_dest_list_release(&l);
    free(token);
    json_decref(cfg);
    json_decref(creds);
}

Test(provider_github, bad_jwt_is_401_with_github_message)
{
    char *other_priv, *other_pub;
    json_t *creds, *cfg = repo_config();
    struct cf_err err;
    rsa_pair(&other_priv, &other_pub);
    /* GitHub holds another key than the one Coffer signs with */
    register_app(other_pub, write_permissions(), 3600);
    struct cf_provider_conn conn = app_conn(&creds);
    cr_assert_eq(cf_dest_find("github")->push(&conn, cfg, two, 2, NULL, 0, &err), CF_EUNAUTH);
    cr_assert_str_eq(err.msg,
                     "GitHub refused the app's JWT (401: A JSON web token could not be decoded)");
    cr_assert_eq(log_count("POST", "/app/installations/77/access_tokens", 401), 1);
    cr_assert_eq(log_count("PUT", "/secrets/", 0), 0);
    json_t *report = NULL;
    cr_assert_eq(cf_provider_check(&conn, &report, &err), CF_EUNAUTH);
    cr_assert_null(report);
    free(other_priv);
    free(other_pub);
    json_decref(cfg);
    json_decref(creds);
}

Test(provider_github, missing_permission_is_named)
{
    json_t *creds, *cfg = repo_config();
    struct cf_err err;
    register_app(app_pub, json_pack("{ss}", "secrets", "read"), 3600);
    struct cf_provider_conn conn = app_conn(&creds);
    cr_assert_eq(cf_dest_find("github")->push(&conn, cfg, two, 2, NULL, 0, &err), CF_EFORBIDDEN);
    cr_assert_str_eq(err.msg, "the installation lacks permission secrets: write for secret "
                              "'DB_PASSWORD' in repository 'acme/web' (403 Resource not "
                              "accessible by integration)");
    cr_assert_null(strstr(err.msg, "s3cr3t"));
    /* a token for another repository sees nothing */
    char *token = new_pat(json_pack("{ss}", "secrets", "write"), "acme/other", 0);
    json_t *pcreds;
    struct cf_provider_conn pconn = pat_conn(token, &pcreds);
    cr_assert_eq(cf_dest_find("github")->push(&pconn, cfg, two, 1, NULL, 0, &err), CF_ENOTFOUND);
    cr_assert_str_eq(err.msg, "GitHub has no repository 'acme/web' that the personal access token "
                              "can see (404: Not Found)");
    free(token);
    json_decref(pcreds);
    json_decref(cfg);
    json_decref(creds);
}

Test(provider_github, revoked_and_expired_tokens)
{
    json_t *creds, *cfg = repo_config();
    struct cf_err err;
    char *token = new_pat(json_pack("{ss}", "secrets", "write"), "acme/web", 3600);
    struct cf_provider_conn conn = pat_conn(token, &creds);
    fake_ok("POST", "/_fake/expire", json_pack("{ss}", "token", token));
    cr_assert_eq(cf_dest_find("github")->push(&conn, cfg, two, 1, NULL, 0, &err), CF_EUNAUTH);
    cr_assert_str_eq(err.msg, "GitHub refused the personal access token (401: Bad credentials)");
    cr_assert_null(strstr(err.msg, token));
    free(token);
    json_decref(cfg);
    json_decref(creds);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(provider_github, secondary_limits_wait_retry_after)
{
    json_t *creds, *cfg = repo_config();
    struct cf_err err;
    char *token = new_pat(json_pack("{ss}", "secrets", "write"), "acme/web", 0);
    struct cf_provider_conn conn = pat_conn(token, &creds);
    const struct cf_dest_ops *ops = cf_dest_find("github");
    const long statuses[] = {429, 403};
    for (size_t i = 0; i < 2; i++) {
        fake_ok("POST", "/_fake/throttle",
                json_pack("{sisisi}", "count", 1, "status", (int)statuses[i], "retryAfter", 1));
        double t0 = now_s();
        cr_assert_eq(ops->push(&conn, cfg, two, 1, NULL, 0, &err), CF_OK, "%ld: %s", statuses[i],
                     err.msg);
        cr_assert_geq(now_s() - t0, 0.95, "%ld: Retry-After not honoured", statuses[i]);
        cr_assert_eq(log_count("GET", "/public-key", statuses[i]), 1);
    }
    /* throttled beyond the tries */
    fake_ok("POST", "/_fake/throttle",
            json_pack("{sisisi}", "count", 10, "status", 429, "retryAfter", 1));
    cr_assert_eq(ops->push(&conn, cfg, two, 1, NULL, 0, &err), CF_ERATELIMIT);
    cr_assert_not_null(strstr(err.msg, "rate limit"), "%s", err.msg);
    cr_assert_eq(err.retry_after_s, 1);
    free(token);
    json_decref(cfg);
    json_decref(creds);
}

Test(provider_github, check_reports_permissions_and_expiry)
{
    json_t *creds, *pcreds, *report = NULL;
    struct cf_err err;
    register_app(app_pub, write_permissions(), 3600);
    struct cf_provider_conn conn = app_conn(&creds);
    cr_assert_eq(cf_provider_check(&conn, &report, &err), CF_OK, "%s", err.msg);
    char *text = json_dumps(report, JSON_COMPACT);
    cr_assert_not_null(strstr(text, "\"secrets:write\""), "%s", text);
    cr_assert_null(strstr(text, "ghs_"), "the token reached the report: %s", text);
    free(text);
    json_decref(report);

    char *token = new_pat(json_pack("{ss}", "secrets", "write"), "acme/web", 86400 * 30);
    struct cf_provider_conn pconn = pat_conn(token, &pcreds);
    cr_assert_eq(cf_provider_check(&pconn, &report, &err), CF_OK, "%s", err.msg);
    const char *expires = json_string_value(json_object_get(report, "expiresAt"));
    cr_assert_not_null(expires, "no expiresAt for a token with an expiry");
    cr_assert_eq(strlen(expires), 24, "%s", expires); /* 2026-...T...:00.000Z */
    json_decref(report);
    fake_ok("POST", "/_fake/revoke", json_pack("{ss}", "token", token));
    cr_assert_eq(cf_provider_check(&pconn, &report, &err), CF_EUNAUTH);
    free(token);
    json_decref(pcreds);
    json_decref(creds);
}

Test(provider_github, names_and_config)
{
    const struct cf_dest_ops *ops = cf_dest_find("github");
    struct cf_err err;
    char out[256];
    cr_assert_eq(ops->map_name("db-url.main", out, sizeof(out), &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(out, "DB_URL_MAIN");
    cr_assert_eq(ops->map_name("github_token", out, sizeof(out), &err), CF_EVALIDATION);
    cr_assert_eq(ops->map_name("1ABC", out, sizeof(out), &err), CF_EVALIDATION);
    cr_assert_eq(ops->map_name("caf\xc3\xa9", out, sizeof(out), &err), CF_EVALIDATION);

    /* a push with a name GitHub refuses sends nothing */
    json_t *creds, *cfg = repo_config();
    char *token = new_pat(json_pack("{ss}", "secrets", "write"), "acme/web", 0);
    struct cf_provider_conn conn = pat_conn(token, &creds);
    const struct cf_sync_item bad = {.name = "GITHUB_X", V("s3cr3t")};
    cr_assert_eq(ops->push(&conn, cfg, &bad, 1, NULL, 0, &err), CF_EVALIDATION);
    cr_assert_eq(log_count("GET", "/", 0), 0);

    json_t *bad_cfg = json_pack("{ssssss}", "scope", "organization", "owner", "acme", "repo", "w");
    cr_assert_eq(ops->config_check(bad_cfg, &err), CF_EVALIDATION);
    cr_assert_str_eq(err.field, "scope");
    json_decref(bad_cfg);
    bad_cfg = json_pack("{ssssss}", "scope", "repository", "owner", "acme", "repo", "../x");
    cr_assert_eq(ops->config_check(bad_cfg, &err), CF_EVALIDATION);
    cr_assert_str_eq(err.field, "repo");
    json_decref(bad_cfg);
    bad_cfg =
        json_pack("{ssssss}", "scope", "repository-environment", "owner", "acme", "repo", "w");
    cr_assert_eq(ops->config_check(bad_cfg, &err), CF_EVALIDATION);
    cr_assert_str_eq(err.field, "env");
    json_decref(bad_cfg);
    free(token);
    json_decref(cfg);
    json_decref(creds);
}
