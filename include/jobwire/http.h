/*
 * The HTTP front end on H2O (libuv flavour): the listener, routing, the
 * JSON error table, and helpers for responding later, after Redis replied.
 * Only files named http*.c, api_*.c and webhook.c include H2O.
 */
#ifndef JOBWIRE_HTTP_H
#define JOBWIRE_HTTP_H

#include <h2o.h>
#include <stddef.h>
#include <yajl/yajl_gen.h>

#include "jobwire/app.h"
#include "jobwire/errors.h"

typedef struct jw_http jw_http_t;

/* Binds the listener (SO_REUSEPORT, so several processes may share a
 * port) and starts accepting. Returns NULL with a reason in err. */
jw_http_t *jw_http_start(jw_app_t *app, char *err, size_t errlen);

/* Stops accepting new connections; requests in flight go on. */
void jw_http_stop_accepting(jw_http_t *http);

/* Releases the H2O context; call after the loop stopped serving. */
void jw_http_free(jw_http_t *http);

/* Sends a JSON body made with g (which the caller still frees). */
void jw_http_send_json(h2o_req_t *req, int status, yajl_gen g);

/* Sends {"error": code, "message": message} with the error's status. */
void jw_http_send_error(h2o_req_t *req, jw_error_t error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * A reference to a request whose response is sent later. If the client goes
 * away first, H2O frees the request and jw_reqref_get() returns NULL.
 * Every reference must be released once with jw_reqref_release().
 */
typedef struct jw_reqref jw_reqref_t;

jw_reqref_t *jw_reqref_new(jw_app_t *app, h2o_req_t *req);
h2o_req_t *jw_reqref_get(jw_reqref_t *ref);
void jw_reqref_release(jw_reqref_t *ref);

/* Returns the value of a query parameter, percent-decoded into the
 * request's pool; *found is 0 when absent, -1 when given twice. */
h2o_iovec_t jw_http_query_param(h2o_req_t *req, const char *name, int *found);

/*
 * Reads an integer query parameter in [min, max] (min >= 0): fallback
 * when absent, or -1 after sending a 400 that names it when it is not
 * such a number or is given twice.
 */
long jw_http_query_int(h2o_req_t *req, const char *name, long min, long max, long fallback);

/* Returns a request header's value, or {NULL, 0}. */
h2o_iovec_t jw_http_header(h2o_req_t *req, const char *name);

/* The dashboard's static files (http_static.c): the file handler, cache
 * headers and gzip, registered on path after the router. */
void jw_http_static_register(h2o_pathconf_t *path, const jw_config_t *cfg);

/* 1 for a GET or HEAD outside /api/ and the health paths: the router
 * leaves it to the static files. */
int jw_http_static_request(h2o_req_t *req);

/* Route handlers: each responds to the request, now or later. */
void jw_api_health(jw_app_t *app, h2o_req_t *req);
void jw_api_ready(jw_app_t *app, h2o_req_t *req);
void jw_api_metrics(jw_app_t *app, h2o_req_t *req);
void jw_api_list_jobs(jw_app_t *app, h2o_req_t *req);
void jw_api_get_job(jw_app_t *app, h2o_req_t *req, h2o_iovec_t job_id);
void jw_api_inline_progress(jw_app_t *app, h2o_req_t *req, h2o_iovec_t job_id);
void jw_webhook_replicate(jw_app_t *app, h2o_req_t *req);
void jw_api_events(jw_app_t *app, h2o_req_t *req);

/* Provider endpoints (api_provider.c). */
void jw_api_sync(jw_app_t *app, h2o_req_t *req);
void jw_api_validate(jw_app_t *app, h2o_req_t *req);
void jw_api_cancel_job(jw_app_t *app, h2o_req_t *req, h2o_iovec_t job_id);
void jw_api_job_logs(jw_app_t *app, h2o_req_t *req, h2o_iovec_t job_id);
void jw_api_delete_job(jw_app_t *app, h2o_req_t *req, h2o_iovec_t job_id);

/* Access control (api_auth.c): dashboard login, logout, the caller's
 * session, and the audit trail. */
void jw_api_login(jw_app_t *app, h2o_req_t *req);
void jw_api_logout(jw_app_t *app, h2o_req_t *req);
void jw_api_session(jw_app_t *app, h2o_req_t *req);
void jw_api_audit(jw_app_t *app, h2o_req_t *req);

/* Writes the client's address into out: the peer, or for a trusted
 * proxy the first untrusted X-Forwarded-For entry. "-" when unknown.
 * Returns 1 when the peer is a trusted proxy, else 0. */
int jw_http_client_ip(jw_app_t *app, h2o_req_t *req, char *out, size_t size);
/* The submission queue (api_queue.c). */
void jw_api_submit_job(jw_app_t *app, h2o_req_t *req);
void jw_api_queue(jw_app_t *app, h2o_req_t *req);

/* Poller and dashboard metrics (api_polling.c, api_metrics.c). */
void jw_api_polling_status(jw_app_t *app, h2o_req_t *req);
void jw_api_polling_setting(jw_app_t *app, h2o_req_t *req);
void jw_api_cloud_metrics(jw_app_t *app, h2o_req_t *req);

/*
 * Refreshes every local active job from its provider and applies the
 * results, then calls done; error is NULL, or a message saying what failed
 * (the list is still served). Used by GET /api/cloud/jobs?sync_active=true.
 */
void jw_api_refresh_active(jw_app_t *app, void (*done)(void *data, const char *error),
                           void *data);

#endif
