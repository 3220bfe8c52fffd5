/* `coffer login --sso` (cli/sso_login.h): the loopback listener (libmicrohttpd, one request that
 * matters), the browser, and the code's redemption. */
#include "cli/sso_login.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "client/client.h"
#include "util/time.h"
#include "util/banned.h"

#define B64_32 44 /* 32 bytes in unpadded base64url and the NUL */
#define CODE_MAX 128

extern char **environ;

static const char page_ok[] =
    "<!doctype html><meta charset=utf-8><title>Coffer</title>"
    "<p>Signed in to Coffer. You can close this window and go back to the terminal.</p>";
static const char page_failed[] = "<!doctype html><meta charset=utf-8><title>Coffer</title>"
                                  "<p>The sign-in failed: the terminal says why.</p>";

/* What the browser brought to the loopback port, guarded by lock. */
struct loopback {
    pthread_mutex_t lock;
    pthread_cond_t arrived;
    bool done;
    char code[CODE_MAX];
    char error[256];
};

static enum MHD_Result answer(struct MHD_Connection *c, unsigned int status, const char *page)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(page), (void *)page, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    struct loopback *lb = cls;
    (void)version;
    (void)upload;
    (void)upload_size;
    (void)state;
    if (strcmp(method, "GET") != 0 || strcmp(url, "/callback") != 0)
        return answer(c, MHD_HTTP_NOT_FOUND, "<!doctype html><title>Coffer</title><p>Not found.");
    const char *code = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "code");
    const char *error = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "error");
    bool ok = false;
    pthread_mutex_lock(&lb->lock);
    if (!lb->done) {
        if (code && *code && strlen(code) < sizeof(lb->code)) {
            memcpy(lb->code, code, strlen(code) + 1);
            ok = true;
        } else {
            snprintf(lb->error, sizeof(lb->error), "%s",
                     error && *error ? error : "the browser brought no sign-in code");
        }
        lb->done = true;
        pthread_cond_signal(&lb->arrived);
    }
    pthread_mutex_unlock(&lb->lock);
    return answer(c, ok ? MHD_HTTP_OK : MHD_HTTP_BAD_REQUEST, ok ? page_ok : page_failed);
}

/* Starts xdg-open url in the background, its output discarded; false when it cannot start. */
static bool open_browser(const char *url, pid_t *pid)
{
    posix_spawn_file_actions_t actions;
    char *argv[] = {"xdg-open", (char *)url, NULL};
    int rc;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    rc = posix_spawnp(pid, "xdg-open", &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    return rc == 0;
}

/* Waits until the browser came or timeout_s passed: true when it came. */
static bool wait_for_browser(struct loopback *lb, int64_t timeout_s)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)timeout_s;
    pthread_mutex_lock(&lb->lock);
    while (!lb->done)
        if (pthread_cond_timedwait(&lb->arrived, &lb->lock, &deadline) == ETIMEDOUT)
            break;
    bool done = lb->done;
    pthread_mutex_unlock(&lb->lock);
    return done;
}

