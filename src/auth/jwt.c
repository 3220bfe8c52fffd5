/* JWT verification (see jwt.h). The token is taken apart here, strictly (exact shape, canonical
 * base64url through libsodium, JSON through jansson with duplicate names rejected), before any
 * library sees it, so cjose and OpenSSL only ever get input this file has already judged sane;
 * the signature itself is always checked by cjose (RSA, EC) or OpenSSL (Ed25519). Keys are
 * imported from their public parts only, so a JWKS carrying private members cannot smuggle
 * anything in. */
#include <cjose/cjose.h>
#include <fnmatch.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

#define KID_MAX 256
#define ALG_MAX 16
#define QUOTED_MAX 64                   /* bytes of a token-supplied value shown in a message */
#define NUMERIC_DATE_MAX 253402300799LL /* 9999-12-31T23:59:59Z */

enum key_type { KEY_RSA, KEY_EC, KEY_ED25519 };

enum alg_family { FAM_RS, FAM_PS, FAM_ES, FAM_ED };

struct alg_info {
    const char *name;
    enum alg_family family;
    int curve_nid;     /* FAM_ES: the curve it needs */
    size_t ec_sig_len; /* FAM_ES: r || s length */
};

static const struct alg_info algs[] = {
    {"RS256", FAM_RS, 0, 0},
    {"RS384", FAM_RS, 0, 0},
    {"RS512", FAM_RS, 0, 0},
    {"PS256", FAM_PS, 0, 0},
    {"PS384", FAM_PS, 0, 0},
    {"PS512", FAM_PS, 0, 0},
    {"ES256", FAM_ES, NID_X9_62_prime256v1, 64},
    {"ES384", FAM_ES, NID_secp384r1, 96},
    {"EdDSA", FAM_ED, 0, 0},
};

struct jwt_key {
    enum key_type type;
    bool has_kid;
    char kid[KID_MAX];
    char alg[ALG_MAX]; /* the key's declared "alg", or "" */
    int curve_nid;     /* KEY_EC */
    size_t rsa_bytes;  /* KEY_RSA: modulus length = signature length */
    cjose_jwk_t *jwk;  /* KEY_RSA, KEY_EC */
    EVP_PKEY *ed;      /* KEY_ED25519 */
};

struct cf_jwt_keys {
    struct jwt_key *keys;
    size_t n;
};

static const struct alg_info *alg_find(const char *name)
{
    for (size_t i = 0; i < CF_ARRAY_SIZE(algs); i++)
        if (strcmp(algs[i].name, name) == 0)
            return &algs[i];
    return NULL;
}

/* Copies a token-supplied string for a message: printable ASCII only, quotes and backslashes
 * replaced, truncated. */
