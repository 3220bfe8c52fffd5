/* Unit tests for src/auth/jwt: known answers from RFC 7515 (A.2 RS256, A.3 ES256) and RFC 8037
 * (Ed25519); the Wycheproof JSON Web Signature vectors (committed in tests/testdata/wycheproof,
 * loaded at test time: a missing file fails the test rather than skipping it); and
 * a negative catalogue built from keys OpenSSL generates at test time, each case asserting the
 * refusal's specific cause and that the message never echoes the token. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <sodium.h>

#include "auth/jwt.h"
#include "util/err.h"
#include "util/banned.h"
#include "util/str.h"

/* ---- helpers ---- */

static char *b64url(const unsigned char *bin, size_t len)
{
    size_t cap = sodium_base64_encoded_len(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(cap);
    cr_assert_not_null(out);
    sodium_bin2base64(out, cap, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

static char *b64url_str(const char *s)
{
    return b64url((const unsigned char *)s, strlen(s));
}

static char *join3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
    char *out = malloc(n);
    cr_assert_not_null(out);
    snprintf(out, n, "%s.%s.%s", a, b, c);
    return out;
}

static EVP_PKEY *keygen(const char *type, const char *param)
{
    EVP_PKEY *k;
    if (strcmp(type, "RSA") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)strtoul(param, NULL, 10));
    else if (strcmp(type, "EC") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", param);
    else
        k = EVP_PKEY_Q_keygen(NULL, NULL, type);
    cr_assert_not_null(k, "openssl keygen %s", type);
    return k;
}

static char *pem_of(EVP_PKEY *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    cr_assert(PEM_write_bio_PUBKEY(bio, k) == 1);
    long n = BIO_get_mem_data(bio, &data);
    /* Not strndup: the BIO's memory has no terminating NUL, which strict ASan string checks flag.
     */
    char *out = malloc((size_t)n + 1);
    cr_assert_not_null(out);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    BIO_free(bio);
    return out;
}

static char *bn_b64(EVP_PKEY *k, const char *param, size_t pad)
{
    BIGNUM *bn = NULL;
    cr_assert(EVP_PKEY_get_bn_param(k, param, &bn) == 1);
    size_t len = pad ? pad : (size_t)BN_num_bytes(bn);
    unsigned char *buf = malloc(len);
    cr_assert(BN_bn2binpad(bn, buf, (int)len) == (int)len);
    char *out = b64url(buf, len);
    free(buf);
    BN_free(bn);
    return out;
}

/* A one-key JWKS for an RSA or P-256 key, with kid (and alg when not NULL). */
static char *jwks_of(EVP_PKEY *k, const char *kid, const char *alg)
{
    json_t *jwk;
    if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA) {
        char *n = bn_b64(k, OSSL_PKEY_PARAM_RSA_N, 0), *e = bn_b64(k, OSSL_PKEY_PARAM_RSA_E, 0);
        jwk = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", n, "e", e);
        free(n);
        free(e);
    } else {
        char *x = bn_b64(k, OSSL_PKEY_PARAM_EC_PUB_X, 32),
             *y = bn_b64(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
        jwk = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x", x, "y", y);
        free(x);
        free(y);
    }
    if (kid)
        json_object_set_new(jwk, "kid", json_string(kid));
    if (alg)
        json_object_set_new(jwk, "alg", json_string(alg));
    json_t *doc = json_pack("{s:[o]}", "keys", jwk);
    char *out = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return out;
}

/* Signs input with k for alg (RS256, PS256, ES256, EdDSA); returns the base64url signature. */
static char *sign_b64(EVP_PKEY *k, const char *alg, const char *input)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    const EVP_MD *md = strcmp(alg, "EdDSA") == 0     ? NULL
                       : strcmp(alg + 2, "384") == 0 ? EVP_sha384()
                                                     : EVP_sha256();
    unsigned char sig[1024];
    size_t sig_len = sizeof(sig);
    cr_assert(EVP_DigestSignInit(ctx, &pctx, md, NULL, k) == 1);
    if (strcmp(alg, "PS256") == 0) {
        cr_assert(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1);
        cr_assert(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1);
    }
    cr_assert(EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)input, strlen(input)) == 1);
    EVP_MD_CTX_free(ctx);
    if (strncmp(alg, "ES", 2) == 0) { /* DER -> r || s, as JWS encodes it */
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
        unsigned char raw[96];
        int coord = strcmp(alg, "ES384") == 0 ? 48 : 32;
        cr_assert_not_null(es);
        cr_assert(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, coord) == coord);
        cr_assert(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + coord, coord) == coord);
        ECDSA_SIG_free(es);
        return b64url(raw, (size_t)(2 * coord));
    }
    return b64url(sig, sig_len);
}

/* A complete token from header and payload JSON text, signed by k with alg. */
static char *make_token(EVP_PKEY *k, const char *alg, const char *header, const char *payload)
{
    char *h = b64url_str(header), *p = b64url_str(payload);
    size_t n = strlen(h) + strlen(p) + 2;
    char *input = malloc(n);
    snprintf(input, n, "%s.%s", h, p);
    char *s = sign_b64(k, alg, input);
    char *tok = join3(h, p, s);
    free(h);
    free(p);
    free(s);
    free(input);
    return tok;
}

/* Asserts a refusal: CF_EUNAUTH, message containing cause, and no part of the token. */
static void assert_refused(enum cf_rc rc, const struct cf_err *err, const char *token,
                           const char *cause)
{
    cr_assert_eq(rc, CF_EUNAUTH, "expected refusal \"%s\", got rc %d (%s)", cause, rc, err->msg);
    cr_assert_not_null(strstr(err->msg, cause), "expected cause \"%s\" in \"%s\"", cause, err->msg);
    /* the message never echoes the token: no 16-char window of it appears */
    size_t len = strlen(token);
    for (size_t i = 0; len >= 16 && i + 16 <= len; i += 8) {
        char window[17];
        memcpy(window, token + i, 16);
        window[16] = '\0';
        cr_assert_null(strstr(err->msg, window), "message echoes the token: %s", err->msg);
    }
}

