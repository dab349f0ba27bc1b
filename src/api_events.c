/*
 * GET /api/events: checks the stream's parameters and limits, takes the
 * cluster-wide per-IP lease, then hands the request to the hub.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/event.h"
#include "http_internal.h"
#include "jobwire/hub.h"
#include "jobwire/log.h"


typedef struct stream_req {
    jw_app_t *app;
    jw_reqref_t *ref;
    jw_sse_request_t sse;
} stream_req_t;

static void free_stream_req(stream_req_t *sr)
{
    for (size_t i = 0; i < sr->sse.job_id_count; i++)
        free(sr->sse.job_ids[i]);
    free(sr->sse.job_ids);
    free(sr);
}

/* Parses ?job_id=a,b into sse; returns 0, or -1 after sending a 400 response. */
static int read_job_filter(h2o_req_t *req, jw_sse_request_t *sse)
{
    int found;
    h2o_iovec_t v = jw_http_query_param(req, "job_id", &found);

    if (found == 0)
        return 0;
    sse->job_ids = calloc(JW_HUB_MAX_JOB_FILTER, sizeof(char *));
    if (sse->job_ids == NULL)
        abort();

    const char *p = v.base, *end = v.base + v.len;
    while (found > 0 && p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        if (!jw_job_id_valid(p, (size_t)(stop - p)) || sse->job_id_count == JW_HUB_MAX_JOB_FILTER)
            break;
        sse->job_ids[sse->job_id_count++] = strndup(p, (size_t)(stop - p));
        p = stop + 1;
    }
    if (found < 0 || p <= end) {
        jw_http_send_error(req, JW_E_INVALID_PARAMETER,
                           "job_id must be a comma list of 1-%d job ids", JW_HUB_MAX_JOB_FILTER);
        return -1;
    }
    return 0;
}

/* Parses ?status=running,queued into a bit mask; -1 after sending a 400 response. */
static int read_status_filter(h2o_req_t *req, jw_sse_request_t *sse)
{
    int found;
    h2o_iovec_t v = jw_http_query_param(req, "status", &found);

    const char *p = v.base, *end = v.base + v.len;
    while (found > 0 && p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        jw_status_t s = jw_status_parse(p, (size_t)(stop - p));
        if (s == JW_STATUS_UNKNOWN)
            break;
        sse->status_mask |= 1u << s;
        p = stop + 1;
    }
    if (found < 0 || (found > 0 && p <= end)) {
        jw_http_send_error(req, JW_E_INVALID_PARAMETER,
                           "status must be a comma list of pending, uploading, queued, running, "
                           "completed, failed, cancelled");
        return -1;
    }
    return 0;
}

/* Reads Last-Event-ID from the header, or last_event_id from the query for
 * clients that cannot set headers. A value that does not parse is kept as
 * invalid so the hub responds to it with a reset. */
static int read_last_event_id(h2o_req_t *req, jw_sse_request_t *sse)
{
    int found;
    h2o_iovec_t v = jw_http_header(req, "last-event-id");
    uint64_t ms, seq;

    if (v.base == NULL) {
        v = jw_http_query_param(req, "last_event_id", &found);
        if (found < 0) {
            jw_http_send_error(req, JW_E_INVALID_PARAMETER, "last_event_id given twice");
            return -1;
        }
    }

    sse->last_event_id_valid = 1;
    if (v.base == NULL || v.len == 0)
        return 0;
    if (jw_stream_id_parse(v.base, v.len, &ms, &seq) != 0) {
        sse->last_event_id_valid = 0;
        return 0;
    }
    snprintf(sse->last_event_id, sizeof(sse->last_event_id), "%" PRIu64 "-%" PRIu64, ms, seq);
    return 0;
}

/* --- limits and lease ------------------------------------------------------------ */

static void reject_per_ip(h2o_req_t *req, jw_app_t *app, const char *ip)
{
    char retry[16];

    snprintf(retry, sizeof(retry), "%d", app->cfg->sse_heartbeat_s);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
                   h2o_strdup(&req->pool, retry, SIZE_MAX).base, strlen(retry));
    jw_http_send_error(req, JW_E_TOO_MANY_STREAMS,
                       "at most %d concurrent event streams per client IP (%s); close one "
                       "or retry later",
                       app->cfg->sse_max_per_ip, ip);
}

static void on_lease(void *data, jw_store_err_t err, int granted, long long count)
{
    stream_req_t *sr = data;
    h2o_req_t *req = jw_reqref_get(sr->ref);
    jw_app_t *app = sr->app;

    (void)count;
    if (req == NULL) {
        if (granted)
            jw_store_sse_release(app->store, sr->sse.ip, sr->sse.member);
    } else if (err == JW_STORE_OK && !granted) {
        reject_per_ip(req, app, sr->sse.ip);
    } else {
        /* Without Redis the per-replica count (checked before) is the limit. */
        sr->sse.leased = err == JW_STORE_OK;
        jw_hub_open_stream(app->hub, req, &sr->sse);
    }
    jw_reqref_release(sr->ref);
    free_stream_req(sr);
}

/* Keeps what the stream was authorized with, so the hub can end it when
 * the key is removed or the session expires. The route already checked
 * the caller; this only records who it was. */
static void record_credentials(jw_app_t *app, h2o_req_t *req, jw_sse_request_t *sse)
{
    jw_principal_t p;

    jw_http_identify(app, req, &p);
    snprintf(sse->ip, sizeof(sse->ip), "%s", p.ip);
    if (p.key != NULL) {
        sse->has_key = 1;
        snprintf(sse->key_name, sizeof(sse->key_name), "%s", p.key->name);
        memcpy(sse->key_hash, p.key->hash, JW_KEY_HASH_LEN);
    }
    if (p.kind == JW_PRINCIPAL_SESSION)
        sse->expires_at = p.session.expires_at;
}

void jw_api_events(jw_app_t *app, h2o_req_t *req)
{
    stream_req_t *sr = calloc(1, sizeof(*sr));
    if (sr == NULL)
        abort();
    sr->app = app;

    if (read_job_filter(req, &sr->sse) != 0 || read_status_filter(req, &sr->sse) != 0 ||
        read_last_event_id(req, &sr->sse) != 0) {
        free_stream_req(sr);
        return;
    }
    record_credentials(app, req, &sr->sse);

    if (app->shutting_down) {
        jw_http_send_error(req, JW_E_SHUTTING_DOWN, "this replica is shutting down; reconnect");
    } else if (jw_hub_client_count(app->hub) >= (size_t)app->cfg->sse_max_clients) {
        jw_http_send_error(req, JW_E_TOO_MANY_CLIENTS,
                           "this replica serves its maximum of %d event streams; retry",
                           app->cfg->sse_max_clients);
    } else if (jw_hub_count_ip(app->hub, sr->sse.ip) >= (size_t)app->cfg->sse_max_per_ip) {
        reject_per_ip(req, app, sr->sse.ip);
    } else {
        jw_hub_new_member(app->hub, sr->sse.member, sizeof(sr->sse.member));
        sr->ref = jw_reqref_new(app, req);
        jw_store_sse_lease(app->store, sr->sse.ip, sr->sse.member, app->cfg->sse_max_per_ip,
                           jw_hub_lease_ttl_ms(app->hub), on_lease, sr);
        return;
    }
    free_stream_req(sr);
}
