/*
 * Unit tests for the pure parts of the Replicate client: the backoff
 * schedule, Retry-After headers and retry_after bodies, error details,
 * URL joining, the same-origin rule for list cursors, and list pages
 * (the fixtures, then tables of odd pages).
 */
#include "jobwire/replicate_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define FIXTURE_DIR JW_FIXTURES "/replicate"
#define BASE "https://api.replicate.com/v1"

/* Reads a whole fixture; the caller frees the result, or exits on failure. */
static char *load_fixture(const char *name, size_t *len)
{
    char path[512];
    FILE *f;
    long size;
    char *buf;

    snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, name);
    f = fopen(path, "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0) {
        perror(path);
        exit(2);
    }
    size = ftell(f);
    if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
        perror(path);
        exit(2);
    }
    buf = malloc((size_t)size + 1);
    if (buf == NULL || fread(buf, 1, (size_t)size, f) != (size_t)size) {
        perror(path);
        exit(2);
    }
    fclose(f);
    buf[size] = '\0';
    *len = (size_t)size;
    return buf;
}

/* --- backoff ----------------------------------------------------------- */

static void test_backoff_bounds(void)
{
    static const struct {
        int attempt;
        long lo, hi;
    } cases[] = {
        {1, 250, 500},   {2, 500, 1000},  {3, 1000, 2000}, {4, 2000, 4000},
        {5, 4000, 8000}, {6, 4000, 8000}, {30, 4000, 8000},
    };
    static const uint32_t randoms[] = {0, 1, 249, 250, 251, 12345, 0x7fffffffu, 0xffffffffu};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t r = 0; r < sizeof(randoms) / sizeof(randoms[0]); r++) {
            long ms = jw_replicate_backoff_ms(cases[i].attempt, 500, 8000, randoms[r]);
            CHECK_REPORT(ms >= cases[i].lo && ms <= cases[i].hi,
                         "attempt %d random %u: %ld ms outside %ld-%ld", cases[i].attempt,
                         randoms[r], ms, cases[i].lo, cases[i].hi);
        }
    }
}

static void test_backoff_jitter_spreads(void)
{
    long seen_low = 0, seen_high = 0;

    /* The random part covers the whole upper half of the window. */
    for (uint32_t r = 0; r < 2000; r++) {
        long ms = jw_replicate_backoff_ms(3, 500, 8000, r * 2654435761u);
        seen_low |= ms < 1200;
        seen_high |= ms > 1800;
    }
    CHECK(seen_low);
    CHECK(seen_high);
    CHECK_INT(jw_replicate_backoff_ms(1, 500, 8000, 0), 250);
    CHECK_INT(jw_replicate_backoff_ms(1, 500, 8000, 250), 500);
}

static void test_backoff_odd_arguments(void)
{
    /* A cap below the base, zero or negative bases: still small and positive. */
    CHECK(jw_replicate_backoff_ms(1, 500, 100, 7) <= 500);
    CHECK(jw_replicate_backoff_ms(1, 0, 8000, 7) >= 0);
    CHECK(jw_replicate_backoff_ms(1, -5, 8000, 7) >= 0);
    CHECK(jw_replicate_backoff_ms(0, 500, 8000, 7) <= 500);
    CHECK(jw_replicate_backoff_ms(1000000, 500, 8000, 7) <= 8000);
}

/* --- Retry-After ---------------------------------------------------------- */

