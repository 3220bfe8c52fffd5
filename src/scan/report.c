/* Findings, baseline and the text, JSON and SARIF 2.1.0 outputs of `coffer scan`. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <sodium.h>

#include "scan/report.h"
#include "util/banned.h"

/* The rule id and text given to known-value findings. */
#define KNOWN_RULE_ID "coffer-known-value"
#define KNOWN_RULE_TEXT "value of a secret stored in Coffer"

enum cf_rc cf_scan_report_init(struct cf_scan_report *report, struct cf_err *err)
{
    memset(report, 0, sizeof(*report));
    if (pthread_mutex_init(&report->lock, NULL) != 0)
        return cf_err_set(err, CF_EINTERNAL, "cannot make a mutex");
    return CF_OK;
}

struct cf_scan_path_allow {
    pcre2_code **global; /* the set's */
    size_t nglobal;
    pcre2_code ***per_rule; /* [rule index][i] */
    size_t *nper_rule;
    pcre2_code **only; /* [rule index]: the rule's path (it reports only there), or NULL */
    size_t nrules;
};

static void path_allow_free(struct cf_scan_path_allow *pa)
{
    if (!pa)
        return;
    for (size_t i = 0; i < pa->nglobal; i++)
        pcre2_code_free(pa->global[i]);
    free(pa->global);
    for (size_t r = 0; pa->per_rule && r < pa->nrules; r++) {
        for (size_t i = 0; i < pa->nper_rule[r]; i++)
            pcre2_code_free(pa->per_rule[r][i]);
        free(pa->per_rule[r]);
    }
    for (size_t r = 0; pa->only && r < pa->nrules; r++)
        pcre2_code_free(pa->only[r]);
    free(pa->per_rule);
    free(pa->nper_rule);
    free(pa->only);
    free(pa);
}

/* Compiles exprs[0..n-1] into *out (n entries); what names whose they are in an error. On failure
 * *out is NULL (what was compiled is freed). */
static enum cf_rc compile_paths(char *const *exprs, size_t n, const char *what, pcre2_code ***out,
                                struct cf_err *err)
{
    *out = calloc(n ? n : 1, sizeof(**out));
    if (!*out)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int code = 0;
        PCRE2_SIZE offset = 0;
        (*out)[i] = pcre2_compile((PCRE2_SPTR)exprs[i], PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code,
                                  &offset, NULL);
        if (!(*out)[i]) {
            PCRE2_UCHAR message[160];
            pcre2_get_error_message(code, message, sizeof(message));
            for (size_t j = 0; j < i; j++)
                pcre2_code_free((*out)[j]);
            free(*out);
            *out = NULL;
            return cf_err_set(err, CF_EINVAL,
                              "%s: path expression '%.80s' does not compile at offset "
                              "%zu: %s",
                              what, exprs[i], (size_t)offset, (const char *)message);
        }
    }
    return CF_OK;
}

