/*
 * The H2O server: one host, one catch-all handler that hands each request
 * to the route table (http_routes.c), and a filter that turns H2O's own
 * plain-text errors (an oversize body, a malformed request) into the
 * API's JSON errors.
 */
#include "http_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "jobwire/json_gen.h"
#include "jobwire/log.h"

struct jw_http {
    jw_app_t *app;
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    uv_tcp_t listener;
    int listening;
};

typedef struct route_handler {
    h2o_handler_t super;
    jw_app_t *app;
} route_handler_t;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    return jw_http_route(((route_handler_t *)self)->app, req);
}

/* --- JSON bodies for H2O's own errors --------------------------------- */

typedef struct json_error_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
} json_error_ostream_t;

static void json_error_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs,
                               size_t bufcnt, h2o_send_state_t state)
{
    json_error_ostream_t *os = (json_error_ostream_t *)self;

    (void)bufs;
    (void)bufcnt;
    /* The replacement body goes out whole with the first call. */
    h2o_iovec_t body = os->body;
    os->body = h2o_iovec_init(NULL, 0);
    h2o_ostream_send_next(&os->super, req, &body, body.len ? 1 : 0, state);
}

static const char *error_code_for(int status)
{
    switch (status) {
    case 413: return "payload_too_large";
    case 400: return "bad_request";
    case 404: return "not_found";
    default: return "http_error";
    }
}

static void build_json_error(h2o_req_t *req, json_error_ostream_t *os)
{
    char text[256];
    int n = snprintf(text, sizeof(text), "{\"error\":\"%s\",\"message\":\"%s\"}",
                     error_code_for(req->res.status),
                     req->res.status == 413 ? "request body is larger than the limit"
                                            : req->res.reason);
    os->body = h2o_strdup(&req->pool, text, (size_t)n);
}

typedef struct app_filter {
    h2o_filter_t super;
    jw_app_t *app;
} app_filter_t;

static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    /* While draining, each answer (also one to a request that arrived
     * before the signal) closes its connection, so the client or the load
     * balancer sends its next request to another replica. */
    jw_app_t *app = ((app_filter_t *)self)->app;
    if (app->shutting_down)
        req->http1_is_persistent = 0;

    /* Every response, errors and event streams included, passes here once,
     * so CORS headers are added and audit records closed here. */
    jw_http_cors_headers(app, req);
    jw_http_audit_on_response(req);

    ssize_t ct = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    int plain_error = req->res.status >= 400 && ct >= 0 &&
                      h2o_memis(req->res.headers.entries[ct].value.base,
                                req->res.headers.entries[ct].value.len,
                                H2O_STRLIT("text/plain; charset=utf-8"));

    if (plain_error) {
        json_error_ostream_t *os =
            (void *)h2o_add_ostream(req, sizeof(json_error_ostream_t), slot);
        os->super.do_send = json_error_do_send;
        build_json_error(req, os);
        req->res.headers.entries[ct].value = h2o_iovec_init(H2O_STRLIT("application/json"));
        req->res.content_length = os->body.len;
        slot = &os->super.next;
    }
    h2o_setup_next_ostream(req, slot);
}

/* --- listener ------------------------------------------------------------ */

static void on_accept(uv_stream_t *listener, int status)
{
    jw_http_t *http = listener->data;

    if (status != 0)
        return;

    uv_tcp_t *conn = h2o_mem_alloc(sizeof(*conn));
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, (uv_close_cb)free);
        return;
    }
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, (uv_close_cb)free);
    h2o_accept(&http->accept_ctx, sock);
}

static int open_listen_socket(const jw_config_t *cfg, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof(ss));

    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (uv_ip4_addr(cfg->listen_host, cfg->listen_port, v4) == 0) {
        sslen = sizeof(*v4);
    } else if (uv_ip6_addr(cfg->listen_host, cfg->listen_port, v6) == 0) {
        sslen = sizeof(*v6);
    } else {
        snprintf(err, errlen, "JOBWIRE_LISTEN: %s is not an IP address", cfg->listen_host);
        return -1;
    }

    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    /* SO_REUSEPORT lets several jobwire processes on one host share the
     * port, each accepting its own connections. */
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, sslen) != 0) {
        snprintf(err, errlen, "JOBWIRE_LISTEN: cannot bind %s:%d: %s", cfg->listen_host,
                 cfg->listen_port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void setup_h2o(jw_http_t *http)
{
    h2o_config_init(&http->globalconf);
    http->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("jobwire"));
    /* H2O answers 413 itself (as JSON, via the filter) past this size,
     * before reading the rest of the body. */
    http->globalconf.max_request_entity_size = http->app->cfg->webhook_max_body;

    h2o_hostconf_t *host = h2o_config_register_host(&http->globalconf,
                                                    h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    route_handler_t *handler = (void *)h2o_create_handler(path, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->app = http->app;
    jw_http_static_register(path, http->app->cfg);

    app_filter_t *filter = (void *)h2o_create_filter(path, sizeof(*filter));
    filter->super.on_setup_ostream = on_setup_ostream;
    filter->app = http->app;
    filter = (void *)h2o_create_filter(&host->fallback_path, sizeof(*filter));
    filter->super.on_setup_ostream = on_setup_ostream;
    filter->app = http->app;

    /* H2O 2.2.5 gives every connection an 8 KiB input buffer at its first
     * read and keeps it while the connection lives. Event streams never
     * read again, so 4 KiB (the least one read asks for) halves what an
     * idle stream costs; larger bodies grow the buffer as before. */
    h2o_socket_buffer_prototype._initial_buf.capacity = 4096;

    h2o_context_init(&http->ctx, http->app->loop, &http->globalconf);
    http->accept_ctx.ctx = &http->ctx;
    http->accept_ctx.hosts = http->globalconf.hosts;
}

jw_http_t *jw_http_start(jw_app_t *app, char *err, size_t errlen)
{
    jw_http_t *http = calloc(1, sizeof(*http));
    if (http == NULL)
        abort();
    http->app = app;

    int fd = open_listen_socket(app->cfg, err, errlen);
    if (fd < 0) {
        free(http);
        return NULL;
    }

    setup_h2o(http);
    uv_tcp_init(app->loop, &http->listener);
    http->listener.data = http;
    int rc = uv_tcp_open(&http->listener, fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&http->listener, 1024, on_accept);
    if (rc != 0) {
        snprintf(err, errlen, "JOBWIRE_LISTEN: cannot listen: %s", uv_strerror(rc));
        return NULL;
    }
    http->listening = 1;
    return http;
}

void jw_http_stop_accepting(jw_http_t *http)
{
    if (http->listening) {
        http->listening = 0;
        uv_close((uv_handle_t *)&http->listener, NULL);
        /* HTTP/2 connections (if any) get a GOAWAY; HTTP/1 ones close
         * after their next answer (see on_req). */
        h2o_context_request_shutdown(&http->ctx);
    }
}

void jw_http_free(jw_http_t *http)
{
    h2o_context_dispose(&http->ctx);
    h2o_config_dispose(&http->globalconf);
    free(http);
}
