/*
 * Training submissions: the request body's rules, the idempotency digest,
 * local job ids and the create-training body. Model, version and
 * destination become parts of a Replicate URL path, so they are limited
 * to characters that need no escaping and can never form "." or "..".
 */
#include "jobwire/submission.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/json.h"
#include "jobwire/json_gen.h"

typedef struct checker {
    jw_submit_error_t *errors;
    size_t max;
    size_t *count;
} checker_t;

static void reject(checker_t *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reject(checker_t *c, const char *field, const char *fmt, ...)
{
    va_list ap;

    if (*c->count >= c->max)
        return;
    jw_submit_error_t *e = &c->errors[(*c->count)++];
    snprintf(e->field, sizeof(e->field), "%s", field);
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
}

static int name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.';
}

/* One part of owner/name: 1+ name characters, not starting with a dot. */
static int valid_part(const char *s, size_t len)
{
    if (len == 0 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (!name_char(s[i]))
            return 0;
    }
    return 1;
}

static int valid_model_name(const char *s)
{
    const char *slash = strchr(s, '/');

    return slash != NULL && valid_part(s, (size_t)(slash - s)) &&
           valid_part(slash + 1, strlen(slash + 1));
}

static int valid_chars(const char *s, const char *extra, int lower_only)
{
    for (; *s != '\0'; s++) {
        char ch = *s;
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                 (!lower_only && ch >= 'A' && ch <= 'Z') || strchr(extra, ch) != NULL;

        if (!ok)
            return 0;
    }
    return 1;
}

/* Reads a string field into out; returns 1 when present and valid. */
static int take_string(checker_t *c, yajl_val root, const char *field, int required,
                       char *out, size_t size, const char *rule)
{
    yajl_val v = jw_json_get(root, JW_JSON_PATH(field));

    if (v == NULL || YAJL_IS_NULL(v)) {
        if (required)
            reject(c, field, "%s is required: %s", field, rule);
        return 0;
    }
    if (!YAJL_IS_STRING(v)) {
        reject(c, field, "%s must be a string: %s", field, rule);
        return 0;
    }
    if (v->u.string[0] == '\0' || strlen(v->u.string) >= size) {
        reject(c, field, "%s must be 1-%zu characters: %s", field, size - 1, rule);
        return 0;
    }
    memcpy(out, v->u.string, strlen(v->u.string) + 1);
    return 1;
}

static void check_names(checker_t *c, yajl_val root, jw_submission_t *out)
{
    static const char owner_name[] = "owner/name, each part of A-Z, a-z, 0-9, '-', '_' and "
                                     "'.' and not starting with '.'";

    if (take_string(c, root, "model", 1, out->model, sizeof(out->model), owner_name) &&
        !valid_model_name(out->model))
        reject(c, "model", "model must be %s", owner_name);
    if (take_string(c, root, "destination", 1, out->destination, sizeof(out->destination),
                    owner_name) &&
        !valid_model_name(out->destination))
        reject(c, "destination", "destination must be %s", owner_name);
    if (take_string(c, root, "version", 1, out->version, sizeof(out->version),
                    "a model version id of A-Z, a-z and 0-9") &&
        !valid_chars(out->version, "", 0))
        reject(c, "version", "version must be a model version id of A-Z, a-z and 0-9");
    if (take_string(c, root, "hardware", 0, out->hardware, sizeof(out->hardware),
                    "a Replicate hardware name such as gpu-h100") &&
        !valid_chars(out->hardware, "-", 1))
        reject(c, "hardware", "hardware must be a Replicate hardware name of a-z, 0-9 and '-', "
               "such as gpu-h100");
    if (take_string(c, root, "user_id", 0, out->user_id, sizeof(out->user_id),
                    "an id of A-Z, a-z, 0-9 and . _ @ + -") &&
        !valid_chars(out->user_id, "._@+-", 0))
        reject(c, "user_id", "user_id must be an id of A-Z, a-z, 0-9 and . _ @ + -");
}

static void check_input(checker_t *c, yajl_val root, jw_submission_t *out)
{
    yajl_val input = jw_json_get(root, JW_JSON_PATH("input"));

    if (input == NULL || YAJL_IS_NULL(input)) {
        reject(c, "input", "input is required: an object of the trainer's inputs");
        return;
    }
    if (!YAJL_IS_OBJECT(input)) {
        reject(c, "input", "input must be an object of the trainer's inputs");
        return;
    }
    out->input_json = jw_json_serialise(input, &out->input_len);
    if (out->input_json == NULL) {
        reject(c, "input", "input cannot be serialised: nested too deeply");
    } else if (out->input_len > JW_SUBMIT_INPUT_MAX) {
        reject(c, "input", "input must be at most %d bytes as JSON (got %zu)",
               JW_SUBMIT_INPUT_MAX, out->input_len);
    }
}

