/* The inside of util/dynlib.h, for the files that bind one library (util/dynlib_*.c) and for the
 * tests. A binding file lists the library's functions the program uses in one table macro,
 *
 *   #define FUNCTIONS(F, V, M)
 *       F(return type, name, (parameters), (arguments), value returned when not loaded)
 *       V(name, (parameters), (arguments))      a function returning void
 *       M(name)                                 a slot only: the file writes the function itself
 *                                               (the variadic ones)
 *
 * and expands CF_DYNLIB_DEFINE(variable, "name", "file", FUNCTIONS): the library's struct, its
 * table of names and slots (lib_slots, indexed by CF_DYNLIB_SLOT_name), and one definition per F
 * and V entry. lib_this points at the struct, for the hand-written functions. */
#ifndef CF_UTIL_DYNLIB_IMPL_H
#define CF_UTIL_DYNLIB_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/dynlib.h"

/* Any function pointer: a slot holds the real function, called through a cast to its own type. */
typedef void (*cf_dynlib_fn)(void);

struct cf_dynlib {
    const char *label;  /* for messages: "libcurl" */
    const char *soname; /* the file dlopen looks for: "libcurl.so.4" */
    const char *const *symbols;
    cf_dynlib_fn *slots; /* count functions, filled by the load */
    size_t count;
    pthread_once_t once;
    /* calls cf_dynlib_open on this struct (pthread_once's routine takes no argument) */
    void (*load_once)(void);
    atomic_bool ready; /* every slot is filled */
    char error[CF_ERR_MSG_MAX];
};

/* The load itself, run once per library under its pthread_once: opens the file, resolves every
 * symbol, and either sets ready or writes error (and logs it). */
void cf_dynlib_open(struct cf_dynlib *lib);

/* Loads lib if needed; whether its slots may be called. The fast path is one pthread_once check
 * and one atomic load. */
static inline bool cf_dynlib_ready(struct cf_dynlib *lib)
{
    pthread_once(&lib->once, lib->load_once);
    return atomic_load_explicit(&lib->ready, memory_order_acquire);
}

#define CF_DYNLIB_SLOT_F(ret, name, params, args, fail) CF_DYNLIB_SLOT_##name,
#define CF_DYNLIB_SLOT_V(name, params, args) CF_DYNLIB_SLOT_##name,
#define CF_DYNLIB_SLOT_M(name) CF_DYNLIB_SLOT_##name,
#define CF_DYNLIB_NAME_F(ret, name, params, args, fail) #name,
#define CF_DYNLIB_NAME_V(name, params, args) #name,
#define CF_DYNLIB_NAME_M(name) #name,
#define CF_DYNLIB_DEF_F(ret, name, params, args, fail)                                             \
    ret name params                                                                                \
    {                                                                                              \
        if (!cf_dynlib_ready(lib_this))                                                            \
            return fail;                                                                           \
        return ((ret(*) params)lib_slots[CF_DYNLIB_SLOT_##name])args;                              \
    }
#define CF_DYNLIB_DEF_V(name, params, args)                                                        \
    void name params                                                                               \
    {                                                                                              \
        if (cf_dynlib_ready(lib_this))                                                             \
            ((void(*) params)lib_slots[CF_DYNLIB_SLOT_##name]) args;                               \
    }
#define CF_DYNLIB_DEF_M(name)

#define CF_DYNLIB_DEFINE(var, name, file, FUNCTIONS)                                               \
    enum { FUNCTIONS(CF_DYNLIB_SLOT_F, CF_DYNLIB_SLOT_V, CF_DYNLIB_SLOT_M) CF_DYNLIB_SLOTS };      \
    static const char *const lib_symbols[CF_DYNLIB_SLOTS] = {                                      \
        FUNCTIONS(CF_DYNLIB_NAME_F, CF_DYNLIB_NAME_V, CF_DYNLIB_NAME_M)};                          \
    static cf_dynlib_fn lib_slots[CF_DYNLIB_SLOTS];                                                \
    static void lib_load_once(void);                                                               \
    struct cf_dynlib var = {.label = (name),                                                       \
                            .soname = (file),                                                      \
                            .symbols = lib_symbols,                                                \
                            .slots = lib_slots,                                                    \
                            .count = CF_DYNLIB_SLOTS,                                              \
                            .once = PTHREAD_ONCE_INIT,                                             \
                            .load_once = lib_load_once};                                           \
    static void lib_load_once(void)                                                                \
    {                                                                                              \
        cf_dynlib_open(&var);                                                                      \
    }                                                                                              \
    static struct cf_dynlib *const lib_this = &var;                                                \
    FUNCTIONS(CF_DYNLIB_DEF_F, CF_DYNLIB_DEF_V, CF_DYNLIB_DEF_M)

#endif
