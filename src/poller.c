/*
 * The background poller. Three loop timers drive it:
 *   - the lease timer, every half interval on every replica, renews or
 *     takes the leader lease and reads the override (store_poller.c);
 *   - the tick timer starts a tick on the leader, one interval after the
 *     last one started, or longer while backing off;
 *   - the pace timer spaces a tick's requests: never closer than
 *     60 s / JOBWIRE_POLL_RATE, and spread over half the interval when the
 *     jobs are few, so the provider receives no burst.
 * The Replicate client does the HTTP (and its own retries after 429 and
 * 5xx); jw_store_apply() does the writing. Nothing here blocks.
 */
#include "jobwire/poller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "jobwire/clock.h"
#include "jobwire/fields.h"
#include "jobwire/event.h"
#include "jobwire/log.h"
#include "jobwire/replicate_client.h"
#include "jobwire/store_poller.h"

/* A tick lists at most this many active jobs. */
#define TICK_JOBS_MAX 100000

/* A throttled tick doubles its spacing, up to this. */
#define SPACING_MAX_MS 10000.0

/* Backoff doubles the interval per bad tick, up to 2^BACKOFF_MAX times,
 * and never past BACKOFF_CAP_MS. */
#define BACKOFF_MAX 5
#define BACKOFF_CAP_MS (15 * 60 * 1000ULL)

#define JOB_ID_MAX JW_JOB_ID_MAX
#define ERROR_MAX 256

typedef enum poll_state {
    STATE_OK = 0,
    STATE_THROTTLED, /* requests needed retries or got 429 */
    STATE_FAILING,   /* requests or the store failed */
} poll_state_t;

typedef struct tick tick_t;

typedef struct tick_job {
    tick_t *tick;
    char job_id[JOB_ID_MAX + 1];
    char kind[16];
} tick_job_t;

struct tick {
    jw_poller_t *poller;
    tick_job_t *jobs;
    size_t count, next, done;
    int stale_mode;       /* only jobs without a change for stale_after */
    uint64_t started_ms;  /* loop clock */
    double spacing_ms;
    size_t requests, changed, errors, throttled, missing;
    char first_error[ERROR_MAX];
};

struct jw_poller {
    jw_app_t *app;
    const jw_config_t *cfg;
    char replica[96];
    uv_timer_t lease_timer, tick_timer, pace_timer;
    int closed_handles;
    int stopping;
    int lease_inflight;
    int leader;           /* this replica holds the lease */
    int enabled;          /* polling on, after the override (-1 before the first answer) */
    int override;
    tick_t *tick;         /* the tick in progress, or NULL */
    uint64_t last_request_ms;
    uint64_t interval_ms;
    int backoff;
    poll_state_t state;
    jw_poller_stats_t stats;
};

/* The stale check needs webhooks to be on (else polling covers it) and a
 * token to ask Replicate with; without one it would only mark jobs checked. */
static int stale_check_on(const jw_config_t *cfg)
{
    return jw_config_webhook_configured(cfg) && cfg->stale_after_s > 0 &&
           cfg->replicate_token != NULL;
}

/* The least time between two requests: the rate limit, as a spacing. */
static double rate_spacing_ms(const jw_poller_t *p)
{
    return 60000.0 / p->cfg->poll_rate_per_min;
}

static uint64_t current_interval_ms(const jw_poller_t *p)
{
    uint64_t ms = p->interval_ms << p->backoff;

    return ms > BACKOFF_CAP_MS && p->interval_ms < BACKOFF_CAP_MS ? BACKOFF_CAP_MS : ms;
}

/* --- public helpers --------------------------------------------------------- */

const char *jw_poller_source(const jw_config_t *cfg, int override, const char **why)
{
    if (override >= 0) {
        *why = "set through PUT /api/cloud/polling/setting";
        return "override";
    }
    if (cfg->poll_enabled >= 0 && cfg->poll_enabled_source == JW_SOURCE_ENV) {
        *why = "configured by JOBWIRE_POLL_ENABLED";
        return "environment";
    }
    if (cfg->poll_enabled >= 0) {
        *why = "configured by background.job_status_polling.enabled";
        return "config_file";
    }
    *why = jw_config_webhook_configured(cfg) ? "automatic: a webhook is configured"
                                             : "automatic: no webhook is configured";
    return "automatic";
}