static void test_retry_after_header(void)
{
    /* Wed, 21 Oct 2015 07:28:00 GMT */
    const int64_t now = 1445412480;
    static const struct {
        const char *value;
        int rc;
        long ms;
    } cases[] = {
        {"2", 0, 2000},
        {" 5\r\n", 0, 5000},
        {"0", 0, 0},
        {"120", 0, 120000},
        {"86400", 0, 86400000},
        {"9999999999", 0, 86400000},
        {"Wed, 21 Oct 2015 07:28:03 GMT", 0, 3000},
        {"Wed, 21 Oct 2015 07:27:00 GMT", 0, 0},
        {"Thu, 22 Oct 2015 07:28:00 GMT", 0, 86400000},
        {"", -1, 0},
        {"   ", -1, 0},
        {"-1", -1, 0},
        {"1.5", -1, 0},
        {"soon", -1, 0},
        {"now", -1, 0},
        {"2 seconds", -1, 0},
        {"Wed, 21 Oct 2015 07:28:03", -1, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long ms = -7;
        int rc = jw_replicate_parse_retry_after(cases[i].value, strlen(cases[i].value), now, &ms);

        CHECK_REPORT(rc == cases[i].rc, "\"%s\": rc %d, expected %d", cases[i].value, rc,
                     cases[i].rc);
        if (rc == 0)
            CHECK_REPORT(ms == cases[i].ms, "\"%s\": %ld ms, expected %ld", cases[i].value, ms,
                         cases[i].ms);
        else
            CHECK_REPORT(ms == -7, "\"%s\": delay written on failure", cases[i].value);
    }
}

static void test_retry_after_body(void)
{
    static const struct {
        const char *body;
        int rc;
        long ms;
    } cases[] = {
        {"{\"detail\": \"throttled\", \"retry_after\": 5}", 0, 5000},
        {"{\"retry_after\": 1.5}", 0, 1500},
        {"{\"retry_after\": 0}", 0, 0},
        {"{\"retry_after\": 3e2}", 0, 300000},
        {"{\"retry_after\": 1e9}", 0, 86400000},
        {"{\"retry_after\": -1}", -1, 0},
        {"{\"retry_after\": \"5\"}", -1, 0},
        {"{\"retry_after\": null}", -1, 0},
        {"{\"detail\": \"Request was throttled. Expected available in 1 second.\"}", -1, 0},
        {"[5]", -1, 0},
        {"not json", -1, 0},
        {"", -1, 0},
    };
    size_t len;
    char *fixture = load_fixture("api.error.429-low-credit-observed.json", &len);
    long ms = 0;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long got = -7;
        int rc = jw_replicate_body_retry_after(cases[i].body, strlen(cases[i].body), &got);

        CHECK_REPORT(rc == cases[i].rc, "%s: rc %d, expected %d", cases[i].body, rc,
                     cases[i].rc);
        if (rc == 0)
            CHECK_REPORT(got == cases[i].ms, "%s: %ld ms, expected %ld", cases[i].body, got,
                         cases[i].ms);
    }
    CHECK_INT(jw_replicate_body_retry_after(fixture, len, &ms), 0);
    CHECK_INT(ms, 5000);
    free(fixture);
}

/* --- error details ------------------------------------------------------- */

static void test_error_detail(void)
{
    static const struct {
        const char *body;
        const char *detail;
    } cases[] = {
        {"{\"title\": \"Unauthenticated\", \"detail\": \"bad token\", \"status\": 401}",
         "bad token"},
        {"{\"title\": \"Not found\"}", "Not found"},
        {"{\"detail\": \"\", \"title\": \"Gone\"}", "Gone"},
        {"{\"error\": \"upstream broke\"}", "upstream broke"},
        {"{\"detail\": \"line one\\nline two\\ttab\"}", "line one line two tab"},
        {"{\"detail\": 5}", ""},
        {"<html>502 Bad Gateway</html>", ""},
        {"", ""},
    };
    char out[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        jw_replicate_error_detail(cases[i].body, strlen(cases[i].body), out, sizeof(out));
        CHECK_STR(out, cases[i].detail);
    }

    jw_replicate_error_detail(NULL, 0, out, sizeof(out));
    CHECK_STR(out, "");

    /* Long and non-ASCII details are cut and made printable. */
    const char *long_body = "{\"detail\": \"caf\\u00e9 0123456789012345678901234567890123456789\"}";
    char small[16];
    jw_replicate_error_detail(long_body, strlen(long_body), small, sizeof(small));
    CHECK_STR(small, "caf   012345...");
    CHECK_INT(strlen(small), 15);
}

static void test_error_detail_fixtures(void)
{
    static const struct {
        const char *file;
        const char *detail;
    } cases[] = {
        {"api.error.401.json", "You did not pass a valid authentication token"},
        {"api.error.402.json", "You have insufficient credit to run this model."},
        {"api.error.404-training-destination.json",
         "The specified training destination does not exist"},
        {"api.error.429-documented.json", "Request was throttled. Expected available in 1 second."},
    };
    char out[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len;
        char *body = load_fixture(cases[i].file, &len);

        jw_replicate_error_detail(body, len, out, sizeof(out));
        CHECK_STR(out, cases[i].detail);
        free(body);
    }
}

/* --- URLs ----------------------------------------------------------------- */

static void test_build_url(void)
{
    static const struct {
        const char *base, *path;
        int rc;
        const char *url;
    } cases[] = {
        {BASE, "/trainings", 0, BASE "/trainings"},
        {BASE "/", "/account", 0, BASE "/account"},
        {"http://127.0.0.1:8123/v1", "/predictions/abc/cancel", 0,
         "http://127.0.0.1:8123/v1/predictions/abc/cancel"},
        {BASE, "/trainings?cursor=abc", 0, BASE "/trainings?cursor=abc"},
        {BASE, "trainings", -1, NULL},
        {BASE, "", -1, NULL},
        {BASE, "/a b", -1, NULL},
        {BASE, "/a\r\nHost: evil", -1, NULL},
        {BASE, "/caf\xc3\xa9", -1, NULL},
    };
    char url[128];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = jw_replicate_build_url(cases[i].base, cases[i].path, url, sizeof(url));

        CHECK_REPORT(rc == cases[i].rc, "%s + %s: rc %d", cases[i].base, cases[i].path, rc);
        if (rc == 0)
            CHECK_STR(url, cases[i].url);
    }

    char tiny[16];
    CHECK_INT(jw_replicate_build_url(BASE, "/trainings", tiny, sizeof(tiny)), -1);
}

