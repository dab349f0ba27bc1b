/*
 * Internals shared by the store's files: one reconnecting Redis
 * connection on the libuv loop, and the Lua script registry. Only the
 * store_*.c and redis_uv.c files include this header (and hiredis).
 */
#ifndef JOBWIRE_STORE_INTERNAL_H
#define JOBWIRE_STORE_INTERNAL_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <uv.h>

#include "jobwire/store.h"

/* Attaches a hiredis async context to the loop; 0 or -1 (REDIS_ERR). */
int jw_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

typedef enum jw_rconn_state {
    JW_RCONN_DOWN = 0,
    JW_RCONN_CONNECTING,
    JW_RCONN_READY,
} jw_rconn_state_t;

typedef struct jw_rconn {
    struct jw_store *store;
    const char *name;          /* "commands", "consumer", "hub": for logs */
    redisAsyncContext *ac;
    jw_rconn_state_t state;
    int was_ready;             /* to log each change of state once */
    int closing;
    uv_timer_t retry_timer;
    int retry_ms;
    uv_timer_t watchdog;
    uint64_t pending;          /* commands sent and not yet answered */
    uint64_t last_progress_ms; /* when a reply last arrived, or a command was sent idle */
    int timeout_ms;            /* how long pending commands may go unanswered */
} jw_rconn_t;

typedef enum jw_script_id {
    JW_SCRIPT_INGEST = 0,
    JW_SCRIPT_APPLY,
    JW_SCRIPT_LIST,
    JW_SCRIPT_TRIM,
    JW_SCRIPT_SSE_LEASE,
    JW_SCRIPT_ACTIVE,
    JW_SCRIPT_DELETE,
    JW_SCRIPT_RATE_LIMIT,
    JW_SCRIPT_QUEUE_SLOTS,
    JW_SCRIPT_QUEUE_VIEW,
    JW_SCRIPT_LEASE,       /* poller_lease.lua, also the queue processor's lease */
    JW_SCRIPT_COUNT,
} jw_script_id_t;

struct jw_store {
    uv_loop_t *loop;
    const jw_config_t *cfg;
    jw_rconn_t conns[JW_CONN_COUNT];
    uint64_t reconnects;
    uint64_t list_nonce;
    char script_sha[JW_SCRIPT_COUNT][41];
};

/* Reply callback: reply is NULL when the connection was lost or timed out. */
typedef void (*jw_reply_fn)(jw_store_t *store, redisReply *reply, void *data);

/*
 * Sends a command on a connection. Returns 0, or -1 without calling fn when
 * the connection is not ready (the caller reports JW_STORE_UNAVAILABLE).
 */
int jw_rconn_send(jw_rconn_t *conn, jw_reply_fn fn, void *data, int argc, const char **argv,
                  const size_t *argvlen);

/*
 * Runs a Lua script by its SHA and falls back to sending its text when
 * Redis answers NOSCRIPT (after a restart or SCRIPT FLUSH). args are
 * copied, so the caller may free them at once. Returns 0 or -1 as above.
 */
int jw_store_run_script(jw_store_t *store, jw_script_id_t script, int nkeys, int argc,
                        const char **argv, const size_t *argvlen, jw_reply_fn fn, void *data);

/*
 * Runs apply.lua in mode with its fixed arguments (keys, prefix, time,
 * MAXLEN, group) followed by the tail. Returns 0 or -1 as above.
 */
int jw_store_run_apply(jw_store_t *store, const char *mode, int tailc, const char *const *tailv,
                       const size_t *tail_len, jw_reply_fn fn, void *data);

/* Fills out (capacity max) from a flat name/value array reply; returns the count. */
size_t jw_store_reply_fields(const redisReply *r, jw_field_t *out, size_t max);

/* A callback of any type and its data, for one store call in flight. */
typedef struct jw_store_op {
    void (*cb)(void); /* cast back to its real type by the reply handler */
    void *data;
} jw_store_op_t;

/* Allocates an op; aborts when memory runs out. The reply handler frees it. */
jw_store_op_t *jw_store_op_new(void (*cb)(void), void *data);

/* HSETs up to JW_FIELDS_MAX fields into key on the commands connection; fire and forget. */
void jw_store_hset_fields(jw_store_t *store, const char *key, const jw_field_t *fields,
                          size_t count);

/* Runs a script of one key whose reply is {0|1, integer} and hands both
 * to cb; what names it in logs. Calls cb with UNAVAILABLE when the
 * connection is down. */
void jw_store_run_pair(jw_store_t *store, jw_script_id_t script, int argc, const char **argv,
                       const char *what, jw_pair_cb cb, void *data);

/* Maps a reply to an error code: NULL -> UNAVAILABLE, error reply -> FAILED. */
jw_store_err_t jw_store_reply_err(redisReply *reply, const char *what);

void jw_rconn_init(jw_rconn_t *conn, jw_store_t *store, const char *name, int timeout_ms);
void jw_rconn_close(jw_rconn_t *conn);

/* Milliseconds of the loop's clock. */
uint64_t jw_store_now_ms(const jw_store_t *store);

#endif
