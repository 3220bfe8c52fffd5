/* Audit streams (docs/audit.md "Streams"): every event the audit log commits is also
 * delivered to the sinks the operator configured:
 * - a JSON-lines file, appended (O_APPEND, mode 0600) and flushed to disk once per committed batch;
 * - syslog, RFC 5424 messages (facility authpriv, severity info, the event as JSON) over a unix
 *   datagram socket (default /dev/log) or UDP to host:port;
 * - an HTTP endpoint (a SIEM's collector): batches of events POSTed as a JSON array by a thread of
 *   its own, retried with backoff, https except on loopback.
 * A sink that is down never blocks a request: the file and syslog sinks report a failure once and
 * go on; the HTTP sink keeps a bounded queue (the oldest events are dropped, counted and logged
 * when it overflows). The store is the record that fail-closed mode protects; streams are copies.
 * Not reentrant: the audit log calls the sinks from one thread at a time. */
#ifndef CF_STREAM_AUDIT_STREAM_H
#define CF_STREAM_AUDIT_STREAM_H

#include <jansson.h>

#include "store/store.h"
#include "util/err.h"

struct cf_audit_streams;

struct cf_audit_streams_config {
    const char *file_path;    /* NULL: no file sink */
    const char *syslog_addr;  /* "unix:/dev/log", "unix:PATH" or "udp:HOST:PORT"; NULL: none */
    const char *http_url;     /* NULL: no HTTP sink */
    const char *http_ca_file; /* PEM bundle for the endpoint's certificate; NULL: system CAs */
    const char *http_token;   /* sent as "Authorization: Bearer"; a credential: never logged */
    size_t http_queue_max;    /* events waiting for the endpoint at most; 0: 10000 */
    int64_t http_retry_ms;    /* first retry delay, doubled up to a minute; 0: 1000 */
};

/* Opens the configured sinks (all optional). CF_EINVAL naming the setting for a bad address or URL
 * (plain http to a host that is not loopback included), CF_EIO when the file cannot be opened. */
enum cf_rc cf_audit_streams_open(const struct cf_audit_streams_config *config,
                                 struct cf_audit_streams **out, struct cf_err *err);

/* Delivers what the HTTP sink still holds (for up to a few seconds), closes and frees. NULL: no-op.
 */
void cf_audit_streams_close(struct cf_audit_streams *streams);

/* The audit log's sink callbacks (core/auditlog.h): one event, the end of a committed batch, and
 * a signed head (after a checkpoint: a record {"type":"head", ...}, flushed at once). */
void cf_audit_streams_event(void *streams, const struct cf_audit_event *event);
void cf_audit_streams_batch_end(void *streams);
void cf_audit_streams_head(void *streams, const struct cf_audit_checkpoint *head);

/* Events the HTTP sink dropped because its queue overflowed, and the events it delivered. */
int64_t cf_audit_streams_http_dropped(struct cf_audit_streams *streams);

#endif
