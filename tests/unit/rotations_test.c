/* Unit tests of core/rotations and store/rotations over a real SQLite store and keyring
 * (tests/unit/core_fixture.h), against a rotator and a consumer defined here (given to the engine
 * through core->rotator_find / consumer_find, so that no stand-in ships in the binary). The
 * stand-in provider keeps real state: issued credentials, which are live, and which were revoked
 * (a revoked one refuses verification, a revoke of an unknown or revoked one is counted). The
 * tests show a rotation from nothing to done, the new value in the mapped secrets with its
 * expiresAt and never in the rotation's row, the previous credential revoked only after the
 * consumer holds the new one, a failure that keeps the old credential and names step and cause,
 * and the recoveries after an interruption at the issue, store and verify steps: no orphaned
 * credential, nothing revoked twice. */
#include "core_fixture.h"

#include <stdlib.h>

#include "core/projects.h"
#include "core/rotations.h"
#include "core/secrets.h"
#include "provider/rotator.h"
#include "store/rotations.h"
#include "store/syncs.h"
#include "util/str.h"
#include "util/time.h"
#include "util/banned.h"

/* ---- the stand-in provider ---- */

#define FAKE_MAX 32

struct fake_cred {
    char id[32];
    char secret[48];
    int64_t generation;
    bool revoked;
};

static struct {
    struct fake_cred creds[FAKE_MAX];
    size_t n;
    int revokes_of_dead;      /* revoke of an unknown or already revoked id */
    int lists;                /* list_issued calls */
    bool fail_verify;         /* verify answers CF_EUNAUTH */
    bool lose_after_issue;    /* issue succeeds at the provider, then the caller sees CF_EIO */
    char consumer_holds[48];  /* what the consumer was given last */
    char verified_secret[48]; /* what verify was given last */
} fake;

static struct fake_cred *fake_find(const char *id)
{
    for (size_t i = 0; i < fake.n; i++)
        if (strcmp(fake.creds[i].id, id) == 0)
            return &fake.creds[i];
    return NULL;
}

static const struct fake_cred *fake_live_secret(const char *secret)
{
    for (size_t i = 0; i < fake.n; i++)
        if (!fake.creds[i].revoked && strcmp(fake.creds[i].secret, secret) == 0)
            return &fake.creds[i];
    return NULL;
}

static size_t fake_live(void)
{
    size_t n = 0;
    for (size_t i = 0; i < fake.n; i++)
        n += !fake.creds[i].revoked;
    return n;
}

static enum cf_rc fake_check(const json_t *params, struct cf_err *e)
{
    if (!json_is_string(json_object_get(params, "app")))
        return cf_err_field(e, CF_EVALIDATION, "parameters", "parameters.app is required");
    return CF_OK;
}

static struct fake_cred *fake_issue_raw(int64_t generation)
{
    cr_assert_lt(fake.n, FAKE_MAX);
    struct fake_cred *c = &fake.creds[fake.n++];
    snprintf(c->id, sizeof(c->id), "key-%zu", fake.n);
    snprintf(c->secret, sizeof(c->secret), "s3cret-value-%zu-%u", fake.n, randombytes_random());
    c->generation = generation;
    return c;
}

static enum cf_rc fake_issue(const struct cf_provider_conn *conn, const json_t *params,
                             const struct cf_rotation_ref *ref, struct cf_rotated_cred *out,
                             struct cf_err *e)
{
    (void)conn;
    (void)params;
    struct fake_cred *c = fake_issue_raw(ref->generation);
    if (fake.lose_after_issue) {
        fake.lose_after_issue = false;
        return cf_err_set(e, CF_EIO, "connection reset after the provider answered");
    }
    cf_strlcpy(out->id, c->id, sizeof(out->id));
    out->secret = strdup(c->secret);
    out->secret_len = strlen(c->secret);
    out->expires_at = cf_now_ms() + 90LL * 24 * 3600 * 1000;
    out->outputs = json_pack("{s:s, s:s}", "clientId", "app-client-id", "clientSecret", c->secret);
    return out->secret && out->outputs ? CF_OK : CF_ENOMEM;
}

static enum cf_rc fake_verify(const struct cf_provider_conn *conn, const json_t *params,
                              const struct cf_rotated_cred *cred, struct cf_err *e)
{
    (void)conn;
    (void)params;
    cf_strlcpy(fake.verified_secret, cred->secret, sizeof(fake.verified_secret));
    if (fake.fail_verify)
        return cf_err_set(e, CF_EUNAUTH, "AADSTS7000215: invalid client secret provided");
    if (!fake_live_secret(cred->secret))
        return cf_err_set(e, CF_EUNAUTH, "the credential '%s' is not valid", cred->id);
    return CF_OK;
}