enum cf_rc cf_scan_report_use_rules(struct cf_scan_report *report,
                                    const struct cf_scan_rules *rules, struct cf_err *err)
{
    bool any = rules->nallow_paths > 0;
    for (size_t r = 0; r < rules->count && !any; r++)
        any = rules->items[r].nallow_paths > 0 || rules->items[r].path;
    report->rules = rules;
    if (!any)
        return CF_OK;
    struct cf_scan_path_allow *pa = calloc(1, sizeof(*pa));
    enum cf_rc rc = CF_OK;
    if (!pa)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    pa->per_rule = calloc(rules->count ? rules->count : 1, sizeof(*pa->per_rule));
    pa->nper_rule = calloc(rules->count ? rules->count : 1, sizeof(*pa->nper_rule));
    pa->only = calloc(rules->count ? rules->count : 1, sizeof(*pa->only));
    if (!pa->per_rule || !pa->nper_rule || !pa->only) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    pa->nrules = rules->count;
    rc = compile_paths(rules->allow_paths, rules->nallow_paths, "the global allow list",
                       &pa->global, err);
    if (rc == CF_OK)
        pa->nglobal = rules->nallow_paths;
    for (size_t r = 0; rc == CF_OK && r < rules->count; r++) {
        char what[CF_SCAN_RULE_ID_MAX + 32];
        snprintf(what, sizeof(what), "rule '%s'", rules->items[r].id);
        rc = compile_paths(rules->items[r].allow_paths, rules->items[r].nallow_paths, what,
                           &pa->per_rule[r], err);
        if (rc == CF_OK)
            pa->nper_rule[r] = rules->items[r].nallow_paths;
        pcre2_code **only = NULL;
        snprintf(what, sizeof(what), "rule '%s', its path", rules->items[r].id);
        if (rc == CF_OK && rules->items[r].path &&
            (rc = compile_paths((char *const *)&rules->items[r].path, 1, what, &only, err)) ==
                CF_OK) {
            pa->only[r] = only[0];
            free(only);
        }
    }
out:
    if (rc != CF_OK) {
        path_allow_free(pa);
        return rc;
    }
    report->path_allow = pa;
    return CF_OK;
}

static bool any_match(pcre2_code *const *codes, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(codes[i], NULL);
        int rc = md ? pcre2_match(codes[i], (PCRE2_SPTR)path, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL)
                    : -1;
        pcre2_match_data_free(md);
        if (rc >= 0)
            return true;
    }
    return false;
}

/* Whether a finding of rule in path is dropped: by a path allow list, or because the rule's path
 * (gitleaks' "path") does not match. */
static bool path_allowed(const struct cf_scan_report *report, const struct cf_scan_rule *rule,
                         const char *path)
{
    const struct cf_scan_path_allow *pa = report->path_allow;
    if (!pa || !rule || !report->rules)
        return false;
    if (path[0] == '.' && path[1] == '/')
        path += 2;
    size_t index = (size_t)(rule - report->rules->items);
    if (index < pa->nrules && pa->only[index] && !any_match(&pa->only[index], 1, path))
        return true; /* the rule looks at other files only */
    return any_match(pa->global, pa->nglobal, path) ||
           (index < pa->nrules && any_match(pa->per_rule[index], pa->nper_rule[index], path));
}

static void finding_release(struct cf_scan_finding *f)
{
    free(f->rule_id);
    free(f->description);
    free(f->path);
    free(f->redacted);
    free(f->known_label);
    free(f->known_encoding);
    free(f->commit);
    free(f->author);
    free(f->email);
    free(f->date);
    free(f->action);
}

void cf_scan_report_release(struct cf_scan_report *report)
{
    for (size_t i = 0; i < report->count; i++)
        finding_release(&report->items[i]);
    free(report->items);
    for (size_t i = 0; i < report->nbaseline; i++)
        free(report->baseline[i]);
    free(report->baseline);
    path_allow_free(report->path_allow);
    pthread_mutex_destroy(&report->lock);
    memset(report, 0, sizeof(*report));
}

