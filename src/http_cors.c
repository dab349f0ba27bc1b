/*
 * CORS: off unless JOBWIRE_CORS_ORIGINS lists origins. An allowed origin
 * gets Access-Control-Allow-Origin on every answer (errors too, so a page
 * can read why it was refused) and a preflight answer naming the path's
 * methods. Credentials are not allowed cross-origin: another site's page
 * authenticates with a Bearer key, never with the dashboard's cookie.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"

/* Headers a cross-origin caller may send. */
#define ALLOWED_HEADERS "Authorization, Content-Type, Idempotency-Key, Last-Event-ID"

static int origin_allowed(jw_app_t *app, h2o_iovec_t origin)
{
    const jw_config_t *cfg = app->cfg;

    for (int i = 0; i < cfg->cors_origin_count; i++) {
        const char *o = cfg->cors_origins[i];
        if (strlen(o) == origin.len && strncasecmp(o, origin.base, origin.len) == 0)
            return 1;
    }
    return 0;
}

/* Adds a response header by its (lowercase) name; most CORS names are not
 * in H2O 2.2.5's token table. */
static void add(h2o_req_t *req, const char *name, const char *value)
{
    h2o_add_header_by_str(&req->pool, &req->res.headers, name, strlen(name), 1, NULL,
                          h2o_strdup(&req->pool, value, SIZE_MAX).base, strlen(value));
}

void jw_http_cors_headers(jw_app_t *app, h2o_req_t *req)
{
    h2o_iovec_t origin = jw_http_header(req, "origin");

    if (origin.base == NULL || app->cfg->cors_origin_count == 0)
        return;
    /* Caches must not serve one origin's response to another. */
    add(req, "vary", "Origin");
    if (!origin_allowed(app, origin))
        return;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN, NULL,
                   origin.base, origin.len);
    add(req, "access-control-expose-headers", "Retry-After, WWW-Authenticate");
}

static void send_no_content(h2o_req_t *req)
{
    req->res.status = 204;
    req->res.reason = "No Content";
    req->res.content_length = 0;
    h2o_send_inline(req, "", 0);
}

void jw_http_cors_preflight(jw_app_t *app, h2o_req_t *req, const char *allow)
{
    char methods[96];
    h2o_iovec_t origin = jw_http_header(req, "origin");

    snprintf(methods, sizeof(methods), "%s, OPTIONS", allow);
    if (origin.base == NULL) {
        /* A plain OPTIONS: list the methods the path serves. */
        add(req, "allow", methods);
        send_no_content(req);
        return;
    }
    if (!origin_allowed(app, origin)) {
        jw_http_send_error(req, JW_E_ORIGIN_NOT_ALLOWED,
                           "the origin %.*s is not in JOBWIRE_CORS_ORIGINS",
                           (int)(origin.len > 200 ? 200 : origin.len), origin.base);
        return;
    }
    add(req, "access-control-allow-methods", methods);
    add(req, "access-control-allow-headers", ALLOWED_HEADERS);
    add(req, "access-control-max-age", "600");
    send_no_content(req);
}