/* ---- RFC known answers ---- */

#define RFC_PAYLOAD_B64                                                                            \
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl" \
    "fQ"
#define RFC_EXP 1300819380

static const char *rfc7515_a2_jwks =
    "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPdd"
    "xHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9"
    "wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZ"
    "lxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4"
    "FRWyuXpoQ\",\"e\":\"AQAB\"}]}";
static const char *rfc7515_a2_token =
    "eyJhbGciOiJSUzI1NiJ9." RFC_PAYLOAD_B64
    ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp"
    "5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb"
    "1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOY"
    "EUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

static const char *rfc7515_a3_jwks =
    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRV"
    "EU\",\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";
static const char *rfc7515_a3_token =
    "eyJhbGciOiJFUzI1NiJ9." RFC_PAYLOAD_B64
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

static const char *rfc8037_jwks = "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":"
                                  "\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPc"
                                  "HURo\"}]}";
static const char *rfc8037_token =
    "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg"
    "3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

static struct cf_jwt_keys *load_jwks(const char *json)
{
    struct cf_jwt_keys *keys = NULL;
    struct cf_err err = {0};
    enum cf_rc rc = cf_jwt_keys_from_jwks(json, strlen(json), &keys, &err);
    cr_assert_eq(rc, CF_OK, "jwks: %s", err.msg);
    return keys;
}

static void rfc7515_check(const char *jwks, const char *token)
{
    struct cf_jwt_keys *keys = load_jwks(jwks);
    struct cf_jwt_policy policy;
    struct cf_err err = {0};
    json_t *claims = NULL;
    cf_jwt_policy_init(&policy);
    policy.issuer = "joe";

    enum cf_rc rc = cf_jwt_verify(keys, token, &policy, RFC_EXP - 300, &claims, &err);
    cr_assert_eq(rc, CF_OK, "%s", err.msg);
    cr_assert_str_eq(json_string_value(json_object_get(claims, "iss")), "joe");
    cr_assert(json_is_true(json_object_get(claims, "http://example.com/is_root")));
    json_decref(claims);

    /* the same token after exp + leeway */
    rc = cf_jwt_verify(keys, token, &policy, RFC_EXP + 60, NULL, &err);
    assert_refused(rc, &err, token, "token expired at 2011-03-22T18:43:00");

    /* one signature bit flipped */
    char *bad = strdup(token);
    size_t last = strlen(bad) - 5;
    bad[last] = bad[last] == 'A' ? 'B' : 'A';
    rc = cf_jwt_verify(keys, bad, &policy, RFC_EXP - 300, NULL, &err);
    assert_refused(rc, &err, bad, "bad signature");
    free(bad);
    cf_jwt_keys_free(keys);
}

Test(jwt_rfc, rfc7515_a2_rs256)
{
    rfc7515_check(rfc7515_a2_jwks, rfc7515_a2_token);
}

Test(jwt_rfc, rfc7515_a3_es256)
{
    rfc7515_check(rfc7515_a3_jwks, rfc7515_a3_token);
}

Test(jwt_rfc, rfc8037_ed25519)
{
    struct cf_jwt_keys *keys = load_jwks(rfc8037_jwks);
    struct cf_jwt_policy policy;
    struct cf_err err = {0};
    char *payload = NULL;
    size_t payload_len = 0;

    enum cf_rc rc = cf_jwt_verify_signature(keys, rfc8037_token, &payload, &payload_len, &err);
    cr_assert_eq(rc, CF_OK, "%s", err.msg);
    cr_assert_eq(payload_len, strlen("Example of Ed25519 signing"));
    cr_assert_str_eq(payload, "Example of Ed25519 signing");
    free(payload);

    /* a valid signature over a payload that is not a JWT claims set */
    cf_jwt_policy_init(&policy);
    rc = cf_jwt_verify(keys, rfc8037_token, &policy, 1700000000, NULL, &err);
    assert_refused(rc, &err, rfc8037_token, "malformed token: payload is not a json object");

    /* the RFC 8037 token checked against the RFC 7515 RSA key: no fitting key */
    struct cf_jwt_keys *rsa = load_jwks(rfc7515_a2_jwks);
    rc = cf_jwt_verify_signature(rsa, rfc8037_token, NULL, NULL, &err);
    assert_refused(rc, &err, rfc8037_token, "no key fits algorithm \"EdDSA\"");
    cf_jwt_keys_free(rsa);
    cf_jwt_keys_free(keys);
}

/* ---- Wycheproof ---- */

/* The Wycheproof vectors committed under tests/testdata/wycheproof (tests/unit/meson.build passes
 * that directory as CF_TESTDATA_DIR); COFFER_TESTDATA names another testdata directory. */
static void wycheproof_dir(char *out, size_t size)
{
    const char *env = getenv("COFFER_TESTDATA");
    snprintf(out, size, "%s/wycheproof", env && *env ? env : CF_TESTDATA_DIR);
}

