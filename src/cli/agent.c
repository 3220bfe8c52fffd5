/* `coffer agent --config agent.yaml`: a long-running client that logs a machine identity in, keeps
 * its access token alive (renewed at two thirds of its life, a new login when the server refuses
 * the renewal or the token), writes the token to sink files, and renders templates of secrets to
 * files, each rewritten only when its content changes, atomically (a temporary file in the same
 * directory, fsync, rename), with the mode and owner the configuration asks for, after which a
 * command runs or a process named by a pid file gets a signal. The configuration is Infisical's
 * agent format (infisical:, auth:, sinks:, templates:), read with libyaml; docs/agent.md lists the
 * keys and the template subset (template.h).
 *
 * Polling is cheap for the server: each folder a template read is asked again with If-None-Match
 * and the entity tag of its last answer (the unexpanded folder list, whose tag changes with any
 * change to what lists render, server-wide); only when one of them changed, or at least every
 * FULL_REFRESH_S, are the secrets read in full (references expanded, imports merged) and the
 * template rendered. Secret values never reach a log line; the token is never printed.
 *
 * Under systemd (Type=notify) the agent says READY=1 once every template has been rendered once,
 * and STOPPING=1 on SIGTERM or SIGINT, after which it stops at once (a command it started is
 * waited for up to its timeout). SIGHUP renders every template again now. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/agent_config.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/fetch.h"
#include "cli/machine_login.h"
#include "cli/template.h"
#include "util/file.h"
#include "util/str.h"
#include "util/time.h"
#include "util/sdnotify.h"
#include "util/banned.h"

#define OUTPUT_MAX (16u * 1024u * 1024u)
#define FULL_REFRESH_S 300
#define RETRY_MIN_S 1
#define RETRY_MAX_S 60

static const char usage[] =
    "usage: coffer agent --config FILE\n"
    "\n"
    "Logs a machine identity in, keeps its token renewed, writes it to sink files\n"
    "and renders templates of secrets to files, rewriting a file only when its\n"
    "content changes and then running its command or signalling a process. The\n"
    "configuration is Infisical's agent format (docs/agent.md). SIGTERM stops the\n"
    "agent; SIGHUP renders every template again.\n"
    "\n"
    "options:\n"
    "  --config FILE      the agent's YAML configuration (required)\n"
    "\n"
    "exit status: 0 after SIGTERM/SIGINT (or, with infisical.exit-after-auth, after\n"
    "the first render), 1 when the agent cannot log in or render with\n"
    "exit-after-auth, 2 for a bad command line, configuration or template.\n";

/* ---- the agent's state -------------------------------------------------------------------------
 */

