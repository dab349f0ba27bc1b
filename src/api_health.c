/*
 * Operations endpoints: liveness, readiness and Prometheus metrics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/http.h"
#include "jobwire/poller.h"
#include "jobwire/queue.h"
#include "jobwire/replicate_client.h"
#include "jobwire/hub.h"
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

/* Refusals of access control by error code: a burst of invalid_api_key
 * or rate_limited is worth an alert. */
static size_t auth_metrics(const jw_app_t *app, char *buf, size_t size, size_t used)
{
    static const jw_error_t codes[] = {JW_E_UNAUTHORIZED, JW_E_INVALID_API_KEY,
                                       JW_E_INVALID_SESSION, JW_E_FORBIDDEN, JW_E_LOOPBACK_ONLY,
                                       JW_E_CSRF_FAILED, JW_E_RATE_LIMITED};

    used += (size_t)snprintf(buf + used, size - used,
                             "# HELP jobwire_auth_refusals_total Requests refused by access "
                             "control, by error code.\n"
                             "# TYPE jobwire_auth_refusals_total counter\n");
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]) && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used,
                                 "jobwire_auth_refusals_total{code=\"%s\"} %llu\n",
                                 jw_error_code(codes[i]),
                                 (unsigned long long)app->auth_refusals[codes[i]]);
    return used;
}

/* The events stream as last sampled (see store_stats.c): a scrape never
 * waits on Redis. Without a sample, only the HELP and TYPE lines appear. */
static size_t lag_metrics(const jw_app_t *app, char *buf, size_t size, size_t used)
{
    jw_events_stats_t st;
    int have = jw_store_events_stats(app->store, &st) == 0;
    static const struct {
        const char *name, *help;
    } gauges[] = {
        {"jobwire_apply_lag_events",
         "Accepted webhook events not yet applied: undelivered (group lag) plus pending."},
        {"jobwire_events_undelivered", "Events stream entries not yet read by any replica."},
        {"jobwire_events_pending", "Events read by a replica and not yet applied and acked."},
        {"jobwire_events_stream_length", "Entries in the events stream (XLEN)."},
    };
    long long values[4] = {st.lag + st.pending, st.lag, st.pending, st.length};
    int known[4] = {have && st.lag_known, have && st.lag_known, have, have};

    for (int i = 0; i < 4 && used < size; i++) {
        int n = snprintf(buf + used, size - used, "# HELP %s %s\n# TYPE %s gauge\n",
                         gauges[i].name, gauges[i].help, gauges[i].name);
        used += n > 0 ? (size_t)n : 0;
        if (known[i] && used < size) {
            n = snprintf(buf + used, size - used, "%s %lld\n", gauges[i].name, values[i]);
            used += n > 0 ? (size_t)n : 0;
        }
    }
    if (have && used < size) {
        int n = snprintf(buf + used, size - used,
                         "# HELP jobwire_events_stats_age_seconds Age of the events stream "
                         "sample above.\n# TYPE jobwire_events_stats_age_seconds gauge\n"
                         "jobwire_events_stats_age_seconds %.3f\n",
                         (double)st.age_ms / 1000.0);
        used += n > 0 ? (size_t)n : 0;
    }
    return used;
}