/* The header's "alg" of a compact token, or "" when it does not decode. */
static void header_alg(const char *jws, char *alg, size_t size)
{
    const char *dot = strchr(jws, '.');
    unsigned char bin[1024];
    size_t bin_len = 0;
    alg[0] = '\0';
    if (!dot || sodium_base642bin(bin, sizeof(bin) - 1, jws, (size_t)(dot - jws), NULL, &bin_len,
                                  NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return;
    json_t *h = json_loadb((const char *)bin, bin_len, 0, NULL);
    if (json_is_string(json_object_get(h, "alg")))
        snprintf(alg, size, "%s", json_string_value(json_object_get(h, "alg")));
    json_decref(h);
}

static bool coffer_supports(const char *alg, const json_t *pub)
{
    const char *kty = json_string_value(json_object_get(pub, "kty"));
    const char *crv = json_string_value(json_object_get(pub, "crv"));
    if (!kty)
        return false;
    if ((strncmp(alg, "RS", 2) == 0 || strncmp(alg, "PS", 2) == 0) &&
        (!strcmp(alg + 2, "256") || !strcmp(alg + 2, "384") || !strcmp(alg + 2, "512")))
        return strcmp(kty, "RSA") == 0;
    if (strcmp(alg, "ES256") == 0)
        return strcmp(kty, "EC") == 0 && crv && strcmp(crv, "P-256") == 0;
    if (strcmp(alg, "ES384") == 0)
        return strcmp(kty, "EC") == 0 && crv && strcmp(crv, "P-384") == 0;
    if (strcmp(alg, "EdDSA") == 0)
        return strcmp(kty, "OKP") == 0 && crv && strcmp(crv, "Ed25519") == 0;
    return false;
}

/* Valid Wycheproof cases Coffer refuses on purpose: the RFC 7520 key is declared "alg":"PS256"
 * and the token is PS384. A key's declared alg binds it (RFC 7517 4.4); the same rule refuses
 * cases 331-340 (a PS512 key used with RS256..RS512, PS256 or PS384), which Wycheproof marks
 * invalid. */
static const int deliberate_refusals[] = {346, 350};

static bool is_deliberate(int tc)
{
    for (size_t i = 0; i < CF_ARRAY_SIZE(deliberate_refusals); i++)
        if (deliberate_refusals[i] == tc)
            return true;
    return false;
}

static struct cf_jwt_keys *keys_for_jwk(const json_t *jwk)
{
    json_t *doc = json_pack("{s:[O]}", "keys", jwk);
    char *text = json_dumps(doc, JSON_COMPACT);
    struct cf_jwt_keys *keys = NULL;
    struct cf_err err = {0};
    if (cf_jwt_keys_from_jwks(text, strlen(text), &keys, &err) != CF_OK)
        keys = NULL;
    free(text);
    json_decref(doc);
    return keys;
}

Test(jwt_wycheproof, json_web_signature)
{
    char dir[PATH_MAX], path[PATH_MAX + 64];
    wycheproof_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/json_web_signature_test.json", dir);
    json_error_t jerr;
    json_t *doc = json_load_file(path, 0, &jerr);
    cr_assert_not_null(doc, "cannot load %s: %s", path, jerr.text);

    /* groups without a public key (HMAC) are checked against every public key of the file */
    json_t *all = json_pack("{s:[]}", "keys");
    size_t gi, ti;
    json_t *group, *test;
    json_array_foreach(json_object_get(doc, "testGroups"), gi, group)
    {
        json_t *pub = json_object_get(group, "public");
        struct cf_jwt_keys *probe = pub ? keys_for_jwk(pub) : NULL;
        if (probe)
            json_array_append(json_object_get(all, "keys"), pub);
        cf_jwt_keys_free(probe);
    }
    char *all_text = json_dumps(all, JSON_COMPACT);
    struct cf_jwt_keys *all_keys = NULL;
    struct cf_err err = {0};
    cr_assert_eq(cf_jwt_keys_from_jwks(all_text, strlen(all_text), &all_keys, &err), CF_OK, "%s",
                 err.msg);

    int invalid = 0, invalid_refused = 0, valid = 0, valid_supported = 0, valid_accepted = 0;
    int deliberate = 0;
    json_array_foreach(json_object_get(doc, "testGroups"), gi, group)
    {
        json_t *pub = json_object_get(group, "public");
        struct cf_jwt_keys *keys = pub ? keys_for_jwk(pub) : NULL;
        const struct cf_jwt_keys *use = pub ? keys : all_keys;
        json_array_foreach(json_object_get(group, "tests"), ti, test)
        {
            int tc = (int)json_integer_value(json_object_get(test, "tcId"));
            const char *result = json_string_value(json_object_get(test, "result"));
            json_t *jws_j = json_object_get(test, "jws");
            char *jws = json_is_string(jws_j) ? strdup(json_string_value(jws_j))
                                              : json_dumps(jws_j, JSON_COMPACT);
            bool accepted = use && cf_jwt_verify_signature(use, jws, NULL, NULL, &err) == CF_OK;
            if (strcmp(result, "invalid") == 0) {
                invalid++;
                cr_expect(!accepted, "wycheproof tc %d (invalid) was accepted", tc);
                invalid_refused += !accepted;
            } else if (strcmp(result, "valid") == 0) {
                char alg[32];
                valid++;
                header_alg(jws, alg, sizeof(alg));
                if (pub && coffer_supports(alg, pub)) {
                    if (is_deliberate(tc)) {
                        deliberate++;
                        cr_expect(!accepted, "tc %d: expected the deliberate refusal", tc);
                        cr_expect(strstr(err.msg, "not allowed for key") != NULL, "tc %d: %s", tc,
                                  err.msg);
                    } else {
                        valid_supported++;
                        cr_expect(accepted, "wycheproof tc %d (valid, %s) refused: %s", tc, alg,
                                  err.msg);
                        valid_accepted += accepted;
                    }
                } else {
                    cr_expect(!accepted, "tc %d: unsupported %s accepted", tc, alg);
                }
            }
            free(jws);
        }
        cf_jwt_keys_free(keys);
    }
    fprintf(stderr,
            "jwt_wycheproof: invalid refused %d/%d; valid supported accepted %d/%d; valid "
            "refused on purpose %d; valid unsupported (HMAC, ES512) %d\n",
            invalid_refused, invalid, valid_accepted, valid_supported, deliberate,
            valid - valid_supported - deliberate);
    cr_expect_eq(invalid, 355, "the file should hold 355 invalid cases");
    cr_expect_eq(invalid_refused, invalid);
    cr_expect_eq(valid_accepted, valid_supported);
    cr_expect(valid_supported >= 30, "too few supported valid cases ran (%d)", valid_supported);
    free(all_text);
    json_decref(all);
    cf_jwt_keys_free(all_keys);
    json_decref(doc);
}

/* ---- negative catalogue with keys generated now ---- */

static EVP_PKEY *rsa_key, *rsa_other, *ec_key, *ec384_key, *ed_key;
static struct cf_jwt_keys *rsa_keys; /* JWKS: rsa_key as kid "k1", alg unset */
static char *rsa_pem;
static const int64_t now = 1800000000;

static void catalogue_setup(void)
{
    cr_assert(sodium_init() >= 0);
    rsa_key = keygen("RSA", "2048");
    rsa_other = keygen("RSA", "2048");
    ec_key = keygen("EC", "P-256");
    ec384_key = keygen("EC", "P-384");
    ed_key = keygen("ED25519", NULL);
    char *jwks = jwks_of(rsa_key, "k1", NULL);
    rsa_keys = load_jwks(jwks);
    free(jwks);
    rsa_pem = pem_of(rsa_key);
}

static void catalogue_teardown(void)
{
    cf_jwt_keys_free(rsa_keys);
    free(rsa_pem);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(rsa_other);
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(ec384_key);
    EVP_PKEY_free(ed_key);
}

static const char *good_header = "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}";

/* Claims shaped like a GitHub Actions token, valid around now. */
static char *claims_text(const char *iss, const char *aud, const char *sub, int64_t exp,
                         const char *extra)
{
    char *out = malloc(2048);
    snprintf(out, 2048,
             "{\"iss\":\"%s\",\"aud\":%s,\"sub\":\"%s\",\"exp\":%lld,\"iat\":%lld,"
             "\"repository_owner\":\"acme\",\"ref\":\"refs/heads/main\","
             "\"ctx\":{\"team\":\"infra\",\"tier\":2}%s}",
             iss, aud, sub, (long long)exp, (long long)(now - 10), extra ? extra : "");
    return out;
}

static const char *const audiences[] = {"api://AzureADTokenExchange", "https://github.com/acme"};
static const char *const owners[] = {"acme"};
static const char *const refs[] = {"refs/heads/release-*", "refs/heads/main"};
static const char *const teams[] = {"infra"};
static const struct cf_jwt_claim_rule rules[] = {
    {"repository_owner", owners, 1},
    {"ref", refs, 2},
    {"ctx.team", teams, 1},
};

static void policy_of(struct cf_jwt_policy *p)
{
    cf_jwt_policy_init(p);
    p->issuer = "https://token.actions.githubusercontent.com";
    p->audiences = audiences;
    p->n_audiences = 2;
    p->subject = "repo:acme/*:ref:refs/heads/main";
    p->claims = rules;
    p->n_claims = 3;
}

#define ISS "https://token.actions.githubusercontent.com"
#define AUD "\"https://github.com/acme\""
#define SUB "repo:acme/app:ref:refs/heads/main"

/* Signs claims with rsa_key/RS256/kid k1 and verifies under the catalogue policy. */
static enum cf_rc verify_claims(const char *claims, char **token_out, struct cf_err *err)
{
    struct cf_jwt_policy policy;
    policy_of(&policy);
    char *tok = make_token(rsa_key, "RS256", good_header, claims);
    enum cf_rc rc = cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, err);
    *token_out = tok;
    return rc;
}

/* Signs claims, verifies them under the catalogue policy and asserts the refusal's cause. */
static void expect_claims_refused(const char *claims, const char *cause)
{
    struct cf_err err = {0};
    char *tok = NULL;
    enum cf_rc rc = verify_claims(claims, &tok, &err);
    assert_refused(rc, &err, tok, cause);
    free(tok);
}

TestSuite(jwt_catalogue, .init = catalogue_setup, .fini = catalogue_teardown);

Test(jwt_catalogue, valid_token_accepted)
{
    struct cf_err err = {0};
    struct cf_jwt_policy policy;
    json_t *claims = NULL;
    policy_of(&policy);
    char *c = claims_text(ISS, AUD, SUB, now + 600, NULL);
    char *tok = make_token(rsa_key, "RS256", good_header, c);
    cr_assert_eq(cf_jwt_verify(rsa_keys, tok, &policy, now, &claims, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(json_string_value(json_object_get(claims, "sub")), SUB);
    json_decref(claims);
    free(tok);
    free(c);

    /* aud as an array holding one bound audience among others */
    c = claims_text(ISS, "[\"other\",\"api://AzureADTokenExchange\"]", SUB, now + 600, NULL);
    tok = make_token(rsa_key, "RS256", good_header, c);
    cr_assert_eq(cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err), CF_OK, "%s", err.msg);
    free(tok);
    free(c);
}

Test(jwt_catalogue, other_algorithms_and_pem_keys)
{
    struct cf_err err = {0};
    struct cf_jwt_policy policy;
    cf_jwt_policy_init(&policy);
    char *c = claims_text(ISS, AUD, SUB, now + 600, NULL);
    struct {
        EVP_PKEY *key;
        const char *alg;
        const char *header;
    } cases[] = {
        {rsa_key, "PS256", "{\"alg\":\"PS256\"}"},
        {ec_key, "ES256", "{\"alg\":\"ES256\"}"},
        {ed_key, "EdDSA", "{\"alg\":\"EdDSA\"}"},
        {ec384_key, "ES384", "{\"alg\":\"ES384\"}"},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        char *pem = pem_of(cases[i].key);
        struct cf_jwt_keys *keys = NULL;
        cr_assert_eq(cf_jwt_keys_from_pem(pem, strlen(pem), &keys, &err), CF_OK, "%s", err.msg);
        char *tok = make_token(cases[i].key, cases[i].alg, cases[i].header, c);
        cr_expect_eq(cf_jwt_verify(keys, tok, &policy, now, NULL, &err), CF_OK, "%s: %s",
                     cases[i].alg, err.msg);
        /* the same token against the RSA JWKS: the same RSA key, or no fitting key */
        enum cf_rc rc = cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err);
        if (strcmp(cases[i].alg, "PS256") == 0)
            cr_expect_eq(rc, CF_OK, "%s", err.msg);
        else
            assert_refused(rc, &err, tok, "no key fits");
        free(tok);
        cf_jwt_keys_free(keys);
        free(pem);
    }
    /* three PEM keys in one document; each token finds its key */
    char *p1 = pem_of(rsa_key), *p2 = pem_of(ec_key), *p3 = pem_of(ed_key), *p4 = pem_of(ec384_key);
    size_t n = strlen(p1) + strlen(p2) + strlen(p3) + strlen(p4) + 1;
    char *all = malloc(n);
    snprintf(all, n, "%s%s%s%s", p1, p2, p3, p4);
    struct cf_jwt_keys *keys = NULL;
    cr_assert_eq(cf_jwt_keys_from_pem(all, strlen(all), &keys, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_jwt_keys_count(keys), 4);
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        char *tok = make_token(cases[i].key, cases[i].alg, cases[i].header, c);
        cr_expect_eq(cf_jwt_verify(keys, tok, &policy, now, NULL, &err), CF_OK, "%s: %s",
                     cases[i].alg, err.msg);
        free(tok);
    }
    /* PEM keys have no kid, and providers put one in every token: a kid picks no PEM key out, each
     * fitting one is tried; a token from a key not in the set is a bad signature, not an unknown
     * key id */
    char *tok = make_token(ec_key, "ES256", "{\"alg\":\"ES256\",\"kid\":\"provider-key-7\"}", c);
    cr_expect_eq(cf_jwt_verify(keys, tok, &policy, now, NULL, &err), CF_OK, "%s", err.msg);
    free(tok);
    tok = make_token(rsa_other, "RS256", "{\"alg\":\"RS256\",\"kid\":\"provider-key-7\"}", c);
    assert_refused(cf_jwt_verify(keys, tok, &policy, now, NULL, &err), &err, tok, "bad signature");
    free(tok);
    cf_jwt_keys_free(keys);
    free(all);
    free(p1);
    free(p2);
    free(p3);
    free(p4);
    free(c);
}

Test(jwt_catalogue, hs256_with_public_key_as_secret)
{
    struct cf_err err = {0};
    struct cf_jwt_policy policy;
    struct cf_jwt_keys *pem_keys = NULL;
    policy_of(&policy);
    cr_assert_eq(cf_jwt_keys_from_pem(rsa_pem, strlen(rsa_pem), &pem_keys, &err), CF_OK);
    char *c = claims_text(ISS, AUD, SUB, now + 600, NULL);
    const char *headers[] = {"{\"alg\":\"HS256\",\"kid\":\"k1\"}", "{\"alg\":\"HS256\"}"};
    for (int i = 0; i < 2; i++) {
        char *h = b64url_str(headers[i]), *p = b64url_str(c);
        size_t n = strlen(h) + strlen(p) + 2;
        char *input = malloc(n);
        snprintf(input, n, "%s.%s", h, p);
        unsigned char mac[32];
        unsigned int mac_len = sizeof(mac);
        cr_assert_not_null(HMAC(EVP_sha256(), rsa_pem, (int)strlen(rsa_pem),
                                (const unsigned char *)input, strlen(input), mac, &mac_len));
        char *s = b64url(mac, mac_len);
        char *tok = join3(h, p, s);
        enum cf_rc rc = cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err);
        assert_refused(rc, &err, tok, "algorithm \"HS256\" not allowed");
        rc = cf_jwt_verify(pem_keys, tok, &policy, now, NULL, &err);
        assert_refused(rc, &err, tok, "algorithm \"HS256\" not allowed");
        free(tok);
        free(s);
        free(input);
        free(h);
        free(p);
    }
    cf_jwt_keys_free(pem_keys);
    free(c);
}

