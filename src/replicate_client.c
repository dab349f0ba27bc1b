/*
 * The Replicate API client's engine: libcurl's multi socket interface on
 * the service's libuv loop, one uv_poll_t per socket curl names and one
 * uv_timer_t for curl's timeout. On top of it each call gets a slot (at
 * most cfg->replicate_max_inflight at once, the rest queue), a time limit
 * that covers its retries, and the retry rules: 429 waits for Retry-After
 * or the body's retry_after, 5xx and network errors back off with jitter,
 * other 4xx end the call. What the bodies mean is left to
 * replicate_calls.c; the pure pieces live in replicate_api.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "jobwire/log.h"
#include "replicate_internal.h"

/* First retry after 250-500 ms, doubling, never more than 8 s apart. */
#define BACKOFF_BASE_MS 500
#define BACKOFF_CAP_MS 8000

#define MESSAGE_MAX 320
#define DETAIL_MAX 200

typedef enum call_state {
    CALL_NEW = 0, /* created; a deferred error or the first dispatch is due */
    CALL_QUEUED,  /* waiting for a slot */
    CALL_RUNNING, /* handed to curl */
    CALL_WAITING, /* backing off before the next attempt */
    CALL_DONE,
} call_state_t;

struct jw__call {
    jw_replicate_t *client;
    jw__call_t *prev, *next; /* client->calls */
    jw__call_t *queue_next;
    call_state_t state;
    const char *method;      /* "GET" or "POST", a literal */
    char *url;
    char *request_body;      /* a JSON body to POST, or NULL for an empty one */
    size_t request_body_len;
    /* Only 429 and failed connections are retried: the request was not
     * acted on, while after a 5xx or a broken response it may have been. */
    int retry_unsent_only;
    jw_replicate_body_cb cb;
    void *data;

    CURL *easy;
    char *body;              /* the response body so far, NUL-terminated */
    size_t len, cap;
    int too_large;
    char retry_after[64];    /* the last Retry-After header value */
    char errbuf[CURL_ERROR_SIZE];
    int attempts;
    uint64_t deadline_ms;    /* loop time when the call gives up */

    /* One timer per call: the deferred start or error, the backoff wait,
     * and the deadline while queued. */
    uv_timer_t timer;

    /* A result decided before any request (no token, a bad path). */
    jw_replicate_err_t early_err;
    char early_message[MESSAGE_MAX];
};

struct jw__sock {
    uv_poll_t poll;
    curl_socket_t fd;
    jw_replicate_t *client;
    jw__sock_t *prev, *next;
};

static void dispatch(jw__call_t *call);
static void start_queued(jw_replicate_t *client);

/* --- small helpers ----------------------------------------------------- */

static uint32_t next_random(jw_replicate_t *client)
{
    uint32_t x = client->rng;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    client->rng = x;
    return x;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL)
        abort();
    return p;
}

static char *xstrdup(const char *s)
{
    char *copy = strdup(s);
    if (copy == NULL)
        abort();
    return copy;
}

static uint64_t now_ms(const jw_replicate_t *client)
{
    return uv_now(client->loop);
}

/* --- finishing a call -------------------------------------------------- */

static void on_call_closed(uv_handle_t *handle)
{
    jw__call_t *call = handle->data;

    free(call->url);
    free(call->body);
    free(call->request_body);
    free(call);
}

static void unlink_call(jw__call_t *call)
{
    jw_replicate_t *client = call->client;

    if (call->prev != NULL)
        call->prev->next = call->next;
    else
        client->calls = call->next;
    if (call->next != NULL)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
}

static void dequeue(jw__call_t *call)
{
    jw_replicate_t *client = call->client;
    jw__call_t **p = &client->queue_head;

    while (*p != NULL && *p != call)
        p = &(*p)->queue_next;
    if (*p == NULL)
        return;
    *p = call->queue_next;
    if (client->queue_tail == call) {
        client->queue_tail = NULL;
        for (jw__call_t *c = client->queue_head; c != NULL; c = c->queue_next)
            client->queue_tail = c;
    }
    call->queue_next = NULL;
}