static enum cf_rc fake_revoke(const struct cf_provider_conn *conn, const json_t *params,
                              const struct cf_rotation_ref *ref, const char *id, struct cf_err *e)
{
    (void)conn;
    (void)params;
    (void)ref;
    (void)e;
    struct fake_cred *c = fake_find(id);
    if (!c || c->revoked)
        fake.revokes_of_dead++;
    else
        c->revoked = true;
    return CF_OK;
}

static enum cf_rc fake_list(const struct cf_provider_conn *conn, const json_t *params,
                            const struct cf_rotation_ref *ref, char ***ids, size_t *n,
                            struct cf_err *e)
{
    (void)conn;
    (void)params;
    (void)ref;
    (void)e;
    fake.lists++;
    *ids = calloc(FAKE_MAX, sizeof(**ids));
    *n = 0;
    for (size_t i = 0; i < fake.n; i++)
        if (!fake.creds[i].revoked) /* every generation's, as rotator.h asks */
            (*ids)[(*n)++] = strdup(fake.creds[i].id);
    return CF_OK;
}

static void fake_plan(const struct cf_provider_conn *conn, const json_t *params,
                      const struct cf_rotation_ref *ref, cf_rotation_plan_fn fn, void *ctx)
{
    (void)conn;
    (void)params;
    (void)ref;
    fn(ctx, "issue", "POST", "https://fake.invalid/addPassword", "issue");
    fn(ctx, "revoke", "POST", "https://fake.invalid/removePassword", "revoke");
}

static const char *const fake_outputs[] = {"clientId", "clientSecret", NULL};

static const struct cf_rotator_ops fake_rotator = {
    .type = "fake-secret",
    .connection_app = NULL,
    .outputs = fake_outputs,
    .secret_output = "clientSecret",
    .config_check = fake_check,
    .issue = fake_issue,
    .verify = fake_verify,
    .revoke = fake_revoke,
    .list_issued = fake_list,
    .plan = fake_plan,
};

static enum cf_rc consumer_check(const json_t *config, struct cf_err *e)
{
    if (!json_is_string(json_object_get(config, "endpoint")))
        return cf_err_field(e, CF_EVALIDATION, "consumers", "config.endpoint is required");
    return CF_OK;
}

static enum cf_rc consumer_push(const struct cf_provider_conn *conn, const json_t *config,
                                const struct cf_rotation_ref *ref,
                                const struct cf_rotated_cred *cred, struct cf_err *e)
{
    (void)conn;
    (void)config;
    (void)ref;
    (void)e;
    cf_strlcpy(fake.consumer_holds, cred->secret, sizeof(fake.consumer_holds));
    return CF_OK;
}

static enum cf_rc consumer_verify(const struct cf_provider_conn *conn, const json_t *config,
                                  const struct cf_rotation_ref *ref,
                                  const struct cf_rotated_cred *cred, struct cf_err *e)
{
    (void)conn;
    (void)config;
    (void)ref;
    (void)cred;
    if (!fake_live_secret(fake.consumer_holds))
        return cf_err_set(e, CF_EUNAUTH, "the service connection's secret is refused");
    return CF_OK;
}

static const struct cf_consumer_ops fake_consumer = {
    .type = "fake-endpoint",
    .connection_app = NULL,
    .config_check = consumer_check,
    .push = consumer_push,
    .verify = consumer_verify,
};

static const struct cf_rotator_ops *find_rotator(const char *type)
{
    return strcmp(type, fake_rotator.type) == 0 ? &fake_rotator : NULL;
}

static const struct cf_consumer_ops *find_consumer(const char *type)
{
    return strcmp(type, fake_consumer.type) == 0 ? &fake_consumer : NULL;
}

/* ---- fixture ---- */

static struct cf_project_view project;
static struct cf_scope scope;
static const char *owner = "11111111-1111-4111-8111-111111111111";

