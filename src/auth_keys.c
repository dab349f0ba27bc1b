/*
 * The API key file and key lookup. Keys are kept only as SHA-256 hashes:
 * a presented key is hashed once and compared with every stored hash in
 * constant time, so neither the file nor the timing gives a key away.
 */
#include "jobwire/auth.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* More keys than this in one file is taken for a mistake. */
#define KEYS_MAX 10000

/* Key files larger than this are rejected. */
#define KEY_FILE_MAX (1024 * 1024)

int jw_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    const unsigned char *x = a, *y = b;
    size_t n = alen < blen ? alen : blen;
    unsigned char diff = alen == blen ? 0 : 1;

    /* No early exit: the loop always runs over the shorter length. */
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(x[i] ^ y[i]);
    return diff == 0;
}

void jw_hash_key(const char *key, size_t len, char *out, size_t size)
{
    unsigned char hash[crypto_hash_sha256_BYTES];
    char hex[2 * crypto_hash_sha256_BYTES + 1];

    crypto_hash_sha256(hash, (const unsigned char *)key, len);
    sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
    snprintf(out, size, "sha256:%s", hex);
}

static const struct {
    const char *name;
    unsigned bit;
} role_names[] = {
    {"read", JW_ROLE_READ},
    {"operate", JW_ROLE_OPERATE},
    {"submit", JW_ROLE_SUBMIT},
};

#define ROLE_COUNT (sizeof(role_names) / sizeof(role_names[0]))

static unsigned role_bit(const char *name, size_t len)
{
    for (size_t i = 0; i < ROLE_COUNT; i++) {
        if (strlen(role_names[i].name) == len && memcmp(role_names[i].name, name, len) == 0)
            return role_names[i].bit;
    }
    return 0;
}

/* 1 for a short lowercase word, which an error message may quote. */
static int looks_like_role(const char *p, size_t len)
{
    if (len > 12)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < 'a' || p[i] > 'z')
            return 0;
    }
    return 1;
}

int jw_roles_parse(const char *text, unsigned *roles, char *err, size_t errlen)
{
    unsigned bits = 0;
    const char *p = text;

    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        unsigned bit = role_bit(p, len);
        if (bit == 0 && looks_like_role(p, len)) {
            snprintf(err, errlen, "unknown role \"%.*s\" (roles are read, operate, submit)",
                     (int)len, p);
            return -1;
        }
        if (bit == 0) {
            /* Not quoted: with the columns swapped, this field is the key. */
            snprintf(err, errlen, "ROLES must be a comma list of read, operate, submit (is the "
                     "key in the ROLES column?)");
            return -1;
        }
        bits |= bit;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *roles = bits;
    return 0;
}

void jw_roles_format(unsigned roles, char *out, size_t size)
{
    size_t used = 0;

    out[0] = '\0';
    for (size_t i = 0; i < ROLE_COUNT; i++) {
        if ((roles & role_names[i].bit) == 0)
            continue;
        int n = snprintf(out + used, size - used, "%s%s", used ? "," : "", role_names[i].name);
        if (n < 0 || (size_t)n >= size - used)
            return;
        used += (size_t)n;
    }
}

