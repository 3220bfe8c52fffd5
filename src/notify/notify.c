/* Expiry notifications: rendering of items, the scan, and delivery (see notify.h). */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <sodium.h>

#include "core/render.h"
#include "crypto/serverkey.h"
#include "crypto/sign.h"
#include "net/http.h"
#include "notify/notify.h"
#include "util/id.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/wipemem.h"
#include "util/banned.h"

#define DUE_BATCH 100
#define HTTP_TIMEOUT_S 10

/* ---- thresholds ---- */

struct threshold {
    char label[16];
    int64_t seconds;
};

static int by_seconds_desc(const void *a, const void *b)
{
    const struct threshold *x = a, *y = b;
    return x->seconds < y->seconds ? 1 : (x->seconds > y->seconds ? -1 : 0);
}

/* Adds the duration word (len bytes) to t; false when it is not one, one too many or given twice
 * (err filled). */
static bool add_threshold(struct threshold t[CF_NOTIFY_THRESHOLDS_MAX], int *n, const char *word_p,
                          size_t len, struct cf_err *err)
{
    char word[16];
    int64_t seconds = 0;
    struct cf_err ignored;
    if (*n == CF_NOTIFY_THRESHOLDS_MAX || len >= sizeof(word)) {
        cf_err_field(err, CF_EVALIDATION, "thresholds",
                     "thresholds: at most %d durations such as 30d, 7d, 1d",
                     CF_NOTIFY_THRESHOLDS_MAX);
        return false;
    }
    memcpy(word, word_p, len);
    word[len] = '\0';
    if (cf_duration_parse(word, &seconds, &ignored) != CF_OK) {
        cf_err_field(err, CF_EVALIDATION, "thresholds",
                     "thresholds: '%s' is not a duration such as 30d, 7d or 12h", word);
        return false;
    }
    for (int i = 0; i < *n; i++)
        if (t[i].seconds == seconds) {
            cf_err_field(err, CF_EVALIDATION, "thresholds", "thresholds: '%s' is given twice",
                         word);
            return false;
        }
    cf_strlcpy(t[*n].label, word, sizeof(t[*n].label));
    t[(*n)++].seconds = seconds;
    return true;
}

/* Parses "30d,7d,1d" into t (largest first); the number of thresholds, or -1 (err filled). Empty
 * items are skipped, and spaces separate durations as commas do ("30d 7d"); a tab is part of a
 * word. */
static int thresholds_of(const char *text, struct threshold t[CF_NOTIFY_THRESHOLDS_MAX],
                         struct cf_err *err)
{
    int n = 0;
    struct cf_list_iter items;
    struct cf_str item;
    cf_list_init(&items, text);
    while (cf_list_next_raw(&items, &item)) {
        for (;;) {
            while (item.n && item.p[0] == ' ')
                item.p++, item.n--;
            if (!item.n)
                break;
            size_t len = 0;
            while (len < item.n && item.p[len] != ' ')
                len++;
            if (!add_threshold(t, &n, item.p, len, err))
                return -1;
            item.p += len;
            item.n -= len;
        }
    }
    if (n == 0) {
        cf_err_field(err, CF_EVALIDATION, "thresholds", "thresholds: at least one duration");
        return -1;
    }
    qsort(t, (size_t)n, sizeof(*t), by_seconds_desc);
    return n;
}

enum cf_rc cf_notify_thresholds_parse(const char *text, char *out, size_t size, struct cf_err *err)
{
    struct threshold t[CF_NOTIFY_THRESHOLDS_MAX];
    int n = thresholds_of(text, t, err);
    if (n < 0)
        return err->rc;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t used = strlen(out);
        snprintf(out + used, size - used, "%s%s", i ? "," : "", t[i].label);
    }
    return CF_OK;
}

/* The threshold an item has reached: "expired" (or "due" for a reminder) once past, else the
 * smallest threshold its time left is within; NULL when none yet. */
