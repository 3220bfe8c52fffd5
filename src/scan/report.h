/* The findings of one `coffer scan` run and their outputs. A finding never holds the secret: only
 * its redaction (first and last two characters) and a fingerprint (a BLAKE2b hash of the rule,
 * the path and the secret) by which a baseline file accepts it. Outputs: text lines, JSON, and
 * SARIF 2.1.0 for code-scanning views. cf_scan_report_add may be called from several threads. */
#ifndef CF_SCAN_REPORT_H
#define CF_SCAN_REPORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "scan/engine.h"
#include "scan/rules.h"
#include "util/err.h"

/* 16 bytes of BLAKE2b in hex, and the NUL */
#define CF_SCAN_FINGERPRINT_LEN 33
/* The most findings a run records (more are counted, not kept). */
#define CF_SCAN_FINDINGS_MAX 100000

/* Where a finding was made in git history (cf_scan_report_add's commit; NULL outside history). */
struct cf_scan_commit {
    const char *id;     /* full hex id, or "staged" */
    const char *author; /* name */
    const char *email;
    const char *date; /* ISO 8601, UTC */
};

struct cf_scan_finding {
    char *rule_id;
    char *description;
    char *path;
    uint64_t line;
    uint64_t column;
    char *redacted;
    char fingerprint[CF_SCAN_FINGERPRINT_LEN];
    char *known_label;    /* the Coffer secret (project/env/path/KEY), or NULL */
    char *known_encoding; /* how it appeared ("raw", "base64", ...), or NULL */
    char *commit, *author, *email, *date;
    char *action; /* what was done about it (a known value marked leaked, ...), or NULL */
    /* for ordering and overlaps only: the commit's rank in the run (0 outside history), the
       secret's offset and length in the scanned text, and whether its rule is generic */
    uint64_t commit_rank, offset, length;
    bool generic;
};

/* The compiled path allow lists of a rule set (cf_scan_report_use_rules). */
struct cf_scan_path_allow;

struct cf_scan_report {
    pthread_mutex_t lock;
    const struct cf_scan_rules *rules;     /* NULL, or the set whose path allow lists apply */
    struct cf_scan_path_allow *path_allow; /* NULL when none */
    size_t path_allowed;                   /* findings dropped by a path allow list (under lock) */
    struct cf_scan_finding *items;
    size_t count, cap;
    size_t dropped;   /* over CF_SCAN_FINDINGS_MAX */
    size_t baselined; /* accepted by the baseline */
    char **baseline;  /* sorted fingerprints */
    size_t nbaseline;
    /* totals the caller keeps (under lock when threads run) */
    uint64_t files, bytes, binary_skipped, commits;
    size_t known_values, known_skipped;
};

enum cf_scan_format { CF_SCAN_TEXT, CF_SCAN_JSON, CF_SCAN_SARIF };

/* Initialises an empty report. CF_EINTERNAL when the mutex cannot be made. */
enum cf_rc cf_scan_report_init(struct cf_scan_report *report, struct cf_err *err);
void cf_scan_report_release(struct cf_scan_report *report);

/* Applies the path allow lists of rules (borrowed; must outlive the report; the engine's set): a
 * finding of a rule in a file whose path (without a leading "./") matches one of the rule's
 * allow_paths or the set's is not recorded (counted in path_allowed). Known values are always
 * recorded. CF_EINVAL naming the rule and the expression that does not compile; CF_ENOMEM. */
enum cf_rc cf_scan_report_use_rules(struct cf_scan_report *report,
                                    const struct cf_scan_rules *rules, struct cf_err *err);

/* Reads a baseline: a JSON report of an earlier run (--output json), whose findings'
 * fingerprints are accepted. CF_EINVAL naming the file and the problem; CF_EIO; CF_ENOMEM. */
enum cf_rc cf_scan_report_load_baseline(struct cf_scan_report *report, const char *path,
                                        struct cf_err *err);

/* Records hit (found in path; commit may be NULL) unless the baseline accepts it. Thread-safe.
 * CF_ENOMEM. */
enum cf_rc cf_scan_report_add(struct cf_scan_report *report, const struct cf_scan_hit *hit,
                              const char *path, const struct cf_scan_commit *commit);

/* Sorts the findings by commit (in the order scanned), path, line, column and rule, and drops a
 * generic rule's finding whose secret overlaps another rule's finding in the same file. Call once,
 * after the scan. */
void cf_scan_report_finish(struct cf_scan_report *report);

/* Sets the action of every finding of the Coffer secret known_label to a copy of action (text,
 * "action" in JSON, properties.action in SARIF). Call after cf_scan_report_finish. CF_ENOMEM. */
enum cf_rc cf_scan_report_set_action(struct cf_scan_report *report, const char *known_label,
                                     const char *action);

/* Writes the findings to out in format; rules (borrowed) describe the SARIF driver's rules.
 * CF_ENOMEM / CF_EIO. */
enum cf_rc cf_scan_report_write(const struct cf_scan_report *report, enum cf_scan_format format,
                                const struct cf_scan_rules *rules, FILE *out, struct cf_err *err);

/* Writes secret[0..len-1] redacted into out (size >= 16): its first and last two characters
 * around "...", or "****" for a secret shorter than 8 bytes. Control and non-ASCII bytes are
 * shown as '?'. */
void cf_scan_redact(const char *secret, size_t len, char *out, size_t size);

/* The fingerprint of a finding of rule_id in path with secret[0..len-1], as hex into out. */
void cf_scan_fingerprint(const char *rule_id, const char *path, const char *secret, size_t len,
                         char out[CF_SCAN_FINGERPRINT_LEN]);

#endif
