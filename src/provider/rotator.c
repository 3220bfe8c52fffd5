/* The rotators' and consumers' tables (rotator.h): each kind adds one line. */
#include "provider/rotator.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "provider/pgrole.h"
#include "provider/ado.h"
#include "provider/graph.h"
#include "provider/webhook.h"
#include "util/str.h"
#include "util/banned.h"

static const struct cf_rotator_ops *const rotators[] = {
    &cf_rotator_postgres_credentials, &cf_rotator_azure_client_secret,
    NULL, /* placeholder: each rotator adds its line above this one */
};

static const struct cf_consumer_ops *const consumers[] = {
    &cf_consumer_ado_service_connection, &cf_consumer_webhook,
    NULL, /* placeholder: each consumer adds its line above this one */
};

const struct cf_rotator_ops *cf_rotator_find(const char *type)
{
    for (size_t i = 0; type && i < CF_ARRAY_SIZE(rotators); i++)
        if (rotators[i] && strcmp(rotators[i]->type, type) == 0)
            return rotators[i];
    return NULL;
}

const struct cf_consumer_ops *cf_consumer_find(const char *type)
{
    for (size_t i = 0; type && i < CF_ARRAY_SIZE(consumers); i++)
        if (consumers[i] && strcmp(consumers[i]->type, type) == 0)
            return consumers[i];
    return NULL;
}

void cf_rotated_cred_release(struct cf_rotated_cred *c)
{
    if (!c)
        return;
    if (c->secret) {
        sodium_memzero(c->secret, c->secret_len);
        free(c->secret);
    }
    if (c->outputs) {
        /* jansson keeps string values in its own buffers: wipe each before the object goes */
        const char *name;
        json_t *value;
        json_object_foreach(c->outputs, name, value)
        {
            if (json_is_string(value))
                sodium_memzero((char *)json_string_value(value), json_string_length(value));
        }
        json_decref(c->outputs);
    }
    sodium_memzero(c, sizeof(*c));
}

void cf_rotated_ids_free(char **ids, size_t n)
{
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
}
