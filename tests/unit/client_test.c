/* Unit tests of the API client (src/client/client.c) and the CLI's shared helpers
 * (src/cli/common.c): URL building and escaping, domain normalisation, status mapping, a real
 * request against a one-shot HTTP server on a loopback port (headers, body, error messages,
 * connection failures), option parsing, the resolution of connection settings, table formatting and
 * value masking. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "cli/common.h"
#include "client/client.h"
#include "util/banned.h"
#include "util/str.h"

/* ---- URL escaping and building --------------------------------------------------------------- */

struct escape_case {
    const char *in;
    const char *out;
};

Test(url, escape_table)
{
    static const struct escape_case cases[] = {
        {"", ""},
        {"abcXYZ019", "abcXYZ019"},
        {"-._~", "-._~"},
        {"a b", "a%20b"},
        {"/backend/api", "%2Fbackend%2Fapi"},
        {"a?b=c&d#e", "a%3Fb%3Dc%26d%23e"},
        {"100%", "100%25"},
        {"+", "%2B"},
        {"\xc3\xa9", "%C3%A9"},
        {"\n\x7f", "%0A%7F"},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        struct cf_buf out;
        cf_buf_init(&out, 0);
        cr_assert_eq(cf_url_escape(&out, cases[i].in), CF_OK);
        cr_expect_str_eq(out.data ? out.data : "", cases[i].out, "escape of case %zu", i);
        cf_buf_release(&out);
    }
}

Test(url, path_segment_escapes_slashes)
{
    struct cf_buf out;
    cf_buf_init(&out, 0);
    cr_assert_eq(cf_buf_puts(&out, "/v3/secrets/raw"), CF_OK);
    cr_assert_eq(cf_url_path_segment(&out, "../KEY x"), CF_OK);
    cr_expect_str_eq(out.data, "/v3/secrets/raw/..%2FKEY%20x");
    cf_buf_release(&out);
}

Test(url, build_with_query)
{
    struct cf_buf out;
    struct cf_err err;
    const struct cf_query_param query[] = {
        {"workspaceId", "p 1"}, {"skipped", NULL}, {"secretPath", "/a/b"},
        {"x&y", "1=2"},         {NULL, NULL},
    };
    cf_buf_init(&out, 0);
    cr_assert_eq(cf_client_build_url("http://h:1/api", "/v3/secrets/raw", query, &out, &err),
                 CF_OK);
    cr_expect_str_eq(
        out.data,
        "http://h:1/api/v3/secrets/raw?workspaceId=p%201&secretPath=%2Fa%2Fb&x%26y=1%3D2");
    cr_assert_eq(cf_client_build_url("http://h:1/api", "/v1/workspace", NULL, &out, &err), CF_OK);
    cr_expect_str_eq(out.data, "http://h:1/api/v1/workspace");
    const struct cf_query_param none[] = {{"a", NULL}, {NULL, NULL}};
    cr_assert_eq(cf_client_build_url("http://h/api", "/x", none, &out, &err), CF_OK);
    cr_expect_str_eq(out.data, "http://h/api/x");
    cr_expect_eq(cf_client_build_url("http://h/api", "v1/x", NULL, &out, &err), CF_EINVAL);
    cf_buf_release(&out);
}

/* ---- domain normalisation -------------------------------------------------------------------- */

struct domain_case {
    const char *in;
    const char *out; /* NULL: refused */
};

