/* The benchmark's baseline: the smallest libmicrohttpd server that answers the same two requests as
 * Coffer does in bench/run.sh, with bytes read once from files and served from memory. It uses
 * Coffer's threading model (one epoll thread per core, MHD_USE_EPOLL_INTERNAL_THREAD with a thread
 * pool) and answers on the handler's second call as Coffer does, so the ratio of the two servers'
 * throughput is the cost of Coffer's own work: routing, authentication, the store, decryption and
 * JSON rendering.
 *
 * Usage: baseline PORT LIST_FILE ONE_FILE. GET /list answers LIST_FILE, GET /one answers ONE_FILE,
 * both as application/json; anything else is a 404 (405 for another method on a known path). The
 * program runs until SIGINT or SIGTERM. It serves benchmark fixtures only: the files hold test
 * values, not secrets.
 *
 * Built a second time as bench/floor (CF_BASELINE_FLOOR): the same server, linked with every
 * library a Coffer server on SQLite maps at its start and initialising the ones that do work at
 * start (libsodium, SQLite opening a database), and nothing of Coffer's own. Its resident
 * memory right after start is the floor under Coffer's idle RSS that no change to Coffer's code can
 * go below (bench/run.sh reports both). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>
#ifdef CF_BASELINE_FLOOR
#include <sodium.h>
#include <sqlite3.h>
#endif

#include "util/banned.h"

/* Fixtures larger than this are a mistake in the caller, not something to serve. */
#define CF_BASELINE_MAX_FILE (16L * 1024 * 1024)

/* The canned answers, created before the daemon starts and only read afterwards; libmicrohttpd lets
 * one response object be queued on many connections at once. */
struct cf_baseline {
    struct MHD_Response *list;
    struct MHD_Response *one;
    struct MHD_Response *not_found;
    struct MHD_Response *bad_method;
};

/* Any non-NULL marker will do: its only job is telling the first handler call from the second. */
static int cf_baseline_seen;

/* Reads the whole of PATH into a malloc'd buffer the caller frees with free(). Returns NULL with a
 * message on stderr when the file cannot be read or is larger than CF_BASELINE_MAX_FILE. */
static char *read_file(const char *path, size_t *len_out)
{
    char *data = NULL;
    FILE *file = fopen(path, "rb");
    if (!file) {
        fprintf(stderr, "baseline: cannot open '%s': %s\n", path, strerror(errno));
        goto out;
    }
    if (fseek(file, 0, SEEK_END) != 0) {
        fprintf(stderr, "baseline: cannot seek '%s': %s\n", path, strerror(errno));
        goto out;
    }
    long size = ftell(file);
    if (size < 0 || size > CF_BASELINE_MAX_FILE) {
        fprintf(stderr, "baseline: '%s' is unreadable or larger than %ld bytes\n", path,
                CF_BASELINE_MAX_FILE);
        goto out;
    }
    rewind(file);
    data = malloc((size_t)size + 1);
    if (!data) {
        fprintf(stderr, "baseline: out of memory reading '%s'\n", path);
        goto out;
    }
    if (fread(data, 1, (size_t)size, file) != (size_t)size) {
        fprintf(stderr, "baseline: short read on '%s'\n", path);
        free(data);
        data = NULL;
        goto out;
    }
    data[size] = '\0';
    *len_out = (size_t)size;
out:
    if (file)
        fclose(file);
    return data;
}

/* Builds a response that owns BODY (freed by libmicrohttpd with free()), or NULL on failure (BODY
 * is then freed here). */
static struct MHD_Response *json_response_take(char *body, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return NULL;
    }
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "application/json; charset=utf-8") != MHD_YES) {
        MHD_destroy_response(resp);
        return NULL;
    }
    return resp;
}

