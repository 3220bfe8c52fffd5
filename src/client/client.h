/* The client of Coffer's HTTP API (docs/api.md), built on libcurl and jansson, shared by every
 * command that talks to a server (the CLI's projects, envs, folders, secrets, login, run, export)
 * and by the agent. A struct cf_client holds the normalised base URL (ending in "/api", Infisical's
 * convention), an optional bearer token, timeouts, a user agent and one reusable curl handle (so
 * consecutive requests share a connection). One call sends a request with URL-escaped query
 * parameters and an optional JSON body and returns the status, the request id and the parsed JSON
 * answer; a non-2xx answer becomes an error carrying the server's message.
 *
 * Secret bytes that pass through here (the token, request and response bodies) live in buffers
 * wiped when released, and cf_client_global_init routes libcurl's and jansson's own allocations
 * through an allocator that wipes memory before freeing it, so secret values held in json_t strings
 * are wiped by json_decref. A cf_client is not thread-safe: use one per thread. */
#ifndef CF_CLIENT_CLIENT_H
#define CF_CLIENT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "util/buf.h"
#include "util/err.h"

#define CF_CLIENT_DEFAULT_DOMAIN "http://127.0.0.1:8080"
#define CF_CLIENT_USER_AGENT "coffer-cli/" COFFER_VERSION
#define CF_CLIENT_REQUEST_ID_MAX 128
#define CF_CLIENT_ETAG_MAX 128

/* Largest response body accepted (CF_ETOOLARGE past it). */
#define CF_CLIENT_MAX_RESPONSE (64u * 1024u * 1024u)

struct cf_client;

/* Settings for cf_client_new. Every field may be left zero/NULL for its default. All strings are
 * borrowed (copied by cf_client_new). */
struct cf_client_options {
    const char
        *domain;       /* server URL, normalised by cf_client_normalize_domain; NULL: the default */
    const char *token; /* bearer token, or NULL for no Authorization header */
    long connect_timeout_ms; /* 0: 10 s */
    long timeout_ms;         /* whole request; 0: 60 s */
    const char *user_agent;  /* NULL: CF_CLIENT_USER_AGENT */
    const char *ca_file;     /* PEM file of CA certificates to trust for https (e.g. a server's
                                self-signed certificate); NULL: the system's */
    size_t max_response;     /* largest answer body accepted; 0: CF_CLIENT_MAX_RESPONSE (also the
                                most it can be) */
};

/* One query parameter. Arrays of them end with an entry whose name is NULL; an entry whose value is
 * NULL is skipped (so optional parameters can sit in a fixed table). */
struct cf_query_param {
    const char *name;
    const char *value;
};

/* The outcome of a request. Initialise with CF_RESPONSE_INIT (or zero it) and release with
 * cf_response_release whatever cf_client_request returned. */
struct cf_response {
    long status;  /* HTTP status; 0 when no answer arrived */
    json_t *json; /* the parsed body (owned), or NULL when absent/not JSON */
    char request_id[CF_CLIENT_REQUEST_ID_MAX]; /* X-Request-Id (or the error body's reqId), or "" */
    char etag[CF_CLIENT_ETAG_MAX]; /* the ETag header, or "" (also when longer than fits) */
};
#define CF_RESPONSE_INIT                                                                           \
    {                                                                                              \
        0, NULL, "", ""                                                                            \
    }

/* One-time process initialisation, to call before any other libcurl or jansson use (json objects
 * created before it must not be freed after it): curl_global_init with a wiping allocator, and the
 * same allocator for jansson. Idempotent; not thread-safe (call it from main's thread at start).
 * CF_EINTERNAL if libcurl fails. */
enum cf_rc cf_client_global_init(struct cf_err *err);

/* Normalises a server URL as Infisical's CLI does: surrounding blanks and trailing slashes removed,
 * "/api" appended unless the path already ends with it ("http://h:8080" -> "http://h:8080/api",
 * "https://h/api/" -> "https://h/api", "https://h/prefix" -> "https://h/prefix/api"). The scheme
 * must be http or https; a query or fragment is refused. Appends the result to out (cleared first).
 * CF_EINVAL with a message otherwise. */
enum cf_rc cf_client_normalize_domain(const char *domain, struct cf_buf *out, struct cf_err *err);

/* Appends text percent-encoded (every byte but RFC 3986's unreserved A-Z a-z 0-9 - . _ ~ becomes
 * %XX). */
enum cf_rc cf_url_escape(struct cf_buf *out, const char *text);

/* Appends "/" and the escaped segment: builds paths such as "/v3/secrets/raw/" + key safely. */
enum cf_rc cf_url_path_segment(struct cf_buf *out, const char *segment);