static const char *reached(const struct cf_expiry_item *item, int64_t now,
                           const struct threshold *t, int n)
{
    if (item->kind == CF_EXPIRY_REMINDER)
        return item->due_at <= now ? "due" : NULL;
    if (item->due_at <= now)
        return "expired";
    const char *label = NULL;
    for (int i = 0; i < n; i++)
        if (item->due_at - now <= t[i].seconds * 1000)
            label = t[i].label; /* t is largest first: the last match is the most urgent */
    return label;
}

/* ---- channels ---- */

/* The next item of a recipient list, trimmed of spaces only: a tab left at an edge makes the
 * address invalid. */
static bool next_recipient(struct cf_list_iter *it, struct cf_str *a)
{
    if (!cf_list_next_raw(it, a))
        return false;
    while (a->n && a->p[0] == ' ')
        a->p++, a->n--;
    while (a->n && a->p[a->n - 1] == ' ')
        a->n--;
    return true;
}

static bool valid_email(const char *a, size_t n)
{
    const char *at = memchr(a, '@', n);
    if (!at || at == a || at == a + n - 1)
        return false;
    for (size_t i = 0; i < n; i++)
        if (isspace((unsigned char)a[i]) || a[i] == '<' || a[i] == '>' || a[i] == '\r' ||
            a[i] == '\n' || a[i] == ',')
            return false;
    return true;
}

/* https, or http to a loopback host (the rule JWKS fetching follows). */
static enum cf_rc check_url(const char *url, struct cf_err *err)
{
    const char *why = cf_net_url_refused(url);
    char shown[CF_ERR_MSG_MAX];
    if (!why)
        return CF_OK;
    cf_net_url_redact(url, shown, sizeof(shown));
    return cf_err_field(err, CF_EVALIDATION, "url", "url: '%.200s' %s", shown, why);
}

enum cf_rc cf_channel_check(const char *type, const char *target, struct cf_err *err)
{
    if (strcmp(type, "email") == 0) {
        struct cf_list_iter it;
        struct cf_str a;
        int n = 0;
        cf_list_init(&it, target);
        while (next_recipient(&it, &a)) {
            if (!valid_email(a.p, a.n))
                return cf_err_field(err, CF_EVALIDATION, "recipients",
                                    "recipients: '%.*s' is not an e-mail address",
                                    (int)(a.n > 100 ? 100 : a.n), a.p);
            n++;
        }
        return n ? CF_OK
                 : cf_err_field(err, CF_EVALIDATION, "recipients", "recipients: at least one");
    }
    if (strcmp(type, "webhook") != 0 && strcmp(type, "slack") != 0 && strcmp(type, "teams") != 0)
        return cf_err_field(err, CF_EVALIDATION, "type",
                            "type: webhook, slack, teams or email, not '%.32s'", type);
    if (!*target)
        return cf_err_field(err, CF_EVALIDATION, "url", "url: required");
    return check_url(target, err);
}

/* ---- delivery ---- */

struct cf_notifier {
    struct cf_core *core;
    struct cf_notifier_config config;
    char *smtp_url, *smtp_from, *smtp_user, *smtp_password, *smtp_ca;
    pthread_mutex_t pass; /* one scan + delivery pass at a time */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool started, stopping;
};

/* A notice about a secret sync (threshold "sync-failed", see core/syncs.c) rather than an expiry.
 */
static bool is_sync(const struct cf_notice *n)
{
    return strncmp(n->threshold, "sync-", 5) == 0;
}

/* A notice about a secret rotation (threshold "rotation-failed", see core/rotations.c). */
static bool is_rotation(const struct cf_notice *n)
{
    return strncmp(n->threshold, "rotation-", 9) == 0;
}

/* A notice about a dynamic secret's lease whose revocation keeps failing (threshold
 * "lease-revocation-failed", see core/leases.c). */
static bool is_lease(const struct cf_notice *n)
{
    return strncmp(n->threshold, "lease-", 6) == 0;
}

/* A notice about a change request (threshold "change-<event>": opened, approved, rejected, merged,
 * closed; see core/approvals.c). */
static bool is_approval(const struct cf_notice *n)
{
    return strncmp(n->threshold, "change-", 7) == 0;
}