Test(domain, normalise_table)
{
    static const struct domain_case cases[] = {
        {"http://127.0.0.1:8080", "http://127.0.0.1:8080/api"},
        {"http://127.0.0.1:8080/", "http://127.0.0.1:8080/api"},
        {"https://coffer.example.com/api", "https://coffer.example.com/api"},
        {"https://coffer.example.com/api/", "https://coffer.example.com/api"},
        {"https://coffer.example.com/api//", "https://coffer.example.com/api"},
        {"  https://h/prefix  ", "https://h/prefix/api"},
        {"HTTPS://h", "HTTPS://h/api"},
        {"https://h/myapi", "https://h/myapi/api"},
        {"https://api.example.com", "https://api.example.com/api"},
        {"https://h/api/v1", "https://h/api/v1/api"},
        {"coffer.example.com", NULL},
        {"ftp://h", NULL},
        {"http://", NULL},
        {"http:///api", NULL},
        {"https://h/?x=1", NULL},
        {"https://h/#frag", NULL},
        {"https://h/a b", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        struct cf_buf out;
        struct cf_err err;
        cf_buf_init(&out, 0);
        cf_err_clear(&err);
        enum cf_rc rc = cf_client_normalize_domain(cases[i].in, &out, &err);
        if (cases[i].out) {
            cr_expect_eq(rc, CF_OK, "case %zu '%s': %s", i, cases[i].in, err.msg);
            cr_expect_str_eq(out.data ? out.data : "", cases[i].out, "case %zu", i);
        } else {
            cr_expect_eq(rc, CF_EINVAL, "case %zu '%s' should be refused", i, cases[i].in);
            cr_expect_neq(err.msg[0], '\0');
        }
        cf_buf_release(&out);
    }
}

Test(domain, client_uses_default_and_given)
{
    struct cf_client *client = NULL;
    struct cf_err err;
    cr_assert_eq(cf_client_global_init(&err), CF_OK);
    cr_assert_eq(cf_client_new(NULL, &client, &err), CF_OK);
    cr_expect_str_eq(cf_client_base_url(client), "http://127.0.0.1:8080/api");
    cf_client_free(client);
    struct cf_client_options options = {.domain = "https://x.example/", .token = "t0k"};
    cr_assert_eq(cf_client_new(&options, &client, &err), CF_OK);
    cr_expect_str_eq(cf_client_base_url(client), "https://x.example/api");
    cf_client_free(client);
    options.token = "bad\r\nX-Injected: 1";
    cr_expect_eq(cf_client_new(&options, &client, &err), CF_EINVAL);
    cr_expect_null(client);
    cr_expect_null(strstr(err.msg, "Injected"), "the token must not be echoed");
    options.token = "";
    cr_expect_eq(cf_client_new(&options, &client, &err), CF_EINVAL);
}

Test(status, maps_http_statuses)
{
    cr_expect_eq(cf_client_status_rc(200), CF_OK);
    cr_expect_eq(cf_client_status_rc(204), CF_OK);
    cr_expect_eq(cf_client_status_rc(400), CF_EINVAL);
    cr_expect_eq(cf_client_status_rc(401), CF_EUNAUTH);
    cr_expect_eq(cf_client_status_rc(403), CF_EFORBIDDEN);
    cr_expect_eq(cf_client_status_rc(404), CF_ENOTFOUND);
    cr_expect_eq(cf_client_status_rc(409), CF_ECONFLICT);
    cr_expect_eq(cf_client_status_rc(413), CF_ETOOLARGE);
    cr_expect_eq(cf_client_status_rc(422), CF_EVALIDATION);
    cr_expect_eq(cf_client_status_rc(503), CF_EUNAVAIL);
    cr_expect_eq(cf_client_status_rc(500), CF_EINTERNAL);
    cr_expect_eq(cf_client_status_rc(302), CF_EINTERNAL);
}

/* ---- requests against a one-shot loopback server --------------------------------------------- */

struct fake_server {
    int listener;
    int port;
    char reply[4096];   /* the whole HTTP response to send */
    char request[8192]; /* what the client sent */
    size_t request_len;
    pthread_t thread;
};

static void *serve_once(void *arg)
{
    struct fake_server *server = arg;
    int conn = accept(server->listener, NULL, NULL);
    if (conn < 0)
        return NULL;
    /* Read the head, then as much body as Content-Length says. */
    for (;;) {
        ssize_t n = read(conn, server->request + server->request_len,
                         sizeof(server->request) - 1 - server->request_len);
        if (n <= 0)
            break;
        server->request_len += (size_t)n;
        server->request[server->request_len] = '\0';
        char *head_end = strstr(server->request, "\r\n\r\n");
        if (!head_end)
            continue;
        size_t body_len = 0;
        char *cl = strcasestr(server->request, "\r\nContent-Length:");
        if (cl && cl < head_end)
            body_len = strtoul(cl + 17, NULL, 10);
        if (server->request_len >= (size_t)(head_end + 4 - server->request) + body_len)
            break;
    }
    ssize_t unused = write(conn, server->reply, strlen(server->reply));
    (void)unused;
    close(conn);
    return NULL;
}

/* Serves one request, answering "HTTP/1.1 <status>", the extra header lines (each ending in \r\n)
 * and body. */
static void fake_start(struct fake_server *server, const char *status, const char *headers,
                       const char *body)
{
    struct sockaddr_in addr = {0};
    socklen_t len = sizeof(addr);
    memset(server, 0, sizeof(*server));
    snprintf(server->reply, sizeof(server->reply),
             "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n%s", status, headers,
             strlen(body), body);
    server->listener = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(server->listener, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(server->listener, (struct sockaddr *)&addr, sizeof(addr)), 0);
    cr_assert_eq(listen(server->listener, 4), 0);
    cr_assert_eq(getsockname(server->listener, (struct sockaddr *)&addr, &len), 0);
    server->port = ntohs(addr.sin_port);
    cr_assert_eq(pthread_create(&server->thread, NULL, serve_once, server), 0);
}

static void fake_stop(struct fake_server *server)
{
    pthread_join(server->thread, NULL);
    close(server->listener);
}

static struct cf_client *client_for(int port, const char *token)
{
    char domain[64];
    struct cf_client *client = NULL;
    struct cf_err err;
    snprintf(domain, sizeof(domain), "http://127.0.0.1:%d", port);
    struct cf_client_options options = {.domain = domain, .token = token, .timeout_ms = 5000};
    cr_assert_eq(cf_client_global_init(&err), CF_OK);
    cr_assert_eq(cf_client_new(&options, &client, &err), CF_OK, "%s", err.msg);
    return client;
}

Test(request, sends_headers_and_body_and_parses_answer)
{
    struct fake_server server;
    fake_start(&server, "200 OK", "Content-Type: application/json\r\nX-Request-Id: req-42\r\n",
               "{\"secret\":{\"secretKey\":\"A\"}}");
    struct cf_client *client = client_for(server.port, "tok-123");
    json_t *body = json_pack("{s:s, s:[{s:s}]}", "mode", "upsert", "secrets", "secretKey", "A b");
    const struct cf_query_param query[] = {{"workspaceId", "p/1"}, {NULL, NULL}};
    struct cf_response resp = CF_RESPONSE_INIT;
    struct cf_err err;
    cf_err_clear(&err);
    enum cf_rc rc =
        cf_client_request(client, "PATCH", "/v3/secrets/batch/raw", query, body, &resp, &err);
    fake_stop(&server);
    cr_assert_eq(rc, CF_OK, "%s", err.msg);
    cr_expect_eq(resp.status, 200);
    cr_expect_str_eq(resp.request_id, "req-42");
    cr_expect_str_eq(
        json_string_value(json_object_get(json_object_get(resp.json, "secret"), "secretKey")), "A");
    cr_expect_not_null(
        strstr(server.request, "PATCH /api/v3/secrets/batch/raw?workspaceId=p%2F1 HTTP/1.1\r\n"));
    cr_expect_not_null(strstr(server.request, "\r\nAuthorization: Bearer tok-123\r\n"));
    cr_expect_not_null(strstr(server.request, "\r\nUser-Agent: coffer-cli/" COFFER_VERSION "\r\n"));
    cr_expect_not_null(strstr(server.request, "\r\nContent-Type: application/json\r\n"));
    cr_expect_not_null(strstr(
        server.request, "\r\n\r\n{\"mode\":\"upsert\",\"secrets\":[{\"secretKey\":\"A b\"}]}"));
    cf_response_release(&resp);
    cr_expect_null(resp.json);
    json_decref(body);
    cf_client_free(client);
}

Test(request, get_without_token_sends_no_authorization)
{
    struct fake_server server;
    fake_start(&server, "200 OK", "", "{}");
    struct cf_client *client = client_for(server.port, NULL);
    struct cf_response resp = CF_RESPONSE_INIT;
    struct cf_err err;
    enum cf_rc rc = cf_client_request(client, "GET", "/status", NULL, NULL, &resp, &err);
    fake_stop(&server);
    cr_assert_eq(rc, CF_OK, "%s", err.msg);
    cr_expect_not_null(strstr(server.request, "GET /api/status HTTP/1.1\r\n"));
    cr_expect_null(strcasestr(server.request, "Authorization:"));
    cr_expect_null(strcasestr(server.request, "Content-Type:"));
    cf_response_release(&resp);
    cf_client_free(client);
}

Test(request, conditional_get_304_and_etag)
{
    struct fake_server server;
    struct cf_response resp = CF_RESPONSE_INIT;
    struct cf_err err;
    cf_err_clear(&err);
    fake_start(&server, "304 Not Modified", "ETag: \"abc123\"\r\n", "");
    struct cf_client *client = client_for(server.port, "tok-9");
    cr_expect_str_eq(cf_client_token(client), "tok-9");
    enum cf_rc rc =
        cf_client_get_if_none_match(client, "/v3/secrets/raw", NULL, "\"abc123\"", &resp, &err);
    fake_stop(&server);
    cr_assert_eq(rc, CF_OK, "%s", err.msg);
    cr_expect_eq(resp.status, 304);
    cr_expect_null(resp.json);
    cr_expect_str_eq(resp.etag, "\"abc123\"");
    cr_expect_not_null(strstr(server.request, "\r\nIf-None-Match: \"abc123\"\r\n"));
    cf_response_release(&resp);

    /* A 200 carries its new tag; without a known tag no If-None-Match is sent. */
    fake_start(&server, "200 OK", "ETag: W/\"v2\"\r\n", "{\"secrets\":[]}");
    cf_client_free(client);
    client = client_for(server.port, "tok-9");
    rc = cf_client_get_if_none_match(client, "/v3/secrets/raw", NULL, NULL, &resp, &err);
    fake_stop(&server);
    cr_assert_eq(rc, CF_OK, "%s", err.msg);
    cr_expect_eq(resp.status, 200);
    cr_expect_not_null(resp.json);
    cr_expect_str_eq(resp.etag, "W/\"v2\"");
    cr_expect_null(strcasestr(server.request, "If-None-Match"));
    cf_response_release(&resp);

    /* A tag that would split the header is refused before anything is sent. */
    rc = cf_client_get_if_none_match(client, "/v3/secrets/raw", NULL, "\"a\"\r\nX-Evil: 1", &resp,
                                     &err);
    cr_expect_eq(rc, CF_EINVAL);
    cf_client_free(client);
}

Test(request, error_body_gives_message_status_and_request_id)
{
    struct fake_server server;
    fake_start(
        &server, "404 Not Found", "",
        "{\"reqId\":\"abc123\",\"statusCode\":404,\"error\":\"NotFound\",\"message\":\"Secret "
        "with name 'NOPE' not found\"}");
    struct cf_client *client = client_for(server.port, "tok-123");
    struct cf_response resp = CF_RESPONSE_INIT;
    struct cf_err err;
    enum cf_rc rc =
        cf_client_request(client, "GET", "/v3/secrets/raw/NOPE", NULL, NULL, &resp, &err);
    fake_stop(&server);
    cr_expect_eq(rc, CF_ENOTFOUND);
    cr_expect_eq(resp.status, 404);
    cr_expect_str_eq(err.msg, "Secret with name 'NOPE' not found");
    cr_expect_str_eq(resp.request_id, "abc123"); /* from the body when the header is missing */
    cf_response_release(&resp);
    cf_client_free(client);
}

Test(request, non_json_error_is_described)
{
    struct fake_server server;
    fake_start(&server, "502 Bad Gateway", "", "<html></html>");
    struct cf_client *client = client_for(server.port, "tok-123");
    struct cf_response resp = CF_RESPONSE_INIT;
    struct cf_err err;
    enum cf_rc rc = cf_client_request(client, "GET", "/v1/workspace", NULL, NULL, &resp, &err);
    fake_stop(&server);
    cr_expect_eq(rc, CF_EINTERNAL);
    cr_expect_eq(resp.status, 502);
    cr_expect_not_null(strstr(err.msg, "HTTP 502"), "%s", err.msg);
    cf_response_release(&resp);
    cf_client_free(client);
}

Test(request, connection_failure_names_url_not_token)
{
    /* A port nobody listens on: bind, learn the port, close. */
    struct fake_server server;
    memset(&server, 0, sizeof(server));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    struct cf_client *client = client_for(ntohs(addr.sin_port), "very-secret-token");
    struct cf_response resp = CF_RESPONSE_INIT;
    struct cf_err err;
    const struct cf_query_param query[] = {{"workspaceId", "hidden-query"}, {NULL, NULL}};
    enum cf_rc rc = cf_client_request(client, "GET", "/v1/workspace", query, NULL, &resp, &err);
    char url[64];
    /* the server by its origin, and the cause in words */
    snprintf(url, sizeof(url), "nothing is listening at http://127.0.0.1:%d ",
             ntohs(addr.sin_port));
    cr_expect_eq(rc, CF_EIO);
    cr_expect_eq(resp.status, 0);
    cr_expect_not_null(strstr(err.msg, url), "%s", err.msg);
    cr_expect_null(strstr(err.msg, "very-secret-token"));
    cr_expect_null(strstr(err.msg, "hidden-query"));
    cf_response_release(&resp);
    cf_client_free(client);
}

Test(request_url, absolute_url_own_authorization_and_extra_headers)
{
    struct fake_server server;
    fake_start(&server, "200 OK", "Content-Type: application/json\r\n",
               "{\"oidcToken\":\"a.b.c\"}");
    /* The client's own token and base URL are not used. */
    struct cf_client *client = client_for(1, "client-token");
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/org/_apis/oidctoken?api-version=7.1",
             server.port);
    const char *const extra[] = {"X-TFS-FedAuthRedirect: Suppress", NULL};
    struct cf_response resp = CF_RESPONSE_INIT;
    struct cf_err err;
    cf_err_clear(&err);
    enum cf_rc rc =
        cf_client_request_url(client, "POST", url, "Bearer job-token", extra, NULL, &resp, &err);
    fake_stop(&server);
    cr_assert_eq(rc, CF_OK, "%s", err.msg);
    cr_expect_str_eq(json_string_value(json_object_get(resp.json, "oidcToken")), "a.b.c");
    cr_expect_not_null(
        strstr(server.request, "POST /org/_apis/oidctoken?api-version=7.1 HTTP/1.1"));
    cr_expect_not_null(strstr(server.request, "\r\nAuthorization: Bearer job-token\r\n"));
    cr_expect_not_null(strstr(server.request, "\r\nX-TFS-FedAuthRedirect: Suppress\r\n"));
    cr_expect_null(strstr(server.request, "client-token"));
    cf_response_release(&resp);
    cf_client_free(client);
}

