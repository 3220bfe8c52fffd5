/* Finding a destination by its slug and checking a connection (see provider.h). Each destination
 * and each app adds one line to the tables below. */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "provider/ado.h"
#include "provider/filedest.h"
#include "provider/github.h"
#include "provider/keyvault.h"
#include "provider/provider.h"
#include "util/banned.h"

static const struct cf_dest_ops *const destinations[] = {
    &cf_github_dest,
    &cf_file_dest,
    &cf_dest_azure_devops,
    &cf_dest_azure_key_vault,
};

static const struct {
    const char *app;
    enum cf_rc (*check)(const struct cf_provider_conn *conn, json_t **report, struct cf_err *err);
} checks[] = {
    {"github", cf_github_check},
    {"azure-devops", cf_ado_check},
    {"azure-key-vault", cf_keyvault_check},
};

const struct cf_dest_ops *cf_dest_find(const char *slug)
{
    for (size_t i = 0; slug && i < sizeof(destinations) / sizeof(destinations[0]); i++) {
        if (strcmp(destinations[i]->destination, slug) == 0)
            return destinations[i];
    }
    return NULL;
}

void cf_dest_list_release(struct cf_dest_list *l)
{
    for (size_t i = 0; l && i < l->n; i++) {
        free(l->items[i].name);
        if (l->items[i].value) {
            sodium_memzero(l->items[i].value, strlen(l->items[i].value));
            free(l->items[i].value);
        }
    }
    if (l) {
        free(l->items);
        l->items = NULL;
        l->n = 0;
    }
}

enum cf_rc cf_provider_check(const struct cf_provider_conn *conn, json_t **report,
                             struct cf_err *err)
{
    *report = NULL;
    for (size_t i = 0; conn && conn->app && i < sizeof(checks) / sizeof(checks[0]); i++) {
        if (strcmp(checks[i].app, conn->app) == 0)
            return checks[i].check(conn, report, err);
    }
    return cf_err_field(err, CF_EVALIDATION, "app", "unknown connection app '%.64s'",
                        conn && conn->app ? conn->app : "");
}
