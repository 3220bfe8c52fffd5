/* Encryption to an OpenPGP public key with GPGME (see pgpwrap.h). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gpgme.h>

#include "crypto/pgpwrap.h"
#include "util/dynlib.h"
#include "util/file.h"
#include "util/banned.h"

/* gpg of a temporary home must not start a gpg-agent (nothing here needs a secret key, and an
 * agent would outlive the home). An empty common.conf too: GnuPG 2.4 writes "use-keyboxd" into a
 * home without one, and would then need a keyboxd daemon, which no-autostart forbids. */
#define GPG_CONF "no-autostart\n"
static const char *const HOME_FILES[][2] = {{"gpg.conf", GPG_CONF}, {"common.conf", ""}};
/* Above any public key; an armored RSA-16384 key with many signatures is far smaller. */
#define CIPHER_MAX (1024 * 1024)

static pthread_once_t gpgme_once = PTHREAD_ONCE_INIT;

static void gpgme_setup(void)
{
    gpgme_check_version(NULL);
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path);
    return 0; /* go on: remove as much as possible */
}

/* Makes the temporary GnuPG home (its path into home, PATH_MAX bytes) with its configuration. */
static enum cf_rc make_home(char home[PATH_MAX], struct cf_err *err)
{
    const char *tmp = getenv("TMPDIR");
    char conf[PATH_MAX + 16];

