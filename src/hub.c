/*
 * The SSE hub. One blocking XREAD on the hub connection follows the change
 * stream; each batch is formatted once and appended to the output of every
 * matching client. Each client has at most one h2o_send in flight; bytes
 * that arrive meanwhile wait in its pending buffer, which is capped: a
 * client past the cap loses its backlog and gets a "reset" event.
 *
 * Clients resuming with Last-Event-ID replay from the stream with XRANGE
 * until they reach the position the follower has delivered, and only then
 * join the live fan-out. Everything runs on the loop, so that hand-over
 * has no gap and no repeat.
 */
#include "jobwire/hub.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobwire/event.h"
#include "jobwire/fields.h"
#include "jobwire/log.h"

#define FOLLOW_COUNT 1000
#define FOLLOW_BLOCK_MS 5000
#define REPLAY_PAGE 500
#define RETRY_MS 500
#define RETRY_HINT_MS 3000

typedef struct sse_client sse_client_t;

struct sse_client {
    h2o_generator_t generator; /* first: H2O hands it back to the callbacks */
    jw_hub_t *hub;
    h2o_req_t *req;            /* NULL once H2O stopped the stream */
    sse_client_t *prev, *next;
    int refs;                  /* the list, plus each operation in flight */
    int linked;                /* in the hub's list */
    int waiting;               /* caught up, waiting for the follower to start */
    h2o_socket_t *sock;        /* the HTTP/1 socket watched for the client leaving */
    int replay_retry;          /* a replay read failed: retry on the retry timer */
    int bounds_retry;          /* the resume bounds read failed: likewise */
    int live;                  /* receives the fan-out */
    int sending;               /* an h2o_send is in flight */
    int closing;               /* end the response once the output is sent */
    char last_id[64];          /* last change id delivered or filtered out */
    char *pending;
    size_t pending_len, pending_cap;
    char *inflight;
    uint64_t last_write_ms;
    char **job_ids;
    size_t job_id_count;
    unsigned status_mask;
    char ip[64];
    char member[128];
    int leased;
    int has_key;
    char key_name[JW_KEY_NAME_MAX + 1];
    unsigned char key_hash[JW_KEY_HASH_LEN];
    int64_t expires_at;
};

struct jw_hub {
    jw_app_t *app;
    char replica[96];
    sse_client_t *clients;
    size_t client_count;
    uint64_t next_member;
    char last_id[64];          /* the follower's position: delivered up to here */
    int following;             /* the follower has its start position */
    int stopped;
    uv_timer_t retry_timer;
    uv_timer_t heartbeat_timer;
    uv_timer_t client_retry_timer; /* retries failed client reads, paced */
    jw_hub_stats_t stats;
};

static void flush(sse_client_t *c);
static void follow(jw_hub_t *hub);
static void replay_next(sse_client_t *c);

/* --- stream ids ------------------------------------------------------------ */

int jw_stream_id_parse(const char *text, size_t len, uint64_t *ms, uint64_t *seq)
{
    uint64_t parts[2] = {0, 0};
    int part = 0;
    size_t digits = 0;

    if (len == 0 || len > 41)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (ch == '-' && part == 0 && digits > 0) {
            part = 1;
            digits = 0;
        } else if (ch >= '0' && ch <= '9' && digits < 20) {
            uint64_t d = (uint64_t)(ch - '0');
            if (parts[part] > (UINT64_MAX - d) / 10)
                return -1;
            parts[part] = parts[part] * 10 + d;
            digits++;
        } else {
            return -1;
        }
    }
    if (part != 1 || digits == 0)
        return -1;
    *ms = parts[0];
    *seq = parts[1];
    return 0;
}

int jw_stream_id_compare(const char *a, const char *b)
{
    uint64_t ams = 0, aseq = 0, bms = 0, bseq = 0;

    jw_stream_id_parse(a, strlen(a), &ams, &aseq);
    jw_stream_id_parse(b, strlen(b), &bms, &bseq);
    if (ams != bms)
        return ams < bms ? -1 : 1;
    if (aseq != bseq)
        return aseq < bseq ? -1 : 1;
    return 0;
}

/* --- client lifetime ------------------------------------------------------- */

static void unlink_client(sse_client_t *c)
{
    jw_hub_t *hub = c->hub;

    if (!c->linked)
        return;
    c->linked = 0;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        hub->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    hub->client_count--;
    hub->stats.clients = hub->client_count;

    if (c->leased)
        jw_store_sse_release(hub->app->store, c->ip, c->member);
    c->leased = 0;
}

