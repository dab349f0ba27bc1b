/*
 * Tests of the configuration loader: defaults, every environment variable
 * with good and bad values, YAML files, precedence, and trusted proxies.
 * Temporary YAML files go into a mkdtemp() folder that is removed at exit.
 */
#include "jobwire/config.h"
#include "jobwire/log.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

/* Every variable the loader reads. The help test checks that the list is complete. */
static const char *const env_names[] = {
    "JOBWIRE_LISTEN",           "JOBWIRE_REDIS_URL",        "JOBWIRE_REDIS_PREFIX",
    "REPLICATE_WEBHOOK_SECRET", "JOBWIRE_WEBHOOK_MAX_BODY", "JOBWIRE_WEBHOOK_TOLERANCE",
    "JOBWIRE_DELIVERY_TTL",     "JOBWIRE_PUBLIC_URL",       "JOBWIRE_REPLICATE_API_URL",
    "REPLICATE_API_TOKEN",      "JOBWIRE_POLL_ENABLED",     "SIMPLETUNER_JOB_POLL_INTERVAL",
    "JOBWIRE_QUEUE_ENABLED",    "JOBWIRE_QUEUE_INTERVAL",   "JOBWIRE_SSE_MAX_PER_IP",
    "JOBWIRE_SSE_MAX_CLIENTS",  "JOBWIRE_SSE_HEARTBEAT",    "JOBWIRE_SSE_CLIENT_BUFFER",
    "JOBWIRE_TRUSTED_PROXIES",  "JOBWIRE_CHANGES_MAXLEN",   "JOBWIRE_CLAIM_IDLE_MS",
    "JOBWIRE_LOG_LEVEL",        "JOBWIRE_REPLICATE_TIMEOUT_MS", "JOBWIRE_REPLICATE_CONNECT_MS",
    "JOBWIRE_REPLICATE_INFLIGHT", "JOBWIRE_REPLICATE_ATTEMPTS",
    "JOBWIRE_POLL_RATE",        "JOBWIRE_STALE_AFTER",      "JOBWIRE_PRICES",
    "JOBWIRE_DEFAULT_PRICE",    "JOBWIRE_WEB_ROOT",         "JOBWIRE_API_KEYS_FILE",
    "JOBWIRE_ALLOW_ANONYMOUS",  "JOBWIRE_SESSION_SECRET",   "JOBWIRE_SESSION_TTL",
    "JOBWIRE_COOKIE_SECURE",    "JOBWIRE_CORS_ORIGINS",     "JOBWIRE_RATE_LIMIT",
    "JOBWIRE_LOGIN_RATE_LIMIT", "JOBWIRE_AUDIT_MAXLEN",     "JOBWIRE_METRICS_AUTH",
    "JOBWIRE_QUEUE_MAX_CONCURRENT",
    "JOBWIRE_QUEUE_MAX_PER_USER", "JOBWIRE_QUEUE_MAX_PENDING", "JOBWIRE_QUEUE_EXCLUSIVE",
};

#define ENV_COUNT (sizeof(env_names) / sizeof(env_names[0]))

/* A valid secret: "whsec_" and the base64 of 24 bytes. */
#define GOOD_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static char tmp_dir[64];
static char err[512];

static void clear_env(void)
{
    for (size_t i = 0; i < ENV_COUNT; i++)
        unsetenv(env_names[i]);
}

/* Loads with only name=value set (name may be NULL) and no file. */
static int load_env(jw_config_t *cfg, const char *name, const char *value)
{
    clear_env();
    if (name != NULL)
        setenv(name, value, 1);
    err[0] = '\0';
    return jw_config_load(cfg, NULL, err, sizeof(err));
}

static int load_yaml(jw_config_t *cfg, const char *yaml)
{
    err[0] = '\0';
    return jw_config_load_yaml_text(cfg, yaml, strlen(yaml), err, sizeof(err));
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Checks that name=value is accepted. */
static void expect_env_ok(const char *name, const char *value)
{
    jw_config_t cfg;
    int rc = load_env(&cfg, name, value);

    CHECK_REPORT(rc == 0, "%s=\"%s\" rejected: %s", name, value, err);
    jw_config_free(&cfg);
}

/* Checks that name=value is rejected with "NAME: ..." and a message containing part. */
static void expect_env_error(const char *name, const char *value, const char *part)
{
    jw_config_t cfg;
    char prefix[64];
    int rc = load_env(&cfg, name, value);

    snprintf(prefix, sizeof(prefix), "%s: ", name);
    CHECK_REPORT(rc == -1, "%s=\"%s\" accepted", name, value);
    CHECK_REPORT(starts_with(err, prefix), "%s=\"%s\": error does not name the key: %s", name,
                 value, err);
    CHECK_REPORT(strstr(err, part) != NULL, "%s=\"%s\": expected \"%s\" in: %s", name, value, part,
                 err);
    jw_config_free(&cfg);
}

/* Checks that the YAML is rejected with a message containing each of two parts. */
static void expect_yaml_error(const char *yaml, const char *part1, const char *part2)
{
    jw_config_t cfg;
    int rc = load_yaml(&cfg, yaml);

    CHECK_REPORT(rc == -1, "YAML accepted: %s", yaml);
    CHECK_REPORT(strstr(err, part1) != NULL, "expected \"%s\" in: %s", part1, err);
    CHECK_REPORT(strstr(err, part2) != NULL, "expected \"%s\" in: %s", part2, err);
    jw_config_free(&cfg);
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");

    if (f == NULL) {
        perror(path);
        exit(2);
    }
    fwrite(text, 1, len, f);
    fclose(f);
}

static void test_defaults(void)
{
    jw_config_t cfg;

    CHECK_INT(load_env(&cfg, NULL, NULL), 0);
    CHECK_STR(cfg.listen_host, "0.0.0.0");
    CHECK_INT(cfg.listen_port, 8001);
    CHECK_STR(cfg.redis_url, "redis://127.0.0.1:6379/0");
    CHECK_STR(cfg.redis_host, "127.0.0.1");
    CHECK_INT(cfg.redis_port, 6379);
    CHECK_INT(cfg.redis_db, 0);
    CHECK_STR(cfg.redis_user, NULL);
    CHECK_STR(cfg.redis_password, NULL);
    CHECK_STR(cfg.redis_prefix, "jw:");
    CHECK_INT(cfg.has_webhook_secret, 0);
    CHECK_INT(cfg.webhook_max_body, 16 * 1024 * 1024);
    CHECK_INT(cfg.webhook_tolerance_s, 300);
    CHECK_INT(cfg.delivery_ttl_s, 86400);
    CHECK_STR(cfg.public_url, NULL);
    CHECK_STR(cfg.replicate_api_url, "https://api.replicate.com/v1");
    CHECK_STR(cfg.replicate_token, NULL);
    CHECK_INT(cfg.poll_enabled, -1);
    CHECK_INT(cfg.poll_enabled_source, JW_SOURCE_DEFAULT);
    CHECK_INT(cfg.poll_interval_s, 30);
    CHECK_INT(cfg.poll_interval_source, JW_SOURCE_DEFAULT);
    CHECK_INT(cfg.queue_enabled, 1);
    CHECK_INT(cfg.queue_interval_ms, 5000);
    CHECK_INT(cfg.queue_max_concurrent, 2);
    CHECK_INT(cfg.queue_max_per_user, 0);
    CHECK_INT(cfg.queue_max_pending, 1000);
    CHECK_INT(cfg.queue_exclusive, 1);
    CHECK_INT(cfg.sse_max_per_ip, 5);
    CHECK_INT(cfg.sse_max_clients, 20000);
    CHECK_INT(cfg.sse_heartbeat_s, 15);
    CHECK_INT(cfg.sse_client_buffer_max, 1024 * 1024);
    CHECK_INT(cfg.trusted_proxy_count, 0);
    CHECK_INT(cfg.changes_maxlen, 100000);
    CHECK_INT(cfg.claim_idle_ms, 30000);
    CHECK_INT(cfg.replicate_timeout_ms, 30000);
    CHECK_INT(cfg.replicate_connect_timeout_ms, 5000);
    CHECK_INT(cfg.replicate_max_inflight, 8);
    CHECK_INT(cfg.replicate_max_attempts, 4);
    CHECK_INT(cfg.log_level, JW_LOG_INFO);
    CHECK_STR(cfg.config_file, NULL);
    CHECK_INT(jw_config_webhook_configured(&cfg), 0);
    CHECK_INT(jw_config_poll_enabled(&cfg), 1);
    jw_config_free(&cfg);
}

static void test_empty_env_is_unset(void)
{
    jw_config_t cfg;

    CHECK_INT(load_env(&cfg, "JOBWIRE_LISTEN", ""), 0);
    CHECK_INT(cfg.listen_port, 8001);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "SIMPLETUNER_JOB_POLL_INTERVAL", ""), 0);
    CHECK_INT(cfg.poll_interval_s, 30);
    CHECK_INT(cfg.poll_interval_source, JW_SOURCE_DEFAULT);
    jw_config_free(&cfg);
}

