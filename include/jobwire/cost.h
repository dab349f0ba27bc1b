/*
 * Job cost: predict time (seconds of compute that Replicate bills) times
 * the per-second price of the job's hardware. The price table starts from
 * built-in defaults (Replicate's public prices, see cost.c), and the
 * configuration may override or add entries and set the price used for
 * hardware the table does not know. The result is an estimate, not an
 * invoice.
 */
#ifndef JOBWIRE_COST_H
#define JOBWIRE_COST_H

#include <stddef.h>

#include "jobwire/config.h"

/* How a cost was priced. */
typedef struct jw_cost {
    double usd;    /* predict_time x price, rounded to 6 decimals */
    int estimated; /* 1 when the hardware was absent or not in the table */
} jw_cost_t;

/*
 * Installs the configured overrides and default price on top of the
 * built-in table. Called once by main before anything computes a cost;
 * without it the built-in table and default apply. cfg is copied.
 */
void jw_cost_configure(const jw_config_t *cfg);

/*
 * Returns the price per second of hardware (NUL-terminated, may be NULL)
 * and sets *known to 1 when the table has it, 0 when the default was used.
 */
double jw_cost_price(const char *hardware, int *known);

/*
 * Prices predict_time seconds on hardware. Returns 0 and fills out, or -1
 * when predict_time is negative (unknown) or not finite.
 */
int jw_cost_compute(const char *hardware, double predict_time, jw_cost_t *out);

/* The built-in default for hardware the table does not know, in USD per second. */
double jw_cost_builtin_default(void);

#endif
