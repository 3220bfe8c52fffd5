/* The stored login of `coffer login` (see credentials.h). Written with a temporary file, fsync and
 * rename; read only from a private regular file owned by the caller. Every buffer that holds the
 * token is wiped. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "cli/credentials.h"
#include "client/client.h"
#include "util/jsonw.h"
#include "util/banned.h"

#define CREDENTIALS_FILE "credentials.json"
#define CREDENTIALS_MAX (64u * 1024u)

enum cf_rc cf_credentials_path(struct cf_buf *dir, struct cf_buf *file, struct cf_err *err)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    struct cf_buf base;
    enum cf_rc rc;

    cf_buf_init(&base, 4096);
    if (xdg && xdg[0] == '/') /* the XDG spec: a relative value is invalid and ignored */
        rc = cf_buf_printf(&base, "%s/coffer", xdg);
    else if (home && *home)
        rc = cf_buf_printf(&base, "%s/.config/coffer", home);
    else
        rc = cf_err_set(err, CF_EINVAL,
                        "cannot find the configuration directory: set HOME or XDG_CONFIG_HOME");
    if (rc == CF_OK && dir) {
        cf_buf_reset(dir);
        rc = cf_buf_append(dir, base.data, base.len);
    }
    if (rc == CF_OK && file) {
        cf_buf_reset(file);
        rc = cf_buf_printf(file, "%s/%s", base.data, CREDENTIALS_FILE);
    }
    if (rc != CF_OK && err->rc == CF_OK)
        cf_err_set(err, rc, "the configuration path is too long");
    cf_buf_release(&base);
    return rc;
}

/* mkdir -p with mode 0700 for every directory made; the last one is made private if it is not. */
static enum cf_rc make_private_dir(char *path, struct cf_err *err)
{
    struct stat st;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int made = mkdir(path, 0700);
        int saved = errno;
        *p = '/';
        if (made != 0 && saved != EEXIST)
            return cf_err_set(err, CF_EIO, "cannot create the directory '%.200s': %s", path,
                              strerror(saved));
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return cf_err_set(err, CF_EIO, "cannot create the directory '%.200s': %s", path,
                          strerror(errno));
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return cf_err_set(err, CF_EIO, "'%.200s' is not a directory", path);
    if (st.st_uid != geteuid())
        return cf_err_set(err, CF_EIO, "the directory '%.200s' belongs to another user", path);
    if ((st.st_mode & 077) != 0 && chmod(path, 0700) != 0)
        return cf_err_set(err, CF_EIO, "cannot make the directory '%.200s' private: %s", path,
                          strerror(errno));
    return CF_OK;
}

static enum cf_rc write_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return CF_EIO;
        data += n;
        len -= (size_t)n;
    }
    return CF_OK;
}

enum cf_rc cf_credentials_save(const char *domain, const char *token, struct cf_buf *path,
                               struct cf_err *err)
{
    struct cf_buf dir, file, tmp, normalized, text;
    struct cf_jsonw w;
    enum cf_rc rc;
    int fd = -1;
    bool tmp_exists = false;

