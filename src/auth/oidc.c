/* OpenID Connect relying party (auth/oidc.h): discovery, the authorize redirect with state, nonce
 * and PKCE, the code exchange and the ID token's verification. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "auth/jwt.h"
#include "auth/oidc.h"
#include "crypto/assertion.h"
#include "net/http.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define DEFAULT_SCOPES "openid profile email"
#define TENANT_MAX 128
#define DISCOVERY_MAX (256 * 1024)
#define TOKEN_RESPONSE_MAX (256 * 1024)
#define STATE_MAX 128  /* characters of a state presented to the callback */
#define CODE_MAX 8192  /* characters of an authorization code */
#define B64_32 44      /* 32 bytes in unpadded base64url (43 characters) and the NUL */
#define DETAIL_MAX 160 /* characters of a provider's error description quoted in a message */

/* What the discovery document says, as used. */
struct discovery {
    char issuer[CF_OIDC_URL_MAX];
    char authorize[CF_OIDC_URL_MAX];
    char token[CF_OIDC_URL_MAX];
    char jwks[CF_OIDC_URL_MAX];
    int64_t fetched_ms; /* 0: never fetched */
};

/* One --oidc-group-role entry: members of group get role (rank: member 1, admin 2, owner 3). */
struct group_role {
    char *group;
    const char *role;
    int rank;
};

