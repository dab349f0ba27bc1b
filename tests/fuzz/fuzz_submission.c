/*
 * libFuzzer target for the training submission parser, the reader of
 * POST /api/cloud/jobs bodies. Beyond "no crash, no leak", it checks what
 * the queue relies on: an accepted model, version and destination are
 * safe URL path parts, the input is a JSON object within the size limit,
 * and the create-training body built from them is valid JSON. A rejected
 * body has 1 to JW_SUBMIT_ERRORS_MAX errors, each with a message.
 *
 * Seeds: tests/fuzz/corpus/submission/ (copy it first: libFuzzer writes into it).
 */
#include "jobwire/submission.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jobwire/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok)
{
    if (!ok)
        abort();
}

/* owner/name: one slash, no empty part, no part starting with '.', no escapes needed. */
static void check_path_name(const char *s)
{
    const char *slash = strchr(s, '/');

    require(slash != NULL && slash != s && slash[1] != '\0' && s[0] != '.' && slash[1] != '.');
    require(strchr(slash + 1, '/') == NULL);
    require(strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./") ==
            strlen(s));
}

static void check_accepted(const jw_submission_t *sub)
{
    char digest[65], err[128];
    size_t len;
    yajl_val input, body_root;

    check_path_name(sub->model);
    check_path_name(sub->destination);
    require(sub->version[0] != '\0');
    require(strspn(sub->version, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") ==
            strlen(sub->version));
    require(sub->input_json != NULL && sub->input_len <= JW_SUBMIT_INPUT_MAX);
    input = jw_json_parse(sub->input_json, sub->input_len, err, sizeof(err));
    require(input != NULL && YAJL_IS_OBJECT(input));
    yajl_tree_free(input);

    jw_submission_digest(sub, digest);
    require(strlen(digest) == 64);

    char *body = jw_submission_create_body(sub->destination, sub->input_json, sub->input_len,
                                           "https://h/hook?job=jw-1", &len);
    body_root = jw_json_parse(body, len, err, sizeof(err));
    require(body_root != NULL && YAJL_IS_OBJECT(body_root));
    yajl_tree_free(body_root);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jw_submit_error_t errors[JW_SUBMIT_ERRORS_MAX];
    jw_submission_t sub;
    size_t count = 99;

    if (jw_submission_parse((const char *)data, size, &sub, errors, JW_SUBMIT_ERRORS_MAX,
                            &count) == 0) {
        require(count == 0);
        check_accepted(&sub);
    } else {
        require(count >= 1 && count <= JW_SUBMIT_ERRORS_MAX);
        for (size_t i = 0; i < count; i++)
            require(errors[i].message[0] != '\0' &&
                    memchr(errors[i].message, '\0', sizeof(errors[i].message)) != NULL);
    }
    jw_submission_clear(&sub);
    return 0;
}
