/* GPGME, loaded at its first use (util/dynlib.h): the functions of GPGME the program calls. When
 * it cannot be loaded, each fails with GPG_ERR_NOT_SUPPORTED (or NULL). */
#include <gpgme.h>

#include "util/dynlib_impl.h"
#include "util/banned.h"

#define NOT_LOADED gpg_err_make(GPG_ERR_SOURCE_GPGME, GPG_ERR_NOT_SUPPORTED)

#define GPGME_FUNCTIONS(F, V, M)                                                                   \
    F(const char *, gpgme_check_version_internal,                                                  \
      (const char *req_version, size_t offset_sig_validity), (req_version, offset_sig_validity),   \
      NULL)                                                                                        \
    F(gpgme_error_t, gpgme_engine_check_version, (gpgme_protocol_t proto), (proto), NOT_LOADED)    \
    F(const char *, gpgme_strerror, (gpgme_error_t err), (err), "GPGME could not be loaded")       \
    F(gpgme_error_t, gpgme_new, (gpgme_ctx_t * ctx), (ctx), NOT_LOADED)                            \
    V(gpgme_release, (gpgme_ctx_t ctx), (ctx))                                                     \
    F(gpgme_error_t, gpgme_ctx_set_engine_info,                                                    \
      (gpgme_ctx_t ctx, gpgme_protocol_t proto, const char *file_name, const char *home_dir),      \
      (ctx, proto, file_name, home_dir), NOT_LOADED)                                               \
    V(gpgme_set_armor, (gpgme_ctx_t ctx, int yes), (ctx, yes))                                     \
    V(gpgme_set_offline, (gpgme_ctx_t ctx, int yes), (ctx, yes))                                   \
    F(gpgme_error_t, gpgme_data_new, (gpgme_data_t * r_dh), (r_dh), NOT_LOADED)                    \
    F(gpgme_error_t, gpgme_data_new_from_mem,                                                      \
      (gpgme_data_t * r_dh, const char *buffer, size_t size, int copy),                            \
      (r_dh, buffer, size, copy), NOT_LOADED)                                                      \
    V(gpgme_data_release, (gpgme_data_t dh), (dh))                                                 \
    F(char *, gpgme_data_release_and_get_mem, (gpgme_data_t dh, size_t * r_len), (dh, r_len),      \
      NULL)                                                                                        \
    V(gpgme_free, (void *buffer), (buffer))                                                        \
    F(gpgme_error_t, gpgme_op_import, (gpgme_ctx_t ctx, gpgme_data_t keydata), (ctx, keydata),     \
      NOT_LOADED)                                                                                  \
    F(gpgme_import_result_t, gpgme_op_import_result, (gpgme_ctx_t ctx), (ctx), NULL)               \
    F(gpgme_error_t, gpgme_op_keylist_start,                                                       \
      (gpgme_ctx_t ctx, const char *pattern, int secret_only), (ctx, pattern, secret_only),        \
      NOT_LOADED)                                                                                  \
    F(gpgme_error_t, gpgme_op_keylist_next, (gpgme_ctx_t ctx, gpgme_key_t * r_key), (ctx, r_key),  \
      NOT_LOADED)                                                                                  \
    F(gpgme_error_t, gpgme_op_keylist_end, (gpgme_ctx_t ctx), (ctx), NOT_LOADED)                   \
    V(gpgme_key_unref, (gpgme_key_t key), (key))                                                   \
    F(gpgme_error_t, gpgme_op_encrypt,                                                             \
      (gpgme_ctx_t ctx, gpgme_key_t recp[], gpgme_encrypt_flags_t flags, gpgme_data_t plain,       \
       gpgme_data_t cipher),                                                                       \
      (ctx, recp, flags, plain, cipher), NOT_LOADED)                                               \
    F(gpgme_encrypt_result_t, gpgme_op_encrypt_result, (gpgme_ctx_t ctx), (ctx), NULL)

CF_DYNLIB_DEFINE(cf_lib_gpgme, "GPGME", "libgpgme.so.11", GPGME_FUNCTIONS)