static void test_listen(void)
{
    jw_config_t cfg;

    CHECK_INT(load_env(&cfg, "JOBWIRE_LISTEN", "127.0.0.1:9000"), 0);
    CHECK_STR(cfg.listen_host, "127.0.0.1");
    CHECK_INT(cfg.listen_port, 9000);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_LISTEN", "[::1]:8080"), 0);
    CHECK_STR(cfg.listen_host, "::1");
    CHECK_INT(cfg.listen_port, 8080);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_LISTEN", ":7000"), 0);
    CHECK_STR(cfg.listen_host, "0.0.0.0");
    CHECK_INT(cfg.listen_port, 7000);
    jw_config_free(&cfg);

    expect_env_ok("JOBWIRE_LISTEN", "localhost:65535");
    expect_env_ok("JOBWIRE_LISTEN", "[::]:1");
    expect_env_error("JOBWIRE_LISTEN", ":99999", "port must be 1-65535 (got \"99999\")");
    expect_env_error("JOBWIRE_LISTEN", "0.0.0.0:0", "port must be 1-65535");
    expect_env_error("JOBWIRE_LISTEN", ":http", "port must be 1-65535");
    expect_env_error("JOBWIRE_LISTEN", ":+80", "port must be 1-65535");
    expect_env_error("JOBWIRE_LISTEN", "localhost", "port is missing");
    expect_env_error("JOBWIRE_LISTEN", "::1:8001", "brackets");
    expect_env_error("JOBWIRE_LISTEN", "[::1]8001", "[address]:port");
    expect_env_error("JOBWIRE_LISTEN", "[nope]:8001", "invalid IPv6 address");
    expect_env_error("JOBWIRE_LISTEN", "bad host:8001", "invalid host name");
}

static void test_redis_url(void)
{
    jw_config_t cfg;

    CHECK_INT(load_env(&cfg, "JOBWIRE_REDIS_URL", "redis://redis.internal"), 0);
    CHECK_STR(cfg.redis_host, "redis.internal");
    CHECK_INT(cfg.redis_port, 6379);
    CHECK_INT(cfg.redis_db, 0);
    CHECK_STR(cfg.redis_password, NULL);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_REDIS_URL", "redis://:s3cret@cache:6380/2"), 0);
    CHECK_STR(cfg.redis_host, "cache");
    CHECK_INT(cfg.redis_port, 6380);
    CHECK_INT(cfg.redis_db, 2);
    CHECK_STR(cfg.redis_user, NULL);
    CHECK_STR(cfg.redis_password, "s3cret");
    CHECK_STR(cfg.redis_url, "redis://:***@cache:6380/2");
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_REDIS_URL", "REDIS://app:p%40ss@[::1]:6379/15"), 0);
    CHECK_STR(cfg.redis_user, "app");
    CHECK_STR(cfg.redis_password, "p@ss");
    CHECK_STR(cfg.redis_host, "::1");
    CHECK_INT(cfg.redis_db, 15);
    CHECK_STR(cfg.redis_url, "redis://app:***@[::1]:6379/15");
    jw_config_free(&cfg);

    /* The last '@' ends the credentials, so an unescaped '@' or '/' still works. */
    CHECK_INT(load_env(&cfg, "JOBWIRE_REDIS_URL", "redis://:a@b/c@host/"), 0);
    CHECK_STR(cfg.redis_password, "a@b/c");
    CHECK_STR(cfg.redis_host, "host");
    jw_config_free(&cfg);

    expect_env_error("JOBWIRE_REDIS_URL", "http://cache:6379", "only redis://");
    expect_env_error("JOBWIRE_REDIS_URL", "rediss://cache:6379", "TLS");
    expect_env_error("JOBWIRE_REDIS_URL", "cache:6379", "redis://");
    expect_env_error("JOBWIRE_REDIS_URL", "redis://cache:0", "port must be 1-65535");
    expect_env_error("JOBWIRE_REDIS_URL", "redis://cache:70000", "port must be 1-65535");
    expect_env_error("JOBWIRE_REDIS_URL", "redis://cache/16", "database must be 0-15");
    expect_env_error("JOBWIRE_REDIS_URL", "redis://cache/x", "database must be 0-15");
    expect_env_error("JOBWIRE_REDIS_URL", "redis://", "host is missing");
    expect_env_error("JOBWIRE_REDIS_URL", "redis://:pw@:6379", "host is missing");
    expect_env_error("JOBWIRE_REDIS_URL", "redis://user@cache", "user:password@");
    expect_env_error("JOBWIRE_REDIS_URL", "redis://:@cache", "password after ':' is empty");
    expect_env_error("JOBWIRE_REDIS_URL", "redis://:p%zz@cache", "%XX");
    expect_env_error("JOBWIRE_REDIS_URL", "redis://:p%00@cache", "%XX");
    expect_env_error("JOBWIRE_REDIS_URL", "redis://:p%4@cache", "%XX");
    expect_env_error("JOBWIRE_REDIS_URL", "redis://cache?db=1", "query");

    /* A rejected URL must not put its password into the message. */
    load_env(&cfg, "JOBWIRE_REDIS_URL", "redis://:hunter2@cache:99999");
    CHECK(strstr(err, "hunter2") == NULL);
    jw_config_free(&cfg);
}

static void test_redis_prefix(void)
{
    jw_config_t cfg;

    CHECK_INT(load_env(&cfg, "JOBWIRE_REDIS_PREFIX", "staging:jw:"), 0);
    CHECK_STR(cfg.redis_prefix, "staging:jw:");
    jw_config_free(&cfg);

    char long_prefix[66];
    memset(long_prefix, 'p', 65);
    long_prefix[65] = '\0';
    expect_env_ok("JOBWIRE_REDIS_PREFIX", long_prefix + 1);
    expect_env_error("JOBWIRE_REDIS_PREFIX", long_prefix, "1-64 characters");
    expect_env_error("JOBWIRE_REDIS_PREFIX", "two words", "without spaces");
    expect_env_error("JOBWIRE_REDIS_PREFIX", "tab\there", "without spaces");
}

