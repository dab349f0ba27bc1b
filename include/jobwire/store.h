/*
 * The job store: the only module that talks to Redis. It owns three
 * connections (commands, the consumer's blocking reads, the SSE hub's
 * blocking reads), reconnects them by itself, and offers domain operations
 * with callbacks. Every callback runs on the loop; the data it receives is
 * borrowed and valid only until it returns.
 */
#ifndef JOBWIRE_STORE_H
#define JOBWIRE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "jobwire/config.h"
#include "jobwire/fields.h"

typedef struct jw_store jw_store_t;

typedef enum jw_store_err {
    JW_STORE_OK = 0,
    JW_STORE_UNAVAILABLE, /* not connected, connection lost, or timed out */
    JW_STORE_FAILED,      /* Redis returned an error reply */
} jw_store_err_t;

/* Which connection a blocking read uses. */
typedef enum jw_store_conn_id {
    JW_CONN_COMMANDS = 0,
    JW_CONN_CONSUMER,
    JW_CONN_HUB,
    JW_CONN_COUNT,
} jw_store_conn_id_t;

/* The reply of a script that returns {flag, number}: leases, rate limits. */
typedef void (*jw_pair_cb)(void *data, jw_store_err_t err, int flag, long long value);

/* One stream entry: its id and fields (empty for an entry trimmed while pending). */
typedef struct jw_entry {
    const char *id;
    const jw_field_t *fields;
    size_t count;
} jw_entry_t;

/* Creates the store and starts connecting; never fails on Redis being down. */
jw_store_t *jw_store_new(uv_loop_t *loop, const jw_config_t *cfg);

/* Closes every connection; pending callbacks get JW_STORE_UNAVAILABLE. */
void jw_store_free(jw_store_t *store);

/* Returns 1 when the commands connection is up. */
int jw_store_is_ready(const jw_store_t *store);

/* Returns the configured key prefix ("jw:"). */
const char *jw_store_prefix(const jw_store_t *store);

/* Count of reconnections since start, for /metrics. */
uint64_t jw_store_reconnects(const jw_store_t *store);

/* --- webhooks and jobs ------------------------------------------------ */

typedef void (*jw_ingest_cb)(void *data, jw_store_err_t err, int duplicate, const char *entry_id);

/* Dedupes delivery_id and appends the event fields to the events stream,
 * atomically. */
void jw_store_ingest(jw_store_t *store, const char *delivery_id, const jw_fields_t *event,
                     jw_ingest_cb cb, void *data);

typedef struct jw_apply_result {
    int created;           /* the job did not exist before; -1 for an empty entry */
    int changed;           /* a visible field changed */
    const char *change_id; /* the change stream id, or "" */
    const char *status;    /* the job's status after the apply */
} jw_apply_result_t;

typedef void (*jw_apply_cb)(void *data, jw_store_err_t err, const jw_apply_result_t *result);

/* Applies one event (poller, sync and other direct callers) to its job. */
void jw_store_apply(jw_store_t *store, const jw_field_t *fields, size_t count, jw_apply_cb cb,
                    void *data);

typedef void (*jw_apply_entries_cb)(void *data, jw_store_err_t err,
                                    const jw_apply_result_t *results, size_t count);

/* Applies and acknowledges events-stream entries by id, in order, in one
 * script call; the script reads the entries' fields itself. */
void jw_store_apply_entries(jw_store_t *store, const char *const *ids, size_t count,
                            jw_apply_entries_cb cb, void *data);

typedef void (*jw_job_cb)(void *data, jw_store_err_t err, const jw_field_t *fields, size_t count);

/* Reads one job hash; count is 0 when the job does not exist. */
void jw_store_get_job(jw_store_t *store, const char *job_id, jw_job_cb cb, void *data);

typedef struct jw_list_query {
    long offset;
    long limit;
    const char *provider; /* NULL for any */
    const char *statuses; /* comma list, NULL for any */
} jw_list_query_t;

typedef struct jw_job_record {
    const jw_field_t *fields;
    size_t count;
} jw_job_record_t;

typedef void (*jw_list_cb)(void *data, jw_store_err_t err, long long total,
                           const jw_job_record_t *jobs, size_t count);

void jw_store_list_jobs(jw_store_t *store, const jw_list_query_t *query, jw_list_cb cb, void *data);

/* --- consumer group ---------------------------------------------------- */

typedef void (*jw_entries_cb)(void *data, jw_store_err_t err, const jw_entry_t *entries,
                              size_t count, const char *next_cursor);

/* XREADGROUP of new events on the consumer connection, creating the group
 * (and stream) when Redis lost them. */
void jw_store_read_events(jw_store_t *store, const char *consumer, int count, int block_ms,
                          jw_entries_cb cb, void *data);

/* XAUTOCLAIM of entries idle for min_idle_ms, from cursor ("0-0" to start). */
void jw_store_claim_events(jw_store_t *store, const char *consumer, int min_idle_ms,
                           const char *cursor, int count, jw_entries_cb cb, void *data);

typedef void (*jw_done_cb)(void *data, jw_store_err_t err);

