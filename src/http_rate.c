/*
 * The rate limit in front of mutating calls: one Redis script call, then
 * the handler, or a 429 with Retry-After. While Redis is down the call
 * goes through: the handler then answers 503 by itself, and refusing
 * every change for want of a counter would help no one.
 */
#include <stdio.h>
#include <stdlib.h>

#include "http_internal.h"

typedef struct rate_wait {
    jw_app_t *app;
    jw_reqref_t *ref;
    const jw_route_t *route;
    h2o_iovec_t id;
    int per_minute;
    jw_http_continue_fn go;
} rate_wait_t;

static void send_limited(jw_app_t *app, h2o_req_t *req, int per_minute, long long retry_ms)
{
    char retry[24];
    long long seconds = (retry_ms + 999) / 1000;

    app->auth_refusals[JW_E_RATE_LIMITED]++;
    snprintf(retry, sizeof(retry), "%lld", seconds < 1 ? 1 : seconds);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
                   h2o_strdup(&req->pool, retry, SIZE_MAX).base, strlen(retry));
    jw_http_send_error(req, JW_E_RATE_LIMITED,
                       "more than %d changes a minute from this caller; retry in %s s",
                       per_minute, retry);
}

static void on_counted(void *data, jw_store_err_t err, int allowed, long long value)
{
    rate_wait_t *w = data;
    h2o_req_t *req = jw_reqref_get(w->ref);

    jw_reqref_release(w->ref);
    if (req != NULL) {
        if (err == JW_STORE_OK && !allowed)
            send_limited(w->app, req, w->per_minute, value);
        else
            w->go(w->app, req, w->route, w->id);
    }
    free(w);
}

void jw_http_rate_limit(jw_app_t *app, h2o_req_t *req, const char *bucket, int per_minute,
                        const jw_route_t *route, h2o_iovec_t id, jw_http_continue_fn go)
{
    rate_wait_t *w = malloc(sizeof(*w));
    if (w == NULL)
        abort();
    w->app = app;
    w->ref = jw_reqref_new(app, req);
    w->route = route;
    w->id = id;
    w->per_minute = per_minute;
    w->go = go;
    jw_store_rate_limit(app->store, bucket, per_minute, on_counted, w);
}
