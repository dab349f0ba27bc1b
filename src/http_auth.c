/*
 * Identification and authorization of API callers: Bearer keys, the
 * dashboard's session cookie with its CSRF token, and the loopback-only
 * default without a key file.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http_internal.h"

/* Over https the cookie takes the __Host- prefix, which browsers accept
 * only from a secure origin without a Domain attribute, so a sibling
 * subdomain cannot plant its own session. */
#define SESSION_COOKIE "jw_session"
#define SESSION_COOKIE_HOST "__Host-jw_session"

const char *jw_principal_name(const jw_principal_t *p)
{
    switch (p->kind) {
    case JW_PRINCIPAL_KEY:
    case JW_PRINCIPAL_SESSION: return p->key->name;
    case JW_PRINCIPAL_LOOPBACK: return "loopback";
    case JW_PRINCIPAL_ANONYMOUS: return "anonymous";
    case JW_PRINCIPAL_NONE: break;
    }
    return "-";
}

const char *jw_principal_via(jw_principal_kind_t kind)
{
    switch (kind) {
    case JW_PRINCIPAL_KEY: return "key";
    case JW_PRINCIPAL_SESSION: return "session";
    case JW_PRINCIPAL_LOOPBACK: return "loopback";
    case JW_PRINCIPAL_ANONYMOUS: return "anonymous";
    case JW_PRINCIPAL_NONE: break;
    }
    return "none";
}

static void reject_with(jw_principal_t *p, jw_error_t error, const char *reason)
{
    p->kind = JW_PRINCIPAL_NONE;
    p->refused = 1;
    p->error = error;
    p->reason = reason;
}

/*
 * Without a key file: everyone when allowed, else loopback clients only.
 * A loopback peer that names a client in a relay header without being a
 * trusted proxy is a proxy on this host relaying someone else, so it is
 * not taken for a local client.
 */
static void identify_keyless(jw_app_t *app, h2o_req_t *req, jw_principal_t *p)
{
    /* Headers by which proxies name the client they relay for. */
    static const char *const relay_headers[] = {"x-forwarded-for", "forwarded", "x-real-ip",
                                                "via", "x-forwarded-host", "x-client-ip",
                                                "true-client-ip"};
    int relayed = 0;

    for (size_t i = 0; !p->forwarded && i < sizeof(relay_headers) / sizeof(relay_headers[0]); i++)
        relayed |= jw_http_header(req, relay_headers[i]).base != NULL;

    if (app->cfg->allow_anonymous) {
        p->kind = JW_PRINCIPAL_ANONYMOUS;
        p->roles = JW_ROLE_ALL;
    } else if (jw_http_ip_is_loopback(p->ip) && !relayed) {
        p->kind = JW_PRINCIPAL_LOOPBACK;
        p->roles = JW_ROLE_ALL;
    } else {
        reject_with(p, JW_E_LOOPBACK_ONLY,
                    "no API keys are configured, so only loopback clients are served (requests "
                    "relayed by an untrusted proxy are not); set JOBWIRE_API_KEYS_FILE, or "
                    "JOBWIRE_ALLOW_ANONYMOUS=true on a trusted network");
    }
}

static void identify_bearer(jw_app_t *app, h2o_iovec_t header, jw_principal_t *p)
{
    const char *token;
    size_t len;

    p->bearer = 1;
    if (!jw_bearer_token(header.base, header.len, &token, &len)) {
        reject_with(p, JW_E_INVALID_API_KEY, "the Authorization header must be \"Bearer <key>\"");
        return;
    }
    p->key = jw_keyring_find(app->keys, token, len);
    if (p->key == NULL) {
        char hash[80];
        jw_hash_key(token, len, hash, sizeof(hash));
        snprintf(p->bad_key_fp, sizeof(p->bad_key_fp), "%.16s", hash + 7);
        reject_with(p, JW_E_INVALID_API_KEY, "the API key is not known");
        return;
    }
    p->kind = JW_PRINCIPAL_KEY;
    p->roles = p->key->roles;
}

static int cookie_secure(jw_app_t *app);

static const char *cookie_name(jw_app_t *app)
{
    return cookie_secure(app) ? SESSION_COOKIE_HOST : SESSION_COOKIE;
}

static int session_cookie(jw_app_t *app, h2o_req_t *req, const char **value, size_t *len)
{
    const char *name = cookie_name(app);

    for (ssize_t i = -1; (i = h2o_find_header(&req->headers, H2O_TOKEN_COOKIE, i)) != -1;) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (jw_cookie_find(v.base, v.len, name, value, len))
            return 1;
    }
    return 0;
}

