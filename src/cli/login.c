/* `coffer login`: exchanges a machine identity's universal-auth client id and client secret (POST
 * /api/v1/auth/universal-auth/login), or its identity id and a JWT (--method=jwt-auth, POST
 * /api/v1/auth/jwt-auth/login), or its identity id and the Kubernetes service account token read
 * from a file (--method=kubernetes, POST /api/v1/auth/kubernetes-auth/login), for an access token,
 * sent without an Authorization header. Flags and environment variables are those of Infisical's
 * CLI, so `INFISICAL_TOKEN=$(coffer login
 * --method=universal-auth --client-id=... --client-secret=... --silent --plain)` works unchanged.
 * With --plain only the token is printed; otherwise it is printed as Infisical prints it and also
 * stored (credentials.h) for later commands. The client secret or JWT given on the command line is
 * wiped from argv as soon as it is read; every copy of it and of the token is wiped. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/credentials.h"
#include "crypto/token.h"
#include "util/banned.h"

#define DEFAULT_SA_TOKEN_PATH "/var/run/secrets/kubernetes.io/serviceaccount/token"
#define SA_TOKEN_MAX 16384

static const char usage[] =
    "usage: coffer login [--method universal-auth] --client-id ID --client-secret SECRET\n"
    "                    [--plain] [--silent] [--domain URL]\n"
    "       coffer login --method jwt-auth --machine-identity-id ID --jwt TOKEN\n"
    "                    [--plain] [--silent] [--domain URL]\n"
    "       coffer login --method kubernetes --machine-identity-id ID\n"
    "                    [--service-account-token-path P] [--plain] [--silent] [--domain URL]\n"
    "\n"
    "Logs a machine identity in with universal, JWT or Kubernetes auth and prints its access "
    "token.\n"
    "Without --plain the token is also stored in $XDG_CONFIG_HOME/coffer/credentials.json\n"
    "(default ~/.config/coffer; mode 0600), and later commands use it for that server\n"
    "when no --token, COFFER_TOKEN or INFISICAL_TOKEN is given.\n"
    "\n"
    "options:\n"
    "  --method METHOD       login method: universal-auth (default), jwt-auth or kubernetes\n"
    "  --client-id ID        the identity's client id (env COFFER_UNIVERSAL_AUTH_CLIENT_ID or\n"
    "                        INFISICAL_UNIVERSAL_AUTH_CLIENT_ID)\n"
    "  --client-secret S     a client secret (env COFFER_UNIVERSAL_AUTH_CLIENT_SECRET or\n"
    "                        INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET; prefer these: a secret\n"
    "                        on the command line ends up in shell history)\n"
    "  --machine-identity-id ID  jwt-auth, kubernetes: the identity's id (env\n"
    "                        INFISICAL_MACHINE_IDENTITY_ID)\n"
    "  --jwt TOKEN           jwt-auth: the signed JWT (env INFISICAL_JWT; prefer it: a token\n"
    "                        on the command line ends up in shell history)\n"
    "  --service-account-token-path P  kubernetes: the service account token file (env\n"
    "                        INFISICAL_KUBERNETES_SERVICE_ACCOUNT_TOKEN_PATH; default\n"
    "                        " DEFAULT_SA_TOKEN_PATH ")\n"
    "  --plain               print only the token and a newline; store nothing\n"
    "  --silent              no informational messages on standard error\n"
    "  --organization-slug S accepted for compatibility with Infisical's CLI\n"
    "  --domain URL          server URL (env COFFER_API_URL or INFISICAL_API_URL;\n"
    "                        default: the last login's, else " CF_CLIENT_DEFAULT_DOMAIN ")\n"
    "  --output FORMAT       table (default) or json: the server's answer\n"
    "  -h, --help            show this help\n"
    "\n"
    "exit status: 0 logged in, 1 the server refused (its message is printed) or could\n"
    "not be reached, 2 usage error.\n";

/* Infisical's other methods: recognised, so the message can say they are not there yet. */
static const char *const other_methods[] = {
    "user", "azure", "gcp-id-token", "gcp-iam", "aws-iam", "oidc-auth", "ldap-auth", "token-auth",
};

