/* Leader election over a Lease (lease.h). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "kube/lease.h"
#include "client/client.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

/* A MicroTime as the API server writes it: RFC 3339 with six fraction digits. */
static void micro_time(int64_t now_ms, char out[CF_TIME_RFC3339_LEN])
{
    char ms[CF_TIME_RFC3339_LEN];
    cf_time_format(now_ms, ms);
    size_t len = strlen(ms);
    if (len > 1 && ms[len - 1] == 'Z')
        ms[len - 1] = '\0';
    snprintf(out, CF_TIME_RFC3339_LEN, "%.40s000Z", ms);
}

static enum cf_rc lease_path(const struct cf_lease *lease, bool item, struct cf_buf *path)
{
    enum cf_rc rc = cf_buf_puts(path, "/apis/coordination.k8s.io/v1/namespaces/");
    if (rc == CF_OK)
        rc = cf_url_escape(path, lease->namespace_);
    if (rc == CF_OK)
        rc = cf_buf_puts(path, "/leases");
    if (rc == CF_OK && item)
        rc = cf_url_path_segment(path, lease->name);
    return rc;
}

/* The Lease object this replica writes as holder; resource_version NULL for a create. */
static json_t *lease_object(const struct cf_lease *lease, const char *holder,
                            const char *resource_version, const char *acquire_time,
                            const char *renew_time, json_int_t transitions, json_int_t duration)
{
    json_t *metadata = json_pack("{s:s, s:s}", "name", lease->name, "namespace", lease->namespace_);
    if (metadata && resource_version)
        json_object_set_new(metadata, "resourceVersion", json_string(resource_version));
    return json_pack("{s:s, s:s, s:o, s:{s:s, s:I, s:s, s:s, s:I}}", "apiVersion",
                     "coordination.k8s.io/v1", "kind", "Lease", "metadata", metadata, "spec",
                     "holderIdentity", holder, "leaseDurationSeconds", duration, "acquireTime",
                     acquire_time, "renewTime", renew_time, "leaseTransitions", transitions);
}

/* Sends a create (POST) or replace (PUT) of the Lease. *won is true on 200/201, false on 409 (a
 * lost race). */
static enum cf_rc write_lease(struct cf_kube *kube, const struct cf_lease *lease, bool create,
                              json_t *object, bool *won, struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    struct cf_kube_reply reply = {0};
    struct cf_buf path;
    cf_buf_init(&path, 2048);
    *won = false;
    if (!object || lease_path(lease, !create, &path) != CF_OK) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    rc = cf_kube_request(kube, create ? "POST" : "PUT", path.data, NULL, object, &reply, err);
    if (rc != CF_OK)
        goto out;
    if (reply.status == 200 || reply.status == 201)
        *won = true;
    else if (reply.status != 409)
        rc = cf_err_set(err, CF_EIO, "lease '%s/%s': HTTP %ld: %s", lease->namespace_, lease->name,
                        reply.status, cf_kube_reply_message(&reply));
out:
    cf_kube_reply_release(&reply);
    cf_buf_release(&path);
    json_decref(object);
    return rc;
}

enum cf_rc cf_lease_step(struct cf_kube *kube, struct cf_lease *lease, int64_t now_ms,
                         struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    struct cf_kube_reply reply = {0};
    struct cf_buf path;
    char now[CF_TIME_RFC3339_LEN];
    bool won = false;
    cf_buf_init(&path, 2048);
    micro_time(now_ms, now);
    if (lease_path(lease, true, &path) != CF_OK) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    rc = cf_kube_request(kube, "GET", path.data, NULL, NULL, &reply, err);
    if (rc != CF_OK)
        goto out;
    if (reply.status == 404) {
        rc = write_lease(kube, lease, true,
                         lease_object(lease, lease->identity, NULL, now, now, 0, lease->duration_s),
                         &won, err);
        goto out;
    }
    if (reply.status != 200) {
        rc = cf_err_set(err, CF_EIO, "lease '%s/%s': HTTP %ld: %s", lease->namespace_, lease->name,
                        reply.status, cf_kube_reply_message(&reply));
        goto out;
    }
    json_t *spec = json_object_get(reply.json, "spec");
    const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
    const char *renew = json_string_value(json_object_get(spec, "renewTime"));
    const char *acquire = json_string_value(json_object_get(spec, "acquireTime"));
    const char *rv = json_string_value(
        json_object_get(json_object_get(reply.json, "metadata"), "resourceVersion"));
    json_int_t duration = json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
    json_int_t transitions = json_integer_value(json_object_get(spec, "leaseTransitions"));
    if (!holder)
        holder = "";
    if (duration <= 0)
        duration = lease->duration_s;

    /* The record changes whenever its holder renews: remember when this replica last saw it move.
     */
    char record[sizeof(lease->observed)];
    snprintf(record, sizeof(record), "%s|%s", holder, renew ? renew : "");
    if (strcmp(record, lease->observed) != 0) {
        cf_strlcpy(lease->observed, record, sizeof(lease->observed));
        lease->observed_at_ms = now_ms;
    }

    if (strcmp(holder, lease->identity) == 0) {
        rc = write_lease(kube, lease, false,
                         lease_object(lease, lease->identity, rv, acquire ? acquire : now, now,
                                      transitions, lease->duration_s),
                         &won, err);
    } else if (*holder == '\0' || lease->observed_at_ms + duration * 1000 <= now_ms) {
        /* Released or expired: take it over, counting the transition. */
        rc = write_lease(
            kube, lease, false,
            lease_object(lease, lease->identity, rv, now, now, transitions + 1, lease->duration_s),
            &won, err);
    }
out:
    if (won != lease->leader)
        cf_log(CF_LOG_INFO, "leader election: %s lease '%s/%s' as '%s'", won ? "acquired" : "lost",
               lease->namespace_, lease->name, lease->identity);
    lease->leader = won;
    cf_kube_reply_release(&reply);
    cf_buf_release(&path);
    return rc;
}

void cf_lease_release(struct cf_kube *kube, struct cf_lease *lease, int64_t now_ms)
{
    struct cf_kube_reply reply = {0};
    struct cf_buf path;
    struct cf_err err;
    char now[CF_TIME_RFC3339_LEN];
    bool won = false;
    cf_buf_init(&path, 2048);
    if (!lease->leader || lease_path(lease, true, &path) != CF_OK)
        goto out;
    if (cf_kube_request(kube, "GET", path.data, NULL, NULL, &reply, &err) != CF_OK ||
        reply.status != 200)
        goto out;
    json_t *spec = json_object_get(reply.json, "spec");
    const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
    const char *rv = json_string_value(
        json_object_get(json_object_get(reply.json, "metadata"), "resourceVersion"));
    if (!holder || strcmp(holder, lease->identity) != 0)
        goto out;
    micro_time(now_ms, now);
    /* As client-go's ReleaseOnCancel: an empty holder and a one-second duration. */
    write_lease(kube, lease, false,
                lease_object(lease, "", rv, now, now,
                             json_integer_value(json_object_get(spec, "leaseTransitions")), 1),
                &won, &err);
    lease->leader = false;
out:
    cf_kube_reply_release(&reply);
    cf_buf_release(&path);
}
