/*
 * The application object: what every HTTP handler needs, wired by main.
 * It holds pointers to the modules and the process-wide counters that
 * /metrics reports; it owns none of the modules.
 */
#ifndef JOBWIRE_APP_H
#define JOBWIRE_APP_H

#include <stdint.h>
#include <uv.h>

#include "jobwire/config.h"
#include "jobwire/consumer.h"
#include "jobwire/errors.h"
#include "jobwire/store.h"
#include "jobwire/verify.h"

struct jw_replicate;
struct jw_hub;
struct jw_poller;
struct jw_keyring;
struct jw_queue;

/* Webhook outcomes counted for /metrics. */
typedef enum jw_webhook_result {
    JW_WEBHOOK_ACCEPTED = 0,
    JW_WEBHOOK_DUPLICATE,
    JW_WEBHOOK_REJECTED,     /* 4xx */
    JW_WEBHOOK_UNAVAILABLE,  /* 503 */
    JW_WEBHOOK_RESULT_COUNT,
} jw_webhook_result_t;

typedef struct jw_app {
    uv_loop_t *loop;
    const jw_config_t *cfg;
    jw_store_t *store;
    jw_consumer_t *consumer;
    struct jw_replicate *replicate; /* the Replicate API client */
    struct jw_hub *hub;             /* the SSE hub */
    struct jw_poller *poller;       /* the background poller */
    struct jw_queue *queue;         /* the submission queue processor */
    /* The webhook key in force: from the configuration, or fetched from
     * Replicate at start when only a public URL is configured. */
    int has_webhook_key;
    jw_verify_key_t webhook_key;
    /* Access control: the API keys (NULL without a key file) and the
     * secret that signs session cookies. */
    const struct jw_keyring *keys;
    unsigned char session_secret[64];
    size_t session_secret_len;
    int shutting_down;
    uint64_t webhooks[JW_WEBHOOK_RESULT_COUNT];
    uint64_t requests_in_flight;
    uint64_t auth_refusals[JW_E_COUNT]; /* 401, 403 and 429 of access control, by error */
} jw_app_t;

#endif