/* Builds base_url + path + "?" + escaped query (see struct cf_query_param) into out (cleared
 * first). path starts with '/' and is relative to the base ("/v1/workspace"); it is used as given
 * (escape segments with cf_url_path_segment). CF_EINVAL for a path not starting with '/',
 * CF_ENOMEM/CF_ETOOLARGE from the buffer. */
enum cf_rc cf_client_build_url(const char *base_url, const char *path,
                               const struct cf_query_param *query, struct cf_buf *out,
                               struct cf_err *err);

/* The cf_rc matching an HTTP error status (400 CF_EINVAL, 401 CF_EUNAUTH, 403 CF_EFORBIDDEN, 404
 * CF_ENOTFOUND, 405 CF_EMETHOD, 409 CF_ECONFLICT, 413 CF_ETOOLARGE, 422 CF_EVALIDATION, 429
 * CF_ERATELIMIT, 503 CF_EUNAVAIL, other statuses CF_EINTERNAL); CF_OK for 2xx. */
enum cf_rc cf_client_status_rc(long status);

/* Creates a client (caller frees with cf_client_free). CF_EINVAL for a bad domain, CF_ENOMEM,
 * CF_EINTERNAL when libcurl cannot make a handle. */
enum cf_rc cf_client_new(const struct cf_client_options *options, struct cf_client **out,
                         struct cf_err *err);

/* Wipes the token and frees everything. NULL is a no-op. */
void cf_client_free(struct cf_client *client);

/* The normalised base URL, e.g. "http://127.0.0.1:8080/api" (borrowed, lives as long as the
 * client). */
const char *cf_client_base_url(const struct cf_client *client);

/* The bearer token the client sends (borrowed; valid until the token is replaced or the client
 * freed), or NULL when it sends none. A secret: never print or store it. */
const char *cf_client_token(const struct cf_client *client);

/* Replaces the bearer token (copied; NULL removes it); the old one is wiped. For login flows. */
enum cf_rc cf_client_set_token(struct cf_client *client, const char *token, struct cf_err *err);

/* Sends METHOD base_url+path?query with body (borrowed; NULL for none; sent as application/json,
 * also on DELETE) and fills resp. Returns CF_OK only for a 2xx answer with a JSON body. A non-2xx
 * answer returns cf_client_status_rc(status) with err->msg holding the server's "message" (or a
 * description when the body is not Coffer's error shape); resp->status, resp->request_id and
 * resp->json are filled as far as known. A connection or protocol failure returns CF_EIO with a
 * message naming the URL (without its query); a body over CF_CLIENT_MAX_RESPONSE returns
 * CF_ETOOLARGE; a 2xx answer that is not JSON returns CF_EINVAL. The caller releases resp with
 * cf_response_release in every case. The token never appears in err. */
enum cf_rc cf_client_request(struct cf_client *client, const char *method, const char *path,
                             const struct cf_query_param *query, json_t *body,
                             struct cf_response *resp, struct cf_err *err);

/* A conditional GET: cf_client_request with an If-None-Match header naming if_none_match (an
 * entity tag as the server sent it, quotes included; NULL or "": none). A 304 Not Modified answer
 * returns CF_OK with resp->status 304 and resp->json NULL; otherwise as cf_client_request.
 * resp->etag holds the answer's ETag. CF_EINVAL for a tag holding control characters. */
enum cf_rc cf_client_get_if_none_match(struct cf_client *client, const char *path,
                                       const struct cf_query_param *query,
                                       const char *if_none_match, struct cf_response *resp,
                                       struct cf_err *err);

/* Sends METHOD url to a service other than Coffer's API (e.g. a CI system's OIDC token endpoint):
 * url is an absolute http or https URL used as given (the caller escapes its query); the
 * client's base URL and token are not used. authorization, if not NULL, is the value of the
 * Authorization header ("Bearer ..."; borrowed, treated as a secret: wiped, never in err);
 * extra_headers, if not NULL, up to 4 more header lines ("Name: value"), ending with NULL. body
 * (sent as application/json) and resp as for
 * cf_client_request, whose rules (2xx with a JSON body, the size limit, no redirects, timeouts)
 * apply; messages name the URL's scheme and host only. CF_EINVAL for a URL that is not http(s) or
 * holds blanks or control characters, or an authorization with control characters. */
enum cf_rc cf_client_request_url(struct cf_client *client, const char *method, const char *url,
                                 const char *authorization, const char *const *extra_headers,
                                 json_t *body, struct cf_response *resp, struct cf_err *err);

/* Drops resp->json (json_decref) and resets resp. */
void cf_response_release(struct cf_response *resp);

#endif
