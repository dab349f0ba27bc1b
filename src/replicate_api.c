/*
 * Pure parts of the Replicate API client: URLs and the same-origin rule
 * for list cursors, retry timing, error bodies and list pages. Nothing
 * here does I/O or keeps state, so each piece is tested by a table and the
 * page parser is fuzzed; replicate_client.c does the talking.
 */
#include "jobwire/replicate_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jobwire/json.h"
#include "jobwire/replicate.h"

/* A Retry-After longer than a day is read as a day: the caller's own
 * time limit decides anyway, and the arithmetic stays small. */
#define RETRY_AFTER_MAX_S 86400L

long jw_replicate_backoff_ms(int attempt, long base_ms, long cap_ms, uint32_t random)
{
    long window = base_ms > 0 ? base_ms : 1;

    if (cap_ms < window)
        cap_ms = window;
    for (int i = 1; i < attempt && window < cap_ms; i++)
        window *= 2;
    if (window > cap_ms)
        window = cap_ms;

    /* Half fixed, half random: a retry never comes sooner than half the
     * window, and callers that failed together do not retry together. */
    long half = window / 2;
    return half + (long)(random % (uint32_t)(window - half + 1));
}

static int all_digits(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    return 1;
}

int jw_replicate_parse_retry_after(const char *value, size_t len, int64_t now_s, long *delay_ms)
{
    char text[64];

    while (len > 0 && (value[0] == ' ' || value[0] == '\t')) {
        value++;
        len--;
    }
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t' ||
                       value[len - 1] == '\r' || value[len - 1] == '\n'))
        len--;
    if (len == 0 || len >= sizeof(text))
        return -1;
    memcpy(text, value, len);
    text[len] = '\0';

    if (all_digits(text, len)) {
        long seconds = len > 6 ? RETRY_AFTER_MAX_S : strtol(text, NULL, 10);
        *delay_ms = (seconds > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : seconds) * 1000;
        return 0;
    }

    /* An HTTP date must at least name a weekday and a GMT zone; curl_getdate()
     * alone also accepts free forms like "now" or a bare number. */
    if (len < 20 || strstr(text, "GMT") == NULL)
        return -1;
    time_t when = curl_getdate(text, NULL);
    if (when == (time_t)-1)
        return -1;
    int64_t wait = (int64_t)when - now_s;
    if (wait < 0)
        wait = 0;
    if (wait > RETRY_AFTER_MAX_S)
        wait = RETRY_AFTER_MAX_S;
    *delay_ms = (long)wait * 1000;
    return 0;
}

int jw_replicate_body_retry_after(const char *body, size_t len, long *delay_ms)
{
    yajl_val root = jw_json_parse(body, len, NULL, 0);
    double seconds;
    int rc = -1;

    if (root != NULL && jw_json_get_number(root, JW_JSON_PATH("retry_after"), &seconds) == 0 &&
        seconds >= 0) {
        if (seconds > RETRY_AFTER_MAX_S)
            seconds = RETRY_AFTER_MAX_S;
        *delay_ms = (long)(seconds * 1000.0 + 0.5);
        rc = 0;
    }
    yajl_tree_free(root);
    return rc;
}

/* Copies src as printable ASCII on one line, cut (ending in "...") to fit outlen. */
static void printable_line(const char *src, char *out, size_t outlen)
{
    size_t n = 0;

    for (; src[n] != '\0' && n + 1 < outlen; n++) {
        unsigned char c = (unsigned char)src[n];
        out[n] = (c < 0x20 || c > 0x7e) ? ' ' : (char)c;
    }
    out[n] = '\0';
    if (src[n] != '\0' && n >= 3)
        memcpy(out + n - 3, "...", 3);
}

void jw_replicate_error_detail(const char *body, size_t len, char *out, size_t outlen)
{
    static const char *const keys[] = {"detail", "title", "error"};
    yajl_val root;

    if (outlen == 0)
        return;
    out[0] = '\0';
    root = body != NULL && len > 0 ? jw_json_parse(body, len, NULL, 0) : NULL;
    for (size_t i = 0; root != NULL && i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *s = jw_json_get_string(root, JW_JSON_PATH(keys[i]));

        if (s != NULL && s[0] != '\0') {
            printable_line(s, out, outlen);
            break;
        }
    }
    yajl_tree_free(root);
}

int jw_replicate_build_url(const char *base, const char *path, char *out, size_t outlen)
{
    size_t blen = strlen(base), plen = strlen(path);

    if (plen == 0 || path[0] != '/')
        return -1;
    for (size_t i = 0; i < plen; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c <= 0x20 || c >= 0x7f)
            return -1;
    }
    /* The configuration strips trailing slashes; one left here is harmless
     * to drop, and "//" would name another path on some servers. */
    while (blen > 0 && base[blen - 1] == '/')
        blen--;
    if (blen + plen + 1 > outlen)
        return -1;
    memcpy(out, base, blen);
    memcpy(out + blen, path, plen + 1);
    return 0;
}

/* Reads one part of a parsed URL into a new string, or NULL. */
static char *url_part(CURLU *u, CURLUPart part, unsigned int flags)
{
    char *value = NULL;

    if (curl_url_get(u, part, &value, flags) != CURLUE_OK)
        return NULL;
    return value;
}

