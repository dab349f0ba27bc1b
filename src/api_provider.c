/*
 * Provider endpoints: sync, validate, cancel, logs, delete, and the
 * refresh behind GET /api/cloud/jobs?sync_active=true. Each calls the
 * Replicate client (replicate_client.h) and writes the results through
 * jw_store_apply(), the one write path, before it responds, so a read
 * right after sees them. Provider failures become 502 provider_error or
 * 504 provider_timeout with the provider's message. Nothing here blocks
 * the loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/clock.h"
#include "jobwire/event.h"
#include "jobwire/fields.h"
#include "jobwire/http.h"
#include "jobwire/json_gen.h"
#include "jobwire/log.h"
#include "jobwire/replicate_client.h"

#define JOB_ID_MAX JW_JOB_ID_MAX
#define MESSAGE_MAX 320

/* A sync looks at the 100 most recent jobs of the account (SPEC). */
#define SYNC_MAX_JOBS 100

/* sync_active refreshes at most this many active jobs, this many at once,
 * so one dashboard cannot take every client slot. */
#define REFRESH_MAX_JOBS 500
#define REFRESH_WINDOW 8

/* --- shared helpers --------------------------------------------------- */

static int valid_job_id(h2o_iovec_t id)
{
    return jw_job_id_valid(id.base, id.len);
}

static void send_unknown_id(h2o_req_t *req)
{
    jw_http_send_error(req, JW_E_JOB_NOT_FOUND,
                       "job not found: ids are 1-%d characters of A-Z, a-z, 0-9, - and _",
                       JOB_ID_MAX);
}

/*
 * Logs a failed provider call and sends its error response: 504 for a
 * timeout, 503 without a token or while stopping, 502 otherwise.
 */
static void send_provider_error(h2o_req_t *req, const jw_replicate_outcome_t *out,
                                const char *what, const char *job_id)
{
    jw_warn("provider", "%s failed: %s job=%s http_status=%ld attempts=%d", what, out->message,
            job_id != NULL ? job_id : "-", out->http_status, out->attempts);
    switch (out->err) {
    case JW_REPLICATE_TIMEOUT:
        jw_http_send_error(req, JW_E_PROVIDER_TIMEOUT, "%s", out->message);
        break;
    case JW_REPLICATE_NO_TOKEN:
        jw_http_send_error(req, JW_E_PROVIDER_NOT_CONFIGURED, "%s", out->message);
        break;
    case JW_REPLICATE_CANCELLED:
        jw_http_send_error(req, JW_E_SHUTTING_DOWN, "%s", out->message);
        break;
    default:
        jw_http_send_error(req, JW_E_PROVIDER_ERROR, "%s", out->message);
        break;
    }
}

static void send_store_error(h2o_req_t *req)
{
    jw_http_send_error(req, JW_E_REDIS_UNAVAILABLE, "the job store is unavailable; retry");
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL)
        abort();
    return p;
}

/* Applies one provider object as a "sync" event. */
static void apply_event(jw_app_t *app, const jw_event_t *ev, jw_apply_cb cb, void *data)
{
    jw_fields_t fields = {.count = 0};

    jw_event_to_fields(ev, "sync", NULL, &fields);
    jw_store_apply(app->store, fields.items, fields.count, cb, data);
    jw_fields_clear(&fields);
}

/* --- POST /api/cloud/jobs/sync ------------------------------------------ */

typedef struct sync_op {
    jw_app_t *app;
    jw_reqref_t *ref;
    int lists_left;
    jw_event_t *events[2];
    size_t counts[2];
    jw_replicate_err_t err;         /* the first list failure, if any */
    long http_status;
    int attempts;
    char message[MESSAGE_MAX];
    size_t applies_left;
    size_t applied;
    long long created;
    long long changed;
    int store_failed;
} sync_op_t;

static void sync_free(sync_op_t *op)
{
    for (int i = 0; i < 2; i++)
        jw_replicate_events_free(op->events[i], op->counts[i]);
    jw_reqref_release(op->ref);
    free(op);
}

