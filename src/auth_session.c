/*
 * Signed session cookies and their CSRF tokens. A cookie carries the key's
 * name, an expiry and a nonce, and an HMAC over them and over the key's
 * hash, so it needs no server-side state: any replica with the same
 * session secret and key file can check it, and changing a key's hash in
 * the file ends every session issued for it.
 */
#include "jobwire/auth.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#define MAC_HEX (2 * crypto_auth_hmacsha256_BYTES)

static void session_mac(const unsigned char *secret, size_t secret_len, const char *payload,
                        size_t len, const jw_api_key_t *key, char *hex)
{
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    static const unsigned char sep = 0;

    crypto_auth_hmacsha256_init(&st, secret, secret_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)payload, len);
    crypto_auth_hmacsha256_update(&st, &sep, 1);
    crypto_auth_hmacsha256_update(&st, key->hash, JW_KEY_HASH_LEN);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(hex, MAC_HEX + 1, mac, sizeof(mac));
}

void jw_session_issue(const unsigned char *secret, size_t secret_len, const jw_api_key_t *key,
                      int64_t expires_at, char *out, size_t size)
{
    unsigned char nonce[16];
    char nonce_hex[33], mac[MAC_HEX + 1], payload[JW_SESSION_MAX];

    randombytes_buf(nonce, sizeof(nonce));
    sodium_bin2hex(nonce_hex, sizeof(nonce_hex), nonce, sizeof(nonce));
    int n = snprintf(payload, sizeof(payload), "v1:%s:%" PRId64 ":%s", key->name, expires_at,
                     nonce_hex);
    session_mac(secret, secret_len, payload, (size_t)n, key, mac);
    snprintf(out, size, "%s:%s", payload, mac);
}

static int all_digits(const char *p, size_t len)
{
    if (len == 0 || len > 18)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
    }
    return 1;
}

static int all_hex(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

/* Splits "v1:name:expiry:nonce:mac" into out; returns the payload's
 * length (everything before the mac), or 0 when malformed. */
static size_t split_cookie(const char *value, size_t len, jw_session_t *out, const char **mac)
{
    const char *parts[5];
    size_t lens[5], n = 0, start = 0;

    for (size_t i = 0; i <= len && n < 5; i++) {
        if (i == len || value[i] == ':') {
            parts[n] = value + start;
            lens[n++] = i - start;
            start = i + 1;
        }
    }
    if (n != 5 || start != len + 1 || lens[0] != 2 || memcmp(parts[0], "v1", 2) != 0 ||
        lens[1] == 0 || lens[1] > JW_KEY_NAME_MAX || !all_digits(parts[2], lens[2]) ||
        lens[3] != 32 || !all_hex(parts[3], 32) || lens[4] != MAC_HEX ||
        !all_hex(parts[4], MAC_HEX))
        return 0;

    memcpy(out->name, parts[1], lens[1]);
    out->name[lens[1]] = '\0';
    out->expires_at = strtoll(parts[2], NULL, 10);
    memcpy(out->nonce, parts[3], 32);
    out->nonce[32] = '\0';
    *mac = parts[4];
    return (size_t)(parts[4] - value) - 1;
}

jw_session_result_t jw_session_check(const unsigned char *secret, size_t secret_len,
                                     const jw_keyring_t *ring, const char *value, size_t len,
                                     int64_t now, const jw_api_key_t **key, jw_session_t *out)
{
    jw_session_t s;
    const char *mac;
    char expected[MAC_HEX + 1];

    *key = NULL;
    size_t payload_len = len < JW_SESSION_MAX ? split_cookie(value, len, &s, &mac) : 0;
    if (payload_len == 0)
        return JW_SESSION_MALFORMED;

    const jw_api_key_t *k = jw_keyring_by_name(ring, s.name, strlen(s.name));
    if (k == NULL)
        return JW_SESSION_UNKNOWN_KEY;
    session_mac(secret, secret_len, value, payload_len, k, expected);
    if (!jw_ct_equal(mac, MAC_HEX, expected, MAC_HEX))
        return JW_SESSION_BAD_MAC;
    /* Expiry is checked after the MAC, so a changed expiry is reported as a bad signature. */
    if (s.expires_at <= now)
        return JW_SESSION_EXPIRED;

    *key = k;
    if (out != NULL)
        *out = s;
    return JW_SESSION_OK;
}

const char *jw_session_result_message(jw_session_result_t result)
{
    switch (result) {
    case JW_SESSION_OK: return "valid";
    case JW_SESSION_MALFORMED: return "the session cookie is malformed";
    /* One message for both, so a forged cookie cannot tell which key
     * names exist. */
    case JW_SESSION_UNKNOWN_KEY:
    case JW_SESSION_BAD_MAC: return "the session cookie is not valid for any configured key";
    case JW_SESSION_EXPIRED: return "the session has expired";
    }
    return "the session cookie is not valid";
}

void jw_session_csrf(const unsigned char *secret, size_t secret_len, const jw_session_t *session,
                     char *out, size_t size)
{
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    char text[JW_SESSION_MAX];
    crypto_auth_hmacsha256_state st;

    /* A different label than the cookie's MAC, so one never serves as the other. */
    int n = snprintf(text, sizeof(text), "csrf:%s:%s", session->name, session->nonce);
    crypto_auth_hmacsha256_init(&st, secret, secret_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)text, (size_t)n);
    crypto_auth_hmacsha256_final(&st, mac);
    if (size >= JW_CSRF_MAX)
        sodium_bin2hex(out, size, mac, sizeof(mac));
    else if (size > 0)
        out[0] = '\0';
}

static size_t skip_spaces(const char *p, size_t i, size_t len)
{
    while (i < len && (p[i] == ' ' || p[i] == '\t'))
        i++;
    return i;
}

int jw_cookie_find(const char *header, size_t len, const char *name, const char **value,
                   size_t *vlen)
{
    size_t nlen = strlen(name), i = 0;

    while (i < len) {
        i = skip_spaces(header, i, len);
        size_t end = i;
        while (end < len && header[end] != ';')
            end++;
        /* One "name=value" pair lies in [i, end). */
        if (end - i > nlen && memcmp(header + i, name, nlen) == 0 && header[i + nlen] == '=') {
            size_t v = i + nlen + 1, e = end;
            while (e > v && (header[e - 1] == ' ' || header[e - 1] == '\t'))
                e--;
            *value = header + v;
            *vlen = e - v;
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

int jw_bearer_token(const char *header, size_t len, const char **token, size_t *tlen)
{
    static const char scheme[] = "bearer";
    size_t slen = sizeof(scheme) - 1;

    if (len <= slen + 1 || strncasecmp(header, scheme, slen) != 0 ||
        (header[slen] != ' ' && header[slen] != '\t'))
        return 0;
    size_t i = skip_spaces(header, slen, len);
    size_t e = len;
    while (e > i && (header[e - 1] == ' ' || header[e - 1] == '\t'))
        e--;
    if (e == i)
        return 0;
    *token = header + i;
    *tlen = e - i;
    return 1;
}
