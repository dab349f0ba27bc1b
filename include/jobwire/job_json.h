/*
 * The job record as the API shows it: the stored hash fields typed for
 * JSON (numbers as numbers, output as JSON) plus is_active, is_terminal
 * and duration_seconds, which are derived at read time.
 */
#ifndef JOBWIRE_JOB_JSON_H
#define JOBWIRE_JOB_JSON_H

#include <stddef.h>
#include <yajl/yajl_gen.h>

#include "jobwire/fields.h"

/* Writes one job as a JSON object; now_ms is the clock for running jobs. */
void jw_job_json(yajl_gen g, const jw_field_t *fields, size_t count, long long now_ms);

#endif
