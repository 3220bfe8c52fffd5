/* Reconciling an InfisicalSecret into Kubernetes Secrets (reconcile.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "kube/reconcile.h"
#include "kube/template.h"
#include "cli/fetch.h"
#include "client/client.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define GROUP_VERSION "secrets.infisical.com/v1alpha1"
#define VERSION_ANNOTATION "secrets.infisical.com/version"
#define AUTO_RELOAD_ANNOTATION "secrets.infisical.com/auto-reload"
#define RESTARTED_AT_ANNOTATION "kubectl.kubernetes.io/restartedAt"
#define LAST_APPLIED_ANNOTATION "kubectl.kubernetes.io/last-applied-configuration"
#define MANAGED_BY_LABEL "app.kubernetes.io/managed-by"
#define MANAGED_BY "coffer-k8s-operator"
#define COND_TOKEN "secrets.infisical.com/LoadedInfisicalToken"
#define COND_SYNC "secrets.infisical.com/ReadyToSyncSecrets"
#define COND_RELOAD "secrets.infisical.com/AutoRedeployReady"
#define WRITE_ATTEMPTS 5        /* a Secret write retried after 409 Conflict, at most */
#define TOKEN_REQUEST_TTL_S 600 /* the shortest lifetime TokenRequest grants */
#define PATH_MAX_LEN 4096

/* The checked spec; strings borrowed from the object. */
struct spec {
    const char *host_api;
    const char *method; /* "kubernetesAuth" or "universalAuth" */
    const char *identity_id;
    const char *sa_name, *sa_namespace;
    const char *creds_name, *creds_namespace;
    const char *project_slug, *env_slug, *secrets_path;
    bool recursive;
    json_t *refs; /* array of managed Secret references (owned) */
    int64_t resync_s;
};

/* What a reconcile found, for the conditions. */
struct outcome {
    enum cf_rc token_rc; /* CF_OK: logged in */
    char token_msg[CF_ERR_MSG_MAX];
    enum cf_rc sync_rc;
    char sync_reason[32];
    char sync_msg[CF_ERR_MSG_MAX];
    int restarted; /* Deployments restarted, -1: a restart failed */
    char reload_msg[CF_ERR_MSG_MAX];
};

static const char *str_at(json_t *object, const char *key)
{
    const char *text = json_string_value(json_object_get(object, key));
    return text && *text ? text : NULL;
}

static const char *meta(json_t *object, const char *key)
{
    return str_at(json_object_get(object, "metadata"), key);
}

/* ---- the spec ---- */

static enum cf_rc scope_of(json_t *auth, struct spec *spec, const char *field, struct cf_err *err)
{
    json_t *scope = json_object_get(auth, "secretsScope");
    spec->project_slug = str_at(scope, "projectSlug");
    spec->env_slug = str_at(scope, "envSlug");
    spec->secrets_path = str_at(scope, "secretsPath");
    json_t *recursive = json_object_get(scope, "recursive");
    if (!json_is_object(scope))
        return cf_err_set(err, CF_EVALIDATION, "spec.authentication.%s.secretsScope is required",
                          field);
    if (!spec->project_slug || !spec->env_slug)
        return cf_err_set(err, CF_EVALIDATION,
                          "spec.authentication.%s.secretsScope needs projectSlug and envSlug",
                          field);
    if (recursive && !json_is_boolean(recursive))
        return cf_err_set(err, CF_EVALIDATION,
                          "spec.authentication.%s.secretsScope.recursive must be true or false",
                          field);
    spec->recursive = json_is_true(recursive);
    if (!spec->secrets_path)
        spec->secrets_path = "/";
    return CF_OK;
}

static enum cf_rc check_ref(json_t *ref, size_t index, json_t *object, struct cf_err *err)
{
    const char *policy = str_at(ref, "creationPolicy");
    const char *type = str_at(ref, "secretType");
    json_t *tmpl = json_object_get(ref, "template");
    if (!json_is_object(ref) || !str_at(ref, "secretName") || !str_at(ref, "secretNamespace"))
        return cf_err_set(err, CF_EVALIDATION,
                          "spec.managedKubeSecretReferences[%zu] needs secretName and "
                          "secretNamespace",
                          index);
    if (policy && strcmp(policy, "Orphan") != 0 && strcmp(policy, "Owner") != 0)
        return cf_err_set(err, CF_EVALIDATION,
                          "spec.managedKubeSecretReferences[%zu].creationPolicy '%s' is not Orphan "
                          "or Owner",
                          index, policy);
    /* An owner in another namespace is not allowed: the garbage collector would delete the
     * dependent at once. */
    if (policy && strcmp(policy, "Owner") == 0 &&
        strcmp(str_at(ref, "secretNamespace"), meta(object, "namespace")) != 0)
        return cf_err_set(err, CF_EVALIDATION,
                          "spec.managedKubeSecretReferences[%zu]: creationPolicy Owner needs "
                          "secretNamespace '%s', the InfisicalSecret's own",
                          index, meta(object, "namespace"));
    if (type && strlen(type) > 253)
        return cf_err_set(err, CF_EVALIDATION,
                          "spec.managedKubeSecretReferences[%zu].secretType is too long", index);
    if (tmpl && !json_is_null(tmpl)) {
        json_t *data = json_object_get(tmpl, "data"), *value;
        const char *key;
        if (!json_is_object(tmpl) || (data && !json_is_null(data) && !json_is_object(data)))
            return cf_err_set(err, CF_EVALIDATION,
                              "spec.managedKubeSecretReferences[%zu].template.data must map keys "
                              "to strings",
                              index);
        json_object_foreach(data, key, value)
        {
            if (!json_is_string(value))
                return cf_err_set(err, CF_EVALIDATION,
                                  "spec.managedKubeSecretReferences[%zu].template.data '%s' is not "
                                  "a string",
                                  index, key);
        }
    }
    return CF_OK;
}

