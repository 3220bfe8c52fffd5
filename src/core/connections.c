/* App connections (see connections.h): validation of each app's credentials, their sealing, the
 * non-secret fields shown instead of them, the engine's open/close, and the check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "core/auditlog.h"
#include "core/connections.h"
#include "crypto/serverkey.h"
#include "provider/webhook.h"
#include "util/id.h"
#include "util/wipemem.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define WHAT "manage app connections"

/* How a credentials field is checked and shown. */
enum field_kind {
    FIELD_PUBLIC, /* an id or a name: shown as it is */
    FIELD_URL,    /* an endpoint override: http(s) URL, shown */
    FIELD_SECRET, /* a token or a client secret: never shown; a hint of its last four characters */
    FIELD_CERT,   /* PEM certificate and private key: never shown; the certificate's thumbprint */
    FIELD_KEY,    /* PEM private key: never shown; the public key's fingerprint */
    FIELD_PASSWORD, /* a password chosen by a person (spaces allowed): never shown, no hint */
    FIELD_PORT,     /* a TCP port, an integer 1 to 65535: shown */
    FIELD_FLAG,     /* a boolean: shown */
    FIELD_CA,       /* a PEM certificate to trust (public): shown */
    FIELD_HMAC_KEY, /* a key Coffer signs requests with: as FIELD_SECRET, at least
                       CF_WEBHOOK_SECRET_MIN characters */
};

struct field {
    const char *name;
    enum field_kind kind;
    bool required;
};

#define FIELDS_MAX 8

/* The apps, their methods and the fields of each method's credentials (Infisical's shapes, plus the
 * endpoint overrides of provider/provider.h). */
static const struct method {
    const char *app;
    const char *method;
    struct field fields[FIELDS_MAX];
} methods[] = {
    {"azure-client-secrets",
     "client-secret",
     {{"tenantId", FIELD_PUBLIC, true},
      {"clientId", FIELD_PUBLIC, true},
      {"clientSecret", FIELD_SECRET, true},
      {"authorityHost", FIELD_URL, false},
      {"graphHost", FIELD_URL, false}}},
    {"azure-client-secrets",
     "certificate",
     {{"tenantId", FIELD_PUBLIC, true},
      {"clientId", FIELD_PUBLIC, true},
      {"certificate", FIELD_CERT, true},
      {"authorityHost", FIELD_URL, false},
      {"graphHost", FIELD_URL, false}}},
    {"azure-devops",
     "access-token",
     {{"accessToken", FIELD_SECRET, true},
      {"orgName", FIELD_PUBLIC, true},
      {"instanceUrl", FIELD_URL, false}}},
    {"azure-devops",
     "client-secret",
     {{"tenantId", FIELD_PUBLIC, true},
      {"clientId", FIELD_PUBLIC, true},
      {"clientSecret", FIELD_SECRET, true},
      {"orgName", FIELD_PUBLIC, true},
      {"instanceUrl", FIELD_URL, false},
      {"authorityHost", FIELD_URL, false}}},
    {"azure-devops",
     "certificate",
     {{"tenantId", FIELD_PUBLIC, true},
      {"clientId", FIELD_PUBLIC, true},
      {"certificate", FIELD_CERT, true},
      {"orgName", FIELD_PUBLIC, true},
      {"instanceUrl", FIELD_URL, false},
      {"authorityHost", FIELD_URL, false}}},
    {"azure-key-vault",
     "client-secret",
     {{"tenantId", FIELD_PUBLIC, true},
      {"clientId", FIELD_PUBLIC, true},
      {"clientSecret", FIELD_SECRET, true},
      {"authorityHost", FIELD_URL, false},
      {"vaultBaseUrl", FIELD_URL, false}}},
    {"azure-key-vault",
     "certificate",
     {{"tenantId", FIELD_PUBLIC, true},
      {"clientId", FIELD_PUBLIC, true},
      {"certificate", FIELD_CERT, true},
      {"authorityHost", FIELD_URL, false},
      {"vaultBaseUrl", FIELD_URL, false}}},
    {"github",
     "app",
     {{"appId", FIELD_PUBLIC, true},
      {"privateKey", FIELD_KEY, true},
      {"installationId", FIELD_PUBLIC, true},
      {"host", FIELD_URL, false}}},
    {"github",
     "personal-access-token",
     {{"personalAccessToken", FIELD_SECRET, true}, {"host", FIELD_URL, false}}},
    /* host may also be a Unix socket directory (an absolute path), as libpq takes it */
    {"postgres",
     "username-and-password",
     {{"host", FIELD_PUBLIC, true},
      {"port", FIELD_PORT, true},
      {"database", FIELD_PUBLIC, true},
      {"username", FIELD_PUBLIC, true},
      {"password", FIELD_PASSWORD, true},
      {"sslEnabled", FIELD_FLAG, false},
      {"sslRejectUnauthorized", FIELD_FLAG, false},
      {"sslCertificate", FIELD_CA, false}}},
    /* MySQL and MariaDB (provider/mysqldynamic.h); host may also be the server's Unix socket (an
     * absolute path) */
    {"mysql",
     "username-and-password",
     {{"host", FIELD_PUBLIC, true},
      {"port", FIELD_PORT, true},
      {"database", FIELD_PUBLIC, true},
      {"username", FIELD_PUBLIC, true},
      {"password", FIELD_PASSWORD, true},
      {"sslEnabled", FIELD_FLAG, false},
      {"sslRejectUnauthorized", FIELD_FLAG, false},
      {"sslCertificate", FIELD_CA, false}}},
    /* the receivers of the "webhook" rotation consumer (provider/webhook.h) */
    {"webhook", "signing-secret", {{"signingSecret", FIELD_HMAC_KEY, true}}},
};