const char *jw_poller_replica(const jw_poller_t *poller)
{
    return poller->replica;
}

double jw_poller_current_interval(const jw_poller_t *poller)
{
    return (double)current_interval_ms(poller) / 1000.0;
}

int jw_poller_stale_check_on(const jw_poller_t *poller)
{
    return stale_check_on(poller->cfg);
}

/* --- ending a tick ------------------------------------------------------------ */

static void schedule_tick(jw_poller_t *p, uint64_t delay_ms);

static poll_state_t tick_state(const tick_t *t)
{
    if (t->errors > 0)
        return STATE_FAILING;
    return t->throttled > 0 ? STATE_THROTTLED : STATE_OK;
}

/* Logs a change of state once, not once per tick. */
static void note_state(jw_poller_t *p, const tick_t *t, poll_state_t state)
{
    if (state == p->state)
        return;

    if (state == STATE_OK)
        jw_info("poller", "polling recovered: requests succeed again interval_s=%.0f",
                (double)p->interval_ms / 1000);
    else if (state == STATE_THROTTLED)
        jw_warn("poller", "polling slowed down: the provider throttled or retried requests "
                "throttled=%zu interval_s=%.0f", t->throttled,
                (double)current_interval_ms(p) / 1000);
    else
        jw_warn("poller", "polling failing: %s errors=%zu interval_s=%.0f", t->first_error,
                t->errors, (double)current_interval_ms(p) / 1000);
    p->state = state;
}

static void record_tick(jw_poller_t *p, const tick_t *t, uint64_t duration_ms)
{
    jw_fields_t f = {.count = 0};
    char at[48];

    jw_clock_iso_now(at);
    jw_fields_add_str(&f, "leader", p->replica);
    jw_fields_add_str(&f, "last_tick_at", at);
    jw_fields_add_str(&f, "last_error", t->first_error);
    jw_fields_add_str(&f, "mode", t->stale_mode ? "stale" : "all");
    jw_fields_addf(&f, "jobs", "%zu", t->count);
    jw_fields_addf(&f, "requests", "%zu", t->requests);
    jw_fields_addf(&f, "changed", "%zu", t->changed);
    jw_fields_addf(&f, "errors", "%zu", t->errors);
    jw_fields_addf(&f, "throttled", "%zu", t->throttled);
    jw_fields_addf(&f, "missing", "%zu", t->missing);
    jw_fields_addf(&f, "duration_ms", "%llu", (unsigned long long)duration_ms);
    jw_fields_addf(&f, "interval_seconds", "%.3f", (double)current_interval_ms(p) / 1000);
    jw_store_poller_record(p->app->store, f.items, f.count);
    jw_fields_clear(&f);
}

static void finish_tick(tick_t *t)
{
    jw_poller_t *p = t->poller;
    uint64_t now = uv_now(p->app->loop);
    uint64_t duration = now - t->started_ms;
    poll_state_t state = tick_state(t);

    /* Any trouble lengthens the next wait; a clean tick restores it. */
    p->backoff = state == STATE_OK ? 0 : (p->backoff < BACKOFF_MAX ? p->backoff + 1 : p->backoff);
    note_state(p, t, state);
    jw_debug("poller", "tick done: mode=%s jobs=%zu requests=%zu changed=%zu errors=%zu "
             "throttled=%zu missing=%zu duration_ms=%llu", t->stale_mode ? "stale" : "all",
             t->count, t->requests, t->changed, t->errors, t->throttled, t->missing,
             (unsigned long long)duration);

    p->stats.ticks++;
    p->stats.errors += t->errors;
    p->stats.requests += t->requests;
    p->tick = NULL;
    if (!p->stopping) {
        uint64_t wait = current_interval_ms(p);

        record_tick(p, t, duration);
        schedule_tick(p, duration >= wait ? 0 : wait - duration);
    }
    free(t->jobs);
    free(t);
}

