/*
 * The poller's Redis state: leader lease, override, the jobs a tick asks
 * about, and the last-tick record. The scripts are sent with EVAL and
 * their text, not through the store's SHA registry: each runs at most a
 * few times per poll interval, so resending a few hundred bytes costs
 * nothing, and there is no NOSCRIPT case to handle after a Redis restart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/log.h"
#include "jobwire/store_poller.h"
#include "store_internal.h"

extern const char jw_lua_poller_lease[], jw_lua_poller_jobs[], jw_lua_poller_status[];

#define ARGS_MAX 12

/* Sends EVAL text nkeys args...; returns 0, or -1 when the connection is down. */
static int eval_text(jw_store_t *store, const char *text, int nkeys, int argc, const char **args,
                     jw_reply_fn fn, void *data)
{
    const char *argv[ARGS_MAX + 3];
    size_t argvlen[ARGS_MAX + 3];
    char nkeys_text[8];

    snprintf(nkeys_text, sizeof(nkeys_text), "%d", nkeys);
    argv[0] = "EVAL";
    argv[1] = text;
    argv[2] = nkeys_text;
    for (int i = 0; i < argc; i++)
        argv[i + 3] = args[i];
    for (int i = 0; i < argc + 3; i++)
        argvlen[i] = strlen(argv[i]);
    return jw_rconn_send(&store->conns[JW_CONN_COMMANDS], fn, data, argc + 3, argv, argvlen);
}

static void key(const jw_store_t *store, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%spoller:%s", store->cfg->redis_prefix, name);
}

static int override_value(const redisReply *r)
{
    if (r->type == REDIS_REPLY_STRING && r->len == 1)
        return r->str[0] == '1' ? 1 : (r->str[0] == '0' ? 0 : -1);
    return -1;
}

/* --- lease ---------------------------------------------------------------- */

static void on_lease(jw_store_t *store, redisReply *reply, void *data)
{
    jw_store_op_t *op = data;
    jw_poller_lease_cb cb = (jw_poller_lease_cb)op->cb;
    jw_store_err_t err = jw_store_reply_err(reply, "poller lease");
    jw_poller_lease_t lease = {-1, 0, ""};

    (void)store;
    if (err == JW_STORE_OK &&
        (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
         reply->element[2]->type != REDIS_REPLY_STRING)) {
        jw_error("redis", "poller lease failed: unexpected reply type=%d", reply->type);
        err = JW_STORE_FAILED;
    }
    if (err == JW_STORE_OK) {
        lease.override = override_value(reply->element[0]);
        lease.enabled = reply->element[1]->integer == 1;
        lease.leader = reply->element[2]->str;
    }
    cb(op->data, err, &lease);
    free(op);
}

void jw_store_poller_lease(jw_store_t *store, const char *replica, long long lease_ms,
                           int configured_on, int stale_on, int stopping, jw_poller_lease_cb cb,
                           void *data)
{
    char leader[160], override[160], ms[24];
    const char *args[] = {leader, override, replica, ms, configured_on ? "1" : "0",
                          stale_on ? "1" : "0", stopping ? "1" : "0"};
    jw_store_op_t *op = jw_store_op_new((void (*)(void))cb, data);

    key(store, "leader", leader, sizeof(leader));
    key(store, "override", override, sizeof(override));
    snprintf(ms, sizeof(ms), "%lld", lease_ms);
    if (eval_text(store, jw_lua_poller_lease, 2, 7, args, on_lease, op) != 0) {
        jw_poller_lease_t none = {-1, 0, ""};

        free(op);
        cb(data, JW_STORE_UNAVAILABLE, &none);
    }
}

/* --- override --------------------------------------------------------------- */

static void on_done(jw_store_t *store, redisReply *reply, void *data)
{
    jw_store_op_t *op = data;

    (void)store;
    ((jw_done_cb)op->cb)(op->data, jw_store_reply_err(reply, "poller override"));
    free(op);
}