static enum cf_rc parse_spec(json_t *object, const struct cf_reconcile_config *config,
                             struct spec *spec, struct cf_err *err)
{
    json_t *s = json_object_get(object, "spec");
    json_t *auth = json_object_get(s, "authentication");
    json_t *k8s = json_object_get(auth, "kubernetesAuth");
    json_t *universal = json_object_get(auth, "universalAuth");
    json_t *sync = json_object_get(s, "syncConfig");
    memset(spec, 0, sizeof(*spec));
    spec->resync_s = CF_RECONCILE_DEFAULT_RESYNC_S;

    /* The interval first, so that even a bad resource is retried at its own pace. */
    json_t *interval = json_object_get(sync, "resyncInterval");
    json_t *legacy = json_object_get(s, "resyncInterval");
    if (json_is_string(interval)) {
        int64_t seconds = 0;
        if (cf_duration_parse(json_string_value(interval), &seconds, err) != CF_OK)
            return cf_err_set(err, CF_EVALIDATION,
                              "spec.syncConfig.resyncInterval '%s' is not a duration such as 10s, "
                              "5m or 1h",
                              json_string_value(interval));
        spec->resync_s = seconds;
    } else if (interval && !json_is_null(interval)) {
        return cf_err_set(err, CF_EVALIDATION,
                          "spec.syncConfig.resyncInterval must be a string such as \"60s\"");
    } else if (json_is_integer(legacy) && json_integer_value(legacy) > 0) {
        spec->resync_s = json_integer_value(legacy);
    }
    if (spec->resync_s < 5)
        spec->resync_s = 5; /* a floor, so that "1s" does not make a login every second */

    /* Fields of Infisical's CRD this operator does not implement are refused, not ignored. */
    if (str_at(json_object_get(json_object_get(s, "tls"), "caRef"), "secretName"))
        return cf_err_set(err, CF_EUNSUPPORTED,
                          "spec.tls.caRef is not supported: give the operator Coffer's CA with "
                          "--coffer-ca-file");
    if (json_array_size(json_object_get(s, "managedKubeConfigMapReferences")) > 0)
        return cf_err_set(err, CF_EUNSUPPORTED,
                          "spec.managedKubeConfigMapReferences is not supported (Secrets only)");

    spec->host_api = str_at(s, "hostAPI");
    if (!spec->host_api)
        spec->host_api = config->default_host_api;
    if (!spec->host_api)
        return cf_err_set(err, CF_EVALIDATION,
                          "spec.hostAPI is required (this operator has no default Coffer URL)");

    bool has_k8s = json_is_object(k8s) && json_object_size(k8s) > 0;
    bool has_universal = json_is_object(universal) && json_object_size(universal) > 0;
    const char *others[] = {"serviceToken", "serviceAccount", "awsIamAuth",
                            "azureAuth",    "gcpIdTokenAuth", "gcpIamAuth"};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        json_t *other = json_object_get(auth, others[i]);
        if (json_is_object(other) && json_object_size(other) > 0 && !has_k8s && !has_universal)
            return cf_err_set(err, CF_EUNSUPPORTED,
                              "spec.authentication.%s is not supported by Coffer's operator (use "
                              "kubernetesAuth or universalAuth)",
                              others[i]);
    }
    if (has_k8s == has_universal)
        return cf_err_set(err, CF_EVALIDATION,
                          "spec.authentication needs exactly one of kubernetesAuth and "
                          "universalAuth");
    if (has_k8s) {
        json_t *sa = json_object_get(k8s, "serviceAccountRef");
        spec->method = "kubernetesAuth";
        spec->identity_id = str_at(k8s, "identityId");
        spec->sa_name = str_at(sa, "name");
        spec->sa_namespace = str_at(sa, "namespace");
        if (!spec->identity_id)
            return cf_err_set(err, CF_EVALIDATION,
                              "spec.authentication.kubernetesAuth.identityId is required");
        if (!spec->sa_name || !spec->sa_namespace)
            return cf_err_set(err, CF_EVALIDATION,
                              "spec.authentication.kubernetesAuth.serviceAccountRef needs name "
                              "and namespace");
        if (scope_of(k8s, spec, "kubernetesAuth", err) != CF_OK)
            return err->rc;
    } else {
        json_t *creds = json_object_get(universal, "credentialsRef");
        spec->method = "universalAuth";
        spec->creds_name = str_at(creds, "secretName");
        spec->creds_namespace = str_at(creds, "secretNamespace");
        if (!spec->creds_name || !spec->creds_namespace)
            return cf_err_set(err, CF_EVALIDATION,
                              "spec.authentication.universalAuth.credentialsRef needs secretName "
                              "and secretNamespace");
        if (scope_of(universal, spec, "universalAuth", err) != CF_OK)
            return err->rc;
    }

    json_t *refs = json_object_get(s, "managedKubeSecretReferences");
    json_t *single = json_object_get(s, "managedSecretReference");
    if (json_is_array(refs) && json_array_size(refs) > 0) {
        spec->refs = json_incref(refs);
    } else if (json_is_object(single) && json_object_size(single) > 0) {
        spec->refs = json_array();
        if (!spec->refs || json_array_append(spec->refs, single) != 0)
            return cf_err_set(err, CF_ENOMEM, "out of memory");
    } else {
        return cf_err_set(err, CF_EVALIDATION,
                          "spec.managedKubeSecretReferences needs at least one Secret");
    }
    for (size_t i = 0; i < json_array_size(spec->refs); i++) {
        if (check_ref(json_array_get(spec->refs, i), i, object, err) != CF_OK)
            return err->rc;
    }
    return CF_OK;
}

