/* Logging a machine identity in from the command line (see machine_login.h): which flags go with
 * which method, the body each method sends, and what a refusal says. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/ci_token.h"
#include "cli/machine_login.h"
#include "crypto/token.h"
#include "util/banned.h"
#include "util/str.h"

/* Infisical's other methods: recognised, so the message can say they are not there yet. */
static const char *const other_methods[] = {
    "user", "azure", "gcp-id-token", "gcp-iam", "aws-iam", "oidc-auth", "ldap-auth", "token-auth",
};

bool cf_login_flags_given(const struct cf_login_flags *flags)
{
    return flags->method || flags->client_id || flags->client_secret || flags->identity_id ||
           flags->jwt || flags->jwt_from || flags->jwt_audience ||
           flags->azure_service_connection || flags->sa_token_path;
}

void cf_login_flags_wipe(struct cf_login_flags *flags)
{
    if (flags->client_secret)
        sodium_memzero((char *)flags->client_secret, strlen(flags->client_secret));
    if (flags->jwt)
        sodium_memzero((char *)flags->jwt, strlen(flags->jwt));
}

static int check_method(const struct cf_cli *cli, const char *method)
{
    if (strcmp(method, "universal-auth") == 0 || strcmp(method, "jwt-auth") == 0 ||
        strcmp(method, "kubernetes") == 0)
        return CF_EXIT_OK;
    for (size_t i = 0; i < CF_ARRAY_SIZE(other_methods); i++) {
        if (strcmp(method, other_methods[i]) == 0)
            return cf_cli_usage_error(cli,
                                      "login method '%s' is not supported yet (supported: "
                                      "universal-auth, jwt-auth, kubernetes)",
                                      method);
    }
    return cf_cli_usage_error(
        cli, "unknown login method '%.64s' (supported: universal-auth, jwt-auth, kubernetes)",
        method);
}

static const char *identity_id_of(const struct cf_login_flags *flags)
{
    return flags->identity_id
               ? flags->identity_id
               : cf_cli_first_env("COFFER_MACHINE_IDENTITY_ID", "INFISICAL_MACHINE_IDENTITY_ID");
}

/* The body of a JWT-auth login: {identityId, jwt}. The JWT is in jwt_buf (copied from --jwt), or
 * fetched there from --jwt-from's source, or else copied from COFFER_JWT/INFISICAL_JWT. */
static int jwt_body(const struct cf_cli *cli, const struct cf_login_flags *flags,
                    struct cf_buf *jwt_buf, json_t **body)
{
    const char *identity_id = identity_id_of(flags);
    struct cf_ci_source source;
    struct cf_err err;

    cf_err_clear(&err);
    if (flags->jwt && flags->jwt_from)
        return cf_cli_usage_error(cli, "give --jwt or --jwt-from, not both");
    if (flags->jwt_from &&
        cf_ci_source_parse(flags->jwt_from, flags->jwt_audience, flags->azure_service_connection,
                           &source, &err) != CF_OK)
        return cf_cli_usage_error(cli, "%s", err.msg);
    if (!identity_id || !*identity_id)
        return cf_cli_usage_error(cli, "--machine-identity-id is required (or set "
                                       "INFISICAL_MACHINE_IDENTITY_ID)");
    if (flags->jwt_from) {
        if (cf_ci_token_fetch(&source, jwt_buf, &err) != CF_OK)
            return cf_cli_fail("%s", err.msg);
    } else if (!flags->jwt) {
        const char *from_env = cf_cli_first_env("COFFER_JWT", "INFISICAL_JWT");
        if (from_env && cf_buf_puts(jwt_buf, from_env) != CF_OK)
            return cf_cli_fail("out of memory");
    }
    if (jwt_buf->len == 0)
        return cf_cli_usage_error(cli, "--jwt or --jwt-from is required (or set INFISICAL_JWT)");
    *body = json_pack("{s:s, s:s}", "identityId", identity_id, "jwt", jwt_buf->data);
    return *body ? CF_EXIT_OK
                 : cf_cli_usage_error(cli, "the identity id and JWT must be valid UTF-8");
}

/* The body of a Kubernetes-auth login: {identityId, jwt}, the JWT read (into token_buf, without
 * trailing blanks) from --service-account-token-path, or
 * INFISICAL_KUBERNETES_SERVICE_ACCOUNT_TOKEN_PATH, or the default service account token path. */
static int k8s_body(const struct cf_cli *cli, const struct cf_login_flags *flags,
                    struct cf_buf *token_buf, json_t **body)
{
    const char *identity_id = identity_id_of(flags);
    const char *path = flags->sa_token_path;
    struct cf_err err;

