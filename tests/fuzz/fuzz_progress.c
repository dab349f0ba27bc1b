/*
 * libFuzzer target for jw_progress_scan, which reads job logs from the
 * provider, so any bytes can arrive. Besides the sanitizers, it aborts when a
 * result breaks the contract in jobwire/progress.h:
 *   - progress is -1 or lies in 0-100 with at most one decimal,
 *   - stage is NULL or one of the five stage names,
 *   - last_log is NUL-terminated inside its buffer, valid UTF-8, free of
 *     control bytes, at most JW_LAST_LOG_CHARS characters, and trimmed,
 *   - a blank line added before or after the logs changes nothing.
 *
 * Build: clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude
 *        src/progress.c tests/fuzz/fuzz_progress.c -lm -o fuzz_progress
 * Seeds: tests/fuzz/corpus/progress/ (copy it before a run, because
 *        libFuzzer adds the inputs it finds to the first corpus folder).
 */
#include "jobwire/progress.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_progress(double progress)
{
    if (progress == -1.0)
        return;
    if (!(progress >= 0.0 && progress <= 100.0))
        abort();

    /* One decimal: progress * 10 is an integer up to rounding error. */
    double tenths = progress * 10.0;
    if (fabs(tenths - round(tenths)) > 1e-6)
        abort();
}

static void check_stage(const char *stage)
{
    static const char *const names[] = {"Preprocessing", "Warmup", "Training", "Validation",
                                        "Saving checkpoint"};

    if (stage == NULL)
        return;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(stage, names[i]) == 0)
            return;
    }
    abort();
}

/*
 * Returns the length of the UTF-8 character at p, or 0 when it is invalid.
 * The ranges of the second byte exclude overlong forms, UTF-16 surrogates and
 * code points above U+10FFFF.
 */
static size_t utf8_char_len(const unsigned char *p)
{
    unsigned char b0 = p[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len;

    if (b0 < 0x80)
        return 1;
    if (b0 >= 0xc2 && b0 <= 0xdf)
        len = 2;
    else if (b0 >= 0xe0 && b0 <= 0xef)
        len = 3;
    else if (b0 >= 0xf0 && b0 <= 0xf4)
        len = 4;
    else
        return 0;

    if (b0 == 0xe0)
        lo = 0xa0;
    else if (b0 == 0xed)
        hi = 0x9f;
    else if (b0 == 0xf0)
        lo = 0x90;
    else if (b0 == 0xf4)
        hi = 0x8f;

    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++) {
        if (p[k] < 0x80 || p[k] > 0xbf)
            return 0;
    }
    return len;
}

static void check_last_log(const char *log)
{
    const unsigned char *p = (const unsigned char *)log;
    const void *nul = memchr(log, '\0', JW_LAST_LOG_MAX + 1);
    size_t chars = 0;

    if (nul == NULL)
        abort();

    size_t len = (size_t)((const char *)nul - log);
    if (len > 0 && (log[0] == ' ' || log[len - 1] == ' '))
        abort();

    /* utf8_char_len stops at the NUL, because a NUL is never a continuation byte. */
    while (*p != '\0') {
        size_t n = utf8_char_len(p);

        if (n == 0 || *p < 0x20 || *p == 0x7f)
            abort();
        p += n;
        chars++;
    }
    if (chars > JW_LAST_LOG_CHARS)
        abort();
}

static int same_result(const jw_progress_t *a, const jw_progress_t *b)
{
    return a->stage == b->stage && a->progress == b->progress &&
           strcmp(a->last_log, b->last_log) == 0;
}

/* Scans "\n" + data + "\n" and aborts unless the result equals first. */
static void check_blank_lines_change_nothing(const uint8_t *data, size_t size,
                                             const jw_progress_t *first)
{
    char *padded = malloc(size + 2);
    jw_progress_t again;

    if (padded == NULL)
        return;
    padded[0] = '\n';
    if (size > 0)
        memcpy(padded + 1, data, size);
    padded[size + 1] = '\n';

    jw_progress_scan(padded, size + 2, &again);
    free(padded);
    if (!same_result(first, &again))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jw_progress_t res;

    /* Poison the result, so a field the scan does not set shows up. */
    memset(&res, 0xaa, sizeof(res));
    jw_progress_scan((const char *)data, size, &res);

    check_progress(res.progress);
    check_stage(res.stage);
    check_last_log(res.last_log);
    check_blank_lines_change_nothing(data, size, &res);
    return 0;
}
