/*
 * One queue round (see queue_round.h). Every step that changes a job goes
 * through apply.lua: the create call's response (with local_job_id, which
 * records the provider id and its alias), a refusal (the job fails with
 * Replicate's message) and a lost job (failed, which frees its slot).
 * A transient error gives the claim back, so the job keeps its place.
 */
#include "jobwire/queue_round.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobwire/clock.h"
#include "jobwire/event.h"
#include "jobwire/fields.h"
#include "jobwire/log.h"
#include "jobwire/replicate_client.h"
#include "jobwire/submission.h"

#define MESSAGE_MAX 320

struct jw_queue_round_state {
    jw_app_t *app;
    char replica[160];
    jw_queue_round_done_cb done; /* NULL once detached */
    void *data;
    jw_queue_stats_t *stats;     /* the owner's counters; NULL once detached */
    uint64_t started_ms;
    size_t outstanding;          /* calls without a response yet, plus one while starting */
    size_t claimed, started, refused, requeued, checked, lost;
    long long freed, slots_used, pending;
    char first_error[MESSAGE_MAX];
};

/* A claimed job to create, or a started one to check, with its own copies. */
typedef struct task {
    jw_queue_round_state_t *round;
    char job_id[JW_JOB_ID_MAX + 1];
    char provider_id[JW_JOB_ID_MAX + 1];
    char kind[16];
    char model[JW_SUBMIT_NAME_MAX + 1];
    char version[JW_SUBMIT_VERSION_MAX + 1];
} task_t;

static void note_error(jw_queue_round_state_t *r, const char *job_id, const char *why)
{
    if (r->first_error[0] == '\0')
        snprintf(r->first_error, sizeof(r->first_error), "job %s: %s", job_id, why);
}

/* --- the end of a round -------------------------------------------------- */

static void record(jw_queue_round_state_t *r, uint64_t duration_ms)
{
    jw_fields_t f = {.count = 0};
    char at[48];

    jw_clock_iso_now(at);
    jw_fields_add_str(&f, "replica", r->replica);
    jw_fields_add_str(&f, "last_round_at", at);
    /* The last error stays, with its time, until another one replaces it,
     * so a round that went well does not hide it. */
    if (r->first_error[0] != '\0') {
        jw_fields_add_str(&f, "last_error", r->first_error);
        jw_fields_add_str(&f, "last_error_at", at);
    }
    jw_fields_addf(&f, "slots_used", "%lld", r->slots_used);
    jw_fields_addf(&f, "pending", "%lld", r->pending);
    jw_fields_addf(&f, "claimed", "%zu", r->claimed);
    jw_fields_addf(&f, "started", "%zu", r->started);
    jw_fields_addf(&f, "refused", "%zu", r->refused);
    jw_fields_addf(&f, "requeued", "%zu", r->requeued);
    jw_fields_addf(&f, "freed", "%lld", r->freed);
    jw_fields_addf(&f, "checked", "%zu", r->checked);
    jw_fields_addf(&f, "lost", "%zu", r->lost);
    jw_fields_addf(&f, "duration_ms", "%llu", (unsigned long long)duration_ms);
    jw_store_queue_record(r->app->store, f.items, f.count);
    jw_fields_clear(&f);
}

static void task_done(jw_queue_round_state_t *r)
{
    uint64_t duration;

    if (--r->outstanding > 0)
        return;
    duration = uv_now(r->app->loop) - r->started_ms;
    if (r->claimed == 0 && r->freed == 0 && r->lost == 0 && r->first_error[0] == '\0')
        jw_debug("queue", "round done: nothing to start slots_used=%lld pending=%lld",
                 r->slots_used, r->pending);
    else
        jw_info("queue", "round done: claimed=%zu started=%zu refused=%zu requeued=%zu "
                "freed=%lld lost=%zu slots_used=%lld pending=%lld%s%s", r->claimed, r->started,
                r->refused, r->requeued, r->freed, r->lost, r->slots_used, r->pending,
                r->first_error[0] != '\0' ? " error=" : "", r->first_error);
    if (r->stats != NULL) {
        r->stats->rounds++;
        r->stats->started += r->started;
        r->stats->refused += r->refused;
        r->stats->requeued += r->requeued;
        r->stats->lost += r->lost;
    }
    if (r->done != NULL) {
        record(r, duration);
        r->done(r->data, duration);
    }
    free(r);
}

static void finish_task(task_t *t)
{
    jw_queue_round_state_t *r = t->round;

    free(t);
    task_done(r);
}

/* --- writing results ------------------------------------------------------- */

static void on_task_applied(void *data, jw_store_err_t err, const jw_apply_result_t *result)
{
    task_t *t = data;

    (void)result;
    if (err != JW_STORE_OK)
        note_error(t->round, t->job_id, "the job store is unavailable");
    finish_task(t);
}

/* Fails the local job with a reason; apply.lua frees its slot. */
static void fail_job(task_t *t, const char *message)
{
    jw_fields_t fields = {.count = 0};

    jw_fields_terminal_event(&fields, t->job_id, "training", JW_STATUS_FAILED, message, "queue");
    jw_store_apply(t->round->app->store, fields.items, fields.count, on_task_applied, t);
    jw_fields_clear(&fields);
}