#define PUBLIC_VALUE_MAX 256 /* an id, a name or a URL */

static const struct method *find_method(const char *app, const char *method)
{
    for (size_t i = 0; i < CF_ARRAY_SIZE(methods); i++)
        if (strcmp(methods[i].app, app) == 0 && (!method || strcmp(methods[i].method, method) == 0))
            return &methods[i];
    return NULL;
}

bool cf_connection_app_known(const char *app, const char *method)
{
    return app && find_method(app, method) != NULL;
}

/* The methods of app, "a, b or c", into out. */
static void method_names(const char *app, char *out, size_t size)
{
    size_t n = 0, used = 0;
    for (size_t i = 0; i < CF_ARRAY_SIZE(methods); i++)
        n += strcmp(methods[i].app, app) == 0;
    out[0] = '\0';
    for (size_t i = 0, seen = 0; i < CF_ARRAY_SIZE(methods) && used < size; i++) {
        if (strcmp(methods[i].app, app) != 0)
            continue;
        seen++;
        const char *sep = seen == 1 ? "" : seen == n ? " or " : ", ";
        int w = snprintf(out + used, size - used, "%s%s", sep, methods[i].method);
        used += w > 0 ? (size_t)w : 0;
    }
}

/* A PEM certificate and the private key that goes with it (both in text): the certificate's
 * SHA-1 thumbprint (as Entra ID and the Azure portal show it) in hex and its notAfter. */
static enum cf_rc parse_certificate(const char *text, char thumbprint[41], int64_t *not_after,
                                    struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    BIO *bio = BIO_new_mem_buf(text, -1);
    if (!bio)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (!cert) {
        rc = cf_err_field(err, CF_EVALIDATION, "credentials.certificate",
                          "credentials.certificate: no PEM certificate could be read");
        goto out;
    }
    (void)BIO_reset(bio);
    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (!key) {
        rc = cf_err_field(err, CF_EVALIDATION, "credentials.certificate",
                          "credentials.certificate: needs the certificate and its PEM private key "
                          "(unencrypted)");
        goto out;
    }
    if (X509_check_private_key(cert, key) != 1) {
        rc = cf_err_field(err, CF_EVALIDATION, "credentials.certificate",
                          "credentials.certificate: the private key is not the certificate's");
        goto out;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(cert, EVP_sha1(), digest, &len) != 1 || len != 20) {
        rc = cf_err_set(err, CF_ECRYPTO, "cannot compute the certificate's thumbprint");
        goto out;
    }
    for (unsigned int i = 0; i < len; i++)
        snprintf(thumbprint + 2 * i, 3, "%02X", digest[i]);
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) {
        rc = cf_err_field(err, CF_EVALIDATION, "credentials.certificate",
                          "credentials.certificate: unreadable notAfter");
        goto out;
    }
    *not_after = (int64_t)timegm(&tm) * 1000;
out:
    EVP_PKEY_free(key);
    X509_free(cert);
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

/* A PEM private key (GitHub App): its public key's fingerprint as GitHub shows it, "SHA256:" and
 * the unpadded base64 of the SHA-256 of the DER SubjectPublicKeyInfo. */
