/*
 * Log text into the inline progress view of a job: the stage, a
 * percentage and the last log line. Pure functions, no allocation beyond
 * the result strings.
 */
#ifndef JOBWIRE_PROGRESS_H
#define JOBWIRE_PROGRESS_H

#include <stddef.h>

/*
 * last_log keeps at most JW_LAST_LOG_CHARS characters (Unicode code points).
 * JW_LAST_LOG_MAX is the maximum length in bytes, because one UTF-8 character
 * takes up to 4 bytes.
 */
#define JW_LAST_LOG_CHARS 80
#define JW_LAST_LOG_MAX (JW_LAST_LOG_CHARS * 4)

typedef struct jw_progress {
    const char *stage;                  /* static string ("Training"), or NULL */
    double progress;                    /* 0-100 with one decimal, or negative if unknown */
    char last_log[JW_LAST_LOG_MAX + 1]; /* UTF-8, NUL-terminated, "" if no text */
} jw_progress_t;

/*
 * Reads len bytes of logs, which may contain any byte and need no NUL (logs
 * may be NULL when len is 0), and fills *out, which the caller owns. Stage
 * comes from the most recent line that matches a stage pattern, and progress
 * from the most recent step X/Y, epoch X/Y or similar shape. last_log is the
 * last non-empty line with ANSI escapes and carriage-return redraws removed,
 * trimmed, cut to JW_LAST_LOG_CHARS characters, with invalid UTF-8 replaced
 * by U+FFFD. Matching is case-insensitive. The scan takes time linear in len,
 * allocates nothing and cannot fail. src/progress.c lists which pattern wins
 * when one line has several.
 */
void jw_progress_scan(const char *logs, size_t len, jw_progress_t *out);

#endif