    cf_err_clear(&err);
    if (!identity_id || !*identity_id)
        return cf_cli_usage_error(cli, "--machine-identity-id is required (or set "
                                       "INFISICAL_MACHINE_IDENTITY_ID)");
    if (!path)
        path = cf_cli_first_env("INFISICAL_KUBERNETES_SERVICE_ACCOUNT_TOKEN_PATH", NULL);
    if (!path || !*path)
        path = CF_LOGIN_DEFAULT_SA_TOKEN_PATH;
    if (cf_ci_token_read_file(path, "the service account token", token_buf, &err) != CF_OK)
        return cf_cli_fail("%s", err.msg);
    *body = json_pack("{s:s, s:s}", "identityId", identity_id, "jwt", token_buf->data);
    return *body ? CF_EXIT_OK
                 : cf_cli_usage_error(cli, "the identity id and token must be valid UTF-8");
}

/* The body of a universal-auth login: {clientId, clientSecret}, the secret in secret (copied from
 * --client-secret) or else copied from the environment. */
static int universal_body(const struct cf_cli *cli, const struct cf_login_flags *flags,
                          struct cf_buf *secret, json_t **body)
{
    const char *client_id = flags->client_id;
    if (!client_id)
        client_id = cf_cli_first_env("COFFER_UNIVERSAL_AUTH_CLIENT_ID",
                                     "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID");
    if (!flags->client_secret) {
        const char *from_env = cf_cli_first_env("COFFER_UNIVERSAL_AUTH_CLIENT_SECRET",
                                                "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET");
        if (from_env && cf_buf_puts(secret, from_env) != CF_OK)
            return cf_cli_fail("out of memory");
    }
    if (!client_id || !*client_id)
        return cf_cli_usage_error(cli, "--client-id is required (or set "
                                       "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID)");
    if (secret->len == 0)
        return cf_cli_usage_error(cli, "--client-secret is required (or set "
                                       "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET)");
    /* Swapped arguments: refused here, so that the secret is not sent as an id (the server would
     * refuse it the same way). */
    if (cf_token_looks_like_client_secret(client_id))
        return cf_cli_usage_error(cli,
                                  "--client-id: this looks like a client secret (it starts "
                                  "with \"%s\"); pass it as --client-secret",
                                  CF_CLIENT_SECRET_PREFIX);
    *body = json_pack("{s:s, s:s}", "clientId", client_id, "clientSecret", secret->data);
    return *body ? CF_EXIT_OK
                 : cf_cli_usage_error(cli, "the client id and secret must be valid UTF-8");
}

/* After a refusal because the client secret expired, was revoked or used up (the server's message
 * says `client secret "DESC" of identity "NAME" expired at T`), the way out. */
static void hint_new_client_secret(const char *message)
{
    if (!strstr(message, "client secret") ||
        !(strstr(message, "expired") || strstr(message, "revoked") || strstr(message, "uses")))
        return;
    char name[256] = "";
    const char *at = strstr(message, "of identity \"");
    if (at) {
        at += strlen("of identity \"");
        const char *end = strchr(at, '"');
        size_t n = end ? (size_t)(end - at) : 0;
        if (n < sizeof(name)) {
            memcpy(name, at, n);
            name[n] = '\0';
        }
    }
    fprintf(stderr,
            "coffer: this client secret cannot log in any more. An administrator makes a new one "
            "with\n"
            "  coffer identities client-secrets create IDENTITY_ID --description \"...\" "
            "[--ttl 180d]\n"
            "(IDENTITY_ID of identity \"%s\": coffer identities list), then updates the pipeline's "
            "variable.\n",
            name[0] ? name : "?");
}

/* Which flags go with which method: a usage error for a flag of another method. */
static int check_flags(const struct cf_cli *cli, const struct cf_login_flags *flags, bool jwt_auth,
                       bool k8s_auth)
{
    if ((flags->jwt_audience || flags->azure_service_connection) && !flags->jwt_from)
        return cf_cli_usage_error(cli, "--jwt-audience and --azure-devops-service-connection go "
                                       "with --jwt-from");
    if (k8s_auth) {
        if (flags->client_secret || flags->client_id || flags->jwt || flags->jwt_from)
            return cf_cli_usage_error(cli, "--client-id, --client-secret, --jwt and --jwt-from "
                                           "are not for --method kubernetes");
        return CF_EXIT_OK;
    }
    if (flags->sa_token_path)
        return cf_cli_usage_error(cli, "--service-account-token-path is for --method "
                                       "kubernetes");
    if (jwt_auth && (flags->client_secret || flags->client_id))
        return cf_cli_usage_error(cli, "--client-id and --client-secret are for universal-auth, "
                                       "not jwt-auth");
    if (!jwt_auth && (flags->jwt || flags->identity_id || flags->jwt_from))
        return cf_cli_usage_error(cli, "--machine-identity-id, --jwt and --jwt-from are for "
                                       "--method jwt-auth");
    return CF_EXIT_OK;
}

