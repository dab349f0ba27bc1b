/*
 * Standard Webhooks signature checks, the scheme Replicate signs webhooks with.
 * A delivery is accepted when its webhook-timestamp is within a tolerance of the
 * caller's clock and one "v1," entry of its webhook-signature header equals
 * base64(HMAC-SHA256(key, id "." timestamp "." body)). These functions only read
 * their arguments. The caller supplies the clock, maps results to HTTP statuses
 * and remembers accepted ids to detect replays.
 */
#include "jobwire/verify.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define STRINGIFY(x) #x
#define STRINGIFY_VALUE(x) STRINGIFY(x)

#define SECRET_PREFIX "whsec_"
#define SECRET_PREFIX_LEN (sizeof(SECRET_PREFIX) - 1)

/* Length of the padded base64 text of a JW_VERIFY_KEY_MAX-byte key. */
#define SECRET_BASE64_MAX (((JW_VERIFY_KEY_MAX + 2) / 3) * 4)
#define SECRET_DECODED_MAX (SECRET_BASE64_MAX / 4 * 3)
#define SECRET_TOO_LONG                                                                            \
    "webhook secret is too long (the key must be at most " STRINGIFY_VALUE(                        \
        JW_VERIFY_KEY_MAX) " bytes)"

/*
 * Svix-style ids such as "msg_p5jXN8AQM9LWM0D4loKWxJek" are about 30 bytes. The cap
 * keeps an id that later becomes a Redis key and a log field small.
 */
#define ID_MAX 256

/* INT64_MAX has 19 digits, so no longer timestamp can be valid. */
#define TIMESTAMP_DIGITS_MAX 19

/*
 * A sender lists one entry per active key, about 48 bytes each, so 4 KiB leaves room
 * for key rotation while bounding the base64 decoding done per delivery.
 */
#define SIGNATURE_HEADER_MAX 4096

#define V1_PREFIX "v1,"
#define V1_PREFIX_LEN (sizeof(V1_PREFIX) - 1)
#define MAC_LEN crypto_auth_hmacsha256_BYTES
#define MAC_BASE64_LEN (sodium_base64_ENCODED_LEN(MAC_LEN, sodium_base64_VARIANT_ORIGINAL) - 1)

_Static_assert(V1_PREFIX_LEN + MAC_BASE64_LEN + 1 <= JW_VERIFY_SIGNATURE_MAX,
               "JW_VERIFY_SIGNATURE_MAX must fit \"v1,\", the base64 MAC and a NUL");

/* libsodium requires sodium_init() before other calls. It is idempotent and thread-safe. */
static int sodium_ready(void)
{
    return sodium_init() >= 0;
}

static int fail(char *err, size_t errlen, const char *reason)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", reason);
    return -1;
}

/* Matches isspace() in the C locale, which is space and tab through carriage return. */
static int has_whitespace(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ' || (text[i] >= '\t' && text[i] <= '\r'))
            return 1;
    }
    return 0;
}

static int is_base64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/' || c == '=';
}

/*
 * Decodes strict standard base64, so each byte string has exactly one accepted
 * spelling. With the ORIGINAL variant, a NULL ignore set and a NULL end pointer,
 * libsodium 1.0.18 rejects missing or extra '=', non-zero trailing bits and anything
 * left unconsumed. It decodes every byte from 0x80 up as '/' where char is signed, so
 * the alphabet is checked here first.
 */
static int decode_base64(unsigned char *out, size_t out_max, const char *text, size_t len,
                         size_t *out_len)
{
    for (size_t i = 0; i < len; i++) {
        if (!is_base64_char(text[i]))
            return -1;
    }
    return sodium_base642bin(out, out_max, text, len, NULL, out_len, NULL,
                             sodium_base64_VARIANT_ORIGINAL);
}

