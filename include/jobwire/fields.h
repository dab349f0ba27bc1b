/*
 * Field lists: the flat name/value pairs that carry an event into the
 * Redis stream and the apply script, and that come back from Redis as job
 * records and stream entries. A list either owns its values (built with
 * jw_fields_add) or borrows them (filled by the store for the length of a
 * callback).
 */
#ifndef JOBWIRE_FIELDS_H
#define JOBWIRE_FIELDS_H

#include <stddef.h>

#include "jobwire/event.h"

#define JW_FIELDS_MAX 48

typedef struct jw_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} jw_field_t;

typedef struct jw_fields {
    jw_field_t items[JW_FIELDS_MAX];
    size_t count;
    char *owned[JW_FIELDS_MAX]; /* values to free, NULL where borrowed */
} jw_fields_t;

/* Appends a copy of value (len bytes); a NULL value is skipped. */
void jw_fields_add(jw_fields_t *fields, const char *name, const char *value, size_t len);

/* Appends a NUL-terminated value; NULL is skipped. */
void jw_fields_add_str(jw_fields_t *fields, const char *name, const char *value);

/* Appends a formatted value. */
void jw_fields_addf(jw_fields_t *fields, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Frees the owned values and empties the list. */
void jw_fields_clear(jw_fields_t *fields);

/* Returns the field named name, or NULL. */
const jw_field_t *jw_fields_find(const jw_field_t *items, size_t count, const char *name);

/*
 * Turns an event into stream fields: every known value, the derived stage,
 * progress and last_log from its logs, and source ("webhook", "poll",
 * "sync") and delivery (the webhook-id, or NULL).
 */
void jw_event_to_fields(const jw_event_t *ev, const char *source, const char *delivery,
                        jw_fields_t *out);

/*
 * Builds the event that ends a job without the provider's word (a queued
 * job cancelled before it started, a job Replicate refused or forgot):
 * status, completed_at now, and error_message and kind when not NULL. It
 * has no log fields, so the stored stage, progress and last log stay.
 */
void jw_fields_terminal_event(jw_fields_t *out, const char *job_id, const char *kind,
                              jw_status_t status, const char *error_message, const char *source);

#endif
