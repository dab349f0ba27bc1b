/*
 * libFuzzer target for the Replicate object parser and the timestamp
 * normaliser, the two readers of provider bytes. Beyond "no crash, no
 * leak", it checks the event's promises: a valid id, a known status,
 * normalised timestamps that normalise to themselves, and a log tail that
 * fits and starts on a character boundary.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Iinclude
 *        tests/fuzz/fuzz_replicate.c src/replicate_parse.c src/json.c src/event.c -lyajl -lm
 * Seeds: tests/fuzz/corpus/replicate/ (copy it first: libFuzzer writes into it).
 */
#include "jobwire/replicate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok)
{
    if (!ok)
        abort();
}

/* A normalised time is its own normal form, with the same instant. */
static void check_normal_time(const char *t, long long *ms_out)
{
    char again[28];
    long long ms = 0;

    require(t != NULL && strlen(t) == 27 && t[26] == 'Z');
    require(jw_replicate_normalise_time(t, 27, again, &ms) == 0);
    require(memcmp(again, t, 28) == 0);
    if (ms_out != NULL)
        *ms_out = ms;
}

static void check_optional_time(const char *t)
{
    if (t != NULL)
        check_normal_time(t, NULL);
}

static void check_event(const jw_event_t *ev)
{
    size_t id_len = strlen(ev->job_id);

    require(id_len > 0 && id_len <= 128);
    require(strcmp(ev->provider, "replicate") == 0);
    require(strcmp(ev->kind, "training") == 0 || strcmp(ev->kind, "prediction") == 0);
    require(ev->status >= JW_STATUS_QUEUED && ev->status <= JW_STATUS_CANCELLED);
    require(ev->provider_status != NULL);
    require(ev->predict_time == -1 || ev->predict_time >= 0);

    if (ev->created_at != NULL) {
        long long ms;

        check_normal_time(ev->created_at, &ms);
        require(ms == ev->created_ms);
    } else {
        require(ev->created_ms == -1);
    }
    check_optional_time(ev->started_at);
    check_optional_time(ev->completed_at);

    if (ev->logs_tail != NULL) {
        size_t t = strlen(ev->logs_tail);

        require(t <= JW_LOG_TAIL_MAX && t <= ev->logs_len);
        require(t == 0 || ((unsigned char)ev->logs_tail[0] & 0xC0) != 0x80);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jw_event_t ev = {0};
    char err[256];
    char out[28];
    long long ms;

    if (jw_replicate_parse_object((const char *)data, size, &ev, err, sizeof(err)) == 0)
        check_event(&ev);
    else
        require(ev.job_id == NULL && err[0] != '\0');
    jw_event_clear(&ev);

    /* The same bytes as a bare timestamp; a success must be a fixed point. */
    if (jw_replicate_normalise_time((const char *)data, size, out, &ms) == 0) {
        long long again;

        out[27] = '\0';
        check_normal_time(out, &again);
        require(again == ms);
    }
    return 0;
}
