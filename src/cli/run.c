/* `coffer run`: runs a command with a folder's secrets added to its environment, as Infisical's CLI
 * does. The secrets are read (fetch.h: GET /api/v4/secrets per --path, imports merged, references
 * expanded by the server) and placed in the child's environment: the inherited environment first,
 * then the secrets overwrite variables of the same name (--preserve-env: the inherited variables
 * win instead). Infisical's reserved names (HOME, PATH, SHELL, ..., XDG_*, LC_*) are never set from
 * a secret. The command runs with stdin, stdout and stderr inherited; coffer waits for it, forwards
 * the signals other processes send to coffer (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2)
 * and exits with its exit status, or 128 + the signal that killed it.
 *
 * Secrets never touch disk: the child receives them through execve's environment, and the parent
 * wipes its copies (the environment block, the server's answer) as soon as the child has exec'd
 * (vfork: the parent resumes only then). With --watch
 * the parent keeps only a SHA-256 fingerprint of the secrets, polls every --watch-interval seconds,
 * and when the fingerprint changes stops the command (SIGTERM, then SIGKILL after 10 s) and starts
 * it again with the new secrets.
 *
 * Signals are taken synchronously: the parent blocks them and waits with sigtimedwait, so no
 * handler runs in the middle of anything. Signals the terminal sends to the whole foreground
 * process group (Ctrl-C, hang-up: si_code SI_KERNEL) already reach the command, which shares
 * coffer's group, and are not sent a second time. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/fallback.h"
#include "cli/fetch.h"
#include "cli/machine_login.h"
#include "util/time.h"
#include "util/banned.h"
#include "util/str.h"

extern char **environ;

#define PATHS_MAX 32
#define WATCH_INTERVAL_MIN 5
#define WATCH_INTERVAL_DEFAULT 10
#define STOP_GRACE_US (10 * 1000000LL)
#define LEASES_MAX 16
#define LEASE_PLACE_MAX 1100 /* a folder path and a name */

static const char usage[] =
    "usage: coffer run [options] -- COMMAND [ARGS...]\n"
    "       coffer run [options] --command \"SHELL COMMAND\"\n"
    "\n"
    "Runs a command with the secrets of a folder in its environment. Secrets\n"
    "overwrite inherited variables of the same name (as Infisical's CLI does);\n"
    "--preserve-env keeps the inherited ones instead. Secrets named like reserved\n"
    "variables (HOME, PATH, PS1, PS2, PWD, EDITOR, XAUTHORITY, USER, TERM, TERMINFO,\n"
    "SHELL, MAIL, XDG_*, LC_*) are skipped with a warning. Nothing is written to disk.\n"
    "\n"
    "options:\n"
    "  --path PATH        folder (default /); repeat it to merge several folders,\n"
    "                     the later one winning on equal keys\n"
    "  --recursive        include the secrets of every sub-folder\n"
    "  --include-imports  add the folder's imports (default true; =false to skip):\n"
    "                     the folder's own keys win, then later imports\n"
    "  --expand           expand ${...} references on the server (default true)\n"
    "  --strict-references refuse when a secret's reference cannot be followed\n"
    "                     (default: leave that secret out, with a warning)\n"
    "  --preserve-env     inherited variables win over secrets of the same name\n"
    "  --command TEXT     run TEXT with $SHELL -c (default /bin/sh) instead of\n"
    "                     COMMAND ARGS\n"
    "  --watch            restart the command when the secrets change\n"
    "  --watch-interval N seconds between checks with --watch (default 10, >= 5)\n"
    "  --lease SPEC       create a lease of a dynamic secret and put its credential in\n"
    "                     the environment; SPEC is [FOLDER/]NAME[:FIELD=VAR,...], e.g.\n"
    "                     db-ro:DB_USERNAME=PGUSER,DB_PASSWORD=PGPASSWORD (unmapped\n"
    "                     fields keep their names); repeatable. The leases are revoked\n"
    "                     when the command exits, also on SIGINT/SIGTERM\n"
    "  --lease-ttl TTL    the leases' length, e.g. 15m (default: each dynamic secret's)\n"
    "  --keep-lease       leave the leases to end by themselves\n"
    "  --silent           no informational messages on standard error\n"
    "  --secret-overriding accepted for Infisical's CLI; Coffer has no personal secrets\n"
    "                     to override shared ones, so it changes nothing\n" CF_FALLBACK_OPTIONS_HELP
        CF_EXPIRY_OPTIONS_HELP CF_CLI_PROJECT_HELP CF_CLI_ENV_HELP CF_CLI_COMMON_HELP "\n"
    "login flags: log in for this command alone (the token is not stored), e.g.\n"
    "  coffer run --method jwt-auth --jwt-from azure-devops --machine-identity-id ID \\\n"
    "             --projectId P --env prod -- ./deploy.sh\n" CF_LOGIN_OPTIONS_HELP "\n"
    "exit status: the command's exit status, or 128 + the number of the signal that\n"
    "killed it; 1 when the secrets cannot be read (the command is not run then), 2\n"
    "usage error, 3 with --fail-on-expired when an injected secret has expired (the\n"
    "command is not run; stderr names each), 126 or 127 when the command cannot be\n"
    "started. Statuses 1-3 may also be the command's own: stderr tells which.\n";

