/* Leader election through a coordination.k8s.io/v1 Lease, so that of several operator replicas
 * only one writes. The algorithm is client-go's (tools/leaderelection): a candidate creates the
 * Lease when it is missing; the holder renews spec.renewTime; another candidate takes the Lease
 * over only when it has seen the same record (holder and renewTime) unchanged for
 * leaseDurationSeconds by its own clock, so that clock skew between replicas does not matter.
 * Every write carries the resourceVersion read, so two candidates racing for the Lease cannot both
 * win: the loser gets 409 Conflict and stays a follower.
 *
 * Not thread-safe: one struct cf_lease per operator, used by its loop. */
#ifndef CF_KUBE_LEASE_H
#define CF_KUBE_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "kube/kube.h"
#include "util/err.h"

#define CF_LEASE_IDENTITY_MAX 128
#define CF_LEASE_NAME_MAX 254

struct cf_lease {
    char namespace_[CF_LEASE_NAME_MAX];
    char name[CF_LEASE_NAME_MAX];
    char identity[CF_LEASE_IDENTITY_MAX]; /* this replica's holderIdentity */
    int64_t duration_s;                   /* leaseDurationSeconds written and honoured */
    /* What this replica last saw, and when by its clock (cf_now_ms). */
    char observed[2 * CF_LEASE_IDENTITY_MAX];
    int64_t observed_at_ms;
    bool leader;
};

/* One election round at now_ms: reads the Lease and creates, renews or takes it over as described
 * above. Sets lease->leader. CF_OK after the round, whatever its outcome; CF_EIO (err says why)
 * when the API server could not be asked or refused for another reason than a lost race; the
 * caller then stays a follower until the next round (lease->leader false). */
enum cf_rc cf_lease_step(struct cf_kube *kube, struct cf_lease *lease, int64_t now_ms,
                         struct cf_err *err);

/* Gives the Lease up at shutdown (holderIdentity emptied, so that a successor does not wait for it
 * to expire) when this replica holds it. Best effort. */
void cf_lease_release(struct cf_kube *kube, struct cf_lease *lease, int64_t now_ms);

#endif