static void setup(void)
{
    fx_setup();
    memset(&fake, 0, sizeof(fake));
    fx_core.rotator_find = find_rotator;
    fx_core.consumer_find = find_consumer;
    cr_assert_eq(cf_projects_create(&fx_core, &fx_admin, "app", NULL, NULL, &project, &err), CF_OK,
                 "%s", err.msg);
    cr_assert_eq(
        cf_scope_resolve(&fx_core, &fx_admin, CF_ACTION_READ, "app", "dev", "/", &scope, &err),
        CF_OK, "%s", err.msg);
}

static void teardown(void)
{
    cf_scope_release(&scope);
    cf_project_view_release(&project);
    fx_teardown();
}

TestSuite(rotations, .init = setup, .fini = teardown);

struct spec_json {
    json_t *params, *mapping, *consumers;
};

static struct cf_rotation_spec spec_of(struct spec_json *j, int64_t grace_ms)
{
    j->params = json_pack("{s:s}", "app", "00000000-0000-4000-8000-000000000001");
    j->mapping = json_pack("{s:s, s:s}", "clientId", "AZURE_CLIENT_ID", "clientSecret",
                           "AZURE_CLIENT_SECRET");
    j->consumers =
        json_pack("[{s:s, s:{s:s}}]", "type", "fake-endpoint", "config", "endpoint", "pipelines");
    return (struct cf_rotation_spec){.project = "app",
                                     .name = "entra-app",
                                     .environment = "dev",
                                     .secret_path = "/",
                                     .parameters = j->params,
                                     .secrets_mapping = j->mapping,
                                     .consumers = j->consumers,
                                     .interval_days = 30,
                                     .days_before_expiry = -1,
                                     .rotate_at_minute = -1,
                                     .grace_period_ms = grace_ms,
                                     .lifetime_ms = -1,
                                     .auto_rotate = -1};
}

static void spec_release(struct spec_json *j)
{
    json_decref(j->params);
    json_decref(j->mapping);
    json_decref(j->consumers);
}

static void create(int64_t grace_ms, struct cf_rotation_view *out)
{
    struct spec_json j;
    struct cf_rotation_spec spec = spec_of(&j, grace_ms);
    cr_assert_eq(cf_rotations_create(&fx_core, &fx_admin, "fake-secret", &spec, out, &err), CF_OK,
                 "%s", err.msg);
    spec_release(&j);
}

static void load(const char *id, struct cf_rotation *out)
{
    cr_assert_eq(cf_store_rotation_get(fx_store, id, out, &err), CF_OK, "%s", err.msg);
}

static bool execute(const char *id)
{
    bool ran = false;
    cr_assert_eq(cf_rotations_execute(&fx_core, id, owner, &ran, &err), CF_OK, "%s", err.msg);
    return ran;
}

/* Makes the rotation due now (as a manual run does), then runs it. */
static void run_now(const char *id)
{
    cr_assert_eq(cf_store_rotation_request(fx_store, id, &err), CF_OK, "%s", err.msg);
    cr_assert(execute(id));
}

static char *secret_value(const char *key, int64_t *expires_at, int64_t *version)
{
    struct cf_read_opts opts = {0};
    struct cf_plain p = {0};
    cr_assert_eq(cf_secrets_get(&fx_core, &fx_admin, &scope, key, 0, &opts, &p, &err), CF_OK,
                 "%s: %s", key, err.msg);
    char *v = strndup((const char *)p.value.data, p.value.len);
    if (expires_at)
        *expires_at = p.meta.expires_at;
    if (version)
        *version = p.meta.version;
    cf_plain_release(&p);
    return v;
}

/* Whether any column of the rotation's row or its history holds needle. */
static bool in_rotation_rows(const char *id, const char *needle)
{
    struct cf_rotation *r = calloc(1, sizeof(*r));
    struct cf_rotation_event_list h = {0};
    load(id, r);
    bool found = memmem(r, sizeof(*r), needle, strlen(needle)) != NULL;
    cr_assert_eq(cf_store_rotation_history(fx_store, id, 1000, &h, &err), CF_OK, "%s", err.msg);
    for (size_t i = 0; i < h.n; i++)
        found = found || memmem(&h.items[i], sizeof(h.items[i]), needle, strlen(needle));
    cf_rotation_event_list_release(&h);
    free(r);
    return found;
}

/* ---- tests ---- */

