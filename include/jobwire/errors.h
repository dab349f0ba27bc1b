/*
 * Every error the HTTP API returns, in one table: the code used in C, the
 * HTTP status, and the stable machine code of the JSON body
 * {"error": "<code>", "message": "<what was wrong>"}.
 */
#ifndef JOBWIRE_ERRORS_H
#define JOBWIRE_ERRORS_H

#define JW_ERROR_TABLE(X)                                                                          \
    X(INVALID_PARAMETER, 400, "invalid_parameter")                                                 \
    X(MISSING_HEADER, 400, "missing_header")                                                       \
    X(INVALID_HEADER, 400, "invalid_header")                                                       \
    X(INVALID_BODY, 400, "invalid_body")                                                           \
    X(BAD_REQUEST, 400, "bad_request")                                                             \
    X(INVALID_FIELD, 400, "invalid_field")                                                         \
    X(JOB_ACTIVE, 400, "job_active")                                                               \
    X(AUTH_NOT_CONFIGURED, 400, "auth_not_configured")                                             \
    X(INVALID_SIGNATURE, 401, "invalid_signature")                                                 \
    X(UNAUTHORIZED, 401, "unauthorized")                                                           \
    X(INVALID_API_KEY, 401, "invalid_api_key")                                                     \
    X(INVALID_SESSION, 401, "invalid_session")                                                     \
    X(FORBIDDEN, 403, "forbidden")                                                                 \
    X(LOOPBACK_ONLY, 403, "loopback_only")                                                         \
    X(CSRF_FAILED, 403, "csrf_token_invalid")                                                      \
    X(ORIGIN_NOT_ALLOWED, 403, "origin_not_allowed")                                               \
    X(STALE_TIMESTAMP, 401, "stale_timestamp")                                                     \
    X(NOT_FOUND, 404, "not_found")                                                                 \
    X(JOB_NOT_FOUND, 404, "job_not_found")                                                         \
    X(METHOD_NOT_ALLOWED, 405, "method_not_allowed")                                               \
    X(CONFLICT, 409, "job_not_active")                                                             \
    X(PAYLOAD_TOO_LARGE, 413, "payload_too_large")                                                 \
    X(UNSUPPORTED_MEDIA_TYPE, 415, "unsupported_media_type")                                       \
    X(IDEMPOTENCY_KEY_REUSED, 422, "idempotency_key_reused")                                       \
    X(TOO_MANY_STREAMS, 429, "too_many_streams")                                                   \
    X(RATE_LIMITED, 429, "rate_limited")                                                           \
    X(INTERNAL, 500, "internal_error")                                                             \
    X(PROVIDER_ERROR, 502, "provider_error")                                                       \
    X(PROVIDER_NOT_CONFIGURED, 503, "provider_not_configured")                                     \
    X(REDIS_UNAVAILABLE, 503, "redis_unavailable")                                                 \
    X(WEBHOOK_NOT_CONFIGURED, 503, "webhook_not_configured")                                       \
    X(SHUTTING_DOWN, 503, "shutting_down")                                                         \
    X(TOO_MANY_CLIENTS, 503, "too_many_clients")                                                   \
    X(QUEUE_FULL, 503, "queue_full")                                                               \
    X(PROVIDER_TIMEOUT, 504, "provider_timeout")

typedef enum jw_error {
#define JW_ERROR_ENUM(name, status, code) JW_E_##name,
    JW_ERROR_TABLE(JW_ERROR_ENUM)
#undef JW_ERROR_ENUM
        JW_E_COUNT,
} jw_error_t;

/* Returns the HTTP status of an error. */
int jw_error_status(jw_error_t error);

/* Returns the JSON "error" code of an error. */
const char *jw_error_code(jw_error_t error);

#endif