int cf_sso_login_run(const struct cf_cli *cli, const struct cf_sso_login_options *options,
                     json_t **answer_out, struct cf_buf *base_url)
{
    struct cf_client_options client_options = {0};
    struct cf_client *client = NULL;
    struct cf_response resp = CF_RESPONSE_INIT;
    struct cf_buf default_domain, url, name;
    struct loopback lb = {.done = false};
    struct MHD_Daemon *daemon = NULL;
    struct cf_err err;
    json_t *body = NULL;
    char verifier[B64_32], challenge[B64_32], host[256] = "";
    uint8_t random[32], digest[crypto_hash_sha256_BYTES];
    int64_t timeout_s = CF_SSO_LOGIN_TIMEOUT_S;
    pid_t browser = 0;
    int status = CF_EXIT_OK;

    *answer_out = NULL;
    cf_err_clear(&err);
    pthread_mutex_init(&lb.lock, NULL);
    pthread_cond_init(&lb.arrived, NULL);
    cf_buf_init(&default_domain, 0);
    cf_buf_init(&url, 4096);
    cf_buf_init(&name, 512);
    if (options->timeout &&
        (cf_duration_parse(options->timeout, &timeout_s, &err) != CF_OK || timeout_s < 1)) {
        status = cf_cli_usage_error(cli, "--timeout takes a duration such as 90s or 5m");
        goto out;
    }
    client_options.domain =
        options->domain ? options->domain : cf_cli_default_domain(&default_domain);
    client_options.ca_file = cf_cli_first_env("COFFER_CACERT", NULL);
    if (cf_client_new(&client_options, &client, &err) != CF_OK) {
        status = err.rc == CF_EINVAL ? cf_cli_usage_error(cli, "%s", err.msg)
                                     : cf_cli_fail("%s", err.msg);
        goto out;
    }

    randombytes_buf(random, sizeof(random));
    sodium_bin2base64(verifier, sizeof(verifier), random, sizeof(random),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    crypto_hash_sha256(digest, (const unsigned char *)verifier, strlen(verifier));
    sodium_bin2base64(challenge, sizeof(challenge), digest, sizeof(digest),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);

    /* The loopback listener: 127.0.0.1 only, a port the kernel picks. */
    struct sockaddr_in addr = {
        .sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, &lb,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        daemon ? MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!info || info->port == 0) {
        status = cf_cli_fail("cannot listen on 127.0.0.1 for the browser's return");
        goto out;
    }
    if (cf_buf_printf(&url, "%s/v1/sso/oidc/cli/login?port=%u&challenge=%s",
                      cf_client_base_url(client), (unsigned)info->port, challenge) != CF_OK) {
        status = cf_cli_fail("the server's URL is too long");
        goto out;
    }
    bool opened = !options->no_browser && open_browser(url.data, &browser);
    if (opened)
        fprintf(stderr, "Opening the browser to sign in. If it does not open, visit:\n\n  %s\n\n",
                url.data);
    else
        fprintf(stderr, "Open this URL in a browser to sign in:\n\n  %s\n\n", url.data);
    if (!options->silent)
        fprintf(stderr, "Waiting for the sign-in (up to %lld seconds)...\n", (long long)timeout_s);
    fflush(stderr);
    if (!wait_for_browser(&lb, timeout_s)) {
        status = cf_cli_fail("no sign-in came back to 127.0.0.1:%u within %lld seconds",
                             (unsigned)info->port, (long long)timeout_s);
        goto out;
    }
    if (!lb.code[0]) {
        status = cf_cli_fail("the sign-in failed: %s", lb.error);
        goto out;
    }

    if (options->token_name) {
        cf_buf_puts(&name, options->token_name);
    } else {
        gethostname(host, sizeof(host) - 1);
        cf_buf_printf(&name, "coffer login --sso on %s", host[0] ? host : "this host");
    }
    body = json_pack("{s:s, s:s, s:s, s:s}", "code", lb.code, "codeVerifier", verifier, "name",
                     name.data ? name.data : "coffer login --sso", "expiresIn",
                     options->expires_in ? options->expires_in : "30d");
    if (!body) {
        status = cf_cli_usage_error(cli, "--token-name and --expires-in must be valid UTF-8");
        goto out;
    }
    if (cf_client_request(client, "POST", "/v1/sso/oidc/cli/token", NULL, body, &resp, &err) !=
        CF_OK) {
        status = resp.status ? cf_cli_fail("%s (HTTP %ld)", err.msg, resp.status)
                             : cf_cli_fail("%s", err.msg);
        goto out;
    }
    if (cf_buf_puts(base_url, cf_client_base_url(client)) != CF_OK) {
        status = cf_cli_fail("out of memory");
        goto out;
    }
    *answer_out = resp.json;
    resp.json = NULL;
out:
    if (daemon)
        MHD_stop_daemon(daemon);
    if (browser > 0)
        waitpid(browser, NULL, WNOHANG);
    cf_response_release(&resp);
    json_decref(body); /* jansson's memory is wiped when freed (util/wipemem.h) */
    cf_client_free(client);
    sodium_memzero(verifier, sizeof(verifier));
    sodium_memzero(random, sizeof(random));
    sodium_memzero(lb.code, sizeof(lb.code));
    cf_buf_release(&default_domain);
    cf_buf_release(&url);
    cf_buf_release(&name);
    pthread_cond_destroy(&lb.arrived);
    pthread_mutex_destroy(&lb.lock);
    return status;
}
