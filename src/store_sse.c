/*
 * Cluster-wide SSE connection leases: one sorted set per client IP whose
 * members are connections and whose scores are expiry times, so the
 * leases of a replica that died without releasing them lapse by themselves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/clock.h"
#include "store_internal.h"

static void lease_key(const jw_store_t *store, const char *ip, char *key, size_t size)
{
    snprintf(key, size, "%ssse:ip:%s", store->cfg->redis_prefix, ip);
}

void jw_store_sse_lease(jw_store_t *store, const char *ip, const char *member, int max,
                        long long ttl_ms, jw_lease_cb cb, void *data)
{
    char key[160], now[24], expiry[24], max_text[16];
    long long t = jw_clock_wall_ms();
    const char *argv[] = {key, now, expiry, member, max_text};

    lease_key(store, ip, key, sizeof(key));
    snprintf(now, sizeof(now), "%lld", t);
    snprintf(expiry, sizeof(expiry), "%lld", t + ttl_ms);
    snprintf(max_text, sizeof(max_text), "%d", max);
    jw_store_run_pair(store, JW_SCRIPT_SSE_LEASE, 5, argv, "sse lease", cb, data);
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
    snprintf(expiry, sizeof(expiry), "%lld", jw_clock_wall_ms() + ttl_ms);
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