/* Applies a provider object to the local job that t names. */
static void apply_object(task_t *t, const jw_event_t *ev, const char *source, jw_apply_cb cb)
{
    jw_fields_t fields = {.count = 0};

    jw_event_to_fields(ev, source, NULL, &fields);
    jw_fields_add_str(&fields, "local_job_id", t->job_id);
    jw_store_apply(t->round->app->store, fields.items, fields.count, cb, t);
    jw_fields_clear(&fields);
}

/* --- creating a claimed training ---------------------------------------------- */

/*
 * A refusal: Replicate rejected the request and would reject it again (a bad
 * destination, an unknown version). 401, 402 and 403 concern the account,
 * not the job, and 408 and 429 ask for a retry, so those jobs wait.
 */
static int is_refusal(const jw_replicate_outcome_t *out)
{
    long s = out->http_status;

    return out->err == JW_REPLICATE_HTTP && s >= 400 && s < 500 && s != 401 && s != 402 &&
           s != 403 && s != 408 && s != 429;
}

static void on_cancelled_late(void *data, const jw_replicate_outcome_t *out,
                              const jw_event_t *ev)
{
    task_t *t = data;

    if (ev == NULL)
        jw_warn("queue", "cancelling a training created after its job was cancelled failed: "
                "%s job=%s provider_id=%s", out->message, t->job_id, t->provider_id);
    finish_task(t);
}

static void on_start_applied(void *data, jw_store_err_t err, const jw_apply_result_t *result)
{
    task_t *t = data;

    if (err != JW_STORE_OK) {
        /* The webhook URL names the job, so a webhook still links it. */
        note_error(t->round, t->job_id, "started, but the job store is unavailable");
        jw_warn("queue", "training started but not recorded: redis unavailable job=%s "
                "provider_id=%s", t->job_id, t->provider_id);
        finish_task(t);
        return;
    }
    if (strcmp(result->status, "cancelled") == 0) {
        /* Cancelled while the create call was in flight: stop it at Replicate too. */
        jw_info("queue", "job cancelled while starting; cancelling its training job=%s "
                "provider_id=%s", t->job_id, t->provider_id);
        jw_replicate_cancel_job(t->round->app->replicate, "training", t->provider_id,
                                on_cancelled_late, t);
        return;
    }
    t->round->started++;
    jw_info("queue", "training started job=%s provider_id=%s status=%s", t->job_id,
            t->provider_id, result->status);
    finish_task(t);
}

static void on_requeued_positions(void *data, jw_store_err_t err)
{
    task_t *t = data;

    if (err != JW_STORE_OK)
        note_error(t->round, t->job_id, "cannot renumber the line: redis unavailable");
    finish_task(t);
}

/* Back in line at its place: the jobs behind it move down again. */
static void on_requeued(void *data, jw_store_err_t err)
{
    task_t *t = data;

    if (err != JW_STORE_OK) {
        note_error(t->round, t->job_id, "cannot put the job back in line: redis unavailable");
        finish_task(t);
        return;
    }
    jw_store_queue_positions(t->round->app->store, NULL, 0, on_requeued_positions, t);
}

static void on_created(void *data, const jw_replicate_outcome_t *out, const jw_event_t *ev)
{
    task_t *t = data;
    jw_queue_round_state_t *r = t->round;

    if (ev != NULL) {
        snprintf(t->provider_id, sizeof(t->provider_id), "%s", ev->job_id);
        apply_object(t, ev, "queue", on_start_applied);
    } else if (out->err == JW_REPLICATE_CANCELLED) {
        finish_task(t); /* stopping: the claim goes back in line when it expires */
    } else if (is_refusal(out)) {
        r->refused++;
        jw_warn("queue", "training refused by Replicate: %s job=%s", out->message, t->job_id);
        fail_job(t, out->message);
    } else {
        static jw_log_limit_t limit;
        unsigned long long held;
        r->requeued++;
        note_error(r, t->job_id, out->message);
        /* The same cause (no token, Replicate down) repeats every round. */
        if (jw_log_allow(&limit, 10000, &held))
            jw_warn("queue", "training not started, back in line: %s job=%s attempts=%d "
                    "similar_lines_suppressed=%llu", out->message, t->job_id, out->attempts, held);
        jw_store_queue_unclaim(r->app->store, t->job_id, 0, on_requeued, t);
    }
}

static void copy_field(const jw_queue_claim_t *claim, const char *name, char *out, size_t size)
{
    const jw_field_t *f = jw_fields_find(claim->fields, claim->count, name);
    size_t n = f != NULL ? f->value_len : 0;

    if (n >= size)
        n = size - 1;
    memcpy(out, f != NULL ? f->value : "", n);
    out[n] = '\0';
}