struct cf_oidc {
    char *issuer;          /* generic: the configured issuer; NULL for Entra ID */
    char *entra_tenant;    /* Entra ID: the tenant as configured; NULL for a generic issuer */
    char *entra_authority; /* Entra ID: the sign-in host */
    char *client_id;
    char *client_secret; /* sodium_malloc'd, wiped when freed */
    char *redirect_url;
    char *scopes;
    char *allowed_domains; /* NULL: any */
    char *ca_file;
    char *client_certificate; /* sodium_malloc'd PEM, wiped when freed; NULL: the secret */
    char *groups_claim;
    char *graph_url;
    struct group_role roles[CF_OIDC_GROUP_ROLES_MAX]; /* --oidc-group-role */
    size_t n_roles;
    bool require_group;
    char discovery_url[CF_OIDC_URL_MAX];
    pthread_mutex_t lock; /* guards cached */
    struct discovery cached;
};

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static bool tenant_ok(const char *tenant)
{
    size_t n = strlen(tenant);
    if (n == 0 || n > TENANT_MAX)
        return false;
    for (const char *p = tenant; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
            return false;
    return true;
}

static int role_rank(const char *role, size_t n)
{
    static const char *const ranked[] = {"member", "admin", "owner"};
    for (int i = 0; i < 3; i++)
        if (strlen(ranked[i]) == n && strncmp(role, ranked[i], n) == 0)
            return i + 1;
    return 0;
}

/* Parses "GROUP=ROLE,..." (--oidc-group-role) into oidc->roles. */
static enum cf_rc parse_group_roles(struct cf_oidc *oidc, const char *text, struct cf_err *err)
{
    static const char *const names[] = {"", "member", "admin", "owner"};
    struct cf_list_iter it;
    struct cf_str item;
    cf_list_init(&it, text);
    while (cf_list_next(&it, &item)) {
        const char *eq = NULL;
        for (size_t i = 0; i < item.n; i++)
            if (item.p[i] == '=')
                eq = item.p + i; /* the last '=': a group name may hold one, a role never */
        size_t group_len = eq ? (size_t)(eq - item.p) : 0;
        int rank = eq ? role_rank(eq + 1, item.n - group_len - 1) : 0;
        if (group_len == 0 || group_len > CF_OIDC_CLAIM_MAX || rank == 0)
            return cf_err_set(err, CF_EINVAL,
                              "--oidc-group-role takes GROUP=owner|admin|member, comma-separated: "
                              "\"%.*s\" is not one",
                              (int)(item.n > 100 ? 100 : item.n), item.p);
        if (oidc->n_roles == CF_OIDC_GROUP_ROLES_MAX)
            return cf_err_set(err, CF_EINVAL, "--oidc-group-role takes at most %d groups",
                              CF_OIDC_GROUP_ROLES_MAX);
        struct group_role *r = &oidc->roles[oidc->n_roles];
        r->group = strndup(item.p, group_len);
        if (!r->group)
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        r->rank = rank;
        r->role = names[rank];
        oidc->n_roles++;
    }
    return CF_OK;
}

static enum cf_rc check_url(const char *flag, const char *url, struct cf_err *err)
{
    const char *why = cf_net_url_refused(url);
    if (why)
        return cf_err_set(err, CF_EINVAL, "--%s %s", flag, why);
    if (strlen(url) >= CF_OIDC_URL_MAX)
        return cf_err_set(err, CF_EINVAL, "--%s is longer than %d characters", flag,
                          CF_OIDC_URL_MAX - 1);
    return CF_OK;
}

enum cf_rc cf_oidc_new(const struct cf_oidc_config *config, struct cf_oidc **out,
                       struct cf_err *err)
{
    struct cf_oidc *oidc = NULL;
    enum cf_rc rc = CF_OK;
    bool generic = config->issuer && *config->issuer;
    bool entra = config->entra_tenant && *config->entra_tenant;
    const char *authority = config->entra_authority && *config->entra_authority
                                ? config->entra_authority
                                : CF_OIDC_ENTRA_AUTHORITY;
    size_t secret_len = config->client_secret ? strlen(config->client_secret) : 0;
    size_t cert_len = config->client_certificate ? strlen(config->client_certificate) : 0;
    int n;

    *out = NULL;
    if (generic == entra)
        return cf_err_set(err, CF_EINVAL,
                          "single sign-on needs exactly one of --oidc-issuer (any OpenID Connect "
                          "provider) and --oidc-entra-tenant (Microsoft Entra ID)");
    if (!config->client_id || !*config->client_id || strlen(config->client_id) > CF_OIDC_CLAIM_MAX)
        return cf_err_set(err, CF_EINVAL,
                          "single sign-on needs --oidc-client-id (at most %d "
                          "characters)",
                          CF_OIDC_CLAIM_MAX);
    if (secret_len && cert_len)
        return cf_err_set(err, CF_EINVAL,
                          "single sign-on takes a client secret or --oidc-client-certificate, not "
                          "both");
    if (!cert_len && (secret_len == 0 || secret_len > CF_OIDC_SECRET_MAX))
        return cf_err_set(err, CF_EINVAL,
                          "single sign-on needs the client secret (--oidc-client-secret-file or "
                          "COFFER_OIDC_CLIENT_SECRET), of at most %d bytes, or a certificate "
                          "(--oidc-client-certificate)",
                          CF_OIDC_SECRET_MAX);
    if (config->require_group && !(config->group_roles && *config->group_roles))
        return cf_err_set(err, CF_EINVAL,
                          "--oidc-require-group needs --oidc-group-role (the groups that may sign "
                          "in)");
    if (cert_len) {
        /* Signed once now, so that a certificate without its key refuses to start. */
        struct cf_buf probe;
        cf_buf_init(&probe, 64 * 1024);
        rc = cf_assertion_sign(config->client_certificate, "--oidc-client-certificate",
                               config->client_id, "https://probe.invalid/token", 0, &probe, err);
        cf_buf_release_wipe(&probe);
        if (rc != CF_OK)
            return rc;
    }
    if (!config->redirect_url || !*config->redirect_url)
        return cf_err_set(err, CF_EINVAL,
                          "single sign-on needs --oidc-redirect-url, this server's "
                          "https://HOST/api/v1/sso/oidc/callback as registered at the provider");
    rc = check_url("oidc-redirect-url", config->redirect_url, err);
    if (rc == CF_OK && generic)
        rc = check_url("oidc-issuer", config->issuer, err);
    if (rc == CF_OK && entra && !tenant_ok(config->entra_tenant))
        rc = cf_err_set(err, CF_EINVAL,
                        "--oidc-entra-tenant takes a tenant id or domain (letters, digits, '-' and "
                        "'.', at most %d)",
                        TENANT_MAX);
    if (rc == CF_OK && entra)
        rc = check_url("oidc-entra-authority", authority, err);
    if (rc != CF_OK)
        return rc;

    oidc = calloc(1, sizeof(*oidc));
    if (!oidc)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    pthread_mutex_init(&oidc->lock, NULL);
    oidc->issuer = dup_or_null(config->issuer);
    oidc->entra_tenant = dup_or_null(config->entra_tenant);
    oidc->entra_authority = entra ? strdup(authority) : NULL;
    oidc->client_id = strdup(config->client_id);
    oidc->redirect_url = strdup(config->redirect_url);
    oidc->scopes = strdup(config->scopes && *config->scopes ? config->scopes : DEFAULT_SCOPES);
    oidc->allowed_domains = dup_or_null(config->allowed_domains);
    oidc->ca_file = dup_or_null(config->ca_file);
    oidc->groups_claim =
        strdup(config->groups_claim && *config->groups_claim ? config->groups_claim : "groups");
    oidc->graph_url =
        strdup(config->graph_url && *config->graph_url ? config->graph_url : CF_OIDC_GRAPH_URL);
    oidc->require_group = config->require_group;
    if (cert_len)
        oidc->client_certificate = sodium_malloc(cert_len + 1);
    else
        oidc->client_secret = sodium_malloc(secret_len + 1);
    if (!oidc->client_id || !oidc->redirect_url || !oidc->scopes ||
        !(oidc->client_secret || oidc->client_certificate) || !oidc->groups_claim ||
        !oidc->graph_url || (generic && !oidc->issuer) ||
        (entra && (!oidc->entra_tenant || !oidc->entra_authority)) ||
        (config->allowed_domains && *config->allowed_domains && !oidc->allowed_domains) ||
        (config->ca_file && *config->ca_file && !oidc->ca_file)) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    if (cert_len)
        memcpy(oidc->client_certificate, config->client_certificate, cert_len + 1);
    else
        memcpy(oidc->client_secret, config->client_secret, secret_len + 1);
    rc = parse_group_roles(oidc, config->group_roles, err);
    if (rc == CF_OK && entra)
        rc = check_url("oidc-graph-url", oidc->graph_url, err);
    if (rc != CF_OK)
        goto out;
    if (generic) {
        size_t len = strlen(oidc->issuer);
        bool slash = len > 0 && oidc->issuer[len - 1] == '/';
        n = snprintf(oidc->discovery_url, sizeof(oidc->discovery_url),
                     "%.*s/.well-known/openid-configuration", (int)(len - (slash ? 1 : 0)),
                     oidc->issuer);
    } else {
        size_t len = strlen(authority);
        bool slash = len > 0 && authority[len - 1] == '/';
        n = snprintf(oidc->discovery_url, sizeof(oidc->discovery_url),
                     "%.*s/%s/v2.0/.well-known/openid-configuration", (int)(len - (slash ? 1 : 0)),
                     authority, oidc->entra_tenant);
    }
    if (n < 0 || (size_t)n >= sizeof(oidc->discovery_url))
        rc = cf_err_set(err, CF_EINVAL, "the provider's discovery URL is too long");
out:
    if (rc != CF_OK) {
        cf_oidc_free(oidc);
        oidc = NULL;
    }
    *out = oidc;
    return rc;
}

void cf_oidc_free(struct cf_oidc *oidc)
{
    if (!oidc)
        return;
    if (oidc->client_secret) {
        sodium_memzero(oidc->client_secret, strlen(oidc->client_secret));
        sodium_free(oidc->client_secret);
    }
    if (oidc->client_certificate) {
        sodium_memzero(oidc->client_certificate, strlen(oidc->client_certificate));
        sodium_free(oidc->client_certificate);
    }
    for (size_t i = 0; i < oidc->n_roles; i++)
        free(oidc->roles[i].group);
    free(oidc->groups_claim);
    free(oidc->graph_url);
    free(oidc->issuer);
    free(oidc->entra_tenant);
    free(oidc->entra_authority);
    free(oidc->client_id);
    free(oidc->redirect_url);
    free(oidc->scopes);
    free(oidc->allowed_domains);
    free(oidc->ca_file);
    pthread_mutex_destroy(&oidc->lock);
    free(oidc);
}

bool cf_oidc_return_ok(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > CF_SSO_RETURN_MAX || p[0] != '/' || p[1] == '/' || p[1] == '\\')
        return false;
    for (const char *c = p; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f || *c == '\\')
            return false;
    return cf_utf8_valid(p, n);
}

/* ---- discovery ---- */

/* Copies the string member name of doc into out (size bytes): CF_EUNAVAIL naming it when it is
 * missing, not a string or too long. */