/* Infisical's CLI (util.ReservedEnvVars): never set from a secret. */
static const char *const reserved[] = {"HOME",       "PATH", "PS1",  "PS2",      "PWD",   "EDITOR",
                                       "XAUTHORITY", "USER", "TERM", "TERMINFO", "SHELL", "MAIL"};
static const char *const reserved_prefixes[] = {"XDG_", "LC_"};

static const int forwarded_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

static bool is_reserved(const char *name)
{
    for (size_t i = 0; i < CF_ARRAY_SIZE(reserved); i++) {
        if (strcmp(name, reserved[i]) == 0)
            return true;
    }
    for (size_t i = 0; i < CF_ARRAY_SIZE(reserved_prefixes); i++) {
        if (strncmp(name, reserved_prefixes[i], strlen(reserved_prefixes[i])) == 0)
            return true;
    }
    return false;
}

/* ---- the child's environment ----------------------------------------------------------------- */

/* An environment block: envp points into the inherited environ and into strings, which holds the
 * secrets' "NAME=value" texts and is wiped on release. */
struct env_block {
    char **envp;
    struct cf_buf strings;
    size_t injected;
};

static void env_block_release(struct env_block *block)
{
    free(block->envp);
    block->envp = NULL;
    cf_buf_release_wipe(&block->strings);
}

/* Whether a secret named like the inherited entry "NAME=..." exists in set. */
static json_t *secret_for_entry(json_t *set, const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq ? json_object_getn(set, entry, (size_t)(eq - entry)) : NULL;
}

/* Builds the child's environment from environ and set. CF_EXIT_OK, or CF_EXIT_FAILURE with the
 * reason printed (a value with a NUL byte, out of memory). Warnings for reserved names go to stderr
 * unless silent. */
