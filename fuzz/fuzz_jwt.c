/* JWT parsing and claim checks (JWT auth), past the signature: the input is a header and a payload
 * (separated by 0x1F) that this target signs with its own Ed25519 key, so that the fuzzer reaches
 * the JSON, algorithm, kid and claim checks rather than stopping at "bad signature". The same bytes
 * are also tried as a whole token, as a JWKS document and as PEM keys. Properties: a token is
 * accepted only when its payload carries every bound claim (re-checked here with jansson), and
 * never with a header whose "alg" is not EdDSA. FUZZ_JWT_SHOW=1 prints each signed token's verdict
 * (for checking that the corpus reaches acceptance). */
#include <jansson.h>
#include <sodium.h>

#include "auth/jwt.h"
#include "fuzz.h"

#define NOW 1800000000

static struct cf_jwt_keys *keys;
static unsigned char secret_key[crypto_sign_SECRETKEYBYTES];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], seed[crypto_sign_SEEDBYTES];
    char x[64], jwks[256];
    struct cf_err err;
    if (sodium_init() < 0)
        abort();
    memset(seed, 7, sizeof(seed)); /* a fixed key: runs are reproducible */
    crypto_sign_seed_keypair(pk, secret_key, seed);
    sodium_bin2base64(x, sizeof(x), pk, sizeof(pk), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(jwks, sizeof(jwks),
             "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"k1\",\"x\":\"%s\"}]}", x);
    if (cf_jwt_keys_from_jwks(jwks, strlen(jwks), &keys, &err) != CF_OK) {
        fprintf(stderr, "fuzz_jwt: %s\n", err.msg);
        abort();
    }
    return 0;
}

static char *b64url(const void *bytes, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = malloc(cap);
    if (!out)
        abort();
    sodium_bin2base64(out, cap, bytes, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

static char *sign(const char *header, size_t header_len, const char *payload, size_t payload_len)
{
    char *h = b64url(header, header_len), *p = b64url(payload, payload_len);
    size_t input_len = strlen(h) + 1 + strlen(p);
    char *token = malloc(input_len + 128);
    if (!token)
        abort();
    snprintf(token, input_len + 1, "%s.%s", h, p);
    unsigned char sig[crypto_sign_BYTES];
    crypto_sign_detached(sig, NULL, (const unsigned char *)token, input_len, secret_key);
    char *s = b64url(sig, sizeof(sig));
    snprintf(token + input_len, 128, ".%s", s);
    free(h);
    free(p);
    free(s);
    return token;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!keys)
        LLVMFuzzerInitialize(NULL, NULL);
    struct fuzz_parts p;
    struct cf_err err;
    fuzz_split(data, size, 0x1f, 2, &p);

    static const char *const audiences[] = {"api://AzureADTokenExchange", "coffer"};
    static const char *const repos[] = {"org/*", "other/exact"};
    static const struct cf_jwt_claim_rule rules[] = {{"repository", repos, 2}};
    struct cf_jwt_policy policy;
    cf_jwt_policy_init(&policy);
    policy.issuer = "https://token.actions.githubusercontent.com";
    policy.audiences = audiences;
    policy.n_audiences = 2;
    policy.subject = "repo:org/*:ref:refs/heads/*";
    policy.claims = rules;
    policy.n_claims = 1;

    char *token = sign(p.part[0], p.len[0], p.part[1], p.len[1]);
    json_t *claims = NULL;
    if (cf_jwt_verify(keys, token, &policy, NOW, &claims, &err) == CF_OK) {
        json_t *header = json_loadb(p.part[0], p.len[0], 0, NULL);
        const char *alg = json_string_value(json_object_get(header, "alg"));
        FUZZ_CHECK(alg && strcmp(alg, "EdDSA") == 0, "accepted with alg %s", alg ? alg : "(none)");
        json_decref(header);
        const char *iss = json_string_value(json_object_get(claims, "iss"));
        FUZZ_CHECK(iss && strcmp(iss, policy.issuer) == 0, "accepted with another issuer");
        FUZZ_CHECK(json_is_integer(json_object_get(claims, "exp")) ||
                       json_is_real(json_object_get(claims, "exp")),
                   "accepted without exp");
        FUZZ_CHECK(json_object_get(claims, "repository") != NULL, "accepted without the claim");
        json_decref(claims);
        if (getenv("FUZZ_JWT_SHOW"))
            fprintf(stderr, "accepted\n");
    } else if (getenv("FUZZ_JWT_SHOW")) {
        fprintf(stderr, "refused: %s\n", err.msg);
    }
    free(token);

    /* the raw bytes as a token, a JWKS and PEM */
    cf_jwt_verify(keys, p.buf, &policy, NOW, NULL, &err);
    struct cf_jwt_keys *other = NULL;
    if (cf_jwt_keys_from_jwks((const char *)p.buf, p.len[0], &other, &err) == CF_OK)
        cf_jwt_keys_free(other);
    other = NULL;
    if (cf_jwt_keys_from_pem((const char *)p.buf, p.len[0], &other, &err) == CF_OK)
        cf_jwt_keys_free(other);
    fuzz_parts_free(&p);
    return 0;
}
