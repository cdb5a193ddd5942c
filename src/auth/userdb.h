#ifndef PETREL_AUTH_USERDB_H
#define PETREL_AUTH_USERDB_H
/*
 * userdb.h: login credentials in the user table. A user line is
 *   user@domain <crypt-hash> [scram-sha-256:<iter>:<salt>:<stored>:<server>]
 * (the value after the key, as table.h returns it). Checks run on a
 * worker thread: crypt(3) is slow on purpose.
 */
#include <stdbool.h>
#include <stddef.h>

#include "auth/sasl.h"
#include "core/table.h"

/*
 * Check password against the crypt hash stored for user in users
 * (crypt_r; constant-time compare). Blocking. False for an unknown user
 * or a user without a hash (a dummy hash is still computed so timing does
 * not tell which).
 */
bool	userdb_check_password(const struct table *users, const char *user,
	    const char *password);
/* SCRAM credentials stored for user: 0, or -1 if none. */
int	userdb_scram(const struct table *users, const char *user,
	    struct sasl_scram_creds *out);
/*
 * Make the value of a user line for password: a yescrypt hash (or
 * SHA-512-crypt where yescrypt is missing) and SCRAM-SHA-256 keys.
 * Caller frees. NULL on failure.
 */
char	*userdb_make_entry(const char *password);
/*
 * Set user's line in the users file at path to value, replacing an
 * existing line for user or appending one; written to a temp file, synced
 * and renamed over the old one, keeping comments and other lines.
 * 0, or -1 with err set.
 */
int	userdb_file_set(const char *path, const char *user, const char *value,
	    char *err, size_t errlen);

#endif
