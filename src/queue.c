/*
 * The queue processor (see queue.h). Two loop timers drive it: the lease
 * timer renews or takes `<prefix>queue:leader` on every replica, and the
 * round timer starts a round on the leader one interval after the last
 * one started. A round runs its provider calls at once: they are at most
 * max_concurrent creates plus a few checks, and the Replicate client
 * bounds what is in flight anyway. Results are written through apply.lua
 * like every other job change, so SSE events follow.
 */
#include "jobwire/queue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobwire/clock.h"
#include "jobwire/fields.h"
#include "jobwire/log.h"
#include "jobwire/poller.h"
#include "jobwire/queue_round.h"
#include "jobwire/replicate_client.h"
#include "jobwire/store_queue.h"

/* Claims one round may make, so a large max_concurrent starts in steps. */
#define CLAIMS_PER_ROUND 32
/* Started jobs without news for this many intervals are checked at Replicate. */
#define VERIFY_INTERVALS 12
#define VERIFY_MIN_MS 3000
/* The lease outlives a few missed renewals; the slot count does not rely on it. */
#define LEASE_MIN_MS 2000

struct jw_queue {
    jw_app_t *app;
    const jw_config_t *cfg;
    const char *replica;
    uv_timer_t lease_timer;
    uv_timer_t round_timer;
    int leader;
    int stopping;
    int lease_inflight;
    int closed_handles;
    jw_queue_round_state_t *round; /* the round in flight, or NULL */
    jw_queue_stats_t stats;
};

static uint64_t lease_ms(const jw_queue_t *q)
{
    uint64_t ms = (uint64_t)q->cfg->queue_interval_ms * 3 / 2;

    return ms < LEASE_MIN_MS ? LEASE_MIN_MS : ms;
}

/* Without the exclusive lease every replica runs rounds. */
static int runs_rounds(const jw_queue_t *q)
{
    return q->cfg->queue_enabled && !q->stopping && (q->leader || !q->cfg->queue_exclusive);
}

int jw_queue_is_leader(const jw_queue_t *queue)
{
    return queue->leader;
}

const jw_queue_stats_t *jw_queue_stats(const jw_queue_t *queue)
{
    return &queue->stats;
}

/* --- rounds --------------------------------------------------------------- */

static void schedule_round(jw_queue_t *q, uint64_t delay_ms);

static void on_round_done(void *data, uint64_t duration_ms)
{
    jw_queue_t *q = data;
    uint64_t wait = (uint64_t)q->cfg->queue_interval_ms;

    q->round = NULL;
    if (!q->stopping)
        schedule_round(q, duration_ms >= wait ? 0 : wait - duration_ms);
}

static void on_round_timer(uv_timer_t *timer)
{
    jw_queue_t *q = timer->data;
    jw_queue_limits_t limits;
    long long verify = (long long)q->cfg->queue_interval_ms * VERIFY_INTERVALS;

    if (!runs_rounds(q) || q->round != NULL)
        return;
    limits.now_ms = jw_clock_wall_ms();
    limits.max_concurrent = q->cfg->queue_max_concurrent;
    limits.max_per_user = q->cfg->queue_max_per_user;
    /* A claim without a response for longer than a create call may take
     * belongs to a replica that died mid-call. */
    limits.claim_expiry_ms = (long long)q->cfg->replicate_timeout_ms +
                             2LL * q->cfg->queue_interval_ms + 5000;
    limits.verify_after_ms = verify < VERIFY_MIN_MS ? VERIFY_MIN_MS : verify;
    limits.max_claims = CLAIMS_PER_ROUND;
    jw_queue_round_start(q->app, q->replica, &limits, on_round_done, q, &q->round, &q->stats);
}

static void schedule_round(jw_queue_t *q, uint64_t delay_ms)
{
    uv_timer_start(&q->round_timer, on_round_timer, delay_ms, 0);
}

/* --- lease ---------------------------------------------------------------- */

static void on_lease_timer(uv_timer_t *timer);

