/* Unit tests for src/net: the destination policy (address classes, IPv4-mapped and NAT64 forms,
 * the --outbound-allow list and its bad inputs), URL redaction, the retry backoff, and the policy
 * applied after name resolution: a name that resolves to a refused address (CURLOPT_RESOLVE stands
 * in for DNS) gets no connection, while loopback stays reachable; and against a loopback server,
 * retries that wait out Retry-After, the user agent and the response cap. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "net/http.h"
#include "util/banned.h"
#include "util/str.h"

static void reset_allow(void)
{
    cf_net_set_allow(NULL, NULL);
}

TestSuite(net, .init = reset_allow, .fini = reset_allow);

Test(net, classifies_addresses)
{
    static const struct {
        const char *address;
        enum cf_net_class expected;
    } cases[] = {
        {"93.184.216.34", CF_NET_PUBLIC},
        {"2606:4700::1111", CF_NET_PUBLIC},
        {"127.0.0.1", CF_NET_LOOPBACK},
        {"127.255.0.9", CF_NET_LOOPBACK},
        {"::1", CF_NET_LOOPBACK},
        {"::ffff:127.0.0.1", CF_NET_LOOPBACK},
        {"10.1.2.3", CF_NET_PRIVATE},
        {"172.16.0.1", CF_NET_PRIVATE},
        {"172.31.255.255", CF_NET_PRIVATE},
        {"172.32.0.1", CF_NET_PUBLIC},
        {"192.168.1.1", CF_NET_PRIVATE},
        {"100.64.0.1", CF_NET_PRIVATE},
        {"fd12:3456::1", CF_NET_PRIVATE},
        {"169.254.169.254", CF_NET_METADATA},
        {"::ffff:169.254.169.254", CF_NET_METADATA},
        {"::ffff:a9fe:a9fe", CF_NET_METADATA},
        {"64:ff9b::169.254.169.254", CF_NET_METADATA},
        {"fd00:ec2::254", CF_NET_METADATA},
        {"100.100.100.200", CF_NET_METADATA},
        {"169.254.0.1", CF_NET_LINK_LOCAL},
        {"::ffff:169.254.1.1", CF_NET_LINK_LOCAL},
        {"fe80::1", CF_NET_LINK_LOCAL},
        {"febf::1", CF_NET_LINK_LOCAL},
        {"fec0::1", CF_NET_PUBLIC},
        {"0.0.0.0", CF_NET_UNSPECIFIED},
        {"::", CF_NET_UNSPECIFIED},
        {"::ffff:0.0.0.0", CF_NET_UNSPECIFIED},
        {"224.0.0.1", CF_NET_MULTICAST},
        {"255.255.255.255", CF_NET_MULTICAST},
        {"ff02::1", CF_NET_MULTICAST},
        {"localhost", CF_NET_INVALID},
        {"169.254.169.254/32", CF_NET_INVALID},
        {"", CF_NET_INVALID},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++)
        cr_expect_eq(cf_net_classify(cases[i].address), cases[i].expected, "%s: %s",
                     cases[i].address, cf_net_class_name(cf_net_classify(cases[i].address)));
    cr_expect_eq(cf_net_classify(NULL), CF_NET_INVALID);
}

Test(net, refuses_link_local_and_metadata_by_default)
{
    char why[CF_ERR_MSG_MAX] = "";
    cr_expect(cf_net_policy_allows(NULL, "127.0.0.1", why, sizeof(why)));
    cr_expect(cf_net_policy_allows("", "10.0.0.1", why, sizeof(why)));
    cr_expect(cf_net_policy_allows(NULL, "8.8.8.8", why, sizeof(why)));
    cr_expect(!cf_net_policy_allows(NULL, "169.254.169.254", why, sizeof(why)));
    cr_expect(strstr(why, "169.254.169.254") && strstr(why, "cloud metadata") &&
                  strstr(why, "--outbound-allow") && strstr(why, "outbound policy"),
              "%s", why);
    cr_expect(!cf_net_policy_allows(NULL, "fe80::1", why, sizeof(why)));
    cr_expect(strstr(why, "link-local"), "%s", why);
    cr_expect(!cf_net_policy_allows(NULL, "::ffff:169.254.169.254", why, sizeof(why)));
    cr_expect(!cf_net_policy_allows(NULL, "0.0.0.0", why, sizeof(why)));
    cr_expect(!cf_net_policy_allows(NULL, "not-an-address", why, sizeof(why)));
}

Test(net, allow_list_lets_chosen_ranges_through)
{
    char why[CF_ERR_MSG_MAX] = "";
    const char *allow = "169.254.0.0/16, fe80::/10";
    cr_expect(cf_net_policy_allows(allow, "169.254.169.254", why, sizeof(why)));
    cr_expect(cf_net_policy_allows(allow, "::ffff:169.254.169.254", why, sizeof(why)));
    cr_expect(cf_net_policy_allows(allow, "64:ff9b::a9fe:a9fe", why, sizeof(why)));
    cr_expect(cf_net_policy_allows(allow, "fe80::1", why, sizeof(why)));
    cr_expect(!cf_net_policy_allows(allow, "0.0.0.0", why, sizeof(why)));
    cr_expect(!cf_net_policy_allows("169.254.169.254", "169.254.169.253", why, sizeof(why)));
    cr_expect(cf_net_policy_allows("169.254.169.254", "169.254.169.254", why, sizeof(why)));
}

Test(net, allow_list_bad_input)
{
    struct cf_err err;
    char big[CF_NET_ALLOW_MAX + 10];
    cr_expect_eq(cf_net_allow_check("169.254.0.0/16,fe80::/10", &err), CF_OK);
    cr_expect_eq(cf_net_allow_check(" 169.254.169.254 ", &err), CF_OK);
    static const char *const bad[] = {
        "",           "metadata",       "169.254.0.0/33", "169.254.0.0/16,,10.0.0.1",
        "fe80::/129", "169.254.0.0/-1", "169.254.0.0/16,"};
    for (size_t i = 0; i < CF_ARRAY_SIZE(bad); i++) {
        cr_expect_eq(cf_net_allow_check(bad[i], &err), CF_EINVAL, "'%s' accepted", bad[i]);
        cr_expect(strstr(err.msg, "--outbound-allow"), "%s", err.msg);
    }
    memset(big, '1', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_expect_eq(cf_net_allow_check(big, &err), CF_EINVAL);
    cr_expect_eq(cf_net_allow_check(NULL, &err), CF_EINVAL);
    /* a refused list leaves the setting as it was */
    cr_expect_eq(cf_net_set_allow("169.254.0.0/16", &err), CF_OK);
    cr_expect_eq(cf_net_set_allow("nonsense", &err), CF_EINVAL);
}

