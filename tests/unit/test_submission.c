/*
 * Unit tests for submission.c: the request body's rules and error
 * messages, Idempotency-Key values, the digest, local ids, webhook URLs
 * and the create-training body.
 */
#include "jobwire/submission.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/event.h"
#include "jobwire/json.h"
#include "check.h"

#define VERSION "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"

static jw_submit_error_t errors[JW_SUBMIT_ERRORS_MAX];
static size_t error_count;

static int parse(const char *body, jw_submission_t *sub)
{
    return jw_submission_parse(body, strlen(body), sub, errors, JW_SUBMIT_ERRORS_MAX,
                               &error_count);
}

static const jw_submit_error_t *error_for(const char *field)
{
    for (size_t i = 0; i < error_count; i++) {
        if (strcmp(errors[i].field, field) == 0)
            return &errors[i];
    }
    return NULL;
}

/* Checks that body is rejected for field alone, with part in its message. */
static void expect_field_error(const char *body, const char *field, const char *part)
{
    jw_submission_t sub;
    const jw_submit_error_t *e;

    CHECK_REPORT(parse(body, &sub) == -1, "accepted: %s", body);
    CHECK_REPORT(error_count == 1, "%s: %zu errors, expected 1", body, error_count);
    e = error_for(field);
    CHECK_REPORT(e != NULL, "%s: no error for %s (first: %s)", body, field,
                 error_count ? errors[0].message : "none");
    if (e != NULL)
        CHECK_REPORT(strstr(e->message, part) != NULL, "%s: \"%s\" not in \"%s\"", body, part,
                     e->message);
    jw_submission_clear(&sub);
}

static void test_valid_body(void)
{
    jw_submission_t sub;

    CHECK_INT(parse("{\"model\": \"acme/flux-trainer\", \"version\": \"" VERSION "\", "
                    "\"destination\": \"acme/my.lora_v2\", \"input\": {\"steps\": 100, "
                    "\"images\": [\"a\", \"b\"]}, \"hardware\": \"gpu-h100\", "
                    "\"user_id\": \"alice@example.com\"}", &sub), 0);
    CHECK_INT(error_count, 0);
    CHECK_STR(sub.model, "acme/flux-trainer");
    CHECK_STR(sub.version, VERSION);
    CHECK_STR(sub.destination, "acme/my.lora_v2");
    CHECK_STR(sub.hardware, "gpu-h100");
    CHECK_STR(sub.user_id, "alice@example.com");
    CHECK_STR(sub.input_json, "{\"steps\":100,\"images\":[\"a\",\"b\"]}");
    CHECK_INT(sub.input_len, strlen("{\"steps\":100,\"images\":[\"a\",\"b\"]}"));
    jw_submission_clear(&sub);

    /* Optional fields may be null or absent. */
    CHECK_INT(parse("{\"model\": \"a/b\", \"version\": \"v1\", \"destination\": \"c/d\", "
                    "\"input\": {}, \"hardware\": null, \"user_id\": null}", &sub), 0);
    CHECK_STR(sub.hardware, "");
    CHECK_STR(sub.user_id, "");
    CHECK_STR(sub.input_json, "{}");
    jw_submission_clear(&sub);
}

#define BASE_FIELDS "\"version\": \"v1\", \"destination\": \"c/d\", \"input\": {}"

static void test_model_and_destination_rules(void)
{
    static const char *const bad[] = {"\"nope\"", "\"a/\"", "\"/b\"", "\"a/b/c\"",
                                      "\"../etc\"", "\"a/..\"", "\"a/.b\"", "\"a b/c\"",
                                      "\"a/b?x\"", "\"a%2f/b\""};
    char body[512];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "{\"model\": %s, " BASE_FIELDS "}", bad[i]);
        expect_field_error(body, "model", "model must be owner/name");
        snprintf(body, sizeof(body), "{\"model\": \"a/b\", \"version\": \"v1\", "
                 "\"destination\": %s, \"input\": {}}", bad[i]);
        expect_field_error(body, "destination", "destination must be owner/name");
    }
    expect_field_error("{\"model\": 7, " BASE_FIELDS "}", "model", "model must be a string");
    expect_field_error("{\"model\": \"\", " BASE_FIELDS "}", "model", "1-128 characters");
}