Test(rotations, revoke_retried_after_it_happened_is_not_sent_again)
{
    struct cf_rotation_view v;
    struct cf_rotation r;
    create(0, &v);
    execute(v.rot.id);
    run_now(v.rot.id);
    cr_assert(fake.creds[0].revoked);
    /* As a process killed after the provider revoked key-1 and before it recorded that leaves it:
     * at revoke, an attempt started, key-1 gone at the provider. */
    struct fake_cred *c = fake_issue_raw(3);
    c->revoked = true; /* what a third generation would revoke */
    bool claimed = false;
    cr_assert_eq(cf_store_rotation_request(fx_store, v.rot.id, &err), CF_OK);
    cr_assert_eq(cf_store_rotation_claim(fx_store, v.rot.id, "dead-owner", cf_now_ms(), 1, &claimed,
                                         &r, &err),
                 CF_OK);
    cr_assert(claimed);
    cf_strlcpy(r.pending_step, "revoke", sizeof(r.pending_step));
    r.pending_generation = 3;
    cf_strlcpy(r.previous_cred_id, c->id, sizeof(r.previous_cred_id));
    r.step_attempts = 1;
    r.claim_until = cf_now_ms() - 1;
    cr_assert_eq(cf_store_rotation_save(fx_store, &r, "dead-owner", false, NULL, &err), CF_OK);
    cr_assert(execute(v.rot.id));
    load(v.rot.id, &r);
    cr_assert_str_eq(r.status, "succeeded", "%s: %s", r.last_error_step, r.last_error);
    cr_assert_eq(fake.revokes_of_dead, 0, "a revoked credential was revoked again");
    cr_assert_gt(fake.lists, 0);
}

Test(rotations, first_rotation_issues_stores_pushes_and_finishes)
{
    struct cf_rotation_view v;
    struct cf_rotation r;
    int64_t expires_at = 0;
    create(0, &v);
    cr_assert_eq(v.rot.grace_period_ms, 0);
    cr_assert_gt(v.rot.next_rotation_at, 0, "a new auto-rotation is due at once");
    cr_assert(execute(v.rot.id));
    load(v.rot.id, &r);
    cr_assert_str_eq(r.status, "succeeded", "%s at %s: %s", r.status, r.last_error_step,
                     r.last_error);
    cr_assert_str_eq(r.pending_step, "");
    cr_assert_eq(r.generation, 1);
    cr_assert_str_eq(r.current_cred_id, "key-1");
    cr_assert_str_eq(r.claim_owner, "", "the claim ends with the run");
    char *secret = secret_value("AZURE_CLIENT_SECRET", &expires_at, NULL);
    char *client = secret_value("AZURE_CLIENT_ID", NULL, NULL);
    cr_assert_str_eq(secret, fake.creds[0].secret);
    cr_assert_str_eq(client, "app-client-id");
    cr_assert_eq(expires_at, r.current_expires_at);
    cr_assert_gt(expires_at, cf_now_ms());
    cr_assert_str_eq(fake.consumer_holds, secret, "the consumer was given the new secret");
    cr_assert_not(in_rotation_rows(r.id, secret), "a secret value in the rotation's rows");
    cr_assert_not(fx_on_disk(secret), "the secret value on disk in plaintext");
    int64_t day = 24LL * 3600 * 1000;
    cr_assert_eq(r.next_rotation_at % day, 0, "rotateAtUtc 00:00");
    cr_assert_gt(r.next_rotation_at, r.last_rotated_at + 29 * day);
    cr_assert_not(execute(r.id), "not due again before its schedule");
    free(secret);
    free(client);
}

Test(rotations, second_rotation_revokes_the_previous_after_the_consumer_moved)
{
    struct cf_rotation_view v;
    struct cf_rotation r;
    create(0, &v);
    execute(v.rot.id);
    run_now(v.rot.id);
    load(v.rot.id, &r);
    cr_assert_str_eq(r.status, "succeeded", "%s: %s", r.last_error_step, r.last_error);
    cr_assert_eq(r.generation, 2);
    cr_assert_str_eq(r.current_cred_id, "key-2");
    cr_assert_str_eq(r.previous_cred_id, "");
    cr_assert(fake.creds[0].revoked, "the previous credential is revoked");
    cr_assert_not(fake.creds[1].revoked);
    cr_assert_eq(fake_live(), 1);
    cr_assert_eq(fake.revokes_of_dead, 0);
    cr_assert_str_eq(fake.consumer_holds, fake.creds[1].secret);

    struct cf_rotation_event_list h = {0};
    cr_assert_eq(cf_rotations_history(&fx_core, &fx_admin, r.id, 100, &h, &err), CF_OK);
    cr_assert_gt(h.n, 8);
    cr_assert_str_eq(h.items[0].step, "revoke");
    cr_assert_str_eq(h.items[0].credential_id, "key-1");
    cf_rotation_event_list_release(&h);
}

