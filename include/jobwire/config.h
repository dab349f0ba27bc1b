/*
 * Configuration: environment variables and an optional YAML file, parsed
 * and checked once at start into one read-only struct. The environment
 * wins over the file. Every error names the key and the reason.
 */
#ifndef JOBWIRE_CONFIG_H
#define JOBWIRE_CONFIG_H

#include <stddef.h>

#include "jobwire/verify.h"

#define JW_CONFIG_MAX_PROXIES 32

/* Configuration files larger than this are rejected (1 MiB). */
#define JW_CONFIG_FILE_MAX (1024 * 1024)

/* One CIDR block of JOBWIRE_TRUSTED_PROXIES. */
typedef struct jw_cidr {
    int family;               /* AF_INET or AF_INET6 */
    unsigned char addr[16];   /* network address, 4 or 16 bytes used */
    int prefix_len;
} jw_cidr_t;

/* Most JOBWIRE_CORS_ORIGINS entries, and the longest origin. */
#define JW_CONFIG_MAX_ORIGINS 32
#define JW_CONFIG_ORIGIN_MAX 256

/* Most JOBWIRE_PRICES entries. */
#define JW_CONFIG_MAX_PRICES 64

/* One JOBWIRE_PRICES entry: a Replicate hardware name and its price. */
typedef struct jw_price {
    char hardware[48];
    double usd_per_s;
} jw_price_t;

/* Where a setting came from, for the startup log. */
typedef enum jw_config_source {
    JW_SOURCE_DEFAULT = 0,
    JW_SOURCE_FILE,
    JW_SOURCE_ENV,
} jw_config_source_t;

