/* `coffer k8s-operator` (operator.h): the control loop.
 *
 * One thread. Each round: an election step on the Lease (unless --leader-elect=false); a follower
 * waits for the next round and writes nothing. The leader lists InfisicalSecrets (all namespaces,
 * or --namespace) and reconciles each, then watches from the list's resourceVersion with bookmarks
 * for at most --retry-period, reconciling a resource when it is added or its generation changes
 * (status writes do not change the generation, so the operator's own status patches do not loop).
 * When the watch ends the round is over: the Lease is renewed and the resources whose resync
 * interval has passed are reconciled again. A watch refused with 410 Gone (or an ERROR event with
 * code 410: the resourceVersion was compacted) starts over with a fresh list; any other failure
 * waits with exponential backoff (1 s doubling to 30 s, or the server's Retry-After) before the
 * next round. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "kube/operator.h"
#include "kube/kube.h"
#include "kube/lease.h"
#include "kube/reconcile.h"
#include "cli/common.h"
#include "client/client.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define COLLECTION "/apis/secrets.infisical.com/v1alpha1"
#define BACKOFF_MAX_MS 30000
#define RV_MAX CF_KUBE_RESOURCE_VERSION_MAX
#define KEY_MAX 512 /* "namespace/name": 63 + 1 + 253 characters at most */

static const char usage_text[] =
    "usage: coffer k8s-operator [options]\n"
    "\n"
    "Runs in a Kubernetes cluster and syncs Coffer secrets into Kubernetes Secrets, driven by\n"
    "InfisicalSecret resources (secrets.infisical.com/v1alpha1), as Infisical's operator does.\n"
    "\n"
    "  --namespace NS       watch only this namespace (default: all; env WATCH_NAMESPACE)\n"
    "  --default-host-api URL  the Coffer URL for resources without spec.hostAPI\n"
    "                       (env COFFER_HOST_API; default: the field is required)\n"
    "  --coffer-ca-file F   CA bundle for an https Coffer (default: the system CAs)\n"
    "  --kube-server URL    the API server (default: https://$KUBERNETES_SERVICE_HOST:\n"
    "                       $KUBERNETES_SERVICE_PORT; env COFFER_KUBE_SERVER)\n"
    "  --kube-token-file F  service-account token (default: " CF_KUBE_SA_DIR "/token;\n"
    "                       env COFFER_KUBE_TOKEN_FILE)\n"
    "  --kube-ca-file F     the API server's CA (default: " CF_KUBE_SA_DIR "/ca.crt;\n"
    "                       env COFFER_KUBE_CA_FILE)\n"
    "  --leader-elect=false run without leader election (one replica only)\n"
    "  --lease-namespace NS namespace of the Lease (default: the pod's, else default)\n"
    "  --lease-name NAME    the Lease (default coffer-k8s-operator)\n"
    "  --lease-duration D   how long a silent leader keeps the Lease (default 15s)\n"
    "  --retry-period D     election round and longest watch (default 2s)\n"
    "  --id ID              this replica's holder identity (default: $POD_NAME or the host\n"
    "                       name, and a random suffix)\n";

static volatile sig_atomic_t stopping;

static void on_signal(int signo)
{
    (void)signo;
    stopping = 1;
}

struct state {
    struct cf_kube *kube;
    struct cf_reconcile_config config;
    const char *namespace_; /* NULL: all */
    json_t *known;          /* "ns/name" -> {object, next_ms} */
    char rv[RV_MAX];        /* resourceVersion to watch from; "" when a list is needed */
    bool gone;              /* the watch said 410 */
    /* Leader election (NULL: none). A round of reconciles longer than the renew period renews the
     * Lease between two resources, and stops as soon as it is lost, so that a replica never keeps
     * writing after another one may have taken over. */
    struct cf_lease *lease;
    int64_t renew_ms;
    int64_t renewed_at_ms;
    bool lost; /* the Lease was lost during this round */
};

