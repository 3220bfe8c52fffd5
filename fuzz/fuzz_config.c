/* Configuration as users write it: notification thresholds ("30d, 7d,1d"), notification and
 * audit-stream targets (the https-or-loopback URL rule), the CLI's server URL (`--domain`,
 * COFFER_API_URL) and the CLI's stored login file (~/.config/coffer/credentials.json, written here
 * with the input as its content). Properties: normalising thresholds and domains is idempotent; a
 * stored login is only ever read back for the domain it names. Input: thresholds 0x1F channel type
 * 0x1F target 0x1F domain 0x1F credentials file. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/credentials.h"
#include "client/client.h"
#include "notify/notify.h"
#include "util/buf.h"
#include "fuzz.h"

static char home[64];

/* The temporary home goes with the process (libFuzzer and replay both end through exit). */
static void remove_home(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/coffer/credentials.json", home);
    unlink(path);
    snprintf(path, sizeof(path), "%s/coffer", home);
    rmdir(path);
    rmdir(home);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    struct cf_err err;
    char dir[] = "/tmp/coffer-fuzz-config-XXXXXX";
    if (!mkdtemp(dir) || cf_client_global_init(&err) != CF_OK)
        abort();
    snprintf(home, sizeof(home), "%s", dir);
    setenv("XDG_CONFIG_HOME", home, 1);
    char coffer_dir[96];
    snprintf(coffer_dir, sizeof(coffer_dir), "%s/coffer", home);
    mkdir(coffer_dir, 0700);
    atexit(remove_home);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!home[0])
        LLVMFuzzerInitialize(NULL, NULL);
    struct fuzz_parts p;
    struct cf_err err;
    fuzz_split(data, size, 0x1f, 5, &p);

    char once[256], twice[256];
    if (cf_notify_thresholds_parse(p.part[0], once, sizeof(once), &err) == CF_OK) {
        FUZZ_CHECK(cf_notify_thresholds_parse(once, twice, sizeof(twice), &err) == CF_OK,
                   "normalised thresholds '%s' refused: %s", once, err.msg);
        FUZZ_CHECK(strcmp(once, twice) == 0, "thresholds normalised twice: '%s' then '%s'", once,
                   twice);
    }
    cf_channel_check(p.part[1], p.part[2], &err);

    struct cf_buf domain, again;
    cf_buf_init(&domain, 0);
    cf_buf_init(&again, 0);
    if (cf_client_normalize_domain(p.part[3], &domain, &err) == CF_OK) {
        FUZZ_CHECK(cf_client_normalize_domain(domain.data, &again, &err) == CF_OK,
                   "a normalised domain is refused: %s", err.msg);
        FUZZ_CHECK(strcmp(domain.data, again.data) == 0, "a domain normalised twice changed");
    }

    /* the stored login: whatever the file holds, reading it never crashes, and a token comes back
     * only for the domain the file names */
    char path[128];
    snprintf(path, sizeof(path), "%s/coffer/credentials.json", home);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, p.part[4], p.len[4]) != (ssize_t)p.len[4])
        abort();
    close(fd);
    struct cf_buf token, used;
    cf_buf_init(&token, 0);
    cf_buf_init(&used, 0);
    if (cf_credentials_for(p.part[3], &token, &used, &err) == CF_OK && domain.data)
        FUZZ_CHECK(strcmp(used.data ? used.data : "", domain.data) == 0,
                   "a stored login for another server was used");
    cf_buf_release_wipe(&token);
    cf_buf_release_wipe(&used);
    cf_buf_release(&domain);
    cf_buf_release(&again);
    fuzz_parts_free(&p);
    return 0;
}
