/* The providers' common entry points: the table of destinations (cf_dest_find), the release of
 * what a destination lists, and the connection check that dispatches on the connection's app.
 * Each destination and each app adds one line to the tables below. */
#include "provider/provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "provider/ado.h"
#include "provider/filedest.h"
#include "provider/github.h"
#include "provider/graph.h"
#include "provider/keyvault.h"
#include "provider/mysqldynamic.h"
#include "provider/pgrole.h"
#include "provider/webhook.h"
#include "util/str.h"
#include "util/banned.h"

static const struct cf_dest_ops *const destinations[] = {
    &cf_dest_azure_devops,
    &cf_dest_azure_key_vault,
    &cf_github_dest,
    &cf_file_dest,
};

static const struct {
    const char *app;
    enum cf_rc (*check)(const struct cf_provider_conn *conn, json_t **report, struct cf_err *err);
} checks[] = {
    {"azure-client-secrets", cf_graph_check},
    {"azure-devops", cf_ado_check},
    {"azure-key-vault", cf_keyvault_check},
    {"github", cf_github_check},
    {"mysql", cf_mysql_check},
    {"postgres", cf_pg_check},
    {"webhook", cf_webhook_check},
};

const struct cf_dest_ops *cf_dest_find(const char *slug)
{
    if (!slug)
        return NULL;
    for (size_t i = 0; i < CF_ARRAY_SIZE(destinations); i++)
        if (strcmp(destinations[i]->destination, slug) == 0)
            return destinations[i];
    return NULL;
}

void cf_dest_list_release(struct cf_dest_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].name);
        if (l->items[i].value) {
            sodium_memzero(l->items[i].value, strlen(l->items[i].value));
            free(l->items[i].value);
        }
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

enum cf_rc cf_provider_check(const struct cf_provider_conn *conn, json_t **report,
                             struct cf_err *err)
{
    *report = NULL;
    if (!conn || !conn->app || !json_is_object(conn->credentials))
        return cf_err_set(err, CF_EINVAL, "the connection has no app or no credentials");
    for (size_t i = 0; i < CF_ARRAY_SIZE(checks); i++)
        if (strcmp(checks[i].app, conn->app) == 0)
            return checks[i].check(conn, report, err);
    return cf_err_set(err, CF_EINVAL, "unknown connection app \"%.64s\"", conn->app);
}

enum cf_rc cf_provider_ca_file(const char *pem, char *path, size_t size, struct cf_err *err)
{
    path[0] = '\0';
    if (!pem)
        return CF_OK;
    const char *dir = getenv("TMPDIR");
    snprintf(path, size, "%s/coffer-ca.XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) {
        path[0] = '\0';
        return cf_err_set(err, CF_EIO, "cannot write the connection's CA certificate");
    }
    size_t len = strlen(pem);
    bool ok = write(fd, pem, len) == (ssize_t)len;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        unlink(path);
        path[0] = '\0';
        return cf_err_set(err, CF_EIO, "cannot write the connection's CA certificate");
    }
    return CF_OK;
}
