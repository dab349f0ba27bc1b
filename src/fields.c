/*
 * Building field lists, and the one mapping from a normalised event to the
 * stream fields that apply.lua reads. Field names here and in apply.lua
 * must match.
 */
#include "jobwire/fields.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/clock.h"
#include "jobwire/cost.h"
#include "jobwire/progress.h"

void jw_fields_add(jw_fields_t *fields, const char *name, const char *value, size_t len)
{
    if (value == NULL || fields->count >= JW_FIELDS_MAX)
        return;

    char *copy = malloc(len + 1);
    if (copy == NULL)
        abort();
    memcpy(copy, value, len);
    copy[len] = '\0';

    jw_field_t *f = &fields->items[fields->count];
    f->name = name;
    f->name_len = strlen(name);
    f->value = copy;
    f->value_len = len;
    fields->owned[fields->count] = copy;
    fields->count++;
}

void jw_fields_add_str(jw_fields_t *fields, const char *name, const char *value)
{
    if (value != NULL)
        jw_fields_add(fields, name, value, strlen(value));
}

void jw_fields_addf(jw_fields_t *fields, const char *name, const char *fmt, ...)
{
    char buf[64];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof(buf))
        jw_fields_add(fields, name, buf, (size_t)n);
}

void jw_fields_clear(jw_fields_t *fields)
{
    for (size_t i = 0; i < fields->count; i++)
        free(fields->owned[i]);
    memset(fields, 0, sizeof(*fields));
}

const jw_field_t *jw_fields_find(const jw_field_t *items, size_t count, const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < count; i++) {
        if (items[i].name_len == len && memcmp(items[i].name, name, len) == 0)
            return &items[i];
    }
    return NULL;
}

static void add_progress(const jw_event_t *ev, jw_fields_t *out)
{
    jw_progress_t progress;

    jw_fields_addf(out, "logs_len", "%zu", ev->logs_len);
    if (ev->logs_tail == NULL)
        return;

    jw_progress_scan(ev->logs_tail, strlen(ev->logs_tail), &progress);
    jw_fields_add_str(out, "stage", progress.stage);
    if (progress.progress >= 0)
        jw_fields_addf(out, "progress", "%.1f", progress.progress);
    if (progress.last_log[0] != '\0')
        jw_fields_add_str(out, "last_log", progress.last_log);
}

/* Prices the predict time once Replicate reports it (metrics arrive with the
 * final status), so cost_usd changes exactly when the job's metrics do. */
/*
 * A predict time Replicate could report: finite, not negative and under
 * ten years. Anything else (1e308 from a broken sender) is dropped, because
 * Redis refuses inf and NaN and a failed script would stop halfway.
 */
static int plausible_seconds(double seconds)
{
    return isfinite(seconds) && seconds >= 0 && seconds < 10.0 * 365 * 86400;
}

static void add_cost(const jw_event_t *ev, jw_fields_t *out)
{
    jw_cost_t cost;

    if (!plausible_seconds(ev->predict_time) ||
        jw_cost_compute(ev->hardware, ev->predict_time, &cost) != 0 || !isfinite(cost.usd))
        return;
    jw_fields_addf(out, "cost_usd", "%.6f", cost.usd);
    jw_fields_add_str(out, "cost_estimated", cost.estimated ? "true" : "false");
}

void jw_fields_terminal_event(jw_fields_t *out, const char *job_id, const char *kind,
                              jw_status_t status, const char *error_message, const char *source)
{
    char completed[48];

    jw_clock_iso_now(completed);
    jw_fields_add_str(out, "job_id", job_id);
    jw_fields_add_str(out, "provider", "replicate");
    jw_fields_add_str(out, "kind", kind);
    jw_fields_add_str(out, "status", jw_status_name(status));
    jw_fields_add_str(out, "error_message", error_message);
    jw_fields_add_str(out, "completed_at", completed);
    jw_fields_add_str(out, "source", source);
}

void jw_event_to_fields(const jw_event_t *ev, const char *source, const char *delivery,
                        jw_fields_t *out)
{
    jw_fields_add_str(out, "job_id", ev->job_id);
    jw_fields_add_str(out, "provider", ev->provider);
    jw_fields_add_str(out, "kind", ev->kind);
    jw_fields_add_str(out, "status", jw_status_name(ev->status));
    jw_fields_add_str(out, "provider_status", ev->provider_status);
    jw_fields_add_str(out, "created_at", ev->created_at);
    jw_fields_add_str(out, "started_at", ev->started_at);
    jw_fields_add_str(out, "completed_at", ev->completed_at);
    if (ev->created_ms >= 0)
        jw_fields_addf(out, "created_ms", "%lld", (long long)ev->created_ms);
    jw_fields_add_str(out, "error_message", ev->error_message);
    jw_fields_add_str(out, "model", ev->model);
    jw_fields_add_str(out, "version", ev->version);
    jw_fields_add_str(out, "hardware", ev->hardware);
    jw_fields_add_str(out, "output", ev->output_json);
    if (plausible_seconds(ev->predict_time))
        jw_fields_addf(out, "predict_time", "%.6f", ev->predict_time);
    add_cost(ev, out);
    add_progress(ev, out);
    jw_fields_add_str(out, "source", source);
    jw_fields_add_str(out, "delivery", delivery);
}