static enum cf_rc doc_string(json_t *doc, const char *name, char *out, size_t size,
                             struct cf_err *err)
{
    const char *v = json_string_value(json_object_get(doc, name));
    if (!v || !*v)
        return cf_err_set(err, CF_EUNAVAIL,
                          "the provider's discovery document has no \"%s\": single sign-on cannot "
                          "begin",
                          name);
    if (!cf_strlcpy(out, v, size))
        return cf_err_set(err, CF_EUNAVAIL,
                          "the provider's discovery document's \"%s\" is too long", name);
    return CF_OK;
}

/* Strips one trailing '/' for comparing issuers written with and without it. */
static size_t trimmed_len(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && s[n - 1] == '/' ? n - 1 : n;
}

static enum cf_rc fetch_discovery(struct cf_oidc *oidc, int64_t now_ms, struct discovery *d,
                                  struct cf_err *err)
{
    struct cf_http_request req = {.net = {.url = oidc->discovery_url, .ca_file = oidc->ca_file},
                                  .response_max = DISCOVERY_MAX,
                                  .attempts = 2};
    struct cf_http_response resp = {0};
    json_t *doc = NULL;
    json_error_t jerr;
    char shown[CF_OIDC_URL_MAX];
    enum cf_rc rc;

    cf_net_url_redact(oidc->discovery_url, shown, sizeof(shown));
    memset(d, 0, sizeof(*d));
    rc = cf_http_perform(&req, &resp, err);
    if (rc != CF_OK) {
        char why[CF_ERR_MSG_MAX];
        cf_strlcpy(why, err->msg, sizeof(why));
        rc = cf_err_set(err, CF_EUNAVAIL,
                        "the identity provider could not be reached (discovery document %s): %s",
                        shown, why);
        goto out;
    }
    if (resp.status != 200) {
        rc = cf_err_set(err, CF_EUNAVAIL,
                        "the identity provider's discovery document %s answered HTTP %ld", shown,
                        resp.status);
        goto out;
    }
    doc = json_loadb(resp.body ? resp.body : "", resp.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(doc)) {
        rc =
            cf_err_set(err, CF_EUNAVAIL,
                       "the identity provider's discovery document %s is not a JSON object", shown);
        goto out;
    }
    rc = doc_string(doc, "issuer", d->issuer, sizeof(d->issuer), err);
    if (rc == CF_OK)
        rc = doc_string(doc, "authorization_endpoint", d->authorize, sizeof(d->authorize), err);
    if (rc == CF_OK)
        rc = doc_string(doc, "token_endpoint", d->token, sizeof(d->token), err);
    if (rc == CF_OK)
        rc = doc_string(doc, "jwks_uri", d->jwks, sizeof(d->jwks), err);
    if (rc != CF_OK)
        goto out;
    /* OpenID Connect Discovery 1.0 section 4.3: the document's issuer must be the one asked for, so
     * that one provider cannot speak for another. Entra ID's names the tenant by its id, whatever
     * name the tenant was configured by. */
    if (oidc->issuer && (trimmed_len(d->issuer) != trimmed_len(oidc->issuer) ||
                         strncmp(d->issuer, oidc->issuer, trimmed_len(oidc->issuer)) != 0)) {
        rc = cf_err_set(err, CF_EUNAVAIL,
                        "the discovery document names the issuer \"%.100s\", not the configured "
                        "--oidc-issuer",
                        d->issuer);
        goto out;
    }
    const char *endpoints[] = {d->authorize, d->token, d->jwks};
    for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
        const char *why = cf_net_url_refused(endpoints[i]);
        if (why) {
            rc = cf_err_set(err, CF_EUNAVAIL,
                            "the provider's discovery document names an endpoint that %s", why);
            goto out;
        }
    }
    d->fetched_ms = now_ms;
out:
    json_decref(doc);
    cf_http_response_release(&resp);
    return rc;
}

/* The provider's discovery document, fetched at most once per CF_OIDC_DISCOVERY_TTL_MS (no lock is
 * held while fetching: two threads may both fetch, and either result is good). */
static enum cf_rc discover(struct cf_oidc *oidc, int64_t now_ms, struct discovery *d,
                           struct cf_err *err)
{
    pthread_mutex_lock(&oidc->lock);
    bool fresh = oidc->cached.fetched_ms != 0 &&
                 now_ms - oidc->cached.fetched_ms < CF_OIDC_DISCOVERY_TTL_MS &&
                 now_ms >= oidc->cached.fetched_ms;
    if (fresh)
        *d = oidc->cached;
    pthread_mutex_unlock(&oidc->lock);
    if (fresh)
        return CF_OK;
    enum cf_rc rc = fetch_discovery(oidc, now_ms, d, err);
    if (rc == CF_OK) {
        pthread_mutex_lock(&oidc->lock);
        oidc->cached = *d;
        pthread_mutex_unlock(&oidc->lock);
    }
    return rc;
}

/* ---- state, nonce and verifier ---- */

/* The keyed hash of label and state under a key of the root key: 32 bytes into out. */
static void derive_raw(struct cf_keyring *kr, const char *label, const char *state, uint8_t out[32])
{
    uint8_t key[CF_SUBKEY_BYTES];
    crypto_generichash_state h;
    cf_keyring_derive(kr, "sso-oidc-login", key);
    crypto_generichash_init(&h, key, sizeof(key), 32);
    crypto_generichash_update(&h, (const unsigned char *)label, strlen(label) + 1);
    crypto_generichash_update(&h, (const unsigned char *)state, strlen(state));
    crypto_generichash_final(&h, out, 32);
    sodium_memzero(key, sizeof(key));
    sodium_memzero(&h, sizeof(h));
}

