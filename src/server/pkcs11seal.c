/* The root key encrypted by an AES key held in a PKCS#11 token (see pkcs11seal.h). */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <p11-kit/pkcs11.h>
#include <sodium.h>

#include "server/pkcs11seal.h"
#include "util/wipemem.h"
#include "util/banned.h"

#define IV_BYTES 12  /* the GCM nonce length the mechanism processes most efficiently */
#define TAG_BYTES 16 /* a full GCM tag */
#define WRAPPED_BYTES (CF_ROOT_KEY_BYTES + TAG_BYTES)
#define PIN_MAX 256
#define LABEL_MAX 32 /* CK_TOKEN_INFO.label: 32 bytes padded with blanks */
#define SLOTS_MAX 256
/* Binds a ciphertext to its purpose: a record cannot be replayed as some other GCM message. */
static const char AAD[] = "coffer root key";

/* A loaded module with, once opened, a logged-in session on the token. */
struct token {
    void *library;
    CK_FUNCTION_LIST_PTR fn;
    bool initialized, open, logged_in;
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE key;
};

/* The name of a return value for messages (the common ones; others by number). */
static const char *rv_name(CK_RV rv)
{
    switch (rv) {
    case CKR_PIN_INCORRECT:
        return "CKR_PIN_INCORRECT: the token refused the PIN";
    case CKR_PIN_LOCKED:
        return "CKR_PIN_LOCKED: the token's user PIN is locked";
    case CKR_PIN_LEN_RANGE:
        return "CKR_PIN_LEN_RANGE: the PIN has a length the token refuses";
    case CKR_PIN_EXPIRED:
        return "CKR_PIN_EXPIRED";
    case CKR_TOKEN_NOT_PRESENT:
        return "CKR_TOKEN_NOT_PRESENT";
    case CKR_DEVICE_REMOVED:
        return "CKR_DEVICE_REMOVED";
    case CKR_DEVICE_ERROR:
        return "CKR_DEVICE_ERROR";
    case CKR_KEY_TYPE_INCONSISTENT:
        return "CKR_KEY_TYPE_INCONSISTENT: the key is not an AES key";
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
        return "CKR_KEY_FUNCTION_NOT_PERMITTED: the key may not encrypt or decrypt";
    case CKR_MECHANISM_INVALID:
        return "CKR_MECHANISM_INVALID: the token has no CKM_AES_GCM";
    case CKR_MECHANISM_PARAM_INVALID:
        return "CKR_MECHANISM_PARAM_INVALID";
    case CKR_ENCRYPTED_DATA_INVALID:
        return "CKR_ENCRYPTED_DATA_INVALID";
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
        return "CKR_ENCRYPTED_DATA_LEN_RANGE";
    case CKR_USER_TYPE_INVALID:
        return "CKR_USER_TYPE_INVALID";
    case CKR_USER_PIN_NOT_INITIALIZED:
        return "CKR_USER_PIN_NOT_INITIALIZED";
    case CKR_GENERAL_ERROR:
        return "CKR_GENERAL_ERROR";
    case CKR_FUNCTION_FAILED:
        return "CKR_FUNCTION_FAILED";
    case CKR_ARGUMENTS_BAD:
        return "CKR_ARGUMENTS_BAD";
    default:
        return NULL;
    }
}

static enum cf_rc token_fail(struct cf_err *err, enum cf_rc rc, const char *call, CK_RV rv,
                             const char *token_label)
{
    const char *name = rv_name(rv);
    if (name)
        return cf_err_set(err, rc, "PKCS#11 %s on token '%s' failed: %s", call, token_label, name);
    return cf_err_set(err, rc, "PKCS#11 %s on token '%s' failed: CK_RV 0x%lx", call, token_label,
                      (unsigned long)rv);
}

