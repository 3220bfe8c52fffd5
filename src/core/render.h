/* The JSON (and one-line) forms of domain records that more than one of the API, the notifier and
 * the audit streams show, so that each is written once: audit events and signed heads as the API,
 * the head file and every stream show them (docs/audit.md), and reading a head back; expiry items
 * as GET /api/v1/expiring answers them and as the notices describe them (docs/notifications.md). */
#ifndef CF_CORE_RENDER_H
#define CF_CORE_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/expiry.h"
#include "store/store.h"
#include "util/err.h"
#include "util/jsonw.h"

/* A time in Unix milliseconds as RFC 3339 (a new reference), JSON null when unix_ms <= 0. */
json_t *cf_time_json(int64_t unix_ms);

/* One line saying what and where: `secret "API_KEY" in payments/prod:/backend expires at T`. */
void cf_expiry_item_describe(const struct cf_expiry_item *item, char *out, size_t size);

/* An item as GET /api/v1/expiring answers it (docs/api.md, Expiry); a new reference, NULL when out
 * of memory. */
json_t *cf_expiry_item_json(const struct cf_expiry_item *item);

/* An event as the API and every sink show it (docs/audit.md): a new reference, NULL when out of
 * memory. */
json_t *cf_audit_event_json(const struct cf_audit_event *event);
/* The same event written into w: the same members in the same order, as compact text that parses to
 * what cf_audit_event_json builds (the audit archive writes thousands a second; building each as a
 * tree first cost it more than the rest of its work together). */
void cf_audit_event_write(struct cf_jsonw *w, const struct cf_audit_event *event);

/* A signed head as the head file and every sink show it (docs/audit.md "The head"):
 * {"type":"head","seq":N,"hash":HEX,"time":RFC3339,"timeUs":N,"signature":BASE64}. A new
 * reference, NULL when out of memory. */
json_t *cf_audit_head_json(const struct cf_audit_checkpoint *head);

/* Reads a head, or an anchor: seq and hash required (an event record of a stream has both), timeUs
 * and signature optional (*is_signed says whether there was one; the caller checks it).
 * CF_EVALIDATION naming the field that is wrong. */
enum cf_rc cf_audit_head_parse(json_t *json, struct cf_audit_checkpoint *out, bool *is_signed,
                               struct cf_err *err);

#endif