/* ---- logging in to Coffer and reading the secrets ---- */

/* A service-account token for serviceAccountRef, from the TokenRequest API; *token is malloc'd
 * (wipe and free it). */
static enum cf_rc request_sa_token(struct cf_kube *kube, const struct spec *spec, char **token,
                                   struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    struct cf_kube_reply reply = {0};
    struct cf_buf path;
    /* No audiences: a token for the API server's own, which its TokenReview accepts. */
    json_t *body = json_pack("{s:s, s:s, s:{s:[], s:I}}", "apiVersion", "authentication.k8s.io/v1",
                             "kind", "TokenRequest", "spec", "audiences", "expirationSeconds",
                             (json_int_t)TOKEN_REQUEST_TTL_S);
    cf_buf_init(&path, PATH_MAX_LEN);
    *token = NULL;
    if (!body || cf_buf_puts(&path, "/api/v1/namespaces") ||
        cf_url_path_segment(&path, spec->sa_namespace) || cf_buf_puts(&path, "/serviceaccounts") ||
        cf_url_path_segment(&path, spec->sa_name) || cf_buf_puts(&path, "/token")) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    rc = cf_kube_request(kube, "POST", path.data, NULL, body, &reply, err);
    if (rc != CF_OK)
        goto out;
    const char *value = str_at(json_object_get(reply.json, "status"), "token");
    if (reply.status != 201 && reply.status != 200) {
        rc = cf_err_set(err, reply.status == 404 ? CF_ENOTFOUND : CF_EIO,
                        "token request for service account '%s/%s': HTTP %ld: %s",
                        spec->sa_namespace, spec->sa_name, reply.status,
                        cf_kube_reply_message(&reply));
        goto out;
    }
    if (!value || !(*token = strdup(value))) {
        rc = cf_err_set(err, CF_EIO, "token request for service account '%s/%s': no token",
                        spec->sa_namespace, spec->sa_name);
        goto out;
    }
out:
    cf_kube_reply_release(&reply);
    cf_buf_release(&path);
    json_decref(body);
    return rc;
}

/* One key of a Secret's data, decoded into a new wiped-on-free json string. */
static json_t *secret_data_value(json_t *secret, const char *key)
{
    const char *encoded = str_at(json_object_get(secret, "data"), key);
    if (!encoded)
        return NULL;
    size_t cap = strlen(encoded), len = 0;
    unsigned char *plain = malloc(cap + 1);
    json_t *value = NULL;
    if (plain && sodium_base642bin(plain, cap, encoded, cap, NULL, &len, NULL,
                                   sodium_base64_VARIANT_ORIGINAL) == 0)
        value = json_stringn((const char *)plain, len);
    if (plain) {
        sodium_memzero(plain, cap + 1);
        free(plain);
    }
    return value;
}

/* The login body of universalAuth: clientId and clientSecret of the credentials Secret. */
static enum cf_rc universal_body(struct cf_kube *kube, const struct spec *spec, json_t **body,
                                 struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    struct cf_kube_reply reply = {0};
    struct cf_buf path;
    json_t *id = NULL, *secret = NULL;
    cf_buf_init(&path, PATH_MAX_LEN);
    *body = NULL;
    if (cf_buf_puts(&path, "/api/v1/namespaces") ||
        cf_url_path_segment(&path, spec->creds_namespace) || cf_buf_puts(&path, "/secrets") ||
        cf_url_path_segment(&path, spec->creds_name)) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    rc = cf_kube_request(kube, "GET", path.data, NULL, NULL, &reply, err);
    if (rc != CF_OK)
        goto out;
    if (reply.status != 200) {
        rc = cf_err_set(err, reply.status == 404 ? CF_ENOTFOUND : CF_EIO,
                        "credentials secret '%s/%s': HTTP %ld: %s", spec->creds_namespace,
                        spec->creds_name, reply.status, cf_kube_reply_message(&reply));
        goto out;
    }
    id = secret_data_value(reply.json, "clientId");
    secret = secret_data_value(reply.json, "clientSecret");
    if (!id || !secret) {
        rc = cf_err_set(err, CF_EVALIDATION,
                        "credentials secret '%s/%s' needs the keys clientId and clientSecret",
                        spec->creds_namespace, spec->creds_name);
        goto out;
    }
    *body = json_pack("{s:O, s:O}", "clientId", id, "clientSecret", secret);
    if (!*body)
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
out:
    json_decref(id);
    json_decref(secret);
    cf_kube_reply_release(&reply);
    cf_buf_release(&path);
    return rc;
}