/* Appends a counter with one series per label value. */
static size_t labelled_counter(char *buf, size_t size, size_t used, const char *name,
                               const char *help, const char *label,
                               const char *const *values, const uint64_t *counts, int count)
{
    int n = snprintf(buf + used, size - used, "# HELP %s %s\n# TYPE %s counter\n", name, help,
                     name);

    used += n > 0 ? (size_t)n : 0;
    for (int i = 0; i < count && used < size; i++) {
        n = snprintf(buf + used, size - used, "%s{%s=\"%s\"} %llu\n", name, label, values[i],
                     (unsigned long long)counts[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    return used;
}

/* Provider calls by outcome class, and the poller's tick counters. */
static size_t provider_metrics(const jw_app_t *app, char *buf, size_t size, size_t used)
{
    uint64_t counts[JW_REPLICATE_OUTCOME_CLASSES];

    for (int i = 0; i < JW_REPLICATE_OUTCOME_CLASSES; i++)
        counts[i] = jw_replicate_outcome_count(app->replicate, i);
    used = labelled_counter(buf, size, used, "jobwire_provider_requests_total",
                            "Finished Replicate API calls by final HTTP status class, or error "
                            "when no HTTP response came.", "status", jw_replicate_outcome_names,
                            counts, JW_REPLICATE_OUTCOME_CLASSES);
    if (app->poller == NULL)
        return used;

    const jw_poller_stats_t *poll = jw_poller_stats(app->poller);
    used = metric(buf, size, used, "jobwire_poller_ticks_total", "counter",
                  "Poller ticks finished by this replica while it held the lease.", "",
                  poll->ticks);
    used = metric(buf, size, used, "jobwire_poller_requests_total", "counter",
                  "Provider requests made by poller ticks.", "", poll->requests);
    used = metric(buf, size, used, "jobwire_poller_errors_total", "counter",
                  "Job refreshes of poller ticks that failed, 429s included.", "", poll->errors);
    return used;
}

/* The queue processor's counters on this replica (no Redis call). */
static size_t queue_metrics(const jw_app_t *app, char *buf, size_t size, size_t used)
{
    const jw_queue_stats_t *q;
    static const char *const results[] = {"started", "refused", "requeued", "lost"};
    uint64_t counts[4];

    if (app->queue == NULL)
        return used;
    q = jw_queue_stats(app->queue);
    counts[0] = q->started;
    counts[1] = q->refused;
    counts[2] = q->requeued;
    counts[3] = q->lost;
    used = metric(buf, size, used, "jobwire_queue_rounds_total", "counter",
                  "Queue rounds finished by this replica.", "", q->rounds);
    used = metric(buf, size, used, "jobwire_queue_leader", "gauge",
                  "1 while this replica holds the queue lease.", "",
                  (unsigned long long)jw_queue_is_leader(app->queue));
    return labelled_counter(buf, size, used, "jobwire_queue_trainings_total",
                            "Trainings this replica's rounds started, or saw rejected, put back "
                            "in line or lost at Replicate.", "result", results, counts, 4);
}

void jw_api_metrics(jw_app_t *app, h2o_req_t *req)
{
    char buf[16384];
    size_t used = webhook_metrics(app, buf, sizeof(buf), 0);
    used = auth_metrics(app, buf, sizeof(buf), used);
    const jw_consumer_stats_t *stats = jw_consumer_stats(app->consumer);

    used = metric(buf, sizeof(buf), used, "jobwire_events_applied_total", "counter",
                  "Events applied to job records by this replica.", "", stats->applied);
    used = metric(buf, sizeof(buf), used, "jobwire_events_changed_total", "counter",
                  "Applied events that changed a job.", "", stats->changed);
    used = metric(buf, sizeof(buf), used, "jobwire_events_reclaimed_total", "counter",
                  "Events reclaimed from idle consumers.", "", stats->claimed);
    used = metric(buf, sizeof(buf), used, "jobwire_apply_failures_total", "counter",
                  "Applies that failed and wait for reclaim.", "", stats->failures);
    const jw_hub_stats_t *hub = jw_hub_stats(app->hub);
    used = metric(buf, sizeof(buf), used, "jobwire_sse_clients", "gauge",
                  "Event streams open on this replica.", "", hub->clients);
    used = metric(buf, sizeof(buf), used, "jobwire_sse_changes_sent_total", "counter",
                  "Change events written to event streams.", "", hub->changes_sent);
    used = metric(buf, sizeof(buf), used, "jobwire_sse_resets_total", "counter",
                  "Reset events sent (resume too old, invalid id, slow client).", "",
                  hub->resets);
    used = metric(buf, sizeof(buf), used, "jobwire_sse_slow_client_resets_total", "counter",
                  "Resets sent because a client's unsent output passed its cap.", "",
                  hub->slow_resets);
    used = metric(buf, sizeof(buf), used, "jobwire_redis_reconnects_total", "counter",
                  "Redis connections lost and re-established.", "",
                  jw_store_reconnects(app->store));
    used = metric(buf, sizeof(buf), used, "jobwire_redis_up", "gauge",
                  "1 when the Redis command connection is up.", "",
                  (unsigned long long)jw_store_is_ready(app->store));
    used = lag_metrics(app, buf, sizeof(buf), used);
    used = metric(buf, sizeof(buf), used, "jobwire_http_requests_in_flight", "gauge",
                  "Requests waiting for Redis or the provider before their answer.", "",
                  app->requests_in_flight);
    if (used < sizeof(buf))
        used = provider_metrics(app, buf, sizeof(buf), used);
    if (used < sizeof(buf))
        used = queue_metrics(app, buf, sizeof(buf), used);
    used = metric(buf, sizeof(buf), used, "jobwire_shutting_down", "gauge",
                  "1 once SIGTERM or SIGINT started the drain.", "",
                  (unsigned long long)(app->shutting_down != 0));
    if (used > sizeof(buf))
        used = sizeof(buf);

    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = used;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/plain; version=0.0.4"));
    h2o_send_inline(req, buf, used);
}
