/*
 * Reading the dashboard metrics' inputs with metrics.lua. The script goes
 * out with EVAL and its text: it runs once per metrics request, is small,
 * and so needs no place in the store's SHA registry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/log.h"
#include "jobwire/store_metrics.h"
#include "store_internal.h"

extern const char jw_lua_metrics[];

typedef struct metrics_op {
    jw_metrics_cb cb;
    void *data;
} metrics_op_t;

static int valid_reply(const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return 0;
    if (r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != 4 ||
        r->element[1]->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i + 1 < r->element[1]->elements; i += 2) {
        if (r->element[1]->element[i]->type != REDIS_REPLY_STRING ||
            r->element[1]->element[i + 1]->type != REDIS_REPLY_ARRAY)
            return 0;
    }
    return 1;
}

/* Turns one day's flat HGETALL reply into fields, which the caller frees. */
static jw_field_t *day_fields(const redisReply *flat, size_t *count)
{
    jw_field_t *fields = calloc(flat->elements / 2 + 1, sizeof(*fields));
    size_t n = 0;

    if (fields == NULL)
        abort();
    for (size_t i = 0; i + 1 < flat->elements; i += 2) {
        fields[n].name = flat->element[i]->str;
        fields[n].name_len = flat->element[i]->len;
        fields[n].value = flat->element[i + 1]->str;
        fields[n].value_len = flat->element[i + 1]->len;
        n++;
    }
    *count = n;
    return fields;
}

static void deliver(metrics_op_t *op, const redisReply *reply)
{
    const redisReply *act = reply->element[0], *days = reply->element[1];
    size_t n = days->elements / 2;
    jw_daily_t *daily = calloc(n + 1, sizeof(*daily));
    long long active[4];

    if (daily == NULL)
        abort();
    for (int i = 0; i < 4; i++)
        active[i] = act->element[i]->type == REDIS_REPLY_INTEGER ? act->element[i]->integer : 0;
    for (size_t i = 0; i < n; i++) {
        daily[i].date = days->element[2 * i]->str;
        daily[i].fields = day_fields(days->element[2 * i + 1], &daily[i].count);
    }

    op->cb(op->data, JW_STORE_OK, active, daily, n);
    for (size_t i = 0; i < n; i++)
        free((void *)daily[i].fields);
    free(daily);
}

static void on_metrics(jw_store_t *store, redisReply *reply, void *data)
{
    metrics_op_t *op = data;
    jw_store_err_t err = jw_store_reply_err(reply, "metrics");
    static const long long none[4] = {0, 0, 0, 0};

    (void)store;
    if (err == JW_STORE_OK && !valid_reply(reply)) {
        jw_error("redis", "metrics failed: unexpected reply type=%d", reply->type);
        err = JW_STORE_FAILED;
    }
    if (err == JW_STORE_OK)
        deliver(op, reply);
    else
        op->cb(op->data, err, none, NULL, 0);
    free(op);
}

void jw_store_metrics(jw_store_t *store, const char *const *dates, size_t n, long long start_ms,
                      jw_metrics_cb cb, void *data)
{
    const char *argv[JW_METRICS_DAYS_MAX + 5];
    size_t argvlen[JW_METRICS_DAYS_MAX + 5];
    char start[24];
    static const long long none[4] = {0, 0, 0, 0};
    int argc = 0;

    if (n > JW_METRICS_DAYS_MAX)
        n = JW_METRICS_DAYS_MAX;
    snprintf(start, sizeof(start), "%lld", start_ms);
    argv[argc++] = "EVAL";
    argv[argc++] = jw_lua_metrics;
    argv[argc++] = "0";
    argv[argc++] = store->cfg->redis_prefix;
    argv[argc++] = start;
    for (size_t i = 0; i < n; i++)
        argv[argc++] = dates[i];
    for (int i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);

    metrics_op_t *op = malloc(sizeof(*op));
    if (op == NULL)
        abort();
    op->cb = cb;
    op->data = data;
    if (jw_rconn_send(&store->conns[JW_CONN_COMMANDS], on_metrics, op, argc, argv, argvlen) != 0) {
        free(op);
        cb(data, JW_STORE_UNAVAILABLE, none, NULL, 0);
    }
}
