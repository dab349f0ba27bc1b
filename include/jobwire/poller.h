/*
 * The background poller: keeps active jobs current by requesting their
 * state from the provider when webhooks do not arrive (or may have been
 * lost), and feeds each response through jw_store_apply(), so SSE events
 * follow as for a webhook.
 *
 * Every replica runs one; a lease in Redis (`<prefix>poller:leader`)
 * chooses the single one that polls. Each tick refreshes every active job
 * (or, while polling is off and webhooks are on, only jobs without a
 * change for JOBWIRE_STALE_AFTER), spreading the requests over the
 * interval and never above JOBWIRE_POLL_RATE per minute. Errors and
 * throttling lengthen the interval; nothing stops the loop.
 */
#ifndef JOBWIRE_POLLER_H
#define JOBWIRE_POLLER_H

#include "jobwire/app.h"

typedef struct jw_poller jw_poller_t;

/* Counters of this replica's ticks, for /metrics. */
typedef struct jw_poller_stats {
    uint64_t ticks;    /* ticks finished while leader */
    uint64_t requests; /* provider requests made by those ticks */
    uint64_t errors;   /* job refreshes that failed (including 429s) */
} jw_poller_stats_t;

const jw_poller_stats_t *jw_poller_stats(const jw_poller_t *poller);

/*
 * Logs the startup line ("job status polling enabled|disabled ...") and
 * starts the lease timer. app, its store and its Replicate client must
 * outlive the poller. Never fails.
 */
jw_poller_t *jw_poller_start(jw_app_t *app);

/* Stops launching requests, closes the timers and gives the lease back. */
void jw_poller_stop(jw_poller_t *poller);

/* Frees the poller once the loop has stopped; after jw_replicate_free(). */
void jw_poller_free(jw_poller_t *poller);

/* Checks the lease and override now (after an override changed). */
void jw_poller_recheck(jw_poller_t *poller);

/* This replica's id, as stored in the lease. */
const char *jw_poller_replica(const jw_poller_t *poller);

/* The interval in force on this replica, backoff included, in seconds. */
double jw_poller_current_interval(const jw_poller_t *poller);

/* 1 when the stale-job check runs while polling is off (a webhook is configured). */
int jw_poller_stale_check_on(const jw_poller_t *poller);

/*
 * What decides whether polling is on, for the status endpoint and the log:
 * "override", "environment", "config_file" or "automatic", with a reason.
 */
const char *jw_poller_source(const jw_config_t *cfg, int override, const char **why);

#endif