static void test_other_field_rules(void)
{
    expect_field_error("{\"model\": \"a/b\", \"version\": \"v-1\", \"destination\": \"c/d\", "
                       "\"input\": {}}", "version", "A-Z, a-z and 0-9");
    expect_field_error("{\"model\": \"a/b\", \"version\": \"v1\", \"destination\": \"c/d\", "
                       "\"input\": []}", "input", "input must be an object");
    expect_field_error("{\"model\": \"a/b\", \"version\": \"v1\", \"destination\": \"c/d\", "
                       "\"input\": null}", "input", "input is required");
    expect_field_error("{\"model\": \"a/b\", " BASE_FIELDS ", \"hardware\": \"GPU\"}",
                       "hardware", "a-z, 0-9 and '-'");
    expect_field_error("{\"model\": \"a/b\", " BASE_FIELDS ", \"hardware\": 1}", "hardware",
                       "hardware must be a string");
    expect_field_error("{\"model\": \"a/b\", " BASE_FIELDS ", \"user_id\": \"a b\"}",
                       "user_id", "user_id must be an id");
    expect_field_error("{\"model\": \"a/b\", " BASE_FIELDS ", \"webhook\": \"x\"}", "webhook",
                       "webhook is not a submission field");
}

static void test_every_bad_field_is_named(void)
{
    jw_submission_t sub;
    static const char *const expected[] = {"extra", "model", "destination", "version",
                                           "hardware", "user_id", "input"};

    CHECK_INT(parse("{\"model\": 1, \"version\": [], \"destination\": \"x\", \"input\": 3, "
                    "\"hardware\": \"A\", \"user_id\": \"\", \"extra\": true}", &sub), -1);
    CHECK_INT(error_count, 7);
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        const jw_submit_error_t *e = error_for(expected[i]);

        CHECK_REPORT(e != NULL, "no error for %s", expected[i]);
        if (e != NULL)
            CHECK_REPORT(strncmp(e->message, expected[i], strlen(expected[i])) == 0,
                         "message does not start with the field: %s", e->message);
    }
    jw_submission_clear(&sub);

    CHECK_INT(parse("{}", &sub), -1);
    CHECK_INT(error_count, 4);
    for (size_t i = 0; i < 4; i++) {
        static const char *const required[] = {"model", "version", "destination", "input"};
        const jw_submit_error_t *e = error_for(required[i]);

        CHECK_REPORT(e != NULL, "no error for %s", required[i]);
        if (e != NULL)
            CHECK_REPORT(strstr(e->message, "is required") != NULL, "%s", e->message);
    }
    jw_submission_clear(&sub);
}

static void test_body_errors(void)
{
    static const struct {
        const char *body;
        const char *part;
    } cases[] = {
        {"", "not valid JSON"},
        {"{\"model\": ", "not valid JSON"},
        {"[1]", "must be a JSON object"},
        {"\"text\"", "must be a JSON object"},
        {"{\"a\": 1} // note", "comments are not JSON"},
    };
    jw_submission_t sub;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_INT(parse(cases[i].body, &sub), -1);
        CHECK_INT(error_count, 1);
        CHECK_STR(errors[0].field, "");
        CHECK_REPORT(strstr(errors[0].message, cases[i].part) != NULL, "%s: %s", cases[i].body,
                     errors[0].message);
        jw_submission_clear(&sub);
    }
}

static void test_input_size_limit(void)
{
    size_t n = JW_SUBMIT_INPUT_MAX + 64;
    char *body = malloc(n + 256);
    jw_submission_t sub;
    int len;

    CHECK(body != NULL);
    len = snprintf(body, 256, "{\"model\": \"a/b\", \"version\": \"v1\", \"destination\": "
                   "\"c/d\", \"input\": {\"blob\": \"");
    memset(body + len, 'x', n);
    strcpy(body + len + n, "\"}}");
    CHECK_INT(parse(body, &sub), -1);
    CHECK(error_for("input") != NULL);
    if (error_for("input") != NULL)
        CHECK(strstr(error_for("input")->message, "at most") != NULL);
    jw_submission_clear(&sub);
    free(body);
}