static void release(sse_client_t *c)
{
    if (--c->refs > 0)
        return;
    for (size_t i = 0; i < c->job_id_count; i++)
        free(c->job_ids[i]);
    free(c->job_ids);
    free(c->pending);
    free(c->inflight);
    free(c);
}

static void on_stop(h2o_generator_t *generator, h2o_req_t *req)
{
    sse_client_t *c = (sse_client_t *)generator;

    (void)req;
    /* The client went away: H2O frees the request after this returns. */
    c->req = NULL;
    c->sending = 0;
    unlink_client(c);
    release(c);
}

static void on_proceed(h2o_generator_t *generator, h2o_req_t *req)
{
    sse_client_t *c = (sse_client_t *)generator;

    (void)req;
    c->sending = 0;
    free(c->inflight);
    c->inflight = NULL;
    flush(c);
}

/* --- output ---------------------------------------------------------------- */

static void send_reset(sse_client_t *c, const char *reason);

/* Appends bytes to the pending output; past the cap the backlog is
 * dropped and replaced by a reset, so memory stays bounded. */
static void append(sse_client_t *c, const char *bytes, size_t len)
{
    size_t cap = c->hub->app->cfg->sse_client_buffer_max;

    if (c->req == NULL || c->closing)
        return;
    if (c->pending_len + len > cap) {
        c->pending_len = 0;
        c->hub->stats.slow_resets++;
        send_reset(c, "slow_client");
        return;
    }
    if (c->pending_len + len > c->pending_cap) {
        size_t want = c->pending_cap ? c->pending_cap * 2 : 1024;
        while (want < c->pending_len + len)
            want *= 2;
        char *grown = realloc(c->pending, want);
        if (grown == NULL)
            abort();
        c->pending = grown;
        c->pending_cap = want;
    }
    memcpy(c->pending + c->pending_len, bytes, len);
    c->pending_len += len;
}

static void send_reset(sse_client_t *c, const char *reason)
{
    char text[256];
    const char *id = c->last_id;
    int n;

    /* The reset carries the client's position, so a reconnect after it
     * reloaded its snapshot resumes from here. */
    if (id[0] != '\0' && strcmp(id, "0-0") != 0)
        n = snprintf(text, sizeof(text), "id: %s\nevent: reset\ndata: {\"reason\":\"%s\"}\n\n",
                     id, reason);
    else
        n = snprintf(text, sizeof(text), "event: reset\ndata: {\"reason\":\"%s\"}\n\n", reason);
    c->hub->stats.resets++;
    append(c, text, (size_t)n);
}

static void end_response(sse_client_t *c)
{
    h2o_req_t *req = c->req;
    h2o_iovec_t buf = h2o_iovec_init(NULL, 0);

    /* H2O may still write the last chunk after h2o_send returns and calls
     * no proceed for a final send, so the bytes go into the request pool. */
    if (c->pending_len > 0) {
        buf.base = h2o_mem_alloc_pool(&req->pool, c->pending_len);
        memcpy(buf.base, c->pending, c->pending_len);
        buf.len = c->pending_len;
        c->pending_len = 0;
    }
    c->req = NULL;
    unlink_client(c);
    h2o_send(req, &buf, buf.len ? 1 : 0, H2O_SEND_STATE_FINAL);
    release(c);
}

static void flush(sse_client_t *c)
{
    if (c->req == NULL || c->sending)
        return;
    if (c->closing) {
        end_response(c);
        return;
    }
    if (c->pending_len == 0)
        return;

    /* The pending buffer becomes the in-flight one until proceed. */
    h2o_iovec_t buf = h2o_iovec_init(c->pending, c->pending_len);
    c->inflight = c->pending;
    c->pending = NULL;
    c->pending_len = c->pending_cap = 0;
    c->sending = 1;
    c->last_write_ms = uv_now(c->hub->app->loop);
    h2o_send(c->req, &buf, 1, H2O_SEND_STATE_IN_PROGRESS);
}

/* --- fan-out ---------------------------------------------------------------- */

