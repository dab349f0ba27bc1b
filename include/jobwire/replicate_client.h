/*
 * The Replicate API client: libcurl's multi interface on the service's
 * libuv loop, so no request blocks the loop and many run at once.
 *
 * Every call is asynchronous: its callback runs later on the loop, never
 * inside the function that started the call. A call is one logical
 * request; the client retries it by itself (429 after Retry-After or the
 * body's retry_after, 5xx and network errors after a jittered exponential
 * backoff), keeps at most cfg->replicate_max_inflight requests on the wire
 * (the rest wait in a queue), and gives up once cfg->replicate_timeout_ms
 * have passed since the call started. The API token is sent only to the
 * origin of cfg->replicate_api_url and never appears in a log line or in
 * an outcome's message.
 *
 * Objects are normalised by jw_replicate_parse_object(), the same parser
 * that reads webhook bodies. Deciding what to do with the results (apply
 * them, respond to a request) is left to the callers.
 */
#ifndef JOBWIRE_REPLICATE_CLIENT_H
#define JOBWIRE_REPLICATE_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "jobwire/config.h"
#include "jobwire/event.h"

struct jw_app;

typedef struct jw_replicate jw_replicate_t;

/* Response bodies larger than this fail the call (32 MiB). */
#define JW_REPLICATE_BODY_MAX (32u * 1024u * 1024u)

/* A list call follows at most this many pages, whatever cursors the provider sends. */
#define JW_REPLICATE_PAGES_MAX 50

/* Items read from one list page at most. */
#define JW_REPLICATE_PAGE_ITEMS_MAX 1000

typedef enum jw_replicate_err {
    JW_REPLICATE_OK = 0,
    JW_REPLICATE_NO_TOKEN,     /* no REPLICATE_API_TOKEN is configured */
    JW_REPLICATE_HTTP,         /* Replicate responded with a non-2xx status */
    JW_REPLICATE_TIMEOUT,      /* no response within the call's time limit */
    JW_REPLICATE_NETWORK,      /* no connection, or it broke, after every attempt */
    JW_REPLICATE_BAD_RESPONSE, /* a 2xx response that is too large or not the expected JSON */
    JW_REPLICATE_CANCELLED,    /* the client was freed first */
} jw_replicate_err_t;

/* How a call ended; borrowed by the callback for its duration. */
typedef struct jw_replicate_outcome {
    jw_replicate_err_t err;
    long http_status;    /* the last HTTP status, 0 when none arrived */
    const char *message; /* one printable line saying what failed; "" on success */
    int attempts;        /* requests sent, retries included */
} jw_replicate_outcome_t;

/* A raw response: body is the 2xx body (NUL-terminated), or NULL on error. */
typedef void (*jw_replicate_body_cb)(void *data, const jw_replicate_outcome_t *out,
                                     const char *body, size_t len);

/* One object: ev is NULL on error, and valid only until the callback returns. */
typedef void (*jw_replicate_event_cb)(void *data, const jw_replicate_outcome_t *out,
                                      const jw_event_t *ev);

/*
 * A list: the callback takes the events (count of them, newest first as
 * Replicate sent them) and frees them with jw_replicate_events_free(). On
 * an error, events contains what the pages before the failure gave.
 */
typedef void (*jw_replicate_list_cb)(void *data, const jw_replicate_outcome_t *out,
                                     jw_event_t *events, size_t count);

/* Text such as logs or a serialised account object; NULL on error or when absent. */
typedef void (*jw_replicate_text_cb)(void *data, const jw_replicate_outcome_t *out,
                                     const char *text, size_t len);

/* Creates the client; it makes no request until asked. cfg must outlive it. */
jw_replicate_t *jw_replicate_new(uv_loop_t *loop, const jw_config_t *cfg);

/* Classes of finished calls counted for /metrics: by the final HTTP status
 * class (2xx to 5xx), or "error" for calls that got no HTTP answer
 * (network error, timeout, no token, cancelled). */
#define JW_REPLICATE_OUTCOME_CLASSES 5
extern const char *const jw_replicate_outcome_names[JW_REPLICATE_OUTCOME_CLASSES];

/* Returns the count of finished calls of one class (an index into
 * jw_replicate_outcome_names). */
uint64_t jw_replicate_outcome_count(const jw_replicate_t *client, int outcome_class);

/*
 * Ends every call in flight or waiting (their callbacks run at once with
 * JW_REPLICATE_CANCELLED) and releases the client. Its handles close on
 * the loop's next turn; the memory goes with the last of them.
 */
void jw_replicate_free(jw_replicate_t *client);

/* Returns 1 when an API token is configured. */
int jw_replicate_has_token(const jw_replicate_t *client);

/*
 * Sends method ("GET" or "POST", with an empty body) to the base URL
 * followed by path, which starts with "/" and contains no spaces or control
 * characters. The callback gets the body of a 2xx response.
 */
void jw_replicate_request(jw_replicate_t *client, const char *method, const char *path,
                          jw_replicate_body_cb cb, void *data);

/* kind is "training" or "prediction"; anything else is read as "prediction",
 * whose endpoint also serves trainings. id is a checked job id. */

