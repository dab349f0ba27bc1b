/*
 * Replicate prediction and training objects into normalised events. The
 * same parser serves webhook bodies, GET responses and list items, so it
 * only reads the object: signatures, HTTP and storage belong to others.
 * It is strict about what names a job (id, status, timestamps) and lenient
 * about the rest, because rejecting a final delivery over a strange
 * "model" field would lose the job's end.
 */
#include "jobwire/replicate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/json.h"

/* Ids become Redis keys and URL parts, so they get a short, plain alphabet. */
#define ID_MAX JW_JOB_ID_MAX
#define ID_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

/* How much of an unknown status word an error message repeats. */
#define QUOTE_MAX 32

static const struct {
    const char *word;
    jw_status_t status;
} status_words[] = {
    {"starting", JW_STATUS_QUEUED},     {"processing", JW_STATUS_RUNNING},
    {"succeeded", JW_STATUS_COMPLETED}, {"failed", JW_STATUS_FAILED},
    {"canceled", JW_STATUS_CANCELLED},
};

/* Writes the reason into err and returns -1, so callers can return fail(...). */
__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
                                                      ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int copy_text(char **dst, const char *src, size_t len, char *err, size_t errlen)
{
    char *s = malloc(len + 1);

    if (s == NULL)
        return fail(err, errlen, "out of memory");
    memcpy(s, src, len);
    s[len] = '\0';
    *dst = s;
    return 0;
}

static int copy_string(char **dst, const char *src, char *err, size_t errlen)
{
    if (src == NULL)
        return 0;
    return copy_text(dst, src, strlen(src), err, errlen);
}