static void start_training(jw_queue_round_state_t *r, const jw_queue_claim_t *claim)
{
    const jw_config_t *cfg = r->app->cfg;
    const jw_field_t *input = jw_fields_find(claim->fields, claim->count, "input");
    char destination[JW_SUBMIT_NAME_MAX + 1], webhook[2048];
    const char *webhook_url = NULL;
    task_t *t = calloc(1, sizeof(*t));
    size_t len;

    if (t == NULL)
        abort();
    t->round = r;
    snprintf(t->job_id, sizeof(t->job_id), "%s", claim->job_id);
    copy_field(claim, "model", t->model, sizeof(t->model));
    copy_field(claim, "version", t->version, sizeof(t->version));
    copy_field(claim, "destination", destination, sizeof(destination));
    if (cfg->public_url != NULL &&
        jw_submission_webhook_url(cfg->public_url, t->job_id, webhook, sizeof(webhook)) == 0)
        webhook_url = webhook;

    char *body = jw_submission_create_body(destination, input != NULL ? input->value : "{}",
                                           input != NULL ? input->value_len : 2, webhook_url,
                                           &len);
    r->outstanding++;
    jw_replicate_create_training(r->app->replicate, t->model, t->version, body, len, on_created,
                                 t);
    free(body);
}

/* --- checking started jobs ------------------------------------------------------ */

static void on_checked(void *data, const jw_replicate_outcome_t *out, const jw_event_t *ev)
{
    task_t *t = data;
    char message[MESSAGE_MAX];

    if (ev != NULL) {
        apply_object(t, ev, "poll", on_task_applied);
    } else if (out->err == JW_REPLICATE_HTTP && out->http_status == 404) {
        t->round->lost++;
        snprintf(message, sizeof(message), "Replicate has no training %s; the job's queue slot "
                 "was released", t->provider_id);
        jw_warn("queue", "started job unknown to Replicate; marked failed job=%s provider_id=%s",
                t->job_id, t->provider_id);
        fail_job(t, message);
    } else {
        if (out->err != JW_REPLICATE_CANCELLED)
            note_error(t->round, t->job_id, out->message);
        finish_task(t);
    }
}

static void check_job(jw_queue_round_state_t *r, const jw_queue_check_t *check)
{
    task_t *t = calloc(1, sizeof(*t));

    if (t == NULL)
        abort();
    t->round = r;
    snprintf(t->job_id, sizeof(t->job_id), "%s", check->job_id);
    snprintf(t->provider_id, sizeof(t->provider_id), "%s", check->provider_id);
    snprintf(t->kind, sizeof(t->kind), "%s", check->kind);
    r->checked++;
    r->outstanding++;
    jw_replicate_get_job(r->app->replicate, t->kind, t->provider_id, on_checked, t);
}

/* --- the round ------------------------------------------------------------------- */

static void on_positions(void *data, jw_store_err_t err)
{
    jw_queue_round_state_t *r = data;

    if (err != JW_STORE_OK)
        note_error(r, "-", "cannot renumber the line: redis unavailable");
    task_done(r);
}

static void renumber(jw_queue_round_state_t *r, const jw_queue_round_t *round)
{
    const char **ids = calloc(round->claim_count + 1, sizeof(*ids));

    if (ids == NULL)
        abort();
    for (size_t i = 0; i < round->claim_count; i++)
        ids[i] = round->claims[i].job_id;
    r->outstanding++;
    jw_store_queue_positions(r->app->store, ids, round->claim_count, on_positions, r);
    free(ids);
}

static void on_claimed(void *data, jw_store_err_t err, const jw_queue_round_t *round)
{
    jw_queue_round_state_t *r = data;

    if (err != JW_STORE_OK) {
        note_error(r, "-", "cannot claim queue slots: redis unavailable");
        task_done(r);
        return;
    }
    r->claimed = round->claim_count;
    r->freed = round->freed;
    r->slots_used = round->slots_used;
    r->pending = round->pending;
    if (round->claim_count > 0 || round->freed > 0)
        renumber(r, round);
    for (size_t i = 0; i < round->claim_count; i++)
        start_training(r, &round->claims[i]);
    for (size_t i = 0; i < round->check_count; i++) {
        if (jw_job_id_valid(round->checks[i].provider_id, strlen(round->checks[i].provider_id)))
            check_job(r, &round->checks[i]);
    }
    task_done(r);
}

void jw_queue_round_start(jw_app_t *app, const char *replica, const jw_queue_limits_t *limits,
                          jw_queue_round_done_cb done, void *data, jw_queue_round_state_t **slot,
                          jw_queue_stats_t *stats)
{
    jw_queue_round_state_t *r = calloc(1, sizeof(*r));

    if (r == NULL)
        abort();
    r->app = app;
    snprintf(r->replica, sizeof(r->replica), "%s", replica);
    r->done = done;
    r->data = data;
    r->stats = stats;
    r->started_ms = uv_now(app->loop);
    r->outstanding = 1;
    *slot = r;
    jw_store_queue_claim(app->store, limits, on_claimed, r);
}

void jw_queue_round_detach(jw_queue_round_state_t *round)
{
    round->done = NULL;
    round->stats = NULL;
}
