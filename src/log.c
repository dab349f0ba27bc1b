/*
 * Log lines to stderr, which containers and systemd collect. Each line is
 * written with one fputs so lines from one process never interleave.
 */
#include "jobwire/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

jw_log_level_t jw_log_min_level = JW_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int jw_log_parse_level(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0)
            return i;
    }
    return -1;
}

void jw_log_write(jw_log_level_t level, const char *component, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(tv.tv_usec / 1000), level_names[level], component);

    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);

    /* A long message is cut, but the line still ends with a newline. */
    size_t len = strlen(line);
    line[len] = '\n';
    line[len + 1] = '\0';
    fputs(line, stderr);
    fflush(stderr);
}

int jw_log_allow(jw_log_limit_t *limit, long long interval_ms, unsigned long long *suppressed)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    long long now = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    if (now < limit->next_ms) {
        limit->held++;
        return 0;
    }
    *suppressed = limit->held;
    limit->held = 0;
    limit->next_ms = now + interval_ms;
    return 1;
}
