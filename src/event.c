/*
 * Helpers for the normalised event type: status names and cleanup.
 */
#include "jobwire/event.h"

#include <stdlib.h>
#include <string.h>

static const char *const status_names[] = {
    [JW_STATUS_UNKNOWN] = "unknown",     [JW_STATUS_PENDING] = "pending",
    [JW_STATUS_UPLOADING] = "uploading", [JW_STATUS_QUEUED] = "queued",
    [JW_STATUS_RUNNING] = "running",     [JW_STATUS_COMPLETED] = "completed",
    [JW_STATUS_FAILED] = "failed",       [JW_STATUS_CANCELLED] = "cancelled",
};

const char *jw_status_name(jw_status_t status)
{
    if (status > JW_STATUS_CANCELLED)
        return "unknown";
    return status_names[status];
}

jw_status_t jw_status_parse(const char *name, size_t len)
{
    for (int s = JW_STATUS_PENDING; s <= JW_STATUS_CANCELLED; s++) {
        if (strlen(status_names[s]) == len && memcmp(status_names[s], name, len) == 0)
            return (jw_status_t)s;
    }
    return JW_STATUS_UNKNOWN;
}

int jw_status_is_terminal(jw_status_t status)
{
    return status == JW_STATUS_COMPLETED || status == JW_STATUS_FAILED ||
           status == JW_STATUS_CANCELLED;
}

void jw_event_clear(jw_event_t *ev)
{
    char **strings[] = {&ev->job_id,     &ev->provider,      &ev->kind,      &ev->provider_status,
                        &ev->created_at, &ev->started_at,    &ev->completed_at,
                        &ev->error_message, &ev->model,      &ev->version,   &ev->hardware,
                        &ev->output_json, &ev->logs_tail};

    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++)
        free(*strings[i]);
    memset(ev, 0, sizeof(*ev));
    ev->created_ms = -1;
    ev->predict_time = -1;
}

int jw_job_id_valid(const char *id, size_t len)
{
    if (len == 0 || len > JW_JOB_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_';
        if (!ok)
            return 0;
    }
    return 1;
}
