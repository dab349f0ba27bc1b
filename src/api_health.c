/*
 * Operations endpoints: liveness, readiness and Prometheus metrics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/http.h"
#include "jobwire/json_gen.h"

void jw_api_health(jw_app_t *app, h2o_req_t *req)
{
    yajl_gen g = jw_gen_new();

    (void)app;
    yajl_gen_map_open(g);
    jw_gen_kv_str(g, "status", "ok");
    yajl_gen_map_close(g);
    jw_http_send_json(req, 200, g);
    yajl_gen_free(g);
}

typedef struct ready_req {
    jw_app_t *app;
    jw_reqref_t *ref;
} ready_req_t;

static void on_ping(void *data, jw_store_err_t err)
{
    ready_req_t *rr = data;
    h2o_req_t *req = jw_reqref_get(rr->ref);
    jw_app_t *app = rr->app;
    int consumer = app->consumer != NULL && jw_consumer_is_running(app->consumer);
    int ready = err == JW_STORE_OK && consumer && !app->shutting_down;

    if (req != NULL) {
        yajl_gen g = jw_gen_new();
        yajl_gen_map_open(g);
        jw_gen_kv_str(g, "status", ready ? "ready" : "not_ready");
        jw_gen_kv_bool(g, "redis", err == JW_STORE_OK);
        jw_gen_kv_bool(g, "consumer", consumer);
        jw_gen_kv_bool(g, "shutting_down", app->shutting_down);
        yajl_gen_map_close(g);
        jw_http_send_json(req, ready ? 200 : 503, g);
        yajl_gen_free(g);
    }
    jw_reqref_release(rr->ref);
    free(rr);
}

void jw_api_ready(jw_app_t *app, h2o_req_t *req)
{
    ready_req_t *rr = malloc(sizeof(*rr));
    if (rr == NULL)
        abort();
    rr->app = app;
    rr->ref = jw_reqref_new(app, req);
    jw_store_ping(app->store, on_ping, rr);
}

/* Appends one metric with its HELP and TYPE lines. */
static size_t metric(char *buf, size_t size, size_t used, const char *name, const char *type,
                     const char *help, const char *labels, unsigned long long value)
{
    if (used >= size)
        return used;
    int n = snprintf(buf + used, size - used, "# HELP %s %s\n# TYPE %s %s\n%s%s %llu\n", name,
                     help, name, type, name, labels, value);
    return used + (n > 0 ? (size_t)n : 0);
}

static size_t webhook_metrics(const jw_app_t *app, char *buf, size_t size, size_t used)
{
    static const char *const results[] = {"accepted", "duplicate", "rejected", "unavailable"};

    used += (size_t)snprintf(buf + used, size - used,
                             "# HELP jobwire_webhooks_total Webhook deliveries by result.\n"
                             "# TYPE jobwire_webhooks_total counter\n");
    for (int i = 0; i < JW_WEBHOOK_RESULT_COUNT && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used,
                                 "jobwire_webhooks_total{result=\"%s\"} %llu\n", results[i],
                                 (unsigned long long)app->webhooks[i]);
    return used;
}

void jw_api_metrics(jw_app_t *app, h2o_req_t *req)
{
    char buf[8192];
    size_t used = webhook_metrics(app, buf, sizeof(buf), 0);
    const jw_consumer_stats_t *stats = jw_consumer_stats(app->consumer);

    used = metric(buf, sizeof(buf), used, "jobwire_events_applied_total", "counter",
                  "Events applied to job records by this replica.", "", stats->applied);
    used = metric(buf, sizeof(buf), used, "jobwire_events_changed_total", "counter",
                  "Applied events that changed a job.", "", stats->changed);
    used = metric(buf, sizeof(buf), used, "jobwire_events_reclaimed_total", "counter",
                  "Events reclaimed from idle consumers.", "", stats->claimed);
    used = metric(buf, sizeof(buf), used, "jobwire_apply_failures_total", "counter",
                  "Applies that failed and wait for reclaim.", "", stats->failures);
    used = metric(buf, sizeof(buf), used, "jobwire_redis_reconnects_total", "counter",
                  "Redis connections lost and re-established.", "",
                  jw_store_reconnects(app->store));
    used = metric(buf, sizeof(buf), used, "jobwire_redis_up", "gauge",
                  "1 when the Redis command connection is up.", "",
                  (unsigned long long)jw_store_is_ready(app->store));

    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = used;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4"));
    h2o_send_inline(req, buf, used);
}
