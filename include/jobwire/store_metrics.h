/*
 * The store operation behind GET /api/cloud/metrics (store_metrics.c):
 * the daily totals that apply.lua keeps in `<prefix>daily:<YYYY-MM-DD>`
 * (total_jobs, completed, failed, cancelled, total_cost_usd,
 * duration_sum, duration_count), and the count of jobs created in the
 * period that are still active. Callbacks follow store.h.
 */
#ifndef JOBWIRE_STORE_METRICS_H
#define JOBWIRE_STORE_METRICS_H

#include <stddef.h>

#include "jobwire/store.h"

#define JW_METRICS_DAYS_MAX 365

/* One day's totals; only days that have any are reported. */
typedef struct jw_daily {
    const char *date; /* YYYY-MM-DD */
    const jw_field_t *fields;
    size_t count;
} jw_daily_t;

/* active[] contains pending, uploading, queued and running, in that order. */
typedef void (*jw_metrics_cb)(void *data, jw_store_err_t err, const long long active[4],
                              const jw_daily_t *days, size_t count);

/*
 * Reads the totals of dates (n of them, at most JW_METRICS_DAYS_MAX,
 * oldest first) and counts active jobs created at or after start_ms.
 */
void jw_store_metrics(jw_store_t *store, const char *const *dates, size_t n, long long start_ms,
                      jw_metrics_cb cb, void *data);

#endif
