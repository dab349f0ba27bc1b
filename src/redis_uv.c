/*
 * hiredis 0.14 on libuv. The adapter shipped with hiredis 0.14.1 drops a
 * poll error status, so with Redis down at start neither the connect nor
 * the disconnect callback fires and commands wait forever. This one hands
 * poll errors to hiredis, which then notices the failed socket itself.
 */
#include <stdlib.h>

#include "store_internal.h"

typedef struct redis_uv {
    redisAsyncContext *ac;
    uv_poll_t poll;
    int events;
} redis_uv_t;

static void on_poll(uv_poll_t *handle, int status, int events)
{
    redis_uv_t *p = handle->data;

    if (p->ac == NULL)
        return;

    if (status < 0) {
        /*
         * A connected context finds the error on read; a connecting one
         * finds it when it completes the connect on write. Only one call:
         * either may free the context.
         */
        if (p->ac->c.flags & REDIS_CONNECTED)
            redisAsyncHandleRead(p->ac);
        else
            redisAsyncHandleWrite(p->ac);
        return;
    }

    if (events & UV_READABLE)
        redisAsyncHandleRead(p->ac);
    /* The read may have disconnected and cleaned up the context. */
    if (p->ac != NULL && (events & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

static void update(redis_uv_t *p, int add, int remove)
{
    int events = (p->events | add) & ~remove;

    if (events == p->events)
        return;
    p->events = events;
    if (events)
        uv_poll_start(&p->poll, events, on_poll);
    else
        uv_poll_stop(&p->poll);
}

static void add_read(void *data)
{
    update(data, UV_READABLE, 0);
}

static void del_read(void *data)
{
    update(data, 0, UV_READABLE);
}

static void add_write(void *data)
{
    update(data, UV_WRITABLE, 0);
}

static void del_write(void *data)
{
    update(data, 0, UV_WRITABLE);
}

static void on_handle_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void cleanup(void *data)
{
    redis_uv_t *p = data;

    /* hiredis closes the fd itself; the handle only stops watching it. */
    p->ac = NULL;
    uv_poll_stop(&p->poll);
    uv_close((uv_handle_t *)&p->poll, on_handle_closed);
}

int jw_redis_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (ac->ev.data != NULL)
        return REDIS_ERR;

    redis_uv_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return REDIS_ERR;
    if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
        free(p);
        return REDIS_ERR;
    }

    p->ac = ac;
    p->poll.data = p;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    ac->ev.data = p;
    return REDIS_OK;
}