Test(jwt_catalogue, alg_none)
{
    struct cf_err err = {0};
    struct cf_jwt_policy policy;
    policy_of(&policy);
    char *c = claims_text(ISS, AUD, SUB, now + 600, NULL);
    char *p = b64url_str(c);
    const char *variants[] = {"{\"alg\":\"none\"}", "{\"alg\":\"None\",\"kid\":\"k1\"}",
                              "{\"alg\":\"\"}"};
    for (int i = 0; i < 3; i++) {
        char *h = b64url_str(variants[i]);
        char *tok = join3(h, p, "AAAA");
        enum cf_rc rc = cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err);
        assert_refused(rc, &err, tok, "not allowed");
        free(tok);
        /* the unsecured form, with an empty signature */
        tok = join3(h, p, "");
        rc = cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err);
        assert_refused(rc, &err, tok, "malformed token");
        free(tok);
        free(h);
    }
    /* no alg at all */
    char *h = b64url_str("{\"kid\":\"k1\"}");
    char *tok = join3(h, p, "AAAA");
    assert_refused(cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err), &err, tok,
                   "malformed token: header has no alg");
    free(tok);
    free(h);
    free(p);
    free(c);
}

Test(jwt_catalogue, wrong_key_and_key_choice)
{
    struct cf_err err = {0};
    struct cf_jwt_policy policy;
    policy_of(&policy);
    char *c = claims_text(ISS, AUD, SUB, now + 600, NULL);

    /* a valid signature from a key that is not in the set, claiming its kid */
    char *tok = make_token(rsa_other, "RS256", good_header, c);
    assert_refused(cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err), &err, tok,
                   "bad signature");
    free(tok);

    /* the same without kid: every fitting key is tried, none verifies */
    tok = make_token(rsa_other, "RS256", "{\"alg\":\"RS256\"}", c);
    assert_refused(cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err), &err, tok,
                   "bad signature");
    free(tok);

    /* without kid, signed by the right key: accepted */
    tok = make_token(rsa_key, "RS256", "{\"alg\":\"RS256\"}", c);
    cr_assert_eq(cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err), CF_OK, "%s", err.msg);
    free(tok);

    /* unknown kid */
    tok = make_token(rsa_key, "RS256", "{\"alg\":\"RS256\",\"kid\":\"nope\"}", c);
    assert_refused(cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err), &err, tok,
                   "unknown key id \"nope\"");
    free(tok);

    /* an attacker's key embedded in the header ("jwk") with the attacker's signature */
    char *n = bn_b64(rsa_other, OSSL_PKEY_PARAM_RSA_N, 0);
    char header[1024];
    snprintf(header, sizeof(header),
             "{\"alg\":\"RS256\",\"jwk\":{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"%s\"}}", n);
    tok = make_token(rsa_other, "RS256", header, c);
    assert_refused(cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err), &err, tok,
                   "bad signature");
    free(tok);
    free(n);

    /* jku / x5u pointing elsewhere with a kid the set does not hold: nothing is fetched */
    tok = make_token(rsa_other, "RS256",
                     "{\"alg\":\"RS256\",\"kid\":\"evil\",\"jku\":\"https://127.0.0.1:1/jwks\","
                     "\"x5u\":\"https://127.0.0.1:1/cert\"}",
                     c);
    assert_refused(cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err), &err, tok,
                   "unknown key id \"evil\"");
    free(tok);

    /* an algorithm that does not fit the key's type, chosen by kid */
    tok = make_token(ec_key, "ES256", "{\"alg\":\"ES256\",\"kid\":\"k1\"}", c);
    assert_refused(cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err), &err, tok,
                   "algorithm \"ES256\" not allowed for key \"k1\"");
    free(tok);

    /* a key declared "alg":"RS256" refuses PS256, even though the signature is good */
    char *jwks = jwks_of(rsa_key, "k1", "RS256");
    struct cf_jwt_keys *pinned = load_jwks(jwks);
    tok = make_token(rsa_key, "PS256", "{\"alg\":\"PS256\",\"kid\":\"k1\"}", c);
    cr_assert_eq(cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err), CF_OK, "%s", err.msg);
    assert_refused(cf_jwt_verify(pinned, tok, &policy, now, NULL, &err), &err, tok,
                   "algorithm \"PS256\" not allowed for key \"k1\"");
    free(tok);
    cf_jwt_keys_free(pinned);
    free(jwks);

    /* an unsupported "crit" extension */
    tok = make_token(rsa_key, "RS256", "{\"alg\":\"RS256\",\"kid\":\"k1\",\"crit\":[\"exp\"]}", c);
    assert_refused(cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err), &err, tok,
                   "malformed token: critical header");
    free(tok);
    free(c);
}