/* GET /v1/{kind}s/{id}, normalised. */
void jw_replicate_get_job(jw_replicate_t *client, const char *kind, const char *id,
                          jw_replicate_event_cb cb, void *data);

/* POST /v1/{kind}s/{id}/cancel; the response is the object after the request. */
void jw_replicate_cancel_job(jw_replicate_t *client, const char *kind, const char *id,
                             jw_replicate_event_cb cb, void *data);

/*
 * POST /v1/models/{model}/versions/{version}/trainings with body (JSON,
 * copied); model is "owner/name" and both are checked submission values.
 * The callback gets the new training, normalised. The call is retried
 * only after a 429 or a connection that failed, so it never creates two
 * trainings by itself.
 */
void jw_replicate_create_training(jw_replicate_t *client, const char *model, const char *version,
                                  const char *body, size_t len, jw_replicate_event_cb cb,
                                  void *data);

/* GET /v1/{kind}s/{id} and hands over its whole "logs" string (NULL when null). */
void jw_replicate_get_logs(jw_replicate_t *client, const char *kind, const char *id,
                           jw_replicate_text_cb cb, void *data);

/* GET /v1/account; text is the account object as compact JSON. */
void jw_replicate_get_account(jw_replicate_t *client, jw_replicate_text_cb cb, void *data);

/*
 * GET /v1/{kind}s and the pages its "next" cursors name, until max items
 * are collected, the cursor ends, or JW_REPLICATE_PAGES_MAX pages were
 * read. A cursor on another scheme, host or port than the base URL ends
 * the walk (the token must not go elsewhere). Items that do not parse are
 * skipped; every event's kind is the list's.
 */
void jw_replicate_list_jobs(jw_replicate_t *client, const char *kind, size_t max,
                            jw_replicate_list_cb cb, void *data);

/* Frees events handed over by a list callback. */
void jw_replicate_events_free(jw_event_t *events, size_t count);

/*
 * The webhook signing secret. When JOBWIRE_PUBLIC_URL is set and no
 * REPLICATE_WEBHOOK_SECRET is configured, jw_replicate_secret_start()
 * fetches GET /v1/webhooks/default/secret and sets app->webhook_key and
 * app->has_webhook_key; a failed fetch is tried again every minute until
 * one succeeds. jw_replicate_secret_maybe_refresh() fetches it again (at
 * most once a minute), for the webhook handler to call after a delivery
 * failed verification or arrived before any key was known. Both log where
 * the secret came from, never the secret.
 */
void jw_replicate_secret_start(struct jw_app *app);
void jw_replicate_secret_maybe_refresh(struct jw_app *app);

/* --- pure helpers, public for the tests and the fuzz target ------------ */

/*
 * The wait before retry number attempt (1 for the first retry): half of
 * min(cap, base * 2^(attempt-1)) plus a random part of the other half
 * taken from random, so concurrent callers spread out. Never above cap.
 */
long jw_replicate_backoff_ms(int attempt, long base_ms, long cap_ms, uint32_t random);

/*
 * Reads a Retry-After header value: delta-seconds, or an HTTP date which
 * is compared with now_s. Returns 0 with the wait in *delay_ms (0 for a
 * date in the past, at most a day), or -1 when the value is neither.
 */
int jw_replicate_parse_retry_after(const char *value, size_t len, int64_t now_s, long *delay_ms);

/* Reads a numeric "retry_after" (seconds) from a JSON error body; 0 or -1. */
int jw_replicate_body_retry_after(const char *body, size_t len, long *delay_ms);

/*
 * Writes the one-line reason of a Replicate error body into out: its
 * "detail", else "title", else "error" string, as printable ASCII cut to
 * outlen. Writes "" when the body has no such string.
 */
void jw_replicate_error_detail(const char *body, size_t len, char *out, size_t outlen);

/*
 * Joins the base URL and a path that starts with "/" and contains only
 * visible ASCII. Returns 0, or -1 when the path is not such a path or the
 * result does not fit in outlen.
 */
int jw_replicate_build_url(const char *base, const char *path, char *out, size_t outlen);

/*
 * Resolves a list's "next" cursor (absolute, or relative to the base) and
 * accepts it only on the base URL's scheme, host and port, without user
 * info. Returns a URL the caller frees, or NULL.
 */
char *jw_replicate_resolve_next(const char *base, const char *next);

/* One list page: the parsed items and the raw next cursor. */
typedef struct jw_replicate_page {
    jw_event_t *events; /* count events, owned */
    size_t count;
    size_t skipped;     /* items that were not valid objects */
    char *next;         /* the "next" string, or NULL when null or missing */
} jw_replicate_page_t;

/*
 * Parses a list page {"results": [...], "next": ...}. Each item goes
 * through jw_replicate_parse_object() and gets kind as its kind; at most
 * JW_REPLICATE_PAGE_ITEMS_MAX items are read. Returns 0, or -1 with a
 * reason in err when the page itself is not such an object. The caller
 * frees the page with jw_replicate_page_clear() in both cases.
 */
int jw_replicate_parse_page(const char *json, size_t len, const char *kind,
                            jw_replicate_page_t *page, char *err, size_t errlen);

void jw_replicate_page_clear(jw_replicate_page_t *page);

#endif