void cf_scan_redact(const char *secret, size_t len, char *out, size_t size)
{
    char shown[8];
    if (len < 8) {
        snprintf(out, size, "****");
        return;
    }
    const char picks[4] = {secret[0], secret[1], secret[len - 2], secret[len - 1]};
    for (size_t i = 0; i < 4; i++) {
        unsigned char c = (unsigned char)picks[i];
        shown[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    snprintf(out, size, "%c%c...%c%c", shown[0], shown[1], shown[2], shown[3]);
    sodium_memzero(shown, sizeof(shown));
}

void cf_scan_fingerprint(const char *rule_id, const char *path, const char *secret, size_t len,
                         char out[CF_SCAN_FINGERPRINT_LEN])
{
    unsigned char hash[16];
    crypto_generichash_state state;
    crypto_generichash_init(&state, NULL, 0, sizeof(hash));
    crypto_generichash_update(&state, (const unsigned char *)rule_id, strlen(rule_id) + 1);
    crypto_generichash_update(&state, (const unsigned char *)path, strlen(path) + 1);
    crypto_generichash_update(&state, (const unsigned char *)secret, len);
    crypto_generichash_final(&state, hash, sizeof(hash));
    sodium_bin2hex(out, CF_SCAN_FINGERPRINT_LEN, hash, sizeof(hash));
    sodium_memzero(&state, sizeof(state));
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

enum cf_rc cf_scan_report_load_baseline(struct cf_scan_report *report, const char *path,
                                        struct cf_err *err)
{
    json_error_t jerr;
    enum cf_rc rc = CF_OK;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        if (jerr.position == 0 && jerr.line <= 0)
            return cf_err_set(err, CF_EIO, "cannot read baseline '%s': %s", path, jerr.text);
        return cf_err_set(err, CF_EINVAL, "baseline '%s' is not JSON (line %d: %s)", path,
                          jerr.line, jerr.text);
    }
    json_t *findings = json_object_get(root, "findings");
    if (!json_is_array(findings)) {
        rc = cf_err_set(err, CF_EINVAL,
                        "baseline '%s' has no 'findings' list (make one with --output json)", path);
        goto out;
    }
    size_t n = json_array_size(findings), i;
    json_t *item;
    report->baseline = calloc(n ? n : 1, sizeof(char *));
    if (!report->baseline) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    json_array_foreach(findings, i, item)
    {
        const char *fp = json_string_value(json_object_get(item, "fingerprint"));
        if (!fp || strlen(fp) != CF_SCAN_FINGERPRINT_LEN - 1) {
            rc = cf_err_set(err, CF_EINVAL, "baseline '%s': finding %zu has no valid 'fingerprint'",
                            path, i + 1);
            goto out;
        }
        if (!(report->baseline[report->nbaseline] = strdup(fp))) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        report->nbaseline++;
    }
    qsort(report->baseline, report->nbaseline, sizeof(char *), compare_strings);
out:
    json_decref(root);
    return rc;
}

static char *dup_opt(const char *text, bool *ok)
{
    if (!text)
        return NULL;
    char *copy = strdup(text);
    if (!copy)
        *ok = false;
    return copy;
}

enum cf_rc cf_scan_report_add(struct cf_scan_report *report, const struct cf_scan_hit *hit,
                              const char *path, const struct cf_scan_commit *commit)
{
    struct cf_scan_finding f = {0};
    char redacted[32];
    const char *rule_id = hit->rule ? hit->rule->id : KNOWN_RULE_ID;
    bool ok = true;
    enum cf_rc rc = CF_OK;

    if (path_allowed(report, hit->rule, path)) {
        pthread_mutex_lock(&report->lock);
        report->path_allowed++;
        pthread_mutex_unlock(&report->lock);
        return CF_OK;
    }

    cf_scan_fingerprint(rule_id, path, hit->secret, hit->secret_len, f.fingerprint);
    const char *key = f.fingerprint;
    pthread_mutex_lock(&report->lock);
    if (report->nbaseline &&
        bsearch(&key, report->baseline, report->nbaseline, sizeof(char *), compare_strings)) {
        report->baselined++;
        goto out;
    }
    if (report->count >= CF_SCAN_FINDINGS_MAX) {
        report->dropped++;
        goto out;
    }
    cf_scan_redact(hit->secret, hit->secret_len, redacted, sizeof(redacted));
    f.rule_id = dup_opt(rule_id, &ok);
    f.description = dup_opt(hit->rule ? hit->rule->description : KNOWN_RULE_TEXT, &ok);
    f.path = dup_opt(path, &ok);
    f.redacted = dup_opt(redacted, &ok);
    f.known_label = dup_opt(hit->known_label, &ok);
    f.known_encoding = dup_opt(hit->encoding, &ok);
    f.line = hit->line;
    f.column = hit->column;
    f.offset = hit->offset;
    f.length = hit->secret_len;
    f.generic = hit->rule && hit->rule->generic;
    f.commit_rank = commit ? report->commits : 0;
    if (commit) {
        f.commit = dup_opt(commit->id, &ok);
        f.author = dup_opt(commit->author, &ok);
        f.email = dup_opt(commit->email, &ok);
        f.date = dup_opt(commit->date, &ok);
    }
    if (ok && report->count == report->cap) {
        size_t cap = report->cap ? report->cap * 2 : 64;
        struct cf_scan_finding *grown = realloc(report->items, cap * sizeof(*grown));
        if (grown) {
            report->items = grown;
            report->cap = cap;
        } else
            ok = false;
    }
    if (!ok) {
        finding_release(&f);
        rc = CF_ENOMEM;
        goto out;
    }
    report->items[report->count++] = f;
out:
    pthread_mutex_unlock(&report->lock);
    return rc;
}

static int compare_findings(const void *a, const void *b)
{
    const struct cf_scan_finding *x = a, *y = b;
    if (x->commit_rank != y->commit_rank)
        return x->commit_rank < y->commit_rank ? -1 : 1;
    int c = strcmp(x->path, y->path);
    if (c)
        return c;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->column != y->column)
        return x->column < y->column ? -1 : 1;
    return strcmp(x->rule_id, y->rule_id);
}

static bool same_place_overlap(const struct cf_scan_finding *x, const struct cf_scan_finding *y)
{
    return x->commit_rank == y->commit_rank && strcmp(x->path, y->path) == 0 &&
           x->offset < y->offset + y->length && y->offset < x->offset + x->length;
}

void cf_scan_report_finish(struct cf_scan_report *report)
{
    size_t kept = 0;
    if (report->count == 0)
        return;
    qsort(report->items, report->count, sizeof(*report->items), compare_findings);
    for (size_t i = 0; i < report->count; i++) {
        struct cf_scan_finding *f = &report->items[i];
        bool covered = false;
        /* findings of one file are adjacent and ordered by line: look at the neighbours on the
           same line */
        for (size_t j = i; j-- > 0 && !covered && report->items[j].line == f->line;)
            covered = f->generic && !report->items[j].generic && !report->items[j].known_label &&
                      same_place_overlap(f, &report->items[j]);
        for (size_t j = i + 1; j < report->count && !covered && report->items[j].line == f->line;
             j++)
            covered = f->generic && !report->items[j].generic && !report->items[j].known_label &&
                      same_place_overlap(f, &report->items[j]);
        if (covered)
            finding_release(f);
        else
            report->items[kept++] = *f;
    }
    report->count = kept;
}

enum cf_rc cf_scan_report_set_action(struct cf_scan_report *report, const char *known_label,
                                     const char *action)
{
    for (size_t i = 0; i < report->count; i++) {
        struct cf_scan_finding *f = &report->items[i];
        if (!f->known_label || strcmp(f->known_label, known_label) != 0)
            continue;
        char *copy = strdup(action);
        if (!copy)
            return CF_ENOMEM;
        free(f->action);
        f->action = copy;
    }
    return CF_OK;
}

/* ---- outputs --------------------------------------------------------------------------------- */

/* Writes text with control characters shown as '?', so that a file name cannot drive the
   terminal. */
static void put_clean(FILE *out, const char *text)
{
    for (const unsigned char *c = (const unsigned char *)text; *c; c++)
        fputc((*c < 0x20 || *c == 0x7f) ? '?' : *c, out);
}

static void write_text(const struct cf_scan_report *report, FILE *out)
{
    for (size_t i = 0; i < report->count; i++) {
        const struct cf_scan_finding *f = &report->items[i];
        put_clean(out, f->path);
        fprintf(out, ":%llu:%llu: %s: ", (unsigned long long)f->line, (unsigned long long)f->column,
                f->rule_id);
        if (f->known_label) {
            fputs("value of Coffer secret '", out);
            put_clean(out, f->known_label);
            fprintf(out, "' (%s)", f->known_encoding);
        } else
            put_clean(out, f->description);
        fprintf(out, ": %s", f->redacted);
        if (f->commit) {
            fprintf(out, " [commit %.12s by ", f->commit);
            put_clean(out, f->author ? f->author : "");
            fputs(" <", out);
            put_clean(out, f->email ? f->email : "");
            fprintf(out, "> on %s]", f->date ? f->date : "");
        }
        if (f->action) {
            fputs(" [", out);
            put_clean(out, f->action);
            fputc(']', out);
        }
        fputc('\n', out);
    }
}

static int set_str(json_t *obj, const char *key, const char *value)
{
    return value ? json_object_set_new(obj, key, json_string(value)) : 0;
}

static json_t *finding_json(const struct cf_scan_finding *f)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = set_str(o, "ruleId", f->rule_id) | set_str(o, "description", f->description) |
              set_str(o, "path", f->path) |
              json_object_set_new(o, "line", json_integer((json_int_t)f->line)) |
              json_object_set_new(o, "column", json_integer((json_int_t)f->column)) |
              set_str(o, "secret", f->redacted) | set_str(o, "fingerprint", f->fingerprint) |
              set_str(o, "commit", f->commit) | set_str(o, "author", f->author) |
              set_str(o, "email", f->email) | set_str(o, "date", f->date) |
              set_str(o, "action", f->action);
    if (f->known_label) {
        bad |= json_object_set_new(o, "cofferSecret", json_string(f->known_label)) |
               json_object_set_new(o, "encoding", json_string(f->known_encoding));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *summary_json(const struct cf_scan_report *report)
{
    return json_pack("{sI sI sI sI sI sI sI sI sI}", "findings", (json_int_t)report->count, "files",
                     (json_int_t)report->files, "bytes", (json_int_t)report->bytes, "binarySkipped",
                     (json_int_t)report->binary_skipped, "commits", (json_int_t)report->commits,
                     "knownValues", (json_int_t)report->known_values, "knownValuesSkipped",
                     (json_int_t)report->known_skipped, "baselined", (json_int_t)report->baselined,
                     "dropped", (json_int_t)report->dropped);
}

static json_t *json_report(const struct cf_scan_report *report)
{
    json_t *root = json_object(), *list = json_array();
    json_t *summary = summary_json(report);
    if (!root || !list || !summary)
        goto fail;
    for (size_t i = 0; i < report->count; i++)
        if (json_array_append_new(list, finding_json(&report->items[i])))
            goto fail;
    if (json_object_set_new(root, "findings", list) ||
        json_object_set_new(root, "summary", summary)) {
        list = summary = NULL;
        goto fail;
    }
    return root;
fail:
    json_decref(list);
    json_decref(summary);
    json_decref(root);
    return NULL;
}

/* A relative path as a URI reference (RFC 3986): unreserved characters and '/' kept, every
   other byte percent-encoded. NULL when out of memory; free() it. */
static char *path_uri(const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(path);
    char *out = malloc(len * 3 + 1), *w = out;
    if (!out)
        return NULL;
    if (path[0] == '.' && path[1] == '/')
        path += 2;
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '.' || *c == '_' || *c == '~' || *c == '/')
            *w++ = (char)*c;
        else {
            *w++ = '%';
            *w++ = hex[*c >> 4];
            *w++ = hex[*c & 15];
        }
    }
    *w = '\0';
    return out;
}

