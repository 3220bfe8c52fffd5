/* OpenID Connect single sign-on, the relying party (docs/users.md "Single sign-on"): the
 * authorization code flow with PKCE (S256), state and nonce, against Microsoft Entra ID (by tenant)
 * or any provider that publishes a discovery document (by issuer URL).
 *
 * A login begins with cf_oidc_login_begin, which makes a random state, records it (a keyed hash
 * only, store/sso.h) with the path to return to for CF_OIDC_LOGIN_TTL_MS, and answers the
 * provider's authorize URL. The nonce and the PKCE verifier are derived from the state with a key
 * of the root key, so that neither is stored and any node sharing the store can finish the login.
 * cf_oidc_login_finish takes the state (once), exchanges the code at the token endpoint with the
 * client secret and the verifier, and verifies the ID token with auth/jwt.h and the provider's
 * JWKS (auth/jwks.h): signature, iss, aud, exp/nbf/iat with leeway, nonce, and for Entra ID tid.
 * Every outbound call goes through net/http.h (its destination policy applies). Messages name the
 * cause and never hold the code, a token, the client secret or the verifier. */
#ifndef CF_AUTH_OIDC_H
#define CF_AUTH_OIDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "auth/jwks.h"
#include "crypto/keyring.h"
#include "store/sso.h"
#include "store/store.h"
#include "util/err.h"

#define CF_OIDC_LOGIN_TTL_MS (10 * 60 * 1000) /* a begun login may be finished this long */
#define CF_OIDC_PENDING_MAX 10000             /* pending logins at most (store/sso.h) */
#define CF_OIDC_PENDING_PER_ADDRESS 100       /* pending logins begun from one address at most */
#define CF_OIDC_DISCOVERY_TTL_MS (60 * 60 * 1000)
#define CF_OIDC_URL_MAX 2048
#define CF_OIDC_CLAIM_MAX 320         /* characters of issuer, subject, e-mail, name, ids */
#define CF_OIDC_GROUPS_MAX 256        /* groups in an ID token at most */
#define CF_OIDC_GRAPH_GROUPS_MAX 4096 /* groups fetched from Microsoft Graph on overage at most */
#define CF_OIDC_GROUP_ROLES_MAX 64    /* --oidc-group-role entries at most */
#define CF_OIDC_GRAPH_URL "https://graph.microsoft.com"
#define CF_OIDC_SECRET_MAX 1024 /* bytes of the client secret */
#define CF_OIDC_ENTRA_AUTHORITY "https://login.microsoftonline.com"

/* The configuration (server flags, docs/server.md). Exactly one of issuer and entra_tenant. All
 * strings are borrowed for the duration of cf_oidc_new, which copies them. */
struct cf_oidc_config {
    const char *issuer;          /* generic provider: discovery at ISSUER/.well-known/... */
    const char *entra_tenant;    /* Entra ID: tenant id (GUID) or verified domain */
    const char *entra_authority; /* NULL: CF_OIDC_ENTRA_AUTHORITY (a national cloud, a test) */
    const char *client_id;
    const char *client_secret;      /* wiped by the caller; copied into guarded memory here */
    const char *client_certificate; /* instead of client_secret: PEM certificate and RSA private
                                       key (wiped by the caller; copied into guarded memory): the
                                       token requests carry a signed client assertion */
    const char *redirect_url;       /* https://HOST/api/v1/sso/oidc/callback (http on loopback) */
    const char *scopes;             /* NULL: "openid profile email" */
    const char *allowed_domains;    /* NULL or "": any; else comma-separated e-mail domains */
    const char *ca_file;            /* CA bundle for the provider's TLS; NULL: the system CAs */
    const char *groups_claim;       /* NULL or "": "groups" (Keycloak, GitLab: names; Entra: ids) */
    const char *group_roles;        /* NULL or "": roles untouched; else "GROUP=ROLE,..." where ROLE
                                       is owner, admin or member: the org role at every sign-in */
    bool require_group;             /* refuse a user in none of group_roles' groups */
    const char *graph_url;          /* Entra ID overage: Microsoft Graph; NULL: CF_OIDC_GRAPH_URL */
};

struct cf_oidc;