static void check_unknown(checker_t *c, yajl_val root)
{
    static const char *const known[] = {"model", "version", "destination", "input",
                                        "hardware", "user_id"};

    for (size_t i = 0; i < root->u.object.len; i++) {
        const char *key = root->u.object.keys[i];
        int found = 0;

        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]) && !found; k++)
            found = strcmp(key, known[k]) == 0;
        if (!found)
            reject(c, key, "%.40s is not a submission field; expected model, version, "
                   "destination, input, hardware or user_id", key);
    }
}

int jw_submission_parse(const char *body, size_t len, jw_submission_t *out,
                        jw_submit_error_t *errors, size_t max, size_t *count)
{
    checker_t c = {errors, max, count};
    char jerr[128];
    yajl_val root;

    memset(out, 0, sizeof(*out));
    *count = 0;
    root = jw_json_parse(body, len, jerr, sizeof(jerr));
    if (root == NULL) {
        reject(&c, "", "body is not valid JSON: %s", jerr);
        return -1;
    }
    if (!YAJL_IS_OBJECT(root)) {
        reject(&c, "", "body must be a JSON object");
    } else {
        check_unknown(&c, root);
        check_names(&c, root, out);
        check_input(&c, root, out);
    }
    yajl_tree_free(root);
    return *count == 0 ? 0 : -1;
}

void jw_submission_clear(jw_submission_t *sub)
{
    free(sub->input_json);
    memset(sub, 0, sizeof(*sub));
}

int jw_idempotency_key_valid(const char *key, size_t len)
{
    if (key == NULL || len == 0 || len > JW_IDEMPOTENCY_KEY_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)key[i] <= 0x20 || (unsigned char)key[i] >= 0x7f)
            return 0;
    }
    return 1;
}

void jw_submission_digest(const jw_submission_t *sub, char hex[65])
{
    crypto_hash_sha256_state st;
    unsigned char digest[crypto_hash_sha256_BYTES];
    const char *parts[] = {sub->model, sub->version, sub->destination, sub->hardware,
                           sub->user_id};

    if (sodium_init() < 0)
        abort();
    /* Each part ends in a NUL byte, which no part contains, so two
     * different submissions never hash the same text. */
    crypto_hash_sha256_init(&st);
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        crypto_hash_sha256_update(&st, (const unsigned char *)parts[i], strlen(parts[i]) + 1);
    if (sub->input_json != NULL)
        crypto_hash_sha256_update(&st, (const unsigned char *)sub->input_json, sub->input_len);
    crypto_hash_sha256_final(&st, digest);
    sodium_bin2hex(hex, 65, digest, sizeof(digest));
}

void jw_submission_new_id(char id[36])
{
    unsigned char raw[16];

    if (sodium_init() < 0)
        abort();
    randombytes_buf(raw, sizeof(raw));
    memcpy(id, "jw-", 3);
    sodium_bin2hex(id + 3, 33, raw, sizeof(raw));
}

int jw_submission_webhook_url(const char *public_url, const char *job_id, char *out,
                              size_t outlen)
{
    const char *sep = strchr(public_url, '?') != NULL ? "&" : "?";
    int n = snprintf(out, outlen, "%s%sjob=%s", public_url, sep, job_id);

    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

char *jw_submission_create_body(const char *destination, const char *input_json,
                                size_t input_len, const char *webhook_url, size_t *len)
{
    static const char *const events[] = {"start", "output", "logs", "completed"};
    yajl_gen g = jw_gen_new();
    const unsigned char *buf;
    size_t buf_len;
    char *body;

    yajl_gen_map_open(g);
    jw_gen_kv_str(g, "destination", destination);
    jw_gen_kv_raw(g, "input", input_json, input_len);
    if (webhook_url != NULL) {
        jw_gen_kv_str(g, "webhook", webhook_url);
        jw_gen_key(g, "webhook_events_filter");
        yajl_gen_array_open(g);
        for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
            jw_gen_str(g, events[i]);
        yajl_gen_array_close(g);
    }
    yajl_gen_map_close(g);

    yajl_gen_get_buf(g, &buf, &buf_len);
    body = malloc(buf_len + 1);
    if (body == NULL)
        abort();
    memcpy(body, buf, buf_len);
    body[buf_len] = '\0';
    *len = buf_len;
    yajl_gen_free(g);
    return body;
}