static enum cf_rc coffer_login(struct cf_kube *kube, const struct spec *spec,
                               struct cf_client *client, struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    char *sa_token = NULL;
    json_t *body = NULL;
    struct cf_response resp = CF_RESPONSE_INIT;
    const char *path = NULL;
    if (strcmp(spec->method, "kubernetesAuth") == 0) {
        rc = request_sa_token(kube, spec, &sa_token, err);
        if (rc != CF_OK)
            goto out;
        body = json_pack("{s:s, s:s}", "identityId", spec->identity_id, "jwt", sa_token);
        path = "/v1/auth/kubernetes-auth/login";
    } else {
        rc = universal_body(kube, spec, &body, err);
        if (rc != CF_OK)
            goto out;
        path = "/v1/auth/universal-auth/login";
    }
    if (!body) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    rc = cf_client_request(client, "POST", path, NULL, body, &resp, err);
    if (rc != CF_OK) {
        char why[CF_ERR_MSG_MAX];
        cf_strlcpy(why, err->msg, sizeof(why));
        rc = cf_err_set(err, rc, "coffer login (%s) refused: %s", spec->method, why);
        goto out;
    }
    const char *token = str_at(resp.json, "accessToken");
    if (!token) {
        rc = cf_err_set(err, CF_EINVAL, "coffer login (%s): no accessToken in the answer",
                        spec->method);
        goto out;
    }
    rc = cf_client_set_token(client, token, err);
out:
    if (sa_token) {
        sodium_memzero(sa_token, strlen(sa_token));
        free(sa_token);
    }
    cf_response_release(&resp);
    json_decref(body); /* strings are wiped on release by the client's allocator */
    return rc;
}

/* cf_secrets_merge callback: keeps the first value seen of each key, as {value, path}. */
static enum cf_rc keep_secret(json_t *secret, json_t *import, void *ctx)
{
    json_t *set = ctx;
    const char *key = str_at(secret, "secretKey");
    const char *path = str_at(import ? import : secret, "secretPath");
    json_t *value = json_object_get(secret, "secretValue");
    if (!key || json_object_get(set, key))
        return CF_OK;
    json_t *entry =
        json_pack("{s:o, s:s}", "secretValue", value ? json_incref(value) : json_string(""),
                  "secretPath", path ? path : "/");
    if (!entry || json_object_set_new(set, key, entry) != 0)
        return CF_ENOMEM;
    return CF_OK;
}

/* The secrets of the scope as an object key -> {secretValue, secretPath}. */
static enum cf_rc fetch_secrets(struct cf_client *client, const struct spec *spec, json_t **out,
                                struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    struct cf_response resp = CF_RESPONSE_INIT;
    const struct cf_query_param query[] = {
        {"workspaceSlug", spec->project_slug},
        {"environment", spec->env_slug},
        {"secretPath", spec->secrets_path},
        {"recursive", spec->recursive ? "true" : "false"},
        {"include_imports", "true"},
        {"expandSecretReferences", "true"},
        {NULL, NULL},
    };
    json_t *set = json_object();
    *out = NULL;
    if (!set)
        return cf_err_set(err, CF_ENOMEM, "out of memory");
    rc = cf_client_request(client, "GET", "/v3/secrets/raw", query, NULL, &resp, err);
    if (rc != CF_OK) {
        char why[CF_ERR_MSG_MAX];
        cf_strlcpy(why, err->msg, sizeof(why));
        rc = cf_err_set(err, rc, "reading secrets of '%s' (%s, %s): %s", spec->project_slug,
                        spec->env_slug, spec->secrets_path, why);
        goto out;
    }
    rc = cf_secrets_merge(resp.json, keep_secret, set);
    if (rc != CF_OK) {
        rc = cf_err_set(err, rc, "out of memory");
        goto out;
    }
    *out = set;
    set = NULL;
out:
    json_decref(set);
    cf_response_release(&resp);
    return rc;
}

/* ---- rendering ---- */

static enum cf_rc put_base64(json_t *data, const char *key, const char *value, size_t len)
{
    size_t size = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    char *encoded = malloc(size);
    enum cf_rc rc = CF_OK;
    if (!encoded)
        return CF_ENOMEM;
    sodium_bin2base64(encoded, size, (const unsigned char *)value, len,
                      sodium_base64_VARIANT_ORIGINAL);
    if (json_object_set_new(data, key, json_string(encoded)) != 0)
        rc = CF_ENOMEM;
    sodium_memzero(encoded, size);
    free(encoded);
    return rc;
}