/* A notice about an access request (thresholds "access-request", "access-granted",
 * "access-denied", "access-revoked", see core/access.c). */
static bool is_access(const struct cf_notice *n)
{
    return strncmp(n->threshold, "access-", 7) == 0;
}

/* A notice that a secret's value was found leaked (threshold "secret-leaked", see core/leaks.c). */
static bool is_leak(const struct cf_notice *n)
{
    return strcmp(n->threshold, "secret-leaked") == 0;
}

/* A test message a person asked for (cf_notifier_test), never stored. */
static bool is_test(const struct cf_notice *n)
{
    return strcmp(n->threshold, "test") == 0;
}

/* What a notice is about, for a title or a mail's subject. */
static const char *kind_title(const struct cf_notice *n)
{
    return is_sync(n)                             ? "secret sync failed"
           : is_rotation(n)                       ? "secret rotation failed"
           : is_lease(n)                          ? "lease revocation failed"
           : is_approval(n)                       ? "change request"
           : is_access(n)                         ? "access request"
           : is_leak(n)                           ? "secret leaked"
           : is_test(n)                           ? "test message"
           : strcmp(n->threshold, "expired") == 0 ? "expired"
           : strcmp(n->threshold, "due") == 0     ? "rotation due"
                                                  : "expiring soon";
}

/* The body a channel of this type gets. */
static char *render_body(const struct cf_channel *ch, const struct cf_notice *n)
{
    json_t *body = NULL;
    char title[128];
    snprintf(title, sizeof(title), "Coffer: %s", kind_title(n));
    if (strcmp(ch->type, "slack") == 0) {
        body = json_pack("{s:s, s:[{s:s, s:{s:s, s:s}}]}", "text", n->message, "blocks", "type",
                         "section", "text", "type", "mrkdwn", "text", n->message);
    } else if (strcmp(ch->type, "teams") == 0) {
        body = json_pack(
            "{s:s, s:[{s:s, s:n, s:{s:s, s:s, s:s, s:[{s:s, s:s, s:s, s:s}, {s:s, s:s, s:b}]}}]}",
            "type", "message", "attachments", "contentType",
            "application/vnd.microsoft.card.adaptive", "contentUrl", "content", "$schema",
            "http://adaptivecards.io/schemas/adaptive-card.json", "type", "AdaptiveCard", "version",
            "1.4", "body", "type", "TextBlock", "text", title, "weight", "Bolder", "size", "Medium",
            "type", "TextBlock", "text", n->message, "wrap", 1);
    } else {
        json_t *item = json_loads(n->item, 0, NULL);
        body =
            json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "event",
                      is_sync(n)       ? "coffer.sync"
                      : is_rotation(n) ? "coffer.rotation"
                      : is_lease(n)    ? "coffer.lease"
                      : is_approval(n) ? "coffer.approval"
                      : is_access(n)   ? "coffer.access"
                      : is_leak(n)     ? "coffer.leak"
                      : is_test(n)     ? "coffer.test"
                                       : "coffer.expiry",
                      "deliveryId", n->id, "threshold", n->threshold, "message", n->message, "item",
                      item ? item : json_null(), "createdAt", cf_time_json(n->created_at));
    }
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    return text;
}

