/*
 * Job operations of the store: ingest a webhook event, apply an event,
 * read one job, list jobs. The merge rules themselves live in apply.lua.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "jobwire/log.h"
#include "store_internal.h"

/* Room for one event's fields, or a batch of entry ids. */
#define ARGS_MAX (2 * JW_FIELDS_MAX + 256)

/* Argument vector of one command; values are borrowed until it is sent. */
typedef struct args {
    const char *v[ARGS_MAX];
    size_t len[ARGS_MAX];
    int n;
} args_t;

static void push(args_t *a, const char *value, size_t len)
{
    if (a->n < ARGS_MAX) {
        a->v[a->n] = value;
        a->len[a->n] = len;
        a->n++;
    }
}

static void push_str(args_t *a, const char *value)
{
    push(a, value, strlen(value));
}

static void push_fields(args_t *a, const jw_field_t *fields, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        push(a, fields[i].name, fields[i].name_len);
        push(a, fields[i].value, fields[i].value_len);
    }
}

size_t jw_store_reply_fields(const redisReply *r, jw_field_t *out, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i + 1 < r->elements && n < max; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        out[n].name = k->str;
        out[n].name_len = (size_t)k->len;
        out[n].value = v->str;
        out[n].value_len = (size_t)v->len;
        n++;
    }
    return n;
}

/* --- ingest ------------------------------------------------------------- */

typedef struct ingest_op {
    jw_ingest_cb cb;
    void *data;
} ingest_op_t;

static void on_ingest(jw_store_t *store, redisReply *reply, void *data)
{
    ingest_op_t *op = data;
    jw_store_err_t err = jw_store_reply_err(reply, "ingest");

    (void)store;
    if (err == JW_STORE_OK && (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2)) {
        jw_error("redis", "ingest failed: unexpected reply type=%d", reply->type);
        err = JW_STORE_FAILED;
    }

    if (err != JW_STORE_OK)
        op->cb(op->data, err, 0, NULL);
    else
        op->cb(op->data, err, reply->element[0]->integer == 0, reply->element[1]->str);
    free(op);
}

void jw_store_ingest(jw_store_t *store, const char *delivery_id, const jw_fields_t *event,
                     jw_ingest_cb cb, void *data)
{
    const char *prefix = store->cfg->redis_prefix;
    char delivery_key[512], events_key[128], ttl[16];
    args_t a = {.n = 0};

    snprintf(delivery_key, sizeof(delivery_key), "%sdelivery:%s", prefix, delivery_id);
    snprintf(events_key, sizeof(events_key), "%sevents", prefix);
    snprintf(ttl, sizeof(ttl), "%d", store->cfg->delivery_ttl_s);
    push_str(&a, delivery_key);
    push_str(&a, events_key);
    push_str(&a, ttl);
    push_fields(&a, event->items, event->count);

    ingest_op_t *op = malloc(sizeof(*op));
    if (op == NULL)
        abort();
    op->cb = cb;
    op->data = data;
    if (jw_store_run_script(store, JW_SCRIPT_INGEST, 2, a.n, a.v, a.len, on_ingest, op) != 0) {
        free(op);
        cb(data, JW_STORE_UNAVAILABLE, 0, NULL);
    }
}

/* --- apply -------------------------------------------------------------- */

typedef struct apply_op {
    jw_apply_cb cb;              /* one event */
    jw_apply_entries_cb entries_cb; /* a batch of entries */
    void *data;
} apply_op_t;

/* Reads the flat {created, changed, change id, status, ...} reply. */
static size_t read_results(const redisReply *reply, jw_apply_result_t *results, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i + 3 < reply->elements && n < max; i += 4) {
        results[n].created = (int)reply->element[i]->integer;
        results[n].changed = (int)reply->element[i + 1]->integer;
        results[n].change_id = reply->element[i + 2]->str ? reply->element[i + 2]->str : "";
        results[n].status = reply->element[i + 3]->str ? reply->element[i + 3]->str : "";
        n++;
    }
    return n;
}

