/*
 * Configuration: defaults, then an optional YAML file, then the
 * environment, each applied through one table of settings. The table also
 * prints --help, and each default is parsed like any other value, so the
 * help text, the defaults and both parsers cannot drift apart.
 *
 * Values are checked here once. Other modules read the struct and never
 * parse configuration themselves. Nothing here logs, because the log level
 * is itself a setting: errors go back to the caller as "KEY: reason".
 */
#include "jobwire/config.h"
#include "jobwire/log.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* Room for one parser's reason, before the key name is added. */
#define REASON_MAX 320

/* Longest dotted YAML path of a known key, with room to spare. */
#define PATH_MAX_LEN 128

/* How much of a rejected value an error message repeats. */
#define ECHO_MAX 48

#define KIB 1024ULL
#define MIB (1024ULL * KIB)
#define GIB (1024ULL * MIB)

typedef struct setting setting_t;

/*
 * Parses value into cfg. Returns 0, or -1 with the reason (without the
 * key name) in reason. A parser only changes cfg when it succeeds.
 */
typedef int (*parse_fn)(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                        size_t reason_len);

struct setting {
    const char *env;      /* environment variable, NULL for a file-only alias */
    const char *path;     /* dotted YAML path */
    const char *alias_of; /* for an old YAML name: the path that wins over it */
    parse_fn parse;
    size_t field;         /* offsetof() the field written by the generic parsers */
    long long min, max;   /* range of numeric settings */
    const char *unit;     /* unit of numeric settings, for messages and help */
    const char *fallback; /* default, parsed at start, or NULL to leave the field unset */
    const char *help;
};