static void quote_for_msg(const char *in, size_t in_len, char out[QUOTED_MAX + 4])
{
    size_t o = 0;
    for (size_t i = 0; i < in_len && o < QUOTED_MAX; i++) {
        unsigned char c = (unsigned char)in[i];
        out[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    if (in_len > QUOTED_MAX) {
        out[o++] = '.';
        out[o++] = '.';
        out[o++] = '.';
    }
    out[o] = '\0';
}

static void quote_json_string(const json_t *s, char out[QUOTED_MAX + 4])
{
    quote_for_msg(json_string_value(s), json_string_length(s), out);
}

/* Strict base64url without padding; *out is malloc'd (at least 1 byte, NUL-terminated). */
static bool b64url_decode(const char *in, size_t len, unsigned char **out, size_t *out_len)
{
    size_t cap = len / 4 * 3 + 3;
    unsigned char *buf = malloc(cap + 1);
    size_t n = 0;
    if (!buf)
        return false;
    if (len > 0 && sodium_base642bin(buf, cap, in, len, NULL, &n, NULL,
                                     sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
        free(buf);
        return false;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return true;
}

/* Parses JSON text refusing duplicate member names; NULL on any problem. */
static json_t *json_parse_strict(const unsigned char *text, size_t len)
{
    json_error_t jerr;
    return json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
}

static void key_release(struct jwt_key *key)
{
    if (key->jwk)
        cjose_jwk_release(key->jwk);
    EVP_PKEY_free(key->ed);
    key->jwk = NULL;
    key->ed = NULL;
}

void cf_jwt_keys_free(struct cf_jwt_keys *keys)
{
    if (!keys)
        return;
    for (size_t i = 0; i < keys->n; i++)
        key_release(&keys->keys[i]);
    free(keys->keys);
    free(keys);
}

size_t cf_jwt_keys_count(const struct cf_jwt_keys *keys)
{
    return keys ? keys->n : 0;
}

static struct cf_jwt_keys *keys_new(void)
{
    struct cf_jwt_keys *keys = calloc(1, sizeof(*keys));
    if (!keys)
        return NULL;
    keys->keys = calloc(CF_JWT_KEYS_MAX, sizeof(*keys->keys));
    if (!keys->keys) {
        free(keys);
        return NULL;
    }
    return keys;
}

/* Length of a big-endian unsigned integer without its leading zero bytes. */
static size_t be_significant_len(const unsigned char *b, size_t len)
{
    size_t i = 0;
    while (i < len && b[i] == 0)
        i++;
    return len - i;
}

/* Fills key from RSA public numbers; the caller checked nothing yet. */
static enum cf_rc key_set_rsa(struct jwt_key *key, unsigned char *n, size_t n_len, unsigned char *e,
                              size_t e_len, const char *what, struct cf_err *err)
{
    cjose_err cerr;
    size_t mod_len = be_significant_len(n, n_len);
    if (mod_len * 8 < CF_JWT_RSA_MIN_BITS || mod_len > 1024)
        return cf_err_set(err, CF_EINVAL, "%s: rsa key size not accepted (%zu bits)", what,
                          mod_len * 8);
    if (be_significant_len(e, e_len) == 0 || e_len > 16)
        return cf_err_set(err, CF_EINVAL, "%s: bad rsa exponent", what);
    cjose_jwk_rsa_keyspec spec = {
        .n = n + (n_len - mod_len), .nlen = mod_len, .e = e, .elen = e_len};
    key->jwk = cjose_jwk_create_RSA_spec(&spec, &cerr);
    if (!key->jwk)
        return cf_err_set(err, CF_EINVAL, "%s: rsa key rejected (%s)", what, cerr.message);
    key->type = KEY_RSA;
    key->rsa_bytes = mod_len;
    return CF_OK;
}

/* An Ed25519 public key (RFC 8037: the "x" member). */
#define ED25519_KEY_BYTES 32

static size_t curve_coord_len(int nid)
{
    switch (nid) {
    case NID_X9_62_prime256v1:
        return 32;
    case NID_secp384r1:
        return 48;
    default:
        return 0;
    }
}

static enum cf_rc key_set_ec(struct jwt_key *key, int nid, unsigned char *x, size_t x_len,
                             unsigned char *y, size_t y_len, const char *what, struct cf_err *err)
{
    cjose_err cerr;
    size_t coord = curve_coord_len(nid);
    if (coord == 0 || x_len != coord || y_len != coord)
        return cf_err_set(err, CF_EINVAL, "%s: bad ec key coordinates", what);
    cjose_jwk_ec_keyspec spec = {
        .crv = (cjose_jwk_ec_curve)nid, .x = x, .xlen = x_len, .y = y, .ylen = y_len};
    key->jwk = cjose_jwk_create_EC_spec(&spec, &cerr);
    if (!key->jwk)
        return cf_err_set(err, CF_EINVAL, "%s: ec key rejected (%s)", what, cerr.message);
    key->type = KEY_EC;
    key->curve_nid = nid;
    return CF_OK;
}

static enum cf_rc key_set_ed25519(struct jwt_key *key, const unsigned char *x, size_t x_len,
                                  const char *what, struct cf_err *err)
{
    if (x_len != ED25519_KEY_BYTES)
        return cf_err_set(err, CF_EINVAL, "%s: bad ed25519 key length", what);
    key->ed = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, x_len);
    if (!key->ed)
        return cf_err_set(err, CF_EINVAL, "%s: ed25519 key rejected", what);
    key->type = KEY_ED25519;
    return CF_OK;
}

/* Decodes the base64url string member name of jwk; false when absent or malformed. */
static bool jwk_bytes(const json_t *jwk, const char *name, unsigned char **out, size_t *out_len)
{
    const json_t *v = json_object_get(jwk, name);
    if (!json_is_string(v) || json_string_length(v) == 0)
        return false;
    return b64url_decode(json_string_value(v), json_string_length(v), out, out_len);
}

/* True when a JWK's "use"/"key_ops" allow verifying signatures. */
static bool jwk_usable_for_verify(const json_t *jwk)
{
    const json_t *use = json_object_get(jwk, "use");
    const json_t *ops = json_object_get(jwk, "key_ops");
    if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig") != 0))
        return false;
    if (ops) {
        size_t i;
        const json_t *op;
        bool verify = false;
        if (!json_is_array(ops))
            return false;
        json_array_foreach(ops, i, op) if (json_is_string(op) &&
                                           strcmp(json_string_value(op), "verify") == 0) verify =
            true;
        if (!verify)
            return false;
    }
    return true;
}

/* Imports one JWK into key. CF_OK: imported; CF_ENOTFOUND: skipped (not a usable signing key);
 * CF_EINVAL: malformed. */
static enum cf_rc jwk_import(const json_t *jwk, size_t index, struct jwt_key *key,
                             struct cf_err *err)
{
    char what[48];
    unsigned char *a = NULL, *b = NULL;
    size_t a_len = 0, b_len = 0;
    enum cf_rc rc = CF_ENOTFOUND;
    const json_t *kty = json_object_get(jwk, "kty");
    const json_t *kid = json_object_get(jwk, "kid");
    const json_t *alg = json_object_get(jwk, "alg");
    const json_t *crv = json_object_get(jwk, "crv");

    snprintf(what, sizeof(what), "jwks key %zu", index);
    if (!json_is_object(jwk) || !json_is_string(kty))
        return cf_err_set(err, CF_EINVAL, "%s: not a jwk", what);
    if (kid && (!json_is_string(kid) || json_string_length(kid) >= KID_MAX ||
                strlen(json_string_value(kid)) != json_string_length(kid)))
        return cf_err_set(err, CF_EINVAL, "%s: bad kid", what);
    if (alg && !json_is_string(alg))
        return cf_err_set(err, CF_EINVAL, "%s: bad alg", what);
    if (!jwk_usable_for_verify(jwk))
        return CF_ENOTFOUND;
    if (alg && !alg_find(json_string_value(alg)))
        return CF_ENOTFOUND;

    const char *type = json_string_value(kty);
    if (strcmp(type, "RSA") == 0) {
        if (!jwk_bytes(jwk, "n", &a, &a_len) || !jwk_bytes(jwk, "e", &b, &b_len)) {
            rc = cf_err_set(err, CF_EINVAL, "%s: bad rsa members", what);
            goto out;
        }
        rc = key_set_rsa(key, a, a_len, b, b_len, what, err);
    } else if (strcmp(type, "EC") == 0) {
        int nid;
        if (!json_is_string(crv)) {
            rc = cf_err_set(err, CF_EINVAL, "%s: ec key without crv", what);
            goto out;
        }
        if (strcmp(json_string_value(crv), "P-256") == 0)
            nid = NID_X9_62_prime256v1;
        else if (strcmp(json_string_value(crv), "P-384") == 0)
            nid = NID_secp384r1;
        else
            goto out; /* P-521 and others: no accepted algorithm, skip */
        if (!jwk_bytes(jwk, "x", &a, &a_len) || !jwk_bytes(jwk, "y", &b, &b_len)) {
            rc = cf_err_set(err, CF_EINVAL, "%s: bad ec members", what);
            goto out;
        }
        rc = key_set_ec(key, nid, a, a_len, b, b_len, what, err);
    } else if (strcmp(type, "OKP") == 0) {
        if (!json_is_string(crv) || strcmp(json_string_value(crv), "Ed25519") != 0)
            goto out;
        if (!jwk_bytes(jwk, "x", &a, &a_len)) {
            rc = cf_err_set(err, CF_EINVAL, "%s: bad okp members", what);
            goto out;
        }
        rc = key_set_ed25519(key, a, a_len, what, err);
    }
    if (rc == CF_OK) {
        if (kid) {
            key->has_kid = true;
            cf_strlcpy(key->kid, json_string_value(kid), sizeof(key->kid));
        }
        if (alg)
            cf_strlcpy(key->alg, json_string_value(alg), sizeof(key->alg));
    }
out:
    free(a);
    free(b);
    return rc;
}

enum cf_rc cf_jwt_keys_from_jwks(const char *json, size_t len, struct cf_jwt_keys **out,
                                 struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    struct cf_jwt_keys *keys = NULL;
    json_t *doc = json_parse_strict((const unsigned char *)json, len);
    const json_t *arr = json_object_get(doc, "keys");
    const json_t *jwk;
    size_t i;

    *out = NULL;
    if (!json_is_object(doc) || !json_is_array(arr)) {
        rc = cf_err_set(err, CF_EINVAL, "jwks is not a json object with a \"keys\" array");
        goto out;
    }
    if (json_array_size(arr) > CF_JWT_KEYS_MAX) {
        rc = cf_err_set(err, CF_EINVAL, "jwks has more than %d keys", CF_JWT_KEYS_MAX);
        goto out;
    }
    keys = keys_new();
    if (!keys) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    json_array_foreach(arr, i, jwk)
    {
        struct jwt_key *key = &keys->keys[keys->n];
        enum cf_rc one = jwk_import(jwk, i, key, err);
        if (one == CF_OK) {
            keys->n++;
        } else {
            key_release(key);
            memset(key, 0, sizeof(*key));
            if (one != CF_ENOTFOUND) {
                rc = one;
                goto out;
            }
        }
    }
    if (keys->n == 0) {
        rc = cf_err_set(err, CF_EINVAL, "jwks has no usable signing key");
        goto out;
    }
    *out = keys;
    keys = NULL;
out:
    cf_jwt_keys_free(keys);
    json_decref(doc);
    return rc;
}

/* BN parameter of pkey as big-endian bytes, left-padded to pad bytes when pad > 0. */
static bool pkey_bn_bytes(const EVP_PKEY *pkey, const char *param, size_t pad, unsigned char **out,
                          size_t *out_len)
{
    BIGNUM *bn = NULL;
    bool ok = false;
    if (EVP_PKEY_get_bn_param(pkey, param, &bn) != 1)
        return false;
    size_t len = pad ? pad : (size_t)BN_num_bytes(bn);
    unsigned char *buf = malloc(len ? len : 1);
    if (buf && BN_bn2binpad(bn, buf, (int)len) == (int)len) {
        *out = buf;
        *out_len = len;
        buf = NULL;
        ok = true;
    }
    free(buf);
    BN_free(bn);
    return ok;
}

static enum cf_rc pem_import(EVP_PKEY *pkey, size_t index, struct jwt_key *key, struct cf_err *err)
{
    char what[48];
    unsigned char *a = NULL, *b = NULL;
    size_t a_len = 0, b_len = 0;
    enum cf_rc rc;

    snprintf(what, sizeof(what), "pem key %zu", index);
    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
        if (!pkey_bn_bytes(pkey, OSSL_PKEY_PARAM_RSA_N, 0, &a, &a_len) ||
            !pkey_bn_bytes(pkey, OSSL_PKEY_PARAM_RSA_E, 0, &b, &b_len)) {
            rc = cf_err_set(err, CF_EINVAL, "%s: unreadable rsa key", what);
            break;
        }
        rc = key_set_rsa(key, a, a_len, b, b_len, what, err);
        break;
    case EVP_PKEY_EC: {
        char group[64];
        int nid;
        if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) != 1) {
            rc = cf_err_set(err, CF_EINVAL, "%s: unreadable ec key", what);
            break;
        }
        nid = OBJ_sn2nid(group);
        if (curve_coord_len(nid) == 0) {
            rc = cf_err_set(err, CF_EINVAL, "%s: ec curve \"%s\" not accepted", what, group);
            break;
        }
        if (!pkey_bn_bytes(pkey, OSSL_PKEY_PARAM_EC_PUB_X, curve_coord_len(nid), &a, &a_len) ||
            !pkey_bn_bytes(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, curve_coord_len(nid), &b, &b_len)) {
            rc = cf_err_set(err, CF_EINVAL, "%s: unreadable ec key", what);
            break;
        }
        rc = key_set_ec(key, nid, a, a_len, b, b_len, what, err);
        break;
    }
    case EVP_PKEY_ED25519: {
        unsigned char raw[ED25519_KEY_BYTES];
        size_t raw_len = sizeof(raw);
        if (EVP_PKEY_get_raw_public_key(pkey, raw, &raw_len) != 1) {
            rc = cf_err_set(err, CF_EINVAL, "%s: unreadable ed25519 key", what);
            break;
        }
        rc = key_set_ed25519(key, raw, raw_len, what, err);
        break;
    }
    default:
        rc = cf_err_set(err, CF_EINVAL, "%s: key type not accepted", what);
        break;
    }
    free(a);
    free(b);
    return rc;
}