static enum cf_rc parse_private_key(const char *text, char fingerprint[64], struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    unsigned char *der = NULL;
    BIO *bio = BIO_new_mem_buf(text, -1);
    if (!bio)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    int der_len = key ? i2d_PUBKEY(key, &der) : -1;
    if (!key)
        rc = cf_err_field(err, CF_EVALIDATION, "credentials.privateKey",
                          "credentials.privateKey: no PEM private key (unencrypted) could be read");
    else if (der_len <= 0)
        rc = cf_err_set(err, CF_ECRYPTO, "cannot compute the private key's fingerprint");
    if (rc == CF_OK) {
        unsigned char digest[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(digest, der, (unsigned long long)der_len);
        memcpy(fingerprint, "SHA256:", 7);
        sodium_bin2base64(fingerprint + 7, 64 - 7, digest, sizeof(digest),
                          sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
    }
    OPENSSL_free(der);
    EVP_PKEY_free(key);
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

/* A certificate to trust (a CA's, public): it must read as PEM; it is shown as given. */
static enum cf_rc check_ca(const char *field, const char *value, size_t len, json_t *shown,
                           struct cf_err *err)
{
    BIO *bio = BIO_new_mem_buf(value, (int)len);
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    enum cf_rc rc = CF_OK;
    if (!bio)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    else if (!cert)
        rc =
            cf_err_field(err, CF_EVALIDATION, field, "%s: no PEM certificate could be read", field);
    else if (json_object_set_new(shown, field + strlen("credentials."), json_stringn(value, len)))
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    X509_free(cert);
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

/* Checks one field's value; adds what may be shown of it to shown. *not_after: a certificate's. */
static enum cf_rc check_field(const struct field *f, const char *value, size_t len, json_t *shown,
                              int64_t *not_after, struct cf_err *err)
{
    char field[CF_ERR_FIELD_MAX];
    snprintf(field, sizeof(field), "credentials.%s", f->name);
    if (len == 0)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: must not be empty", field);
    if (f->kind == FIELD_PUBLIC || f->kind == FIELD_URL) {
        if (len > PUBLIC_VALUE_MAX)
            return cf_err_field(err, CF_EVALIDATION, field, "%s: at most %d characters", field,
                                PUBLIC_VALUE_MAX);
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
                return cf_err_field(err, CF_EVALIDATION, field,
                                    "%s: must not hold control characters", field);
        if (f->kind == FIELD_URL && strncmp(value, "https://", 8) != 0 &&
            strncmp(value, "http://", 7) != 0)
            return cf_err_field(err, CF_EVALIDATION, field, "%s: an http(s) URL is expected",
                                field);
        return json_object_set_new(shown, f->name, json_stringn(value, len)) == 0
                   ? CF_OK
                   : cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    if (f->kind == FIELD_PASSWORD) {
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f)
                return cf_err_field(err, CF_EVALIDATION, field,
                                    "%s: must not hold control characters", field);
        return CF_OK; /* a password a person chose: not even a hint of it is shown */
    }
    if (f->kind == FIELD_CA)
        return check_ca(field, value, len, shown, err);
    char hint_name[64], hint[64];
    enum cf_rc rc = CF_OK;
    if (f->kind == FIELD_HMAC_KEY && len < CF_WEBHOOK_SECRET_MIN)
        return cf_err_field(err, CF_EVALIDATION, field,
                            "%s: at least %d characters (a random key, e.g. `openssl rand -hex "
                            "32`)",
                            field, CF_WEBHOOK_SECRET_MIN);
    if (f->kind == FIELD_SECRET || f->kind == FIELD_HMAC_KEY) {
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)value[i] <= 0x20 || value[i] == 0x7f)
                return cf_err_field(err, CF_EVALIDATION, field,
                                    "%s: must not hold spaces or control characters (a stray "
                                    "newline in the file?)",
                                    field);
        /* The last four characters of a long random token say which one it is and nothing
         * useful about it; a short secret shows none. */
        snprintf(hint_name, sizeof(hint_name), "%sHint", f->name);
        snprintf(hint, sizeof(hint), "****%s", len >= 16 ? value + len - 4 : "");
    } else if (f->kind == FIELD_CERT) {
        snprintf(hint_name, sizeof(hint_name), "certificateThumbprint");
        rc = parse_certificate(value, hint, not_after, err);
    } else {
        snprintf(hint_name, sizeof(hint_name), "privateKeyFingerprint");
        rc = parse_private_key(value, hint, err);
    }
    if (rc == CF_OK && json_object_set_new(shown, hint_name, json_string(hint)) != 0)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    return rc;
}

/* A port: an integer 1 to 65535 (a number, or its decimal digits in a string). */
static enum cf_rc check_port(const struct field *f, const json_t *v, json_t *shown,
                             struct cf_err *err)
{
    char field[CF_ERR_FIELD_MAX];
    snprintf(field, sizeof(field), "credentials.%s", f->name);
    json_int_t port = -1;
    if (json_is_integer(v)) {
        port = json_integer_value(v);
    } else if (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= 5) {
        port = 0;
        for (const char *c = json_string_value(v); *c && port >= 0; c++)
            port = *c >= '0' && *c <= '9' ? port * 10 + (*c - '0') : -1;
    }
    if (port < 1 || port > 65535)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: a port from 1 to 65535 is expected",
                            field);
    return json_object_set_new(shown, f->name, json_integer(port)) == 0
               ? CF_OK
               : cf_err_set(err, CF_ENOMEM, "out of memory");
}

/* Validates credentials for m; *shown (new object) is what may be shown of them; *not_after the
 * certificate's expiry (0: none). */
static enum cf_rc validate(const struct method *m, const json_t *credentials, json_t **shown,
                           int64_t *not_after, struct cf_err *err)
{
    *shown = NULL;
    *not_after = 0;
    if (!json_is_object(credentials))
        return cf_err_field(err, CF_EVALIDATION, "credentials",
                            "credentials: an object is required for %s %s", m->app, m->method);
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)credentials, key, value)
    {
        bool known = false;
        for (size_t i = 0; i < FIELDS_MAX && m->fields[i].name; i++)
            known = known || strcmp(m->fields[i].name, key) == 0;
        if (!known)
            return cf_err_field(err, CF_EVALIDATION, "credentials",
                                "credentials.%.48s: not a field of %s %s", key, m->app, m->method);
    }
    char *text = json_dumps(credentials, JSON_COMPACT);
    size_t total = text ? strlen(text) : 0;
    if (text) {
        sodium_memzero(text, total);
        cf_json_free_text(text);
    }
    if (!text)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    if (total > CF_CONN_CREDENTIALS_MAX)
        return cf_err_field(err, CF_EVALIDATION, "credentials",
                            "credentials: at most %d bytes as JSON", CF_CONN_CREDENTIALS_MAX);
    json_t *out = json_object();
    if (!out)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    enum cf_rc rc = CF_OK;
    for (size_t i = 0; rc == CF_OK && i < FIELDS_MAX && m->fields[i].name; i++) {
        const struct field *f = &m->fields[i];
        json_t *v = json_object_get(credentials, f->name);
        char field[CF_ERR_FIELD_MAX];
        snprintf(field, sizeof(field), "credentials.%s", f->name);
        if (!v && f->required)
            rc = cf_err_field(err, CF_EVALIDATION, field, "%s is required for %s %s", field, m->app,
                              m->method);
        else if (v && f->kind == FIELD_PORT)
            rc = check_port(f, v, out, err);
        else if (v && f->kind == FIELD_FLAG && !json_is_boolean(v))
            rc = cf_err_field(err, CF_EVALIDATION, field, "%s: true or false is expected", field);
        else if (v && f->kind == FIELD_FLAG)
            rc = json_object_set(out, f->name, v) == 0
                     ? CF_OK
                     : cf_err_set(err, CF_ENOMEM, "out of memory");
        else if (v && !json_is_string(v))
            rc = cf_err_field(err, CF_EVALIDATION, field, "%s: a string is expected", field);
        else if (v)
            rc = check_field(f, json_string_value(v), json_string_length(v), out, not_after, err);
    }
    if (rc == CF_OK)
        *shown = out;
    else
        json_decref(out);
    return rc;
}

