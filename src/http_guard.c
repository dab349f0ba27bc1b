/*
 * Key guessing on API routes. Logins are limited per client address; a
 * Bearer key on any route is a login attempt too, so a failed one counts
 * against the same limit. Checking the limit on every Bearer request
 * would cost a Redis call each, so only an address that failed recently
 * (remembered here, per replica) waits for the check. Each replica lets
 * one failure per address through before it starts checking.
 *
 * A wrong key counts once a minute per replica, however often it comes
 * back: a job still retrying with a rotated key must not lock valid keys
 * out of its address, while each new guess still counts.
 */
#include <stdio.h>
#include <string.h>

#include "http_internal.h"

#define SUSPECTS 256
#define SUSPECT_MS 60000
#define SEEN_KEYS 8

typedef struct suspect {
    char bucket[96];
    uint64_t until_ms;
    char seen[SEEN_KEYS][17]; /* hash prefixes of wrong keys already counted */
    int seen_next;
} suspect_t;

/* Addresses with a failed key in the last minute; the oldest is replaced. */
static suspect_t suspects[SUSPECTS];

static suspect_t *find_suspect(const char *bucket, uint64_t now)
{
    for (int i = 0; i < SUSPECTS; i++) {
        if (suspects[i].until_ms > now && strcmp(suspects[i].bucket, bucket) == 0)
            return &suspects[i];
    }
    return NULL;
}

/* Remembers a failure of bucket with the wrong key fp; returns 1 when it
 * should be counted, 0 when this wrong key was counted already. */
static int mark_suspect(const char *bucket, const char *fp, uint64_t now)
{
    suspect_t *slot = find_suspect(bucket, now);

    if (slot == NULL) {
        slot = &suspects[0];
        for (int i = 1; i < SUSPECTS; i++) {
            if (suspects[i].until_ms < slot->until_ms)
                slot = &suspects[i];
        }
        memset(slot, 0, sizeof(*slot));
        snprintf(slot->bucket, sizeof(slot->bucket), "%s", bucket);
    }
    slot->until_ms = now + SUSPECT_MS;
    for (int i = 0; i < SEEN_KEYS; i++) {
        if (strcmp(slot->seen[i], fp) == 0)
            return 0;
    }
    snprintf(slot->seen[slot->seen_next], sizeof(slot->seen[0]), "%s", fp);
    slot->seen_next = (slot->seen_next + 1) % SEEN_KEYS;
    return 1;
}

typedef struct guard {
    char bucket[96];
    char fp[17];
    int failed;
    jw_http_next_fn next;
    void *ctx;
} guard_t;

static void count_failure(jw_app_t *app, const guard_t *g)
{
    if (g->failed && mark_suspect(g->bucket, g->fp, uv_now(app->loop)))
        jw_http_rate_count(app, g->bucket, app->cfg->login_rate_per_min);
}

static void after_peek(jw_app_t *app, h2o_req_t *req, void *ctx)
{
    guard_t *g = ctx;

    count_failure(app, g);
    g->next(app, req, g->ctx);
}

void jw_http_guard_bearer(jw_app_t *app, h2o_req_t *req, const jw_principal_t *p,
                          jw_http_next_fn next, void *ctx)
{
    int per_minute = app->cfg->login_rate_per_min;
    char client[80];

    if (!p->bearer || app->keys == NULL || per_minute == 0) {
        next(app, req, ctx);
        return;
    }

    guard_t *g = h2o_mem_alloc_pool(&req->pool, sizeof(*g));
    jw_http_ip_bucket(p->ip, client, sizeof(client));
    snprintf(g->bucket, sizeof(g->bucket), "login:%s", client);
    g->failed = p->kind == JW_PRINCIPAL_NONE && p->error == JW_E_INVALID_API_KEY;
    snprintf(g->fp, sizeof(g->fp), "%s", p->bad_key_fp);
    g->next = next;
    g->ctx = ctx;

    if (find_suspect(g->bucket, uv_now(app->loop)) == NULL) {
        after_peek(app, req, g);
        return;
    }
    jw_http_rate_check(app, req, g->bucket, per_minute, JW_RATE_PEEK | JW_RATE_FAIL_CLOSED,
                       "failed key attempts", after_peek, g);
}