Test(jwt_catalogue, tampering)
{
    struct cf_err err = {0};
    struct cf_jwt_policy policy;
    policy_of(&policy);
    char *c = claims_text(ISS, AUD, SUB, now + 600, NULL);
    char *tok = make_token(rsa_key, "RS256", good_header, c);
    char *dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.');

    /* payload altered after signing (the signature kept) */
    char *evil = claims_text(ISS, AUD, "repo:acme/app:ref:refs/heads/main", now + 99999, NULL);
    char *ep = b64url_str(evil);
    *dot1 = '\0';
    char *altered = join3(tok, ep, dot2 + 1);
    *dot1 = '.';
    assert_refused(cf_jwt_verify(rsa_keys, altered, &policy, now, NULL, &err), &err, altered,
                   "bad signature");
    free(altered);
    free(ep);
    free(evil);

    /* signature truncated by one byte */
    unsigned char sig[512];
    size_t sig_len = 0;
    cr_assert(sodium_base642bin(sig, sizeof(sig), dot2 + 1, strlen(dot2 + 1), NULL, &sig_len, NULL,
                                sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0);
    char *short_sig = b64url(sig, sig_len - 1);
    *dot2 = '\0';
    size_t n = strlen(tok) + strlen(short_sig) + 2;
    char *truncated = malloc(n);
    snprintf(truncated, n, "%s.%s", tok, short_sig);
    *dot2 = '.';
    assert_refused(cf_jwt_verify(rsa_keys, truncated, &policy, now, NULL, &err), &err, truncated,
                   "bad signature");
    free(truncated);
    free(short_sig);

    /* bad base64url: a character outside the alphabet, padding, a non-canonical last char */
    const char *mutations[] = {"+", "=", "*"};
    for (int i = 0; i < 3; i++) {
        char *bad = strdup(tok);
        bad[3] = mutations[i][0];
        assert_refused(cf_jwt_verify(rsa_keys, bad, &policy, now, NULL, &err), &err, bad,
                       "malformed token");
        free(bad);
    }
    char *bad = malloc(strlen(tok) + 3);
    snprintf(bad, strlen(tok) + 3, "%s==", tok);
    assert_refused(cf_jwt_verify(rsa_keys, bad, &policy, now, NULL, &err), &err, bad,
                   "malformed token: signature is not base64url");
    free(bad);
    /* "e30" is "{}"; "e31" has non-zero unused bits */
    bad = join3("e31", "e30", "AAAA");
    assert_refused(cf_jwt_verify(rsa_keys, bad, &policy, now, NULL, &err), &err, bad,
                   "malformed token: header is not base64url");
    free(bad);

    /* shape */
    const char *shapes[] = {"", "abc", "a.b", "a.b.c.d", ".e30.AAAA", "e30.e30."};
    for (int i = 0; i < 6; i++)
        assert_refused(cf_jwt_verify(rsa_keys, shapes[i], &policy, now, NULL, &err), &err,
                       shapes[i], "malformed token");

    /* header that is not JSON, or not an object */
    char *h = b64url_str("{\"alg\":\"RS256\"");
    bad = join3(h, "e30", "AAAA");
    assert_refused(cf_jwt_verify(rsa_keys, bad, &policy, now, NULL, &err), &err, bad,
                   "malformed token: header is not a json object");
    free(bad);
    free(h);
    free(tok);
    free(c);
}

Test(jwt_catalogue, duplicate_names)
{
    struct cf_err err = {0};
    char *tok = NULL;
    /* payload repeating "sub": the second would otherwise win in some parsers */
    char *c = claims_text(ISS, AUD, "repo:evil/app:ref:refs/heads/main", now + 600,
                          ",\"sub\":\"" SUB "\"");
    expect_claims_refused(c, "malformed token: payload is not a json object (or repeats a name)");
    free(c);

    /* header repeating "alg" */
    struct cf_jwt_policy policy;
    policy_of(&policy);
    c = claims_text(ISS, AUD, SUB, now + 600, NULL);
    tok = make_token(rsa_key, "RS256", "{\"alg\":\"HS256\",\"kid\":\"k1\",\"alg\":\"RS256\"}", c);
    assert_refused(cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err), &err, tok,
                   "malformed token: header is not a json object (or repeats a name)");
    free(tok);
    free(c);
}