Test(request_url, refusals_name_the_host_never_the_credential)
{
    struct cf_client *client = client_for(1, NULL);
    struct cf_response resp = CF_RESPONSE_INIT;
    struct cf_err err;
    cr_expect_eq(cf_client_request_url(client, "GET", "ftp://h/x", "Bearer s3cret-cred", NULL, NULL,
                                       &resp, &err),
                 CF_EINVAL);
    cr_expect_null(strstr(err.msg, "s3cret-cred"));
    cr_expect_eq(
        cf_client_request_url(client, "GET", "http://h/x y", NULL, NULL, NULL, &resp, &err),
        CF_EINVAL);
    cr_expect_eq(cf_client_request_url(client, "GET", "http://h/x", "Bearer a\r\nX: y", NULL, NULL,
                                       &resp, &err),
                 CF_EINVAL);
    cr_expect_null(strstr(err.msg, "X: y"));
    /* Nobody listens on port 1: the message names scheme and host, not the path or query. */
    cr_expect_eq(cf_client_request_url(client, "GET", "http://127.0.0.1:1/long/path?q=hidden",
                                       "Bearer s3cret-cred", NULL, NULL, &resp, &err),
                 CF_EIO);
    cr_expect_not_null(strstr(err.msg, "at http://127.0.0.1:1 "), "%s", err.msg);
    cr_expect_null(strstr(err.msg, "hidden"));
    cr_expect_null(strstr(err.msg, "s3cret-cred"));
    cf_response_release(&resp);
    cf_client_free(client);
}

