/* Machine identities in the store (store.h) with their auth methods (universal, JWT, Kubernetes)
 * and client secrets, as SQL run through sqlrun.h. */
#include <stddef.h>
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

/* The most parameters an auth method's INSERT binds (JWT auth's 16). */
#define AUTH_ARGS_MAX 16

/* Appends the TOKEN_POLICY_COLS of p to args[n...]; returns the new count. */
static size_t bind_token_policy(const struct cf_token_policy *p, struct sq_arg *args, size_t n)
{
    const struct sq_arg policy[] = {A_TOKEN_POLICY(*p)};
    for (size_t i = 0; i < CF_ARRAY_SIZE(policy); i++)
        args[n++] = policy[i];
    return n;
}

/* Appends created_at (attach only) and updated_at, either 0 read as now; returns the new count. */
static size_t bind_times(int64_t created_at, int64_t updated_at, bool attach, int64_t now,
                         struct sq_arg *args, size_t n)
{
    if (attach)
        args[n++] = (struct sq_arg)A_INT(sql_time_or_now(created_at, now));
    args[n++] = (struct sq_arg)A_INT(sql_time_or_now(updated_at, now));
    return n;
}

/* One auth method's table for the shared attach/update/get below. Its INSERT binds the method's
 * column list in order; its UPDATE binds the same but for created_at (and whatever else the
 * method's binder leaves out on update), with identity_id as ?1 in both. */
struct auth_method {
    const char *name;      /* in messages: "JWT auth" */
    const char *get_what;  /* sql_get_one's subject: "JWT auth of identity" */
    size_t size;           /* of the method's config struct */
    size_t identity_id_at; /* offset of its char identity_id[CF_UUID_LEN] */
    struct sql_stmt *insert, *update, *exists, *by_identity;
    /* Checks a config before it is written (attach says which of the two). */
    enum cf_rc (*check)(const void *config, bool attach, struct cf_err *err);
    /* Fills args (AUTH_ARGS_MAX of them) for insert (attach) or update; returns how many. */
    size_t (*bind)(const void *config, bool attach, int64_t now, struct sq_arg *args);
    /* On attach, a unique key other than identity_id is taken: sets the message and returns
     * CF_EEXIST. NULL when identity_id is the table's only unique key. */
    enum cf_rc (*taken)(const void *config, struct cf_err *err);
    row_fn read;
    /* Frees what read allocated, also after a partial read; NULL when it allocates nothing. */
    void (*release)(void *config);
};

/* The four statements of an auth method's table over its column list. */
#define AUTH_STMTS(prefix, table, cols, values, sets)                                              \
    static struct sql_stmt prefix##_INSERT =                                                       \
        SQL_STMT("INSERT INTO " table " (" cols ") VALUES (" values ")");                          \
    static struct sql_stmt prefix##_UPDATE =                                                       \
        SQL_STMT("UPDATE " table " SET " sets " WHERE identity_id = ?1");                          \
    static struct sql_stmt prefix##_EXISTS =                                                       \
        SQL_STMT("SELECT 1 FROM " table " WHERE identity_id = ?1");                                \
    static struct sql_stmt prefix##_BY_IDENTITY =                                                  \
        SQL_STMT("SELECT " cols " FROM " table " WHERE identity_id = ?1")

static const char *auth_identity_id(const struct auth_method *m, const void *config)
{
    return (const char *)config + m->identity_id_at;
}

/* Attaches (INSERT) or updates (UPDATE) the method m of config's identity in one transaction:
 * CF_EEXIST when attaching a method the identity already has, CF_ENOTFOUND when attaching to a
 * missing identity or updating a method the identity does not have. */
static enum cf_rc auth_write(struct cf_store *base, const struct auth_method *m, const void *config,
                             bool attach, struct cf_err *err)
{
    const char *identity_id = auth_identity_id(m, config);
    struct sq_arg args[AUTH_ARGS_MAX];
    struct db_conn *c;
    int64_t existing = 0, changes = 0;
    size_t n_args;
    enum cf_rc rc = m->check(config, attach, err);
    if (rc != CF_OK)
        return rc;
    n_args = m->bind(config, attach, cf_now_ms(), args);
    rc = sql_tx_begin(base, &c, err);
    if (rc != CF_OK)
        return rc;
    /* An attach first looks for the identity's row, so that a CF_EEXIST from the INSERT without
     * one names the other unique key that is taken (m->taken). */
    if (attach)
        rc = sql_run(c, m->exists, ARGS(A_TEXT(identity_id)), sql_count_row, &existing, NULL, err);
    if (rc == CF_OK && existing == 0)
        rc = sql_exec(c, attach ? m->insert : m->update, args, n_args, &changes, err);
    else if (rc == CF_OK)
        rc = CF_EEXIST;
    if (attach && rc == CF_EEXIST)
        rc = existing == 0 && m->taken
                 ? m->taken(config, err)
                 : cf_err_set(err, CF_EEXIST, "%s is already attached to identity '%s'", m->name,
                              identity_id);
    else if (attach && rc == CF_ENOTFOUND)
        rc = cf_err_set(err, CF_ENOTFOUND, "identity with id '%s' not found", identity_id);
    else if (!attach && rc == CF_OK && changes == 0)
        rc = cf_err_set(err, CF_ENOTFOUND, "%s is not attached to identity '%s'", m->name,
                        identity_id);
    return sql_tx_end(c, rc, err);
}

