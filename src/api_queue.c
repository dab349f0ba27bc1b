/*
 * The submission queue's endpoints: POST /api/cloud/jobs queues a
 * training as a pending job (submission.c checks the body, apply.lua
 * stores it with the Idempotency-Key check in one script), and GET
 * /api/cloud/queue shows the line, the slots and the last round.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobwire/clock.h"
#include "jobwire/fields.h"
#include "http_internal.h"
#include "jobwire/job_json.h"
#include "jobwire/json_gen.h"
#include "jobwire/log.h"
#include "jobwire/queue.h"
#include "jobwire/store_queue.h"
#include "jobwire/submission.h"

/* How long an Idempotency-Key names its job (24 h). */
#define IDEMPOTENCY_TTL_S 86400
#define VIEW_LIMIT_DEFAULT 100
#define VIEW_LIMIT_MAX 1000

static void send_store_error(h2o_req_t *req)
{
    jw_http_send_error(req, JW_E_REDIS_UNAVAILABLE, "the job store is unavailable; retry");
}

/* --- POST /api/cloud/jobs -------------------------------------------------- */

typedef struct submit_op {
    jw_app_t *app;
    jw_reqref_t *ref;
    char key[JW_IDEMPOTENCY_KEY_MAX + 1];
    /* The key as stored: scoped by the caller's name, so two API keys
     * that pick the same Idempotency-Key never get each other's job. */
    char scoped_key[JW_KEY_NAME_MAX + JW_IDEMPOTENCY_KEY_MAX + 2];
} submit_op_t;

/* 400 with one entry per bad field, and every field named in the message. */
static void send_field_errors(h2o_req_t *req, const jw_submit_error_t *errors, size_t count)
{
    char message[512] = "";
    size_t used = 0;
    yajl_gen g = jw_gen_new();

    for (size_t i = 0; i < count && used < sizeof(message); i++)
        used += (size_t)snprintf(message + used, sizeof(message) - used, "%s%s",
                                 i > 0 ? "; " : "", errors[i].message);
    yajl_gen_map_open(g);
    jw_gen_kv_str(g, "error", jw_error_code(JW_E_INVALID_FIELD));
    jw_gen_kv_str(g, "message", message);
    jw_gen_key(g, "fields");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < count; i++) {
        yajl_gen_map_open(g);
        jw_gen_kv_str(g, "field", errors[i].field);
        jw_gen_kv_str(g, "message", errors[i].message);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    jw_http_send_json(req, jw_error_status(JW_E_INVALID_FIELD), g);
    yajl_gen_free(g);
}

static void send_job(h2o_req_t *req, int status, const jw_field_t *job, size_t count,
                     int replayed)
{
    const jw_field_t *id = jw_fields_find(job, count, "job_id");
    yajl_gen g = jw_gen_new();

    if (status == 202 && id != NULL) {
        char *location = h2o_mem_alloc_pool(&req->pool, id->value_len + 32);
        int n = snprintf(location, id->value_len + 32, "/api/cloud/jobs/%.*s",
                         (int)id->value_len, id->value);

        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL, location,
                       (size_t)n);
    }
    yajl_gen_map_open(g);
    jw_gen_key(g, "job");
    jw_job_json(g, job, count, jw_clock_wall_ms());
    jw_gen_kv_bool(g, "replayed", replayed);
    yajl_gen_map_close(g);
    jw_http_send_json(req, status, g);
    yajl_gen_free(g);
}