int jw_verify_parse_secret(const char *secret, jw_verify_key_t *key, char *err, size_t errlen)
{
    unsigned char decoded[SECRET_DECODED_MAX];
    const char *text;
    size_t text_len;
    size_t key_len = 0;

    sodium_memzero(key, sizeof(*key));
    if (!sodium_ready())
        return fail(err, errlen, "webhook secret: libsodium failed to initialise");

    if (secret == NULL || secret[0] == '\0')
        return fail(err, errlen, "webhook secret is missing (expected the whsec_ value)");
    if (strncmp(secret, V1_PREFIX, V1_PREFIX_LEN) == 0)
        return fail(err, errlen,
                    "webhook secret starts with v1, so it is a signature, not a secret "
                    "(expected the whsec_ value)");
    if (strncmp(secret, SECRET_PREFIX, SECRET_PREFIX_LEN) != 0)
        return fail(err, errlen, "webhook secret must start with whsec_");

    text = secret + SECRET_PREFIX_LEN;
    text_len = strnlen(text, SECRET_BASE64_MAX + 1);
    if (text_len == 0)
        return fail(err, errlen, "webhook secret is empty after whsec_");
    if (text_len > SECRET_BASE64_MAX)
        return fail(err, errlen, SECRET_TOO_LONG);
    if (has_whitespace(text, text_len))
        return fail(err, errlen, "webhook secret contains whitespace (remove spaces and newlines)");

    if (decode_base64(decoded, sizeof(decoded), text, text_len, &key_len) != 0) {
        sodium_memzero(decoded, sizeof(decoded));
        return fail(err, errlen,
                    "webhook secret is not valid base64 after whsec_ "
                    "(standard alphabet with '=' padding)");
    }

    /* SECRET_BASE64_MAX characters can still decode to one byte over the limit. */
    if (key_len > JW_VERIFY_KEY_MAX) {
        sodium_memzero(decoded, sizeof(decoded));
        return fail(err, errlen, SECRET_TOO_LONG);
    }

    memcpy(key->bytes, decoded, key_len);
    key->len = key_len;
    sodium_memzero(decoded, sizeof(decoded));
    return 0;
}

/* Accepts visible ASCII only, so the id is safe to use as a Redis key and a log field. */
static int id_is_valid(const char *id, size_t len)
{
    if (len > ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];

        if (c < 0x21 || c > 0x7e)
            return 0;
    }
    return 1;
}

/* Accepts 1-19 decimal digits whose value fits in int64_t, and nothing else. */
static int parse_timestamp(const char *text, size_t len, int64_t *out)
{
    int64_t value = 0;

    if (len == 0 || len > TIMESTAMP_DIGITS_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int digit = text[i] - '0';

        if (digit < 0 || digit > 9)
            return -1;
        if (value > (INT64_MAX - digit) / 10)
            return -1;
        value = value * 10 + digit;
    }

    *out = value;
    return 0;
}

/* A signature header must fit the cap and contain at least one non-space byte. */
static int signature_header_is_valid(const char *header, size_t len)
{
    if (len > SIGNATURE_HEADER_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (header[i] != ' ')
            return 1;
    }
    return 0;
}

static jw_verify_result_t check_window(int64_t timestamp, int64_t now, int64_t tolerance_s)
{
    int64_t age;

    /* A negative tolerance is a caller bug. Zero keeps the window closed, not inverted. */
    if (tolerance_s < 0)
        tolerance_s = 0;

    /* timestamp >= 0, so now - timestamp can only underflow, and then it is far ahead. */
    if (now < INT64_MIN + timestamp)
        return JW_VERIFY_FUTURE;

    age = now - timestamp;
    if (age > tolerance_s)
        return JW_VERIFY_STALE;
    if (age < -tolerance_s)
        return JW_VERIFY_FUTURE;
    return JW_VERIFY_OK;
}

static int key_is_usable(const jw_verify_key_t *key)
{
    return key != NULL && key->len > 0 && key->len <= JW_VERIFY_KEY_MAX;
}

static void compute_mac(const jw_verify_key_t *key, const char *id, size_t id_len,
                        const char *timestamp, size_t timestamp_len, const void *body,
                        size_t body_len, unsigned char mac[MAC_LEN])
{
    crypto_auth_hmacsha256_state state;

    crypto_auth_hmacsha256_init(&state, key->bytes, key->len);
    crypto_auth_hmacsha256_update(&state, (const unsigned char *)id, id_len);
    crypto_auth_hmacsha256_update(&state, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&state, (const unsigned char *)timestamp, timestamp_len);
    crypto_auth_hmacsha256_update(&state, (const unsigned char *)".", 1);

    /* An empty body may come as NULL, which must not reach memcpy. */
    if (body_len > 0)
        crypto_auth_hmacsha256_update(&state, body, body_len);

    crypto_auth_hmacsha256_final(&state, mac);

    /* The state contains the key's inner and outer pads. */
    sodium_memzero(&state, sizeof(state));
}

/*
 * Compares the raw bytes, not the base64 text, so the time taken does not depend on
 * where the entry and the MAC first differ. An entry that does not decode strictly
 * to 32 bytes does not match.
 */