/* Reads the method m of identity_id into out (m->size bytes, released on failure). */
static enum cf_rc auth_get(struct cf_store *base, const struct auth_method *m,
                           const char *identity_id, void *out, struct cf_err *err)
{
    memset(out, 0, m->size);
    enum cf_rc rc = sql_get_one(base, m->by_identity, ARGS(A_TEXT(identity_id)), m->read, out,
                                m->get_what, identity_id, err);
    if (rc != CF_OK && m->release)
        m->release(out);
    return rc;
}

static enum cf_rc ua_check(const void *config, bool attach, struct cf_err *err)
{
    const struct cf_ua_config *u = config;
    enum cf_rc rc = CF_OK;
    /* An update finds the row by identity_id and leaves client_id as it is. */
    if (attach)
        rc = sql_require_uuid(u->identity_id, "identity", err);
    if (rc == CF_OK && attach)
        rc = sql_require_uuid(u->client_id, "client", err);
    if (rc == CF_OK)
        rc = token_policy_check(&u->token, "universal auth", err);
    if (rc == CF_OK)
        rc = sql_require_terminated(u->client_secret_trusted_ips,
                                    sizeof(u->client_secret_trusted_ips),
                                    "client secret trusted IP list", err);
    return rc;
}

static size_t ua_bind(const void *config, bool attach, int64_t now, struct sq_arg *args)
{
    const struct cf_ua_config *u = config;
    size_t n = 0;
    args[n++] = (struct sq_arg)A_TEXT(u->identity_id);
    if (attach)
        args[n++] = (struct sq_arg)A_TEXT(u->client_id);
    n = bind_token_policy(&u->token, args, n);
    args[n++] = (struct sq_arg)A_TEXT(u->client_secret_trusted_ips);
    return bind_times(u->created_at, u->updated_at, attach, now, args, n);
}

/* The identity has no universal auth, so the client id is what is taken. */
static enum cf_rc ua_taken(const void *config, struct cf_err *err)
{
    const struct cf_ua_config *u = config;
    return cf_err_set(err, CF_EEXIST, "client id '%s' already exists", u->client_id);
}

AUTH_STMTS(ST_UA, "identity_universal_auths", UA_COLS, "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9",
           "access_token_ttl = ?2, access_token_max_ttl = ?3, access_token_num_uses_limit = ?4,"
           " access_token_trusted_ips = ?5, client_secret_trusted_ips = ?6, updated_at = ?7");

static const struct auth_method UA_METHOD = {
    .name = "universal auth",
    .get_what = "universal auth of identity",
    .size = sizeof(struct cf_ua_config),
    .identity_id_at = offsetof(struct cf_ua_config, identity_id),
    .insert = &ST_UA_INSERT,
    .update = &ST_UA_UPDATE,
    .exists = &ST_UA_EXISTS,
    .by_identity = &ST_UA_BY_IDENTITY,
    .check = ua_check,
    .bind = ua_bind,
    .taken = ua_taken,
    .read = read_ua,
};

enum cf_rc cf_store_ua_attach(struct cf_store *base, const struct cf_ua_config *config,
                              struct cf_err *err)
{
    return auth_write(base, &UA_METHOD, config, true, err);
}

enum cf_rc cf_store_ua_update(struct cf_store *base, const struct cf_ua_config *config,
                              struct cf_err *err)
{
    return auth_write(base, &UA_METHOD, config, false, err);
}

