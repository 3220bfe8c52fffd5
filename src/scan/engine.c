/* The matching engine: one Hyperscan block-mode database over every rule and known value, PCRE2
 * on the lines Hyperscan points at, and the chunked reader that keeps memory bounded. See
 * engine.h for the design. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hs/hs.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <sodium.h>

#include "scan/dbcache.h"
#include "scan/engine.h"
#include "util/banned.h"

/* Literal forms of a known value longer than this are cut to their first this-many bytes: a
 * prefix that long is as telling as the whole value, and stays within the chunk overlap. */
#define KNOWN_LITERAL_MAX 1024
/* The most literals one known value gives: raw, URL-encoded, base64 and base64url at three
 * alignments each. */
#define KNOWN_FORMS 8

struct compiled_rule {
    pcre2_code *re;
    pcre2_code **allow;
    size_t nallow;
    bool prefilter;
};

struct known_literal {
    size_t len;    /* of the literal as it appears in text */
    size_t source; /* index of the known value */
    const char *encoding;
};

struct cf_scan_engine {
    const struct cf_scan_rules *rules;
    struct compiled_rule *compiled;
    char **labels; /* per known value */
    size_t nlabels;
    struct known_literal *literals;
    size_t nliterals;
    hs_database_t *db;
    size_t prefiltered;
};

struct cf_scanner {
    const struct cf_scan_engine *engine;
    hs_scratch_t *scratch;
    pcre2_match_data *match;
    char *buf;
    size_t cap;
    size_t chunk;
    size_t *confirmed_upto; /* per rule: the end of the last window PCRE2 ran over */
    size_t *reported_end;   /* per rule: the end of the last match reported */
    /* the round being scanned */
    const char *data;
    size_t len;
    size_t cut;          /* matches starting at or after cut belong to the next round */
    uint64_t base;       /* offset of data[0] in the input */
    uint64_t line0;      /* line number of data[0] */
    uint64_t linestart0; /* input offset of the start of the line data[0] is on */
    size_t count_pos;    /* newline-count cursor: lines before data[count_pos] are counted */
    uint64_t count_line;
    cf_scan_hit_fn fn;
    void *ctx;
    enum cf_rc rc;
};

/* ---- wiping allocator for Hyperscan: its database holds the known values ----------------- */

#define HS_HEADER 64

static void *hs_wipe_alloc(size_t size)
{
    size_t total = size + HS_HEADER;
    total = (total + HS_HEADER - 1) / HS_HEADER * HS_HEADER;
    unsigned char *block = aligned_alloc(HS_HEADER, total);
    if (!block)
        return NULL;
    memcpy(block, &size, sizeof(size));
    return block + HS_HEADER;
}

static void hs_wipe_free(void *ptr)
{
    if (!ptr)
        return;
    unsigned char *block = (unsigned char *)ptr - HS_HEADER;
    size_t size;
    memcpy(&size, block, sizeof(size));
    sodium_memzero(ptr, size);
    free(block);
}

static pthread_once_t setup_once = PTHREAD_ONCE_INIT;
static bool sodium_ready;

/* One-time library set-up: Hyperscan's allocator, and libsodium (its guarded allocations hold the
   encoded forms of known values while they are made). */
static void library_setup(void)
{
    hs_set_allocator(hs_wipe_alloc, hs_wipe_free);
    sodium_ready = sodium_init() >= 0;
}

/* ---- compiling ------------------------------------------------------------------------------- */

static pcre2_code *compile_pcre(const char *regex, char *message, size_t size)
{
    int code;
    PCRE2_SIZE offset;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED, PCRE2_MULTILINE, &code,
                                   &offset, NULL);
    if (!re) {
        PCRE2_UCHAR text[160];
        pcre2_get_error_message(code, text, sizeof(text));
        snprintf(message, size, "%s at offset %zu", (const char *)text, (size_t)offset);
        return NULL;
    }
    /* Without JIT (an architecture PCRE2 has none for) the interpreter is used: slower, same
       results. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

/* Appends the Hyperscan expression matching bytes[0..len-1] literally. */
static char *literal_expression(const unsigned char *bytes, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char *out = malloc(len * 4 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        out[i * 4] = '\\';
        out[i * 4 + 1] = 'x';
        out[i * 4 + 2] = hex[bytes[i] >> 4];
        out[i * 4 + 3] = hex[bytes[i] & 15];
    }
    out[len * 4] = '\0';
    return out;
}