/* Trims applied events and removes idle, empty consumers. */
void jw_store_trim_events(jw_store_t *store, int consumer_idle_ms, jw_done_cb cb, void *data);

/* --- change stream (SSE hub) -------------------------------------------- */

/* Blocking XREAD of changes after after_id, on the hub's connection. */
void jw_store_follow_changes(jw_store_t *store, const char *after_id, int count, int block_ms,
                             jw_entries_cb cb, void *data);

/* XRANGE of up to count changes after after_id (exclusive). */
void jw_store_range_changes(jw_store_t *store, const char *after_id, int count, jw_entries_cb cb,
                            void *data);

/* first_id is "" for an empty stream; last_id is the last id ever added
 * ("0-0" when the stream does not exist). */
typedef void (*jw_bounds_cb)(void *data, jw_store_err_t err, const char *first_id,
                             const char *last_id);

void jw_store_change_bounds(jw_store_t *store, jw_bounds_cb cb, void *data);

/* --- SSE leases ------------------------------------------------------------ */

typedef jw_pair_cb jw_lease_cb; /* flag: granted; value: the IP's streams */

/* Takes a lease for member in the IP's set unless it holds max already. */
void jw_store_sse_lease(jw_store_t *store, const char *ip, const char *member, int max,
                        long long ttl_ms, jw_lease_cb cb, void *data);

/* Extends the leases of members (all of one replica) by ttl_ms; fire and forget. */
void jw_store_sse_renew(jw_store_t *store, const char *ip, const char *member, long long ttl_ms);

/* Drops a lease; fire and forget. */
void jw_store_sse_release(jw_store_t *store, const char *ip, const char *member);

/* Pings over the commands connection (readiness). */
void jw_store_ping(jw_store_t *store, jw_done_cb cb, void *data);

/* --- access control (store_auth.c) ----------------------------------- */

/* flag: allowed; value: the calls left in the burst, or when not allowed
 * the milliseconds until the next call is. */
typedef jw_pair_cb jw_rate_cb;

/* Counts one call against bucket, at most per_minute a minute across
 * every replica. With peek, it only checks whether one would be allowed. */
void jw_store_rate_limit(jw_store_t *store, const char *bucket, int per_minute, int peek,
                         jw_rate_cb cb, void *data);

/* One audit entry: who did what to which job, and how it ended. */
typedef struct jw_audit_entry {
    const char *action, *key, *via, *ip, *job_id, *result;
    int status;
} jw_audit_entry_t;

/* Appends an entry to the capped audit stream; a failure is logged. */
void jw_store_audit_append(jw_store_t *store, const jw_audit_entry_t *entry);

/* Reads up to count audit entries, newest first, older than before_id
 * (NULL: from the newest). */
void jw_store_audit_range(jw_store_t *store, const char *before_id, int count, jw_entries_cb cb,
                          void *data);

/* --- provider endpoints (store_active.c) ------------------------------ */

typedef struct jw_active_job {
    const char *job_id;
    const char *kind; /* "training", "prediction", or "" when unknown */
} jw_active_job_t;

typedef void (*jw_active_cb)(void *data, jw_store_err_t err, const jw_active_job_t *jobs,
                             size_t count);

/* Lists at most max active jobs, most recently created first. */
void jw_store_active_jobs(jw_store_t *store, size_t max, jw_active_cb cb, void *data);

typedef enum jw_delete_result {
    JW_DELETE_DONE = 0,   /* the job and its index entries are gone */
    JW_DELETE_NOT_FOUND,
    JW_DELETE_ACTIVE,     /* refused: the job has not finished */
} jw_delete_result_t;

/* status is the job's status ("" when not found), borrowed for the callback. */
typedef void (*jw_delete_cb)(void *data, jw_store_err_t err, jw_delete_result_t result,
                             const char *status);

/* Deletes a finished job's hash and index entries atomically, and appends a
 * job_deleted record to the change stream. */
void jw_store_delete_job(jw_store_t *store, const char *job_id, jw_delete_cb cb, void *data);

/* --- events stream statistics (store_stats.c) ------------------------ */

typedef struct jw_events_stats {
    int valid;            /* a sample was taken */
    int lag_known;        /* Redis could tell the group's lag */
    long long length;     /* entries in the events stream (XLEN) */
    long long lag;        /* entries not yet delivered to any consumer */
    long long pending;    /* entries delivered and not yet applied (acked) */
    uint64_t sampled_ms;  /* loop time of the sample */
    uint64_t age_ms;      /* how old the sample is, set by jw_store_events_stats() */
} jw_events_stats_t;

/* Starts sampling the events stream every interval_ms on the commands
 * connection (XLEN, XINFO GROUPS); one store per process. */
void jw_store_stats_start(jw_store_t *store, int interval_ms);

/* Stops the sampling timer (at shutdown). */
void jw_store_stats_stop(void);

/* Copies the last sample into out without asking Redis; -1 when there is
 * none yet. */
int jw_store_events_stats(const jw_store_t *store, jw_events_stats_t *out);

#endif
