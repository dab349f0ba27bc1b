/*
 * Tests of the price table and the cost of a job: built-in prices, the
 * default for unknown hardware, configured overrides, rounding, and the
 * cost fields that an event carries into apply.lua.
 */
#include "jobwire/cost.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/config.h"
#include "jobwire/fields.h"
#include "check.h"

typedef struct cost_case {
    const char *hardware;
    double predict_time;
    int rc;
    double usd;
    int estimated;
} cost_case_t;

/* Built-in table, default 0.001525 for what it does not know. */
static const cost_case_t builtin_cases[] = {
    {"gpu-a100-large", 100.0, 0, 0.14, 0},
    {"gpu-h100", 1000.0, 0, 1.525, 0},
    {"gpu-t4", 3600.0, 0, 0.81, 0},
    {"cpu", 10.0, 0, 0.001, 0},
    {"gpu-8x-l40s", 2.0, 0, 0.0156, 0},
    {"gpu-a40-large-8x", 0.5, 0, 0.0029, 0},
    {"gpu-a100-large", 0.0, 0, 0.0, 0},
    {"gpu-x9000", 100.0, 0, 0.1525, 1},
    {"", 100.0, 0, 0.1525, 1},
    {NULL, 100.0, 0, 0.1525, 1},
    {"GPU-H100", 100.0, 0, 0.1525, 1}, /* names are exact, as the API spells them */
    {"gpu-t4", 0.0000001, 0, 0.0, 0},  /* rounds to six decimals */
    {"gpu-t4", 1.111111, 0, 0.00025, 0},
    {"gpu-h100", -1.0, -1, 0, 0},      /* unknown predict time */
};

static void test_builtin(void)
{
    for (size_t i = 0; i < sizeof(builtin_cases) / sizeof(builtin_cases[0]); i++) {
        const cost_case_t *c = &builtin_cases[i];
        jw_cost_t cost = {-1, -1};
        int rc = jw_cost_compute(c->hardware, c->predict_time, &cost);

        CHECK_INT(rc, c->rc);
        if (rc != 0)
            continue;
        CHECK_REPORT(fabs(cost.usd - c->usd) < 1e-9, "case %zu (%s): usd %.9f, expected %.9f", i,
                     c->hardware ? c->hardware : "NULL", cost.usd, c->usd);
        CHECK_INT(cost.estimated, c->estimated);
    }
}

static void test_not_finite(void)
{
    jw_cost_t cost;

    CHECK_INT(jw_cost_compute("gpu-h100", NAN, &cost), -1);
    CHECK_INT(jw_cost_compute("gpu-h100", INFINITY, &cost), -1);
}

static void test_configured(void)
{
    jw_config_t cfg;
    char err[256];
    int known = -1;

    setenv("JOBWIRE_PRICES", "gpu-h100=0.002,my-box=0.0005", 1);
    setenv("JOBWIRE_DEFAULT_PRICE", "0.001", 1);
    CHECK_INT(jw_config_load(&cfg, NULL, err, sizeof(err)), 0);
    jw_cost_configure(&cfg);

    CHECK_DOUBLE(jw_cost_price("gpu-h100", &known), 0.002); /* overrides the built-in */
    CHECK_INT(known, 1);
    CHECK_DOUBLE(jw_cost_price("my-box", &known), 0.0005);  /* extends the table */
    CHECK_INT(known, 1);
    CHECK_DOUBLE(jw_cost_price("gpu-t4", &known), 0.000225); /* the rest stays */
    CHECK_INT(known, 1);
    CHECK_DOUBLE(jw_cost_price("gpu-x9000", &known), 0.001);
    CHECK_INT(known, 0);

    unsetenv("JOBWIRE_PRICES");
    unsetenv("JOBWIRE_DEFAULT_PRICE");
    jw_config_free(&cfg);
    CHECK_INT(jw_config_load(&cfg, NULL, err, sizeof(err)), 0);
    CHECK_DOUBLE(cfg.default_price, jw_cost_builtin_default());
    jw_cost_configure(&cfg);
    jw_config_free(&cfg);
}

static const char *field_value(const jw_fields_t *f, const char *name)
{
    const jw_field_t *found = jw_fields_find(f->items, f->count, name);
    return found != NULL ? found->value : NULL;
}

static void test_event_fields(void)
{
    jw_event_t ev;
    jw_fields_t fields = {.count = 0};

    memset(&ev, 0, sizeof(ev));
    ev.job_id = strdup("abc");
    ev.status = JW_STATUS_COMPLETED;
    ev.hardware = strdup("gpu-a100-large");
    ev.predict_time = 250.0;
    jw_event_to_fields(&ev, "poll", NULL, &fields);
    CHECK(field_value(&fields, "cost_usd") != NULL &&
          strcmp(field_value(&fields, "cost_usd"), "0.350000") == 0);
    CHECK(field_value(&fields, "cost_estimated") != NULL &&
          strcmp(field_value(&fields, "cost_estimated"), "false") == 0);
    jw_fields_clear(&fields);

    free(ev.hardware);
    ev.hardware = NULL;
    jw_event_to_fields(&ev, "poll", NULL, &fields);
    CHECK(field_value(&fields, "cost_usd") != NULL &&
          strcmp(field_value(&fields, "cost_usd"), "0.381250") == 0);
    CHECK(field_value(&fields, "cost_estimated") != NULL &&
          strcmp(field_value(&fields, "cost_estimated"), "true") == 0);
    jw_fields_clear(&fields);

    /* No metrics yet: no cost at all, so a stored one is never cleared. */
    ev.predict_time = -1;
    jw_event_to_fields(&ev, "poll", NULL, &fields);
    CHECK(field_value(&fields, "cost_usd") == NULL);
    CHECK(field_value(&fields, "cost_estimated") == NULL);
    jw_fields_clear(&fields);
    jw_event_clear(&ev);
}

static void test_config_errors(void)
{
    static const char *const bad[] = {"gpu=abc", "=0.1", "gpu", "gpu=2", "gpu=-1",
                                      "gpu=0.1,,", "g pu=0.1"};
    jw_config_t cfg;
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("JOBWIRE_PRICES", bad[i], 1);
        err[0] = '\0';
        CHECK_REPORT(jw_config_load(&cfg, NULL, err, sizeof(err)) == -1, "accepted %s", bad[i]);
        CHECK_REPORT(strncmp(err, "JOBWIRE_PRICES: ", 16) == 0, "error for %s: %s", bad[i], err);
        jw_config_free(&cfg);
    }
    unsetenv("JOBWIRE_PRICES");
    setenv("JOBWIRE_DEFAULT_PRICE", "cheap", 1);
    CHECK_INT(jw_config_load(&cfg, NULL, err, sizeof(err)), -1);
    CHECK(strncmp(err, "JOBWIRE_DEFAULT_PRICE: ", 23) == 0);
    jw_config_free(&cfg);
    unsetenv("JOBWIRE_DEFAULT_PRICE");
}

int main(void)
{
    test_builtin();
    test_not_finite();
    test_configured();
    test_event_fields();
    test_config_errors();
    CHECK_SUMMARY();
}
