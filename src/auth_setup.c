/*
 * Start-up of access control: the key file, the session secret and the
 * start-up lines that state who will be served, plus `jobwire hash-key`.
 */
#include "jobwire/auth_setup.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "jobwire/log.h"

static void set_session_secret(jw_app_t *app)
{
    const char *configured = app->cfg->session_secret;

    if (configured != NULL) {
        /* HMAC takes a key of any length; hashing makes it fit the field. */
        crypto_hash_sha256(app->session_secret, (const unsigned char *)configured,
                           strlen(configured));
        app->session_secret_len = crypto_hash_sha256_BYTES;
        return;
    }
    randombytes_buf(app->session_secret, 32);
    app->session_secret_len = 32;
}

static void warn_raw_keys(const jw_keyring_t *ring)
{
    for (size_t i = 0; i < ring->count; i++) {
        if (ring->keys[i].raw)
            jw_warn("auth",
                    "key %s (line %d) is stored as plain text; store its sha256: form "
                    "instead (jobwire hash-key prints it)",
                    ring->keys[i].name, ring->keys[i].line);
    }
}

int jw_auth_setup(jw_app_t *app, jw_keyring_t *ring, char *err, size_t errlen)
{
    char reason[400];

    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium cannot start");
        return -1;
    }
    set_session_secret(app);
    app->keys = NULL;
    if (app->cfg->api_keys_file == NULL)
        return 0;
    if (jw_keyring_load(app->cfg->api_keys_file, ring, reason, sizeof(reason)) != 0) {
        snprintf(err, errlen, "JOBWIRE_API_KEYS_FILE: %s", reason);
        return -1;
    }
    app->keys = ring;
    return 0;
}

void jw_auth_log_mode(const jw_app_t *app)
{
    const jw_config_t *cfg = app->cfg;

    if (app->keys != NULL) {
        warn_raw_keys(app->keys);
        jw_info("auth", "access control: %zu API key%s from %s; the API needs a key or a "
                "dashboard session",
                app->keys->count, app->keys->count == 1 ? "" : "s", cfg->api_keys_file);
        if (cfg->allow_anonymous)
            jw_warn("auth", "JOBWIRE_ALLOW_ANONYMOUS=true has no effect: a key file is set, so "
                    "every API call needs a key");
        if (cfg->session_secret == NULL)
            jw_warn("auth", "JOBWIRE_SESSION_SECRET is not set: dashboard sessions are signed "
                    "with a random secret, so they end at restart and other replicas refuse "
                    "them");
    } else if (cfg->allow_anonymous) {
        jw_warn("auth", "access control: off (JOBWIRE_ALLOW_ANONYMOUS=true); any client that "
                "reaches the port may read, cancel, delete and submit jobs");
    } else {
        jw_info("auth", "access control: no API keys configured, so the API answers loopback "
                "clients only; set JOBWIRE_API_KEYS_FILE to serve others");
    }
}

int jw_auth_hash_key_command(int argc, char **argv)
{
    char line[4096], out[80];
    const char *key = argc > 2 ? argv[2] : NULL;

    if (argc > 3) {
        fprintf(stderr, "usage: jobwire hash-key [KEY]  (reads KEY from standard input when "
                "not given)\n");
        return 2;
    }
    if (key == NULL) {
        if (fgets(line, sizeof(line), stdin) == NULL)
            line[0] = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        key = line;
    }
    if (key[0] == '\0') {
        fprintf(stderr, "jobwire hash-key: no key given; pass it as an argument or on standard "
                "input\n");
        return 2;
    }
    if (strpbrk(key, " \t") != NULL) {
        fprintf(stderr, "jobwire hash-key: a key is one word without spaces\n");
        return 2;
    }
    if (strlen(key) < 16)
        fprintf(stderr, "jobwire hash-key: warning: a key of %zu characters is easy to guess; "
                "use 16 or more (openssl rand -hex 32)\n", strlen(key));
    jw_hash_key(key, strlen(key), out, sizeof(out));
    printf("%s\n", out);
    sodium_memzero(line, sizeof(line));
    return 0;
}