static void answer_sync(sync_op_t *op)
{
    h2o_req_t *req = jw_reqref_get(op->ref);
    char message[96];

    jw_info("sync", "sync finished: fetched=%zu new=%lld changed=%lld store_failed=%d",
            op->applied, op->created, op->changed, op->store_failed);
    if (req == NULL) {
        /* The client left; the store contains the jobs anyway. */
    } else if (op->store_failed) {
        send_store_error(req);
    } else {
        yajl_gen g = jw_gen_new();

        snprintf(message, sizeof(message), "Discovered %lld new jobs from Replicate", op->created);
        yajl_gen_map_open(g);
        jw_gen_kv_int(g, "synced", op->created);
        jw_gen_kv_str(g, "message", message);
        jw_gen_kv_int(g, "updated", op->changed - op->created);
        jw_gen_kv_int(g, "fetched", (long long)op->applied);
        yajl_gen_map_close(g);
        jw_http_send_json(req, 200, g);
        yajl_gen_free(g);
    }
    sync_free(op);
}

static void sync_apply_done(sync_op_t *op)
{
    if (--op->applies_left == 0)
        answer_sync(op);
}

static void on_sync_applied(void *data, jw_store_err_t err, const jw_apply_result_t *result)
{
    sync_op_t *op = data;

    if (err != JW_STORE_OK) {
        op->store_failed = 1;
    } else {
        /* created comes from apply.lua's own check, inside the script that
         * creates the job, so two replicas syncing at once count each new
         * job once between them. */
        op->created += result->created == 1;
        op->changed += result->changed == 1;
    }
    sync_apply_done(op);
}

/* Newest first; a training before a prediction of the same instant, so
 * an id listed by both keeps the training's kind. */
static int newest_first(const void *a, const void *b)
{
    const jw_event_t *x = *(const jw_event_t *const *)a, *y = *(const jw_event_t *const *)b;

    if (x->created_ms != y->created_ms)
        return x->created_ms > y->created_ms ? -1 : 1;
    return strcmp(y->kind, x->kind);
}

static int seen_before(jw_event_t *const *list, size_t n, const char *job_id)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i]->job_id, job_id) == 0)
            return 1;
    }
    return 0;
}

/* Merges both lists newest first and keeps the first SYNC_MAX_JOBS distinct jobs. */
static size_t merge_lists(sync_op_t *op, jw_event_t **out)
{
    size_t total = op->counts[0] + op->counts[1], n = 0;
    jw_event_t **all = xcalloc(total + 1, sizeof(*all));

    for (size_t i = 0; i < op->counts[0]; i++)
        all[i] = &op->events[0][i];
    for (size_t i = 0; i < op->counts[1]; i++)
        all[op->counts[0] + i] = &op->events[1][i];
    qsort(all, total, sizeof(*all), newest_first);

    for (size_t i = 0; i < total && n < SYNC_MAX_JOBS; i++) {
        if (!seen_before(out, n, all[i]->job_id))
            out[n++] = all[i];
    }
    free(all);
    return n;
}

static void sync_apply_all(sync_op_t *op)
{
    jw_event_t *chosen[SYNC_MAX_JOBS];
    size_t n = merge_lists(op, chosen);

    /* One extra count keeps the op alive until every apply was sent, even
     * if the store calls back for some of them at once. */
    op->applied = n;
    op->applies_left = n + 1;
    for (size_t i = 0; i < n; i++)
        apply_event(op->app, chosen[i], on_sync_applied, op);
    sync_apply_done(op);
}

