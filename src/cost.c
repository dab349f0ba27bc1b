/*
 * The price table and the cost of a job. The poller, the webhook path and
 * the sync endpoints all turn events into fields through fields.c, which
 * asks this module for cost_usd; apply.lua then stores it like any other
 * fact and keeps the daily totals. This module does no I/O.
 *
 * The table is process-wide and read-only once main has configured it:
 * every event of the process must be priced the same way.
 */
#include "jobwire/cost.h"

#include <math.h>
#include <string.h>

/*
 * Replicate's public per-second prices, from https://replicate.com/pricing
 * as published in 2025 (hardware name as the API spells it). They are an
 * estimate of what a job costs, not Replicate's bill: prices change, and
 * private models also bill setup and idle time. Check them against the
 * pricing page and override them with JOBWIRE_PRICES when they differ.
 */
static const jw_price_t builtin_prices[] = {
    {"cpu", 0.000100},
    {"gpu-t4", 0.000225},
    {"gpu-a40-small", 0.000575},
    {"gpu-a40-large", 0.000725},
    {"gpu-a40-large-2x", 0.001450},
    {"gpu-a40-large-4x", 0.002900},
    {"gpu-a40-large-8x", 0.005800},
    {"gpu-l40s", 0.000975},
    {"gpu-2x-l40s", 0.001950},
    {"gpu-4x-l40s", 0.003900},
    {"gpu-8x-l40s", 0.007800},
    {"gpu-a100-large", 0.001400},
    {"gpu-a100-large-2x", 0.002800},
    {"gpu-a100-large-4x", 0.005600},
    {"gpu-a100-large-8x", 0.011200},
    {"gpu-h100", 0.001525},
    {"gpu-h100-2x", 0.003050},
    {"gpu-h100-4x", 0.006100},
    {"gpu-h100-8x", 0.012200},
};

#define BUILTIN_COUNT (sizeof(builtin_prices) / sizeof(builtin_prices[0]))

/* Flux fine-tunes, the usual trainings, run on one H100, so an unknown
 * machine is priced as that. */
#define BUILTIN_DEFAULT 0.001525

static jw_price_t configured[JW_CONFIG_MAX_PRICES];
static int configured_count;
static double default_price = BUILTIN_DEFAULT;

void jw_cost_configure(const jw_config_t *cfg)
{
    configured_count = cfg->price_count;
    memcpy(configured, cfg->prices, sizeof(configured[0]) * (size_t)cfg->price_count);
    default_price = cfg->default_price;
}

double jw_cost_builtin_default(void)
{
    return BUILTIN_DEFAULT;
}

static const jw_price_t *find_price(const jw_price_t *table, size_t count, const char *hardware)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(table[i].hardware, hardware) == 0)
            return &table[i];
    }
    return NULL;
}

double jw_cost_price(const char *hardware, int *known)
{
    const jw_price_t *p = NULL;

    /* A configured entry wins over the built-in one of the same name. */
    if (hardware != NULL && hardware[0] != '\0') {
        p = find_price(configured, (size_t)configured_count, hardware);
        if (p == NULL)
            p = find_price(builtin_prices, BUILTIN_COUNT, hardware);
    }
    *known = p != NULL;
    return p != NULL ? p->usd_per_s : default_price;
}

int jw_cost_compute(const char *hardware, double predict_time, jw_cost_t *out)
{
    int known = 0;

    if (!(predict_time >= 0) || !isfinite(predict_time))
        return -1;

    double price = jw_cost_price(hardware, &known);

    /* Six decimals: a millionth of a dollar is below any price step, and a
     * fixed rounding keeps repeated events from looking like a change. */
    out->usd = round(predict_time * price * 1e6) / 1e6;
    out->estimated = !known;
    return 0;
}
