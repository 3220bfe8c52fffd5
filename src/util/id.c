/* UUIDv4 and request ids from libsodium's CSPRNG (see id.h). The server makes two ids per request
 * (its request id and its audit event's id); libsodium asks the kernel (getrandom) on every call,
 * so each thread draws the CSPRNG's bytes for its ids in blocks and hands them out from there. The
 * ids are public (answers, logs, rows), never keys or credentials, so holding the block's unused
 * bytes in memory exposes nothing; the bytes are the same CSPRNG's, each handed out once. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "util/id.h"
#include "util/banned.h"

/* Bytes drawn at once: the ids of about 20 requests per system call. */
#define ID_POOL_BYTES 512

/* Each thread's block of CSPRNG bytes for ids; used == ID_POOL_BYTES: empty. Thread-local, so no
 * lock; a forked child starts with an empty block (forget_in_child), or it would repeat its
 * parent's next ids. */
struct id_pool {
    uint8_t bytes[ID_POOL_BYTES];
    size_t used;
};

static _Thread_local struct id_pool pool = {.used = ID_POOL_BYTES};
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static bool pooled; /* set once: the fork handler is in place */

static void forget_in_child(void)
{
    /* runs in the child's only thread, the one that forked: its block is the parent's copy */
    sodium_memzero(pool.bytes, sizeof(pool.bytes));
    pool.used = ID_POOL_BYTES;
}

static void register_atfork(void)
{
    /* without the handler the pool would be unsafe after fork, so a failure means no pooling */
    pooled = pthread_atfork(NULL, NULL, forget_in_child) == 0;
}

/* Fills out with n (<= ID_POOL_BYTES) fresh CSPRNG bytes. */
static void id_random(uint8_t *out, size_t n)
{
    pthread_once(&atfork_once, register_atfork);
    if (!pooled || n > ID_POOL_BYTES) {
        randombytes_buf(out, n);
        return;
    }
    if (pool.used + n > ID_POOL_BYTES) {
        randombytes_buf(pool.bytes, sizeof(pool.bytes));
        pool.used = 0;
    }
    memcpy(out, pool.bytes + pool.used, n);
    /* handed out once: the copy left in the block is cleared */
    sodium_memzero(pool.bytes + pool.used, n);
    pool.used += n;
}

/* The 8-4-4-4-12 lower-case hex form of b. */
static void uuid_format(const uint8_t b[16], char out[CF_UUID_LEN])
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[n++] = '-';
        out[n++] = hex[b[i] >> 4];
        out[n++] = hex[b[i] & 15];
    }
    out[n] = '\0';
}

void cf_uuid_new(char out[CF_UUID_LEN])
{
    uint8_t b[16];
    id_random(b, sizeof(b));
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    uuid_format(b, out);
}

void cf_uuid_v7_head(int64_t time_us, uint8_t head[CF_UUID_V7_HEAD_BYTES])
{
    uint64_t us = time_us > 0 ? (uint64_t)time_us : 0;
    uint64_t ms = us / 1000;
    unsigned frac = (unsigned)(us % 1000); /* < 4096: fits the 12 bits */
    for (int i = 5; i >= 0; i--, ms >>= 8)
        head[i] = (uint8_t)ms;
    head[6] = (uint8_t)(0x70 | frac >> 8);
    head[7] = (uint8_t)frac;
}

void cf_uuid_v7(int64_t time_us, char out[CF_UUID_LEN])
{
    uint8_t b[16];
    cf_uuid_v7_head(time_us, b);
    id_random(b + CF_UUID_V7_HEAD_BYTES, sizeof(b) - CF_UUID_V7_HEAD_BYTES);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    uuid_format(b, out);
}

bool cf_uuid_valid(const char *text)
{
    if (!text || strlen(text) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = text[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

void cf_reqid_new(char out[CF_REQID_LEN])
{
    uint8_t b[8];
    id_random(b, sizeof(b));
    sodium_bin2hex(out, CF_REQID_LEN, b, sizeof(b));
}