static int wants(const sse_client_t *c, const jw_entry_t *e)
{
    const jw_field_t *job = jw_fields_find(e->fields, e->count, "job_id");
    const jw_field_t *status = jw_fields_find(e->fields, e->count, "status");

    if (c->status_mask != 0) {
        jw_status_t s = status ? jw_status_parse(status->value, status->value_len)
                               : JW_STATUS_UNKNOWN;
        if ((c->status_mask & (1u << s)) == 0)
            return 0;
    }
    if (c->job_id_count == 0)
        return 1;
    for (size_t i = 0; job != NULL && i < c->job_id_count; i++) {
        if (strlen(c->job_ids[i]) == job->value_len &&
            memcmp(c->job_ids[i], job->value, job->value_len) == 0)
            return 1;
    }
    return 0;
}

/* A batch of changes, each formatted once as an SSE message for all the
 * clients it goes to. */
typedef struct batch {
    const jw_entry_t *entries;
    size_t count;
    char *text;       /* every message, back to back */
    size_t *offsets;  /* message i is text[offsets[i] .. offsets[i + 1]) */
} batch_t;

static void batch_format(batch_t *b, const jw_entry_t *entries, size_t count)
{
    size_t total = 0;

    for (size_t i = 0; i < count; i++) {
        const jw_field_t *data = jw_fields_find(entries[i].fields, entries[i].count, "data");
        total += strlen(entries[i].id) + (data ? data->value_len : 2) + 16;
    }
    b->entries = entries;
    b->count = count;
    b->text = malloc(total + 1);
    b->offsets = malloc((count + 1) * sizeof(size_t));
    if (b->text == NULL || b->offsets == NULL)
        abort();

    size_t used = 0;
    for (size_t i = 0; i < count; i++) {
        const jw_field_t *data = jw_fields_find(entries[i].fields, entries[i].count, "data");
        b->offsets[i] = used;
        used += (size_t)snprintf(b->text + used, total + 1 - used, "id: %s\ndata: %.*s\n\n",
                                 entries[i].id, data ? (int)data->value_len : 2,
                                 data ? data->value : "{}");
    }
    b->offsets[count] = used;
}

static void batch_free(batch_t *b)
{
    free(b->text);
    free(b->offsets);
}

/* Writes a batch to one client, skipping what it already has. */
static void deliver(sse_client_t *c, const batch_t *b)
{
    for (size_t i = 0; i < b->count; i++) {
        if (jw_stream_id_compare(b->entries[i].id, c->last_id) <= 0)
            continue;
        if (wants(c, &b->entries[i])) {
            append(c, b->text + b->offsets[i], b->offsets[i + 1] - b->offsets[i]);
            c->hub->stats.changes_sent++;
        }
        snprintf(c->last_id, sizeof(c->last_id), "%s", b->entries[i].id);
    }
    flush(c);
}

static void fan_out(jw_hub_t *hub, const jw_entry_t *entries, size_t count)
{
    batch_t batch;

    batch_format(&batch, entries, count);
    for (sse_client_t *c = hub->clients, *next; c != NULL; c = next) {
        next = c->next; /* a flush may end and unlink c */
        if (c->live)
            deliver(c, &batch);
    }
    batch_free(&batch);
}

/* --- follower --------------------------------------------------------------- */

static void on_retry(uv_timer_t *timer)
{
    follow(timer->data);
}

static void on_followed(void *data, jw_store_err_t err, const jw_entry_t *entries, size_t count,
                        const char *cursor)
{
    jw_hub_t *hub = data;

    (void)cursor;
    if (hub->stopped)
        return;
    if (err != JW_STORE_OK) {
        uv_timer_start(&hub->retry_timer, on_retry, RETRY_MS, 0);
        return;
    }
    if (count > 0) {
        fan_out(hub, entries, count);
        snprintf(hub->last_id, sizeof(hub->last_id), "%s", entries[count - 1].id);
    }
    follow(hub);
}

static void on_bounds(void *data, jw_store_err_t err, const char *first_id, const char *last_id)
{
    jw_hub_t *hub = data;

    (void)first_id;
    if (hub->stopped)
        return;
    if (err != JW_STORE_OK) {
        uv_timer_start(&hub->retry_timer, on_retry, RETRY_MS, 0);
        return;
    }
    snprintf(hub->last_id, sizeof(hub->last_id), "%s", last_id);
    hub->following = 1;
    jw_info("hub", "following change stream from id=%s", hub->last_id);

    /* Clients that caught up before this moment replay up to the start. */
    for (sse_client_t *c = hub->clients; c != NULL; c = c->next) {
        if (c->waiting) {
            c->waiting = 0;
            replay_next(c);
        }
    }
    follow(hub);
}

