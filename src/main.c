/*
 * jobwire: reads the configuration, builds the loop, wires the modules
 * and handles signals. Everything else lives in the modules.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "jobwire/app.h"
#include "jobwire/auth_setup.h"
#include "jobwire/config.h"
#include "jobwire/consumer.h"
#include "jobwire/http.h"
#include "jobwire/hub.h"
#include "jobwire/log.h"
#include "jobwire/cost.h"
#include "jobwire/poller.h"
#include "jobwire/queue.h"
#include "jobwire/replicate_client.h"
#include "jobwire/store.h"

/* How long a shutdown waits for requests in flight before it exits anyway. */
#define SHUTDOWN_GRACE_MS 20000
#define DRAIN_CHECK_MS 50
/* How often the events stream's length and lag are sampled for /metrics. */
#define STATS_INTERVAL_MS 1000

typedef struct service {
    uv_loop_t *loop;
    jw_config_t cfg;
    jw_keyring_t keys;
    jw_keyring_t retired; /* the keys before the last reload, see on_reload */
    jw_app_t app;
    jw_http_t *http;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_signal_t sighup;
    uv_timer_t drain_timer;
    uint64_t shutdown_started_ms;
    int consumer_stopping; /* the drain asked the consumer to stop */
    int consumer_stopped;  /* its last batch is applied */
} service_t;

typedef struct options {
    const char *config_path;
    int check_only;
} options_t;

/* Returns 0 to run, 1 to exit successfully, 2 on a usage error. */
static int parse_args(int argc, char **argv, options_t *opts)
{
    if (argc > 1 && strcmp(argv[1], "hash-key") == 0)
        return jw_auth_hash_key_command(argc, argv) == 0 ? 1 : 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            jw_config_print_help(argv[0]);
            return 1;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("jobwire %s\n", JW_VERSION);
            return 1;
        } else if (strcmp(argv[i], "--check-config") == 0) {
            opts->check_only = 1;
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            opts->config_path = argv[++i];
        } else {
            fprintf(stderr, "jobwire: unknown argument %s; see jobwire --help\n", argv[i]);
            return 2;
        }
    }
    return 0;
}

static void finish_shutdown(service_t *svc)
{
    const jw_consumer_stats_t *stats = jw_consumer_stats(svc->app.consumer);

    jw_info("main", "stopped: consumer finished its batch applied=%llu after_ms=%llu",
            (unsigned long long)stats->applied,
            (unsigned long long)(uv_now(svc->loop) - svc->shutdown_started_ms));
    uv_stop(svc->loop);
}

static void on_consumer_stopped(void *data)
{
    service_t *svc = data;

    svc->consumer_stopped = 1;
}

/*
 * The drain, every DRAIN_CHECK_MS: wait for requests in flight, then stop
 * the consumer after its current batch, then (requests that came in on
 * open connections meanwhile answered too) stop the loop. The grace
 * period bounds the waits for requests.
 */
static void on_drain_check(uv_timer_t *timer)
{
    service_t *svc = timer->data;
    uint64_t waited = uv_now(svc->loop) - svc->shutdown_started_ms;

    if (svc->app.requests_in_flight > 0 && waited < SHUTDOWN_GRACE_MS)
        return;
    if (!svc->consumer_stopping) {
        if (svc->app.requests_in_flight > 0)
            jw_warn("main", "shutdown grace period over: requests_in_flight=%llu",
                    (unsigned long long)svc->app.requests_in_flight);
        else
            jw_info("main", "drained: no request in flight; stopping the consumer after_ms=%llu",
                    (unsigned long long)waited);
        svc->consumer_stopping = 1;
        jw_store_stats_stop();
        jw_consumer_stop(svc->app.consumer, on_consumer_stopped, svc);
        return;
    }
    if (!svc->consumer_stopped)
        return;
    uv_timer_stop(timer);
    finish_shutdown(svc);
}