/* Checks config and makes the relying party (nothing is fetched yet: discovery happens at the
 * first login, so that a provider down at start does not stop the server). CF_EINVAL naming the
 * flag at fault; CF_ENOMEM. Free with cf_oidc_free. */
enum cf_rc cf_oidc_new(const struct cf_oidc_config *config, struct cf_oidc **out,
                       struct cf_err *err);

/* Frees oidc, wiping the client secret; NULL is a no-op. */
void cf_oidc_free(struct cf_oidc *oidc);

/* Whether return_path is a path of this server a login may return to: it starts with one '/', not
 * "//" or "/\", has no backslash, control character or space, is valid UTF-8 and at most
 * CF_SSO_RETURN_MAX characters (so that the login is no open redirect). */
bool cf_oidc_return_ok(const char *return_path);

/* Begins a login for a browser at source_ip returning to return_path (NULL: "/"; checked with
 * cf_oidc_return_ok, else CF_EVALIDATION naming "return") at now_ms: the provider's authorize URL
 * into *authorize_url (malloc'd; the caller frees it). CF_EUNAVAIL when the provider's discovery
 * document cannot be fetched or is not usable (naming why), CF_ERATELIMIT when too many logins are
 * pending (in all, or begun from source_ip), CF_ESTORE, CF_ENOMEM. Thread-safe. */
enum cf_rc cf_oidc_login_begin(struct cf_oidc *oidc, struct cf_store *st, struct cf_keyring *kr,
                               const char *return_path, const char *source_ip, int64_t now_ms,
                               char **authorize_url, struct cf_err *err);

/* ---- sign-in for the CLI (`coffer login --sso`, docs/users.md) ----
 * The CLI listens on 127.0.0.1:PORT, makes a random verifier and sends base64url(SHA-256(verifier))
 * as the challenge. The login is begun as a browser's is, its pending row naming the port and the
 * challenge (a marker no `return` parameter can produce); at the callback the server makes a
 * one-time code (kept as a keyed hash, CF_OIDC_CODE_TTL_MS) and sends the browser to
 * http://127.0.0.1:PORT/callback?code=...; the CLI redeems the code with the verifier. */
#define CF_OIDC_CLI_RETURN "cli:"           /* pending login's return: "cli:PORT:CHALLENGE" */
#define CF_OIDC_CODE_SIZE 44                /* a code or challenge (43 characters) and NUL */
#define CF_OIDC_CODE_TTL_MS (2 * 60 * 1000) /* a code must be redeemed this soon */
#define CF_OIDC_USER_ID_SIZE 64             /* room for a user id and its NUL */

/* Begins a CLI sign-in for the loopback port (text, 1024..65535) and challenge (43 base64url
 * characters): CF_EVALIDATION naming "port" or "challenge"; otherwise as cf_oidc_login_begin. */
enum cf_rc cf_oidc_cli_login_begin(struct cf_oidc *oidc, struct cf_store *st, struct cf_keyring *kr,
                                   const char *port, const char *challenge, const char *source_ip,
                                   int64_t now_ms, char **authorize_url, struct cf_err *err);

/* Whether return_path (an identity's, after the callback) is a CLI sign-in's: its port and
 * challenge into *port and challenge. */
bool cf_oidc_cli_return(const char *return_path, int *port, char challenge[CF_OIDC_CODE_SIZE]);

/* Makes the one-time code of a CLI sign-in of user_id with challenge, from the browser at
 * source_ip, at now_ms: code receives it (43 base64url characters). CF_ERATELIMIT, CF_ESTORE. */
enum cf_rc cf_oidc_cli_code_issue(struct cf_store *st, struct cf_keyring *kr, const char *user_id,
                                  const char *challenge, const char *source_ip, int64_t now_ms,
                                  char code[CF_OIDC_CODE_SIZE], struct cf_err *err);

/* Redeems code (once, whatever the outcome) with verifier at now_ms: the user it was made for into
 * user_id. CF_EVALIDATION naming "code" or "codeVerifier" when absent; CF_EUNAUTH when the code is
 * unknown, used or expired, or the verifier does not match its challenge. Thread-safe. */
