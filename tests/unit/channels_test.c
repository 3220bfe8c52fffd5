/* Unit tests for core/channels.c over a real SQLite store and keyring: only the admin manages
 * channels; sizes are checked; a webhook's signing secret is sealed at rest (given or generated,
 * the generated one shown once); thresholds fall back to the default; the delivery log's state
 * filter is checked. Also the notifier's two list syntaxes (thresholds, e-mail recipients). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/channels.h"
#include "crypto/serverkey.h"
#include "notify/notify.h"
#include "util/buf.h"
#include "util/id.h"
#include "util/log.h"
#include "util/str.h"
#include "util/banned.h"

static char tmp_dir[64];
static struct cf_store *st;
static struct cf_keyring *kr;
static struct cf_core core;
static struct cf_err err;
static const struct cf_principal admin = {.kind = CF_PRINCIPAL_ADMIN};
static const struct cf_principal machine = {.kind = CF_PRINCIPAL_IDENTITY,
                                            .id = "6f1c2d9e-0000-4000-8000-0000000001d0",
                                            .name = "pipeline"};

static void setup(void)
{
    char dsn[256];
    uint8_t root[CF_ROOT_KEY_BYTES];
    cf_log_set_level("warn");
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/coffer-channels-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp_dir));
    snprintf(dsn, sizeof(dsn), "sqlite:%s/coffer.db", tmp_dir);
    struct cf_store_config config = {.dsn = dsn};
    cr_assert_eq(cf_store_open(&config, &st, &err), CF_OK, "%s", err.msg);
    cf_keyring_generate_root(root);
    cr_assert_eq(cf_keyring_from_bytes(root, &kr, &err), CF_OK, "%s", err.msg);
    core = (struct cf_core){.store = st, .keyring = kr};
}

static void teardown(void)
{
    char cmd[128];
    if (st)
        cf_store_close(st);
    cf_keyring_free(kr);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(channels, .init = setup, .fini = teardown);

/* The signing secret stored for ch, opened. */
static void opened_secret(const struct cf_channel *ch, struct cf_buf *out)
{
    char context[64];
    snprintf(context, sizeof(context), "channel:%s", ch->id);
    cf_buf_init(out, 0);
    cr_assert_eq(cf_credential_open(st, kr, context, ch->signing_secret, out, &err), CF_OK, "%s",
                 err.msg);
}

