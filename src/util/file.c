/* Whole-file replacement and bounded reads (see file.h). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/file.h"
#include "util/str.h"
#include "util/banned.h"

bool cf_write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* Writes data to a fresh temp file beside path (mkostemp: a new inode, never a stale file with a
 * looser mode), then moves it into place: with rename() when replacing, with link() when the file
 * must not exist yet (CF_EEXIST then), so that two processes creating it cannot both think they
 * won. The temp file, which may hold a key, is removed on every path. */
static enum cf_rc write_file(const char *path, const void *data, size_t len, bool exclusive,
                             struct cf_err *err)
{
    char tmp[4200], dir[4200];
    enum cf_rc rc = CF_OK;
    int fd = -1;
    bool tmp_exists = false;

    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return cf_err_set(err, CF_EINVAL, "path '%.200s...' is too long", path);
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = cf_err_set(err, CF_EIO, "cannot create a temporary file for '%s': %s", path,
                        strerror(errno));
        goto out;
    }
    tmp_exists = true;
    /* mkostemp's mode is 0600 less the umask: make it exactly 0600. */
    if (fchmod(fd, 0600) != 0 || !cf_write_all(fd, data, len) || fsync(fd) != 0) {
        rc = cf_err_set(err, CF_EIO, "cannot write '%s': %s", tmp, strerror(errno));
        goto out;
    }
    int closed = close(fd);
    fd = -1;
    if (closed != 0) {
        rc = cf_err_set(err, CF_EIO, "cannot write '%s': %s", tmp, strerror(errno));
        goto out;
    }
    if (exclusive && link(tmp, path) == 0) {
        unlink(tmp);
        tmp_exists = false;
    } else if (exclusive && errno == EEXIST) {
        rc = cf_err_set(err, CF_EEXIST, "'%s' already exists", path);
        goto out;
    } else if (exclusive && errno != EPERM && errno != EOPNOTSUPP && errno != ENOSYS) {
        rc = cf_err_set(err, CF_EIO, "cannot create '%s': %s", path, strerror(errno));
        goto out;
    }
    /* Replacing, or (exclusive) a file system without hard links, where rename is the best there
     * is. */
    if (tmp_exists) {
        if (rename(tmp, path) != 0) {
            rc = cf_err_set(err, CF_EIO, "cannot rename '%s' to '%s': %s", tmp, path,
                            strerror(errno));
            goto out;
        }
        tmp_exists = false;
    }
    /* The new name is durable once the directory is. */
    cf_strlcpy(dir, path, sizeof(dir));
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
out:
    if (fd >= 0)
        close(fd);
    if (tmp_exists)
        unlink(tmp);
    return rc;
}

enum cf_rc cf_file_replace(const char *path, const void *data, size_t len, struct cf_err *err)
{
    return write_file(path, data, len, false, err);
}

enum cf_rc cf_file_create(const char *path, const void *data, size_t len, struct cf_err *err)
{
    return write_file(path, data, len, true, err);
}

enum cf_rc cf_file_read(const char *path, size_t max, char **out, size_t *len, struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    char *data = NULL;
    size_t used = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cf_err_set(err, errno == ENOENT ? CF_ENOTFOUND : CF_EIO, "cannot open '%s': %s",
                          path, strerror(errno));
    data = malloc(max + 2);
    if (!data) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t got = read(fd, data + used, max + 1 - used);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = cf_err_set(err, CF_EIO, "cannot read '%s': %s", path, strerror(errno));
            goto out;
        }
        if (got == 0)
            break;
        used += (size_t)got;
        if (used > max) {
            rc = cf_err_set(err, CF_ETOOLARGE, "'%s' is longer than %zu bytes", path, max);
            goto out;
        }
    }
    data[used] = '\0';
    *out = data;
    *len = used;
    data = NULL;
out:
    free(data);
    close(fd);
    return rc;
}