/* Counts a failure and keeps the first one's reason; job_id may be NULL. */
static void tick_failed(tick_t *t, const char *job_id, const char *why)
{
    t->errors++;
    if (t->first_error[0] != '\0')
        return;
    if (job_id != NULL)
        snprintf(t->first_error, sizeof(t->first_error), "job %s: %s", job_id, why);
    else
        snprintf(t->first_error, sizeof(t->first_error), "%s", why);
}

/* --- requests ----------------------------------------------------------------- */

static void launch_next(tick_t *t);

static void job_done(tick_t *t)
{
    t->done++;
    if (t->done == t->count && t->next == t->count)
        finish_tick(t);
}

static void on_applied(void *data, jw_store_err_t err, const jw_apply_result_t *result)
{
    tick_job_t *job = data;
    tick_t *t = job->tick;

    if (err != JW_STORE_OK)
        tick_failed(t, job->job_id, "the job store is unavailable");
    else
        t->changed += result->changed == 1;
    job_done(t);
}

static void slow_down(tick_t *t)
{
    t->throttled++;
    t->spacing_ms = t->spacing_ms * 2 > SPACING_MAX_MS ? SPACING_MAX_MS : t->spacing_ms * 2;
}

static void on_job(void *data, const jw_replicate_outcome_t *out, const jw_event_t *ev)
{
    tick_job_t *job = data;
    tick_t *t = job->tick;
    jw_fields_t fields = {.count = 0};

    /* A retry inside the client means 429 or a server error: fewer requests
     * per second for the rest of this tick. */
    if (out->attempts > 1 || out->http_status == 429)
        slow_down(t);

    if (ev == NULL) {
        if (out->err == JW_REPLICATE_HTTP && out->http_status == 404)
            t->missing++; /* not an outage: the provider does not know this job */
        else if (out->err != JW_REPLICATE_CANCELLED)
            tick_failed(t, job->job_id, out->message);
        job_done(t);
        return;
    }

    jw_event_to_fields(ev, "poll", NULL, &fields);
    jw_store_apply(t->poller->app->store, fields.items, fields.count, on_applied, job);
    jw_fields_clear(&fields);
}

static void on_pace(uv_timer_t *timer)
{
    jw_poller_t *p = timer->data;

    if (p->tick != NULL)
        launch_next(p->tick);
}

/* Sends the next request, or waits until the rate allows it. */
static void launch_next(tick_t *t)
{
    jw_poller_t *p = t->poller;
    uint64_t now = uv_now(p->app->loop);
    uint64_t earliest = p->last_request_ms + (uint64_t)rate_spacing_ms(p);

    if (p->stopping || !p->leader) {
        /* Requests not sent yet are dropped; those in flight finish. */
        t->count = t->next;
        if (t->done == t->count)
            finish_tick(t);
        return;
    }
    if (p->last_request_ms != 0 && now < earliest) {
        uv_timer_start(&p->pace_timer, on_pace, earliest - now, 0);
        return;
    }

    tick_job_t *job = &t->jobs[t->next++];
    p->last_request_ms = now;
    t->requests++;
    if (t->next < t->count)
        uv_timer_start(&p->pace_timer, on_pace, (uint64_t)t->spacing_ms, 0);
    /* The callback always comes later, on the loop, so t is still whole here. */
    jw_replicate_get_job(p->app->replicate, job->kind, job->job_id, on_job, job);
}

static void copy_jobs(tick_t *t, const jw_active_job_t *jobs, size_t count)
{
    t->jobs = calloc(count + 1, sizeof(*t->jobs));
    if (t->jobs == NULL)
        abort();
    for (size_t i = 0; i < count; i++) {
        tick_job_t *job = &t->jobs[t->count];

        if (!jw_job_id_valid(jobs[i].job_id, strlen(jobs[i].job_id)))
            continue;
        job->tick = t;
        snprintf(job->job_id, sizeof(job->job_id), "%s", jobs[i].job_id);
        snprintf(job->kind, sizeof(job->kind), "%s", jobs[i].kind);
        t->count++;
    }
}

