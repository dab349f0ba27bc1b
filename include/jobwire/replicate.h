/*
 * Replicate objects (predictions and trainings) into normalised events.
 * One parser serves webhook bodies and API responses alike.
 */
#ifndef JOBWIRE_REPLICATE_H
#define JOBWIRE_REPLICATE_H

#include <stddef.h>

#include "jobwire/event.h"

/*
 * Parses one prediction or training object (a JSON object with at least a
 * string "id" and a known "status") into ev, which the caller zeroes first
 * and frees with jw_event_clear(). Maps Replicate's statuses (starting ->
 * queued, processing -> running, succeeded -> completed, failed -> failed,
 * canceled -> cancelled), normalises timestamps to ISO 8601 UTC with six
 * fractional digits, reads metrics.predict_time in any JSON number form,
 * keeps the output as compact JSON and the last JW_LOG_TAIL_MAX bytes of
 * the logs. A body whose "destination" field is present, or whose
 * urls.get names /trainings/, is a training; otherwise a prediction.
 * Returns 0, or -1 with a reason naming the field in err (ev is cleared).
 */
int jw_replicate_parse_object(const char *json, size_t len, jw_event_t *ev, char *err, size_t errlen);

/*
 * Normalises an ISO 8601 timestamp with 0 to 9 fractional digits and a "Z"
 * or +hh:mm offset into "YYYY-MM-DDTHH:MM:SS.ffffffZ" (UTC, microseconds,
 * truncated). out needs 28 bytes. Sets *ms to milliseconds since the epoch.
 * Returns 0, or -1 when the text is not such a timestamp.
 */
int jw_replicate_normalise_time(const char *text, size_t len, char out[28], long long *ms);

#endif
