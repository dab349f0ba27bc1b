/*
 * Unit tests for verify.c. Every case of the Standard Webhooks vectors file runs
 * first, then tables for secret parsing, timestamps, signature lists, header
 * bounds and signing. All header values and bodies are passed as heap copies of
 * exactly their length, with no NUL after them, so AddressSanitizer reports any
 * read past a given length.
 */
#include "jobwire/verify.h"

#include "check.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <yajl/yajl_tree.h>

#define VECTORS_PATH JW_FIXTURES "/standard-webhooks-vectors.json"
#define TOLERANCE_S 300
#define MAX_SIGN_VECTORS 8

/* The first official vector, repeated here for the table tests. */
#define V1_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define V1_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define V1_TS "1614265330"
#define V1_NOW INT64_C(1614265330)
#define V1_BODY "{\"test\": 2432232314}"
#define V1_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#define WRONG_SIG "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="

struct sign_vector {
    const char *name;
    const char *secret;
    const char *msg_id;
    char timestamp[24];
    int64_t now;
    const char *payload;
    const char *expected_signature;
    const char *key_hex;
    long long key_length;
    jw_verify_key_t key;
};

/* Prints the case name under the failures that a loop iteration added. */
static void name_failures(int failed_before, const char *name)
{
    if (check_failed > failed_before)
        fprintf(stderr, "  in case: %s\n", name);
}

/* Returns a malloc'd copy of exactly len bytes with no NUL after them, or NULL for NULL. */
static char *copy_exact(const char *text, size_t len)
{
    char *copy;

    if (text == NULL)
        return NULL;
    copy = malloc(len > 0 ? len : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, text, len);
    return copy;
}

/* Verifies NUL-terminated test strings through exact-length heap copies. */
static jw_verify_result_t verify_at(const jw_verify_key_t *key, const char *id, const char *ts,
                                    const char *sig, const char *body, int64_t now)
{
    size_t id_len = id ? strlen(id) : 0;
    size_t ts_len = ts ? strlen(ts) : 0;
    size_t sig_len = sig ? strlen(sig) : 0;
    size_t body_len = body ? strlen(body) : 0;
    char *id_copy = copy_exact(id, id_len);
    char *ts_copy = copy_exact(ts, ts_len);
    char *sig_copy = copy_exact(sig, sig_len);
    char *body_copy = copy_exact(body, body_len);
    jw_verify_result_t result;

    result = jw_verify_delivery(key, id_copy, id_len, ts_copy, ts_len, sig_copy, sig_len, body_copy,
                                body_len, now, TOLERANCE_S);

    free(id_copy);
    free(ts_copy);
    free(sig_copy);
    free(body_copy);
    return result;
}

static jw_verify_key_t parse_ok(const char *secret)
{
    jw_verify_key_t key;
    char err[160] = "";

    CHECK_INT(jw_verify_parse_secret(secret, &key, err, sizeof(err)), 0);
    CHECK_STR(err, "");
    return key;
}

/* ---- fixture file ---- */

static yajl_val load_json(const char *path)
{
    char errbuf[256] = "";
    char *text = NULL;
    size_t len = 0;
    size_t cap = 0;
    yajl_val root;
    FILE *file = fopen(path, "rb");

    if (file == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return NULL;
    }
    for (;;) {
        if (cap - len < 4096) {
            cap = cap * 2 + 4096;
            text = realloc(text, cap + 1);
            if (text == NULL)
                abort();
        }
        size_t got = fread(text + len, 1, cap - len, file);

        len += got;
        if (got == 0)
            break;
    }
    fclose(file);

    text[len] = '\0';
    root = yajl_tree_parse(text, errbuf, sizeof(errbuf));
    if (root == NULL)
        fprintf(stderr, "cannot parse %s: %s\n", path, errbuf);
    free(text);
    return root;
}

static yajl_val member(yajl_val object, const char *name)
{
    const char *path[] = {name, NULL};

    return yajl_tree_get(object, path, yajl_t_any);
}

static const char *member_string(yajl_val object, const char *name)
{
    yajl_val value = member(object, name);

    return YAJL_IS_STRING(value) ? YAJL_GET_STRING(value) : NULL;
}

static int load_sign_vector(yajl_val object, struct sign_vector *vector)
{
    yajl_val ts = member(object, "timestamp");
    yajl_val key_length = member(object, "key_length_bytes");

    memset(vector, 0, sizeof(*vector));
    vector->name = member_string(object, "id");
    vector->secret = member_string(object, "secret");
    vector->msg_id = member_string(object, "msg_id");
    vector->payload = member_string(object, "payload");
    vector->expected_signature = member_string(object, "expected_signature");
    vector->key_hex = member_string(object, "key_hex");
    if (vector->name == NULL || vector->secret == NULL || vector->msg_id == NULL ||
        vector->payload == NULL || vector->expected_signature == NULL || vector->key_hex == NULL ||
        !YAJL_IS_INTEGER(ts) || !YAJL_IS_INTEGER(key_length))
        return -1;

    vector->now = YAJL_GET_INTEGER(ts);
    vector->key_length = YAJL_GET_INTEGER(key_length);
    snprintf(vector->timestamp, sizeof(vector->timestamp), "%lld", (long long)vector->now);
    return 0;
}

static void test_sign_vector(struct sign_vector *vector)
{
    char hex[2 * JW_VERIFY_KEY_MAX + 1];
    char signature[JW_VERIFY_SIGNATURE_MAX];

    vector->key = parse_ok(vector->secret);
    CHECK_INT(vector->key.len, vector->key_length);
    sodium_bin2hex(hex, sizeof(hex), vector->key.bytes, vector->key.len);
    CHECK_STR(hex, vector->key_hex);

    jw_verify_sign(&vector->key, vector->msg_id, vector->timestamp, vector->payload,
                   strlen(vector->payload), signature);
    CHECK_STR(signature, vector->expected_signature);

    CHECK_INT(verify_at(&vector->key, vector->msg_id, vector->timestamp, vector->expected_signature,
                        vector->payload, vector->now),
              JW_VERIFY_OK);
}

