/* GitHub Actions secrets (see github.h): App JWTs and installation tokens, the token cache, the
 * requests with their throttling retries, and the mapping of GitHub's answers to errors. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "net/http.h"
#include "provider/github.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/time.h"
#include "util/wipemem.h"
#include "util/banned.h"

#define HOST_MAX 256
#define TOKEN_MAX 1024 /* installation tokens are ~40 bytes, stateless ones longer */
#define AUTH_MAX (TOKEN_MAX + 32)
#define JWT_MAX 2048 /* header and claims (~150) and an RSA-4096 signature (683) in base64url */
#define PATH_MAX_LEN 768
#define CACHE_MAX 64
#define NAME_MAX_LEN 200
#define LIST_PAGES_MAX 1000 /* 100 000 secrets: far above GitHub's limit per repository */
#define MESSAGE_MAX 160     /* GitHub's message as quoted in an error */

/* ---- the token cache --------------------------------------------------------------------------
 */

struct cached_token {
    char key[HOST_MAX + 64]; /* host, app id, installation id */
    char token[TOKEN_MAX];
    int64_t expires_at_ms;
};

struct cf_github_cache {
    pthread_mutex_t lock;
    struct cached_token items[CACHE_MAX];
};

struct cf_github_cache *cf_github_cache_new(void)
{
    struct cf_github_cache *cache = calloc(1, sizeof(*cache));
    if (cache && pthread_mutex_init(&cache->lock, NULL) != 0) {
        free(cache);
        return NULL;
    }
    return cache;
}

void cf_github_cache_free(struct cf_github_cache *cache)
{
    if (!cache)
        return;
    pthread_mutex_destroy(&cache->lock);
    sodium_memzero(cache->items, sizeof(cache->items));
    free(cache);
}

/* Copies a token for key that is good for more than the margin into out; false when none. */
static bool cache_get(struct cf_github_cache *cache, const char *key, char *out, size_t size)
{
    bool found = false;
    if (!cache)
        return false;
    int64_t fresh_until = cf_now_ms() + CF_GITHUB_TOKEN_MARGIN_S * 1000LL;
    pthread_mutex_lock(&cache->lock);
    for (size_t i = 0; i < CACHE_MAX && !found; i++) {
        const struct cached_token *t = &cache->items[i];
        if (t->key[0] && strcmp(t->key, key) == 0 && t->expires_at_ms > fresh_until)
            found = cf_strlcpy(out, t->token, size);
    }
    pthread_mutex_unlock(&cache->lock);
    return found;
}

/* Keeps token for key: in its own slot, else an empty one, else the one expiring first. */
static void cache_put(struct cf_github_cache *cache, const char *key, const char *token,
                      int64_t expires_at_ms)
{
    if (!cache || strlen(key) >= sizeof(cache->items[0].key) ||
        strlen(token) >= sizeof(cache->items[0].token))
        return;
    pthread_mutex_lock(&cache->lock);
    struct cached_token *slot = NULL;
    for (size_t i = 0; i < CACHE_MAX && !slot; i++) {
        if (strcmp(cache->items[i].key, key) == 0)
            slot = &cache->items[i];
    }
    for (size_t i = 0; i < CACHE_MAX && !slot; i++) {
        if (!cache->items[i].key[0])
            slot = &cache->items[i];
    }
    for (size_t i = 0; i < CACHE_MAX && !slot; i++) {
        if (!slot || cache->items[i].expires_at_ms < slot->expires_at_ms)
            slot = &cache->items[i];
    }
    sodium_memzero(slot, sizeof(*slot));
    cf_strlcpy(slot->key, key, sizeof(slot->key));
    cf_strlcpy(slot->token, token, sizeof(slot->token));
    slot->expires_at_ms = expires_at_ms;
    pthread_mutex_unlock(&cache->lock);
}

/* ---- requests ---------------------------------------------------------------------------------
 */

/* One authenticated session: where the API is and the Authorization header to send. */
struct gh {
    char host[HOST_MAX];
    char auth[AUTH_MAX]; /* "Authorization: Bearer ...": a credential, wiped by gh_close */
    const char *who;     /* the credential, for messages: "the installation", ... */
};

static void gh_close(struct gh *gh)
{
    sodium_memzero(gh->auth, sizeof(gh->auth));
}

/* GitHub's "message" from an error body, cut and without control characters, into out. */
static void gh_message(const struct cf_http_response *resp, char *out, size_t size)
{
    json_t *doc = resp->body ? json_loadb(resp->body, resp->len, 0, NULL) : NULL;
    const char *message = json_string_value(json_object_get(doc, "message"));
    size_t n = 0;
    for (const char *p = message ? message : "no message"; *p && n + 1 < size && n < MESSAGE_MAX;
         p++)
        out[n++] = (unsigned char)*p < 0x20 ? ' ' : *p;
    out[n] = '\0';
    json_decref(doc);
}

