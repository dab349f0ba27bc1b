/*
 * One Redis connection that keeps itself alive: it connects at start,
 * reconnects with backoff after any loss, and times out commands that
 * Redis never replies to (async hiredis has no timeouts of its own). Each
 * change between up and down is logged once per connection.
 */
#include <stdlib.h>
#include <string.h>

#include "jobwire/log.h"
#include "store_internal.h"

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000
#define WATCHDOG_MS 500

typedef struct pending_cmd {
    jw_rconn_t *conn;
    jw_reply_fn fn;
    void *data;
} pending_cmd_t;

static void start_connect(jw_rconn_t *conn);

static void on_retry_timer(uv_timer_t *timer)
{
    start_connect(timer->data);
}

uint64_t jw_store_now_ms(const jw_store_t *store)
{
    return uv_now(store->loop);
}

static void schedule_retry(jw_rconn_t *conn)
{
    if (conn->closing || uv_is_active((uv_handle_t *)&conn->retry_timer))
        return;

    uv_timer_start(&conn->retry_timer, on_retry_timer, (uint64_t)conn->retry_ms, 0);
    conn->retry_ms *= 2;
    if (conn->retry_ms > RETRY_MAX_MS)
        conn->retry_ms = RETRY_MAX_MS;
}

static void mark_down(jw_rconn_t *conn, const char *why)
{
    conn->ac = NULL;
    conn->state = JW_RCONN_DOWN;
    conn->pending = 0;

    if (conn->was_ready && !conn->closing) {
        jw_warn("redis", "connection lost: %s conn=%s", why, conn->name);
        conn->store->reconnects++;
    }
    conn->was_ready = 0;
    schedule_retry(conn);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    jw_rconn_t *conn = ac->data;

    if (conn == NULL || conn->ac != ac)
        return;

    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback returns. */
        if (conn->retry_ms == RETRY_MIN_MS || conn->was_ready)
            jw_warn("redis", "connect failed: %s conn=%s", ac->errstr, conn->name);
        mark_down(conn, ac->errstr);
        return;
    }

    conn->state = JW_RCONN_READY;
    conn->was_ready = 1;
    conn->retry_ms = RETRY_MIN_MS;
    conn->last_progress_ms = jw_store_now_ms(conn->store);
    jw_info("redis", "connected conn=%s host=%s port=%d", conn->name, conn->store->cfg->redis_host,
            conn->store->cfg->redis_port);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    jw_rconn_t *conn = ac->data;

    (void)status;
    if (conn == NULL || conn->ac != ac)
        return;
    mark_down(conn, ac->errstr[0] ? ac->errstr : "closed");
}

static void send_setup(jw_rconn_t *conn)
{
    const jw_config_t *cfg = conn->store->cfg;
    char db[16];

    /* Commands queued before the connect completes go out first, in order. */
    if (cfg->redis_password != NULL)
        redisAsyncCommand(conn->ac, NULL, NULL, "AUTH %s", cfg->redis_password);
    if (cfg->redis_db != 0) {
        snprintf(db, sizeof(db), "%d", cfg->redis_db);
        redisAsyncCommand(conn->ac, NULL, NULL, "SELECT %s", db);
    }
}

static void start_connect(jw_rconn_t *conn)
{
    const jw_config_t *cfg = conn->store->cfg;

    if (conn->closing || conn->ac != NULL)
        return;

    /* NOTE: hiredis resolves the host name with a blocking getaddrinfo. */
    redisAsyncContext *ac = redisAsyncConnect(cfg->redis_host, cfg->redis_port);
    if (ac == NULL || ac->err) {
        if (ac != NULL)
            redisAsyncFree(ac);
        schedule_retry(conn);
        return;
    }

    ac->data = conn;
    if (jw_redis_uv_attach(ac, conn->store->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        schedule_retry(conn);
        return;
    }

    conn->ac = ac;
    conn->state = JW_RCONN_CONNECTING;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    send_setup(conn);
}

static void on_watchdog(uv_timer_t *timer)
{
    jw_rconn_t *conn = timer->data;
    uint64_t now = jw_store_now_ms(conn->store);

    if (conn->ac == NULL || conn->pending == 0)
        return;
    if (now - conn->last_progress_ms < (uint64_t)conn->timeout_ms)
        return;

    /*
     * Redis stopped replying (paused, overloaded or a dead peer with the
     * TCP connection still open). Drop the connection: the pending
     * callbacks get NULL replies and their callers respond with 503.
     */
    jw_warn("redis", "command timed out: no reply for %d ms conn=%s", conn->timeout_ms,
            conn->name);
    redisAsyncContext *ac = conn->ac;
    mark_down(conn, "timed out");
    ac->data = NULL;
    redisAsyncFree(ac);
}

void jw_rconn_init(jw_rconn_t *conn, jw_store_t *store, const char *name, int timeout_ms)
{
    memset(conn, 0, sizeof(*conn));
    conn->store = store;
    conn->name = name;
    conn->timeout_ms = timeout_ms;
    conn->retry_ms = RETRY_MIN_MS;
    uv_timer_init(store->loop, &conn->retry_timer);
    conn->retry_timer.data = conn;
    uv_timer_init(store->loop, &conn->watchdog);
    conn->watchdog.data = conn;
    uv_timer_start(&conn->watchdog, on_watchdog, WATCHDOG_MS, WATCHDOG_MS);
    start_connect(conn);
}

void jw_rconn_close(jw_rconn_t *conn)
{
    conn->closing = 1;
    uv_timer_stop(&conn->retry_timer);
    uv_timer_stop(&conn->watchdog);
    uv_close((uv_handle_t *)&conn->retry_timer, NULL);
    uv_close((uv_handle_t *)&conn->watchdog, NULL);

    if (conn->ac != NULL) {
        redisAsyncContext *ac = conn->ac;
        conn->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
    }
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    pending_cmd_t *cmd = privdata;
    jw_rconn_t *conn = cmd->conn;

    (void)ac;
    if (conn->pending > 0)
        conn->pending--;
    conn->last_progress_ms = jw_store_now_ms(conn->store);
    if (cmd->fn != NULL)
        cmd->fn(conn->store, r, cmd->data);
    free(cmd);
}

int jw_rconn_send(jw_rconn_t *conn, jw_reply_fn fn, void *data, int argc, const char **argv,
                  const size_t *argvlen)
{
    if (conn->state != JW_RCONN_READY || conn->ac == NULL)
        return -1;

    pending_cmd_t *cmd = malloc(sizeof(*cmd));
    if (cmd == NULL)
        abort();
    cmd->conn = conn;
    cmd->fn = fn;
    cmd->data = data;

    if (redisAsyncCommandArgv(conn->ac, on_reply, cmd, argc, argv, argvlen) != REDIS_OK) {
        free(cmd);
        return -1;
    }

    /* The timeout counts from the first command sent to an idle connection. */
    if (conn->pending == 0)
        conn->last_progress_ms = jw_store_now_ms(conn->store);
    conn->pending++;
    return 0;
}

jw_store_err_t jw_store_reply_err(redisReply *reply, const char *what)
{
    if (reply == NULL)
        return JW_STORE_UNAVAILABLE;
    if (reply->type == REDIS_REPLY_ERROR) {
        jw_error("redis", "%s failed: %s", what, reply->str);
        return JW_STORE_FAILED;
    }
    return JW_STORE_OK;
}