Test(jwt_catalogue, time_claims)
{
    struct cf_err err = {0};
    char *tok = NULL;

    char *c = claims_text(ISS, AUD, SUB, now - 61, NULL);
    expect_claims_refused(c, "token expired at 2027-01-15T07:58:59");
    free(c);

    /* within the default leeway: accepted; with no leeway: expired */
    c = claims_text(ISS, AUD, SUB, now - 30, NULL);
    cr_assert_eq(verify_claims(c, &tok, &err), CF_OK, "%s", err.msg);
    struct cf_jwt_policy strict;
    policy_of(&strict);
    strict.leeway_s = 0;
    assert_refused(cf_jwt_verify(rsa_keys, tok, &strict, now, NULL, &err), &err, tok,
                   "token expired at");
    free(tok);
    free(c);

    char extra[128];
    snprintf(extra, sizeof(extra), ",\"nbf\":%lld", (long long)(now + 3600));
    c = claims_text(ISS, AUD, SUB, now + 7200, extra);
    expect_claims_refused(c, "token not yet valid (nbf 2027-01-15T09:00:00");
    free(c);

    snprintf(extra, sizeof(extra), ",\"nbf\":%lld", (long long)(now + 50));
    c = claims_text(ISS, AUD, SUB, now + 7200, extra);
    cr_assert_eq(verify_claims(c, &tok, &err), CF_OK, "nbf within leeway: %s", err.msg);
    free(tok);
    free(c);

    /* iat far in the future (the helper's iat is overridden by a second claims text) */
    char *future = malloc(512);
    snprintf(
        future, 512,
        "{\"iss\":\"" ISS "\",\"aud\":" AUD ",\"sub\":\"" SUB "\",\"exp\":%lld,\"iat\":%lld,"
        "\"repository_owner\":\"acme\",\"ref\":\"refs/heads/main\",\"ctx\":{\"team\":\"infra\"}}",
        (long long)(now + 7200), (long long)(now + 3600));
    expect_claims_refused(future, "token issued in the future");
    free(future);

    /* exp missing, or not a number */
    const char *no_exp = "{\"iss\":\"" ISS "\",\"aud\":" AUD ",\"sub\":\"" SUB "\"}";
    expect_claims_refused(no_exp, "token has no exp claim");
    const char *str_exp = "{\"iss\":\"" ISS "\",\"exp\":\"2099\"}";
    expect_claims_refused(str_exp, "malformed token: exp");
}

