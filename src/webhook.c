/*
 * POST /api/webhooks/replicate: verify the Standard Webhooks signature
 * over the raw body, normalise the Replicate object, and append it to the
 * events stream with dedupe by webhook-id. The answer is sent only after
 * Redis accepted the event, so a delivery is never acknowledged and lost;
 * the consumer applies it to the job afterwards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobwire/fields.h"
#include "jobwire/http.h"
#include "jobwire/json_gen.h"
#include "jobwire/log.h"
#include "jobwire/replicate.h"
#include "jobwire/replicate_client.h"
#include "jobwire/verify.h"

#define DELIVERY_ID_MAX 256

typedef struct delivery {
    jw_app_t *app;
    jw_reqref_t *ref;
    char id[DELIVERY_ID_MAX + 1];
    char job_id[160];
    char status[16];
} delivery_t;

static void count(jw_app_t *app, jw_webhook_result_t result)
{
    app->webhooks[result]++;
}

static void answer_accepted(h2o_req_t *req, const delivery_t *d, int duplicate,
                            const char *entry_id)
{
    yajl_gen g = jw_gen_new();

    yajl_gen_map_open(g);
    jw_gen_kv_bool(g, "received", 1);
    jw_gen_kv_bool(g, "duplicate", duplicate);
    jw_gen_kv_str(g, "job_id", d->job_id);
    /* A repeat was not applied, so its body's status says nothing. */
    jw_gen_kv_str(g, "status", duplicate ? NULL : d->status);
    jw_gen_kv_str(g, "event_id", entry_id);
    yajl_gen_map_close(g);
    jw_http_send_json(req, 200, g);
    yajl_gen_free(g);
}

static void on_ingested(void *data, jw_store_err_t err, int duplicate, const char *entry_id)
{
    delivery_t *d = data;
    h2o_req_t *req = jw_reqref_get(d->ref);

    if (err != JW_STORE_OK) {
        static jw_log_limit_t limit;
        unsigned long long held;
        count(d->app, JW_WEBHOOK_UNAVAILABLE);
        /* An outage refuses every delivery: one line a second is enough. */
        if (jw_log_allow(&limit, 1000, &held))
            jw_warn("webhook", "delivery not stored: redis unavailable delivery=%s job=%s "
                    "similar_lines_suppressed=%llu", d->id, d->job_id, held);
        if (req != NULL)
            jw_http_send_error(req, JW_E_REDIS_UNAVAILABLE,
                               "the event store is unavailable; the delivery was not accepted");
    } else {
        count(d->app, duplicate ? JW_WEBHOOK_DUPLICATE : JW_WEBHOOK_ACCEPTED);
        jw_debug("webhook", "delivery %s delivery=%s job=%s status=%s",
                 duplicate ? "repeated" : "accepted", d->id, d->job_id, d->status);
        if (req != NULL)
            answer_accepted(req, d, duplicate, entry_id);
    }
    jw_reqref_release(d->ref);
    free(d);
}

/* 1 when the webhook-timestamp header is 1-19 decimal digits that fit
 * an int64_t, the form verify.c accepts. */
static int timestamp_digits(h2o_iovec_t ts)
{
    if (ts.len == 0 || ts.len > 19)
        return 0;
    if (ts.len == 19 && memcmp(ts.base, "9223372036854775807", 19) > 0)
        return 0;
    for (size_t i = 0; i < ts.len; i++) {
        if (ts.base[i] < '0' || ts.base[i] > '9')
            return 0;
    }
    return 1;
}

static int valid_delivery_id(h2o_iovec_t id)
{
    if (id.len == 0 || id.len > DELIVERY_ID_MAX)
        return 0;
    for (size_t i = 0; i < id.len; i++) {
        if (id.base[i] <= 0x20 || id.base[i] >= 0x7f)
            return 0;
    }
    return 1;
}

