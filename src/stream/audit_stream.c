/* Audit streams: the file, syslog and HTTP sinks (see audit_stream.h). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/render.h"
#include "net/http.h"
#include "stream/audit_stream.h"
#include "util/file.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/wipemem.h"
#include "util/banned.h"

#define HTTP_BATCH_MAX 500
#define HTTP_TIMEOUT_S 10
#define RETRY_MAX_MS 60000
#define SYSLOG_PRI 86 /* facility authpriv (10) * 8 + severity info (6) */

/* ---- the streams ---- */

struct cf_audit_streams {
    int file_fd; /* -1: none */
    char file_path[1024];
    bool file_failing;

    int syslog_fd; /* -1: none */
    struct sockaddr_storage syslog_to;
    socklen_t syslog_to_len;
    char hostname[256];
    bool syslog_failing;

    /* HTTP: a queue of rendered events (JSON text) and a delivery thread. */
    char *http_url;
    char *http_ca_file;
    char *http_auth; /* "Authorization: Bearer ..." (wiped on close) */
    pthread_t http_thread;
    bool http_started, stopping;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    char **queue; /* ring of queue_max */
    size_t head, count, queue_max;
    int64_t retry_ms, dropped, delivered;
};

static enum cf_rc open_syslog(struct cf_audit_streams *s, const char *addr, struct cf_err *err)
{
    if (strncmp(addr, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&s->syslog_to;
        const char *path = addr + 5;
        if (!*path || strlen(path) >= sizeof(un->sun_path))
            return cf_err_set(err, CF_EINVAL, "--audit-syslog: bad unix socket path '%.200s'",
                              path);
        un->sun_family = AF_UNIX;
        cf_strlcpy(un->sun_path, path, sizeof(un->sun_path));
        s->syslog_to_len = sizeof(*un);
        s->syslog_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    } else if (strncmp(addr, "udp:", 4) == 0) {
        char host[256];
        const char *hp = addr + 4, *colon = strrchr(hp, ':');
        if (!colon || colon == hp || (size_t)(colon - hp) >= sizeof(host) || !colon[1])
            return cf_err_set(err, CF_EINVAL,
                              "--audit-syslog: expected udp:HOST:PORT, not '%.200s'", addr);
        memcpy(host, hp, (size_t)(colon - hp));
        host[colon - hp] = '\0';
        if (host[0] == '[' && host[strlen(host) - 1] == ']') { /* [::1] */
            memmove(host, host + 1, strlen(host));
            host[strlen(host) - 1] = '\0';
        }
        struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
        if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res)
            return cf_err_set(err, CF_EINVAL, "--audit-syslog: cannot resolve '%.200s'", addr);
        memcpy(&s->syslog_to, res->ai_addr, res->ai_addrlen);
        s->syslog_to_len = res->ai_addrlen;
        s->syslog_fd = socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        freeaddrinfo(res);
    } else {
        return cf_err_set(err, CF_EINVAL,
                          "--audit-syslog: expected unix:/dev/log, unix:PATH or udp:HOST:PORT, not "
                          "'%.200s'",
                          addr);
    }
    if (s->syslog_fd < 0)
        return cf_err_set(err, CF_EIO, "--audit-syslog: cannot open a socket: %s", strerror(errno));
    if (gethostname(s->hostname, sizeof(s->hostname)) != 0 || !s->hostname[0])
        cf_strlcpy(s->hostname, "-", sizeof(s->hostname));
    return CF_OK;
}

static enum cf_rc check_http_url(const char *url, struct cf_err *err)
{
    const char *why = cf_net_url_refused(url);
    char shown[CF_ERR_MSG_MAX];
    if (!why)
        return CF_OK;
    cf_net_url_redact(url, shown, sizeof(shown));
    return cf_err_set(err, CF_EINVAL, "--audit-http: '%.200s' %s", shown, why);
}

static void *http_main(void *arg);