/* Why an answer of resp's status to a request about what failed, as an error code and message.
 * permission names what a 403 lacks ("secrets: write"). */
static enum cf_rc gh_fail(const struct gh *gh, const struct cf_http_response *resp,
                          const char *what, const char *permission, struct cf_err *err)
{
    char message[MESSAGE_MAX + 1];
    gh_message(resp, message, sizeof(message));
    switch (resp->status) {
    case 401:
        return cf_err_set(err, CF_EUNAUTH, "GitHub refused %s (401: %s)", gh->who, message);
    case 403:
        if (resp->retry_after_s > 0 || strstr(message, "rate limit")) {
            cf_err_set(err, CF_ERATELIMIT,
                       "GitHub's rate limit still held %s after %d tries (403: %s)", what,
                       CF_GITHUB_ATTEMPTS, message);
            err->retry_after_s = (int)resp->retry_after_s;
            return CF_ERATELIMIT;
        }
        return cf_err_set(err, CF_EFORBIDDEN, "%s lacks permission %s for %s (403 %s)", gh->who,
                          permission, what, message);
    case 404:
        return cf_err_set(err, CF_ENOTFOUND, "GitHub has no %s that %s can see (404: %s)", what,
                          gh->who, message);
    case 422:
        return cf_err_set(err, CF_EVALIDATION, "GitHub refused %s (422: %s)", what, message);
    case 429:
        cf_err_set(err, CF_ERATELIMIT, "GitHub's rate limit still held %s after %d tries (429: %s)",
                   what, CF_GITHUB_ATTEMPTS, message);
        err->retry_after_s = (int)resp->retry_after_s;
        return CF_ERATELIMIT;
    default:
        return cf_err_set(err, CF_EIO, "GitHub answered %ld for %s (%s)", resp->status, what,
                          message);
    }
}

/* Sends method path (under gh->host) with an optional JSON body. Throttling answers (429 and 5xx
 * in net/http.c, 403 with Retry-After here: GitHub's secondary limits) are retried after the wait
 * GitHub asks for. CF_OK when an answer arrived, whatever its status. */
static enum cf_rc gh_call(const struct gh *gh, const char *method, const char *path,
                          const char *body, const char *want_header, struct cf_http_response *resp,
                          struct cf_err *err)
{
    char url[HOST_MAX + PATH_MAX_LEN + 64];
    const char *headers[] = {"Accept: application/vnd.github+json",
                             "X-GitHub-Api-Version: " CF_GITHUB_API_VERSION, gh->auth,
                             body ? "Content-Type: application/json" : NULL, NULL};
    int n = snprintf(url, sizeof(url), "%s%s", gh->host, path);
    if (n < 0 || (size_t)n >= sizeof(url))
        return cf_err_set(err, CF_EINVAL, "the GitHub URL for '%.64s...' is too long", path);
    struct cf_http_request req = {
        .net = {.url = url},
        .method = method,
        .body = body,
        .headers = headers,
        .attempts = CF_GITHUB_ATTEMPTS,
        .want_header = want_header,
    };
    for (int attempt = 1;; attempt++) {
        enum cf_rc rc = cf_http_perform(&req, resp, err);
        if (rc != CF_OK) {
            char why[CF_ERR_MSG_MAX];
            cf_strlcpy(why, err->msg, sizeof(why));
            return cf_err_set(err, rc, "GitHub (%s %.*s): %s", method, (int)strcspn(path, "?"),
                              path, why);
        }
        if (resp->status != 403 || resp->retry_after_s <= 0 || attempt >= CF_GITHUB_ATTEMPTS)
            return CF_OK;
        long delay = cf_http_retry_delay_ms(attempt, 0, resp->retry_after_s);
        cf_http_response_release(resp);
        struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) != 0)
            ;
    }
}

/* ---- credentials ------------------------------------------------------------------------------
 */

/* A credential field as text (numbers too: app and installation ids) into out. */
static bool cred_field(const json_t *creds, const char *name, char *out, size_t size)
{
    const json_t *v = json_object_get(creds, name);
    if (json_is_integer(v)) {
        int n = snprintf(out, size, "%lld", (long long)json_integer_value(v));
        return n > 0 && (size_t)n < size;
    }
    const char *s = json_string_value(v);
    return s && s[0] && strlen(s) == json_string_length(v) && cf_strlcpy(out, s, size);
}