/* The PIN from the environment or its file (pin: PIN_MAX bytes the caller wipes). */
static enum cf_rc read_pin(char *pin, size_t *pin_len, struct cf_err *err)
{
    const char *value = getenv(CF_PKCS11SEAL_PIN_ENV);
    const char *path = getenv(CF_PKCS11SEAL_PIN_FILE_ENV);
    size_t n = 0;
    if (value && *value) {
        n = strlen(value);
        if (n >= PIN_MAX)
            return cf_err_set(err, CF_EINVAL, "%s is longer than %d bytes", CF_PKCS11SEAL_PIN_ENV,
                              PIN_MAX - 1);
        memcpy(pin, value, n);
    } else if (path && *path) {
        FILE *f = fopen(path, "re");
        if (!f)
            return cf_err_set(err, CF_EINVAL, "cannot read the PKCS#11 PIN file '%s': %s", path,
                              strerror(errno));
        n = fread(pin, 1, PIN_MAX, f);
        bool failed = ferror(f) != 0;
        fclose(f);
        if (failed || n == PIN_MAX)
            return cf_err_set(err, CF_EINVAL,
                              "the PKCS#11 PIN file '%s' cannot be read or is longer than %d "
                              "bytes",
                              path, PIN_MAX - 1);
        while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r'))
            n--;
    }
    if (n == 0)
        return cf_err_set(err, CF_EINVAL,
                          "neither %s nor %s is set: the user PIN of the PKCS#11 token",
                          CF_PKCS11SEAL_PIN_ENV, CF_PKCS11SEAL_PIN_FILE_ENV);
    *pin_len = n;
    return CF_OK;
}

static void token_close(struct token *t)
{
    if (t->logged_in)
        t->fn->C_Logout(t->session);
    if (t->open)
        t->fn->C_CloseSession(t->session);
    if (t->initialized)
        t->fn->C_Finalize(NULL);
    if (t->library)
        dlclose(t->library);
    memset(t, 0, sizeof(*t));
}

/* Whether a token's blank-padded label is label. */
static bool label_is(const unsigned char padded[LABEL_MAX], const char *label)
{
    size_t n = strlen(label), end = LABEL_MAX;
    while (end > 0 && padded[end - 1] == ' ')
        end--;
    return n == end && memcmp(padded, label, n) == 0;
}

/* Finds the slot whose token has the label. */
static enum cf_rc find_slot(struct token *t, const char *token_label, CK_SLOT_ID *slot,
                            struct cf_err *err)
{
    CK_SLOT_ID slots[SLOTS_MAX];
    CK_ULONG n = SLOTS_MAX;
    CK_RV rv = t->fn->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK)
        return token_fail(err, CF_EUNAVAIL, "C_GetSlotList", rv, token_label);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO info;
        if (t->fn->C_GetTokenInfo(slots[i], &info) == CKR_OK && label_is(info.label, token_label)) {
            *slot = slots[i];
            return CF_OK;
        }
    }
    return cf_err_set(err, CF_EUNAVAIL, "the PKCS#11 module has no token labelled '%s'",
                      token_label);
}

/* Refuses a module that someone else could have replaced: the path comes from the store's record,
 * and loading a library runs its code in this process, so only an absolute path to a regular file
 * that root or this user owns, writable by no one else, is loaded. */
static enum cf_rc check_module(const char *path, struct cf_err *err)
{
    struct stat st;
    if (path[0] != '/')
        return cf_err_set(err, CF_EINVAL, "the PKCS#11 module '%s' is not an absolute path", path);
    if (stat(path, &st) != 0)
        return cf_err_set(err, CF_EUNAVAIL, "cannot load the PKCS#11 module '%s': %s", path,
                          strerror(errno));
    if (!S_ISREG(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()) ||
        (st.st_mode & (S_IWGRP | S_IWOTH)))
        return cf_err_set(err, CF_EINVAL,
                          "the PKCS#11 module '%s' is not a file owned by root or this user and "
                          "writable by no one else: not loaded",
                          path);
    return CF_OK;
}

/* Loads the module, logs in to the token and finds the key (t released by token_close, also on
 * failure). */
static enum cf_rc token_open(const struct cf_pkcs11seal_config *config, struct token *t,
                             struct cf_err *err)
{
    char pin[PIN_MAX];
    size_t pin_len = 0;
    CK_SLOT_ID slot = 0;
    CK_RV rv;
    enum cf_rc rc;
    CK_C_GetFunctionList get_list;

