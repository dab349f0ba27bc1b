/*
 * The access control endpoints: dashboard login and logout, "who am I"
 * for the page (with its CSRF token), and the audit trail.
 */
#define _GNU_SOURCE /* memmem */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_internal.h"
#include "jobwire/clock.h"
#include "jobwire/event.h"
#include "jobwire/hub.h"
#include "jobwire/json.h"
#include "jobwire/json_gen.h"
#include "jobwire/log.h"

/* A login body is {"key": "..."}; anything much larger is not one. */
#define LOGIN_BODY_MAX 4096

#define AUDIT_LIMIT_DEFAULT 100
#define AUDIT_LIMIT_MAX 1000

static void gen_roles(yajl_gen g, unsigned roles)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{JW_ROLE_READ, "read"}, {JW_ROLE_OPERATE, "operate"}, {JW_ROLE_SUBMIT, "submit"}};

    jw_gen_key(g, "roles");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (roles & names[i].bit)
            jw_gen_str(g, names[i].name);
    }
    yajl_gen_array_close(g);
}

/* {"authenticated", "name", "via", "roles", "csrf_token", "expires_at",
 * "keys_configured"}: what the page needs to know about its caller. */
static void send_session(jw_app_t *app, h2o_req_t *req, const jw_principal_t *p)
{
    yajl_gen g = jw_gen_new();
    char csrf[JW_CSRF_MAX], expires[48];
    int session = p->kind == JW_PRINCIPAL_SESSION;

    yajl_gen_map_open(g);
    jw_gen_kv_bool(g, "authenticated", 1);
    jw_gen_kv_str(g, "name", jw_principal_name(p));
    jw_gen_kv_str(g, "via", jw_principal_via(p->kind));
    gen_roles(g, p->roles);
    if (session) {
        jw_session_csrf(app->session_secret, app->session_secret_len, &p->session, csrf,
                        sizeof(csrf));
        jw_clock_iso_from_us((long long)p->session.expires_at * 1000000, expires);
    }
    jw_gen_kv_str(g, "csrf_token", session ? csrf : NULL);
    jw_gen_kv_str(g, "expires_at", session ? expires : NULL);
    jw_gen_kv_bool(g, "keys_configured", app->keys != NULL);
    yajl_gen_map_close(g);
    jw_http_send_json(req, 200, g);
    yajl_gen_free(g);
}

void jw_api_session(jw_app_t *app, h2o_req_t *req)
{
    jw_principal_t p;

    jw_http_identify(app, req, &p);
    send_session(app, req, &p);
}

/* Reads {"key": "<API key>"}; returns the key borrowed from root, or NULL
 * after a 400. */
static const char *login_key(h2o_req_t *req, yajl_val *root)
{
    static const char *const path[] = {"key", NULL};
    char err[128];
    const char *key = NULL;

    *root = NULL;
    /* JSON only: a cross-site form can post text/plain without a
     * preflight, and would log the browser in with the attacker's key. */
    h2o_iovec_t type = jw_http_header(req, "content-type");
    if (type.base == NULL || type.len < 16 || strncasecmp(type.base, "application/json", 16) != 0 ||
        (type.len > 16 && type.base[16] != ';' && type.base[16] != ' ')) {
        jw_http_send_error(req, JW_E_UNSUPPORTED_MEDIA_TYPE,
                           "a login body must be sent as Content-Type: application/json");
        return NULL;
    }
    if (req->entity.len > LOGIN_BODY_MAX) {
        jw_http_send_error(req, JW_E_INVALID_BODY, "a login body is at most %d bytes",
                           LOGIN_BODY_MAX);
        return NULL;
    }
    *root = jw_json_parse(req->entity.base, req->entity.len, err, sizeof(err));
    if (*root == NULL)
        jw_http_send_error(req, JW_E_INVALID_BODY, "body must be JSON: %s", err);
    else if ((key = jw_json_get_string(*root, path)) == NULL || key[0] == '\0')
        jw_http_send_error(req, JW_E_INVALID_BODY, "body must be {\"key\": \"<API key>\"}");
    else if (memmem(req->entity.base, req->entity.len, "\\u0000", 6) != NULL) {
        /* yajl ends the decoded string at the NUL, which would let
         * "<key>\u0000<anything>" pass as the key. */
        jw_http_send_error(req, JW_E_INVALID_BODY, "the key must not contain a NUL character");
        key = NULL;
    }
    return key != NULL && key[0] != '\0' ? key : NULL;
}

void jw_api_login(jw_app_t *app, h2o_req_t *req)
{
    yajl_val root;
    char cookie[JW_SESSION_MAX];
    jw_principal_t p;

    if (app->keys == NULL) {
        jw_http_send_error(req, JW_E_AUTH_NOT_CONFIGURED,
                           "no API keys are configured, so there is nothing to log in with; "
                           "set JOBWIRE_API_KEYS_FILE");
        return;
    }
    const char *key_text = login_key(req, &root);
    const jw_api_key_t *key = key_text ? jw_keyring_find(app->keys, key_text, strlen(key_text))
                                       : NULL;
    if (root != NULL)
        yajl_tree_free(root);
    if (key_text == NULL)
        return;

    jw_http_identify(app, req, &p);
    if (key == NULL) {
        jw_info("auth", "login refused: unknown key ip=%s", p.ip);
        jw_http_send_error(req, JW_E_INVALID_API_KEY, "the API key is not known");
        return;
    }

    int64_t expires = (int64_t)time(NULL) + app->cfg->session_ttl_s;
    jw_session_issue(app->session_secret, app->session_secret_len, key, expires, cookie,
                     sizeof(cookie));
    const jw_api_key_t *same;
    jw_session_check(app->session_secret, app->session_secret_len, app->keys, cookie,
                     strlen(cookie), (int64_t)time(NULL), &same, &p.session);
    p.kind = JW_PRINCIPAL_SESSION;
    p.key = key;
    p.roles = key->roles;

    jw_info("auth", "login key=%s ip=%s", key->name, p.ip);
    jw_http_audit_set_key(req, key->name, "session");
    jw_http_set_session_cookie(app, req, cookie);
    send_session(app, req, &p);
}

