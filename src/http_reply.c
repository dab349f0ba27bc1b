/*
 * Responses: JSON bodies with a Content-Length on every reply (without one,
 * H2O closes HTTP/1.1 connections after any status but 200), the error
 * table, request references for deferred responses, and query parsing.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/http.h"
#include "jobwire/json_gen.h"

static const struct {
    int status;
    const char *code;
} error_table[] = {
#define JW_ERROR_ROW(name, status, code) {status, code},
    JW_ERROR_TABLE(JW_ERROR_ROW)
#undef JW_ERROR_ROW
};

int jw_error_status(jw_error_t error)
{
    return error_table[error].status;
}

const char *jw_error_code(jw_error_t error)
{
    return error_table[error].code;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 400 ? "OK" : "Error";
    }
}

void jw_http_send_json(h2o_req_t *req, int status, yajl_gen g)
{
    const unsigned char *buf;
    size_t len;

    yajl_gen_get_buf(g, &buf, &len);
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    req->res.content_length = len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    h2o_send_inline(req, (const char *)buf, len);
}

void jw_http_send_error(h2o_req_t *req, jw_error_t error, const char *fmt, ...)
{
    char message[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);

    /* Messages may quote request bytes: keep them printable ASCII. */
    for (char *p = message; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    }

    yajl_gen g = jw_gen_new();
    yajl_gen_map_open(g);
    jw_gen_kv_str(g, "error", jw_error_code(error));
    jw_gen_kv_str(g, "message", message);
    yajl_gen_map_close(g);

    if (jw_error_status(error) == 503)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL,
                       H2O_STRLIT("5"));
    jw_http_send_json(req, jw_error_status(error), g);
    yajl_gen_free(g);
}

/* --- deferred responses ---------------------------------------------------- */

struct jw_reqref {
    jw_app_t *app;
    h2o_req_t *req;  /* NULL once H2O disposed of the request */
    int refs;        /* one for the pool's hook, one for the caller */
};

typedef struct pool_hook {
    jw_reqref_t *ref;
} pool_hook_t;

static void drop(jw_reqref_t *ref)
{
    if (--ref->refs == 0)
        free(ref);
}

static void on_pool_dispose(void *p)
{
    pool_hook_t *hook = p;
    jw_reqref_t *ref = hook->ref;

    if (ref->req != NULL) {
        ref->req = NULL;
        ref->app->requests_in_flight--;
    }
    drop(ref);
}

jw_reqref_t *jw_reqref_new(jw_app_t *app, h2o_req_t *req)
{
    jw_reqref_t *ref = malloc(sizeof(*ref));
    if (ref == NULL)
        abort();
    ref->app = app;
    ref->req = req;
    ref->refs = 2;

    pool_hook_t *hook = h2o_mem_alloc_shared(&req->pool, sizeof(*hook), on_pool_dispose);
    hook->ref = ref;
    app->requests_in_flight++;
    return ref;
}

h2o_req_t *jw_reqref_get(jw_reqref_t *ref)
{
    return ref->req;
}

void jw_reqref_release(jw_reqref_t *ref)
{
    /* The response is sent: the request no longer counts as in flight, even
     * though H2O frees its pool a little later. */
    if (ref->req != NULL) {
        ref->req = NULL;
        ref->app->requests_in_flight--;
    }
    drop(ref);
}

/* --- request parsing -------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes src into the pool; '+' is a space in query strings. */
static h2o_iovec_t decode_component(h2o_mem_pool_t *pool, const char *src, size_t len)
{
    char *out = h2o_mem_alloc_pool(pool, len + 1);
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (src[i] == '%' && i + 2 < len && (hi = hex_value(src[i + 1])) >= 0 &&
            (lo = hex_value(src[i + 2])) >= 0) {
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[n++] = src[i] == '+' ? ' ' : src[i];
        }
    }
    out[n] = '\0';
    return h2o_iovec_init(out, n);
}

h2o_iovec_t jw_http_query_param(h2o_req_t *req, const char *name, int *found)
{
    h2o_iovec_t value = {NULL, 0};
    size_t name_len = strlen(name);

    *found = 0;
    if (req->query_at == SIZE_MAX)
        return value;

    const char *p = req->path.base + req->query_at + 1;
    const char *end = req->path.base + req->path.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *key_end = eq ? eq : stop;

        h2o_iovec_t key = decode_component(&req->pool, p, (size_t)(key_end - p));
        if (key.len == name_len && memcmp(key.base, name, name_len) == 0) {
            if (*found) {
                *found = -1;
                return value;
            }
            *found = 1;
            value = eq ? decode_component(&req->pool, eq + 1, (size_t)(stop - eq - 1))
                       : h2o_iovec_init("", 0);
        }
        p = stop + 1;
    }
    return value;
}

long jw_http_query_int(h2o_req_t *req, const char *name, long min, long max, long fallback)
{
    int found = 0;
    h2o_iovec_t text = jw_http_query_param(req, name, &found);
    long value = 0;
    int ok = found == 1 && text.len > 0 && text.len <= 9;

    if (found == 0)
        return fallback;
    for (size_t i = 0; ok && i < text.len; i++) {
        ok = text.base[i] >= '0' && text.base[i] <= '9';
        value = value * 10 + (text.base[i] - '0');
    }
    if (!ok || value < min || value > max) {
        jw_http_send_error(req, JW_E_INVALID_PARAMETER, "%s must be an integer %ld-%ld, given once",
                           name, min, max);
        return -1;
    }
    return value;
}

h2o_iovec_t jw_http_header(h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);

    if (i < 0)
        return h2o_iovec_init(NULL, 0);
    return req->headers.entries[i].value;
}