static int build_env(json_t *set, bool preserve_env, bool silent, struct env_block *block)
{
    size_t n_environ = 0, n = 0, n_offsets = 0;
    size_t *offsets = NULL;
    const char *key;
    json_t *secret;
    int status = CF_EXIT_FAILURE;

    memset(block, 0, sizeof(*block));
    cf_buf_init(&block->strings, 0);
    while (environ && environ[n_environ])
        n_environ++;
    block->envp = calloc(n_environ + json_object_size(set) + 1, sizeof(char *));
    offsets = calloc(json_object_size(set) + 1, sizeof(size_t));
    if (!block->envp || !offsets) {
        cf_cli_fail("out of memory");
        goto out;
    }
    /* Inherited variables, unless a secret replaces them. */
    for (size_t i = 0; i < n_environ; i++) {
        json_t *shadow = secret_for_entry(set, environ[i]);
        if (shadow && !preserve_env &&
            !is_reserved(json_string_value(json_object_get(shadow, "secretKey"))))
            continue;
        block->envp[n++] = environ[i];
    }
    json_object_foreach(set, key, secret)
    {
        size_t len;
        const char *value = cf_secret_value(secret, &len);
        if (is_reserved(key)) {
            if (!silent)
                fprintf(stderr,
                        "coffer: warning: secret '%s' not injected: it has a reserved name\n", key);
            continue;
        }
        if (!*key || strchr(key, '=')) {
            if (!silent)
                fprintf(stderr,
                        "coffer: warning: secret '%s' not injected: not a valid variable "
                        "name\n",
                        key);
            continue;
        }
        if (memchr(value, '\0', len)) {
            cf_cli_fail("the value of secret '%s' contains a NUL byte, which an environment "
                        "variable cannot hold; nothing was run",
                        key);
            goto out;
        }
        if (preserve_env) {
            const char *inherited = getenv(key);
            if (inherited)
                continue;
        }
        offsets[n_offsets++] = block->strings.len;
        if (cf_buf_puts(&block->strings, key) != CF_OK ||
            cf_buf_append(&block->strings, "=", 1) != CF_OK ||
            cf_buf_append(&block->strings, value, len) != CF_OK ||
            cf_buf_append(&block->strings, "", 1) != CF_OK) { /* keeps the NUL as a separator */
            cf_cli_fail("the secrets are too large for an environment");
            goto out;
        }
    }
    /* The buffer no longer moves: point at its strings. */
    for (size_t i = 0; i < n_offsets; i++)
        block->envp[n++] = block->strings.data + offsets[i];
    block->envp[n] = NULL;
    block->injected = n_offsets;
    status = CF_EXIT_OK;
out:
    free(offsets);
    if (status != CF_EXIT_OK)
        env_block_release(block);
    return status;
}

/* ---- the child ------------------------------------------------------------------------------- */

struct command {
    char **args;               /* COMMAND ARGS..., NULL-terminated, or NULL with shell_command */
    const char *shell_command; /* --command */
    sigset_t child_mask;       /* the signal mask the command starts with */
};

/* The child's side of start_child: sets the command's signal mask and execs it with envp, or says
 * why it cannot and exits 127 (not found) or 126. It runs in a vfork child, which shares the
 * parent's memory and stack until the exec: it calls only async-signal-safe functions, allocates
 * nothing, writes no variable of the parent and never returns. strerrordesc_np gives the same text
 * as strerror in the C locale coffer runs in, without a lookup that might allocate. */
static _Noreturn __attribute__((noinline)) void exec_child(const struct command *cmd, char **envp)
{
    sigprocmask(SIG_SETMASK, &cmd->child_mask, NULL);
    if (cmd->shell_command) {
        const char *shell = getenv("SHELL");
        if (!shell || !*shell)
            shell = "/bin/sh";
        char *const shell_args[] = {(char *)shell, (char *)"-c", (char *)cmd->shell_command, NULL};
        execve(shell, shell_args, envp);
        if (strcmp(shell, "/bin/sh") != 0) {
            char *const sh_args[] = {(char *)"/bin/sh", (char *)"-c", (char *)cmd->shell_command,
                                     NULL};
            execve("/bin/sh", sh_args, envp);
        }
    } else {
        execvpe(cmd->args[0], cmd->args, envp);
    }
    int saved = errno;
    static const char prefix[] = "coffer: cannot run '";
    const char *name = cmd->shell_command ? "$SHELL" : cmd->args[0];
    const char *reason = strerrordesc_np(saved);
    if (!reason)
        reason = "unknown error";
    if (write(STDERR_FILENO, prefix, sizeof(prefix) - 1) < 0 ||
        write(STDERR_FILENO, name, strlen(name)) < 0 || write(STDERR_FILENO, "': ", 3) < 0 ||
        write(STDERR_FILENO, reason, strlen(reason)) < 0 || write(STDERR_FILENO, "\n", 1) < 0)
        _exit(127);
    _exit(saved == ENOENT ? 127 : 126);
}