static void test_idempotency_key(void)
{
    char longest[JW_IDEMPOTENCY_KEY_MAX + 2];

    memset(longest, 'k', sizeof(longest));
    CHECK_INT(jw_idempotency_key_valid("order-17", 8), 1);
    CHECK_INT(jw_idempotency_key_valid("a:b/c?d=e", 9), 1);
    CHECK_INT(jw_idempotency_key_valid(longest, JW_IDEMPOTENCY_KEY_MAX), 1);
    CHECK_INT(jw_idempotency_key_valid(longest, JW_IDEMPOTENCY_KEY_MAX + 1), 0);
    CHECK_INT(jw_idempotency_key_valid("", 0), 0);
    CHECK_INT(jw_idempotency_key_valid("two words", 9), 0);
    CHECK_INT(jw_idempotency_key_valid("tab\tkey", 7), 0);
    CHECK_INT(jw_idempotency_key_valid("caf\xc3\xa9", 5), 0);
}

static void test_digest(void)
{
    jw_submission_t a, b;
    char da[65], db[65];

    CHECK_INT(parse("{\"model\": \"a/b\", \"version\": \"v1\", \"destination\": \"c/d\", "
                    "\"input\": {\"x\": 1}}", &a), 0);
    /* Whitespace and key order of the body as a whole do not matter. */
    CHECK_INT(parse("{\"input\":{\"x\":1},\"destination\":\"c/d\",\"version\":\"v1\","
                    "\"model\":\"a/b\"}", &b), 0);
    jw_submission_digest(&a, da);
    jw_submission_digest(&b, db);
    CHECK_INT(strlen(da), 64);
    CHECK_STR(da, db);
    jw_submission_clear(&b);

    /* Moving text from one field to its neighbour changes the digest. */
    CHECK_INT(parse("{\"model\": \"a/b\", \"version\": \"v1\", \"destination\": \"c/d\", "
                    "\"input\": {\"x\": 2}}", &b), 0);
    jw_submission_digest(&b, db);
    CHECK(strcmp(da, db) != 0);
    jw_submission_clear(&b);
    CHECK_INT(parse("{\"model\": \"a/b\", \"version\": \"v1\", \"destination\": \"c/d\", "
                    "\"input\": {\"x\": 1}, \"user_id\": \"u\"}", &b), 0);
    jw_submission_digest(&b, db);
    CHECK(strcmp(da, db) != 0);
    jw_submission_clear(&b);
    jw_submission_clear(&a);
}

static void test_new_id(void)
{
    char a[36], b[36];

    jw_submission_new_id(a);
    jw_submission_new_id(b);
    CHECK_INT(strlen(a), 35);
    CHECK(strncmp(a, "jw-", 3) == 0);
    CHECK(strspn(a + 3, "0123456789abcdef") == 32);
    CHECK(jw_job_id_valid(a, strlen(a)));
    CHECK(strcmp(a, b) != 0);
}

static void test_webhook_url(void)
{
    char out[128];

    CHECK_INT(jw_submission_webhook_url("https://jobs.example.com/api/webhooks/replicate", "jw-1",
                                        out, sizeof(out)), 0);
    CHECK_STR(out, "https://jobs.example.com/api/webhooks/replicate?job=jw-1");
    CHECK_INT(jw_submission_webhook_url("https://h/hook?team=a", "jw-2", out, sizeof(out)), 0);
    CHECK_STR(out, "https://h/hook?team=a&job=jw-2");
    CHECK_INT(jw_submission_webhook_url("https://h/hook", "jw-3", out, 18), -1);
}

static void test_create_body(void)
{
    size_t len;
    char *body = jw_submission_create_body("acme/out", "{\"steps\":3}", 11,
                                           "https://h/hook?job=jw-1", &len);
    char err[128];
    yajl_val root = jw_json_parse(body, len, err, sizeof(err));

    CHECK_STR(body, "{\"destination\":\"acme/out\",\"input\":{\"steps\":3},\"webhook\":"
                    "\"https://h/hook?job=jw-1\",\"webhook_events_filter\":[\"start\","
                    "\"output\",\"logs\",\"completed\"]}");
    CHECK(root != NULL);
    yajl_tree_free(root);
    free(body);

    body = jw_submission_create_body("acme/out", "{}", 2, NULL, &len);
    CHECK_STR(body, "{\"destination\":\"acme/out\",\"input\":{}}");
    CHECK_INT(len, strlen(body));
    free(body);
}

int main(void)
{
    test_valid_body();
    test_model_and_destination_rules();
    test_other_field_rules();
    test_every_bad_field_is_named();
    test_body_errors();
    test_input_size_limit();
    test_idempotency_key();
    test_digest();
    test_new_id();
    test_webhook_url();
    test_create_body();
    CHECK_SUMMARY();
}