static json_t *sarif_result(const struct cf_scan_finding *f, long rule_index)
{
    char message[512];
    char *uri = path_uri(f->path);
    json_t *result = NULL;
    if (!uri)
        return NULL;
    if (f->known_label)
        snprintf(message, sizeof(message), "The value of Coffer secret '%s' (%s): %s",
                 f->known_label, f->known_encoding, f->redacted);
    else
        snprintf(message, sizeof(message), "%s: %s", f->description, f->redacted);
    result = json_pack("{ss sI ss s{ss} s[{s{s{ss} s{sI sI}}}] s{ss}}", "ruleId", f->rule_id,
                       "ruleIndex", (json_int_t)rule_index, "level", "error", "message", "text",
                       message, "locations", "physicalLocation", "artifactLocation", "uri", uri,
                       "region", "startLine", (json_int_t)(f->line ? f->line : 1), "startColumn",
                       (json_int_t)(f->column ? f->column : 1), "partialFingerprints",
                       "cofferFingerprint/v1", f->fingerprint);
    if (result && (f->commit || f->action)) {
        json_t *props = f->commit
                            ? json_pack("{ss ss ss ss}", "commit", f->commit, "author",
                                        f->author ? f->author : "", "email",
                                        f->email ? f->email : "", "date", f->date ? f->date : "")
                            : json_object();
        if (!props || set_str(props, "action", f->action)) {
            json_decref(props);
            json_decref(result);
            result = NULL;
        } else if (json_object_set_new(result, "properties", props)) {
            json_decref(result);
            result = NULL;
        }
    }
    free(uri);
    return result;
}