struct agent {
    struct cf_cli *cli;
    struct cf_agent_config *config;
    struct cf_client *client;
    bool logged_in;
    int64_t renew_us; /* when to renew the token */
    int64_t retry_us; /* after a failure: when to try logging in again */
    int64_t backoff_s;
    bool ready_sent;
    sigset_t waited;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char stamp[CF_TIME_RFC3339_LEN];
    va_list ap;
    fprintf(stderr, "%s coffer agent: ", cf_time_format(cf_now_ms(), stamp));
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Tells systemd state (util/sdnotify.h), saying so when the socket it names refuses it. */
static void notify_systemd(const char *state)
{
    if (!cf_sd_notify(state) && getenv("NOTIFY_SOCKET"))
        say("cannot notify systemd: %s", strerror(errno));
}

/* Reads a small credential file into buf (trailing blanks trimmed). */
static bool read_credential(const char *path, const char *what, struct cf_buf *buf)
{
    struct cf_err err;
    cf_err_clear(&err);
    if (cf_ci_token_read_file(path, what, buf, &err) != CF_OK) {
        say("%s", err.msg);
        return false;
    }
    return true;
}

/* Writes the token to every sink (mode 0600, atomically). */
static void write_sinks(const struct agent *agent, const char *token)
{
    for (size_t i = 0; i < agent->config->nsinks; i++) {
        struct cf_err err;
        cf_err_clear(&err);
        if (cf_file_replace(agent->config->sinks[i], token, strlen(token), &err) != CF_OK)
            say("cannot write the token sink: %s", err.msg);
    }
}

/* Takes the token of a login or renewal answer: the client's token, the sinks, the renewal time. */
static bool take_token(struct agent *agent, json_t *answer, const char *how)
{
    const char *token = json_string_value(json_object_get(answer, "accessToken"));
    json_int_t expires_in = json_integer_value(json_object_get(answer, "expiresIn"));
    struct cf_err err;
    cf_err_clear(&err);
    if (!token || !*token) {
        say("the server's %s answer holds no access token", how);
        return false;
    }
    if (cf_client_set_token(agent->client, token, &err) != CF_OK) {
        say("%s", err.msg);
        return false;
    }
    write_sinks(agent, token);
    /* Renew at two thirds of the token's life; a token without expiry is checked hourly. */
    int64_t renew_s = expires_in > 0 ? (int64_t)expires_in * 2 / 3 : 3600;
    if (renew_s < 1)
        renew_s = 1;
    agent->renew_us = cf_mono_us() + renew_s * 1000000;
    agent->logged_in = true;
    agent->backoff_s = 0;
    say("%s: access token valid for %llds, renewed in %llds", how, (long long)expires_in,
        (long long)renew_s);
    return true;
}

static bool login(struct agent *agent)
{
    const struct cf_agent_config *config = agent->config;
    struct cf_login_flags flags = {0};
    struct cf_buf id, secret;
    json_t *answer = NULL;
    bool ok = false;

    cf_buf_init(&id, 0);
    cf_buf_init(&secret, 0);
    agent->logged_in = false;
    if (strcmp(config->auth_type, "universal-auth") == 0) {
        if (!read_credential(config->client_id_path, "the client id", &id) ||
            !read_credential(config->client_secret_path, "the client secret", &secret))
            goto out;
        flags.method = "universal-auth";
        flags.client_id = id.data;
        flags.client_secret = secret.data;
    } else {
        if (!read_credential(config->identity_id_path, "the identity id", &id))
            goto out;
        flags.identity_id = id.data;
        if (strcmp(config->auth_type, "kubernetes") == 0) {
            flags.method = "kubernetes";
            flags.sa_token_path =
                config->token_path ? config->token_path : CF_LOGIN_DEFAULT_SA_TOKEN_PATH;
        } else {
            if (!read_credential(config->token_path, "the JWT", &secret))
                goto out;
            flags.method = "jwt-auth";
            flags.jwt = secret.data;
        }
    }
    if (cf_login_run(agent->cli, &flags, cf_client_base_url(agent->client), NULL, &answer, NULL,
                     NULL) != CF_EXIT_OK)
        goto out;
    ok = take_token(agent, answer, "logged in");
    if (ok && config->remove_secret_on_read && config->client_secret_path &&
        unlink(config->client_secret_path) != 0 && errno != ENOENT)
        say("cannot remove the client secret file: %s", strerror(errno));
out:
    json_decref(answer);
    cf_buf_release_wipe(&secret);
    cf_buf_release_wipe(&id);
    return ok;
}

/* Renews the token; a refusal means a new login, an unreachable server a retry later. */
static void renew(struct agent *agent)
{
    struct cf_response resp = CF_RESPONSE_INIT;
    struct cf_err err;
    json_t *body = json_pack("{s:s}", "accessToken", cf_client_token(agent->client));
    cf_err_clear(&err);
    enum cf_rc rc = body ? cf_client_request(agent->client, "POST", "/v1/auth/token/renew", NULL,
                                             body, &resp, &err)
                         : CF_ENOMEM;
    if (rc == CF_OK) {
        take_token(agent, resp.json, "renewed");
    } else if (resp.status >= 400 && resp.status < 500) {
        say("the server refused to renew the token (%s, HTTP %ld): logging in again", err.msg,
            resp.status);
        login(agent);
    } else {
        say("cannot renew the token (%s): trying again in %ds", err.msg, RETRY_MAX_S);
        agent->renew_us = cf_mono_us() + RETRY_MAX_S * 1000000LL;
    }
    json_decref(body);
    cf_response_release(&resp);
}

/* ---- templates ---------------------------------------------------------------------------------
 */

/* The per-render context of the fetch callback: the folders read during this render. */
struct render_ctx {
    struct agent *agent;
    struct cf_agent_template *t;
    json_t *folders; /* folder key -> merged array of secrets */
    long status;     /* the status of a failed read (401 means a new login) */
};

static bool folder_key(char *out, size_t size, const char *project, const char *env,
                       const char *path)
{
    int n = snprintf(out, size, "%s\x1f%s\x1f%s", project, env, path);
    return n > 0 && (size_t)n < size;
}

/* Asks for the unexpanded list of a folder with If-None-Match: *changed true when it answered
 * 200 (its tag is kept under key_text), false on 304. */
static enum cf_rc probe(struct agent *agent, struct cf_agent_template *t, const char *key_text,
                        const char *project, const char *env, const char *path, bool *changed,
                        long *status, struct cf_err *err)
{
    struct cf_response resp = CF_RESPONSE_INIT;
    const struct cf_query_param query[] = {
        {"workspaceId", project},     {"environment", env},
        {"secretPath", path},         {"expandSecretReferences", "false"},
        {"include_imports", "false"}, {NULL, NULL}};
    json_t *known = json_object_get(t->etags, key_text);
    enum cf_rc rc =
        cf_client_get_if_none_match(agent->client, "/v3/secrets/raw", query,
                                    json_string_value(json_object_get(known, "etag")), &resp, err);
    *status = resp.status;
    *changed = rc == CF_OK && resp.status != 304;
    if (rc == CF_OK && resp.etag[0]) {
        json_t *entry = json_pack("{s:s, s:s, s:s, s:s}", "project", project, "environment", env,
                                  "path", path, "etag", resp.etag);
        if (!entry || json_object_set_new(t->etags, key_text, entry) != 0)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    cf_response_release(&resp);
    return rc;
}

static enum cf_rc merge_into(json_t *secret, json_t *import, void *ctx)
{
    (void)import;
    return json_array_append(ctx, secret) == 0 ? CF_OK : CF_ENOMEM;
}

static enum cf_rc fetch_folder(void *opaque, const char *project, const char *env, const char *path,
                               json_t **secrets, struct cf_err *err)
{
    struct render_ctx *ctx = opaque;
    struct cf_response resp = CF_RESPONSE_INIT;
    char key[1024];
    bool changed = false;
    enum cf_rc rc;

    if (!folder_key(key, sizeof(key), project, env, path))
        return cf_err_set(err, CF_EINVAL, "the folder's names are too long");
    *secrets = json_object_get(ctx->folders, key);
    if (*secrets)
        return CF_OK;
    /* The tag first: a change between the two requests makes the next probe see a new tag. */
    rc = probe(ctx->agent, ctx->t, key, project, env, path, &changed, &ctx->status, err);
    if (rc != CF_OK)
        return rc;
    const struct cf_query_param query[] = {
        {"workspaceId", project},           {"environment", env},        {"secretPath", path},
        {"expandSecretReferences", "true"}, {"include_imports", "true"}, {NULL, NULL}};
    rc = cf_client_request(ctx->agent->client, "GET", "/v3/secrets/raw", query, NULL, &resp, err);
    ctx->status = resp.status;
    /* A reference the server could not follow stays as its "${...}" text: said, by name only. */
    if (rc == CF_OK)
        cf_secrets_warn_broken(json_object_get(resp.json, "brokenReferences"),
                               "is rendered unexpanded");
    json_t *merged = rc == CF_OK ? json_array() : NULL;
    if (rc == CF_OK && (!merged || cf_secrets_merge(resp.json, merge_into, merged) != CF_OK))
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    if (rc == CF_OK && json_object_set_new(ctx->folders, key, merged) != 0)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    else if (rc == CF_OK)
        *secrets = merged;
    else
        json_decref(merged);
    cf_response_release(&resp);
    return rc;
}

/* Whether the destination holds exactly content already. */
static bool unchanged(const char *path, const struct cf_buf *content)
{
    char *current = NULL;
    size_t len = 0;
    struct cf_err err;
    cf_err_clear(&err);
    if (cf_file_read(path, OUTPUT_MAX, &current, &len, &err) != CF_OK)
        return false;
    bool same = len == content->len && (len == 0 || memcmp(current, content->data, len) == 0);
    sodium_memzero(current, len);
    free(current);
    return same;
}

/* Replaces the destination: a temporary file beside it with the mode and owner asked for, the
 * content, fsync, rename over the destination, fsync of the directory. */
static bool write_destination(const struct cf_agent_template *t, const struct cf_buf *content)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    int fd = -1, dir_fd = -1;
    bool ok = false, created = false;

    const char *slash = strrchr(t->destination, '/');
    int n = slash ? snprintf(dir, sizeof(dir), "%.*s", (int)(slash - t->destination + 1),
                             t->destination)
                  : snprintf(dir, sizeof(dir), ".");
    if (n < 0 || (size_t)n >= sizeof(dir) ||
        (size_t)snprintf(tmp, sizeof(tmp), "%s.coffer-agent-XXXXXX", t->destination) >=
            sizeof(tmp)) {
        say("%s: the destination path is too long", t->name);
        return false;
    }
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        say("%s: cannot create a file beside '%s': %s", t->name, t->destination, strerror(errno));
        goto out;
    }
    created = true;
    if (fchmod(fd, t->mode) != 0 ||
        ((t->set_owner || t->set_group) &&
         fchown(fd, t->set_owner ? t->uid : (uid_t)-1, t->set_group ? t->gid : (gid_t)-1) != 0)) {
        say("%s: cannot set the mode or owner of '%s': %s", t->name, t->destination,
            strerror(errno));
        goto out;
    }
    if (!cf_write_all(fd, content->data ? content->data : "", content->len) || fsync(fd) != 0) {
        say("%s: cannot write '%s': %s", t->name, t->destination, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        say("%s: cannot write '%s': %s", t->name, t->destination, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, t->destination) != 0) {
        say("%s: cannot replace '%s': %s", t->name, t->destination, strerror(errno));
        goto out;
    }
    created = false;
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0)
        (void)fsync(dir_fd);
    ok = true;
out:
    if (dir_fd >= 0)
        close(dir_fd);
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp);
    return ok;
}

