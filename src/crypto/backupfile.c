/* Backup files (backupfile.h). */
#include "crypto/backupfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "util/file.h"
#include "util/str.h"
#include "util/banned.h"

#define MAGIC "coffer-backup 1\n"
#define SEALED_MAX (CF_BACKUP_CHUNK + crypto_secretstream_xchacha20poly1305_ABYTES)

/* Reads up to n bytes (fewer only at the end of the file); -1 on an error. */
static ssize_t read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static void put_be32(uint8_t out[4], uint32_t v)
{
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t in[4])
{
    return (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
}

/* The chunks of payload_fd, encrypted under st, written to fd; the header line and manifest
 * (ad, ad_len) bound to the first. */
static enum cf_rc write_chunks(int fd, crypto_secretstream_xchacha20poly1305_state *st,
                               int payload_fd, const uint8_t *ad, size_t ad_len, struct cf_err *err)
{
    uint8_t *plain = malloc(CF_BACKUP_CHUNK), *sealed = malloc(4 + SEALED_MAX);
    enum cf_rc rc = CF_OK;
    if (!plain || !sealed) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory writing the backup");
        goto out;
    }
    ssize_t n = read_full(payload_fd, plain, CF_BACKUP_CHUNK);
    bool first = true;
    while (rc == CF_OK) {
        if (n < 0) {
            rc = cf_err_set(err, CF_EIO, "cannot read the snapshot: %s", strerror(errno));
            break;
        }
        /* a short read is the end; a full one may be too, which the next read tells */
        ssize_t next = 0;
        uint8_t *ahead = NULL;
        if (n == CF_BACKUP_CHUNK) {
            ahead = malloc(CF_BACKUP_CHUNK);
            if (!ahead) {
                rc = cf_err_set(err, CF_ENOMEM, "out of memory writing the backup");
                break;
            }
            next = read_full(payload_fd, ahead, CF_BACKUP_CHUNK);
        }
        bool last = ahead == NULL || next == 0;
        unsigned long long sealed_len = 0;
        crypto_secretstream_xchacha20poly1305_push(
            st, sealed + 4, &sealed_len, plain, (unsigned long long)n, first ? ad : NULL,
            first ? ad_len : 0,
            last ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
                 : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
        put_be32(sealed, (uint32_t)sealed_len);
        if (!cf_write_all(fd, sealed, 4 + (size_t)sealed_len))
            rc = cf_err_set(err, CF_EIO, "cannot write the backup: %s", strerror(errno));
        first = false;
        sodium_memzero(plain, CF_BACKUP_CHUNK);
        if (last) {
            if (ahead) {
                sodium_memzero(ahead, CF_BACKUP_CHUNK);
                free(ahead);
            }
            break;
        }
        free(plain);
        plain = ahead;
        n = next;
    }
out:
    if (plain)
        sodium_memzero(plain, CF_BACKUP_CHUNK);
    free(plain);
    free(sealed);
    return rc;
}

enum cf_rc cf_backup_write(const char *path, const char *manifest,
                           const uint8_t key[CF_BACKUP_KEY_BYTES], int payload_fd,
                           struct cf_err *err)
{
    if (strchr(manifest, '\n') || strlen(manifest) > CF_BACKUP_MANIFEST_MAX)
        return cf_err_set(err, CF_EINVAL, "a backup manifest is one line of at most %d bytes",
                          CF_BACKUP_MANIFEST_MAX);
    struct stat sb;
    if (lstat(path, &sb) == 0)
        return cf_err_set(err, CF_EEXIST, "%s exists: a backup never replaces a file", path);
    size_t ad_len = strlen(MAGIC) + strlen(manifest) + 1;
    char *ad = malloc(ad_len + 1);
    char tmp[4096];
    if (!ad)
        return cf_err_set(err, CF_ENOMEM, "out of memory writing the backup");
    snprintf(ad, ad_len + 1, "%s%s\n", MAGIC, manifest);
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= sizeof(tmp)) {
        free(ad);
        return cf_err_set(err, CF_EINVAL, "the backup's path is too long");
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        enum cf_rc rc =
            cf_err_set(err, CF_EIO, "cannot create a file beside %s: %s", path, strerror(errno));
        free(ad);
        return rc;
    }
    enum cf_rc rc = CF_OK;
    crypto_secretstream_xchacha20poly1305_state st;
    uint8_t header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
    crypto_secretstream_xchacha20poly1305_init_push(&st, header, key);
    if (fchmod(fd, 0600) != 0 || !cf_write_all(fd, ad, ad_len) ||
        !cf_write_all(fd, header, sizeof(header)))
        rc = cf_err_set(err, CF_EIO, "cannot write %s: %s", tmp, strerror(errno));
    if (rc == CF_OK)
        rc = write_chunks(fd, &st, payload_fd, (const uint8_t *)ad, ad_len, err);
    sodium_memzero(&st, sizeof(st));
    if (rc == CF_OK && fsync(fd) != 0)
        rc = cf_err_set(err, CF_EIO, "cannot flush %s: %s", tmp, strerror(errno));
    close(fd);
    /* link(2), not rename(2): a file that appeared at path meanwhile is never replaced */
    if (rc == CF_OK && link(tmp, path) != 0)
        rc = cf_err_set(err, errno == EEXIST ? CF_EEXIST : CF_EIO, "cannot create %s: %s", path,
                        strerror(errno));
    unlink(tmp);
    if (rc == CF_OK) {
        char dir[4096];
        cf_strlcpy(dir, path, sizeof(dir));
        int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    free(ad);
    return rc;
}

/* Opens path and reads its header line and manifest into *ad (the bytes bound to the first chunk,
 * NUL-terminated, *ad_len without the NUL), leaving fd just after them. */
static enum cf_rc open_backup(const char *path, int *fd_out, char **ad, size_t *ad_len,
                              struct cf_err *err)
{
    size_t cap = strlen(MAGIC) + CF_BACKUP_MANIFEST_MAX + 2, len = 0;
    char *buf = malloc(cap + 1);
    *ad = NULL;
    *fd_out = -1;
    if (!buf)
        return cf_err_set(err, CF_ENOMEM, "out of memory reading %s", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        enum cf_rc rc = cf_err_set(err, errno == ENOENT ? CF_ENOTFOUND : CF_EIO,
                                   "cannot open %s: %s", path, strerror(errno));
        free(buf);
        return rc;
    }
    /* byte by byte up to the manifest's newline: the file position must stop right after it */
    size_t lines = 0;
    while (len < cap && lines < 2) {
        ssize_t r = read(fd, buf + len, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (buf[len++] == '\n')
            lines++;
        if (len == strlen(MAGIC) && memcmp(buf, MAGIC, len) != 0)
            break;
    }
    buf[len] = '\0';
    if (len < strlen(MAGIC) || memcmp(buf, MAGIC, strlen(MAGIC)) != 0 || lines < 2) {
        close(fd);
        free(buf);
        return cf_err_set(err, CF_EVALIDATION,
                          "%s is not a Coffer backup (it does not begin with its header and "
                          "manifest)",
                          path);
    }
    *fd_out = fd;
    *ad = buf;
    *ad_len = len;
    return CF_OK;
}

enum cf_rc cf_backup_read_manifest(const char *path, char **manifest, struct cf_err *err)
{
    int fd;
    char *ad;
    size_t ad_len;
    enum cf_rc rc = open_backup(path, &fd, &ad, &ad_len, err);
    if (rc != CF_OK)
        return rc;
    close(fd);
    size_t start = strlen(MAGIC);
    ad[ad_len - 1] = '\0'; /* the manifest's newline */
    memmove(ad, ad + start, ad_len - start);
    *manifest = ad;
    return CF_OK;
}

enum cf_rc cf_backup_decrypt(const char *path, const uint8_t key[CF_BACKUP_KEY_BYTES], int out_fd,
                             struct cf_err *err)
{
    int fd;
    char *ad;
    size_t ad_len;
    enum cf_rc rc = open_backup(path, &fd, &ad, &ad_len, err);
    if (rc != CF_OK)
        return rc;
    uint8_t header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
    uint8_t *sealed = malloc(SEALED_MAX), *plain = malloc(CF_BACKUP_CHUNK);
    crypto_secretstream_xchacha20poly1305_state st;
    if (!sealed || !plain) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory reading %s", path);
        goto out;
    }
    if (read_full(fd, header, sizeof(header)) != (ssize_t)sizeof(header) ||
        crypto_secretstream_xchacha20poly1305_init_pull(&st, header, key) != 0) {
        rc = cf_err_set(err, CF_EVALIDATION, "%s is cut short (it ends within its header)", path);
        goto out;
    }
    for (int64_t chunk = 1;; chunk++) {
        uint8_t len_be[4], tag = 0;
        ssize_t r = read_full(fd, len_be, 4);
        if (r == 0) {
            rc = cf_err_set(err, CF_EVALIDATION,
                            "%s is cut short: it ends after chunk %lld without its last chunk",
                            path, (long long)chunk - 1);
            break;
        }
        uint32_t n = r == 4 ? get_be32(len_be) : 0;
        if (r != 4 || n < crypto_secretstream_xchacha20poly1305_ABYTES || n > SEALED_MAX ||
            read_full(fd, sealed, n) != (ssize_t)n) {
            rc = cf_err_set(err, CF_EVALIDATION, "%s is cut short or damaged at chunk %lld", path,
                            (long long)chunk);
            break;
        }
        unsigned long long plain_len = 0;
        if (crypto_secretstream_xchacha20poly1305_pull(&st, plain, &plain_len, &tag, sealed, n,
                                                       chunk == 1 ? (const uint8_t *)ad : NULL,
                                                       chunk == 1 ? ad_len : 0) != 0) {
            rc = cf_err_set(err, CF_ECRYPTO,
                            "%s was altered (chunk %lld%s does not authenticate) or made with "
                            "another root key",
                            path, (long long)chunk, chunk == 1 ? ", bound to the manifest," : "");
            break;
        }
        if (!cf_write_all(out_fd, plain, (size_t)plain_len)) {
            rc =
                cf_err_set(err, CF_EIO, "cannot write the decrypted snapshot: %s", strerror(errno));
            break;
        }
        if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
            uint8_t extra;
            if (read_full(fd, &extra, 1) != 0)
                rc = cf_err_set(err, CF_EVALIDATION, "%s has bytes after its last chunk", path);
            break;
        }
    }
out:
    sodium_memzero(&st, sizeof(st));
    if (plain)
        sodium_memzero(plain, CF_BACKUP_CHUNK);
    free(plain);
    free(sealed);
    free(ad);
    close(fd);
    return rc;
}
