/*
 * Store operations behind the provider endpoints: the active jobs a
 * refresh must ask Replicate about (active.lua), and deleting a finished
 * job (delete.lua). Applying what Replicate returned goes through
 * jw_store_apply() like every other write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "jobwire/clock.h"
#include "jobwire/event.h"
#include "jobwire/log.h"
#include "store_internal.h"

/* --- active jobs -------------------------------------------------------- */

typedef struct active_op {
    jw_active_cb cb;
    void *data;
} active_op_t;

static void deliver_active(active_op_t *op, const redisReply *reply)
{
    size_t count = reply->elements / 2;
    jw_active_job_t *jobs = calloc(count + 1, sizeof(*jobs));
    size_t n = 0;

    if (jobs == NULL)
        abort();
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *id = reply->element[i], *kind = reply->element[i + 1];

        if (id->type != REDIS_REPLY_STRING || kind->type != REDIS_REPLY_STRING)
            continue;
        jobs[n].job_id = id->str;
        jobs[n].kind = kind->str;
        n++;
    }
    op->cb(op->data, JW_STORE_OK, jobs, n);
    free(jobs);
}

static void on_active(jw_store_t *store, redisReply *reply, void *data)
{
    active_op_t *op = data;
    jw_store_err_t err = jw_store_reply_err(reply, "active jobs");

    (void)store;
    if (err == JW_STORE_OK && reply->type != REDIS_REPLY_ARRAY) {
        jw_error("redis", "active jobs failed: unexpected reply type=%d", reply->type);
        err = JW_STORE_FAILED;
    }

    if (err == JW_STORE_OK)
        deliver_active(op, reply);
    else
        op->cb(op->data, err, NULL, 0);
    free(op);
}

void jw_store_active_jobs(jw_store_t *store, size_t max, jw_active_cb cb, void *data)
{
    char limit[24];
    const char *argv[2] = {store->cfg->redis_prefix, limit};
    size_t argvlen[2];

    snprintf(limit, sizeof(limit), "%zu", max > 0 ? max : 1);
    argvlen[0] = strlen(argv[0]);
    argvlen[1] = strlen(argv[1]);

    active_op_t *op = malloc(sizeof(*op));
    if (op == NULL)
        abort();
    op->cb = cb;
    op->data = data;
    if (jw_store_run_script(store, JW_SCRIPT_ACTIVE, 0, 2, argv, argvlen, on_active, op) != 0) {
        free(op);
        cb(data, JW_STORE_UNAVAILABLE, NULL, 0);
    }
}

/* --- delete ------------------------------------------------------------- */

typedef struct delete_op {
    jw_delete_cb cb;
    void *data;
} delete_op_t;

static void on_delete(jw_store_t *store, redisReply *reply, void *data)
{
    delete_op_t *op = data;
    jw_store_err_t err = jw_store_reply_err(reply, "delete job");
    jw_delete_result_t result = JW_DELETE_NOT_FOUND;
    const char *status = "";

    (void)store;
    if (err == JW_STORE_OK &&
        (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
         reply->element[0]->type != REDIS_REPLY_INTEGER ||
         reply->element[1]->type != REDIS_REPLY_STRING)) {
        jw_error("redis", "delete job failed: unexpected reply type=%d", reply->type);
        err = JW_STORE_FAILED;
    }
    if (err == JW_STORE_OK) {
        long long code = reply->element[0]->integer;

        if (code == 1)
            result = JW_DELETE_DONE;
        else if (code < 0)
            result = JW_DELETE_ACTIVE;
        status = reply->element[1]->str;
    }

    op->cb(op->data, err, result, status);
    free(op);
}

void jw_store_delete_job(jw_store_t *store, const char *job_id, jw_delete_cb cb, void *data)
{
    char changes_key[128], now_iso[48], maxlen[24];
    const char *argv[5] = {changes_key, store->cfg->redis_prefix, job_id, now_iso, maxlen};
    size_t argvlen[5];

    snprintf(changes_key, sizeof(changes_key), "%schanges", store->cfg->redis_prefix);
    snprintf(maxlen, sizeof(maxlen), "%ld", store->cfg->changes_maxlen);
    jw_clock_iso_now(now_iso);
    for (int i = 0; i < 5; i++)
        argvlen[i] = strlen(argv[i]);

    delete_op_t *op = malloc(sizeof(*op));
    if (op == NULL)
        abort();
    op->cb = cb;
    op->data = data;
    if (jw_store_run_script(store, JW_SCRIPT_DELETE, 1, 5, argv, argvlen, on_delete, op) != 0) {
        free(op);
        cb(data, JW_STORE_UNAVAILABLE, JW_DELETE_NOT_FOUND, "");
    }
}