static void test_webhook_secret(void)
{
    jw_config_t cfg;

    CHECK_INT(load_env(&cfg, "REPLICATE_WEBHOOK_SECRET", GOOD_SECRET), 0);
    CHECK_INT(cfg.has_webhook_secret, 1);
    CHECK_INT(cfg.webhook_key.len, 24);
    CHECK_INT(cfg.webhook_key.bytes[0], 0x31);
    CHECK_INT(jw_config_webhook_configured(&cfg), 1);
    CHECK_INT(jw_config_poll_enabled(&cfg), 0);
    jw_config_free(&cfg);

    expect_env_error("REPLICATE_WEBHOOK_SECRET", "v1,MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                     "must start with whsec_");
    expect_env_error("REPLICATE_WEBHOOK_SECRET", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                     "must start with whsec_");
    expect_env_error("REPLICATE_WEBHOOK_SECRET", "whsec_not base64!", "secret");
    expect_env_error("REPLICATE_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "secret");
    expect_env_error("REPLICATE_WEBHOOK_SECRET", "whsec_MfKQ9r8G-YqrTwjUPD8ILPZIo2LaLaSw",
                     "secret");
    expect_env_error("REPLICATE_WEBHOOK_SECRET", "whsec_", "secret");

    /* The message names the problem, never the secret itself. */
    load_env(&cfg, "REPLICATE_WEBHOOK_SECRET", "v1,Zm9vYmFyYmF6cXV4");
    CHECK(strstr(err, "Zm9vYmFyYmF6cXV4") == NULL);
    jw_config_free(&cfg);
}

static void test_sizes(void)
{
    static const struct {
        const char *text;
        size_t bytes;
    } good[] = {
        {"1024", 1024},
        {"512k", 512 * 1024},
        {"512K", 512 * 1024},
        {"512KiB", 512 * 1024},
        {"2M", 2 * 1024 * 1024},
        {"2MiB", 2 * 1024 * 1024},
        {"1G", 1024 * 1024 * 1024},
        {"1GiB", 1024 * 1024 * 1024},
    };
    jw_config_t cfg;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        CHECK_INT(load_env(&cfg, "JOBWIRE_WEBHOOK_MAX_BODY", good[i].text), 0);
        CHECK_INT(cfg.webhook_max_body, good[i].bytes);
        jw_config_free(&cfg);
    }

    const char *size_error = "must be a size of 1KiB-1GiB";
    expect_env_error("JOBWIRE_WEBHOOK_MAX_BODY", "1023", size_error);
    expect_env_error("JOBWIRE_WEBHOOK_MAX_BODY", "2G", size_error);
    expect_env_error("JOBWIRE_WEBHOOK_MAX_BODY", "abc", size_error);
    expect_env_error("JOBWIRE_WEBHOOK_MAX_BODY", "16MB", size_error);
    expect_env_error("JOBWIRE_WEBHOOK_MAX_BODY", "1.5M", size_error);
    expect_env_error("JOBWIRE_WEBHOOK_MAX_BODY", "-5", size_error);
    expect_env_error("JOBWIRE_WEBHOOK_MAX_BODY", " 16M", size_error);
    expect_env_error("JOBWIRE_WEBHOOK_MAX_BODY", "99999999999999999999G", size_error);
    expect_env_error("JOBWIRE_WEBHOOK_MAX_BODY", "17179869184G", size_error);

    CHECK_INT(load_env(&cfg, "JOBWIRE_SSE_CLIENT_BUFFER", "64k"), 0);
    CHECK_INT(cfg.sse_client_buffer_max, 64 * 1024);
    jw_config_free(&cfg);
    expect_env_error("JOBWIRE_SSE_CLIENT_BUFFER", "1k", "must be a size of 4KiB-1GiB");
    expect_env_error("JOBWIRE_SSE_CLIENT_BUFFER", "lots", "(got \"lots\")");
}

/* One integer variable: the extremes pass, one past each end and junk fail. */
struct int_case {
    const char *name;
    const char *min;
    const char *max;
    const char *below;
    const char *above;
    const char *message;
};

static void test_queue_interval_decimals(void)
{
    static const struct {
        const char *text;
        int ms;
    } good[] = {{"5", 5000}, {"0.1", 100}, {"0.25", 250}, {"1.5", 1500}, {"0.125", 125},
                {"3600", 3600000}, {"3600.000", 3600000}, {"007", 7000}};
    static const char *const bad[] = {"0", "0.05", "0.099", "3600.001", "3601", ".5", "5.",
                                      "1.2345", "-1", "+1", "1e3", "5s", " 5", "0x10",
                                      "99999999999999999999"};
    jw_config_t cfg;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        CHECK_INT(load_env(&cfg, "JOBWIRE_QUEUE_INTERVAL", good[i].text), 0);
        CHECK_REPORT(cfg.queue_interval_ms == good[i].ms, "%s: got %d ms, expected %d ms",
                     good[i].text, cfg.queue_interval_ms, good[i].ms);
        jw_config_free(&cfg);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_env_error("JOBWIRE_QUEUE_INTERVAL", bad[i],
                         "must be 0.1-3600 seconds, at most 3 decimals");
    }
}

static void test_integers(void)
{
    static const struct int_case cases[] = {
        {"JOBWIRE_WEBHOOK_TOLERANCE", "1", "3600", "0", "3601", "an integer 1-3600 seconds"},
        {"JOBWIRE_DELIVERY_TTL", "3600", "2592000", "59", "2592001",
         "an integer 60-2592000 seconds"},
        {"SIMPLETUNER_JOB_POLL_INTERVAL", "5", "86400", "4", "86401", "an integer 5-86400 seconds"},
        {"JOBWIRE_QUEUE_MAX_CONCURRENT", "1", "10000", "0", "10001",
         "an integer 1-10000 jobs"},
        {"JOBWIRE_QUEUE_MAX_PER_USER", "0", "10000", "-1", "10001", "an integer 0-10000 jobs"},
        {"JOBWIRE_QUEUE_MAX_PENDING", "1", "100000", "0", "100001",
         "an integer 1-100000 jobs"},
        {"JOBWIRE_SSE_MAX_PER_IP", "1", "10000", "0", "10001", "an integer 1-10000 connections"},
        {"JOBWIRE_SSE_MAX_CLIENTS", "5", "1000000", "0", "1000001",
         "an integer 1-1000000 connections"},
        {"JOBWIRE_SSE_HEARTBEAT", "1", "300", "0", "301", "an integer 1-300 seconds"},
        {"JOBWIRE_CHANGES_MAXLEN", "1000", "100000000", "999", "100000001",
         "an integer 1000-100000000 entries"},
        {"JOBWIRE_CLAIM_IDLE_MS", "1000", "3600000", "999", "3600001",
         "an integer 1000-3600000 ms"},
        {"JOBWIRE_REPLICATE_TIMEOUT_MS", "1000", "600000", "999", "600001",
         "an integer 1000-600000 ms"},
        {"JOBWIRE_REPLICATE_CONNECT_MS", "100", "60000", "99", "60001",
         "an integer 100-60000 ms"},
        {"JOBWIRE_REPLICATE_INFLIGHT", "1", "256", "0", "257",
         "an integer 1-256 requests"},
        {"JOBWIRE_REPLICATE_ATTEMPTS", "1", "10", "0", "11", "an integer 1-10 attempts"},
        {"JOBWIRE_POLL_RATE", "1", "100000", "0", "100001", "an integer 1-100000 requests"},
        {"JOBWIRE_STALE_AFTER", "0", "2592000", "-1", "2592001",
         "an integer 0-2592000 seconds"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct int_case *c = &cases[i];
        expect_env_ok(c->name, c->min);
        expect_env_ok(c->name, c->max);
        expect_env_error(c->name, c->below, c->message);
        expect_env_error(c->name, c->above, c->message);
        expect_env_error(c->name, "abc", c->message);
        expect_env_error(c->name, "30s", c->message);
        expect_env_error(c->name, "+30", c->message);
        expect_env_error(c->name, " 30", c->message);
        expect_env_error(c->name, "-30", c->message);
        expect_env_error(c->name, "1e3", c->message);
        expect_env_error(c->name, "99999999999999999999999", c->message);
    }
}

static void test_poll_interval_message(void)
{
    jw_config_t cfg;

    load_env(&cfg, "SIMPLETUNER_JOB_POLL_INTERVAL", "abc");
    CHECK_STR(err, "SIMPLETUNER_JOB_POLL_INTERVAL: must be an integer 5-86400 seconds "
                   "(got \"abc\")");
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "SIMPLETUNER_JOB_POLL_INTERVAL", "120"), 0);
    CHECK_INT(cfg.poll_interval_s, 120);
    CHECK_INT(cfg.poll_interval_source, JW_SOURCE_ENV);
    jw_config_free(&cfg);
}

