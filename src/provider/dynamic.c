/* The dynamic providers' table (dynamic.h): each kind adds its line. */
#include "provider/dynamic.h"
#include "provider/pgdynamic.h"

#include <string.h>

#include <sodium.h>

#include "util/str.h"
#include "util/banned.h"

static const struct cf_dynamic_ops *const providers[] = {
    &cf_dynamic_postgres, NULL, /* placeholder: each provider adds its line above this one */
};

const struct cf_dynamic_ops *cf_dynamic_find(const char *type)
{
    for (size_t i = 0; type && i < CF_ARRAY_SIZE(providers); i++)
        if (providers[i] && strcmp(providers[i]->type, type) == 0)
            return providers[i];
    return NULL;
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