enum cf_rc cf_jwt_keys_from_pem(const char *pem, size_t len, struct cf_jwt_keys **out,
                                struct cf_err *err)
{
    enum cf_rc rc = CF_OK;
    struct cf_jwt_keys *keys = NULL;
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;

    *out = NULL;
    if (len > INT32_MAX) {
        rc = cf_err_set(err, CF_EINVAL, "pem too large");
        goto out;
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    keys = keys_new();
    if (!bio || !keys) {
        rc = cf_err_set(err, CF_ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        const char *rest = NULL;
        long rest_len = BIO_get_mem_data(bio, &rest);
        /* no further PEM block is the normal end; anything else must parse */
        if (rest_len <= 0 || !memmem(rest, (size_t)rest_len, "-----BEGIN", 10)) {
            if (keys->n == 0) {
                rc = cf_err_set(err, CF_EINVAL, "no pem public key found");
                goto out;
            }
            break;
        }
        pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        ERR_clear_error();
        if (!pkey) {
            rc = cf_err_set(err, CF_EINVAL, "pem key %zu does not parse (not a public key?)",
                            keys->n);
            goto out;
        }
        if (keys->n == CF_JWT_KEYS_MAX) {
            rc = cf_err_set(err, CF_EINVAL, "more than %d pem keys", CF_JWT_KEYS_MAX);
            goto out;
        }
        rc = pem_import(pkey, keys->n, &keys->keys[keys->n], err);
        if (rc != CF_OK) {
            key_release(&keys->keys[keys->n]);
            goto out;
        }
        keys->n++;
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    *out = keys;
    keys = NULL;
out:
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    cf_jwt_keys_free(keys);
    return rc;
}

void cf_jwt_policy_init(struct cf_jwt_policy *policy)
{
    memset(policy, 0, sizeof(*policy));
    policy->leeway_s = CF_JWT_LEEWAY_DEFAULT_S;
}

static bool key_fits(const struct jwt_key *key, const struct alg_info *alg)
{
    if (key->alg[0] && strcmp(key->alg, alg->name) != 0)
        return false;
    switch (alg->family) {
    case FAM_RS:
    case FAM_PS:
        return key->type == KEY_RSA;
    case FAM_ES:
        return key->type == KEY_EC && key->curve_nid == alg->curve_nid;
    case FAM_ED:
        return key->type == KEY_ED25519;
    }
    return false;
}

/* The parts of a compact JWS, decoded. */
struct jws_parts {
    size_t header_b64_len, payload_b64_len, sig_b64_len;
    const char *payload_b64, *sig_b64;
    unsigned char *header, *payload, *sig;
    size_t header_len, payload_len, sig_len;
    json_t *header_json;
};

static void jws_parts_release(struct jws_parts *p)
{
    free(p->header);
    free(p->payload);
    free(p->sig);
    json_decref(p->header_json);
}

static enum cf_rc jws_split(const char *token, struct jws_parts *p, struct cf_err *err)
{
    size_t len = strnlen(token, CF_JWT_TOKEN_MAX + 1);
    const char *dot1, *dot2;

    if (len > CF_JWT_TOKEN_MAX)
        return cf_err_set(err, CF_EUNAUTH, "malformed token: longer than %d bytes",
                          CF_JWT_TOKEN_MAX);
    dot1 = memchr(token, '.', len);
    dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot1 || !dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return cf_err_set(err, CF_EUNAUTH, "malformed token: not three dot-separated parts");
    p->header_b64_len = (size_t)(dot1 - token);
    p->payload_b64 = dot1 + 1;
    p->payload_b64_len = (size_t)(dot2 - p->payload_b64);
    p->sig_b64 = dot2 + 1;
    p->sig_b64_len = len - (size_t)(p->sig_b64 - token);
    if (p->header_b64_len == 0 || p->sig_b64_len == 0)
        return cf_err_set(err, CF_EUNAUTH, "malformed token: empty header or signature");
    if (!b64url_decode(token, p->header_b64_len, &p->header, &p->header_len))
        return cf_err_set(err, CF_EUNAUTH, "malformed token: header is not base64url");
    if (!b64url_decode(p->payload_b64, p->payload_b64_len, &p->payload, &p->payload_len))
        return cf_err_set(err, CF_EUNAUTH, "malformed token: payload is not base64url");
    if (!b64url_decode(p->sig_b64, p->sig_b64_len, &p->sig, &p->sig_len))
        return cf_err_set(err, CF_EUNAUTH, "malformed token: signature is not base64url");
    p->header_json = json_parse_strict(p->header, p->header_len);
    if (!json_is_object(p->header_json))
        return cf_err_set(err, CF_EUNAUTH,
                          "malformed token: header is not a json object (or repeats a name)");
    return CF_OK;
}

static bool verify_ed25519(const struct jwt_key *key, const char *token, size_t signing_len,
                           const struct jws_parts *p)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = false;
    if (!ctx)
        return false;
    if (p->sig_len == 64 && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key->ed) == 1 &&
        EVP_DigestVerify(ctx, p->sig, p->sig_len, (const unsigned char *)token, signing_len) == 1)
        ok = true;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* cjose checks RSA and EC signatures; the lengths are pinned here first because a JWS signature
 * has exactly one valid length for a given key and algorithm. */
static bool verify_cjose(const struct jwt_key *key, const struct alg_info *alg, cjose_jws_t *jws,
                         const struct jws_parts *p)
{
    cjose_err cerr;
    if (alg->family == FAM_ES && p->sig_len != alg->ec_sig_len)
        return false;
    if ((alg->family == FAM_RS || alg->family == FAM_PS) && p->sig_len != key->rsa_bytes)
        return false;
    bool ok = cjose_jws_verify(jws, key->jwk, &cerr);
    ERR_clear_error();
    return ok;
}

enum cf_rc cf_jwt_verify_signature(const struct cf_jwt_keys *keys, const char *token,
                                   char **payload, size_t *payload_len, struct cf_err *err)
{
    struct jws_parts p = {0};
    cjose_jws_t *jws = NULL;
    cjose_err cerr;
    char shown[QUOTED_MAX + 4];
    const struct alg_info *alg;
    enum cf_rc rc;
    bool tried = false, verified = false;

    if (payload)
        *payload = NULL;
    if (!keys || !token) {
        rc = cf_err_set(err, CF_EUNAUTH, "malformed token: missing");
        goto out;
    }
    rc = jws_split(token, &p, err);
    if (rc != CF_OK)
        goto out;

    const json_t *alg_j = json_object_get(p.header_json, "alg");
    const json_t *kid_j = json_object_get(p.header_json, "kid");
    if (!json_is_string(alg_j)) {
        rc = cf_err_set(err, CF_EUNAUTH, "malformed token: header has no alg");
        goto out;
    }
    if (kid_j && !json_is_string(kid_j)) {
        rc = cf_err_set(err, CF_EUNAUTH, "malformed token: kid is not a string");
        goto out;
    }
    if (json_object_get(p.header_json, "crit")) {
        rc = cf_err_set(err, CF_EUNAUTH, "malformed token: critical header extensions");
        goto out;
    }
    alg = alg_find(json_string_value(alg_j));
    if (!alg || strlen(json_string_value(alg_j)) != json_string_length(alg_j)) {
        quote_json_string(alg_j, shown);
        rc = cf_err_set(err, CF_EUNAUTH, "algorithm \"%s\" not allowed", shown);
        goto out;
    }

    /* the key: by kid, or each fitting key; "jwk", "jku", "x5u", "x5c" play no part. A key without
     * a kid (a static PEM key) cannot be chosen by kid: it is tried whenever it fits, as GitLab's
     * and Entra ID's tokens carry a kid whatever the verifier was given. */
    size_t by_kid = 0;
    bool kidless_tried = false;
    for (size_t i = 0; i < keys->n && !verified; i++) {
        const struct jwt_key *key = &keys->keys[i];
        if (kid_j && key->has_kid) {
            if (strlen(key->kid) != json_string_length(kid_j) ||
                memcmp(key->kid, json_string_value(kid_j), json_string_length(kid_j)) != 0)
                continue;
            by_kid++;
        }
        if (!key_fits(key, alg))
            continue;
        tried = true;
        kidless_tried |= !key->has_kid;
        if (key->type == KEY_ED25519) {
            verified = verify_ed25519(key, token, p.header_b64_len + 1 + p.payload_b64_len, &p);
        } else {
            if (!jws) {
                jws = cjose_jws_import(token, strlen(token), &cerr);
                ERR_clear_error();
                if (!jws) {
                    rc = cf_err_set(err, CF_EUNAUTH, "malformed token: jws not accepted (%s)",
                                    cerr.message);
                    goto out;
                }
            }
            verified = verify_cjose(key, alg, jws, &p);
        }
    }
    if (kid_j && by_kid == 0 && !kidless_tried) {
        quote_json_string(kid_j, shown);
        rc = cf_err_field(err, CF_EUNAUTH, "kid", "unknown key id \"%s\"", shown);
        goto out;
    }
    if (!tried) {
        if (kid_j) {
            char kid_shown[QUOTED_MAX + 4];
            quote_json_string(kid_j, kid_shown);
            rc = cf_err_set(err, CF_EUNAUTH, "algorithm \"%s\" not allowed for key \"%s\"",
                            alg->name, kid_shown);
        } else {
            rc = cf_err_field(err, CF_EUNAUTH, "kid",
                              "unknown key id: token has no kid and no key fits algorithm \"%s\"",
                              alg->name);
        }
        goto out;
    }
    if (!verified) {
        rc = cf_err_set(err, CF_EUNAUTH, "bad signature");
        goto out;
    }
    if (payload) {
        *payload = (char *)p.payload;
        p.payload = NULL;
        if (payload_len)
            *payload_len = p.payload_len;
    }
    rc = CF_OK;
out:
    if (jws)
        cjose_jws_release(jws);
    jws_parts_release(&p);
    return rc;
}

/* Reads a NumericDate claim. false: absent (*present false) or malformed. */
static bool numeric_date(const json_t *claims, const char *name, bool *present, int64_t *out)
{
    const json_t *v = json_object_get(claims, name);
    *present = v != NULL;
    if (!v)
        return true;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || i > NUMERIC_DATE_MAX)
            return false;
        *out = (int64_t)i;
        return true;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d >= 0 && d <= (double)NUMERIC_DATE_MAX))
            return false;
        *out = (int64_t)d; /* d >= 0: truncation is floor */
        return true;
    }
    return false;
}

