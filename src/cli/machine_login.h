/* Logging a machine identity in from the command line: the login flags of Infisical's CLI (plus
 * --jwt-from and its companions), the request each method sends, and the way a refusal is told.
 * Shared by `coffer login`, which prints and stores the access token, and by the commands that take
 * the same flags to log in for themselves (`coffer run`, `coffer export`: the token serves that one
 * command and is never stored).
 *
 * Methods: universal-auth (POST /api/v1/auth/universal-auth/login {clientId, clientSecret}),
 * jwt-auth (POST /api/v1/auth/jwt-auth/login {identityId, jwt}, the JWT from --jwt, --jwt-from
 * (ci_token.h) or COFFER_JWT/INFISICAL_JWT) and kubernetes (POST /api/v1/auth/kubernetes-auth/login
 * {identityId, jwt}, the service account token read from a file). Secrets given as flags point
 * into argv: they are copied and wiped there before anything is sent, and every copy is wiped. */
#ifndef CF_CLI_MACHINE_LOGIN_H
#define CF_CLI_MACHINE_LOGIN_H

#include <stdbool.h>

#include <jansson.h>

#include "cli/ci_token.h"
#include "cli/common.h"

#define CF_LOGIN_DEFAULT_SA_TOKEN_PATH "/var/run/secrets/kubernetes.io/serviceaccount/token"

/* The values of the login flags (each NULL when not given; pointers into argv). */
struct cf_login_flags {
    const char *method;
    const char *client_id;
    const char *client_secret; /* wiped by cf_login_flags_wipe */
    const char *identity_id;
    const char *jwt; /* wiped by cf_login_flags_wipe */
    const char *jwt_from;
    const char *jwt_audience;
    const char *azure_service_connection;
    const char *sa_token_path;
};

/* The option table entries of the login flags, for a command's struct cf_opt array. */
#define CF_LOGIN_OPTS(flags)                                                                       \
    {"method", CF_OPT_STRING, &(flags)->method},                                                   \
        {"client-id", CF_OPT_STRING, &(flags)->client_id},                                         \
        {"client-secret", CF_OPT_STRING, &(flags)->client_secret},                                 \
        {"machine-identity-id", CF_OPT_STRING, &(flags)->identity_id},                             \
        {"jwt", CF_OPT_STRING, &(flags)->jwt}, {"jwt-from", CF_OPT_STRING, &(flags)->jwt_from},    \
        {"jwt-audience", CF_OPT_STRING, &(flags)->jwt_audience},                                   \
        {"azure-devops-service-connection", CF_OPT_STRING, &(flags)->azure_service_connection},    \
    {                                                                                              \
        "service-account-token-path", CF_OPT_STRING, &(flags)->sa_token_path                       \
    }

/* Their help, for usage texts. */
#define CF_LOGIN_OPTIONS_HELP                                                                      \
    "  --method METHOD    login method: universal-auth (default), jwt-auth or kubernetes\n"        \
    "  --client-id ID     universal-auth: the identity's client id (env\n"                         \
    "                     COFFER_UNIVERSAL_AUTH_CLIENT_ID or "                                     \
    "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID)\n"                                                        \
    "  --client-secret S  universal-auth: a client secret (env\n"                                  \
    "                     COFFER_UNIVERSAL_AUTH_CLIENT_SECRET or\n"                                \
    "                     INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET; prefer these: a secret\n"        \
    "                     on the command line ends up in shell history)\n"                         \
    "  --machine-identity-id ID  jwt-auth, kubernetes: the identity's id (env\n"                   \
    "                     INFISICAL_MACHINE_IDENTITY_ID)\n"                                        \
    "  --jwt TOKEN        jwt-auth: the signed JWT (env INFISICAL_JWT; prefer it or\n"             \
    "                     --jwt-from: a token on the command line ends up in shell history)\n"     \
    "  --jwt-from SOURCE  jwt-auth: fetch the JWT from the CI system: azure-devops (needs\n"       \
    "                     SYSTEM_ACCESSTOKEN: $(System.AccessToken) in the step's env),\n"         \
    "                     github-actions (needs permissions: id-token: write), gitlab (the\n"      \
    "                     job's id_tokens variable " CF_CI_GITLAB_VAR "), file:PATH or\n"          \
    "                     env:VAR\n"                                                               \
    "  --jwt-audience AUD github-actions: the audience to ask for (default: GitHub's,\n"           \
    "                     the repository owner's URL)\n"                                           \
    "  --azure-devops-service-connection ID  azure-devops: the token of this service\n"            \
    "                     connection instead of the pipeline's\n"                                  \
    "  --service-account-token-path P  kubernetes: the service account token file (env\n"          \
    "                     INFISICAL_KUBERNETES_SERVICE_ACCOUNT_TOKEN_PATH; default\n"              \
    "                     " CF_LOGIN_DEFAULT_SA_TOKEN_PATH ")\n"

/* True when any login flag was given. */
bool cf_login_flags_given(const struct cf_login_flags *flags);

/* Wipes the secrets given as flags in argv. Idempotent. */
void cf_login_flags_wipe(struct cf_login_flags *flags);

/* Logs in with flags (their secrets copied, then wiped in argv) against the server at domain (NULL:
 * COFFER_API_URL and its twins, else the default; COFFER_CACERT trusted), sending org_slug (may be
 * NULL) as organizationSlug. On success *answer receives the server's answer ({accessToken,
 * expiresIn, ...}; json_decref it), base_url (may be NULL) the server's normalised URL, and
 * *method_name (may be NULL) how the method is called in messages ("JWT auth"). Returns an exit
 * status after printing why on failure: 1 when the server refuses or cannot be reached or the CI
 * system's token cannot be had, 2 for a usage error. */
int cf_login_run(const struct cf_cli *cli, struct cf_login_flags *flags, const char *domain,
                 const char *org_slug, json_t **answer, struct cf_buf *base_url,
                 const char **method_name);

/* cf_login_run for a command that goes on with the access token: token (cleared first; release it
 * with cf_buf_release_wipe) receives it. Nothing is printed on success and nothing is stored. */
int cf_login_access_token(const struct cf_cli *cli, struct cf_login_flags *flags,
                          const char *domain, struct cf_buf *token);

#endif
