/* The compiled-rules cache of `coffer scan`: see dbcache.h. A file is
 *   "CFHSDB1\n", the key (32 bytes), the rule count (u32 LE), one byte per rule (1: a prefilter),
 *   the database's length (u64 LE), the database as hs_serialize_database wrote it,
 *   BLAKE2b-256 over everything before it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "scan/dbcache.h"
#include "util/file.h"
#include "util/banned.h"

#define MAGIC "CFHSDB1\n"
#define MAGIC_BYTES 8
#define SUM_BYTES 32
#define PREFIX "scan-"
#define SUFFIX ".hsdb"
/* a temporary file older than this is a write that was cut off */
#define STALE_TMP_SECONDS 3600

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Makes dir (mode 0700) unless it exists. */
static bool make_dir(const char *dir)
{
    return mkdir(dir, 0700) == 0 || errno == EEXIST;
}

char *cf_scan_cache_dir(char *why, size_t size)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    char *dir = NULL;
    struct stat st;
    why[0] = '\0';
    if (xdg && xdg[0] == '/') {
        if (asprintf(&dir, "%s/coffer", xdg) < 0)
            return NULL;
        make_dir(xdg);
    } else if (home && home[0] == '/') {
        char *base = NULL;
        if (asprintf(&base, "%s/.cache", home) < 0)
            return NULL;
        make_dir(base);
        free(base);
        if (asprintf(&dir, "%s/.cache/coffer", home) < 0)
            return NULL;
    } else {
        return NULL;
    }
    if (!make_dir(dir)) {
        /* a home that cannot take it (read-only, missing: a service user's) is no fault of the
           scan's: no cache, and nothing said at every run */
    } else if (lstat(dir, &st) != 0) {
        snprintf(why, size, "cannot read '%s': %s", dir, strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        snprintf(why, size, "'%s' is not a directory", dir);
    } else if (st.st_uid != geteuid()) {
        snprintf(why, size, "'%s' belongs to another user", dir);
    } else if (st.st_mode & 022) {
        snprintf(why, size, "'%s' is writable by others (chmod 700 it)", dir);
    } else {
        return dir;
    }
    free(dir);
    return NULL;
}

void cf_scan_cache_key(const char *const *expressions, const unsigned *flags, const unsigned *ids,
                       size_t count, unsigned mode, const hs_platform_info_t *platform,
                       uint8_t key[CF_SCAN_CACHE_KEY_BYTES])
{
    static const char domain[] = "coffer-scan compiled rules 1";
    crypto_generichash_state h;
    uint8_t word[8];
    const char *version = hs_version();
    crypto_generichash_init(&h, NULL, 0, CF_SCAN_CACHE_KEY_BYTES);
    crypto_generichash_update(&h, (const unsigned char *)domain, sizeof(domain));
    crypto_generichash_update(&h, (const unsigned char *)version, strlen(version) + 1);
    put_u32(word, mode);
    crypto_generichash_update(&h, word, 4);
    put_u32(word, platform != NULL);
    crypto_generichash_update(&h, word, 4);
    if (platform) {
        put_u32(word, platform->tune);
        crypto_generichash_update(&h, word, 4);
        put_u64(word, platform->cpu_features);
        crypto_generichash_update(&h, word, 8);
    }
    put_u64(word, count);
    crypto_generichash_update(&h, word, 8);
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(expressions[i]);
        put_u32(word, flags[i]);
        put_u32(word + 4, ids[i]);
        crypto_generichash_update(&h, word, 8);
        put_u64(word, len);
        crypto_generichash_update(&h, word, 8);
        crypto_generichash_update(&h, (const unsigned char *)expressions[i], len);
    }
    crypto_generichash_final(&h, key, CF_SCAN_CACHE_KEY_BYTES);
}

static char *file_name(const char *dir, const uint8_t key[CF_SCAN_CACHE_KEY_BYTES])
{
    char hex[CF_SCAN_CACHE_KEY_BYTES * 2 + 1];
    char *path = NULL;
    sodium_bin2hex(hex, sizeof(hex), key, CF_SCAN_CACHE_KEY_BYTES);
    if (asprintf(&path, "%s/" PREFIX "%s" SUFFIX, dir, hex) < 0)
        return NULL;
    return path;
}