/* The Secret's data (base64 values) for ref, and the digest of it for the version annotation. */
static enum cf_rc render_data(json_t *ref, json_t *secrets, json_t **out, char *digest_hex,
                              size_t digest_size, struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    json_t *tmpl = json_object_get(ref, "template");
    json_t *tdata = json_object_get(tmpl, "data");
    bool all = !json_is_object(tmpl) || json_is_true(json_object_get(tmpl, "includeAllSecrets")) ||
               !json_is_object(tdata);
    json_t *plain = json_object(), *data = json_object(), *value;
    const char *key;
    struct cf_buf rendered;
    cf_buf_init(&rendered, CF_KUBE_RESPONSE_MAX);
    *out = NULL;
    if (!plain || !data) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    if (all) {
        json_object_foreach(secrets, key, value)
        {
            if (json_object_set(plain, key, value) != 0) {
                rc = cf_err_set(err, CF_ENOMEM, "out of memory");
                goto out;
            }
        }
    }
    /* Template keys win over the secrets injected by includeAllSecrets. */
    json_object_foreach(tdata, key, value)
    {
        rc = cf_kube_template_render(key, json_string_value(value), secrets, &rendered, err);
        if (rc != CF_OK)
            goto out;
        json_t *entry = json_pack("{s:s%}", "secretValue", rendered.data, rendered.len);
        if (!entry || json_object_set_new(plain, key, entry) != 0) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
    }
    json_object_foreach(plain, key, value)
    {
        json_t *text = json_object_get(value, "secretValue");
        if (put_base64(data, key, json_string_value(text) ? json_string_value(text) : "",
                       json_string_length(text)) != CF_OK) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
    }
    unsigned char fingerprint[CF_FINGERPRINT_BYTES];
    cf_secrets_fingerprint(plain, fingerprint);
    sodium_bin2hex(digest_hex, digest_size, fingerprint, sizeof(fingerprint) / 2);
    *out = data;
    data = NULL;
out:
    cf_buf_release_wipe(&rendered);
    json_decref(plain);
    json_decref(data);
    return rc;
}

/* ---- the managed Secret ---- */

/* Copies object's labels or annotations (minus kubectl's bookkeeping) into a new object. */
static json_t *copied(json_t *object, const char *what)
{
    json_t *from = json_object_get(json_object_get(object, "metadata"), what), *value;
    json_t *to = json_object();
    const char *key;
    json_object_foreach(from, key, value)
    {
        if (to && json_is_string(value) && strcmp(key, LAST_APPLIED_ANNOTATION) != 0)
            json_object_set(to, key, value);
    }
    return to;
}

/* The Secret ref describes, as written (without resourceVersion). */
static json_t *secret_object(json_t *object, json_t *ref, json_t *data, const char *digest)
{
    const char *policy = str_at(ref, "creationPolicy");
    const char *type = str_at(ref, "secretType");
    json_t *labels = copied(object, "labels"), *annotations = copied(object, "annotations");
    json_t *metadata = NULL;
    if (!labels || !annotations ||
        json_object_set_new(labels, MANAGED_BY_LABEL, json_string(MANAGED_BY)) ||
        json_object_set_new(annotations, VERSION_ANNOTATION, json_string(digest)))
        goto fail;
    metadata =
        json_pack("{s:s, s:s, s:o, s:o}", "name", str_at(ref, "secretName"), "namespace",
                  str_at(ref, "secretNamespace"), "labels", labels, "annotations", annotations);
    labels = annotations = NULL;
    if (!metadata)
        goto fail;
    if (policy && strcmp(policy, "Owner") == 0) {
        json_t *owner = json_pack("[{s:s, s:s, s:s, s:s, s:b, s:b}]", "apiVersion", GROUP_VERSION,
                                  "kind", "InfisicalSecret", "name", meta(object, "name"), "uid",
                                  meta(object, "uid") ? meta(object, "uid") : "", "controller", 1,
                                  "blockOwnerDeletion", 1);
        if (!owner || json_object_set_new(metadata, "ownerReferences", owner))
            goto fail;
    }
    return json_pack("{s:s, s:s, s:o, s:s, s:O}", "apiVersion", "v1", "kind", "Secret", "metadata",
                     metadata, "type", type ? type : "Opaque", "data", data);
fail:
    json_decref(labels);
    json_decref(annotations);
    json_decref(metadata);
    return NULL;
}

static enum cf_rc secret_path(struct cf_buf *path, const char *ns, const char *name)
{
    cf_buf_reset(path);
    if (cf_buf_puts(path, "/api/v1/namespaces") || cf_url_path_segment(path, ns) ||
        cf_buf_puts(path, "/secrets") || (name && cf_url_path_segment(path, name)))
        return CF_ENOMEM;
    return CF_OK;
}

/* Whether the Secret as read already holds what would be written. */
static bool up_to_date(json_t *current, json_t *wanted)
{
    json_t *cm = json_object_get(current, "metadata"), *wm = json_object_get(wanted, "metadata");
    return json_equal(json_object_get(current, "data"), json_object_get(wanted, "data")) &&
           json_equal(json_object_get(cm, "labels"), json_object_get(wm, "labels")) &&
           json_equal(json_object_get(cm, "annotations"), json_object_get(wm, "annotations")) &&
           json_equal(json_object_get(cm, "ownerReferences"),
                      json_object_get(wm, "ownerReferences"));
}

