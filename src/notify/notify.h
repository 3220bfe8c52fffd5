/* Expiry notifications (docs/notifications.md): the scan that turns expiry items
 * (core/expiry.h) into notices, one per item state, threshold and channel, claimed in the store so
 * that each exists once however often and wherever the scan runs; and their delivery to webhooks
 * (signed generic JSON, Slack, Microsoft Teams) and e-mail over SMTP, retried with backoff, every
 * attempt recorded on the notice (the delivery log). A server thread runs scan and delivery every
 * interval; `POST /api/v1/notifications/run` runs them at once. The JSON and one-line
 * forms of expiry items are core/render.h's. */
#ifndef CF_NOTIFY_NOTIFY_H
#define CF_NOTIFY_NOTIFY_H

#include <jansson.h>

#include "core/core.h"
#include "core/expiry.h"

#define CF_NOTIFY_DEFAULT_THRESHOLDS "30d,7d,1d"
#define CF_NOTIFY_THRESHOLDS_MAX 8

/* Checks and normalises a thresholds list ("30d, 7d,1d": durations, at most 8) into out
 * ("30d,7d,1d", largest first). CF_EVALIDATION naming the problem. */
enum cf_rc cf_notify_thresholds_parse(const char *text, char *out, size_t size, struct cf_err *err);

/* The SMTP server for e-mail channels. */
struct cf_smtp_config {
    const char *url;      /* smtp://host:port; NULL: e-mail channels cannot deliver */
    const char *from;     /* the sender address */
    const char *username; /* NULL: no authentication */
    const char *password; /* from COFFER_SMTP_PASSWORD only; a credential */
    const char *ca_file;  /* PEM bundle for the STARTTLS certificate; NULL: system CAs */
    bool starttls;        /* required (the default); off only for a loopback server */
};

struct cf_notifier_config {
    int64_t interval_ms;   /* between background passes; 0: no background thread */
    int64_t retry_base_ms; /* first retry delay, doubled after each failure; 0: 30 s */
    int max_attempts;      /* then the notice is failed; 0: 8 */
    struct cf_smtp_config smtp;
};

struct cf_notifier;

/* Checks the configuration (SMTP URL and rules) and starts the background thread when
 * interval_ms > 0. core is borrowed and must outlive the notifier; strings are copied. */
enum cf_rc cf_notifier_start(struct cf_core *core, const struct cf_notifier_config *config,
                             struct cf_notifier **out, struct cf_err *err);
void cf_notifier_stop(struct cf_notifier *notifier);

struct cf_notify_counts {
    int64_t items;     /* expiry items looked at */
    int64_t created;   /* notices created by this pass */
    int64_t delivered; /* delivered by this pass */
    int64_t retrying;  /* failed an attempt and wait for the next */
    int64_t failed;    /* gave up after the last attempt */
};

/* One scan and one delivery pass now (serialised with the background thread's). CF_ECONFLICT when
 * another server sharing the database holds the notification job (store job_lock "notifications").
 */
enum cf_rc cf_notifier_run(struct cf_notifier *notifier, struct cf_notify_counts *counts,
                           struct cf_err *err);

/* Sends one test message to the channel channel_id now (borrowed), as a notice is sent (signed for
 * a signed webhook), and stores nothing: no notice, no delivery log entry. Fills failure (size
 * bytes) with why the delivery failed, "" when the channel took it. CF_ENOTFOUND naming the channel
 * when there is none; store errors. Thread-safe; does not wait for a running pass. */
enum cf_rc cf_notifier_test(struct cf_notifier *notifier, const char *channel_id, char *failure,
                            size_t size, struct cf_err *err);

/* Checks a channel's type and target (https URL, or http to loopback; e-mail addresses) before it
 * is stored. CF_EVALIDATION naming the field. */
enum cf_rc cf_channel_check(const char *type, const char *target, struct cf_err *err);

#endif