Test(net, redacts_credentials_in_urls)
{
    static const struct {
        const char *url, *shown;
    } cases[] = {
        {"https://user:pass@example.com/hook?token=s3cret#frag", "https://example.com/hook"},
        {"https://example.com/services/T0/B0?sig=abc", "https://example.com/services/T0/B0"},
        {"http://127.0.0.1:8080/jwks", "http://127.0.0.1:8080/jwks"},
        {"smtp://mailer:pw@127.0.0.1:25", "smtp://127.0.0.1:25/"},
        {"not a url?key=s3cret", "not a url"},
        {"bad url user:pw@host/x?q", "host/x"},
    };
    for (size_t i = 0; i < CF_ARRAY_SIZE(cases); i++) {
        char out[128];
        cf_net_url_redact(cases[i].url, out, sizeof(out));
        cr_expect_str_eq(out, cases[i].shown, "%s", cases[i].url);
    }
}

Test(net, retry_backoff_doubles_and_honours_retry_after)
{
    cr_expect_eq(cf_http_retry_delay_ms(1, 100, 0), 100);
    cr_expect_eq(cf_http_retry_delay_ms(2, 100, 0), 200);
    cr_expect_eq(cf_http_retry_delay_ms(4, 100, 0), 800);
    cr_expect_eq(cf_http_retry_delay_ms(1, 0, 0), 500);
    cr_expect_eq(cf_http_retry_delay_ms(40, 1000, 0), 30000);
    cr_expect_eq(cf_http_retry_delay_ms(1, 100, 3), 3000);
    cr_expect_eq(cf_http_retry_delay_ms(1, 100, 100000), CF_NET_RETRY_AFTER_MAX_MS);
}

