/*
 * Statistics of the events stream for /metrics: its length, and from
 * XINFO GROUPS the consumer group's lag (entries not yet delivered to any
 * replica) and pending count (delivered, not yet applied and acked). A
 * timer refreshes one cached sample, so a scrape never waits on Redis.
 * There is one store per process, so the sample is kept here, not in the
 * store object.
 */
#include <stdlib.h>
#include <string.h>

#include "jobwire/log.h"
#include "store_internal.h"

#define GROUP "appliers"

static struct {
    jw_store_t *store;
    uv_timer_t timer;
    int started;
    int querying;          /* replies still due from the current round */
    jw_events_stats_t sample;
    jw_events_stats_t next; /* the round being collected */
} stats;

static void finish_round(void)
{
    if (--stats.querying > 0)
        return;
    if (stats.next.valid) {
        stats.next.sampled_ms = jw_store_now_ms(stats.store);
        stats.sample = stats.next;
    }
}

static void on_xlen(jw_store_t *store, redisReply *reply, void *data)
{
    (void)store;
    (void)data;
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER) {
        stats.next.length = reply->integer;
    } else {
        stats.next.valid = 0;
    }
    finish_round();
}

static long long field_int(const redisReply *value, int *known)
{
    if (value->type == REDIS_REPLY_INTEGER)
        return value->integer;
    *known = 0; /* nil: Redis cannot tell (e.g. after an XDEL in the middle) */
    return 0;
}

static void read_group(const redisReply *group)
{
    int lag_known = 1;

    for (size_t i = 0; i + 1 < group->elements; i += 2) {
        const redisReply *k = group->element[i];
        const redisReply *v = group->element[i + 1];
        if (k->type != REDIS_REPLY_STRING && k->type != REDIS_REPLY_STATUS)
            continue;
        if (strcmp(k->str, "pending") == 0)
            stats.next.pending = field_int(v, &lag_known);
        else if (strcmp(k->str, "lag") == 0)
            stats.next.lag = field_int(v, &lag_known);
    }
    stats.next.lag_known = lag_known;
}

static int group_is_ours(const redisReply *group)
{
    for (size_t i = 0; i + 1 < group->elements; i += 2) {
        const redisReply *k = group->element[i];
        const redisReply *v = group->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, "name") == 0)
            return v->type == REDIS_REPLY_STRING && strcmp(v->str, GROUP) == 0;
    }
    return 0;
}

static void on_groups(jw_store_t *store, redisReply *reply, void *data)
{
    (void)store;
    (void)data;
    if (reply == NULL) {
        stats.next.valid = 0;
    } else if (reply->type == REDIS_REPLY_ERROR) {
        /* No stream yet (Redis empty): nothing is waiting. */
        stats.next.lag_known = 1;
    } else if (reply->type == REDIS_REPLY_ARRAY) {
        stats.next.lag_known = 1;
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *g = reply->element[i];
            if (g->type == REDIS_REPLY_ARRAY && group_is_ours(g))
                read_group(g);
        }
    }
    finish_round();
}

static void on_timer(uv_timer_t *timer)
{
    char key[128];
    size_t keylen;

    (void)timer;
    if (stats.querying > 0 || !jw_store_is_ready(stats.store))
        return;

    keylen = (size_t)snprintf(key, sizeof(key), "%sevents", stats.store->cfg->redis_prefix);
    const char *xlen[2] = {"XLEN", key};
    size_t xlen_len[2] = {4, keylen};
    const char *groups[3] = {"XINFO", "GROUPS", key};
    size_t groups_len[3] = {5, 6, keylen};

    memset(&stats.next, 0, sizeof(stats.next));
    stats.next.valid = 1;
    stats.querying = 2;
    jw_rconn_t *conn = &stats.store->conns[JW_CONN_COMMANDS];
    if (jw_rconn_send(conn, on_xlen, NULL, 2, xlen, xlen_len) != 0) {
        stats.querying = 0;
        return;
    }
    if (jw_rconn_send(conn, on_groups, NULL, 3, groups, groups_len) != 0) {
        stats.next.valid = 0;
        finish_round();
    }
}

void jw_store_stats_start(jw_store_t *store, int interval_ms)
{
    if (stats.started)
        return;
    memset(&stats.sample, 0, sizeof(stats.sample));
    stats.store = store;
    stats.started = 1;
    uv_timer_init(store->loop, &stats.timer);
    uv_timer_start(&stats.timer, on_timer, (uint64_t)interval_ms, (uint64_t)interval_ms);
    /* The sampler alone must not keep the loop running. */
    uv_unref((uv_handle_t *)&stats.timer);
}

void jw_store_stats_stop(void)
{
    if (stats.started) {
        uv_timer_stop(&stats.timer);
        uv_close((uv_handle_t *)&stats.timer, NULL);
        stats.started = 0;
    }
}

int jw_store_events_stats(const jw_store_t *store, jw_events_stats_t *out)
{
    if (!stats.started || stats.store != store || !stats.sample.valid) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    *out = stats.sample;
    out->age_ms = jw_store_now_ms(store) - stats.sample.sampled_ms;
    return 0;
}
