/* The GitHub destination of secret syncs: GitHub Actions repository secrets and environment
 * secrets, through GitHub's REST API (api.github.com, or a GitHub Enterprise Server's /api/v3 given
 * as the connection's "host").
 *
 * destinationConfig, in the shape of Infisical's GitHub sync: {"scope": "repository", "owner",
 * "repo"} or {"scope": "repository-environment", "owner", "repo", "env"}.
 *
 * Connections: method "app" ({"appId", "privateKey" (PEM, RSA), "installationId"}): each call
 * authenticates as the App with a JWT signed RS256 (iss the app id, iat 60 s in the past, exp 9
 * minutes ahead) and trades it for an installation token (POST
 * /app/installations/{id}/access_tokens), kept in the connection's cache until 5 minutes before its
 * expires_at. Method "personal-access-token" ({"personalAccessToken"}): a fine-grained token, used
 * as it is. The App or token needs the repository permission "Secrets" (read and write) for
 * repository secrets, "Environments" (read and write) for environment secrets.
 *
 * Pushing fetches the scope's public key, seals each value with crypto_box_seal (libsodium), PUTs
 * {encrypted_value, key_id} for each item and DELETEs each removed name (one already gone is not
 * an error). Listing pages through the secrets (names and updated_at; GitHub never returns
 * values). Secondary rate limits (429, or 403 with Retry-After) are waited out and retried.
 * Errors name GitHub, the HTTP status and GitHub's message, never a credential or a value. */
#ifndef CF_PROVIDER_GITHUB_H
#define CF_PROVIDER_GITHUB_H

#include "provider/provider.h"

#define CF_GITHUB_DEFAULT_HOST "https://api.github.com"
#define CF_GITHUB_API_VERSION "2022-11-28"
/* An installation token is used until this many seconds before its expires_at. */
#define CF_GITHUB_TOKEN_MARGIN_S 300
/* Tries of one request that GitHub throttles (the first included). */
#define CF_GITHUB_ATTEMPTS 3

/* The "github" destination. */
extern const struct cf_dest_ops cf_github_dest;

/* A new, empty installation token cache (NULL when out of memory); free it with
 * cf_github_cache_free (NULL is a no-op), which wipes the tokens. Thread-safe. */
struct cf_github_cache *cf_github_cache_new(void);
void cf_github_cache_free(struct cf_github_cache *cache);

/* Checks a github connection (provider.h's cf_provider_check): an App mints an installation token
 * (report: the installation's permissions as "scopes", e.g. "secrets:write", and the token's
 * expiry in "detail"); a personal access token calls GET /user (report: the login, and "expiresAt"
 * from GitHub's GitHub-Authentication-Token-Expiration header when the token has an expiry). */
enum cf_rc cf_github_check(const struct cf_provider_conn *conn, json_t **report,
                           struct cf_err *err);

#endif
