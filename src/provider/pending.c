/* Until the providers are built in (provider/entra.c, ado.c, keyvault.c, github.c): every check
 * answers that the system's provider is not there yet, so that the connections API can be used and
 * tested without them. Removed when the providers land. */
#include "provider/provider.h"

enum cf_rc cf_provider_check(const struct cf_provider_conn *conn, json_t **report,
                             struct cf_err *err)
{
    *report = NULL;
    return cf_err_set(err, CF_EUNAVAIL, "the %s provider is not built into this server yet",
                      conn->app);
}