enum fixture_kind {
    SIGNATURE_HEADER, /* "signature_header" replaces the vector's signature */
    NOW,              /* "now" replaces the clock */
    TIMESTAMP_HEADER, /* "timestamp_header" replaces the timestamp */
    TIMESTAMP_LIST,   /* each of "timestamps" replaces the timestamp */
    MISSING_HEADERS,  /* each header in turn is absent or empty */
    SECRETS_REJECTED, /* each of "secrets" is rejected */
    SECRETS_PREFIX,   /* "secrets" lists one secret with and one without whsec_ */
};

struct fixture_rule {
    const char *name;
    enum fixture_kind kind;
    jw_verify_result_t expected;
    int seen;
};

/*
 * The expected result of every negative and edge case in the vectors file. A case
 * that the file gains without a row here fails the test, so none is skipped.
 */
static struct fixture_rule fixture_rules[] = {
    {"sw-neg-wrong-sig-1char", SIGNATURE_HEADER, JW_VERIFY_BAD_SIGNATURE, 0},
    {"sw-neg-wrong-sig", SIGNATURE_HEADER, JW_VERIFY_BAD_SIGNATURE, 0},
    {"sw-neg-non-base64", SIGNATURE_HEADER, JW_VERIFY_BAD_SIGNATURE, 0},
    {"sw-neg-truncated-b64", SIGNATURE_HEADER, JW_VERIFY_BAD_SIGNATURE, 0},
    {"sw-neg-empty-sig", SIGNATURE_HEADER, JW_VERIFY_BAD_SIGNATURE, 0},
    {"sw-neg-prefix-only-8chars", SIGNATURE_HEADER, JW_VERIFY_BAD_SIGNATURE, 0},
    {"sw-neg-junk", SIGNATURE_HEADER, JW_VERIFY_BAD_SIGNATURE, 0},
    {"sw-multi-sig-valid-third", SIGNATURE_HEADER, JW_VERIFY_OK, 0},
    {"sw-multi-sig-rust", SIGNATURE_HEADER, JW_VERIFY_OK, 0},
    {"sw-neg-rust-wrong", SIGNATURE_HEADER, JW_VERIFY_BAD_SIGNATURE, 0},
    {"sw-ts-too-old", NOW, JW_VERIFY_STALE, 0},
    {"sw-ts-too-new", NOW, JW_VERIFY_FUTURE, 0},
    {"sw-ts-edge-300", NOW, JW_VERIFY_OK, 0},
    {"sw-ts-non-numeric", TIMESTAMP_HEADER, JW_VERIFY_BAD_HEADER, 0},
    {"sw-sign-rejects-bad-ts", TIMESTAMP_LIST, JW_VERIFY_BAD_HEADER, 0},
    {"sw-missing-headers", MISSING_HEADERS, JW_VERIFY_MISSING_HEADER, 0},
    {"sw-empty-secret", SECRETS_REJECTED, JW_VERIFY_OK, 0},
    {"sw-secret-with-or-without-prefix", SECRETS_PREFIX, JW_VERIFY_OK, 0},
};

#define FIXTURE_RULE_COUNT (sizeof(fixture_rules) / sizeof(fixture_rules[0]))

static struct fixture_rule *find_rule(const char *name)
{
    for (size_t i = 0; i < FIXTURE_RULE_COUNT; i++) {
        if (strcmp(fixture_rules[i].name, name) == 0)
            return &fixture_rules[i];
    }
    return NULL;
}

static const struct sign_vector *find_vector(const struct sign_vector *vectors, size_t count,
                                             const char *name)
{
    for (size_t i = 0; i < count; i++) {
        if (name != NULL && strcmp(vectors[i].name, name) == 0)
            return &vectors[i];
    }
    return NULL;
}

/* The file's "expect" text must agree with the table about accept versus reject. */
static void check_expect_text(yajl_val object, const struct fixture_rule *rule)
{
    const char *expect = member_string(object, "expect");

    CHECK(expect != NULL);
    if (expect == NULL)
        return;
    CHECK_INT(strncmp(expect, "accept", 6) == 0, rule->expected == JW_VERIFY_OK);
}

static void run_signature_header(yajl_val object, const struct sign_vector *vector,
                                 jw_verify_result_t expected)
{
    const char *header = member_string(object, "signature_header");

    CHECK(header != NULL);
    if (header == NULL)
        return;
    CHECK_INT(verify_at(&vector->key, vector->msg_id, vector->timestamp, header, vector->payload,
                        vector->now),
              expected);
}

static void run_now(yajl_val object, const struct sign_vector *vector, jw_verify_result_t expected)
{
    yajl_val now = member(object, "now");

    CHECK(YAJL_IS_INTEGER(now));
    if (!YAJL_IS_INTEGER(now))
        return;
    CHECK_INT(verify_at(&vector->key, vector->msg_id, vector->timestamp, vector->expected_signature,
                        vector->payload, YAJL_GET_INTEGER(now)),
              expected);
}

/* Signs with the bad timestamp itself, so only the timestamp can cause a rejection. */
static void check_timestamp_rejected(const struct sign_vector *vector, const char *timestamp)
{
    char signature[JW_VERIFY_SIGNATURE_MAX];

    jw_verify_sign(&vector->key, vector->msg_id, timestamp, vector->payload,
                   strlen(vector->payload), signature);
    CHECK_INT(
        verify_at(&vector->key, vector->msg_id, timestamp, signature, vector->payload, vector->now),
        JW_VERIFY_BAD_HEADER);
}

