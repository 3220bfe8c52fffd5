/* The local stand-in tests/fakes/azure.py for the Azure provider tests: started per test on an
 * ephemeral port (fake_start, fake_stop as a suite's init and fini), driven through its /_fake/
 * control API (ctl), and its request log counted (logged). Included by one test file each. */
#ifndef CF_TESTS_AZURE_FAKE_H
#define CF_TESTS_AZURE_FAKE_H

#include <criterion/criterion.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "net/http.h"
#include "test_dir.h"

static pid_t fake_pid;
static int fake_port;
static char state_dir[64];
static char base[64];

static void fake_start(void)
{
    int pipefd[2];
    char script[512];
    snprintf(script, sizeof(script), "%s/tests/fakes/azure.py", CF_SOURCE_DIR);
    snprintf(state_dir, sizeof(state_dir), "/tmp/coffer-azure-XXXXXX");
    cr_assert_not_null(mkdtemp(state_dir));
    cr_assert_eq(pipe(pipefd), 0);
    fake_pid = fork();
    cr_assert_neq(fake_pid, -1);
    if (fake_pid == 0) {
        dup2(pipefd[1], STDOUT_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        execlp("python3", "python3", script, "--port", "0", "--state-dir", state_dir, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    char line[32] = "";
    size_t n = 0;
    while (n < sizeof(line) - 1) {
        ssize_t got = read(pipefd[0], line + n, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0 || line[n] == '\n')
            break;
        n++;
    }
    line[n] = '\0';
    close(pipefd[0]);
    fake_port = atoi(line);
    cr_assert_gt(fake_port, 0, "the fake did not print its port");
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", fake_port);
}

static void fake_stop(void)
{
    if (fake_pid > 0) {
        kill(fake_pid, SIGTERM);
        waitpid(fake_pid, NULL, 0);
    }
    char log[128];
    snprintf(log, sizeof(log), "%s/requests.jsonl", state_dir);
    unlink(log);
    test_dir_remove(state_dir);
}

/* A control API call; returns the parsed answer (decref it). */
static json_t *ctl(const char *method, const char *path, json_t *body_take)
{
    char url[256];
    char *body = body_take ? json_dumps(body_take, JSON_COMPACT) : NULL;
    const char *headers[] = {"Content-Type: application/json", NULL};
    snprintf(url, sizeof(url), "%s%s", base, path);
    struct cf_http_request req = {
        .net = {.url = url}, .method = method, .body = body, .headers = headers};
    struct cf_http_response resp = {0};
    struct cf_err err;
    cr_assert_eq(cf_http_perform(&req, &resp, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(resp.status, 200, "%s %s: %ld %s", method, path, resp.status, resp.body);
    json_t *out = json_loadb(resp.body, resp.len, 0, NULL);
    cf_http_response_release(&resp);
    free(body);
    json_decref(body_take);
    return out;
}

/* How many logged requests had method (NULL: any), a path starting with prefix and status (0:
 * any). */
static int logged(const char *method, const char *prefix, long status)
{
    json_t *log = ctl("GET", "/_fake/log", NULL);
    size_t i;
    json_t *e;
    int count = 0;
    json_array_foreach(log, i, e)
    {
        const char *m = json_string_value(json_object_get(e, "method"));
        const char *p = json_string_value(json_object_get(e, "path"));
        if ((!method || strcmp(m, method) == 0) && strncmp(p, prefix, strlen(prefix)) == 0 &&
            (!status || json_integer_value(json_object_get(e, "status")) == status))
            count++;
    }
    json_decref(log);
    return count;
}

#endif