    cf_buf_init(&dir, 4096);
    cf_buf_init(&file, 4096);
    cf_buf_init(&tmp, 4096);
    cf_buf_init(&normalized, 0);
    cf_buf_init(&text, CREDENTIALS_MAX);
    rc = cf_client_normalize_domain(domain ? domain : CF_CLIENT_DEFAULT_DOMAIN, &normalized, err);
    if (rc != CF_OK)
        goto out;
    rc = cf_credentials_path(&dir, &file, err);
    if (rc != CF_OK)
        goto out;
    rc = make_private_dir(dir.data, err);
    if (rc != CF_OK)
        goto out;
    cf_jsonw_init(&w, &text);
    cf_jsonw_object_begin(&w);
    cf_jsonw_kstr(&w, "domain", normalized.data);
    cf_jsonw_kstr(&w, "token", token);
    cf_jsonw_object_end(&w);
    rc = cf_jsonw_finish(&w);
    if (rc == CF_OK)
        rc = cf_buf_append(&text, "\n", 1);
    if (rc == CF_OK)
        rc = cf_buf_printf(&tmp, "%s/.%s.XXXXXX", dir.data, CREDENTIALS_FILE);
    if (rc != CF_OK) {
        cf_err_set(err, rc, "cannot encode the credentials (%s)", cf_rc_str(rc));
        goto out;
    }
    fd = mkostemp(tmp.data, O_CLOEXEC); /* mode 0600 */
    if (fd < 0) {
        rc = cf_err_set(err, CF_EIO, "cannot create a file in '%.200s': %s", dir.data,
                        strerror(errno));
        goto out;
    }
    tmp_exists = true;
    if (fchmod(fd, 0600) != 0 || write_all(fd, text.data, text.len) != CF_OK || fsync(fd) != 0) {
        rc = cf_err_set(err, CF_EIO, "cannot write '%.200s': %s", tmp.data, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = cf_err_set(err, CF_EIO, "cannot write '%.200s': %s", tmp.data, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp.data, file.data) != 0) {
        rc = cf_err_set(err, CF_EIO, "cannot replace '%.200s': %s", file.data, strerror(errno));
        goto out;
    }
    tmp_exists = false;
    /* The rename itself is durable once the directory is synced. */
    int dir_fd = open(dir.data, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        (void)fsync(dir_fd);
        close(dir_fd);
    }
    if (path) {
        cf_buf_reset(path);
        rc = cf_buf_append(path, file.data, file.len);
    }
out:
    if (fd >= 0)
        close(fd);
    if (tmp_exists)
        unlink(tmp.data);
    cf_buf_release_wipe(&text);
    cf_buf_release(&normalized);
    cf_buf_release(&tmp);
    cf_buf_release(&file);
    cf_buf_release(&dir);
    return rc;
}

/* Reads the whole file into text after checking that it is private. */
static enum cf_rc read_private(const char *path, struct cf_buf *text, struct cf_err *err)
{
    char chunk[4096];
    struct stat st;
    enum cf_rc rc = CF_OK;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0) {
        if (errno == ENOENT)
            return CF_ENOTFOUND;
        return cf_err_set(err, CF_EIO, "cannot read '%.200s': %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = cf_err_set(err, CF_EIO, "'%.200s' is not a regular file", path);
        goto out;
    }
    if (st.st_uid != geteuid()) {
        rc = cf_err_set(err, CF_EIO, "'%.200s' belongs to another user; not using it", path);
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        rc = cf_err_set(err, CF_EIO,
                        "'%.200s' is accessible by other users (mode %04o); not using it (run "
                        "chmod 600 on it, or log in again)",
                        path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = cf_err_set(err, CF_EIO, "cannot read '%.200s': %s", path, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        if (cf_buf_append(text, chunk, (size_t)n) != CF_OK) {
            rc = cf_err_set(err, CF_EINVAL, "'%.200s' is larger than %u bytes", path,
                            CREDENTIALS_MAX);
            break;
        }
    }
out:
    sodium_memzero(chunk, sizeof(chunk));
    close(fd);
    return rc;
}

enum cf_rc cf_credentials_for(const char *domain, struct cf_buf *token, struct cf_buf *domain_used,
                              struct cf_err *err)
{
    struct cf_buf file, text, wanted;
    json_t *doc = NULL;
    enum cf_rc rc;

    cf_buf_init(&file, 4096);
    cf_buf_init(&text, CREDENTIALS_MAX);
    cf_buf_init(&wanted, 0);
    if (domain && cf_client_normalize_domain(domain, &wanted, err) != CF_OK) {
        cf_err_clear(err); /* not a server a token was stored for; the caller reports the URL */
        rc = CF_ENOTFOUND;
        goto out;
    }
    rc = cf_credentials_path(NULL, &file, err);
    if (rc != CF_OK)
        goto out;
    rc = read_private(file.data, &text, err);
    if (rc != CF_OK)
        goto out;
    doc = json_loadb(text.data ? text.data : "", text.len, 0, NULL);
    const char *stored_domain = json_string_value(json_object_get(doc, "domain"));
    const char *stored_token = json_string_value(json_object_get(doc, "token"));
    if (!stored_domain || !stored_token || !*stored_token) {
        rc = cf_err_set(err, CF_EINVAL,
                        "'%.200s' is not a credentials file (it needs \"domain\" and \"token\"); "
                        "log in again",
                        file.data);
        goto out;
    }
    if (domain && strcmp(stored_domain, wanted.data) != 0) {
        rc = CF_ENOTFOUND; /* issued by another server: never send it elsewhere */
        goto out;
    }
    cf_buf_reset(token);
    cf_buf_reset(domain_used);
    if (cf_buf_puts(token, stored_token) != CF_OK ||
        cf_buf_puts(domain_used, stored_domain) != CF_OK) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    rc = CF_OK;
out:
    json_decref(doc);
    cf_buf_release(&wanted);
    cf_buf_release_wipe(&text);
    cf_buf_release(&file);
    return rc;
}

bool cf_credentials_domain(struct cf_buf *domain)
{
    struct cf_buf token;
    struct cf_err err;

    cf_err_clear(&err);
    cf_buf_init(&token, 0);
    enum cf_rc rc = cf_credentials_for(NULL, &token, domain, &err);
    cf_buf_release_wipe(&token);
    return rc == CF_OK;
}