    memset(t, 0, sizeof(*t));
    rc = read_pin(pin, &pin_len, err);
    if (rc != CF_OK)
        goto out;
    rc = check_module(config->module, err);
    if (rc != CF_OK)
        goto out;
    t->library = dlopen(config->module, RTLD_NOW | RTLD_LOCAL);
    if (!t->library) {
        rc = cf_err_set(err, CF_EUNAVAIL, "cannot load the PKCS#11 module '%s': %s", config->module,
                        dlerror());
        goto out;
    }
    /* POSIX: a function pointer read through dlsym's object pointer */
    *(void **)&get_list = dlsym(t->library, "C_GetFunctionList");
    if (!get_list || get_list(&t->fn) != CKR_OK || !t->fn) {
        rc = cf_err_set(err, CF_EUNAVAIL, "'%s' is not a PKCS#11 module (no C_GetFunctionList)",
                        config->module);
        goto out;
    }
    rv = t->fn->C_Initialize(NULL);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        rc = token_fail(err, CF_EUNAVAIL, "C_Initialize", rv, config->token_label);
        goto out;
    }
    t->initialized = rv == CKR_OK; /* finalized only by whoever initialized it */
    rc = find_slot(t, config->token_label, &slot, err);
    if (rc != CF_OK)
        goto out;
    rv = t->fn->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &t->session);
    if (rv != CKR_OK) {
        rc = token_fail(err, CF_EUNAVAIL, "C_OpenSession", rv, config->token_label);
        goto out;
    }
    t->open = true;
    rv = t->fn->C_Login(t->session, CKU_USER, (CK_UTF8CHAR_PTR)pin, pin_len);
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        rc = token_fail(err,
                        rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED ||
                                rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_EXPIRED
                            ? CF_EUNAUTH
                            : CF_EUNAVAIL,
                        "C_Login", rv, config->token_label);
        goto out;
    }
    t->logged_in = rv == CKR_OK;

    CK_OBJECT_CLASS class = CKO_SECRET_KEY;
    CK_ATTRIBUTE query[] = {
        {CKA_CLASS, &class, sizeof(class)},
        {CKA_LABEL, (void *)config->key_label, strlen(config->key_label)},
    };
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n_found = 0;
    rv = t->fn->C_FindObjectsInit(t->session, query, 2);
    if (rv == CKR_OK) {
        rv = t->fn->C_FindObjects(t->session, found, 2, &n_found);
        t->fn->C_FindObjectsFinal(t->session);
    }
    if (rv != CKR_OK) {
        rc = token_fail(err, CF_EUNAVAIL, "C_FindObjects", rv, config->token_label);
        goto out;
    }
    if (n_found != 1) {
        rc = cf_err_set(err, CF_ENOTFOUND,
                        n_found ? "the PKCS#11 token '%s' holds more than one secret key labelled "
                                  "'%s'"
                                : "the PKCS#11 token '%s' holds no secret key labelled '%s'",
                        config->token_label, config->key_label);
        goto out;
    }
    t->key = found[0];
out:
    sodium_memzero(pin, sizeof(pin));
    if (rc != CF_OK)
        token_close(t);
    return rc;
}

/* Runs one GCM encryption or decryption of in (in_len bytes) into out (out_max). */
static enum cf_rc gcm(struct token *t, bool encrypt, const char *token_label,
                      const uint8_t iv[IV_BYTES], const uint8_t *in, size_t in_len, uint8_t *out,
                      size_t out_max, size_t *out_len, struct cf_err *err)
{
    CK_GCM_PARAMS params = {
        .pIv = (CK_BYTE_PTR)iv,
        .ulIvLen = IV_BYTES,
        .ulIvBits = IV_BYTES * 8,
        .pAAD = (CK_BYTE_PTR)AAD,
        .ulAADLen = sizeof(AAD) - 1,
        .ulTagBits = TAG_BYTES * 8,
    };
    CK_MECHANISM mechanism = {CKM_AES_GCM, &params, sizeof(params)};
    CK_ULONG n = out_max;
    CK_RV rv = encrypt ? t->fn->C_EncryptInit(t->session, &mechanism, t->key)
                       : t->fn->C_DecryptInit(t->session, &mechanism, t->key);
    if (rv != CKR_OK)
        return token_fail(err, CF_ECRYPTO, encrypt ? "C_EncryptInit" : "C_DecryptInit", rv,
                          token_label);
    rv = encrypt ? t->fn->C_Encrypt(t->session, (CK_BYTE_PTR)in, in_len, out, &n)
                 : t->fn->C_Decrypt(t->session, (CK_BYTE_PTR)in, in_len, out, &n);
    if (rv != CKR_OK)
        return token_fail(err, CF_ECRYPTO, encrypt ? "C_Encrypt" : "C_Decrypt", rv, token_label);
    *out_len = n;
    return CF_OK;
}

