/*
 * The store object: its connections, the Lua scripts it runs by SHA, and
 * the fallback to the script text when Redis has forgotten them.
 */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/log.h"
#include "store_internal.h"

extern const char jw_lua_ingest[], jw_lua_apply[], jw_lua_list[], jw_lua_trim[],
    jw_lua_sse_lease[];
extern const size_t jw_lua_ingest_len, jw_lua_apply_len, jw_lua_list_len, jw_lua_trim_len,
    jw_lua_sse_lease_len;
extern const char jw_lua_active[], jw_lua_delete[], jw_lua_rate_limit[];
extern const size_t jw_lua_active_len, jw_lua_delete_len, jw_lua_rate_limit_len;
extern const char jw_lua_active[], jw_lua_delete[];
extern const size_t jw_lua_active_len, jw_lua_delete_len;
extern const char jw_lua_queue_slots[], jw_lua_queue_view[], jw_lua_poller_lease[];
extern const size_t jw_lua_queue_slots_len, jw_lua_queue_view_len, jw_lua_poller_lease_len;

/* How long Redis may leave a command unanswered before the connection is
 * dropped. The blocking connections add the longest BLOCK time any caller
 * uses (the hub's 5 s). */
#define COMMAND_TIMEOUT_MS 5000
#define BLOCKING_TIMEOUT_MS (COMMAND_TIMEOUT_MS + 5000)

static const char *script_text(jw_script_id_t id, size_t *len)
{
    switch (id) {
    case JW_SCRIPT_INGEST:
        *len = jw_lua_ingest_len;
        return jw_lua_ingest;
    case JW_SCRIPT_APPLY:
        *len = jw_lua_apply_len;
        return jw_lua_apply;
    case JW_SCRIPT_LIST:
        *len = jw_lua_list_len;
        return jw_lua_list;
    case JW_SCRIPT_SSE_LEASE:
        *len = jw_lua_sse_lease_len;
        return jw_lua_sse_lease;
    case JW_SCRIPT_ACTIVE:
        *len = jw_lua_active_len;
        return jw_lua_active;
    case JW_SCRIPT_DELETE:
        *len = jw_lua_delete_len;
        return jw_lua_delete;
    case JW_SCRIPT_RATE_LIMIT:
        *len = jw_lua_rate_limit_len;
        return jw_lua_rate_limit;
    case JW_SCRIPT_QUEUE_SLOTS:
        *len = jw_lua_queue_slots_len;
        return jw_lua_queue_slots;
    case JW_SCRIPT_QUEUE_VIEW:
        *len = jw_lua_queue_view_len;
        return jw_lua_queue_view;
    case JW_SCRIPT_LEASE:
        *len = jw_lua_poller_lease_len;
        return jw_lua_poller_lease;
    default:
        *len = jw_lua_trim_len;
        return jw_lua_trim;
    }
}

static void compute_shas(jw_store_t *store)
{
    for (int i = 0; i < JW_SCRIPT_COUNT; i++) {
        unsigned char digest[SHA_DIGEST_LENGTH];
        size_t len;
        const char *text = script_text((jw_script_id_t)i, &len);

        SHA1((const unsigned char *)text, len, digest);
        for (int b = 0; b < SHA_DIGEST_LENGTH; b++)
            snprintf(store->script_sha[i] + 2 * b, 3, "%02x", digest[b]);
    }
}

jw_store_op_t *jw_store_op_new(void (*cb)(void), void *data)
{
    jw_store_op_t *op = malloc(sizeof(*op));

    if (op == NULL)
        abort();
    op->cb = cb;
    op->data = data;
    return op;
}

void jw_store_hset_fields(jw_store_t *store, const char *key, const jw_field_t *fields,
                          size_t count)
{
    const char *argv[2 + 2 * JW_FIELDS_MAX];
    size_t argvlen[2 + 2 * JW_FIELDS_MAX];
    int argc = 2;

    argv[0] = "HSET";
    argv[1] = key;
    argvlen[0] = 4;
    argvlen[1] = strlen(key);
    for (size_t i = 0; i < count && i < JW_FIELDS_MAX; i++) {
        argv[argc] = fields[i].name;
        argvlen[argc++] = fields[i].name_len;
        argv[argc] = fields[i].value;
        argvlen[argc++] = fields[i].value_len;
    }
    if (argc > 2)
        jw_rconn_send(&store->conns[JW_CONN_COMMANDS], NULL, NULL, argc, argv, argvlen);
}

jw_store_t *jw_store_new(uv_loop_t *loop, const jw_config_t *cfg)
{
    jw_store_t *store = calloc(1, sizeof(*store));
    if (store == NULL)
        abort();

    store->loop = loop;
    store->cfg = cfg;
    compute_shas(store);
    jw_rconn_init(&store->conns[JW_CONN_COMMANDS], store, "commands", COMMAND_TIMEOUT_MS);
    jw_rconn_init(&store->conns[JW_CONN_CONSUMER], store, "consumer", BLOCKING_TIMEOUT_MS);
    jw_rconn_init(&store->conns[JW_CONN_HUB], store, "hub", BLOCKING_TIMEOUT_MS);
    return store;
}

