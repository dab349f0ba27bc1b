/*
 * Internals shared by the Replicate client's files: the client object and
 * the request entry point that takes a whole URL. Only replicate_*.c
 * include this header; only they include curl.
 */
#ifndef JOBWIRE_REPLICATE_INTERNAL_H
#define JOBWIRE_REPLICATE_INTERNAL_H

#include <curl/curl.h>
#include <stdint.h>
#include <uv.h>

#include "jobwire/replicate_client.h"

typedef struct jw__call jw__call_t;
typedef struct jw__sock jw__sock_t;

struct jw_replicate {
    uv_loop_t *loop;
    const jw_config_t *cfg;
    CURLM *multi;
    uv_timer_t timer;            /* the one timeout curl requests */
    struct curl_slist *headers;  /* shared by every request; contains the token */
    struct curl_slist *json_headers; /* the same plus Content-Type, for JSON bodies */
    jw__call_t *calls;           /* every call not yet finished */
    jw__call_t *queue_head;      /* calls waiting for a free slot, oldest first */
    jw__call_t *queue_tail;
    jw__sock_t *socks;           /* sockets curl asked us to watch */
    int inflight;                /* transfers handed to curl */
    uint32_t rng;                /* xorshift state for the backoff jitter */
    int closing;
    int open_handles;            /* client timers not yet closed */
    uint64_t outcomes[JW_REPLICATE_OUTCOME_CLASSES]; /* finished calls, for /metrics */

    /* The webhook secret fetch (replicate_secret.c). */
    struct jw_app *secret_app;
    uv_timer_t secret_timer;
    int secret_fetching;
    int secret_fetched;          /* a fetch has started at least once */
    uint64_t secret_last_ms;     /* loop time when the last fetch started */
};

/*
 * Like jw_replicate_request() with a whole URL, which the caller has
 * checked to be on the base URL's origin (jw_replicate_resolve_next()).
 */
void jw__replicate_request_url(jw_replicate_t *client, const char *method, const char *url,
                               jw_replicate_body_cb cb, void *data);

/*
 * POSTs a JSON body (copied) to the base URL followed by path. Such a
 * call creates something, so it is retried only when Replicate cannot
 * have acted on it: after a 429 or a connection that was never made.
 */
void jw__replicate_post_json(jw_replicate_t *client, const char *path, const char *body,
                             size_t len, jw_replicate_body_cb cb, void *data);

#endif
