/*
 * Redis side of access control: the cross-replica rate limit and the
 * audit trail, a capped stream of every mutating call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/log.h"
#include "store_internal.h"

typedef struct rate_op {
    jw_rate_cb cb;
    void *data;
} rate_op_t;

static void on_rate(jw_store_t *store, redisReply *reply, void *data)
{
    rate_op_t *op = data;
    jw_store_err_t err = jw_store_reply_err(reply, "rate limit");

    (void)store;
    if (err == JW_STORE_OK && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
        op->cb(op->data, err, reply->element[0]->integer == 1, reply->element[1]->integer);
    else
        op->cb(op->data, err == JW_STORE_OK ? JW_STORE_FAILED : err, 0, 0);
    free(op);
}

void jw_store_rate_limit(jw_store_t *store, const char *bucket, int per_minute, int peek,
                         jw_rate_cb cb, void *data)
{
    char key[256], limit[16];
    const char *mode = peek ? "peek" : "take";
    const char *argv[] = {key, limit, mode};
    size_t argvlen[3];

    snprintf(key, sizeof(key), "%srate:%s", store->cfg->redis_prefix, bucket);
    snprintf(limit, sizeof(limit), "%d", per_minute);
    for (int i = 0; i < 3; i++)
        argvlen[i] = strlen(argv[i]);

    rate_op_t *op = malloc(sizeof(*op));
    if (op == NULL)
        abort();
    op->cb = cb;
    op->data = data;
    if (jw_store_run_script(store, JW_SCRIPT_RATE_LIMIT, 1, 3, argv, argvlen, on_rate, op) != 0) {
        free(op);
        cb(data, JW_STORE_UNAVAILABLE, 0, 0);
    }
}

static void on_audit_added(jw_store_t *store, redisReply *reply, void *data)
{
    static jw_log_limit_t limit;
    unsigned long long held;

    (void)store;
    (void)data;
    /* The call itself was answered already; a lost entry is worth a line. */
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