static void on_submitted(void *data, jw_store_err_t err, jw_submit_outcome_t outcome,
                         const char *job_id, const jw_field_t *job, size_t count)
{
    submit_op_t *op = data;
    h2o_req_t *req = jw_reqref_get(op->ref);

    if (err == JW_STORE_OK && outcome == JW_SUBMIT_CREATED)
        jw_info("queue", "job submitted job=%s idempotency_key=%s", job_id,
                op->key[0] != '\0' ? "yes" : "no");
    if (req == NULL) {
        /* The client left; a created job stays queued, and a retry with
         * the same Idempotency-Key finds it. */
    } else if (err != JW_STORE_OK) {
        send_store_error(req);
    } else if (outcome == JW_SUBMIT_CREATED || outcome == JW_SUBMIT_REPLAY) {
        jw_http_audit_set_job(req, job_id);
        send_job(req, outcome == JW_SUBMIT_CREATED ? 202 : 200, job, count,
                 outcome == JW_SUBMIT_REPLAY);
    } else if (outcome == JW_SUBMIT_MISMATCH) {
        jw_http_audit_set_job(req, job_id);
        jw_http_send_error(req, JW_E_IDEMPOTENCY_KEY_REUSED,
                           "Idempotency-Key %.64s was used for job %s with a different request "
                           "body; send the same body to get that job, or use a new key",
                           op->key, job_id);
    } else if (outcome == JW_SUBMIT_GONE) {
        jw_http_send_error(req, JW_E_JOB_NOT_FOUND,
                           "Idempotency-Key %.64s named job %s, which was deleted; use a new "
                           "key to submit again", op->key, job_id);
    } else {
        jw_http_send_error(req, JW_E_QUEUE_FULL,
                           "the queue already holds %d waiting jobs "
                           "(JOBWIRE_QUEUE_MAX_PENDING); retry later",
                           op->app->cfg->queue_max_pending);
    }
    jw_reqref_release(op->ref);
    free(op);
}

static void add_submission_fields(const jw_submission_t *sub, jw_fields_t *f)
{
    jw_fields_add_str(f, "model", sub->model);
    jw_fields_add_str(f, "version", sub->version);
    jw_fields_add_str(f, "destination", sub->destination);
    jw_fields_add(f, "input", sub->input_json, sub->input_len);
    if (sub->hardware[0] != '\0')
        jw_fields_add_str(f, "hardware", sub->hardware);
    if (sub->user_id[0] != '\0')
        jw_fields_add_str(f, "user_id", sub->user_id);
}

static void submit(jw_app_t *app, h2o_req_t *req, const jw_submission_t *sub, h2o_iovec_t key)
{
    submit_op_t *op = calloc(1, sizeof(*op));
    jw_fields_t fields = {.count = 0};
    char job_id[36], digest[65];
    jw_submit_request_t request;

    if (op == NULL)
        abort();
    op->app = app;
    memcpy(op->key, key.base != NULL ? key.base : "", key.len);
    jw_principal_t caller;
    jw_http_identify(app, req, &caller);
    snprintf(op->scoped_key, sizeof(op->scoped_key), "%s:%s", jw_principal_name(&caller),
             op->key);
    op->ref = jw_reqref_new(app, req);
    jw_submission_new_id(job_id);
    jw_submission_digest(sub, digest);
    add_submission_fields(sub, &fields);

    request.job_id = job_id;
    request.idempotency_key = key.base != NULL ? op->scoped_key : NULL;
    request.digest = digest;
    request.key_ttl_s = IDEMPOTENCY_TTL_S;
    request.max_pending = app->cfg->queue_max_pending;
    request.fields = fields.items;
    request.count = fields.count;
    jw_store_queue_submit(app->store, &request, on_submitted, op);
    jw_fields_clear(&fields);
}

void jw_api_submit_job(jw_app_t *app, h2o_req_t *req)
{
    h2o_iovec_t key = jw_http_header(req, "idempotency-key");
    jw_submit_error_t errors[JW_SUBMIT_ERRORS_MAX];
    jw_submission_t sub;
    size_t count = 0;

    if (key.base != NULL && !jw_idempotency_key_valid(key.base, key.len)) {
        jw_http_send_error(req, JW_E_INVALID_HEADER, "Idempotency-Key must be 1-%d visible "
                           "ASCII characters without spaces", JW_IDEMPOTENCY_KEY_MAX);
        return;
    }
    if (jw_submission_parse(req->entity.base, req->entity.len, &sub, errors,
                            JW_SUBMIT_ERRORS_MAX, &count) != 0) {
        if (count > 0 && errors[0].field[0] == '\0')
            jw_http_send_error(req, JW_E_INVALID_BODY, "%s", errors[0].message);
        else
            send_field_errors(req, errors, count);
        jw_submission_clear(&sub);
        return;
    }
    submit(app, req, &sub, key);
    jw_submission_clear(&sub);
}

/* --- GET /api/cloud/queue --------------------------------------------------- */

typedef struct view_op {
    jw_app_t *app;
    jw_reqref_t *ref;
} view_op_t;