/* A transfer to name, which "resolves" to address; the error message or "" on success. */
static enum cf_rc perform_resolved(const char *address, int port, char *why, size_t size)
{
    char url[128], entry[160];
    struct cf_net_guard guard;
    struct cf_err err;
    struct curl_slist *resolve = NULL;
    enum cf_rc rc;
    CURL *curl = curl_easy_init();
    cr_assert(curl);
    snprintf(url, sizeof(url), "http://meta.test:%d/x", port);
    snprintf(entry, sizeof(entry), "meta.test:%d:%s", port, address);
    resolve = curl_slist_append(NULL, entry);
    struct cf_net_options net = {.url = url, .connect_timeout_ms = 1000, .timeout_ms = 2000};
    rc = cf_net_curl_setup(curl, &net, &guard, &err);
    cr_assert_eq(rc, CF_OK, "%s", err.msg);
    curl_easy_setopt(curl, CURLOPT_RESOLVE, resolve);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    CURLcode code = curl_easy_perform(curl);
    why[0] = '\0';
    if (code != CURLE_OK)
        cf_net_curl_error(code, &guard, why, size);
    rc = code == CURLE_OK ? CF_OK : guard.refused[0] ? CF_EFORBIDDEN : CF_EIO;
    curl_slist_free_all(resolve);
    curl_easy_cleanup(curl);
    return rc;
}

/* A loopback port where nothing listens. */
static int closed_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

Test(net, checks_the_resolved_address)
{
    char why[CF_ERR_MSG_MAX];
    struct cf_err err;
    int port = closed_port();

    cr_expect_eq(perform_resolved("169.254.169.254", port, why, sizeof(why)), CF_EFORBIDDEN);
    cr_expect(strstr(why, "outbound policy") && strstr(why, "--outbound-allow"), "%s", why);
    cr_expect_eq(perform_resolved("fe80::1", port, why, sizeof(why)), CF_EFORBIDDEN);
    cr_expect_eq(perform_resolved("::ffff:169.254.169.254", port, why, sizeof(why)), CF_EFORBIDDEN);
    /* loopback stays reachable: this fails only because nothing listens */
    cr_expect_eq(perform_resolved("127.0.0.1", port, why, sizeof(why)), CF_EIO);
    cr_expect(!strstr(why, "outbound policy"), "%s", why);
    /* allowed, the link-local address is tried (and fails for another reason) */
    cr_assert_eq(cf_net_set_allow("fe80::/10", &err), CF_OK);
    cr_expect_eq(perform_resolved("fe80::1", port, why, sizeof(why)), CF_EIO);
    cr_expect(!strstr(why, "outbound policy"), "%s", why);
}

Test(net, refuses_literal_addresses_before_any_proxy)
{
    static const char *const urls[] = {
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:169.254.169.254]/",
        "https://[fe80::1%25eth0]/",
        "http://0xa9fea9fe/",
    };
    struct cf_http_response resp;
    struct cf_err err;
    for (size_t i = 0; i < CF_ARRAY_SIZE(urls); i++) {
        struct cf_http_request req = {.net = {.url = urls[i]}};
        cr_expect_eq(cf_http_perform(&req, &resp, &err), CF_EFORBIDDEN, "%s", urls[i]);
        cr_expect(strstr(err.msg, "--outbound-allow"), "%s: %s", urls[i], err.msg);
        cf_http_response_release(&resp);
    }
    struct cf_http_request req = {.net = {.url = "not a url"}};
    cr_expect_eq(cf_http_perform(&req, &resp, &err), CF_EINVAL);
}