typedef struct jw_config {
    /* HTTP front end: JOBWIRE_LISTEN, "host:port" or "[v6]:port". */
    char *listen_host;        /* default "0.0.0.0" */
    int listen_port;          /* default 8001 */

    /* Redis: JOBWIRE_REDIS_URL redis://[[user]:password@]host[:port][/db]. */
    char *redis_url;          /* normalised copy for logs, the password replaced by "***" */
    char *redis_host;         /* default "127.0.0.1", an IPv6 address without brackets */
    int redis_port;           /* default 6379 */
    int redis_db;             /* default 0, range 0-15 */
    char *redis_user;         /* ACL user name (Redis 6+), NULL when none */
    char *redis_password;     /* percent-decoded, or NULL when none. Never logged */
    char *redis_prefix;       /* JOBWIRE_REDIS_PREFIX, default "jw:" */

    /* Webhooks: REPLICATE_WEBHOOK_SECRET (whsec_ + strict base64). */
    int has_webhook_secret;
    jw_verify_key_t webhook_key;
    size_t webhook_max_body;  /* JOBWIRE_WEBHOOK_MAX_BODY bytes, default 16 MiB */
    int webhook_tolerance_s;  /* JOBWIRE_WEBHOOK_TOLERANCE, default 300 */
    int delivery_ttl_s;       /* JOBWIRE_DELIVERY_TTL, default 86400: dedupe window */

    /* Replicate API and the public URL webhooks reach. */
    char *public_url;         /* JOBWIRE_PUBLIC_URL or providers.replicate.webhook_url */
    char *replicate_api_url;  /* JOBWIRE_REPLICATE_API_URL, default https://api.replicate.com/v1 */
    char *replicate_token;    /* REPLICATE_API_TOKEN; never logged */
    int replicate_timeout_ms; /* JOBWIRE_REPLICATE_TIMEOUT_MS, default 30000, retries included */
    int replicate_connect_timeout_ms; /* JOBWIRE_REPLICATE_CONNECT_MS, default 5000 */
    int replicate_max_inflight; /* JOBWIRE_REPLICATE_INFLIGHT, default 8 */
    int replicate_max_attempts; /* JOBWIRE_REPLICATE_ATTEMPTS, default 4 */

    /* Poller: enabled is -1 (automatic), 0 or 1. */
    int poll_enabled;
    jw_config_source_t poll_enabled_source;
    int poll_interval_s;      /* SIMPLETUNER_JOB_POLL_INTERVAL, default 30 */
    jw_config_source_t poll_interval_source;
    int poll_rate_per_min;    /* JOBWIRE_POLL_RATE, default 540 (Replicate allows 600) */
    int stale_after_s;        /* JOBWIRE_STALE_AFTER, default 600; 0 turns the check off */

    /* Cost: prices per second that override or extend cost.c's table. */
    jw_price_t prices[JW_CONFIG_MAX_PRICES]; /* JOBWIRE_PRICES, "hardware=usd,..." */
    int price_count;
    double default_price;     /* JOBWIRE_DEFAULT_PRICE, USD/s for unknown hardware */

    /* Queue processing (background.queue_processing). */
    int queue_enabled;        /* JOBWIRE_QUEUE_ENABLED, default 1 */
    int queue_interval_ms;    /* JOBWIRE_QUEUE_INTERVAL (decimal seconds), default 5000 */
    int queue_max_concurrent; /* JOBWIRE_QUEUE_MAX_CONCURRENT, default 2 */
    int queue_max_per_user;   /* JOBWIRE_QUEUE_MAX_PER_USER, default 0: no limit per user */
    int queue_max_pending;    /* JOBWIRE_QUEUE_MAX_PENDING, default 1000 */
    int queue_exclusive;      /* JOBWIRE_QUEUE_EXCLUSIVE, default 1: rounds on the lease holder only */

    /* SSE hub. */
    int sse_max_per_ip;       /* JOBWIRE_SSE_MAX_PER_IP, default 5 */
    int sse_max_clients;      /* JOBWIRE_SSE_MAX_CLIENTS, default 20000 */
    int sse_heartbeat_s;      /* JOBWIRE_SSE_HEARTBEAT, default 15 */
    size_t sse_client_buffer_max; /* JOBWIRE_SSE_CLIENT_BUFFER, default 1 MiB */
    jw_cidr_t trusted_proxies[JW_CONFIG_MAX_PROXIES]; /* JOBWIRE_TRUSTED_PROXIES */
    int trusted_proxy_count;

    /* Streams and consumer. */
    long changes_maxlen;      /* JOBWIRE_CHANGES_MAXLEN, default 100000 */
    int claim_idle_ms;        /* JOBWIRE_CLAIM_IDLE_MS, default 30000 */

    /* Access control. */
    char *api_keys_file;      /* JOBWIRE_API_KEYS_FILE, NULL: loopback clients only */
    int allow_anonymous;      /* JOBWIRE_ALLOW_ANONYMOUS, default 0 */
    char *session_secret;     /* JOBWIRE_SESSION_SECRET; never logged */
    int session_ttl_s;        /* JOBWIRE_SESSION_TTL, default 43200 */
    int cookie_secure;        /* JOBWIRE_COOKIE_SECURE: -1 auto (an https public URL), 0, 1 */
    char cors_origins[JW_CONFIG_MAX_ORIGINS][JW_CONFIG_ORIGIN_MAX]; /* JOBWIRE_CORS_ORIGINS */
    int cors_origin_count;
    int rate_limit_per_min;   /* JOBWIRE_RATE_LIMIT, mutating calls per key, 0: off */
    int login_rate_per_min;   /* JOBWIRE_LOGIN_RATE_LIMIT, logins per client IP, 0: off */
    long audit_maxlen;        /* JOBWIRE_AUDIT_MAXLEN, default 100000 */
    int metrics_auth;         /* JOBWIRE_METRICS_AUTH: -1 auto (with a key file), 0, 1 */

    int log_level;            /* JOBWIRE_LOG_LEVEL, a jw_log_level_t, default info */
    char *web_root;           /* JOBWIRE_WEB_ROOT, the dashboard's files; NULL: found at start */
    char *config_file;        /* the --config path, or NULL */
    char unknown_keys[512];   /* keys of the file in jobwire's sections it does not know */
} jw_config_t;

/*
 * Fills cfg with defaults, then the YAML file at path (may be NULL), then
 * the environment. Returns 0, or -1 with "KEY: reason" in err. The caller
 * frees with jw_config_free() in both cases.
 */
int jw_config_load(jw_config_t *cfg, const char *path, char *err, size_t errlen);

/* Same as jw_config_load but reads the YAML from memory (for tests and fuzzing). */
int jw_config_load_yaml_text(jw_config_t *cfg, const char *yaml, size_t len, char *err, size_t errlen);

void jw_config_free(jw_config_t *cfg);

/* Returns 1 when webhooks can reach this deployment (a secret or a public URL). */
int jw_config_webhook_configured(const jw_config_t *cfg);

/*
 * Returns 1 when job status polling should run: poll_enabled when it is 0
 * or 1, and otherwise (automatic) only when no webhook is configured.
 */
int jw_config_poll_enabled(const jw_config_t *cfg);

/* Returns 1 when addr (4 or 16 bytes of family) lies in a trusted proxy block. */
int jw_config_is_trusted_proxy(const jw_config_t *cfg, int family, const unsigned char *addr);

/* Writes the --help text: every variable, its unit and default. */
void jw_config_print_help(const char *argv0);

#endif
