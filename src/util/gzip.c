/* gzip in memory (see gzip.h): zlib's deflate and inflate with the gzip wrapper (windowBits 15 +
 * 16), fed and drained through a fixed chunk so that the output grows only through the bounded
 * buffer. */
#include <stdbool.h>
#include <stdint.h>

#include <zlib.h>

#include "util/gzip.h"
#include "util/banned.h"

#define CHUNK 65536
#define GZIP_WINDOW (15 + 16) /* 32 KiB window, gzip header and trailer */

enum cf_rc cf_gzip_compress(const void *data, size_t len, struct cf_buf *out, struct cf_err *err)
{
    z_stream z = {0};
    unsigned char chunk[CHUNK];
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, GZIP_WINDOW, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
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
