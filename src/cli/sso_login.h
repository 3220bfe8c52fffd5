/* `coffer login --sso` (docs/users.md "Signing in from the CLI with single sign-on"), as `az login`
 * and `gh auth login` do it: the CLI listens on 127.0.0.1 (an ephemeral port), makes a random
 * verifier, and sends the browser (xdg-open, or the person with the printed URL) to the server's
 * GET /api/v1/sso/oidc/cli/login?port=P&challenge=base64url(SHA-256(verifier)). After the normal
 * single sign-on redirects the server sends the browser to http://127.0.0.1:P/callback?code=...;
 * the CLI answers the browser with a short page and redeems the code with the verifier
 * (POST /api/v1/sso/oidc/cli/token) for a personal access token. A code seen by another local
 * process is useless without the verifier, which never leaves this process. */
#ifndef CF_CLI_SSO_LOGIN_H
#define CF_CLI_SSO_LOGIN_H

#include <stdbool.h>

#include <jansson.h>

#include "cli/common.h"
#include "util/buf.h"

#define CF_SSO_LOGIN_TIMEOUT_S 300 /* how long the CLI waits for the browser by default */

struct cf_sso_login_options {
    const char *domain;     /* NULL: the default server */
    const char *expires_in; /* NULL: "30d" */
    const char *token_name; /* NULL: "coffer login --sso on HOST" */
    const char *timeout;    /* a duration; NULL: CF_SSO_LOGIN_TIMEOUT_S */
    bool no_browser;        /* print the URL only */
    bool silent;
};

/* Runs the sign-in: the server's answer {user, token, personalAccessToken} into *answer (the caller
 * decrefs it) and the server's base URL into base_url. Returns the exit status (messages printed).
 */
int cf_sso_login_run(const struct cf_cli *cli, const struct cf_sso_login_options *options,
                     json_t **answer, struct cf_buf *base_url);

#endif