Test(channels, only_the_admin)
{
    struct cf_channel ch;
    struct cf_channel_list list = {0};
    char generated[CF_CHANNEL_GENERATED_SECRET_SIZE], id[CF_UUID_LEN];
    struct cf_channel_spec spec = {.type = "slack", .target = "https://hooks.example/x"};
    cr_assert_eq(cf_channels_add(&core, &machine, &spec, &ch, generated, &err), CF_EFORBIDDEN);
    cr_assert(strstr(err.msg, "manage notifications"), "%s", err.msg);
    cr_assert_eq(cf_channels_list(&core, &machine, NULL, &list, &err), CF_EFORBIDDEN);
    cr_assert_eq(cf_channels_project(&core, &machine, "payments", id, &err), CF_EFORBIDDEN);
    cr_assert_eq(cf_channels_list(&core, &admin, NULL, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, 0); /* nothing was stored */
    cf_channel_list_release(&list);
}

Test(channels, sizes_are_checked)
{
    struct cf_channel ch;
    char generated[CF_CHANNEL_GENERATED_SECRET_SIZE];
    char long_name[CF_NAME_MAX + 2];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    struct cf_channel_spec spec = {
        .type = "webhook", .target = "https://hooks.example/x", .name = long_name};
    cr_assert_eq(cf_channels_add(&core, &admin, &spec, &ch, generated, &err), CF_EVALIDATION);
    cr_assert_str_eq(err.field, "name");
    spec.name = NULL;
    spec.signing_secret = "too-short";
    cr_assert_eq(cf_channels_add(&core, &admin, &spec, &ch, generated, &err), CF_EVALIDATION);
    cr_assert_str_eq(err.field, "signingSecret");
    cr_assert(!strstr(err.msg, "too-short"), "%s", err.msg);
    cr_assert_str_eq(generated, "");
}

Test(channels, webhook_secret_sealed_given_or_generated)
{
    struct cf_channel ch;
    struct cf_channel_list list = {0};
    struct cf_buf plain;
    char generated[CF_CHANNEL_GENERATED_SECRET_SIZE];
    const char *given = "a-signing-secret-of-the-receiver";
    struct cf_channel_spec spec = {
        .type = "webhook", .target = "https://hooks.example/x", .signing_secret = given};

    cr_assert_eq(cf_channels_add(&core, &admin, &spec, &ch, generated, &err), CF_OK, "%s", err.msg);
    cr_assert_str_eq(generated, "");
    cr_assert_str_eq(ch.name, "webhook"); /* no name: the type */
    cr_assert(strncmp(ch.signing_secret, CF_SEALED_PREFIX, strlen(CF_SEALED_PREFIX)) == 0);
    cr_assert(!strstr(ch.signing_secret, given));
    opened_secret(&ch, &plain);
    cr_assert_str_eq(plain.data, given);
    cf_buf_release_wipe(&plain);

    spec.signing_secret = NULL;
    spec.name = "receiver";
    cr_assert_eq(cf_channels_add(&core, &admin, &spec, &ch, generated, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(strlen(generated), 6 + 48, "%s", generated);
    cr_assert(strncmp(generated, "whsec_", 6) == 0, "%s", generated);
    opened_secret(&ch, &plain);
    cr_assert_str_eq(plain.data, generated);
    cf_buf_release_wipe(&plain);

    /* Not a webhook: nothing to sign with. */
    struct cf_channel_spec slack = {.type = "slack", .target = "https://hooks.example/s"};
    cr_assert_eq(cf_channels_add(&core, &admin, &slack, &ch, generated, &err), CF_OK, "%s",
                 err.msg);
    cr_assert_str_eq(ch.signing_secret, "");
    cr_assert_str_eq(generated, "");

    cr_assert_eq(cf_channels_list(&core, &admin, NULL, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, 3);
    cf_channel_list_release(&list);
    cr_assert_eq(cf_channels_delete(&core, &admin, ch.id, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(cf_channels_list(&core, &admin, NULL, &list, &err), CF_OK, "%s", err.msg);
    cr_assert_eq(list.n, 2);
    cf_channel_list_release(&list);
}

Test(channels, unknown_project)
{
    char id[CF_UUID_LEN];
    cr_assert_eq(cf_channels_project(&core, &admin, "no-such-project", id, &err), CF_ENOTFOUND);
    cr_assert_str_eq(err.msg, "Project with ID 'no-such-project' not found");
}

Test(channels, deliveries_state_is_checked)
{
    struct cf_notice_list list = {0};
    cr_assert_eq(cf_channels_deliveries(&core, &admin, NULL, "bogus", 10, 0, &list, &err),
                 CF_EVALIDATION);
    cr_assert_str_eq(err.field, "status");
    cr_assert_eq(cf_channels_deliveries(&core, &admin, NULL, "failed", 10, 0, &list, &err), CF_OK,
                 "%s", err.msg);
    cr_assert_eq(list.n, 0);
    cf_notice_list_release(&list);
    cr_assert_eq(cf_channels_deliveries(&core, &machine, NULL, NULL, 10, 0, &list, &err),
                 CF_EFORBIDDEN);
}

struct list_case {
    const char *text, *want; /* want: the normalised thresholds, or words of the error */
    enum cf_rc rc;
};

/* Thresholds: commas and spaces separate durations, empty items are skipped, a tab is part of a
 * word. */
Test(notify_lists, thresholds)
{
    static const struct list_case cases[] = {
        {"30d,7d,1d", "30d,7d,1d", CF_OK},
        {"1d,30d,7d", "30d,7d,1d", CF_OK},
        {" 30d , 7d ", "30d,7d", CF_OK},
        {"30d 7d", "30d,7d", CF_OK},
        {",,30d,,7d,", "30d,7d", CF_OK},
        {"", "at least one duration", CF_EVALIDATION},
        {" , ,", "at least one duration", CF_EVALIDATION},
        {"30d,\t7d", "'\t7d' is not a duration", CF_EVALIDATION},
        {"30d,soon", "'soon' is not a duration", CF_EVALIDATION},
        {"7d,168h", "'168h' is given twice", CF_EVALIDATION},
        {"1d,2d,3d,4d,5d,6d,7d,8d,9d", "at most", CF_EVALIDATION},
        {"123456789012345678d", "at most", CF_EVALIDATION},
    };
    char out[256];
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        struct cf_err e;
        cf_err_clear(&e);
        enum cf_rc rc = cf_notify_thresholds_parse(cases[i].text, out, sizeof(out), &e);
        cr_expect_eq(rc, cases[i].rc, "'%s': %s", cases[i].text, e.msg);
        if (rc == CF_OK && cases[i].rc == CF_OK)
            cr_expect_str_eq(out, cases[i].want, "'%s'", cases[i].text);
        else if (rc != CF_OK)
            cr_expect(strstr(e.msg, cases[i].want) != NULL, "'%s': %s", cases[i].text, e.msg);
    }
}

/* Recipients: items trimmed of spaces (not tabs), a trailing comma ends the list, an empty item
 * between commas is refused. */
Test(notify_lists, recipients)
{
    static const struct list_case cases[] = {
        {"ops@example.com", NULL, CF_OK},
        {" ops@example.com ,  sec@example.com ", NULL, CF_OK},
        {"ops@example.com,", NULL, CF_OK},
        /* trailing spaces after the last address are trimmed as after any other (the hand-rolled
         * walk this replaced refused them as an empty address) */
        {"ops@example.com ", NULL, CF_OK},
        {"", "recipients: at least one", CF_EVALIDATION},
        {"ops@example.com,,sec@example.com", "'' is not an e-mail address", CF_EVALIDATION},
        {",ops@example.com", "'' is not an e-mail address", CF_EVALIDATION},
        {"ops@example.com, ", "'' is not an e-mail address", CF_EVALIDATION},
        {"ops@example.com,\tsec@example.com", "'\tsec@example.com' is not an e-mail",
         CF_EVALIDATION},
        {"ops@example.com, sec", "'sec' is not an e-mail address", CF_EVALIDATION},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        struct cf_err e;
        cf_err_clear(&e);
        enum cf_rc rc = cf_channel_check("email", cases[i].text, &e);
        cr_expect_eq(rc, cases[i].rc, "'%s': %s", cases[i].text, e.msg);
        if (cases[i].want)
            cr_expect(strstr(e.msg, cases[i].want) != NULL, "'%s': %s", cases[i].text, e.msg);
    }
}