/* POSTs a webhook-type notice; NULL on success, else why (static or in why_buf). */
static const char *post_webhook(struct cf_notifier *nf, const struct cf_channel *ch,
                                const struct cf_notice *n, char *why, size_t why_size)
{
    char *body = render_body(ch, n);
    if (!body)
        return "out of memory";
    char delivery[256], event[128],
        signature[sizeof(CF_WEBHOOK_SIGNATURE_HEADER ": ") + CF_WEBHOOK_SIGNATURE_MAX] = "";
    snprintf(delivery, sizeof(delivery), "X-Coffer-Delivery: %s", n->id);
    if (is_sync(n))
        snprintf(event, sizeof(event), "X-Coffer-Event: sync.failed");
    else if (is_rotation(n))
        snprintf(event, sizeof(event), "X-Coffer-Event: rotation.failed");
    else if (is_lease(n))
        snprintf(event, sizeof(event), "X-Coffer-Event: lease.revocation-failed");
    else if (is_approval(n))
        snprintf(event, sizeof(event), "X-Coffer-Event: approval.%s", n->threshold + 7);
    else if (is_access(n)) /* access.request, access.granted, ... */
        snprintf(event, sizeof(event), "X-Coffer-Event: access.%s", n->threshold + 7);
    else if (is_leak(n))
        snprintf(event, sizeof(event), "X-Coffer-Event: secret.leaked");
    else if (is_test(n))
        snprintf(event, sizeof(event), "X-Coffer-Event: test");
    else
        snprintf(event, sizeof(event), "X-Coffer-Event: expiry.%s", n->threshold);
    const char *failure = NULL;
    if (ch->signing_secret[0] && strcmp(ch->type, "webhook") == 0) {
        /* crypto/sign.h: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>"> */
        struct cf_buf secret;
        struct cf_err err;
        char context[CF_CREDENTIAL_CONTEXT_MAX];
        cf_buf_init(&secret, 0);
        snprintf(context, sizeof(context), "channel:%s", ch->id);
        if (cf_credential_open(nf->core->store, nf->core->keyring, context, ch->signing_secret,
                               &secret, &err) != CF_OK) {
            failure = "the channel's signing secret does not open";
        } else {
            char value[CF_WEBHOOK_SIGNATURE_MAX];
            if (cf_webhook_signature(secret.data, secret.len, cf_now_ms() / 1000, body,
                                     strlen(body), value, sizeof(value), &err) != CF_OK)
                failure = "the channel's signing secret is empty";
            else
                snprintf(signature, sizeof(signature), CF_WEBHOOK_SIGNATURE_HEADER ": %s", value);
        }
        cf_buf_release_wipe(&secret);
    }
    if (!failure) {
        const char *headers[] = {"Content-Type: application/json", delivery, event,
                                 signature[0] ? signature : NULL, NULL};
        struct cf_http_request req = {
            .net = {.url = ch->target, .timeout_ms = HTTP_TIMEOUT_S * 1000},
            .body = body,
            .headers = headers,
            .discard_body = true,
        };
        struct cf_http_response resp;
        struct cf_err err;
        if (cf_http_perform(&req, &resp, &err) != CF_OK) {
            snprintf(why, why_size, "%s", err.msg);
            failure = why;
        } else if (resp.status < 200 || resp.status >= 300) {
            snprintf(why, why_size, "HTTP %ld", resp.status);
            failure = why;
        }
        cf_http_response_release(&resp);
    }
    cf_json_free_text(body);
    return failure;
}

struct mail {
    const char *text;
    size_t len, at;
};

static size_t mail_read(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct mail *m = userdata;
    size_t room = size * nmemb, left = m->len - m->at;
    size_t n = left < room ? left : room;
    memcpy(ptr, m->text + m->at, n);
    m->at += n;
    return n;
}

