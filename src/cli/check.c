/*
 * check.c: "petrel check [-c FILE]": validate a configuration, the
 * tables and the TLS files it names; print every error with file, line
 * and key. Creates nothing.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "deliver/remote.h"

#include "net/tls.h"

const char *
cli_config_path(int argc, char **argv)
{
	const char *path = CLI_DEFAULT_CONFIG;
	int	 ch;

	optind = 1;
	while ((ch = getopt(argc, argv, "c:")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		default:
			return NULL;
		}
	}
	if (optind != argc)
		return NULL;
	return path;
}

int
cli_load_tables(const struct config *cfg, struct table **users,
    struct table **aliases, char *err, size_t errlen)
{
	*users = *aliases = NULL;
	if (cfg->users_file != NULL) {
		if (table_load(cfg->users_file, 0, users, err, errlen) == -1)
			return -1;
	} else
		*users = table_empty();
	if (cfg->aliases_file != NULL) {
		if (table_load(cfg->aliases_file, 0, aliases, err, errlen)
		    == -1) {
			table_free(*users);
			*users = NULL;
			return -1;
		}
	} else
		*aliases = table_empty();
	return 0;
}

int
cli_check(int argc, char **argv)
{
	const char	*path;
	struct config	*cfg = NULL;
	struct table	*users = NULL, *aliases = NULL;
	char		 err[8192];
	int		 rc = 1;

	if ((path = cli_config_path(argc, argv)) == NULL) {
		fprintf(stderr, "usage: petrel check [-c FILE]\n");
		return 2;
	}
	if (config_load(path, &cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s", err);
		if (err[0] != '\0' && err[strlen(err) - 1] != '\n')
			fputc('\n', stderr);
		return 1;
	}
	if (cli_load_tables(cfg, &users, &aliases, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	/* Certificates, keys, ciphers; without cert_file the self-signed
	   one is made by "petrel serve", not here. */
	if (tls_check(cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	if (remote_lmtp_check(cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", path, err);
		table_free(users);
		table_free(aliases);
		config_free(cfg);
		return 1;
	}
	printf("%s: ok\n", path);
	rc = 0;
out:
	table_free(users);
	table_free(aliases);
	config_free(cfg);
	return rc;
}