/* The method of app, or CF_EVALIDATION naming the app or method Coffer does not know. */
static enum cf_rc find_checked(const char *app, const char *method, const struct method **m,
                               struct cf_err *err)
{
    char names[128];
    *m = NULL;
    if (!app || !find_method(app, NULL))
        return cf_err_field(err, CF_EVALIDATION, "app",
                            "app: azure-client-secrets, azure-devops, azure-key-vault, github, "
                            "mysql, postgres or webhook, not '%.32s'",
                            app ? app : "");
    if (!method || !(*m = find_method(app, method))) {
        method_names(app, names, sizeof(names));
        return cf_err_field(err, CF_EVALIDATION, "method", "method: %s for %s, not '%.32s'", names,
                            app, method ? method : "");
    }
    return CF_OK;
}

enum cf_rc cf_connection_validate(const char *app, const char *method, const json_t *credentials,
                                  struct cf_err *err)
{
    const struct method *m;
    json_t *shown = NULL;
    int64_t not_after;
    enum cf_rc rc = find_checked(app, method, &m, err);
    if (rc == CF_OK)
        rc = validate(m, credentials, &shown, &not_after, err);
    json_decref(shown);
    return rc;
}

/* Overwrites every string in v (credentials parsed from sealed text) before it is freed. */
static void wipe_json(json_t *v)
{
    if (json_is_string(v)) {
        sodium_memzero((char *)json_string_value(v), json_string_length(v));
    } else if (json_is_object(v)) {
        const char *key;
        json_t *item;
        json_object_foreach(v, key, item) wipe_json(item);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) wipe_json(item);
    }
}

