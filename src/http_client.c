/*
 * The client's address: the peer, or behind a trusted proxy the first
 * untrusted X-Forwarded-For entry from the right. Event stream limits,
 * the loopback-only default and the audit trail all use it.
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

/* Walks X-Forwarded-For from the right past trusted proxies; the first
 * untrusted entry is the client. Returns 0 with out set, or -1. */
static int forwarded_client(jw_app_t *app, h2o_req_t *req, char *out, size_t size)
{
    h2o_iovec_t xff = jw_http_header(req, "x-forwarded-for");
    size_t end = xff.len;

    while (xff.base != NULL && end > 0) {
        size_t start = end;
        while (start > 0 && xff.base[start - 1] != ',')
            start--;

        int family;
        unsigned char addr[16];
        if (parse_ip(xff.base + start, end - start, &family, addr) != 0)
            return -1;
        if (!jw_config_is_trusted_proxy(app->cfg, family, addr)) {
            inet_ntop(family, addr, out, (socklen_t)size);
            return 0;
        }
        end = start > 0 ? start - 1 : 0;
    }
    return -1;
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
