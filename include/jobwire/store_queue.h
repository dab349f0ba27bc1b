/*
 * Store operations of the submission queue (store_queue.c): submit a job
 * (apply.lua's 'submit' mode, with the Idempotency-Key check), claim and
 * give back slots (queue_slots.lua), renumber the line (apply.lua's
 * 'positions' mode), the processor's lease and last-round record, and the
 * view behind GET /api/cloud/queue. Callbacks follow store.h: they run on
 * the loop, and what they receive is valid until they return.
 */
#ifndef JOBWIRE_STORE_QUEUE_H
#define JOBWIRE_STORE_QUEUE_H

#include <stddef.h>

#include "jobwire/store.h"

/* A submission as the store records it. */
typedef struct jw_submit_request {
    const char *job_id;          /* the new job's local id */
    const char *idempotency_key; /* NULL when the request had none */
    const char *digest;          /* identifies the request's content, for the key check */
    int key_ttl_s;
    int max_pending;             /* jobs in line above which the submission is rejected */
    const jw_field_t *fields;    /* model, version, destination, input, hardware, user_id */
    size_t count;
} jw_submit_request_t;

typedef enum jw_submit_outcome {
    JW_SUBMIT_CREATED = 0, /* a new pending job */
    JW_SUBMIT_REPLAY,      /* the key named an earlier job with the same content */
    JW_SUBMIT_MISMATCH,    /* the key named an earlier job with other content */
    JW_SUBMIT_GONE,        /* the key named a job that was deleted since */
    JW_SUBMIT_FULL,        /* the line has max_pending jobs already */
} jw_submit_outcome_t;

/* job_id is the new or earlier job ("" when full); job its hash (count 0 when none). */
typedef void (*jw_submit_cb)(void *data, jw_store_err_t err, jw_submit_outcome_t outcome,
                             const char *job_id, const jw_field_t *job, size_t count);

void jw_store_queue_submit(jw_store_t *store, const jw_submit_request_t *req, jw_submit_cb cb,
                           void *data);

/* A job that got a slot, with its submission's fields. */
typedef struct jw_queue_claim {
    const char *job_id;
    const jw_field_t *fields;
    size_t count;
} jw_queue_claim_t;

/* A started job to ask the provider about. */
typedef struct jw_queue_check {
    const char *job_id;
    const char *provider_id;
    const char *kind;
} jw_queue_check_t;

typedef struct jw_queue_round {
    const jw_queue_claim_t *claims;
    size_t claim_count;
    const jw_queue_check_t *checks;
    size_t check_count;
    long long slots_used; /* after the claims */
    long long pending;    /* jobs still in line */
    long long freed;      /* slots taken back from finished, deleted or lost jobs */
} jw_queue_round_t;

/* What one claim call may do; times in ms. */
typedef struct jw_queue_limits {
    long long now_ms;
    int max_concurrent;
    int max_per_user;      /* 0: no limit per user */
    long long claim_expiry_ms;
    long long verify_after_ms;
    int max_claims;
} jw_queue_limits_t;

typedef void (*jw_queue_claim_cb)(void *data, jw_store_err_t err, const jw_queue_round_t *round);

/* Frees lost slots, then gives free slots to jobs from the head of the line. */
void jw_store_queue_claim(jw_store_t *store, const jw_queue_limits_t *limits, jw_queue_claim_cb cb,
                          void *data);

/* Puts a claimed job back in line at its place (after a transient error). */
void jw_store_queue_unclaim(jw_store_t *store, const char *job_id, long long now_ms,
                            jw_done_cb cb, void *data);

/* Clears the positions of jobs that just left the line and renumbers the rest. */
void jw_store_queue_positions(jw_store_t *store, const char *const *job_ids, size_t count,
                              jw_done_cb cb, void *data);

/* leader is the lease holder after the call ("" when none). */
typedef void (*jw_queue_lease_cb)(void *data, jw_store_err_t err, const char *leader);

/*
 * Renews or takes `<prefix>queue:leader` for replica (PX lease_ms) while
 * wanted, and gives it back when not wanted or stopping.
 */
void jw_store_queue_lease(jw_store_t *store, const char *replica, long long lease_ms, int wanted,
                          int stopping, jw_queue_lease_cb cb, void *data);

/* Replaces the last-round record `<prefix>queue:status`; fire and forget. */
void jw_store_queue_record(jw_store_t *store, const jw_field_t *fields, size_t count);

typedef struct jw_queue_entry {
    const char *job_id;
    const char *user_id; /* "" when none, like the others */
    const char *model;
    const char *destination;
    const char *created_at;
} jw_queue_entry_t;

typedef struct jw_queue_holder {
    const char *job_id;
    const char *status;      /* "" when the job is gone */
    const char *provider_id; /* "" before the create call's response */
    const char *user_id;
    long long taken_ms;
} jw_queue_holder_t;

typedef struct jw_queue_view {
    const jw_queue_entry_t *entries; /* in line order, at most the limit asked */
    size_t entry_count;
    long long pending;               /* all jobs in line */
    const jw_queue_holder_t *holders;
    size_t holder_count;
    const char *leader;              /* "" when no replica runs the queue */
    const jw_field_t *last_round;    /* the leader's record of its last round */
    size_t last_round_count;
} jw_queue_view_t;

typedef void (*jw_queue_view_cb)(void *data, jw_store_err_t err, const jw_queue_view_t *view);

void jw_store_queue_view(jw_store_t *store, size_t limit, jw_queue_view_cb cb, void *data);

#endif
