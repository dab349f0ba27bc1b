/*
 * Unit tests of auth_keys.c and auth_session.c: the key file's grammar and
 * its errors, lookup by hash, the constant-time compare, and session
 * cookies (issue, check, forgery, expiry, key rotation) with CSRF tokens.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "jobwire/auth.h"

static const unsigned char secret[] = "0123456789abcdef0123456789abcdef-test";
#define SECRET_LEN (sizeof(secret) - 1)

/* "sha256:" form of "alpha-key-0123456789" */
static char alpha_hash[80];

static int parse(const char *text, jw_keyring_t *ring, char *err, size_t errlen)
{
    return jw_keyring_parse(text, strlen(text), ring, err, errlen);
}

static void expect_error(const char *text, const char *expected)
{
    jw_keyring_t ring;
    char err[256] = "";

    CHECK_INT(parse(text, &ring, err, sizeof(err)), -1);
    CHECK_STR(err, expected);
}

static void test_ct_equal(void)
{
    CHECK_INT(jw_ct_equal("abc", 3, "abc", 3), 1);
    CHECK_INT(jw_ct_equal("abc", 3, "abd", 3), 0);
    CHECK_INT(jw_ct_equal("abc", 3, "xbc", 3), 0);
    /* Unequal lengths are unequal even when one is a prefix of the other. */
    CHECK_INT(jw_ct_equal("abc", 3, "abcd", 4), 0);
    CHECK_INT(jw_ct_equal("abcd", 4, "abc", 3), 0);
    CHECK_INT(jw_ct_equal("", 0, "", 0), 1);
    CHECK_INT(jw_ct_equal("", 0, "a", 1), 0);
}