/* A loopback HTTP server answering its connections with the canned responses in order. */
struct canned {
    int fd;
    const char *const *responses;
    int served;
    char user_agent[64];
};

static void *serve(void *arg)
{
    struct canned *c = arg;
    for (; c->responses[c->served]; c->served++) {
        char request[4096];
        size_t len = 0;
        int conn = accept(c->fd, NULL, NULL);
        if (conn < 0)
            break;
        while (len < sizeof(request) - 1 && !strstr(request, "\r\n\r\n")) {
            ssize_t n = read(conn, request + len, sizeof(request) - 1 - len);
            if (n <= 0)
                break;
            len += (size_t)n;
            request[len] = '\0';
        }
        const char *ua = strstr(request, "User-Agent: ");
        if (ua)
            snprintf(c->user_agent, sizeof(c->user_agent), "%.*s", (int)strcspn(ua + 12, "\r"),
                     ua + 12);
        const char *answer = c->responses[c->served];
        cr_assert_eq(write(conn, answer, strlen(answer)), (ssize_t)strlen(answer));
        close(conn);
    }
    return NULL;
}

static int listen_loopback(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fd, 4), 0);
    return fd;
}

static int port_of(int fd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    return ntohs(sa.sin_port);
}

Test(net, retries_honour_retry_after_and_caps_hold)
{
    static const char *const responses[] = {
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n"
        "Connection: close\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: 20\r\nConnection: close\r\n\r\n01234567890123456789",
        NULL};
    struct canned c = {.fd = listen_loopback(), .responses = responses};
    char url[64];
    pthread_t thread;
    struct cf_http_response resp;
    struct cf_err err;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", port_of(c.fd));
    cr_assert_eq(pthread_create(&thread, NULL, serve, &c), 0);

    struct cf_http_request req = {.net = {.url = url}, .attempts = 3, .retry_base_ms = 10};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(cf_http_perform(&req, &resp, &err), CF_OK, "%s", err.msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_expect_eq(resp.status, 200);
    cr_expect_str_eq(resp.body, "hello");
    long waited_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    cr_expect(waited_ms >= 1000, "Retry-After: 1 not honoured (%ld ms)", waited_ms);
    cr_expect_str_eq(c.user_agent, "coffer/" COFFER_VERSION);
    cf_http_response_release(&resp);

    /* a response over its cap fails, and is not retried */
    req.attempts = 1;
    req.response_max = 10;
    cr_expect_eq(cf_http_perform(&req, &resp, &err), CF_EIO);
    cr_expect_str_eq(err.msg, "response over 10 bytes");
    pthread_join(thread, NULL);
    cr_expect_eq(c.served, 3);
    close(c.fd);
}

/* cf_net_curl_new initialises libcurl on first use: the first calls come from several threads at
 * once here (each Criterion test runs in a fresh process, so none came before), and every one of
 * them gets a working handle. */
static void *new_handle(void *arg)
{
    CURL **out = arg;
    struct cf_err err;
    cf_err_clear(&err);
    *out = cf_net_curl_new(&err);
    return NULL;
}

Test(net, curl_handles_from_racing_first_calls)
{
    pthread_t threads[8];
    CURL *handles[8] = {0};
    for (size_t i = 0; i < CF_ARRAY_SIZE(threads); i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, new_handle, &handles[i]), 0);
    for (size_t i = 0; i < CF_ARRAY_SIZE(threads); i++) {
        cr_assert_eq(pthread_join(threads[i], NULL), 0);
        cr_assert_not_null(handles[i], "thread %zu got no handle", i);
        cr_assert_eq(curl_easy_setopt(handles[i], CURLOPT_URL, "http://127.0.0.1:1/"), CURLE_OK);
        curl_easy_cleanup(handles[i]);
    }
}
