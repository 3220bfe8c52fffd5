/* The scanner of `coffer scan` (scan/engine.h), which reads any file it is pointed at, with every
 * built-in rule. Properties: each finding lies inside the input and its secret is the input's bytes
 * at its offset; reading the input in small chunks through a descriptor finds exactly what one pass
 * over it in memory finds (the input's lines are cut to stay under the carry limit, so that only
 * the chunking differs). Input: any bytes. */
#include <sys/mman.h>
#include <unistd.h>

#include "scan/engine.h"
#include "scan/rules.h"
#include "fuzz.h"

#define MAX_FINDINGS 256
#define LINE_MAX_FUZZ 4096

static struct cf_scan_rules rules;
static struct cf_scan_engine *engine;
static struct cf_scanner *scanner;

struct seen {
    const uint8_t *data;
    size_t size;
    uint64_t offsets[MAX_FINDINGS];
    const void *rules[MAX_FINDINGS];
    size_t count;
};

static enum cf_rc on_hit(const struct cf_scan_hit *hit, void *ctx)
{
    struct seen *s = ctx;
    FUZZ_CHECK(hit->offset < s->size, "finding past the input's end");
    FUZZ_CHECK(hit->line >= 1 && hit->column >= 1, "line or column 0");
    if (s->count < MAX_FINDINGS) {
        s->offsets[s->count] = hit->offset;
        s->rules[s->count] = hit->rule;
        s->count++;
    }
    return CF_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cf_err err;
    struct seen in_memory = {0}, chunked = {0};
    if (!engine) {
        FUZZ_CHECK(cf_scan_rules_add_builtin(&rules, &err) == CF_OK, "%s", err.msg);
        FUZZ_CHECK(cf_scan_engine_new(&engine, &rules, NULL, 0, NULL, &err) == CF_OK, "%s",
                   err.msg);
        FUZZ_CHECK(cf_scanner_new(&scanner, engine, &err) == CF_OK, "%s", err.msg);
    }
    /* lines no longer than LINE_MAX_FUZZ, so that both readings cut at the same newlines */
    uint8_t *text = malloc(size + size / LINE_MAX_FUZZ + 1);
    size_t len = 0, run = 0;
    FUZZ_CHECK(text != NULL, "out of memory");
    for (size_t i = 0; i < size; i++) {
        text[len++] = data[i];
        run = data[i] == '\n' ? 0 : run + 1;
        if (run == LINE_MAX_FUZZ) {
            text[len++] = '\n';
            run = 0;
        }
    }
    in_memory.data = chunked.data = text;
    in_memory.size = chunked.size = len;
    FUZZ_CHECK(cf_scanner_mem(scanner, (const char *)text, len, on_hit, &in_memory, &err) == CF_OK,
               "%s", err.msg);
    int fd = memfd_create("fuzz_scan", 0);
    FUZZ_CHECK(fd >= 0, "memfd_create failed");
    FUZZ_CHECK(write(fd, text, len) == (ssize_t)len, "write failed");
    FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek failed");
    cf_scanner_set_chunk(scanner, 2 * CF_SCAN_OVERLAP);
    FUZZ_CHECK(cf_scanner_fd(scanner, fd, "fuzz", false, NULL, NULL, on_hit, &chunked, &err) ==
                   CF_OK,
               "%s", err.msg);
    cf_scanner_set_chunk(scanner, CF_SCAN_CHUNK);
    close(fd);
    FUZZ_CHECK(in_memory.count == chunked.count, "%zu findings in memory, %zu in chunks",
               in_memory.count, chunked.count);
    for (size_t i = 0; i < in_memory.count && i < MAX_FINDINGS; i++)
        FUZZ_CHECK(in_memory.offsets[i] == chunked.offsets[i] &&
                       in_memory.rules[i] == chunked.rules[i],
                   "finding %zu differs between the readings", i);
    free(text);
    return 0;
}