static void test_values_parsed(void)
{
    jw_config_t cfg;

    CHECK_INT(load_env(&cfg, "JOBWIRE_CHANGES_MAXLEN", "5000000"), 0);
    CHECK_INT(cfg.changes_maxlen, 5000000);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_CLAIM_IDLE_MS", "60000"), 0);
    CHECK_INT(cfg.claim_idle_ms, 60000);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_SSE_HEARTBEAT", "20"), 0);
    CHECK_INT(cfg.sse_heartbeat_s, 20);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_QUEUE_INTERVAL", "9"), 0);
    CHECK_INT(cfg.queue_interval_ms, 9000);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_REPLICATE_TIMEOUT_MS", "2500"), 0);
    CHECK_INT(cfg.replicate_timeout_ms, 2500);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_REPLICATE_CONNECT_MS", "750"), 0);
    CHECK_INT(cfg.replicate_connect_timeout_ms, 750);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_REPLICATE_INFLIGHT", "3"), 0);
    CHECK_INT(cfg.replicate_max_inflight, 3);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_REPLICATE_ATTEMPTS", "1"), 0);
    CHECK_INT(cfg.replicate_max_attempts, 1);
    jw_config_free(&cfg);
}

static void test_combinations(void)
{
    jw_config_t cfg;

    clear_env();
    setenv("JOBWIRE_WEBHOOK_TOLERANCE", "600", 1);
    setenv("JOBWIRE_DELIVERY_TTL", "300", 1);
    CHECK_INT(jw_config_load(&cfg, NULL, err, sizeof(err)), -1);
    CHECK(starts_with(err, "JOBWIRE_DELIVERY_TTL"));
    CHECK(strstr(err, "at least JOBWIRE_WEBHOOK_TOLERANCE, 600 seconds") != NULL);
    jw_config_free(&cfg);

    clear_env();
    setenv("JOBWIRE_SSE_MAX_CLIENTS", "10", 1);
    setenv("JOBWIRE_SSE_MAX_PER_IP", "11", 1);
    CHECK_INT(jw_config_load(&cfg, NULL, err, sizeof(err)), -1);
    CHECK(starts_with(err, "JOBWIRE_SSE_MAX_PER_IP"));
    jw_config_free(&cfg);

    /* The default per-IP cap (5) is above this total, so it must be rejected too. */
    CHECK_INT(load_env(&cfg, "JOBWIRE_SSE_MAX_CLIENTS", "4"), -1);
    CHECK_STR(err, "JOBWIRE_SSE_MAX_PER_IP (sse.max_per_ip): must not exceed "
                   "JOBWIRE_SSE_MAX_CLIENTS, 4 (got 5)");
    jw_config_free(&cfg);
}

static void test_urls_and_token(void)
{
    jw_config_t cfg;

    CHECK_INT(load_env(&cfg, "JOBWIRE_PUBLIC_URL", "https://jobs.example.com/"), 0);
    CHECK_STR(cfg.public_url, "https://jobs.example.com");
    CHECK_INT(jw_config_webhook_configured(&cfg), 1);
    CHECK_INT(jw_config_poll_enabled(&cfg), 0);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_REPLICATE_API_URL", "http://127.0.0.1:9999/v1//"), 0);
    CHECK_STR(cfg.replicate_api_url, "http://127.0.0.1:9999/v1");
    jw_config_free(&cfg);

    expect_env_error("JOBWIRE_PUBLIC_URL", "ftp://jobs.example.com", "http:// or https://");
    expect_env_error("JOBWIRE_PUBLIC_URL", "jobs.example.com", "http:// or https://");
    expect_env_error("JOBWIRE_PUBLIC_URL", "https://", "with a host");
    expect_env_error("JOBWIRE_PUBLIC_URL", "https:///path", "with a host");
    expect_env_error("JOBWIRE_PUBLIC_URL", "https://a b", "http:// or https://");
    expect_env_error("JOBWIRE_REPLICATE_API_URL", "api.replicate.com", "http:// or https://");

    CHECK_INT(load_env(&cfg, "REPLICATE_API_TOKEN", "r8_abcDEF123"), 0);
    CHECK_STR(cfg.replicate_token, "r8_abcDEF123");
    jw_config_free(&cfg);

    expect_env_error("REPLICATE_API_TOKEN", "r8_abcDEF123\n", "trailing newline");
    CHECK(strstr(err, "r8_abc") == NULL);
    expect_env_error("REPLICATE_API_TOKEN", "r8 abc", "must not contain spaces");
}

static void test_web_root(void)
{
    jw_config_t cfg;

    CHECK_INT(load_env(&cfg, "JOBWIRE_LISTEN", ":8001"), 0);
    CHECK(cfg.web_root == NULL);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_WEB_ROOT", "/tmp"), 0);
    CHECK_STR(cfg.web_root, "/tmp");
    jw_config_free(&cfg);

    expect_env_error("JOBWIRE_WEB_ROOT", "/no/such/dir/jobwire-web", "must be an existing directory");
    CHECK(strstr(err, "JOBWIRE_WEB_ROOT") != NULL);
    expect_env_error("JOBWIRE_WEB_ROOT", "/dev/null", "must be an existing directory");
}

static void test_auth_settings(void)
{
    jw_config_t cfg;

    CHECK_INT(load_env(&cfg, NULL, NULL), 0);
    CHECK(cfg.api_keys_file == NULL);
    CHECK(cfg.session_secret == NULL);
    CHECK_INT(cfg.allow_anonymous, 0);
    CHECK_INT(cfg.session_ttl_s, 43200);
    CHECK_INT(cfg.cookie_secure, -1);
    CHECK_INT(cfg.cors_origin_count, 0);
    CHECK_INT(cfg.rate_limit_per_min, 60);
    CHECK_INT(cfg.login_rate_per_min, 10);
    CHECK_INT(cfg.metrics_auth, -1);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_CORS_ORIGINS",
                       "https://ops.example.com, http://localhost:3000,https://[::1]:8443"), 0);
    CHECK_INT(cfg.cors_origin_count, 3);
    CHECK_STR(cfg.cors_origins[0], "https://ops.example.com");
    CHECK_STR(cfg.cors_origins[1], "http://localhost:3000");
    CHECK_STR(cfg.cors_origins[2], "https://[::1]:8443");
    jw_config_free(&cfg);

    expect_env_error("JOBWIRE_CORS_ORIGINS", "https://ops.example.com/app", "origins like");
    expect_env_error("JOBWIRE_CORS_ORIGINS", "*", "origins like");
    expect_env_error("JOBWIRE_CORS_ORIGINS", "https://a.example,", "origins like");
    expect_env_error("JOBWIRE_API_KEYS_FILE", "/no/such/jobwire-keys", "must be a readable file");
    expect_env_error("JOBWIRE_API_KEYS_FILE", "/tmp", "must be a readable file");

    /* The secret is a credential: a refusal never repeats it. */
    expect_env_error("JOBWIRE_SESSION_SECRET", "short-secret-123", "must be 32-1024 characters");
    CHECK(strstr(err, "short-secret-123") == NULL);
    CHECK_INT(load_env(&cfg, "JOBWIRE_SESSION_SECRET", "0123456789abcdef0123456789abcdef"), 0);
    CHECK_STR(cfg.session_secret, "0123456789abcdef0123456789abcdef");
    jw_config_free(&cfg);
}