/* Printable ASCII only, so that it cannot break out of a header or a URL path segment. */
static bool token_safe(const char *text, bool path_segment)
{
    for (const char *p = text; *p; p++) {
        if (*p <= ' ' || *p > '~' ||
            (path_segment && !strchr("0123456789abcdefghijklmnopqrstuvwxyz"
                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ._-",
                                     *p)))
            return false;
    }
    return text[0] != '\0';
}

static enum cf_rc b64url(const void *bin, size_t len, struct cf_buf *out)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *text = malloc(cap);
    if (!text)
        return CF_ENOMEM;
    sodium_bin2base64(text, cap, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    enum cf_rc rc = cf_buf_puts(out, text);
    free(text);
    return rc;
}

/* The App's JWT (RS256; iss the app id; iat 60 s back against clock drift; exp 9 minutes ahead,
 * within GitHub's 10) into jwt. */
static enum cf_rc app_jwt(const char *app_id, const char *pem, struct cf_buf *jwt,
                          struct cf_err *err)
{
    static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    BIO *bio = NULL;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = NULL;
    unsigned char *sig = NULL;
    char *claims = NULL;
    size_t sig_len = 0;
    enum cf_rc rc = CF_OK;
    int64_t now_s = cf_now_ms() / 1000;

    bio = BIO_new_mem_buf(pem, -1);
    key = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"") : NULL;
    if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
        rc = cf_err_field(err, CF_EVALIDATION, "privateKey",
                          "the GitHub App's 'privateKey' is not a PEM RSA private key");
        goto out;
    }
    json_t *doc = json_pack("{sIsIss}", "iat", (json_int_t)(now_s - 60), "exp",
                            (json_int_t)(now_s + 540), "iss", app_id);
    claims = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!claims || b64url(header, strlen(header), jwt) != CF_OK ||
        cf_buf_append(jwt, ".", 1) != CF_OK || b64url(claims, strlen(claims), jwt) != CF_OK) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &sig_len, (const unsigned char *)jwt->data, jwt->len) != 1 ||
        !(sig = malloc(sig_len)) ||
        EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)jwt->data, jwt->len) != 1) {
        rc = cf_err_set(err, CF_ECRYPTO, "cannot sign the GitHub App's JWT with its private key");
        goto out;
    }
    if (cf_buf_append(jwt, ".", 1) != CF_OK || b64url(sig, sig_len, jwt) != CF_OK)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
out:
    free(sig);
    cf_json_free_text(claims); /* json_dumps' allocator, which may be the wiping one */
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    BIO_free(bio);
    return rc;
}

/* Mints an installation token (POST /app/installations/{id}/access_tokens) into token;
 * *expires_at_ms its expiry, *minted GitHub's answer (permissions, ...) when minted is not NULL
 * (json_decref it). */
static enum cf_rc mint_token(const struct gh *app_gh, const char *app_id, const char *installation,
                             char *token, size_t size, int64_t *expires_at_ms, json_t **minted,
                             struct cf_err *err)
{
    char path[128], what[160];
    struct cf_http_response resp = {0};
    json_t *doc = NULL;
    enum cf_rc rc;
    snprintf(path, sizeof(path), "/app/installations/%s/access_tokens", installation);
    snprintf(what, sizeof(what), "installation '%s' of GitHub App '%s'", installation, app_id);
    rc = gh_call(app_gh, "POST", path, NULL, NULL, &resp, err);
    if (rc != CF_OK)
        goto out;
    if (resp.status != 201 && resp.status != 200) {
        rc = gh_fail(app_gh, &resp, what, "to create installation tokens", err);
        goto out;
    }
    doc = json_loadb(resp.body ? resp.body : "", resp.len, 0, NULL);
    const char *t = json_string_value(json_object_get(doc, "token"));
    const char *expires = json_string_value(json_object_get(doc, "expires_at"));
    struct cf_err terr;
    if (!t || !token_safe(t, false) || !cf_strlcpy(token, t, size) || !expires ||
        cf_time_parse(expires, expires_at_ms, &terr) != CF_OK) {
        rc = cf_err_set(err, CF_EIO, "GitHub's answer for %s holds no usable token", what);
        goto out;
    }
    json_object_del(doc, "token");
    if (minted) {
        *minted = doc;
        doc = NULL;
    }
out:
    if (doc && json_object_get(doc, "token"))
        json_object_del(doc, "token");
    json_decref(doc);
    if (resp.body)
        sodium_memzero(resp.body, resp.len);
    cf_http_response_release(&resp);
    return rc;
}

static enum cf_rc set_bearer(struct gh *gh, const char *token, struct cf_err *err)
{
    int n = snprintf(gh->auth, sizeof(gh->auth), "Authorization: Bearer %s", token);
    if (n < 0 || (size_t)n >= sizeof(gh->auth))
        return cf_err_set(err, CF_EVALIDATION, "the GitHub credential is too long");
    return CF_OK;
}