/* Runs the template's command with /bin/sh -c in its own process group, killed after timeout. */
static void run_command(const struct cf_agent_template *t)
{
    pid_t pid = fork();
    if (pid < 0) {
        say("%s: cannot start the command: %s", t->name, strerror(errno));
        return;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0);
        execl("/bin/sh", "sh", "-c", t->command, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    int64_t deadline = cf_mono_us() + t->timeout_s * 1000000;
    int wstatus = 0;
    for (;;) {
        pid_t done = waitpid(pid, &wstatus, WNOHANG);
        if (done == pid)
            break;
        if (done < 0 && errno != EINTR) {
            say("%s: cannot wait for the command: %s", t->name, strerror(errno));
            return;
        }
        if (cf_mono_us() > deadline) {
            say("%s: the command ran longer than %llds: killed", t->name, (long long)t->timeout_s);
            kill(-pid, SIGKILL);
            waitpid(pid, &wstatus, 0);
            return;
        }
        struct timespec pause = {0, 20 * 1000000};
        nanosleep(&pause, NULL);
    }
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)
        say("%s: the command ran", t->name);
    else if (WIFEXITED(wstatus))
        say("%s: the command exited with status %d", t->name, WEXITSTATUS(wstatus));
    else
        say("%s: the command was killed by signal %d", t->name, WTERMSIG(wstatus));
}