static void test_unknown_keys_in_known_sections(void)
{
    jw_config_t cfg;

    CHECK_INT(load_yaml(&cfg, "auth:\n  api_keys: /x\nbackground:\n  queue_processing:\n"
                              "    max_concurent: 3\nother_tool:\n  foo: 1\nlog_level: warn\n"),
              0);
    CHECK_STR(cfg.unknown_keys, "auth.api_keys, background.queue_processing.max_concurent");
    jw_config_free(&cfg);

    CHECK_INT(load_yaml(&cfg, "other_tool:\n  foo: 1\n"), 0);
    CHECK_STR(cfg.unknown_keys, "");
    jw_config_free(&cfg);
}

static void test_booleans(void)
{
    static const struct {
        const char *text;
        int value;
    } cases[] = {
        {"true", 1}, {"TRUE", 1}, {"yes", 1}, {"On", 1},    {"1", 1},     {"false", 0},
        {"No", 0},   {"off", 0},  {"0", 0},   {"auto", -1}, {"AUTO", -1},
    };
    jw_config_t cfg;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_INT(load_env(&cfg, "JOBWIRE_POLL_ENABLED", cases[i].text), 0);
        CHECK_INT(cfg.poll_enabled, cases[i].value);
        CHECK_INT(cfg.poll_enabled_source, JW_SOURCE_ENV);
        jw_config_free(&cfg);
    }
    expect_env_error("JOBWIRE_POLL_ENABLED", "maybe", "must be true, false or auto");
    expect_env_error("JOBWIRE_POLL_ENABLED", "2", "must be true, false or auto");

    CHECK_INT(load_env(&cfg, "JOBWIRE_QUEUE_ENABLED", "off"), 0);
    CHECK_INT(cfg.queue_enabled, 0);
    jw_config_free(&cfg);
    expect_env_error("JOBWIRE_QUEUE_ENABLED", "auto", "must be true or false");
    expect_env_error("JOBWIRE_QUEUE_ENABLED", "enabled", "(got \"enabled\")");
}

static void test_poll_enabled_decision(void)
{
    jw_config_t cfg;

    /* Explicit true keeps polling on even with a webhook configured. */
    clear_env();
    setenv("REPLICATE_WEBHOOK_SECRET", GOOD_SECRET, 1);
    setenv("JOBWIRE_POLL_ENABLED", "true", 1);
    CHECK_INT(jw_config_load(&cfg, NULL, err, sizeof(err)), 0);
    CHECK_INT(jw_config_poll_enabled(&cfg), 1);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_POLL_ENABLED", "false"), 0);
    CHECK_INT(jw_config_webhook_configured(&cfg), 0);
    CHECK_INT(jw_config_poll_enabled(&cfg), 0);
    jw_config_free(&cfg);
}

static void test_log_level(void)
{
    jw_config_t cfg;

    CHECK_INT(load_env(&cfg, "JOBWIRE_LOG_LEVEL", "debug"), 0);
    CHECK_INT(cfg.log_level, JW_LOG_DEBUG);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_LOG_LEVEL", "WARN"), 0);
    CHECK_INT(cfg.log_level, JW_LOG_WARN);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_LOG_LEVEL", "warning"), 0);
    CHECK_INT(cfg.log_level, JW_LOG_WARN);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_LOG_LEVEL", "Error"), 0);
    CHECK_INT(cfg.log_level, JW_LOG_ERROR);
    jw_config_free(&cfg);

    expect_env_error("JOBWIRE_LOG_LEVEL", "verbose", "must be debug, info, warn or error");
    expect_env_error("JOBWIRE_LOG_LEVEL", "informational-and-more", "(got");
}

static void parse_addr(const char *text, int *family, unsigned char *addr)
{
    *family = strchr(text, ':') != NULL ? AF_INET6 : AF_INET;
    if (inet_pton(*family, text, addr) != 1) {
        fprintf(stderr, "bad test address %s\n", text);
        exit(2);
    }
}

static int trusted(const jw_config_t *cfg, const char *text)
{
    unsigned char addr[16];
    int family = 0;

    parse_addr(text, &family, addr);
    return jw_config_is_trusted_proxy(cfg, family, addr);
}

static void test_trusted_proxies(void)
{
    jw_config_t cfg;

    CHECK_INT(load_env(&cfg, "JOBWIRE_TRUSTED_PROXIES",
                       " 10.1.2.3/8, 192.168.1.7 ,,2001:db8::/32, ::1, 172.16.0.0/12,"),
              0);
    CHECK_INT(cfg.trusted_proxy_count, 5);
    CHECK_INT(cfg.trusted_proxies[0].family, AF_INET);
    CHECK_INT(cfg.trusted_proxies[0].prefix_len, 8);
    CHECK_INT(cfg.trusted_proxies[0].addr[1], 0); /* host bits cleared */
    CHECK_INT(cfg.trusted_proxies[1].prefix_len, 32);
    CHECK_INT(cfg.trusted_proxies[3].family, AF_INET6);
    CHECK_INT(cfg.trusted_proxies[3].prefix_len, 128);

    CHECK_INT(trusted(&cfg, "10.200.3.4"), 1);
    CHECK_INT(trusted(&cfg, "11.0.0.1"), 0);
    CHECK_INT(trusted(&cfg, "192.168.1.7"), 1);
    CHECK_INT(trusted(&cfg, "192.168.1.8"), 0);
    CHECK_INT(trusted(&cfg, "172.31.255.255"), 1);
    CHECK_INT(trusted(&cfg, "172.32.0.0"), 0);
    CHECK_INT(trusted(&cfg, "2001:db8:ffff::1"), 1);
    CHECK_INT(trusted(&cfg, "2001:db9::1"), 0);
    CHECK_INT(trusted(&cfg, "::1"), 1);
    CHECK_INT(trusted(&cfg, "::2"), 0);
    CHECK_INT(trusted(&cfg, "::ffff:10.9.9.9"), 1);
    CHECK_INT(trusted(&cfg, "::ffff:192.168.1.7"), 1);
    CHECK_INT(trusted(&cfg, "::ffff:8.8.8.8"), 0);
    CHECK_INT(jw_config_is_trusted_proxy(&cfg, AF_UNIX, (const unsigned char *)"abcd"), 0);
    jw_config_free(&cfg);

    /* A block written as IPv4-mapped IPv6 matches plain IPv4 peers. */
    CHECK_INT(load_env(&cfg, "JOBWIRE_TRUSTED_PROXIES", "::ffff:10.0.0.0/104"), 0);
    CHECK_INT(cfg.trusted_proxies[0].family, AF_INET);
    CHECK_INT(cfg.trusted_proxies[0].prefix_len, 8);
    CHECK_INT(trusted(&cfg, "10.1.1.1"), 1);
    CHECK_INT(trusted(&cfg, "::ffff:10.1.1.1"), 1);
    CHECK_INT(trusted(&cfg, "9.1.1.1"), 0);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_TRUSTED_PROXIES", "0.0.0.0/0"), 0);
    CHECK_INT(trusted(&cfg, "203.0.113.9"), 1);
    CHECK_INT(trusted(&cfg, "2001:db8::1"), 0);
    jw_config_free(&cfg);

    /* A mapped peer is matched as IPv4 only, so an all-IPv6 block does not cover it. */
    CHECK_INT(load_env(&cfg, "JOBWIRE_TRUSTED_PROXIES", "::/0"), 0);
    CHECK_INT(trusted(&cfg, "2001:db8::1"), 1);
    CHECK_INT(trusted(&cfg, "::ffff:203.0.113.9"), 0);
    jw_config_free(&cfg);

    CHECK_INT(load_env(&cfg, "JOBWIRE_TRUSTED_PROXIES", "fd00::/7"), 0);
    CHECK_INT(trusted(&cfg, "fdff::1"), 1);
    CHECK_INT(trusted(&cfg, "fe00::1"), 0);
    jw_config_free(&cfg);

    expect_env_error("JOBWIRE_TRUSTED_PROXIES", "10.0.0.0/33", "prefix length must be 0-32");
    expect_env_error("JOBWIRE_TRUSTED_PROXIES", "::/129", "prefix length must be 0-128");
    expect_env_error("JOBWIRE_TRUSTED_PROXIES", "10.0.0.0/", "prefix length");
    expect_env_error("JOBWIRE_TRUSTED_PROXIES", "10.0.0.0/-1", "prefix length");
    expect_env_error("JOBWIRE_TRUSTED_PROXIES", "10.0.0.256", "not an IPv4 or IPv6 address");
    expect_env_error("JOBWIRE_TRUSTED_PROXIES", "banana", "\"banana\" is not an IPv4");
    expect_env_error("JOBWIRE_TRUSTED_PROXIES", "10.0.0.0/8 192.168.0.0/16", "prefix length");

    char many[33 * 16] = "";
    for (int i = 0; i < 33; i++) {
        char item[16];
        snprintf(item, sizeof(item), "10.0.%d.0/24,", i);
        strcat(many, item);
    }
    expect_env_error("JOBWIRE_TRUSTED_PROXIES", many, "at most 32");
}

