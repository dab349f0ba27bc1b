/*
 * libFuzzer target for verify.c. The input is split on its first three newlines
 * into webhook-id, webhook-timestamp, webhook-signature and body, and passed to
 * jw_verify_delivery() with the first Standard Webhooks test key. A piece that
 * the input lacks is passed as an absent header. The whole input is also parsed
 * as a secret. Each piece is copied to a heap block of exactly its length, so
 * AddressSanitizer reports any read past a given length.
 *
 * Besides memory errors, the target aborts when:
 * - an accepted delivery has no entry equal to "v1," plus the canonical base64 MAC,
 *   which would mean a second spelling of one signature was accepted;
 * - a parsed secret does not re-encode to exactly the text after "whsec_";
 * - a rejected secret leaves no error message or a non-empty key.
 */
#include "jobwire/verify.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The official vector's key and time, so seeds built from it reach the HMAC. */
#define FUZZ_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define FUZZ_NOW INT64_C(1614265330)
#define FUZZ_TOLERANCE_S 300
#define PIECE_COUNT 4

struct piece {
    char *bytes; /* malloc'd, exactly len bytes, or NULL when absent */
    size_t len;
};

static char *copy_bytes(const uint8_t *data, size_t len, size_t extra)
{
    char *copy = malloc(len + extra > 0 ? len + extra : 1);

    if (copy == NULL)
        abort();
    if (len > 0)
        memcpy(copy, data, len);
    return copy;
}

/* The body takes the rest of the input, newlines included. */
static void split_input(const uint8_t *data, size_t size, struct piece pieces[PIECE_COUNT])
{
    size_t start = 0;
    int present = 1;

    for (int i = 0; i < PIECE_COUNT; i++) {
        size_t end = start;

        pieces[i].bytes = NULL;
        pieces[i].len = 0;
        if (!present)
            continue;

        if (i == PIECE_COUNT - 1)
            end = size;
        while (end < size && data[end] != '\n')
            end++;
        pieces[i].bytes = copy_bytes(data + start, end - start, 0);
        pieces[i].len = end - start;

        /* Without a newline after it, this piece is the last one present. */
        present = end < size;
        start = end + 1;
    }
}

static char *nul_terminated(const struct piece *piece)
{
    char *text = copy_bytes((const uint8_t *)piece->bytes, piece->len, 1);

    text[piece->len] = '\0';
    return text;
}

/* Returns whether the space-separated header contains the exact entry. */
static int header_has_entry(const struct piece *header, const char *entry)
{
    size_t entry_len = strlen(entry);
    size_t start = 0;

    while (start < header->len) {
        size_t end = start;

        while (end < header->len && header->bytes[end] != ' ')
            end++;
        if (end - start == entry_len && memcmp(header->bytes + start, entry, entry_len) == 0)
            return 1;
        start = end + 1;
    }
    return 0;
}

/*
 * An accepted id contains no NUL and an accepted timestamp only digits, so
 * jw_verify_sign() can sign their NUL-terminated copies.
 */
static void check_accepted(const jw_verify_key_t *key, const struct piece pieces[PIECE_COUNT])
{
    char signature[JW_VERIFY_SIGNATURE_MAX];
    char *id = nul_terminated(&pieces[0]);
    char *timestamp = nul_terminated(&pieces[1]);

    jw_verify_sign(key, id, timestamp, pieces[3].bytes, pieces[3].len, signature);
    if (!header_has_entry(&pieces[2], signature))
        abort();
    free(id);
    free(timestamp);
}

static void fuzz_delivery(const jw_verify_key_t *key, const uint8_t *data, size_t size)
{
    struct piece pieces[PIECE_COUNT];
    jw_verify_result_t result;

    split_input(data, size, pieces);
    result = jw_verify_delivery(key, pieces[0].bytes, pieces[0].len, pieces[1].bytes, pieces[1].len,
                                pieces[2].bytes, pieces[2].len, pieces[3].bytes, pieces[3].len,
                                FUZZ_NOW, FUZZ_TOLERANCE_S);
    if (jw_verify_result_message(result) == NULL)
        abort();
    if (result == JW_VERIFY_OK)
        check_accepted(key, pieces);

    for (int i = 0; i < PIECE_COUNT; i++)
        free(pieces[i].bytes);
}

static void check_secret_round_trip(const char *secret, const jw_verify_key_t *key)
{
    char encoded[sodium_base64_ENCODED_LEN(JW_VERIFY_KEY_MAX, sodium_base64_VARIANT_ORIGINAL)];

    if (key->len == 0 || key->len > JW_VERIFY_KEY_MAX)
        abort();
    sodium_bin2base64(encoded, sizeof(encoded), key->bytes, key->len,
                      sodium_base64_VARIANT_ORIGINAL);
    if (strncmp(secret, "whsec_", 6) != 0 || strcmp(secret + 6, encoded) != 0)
        abort();
}

static void fuzz_secret(const uint8_t *data, size_t size)
{
    char *secret = copy_bytes(data, size, 1);
    jw_verify_key_t key;
    char err[128];

    secret[size] = '\0';
    memset(err, 0, sizeof(err));
    if (jw_verify_parse_secret(secret, &key, err, sizeof(err)) == 0) {
        check_secret_round_trip(secret, &key);
    } else if (err[0] == '\0' || key.len != 0) {
        abort();
    }
    free(secret);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static jw_verify_key_t key;
    static int key_ready;

    if (!key_ready) {
        if (jw_verify_parse_secret(FUZZ_SECRET, &key, NULL, 0) != 0)
            abort();
        key_ready = 1;
    }

    fuzz_delivery(&key, data, size);
    fuzz_secret(data, size);
    return 0;
}