static void on_signal(uv_signal_t *handle, int signum)
{
    service_t *svc = handle->data;

    if (svc->app.shutting_down)
        return;
    jw_info("main", "shutting down: signal=%s", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    svc->app.shutting_down = 1;
    svc->shutdown_started_ms = uv_now(svc->loop);
    /* Readiness answers 503 from here on (shutting_down); the listener
     * closes now, so new connections go to other replicas. */
    jw_http_stop_accepting(svc->http);
    /* Streams end at once so browsers reconnect to another replica and
     * resume there; webhooks in flight still finish below. */
    jw_hub_shutdown(svc->app.hub);
    /* The lease goes back now, so another replica polls at its next check. */
    jw_poller_stop(svc->app.poller);
    jw_queue_stop(svc->app.queue);
    uv_timer_start(&svc->drain_timer, on_drain_check, 0, DRAIN_CHECK_MS);
}

/* SIGHUP reloads the API key file, so keys rotate without a restart. A
 * file that no longer parses leaves the keys in force as they were. */
static void on_reload(uv_signal_t *handle, int signum)
{
    service_t *svc = handle->data;
    jw_keyring_t fresh;
    char err[512];

    (void)signum;
    if (svc->app.keys == NULL) {
        jw_info("auth", "SIGHUP: no key file is configured; nothing to reload");
        return;
    }
    if (jw_keyring_load(svc->cfg.api_keys_file, &fresh, err, sizeof(err)) != 0) {
        jw_error("auth", "SIGHUP: the key file was not reloaded, the old keys stay: %s", err);
        return;
    }
    /* A request waiting on Redis may still point into the old keys, so
     * they are freed one reload later, not now. */
    jw_keyring_free(&svc->retired);
    svc->retired = svc->keys;
    svc->keys = fresh;
    jw_info("auth", "SIGHUP: reloaded %zu API keys from %s", svc->keys.count,
            svc->cfg.api_keys_file);
    jw_hub_revoke(svc->app.hub, &svc->keys);
}

static void log_startup(const jw_config_t *cfg)
{
    jw_info("main", "listening on %s:%d redis=%s:%d/%d prefix=%s webhook=%s version=%s",
            cfg->listen_host, cfg->listen_port, cfg->redis_host, cfg->redis_port, cfg->redis_db,
            cfg->redis_prefix, cfg->has_webhook_secret ? "on" : "off (no secret)", JW_VERSION);
}

static int start(service_t *svc)
{
    char err[512];

    svc->app.loop = svc->loop;
    svc->app.cfg = &svc->cfg;
    svc->app.has_webhook_key = svc->cfg.has_webhook_secret;
    svc->app.webhook_key = svc->cfg.webhook_key;
    svc->app.replicate = jw_replicate_new(svc->loop, &svc->cfg);
    jw_replicate_secret_start(&svc->app);
    svc->app.store = jw_store_new(svc->loop, &svc->cfg);
    svc->app.consumer = jw_consumer_start(svc->loop, svc->app.store, &svc->cfg);
    /* /metrics reads the apply lag from this cache, never from Redis. */
    jw_store_stats_start(svc->app.store, STATS_INTERVAL_MS);
    svc->app.hub = jw_hub_start(&svc->app, jw_consumer_name(svc->app.consumer));
    jw_cost_configure(&svc->cfg);
    svc->app.poller = jw_poller_start(&svc->app);
    svc->app.queue = jw_queue_start(&svc->app);

    svc->http = jw_http_start(&svc->app, err, sizeof(err));
    if (svc->http == NULL) {
        jw_error("main", "cannot start: %s", err);
        return -1;
    }

    uv_signal_init(svc->loop, &svc->sigterm);
    uv_signal_init(svc->loop, &svc->sigint);
    svc->sigterm.data = svc->sigint.data = svc;
    uv_signal_start(&svc->sigterm, on_signal, SIGTERM);
    uv_signal_start(&svc->sigint, on_signal, SIGINT);
    uv_signal_init(svc->loop, &svc->sighup);
    svc->sighup.data = svc;
    uv_signal_start(&svc->sighup, on_reload, SIGHUP);
    uv_timer_init(svc->loop, &svc->drain_timer);
    svc->drain_timer.data = svc;
    log_startup(&svc->cfg);
    jw_auth_log_mode(&svc->app);
    return 0;
}

int main(int argc, char **argv)
{
    static service_t svc;
    options_t opts = {NULL, 0};
    char err[512];

    int rc = parse_args(argc, argv, &opts);
    if (rc != 0)
        return rc == 1 ? 0 : 2;

    if (jw_config_load(&svc.cfg, opts.config_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "jobwire: invalid configuration: %s\n", err);
        jw_config_free(&svc.cfg);
        return 1;
    }
    jw_log_min_level = (jw_log_level_t)svc.cfg.log_level;
    svc.app.cfg = &svc.cfg;
    if (jw_auth_setup(&svc.app, &svc.keys, err, sizeof(err)) != 0) {
        fprintf(stderr, "jobwire: invalid configuration: %s\n", err);
        jw_config_free(&svc.cfg);
        return 1;
    }
    if (svc.cfg.unknown_keys[0] != '\0')
        fprintf(stderr, "jobwire: warning: %s: unknown keys, ignored (a typo?): %s\n",
                svc.cfg.config_file, svc.cfg.unknown_keys);
    if (opts.check_only) {
        jw_auth_log_mode(&svc.app);
        printf("configuration is valid\n");
        jw_config_free(&svc.cfg);
        return 0;
    }

    /* A browser that vanishes mid-write must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    svc.loop = uv_default_loop();
    if (start(&svc) != 0)
        return 1;

    uv_run(svc.loop, UV_RUN_DEFAULT);
    jw_store_free(svc.app.store);
    jw_consumer_free(svc.app.consumer);
    jw_replicate_free(svc.app.replicate);
    jw_poller_free(svc.app.poller);
    jw_keyring_free(&svc.keys);
    jw_keyring_free(&svc.retired);
    jw_queue_free(svc.app.queue);
    jw_config_free(&svc.cfg);
    return 0;
}