/* derive_raw as unpadded base64url (43 characters: a valid PKCE verifier and nonce). */
static void derive_text(struct cf_keyring *kr, const char *label, const char *state,
                        char out[B64_32])
{
    uint8_t raw[32];
    derive_raw(kr, label, state, raw);
    sodium_bin2base64(out, B64_32, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
}

/* Appends name=value (value escaped) to the query of u. */
static enum cf_rc add_param(CURLU *u, const char *name, const char *value, struct cf_err *err)
{
    struct cf_buf pair;
    enum cf_rc rc;
    cf_buf_init(&pair, CF_OIDC_URL_MAX);
    rc = cf_buf_printf(&pair, "%s=%s", name, value);
    if (rc == CF_OK && curl_url_set(u, CURLUPART_QUERY, pair.data,
                                    CURLU_APPENDQUERY | CURLU_URLENCODE) != CURLUE_OK)
        rc = cf_err_set(err, CF_ENOMEM, "cannot build the authorize URL");
    else if (rc != CF_OK)
        rc = cf_err_set(err, rc, "the authorize URL's \"%s\" is too long", name);
    cf_buf_release(&pair);
    return rc;
}

/* cf_oidc_login_begin after the return path was checked (a path, or a CLI sign-in's marker). */
static enum cf_rc login_begin(struct cf_oidc *oidc, struct cf_store *st, struct cf_keyring *kr,
                              const char *return_path, const char *source_ip, int64_t now_ms,
                              char **authorize_url, struct cf_err *err);

enum cf_rc cf_oidc_login_begin(struct cf_oidc *oidc, struct cf_store *st, struct cf_keyring *kr,
                               const char *return_path, const char *source_ip, int64_t now_ms,
                               char **authorize_url, struct cf_err *err)
{
    *authorize_url = NULL;
    if (!return_path || !*return_path)
        return_path = "/";
    if (!cf_oidc_return_ok(return_path))
        return cf_err_field(err, CF_EVALIDATION, "return",
                            "return must be a path of this server: one '/' then at most %d "
                            "characters without spaces, control characters or '\\'",
                            CF_SSO_RETURN_MAX - 1);
    return login_begin(oidc, st, kr, return_path, source_ip, now_ms, authorize_url, err);
}

/* Whether text is n base64url characters. */
static bool b64url_text(const char *text, size_t n)
{
    if (!text || strlen(text) != n)
        return false;
    for (const char *p = text; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return false;
    return true;
}

enum cf_rc cf_oidc_cli_login_begin(struct cf_oidc *oidc, struct cf_store *st, struct cf_keyring *kr,
                                   const char *port, const char *challenge, const char *source_ip,
                                   int64_t now_ms, char **authorize_url, struct cf_err *err)
{
    char marker[CF_SSO_RETURN_MAX];
    long number = 0;
    *authorize_url = NULL;
    if (!port || !*port || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port) ||
        (number = strtol(port, NULL, 10)) < 1024 || number > 65535)
        return cf_err_field(err, CF_EVALIDATION, "port",
                            "port: required, the CLI's loopback port (1024 to 65535)");
    if (!b64url_text(challenge, B64_32 - 1))
        return cf_err_field(err, CF_EVALIDATION, "challenge",
                            "challenge: required, base64url(SHA-256(verifier)) without padding "
                            "(43 characters)");
    snprintf(marker, sizeof(marker), "%s%ld:%s", CF_OIDC_CLI_RETURN, number, challenge);
    return login_begin(oidc, st, kr, marker, source_ip, now_ms, authorize_url, err);
}

bool cf_oidc_cli_return(const char *return_path, int *port, char challenge[CF_OIDC_CODE_SIZE])
{
    size_t prefix = strlen(CF_OIDC_CLI_RETURN);
    char *end = NULL;
    if (strncmp(return_path, CF_OIDC_CLI_RETURN, prefix) != 0)
        return false;
    long number = strtol(return_path + prefix, &end, 10);
    if (!end || *end != ':' || number < 1024 || number > 65535 || !b64url_text(end + 1, B64_32 - 1))
        return false;
    *port = (int)number;
    memcpy(challenge, end + 1, B64_32);
    return true;
}

#define CODE_PREFIX "code:"

enum cf_rc cf_oidc_cli_code_issue(struct cf_store *st, struct cf_keyring *kr, const char *user_id,
                                  const char *challenge, const char *source_ip, int64_t now_ms,
                                  char code[CF_OIDC_CODE_SIZE], struct cf_err *err)
{
    static const struct cf_sso_login_limits limits = {
        .max_pending = CF_OIDC_PENDING_MAX, .max_per_source = CF_OIDC_PENDING_PER_ADDRESS};
    uint8_t random[32], code_hash[CF_SSO_STATE_HASH_LEN];
    char row[CF_SSO_RETURN_MAX];
    randombytes_buf(random, sizeof(random));
    sodium_bin2base64(code, CF_OIDC_CODE_SIZE, random, sizeof(random),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(random, sizeof(random));
    derive_raw(kr, "cli-code", code, code_hash);
    snprintf(row, sizeof(row), "%s%s:%s", CODE_PREFIX, user_id, challenge);
    enum cf_rc rc = cf_store_sso_login_put(st, code_hash, row, source_ip, now_ms,
                                           now_ms + CF_OIDC_CODE_TTL_MS, &limits, err);
    if (rc != CF_OK)
        sodium_memzero(code, CF_OIDC_CODE_SIZE);
    return rc;
}

enum cf_rc cf_oidc_cli_code_redeem(struct cf_store *st, struct cf_keyring *kr, const char *code,
                                   const char *verifier, int64_t now_ms,
                                   char user_id[CF_OIDC_USER_ID_SIZE], struct cf_err *err)
{
    uint8_t code_hash[CF_SSO_STATE_HASH_LEN], digest[crypto_hash_sha256_BYTES];
    char row[CF_SSO_RETURN_MAX + 1], expected[B64_32];
    int64_t expires_ms = 0;
    user_id[0] = '\0';
    if (!code || !*code)
        return cf_err_field(err, CF_EVALIDATION, "code", "code: required");
    if (!verifier || !*verifier)
        return cf_err_field(err, CF_EVALIDATION, "codeVerifier", "codeVerifier: required");
    if (!b64url_text(code, B64_32 - 1))
        return cf_err_set(err, CF_EUNAUTH, "unknown or already used sign-in code");
    derive_raw(kr, "cli-code", code, code_hash);
    enum cf_rc rc = cf_store_sso_login_take(st, code_hash, row, sizeof(row), &expires_ms, err);
    if (rc == CF_ENOTFOUND)
        return cf_err_set(err, CF_EUNAUTH, "unknown or already used sign-in code: sign in again");
    if (rc != CF_OK)
        return rc;
    const char *colon = strncmp(row, CODE_PREFIX, strlen(CODE_PREFIX)) == 0
                            ? strchr(row + strlen(CODE_PREFIX), ':')
                            : NULL;
    size_t id_len = colon ? (size_t)(colon - row - strlen(CODE_PREFIX)) : 0;
    if (!colon || id_len == 0 || id_len >= CF_OIDC_USER_ID_SIZE)
        return cf_err_set(err, CF_EUNAUTH, "unknown or already used sign-in code: sign in again");
    if (expires_ms < now_ms) {
        char when[CF_TIME_RFC3339_LEN];
        return cf_err_set(err, CF_EUNAUTH, "the sign-in code expired at %s: sign in again",
                          cf_time_format(expires_ms, when));
    }
    /* The code was made for the holder of the verifier whose hash the CLI sent at the start: a
     * code seen by another local process (on the loopback port) is useless without it. */
    crypto_hash_sha256(digest, (const unsigned char *)verifier, strlen(verifier));
    sodium_bin2base64(expected, sizeof(expected), digest, sizeof(digest),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (strlen(colon + 1) != B64_32 - 1 || sodium_memcmp(expected, colon + 1, B64_32 - 1) != 0)
        return cf_err_field(err, CF_EUNAUTH, "codeVerifier",
                            "codeVerifier does not match the challenge this sign-in began with");
    memcpy(user_id, row + strlen(CODE_PREFIX), id_len);
    user_id[id_len] = '\0';
    return CF_OK;
}

static enum cf_rc login_begin(struct cf_oidc *oidc, struct cf_store *st, struct cf_keyring *kr,
                              const char *return_path, const char *source_ip, int64_t now_ms,
                              char **authorize_url, struct cf_err *err)
{
    static const struct cf_sso_login_limits limits = {
        .max_pending = CF_OIDC_PENDING_MAX, .max_per_source = CF_OIDC_PENDING_PER_ADDRESS};
    struct discovery d;
    char state[B64_32];
    char nonce[B64_32], verifier[B64_32], challenge[B64_32];
    uint8_t state_hash[CF_SSO_STATE_HASH_LEN], digest[crypto_hash_sha256_BYTES];
    CURLU *u = NULL;
    char *url = NULL;
    enum cf_rc rc;

    *authorize_url = NULL;
    rc = discover(oidc, now_ms, &d, err);
    if (rc != CF_OK)
        return rc;

    uint8_t random[32];
    randombytes_buf(random, sizeof(random));
    sodium_bin2base64(state, sizeof(state), random, sizeof(random),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(random, sizeof(random));
    derive_raw(kr, "state", state, state_hash);
    derive_text(kr, "nonce", state, nonce);
    derive_text(kr, "pkce", state, verifier);
    crypto_hash_sha256(digest, (const unsigned char *)verifier, strlen(verifier));
    sodium_bin2base64(challenge, sizeof(challenge), digest, sizeof(digest),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);

    rc = cf_store_sso_login_put(st, state_hash, return_path, source_ip, now_ms,
                                now_ms + CF_OIDC_LOGIN_TTL_MS, &limits, err);
    if (rc != CF_OK)
        goto out;
    u = curl_url();
    if (!u || curl_url_set(u, CURLUPART_URL, d.authorize, 0) != CURLUE_OK) {
        rc = cf_err_set(err, CF_EUNAVAIL, "the provider's authorization endpoint is not a URL");
        goto out;
    }
    rc = add_param(u, "client_id", oidc->client_id, err);
    if (rc == CF_OK)
        rc = add_param(u, "response_type", "code", err);
    if (rc == CF_OK)
        rc = add_param(u, "redirect_uri", oidc->redirect_url, err);
    if (rc == CF_OK)
        rc = add_param(u, "response_mode", "query", err);
    if (rc == CF_OK)
        rc = add_param(u, "scope", oidc->scopes, err);
    if (rc == CF_OK)
        rc = add_param(u, "state", state, err);
    if (rc == CF_OK)
        rc = add_param(u, "nonce", nonce, err);
    if (rc == CF_OK)
        rc = add_param(u, "code_challenge", challenge, err);
    if (rc == CF_OK)
        rc = add_param(u, "code_challenge_method", "S256", err);
    if (rc == CF_OK && curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK)
        rc = cf_err_set(err, CF_ENOMEM, "cannot build the authorize URL");
    if (rc == CF_OK) {
        *authorize_url = strdup(url);
        if (!*authorize_url)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
out:
    curl_free(url);
    curl_url_cleanup(u);
    sodium_memzero(verifier, sizeof(verifier));
    sodium_memzero(nonce, sizeof(nonce));
    sodium_memzero(state, sizeof(state));
    return rc;
}

/* ---- finishing ---- */

void cf_oidc_identity_release(struct cf_oidc_identity *id)
{
    for (size_t i = 0; i < id->n_groups; i++)
        free(id->groups[i]);
    free(id->groups);
    id->groups = NULL;
    id->n_groups = 0;
}

void cf_oidc_identity_set_groups(struct cf_oidc_identity *id, char **groups, size_t n)
{
    for (size_t i = 0; i < id->n_groups; i++)
        free(id->groups[i]);
    free(id->groups);
    id->groups = groups;
    id->n_groups = n;
    id->groups_claimed = true;
}

enum cf_rc cf_oidc_apply_group_roles(const struct cf_oidc *oidc, struct cf_oidc_identity *id,
                                     struct cf_err *err)
{
    const struct group_role *best = NULL;
    id->org_role[0] = '\0';
    if (oidc->n_roles == 0)
        return CF_OK;
    for (size_t r = 0; r < oidc->n_roles; r++)
        for (size_t g = 0; g < id->n_groups; g++)
            if (strcmp(oidc->roles[r].group, id->groups[g]) == 0 &&
                (!best || oidc->roles[r].rank > best->rank))
                best = &oidc->roles[r];
    if (!best && oidc->require_group)
        return cf_err_set(err, CF_EFORBIDDEN,
                          "\"%.100s\" is in none of the groups that may sign in here "
                          "(--oidc-require-group, --oidc-group-role)",
                          id->email);
    cf_strlcpy(id->org_role, best ? best->role : "member", sizeof(id->org_role));
    return CF_OK;
}

bool cf_oidc_is_entra(const struct cf_oidc *oidc)
{
    return oidc->entra_tenant != NULL;
}

enum cf_rc cf_oidc_graph_credentials(const struct cf_oidc *oidc, json_t **creds,
                                     const char **method, struct cf_err *err)
{
    *creds = NULL;
    *method = oidc->client_certificate ? "certificate" : "client-secret";
    if (!oidc->entra_tenant)
        return cf_err_set(err, CF_EINVAL, "Microsoft Graph is only asked for Entra ID sign-ins");
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:s}", "tenantId", oidc->entra_tenant, "clientId",
                  oidc->client_id, "authorityHost", oidc->entra_authority, "graphHost",
                  oidc->graph_url, oidc->client_certificate ? "certificate" : "clientSecret",
                  oidc->client_certificate ? oidc->client_certificate : oidc->client_secret);
    if (!o)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    *creds = o;
    return CF_OK;
}

/* Copies at most max characters of text into out (size bytes), printable ASCII only (others become
 * '?'), stopping at the first line break: a provider's words quoted in a message. */
static void quote_line(const char *text, size_t max, char *out, size_t size)
{
    size_t o = 0;
    for (const char *p = text; *p && *p != '\r' && *p != '\n' && o < max && o + 1 < size; p++)
        out[o++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
    out[o] = '\0';
}

/* Appends name=escaped(value)& to form. */
static enum cf_rc form_add(struct cf_buf *form, const char *name, const char *value)
{
    char *escaped = curl_easy_escape(NULL, value, 0);
    if (!escaped)
        return CF_ENOMEM;
    enum cf_rc rc = cf_buf_printf(form, "%s%s=%s", form->len ? "&" : "", name, escaped);
    sodium_memzero(escaped, strlen(escaped));
    curl_free(escaped);
    return rc;
}

/* Adds the client's credential to the token request form: the client secret, or a client
 * assertion signed with the certificate's key for the token endpoint token_url. */
static enum cf_rc client_auth(struct cf_oidc *oidc, const char *token_url, struct cf_buf *form,
                              struct cf_err *err)
{
    struct cf_buf assertion;
    enum cf_rc rc;
    if (!oidc->client_certificate) {
        rc = form_add(form, "client_secret", oidc->client_secret);
        return rc == CF_OK ? CF_OK : cf_err_set(err, rc, "cannot build the token request");
    }
    cf_buf_init(&assertion, 64 * 1024);
    rc = cf_assertion_sign(oidc->client_certificate, "--oidc-client-certificate", oidc->client_id,
                           token_url, cf_now_ms() / 1000, &assertion, err);
    if (rc == CF_OK) {
        rc = form_add(form, "client_assertion_type",
                      "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
        if (rc == CF_OK)
            rc = form_add(form, "client_assertion", assertion.data);
        if (rc != CF_OK)
            rc = cf_err_set(err, rc, "cannot build the token request");
    }
    cf_buf_release_wipe(&assertion);
    return rc;
}

/* Exchanges code at the token endpoint: the ID token into *id_token (malloc'd, the caller wipes and
 * frees it). */
static enum cf_rc exchange_code(struct cf_oidc *oidc, const struct discovery *d, const char *code,
                                const char *verifier, char **id_token, struct cf_err *err)
{
    static const char *const headers[] = {"Content-Type: application/x-www-form-urlencoded",
                                          "Accept: application/json", NULL};
    struct cf_buf form;
    struct cf_http_response resp = {0};
    json_t *answer = NULL;
    json_error_t jerr;
    char shown[CF_OIDC_URL_MAX];
    enum cf_rc rc;

    *id_token = NULL;
    cf_net_url_redact(d->token, shown, sizeof(shown));
    cf_buf_init(&form, 64 * 1024);
    rc = form_add(&form, "grant_type", "authorization_code");
    if (rc == CF_OK)
        rc = form_add(&form, "client_id", oidc->client_id);
    if (rc == CF_OK)
        rc = form_add(&form, "code", code);
    if (rc == CF_OK)
        rc = form_add(&form, "redirect_uri", oidc->redirect_url);
    if (rc == CF_OK)
        rc = form_add(&form, "code_verifier", verifier);
    if (rc == CF_OK)
        rc = client_auth(oidc, d->token, &form, err);
    if (rc != CF_OK)
        goto out;
    struct cf_http_request req = {.net = {.url = d->token, .ca_file = oidc->ca_file},
                                  .method = "POST",
                                  .body = form.data,
                                  .body_len = form.len,
                                  .headers = headers,
                                  .response_max = TOKEN_RESPONSE_MAX};
    rc = cf_http_perform(&req, &resp, err);
    if (rc != CF_OK) {
        rc = cf_err_set(err, CF_EUNAVAIL,
                        "the identity provider's token endpoint %s could not be reached: %s", shown,
                        err->msg);
        goto out;
    }
    answer = json_loadb(resp.body ? resp.body : "", resp.len, JSON_REJECT_DUPLICATES, &jerr);
    if (resp.status != 200) {
        const char *error = json_string_value(json_object_get(answer, "error"));
        const char *desc = json_string_value(json_object_get(answer, "error_description"));
        char error_q[64], desc_q[DETAIL_MAX + 1];
        if (!error) {
            /* no OAuth error body: a provider in trouble rather than a refusal of this code */
            rc =
                cf_err_set(err, resp.status >= 500 ? CF_EUNAVAIL : CF_EUNAUTH,
                           "the identity provider's token endpoint answered HTTP %ld", resp.status);
            goto out;
        }
        quote_line(error, sizeof(error_q) - 1, error_q, sizeof(error_q));
        quote_line(desc ? desc : "", DETAIL_MAX, desc_q, sizeof(desc_q));
        rc = cf_err_set(err, CF_EUNAUTH, "the identity provider refused the code: %s%s%s", error_q,
                        desc_q[0] ? ": " : "", desc_q);
        goto out;
    }
    const char *token = json_string_value(json_object_get(answer, "id_token"));
    if (!token) {
        rc = cf_err_set(err, CF_EUNAUTH,
                        "the identity provider's token answer has no id_token (is \"openid\" in "
                        "--oidc-scopes?)");
        goto out;
    }
    *id_token = strdup(token);
    if (!*id_token)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
out:
    if (answer) { /* it holds the tokens: wipe its strings as they go */
        const char *k;
        json_t *v;
        json_object_foreach(answer, k, v)
        {
            if (json_is_string(v))
                sodium_memzero((char *)json_string_value(v), json_string_length(v));
        }
    }
    json_decref(answer);
    if (resp.body)
        sodium_memzero(resp.body, resp.len);
    cf_http_response_release(&resp);
    cf_buf_release_wipe(&form);
    return rc;
}

/* Verifies token against the provider's JWKS (refetched once when its kid is unknown). */
static enum cf_rc verify_token(struct cf_jwks_cache *jwks, const struct discovery *d,
                               const char *token, const struct cf_jwt_policy *policy,
                               int64_t now_ms, json_t **claims, struct cf_err *err)
{
    struct cf_jwks_set *set = NULL;
    bool fetched = false;
    enum cf_rc rc = cf_jwks_get(jwks, d->jwks, NULL, false, now_ms, &set, &fetched, err);
    if (rc == CF_EUNAUTH) {
        char why[CF_ERR_MSG_MAX];
        cf_strlcpy(why, err->msg, sizeof(why));
        return cf_err_set(err, CF_EUNAVAIL, "the identity provider's keys: %s", why);
    }
    if (rc != CF_OK)
        return rc;
    rc = cf_jwt_verify(cf_jwks_set_keys(set), token, policy, now_ms / 1000, claims, err);
    if (rc == CF_EUNAUTH && !fetched && strcmp(err->field, "kid") == 0) {
        struct cf_jwks_set *newer = NULL;
        rc = cf_jwks_get(jwks, d->jwks, NULL, true, now_ms, &newer, &fetched, err);
        if (rc == CF_OK)
            rc = cf_jwt_verify(cf_jwks_set_keys(newer), token, policy, now_ms / 1000, claims, err);
        cf_jwks_set_release(newer);
    }
    cf_jwks_set_release(set);
    return rc;
}

/* Copies the string claim name of claims into out (CF_OIDC_CLAIM_MAX + 1 bytes); absent: "" (or
 * CF_EUNAUTH when required). */
static enum cf_rc claim_copy(json_t *claims, const char *name, bool required, char *out,
                             struct cf_err *err)
{
    json_t *v = json_object_get(claims, name);
    out[0] = '\0';
    if (!v && !required)
        return CF_OK;
    if (!json_is_string(v))
        return cf_err_set(err, CF_EUNAUTH, "the ID token's \"%s\" claim is %s", name,
                          v ? "not a string" : "missing");
    if (!cf_strlcpy(out, json_string_value(v), CF_OIDC_CLAIM_MAX + 1))
        return cf_err_set(err, CF_EUNAUTH, "the ID token's \"%s\" claim is over %d characters",
                          name, CF_OIDC_CLAIM_MAX);
    return CF_OK;
}

/* The tenant id in an Entra ID issuer (https://login.microsoftonline.com/{tid}/v2.0) into out; ""
 * when it is the multi-tenant placeholder {tenantid}. */
static void issuer_tenant(const char *issuer, char *out, size_t size)
{
    const char *host = strstr(issuer, "://");
    const char *start = host ? strchr(host + 3, '/') : NULL;
    const char *end = start ? strchr(start + 1, '/') : NULL;
    out[0] = '\0';
    if (start && end && (size_t)(end - start - 1) < size &&
        strncmp(start + 1, "{tenantid}", 10) != 0) {
        memcpy(out, start + 1, (size_t)(end - start - 1));
        out[end - start - 1] = '\0';
    }
}

static bool domain_allowed(const char *allowed, const char *email)
{
    const char *at = strrchr(email, '@');
    if (!at)
        return false;
    struct cf_list_iter it;
    struct cf_str item;
    cf_list_init(&it, allowed);
    while (cf_list_next(&it, &item))
        if (item.n == strlen(at + 1) && strncasecmp(item.p, at + 1, item.n) == 0)
            return true;
    return false;
}

/* The checks after the signature and the policy: nonce, tenant, e-mail, and the copy into out. */
static enum cf_rc check_claims(struct cf_oidc *oidc, const struct discovery *d, json_t *claims,
                               const char *nonce, struct cf_oidc_identity *out, struct cf_err *err)
{
    enum cf_rc rc;
    const char *token_nonce = json_string_value(json_object_get(claims, "nonce"));
    if (!token_nonce)
        return cf_err_set(err, CF_EUNAUTH,
                          "the ID token has no nonce: it was not made for this "
                          "sign-in");
    if (strlen(token_nonce) != strlen(nonce) ||
        sodium_memcmp(token_nonce, nonce, strlen(nonce)) != 0)
        return cf_err_set(err, CF_EUNAUTH,
                          "the ID token's nonce does not match this sign-in (a replayed or "
                          "substituted token)");
    rc = claim_copy(claims, "iss", true, out->issuer, err);
    if (rc == CF_OK)
        rc = claim_copy(claims, "sub", true, out->subject, err);
    if (rc == CF_OK)
        rc = claim_copy(claims, "name", false, out->name, err);
    if (rc == CF_OK)
        rc = claim_copy(claims, "email", false, out->email, err);
    if (rc == CF_OK && oidc->entra_tenant) {
        char expected[CF_OIDC_CLAIM_MAX + 1];
        rc = claim_copy(claims, "tid", true, out->tenant_id, err);
        if (rc == CF_OK)
            rc = claim_copy(claims, "oid", false, out->object_id, err);
        issuer_tenant(d->issuer, expected, sizeof(expected));
        const char *placeholder = strstr(d->issuer, "{tenantid}");
        if (rc == CF_OK && placeholder) {
            char issuer[CF_OIDC_URL_MAX];
            int n = snprintf(issuer, sizeof(issuer), "%.*s%s%s", (int)(placeholder - d->issuer),
                             d->issuer, out->tenant_id, placeholder + strlen("{tenantid}"));
            if (n < 0 || (size_t)n >= sizeof(issuer) || strcmp(issuer, out->issuer) != 0)
                rc = cf_err_set(err, CF_EUNAUTH,
                                "the ID token was refused: issuer \"%.100s\" not allowed",
                                out->issuer);
        }
        if (rc == CF_OK && expected[0] && strcmp(expected, out->tenant_id) != 0)
            rc = cf_err_set(err, CF_EUNAUTH,
                            "the ID token is from tenant \"%.64s\", not the configured tenant "
                            "\"%.64s\"",
                            out->tenant_id, expected);
        /* Entra ID puts the e-mail in "email" only when the user has one set; the sign-in name
         * (a UPN, mostly the address) is preferred_username. */
        if (rc == CF_OK && !out->email[0])
            rc = claim_copy(claims, "preferred_username", false, out->email, err);
    }
    if (rc != CF_OK)
        return rc;
    if (!out->email[0] || !strchr(out->email, '@'))
        return cf_err_set(err, CF_EUNAUTH,
                          "the ID token carries no e-mail address (ask for the \"email\" scope)");
    for (char *p = out->email; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (json_is_false(json_object_get(claims, "email_verified")))
        return cf_err_set(err, CF_EFORBIDDEN,
                          "the identity provider says the e-mail address \"%.100s\" is not "
                          "verified",
                          out->email);
    if (oidc->allowed_domains && !domain_allowed(oidc->allowed_domains, out->email))
        return cf_err_set(err, CF_EFORBIDDEN,
                          "the e-mail domain of \"%.100s\" may not sign in here "
                          "(--oidc-allowed-domains)",
                          out->email);
    const char *claim = oidc->groups_claim;
    json_t *groups = json_object_get(claims, claim);
    json_t *names = json_object_get(claims, "_claim_names");
    /* Entra ID's overage: _claim_names/_claim_sources point at Graph instead of the list (ID
     * tokens), or "hasgroups": true (tokens of the implicit flow). */
    out->groups_overage = (json_is_object(names) && json_object_get(names, claim)) ||
                          json_is_true(json_object_get(claims, "hasgroups"));
    if (groups && !json_is_array(groups))
        return cf_err_set(err, CF_EUNAUTH, "the ID token's \"%.64s\" claim is not an array", claim);
    out->groups_claimed = groups != NULL;
    if (json_array_size(groups) > CF_OIDC_GROUPS_MAX)
        return cf_err_set(err, CF_EUNAUTH, "the ID token names more than %d groups",
                          CF_OIDC_GROUPS_MAX);
    if (json_array_size(groups) > 0) {
        out->groups = calloc(json_array_size(groups), sizeof(*out->groups));
        if (!out->groups)
            return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    size_t i;
    json_t *g;
    json_array_foreach(groups, i, g)
    {
        if (!json_is_string(g) || json_string_length(g) == 0 ||
            json_string_length(g) > CF_OIDC_CLAIM_MAX)
            return cf_err_set(err, CF_EUNAUTH,
                              "the ID token's \"%.64s\" claim holds a value that is not a group "
                              "name or id",
                              claim);
        out->groups[out->n_groups] = strdup(json_string_value(g));
        if (!out->groups[out->n_groups])
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        out->n_groups++;
    }
    return CF_OK;
}

enum cf_rc cf_oidc_login_finish(struct cf_oidc *oidc, struct cf_store *st, struct cf_keyring *kr,
                                struct cf_jwks_cache *jwks, const struct cf_oidc_callback *cb,
                                int64_t now_ms, struct cf_oidc_identity *out, struct cf_err *err)
{
    uint8_t state_hash[CF_SSO_STATE_HASH_LEN];
    char nonce[B64_32] = "", verifier[B64_32] = "";
    char *id_token = NULL;
    json_t *claims = NULL;
    int64_t expires_ms = 0;
    struct discovery d;
    enum cf_rc rc;

    memset(out, 0, sizeof(*out));
    if (!cb->state || !*cb->state)
        return cf_err_field(err, CF_EVALIDATION, "state",
                            "state: required (the provider sends it back; start the sign-in at "
                            "/api/v1/sso/oidc/login)");
    if (strlen(cb->state) > STATE_MAX)
        return cf_err_set(err, CF_EUNAUTH, "unknown sign-in state: start the sign-in again");
    derive_raw(kr, "state", cb->state, state_hash);
    rc = cf_store_sso_login_take(st, state_hash, out->return_path, sizeof(out->return_path),
                                 &expires_ms, err);
    if (rc == CF_ENOTFOUND) {
        rc = cf_err_set(err, CF_EUNAUTH,
                        "unknown or already used sign-in state: start the sign-in again");
        goto out;
    }
    if (rc != CF_OK)
        goto out;
    if (expires_ms < now_ms) {
        char when[CF_TIME_RFC3339_LEN];
        rc = cf_err_set(err, CF_EUNAUTH,
                        "the sign-in expired at %s (it must finish within %d minutes): start "
                        "again",
                        cf_time_format(expires_ms, when), CF_OIDC_LOGIN_TTL_MS / 60000);
        goto out;
    }
    if (cb->error && *cb->error) {
        char error_q[64], desc_q[DETAIL_MAX + 1];
        quote_line(cb->error, sizeof(error_q) - 1, error_q, sizeof(error_q));
        quote_line(cb->error_description ? cb->error_description : "", DETAIL_MAX, desc_q,
                   sizeof(desc_q));
        rc = cf_err_set(err, CF_EUNAUTH, "the identity provider refused the sign-in: %s%s%s",
                        error_q, desc_q[0] ? ": " : "", desc_q);
        goto out;
    }
    if (!cb->code || !*cb->code) {
        rc = cf_err_field(err, CF_EVALIDATION, "code", "code: required");
        goto out;
    }
    if (strlen(cb->code) > CODE_MAX) {
        rc = cf_err_set(err, CF_EUNAUTH, "the authorization code is over %d characters", CODE_MAX);
        goto out;
    }
    rc = discover(oidc, now_ms, &d, err);
    if (rc != CF_OK)
        goto out;
    derive_text(kr, "nonce", cb->state, nonce);
    derive_text(kr, "pkce", cb->state, verifier);
    rc = exchange_code(oidc, &d, cb->code, verifier, &id_token, err);
    if (rc != CF_OK)
        goto out;

    const char *audiences[] = {oidc->client_id};
    struct cf_jwt_policy policy;
    cf_jwt_policy_init(&policy);
    /* Entra ID's multi-tenant documents name the issuer with a placeholder: the tenant check
     * (check_claims) then does the issuer's work. */
    policy.issuer = strstr(d.issuer, "{tenantid}") ? NULL : d.issuer;
    policy.audiences = audiences;
    policy.n_audiences = 1;
    rc = verify_token(jwks, &d, id_token, &policy, now_ms, &claims, err);
    if (rc == CF_EUNAUTH) {
        char why[CF_ERR_MSG_MAX];
        cf_strlcpy(why, err->msg, sizeof(why));
        rc = cf_err_set(err, CF_EUNAUTH, "the ID token was refused: %s", why);
    }
    if (rc == CF_OK)
        rc = check_claims(oidc, &d, claims, nonce, out, err);
out:
    if (id_token) {
        sodium_memzero(id_token, strlen(id_token));
        free(id_token);
    }
    json_decref(claims);
    sodium_memzero(nonce, sizeof(nonce));
    sodium_memzero(verifier, sizeof(verifier));
    if (rc != CF_OK) {
        cf_oidc_identity_release(out);
        memset(out, 0, sizeof(*out));
    }
    return rc;
}