static void on_sync_list(sync_op_t *op, int index, const jw_replicate_outcome_t *out,
                         jw_event_t *events, size_t count)
{
    op->events[index] = events;
    op->counts[index] = count;
    if (out->err != JW_REPLICATE_OK && op->err == JW_REPLICATE_OK) {
        op->err = out->err;
        op->http_status = out->http_status;
        op->attempts = out->attempts;
        snprintf(op->message, sizeof(op->message), "%s", out->message);
    }
    if (--op->lists_left > 0)
        return;

    if (op->err == JW_REPLICATE_OK) {
        sync_apply_all(op);
        return;
    }

    /* A partial view would make N meaningless: nothing is applied. */
    h2o_req_t *req = jw_reqref_get(op->ref);
    jw_replicate_outcome_t failed = {op->err, op->http_status, op->message, op->attempts};
    if (req != NULL && op->err != JW_REPLICATE_CANCELLED)
        send_provider_error(req, &failed, "sync", NULL);
    sync_free(op);
}

static void on_sync_trainings(void *data, const jw_replicate_outcome_t *out, jw_event_t *events,
                              size_t count)
{
    on_sync_list(data, 0, out, events, count);
}

static void on_sync_predictions(void *data, const jw_replicate_outcome_t *out,
                                jw_event_t *events, size_t count)
{
    on_sync_list(data, 1, out, events, count);
}

void jw_api_sync(jw_app_t *app, h2o_req_t *req)
{
    sync_op_t *op;

    if (!jw_replicate_has_token(app->replicate)) {
        jw_http_send_error(req, JW_E_PROVIDER_NOT_CONFIGURED,
                           "no Replicate API token is configured; set REPLICATE_API_TOKEN");
        return;
    }

    op = xcalloc(1, sizeof(*op));
    op->app = app;
    op->ref = jw_reqref_new(app, req);
    op->lists_left = 2;
    jw_replicate_list_jobs(app->replicate, "training", SYNC_MAX_JOBS, on_sync_trainings, op);
    jw_replicate_list_jobs(app->replicate, "prediction", SYNC_MAX_JOBS, on_sync_predictions, op);
}

/* --- sync_active: refresh every active job -------------------------------- */

typedef struct refresh_job {
    struct refresh_op *op;
    char job_id[JOB_ID_MAX + 1];
    char kind[16];
} refresh_job_t;

typedef struct refresh_op {
    jw_app_t *app;
    void (*done)(void *data, const char *error);
    void *data;
    refresh_job_t *jobs;
    size_t count, next, finished;
    size_t failed;
    char first_error[MESSAGE_MAX];
} refresh_op_t;

static void refresh_finish(refresh_op_t *op, const char *error)
{
    char message[MESSAGE_MAX + 64];

    if (error == NULL && op->failed > 0) {
        snprintf(message, sizeof(message), "%zu of %zu active jobs not refreshed: %s",
                 op->failed, op->count, op->first_error);
        error = message;
    }
    if (error != NULL)
        jw_warn("sync", "refresh of active jobs incomplete: %s", error);
    op->done(op->data, error);
    free(op->jobs);
    free(op);
}

static void refresh_failed(refresh_op_t *op, const char *job_id, const char *why)
{
    if (op->failed++ == 0)
        snprintf(op->first_error, sizeof(op->first_error), "job %s: %s", job_id, why);
}

static void refresh_launch(refresh_op_t *op);

static void refresh_job_done(refresh_op_t *op)
{
    if (++op->finished == op->count)
        refresh_finish(op, NULL);
    else
        refresh_launch(op);
}

static void on_refresh_applied(void *data, jw_store_err_t err, const jw_apply_result_t *result)
{
    refresh_job_t *job = data;

    (void)result;
    if (err != JW_STORE_OK)
        refresh_failed(job->op, job->job_id, "the job store is unavailable");
    refresh_job_done(job->op);
}

static void on_refresh_object(void *data, const jw_replicate_outcome_t *out, const jw_event_t *ev)
{
    refresh_job_t *job = data;

    if (ev == NULL) {
        refresh_failed(job->op, job->job_id, out->message);
        refresh_job_done(job->op);
        return;
    }
    /* Nothing may touch job or its op after this: the apply can finish
     * the whole refresh before it returns. */
    apply_event(job->op->app, ev, on_refresh_applied, job);
}