static bool glob_match(const char *pattern, const char *value)
{
    return fnmatch(pattern, value, FNM_PATHNAME) == 0;
}

/* Matches a scalar claim value against one pattern. */
static bool scalar_matches(const json_t *v, const char *pattern)
{
    char text[32];
    if (json_is_string(v)) {
        if (strlen(json_string_value(v)) != json_string_length(v))
            return false; /* embedded NUL: never equal to a C string pattern */
        return glob_match(pattern, json_string_value(v));
    }
    if (json_is_integer(v)) {
        snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(v));
        return glob_match(pattern, text);
    }
    if (json_is_boolean(v))
        return glob_match(pattern, json_is_true(v) ? "true" : "false");
    return false;
}

static bool value_matches_any(const json_t *v, const char *const *patterns, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!patterns[i])
            continue;
        if (json_is_array(v)) {
            size_t j;
            const json_t *elem;
            json_array_foreach(v, j, elem) if (scalar_matches(elem, patterns[i])) return true;
        } else if (scalar_matches(v, patterns[i])) {
            return true;
        }
    }
    return false;
}

/* The claim at path: a top-level member of that exact name, else a dotted walk. */
static const json_t *claim_at(const json_t *claims, const char *path)
{
    const json_t *v = json_object_get(claims, path);
    if (v)
        return v;
    const char *seg = path;
    v = claims;
    while (v && *seg) {
        const char *dot = strchr(seg, '.');
        size_t seg_len = dot ? (size_t)(dot - seg) : strlen(seg);
        if (!json_is_object(v) || seg_len == 0)
            return NULL;
        v = json_object_getn(v, seg, seg_len);
        seg = dot ? dot + 1 : seg + seg_len;
        if (dot && !*seg)
            return NULL;
    }
    return v == claims ? NULL : v;
}