static void run_timestamp_header(yajl_val object, const struct sign_vector *vector)
{
    const char *timestamp = member_string(object, "timestamp_header");

    CHECK(timestamp != NULL);
    if (timestamp != NULL)
        check_timestamp_rejected(vector, timestamp);
}

static void run_timestamp_list(yajl_val object, const struct sign_vector *vector)
{
    yajl_val list = member(object, "timestamps");

    CHECK(YAJL_IS_ARRAY(list));
    if (!YAJL_IS_ARRAY(list))
        return;
    CHECK(YAJL_GET_ARRAY(list)->len > 0);
    for (size_t i = 0; i < YAJL_GET_ARRAY(list)->len; i++) {
        yajl_val item = YAJL_GET_ARRAY(list)->values[i];

        CHECK(YAJL_IS_STRING(item));
        if (YAJL_IS_STRING(item))
            check_timestamp_rejected(vector, YAJL_GET_STRING(item));
    }
}

/* Each header in turn is NULL, then a non-NULL pointer with length 0. */
static void run_missing_headers(const struct sign_vector *vector)
{
    const char *id = vector->msg_id;
    const char *ts = vector->timestamp;
    const char *sig = vector->expected_signature;
    const char *body = vector->payload;
    size_t id_len = strlen(id), ts_len = strlen(ts), sig_len = strlen(sig);
    size_t body_len = strlen(body);
    const jw_verify_key_t *key = &vector->key;
    int64_t now = vector->now;

    CHECK_INT(jw_verify_delivery(key, NULL, 0, ts, ts_len, sig, sig_len, body, body_len, now,
                                 TOLERANCE_S),
              JW_VERIFY_MISSING_HEADER);
    CHECK_INT(
        jw_verify_delivery(key, id, 0, ts, ts_len, sig, sig_len, body, body_len, now, TOLERANCE_S),
        JW_VERIFY_MISSING_HEADER);
    CHECK_INT(jw_verify_delivery(key, id, id_len, NULL, 0, sig, sig_len, body, body_len, now,
                                 TOLERANCE_S),
              JW_VERIFY_MISSING_HEADER);
    CHECK_INT(
        jw_verify_delivery(key, id, id_len, ts, 0, sig, sig_len, body, body_len, now, TOLERANCE_S),
        JW_VERIFY_MISSING_HEADER);
    CHECK_INT(
        jw_verify_delivery(key, id, id_len, ts, ts_len, NULL, 0, body, body_len, now, TOLERANCE_S),
        JW_VERIFY_MISSING_HEADER);
    CHECK_INT(
        jw_verify_delivery(key, id, id_len, ts, ts_len, sig, 0, body, body_len, now, TOLERANCE_S),
        JW_VERIFY_MISSING_HEADER);

    /* A NULL pointer with a stale length still means absent. */
    CHECK_INT(jw_verify_delivery(key, NULL, id_len, ts, ts_len, sig, sig_len, body, body_len, now,
                                 TOLERANCE_S),
              JW_VERIFY_MISSING_HEADER);
}

static void run_secrets_rejected(yajl_val object)
{
    yajl_val list = member(object, "secrets");

    CHECK(YAJL_IS_ARRAY(list));
    if (!YAJL_IS_ARRAY(list))
        return;
    CHECK(YAJL_GET_ARRAY(list)->len > 0);
    for (size_t i = 0; i < YAJL_GET_ARRAY(list)->len; i++) {
        yajl_val item = YAJL_GET_ARRAY(list)->values[i];
        jw_verify_key_t key;
        char err[160] = "";

        CHECK(YAJL_IS_STRING(item));
        if (!YAJL_IS_STRING(item))
            continue;
        CHECK_INT(jw_verify_parse_secret(YAJL_GET_STRING(item), &key, err, sizeof(err)), -1);
        CHECK(err[0] != '\0');
        CHECK_INT(key.len, 0);
    }
}

/*
 * The reference libraries also accept a secret without "whsec_". jobwire's
 * contract requires the prefix, so that a value pasted from the wrong field fails
 * at startup. The bare form must be rejected, and the same text with the prefix
 * must decode to the same key as the prefixed secret.
 */
static void run_secrets_prefix(yajl_val object)
{
    yajl_val list = member(object, "secrets");
    jw_verify_key_t prefixed, bare;
    char err[160] = "";
    char with_prefix[256];
    const char *first, *second;

    CHECK(YAJL_IS_ARRAY(list));
    if (!YAJL_IS_ARRAY(list))
        return;
    CHECK_INT(YAJL_GET_ARRAY(list)->len, 2);
    if (YAJL_GET_ARRAY(list)->len != 2)
        return;
    first = YAJL_GET_STRING(YAJL_GET_ARRAY(list)->values[0]);
    second = YAJL_GET_STRING(YAJL_GET_ARRAY(list)->values[1]);
    CHECK(first != NULL);
    CHECK(second != NULL);
    if (first == NULL || second == NULL)
        return;

    prefixed = parse_ok(first);
    CHECK_INT(jw_verify_parse_secret(second, &bare, err, sizeof(err)), -1);
    CHECK(strstr(err, "must start with whsec_") != NULL);

    snprintf(with_prefix, sizeof(with_prefix), "whsec_%s", second);
    bare = parse_ok(with_prefix);
    CHECK_INT(bare.len, prefixed.len);
    CHECK(memcmp(bare.bytes, prefixed.bytes, prefixed.len) == 0);
}