enum cf_rc cf_audit_streams_open(const struct cf_audit_streams_config *config,
                                 struct cf_audit_streams **out, struct cf_err *err)
{
    struct cf_audit_streams *s = calloc(1, sizeof(*s));
    if (!s)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    s->file_fd = -1;
    s->syslog_fd = -1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    enum cf_rc rc = CF_OK;
    if (config->file_path) {
        cf_strlcpy(s->file_path, config->file_path, sizeof(s->file_path));
        s->file_fd = open(config->file_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (s->file_fd < 0)
            rc = cf_err_set(err, CF_EIO, "--audit-file: cannot open '%.200s': %s",
                            config->file_path, strerror(errno));
    }
    if (rc == CF_OK && config->syslog_addr)
        rc = open_syslog(s, config->syslog_addr, err);
    if (rc == CF_OK && config->http_url) {
        rc = check_http_url(config->http_url, err);
        s->queue_max = config->http_queue_max ? config->http_queue_max : 10000;
        s->retry_ms = config->http_retry_ms ? config->http_retry_ms : 1000;
        s->http_url = strdup(config->http_url);
        s->http_ca_file = config->http_ca_file ? strdup(config->http_ca_file) : NULL;
        s->queue = calloc(s->queue_max, sizeof(*s->queue));
        if (config->http_token) {
            size_t n = strlen("Authorization: Bearer ") + strlen(config->http_token) + 1;
            s->http_auth = malloc(n);
            if (s->http_auth)
                snprintf(s->http_auth, n, "Authorization: Bearer %s", config->http_token);
        }
        if (rc == CF_OK && (!s->http_url || !s->queue || (config->http_token && !s->http_auth) ||
                            (config->http_ca_file && !s->http_ca_file)))
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        if (rc == CF_OK && pthread_create(&s->http_thread, NULL, http_main, s) != 0)
            rc = cf_err_set(err, CF_EINTERNAL, "cannot start the audit HTTP stream thread");
        s->http_started = rc == CF_OK;
    }
    if (rc != CF_OK) {
        cf_audit_streams_close(s);
        return rc;
    }
    *out = s;
    return CF_OK;
}

void cf_audit_streams_close(struct cf_audit_streams *s)
{
    if (!s)
        return;
    if (s->http_started) {
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->http_thread, NULL);
        if (s->count)
            cf_log_error("audit stream: %zu event(s) not delivered to the HTTP endpoint at "
                         "shutdown",
                         s->count);
    }
    for (size_t i = 0; s->queue && i < s->count; i++)
        cf_json_free_text(s->queue[(s->head + i) % s->queue_max]);
    free(s->queue);
    if (s->http_auth) {
        sodium_memzero(s->http_auth, strlen(s->http_auth));
        free(s->http_auth);
    }
    free(s->http_url);
    free(s->http_ca_file);
    if (s->file_fd >= 0)
        close(s->file_fd);
    if (s->syslog_fd >= 0)
        close(s->syslog_fd);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static void to_file(struct cf_audit_streams *s, const char *text)
{
    size_t n = strlen(text);
    char *line = malloc(n + 2);
    bool ok = line != NULL;
    if (ok) {
        memcpy(line, text, n);
        line[n] = '\n';
        ok = cf_write_all(s->file_fd, line, n + 1); /* one write: lines never interleave */
        free(line);
    }
    if (!ok && !s->file_failing)
        cf_log_error("audit stream: cannot append to '%s': %s", s->file_path, strerror(errno));
    else if (ok && s->file_failing)
        cf_log_info("audit stream: appending to '%s' again", s->file_path);
    s->file_failing = !ok;
}

static void to_syslog(struct cf_audit_streams *s, int64_t time_us, const char *text)
{
    char stamp[CF_TIME_RFC3339_LEN];
    cf_time_format(time_us / 1000, stamp);
    size_t n = strlen(text) + strlen(s->hostname) + 128;
    char *msg = malloc(n);
    if (!msg)
        return;
    int len = snprintf(msg, n, "<%d>1 %s %s coffer %d audit - %s", SYSLOG_PRI, stamp, s->hostname,
                       (int)getpid(), text);
    bool ok = len > 0 && sendto(s->syslog_fd, msg, (size_t)len, MSG_DONTWAIT,
                                (const struct sockaddr *)&s->syslog_to, s->syslog_to_len) == len;
    if (!ok && !s->syslog_failing)
        cf_log_error("audit stream: cannot send to syslog: %s", strerror(errno));
    s->syslog_failing = !ok;
    free(msg);
}

static void to_http_queue(struct cf_audit_streams *s, char *text)
{
    pthread_mutex_lock(&s->lock);
    if (s->count == s->queue_max) {
        cf_json_free_text(s->queue[s->head]);
        s->head = (s->head + 1) % s->queue_max;
        s->count--;
        if (s->dropped++ % 1000 == 0)
            cf_log_error("audit stream: the HTTP endpoint is not keeping up; oldest events "
                         "dropped (%lld so far)",
                         (long long)s->dropped);
    }
    s->queue[(s->head + s->count) % s->queue_max] = text;
    s->count++;
    pthread_mutex_unlock(&s->lock);
}

/* Renders one record (json, taken) and hands it to every sink. */
static void deliver(struct cf_audit_streams *s, json_t *json, int64_t time_us, const char *what,
                    int64_t seq)
{
    char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (!text) {
        cf_log_error("audit stream: out of memory rendering the %s of event %lld", what,
                     (long long)seq);
        return;
    }
    if (s->file_fd >= 0)
        to_file(s, text);
    if (s->syslog_fd >= 0)
        to_syslog(s, time_us, text);
    if (s->queue)
        to_http_queue(s, text); /* the queue takes it */
    else
        cf_json_free_text(text);
}

void cf_audit_streams_event(void *streams, const struct cf_audit_event *event)
{
    deliver(streams, cf_audit_event_json(event), event->time_us, "record", event->seq);
}

void cf_audit_streams_head(void *streams, const struct cf_audit_checkpoint *head)
{
    deliver(streams, cf_audit_head_json(head), head->time_us, "head", head->event_seq);
    cf_audit_streams_batch_end(streams); /* on disk (and on its way) at once */
}

void cf_audit_streams_batch_end(void *streams)
{
    struct cf_audit_streams *s = streams;
    if (s->file_fd >= 0 && !s->file_failing && fdatasync(s->file_fd) != 0) {
        cf_log_error("audit stream: cannot flush '%s': %s", s->file_path, strerror(errno));
        s->file_failing = true;
    }
    if (s->queue) {
        pthread_mutex_lock(&s->lock);
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
    }
}

int64_t cf_audit_streams_http_dropped(struct cf_audit_streams *s)
{
    pthread_mutex_lock(&s->lock);
    int64_t n = s->dropped;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* ---- the HTTP sink's thread ---- */

/* POSTs body; true on a 2xx. why receives the cause otherwise. */
static bool post(struct cf_audit_streams *s, const char *body, size_t len, char *why, size_t size)
{
    const char *headers[] = {"Content-Type: application/json", s->http_auth, NULL};
    struct cf_http_request req = {
        .net = {.url = s->http_url,
                .ca_file = s->http_ca_file,
                .timeout_ms = HTTP_TIMEOUT_S * 1000},
        .body = body,
        .body_len = len,
        .headers = headers,
        .discard_body = true,
    };
    struct cf_http_response resp;
    struct cf_err err;
    bool ok = false;
    if (cf_http_perform(&req, &resp, &err) != CF_OK)
        snprintf(why, size, "%s", err.msg);
    else if (resp.status < 200 || resp.status >= 300)
        snprintf(why, size, "HTTP %ld", resp.status);
    else
        ok = true;
    cf_http_response_release(&resp);
    return ok;
}

static void *http_main(void *arg)
{
    struct cf_audit_streams *s = arg;
    int64_t delay = 0;
    bool failing = false;
    int64_t stop_deadline = 0;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (s->count == 0 && !s->stopping)
            pthread_cond_wait(&s->wake, &s->lock);
        if (s->count == 0 || (s->stopping && stop_deadline && cf_mono_us() > stop_deadline))
            break;
        if (s->stopping && !stop_deadline)
            stop_deadline = cf_mono_us() + 3 * 1000000; /* a few seconds to deliver the rest */
        size_t n = s->count < HTTP_BATCH_MAX ? s->count : HTTP_BATCH_MAX;
        /* A JSON array of the first n events (they stay queued until delivered). */
        size_t len = 2;
        for (size_t i = 0; i < n; i++)
            len += strlen(s->queue[(s->head + i) % s->queue_max]) + 1;
        char *body = malloc(len + 1);
        if (body) {
            size_t at = 0;
            body[at++] = '[';
            for (size_t i = 0; i < n; i++) {
                const char *text = s->queue[(s->head + i) % s->queue_max];
                size_t tn = strlen(text);
                if (i)
                    body[at++] = ',';
                memcpy(body + at, text, tn);
                at += tn;
            }
            body[at++] = ']';
            body[at] = '\0';
            len = at;
        }
        pthread_mutex_unlock(&s->lock);
        int64_t dropped_before = s->dropped;
        pthread_mutex_unlock(&s->lock);
        char why[256] = "out of memory";
        bool ok = body && post(s, body, len, why, sizeof(why));
        free(body);
        pthread_mutex_lock(&s->lock);
        if (ok) {
            /* Events dropped by an overflow meanwhile were the oldest: the ones just sent. */
            int64_t gone = s->dropped - dropped_before;
            size_t done = (int64_t)n > gone ? n - (size_t)gone : 0;
            for (size_t i = 0; i < done; i++)
                cf_json_free_text(s->queue[(s->head + i) % s->queue_max]);
            s->head = (s->head + done) % s->queue_max;
            s->count -= done;
            s->delivered += (int64_t)done;
            if (failing)
                cf_log_info("audit stream: the HTTP endpoint takes events again");
            failing = false;
            delay = 0;
            continue;
        }
        if (!failing)
            cf_log_error("audit stream: cannot deliver %zu event(s) to the HTTP endpoint: %s; "
                         "retrying",
                         n, why);
        failing = true;
        delay = delay ? (delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : delay * 2) : s->retry_ms;
        if (s->stopping)
            delay = delay < 500 ? delay : 500;
        struct timespec ts;
        cf_deadline_in(&ts, delay);
        while (!s->stopping && pthread_cond_timedwait(&s->wake, &s->lock, &ts) != ETIMEDOUT)
            ; /* new events do not cut the backoff short */
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}
