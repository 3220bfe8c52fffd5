/* The fixture of the core unit tests (projects_test.c, secrets_test.c, identities_test.c): a real
 * SQLite store in a temporary directory, a keyring from a random root key, and the struct cf_core
 * over them (no audit log, notifier, throttle or JWKS cache: the operations tested here use none).
 * The admin and an identity created per test call the operations; each test has its own
 * directory, removed at the end. */
#ifndef CF_TESTS_CORE_FIXTURE_H
#define CF_TESTS_CORE_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "test_dir.h"

#include "core/core.h"
#include "crypto/keyring.h"
#include "store/store.h"
#include "util/log.h"

static char fx_dir[64];
static char fx_db[256];
static struct cf_store *fx_store;
static struct cf_keyring *fx_keyring;
static struct cf_core fx_core;
static struct cf_err err;
static const struct cf_principal fx_admin = {.kind = CF_PRINCIPAL_ADMIN};

static void fx_setup(void)
{
    uint8_t root[CF_ROOT_KEY_BYTES];
    cr_assert(sodium_init() >= 0);
    cf_log_set_level("warn");
    snprintf(fx_dir, sizeof(fx_dir), "/tmp/coffer-core-XXXXXX");
    cr_assert_not_null(mkdtemp(fx_dir));
    snprintf(fx_db, sizeof(fx_db), "%s/coffer.db", fx_dir);
    struct cf_store_config config = {.dsn = fx_db};
    cr_assert_eq(cf_store_open(&config, &fx_store, &err), CF_OK, "%s", err.msg);
    cf_keyring_generate_root(root);
    cr_assert_eq(cf_keyring_from_bytes(root, &fx_keyring, &err), CF_OK, "%s", err.msg);
    sodium_memzero(root, sizeof(root));
    memset(&fx_core, 0, sizeof(fx_core));
    fx_core.store = fx_store;
    fx_core.keyring = fx_keyring;
}

static void fx_teardown(void)
{
    if (fx_store)
        cf_store_close(fx_store);
    fx_store = NULL;
    cf_keyring_free(fx_keyring);
    fx_keyring = NULL;
    test_dir_remove(fx_dir);
}

/* Whether the bytes of needle occur anywhere in the files of the test's directory (the database
 * and its journal): a plaintext value or credential must never be found there. */
static inline bool fx_on_disk(const char *needle)
{
    bool found = false;
    size_t n = strlen(needle);
    DIR *dir = opendir(fx_dir);
    struct dirent *entry;
    cr_assert_not_null(dir);
    while (!found && (entry = readdir(dir))) {
        char path[512];
        if (entry->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", fx_dir, entry->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        static char data[4 << 20];
        size_t len = fread(data, 1, sizeof(data), f);
        fclose(f);
        for (size_t i = 0; !found && i + n <= len; i++)
            found = memcmp(data + i, needle, n) == 0;
    }
    closedir(dir);
    return found;
}

#endif
