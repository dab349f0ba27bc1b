/*
 * The Replicate API client. NOTE: not built yet: every request fails with
 * "not implemented" until the curl multi client lands.
 */
#include "jobwire/replicate_client.h"

#include <stdlib.h>

struct jw_replicate {
    uv_loop_t *loop;
    const jw_config_t *cfg;
};

jw_replicate_t *jw_replicate_new(uv_loop_t *loop, const jw_config_t *cfg)
{
    jw_replicate_t *client = calloc(1, sizeof(*client));
    if (client == NULL)
        abort();
    client->loop = loop;
    client->cfg = cfg;
    return client;
}

void jw_replicate_free(jw_replicate_t *client)
{
    free(client);
}
