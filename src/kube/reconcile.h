/* Reconciling one InfisicalSecret (secrets.infisical.com/v1alpha1, the resource of Infisical's
 * Kubernetes operator, with the field names of its CRD) into Kubernetes Secrets:
 *
 * 1. the spec is checked (hostAPI, one authentication method, the managed Secrets, the resync
 *    interval, templates); a problem is reported in status.conditions naming the field;
 * 2. the operator logs in to Coffer: kubernetesAuth asks the API server for a token of
 *    serviceAccountRef (TokenRequest) and sends it to /api/v1/auth/kubernetes-auth/login;
 *    universalAuth reads clientId and clientSecret from the Secret credentialsRef names and sends
 *    them to /api/v1/auth/universal-auth/login;
 * 3. it reads secretsScope with GET /api/v3/secrets/raw (imports included, references expanded,
 *    own secrets winning over imported ones);
 * 4. for each of managedKubeSecretReferences (or the older single managedSecretReference) it
 *    renders the data (all secrets, or the template), and creates or replaces the Secret: labels
 *    and annotations of the InfisicalSecret are copied, the annotation
 *    secrets.infisical.com/version holds a digest of the data, and creationPolicy Owner adds an
 *    ownerReference to the InfisicalSecret. A replace carries the resourceVersion read; on 409
 *    Conflict the Secret is read again and the write retried;
 * 5. when a Secret's data changed, Deployments of its namespace annotated
 *    secrets.infisical.com/auto-reload: "true" whose pods use it (envFrom, env valueFrom, volumes)
 *    are restarted as `kubectl rollout restart` does (a patch of the pod template's annotation
 *    kubectl.kubernetes.io/restartedAt);
 * 6. status.conditions is patched (only when it changes).
 *
 * Secret values and credentials are wiped after use and never appear in a condition or a log line.
 * Not thread-safe (uses the kube client). */
#ifndef CF_KUBE_RECONCILE_H
#define CF_KUBE_RECONCILE_H

#include <stdint.h>

#include <jansson.h>

#include "kube/kube.h"
#include "util/err.h"

#define CF_RECONCILE_DEFAULT_RESYNC_S 60 /* Infisical's default resync interval */

struct cf_reconcile_config {
    const char
        *default_host_api;      /* used when spec.hostAPI is absent; NULL: the field is required */
    const char *coffer_ca_file; /* CA bundle for https hostAPI; NULL: the system CAs */
};

/* Reconciles object (an InfisicalSecret as the API server returns it; borrowed) at now_ms.
 * *resync_s receives the interval after which it should be reconciled again (also on failure, so
 * that a fixed Coffer or Secret is picked up). CF_OK when every managed Secret is up to date;
 * otherwise the failure's code with err naming it (the same text went to status.conditions). */
enum cf_rc cf_reconcile(struct cf_kube *kube, const struct cf_reconcile_config *config,
                        json_t *object, int64_t now_ms, int64_t *resync_s, struct cf_err *err);

#endif