/* Sends an e-mail notice over SMTP; NULL on success, else why. */
static const char *send_mail(struct cf_notifier *nf, const struct cf_channel *ch,
                             const struct cf_notice *n, char *why, size_t why_size)
{
    if (!nf->smtp_url)
        return "no SMTP server is configured (coffer server --smtp-url)";
    char date[64], subject[160], message_id[128];
    time_t now = (time_t)(cf_now_ms() / 1000);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    snprintf(subject, sizeof(subject), "[Coffer] %s: %.100s", kind_title(n), n->message);
    snprintf(message_id, sizeof(message_id), "<%s@coffer>", n->id);
    size_t size = strlen(n->message) + strlen(ch->target) + 2048;
    char *text = malloc(size);
    if (!text)
        return "out of memory";
    int len = snprintf(
        text, size,
        "Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: %s\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        "%s\r\n\r\nThreshold: %s\r\nDelivery: %s\r\n\r\n"
        "%s\r\n",
        date, nf->smtp_from, ch->target, subject, message_id, n->message, n->threshold, n->id,
        is_sync(n)       ? "Run `coffer syncs status` with the sync's id for its state."
        : is_rotation(n) ? "Run `coffer rotations status` with the rotation's id for its state."
        : is_lease(n)    ? "Run `coffer leases list --all` for the leases still live."
        : is_approval(n) ? "Run `coffer approvals show` with the request's id to review it."
        : is_leak(n)     ? "Run `coffer inventory --leaked` for every secret marked leaked."
                         : "Run `coffer expiring` to see everything that is due.");
    struct mail m = {text, len > 0 ? (size_t)len : 0, 0};
    struct cf_err curl_err;
    cf_err_clear(&curl_err);
    CURL *curl = cf_net_curl_new(&curl_err);
    struct curl_slist *rcpt = NULL;
    const char *failure = NULL;
    char addr[320];
    struct cf_list_iter it;
    struct cf_str a;
    cf_list_init(&it, ch->target);
    while (next_recipient(&it, &a))
        if (a.n && a.n < sizeof(addr) - 2) {
            snprintf(addr, sizeof(addr), "<%.*s>", (int)a.n, a.p);
            rcpt = curl_slist_append(rcpt, addr);
        }
    if (!curl) {
        snprintf(why, why_size, "SMTP: %.240s", curl_err.msg);
        failure = why;
    } else if (!rcpt) {
        failure = "out of memory";
    } else {
        struct cf_net_options net = {.url = nf->smtp_url,
                                     .protocols = "smtp,smtps",
                                     .ca_file = nf->smtp_ca,
                                     .timeout_ms = HTTP_TIMEOUT_S * 1000};
        struct cf_net_guard guard;
        struct cf_err err;
        snprintf(addr, sizeof(addr), "<%s>", nf->smtp_from);
        if (cf_net_curl_setup(curl, &net, &guard, &err) != CF_OK) {
            snprintf(why, why_size, "SMTP: %.240s", err.msg);
            failure = why;
        } else {
            curl_easy_setopt(curl, CURLOPT_MAIL_FROM, addr);
            curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
            curl_easy_setopt(curl, CURLOPT_READFUNCTION, mail_read);
            curl_easy_setopt(curl, CURLOPT_READDATA, &m);
            curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(curl, CURLOPT_USE_SSL,
                             (long)(nf->config.smtp.starttls ? CURLUSESSL_ALL : CURLUSESSL_NONE));
            if (nf->smtp_user) {
                curl_easy_setopt(curl, CURLOPT_USERNAME, nf->smtp_user);
                curl_easy_setopt(curl, CURLOPT_PASSWORD,
                                 nf->smtp_password ? nf->smtp_password : "");
            }
            CURLcode cc = curl_easy_perform(curl);
            if (cc != CURLE_OK) {
                char reason[CF_ERR_MSG_MAX];
                cf_net_curl_error(cc, &guard, reason, sizeof(reason));
                snprintf(why, why_size, "SMTP: %.240s", reason);
                failure = why;
            }
        }
    }
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(curl);
    free(text);
    return failure;
}

/* Delivers one due notice and records the attempt. */
static void deliver(struct cf_notifier *nf, struct cf_notice *n, const struct cf_channel_list *chs,
                    struct cf_notify_counts *counts)
{
    const struct cf_channel *ch = NULL;
    for (size_t i = 0; i < chs->n && !ch; i++)
        if (strcmp(chs->items[i].id, n->channel_id) == 0)
            ch = &chs->items[i];
    char why[256] = "";
    const char *failure = !ch ? "the channel no longer exists"
                          : strcmp(ch->type, "email") == 0
                              ? send_mail(nf, ch, n, why, sizeof(why))
                              : post_webhook(nf, ch, n, why, sizeof(why));
    int64_t now = cf_now_ms();
    n->attempts++;
    if (!failure) {
        cf_strlcpy(n->state, "delivered", sizeof(n->state));
        n->last_error[0] = '\0';
        n->delivered_at = now;
        counts->delivered++;
    } else {
        cf_strlcpy(n->last_error, failure, sizeof(n->last_error));
        if (n->attempts >= nf->config.max_attempts) {
            cf_strlcpy(n->state, "failed", sizeof(n->state));
            counts->failed++;
            cf_log_warn("notification %s failed after %lld attempts: %s", n->id,
                        (long long)n->attempts, failure);
        } else {
            int64_t delay = nf->config.retry_base_ms;
            for (int64_t i = 1; i < n->attempts && delay < 86400000; i++)
                delay *= 2;
            n->next_attempt_at = now + delay;
            counts->retrying++;
        }
    }
    struct cf_err err;
    if (cf_store_notice_update(nf->core->store, n, &err) != CF_OK)
        cf_log_error("notification %s: cannot record the attempt: %s", n->id, err.msg);
}