static void release_easy(jw__call_t *call)
{
    if (call->easy == NULL)
        return;
    curl_multi_remove_handle(call->client->multi, call->easy);
    curl_easy_cleanup(call->easy);
    call->easy = NULL;
    call->client->inflight--;
}

const char *const jw_replicate_outcome_names[JW_REPLICATE_OUTCOME_CLASSES] = {
    "2xx", "3xx", "4xx", "5xx", "error"};

uint64_t jw_replicate_outcome_count(const jw_replicate_t *client, int outcome_class)
{
    if (outcome_class < 0 || outcome_class >= JW_REPLICATE_OUTCOME_CLASSES)
        return 0;
    return client->outcomes[outcome_class];
}

static void count_outcome(jw_replicate_t *client, long status)
{
    int cls = status >= 200 && status < 600 ? (int)(status / 100) - 2 : 4;

    client->outcomes[cls]++;
}

/* Runs the callback once and releases the call. body is NULL on errors. */
static void finish(jw__call_t *call, jw_replicate_err_t err, long status, const char *message)
{
    jw_replicate_outcome_t out = {err, status, message != NULL ? message : "", call->attempts};
    int ok = err == JW_REPLICATE_OK;

    if (call->state == CALL_QUEUED)
        dequeue(call);
    release_easy(call);
    unlink_call(call);
    call->state = CALL_DONE;
    uv_timer_stop(&call->timer);
    count_outcome(call->client, status);

    if (!ok)
        jw_debug("replicate", "call failed: %s method=%s status=%ld attempts=%d", out.message,
                 call->method, status, call->attempts);
    call->cb(call->data, &out, ok ? call->body : NULL, ok ? call->len : 0);
    uv_close((uv_handle_t *)&call->timer, on_call_closed);
}

static void finish_timeout(jw__call_t *call)
{
    char message[MESSAGE_MAX];

    snprintf(message, sizeof(message), "the Replicate request timed out after %d ms",
             call->client->cfg->replicate_timeout_ms);
    finish(call, JW_REPLICATE_TIMEOUT, 0, message);
}

/* --- curl callbacks for one transfer ----------------------------------- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    jw__call_t *call = userdata;
    size_t n = size * nmemb;

    if (n > JW_REPLICATE_BODY_MAX - call->len) {
        call->too_large = 1;
        return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
    }
    if (call->len + n + 1 > call->cap) {
        size_t cap = call->cap ? call->cap : 4096;
        while (cap < call->len + n + 1)
            cap *= 2;
        char *grown = realloc(call->body, cap);
        if (grown == NULL)
            abort();
        call->body = grown;
        call->cap = cap;
    }
    memcpy(call->body + call->len, ptr, n);
    call->len += n;
    call->body[call->len] = '\0';
    return n;
}

static size_t on_header(char *buffer, size_t size, size_t nitems, void *userdata)
{
    jw__call_t *call = userdata;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";

    if (n > sizeof(name) - 1 && strncasecmp(buffer, name, sizeof(name) - 1) == 0) {
        size_t vlen = n - (sizeof(name) - 1);
        if (vlen >= sizeof(call->retry_after))
            vlen = sizeof(call->retry_after) - 1;
        memcpy(call->retry_after, buffer + sizeof(name) - 1, vlen);
        call->retry_after[vlen] = '\0';
    }
    return n;
}

/* --- starting an attempt ----------------------------------------------- */

static void set_options(jw__call_t *call, long remaining_ms)
{
    const jw_config_t *cfg = call->client->cfg;
    CURL *e = call->easy;
    long connect_ms = cfg->replicate_connect_timeout_ms;

    curl_easy_setopt(e, CURLOPT_URL, call->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, call);
    /* No signals: a timed-out DNS lookup must not longjmp through the loop. */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->client->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "jobwire/" JW_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, remaining_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     connect_ms < remaining_ms ? connect_ms : remaining_ms);
    /* Verification stays on whatever the base URL: the token rides on
     * every request. Redirects are not followed, so it cannot be carried
     * to another host either. */
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)JW_REPLICATE_BODY_MAX);
    if (strcmp(call->method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->request_body ? call->request_body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)call->request_body_len);
    }
    if (call->request_body != NULL)
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->client->json_headers);
}