struct pattern_set {
    char **expressions;
    unsigned *flags;
    unsigned *ids;
    size_t count;
    size_t cap;
};

static void pattern_set_release(struct pattern_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        if (set->expressions[i]) {
            sodium_memzero(set->expressions[i], strlen(set->expressions[i]));
            free(set->expressions[i]);
        }
    }
    free(set->expressions);
    free(set->flags);
    free(set->ids);
}

/* Adds expression (taken) to set. */
static bool pattern_add(struct pattern_set *set, char *expression, unsigned flags, unsigned id)
{
    if (!expression)
        return false;
    if (set->count == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        char **e = realloc(set->expressions, cap * sizeof(*e));
        if (e)
            set->expressions = e;
        unsigned *f = realloc(set->flags, cap * sizeof(*f));
        if (f)
            set->flags = f;
        unsigned *d = realloc(set->ids, cap * sizeof(*d));
        if (d)
            set->ids = d;
        if (!e || !f || !d) {
            free(expression);
            return false;
        }
        set->cap = cap;
    }
    set->expressions[set->count] = expression;
    set->flags[set->count] = flags;
    set->ids[set->count] = id;
    set->count++;
    return true;
}

/* Writes percent-encoding of bytes into out (size >= 3 * len + 1): every byte but RFC 3986's
 * unreserved characters. */