static void test_resolve_next(void)
{
    static const struct {
        const char *base, *next, *url;
    } cases[] = {
        {BASE, BASE "/trainings?cursor=cD0y", BASE "/trainings?cursor=cD0y"},
        {BASE, "https://API.Replicate.com/v1/trainings?cursor=x",
         "https://API.Replicate.com/v1/trainings?cursor=x"},
        {BASE, "https://api.replicate.com:443/v1/trainings?cursor=x",
         "https://api.replicate.com:443/v1/trainings?cursor=x"},
        {BASE, "/v1/predictions?cursor=abc", BASE "/predictions?cursor=abc"},
        {"http://127.0.0.1:8123/v1", "http://127.0.0.1:8123/v1/trainings?cursor=a",
         "http://127.0.0.1:8123/v1/trainings?cursor=a"},
        /* Another scheme, host or port, or user info: never followed. */
        {BASE, "http://api.replicate.com/v1/trainings?cursor=x", NULL},
        {BASE, "https://api.replicate.com.evil.example/v1/trainings", NULL},
        {BASE, "https://evil.example/v1/trainings", NULL},
        {BASE, "https://api.replicate.com:8443/v1/trainings", NULL},
        {BASE, "https://user:pw@api.replicate.com/v1/trainings", NULL},
        {BASE, "//evil.example/v1/trainings", NULL},
        {BASE, "file:///etc/passwd", NULL},
        {BASE, "https://api.replicate.com/v1/trainings?cursor=a b", NULL},
        {BASE, "https://api.replicate.com/v1/\ntrainings", NULL},
        {"http://127.0.0.1:8123/v1", "http://127.0.0.2:8123/v1/trainings", NULL},
        {"http://127.0.0.1:8123/v1", "http://localhost:8123/v1/trainings", NULL},
        {"http://127.0.0.1:8123/v1", "http://127.0.0.1:8124/v1/trainings", NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *url = jw_replicate_resolve_next(cases[i].base, cases[i].next);

        CHECK_REPORT((url == NULL) == (cases[i].url == NULL), "%s from %s: got %s",
                     cases[i].next, cases[i].base, url ? url : "(null)");
        if (url != NULL && cases[i].url != NULL)
            CHECK_STR(url, cases[i].url);
        free(url);
    }
}

/* --- list pages -------------------------------------------------------------- */

static void test_page_fixtures(void)
{
    static const struct {
        const char *file, *kind;
        size_t count;
        const char *first_id;
        jw_status_t first_status;
        const char *next;
    } cases[] = {
        {"list.trainings.page2.json", "training", 3, "h2k9v7c1xdrm80cq1n4w8tg3za",
         JW_STATUS_RUNNING, BASE "/trainings?cursor=cD0yMDI1LTA2LTAzKzE4JTNBNDAlM0ExMi4wMDQx"
                            "MTglMkIwMCUzQTAw"},
        {"list.predictions.page2.json", "prediction", 3, "m4x8k2v6q9rm80cqz7p1t3bn5c",
         JW_STATUS_QUEUED, BASE "/predictions?cursor=cD0yMDI1LTA2LTEwKzA4JTNBMTElM0E0NS45MDU1"
                              "MzMlMkIwMCUzQTAw"},
        {"list.predictions.last-page.json", "prediction", 0, NULL, JW_STATUS_UNKNOWN, NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        jw_replicate_page_t page;
        char err[128] = "";
        size_t len;
        char *body = load_fixture(cases[i].file, &len);

        CHECK_INT(jw_replicate_parse_page(body, len, cases[i].kind, &page, err, sizeof(err)), 0);
        CHECK_INT(page.count, cases[i].count);
        CHECK_INT(page.skipped, 0);
        CHECK_STR(page.next, cases[i].next);
        for (size_t j = 0; j < page.count; j++)
            CHECK_STR(page.events[j].kind, cases[i].kind);
        if (page.count > 0) {
            CHECK_STR(page.events[0].job_id, cases[i].first_id);
            CHECK_INT(page.events[0].status, cases[i].first_status);
            CHECK_STR(page.events[0].provider, "replicate");
            CHECK(page.events[0].created_ms > 0);
            /* Newest first, as Replicate sends them. */
            CHECK(page.events[0].created_ms >= page.events[page.count - 1].created_ms);
        }
        jw_replicate_page_clear(&page);
        free(body);
    }
}

static void test_page_items(void)
{
    const char *body = "{\"next\": null, \"results\": ["
                       "{\"id\": \"a1\", \"status\": \"succeeded\", "
                       "\"created_at\": \"2025-06-10T09:14:02.118304Z\", "
                       "\"metrics\": {\"predict_time\": 3e-06}},"
                       "{\"id\": \"bad id!\", \"status\": \"succeeded\"},"
                       "{\"id\": \"b2\", \"status\": \"exploded\"},"
                       "42, null, [],"
                       "{\"id\": \"c3\", \"status\": \"canceled\", "
                       "\"urls\": {\"get\": \"https://x/v1/predictions/c3\"}}"
                       "]}";
    jw_replicate_page_t page;
    char err[128];

    CHECK_INT(jw_replicate_parse_page(body, strlen(body), "training", &page, err, sizeof(err)), 0);
    CHECK_INT(page.count, 2);
    CHECK_INT(page.skipped, 5);
    CHECK_STR(page.next, NULL);
    CHECK_STR(page.events[0].job_id, "a1");
    CHECK_INT(page.events[0].status, JW_STATUS_COMPLETED);
    CHECK_DOUBLE(page.events[0].predict_time, 3e-06);
    CHECK_INT(page.events[0].created_ms, 1749546842118LL);
    CHECK_STR(page.events[1].job_id, "c3");
    CHECK_INT(page.events[1].status, JW_STATUS_CANCELLED);
    /* The list's kind wins over what urls.get suggests. */
    CHECK_STR(page.events[1].kind, "training");
    jw_replicate_page_clear(&page);
    CHECK(page.events == NULL);
    CHECK_INT(page.count, 0);
    CHECK_STR(page.next, NULL);
}

static void test_page_errors(void)
{
    static const struct {
        const char *body;
        const char *err_part;
    } cases[] = {
        {"", "list: "},
        {"<html>", "list: invalid JSON"},
        {"[]", "list: not a JSON object"},
        {"{}", "results: missing"},
        {"{\"results\": {}}", "results: not an array"},
        {"{\"results\": null}", "results: not an array"},
        {"{\"results\": [], \"next\": 5}", "next: not a string"},
        {"{\"results\": [], \"next\": [\"x\"]}", "next: not a string"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        jw_replicate_page_t page;
        char err[128] = "";
        int rc = jw_replicate_parse_page(cases[i].body, strlen(cases[i].body), "prediction",
                                         &page, err, sizeof(err));

        CHECK_REPORT(rc == -1, "%s: accepted", cases[i].body);
        CHECK_REPORT(strstr(err, cases[i].err_part) != NULL, "%s: error \"%s\" lacks \"%s\"",
                     cases[i].body, err, cases[i].err_part);
        jw_replicate_page_clear(&page);
    }
}

static void test_page_next_forms(void)
{
    static const struct {
        const char *body;
        const char *next;
    } cases[] = {
        {"{\"results\": [], \"next\": \"\"}", NULL},
        {"{\"results\": []}", NULL},
        {"{\"results\": [], \"next\": null}", NULL},
        {"{\"results\": [], \"next\": \"/v1/trainings?cursor=q\"}", "/v1/trainings?cursor=q"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        jw_replicate_page_t page;
        char err[128];

        CHECK_INT(jw_replicate_parse_page(cases[i].body, strlen(cases[i].body), "training", &page,
                                          err, sizeof(err)),
                  0);
        CHECK_STR(page.next, cases[i].next);
        jw_replicate_page_clear(&page);
    }
}

static void test_page_item_limit(void)
{
    size_t n = JW_REPLICATE_PAGE_ITEMS_MAX + 5, cap = n * 64 + 64, len = 0;
    char *body = malloc(cap);
    jw_replicate_page_t page;
    char err[128];

    len += (size_t)snprintf(body + len, cap - len, "{\"results\": [");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(body + len, cap - len, "%s{\"id\": \"j%zu\", \"status\": "
                                "\"starting\"}", i ? "," : "", i);
    len += (size_t)snprintf(body + len, cap - len, "]}");

    CHECK_INT(jw_replicate_parse_page(body, len, "prediction", &page, err, sizeof(err)), 0);
    CHECK_INT(page.count, JW_REPLICATE_PAGE_ITEMS_MAX);
    CHECK_INT(page.skipped, 5);
    jw_replicate_page_clear(&page);
    free(body);
}

int main(void)
{
    test_backoff_bounds();
    test_backoff_jitter_spreads();
    test_backoff_odd_arguments();
    test_retry_after_header();
    test_retry_after_body();
    test_error_detail();
    test_error_detail_fixtures();
    test_build_url();
    test_resolve_next();
    test_page_fixtures();
    test_page_items();
    test_page_errors();
    test_page_next_forms();
    test_page_item_limit();
    CHECK_SUMMARY();
}
