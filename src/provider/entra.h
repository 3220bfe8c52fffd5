/* Entra ID (Azure AD) access tokens for a connection, from the documented v2.0 token endpoint
 * (POST {authorityHost}/{tenantId}/oauth2/v2.0/token, OAuth 2.0 client credentials grant,
 * scope=<resource>/.default), authenticated by a client secret or by a certificate: a client
 * assertion (RFC 7523) signed RS256 with the certificate's private key, naming the certificate by
 * its x5t and x5t#S256 thumbprints. Tokens are cached per (authority, tenant, client, credential,
 * scope) until CF_ENTRA_EARLY_MS before expires_in runs out. */
#ifndef CF_PROVIDER_ENTRA_H
#define CF_PROVIDER_ENTRA_H

#include <stdint.h>

#include "provider/provider.h"
#include "util/err.h"

#define CF_ENTRA_AUTHORITY "https://login.microsoftonline.com"
#define CF_ENTRA_EARLY_MS (5 * 60 * 1000) /* a cached token is renewed this long before expiry */
#define CF_ENTRA_CACHE_MAX 256            /* cached tokens at most (oldest dropped) */
#define CF_ENTRA_SCOPE_DEVOPS "499b84ac-1321-427f-aa17-267ca6975798/.default"
#define CF_ENTRA_SCOPE_VAULT "https://vault.azure.net/.default"
/* The Azure Instance Metadata Service's managed identity token endpoint (method
 * "managed-identity"; credentials: clientId for a user-assigned identity, imdsEndpoint to name
 * another). */
#define CF_ENTRA_IMDS_ENDPOINT "http://169.254.169.254/metadata/identity/oauth2/token"

/* A new, empty token cache (thread-safe), or NULL when out of memory. Free with
 * cf_entra_cache_free (NULL is a no-op), which wipes the tokens. */
struct cf_entra_cache *cf_entra_cache_new(void);
void cf_entra_cache_free(struct cf_entra_cache *cache);

/* An access token for scope with conn's credentials (method "client-secret": tenantId, clientId,
 * clientSecret; "certificate": tenantId, clientId, certificate as PEM certificate and private key;
 * optional authorityHost; "managed-identity": the machine's identity from CF_ENTRA_IMDS_ENDPOINT),
 * from conn->entra's cache when it holds a fresh one. *token receives a string to free with
 * cf_entra_token_free; *expires_at_ms (may be NULL) its expiry in Unix ms. Errors: CF_EUNAUTH
 * "Entra ID refused the client secret (401 invalid_client): AADSTS7000222: ...", CF_EINVAL for
 * missing credential fields or an unreadable certificate, CF_ERATELIMIT, CF_EIO, CF_ENOMEM. Never a
 * credential in err. Thread-safe. */
enum cf_rc cf_entra_token(const struct cf_provider_conn *conn, const char *scope, char **token,
                          int64_t *expires_at_ms, struct cf_err *err);

/* AADSTS codes the callers tell apart: a client secret the token service does not know (wrong,
 * removed, or added so recently that it has not propagated yet) and one that has expired.
 * https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes */
#define CF_ENTRA_AADSTS_INVALID_SECRET 7000215
#define CF_ENTRA_AADSTS_EXPIRED_SECRET 7000222

/* As cf_entra_token without expires_at_ms, and when Entra ID answered with an error, *aadsts
 * receives the first code of the answer's error_codes array (0 when it had none, and on every
 * other outcome), so that a caller can retry one refusal and not another. */
enum cf_rc cf_entra_token_code(const struct cf_provider_conn *conn, const char *scope, char **token,
                               long *aadsts, struct cf_err *err);

/* Wipes and frees a token from cf_entra_token; NULL is a no-op. */
void cf_entra_token_free(char *token);

#endif