static size_t url_encode(const unsigned char *bytes, size_t len, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = bytes[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~')
            out[n++] = (char)c;
        else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
    return n;
}

struct known_builder {
    struct cf_scan_engine *engine;
    struct pattern_set *set;
    unsigned id_base;
    size_t literal_cap;
};

/* Adds text[0..len-1] as a literal form of known value source, unless shorter than the minimum
 * or the same as a form already added for it (forms[0..*nforms-1]). */
static bool add_literal(struct known_builder *b, size_t source, const char *encoding,
                        const char *text, size_t len, char forms[][KNOWN_LITERAL_MAX + 1],
                        size_t *nforms)
{
    if (len > KNOWN_LITERAL_MAX)
        len = KNOWN_LITERAL_MAX;
    if (len < CF_SCAN_KNOWN_MIN)
        return true;
    for (size_t i = 0; i < *nforms; i++)
        if (strlen(forms[i]) == len && memcmp(forms[i], text, len) == 0)
            return true;
    memcpy(forms[*nforms], text, len);
    forms[*nforms][len] = '\0';
    (*nforms)++;
    struct cf_scan_engine *e = b->engine;
    if (e->nliterals == b->literal_cap) {
        size_t cap = b->literal_cap ? b->literal_cap * 2 : 64;
        struct known_literal *grown = realloc(e->literals, cap * sizeof(*grown));
        if (!grown)
            return false;
        e->literals = grown;
        b->literal_cap = cap;
    }
    e->literals[e->nliterals] = (struct known_literal){len, source, encoding};
    if (!pattern_add(b->set, literal_expression((const unsigned char *)text, len), 0,
                     b->id_base + (unsigned)e->nliterals))
        return false;
    e->nliterals++;
    return true;
}

/* The base64 forms of value as it appears inside a longer base64 text at each of the three
 * alignments: only the output characters that depend on the value's bytes alone. */
static bool add_base64_forms(struct known_builder *b, size_t source, const unsigned char *value,
                             size_t len, int variant, const char *encoding,
                             char forms[][KNOWN_LITERAL_MAX + 1], size_t *nforms)
{
    bool ok = true;
    size_t in_len = len > KNOWN_LITERAL_MAX ? KNOWN_LITERAL_MAX : len;
    size_t padded_len = in_len + 2;
    unsigned char *padded = sodium_malloc(padded_len);
    size_t out_size = sodium_base64_encoded_len(padded_len, variant);
    char *out = sodium_malloc(out_size);
    if (!padded || !out) {
        ok = false;
        goto out;
    }
    for (size_t shift = 0; shift < 3 && ok; shift++) {
        size_t total = shift + in_len;
        size_t groups = total / 3;
        if (groups < 2)
            continue;
        memset(padded, 0, shift);
        memcpy(padded + shift, value, in_len);
        sodium_bin2base64(out, out_size, padded, groups * 3, variant);
        size_t skip = shift ? 4 : 0;
        ok = add_literal(b, source, encoding, out + skip, groups * 4 - skip, forms, nforms);
    }
out:
    if (padded)
        sodium_free(padded);
    if (out)
        sodium_free(out);
    return ok;
}

static enum cf_rc add_known(struct known_builder *b, const struct cf_scan_known *known,
                            size_t nknown, size_t *skipped, struct cf_err *err)
{
    struct cf_scan_engine *e = b->engine;
    enum cf_rc rc = CF_OK;
    if (nknown == 0)
        return CF_OK;
    char(*forms)[KNOWN_LITERAL_MAX + 1] = sodium_malloc(KNOWN_FORMS * (KNOWN_LITERAL_MAX + 1));
    char *encoded = sodium_malloc(3 * KNOWN_LITERAL_MAX + 1);
    e->labels = calloc(nknown ? nknown : 1, sizeof(char *));
    if (!forms || !encoded || !e->labels) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nknown; i++) {
        const struct cf_scan_known *k = &known[i];
        size_t nforms = 0;
        if (k->len < CF_SCAN_KNOWN_MIN) {
            (*skipped)++;
            continue;
        }
        size_t source = e->nlabels;
        e->labels[source] = strdup(k->label ? k->label : "");
        if (!e->labels[source]) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        e->nlabels++;
        size_t cut = k->len > KNOWN_LITERAL_MAX ? KNOWN_LITERAL_MAX : k->len;
        size_t url_len = url_encode((const unsigned char *)k->value, cut, encoded);
        if (!add_literal(b, source, "raw", k->value, cut, forms, &nforms) ||
            !add_literal(b, source, "url", encoded, url_len, forms, &nforms) ||
            !add_base64_forms(b, source, (const unsigned char *)k->value, k->len,
                              sodium_base64_VARIANT_ORIGINAL_NO_PADDING, "base64", forms,
                              &nforms) ||
            !add_base64_forms(b, source, (const unsigned char *)k->value, k->len,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING, "base64url", forms,
                              &nforms)) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
    }
out:
    if (forms)
        sodium_free(forms);
    if (encoded)
        sodium_free(encoded);
    return rc;
}

/* Takes the database compiled from set out of the cache in dir (true), or compiles nothing and
 * says false. The key is of the expressions as first given, before any became a prefilter. */
static bool from_cache(struct cf_scan_engine *e, const struct pattern_set *set,
                       const hs_platform_info_t *platform, const char *dir,
                       uint8_t key[CF_SCAN_CACHE_KEY_BYTES])
{
    size_t nrules = e->rules->count;
    uint8_t *prefiltered = calloc(nrules ? nrules : 1, 1);
    bool ok = false;
    cf_scan_cache_key((const char *const *)set->expressions, set->flags, set->ids, set->count,
                      HS_MODE_BLOCK, platform, key);
    if (prefiltered && cf_scan_cache_load(dir, key, nrules, prefiltered, &e->db)) {
        for (size_t i = 0; i < nrules; i++)
            if (prefiltered[i]) {
                e->compiled[i].prefilter = true;
                e->prefiltered++;
            }
        ok = true;
    }
    free(prefiltered);
    return ok;
}

