/* Where a pipeline's OIDC ID token comes from, for `--jwt-from` (login, run, export): the CI system
 * itself, so that a pipeline logs in with JWT auth holding no Coffer credential at all.
 *
 * - azure-devops: POST $SYSTEM_OIDCREQUESTURI?api-version=7.1-preview.1 (with
 *   &serviceConnectionId=ID for a service connection's token) with the job access token
 *   $SYSTEM_ACCESSTOKEN as a bearer token; the answer is {"oidcToken": "..."} (Azure DevOps REST
 *   API, "Oidctoken - Create").
 * - github-actions: GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD with
 * $ACTIONS_ID_TOKEN_REQUEST_TOKEN as a bearer token; the answer is {"value": "..."} (GitHub Actions
 * OIDC, as @actions/core's getIDToken asks). Without an audience GitHub issues its default one (the
 * repository owner's URL).
 * - gitlab: the variable a job's `id_tokens` defines (COFFER_ID_TOKEN unless named otherwise).
 * - file:PATH, env:VAR: a token file (one trailing newline and blanks trimmed), a variable.
 *
 * Tokens and the credentials sent for them live in buffers wiped when released; no message holds
 * either. */
#ifndef CF_CLI_CI_TOKEN_H
#define CF_CLI_CI_TOKEN_H

#include "util/buf.h"
#include "util/err.h"

/* The variable `--jwt-from gitlab` reads: the name the job gives its token under `id_tokens`. */
#define CF_CI_GITLAB_VAR "COFFER_ID_TOKEN"

/* Largest token accepted from any source. */
#define CF_CI_TOKEN_MAX 16384

enum cf_ci_source_kind {
    CF_CI_AZURE_DEVOPS,
    CF_CI_GITHUB_ACTIONS,
    CF_CI_GITLAB,
    CF_CI_FILE,
    CF_CI_ENV,
};

struct cf_ci_source {
    enum cf_ci_source_kind kind;
    const char *name;               /* the file (file:), the variable (env:, gitlab) */
    const char *audience;           /* github-actions: the audience asked for; NULL: GitHub's */
    const char *service_connection; /* azure-devops: a service connection's id; NULL: the
                                       pipeline's own token */
};

/* Parses the text of --jwt-from with the values of --jwt-audience and
 * --azure-devops-service-connection (each NULL when not given). out borrows the strings. CF_EINVAL
 * with a message for an unknown source, an empty PATH or VAR, or an option that does not apply to
 * the source (an audience is only chosen by GitHub Actions' request; a service connection is Azure
 * DevOps'). */
enum cf_rc cf_ci_source_parse(const char *text, const char *audience,
                              const char *service_connection, struct cf_ci_source *out,
                              struct cf_err *err);

/* Obtains the token from source into jwt (cleared first; release it with cf_buf_release_wipe),
 * without surrounding blanks, and checks that it has the shape of a signed JWT. Needs
 * cf_client_global_init first. Errors name the cause in words (a variable that is not set and what
 * sets it, the endpoint's HTTP status and message, an answer without the token, a file that cannot
 * be read) and never hold the token or the credential sent for it: CF_EINVAL for a missing setting
 * or a malformed answer or token, CF_EIO when the endpoint or file cannot be reached, the status's
 * code (cf_client_status_rc) when the endpoint refuses. */
enum cf_rc cf_ci_token_fetch(const struct cf_ci_source *source, struct cf_buf *jwt,
                             struct cf_err *err);

/* Reads the token file path (at most CF_CI_TOKEN_MAX bytes) into token (cleared first; release it
 * with cf_buf_release_wipe), trailing blanks and newlines trimmed; what names the file in messages
 * ("the service account token"). CF_EIO when it cannot be read, CF_ETOOLARGE, CF_EINVAL when it is
 * empty. */
enum cf_rc cf_ci_token_read_file(const char *path, const char *what, struct cf_buf *token,
                                 struct cf_err *err);

#endif