/* 1 when both handles name the same scheme, host and port and b has no user info. */
static int same_origin(CURLU *a, CURLU *b)
{
    char *parts[2][3] = {{NULL}};
    CURLU *handles[2] = {a, b};
    int same = 0;
    char *user = url_part(b, CURLUPART_USER, 0);

    for (int i = 0; i < 2; i++) {
        parts[i][0] = url_part(handles[i], CURLUPART_SCHEME, 0);
        parts[i][1] = url_part(handles[i], CURLUPART_HOST, 0);
        parts[i][2] = url_part(handles[i], CURLUPART_PORT, CURLU_DEFAULT_PORT);
    }
    if (user == NULL && parts[0][0] && parts[0][1] && parts[0][2] && parts[1][0] &&
        parts[1][1] && parts[1][2])
        same = strcasecmp(parts[0][0], parts[1][0]) == 0 &&
               strcasecmp(parts[0][1], parts[1][1]) == 0 && strcmp(parts[0][2], parts[1][2]) == 0;

    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 3; j++)
            curl_free(parts[i][j]);
    }
    curl_free(user);
    return same;
}

char *jw_replicate_resolve_next(const char *base, const char *next)
{
    CURLU *origin = curl_url(), *target = curl_url();
    char *resolved = NULL, *out = NULL;

    if (origin == NULL || target == NULL)
        goto out;
    for (const char *p = next; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            goto out;
    }

    /* Setting next on a handle that contains the base resolves a relative
     * cursor against it; an absolute one replaces it whole. */
    if (curl_url_set(origin, CURLUPART_URL, base, 0) != CURLUE_OK ||
        curl_url_set(target, CURLUPART_URL, base, 0) != CURLUE_OK ||
        curl_url_set(target, CURLUPART_URL, next, 0) != CURLUE_OK)
        goto out;
    if (!same_origin(origin, target))
        goto out;
    resolved = url_part(target, CURLUPART_URL, 0);
    if (resolved != NULL)
        out = strdup(resolved);

out:
    curl_free(resolved);
    curl_url_cleanup(origin);
    curl_url_cleanup(target);
    return out;
}

/* Parses one list item with the one normaliser, through its JSON text. */
static int parse_item(yajl_val item, const char *kind, jw_event_t *ev)
{
    char err[128];
    size_t len;
    char *text = jw_json_serialise(item, &len);
    int rc;

    if (text == NULL)
        return -1;
    rc = jw_replicate_parse_object(text, len, ev, err, sizeof(err));
    free(text);
    if (rc != 0)
        return -1;

    /* The list an item came from names its kind more reliably than its fields. */
    char *k = strdup(kind);
    if (k == NULL)
        abort();
    free(ev->kind);
    ev->kind = k;
    return 0;
}

static int read_next(yajl_val root, jw_replicate_page_t *page, char *err, size_t errlen)
{
    yajl_val next = jw_json_get(root, JW_JSON_PATH("next"));

    if (next == NULL || YAJL_IS_NULL(next))
        return 0;
    if (!YAJL_IS_STRING(next)) {
        snprintf(err, errlen, "next: not a string");
        return -1;
    }
    if (next->u.string[0] != '\0') {
        page->next = strdup(next->u.string);
        if (page->next == NULL)
            abort();
    }
    return 0;
}

static void read_results(yajl_val results, const char *kind, jw_replicate_page_t *page)
{
    size_t n = results->u.array.len;

    if (n > JW_REPLICATE_PAGE_ITEMS_MAX) {
        page->skipped += n - JW_REPLICATE_PAGE_ITEMS_MAX;
        n = JW_REPLICATE_PAGE_ITEMS_MAX;
    }
    page->events = calloc(n + 1, sizeof(*page->events));
    if (page->events == NULL)
        abort();

    for (size_t i = 0; i < n; i++) {
        yajl_val item = results->u.array.values[i];

        if (YAJL_IS_OBJECT(item) && parse_item(item, kind, &page->events[page->count]) == 0)
            page->count++;
        else
            page->skipped++;
    }
}

int jw_replicate_parse_page(const char *json, size_t len, const char *kind,
                            jw_replicate_page_t *page, char *err, size_t errlen)
{
    char jerr[128];
    yajl_val root, results;
    int rc = -1;

    memset(page, 0, sizeof(*page));
    root = jw_json_parse(json, len, jerr, sizeof(jerr));
    if (root == NULL) {
        snprintf(err, errlen, "list: %s", jerr);
        return -1;
    }
    if (!YAJL_IS_OBJECT(root)) {
        snprintf(err, errlen, "list: not a JSON object");
        goto out;
    }

    results = jw_json_get(root, JW_JSON_PATH("results"));
    if (!YAJL_IS_ARRAY(results)) {
        snprintf(err, errlen, "results: %s", results == NULL ? "missing" : "not an array");
        goto out;
    }
    if (read_next(root, page, err, errlen) != 0)
        goto out;
    read_results(results, kind, page);
    rc = 0;

out:
    yajl_tree_free(root);
    return rc;
}

void jw_replicate_page_clear(jw_replicate_page_t *page)
{
    jw_replicate_events_free(page->events, page->count);
    free(page->next);
    memset(page, 0, sizeof(*page));
}

void jw_replicate_events_free(jw_event_t *events, size_t count)
{
    if (events == NULL)
        return;
    for (size_t i = 0; i < count; i++)
        jw_event_clear(&events[i]);
    free(events);
}
