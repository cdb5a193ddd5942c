#ifndef PETREL_CLI_CLI_H
#define PETREL_CLI_CLI_H
/*
 * cli.h: the subcommands. Each takes main()'s argc/argv shifted so that
 * argv[0] is the subcommand name, and returns the process exit status.
 */
#define CLI_DEFAULT_CONFIG	"etc/petrel.conf"

#include <stddef.h>

#include "core/config.h"
#include "core/table.h"

int	cli_serve(int argc, char **argv);
int	cli_check(int argc, char **argv);
int	cli_passwd(int argc, char **argv);

/* "-c FILE" from argv (argv[0] is the subcommand); NULL on a bad option. */
const char *cli_config_path(int argc, char **argv);
/*
 * Load the users and aliases tables named by cfg (an empty table when a
 * file is not configured). 0, or -1 with err set; on success the caller
 * frees both with table_free().
 */
int	cli_load_tables(const struct config *cfg, struct table **users,
	    struct table **aliases, char *err, size_t errlen);

#endif
