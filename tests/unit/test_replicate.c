/*
 * Unit tests for the Replicate object parser: every prediction and training
 * fixture field by field, the items of the list fixtures, then tables of
 * timestamps, number forms, kinds, bad bodies and log tails.
 */
#include "jobwire/json.h"
#include "jobwire/replicate.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define FIXTURE_DIR JW_FIXTURES "/replicate"

#define CHECK_PREFIX(actual, prefix)                                                               \
    CHECK_REPORT(strncmp((actual), (prefix), strlen(prefix)) == 0,                                 \
                 "%s: got \"%s\", expected it to start with \"%s\"", #actual, (actual), (prefix))

/* Expected values of one fixture, copied by hand from the file. */
struct fixture {
    const char *file;
    const char *id;
    const char *word;
    jw_status_t status;
    const char *kind;
    const char *created_at;
    long long created_ms;
    const char *started_at;
    const char *completed_at;
    double predict_time;
    const char *error;
    const char *output;
    const char *model;
    const char *version;
    size_t logs_len; /* UTF-8 bytes after JSON unescaping */
    const char *logs_head;
    const char *logs_end;
};

#define PRED_ID "p9c3xk7mqdrm80cqz5tw2hb6ye"
#define PRED_MODEL "example-org/sdxl-portrait"
#define PRED_VERSION "47c0e5c463a2429ac2a92f95c0b813c79bbf08dc2b9d2e033948bad21b5d7663"
#define PRED_CREATED "2025-06-10T10:02:11.407000Z", 1749549731407LL
#define PRED_STARTED "2025-06-10T10:02:13.551207Z"
#define TRAIN_ID "t4vq8m2kxhrj60cqz1fb7wn3ca"
#define TRAIN_MODEL "acme-labs/flux-lora-trainer"
#define TRAIN_VERSION "cbf04f34bf27f5f17d45c8954e496d62a3199ac05da6c43b108d441992bb8424"
#define TRAIN_CREATED "2025-06-10T09:14:02.118304Z", 1749546842118LL
#define TRAIN_STARTED "2025-06-10T09:14:09.551207Z"
#define TRAIN_HEAD "Extracting input_images to /src/input_images\n"

static const struct fixture fixtures[] = {
    {"prediction.starting.json", PRED_ID, "starting", JW_STATUS_QUEUED, "prediction", PRED_CREATED,
     NULL, NULL, -1, NULL, NULL, PRED_MODEL, PRED_VERSION, 0, NULL, NULL},
    {"prediction.processing.json", PRED_ID, "processing", JW_STATUS_RUNNING, "prediction",
     PRED_CREATED, PRED_STARTED, NULL, -1, NULL, NULL, PRED_MODEL, PRED_VERSION, 451,
     "Using seed: 4242\n", "| 18/30 [00:01<00:00, 12.48it/s]\n"},
    {"prediction.succeeded.json", PRED_ID, "succeeded", JW_STATUS_COMPLETED, "prediction",
     PRED_CREATED, PRED_STARTED, "2025-06-10T10:02:16.244190Z", 2.692982615, NULL,
     "[\"https://replicate.delivery/xezq/Zr8exampleOutputAbc123/out-0.webp\"]", PRED_MODEL,
     PRED_VERSION, 736, "Using seed: 4242\n", "12.40it/s]\nGenerated image in 2.61s\n"},
    {"prediction.failed.json", PRED_ID, "failed", JW_STATUS_FAILED, "prediction", PRED_CREATED,
     PRED_STARTED, "2025-06-10T10:02:13.902112Z", 0.350904156,
     "Input validation failed: width must be a multiple of 64 (got 1000)", NULL, PRED_MODEL,
     PRED_VERSION, 218, "Using seed: 4242\n",
     "ValueError: width must be a multiple of 64 (got 1000)\n"},
    {"prediction.canceled.json", PRED_ID, "canceled", JW_STATUS_CANCELLED, "prediction",
     PRED_CREATED, PRED_STARTED, "2025-06-10T10:02:14.330052Z", 0.778844229, NULL, NULL, PRED_MODEL,
     PRED_VERSION, 277, "Using seed: 4242\n", "| 9/30 [00:00<00:01, 12.49it/s]\n"},
    {"training.starting.json", TRAIN_ID, "starting", JW_STATUS_QUEUED, "training", TRAIN_CREATED,
     NULL, NULL, -1, NULL, NULL, TRAIN_MODEL, TRAIN_VERSION, 0, NULL, NULL},
    {"training.processing.json", TRAIN_ID, "processing", JW_STATUS_RUNNING, "training",
     TRAIN_CREATED, TRAIN_STARTED, NULL, -1, NULL, NULL, TRAIN_MODEL, TRAIN_VERSION, 1320,
     TRAIN_HEAD, "output/flux_train_replicate/checkpoint_000400.safetensors\n"},
    {"training.processing.pti-style.json", TRAIN_ID, "processing", JW_STATUS_RUNNING, "training",
     TRAIN_CREATED, TRAIN_STARTED, NULL, -1, NULL, NULL, "acme-labs/sdxl-dreambooth-trainer",
     TRAIN_VERSION, 1459, "Generating 18 captions...\n", "| 14/1000 [00:04<05:57,  2.74it/s]\n"},
    {"training.succeeded.json", TRAIN_ID, "succeeded", JW_STATUS_COMPLETED, "training",
     TRAIN_CREATED, TRAIN_STARTED, "2025-06-10T09:36:47.902561Z", 1358.351354, NULL,
     "{\"version\":\"example-org/portrait-style-lora:"
     "f30221d538347eeb96be20b41e59017b33c0ca11537bc207fbf4a79c5fce58c9\","
     "\"weights\":\"https://replicate.delivery/xezq/Qm3vZ8exampleAbCdEfGh12345/"
     "trained_model.tar\"}",
     TRAIN_MODEL, TRAIN_VERSION, 2528, TRAIN_HEAD,
     "Packing trained_model.tar (171.6 MB)\nUploading weights...\n"},
    {"training.failed.json", TRAIN_ID, "failed", JW_STATUS_FAILED, "training", TRAIN_CREATED,
     TRAIN_STARTED, "2025-06-10T09:19:52.004118Z", 342.452911,
     "CUDA out of memory. Tried to allocate 2.50 GiB. GPU 0 has a total capacity of 79.15 GiB "
     "of which 1.02 GiB is free.",
     NULL, TRAIN_MODEL, TRAIN_VERSION, 1667, TRAIN_HEAD, "of which 1.02 GiB is free.\n"},
    {"training.canceled.json", TRAIN_ID, "canceled", JW_STATUS_CANCELLED, "training", TRAIN_CREATED,
     TRAIN_STARTED, "2025-06-10T09:16:01.734019Z", 112.182812, NULL, NULL, TRAIN_MODEL,
     TRAIN_VERSION, 716, TRAIN_HEAD, "lr: 4.0e-04 loss: 4.371e-01]\n"},
};

#define N_FIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

/* The items of the list fixtures, which carry no logs and no destination. */
static const struct fixture list_items[] = {
    {"list.predictions.page2.json", "m4x8k2v6q9rm80cqz7p1t3bn5c", "starting", JW_STATUS_QUEUED,
     "prediction", "2025-06-10T09:58:02.771620Z", 1749549482771LL, NULL, NULL, -1, NULL, NULL,
     PRED_MODEL, PRED_VERSION, 0, NULL, NULL},
    {"list.predictions.page2.json", "z1b5n9w3y7rm80cqz6h2k8vd4f", "succeeded", JW_STATUS_COMPLETED,
     "prediction", "2025-06-10T09:40:18.220019Z", 1749548418220LL, "2025-06-10T09:40:19.901144Z",
     "2025-06-10T09:40:22.614577Z", 2.713433, NULL,
     "[\"https://replicate.delivery/xezq/Lk9exampleOutput555/out-0.webp\"]", PRED_MODEL,
     PRED_VERSION, 0, NULL, NULL},
    {"list.predictions.page2.json", "g7t3c1m5x9rm80cqyx4q6w2pa8", "succeeded", JW_STATUS_COMPLETED,
     "prediction", "2025-06-10T08:11:45.905533Z", 1749543105905LL, "2025-06-10T08:11:46.700012Z",
     "2025-06-10T08:11:49.315870Z", 2.615858, NULL, NULL, PRED_MODEL, PRED_VERSION, 0, NULL, NULL},
    {"list.trainings.page2.json", "h2k9v7c1xdrm80cq1n4w8tg3za", "processing", JW_STATUS_RUNNING,
     "training", "2025-06-09T07:51:33.120044Z", 1749455493120LL, "2025-06-09T07:51:40.882310Z",
     NULL, -1, NULL, NULL, TRAIN_MODEL, TRAIN_VERSION, 0, NULL, NULL},
    {"list.trainings.page2.json", "w8q1z5t3m2rm80cq0b7x9kf6ne", "succeeded", JW_STATUS_COMPLETED,
     "training", "2025-06-07T14:02:09.331907Z", 1749304929331LL, "2025-06-07T14:02:15.004261Z",
     "2025-06-07T14:24:58.612007Z", 1363.607746, NULL,
     "{\"version\":\"example-org/another-lora:"
     "fb04dcb6970e4c3d1873de51fd5a50d7bb46b3383113602665c350ec40b5f990\","
     "\"weights\":\"https://replicate.delivery/xezq/Wt5exampleWeights777/trained_model.tar\"}",
     TRAIN_MODEL, TRAIN_VERSION, 0, NULL, NULL},
    {"list.trainings.page2.json", "c5n7r2y8p4rm80cpzq1v3hd9ta", "failed", JW_STATUS_FAILED,
     "training", "2025-06-03T18:40:12.004118Z", 1748976012004LL, "2025-06-03T18:40:19.118002Z",
     "2025-06-03T18:40:31.550114Z", 12.432112, "Training data zip contains no images", NULL,
     TRAIN_MODEL, TRAIN_VERSION, 0, NULL, NULL},
};

#define N_LIST_ITEMS (sizeof(list_items) / sizeof(list_items[0]))

/* Reads a whole fixture; the caller frees the result. Returns NULL when unreadable. */
static char *load_fixture(const char *name, size_t *len)
{
    char path[512];
    char *buf = NULL;
    long size = -1;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, name);
    f = fopen(path, "rb");
    if (f == NULL)
        return NULL;

    if (fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (size >= 0 && fseek(f, 0, SEEK_SET) == 0)
        buf = malloc((size_t)size + 1);
    if (buf != NULL && fread(buf, 1, (size_t)size, f) != (size_t)size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);

    if (buf != NULL)
        *len = (size_t)size;
    return buf;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static void check_logs(const jw_event_t *ev, const struct fixture *fx)
{
    CHECK_INT(ev->logs_len, fx->logs_len);
    if (fx->logs_head == NULL) {
        CHECK_STR(ev->logs_tail, NULL);
        return;
    }
    /* Every fixture's logs fit in the tail, so the tail is the whole text. */
    CHECK(ev->logs_tail != NULL);
    if (ev->logs_tail == NULL)
        return;
    CHECK_INT(strlen(ev->logs_tail), fx->logs_len);
    CHECK_PREFIX(ev->logs_tail, fx->logs_head);
    CHECK_REPORT(ends_with(ev->logs_tail, fx->logs_end), "%s: logs do not end with \"%s\"",
                 fx->file, fx->logs_end);
}

static void check_event(const jw_event_t *ev, const struct fixture *fx)
{
    CHECK_STR(ev->job_id, fx->id);
    CHECK_STR(ev->provider, "replicate");
    CHECK_STR(ev->kind, fx->kind);
    CHECK_INT(ev->status, fx->status);
    CHECK_STR(ev->provider_status, fx->word);
    CHECK_STR(ev->created_at, fx->created_at);
    CHECK_INT(ev->created_ms, fx->created_ms);
    CHECK_STR(ev->started_at, fx->started_at);
    CHECK_STR(ev->completed_at, fx->completed_at);
    CHECK_DOUBLE(ev->predict_time, fx->predict_time);
    CHECK_STR(ev->error_message, fx->error);
    CHECK_STR(ev->output_json, fx->output);
    CHECK_STR(ev->model, fx->model);
    CHECK_STR(ev->version, fx->version);
    CHECK_STR(ev->hardware, NULL);
    check_logs(ev, fx);
}

static void test_fixture_objects_field_by_field(void)
{
    for (size_t i = 0; i < N_FIXTURES; i++) {
        jw_event_t ev = {0};
        char err[256];
        size_t len = 0;
        char *body = load_fixture(fixtures[i].file, &len);

        CHECK_REPORT(body != NULL, "cannot read fixture %s", fixtures[i].file);
        if (body == NULL)
            continue;
        CHECK_REPORT(jw_replicate_parse_object(body, len, &ev, err, sizeof(err)) == 0, "%s: %s",
                     fixtures[i].file, err);
        check_event(&ev, &fixtures[i]);
        jw_event_clear(&ev);
        free(body);
    }
}

static int is_object_fixture(const char *name)
{
    return (strncmp(name, "prediction.", 11) == 0 || strncmp(name, "training.", 9) == 0) &&
           ends_with(name, ".json");
}

/* A fixture added later must get an expectation row, or this fails. */
static void test_every_fixture_has_expectations(void)
{
    DIR *dir = opendir(FIXTURE_DIR);
    struct dirent *de;
    int seen = 0;

    CHECK_REPORT(dir != NULL, "cannot open %s", FIXTURE_DIR);
    if (dir == NULL)
        return;
    for (de = readdir(dir); de != NULL; de = readdir(dir)) {
        int found = 0;

        if (!is_object_fixture(de->d_name))
            continue;
        seen++;
        for (size_t i = 0; i < N_FIXTURES; i++)
            found |= strcmp(fixtures[i].file, de->d_name) == 0;
        CHECK_REPORT(found, "fixture %s has no row in the expectations table", de->d_name);
    }
    closedir(dir);
    CHECK_INT(seen, N_FIXTURES);
}

static const struct fixture *list_item_expectation(const char *file, const char *id)
{
    for (size_t i = 0; i < N_LIST_ITEMS; i++) {
        if (strcmp(list_items[i].file, file) == 0 && strcmp(list_items[i].id, id) == 0)
            return &list_items[i];
    }
    return NULL;
}

/* Each list item goes through the parser as its own compact JSON text. */
static void check_list_item(const char *file, yajl_val item, int *count)
{
    const struct fixture *fx;
    jw_event_t ev = {0};
    char err[256];
    size_t len = 0;
    char *text = jw_json_serialise(item, &len);

    CHECK(text != NULL);
    if (text == NULL)
        return;
    CHECK_REPORT(jw_replicate_parse_object(text, len, &ev, err, sizeof(err)) == 0, "%s: %s", file,
                 err);
    fx = ev.job_id != NULL ? list_item_expectation(file, ev.job_id) : NULL;
    CHECK_REPORT(fx != NULL, "%s: item %s has no expectation row", file,
                 ev.job_id ? ev.job_id : "(none)");
    if (fx != NULL) {
        check_event(&ev, fx);
        (*count)++;
    }
    jw_event_clear(&ev);
    free(text);
}

static void test_list_items_field_by_field(void)
{
    static const char *const files[] = {"list.predictions.page2.json",
                                        "list.predictions.last-page.json",
                                        "list.trainings.page2.json"};
    int count = 0;

    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        char err[128];
        size_t len = 0;
        char *body = load_fixture(files[f], &len);
        yajl_val root = body ? jw_json_parse(body, len, err, sizeof(err)) : NULL;
        yajl_val results = jw_json_get(root, JW_JSON_PATH("results"));

        CHECK_REPORT(YAJL_IS_ARRAY(results), "%s: no results array", files[f]);
        for (size_t i = 0; YAJL_IS_ARRAY(results) && i < results->u.array.len; i++)
            check_list_item(files[f], results->u.array.values[i], &count);
        yajl_tree_free(root);
        free(body);
    }
    CHECK_INT(count, N_LIST_ITEMS);
}

/* Error bodies from the API are not job objects, so each must be rejected by name. */
static void test_api_error_fixtures_rejected(void)
{
    static const struct {
        const char *file;
        const char *err;
    } cases[] = {
        {"api.error.401.json", "id: missing"},
        {"api.error.402.json", "id: missing"},
        {"api.error.404-training-destination.json", "id: missing"},
        {"api.error.429-documented.json", "id: missing"},
        {"api.error.429-low-credit-observed.json", "id: missing"},
        {"api.webhook-default-secret.json", "id: missing"},
        {"list.predictions.page2.json", "id: missing"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        jw_event_t ev = {0};
        char err[256];
        size_t len = 0;
        char *body = load_fixture(cases[i].file, &len);

        CHECK_REPORT(body != NULL, "cannot read fixture %s", cases[i].file);
        if (body == NULL)
            continue;
        CHECK_INT(jw_replicate_parse_object(body, len, &ev, err, sizeof(err)), -1);
        CHECK_STR(err, cases[i].err);
        CHECK_STR(ev.job_id, NULL);
        free(body);
    }
}

static void test_timestamps_normalise_to_utc(void)
{
    static const struct {
        const char *in;
        const char *out;
        long long ms;
    } cases[] = {
        {"2025-06-10T09:14:02Z", "2025-06-10T09:14:02.000000Z", 1749546842000LL},
        {"2025-06-10T10:02:11.407Z", "2025-06-10T10:02:11.407000Z", 1749549731407LL},
        {"2025-06-10T09:14:02.118304Z", "2025-06-10T09:14:02.118304Z", 1749546842118LL},
        {"2025-06-10T10:02:13.55120788Z", "2025-06-10T10:02:13.551207Z", 1749549733551LL},
        {"2025-06-10T10:02:13.551207888Z", "2025-06-10T10:02:13.551207Z", 1749549733551LL},
        {"2025-06-10T10:02:13.5Z", "2025-06-10T10:02:13.500000Z", 1749549733500LL},
        {"2025-06-10T09:14:02.5+02:00", "2025-06-10T07:14:02.500000Z", 1749539642500LL},
        {"2025-06-10T09:14:02-05:30", "2025-06-10T14:44:02.000000Z", 1749566642000LL},
        {"2025-06-10T09:14:02.118304+00:00", "2025-06-10T09:14:02.118304Z", 1749546842118LL},
        {"2025-06-10T09:14:02.118304-00:00", "2025-06-10T09:14:02.118304Z", 1749546842118LL},
        {"2025-01-01T01:00:00+02:00", "2024-12-31T23:00:00.000000Z", 1735686000000LL},
        {"2024-02-28T23:30:00-01:00", "2024-02-29T00:30:00.000000Z", 1709166600000LL},
        {"2023-02-28T23:30:00-01:00", "2023-03-01T00:30:00.000000Z", 1677630600000LL},
        {"2025-12-31T23:59:59.999999999-00:01", "2026-01-01T00:00:59.999999Z", 1767225659999LL},
        {"2000-02-29T12:00:00.1Z", "2000-02-29T12:00:00.100000Z", 951825600100LL},
        {"1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000000Z", 0},
        {"1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500000Z", -500},
        {"0000-01-01T00:00:00Z", "0000-01-01T00:00:00.000000Z", -62167219200000LL},
        {"9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z", 253402300799999LL},
        {"2025-06-10t09:14:02z", "2025-06-10T09:14:02.000000Z", 1749546842000LL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[28] = "";
        long long ms = 42;
        int rc = jw_replicate_normalise_time(cases[i].in, strlen(cases[i].in), out, &ms);

        CHECK_REPORT(rc == 0, "normalise \"%s\" failed", cases[i].in);
        CHECK_STR(out, cases[i].out);
        CHECK_INT(ms, cases[i].ms);
    }
}

static void test_malformed_timestamps_rejected(void)
{
    static const char *const cases[] = {
        "",
        "2025-06-10",
        "2025-06-10T09:14:02",             /* no zone */
        "2025-06-10T09:14:02.118304",      /* no zone */
        "2025-06-10 09:14:02Z",            /* space separator */
        "2025-06-10T09:14:02.Z",           /* dot without digits */
        "2025-06-10T09:14:02.1234567890Z", /* 10 digits */
        "2025-06-10T09:14:02.12a4Z",
        "2025-06-10T09:14:02Zjunk",
        "2025-06-10T09:14:02Z ",
        " 2025-06-10T09:14:02Z",
        "2025-6-10T09:14:02Z",
        "+2025-06-10T09:14:02Z",
        "2025-00-10T09:14:02Z",
        "2025-13-10T09:14:02Z",
        "2025-06-00T09:14:02Z",
        "2025-06-31T09:14:02Z",
        "2025-02-29T09:14:02Z",
        "1900-02-29T09:14:02Z",
        "2024-02-30T09:14:02Z",
        "2025-06-10T24:00:00Z",
        "2025-06-10T23:60:00Z",
        "2025-06-10T23:59:60Z",
        "2025-06-10T09:14:02+24:00",
        "2025-06-10T09:14:02+02:60",
        "2025-06-10T09:14:02+0200",
        "2025-06-10T09:14:02+02",
        "2025-06-10T09:14:02+2:00",
        "2025-06-10T09:14:02.5 +02:00",
        "0000-01-01T00:30:00+01:00", /* would be year -1 */
        "9999-12-31T23:59:59-00:01", /* would be year 10000 */
        "2025-06-10T09:14:02\xef\xbc\xba",
        "１９７０-01-01T00:00:00Z",
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[28];
        long long ms = 0;

        CHECK_REPORT(jw_replicate_normalise_time(cases[i], strlen(cases[i]), out, &ms) == -1,
                     "\"%s\" was accepted", cases[i]);
    }
}

/* The length bounds the text: a NUL inside or bytes past len never count. */
static void test_timestamp_length_is_respected(void)
{
    static const char with_nul[] = "2025-06-10T09:14:02\0Z";
    const char *longer = "2025-06-10T09:14:02Z and more";
    char out[28];

    CHECK_INT(jw_replicate_normalise_time(with_nul, sizeof(with_nul) - 1, out, NULL), -1);
    CHECK_INT(jw_replicate_normalise_time(longer, 20, out, NULL), 0);
    CHECK_STR(out, "2025-06-10T09:14:02.000000Z");
    CHECK_INT(jw_replicate_normalise_time(longer, 19, out, NULL), -1);
}

/* Parses a body made of the common head plus extra members. */
static int parse_with(const char *extra, jw_event_t *ev, char *err, size_t errlen)
{
    char body[4096];
    int n = snprintf(body, sizeof(body), "{\"id\":\"abc123\",\"status\":\"processing\"%s}", extra);

    if (n < 0 || (size_t)n >= sizeof(body))
        return -2;
    return jw_replicate_parse_object(body, (size_t)n, ev, err, errlen);
}

static void test_timestamp_fields_in_a_body(void)
{
    static const struct {
        const char *extra;
        const char *err; /* NULL: accepted */
    } cases[] = {
        {",\"created_at\":\"2025-13-01T00:00:00Z\"", "created_at: not an ISO 8601 timestamp"},
        {",\"started_at\":\"2025-06-10T09:14:02\"", "started_at: not an ISO 8601 timestamp"},
        {",\"completed_at\":\"\"", "completed_at: not an ISO 8601 timestamp"},
        {",\"started_at\":1749546842", "started_at: not a string"},
        {",\"created_at\":{}", "created_at: not a string"},
        {",\"created_at\":null,\"started_at\":null,\"completed_at\":null", NULL},
        {"", NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        jw_event_t ev = {0};
        char err[256] = "";
        int rc = parse_with(cases[i].extra, &ev, err, sizeof(err));

        CHECK_INT(rc, cases[i].err ? -1 : 0);
        CHECK_STR(err, cases[i].err ? cases[i].err : "");
        CHECK_STR(ev.created_at, NULL);
        CHECK_STR(ev.started_at, NULL);
        CHECK_STR(ev.completed_at, NULL);
        CHECK_INT(ev.created_ms, -1);
        jw_event_clear(&ev);
    }
}

static void test_predict_time_number_forms(void)
{
    static const struct {
        const char *metrics;
        double expected;
    } cases[] = {
        {"{\"predict_time\":3e-06,\"total_time\":2e-06}", 3e-06},
        {"{\"predict_time\":3E-6}", 3e-06},
        {"{\"predict_time\":1.5e+2}", 150},
        {"{\"predict_time\":2.5E2}", 250},
        {"{\"predict_time\":12}", 12},
        {"{\"predict_time\":0}", 0},
        {"{\"predict_time\":-0}", 0},
        {"{\"predict_time\":0.778844229}", 0.778844229},
        {"{\"predict_time\":1e-400}", 0},
        {"{\"predict_time\":1e999}", -1},
        {"{\"predict_time\":-1.5}", -1},
        {"{\"predict_time\":\"3.2\"}", -1},
        {"{\"predict_time\":null}", -1},
        {"{\"total_time\":4.8}", -1},
        {"{}", -1},
        {"null", -1},
        {"[1]", -1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        jw_event_t ev = {0};
        char extra[256], err[256];

        snprintf(extra, sizeof(extra), ",\"metrics\":%s", cases[i].metrics);
        CHECK_INT(parse_with(extra, &ev, err, sizeof(err)), 0);
        CHECK_DOUBLE(ev.predict_time, cases[i].expected);
        jw_event_clear(&ev);
    }
}

static void test_kind_destination_then_urls(void)
{
    static const struct {
        const char *extra;
        const char *kind;
    } cases[] = {
        /* A training's create response points urls.get at a prediction. */
        {",\"destination\":\"example-org/lora\",\"urls\":{\"get\":"
         "\"https://api.replicate.com/v1/predictions/abc123\"}",
         "training"},
        {",\"destination\":\"example-org/lora\"", "training"},
        {",\"urls\":{\"get\":\"https://api.replicate.com/v1/trainings/abc123\"}", "training"},
        {",\"urls\":{\"get\":\"https://api.replicate.com/v1/predictions/abc123\"}", "prediction"},
        {",\"urls\":{\"get\":42}", "prediction"},
        {",\"urls\":\"/trainings/\"", "prediction"},
        {"", "prediction"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        jw_event_t ev = {0};
        char err[256];

        CHECK_INT(parse_with(cases[i].extra, &ev, err, sizeof(err)), 0);
        CHECK_STR(ev.kind, cases[i].kind);
        jw_event_clear(&ev);
    }
}

static void test_error_output_string_forms(void)
{
    static const struct {
        const char *extra;
        const char *error, *output, *version, *hardware;
    } cases[] = {
        {",\"error\":{\"code\":\"E1\",\"detail\":\"boom\"}",
         "{\"code\":\"E1\",\"detail\":\"boom\"}", NULL, NULL, NULL},
        {",\"error\":42,\"output\":3e-06", "42", "3e-06", NULL, NULL},
        {",\"error\":false,\"output\":\"hello\"", "false", "\"hello\"", NULL, NULL},
        {",\"error\":\"\",\"output\":[]", "", "[]", NULL, NULL},
        {",\"output\":{\"a\":[1,2.50,true,false,null,\"x/y\"]}", NULL,
         "{\"a\":[1,2.50,true,false,null,\"x/y\"]}", NULL, NULL},
        {",\"output\":\"caf\\u00e9\\n\\\"q\\\"\"", NULL, "\"caf\xc3\xa9\\n\\\"q\\\"\"", NULL, NULL},
        {",\"version\":\"hidden\",\"hardware\":\"gpu-a40-large\"", NULL, NULL, "hidden",
         "gpu-a40-large"},
        {",\"version\":null,\"hardware\":5,\"model\":[\"x\"]", NULL, NULL, NULL, NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        jw_event_t ev = {0};
        char err[256];

        CHECK_INT(parse_with(cases[i].extra, &ev, err, sizeof(err)), 0);
        CHECK_STR(ev.error_message, cases[i].error);
        CHECK_STR(ev.output_json, cases[i].output);
        CHECK_STR(ev.version, cases[i].version);
        CHECK_STR(ev.hardware, cases[i].hardware);
        CHECK_STR(ev.model, NULL);
        jw_event_clear(&ev);
    }
}

static void check_rejected(const char *body, size_t len, const char *err_prefix)
{
    jw_event_t ev = {0};
    char err[256] = "";

    CHECK_INT(jw_replicate_parse_object(body, len, &ev, err, sizeof(err)), -1);
    CHECK_PREFIX(err, err_prefix);
    CHECK_STR(ev.job_id, NULL);
    CHECK_STR(ev.provider_status, NULL);
    CHECK_INT(ev.status, JW_STATUS_UNKNOWN);
    CHECK_INT(ev.created_ms, -1);
    jw_event_clear(&ev);
}

static void test_bad_bodies_rejected_by_field(void)
{
    static const struct {
        const char *body;
        const char *err;
    } cases[] = {
        {"", "body: invalid JSON"},
        {"  \n", "body: invalid JSON"},
        {"[]", "body: not a JSON object"},
        {"[{\"id\":\"abc\",\"status\":\"starting\"}]", "body: not a JSON object"},
        {"\"abc\"", "body: not a JSON object"},
        {"42", "body: not a JSON object"},
        {"null", "body: not a JSON object"},
        {"{}", "id: missing"},
        {"{\"status\":\"starting\"}", "id: missing"},
        {"{\"id\":5,\"status\":\"starting\"}", "id: not a string"},
        {"{\"id\":null,\"status\":\"starting\"}", "id: not a string"},
        {"{\"id\":\"\",\"status\":\"starting\"}", "id: empty"},
        {"{\"id\":\"a/b\",\"status\":\"starting\"}", "id: characters other than"},
        {"{\"id\":\"abc def\",\"status\":\"starting\"}", "id: characters other than"},
        {"{\"id\":\"abc\\u00e9\",\"status\":\"starting\"}", "id: characters other than"},
        {"{\"id\":\"abc\\n\",\"status\":\"starting\"}", "id: characters other than"},
        {"{\"id\":\"abc\"}", "status: missing"},
        {"{\"id\":\"abc\",\"status\":1}", "status: not a string"},
        {"{\"id\":\"abc\",\"status\":null}", "status: not a string"},
        {"{\"id\":\"abc\",\"status\":\"foo\"}", "status: unknown value \"foo\""},
        {"{\"id\":\"abc\",\"status\":\"Succeeded\"}", "status: unknown value \"Succeeded\""},
        {"{\"id\":\"abc\",\"status\":\"cancelled\"}", "status: unknown value \"cancelled\""},
        {"{\"id\":\"abc\",\"status\":\"a\\\"b\\nc\"}", "status: unknown value \"a?b?c\""},
        {"{\"id\":\"abc\",\"status\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
         "status: unknown value \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\""},
        {"{\"id\":\"abc\",\"status\":\"starting\"", "body: invalid JSON"},
        {"{\"id\":\"abc\",\"status\":\"starting\"}}", "body: invalid JSON"},
        {"{\"id\":\"abc\",\"status\":\"starting\"} x", "body: invalid JSON"},
        {"{\"id\":\"abc\",\"status\":\"starting\"}{}", "body: invalid JSON"},
        {"{\"id\":\"abc\",\"status\":\"starting\",}", "body: invalid JSON"},
        {"{'id':'abc','status':'starting'}", "body: invalid JSON"},
        {"{\"id\":\"abc\",\"status\":\"starting\",\"logs\":\"\xff\xfe\"}",
         "body: invalid UTF-8 at byte 40"},
        {"{\"id\":\"abc\",\"status\":\"starting\",\"logs\":\"\xc3\"}", "body: invalid UTF-8"},
        {"{\"id\":\"abc\",\"status\":\"starting\",\"logs\":\"\xc3\xa9\xc3\"}",
         "body: invalid UTF-8"},
        {"{\"id\":\"abc\",\"status\":\"starting\",\"logs\":\"\xc0\x80\"}", "body: invalid UTF-8"},
        {"{\"id\":\"abc\",\"status\":\"starting\",\"logs\":\"\xe0\x80\x80\"}",
         "body: invalid UTF-8"},
        {"{\"id\":\"abc\",\"status\":\"starting\",\"logs\":\"\xed\xa0\x80\"}",
         "body: invalid UTF-8"},
        {"{\"id\":\"abc\",\"status\":\"starting\",\"logs\":\"\xf4\x90\x80\x80\"}",
         "body: invalid UTF-8"},
        {"{\"id\":\"abc\",\"status\":\"starting\",\"\x80\":1}", "body: invalid UTF-8"},
        {"{\"id\":\"abc\",\"status\":\"starting\"}\xc3\xa9", "body: invalid JSON"},
        {"{\"id\":\"abc\",\"status\":\"starting\",\"logs\":\"a\001b\"}", "body: invalid JSON"},
        {"{\"id\":\"abc\",\"status\":\"starting\"}/*x*/", "body: comments are not JSON"},
        {"{\"id\":\"abc\",//\n\"status\":\"starting\"}", "body: comments are not JSON"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_rejected(cases[i].body, strlen(cases[i].body), cases[i].err);
}

static void test_ids_at_the_limits(void)
{
    char body[512], id[200];
    jw_event_t ev = {0};
    char err[256];
    int n;

    memset(id, 'a', 128);
    id[128] = '\0';
    n = snprintf(body, sizeof(body), "{\"id\":\"%s\",\"status\":\"starting\"}", id);
    CHECK_INT(jw_replicate_parse_object(body, (size_t)n, &ev, err, sizeof(err)), 0);
    CHECK_INT(ev.job_id ? strlen(ev.job_id) : 0, 128);
    jw_event_clear(&ev);

    n = snprintf(body, sizeof(body), "{\"id\":\"%sa\",\"status\":\"starting\"}", id);
    check_rejected(body, (size_t)n, "id: longer than 128 bytes");

    n = snprintf(body, sizeof(body), "{\"id\":\"Az09_-\",\"status\":\"canceled\"}");
    CHECK_INT(jw_replicate_parse_object(body, (size_t)n, &ev, err, sizeof(err)), 0);
    CHECK_STR(ev.job_id, "Az09_-");
    CHECK_INT(ev.status, JW_STATUS_CANCELLED);
    jw_event_clear(&ev);
}

/* A NUL byte would hide everything after it from yajl's C-string parser. */
static void test_nul_bytes_and_length_bound(void)
{
    static const char with_nul[] = "{\"id\":\"abc\",\"status\":\"starting\"}\0garbage";
    static const char trailing[] = "{\"id\":\"abc\",\"status\":\"starting\"}\n";
    jw_event_t ev = {0};
    char err[256];

    check_rejected(with_nul, sizeof(with_nul) - 1, "body: contains a NUL byte");

    /* Only len bytes count: cutting the closing brace leaves truncated JSON. */
    check_rejected(trailing, sizeof(trailing) - 3, "body: invalid JSON");
    CHECK_INT(jw_replicate_parse_object(trailing, sizeof(trailing) - 1, &ev, err, sizeof(err)), 0);
    jw_event_clear(&ev);
}

static char *repeat(const char *unit, size_t times, const char *tail)
{
    size_t u = strlen(unit), t = strlen(tail);
    char *s = malloc(u * times + t + 1);

    for (size_t i = 0; s != NULL && i < times; i++)
        memcpy(s + i * u, unit, u);
    if (s != NULL) {
        memcpy(s + u * times, tail, t);
        s[u * times + t] = '\0';
    }
    return s;
}

/* Wraps opens and closes as the "input" member of a job body; the caller frees it. */
static char *body_with_input(const char *open, const char *close, size_t depth)
{
    char *opens = repeat(open, depth, "");
    char *closes = repeat(close, depth, "");
    size_t cap = depth * (strlen(open) + strlen(close)) + 64;
    char *body = malloc(cap);

    if (opens != NULL && closes != NULL && body != NULL)
        snprintf(body, cap, "{\"id\":\"abc\",\"status\":\"starting\",\"input\":%s1%s}", opens,
                 closes);
    free(opens);
    free(closes);
    return body;
}

static void test_deep_nesting_rejected(void)
{
    const size_t deep = 100000;
    char *arrays = repeat("[", deep, "");
    char *objects = repeat("{\"a\":", deep, "1");
    char *at_limit = body_with_input("[", "]", 63);
    char *over_limit = body_with_input("{\"a\":", "}", 64);
    jw_event_t ev = {0};
    char err[256];

    CHECK(arrays != NULL);
    CHECK(objects != NULL);
    CHECK(at_limit != NULL);
    CHECK(over_limit != NULL);
    check_rejected(arrays, deep, "body: nested deeper than 64 levels");
    check_rejected(objects, strlen(objects), "body: nested deeper than 64 levels");

    /* The job object is level 1, so 63 more levels reach exactly the limit. */
    CHECK_INT(jw_replicate_parse_object(at_limit, strlen(at_limit), &ev, err, sizeof(err)), 0);
    jw_event_clear(&ev);
    check_rejected(over_limit, strlen(over_limit), "body: nested deeper than 64 levels");

    free(arrays);
    free(objects);
    free(at_limit);
    free(over_limit);
}

/* Brackets and escaped quotes inside a string are text, not nesting. */
static void test_brackets_in_strings_not_nesting(void)
{
    const size_t deep = 100000;
    char *text = repeat("\\\"[{", deep, "");
    size_t cap = 4 * deep + 64;
    char *body = malloc(cap);
    jw_event_t ev = {0};
    char err[256];

    CHECK(text != NULL);
    CHECK(body != NULL);
    if (text != NULL && body != NULL) {
        snprintf(body, cap, "{\"id\":\"abc\",\"status\":\"starting\",\"logs\":\"%s\"}", text);
        CHECK_INT(jw_replicate_parse_object(body, strlen(body), &ev, err, sizeof(err)), 0);
        CHECK_INT(ev.logs_len, 3 * deep);
        jw_event_clear(&ev);
    }
    free(text);
    free(body);
}

/* Wraps raw log text (no quotes or control bytes but \n) in a job body. */
static char *body_with_logs(const char *logs, size_t *len)
{
    static const char head[] = "{\"id\":\"abc123\",\"status\":\"processing\",\"logs\":\"";
    size_t n = strlen(logs), cap = sizeof(head) + 2 * n + 8, pos = sizeof(head) - 1;
    char *b = malloc(cap);

    if (b == NULL)
        return NULL;
    memcpy(b, head, pos);
    for (size_t i = 0; i < n; i++) {
        if (logs[i] == '\n') {
            b[pos++] = '\\';
            b[pos++] = 'n';
        } else {
            b[pos++] = logs[i];
        }
    }
    memcpy(b + pos, "\"}\n", 3);
    *len = pos + 3;
    return b;
}

static void parse_logs(const char *logs, jw_event_t *ev)
{
    size_t len = 0;
    char err[256];
    char *body = body_with_logs(logs, &len);

    CHECK(body != NULL);
    if (body == NULL)
        return;
    CHECK_REPORT(jw_replicate_parse_object(body, len, ev, err, sizeof(err)) == 0, "%s", err);
    free(body);
}

static int utf8_starts_cleanly(const char *s)
{
    return ((unsigned char)s[0] & 0xC0) != 0x80;
}

/* Without a newline in the window, the cut skips to the next character start. */
static void test_log_tail_utf8_boundary(void)
{
    static const struct {
        const char *unit;
        size_t times;
        const char *tail;
        size_t tail_len;
    } cases[] = {
        {"\xe2\x82\xac", 6000, "", 16383},        /* cut on a 2nd continuation byte */
        {"\xf0\x9f\x98\x80", 5000, "a", 16381},   /* cut on a 1st continuation byte */
        {"\xf0\x9f\x98\x80", 5000, "ab", 16382},  /* cut on a 2nd continuation byte */
        {"\xf0\x9f\x98\x80", 5000, "abc", 16383}, /* cut on a 3rd continuation byte */
        {"\xc3\xa9", 9000, "", 16384},            /* cut on a lead byte */
        {"\xe2\x82\xac", 6000, "\n", 16384},      /* the only newline ends the text */
        {"a", 16384, "", 16384},                  /* exactly the limit */
        {"\n", 1, "", 1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *logs = repeat(cases[i].unit, cases[i].times, cases[i].tail);
        jw_event_t ev = {0};
        size_t n = logs ? strlen(logs) : 0;

        parse_logs(logs, &ev);
        CHECK_INT(ev.logs_len, n);
        CHECK(ev.logs_tail != NULL);
        if (ev.logs_tail != NULL) {
            CHECK_INT(strlen(ev.logs_tail), cases[i].tail_len);
            CHECK(utf8_starts_cleanly(ev.logs_tail));
            CHECK(memcmp(ev.logs_tail, logs + n - cases[i].tail_len, cases[i].tail_len) == 0);
        }
        jw_event_clear(&ev);
        free(logs);
    }
}

/* With newlines, the tail starts right after the first one in the kept window. */
static void test_log_tail_after_newline(void)
{
    const char *line =
        "step 1500/5000 \xe2\x96\x88\xe2\x96\x88 loss \xc3\xa9 0.0234 \xf0\x9f\x98\x80\n";
    char *logs = repeat(line, 2000, "last line without newline");
    jw_event_t ev = {0};
    size_t n = logs ? strlen(logs) : 0, t;
    const char *first_nl;

    parse_logs(logs, &ev);
    CHECK_INT(ev.logs_len, n);
    CHECK(ev.logs_tail != NULL);
    if (ev.logs_tail != NULL && logs != NULL) {
        t = strlen(ev.logs_tail);
        first_nl = memchr(logs + n - JW_LOG_TAIL_MAX, '\n', JW_LOG_TAIL_MAX);
        CHECK(t <= JW_LOG_TAIL_MAX);
        CHECK(first_nl == logs + n - t - 1);
        CHECK_PREFIX(ev.logs_tail, "step 1500/5000");
        CHECK(ends_with(ev.logs_tail, "last line without newline"));
    }
    jw_event_clear(&ev);
    free(logs);
}

/* Webhook bodies carry the whole log and grow to several MiB. */
static void test_large_body_keeps_tail(void)
{
    const char *line = "epoch 3/10 | step 1500/5000 | loss 0.0234 | \xe2\x96\x88\xe2\x96\x88\n";
    const size_t times = (4u << 20) / 50;
    char *logs = repeat(line, times, "");
    jw_event_t ev = {0};
    size_t n = logs ? strlen(logs) : 0;

    parse_logs(logs, &ev);
    CHECK(n > (4u << 20));
    CHECK_INT(ev.logs_len, n);
    CHECK(ev.logs_tail != NULL);
    if (ev.logs_tail != NULL) {
        CHECK(strlen(ev.logs_tail) <= JW_LOG_TAIL_MAX);
        CHECK_PREFIX(ev.logs_tail, "epoch 3/10");
    }
    jw_event_clear(&ev);
    free(logs);
}

static void test_logs_forms(void)
{
    jw_event_t ev = {0};
    char err[256];

    CHECK_INT(parse_with(",\"logs\":\"caf\\u00e9\\n\"", &ev, err, sizeof(err)), 0);
    CHECK_STR(ev.logs_tail, "caf\xc3\xa9\n");
    CHECK_INT(ev.logs_len, 6);
    jw_event_clear(&ev);

    CHECK_INT(parse_with(",\"logs\":\"\"", &ev, err, sizeof(err)), 0);
    CHECK_STR(ev.logs_tail, "");
    CHECK_INT(ev.logs_len, 0);
    jw_event_clear(&ev);

    CHECK_INT(parse_with(",\"logs\":[\"x\"]", &ev, err, sizeof(err)), 0);
    CHECK_STR(ev.logs_tail, NULL);
    CHECK_INT(ev.logs_len, 0);
    jw_event_clear(&ev);
}

/* Later duplicates win, as in most JSON readers. */
static void test_duplicate_keys_take_the_last(void)
{
    jw_event_t ev = {0};
    char err[256];

    CHECK_INT(parse_with(",\"status\":\"succeeded\",\"id\":\"second\"", &ev, err, sizeof(err)), 0);
    CHECK_STR(ev.job_id, "second");
    CHECK_STR(ev.provider_status, "succeeded");
    CHECK_INT(ev.status, JW_STATUS_COMPLETED);
    jw_event_clear(&ev);
}

/* err may be absent or tiny; a failure must still be reported by the return value. */
static void test_small_or_missing_err_buffer(void)
{
    jw_event_t ev = {0};
    char tiny[4];

    CHECK_INT(jw_replicate_parse_object("[]", 2, &ev, NULL, 0), -1);
    CHECK_INT(jw_replicate_parse_object("{}", 2, &ev, tiny, sizeof(tiny)), -1);
    CHECK_STR(tiny, "id:");
}

int main(void)
{
    test_fixture_objects_field_by_field();
    test_every_fixture_has_expectations();
    test_list_items_field_by_field();
    test_api_error_fixtures_rejected();
    test_timestamps_normalise_to_utc();
    test_malformed_timestamps_rejected();
    test_timestamp_length_is_respected();
    test_timestamp_fields_in_a_body();
    test_predict_time_number_forms();
    test_kind_destination_then_urls();
    test_error_output_string_forms();
    test_bad_bodies_rejected_by_field();
    test_ids_at_the_limits();
    test_nul_bytes_and_length_bound();
    test_deep_nesting_rejected();
    test_brackets_in_strings_not_nesting();
    test_log_tail_utf8_boundary();
    test_log_tail_after_newline();
    test_large_body_keeps_tail();
    test_logs_forms();
    test_duplicate_keys_take_the_last();
    test_small_or_missing_err_buffer();
    CHECK_SUMMARY();
}
