/*
 * The Replicate API client: libcurl's multi interface on the service's
 * libuv loop, so no request blocks the loop.
 */
#ifndef JOBWIRE_REPLICATE_CLIENT_H
#define JOBWIRE_REPLICATE_CLIENT_H

#include <uv.h>

#include "jobwire/config.h"

typedef struct jw_replicate jw_replicate_t;

/* Creates the client; it makes no request until asked. */
jw_replicate_t *jw_replicate_new(uv_loop_t *loop, const jw_config_t *cfg);

/* Cancels requests in flight (their callbacks report an error) and frees. */
void jw_replicate_free(jw_replicate_t *client);

#endif