/* ---- the pass ---- */

static enum cf_rc scan(struct cf_notifier *nf, const struct cf_channel_list *chs,
                       struct cf_notify_counts *counts, struct cf_err *err)
{
    struct cf_store *st = nf->core->store;
    struct cf_principal admin = {.kind = CF_PRINCIPAL_ADMIN};
    int64_t now = cf_now_ms();
    struct threshold defaults[CF_NOTIFY_THRESHOLDS_MAX];
    int n_defaults = thresholds_of(CF_NOTIFY_DEFAULT_THRESHOLDS, defaults, err);
    /* The widest window any project may ask for is looked at; each item then uses its project's. */
    struct cf_expiry_query q = {.now = now,
                                .within_ms = 3650LL * 86400 * 1000,
                                .secrets = true,
                                .reminders = true,
                                .client_secrets = true,
                                .connections = true};
    struct cf_expiry_list items = {0};
    enum cf_rc rc = chs->n ? cf_expiry_list(nf->core, &admin, &q, &items, err) : CF_OK;
    char project[CF_UUID_LEN] = "";
    struct threshold t[CF_NOTIFY_THRESHOLDS_MAX];
    int n_t = n_defaults;
    memcpy(t, defaults, sizeof(t));
    for (size_t i = 0; rc == CF_OK && i < items.n; i++) {
        const struct cf_expiry_item *item = &items.items[i];
        counts->items++;
        if (strcmp(project, item->project_id) != 0) { /* this project's thresholds */
            char text[256];
            struct cf_err ignored;
            cf_strlcpy(project, item->project_id, sizeof(project));
            n_t = n_defaults;
            memcpy(t, defaults, sizeof(t));
            if (item->project_id[0] &&
                cf_store_notify_thresholds_get(st, item->project_id, text, sizeof(text),
                                               &ignored) == CF_OK) {
                int got = thresholds_of(text, t, &ignored);
                if (got > 0)
                    n_t = got;
                else
                    memcpy(t, defaults, sizeof(t));
            }
        }
        const char *threshold = reached(item, now, t, n_t);
        if (!threshold)
            continue;
        struct cf_notice *notice = calloc(1, sizeof(*notice));
        json_t *json = cf_expiry_item_json(item);
        char *item_text = json ? json_dumps(json, JSON_COMPACT) : NULL;
        json_decref(json);
        if (!notice || !item_text) {
            free(notice);
            cf_json_free_text(item_text);
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            break;
        }
        cf_expiry_item_key(item, now, notice->item_key, sizeof(notice->item_key));
        cf_strlcpy(notice->threshold, threshold, sizeof(notice->threshold));
        cf_strlcpy(notice->project_id, item->project_id, sizeof(notice->project_id));
        cf_expiry_item_describe(item, notice->message, sizeof(notice->message));
        cf_strlcpy(notice->item, item_text, sizeof(notice->item));
        cf_json_free_text(item_text);
        notice->created_at = now;
        for (size_t c = 0; rc == CF_OK && c < chs->n; c++) {
            const struct cf_channel *ch = &chs->items[c];
            /* A project's channels hear about its secrets; server-wide ones about everything. */
            if (ch->project_id[0] && strcmp(ch->project_id, item->project_id) != 0)
                continue;
            bool created = false;
            cf_uuid_new(notice->id);
            cf_strlcpy(notice->channel_id, ch->id, sizeof(notice->channel_id));
            rc = cf_store_notice_claim(st, notice, &created, err);
            if (created)
                counts->created++;
        }
        free(notice);
    }
    cf_expiry_list_release(&items);
    return rc;
}