/* Keeps up to REFRESH_WINDOW provider calls in flight; each calls back later. */
static void refresh_launch(refresh_op_t *op)
{
    size_t running = op->next - op->finished;

    while (op->next < op->count && running < REFRESH_WINDOW) {
        refresh_job_t *job = &op->jobs[op->next++];

        running++;
        jw_replicate_get_job(op->app->replicate, job->kind, job->job_id, on_refresh_object, job);
    }
}

static void on_active_jobs(void *data, jw_store_err_t err, const jw_active_job_t *jobs,
                           size_t count)
{
    refresh_op_t *op = data;

    if (err != JW_STORE_OK) {
        refresh_finish(op, "the job store is unavailable");
        return;
    }
    if (count == 0) {
        refresh_finish(op, NULL);
        return;
    }
    if (!jw_replicate_has_token(op->app->replicate)) {
        refresh_finish(op, "no Replicate API token is configured; set REPLICATE_API_TOKEN");
        return;
    }

    op->jobs = xcalloc(count, sizeof(*op->jobs));
    for (size_t i = 0; i < count; i++) {
        op->jobs[op->count].op = op;
        snprintf(op->jobs[op->count].job_id, sizeof(op->jobs[0].job_id), "%s", jobs[i].job_id);
        snprintf(op->jobs[op->count].kind, sizeof(op->jobs[0].kind), "%s", jobs[i].kind);
        if (valid_job_id(h2o_iovec_init(jobs[i].job_id, strlen(jobs[i].job_id))))
            op->count++;
    }
    if (op->count == 0)
        refresh_finish(op, NULL);
    else
        refresh_launch(op);
}

void jw_api_refresh_active(jw_app_t *app, void (*done)(void *data, const char *error),
                           void *data)
{
    refresh_op_t *op = xcalloc(1, sizeof(*op));

    op->app = app;
    op->done = done;
    op->data = data;
    jw_store_active_jobs(app->store, REFRESH_MAX_JOBS, on_active_jobs, op);
}

/* --- GET /api/cloud/providers/replicate/validate --------------------------- */

typedef struct validate_op {
    jw_app_t *app;
    jw_reqref_t *ref;
} validate_op_t;

static void send_invalid(h2o_req_t *req, const jw_app_t *app, const char *code,
                         const char *reason)
{
    yajl_gen g = jw_gen_new();

    yajl_gen_map_open(g);
    jw_gen_kv_bool(g, "valid", 0);
    jw_gen_kv_str(g, "provider", "replicate");
    jw_gen_kv_str(g, "api_url", app->cfg->replicate_api_url);
    jw_gen_kv_str(g, "code", code);
    jw_gen_kv_str(g, "reason", reason);
    yajl_gen_map_close(g);
    jw_http_send_json(req, 200, g);
    yajl_gen_free(g);
}

static void send_valid(h2o_req_t *req, const jw_app_t *app, const char *account, size_t len)
{
    yajl_gen g = jw_gen_new();

    yajl_gen_map_open(g);
    jw_gen_kv_bool(g, "valid", 1);
    jw_gen_kv_str(g, "provider", "replicate");
    jw_gen_kv_str(g, "api_url", app->cfg->replicate_api_url);
    /* The account text was parsed and serialised by jobwire's own JSON code. */
    jw_gen_kv_raw(g, "account", account, len);
    yajl_gen_map_close(g);
    jw_http_send_json(req, 200, g);
    yajl_gen_free(g);
}

/* Sends valid:false with a code and a reason a person can act on. */
static void send_validate_failure(h2o_req_t *req, const jw_app_t *app,
                                  const jw_replicate_outcome_t *out)
{
    char reason[MESSAGE_MAX + 64];

    jw_info("provider", "token validation failed: %s http_status=%ld", out->message,
            out->http_status);
    if (out->err == JW_REPLICATE_HTTP && (out->http_status == 401 || out->http_status == 403)) {
        snprintf(reason, sizeof(reason), "Replicate rejected the API token: %s", out->message);
        send_invalid(req, app, "token_rejected", reason);
    } else if (out->err == JW_REPLICATE_TIMEOUT) {
        send_invalid(req, app, "timeout", out->message);
    } else if (out->err == JW_REPLICATE_NETWORK) {
        send_invalid(req, app, "unreachable", out->message);
    } else {
        send_invalid(req, app, "provider_error", out->message);
    }
}