Test(rotations, grace_period_waits_with_the_old_credential_alive)
{
    struct cf_rotation_view v;
    struct cf_rotation r;
    create(60 * 60 * 1000, &v);
    execute(v.rot.id); /* generation 1: nothing to revoke, no grace */
    load(v.rot.id, &r);
    cr_assert_str_eq(r.status, "succeeded");
    run_now(v.rot.id);
    load(v.rot.id, &r);
    cr_assert_str_eq(r.pending_step, "grace");
    cr_assert_str_eq(r.previous_cred_id, "key-1");
    cr_assert_str_eq(r.current_cred_id, "key-2");
    cr_assert_not(fake.creds[0].revoked, "revoked before the grace period ended");
    cr_assert_geq(r.next_attempt_at, cf_now_ms() + 59 * 60 * 1000);
    cr_assert_str_eq(r.claim_owner, "");
    cr_assert_not(execute(v.rot.id), "due before the grace period ended");
}

Test(rotations, failure_keeps_the_old_credential_and_names_step_and_cause)
{
    struct cf_rotation_view v;
    struct cf_rotation r;
    create(0, &v);
    execute(v.rot.id);
    fake.fail_verify = true;
    run_now(v.rot.id);
    load(v.rot.id, &r);
    cr_assert_str_eq(r.status, "failed");
    cr_assert_str_eq(r.last_error_step, "verify");
    cr_assert_str_eq(r.last_error_cause, "unauthorized");
    cr_assert(strstr(r.last_error, "AADSTS7000215"), "%s", r.last_error);
    cr_assert_str_eq(r.pending_step, "verify");
    cr_assert_gt(r.next_attempt_at, cf_now_ms(), "retried after a backoff");
    cr_assert_str_eq(r.current_cred_id, "key-1");
    cr_assert_not(fake.creds[0].revoked, "the old credential was revoked after a failure");
    cr_assert_str_eq(fake.consumer_holds, fake.creds[0].secret, "the consumer was moved");
    cr_assert_not(execute(v.rot.id), "retried before its backoff");

    /* The cause goes away: the retry (here asked for) resumes at verify, with the value read
     * back from the secret, and finishes. */
    fake.fail_verify = false;
    fake.verified_secret[0] = '\0';
    run_now(v.rot.id);
    load(v.rot.id, &r);
    cr_assert_str_eq(r.status, "succeeded", "%s: %s", r.last_error_step, r.last_error);
    cr_assert_str_eq(fake.verified_secret, fake.creds[1].secret);
    cr_assert(fake.creds[0].revoked);
    cr_assert_eq(fake_live(), 1);
    cr_assert_eq(fake.revokes_of_dead, 0);
}

Test(rotations, issue_interrupted_before_its_id_was_recorded_leaves_no_orphan)
{
    struct cf_rotation_view v;
    struct cf_rotation r;
    create(0, &v);
    fake.lose_after_issue = true; /* the provider made key-1; the engine never learnt its id */
    execute(v.rot.id);
    load(v.rot.id, &r);
    cr_assert_str_eq(r.status, "failed");
    cr_assert_str_eq(r.last_error_step, "issue");
    cr_assert_eq(r.step_attempts, 1);
    run_now(v.rot.id);
    load(v.rot.id, &r);
    cr_assert_str_eq(r.status, "succeeded", "%s: %s", r.last_error_step, r.last_error);
    cr_assert(fake.creds[0].revoked, "the orphan of the interrupted attempt was not revoked");
    cr_assert_str_eq(r.current_cred_id, "key-2");
    cr_assert_eq(fake_live(), 1);
    cr_assert_eq(fake.revokes_of_dead, 0);
}

/* Puts the claimed rotation at step with pending_cred_id, as a process killed there leaves it. */
static void leave_at(const char *id, const char *step, const char *cred_id)
{
    struct cf_rotation r;
    bool claimed = false;
    cr_assert_eq(cf_store_rotation_request(fx_store, id, &err), CF_OK);
    cr_assert_eq(
        cf_store_rotation_claim(fx_store, id, "dead-owner", cf_now_ms(), 1, &claimed, &r, &err),
        CF_OK, "%s", err.msg);
    cr_assert(claimed);
    cf_strlcpy(r.pending_step, step, sizeof(r.pending_step));
    r.pending_generation = r.generation + 1;
    cf_strlcpy(r.pending_cred_id, cred_id, sizeof(r.pending_cred_id));
    r.step_attempts = 1;
    cf_strlcpy(r.status, "rotating", sizeof(r.status));
    r.claim_until = cf_now_ms() - 1; /* its lease ran out with the process */
    cr_assert_eq(cf_store_rotation_save(fx_store, &r, "dead-owner", false, NULL, &err), CF_OK, "%s",
                 err.msg);
}

