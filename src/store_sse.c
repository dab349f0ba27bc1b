/*
 * Cluster-wide SSE connection leases: one sorted set per client IP whose
 * members are connections and whose scores are expiry times, so the
 * leases of a replica that died without releasing them lapse by themselves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "store_internal.h"

typedef struct lease_op {
    jw_lease_cb cb;
    void *data;
} lease_op_t;

static long long wall_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void lease_key(const jw_store_t *store, const char *ip, char *key, size_t size)
{
    snprintf(key, size, "%ssse:ip:%s", store->cfg->redis_prefix, ip);
}

static void on_lease(jw_store_t *store, redisReply *reply, void *data)
{
    lease_op_t *op = data;
    jw_store_err_t err = jw_store_reply_err(reply, "sse lease");

    (void)store;
    if (err == JW_STORE_OK && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
        op->cb(op->data, err, reply->element[0]->integer == 1, reply->element[1]->integer);
    else
        op->cb(op->data, err == JW_STORE_OK ? JW_STORE_FAILED : err, 0, 0);
    free(op);
}

void jw_store_sse_lease(jw_store_t *store, const char *ip, const char *member, int max,
                        long long ttl_ms, jw_lease_cb cb, void *data)
{
    char key[160], now[24], expiry[24], max_text[16];
    long long t = wall_ms();
    const char *argv[] = {key, now, expiry, member, max_text};
    size_t argvlen[5];

    lease_key(store, ip, key, sizeof(key));
    snprintf(now, sizeof(now), "%lld", t);
    snprintf(expiry, sizeof(expiry), "%lld", t + ttl_ms);
    snprintf(max_text, sizeof(max_text), "%d", max);
    for (int i = 0; i < 5; i++)
        argvlen[i] = strlen(argv[i]);

    lease_op_t *op = malloc(sizeof(*op));
    if (op == NULL)
        abort();
    op->cb = cb;
    op->data = data;
    if (jw_store_run_script(store, JW_SCRIPT_SSE_LEASE, 1, 5, argv, argvlen, on_lease, op) != 0) {
        free(op);
        cb(data, JW_STORE_UNAVAILABLE, 0, 0);
    }
}

static void send_quiet(jw_store_t *store, int argc, const char **argv)
{
    size_t argvlen[8];

    for (int i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    /* Losing one of these only shortens or lengthens a lease. */
    jw_rconn_send(&store->conns[JW_CONN_COMMANDS], NULL, NULL, argc, argv, argvlen);
}

void jw_store_sse_renew(jw_store_t *store, const char *ip, const char *member, long long ttl_ms)
{
    char key[160], expiry[24];
    const char *argv[] = {"ZADD", key, "XX", expiry, member};

    lease_key(store, ip, key, sizeof(key));
    snprintf(expiry, sizeof(expiry), "%lld", wall_ms() + ttl_ms);
    send_quiet(store, 5, argv);

    const char *expire_argv[] = {"PEXPIREAT", key, expiry};
    send_quiet(store, 3, expire_argv);
}

void jw_store_sse_release(jw_store_t *store, const char *ip, const char *member)
{
    char key[160];
    const char *argv[] = {"ZREM", key, member};

    lease_key(store, ip, key, sizeof(key));
    send_quiet(store, 3, argv);
}