/* Creates or replaces the Secret. *changed: its data changed (a Secret that existed before). */
static enum cf_rc upsert_secret(struct cf_kube *kube, json_t *wanted, bool *changed,
                                struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    struct cf_kube_reply reply = {0};
    struct cf_buf path;
    json_t *md = json_object_get(wanted, "metadata");
    const char *ns = str_at(md, "namespace"), *name = str_at(md, "name");
    cf_buf_init(&path, PATH_MAX_LEN);
    *changed = false;
    for (int attempt = 1;; attempt++) {
        cf_kube_reply_release(&reply);
        if (secret_path(&path, ns, name) != CF_OK) {
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
            goto out;
        }
        rc = cf_kube_request(kube, "GET", path.data, NULL, NULL, &reply, err);
        if (rc != CF_OK)
            goto out;
        long read_status = reply.status;
        if (read_status != 200 && read_status != 404) {
            rc = cf_err_set(err, CF_EIO, "reading secret '%s/%s': HTTP %ld: %s", ns, name,
                            read_status, cf_kube_reply_message(&reply));
            goto out;
        }
        if (read_status == 200) {
            const char *type = str_at(reply.json, "type");
            if (type && strcmp(type, str_at(wanted, "type")) != 0) {
                rc = cf_err_set(err, CF_ECONFLICT,
                                "secret '%s/%s' has type '%s', not '%s' (a type cannot change)", ns,
                                name, type, str_at(wanted, "type"));
                goto out;
            }
            if (up_to_date(reply.json, wanted))
                goto out;
            *changed =
                !json_equal(json_object_get(reply.json, "data"), json_object_get(wanted, "data"));
            const char *rv = meta(reply.json, "resourceVersion");
            json_object_set_new(md, "resourceVersion", json_string(rv ? rv : ""));
        } else {
            json_object_del(md, "resourceVersion");
        }
        cf_kube_reply_release(&reply);
        if (read_status == 200)
            rc = cf_kube_request(kube, "PUT", path.data, NULL, wanted, &reply, err);
        else if (secret_path(&path, ns, NULL) == CF_OK)
            rc = cf_kube_request(kube, "POST", path.data, NULL, wanted, &reply, err);
        else
            rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        if (rc != CF_OK)
            goto out;
        if (reply.status == 200 || reply.status == 201) {
            cf_log(CF_LOG_INFO, "secret '%s/%s' %s", ns, name,
                   read_status == 200 ? "updated" : "created");
            goto out;
        }
        /* 409: another writer changed (or created) it since the read: read again and retry. */
        if (reply.status != 409 || attempt >= WRITE_ATTEMPTS) {
            rc = cf_err_set(err, reply.status == 409 ? CF_ECONFLICT : CF_EIO,
                            "writing secret '%s/%s': HTTP %ld: %s", ns, name, reply.status,
                            cf_kube_reply_message(&reply));
            goto out;
        }
        cf_log(CF_LOG_INFO, "secret '%s/%s': conflict, reading it again", ns, name);
    }
out:
    json_object_del(md, "resourceVersion");
    cf_kube_reply_release(&reply);
    cf_buf_release(&path);
    return rc;
}

/* ---- restarting Deployments ---- */

static bool refs_secret(json_t *containers, const char *secret)
{
    size_t i, j;
    json_t *c, *e;
    json_array_foreach(containers, i, c)
    {
        json_array_foreach(json_object_get(c, "envFrom"), j, e)
        {
            const char *n = str_at(json_object_get(e, "secretRef"), "name");
            if (n && strcmp(n, secret) == 0)
                return true;
        }
        json_array_foreach(json_object_get(c, "env"), j, e)
        {
            const char *n =
                str_at(json_object_get(json_object_get(e, "valueFrom"), "secretKeyRef"), "name");
            if (n && strcmp(n, secret) == 0)
                return true;
        }
    }
    return false;
}

static bool uses_secret(json_t *deployment, const char *secret)
{
    json_t *pod =
        json_object_get(json_object_get(json_object_get(deployment, "spec"), "template"), "spec");
    json_t *v;
    size_t i;
    if (refs_secret(json_object_get(pod, "containers"), secret) ||
        refs_secret(json_object_get(pod, "initContainers"), secret))
        return true;
    json_array_foreach(json_object_get(pod, "volumes"), i, v)
    {
        const char *n = str_at(json_object_get(v, "secret"), "secretName");
        if (n && strcmp(n, secret) == 0)
            return true;
        /* projected volumes: sources[].secret.name */
        json_t *src;
        size_t j;
        json_array_foreach(json_object_get(json_object_get(v, "projected"), "sources"), j, src)
        {
            n = str_at(json_object_get(src, "secret"), "name");
            if (n && strcmp(n, secret) == 0)
                return true;
        }
    }
    return false;
}

