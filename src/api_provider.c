/*
 * Provider endpoints: sync, validate, cancel, logs, delete, and the
 * refresh behind sync_active. NOTE: not built yet: each answers 501.
 */
#include "jobwire/http.h"

static void not_implemented(h2o_req_t *req)
{
    jw_http_send_error(req, JW_E_NOT_IMPLEMENTED, "this endpoint is not available yet");
}

void jw_api_sync(jw_app_t *app, h2o_req_t *req)
{
    (void)app;
    not_implemented(req);
}

void jw_api_validate(jw_app_t *app, h2o_req_t *req)
{
    (void)app;
    not_implemented(req);
}

void jw_api_cancel_job(jw_app_t *app, h2o_req_t *req, h2o_iovec_t job_id)
{
    (void)app;
    (void)job_id;
    not_implemented(req);
}

void jw_api_job_logs(jw_app_t *app, h2o_req_t *req, h2o_iovec_t job_id)
{
    (void)app;
    (void)job_id;
    not_implemented(req);
}

void jw_api_delete_job(jw_app_t *app, h2o_req_t *req, h2o_iovec_t job_id)
{
    (void)app;
    (void)job_id;
    not_implemented(req);
}

void jw_api_refresh_active(jw_app_t *app, void (*done)(void *data, const char *error),
                           void *data)
{
    (void)app;
    done(data, "provider refresh is not available yet");
}
