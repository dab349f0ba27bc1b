/*
 * The route table: every API endpoint with its method, who may call it and
 * its audit name, and the dispatch that runs identification, authorization,
 * the rate limit and the handler in that order.
 */
#include <stdio.h>
#include <string.h>

#include "http_internal.h"

#define R_READ JW_ACCESS_ROLE, JW_ROLE_READ
#define R_OPERATE JW_ACCESS_ROLE, JW_ROLE_OPERATE
#define R_SUBMIT JW_ACCESS_ROLE, JW_ROLE_SUBMIT
#define R_OPEN JW_ACCESS_OPEN, 0

/* clang-format off */
static const jw_route_t routes[] = {
    {"POST", "/api/webhooks/replicate", R_OPEN, NULL, jw_webhook_replicate, NULL},
    {NULL, "/healthz", R_OPEN, NULL, jw_api_health, NULL},
    {NULL, "/readyz", R_OPEN, NULL, jw_api_ready, NULL},
    {NULL, "/metrics", JW_ACCESS_METRICS, JW_ROLE_READ, NULL, jw_api_metrics, NULL},
    {"POST", "/api/auth/login", R_OPEN, "auth.login", jw_api_login, NULL},
    /* Signed in, so a cookie session needs its CSRF token: another site
     * cannot log the browser out. */
    {"POST", "/api/auth/logout", JW_ACCESS_SIGNED_IN, 0, "auth.logout", jw_api_logout, NULL},
    {"GET", "/api/auth/session", JW_ACCESS_SIGNED_IN, 0, NULL, jw_api_session, NULL},
    {"GET", "/api/events", R_READ, NULL, jw_api_events, NULL},
    {"GET", "/api/cloud/jobs", R_READ, NULL, jw_api_list_jobs, NULL},
    {"POST", "/api/cloud/jobs", R_SUBMIT, "job.submit", jw_api_submit_job, NULL},
    {"GET", "/api/cloud/queue", R_READ, NULL, jw_api_queue, NULL},
    {"POST", "/api/cloud/jobs/sync", R_OPERATE, "jobs.sync", jw_api_sync, NULL},
    {"GET", "/api/cloud/jobs/{id}", R_READ, NULL, NULL, jw_api_get_job},
    {"DELETE", "/api/cloud/jobs/{id}", R_OPERATE, "job.delete", NULL, jw_api_delete_job},
    {"GET", "/api/cloud/jobs/{id}/inline-progress", R_READ, NULL, NULL, jw_api_inline_progress},
    {"GET", "/api/cloud/jobs/{id}/logs", R_READ, NULL, NULL, jw_api_job_logs},
    {"POST", "/api/cloud/jobs/{id}/cancel", R_OPERATE, "job.cancel", NULL, jw_api_cancel_job},
    {"GET", "/api/cloud/providers/replicate/validate", R_READ, NULL, jw_api_validate, NULL},
    {"GET", "/api/cloud/polling/status", R_READ, NULL, jw_api_polling_status, NULL},
    {"PUT", "/api/cloud/polling/setting", R_OPERATE, "polling.setting", jw_api_polling_setting,
     NULL},
    {"GET", "/api/cloud/metrics", R_READ, NULL, jw_api_cloud_metrics, NULL},
    {"GET", "/api/cloud/audit", R_OPERATE, NULL, jw_api_audit, NULL},
};
/* clang-format on */

#define ROUTE_COUNT (sizeof(routes) / sizeof(routes[0]))

/* Compares text with expected, allowing one trailing slash: Replicate
 * does not follow redirects, so "/x/" is served as "/x". */
static int same_path(const char *text, size_t len, const char *expected, size_t elen)
{
    if (len == elen + 1 && text[elen] == '/')
        len--;
    return len == elen && memcmp(text, expected, elen) == 0;
}

/* Matches path against a route's pattern; sets *id for "{id}" ones.
 * Returns 2 for an exact match, 1 for a pattern match, 0 for none. */
static int match_path(const char *pattern, h2o_iovec_t path, h2o_iovec_t *id)
{
    const char *hole = strstr(pattern, "{id}");

    if (hole == NULL)
        return same_path(path.base, path.len, pattern, strlen(pattern)) ? 2 : 0;

    size_t plen = (size_t)(hole - pattern);
    if (path.len <= plen || memcmp(path.base, pattern, plen) != 0)
        return 0;
    const char *start = path.base + plen;
    const char *end = memchr(start, '/', path.len - plen);
    if (end == NULL)
        end = path.base + path.len;
    if (end == start)
        return 0;

    const char *suffix = hole + 4;
    size_t rest = path.len - (size_t)(end - path.base);
    if (!same_path(end, rest, suffix, strlen(suffix)))
        return 0;
    *id = h2o_iovec_init(start, (size_t)(end - start));
    return 1;
}

/* HEAD is served wherever GET is, and H2O drops the body on the way out.
 * The event stream is the exception: a HEAD would hold a stream slot open
 * for a body that is never read. */
static int method_matches(const jw_route_t *r, h2o_req_t *req)
{
    h2o_iovec_t m = req->method;

    if (r->method == NULL || h2o_memis(m.base, m.len, r->method, strlen(r->method)))
        return 1;
    return h2o_memis(m.base, m.len, H2O_STRLIT("HEAD")) && strcmp(r->method, "GET") == 0 &&
           r->plain != jw_api_events;
}

