/*
 * Logging: one line per event on stderr, in the form
 * "2026-01-02T03:04:05.678Z level component: what: why key=value".
 * The macro checks the level before formatting any argument.
 * Never pass secrets, signatures or whole bodies.
 */
#ifndef JOBWIRE_LOG_H
#define JOBWIRE_LOG_H

typedef enum jw_log_level {
    JW_LOG_DEBUG = 0,
    JW_LOG_INFO,
    JW_LOG_WARN,
    JW_LOG_ERROR,
} jw_log_level_t;

extern jw_log_level_t jw_log_min_level;

/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int jw_log_parse_level(const char *name);

void jw_log_write(jw_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define JW_LOG(level, component, ...)                                                              \
    do {                                                                                           \
        if ((level) >= jw_log_min_level)                                                           \
            jw_log_write((level), (component), __VA_ARGS__);                                       \
    } while (0)

/*
 * A limit for a line that can repeat once per request (a Redis outage
 * refuses every webhook): at most one line per interval. jw_log_allow()
 * returns 1 when the line may be written, with the number of lines held
 * back since the last one in *suppressed.
 */
typedef struct jw_log_limit {
    long long next_ms;
    unsigned long long held;
} jw_log_limit_t;

int jw_log_allow(jw_log_limit_t *limit, long long interval_ms, unsigned long long *suppressed);

#define jw_debug(component, ...) JW_LOG(JW_LOG_DEBUG, component, __VA_ARGS__)
#define jw_info(component, ...) JW_LOG(JW_LOG_INFO, component, __VA_ARGS__)
#define jw_warn(component, ...) JW_LOG(JW_LOG_WARN, component, __VA_ARGS__)
#define jw_error(component, ...) JW_LOG(JW_LOG_ERROR, component, __VA_ARGS__)

#endif
