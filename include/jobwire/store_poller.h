/*
 * Store operations of the background poller (store_poller.c): the leader
 * lease and the polling override in Redis, the list of jobs a tick asks
 * about, and the record of the last tick that any replica can show.
 * Results still go through jw_store_apply(). Callbacks follow store.h:
 * they run on the loop, and what they receive is valid until they return.
 */
#ifndef JOBWIRE_STORE_POLLER_H
#define JOBWIRE_STORE_POLLER_H

#include <stddef.h>

#include "jobwire/store.h"

/* The lease and override as one replica reads them after a lease call. */
typedef struct jw_poller_lease {
    int override;       /* -1 automatic, 0 or 1 as set through the API */
    int enabled;        /* polling on, after the override */
    const char *leader; /* the lease holder's id, "" when no replica holds it */
} jw_poller_lease_t;

typedef void (*jw_poller_lease_cb)(void *data, jw_store_err_t err,
                                   const jw_poller_lease_t *lease);

/*
 * Renews or takes the lease `<prefix>poller:leader` for replica (PX
 * lease_ms) when polling is on (configured, unless overridden) or the
 * stale check is on, and releases it when neither is or stopping is 1.
 */
void jw_store_poller_lease(jw_store_t *store, const char *replica, long long lease_ms,
                           int configured_on, int stale_on, int stopping, jw_poller_lease_cb cb,
                           void *data);

/* Sets the override to 0 or 1, or removes it with -1 (automatic again). */
void jw_store_poller_set_override(jw_store_t *store, int enabled, jw_done_cb cb, void *data);

/*
 * Lists up to max active jobs to refresh: all of them when stale_ms is 0,
 * else those without a change or a check for stale_ms, which are marked
 * checked at now_ms. Same callback as jw_store_active_jobs().
 */
void jw_store_poller_jobs(jw_store_t *store, long long now_ms, long long stale_ms, size_t max,
                          jw_active_cb cb, void *data);

/* Replaces the last-tick record `<prefix>poller:status` with fields; fire and forget. */
void jw_store_poller_record(jw_store_t *store, const jw_field_t *fields, size_t count);

/* override, leader ("" when none) and the last-tick record, borrowed. */
typedef void (*jw_poller_status_cb)(void *data, jw_store_err_t err, int override,
                                    const char *leader, const jw_field_t *fields, size_t count);

void jw_store_poller_status(jw_store_t *store, jw_poller_status_cb cb, void *data);

#endif