static void seal_context(const char *id, char *out, size_t size)
{
    snprintf(out, size, "app-connection:%s", id);
}

/* Seals credentials for connection id into *sealed (malloc'd text). */
static enum cf_rc seal(struct cf_core *core, const char *id, const json_t *credentials,
                       char **sealed, struct cf_err *err)
{
    char context[CF_CREDENTIAL_CONTEXT_MAX];
    *sealed = NULL;
    char *text = json_dumps(credentials, JSON_COMPACT);
    if (!text)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    size_t len = strlen(text);
    size_t size = CF_SEALED_TEXT_MAX(len);
    char *out = malloc(size);
    enum cf_rc rc = out ? CF_OK : cf_err_set(err, CF_ENOMEM, "out of memory");
    seal_context(id, context, sizeof(context));
    if (rc == CF_OK)
        rc = cf_credential_seal(core->store, core->keyring, context, text, out, size, err);
    sodium_memzero(text, len);
    cf_json_free_text(text);
    if (rc == CF_OK)
        *sealed = out;
    else
        free(out);
    return rc;
}

static enum cf_rc not_found(const char *id, struct cf_err *err)
{
    return cf_err_set(err, CF_ENOTFOUND, "App Connection with ID '%.40s' not found", id);
}

/* The connection id, of app when app is non-NULL. */
static enum cf_rc get_of_app(struct cf_core *core, const char *app, const char *id,
                             struct cf_connection *out, struct cf_err *err)
{
    enum cf_rc rc = cf_store_connection_get(core->store, id, out, err);
    if (rc == CF_OK && app && strcmp(out->app, app) != 0)
        rc = CF_ENOTFOUND;
    if (rc == CF_ENOTFOUND)
        rc = not_found(id, err);
    return rc;
}

static enum cf_rc set_public(struct cf_connection *c, json_t *shown, struct cf_err *err)
{
    char *text = json_dumps(shown, JSON_COMPACT | JSON_SORT_KEYS);
    bool fits = text && cf_strlcpy(c->public_fields, text, sizeof(c->public_fields));
    cf_json_free_text(text);
    if (!text)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    return fits ? CF_OK
                : cf_err_field(err, CF_EVALIDATION, "credentials",
                               "credentials: the non-secret fields exceed %d bytes",
                               CF_CONN_PUBLIC_MAX - 1);
}

static enum cf_rc check_text(const char *field, const char *value, size_t max, struct cf_err *err)
{
    if (value && strlen(value) > max)
        return cf_err_field(err, CF_EVALIDATION, field, "%s: at most %zu characters", field, max);
    return CF_OK;
}

static enum cf_rc check_name(const char *name, struct cf_err *err)
{
    if (!name || !*name)
        return cf_err_field(err, CF_EVALIDATION, "name", "name: required");
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
              *p == '.' || (*p >= 'A' && *p <= 'Z')))
            return cf_err_field(err, CF_EVALIDATION, "name",
                                "name: letters, digits, '-', '_' and '.' only");
    return check_text("name", name, CF_NAME_MAX, err);
}

enum cf_rc cf_connections_create(struct cf_core *core, const struct cf_principal *who,
                                 const struct cf_connection_spec *spec, struct cf_connection *out,
                                 struct cf_err *err)
{
    json_t *shown = NULL;
    char *sealed = NULL;
    int64_t not_after = 0;
    memset(out, 0, sizeof(*out));
    const struct method *m = NULL;
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK)
        rc = find_checked(spec->app, spec->method, &m, err);
    if (rc == CF_OK)
        rc = check_name(spec->name, err);
    if (rc == CF_OK)
        rc = check_text("description", spec->description, CF_CONN_DESC_MAX, err);
    if (rc == CF_OK && spec->expires_at < 0)
        rc = cf_err_field(err, CF_EVALIDATION, "expiresAt", "expiresAt: a time is expected");
    if (rc == CF_OK)
        rc = validate(m, spec->credentials, &shown, &not_after, err);
    if (rc != CF_OK)
        goto out;
    cf_uuid_new(out->id);
    cf_strlcpy(out->name, spec->name, sizeof(out->name));
    cf_strlcpy(out->app, spec->app, sizeof(out->app));
    cf_strlcpy(out->method, spec->method, sizeof(out->method));
    cf_strlcpy(out->description, spec->description ? spec->description : "",
               sizeof(out->description));
    /* The admin's date wins; a certificate says its own. */
    out->expires_at = spec->expires_at > 0 ? spec->expires_at : not_after;
    out->expires_learned = spec->expires_at <= 0 && not_after > 0;
    out->created_at = out->updated_at = cf_now_ms();
    out->version = 1;
    rc = set_public(out, shown, err);
    if (rc == CF_OK)
        rc = seal(core, out->id, spec->credentials, &sealed, err);
    if (rc == CF_OK)
        rc = cf_store_connection_create(core->store, out, sealed, err);
    if (rc == CF_EEXIST)
        rc = cf_err_field(err, CF_EEXIST, "name", "App Connection with name '%s' already exists",
                          spec->name);
