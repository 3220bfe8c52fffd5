/* The matching engine of `coffer scan`. Every rule (scan/rules.h) and every known value (the
 * secrets read from a Coffer server, with their base64 and URL-encoded forms) is compiled into one
 * Hyperscan database, so that each byte is looked at once whatever the number of rules. Hyperscan
 * says which rule may match where; PCRE2 (JIT) is then run on that line only, for what Hyperscan
 * cannot give: the extent of the leftmost match, the capture group that is the secret, and the
 * rules (lookarounds) Hyperscan compiles only as a prefilter. Known values are literals whose
 * extent Hyperscan gives exactly: they need no second look.
 *
 * Input is streamed in chunks (CF_SCAN_CHUNK) with the unfinished last line (or, on a line longer
 * than CF_SCAN_CARRY_MAX, the last CF_SCAN_OVERLAP bytes) carried into the next chunk, so memory is
 * bounded whatever the input's size and a match across a chunk boundary is still found.
 *
 * An engine is immutable once made and may be shared by threads; each thread scans with a
 * scanner of its own. */
#ifndef CF_SCAN_ENGINE_H
#define CF_SCAN_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scan/rules.h"
#include "util/err.h"

#define CF_SCAN_CHUNK (1024 * 1024)
#define CF_SCAN_CARRY_MAX (64 * 1024)
#define CF_SCAN_OVERLAP (4 * 1024)
/* How many bytes at a file's start are looked at for a NUL byte, which makes it binary (git's
 * rule). */
#define CF_SCAN_BINARY_PROBE 8000
/* Values shorter than this are not matched as known values (they would match everywhere). */
#define CF_SCAN_KNOWN_MIN 8
/* The text that, on a line, makes the scanner ignore that line's findings. */
#define CF_SCAN_ALLOW_MARK "coffer:allow"

/* A known value. value is borrowed by cf_scan_engine_new only while it runs (the engine keeps it
 * only inside the Hyperscan database, whose memory is wiped on release); label names where it
 * lives ("project/env/path/KEY") and is copied. */
struct cf_scan_known {
    const char *value;
    size_t len;
    const char *label;
};

struct cf_scan_engine;
struct cf_scanner;

/* Compiles rules (borrowed; must outlive the engine) and known values into an engine. Known values
 * shorter than CF_SCAN_KNOWN_MIN are left out and counted in *known_skipped (may be NULL).
 * CF_EINVAL naming the rule whose regular expression neither Hyperscan nor PCRE2 compiles;
 * CF_ENOMEM. */
enum cf_rc cf_scan_engine_new(struct cf_scan_engine **out, const struct cf_scan_rules *rules,
                              const struct cf_scan_known *known, size_t nknown,
                              size_t *known_skipped, struct cf_err *err);
/* As cf_scan_engine_new without known values, with the compiled Hyperscan database kept in the
 * cache directory cache_dir (scan/dbcache.h; NULL: compiled, not cached): taken from there when it
 * holds this rule set's, else compiled and stored. */
enum cf_rc cf_scan_engine_new_cached(struct cf_scan_engine **out, const struct cf_scan_rules *rules,
                                     const char *cache_dir, struct cf_err *err);
void cf_scan_engine_free(struct cf_scan_engine *engine);

/* How many rules were compiled only as a Hyperscan prefilter (their matches confirmed by PCRE2
 * against the full expression). */
size_t cf_scan_engine_prefiltered(const struct cf_scan_engine *engine);

/* One finding, handed to the callback. Pointers are borrowed for the call only. */
struct cf_scan_hit {
    const struct cf_scan_rule *rule; /* NULL for a known value */
    const char *known_label;         /* for a known value: where it lives, else NULL */
    const char *encoding;            /* for a known value: "raw", "base64", "base64url", "url" */
    uint64_t line;                   /* 1-based */
    uint64_t column;                 /* 1-based, in bytes */
    uint64_t offset;                 /* of the match from the input's start */
    const char *secret;              /* the secret bytes (group 1, or the whole match) */
    size_t secret_len;
};

/* Called for each finding; a result other than CF_OK stops the scan and is returned. */
typedef enum cf_rc (*cf_scan_hit_fn)(const struct cf_scan_hit *hit, void *ctx);

/* Makes a scanner over engine (borrowed; must outlive it). CF_ENOMEM. */
enum cf_rc cf_scanner_new(struct cf_scanner **out, const struct cf_scan_engine *engine,
                          struct cf_err *err);
/* Wipes the scanner's buffers (they held scanned text) and frees it. NULL is a no-op. */
void cf_scanner_free(struct cf_scanner *scanner);

/* For tests: reads input in chunks of chunk bytes (at least 2 * CF_SCAN_OVERLAP, at most
 * CF_SCAN_CHUNK) instead of CF_SCAN_CHUNK. */
void cf_scanner_set_chunk(struct cf_scanner *scanner, size_t chunk);

/* Scans everything read from fd until end of file. With skip_binary, an input with a NUL byte in
 * its first CF_SCAN_BINARY_PROBE bytes is not scanned and *binary is set. *bytes (may be NULL)
 * receives how many bytes were scanned. CF_EIO naming what when reading fails (what: a path or
 * "standard input"); the callback's error. */
enum cf_rc cf_scanner_fd(struct cf_scanner *scanner, int fd, const char *what, bool skip_binary,
                         bool *binary, uint64_t *bytes, cf_scan_hit_fn fn, void *ctx,
                         struct cf_err *err);

/* Scans data[0..len-1] (text already in memory: a git blob or the added lines of a diff). */
enum cf_rc cf_scanner_mem(struct cf_scanner *scanner, const char *data, size_t len,
                          cf_scan_hit_fn fn, void *ctx, struct cf_err *err);

/* Whether data[0..len-1] has a NUL byte in its first CF_SCAN_BINARY_PROBE bytes. */
bool cf_scan_is_binary(const char *data, size_t len);

#endif