static int entry_matches(const char *text, size_t len, const unsigned char mac[MAC_LEN])
{
    unsigned char decoded[MAC_LEN];
    size_t decoded_len = 0;
    int matches;

    if (len != MAC_BASE64_LEN)
        return 0;
    if (decode_base64(decoded, sizeof(decoded), text, len, &decoded_len) != 0)
        return 0;
    if (decoded_len != MAC_LEN)
        return 0;

    matches = sodium_memcmp(decoded, mac, MAC_LEN) == 0;
    sodium_memzero(decoded, sizeof(decoded));
    return matches;
}

/* Walks the space-separated entries and skips versions other than v1. */
static int any_entry_matches(const char *header, size_t len, const unsigned char mac[MAC_LEN])
{
    size_t start = 0;

    while (start < len) {
        size_t end = start;

        while (end < len && header[end] != ' ')
            end++;

        if (end - start >= V1_PREFIX_LEN && memcmp(header + start, V1_PREFIX, V1_PREFIX_LEN) == 0 &&
            entry_matches(header + start + V1_PREFIX_LEN, end - start - V1_PREFIX_LEN, mac))
            return 1;

        start = end + 1;
    }
    return 0;
}

jw_verify_result_t jw_verify_delivery(const jw_verify_key_t *key, const char *id, size_t id_len,
                                      const char *timestamp, size_t timestamp_len,
                                      const char *signature, size_t signature_len, const void *body,
                                      size_t body_len, int64_t now, int64_t tolerance_s)
{
    unsigned char mac[MAC_LEN];
    int64_t sent_at = 0;
    jw_verify_result_t result;

    if (id == NULL || id_len == 0 || timestamp == NULL || timestamp_len == 0 || signature == NULL ||
        signature_len == 0)
        return JW_VERIFY_MISSING_HEADER;

    if (!id_is_valid(id, id_len) || parse_timestamp(timestamp, timestamp_len, &sent_at) != 0 ||
        !signature_header_is_valid(signature, signature_len))
        return JW_VERIFY_BAD_HEADER;

    /* The window is checked first, so an old delivery costs no HMAC. */
    result = check_window(sent_at, now, tolerance_s);
    if (result != JW_VERIFY_OK)
        return result;

    /* A bad key or a NULL body with a length is a caller bug, so the check fails closed. */
    if (!key_is_usable(key) || (body == NULL && body_len > 0) || !sodium_ready())
        return JW_VERIFY_BAD_SIGNATURE;

    compute_mac(key, id, id_len, timestamp, timestamp_len, body, body_len, mac);
    result =
        any_entry_matches(signature, signature_len, mac) ? JW_VERIFY_OK : JW_VERIFY_BAD_SIGNATURE;

    /* The expected MAC would let its reader forge this one delivery. */
    sodium_memzero(mac, sizeof(mac));
    return result;
}

const char *jw_verify_result_message(jw_verify_result_t result)
{
    switch (result) {
    case JW_VERIFY_OK:
        return "signature is valid";
    case JW_VERIFY_MISSING_HEADER:
        return "webhook-id, webhook-timestamp or webhook-signature header is missing";
    case JW_VERIFY_BAD_HEADER:
        return "webhook-id, webhook-timestamp or webhook-signature header is invalid";
    case JW_VERIFY_STALE:
        return "webhook-timestamp is older than the allowed tolerance";
    case JW_VERIFY_FUTURE:
        return "webhook-timestamp is further in the future than the allowed tolerance";
    case JW_VERIFY_BAD_SIGNATURE:
        return "no v1 signature in webhook-signature matches the delivery";
    }
    return "unknown signature verification result";
}

void jw_verify_sign(const jw_verify_key_t *key, const char *id, const char *timestamp,
                    const void *body, size_t body_len, char *out)
{
    unsigned char mac[MAC_LEN];

    /* An empty string never matches, so a caller bug cannot yield a usable signature. */
    out[0] = '\0';
    if (!key_is_usable(key) || id == NULL || timestamp == NULL || (body == NULL && body_len > 0) ||
        !sodium_ready())
        return;

    compute_mac(key, id, strlen(id), timestamp, strlen(timestamp), body, body_len, mac);
    memcpy(out, V1_PREFIX, V1_PREFIX_LEN);
    sodium_bin2base64(out + V1_PREFIX_LEN, JW_VERIFY_SIGNATURE_MAX - V1_PREFIX_LEN, mac,
                      sizeof(mac), sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(mac, sizeof(mac));
}