static void start_attempt(jw__call_t *call)
{
    jw_replicate_t *client = call->client;
    uint64_t now = now_ms(client);

    if (now >= call->deadline_ms) {
        finish_timeout(call);
        return;
    }

    call->easy = curl_easy_init();
    if (call->easy == NULL)
        abort();
    call->len = 0;
    call->too_large = 0;
    call->retry_after[0] = '\0';
    call->errbuf[0] = '\0';
    call->attempts++;
    call->state = CALL_RUNNING;
    client->inflight++;
    set_options(call, (long)(call->deadline_ms - now));

    /* Adding the handle makes curl ask for a zero timeout; the transfer
     * starts when the loop runs that timer, never inside this call. */
    if (curl_multi_add_handle(client->multi, call->easy) != CURLM_OK) {
        curl_easy_cleanup(call->easy);
        call->easy = NULL;
        client->inflight--;
        finish(call, JW_REPLICATE_NETWORK, 0, "cannot start a request to Replicate");
        start_queued(client);
    }
}

static void on_call_timer(uv_timer_t *timer)
{
    jw__call_t *call = timer->data;

    switch (call->state) {
    case CALL_NEW:
        if (call->early_err != JW_REPLICATE_OK)
            finish(call, call->early_err, 0, call->early_message);
        else
            dispatch(call);
        break;
    case CALL_QUEUED:
        finish_timeout(call);
        break;
    case CALL_WAITING:
        dispatch(call);
        break;
    default:
        break;
    }
}

/* Starts the call now when a slot is free, or queues it until its deadline. */
static void dispatch(jw__call_t *call)
{
    jw_replicate_t *client = call->client;

    if (client->inflight < client->cfg->replicate_max_inflight && client->queue_head == NULL) {
        start_attempt(call);
        return;
    }
    if (now_ms(client) >= call->deadline_ms) {
        finish_timeout(call);
        return;
    }
    call->state = CALL_QUEUED;
    if (client->queue_tail != NULL)
        client->queue_tail->queue_next = call;
    else
        client->queue_head = call;
    client->queue_tail = call;
    uv_timer_start(&call->timer, on_call_timer, call->deadline_ms - now_ms(client), 0);
}

static void start_queued(jw_replicate_t *client)
{
    while (client->queue_head != NULL && client->inflight < client->cfg->replicate_max_inflight) {
        jw__call_t *call = client->queue_head;

        dequeue(call);
        uv_timer_stop(&call->timer);
        start_attempt(call);
    }
}

/* --- deciding after an attempt ----------------------------------------- */

/* Waits and tries again when attempts and time allow; otherwise ends the call. */
static void retry_or_finish(jw__call_t *call, long wait_ms, jw_replicate_err_t err, long status,
                            const char *message)
{
    jw_replicate_t *client = call->client;
    uint64_t now = now_ms(client);

    if (call->attempts >= client->cfg->replicate_max_attempts ||
        now + (uint64_t)wait_ms >= call->deadline_ms) {
        finish(call, err, status, message);
        return;
    }
    jw_info("replicate", "retrying: %s wait_ms=%ld attempt=%d", message, wait_ms, call->attempts);
    call->state = CALL_WAITING;
    uv_timer_start(&call->timer, on_call_timer, (uint64_t)wait_ms, 0);
}

static long backoff(jw__call_t *call)
{
    return jw_replicate_backoff_ms(call->attempts, BACKOFF_BASE_MS, BACKOFF_CAP_MS,
                                   next_random(call->client));
}

/* A 429: the header's wait, else the body's, else the backoff. */
static long rate_limit_wait(jw__call_t *call)
{
    long wait;

    if (call->retry_after[0] != '\0' &&
        jw_replicate_parse_retry_after(call->retry_after, strlen(call->retry_after),
                                       (int64_t)time(NULL), &wait) == 0)
        return wait;
    if (call->len > 0 && jw_replicate_body_retry_after(call->body, call->len, &wait) == 0)
        return wait;
    return backoff(call);
}

