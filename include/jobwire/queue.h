/*
 * The queue processor: starts submitted trainings on Replicate as slots
 * free up. Every replica runs one; a lease in Redis
 * (`<prefix>queue:leader`) picks the one that runs rounds, but the slot
 * count never depends on it: slots are counted and taken in one script,
 * so even two replicas running rounds at once cannot start more than
 * JOBWIRE_QUEUE_MAX_CONCURRENT jobs.
 *
 * A round, every JOBWIRE_QUEUE_INTERVAL: take back lost slots, claim free
 * ones for the jobs at the head of the line, renumber the line, create
 * each claimed training (webhook to JOBWIRE_PUBLIC_URL?job=<id> when one
 * is configured) and apply the response, and ask Replicate about started
 * jobs without news. A refusal fails the job with Replicate's message; a
 * transient error puts it back in line for the next round.
 */
#ifndef JOBWIRE_QUEUE_H
#define JOBWIRE_QUEUE_H

#include "jobwire/app.h"
#include "jobwire/queue_round.h"

typedef struct jw_queue jw_queue_t;

/* Logs whether processing is on and starts the lease timer; never fails. */
jw_queue_t *jw_queue_start(jw_app_t *app);

/* Stops starting rounds, closes the timers and gives the lease back. */
void jw_queue_stop(jw_queue_t *queue);

/* Frees the processor once the loop has stopped; after jw_replicate_free(). */
void jw_queue_free(jw_queue_t *queue);

/* 1 when this replica holds the lease and runs rounds. */
int jw_queue_is_leader(const jw_queue_t *queue);

/* This replica's round counters. */
const jw_queue_stats_t *jw_queue_stats(const jw_queue_t *queue);

#endif