static int name_ok(const char *name, size_t len)
{
    if (len == 0 || len > JW_KEY_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '@' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

static void fail(char *err, size_t errlen, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail(char *err, size_t errlen, int line, const char *fmt, ...)
{
    char reason[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "line %d: %s", line, reason);
}

/* Splits a line (comment already cut) into at most 4 fields on spaces
 * and tabs. Returns the number of fields found, 4 meaning "too many". */
static int split_fields(char *line, char **fields)
{
    int n = 0;
    char *p = line;

    while (n < 4) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        fields[n++] = p;
        while (*p != '\0' && *p != ' ' && *p != '\t')
            p++;
        if (*p != '\0')
            *p++ = '\0';
    }
    return n;
}

/* Cuts a comment: '#' at the start of the line or after a space or tab
 * (a raw key may contain '#' in its middle). */
static void cut_comment(char *line)
{
    for (char *p = line; *p != '\0'; p++) {
        if (*p == '#' && (p == line || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            return;
        }
    }
}

static int parse_key_field(const char *field, jw_api_key_t *key, char *err, size_t errlen,
                           int line)
{
    static const char prefix[] = "sha256:";
    size_t plen = sizeof(prefix) - 1;

    if (strncmp(field, prefix, plen) == 0) {
        const char *hex = field + plen;
        size_t bin_len = 0;
        if (strlen(hex) != 2 * JW_KEY_HASH_LEN ||
            sodium_hex2bin(key->hash, sizeof(key->hash), hex, strlen(hex), NULL, &bin_len,
                           NULL) != 0 ||
            bin_len != JW_KEY_HASH_LEN) {
            fail(err, errlen, line, "sha256: must be followed by 64 hex digits");
            return -1;
        }
        return 0;
    }
    crypto_hash_sha256(key->hash, (const unsigned char *)field, strlen(field));
    key->raw = 1;
    return 0;
}

/* Checks that the new key's name and hash are not already in ring. */
static int check_unique(const jw_keyring_t *ring, const jw_api_key_t *key, char *err,
                        size_t errlen)
{
    for (size_t i = 0; i < ring->count; i++) {
        const jw_api_key_t *old = &ring->keys[i];
        if (strcmp(old->name, key->name) == 0) {
            fail(err, errlen, key->line, "name %s is already used on line %d", key->name,
                 old->line);
            return -1;
        }
        if (memcmp(old->hash, key->hash, JW_KEY_HASH_LEN) == 0) {
            fail(err, errlen, key->line, "key %s is the same key as %s on line %d", key->name,
                 old->name, old->line);
            return -1;
        }
    }
    return 0;
}

static int parse_line(char *text, int line, jw_keyring_t *ring, char *err, size_t errlen)
{
    char *fields[4];
    char reason[120];
    jw_api_key_t key;

    cut_comment(text);
    int n = split_fields(text, fields);
    if (n == 0)
        return 0;
    if (n != 3) {
        fail(err, errlen, line, "expected NAME ROLES KEY, found %s", n < 3 ? "fewer fields" :
                                                                              "more fields");
        return -1;
    }

    memset(&key, 0, sizeof(key));
    key.line = line;
    if (!name_ok(fields[0], strlen(fields[0]))) {
        fail(err, errlen, line, "a name is 1-64 characters of A-Z a-z 0-9 . _ @ -");
        return -1;
    }
    memcpy(key.name, fields[0], strlen(fields[0]) + 1);
    if (jw_roles_parse(fields[1], &key.roles, reason, sizeof(reason)) != 0) {
        fail(err, errlen, line, "%s", reason);
        return -1;
    }
    if (parse_key_field(fields[2], &key, err, errlen, line) != 0 ||
        check_unique(ring, &key, err, errlen) != 0)
        return -1;

    if (ring->count == KEYS_MAX) {
        fail(err, errlen, line, "more than %d keys", KEYS_MAX);
        return -1;
    }
    ring->keys[ring->count++] = key;
    ring->raw_count += (size_t)key.raw;
    return 0;
}

/* Orders a stored name against name[0..len), like strcmp. */
static int compare_name(const char *stored, const char *name, size_t len)
{
    size_t slen = strlen(stored);
    int c = memcmp(stored, name, slen < len ? slen : len);

    if (c != 0)
        return c;
    if (slen < len)
        return -1;
    return slen > len ? 1 : 0;
}

static int compare_names(const void *a, const void *b)
{
    const char *name = ((const jw_api_key_t *)b)->name;

    return compare_name(((const jw_api_key_t *)a)->name, name, strlen(name));
}

int jw_keyring_parse(const char *text, size_t len, jw_keyring_t *ring, char *err, size_t errlen)
{
    memset(ring, 0, sizeof(*ring));
    if (memchr(text, '\0', len) != NULL) {
        snprintf(err, errlen, "the file contains a NUL byte");
        return -1;
    }

    char *copy = malloc(len + 1);
    ring->keys = calloc(KEYS_MAX, sizeof(*ring->keys));
    if (copy == NULL || ring->keys == NULL)
        abort();
    memcpy(copy, text, len);
    copy[len] = '\0';

    int rc = 0, line = 0;
    for (char *p = copy; p != NULL && rc == 0;) {
        char *next = strchr(p, '\n');
        if (next != NULL)
            *next++ = '\0';
        size_t l = strlen(p);
        if (l > 0 && p[l - 1] == '\r')
            p[l - 1] = '\0';
        rc = parse_line(p, ++line, ring, err, errlen);
        p = next;
    }
    if (rc == 0 && ring->count == 0) {
        snprintf(err, errlen, "no key is defined; every client would be refused");
        rc = -1;
    }
    /* Sorted by name, so a session cookie finds its key by binary search. */
    if (rc == 0)
        qsort(ring->keys, ring->count, sizeof(*ring->keys), compare_names);

    /* Raw keys were in this buffer: wipe it before it goes back. */
    sodium_memzero(copy, len);
    free(copy);
    if (rc != 0)
        jw_keyring_free(ring);
    return rc;
}

int jw_keyring_load(const char *path, jw_keyring_t *ring, char *err, size_t errlen)
{
    char reason[256];
    FILE *f = fopen(path, "rb");

    memset(ring, 0, sizeof(*ring));
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }

    char *text = malloc(KEY_FILE_MAX + 1);
    if (text == NULL)
        abort();
    size_t len = fread(text, 1, KEY_FILE_MAX + 1, f);
    int read_error = ferror(f);
    fclose(f);

    int rc = -1;
    if (read_error)
        snprintf(err, errlen, "%s: cannot read the file", path);
    else if (len > KEY_FILE_MAX)
        snprintf(err, errlen, "%s: larger than %d bytes", path, KEY_FILE_MAX);
    else if ((rc = jw_keyring_parse(text, len, ring, reason, sizeof(reason))) != 0)
        snprintf(err, errlen, "%s: %s", path, reason);

    sodium_memzero(text, len);
    free(text);
    return rc;
}

void jw_keyring_free(jw_keyring_t *ring)
{
    free(ring->keys);
    memset(ring, 0, sizeof(*ring));
}

const jw_api_key_t *jw_keyring_find(const jw_keyring_t *ring, const char *key, size_t len)
{
    unsigned char hash[JW_KEY_HASH_LEN];
    const jw_api_key_t *found = NULL;

    crypto_hash_sha256(hash, (const unsigned char *)key, len);
    for (size_t i = 0; i < ring->count; i++) {
        /* Hashes are unique, so at most one matches; all are compared. */
        int match = jw_ct_equal(hash, sizeof(hash), ring->keys[i].hash, JW_KEY_HASH_LEN);
        found = match ? &ring->keys[i] : found;
    }
    return found;
}

const jw_api_key_t *jw_keyring_by_name(const jw_keyring_t *ring, const char *name, size_t len)
{
    size_t lo = 0, hi = ring->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = compare_name(ring->keys[mid].name, name, len);
        if (c == 0)
            return &ring->keys[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}