/* Starts the command with envp. Returns the child's pid, or -1 (message printed).
 *
 * vfork rather than fork: the parent holds some forty shared libraries and the secrets' JSON, and
 * fork copies its page tables, then every page the parent writes before the child's exec (wiping
 * the secrets right after the launch, exiting) is copied once more. With vfork the child borrows
 * the parent's memory until it execs, and the parent resumes after that. */
static pid_t start_child(const struct command *cmd, char **envp)
{
    pid_t pid = vfork();
    if (pid == 0)
        exec_child(cmd, envp);
    if (pid < 0)
        cf_cli_fail("cannot fork: %s", strerror(errno));
    return pid;
}

/* Builds the environment from set, starts the command and wipes the parent's copies. */
static pid_t launch(const struct command *cmd, json_t *set, bool preserve_env, bool silent,
                    int *status)
{
    struct env_block block;
    *status = build_env(set, preserve_env, silent, &block);
    if (*status != CF_EXIT_OK)
        return -1;
    if (!silent)
        fprintf(stderr, "Injecting %zu secrets into your application process\n", block.injected);
    pid_t pid = start_child(cmd, block.envp);
    env_block_release(&block);
    if (pid < 0)
        *status = CF_EXIT_FAILURE;
    return pid;
}

static int exit_status_of(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return CF_EXIT_FAILURE;
}

/* ---- waiting --------------------------------------------------------------------------------- */

struct supervisor {
    struct cf_cli *cli;
    const struct command *cmd;
    const struct cf_fetch *fetch;
    sigset_t waited; /* blocked in the parent, taken with sigtimedwait */
    bool watch;
    long long interval_us;
    bool preserve_env;
    bool silent;
    pid_t child;
    bool stopping; /* coffer was asked to stop: no more restarts */
    unsigned char fingerprint[CF_FINGERPRINT_BYTES];
};

/* Waits up to timeout_us (< 0: until something happens) for a signal. Forwards the signals meant
 * for the command; reaps the child. Returns true when the child has exited (*wstatus set). */
static bool wait_event(struct supervisor *sv, long long timeout_us, int *wstatus)
{
    siginfo_t info;
    struct timespec ts;
    if (timeout_us < 0)
        timeout_us = 3600LL * 1000000;
    ts.tv_sec = (time_t)(timeout_us / 1000000);
    ts.tv_nsec = (long)(timeout_us % 1000000) * 1000;
    int sig = sigtimedwait(&sv->waited, &info, &ts);
    if (sig > 0 && sig != SIGCHLD) {
        /* Sent by a process (kill, a CI runner, docker stop): pass it on. Sent by the terminal to
         * the whole process group: the command has it already. */
        if (info.si_code != SI_KERNEL)
            kill(sv->child, sig);
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT)
            sv->stopping = true;
    }
    /* Reap on every wake-up, not only on SIGCHLD: cheap, and robust to coalesced signals. */
    pid_t done = waitpid(sv->child, wstatus, WNOHANG);
    return done == sv->child;
}

/* Stops the child for a restart: SIGTERM, up to 10 s, then SIGKILL. Returns true if it was stopped
 * by us; false if it exited meanwhile by itself or coffer was asked to stop (then *wstatus holds
 * its status). */
static bool stop_child(struct supervisor *sv, int *wstatus)
{
    kill(sv->child, SIGTERM);
    int64_t deadline = cf_mono_us() + STOP_GRACE_US;
    for (;;) {
        int64_t left = deadline - cf_mono_us();
        if (left <= 0) {
            kill(sv->child, SIGKILL);
            while (waitpid(sv->child, wstatus, 0) < 0 && errno == EINTR)
                ;
            return !sv->stopping;
        }
        if (wait_event(sv, left, wstatus))
            return !sv->stopping;
    }
}

/* One --watch poll: re-reads the secrets; on a change restarts the command. Returns false when the
 * supervision is over (*status set). */