static void sleep_ms(int64_t ms)
{
    while (ms > 0 && !stopping) {
        int64_t step = ms < 100 ? ms : 100;
        struct timespec ts = {0, (long)step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
}

static const char *meta(json_t *object, const char *key)
{
    return json_string_value(json_object_get(json_object_get(object, "metadata"), key));
}

static enum cf_rc collection_path(const struct state *st, struct cf_buf *path)
{
    cf_buf_reset(path);
    if (cf_buf_puts(path, COLLECTION))
        return CF_ENOMEM;
    if (st->namespace_ &&
        (cf_buf_puts(path, "/namespaces") || cf_url_path_segment(path, st->namespace_)))
        return CF_ENOMEM;
    return cf_buf_puts(path, "/infisicalsecrets");
}

/* Whether this replica may still write: renews the Lease when the renew period has passed since
 * the last renewal. */
static bool still_leader(struct state *st)
{
    struct cf_err err = {0};
    int64_t now = cf_now_ms();
    if (!st->lease || st->lost)
        return !st->lost;
    if (now - st->renewed_at_ms >= st->renew_ms) {
        if (cf_lease_step(st->kube, st->lease, now, &err) != CF_OK)
            cf_log(CF_LOG_WARN, "leader election: %s", err.msg);
        st->renewed_at_ms = now;
    }
    st->lost = !st->lease->leader;
    return !st->lost;
}

/* Reconciles object and records when to do it again; false (nothing done) when the Lease is lost.
 */
static bool reconcile_one(struct state *st, json_t *object, const char *key)
{
    struct cf_err err = {0};
    int64_t resync_s = CF_RECONCILE_DEFAULT_RESYNC_S;
    if (!still_leader(st))
        return false;
    int64_t now = cf_now_ms();
    if (cf_reconcile(st->kube, &st->config, object, now, &resync_s, &err) != CF_OK)
        cf_log(CF_LOG_WARN, "infisicalsecret '%s': %s", key, err.msg);
    else
        cf_log(CF_LOG_INFO, "infisicalsecret '%s' synced", key);
    json_object_set_new(
        st->known, key,
        json_pack("{s:O, s:I}", "object", object, "next_ms", (json_int_t)(now + resync_s * 1000)));
    return true;
}

/* "namespace/name" of object into key; false when it has neither. */
static bool object_key(json_t *object, char *key, size_t size)
{
    const char *ns = meta(object, "namespace"), *name = meta(object, "name");
    if (!ns || !name)
        return false;
    int n = snprintf(key, size, "%s/%s", ns, name);
    return n > 0 && (size_t)n < size;
}

/* Handles an added or changed resource: reconciled when new or its spec (generation) changed.
 * False when the Lease was lost. */
static bool observed(struct state *st, json_t *object)
{
    char key[KEY_MAX];
    if (!object_key(object, key, sizeof(key)))
        return true;
    json_t *entry = json_object_get(st->known, key);
    json_t *before = json_object_get(entry, "object");
    json_t *gen_before = json_object_get(json_object_get(before, "metadata"), "generation");
    json_t *gen_now = json_object_get(json_object_get(object, "metadata"), "generation");
    const char *uid_before = meta(before, "uid"), *uid_now = meta(object, "uid");
    bool same = entry && json_equal(gen_before, gen_now) && uid_before && uid_now &&
                strcmp(uid_before, uid_now) == 0;
    if (same) {
        json_object_set(entry, "object", object); /* a status change: keep the latest */
        return true;
    }
    return reconcile_one(st, object, key);
}

static enum cf_rc on_event(const char *type, json_t *object, void *ctx)
{
    struct state *st = ctx;
    const char *rv = meta(object, "resourceVersion");
    if (strcmp(type, "ERROR") == 0) {
        json_int_t code = json_integer_value(json_object_get(object, "code"));
        if (code == 410) {
            st->gone = true;
            return CF_ECONFLICT;
        }
        cf_log(CF_LOG_WARN, "watch error %lld: %s", (long long)code,
               json_string_value(json_object_get(object, "message"))
                   ? json_string_value(json_object_get(object, "message"))
                   : "");
        return CF_EIO;
    }
    if (rv && !cf_strlcpy(st->rv, rv, sizeof(st->rv)))
        st->rv[0] = '\0';
    if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
        if (!observed(st, object))
            return CF_EFORBIDDEN; /* ends the watch: st->lost says why */
    } else if (strcmp(type, "DELETED") == 0) {
        char key[KEY_MAX];
        if (object_key(object, key, sizeof(key))) {
            json_object_del(st->known, key);
            cf_log(CF_LOG_INFO, "infisicalsecret '%s' deleted", key);
        }
    }
    return CF_OK;
}

/* Lists every resource and reconciles each; sets st->rv to the list's resourceVersion. */
static enum cf_rc list_all(struct state *st, long *retry_after_s, struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    struct cf_kube_reply reply = {0};
    struct cf_buf path;
    json_t *item;
    size_t i;
    cf_buf_init(&path, 4096);
    if (collection_path(st, &path) != CF_OK) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    rc = cf_kube_request(st->kube, "GET", path.data, NULL, NULL, &reply, err);
    if (rc != CF_OK)
        goto out;
    *retry_after_s = reply.retry_after_s;
    if (reply.status != 200) {
        rc = cf_err_set(err, CF_EIO, "listing infisicalsecrets: HTTP %ld: %s", reply.status,
                        cf_kube_reply_message(&reply));
        goto out;
    }
    const char *rv = meta(reply.json, "resourceVersion");
    if (!rv || !cf_strlcpy(st->rv, rv, sizeof(st->rv))) {
        rc = cf_err_set(err, CF_EIO, "listing infisicalsecrets: no usable resourceVersion");
        goto out;
    }
    /* Resources gone since the last list are forgotten; the others keep their resync time unless
     * they are new or their spec changed meanwhile (observed() decides). */
    json_t *before = st->known, *listed = json_object();
    if (!listed) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    json_array_foreach(json_object_get(reply.json, "items"), i, item)
    {
        char key[KEY_MAX];
        if (object_key(item, key, sizeof(key)) && json_object_get(before, key))
            json_object_set(listed, key, json_object_get(before, key));
    }
    st->known = listed;
    json_decref(before);
    json_array_foreach(json_object_get(reply.json, "items"), i, item)
    {
        if (stopping || !observed(st, item))
            break;
    }
out:
    cf_kube_reply_release(&reply);
    cf_buf_release(&path);
    return rc;
}

static enum cf_rc watch_once(struct state *st, long seconds, long *retry_after_s,
                             struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    struct cf_buf path;
    struct cf_kube_reply reply = {0};
    cf_buf_init(&path, 4096);
    if (collection_path(st, &path) != CF_OK ||
        cf_buf_printf(&path,
                      "?watch=1&allowWatchBookmarks=true&timeoutSeconds=%ld"
                      "&resourceVersion=",
                      seconds) != CF_OK ||
        cf_url_escape(&path, st->rv) != CF_OK) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    st->gone = false;
    rc = cf_kube_watch(st->kube, path.data, seconds, on_event, st, &reply, err);
    *retry_after_s = reply.retry_after_s;
    if (st->lost) {
        rc = CF_OK; /* the next round's election step makes this replica a follower */
    } else if (reply.status == 410 || st->gone) {
        cf_log(CF_LOG_INFO, "watch: resourceVersion %s is gone (410): listing again", st->rv);
        st->rv[0] = '\0';
        rc = CF_OK;
    }
out:
    cf_buf_release(&path);
    return rc;
}

static void resync_due(struct state *st)
{
    const char *key;
    json_t *entry, *k;
    size_t i;
    int64_t now = cf_now_ms();
    /* Reconciling replaces the entry: iterate over a copy of the keys. */
    json_t *due = json_array();
    json_object_foreach(st->known, key, entry)
    {
        if (json_integer_value(json_object_get(entry, "next_ms")) <= now)
            json_array_append_new(due, json_string(key));
    }
    json_array_foreach(due, i, k)
    {
        json_t *object = json_incref(
            json_object_get(json_object_get(st->known, json_string_value(k)), "object"));
        bool go_on = !stopping && (!object || reconcile_one(st, object, json_string_value(k)));
        json_decref(object);
        if (!go_on)
            break;
    }
    json_decref(due);
}

static bool parse_seconds(const char *text, const char *flag, int64_t dflt, int64_t *out)
{
    struct cf_err err;
    if (!text) {
        *out = dflt;
        return true;
    }
    if (cf_duration_parse(text, out, &err) != CF_OK || *out < 1 || *out > 3600) {
        fprintf(stderr, "coffer k8s-operator: --%s '%s' is not a duration of 1s to 1h\n", flag,
                text);
        return false;
    }
    return true;
}

static void default_identity(char *out, size_t size)
{
    char host[128] = "";
    unsigned char random_bytes[4];
    char suffix[9];
    const char *pod = getenv("POD_NAME");
    if (!pod || !*pod) {
        if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
            cf_strlcpy(host, "coffer-k8s-operator", sizeof(host));
        pod = host;
    }
    randombytes_buf(random_bytes, sizeof(random_bytes));
    sodium_bin2hex(suffix, sizeof(suffix), random_bytes, sizeof(random_bytes));
    snprintf(out, size, "%.100s_%s", pod, suffix);
}

/* The pod's namespace: $POD_NAMESPACE, else the mounted service-account namespace file. */
static void default_lease_namespace(char *out, size_t size)
{
    const char *env = getenv("POD_NAMESPACE");
    cf_strlcpy(out, "default", size);
    if (env && *env) {
        cf_strlcpy(out, env, size);
        return;
    }
    FILE *f = fopen(CF_KUBE_SA_DIR "/namespace", "r");
    if (f) {
        char line[256];
        if (fgets(line, sizeof(line), f)) {
            line[strcspn(line, "\r\n ")] = '\0';
            if (line[0])
                cf_strlcpy(out, line, size);
        }
        fclose(f);
    }
}

static const char *flag_or_env(const char *flag, const char *env)
{
    const char *value = flag ? flag : getenv(env);
    return value && *value ? value : NULL;
}

static bool name_ok(const char *text)
{
    size_t len = strlen(text);
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return false;
    }
    return true;
}