Test(request_url, answer_larger_than_the_limit_is_refused)
{
    struct fake_server server;
    char body[2048];
    memset(body, 'x', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';
    fake_start(&server, "200 OK", "", body);
    struct cf_client *client = NULL;
    struct cf_err err;
    struct cf_client_options options = {.max_response = 1024, .timeout_ms = 5000};
    cr_assert_eq(cf_client_new(&options, &client, &err), CF_OK, "%s", err.msg);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/token", server.port);
    struct cf_response resp = CF_RESPONSE_INIT;
    enum cf_rc rc = cf_client_request_url(client, "GET", url, NULL, NULL, NULL, &resp, &err);
    fake_stop(&server);
    cr_expect_eq(rc, CF_ETOOLARGE, "%s", err.msg);
    cr_expect_not_null(strstr(err.msg, "larger than 1024 bytes"), "%s", err.msg);
    cf_response_release(&resp);
    cf_client_free(client);
}

/* ---- option parsing -------------------------------------------------------------------------- */

struct parsed {
    const char *env;
    const char *comment;
    bool recursive;
    struct cf_opt_int version;
};

static enum cf_rc parse(struct parsed *p, char **argv, int argc, struct cf_args *args,
                        struct cf_err *err)
{
    const struct cf_opt opts[] = {
        {"env", CF_OPT_STRING, &p->env},
        {"comment", CF_OPT_STRING, &p->comment},
        {"recursive", CF_OPT_BOOL, &p->recursive},
        {"version", CF_OPT_INT, &p->version},
    };
    memset(p, 0, sizeof(*p));
    cf_err_clear(err);
    return cf_opt_parse(argc, argv, opts, CF_ARRAY_SIZE(opts), args, err);
}

Test(options, both_forms_and_positionals)
{
    char *argv[] = {"set",
                    "A=1",
                    "--env",
                    "prod",
                    "B=2",
                    "--comment=x=y",
                    "--recursive",
                    "--version=7",
                    "-",
                    "--",
                    "--not-an-option",
                    NULL};
    struct parsed p;
    struct cf_args args = {0};
    struct cf_err err;
    cr_assert_eq(parse(&p, argv, 11, &args, &err), CF_OK, "%s", err.msg);
    cr_expect_str_eq(p.env, "prod");
    cr_expect_str_eq(p.comment, "x=y");
    cr_expect(p.recursive);
    cr_expect(p.version.set);
    cr_expect_eq(p.version.value, 7);
    cr_assert_eq(args.count, 4);
    cr_expect_str_eq(args.items[0], "A=1");
    cr_expect_str_eq(args.items[1], "B=2");
    cr_expect_str_eq(args.items[2], "-");
    cr_expect_str_eq(args.items[3], "--not-an-option");
    cf_args_release(&args);
}

Test(options, bool_values_and_last_wins)
{
    char *argv[] = {"list", "--recursive=true", "--recursive=false", "--env=a", "--env", "b", NULL};
    struct parsed p;
    struct cf_args args = {0};
    struct cf_err err;
    cr_assert_eq(parse(&p, argv, 6, &args, &err), CF_OK, "%s", err.msg);
    cr_expect_not(p.recursive);
    cr_expect_str_eq(p.env, "b");
    cr_expect_not(p.version.set);
    cr_expect_eq(args.count, 0);
    cf_args_release(&args);
}

struct bad_case {
    char *arg1;
    char *arg2;
    const char *message_part;
};

Test(options, errors)
{
    static const struct bad_case cases[] = {
        {"--unknown", NULL, "unknown option '--unknown'"},
        {"--tokn=s3cr3t-value", NULL, "unknown option '--tokn'"},
        {"-x", NULL, "unknown option '-x'"},
        {"--env", NULL, "needs a value"},
        {"--version", "seven", "whole number"},
        {"--version=-1", NULL, "whole number"},
        {"--recursive=yes", NULL, "true or false"},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        char *argv[] = {"cmd", cases[i].arg1, cases[i].arg2, NULL};
        struct parsed p;
        struct cf_args args = {0};
        struct cf_err err;
        cr_expect_eq(parse(&p, argv, cases[i].arg2 ? 3 : 2, &args, &err), CF_EINVAL, "case %zu", i);
        cr_expect_not_null(strstr(err.msg, cases[i].message_part), "case %zu: %s", i, err.msg);
        cr_expect_null(strstr(err.msg, "s3cr3t"), "an option's value must not be echoed");
        cf_args_release(&args);
    }
}

Test(options, wants_help)
{
    char *a[] = {"set", "A=1", "--help", NULL};
    char *b[] = {"set", "-h", NULL};
    char *c[] = {"set", "--", "--help", NULL};
    char *d[] = {"set", "A=--help", NULL};
    cr_expect(cf_opt_wants_help(3, a));
    cr_expect(cf_opt_wants_help(2, b));
    cr_expect_not(cf_opt_wants_help(3, c));
    cr_expect_not(cf_opt_wants_help(2, d));
}

/* ---- command context ------------------------------------------------------------------------- */

static const struct cf_cli_spec scoped_spec = {
    "usage: coffer test\n", CF_CLI_PROJECT | CF_CLI_ENV | CF_CLI_PATH, 0, 1, NULL, 0};

Test(context, environment_fallbacks_and_defaults)
{
    setenv("INFISICAL_PROJECT_ID", "proj-from-infisical", 1);
    unsetenv("COFFER_PROJECT_ID");
    setenv("INFISICAL_API_URL", "https://infisical.example", 1);
    unsetenv("COFFER_API_URL");
    setenv("COFFER_TOKEN", "env-token", 1);
    char *argv[] = {"list", NULL};
    struct cf_cli cli;
    int status = -1;
    cr_assert(cf_cli_begin(&cli, 1, argv, &scoped_spec, &status));
    cr_expect_str_eq(cli.project_id, "proj-from-infisical");
    cr_expect_str_eq(cli.env, "dev");
    cr_expect_str_eq(cli.path, "/");
    cr_expect_not(cli.json);
    cr_expect_str_eq(cf_client_base_url(cli.client), "https://infisical.example/api");
    cf_cli_end(&cli);

    setenv("COFFER_PROJECT_ID", "proj-from-coffer", 1);
    setenv("COFFER_API_URL", "http://coffer.example:9/api/", 1);
    char *argv2[] = {"list", "--env=prod", "--path", "/a", "--output=json", NULL};
    cr_assert(cf_cli_begin(&cli, 5, argv2, &scoped_spec, &status));
    cr_expect_str_eq(cli.project_id, "proj-from-coffer");
    cr_expect_str_eq(cli.env, "prod");
    cr_expect_str_eq(cli.path, "/a");
    cr_expect(cli.json);
    cr_expect_str_eq(cf_client_base_url(cli.client), "http://coffer.example:9/api");
    cf_cli_end(&cli);
}

Test(context, token_from_argv_is_wiped)
{
    char token_arg[] = "--token=argv-secret-token";
    char domain_arg[] = "--domain=http://127.0.0.1:9";
    char *argv[] = {"list", "--projectId", "p", token_arg, domain_arg, NULL};
    struct cf_cli cli;
    int status = -1;
    cr_assert(cf_cli_begin(&cli, 5, argv, &scoped_spec, &status));
    cr_expect_str_eq(token_arg, "--token=");
    for (size_t i = 8; i < sizeof(token_arg); i++)
        cr_expect_eq(token_arg[i], '\0', "byte %zu of the token is not wiped", i);
    cf_cli_end(&cli);
}

Test(context, usage_errors_exit_2)
{
    setenv("COFFER_TOKEN", "env-token", 1);
    unsetenv("COFFER_PROJECT_ID");
    unsetenv("INFISICAL_PROJECT_ID");
    struct cf_cli cli;
    int status = -1;
    char *no_project[] = {"list", NULL};
    cr_expect_not(cf_cli_begin(&cli, 1, no_project, &scoped_spec, &status));
    cr_expect_eq(status, CF_EXIT_USAGE);
    cf_cli_end(&cli);
    char *bad_output[] = {"list", "--projectId=p", "--output", "yaml", NULL};
    cr_expect_not(cf_cli_begin(&cli, 4, bad_output, &scoped_spec, &status));
    cr_expect_eq(status, CF_EXIT_USAGE);
    cf_cli_end(&cli);
    char *too_many[] = {"list", "--projectId=p", "a", "b", NULL};
    cr_expect_not(cf_cli_begin(&cli, 4, too_many, &scoped_spec, &status));
    cr_expect_eq(status, CF_EXIT_USAGE);
    cf_cli_end(&cli);
    char *bad_domain[] = {"list", "--projectId=p", "--domain", "example.com", NULL};
    cr_expect_not(cf_cli_begin(&cli, 4, bad_domain, &scoped_spec, &status));
    cr_expect_eq(status, CF_EXIT_USAGE);
    cf_cli_end(&cli);
    unsetenv("COFFER_TOKEN");
    unsetenv("INFISICAL_TOKEN");
    char *no_token[] = {"list", "--projectId=p", NULL};
    cr_expect_not(cf_cli_begin(&cli, 2, no_token, &scoped_spec, &status));
    cr_expect_eq(status, CF_EXIT_USAGE);
    cf_cli_end(&cli);
    char *help[] = {"list", "--bogus", "--help", NULL};
    cr_expect_not(cf_cli_begin(&cli, 3, help, &scoped_spec, &status));
    cr_expect_eq(status, CF_EXIT_OK);
    cf_cli_end(&cli);
}

/* ---- output ---------------------------------------------------------------------------------- */

static char *render(struct cf_table *table)
{
    struct cf_buf out;
    cf_buf_init(&out, 0);
    cr_assert_eq(cf_table_render(table, &out), CF_OK);
    return cf_buf_detach(&out, NULL);
}

Test(table, aligns_columns_without_trailing_blanks)
{
    const char *headers[] = {"KEY", "VALUE", "VERSION"};
    struct cf_table *table = cf_table_new(3, headers);
    cr_assert_not_null(table);
    const char *row1[] = {"DATABASE_URL", "********", "12"};
    const char *row2[] = {"A", NULL, ""};
    const char *row3[] = {"B", "x", "3"};
    cr_assert_eq(cf_table_add(table, row1), CF_OK);
    cr_assert_eq(cf_table_add(table, row2), CF_OK);
    cr_assert_eq(cf_table_add(table, row3), CF_OK);
    cr_expect_eq(cf_table_rows(table), 3);
    char *text = render(table);
    cr_expect_str_eq(text, "KEY           VALUE     VERSION\n"
                           "DATABASE_URL  ********  12\n"
                           "A\n"
                           "B             x         3\n");
    free(text);
    cf_table_free(table);
}

Test(table, utf8_width_and_escaped_cells)
{
    const char *headers[] = {"NAME", "ID"};
    struct cf_table *table = cf_table_new(2, headers);
    const char *row1[] = {"caf\xc3\xa9", "1"};
    const char *row2[] = {"a\nb\x1b[31m", "2"};
    cr_assert_eq(cf_table_add(table, row1), CF_OK);
    cr_assert_eq(cf_table_add(table, row2), CF_OK);
    char *text = render(table);
    cr_expect_str_eq(text, "NAME          ID\n"
                           "caf\xc3\xa9          1\n"
                           "a\\nb\\x1b[31m  2\n");
    free(text);
    cf_table_free(table);
}

Test(output, escape)
{
    struct cf_buf out;
    cf_buf_init(&out, 0);
    cr_assert_eq(cf_cli_escape(&out, "-----BEGIN-----\r\nline\tx\x7f\xc2\x9b"
                                     "2J \xc3\xa9"),
                 CF_OK);
    cr_expect_str_eq(out.data, "-----BEGIN-----\\r\\nline\\tx\\x7f\\x9b2J \xc3\xa9");
    cf_buf_release(&out);
}

Test(output, masking_hides_value_and_length)
{
    const char *values[] = {"hunter2", "a much longer secret value, with spaces", "",
                            "line1\nline2"};
    for (size_t i = 0; i < CF_ARRAY_SIZE(values); i++) {
        struct cf_buf out;
        cf_buf_init(&out, 0);
        cr_assert_eq(cf_cli_display_value(&out, values[i], false), CF_OK);
        cr_expect_str_eq(out.data, CF_CLI_MASK, "value %zu", i);
        cf_buf_release(&out);
    }
    struct cf_buf shown;
    cf_buf_init(&shown, 0);
    cr_assert_eq(cf_cli_display_value(&shown, "line1\nline2", true), CF_OK);
    cr_expect_str_eq(shown.data, "line1\\nline2");
    cf_buf_reset(&shown);
    cr_assert_eq(cf_cli_display_value(&shown, NULL, true), CF_OK);
    cr_expect_eq(shown.len, 0);
    cf_buf_release(&shown);
}

struct path_case {
    const char *in;
    const char *out;
};

Test(output, normalize_path)
{
    static const struct path_case cases[] = {
        {"/", "/"},
        {"", "/"},
        {"  ", "/"},
        {"backend", "/backend"},
        {"/backend/", "/backend"},
        {" /a/b// ", "/a/b"},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        struct cf_buf out;
        cf_buf_init(&out, 0);
        cr_assert_eq(cf_cli_normalize_path(&out, cases[i].in), CF_OK);
        cr_expect_str_eq(out.data, cases[i].out, "case %zu", i);
        cf_buf_release(&out);
    }
}

Test(output, json_helpers)
{
    json_t *obj = json_pack("{s:s, s:i, s:n}", "name", "x", "version", 3, "nothing");
    char buf[24];
    cr_expect_str_eq(cf_cli_str(obj, "name"), "x");
    cr_expect_str_eq(cf_cli_str(obj, "missing"), "");
    cr_expect_str_eq(cf_cli_str(obj, "version"), "");
    cr_expect_str_eq(cf_cli_int_str(obj, "version", buf, sizeof(buf)), "3");
    cr_expect_str_eq(cf_cli_int_str(obj, "nothing", buf, sizeof(buf)), "");
    json_decref(obj);
}

/* ---- help: suggestions, synopsis, table widths ----------------------------------------------- */

Test(help, nearest_name_only_when_close)
{
    static const char *const names[] = {"env", "path", "projectId", "show-values", "recursive"};
    static const struct {
        const char *word;
        const char *want; /* NULL: no suggestion */
    } cases[] = {
        {"environment", "env"},
        {"projectid", "projectId"},
        {"show-value", "show-values"},
        {"recursiev", "recursive"},
        {"pth", "path"},
        {"zzzzqqq", NULL},
        {"e", NULL},
        {"values", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        const char *got = cf_cli_nearest(cases[i].word, strlen(cases[i].word), names, 5);
        if (cases[i].want)
            cr_expect(got && strcmp(got, cases[i].want) == 0, "%s -> %s", cases[i].word,
                      got ? got : "(none)");
        else
            cr_expect_null(got, "%s -> %s", cases[i].word, got ? got : "(none)");
    }
}

Test(help, unknown_option_names_the_nearest)
{
    const char *env = NULL;
    bool flag = false;
    const struct cf_opt opts[] = {{"env", CF_OPT_STRING, &env}, {"plain", CF_OPT_BOOL, &flag}};
    char *argv[] = {"get", "--plian", NULL};
    struct cf_args args;
    struct cf_err err;
    cr_expect_eq(cf_opt_parse(2, argv, opts, 2, &args, &err), CF_EINVAL);
    cr_expect_str_eq(err.msg, "unknown option '--plian' (did you mean --plain?)");
    cf_args_release(&args);
}

static char *synopsis_of(const char *usage, const struct cf_cli_flag *flags, size_t nflags)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cr_assert_not_null(out);
    cf_cli_print_synopsis(out, usage, flags, nflags);
    fclose(out);
    return text;
}

Test(help, synopsis_lists_every_flag_once)
{
    const struct cf_cli_flag flags[] = {
        {"plain", false, ""},      {"env", true, "SLUG"}, {"path", true, "PATH"},
        {"projectId", true, "ID"}, {"help", false, ""},
    };
    char *text =
        synopsis_of("usage: coffer secrets get KEY... [--plain] [options]\n\nGets.\n", flags, 5);
    cr_expect_str_eq(text, "usage: coffer secrets get KEY... [--plain] [--env SLUG] [--path PATH]\n"
                           "                          [--projectId ID]\n");
    free(text);
    text = synopsis_of("usage: coffer x\n", flags, 2);
    cr_expect_str_eq(text, "usage: coffer x [--plain] [--env SLUG]\n");
    free(text);
}

Test(help, table_fits_the_width_with_an_ellipsis)
{
    static const char *const headers[] = {"SEQ", "NAME", "WHERE"};
    const char *row[] = {"1", "a-very-long-name-that-will-not-fit", "dev:/deep/folder/path"};
    struct cf_table *table = cf_table_new(3, headers);
    cr_assert_not_null(table);
    cr_assert_eq(cf_table_add(table, row), CF_OK);
    cf_table_set_width(table, 30);
    char *text = render(table);
    /* 3 + 11 + 12 and two gaps of 2: the widest column gives way first, by turns */
    cr_expect_str_eq(text, "SEQ  NAME         WHERE\n"
                           "1    a-very-lon\xe2\x80\xa6  dev:/deep/f\xe2\x80\xa6\n");
    free(text);
    cf_table_set_width(table, 0);
    text = render(table);
    cr_expect_not_null(strstr(text, "a-very-long-name-that-will-not-fit  dev:/deep/folder/path"));
    free(text);
    cf_table_free(table);
}
