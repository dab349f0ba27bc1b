/*
 * Training submissions (POST /api/cloud/jobs): parsing and checking the
 * request body, the Idempotency-Key header, the digest that distinguishes
 * a retried request from a different one, the local job id, and the body
 * of Replicate's create-training call. Pure functions, so they are unit
 * tested and fuzzed; nothing here does I/O.
 */
#ifndef JOBWIRE_SUBMISSION_H
#define JOBWIRE_SUBMISSION_H

#include <stddef.h>

/* Maximum length of a model's or destination's owner/name, and of a version id. */
#define JW_SUBMIT_NAME_MAX 128
#define JW_SUBMIT_VERSION_MAX 128
#define JW_SUBMIT_HARDWARE_MAX 64
#define JW_SUBMIT_USER_MAX 128
/* Maximum size of the "input" object, as compact JSON (1 MiB). */
#define JW_SUBMIT_INPUT_MAX (1024 * 1024)
/* Maximum length of an Idempotency-Key header value. */
#define JW_IDEMPOTENCY_KEY_MAX 255
/* Errors reported for one body at most; one per field is enough. */
#define JW_SUBMIT_ERRORS_MAX 16

typedef struct jw_submission {
    char model[JW_SUBMIT_NAME_MAX + 1];       /* "owner/name" */
    char version[JW_SUBMIT_VERSION_MAX + 1];  /* the model version id */
    char destination[JW_SUBMIT_NAME_MAX + 1]; /* "owner/name" of the model to create */
    char hardware[JW_SUBMIT_HARDWARE_MAX + 1]; /* "" when not given */
    char user_id[JW_SUBMIT_USER_MAX + 1];      /* "" when not given */
    char *input_json;                          /* compact JSON object, owned */
    size_t input_len;
} jw_submission_t;

/* One rejected field: its name ("" for the body as a whole) and why. */
typedef struct jw_submit_error {
    char field[48];
    char message[200];
} jw_submit_error_t;

/*
 * Parses a JSON body {"model", "version", "destination", "input",
 * "hardware"?, "user_id"?}. Returns 0 with out filled, or -1 with one
 * error per bad field in errors (at most max) and their count in
 * *count; unknown fields are errors too. On -1 the caller still frees
 * out with jw_submission_clear().
 */
int jw_submission_parse(const char *body, size_t len, jw_submission_t *out,
                        jw_submit_error_t *errors, size_t max, size_t *count);

void jw_submission_clear(jw_submission_t *sub);

/* Returns 1 when a header value (len bytes) is 1-255 visible ASCII characters. */
int jw_idempotency_key_valid(const char *key, size_t len);

/* Writes the hex SHA-256 of the normalised submission into hex (65 bytes). */
void jw_submission_digest(const jw_submission_t *sub, char hex[65]);

/* Writes a new local job id, "jw-" and 32 random hex digits, into id (36 bytes). */
void jw_submission_new_id(char id[36]);

/*
 * Writes the webhook URL for a job: public_url with "job=<job_id>" added
 * to its query, so the webhook names the local job even before the
 * provider id is recorded. Returns 0, or -1 when it does not fit.
 */
int jw_submission_webhook_url(const char *public_url, const char *job_id, char *out,
                              size_t outlen);

/*
 * Builds the JSON body of Replicate's create-training call: destination,
 * input (JSON text inserted as is), and, when webhook_url is not NULL, the
 * webhook and every event in webhook_events_filter. Returns a string the
 * caller frees, with its length in *len.
 */
char *jw_submission_create_body(const char *destination, const char *input_json,
                                size_t input_len, const char *webhook_url, size_t *len);

#endif
