/* The store's part of single sign-on's group sync (docs/users.md "Groups from the identity
 * provider"): a user signing in is made a member of exactly those Coffer groups whose external id
 * (user_groups.external_id: an Entra ID group object id, or a group name of another provider) the
 * provider names now, and leaves the groups with an external id it no longer names. Groups made in
 * Coffer (no external id) are never touched, nor groups the provider names that Coffer lacks. */
#ifndef CF_STORE_GROUP_SYNC_H
#define CF_STORE_GROUP_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

#define CF_GROUP_SYNC_NAMES_MAX 512 /* characters of the joined and left group names noted */

/* What a sync changed: counts, and the names of the groups joined and left, comma-separated (cut
 * with "..." past CF_GROUP_SYNC_NAMES_MAX), for the audit record and the log. */
struct cf_group_sync_result {
    size_t joined, left, kept;
    char joined_names[CF_GROUP_SYNC_NAMES_MAX];
    char left_names[CF_GROUP_SYNC_NAMES_MAX];
};

/* In one transaction: adds user_id to every group whose external id is one of external_ids (n of
 * them, borrowed; unknown ones are skipped) and removes it from every group with an external id
 * not among them, at now_ms. *out says what changed. CF_ESTORE, CF_EUNAVAIL. Thread-safe. */
enum cf_rc cf_store_user_groups_sync(struct cf_store *st, const char *user_id,
                                     char *const *external_ids, size_t n, int64_t now_ms,
                                     struct cf_group_sync_result *out, struct cf_err *err);

#endif
