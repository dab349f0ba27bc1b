/*
 * The consumer group member. One blocking XREADGROUP at a time on the
 * consumer connection; each batch is applied in order by one apply.lua
 * call (which acks each entry as it applies it) before the next read,
 * which bounds the work in flight. A timer reclaims entries idle longer than the claim timeout
 * (a dead replica's, or this one's own failed applies) and trims the
 * stream below the oldest pending entry.
 */
#include "jobwire/consumer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobwire/log.h"

#define BATCH 200
#define BLOCK_MS 2000
#define RETRY_MS 500
/* A consumer idle this long with nothing pending belonged to a dead process. */
#define DEAD_CONSUMER_MS (60 * 60 * 1000)

struct jw_consumer {
    uv_loop_t *loop;
    jw_store_t *store;
    const jw_config_t *cfg;
    char name[96];
    int running;        /* the last read reached Redis */
    int stopping;
    int reading;        /* a read or a batch is in flight */
    size_t batch_left;  /* applies of the current batch still in flight */
    int claiming;
    uv_timer_t retry_timer;
    uv_timer_t maintenance_timer;
    jw_consumer_stats_t stats;
    void (*stopped)(void *data);
    void *stopped_data;
    int closed_timers;
};

static void read_next(jw_consumer_t *c);

static void on_retry_timer(uv_timer_t *timer)
{
    read_next(timer->data);
}

static void finish_stop_if_idle(jw_consumer_t *c)
{
    if (c->stopping && !c->reading && c->stopped != NULL) {
        void (*done)(void *) = c->stopped;
        c->stopped = NULL;
        done(c->stopped_data);
    }
}

static void batch_done(jw_consumer_t *c)
{
    c->reading = 0;
    if (c->stopping) {
        finish_stop_if_idle(c);
        return;
    }
    read_next(c);
}

static void count_results(jw_consumer_t *c, jw_store_err_t err, const jw_apply_result_t *results,
                          size_t count, size_t expected)
{
    if (err != JW_STORE_OK) {
        /* Left pending: the reclaim timer applies them again later. */
        c->stats.failures += expected;
        return;
    }
    for (size_t i = 0; i < count; i++) {
        if (results[i].created < 0) {
            c->stats.empty++;
            jw_warn("consumer", "dropped event entry without fields (trimmed while pending)");
        } else {
            c->stats.applied++;
            c->stats.changed += (uint64_t)results[i].changed;
        }
    }
}

static void on_applied(void *data, jw_store_err_t err, const jw_apply_result_t *results,
                       size_t count)
{
    jw_consumer_t *c = data;

    count_results(c, err, results, count, c->batch_left);
    c->batch_left = 0;
    batch_done(c);
}

/* Applies a batch by id in one script call. */
static void apply_entries(jw_consumer_t *c, const jw_entry_t *entries, size_t count,
                          jw_apply_entries_cb cb, void *data)
{
    const char *ids[BATCH];

    for (size_t i = 0; i < count && i < BATCH; i++)
        ids[i] = entries[i].id;
    jw_store_apply_entries(c->store, ids, count < BATCH ? count : BATCH, cb, data);
}

static void on_read(void *data, jw_store_err_t err, const jw_entry_t *entries, size_t count,
                    const char *cursor)
{
    jw_consumer_t *c = data;

    (void)cursor;
    c->running = err == JW_STORE_OK;
    if (err != JW_STORE_OK || count == 0) {
        c->reading = 0;
        if (c->stopping) {
            finish_stop_if_idle(c);
        } else if (err != JW_STORE_OK) {
            uv_timer_start(&c->retry_timer, on_retry_timer, RETRY_MS, 0);
        } else {
            read_next(c);
        }
        return;
    }

    c->batch_left = count;
    apply_entries(c, entries, count, on_applied, c);
}

static void read_next(jw_consumer_t *c)
{
    if (c->stopping || c->reading)
        return;
    c->reading = 1;
    jw_store_read_events(c->store, c->name, BATCH, BLOCK_MS, on_read, c);
}

/* --- reclaim and trim ---------------------------------------------------- */

typedef struct claim_round {
    jw_consumer_t *c;
    size_t left;
    char cursor[64];
} claim_round_t;

static void claim_next(claim_round_t *round);

static void on_claim_applied(void *data, jw_store_err_t err, const jw_apply_result_t *results,
                             size_t count)
{
    claim_round_t *round = data;

    count_results(round->c, err, results, count, round->left);
    round->left = 0;
    claim_next(round);
}