static void run_fixture_case(yajl_val object, const struct sign_vector *vectors, size_t count)
{
    const char *name = member_string(object, "id");
    struct fixture_rule *rule = name ? find_rule(name) : NULL;
    const char *based_on = member_string(object, "based_on");
    const struct sign_vector *vector = based_on ? find_vector(vectors, count, based_on) : vectors;

    CHECK_REPORT(rule != NULL, "fixture case %s has no expected result in fixture_rules",
                 name ? name : "(no id)");
    CHECK(vector != NULL);
    if (rule == NULL || vector == NULL)
        return;
    rule->seen++;

    switch (rule->kind) {
    case SIGNATURE_HEADER:
        check_expect_text(object, rule);
        run_signature_header(object, vector, rule->expected);
        break;
    case NOW:
        check_expect_text(object, rule);
        run_now(object, vector, rule->expected);
        break;
    case TIMESTAMP_HEADER:
        check_expect_text(object, rule);
        run_timestamp_header(object, vector);
        break;
    case TIMESTAMP_LIST:
        run_timestamp_list(object, vector);
        break;
    case MISSING_HEADERS:
        run_missing_headers(vector);
        break;
    case SECRETS_REJECTED:
        run_secrets_rejected(object);
        break;
    case SECRETS_PREFIX:
        run_secrets_prefix(object);
        break;
    }
}

static void test_fixture_file(void)
{
    struct sign_vector vectors[MAX_SIGN_VECTORS];
    const char *sign_path[] = {"official_sign_vectors", NULL};
    const char *cases_path[] = {"official_negative_and_edge_cases", NULL};
    yajl_val root = load_json(VECTORS_PATH);
    yajl_val sign_list, case_list;
    size_t count;

    CHECK(root != NULL);
    if (root == NULL)
        return;
    sign_list = yajl_tree_get(root, sign_path, yajl_t_array);
    case_list = yajl_tree_get(root, cases_path, yajl_t_array);
    CHECK(sign_list != NULL);
    CHECK(case_list != NULL);
    if (sign_list == NULL || case_list == NULL) {
        yajl_tree_free(root);
        return;
    }
    CHECK(YAJL_GET_ARRAY(sign_list)->len > 0);
    CHECK(YAJL_GET_ARRAY(case_list)->len > 0);
    if (YAJL_GET_ARRAY(sign_list)->len == 0) {
        yajl_tree_free(root);
        return;
    }

    count = YAJL_GET_ARRAY(sign_list)->len;
    CHECK(count <= MAX_SIGN_VECTORS);
    if (count > MAX_SIGN_VECTORS)
        count = MAX_SIGN_VECTORS;
    for (size_t i = 0; i < count; i++) {
        int failed_before = check_failed;

        CHECK_INT(load_sign_vector(YAJL_GET_ARRAY(sign_list)->values[i], &vectors[i]), 0);
        test_sign_vector(&vectors[i]);
        name_failures(failed_before, vectors[i].name ? vectors[i].name : "(no id)");
    }

    for (size_t i = 0; i < YAJL_GET_ARRAY(case_list)->len; i++) {
        yajl_val object = YAJL_GET_ARRAY(case_list)->values[i];
        const char *name = member_string(object, "id");
        int failed_before = check_failed;

        run_fixture_case(object, vectors, count);
        name_failures(failed_before, name ? name : "(no id)");
    }

    /* Each row must match exactly one case, so a renamed case cannot go untested. */
    for (size_t i = 0; i < FIXTURE_RULE_COUNT; i++)
        CHECK_REPORT(fixture_rules[i].seen == 1, "fixture case %s seen %d times",
                     fixture_rules[i].name, fixture_rules[i].seen);

    yajl_tree_free(root);
}

/* ---- secret parsing ---- */

struct secret_case {
    const char *name;
    const char *secret;
    size_t key_len;       /* 0 when the secret must be rejected */
    const char *err_part; /* text the error must contain when rejected */
};