static void follow(jw_hub_t *hub)
{
    if (hub->stopped)
        return;
    /* The start position comes once from the stream itself; after that
     * the follower continues from the last id it delivered, so nothing
     * added while Redis was away is skipped. */
    if (!hub->following)
        jw_store_change_bounds(hub->app->store, on_bounds, hub);
    else
        jw_store_follow_changes(hub->app->store, hub->last_id, FOLLOW_COUNT, FOLLOW_BLOCK_MS,
                                on_followed, hub);
}

/* --- resume ------------------------------------------------------------------- */

static void on_resume_bounds(void *data, jw_store_err_t err, const char *first_id,
                             const char *last_id);

static void on_client_retry(uv_timer_t *timer)
{
    jw_hub_t *hub = timer->data;

    for (sse_client_t *c = hub->clients, *next; c != NULL; c = next) {
        next = c->next;
        if (c->replay_retry) {
            c->replay_retry = 0;
            replay_next(c);
        }
        if (c->bounds_retry) {
            c->bounds_retry = 0;
            c->refs++;
            jw_store_change_bounds(hub->app->store, on_resume_bounds, c);
        }
    }
}

static void schedule_client_retry(jw_hub_t *hub)
{
    if (!hub->stopped && !uv_is_active((uv_handle_t *)&hub->client_retry_timer))
        uv_timer_start(&hub->client_retry_timer, on_client_retry, RETRY_MS, 0);
}

static void replay_next(sse_client_t *c);

static void go_live(sse_client_t *c)
{
    c->live = 1;
    flush(c);
}

static void on_replayed(void *data, jw_store_err_t err, const jw_entry_t *entries, size_t count,
                        const char *cursor)
{
    sse_client_t *c = data;

    (void)cursor;
    if (c->req == NULL || c->hub->stopped) {
        release(c);
        return;
    }
    if (err != JW_STORE_OK) {
        /* Redis is away. The store reports that synchronously, so retrying
         * here would recurse: the retry timer does it; heartbeats keep the
         * stream open meanwhile. */
        c->replay_retry = 1;
        schedule_client_retry(c->hub);
        release(c);
        return;
    }

    batch_t batch;
    batch_format(&batch, entries, count);
    deliver(c, &batch);
    batch_free(&batch);

    /* Done once the client has caught up with what the follower has
     * already fanned out; later changes reach it through the fan-out.
     * Until the follower has its start position, the client waits. */
    if (count == REPLAY_PAGE)
        replay_next(c);
    else if (!c->hub->following)
        c->waiting = 1;
    else if (jw_stream_id_compare(c->last_id, c->hub->last_id) >= 0)
        go_live(c);
    else
        replay_next(c);
    release(c);
}

static void replay_next(sse_client_t *c)
{
    if (c->req == NULL)
        return;
    c->refs++;
    jw_store_range_changes(c->hub->app->store, c->last_id, REPLAY_PAGE, on_replayed, c);
}

static void on_resume_bounds(void *data, jw_store_err_t err, const char *first_id,
                             const char *last_id)
{
    sse_client_t *c = data;

    if (c->req == NULL || c->hub->stopped) {
        release(c);
        return;
    }
    if (err != JW_STORE_OK) {
        c->bounds_retry = 1;
        schedule_client_retry(c->hub);
        release(c);
        return;
    }

    /* A client without a position starts at the stream's end. An id older
     * than the first retained change (or any id when the stream is empty,
     * after Redis lost it) may have missed changes: it gets a reset and
     * continues from the end. */
    if (c->last_id[0] == '\0') {
        snprintf(c->last_id, sizeof(c->last_id), "%s", last_id);
    } else if (first_id[0] == '\0' || jw_stream_id_compare(c->last_id, first_id) < 0) {
        snprintf(c->last_id, sizeof(c->last_id), "%s", last_id);
        send_reset(c, "too_old");
    } else if (jw_stream_id_compare(c->last_id, last_id) > 0) {
        /* An id past the stream's end was never issued here (a Redis that
         * lost data, or another deployment): without a reset the client
         * would skip every change up to that id. */
        snprintf(c->last_id, sizeof(c->last_id), "%s", last_id);
        send_reset(c, "unknown_id");
    }
    replay_next(c);
    release(c);
}

