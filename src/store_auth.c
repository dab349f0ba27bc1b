/*
 * Redis side of access control: the cross-replica rate limit and the
 * audit trail, a capped stream of every mutating call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/log.h"
#include "store_internal.h"

void jw_store_rate_limit(jw_store_t *store, const char *bucket, int per_minute, int peek,
                         jw_rate_cb cb, void *data)
{
    char key[256], limit[16];
    const char *mode = peek ? "peek" : "take";
    const char *argv[] = {key, limit, mode};

    snprintf(key, sizeof(key), "%srate:%s", store->cfg->redis_prefix, bucket);
    snprintf(limit, sizeof(limit), "%d", per_minute);
    jw_store_run_pair(store, JW_SCRIPT_RATE_LIMIT, 3, argv, "rate limit", cb, data);
}

static void on_audit_added(jw_store_t *store, redisReply *reply, void *data)
{
    static jw_log_limit_t limit;
    unsigned long long held;

    (void)store;
    (void)data;
    /* The call itself got its response already, so a lost entry is logged. */
    if (jw_store_reply_err(reply, "audit") != JW_STORE_OK && jw_log_allow(&limit, 1000, &held))
        jw_warn("audit", "audit entry not stored: Redis did not accept it "
                "similar_lines_suppressed=%llu", held);
}

void jw_store_audit_append(jw_store_t *store, const jw_audit_entry_t *e)
{
    char key[128], maxlen[24], status[16];
    const char *argv[] = {"XADD",   key,      "MAXLEN", "~",      maxlen,    "*",
                          "action", e->action, "key",   e->key,   "via",     e->via,
                          "ip",     e->ip,     "job_id", e->job_id, "status", status,
                          "result", e->result};
    size_t argc = sizeof(argv) / sizeof(argv[0]), argvlen[sizeof(argv) / sizeof(argv[0])];

    snprintf(key, sizeof(key), "%saudit", store->cfg->redis_prefix);
    snprintf(maxlen, sizeof(maxlen), "%ld", store->cfg->audit_maxlen);
    snprintf(status, sizeof(status), "%d", e->status);
    for (size_t i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    if (jw_rconn_send(&store->conns[JW_CONN_COMMANDS], on_audit_added, NULL, (int)argc, argv,
                      argvlen) != 0)
        on_audit_added(store, NULL, NULL);
}
