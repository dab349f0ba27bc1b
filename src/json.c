/*
 * JSON helpers over yajl's tree API: a guarded parse, key-path lookups and
 * compact serialisation. Every module that reads JSON goes through here so
 * the guards apply everywhere; writing new documents stays with yajl_gen in
 * the modules themselves.
 */
#include "jobwire/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_gen.h>

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/*
 * Returns the length of the UTF-8 sequence at s, or 0 when it is not valid
 * UTF-8 (RFC 3629). yajl 2.1.0 checks only the shape of a sequence, so it
 * accepts overlong forms, surrogates and code points past U+10FFFF.
 */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    static const unsigned int min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    unsigned int cp;
    size_t n;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        n = 2;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        n = 3;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        n = 4;
    else
        return 0;
    if (avail < n)
        return 0;

    cp = s[0] & (0x7Fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/*
 * Skips a string whose opening quote is at *pos, leaving *pos on the
 * closing quote (or at len when there is none, which yajl reports).
 * Returns -1 with *pos on the offending byte when the UTF-8 is invalid.
 * Escapes are skipped whole so that \" does not end the string; their
 * validity is yajl's to check.
 */
static int skip_string(const char *text, size_t len, size_t *pos)
{
    const unsigned char *u = (const unsigned char *)text;
    size_t i = *pos + 1;

    while (i < len && text[i] != '"') {
        /* Plain ASCII is most of a log body: skip it without the decoder. */
        if (u[i] < 0x80 && u[i] != '\\') {
            i++;
            continue;
        }
        size_t n = text[i] == '\\' ? 2 : utf8_len(u + i, len - i);

        if (n == 0) {
            *pos = i;
            return -1;
        }
        i += n;
    }
    *pos = i < len ? i : len;
    return 0;
}

/*
 * Checks the input for what yajl_tree_parse() (2.1.0) mishandles. It takes a
 * C string, so a NUL byte would hide the rest of the text. It allows
 * comments, which are not JSON, and its UTF-8 check is loose. And
 * yajl_tree_free() recurses once per level, so freeing the tree of a
 * million '[' overflows the stack. Brackets inside strings do not count.
 */
static int prescan(const char *text, size_t len, char *err, size_t errlen)
{
    size_t depth = 0;

    if (memchr(text, '\0', len) != NULL) {
        set_err(err, errlen, "contains a NUL byte");
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        char c = text[i];

        if (c == '"' && skip_string(text, len, &i) != 0) {
            set_err(err, errlen, "invalid UTF-8 at byte %zu", i);
            return -1;
        } else if (c == '[' || c == '{') {
            depth++;
            if (depth > JW_JSON_MAX_DEPTH) {
                set_err(err, errlen, "nested deeper than %d levels", JW_JSON_MAX_DEPTH);
                return -1;
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            /* An unbalanced close is yajl's to report. */
            depth--;
        } else if (c == '/') {
            set_err(err, errlen, "comments are not JSON");
            return -1;
        }
    }
    return 0;
}

/* Copies the first line of yajl's message: the lines after it quote the input. */
static void report_yajl_error(const char *yerr, char *err, size_t errlen)
{
    size_t n = strcspn(yerr, "\n");

    while (n > 0 && yerr[n - 1] == ' ')
        n--;
    if (n == 0)
        set_err(err, errlen, "invalid JSON");
    else
        set_err(err, errlen, "invalid JSON: %.*s", (int)n, yerr);
}

yajl_val jw_json_parse(const char *text, size_t len, char *err, size_t errlen)
{
    char yerr[256] = "";
    yajl_val root;
    char *copy;

    /* memchr() and memcpy() require a valid pointer even for zero bytes. */
    if (len == 0)
        text = "";
    if (prescan(text, len, err, errlen) != 0)
        return NULL;

    /* yajl_tree_parse() requires a NUL-terminated string. */
    copy = len < SIZE_MAX ? malloc(len + 1) : NULL;
    if (copy == NULL) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';

    root = yajl_tree_parse(copy, yerr, sizeof(yerr));
    free(copy);
    if (root == NULL)
        report_yajl_error(yerr, err, errlen);
    return root;
}

/* The value of key in obj, or NULL. Searching from the end makes the last duplicate win. */
static yajl_val member(yajl_val obj, const char *key)
{
    if (!YAJL_IS_OBJECT(obj))
        return NULL;
    for (size_t i = obj->u.object.len; i > 0; i--) {
        if (strcmp(obj->u.object.keys[i - 1], key) == 0)
            return obj->u.object.values[i - 1];
    }
    return NULL;
}

yajl_val jw_json_get(yajl_val node, const char *const *path)
{
    for (; node != NULL && *path != NULL; path++)
        node = member(node, *path);
    return node;
}

const char *jw_json_get_string(yajl_val node, const char *const *path)
{
    yajl_val v = jw_json_get(node, path);

    return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

yajl_val jw_json_get_object(yajl_val node, const char *const *path)
{
    yajl_val v = jw_json_get(node, path);

    return YAJL_IS_OBJECT(v) ? v : NULL;
}

int jw_json_get_number(yajl_val node, const char *const *path, double *out)
{
    yajl_val v = jw_json_get(node, path);
    char *end;
    double d;

    if (!YAJL_IS_NUMBER(v) || v->u.number.r == NULL)
        return -1;

    /*
     * Parse the text again rather than trusting u.number.d: yajl drops the
     * valid flag on underflow (1e-400), which is still a fine reading of 0.
     * strtod() follows LC_NUMERIC; jobwire never changes it from "C".
     */
    d = strtod(v->u.number.r, &end);
    if (end == v->u.number.r || *end != '\0' || !isfinite(d))
        return -1;
    *out = d;
    return 0;
}

static yajl_gen_status gen_value(yajl_gen g, yajl_val v);

static yajl_gen_status gen_text(yajl_gen g, const char *s)
{
    return yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static yajl_gen_status gen_object(yajl_gen g, yajl_val v)
{
    yajl_gen_status st = yajl_gen_map_open(g);

    for (size_t i = 0; st == yajl_gen_status_ok && i < v->u.object.len; i++) {
        st = gen_text(g, v->u.object.keys[i]);
        if (st == yajl_gen_status_ok)
            st = gen_value(g, v->u.object.values[i]);
    }
    if (st == yajl_gen_status_ok)
        st = yajl_gen_map_close(g);
    return st;
}

static yajl_gen_status gen_array(yajl_gen g, yajl_val v)
{
    yajl_gen_status st = yajl_gen_array_open(g);

    for (size_t i = 0; st == yajl_gen_status_ok && i < v->u.array.len; i++)
        st = gen_value(g, v->u.array.values[i]);
    if (st == yajl_gen_status_ok)
        st = yajl_gen_array_close(g);
    return st;
}

/* Recursion is bounded because yajl_gen returns yajl_max_depth_exceeded at level 128. */
static yajl_gen_status gen_value(yajl_gen g, yajl_val v)
{
    if (v == NULL)
        return yajl_gen_in_error_state;
    switch (v->type) {
    case yajl_t_string:
        return gen_text(g, v->u.string);
    case yajl_t_number:
        /* The original text keeps 3e-06 as 3e-06 and big integers exact. */
        if (v->u.number.r == NULL)
            return yajl_gen_invalid_number;
        return yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
    case yajl_t_object:
        return gen_object(g, v);
    case yajl_t_array:
        return gen_array(g, v);
    case yajl_t_true:
        return yajl_gen_bool(g, 1);
    case yajl_t_false:
        return yajl_gen_bool(g, 0);
    case yajl_t_null:
        return yajl_gen_null(g);
    default:
        return yajl_gen_in_error_state;
    }
}

/* Copies the generator's buffer into a string the caller owns. */
static char *take_buffer(yajl_gen g, size_t *len)
{
    const unsigned char *buf;
    size_t n;
    char *out;

    if (yajl_gen_get_buf(g, &buf, &n) != yajl_gen_status_ok)
        return NULL;
    out = malloc(n + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, buf, n);
    out[n] = '\0';
    if (len != NULL)
        *len = n;
    return out;
}

char *jw_json_serialise(yajl_val value, size_t *len)
{
    yajl_gen g;
    char *out = NULL;

    if (value == NULL)
        return NULL;
    g = yajl_gen_alloc(NULL);
    if (g == NULL)
        return NULL;

    if (gen_value(g, value) == yajl_gen_status_ok)
        out = take_buffer(g, len);
    yajl_gen_free(g);
    return out;
}
