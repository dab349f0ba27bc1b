/*
 * GET /api/cloud/metrics?days=N: dashboard totals over the last N UTC days
 * (today included), by the day each job was created. Everything comes from
 * the daily totals that apply.lua keeps, plus the active-status indexes, so
 * a request costs the same with ten jobs or a million.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobwire/http.h"
#include "jobwire/json_gen.h"
#include "jobwire/store_metrics.h"

#define DAYS_DEFAULT 30
#define DATE_LEN 11

typedef struct metrics_op {
    jw_reqref_t *ref;
    int days;
} metrics_op_t;

/* Totals over the period, and the row of one day. */
typedef struct totals {
    long long jobs, completed, failed, cancelled, duration_count;
    double cost, duration_sum;
} totals_t;

static long long field_int(const jw_daily_t *d, const char *name)
{
    const jw_field_t *f = jw_fields_find(d->fields, d->count, name);
    return f != NULL ? strtoll(f->value, NULL, 10) : 0;
}

static double field_double(const jw_daily_t *d, const char *name)
{
    const jw_field_t *f = jw_fields_find(d->fields, d->count, name);
    return f != NULL ? strtod(f->value, NULL) : 0.0;
}

/* Rounds to millionths of a dollar, because sums of float increments drift in the last digits. */
static double usd(double v)
{
    double r = round(v * 1e6) / 1e6;
    return r == 0 ? 0.0 : r; /* no -0 */
}

static void read_day(const jw_daily_t *d, totals_t *day)
{
    memset(day, 0, sizeof(*day));
    day->jobs = field_int(d, "total_jobs");
    day->completed = field_int(d, "completed");
    day->failed = field_int(d, "failed");
    day->cancelled = field_int(d, "cancelled");
    day->cost = field_double(d, "total_cost_usd");
    day->duration_sum = field_double(d, "duration_sum");
    day->duration_count = field_int(d, "duration_count");
}

static void add_day(totals_t *sum, const totals_t *day)
{
    sum->jobs += day->jobs;
    sum->completed += day->completed;
    sum->failed += day->failed;
    sum->cancelled += day->cancelled;
    sum->cost += day->cost;
    sum->duration_sum += day->duration_sum;
    sum->duration_count += day->duration_count;
}

static void write_day(yajl_gen g, const char *date, const totals_t *day)
{
    yajl_gen_map_open(g);
    jw_gen_kv_str(g, "date", date);
    jw_gen_kv_int(g, "total_jobs", day->jobs);
    jw_gen_kv_int(g, "completed", day->completed);
    jw_gen_kv_int(g, "failed", day->failed);
    jw_gen_kv_int(g, "cancelled", day->cancelled);
    jw_gen_kv_double(g, "total_cost_usd", usd(day->cost));
    yajl_gen_map_close(g);
}

static void write_by_status(yajl_gen g, const long long active[4], const totals_t *sum)
{
    static const char *const active_names[] = {"pending", "uploading", "queued", "running"};

    jw_gen_key(g, "jobs_by_status");
    yajl_gen_map_open(g);
    for (int i = 0; i < 4; i++)
        jw_gen_kv_int(g, active_names[i], active[i]);
    jw_gen_kv_int(g, "completed", sum->completed);
    jw_gen_kv_int(g, "failed", sum->failed);
    jw_gen_kv_int(g, "cancelled", sum->cancelled);
    yajl_gen_map_close(g);
}

static void write_metrics(yajl_gen g, int period, const long long active[4],
                          const jw_daily_t *days, size_t count)
{
    totals_t sum, day;

    memset(&sum, 0, sizeof(sum));
    yajl_gen_map_open(g);
    jw_gen_kv_int(g, "period_days", period);
    jw_gen_key(g, "cost_by_day");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < count; i++) {
        read_day(&days[i], &day);
        add_day(&sum, &day);
        write_day(g, days[i].date, &day);
    }
    yajl_gen_array_close(g);

    jw_gen_kv_double(g, "total_cost", usd(sum.cost));
    jw_gen_kv_int(g, "job_count", sum.jobs);
    jw_gen_kv_double(g, "avg_job_duration_seconds",
                     sum.duration_count > 0
                         ? round(sum.duration_sum / (double)sum.duration_count * 1000) / 1000
                         : 0.0);
    write_by_status(g, active, &sum);
    yajl_gen_map_close(g);
}

static void on_metrics(void *data, jw_store_err_t err, const long long active[4],
                       const jw_daily_t *days, size_t count)
{
    metrics_op_t *op = data;
    h2o_req_t *req = jw_reqref_get(op->ref);

    if (req != NULL && err != JW_STORE_OK) {
        jw_http_send_error(req, JW_E_REDIS_UNAVAILABLE, "the job store is unavailable; retry");
    } else if (req != NULL) {
        yajl_gen g = jw_gen_new();

        write_metrics(g, op->days, active, days, count);
        jw_http_send_json(req, 200, g);
        yajl_gen_free(g);
    }
    jw_reqref_release(op->ref);
    free(op);
}

void jw_api_cloud_metrics(jw_app_t *app, h2o_req_t *req)
{
    static char dates[JW_METRICS_DAYS_MAX][DATE_LEN];
    const char *names[JW_METRICS_DAYS_MAX];
    int days = (int)jw_http_query_int(req, "days", 1, JW_METRICS_DAYS_MAX, DAYS_DEFAULT);
    time_t now = time(NULL);

    if (days < 0)
        return;

    /* Oldest first; the period starts at midnight UTC of its first day.
     * The store copies the names before this returns. */
    for (int i = 0; i < days; i++) {
        time_t t = now - (time_t)(days - 1 - i) * 86400;
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(dates[i], DATE_LEN, "%Y-%m-%d", &tm);
        names[i] = dates[i];
    }
    long long start_ms = ((long long)now / 86400 - (days - 1)) * 86400000LL;

    metrics_op_t *op = calloc(1, sizeof(*op));
    if (op == NULL)
        abort();
    op->ref = jw_reqref_new(app, req);
    op->days = days;
    jw_store_metrics(app->store, names, (size_t)days, start_ms, on_metrics, op);
}