/* --- opening streams ---------------------------------------------------------- */

static void write_opening(sse_client_t *c, int resuming)
{
    char text[256];
    int n = snprintf(text, sizeof(text),
                     "retry: %d\n\nevent: connected\ndata: {\"replica\":\"%s\",\"resumed\":%s}\n\n",
                     RETRY_HINT_MS, c->hub->replica, resuming ? "true" : "false");

    append(c, text, (size_t)n);
}

/* The one hub of the process, for the socket callback below, which gets
 * only the socket (H2O keeps its own connection in sock->data). */
static jw_hub_t *watching_hub;

/*
 * HTTP/1 reads nothing while a response streams, so a client that closed
 * its stream would only be noticed at a failing write, up to two heartbeats
 * later, and would hold its per-IP slot until then. Reading the socket
 * sees the close at once. Bytes a client sends on a stream are discarded.
 */
static void on_socket_read(h2o_socket_t *sock, const char *err)
{
    if (err == NULL) {
        h2o_buffer_consume(&sock->input, sock->input->size);
        return;
    }

    h2o_socket_read_stop(sock);
    for (sse_client_t *c = watching_hub ? watching_hub->clients : NULL; c != NULL; c = c->next) {
        if (c->sock == sock) {
            c->sock = NULL;
            c->closing = 1;
            flush(c);
            return;
        }
    }
}

static void watch_socket(sse_client_t *c, h2o_req_t *req)
{
    /* Only HTTP/1: an HTTP/2 socket carries other streams too. */
    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return;
    c->sock = req->conn->callbacks->get_socket(req->conn);
    if (c->sock != NULL)
        h2o_socket_read_start(c->sock, on_socket_read);
}

static void start_response(sse_client_t *c, h2o_req_t *req)
{
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache, no-transform"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-accel-buffering"), 0,
                          NULL, H2O_STRLIT("no"));
    c->generator.proceed = on_proceed;
    c->generator.stop = on_stop;
    h2o_start_response(req, &c->generator);
    watch_socket(c, req);
}

static sse_client_t *new_client(jw_hub_t *hub, h2o_req_t *req, jw_sse_request_t *sse)
{
    sse_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();

    c->hub = hub;
    c->req = req;
    c->refs = 1;
    c->job_ids = sse->job_ids;
    c->job_id_count = sse->job_id_count;
    c->status_mask = sse->status_mask;
    sse->job_ids = NULL;
    sse->job_id_count = 0;
    snprintf(c->ip, sizeof(c->ip), "%s", sse->ip);
    snprintf(c->member, sizeof(c->member), "%s", sse->member);
    c->last_write_ms = uv_now(hub->app->loop);

    c->linked = 1;
    c->next = hub->clients;
    if (hub->clients != NULL)
        hub->clients->prev = c;
    hub->clients = c;
    hub->client_count++;
    hub->stats.clients = hub->client_count;
    return c;
}

void jw_hub_open_stream(jw_hub_t *hub, h2o_req_t *req, jw_sse_request_t *sse)
{
    sse_client_t *c = new_client(hub, req, sse);
    int resuming = sse->last_event_id[0] != '\0' || !sse->last_event_id_valid;

    c->leased = sse->leased;
    c->has_key = sse->has_key;
    memcpy(c->key_name, sse->key_name, sizeof(c->key_name));
    memcpy(c->key_hash, sse->key_hash, sizeof(c->key_hash));
    c->expires_at = sse->expires_at;
    start_response(c, req);
    write_opening(c, resuming && sse->last_event_id_valid);

    if (!sse->last_event_id_valid)
        send_reset(c, "invalid_last_event_id");

    if (resuming && sse->last_event_id_valid) {
        snprintf(c->last_id, sizeof(c->last_id), "%s", sse->last_event_id);
    } else if (hub->following) {
        snprintf(c->last_id, sizeof(c->last_id), "%s", hub->last_id);
        go_live(c);
        return;
    }

    /* Resuming, or connected before the follower knows where the stream
     * ends: ask Redis, then replay until caught up with the follower. */
    flush(c);
    c->refs++;
    jw_store_change_bounds(hub->app->store, on_resume_bounds, c);
}

/* --- heartbeats, counts, shutdown ------------------------------------------- */

/* Ends a stream whose credentials ended: the reset makes the page reload,
 * and the reload meets the 401. */