/* Spreads the requests over half the interval, but never faster than the rate. */
static double tick_spacing(const jw_poller_t *p, size_t count)
{
    double spread = (double)p->interval_ms / 2 / (double)count;
    double least = rate_spacing_ms(p);

    return spread > least ? spread : least;
}

static void on_tick_jobs(void *data, jw_store_err_t err, const jw_active_job_t *jobs,
                         size_t count)
{
    tick_t *t = data;
    jw_poller_t *p = t->poller;

    if (err != JW_STORE_OK) {
        tick_failed(t, NULL, "the job store is unavailable");
        finish_tick(t);
        return;
    }
    if (count > 0 && !jw_replicate_has_token(p->app->replicate)) {
        tick_failed(t, NULL, "no Replicate API token is configured; set REPLICATE_API_TOKEN");
        finish_tick(t);
        return;
    }

    copy_jobs(t, jobs, count);
    if (t->count == 0) {
        finish_tick(t);
        return;
    }
    t->spacing_ms = tick_spacing(p, t->count);
    launch_next(t);
}

static void start_tick(jw_poller_t *p)
{
    tick_t *t = calloc(1, sizeof(*t));

    if (t == NULL)
        abort();
    t->poller = p;
    t->stale_mode = !p->enabled;
    t->started_ms = uv_now(p->app->loop);
    p->tick = t;
    jw_store_poller_jobs(p->app->store, jw_clock_wall_ms(),
                         t->stale_mode ? (long long)p->cfg->stale_after_s * 1000 : 0,
                         TICK_JOBS_MAX, on_tick_jobs, t);
}

static void on_tick_timer(uv_timer_t *timer)
{
    jw_poller_t *p = timer->data;

    if (p->stopping || !p->leader || p->tick != NULL)
        return;
    if (!p->enabled && !stale_check_on(p->cfg))
        return;
    start_tick(p);
}

static void schedule_tick(jw_poller_t *p, uint64_t delay_ms)
{
    uv_timer_start(&p->tick_timer, on_tick_timer, delay_ms, 0);
}

/* --- lease ---------------------------------------------------------------------- */

static void log_enabled_change(jw_poller_t *p, const jw_poller_lease_t *lease)
{
    const char *why;

    if (p->enabled < 0 || (lease->enabled == p->enabled && lease->override == p->override))
        return;
    jw_poller_source(p->cfg, lease->override, &why);
    jw_info("poller", "job status polling now %s: %s", lease->enabled ? "enabled" : "disabled",
            why);
}

static void on_lease_timer(uv_timer_t *timer);

static void on_lease(void *data, jw_store_err_t err, const jw_poller_lease_t *lease)
{
    jw_poller_t *p = data;
    int was_leader = p->leader;

    p->lease_inflight = 0;
    if (p->stopping)
        return;
    if (err != JW_STORE_OK) {
        /* Without Redis the lease may lapse and another replica may lead:
         * stop polling until a renewal succeeds. */
        if (p->leader)
            jw_warn("poller", "not polling: the lease cannot be renewed replica=%s", p->replica);
        p->leader = 0;
        /* Try again soon (at start Redis is often still connecting); a
         * check while the connection is down costs no round trip. */
        uv_timer_start(&p->lease_timer, on_lease_timer, 500, p->interval_ms / 2);
        return;
    }

    log_enabled_change(p, lease);
    int turned_on = lease->enabled && p->enabled == 0;
    p->enabled = lease->enabled;
    p->override = lease->override;
    p->leader = strcmp(lease->leader, p->replica) == 0;
    if (p->leader && !was_leader)
        jw_info("poller", "this replica now polls: it holds the lease replica=%s mode=%s",
                p->replica, p->enabled ? "all" : "stale");
    else if (!p->leader && was_leader)
        jw_info("poller", "this replica stopped polling: lease released or lost replica=%s",
                p->replica);

    /* A new leader starts at once, and so does one where polling was just
     * turned on (it may have been checking stale jobs) or whose ticks had
     * stopped. */
    if (p->leader && p->tick == NULL &&
        (!was_leader || turned_on || !uv_is_active((uv_handle_t *)&p->tick_timer)))
        schedule_tick(p, 0);
}