Test(rotations, issued_but_never_stored_is_revoked_and_issued_again)
{
    struct cf_rotation_view v;
    struct cf_rotation r;
    create(0, &v);
    execute(v.rot.id);
    struct fake_cred *lost = fake_issue_raw(2); /* issued and recorded; its value died */
    leave_at(v.rot.id, "store", lost->id);
    cr_assert(execute(v.rot.id), "a rotation left in progress is resumed once its lease ran out");
    load(v.rot.id, &r);
    cr_assert_str_eq(r.status, "succeeded", "%s: %s", r.last_error_step, r.last_error);
    cr_assert(fake_find("key-2")->revoked, "the credential whose value was lost is still live");
    cr_assert_str_eq(r.current_cred_id, "key-3");
    char *secret = secret_value("AZURE_CLIENT_SECRET", NULL, NULL);
    cr_assert_str_eq(secret, fake_find("key-3")->secret);
    cr_assert_eq(fake_live(), 1);
    cr_assert_eq(fake.revokes_of_dead, 0);
    free(secret);
}

Test(rotations, a_live_claim_is_not_taken_and_a_lost_one_cannot_write)
{
    struct cf_rotation_view v;
    struct cf_rotation r;
    bool claimed = false;
    create(0, &v);
    cr_assert_eq(cf_store_rotation_claim(fx_store, v.rot.id, "node-a", cf_now_ms(), 60000, &claimed,
                                         &r, &err),
                 CF_OK);
    cr_assert(claimed);
    cr_assert_eq(cf_store_rotation_claim(fx_store, v.rot.id, "node-b", cf_now_ms(), 60000, &claimed,
                                         &r, &err),
                 CF_OK);
    cr_assert_not(claimed, "two nodes hold one rotation");
    cr_assert_not(execute(v.rot.id));
    cr_assert_eq(cf_store_rotation_save(fx_store, &r, "node-b", true, NULL, &err), CF_ECONFLICT);
    char ids[4][CF_UUID_LEN];
    size_t n = 9;
    cr_assert_eq(cf_store_rotations_due(fx_store, cf_now_ms(), 4, ids, &n, &err), CF_OK);
    cr_assert_eq(n, 0, "a claimed rotation listed as due");
}

/* Collects the calls of a dry run, one "step method target" line each. */
static void collect(void *ctx, const char *step, const char *method, const char *target,
                    const char *purpose)
{
    (void)purpose;
    struct cf_buf *b = ctx;
    char line[512];
    snprintf(line, sizeof(line), "%s %s %s\n", step, method, target);
    cr_assert_eq(cf_buf_append(b, line, strlen(line)), CF_OK);
}

Test(rotations, dry_run_names_the_calls_and_changes_nothing)
{
    struct cf_rotation_view v;
    create(0, &v);
    struct cf_buf calls;
    cf_buf_init(&calls, 4096);
    cr_assert_eq(
        cf_rotations_dry_run(&fx_core, &fx_admin, "fake-secret", v.rot.id, collect, &calls, &err),
        CF_OK, "%s", err.msg);
    cr_assert_eq(fake.n, 0, "a dry run issued a credential");
    cr_assert(memmem(calls.data, calls.len, "issue POST https://fake.invalid/addPassword", 43));
    cr_assert(memmem(calls.data, calls.len, "store WRITE dev/AZURE_CLIENT_SECRET", 35));
    cf_buf_release(&calls);
}

struct bad_case {
    const char *type;
    const char *what; /* which field to spoil */
    enum cf_rc rc;
    const char *words;
};