static void end_unauthorized(sse_client_t *c, const char *reason)
{
    send_reset(c, reason);
    c->closing = 1;
    flush(c);
}

void jw_hub_revoke(jw_hub_t *hub, const jw_keyring_t *keys)
{
    size_t ended = 0;

    for (sse_client_t *c = hub->clients, *next; c != NULL; c = next) {
        next = c->next;
        if (!c->has_key || c->closing)
            continue;
        const jw_api_key_t *k = jw_keyring_by_name(keys, c->key_name, strlen(c->key_name));
        if (k == NULL || (k->roles & JW_ROLE_READ) == 0 ||
            memcmp(k->hash, c->key_hash, JW_KEY_HASH_LEN) != 0) {
            end_unauthorized(c, "key_revoked");
            ended++;
        }
    }
    if (ended > 0)
        jw_info("hub", "ended event streams of changed or removed keys count=%zu", ended);
}

static void on_heartbeat(uv_timer_t *timer)
{
    jw_hub_t *hub = timer->data;
    uint64_t now = uv_now(hub->app->loop);
    uint64_t period = (uint64_t)hub->app->cfg->sse_heartbeat_s * 1000;
    long long ttl = 3LL * (long long)period;
    int64_t wall = (int64_t)time(NULL);

    for (sse_client_t *c = hub->clients, *next; c != NULL; c = next) {
        next = c->next;
        if (c->expires_at != 0 && wall >= c->expires_at && !c->closing) {
            end_unauthorized(c, "session_expired");
            continue;
        }
        if (c->leased)
            jw_store_sse_renew(hub->app->store, c->ip, c->member, ttl);
        /* A comment line keeps proxies from closing an idle stream, and a
         * write is how HTTP/1 notices a client that vanished. */
        if (now - c->last_write_ms + 50 >= period) {
            append(c, ":\n\n", 3);
            flush(c);
        }
    }
}

jw_hub_t *jw_hub_start(jw_app_t *app, const char *replica_name)
{
    jw_hub_t *hub = calloc(1, sizeof(*hub));
    if (hub == NULL)
        abort();

    hub->app = app;
    watching_hub = hub;
    snprintf(hub->replica, sizeof(hub->replica), "%s", replica_name);
    snprintf(hub->last_id, sizeof(hub->last_id), "0-0");
    uv_timer_init(app->loop, &hub->retry_timer);
    hub->retry_timer.data = hub;
    uv_timer_init(app->loop, &hub->heartbeat_timer);
    hub->heartbeat_timer.data = hub;
    uv_timer_init(app->loop, &hub->client_retry_timer);
    hub->client_retry_timer.data = hub;

    uint64_t period = (uint64_t)app->cfg->sse_heartbeat_s * 1000;
    uv_timer_start(&hub->heartbeat_timer, on_heartbeat, period, period);
    follow(hub);
    return hub;
}

void jw_hub_new_member(jw_hub_t *hub, char *out, size_t size)
{
    snprintf(out, size, "%s:%" PRIu64, hub->replica, ++hub->next_member);
}

size_t jw_hub_count_ip(const jw_hub_t *hub, const char *ip)
{
    size_t n = 0;

    for (const sse_client_t *c = hub->clients; c != NULL; c = c->next)
        n += strcmp(c->ip, ip) == 0;
    return n;
}

size_t jw_hub_client_count(const jw_hub_t *hub)
{
    return hub->client_count;
}

const jw_hub_stats_t *jw_hub_stats(const jw_hub_t *hub)
{
    return &hub->stats;
}

const char *jw_hub_replica(const jw_hub_t *hub)
{
    return hub->replica;
}

long long jw_hub_lease_ttl_ms(const jw_hub_t *hub)
{
    return 3LL * hub->app->cfg->sse_heartbeat_s * 1000;
}

void jw_hub_shutdown(jw_hub_t *hub)
{
    size_t closed = hub->client_count;

    hub->stopped = 1;
    uv_timer_stop(&hub->retry_timer);
    uv_timer_stop(&hub->heartbeat_timer);
    uv_timer_stop(&hub->client_retry_timer);

    for (sse_client_t *c = hub->clients, *next; c != NULL; c = next) {
        next = c->next;
        c->closing = 1;
        flush(c);
    }
    jw_info("hub", "closing streams count=%zu", closed);
}