/* Opens a session for conn: the host, and a token (a personal access token as given; for an App, a
 * cached installation token or a new one). fresh skips the cache (a check); minted then receives
 * GitHub's answer for the new token. */
static enum cf_rc gh_open(const struct cf_provider_conn *conn, struct gh *gh, bool fresh,
                          json_t **minted, struct cf_err *err)
{
    char app_id[64], installation[64], key[HOST_MAX + 160];
    char *token = NULL;
    struct cf_buf jwt;
    enum cf_rc rc = CF_OK;
    memset(gh, 0, sizeof(*gh));
    cf_buf_init(&jwt, JWT_MAX);
    if (!conn || !conn->app || strcmp(conn->app, "github") != 0 ||
        !json_is_object(conn->credentials))
        return cf_err_field(err, CF_EVALIDATION, "app", "not a GitHub connection");
    const json_t *creds = conn->credentials;
    const char *host = json_string_value(json_object_get(creds, "host"));
    if (!host)
        host = CF_GITHUB_DEFAULT_HOST;
    const char *refused = cf_net_url_refused(host);
    size_t host_len = strlen(host);
    while (host_len > 0 && host[host_len - 1] == '/')
        host_len--;
    if (refused || host_len == 0 || host_len >= sizeof(gh->host) || strchr(host, '?'))
        return cf_err_field(err, CF_EVALIDATION, "host", "the GitHub 'host' %s",
                            refused ? refused : "is not a usable API URL");
    memcpy(gh->host, host, host_len);
    gh->host[host_len] = '\0';
    if (!(token = malloc(TOKEN_MAX))) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }

    if (conn->method && strcmp(conn->method, "personal-access-token") == 0) {
        gh->who = "the personal access token";
        if (!cred_field(creds, "personalAccessToken", token, TOKEN_MAX) ||
            !token_safe(token, false)) {
            rc = cf_err_field(err, CF_EVALIDATION, "personalAccessToken",
                              "the GitHub connection needs a 'personalAccessToken'");
            goto out;
        }
        rc = set_bearer(gh, token, err);
        goto out;
    }
    if (!conn->method || strcmp(conn->method, "app") != 0) {
        rc = cf_err_field(err, CF_EVALIDATION, "method",
                          "a GitHub connection's method is \"app\" or \"personal-access-token\"");
        goto out;
    }
    const char *pem = json_string_value(json_object_get(creds, "privateKey"));
    if (!cred_field(creds, "appId", app_id, sizeof(app_id)) || !token_safe(app_id, true)) {
        rc = cf_err_field(err, CF_EVALIDATION, "appId", "the GitHub App connection needs 'appId'");
        goto out;
    }
    if (!cred_field(creds, "installationId", installation, sizeof(installation)) ||
        !token_safe(installation, true)) {
        rc = cf_err_field(err, CF_EVALIDATION, "installationId",
                          "the GitHub App connection needs 'installationId'");
        goto out;
    }
    if (!pem) {
        rc = cf_err_field(err, CF_EVALIDATION, "privateKey",
                          "the GitHub App connection needs 'privateKey'");
        goto out;
    }
    snprintf(key, sizeof(key), "%s\n%s\n%s", gh->host, app_id, installation);
    gh->who = "the installation";
    if (!fresh && cache_get(conn->github, key, token, TOKEN_MAX)) {
        rc = set_bearer(gh, token, err);
        goto out;
    }
    /* Authenticate as the App for the one call that mints the installation token. */
    rc = app_jwt(app_id, pem, &jwt, err);
    if (rc != CF_OK)
        goto out;
    struct gh app_gh = {.who = "the app's JWT"};
    memcpy(app_gh.host, gh->host, sizeof(gh->host));
    rc = set_bearer(&app_gh, jwt.data, err);
    int64_t expires_at_ms = 0;
    if (rc == CF_OK)
        rc = mint_token(&app_gh, app_id, installation, token, TOKEN_MAX, &expires_at_ms, minted,
                        err);
    gh_close(&app_gh);
    if (rc != CF_OK)
        goto out;
    cache_put(conn->github, key, token, expires_at_ms);
    rc = set_bearer(gh, token, err);
out:
    if (token) {
        sodium_memzero(token, TOKEN_MAX);
        free(token);
    }
    cf_buf_release_wipe(&jwt);
    if (rc != CF_OK)
        gh_close(gh);
    return rc;
}

/* ---- the destination --------------------------------------------------------------------------
 */

struct gh_dest {
    char base[PATH_MAX_LEN];  /* "/repos/o/r/actions" or "/repos/o/r/environments/e" */
    char where[PATH_MAX_LEN]; /* for messages: "repository 'o/r'", "environment 'e' of 'o/r'" */
    const char *permission;   /* what writing needs: "secrets: write" or "environments: write" */
};