static json_t *sarif_report(const struct cf_scan_report *report, const struct cf_scan_rules *rules)
{
    json_t *root = NULL, *driver_rules = json_array(), *results = json_array();
    if (!driver_rules || !results)
        goto fail;
    for (size_t i = 0; i <= rules->count; i++) {
        const char *id = i < rules->count ? rules->items[i].id : KNOWN_RULE_ID;
        const char *text = i < rules->count ? rules->items[i].description : KNOWN_RULE_TEXT;
        if (json_array_append_new(
                driver_rules, json_pack("{ss s{ss} s{ss}}", "id", id, "shortDescription", "text",
                                        text, "defaultConfiguration", "level", "error")))
            goto fail;
    }
    for (size_t i = 0; i < report->count; i++) {
        const struct cf_scan_finding *f = &report->items[i];
        long index = f->known_label ? (long)rules->count : cf_scan_rules_find(rules, f->rule_id);
        if (index < 0)
            index = (long)rules->count;
        if (json_array_append_new(results, sarif_result(f, index)))
            goto fail;
    }
    /* json_pack takes both lists (o), also when it fails */
    root = json_pack("{ss ss s[{s{s{ss ss so}} so}]}", "$schema",
                     "https://json.schemastore.org/sarif-2.1.0.json", "version", "2.1.0", "runs",
                     "tool", "driver", "name", "coffer scan", "version", COFFER_VERSION, "rules",
                     driver_rules, "results", results);
    return root;
fail:
    json_decref(driver_rules);
    json_decref(results);
    return NULL;
}

enum cf_rc cf_scan_report_write(const struct cf_scan_report *report, enum cf_scan_format format,
                                const struct cf_scan_rules *rules, FILE *out, struct cf_err *err)
{
    if (format == CF_SCAN_TEXT) {
        write_text(report, out);
    } else {
        json_t *root = format == CF_SCAN_JSON ? json_report(report) : sarif_report(report, rules);
        if (!root)
            return cf_err_set(err, CF_ENOMEM, "out of memory");
        int failed = json_dumpf(root, out, JSON_INDENT(2) | JSON_SORT_KEYS);
        json_decref(root);
        fputc('\n', out);
        if (failed)
            return cf_err_set(err, CF_EIO, "cannot write the report: %s", strerror(errno));
    }
    if (fflush(out) != 0 || ferror(out))
        return cf_err_set(err, CF_EIO, "cannot write the report: %s", strerror(errno));
    return CF_OK;
}
