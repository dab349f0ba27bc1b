/*
 * The client's address: the peer, or behind a trusted proxy the first
 * untrusted X-Forwarded-For entry from the right. Event stream limits,
 * rate limits, the loopback-only default and the audit trail all use it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "http_internal.h"

static int parse_ip(const char *text, size_t len, int *family, unsigned char addr[16])
{
    char buf[64];

    while (len > 0 && (*text == ' ' || *text == '\t')) {
        text++;
        len--;
    }
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, addr) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, addr) == 1) {
        *family = AF_INET6;
        return 0;
    }
    return -1;
}

/* Joins every X-Forwarded-For line with commas, in order: HTTP reads
 * repeated lines as one list, and HAProxy adds its own line after any
 * line the client sent. */
static h2o_iovec_t forwarded_for(h2o_req_t *req)
{
    h2o_iovec_t all = {NULL, 0};

    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_X_FORWARDED_FOR, i)) != -1;) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (all.base == NULL) {
            all = v;
            continue;
        }
        char *joined = h2o_mem_alloc_pool(&req->pool, all.len + 1 + v.len);
        memcpy(joined, all.base, all.len);
        joined[all.len] = ',';
        memcpy(joined + all.len + 1, v.base, v.len);
        all = h2o_iovec_init(joined, all.len + 1 + v.len);
    }
    return all;
}

/*
 * Finds the client behind a trusted proxy: walking the list from the
 * right, the first entry that is not a trusted proxy. An entry that is
 * not an address makes the client unknown ("-"), never the proxy itself.
 * When every entry is trusted, the leftmost one is the client. Without
 * the header, a Forwarded header alone also makes it unknown; with no
 * header at all, the proxy is the client (its own health checks).
 */
static void forwarded_client(jw_app_t *app, h2o_req_t *req, char *out, size_t size)
{
    h2o_iovec_t xff = forwarded_for(req);
    size_t end = xff.len;

    if (xff.base == NULL) {
        if (jw_http_header(req, "forwarded").base != NULL)
            snprintf(out, size, "-");
        return;
    }
    for (;;) {
        size_t start = end;
        while (start > 0 && xff.base[start - 1] != ',')
            start--;

        int family;
        unsigned char addr[16];
        if (parse_ip(xff.base + start, end - start, &family, addr) != 0) {
            snprintf(out, size, "-");
            return;
        }
        inet_ntop(family, addr, out, (socklen_t)size);
        if (!jw_config_is_trusted_proxy(app->cfg, family, addr) || start == 0)
            return;
        end = start - 1;
    }
}

int jw_http_client_ip(jw_app_t *app, h2o_req_t *req, char *out, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    int family = ss.ss_family;
    unsigned char addr[16];

    snprintf(out, size, "-");
    if (len == 0)
        return 0;
    if (family == AF_INET)
        memcpy(addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    else
        memcpy(addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    inet_ntop(family, addr, out, (socklen_t)size);

    if (!jw_config_is_trusted_proxy(app->cfg, family, addr))
        return 0;
    forwarded_client(app, req, out, size);
    return 1;
}

int jw_http_ip_is_loopback(const char *ip)
{
    unsigned char a[16];
    static const unsigned char v6_loopback[16] = {[15] = 1};
    static const unsigned char v4_mapped[12] = {[10] = 0xff, [11] = 0xff};

    if (inet_pton(AF_INET, ip, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, ip, a) != 1)
        return 0;
    return memcmp(a, v6_loopback, 16) == 0 || (memcmp(a, v4_mapped, 12) == 0 && a[12] == 127);
}

void jw_http_ip_bucket(const char *ip, char *out, size_t size)
{
    unsigned char a[16];

    /* One host is often given a whole IPv6 /64, so a limit per address
     * would let it rotate addresses; the limit covers the /64. */
    if (inet_pton(AF_INET6, ip, a) != 1 || jw_http_ip_is_loopback(ip) ||
        (a[10] == 0xff && a[11] == 0xff && memcmp(a, "\0\0\0\0\0\0\0\0\0\0", 10) == 0)) {
        snprintf(out, size, "%s", ip);
        return;
    }
    char text[INET6_ADDRSTRLEN];
    memset(a + 8, 0, 8);
    inet_ntop(AF_INET6, a, text, sizeof(text));
    snprintf(out, size, "%s/64", text);
}