void jw_api_logout(jw_app_t *app, h2o_req_t *req)
{
    yajl_gen g = jw_gen_new();

    /* The cookie is removed from the browser; as sessions are stateless,
     * a copy taken before stays valid until it expires (see README). */
    jw_http_clear_session_cookie(app, req);
    yajl_gen_map_open(g);
    jw_gen_kv_bool(g, "logged_out", 1);
    yajl_gen_map_close(g);
    jw_http_send_json(req, 200, g);
    yajl_gen_free(g);
}

/* --- GET /api/cloud/audit ------------------------------------------------ */

static const char *field(const jw_entry_t *e, const char *name)
{
    for (size_t i = 0; i < e->count; i++) {
        if (strlen(name) == e->fields[i].name_len &&
            memcmp(e->fields[i].name, name, e->fields[i].name_len) == 0)
            return e->fields[i].value;
    }
    return NULL;
}

static void gen_entry(yajl_gen g, const jw_entry_t *e)
{
    char time_text[48];
    unsigned long long ms = strtoull(e->id, NULL, 10);
    const char *status = field(e, "status");
    const char *job = field(e, "job_id");

    jw_clock_iso_from_us((long long)ms * 1000, time_text);
    yajl_gen_map_open(g);
    jw_gen_kv_str(g, "id", e->id);
    jw_gen_kv_str(g, "time", time_text);
    jw_gen_kv_str(g, "action", field(e, "action"));
    jw_gen_kv_str(g, "key", field(e, "key"));
    jw_gen_kv_str(g, "via", field(e, "via"));
    jw_gen_kv_str(g, "ip", field(e, "ip"));
    jw_gen_kv_str(g, "job_id", job != NULL && job[0] != '\0' ? job : NULL);
    jw_gen_kv_int(g, "status", status ? strtol(status, NULL, 10) : 0);
    jw_gen_kv_str(g, "result", field(e, "result"));
    yajl_gen_map_close(g);
}

typedef struct audit_op {
    jw_reqref_t *ref;
    int limit;
} audit_op_t;

static void on_audit(void *data, jw_store_err_t err, const jw_entry_t *entries, size_t count,
                     const char *cursor)
{
    audit_op_t *op = data;
    h2o_req_t *req = jw_reqref_get(op->ref);

    (void)cursor;
    if (req != NULL && err != JW_STORE_OK) {
        jw_http_send_error(req, JW_E_REDIS_UNAVAILABLE, "the audit trail is unavailable; retry");
    } else if (req != NULL) {
        yajl_gen g = jw_gen_new();
        yajl_gen_map_open(g);
        jw_gen_key(g, "entries");
        yajl_gen_array_open(g);
        for (size_t i = 0; i < count; i++)
            gen_entry(g, &entries[i]);
        yajl_gen_array_close(g);
        /* A full page may have more behind it: "before" fetches the next. */
        jw_gen_kv_str(g, "next_before", count == (size_t)op->limit ? entries[count - 1].id : NULL);
        yajl_gen_map_close(g);
        jw_http_send_json(req, 200, g);
        yajl_gen_free(g);
    }
    jw_reqref_release(op->ref);
    free(op);
}

/* Reads ?limit (1-1000) and ?before (a stream id); 0, or -1 after a 400. */
static int audit_query(h2o_req_t *req, int *limit, char *before, size_t size)
{
    int found;
    uint64_t ms, seq;
    h2o_iovec_t v = jw_http_query_param(req, "limit", &found);

    *limit = AUDIT_LIMIT_DEFAULT;
    if (found != 0) {
        char text[16], *end = NULL;
        snprintf(text, sizeof(text), "%.*s", (int)(v.len < 15 ? v.len : 15), v.base);
        long n = found == 1 && v.len > 0 && v.len < 15 ? strtol(text, &end, 10) : 0;
        if (end == NULL || *end != '\0' || n < 1 || n > AUDIT_LIMIT_MAX) {
            jw_http_send_error(req, JW_E_INVALID_PARAMETER, "limit must be 1-%d", AUDIT_LIMIT_MAX);
            return -1;
        }
        *limit = (int)n;
    }

    before[0] = '\0';
    v = jw_http_query_param(req, "before", &found);
    if (found != 0) {
        if (found != 1 || jw_stream_id_parse(v.base, v.len, &ms, &seq) != 0) {
            jw_http_send_error(req, JW_E_INVALID_PARAMETER,
                               "before must be an entry id such as 1733300000000-0");
            return -1;
        }
        snprintf(before, size, "%" PRIu64 "-%" PRIu64, ms, seq);
    }
    return 0;
}

void jw_api_audit(jw_app_t *app, h2o_req_t *req)
{
    char before[64];
    int limit;

    if (audit_query(req, &limit, before, sizeof(before)) != 0)
        return;
    audit_op_t *op = malloc(sizeof(*op));
    if (op == NULL)
        abort();
    op->ref = jw_reqref_new(app, req);
    op->limit = limit;
    jw_store_audit_range(app->store, before[0] ? before : NULL, limit, on_audit, op);
}
