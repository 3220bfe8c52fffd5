/* Shared by the fuzz targets of fuzz/: each defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize). Built twice: with clang and -fsanitize=fuzzer for `make fuzz`, and with
 * replay.c as a plain program that feeds it the committed corpus, which `make test` runs. */
#ifndef CF_FUZZ_H
#define CF_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property that must hold: on failure, print it and abort (libFuzzer keeps the input). */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz property failed at %s:%d: ", __FILE__, __LINE__);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The input split at separator bytes into at most max NUL-terminated parts (a missing part is "").
 * One allocation (freed with fuzz_parts_free); lens[i] is each part's length. */
struct fuzz_parts {
    char *buf;
    size_t n;
    char *part[8];
    size_t len[8];
};

static inline void fuzz_split(const uint8_t *data, size_t size, char sep, size_t max,
                              struct fuzz_parts *p)
{
    memset(p, 0, sizeof(*p));
    if (max > 8)
        max = 8;
    p->buf = malloc(size + max + 1);
    if (!p->buf)
        abort();
    memcpy(p->buf, data, size);
    p->buf[size] = '\0';
    size_t start = 0;
    for (size_t i = 0; i <= size && p->n < max; i++) {
        if (i == size || (data[i] == (uint8_t)sep && p->n + 1 < max)) {
            p->buf[i] = '\0';
            p->part[p->n] = p->buf + start;
            p->len[p->n] = i - start;
            p->n++;
            start = i + 1;
        }
    }
    for (size_t i = p->n; i < max; i++) {
        p->part[i] = p->buf + size; /* "" */
        p->len[i] = 0;
    }
    p->n = max;
}

static inline void fuzz_parts_free(struct fuzz_parts *p)
{
    free(p->buf);
}

#endif