static const char full_yaml[] = "# an enterprise file with settings jobwire does not read\n"
                                "listen: \"127.0.0.1:9100\"\n"
                                "redis:\n"
                                "  url: redis://:pw@cache.local:6390/3\n"
                                "  prefix: \"team-a:\"\n"
                                "  pool_size: 12\n"
                                "webhook:\n"
                                "  max_body: 2M\n"
                                "  tolerance_seconds: 120\n"
                                "  delivery_ttl_seconds: 7200\n"
                                "log_level: debug\n"
                                "providers:\n"
                                "  replicate:\n"
                                "    webhook_url: https://jobs.example.com/api/webhooks/replicate\n"
                                "    webhook_secret: " GOOD_SECRET "\n"
                                "    api_url: https://api.replicate.com/v1/\n"
                                "    api_token: r8_fromfile\n"
                                "    timeout_ms: 12000\n"
                                "    max_inflight: 4\n"
                                "    hardware: [gpu-a40-large, gpu-h100]\n"
                                "  modal:\n"
                                "    token: {id: x, secret: y}\n"
                                "background:\n"
                                "  job_status_polling:\n"
                                "    enabled: yes\n"
                                "    interval_seconds: 45\n"
                                "  queue_processing:\n"
                                "    enabled: off\n"
                                "    interval_seconds: 7\n"
                                "  cleanup: &cleanup {every: 3600}\n"
                                "sse:\n"
                                "  max_per_ip: 3\n"
                                "  max_clients: 500\n"
                                "  heartbeat_seconds: 20\n"
                                "  client_buffer: 256KiB\n"
                                "  trusted_proxies: [10.0.0.0/8, \"192.168.0.0/16, fd00::/8\"]\n"
                                "streams:\n"
                                "  changes_maxlen: 20000\n"
                                "  claim_idle_ms: 15000\n"
                                "audit: *cleanup\n"
                                "teams:\n"
                                "  - name: a\n"
                                "    members: [1, 2, {deep: [[[x]]]}]\n";

static void test_yaml_full(void)
{
    jw_config_t cfg;

    clear_env();
    CHECK_INT(load_yaml(&cfg, full_yaml), 0);
    CHECK_STR(err, "");
    CHECK_STR(cfg.listen_host, "127.0.0.1");
    CHECK_INT(cfg.listen_port, 9100);
    CHECK_STR(cfg.redis_host, "cache.local");
    CHECK_INT(cfg.redis_port, 6390);
    CHECK_INT(cfg.redis_db, 3);
    CHECK_STR(cfg.redis_password, "pw");
    CHECK_STR(cfg.redis_prefix, "team-a:");
    CHECK_INT(cfg.webhook_max_body, 2 * 1024 * 1024);
    CHECK_INT(cfg.webhook_tolerance_s, 120);
    CHECK_INT(cfg.delivery_ttl_s, 7200);
    CHECK_INT(cfg.log_level, JW_LOG_DEBUG);
    CHECK_STR(cfg.public_url, "https://jobs.example.com/api/webhooks/replicate");
    CHECK_INT(cfg.has_webhook_secret, 1);
    CHECK_STR(cfg.replicate_api_url, "https://api.replicate.com/v1");
    CHECK_STR(cfg.replicate_token, "r8_fromfile");
    CHECK_INT(cfg.poll_enabled, 1);
    CHECK_INT(cfg.poll_enabled_source, JW_SOURCE_FILE);
    CHECK_INT(cfg.poll_interval_s, 45);
    CHECK_INT(cfg.poll_interval_source, JW_SOURCE_FILE);
    CHECK_INT(cfg.queue_enabled, 0);
    CHECK_INT(cfg.queue_interval_ms, 7000);
    CHECK_INT(cfg.sse_max_per_ip, 3);
    CHECK_INT(cfg.sse_max_clients, 500);
    CHECK_INT(cfg.sse_heartbeat_s, 20);
    CHECK_INT(cfg.sse_client_buffer_max, 256 * 1024);
    CHECK_INT(cfg.trusted_proxy_count, 3);
    CHECK_INT(trusted(&cfg, "192.168.5.5"), 1);
    CHECK_INT(trusted(&cfg, "fd12::1"), 1);
    CHECK_INT(cfg.changes_maxlen, 20000);
    CHECK_INT(cfg.claim_idle_ms, 15000);
    CHECK_INT(cfg.replicate_timeout_ms, 12000);
    CHECK_INT(cfg.replicate_max_inflight, 4);
    jw_config_free(&cfg);
}

static void test_yaml_webhook_url_counts(void)
{
    jw_config_t cfg;

    clear_env();
    CHECK_INT(load_yaml(&cfg, "providers:\n  replicate:\n    webhook_url: "
                              "\"https://jobs.example.com/api/webhooks/replicate\"\n"),
              0);
    CHECK_INT(jw_config_webhook_configured(&cfg), 1);
    CHECK_INT(jw_config_poll_enabled(&cfg), 0);
    jw_config_free(&cfg);
}

static void test_yaml_trusted_proxies_string(void)
{
    jw_config_t cfg;

    clear_env();
    CHECK_INT(load_yaml(&cfg, "sse:\n  trusted_proxies: \"10.0.0.0/8, ::1\"\n"), 0);
    CHECK_INT(cfg.trusted_proxy_count, 2);
    jw_config_free(&cfg);

    CHECK_INT(load_yaml(&cfg, "sse:\n  trusted_proxies: []\n"), 0);
    CHECK_INT(cfg.trusted_proxy_count, 0);
    jw_config_free(&cfg);

    expect_yaml_error("sse:\n  trusted_proxies:\n    - 10.0.0.0/8\n    - {a: 1}\n",
                      "sse.trusted_proxies: must be a list of CIDR strings", "line 4");
    expect_yaml_error("sse:\n  trusted_proxies:\n    - 10.0.0.0/8\n    - 10.0.0.0/99\n",
                      "sse.trusted_proxies: prefix length must be 0-32", "line 4");
}