static void check_lease(jw_poller_t *p)
{
    if (p->lease_inflight)
        return;
    p->lease_inflight = 1;
    jw_store_poller_lease(p->app->store, p->replica, (long long)(p->interval_ms * 3 / 2),
                          jw_config_poll_enabled(p->cfg), stale_check_on(p->cfg), p->stopping,
                          on_lease, p);
}

static void on_lease_timer(uv_timer_t *timer)
{
    check_lease(timer->data);
}

void jw_poller_recheck(jw_poller_t *poller)
{
    if (!poller->stopping)
        check_lease(poller);
}

/* --- start and stop --------------------------------------------------------------- */

static void log_startup(const jw_poller_t *p)
{
    const char *why;
    static const char *const sources[] = {"default", "config_file", "environment"};

    jw_poller_source(p->cfg, -1, &why);
    jw_info("poller", "job status polling %s: %s; interval %ds (%s)%s rate_per_min=%d "
            "stale_after_s=%d replica=%s", jw_config_poll_enabled(p->cfg) ? "enabled" : "disabled",
            why, p->cfg->poll_interval_s, sources[p->cfg->poll_interval_source],
            !jw_config_poll_enabled(p->cfg) && stale_check_on(p->cfg)
                ? "; jobs without a change are still checked"
                : "",
            p->cfg->poll_rate_per_min, p->cfg->stale_after_s, p->replica);
}

static void make_replica_id(jw_poller_t *p)
{
    char host[64] = "host";
    struct timeval tv;

    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    gettimeofday(&tv, NULL);
    snprintf(p->replica, sizeof(p->replica), "%s-%d-%lx", host, (int)getpid(),
             (unsigned long)(tv.tv_sec ^ tv.tv_usec));
}

jw_poller_t *jw_poller_start(jw_app_t *app)
{
    jw_poller_t *p = calloc(1, sizeof(*p));

    if (p == NULL)
        abort();
    p->app = app;
    p->cfg = app->cfg;
    p->enabled = -1;
    p->override = -1;
    p->interval_ms = (uint64_t)app->cfg->poll_interval_s * 1000;
    make_replica_id(p);
    log_startup(p);

    uv_timer_t *timers[] = {&p->lease_timer, &p->tick_timer, &p->pace_timer};
    for (int i = 0; i < 3; i++) {
        uv_timer_init(app->loop, timers[i]);
        timers[i]->data = p;
    }
    /* Half the interval: a lease of 1.5 intervals then lapses and is taken
     * over within two intervals of the holder's last renewal. */
    uv_timer_start(&p->lease_timer, on_lease_timer, 0, p->interval_ms / 2);
    return p;
}

static void on_closed(uv_handle_t *handle)
{
    jw_poller_t *p = handle->data;

    p->closed_handles++;
}

void jw_poller_stop(jw_poller_t *poller)
{
    if (poller == NULL || poller->stopping)
        return;
    poller->stopping = 1;
    uv_close((uv_handle_t *)&poller->lease_timer, on_closed);
    uv_close((uv_handle_t *)&poller->tick_timer, on_closed);
    uv_close((uv_handle_t *)&poller->pace_timer, on_closed);

    /* Give the lease back so another replica takes over at its next check. */
    if (poller->leader) {
        poller->lease_inflight = 1;
        jw_store_poller_lease(poller->app->store, poller->replica, 1, 0, 0, 1, on_lease, poller);
        jw_info("poller", "lease released: shutting down replica=%s", poller->replica);
    }
    poller->leader = 0;
    if (poller->tick != NULL)
        launch_next(poller->tick); /* drops the requests not sent yet */
}

void jw_poller_free(jw_poller_t *poller)
{
    if (poller == NULL)
        return;
    /* The handles close on a loop turn; when the loop ended first, the
     * memory stays with the exiting process rather than under a handle. */
    if (poller->closed_handles == 3 && poller->tick == NULL)
        free(poller);
}

const jw_poller_stats_t *jw_poller_stats(const jw_poller_t *poller)
{
    return &poller->stats;
}
