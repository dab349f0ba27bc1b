/*
 * Start-up of access control (auth_setup.c): loading the key file, the
 * session secret, the one log line that states who is served, and the
 * `jobwire hash-key` command.
 */
#ifndef JOBWIRE_AUTH_SETUP_H
#define JOBWIRE_AUTH_SETUP_H

#include <stddef.h>

#include "jobwire/app.h"
#include "jobwire/auth.h"

/*
 * Loads the key file named by the configuration into ring (when there is
 * one), points app at it, and sets the session secret. Returns 0, or -1
 * with "JOBWIRE_API_KEYS_FILE: <file>: line N: reason" in err.
 */
int jw_auth_setup(jw_app_t *app, jw_keyring_t *ring, char *err, size_t errlen);

/* Logs who is served: keys, loopback only, or everyone (with a warning). */
void jw_auth_log_mode(const jw_app_t *app);

/* `jobwire hash-key [KEY]`: prints the sha256: form of KEY, read from
 * standard input when not given. Returns the exit status. */
int jw_auth_hash_key_command(int argc, char **argv);

#endif
