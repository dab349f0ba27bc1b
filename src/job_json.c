/*
 * Rendering a stored job hash as the API's job object.
 */
#include "jobwire/job_json.h"

#include <stdlib.h>
#include <string.h>

#include "jobwire/event.h"
#include "jobwire/json_gen.h"
#include "jobwire/replicate.h"

/* Hash fields written as JSON strings, in output order. */
static const char *const string_fields[] = {
    "job_id",     "provider",     "kind",          "status",   "provider_status",
    "stage",      "last_log",     "created_at",    "started_at", "completed_at",
    "updated_at", "error_message", "hardware",     "model",    "version",
    "provider_job_id", "destination", "user_id",
};

/* Hash fields written as JSON numbers (null when absent). */
static const char *const number_fields[] = {"progress", "cost_usd", "predict_time",
                                             "queue_position"};

static const jw_field_t *find(const jw_field_t *fields, size_t count, const char *name)
{
    return jw_fields_find(fields, count, name);
}

static void write_number(yajl_gen g, const char *key, const jw_field_t *f)
{
    char text[64];

    if (f == NULL || f->value_len == 0 || f->value_len >= sizeof(text)) {
        jw_gen_kv_null(g, key);
        return;
    }
    memcpy(text, f->value, f->value_len);
    text[f->value_len] = '\0';
    jw_gen_kv_double(g, key, strtod(text, NULL));
}

static long long time_ms(const jw_field_t *f)
{
    char normalised[28];
    long long ms;

    if (f == NULL || jw_replicate_normalise_time(f->value, f->value_len, normalised, &ms) != 0)
        return -1;
    return ms;
}

/* Seconds from started_at to completed_at, or to now while active. */
static void write_duration(yajl_gen g, const jw_field_t *fields, size_t count, int terminal,
                           long long now_ms)
{
    long long start = time_ms(find(fields, count, "started_at"));
    long long end = terminal ? time_ms(find(fields, count, "completed_at")) : now_ms;

    if (start < 0 || end < 0 || end < start)
        jw_gen_kv_null(g, "duration_seconds");
    else
        jw_gen_kv_double(g, "duration_seconds", (double)(end - start) / 1000.0);
}

void jw_job_json(yajl_gen g, const jw_field_t *fields, size_t count, long long now_ms)
{
    yajl_gen_map_open(g);

    for (size_t i = 0; i < sizeof(string_fields) / sizeof(string_fields[0]); i++) {
        const jw_field_t *f = find(fields, count, string_fields[i]);
        jw_gen_kv_strn(g, string_fields[i], f ? f->value : NULL, f ? f->value_len : 0);
    }
    for (size_t i = 0; i < sizeof(number_fields) / sizeof(number_fields[0]); i++)
        write_number(g, number_fields[i], find(fields, count, number_fields[i]));

    const jw_field_t *output = find(fields, count, "output");
    if (output != NULL && output->value_len > 0)
        jw_gen_kv_raw(g, "output", output->value, output->value_len);
    else
        jw_gen_kv_null(g, "output");

    /* "true" when cost_usd used the default price (hardware missing or not
     * in the price table). */
    const jw_field_t *estimated = find(fields, count, "cost_estimated");
    int is_estimate = estimated != NULL && estimated->value_len == 4 &&
                      memcmp(estimated->value, "true", 4) == 0;
    jw_gen_kv_bool(g, "cost_estimated", is_estimate);

    const jw_field_t *revision = find(fields, count, "revision");
    jw_gen_kv_int(g, "revision", revision ? strtoll(revision->value, NULL, 10) : 0);

    const jw_field_t *status = find(fields, count, "status");
    jw_status_t s = status ? jw_status_parse(status->value, status->value_len) : JW_STATUS_UNKNOWN;
    int terminal = jw_status_is_terminal(s);
    jw_gen_kv_bool(g, "is_active", s != JW_STATUS_UNKNOWN && !terminal);
    jw_gen_kv_bool(g, "is_terminal", terminal);
    write_duration(g, fields, count, terminal, now_ms);

    yajl_gen_map_close(g);
}
