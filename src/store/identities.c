/* Machine identities in the store (store.h) with their auth methods (universal, JWT, Kubernetes)
 * and client secrets, as SQL run through sqlrun.h. */
#include <string.h>

#include <sodium.h>

#include "store/shared.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

/* The arguments of TOKEN_POLICY_COLS from a struct cf_token_policy. */
#define A_TOKEN_POLICY(p)                                                                          \
    A_INT((p).ttl), A_INT((p).max_ttl), A_INT((p).num_uses_limit), A_TEXT((p).trusted_ips)

/* The TOKEN_POLICY_COLS of a row, starting at column first. */
static void read_token_policy(const struct db_row *s, int first, struct cf_token_policy *p)
{
    p->ttl = db_row_int64(s, first);
    p->max_ttl = db_row_int64(s, first + 1);
    p->num_uses_limit = db_row_int64(s, first + 2);
    db_row_text(s, first + 3, p->trusted_ips, sizeof(p->trusted_ips));
}

static enum cf_rc read_ua(const struct db_row *s, void *item)
{
    struct cf_ua_config *u = item;
    db_row_text(s, 0, u->identity_id, sizeof(u->identity_id));
    db_row_text(s, 1, u->client_id, sizeof(u->client_id));
    read_token_policy(s, 2, &u->token);
    db_row_text(s, 6, u->client_secret_trusted_ips, sizeof(u->client_secret_trusted_ips));
    u->created_at = db_row_int64(s, 7);
    u->updated_at = db_row_int64(s, 8);
    return db_row_status(s);
}

/* Allocates the heap texts of a struct cf_jwt_auth_config (released by
 * cf_jwt_auth_config_release, also after a partial read). */
static enum cf_rc read_jwt(const struct db_row *s, void *item)
{
    struct cf_jwt_auth_config *j = item;
    char **texts[] = {&j->public_keys,     &j->jwks_url,     &j->jwks_ca_cert, &j->bound_issuer,
                      &j->bound_audiences, &j->bound_claims, &j->bound_subject};
    enum cf_rc rc = CF_OK;
    db_row_text(s, 0, j->identity_id, sizeof(j->identity_id));
    db_row_text(s, 1, j->configuration_type, sizeof(j->configuration_type));
    rc = db_row_status(s);
    for (size_t i = 0; rc == CF_OK && i < CF_ARRAY_SIZE(texts); i++)
        rc = sql_col_strdup(s, 2 + (int)i, texts[i]);
    read_token_policy(s, 9, &j->token);
    j->created_at = db_row_int64(s, 13);
    j->updated_at = db_row_int64(s, 14);
    j->clock_skew_leeway = db_row_int64(s, 15);
    return rc;
}

static enum cf_rc read_k8s(const struct db_row *s, void *item)
{
    struct cf_k8s_auth_config *k = item;
    db_row_text(s, 0, k->identity_id, sizeof(k->identity_id));
    db_row_text(s, 1, k->kubernetes_host, sizeof(k->kubernetes_host));
    db_row_text(s, 2, k->ca_cert, sizeof(k->ca_cert));
    db_row_text(s, 3, k->token_reviewer_jwt, sizeof(k->token_reviewer_jwt));
    db_row_text(s, 4, k->allowed_namespaces, sizeof(k->allowed_namespaces));
    db_row_text(s, 5, k->allowed_names, sizeof(k->allowed_names));
    db_row_text(s, 6, k->allowed_audience, sizeof(k->allowed_audience));
    read_token_policy(s, 7, &k->token);
    k->created_at = db_row_int64(s, 11);
    k->updated_at = db_row_int64(s, 12);
    return CF_OK;
}

