/*
 * GET /api/cloud/polling/status and PUT /api/cloud/polling/setting. The
 * state shown is the cluster's, read from Redis (override, leader, the
 * leader's last-tick record), so every replica returns the same. The
 * poller itself (poller.c) decides and polls; this file only reports and
 * stores the override.
 */
#include <stdlib.h>
#include <string.h>

#include "jobwire/http.h"
#include "jobwire/json.h"
#include "jobwire/json_gen.h"
#include "jobwire/poller.h"
#include "jobwire/store_poller.h"

typedef struct polling_op {
    jw_app_t *app;
    jw_reqref_t *ref;
} polling_op_t;

static polling_op_t *op_new(jw_app_t *app, h2o_req_t *req)
{
    polling_op_t *op = calloc(1, sizeof(*op));

    if (op == NULL)
        abort();
    op->app = app;
    op->ref = jw_reqref_new(app, req);
    return op;
}

static void op_free(polling_op_t *op)
{
    jw_reqref_release(op->ref);
    free(op);
}

/* A record field as a string, or NULL when absent or empty. */
static void kv_record_str(yajl_gen g, const char *key, const jw_field_t *fields, size_t count,
                          const char *name)
{
    const jw_field_t *f = jw_fields_find(fields, count, name);

    jw_gen_kv_strn(g, key, f != NULL && f->value_len > 0 ? f->value : NULL,
                   f != NULL ? f->value_len : 0);
}

static void kv_record_int(yajl_gen g, const jw_field_t *fields, size_t count, const char *name)
{
    const jw_field_t *f = jw_fields_find(fields, count, name);

    if (f == NULL)
        jw_gen_kv_null(g, name);
    else
        jw_gen_kv_int(g, name, strtoll(f->value, NULL, 10));
}

static void write_last_tick(yajl_gen g, const jw_field_t *fields, size_t count)
{
    static const char *const numbers[] = {"jobs",   "requests",  "changed",    "errors",
                                          "throttled", "missing", "duration_ms"};

    jw_gen_key(g, "last_tick");
    if (count == 0) {
        yajl_gen_null(g);
        return;
    }
    yajl_gen_map_open(g);
    kv_record_str(g, "mode", fields, count, "mode");
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
        kv_record_int(g, fields, count, numbers[i]);
    yajl_gen_map_close(g);
}

static void write_status(yajl_gen g, const jw_app_t *app, int override, const char *leader,
                         const jw_field_t *fields, size_t count)
{
    const jw_config_t *cfg = app->cfg;
    int enabled = override >= 0 ? override : jw_config_poll_enabled(cfg);
    const char *why;
    const char *source = jw_poller_source(cfg, override, &why);
    const jw_field_t *interval = jw_fields_find(fields, count, "interval_seconds");

    yajl_gen_map_open(g);
    jw_gen_kv_bool(g, "is_active", enabled);
    jw_gen_kv_str(g, "source", source);
    jw_gen_kv_str(g, "reason", why);
    jw_gen_kv_int(g, "interval_seconds", cfg->poll_interval_s);
    /* The leader's interval, longer than configured while it backs off. */
    if (interval != NULL && leader[0] != '\0')
        jw_gen_kv_double(g, "current_interval_seconds", strtod(interval->value, NULL));
    else
        jw_gen_kv_null(g, "current_interval_seconds");
    jw_gen_kv_str(g, "leader", leader[0] != '\0' ? leader : NULL);
    jw_gen_kv_str(g, "replica", jw_poller_replica(app->poller));
    jw_gen_kv_bool(g, "is_leader", strcmp(leader, jw_poller_replica(app->poller)) == 0);
    kv_record_str(g, "last_tick_at", fields, count, "last_tick_at");
    kv_record_str(g, "last_error", fields, count, "last_error");
    write_last_tick(g, fields, count);
    jw_gen_key(g, "override");
    if (override < 0)
        yajl_gen_null(g);
    else
        yajl_gen_bool(g, override);
    jw_gen_kv_int(g, "rate_limit_per_minute", cfg->poll_rate_per_min);
    jw_gen_kv_bool(g, "stale_check", !enabled && jw_poller_stale_check_on(app->poller));
    jw_gen_kv_int(g, "stale_after_seconds", cfg->stale_after_s);
    yajl_gen_map_close(g);
}

static void on_status(void *data, jw_store_err_t err, int override, const char *leader,
                      const jw_field_t *fields, size_t count)
{
    polling_op_t *op = data;
    h2o_req_t *req = jw_reqref_get(op->ref);

    if (req != NULL && err != JW_STORE_OK) {
        jw_http_send_error(req, JW_E_REDIS_UNAVAILABLE, "the job store is unavailable; retry");
    } else if (req != NULL) {
        yajl_gen g = jw_gen_new();

        write_status(g, op->app, override, leader, fields, count);
        jw_http_send_json(req, 200, g);
        yajl_gen_free(g);
    }
    op_free(op);
}

void jw_api_polling_status(jw_app_t *app, h2o_req_t *req)
{
    jw_store_poller_status(app->store, on_status, op_new(app, req));
}

static void on_override_set(void *data, jw_store_err_t err)
{
    polling_op_t *op = data;
    h2o_req_t *req = jw_reqref_get(op->ref);

    if (err != JW_STORE_OK) {
        if (req != NULL)
            jw_http_send_error(req, JW_E_REDIS_UNAVAILABLE, "the job store is unavailable; retry");
        op_free(op);
        return;
    }
    /* This replica follows at once; the others at their next lease check,
     * within half an interval. */
    jw_poller_recheck(op->app->poller);
    jw_store_poller_status(op->app->store, on_status, op);
}

/* Reads {"enabled": true|false|null}; returns 1, 0, -1 (automatic), or -2 after a 400. */
static int parse_setting(h2o_req_t *req)
{
    static const char *const path[] = {"enabled", NULL};
    char err[128];
    yajl_val root = jw_json_parse(req->entity.base, req->entity.len, err, sizeof(err));
    yajl_val v = root != NULL && YAJL_IS_OBJECT(root) ? jw_json_get(root, path) : NULL;
    int result = -2;

    if (root == NULL)
        jw_http_send_error(req, JW_E_INVALID_BODY, "body must be JSON: %s", err);
    else if (v == NULL)
        jw_http_send_error(req, JW_E_INVALID_BODY, "body must be {\"enabled\": true, false or "
                           "null}");
    else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v))
        result = YAJL_IS_TRUE(v);
    else if (YAJL_IS_NULL(v))
        result = -1;
    else
        jw_http_send_error(req, JW_E_INVALID_PARAMETER, "enabled must be true, false or null");
    if (root != NULL)
        yajl_tree_free(root);
    return result;
}

void jw_api_polling_setting(jw_app_t *app, h2o_req_t *req)
{
    int enabled = parse_setting(req);

    if (enabled == -2)
        return;
    jw_store_poller_set_override(app->store, enabled, on_override_set, op_new(app, req));
}