static bool audience_matches(const json_t *aud, const struct cf_jwt_policy *policy)
{
    for (size_t i = 0; i < policy->n_audiences; i++) {
        const char *want = policy->audiences[i];
        if (!want || !*want)
            continue;
        if (json_is_string(aud) && strcmp(json_string_value(aud), want) == 0 &&
            strlen(want) == json_string_length(aud))
            return true;
        if (json_is_array(aud)) {
            size_t j;
            const json_t *elem;
            json_array_foreach(aud, j,
                               elem) if (json_is_string(elem) &&
                                         strlen(want) == json_string_length(elem) &&
                                         strcmp(json_string_value(elem), want) == 0) return true;
        }
    }
    return false;
}

static enum cf_rc check_claims(const json_t *claims, const struct cf_jwt_policy *policy,
                               int64_t now, struct cf_err *err)
{
    char when[CF_TIME_RFC3339_LEN];
    char shown[QUOTED_MAX + 4];
    int64_t exp = 0, nbf = 0, iat = 0;
    bool has_exp, has_nbf, has_iat;
    int64_t leeway = policy->leeway_s;

    if (!numeric_date(claims, "exp", &has_exp, &exp) ||
        !numeric_date(claims, "nbf", &has_nbf, &nbf) ||
        !numeric_date(claims, "iat", &has_iat, &iat))
        return cf_err_set(err, CF_EUNAUTH, "malformed token: exp, nbf or iat is not a date");
    if (!has_exp)
        return cf_err_set(err, CF_EUNAUTH, "token has no exp claim");
    if (now >= exp + leeway)
        return cf_err_set(err, CF_EUNAUTH, "token expired at %s", cf_time_format(exp * 1000, when));
    if (has_nbf && now + leeway < nbf)
        return cf_err_set(err, CF_EUNAUTH, "token not yet valid (nbf %s)",
                          cf_time_format(nbf * 1000, when));
    if (has_iat && now + leeway < iat)
        return cf_err_set(err, CF_EUNAUTH, "token issued in the future (iat %s)",
                          cf_time_format(iat * 1000, when));

    if (policy->issuer && *policy->issuer) {
        const json_t *iss = json_object_get(claims, "iss");
        if (!json_is_string(iss) || strlen(policy->issuer) != json_string_length(iss) ||
            strcmp(json_string_value(iss), policy->issuer) != 0) {
            if (json_is_string(iss))
                quote_json_string(iss, shown);
            else
                cf_strlcpy(shown, "(none)", sizeof(shown));
            return cf_err_set(err, CF_EUNAUTH, "issuer \"%s\" not allowed", shown);
        }
    }
    if (policy->n_audiences > 0 && !audience_matches(json_object_get(claims, "aud"), policy))
        return cf_err_set(err, CF_EUNAUTH, "audience mismatch");
    if (policy->subject && *policy->subject) {
        const json_t *sub = json_object_get(claims, "sub");
        if (!json_is_string(sub) || !value_matches_any(sub, &policy->subject, 1))
            return cf_err_set(err, CF_EUNAUTH, "subject mismatch");
    }
    for (size_t i = 0; i < policy->n_claims; i++) {
        const struct cf_jwt_claim_rule *rule = &policy->claims[i];
        const json_t *v = claim_at(claims, rule->path);
        if (!v || !value_matches_any(v, rule->values, rule->n_values)) {
            quote_for_msg(rule->path, strlen(rule->path), shown);
            return cf_err_set(err, CF_EUNAUTH, "claim \"%s\" mismatch", shown);
        }
    }
    return CF_OK;
}

