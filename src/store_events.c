/*
 * Stream operations of the store for the consumer group: read new events,
 * claim events left pending by dead replicas, trim what all have applied.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/log.h"
#include "store_internal.h"

#define GROUP "appliers"

/* The three reply shapes that carry stream entries. */
typedef enum reply_shape {
    SHAPE_READ,  /* XREAD, XREADGROUP: [[stream, entries]] or nil */
    SHAPE_CLAIM, /* XAUTOCLAIM: [cursor, entries, deleted ids] */
    SHAPE_RANGE, /* XRANGE: entries */
} reply_shape_t;

typedef struct entries_op {
    jw_entries_cb cb;
    void *data;
    reply_shape_t shape;
} entries_op_t;

static entries_op_t *new_entries_op(jw_entries_cb cb, void *data, reply_shape_t shape)
{
    entries_op_t *op = malloc(sizeof(*op));
    if (op == NULL)
        abort();
    op->cb = cb;
    op->data = data;
    op->shape = shape;
    return op;
}

/* Converts [[id, [k, v, ...]], ...] into entries; the fields of an entry
 * trimmed while pending come back as nil and give an empty entry. */
static void deliver_entries(entries_op_t *op, const redisReply *list, const char *cursor)
{
    size_t n = list ? list->elements : 0;
    jw_entry_t *entries = calloc(n + 1, sizeof(*entries));
    jw_field_t *fields = calloc((n + 1) * JW_FIELDS_MAX, sizeof(*fields));
    if (entries == NULL || fields == NULL)
        abort();

    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = list->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        jw_entry_t *out = &entries[used++];
        const redisReply *kv = e->element[1];
        out->id = e->element[0]->str;
        out->fields = fields + i * JW_FIELDS_MAX;
        for (size_t k = 0; kv->type == REDIS_REPLY_ARRAY && k + 1 < kv->elements &&
                           out->count < JW_FIELDS_MAX;
             k += 2) {
            jw_field_t *f = &fields[i * JW_FIELDS_MAX + out->count++];
            f->name = kv->element[k]->str;
            f->name_len = (size_t)kv->element[k]->len;
            f->value = kv->element[k + 1]->str;
            f->value_len = (size_t)kv->element[k + 1]->len;
        }
    }

    op->cb(op->data, JW_STORE_OK, entries, used, cursor);
    free(fields);
    free(entries);
}

static void create_group(jw_store_t *store)
{
    char key[128];
    const char *argv[6] = {"XGROUP", "CREATE", key, GROUP, "0", "MKSTREAM"};
    size_t argvlen[6];

    snprintf(key, sizeof(key), "%sevents", store->cfg->redis_prefix);
    for (int i = 0; i < 6; i++)
        argvlen[i] = strlen(argv[i]);
    /* Reading from 0 applies whatever the stream already holds: events
     * accepted while Redis had lost the group are not skipped. */
    jw_info("consumer", "creating consumer group group=%s stream=%s", GROUP, key);
    jw_rconn_send(&store->conns[JW_CONN_COMMANDS], NULL, NULL, 6, argv, argvlen);
}

static void on_entries(jw_store_t *store, redisReply *reply, void *data)
{
    entries_op_t *op = data;

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOGROUP", 7) == 0) {
        create_group(store);
        op->cb(op->data, JW_STORE_OK, NULL, 0, NULL);
        free(op);
        return;
    }

    jw_store_err_t err = jw_store_reply_err(reply, "stream read");
    int array = err == JW_STORE_OK && reply->type == REDIS_REPLY_ARRAY;
    if (err != JW_STORE_OK) {
        op->cb(op->data, err, NULL, 0, NULL);
    } else if (op->shape == SHAPE_CLAIM && array && reply->elements >= 2) {
        deliver_entries(op, reply->element[1], reply->element[0]->str);
    } else if (op->shape == SHAPE_READ && array && reply->elements == 1) {
        deliver_entries(op, reply->element[0]->element[1], NULL);
    } else if (op->shape == SHAPE_RANGE && array) {
        deliver_entries(op, reply, NULL);
    } else {
        op->cb(op->data, JW_STORE_OK, NULL, 0, NULL); /* nil: the block timed out */
    }
    free(op);
}