enum cf_rc cf_oidc_cli_code_redeem(struct cf_store *st, struct cf_keyring *kr, const char *code,
                                   const char *verifier, int64_t now_ms,
                                   char user_id[CF_OIDC_USER_ID_SIZE], struct cf_err *err);

/* The identity the provider vouched for, from a verified ID token. */
struct cf_oidc_identity {
    char issuer[CF_OIDC_CLAIM_MAX + 1];
    char subject[CF_OIDC_CLAIM_MAX + 1];
    char email[CF_OIDC_CLAIM_MAX + 1]; /* lower-cased; "email", else Entra's preferred_username */
    char name[CF_OIDC_CLAIM_MAX + 1];  /* "" when the token has none */
    char tenant_id[CF_OIDC_CLAIM_MAX + 1]; /* Entra ID: tid; else "" */
    char object_id[CF_OIDC_CLAIM_MAX + 1]; /* Entra ID: oid; else "" */
    char **groups; /* the groups claim (or, on overage, Microsoft Graph's list): malloc'd */
    size_t n_groups;
    bool groups_overage; /* Entra ID left groups out (_claim_names): they came from Graph */
    bool groups_claimed; /* the token carried the groups claim (or Graph answered on overage):
                            only then are the user's groups synced (store/group_sync.h) */
    /* The org role --oidc-group-role gives (the highest of the user's groups; "member" when it
     * names none of them), or "" when no mapping is configured (roles are left as they are). */
    char org_role[16];
    char return_path[CF_SSO_RETURN_MAX + 1];
};

/* Frees the groups of id; safe on a zeroed struct. */
void cf_oidc_identity_release(struct cf_oidc_identity *id);

/* Replaces id's groups with groups (n of them; id takes the array and its malloc'd strings). */
void cf_oidc_identity_set_groups(struct cf_oidc_identity *id, char **groups, size_t n);

/* Sets id->org_role from --oidc-group-role and id's groups (the highest role of a group it is in,
 * "member" when none; "" when no mapping is configured). CF_EFORBIDDEN naming the rule when
 * --oidc-require-group is set and none of id's groups is mapped. */
enum cf_rc cf_oidc_apply_group_roles(const struct cf_oidc *oidc, struct cf_oidc_identity *id,
                                     struct cf_err *err);

/* Whether oidc signs in with Microsoft Entra ID (by tenant). */
bool cf_oidc_is_entra(const struct cf_oidc *oidc);

/* The application's own credentials, for Microsoft Graph's client-credentials token on group
 * overage (provider/graph.h): a new JSON object {tenantId, clientId, clientSecret | certificate,
 * authorityHost, graphHost} into *creds (the caller wipes its strings and decrefs it) and the
 * method ("client-secret" or "certificate", static) into *method. CF_EINVAL for a provider other
 * than Entra ID, CF_ENOMEM. */
enum cf_rc cf_oidc_graph_credentials(const struct cf_oidc *oidc, json_t **creds,
                                     const char **method, struct cf_err *err);

/* The callback's query parameters, borrowed. */
struct cf_oidc_callback {
    const char *code;
    const char *state;
    const char *error; /* the provider refused: error, error_description */
    const char *error_description;
};

/* Finishes a login at now_ms: takes the pending state (once; CF_EVALIDATION naming "state" when
 * absent, CF_EUNAUTH when unknown, already used or expired), then either reports the provider's
 * error (CF_EUNAUTH quoting error and the first line of error_description) or exchanges the code
 * (CF_EVALIDATION naming "code" when absent) and verifies the ID token. Refusals of the token
 * endpoint (Entra's AADSTS answers) and of every check are CF_EUNAUTH naming the cause; an e-mail
 * domain outside the allowed ones is CF_EFORBIDDEN; a provider that cannot be reached CF_EUNAVAIL.
 * On CF_OK *out holds the identity (cf_oidc_identity_release it); zeroed on failure.
 * jwks is the server's JWKS cache. Thread-safe. */
enum cf_rc cf_oidc_login_finish(struct cf_oidc *oidc, struct cf_store *st, struct cf_keyring *kr,
                                struct cf_jwks_cache *jwks, const struct cf_oidc_callback *cb,
                                int64_t now_ms, struct cf_oidc_identity *out, struct cf_err *err);

#endif
