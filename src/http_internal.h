/*
 * Declarations shared by the HTTP files: the route table's shape, the
 * caller's identity, and the hooks that access control, CORS and the
 * audit trail put into routing and into the response filter.
 */
#ifndef JOBWIRE_HTTP_INTERNAL_H
#define JOBWIRE_HTTP_INTERNAL_H

#include "jobwire/auth.h"
#include "jobwire/http.h"

/* Who may call a route. */
typedef enum jw_access {
    JW_ACCESS_OPEN = 0,   /* anyone: the webhook (signed), health, login */
    JW_ACCESS_ROLE,       /* a caller with the route's role */
    JW_ACCESS_SIGNED_IN,  /* any identified caller, whatever its roles */
    JW_ACCESS_METRICS,    /* open, unless JOBWIRE_METRICS_AUTH or no key file */
} jw_access_t;

typedef struct jw_route {
    const char *method;  /* NULL: any method */
    const char *path;    /* exact, or with one "{id}" segment */
    jw_access_t access;
    unsigned role;
    const char *action;  /* audit name of a mutating call, or NULL */
    void (*plain)(jw_app_t *app, h2o_req_t *req);
    void (*with_id)(jw_app_t *app, h2o_req_t *req, h2o_iovec_t id);
} jw_route_t;

typedef enum jw_principal_kind {
    JW_PRINCIPAL_NONE = 0, /* no credentials, or refused ones */
    JW_PRINCIPAL_KEY,      /* Authorization: Bearer */
    JW_PRINCIPAL_SESSION,  /* the dashboard's cookie */
    JW_PRINCIPAL_LOOPBACK, /* no key file, a loopback client */
    JW_PRINCIPAL_ANONYMOUS,/* no key file, JOBWIRE_ALLOW_ANONYMOUS */
} jw_principal_kind_t;

typedef struct jw_principal {
    jw_principal_kind_t kind;
    const jw_api_key_t *key;   /* KEY and SESSION */
    jw_session_t session;      /* SESSION */
    unsigned roles;
    char ip[64];               /* the client, after trusted proxies */
    int forwarded;             /* the peer is a trusted proxy */
    int bearer;                /* an Authorization header was sent */
    char bad_key_fp[17];       /* a wrong Bearer key's hash prefix, to count it once */
    /* Why credentials were refused (NONE only): an error and its reason. */
    int refused;
    jw_error_t error;
    const char *reason;
} jw_principal_t;

/* 1 for an address in 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104. */
int jw_http_ip_is_loopback(const char *ip);

/* Writes the rate limit bucket of a client address: the address, or for
 * IPv6 its /64 prefix. */
void jw_http_ip_bucket(const char *ip, char *out, size_t size);

/* Name of a principal for logs and the audit trail: the key's name,
 * "loopback", "anonymous" or "-". */
const char *jw_principal_name(const jw_principal_t *p);

/* How a principal was identified: "key", "session", "loopback",
 * "anonymous" or "none". */
const char *jw_principal_via(jw_principal_kind_t kind);

/* Identifies the caller from its Bearer key, session cookie or address. */
void jw_http_identify(jw_app_t *app, h2o_req_t *req, jw_principal_t *p);

/*
 * Checks that p may call route, CSRF token included. Returns 1 to go on,
 * or 0 after it sent the 401 or 403.
 */
int jw_http_authorize(jw_app_t *app, h2o_req_t *req, const jw_route_t *route,
                      const jw_principal_t *p);

/* Adds the Set-Cookie header that starts a session, or that ends one
 * (for logout and for cookies that will never pass again). */
void jw_http_set_session_cookie(jw_app_t *app, h2o_req_t *req, const char *value);
void jw_http_clear_session_cookie(jw_app_t *app, h2o_req_t *req);

/* CORS: responds to an OPTIONS request for a path whose routes allow
 * the methods in allow, and adds the response headers of an allowed origin. */
void jw_http_cors_preflight(jw_app_t *app, h2o_req_t *req, const char *allow);
void jw_http_cors_headers(jw_app_t *app, h2o_req_t *req);

/*
 * Audit trail: begin records who calls a mutating route; the entry is
 * written when the response starts (with its status), or as "client_gone"
 * when the request ends without one.
 */
void jw_http_audit_begin(jw_app_t *app, h2o_req_t *req, const char *action,
                         const jw_principal_t *p, h2o_iovec_t job_id);
void jw_http_audit_on_response(h2o_req_t *req);

/* Sets the key of an open record once the handler has found it (a login
 * sends its key in the body, not in a header). */
void jw_http_audit_set_key(h2o_req_t *req, const char *name, const char *via);

/* Names the job of an open record once the handler created it. */
void jw_http_audit_set_job(h2o_req_t *req, const char *job_id);

/* A step of a request that may run after a Redis reply; ctx lives in the
 * request's pool. It is not called when the client went away. */
typedef void (*jw_http_next_fn)(jw_app_t *app, h2o_req_t *req, void *ctx);

#define JW_RATE_PEEK 0x1        /* only ask; a failed key attempt is counted later */
#define JW_RATE_FAIL_CLOSED 0x2 /* 503 when Redis cannot count */

/* Counts (or with PEEK, checks) one call against bucket, then calls
 * next, or sends the 429 ("more than N <what> a minute") or the 503. */
void jw_http_rate_check(jw_app_t *app, h2o_req_t *req, const char *bucket, int per_minute,
                        int flags, const char *what, jw_http_next_fn next, void *ctx);

/* Counts one call against bucket without waiting for the reply. */
void jw_http_rate_count(jw_app_t *app, const char *bucket, int per_minute);

/*
 * Slows Bearer key guessing (http_guard.c): a failed key counts against
 * the client's login limit, and once an address failed, its later Bearer
 * requests wait for that limit before they go on to next.
 */
void jw_http_guard_bearer(jw_app_t *app, h2o_req_t *req, const jw_principal_t *p,
                          jw_http_next_fn next, void *ctx);

/* Routes one request (http_routes.c). Returns -1 to leave it to the
 * static files, 0 when it was responded to or deferred. */
int jw_http_route(jw_app_t *app, h2o_req_t *req);

#endif