static void test_yaml_alias_precedence(void)
{
    jw_config_t cfg;

    clear_env();
    CHECK_INT(load_yaml(&cfg, "job_polling_interval: 90\n"), 0);
    CHECK_INT(cfg.poll_interval_s, 90);
    CHECK_INT(cfg.poll_interval_source, JW_SOURCE_FILE);
    jw_config_free(&cfg);

    /* The new name wins whether it comes before or after the old one. */
    CHECK_INT(load_yaml(&cfg, "job_polling_interval: 90\n"
                              "background:\n  job_status_polling:\n    interval_seconds: 60\n"),
              0);
    CHECK_INT(cfg.poll_interval_s, 60);
    jw_config_free(&cfg);

    CHECK_INT(load_yaml(&cfg, "background:\n  job_status_polling:\n    interval_seconds: 60\n"
                              "job_polling_interval: 90\n"),
              0);
    CHECK_INT(cfg.poll_interval_s, 60);
    CHECK_INT(cfg.poll_interval_source, JW_SOURCE_FILE);
    jw_config_free(&cfg);

    /* The old name is still checked when the new one overrides it. */
    expect_yaml_error("background:\n  job_status_polling:\n    interval_seconds: 60\n"
                      "job_polling_interval: 1\n",
                      "job_polling_interval: must be an integer 5-86400 seconds", "line 4");

    /* The environment wins over both. */
    clear_env();
    setenv("SIMPLETUNER_JOB_POLL_INTERVAL", "300", 1);
    CHECK_INT(load_yaml(&cfg, "job_polling_interval: 90\n"), 0);
    CHECK_INT(cfg.poll_interval_s, 300);
    CHECK_INT(cfg.poll_interval_source, JW_SOURCE_ENV);
    jw_config_free(&cfg);
    clear_env();
}

/* The poller's rate and stale check, and the price table, from the file and the environment. */
static void test_poller_and_cost_settings(void)
{
    jw_config_t cfg;

    CHECK_INT(load_env(&cfg, NULL, NULL), 0);
    CHECK_INT(cfg.poll_rate_per_min, 540);
    CHECK_INT(cfg.stale_after_s, 600);
    CHECK_INT(cfg.price_count, 0);
    CHECK_DOUBLE(cfg.default_price, 0.001525);
    jw_config_free(&cfg);

    CHECK_INT(load_yaml(&cfg, "background:\n  job_status_polling:\n"
                              "    max_requests_per_minute: 300\n    stale_after_seconds: 0\n"
                              "cost:\n  prices: gpu-h100=0.002,my-box=0\n"
                              "  default_price_per_second: 0.0001\n"),
              0);
    CHECK_INT(cfg.poll_rate_per_min, 300);
    CHECK_INT(cfg.stale_after_s, 0);
    CHECK_INT(cfg.price_count, 2);
    CHECK_STR(cfg.prices[0].hardware, "gpu-h100");
    CHECK_DOUBLE(cfg.prices[0].usd_per_s, 0.002);
    CHECK_STR(cfg.prices[1].hardware, "my-box");
    CHECK_DOUBLE(cfg.prices[1].usd_per_s, 0.0);
    CHECK_DOUBLE(cfg.default_price, 0.0001);
    jw_config_free(&cfg);

    setenv("JOBWIRE_PRICES", "cpu=0.5", 1);
    CHECK_INT(load_yaml(&cfg, "cost: {prices: gpu-h100=0.002}\n"), 0);
    CHECK_INT(cfg.price_count, 1);
    CHECK_STR(cfg.prices[0].hardware, "cpu");
    jw_config_free(&cfg);
    clear_env();

    expect_env_error("JOBWIRE_PRICES", "cpu=1.5", "price must be USD per second, 0-1");
    expect_env_error("JOBWIRE_PRICES", "cpu", "each item must be hardware=price");
    expect_env_error("JOBWIRE_DEFAULT_PRICE", "-0.1", "must be a price in USD per second");
    CHECK_INT(load_yaml(&cfg, "cost: {prices: [a, b]}\n"), -1);
    CHECK(starts_with(err, "cost.prices: "));
    jw_config_free(&cfg);
}

static void test_yaml_env_precedence(void)
{
    jw_config_t cfg;

    clear_env();
    setenv("JOBWIRE_LISTEN", ":9300", 1);
    setenv("JOBWIRE_POLL_ENABLED", "false", 1);
    setenv("JOBWIRE_TRUSTED_PROXIES", "::1", 1);
    setenv("REPLICATE_API_TOKEN", "r8_fromenv", 1);
    CHECK_INT(load_yaml(&cfg, "listen: 127.0.0.1:9100\n"
                              "background: {job_status_polling: {enabled: true}}\n"
                              "sse: {trusted_proxies: [10.0.0.0/8, 10.1.0.0/16]}\n"
                              "providers: {replicate: {api_token: r8_fromfile}}\n"),
              0);
    CHECK_STR(cfg.listen_host, "0.0.0.0");
    CHECK_INT(cfg.listen_port, 9300);
    CHECK_INT(cfg.poll_enabled, 0);
    CHECK_INT(cfg.poll_enabled_source, JW_SOURCE_ENV);
    CHECK_INT(cfg.trusted_proxy_count, 1);
    CHECK_STR(cfg.replicate_token, "r8_fromenv");
    jw_config_free(&cfg);

    /* A bad environment value fails even when the file is fine. */
    setenv("JOBWIRE_LISTEN", ":0", 1);
    CHECK_INT(load_yaml(&cfg, "listen: 127.0.0.1:9100\n"), -1);
    CHECK(starts_with(err, "JOBWIRE_LISTEN: "));
    jw_config_free(&cfg);
    clear_env();
}

static void test_yaml_nulls_and_empty(void)
{
    jw_config_t cfg;

    clear_env();
    CHECK_INT(load_yaml(&cfg, ""), 0);
    CHECK_INT(cfg.listen_port, 8001);
    jw_config_free(&cfg);

    CHECK_INT(load_yaml(&cfg, "---\n...\n"), 0);
    jw_config_free(&cfg);

    CHECK_INT(load_yaml(&cfg, "background:\nsse: ~\nlisten: null\nredis:\n  prefix: \"\"\n"
                              "providers:\n  replicate:\n    webhook_url:\n"),
              0);
    CHECK_INT(cfg.listen_port, 8001);
    CHECK_STR(cfg.redis_prefix, "jw:");
    CHECK_STR(cfg.public_url, NULL);
    jw_config_free(&cfg);

    /* Only the first document is read. */
    CHECK_INT(load_yaml(&cfg, "listen: :9001\n---\nlisten: :9002\n"), 0);
    CHECK_INT(cfg.listen_port, 9001);
    jw_config_free(&cfg);

    CHECK_INT(jw_config_load_yaml_text(&cfg, NULL, 0, err, sizeof(err)), 0);
    jw_config_free(&cfg);
}

static void test_yaml_type_errors(void)
{
    expect_yaml_error("background: [1, 2]\n", "background: must be a mapping, not a list",
                      "(line 1)");
    expect_yaml_error("log_level: info\nbackground:\n  job_status_polling:\n"
                      "    interval_seconds:\n      value: 30\n",
                      "background.job_status_polling.interval_seconds: must be a scalar, not "
                      "a mapping",
                      "(line 4)");
    expect_yaml_error("listen: [a, b]\n", "listen: must be a scalar, not a list", "(line 1)");
    expect_yaml_error("sse:\n  trusted_proxies: {a: 1}\n",
                      "sse.trusted_proxies: must be a list or a string, not a mapping", "(line 2)");
    expect_yaml_error("base: &b 30\nsse:\n  heartbeat_seconds: *b\n",
                      "sse.heartbeat_seconds: must be a scalar, not an alias", "(line 3)");
    expect_yaml_error("providers: 7\n", "providers: must be a mapping, not a scalar", "line 1");
    expect_yaml_error("- listen\n", "the top level must be a mapping, not a list", "line 1");
    expect_yaml_error("just a string\n", "the top level must be a mapping", "line 1");
}

static void test_yaml_value_errors(void)
{
    expect_yaml_error("background:\n  job_status_polling:\n    interval_seconds: abc\n",
                      "background.job_status_polling.interval_seconds: must be an integer "
                      "5-86400 seconds (got \"abc\")",
                      "(line 3)");
    expect_yaml_error("\n\nwebhook:\n  max_body: 5G\n", "webhook.max_body: must be a size",
                      "(line 4)");
    expect_yaml_error("background:\n  queue_processing:\n    enabled: sometimes\n",
                      "background.queue_processing.enabled: must be true or false", "(line 3)");
    expect_yaml_error("providers:\n  replicate:\n    webhook_secret: v1,abc\n",
                      "providers.replicate.webhook_secret: must start with whsec_", "(line 3)");
    expect_yaml_error("redis:\n  url: \"redis://a\\0b\"\n", "redis.url: must not contain NUL",
                      "(line 2)");
    expect_yaml_error("webhook:\n  tolerance_seconds: 3600\n  delivery_ttl_seconds: 600\n",
                      "JOBWIRE_DELIVERY_TTL (webhook.delivery_ttl_seconds)", "3600 seconds");
}