static void signal_process(const struct cf_agent_template *t)
{
    char *text = NULL;
    size_t len = 0;
    struct cf_err err;
    cf_err_clear(&err);
    if (cf_file_read(t->pid_file, 64, &text, &len, &err) != CF_OK) {
        say("%s: cannot read the pid file: %s", t->name, err.msg);
        return;
    }
    char *end = NULL;
    errno = 0;
    long pid = strtol(text, &end, 10);
    while (end && (*end == '\n' || *end == ' ' || *end == '\r'))
        end++;
    if (errno || !end || *end || pid <= 1 || pid > INT_MAX)
        say("%s: the pid file '%s' holds no process id", t->name, t->pid_file);
    else if (kill((pid_t)pid, t->signal) != 0)
        say("%s: cannot signal process %ld: %s", t->name, pid, strerror(errno));
    else
        say("%s: sent signal %d to process %ld", t->name, t->signal, pid);
    free(text);
}

/* Whether any folder the template read last time changed (or it is time for a full read). */
static bool needs_render(struct agent *agent, struct cf_agent_template *t, long *status)
{
    const char *key;
    json_t *entry;
    if (!t->rendered || json_object_size(t->etags) == 0 ||
        cf_mono_us() - t->rendered_us >= FULL_REFRESH_S * 1000000LL)
        return true;
    json_object_foreach(t->etags, key, entry)
    {
        const char *project = json_string_value(json_object_get(entry, "project"));
        const char *env = json_string_value(json_object_get(entry, "environment"));
        const char *path = json_string_value(json_object_get(entry, "path"));
        if (!project || !env || !path)
            return true;
        bool changed = false;
        struct cf_err err;
        cf_err_clear(&err);
        if (probe(agent, t, key, project, env, path, &changed, status, &err) != CF_OK) {
            say("%s: cannot check %s:%s: %s", t->name, env, path, err.msg);
            return *status == 401 ? false : true;
        }
        if (changed)
            return true;
    }
    return false;
}