Test(jwt_catalogue, bindings)
{
    struct cf_err err = {0};
    char *tok = NULL, *c;

    c = claims_text("https://evil.example", AUD, SUB, now + 600, NULL);
    expect_claims_refused(c, "issuer \"https://evil.example\" not allowed");
    free(c);

    c = claims_text(ISS, "\"api://Other\"", SUB, now + 600, NULL);
    expect_claims_refused(c, "audience mismatch");
    free(c);

    c = claims_text(ISS, "[\"api://Other\",\"x\"]", SUB, now + 600, NULL);
    expect_claims_refused(c, "audience mismatch");
    free(c);

    /* subject glob: '*' matches the repository name but never crosses a '/' */
    c = claims_text(ISS, AUD, "repo:evil/app:ref:refs/heads/main", now + 600, NULL);
    expect_claims_refused(c, "subject mismatch");
    free(c);
    c = claims_text(ISS, AUD, "repo:acme/a/b:ref:refs/heads/main", now + 600, NULL);
    expect_claims_refused(c, "subject mismatch");
    free(c);

    /* bound claims: exact, glob list, nested path */
    const char *wrong[][2] = {
        {"\"repository_owner\":\"acme\"", "\"repository_owner\":\"acme2\""},
        {"\"ref\":\"refs/heads/main\"", "\"ref\":\"refs/heads/dev\""},
        {"\"team\":\"infra\"", "\"team\":\"web\""},
    };
    const char *names[] = {"repository_owner", "ref", "ctx.team"};
    for (int i = 0; i < 3; i++) {
        char *base = claims_text(ISS, AUD, SUB, now + 600, NULL);
        char *at = strstr(base, wrong[i][0]);
        cr_assert_not_null(at);
        size_t n = strlen(base) + 16;
        char *mod = malloc(n);
        snprintf(mod, n, "%.*s%s%s", (int)(at - base), base, wrong[i][1], at + strlen(wrong[i][0]));
        char cause[64];
        snprintf(cause, sizeof(cause), "claim \"%s\" mismatch", names[i]);
        expect_claims_refused(mod, cause);
        free(mod);
        free(base);
    }
    c = claims_text(ISS, AUD, SUB, now + 600, NULL);
    char *rel = strstr(c, "refs/heads/main\",\"ctx");
    cr_assert_not_null(rel);
    char *mod = malloc(strlen(c) + 16);
    snprintf(mod, strlen(c) + 16, "%.*srefs/heads/release-1.2%s", (int)(rel - c), c,
             rel + strlen("refs/heads/main"));
    cr_assert_eq(verify_claims(mod, &tok, &err), CF_OK, "glob claim: %s", err.msg);
    free(tok);
    free(mod);
    free(c);

    /* a missing bound claim */
    const char *bare = "{\"iss\":\"" ISS "\",\"aud\":" AUD ",\"sub\":\"" SUB
                       "\",\"exp\":1800000600,\"ref\":\"refs/heads/main\"}";
    expect_claims_refused(bare, "claim \"repository_owner\" mismatch");

    /* array claims and non-string scalars */
    static const char *const groups_ok[] = {"admins"};
    static const char *const tier_ok[] = {"2"};
    const struct cf_jwt_claim_rule more[] = {{"groups", groups_ok, 1}, {"ctx.tier", tier_ok, 1}};
    struct cf_jwt_policy policy;
    cf_jwt_policy_init(&policy);
    policy.claims = more;
    policy.n_claims = 2;
    c = claims_text(ISS, AUD, SUB, now + 600, ",\"groups\":[\"dev\",\"admins\"]");
    tok = make_token(rsa_key, "RS256", good_header, c);
    cr_assert_eq(cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err), CF_OK, "%s", err.msg);
    free(tok);
    free(c);
    c = claims_text(ISS, AUD, SUB, now + 600, ",\"groups\":[\"dev\"]");
    tok = make_token(rsa_key, "RS256", good_header, c);
    assert_refused(cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err), &err, tok,
                   "claim \"groups\" mismatch");
    free(tok);
    free(c);
}

