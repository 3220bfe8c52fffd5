/* The access token `coffer login` keeps for later commands: the file credentials.json in
 * $XDG_CONFIG_HOME/coffer (default ~/.config/coffer), holding {"domain": "<server URL ending in
 * /api>", "token": "<access token>"}. The directory is made with mode 0700 and the file with 0600,
 * written to a temporary file in the same directory, fsynced and renamed over the old one, so a
 * reader sees either the old or the new file and never a partial one. A file readable by other
 * users, not owned by the caller or not a regular file is refused when read.
 *
 * The token is only used for the server it was issued by: a command whose --domain (or
 * COFFER_API_URL/INFISICAL_API_URL) names another server does not send it. */
#ifndef CF_CLI_CREDENTIALS_H
#define CF_CLI_CREDENTIALS_H

#include <stdbool.h>

#include "util/buf.h"
#include "util/err.h"

/* Appends the directory and the file path to dir and file (each cleared first; either may be
 * NULL). CF_EINVAL when neither XDG_CONFIG_HOME (absolute) nor HOME is set. */
enum cf_rc cf_credentials_path(struct cf_buf *dir, struct cf_buf *file, struct cf_err *err);

/* Stores domain (normalised with cf_client_normalize_domain) and token, replacing the file. path,
 * if not NULL, receives the file's path. Needs the client's global init first (jansson). CF_EINVAL
 * for a bad domain, CF_EIO with a message naming the path (never the token). */
enum cf_rc cf_credentials_save(const char *domain, const char *token, struct cf_buf *path,
                               struct cf_err *err);

/* Reads the stored credentials if they are for domain (a server URL in any form accepted by
 * cf_client_normalize_domain; NULL accepts the stored one, whatever it is). On CF_OK token receives
 * the token (a wiped buffer: release it with cf_buf_release_wipe) and domain_used the stored
 * normalised domain. CF_ENOTFOUND when there is no file, it is for another server, or domain is not
 * a valid server URL; CF_EIO or
 * CF_EINVAL with a message naming the file when it cannot be read, is unsafe or is malformed. Needs
 * the client's global init first. */
enum cf_rc cf_credentials_for(const char *domain, struct cf_buf *token, struct cf_buf *domain_used,
                              struct cf_err *err);

/* Whether a login is stored (readable, private, well-formed); if so domain (cleared first) receives
 * its normalised server URL. The default server of commands given none (common.h). Needs the
 * client's global init first. */
bool cf_credentials_domain(struct cf_buf *domain);

#endif
