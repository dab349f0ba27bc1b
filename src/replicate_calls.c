/*
 * The Replicate API calls jobwire makes, on top of the raw requests of
 * replicate_client.c: one job, cancel, logs, account, and lists that
 * follow their cursors. Objects go through jw_replicate_parse_object(),
 * the parser of webhook bodies, so every path yields the same event.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/json.h"
#include "jobwire/log.h"
#include "jobwire/replicate.h"
#include "replicate_internal.h"

#define MESSAGE_MAX 320

/* Replicate's collection of a kind. GET /v1/predictions/{id} also
 * serves a training, so an unknown kind uses it. */
static const char *collection(const char *kind)
{
    return kind != NULL && strcmp(kind, "training") == 0 ? "trainings" : "predictions";
}

static int known_kind(const char *kind)
{
    return kind != NULL && (strcmp(kind, "training") == 0 || strcmp(kind, "prediction") == 0);
}

/* Reports a 2xx response that is not what the call expects. */
static void bad_response(const jw_replicate_outcome_t *out, const char *what, const char *why,
                         jw_replicate_outcome_t *bad, char *message, size_t message_len)
{
    snprintf(message, message_len, "Replicate sent %s jobwire cannot read: %s", what, why);
    bad->err = JW_REPLICATE_BAD_RESPONSE;
    bad->http_status = out->http_status;
    bad->message = message;
    bad->attempts = out->attempts;
}

/* --- one object: get and cancel ------------------------------------------ */

typedef struct object_call {
    jw_replicate_event_cb cb;
    void *data;
    char kind[16];
} object_call_t;

static void on_object(void *data, const jw_replicate_outcome_t *out, const char *body, size_t len)
{
    object_call_t *oc = data;
    jw_replicate_outcome_t bad;
    char err[160], message[MESSAGE_MAX];
    jw_event_t ev;

    if (out->err != JW_REPLICATE_OK) {
        oc->cb(oc->data, out, NULL);
    } else if (jw_replicate_parse_object(body, len, &ev, err, sizeof(err)) != 0) {
        bad_response(out, "an object", err, &bad, message, sizeof(message));
        oc->cb(oc->data, &bad, NULL);
    } else {
        /* The endpoint requested decides the kind, whatever urls.get contains. */
        if (known_kind(oc->kind) && strcmp(ev.kind, oc->kind) != 0) {
            free(ev.kind);
            ev.kind = strdup(oc->kind);
            if (ev.kind == NULL)
                abort();
        }
        oc->cb(oc->data, out, &ev);
        jw_event_clear(&ev);
    }
    free(oc);
}

static object_call_t *new_object_call(const char *kind, jw_replicate_event_cb cb, void *data)
{
    object_call_t *oc = calloc(1, sizeof(*oc));

    if (oc == NULL)
        abort();
    oc->cb = cb;
    oc->data = data;
    snprintf(oc->kind, sizeof(oc->kind), "%s", known_kind(kind) ? kind : "");
    return oc;
}

static void object_request(jw_replicate_t *client, const char *method, const char *kind,
                           const char *id, const char *suffix, jw_replicate_event_cb cb,
                           void *data)
{
    char path[512];

    snprintf(path, sizeof(path), "/%s/%s%s", collection(kind), id, suffix);
    jw_replicate_request(client, method, path, on_object, new_object_call(kind, cb, data));
}

void jw_replicate_get_job(jw_replicate_t *client, const char *kind, const char *id,
                          jw_replicate_event_cb cb, void *data)
{
    object_request(client, "GET", kind, id, "", cb, data);
}

void jw_replicate_cancel_job(jw_replicate_t *client, const char *kind, const char *id,
                             jw_replicate_event_cb cb, void *data)
{
    object_request(client, "POST", kind, id, "/cancel", cb, data);
}

void jw_replicate_create_training(jw_replicate_t *client, const char *model, const char *version,
                                  const char *body, size_t len, jw_replicate_event_cb cb,
                                  void *data)
{
    char path[512];

    snprintf(path, sizeof(path), "/models/%s/versions/%s/trainings", model, version);
    jw__replicate_post_json(client, path, body, len, on_object,
                            new_object_call("training", cb, data));
}

/* --- text: logs and account ---------------------------------------------- */

typedef struct text_call {
    jw_replicate_text_cb cb;
    void *data;
    int account; /* 1: the whole object as JSON; 0: its "logs" string */
} text_call_t;

static void deliver_text(text_call_t *tc, const jw_replicate_outcome_t *out, yajl_val root)
{
    if (tc->account) {
        size_t len = 0;
        char *json = jw_json_serialise(root, &len);

        tc->cb(tc->data, out, json, len);
        free(json);
    } else {
        const char *logs = jw_json_get_string(root, JW_JSON_PATH("logs"));

        tc->cb(tc->data, out, logs, logs != NULL ? strlen(logs) : 0);
    }
}