int cf_cmd_k8s_operator(int argc, char **argv)
{
    int status = CF_EXIT_FAILURE;
    struct cf_err err = {0};
    struct state st = {0};
    struct cf_lease lease = {0};
    const char *namespace_ = NULL, *host_api = NULL, *coffer_ca = NULL, *server = NULL,
               *token_file = NULL, *ca_file = NULL, *lease_ns = NULL, *lease_name = NULL,
               *lease_duration = NULL, *retry_period = NULL, *id = NULL;
    bool leader_elect = true;
    int64_t retry_s = 2, duration_s = 15;
    const struct cf_opt opts[] = {
        {"namespace", CF_OPT_STRING, &namespace_},
        {"default-host-api", CF_OPT_STRING, &host_api},
        {"coffer-ca-file", CF_OPT_STRING, &coffer_ca},
        {"kube-server", CF_OPT_STRING, &server},
        {"kube-token-file", CF_OPT_STRING, &token_file},
        {"kube-ca-file", CF_OPT_STRING, &ca_file},
        {"leader-elect", CF_OPT_BOOL, &leader_elect},
        {"lease-namespace", CF_OPT_STRING, &lease_ns},
        {"lease-name", CF_OPT_STRING, &lease_name},
        {"lease-duration", CF_OPT_STRING, &lease_duration},
        {"retry-period", CF_OPT_STRING, &retry_period},
        {"id", CF_OPT_STRING, &id},
    };
    const struct cf_cli_spec spec = {
        .usage = usage_text,
        .flags = CF_CLI_LOCAL, /* none of the Coffer client's options: hostAPI is per resource */
        .max_args = 0,
        .opts = opts,
        .nopts = sizeof(opts) / sizeof(opts[0]),
    };
    struct cf_cli cli;
    bool begun = cf_cli_begin(&cli, argc, argv, &spec, &status);
    cf_cli_end(&cli); /* the option values point into argv, not into cli */
    if (!begun)
        return status;
    status = CF_EXIT_FAILURE;
    namespace_ = flag_or_env(namespace_, "WATCH_NAMESPACE");
    if (!parse_seconds(retry_period, "retry-period", 2, &retry_s) ||
        !parse_seconds(lease_duration, "lease-duration", 15, &duration_s)) {
        status = CF_EXIT_USAGE;
        goto out;
    }
    if (duration_s <= retry_s) {
        fprintf(stderr, "coffer k8s-operator: --lease-duration must be longer than "
                        "--retry-period\n");
        status = CF_EXIT_USAGE;
        goto out;
    }
    if ((namespace_ && !name_ok(namespace_)) || (lease_ns && !name_ok(lease_ns)) ||
        (lease_name && !name_ok(lease_name))) {
        fprintf(stderr, "coffer k8s-operator: --namespace, --lease-namespace and --lease-name "
                        "take Kubernetes names (lower-case letters, digits, '-' and '.')\n");
        status = CF_EXIT_USAGE;
        goto out;
    }
    if (id && (strlen(id) == 0 || strlen(id) >= CF_LEASE_IDENTITY_MAX)) {
        fprintf(stderr, "coffer k8s-operator: --id must have 1 to %d characters\n",
                CF_LEASE_IDENTITY_MAX - 1);
        status = CF_EXIT_USAGE;
        goto out;
    }
    if (cf_client_global_init(&err) != CF_OK) {
        fprintf(stderr, "coffer k8s-operator: %s\n", err.msg);
        goto out;
    }
    struct cf_kube_options kopts = {
        .server = flag_or_env(server, "COFFER_KUBE_SERVER"),
        .token_file = flag_or_env(token_file, "COFFER_KUBE_TOKEN_FILE"),
        .ca_file = flag_or_env(ca_file, "COFFER_KUBE_CA_FILE"),
    };
    if (cf_kube_new(&kopts, &st.kube, &err) != CF_OK) {
        fprintf(stderr, "coffer k8s-operator: %s\n", err.msg);
        goto out;
    }
    st.config.default_host_api = flag_or_env(host_api, "COFFER_HOST_API");
    st.config.coffer_ca_file = coffer_ca;
    st.namespace_ = namespace_;
    st.known = json_object();
    if (!st.known) {
        fprintf(stderr, "coffer k8s-operator: out of memory\n");
        goto out;
    }
    if (lease_ns)
        cf_strlcpy(lease.namespace_, lease_ns, sizeof(lease.namespace_));
    else
        default_lease_namespace(lease.namespace_, sizeof(lease.namespace_));
    cf_strlcpy(lease.name, lease_name ? lease_name : "coffer-k8s-operator", sizeof(lease.name));
    if (id)
        cf_strlcpy(lease.identity, id, sizeof(lease.identity));
    else
        default_identity(lease.identity, sizeof(lease.identity));
    lease.duration_s = duration_s;
    st.lease = leader_elect ? &lease : NULL;
    st.renew_ms = retry_s * 1000;

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    cf_log(CF_LOG_INFO, "k8s-operator started: server %s, namespace %s, identity '%s'%s",
           cf_kube_server(st.kube), namespace_ ? namespace_ : "(all)", lease.identity,
           leader_elect ? "" : ", no leader election");

    int64_t backoff_ms = 0;
    while (!stopping) {
        long retry_after_s = 0;
        if (leader_elect) {
            bool was_leader = lease.leader;
            st.lost = false;
            st.renewed_at_ms = cf_now_ms();
            if (cf_lease_step(st.kube, &lease, st.renewed_at_ms, &err) != CF_OK)
                cf_log(CF_LOG_WARN, "leader election: %s", err.msg);
            if (!lease.leader) {
                if (was_leader) {
                    /* A follower forgets what it watched: the next leadership starts with a list.
                     */
                    st.rv[0] = '\0';
                    json_object_clear(st.known);
                }
                sleep_ms(retry_s * 1000);
                continue;
            }
        }
        enum cf_rc rc = CF_OK;
        if (st.rv[0] == '\0')
            rc = list_all(&st, &retry_after_s, &err);
        if (rc == CF_OK) {
            resync_due(&st);
            rc = watch_once(&st, (long)retry_s, &retry_after_s, &err);
        }
        if (rc == CF_OK) {
            backoff_ms = 0;
            continue;
        }
        backoff_ms = backoff_ms ? backoff_ms * 2 : 1000;
        if (backoff_ms > BACKOFF_MAX_MS)
            backoff_ms = BACKOFF_MAX_MS;
        int64_t wait_ms = retry_after_s > 0 ? retry_after_s * 1000 : backoff_ms;
        cf_log(CF_LOG_WARN, "%s (next attempt in %lld ms)", err.msg, (long long)wait_ms);
        sleep_ms(wait_ms);
    }
    if (leader_elect)
        cf_lease_release(st.kube, &lease, cf_now_ms());
    cf_log(CF_LOG_INFO, "k8s-operator stopped");
    status = CF_EXIT_OK;
out:
    json_decref(st.known);
    cf_kube_free(st.kube);
    return status;
}
