/* The store's app connections (core/connections.h has the rules): one row per connection, its
 * credentials as sealed text (crypto/serverkey.h) that the store neither reads nor opens, the
 * non-secret fields callers see, the credential's expiry and the last check's result. */
#ifndef CF_STORE_CONNECTIONS_H
#define CF_STORE_CONNECTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

#define CF_CONN_APP_MAX 32      /* "azure-devops", "azure-key-vault", "github" and the NUL */
#define CF_CONN_METHOD_MAX 32   /* "access-token", "client-secret", ... and the NUL */
#define CF_CONN_DESC_MAX 512    /* a description's bytes */
#define CF_CONN_PUBLIC_MAX 2048 /* the non-secret fields as compact JSON, with the NUL */
#define CF_CONN_RESULT_MAX 512  /* a check's result message, with the NUL */

/* A connection as stored, without its credentials. */
struct cf_connection {
    char id[CF_UUID_LEN];
    char name[CF_NAME_MAX + 1];
    char app[CF_CONN_APP_MAX];
    char method[CF_CONN_METHOD_MAX];
    char description[CF_CONN_DESC_MAX + 1];
    /* The credentials' non-secret fields (tenantId, clientId, orgName, appId, installationId,
     * endpoint overrides) and hints (the secret's last four characters, a certificate's
     * thumbprint, a key's fingerprint): a JSON object as compact text. */
    char public_fields[CF_CONN_PUBLIC_MAX];
    int64_t expires_at;                    /* Unix ms; 0: unknown or none */
    bool expires_learned;                  /* expires_at came from a check or the certificate */
    int64_t created_at;                    /* Unix ms */
    int64_t updated_at;                    /* Unix ms */
    int64_t checked_at;                    /* Unix ms of the last check; 0: never checked */
    bool check_ok;                         /* the last check succeeded */
    char check_result[CF_CONN_RESULT_MAX]; /* "ok" or the check's error; "" when never checked */
    int64_t version;                       /* 1 at creation, bumped on every update */
};

struct cf_connection_list {
    struct cf_connection *items;
    size_t n;
};
void cf_connection_list_release(struct cf_connection_list *l);

/* Stores a new connection with its sealed credentials (text). CF_EEXIST when the name is taken. */
enum cf_rc cf_store_connection_create(struct cf_store *st, const struct cf_connection *c,
                                      const char *sealed, struct cf_err *err);

/* The connection id. CF_ENOTFOUND when there is none. */
enum cf_rc cf_store_connection_get(struct cf_store *st, const char *id, struct cf_connection *out,
                                   struct cf_err *err);

/* The sealed credentials of id into *sealed (malloc'd text; free it). CF_ENOTFOUND. */
enum cf_rc cf_store_connection_sealed(struct cf_store *st, const char *id, char **sealed,
                                      struct cf_err *err);

/* Every connection (app NULL) or those of app, by name. */
enum cf_rc cf_store_connection_list(struct cf_store *st, const char *app,
                                    struct cf_connection_list *out, struct cf_err *err);

/* Replaces the row c->id holding version c->version - 1 with c (and the sealed credentials when
 * sealed is non-NULL). CF_ENOTFOUND when it is gone, CF_ECONFLICT when another update came first,
 * CF_EEXIST when the new name is taken. */
enum cf_rc cf_store_connection_update(struct cf_store *st, const struct cf_connection *c,
                                      const char *sealed, struct cf_err *err);

/* Records a check: its time, result and, when expires_at >= 0, the expiry it learnt (0: none). */
enum cf_rc cf_store_connection_checked(struct cf_store *st, const char *id, int64_t checked_at,
                                       bool ok, const char *result, int64_t expires_at,
                                       struct cf_err *err);

enum cf_rc cf_store_connection_delete(struct cf_store *st, const char *id, struct cf_err *err);

/* Connections whose credential expires by until (expired ones included), soonest first. */
enum cf_rc cf_store_connection_expiring(struct cf_store *st, int64_t until,
                                        struct cf_connection_list *out, struct cf_err *err);

#endif