/* One poll of a template. false when it could not be rendered. */
static bool poll_template(struct agent *agent, struct cf_agent_template *t, bool force)
{
    struct render_ctx ctx = {agent, t, json_object(), 0};
    struct cf_buf out;
    struct cf_err err;
    bool ok = false;
    long status = 0;

    cf_err_clear(&err);
    cf_buf_init(&out, OUTPUT_MAX);
    if (!ctx.folders)
        goto out;
    if (!force && !needs_render(agent, t, &status)) {
        if (status == 401) {
            say("the server refused the token: logging in again");
            login(agent);
        }
        ok = status != 401;
        goto out;
    }
    if (cf_template_render(t->tmpl, fetch_folder, &ctx, &out, &err) != CF_OK) {
        say("cannot render %s: %s", t->name, err.msg);
        if (ctx.status == 401) {
            say("the server refused the token: logging in again");
            login(agent);
        }
        goto out;
    }
    t->rendered = true;
    t->rendered_us = cf_mono_us();
    ok = true;
    if (unchanged(t->destination, &out))
        goto out;
    if (!write_destination(t, &out)) {
        ok = false;
        goto out;
    }
    say("%s: wrote %s", t->name, t->destination);
    if (t->command)
        run_command(t);
    if (t->pid_file)
        signal_process(t);
out:
    json_decref(ctx.folders);
    cf_buf_release_wipe(&out);
    return ok;
}

/* ---- the loop ----------------------------------------------------------------------------------
 */

/* Waits until deadline_us (monotonic) for a signal: SIGTERM/SIGINT (returns it), SIGHUP (returns
 * it); 0 when the time came. */
static int wait_until(const struct agent *agent, int64_t deadline_us)
{
    int64_t left = deadline_us - cf_mono_us();
    if (left < 0)
        left = 0;
    struct timespec timeout = {(time_t)(left / 1000000), (long)(left % 1000000) * 1000};
    int sig = sigtimedwait(&agent->waited, NULL, &timeout);
    return sig > 0 ? sig : 0;
}

static int run_agent(struct agent *agent)
{
    struct cf_agent_config *config = agent->config;
    bool force = true;
    for (;;) {
        int64_t now = cf_mono_us();
        if (!agent->logged_in) {
            if (now < agent->retry_us)
                goto wait;
            if (!login(agent)) {
                if (config->exit_after_auth)
                    return CF_EXIT_FAILURE;
                agent->backoff_s = agent->backoff_s ? agent->backoff_s * 2 : RETRY_MIN_S;
                if (agent->backoff_s > RETRY_MAX_S)
                    agent->backoff_s = RETRY_MAX_S;
                say("trying to log in again in %llds", (long long)agent->backoff_s);
                agent->retry_us = cf_mono_us() + agent->backoff_s * 1000000;
                goto wait;
            }
        } else if (now >= agent->renew_us) {
            renew(agent);
        }
        bool all_rendered = true;
        for (size_t i = 0; i < config->ntemplates && agent->logged_in; i++) {
            struct cf_agent_template *t = &config->templates[i];
            if (force || cf_mono_us() >= t->due_us) {
                if (!poll_template(agent, t, force) && config->exit_after_auth)
                    return CF_EXIT_FAILURE;
                t->due_us = cf_mono_us() + t->interval_us;
            }
            all_rendered = all_rendered && t->rendered;
        }
        force = false;
        if (agent->logged_in && all_rendered && !agent->ready_sent) {
            notify_systemd("READY=1\nSTATUS=templates rendered");
            agent->ready_sent = true;
            say("ready: %zu template%s rendered, %zu sink%s written", config->ntemplates,
                config->ntemplates == 1 ? "" : "s", config->nsinks, config->nsinks == 1 ? "" : "s");
            if (config->exit_after_auth)
                return CF_EXIT_OK;
        }
    wait:;
        int64_t next = agent->logged_in ? agent->renew_us : agent->retry_us;
        /* Templates wait for a login: their due times count only with a token. */
        for (size_t i = 0; i < config->ntemplates && agent->logged_in; i++) {
            if (config->templates[i].due_us < next)
                next = config->templates[i].due_us;
        }
        int sig = wait_until(agent, next);
        if (sig == SIGTERM || sig == SIGINT) {
            notify_systemd("STOPPING=1");
            say("stopping (signal %d)", sig);
            return CF_EXIT_OK;
        }
        if (sig == SIGHUP) {
            say("SIGHUP: rendering every template again");
            force = true;
        }
    }
}