Test(jwt_catalogue, size_limit)
{
    struct cf_err err = {0};
    struct cf_jwt_policy policy;
    cf_jwt_policy_init(&policy);

    /* pad a claim until the token is exactly CF_JWT_TOKEN_MAX bytes: accepted. The lengths are
     * computed first (an RSA-2048 signature is 342 base64url characters); a header with one
     * extra space covers the lengths base64url cannot reach from the payload alone. */
    char *tok = NULL;
    const char *headers[] = {good_header, "{\"alg\":\"RS256\", \"kid\":\"k1\",\"typ\":\"JWT\"}"};
    const char *header = NULL;
    size_t pad = 0;
    for (int h = 0; h < 2 && !header; h++) {
        size_t hlen = sodium_base64_encoded_len(strlen(headers[h]),
                                                sodium_base64_VARIANT_URLSAFE_NO_PADDING) -
                      1;
        for (size_t p = 11000; p < 12400 && !header; p++) {
            size_t body = strlen("{\"exp\":1800000600,\"pad\":\"\"}") + p;
            size_t blen =
                sodium_base64_encoded_len(body, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1;
            if (hlen + 1 + blen + 1 + 342 == CF_JWT_TOKEN_MAX) {
                header = headers[h];
                pad = p;
            }
        }
    }
    cr_assert_not_null(header);
    char *c = malloc(pad + 64);
    int off = snprintf(c, pad + 64, "{\"exp\":%lld,\"pad\":\"", (long long)(now + 600));
    memset(c + off, 'x', pad);
    snprintf(c + off + pad, 8, "\"}");
    tok = make_token(rsa_key, "RS256", header, c);
    free(c);
    cr_assert_eq(strlen(tok), CF_JWT_TOKEN_MAX, "could not build a token of exactly the limit");
    cr_assert_eq(cf_jwt_verify(rsa_keys, tok, &policy, now, NULL, &err), CF_OK, "%s", err.msg);

    /* one byte more (an extra signature character): refused for its size, before anything else */
    size_t len = strlen(tok);
    char *over = malloc(len + 2);
    memcpy(over, tok, len);
    over[len] = 'A';
    over[len + 1] = '\0';
    assert_refused(cf_jwt_verify(rsa_keys, over, &policy, now, NULL, &err), &err, over,
                   "malformed token: longer than 16384 bytes");
    free(over);
    free(tok);
}

Test(jwt_keys, loading_refusals)
{
    struct cf_err err = {0};
    struct cf_jwt_keys *keys = NULL;
    const char *bad_jwks[] = {
        "",
        "[]",
        "{\"keys\":{}}",
        "{\"keys\":[]}",
        "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}",
        "{\"keys\":[{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
        "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}", /* tiny modulus */
        "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}",
        "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}]}",
        "{\"keys\":[],\"keys\":[]}",
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(bad_jwks); i++) {
        enum cf_rc rc = cf_jwt_keys_from_jwks(bad_jwks[i], strlen(bad_jwks[i]), &keys, &err);
        cr_expect_eq(rc, CF_EINVAL, "jwks %zu accepted", i);
        cr_expect_null(keys);
        cf_jwt_keys_free(keys);
        keys = NULL;
    }
    /* an EC point not on the curve */
    const char *off_curve = "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
                            "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                            "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a1\"}]}";
    cr_expect_eq(cf_jwt_keys_from_jwks(off_curve, strlen(off_curve), &keys, &err), CF_EINVAL);
    cf_jwt_keys_free(keys);
    keys = NULL;

    /* PEM: garbage, and an RSA key under 2048 bits */
    const char *garbage = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    cr_expect_eq(cf_jwt_keys_from_pem(garbage, strlen(garbage), &keys, &err), CF_EINVAL);
    cr_expect_eq(cf_jwt_keys_from_pem("", 0, &keys, &err), CF_EINVAL);
    EVP_PKEY *small = keygen("RSA", "1024");
    char *pem = pem_of(small);
    cr_expect_eq(cf_jwt_keys_from_pem(pem, strlen(pem), &keys, &err), CF_EINVAL);
    cr_expect_not_null(strstr(err.msg, "1024 bits"), "%s", err.msg);
    free(pem);
    EVP_PKEY_free(small);

    /* a JWKS mixing usable and unusable keys keeps the usable ones */
    const char *mixed = "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"},"
                        "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"a\","
                        "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                        "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";
    cr_assert_eq(cf_jwt_keys_from_jwks(mixed, strlen(mixed), &keys, &err), CF_OK, "%s", err.msg);
    cr_expect_eq(cf_jwt_keys_count(keys), 1);
    cf_jwt_keys_free(keys);
    cf_jwt_keys_free(NULL);
}
