/*
 * Read endpoints for jobs: the list, one job, and the inline progress
 * view. Query parameters are checked strictly: a bad value is a 400 that
 * names the parameter, never a silent default.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/clock.h"
#include "jobwire/event.h"
#include "jobwire/http.h"
#include "jobwire/job_json.h"
#include "jobwire/json_gen.h"

#define LIMIT_MAX 500
#define OFFSET_MAX 1000000000L
#define JOB_ID_MAX JW_JOB_ID_MAX

/* Parses a decimal integer in [min, max]; returns 0 or -1. */
static int parse_long(h2o_iovec_t text, long min, long max, long *out)
{
    long value = 0;

    if (text.len == 0 || text.len > 12)
        return -1;
    for (size_t i = 0; i < text.len; i++) {
        if (text.base[i] < '0' || text.base[i] > '9')
            return -1;
        value = value * 10 + (text.base[i] - '0');
    }
    if (value < min || value > max)
        return -1;
    *out = value;
    return 0;
}

static int valid_job_id(h2o_iovec_t id)
{
    return jw_job_id_valid(id.base, id.len);
}

/* Checks a comma list of statuses; writes the first bad one into bad. */
static int valid_statuses(h2o_iovec_t list, h2o_iovec_t *bad)
{
    const char *p = list.base, *end = list.base + list.len;

    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        if (jw_status_parse(p, (size_t)(stop - p)) == JW_STATUS_UNKNOWN) {
            *bad = h2o_iovec_init(p, (size_t)(stop - p));
            return 0;
        }
        p = stop + 1;
    }
    return 1;
}

/* --- GET /api/cloud/jobs ----------------------------------------------- */

typedef struct list_req {
    jw_app_t *app;
    jw_reqref_t *ref;
    jw_list_query_t query;
    int sync_active;
    char *sync_error; /* what the provider refresh reported, or NULL */
} list_req_t;

static void on_list(void *data, jw_store_err_t err, long long total, const jw_job_record_t *jobs,
                    size_t count)
{
    list_req_t *lr = data;
    h2o_req_t *req = jw_reqref_get(lr->ref);

    if (req != NULL && err != JW_STORE_OK) {
        jw_http_send_error(req, JW_E_REDIS_UNAVAILABLE, "the job store is unavailable; retry");
    } else if (req != NULL) {
        long long now = jw_clock_wall_ms();
        yajl_gen g = jw_gen_new();
        yajl_gen_map_open(g);
        jw_gen_key(g, "jobs");
        yajl_gen_array_open(g);
        for (size_t i = 0; i < count; i++)
            jw_job_json(g, jobs[i].fields, jobs[i].count, now);
        yajl_gen_array_close(g);
        jw_gen_kv_int(g, "total", total);
        jw_gen_kv_int(g, "limit", lr->query.limit);
        jw_gen_kv_int(g, "offset", lr->query.offset);
        if (lr->sync_active) {
            jw_gen_kv_bool(g, "synced", lr->sync_error == NULL);
            jw_gen_kv_str(g, "sync_error", lr->sync_error);
        }
        yajl_gen_map_close(g);
        jw_http_send_json(req, 200, g);
        yajl_gen_free(g);
    }
    jw_reqref_release(lr->ref);
    free(lr->sync_error);
    free((char *)lr->query.statuses);
    free(lr);
}

/* Reads limit and offset; returns 0, or -1 after sending a 400 response. */
static int read_paging(h2o_req_t *req, jw_list_query_t *q)
{
    int found;
    h2o_iovec_t v;

    q->limit = 50;
    v = jw_http_query_param(req, "limit", &found);
    if (found < 0 || (found && parse_long(v, 1, LIMIT_MAX, &q->limit) != 0)) {
        jw_http_send_error(req, JW_E_INVALID_PARAMETER, "limit must be 1-%d", LIMIT_MAX);
        return -1;
    }

    q->offset = 0;
    v = jw_http_query_param(req, "offset", &found);
    if (found < 0 || (found && parse_long(v, 0, OFFSET_MAX, &q->offset) != 0)) {
        jw_http_send_error(req, JW_E_INVALID_PARAMETER, "offset must be an integer 0-%ld",
                           OFFSET_MAX);
        return -1;
    }
    return 0;
}

/* Reads provider and status; returns 0, or -1 after sending a 400 response. */
static int read_filters(h2o_req_t *req, jw_list_query_t *q)
{
    int found;
    h2o_iovec_t v, bad;

    v = jw_http_query_param(req, "provider", &found);
    if (found < 0 || (found && !h2o_memis(v.base, v.len, H2O_STRLIT("replicate")))) {
        jw_http_send_error(req, JW_E_INVALID_PARAMETER, "provider must be replicate");
        return -1;
    }
    q->provider = found ? "replicate" : NULL;

    v = jw_http_query_param(req, "status", &found);
    if (found < 0 || (found && !valid_statuses(v, &bad))) {
        jw_http_send_error(req, JW_E_INVALID_PARAMETER,
                           "status must be a comma list of pending, uploading, queued, running, "
                           "completed, failed, cancelled (got \"%.*s\")",
                           found < 0 ? 0 : (int)(bad.len > 40 ? 40 : bad.len), found < 0 ? "" : bad.base);
        return -1;
    }
    /* A copy: the request's pool may be gone when a refresh finishes. */
    q->statuses = found ? strndup(v.base, v.len) : NULL;
    return 0;
}

