/*
 * JSON output through yajl's generator: small helpers for the key/value
 * shapes the API writes. Every helper writes a key and its value into the
 * open map of g.
 */
#ifndef JOBWIRE_JSON_GEN_H
#define JOBWIRE_JSON_GEN_H

#include <stddef.h>
#include <yajl/yajl_gen.h>

/* Returns a new compact generator; the caller frees it with yajl_gen_free. */
yajl_gen jw_gen_new(void);

void jw_gen_key(yajl_gen g, const char *key);
void jw_gen_str(yajl_gen g, const char *value);           /* null when value is NULL */
void jw_gen_strn(yajl_gen g, const char *value, size_t len);

void jw_gen_kv_str(yajl_gen g, const char *key, const char *value); /* null when NULL */
void jw_gen_kv_strn(yajl_gen g, const char *key, const char *value, size_t len);
void jw_gen_kv_int(yajl_gen g, const char *key, long long value);
void jw_gen_kv_double(yajl_gen g, const char *key, double value);
void jw_gen_kv_bool(yajl_gen g, const char *key, int value);
void jw_gen_kv_null(yajl_gen g, const char *key);

/*
 * Writes text that is already valid JSON (a stored output value) as the
 * value of key. The text must come from our own generator or parser.
 */
void jw_gen_kv_raw(yajl_gen g, const char *key, const char *json, size_t len);

#endif