static void send_entries_cmd(jw_store_t *store, jw_store_conn_id_t conn, entries_op_t *op,
                             int argc, const char **argv)
{
    size_t argvlen[16];

    for (int i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    if (jw_rconn_send(&store->conns[conn], on_entries, op, argc, argv, argvlen) != 0) {
        op->cb(op->data, JW_STORE_UNAVAILABLE, NULL, 0, NULL);
        free(op);
    }
}

void jw_store_read_events(jw_store_t *store, const char *consumer, int count, int block_ms,
                          jw_entries_cb cb, void *data)
{
    char key[128], count_text[16], block_text[16];
    const char *argv[] = {"XREADGROUP", "GROUP", GROUP,   consumer, "COUNT", count_text,
                          "BLOCK",      block_text, "STREAMS", key, ">"};

    snprintf(key, sizeof(key), "%sevents", store->cfg->redis_prefix);
    snprintf(count_text, sizeof(count_text), "%d", count);
    snprintf(block_text, sizeof(block_text), "%d", block_ms);
    send_entries_cmd(store, JW_CONN_CONSUMER, new_entries_op(cb, data, SHAPE_READ), 11, argv);
}

void jw_store_claim_events(jw_store_t *store, const char *consumer, int min_idle_ms,
                           const char *cursor, int count, jw_entries_cb cb, void *data)
{
    char key[128], idle_text[16], count_text[16];
    const char *argv[] = {"XAUTOCLAIM", key, GROUP, consumer, idle_text, cursor, "COUNT", count_text};

    snprintf(key, sizeof(key), "%sevents", store->cfg->redis_prefix);
    snprintf(idle_text, sizeof(idle_text), "%d", min_idle_ms);
    snprintf(count_text, sizeof(count_text), "%d", count);
    send_entries_cmd(store, JW_CONN_COMMANDS, new_entries_op(cb, data, SHAPE_CLAIM), 8, argv);
}

typedef struct done_op {
    jw_done_cb cb;
    void *data;
    const char *what;
} done_op_t;

static void on_done(jw_store_t *store, redisReply *reply, void *data)
{
    done_op_t *op = data;

    (void)store;
    op->cb(op->data, jw_store_reply_err(reply, op->what));
    free(op);
}

static done_op_t *new_done_op(jw_done_cb cb, void *data, const char *what)
{
    done_op_t *op = malloc(sizeof(*op));
    if (op == NULL)
        abort();
    op->cb = cb;
    op->data = data;
    op->what = what;
    return op;
}

void jw_store_trim_events(jw_store_t *store, int consumer_idle_ms, jw_done_cb cb, void *data)
{
    char key[128], idle[16];
    const char *argv[] = {key, GROUP, idle};
    size_t argvlen[3];

    snprintf(key, sizeof(key), "%sevents", store->cfg->redis_prefix);
    snprintf(idle, sizeof(idle), "%d", consumer_idle_ms);
    for (int i = 0; i < 3; i++)
        argvlen[i] = strlen(argv[i]);

    done_op_t *op = new_done_op(cb, data, "trim events");
    if (jw_store_run_script(store, JW_SCRIPT_TRIM, 1, 3, argv, argvlen, on_done, op) != 0) {
        free(op);
        cb(data, JW_STORE_UNAVAILABLE);
    }
}

void jw_store_ping(jw_store_t *store, jw_done_cb cb, void *data)
{
    const char *argv[] = {"PING"};
    size_t argvlen[] = {4};

    done_op_t *op = new_done_op(cb, data, "ping");
    if (jw_rconn_send(&store->conns[JW_CONN_COMMANDS], on_done, op, 1, argv, argvlen) != 0) {
        free(op);
        cb(data, JW_STORE_UNAVAILABLE);
    }
}

/* --- the change stream, for the SSE hub ---------------------------------- */

void jw_store_follow_changes(jw_store_t *store, const char *after_id, int count, int block_ms,
                             jw_entries_cb cb, void *data)
{
    char key[128], count_text[16], block_text[16];
    const char *argv[] = {"XREAD", "COUNT", count_text, "BLOCK", block_text, "STREAMS", key,
                          after_id};

    snprintf(key, sizeof(key), "%schanges", store->cfg->redis_prefix);
    snprintf(count_text, sizeof(count_text), "%d", count);
    snprintf(block_text, sizeof(block_text), "%d", block_ms);
    send_entries_cmd(store, JW_CONN_HUB, new_entries_op(cb, data, SHAPE_READ), 8, argv);
}

void jw_store_range_changes(jw_store_t *store, const char *after_id, int count, jw_entries_cb cb,
                            void *data)
{
    char key[128], start[64], count_text[16];
    const char *argv[] = {"XRANGE", key, start, "+", "COUNT", count_text};

    /* "(" makes the start exclusive (Redis 6.2 and later). */
    snprintf(key, sizeof(key), "%schanges", store->cfg->redis_prefix);
    snprintf(start, sizeof(start), "(%s", after_id);
    snprintf(count_text, sizeof(count_text), "%d", count);
    send_entries_cmd(store, JW_CONN_COMMANDS, new_entries_op(cb, data, SHAPE_RANGE), 6, argv);
}

typedef struct bounds_op {
    jw_bounds_cb cb;
    void *data;
} bounds_op_t;

/* XINFO STREAM is a flat name/value list; an absent stream is an error
 * reply that means "empty". */
static void on_bounds(jw_store_t *store, redisReply *reply, void *data)
{
    bounds_op_t *op = data;
    const char *first = "", *last = "0-0";

    (void)store;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "no such key")) {
        op->cb(op->data, JW_STORE_OK, first, last);
        free(op);
        return;
    }

    jw_store_err_t err = jw_store_reply_err(reply, "change stream bounds");
    if (err == JW_STORE_OK && reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            const redisReply *k = reply->element[i], *v = reply->element[i + 1];
            if (k->type != REDIS_REPLY_STRING)
                continue;
            if (strcmp(k->str, "last-generated-id") == 0 && v->type == REDIS_REPLY_STRING)
                last = v->str;
            else if (strcmp(k->str, "first-entry") == 0 && v->type == REDIS_REPLY_ARRAY &&
                     v->elements == 2 && v->element[0]->type == REDIS_REPLY_STRING)
                first = v->element[0]->str;
        }
    }
    op->cb(op->data, err, first, last);
    free(op);
}