static void on_http_answer(jw__call_t *call, long status)
{
    char detail[DETAIL_MAX], message[MESSAGE_MAX];

    if (status >= 200 && status < 300) {
        if (call->body == NULL)
            call->body = xcalloc(1, 1); /* an empty body is still a string */
        finish(call, JW_REPLICATE_OK, status, "");
        return;
    }

    jw_replicate_error_detail(call->body, call->len, detail, sizeof(detail));
    snprintf(message, sizeof(message), "Replicate returned HTTP %ld%s%s", status,
             detail[0] != '\0' ? ": " : "", detail);
    if (status == 429)
        retry_or_finish(call, rate_limit_wait(call), JW_REPLICATE_HTTP, status, message);
    else if (status >= 500 && !call->retry_unsent_only)
        retry_or_finish(call, backoff(call), JW_REPLICATE_HTTP, status, message);
    else
        finish(call, JW_REPLICATE_HTTP, status, message);
}

static void on_transfer_error(jw__call_t *call, CURLcode code)
{
    char message[MESSAGE_MAX];

    if (call->too_large) {
        snprintf(message, sizeof(message), "the answer from Replicate is larger than %u MiB",
                 JW_REPLICATE_BODY_MAX / (1024u * 1024u));
        finish(call, JW_REPLICATE_BAD_RESPONSE, 0, message);
        return;
    }
    if (code == CURLE_FILESIZE_EXCEEDED) {
        snprintf(message, sizeof(message), "the answer from Replicate is larger than %u MiB",
                 JW_REPLICATE_BODY_MAX / (1024u * 1024u));
        finish(call, JW_REPLICATE_BAD_RESPONSE, 0, message);
        return;
    }
    /* curl and the loop read different clocks: "at the deadline" has a margin. */
    if (code == CURLE_OPERATION_TIMEDOUT && now_ms(call->client) + 50 >= call->deadline_ms) {
        finish_timeout(call);
        return;
    }

    snprintf(message, sizeof(message), "cannot reach Replicate: %s",
             call->errbuf[0] != '\0' ? call->errbuf : curl_easy_strerror(code));
    if (call->retry_unsent_only && code != CURLE_COULDNT_CONNECT &&
        code != CURLE_COULDNT_RESOLVE_HOST) {
        finish(call, code == CURLE_OPERATION_TIMEDOUT ? JW_REPLICATE_TIMEOUT
                                                      : JW_REPLICATE_NETWORK, 0, message);
        return;
    }
    retry_or_finish(call, backoff(call),
                    code == CURLE_OPERATION_TIMEDOUT ? JW_REPLICATE_TIMEOUT : JW_REPLICATE_NETWORK,
                    0, message);
}

static void on_transfer_done(jw__call_t *call, CURLcode code)
{
    jw_replicate_t *client = call->client;
    long status = 0;

    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
    release_easy(call);
    call->state = CALL_NEW;

    /* The freed slot goes to a waiting call first, so work started by the
     * callback below queues behind it. */
    start_queued(client);
    if (code == CURLE_OK)
        on_http_answer(call, status);
    else
        on_transfer_error(call, code);
}

static void drain_messages(jw_replicate_t *client)
{
    for (;;) {
        int left;
        CURLMsg *msg = curl_multi_info_read(client->multi, &left);
        char *private = NULL;

        if (msg == NULL)
            break;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &private);
        /* msg is invalid once the handle is removed: the code is read first. */
        on_transfer_done((jw__call_t *)(void *)private, msg->data.result);
    }
}

/* --- curl multi on libuv ----------------------------------------------- */