Test(rotations, bad_inputs_are_refused_naming_the_problem)
{
    static const struct bad_case cases[] = {
        {"no-such-type", "", CF_ENOTFOUND, "Unknown secret rotation type 'no-such-type'"},
        {"fake-secret", "mapping-missing", CF_EVALIDATION, "'clientSecret' is required"},
        {"fake-secret", "mapping-unknown", CF_EVALIDATION, "'password' is not an output"},
        {"fake-secret", "mapping-same-key", CF_EVALIDATION, "map to the same key"},
        {"fake-secret", "params", CF_EVALIDATION, "parameters.app is required"},
        {"fake-secret", "grace", CF_EVALIDATION, "gracePeriod must not be negative"},
        {"fake-secret", "consumer-type", CF_EVALIDATION, "unknown consumer type 'nope'"},
        {"fake-secret", "consumer-config", CF_EVALIDATION, "config.endpoint is required"},
        {"fake-secret", "connection", CF_EVALIDATION, "takes no connection"},
        {"fake-secret", "interval", CF_EVALIDATION, "rotationInterval must be between"},
        {"fake-secret", "rotate-at", CF_EVALIDATION, "rotateAtUtc"},
        {"fake-secret", "path", CF_EVALIDATION, "not found"},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        const struct bad_case *c = &cases[i];
        struct spec_json j;
        struct cf_rotation_view v;
        struct cf_rotation_spec spec = spec_of(&j, -1);
        if (strcmp(c->what, "mapping-missing") == 0)
            json_object_del(j.mapping, "clientSecret");
        else if (strcmp(c->what, "mapping-unknown") == 0)
            json_object_set_new(j.mapping, "password", json_string("PW"));
        else if (strcmp(c->what, "mapping-same-key") == 0)
            json_object_set_new(j.mapping, "clientId", json_string("AZURE_CLIENT_SECRET"));
        else if (strcmp(c->what, "params") == 0)
            json_object_del(j.params, "app");
        else if (strcmp(c->what, "grace") == 0)
            spec.grace_period_ms = -5;
        else if (strcmp(c->what, "consumer-type") == 0)
            json_object_set_new(json_array_get(j.consumers, 0), "type", json_string("nope"));
        else if (strcmp(c->what, "consumer-config") == 0)
            json_object_set_new(json_array_get(j.consumers, 0), "config", json_object());
        else if (strcmp(c->what, "connection") == 0)
            spec.connection_id = "00000000-0000-4000-8000-000000000009";
        else if (strcmp(c->what, "interval") == 0)
            spec.interval_days = 100000;
        else if (strcmp(c->what, "rotate-at") == 0)
            spec.rotate_at_minute = 24 * 60;
        else if (strcmp(c->what, "path") == 0)
            spec.secret_path = "/no/such/folder";
        cf_err_clear(&err);
        enum cf_rc rc = cf_rotations_create(&fx_core, &fx_admin, c->type, &spec, &v, &err);
        cr_expect_eq(rc, c->rc, "%s: %s (%s)", c->what, cf_rc_str(rc), err.msg);
        cr_expect(strstr(err.msg, c->words), "%s: '%s' lacks '%s'", c->what, err.msg, c->words);
        spec_release(&j);
    }
    struct cf_rotation_view_list l;
    cr_assert_eq(cf_rotations_list(&fx_core, &fx_admin, "app", NULL, &l, &err), CF_OK);
    cr_assert_eq(l.n, 0, "a refused rotation was stored");
    cf_rotation_view_list_release(&l);
}

Test(rotations, name_is_unique_and_delete_refused_mid_rotation)
{
    struct cf_rotation_view v, other, gone;
    struct spec_json j;
    create(60 * 60 * 1000, &v);
    struct cf_rotation_spec spec = spec_of(&j, -1);
    cr_assert_eq(cf_rotations_create(&fx_core, &fx_admin, "fake-secret", &spec, &other, &err),
                 CF_EEXIST);
    spec_release(&j);
    execute(v.rot.id);
    run_now(v.rot.id); /* now waiting out the grace period, key-1 still to revoke */
    cr_assert_eq(cf_rotations_delete(&fx_core, &fx_admin, NULL, v.rot.id, &gone, &err),
                 CF_ECONFLICT);
    cr_assert(strstr(err.msg, "in progress (step 'grace')"), "%s", err.msg);
    cr_assert_eq(cf_rotations_get(&fx_core, &fx_admin, "other-type", v.rot.id, &gone, &err),
                 CF_ENOTFOUND);
}

