/* Loading the libraries of util/dynlib.h at their first use. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "util/dynlib_impl.h"
#include "util/log.h"
#include "util/banned.h"

void cf_dynlib_open(struct cf_dynlib *lib)
{
    /* RTLD_LOCAL: the library's symbols stay out of the global scope that later loads resolve
     * against. RTLD_NOW: a library missing a symbol it needs fails here, not in the middle of a
     * call. */
    void *handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        snprintf(lib->error, sizeof(lib->error), "%s could not be loaded: %s", lib->label,
                 why ? why : lib->soname);
        goto failed;
    }
    for (size_t i = 0; i < lib->count; i++) {
        void *symbol = dlsym(handle, lib->symbols[i]);
        if (!symbol) {
            snprintf(lib->error, sizeof(lib->error),
                     "%s could not be loaded: \"%s\" has no function \"%s\"", lib->label,
                     lib->soname, lib->symbols[i]);
            memset(lib->slots, 0, lib->count * sizeof(*lib->slots));
            dlclose(handle);
            goto failed;
        }
        /* POSIX (dlsym): a function's address is returned as an object pointer, converted back
         * here by copying its representation */
        memcpy(&lib->slots[i], &symbol, sizeof(symbol));
    }
    atomic_store_explicit(&lib->ready, true, memory_order_release);
    return;
failed:
    cf_log(CF_LOG_ERROR, "%s", lib->error);
}

enum cf_rc cf_dynlib_load(struct cf_dynlib *lib, struct cf_err *err)
{
    if (cf_dynlib_ready(lib))
        return CF_OK;
    return cf_err_set(err, CF_EUNSUPPORTED, "%s", lib->error);
}

bool cf_dynlib_loaded(struct cf_dynlib *lib)
{
    return atomic_load_explicit(&lib->ready, memory_order_acquire);
}