static void to_cache(const struct cf_scan_engine *e, const char *dir,
                     const uint8_t key[CF_SCAN_CACHE_KEY_BYTES])
{
    size_t nrules = e->rules->count;
    uint8_t *prefiltered = calloc(nrules ? nrules : 1, 1);
    char *bytes = NULL;
    size_t len = 0;
    if (prefiltered && hs_serialize_database(e->db, &bytes, &len) == HS_SUCCESS) {
        for (size_t i = 0; i < nrules; i++)
            prefiltered[i] = e->compiled[i].prefilter;
        (void)cf_scan_cache_store(dir, key, nrules, prefiltered, bytes, len);
    }
    free(prefiltered);
    hs_wipe_free(bytes); /* Hyperscan's misc allocator made it */
}

static enum cf_rc engine_new(struct cf_scan_engine **out, const struct cf_scan_rules *rules,
                             const struct cf_scan_known *known, size_t nknown,
                             size_t *known_skipped, const char *cache_dir, struct cf_err *err)
{
    uint8_t key[CF_SCAN_CACHE_KEY_BYTES];
    struct cf_scan_engine *e = NULL;
    struct pattern_set set = {0};
    hs_compile_error_t *cerr = NULL;
    size_t skipped = 0;
    enum cf_rc rc = CF_OK;
    char message[200];

    *out = NULL;
    pthread_once(&setup_once, library_setup);
    if (!sodium_ready)
        return cf_err_set(err, CF_EINTERNAL, "libsodium cannot be initialised");
    if (hs_valid_platform() != HS_SUCCESS)
        return cf_err_set(err, CF_EUNSUPPORTED,
                          "this processor lacks the instructions Hyperscan needs (SSSE3)");
    e = calloc(1, sizeof(*e));
    if (!e || !(e->compiled = calloc(rules->count ? rules->count : 1, sizeof(*e->compiled)))) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    e->rules = rules;
    for (size_t i = 0; i < rules->count; i++) {
        const struct cf_scan_rule *rule = &rules->items[i];
        struct compiled_rule *c = &e->compiled[i];
        c->re = compile_pcre(rule->regex, message, sizeof(message));
        if (!c->re) {
            rc = cf_err_set(err, CF_EINVAL, "rule '%s': regex does not compile: %s", rule->id,
                            message);
            goto out;
        }
        c->allow = calloc(rule->nallow ? rule->nallow : 1, sizeof(*c->allow));
        if (!c->allow) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t j = 0; j < rule->nallow; j++) {
            c->allow[j] = compile_pcre(rule->allow[j], message, sizeof(message));
            if (!c->allow[j]) {
                rc = cf_err_set(err, CF_EINVAL,
                                "rule '%s': allowlist entry %zu does not compile: %s", rule->id,
                                j + 1, message);
                goto out;
            }
            c->nallow = j + 1;
        }
        if (!pattern_add(&set, strdup(rule->prefilter ? rule->prefilter : rule->regex),
                         HS_FLAG_MULTILINE, (unsigned)i)) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
    }
    struct known_builder builder = {e, &set, (unsigned)rules->count, 0};
    rc = add_known(&builder, known, nknown, &skipped, err);
    if (rc != CF_OK)
        goto out;
    if (set.count == 0)
        goto done;
    /* tuned for this processor (the scan runs where it is compiled) */
    hs_platform_info_t platform;
    bool have_platform = hs_populate_platform(&platform) == HS_SUCCESS;
    /* a database holding known values (secrets) is never written anywhere */
    if (nknown > 0)
        cache_dir = NULL;
    if (cache_dir && from_cache(e, &set, have_platform ? &platform : NULL, cache_dir, key))
        goto done;
    /* Compile; an expression Hyperscan cannot take as such (a lookaround, a back-reference) is
       retried as a prefilter, whose matches PCRE2 confirms anyway. */
    for (;;) {
        if (hs_compile_multi((const char *const *)set.expressions, set.flags, set.ids,
                             (unsigned)set.count, HS_MODE_BLOCK, have_platform ? &platform : NULL,
                             &e->db, &cerr) == HS_SUCCESS)
            break;
        int at = cerr->expression;
        if (at >= 0 && (size_t)at < rules->count && !(set.flags[at] & HS_FLAG_PREFILTER)) {
            set.flags[at] |= HS_FLAG_PREFILTER;
            e->compiled[at].prefilter = true;
            e->prefiltered++;
            hs_free_compile_error(cerr);
            cerr = NULL;
            continue;
        }
        if (at >= 0 && (size_t)at < rules->count)
            rc = cf_err_set(err, CF_EINVAL, "rule '%s': Hyperscan cannot compile its regex: %s",
                            rules->items[at].id, cerr->message);
        else if (at >= 0)
            rc = cf_err_set(err, CF_EINVAL, "a known value cannot be compiled: %s", cerr->message);
        else
            rc = cf_err_set(err, CF_EINVAL, "the rules cannot be compiled together: %s",
                            cerr->message);
        goto out;
    }
    if (cache_dir)
        to_cache(e, cache_dir, key);