static bool poll_secrets(struct supervisor *sv, int *status)
{
    json_t *set = NULL;
    unsigned char fingerprint[CF_FINGERPRINT_BYTES];
    int wstatus = 0;
    /* Secrets left out were said at the start: said again with a restart, not at each poll. */
    struct cf_fetch fetch = *sv->fetch;
    fetch.broken = json_array();

    if (!fetch.broken || cf_fetch_secrets(sv->cli, &fetch, &set) != CF_EXIT_OK) {
        fprintf(stderr, "coffer: warning: could not check the secrets; the command keeps "
                        "running\n");
        json_decref(fetch.broken);
        return true;
    }
    cf_secrets_fingerprint(set, fingerprint);
    if (sodium_memcmp(fingerprint, sv->fingerprint, sizeof(fingerprint)) == 0) {
        json_decref(set);
        json_decref(fetch.broken);
        return true;
    }
    if (!sv->silent)
        fprintf(stderr, "coffer: the secrets changed; restarting the command\n");
    cf_secrets_warn_broken(fetch.broken, "left out");
    json_decref(fetch.broken);
    if (!stop_child(sv, &wstatus)) {
        json_decref(set);
        *status = exit_status_of(wstatus);
        return false;
    }
    memcpy(sv->fingerprint, fingerprint, sizeof(fingerprint));
    sv->child = launch(sv->cmd, set, sv->preserve_env, sv->silent, status);
    json_decref(set);
    return sv->child > 0;
}

/* Waits for the command (polling with --watch) and returns coffer's exit status. */
static int supervise(struct supervisor *sv)
{
    int wstatus = 0, status = CF_EXIT_OK;
    int64_t next_poll = cf_mono_us() + sv->interval_us;
    for (;;) {
        long long timeout = -1;
        if (sv->watch && !sv->stopping) {
            timeout = next_poll - cf_mono_us();
            if (timeout <= 0) {
                if (!poll_secrets(sv, &status))
                    return status;
                next_poll = cf_mono_us() + sv->interval_us;
                continue;
            }
        }
        if (wait_event(sv, timeout, &wstatus))
            return exit_status_of(wstatus);
    }
}

/* ---- options --------------------------------------------------------------------------------- */

/* The values of every --option in argv[1..] before "--" (cf_cli_begin keeps only the last), at
 * most max. argv has been validated by cf_cli_begin, so each option either carries "=value" or,
 * unless it is a flag (a bool option), takes the next argument. */
static int collect_values(const struct cf_cli *cli, int argc, char **argv,
                          const struct cf_opt *opts, size_t nopts, const char *option,
                          const char **values, size_t max, size_t *n)
{
    *n = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0)
            break;
        if (strncmp(arg, "--", 2) != 0)
            continue;
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        bool flag = false;
        for (size_t k = 0; k < nopts; k++) {
            if (strlen(opts[k].name) == len && strncmp(opts[k].name, name, len) == 0)
                flag = opts[k].type == CF_OPT_BOOL;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!eq && !flag && i + 1 < argc)
            value = argv[++i];
        if (len == strlen(option) && strncmp(name, option, len) == 0 && value) {
            if (*n == max)
                return cf_cli_usage_error(cli, "at most %zu --%s options", max, option);
            values[(*n)++] = value;
        }
    }
    return CF_EXIT_OK;
}

static int collect_paths(const struct cf_cli *cli, int argc, char **argv, const struct cf_opt *opts,
                         size_t nopts, const char **paths, size_t *npaths)
{
    int status = collect_values(cli, argc, argv, opts, nopts, "path", paths, PATHS_MAX, npaths);
    for (size_t i = 0; i < *npaths; i++)
        if (!*paths[i])
            paths[i] = "/";
    if (status == CF_EXIT_OK && *npaths == 0)
        paths[(*npaths)++] = "/";
    return status;
}

/* ---- leases ---------------------------------------------------------------------------------- */

/* The leases this run created, revoked at its end unless kept. */
struct leases {
    char ids[LEASES_MAX][40];
    size_t n;
};