void jw_store_free(jw_store_t *store)
{
    for (int i = 0; i < JW_CONN_COUNT; i++)
        jw_rconn_close(&store->conns[i]);
    /* The timers close on the next loop turn; the store must outlive them. */
}

int jw_store_is_ready(const jw_store_t *store)
{
    return store->conns[JW_CONN_COMMANDS].state == JW_RCONN_READY;
}

const char *jw_store_prefix(const jw_store_t *store)
{
    return store->cfg->redis_prefix;
}

uint64_t jw_store_reconnects(const jw_store_t *store)
{
    return store->reconnects;
}

/* A script call in flight, with a private copy of its arguments so it can
 * be sent again as EVAL after a NOSCRIPT reply. */
typedef struct script_call {
    jw_store_t *store;
    jw_script_id_t script;
    int argc;
    const char **argv;
    size_t *argvlen;
    jw_reply_fn fn;
    void *data;
    int retried;
} script_call_t;

static script_call_t *copy_call(int nkeys, int argc, const char **argv, const size_t *argvlen)
{
    size_t bytes = 16; /* the key count's digits */
    for (int i = 0; i < argc; i++)
        bytes += argvlen[i] + 1;

    /* One block: the struct, the two arrays (argv[0..1] are EVALSHA, sha),
     * then the argument bytes. */
    size_t head = sizeof(script_call_t) + (size_t)(argc + 3) * (sizeof(char *) + sizeof(size_t));
    script_call_t *call = calloc(1, head + bytes);
    if (call == NULL)
        abort();

    call->argc = argc + 3;
    call->argv = (const char **)(call + 1);
    call->argvlen = (size_t *)(call->argv + call->argc);
    char *p = (char *)(call->argvlen + call->argc);
    for (int i = 0; i < argc; i++) {
        memcpy(p, argv[i], argvlen[i]);
        p[argvlen[i]] = '\0';
        call->argv[i + 3] = p;
        call->argvlen[i + 3] = argvlen[i];
        p += argvlen[i] + 1;
    }

    int n = snprintf(p, 16, "%d", nkeys);
    call->argv[2] = p;
    call->argvlen[2] = (size_t)n;
    return call;
}

static int send_call(script_call_t *call);

static void on_script_reply(jw_store_t *store, redisReply *reply, void *data)
{
    script_call_t *call = data;

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR && !call->retried &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        /* Redis restarted or flushed its script cache: send the text. */
        call->retried = 1;
        if (send_call(call) == 0)
            return;
        reply = NULL;
    }

    call->fn(store, reply, call->data);
    free(call);
}

static int send_call(script_call_t *call)
{
    size_t len;
    const char *text = script_text(call->script, &len);

    if (call->retried) {
        call->argv[0] = "EVAL";
        call->argvlen[0] = 4;
        call->argv[1] = text;
        call->argvlen[1] = len;
    } else {
        call->argv[0] = "EVALSHA";
        call->argvlen[0] = 7;
        call->argv[1] = call->store->script_sha[call->script];
        call->argvlen[1] = 40;
    }
    return jw_rconn_send(&call->store->conns[JW_CONN_COMMANDS], on_script_reply, call, call->argc,
                         call->argv, call->argvlen);
}

int jw_store_run_script(jw_store_t *store, jw_script_id_t script, int nkeys, int argc,
                        const char **argv, const size_t *argvlen, jw_reply_fn fn, void *data)
{
    script_call_t *call = copy_call(nkeys, argc, argv, argvlen);

    call->store = store;
    call->script = script;
    call->fn = fn;
    call->data = data;
    if (send_call(call) != 0) {
        free(call);
        return -1;
    }
    return 0;
}

typedef struct pair_op {
    jw_pair_cb cb;
    void *data;
    const char *what;
} pair_op_t;

static void on_pair(jw_store_t *store, redisReply *reply, void *data)
{
    pair_op_t *op = data;
    jw_store_err_t err = jw_store_reply_err(reply, op->what);

    (void)store;
    if (err == JW_STORE_OK && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2)
        op->cb(op->data, err, reply->element[0]->integer == 1, reply->element[1]->integer);
    else
        op->cb(op->data, err == JW_STORE_OK ? JW_STORE_FAILED : err, 0, 0);
    free(op);
}

void jw_store_run_pair(jw_store_t *store, jw_script_id_t script, int argc, const char **argv,
                       const char *what, jw_pair_cb cb, void *data)
{
    size_t argvlen[16];
    pair_op_t *op = malloc(sizeof(*op));

    if (op == NULL || argc > 16)
        abort();
    for (int i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    op->cb = cb;
    op->data = data;
    op->what = what;
    if (jw_store_run_script(store, script, 1, argc, argv, argvlen, on_pair, op) != 0) {
        free(op);
        cb(data, JW_STORE_UNAVAILABLE, 0, 0);
    }
}
