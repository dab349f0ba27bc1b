/*
 * libFuzzer target for the access control parsers: the key file, the
 * Cookie header, the Authorization header and session cookie values. The
 * whole input goes to each parser, as an exact-length heap copy so
 * AddressSanitizer sees any read past its end.
 *
 * Besides memory errors, the target aborts when:
 * - a parsed key file has a key whose name or roles break the grammar;
 * - a cookie or token found lies outside the input;
 * - a cookie value passes the session check without being one that
 *   jw_session_issue() could have written for a key of the test ring.
 */
#include "jobwire/auth.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char secret[] = "fuzz-session-secret-0123456789abcdef";

static char *copy_of(const uint8_t *data, size_t size)
{
    char *copy = malloc(size > 0 ? size : 1);

    if (copy == NULL)
        abort();
    memcpy(copy, data, size);
    return copy;
}

static void check_ring(const jw_keyring_t *ring)
{
    for (size_t i = 0; i < ring->count; i++) {
        const jw_api_key_t *k = &ring->keys[i];
        size_t len = strlen(k->name);
        if (len == 0 || len > JW_KEY_NAME_MAX || k->roles == 0 || (k->roles & ~JW_ROLE_ALL))
            abort();
    }
}

static void inside(const char *base, size_t size, const char *p, size_t len)
{
    if (p < base || p + len > base + size)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static jw_keyring_t test_ring;
    char err[256];
    char *text = copy_of(data, size);

    if (sodium_init() < 0)
        abort();
    static const char ring_text[] = "a read k-one-0001\nb operate k-two-0002\n";
    if (test_ring.count == 0 &&
        jw_keyring_parse(ring_text, strlen(ring_text), &test_ring, err, sizeof(err)) != 0)
        abort();

    jw_keyring_t ring;
    if (jw_keyring_parse(text, size, &ring, err, sizeof(err)) == 0) {
        check_ring(&ring);
        jw_keyring_free(&ring);
    }

    const char *v;
    size_t vlen;
    if (jw_cookie_find(text, size, "jw_session", &v, &vlen))
        inside(text, size, v, vlen);
    if (jw_bearer_token(text, size, &v, &vlen))
        inside(text, size, v, vlen);

    const jw_api_key_t *key;
    jw_session_t s;
    /* Without the secret, no input can carry a matching MAC. */
    if (jw_session_check(secret, sizeof(secret) - 1, &test_ring, text, size, 0, &key, &s) ==
        JW_SESSION_OK)
        abort();
    free(text);
    return 0;
}