/* Makes outside text safe to put in a log line: short, printable ASCII, no quotes. */
static void printable(const char *src, char *dst, size_t dstlen)
{
    size_t n = 0;

    for (; src[n] != '\0' && n + 4 < dstlen && n < QUOTE_MAX; n++) {
        unsigned char c = (unsigned char)src[n];

        dst[n] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    if (src[n] != '\0') {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    dst[n] = '\0';
}

static int read_id(yajl_val root, jw_event_t *ev, char *err, size_t errlen)
{
    yajl_val v = jw_json_get(root, JW_JSON_PATH("id"));
    const char *id;
    size_t n;

    if (v == NULL)
        return fail(err, errlen, "id: missing");
    if (!YAJL_IS_STRING(v))
        return fail(err, errlen, "id: not a string");
    id = v->u.string;
    n = strlen(id);

    if (n == 0)
        return fail(err, errlen, "id: empty");
    if (n > ID_MAX)
        return fail(err, errlen, "id: longer than %d bytes", ID_MAX);
    if (strspn(id, ID_CHARS) != n)
        return fail(err, errlen, "id: characters other than A-Z, a-z, 0-9, _ and -");
    return copy_text(&ev->job_id, id, n, err, errlen);
}

static int read_status(yajl_val root, jw_event_t *ev, char *err, size_t errlen)
{
    yajl_val v = jw_json_get(root, JW_JSON_PATH("status"));
    char quoted[QUOTE_MAX + 4];

    if (v == NULL)
        return fail(err, errlen, "status: missing");
    if (!YAJL_IS_STRING(v))
        return fail(err, errlen, "status: not a string");

    for (size_t i = 0; i < sizeof(status_words) / sizeof(status_words[0]); i++) {
        if (strcmp(v->u.string, status_words[i].word) == 0) {
            ev->status = status_words[i].status;
            return copy_string(&ev->provider_status, status_words[i].word, err, errlen);
        }
    }
    printable(v->u.string, quoted, sizeof(quoted));
    return fail(err, errlen, "status: unknown value \"%s\"", quoted);
}

/*
 * A training's create response points urls.get at /v1/predictions/{id},
 * so "destination", which only trainings carry, is checked first.
 */
static const char *detect_kind(yajl_val root)
{
    const char *get_url;

    if (jw_json_get(root, JW_JSON_PATH("destination")) != NULL)
        return "training";
    get_url = jw_json_get_string(root, JW_JSON_PATH("urls", "get"));
    if (get_url != NULL && strstr(get_url, "/trainings/") != NULL)
        return "training";
    return "prediction";
}

static int read_identity(yajl_val root, jw_event_t *ev, char *err, size_t errlen)
{
    if (read_id(root, ev, err, errlen) != 0 || read_status(root, ev, err, errlen) != 0)
        return -1;
    if (copy_string(&ev->provider, "replicate", err, errlen) != 0)
        return -1;
    return copy_string(&ev->kind, detect_kind(root), err, errlen);
}

/* Reads one timestamp field; null and missing both leave *dst NULL. */
static int read_time(yajl_val root, const char *key, char **dst, long long *ms, char *err,
                     size_t errlen)
{
    yajl_val v = jw_json_get(root, JW_JSON_PATH(key));
    char out[28];

    if (v == NULL || YAJL_IS_NULL(v))
        return 0;
    if (!YAJL_IS_STRING(v))
        return fail(err, errlen, "%s: not a string", key);
    if (jw_replicate_normalise_time(v->u.string, strlen(v->u.string), out, ms) != 0)
        return fail(err, errlen, "%s: not an ISO 8601 timestamp", key);
    return copy_text(dst, out, strlen(out), err, errlen);
}

static int read_times(yajl_val root, jw_event_t *ev, char *err, size_t errlen)
{
    long long created_ms = -1, unused;

    if (read_time(root, "created_at", &ev->created_at, &created_ms, err, errlen) != 0 ||
        read_time(root, "started_at", &ev->started_at, &unused, err, errlen) != 0 ||
        read_time(root, "completed_at", &ev->completed_at, &unused, err, errlen) != 0)
        return -1;
    ev->created_ms = created_ms;
    return 0;
}

/* Stores value as compact JSON text; null and missing leave *dst NULL. */
static int read_json_text(yajl_val value, const char *key, char **dst, char *err, size_t errlen)
{
    if (value == NULL || YAJL_IS_NULL(value))
        return 0;
    *dst = jw_json_serialise(value, NULL);
    if (*dst == NULL)
        return fail(err, errlen, "%s: cannot be serialised", key);
    return 0;
}

/* Replicate sends a string; anything else is kept as JSON rather than lost. */
static int read_error(yajl_val root, jw_event_t *ev, char *err, size_t errlen)
{
    yajl_val v = jw_json_get(root, JW_JSON_PATH("error"));

    if (YAJL_IS_STRING(v))
        return copy_string(&ev->error_message, v->u.string, err, errlen);
    return read_json_text(v, "error", &ev->error_message, err, errlen);
}

/* metrics is empty until a final status, and a negative time means nothing. */
static void read_predict_time(yajl_val root, jw_event_t *ev)
{
    double t;

    ev->predict_time = -1;
    if (jw_json_get_number(root, JW_JSON_PATH("metrics", "predict_time"), &t) == 0 && t >= 0)
        ev->predict_time = t > 0 ? t : 0.0; /* folds -0 into 0 */
}

/* model, version and hardware are informative: a non-string is read as absent. */
static int read_details(yajl_val root, jw_event_t *ev, char *err, size_t errlen)
{
    static const char *const keys[] = {"model", "version", "hardware"};
    char **slots[] = {&ev->model, &ev->version, &ev->hardware};
    yajl_val output = jw_json_get(root, JW_JSON_PATH("output"));

    if (read_error(root, ev, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *s = jw_json_get_string(root, JW_JSON_PATH(keys[i]));

        if (copy_string(slots[i], s, err, errlen) != 0)
            return -1;
    }
    if (read_json_text(output, "output", &ev->output_json, err, errlen) != 0)
        return -1;

    read_predict_time(root, ev);
    return 0;
}

/*
 * Returns the offset where the kept tail of n bytes of logs begins.
 * Readers want whole lines, so the cut moves past the first newline in the
 * window, unless that newline ends the text and would leave nothing.
 * Without one, the cut at least never begins inside a UTF-8 sequence.
 */
static size_t tail_start(const char *logs, size_t n)
{
    size_t start;
    const char *nl;

    if (n <= JW_LOG_TAIL_MAX)
        return 0;
    start = n - JW_LOG_TAIL_MAX;

    nl = memchr(logs + start, '\n', n - start);
    if (nl != NULL && (size_t)(nl - logs) + 1 < n)
        return (size_t)(nl - logs) + 1;

    while (start < n && ((unsigned char)logs[start] & 0xC0) == 0x80)
        start++;
    return start;
}

static int read_logs(yajl_val root, jw_event_t *ev, char *err, size_t errlen)
{
    const char *logs = jw_json_get_string(root, JW_JSON_PATH("logs"));
    size_t n, start;

    if (logs == NULL)
        return 0;
    n = strlen(logs);
    start = tail_start(logs, n);

    ev->logs_len = n;
    return copy_text(&ev->logs_tail, logs + start, n - start, err, errlen);
}

int jw_replicate_parse_object(const char *json, size_t len, jw_event_t *ev, char *err,
                              size_t errlen)
{
    char jerr[128];
    yajl_val root;
    int rc = -1;

    memset(ev, 0, sizeof(*ev));
    ev->created_ms = -1;
    ev->predict_time = -1;
    fail(err, errlen, "%s", "");

    root = jw_json_parse(json, len, jerr, sizeof(jerr));
    if (root == NULL) {
        fail(err, errlen, "body: %s", jerr);
        goto out;
    }
    if (!YAJL_IS_OBJECT(root)) {
        fail(err, errlen, "body: not a JSON object");
        goto out;
    }

    if (read_identity(root, ev, err, errlen) != 0 || read_times(root, ev, err, errlen) != 0 ||
        read_details(root, ev, err, errlen) != 0 || read_logs(root, ev, err, errlen) != 0)
        goto out;
    rc = 0;

out:
    yajl_tree_free(root);
    if (rc != 0)
        jw_event_clear(ev);
    return rc;
}

/* Broken-down UTC time, as read from the text and then shifted to UTC. */
struct civil {
    int year, month, day, hour, minute, second;
    long usec;
};

static int is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Reads exactly count digits at *pos. */
static int read_digits(const char *s, size_t len, size_t *pos, int count, int *value)
{
    int v = 0;

    if (len - *pos < (size_t)count)
        return -1;
    for (int i = 0; i < count; i++) {
        char c = s[*pos + (size_t)i];

        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *pos += (size_t)count;
    *value = v;
    return 0;
}

/* Accepts one of the characters in set at *pos (RFC 3339 allows 't' and 'z'). */
static int expect(const char *s, size_t len, size_t *pos, const char *set)
{
    if (*pos >= len || s[*pos] == '\0' || strchr(set, s[*pos]) == NULL)
        return -1;
    (*pos)++;
    return 0;
}

/* YYYY-MM-DDTHH:MM:SS */
static int read_date_time(const char *s, size_t len, size_t *pos, struct civil *t)
{
    if (read_digits(s, len, pos, 4, &t->year) || expect(s, len, pos, "-") ||
        read_digits(s, len, pos, 2, &t->month) || expect(s, len, pos, "-") ||
        read_digits(s, len, pos, 2, &t->day) || expect(s, len, pos, "Tt") ||
        read_digits(s, len, pos, 2, &t->hour) || expect(s, len, pos, ":") ||
        read_digits(s, len, pos, 2, &t->minute) || expect(s, len, pos, ":") ||
        read_digits(s, len, pos, 2, &t->second))
        return -1;

    if (t->month < 1 || t->month > 12 || t->day < 1 || t->day > days_in_month(t->year, t->month))
        return -1;
    return t->hour < 24 && t->minute < 60 && t->second < 60 ? 0 : -1;
}

/* An optional "." and 1 to 9 digits; microseconds are kept, the rest truncated. */
static int read_fraction(const char *s, size_t len, size_t *pos, long *usec)
{
    int digits = 0;

    *usec = 0;
    if (*pos >= len || s[*pos] != '.')
        return 0;
    (*pos)++;

    for (; *pos < len && s[*pos] >= '0' && s[*pos] <= '9'; (*pos)++) {
        digits++;
        if (digits > 9)
            return -1;
        if (digits <= 6)
            *usec = *usec * 10 + (s[*pos] - '0');
    }
    if (digits == 0)
        return -1;
    for (int i = digits; i < 6; i++)
        *usec *= 10;
    return 0;
}

/* "Z", or +hh:mm / -hh:mm, as minutes east of UTC. */
static int read_zone(const char *s, size_t len, size_t *pos, int *offset)
{
    int sign, hh, mm;

    *offset = 0;
    if (expect(s, len, pos, "Zz") == 0)
        return 0;
    if (*pos >= len || (s[*pos] != '+' && s[*pos] != '-'))
        return -1;
    sign = s[*pos] == '-' ? -1 : 1;
    (*pos)++;

    if (read_digits(s, len, pos, 2, &hh) || expect(s, len, pos, ":") ||
        read_digits(s, len, pos, 2, &mm) || hh > 23 || mm > 59)
        return -1;
    *offset = sign * (hh * 60 + mm);
    return 0;
}

static void next_day(struct civil *t)
{
    if (t->day < days_in_month(t->year, t->month)) {
        t->day++;
        return;
    }
    t->day = 1;
    if (t->month < 12) {
        t->month++;
        return;
    }
    t->month = 1;
    t->year++;
}

static void prev_day(struct civil *t)
{
    if (t->day > 1) {
        t->day--;
        return;
    }
    if (t->month > 1) {
        t->month--;
    } else {
        t->month = 12;
        t->year--;
    }
    t->day = days_in_month(t->year, t->month);
}

/*
 * Shifts local time by the zone offset. An offset is under a day, so the
 * date moves by one day at most. The result must still print as 4 digits.
 */
static int to_utc(struct civil *t, int offset)
{
    int minutes = t->hour * 60 + t->minute - offset;

    if (minutes < 0) {
        minutes += 24 * 60;
        prev_day(t);
    } else if (minutes >= 24 * 60) {
        minutes -= 24 * 60;
        next_day(t);
    }
    t->hour = minutes / 60;
    t->minute = minutes % 60;
    return t->year >= 0 && t->year <= 9999 ? 0 : -1;
}

/* Days from 0000-01-01 to the date, in the proleptic Gregorian calendar. */
static long long days_since_year0(int y, int m, int d)
{
    long long days = 365LL * y;

    /* Leap years before y: year 0 itself, then those in 1..y-1. */
    if (y > 0)
        days += 1 + (y - 1) / 4 - (y - 1) / 100 + (y - 1) / 400;
    for (int i = 1; i < m; i++)
        days += days_in_month(y, i);
    return days + d - 1;
}

static long long epoch_ms(const struct civil *t)
{
    long long days = days_since_year0(t->year, t->month, t->day) - days_since_year0(1970, 1, 1);
    long long secs = days * 86400 + t->hour * 3600 + t->minute * 60 + t->second;

    return secs * 1000 + t->usec / 1000;
}

static void put_digits(char *dst, long value, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        dst[i] = (char)('0' + value % 10);
        value /= 10;
    }
}

static void format_time(const struct civil *t, char out[28])
{
    memcpy(out, "0000-00-00T00:00:00.000000Z", 28);
    put_digits(out, t->year, 4);
    put_digits(out + 5, t->month, 2);
    put_digits(out + 8, t->day, 2);
    put_digits(out + 11, t->hour, 2);
    put_digits(out + 14, t->minute, 2);
    put_digits(out + 17, t->second, 2);
    put_digits(out + 20, t->usec, 6);
}

int jw_replicate_normalise_time(const char *text, size_t len, char out[28], long long *ms)
{
    struct civil t;
    size_t pos = 0;
    int offset;

    if (read_date_time(text, len, &pos, &t) != 0 || read_fraction(text, len, &pos, &t.usec) != 0 ||
        read_zone(text, len, &pos, &offset) != 0 || pos != len)
        return -1;
    if (to_utc(&t, offset) != 0)
        return -1;

    format_time(&t, out);
    if (ms != NULL)
        *ms = epoch_ms(&t);
    return 0;
}