static void on_apply(jw_store_t *store, redisReply *reply, void *data)
{
    apply_op_t *op = data;
    jw_store_err_t err = jw_store_reply_err(reply, "apply");

    (void)store;
    if (err == JW_STORE_OK && (reply->type != REDIS_REPLY_ARRAY || reply->elements % 4 != 0)) {
        jw_error("redis", "apply failed: unexpected reply type=%d", reply->type);
        err = JW_STORE_FAILED;
    }

    size_t max = err == JW_STORE_OK ? reply->elements / 4 : 0;
    jw_apply_result_t *results = calloc(max + 1, sizeof(*results));
    if (results == NULL)
        abort();
    size_t n = max ? read_results(reply, results, max) : 0;

    if (op->entries_cb != NULL)
        op->entries_cb(op->data, err, results, n);
    else
        op->cb(op->data, n == 1 ? err : (err ? err : JW_STORE_FAILED), results);
    free(results);
    free(op);
}

static void format_now(char iso[48], char ms[24])
{
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(iso, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)tv.tv_usec);
    snprintf(ms, 24, "%lld", (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000);
}

#define APPLY_FIXED_ARGS 8

int jw_store_run_apply(jw_store_t *store, const char *mode, int tailc, const char *const *tailv,
                       const size_t *tail_len, jw_reply_fn fn, void *data)
{
    const char *prefix = store->cfg->redis_prefix;
    char changes_key[128], events_key[128], now_iso[48], now_ms[24], maxlen[24];
    const char **argv = calloc((size_t)tailc + APPLY_FIXED_ARGS, sizeof(*argv));
    size_t *argvlen = calloc((size_t)tailc + APPLY_FIXED_ARGS, sizeof(*argvlen));
    int rc;

    if (argv == NULL || argvlen == NULL)
        abort();
    snprintf(changes_key, sizeof(changes_key), "%schanges", prefix);
    snprintf(events_key, sizeof(events_key), "%sevents", prefix);
    snprintf(maxlen, sizeof(maxlen), "%ld", store->cfg->changes_maxlen);
    format_now(now_iso, now_ms);

    const char *fixed[APPLY_FIXED_ARGS] = {changes_key, events_key, prefix, now_iso,
                                           now_ms,      maxlen,     mode,   "appliers"};
    for (int i = 0; i < APPLY_FIXED_ARGS; i++) {
        argv[i] = fixed[i];
        argvlen[i] = strlen(fixed[i]);
    }
    for (int i = 0; i < tailc; i++) {
        argv[APPLY_FIXED_ARGS + i] = tailv[i];
        argvlen[APPLY_FIXED_ARGS + i] = tail_len[i];
    }
    rc = jw_store_run_script(store, JW_SCRIPT_APPLY, 2, tailc + APPLY_FIXED_ARGS, argv, argvlen,
                             fn, data);
    free(argv);
    free(argvlen);
    return rc;
}

/* Sends apply.lua with its fixed arguments and the mode's own tail. */
static void run_apply(jw_store_t *store, const char *mode, args_t *tail, apply_op_t *op)
{
    if (jw_store_run_apply(store, mode, tail->n, tail->v, tail->len, on_apply, op) != 0)
        on_apply(store, NULL, op);
}

void jw_store_apply(jw_store_t *store, const jw_field_t *fields, size_t count, jw_apply_cb cb,
                    void *data)
{
    args_t tail = {.n = 0};
    apply_op_t *op = calloc(1, sizeof(*op));

    if (op == NULL)
        abort();
    op->cb = cb;
    op->data = data;
    push_fields(&tail, fields, count);
    run_apply(store, "event", &tail, op);
}

void jw_store_apply_entries(jw_store_t *store, const char *const *ids, size_t count,
                            jw_apply_entries_cb cb, void *data)
{
    args_t tail = {.n = 0};
    apply_op_t *op = calloc(1, sizeof(*op));

    if (op == NULL)
        abort();
    op->entries_cb = cb;
    op->data = data;
    for (size_t i = 0; i < count; i++)
        push_str(&tail, ids[i]);
    run_apply(store, "entries", &tail, op);
}

/* --- read one job ----------------------------------------------------- */

typedef struct job_op {
    jw_job_cb cb;
    void *data;
} job_op_t;