static void on_account(void *data, const jw_replicate_outcome_t *out, const char *text,
                       size_t len)
{
    validate_op_t *op = data;
    h2o_req_t *req = jw_reqref_get(op->ref);

    if (req != NULL && out->err == JW_REPLICATE_OK)
        send_valid(req, op->app, text, len);
    else if (req != NULL && out->err != JW_REPLICATE_CANCELLED)
        send_validate_failure(req, op->app, out);
    jw_reqref_release(op->ref);
    free(op);
}

void jw_api_validate(jw_app_t *app, h2o_req_t *req)
{
    validate_op_t *op;

    if (!jw_replicate_has_token(app->replicate)) {
        send_invalid(req, app, "no_token",
                     "no Replicate API token is configured; set REPLICATE_API_TOKEN");
        return;
    }
    op = xcalloc(1, sizeof(*op));
    op->app = app;
    op->ref = jw_reqref_new(app, req);
    jw_replicate_get_account(app->replicate, on_account, op);
}

/* --- one job: cancel, logs, delete ----------------------------------------- */

typedef struct job_op {
    jw_app_t *app;
    jw_reqref_t *ref;
    char job_id[JOB_ID_MAX + 1];
    char provider_id[JOB_ID_MAX + 1]; /* the job's id at Replicate */
    char kind[16];
    int unstarted;     /* submitted through the queue and not created at Replicate yet */
    int provider_gone; /* cancel: Replicate returned 404 for the job */
} job_op_t;

static job_op_t *job_op_new(jw_app_t *app, h2o_req_t *req, h2o_iovec_t job_id)
{
    job_op_t *op = xcalloc(1, sizeof(*op));

    op->app = app;
    op->ref = jw_reqref_new(app, req);
    memcpy(op->job_id, job_id.base, job_id.len);
    return op;
}

static void job_op_free(job_op_t *op)
{
    jw_reqref_release(op->ref);
    free(op);
}

/* A job submitted through the queue has a local id and, once created at
 * Replicate, a provider id. Every other job uses one id for both. */
static void read_provider_id(job_op_t *op, const jw_field_t *fields, size_t count)
{
    const jw_field_t *provider_id = jw_fields_find(fields, count, "provider_job_id");
    const jw_field_t *submitted = jw_fields_find(fields, count, "submitted");

    if (provider_id != NULL && jw_job_id_valid(provider_id->value, provider_id->value_len)) {
        memcpy(op->provider_id, provider_id->value, provider_id->value_len);
        op->provider_id[provider_id->value_len] = '\0';
    } else if (submitted != NULL && submitted->value_len == 1 && submitted->value[0] == '1') {
        op->unstarted = 1;
    } else {
        snprintf(op->provider_id, sizeof(op->provider_id), "%s", op->job_id);
    }
}

/*
 * Reads the stored job for cancel and logs: answers 503 or 404 itself and
 * returns NULL, or returns the job's status and sets op->kind.
 */
static const jw_field_t *stored_status(job_op_t *op, h2o_req_t *req, jw_store_err_t err,
                                       const jw_field_t *fields, size_t count)
{
    const jw_field_t *status = jw_fields_find(fields, count, "status");
    const jw_field_t *kind = jw_fields_find(fields, count, "kind");

    if (err != JW_STORE_OK) {
        send_store_error(req);
        return NULL;
    }
    if (count == 0 || status == NULL) {
        jw_http_send_error(req, JW_E_JOB_NOT_FOUND, "job %s not found", op->job_id);
        return NULL;
    }
    if (kind != NULL && kind->value_len < sizeof(op->kind)) {
        memcpy(op->kind, kind->value, kind->value_len);
        op->kind[kind->value_len] = '\0';
    }
    read_provider_id(op, fields, count);
    return status;
}