void jw_store_poller_set_override(jw_store_t *store, int enabled, jw_done_cb cb, void *data)
{
    char override[160];
    const char *set_argv[] = {"SET", override, enabled ? "1" : "0"};
    const char *del_argv[] = {"DEL", override};
    const char **argv = enabled < 0 ? del_argv : set_argv;
    int argc = enabled < 0 ? 2 : 3;
    size_t argvlen[3];
    jw_store_op_t *op = jw_store_op_new((void (*)(void))cb, data);

    key(store, "override", override, sizeof(override));
    for (int i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    if (jw_rconn_send(&store->conns[JW_CONN_COMMANDS], on_done, op, argc, argv, argvlen) != 0) {
        free(op);
        cb(data, JW_STORE_UNAVAILABLE);
    }
}

/* --- jobs ------------------------------------------------------------------- */

static void on_jobs(jw_store_t *store, redisReply *reply, void *data)
{
    jw_store_op_t *op = data;
    jw_active_cb cb = (jw_active_cb)op->cb;
    jw_store_err_t err = jw_store_reply_err(reply, "poller jobs");
    jw_active_job_t *jobs = NULL;
    size_t n = 0;

    (void)store;
    if (err == JW_STORE_OK && reply->type != REDIS_REPLY_ARRAY) {
        jw_error("redis", "poller jobs failed: unexpected reply type=%d", reply->type);
        err = JW_STORE_FAILED;
    }
    if (err == JW_STORE_OK) {
        jobs = calloc(reply->elements / 2 + 1, sizeof(*jobs));
        if (jobs == NULL)
            abort();
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            if (reply->element[i]->type != REDIS_REPLY_STRING ||
                reply->element[i + 1]->type != REDIS_REPLY_STRING)
                continue;
            jobs[n].job_id = reply->element[i]->str;
            jobs[n].kind = reply->element[i + 1]->str;
            n++;
        }
    }
    cb(op->data, err, jobs, n);
    free(jobs);
    free(op);
}

void jw_store_poller_jobs(jw_store_t *store, long long now_ms, long long stale_ms, size_t max,
                          jw_active_cb cb, void *data)
{
    char now[24], stale[24], limit[24];
    const char *args[] = {store->cfg->redis_prefix, now, stale, limit};
    jw_store_op_t *op = jw_store_op_new((void (*)(void))cb, data);

    snprintf(now, sizeof(now), "%lld", now_ms);
    snprintf(stale, sizeof(stale), "%lld", stale_ms);
    snprintf(limit, sizeof(limit), "%zu", max > 0 ? max : 1);
    if (eval_text(store, jw_lua_poller_jobs, 0, 4, args, on_jobs, op) != 0) {
        free(op);
        cb(data, JW_STORE_UNAVAILABLE, NULL, 0);
    }
}

/* --- last-tick record -------------------------------------------------------- */

void jw_store_poller_record(jw_store_t *store, const jw_field_t *fields, size_t count)
{
    char status[160];

    key(store, "status", status, sizeof(status));
    jw_store_hset_fields(store, status, fields, count);
}

/* --- status ------------------------------------------------------------------ */

static void deliver_status(jw_store_op_t *op, const redisReply *reply)
{
    jw_poller_status_cb cb = (jw_poller_status_cb)op->cb;
    const redisReply *hash = reply->element[2];
    jw_field_t *fields = calloc(hash->elements / 2 + 1, sizeof(*fields));
    size_t n = 0;

    if (fields == NULL)
        abort();
    for (size_t i = 0; i + 1 < hash->elements; i += 2) {
        fields[n].name = hash->element[i]->str;
        fields[n].name_len = hash->element[i]->len;
        fields[n].value = hash->element[i + 1]->str;
        fields[n].value_len = hash->element[i + 1]->len;
        n++;
    }
    cb(op->data, JW_STORE_OK, override_value(reply->element[0]), reply->element[1]->str, fields,
       n);
    free(fields);
}

static void on_status(jw_store_t *store, redisReply *reply, void *data)
{
    jw_store_op_t *op = data;
    jw_store_err_t err = jw_store_reply_err(reply, "poller status");

    (void)store;
    if (err == JW_STORE_OK &&
        (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
         reply->element[1]->type != REDIS_REPLY_STRING ||
         reply->element[2]->type != REDIS_REPLY_ARRAY)) {
        jw_error("redis", "poller status failed: unexpected reply type=%d", reply->type);
        err = JW_STORE_FAILED;
    }
    if (err == JW_STORE_OK)
        deliver_status(op, reply);
    else
        ((jw_poller_status_cb)op->cb)(op->data, err, -1, "", NULL, 0);
    free(op);
}

void jw_store_poller_status(jw_store_t *store, jw_poller_status_cb cb, void *data)
{
    char leader[160], override[160], status[160];
    const char *args[] = {leader, override, status};
    jw_store_op_t *op = jw_store_op_new((void (*)(void))cb, data);

    key(store, "leader", leader, sizeof(leader));
    key(store, "override", override, sizeof(override));
    key(store, "status", status, sizeof(status));
    if (eval_text(store, jw_lua_poller_status, 3, 3, args, on_status, op) != 0) {
        free(op);
        cb(data, JW_STORE_UNAVAILABLE, -1, "", NULL, 0);
    }
}
