/* gzip in memory (see gzip.h): zlib's deflate and inflate with the gzip wrapper (windowBits 15 +
 * 16), fed and drained through a fixed chunk so that the output grows only through the bounded
 * buffer. */
#include <stdbool.h>
#include <stdint.h>
#include <strings.h>

#include <zlib.h>

#include "util/gzip.h"
#include "util/banned.h"

#define CHUNK 65536
#define GZIP_WINDOW (15 + 16) /* 32 KiB window, gzip header and trailer */
/* zlib's fastest level: on the audit archive's text (10,000 events, 10.6 MB) it took 42 ms for
 * 1.05 MB where the default level took 97 ms for 0.90 MB, and the archive is written under load. */
#define GZIP_LEVEL 1

enum cf_rc cf_gzip_compress(const void *data, size_t len, struct cf_buf *out, struct cf_err *err)
{
    z_stream z = {0};
    unsigned char chunk[CHUNK];
    if (deflateInit2(&z, GZIP_LEVEL, Z_DEFLATED, GZIP_WINDOW, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return cf_err_set(err, CF_ENOMEM, "cannot start compressing: out of memory");
    z.next_in = (Bytef *)(uintptr_t)data;
    enum cf_rc rc = CF_OK;
    size_t left = len;
    int zrc = Z_OK;
    while (rc == CF_OK && zrc != Z_STREAM_END) {
        if (z.avail_in == 0 && left > 0) {
            z.avail_in = left > UINT32_MAX ? UINT32_MAX : (uInt)left;
            left -= z.avail_in;
        }
        z.next_out = chunk;
        z.avail_out = sizeof(chunk);
        zrc = deflate(&z, left == 0 && z.avail_in == 0 ? Z_FINISH : Z_NO_FLUSH);
        if (zrc != Z_OK && zrc != Z_STREAM_END && zrc != Z_BUF_ERROR)
            rc = cf_err_set(err, CF_EINTERNAL, "compressing failed (zlib error %d)", zrc);
        else
            rc = cf_buf_append(out, chunk, sizeof(chunk) - z.avail_out);
        if (rc == CF_ETOOLARGE)
            cf_err_set(err, rc, "the compressed data is larger than %zu bytes", out->max);
        else if (rc == CF_ENOMEM)
            cf_err_set(err, rc, "out of memory");
    }
    deflateEnd(&z);
    return rc;
}

enum cf_rc cf_gzip_decompress(const void *data, size_t len, struct cf_buf *out, struct cf_err *err)
{
    z_stream z = {0};
    unsigned char chunk[CHUNK];
    if (inflateInit2(&z, GZIP_WINDOW) != Z_OK)
        return cf_err_set(err, CF_ENOMEM, "cannot start decompressing: out of memory");
    const unsigned char *next = data;
    size_t left = len;
    enum cf_rc rc = CF_OK;
    bool member_done = false;
    while (rc == CF_OK) {
        if (z.avail_in == 0) {
            if (left == 0)
                break;
            z.next_in = (Bytef *)(uintptr_t)next;
            z.avail_in = left > UINT32_MAX ? UINT32_MAX : (uInt)left;
            next += z.avail_in;
            left -= z.avail_in;
        }
        z.next_out = chunk;
        z.avail_out = sizeof(chunk);
        int zrc = inflate(&z, Z_NO_FLUSH);
        member_done = zrc == Z_STREAM_END;
        if (zrc != Z_OK && zrc != Z_STREAM_END) {
            rc = cf_err_set(err, CF_EVALIDATION, "it is not gzip, or is damaged (%s)",
                            z.msg ? z.msg : "zlib error");
            break;
        }
        rc = cf_buf_append(out, chunk, sizeof(chunk) - z.avail_out);
        if (rc == CF_ETOOLARGE)
            cf_err_set(err, rc, "it holds more than %zu bytes", out->max);
        else if (rc == CF_ENOMEM)
            cf_err_set(err, rc, "out of memory");
        if (rc == CF_OK && member_done && (z.avail_in > 0 || left > 0))
            inflateReset(&z); /* another member follows */
        else if (rc == CF_OK && member_done)
            break;
    }
    if (rc == CF_OK && !member_done)
        rc = cf_err_set(err, CF_EVALIDATION, "it is cut short (the gzip data does not end)");
    inflateEnd(&z);
    return rc;
}

/* A qvalue (RFC 9110 section 12.4.2: "0", "0.5", "1.000") in thousandths, or -1 when it is none. */
static int parse_qvalue(const char *p, const char *end)
{
    if (p >= end || (*p != '0' && *p != '1'))
        return -1;
    int value = (*p++ - '0') * 1000;
    if (p < end) {
        if (*p++ != '.')
            return -1;
        for (int scale = 100; p < end; p++, scale /= 10) {
            if (scale == 0 || *p < '0' || *p > '9')
                return -1;
            value += (*p - '0') * scale;
        }
    }
    return value > 1000 ? -1 : value;
}

/* The weight given by one Accept-Encoding element's parameters (from its first ';' up to the next
 * comma), in thousandths: 1000 without a weight, -1 when its weight does not parse. Other
 * parameters are not defined for Accept-Encoding and are skipped. */
static int coding_weight(const char *p, const char *end)
{
    int weight = 1000;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ';'))
            p++;
        const char *param = p;
        while (p < end && *p != ';')
            p++;
        const char *stop = p;
        while (stop > param && (stop[-1] == ' ' || stop[-1] == '\t'))
            stop--;
        if (stop - param >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
            weight = parse_qvalue(param + 2, stop);
            if (weight < 0)
                return -1;
        }
    }
    return weight;
}

bool cf_gzip_accepted(const char *accept_encoding)
{
    if (!accept_encoding)
        return false;
    int gzip = -2, star = -2; /* -2: not listed */
    const char *p = accept_encoding;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *name = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t n = (size_t)(p - name);
        const char *params = p;
        while (*p && *p != ',')
            p++;
        if (n == 0)
            continue;
        int w = coding_weight(params, p);
        if ((n == 4 && strncasecmp(name, "gzip", 4) == 0) ||
            (n == 6 && strncasecmp(name, "x-gzip", 6) == 0))
            gzip = w > gzip ? w : gzip;
        else if (n == 1 && name[0] == '*')
            star = w;
    }
    if (gzip != -2)
        return gzip > 0;
    return star > 0;
}
