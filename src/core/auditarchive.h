/* Audit retention (docs/audit.md "Retention"): events older than the retention are written to an
 * archive file, signed and compressed, and then deleted from the store in one transaction that
 * also moves the anchor (the last archived event's seq and hash, signed) from which the live chain
 * goes on.
 *
 * An archive file, DIR/audit-FIRST-LAST.jsonl.gz (seqs in 12 digits), is gzip over JSON lines:
 *   {"type":"coffer-audit-archive","version":1,"firstSeq":F,"prevHash":HEX}
 *   one line per event, as the API shows it (core/render.h cf_audit_event_write), F..L in order
 *   {"type":"end","lastSeq":L,"lastHash":HEX,"events":N}
 *   {"type":"signature","signature":BASE64}
 * the signature being the audit key's Ed25519 signature over every byte before its line
 * (core/audit.h cf_audit_archive_sign). prevHash of the first event links the file to the one
 * before it (zeros for event 1); lastHash to the next file or to the live chain.
 *
 * Crash safety: the file is complete and durable (temp file, fsync, rename, directory fsync)
 * before the transaction deletes its events; a run interrupted before the commit leaves a file
 * above the anchor, which the next run deletes and writes again. One server at a time archives (a
 * claim with a two-minute lease in the store, on the server's clock), and the commit moves the
 * anchor only from where the run found it, so an event is never deleted twice nor deleted without
 * its file. */
#ifndef CF_CORE_AUDITARCHIVE_H
#define CF_CORE_AUDITARCHIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/audit.h"
#include "store/store.h"
#include "util/err.h"

#define CF_AUDIT_ARCHIVE_DIR "audit-archive" /* in the data directory, unless configured */

struct cf_audit_archive_run {
    struct cf_store *store;           /* borrowed */
    const struct cf_audit_keys *keys; /* borrowed */
    const char *dir;                  /* the archive directory; made (0700) when missing */
    const char *owner;                /* the claim's owner: a UUID per server process */
    int64_t older_than_us;            /* events with time_us below this are archived */
    int64_t now_us;
    /* results */
    int64_t archived;            /* events archived by this run */
    int64_t first_seq, last_seq; /* their range (when archived > 0) */
    bool more;                   /* a file filled up: more events are due at once */
};

/* Archives one file's worth of due events (at most 10,000 events; the newest event of the log is
 * always kept, so that the chain's end stays in the store). Does nothing when another server
 * holds the claim. Every event is checked (its hash, its link) before it is archived: a log that
 * does not verify is not archived (CF_EVALIDATION naming the event). CF_ECONFLICT when another
 * server archived meanwhile (the file written is then left for the operator; it holds the same
 * events). CF_EIO naming the file. Not thread-safe for one run struct. */
enum cf_rc cf_audit_archive(struct cf_audit_archive_run *run, struct cf_err *err);

#endif
