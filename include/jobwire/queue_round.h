/*
 * One round of the queue processor (queue_round.c): claim slots, renumber
 * the line, create the claimed trainings, check started jobs without
 * news, and record the outcome in `<prefix>queue:status`. queue.c decides
 * when rounds run.
 */
#ifndef JOBWIRE_QUEUE_ROUND_H
#define JOBWIRE_QUEUE_ROUND_H

#include <stdint.h>

#include "jobwire/app.h"
#include "jobwire/store_queue.h"

typedef struct jw_queue_round_state jw_queue_round_state_t;

/* Counters of this replica's rounds, for /metrics. */
typedef struct jw_queue_stats {
    uint64_t rounds;
    uint64_t started;  /* trainings created at Replicate */
    uint64_t refused;  /* creates Replicate rejected: the job failed */
    uint64_t requeued; /* creates that failed for now: the job went back in line */
    uint64_t lost;     /* started jobs Replicate no longer knew: the job failed */
} jw_queue_stats_t;

/* Called once every call of the round has returned. */
typedef void (*jw_queue_round_done_cb)(void *data, uint64_t duration_ms);

/*
 * Starts a round; replica names this process in the record. *slot is set
 * to the round before any callback can run, and done (which may run
 * before this returns, when Redis is down) is the owner's cue to clear it.
 * The round adds its outcome to *stats when it finishes.
 */
void jw_queue_round_start(jw_app_t *app, const char *replica, const jw_queue_limits_t *limits,
                          jw_queue_round_done_cb done, void *data, jw_queue_round_state_t **slot,
                          jw_queue_stats_t *stats);

/* The round finishes by itself but no longer calls done or counts (its owner stops). */
void jw_queue_round_detach(jw_queue_round_state_t *round);

#endif
