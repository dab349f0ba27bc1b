/*
 * The consumer: this replica's member of the consumer group that applies
 * webhook events from the events stream to the job records. It also
 * reclaims events left pending by dead replicas and trims the stream.
 */
#ifndef JOBWIRE_CONSUMER_H
#define JOBWIRE_CONSUMER_H

#include <stdint.h>
#include <uv.h>

#include "jobwire/store.h"

typedef struct jw_consumer jw_consumer_t;

typedef struct jw_consumer_stats {
    uint64_t applied;   /* events applied */
    uint64_t changed;   /* of those, events that changed a job */
    uint64_t claimed;   /* events reclaimed from other consumers */
    uint64_t empty;     /* entries without fields, acked and dropped */
    uint64_t failures;  /* failed applies (retried through reclaim) */
} jw_consumer_stats_t;

jw_consumer_t *jw_consumer_start(uv_loop_t *loop, jw_store_t *store, const jw_config_t *cfg);

/* Returns 1 while the read loop runs and Redis answers it. */
int jw_consumer_is_running(const jw_consumer_t *consumer);

/* Returns the consumer name, unique per process. */
const char *jw_consumer_name(const jw_consumer_t *consumer);

const jw_consumer_stats_t *jw_consumer_stats(const jw_consumer_t *consumer);

/* Stops reading new events; calls done once the current batch is applied. */
void jw_consumer_stop(jw_consumer_t *consumer, void (*done)(void *data), void *data);

void jw_consumer_free(jw_consumer_t *consumer);

#endif
