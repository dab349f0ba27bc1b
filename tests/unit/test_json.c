/*
 * Unit tests for the JSON helpers: the guards of jw_json_parse(), path
 * lookups, number reading and compact serialisation.
 */
#include "jobwire/json.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

static yajl_val parse(const char *text)
{
    char err[128];

    return jw_json_parse(text, strlen(text), err, sizeof(err));
}

static void test_parse_rejects_unsafe_input(void)
{
    static const struct {
        const char *text;
        size_t len; /* 0: strlen */
        const char *err;
    } cases[] = {
        {"{\"a\":1}\0{\"b\":2}", 15, "contains a NUL byte"},
        {"[1] // note", 0, "comments are not JSON"},
        {"/* note */ [1]", 0, "comments are not JSON"},
        {"[\"\xc0\xaf\"]", 0, "invalid UTF-8 at byte 2"},
        {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]", 0,
         "nested deeper than 64 levels"},
        {"", 0, "invalid JSON: parse error: premature EOF"},
        {"[1,]", 0, "invalid JSON"},
        {"[1] [2]", 0, "invalid JSON"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
        char err[128] = "";
        yajl_val v = jw_json_parse(cases[i].text, len, err, sizeof(err));

        CHECK(v == NULL);
        CHECK_REPORT(strncmp(err, cases[i].err, strlen(cases[i].err)) == 0,
                     "case %zu: got \"%s\", expected \"%s...\"", i, err, cases[i].err);
        CHECK(strchr(err, '\n') == NULL);
        yajl_tree_free(v);
    }
}

static void test_parse_reads_only_len_bytes(void)
{
    const char *text = "{\"a\":[1,2]}garbage";
    char err[128];
    yajl_val v = jw_json_parse(text, 11, err, sizeof(err));

    CHECK(YAJL_IS_OBJECT(v));
    yajl_tree_free(v);

    /* A final newline is whitespace, and err may be absent. */
    v = jw_json_parse("[1]\n", 4, NULL, 0);
    CHECK(YAJL_IS_ARRAY(v));
    yajl_tree_free(v);
}

/* yajl_tree_get() in 2.1.0 returns NULL for the first key when its value is a string. */
static void test_lookups_find_every_member(void)
{
    yajl_val root = parse("{\"a\":\"x\",\"b\":{\"c\":1.5,\"d\":null},\"a2\":[1],\"b\":{\"c\":2}}");
    double d = 0;

    CHECK(root != NULL);
    CHECK_STR(jw_json_get_string(root, JW_JSON_PATH("a")), "x");
    CHECK(jw_json_get_string(root, JW_JSON_PATH("a2")) == NULL);
    CHECK(jw_json_get(root, JW_JSON_PATH("a", "x")) == NULL);
    CHECK(jw_json_get(root, JW_JSON_PATH("missing")) == NULL);
    CHECK(jw_json_get_object(root, JW_JSON_PATH("a")) == NULL);

    /* The later duplicate "b" wins. */
    CHECK(jw_json_get_object(root, JW_JSON_PATH("b")) != NULL);
    CHECK_INT(jw_json_get_number(root, JW_JSON_PATH("b", "c"), &d), 0);
    CHECK_DOUBLE(d, 2);
    CHECK(jw_json_get(root, JW_JSON_PATH("b", "d")) == NULL);
    CHECK(jw_json_get(NULL, JW_JSON_PATH("a")) == NULL);
    yajl_tree_free(root);
}

static void test_numbers_in_every_form(void)
{
    static const struct {
        const char *text;
        int rc;
        double value;
    } cases[] = {
        {"{\"n\":3e-06}", 0, 3e-06},
        {"{\"n\":-2.5E+3}", 0, -2500},
        {"{\"n\":0}", 0, 0},
        {"{\"n\":1e-400}", 0, 0},
        {"{\"n\":1e400}", -1, 7},
        {"{\"n\":\"1\"}", -1, 7},
        {"{\"n\":null}", -1, 7},
        {"{\"m\":1}", -1, 7},
        {"{\"n\":123456789012345678901234567890}", 0, 1.2345678901234568e29},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        yajl_val root = parse(cases[i].text);
        double d = 7;

        CHECK(root != NULL);
        CHECK_INT(jw_json_get_number(root, JW_JSON_PATH("n"), &d), cases[i].rc);
        CHECK_REPORT(d == cases[i].value, "%s: got %.17g", cases[i].text, d);
        yajl_tree_free(root);
    }
}

static void test_serialise_is_compact_and_keeps_number_text(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {" { \"a\" : [ 1 , 2.50 , 3e-06 , -0 ] ,\n \"b\" : { } } ",
         "{\"a\":[1,2.50,3e-06,-0],\"b\":{}}"},
        {"\"caf\\u00e9 / \\\"q\\\" \\t\"", "\"caf\xc3\xa9 / \\\"q\\\" \\t\""},
        {"[true,false,null]", "[true,false,null]"},
        {"12345678901234567890123", "12345678901234567890123"},
        {"{\"k\\n\":\"\\u0001\"}", "{\"k\\n\":\"\\u0001\"}"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        yajl_val root = parse(cases[i].in);
        size_t len = 0;
        char *out = jw_json_serialise(root, &len);

        CHECK_STR(out, cases[i].out);
        CHECK_INT(len, out ? strlen(out) : 0);
        free(out);
        yajl_tree_free(root);
    }
    CHECK(jw_json_serialise(NULL, NULL) == NULL);
}

/* Documented limits of yajl's decoding, pinned so a change is noticed. */
static void test_escapes_decoded_by_yajl(void)
{
    yajl_val root = parse("[\"ab\\u0000cd\",\"\\ud83d\\ude00\",\"\\ud800x\"]");

    CHECK(YAJL_IS_ARRAY(root));
    if (YAJL_IS_ARRAY(root)) {
        CHECK_STR(root->u.array.values[0]->u.string, "ab");
        CHECK_STR(root->u.array.values[1]->u.string, "\xf0\x9f\x98\x80");
        CHECK_STR(root->u.array.values[2]->u.string, "?x");
    }
    yajl_tree_free(root);
}

int main(void)
{
    test_parse_rejects_unsafe_input();
    test_parse_reads_only_len_bytes();
    test_lookups_find_every_member();
    test_numbers_in_every_form();
    test_serialise_is_compact_and_keeps_number_text();
    test_escapes_decoded_by_yajl();
    CHECK_SUMMARY();
}