static void on_claimed(void *data, jw_store_err_t err, const jw_entry_t *entries, size_t count,
                       const char *cursor)
{
    claim_round_t *round = data;
    jw_consumer_t *c = round->c;

    if (err != JW_STORE_OK || cursor == NULL) {
        c->claiming = 0;
        free(round);
        return;
    }

    snprintf(round->cursor, sizeof(round->cursor), "%s", cursor);
    if (count == 0) {
        claim_next(round);
        return;
    }

    c->stats.claimed += count;
    jw_info("consumer", "reclaimed idle events count=%zu", count);
    round->left = count;
    apply_entries(c, entries, count, on_claim_applied, round);
}

static void claim_next(claim_round_t *round)
{
    jw_consumer_t *c = round->c;

    /* XAUTOCLAIM returns cursor 0-0 once it has scanned the whole list. */
    if (strcmp(round->cursor, "0-0") == 0 || c->stopping) {
        c->claiming = 0;
        free(round);
        return;
    }
    jw_store_claim_events(c->store, c->name, c->cfg->claim_idle_ms, round->cursor, BATCH,
                          on_claimed, round);
}

static void on_trimmed(void *data, jw_store_err_t err)
{
    (void)data;
    (void)err;
}

static void on_maintenance(uv_timer_t *timer)
{
    jw_consumer_t *c = timer->data;

    if (!c->claiming && !c->stopping) {
        claim_round_t *round = calloc(1, sizeof(*round));
        if (round == NULL)
            abort();
        round->c = c;
        c->claiming = 1;
        jw_store_claim_events(c->store, c->name, c->cfg->claim_idle_ms, "0-0", BATCH,
                              on_claimed, round);
    }
    jw_store_trim_events(c->store, DEAD_CONSUMER_MS, on_trimmed, NULL);
}

/* --- lifecycle ----------------------------------------------------------- */

jw_consumer_t *jw_consumer_start(uv_loop_t *loop, jw_store_t *store, const jw_config_t *cfg)
{
    jw_consumer_t *c = calloc(1, sizeof(*c));
    char host[64] = "host";

    if (c == NULL)
        abort();
    c->loop = loop;
    c->store = store;
    c->cfg = cfg;

    /* Per-process names: a restarted pod must not inherit a dead pod's
     * pending list under the same name without the reclaim rules. */
    gethostname(host, sizeof(host) - 1);
    snprintf(c->name, sizeof(c->name), "%s-%d-%lx", host, (int)getpid(),
             (unsigned long)uv_hrtime() & 0xffffff);

    uv_timer_init(loop, &c->retry_timer);
    c->retry_timer.data = c;
    uv_timer_init(loop, &c->maintenance_timer);
    c->maintenance_timer.data = c;

    /* Reclaim checks run several times per idle timeout. */
    uint64_t every = (uint64_t)(cfg->claim_idle_ms / 3 > 200 ? cfg->claim_idle_ms / 3 : 200);
    uv_timer_start(&c->maintenance_timer, on_maintenance, every, every);

    /* The first read waits for the connection; retries pace it. */
    uv_timer_start(&c->retry_timer, on_retry_timer, 50, 0);
    jw_info("consumer", "started consumer=%s", c->name);
    return c;
}

int jw_consumer_is_running(const jw_consumer_t *c)
{
    return c->running && !c->stopping;
}

const char *jw_consumer_name(const jw_consumer_t *c)
{
    return c->name;
}

const jw_consumer_stats_t *jw_consumer_stats(const jw_consumer_t *c)
{
    return &c->stats;
}

void jw_consumer_stop(jw_consumer_t *c, void (*done)(void *data), void *data)
{
    c->stopping = 1;
    c->stopped = done;
    c->stopped_data = data;
    uv_timer_stop(&c->retry_timer);
    uv_timer_stop(&c->maintenance_timer);
    finish_stop_if_idle(c);
}

static void on_timer_closed(uv_handle_t *handle)
{
    jw_consumer_t *c = handle->data;

    /* The second of the two timers to close frees the consumer. */
    if (++c->closed_timers == 2)
        free(c);
}

void jw_consumer_free(jw_consumer_t *c)
{
    uv_close((uv_handle_t *)&c->retry_timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->maintenance_timer, on_timer_closed);
}