static void test_hash_key(void)
{
    char out[80];

    /* The SHA-256 of "abc" from FIPS 180-2. */
    jw_hash_key("abc", 3, out, sizeof(out));
    CHECK_STR(out, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_roles(void)
{
    unsigned roles = 0;
    char err[128], text[64];

    CHECK_INT(jw_roles_parse("read", &roles, err, sizeof(err)), 0);
    CHECK_INT(roles, JW_ROLE_READ);
    CHECK_INT(jw_roles_parse("submit,read,operate", &roles, err, sizeof(err)), 0);
    CHECK_INT(roles, JW_ROLE_ALL);
    jw_roles_format(roles, text, sizeof(text));
    CHECK_STR(text, "read,operate,submit");
    CHECK_INT(jw_roles_parse("read,admin", &roles, err, sizeof(err)), -1);
    CHECK_STR(err, "unknown role \"admin\" (roles are read, operate, submit)");
    CHECK_INT(jw_roles_parse("read,", &roles, err, sizeof(err)), -1);
    CHECK_STR(err, "unknown role \"\" (roles are read, operate, submit)");

    /* A key written in the ROLES column is never repeated. */
    CHECK_INT(jw_roles_parse("r8_live_Zq81mP0vXw3k", &roles, err, sizeof(err)), -1);
    CHECK_STR(err, "ROLES must be a comma list of read, operate, submit (is the key in the "
                   "ROLES column?)");
}

static void test_parse_good_file(void)
{
    char text[512], err[256] = "";
    jw_keyring_t ring;

    snprintf(text, sizeof(text),
             "# jobwire keys\n"
             "\n"
             "alpha  read,operate  %s   # the on-call team\r\n"
             "ci-bot\tsubmit\traw#key-with-hash-inside\n"
             "   # indented comment\n",
             alpha_hash);
    CHECK_INT(parse(text, &ring, err, sizeof(err)), 0);
    CHECK_STR(err, "");
    CHECK_INT(ring.count, 2);
    CHECK_INT(ring.raw_count, 1);
    CHECK_STR(ring.keys[0].name, "alpha");
    CHECK_INT(ring.keys[0].roles, JW_ROLE_READ | JW_ROLE_OPERATE);
    CHECK_INT(ring.keys[0].raw, 0);
    CHECK_INT(ring.keys[0].line, 3);
    CHECK_STR(ring.keys[1].name, "ci-bot");
    CHECK_INT(ring.keys[1].roles, JW_ROLE_SUBMIT);
    CHECK_INT(ring.keys[1].raw, 1);

    const jw_api_key_t *k = jw_keyring_find(&ring, "alpha-key-0123456789", 20);
    CHECK(k == &ring.keys[0]);
    k = jw_keyring_find(&ring, "raw#key-with-hash-inside", 24);
    CHECK(k == &ring.keys[1]);
    CHECK(jw_keyring_find(&ring, "alpha-key-012345678", 19) == NULL);
    CHECK(jw_keyring_find(&ring, "", 0) == NULL);
    CHECK(jw_keyring_by_name(&ring, "ci-bot", 6) == &ring.keys[1]);
    CHECK(jw_keyring_by_name(&ring, "ci-bo", 5) == NULL);
    jw_keyring_free(&ring);
}

static void test_parse_errors(void)
{
    char text[512];

    expect_error("alpha read\n", "line 1: expected NAME ROLES KEY, found fewer fields");
    expect_error("\nalpha read k1 extra\n", "line 2: expected NAME ROLES KEY, found more fields");
    expect_error("al/pha read key-one\n", "line 1: a name is 1-64 characters of A-Z a-z 0-9 . _ @ -");
    expect_error("alpha reed key-one\n",
                 "line 1: unknown role \"reed\" (roles are read, operate, submit)");
    expect_error("alpha read sha256:abcd\n", "line 1: sha256: must be followed by 64 hex digits");
    expect_error("a read k1\nb read k2\na operate k3\n", "line 3: name a is already used on line 1");
    expect_error("a read same-key\nb operate same-key\n",
                 "line 2: key b is the same key as a on line 1");
    expect_error("# only comments\n\n", "no key is defined; every client would be refused");
    expect_error("", "no key is defined; every client would be refused");

    snprintf(text, sizeof(text), "alpha read sha256:%064d\n", 0);
    text[strlen(text) - 2] = 'g'; /* not a hex digit */
    expect_error(text, "line 1: sha256: must be followed by 64 hex digits");

    jw_keyring_t ring;
    char err[128];
    CHECK_INT(jw_keyring_parse("a read k\0ey\n", 12, &ring, err, sizeof(err)), -1);
    CHECK_STR(err, "the file contains a NUL byte");
}

static void test_lookup_by_name_in_any_order(void)
{
    jw_keyring_t ring;
    char err[128];
    const char *text = "zed read k-zed-1\nalpha read k-alpha-1\nmid.key operate k-mid-1\n"
                       "a read k-a-1\nalphabet submit k-alphabet-1\n";
    const char *names[] = {"zed", "alpha", "mid.key", "a", "alphabet"};

    CHECK_INT(parse(text, &ring, err, sizeof(err)), 0);
    for (size_t i = 0; i < 5; i++) {
        const jw_api_key_t *k = jw_keyring_by_name(&ring, names[i], strlen(names[i]));
        CHECK(k != NULL);
        CHECK_STR(k != NULL ? k->name : NULL, names[i]);
    }
    CHECK(jw_keyring_by_name(&ring, "alph", 4) == NULL);
    CHECK(jw_keyring_by_name(&ring, "zz", 2) == NULL);
    CHECK(jw_keyring_by_name(&ring, "", 0) == NULL);
    /* The line numbers stay with their keys after sorting. */
    CHECK_INT(jw_keyring_by_name(&ring, "zed", 3)->line, 1);
    CHECK_INT(jw_keyring_by_name(&ring, "alphabet", 8)->line, 5);
    CHECK(jw_keyring_find(&ring, "k-mid-1", 7) == jw_keyring_by_name(&ring, "mid.key", 7));
    jw_keyring_free(&ring);
}

static void test_load_missing_file(void)
{
    jw_keyring_t ring;
    char err[256];

    CHECK_INT(jw_keyring_load("/nonexistent/jobwire-keys", &ring, err, sizeof(err)), -1);
    CHECK_STR(err, "/nonexistent/jobwire-keys: No such file or directory");
}

static void load_ring(jw_keyring_t *ring, const char *text)
{
    char err[256] = "";

    CHECK_INT(parse(text, ring, err, sizeof(err)), 0);
    CHECK_STR(err, "");
}

static jw_session_result_t check_cookie(const jw_keyring_t *ring, const char *value, int64_t now,
                                        const jw_api_key_t **key, jw_session_t *s)
{
    return jw_session_check(secret, SECRET_LEN, ring, value, strlen(value), now, key, s);
}

static void test_session_round_trip(void)
{
    jw_keyring_t ring;
    char cookie[JW_SESSION_MAX], csrf1[JW_CSRF_MAX], csrf2[JW_CSRF_MAX];
    const jw_api_key_t *key = NULL;
    jw_session_t s;

    load_ring(&ring, "alpha read k-alpha\nbeta operate k-beta\n");
    jw_session_issue(secret, SECRET_LEN, &ring.keys[1], 2000000000, cookie, sizeof(cookie));
    CHECK(strncmp(cookie, "v1:beta:2000000000:", 19) == 0);
    CHECK_INT(strlen(cookie), 19 + 32 + 1 + 64);

    CHECK_INT(check_cookie(&ring, cookie, 1999999999, &key, &s), JW_SESSION_OK);
    CHECK(key == &ring.keys[1]);
    CHECK_STR(s.name, "beta");
    CHECK_INT(s.expires_at, 2000000000);
    CHECK_INT(strlen(s.nonce), 32);

    /* The token is a function of the session: the same twice, another
     * for another session of the same key. */
    jw_session_csrf(secret, SECRET_LEN, &s, csrf1, sizeof(csrf1));
    jw_session_csrf(secret, SECRET_LEN, &s, csrf2, sizeof(csrf2));
    CHECK_INT(strlen(csrf1), 64);
    CHECK_STR(csrf1, csrf2);
    jw_session_t other = s;
    other.nonce[0] = other.nonce[0] == 'a' ? 'b' : 'a';
    jw_session_csrf(secret, SECRET_LEN, &other, csrf2, sizeof(csrf2));
    CHECK(strcmp(csrf1, csrf2) != 0);
    jw_keyring_free(&ring);
}

static void test_session_rejections(void)
{
    jw_keyring_t ring, rotated;
    char cookie[JW_SESSION_MAX], forged[JW_SESSION_MAX];
    const jw_api_key_t *key;

    load_ring(&ring, "alpha read k-alpha\nbeta read,operate k-beta\n");
    jw_session_issue(secret, SECRET_LEN, &ring.keys[0], 2000000000, cookie, sizeof(cookie));

    CHECK_INT(check_cookie(&ring, cookie, 2000000000, &key, NULL), JW_SESSION_EXPIRED);
    CHECK(key == NULL);

    /* A longer expiry or another name breaks the MAC. */
    snprintf(forged, sizeof(forged), "v1:alpha:2000000009%s", cookie + strlen("v1:alpha:2000000000"));
    CHECK_INT(check_cookie(&ring, forged, 0, &key, NULL), JW_SESSION_BAD_MAC);
    snprintf(forged, sizeof(forged), "v1:beta:%s", cookie + strlen("v1:alpha:"));
    CHECK_INT(check_cookie(&ring, forged, 0, &key, NULL), JW_SESSION_BAD_MAC);
    snprintf(forged, sizeof(forged), "v1:gamma:%s", cookie + strlen("v1:alpha:"));
    CHECK_INT(check_cookie(&ring, forged, 0, &key, NULL), JW_SESSION_UNKNOWN_KEY);

    /* Another secret, as on a misconfigured replica. */
    CHECK_INT(jw_session_check((const unsigned char *)"another-secret-of-32-bytes-or-more", 34,
                               &ring, cookie, strlen(cookie), 0, &key, NULL),
              JW_SESSION_BAD_MAC);

    /* A new key under the same name ends the old key's sessions. */
    load_ring(&rotated, "alpha read k-alpha-new\n");
    CHECK_INT(check_cookie(&rotated, cookie, 0, &key, NULL), JW_SESSION_BAD_MAC);
    jw_keyring_free(&rotated);

    const char *malformed[] = {
        "", "v1", "v1:alpha", "v2:alpha:1:00000000000000000000000000000000:" /* short */,
        "v1:alpha:12x:00000000000000000000000000000000:"
        "0000000000000000000000000000000000000000000000000000000000000000",
        "v1::1:00000000000000000000000000000000:"
        "0000000000000000000000000000000000000000000000000000000000000000",
        "v1:alpha:1:00000000000000000000000000000000:"
        "0000000000000000000000000000000000000000000000000000000000000000:extra",
        "v1:alpha:1:0000000000000000000000000000000G:"
        "0000000000000000000000000000000000000000000000000000000000000000",
    };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
        CHECK_INT(check_cookie(&ring, malformed[i], 0, &key, NULL), JW_SESSION_MALFORMED);
    jw_keyring_free(&ring);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    jw_hash_key("alpha-key-0123456789", 20, alpha_hash, sizeof(alpha_hash));

    test_ct_equal();
    test_hash_key();
    test_roles();
    test_parse_good_file();
    test_parse_errors();
    test_lookup_by_name_in_any_order();
    test_load_missing_file();
    test_session_round_trip();
    test_session_rejections();
    CHECK_SUMMARY();
}