/* POST /api/cloud/jobs/{id}/cancel */

static void on_cancel_applied(void *data, jw_store_err_t err, const jw_apply_result_t *result)
{
    job_op_t *op = data;
    h2o_req_t *req = jw_reqref_get(op->ref);

    if (req != NULL && err != JW_STORE_OK) {
        send_store_error(req);
    } else if (req != NULL) {
        yajl_gen g = jw_gen_new();

        yajl_gen_map_open(g);
        jw_gen_kv_str(g, "job_id", op->job_id);
        jw_gen_kv_str(g, "status", result->status);
        jw_gen_kv_bool(g, "cancelled", strcmp(result->status, "cancelled") == 0);
        jw_gen_kv_bool(g, "provider_gone", op->provider_gone);
        yajl_gen_map_close(g);
        jw_http_send_json(req, 200, g);
        yajl_gen_free(g);
    }
    job_op_free(op);
}

/* Records the job as cancelled without Replicate: it returned 404 for the
 * job, so nothing will ever finish it, or the job never reached it (a
 * queued submission, which also leaves the line). The event has no log
 * fields, so the stored stage, progress and last log stay as they are. */
static void mark_cancelled(job_op_t *op)
{
    jw_fields_t fields = {.count = 0};

    jw_fields_terminal_event(&fields, op->job_id, op->kind[0] != '\0' ? op->kind : NULL,
                             JW_STATUS_CANCELLED, NULL, op->unstarted ? "queue" : "sync");
    op->provider_gone = !op->unstarted;
    jw_store_apply(op->app->store, fields.items, fields.count, on_cancel_applied, op);
    jw_fields_clear(&fields);
}

static void on_cancel_answer(void *data, const jw_replicate_outcome_t *out, const jw_event_t *ev)
{
    job_op_t *op = data;
    h2o_req_t *req = jw_reqref_get(op->ref);

    if (ev != NULL) {
        apply_event(op->app, ev, on_cancel_applied, op);
    } else if (out->err == JW_REPLICATE_HTTP && out->http_status == 404) {
        jw_info("cancel", "job unknown at Replicate; marked cancelled job=%s", op->job_id);
        mark_cancelled(op);
    } else {
        if (req != NULL && out->err != JW_REPLICATE_CANCELLED)
            send_provider_error(req, out, "cancel", op->job_id);
        job_op_free(op);
    }
}

static void on_cancel_job(void *data, jw_store_err_t err, const jw_field_t *fields, size_t count)
{
    job_op_t *op = data;
    h2o_req_t *req = jw_reqref_get(op->ref);
    const jw_field_t *status;

    if (req == NULL) {
        job_op_free(op);
        return;
    }
    status = stored_status(op, req, err, fields, count);
    if (status == NULL) {
        job_op_free(op);
        return;
    }
    if (jw_status_is_terminal(jw_status_parse(status->value, status->value_len))) {
        jw_http_send_error(req, JW_E_CONFLICT, "job %s is already %.*s; only active jobs can "
                           "be cancelled", op->job_id, (int)status->value_len, status->value);
        job_op_free(op);
        return;
    }
    if (op->unstarted) {
        /* If its create call is in flight, the queue cancels the training
         * as soon as the response finds the job cancelled. */
        jw_info("cancel", "queued job cancelled before it started job=%s", op->job_id);
        mark_cancelled(op);
        return;
    }
    jw_replicate_cancel_job(op->app->replicate, op->kind, op->provider_id, on_cancel_answer, op);
}

void jw_api_cancel_job(jw_app_t *app, h2o_req_t *req, h2o_iovec_t job_id)
{
    job_op_t *op;

    if (!valid_job_id(job_id)) {
        send_unknown_id(req);
        return;
    }
    op = job_op_new(app, req, job_id);
    jw_store_get_job(app->store, op->job_id, on_cancel_job, op);
}

