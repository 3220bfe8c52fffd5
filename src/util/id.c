/* UUIDv4 and request ids from libsodium's CSPRNG (see id.h). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "util/id.h"
#include "util/banned.h"

static void uuid_format(const uint8_t b[16], char out[CF_UUID_LEN])
{
    snprintf(out, CF_UUID_LEN,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

void cf_uuid_new(char out[CF_UUID_LEN])
{
    uint8_t b[16];
    randombytes_buf(b, sizeof(b));
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
    randombytes_buf(b + CF_UUID_V7_HEAD_BYTES, sizeof(b) - CF_UUID_V7_HEAD_BYTES);
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
    randombytes_buf(b, sizeof(b));
    sodium_bin2hex(out, CF_REQID_LEN, b, sizeof(b));
}
