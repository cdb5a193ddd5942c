/*
 * main.c: subcommand dispatch only.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
	const char	*name;
	int		(*fn)(int, char **);
	const char	*help;
} commands[] = {
	{ "serve", cli_serve, "run the mail server in the foreground" },
	{ "check", cli_check, "validate a configuration file" },
	{ "passwd", cli_passwd, "set a user's password in the users table" },
};

static int
usage(FILE *f)
{
	fprintf(f, "usage: petrel COMMAND [-c FILE]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n-c FILE  configuration (default %s)\n",
	    CLI_DEFAULT_CONFIG);
	return f == stderr ? 2 : 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0)
		return usage(stdout);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "petrel: unknown command '%s'\n", argv[1]);
	return usage(stderr);
}