/* GET /api/cloud/jobs/{id}/logs */

static void on_logs(void *data, const jw_replicate_outcome_t *out, const char *text, size_t len)
{
    job_op_t *op = data;
    h2o_req_t *req = jw_reqref_get(op->ref);

    if (req == NULL || out->err == JW_REPLICATE_CANCELLED) {
        /* The client left, or the service is stopping: no response is sent. */
    } else if (out->err == JW_REPLICATE_HTTP && out->http_status == 404) {
        jw_http_send_error(req, JW_E_JOB_NOT_FOUND, "Replicate has no job %s", op->job_id);
    } else if (out->err != JW_REPLICATE_OK) {
        send_provider_error(req, out, "logs", op->job_id);
    } else {
        yajl_gen g = jw_gen_new();

        yajl_gen_map_open(g);
        jw_gen_kv_str(g, "job_id", op->job_id);
        jw_gen_kv_strn(g, "logs", text, len);
        yajl_gen_map_close(g);
        jw_http_send_json(req, 200, g);
        yajl_gen_free(g);
    }
    job_op_free(op);
}

static void on_logs_job(void *data, jw_store_err_t err, const jw_field_t *fields, size_t count)
{
    job_op_t *op = data;
    h2o_req_t *req = jw_reqref_get(op->ref);

    if (req == NULL || stored_status(op, req, err, fields, count) == NULL) {
        job_op_free(op);
        return;
    }
    if (op->unstarted) {
        jw_replicate_outcome_t none = {JW_REPLICATE_OK, 0, "", 0};

        on_logs(op, &none, NULL, 0); /* not started at Replicate: no logs yet */
        return;
    }
    jw_replicate_get_logs(op->app->replicate, op->kind, op->provider_id, on_logs, op);
}

void jw_api_job_logs(jw_app_t *app, h2o_req_t *req, h2o_iovec_t job_id)
{
    job_op_t *op;

    if (!valid_job_id(job_id)) {
        send_unknown_id(req);
        return;
    }
    op = job_op_new(app, req, job_id);
    jw_store_get_job(app->store, op->job_id, on_logs_job, op);
}

/* DELETE /api/cloud/jobs/{id} */

static void on_deleted(void *data, jw_store_err_t err, jw_delete_result_t result,
                       const char *status)
{
    job_op_t *op = data;
    h2o_req_t *req = jw_reqref_get(op->ref);

    if (req == NULL) {
        /* The client left; the delete happened or not, either way. */
    } else if (err != JW_STORE_OK) {
        send_store_error(req);
    } else if (result == JW_DELETE_NOT_FOUND) {
        jw_http_send_error(req, JW_E_JOB_NOT_FOUND, "job %s not found", op->job_id);
    } else if (result == JW_DELETE_ACTIVE) {
        jw_http_send_error(req, JW_E_JOB_ACTIVE, "job %s is still %s; cancel it first",
                           op->job_id, status);
    } else {
        yajl_gen g = jw_gen_new();

        jw_info("jobs", "job deleted from the store job=%s status=%s", op->job_id, status);
        yajl_gen_map_open(g);
        jw_gen_kv_str(g, "job_id", op->job_id);
        jw_gen_kv_bool(g, "deleted", 1);
        jw_gen_kv_str(g, "status", status);
        yajl_gen_map_close(g);
        jw_http_send_json(req, 200, g);
        yajl_gen_free(g);
    }
    job_op_free(op);
}

void jw_api_delete_job(jw_app_t *app, h2o_req_t *req, h2o_iovec_t job_id)
{
    job_op_t *op;

    if (!valid_job_id(job_id)) {
        send_unknown_id(req);
        return;
    }
    op = job_op_new(app, req, job_id);
    jw_store_delete_job(app->store, op->job_id, on_deleted, op);
}