out:
    json_decref(shown);
    free(sealed);
    return rc;
}

enum cf_rc cf_connections_list(struct cf_core *core, const struct cf_principal *who,
                               const char *app, struct cf_connection_list *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK && app && !find_method(app, NULL))
        rc = cf_err_field(err, CF_EVALIDATION, "app",
                          "app: azure-client-secrets, azure-devops, azure-key-vault, github, "
                          "mysql, postgres or webhook, not '%.32s'",
                          app);
    return rc == CF_OK ? cf_store_connection_list(core->store, app, out, err) : rc;
}

enum cf_rc cf_connections_get(struct cf_core *core, const struct cf_principal *who, const char *app,
                              const char *id, struct cf_connection *out, struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    return rc == CF_OK ? get_of_app(core, app, id, out, err) : rc;
}

enum cf_rc cf_connection_lookup(struct cf_core *core, const char *id, struct cf_connection *out,
                                struct cf_err *err)
{
    memset(out, 0, sizeof(*out));
    return get_of_app(core, NULL, id, out, err);
}

enum cf_rc cf_connections_update(struct cf_core *core, const struct cf_principal *who,
                                 const char *app, const char *id,
                                 const struct cf_connection_update *change,
                                 struct cf_connection *out, struct cf_err *err)
{
    json_t *shown = NULL;
    char *sealed = NULL;
    int64_t not_after = 0;
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK)
        rc = get_of_app(core, app, id, out, err);
    if (rc == CF_OK && change->name)
        rc = check_name(change->name, err);
    if (rc == CF_OK)
        rc = check_text("description", change->description, CF_CONN_DESC_MAX, err);
    if (rc == CF_OK && change->expires_at < -1)
        rc = cf_err_field(err, CF_EVALIDATION, "expiresAt", "expiresAt: a time is expected");
    if (rc != CF_OK)
        goto out;
    const char *method = change->method ? change->method : out->method;
    if (change->method && strcmp(change->method, out->method) != 0 && !change->credentials) {
        rc = cf_err_field(err, CF_EVALIDATION, "credentials",
                          "credentials: required to change the method to '%.32s'", method);
        goto out;
    }
    if (change->credentials) {
        const struct method *m = NULL;
        rc = find_checked(out->app, method, &m, err);
        if (rc == CF_OK)
            rc = validate(m, change->credentials, &shown, &not_after, err);
        if (rc == CF_OK)
            rc = set_public(out, shown, err);
        if (rc == CF_OK)
            rc = seal(core, out->id, change->credentials, &sealed, err);
        if (rc != CF_OK)
            goto out;
        cf_strlcpy(out->method, method, sizeof(out->method));
        /* New credentials: what was learnt of the old ones no longer holds. */
        if (out->expires_learned) {
            out->expires_at = not_after;
            out->expires_learned = not_after > 0;
        } else if (!out->expires_at && not_after) {
            out->expires_at = not_after;
            out->expires_learned = true;
        }
        out->checked_at = 0;
        out->check_ok = false;
        out->check_result[0] = '\0';
    }
    if (change->name)
        cf_strlcpy(out->name, change->name, sizeof(out->name));
    if (change->description)
        cf_strlcpy(out->description, change->description, sizeof(out->description));
    if (change->expires_at >= 0) {
        out->expires_at = change->expires_at;
        out->expires_learned = false;
    }
    out->updated_at = cf_now_ms();
    out->version++;
    rc = cf_store_connection_update(core->store, out, sealed, err);
    if (rc == CF_EEXIST)
        rc = cf_err_field(err, CF_EEXIST, "name", "App Connection with name '%s' already exists",
                          out->name);
    else if (rc == CF_ENOTFOUND)
        rc = not_found(id, err);
out:
    json_decref(shown);
    free(sealed);
    return rc;
}