static enum cf_rc read_client_secret(const struct db_row *s, void *item)
{
    struct cf_client_secret *c = item;
    db_row_text(s, 0, c->id, sizeof(c->id));
    db_row_text(s, 1, c->identity_id, sizeof(c->identity_id));
    db_row_text(s, 2, c->description, sizeof(c->description));
    db_row_text(s, 3, c->prefix, sizeof(c->prefix));
    c->expires_at = db_row_int64(s, 5);
    c->num_uses = db_row_int64(s, 6);
    c->num_uses_limit = db_row_int64(s, 7);
    c->revoked = (int)db_row_int64(s, 8) != 0;
    c->created_at = db_row_int64(s, 9);
    c->updated_at = db_row_int64(s, 10);
    enum cf_rc rc = db_row_status(s);
    return rc == CF_OK ? sql_col_fixed(s, 4, c->hash, sizeof(c->hash)) : rc;
}

static struct sql_stmt ST_IDENTITY_INSERT =
    SQL_STMT("INSERT INTO identities (" IDENTITY_COLS ") VALUES (?1, ?2, ?3, ?4)");

enum cf_rc cf_store_identity_create(struct cf_store *base, const struct cf_identity *identity,
                                    struct cf_err *err)
{
    struct db_conn *c;
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    rc = sql_require_uuid(identity->id, "identity", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(identity->name, sizeof(identity->name), "identity name", err);
    if (rc != CF_OK)
        return rc;
    if (!identity->name[0])
        return cf_err_set(err, CF_EINVAL, "identity name is empty");
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_IDENTITY_INSERT,
                  ARGS(A_TEXT(identity->id), A_TEXT(identity->name),
                       A_INT(sql_time_or_now(identity->created_at, now)),
                       A_INT(sql_time_or_now(identity->updated_at, now))),
                  NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "identity '%s' already exists", identity->name);
    return sql_tx_end(c, rc, err);
}

enum cf_rc cf_store_identity_get(struct cf_store *base, const char *identity_id,
                                 struct cf_identity *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_IDENTITY_BY_ID, ARGS(A_TEXT(identity_id)), sql_read_identity, out,
                       "identity with id", identity_id, err);
}

static struct sql_stmt ST_IDENTITY_LIST =
    SQL_STMT("SELECT " IDENTITY_COLS " FROM identities ORDER BY created_at, name");

enum cf_rc cf_store_identity_list(struct cf_store *base, struct cf_identity_list *out,
                                  struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_identity), .read = sql_read_identity};
    enum cf_rc rc = sql_collect_all(base, &ST_IDENTITY_LIST, NO_ARGS, &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_identity_list_release(out);
    return rc;
}

static struct sql_stmt ST_IDENTITY_RENAME =
    SQL_STMT("UPDATE identities SET name = ?2, updated_at = ?3 WHERE id = ?1");

enum cf_rc cf_store_identity_update(struct cf_store *base, const struct cf_identity *identity,
                                    struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc;

    rc = sql_require_terminated(identity->name, sizeof(identity->name), "identity name", err);
    if (rc != CF_OK)
        return rc;
    if (!identity->name[0])
        return cf_err_set(err, CF_EINVAL, "identity name is empty");
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_IDENTITY_RENAME,
                  ARGS(A_TEXT(identity->id), A_TEXT(identity->name),
                       A_INT(sql_time_or_now(identity->updated_at, cf_now_ms()))),
                  &changes, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "identity '%s' already exists", identity->name);
    else if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "identity with id '%s' not found", identity->id);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_IDENTITY_DELETE = SQL_STMT("DELETE FROM identities WHERE id = ?1");

enum cf_rc cf_store_identity_delete(struct cf_store *base, const char *identity_id,
                                    struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    /* Its universal auth, client secrets, tokens and memberships follow by cascade. */
    rc = sql_exec(c, &ST_IDENTITY_DELETE, ARGS(A_TEXT(identity_id)), &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "identity with id '%s' not found", identity_id);
    return sql_tx_end(c, rc, err);
}