/* Revokes every lease of leases (errors printed; the server revokes a lease at its end anyway). */
static void revoke_leases(struct cf_cli *cli, struct leases *leases, bool silent)
{
    for (size_t i = 0; i < leases->n; i++) {
        struct cf_buf path;
        json_t *answer = NULL;
        cf_buf_init(&path, 0);
        int status =
            cf_cli_path(&path, "/v1/dynamic-secrets/leases", leases->ids[i], NULL, NULL, NULL);
        if (status == CF_EXIT_OK)
            status = cf_cli_request(cli, "DELETE", path.data, NULL, NULL, &answer);
        if (status == CF_EXIT_OK && !silent)
            fprintf(stderr, "coffer: revoked lease %s\n", leases->ids[i]);
        else if (status != CF_EXIT_OK)
            fprintf(stderr,
                    "coffer: warning: lease %s was not revoked now; the server revokes it when "
                    "it ends\n",
                    leases->ids[i]);
        json_decref(answer);
        cf_buf_release(&path);
    }
    leases->n = 0;
}

/* The variable FIELD is mapped to by map ("FIELD=VAR,FIELD=VAR"), or field itself. */
static void variable_of(const char *map, const char *field, char *out, size_t size)
{
    size_t flen = strlen(field);
    cf_strlcpy(out, field, size);
    for (const char *p = map; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq && (size_t)(eq - p) == flen && strncmp(p, field, flen) == 0) {
            size_t vlen = len - flen - 1;
            snprintf(out, size, "%.*s", (int)vlen, eq + 1);
        }
        p += len + (comma ? 1 : 0);
    }
}

/* Checks a --lease SPEC: [FOLDER/]NAME[:FIELD=VAR,...] with every mapping of the form A=B. */
static bool lease_spec_valid(const char *spec)
{
    const char *colon = strchr(spec, ':');
    size_t name_len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (name_len == 0 || spec[name_len - 1] == '/')
        return false;
    for (const char *p = colon ? colon + 1 : NULL; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq || eq == p || eq == p + len - 1)
            return false;
        p += len + (comma ? 1 : 0);
        if (comma && !*p)
            return false;
    }
    return colon == NULL || colon[1] != '\0';
}

/* Creates the lease of spec and adds its fields to set as secrets (named by the mapping). */
static int create_lease(struct cf_cli *cli, const char *spec, const char *ttl, json_t *set,
                        struct leases *leases)
{
    char place[LEASE_PLACE_MAX], folder[LEASE_PLACE_MAX];
    const char *colon = strchr(spec, ':');
    snprintf(place, sizeof(place), "%.*s", (int)(colon ? (size_t)(colon - spec) : strlen(spec)),
             spec);
    const char *slash = strrchr(place, '/');
    const char *name = slash ? slash + 1 : place;
    snprintf(folder, sizeof(folder), "%.*s", slash ? (int)(slash - place) : 0, place);
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:s}", "projectSlug", cli->project_id, "environmentSlug",
                  cli->env, "path", folder[0] ? folder : "/", "dynamicSecretName", name);
    json_t *answer = NULL;
    if (!body)
        return cf_cli_fail("--lease: '%s' must be valid UTF-8", spec);
    if (ttl)
        json_object_set_new(body, "ttl", json_string(ttl));
    int status = cf_cli_request(cli, "POST", "/v1/dynamic-secrets/leases", NULL, body, &answer);
    json_decref(body);
    if (status != CF_EXIT_OK)
        return status;
    cf_strlcpy(leases->ids[leases->n++], cf_cli_str(json_object_get(answer, "lease"), "id"),
               sizeof(leases->ids[0]));
    const char *field;
    json_t *value;
    json_object_foreach(json_object_get(answer, "data"), field, value)
    {
        char variable[256];
        if (!json_is_string(value))
            continue;
        variable_of(colon ? colon + 1 : NULL, field, variable, sizeof(variable));
        json_t *secret = json_pack("{s:s, s:O}", "secretKey", variable, "secretValue", value);
        if (!secret || json_object_set_new(set, variable, secret) != 0) {
            status = cf_cli_fail("out of memory");
            break;
        }
    }
    json_decref(answer);
    return status;
}