enum cf_rc cf_jwt_verify(const struct cf_jwt_keys *keys, const char *token,
                         const struct cf_jwt_policy *policy, int64_t now, json_t **claims,
                         struct cf_err *err)
{
    char *payload = NULL;
    size_t payload_len = 0;
    json_t *doc = NULL;
    enum cf_rc rc;

    if (claims)
        *claims = NULL;
    if (!policy || policy->leeway_s < 0 || policy->leeway_s > CF_JWT_LEEWAY_MAX_S) {
        rc = cf_err_set(err, CF_EINVAL, "jwt policy: leeway must be 0..%d seconds",
                        CF_JWT_LEEWAY_MAX_S);
        goto out;
    }
    for (size_t i = 0; i < policy->n_claims; i++) {
        if (!policy->claims[i].path || !*policy->claims[i].path) {
            rc = cf_err_set(err, CF_EINVAL, "jwt policy: bound claim without a name");
            goto out;
        }
    }
    rc = cf_jwt_verify_signature(keys, token, &payload, &payload_len, err);
    if (rc != CF_OK)
        goto out;
    doc = json_parse_strict((const unsigned char *)payload, payload_len);
    if (!json_is_object(doc)) {
        rc = cf_err_set(err, CF_EUNAUTH,
                        "malformed token: payload is not a json object (or repeats a name)");
        goto out;
    }
    rc = check_claims(doc, policy, now, err);
    if (rc != CF_OK)
        goto out;
    if (claims) {
        *claims = doc;
        doc = NULL;
    }
out:
    json_decref(doc);
    free(payload);
    return rc;
}