/* The token policy of an auth method (named by method in the message) before it is written. */
static enum cf_rc token_policy_check(const struct cf_token_policy *p, const char *method,
                                     struct cf_err *err)
{
    enum cf_rc rc = sql_require_terminated(p->trusted_ips, sizeof(p->trusted_ips),
                                           "access token trusted IP list", err);
    if (rc == CF_OK && (p->ttl < 0 || p->max_ttl < 0 || p->num_uses_limit < 0))
        rc = cf_err_set(err, CF_EINVAL, "%s durations and limits must not be negative", method);
    return rc;
}

static enum cf_rc ua_check(const struct cf_ua_config *config, struct cf_err *err)
{
    enum cf_rc rc = token_policy_check(&config->token, "universal auth", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(config->client_secret_trusted_ips,
                                    sizeof(config->client_secret_trusted_ips),
                                    "client secret trusted IP list", err);
    return rc;
}

static struct sql_stmt ST_UA_INSERT = SQL_STMT("INSERT INTO identity_universal_auths (" UA_COLS ")"
                                               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");

static struct sql_stmt ST_UA_BY_IDENTITY =
    SQL_STMT("SELECT " UA_COLS " FROM identity_universal_auths WHERE identity_id = ?1");

enum cf_rc cf_store_ua_attach(struct cf_store *base, const struct cf_ua_config *config,
                              struct cf_err *err)
{
    struct cf_ua_config *existing = NULL;
    struct db_conn *c;
    int64_t now = cf_now_ms();
    bool found = false;
    enum cf_rc rc;

    rc = sql_require_uuid(config->identity_id, "identity", err);
    if (rc == CF_OK)
        rc = sql_require_uuid(config->client_id, "client", err);
    if (rc == CF_OK)
        rc = ua_check(config, err);
    if (rc != CF_OK)
        return rc;
    /* Over 4 KiB: off the stack. */
    existing = malloc(sizeof(*existing));
    if (!existing)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        goto out;
    rc = sql_get_row(c, &ST_UA_BY_IDENTITY, ARGS(A_TEXT(config->identity_id)), read_ua, existing,
                     &found, err);
    if (rc == CF_OK && found)
        rc = cf_err_set(err, CF_EEXIST, "universal auth is already attached to identity '%s'",
                        config->identity_id);
    if (rc == CF_OK)
        rc = sql_exec(c, &ST_UA_INSERT,
                      ARGS(A_TEXT(config->identity_id), A_TEXT(config->client_id),
                           A_TOKEN_POLICY(config->token), A_TEXT(config->client_secret_trusted_ips),
                           A_INT(sql_time_or_now(config->created_at, now)),
                           A_INT(sql_time_or_now(config->updated_at, now))),
                      NULL, err);
    if (rc == CF_EEXIST && !found) /* the identity has none: the client id is taken */
        rc = cf_err_set(err, CF_EEXIST, "client id '%s' already exists", config->client_id);
    else if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "identity with id '%s' not found", config->identity_id);
    rc = sql_tx_end(c, rc, err);
out:
    free(existing);
    return rc;
}

static struct sql_stmt ST_UA_UPDATE =
    SQL_STMT("UPDATE identity_universal_auths SET access_token_ttl = ?2,"
             " access_token_max_ttl = ?3, access_token_num_uses_limit = ?4,"
             " access_token_trusted_ips = ?5, client_secret_trusted_ips = ?6,"
             " updated_at = ?7 WHERE identity_id = ?1");

enum cf_rc cf_store_ua_update(struct cf_store *base, const struct cf_ua_config *config,
                              struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc = ua_check(config, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_UA_UPDATE,
                  ARGS(A_TEXT(config->identity_id), A_TOKEN_POLICY(config->token),
                       A_TEXT(config->client_secret_trusted_ips),
                       A_INT(sql_time_or_now(config->updated_at, cf_now_ms()))),
                  &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "universal auth is not attached to identity '%s'",
                        config->identity_id);
    return sql_tx_end(c, rc, err);
}

enum cf_rc cf_store_ua_get(struct cf_store *base, const char *identity_id, struct cf_ua_config *out,
                           struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_UA_BY_IDENTITY, ARGS(A_TEXT(identity_id)), read_ua, out,
                       "universal auth of identity", identity_id, err);
}

