/*
 * The webhook signing secret from Replicate, for deployments that give
 * jobwire a public URL and an API token but no REPLICATE_WEBHOOK_SECRET.
 * It fetches GET /v1/webhooks/default/secret at start, again every minute
 * while no key is known, and again (at most once a minute) when the
 * webhook handler saw a delivery fail verification, since the secret may
 * have been rotated. It sets app->webhook_key; checking signatures stays
 * with webhook.c. The secret itself is never logged.
 */
#include <stdio.h>
#include <string.h>

#include "jobwire/app.h"
#include "jobwire/json.h"
#include "jobwire/log.h"
#include "replicate_internal.h"

#define SECRET_PATH "/webhooks/default/secret"
#define REFRESH_MIN_MS 60000

static void fetch(jw_app_t *app);

static void on_retry_timer(uv_timer_t *timer)
{
    jw_replicate_t *client = timer->data;

    if (client->secret_app != NULL && !client->secret_app->has_webhook_key)
        fetch(client->secret_app);
}

/* Reads {"key": "whsec_..."} into key; returns 0, or -1 with a reason. */
static int read_key(const char *body, size_t len, jw_verify_key_t *key, char *err, size_t errlen)
{
    char jerr[128];
    yajl_val root = jw_json_parse(body, len, jerr, sizeof(jerr));
    const char *secret = jw_json_get_string(root, JW_JSON_PATH("key"));
    int rc = -1;

    if (root == NULL)
        snprintf(err, errlen, "the answer is not JSON: %s", jerr);
    else if (secret == NULL)
        snprintf(err, errlen, "the answer has no \"key\" string");
    else if (jw_verify_parse_secret(secret, key, jerr, sizeof(jerr)) != 0)
        snprintf(err, errlen, "the key is not a whsec_ secret: %s", jerr);
    else
        rc = 0;
    yajl_tree_free(root);
    return rc;
}

static void use_key(jw_app_t *app, const jw_verify_key_t *key)
{
    int had = app->has_webhook_key;
    int same = had && app->webhook_key.len == key->len &&
               memcmp(app->webhook_key.bytes, key->bytes, key->len) == 0;

    app->webhook_key = *key;
    app->has_webhook_key = 1;
    if (!had)
        jw_info("webhook", "signing secret loaded from Replicate (GET %s)", SECRET_PATH);
    else if (!same)
        jw_info("webhook", "signing secret changed at Replicate; the new one is in use "
                "(GET %s)", SECRET_PATH);
    else
        jw_debug("webhook", "signing secret fetched again from Replicate: unchanged");
}

static void on_secret(void *data, const jw_replicate_outcome_t *out, const char *body, size_t len)
{
    jw_app_t *app = data;
    jw_replicate_t *client = app->replicate;
    jw_verify_key_t key;
    char err[256];

    client->secret_fetching = 0;
    if (out->err == JW_REPLICATE_CANCELLED)
        return;

    if (out->err != JW_REPLICATE_OK) {
        snprintf(err, sizeof(err), "%s", out->message);
    } else if (read_key(body, len, &key, err, sizeof(err)) == 0) {
        use_key(app, &key);
        explicit_bzero(&key, sizeof(key));
        return;
    }

    jw_warn("webhook", "cannot fetch the signing secret from Replicate: %s", err);
    /* Without any key every delivery is refused, so keep trying. */
    if (!app->has_webhook_key)
        uv_timer_start(&client->secret_timer, on_retry_timer, REFRESH_MIN_MS, 0);
}

static void fetch(jw_app_t *app)
{
    jw_replicate_t *client = app->replicate;

    client->secret_fetching = 1;
    client->secret_fetched = 1;
    client->secret_last_ms = uv_now(client->loop);
    jw_replicate_request(client, "GET", SECRET_PATH, on_secret, app);
}

/* 1 when the secret is Replicate's to give: public URL, no configured secret, a token. */
static int secret_from_replicate(const jw_app_t *app)
{
    return app->replicate != NULL && app->cfg->public_url != NULL &&
           !app->cfg->has_webhook_secret && jw_replicate_has_token(app->replicate);
}

void jw_replicate_secret_start(jw_app_t *app)
{
    const jw_config_t *cfg = app->cfg;

    if (cfg->has_webhook_secret) {
        jw_info("webhook", "signing secret from the configuration (REPLICATE_WEBHOOK_SECRET)");
        return;
    }
    if (cfg->public_url == NULL)
        return;
    if (!secret_from_replicate(app)) {
        jw_warn("webhook", "no signing secret: JOBWIRE_PUBLIC_URL is set but neither "
                "REPLICATE_WEBHOOK_SECRET nor REPLICATE_API_TOKEN; webhooks will be refused");
        return;
    }
    app->replicate->secret_app = app;
    jw_info("webhook", "fetching the signing secret from Replicate (GET %s)", SECRET_PATH);
    fetch(app);
}

void jw_replicate_secret_maybe_refresh(jw_app_t *app)
{
    jw_replicate_t *client = app->replicate;

    if (!secret_from_replicate(app) || client->closing || client->secret_fetching)
        return;
    if (client->secret_fetched && uv_now(client->loop) - client->secret_last_ms < REFRESH_MIN_MS)
        return;
    client->secret_app = app;
    uv_timer_stop(&client->secret_timer);
    fetch(app);
}
