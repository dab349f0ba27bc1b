/*
 * libFuzzer target for the YAML half of the configuration loader. The
 * environment variables it reads are removed at start, so each run
 * depends on the input alone. Accepted inputs also exercise the trusted
 * proxy lookup. Seeds are in tests/fuzz/corpus/config/.
 */
#include "jobwire/config.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern char **environ;

/* Returns 1 for the prefixes of the variables the loader reads. */
static int is_config_variable(const char *entry)
{
    static const char *const prefixes[] = {"JOBWIRE_", "REPLICATE_", "SIMPLETUNER_"};

    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        if (strncmp(entry, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    }
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char name[256];

    (void)argc;
    (void)argv;

    /* unsetenv() changes environ, so restart the scan after each removal. */
    for (size_t i = 0; environ[i] != NULL;) {
        size_t len = strcspn(environ[i], "=");
        if (!is_config_variable(environ[i]) || len >= sizeof(name)) {
            i++;
            continue;
        }
        memcpy(name, environ[i], len);
        name[len] = '\0';
        unsetenv(name);
        i = 0;
    }
    return 0;
}

static void probe_proxies(const jw_config_t *cfg)
{
    static const unsigned char v4[4] = {10, 1, 2, 3};
    static const unsigned char v6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3};

    /* Both lookups of the same IPv4 peer must agree. */
    if (jw_config_is_trusted_proxy(cfg, AF_INET, v4) !=
        jw_config_is_trusted_proxy(cfg, AF_INET6, mapped))
        abort();
    (void)jw_config_is_trusted_proxy(cfg, AF_INET6, v6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jw_config_t cfg;
    char err[512];

    err[0] = '\0';
    int rc = jw_config_load_yaml_text(&cfg, (const char *)data, size, err, sizeof(err));

    /* Every failure must explain itself. */
    if (rc != 0 && err[0] == '\0')
        abort();
    if (rc == 0) {
        probe_proxies(&cfg);
        (void)jw_config_poll_enabled(&cfg);
    }
    jw_config_free(&cfg);
    return 0;
}