enum cf_rc cf_notifier_run(struct cf_notifier *nf, struct cf_notify_counts *counts,
                           struct cf_err *err)
{
    struct cf_store *st = nf->core->store;
    struct cf_channel_list chs = {0};
    struct cf_notice_list due = {0};
    memset(counts, 0, sizeof(*counts));
    pthread_mutex_lock(&nf->pass);
    /* One server at a time delivers (several may share a PostgreSQL store): the one holding the
     * job's lock; the notices themselves are claimed once in the store whoever scans. */
    bool held = false;
    enum cf_rc rc = cf_store_job_lock(st, "notifications", &held, err);
    if (rc == CF_OK && !held)
        rc = cf_err_set(err, CF_ECONFLICT,
                        "the notification job is running on another coffer server sharing this "
                        "database");
    if (rc == CF_OK)
        rc = cf_store_channel_list(st, NULL, &chs, err);
    if (rc == CF_OK)
        rc = scan(nf, &chs, counts, err);
    if (rc == CF_OK)
        rc = cf_store_notice_due(st, cf_now_ms(), DUE_BATCH, &due, err);
    for (size_t i = 0; rc == CF_OK && i < due.n; i++)
        deliver(nf, &due.items[i], &chs, counts);
    cf_notice_list_release(&due);
    cf_channel_list_release(&chs);
    pthread_mutex_unlock(&nf->pass);
    return rc;
}

enum cf_rc cf_notifier_test(struct cf_notifier *nf, const char *channel_id, char *failure,
                            size_t size, struct cf_err *err)
{
    struct cf_channel_list chs = {0};
    struct cf_notice *n = NULL;
    const struct cf_channel *ch = NULL;
    failure[0] = '\0';
    enum cf_rc rc = cf_store_channel_list(nf->core->store, NULL, &chs, err);
    for (size_t i = 0; rc == CF_OK && i < chs.n && !ch; i++)
        if (strcmp(chs.items[i].id, channel_id) == 0)
            ch = &chs.items[i];
    if (rc == CF_OK && !ch)
        rc = cf_err_set(err, CF_ENOTFOUND, "notification channel '%.64s' not found", channel_id);
    if (rc == CF_OK && !(n = calloc(1, sizeof(*n))))
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    if (rc != CF_OK)
        goto out;
    /* Shaped as a notice, so that the receiver sees exactly what real notices look like. */
    cf_uuid_new(n->id);
    cf_strlcpy(n->channel_id, ch->id, sizeof(n->channel_id));
    cf_strlcpy(n->threshold, "test", sizeof(n->threshold));
    cf_strlcpy(n->project_id, ch->project_id, sizeof(n->project_id));
    snprintf(n->message, sizeof(n->message),
             "test message from Coffer to channel \"%.128s\": notices reach this channel",
             ch->name[0] ? ch->name : ch->id);
    snprintf(n->item, sizeof(n->item), "{\"kind\": \"test\", \"channelId\": \"%s\"}", ch->id);
    n->created_at = cf_now_ms();
    char why[256] = "";
    const char *result = strcmp(ch->type, "email") == 0 ? send_mail(nf, ch, n, why, sizeof(why))
                                                        : post_webhook(nf, ch, n, why, sizeof(why));
    if (result)
        snprintf(failure, size, "%s", result);
out:
    free(n);
    cf_channel_list_release(&chs);
    return rc;
}

