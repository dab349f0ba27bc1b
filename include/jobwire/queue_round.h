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

/* Called once every call of the round has returned. */
typedef void (*jw_queue_round_done_cb)(void *data, uint64_t duration_ms);

/*
 * Starts a round; replica names this process in the record. *slot is set
 * to the round before any callback can run, and done (which may run
 * before this returns, when Redis is down) is the owner's cue to clear it.
 */
void jw_queue_round_start(jw_app_t *app, const char *replica, const jw_queue_limits_t *limits,
                          jw_queue_round_done_cb done, void *data, jw_queue_round_state_t **slot);

/* The round finishes by itself but no longer calls done (its owner stops). */
void jw_queue_round_detach(jw_queue_round_state_t *round);

#endif
