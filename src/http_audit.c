/*
 * The audit trail's HTTP side. A mutating call gets a record when it is
 * routed (who, from where, what, which job); the response filter finishes
 * it with the status, so refusals (401, 403, 429) are recorded like
 * successes. A request that ends without a response (the client left
 * while the provider was being called) is recorded as "client_gone".
 */
#include <string.h>

#include "http_internal.h"
#include "jobwire/event.h"

typedef struct audit_ctx {
    struct audit_ctx *prev, *next;
    jw_app_t *app;
    h2o_req_t *req;
    const char *action;
    char key[JW_KEY_NAME_MAX + 1];
    const char *via;
    char ip[64];
    char job_id[160];
    int written;
} audit_ctx_t;

/* Requests with an open record. Few are in flight at once (mutating calls
 * only), so a list is enough to find one from its request. */
static audit_ctx_t *open_records;

static const char *result_name(int status)
{
    if (status == 0)
        return "client_gone";
    if (status < 400)
        return "ok";
    if (status == 401 || status == 403)
        return "refused";
    if (status == 429)
        return "rate_limited";
    return status < 500 ? "rejected" : "failed";
}

static void write_record(audit_ctx_t *c, int status)
{
    jw_audit_entry_t e = {
        .action = c->action, .key = c->key, .via = c->via, .ip = c->ip,
        .job_id = c->job_id, .status = status, .result = result_name(status),
    };

    c->written = 1;
    jw_store_audit_append(c->app->store, &e);
}

static void unlink_record(audit_ctx_t *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else if (open_records == c)
        open_records = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void on_pool_dispose(void *p)
{
    audit_ctx_t *c = p;

    if (!c->written)
        write_record(c, 0);
    unlink_record(c);
}

static void copy_text(char *out, size_t size, const char *text, size_t len)
{
    if (len >= size)
        len = size - 1;
    memcpy(out, text, len);
    out[len] = '\0';
}

void jw_http_audit_begin(jw_app_t *app, h2o_req_t *req, const char *action,
                         const jw_principal_t *p, h2o_iovec_t job_id)
{
    audit_ctx_t *c = h2o_mem_alloc_shared(&req->pool, sizeof(*c), on_pool_dispose);
    const char *name = jw_principal_name(p);

    memset(c, 0, sizeof(*c));
    c->app = app;
    c->req = req;
    c->action = action;
    c->via = jw_principal_via(p->kind);
    copy_text(c->key, sizeof(c->key), name, strlen(name));
    copy_text(c->ip, sizeof(c->ip), p->ip, strlen(p->ip));
    /* Only a well-formed id is stored: a decoded NUL or newline could
     * otherwise name another job or forge a line in a log of entries. */
    if (job_id.base != NULL && jw_job_id_valid(job_id.base, job_id.len))
        copy_text(c->job_id, sizeof(c->job_id), job_id.base, job_id.len);
    else if (job_id.base != NULL)
        copy_text(c->job_id, sizeof(c->job_id), "(invalid)", 9);

    c->next = open_records;
    if (open_records != NULL)
        open_records->prev = c;
    open_records = c;
}

static audit_ctx_t *find_record(h2o_req_t *req)
{
    for (audit_ctx_t *c = open_records; c != NULL; c = c->next) {
        if (c->req == req)
            return c;
    }
    return NULL;
}

void jw_http_audit_set_key(h2o_req_t *req, const char *name, const char *via)
{
    audit_ctx_t *c = find_record(req);

    if (c != NULL) {
        copy_text(c->key, sizeof(c->key), name, strlen(name));
        c->via = via;
    }
}

void jw_http_audit_set_job(h2o_req_t *req, const char *job_id)
{
    audit_ctx_t *c = find_record(req);

    if (c != NULL && jw_job_id_valid(job_id, strlen(job_id)))
        copy_text(c->job_id, sizeof(c->job_id), job_id, strlen(job_id));
}

void jw_http_audit_on_response(h2o_req_t *req)
{
    audit_ctx_t *c = find_record(req);

    if (c == NULL)
        return;
    /* A login refused by its rate limit is not recorded, for the same
     * reason as other refusals of unidentified callers. */
    if (strcmp(c->via, "none") == 0 && req->res.status == 429)
        c->written = 1;
    else
        write_record(c, req->res.status);
    unlink_record(c);
}