static void *notifier_main(void *arg)
{
    struct cf_notifier *nf = arg;
    pthread_mutex_lock(&nf->lock);
    while (!nf->stopping) {
        struct timespec ts;
        cf_deadline_in(&ts, nf->config.interval_ms);
        pthread_cond_timedwait(&nf->wake, &nf->lock, &ts);
        if (nf->stopping)
            break;
        pthread_mutex_unlock(&nf->lock);
        struct cf_notify_counts counts;
        struct cf_err err;
        cf_err_clear(&err);
        enum cf_rc rc = cf_notifier_run(nf, &counts, &err);
        if (rc == CF_ECONFLICT)
            cf_log_debug("notifications: %s", err.msg);
        else if (rc != CF_OK)
            cf_log_error("notifications: %s", err.msg);
        else if (counts.created || counts.delivered || counts.failed)
            cf_log_info("notifications: %lld new, %lld delivered, %lld retrying, %lld failed",
                        (long long)counts.created, (long long)counts.delivered,
                        (long long)counts.retrying, (long long)counts.failed);
        cf_store_idle(nf->core->store);
        pthread_mutex_lock(&nf->lock);
    }
    pthread_mutex_unlock(&nf->lock);
    return NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

enum cf_rc cf_notifier_start(struct cf_core *core, const struct cf_notifier_config *config,
                             struct cf_notifier **out, struct cf_err *err)
{
    const struct cf_smtp_config *smtp = &config->smtp;
    if (smtp->url) {
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL;
        bool ok = u && curl_url_set(u, CURLUPART_URL, smtp->url, 0) == CURLUE_OK &&
                  curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
                  curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
                  (strcmp(scheme, "smtp") == 0 || strcmp(scheme, "smtps") == 0);
        bool loopback = ok && cf_net_is_loopback(host);
        curl_free(scheme);
        curl_free(host);
        curl_url_cleanup(u);
        if (!ok) {
            char shown[CF_ERR_MSG_MAX];
            cf_net_url_redact(smtp->url, shown, sizeof(shown));
            return cf_err_set(err, CF_EINVAL, "--smtp-url: expected smtp://HOST:PORT, not '%.200s'",
                              shown);
        }
        if (!smtp->starttls && !loopback)
            return cf_err_set(err, CF_EINVAL,
                              "--smtp-starttls off is allowed only for a loopback SMTP server");
        if (!smtp->from || !strchr(smtp->from, '@'))
            return cf_err_set(err, CF_EINVAL,
                              "--smtp-from: an e-mail address is required with "
                              "--smtp-url");
    }
    struct cf_notifier *nf = calloc(1, sizeof(*nf));
    if (!nf)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    nf->core = core;
    nf->config = *config;
    if (!nf->config.retry_base_ms)
        nf->config.retry_base_ms = 30000;
    if (!nf->config.max_attempts)
        nf->config.max_attempts = 8;
    nf->smtp_url = dup_or_null(smtp->url);
    nf->smtp_from = dup_or_null(smtp->from);
    nf->smtp_user = dup_or_null(smtp->username);
    nf->smtp_password = dup_or_null(smtp->password);
    nf->smtp_ca = dup_or_null(smtp->ca_file);
    pthread_mutex_init(&nf->pass, NULL);
    pthread_mutex_init(&nf->lock, NULL);
    pthread_cond_init(&nf->wake, NULL);
    if (config->interval_ms > 0) {
        if (pthread_create(&nf->thread, NULL, notifier_main, nf) != 0) {
            cf_notifier_stop(nf);
            return cf_err_set(err, CF_EINTERNAL, "cannot start the notification thread");
        }
        nf->started = true;
    }
    *out = nf;
    return CF_OK;
}

void cf_notifier_stop(struct cf_notifier *nf)
{
    if (!nf)
        return;
    if (nf->started) {
        pthread_mutex_lock(&nf->lock);
        nf->stopping = true;
        pthread_cond_signal(&nf->wake);
        pthread_mutex_unlock(&nf->lock);
        pthread_join(nf->thread, NULL);
    }
    if (nf->smtp_password) {
        sodium_memzero(nf->smtp_password, strlen(nf->smtp_password));
        free(nf->smtp_password);
    }
    free(nf->smtp_url);
    free(nf->smtp_from);
    free(nf->smtp_user);
    free(nf->smtp_ca);
    pthread_cond_destroy(&nf->wake);
    pthread_mutex_destroy(&nf->lock);
    pthread_mutex_destroy(&nf->pass);
    free(nf);
}