static void on_lease(void *data, jw_store_err_t err, const char *leader)
{
    jw_queue_t *q = data;
    int was_leader = q->leader;

    q->lease_inflight = 0;
    if (q->stopping)
        return;
    if (err != JW_STORE_OK) {
        if (q->leader)
            jw_warn("queue", "not running the queue: the lease cannot be renewed replica=%s",
                    q->replica);
        q->leader = 0;
        return;
    }
    q->leader = strcmp(leader, q->replica) == 0;
    if (q->leader && !was_leader)
        jw_info("queue", "this replica now runs the queue: it holds the lease replica=%s",
                q->replica);
    else if (!q->leader && was_leader)
        jw_info("queue", "this replica stopped running the queue: lease lost replica=%s",
                q->replica);
    if (runs_rounds(q) && q->round == NULL && !uv_is_active((uv_handle_t *)&q->round_timer))
        schedule_round(q, 0);
}

static void check_lease(jw_queue_t *q)
{
    if (q->lease_inflight)
        return;
    q->lease_inflight = 1;
    jw_store_queue_lease(q->app->store, q->replica, (long long)lease_ms(q),
                         q->cfg->queue_enabled && q->cfg->queue_exclusive, q->stopping, on_lease,
                         q);
}

static void on_lease_timer(uv_timer_t *timer)
{
    check_lease(timer->data);
}

/* --- start and stop --------------------------------------------------------- */

static void log_startup(const jw_queue_t *q)
{
    const jw_config_t *cfg = q->cfg;

    if (!cfg->queue_enabled) {
        jw_info("queue", "queue processing disabled: submitted jobs wait in line until a "
                "replica with JOBWIRE_QUEUE_ENABLED=true runs");
        return;
    }
    jw_info("queue", "queue processing enabled: interval %.3gs, max_concurrent=%d "
            "max_per_user=%d max_pending=%d %s webhook=%s replica=%s",
            cfg->queue_interval_ms / 1000.0, cfg->queue_max_concurrent, cfg->queue_max_per_user,
            cfg->queue_max_pending, cfg->queue_exclusive ? "one replica at a time" : "on every replica",
            cfg->public_url != NULL ? "on" : "off (no JOBWIRE_PUBLIC_URL)", q->replica);
    if (cfg->replicate_token == NULL)
        jw_warn("queue", "no REPLICATE_API_TOKEN is set: submitted jobs wait in line, and none "
                "can start until a token is configured");
}

jw_queue_t *jw_queue_start(jw_app_t *app)
{
    jw_queue_t *q = calloc(1, sizeof(*q));

    if (q == NULL)
        abort();
    q->app = app;
    q->cfg = app->cfg;
    q->replica = jw_poller_replica(app->poller);
    log_startup(q);

    uv_timer_init(app->loop, &q->lease_timer);
    uv_timer_init(app->loop, &q->round_timer);
    q->lease_timer.data = q->round_timer.data = q;
    /* A third of the lease: two renewals may fail before it lapses. */
    uv_timer_start(&q->lease_timer, on_lease_timer, 0, lease_ms(q) / 3);
    return q;
}

static void on_closed(uv_handle_t *handle)
{
    jw_queue_t *q = handle->data;

    q->closed_handles++;
}

void jw_queue_stop(jw_queue_t *queue)
{
    if (queue == NULL || queue->stopping)
        return;
    queue->stopping = 1;
    uv_close((uv_handle_t *)&queue->lease_timer, on_closed);
    uv_close((uv_handle_t *)&queue->round_timer, on_closed);
    if (queue->leader) {
        queue->lease_inflight = 1;
        jw_store_queue_lease(queue->app->store, queue->replica, 1, 0, 1, on_lease, queue);
        jw_info("queue", "lease released: shutting down replica=%s", queue->replica);
    }
    queue->leader = 0;
    /* A round in flight finishes by itself; claims it could not finish
     * go back in line once they expire. */
    if (queue->round != NULL)
        jw_queue_round_detach(queue->round);
    queue->round = NULL;
}

void jw_queue_free(jw_queue_t *queue)
{
    if (queue == NULL)
        return;
    /* The handles close on a loop turn; when the loop ended first, the
     * memory stays with the exiting process rather than under a handle. */
    if (queue->closed_handles == 2)
        free(queue);
}