static void on_curl_timer(uv_timer_t *timer)
{
    jw_replicate_t *client = timer->data;
    int running;

    curl_multi_socket_action(client->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain_messages(client);
}

/* CURLMOPT_TIMERFUNCTION: the only place the curl timer is armed. */
static int on_timer_request(CURLM *multi, long timeout_ms, void *userp)
{
    jw_replicate_t *client = userp;

    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&client->timer);
    else
        uv_timer_start(&client->timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static void on_poll(uv_poll_t *poll, int status, int events)
{
    jw__sock_t *sock = poll->data;
    jw_replicate_t *client = sock->client;
    int flags = 0, running;

    if (status < 0)
        flags |= CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(client->multi, sock->fd, flags, &running);
    drain_messages(client);
}

static void on_sock_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void close_sock(jw__sock_t *sock)
{
    jw_replicate_t *client = sock->client;

    if (sock->prev != NULL)
        sock->prev->next = sock->next;
    else
        client->socks = sock->next;
    if (sock->next != NULL)
        sock->next->prev = sock->prev;

    /* Stopped first, so the fd leaves epoll before curl closes it and a
     * new socket may reuse the number at once. */
    uv_poll_stop(&sock->poll);
    uv_close((uv_handle_t *)&sock->poll, on_sock_closed);
}

static jw__sock_t *watch_sock(jw_replicate_t *client, curl_socket_t fd)
{
    jw__sock_t *sock = xcalloc(1, sizeof(*sock));

    if (uv_poll_init_socket(client->loop, &sock->poll, fd) != 0) {
        free(sock);
        return NULL;
    }
    sock->fd = fd;
    sock->client = client;
    sock->poll.data = sock;
    sock->next = client->socks;
    if (client->socks != NULL)
        client->socks->prev = sock;
    client->socks = sock;
    curl_multi_assign(client->multi, fd, sock);
    return sock;
}

/* CURLMOPT_SOCKETFUNCTION */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    jw_replicate_t *client = userp;
    jw__sock_t *sock = socketp;
    int events = 0;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (sock != NULL) {
            curl_multi_assign(client->multi, fd, NULL);
            close_sock(sock);
        }
        return 0;
    }
    if (sock == NULL)
        sock = watch_sock(client, fd);
    if (sock == NULL) {
        jw_error("replicate", "cannot watch a socket: fd=%d", (int)fd);
        return -1;
    }

    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&sock->poll, events, on_poll);
    return 0;
}

/* --- the client -------------------------------------------------------- */

static struct curl_slist *build_headers(const jw_config_t *cfg)
{
    struct curl_slist *list = curl_slist_append(NULL, "Accept: application/json");

    if (cfg->replicate_token != NULL) {
        size_t n = strlen("Authorization: Bearer ") + strlen(cfg->replicate_token) + 1;
        char *line = xcalloc(1, n);

        snprintf(line, n, "Authorization: Bearer %s", cfg->replicate_token);
        list = curl_slist_append(list, line);
        explicit_bzero(line, n);
        free(line);
    }
    if (list == NULL)
        abort();
    return list;
}

/* curl_slist_free_all() does not clear memory; the token must not linger. */
static void free_headers(struct curl_slist *list)
{
    for (struct curl_slist *item = list; item != NULL; item = item->next)
        explicit_bzero(item->data, strlen(item->data));
    curl_slist_free_all(list);
}

jw_replicate_t *jw_replicate_new(uv_loop_t *loop, const jw_config_t *cfg)
{
    static int curl_ready;
    jw_replicate_t *client = xcalloc(1, sizeof(*client));

    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            abort();
        curl_ready = 1;
    }
    client->loop = loop;
    client->cfg = cfg;
    client->multi = curl_multi_init();
    if (client->multi == NULL)
        abort();
    client->headers = build_headers(cfg);
    client->json_headers = build_headers(cfg);
    client->json_headers = curl_slist_append(client->json_headers, "Content-Type: application/json");
    if (client->json_headers == NULL)
        abort();
    client->rng = (uint32_t)(uv_hrtime() ^ ((uint64_t)getpid() << 16)) | 1u;

    curl_multi_setopt(client->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(client->multi, CURLMOPT_SOCKETDATA, client);
    curl_multi_setopt(client->multi, CURLMOPT_TIMERFUNCTION, on_timer_request);
    curl_multi_setopt(client->multi, CURLMOPT_TIMERDATA, client);

    uv_timer_init(loop, &client->timer);
    client->timer.data = client;
    uv_timer_init(loop, &client->secret_timer);
    client->secret_timer.data = client;
    client->open_handles = 2;
    return client;
}

static void on_client_handle_closed(uv_handle_t *handle)
{
    jw_replicate_t *client = handle->data;

    if (--client->open_handles == 0)
        free(client);
}