/* Restarts the auto-reload Deployments of ns that use secret; returns how many, or -1 (err set). */
static int restart_deployments(struct cf_kube *kube, const char *ns, const char *secret,
                               int64_t now_ms, struct cf_err *err)
{
    int restarted = 0;
    struct cf_kube_reply reply = {0}, patched = {0};
    struct cf_buf path;
    json_t *d;
    size_t i;
    char now[CF_TIME_RFC3339_LEN];
    cf_buf_init(&path, PATH_MAX_LEN);
    cf_time_format(now_ms, now);
    if (cf_buf_puts(&path, "/apis/apps/v1/namespaces") || cf_url_path_segment(&path, ns) ||
        cf_buf_puts(&path, "/deployments") ||
        cf_kube_request(kube, "GET", path.data, NULL, NULL, &reply, err) != CF_OK) {
        restarted = -1;
        goto out;
    }
    if (reply.status != 200) {
        cf_err_set(err, CF_EIO, "listing deployments of '%s': HTTP %ld: %s", ns, reply.status,
                   cf_kube_reply_message(&reply));
        restarted = -1;
        goto out;
    }
    json_array_foreach(json_object_get(reply.json, "items"), i, d)
    {
        const char *flag = str_at(json_object_get(json_object_get(d, "metadata"), "annotations"),
                                  AUTO_RELOAD_ANNOTATION);
        const char *name = meta(d, "name");
        if (!name || !flag || strcmp(flag, "true") != 0 || !uses_secret(d, secret))
            continue;
        /* What `kubectl rollout restart` sends: a new pod template annotation, so that the
         * Deployment rolls its pods. */
        json_t *patch = json_pack("{s:{s:{s:{s:{s:s}}}}}", "spec", "template", "metadata",
                                  "annotations", RESTARTED_AT_ANNOTATION, now);
        cf_buf_reset(&path);
        enum cf_rc rc = CF_ENOMEM;
        if (patch && cf_buf_puts(&path, "/apis/apps/v1/namespaces") == CF_OK &&
            cf_url_path_segment(&path, ns) == CF_OK &&
            cf_buf_puts(&path, "/deployments") == CF_OK &&
            cf_url_path_segment(&path, name) == CF_OK)
            rc = cf_kube_request(kube, "PATCH", path.data, "application/strategic-merge-patch+json",
                                 patch, &patched, err);
        json_decref(patch);
        if (rc == CF_OK && patched.status != 200)
            rc = cf_err_set(err, CF_EIO, "restarting deployment '%s/%s': HTTP %ld: %s", ns, name,
                            patched.status, cf_kube_reply_message(&patched));
        cf_kube_reply_release(&patched);
        if (rc != CF_OK) {
            restarted = -1;
            goto out;
        }
        cf_log(CF_LOG_INFO, "deployment '%s/%s' restarted: secret '%s' changed", ns, name, secret);
        restarted++;
    }
out:
    cf_kube_reply_release(&reply);
    cf_buf_release(&path);
    return restarted;
}

/* ---- status ---- */

/* One metav1.Condition; its lastTransitionTime is kept from old when the status did not change. */
static json_t *condition(json_t *old, const char *type, bool ok, const char *reason,
                         const char *message, json_int_t generation, const char *now)
{
    const char *since = now;
    const char *status = ok ? "True" : "False";
    json_t *c;
    size_t i;
    json_array_foreach(old, i, c)
    {
        const char *t = str_at(c, "type"), *s = str_at(c, "status");
        if (t && s && strcmp(t, type) == 0 && strcmp(s, status) == 0 &&
            str_at(c, "lastTransitionTime"))
            since = str_at(c, "lastTransitionTime");
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "type", type, "status", status, "reason",
                     reason, "message", message, "lastTransitionTime", since, "observedGeneration",
                     generation);
}

/* Whether two condition lists say the same (type, status, reason, message, generation). */
static bool same_conditions(json_t *a, json_t *b)
{
    if (json_array_size(a) != json_array_size(b))
        return false;
    const char *keys[] = {"type", "status", "reason", "message", "observedGeneration"};
    for (size_t i = 0; i < json_array_size(a); i++) {
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            if (!json_equal(json_object_get(json_array_get(a, i), keys[k]),
                            json_object_get(json_array_get(b, i), keys[k])))
                return false;
        }
    }
    return true;
}

