/* The dynamic providers' table (dynamic.h): each kind adds its line. */
#include "provider/dynamic.h"

#include <string.h>

#include <sodium.h>

#include "provider/entradynamic.h"
#include "provider/mysqldynamic.h"
#include "provider/pgdynamic.h"
#include "util/str.h"
#include "util/banned.h"

static const struct cf_dynamic_ops *const providers[] = {
    &cf_dynamic_entra_app, &cf_dynamic_mysql, &cf_dynamic_postgres,
    NULL, /* placeholder: each provider adds its line above this one */
};

const struct cf_dynamic_ops *cf_dynamic_find(const char *type)
{
    for (size_t i = 0; type && i < CF_ARRAY_SIZE(providers); i++)
        if (providers[i] && strcmp(providers[i]->type, type) == 0)
            return providers[i];
    return NULL;
}

enum cf_rc cf_dynamic_params_known(const json_t *params, const char *type, const char *const *names,
                                   struct cf_err *err)
{
    char list[256] = "";
    size_t used = 0;
    if (!json_is_object(params))
        return cf_err_field(err, CF_EVALIDATION, "parameters", "parameters: an object is expected");
    for (size_t i = 0; names[i] && used < sizeof(list); i++) {
        int w = snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "", names[i]);
        used += w > 0 ? (size_t)w : 0;
    }
    const char *key;
    const json_t *value;
    json_object_foreach((json_t *)params, key, value)
    {
        bool known = false;
        for (size_t i = 0; names[i]; i++)
            known = known || strcmp(key, names[i]) == 0;
        if (!known)
            return cf_err_field(err, CF_EVALIDATION, "parameters",
                                "parameters.%.48s: not a parameter of %s (%s)", key, type, list);
    }
    return CF_OK;
}

void cf_leased_cred_release(struct cf_leased_cred *c)
{
    if (!c)
        return;
    if (c->fields) {
        /* jansson keeps string values in its own buffers: wipe each before the object goes */
        const char *name;
        json_t *value;
        json_object_foreach(c->fields, name, value)
        {
            if (json_is_string(value))
                sodium_memzero((char *)json_string_value(value), json_string_length(value));
        }
        json_decref(c->fields);
    }
    sodium_memzero(c, sizeof(*c));
}