static int parse_listen(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_redis_url(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_prefix(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_secret(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_size(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_int(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_long(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_http_url(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_token(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_poll_enabled(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_bool(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_proxies(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_log_level(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_price(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_prices(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_dir(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_file(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_session_secret(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_origins(jw_config_t *, const setting_t *, const char *, char *, size_t);
static int parse_seconds_ms(jw_config_t *, const setting_t *, const char *, char *, size_t);

#define FIELD(name) offsetof(jw_config_t, name)

/* Every setting, in --help order. Kept one setting per block, not one field per line. */
/* clang-format off */
static const setting_t settings[] = {
    {.env = "JOBWIRE_LISTEN", .path = "listen", .parse = parse_listen,
     .fallback = "0.0.0.0:8001", .help = "HTTP listen address: host:port, [v6]:port or :port"},
    {.env = "JOBWIRE_REDIS_URL", .path = "redis.url", .parse = parse_redis_url,
     .fallback = "redis://127.0.0.1:6379/0",
     .help = "Redis server, redis://[[user]:password@]host[:port][/db], db 0-15"},
    {.env = "JOBWIRE_REDIS_PREFIX", .path = "redis.prefix", .parse = parse_prefix,
     .fallback = "jw:", .help = "prefix of every Redis key, 1-64 printable characters"},
    {.env = "REPLICATE_WEBHOOK_SECRET", .path = "providers.replicate.webhook_secret",
     .parse = parse_secret, .help = "Replicate webhook signing secret, whsec_<base64>"},
    {.env = "JOBWIRE_WEBHOOK_MAX_BODY", .path = "webhook.max_body", .parse = parse_size,
     .field = FIELD(webhook_max_body), .min = (long long)KIB, .max = (long long)GIB,
     .fallback = "16MiB", .help = "maximum webhook body size"},
    {.env = "JOBWIRE_WEBHOOK_TOLERANCE", .path = "webhook.tolerance_seconds", .parse = parse_int,
     .field = FIELD(webhook_tolerance_s), .min = 1, .max = 3600, .unit = "seconds",
     .fallback = "300", .help = "maximum clock skew of a webhook timestamp"},
    {.env = "JOBWIRE_DELIVERY_TTL", .path = "webhook.delivery_ttl_seconds", .parse = parse_int,
     .field = FIELD(delivery_ttl_s), .min = 60, .max = 30 * 86400, .unit = "seconds",
     .fallback = "86400", .help = "how long a webhook-id is kept to detect duplicates"},
    {.env = "JOBWIRE_PUBLIC_URL", .path = "providers.replicate.webhook_url",
     .parse = parse_http_url, .field = FIELD(public_url),
     .help = "public http(s) URL that Replicate sends webhooks to"},
    {.env = "JOBWIRE_REPLICATE_API_URL", .path = "providers.replicate.api_url",
     .parse = parse_http_url, .field = FIELD(replicate_api_url),
     .fallback = "https://api.replicate.com/v1", .help = "Replicate API base URL"},
    {.env = "REPLICATE_API_TOKEN", .path = "providers.replicate.api_token", .parse = parse_token,
     .help = "Replicate API token"},
    {.env = "JOBWIRE_REPLICATE_TIMEOUT_MS", .path = "providers.replicate.timeout_ms",
     .parse = parse_int, .field = FIELD(replicate_timeout_ms), .min = 1000, .max = 600000,
     .unit = "ms", .fallback = "30000",
     .help = "time limit of one Replicate API call, retries included"},
    {.env = "JOBWIRE_REPLICATE_CONNECT_MS", .path = "providers.replicate.connect_timeout_ms",
     .parse = parse_int, .field = FIELD(replicate_connect_timeout_ms), .min = 100, .max = 60000,
     .unit = "ms", .fallback = "5000", .help = "time limit of one connection to Replicate"},
    {.env = "JOBWIRE_REPLICATE_INFLIGHT", .path = "providers.replicate.max_inflight",
     .parse = parse_int, .field = FIELD(replicate_max_inflight), .min = 1, .max = 256,
     .unit = "requests", .fallback = "8",
     .help = "Replicate API requests in flight at once; more wait in a queue"},
    {.env = "JOBWIRE_REPLICATE_ATTEMPTS", .path = "providers.replicate.max_attempts",
     .parse = parse_int, .field = FIELD(replicate_max_attempts), .min = 1, .max = 10,
     .unit = "attempts", .fallback = "4",
     .help = "attempts of one Replicate API call after 429, 5xx and network errors"},
    {.env = "JOBWIRE_POLL_ENABLED", .path = "background.job_status_polling.enabled",
     .parse = parse_poll_enabled, .field = FIELD(poll_enabled), .fallback = "auto",
     .help = "job status polling: true, false or auto (on only without a webhook)"},
    {.env = "SIMPLETUNER_JOB_POLL_INTERVAL",
     .path = "background.job_status_polling.interval_seconds", .parse = parse_int,
     .field = FIELD(poll_interval_s), .min = 5, .max = 86400, .unit = "seconds",
     .fallback = "30", .help = "job status polling interval"},
    {.path = "job_polling_interval", .alias_of = "background.job_status_polling.interval_seconds",
     .parse = parse_int, .field = FIELD(poll_interval_s), .min = 5, .max = 86400,
     .unit = "seconds"},
    {.env = "JOBWIRE_POLL_RATE", .path = "background.job_status_polling.max_requests_per_minute",
     .parse = parse_int, .field = FIELD(poll_rate_per_min), .min = 1, .max = 100000,
     .unit = "requests", .fallback = "540",
     .help = "provider reads per minute the poller may make (Replicate allows 600)"},
    {.env = "JOBWIRE_STALE_AFTER", .path = "background.job_status_polling.stale_after_seconds",
     .parse = parse_int, .field = FIELD(stale_after_s), .min = 0, .max = 30 * 86400,
     .unit = "seconds", .fallback = "600",
     .help = "with webhooks on, check an active job after this long without a change; 0: never"},
    {.env = "JOBWIRE_PRICES", .path = "cost.prices", .parse = parse_prices,
     .help = "per-second prices in USD, hardware=price,... over the built-in Replicate table"},
    {.env = "JOBWIRE_DEFAULT_PRICE", .path = "cost.default_price_per_second",
     .parse = parse_price, .field = FIELD(default_price), .fallback = "0.001525",
     .help = "USD per second for hardware missing from the price table (one H100)"},
    {.env = "JOBWIRE_QUEUE_ENABLED", .path = "background.queue_processing.enabled",
     .parse = parse_bool, .field = FIELD(queue_enabled), .fallback = "true",
     .help = "submission queue processing, true or false"},
    {.env = "JOBWIRE_QUEUE_INTERVAL", .path = "background.queue_processing.interval_seconds",
     .parse = parse_seconds_ms, .field = FIELD(queue_interval_ms), .min = 100, .max = 3600000,
     .unit = "seconds", .fallback = "5",
     .help = "submission queue interval, decimals allowed (0.5)"},
    {.env = "JOBWIRE_QUEUE_MAX_CONCURRENT", .path = "background.queue_processing.max_concurrent",
     .parse = parse_int, .field = FIELD(queue_max_concurrent), .min = 1, .max = 10000,
     .unit = "jobs", .fallback = "2",
     .help = "max submitted jobs running at once (started, not finished), across all replicas"},
    {.env = "JOBWIRE_QUEUE_MAX_PER_USER",
     .path = "background.queue_processing.max_concurrent_per_user", .parse = parse_int,
     .field = FIELD(queue_max_per_user), .min = 0, .max = 10000, .unit = "jobs",
     .fallback = "0", .help = "started submitted jobs per user_id; 0: no per-user limit"},
    {.env = "JOBWIRE_QUEUE_EXCLUSIVE", .path = "background.queue_processing.exclusive",
     .parse = parse_bool, .field = FIELD(queue_exclusive), .fallback = "true",
     .help = "one replica at a time runs queue rounds (a lease); false: every replica does, "
             "and slots still never exceed max_concurrent"},
    {.env = "JOBWIRE_QUEUE_MAX_PENDING", .path = "background.queue_processing.max_pending",
     .parse = parse_int, .field = FIELD(queue_max_pending), .min = 1, .max = 100000,
     .unit = "jobs", .fallback = "1000",
     .help = "submitted jobs waiting for a slot; more are rejected with 503 queue_full"},
    {.env = "JOBWIRE_SSE_MAX_PER_IP", .path = "sse.max_per_ip", .parse = parse_int,
     .field = FIELD(sse_max_per_ip), .min = 1, .max = 10000, .unit = "connections",
     .fallback = "5", .help = "maximum SSE connections per client IP"},
    {.env = "JOBWIRE_SSE_MAX_CLIENTS", .path = "sse.max_clients", .parse = parse_int,
     .field = FIELD(sse_max_clients), .min = 1, .max = 1000000, .unit = "connections",
     .fallback = "20000", .help = "maximum SSE connections per replica"},
    {.env = "JOBWIRE_SSE_HEARTBEAT", .path = "sse.heartbeat_seconds", .parse = parse_int,
     .field = FIELD(sse_heartbeat_s), .min = 1, .max = 300, .unit = "seconds",
     .fallback = "15", .help = "SSE heartbeat period"},
    {.env = "JOBWIRE_SSE_CLIENT_BUFFER", .path = "sse.client_buffer", .parse = parse_size,
     .field = FIELD(sse_client_buffer_max), .min = (long long)(4 * KIB), .max = (long long)GIB,
     .fallback = "1MiB", .help = "maximum unsent data per SSE client before it is dropped"},
    {.env = "JOBWIRE_TRUSTED_PROXIES", .path = "sse.trusted_proxies", .parse = parse_proxies,
     .help = "comma-separated CIDR blocks of proxies whose X-Forwarded-For is trusted"},
    {.env = "JOBWIRE_API_KEYS_FILE", .path = "auth.api_keys_file", .parse = parse_file,
     .field = FIELD(api_keys_file),
     .help = "API key file, one \"NAME ROLES KEY\" per line; unset: only loopback clients "
             "are served"},
    {.env = "JOBWIRE_ALLOW_ANONYMOUS", .path = "auth.allow_anonymous", .parse = parse_bool,
     .field = FIELD(allow_anonymous), .fallback = "false",
     .help = "without API keys, serve every client, not only loopback (trusted networks only)"},
    {.env = "JOBWIRE_SESSION_SECRET", .path = "auth.session_secret",
     .parse = parse_session_secret,
     .help = "secret that signs dashboard session cookies, at least 32 characters, the same "
             "on every replica; unset: a random one per process"},
    {.env = "JOBWIRE_SESSION_TTL", .path = "auth.session_ttl_seconds", .parse = parse_int,
     .field = FIELD(session_ttl_s), .min = 60, .max = 30 * 86400, .unit = "seconds",
     .fallback = "43200", .help = "lifetime of a dashboard session"},
    {.env = "JOBWIRE_COOKIE_SECURE", .path = "auth.cookie_secure", .parse = parse_poll_enabled,
     .field = FIELD(cookie_secure), .fallback = "auto",
     .help = "mark the session cookie Secure: true, false or auto (when the public URL is https)"},
    {.env = "JOBWIRE_CORS_ORIGINS", .path = "auth.cors_origins", .parse = parse_origins,
     .help = "comma-separated origins (scheme://host[:port]) allowed to call the API from a "
             "browser; unset: none"},
    {.env = "JOBWIRE_RATE_LIMIT", .path = "auth.rate_limit_per_minute", .parse = parse_int,
     .field = FIELD(rate_limit_per_min), .min = 0, .max = 1000000, .unit = "calls",
     .fallback = "60", .help = "mutating calls per minute per API key, across replicas; 0: no limit"},
    {.env = "JOBWIRE_LOGIN_RATE_LIMIT", .path = "auth.login_rate_per_minute", .parse = parse_int,
     .field = FIELD(login_rate_per_min), .min = 0, .max = 1000000, .unit = "attempts",
     .fallback = "10", .help = "dashboard login attempts per minute per client IP; 0: no limit"},
    {.env = "JOBWIRE_AUDIT_MAXLEN", .path = "auth.audit_maxlen", .parse = parse_long,
     .field = FIELD(audit_maxlen), .min = 100, .max = 100000000, .unit = "entries",
     .fallback = "100000", .help = "approximate length cap of the audit trail"},
    {.env = "JOBWIRE_METRICS_AUTH", .path = "auth.metrics_require_key",
     .parse = parse_poll_enabled, .field = FIELD(metrics_auth), .fallback = "auto",
     .help = "/metrics needs a key with the read role: true, false, or auto (when a key file "
             "is set; without one, loopback clients only)"},
    {.env = "JOBWIRE_CHANGES_MAXLEN", .path = "streams.changes_maxlen", .parse = parse_long,
     .field = FIELD(changes_maxlen), .min = 1000, .max = 100000000, .unit = "entries",
     .fallback = "100000", .help = "approximate length cap of the change stream"},
    {.env = "JOBWIRE_CLAIM_IDLE_MS", .path = "streams.claim_idle_ms", .parse = parse_int,
     .field = FIELD(claim_idle_ms), .min = 1000, .max = 3600000, .unit = "ms",
     .fallback = "30000", .help = "idle time before a dead replica's events are reclaimed"},
    {.env = "JOBWIRE_LOG_LEVEL", .path = "log_level", .parse = parse_log_level,
     .fallback = "info", .help = "log level: debug, info, warn or error"},
    {.env = "JOBWIRE_WEB_ROOT", .path = "web.root", .parse = parse_dir, .field = FIELD(web_root),
     .help = "directory of the dashboard's files served at /. When unset: the installed "
             "share/jobwire/web, or web/ in the source tree for a binary in its build tree"},
};
/* clang-format on */

#define SETTING_COUNT (sizeof(settings) / sizeof(settings[0]))

/* ---- small helpers ---- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;

    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Small fixed allocations abort on failure: there is no useful fallback. */
static char *xstrdup(const char *s)
{
    char *copy = strdup(s);
    if (copy == NULL)
        abort();
    return copy;
}

static void replace_string(char **slot, const char *value)
{
    free(*slot);
    *slot = value != NULL ? xstrdup(value) : NULL;
}

/* Frees a string that held a secret, clearing it first. */
static void free_secret(char **slot)
{
    if (*slot != NULL) {
        explicit_bzero(*slot, strlen(*slot));
        free(*slot);
        *slot = NULL;
    }
}

/*
 * Copies value into out for an error message: at most ECHO_MAX bytes,
 * quotes, backslashes and anything outside printable ASCII as '?', so a
 * message stays one readable line whatever the input was.
 */
static const char *echo_value(const char *value, char *out, size_t outlen)
{
    size_t n = 0;
    size_t i = 0;

    for (; value[i] != '\0' && i < ECHO_MAX && n + 1 < outlen; i++) {
        unsigned char c = (unsigned char)value[i];
        out[n++] = (c < 0x20 || c > 0x7e || c == '"' || c == '\\') ? '?' : (char)c;
    }
    if (value[i] != '\0' && n + 3 < outlen) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

/* Parses a string that contains only decimal digits, without sign, space or suffix. */
static int parse_decimal(const char *text, long long *out)
{
    if (!isdigit((unsigned char)text[0]))
        return -1;

    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;

    *out = v;
    return 0;
}

static int has_space_or_control(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c == 0x7f)
            return 1;
    }
    return 0;
}

/* ---- numbers, sizes and booleans ---- */

static int parse_range(const setting_t *s, const char *value, long long *out, char *reason,
                       size_t reason_len)
{
    char echo[ECHO_MAX + 4];
    long long v = 0;

    if (parse_decimal(value, &v) != 0 || v < s->min || v > s->max) {
        snprintf(reason, reason_len, "must be an integer %lld-%lld%s%s (got \"%s\")", s->min,
                 s->max, s->unit != NULL ? " " : "", s->unit != NULL ? s->unit : "",
                 echo_value(value, echo, sizeof(echo)));
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_int(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                     size_t reason_len)
{
    long long v = 0;

    if (parse_range(s, value, &v, reason, reason_len) != 0)
        return -1;
    *(int *)((char *)cfg + s->field) = (int)v;
    return 0;
}

static int parse_long(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                      size_t reason_len)
{
    long long v = 0;

    if (parse_range(s, value, &v, reason, reason_len) != 0)
        return -1;
    *(long *)((char *)cfg + s->field) = (long)v;
    return 0;
}

/*
 * Parses decimal seconds with at most three fractional digits ("5",
 * "0.25") into milliseconds within [s->min, s->max] ms. Sub-second
 * intervals are meant for tests.
 */
static int parse_seconds_ms(jw_config_t *cfg, const setting_t *s, const char *value,
                            char *reason, size_t reason_len)
{
    char echo[ECHO_MAX + 4];
    const char *dot = strchr(value, '.');
    long long whole = 0, ms = 0;
    size_t digits = dot != NULL ? strlen(dot + 1) : 0;
    char integer[24];
    size_t int_len = dot != NULL ? (size_t)(dot - value) : strlen(value);
    int ok = int_len > 0 && int_len < sizeof(integer) && (dot == NULL || (digits >= 1 && digits <= 3));

    if (ok) {
        memcpy(integer, value, int_len);
        integer[int_len] = '\0';
        ok = parse_decimal(integer, &whole) == 0 && whole <= s->max / 1000;
    }
    for (size_t i = 0; ok && i < 3; i++) {
        char c = i < digits ? dot[1 + i] : '0';
        ok = isdigit((unsigned char)c);
        ms = ms * 10 + (c - '0');
    }
    if (ok)
        ms += whole * 1000;
    if (!ok || ms < s->min || ms > s->max) {
        snprintf(reason, reason_len, "must be %g-%g seconds, at most 3 decimals (got \"%s\")",
                 (double)s->min / 1000, (double)s->max / 1000,
                 echo_value(value, echo, sizeof(echo)));
        return -1;
    }
    *(int *)((char *)cfg + s->field) = (int)ms;
    return 0;
}

/* Writes a byte count the way a person would type it: "16MiB", "4KiB" or "1000". */
static const char *format_size(unsigned long long bytes, char *out, size_t outlen)
{
    if (bytes >= GIB && bytes % GIB == 0)
        snprintf(out, outlen, "%lluGiB", bytes / GIB);
    else if (bytes >= MIB && bytes % MIB == 0)
        snprintf(out, outlen, "%lluMiB", bytes / MIB);
    else if (bytes >= KIB && bytes % KIB == 0)
        snprintf(out, outlen, "%lluKiB", bytes / KIB);
    else
        snprintf(out, outlen, "%llu", bytes);
    return out;
}

/* Returns the multiplier of a size suffix, or 0 for an unknown suffix. All are powers of 1024. */
static unsigned long long size_multiplier(const char *suffix)
{
    static const struct {
        const char *name;
        unsigned long long factor;
    } suffixes[] = {
        {"", 1},    {"k", KIB},   {"K", KIB}, {"KiB", KIB},
        {"M", MIB}, {"MiB", MIB}, {"G", GIB}, {"GiB", GIB},
    };

    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (strcmp(suffix, suffixes[i].name) == 0)
            return suffixes[i].factor;
    }
    return 0;
}

/* Parses "1048576", "512k", "16M", "16MiB" or "1G" into bytes. */
static int parse_size_text(const char *text, unsigned long long *out)
{
    if (!isdigit((unsigned char)text[0]))
        return -1;

    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    unsigned long long factor = size_multiplier(end);
    if (errno != 0 || factor == 0 || n > ULLONG_MAX / factor)
        return -1;

    *out = n * factor;
    return 0;
}

static int parse_size(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                      size_t reason_len)
{
    unsigned long long bytes = 0;

    if (parse_size_text(value, &bytes) != 0 || bytes < (unsigned long long)s->min ||
        bytes > (unsigned long long)s->max) {
        char lo[32], hi[32], echo[ECHO_MAX + 4];
        snprintf(reason, reason_len,
                 "must be a size of %s-%s, in bytes or with a k, M or G suffix (got \"%s\")",
                 format_size((unsigned long long)s->min, lo, sizeof(lo)),
                 format_size((unsigned long long)s->max, hi, sizeof(hi)),
                 echo_value(value, echo, sizeof(echo)));
        return -1;
    }
    *(size_t *)((char *)cfg + s->field) = (size_t)bytes;
    return 0;
}

/* Returns 1 or 0 for the YAML 1.1 boolean words (and 1/0), -1 for anything else. */
static int bool_value(const char *text)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0)
            return 1;
        if (strcasecmp(text, no[i]) == 0)
            return 0;
    }
    return -1;
}

static int parse_bool(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                      size_t reason_len)
{
    char echo[ECHO_MAX + 4];
    int v = bool_value(value);

    if (v < 0) {
        snprintf(reason, reason_len, "must be true or false (or yes/no, on/off) (got \"%s\")",
                 echo_value(value, echo, sizeof(echo)));
        return -1;
    }
    *(int *)((char *)cfg + s->field) = v;
    return 0;
}

/* Like a boolean, plus "auto" (-1), which the user of the setting decides
 * at start: poll only without a webhook, a Secure cookie only over https,
 * a key for /metrics only with a key file. */
static int parse_poll_enabled(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                              size_t reason_len)
{
    char echo[ECHO_MAX + 4];
    int v = strcasecmp(value, "auto") == 0 ? -1 : bool_value(value);

    if (v == -1 && strcasecmp(value, "auto") != 0) {
        snprintf(reason, reason_len, "must be true, false or auto (got \"%s\")",
                 echo_value(value, echo, sizeof(echo)));
        return -1;
    }
    *(int *)((char *)cfg + s->field) = v;
    return 0;
}

/* Prices: USD per second, a plain decimal 0-1 (the dearest Replicate machine costs about 0.01). */
static int price_value(const char *text, double *out)
{
    char *end = NULL;

    if (!isdigit((unsigned char)text[0]))
        return -1;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(v >= 0 && v <= 1))
        return -1;
    *out = v;
    return 0;
}

static int parse_price(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                       size_t reason_len)
{
    char echo[ECHO_MAX + 4];
    double v = 0;

    if (price_value(value, &v) != 0) {
        snprintf(reason, reason_len, "must be a price in USD per second, 0-1 (got \"%s\")",
                 echo_value(value, echo, sizeof(echo)));
        return -1;
    }
    *(double *)((char *)cfg + s->field) = v;
    return 0;
}

/* Reads one "hardware=price" item of [begin, end) into p. */
static int parse_price_item(const char *begin, const char *end, jw_price_t *p, char *reason,
                            size_t reason_len)
{
    char item[96], echo[ECHO_MAX + 4];
    size_t len = (size_t)(end - begin);
    char *eq;

    if (len >= sizeof(item))
        len = sizeof(item) - 1;
    memcpy(item, begin, len);
    item[len] = '\0';
    eq = strchr(item, '=');
    if (eq == NULL || eq == item || (size_t)(eq - item) >= sizeof(p->hardware)) {
        snprintf(reason, reason_len, "each item must be hardware=price, a name of 1-%zu "
                 "characters (got \"%s\")", sizeof(p->hardware) - 1,
                 echo_value(item, echo, sizeof(echo)));
        return -1;
    }
    *eq = '\0';
    if (has_space_or_control(item) || price_value(eq + 1, &p->usd_per_s) != 0) {
        snprintf(reason, reason_len, "%s: price must be USD per second, 0-1 (got \"%s\")",
                 echo_value(item, echo, sizeof(echo)), eq + 1);
        return -1;
    }
    memcpy(p->hardware, item, (size_t)(eq - item) + 1);
    return 0;
}

/* "gpu-h100=0.001525,cpu=0.0001": entries that override or extend cost.c's table. */
static int parse_prices(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                        size_t reason_len)
{
    jw_price_t prices[JW_CONFIG_MAX_PRICES];
    int count = 0;
    const char *p = value;

    (void)s;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        const char *end = comma != NULL ? comma : p + strlen(p);

        if (count == JW_CONFIG_MAX_PRICES) {
            snprintf(reason, reason_len, "at most %d entries", JW_CONFIG_MAX_PRICES);
            return -1;
        }
        if (parse_price_item(p, end, &prices[count], reason, reason_len) != 0)
            return -1;
        count++;
        p = comma != NULL ? comma + 1 : end;
    }
    memcpy(cfg->prices, prices, sizeof(prices[0]) * (size_t)count);
    cfg->price_count = count;
    return 0;
}

static int parse_log_level(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                           size_t reason_len)
{
    char lower[16];
    char echo[ECHO_MAX + 4];
    size_t n = 0;

    (void)s;
    for (; value[n] != '\0' && n + 1 < sizeof(lower); n++)
        lower[n] = (char)tolower((unsigned char)value[n]);
    lower[n] = '\0';

    int level = value[n] == '\0' ? jw_log_parse_level(lower) : -1;
    if (level < 0 && strcmp(lower, "warning") == 0)
        level = JW_LOG_WARN;
    if (level < 0) {
        snprintf(reason, reason_len, "must be debug, info, warn or error (got \"%s\")",
                 echo_value(value, echo, sizeof(echo)));
        return -1;
    }
    cfg->log_level = level;
    return 0;
}

/* ---- strings ---- */

static int parse_prefix(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                        size_t reason_len)
{
    char echo[ECHO_MAX + 4];
    size_t len = strlen(value);

    (void)s;
    if (len == 0 || len > 64 || has_space_or_control(value)) {
        snprintf(reason, reason_len, "must be 1-64 characters without spaces (got \"%s\")",
                 echo_value(value, echo, sizeof(echo)));
        return -1;
    }
    replace_string(&cfg->redis_prefix, value);
    return 0;
}

/* Checks for http:// or https://, a host and no spaces, then strips trailing slashes. */
static int parse_http_url(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                          size_t reason_len)
{
    char echo[ECHO_MAX + 4];
    size_t scheme = 0;

    if (strncasecmp(value, "https://", 8) == 0)
        scheme = 8;
    else if (strncasecmp(value, "http://", 7) == 0)
        scheme = 7;

    size_t len = strlen(value);
    if (scheme == 0 || len > 2048 || has_space_or_control(value) || value[scheme] == '\0' ||
        value[scheme] == '/') {
        snprintf(reason, reason_len, "must be an http:// or https:// URL with a host (got \"%s\")",
                 echo_value(value, echo, sizeof(echo)));
        return -1;
    }

    /* Callers append paths to these URLs, so "https://x/" and "https://x" must mean the same. */
    while (len > scheme + 1 && value[len - 1] == '/')
        len--;
    char **slot = (char **)((char *)cfg + s->field);
    free(*slot);
    *slot = strndup(value, len);
    if (*slot == NULL)
        abort();
    return 0;
}

/* An existing directory, kept as given (H2O resolves it per request). */
static int parse_dir(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                     size_t reason_len)
{
    char echo[ECHO_MAX + 4];
    struct stat st;

    if (value[0] == '\0' || strlen(value) > 1024 || stat(value, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(reason, reason_len, "must be an existing directory (got \"%s\")",
                 echo_value(value, echo, sizeof(echo)));
        return -1;
    }
    replace_string((char **)((char *)cfg + s->field), value);
    return 0;
}

/* A readable regular file, kept as given; its contents are read by the
 * module that uses it. */
static int parse_file(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                      size_t reason_len)
{
    char echo[ECHO_MAX + 4];
    struct stat st;

    if (value[0] == '\0' || strlen(value) > 1024 || stat(value, &st) != 0 ||
        !S_ISREG(st.st_mode) || access(value, R_OK) != 0) {
        snprintf(reason, reason_len, "must be a readable file (got \"%s\")",
                 echo_value(value, echo, sizeof(echo)));
        return -1;
    }
    replace_string((char **)((char *)cfg + s->field), value);
    return 0;
}

/* The value is never repeated in a message: it is a credential. */
static int parse_session_secret(jw_config_t *cfg, const setting_t *s, const char *value,
                                char *reason, size_t reason_len)
{
    (void)s;
    if (strlen(value) < 32 || strlen(value) > 1024) {
        snprintf(reason, reason_len, "must be 32-1024 characters");
        return -1;
    }
    if (has_space_or_control(value)) {
        snprintf(reason, reason_len,
                 "must not contain spaces or control characters (a trailing newline?)");
        return -1;
    }
    free_secret(&cfg->session_secret);
    cfg->session_secret = xstrdup(value);
    return 0;
}

/* One origin as browsers send it: http(s)://host[:port], no path. */
static int origin_ok(const char *o, size_t len)
{
    size_t skip = strncmp(o, "https://", 8) == 0 ? 8 : strncmp(o, "http://", 7) == 0 ? 7 : 0;

    if (skip == 0 || len <= skip || len >= JW_CONFIG_ORIGIN_MAX)
        return 0;
    for (size_t i = skip; i < len; i++) {
        unsigned char c = (unsigned char)o[i];
        if (!isalnum(c) && c != '.' && c != '-' && c != ':' && c != '[' && c != ']')
            return 0;
    }
    return 1;
}

static int parse_origins(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                         size_t reason_len)
{
    char echo[ECHO_MAX + 4];
    char list[JW_CONFIG_MAX_ORIGINS][JW_CONFIG_ORIGIN_MAX];
    int count = 0;

    (void)s;
    for (const char *p = value; *value != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len > 0 && *p == ' ')
            p++, len--;
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (!origin_ok(p, len) || count == JW_CONFIG_MAX_ORIGINS) {
            snprintf(reason, reason_len,
                     "must be at most %d origins like https://host[:port], comma-separated "
                     "(got \"%s\")", JW_CONFIG_MAX_ORIGINS, echo_value(value, echo, sizeof(echo)));
            return -1;
        }
        memcpy(list[count], p, len);
        list[count++][len] = '\0';
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    memcpy(cfg->cors_origins, list, sizeof(list));
    cfg->cors_origin_count = count;
    return 0;
}

/* The value is never repeated in a message: it is a credential. */
static int parse_token(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                       size_t reason_len)
{
    (void)s;
    if (strlen(value) > 1024) {
        snprintf(reason, reason_len, "must be at most 1024 characters");
        return -1;
    }
    if (has_space_or_control(value)) {
        snprintf(reason, reason_len,
                 "must not contain spaces or control characters (a trailing newline?)");
        return -1;
    }
    free_secret(&cfg->replicate_token);
    cfg->replicate_token = xstrdup(value);
    return 0;
}

/* The value is never repeated in a message: it is a credential. */
static int parse_secret(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                        size_t reason_len)
{
    char verify_reason[REASON_MAX];
    jw_verify_key_t key;

    (void)s;
    if (strncmp(value, "v1,", 3) == 0) {
        snprintf(reason, reason_len,
                 "must start with whsec_ (this looks like a v1, signature, "
                 "not the signing secret)");
        return -1;
    }
    if (strncmp(value, "whsec_", 6) != 0) {
        snprintf(reason, reason_len, "must start with whsec_");
        return -1;
    }

    verify_reason[0] = '\0';
    if (jw_verify_parse_secret(value, &key, verify_reason, sizeof(verify_reason)) != 0) {
        snprintf(reason, reason_len, "%s",
                 verify_reason[0] != '\0' ? verify_reason : "invalid webhook secret");
        explicit_bzero(&key, sizeof(key));
        return -1;
    }
    cfg->webhook_key = key;
    cfg->has_webhook_secret = 1;
    explicit_bzero(&key, sizeof(key));
    return 0;
}

/* ---- host:port, shared by JOBWIRE_LISTEN and JOBWIRE_REDIS_URL ---- */

static int valid_hostname(const char *host)
{
    size_t len = strlen(host);

    if (len == 0 || len > 253)
        return 0;
    for (const char *p = host; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
            return 0;
    }
    return 1;
}

/*
 * Splits "host:port", "[v6]:port", "[v6]", "host" or ":port" into host
 * (brackets removed, "" when absent) and port (NULL when absent).
 */
static int split_host_port(const char *text, char *host, size_t hostlen, const char **port,
                           char *reason, size_t reason_len)
{
    const char *host_start = text;
    const char *host_end = NULL;
    const char *rest = NULL;

    if (text[0] == '[') {
        host_start = text + 1;
        host_end = strchr(host_start, ']');
        if (host_end == NULL || (host_end[1] != '\0' && host_end[1] != ':')) {
            snprintf(reason, reason_len, "an IPv6 address must be written [address]:port");
            return -1;
        }
        rest = host_end + 1;
    } else {
        host_end = strchr(text, ':');
        if (host_end != NULL && strchr(host_end + 1, ':') != NULL) {
            snprintf(reason, reason_len, "an IPv6 address needs brackets, e.g. [::1]:8001");
            return -1;
        }
        rest = host_end != NULL ? host_end : text + strlen(text);
        host_end = rest;
    }

    size_t len = (size_t)(host_end - host_start);
    if (len >= hostlen) {
        snprintf(reason, reason_len, "host name is too long");
        return -1;
    }
    memcpy(host, host_start, len);
    host[len] = '\0';
    *port = rest[0] == ':' ? rest + 1 : NULL;
    return 0;
}

static int check_host(const char *host, int bracketed, char *reason, size_t reason_len)
{
    char echo[ECHO_MAX + 4];
    unsigned char buf[16];

    if (bracketed ? inet_pton(AF_INET6, host, buf) == 1 : valid_hostname(host))
        return 0;
    snprintf(reason, reason_len, "invalid %s (got \"%s\")",
             bracketed ? "IPv6 address" : "host name", echo_value(host, echo, sizeof(echo)));
    return -1;
}

static int parse_port(const char *text, int *port, char *reason, size_t reason_len)
{
    char echo[ECHO_MAX + 4];
    long long v = 0;

    if (parse_decimal(text, &v) != 0 || v < 1 || v > 65535) {
        snprintf(reason, reason_len, "port must be 1-65535 (got \"%s\")",
                 echo_value(text, echo, sizeof(echo)));
        return -1;
    }
    *port = (int)v;
    return 0;
}

static int parse_listen(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                        size_t reason_len)
{
    char host[256];
    const char *port_text = NULL;
    int port = 0;

    (void)s;
    if (split_host_port(value, host, sizeof(host), &port_text, reason, reason_len) != 0)
        return -1;
    if (port_text == NULL) {
        snprintf(reason, reason_len, "must be host:port, [v6]:port or :port (the port is missing)");
        return -1;
    }
    if (parse_port(port_text, &port, reason, reason_len) != 0)
        return -1;
    if (host[0] != '\0' && check_host(host, value[0] == '[', reason, reason_len) != 0)
        return -1;

    replace_string(&cfg->listen_host, host[0] != '\0' ? host : "0.0.0.0");
    cfg->listen_port = port;
    return 0;
}

/* ---- JOBWIRE_REDIS_URL ---- */

typedef struct redis_target {
    char host[256];
    int port;
    int db;
    char *user;     /* NULL when none */
    char *password; /* NULL when none */
} redis_target_t;

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the %XX escapes of [text, text + len) into a new string, or NULL for a bad or %00. */
static char *percent_decode(const char *text, size_t len)
{
    char *out = malloc(len + 1);
    size_t n = 0;

    if (out == NULL)
        abort();
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '%') {
            out[n++] = text[i];
            continue;
        }
        int hi = i + 2 < len ? hex_digit(text[i + 1]) : -1;
        int lo = hi >= 0 ? hex_digit(text[i + 2]) : -1;
        if (lo < 0 || (hi == 0 && lo == 0)) {
            explicit_bzero(out, n);
            free(out);
            return NULL;
        }
        out[n++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[n] = '\0';
    return out;
}

/* Parses "[user]:password" (the part before '@'). Never repeats the password in reason. */
static int parse_userinfo(const char *text, size_t len, redis_target_t *t, char *reason,
                          size_t reason_len)
{
    const char *colon = memchr(text, ':', len);

    if (colon == NULL) {
        snprintf(reason, reason_len, "credentials must be written user:password@ or :password@");
        return -1;
    }

    size_t user_len = (size_t)(colon - text);
    size_t pass_len = len - user_len - 1;
    if (pass_len == 0) {
        snprintf(reason, reason_len, "the password after ':' is empty");
        return -1;
    }

    t->password = percent_decode(colon + 1, pass_len);
    t->user = user_len > 0 ? percent_decode(text, user_len) : NULL;
    if (t->password == NULL || (user_len > 0 && t->user == NULL)) {
        snprintf(reason, reason_len, "invalid %%XX escape in the user name or password");
        return -1;
    }
    return 0;
}

static int parse_redis_db(const char *text, int *db, char *reason, size_t reason_len)
{
    char echo[ECHO_MAX + 4];
    long long v = 0;

    if (text[0] == '\0')
        return 0;
    if (parse_decimal(text, &v) != 0 || v > 15) {
        snprintf(reason, reason_len, "database must be 0-15 (got \"%s\")",
                 echo_value(text, echo, sizeof(echo)));
        return -1;
    }
    *db = (int)v;
    return 0;
}

/* Parses "host[:port][/db]", the part after any '@'. */
static int parse_redis_address(const char *text, redis_target_t *t, char *reason, size_t reason_len)
{
    char hostport[300];
    const char *slash = strchr(text, '/');
    size_t len = slash != NULL ? (size_t)(slash - text) : strlen(text);
    const char *port_text = NULL;

    if (len >= sizeof(hostport)) {
        snprintf(reason, reason_len, "host name is too long");
        return -1;
    }
    memcpy(hostport, text, len);
    hostport[len] = '\0';

    if (split_host_port(hostport, t->host, sizeof(t->host), &port_text, reason, reason_len) != 0)
        return -1;
    if (t->host[0] == '\0') {
        snprintf(reason, reason_len, "the host is missing");
        return -1;
    }
    if (check_host(t->host, hostport[0] == '[', reason, reason_len) != 0)
        return -1;
    if (port_text != NULL && parse_port(port_text, &t->port, reason, reason_len) != 0)
        return -1;
    return slash != NULL ? parse_redis_db(slash + 1, &t->db, reason, reason_len) : 0;
}

/* Names the scheme of a rejected URL, without repeating the rest (it may hold a password). */
static void explain_scheme(const char *value, char *reason, size_t reason_len)
{
    char echo[ECHO_MAX + 4];
    const char *sep = strstr(value, "://");
    size_t len = sep != NULL ? (size_t)(sep - value) : 0;

    if (len == 0 || len > 16) {
        snprintf(reason, reason_len, "must be a redis://host[:port][/db] URL");
        return;
    }
    char scheme[17];
    memcpy(scheme, value, len);
    scheme[len] = '\0';
    snprintf(reason, reason_len, "only redis:// URLs are supported (got scheme \"%s\"%s)",
             echo_value(scheme, echo, sizeof(echo)),
             strcasecmp(scheme, "rediss") == 0 ? "; TLS is not supported" : "");
}

static int parse_redis_target(const char *value, redis_target_t *t, char *reason, size_t reason_len)
{
    if (strncasecmp(value, "redis://", 8) != 0) {
        explain_scheme(value, reason, reason_len);
        return -1;
    }

    const char *rest = value + 8;
    if (strpbrk(rest, "?#") != NULL) {
        snprintf(reason, reason_len, "query parameters and fragments are not supported");
        return -1;
    }

    /* The last '@' ends the credentials, so an unescaped '@' or '/' in a password still works. */
    const char *at = strrchr(rest, '@');
    if (at != NULL && parse_userinfo(rest, (size_t)(at - rest), t, reason, reason_len) != 0)
        return -1;
    return parse_redis_address(at != NULL ? at + 1 : rest, t, reason, reason_len);
}

/* Builds the URL kept for logs: every part normalised, the password as "***". */
static char *redacted_redis_url(const redis_target_t *t)
{
    char buf[600];
    int v6 = strchr(t->host, ':') != NULL;

    snprintf(buf, sizeof(buf), "redis://%s%s%s%s%s:%d/%d", t->user != NULL ? t->user : "",
             t->password != NULL ? ":***@" : "", v6 ? "[" : "", t->host, v6 ? "]" : "", t->port,
             t->db);
    return xstrdup(buf);
}

static int parse_redis_url(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                           size_t reason_len)
{
    redis_target_t t = {.port = 6379};

    (void)s;
    if (parse_redis_target(value, &t, reason, reason_len) != 0) {
        free(t.user);
        free_secret(&t.password);
        return -1;
    }

    free(cfg->redis_url);
    cfg->redis_url = redacted_redis_url(&t);
    replace_string(&cfg->redis_host, t.host);
    cfg->redis_port = t.port;
    cfg->redis_db = t.db;
    free(cfg->redis_user);
    cfg->redis_user = t.user;
    free_secret(&cfg->redis_password);
    cfg->redis_password = t.password;
    return 0;
}

/* ---- JOBWIRE_TRUSTED_PROXIES ---- */

typedef struct cidr_list {
    jw_cidr_t items[JW_CONFIG_MAX_PROXIES];
    int count;
} cidr_list_t;

/* Clears the bits past the prefix, so "10.1.2.3/8" means 10.0.0.0/8. */
static void mask_host_bits(jw_cidr_t *c)
{
    int bytes = c->family == AF_INET ? 4 : 16;

    for (int i = 0; i < bytes; i++) {
        int keep = c->prefix_len - i * 8;
        if (keep <= 0)
            c->addr[i] = 0;
        else if (keep < 8)
            c->addr[i] &= (unsigned char)(0xff << (8 - keep));
    }
}

/* Turns ::ffff:a.b.c.d/n (n >= 96) into a.b.c.d/(n - 96), the form incoming IPv4 peers match. */
static void unmap_ipv4(jw_cidr_t *c)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (c->family != AF_INET6 || c->prefix_len < 96 || memcmp(c->addr, mapped, 12) != 0)
        return;
    memmove(c->addr, c->addr + 12, 4);
    memset(c->addr + 4, 0, 12);
    c->family = AF_INET;
    c->prefix_len -= 96;
}

/* Parses one "address[/prefix]" into c. A bare address is a /32 or /128 block. */
static int parse_cidr(const char *text, jw_cidr_t *c, char *reason, size_t reason_len)
{
    char addr[64];
    char echo[ECHO_MAX + 4];
    const char *slash = strchr(text, '/');
    size_t len = slash != NULL ? (size_t)(slash - text) : strlen(text);

    memset(c, 0, sizeof(*c));
    c->family = memchr(text, ':', len) != NULL ? AF_INET6 : AF_INET;
    int max_prefix = c->family == AF_INET ? 32 : 128;
    if (len >= sizeof(addr))
        len = sizeof(addr) - 1;
    memcpy(addr, text, len);
    addr[len] = '\0';

    if (inet_pton(c->family, addr, c->addr) != 1) {
        snprintf(reason, reason_len, "\"%s\" is not an IPv4 or IPv6 address",
                 echo_value(addr, echo, sizeof(echo)));
        return -1;
    }

    long long prefix = max_prefix;
    if (slash != NULL && (parse_decimal(slash + 1, &prefix) != 0 || prefix > max_prefix)) {
        snprintf(reason, reason_len, "prefix length must be 0-%d (got \"%s\")", max_prefix,
                 echo_value(text, echo, sizeof(echo)));
        return -1;
    }
    c->prefix_len = (int)prefix;
    mask_host_bits(c);
    unmap_ipv4(c);
    return 0;
}

/* Adds each comma-separated block of text to list, skipping spaces and empty items. */
static int add_cidr_csv(cidr_list_t *list, const char *text, char *reason, size_t reason_len)
{
    char item[96];

    while (*text != '\0') {
        while (*text == ' ' || *text == '\t' || *text == ',')
            text++;
        size_t len = strcspn(text, ",");
        while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
            len--;
        if (len == 0)
            break;
        if (list->count == JW_CONFIG_MAX_PROXIES) {
            snprintf(reason, reason_len, "at most %d CIDR blocks are supported",
                     JW_CONFIG_MAX_PROXIES);
            return -1;
        }

        size_t copy = len < sizeof(item) ? len : sizeof(item) - 1;
        memcpy(item, text, copy);
        item[copy] = '\0';
        if (parse_cidr(item, &list->items[list->count], reason, reason_len) != 0)
            return -1;
        list->count++;
        text += len;
    }
    return 0;
}

static void set_proxies(jw_config_t *cfg, const cidr_list_t *list)
{
    memcpy(cfg->trusted_proxies, list->items, sizeof(list->items));
    cfg->trusted_proxy_count = list->count;
}

static int parse_proxies(jw_config_t *cfg, const setting_t *s, const char *value, char *reason,
                         size_t reason_len)
{
    cidr_list_t list = {.count = 0};

    (void)s;
    if (add_cidr_csv(&list, value, reason, reason_len) != 0)
        return -1;
    set_proxies(cfg, &list);
    return 0;
}

/* ---- applying values ---- */

static const setting_t *find_setting(const char *path)
{
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        if (strcmp(settings[i].path, path) == 0)
            return &settings[i];
    }
    return NULL;
}

/* Parses value through s and records where the poller settings came from. */
static int apply(jw_config_t *cfg, const setting_t *s, const char *value, jw_config_source_t source,
                 char *reason, size_t reason_len)
{
    if (s->parse(cfg, s, value, reason, reason_len) != 0)
        return -1;

    if (s->field == FIELD(poll_enabled))
        cfg->poll_enabled_source = source;
    else if (s->field == FIELD(poll_interval_s))
        cfg->poll_interval_source = source;
    return 0;
}

static int apply_defaults(jw_config_t *cfg, char *err, size_t errlen)
{
    char reason[REASON_MAX];

    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const setting_t *s = &settings[i];
        if (s->fallback == NULL)
            continue;
        if (apply(cfg, s, s->fallback, JW_SOURCE_DEFAULT, reason, sizeof(reason)) != 0) {
            set_err(err, errlen, "%s: invalid built-in default: %s", s->env, reason);
            return -1;
        }
    }
    return 0;
}

static int apply_environment(jw_config_t *cfg, char *err, size_t errlen)
{
    char reason[REASON_MAX];

    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const setting_t *s = &settings[i];
        const char *value = s->env != NULL ? getenv(s->env) : NULL;

        /* Empty counts as unset, because manifests often declare a variable with no value. */
        if (value == NULL || value[0] == '\0')
            continue;
        if (apply(cfg, s, value, JW_SOURCE_ENV, reason, sizeof(reason)) != 0) {
            set_err(err, errlen, "%s: %s", s->env, reason);
            return -1;
        }
    }
    return 0;
}

/* Checks rules that span two settings, once every source has been applied. */
static int check_combinations(const jw_config_t *cfg, char *err, size_t errlen)
{
    /* A replay inside the tolerance window must still find its webhook-id. */
    if (cfg->delivery_ttl_s < cfg->webhook_tolerance_s) {
        set_err(err, errlen,
                "JOBWIRE_DELIVERY_TTL (webhook.delivery_ttl_seconds): must be at least "
                "JOBWIRE_WEBHOOK_TOLERANCE, %d seconds (got %d)",
                cfg->webhook_tolerance_s, cfg->delivery_ttl_s);
        return -1;
    }
    if (cfg->sse_max_per_ip > cfg->sse_max_clients) {
        set_err(err, errlen,
                "JOBWIRE_SSE_MAX_PER_IP (sse.max_per_ip): must not exceed "
                "JOBWIRE_SSE_MAX_CLIENTS, %d (got %d)",
                cfg->sse_max_clients, cfg->sse_max_per_ip);
        return -1;
    }
    return 0;
}

/* ---- YAML ---- */

/* State of one pass over a YAML stream with libyaml's event parser. */
typedef struct yaml_walk {
    yaml_parser_t parser;
    jw_config_t *cfg;
    const char *origin; /* file path, or NULL for text from memory */
    unsigned char seen[SETTING_COUNT];
    char *err;
    size_t errlen;
} yaml_walk_t;

static unsigned long event_line(const yaml_event_t *ev)
{
    return (unsigned long)ev->start_mark.line + 1;
}

/* Writes "path: reason (line N of FILE)". */
static void walk_error(yaml_walk_t *w, const char *path, unsigned long line, const char *reason)
{
    if (w->origin != NULL)
        set_err(w->err, w->errlen, "%s: %s (line %lu of %s)", path, reason, line, w->origin);
    else
        set_err(w->err, w->errlen, "%s: %s (line %lu)", path, reason, line);
}

static int next_event(yaml_walk_t *w, yaml_event_t *ev)
{
    if (yaml_parser_parse(&w->parser, ev))
        return 0;

    const yaml_parser_t *p = &w->parser;
    set_err(w->err, w->errlen, "%s: invalid YAML at line %lu column %lu: %s%s%s",
            w->origin != NULL ? w->origin : "configuration",
            (unsigned long)p->problem_mark.line + 1, (unsigned long)p->problem_mark.column + 1,
            p->problem != NULL ? p->problem : "syntax error", p->context != NULL ? ", " : "",
            p->context != NULL ? p->context : "");
    return -1;
}

/* Consumes the rest of the node that ev starts. The caller deletes ev itself. */
static int skip_node(yaml_walk_t *w, const yaml_event_t *ev)
{
    int depth = 0;
    yaml_event_t inner;

    if (ev->type != YAML_SEQUENCE_START_EVENT && ev->type != YAML_MAPPING_START_EVENT)
        return 0;

    /* Iterative, so a deeply nested unknown key cannot exhaust the stack. */
    depth = 1;
    while (depth > 0) {
        if (next_event(w, &inner) != 0)
            return -1;
        if (inner.type == YAML_SEQUENCE_START_EVENT || inner.type == YAML_MAPPING_START_EVENT)
            depth++;
        else if (inner.type == YAML_SEQUENCE_END_EVENT || inner.type == YAML_MAPPING_END_EVENT)
            depth--;
        yaml_event_delete(&inner);
    }
    return 0;
}

/* Returns 1 when path is a mapping that contains known keys, such as "background". */
static int is_section(const char *path)
{
    size_t len = strlen(path);

    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const char *p = settings[i].path;
        if (strncmp(p, path, len) == 0 && p[len] == '.')
            return 1;
    }
    return 0;
}

/* A plain "", "~" or "null" value, or an empty quoted string, leaves the setting unchanged. */
static int is_null_scalar(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;

    if (ev->data.scalar.length == 0)
        return 1;
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    return strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

static const char *node_kind(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    case YAML_SEQUENCE_START_EVENT:
        return "a list";
    case YAML_ALIAS_EVENT:
        return "an alias (*name)";
    default:
        return "a scalar";
    }
}

/*
 * Applies an old YAML name whose replacement was already seen: the value
 * is still checked, but into a scratch struct, so the replacement wins
 * whatever the order in the file.
 */
static int apply_shadowed_alias(const setting_t *s, const char *value, char *reason,
                                size_t reason_len)
{
    jw_config_t scratch;

    memset(&scratch, 0, sizeof(scratch));
    return s->parse(&scratch, s, value, reason, reason_len);
}

static int apply_scalar(yaml_walk_t *w, const setting_t *s, const yaml_event_t *ev,
                        unsigned long line)
{
    char reason[REASON_MAX];
    const char *value = (const char *)ev->data.scalar.value;
    const setting_t *canonical = s->alias_of != NULL ? find_setting(s->alias_of) : NULL;

    /* A "\0" escape would silently cut the value short when read as a C string. */
    if (strlen(value) != ev->data.scalar.length) {
        walk_error(w, s->path, line, "must not contain NUL characters");
        return -1;
    }

    int rc = 0;
    if (canonical != NULL && w->seen[canonical - settings])
        rc = apply_shadowed_alias(s, value, reason, sizeof(reason));
    else
        rc = apply(w->cfg, s, value, JW_SOURCE_FILE, reason, sizeof(reason));
    if (rc != 0) {
        walk_error(w, s->path, line, reason);
        return -1;
    }
    w->seen[s - settings] = 1;
    return 0;
}

/* Reads the items of a YAML list of CIDR strings, each of which may itself be a comma list. */
static int apply_proxy_list(yaml_walk_t *w, const setting_t *s)
{
    char reason[REASON_MAX];
    cidr_list_t list = {.count = 0};
    yaml_event_t ev;

    for (;;) {
        if (next_event(w, &ev) != 0)
            return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT)
            break;

        int rc = -1;
        if (ev.type != YAML_SCALAR_EVENT)
            snprintf(reason, sizeof(reason), "must be a list of CIDR strings");
        else if (strlen((const char *)ev.data.scalar.value) != ev.data.scalar.length)
            snprintf(reason, sizeof(reason), "must not contain NUL characters");
        else
            rc = add_cidr_csv(&list, (const char *)ev.data.scalar.value, reason, sizeof(reason));
        unsigned long item_line = event_line(&ev);
        yaml_event_delete(&ev);
        if (rc != 0) {
            walk_error(w, s->path, item_line, reason);
            return -1;
        }
    }
    yaml_event_delete(&ev);
    set_proxies(w->cfg, &list);
    return 0;
}

static int walk_mapping(yaml_walk_t *w, const char *path);

/*
 * Records a key the loader does not know inside one of its own sections
 * ("auth.api_keys" for "auth.api_keys_file"): probably a typo, reported
 * at start. Unknown top-level keys are left alone, since the fine-tuning
 * tool's file carries many sections that are not for jobwire.
 */
static void note_unknown_key(jw_config_t *cfg, const char *path)
{
    const char *dot = strrchr(path, '.');
    char parent[PATH_MAX_LEN];
    size_t used = strlen(cfg->unknown_keys);

    if (dot == NULL || (size_t)(dot - path) >= sizeof(parent))
        return;
    memcpy(parent, path, (size_t)(dot - path));
    parent[dot - path] = '\0';
    if (!is_section(parent))
        return;
    snprintf(cfg->unknown_keys + used, sizeof(cfg->unknown_keys) - used, "%s%s",
             used > 0 ? ", " : "", path);
}

/* Handles the value event ev of key path: a known section, a known key, or something ignored. */
static int walk_value(yaml_walk_t *w, const char *path, yaml_event_t *ev, unsigned long line)
{
    char reason[REASON_MAX];
    const setting_t *s = find_setting(path);

    if (s == NULL && !is_section(path)) {
        note_unknown_key(w->cfg, path);
        return skip_node(w, ev);
    }

    /* "background:" with nothing under it is a null, not a type error. */
    if (ev->type == YAML_SCALAR_EVENT && is_null_scalar(ev))
        return 0;

    if (s == NULL && ev->type == YAML_MAPPING_START_EVENT)
        return walk_mapping(w, path);
    if (s != NULL && ev->type == YAML_SCALAR_EVENT)
        return apply_scalar(w, s, ev, line);
    if (s != NULL && s->parse == parse_proxies && ev->type == YAML_SEQUENCE_START_EVENT)
        return apply_proxy_list(w, s);

    snprintf(reason, sizeof(reason), "must be %s, not %s",
             s == NULL ? "a mapping"
                       : (s->parse == parse_proxies ? "a list or a string" : "a scalar"),
             node_kind(ev));
    walk_error(w, path, line, reason);
    return -1;
}

/* Builds "parent.key" into out, or returns -1 when it does not fit (then it is no known key). */
static int join_path(const char *parent, const yaml_event_t *key, char *out, size_t outlen)
{
    const char *name = (const char *)key->data.scalar.value;
    size_t name_len = key->data.scalar.length;
    size_t parent_len = strlen(parent);

    if (strlen(name) != name_len || parent_len + name_len + 2 > outlen)
        return -1;
    if (parent_len > 0)
        snprintf(out, outlen, "%s.%s", parent, name);
    else
        snprintf(out, outlen, "%s", name);
    return 0;
}

/* Reads one key and its value, or sets *done at the end of the mapping. */
static int walk_pair(yaml_walk_t *w, const char *path, int *done)
{
    char child[PATH_MAX_LEN];
    yaml_event_t key, value;

    if (next_event(w, &key) != 0)
        return -1;
    if (key.type == YAML_MAPPING_END_EVENT) {
        yaml_event_delete(&key);
        *done = 1;
        return 0;
    }

    /* A key that is not a plain string (a list, an alias) cannot name a setting. */
    int known = key.type == YAML_SCALAR_EVENT && join_path(path, &key, child, sizeof(child)) == 0;
    unsigned long line = event_line(&key);
    int rc = skip_node(w, &key);
    yaml_event_delete(&key);
    if (rc != 0 || next_event(w, &value) != 0)
        return -1;

    rc = known ? walk_value(w, child, &value, line) : skip_node(w, &value);
    yaml_event_delete(&value);
    return rc;
}

static int walk_mapping(yaml_walk_t *w, const char *path)
{
    int done = 0;

    while (!done) {
        if (walk_pair(w, path, &done) != 0)
            return -1;
    }
    return 0;
}

/* Reads the first document's root, which must be a mapping (or empty). */
static int walk_root(yaml_walk_t *w, yaml_event_t *root)
{
    if (root->type == YAML_MAPPING_START_EVENT)
        return walk_mapping(w, "");
    if (root->type == YAML_SCALAR_EVENT && is_null_scalar(root))
        return 0;

    set_err(w->err, w->errlen, "%s: line %lu: the top level must be a mapping, not %s",
            w->origin != NULL ? w->origin : "configuration", event_line(root), node_kind(root));
    return -1;
}

/*
 * Walks the stream's first document. Later documents are not read, because
 * a configuration file has one and a second is more likely a paste error.
 */
static int walk_stream(yaml_walk_t *w)
{
    yaml_event_t ev;

    for (;;) {
        if (next_event(w, &ev) != 0)
            return -1;

        yaml_event_type_t type = ev.type;
        if (type == YAML_MAPPING_START_EVENT || type == YAML_SEQUENCE_START_EVENT ||
            type == YAML_SCALAR_EVENT || type == YAML_ALIAS_EVENT) {
            int rc = walk_root(w, &ev);
            yaml_event_delete(&ev);
            return rc;
        }
        yaml_event_delete(&ev);
        if (type == YAML_STREAM_END_EVENT)
            return 0;
    }
}

static int apply_yaml(jw_config_t *cfg, const char *text, size_t len, const char *origin, char *err,
                      size_t errlen)
{
    yaml_walk_t w;

    if (len > JW_CONFIG_FILE_MAX) {
        set_err(err, errlen, "%s: larger than %d bytes", origin != NULL ? origin : "configuration",
                JW_CONFIG_FILE_MAX);
        return -1;
    }

    memset(&w, 0, sizeof(w));
    w.cfg = cfg;
    w.origin = origin;
    w.err = err;
    w.errlen = errlen;
    if (!yaml_parser_initialize(&w.parser))
        abort();
    yaml_parser_set_input_string(&w.parser, (const unsigned char *)text, len);

    int rc = walk_stream(&w);
    yaml_parser_delete(&w.parser);
    return rc;
}

/* Reads at most JW_CONFIG_FILE_MAX bytes of path into a new buffer. */
static int read_file(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, errlen, "--config %s: %s", path, strerror(errno));
        return -1;
    }

    size_t cap = JW_CONFIG_FILE_MAX + 1;
    char *buf = malloc(cap);
    size_t n = 0;
    if (buf == NULL)
        abort();

    /* Read one byte past the limit to tell "exactly the limit" from "too large". */
    while (n < cap) {
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            set_err(err, errlen, "--config %s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);

    if (n > JW_CONFIG_FILE_MAX) {
        set_err(err, errlen, "--config %s: larger than %d bytes", path, JW_CONFIG_FILE_MAX);
        free(buf);
        return -1;
    }
    *text = buf;
    *len = n;
    return 0;
}

/* Applies the environment and the cross-setting checks: the steps after the file. */
static int finish_load(jw_config_t *cfg, char *err, size_t errlen)
{
    if (apply_environment(cfg, err, errlen) != 0)
        return -1;
    return check_combinations(cfg, err, errlen);
}

/* ---- public functions ---- */

int jw_config_load(jw_config_t *cfg, const char *path, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;

    if (apply_defaults(cfg, err, errlen) != 0)
        return -1;
    if (path == NULL)
        return finish_load(cfg, err, errlen);

    cfg->config_file = xstrdup(path);
    if (read_file(path, &text, &len, err, errlen) != 0)
        return -1;
    int rc = apply_yaml(cfg, text, len, path, err, errlen);
    free(text);
    if (rc != 0)
        return -1;
    return finish_load(cfg, err, errlen);
}

int jw_config_load_yaml_text(jw_config_t *cfg, const char *yaml, size_t len, char *err,
                             size_t errlen)
{
    if (apply_defaults(cfg, err, errlen) != 0)
        return -1;
    if (yaml != NULL && apply_yaml(cfg, yaml, len, NULL, err, errlen) != 0)
        return -1;
    return finish_load(cfg, err, errlen);
}

void jw_config_free(jw_config_t *cfg)
{
    if (cfg == NULL)
        return;

    free(cfg->listen_host);
    free(cfg->redis_url);
    free(cfg->redis_host);
    free(cfg->redis_user);
    free_secret(&cfg->redis_password);
    free(cfg->redis_prefix);
    free(cfg->public_url);
    free(cfg->replicate_api_url);
    free_secret(&cfg->replicate_token);
    free(cfg->config_file);
    free(cfg->web_root);
    free(cfg->api_keys_file);
    free_secret(&cfg->session_secret);

    /* Zeroing also clears webhook_key, and it makes a second free harmless. */
    explicit_bzero(cfg, sizeof(*cfg));
}

int jw_config_webhook_configured(const jw_config_t *cfg)
{
    return cfg->has_webhook_secret || cfg->public_url != NULL;
}

int jw_config_poll_enabled(const jw_config_t *cfg)
{
    if (cfg->poll_enabled >= 0)
        return cfg->poll_enabled;
    return !jw_config_webhook_configured(cfg);
}

/* Returns 1 when the first prefix_len bits of addr equal those of the block. */
static int cidr_contains(const jw_cidr_t *c, const unsigned char *addr)
{
    int whole = c->prefix_len / 8;
    int bits = c->prefix_len % 8;

    if (memcmp(c->addr, addr, (size_t)whole) != 0)
        return 0;
    if (bits == 0)
        return 1;

    unsigned char mask = (unsigned char)(0xff << (8 - bits));
    return (c->addr[whole] & mask) == (addr[whole] & mask);
}

int jw_config_is_trusted_proxy(const jw_config_t *cfg, int family, const unsigned char *addr)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (cfg == NULL || addr == NULL || (family != AF_INET && family != AF_INET6))
        return 0;

    /*
     * A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d. Such a peer
     * is matched as the IPv4 address it is, so "::/0" does not cover it.
     */
    if (family == AF_INET6 && memcmp(addr, mapped, 12) == 0)
        return jw_config_is_trusted_proxy(cfg, AF_INET, addr + 12);

    for (int i = 0; i < cfg->trusted_proxy_count; i++) {
        const jw_cidr_t *c = &cfg->trusted_proxies[i];
        if (c->family == family && cidr_contains(c, addr))
            return 1;
    }
    return 0;
}

/* ---- --help ---- */

static void print_range(const setting_t *s)
{
    char lo[32], hi[32];

    if (s->parse == parse_size)
        printf(", %s-%s (bytes, or with a k, M or G suffix)",
               format_size((unsigned long long)s->min, lo, sizeof(lo)),
               format_size((unsigned long long)s->max, hi, sizeof(hi)));
    else if (s->parse == parse_int || s->parse == parse_long)
        printf(", %lld-%lld %s", s->min, s->max, s->unit);
    else if (s->parse == parse_seconds_ms)
        printf(", %g-%g %s", (double)s->min / 1000, (double)s->max / 1000, s->unit);
}

/* Prints the YAML keys of s, including any old name that still works. */
static void print_file_keys(const setting_t *s)
{
    printf("      file: %s", s->path);
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        if (settings[i].alias_of != NULL && strcmp(settings[i].alias_of, s->path) == 0)
            printf(" (or the older %s)", settings[i].path);
    }
    putchar('\n');
}

static void print_setting(const setting_t *s, int width)
{
    printf("  %-*s  %s", width, s->env, s->help);
    print_range(s);
    printf(" (default: %s)\n", s->fallback != NULL ? s->fallback : "none");
    print_file_keys(s);
}

void jw_config_print_help(const char *argv0)
{
    const char *name = argv0 != NULL ? strrchr(argv0, '/') : NULL;
    int width = 0;

    name = name != NULL ? name + 1 : (argv0 != NULL && argv0[0] != '\0' ? argv0 : "jobwire");
    printf("usage: %s [--config FILE] [--check-config] [--help] [--version]\n", name);
    printf("       %s hash-key [KEY]   print the sha256: form of an API key for the key "
           "file\n\n", name);
    printf("  --config FILE   read settings from a YAML file; the environment overrides it\n"
           "  --check-config  load and check the configuration, then exit\n"
           "  --help          print this help and exit\n"
           "  --version       print the version and exit\n\n");
    printf("Environment variables (an empty value counts as unset), each with its file key:\n");

    for (size_t i = 0; i < SETTING_COUNT; i++) {
        int len = settings[i].env != NULL ? (int)strlen(settings[i].env) : 0;
        width = len > width ? len : width;
    }
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        if (settings[i].env != NULL)
            print_setting(&settings[i], width);
    }
}