int cf_login_run(const struct cf_cli *cli, struct cf_login_flags *flags, const char *domain,
                 const char *org_slug, json_t **answer, struct cf_buf *base_url,
                 const char **method_name)
{
    const char *method = flags->method ? flags->method : "universal-auth";
    struct cf_client_options client_options = {0};
    struct cf_client *client = NULL;
    struct cf_response resp = CF_RESPONSE_INIT;
    struct cf_buf secret, default_domain;
    struct cf_err err;
    json_t *body = NULL;
    int status = CF_EXIT_OK;

    *answer = NULL;
    cf_err_clear(&err);
    cf_buf_init(&secret, 0);
    cf_buf_init(&default_domain, 0);
    /* Copy the secret (or JWT) out of argv and wipe it there, whatever happens next. */
    const char *given = flags->jwt ? flags->jwt : flags->client_secret;
    if (given && cf_buf_puts(&secret, given) != CF_OK)
        status = cf_cli_fail("out of memory");
    cf_login_flags_wipe(flags);
    if (status != CF_EXIT_OK)
        goto out;

    status = check_method(cli, method);
    if (status != CF_EXIT_OK)
        goto out;
    bool jwt_auth = strcmp(method, "jwt-auth") == 0;
    bool k8s_auth = strcmp(method, "kubernetes") == 0;
    status = check_flags(cli, flags, jwt_auth, k8s_auth);
    if (status != CF_EXIT_OK)
        goto out;
    if (k8s_auth)
        status = k8s_body(cli, flags, &secret, &body);
    else if (jwt_auth)
        status = jwt_body(cli, flags, &secret, &body);
    else
        status = universal_body(cli, flags, &secret, &body);
    if (status != CF_EXIT_OK)
        goto out;
    if (org_slug && *org_slug &&
        json_object_set_new(body, "organizationSlug", json_string(org_slug)) != 0) {
        status = cf_cli_usage_error(cli, "--organization-slug must be valid UTF-8");
        goto out;
    }

    client_options.domain = domain ? domain : cf_cli_default_domain(&default_domain);
    client_options.ca_file = cf_cli_first_env("COFFER_CACERT", NULL);
    if (cf_client_new(&client_options, &client, &err) != CF_OK) {
        status = err.rc == CF_EINVAL ? cf_cli_usage_error(cli, "%s", err.msg)
                                     : cf_cli_fail("%s", err.msg);
        goto out;
    }
    enum cf_rc rc = cf_client_request(client, "POST",
                                      k8s_auth   ? "/v1/auth/kubernetes-auth/login"
                                      : jwt_auth ? "/v1/auth/jwt-auth/login"
                                                 : "/v1/auth/universal-auth/login",
                                      NULL, body, &resp, &err);
    if (rc != CF_OK) {
        if (resp.status)
            status = cf_cli_fail("%s (HTTP %ld, request id %s)", err.msg, resp.status,
                                 resp.request_id[0] ? resp.request_id : "unknown");
        else
            status = cf_cli_fail("%s", err.msg);
        if (!jwt_auth && !k8s_auth)
            hint_new_client_secret(err.msg);
        goto out;
    }
    if (base_url) {
        cf_buf_reset(base_url);
        if (cf_buf_puts(base_url, cf_client_base_url(client)) != CF_OK) {
            status = cf_cli_fail("out of memory");
            goto out;
        }
    }
    if (method_name)
        *method_name = k8s_auth ? "Kubernetes auth" : jwt_auth ? "JWT auth" : "universal auth";
    *answer = resp.json;
    resp.json = NULL;
out:
    cf_response_release(&resp);
    json_decref(body);
    cf_client_free(client);
    cf_buf_release_wipe(&secret);
    cf_buf_release(&default_domain);
    return status;
}

int cf_login_access_token(const struct cf_cli *cli, struct cf_login_flags *flags,
                          const char *domain, struct cf_buf *token)
{
    json_t *answer = NULL;
    int status = cf_login_run(cli, flags, domain, NULL, &answer, NULL, NULL);
    if (status != CF_EXIT_OK)
        return status;
    const char *access_token = json_string_value(json_object_get(answer, "accessToken"));
    cf_buf_reset(token);
    if (!access_token || !*access_token)
        status = cf_cli_fail("the server's login answer holds no access token");
    else if (cf_buf_puts(token, access_token) != CF_OK)
        status = cf_cli_fail("out of memory");
    json_decref(answer);
    return status;
}
