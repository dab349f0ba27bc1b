/*
 * libFuzzer target for what the Replicate client reads from a list
 * response: the page parser, then the "next" cursor through the
 * same-origin check, and the same bytes as an error body and as a
 * Retry-After value. Besides the sanitizers, it aborts when a result
 * breaks its contract in jobwire/replicate_client.h:
 *   - a page has at most JW_REPLICATE_PAGE_ITEMS_MAX events, each with a
 *     valid id, a known status and the list's kind;
 *   - a failed parse leaves an empty page and a reason;
 *   - a resolved cursor is on the base URL's origin, and resolving it
 *     again gives the same URL;
 *   - an error detail is printable ASCII that fits its buffer;
 *   - a Retry-After wait is between 0 and a day.
 *
 * Build: scripts/build fuzz (clang, JW_FUZZ=ON) makes build-fuzz/fuzz_replicate_list.
 * Seeds: tests/fuzz/corpus/replicate_list/ (copy it before a run, because
 *        libFuzzer adds the inputs it finds to the first corpus folder).
 */
#include "jobwire/replicate_client.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BASE "https://api.replicate.com/v1"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok)
{
    if (!ok)
        abort();
}

static void check_event(const jw_event_t *ev)
{
    size_t id_len = strlen(ev->job_id);

    require(id_len > 0 && id_len <= 128);
    require(strcmp(ev->kind, "training") == 0);
    require(strcmp(ev->provider, "replicate") == 0);
    require(ev->status >= JW_STATUS_QUEUED && ev->status <= JW_STATUS_CANCELLED);
}

static void check_next(const char *next)
{
    char *url = jw_replicate_resolve_next(BASE, next);
    char *again;

    if (url == NULL)
        return;
    require(strncmp(url, "https://", 8) == 0);
    again = jw_replicate_resolve_next(BASE, url);
    require(again != NULL && strcmp(again, url) == 0);
    free(again);
    free(url);
}

static void check_page(const char *text, size_t size)
{
    jw_replicate_page_t page;
    char err[160] = "";

    if (jw_replicate_parse_page(text, size, "training", &page, err, sizeof(err)) != 0) {
        require(page.count == 0 && page.events == NULL && page.next == NULL);
        require(err[0] != '\0');
        jw_replicate_page_clear(&page);
        return;
    }
    require(page.count <= JW_REPLICATE_PAGE_ITEMS_MAX);
    for (size_t i = 0; i < page.count; i++)
        check_event(&page.events[i]);
    if (page.next != NULL)
        check_next(page.next);
    jw_replicate_page_clear(&page);
}

static void check_error_body(const char *text, size_t size)
{
    char detail[64];
    long wait = -1;

    jw_replicate_error_detail(text, size, detail, sizeof(detail));
    require(strlen(detail) < sizeof(detail));
    for (const char *p = detail; *p != '\0'; p++)
        require(*p >= 0x20 && *p <= 0x7e);

    if (jw_replicate_body_retry_after(text, size, &wait) == 0)
        require(wait >= 0 && wait <= 86400L * 1000);
}

static void check_retry_after(const char *text, size_t size)
{
    long wait = -1;

    if (jw_replicate_parse_retry_after(text, size, 1700000000, &wait) == 0)
        require(wait >= 0 && wait <= 86400L * 1000);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The helpers that take C strings get a terminated copy. */
    char *text = malloc(size + 1);

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    check_page(text, size);
    check_error_body(text, size);
    check_retry_after(text, size);
    if (memchr(data, '\0', size) == NULL && size < 4096)
        check_next(text);

    free(text);
    return 0;
}
