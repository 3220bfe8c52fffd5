/* Kubernetes auth login: a machine identity logs in with a Kubernetes service account
 * token, which the server has the cluster's TokenReview API check, and receives an access token
 * (auth/token.h) with auth method "kubernetes-auth". Failed logins are throttled per (source
 * address, identity id) and per source address, with the same throttles as universal auth. */
#ifndef CF_AUTH_K8S_AUTH_H
#define CF_AUTH_K8S_AUTH_H

#include "auth/login.h"

#define CF_K8S_TIMEOUT_MS 4000
#define CF_K8S_RESPONSE_MAX (64 * 1024)

/* Logs in. now is in Unix milliseconds. The TokenReview is POSTed to <kubernetesHost>/apis/
 * authentication.k8s.io/v1/tokenreviews (https, or http to a loopback host; a host without a scheme
 * gets https://) with the reviewer JWT, or jwt itself, as bearer; the configuration's CA is
 * trusted when set. Refusals: CF_ENOTFOUND "Kubernetes auth method not found for identity, did you
 * configure Kubernetes auth?", CF_EUNAUTH "Kubernetes token not authenticated: <why>", "namespace N
 * not allowed", "service account N not allowed", "audience A not allowed", or "Kubernetes
 * TokenReview failed: <reason>"; CF_ERATELIMIT and out->subject_known as cf_jwt_login. The tokens
 * never enter a message. */
enum cf_rc cf_k8s_login(struct cf_store *st, struct cf_keyring *kr,
                        const struct cf_login_throttles *throttles, const char *identity_id,
                        const char *jwt, const char *client_ip, int64_t now,
                        struct cf_login_result *out, struct cf_err *err);

#endif