static void identify_session(jw_app_t *app, const char *value, size_t len, jw_principal_t *p)
{
    const jw_api_key_t *key;
    jw_session_result_t r =
        jw_session_check(app->session_secret, app->session_secret_len, app->keys, value, len,
                         (int64_t)time(NULL), &key, &p->session);

    if (r != JW_SESSION_OK) {
        reject_with(p, JW_E_INVALID_SESSION, jw_session_result_message(r));
        return;
    }
    p->kind = JW_PRINCIPAL_SESSION;
    p->key = key;
    p->roles = key->roles;
}

void jw_http_identify(jw_app_t *app, h2o_req_t *req, jw_principal_t *p)
{
    const char *cookie;
    size_t len;

    memset(p, 0, sizeof(*p));
    p->forwarded = jw_http_client_ip(app, req, p->ip, sizeof(p->ip));
    if (app->keys == NULL) {
        identify_keyless(app, req, p);
        return;
    }

    /* A Bearer key wins over a cookie: scripts may run in a browser too. */
    h2o_iovec_t auth = jw_http_header(req, "authorization");
    if (auth.base != NULL)
        identify_bearer(app, auth, p);
    else if (session_cookie(app, req, &cookie, &len))
        identify_session(app, cookie, len, p);
    else
        reject_with(p, JW_E_UNAUTHORIZED,
                    "this endpoint needs an API key: send \"Authorization: Bearer <key>\", or "
                    "log in on the dashboard");
}

static int cookie_secure(jw_app_t *app)
{
    const jw_config_t *cfg = app->cfg;

    if (cfg->cookie_secure >= 0)
        return cfg->cookie_secure;
    return cfg->public_url != NULL && strncasecmp(cfg->public_url, "https://", 8) == 0;
}

static void add_set_cookie(jw_app_t *app, h2o_req_t *req, const char *value, int max_age)
{
    char text[JW_SESSION_MAX + 128];
    int n = snprintf(text, sizeof(text), "%s=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s",
                     cookie_name(app), value, max_age, cookie_secure(app) ? "; Secure" : "");

    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL,
                   h2o_strdup(&req->pool, text, (size_t)n).base, (size_t)n);
}

void jw_http_set_session_cookie(jw_app_t *app, h2o_req_t *req, const char *value)
{
    add_set_cookie(app, req, value, app->cfg->session_ttl_s);
}

void jw_http_clear_session_cookie(jw_app_t *app, h2o_req_t *req)
{
    add_set_cookie(app, req, "", 0);
}

static void send_rejection(jw_app_t *app, h2o_req_t *req, const jw_principal_t *p)
{
    if (jw_error_status(p->error) == 401)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer realm=\"jobwire\""));
    /* A cookie that will never pass again is removed from the browser. */
    if (p->error == JW_E_INVALID_SESSION)
        jw_http_clear_session_cookie(app, req);
    app->auth_refusals[p->error]++;
    jw_http_send_error(req, p->error, "%s", p->reason);
}

static int safe_method(h2o_req_t *req)
{
    return h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
           h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
}

static int csrf_ok(jw_app_t *app, h2o_req_t *req, const jw_principal_t *p)
{
    char expected[JW_CSRF_MAX];
    h2o_iovec_t got = jw_http_header(req, "x-csrf-token");

    if (got.base == NULL)
        return 0;
    jw_session_csrf(app->session_secret, app->session_secret_len, &p->session, expected,
                    sizeof(expected));
    return jw_ct_equal(got.base, got.len, expected, strlen(expected));
}

int jw_http_authorize(jw_app_t *app, h2o_req_t *req, const jw_route_t *route,
                      const jw_principal_t *p)
{
    unsigned need = route->role;
    char roles[32];

    if (route->access == JW_ACCESS_OPEN)
        return 1;
    /* Only an explicit "false" opens /metrics; without a key file the
     * loopback rule applies as everywhere. */
    if (route->access == JW_ACCESS_METRICS && app->keys != NULL && app->cfg->metrics_auth == 0)
        return 1;
    if (route->access == JW_ACCESS_SIGNED_IN)
        need = 0;

    if (p->kind == JW_PRINCIPAL_NONE) {
        send_rejection(app, req, p);
        return 0;
    }
    if ((p->roles & need) != need) {
        jw_roles_format(need, roles, sizeof(roles));
        app->auth_refusals[JW_E_FORBIDDEN]++;
        jw_http_send_error(req, JW_E_FORBIDDEN, "the key %s does not have the %s role",
                           jw_principal_name(p), roles);
        return 0;
    }
    if (p->kind == JW_PRINCIPAL_SESSION && !safe_method(req) && !csrf_ok(app, req, p)) {
        app->auth_refusals[JW_E_CSRF_FAILED]++;
        jw_http_send_error(req, JW_E_CSRF_FAILED,
                           "a change made with a session cookie needs the X-CSRF-Token header "
                           "that /api/auth/session returns");
        return 0;
    }
    return 1;
}