done:
    if (known_skipped)
        *known_skipped = skipped;
    *out = e;
    e = NULL;
out:
    if (cerr)
        hs_free_compile_error(cerr);
    pattern_set_release(&set);
    cf_scan_engine_free(e);
    return rc;
}

enum cf_rc cf_scan_engine_new(struct cf_scan_engine **out, const struct cf_scan_rules *rules,
                              const struct cf_scan_known *known, size_t nknown,
                              size_t *known_skipped, struct cf_err *err)
{
    return engine_new(out, rules, known, nknown, known_skipped, NULL, err);
}

enum cf_rc cf_scan_engine_new_cached(struct cf_scan_engine **out, const struct cf_scan_rules *rules,
                                     const char *cache_dir, struct cf_err *err)
{
    return engine_new(out, rules, NULL, 0, NULL, cache_dir, err);
}

void cf_scan_engine_free(struct cf_scan_engine *engine)
{
    if (!engine)
        return;
    if (engine->compiled) {
        for (size_t i = 0; i < engine->rules->count; i++) {
            struct compiled_rule *c = &engine->compiled[i];
            pcre2_code_free(c->re);
            for (size_t j = 0; j < c->nallow; j++)
                pcre2_code_free(c->allow[j]);
            free(c->allow);
        }
        free(engine->compiled);
    }
    for (size_t i = 0; i < engine->nlabels; i++)
        free(engine->labels[i]);
    free(engine->labels);
    free(engine->literals);
    hs_free_database(engine->db);
    free(engine);
}

size_t cf_scan_engine_prefiltered(const struct cf_scan_engine *engine)
{
    return engine->prefiltered;
}

/* ---- scanning -------------------------------------------------------------------------------- */

