/*
 * The submission queue's Redis operations. Job records change only in
 * apply.lua (modes 'submit' and 'positions'); the slots change in
 * queue_slots.lua; the lease reuses poller_lease.lua with the queue's
 * own keys. See store_queue.h for the contracts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/log.h"
#include "jobwire/store_queue.h"
#include "store_internal.h"

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p == NULL)
        abort();
    return p;
}

static void key(const jw_store_t *store, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%squeue:%s", store->cfg->redis_prefix, name);
}

static int is_type(const redisReply *r, int type)
{
    return r != NULL && r->type == type;
}

/* Sends a script with NUL-terminated arguments; on a connection that is
 * down, calls fail(op) at once. */
static void run(jw_store_t *store, jw_script_id_t script, int nkeys, int argc, const char **argv,
                jw_reply_fn fn, jw_store_op_t *op, void (*fail)(jw_store_op_t *op))
{
    size_t argvlen[16];

    for (int i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    if (jw_store_run_script(store, script, nkeys, argc, argv, argvlen, fn, op) != 0) {
        fail(op);
        free(op);
    }
}

/* --- done callbacks ------------------------------------------------------- */

static void on_done(jw_store_t *store, redisReply *reply, void *data)
{
    jw_store_op_t *op = data;

    (void)store;
    ((jw_done_cb)op->cb)(op->data, jw_store_reply_err(reply, "queue"));
    free(op);
}

static void fail_done(jw_store_op_t *op)
{
    ((jw_done_cb)op->cb)(op->data, JW_STORE_UNAVAILABLE);
}

/* --- submit ----------------------------------------------------------------- */

static jw_submit_outcome_t outcome_of(const char *word)
{
    static const char *const words[] = {"created", "replay", "mismatch", "gone", "full"};

    for (int i = 0; i < 5; i++) {
        if (strcmp(word, words[i]) == 0)
            return (jw_submit_outcome_t)i;
    }
    return JW_SUBMIT_FULL;
}

static void on_submit(jw_store_t *store, redisReply *reply, void *data)
{
    jw_store_op_t *op = data;
    jw_submit_cb cb = (jw_submit_cb)op->cb;
    jw_store_err_t err = jw_store_reply_err(reply, "submit");
    jw_field_t fields[JW_FIELDS_MAX];

    (void)store;
    if (err == JW_STORE_OK &&
        (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
         !is_type(reply->element[0], REDIS_REPLY_STRING) ||
         !is_type(reply->element[1], REDIS_REPLY_STRING) ||
         !is_type(reply->element[2], REDIS_REPLY_ARRAY))) {
        jw_error("redis", "submit failed: unexpected reply type=%d", reply->type);
        err = JW_STORE_FAILED;
    }
    if (err != JW_STORE_OK) {
        cb(op->data, err, JW_SUBMIT_FULL, "", NULL, 0);
    } else {
        size_t n = jw_store_reply_fields(reply->element[2], fields, JW_FIELDS_MAX);

        cb(op->data, err, outcome_of(reply->element[0]->str), reply->element[1]->str, fields, n);
    }
    free(op);
}

void jw_store_queue_submit(jw_store_t *store, const jw_submit_request_t *req, jw_submit_cb cb,
                           void *data)
{
    char ttl[24], max_pending[24];
    size_t argc = 5 + 2 * req->count;
    const char **argv = xcalloc(argc, sizeof(*argv));
    size_t *argvlen = xcalloc(argc, sizeof(*argvlen));
    jw_store_op_t *op = jw_store_op_new((void (*)(void))cb, data);

    snprintf(ttl, sizeof(ttl), "%d", req->key_ttl_s);
    snprintf(max_pending, sizeof(max_pending), "%d", req->max_pending);
    argv[0] = req->job_id;
    argv[1] = req->idempotency_key != NULL ? req->idempotency_key : "";
    argv[2] = req->digest;
    argv[3] = ttl;
    argv[4] = max_pending;
    for (int i = 0; i < 5; i++)
        argvlen[i] = strlen(argv[i]);
    for (size_t i = 0; i < req->count; i++) {
        argv[5 + 2 * i] = req->fields[i].name;
        argvlen[5 + 2 * i] = req->fields[i].name_len;
        argv[6 + 2 * i] = req->fields[i].value;
        argvlen[6 + 2 * i] = req->fields[i].value_len;
    }
    if (jw_store_run_apply(store, "submit", (int)argc, argv, argvlen, on_submit, op) != 0) {
        free(op);
        cb(data, JW_STORE_UNAVAILABLE, JW_SUBMIT_FULL, "", NULL, 0);
    }
    free(argv);
    free(argvlen);
}

/* --- claim and unclaim ------------------------------------------------------- */

/* Reads {job id, {field, value, ...}} pairs; the fields share one array. */
static size_t read_claims(const redisReply *list, jw_queue_claim_t *claims, jw_field_t *fields)
{
    size_t n = 0;

    for (size_t i = 0; i + 1 < list->elements; i += 2) {
        const redisReply *id = list->element[i], *sub = list->element[i + 1];

        if (!is_type(id, REDIS_REPLY_STRING) || !is_type(sub, REDIS_REPLY_ARRAY))
            continue;
        claims[n].job_id = id->str;
        claims[n].fields = fields + n * JW_FIELDS_MAX;
        claims[n].count = jw_store_reply_fields(sub, fields + n * JW_FIELDS_MAX, JW_FIELDS_MAX);
        n++;
    }
    return n;
}

static size_t read_checks(const redisReply *list, jw_queue_check_t *checks)
{
    size_t n = 0;

    for (size_t i = 0; i + 2 < list->elements; i += 3) {
        if (!is_type(list->element[i], REDIS_REPLY_STRING) ||
            !is_type(list->element[i + 1], REDIS_REPLY_STRING) ||
            !is_type(list->element[i + 2], REDIS_REPLY_STRING))
            continue;
        checks[n].job_id = list->element[i]->str;
        checks[n].provider_id = list->element[i + 1]->str;
        checks[n].kind = list->element[i + 2]->str;
        n++;
    }
    return n;
}

static void deliver_round(jw_store_op_t *op, const redisReply *reply)
{
    const redisReply *claims = reply->element[0], *checks = reply->element[1];
    jw_queue_round_t round = {0};
    jw_queue_claim_t *claim_list = xcalloc(claims->elements / 2 + 1, sizeof(*claim_list));
    jw_field_t *fields = xcalloc((claims->elements / 2 + 1) * JW_FIELDS_MAX, sizeof(*fields));
    jw_queue_check_t *check_list = xcalloc(checks->elements / 3 + 1, sizeof(*check_list));

    round.claims = claim_list;
    round.claim_count = read_claims(claims, claim_list, fields);
    round.checks = check_list;
    round.check_count = read_checks(checks, check_list);
    round.slots_used = reply->element[2]->integer;
    round.pending = reply->element[3]->integer;
    round.freed = reply->element[4]->integer;
    ((jw_queue_claim_cb)op->cb)(op->data, JW_STORE_OK, &round);
    free(claim_list);
    free(fields);
    free(check_list);
}

static void on_claim(jw_store_t *store, redisReply *reply, void *data)
{
    jw_store_op_t *op = data;
    jw_store_err_t err = jw_store_reply_err(reply, "queue claim");

    (void)store;
    if (err == JW_STORE_OK &&
        (reply->type != REDIS_REPLY_ARRAY || reply->elements != 5 ||
         !is_type(reply->element[0], REDIS_REPLY_ARRAY) ||
         !is_type(reply->element[1], REDIS_REPLY_ARRAY))) {
        jw_error("redis", "queue claim failed: unexpected reply type=%d", reply->type);
        err = JW_STORE_FAILED;
    }
    if (err == JW_STORE_OK)
        deliver_round(op, reply);
    else
        ((jw_queue_claim_cb)op->cb)(op->data, err, NULL);
    free(op);
}

static void fail_claim(jw_store_op_t *op)
{
    ((jw_queue_claim_cb)op->cb)(op->data, JW_STORE_UNAVAILABLE, NULL);
}

void jw_store_queue_claim(jw_store_t *store, const jw_queue_limits_t *limits, jw_queue_claim_cb cb,
                          void *data)
{
    char now[24], max[16], per_user[16], expiry[24], verify[24], claims[16];
    const char *argv[] = {store->cfg->redis_prefix, "claim", now, max, per_user, expiry, verify,
                          claims};

    snprintf(now, sizeof(now), "%lld", limits->now_ms);
    snprintf(max, sizeof(max), "%d", limits->max_concurrent);
    snprintf(per_user, sizeof(per_user), "%d", limits->max_per_user);
    snprintf(expiry, sizeof(expiry), "%lld", limits->claim_expiry_ms);
    snprintf(verify, sizeof(verify), "%lld", limits->verify_after_ms);
    snprintf(claims, sizeof(claims), "%d", limits->max_claims);
    run(store, JW_SCRIPT_QUEUE_SLOTS, 0, 8, argv, on_claim, jw_store_op_new((void (*)(void))cb, data),
        fail_claim);
}

void jw_store_queue_unclaim(jw_store_t *store, const char *job_id, long long now_ms,
                            jw_done_cb cb, void *data)
{
    char now[24];
    const char *argv[] = {store->cfg->redis_prefix, "unclaim", now, job_id};

    snprintf(now, sizeof(now), "%lld", now_ms);
    run(store, JW_SCRIPT_QUEUE_SLOTS, 0, 4, argv, on_done, jw_store_op_new((void (*)(void))cb, data),
        fail_done);
}

void jw_store_queue_positions(jw_store_t *store, const char *const *job_ids, size_t count,
                              jw_done_cb cb, void *data)
{
    size_t *lens = xcalloc(count + 1, sizeof(*lens));
    jw_store_op_t *op = jw_store_op_new((void (*)(void))cb, data);

    for (size_t i = 0; i < count; i++)
        lens[i] = strlen(job_ids[i]);
    if (jw_store_run_apply(store, "positions", (int)count, job_ids, lens, on_done, op) != 0) {
        free(op);
        cb(data, JW_STORE_UNAVAILABLE);
    }
    free(lens);
}

/* --- lease and last-round record ----------------------------------------------- */

static void on_lease(jw_store_t *store, redisReply *reply, void *data)
{
    jw_store_op_t *op = data;
    jw_store_err_t err = jw_store_reply_err(reply, "queue lease");

    (void)store;
    if (err == JW_STORE_OK &&
        (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
         !is_type(reply->element[2], REDIS_REPLY_STRING))) {
        jw_error("redis", "queue lease failed: unexpected reply type=%d", reply->type);
        err = JW_STORE_FAILED;
    }
    ((jw_queue_lease_cb)op->cb)(op->data, err, err == JW_STORE_OK ? reply->element[2]->str : "");
    free(op);
}

static void fail_lease(jw_store_op_t *op)
{
    ((jw_queue_lease_cb)op->cb)(op->data, JW_STORE_UNAVAILABLE, "");
}

void jw_store_queue_lease(jw_store_t *store, const char *replica, long long lease_ms, int wanted,
                          int stopping, jw_queue_lease_cb cb, void *data)
{
    char leader[160], override[160], ms[24];
    /* poller_lease.lua's arguments; the queue has no override, so its key
     * is never set, and no stale check. */
    const char *argv[] = {leader, override, replica, ms, wanted ? "1" : "0", "0",
                          stopping ? "1" : "0"};

    key(store, "leader", leader, sizeof(leader));
    key(store, "override", override, sizeof(override));
    snprintf(ms, sizeof(ms), "%lld", lease_ms);
    run(store, JW_SCRIPT_LEASE, 2, 7, argv, on_lease, jw_store_op_new((void (*)(void))cb, data),
        fail_lease);
}

void jw_store_queue_record(jw_store_t *store, const jw_field_t *fields, size_t count)
{
    char status[160];

    key(store, "status", status, sizeof(status));
    jw_store_hset_fields(store, status, fields, count);
}

/* --- view --------------------------------------------------------------------- */

static const char *str_at(const redisReply *list, size_t i)
{
    const redisReply *r = list->element[i];

    return is_type(r, REDIS_REPLY_STRING) ? r->str : "";
}

static void deliver_view(jw_store_op_t *op, const redisReply *reply)
{
    const redisReply *line = reply->element[0], *slots = reply->element[2];
    jw_queue_view_t view = {0};
    jw_queue_entry_t *entries = xcalloc(line->elements / 5 + 1, sizeof(*entries));
    jw_queue_holder_t *holders = xcalloc(slots->elements / 5 + 1, sizeof(*holders));
    jw_field_t last[JW_FIELDS_MAX];

    for (size_t i = 0; i + 4 < line->elements; i += 5) {
        jw_queue_entry_t *e = &entries[view.entry_count++];

        e->job_id = str_at(line, i);
        e->user_id = str_at(line, i + 1);
        e->model = str_at(line, i + 2);
        e->destination = str_at(line, i + 3);
        e->created_at = str_at(line, i + 4);
    }
    for (size_t i = 0; i + 4 < slots->elements; i += 5) {
        jw_queue_holder_t *h = &holders[view.holder_count++];

        h->job_id = str_at(slots, i);
        h->status = str_at(slots, i + 1);
        h->provider_id = str_at(slots, i + 2);
        h->user_id = str_at(slots, i + 3);
        h->taken_ms = strtoll(str_at(slots, i + 4), NULL, 10);
    }
    view.entries = entries;
    view.holders = holders;
    view.pending = reply->element[1]->integer;
    view.leader = str_at(reply, 3);
    view.last_round = last;
    view.last_round_count = jw_store_reply_fields(reply->element[4], last, JW_FIELDS_MAX);
    ((jw_queue_view_cb)op->cb)(op->data, JW_STORE_OK, &view);
    free(entries);
    free(holders);
}

static void on_view(jw_store_t *store, redisReply *reply, void *data)
{
    jw_store_op_t *op = data;
    jw_store_err_t err = jw_store_reply_err(reply, "queue view");

    (void)store;
    if (err == JW_STORE_OK &&
        (reply->type != REDIS_REPLY_ARRAY || reply->elements != 5 ||
         !is_type(reply->element[0], REDIS_REPLY_ARRAY) ||
         !is_type(reply->element[2], REDIS_REPLY_ARRAY) ||
         !is_type(reply->element[4], REDIS_REPLY_ARRAY))) {
        jw_error("redis", "queue view failed: unexpected reply type=%d", reply->type);
        err = JW_STORE_FAILED;
    }
    if (err == JW_STORE_OK)
        deliver_view(op, reply);
    else
        ((jw_queue_view_cb)op->cb)(op->data, err, NULL);
    free(op);
}

static void fail_view(jw_store_op_t *op)
{
    ((jw_queue_view_cb)op->cb)(op->data, JW_STORE_UNAVAILABLE, NULL);
}

void jw_store_queue_view(jw_store_t *store, size_t limit, jw_queue_view_cb cb, void *data)
{
    char count[24];
    const char *argv[] = {store->cfg->redis_prefix, count};

    snprintf(count, sizeof(count), "%zu", limit > 0 ? limit : 1);
    run(store, JW_SCRIPT_QUEUE_VIEW, 0, 2, argv, on_view, jw_store_op_new((void (*)(void))cb, data),
        fail_view);
}