enum cf_rc cf_store_ua_get(struct cf_store *base, const char *identity_id, struct cf_ua_config *out,
                           struct cf_err *err)
{
    return auth_get(base, &UA_METHOD, identity_id, out, err);
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

static enum cf_rc jwt_check(const void *config, bool attach, struct cf_err *err)
{
    const struct cf_jwt_auth_config *j = config;
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
    (void)attach; /* the same checks for both */
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

static size_t jwt_bind(const void *config, bool attach, int64_t now, struct sq_arg *args)
{
    const struct cf_jwt_auth_config *j = config;
    const char *texts[] = {j->public_keys,     j->jwks_url,     j->jwks_ca_cert, j->bound_issuer,
                           j->bound_audiences, j->bound_claims, j->bound_subject};
    size_t n = 0;
    args[n++] = (struct sq_arg)A_TEXT(j->identity_id);
    args[n++] = (struct sq_arg)A_TEXT(j->configuration_type);
    for (size_t i = 0; i < CF_ARRAY_SIZE(texts); i++)
        args[n++] = (struct sq_arg)A_TEXT(or_empty(texts[i]));
    n = bind_token_policy(&j->token, args, n);
    n = bind_times(j->created_at, j->updated_at, attach, now, args, n);
    args[n++] = (struct sq_arg)A_INT(j->clock_skew_leeway);
    return n;
}

static void jwt_release(void *config)
{
    cf_jwt_auth_config_release(config);
}

AUTH_STMTS(ST_JWT, "identity_jwt_auths", JWT_COLS,
           "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16",
           "configuration_type = ?2, public_keys = ?3, jwks_url = ?4, jwks_ca_cert = ?5,"
           " bound_issuer = ?6, bound_audiences = ?7, bound_claims = ?8, bound_subject = ?9,"
           " access_token_ttl = ?10, access_token_max_ttl = ?11,"
           " access_token_num_uses_limit = ?12, access_token_trusted_ips = ?13,"
           " updated_at = ?14, clock_skew_leeway = ?15");

static const struct auth_method JWT_METHOD = {
    .name = "JWT auth",
    .get_what = "JWT auth of identity",
    .size = sizeof(struct cf_jwt_auth_config),
    .identity_id_at = offsetof(struct cf_jwt_auth_config, identity_id),
    .insert = &ST_JWT_INSERT,
    .update = &ST_JWT_UPDATE,
    .exists = &ST_JWT_EXISTS,
    .by_identity = &ST_JWT_BY_IDENTITY,
    .check = jwt_check,
    .bind = jwt_bind,
    .read = read_jwt,
    .release = jwt_release,
};

enum cf_rc cf_store_jwt_auth_attach(struct cf_store *base, const struct cf_jwt_auth_config *config,
                                    struct cf_err *err)
{
    return auth_write(base, &JWT_METHOD, config, true, err);
}

enum cf_rc cf_store_jwt_auth_update(struct cf_store *base, const struct cf_jwt_auth_config *config,
                                    struct cf_err *err)
{
    return auth_write(base, &JWT_METHOD, config, false, err);
}

enum cf_rc cf_store_jwt_auth_get(struct cf_store *base, const char *identity_id,
                                 struct cf_jwt_auth_config *out, struct cf_err *err)
{
    return auth_get(base, &JWT_METHOD, identity_id, out, err);
}

static enum cf_rc k8s_check(const void *config, bool attach, struct cf_err *err)
{
    const struct cf_k8s_auth_config *k = config;
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
    (void)attach; /* the same checks for both */
    enum cf_rc rc = sql_require_uuid(k->identity_id, "identity", err);
    for (size_t i = 0; rc == CF_OK && i < CF_ARRAY_SIZE(texts); i++)
        rc = sql_require_terminated(texts[i].text, texts[i].size, texts[i].what, err);
    if (rc == CF_OK)
        rc = token_policy_check(&k->token, "Kubernetes auth", err);
    return rc;
}

static size_t k8s_bind(const void *config, bool attach, int64_t now, struct sq_arg *args)
{
    const struct cf_k8s_auth_config *k = config;
    const char *texts[] = {k->kubernetes_host,    k->ca_cert,       k->token_reviewer_jwt,
                           k->allowed_namespaces, k->allowed_names, k->allowed_audience};
    size_t n = 0;
    args[n++] = (struct sq_arg)A_TEXT(k->identity_id);
    for (size_t i = 0; i < CF_ARRAY_SIZE(texts); i++)
        args[n++] = (struct sq_arg)A_TEXT(texts[i]);
    n = bind_token_policy(&k->token, args, n);
    return bind_times(k->created_at, k->updated_at, attach, now, args, n);
}

AUTH_STMTS(ST_K8S, "identity_kubernetes_auths", K8S_COLS,
           "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13",
           "kubernetes_host = ?2, ca_cert = ?3, token_reviewer_jwt = ?4, allowed_namespaces = ?5,"
           " allowed_names = ?6, allowed_audience = ?7, access_token_ttl = ?8,"
           " access_token_max_ttl = ?9, access_token_num_uses_limit = ?10,"
           " access_token_trusted_ips = ?11, updated_at = ?12");

static const struct auth_method K8S_METHOD = {
    .name = "Kubernetes auth",
    .get_what = "Kubernetes auth of identity",
    .size = sizeof(struct cf_k8s_auth_config),
    .identity_id_at = offsetof(struct cf_k8s_auth_config, identity_id),
    .insert = &ST_K8S_INSERT,
    .update = &ST_K8S_UPDATE,
    .exists = &ST_K8S_EXISTS,
    .by_identity = &ST_K8S_BY_IDENTITY,
    .check = k8s_check,
    .bind = k8s_bind,
    .read = read_k8s,
};

enum cf_rc cf_store_kubernetes_auth_attach(struct cf_store *base,
                                           const struct cf_k8s_auth_config *config,
                                           struct cf_err *err)
{
    return auth_write(base, &K8S_METHOD, config, true, err);
}

enum cf_rc cf_store_kubernetes_auth_update(struct cf_store *base,
                                           const struct cf_k8s_auth_config *config,
                                           struct cf_err *err)
{
    return auth_write(base, &K8S_METHOD, config, false, err);
}

enum cf_rc cf_store_kubernetes_auth_get(struct cf_store *base, const char *identity_id,
                                        struct cf_k8s_auth_config *out, struct cf_err *err)
{
    return auth_get(base, &K8S_METHOD, identity_id, out, err);
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