static bool owner_or_repo(const char *text, size_t max)
{
    return text && strlen(text) <= max && token_safe(text, true) && strcmp(text, ".") != 0 &&
           strcmp(text, "..") != 0;
}

/* Appends text percent-encoded for a path segment (all but unreserved characters). */
static enum cf_rc pct_encode(struct cf_buf *out, const char *text)
{
    enum cf_rc rc = CF_OK;
    for (const unsigned char *p = (const unsigned char *)text; *p && rc == CF_OK; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p))
            rc = cf_buf_append(out, p, 1);
        else
            rc = cf_buf_printf(out, "%%%02X", *p);
    }
    return rc;
}

static enum cf_rc dest_get(const json_t *config, struct gh_dest *d, struct cf_err *err)
{
    if (!json_is_object(config))
        return cf_err_field(err, CF_EVALIDATION, "destinationConfig",
                            "the GitHub destination's configuration must be an object");
    const char *scope = json_string_value(json_object_get(config, "scope"));
    const char *owner = json_string_value(json_object_get(config, "owner"));
    const char *repo = json_string_value(json_object_get(config, "repo"));
    const json_t *jenv = json_object_get(config, "env");
    const char *env = json_string_value(jenv);
    bool environment = scope && strcmp(scope, "repository-environment") == 0;
    if (!scope || (!environment && strcmp(scope, "repository") != 0))
        return cf_err_field(err, CF_EVALIDATION, "scope",
                            "'scope' must be \"repository\" or \"repository-environment\" (an "
                            "organization scope is not supported)");
    if (!owner_or_repo(owner, 39))
        return cf_err_field(err, CF_EVALIDATION, "owner",
                            "'owner' must be a GitHub account name (letters, digits, -)");
    if (!owner_or_repo(repo, 100))
        return cf_err_field(err, CF_EVALIDATION, "repo",
                            "'repo' must be a repository name (letters, digits, '.', '-', '_')");
    if (environment &&
        (!env || !env[0] || strlen(env) > 255 || strlen(env) != json_string_length(jenv) ||
         !cf_utf8_valid(env, strlen(env))))
        return cf_err_field(err, CF_EVALIDATION, "env",
                            "'env' must name the repository's environment (1 to 255 characters)");
    for (const char *p = environment ? env : ""; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return cf_err_field(err, CF_EVALIDATION, "env",
                                "'env' must not hold control characters");
    }
    struct cf_buf path;
    cf_buf_init(&path, sizeof(d->base) - 1);
    enum cf_rc rc = cf_buf_printf(&path, "/repos/%s/%s/", owner, repo);
    if (rc == CF_OK && environment) {
        rc = cf_buf_puts(&path, "environments/");
        if (rc == CF_OK)
            rc = pct_encode(&path, env);
        snprintf(d->where, sizeof(d->where), "environment '%.255s' of '%s/%s'", env, owner, repo);
        d->permission = "environments: write";
    } else if (rc == CF_OK) {
        rc = cf_buf_puts(&path, "actions");
        snprintf(d->where, sizeof(d->where), "repository '%s/%s'", owner, repo);
        d->permission = "secrets: write";
    }
    if (rc == CF_OK)
        cf_strlcpy(d->base, path.data, sizeof(d->base));
    cf_buf_release(&path);
    if (rc != CF_OK)
        return cf_err_field(err, CF_EVALIDATION, "env", "'env' is too long");
    return CF_OK;
}

static enum cf_rc github_config_check(const json_t *config, struct cf_err *err)
{
    struct gh_dest d;
    return dest_get(config, &d, err);
}

/* GitHub's rule: letters, digits and _, not starting with a digit nor with GITHUB_ (in any case).
 */
static bool name_ok(const char *name)
{
    if (!name || !name[0] || (name[0] >= '0' && name[0] <= '9') || strlen(name) > NAME_MAX_LEN ||
        strncasecmp(name, "GITHUB_", 7) == 0)
        return false;
    for (const char *p = name; *p; p++) {
        if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9')))
            return false;
    }
    return true;
}

/* Upper case (GitHub stores names so; mapping here lets the engine see two keys that GitHub would
 * take as one), and every other ASCII punctuation or blank as _. */