/* Rejects with 4xx; returns 0 when the signature checks out. */
static int check_signature(jw_app_t *app, h2o_req_t *req, h2o_iovec_t id)
{
    h2o_iovec_t ts = jw_http_header(req, "webhook-timestamp");
    h2o_iovec_t sig = jw_http_header(req, "webhook-signature");
    const char *missing = id.base == NULL ? "webhook-id"
                          : ts.base == NULL ? "webhook-timestamp"
                          : sig.base == NULL ? "webhook-signature" : NULL;

    if (missing != NULL) {
        jw_http_send_error(req, JW_E_MISSING_HEADER, "the %s header is required", missing);
        return -1;
    }
    if (!valid_delivery_id(id)) {
        jw_http_send_error(req, JW_E_INVALID_HEADER,
                           "webhook-id must be 1-%d printable characters", DELIVERY_ID_MAX);
        return -1;
    }

    jw_verify_result_t r = jw_verify_delivery(&app->webhook_key, id.base, id.len, ts.base,
                                              ts.len, sig.base, sig.len, req->entity.base,
                                              req->entity.len, (int64_t)time(NULL),
                                              app->cfg->webhook_tolerance_s);
    switch (r) {
    case JW_VERIFY_OK:
        return 0;
    case JW_VERIFY_MISSING_HEADER:
        jw_http_send_error(req, JW_E_MISSING_HEADER, "%s", jw_verify_result_message(r));
        break;
    case JW_VERIFY_BAD_HEADER:
        /* The id was checked above, so the timestamp or the signature list is at fault. */
        if (!timestamp_digits(ts))
            jw_http_send_error(req, JW_E_INVALID_HEADER,
                               "webhook-timestamp must be Unix seconds, 1-19 digits");
        else
            jw_http_send_error(req, JW_E_INVALID_HEADER,
                               "webhook-signature must be a space-separated list of "
                               "\"v1,<base64>\" entries, at most 4096 bytes");
        break;
    case JW_VERIFY_STALE:
    case JW_VERIFY_FUTURE:
        jw_http_send_error(req, JW_E_STALE_TIMESTAMP, "%s (tolerance %d s)",
                           jw_verify_result_message(r), app->cfg->webhook_tolerance_s);
        break;
    default:
        jw_http_send_error(req, JW_E_INVALID_SIGNATURE, "%s", jw_verify_result_message(r));
        /* The secret may have been rotated at Replicate; fetched at most once a minute. */
        jw_replicate_secret_maybe_refresh(app);
        break;
    }
    jw_info("webhook", "delivery rejected: %s delivery=%.*s", jw_verify_result_message(r),
            (int)(id.len > 64 ? 64 : id.len), id.base);
    return -1;
}

static void ingest(jw_app_t *app, h2o_req_t *req, h2o_iovec_t id, const jw_event_t *ev)
{
    delivery_t *d = calloc(1, sizeof(*d));
    jw_fields_t fields = {.count = 0};

    if (d == NULL)
        abort();
    d->app = app;
    memcpy(d->id, id.base, id.len);
    snprintf(d->job_id, sizeof(d->job_id), "%s", ev->job_id);
    snprintf(d->status, sizeof(d->status), "%s", jw_status_name(ev->status));

    jw_event_to_fields(ev, "webhook", d->id, &fields);
    /* The queue gives Replicate a webhook URL with ?job=<local id>, so a
     * delivery that beats the create call's response still finds its job.
     * apply.lua links the two ids only for a queued job not yet linked. */
    int found;
    h2o_iovec_t local_id = jw_http_query_param(req, "job", &found);
    if (found == 1 && jw_job_id_valid(local_id.base, local_id.len))
        jw_fields_add(&fields, "local_job_id", local_id.base, local_id.len);
    d->ref = jw_reqref_new(app, req);
    jw_store_ingest(app->store, d->id, &fields, on_ingested, d);
    jw_fields_clear(&fields);
}

void jw_webhook_replicate(jw_app_t *app, h2o_req_t *req)
{
    char err[256];
    jw_event_t ev;

    if (!app->has_webhook_key) {
        jw_replicate_secret_maybe_refresh(app);
        count(app, JW_WEBHOOK_UNAVAILABLE);
        jw_http_send_error(req, JW_E_WEBHOOK_NOT_CONFIGURED,
                           "no webhook secret is configured; set REPLICATE_WEBHOOK_SECRET");
        return;
    }

    h2o_iovec_t id = jw_http_header(req, "webhook-id");
    if (check_signature(app, req, id) != 0) {
        count(app, JW_WEBHOOK_REJECTED);
        return;
    }

    memset(&ev, 0, sizeof(ev));
    if (jw_replicate_parse_object(req->entity.base, req->entity.len, &ev, err, sizeof(err)) != 0) {
        count(app, JW_WEBHOOK_REJECTED);
        jw_http_send_error(req, JW_E_INVALID_BODY,
                           "body is not a Replicate prediction or training: %s", err);
        return;
    }

    ingest(app, req, id, &ev);
    jw_event_clear(&ev);
}