static void write_status(struct cf_kube *kube, json_t *object, const struct outcome *o,
                         int64_t now_ms)
{
    json_t *old = json_object_get(json_object_get(object, "status"), "conditions");
    json_int_t generation =
        json_integer_value(json_object_get(json_object_get(object, "metadata"), "generation"));
    char now[CF_TIME_RFC3339_LEN], reload[CF_ERR_MSG_MAX];
    struct cf_kube_reply reply = {0};
    struct cf_buf path;
    struct cf_err err;
    json_t *patch = NULL;
    cf_buf_init(&path, PATH_MAX_LEN);
    /* Conditions carry no sub-second part, as metav1.Time. */
    cf_time_format(now_ms - now_ms % 1000, now);
    char *dot = strchr(now, '.');
    if (dot)
        snprintf(dot, sizeof(now) - (size_t)(dot - now), "Z");
    /* The same text on every pass, so that a resync without change writes nothing. */
    snprintf(reload, sizeof(reload),
             "deployments annotated %s: \"true\" that use a managed "
             "secret are restarted when it changes",
             AUTO_RELOAD_ANNOTATION);
    json_t *conditions = json_array();
    if (!conditions)
        goto out;
    json_array_append_new(
        conditions,
        condition(old, COND_TOKEN, o->token_rc == CF_OK, o->token_rc == CF_OK ? "OK" : "Error",
                  o->token_rc == CF_OK ? "logged in to Coffer" : o->token_msg, generation, now));
    json_array_append_new(conditions,
                          condition(old, COND_SYNC, o->sync_rc == CF_OK, o->sync_reason,
                                    o->sync_rc == CF_OK ? "secrets synced" : o->sync_msg,
                                    generation, now));
    json_array_append_new(conditions,
                          condition(old, COND_RELOAD, o->restarted >= 0,
                                    o->restarted >= 0 ? "OK" : "Error",
                                    o->restarted >= 0 ? reload : o->reload_msg, generation, now));
    if (json_array_size(conditions) != 3 || same_conditions(old, conditions))
        goto out;
    patch = json_pack("{s:{s:O}}", "status", "conditions", conditions);
    if (!patch || cf_buf_puts(&path, "/apis/secrets.infisical.com/v1alpha1/namespaces") ||
        cf_url_path_segment(&path, meta(object, "namespace")) ||
        cf_buf_puts(&path, "/infisicalsecrets") ||
        cf_url_path_segment(&path, meta(object, "name")) || cf_buf_puts(&path, "/status"))
        goto out;
    if (cf_kube_request(kube, "PATCH", path.data, "application/merge-patch+json", patch, &reply,
                        &err) != CF_OK)
        cf_log(CF_LOG_WARN, "status of '%s/%s' not written: %s", meta(object, "namespace"),
               meta(object, "name"), err.msg);
    else if (reply.status != 200)
        cf_log(CF_LOG_WARN, "status of '%s/%s' not written: HTTP %ld: %s",
               meta(object, "namespace"), meta(object, "name"), reply.status,
               cf_kube_reply_message(&reply));
out:
    json_decref(conditions);
    json_decref(patch);
    cf_kube_reply_release(&reply);
    cf_buf_release(&path);
}

/* ---- the whole ---- */

static void fail(struct outcome *o, const char *reason, const struct cf_err *err)
{
    o->sync_rc = err->rc ? err->rc : CF_EINTERNAL;
    cf_strlcpy(o->sync_reason, reason, sizeof(o->sync_reason));
    cf_strlcpy(o->sync_msg, err->msg, sizeof(o->sync_msg));
}

enum cf_rc cf_reconcile(struct cf_kube *kube, const struct cf_reconcile_config *config,
                        json_t *object, int64_t now_ms, int64_t *resync_s, struct cf_err *err)
{
    struct spec spec;
    struct outcome o = {.token_rc = CF_OK, .sync_rc = CF_OK, .sync_reason = "OK"};
    struct cf_client *client = NULL;
    json_t *secrets = NULL;
    const char *ns = meta(object, "namespace"), *name = meta(object, "name");
    char digest[2 * CF_FINGERPRINT_BYTES + 1];
    *resync_s = CF_RECONCILE_DEFAULT_RESYNC_S;
    if (!ns || !name)
        return cf_err_set(err, CF_EINVAL, "an InfisicalSecret without a name or namespace");
    enum cf_rc rc = parse_spec(object, config, &spec, err);
    *resync_s = spec.resync_s;
    if (rc != CF_OK) {
        fail(&o, "InvalidSpec", err);
        o.token_rc = rc;
        cf_strlcpy(o.token_msg, "not attempted: the resource is invalid", sizeof(o.token_msg));
        goto out;
    }
    struct cf_client_options options = {.domain = spec.host_api,
                                        .ca_file = config->coffer_ca_file,
                                        .user_agent = "coffer-k8s-operator/" COFFER_VERSION,
                                        .timeout_ms = 30000};
    rc = cf_client_new(&options, &client, err);
    if (rc == CF_OK)
        rc = coffer_login(kube, &spec, client, err);
    if (rc != CF_OK) {
        o.token_rc = rc;
        cf_strlcpy(o.token_msg, err->msg, sizeof(o.token_msg));
        fail(&o, "LoginFailed", err);
        goto out;
    }
    rc = fetch_secrets(client, &spec, &secrets, err);
    if (rc != CF_OK) {
        fail(&o, "FetchFailed", err);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(spec.refs); i++) {
        json_t *ref = json_array_get(spec.refs, i), *data = NULL, *wanted = NULL;
        bool changed = false;
        rc = render_data(ref, secrets, &data, digest, sizeof(digest), err);
        if (rc != CF_OK) {
            fail(&o, "TemplateFailed", err);
            goto out;
        }
        wanted = secret_object(object, ref, data, digest);
        json_decref(data); /* wanted holds its own reference; values are wiped on release */
        rc = wanted ? upsert_secret(kube, wanted, &changed, err)
                    : cf_err_set(err, CF_ENOMEM, "out of memory");
        json_decref(wanted);
        if (rc != CF_OK) {
            fail(&o, "WriteFailed", err);
            goto out;
        }
        if (changed) {
            struct cf_err reload_err = {0};
            int n = restart_deployments(kube, str_at(ref, "secretNamespace"),
                                        str_at(ref, "secretName"), now_ms, &reload_err);
            if (n < 0) {
                o.restarted = -1;
                cf_strlcpy(o.reload_msg, reload_err.msg, sizeof(o.reload_msg));
            } else if (o.restarted >= 0) {
                o.restarted += n;
            }
        }
    }
out:
    write_status(kube, object, &o, now_ms);
    json_decref(secrets);
    json_decref(spec.refs);
    cf_client_free(client);
    return rc;
}
