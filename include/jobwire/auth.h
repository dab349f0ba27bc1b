/*
 * Access control without I/O: the API key file, key lookup by hash in
 * constant time, and signed session cookies with their CSRF tokens.
 * The HTTP side (http_auth.c) decides who may call what. This file only
 * finds the key a request names and checks that a cookie is genuine.
 */
#ifndef JOBWIRE_AUTH_H
#define JOBWIRE_AUTH_H

#include <stddef.h>
#include <stdint.h>

/* Roles, a bit each. */
#define JW_ROLE_READ 0x1u    /* lists, jobs, progress, events, metrics */
#define JW_ROLE_OPERATE 0x2u /* sync, cancel, delete, polling setting, audit */
#define JW_ROLE_SUBMIT 0x4u  /* new jobs */
#define JW_ROLE_ALL (JW_ROLE_READ | JW_ROLE_OPERATE | JW_ROLE_SUBMIT)

#define JW_KEY_NAME_MAX 64
#define JW_KEY_HASH_LEN 32

/* Room for a session cookie value and for a CSRF token, NUL included. */
#define JW_SESSION_MAX 192
#define JW_CSRF_MAX 65

/* A session secret shorter than this is a configuration error. */
#define JW_SESSION_SECRET_MIN 32

typedef struct jw_api_key {
    char name[JW_KEY_NAME_MAX + 1];
    unsigned roles;
    unsigned char hash[JW_KEY_HASH_LEN]; /* SHA-256 of the key */
    int raw;       /* written in the file as plain text, not as its hash */
    int line;      /* where the file defines it */
} jw_api_key_t;

typedef struct jw_keyring {
    jw_api_key_t *keys;
    size_t count;
    size_t raw_count; /* keys written in the file as plain text */
} jw_keyring_t;

/*
 * Compares a and b in time that depends only on their lengths, never on
 * where they differ. Returns 1 when equal. Unequal lengths are unequal,
 * after the same walk over the shorter length.
 */
int jw_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Writes "sha256:" and 64 lowercase hex digits of key's SHA-256 into out
 * (at least 72 bytes). */
void jw_hash_key(const char *key, size_t len, char *out, size_t size);

/* Parses a comma list of role names into *roles. Returns 0, or -1 with
 * the offending name in err. */
int jw_roles_parse(const char *text, unsigned *roles, char *err, size_t errlen);

/* Writes the role names of roles as a comma list ("read,operate"). */
void jw_roles_format(unsigned roles, char *out, size_t size);

/*
 * Parses a key file's text: one "NAME ROLES KEY" per line, '#' starts a
 * comment, blank lines are skipped. KEY is "sha256:" and 64 hex digits or
 * the raw key. Names must be unique, 1-64 of [A-Za-z0-9._@-]; a key hash
 * may appear once. Returns 0 with ring filled (free with
 * jw_keyring_free), or -1 with "line N: reason" in err. A file without a
 * key is an error too, because it would lock every client out.
 */
int jw_keyring_parse(const char *text, size_t len, jw_keyring_t *ring, char *err,
                     size_t errlen);

/* Reads and parses the file at path; errors name the file and line. */
int jw_keyring_load(const char *path, jw_keyring_t *ring, char *err, size_t errlen);

void jw_keyring_free(jw_keyring_t *ring);

/*
 * Finds the key whose hash matches the presented key. Every stored key is
 * compared, whatever matches, so the time does not tell which key (or how
 * much of one) matched. Returns the key, or NULL.
 */
const jw_api_key_t *jw_keyring_find(const jw_keyring_t *ring, const char *key, size_t len);

/* Returns the key named name, or NULL. Keys are kept sorted by name. */
const jw_api_key_t *jw_keyring_by_name(const jw_keyring_t *ring, const char *name, size_t len);

/*
 * Session cookies: "v1:<name>:<expiry>:<nonce>:<mac>", where mac is the
 * HMAC-SHA256 under the session secret of everything before it and of the
 * key's hash. Any replica with the same secret and key file accepts it;
 * rotating or removing the key ends its sessions.
 */
typedef struct jw_session {
    char name[JW_KEY_NAME_MAX + 1];
    int64_t expires_at; /* Unix seconds */
    char nonce[33];     /* 32 hex digits */
} jw_session_t;

typedef enum jw_session_result {
    JW_SESSION_OK = 0,
    JW_SESSION_MALFORMED,
    JW_SESSION_UNKNOWN_KEY,
    JW_SESSION_BAD_MAC,
    JW_SESSION_EXPIRED,
} jw_session_result_t;

/* Writes a new cookie value for key into out (JW_SESSION_MAX bytes),
 * valid until expires_at, with a fresh random nonce. */
void jw_session_issue(const unsigned char *secret, size_t secret_len, const jw_api_key_t *key,
                      int64_t expires_at, char *out, size_t size);

/* Checks a cookie value against ring at time now. On OK, *key is the key
 * it was issued for, and out (may be NULL) receives its parts. */
jw_session_result_t jw_session_check(const unsigned char *secret, size_t secret_len,
                                     const jw_keyring_t *ring, const char *value, size_t len,
                                     int64_t now, const jw_api_key_t **key, jw_session_t *out);

/* A short English reason for a result, for error messages. */
const char *jw_session_result_message(jw_session_result_t result);

/* Finds the cookie named name in a Cookie header ("a=1; b=2"). Returns 1
 * with the value (quotes not removed) in *value and *vlen, or 0. */
int jw_cookie_find(const char *header, size_t len, const char *name, const char **value,
                   size_t *vlen);

/* Reads "Bearer <token>" (the scheme in any case, one or more spaces).
 * Returns 1 with the token, or 0 for another scheme or an empty token. */
int jw_bearer_token(const char *header, size_t len, const char **token, size_t *tlen);

/* Writes the CSRF token that belongs to a session (64 hex digits). */
void jw_session_csrf(const unsigned char *secret, size_t secret_len, const jw_session_t *session,
                     char *out, size_t size);

#endif