void jw_store_change_bounds(jw_store_t *store, jw_bounds_cb cb, void *data)
{
    char key[128];
    const char *argv[] = {"XINFO", "STREAM", key};
    size_t argvlen[3];

    snprintf(key, sizeof(key), "%schanges", store->cfg->redis_prefix);
    for (int i = 0; i < 3; i++)
        argvlen[i] = strlen(argv[i]);

    bounds_op_t *op = malloc(sizeof(*op));
    if (op == NULL)
        abort();
    op->cb = cb;
    op->data = data;
    if (jw_rconn_send(&store->conns[JW_CONN_COMMANDS], on_bounds, op, 3, argv, argvlen) != 0) {
        free(op);
        cb(data, JW_STORE_UNAVAILABLE, "", "0-0");
    }
}

void jw_store_audit_range(jw_store_t *store, const char *before_id, int count, jw_entries_cb cb,
                          void *data)
{
    char key[128], end[64], count_text[16];
    const char *argv[] = {"XREVRANGE", key, end, "-", "COUNT", count_text};

    snprintf(key, sizeof(key), "%saudit", store->cfg->redis_prefix);
    if (before_id != NULL)
        snprintf(end, sizeof(end), "(%s", before_id);
    else
        snprintf(end, sizeof(end), "+");
    snprintf(count_text, sizeof(count_text), "%d", count);
    send_entries_cmd(store, JW_CONN_COMMANDS, new_entries_op(cb, data, SHAPE_RANGE), 6, argv);
}
