/*
 * The normalised status event: one provider object (a webhook body or an
 * API response) reduced to the fields the job store keeps. The webhook
 * handler, the poller and the sync endpoints all produce this type, and
 * the store turns it into stream fields for the apply script.
 */
#ifndef JOBWIRE_EVENT_H
#define JOBWIRE_EVENT_H

#include <stddef.h>
#include <stdint.h>

/* Job statuses in their forward order; every terminal status ranks last. */
typedef enum jw_status {
    JW_STATUS_UNKNOWN = 0,
    JW_STATUS_PENDING,
    JW_STATUS_UPLOADING,
    JW_STATUS_QUEUED,
    JW_STATUS_RUNNING,
    JW_STATUS_COMPLETED,
    JW_STATUS_FAILED,
    JW_STATUS_CANCELLED,
} jw_status_t;

/* Maximum length of a job id. Ids become Redis keys and URL parts, so
 * they are limited to A-Z, a-z, 0-9, '-' and '_'. */
#define JW_JOB_ID_MAX 128

/* Returns 1 when id (len bytes) is 1-JW_JOB_ID_MAX of those characters. */
int jw_job_id_valid(const char *id, size_t len);

/* Maximum bytes of log text kept in an event (the tail of the logs). */
#define JW_LOG_TAIL_MAX 16384

/*
 * A normalised event. Every string is NUL-terminated, owned by the event
 * and freed by jw_event_clear(); NULL means the provider sent null or
 * nothing. Timestamps are ISO 8601 UTC with six fractional digits, e.g.
 * "2025-06-10T09:14:02.118304Z".
 */
typedef struct jw_event {
    char *job_id;
    char *provider;        /* "replicate" */
    char *kind;            /* "training" or "prediction" */
    jw_status_t status;
    char *provider_status; /* the provider's own word, e.g. "processing" */
    char *created_at;
    char *started_at;
    char *completed_at;
    int64_t created_ms;    /* created_at in ms since the epoch, -1 if unknown */
    char *error_message;
    char *model;
    char *version;
    char *hardware;
    char *output_json;     /* the output as compact JSON text */
    double predict_time;   /* seconds, negative when unknown */
    char *logs_tail;       /* last JW_LOG_TAIL_MAX bytes at most */
    size_t logs_len;       /* length of the whole log text in bytes */
} jw_event_t;

/* Frees every string of the event and zeroes it. */
void jw_event_clear(jw_event_t *ev);

/* Returns the status name ("running"), or "unknown". */
const char *jw_status_name(jw_status_t status);

/* Parses a status name; returns JW_STATUS_UNKNOWN for anything else. */
jw_status_t jw_status_parse(const char *name, size_t len);

/* Returns 1 for completed, failed and cancelled. */
int jw_status_is_terminal(jw_status_t status);

#endif