void jw_replicate_free(jw_replicate_t *client)
{
    if (client == NULL)
        return;
    client->closing = 1;

    /* Callbacks may start new calls; those end here too. */
    while (client->calls != NULL)
        finish(client->calls, JW_REPLICATE_CANCELLED, 0, "the Replicate client is shutting down");

    curl_multi_cleanup(client->multi);
    client->multi = NULL;
    while (client->socks != NULL)
        close_sock(client->socks);
    free_headers(client->headers);
    client->headers = NULL;
    free_headers(client->json_headers);
    client->json_headers = NULL;

    uv_close((uv_handle_t *)&client->timer, on_client_handle_closed);
    uv_close((uv_handle_t *)&client->secret_timer, on_client_handle_closed);
}

int jw_replicate_has_token(const jw_replicate_t *client)
{
    return client->cfg->replicate_token != NULL && client->cfg->replicate_token[0] != '\0';
}

static jw__call_t *new_call(jw_replicate_t *client, const char *method, jw_replicate_body_cb cb,
                            void *data)
{
    jw__call_t *call = xcalloc(1, sizeof(*call));

    call->client = client;
    call->method = strcmp(method, "POST") == 0 ? "POST" : "GET";
    call->cb = cb;
    call->data = data;
    call->state = CALL_NEW;
    call->deadline_ms = now_ms(client) + (uint64_t)client->cfg->replicate_timeout_ms;
    uv_timer_init(client->loop, &call->timer);
    call->timer.data = call;

    call->next = client->calls;
    if (client->calls != NULL)
        client->calls->prev = call;
    client->calls = call;
    return call;
}

/* Every start, even a failed one, goes through the loop, so the callback
 * never runs inside the caller's own call. */
static void start_later(jw__call_t *call, jw_replicate_err_t err, const char *message)
{
    call->early_err = err;
    snprintf(call->early_message, sizeof(call->early_message), "%s", message ? message : "");
    uv_timer_start(&call->timer, on_call_timer, 0, 0);
}

void jw__replicate_request_url(jw_replicate_t *client, const char *method, const char *url,
                               jw_replicate_body_cb cb, void *data)
{
    jw__call_t *call = new_call(client, method, cb, data);

    if (client->closing) {
        start_later(call, JW_REPLICATE_CANCELLED, "the Replicate client is shutting down");
    } else if (!jw_replicate_has_token(client)) {
        start_later(call, JW_REPLICATE_NO_TOKEN,
                    "no Replicate API token is configured; set REPLICATE_API_TOKEN");
    } else {
        call->url = xstrdup(url);
        start_later(call, JW_REPLICATE_OK, NULL);
    }
}

void jw__replicate_post_json(jw_replicate_t *client, const char *path, const char *body,
                             size_t len, jw_replicate_body_cb cb, void *data)
{
    char url[4096];
    jw__call_t *call;

    if (jw_replicate_build_url(client->cfg->replicate_api_url, path, url, sizeof(url)) != 0) {
        call = new_call(client, "POST", cb, data);
        start_later(call, JW_REPLICATE_BAD_RESPONSE, "invalid Replicate API path");
        return;
    }
    jw__replicate_request_url(client, "POST", url, cb, data);
    /* The call just made is the newest in the list; its start waits for
     * the loop, so the body is in place before curl reads it. */
    call = client->calls;
    call->request_body = malloc(len + 1);
    if (call->request_body == NULL)
        abort();
    memcpy(call->request_body, body, len);
    call->request_body[len] = '\0';
    call->request_body_len = len;
    call->retry_unsent_only = 1;
}

void jw_replicate_request(jw_replicate_t *client, const char *method, const char *path,
                          jw_replicate_body_cb cb, void *data)
{
    char url[4096];

    if (jw_replicate_build_url(client->cfg->replicate_api_url, path, url, sizeof(url)) != 0) {
        jw__call_t *call = new_call(client, method, cb, data);
        start_later(call, JW_REPLICATE_BAD_RESPONSE, "invalid Replicate API path");
        return;
    }
    jw__replicate_request_url(client, method, url, cb, data);
}