static void test_yaml_syntax_error(void)
{
    expect_yaml_error("listen: :8001\nredis: {url: \"redis://h\"\n", "invalid YAML at line 3",
                      "configuration: ");
    expect_yaml_error("a: b\n c: d\n", "invalid YAML at line 2", "configuration: ");
    expect_yaml_error("listen: \"unterminated\n", "invalid YAML", "quoted scalar");
    expect_yaml_error("other: value\n- item\n", "invalid YAML at line 2",
                      "did not find expected key");
}

static void test_file_load(void)
{
    char path[128];
    jw_config_t cfg;

    clear_env();
    snprintf(path, sizeof(path), "%s/jobwire.yaml", tmp_dir);
    write_file(path, full_yaml, strlen(full_yaml));
    CHECK_INT(jw_config_load(&cfg, path, err, sizeof(err)), 0);
    CHECK_STR(cfg.config_file, path);
    CHECK_INT(cfg.listen_port, 9100);
    jw_config_free(&cfg);

    /* An error in a file names the key, the line and the file. */
    static const char bad[] = "sse:\n  max_per_ip: many\n";
    write_file(path, bad, strlen(bad));
    CHECK_INT(jw_config_load(&cfg, path, err, sizeof(err)), -1);
    CHECK(starts_with(err, "sse.max_per_ip: must be an integer 1-10000 connections"));
    CHECK(strstr(err, "line 2 of ") != NULL);
    CHECK(strstr(err, path) != NULL);
    jw_config_free(&cfg);

    /* Environment over file, through the file path as well. */
    setenv("JOBWIRE_SSE_MAX_PER_IP", "2", 1);
    static const char good[] = "sse:\n  max_per_ip: 4\n";
    write_file(path, good, strlen(good));
    CHECK_INT(jw_config_load(&cfg, path, err, sizeof(err)), 0);
    CHECK_INT(cfg.sse_max_per_ip, 2);
    jw_config_free(&cfg);
    clear_env();
    unlink(path);
}

static void test_file_errors(void)
{
    char path[128];
    jw_config_t cfg;

    clear_env();
    snprintf(path, sizeof(path), "%s/missing.yaml", tmp_dir);
    CHECK_INT(jw_config_load(&cfg, path, err, sizeof(err)), -1);
    CHECK(strstr(err, path) != NULL);
    CHECK(strstr(err, "No such file or directory") != NULL);
    jw_config_free(&cfg);

    CHECK_INT(jw_config_load(&cfg, tmp_dir, err, sizeof(err)), -1);
    CHECK(strstr(err, "Is a directory") != NULL);
    jw_config_free(&cfg);

    /* One byte over the cap is rejected, but exactly the cap is read. */
    size_t size = JW_CONFIG_FILE_MAX + 1;
    char *big = malloc(size);
    CHECK(big != NULL);
    memset(big, '#', size);
    big[size - 1] = '\n';
    snprintf(path, sizeof(path), "%s/big.yaml", tmp_dir);
    write_file(path, big, size);
    CHECK_INT(jw_config_load(&cfg, path, err, sizeof(err)), -1);
    CHECK(strstr(err, "larger than 1048576 bytes") != NULL);
    jw_config_free(&cfg);

    big[size - 2] = '\n';
    write_file(path, big, size - 1);
    CHECK_INT(jw_config_load(&cfg, path, err, sizeof(err)), 0);
    jw_config_free(&cfg);

    CHECK_INT(jw_config_load_yaml_text(&cfg, big, size, err, sizeof(err)), -1);
    CHECK(strstr(err, "larger than") != NULL);
    jw_config_free(&cfg);
    free(big);
    unlink(path);
}

static void test_free_is_safe(void)
{
    jw_config_t cfg;

    /* A failed load leaves allocated strings behind, and free must handle them, even twice. */
    CHECK_INT(load_env(&cfg, "JOBWIRE_LOG_LEVEL", "loud"), -1);
    jw_config_free(&cfg);
    jw_config_free(&cfg);
    jw_config_free(NULL);

    clear_env();
    CHECK_INT(load_yaml(&cfg, "redis: {url: \"redis://:pw@h\"}\nlisten: bad\n"), -1);
    jw_config_free(&cfg);
    CHECK_STR(cfg.redis_password, NULL);
}

/* Runs jw_config_print_help with stdout sent to a file, and returns the text. */
static char *capture_help(void)
{
    char path[128];
    static char text[16384];

    snprintf(path, sizeof(path), "%s/help.txt", tmp_dir);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, STDOUT_FILENO);
    jw_config_print_help("/usr/local/bin/jobwire");
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(fd);

    FILE *f = fopen(path, "r");
    size_t n = f != NULL ? fread(text, 1, sizeof(text) - 1, f) : 0;
    text[n] = '\0';
    if (f != NULL)
        fclose(f);
    unlink(path);
    return text;
}

static int count_occurrences(const char *text, const char *needle)
{
    int count = 0;

    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
        count++;
    return count;
}

static void test_help_lists_every_variable(void)
{
    const char *help = capture_help();

    CHECK(starts_with(help,
                      "usage: jobwire [--config FILE] [--check-config] [--help] [--version]\n"));
    for (size_t i = 0; i < ENV_COUNT; i++) {
        char line_start[64];
        snprintf(line_start, sizeof(line_start), "\n  %s ", env_names[i]);
        CHECK_REPORT(count_occurrences(help, line_start) == 1, "%s: listed %d times in help",
                     env_names[i], count_occurrences(help, line_start));
        CHECK_REPORT(count_occurrences(help, env_names[i]) == 1, "%s: named %d times in help",
                     env_names[i], count_occurrences(help, env_names[i]));
    }

    /* Each variable line has one default, and no other line has one. */
    CHECK_INT(count_occurrences(help, "(default: "), (int)ENV_COUNT);
    CHECK(strstr(help, "  SIMPLETUNER_JOB_POLL_INTERVAL  job status polling interval, 5-86400 "
                       "seconds (default: 30)\n") != NULL);
    CHECK(strstr(help, "(default: 16MiB)") != NULL);
    CHECK(strstr(help, "(or the older job_polling_interval)") != NULL);
    CHECK(strstr(help, "file: background.job_status_polling.enabled") != NULL);
}

int main(void)
{
    snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/jw_test_config.XXXXXX");
    if (mkdtemp(tmp_dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }

    test_defaults();
    test_empty_env_is_unset();
    test_listen();
    test_redis_url();
    test_redis_prefix();
    test_webhook_secret();
    test_sizes();
    test_integers();
    test_queue_interval_decimals();
    test_poll_interval_message();
    test_values_parsed();
    test_combinations();
    test_urls_and_token();
    test_web_root();
    test_auth_settings();
    test_unknown_keys_in_known_sections();
    test_booleans();
    test_poll_enabled_decision();
    test_log_level();
    test_trusted_proxies();
    test_yaml_full();
    test_yaml_webhook_url_counts();
    test_yaml_trusted_proxies_string();
    test_yaml_alias_precedence();
    test_poller_and_cost_settings();
    test_yaml_env_precedence();
    test_yaml_nulls_and_empty();
    test_yaml_type_errors();
    test_yaml_value_errors();
    test_yaml_syntax_error();
    test_file_load();
    test_file_errors();
    test_free_is_safe();
    test_help_lists_every_variable();

    rmdir(tmp_dir);
    CHECK_SUMMARY();
}