static const struct secret_case secret_cases[] = {
    {"vector secret", V1_SECRET, 24, NULL},
    {"one byte key", "whsec_AA==", 1, NULL},
    {"two byte key", "whsec_AAA=", 2, NULL},
    {"three byte key", "whsec_AAAA", 3, NULL},
    {"missing prefix", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 0, "must start with whsec_"},
    {"uppercase prefix", "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 0, "must start with whsec_"},
    {"prefix without underscore", "whsecMfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 0,
     "must start with whsec_"},
    {"leading space before prefix", " " V1_SECRET, 0, "must start with whsec_"},
    {"signature instead of secret", V1_SIG, 0, "signature, not a secret"},
    {"v1 prefix before whsec", "v1," V1_SECRET, 0, "signature, not a secret"},
    {"empty", "", 0, "missing"},
    {"prefix only", "whsec_", 0, "empty after whsec_"},
    {"missing padding one", "whsec_AAA", 0, "not valid base64"},
    {"missing padding two", "whsec_AA", 0, "not valid base64"},
    {"one padding of two", "whsec_AA=", 0, "not valid base64"},
    {"extra padding", "whsec_AA===", 0, "not valid base64"},
    {"padding on full group", "whsec_AAAA=", 0, "not valid base64"},
    {"padding only", "whsec_====", 0, "not valid base64"},
    {"data after padding", "whsec_AA==AAAA", 0, "not valid base64"},
    {"length not multiple of four", "whsec_AAAAA", 0, "not valid base64"},
    {"non-zero trailing bits", "whsec_AB==", 0, "not valid base64"},
    {"url-safe alphabet", "whsec_-_-_", 0, "not valid base64"},
    {"non-ascii byte", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa\xc3\xa9", 0, "not valid base64"},
    {"high byte for slash", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa\xafw", 0, "not valid base64"},
    {"inner space", "whsec_MfKQ9r8GKYqr TwjUPD8ILPZIo2LaLaSw", 0, "whitespace"},
    {"space after prefix", "whsec_ MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 0, "whitespace"},
    {"trailing newline", V1_SECRET "\n", 0, "whitespace"},
    {"trailing crlf", V1_SECRET "\r\n", 0, "whitespace"},
    {"inner tab", "whsec_MfKQ9r8GKYqr\tTwjUPD8ILPZIo2LaLaSw", 0, "whitespace"},
};

static void check_secret_case(const struct secret_case *c)
{
    jw_verify_key_t key;
    char err[160] = "";
    int rc = jw_verify_parse_secret(c->secret, &key, err, sizeof(err));

    if (c->key_len > 0) {
        CHECK_INT(rc, 0);
        CHECK_INT(key.len, c->key_len);
        CHECK_STR(err, "");
        return;
    }
    CHECK_INT(rc, -1);
    CHECK_INT(key.len, 0);
    CHECK_REPORT(strstr(err, c->err_part) != NULL, "error \"%s\" lacks \"%s\"", err, c->err_part);

    /* Errors may be logged, so they must not echo the secret. */
    CHECK(strstr(err, "MfKQ9r8G") == NULL);
}

/* Builds "whsec_" followed by count copies of 'A' and then tail. */
static char *long_secret(size_t count, const char *tail)
{
    size_t len = 6 + count + strlen(tail);
    char *secret = malloc(len + 1);

    if (secret == NULL)
        abort();
    memcpy(secret, "whsec_", 6);
    memset(secret + 6, 'A', count);
    memcpy(secret + 6 + count, tail, strlen(tail) + 1);
    return secret;
}

static void check_long_secret(size_t count, const char *tail, size_t key_len)
{
    char *secret = long_secret(count, tail);
    jw_verify_key_t key;
    char err[160] = "";
    int rc = jw_verify_parse_secret(secret, &key, err, sizeof(err));

    if (key_len > 0) {
        CHECK_INT(rc, 0);
        CHECK_INT(key.len, key_len);
    } else {
        CHECK_INT(rc, -1);
        CHECK(strstr(err, "too long") != NULL);
    }
    free(secret);
}

static void test_parse_secret(void)
{
    for (size_t i = 0; i < sizeof(secret_cases) / sizeof(secret_cases[0]); i++) {
        int failed_before = check_failed;

        check_secret_case(&secret_cases[i]);
        name_failures(failed_before, secret_cases[i].name);
    }

    /* 171 'A' and one '=' encode exactly JW_VERIFY_KEY_MAX (128) bytes. */
    check_long_secret(171, "=", JW_VERIFY_KEY_MAX);

    /* 172 'A' fit the base64 length limit but decode to 129 bytes. */
    check_long_secret(172, "", 0);
    check_long_secret(176, "", 0);
    check_long_secret(100000, "", 0);
}

static void test_parse_secret_error_buffer(void)
{
    jw_verify_key_t key = parse_ok(V1_SECRET);
    char small[8];

    /* A failed parse clears a key that held an earlier secret. */
    CHECK_INT(jw_verify_parse_secret("whsec_AA", &key, NULL, 0), -1);
    CHECK_INT(key.len, 0);

    CHECK_INT(jw_verify_parse_secret(NULL, &key, small, sizeof(small)), -1);
    CHECK_INT(strlen(small), sizeof(small) - 1);
    CHECK_INT(jw_verify_parse_secret("nope", &key, small, 1), -1);
    CHECK_STR(small, "");
}

/* ---- timestamps ---- */

/* Signs with ts so that only the timestamp decides the result. */
static jw_verify_result_t verify_timestamp(const char *ts, int64_t now)
{
    jw_verify_key_t key = parse_ok(V1_SECRET);
    char signature[JW_VERIFY_SIGNATURE_MAX];

    jw_verify_sign(&key, V1_ID, ts, V1_BODY, strlen(V1_BODY), signature);
    return verify_at(&key, V1_ID, ts, signature, V1_BODY, now);
}

static void test_timestamp_window(void)
{
    CHECK_INT(verify_timestamp(V1_TS, V1_NOW), JW_VERIFY_OK);
    CHECK_INT(verify_timestamp(V1_TS, V1_NOW + 300), JW_VERIFY_OK);
    CHECK_INT(verify_timestamp(V1_TS, V1_NOW + 301), JW_VERIFY_STALE);
    CHECK_INT(verify_timestamp(V1_TS, V1_NOW - 300), JW_VERIFY_OK);
    CHECK_INT(verify_timestamp(V1_TS, V1_NOW - 301), JW_VERIFY_FUTURE);
}

static void test_timestamp_tolerance_limits(void)
{
    jw_verify_key_t key = parse_ok(V1_SECRET);
    size_t id_len = strlen(V1_ID), ts_len = strlen(V1_TS), sig_len = strlen(V1_SIG);
    size_t body_len = strlen(V1_BODY);

    CHECK_INT(jw_verify_delivery(&key, V1_ID, id_len, V1_TS, ts_len, V1_SIG, sig_len, V1_BODY,
                                 body_len, V1_NOW, 0),
              JW_VERIFY_OK);
    CHECK_INT(jw_verify_delivery(&key, V1_ID, id_len, V1_TS, ts_len, V1_SIG, sig_len, V1_BODY,
                                 body_len, V1_NOW + 1, 0),
              JW_VERIFY_STALE);

    /* A negative tolerance acts as zero rather than inverting the window. */
    CHECK_INT(jw_verify_delivery(&key, V1_ID, id_len, V1_TS, ts_len, V1_SIG, sig_len, V1_BODY,
                                 body_len, V1_NOW, -5),
              JW_VERIFY_OK);
    CHECK_INT(jw_verify_delivery(&key, V1_ID, id_len, V1_TS, ts_len, V1_SIG, sig_len, V1_BODY,
                                 body_len, V1_NOW - 1, -5),
              JW_VERIFY_FUTURE);

    CHECK_INT(jw_verify_delivery(&key, V1_ID, id_len, V1_TS, ts_len, V1_SIG, sig_len, V1_BODY,
                                 body_len, INT64_MAX, INT64_MAX),
              JW_VERIFY_OK);
}

struct timestamp_case {
    const char *ts;
    int64_t now;
    jw_verify_result_t expected;
};

static const struct timestamp_case timestamp_cases[] = {
    {"", V1_NOW, JW_VERIFY_MISSING_HEADER},
    {"+1614265330", V1_NOW, JW_VERIFY_BAD_HEADER},
    {"-1614265330", V1_NOW, JW_VERIFY_BAD_HEADER},
    {"-0", V1_NOW, JW_VERIFY_BAD_HEADER},
    {" 1614265330", V1_NOW, JW_VERIFY_BAD_HEADER},
    {"1614265330 ", V1_NOW, JW_VERIFY_BAD_HEADER},
    {"1614265330\n", V1_NOW, JW_VERIFY_BAD_HEADER},
    {"16142 65330", V1_NOW, JW_VERIFY_BAD_HEADER},
    {"16142653a0", V1_NOW, JW_VERIFY_BAD_HEADER},
    {"1614265330.0", V1_NOW, JW_VERIFY_BAD_HEADER},
    {"1.6e9", V1_NOW, JW_VERIFY_BAD_HEADER},
    {"0x6036f0f2", V1_NOW, JW_VERIFY_BAD_HEADER},
    {"\xd9\xa1", V1_NOW, JW_VERIFY_BAD_HEADER},
    {"9223372036854775808", V1_NOW, JW_VERIFY_BAD_HEADER},
    {"9999999999999999999", V1_NOW, JW_VERIFY_BAD_HEADER},
    {"10000000000000000000", V1_NOW, JW_VERIFY_BAD_HEADER},
    {"00000000001614265330", V1_NOW, JW_VERIFY_BAD_HEADER},
    {"0001614265330", V1_NOW, JW_VERIFY_OK},
    {"9223372036854775807", V1_NOW, JW_VERIFY_FUTURE},
    {"0", V1_NOW, JW_VERIFY_STALE},
    {"9223372036854775807", INT64_MIN, JW_VERIFY_FUTURE},
    {"0", INT64_MIN, JW_VERIFY_FUTURE},
    {"0", INT64_MAX, JW_VERIFY_STALE},
    {"9223372036854775807", INT64_MAX, JW_VERIFY_OK},
};

static void test_timestamp_format(void)
{
    for (size_t i = 0; i < sizeof(timestamp_cases) / sizeof(timestamp_cases[0]); i++) {
        const struct timestamp_case *c = &timestamp_cases[i];
        int failed_before = check_failed;

        CHECK_INT(verify_timestamp(c->ts, c->now), c->expected);
        name_failures(failed_before, c->ts);
    }
}

/* ---- signature lists ---- */

struct signature_case {
    const char *name;
    const char *header;
    jw_verify_result_t expected;
};

static const struct signature_case signature_cases[] = {
    {"single valid entry", V1_SIG, JW_VERIFY_OK},
    {"second of two matches", WRONG_SIG " " V1_SIG, JW_VERIFY_OK},
    {"first of two matches", V1_SIG " " WRONG_SIG, JW_VERIFY_OK},
    {"valid entry twice", V1_SIG " " V1_SIG, JW_VERIFY_OK},
    {"v2 entry before valid v1", "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= " V1_SIG,
     JW_VERIFY_OK},
    {"malformed entries before valid", "garbage , v1 v1a,xyz " V1_SIG, JW_VERIFY_OK},
    {"double space separator", WRONG_SIG "  " V1_SIG, JW_VERIFY_OK},
    {"leading and trailing spaces", "  " V1_SIG "  ", JW_VERIFY_OK},
    {"v2 entry with right mac",
     "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", JW_VERIFY_BAD_SIGNATURE},
    {"v1a entry with right mac",
     "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", JW_VERIFY_BAD_SIGNATURE},
    {"uppercase V1 entry",
     "V1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", JW_VERIFY_BAD_SIGNATURE},
    {"bare base64 without version",
     "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", JW_VERIFY_BAD_SIGNATURE},
    {"v1 without padding", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
     JW_VERIFY_BAD_SIGNATURE},
    {"v1 with non-zero trailing bits",
     "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=", JW_VERIFY_BAD_SIGNATURE},
    {"v1 url-safe alphabet",
     "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=", JW_VERIFY_BAD_SIGNATURE},
    /* libsodium 1.0.18 alone decodes any byte from 0x80 up as '/' (0x2f here). */
    {"v1 with high byte for slash",
     "v1,g0hM9SsE+OTPJTGt\xaftmIKtSyZlE3uFJELVlNIOLJ1OE=", JW_VERIFY_BAD_SIGNATURE},
    {"v1 with extra byte", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OEA",
     JW_VERIFY_BAD_SIGNATURE},
    {"v1 of 31 bytes", "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", JW_VERIFY_BAD_SIGNATURE},
    {"valid then tab", V1_SIG "\t", JW_VERIFY_BAD_SIGNATURE},
    {"comma separated", V1_SIG "," WRONG_SIG, JW_VERIFY_BAD_SIGNATURE},
    {"v1 prefix only", "v1,", JW_VERIFY_BAD_SIGNATURE},
    {"only v2 entries", "v2,abc v2,def", JW_VERIFY_BAD_SIGNATURE},
    {"single space", " ", JW_VERIFY_BAD_HEADER},
    {"only spaces", "     ", JW_VERIFY_BAD_HEADER},
};

static void test_signature_lists(void)
{
    jw_verify_key_t key = parse_ok(V1_SECRET);

    for (size_t i = 0; i < sizeof(signature_cases) / sizeof(signature_cases[0]); i++) {
        const struct signature_case *c = &signature_cases[i];
        int failed_before = check_failed;

        CHECK_INT(verify_at(&key, V1_ID, V1_TS, c->header, V1_BODY, V1_NOW), c->expected);
        name_failures(failed_before, c->name);
    }
}

/*
 * Builds a header of exactly len bytes: wrong v1 entries and v2 entries, cut where the
 * space runs out, then a space and the valid entry last.
 */
static char *padded_signature_header(size_t len)
{
    const char filler[] = WRONG_SIG " v2,abc ";
    size_t filler_len = strlen(filler);
    size_t valid_len = strlen(V1_SIG);
    char *header = malloc(len + 1);

    if (header == NULL || len < valid_len + 1)
        abort();
    for (size_t i = 0; i < len - valid_len; i++)
        header[i] = filler[i % filler_len];
    header[len - valid_len - 1] = ' ';
    memcpy(header + len - valid_len, V1_SIG, valid_len + 1);
    return header;
}

static void test_signature_header_cap(void)
{
    jw_verify_key_t key = parse_ok(V1_SECRET);
    char *at_cap = padded_signature_header(4096);
    char *over_cap = padded_signature_header(4097);

    CHECK_INT(strlen(at_cap), 4096);
    CHECK_INT(verify_at(&key, V1_ID, V1_TS, at_cap, V1_BODY, V1_NOW), JW_VERIFY_OK);
    CHECK_INT(verify_at(&key, V1_ID, V1_TS, over_cap, V1_BODY, V1_NOW), JW_VERIFY_BAD_HEADER);
    free(at_cap);
    free(over_cap);
}

/* ---- ids, bodies and keys ---- */

static jw_verify_result_t verify_id(const char *id, size_t id_len)
{
    jw_verify_key_t key = parse_ok(V1_SECRET);
    char *id_copy = copy_exact(id, id_len);
    char *id_text = malloc(id_len + 1);
    char signature[JW_VERIFY_SIGNATURE_MAX];
    jw_verify_result_t result;

    if (id_text == NULL)
        abort();
    memcpy(id_text, id, id_len);
    id_text[id_len] = '\0';
    jw_verify_sign(&key, id_text, V1_TS, V1_BODY, strlen(V1_BODY), signature);

    result = jw_verify_delivery(&key, id_copy, id_len, V1_TS, strlen(V1_TS), signature,
                                strlen(signature), V1_BODY, strlen(V1_BODY), V1_NOW, TOLERANCE_S);
    free(id_copy);
    free(id_text);
    return result;
}

static void test_id_format(void)
{
    char long_id[258];

    memset(long_id, 'a', sizeof(long_id));
    CHECK_INT(verify_id(long_id, 256), JW_VERIFY_OK);
    CHECK_INT(verify_id(long_id, 257), JW_VERIFY_BAD_HEADER);
    CHECK_INT(verify_id("msg_1", 5), JW_VERIFY_OK);
    CHECK_INT(verify_id("msg.1~x!", 8), JW_VERIFY_OK);
    CHECK_INT(verify_id("msg 1", 5), JW_VERIFY_BAD_HEADER);
    CHECK_INT(verify_id("msg\t1", 5), JW_VERIFY_BAD_HEADER);
    CHECK_INT(verify_id("msg\n1", 5), JW_VERIFY_BAD_HEADER);
    CHECK_INT(verify_id("msg\x7f", 4), JW_VERIFY_BAD_HEADER);
    CHECK_INT(verify_id("msg\xc3\xa9", 5), JW_VERIFY_BAD_HEADER);

    /* A NUL inside the given length is part of the id, and an invalid one. */
    CHECK_INT(verify_id("msg\0x", 5), JW_VERIFY_BAD_HEADER);
}

static void test_bodies(void)
{
    jw_verify_key_t key = parse_ok(V1_SECRET);
    const char binary[] = {'a', '\0', 'b'};
    char signature[JW_VERIFY_SIGNATURE_MAX];
    size_t id_len = strlen(V1_ID), ts_len = strlen(V1_TS);

    /* An empty body may be passed as NULL. */
    jw_verify_sign(&key, V1_ID, V1_TS, NULL, 0, signature);
    CHECK_INT(jw_verify_delivery(&key, V1_ID, id_len, V1_TS, ts_len, signature, strlen(signature),
                                 NULL, 0, V1_NOW, TOLERANCE_S),
              JW_VERIFY_OK);
    CHECK_INT(jw_verify_delivery(&key, V1_ID, id_len, V1_TS, ts_len, signature, strlen(signature),
                                 "", 0, V1_NOW, TOLERANCE_S),
              JW_VERIFY_OK);

    /* Bodies are bytes: a NUL inside is signed like any other byte. */
    jw_verify_sign(&key, V1_ID, V1_TS, binary, sizeof(binary), signature);
    CHECK_INT(jw_verify_delivery(&key, V1_ID, id_len, V1_TS, ts_len, signature, strlen(signature),
                                 binary, sizeof(binary), V1_NOW, TOLERANCE_S),
              JW_VERIFY_OK);
    CHECK_INT(jw_verify_delivery(&key, V1_ID, id_len, V1_TS, ts_len, signature, strlen(signature),
                                 binary, 1, V1_NOW, TOLERANCE_S),
              JW_VERIFY_BAD_SIGNATURE);

    /* Changing one byte of the body, the id or the timestamp breaks the signature. */
    CHECK_INT(verify_at(&key, V1_ID, V1_TS, V1_SIG, "{\"test\": 2432232315}", V1_NOW),
              JW_VERIFY_BAD_SIGNATURE);
    CHECK_INT(verify_at(&key, "msg_p5jXN8AQM9LWM0D4loKWxJeK", V1_TS, V1_SIG, V1_BODY, V1_NOW),
              JW_VERIFY_BAD_SIGNATURE);
    CHECK_INT(verify_at(&key, V1_ID, "1614265331", V1_SIG, V1_BODY, V1_NOW),
              JW_VERIFY_BAD_SIGNATURE);

    /* A NULL body with a length is a caller bug and fails closed. */
    CHECK_INT(jw_verify_delivery(&key, V1_ID, id_len, V1_TS, ts_len, V1_SIG, strlen(V1_SIG), NULL,
                                 5, V1_NOW, TOLERANCE_S),
              JW_VERIFY_BAD_SIGNATURE);
}

static void test_unusable_keys(void)
{
    jw_verify_key_t key = parse_ok(V1_SECRET);
    char signature[JW_VERIFY_SIGNATURE_MAX];

    CHECK_INT(verify_at(NULL, V1_ID, V1_TS, V1_SIG, V1_BODY, V1_NOW), JW_VERIFY_BAD_SIGNATURE);

    key.len = 0;
    CHECK_INT(verify_at(&key, V1_ID, V1_TS, V1_SIG, V1_BODY, V1_NOW), JW_VERIFY_BAD_SIGNATURE);
    jw_verify_sign(&key, V1_ID, V1_TS, V1_BODY, strlen(V1_BODY), signature);
    CHECK_STR(signature, "");

    key.len = JW_VERIFY_KEY_MAX + 1;
    CHECK_INT(verify_at(&key, V1_ID, V1_TS, V1_SIG, V1_BODY, V1_NOW), JW_VERIFY_BAD_SIGNATURE);
    jw_verify_sign(&key, V1_ID, V1_TS, V1_BODY, strlen(V1_BODY), signature);
    CHECK_STR(signature, "");

    /* A different key of the same length does not verify the vector. */
    key = parse_ok("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    CHECK_INT(key.len, 24);
    CHECK_INT(verify_at(&key, V1_ID, V1_TS, V1_SIG, V1_BODY, V1_NOW), JW_VERIFY_BAD_SIGNATURE);
}

/* ---- lengths that are not NUL-terminated ---- */

/*
 * The signed content itself is one buffer, and the id, timestamp and body are
 * slices of it. Each header is followed by bytes that would change the result if
 * they were read.
 */
static void test_unterminated_headers(void)
{
    jw_verify_key_t key = parse_ok(V1_SECRET);
    const char content[] = V1_ID "." V1_TS "." V1_BODY;
    const char signatures[] = V1_SIG "garbage " WRONG_SIG;
    const char longer_ts[] = V1_TS "999";
    const char longer_id[] = V1_ID "EXTRA";
    size_t id_len = strlen(V1_ID), ts_len = strlen(V1_TS), sig_len = strlen(V1_SIG);
    const char *ts = content + id_len + 1;
    const char *body = ts + ts_len + 1;
    size_t body_len = strlen(V1_BODY);

    CHECK_INT(jw_verify_delivery(&key, content, id_len, ts, ts_len, signatures, sig_len, body,
                                 body_len, V1_NOW, TOLERANCE_S),
              JW_VERIFY_OK);
    CHECK_INT(jw_verify_delivery(&key, longer_id, id_len, longer_ts, ts_len, signatures, sig_len,
                                 body, body_len, V1_NOW, TOLERANCE_S),
              JW_VERIFY_OK);

    /* One byte short of the valid entry, or one byte into the garbage, does not match. */
    CHECK_INT(jw_verify_delivery(&key, content, id_len, ts, ts_len, signatures, sig_len - 1, body,
                                 body_len, V1_NOW, TOLERANCE_S),
              JW_VERIFY_BAD_SIGNATURE);
    CHECK_INT(jw_verify_delivery(&key, content, id_len, ts, ts_len, signatures, sig_len + 1, body,
                                 body_len, V1_NOW, TOLERANCE_S),
              JW_VERIFY_BAD_SIGNATURE);
    CHECK_INT(jw_verify_delivery(&key, content, id_len, ts, ts_len, signatures, strlen(signatures),
                                 body, body_len, V1_NOW, TOLERANCE_S),
              JW_VERIFY_BAD_SIGNATURE);
}

/* ---- signing and messages ---- */

static void test_sign_round_trip(void)
{
    const size_t key_lengths[] = {1, 24, 32, 64, JW_VERIFY_KEY_MAX};
    char signature[JW_VERIFY_SIGNATURE_MAX];

    for (size_t i = 0; i < sizeof(key_lengths) / sizeof(key_lengths[0]); i++) {
        jw_verify_key_t key = {.len = key_lengths[i]};

        randombytes_buf(key.bytes, key.len);
        jw_verify_sign(&key, V1_ID, V1_TS, V1_BODY, strlen(V1_BODY), signature);
        CHECK_INT(strlen(signature), 47);
        CHECK(strncmp(signature, "v1,", 3) == 0);
        CHECK_INT(verify_at(&key, V1_ID, V1_TS, signature, V1_BODY, V1_NOW), JW_VERIFY_OK);
    }
}

static void test_result_messages(void)
{
    const jw_verify_result_t results[] = {
        JW_VERIFY_OK,    JW_VERIFY_MISSING_HEADER, JW_VERIFY_BAD_HEADER,
        JW_VERIFY_STALE, JW_VERIFY_FUTURE,         JW_VERIFY_BAD_SIGNATURE,
    };
    const size_t count = sizeof(results) / sizeof(results[0]);

    for (size_t i = 0; i < count; i++) {
        const char *message = jw_verify_result_message(results[i]);

        CHECK(message != NULL);
        CHECK(message[0] != '\0');
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(message, jw_verify_result_message(results[j])) != 0);
    }
    CHECK_STR(jw_verify_result_message((jw_verify_result_t)99),
              "unknown signature verification result");
}

int main(void)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "sodium_init failed\n");
        return 1;
    }

    test_fixture_file();
    test_parse_secret();
    test_parse_secret_error_buffer();
    test_timestamp_window();
    test_timestamp_tolerance_limits();
    test_timestamp_format();
    test_signature_lists();
    test_signature_header_cap();
    test_id_format();
    test_bodies();
    test_unusable_keys();
    test_unterminated_headers();
    test_sign_round_trip();
    test_result_messages();
    CHECK_SUMMARY();
}