typedef struct lookup {
    const jw_route_t *route; /* the route for this method, or NULL */
    h2o_iovec_t id;
    int path_known;          /* some route serves this path */
    char allow[64];          /* the methods of the path, for 405 and OPTIONS */
} lookup_t;

/* Finds the route. An exact path wins over a pattern, so "/jobs/sync"
 * is never read as the job "sync". */
static void find_route(h2o_req_t *req, lookup_t *out)
{
    int best = 0;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < ROUTE_COUNT; i++) {
        h2o_iovec_t id = {NULL, 0};
        int m = match_path(routes[i].path, req->path_normalized, &id);
        if (m == 0 || m < best)
            continue;
        if (m > best) {
            best = m;
            out->route = NULL;
            out->allow[0] = '\0';
        }
        out->path_known = 1;
        const char *method = routes[i].method ? routes[i].method : "GET";
        size_t used = strlen(out->allow);
        snprintf(out->allow + used, sizeof(out->allow) - used, "%s%s", used ? ", " : "", method);
        if (method_matches(&routes[i], req) && out->route == NULL) {
            out->route = &routes[i];
            out->id = id;
        }
    }
}

/* A routed request between its steps, kept in the request's pool. */
typedef struct dispatch {
    const jw_route_t *route;
    h2o_iovec_t id;
    jw_principal_t principal;
} dispatch_t;

static void run_handler(jw_app_t *app, h2o_req_t *req, void *ctx)
{
    dispatch_t *d = ctx;

    if (d->route->with_id != NULL)
        d->route->with_id(app, req, d->id);
    else
        d->route->plain(app, req);
}

static void method_not_allowed(h2o_req_t *req, const char *allow)
{
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                   h2o_strdup(&req->pool, allow, SIZE_MAX).base, strlen(allow));
    jw_http_send_error(req, JW_E_METHOD_NOT_ALLOWED, "%.*s is not allowed here; use %s",
                       (int)req->method.len, req->method.base, allow);
}

/* Which rate limit a mutating call counts against, if any: logins per
 * client address, other calls per key (or per address without keys). */
static int rate_bucket(jw_app_t *app, const jw_route_t *route, const jw_principal_t *p,
                       char *bucket, size_t size)
{
    const jw_config_t *cfg = app->cfg;
    char client[80];

    jw_http_ip_bucket(p->ip, client, sizeof(client));
    if (strcmp(route->action, "auth.login") == 0) {
        snprintf(bucket, size, "login:%s", client);
        return cfg->login_rate_per_min;
    }
    if (strcmp(route->action, "auth.logout") == 0)
        return 0;
    if (p->key != NULL)
        snprintf(bucket, size, "key:%s", p->key->name);
    else
        snprintf(bucket, size, "ip:%s", client);
    return cfg->rate_limit_per_min;
}

static int unrouted(h2o_req_t *req, const lookup_t *l, jw_app_t *app)
{
    if (l->path_known && h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS")))
        jw_http_cors_preflight(app, req, l->allow);
    else if (l->path_known)
        method_not_allowed(req, l->allow);
    else if (jw_http_static_request(req))
        return -1; /* the dashboard's files, served by the next handler */
    else
        jw_http_send_error(req, JW_E_NOT_FOUND, "no route for %.*s %.*s", (int)req->method.len,
                           req->method.base, (int)req->path_normalized.len,
                           req->path_normalized.base);
    return 0;
}

/* After identification (and the key guessing check): audit, roles and
 * CSRF, the rate limit, then the handler. */
static void authorized_step(jw_app_t *app, h2o_req_t *req, void *ctx)
{
    dispatch_t *d = ctx;
    const jw_route_t *route = d->route;
    char bucket[JW_KEY_NAME_MAX + 80];

    /* Refusals of callers without an identity are counted in /metrics,
     * not audited: anyone could flood them and push real entries out of
     * the capped stream. Logins are the exception, as they are limited
     * per address before they reach the handler. */
    int login = route->action != NULL && strcmp(route->action, "auth.login") == 0;
    if (route->action != NULL && (d->principal.kind != JW_PRINCIPAL_NONE || login))
        jw_http_audit_begin(app, req, route->action, &d->principal, d->id);
    if (!jw_http_authorize(app, req, route, &d->principal))
        return;

    int per_minute = route->action != NULL
                         ? rate_bucket(app, route, &d->principal, bucket, sizeof(bucket))
                         : 0;
    if (per_minute == 0)
        run_handler(app, req, d);
    else if (login)
        jw_http_rate_check(app, req, bucket, per_minute, JW_RATE_FAIL_CLOSED, "login attempts",
                           run_handler, d);
    else
        jw_http_rate_check(app, req, bucket, per_minute, 0, "changes", run_handler, d);
}

int jw_http_route(jw_app_t *app, h2o_req_t *req)
{
    lookup_t l;

    find_route(req, &l);
    if (l.route == NULL)
        return unrouted(req, &l, app);

    dispatch_t *d = h2o_mem_alloc_pool(&req->pool, sizeof(*d));
    d->route = l.route;
    d->id = l.id;

    /* Webhooks and health checks skip identification: they need none. */
    if (l.route->access == JW_ACCESS_OPEN && l.route->action == NULL) {
        run_handler(app, req, d);
        return 0;
    }
    jw_http_identify(app, req, &d->principal);
    jw_http_guard_bearer(app, req, &d->principal, authorized_step, d);
    return 0;
}