int cf_cmd_run(int argc, char **argv)
{
    bool recursive = false, include_imports = true, expand = true, watch = false;
    bool preserve_env = false, silent = false, secret_overriding = true, strict_refs = false;
    struct cf_expiry_check expiry = {0};
    struct cf_login_flags login = {0};
    struct cf_fallback fallback = {0};
    int64_t warn_ms = 0;
    const char *shell_command = NULL, *last_path = NULL, *last_lease = NULL, *lease_ttl = NULL;
    bool keep_lease = false;
    struct cf_opt_int interval = {0};
    const struct cf_opt opts[] = {
        {"path", CF_OPT_STRING, &last_path},
        {"recursive", CF_OPT_BOOL, &recursive},
        {"include-imports", CF_OPT_BOOL, &include_imports},
        {"expand", CF_OPT_BOOL, &expand},
        {"strict-references", CF_OPT_BOOL, &strict_refs},
        {"preserve-env", CF_OPT_BOOL, &preserve_env},
        {"command", CF_OPT_STRING, &shell_command},
        {"watch", CF_OPT_BOOL, &watch},
        {"watch-interval", CF_OPT_INT, &interval},
        {"silent", CF_OPT_BOOL, &silent},
        {"lease", CF_OPT_STRING, &last_lease},
        {"lease-ttl", CF_OPT_STRING, &lease_ttl},
        {"keep-lease", CF_OPT_BOOL, &keep_lease},
        {"secret-overriding", CF_OPT_BOOL,
         &secret_overriding}, /* Infisical's; no personal secrets */
        {"expiry-warning", CF_OPT_STRING, &expiry.warning},
        {"fail-on-expired", CF_OPT_BOOL, &expiry.fail_on_expired},
        CF_FALLBACK_OPTS(&fallback),
        CF_LOGIN_OPTS(&login),
    };
    const size_t nopts = CF_ARRAY_SIZE(opts);
    const struct cf_cli_spec spec = {usage, CF_CLI_PROJECT | CF_CLI_ENV, 0, SIZE_MAX, opts, nopts,
                                     &login};
    const char *paths[PATHS_MAX], *lease_specs[LEASES_MAX];
    size_t npaths = 0, nleases = 0;
    struct leases leases = {0};
    struct command cmd = {0};
    struct supervisor sv = {0};
    sigset_t old_mask;
    bool mask_changed = false;
    struct cf_cli cli;
    json_t *set = NULL;
    char **args = NULL;
    int status;

    (void)last_path;
    (void)last_lease;
    (void)secret_overriding;
    if (!cf_cli_begin(&cli, argc, argv, &spec, &status))
        goto out;
    status = collect_paths(&cli, argc, argv, opts, nopts, paths, &npaths);
    if (status == CF_EXIT_OK)
        status = collect_values(&cli, argc, argv, opts, nopts, "lease", lease_specs, LEASES_MAX,
                                &nleases);
    for (size_t i = 0; status == CF_EXIT_OK && i < nleases; i++)
        if (!lease_spec_valid(lease_specs[i]))
            status = cf_cli_usage_error(&cli, "--lease: '%s' is not [FOLDER/]NAME[:FIELD=VAR,...]",
                                        lease_specs[i]);
    if (status == CF_EXIT_OK && nleases && watch)
        status = cf_cli_usage_error(&cli, "--watch cannot be combined with --lease (a restart "
                                          "would need new leases)");
    if (status == CF_EXIT_OK && !nleases && (keep_lease || lease_ttl))
        status = cf_cli_usage_error(&cli, "--keep-lease and --lease-ttl need --lease");
    if (status == CF_EXIT_OK)
        status = cf_expiry_check_setup(&cli, &expiry, &warn_ms);
    if (status != CF_EXIT_OK)
        goto out;
    if (shell_command && cli.nargs > 0) {
        status = cf_cli_usage_error(&cli, "give either --command or a command after --, not both");
        goto out;
    }
    if (!shell_command && cli.nargs == 0) {
        status = cf_cli_usage_error(&cli, "no command to run (coffer run [options] -- COMMAND "
                                          "[ARGS...])");
        goto out;
    }
    if (shell_command && !*shell_command) {
        status = cf_cli_usage_error(&cli, "--command must not be empty");
        goto out;
    }
    if (interval.set && interval.value < WATCH_INTERVAL_MIN) {
        status = cf_cli_usage_error(&cli, "--watch-interval must be at least %d seconds",
                                    WATCH_INTERVAL_MIN);
        goto out;
    }
    if (interval.set && interval.value > 86400) {
        status = cf_cli_usage_error(&cli, "--watch-interval must be at most 86400 seconds");
        goto out;
    }
    if (!shell_command) {
        args = calloc(cli.nargs + 1, sizeof(char *));
        if (!args) {
            status = cf_cli_fail("out of memory");
            goto out;
        }
        memcpy(args, cli.args, cli.nargs * sizeof(char *));
    }
    /* Neither a core dump nor a same-user debugger may read the secrets held here; the command
     * gets the default back when it execs. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    const struct cf_fetch fetch = {cli.project_id, cli.env,         paths,  npaths,
                                   recursive,      include_imports, expand, strict_refs};
    status = cf_fallback_setup(&fallback, &cli, "run", &fetch, cf_login_flags_given(&login));
    if (status != CF_EXIT_OK)
        goto out;
    status = cf_fetch_secrets(&cli, &fetch, &set);
    status = cf_fallback_apply(&fallback, &cli, status, &set);
    if (status == CF_EXIT_OK)
        status = cf_secrets_expiry_warn(set, &expiry, warn_ms);
    for (size_t i = 0; status == CF_EXIT_OK && i < nleases; i++)
        status = create_lease(&cli, lease_specs[i], lease_ttl, set, &leases);
    if (status != CF_EXIT_OK)
        goto out;
    if (leases.n && !silent)
        fprintf(stderr, "coffer: %zu lease(s) created%s\n", leases.n,
                keep_lease ? " (kept: they end by themselves)"
                           : "; revoked when the command exits");
    if (keep_lease)
        leases.n = 0;

    cmd.args = args;
    cmd.shell_command = shell_command;
    sv.cli = &cli;
    sv.cmd = &cmd;
    sv.fetch = &fetch;
    sv.watch = watch;
    sv.interval_us = (interval.set ? interval.value : WATCH_INTERVAL_DEFAULT) * 1000000LL;
    sv.preserve_env = preserve_env;
    sv.silent = silent;
    cf_secrets_fingerprint(set, sv.fingerprint);

    /* Take the signals synchronously from now on; the command starts with the old mask. An
     * inherited SIG_IGN for SIGCHLD would make the kernel reap the child before we can. */
    signal(SIGCHLD, SIG_DFL);
    sigemptyset(&sv.waited);
    for (size_t i = 0; i < CF_ARRAY_SIZE(forwarded_signals); i++)
        sigaddset(&sv.waited, forwarded_signals[i]);
    sigaddset(&sv.waited, SIGCHLD);
    sigprocmask(SIG_BLOCK, &sv.waited, &old_mask);
    mask_changed = true;
    cmd.child_mask = old_mask;

    sv.child = launch(&cmd, set, preserve_env, silent, &status);
    /* The child has its copy; ours goes now. */
    json_decref(set);
    set = NULL;
    if (sv.child < 0)
        goto out;
    if (!watch && !leases.n)
        cf_cli_end(&cli); /* wipes the token: nothing more to ask the server */
    status = supervise(&sv);
out:
    /* The command has exited (by itself, or after the SIGINT or SIGTERM passed on to it), or never
     * started: its leases end now. */
    revoke_leases(&cli, &leases, silent);
    if (mask_changed)
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
    json_decref(set);
    free(args);
    cf_fallback_release(&fallback);
    cf_cli_end(&cli);
    return status;
}