/* Writes text in full to stdout, bypassing stdio so the token is not left in its buffer. */
static int write_stdout(const char *text, size_t len)
{
    fflush(stdout);
    while (len) {
        ssize_t n = write(STDOUT_FILENO, text, len);
        if (n <= 0)
            return cf_cli_fail("cannot write to standard output");
        text += n;
        len -= (size_t)n;
    }
    return CF_EXIT_OK;
}

static int check_method(const struct cf_cli *cli, const char *method)
{
    if (strcmp(method, "universal-auth") == 0 || strcmp(method, "jwt-auth") == 0 ||
        strcmp(method, "kubernetes") == 0)
        return CF_EXIT_OK;
    for (size_t i = 0; i < sizeof(other_methods) / sizeof(other_methods[0]); i++) {
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

/* Prints the token and, unless plain, stores it. */
static int report(const struct cf_cli *cli, json_t *answer, const char *domain, bool plain,
                  bool silent, const char *method_name)
{
    const char *token = json_string_value(json_object_get(answer, "accessToken"));
    struct cf_buf text, path;
    struct cf_err err;
    int status = CF_EXIT_OK;

    cf_err_clear(&err);
    cf_buf_init(&text, 0);
    cf_buf_init(&path, 0);
    if (!token || !*token) {
        status = cf_cli_fail("the server's answer holds no access token");
        goto out;
    }
    if (cli->json) {
        status = cf_cli_print_json(answer);
    } else if (plain) {
        if (cf_buf_printf(&text, "%s\n", token) != CF_OK)
            status = cf_cli_fail("out of memory");
        else
            status = write_stdout(text.data, text.len);
    } else {
        if (cf_buf_printf(&text,
                          ">>>> Successfully authenticated with %s!\n\n"
                          "Access Token:\n%s\n\n"
                          "You can use this access token to authenticate through other commands "
                          "in the CLI.\n",
                          method_name, token) != CF_OK)
            status = cf_cli_fail("out of memory");
        else
            status = write_stdout(text.data, text.len);
    }
    if (status != CF_EXIT_OK || plain)
        goto out;
    if (cf_credentials_save(domain, token, &path, &err) != CF_OK) {
        status = cf_cli_fail("logged in, but the token could not be stored: %s", err.msg);
        goto out;
    }
    if (!silent)
        fprintf(stderr,
                "coffer: token stored in %s (used when no --token is given, for this server, "
                "which commands given no --domain now talk to)\n",
                path.data);
out:
    cf_buf_release(&path);
    cf_buf_release_wipe(&text);
    return status;
}

/* The body of a JWT-auth login: {identityId, jwt}; the JWT is in jwt_buf (from --jwt) or else in
 * INFISICAL_JWT (copied into jwt_buf). */
static int jwt_body(const struct cf_cli *cli, const char *identity_id, bool given,
                    struct cf_buf *jwt_buf, json_t **body)
{
    if (!identity_id)
        identity_id =
            cf_cli_first_env("COFFER_MACHINE_IDENTITY_ID", "INFISICAL_MACHINE_IDENTITY_ID");
    if (!given) {
        const char *from_env = cf_cli_first_env("COFFER_JWT", "INFISICAL_JWT");
        if (from_env && cf_buf_puts(jwt_buf, from_env) != CF_OK)
            return cf_cli_fail("out of memory");
    }
    if (!identity_id || !*identity_id)
        return cf_cli_usage_error(cli, "--machine-identity-id is required (or set "
                                       "INFISICAL_MACHINE_IDENTITY_ID)");
    if (jwt_buf->len == 0)
        return cf_cli_usage_error(cli, "--jwt is required (or set INFISICAL_JWT)");
    *body = json_pack("{s:s, s:s}", "identityId", identity_id, "jwt", jwt_buf->data);
    return *body ? CF_EXIT_OK
                 : cf_cli_usage_error(cli, "the identity id and JWT must be valid UTF-8");
}

/* The body of a Kubernetes-auth login: {identityId, jwt}, the JWT read (into token_buf, without
 * surrounding blanks) from path, or INFISICAL_KUBERNETES_SERVICE_ACCOUNT_TOKEN_PATH, or the
 * default service account token path. */
static int k8s_body(const struct cf_cli *cli, const char *identity_id, const char *path,
                    struct cf_buf *token_buf, json_t **body)
{
    char chunk[4096];
    ssize_t n;
    int fd;

    if (!identity_id)
        identity_id =
            cf_cli_first_env("COFFER_MACHINE_IDENTITY_ID", "INFISICAL_MACHINE_IDENTITY_ID");
    if (!identity_id || !*identity_id)
        return cf_cli_usage_error(cli, "--machine-identity-id is required (or set "
                                       "INFISICAL_MACHINE_IDENTITY_ID)");
    if (!path)
        path = cf_cli_first_env("INFISICAL_KUBERNETES_SERVICE_ACCOUNT_TOKEN_PATH", NULL);
    if (!path || !*path)
        path = DEFAULT_SA_TOKEN_PATH;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cf_cli_fail("cannot read the service account token %s: %s", path, strerror(errno));
    while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
        if (token_buf->len + (size_t)n > SA_TOKEN_MAX ||
            cf_buf_append(token_buf, chunk, (size_t)n) != CF_OK) {
            n = -1;
            errno = EFBIG;
            break;
        }
    }
    int saved = errno;
    close(fd);
    sodium_memzero(chunk, sizeof(chunk));
    if (n < 0)
        return cf_cli_fail("cannot read the service account token %s: %s", path, strerror(saved));
    if (cf_buf_append(token_buf, "", 1) != CF_OK)
        return cf_cli_fail("out of memory");
    token_buf->len--;
    while (token_buf->len && strchr(" \t\r\n", token_buf->data[token_buf->len - 1]))
        token_buf->data[--token_buf->len] = '\0';
    if (token_buf->len == 0)
        return cf_cli_fail("the service account token %s is empty", path);
    *body = json_pack("{s:s, s:s}", "identityId", identity_id, "jwt", token_buf->data);
    return *body ? CF_EXIT_OK
                 : cf_cli_usage_error(cli, "the identity id and token must be valid UTF-8");
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

int cf_cmd_login(int argc, char **argv)
{
    const char *method = NULL, *client_id = NULL, *client_secret = NULL, *domain = NULL;
    const char *org_slug = NULL, *identity_id = NULL, *jwt = NULL, *sa_path = NULL;
    bool plain = false, silent = false;
    const struct cf_opt opts[] = {
        {"method", CF_OPT_STRING, &method},
        {"client-id", CF_OPT_STRING, &client_id},
        {"client-secret", CF_OPT_STRING, &client_secret},
        {"machine-identity-id", CF_OPT_STRING, &identity_id},
        {"jwt", CF_OPT_STRING, &jwt},
        {"service-account-token-path", CF_OPT_STRING, &sa_path},
        {"plain", CF_OPT_BOOL, &plain},
        {"silent", CF_OPT_BOOL, &silent},
        {"organization-slug", CF_OPT_STRING, &org_slug},
        {"domain", CF_OPT_STRING, &domain},
    };
    const struct cf_cli_spec spec = {usage, CF_CLI_OFFLINE, 0,
                                     0,     opts,           sizeof(opts) / sizeof(opts[0])};
    struct cf_client_options client_options = {0};
    struct cf_client *client = NULL;
    struct cf_response resp = CF_RESPONSE_INIT;
    struct cf_buf secret, default_domain;
    struct cf_err err;
    struct cf_cli cli;
    json_t *body = NULL;
    int status;

    cf_err_clear(&err);
    cf_buf_init(&secret, 0);
    cf_buf_init(&default_domain, 0);
    bool proceed = cf_cli_begin(&cli, argc, argv, &spec, &status);
    /* Copy the secret (or JWT) out of argv and wipe it there, whatever happens next. */
    if (client_secret) {
        if (cf_buf_puts(&secret, client_secret) != CF_OK && proceed)
            status = cf_cli_fail("out of memory");
        sodium_memzero((char *)client_secret, strlen(client_secret));
        if (status != CF_EXIT_OK)
            proceed = false;
    }
    if (jwt) {
        if (client_secret)
            cf_buf_release_wipe(&secret);
        cf_buf_init(&secret, 0);
        if (cf_buf_puts(&secret, jwt) != CF_OK && proceed)
            status = cf_cli_fail("out of memory");
        sodium_memzero((char *)jwt, strlen(jwt));
        if (status != CF_EXIT_OK)
            proceed = false;
    }
    if (!proceed)
        goto out;
    status = check_method(&cli, method ? method : "universal-auth");
    if (status != CF_EXIT_OK)
        goto out;
    bool jwt_auth = method && strcmp(method, "jwt-auth") == 0;
    bool k8s_auth = method && strcmp(method, "kubernetes") == 0;
    if (k8s_auth) {
        if (client_secret || client_id || jwt) {
            status = cf_cli_usage_error(&cli, "--client-id, --client-secret and --jwt are not for "
                                              "--method kubernetes");
            goto out;
        }
        status = k8s_body(&cli, identity_id, sa_path, &secret, &body);
        if (status != CF_EXIT_OK)
            goto out;
        goto send;
    }
    if (sa_path) {
        status = cf_cli_usage_error(&cli, "--service-account-token-path is for --method "
                                          "kubernetes");
        goto out;
    }
    if (jwt_auth ? client_secret || client_id : jwt || identity_id) {
        status = cf_cli_usage_error(&cli, jwt_auth ? "--client-id and --client-secret are for "
                                                     "universal-auth, not jwt-auth"
                                                   : "--machine-identity-id and --jwt are for "
                                                     "--method jwt-auth");
        goto out;
    }
    if (jwt_auth) {
        status = jwt_body(&cli, identity_id, jwt != NULL, &secret, &body);
        if (status != CF_EXIT_OK)
            goto out;
        goto send;
    }
    if (!client_id)
        client_id = cf_cli_first_env("COFFER_UNIVERSAL_AUTH_CLIENT_ID",
                                     "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID");
    if (!client_secret) {
        const char *from_env = cf_cli_first_env("COFFER_UNIVERSAL_AUTH_CLIENT_SECRET",
                                                "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET");
        if (from_env && cf_buf_puts(&secret, from_env) != CF_OK) {
            status = cf_cli_fail("out of memory");
            goto out;
        }
    }
    if (!client_id || !*client_id) {
        status = cf_cli_usage_error(&cli, "--client-id is required (or set "
                                          "INFISICAL_UNIVERSAL_AUTH_CLIENT_ID)");
        goto out;
    }
    if (secret.len == 0) {
        status = cf_cli_usage_error(&cli, "--client-secret is required (or set "
                                          "INFISICAL_UNIVERSAL_AUTH_CLIENT_SECRET)");
        goto out;
    }
    /* Swapped arguments: refused here, so that the secret is not sent as an id (the server would
     * refuse it the same way). */
    if (cf_token_looks_like_client_secret(client_id)) {
        status = cf_cli_usage_error(&cli,
                                    "--client-id: this looks like a client secret (it starts "
                                    "with \"%s\"); pass it as --client-secret",
                                    CF_CLIENT_SECRET_PREFIX);
        goto out;
    }
send:
    if (!domain)
        domain = cf_cli_default_domain(&default_domain);
    client_options.domain = domain;
    client_options.ca_file = cf_cli_first_env("COFFER_CACERT", NULL);
    if (cf_client_new(&client_options, &client, &err) != CF_OK) {
        status = err.rc == CF_EINVAL ? cf_cli_usage_error(&cli, "%s", err.msg)
                                     : cf_cli_fail("%s", err.msg);
        goto out;
    }
    if (!jwt_auth && !k8s_auth)
        body = json_pack("{s:s, s:s}", "clientId", client_id, "clientSecret", secret.data);
    if (!body) {
        status = cf_cli_usage_error(&cli, "the client id and secret must be valid UTF-8");
        goto out;
    }
    if (org_slug && *org_slug &&
        json_object_set_new(body, "organizationSlug", json_string(org_slug)) != 0) {
        status = cf_cli_usage_error(&cli, "--organization-slug must be valid UTF-8");
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
    status = report(&cli, resp.json, cf_client_base_url(client), plain, silent,
                    k8s_auth   ? "Kubernetes auth"
                    : jwt_auth ? "JWT auth"
                               : "universal auth");
out:
    cf_response_release(&resp);
    json_decref(body);
    cf_client_free(client);
    cf_buf_release_wipe(&secret);
    cf_buf_release(&default_domain);
    cf_cli_end(&cli);
    return status;
}