static enum cf_rc github_map_name(const char *name, char *out, size_t size, struct cf_err *err)
{
    size_t n = strlen(name);
    if (n == 0 || n > NAME_MAX_LEN || n >= size)
        return cf_err_field(err, CF_EVALIDATION, "name",
                            "a GitHub secret name has 1 to %d characters", NAME_MAX_LEN);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c >= 0x80 || c < 0x20)
            return cf_err_field(err, CF_EVALIDATION, "name",
                                "'%.64s' holds a character GitHub does not take in a secret name "
                                "(ASCII letters, digits and _)",
                                name);
        out[i] = (c >= 'a' && c <= 'z')                               ? (char)(c - 'a' + 'A')
                 : ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) ? (char)c
                                                                      : '_';
    }
    out[n] = '\0';
    if (out[0] >= '0' && out[0] <= '9')
        return cf_err_field(err, CF_EVALIDATION, "name",
                            "'%.64s': a GitHub secret name cannot start with a digit (add a "
                            "prefix in the key schema)",
                            name);
    if (strncmp(out, "GITHUB_", 7) == 0)
        return cf_err_field(err, CF_EVALIDATION, "name",
                            "'%.64s': GitHub refuses secret names starting with GITHUB_", name);
    return CF_OK;
}

/* The scope's public key: key_id into key_id, the 32-byte X25519 key into pk. */
static enum cf_rc public_key(const struct gh *gh, const struct gh_dest *d, char *key_id,
                             size_t key_id_size, unsigned char pk[crypto_box_PUBLICKEYBYTES],
                             struct cf_err *err)
{
    char path[PATH_MAX_LEN + 32], what[PATH_MAX_LEN + 32];
    struct cf_http_response resp = {0};
    json_t *doc = NULL;
    size_t pk_len = 0;
    snprintf(path, sizeof(path), "%s/secrets/public-key", d->base);
    snprintf(what, sizeof(what), "the public key of %s", d->where);
    enum cf_rc rc = gh_call(gh, "GET", path, NULL, NULL, &resp, err);
    if (rc != CF_OK)
        goto out;
    if (resp.status != 200) {
        /* a 404 here means the repository (or environment) is not visible */
        rc = gh_fail(gh, &resp, resp.status == 404 ? d->where : what, d->permission, err);
        goto out;
    }
    doc = json_loadb(resp.body ? resp.body : "", resp.len, 0, NULL);
    const json_t *jid = json_object_get(doc, "key_id");
    const char *key = json_string_value(json_object_get(doc, "key"));
    bool id_ok = json_is_string(jid) ? cf_strlcpy(key_id, json_string_value(jid), key_id_size)
                                     : json_is_integer(jid);
    if (json_is_integer(jid))
        snprintf(key_id, key_id_size, "%lld", (long long)json_integer_value(jid));
    if (!id_ok || !key ||
        sodium_base642bin(pk, crypto_box_PUBLICKEYBYTES, key, strlen(key), NULL, &pk_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        pk_len != crypto_box_PUBLICKEYBYTES)
        rc = cf_err_set(err, CF_EIO, "GitHub's answer for %s is not a key_id and a 32-byte key",
                        what);
out:
    json_decref(doc);
    cf_http_response_release(&resp);
    return rc;
}

/* PUTs one item, sealed for pk. */
static enum cf_rc put_secret(const struct gh *gh, const struct gh_dest *d, const char *key_id,
                             const unsigned char *pk, const struct cf_sync_item *item,
                             struct cf_err *err)
{
    char path[PATH_MAX_LEN + NAME_MAX_LEN + 16], what[NAME_MAX_LEN + PATH_MAX_LEN + 32];
    size_t sealed_len = item->value_len + crypto_box_SEALBYTES;
    size_t b64_len = sodium_base64_ENCODED_LEN(sealed_len, sodium_base64_VARIANT_ORIGINAL);
    unsigned char *sealed = malloc(sealed_len);
    char *b64 = malloc(b64_len);
    char *body = NULL;
    json_t *doc = NULL;
    struct cf_http_response resp = {0};
    enum cf_rc rc = CF_OK;
    snprintf(what, sizeof(what), "secret '%s' in %s", item->name, d->where);
    if (!sealed || !b64) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    if (crypto_box_seal(sealed, (const unsigned char *)(item->value ? item->value : ""),
                        item->value_len, pk) != 0) {
        rc = cf_err_set(err, CF_ECRYPTO, "cannot seal %s", what);
        goto out;
    }
    sodium_bin2base64(b64, b64_len, sealed, sealed_len, sodium_base64_VARIANT_ORIGINAL);
    doc = json_pack("{ssss}", "encrypted_value", b64, "key_id", key_id);
    body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (!body) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(path, sizeof(path), "%s/secrets/%s", d->base, item->name);
    rc = gh_call(gh, "PUT", path, body, NULL, &resp, err);
    if (rc == CF_OK && resp.status != 201 && resp.status != 204)
        rc = gh_fail(gh, &resp, what, d->permission, err);
out:
    cf_http_response_release(&resp);
    cf_json_free_text(body); /* json_dumps' allocator */
    json_decref(doc);
    free(b64);
    free(sealed);
    return rc;
}

static enum cf_rc delete_secret(const struct gh *gh, const struct gh_dest *d, const char *name,
                                struct cf_err *err)
{
    char path[PATH_MAX_LEN + NAME_MAX_LEN + 16], what[NAME_MAX_LEN + PATH_MAX_LEN + 32];
    struct cf_http_response resp = {0};
    snprintf(path, sizeof(path), "%s/secrets/%s", d->base, name);
    snprintf(what, sizeof(what), "secret '%s' in %s", name, d->where);
    enum cf_rc rc = gh_call(gh, "DELETE", path, NULL, NULL, &resp, err);
    /* 404: already gone, which is what was asked */
    if (rc == CF_OK && resp.status != 204 && resp.status != 404)
        rc = gh_fail(gh, &resp, what, d->permission, err);
    cf_http_response_release(&resp);
    return rc;
}

static enum cf_rc github_push(const struct cf_provider_conn *conn, const json_t *config,
                              const struct cf_sync_item *items, size_t n, const char *const *remove,
                              size_t n_remove, struct cf_err *err)
{
    struct gh_dest d;
    struct gh gh;
    char key_id[128];
    unsigned char pk[crypto_box_PUBLICKEYBYTES];
    enum cf_rc rc = dest_get(config, &d, err);
    if (rc != CF_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (!name_ok(items[i].name))
            return cf_err_field(err, CF_EVALIDATION, "name",
                                "'%.64s' is not a GitHub secret name (letters, digits and _, not "
                                "starting with a digit nor GITHUB_)",
                                items[i].name ? items[i].name : "");
    }
    rc = gh_open(conn, &gh, false, NULL, err);
    if (rc != CF_OK)
        return rc;
    if (n > 0)
        rc = public_key(&gh, &d, key_id, sizeof(key_id), pk, err);
    for (size_t i = 0; rc == CF_OK && i < n; i++)
        rc = put_secret(&gh, &d, key_id, pk, &items[i], err);
    for (size_t i = 0; rc == CF_OK && i < n_remove; i++) {
        if (name_ok(remove[i])) /* anything else cannot be there */
            rc = delete_secret(&gh, &d, remove[i], err);
    }
    gh_close(&gh);
    return rc;
}

/* Appends one page's secrets to out; *more when GitHub's Link header names a next page. */
static enum cf_rc list_page(const struct gh *gh, const struct gh_dest *d, int page,
                            struct cf_dest_list *out, bool *more, struct cf_err *err)
{
    char path[PATH_MAX_LEN + 64], what[PATH_MAX_LEN + 32];
    struct cf_http_response resp = {0};
    json_t *doc = NULL;
    size_t i;
    json_t *s;
    snprintf(path, sizeof(path), "%s/secrets?per_page=100&page=%d", d->base, page);
    snprintf(what, sizeof(what), "the secrets of %s", d->where);
    *more = false;
    enum cf_rc rc = gh_call(gh, "GET", path, NULL, "Link", &resp, err);
    if (rc != CF_OK)
        goto out;
    if (resp.status != 200) {
        rc = gh_fail(gh, &resp, what, d->permission, err);
        goto out;
    }
    doc = json_loadb(resp.body ? resp.body : "", resp.len, 0, NULL);
    json_t *list = json_object_get(doc, "secrets");
    if (!json_is_array(list)) {
        rc = cf_err_set(err, CF_EIO, "GitHub's answer for %s holds no secrets array", what);
        goto out;
    }
    struct cf_dest_entry *grown =
        realloc(out->items, (out->n + json_array_size(list) + 1) * sizeof(*grown));
    if (!grown) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    out->items = grown;
    json_array_foreach(list, i, s)
    {
        const char *name = json_string_value(json_object_get(s, "name"));
        const char *updated = json_string_value(json_object_get(s, "updated_at"));
        int64_t updated_ms = 0;
        struct cf_err terr;
        if (!name)
            continue;
        if (!updated || cf_time_parse(updated, &updated_ms, &terr) != CF_OK)
            updated_ms = 0;
        char *copy = strdup(name);
        if (!copy) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        out->items[out->n++] = (struct cf_dest_entry){.name = copy, .updated_at = updated_ms};
    }
    *more =
        resp.header_value && strstr(resp.header_value, "rel=\"next\"") && json_array_size(list) > 0;
out:
    json_decref(doc);
    cf_http_response_release(&resp);
    return rc;
}

static enum cf_rc github_list(const struct cf_provider_conn *conn, const json_t *config,
                              struct cf_dest_list *out, struct cf_err *err)
{
    struct gh_dest d;
    struct gh gh;
    bool more = true;
    *out = (struct cf_dest_list){0};
    enum cf_rc rc = dest_get(config, &d, err);
    if (rc != CF_OK)
        return rc;
    rc = gh_open(conn, &gh, false, NULL, err);
    if (rc != CF_OK)
        return rc;
    for (int page = 1; rc == CF_OK && more && page <= LIST_PAGES_MAX; page++)
        rc = list_page(&gh, &d, page, out, &more, err);
    gh_close(&gh);
    if (rc != CF_OK)
        cf_dest_list_release(out);
    return rc;
}

const struct cf_dest_ops cf_github_dest = {
    .destination = "github",
    .config_check = github_config_check,
    .map_name = github_map_name,
    .list = github_list,
    .push = github_push,
};

/* ---- checking a connection --------------------------------------------------------------------
 */

/* GitHub's "2026-03-31 00:00:00 UTC" as Unix ms; false when it does not parse. */
static bool parse_expiration(const char *text, int64_t *ms)
{
    struct tm tm = {0};
    char zone[8] = "";
    if (sscanf(text, "%d-%d-%d %d:%d:%d %7s", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, zone) < 6 ||
        (zone[0] && strcmp(zone, "UTC") != 0))
        return false;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *ms = (int64_t)t * 1000;
    return true;
}

static enum cf_rc check_app(const struct cf_provider_conn *conn, json_t *report, struct cf_err *err)
{
    struct gh gh;
    json_t *minted = NULL;
    const char *perm;
    json_t *level;
    enum cf_rc rc = gh_open(conn, &gh, true, &minted, err);
    if (rc != CF_OK)
        return rc;
    gh_close(&gh);
    json_t *scopes = json_object_get(report, "scopes");
    bool can_write = false;
    json_object_foreach(json_object_get(minted, "permissions"), perm, level)
    {
        char scope[96];
        snprintf(scope, sizeof(scope), "%.40s:%.40s", perm,
                 json_string_value(level) ? json_string_value(level) : "?");
        json_array_append_new(scopes, json_string(scope));
        can_write |= (strcmp(perm, "secrets") == 0 || strcmp(perm, "environments") == 0) &&
                     json_string_value(level) && strcmp(json_string_value(level), "write") == 0;
    }
    const char *expires = json_string_value(json_object_get(minted, "expires_at"));
    char detail[256];
    snprintf(detail, sizeof(detail), "installation token minted (expires %.32s)%s",
             expires ? expires : "?",
             can_write ? "" : "; the installation lacks permission secrets: write");
    json_object_set_new(report, "detail", json_string(detail));
    json_decref(minted);
    return CF_OK;
}

static enum cf_rc check_token(const struct cf_provider_conn *conn, json_t *report,
                              struct cf_err *err)
{
    struct gh gh;
    struct cf_http_response resp = {0};
    json_t *doc = NULL;
    enum cf_rc rc = gh_open(conn, &gh, true, NULL, err);
    if (rc != CF_OK)
        return rc;
    rc = gh_call(&gh, "GET", "/user", NULL, "GitHub-Authentication-Token-Expiration", &resp, err);
    if (rc == CF_OK && resp.status != 200)
        rc = gh_fail(&gh, &resp, "the authenticated user", "to read the user", err);
    if (rc != CF_OK)
        goto out;
    doc = json_loadb(resp.body ? resp.body : "", resp.len, 0, NULL);
    const char *login = json_string_value(json_object_get(doc, "login"));
    int64_t expires_ms;
    if (resp.header_value && parse_expiration(resp.header_value, &expires_ms)) {
        char stamp[CF_TIME_RFC3339_LEN];
        json_object_set_new(report, "expiresAt", json_string(cf_time_format(expires_ms, stamp)));
    }
    char detail[256];
    snprintf(detail, sizeof(detail),
             "authenticated as '%.64s'; GitHub does not list a fine-grained token's permissions "
             "(it needs Secrets or Environments: read and write)",
             login ? login : "?");
    json_object_set_new(report, "detail", json_string(detail));
out:
    json_decref(doc);
    cf_http_response_release(&resp);
    gh_close(&gh);
    return rc;
}

enum cf_rc cf_github_check(const struct cf_provider_conn *conn, json_t **report, struct cf_err *err)
{
    json_t *r = json_pack("{sbsns[]}", "ok", 1, "expiresAt", "scopes");
    *report = NULL;
    if (!r)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    bool app = conn && conn->method && strcmp(conn->method, "app") == 0;
    enum cf_rc rc = app ? check_app(conn, r, err) : check_token(conn, r, err);
    if (rc != CF_OK) {
        json_decref(r);
        return rc;
    }
    *report = r;
    return CF_OK;
}