static void write_entries(yajl_gen g, const jw_queue_view_t *view)
{
    jw_gen_key(g, "entries");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < view->entry_count; i++) {
        const jw_queue_entry_t *e = &view->entries[i];

        yajl_gen_map_open(g);
        jw_gen_kv_int(g, "position", (long long)i + 1);
        jw_gen_kv_str(g, "job_id", e->job_id);
        jw_gen_kv_str(g, "user_id", e->user_id[0] ? e->user_id : NULL);
        jw_gen_kv_str(g, "model", e->model[0] ? e->model : NULL);
        jw_gen_kv_str(g, "destination", e->destination[0] ? e->destination : NULL);
        jw_gen_kv_str(g, "created_at", e->created_at[0] ? e->created_at : NULL);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
}

static void write_holders(yajl_gen g, const jw_queue_view_t *view)
{
    jw_gen_key(g, "running");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < view->holder_count; i++) {
        const jw_queue_holder_t *h = &view->holders[i];

        yajl_gen_map_open(g);
        jw_gen_kv_str(g, "job_id", h->job_id);
        jw_gen_kv_str(g, "status", h->status[0] ? h->status : NULL);
        jw_gen_kv_str(g, "provider_job_id", h->provider_id[0] ? h->provider_id : NULL);
        jw_gen_kv_str(g, "user_id", h->user_id[0] ? h->user_id : NULL);
        jw_gen_kv_int(g, "slot_taken_ms", h->taken_ms);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
}

static void write_last_round(yajl_gen g, const jw_queue_view_t *view)
{
    jw_gen_key(g, "last_round");
    if (view->last_round_count == 0) {
        yajl_gen_null(g);
        return;
    }
    yajl_gen_map_open(g);
    for (size_t i = 0; i < view->last_round_count; i++) {
        const jw_field_t *f = &view->last_round[i];
        char name[64];

        snprintf(name, sizeof(name), "%.*s", (int)f->name_len, f->name);
        jw_gen_kv_strn(g, name, f->value, f->value_len);
    }
    yajl_gen_map_close(g);
}

static void send_view(h2o_req_t *req, const jw_app_t *app, const jw_queue_view_t *view)
{
    const jw_config_t *cfg = app->cfg;
    long long used = (long long)view->holder_count;
    long long free_slots = cfg->queue_max_concurrent - used;
    yajl_gen g = jw_gen_new();

    yajl_gen_map_open(g);
    jw_gen_kv_bool(g, "enabled", cfg->queue_enabled);
    jw_gen_kv_double(g, "interval_seconds", cfg->queue_interval_ms / 1000.0);
    jw_gen_kv_int(g, "max_concurrent", cfg->queue_max_concurrent);
    jw_gen_kv_int(g, "max_per_user", cfg->queue_max_per_user);
    jw_gen_kv_int(g, "max_pending", cfg->queue_max_pending);
    jw_gen_kv_int(g, "pending", view->pending);
    jw_gen_kv_int(g, "slots_used", used);
    jw_gen_kv_int(g, "slots_free", free_slots > 0 ? free_slots : 0);
    write_entries(g, view);
    write_holders(g, view);
    jw_gen_kv_str(g, "leader", view->leader[0] ? view->leader : NULL);
    jw_gen_kv_bool(g, "is_leader", app->queue != NULL && jw_queue_is_leader(app->queue));
    write_last_round(g, view);
    yajl_gen_map_close(g);
    jw_http_send_json(req, 200, g);
    yajl_gen_free(g);
}

static void on_view(void *data, jw_store_err_t err, const jw_queue_view_t *view)
{
    view_op_t *op = data;
    h2o_req_t *req = jw_reqref_get(op->ref);

    if (req != NULL && err != JW_STORE_OK)
        send_store_error(req);
    else if (req != NULL)
        send_view(req, op->app, view);
    jw_reqref_release(op->ref);
    free(op);
}

void jw_api_queue(jw_app_t *app, h2o_req_t *req)
{
    long limit = jw_http_query_int(req, "limit", 1, VIEW_LIMIT_MAX, VIEW_LIMIT_DEFAULT);
    view_op_t *op;

    if (limit < 0)
        return;
    op = calloc(1, sizeof(*op));
    if (op == NULL)
        abort();
    op->app = app;
    op->ref = jw_reqref_new(app, req);
    jw_store_queue_view(app->store, (size_t)limit, on_view, op);
}