static void revoke_token(struct agent *agent)
{
    struct cf_response resp = CF_RESPONSE_INIT;
    struct cf_err err;
    const char *token = cf_client_token(agent->client);
    json_t *body = token ? json_pack("{s:s}", "accessToken", token) : NULL;
    cf_err_clear(&err);
    if (body && cf_client_request(agent->client, "POST", "/v1/auth/token/revoke", NULL, body, &resp,
                                  &err) == CF_OK)
        say("revoked the access token");
    else if (body)
        say("cannot revoke the access token: %s", err.msg);
    json_decref(body);
    cf_response_release(&resp);
}

int cf_cmd_agent(int argc, char **argv)
{
    const char *config_file = NULL;
    const struct cf_opt opts[] = {{"config", CF_OPT_STRING, &config_file}};
    const struct cf_cli_spec spec = {usage, CF_CLI_OFFLINE, 0, 0, opts, CF_ARRAY_SIZE(opts), NULL};
    struct cf_agent_config config = {0};
    struct agent agent = {0};
    struct cf_client_options client_options = {0};
    struct cf_buf default_domain;
    struct cf_err err;
    struct cf_cli cli;
    sigset_t old_mask;
    bool mask_changed = false;
    int status;

    cf_err_clear(&err);
    cf_buf_init(&default_domain, 0);
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    if (!config_file || !*config_file) {
        status = cf_cli_usage_error(&cli, "--config FILE is required");
        goto out;
    }
    if (cf_agent_config_load(config_file, &config, &err) != CF_OK) {
        status = err.rc == CF_EINVAL ? CF_EXIT_USAGE : CF_EXIT_FAILURE;
        fprintf(stderr, "coffer: %s\n", err.msg);
        goto out;
    }
    client_options.domain =
        config.address ? config.address : cf_cli_default_domain(&default_domain);
    client_options.ca_file = cf_cli_first_env("COFFER_CACERT", NULL);
    if (cf_client_new(&client_options, &agent.client, &err) != CF_OK) {
        status = err.rc == CF_EINVAL ? cf_cli_usage_error(&cli, "infisical.address: %s", err.msg)
                                     : cf_cli_fail("%s", err.msg);
        goto out;
    }
    /* Neither a core dump nor a same-user debugger may read the secrets the agent holds. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    agent.cli = &cli;
    agent.config = &config;
    sigemptyset(&agent.waited);
    sigaddset(&agent.waited, SIGTERM);
    sigaddset(&agent.waited, SIGINT);
    sigaddset(&agent.waited, SIGHUP);
    sigprocmask(SIG_BLOCK, &agent.waited, &old_mask);
    mask_changed = true;
    say("starting: server %s, %zu template%s, %zu sink%s", cf_client_base_url(agent.client),
        config.ntemplates, config.ntemplates == 1 ? "" : "s", config.nsinks,
        config.nsinks == 1 ? "" : "s");
    status = run_agent(&agent);
    if (config.revoke_on_shutdown && agent.logged_in)
        revoke_token(&agent);
out:
    if (mask_changed)
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
    cf_client_free(agent.client);
    cf_agent_config_release(&config);
    cf_buf_release(&default_domain);
    cf_cli_end(&cli);
    return status;
}
