/* The Kubernetes API client of `coffer k8s-operator`: JSON requests (get, create, replace, patch)
 * and watch streams over libcurl, authenticated with a service-account token and verified against
 * the cluster's CA, as a workload running in a cluster reaches its API server.
 *
 * In-cluster configuration (what client-go's rest.InClusterConfig reads): the server is
 * https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, the bearer token and the CA bundle
 * are the files mounted under CF_KUBE_SA_DIR. Each may be overridden (tests point the operator at a
 * local stand-in). The token file is read again before every request, because the kubelet rotates
 * projected service-account tokens in place; its contents are wiped after use and never logged.
 * Plain http is accepted only to a loopback host.
 *
 * A struct cf_kube is not thread-safe (one curl handle for requests, one for the watch). */
#ifndef CF_KUBE_KUBE_H
#define CF_KUBE_KUBE_H

#include <stdbool.h>

#include <jansson.h>

#include "util/err.h"

#define CF_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define CF_KUBE_TOKEN_MAX (64 * 1024)           /* a service-account token file, at most */
#define CF_KUBE_RESPONSE_MAX (16 * 1024 * 1024) /* one answer (or one watch event), at most */
#define CF_KUBE_RESOURCE_VERSION_MAX 128        /* a resourceVersion we keep, at most */

struct cf_kube;

/* Where the API server is and how to authenticate to it. NULL fields take the in-cluster value. */
struct cf_kube_options {
    const char *server;     /* https://host:port; NULL: from KUBERNETES_SERVICE_HOST/PORT */
    const char *token_file; /* NULL: CF_KUBE_SA_DIR/token */
    const char *ca_file;    /* NULL: CF_KUBE_SA_DIR/ca.crt when it exists, else the system CAs */
};

/* Creates a client (free with cf_kube_free). CF_EINVAL naming the problem when no server is given
 * and the service environment is not set, or the server URL is not https (or http to loopback);
 * CF_EIO when the token file cannot be read; CF_ENOMEM. */
enum cf_rc cf_kube_new(const struct cf_kube_options *options, struct cf_kube **out,
                       struct cf_err *err);

/* Frees the client. NULL is a no-op. */
void cf_kube_free(struct cf_kube *kube);

/* The server URL (borrowed). */
const char *cf_kube_server(const struct cf_kube *kube);

/* An answer of the API server. */
struct cf_kube_reply {
    long status;  /* HTTP status */
    json_t *json; /* the parsed body (owned) or NULL when it is not JSON */
    long retry_after_s;
};

/* Sends METHOD server+path (path starts with '/' and is escaped by the caller) with body (borrowed,
 * NULL for none) as content_type (NULL: application/json). CF_OK when an answer arrived, whatever
 * its status (the caller judges it); CF_EIO (connection, TLS, timeout, an answer over its cap),
 * CF_ENOMEM. The caller releases reply with cf_kube_reply_release in every case. */
enum cf_rc cf_kube_request(struct cf_kube *kube, const char *method, const char *path,
                           const char *content_type, json_t *body, struct cf_kube_reply *reply,
                           struct cf_err *err);

/* Drops reply->json and clears reply. */
void cf_kube_reply_release(struct cf_kube_reply *reply);

/* The message of a Status answer (reply->json.message), or a description of the status. Never NULL;
 * borrowed from reply, or a static string. */
const char *cf_kube_reply_message(const struct cf_kube_reply *reply);

/* Called for each event of a watch stream: type is "ADDED", "MODIFIED", "DELETED", "BOOKMARK" or
 * "ERROR"; object is borrowed for the call. A result other than CF_OK ends the watch and is
 * returned by cf_kube_watch. */
typedef enum cf_rc (*cf_kube_event_fn)(const char *type, json_t *object, void *ctx);

/* Opens a watch (path holds the collection and its query, watch=1 included) and calls fn for each
 * event, one JSON object per line of the chunked answer, until the server ends the stream (its
 * timeoutSeconds) or fn refuses. reply receives the HTTP status and Retry-After (its json stays
 * NULL). CF_OK when the stream ended
 * normally; when the server refused the watch (status other than 200), CF_EIO with err naming
 * status and message; fn's result; CF_ETOOLARGE for an event over CF_KUBE_RESPONSE_MAX or
 * CF_EINVAL for a line that is not a JSON event. timeout_s bounds the whole transfer. */
enum cf_rc cf_kube_watch(struct cf_kube *kube, const char *path, long timeout_s,
                         cf_kube_event_fn fn, void *ctx, struct cf_kube_reply *reply,
                         struct cf_err *err);

#endif