static bool read_all(int fd, uint8_t *buf, size_t len)
{
    size_t have = 0;
    while (have < len) {
        ssize_t n = read(fd, buf + have, len - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        have += (size_t)n;
    }
    return true;
}

bool cf_scan_cache_load(const char *dir, const uint8_t key[CF_SCAN_CACHE_KEY_BYTES], size_t nrules,
                        uint8_t *prefiltered, hs_database_t **db)
{
    char *path = file_name(dir, key);
    uint8_t *buf = NULL;
    bool ok = false;
    struct stat st;
    int fd = path ? open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
    size_t head = MAGIC_BYTES + CF_SCAN_CACHE_KEY_BYTES + 4 + nrules + 8;
    *db = NULL;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 022) || st.st_size > CF_SCAN_CACHE_MAX_BYTES ||
        (size_t)st.st_size < head + SUM_BYTES)
        goto out;
    size_t len = (size_t)st.st_size;
    buf = malloc(len);
    if (!buf || !read_all(fd, buf, len))
        goto out;
    uint8_t sum[SUM_BYTES];
    crypto_generichash(sum, sizeof(sum), buf, len - SUM_BYTES, NULL, 0);
    const uint8_t *p = buf;
    if (memcmp(p, MAGIC, MAGIC_BYTES) != 0 ||
        memcmp(p + MAGIC_BYTES, key, CF_SCAN_CACHE_KEY_BYTES) != 0 ||
        get_u32(p + MAGIC_BYTES + CF_SCAN_CACHE_KEY_BYTES) != nrules ||
        memcmp(buf + len - SUM_BYTES, sum, SUM_BYTES) != 0)
        goto out;
    const uint8_t *flags = p + MAGIC_BYTES + CF_SCAN_CACHE_KEY_BYTES + 4;
    uint64_t dblen = get_u64(flags + nrules);
    if (dblen != len - head - SUM_BYTES)
        goto out;
    for (size_t i = 0; i < nrules; i++)
        if (flags[i] > 1)
            goto out;
    if (hs_deserialize_database((const char *)buf + head, (size_t)dblen, db) != HS_SUCCESS) {
        *db = NULL;
        goto out;
    }
    memcpy(prefiltered, flags, nrules);
    (void)futimens(fd, NULL); /* recently used: kept longest */
    ok = true;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    free(path);
    return ok;
}

struct cache_entry {
    char *name;
    struct timespec used;
};

static int older_first(const void *a, const void *b)
{
    const struct cache_entry *x = a, *y = b;
    if (x->used.tv_sec != y->used.tv_sec)
        return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
    if (x->used.tv_nsec != y->used.tv_nsec)
        return x->used.tv_nsec < y->used.tv_nsec ? -1 : 1;
    return strcmp(x->name, y->name);
}

static bool has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), m = strlen(suffix);
    return n >= m && strcmp(name + n - m, suffix) == 0;
}

/* Removes the least recently used databases beyond CF_SCAN_CACHE_FILES, and temporary files of
 * writes that were cut off. */
static void prune(const char *dir)
{
    DIR *d = opendir(dir);
    struct cache_entry *entries = NULL;
    size_t n = 0, cap = 0;
    time_t now = time(NULL);
    if (!d)
        return;
    for (struct dirent *de; (de = readdir(d));) {
        struct stat st;
        bool db =
            strncmp(de->d_name, PREFIX, strlen(PREFIX)) == 0 && has_suffix(de->d_name, SUFFIX);
        bool tmp = strncmp(de->d_name, PREFIX, strlen(PREFIX)) == 0 &&
                   strstr(de->d_name, SUFFIX ".tmp.") != NULL;
        if ((!db && !tmp) || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (tmp) {
            if (now - st.st_mtime > STALE_TMP_SECONDS)
                (void)unlinkat(dirfd(d), de->d_name, 0);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            struct cache_entry *grown = realloc(entries, ncap * sizeof(*entries));
            if (!grown)
                break;
            entries = grown;
            cap = ncap;
        }
        entries[n].name = strdup(de->d_name);
        if (!entries[n].name)
            break;
        entries[n].used = st.st_mtim;
        n++;
    }
    if (n > CF_SCAN_CACHE_FILES) {
        qsort(entries, n, sizeof(*entries), older_first);
        for (size_t i = 0; i < n - CF_SCAN_CACHE_FILES; i++)
            (void)unlinkat(dirfd(d), entries[i].name, 0);
    }
    for (size_t i = 0; i < n; i++)
        free(entries[i].name);
    free(entries);
    closedir(d);
}

bool cf_scan_cache_store(const char *dir, const uint8_t key[CF_SCAN_CACHE_KEY_BYTES], size_t nrules,
                         const uint8_t *prefiltered, const char *bytes, size_t dblen)
{
    size_t head = MAGIC_BYTES + CF_SCAN_CACHE_KEY_BYTES + 4 + nrules + 8;
    size_t total = head + dblen + SUM_BYTES;
    char *path = file_name(dir, key);
    uint8_t *file = NULL;
    struct cf_err err = {0};
    bool ok = false;
    if (!path || total > CF_SCAN_CACHE_MAX_BYTES || !(file = malloc(total)))
        goto out;
    memcpy(file, MAGIC, MAGIC_BYTES);
    memcpy(file + MAGIC_BYTES, key, CF_SCAN_CACHE_KEY_BYTES);
    put_u32(file + MAGIC_BYTES + CF_SCAN_CACHE_KEY_BYTES, (uint32_t)nrules);
    memcpy(file + MAGIC_BYTES + CF_SCAN_CACHE_KEY_BYTES + 4, prefiltered, nrules);
    put_u64(file + head - 8, dblen);
    memcpy(file + head, bytes, dblen);
    crypto_generichash(file + head + dblen, SUM_BYTES, file, head + dblen, NULL, 0);
    /* a temporary file beside it, mode 0600, renamed into place */
    ok = cf_file_replace(path, file, total, &err) == CF_OK;
    if (ok)
        prune(dir);
out:
    free(file);
    free(path);
    return ok;
}