static void on_job(jw_store_t *store, redisReply *reply, void *data)
{
    job_op_t *op = data;
    jw_store_err_t err = jw_store_reply_err(reply, "get job");
    jw_field_t fields[JW_FIELDS_MAX];
    size_t n = 0;

    (void)store;
    if (err == JW_STORE_OK && reply->type == REDIS_REPLY_ARRAY)
        n = jw_store_reply_fields(reply, fields, JW_FIELDS_MAX);

    op->cb(op->data, err, fields, n);
    free(op);
}

void jw_store_get_job(jw_store_t *store, const char *job_id, jw_job_cb cb, void *data)
{
    char key[256];
    const char *argv[2] = {"HGETALL", key};
    size_t argvlen[2];

    snprintf(key, sizeof(key), "%sjob:%s", store->cfg->redis_prefix, job_id);
    argvlen[0] = 7;
    argvlen[1] = strlen(key);

    job_op_t *op = malloc(sizeof(*op));
    if (op == NULL)
        abort();
    op->cb = cb;
    op->data = data;
    if (jw_rconn_send(&store->conns[JW_CONN_COMMANDS], on_job, op, 2, argv, argvlen) != 0) {
        free(op);
        cb(data, JW_STORE_UNAVAILABLE, NULL, 0);
    }
}

/* --- list jobs ---------------------------------------------------------- */

typedef struct list_op {
    jw_list_cb cb;
    void *data;
} list_op_t;

static void deliver_list(list_op_t *op, const redisReply *reply)
{
    size_t count = reply->elements - 1;
    jw_job_record_t *jobs = calloc(count + 1, sizeof(*jobs));
    jw_field_t *fields = calloc((count + 1) * JW_FIELDS_MAX, sizeof(*fields));
    if (jobs == NULL || fields == NULL)
        abort();

    for (size_t i = 0; i < count; i++) {
        const redisReply *job = reply->element[i + 1];
        jobs[i].fields = fields + i * JW_FIELDS_MAX;
        if (job->type == REDIS_REPLY_ARRAY)
            jobs[i].count = jw_store_reply_fields(job, fields + i * JW_FIELDS_MAX, JW_FIELDS_MAX);
    }

    op->cb(op->data, JW_STORE_OK, reply->element[0]->integer, jobs, count);
    free(fields);
    free(jobs);
}

static void on_list(jw_store_t *store, redisReply *reply, void *data)
{
    list_op_t *op = data;
    jw_store_err_t err = jw_store_reply_err(reply, "list jobs");

    (void)store;
    if (err == JW_STORE_OK && (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1)) {
        jw_error("redis", "list jobs failed: unexpected reply type=%d", reply->type);
        err = JW_STORE_FAILED;
    }

    if (err == JW_STORE_OK)
        deliver_list(op, reply);
    else
        op->cb(op->data, err, 0, NULL, 0);
    free(op);
}

void jw_store_list_jobs(jw_store_t *store, const jw_list_query_t *query, jw_list_cb cb, void *data)
{
    char offset[24], limit[24], nonce[48];
    args_t a = {.n = 0};

    snprintf(offset, sizeof(offset), "%ld", query->offset);
    snprintf(limit, sizeof(limit), "%ld", query->limit);
    /* Scripts run atomically, so one temporary key name per process is
     * enough; the counter only makes a key left by a crash easy to spot. */
    snprintf(nonce, sizeof(nonce), "%llu", (unsigned long long)++store->list_nonce);
    push_str(&a, store->cfg->redis_prefix);
    push_str(&a, offset);
    push_str(&a, limit);
    push_str(&a, query->provider ? query->provider : "");
    push_str(&a, query->statuses ? query->statuses : "");
    push_str(&a, nonce);

    list_op_t *op = malloc(sizeof(*op));
    if (op == NULL)
        abort();
    op->cb = cb;
    op->data = data;
    if (jw_store_run_script(store, JW_SCRIPT_LIST, 0, a.n, a.v, a.len, on_list, op) != 0) {
        free(op);
        cb(data, JW_STORE_UNAVAILABLE, 0, NULL, 0);
    }
}