/* Builds a response for a constant string (never freed), or NULL on failure. */
static struct MHD_Response *json_response_static(const char *body)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
    if (resp && MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                        "application/json; charset=utf-8") != MHD_YES) {
        MHD_destroy_response(resp);
        return NULL;
    }
    return resp;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    const struct cf_baseline *baseline = cls;

    /* The first call only announces the headers; answering then would make libmicrohttpd close the
     * connection instead of keeping it alive. Any body is skipped. */
    if (*con_cls == NULL) {
        *con_cls = &cf_baseline_seen;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }

    struct MHD_Response *resp = baseline->not_found;
    unsigned status = MHD_HTTP_NOT_FOUND;
    if (strcmp(url, "/list") == 0 || strcmp(url, "/one") == 0) {
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
            resp = baseline->bad_method;
            status = MHD_HTTP_METHOD_NOT_ALLOWED;
        } else {
            resp = url[1] == 'l' ? baseline->list : baseline->one;
            status = MHD_HTTP_OK;
        }
    }
    return MHD_queue_response(conn, status, resp);
}

/* Parses a TCP port number; returns false unless TEXT is a whole decimal number in 1..65535. */
static bool parse_port(const char *text, uint16_t *port_out)
{
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < 1 || value > 65535)
        return false;
    *port_out = (uint16_t)value;
    return true;
}

static void baseline_release(struct cf_baseline *baseline)
{
    if (baseline->list)
        MHD_destroy_response(baseline->list);
    if (baseline->one)
        MHD_destroy_response(baseline->one);
    if (baseline->not_found)
        MHD_destroy_response(baseline->not_found);
    if (baseline->bad_method)
        MHD_destroy_response(baseline->bad_method);
}

int main(int argc, char **argv)
{
    int exit_code = 1;
    struct cf_baseline baseline = {0};
    struct MHD_Daemon *daemon = NULL;
#ifdef CF_BASELINE_FLOOR
    char db_path[4096] = "";
    sqlite3 *db = NULL;
#endif

    if (argc != 4) {
        fprintf(stderr, "usage: baseline PORT LIST_FILE ONE_FILE\n");
        return 2;
    }
    uint16_t port = 0;
    if (!parse_port(argv[1], &port)) {
        fprintf(stderr, "baseline: invalid port '%s'\n", argv[1]);
        return 2;
    }

    size_t len = 0;
    char *body = read_file(argv[2], &len);
    if (!body || !(baseline.list = json_response_take(body, len)))
        goto out;
    body = read_file(argv[3], &len);
    if (!body || !(baseline.one = json_response_take(body, len)))
        goto out;
    baseline.not_found = json_response_static("{\"statusCode\":404,\"error\":\"NotFound\"}");
    baseline.bad_method =
        json_response_static("{\"statusCode\":405,\"error\":\"MethodNotAllowed\"}");
    if (!baseline.not_found || !baseline.bad_method) {
        fprintf(stderr, "baseline: cannot create responses\n");
        goto out;
    }

    /* Block the stop signals before the pool threads start so that they inherit the mask and only
     * sigwait() below sees SIGINT and SIGTERM. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &stop_signals, NULL) != 0) {
        fprintf(stderr, "baseline: cannot block signals\n");
        goto out;
    }

#ifdef CF_BASELINE_FLOOR
    /* What the libraries themselves do at a Coffer server's start: libsodium's initialisation,
     * and SQLite opening a database and reading its schema (a file of this run, removed again: its
     * path is LIST_FILE's with ".floor.db" added). */
    snprintf(db_path, sizeof(db_path), "%s.floor.db", argv[2]);
    if (sodium_init() < 0 || sqlite3_open(db_path, &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)",
                     NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "floor: cannot initialise the libraries\n");
        goto out;
    }
#endif
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        cores = 1;
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    daemon = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG, port,
                              NULL, NULL, on_request, &baseline, MHD_OPTION_SOCK_ADDR, &addr,
                              MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cores,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!daemon) {
        fprintf(stderr, "baseline: cannot listen on 127.0.0.1:%u\n", (unsigned)port);
        goto out;
    }
    printf("baseline listening on http://127.0.0.1:%u (%ld threads)\n", (unsigned)port, cores);
    fflush(stdout);

    int signal_number = 0;
    if (sigwait(&stop_signals, &signal_number) != 0) {
        fprintf(stderr, "baseline: sigwait failed\n");
        goto out;
    }
    exit_code = 0;
out:
#ifdef CF_BASELINE_FLOOR
    sqlite3_close(db);
    if (db_path[0])
        unlink(db_path);
#endif
    if (daemon)
        MHD_stop_daemon(daemon);
    baseline_release(&baseline);
    return exit_code;
}