enum cf_rc cf_connections_delete(struct cf_core *core, const struct cf_principal *who,
                                 const char *app, const char *id, struct cf_connection *out,
                                 struct cf_err *err)
{
    struct cf_connection gone;
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK)
        rc = get_of_app(core, app, id, &gone, err);
    if (rc == CF_OK)
        rc = cf_store_connection_delete(core->store, id, err);
    if (rc == CF_ENOTFOUND)
        rc = not_found(id, err);
    if (rc == CF_OK && out)
        *out = gone;
    return rc;
}

/* Records that the engine opened connection c (docs/audit.md: "app-connections.open"). */
static enum cf_rc audit_open(struct cf_core *core, const struct cf_connection *c,
                             struct cf_err *err)
{
    if (!core->audit)
        return CF_OK;
    struct cf_audit_event *e = calloc(1, sizeof(*e));
    if (!e)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    cf_strlcpy(e->actor_kind, "system", sizeof(e->actor_kind));
    cf_strlcpy(e->actor_name, "sync engine", sizeof(e->actor_name));
    cf_strlcpy(e->action, "app-connections.open", sizeof(e->action));
    snprintf(e->path, sizeof(e->path), "/api/v1/app-connections/%s/%s", c->app, c->id);
    cf_strlcpy(e->keys, c->name, sizeof(e->keys));
    cf_strlcpy(e->result, "ok", sizeof(e->result));
    enum cf_rc rc = cf_audit_record(core->audit, e, err);
    free(e);
    return rc;
}

/* Opens c's credentials into out (not audited: the callers audit). */
static enum cf_rc open_credentials(struct cf_core *core, const struct cf_connection *c,
                                   struct cf_conn_opened *out, struct cf_err *err)
{
    char *sealed = NULL;
    char context[CF_CREDENTIAL_CONTEXT_MAX];
    struct cf_buf plain;
    cf_buf_init(&plain, CF_CONN_CREDENTIALS_MAX * 2);
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = cf_store_connection_sealed(core->store, c->id, &sealed, err);
    if (rc == CF_ENOTFOUND)
        rc = not_found(c->id, err);
    seal_context(c->id, context, sizeof(context));
    if (rc == CF_OK)
        rc = cf_credential_open(core->store, core->keyring, context, sealed, &plain, err);
    json_t *credentials = NULL;
    if (rc == CF_OK) {
        json_error_t jerr;
        credentials = json_loadb(plain.data, plain.len, 0, &jerr);
        if (!json_is_object(credentials))
            rc = cf_err_set(err, CF_ECRYPTO, "the credentials of connection '%s' do not parse",
                            c->name);
    }
    if (rc == CF_OK) {
        cf_strlcpy(out->id, c->id, sizeof(out->id));
        cf_strlcpy(out->name, c->name, sizeof(out->name));
        out->expires_at = c->expires_at;
        cf_strlcpy(out->app, c->app, sizeof(out->app));
        cf_strlcpy(out->method, c->method, sizeof(out->method));
        out->credentials = credentials;
        credentials = NULL;
        out->conn.app = out->app;
        out->conn.method = out->method;
        out->conn.credentials = out->credentials;
        out->conn.entra = core->entra;
        out->conn.github = core->github;
    }
    if (credentials) {
        wipe_json(credentials);
        json_decref(credentials);
    }
    cf_buf_release_wipe(&plain);
    free(sealed);
    return rc;
}

enum cf_rc cf_connection_open(struct cf_core *core, const char *id, struct cf_conn_opened *out,
                              struct cf_err *err)
{
    struct cf_connection c;
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = get_of_app(core, NULL, id, &c, err);
    if (rc == CF_OK)
        rc = open_credentials(core, &c, out, err);
    if (rc == CF_OK)
        rc = audit_open(core, &c, err);
    if (rc != CF_OK)
        cf_connection_close(out);
    return rc;
}

void cf_connection_close(struct cf_conn_opened *c)
{
    if (!c)
        return;
    if (c->credentials) {
        wipe_json(c->credentials);
        json_decref(c->credentials);
    }
    memset(c, 0, sizeof(*c));
}

