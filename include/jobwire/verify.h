/*
 * Standard Webhooks signature checks (the scheme Replicate signs with).
 * Pure functions of their inputs: no I/O, no globals, no clock reads.
 */
#ifndef JOBWIRE_VERIFY_H
#define JOBWIRE_VERIFY_H

#include <stddef.h>
#include <stdint.h>

/* HMAC-SHA256 keys longer than this are rejected as a configuration error. */
#define JW_VERIFY_KEY_MAX 128

typedef struct jw_verify_key {
    unsigned char bytes[JW_VERIFY_KEY_MAX];
    size_t len;
} jw_verify_key_t;

typedef enum jw_verify_result {
    JW_VERIFY_OK = 0,
    JW_VERIFY_MISSING_HEADER,   /* a header is absent or empty */
    JW_VERIFY_BAD_HEADER,       /* malformed id, timestamp or signature list */
    JW_VERIFY_STALE,            /* timestamp older than the tolerance */
    JW_VERIFY_FUTURE,           /* timestamp newer than the tolerance */
    JW_VERIFY_BAD_SIGNATURE,    /* well formed, but no v1 entry matches */
} jw_verify_result_t;

/*
 * Decodes a "whsec_<base64>" secret into key. The base64 must be strict
 * (standard alphabet, correct padding, no whitespace); a "v1," prefix or
 * any other shape is rejected. Returns 0, or -1 with a reason in err.
 */
int jw_verify_parse_secret(const char *secret, jw_verify_key_t *key, char *err, size_t errlen);

/*
 * Checks one delivery. id, timestamp and signature are the raw header
 * values (not NUL-terminated, given with lengths; NULL when absent). The
 * signed content is id "." timestamp "." body. Any space-separated "v1,"
 * entry may match; entries of other versions are skipped; the comparison
 * is constant-time. The timestamp must be within tolerance_s of now.
 * BAD_HEADER covers an id over 256 bytes or with bytes outside visible ASCII,
 * a timestamp that is not 1-19 decimal digits fitting int64_t, and a signature
 * header over 4096 bytes or of spaces only. A NULL or invalid key, or a NULL
 * body with a non-zero length, gives BAD_SIGNATURE.
 */
jw_verify_result_t jw_verify_delivery(const jw_verify_key_t *key, const char *id, size_t id_len,
                                      const char *timestamp, size_t timestamp_len, const char *signature,
                                      size_t signature_len, const void *body, size_t body_len, int64_t now,
                                      int64_t tolerance_s);

/* Returns a short English description of a result, for error messages. */
const char *jw_verify_result_message(jw_verify_result_t result);

/*
 * Writes the "v1,<base64>" signature of (id, timestamp, body) into out,
 * NUL-terminated; out needs at least JW_VERIFY_SIGNATURE_MAX bytes. Used by
 * tests and by the benchmark's webhook sender. With a NULL or invalid key,
 * NULL id or timestamp, or NULL body with a non-zero length, out is "".
 */
#define JW_VERIFY_SIGNATURE_MAX 64
void jw_verify_sign(const jw_verify_key_t *key, const char *id, const char *timestamp, const void *body,
                    size_t body_len, char *out);

#endif