Test(rotations, schedule_interval_and_days_before_expiry)
{
    int64_t day = 24LL * 3600 * 1000;
    struct cf_rotation r = {0};
    r.created_at = 10 * day + 5000;
    r.interval_days = 30;
    r.rotate_at_minute = 90; /* 01:30 UTC */
    cr_assert_eq(cf_rotation_next_at(&r), 40 * day + 90 * 60 * 1000);
    r.last_rotated_at = 20 * day;
    cr_assert_eq(cf_rotation_next_at(&r), 50 * day + 90 * 60 * 1000);
    r.current_expires_at = 45 * day;
    r.days_before_expiry = 7;
    cr_assert_eq(cf_rotation_next_at(&r), 38 * day, "the expiry comes first");
    r.interval_days = 0;
    cr_assert_eq(cf_rotation_next_at(&r), 38 * day);
    r.days_before_expiry = 0;
    cr_assert_eq(cf_rotation_next_at(&r), 0);
}

/* A sync of the rotation's folder, as the sync engine keeps it. */
static void make_sync(struct cf_sync *out)
{
    memset(out, 0, sizeof(*out));
    cf_uuid_new(out->id);
    cf_strlcpy(out->project_id, scope.project.id, sizeof(out->project_id));
    cf_strlcpy(out->name, "to-pipelines", sizeof(out->name));
    cf_strlcpy(out->env_id, scope.env.id, sizeof(out->env_id));
    cf_strlcpy(out->folder_path, "/", sizeof(out->folder_path));
    cf_strlcpy(out->destination, "file", sizeof(out->destination));
    cf_strlcpy(out->destination_config, "{}", sizeof(out->destination_config));
    cf_strlcpy(out->sync_options, "{}", sizeof(out->sync_options));
    out->auto_sync = true;
    out->created_at = cf_now_ms();
    cr_assert_eq(cf_store_sync_create(fx_store, out, &err), CF_OK, "%s", err.msg);
}

/* Runs the sync as its engine would, with outcome ok. */
static void sync_run(const char *id, bool ok)
{
    struct cf_sync s;
    bool claimed = false;
    cr_assert_eq(
        cf_store_sync_claim(fx_store, id, "sync-node", cf_now_ms(), 60000, &claimed, &s, &err),
        CF_OK, "%s", err.msg);
    cr_assert(claimed);
    struct cf_sync_outcome o = {.id = id,
                                .owner = "sync-node",
                                .gen = s.pending_gen,
                                .ok = ok,
                                .finished_at = cf_now_ms(),
                                .error = ok ? NULL : "HTTP 401 from the destination",
                                .cause = ok ? NULL : "unauthorized",
                                .next_attempt_at = cf_now_ms() + 60000};
    cr_assert_eq(cf_store_sync_finish(fx_store, &o, &err), CF_OK, "%s", err.msg);
}

Test(rotations, waits_for_the_syncs_of_its_folder_before_retiring_the_old_credential)
{
    struct cf_rotation_view v;
    struct cf_rotation r;
    struct cf_sync sync;
    create(0, &v);
    execute(v.rot.id);
    make_sync(&sync);
    sync_run(sync.id, true);
    run_now(v.rot.id); /* the new value marks the sync pending: the rotation waits for it */
    load(v.rot.id, &r);
    cr_assert_str_eq(r.pending_step, "syncs", "%s %s", r.status, r.last_error);
    cr_assert_str_eq(r.claim_owner, "");
    cr_assert_gt(r.next_attempt_at, cf_now_ms());
    cr_assert_not(fake.creds[0].revoked, "revoked while a sync had not delivered");
    cr_assert_str_eq(r.current_cred_id, "key-1", "promoted before the syncs delivered");

    /* the sync fails: the rotation fails at syncs, naming it, and keeps the old credential */
    sync_run(sync.id, false);
    run_now(v.rot.id);
    load(v.rot.id, &r);
    cr_assert_str_eq(r.status, "failed");
    cr_assert_str_eq(r.last_error_step, "syncs");
    cr_assert_str_eq(r.last_error_cause, "sync");
    cr_assert(strstr(r.last_error, "to-pipelines"), "%s", r.last_error);
    cr_assert_not(fake.creds[0].revoked);

    /* it delivers: the rotation finishes */
    cr_assert_eq(cf_store_sync_mark_one(fx_store, sync.id, &err), CF_OK);
    sync_run(sync.id, true);
    run_now(v.rot.id);
    load(v.rot.id, &r);
    cr_assert_str_eq(r.status, "succeeded", "%s: %s", r.last_error_step, r.last_error);
    cr_assert(fake.creds[0].revoked);
    cr_assert_not(execute(v.rot.id), "a run asked for mid-rotation started another one");
    cr_assert_eq(fake.n, 2);
}