    if (!tmp || !*tmp || strlen(tmp) > 256)
        tmp = "/tmp";
    snprintf(home, PATH_MAX, "%s/coffer-gpg-XXXXXX", tmp);
    if (!mkdtemp(home)) { /* mode 0700 */
        cf_err_set(err, CF_EIO, "cannot make a temporary GnuPG home in '%s': %s", tmp,
                   strerror(errno));
        home[0] = '\0';
        return CF_EIO;
    }
    for (size_t i = 0; i < sizeof(HOME_FILES) / sizeof(HOME_FILES[0]); i++) {
        snprintf(conf, sizeof(conf), "%s/%s", home, HOME_FILES[i][0]);
        int fd = open(conf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        bool written = fd >= 0 && cf_write_all(fd, HOME_FILES[i][1], strlen(HOME_FILES[i][1]));
        if (!written)
            cf_err_set(err, CF_EIO, "cannot write '%s': %s", conf, strerror(errno));
        if (fd >= 0)
            close(fd);
        if (!written)
            return CF_EIO;
    }
    return CF_OK;
}

static void remove_home(const char *home)
{
    if (home[0])
        nftw(home, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* A context on home, in armored, offline mode. */
static enum cf_rc new_context(const char *home, gpgme_ctx_t *ctx, struct cf_err *err)
{
    gpgme_error_t e = gpgme_engine_check_version(GPGME_PROTOCOL_OpenPGP);
    if (e)
        return cf_err_set(err, CF_EUNSUPPORTED,
                          "OpenPGP share keys need gpg (GnuPG), which cannot be run: %s",
                          gpgme_strerror(e));
    e = gpgme_new(ctx);
    if (!e)
        e = gpgme_ctx_set_engine_info(*ctx, GPGME_PROTOCOL_OpenPGP, NULL, home);
    if (e)
        return cf_err_set(err, CF_EUNSUPPORTED, "cannot start GPGME: %s", gpgme_strerror(e));
    gpgme_set_armor(*ctx, 1);
    gpgme_set_offline(*ctx, 1);
    return CF_OK;
}

/* Whether key may be encrypted to now, else CF_EINVAL naming name and saying why. */
static enum cf_rc check_usable(const char *name, gpgme_key_t key, struct cf_err *err)
{
    const char *why = NULL;
    bool subkey_ok = false;

    for (gpgme_subkey_t sub = key->subkeys; sub; sub = sub->next)
        subkey_ok |=
            sub->can_encrypt && !sub->revoked && !sub->expired && !sub->disabled && !sub->invalid;
    if (key->revoked)
        why = "is revoked";
    else if (key->expired)
        why = "has expired";
    else if (key->disabled)
        why = "is disabled";
    else if (key->invalid)
        why = "is not valid";
    else if (!key->can_encrypt || !subkey_ok)
        why = "cannot encrypt (no valid encryption subkey)";
    if (why)
        return cf_err_set(err, CF_EINVAL, "the OpenPGP key in '%s' (%s) %s", name,
                          key->subkeys && key->subkeys->fpr ? key->subkeys->fpr : "?", why);
    return CF_OK;
}

/* Imports key into ctx's home and returns it in *found (released with gpgme_key_unref): it must
 * be the only key there. */
static enum cf_rc import_one(const char *name, gpgme_ctx_t ctx, const char *key, size_t key_len,
                             gpgme_key_t *found, struct cf_err *err)
{
    gpgme_data_t data = NULL;
    gpgme_key_t listed = NULL;
    gpgme_import_result_t result;
    unsigned keys = 0;
    enum cf_rc rc = CF_OK;
    gpgme_error_t e = gpgme_data_new_from_mem(&data, key, key_len, 0);

    if (!e)
        e = gpgme_op_import(ctx, data);
    if (e) {
        rc = cf_err_set(err, CF_EINVAL, "cannot import the OpenPGP key in '%s': %s", name,
                        gpgme_strerror(e));
        goto out;
    }
    result = gpgme_op_import_result(ctx);
    if (result && result->secret_read > 0) {
        rc = cf_err_set(err, CF_EINVAL,
                        "'%s' holds an OpenPGP secret key: give the public key only (gpg "
                        "--export --armor), and keep the secret one away from here",
                        name);
        goto out;
    }
    e = gpgme_op_keylist_start(ctx, NULL, 0);
    while (!e && !(e = gpgme_op_keylist_next(ctx, &listed))) {
        keys++;
        if (*found)
            gpgme_key_unref(listed);
        else
            *found = listed;
        listed = NULL;
    }
    gpgme_op_keylist_end(ctx);
    if (gpgme_err_code(e) != GPG_ERR_EOF) {
        rc = cf_err_set(err, CF_EINVAL, "cannot list the OpenPGP key in '%s': %s", name,
                        gpgme_strerror(e));
        goto out;
    }
    if (keys != 1) {
        rc = cf_err_set(err, CF_EINVAL,
                        "'%s' holds %u OpenPGP public keys: one per share key entry is needed",
                        name, keys);
        goto out;
    }
    rc = check_usable(name, *found, err);
out:
    if (rc != CF_OK && *found) {
        gpgme_key_unref(*found);
        *found = NULL;
    }
    gpgme_data_release(data);
    return rc;
}

/* Encrypts text to found, armored, into *out. */
static enum cf_rc encrypt_to(const char *name, gpgme_ctx_t ctx, gpgme_key_t found, const void *text,
                             size_t len, char **out, struct cf_err *err)
{
    gpgme_key_t recipients[2] = {found, NULL};
    gpgme_data_t plain = NULL, cipher = NULL;
    gpgme_encrypt_result_t result;
    char *mem = NULL;
    size_t mem_len = 0;
    enum cf_rc rc = CF_OK;
    /* copy 0: GPGME reads the caller's buffer; the plaintext is not copied */
    gpgme_error_t e = gpgme_data_new_from_mem(&plain, text, len, 0);

    if (!e)
        e = gpgme_data_new(&cipher);
    if (!e)
        e = gpgme_op_encrypt(ctx, recipients, GPGME_ENCRYPT_ALWAYS_TRUST, plain, cipher);
    result = e ? NULL : gpgme_op_encrypt_result(ctx);
    if (e || (result && result->invalid_recipients)) {
        rc = cf_err_set(err, CF_ECRYPTO, "cannot encrypt a share to the OpenPGP key in '%s': %s",
                        name, e ? gpgme_strerror(e) : "the key was refused");
        goto out;
    }
    mem = gpgme_data_release_and_get_mem(cipher, &mem_len);
    cipher = NULL;
    if (!mem || mem_len == 0 || mem_len > CIPHER_MAX) {
        rc = cf_err_set(err, CF_ECRYPTO, "gpg returned no message for the OpenPGP key in '%s'",
                        name);
        goto out;
    }
    *out = malloc(mem_len + 1);
    if (!*out) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(*out, mem, mem_len);
    (*out)[mem_len] = '\0';
out:
    gpgme_free(mem);
    gpgme_data_release(cipher);
    gpgme_data_release(plain);
    return rc;
}

/* Check (text NULL) or encrypt, in a temporary home removed before returning. */
static enum cf_rc with_key(const char *name, const char *key, size_t key_len, const void *text,
                           size_t len, char **out, struct cf_err *err)
{
    char home[PATH_MAX] = "";
    gpgme_ctx_t ctx = NULL;
    gpgme_key_t found = NULL;
    enum cf_rc rc = cf_dynlib_load(&cf_lib_gpgme, err);

    if (rc != CF_OK)
        return rc;
    pthread_once(&gpgme_once, gpgme_setup);
    rc = make_home(home, err);
    if (rc == CF_OK)
        rc = new_context(home, &ctx, err);
    if (rc == CF_OK)
        rc = import_one(name, ctx, key, key_len, &found, err);
    if (rc == CF_OK && text)
        rc = encrypt_to(name, ctx, found, text, len, out, err);
    if (found)
        gpgme_key_unref(found);
    gpgme_release(ctx);
    remove_home(home);
    return rc;
}

enum cf_rc cf_pgpwrap_check(const char *name, const char *key, size_t key_len, struct cf_err *err)
{
    return with_key(name, key, key_len, NULL, 0, NULL, err);
}

enum cf_rc cf_pgpwrap_encrypt(const char *name, const char *key, size_t key_len, const void *text,
                              size_t len, char **out, struct cf_err *err)
{
    return with_key(name, key, key_len, text, len, out, err);
}
