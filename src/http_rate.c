/*
 * Rate limit checks between routing and the handler: one Redis script
 * call, then the next step, or a 429 with Retry-After. While Redis is
 * down, a change goes through, because its handler then sends a 503 by
 * itself. A check that guards key guessing fails closed with a 503
 * instead, because unlimited guesses are what it exists to prevent.
 */
#include <stdio.h>
#include <stdlib.h>

#include "http_internal.h"

typedef struct rate_wait {
    jw_app_t *app;
    jw_reqref_t *ref;
    int per_minute;
    int flags;
    const char *what;
    jw_http_next_fn next;
    void *ctx;
} rate_wait_t;

static void send_limited(jw_app_t *app, h2o_req_t *req, const rate_wait_t *w, long long retry_ms)
{
    char retry[24];
    long long seconds = (retry_ms + 999) / 1000;

    app->auth_refusals[JW_E_RATE_LIMITED]++;
    snprintf(retry, sizeof(retry), "%lld", seconds < 1 ? 1 : seconds);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
                   h2o_strdup(&req->pool, retry, SIZE_MAX).base, strlen(retry));
    jw_http_send_error(req, JW_E_RATE_LIMITED,
                       "more than %d %s a minute from this caller; retry in %s s",
                       w->per_minute, w->what, retry);
}

static void on_counted(void *data, jw_store_err_t err, int allowed, long long value)
{
    rate_wait_t *w = data;
    h2o_req_t *req = jw_reqref_get(w->ref);

    jw_reqref_release(w->ref);
    if (req == NULL) {
        free(w);
        return;
    }
    if (err != JW_STORE_OK && (w->flags & JW_RATE_FAIL_CLOSED))
        jw_http_send_error(req, JW_E_REDIS_UNAVAILABLE,
                           "the rate limit counter is unavailable; retry");
    else if (err == JW_STORE_OK && !allowed)
        send_limited(w->app, req, w, value);
    else
        w->next(w->app, req, w->ctx);
    free(w);
}

void jw_http_rate_check(jw_app_t *app, h2o_req_t *req, const char *bucket, int per_minute,
                        int flags, const char *what, jw_http_next_fn next, void *ctx)
{
    rate_wait_t *w = malloc(sizeof(*w));
    if (w == NULL)
        abort();
    w->app = app;
    w->ref = jw_reqref_new(app, req);
    w->per_minute = per_minute;
    w->flags = flags;
    w->what = what;
    w->next = next;
    w->ctx = ctx;
    jw_store_rate_limit(app->store, bucket, per_minute, (flags & JW_RATE_PEEK) != 0, on_counted,
                        w);
}

static void on_counted_quietly(void *data, jw_store_err_t err, int allowed, long long value)
{
    (void)data;
    (void)err;
    (void)allowed;
    (void)value;
}

void jw_http_rate_count(jw_app_t *app, const char *bucket, int per_minute)
{
    jw_store_rate_limit(app->store, bucket, per_minute, 0, on_counted_quietly, NULL);
}