enum cf_rc cf_pkcs11seal_wrap(const struct cf_pkcs11seal_config *config,
                              const uint8_t root[CF_ROOT_KEY_BYTES], char **record,
                              struct cf_err *err)
{
    struct token t;
    uint8_t iv[IV_BYTES], wrapped[WRAPPED_BYTES];
    size_t wrapped_len = 0;
    char iv_text[sodium_base64_ENCODED_LEN(IV_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    char text[sodium_base64_ENCODED_LEN(WRAPPED_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    json_t *out = NULL;
    char *dumped = NULL;
    enum cf_rc rc;

    *record = NULL;
    if (!config->module || !config->token_label || !config->key_label)
        return cf_err_set(err, CF_EINVAL,
                          "--pkcs11-module, --pkcs11-token-label and "
                          "--pkcs11-key-label go together");
    rc = token_open(config, &t, err);
    if (rc != CF_OK)
        return rc;
    randombytes_buf(iv, sizeof(iv));
    rc = gcm(&t, true, config->token_label, iv, root, CF_ROOT_KEY_BYTES, wrapped, sizeof(wrapped),
             &wrapped_len, err);
    token_close(&t);
    if (rc == CF_OK && wrapped_len != WRAPPED_BYTES)
        rc = cf_err_set(err, CF_ECRYPTO, "the PKCS#11 token returned a ciphertext of %zu bytes",
                        wrapped_len);
    if (rc != CF_OK)
        return rc;
    sodium_bin2base64(iv_text, sizeof(iv_text), iv, sizeof(iv),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_bin2base64(text, sizeof(text), wrapped, wrapped_len,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out = json_pack("{s:s, s:s, s:s, s:s, s:s}", "module", config->module, "token",
                    config->token_label, "key", config->key_label, "iv", iv_text, "wrapped", text);
    dumped = out ? json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    /* handed over in malloc'd memory: json_dumps' may come from the wiping allocator */
    *record = dumped ? strdup(dumped) : NULL;
    cf_json_free_text(dumped);
    json_decref(out);
    if (!*record)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    return CF_OK;
}

/* Decodes base64url text into exactly want bytes. */
static bool decode(const char *text, uint8_t *bytes, size_t want)
{
    size_t len = 0;
    const char *end = NULL;
    return text &&
           sodium_base642bin(bytes, want, text, strlen(text), NULL, &len, &end,
                             sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
           end == text + strlen(text) && len == want;
}

enum cf_rc cf_pkcs11seal_unwrap(const uint8_t *record, size_t len, uint8_t root[CF_ROOT_KEY_BYTES],
                                struct cf_err *err)
{
    json_error_t parse_error;
    struct token t;
    uint8_t iv[IV_BYTES], wrapped[WRAPPED_BYTES];
    /* room for the tag too: some modules check the output size against the input's */
    uint8_t plain[WRAPPED_BYTES];
    size_t plain_len = 0;
    enum cf_rc rc;
    json_t *doc = json_loadb((const char *)record, len, 0, &parse_error);
    struct cf_pkcs11seal_config config = {
        .module = json_string_value(json_object_get(doc, "module")),
        .token_label = json_string_value(json_object_get(doc, "token")),
        .key_label = json_string_value(json_object_get(doc, "key")),
    };

    sodium_memzero(root, CF_ROOT_KEY_BYTES);
    if (!config.module || !config.token_label || !config.key_label ||
        !decode(json_string_value(json_object_get(doc, "iv")), iv, sizeof(iv)) ||
        !decode(json_string_value(json_object_get(doc, "wrapped")), wrapped, sizeof(wrapped))) {
        rc = cf_err_set(err, CF_EINVAL, "the stored PKCS#11 seal record is not one");
        goto out;
    }
    rc = token_open(&config, &t, err);
    if (rc != CF_OK)
        goto out;
    rc = gcm(&t, false, config.token_label, iv, wrapped, sizeof(wrapped), plain, sizeof(plain),
             &plain_len, err);
    token_close(&t);
    if (rc == CF_OK && plain_len != CF_ROOT_KEY_BYTES)
        rc =
            cf_err_set(err, CF_ECRYPTO, "the key decrypted by the PKCS#11 token is not a root key");
    if (rc == CF_OK)
        memcpy(root, plain, CF_ROOT_KEY_BYTES);
out:
    sodium_memzero(plain, sizeof(plain));
    json_decref(doc);
    return rc;
}