/* The first line of a report's "detail" or an error, for the stored result. */
static void result_text(const char *text, char out[CF_CONN_RESULT_MAX])
{
    cf_strlcpy(out, text, CF_CONN_RESULT_MAX);
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

enum cf_rc cf_connections_check(struct cf_core *core, const struct cf_principal *who,
                                const char *app, const char *id, json_t **report,
                                struct cf_connection *out, struct cf_err *err)
{
    struct cf_conn_opened opened = {0};
    struct cf_err failure = {0};
    char result[CF_CONN_RESULT_MAX];
    *report = NULL;
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK)
        rc = get_of_app(core, app, id, out, err);
    if (rc == CF_OK)
        rc = open_credentials(core, out, &opened, err);
    if (rc != CF_OK)
        return rc;
    /* A check asks the system itself: a cached token would hide a credential that died since. */
    opened.conn.entra = NULL;
    opened.conn.github = NULL;
    enum cf_rc checked = cf_provider_check(&opened.conn, report, &failure);
    cf_connection_close(&opened);
    int64_t expires_at = -1;
    if (checked == CF_OK) {
        const char *expiry = json_string_value(json_object_get(*report, "expiresAt"));
        int64_t when = 0;
        struct cf_err ignored;
        if (expiry && cf_time_parse(expiry, &when, &ignored) == CF_OK && when > 0)
            expires_at = when;
        result_text("ok", result);
    } else {
        result_text(failure.msg[0] ? failure.msg : cf_rc_str(checked), result);
    }
    int64_t now = cf_now_ms();
    /* The admin's own date is kept; a learnt one is replaced by what the system says now. */
    if (expires_at > 0 && out->expires_at > 0 && !out->expires_learned)
        expires_at = -1;
    rc = cf_store_connection_checked(core->store, out->id, now, checked == CF_OK, result,
                                     expires_at, err);
    if (rc == CF_OK) {
        out->checked_at = now;
        out->check_ok = checked == CF_OK;
        cf_strlcpy(out->check_result, result, sizeof(out->check_result));
        if (expires_at >= 0) {
            out->expires_at = expires_at;
            out->expires_learned = true;
        }
    }
    if (rc == CF_OK && checked != CF_OK) {
        /* The other system refused or failed: not the caller's authentication, so never a 401 or
         * 403 that would read as "your Coffer token is bad". */
        *err = failure;
        bool ours = checked == CF_ENOMEM || checked == CF_EUNAVAIL;
        rc = cf_err_set(err, ours ? checked : CF_EINVAL, "%s", result);
    }
    if (rc != CF_OK) {
        json_decref(*report);
        *report = NULL;
    }
    return rc;
}

bool cf_connection_secret_field(const char *app, const char *method, const char *field)
{
    const struct method *m = app && method ? find_method(app, method) : NULL;
    for (size_t i = 0; m && field && i < FIELDS_MAX && m->fields[i].name; i++)
        if (strcmp(m->fields[i].name, field) == 0)
            return m->fields[i].kind == FIELD_SECRET || m->fields[i].kind == FIELD_PASSWORD;
    return false;
}

/* True when app's method has a field named field. */
static bool has_field(const struct method *m, const char *field)
{
    for (size_t i = 0; i < FIELDS_MAX && m->fields[i].name; i++)
        if (strcmp(m->fields[i].name, field) == 0)
            return true;
    return false;
}

enum cf_rc cf_connection_replace_fields(struct cf_core *core, const struct cf_principal *who,
                                        const char *id, const json_t *values, const char *required,
                                        int64_t expires_at, struct cf_connection *out,
                                        struct cf_err *err)
{
    struct cf_conn_opened opened = {0};
    json_t *credentials = NULL;
    const struct method *m = NULL;
    memset(out, 0, sizeof(*out));
    enum cf_rc rc = cf_authz_admin(who, WHAT, err);
    if (rc == CF_OK)
        rc = get_of_app(core, NULL, id, out, err);
    if (rc == CF_OK)
        rc = find_checked(out->app, out->method, &m, err);
    if (rc == CF_OK && !has_field(m, required))
        rc = cf_err_field(err, CF_EVALIDATION, "connectionId",
                          "connection '%s' (%s %s) has no field '%s' to take the new credential",
                          out->name, out->app, out->method, required);
    if (rc == CF_OK)
        rc = open_credentials(core, out, &opened, err);
    if (rc == CF_OK && !(credentials = json_deep_copy(opened.credentials)))
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    const char *field;
    json_t *value;
    json_object_foreach((json_t *)values, field, value)
    {
        if (rc == CF_OK && json_is_string(value) && has_field(m, field) &&
            json_object_set(credentials, field, value) != 0)
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
    }
    cf_connection_close(&opened);
    if (rc == CF_OK) {
        struct cf_connection_update change = {.credentials = credentials,
                                              .expires_at = expires_at > 0 ? expires_at : -1};
        struct cf_connection was = *out;
        rc = cf_connections_update(core, who, was.app, id, &change, out, err);
    }
    if (credentials) {
        /* the values set above belong to the caller: only the copies made here are wiped */
        json_object_foreach((json_t *)values, field, value) json_object_del(credentials, field);
        wipe_json(credentials);
        json_decref(credentials);
    }
    return rc;
}
