/*
 * The SSE hub: follows the change stream with one blocking read and
 * writes every change to the matching SSE clients of this replica. A
 * client that reconnects with Last-Event-ID first gets what it missed from
 * the stream, then live changes, with no gap and no repeat; an id older
 * than the stream's first entry gets one "reset" event instead.
 */
#ifndef JOBWIRE_HUB_H
#define JOBWIRE_HUB_H

#include <h2o.h>
#include <stddef.h>
#include <stdint.h>

#include "jobwire/app.h"
#include "jobwire/auth.h"

typedef struct jw_hub jw_hub_t;

/* Maximum job ids in one ?job_id= filter. */
#define JW_HUB_MAX_JOB_FILTER 100

/* What one stream wants: filters and where to resume. */
typedef struct jw_sse_request {
    char **job_ids;          /* owned by the hub once passed in; NULL for all */
    size_t job_id_count;
    unsigned status_mask;    /* bit (1 << jw_status_t) per wanted status, 0 for all */
    char last_event_id[64];  /* "" when the client did not send one */
    int last_event_id_valid; /* 0 when it was sent but does not parse */
    char ip[64];             /* the client IP the limits count */
    char member[128];        /* the stream's lease name, from jw_hub_new_member() */
    int leased;              /* a Redis lease was taken for this stream */
    /* The credentials the stream was opened with, so it can end when they
     * do: the key (name and hash), and a session's expiry (0: none). */
    int has_key;
    char key_name[JW_KEY_NAME_MAX + 1];
    unsigned char key_hash[JW_KEY_HASH_LEN];
    int64_t expires_at;
} jw_sse_request_t;

/* Writes a lease member name unique across replicas into out. */
void jw_hub_new_member(jw_hub_t *hub, char *out, size_t size);

typedef struct jw_hub_stats {
    uint64_t clients;        /* streams open now */
    uint64_t changes_sent;   /* change events written to clients */
    uint64_t resets;         /* reset events sent */
    uint64_t slow_resets;    /* of those, for clients over their buffer cap */
} jw_hub_stats_t;

jw_hub_t *jw_hub_start(jw_app_t *app, const char *replica_name);

/* Starts an SSE stream on req (limits are checked by the caller). */
void jw_hub_open_stream(jw_hub_t *hub, h2o_req_t *req, jw_sse_request_t *sse);

/* Returns the number of streams this replica serves for ip. */
size_t jw_hub_count_ip(const jw_hub_t *hub, const char *ip);

/* Returns the number of open streams. */
size_t jw_hub_client_count(const jw_hub_t *hub);

const jw_hub_stats_t *jw_hub_stats(const jw_hub_t *hub);

/* Returns the replica name used in lease members and logs. */
const char *jw_hub_replica(const jw_hub_t *hub);

/* Returns how long a per-IP lease lives without renewal: three heartbeats. */
long long jw_hub_lease_ttl_ms(const jw_hub_t *hub);

/* Ends, with a reset event, every stream whose key is no longer in keys
 * with the read role (after the key file was reloaded). */
void jw_hub_revoke(jw_hub_t *hub, const jw_keyring_t *keys);

/* Ends every stream cleanly (browsers reconnect elsewhere and resume)
 * and stops following the change stream. */
void jw_hub_shutdown(jw_hub_t *hub);

/* Parses a stream id "ms-seq"; returns 0, or -1 when it is not one. */
int jw_stream_id_parse(const char *text, size_t len, uint64_t *ms, uint64_t *seq);

/* Compares two stream ids that parse; returns <0, 0 or >0. */
int jw_stream_id_compare(const char *a, const char *b);

#endif