enum cf_rc cf_scanner_new(struct cf_scanner **out, const struct cf_scan_engine *engine,
                          struct cf_err *err)
{
    struct cf_scanner *s = calloc(1, sizeof(*s));
    size_t nrules = engine->rules->count ? engine->rules->count : 1;
    *out = NULL;
    if (!s)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    s->engine = engine;
    s->chunk = CF_SCAN_CHUNK;
    s->cap = CF_SCAN_CHUNK + CF_SCAN_CARRY_MAX;
    s->buf = malloc(s->cap);
    s->confirmed_upto = calloc(nrules, sizeof(size_t));
    s->reported_end = calloc(nrules, sizeof(size_t));
    /* room for the capture groups any rule can have */
    s->match = pcre2_match_data_create(64, NULL);
    if (!s->buf || !s->confirmed_upto || !s->reported_end || !s->match ||
        (engine->db && hs_alloc_scratch(engine->db, &s->scratch) != HS_SUCCESS)) {
        cf_scanner_free(s);
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    *out = s;
    return CF_OK;
}

void cf_scanner_free(struct cf_scanner *scanner)
{
    if (!scanner)
        return;
    if (scanner->buf) {
        sodium_memzero(scanner->buf, scanner->cap);
        free(scanner->buf);
    }
    free(scanner->confirmed_upto);
    free(scanner->reported_end);
    pcre2_match_data_free(scanner->match);
    hs_free_scratch(scanner->scratch);
    free(scanner);
}

void cf_scanner_set_chunk(struct cf_scanner *scanner, size_t chunk)
{
    if (chunk < 2 * CF_SCAN_OVERLAP)
        chunk = 2 * CF_SCAN_OVERLAP;
    if (chunk > CF_SCAN_CHUNK)
        chunk = CF_SCAN_CHUNK;
    scanner->chunk = chunk;
}

bool cf_scan_is_binary(const char *data, size_t len)
{
    return memchr(data, '\0', len < CF_SCAN_BINARY_PROBE ? len : CF_SCAN_BINARY_PROBE) != NULL;
}

/* Newlines in bytes[0..len-1]. Run over every chunk of a file but its last (the next chunk's line
 * numbers start where it ends), so it must stay far cheaper than the Hyperscan pass: SSE2 (every
 * x86-64 processor, as Hyperscan needs) compares 16 bytes at a time into per-byte counters that
 * are summed every 255 blocks, before they could overflow. */
static uint64_t count_newlines(const char *bytes, size_t len)
{
    uint64_t count = 0;
    size_t i = 0;
#ifdef __SSE2__
    const __m128i newline = _mm_set1_epi8('\n');
    while (len - i >= 16) {
        size_t blocks = (len - i) / 16;
        if (blocks > 255)
            blocks = 255;
        __m128i counters = _mm_setzero_si128();
        for (size_t b = 0; b < blocks; b++, i += 16) {
            __m128i block = _mm_loadu_si128((const __m128i *)(const void *)(bytes + i));
            /* a matching byte compares to 0xff, that is -1: subtracting counts it */
            counters = _mm_sub_epi8(counters, _mm_cmpeq_epi8(block, newline));
        }
        __m128i sums = _mm_sad_epu8(counters, _mm_setzero_si128());
        count += (uint64_t)_mm_cvtsi128_si64(sums) + (uint64_t)_mm_extract_epi16(sums, 4);
    }
#endif
    for (; i < len; i++)
        count += bytes[i] == '\n';
    return count;
}

/* The line number of data[pos] in the current round. */
static uint64_t line_at(struct cf_scanner *s, size_t pos)
{
    if (pos < s->count_pos) {
        s->count_pos = 0;
        s->count_line = s->line0;
    }
    s->count_line += count_newlines(s->data + s->count_pos, pos - s->count_pos);
    s->count_pos = pos;
    return s->count_line;
}

static size_t line_begin(const struct cf_scanner *s, size_t pos, size_t floor)
{
    const char *nl = pos > floor ? memrchr(s->data + floor, '\n', pos - floor) : NULL;
    return nl ? (size_t)(nl - s->data) + 1 : floor;
}

static size_t line_end(const struct cf_scanner *s, size_t pos, size_t ceiling)
{
    const char *nl = memchr(s->data + pos, '\n', ceiling - pos);
    return nl ? (size_t)(nl - s->data) : ceiling;
}

static bool contains(const char *hay, size_t hay_len, const char *needle, size_t needle_len)
{
    return needle_len <= hay_len && memmem(hay, hay_len, needle, needle_len) != NULL;
}

static bool contains_nocase(const char *hay, size_t hay_len, const char *lower_needle)
{
    size_t n = strlen(lower_needle);
    if (n == 0 || n > hay_len)
        return n == 0;
    for (size_t i = 0; i + n <= hay_len; i++) {
        size_t j = 0;
        while (j < n) {
            char c = hay[i + j];
            if (c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            if (c != lower_needle[j])
                break;
            j++;
        }
        if (j == n)
            return true;
    }
    return false;
}

/* Reports a match at data[start..end) whose secret is data[secret..secret+secret_len). */
static int emit(struct cf_scanner *s, const struct cf_scan_rule *rule,
                const struct known_literal *lit, size_t start, size_t secret, size_t secret_len)
{
    /* the line, bounded as PCRE2's windows are, for the inline allow mark */
    size_t ls = line_begin(s, start, start > CF_SCAN_OVERLAP ? start - CF_SCAN_OVERLAP : 0);
    size_t le_cap = secret + secret_len + CF_SCAN_OVERLAP;
    size_t le = line_end(s, secret + secret_len, le_cap < s->len ? le_cap : s->len);
    if (contains(s->data + ls, le - ls, CF_SCAN_ALLOW_MARK, strlen(CF_SCAN_ALLOW_MARK)))
        return 0;
    struct cf_scan_hit hit = {0};
    hit.rule = rule;
    if (lit) {
        hit.known_label = s->engine->labels[lit->source];
        hit.encoding = lit->encoding;
    }
    hit.line = line_at(s, start);
    size_t bol = line_begin(s, start, 0);
    if (bol == 0 && (s->line0 == hit.line))
        hit.column = s->base + start - s->linestart0 + 1;
    else
        hit.column = start - bol + 1;
    hit.offset = s->base + start;
    hit.secret = s->data + secret;
    hit.secret_len = secret_len;
    s->rc = s->fn(&hit, s->ctx);
    return s->rc == CF_OK ? 0 : 1;
}

static bool allowed_secret(const struct compiled_rule *c, pcre2_match_data *md, const char *secret,
                           size_t len)
{
    for (size_t i = 0; i < c->nallow; i++)
        if (pcre2_match(c->allow[i], (PCRE2_SPTR)secret, len, 0, 0, md, NULL) >= 0)
            return true;
    return false;
}

/* Runs rule r's PCRE2 over the line around end (the end of a Hyperscan match) and reports what it
 * confirms. */
static int confirm(struct cf_scanner *s, size_t r, size_t end)
{
    const struct cf_scan_rule *rule = &s->engine->rules->items[r];
    const struct compiled_rule *c = &s->engine->compiled[r];
    size_t last = end ? end - 1 : 0;
    size_t ws = line_begin(s, last, last > CF_SCAN_OVERLAP ? last - CF_SCAN_OVERLAP : 0);
    size_t we_cap = end + CF_SCAN_OVERLAP;
    size_t we = line_end(s, end, we_cap < s->len ? we_cap : s->len);
    if (ws < s->confirmed_upto[r])
        ws = s->confirmed_upto[r];
    s->confirmed_upto[r] = we;
    if (rule->nkeywords) {
        bool found = false;
        for (size_t k = 0; k < rule->nkeywords && !found; k++)
            found = contains_nocase(s->data + ws, we - ws, rule->keywords[k]);
        if (!found)
            return 0;
    }
    size_t offset = ws;
    while (offset <= we) {
        int n = pcre2_match(c->re, (PCRE2_SPTR)s->data, we, offset, 0, s->match, NULL);
        if (n < 0)
            break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->match);
        size_t mstart = ov[0], mend = ov[1];
        offset = mend > mstart ? mend : mstart + 1;
        if (mstart >= s->cut)
            break;
        if (mstart < s->reported_end[r] || mend == mstart)
            continue;
        size_t secret = mstart, secret_len = mend - mstart;
        if (n >= 2 && ov[2] != PCRE2_UNSET) {
            secret = ov[2];
            secret_len = ov[3] - ov[2];
        }
        if (secret_len == 0)
            continue;
        if (rule->min_entropy > 0 &&
            cf_scan_entropy(s->data + secret, secret_len) < rule->min_entropy)
            continue;
        if (allowed_secret(c, s->match, s->data + secret, secret_len))
            continue;
        s->reported_end[r] = mend;
        if (emit(s, rule, NULL, secret, secret, secret_len))
            return 1;
    }
    return 0;
}

static int on_match(unsigned int id, unsigned long long from, unsigned long long to,
                    unsigned int flags, void *ctx)
{
    struct cf_scanner *s = ctx;
    size_t nrules = s->engine->rules->count;
    (void)from;
    (void)flags;
    if (id >= nrules) {
        const struct known_literal *lit = &s->engine->literals[id - nrules];
        size_t start = (size_t)to - lit->len;
        if (start >= s->cut)
            return 0;
        return emit(s, NULL, lit, start, start, lit->len);
    }
    if ((size_t)to <= s->confirmed_upto[id])
        return 0;
    return confirm(s, id, (size_t)to);
}

/* Scans data[0..len-1], reporting matches that start before cut; last: no round follows (the
 * input's line count need not be carried on). */
static enum cf_rc scan_round(struct cf_scanner *s, const char *data, size_t len, size_t cut,
                             bool last, struct cf_err *err)
{
    size_t nrules = s->engine->rules->count;
    s->data = data;
    s->len = len;
    s->cut = cut;
    s->count_pos = 0;
    s->count_line = s->line0;
    memset(s->confirmed_upto, 0, nrules * sizeof(size_t));
    memset(s->reported_end, 0, nrules * sizeof(size_t));
    s->rc = CF_OK;
    if (s->engine->db && len > 0) {
        hs_error_t hrc = hs_scan(s->engine->db, data, (unsigned)len, 0, s->scratch, on_match, s);
        if (s->rc != CF_OK)
            return s->rc;
        if (hrc != HS_SUCCESS && hrc != HS_SCAN_TERMINATED)
            return cf_err_set(err, CF_EINTERNAL, "hyperscan failed (%d)", (int)hrc);
    }
    if (last)
        return CF_OK;
    /* move the line bookkeeping to data[cut] */
    s->line0 = line_at(s, cut);
    const char *nl = cut ? memrchr(data, '\n', cut) : NULL;
    if (nl)
        s->linestart0 = s->base + (uint64_t)(nl - data) + 1;
    s->base += cut;
    return CF_OK;
}

static void reset(struct cf_scanner *s, cf_scan_hit_fn fn, void *ctx)
{
    s->base = 0;
    s->line0 = 1;
    s->linestart0 = 0;
    s->fn = fn;
    s->ctx = ctx;
}

enum cf_rc cf_scanner_mem(struct cf_scanner *scanner, const char *data, size_t len,
                          cf_scan_hit_fn fn, void *ctx, struct cf_err *err)
{
    reset(scanner, fn, ctx);
    /* Hyperscan takes a length that fits an unsigned int: larger texts go in rounds. */
    while (len > (size_t)1 << 30) {
        size_t cut = (size_t)1 << 30;
        const char *nl = memrchr(data, '\n', cut);
        if (nl && (size_t)(data + cut - nl) <= CF_SCAN_CARRY_MAX)
            cut = (size_t)(nl - data) + 1;
        else
            cut -= CF_SCAN_OVERLAP;
        enum cf_rc rc = scan_round(scanner, data, cut + CF_SCAN_OVERLAP, cut, false, err);
        if (rc != CF_OK)
            return rc;
        data += cut;
        len -= cut;
    }
    return scan_round(scanner, data, len, len, true, err);
}

enum cf_rc cf_scanner_fd(struct cf_scanner *scanner, int fd, const char *what, bool skip_binary,
                         bool *binary, uint64_t *bytes, cf_scan_hit_fn fn, void *ctx,
                         struct cf_err *err)
{
    struct cf_scanner *s = scanner;
    size_t have = 0;
    bool eof = false, first = true;
    enum cf_rc rc = CF_OK;
    reset(s, fn, ctx);
    if (binary)
        *binary = false;
    if (bytes)
        *bytes = 0;
    while (!eof || have > 0) {
        size_t target = have + s->chunk;
        while (have < target && !eof) {
            ssize_t n = read(fd, s->buf + have, target - have);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                rc = cf_err_set(err, CF_EIO, "cannot read '%s': %s", what, strerror(errno));
                goto out;
            }
            if (n == 0)
                eof = true;
            have += (size_t)n;
        }
        if (first && skip_binary && cf_scan_is_binary(s->buf, have)) {
            if (binary)
                *binary = true;
            goto out;
        }
        first = false;
        if (have == 0)
            break;
        size_t cut = have;
        if (!eof) {
            const char *nl = memrchr(s->buf, '\n', have);
            if (nl && have - (size_t)(nl - s->buf + 1) <= CF_SCAN_CARRY_MAX)
                cut = (size_t)(nl - s->buf) + 1;
            else
                cut = have - CF_SCAN_OVERLAP;
        }
        rc = scan_round(s, s->buf, have, cut, eof, err);
        if (rc != CF_OK)
            goto out;
        if (bytes)
            *bytes += cut;
        memmove(s->buf, s->buf + cut, have - cut);
        have -= cut;
    }
out:
    return rc;
}