static struct sql_stmt ST_UA_BY_CLIENT_ID =
    SQL_STMT("SELECT " UA_COLS " FROM identity_universal_auths WHERE client_id = ?1");

enum cf_rc cf_store_ua_get_by_client_id(struct cf_store *base, const char *client_id,
                                        struct cf_ua_config *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_UA_BY_CLIENT_ID, ARGS(A_TEXT(client_id)), read_ua, out,
                       "universal auth with client id", client_id, err);
}

/* CF_OK when text (NULL reads as "") has at most max characters. */
static enum cf_rc require_within(const char *text, size_t max, const char *what, struct cf_err *err)
{
    if (!text || strlen(text) <= max)
        return CF_OK;
    return cf_err_set(err, CF_EINVAL, "%s is longer than %zu bytes", what, max);
}

static const char *or_empty(const char *text)
{
    return text ? text : "";
}

static enum cf_rc jwt_check(const struct cf_jwt_auth_config *j, struct cf_err *err)
{
    const struct {
        const char *text;
        size_t max;
        const char *what;
    } texts[] = {
        {j->public_keys, CF_JWT_KEYS_TEXT_MAX, "JWT public keys"},
        {j->jwks_url, CF_JWT_TEXT_MAX, "JWKS URL"},
        {j->jwks_ca_cert, CF_JWT_TEXT_MAX, "JWKS CA certificate"},
        {j->bound_issuer, CF_JWT_TEXT_MAX, "JWT bound issuer"},
        {j->bound_audiences, CF_JWT_TEXT_MAX, "JWT bound audiences"},
        {j->bound_claims, CF_JWT_TEXT_MAX, "JWT bound claims"},
        {j->bound_subject, CF_JWT_TEXT_MAX, "JWT bound subject"},
    };
    enum cf_rc rc = sql_require_uuid(j->identity_id, "identity", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(j->configuration_type, sizeof(j->configuration_type),
                                    "JWT configuration type", err);
    for (size_t i = 0; rc == CF_OK && i < CF_ARRAY_SIZE(texts); i++)
        rc = require_within(texts[i].text, texts[i].max, texts[i].what, err);
    if (rc == CF_OK)
        rc = token_policy_check(&j->token, "JWT auth", err);
    return rc;
}

static struct sql_stmt ST_JWT_INSERT =
    SQL_STMT("INSERT INTO identity_jwt_auths (" JWT_COLS ")"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
             " ?16)");

static struct sql_stmt ST_JWT_UPDATE =
    SQL_STMT("UPDATE identity_jwt_auths SET configuration_type = ?2, public_keys = ?3,"
             " jwks_url = ?4, jwks_ca_cert = ?5, bound_issuer = ?6, bound_audiences = ?7,"
             " bound_claims = ?8, bound_subject = ?9, access_token_ttl = ?10,"
             " access_token_max_ttl = ?11, access_token_num_uses_limit = ?12,"
             " access_token_trusted_ips = ?13, updated_at = ?14, clock_skew_leeway = ?15"
             " WHERE identity_id = ?1");

/* &ST_JWT_INSERT (attach) or &ST_JWT_UPDATE, whose parameters are the same but for created_at. */
static enum cf_rc jwt_write(struct db_conn *c, const struct cf_jwt_auth_config *j, bool attach,
                            int64_t *changes, struct cf_err *err)
{
    int64_t now = cf_now_ms();
    if (attach)
        return sql_exec(c, &ST_JWT_INSERT,
                        ARGS(A_TEXT(j->identity_id), A_TEXT(j->configuration_type),
                             A_TEXT(or_empty(j->public_keys)), A_TEXT(or_empty(j->jwks_url)),
                             A_TEXT(or_empty(j->jwks_ca_cert)), A_TEXT(or_empty(j->bound_issuer)),
                             A_TEXT(or_empty(j->bound_audiences)),
                             A_TEXT(or_empty(j->bound_claims)), A_TEXT(or_empty(j->bound_subject)),
                             A_TOKEN_POLICY(j->token), A_INT(sql_time_or_now(j->created_at, now)),
                             A_INT(sql_time_or_now(j->updated_at, now)),
                             A_INT(j->clock_skew_leeway)),
                        changes, err);
    return sql_exec(c, &ST_JWT_UPDATE,
                    ARGS(A_TEXT(j->identity_id), A_TEXT(j->configuration_type),
                         A_TEXT(or_empty(j->public_keys)), A_TEXT(or_empty(j->jwks_url)),
                         A_TEXT(or_empty(j->jwks_ca_cert)), A_TEXT(or_empty(j->bound_issuer)),
                         A_TEXT(or_empty(j->bound_audiences)), A_TEXT(or_empty(j->bound_claims)),
                         A_TEXT(or_empty(j->bound_subject)), A_TOKEN_POLICY(j->token),
                         A_INT(sql_time_or_now(j->updated_at, now)), A_INT(j->clock_skew_leeway)),
                    changes, err);
}

enum cf_rc cf_store_jwt_auth_attach(struct cf_store *base, const struct cf_jwt_auth_config *config,
                                    struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = jwt_check(config, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = jwt_write(c, config, true, NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "JWT auth is already attached to identity '%s'",
                        config->identity_id);
    else if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "identity with id '%s' not found", config->identity_id);
    return sql_tx_end(c, rc, err);
}

enum cf_rc cf_store_jwt_auth_update(struct cf_store *base, const struct cf_jwt_auth_config *config,
                                    struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc = jwt_check(config, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = jwt_write(c, config, false, &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "JWT auth is not attached to identity '%s'",
                        config->identity_id);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_JWT_BY_IDENTITY =
    SQL_STMT("SELECT " JWT_COLS " FROM identity_jwt_auths WHERE identity_id = ?1");

enum cf_rc cf_store_jwt_auth_get(struct cf_store *base, const char *identity_id,
                                 struct cf_jwt_auth_config *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = sql_get_one(base, &ST_JWT_BY_IDENTITY, ARGS(A_TEXT(identity_id)), read_jwt, out,
                                "JWT auth of identity", identity_id, err);
    if (rc != CF_OK)
        cf_jwt_auth_config_release(out);
    return rc;
}

static enum cf_rc k8s_check(const struct cf_k8s_auth_config *k, struct cf_err *err)
{
    const struct {
        const char *text;
        size_t size;
        const char *what;
    } texts[] = {
        {k->kubernetes_host, sizeof(k->kubernetes_host), "Kubernetes host"},
        {k->ca_cert, sizeof(k->ca_cert), "Kubernetes CA certificate"},
        {k->token_reviewer_jwt, sizeof(k->token_reviewer_jwt), "token reviewer JWT"},
        {k->allowed_namespaces, sizeof(k->allowed_namespaces), "allowed namespaces"},
        {k->allowed_names, sizeof(k->allowed_names), "allowed names"},
        {k->allowed_audience, sizeof(k->allowed_audience), "allowed audience"},
    };
    enum cf_rc rc = sql_require_uuid(k->identity_id, "identity", err);
    for (size_t i = 0; rc == CF_OK && i < CF_ARRAY_SIZE(texts); i++)
        rc = sql_require_terminated(texts[i].text, texts[i].size, texts[i].what, err);
    if (rc == CF_OK)
        rc = token_policy_check(&k->token, "Kubernetes auth", err);
    return rc;
}

static struct sql_stmt ST_K8S_INSERT =
    SQL_STMT("INSERT INTO identity_kubernetes_auths (" K8S_COLS ")"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");

static struct sql_stmt ST_K8S_UPDATE =
    SQL_STMT("UPDATE identity_kubernetes_auths SET kubernetes_host = ?2, ca_cert = ?3,"
             " token_reviewer_jwt = ?4, allowed_namespaces = ?5, allowed_names = ?6,"
             " allowed_audience = ?7, access_token_ttl = ?8, access_token_max_ttl = ?9,"
             " access_token_num_uses_limit = ?10, access_token_trusted_ips = ?11,"
             " updated_at = ?12 WHERE identity_id = ?1");

/* &ST_K8S_INSERT (attach) or &ST_K8S_UPDATE, whose parameters are the same but for created_at. */
static enum cf_rc k8s_write(struct db_conn *c, const struct cf_k8s_auth_config *k, bool attach,
                            int64_t *changes, struct cf_err *err)
{
    int64_t now = cf_now_ms();
    if (attach)
        return sql_exec(c, &ST_K8S_INSERT,
                        ARGS(A_TEXT(k->identity_id), A_TEXT(k->kubernetes_host), A_TEXT(k->ca_cert),
                             A_TEXT(k->token_reviewer_jwt), A_TEXT(k->allowed_namespaces),
                             A_TEXT(k->allowed_names), A_TEXT(k->allowed_audience),
                             A_TOKEN_POLICY(k->token), A_INT(sql_time_or_now(k->created_at, now)),
                             A_INT(sql_time_or_now(k->updated_at, now))),
                        changes, err);
    return sql_exec(c, &ST_K8S_UPDATE,
                    ARGS(A_TEXT(k->identity_id), A_TEXT(k->kubernetes_host), A_TEXT(k->ca_cert),
                         A_TEXT(k->token_reviewer_jwt), A_TEXT(k->allowed_namespaces),
                         A_TEXT(k->allowed_names), A_TEXT(k->allowed_audience),
                         A_TOKEN_POLICY(k->token), A_INT(sql_time_or_now(k->updated_at, now))),
                    changes, err);
}

enum cf_rc cf_store_kubernetes_auth_attach(struct cf_store *base,
                                           const struct cf_k8s_auth_config *config,
                                           struct cf_err *err)
{
    struct db_conn *c;
    enum cf_rc rc = k8s_check(config, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = k8s_write(c, config, true, NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "Kubernetes auth is already attached to identity '%s'",
                        config->identity_id);
    else if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "identity with id '%s' not found", config->identity_id);
    return sql_tx_end(c, rc, err);
}

enum cf_rc cf_store_kubernetes_auth_update(struct cf_store *base,
                                           const struct cf_k8s_auth_config *config,
                                           struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc = k8s_check(config, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = k8s_write(c, config, false, &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "Kubernetes auth is not attached to identity '%s'",
                        config->identity_id);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_K8S_BY_IDENTITY =
    SQL_STMT("SELECT " K8S_COLS " FROM identity_kubernetes_auths WHERE identity_id = ?1");

enum cf_rc cf_store_kubernetes_auth_get(struct cf_store *base, const char *identity_id,
                                        struct cf_k8s_auth_config *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_K8S_BY_IDENTITY, ARGS(A_TEXT(identity_id)), read_k8s, out,
                       "Kubernetes auth of identity", identity_id, err);
}

static struct sql_stmt ST_CSECRET_INSERT =
    SQL_STMT("INSERT INTO identity_client_secrets (" CSECRET_COLS ")"
             " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");

enum cf_rc cf_store_client_secret_create(struct cf_store *base,
                                         const struct cf_client_secret *secret, struct cf_err *err)
{
    struct db_conn *c;
    int64_t now = cf_now_ms();
    enum cf_rc rc;

    rc = sql_require_uuid(secret->id, "client secret", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(secret->description, sizeof(secret->description),
                                    "client secret description", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(secret->prefix, sizeof(secret->prefix), "client secret prefix",
                                    err);
    if (rc == CF_OK && (secret->num_uses < 0 || secret->num_uses_limit < 0))
        rc = cf_err_set(err, CF_EINVAL, "client secret use counts must not be negative");
    if (rc != CF_OK)
        return rc;
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_CSECRET_INSERT,
                  ARGS(A_TEXT(secret->id), A_TEXT(secret->identity_id), A_TEXT(secret->description),
                       A_TEXT(secret->prefix), A_BLOB(secret->hash, sizeof(secret->hash)),
                       A_INT(secret->expires_at), A_INT(secret->num_uses),
                       A_INT(secret->num_uses_limit), A_INT(secret->revoked ? 1 : 0),
                       A_INT(sql_time_or_now(secret->created_at, now)),
                       A_INT(sql_time_or_now(secret->updated_at, now))),
                  NULL, err);
    if (rc == CF_EEXIST)
        rc = cf_err_set(err, CF_EEXIST, "client secret with id '%s' already exists", secret->id);
    else if (rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "identity with id '%s' not found", secret->identity_id);
    return sql_tx_end(c, rc, err);
}

static struct sql_stmt ST_CSECRET_LIST =
    SQL_STMT("SELECT " CSECRET_COLS " FROM identity_client_secrets"
             " WHERE identity_id = ?1 ORDER BY created_at DESC, rowid DESC");

enum cf_rc cf_store_client_secret_list(struct cf_store *base, const char *identity_id,
                                       struct cf_client_secret_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_client_secret),
                                .read = read_client_secret};
    enum cf_rc rc = sql_collect_all(base, &ST_CSECRET_LIST, ARGS(A_TEXT(identity_id)), &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_client_secret_list_release(out);
    return rc;
}

/* Revoking twice keeps the time of the first revocation. */
static struct sql_stmt ST_CSECRET_EXPIRING =
    SQL_STMT("SELECT " CSECRET_COLS " FROM identity_client_secrets"
             " WHERE expires_at > 0 AND revoked = 0 AND expires_at <= ?1"
             " ORDER BY expires_at, id");

enum cf_rc cf_store_client_secret_expiring(struct cf_store *base, int64_t until,
                                           struct cf_client_secret_list *out, struct cf_err *err)
{
    struct sql_collector col = {.size = sizeof(struct cf_client_secret),
                                .read = read_client_secret};
    enum cf_rc rc = sql_collect_all(base, &ST_CSECRET_EXPIRING, ARGS(A_INT(until)), &col, err);
    out->items = col.items;
    out->n = col.n;
    if (rc != CF_OK)
        cf_client_secret_list_release(out);
    return rc;
}

static struct sql_stmt ST_CSECRET_BY_ID = SQL_STMT(
    "SELECT " CSECRET_COLS " FROM identity_client_secrets WHERE id = ?2 AND identity_id = ?1");

enum cf_rc cf_store_client_secret_get(struct cf_store *base, const char *identity_id,
                                      const char *secret_id, struct cf_client_secret *out,
                                      struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return sql_get_one(base, &ST_CSECRET_BY_ID, ARGS(A_TEXT(identity_id), A_TEXT(secret_id)),
                       read_client_secret, out, "client secret with id", secret_id, err);
}

static struct sql_stmt ST_CSECRET_REVOKE =
    SQL_STMT("UPDATE identity_client_secrets SET revoked = 1,"
             " updated_at = CASE WHEN revoked <> 0 THEN updated_at ELSE ?3 END"
             " WHERE id = ?2 AND identity_id = ?1");

enum cf_rc cf_store_client_secret_revoke(struct cf_store *base, const char *identity_id,
                                         const char *secret_id, struct cf_err *err)
{
    struct db_conn *c;
    int64_t changes = 0;
    enum cf_rc rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    rc = sql_exec(c, &ST_CSECRET_REVOKE,
                  ARGS(A_TEXT(identity_id), A_TEXT(secret_id), A_INT(cf_now_ms())), &changes, err);
    if (rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "client secret with id '%s' not found", secret_id);
    return sql_tx_end(c, rc, err);
}

enum cf_rc cf_store_client_secret_use(struct cf_store *base, const char *secret_id,
                                      struct cf_err *err)
{
    return sql_count_use(base, &ST_CSECRET_USE, &ST_CSECRET_USE_STATE, "client secret with id",
                         secret_id, err);
}