static void on_text(void *data, const jw_replicate_outcome_t *out, const char *body, size_t len)
{
    text_call_t *tc = data;
    jw_replicate_outcome_t bad;
    char err[128], message[MESSAGE_MAX];
    yajl_val root = NULL;

    if (out->err != JW_REPLICATE_OK) {
        tc->cb(tc->data, out, NULL, 0);
        goto out;
    }
    root = jw_json_parse(body, len, err, sizeof(err));
    if (root == NULL || !YAJL_IS_OBJECT(root)) {
        bad_response(out, tc->account ? "an account" : "a job", root ? "not an object" : err,
                     &bad, message, sizeof(message));
        tc->cb(tc->data, &bad, NULL, 0);
        goto out;
    }
    deliver_text(tc, out, root);

out:
    yajl_tree_free(root);
    free(tc);
}

static void text_request(jw_replicate_t *client, const char *path, int account,
                         jw_replicate_text_cb cb, void *data)
{
    text_call_t *tc = calloc(1, sizeof(*tc));

    if (tc == NULL)
        abort();
    tc->cb = cb;
    tc->data = data;
    tc->account = account;
    jw_replicate_request(client, "GET", path, on_text, tc);
}

void jw_replicate_get_logs(jw_replicate_t *client, const char *kind, const char *id,
                           jw_replicate_text_cb cb, void *data)
{
    char path[512];

    snprintf(path, sizeof(path), "/%s/%s", collection(kind), id);
    text_request(client, path, 0, cb, data);
}

void jw_replicate_get_account(jw_replicate_t *client, jw_replicate_text_cb cb, void *data)
{
    text_request(client, "/account", 1, cb, data);
}

/* --- lists ----------------------------------------------------------------- */

typedef struct list_call {
    jw_replicate_t *client;
    char kind[16];
    size_t max;
    jw_event_t *events;
    size_t count;
    int pages;
    jw_replicate_list_cb cb;
    void *data;
} list_call_t;

static void end_list(list_call_t *lc, const jw_replicate_outcome_t *out)
{
    lc->cb(lc->data, out, lc->events, lc->count);
    free(lc);
}

/* Moves up to max - count events out of the page; the rest are freed. */
static void take_events(list_call_t *lc, jw_replicate_page_t *page)
{
    for (size_t i = 0; i < page->count; i++) {
        if (lc->count < lc->max)
            lc->events[lc->count++] = page->events[i];
        else
            jw_event_clear(&page->events[i]);
    }
    free(page->events);
    page->events = NULL;
    page->count = 0;
}

static void on_page(void *data, const jw_replicate_outcome_t *out, const char *body, size_t len);

/* Follows the page's cursor, or ends the list; returns after either. */
static void follow(list_call_t *lc, const jw_replicate_outcome_t *out, const char *next)
{
    jw_replicate_outcome_t done = {JW_REPLICATE_OK, out->http_status, "", out->attempts};
    char *url;

    if (lc->count >= lc->max || next == NULL || lc->pages >= JW_REPLICATE_PAGES_MAX) {
        end_list(lc, &done);
        return;
    }
    url = jw_replicate_resolve_next(lc->client->cfg->replicate_api_url, next);
    if (url == NULL) {
        /* The token goes only to the configured origin; the list ends here. */
        jw_warn("replicate", "list cursor ignored: not on the API's scheme, host and port "
                "kind=%s pages=%d", lc->kind, lc->pages);
        end_list(lc, &done);
        return;
    }
    jw__replicate_request_url(lc->client, "GET", url, on_page, lc);
    free(url);
}

static void on_page(void *data, const jw_replicate_outcome_t *out, const char *body, size_t len)
{
    list_call_t *lc = data;
    jw_replicate_page_t page;
    jw_replicate_outcome_t bad;
    char err[160], message[MESSAGE_MAX];

    if (out->err != JW_REPLICATE_OK) {
        end_list(lc, out);
        return;
    }
    lc->pages++;
    if (jw_replicate_parse_page(body, len, lc->kind, &page, err, sizeof(err)) != 0) {
        jw_replicate_page_clear(&page);
        bad_response(out, "a list", err, &bad, message, sizeof(message));
        end_list(lc, &bad);
        return;
    }
    if (page.skipped > 0)
        jw_warn("replicate", "list items skipped: not valid objects kind=%s count=%zu", lc->kind,
                page.skipped);

    take_events(lc, &page);
    follow(lc, out, page.next);
    jw_replicate_page_clear(&page);
}

void jw_replicate_list_jobs(jw_replicate_t *client, const char *kind, size_t max,
                            jw_replicate_list_cb cb, void *data)
{
    list_call_t *lc = calloc(1, sizeof(*lc));
    char path[64];

    if (lc == NULL)
        abort();
    lc->client = client;
    snprintf(lc->kind, sizeof(lc->kind), "%s", known_kind(kind) ? kind : "prediction");
    lc->max = max;
    lc->events = calloc(max + 1, sizeof(*lc->events));
    if (lc->events == NULL)
        abort();
    lc->cb = cb;
    lc->data = data;
    snprintf(path, sizeof(path), "/%s", collection(lc->kind));
    jw_replicate_request(client, "GET", path, on_page, lc);
}