/* Reads sync_active; returns 0, or -1 after sending a 400 response. */
static int read_sync_active(h2o_req_t *req, int *sync_active)
{
    int found;
    h2o_iovec_t v = jw_http_query_param(req, "sync_active", &found);

    *sync_active = found > 0 && h2o_memis(v.base, v.len, H2O_STRLIT("true"));
    if (found < 0 || (found && !*sync_active && !h2o_memis(v.base, v.len, H2O_STRLIT("false")))) {
        jw_http_send_error(req, JW_E_INVALID_PARAMETER, "sync_active must be true or false");
        return -1;
    }
    return 0;
}

static void on_refreshed(void *data, const char *error)
{
    list_req_t *lr = data;

    if (error != NULL)
        lr->sync_error = strdup(error);
    jw_store_list_jobs(lr->app->store, &lr->query, on_list, lr);
}

void jw_api_list_jobs(jw_app_t *app, h2o_req_t *req)
{
    list_req_t *lr = calloc(1, sizeof(*lr));
    if (lr == NULL)
        abort();

    if (read_paging(req, &lr->query) != 0 || read_filters(req, &lr->query) != 0 ||
        read_sync_active(req, &lr->sync_active) != 0) {
        free((char *)lr->query.statuses);
        free(lr);
        return;
    }
    lr->app = app;
    lr->ref = jw_reqref_new(app, req);

    /* sync_active refreshes active jobs from the provider before listing,
     * so the answer is current; the list is served even if that fails. */
    if (lr->sync_active)
        jw_api_refresh_active(app, on_refreshed, lr);
    else
        jw_store_list_jobs(app->store, &lr->query, on_list, lr);
}

/* --- GET /api/cloud/jobs/{id} and /inline-progress ---------------------- */

typedef struct job_req {
    jw_reqref_t *ref;
    int progress_view;
    char job_id[JOB_ID_MAX + 1];
} job_req_t;

static void write_progress_view(yajl_gen g, const jw_field_t *fields, size_t count)
{
    const jw_field_t *status = jw_fields_find(fields, count, "status");
    const jw_field_t *stage = jw_fields_find(fields, count, "stage");
    const jw_field_t *progress = jw_fields_find(fields, count, "progress");
    const jw_field_t *last_log = jw_fields_find(fields, count, "last_log");
    int running = status && h2o_memis(status->value, status->value_len, H2O_STRLIT("running"));

    /* Stage and progress describe a run in progress; other statuses get
     * nulls so a finished card does not show a stale bar. */
    yajl_gen_map_open(g);
    jw_gen_kv_strn(g, "job_id", jw_fields_find(fields, count, "job_id")->value,
                   jw_fields_find(fields, count, "job_id")->value_len);
    jw_gen_kv_strn(g, "status", status ? status->value : NULL, status ? status->value_len : 0);
    jw_gen_kv_strn(g, "stage", running && stage ? stage->value : NULL, stage ? stage->value_len : 0);
    if (running && progress != NULL)
        jw_gen_kv_double(g, "progress", strtod(progress->value, NULL));
    else
        jw_gen_kv_null(g, "progress");
    jw_gen_kv_strn(g, "last_log", last_log ? last_log->value : NULL,
                   last_log ? last_log->value_len : 0);
    yajl_gen_map_close(g);
}

static void on_job(void *data, jw_store_err_t err, const jw_field_t *fields, size_t count)
{
    job_req_t *jr = data;
    h2o_req_t *req = jw_reqref_get(jr->ref);

    if (req == NULL) {
        /* The client left; nothing to answer. */
    } else if (err != JW_STORE_OK) {
        jw_http_send_error(req, JW_E_REDIS_UNAVAILABLE, "the job store is unavailable; retry");
    } else if (count == 0 || jw_fields_find(fields, count, "job_id") == NULL) {
        jw_http_send_error(req, JW_E_JOB_NOT_FOUND, "job %s not found", jr->job_id);
    } else {
        yajl_gen g = jw_gen_new();
        if (jr->progress_view) {
            write_progress_view(g, fields, count);
        } else {
            yajl_gen_map_open(g);
            jw_gen_key(g, "job");
            jw_job_json(g, fields, count, jw_clock_wall_ms());
            yajl_gen_map_close(g);
        }
        jw_http_send_json(req, 200, g);
        yajl_gen_free(g);
    }
    jw_reqref_release(jr->ref);
    free(jr);
}

static void get_job(jw_app_t *app, h2o_req_t *req, h2o_iovec_t job_id, int progress_view)
{
    if (!valid_job_id(job_id)) {
        /* Such an id can never exist: ids are checked when jobs are stored. */
        jw_http_send_error(req, JW_E_JOB_NOT_FOUND,
                           "job not found: ids are 1-%d characters of A-Z, a-z, 0-9, - and _",
                           JOB_ID_MAX);
        return;
    }

    job_req_t *jr = calloc(1, sizeof(*jr));
    if (jr == NULL)
        abort();
    memcpy(jr->job_id, job_id.base, job_id.len);
    jr->progress_view = progress_view;
    jr->ref = jw_reqref_new(app, req);
    jw_store_get_job(app->store, jr->job_id, on_job, jr);
}

void jw_api_get_job(jw_app_t *app, h2o_req_t *req, h2o_iovec_t job_id)
{
    get_job(app, req, job_id, 0);
}

void jw_api_inline_progress(jw_app_t *app, h2o_req_t *req, h2o_iovec_t job_id)
{
    get_job(app, req, job_id, 1);
}
