/*
 * yajl generator helpers. Strings are written without UTF-8 validation
 * because everything the API writes comes from yajl-parsed input or from
 * our own ASCII messages.
 */
#include "jobwire/json_gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

yajl_gen jw_gen_new(void)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (g == NULL)
        abort();
    return g;
}

void jw_gen_key(yajl_gen g, const char *key)
{
    yajl_gen_string(g, (const unsigned char *)key, strlen(key));
}

void jw_gen_strn(yajl_gen g, const char *value, size_t len)
{
    if (value == NULL)
        yajl_gen_null(g);
    else
        yajl_gen_string(g, (const unsigned char *)value, len);
}

void jw_gen_str(yajl_gen g, const char *value)
{
    jw_gen_strn(g, value, value ? strlen(value) : 0);
}

void jw_gen_kv_str(yajl_gen g, const char *key, const char *value)
{
    jw_gen_key(g, key);
    jw_gen_str(g, value);
}

void jw_gen_kv_strn(yajl_gen g, const char *key, const char *value, size_t len)
{
    jw_gen_key(g, key);
    jw_gen_strn(g, value, len);
}

void jw_gen_kv_int(yajl_gen g, const char *key, long long value)
{
    jw_gen_key(g, key);
    yajl_gen_integer(g, value);
}

void jw_gen_kv_double(yajl_gen g, const char *key, double value)
{
    char text[32];

    jw_gen_key(g, key);
    if (!isfinite(value)) {
        yajl_gen_null(g);
        return;
    }
    /* %.15g keeps 0.1 as 0.1, where yajl's own %.20g would not. */
    int n = snprintf(text, sizeof(text), "%.15g", value);
    yajl_gen_number(g, text, (size_t)n);
}

void jw_gen_kv_bool(yajl_gen g, const char *key, int value)
{
    jw_gen_key(g, key);
    yajl_gen_bool(g, value);
}

void jw_gen_kv_null(yajl_gen g, const char *key)
{
    jw_gen_key(g, key);
    yajl_gen_null(g);
}

void jw_gen_kv_raw(yajl_gen g, const char *key, const char *json, size_t len)
{
    jw_gen_key(g, key);
    /* yajl_gen_number copies its text verbatim, which is what raw JSON needs. */
    yajl_gen_number(g, json, len);
}
