/*
 * passwd.c: "petrel passwd [-c FILE] USER": read a password (twice, with
 * echo off, from a terminal; one line from a pipe) and set USER's hash
 * and SCRAM keys in the users file. Never prints or logs the password.
 */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "auth/sasl.h"
#include "auth/userdb.h"
#include "core/util.h"

#define PASSWD_BUF	(SASL_PASS_MAX + 2)	/* room to notice too long */

/*
 * The terminal settings to put back if a signal arrives while echo is
 * off; set and cleared around each prompt. Only this command uses them.
 */
static struct termios		 passwd_saved_tty;
static volatile sig_atomic_t	 passwd_tty_off;

static void
passwd_on_signal(int sig)
{
	if (passwd_tty_off)
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &passwd_saved_tty);
	/* SA_RESETHAND restored the default action: die of the signal */
	raise(sig);
}

/*
 * Read one line from fd 0 into buf (cap bytes) without its "\n" or
 * "\r\n". Returns the length, or -1 (message printed) on a read error,
 * NUL byte or a line longer than SASL_PASS_MAX.
 */
static long
passwd_read_line(char *buf, size_t cap)
{
	size_t	 len = 0;
	bool	 too_long = false, nul = false;
	ssize_t	 n;
	char	 c;

	for (;;) {
		n = read(STDIN_FILENO, &c, 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			fprintf(stderr, "petrel: reading the password: %s\n",
			    strerror(errno));
			return -1;
		}
		if (n == 0 || c == '\n')
			break;
		if (c == '\0')
			nul = true;
		if (len < cap - 1)
			buf[len++] = c;
		else
			too_long = true;
	}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	if (nul) {
		fprintf(stderr, "petrel: NUL byte in the password\n");
		return -1;
	}
	if (too_long || len > SASL_PASS_MAX) {
		fprintf(stderr, "petrel: password longer than %d bytes\n",
		    SASL_PASS_MAX);
		return -1;
	}
	return (long)len;
}

/* Prompt on stderr and read a line from the terminal with echo off. */
static long
passwd_read_tty(const char *prompt, char *buf, size_t cap)
{
	struct termios quiet;
	long	 n;

	fprintf(stderr, "%s", prompt);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &passwd_saved_tty) == -1) {
		fprintf(stderr, "\npetrel: terminal: %s\n", strerror(errno));
		return -1;
	}
	quiet = passwd_saved_tty;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;	/* still show the Enter */
	passwd_tty_off = 1;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == -1) {
		passwd_tty_off = 0;
		fprintf(stderr, "\npetrel: terminal: %s\n", strerror(errno));
		return -1;
	}
	n = passwd_read_line(buf, cap);
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &passwd_saved_tty);
	passwd_tty_off = 0;
	return n;
}

/* The password into buf (PASSWD_BUF bytes); 0 or -1 (message printed). */
static int
passwd_get(char *buf, char *again)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	struct sigaction sa;

	if (!isatty(STDIN_FILENO)) {
		if (passwd_read_line(buf, PASSWD_BUF) == -1)
			return -1;
		goto check;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = passwd_on_signal;
	sa.sa_flags = SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_LEN(sigs); i++)
		(void)sigaction(sigs[i], &sa, NULL);
	if (passwd_read_tty("Password: ", buf, PASSWD_BUF) == -1 ||
	    passwd_read_tty("Retype password: ", again, PASSWD_BUF) == -1)
		return -1;
	if (strcmp(buf, again) != 0) {
		fprintf(stderr, "petrel: passwords do not match\n");
		return -1;
	}
check:
	if (buf[0] == '\0') {
		fprintf(stderr, "petrel: empty password refused\n");
		return -1;
	}
	return 0;
}

/*
 * "user@domain" (domain must be local) or "user" (at the first local
 * domain), lowercased as the table keys are. NULL (message printed) if
 * invalid; caller frees.
 */
static char *
passwd_address(const struct config *cfg, const char *path, const char *arg)
{
	const char *at = strrchr(arg, '@');
	char	*addr;

	if (arg[0] == '\0' || at == arg || (at != NULL && at[1] == '\0')) {
		fprintf(stderr, "petrel: invalid user '%s'\n", arg);
		return NULL;
	}
	if (at != NULL)
		addr = str_lower(xstrdup(arg));
	else if (cfg->domains_len == 0) {
		fprintf(stderr, "petrel: %s: no local domain for '%s'\n",
		    path, arg);
		return NULL;
	} else
		addr = str_lower(xasprintf("%s@%s", arg, cfg->domains[0]));
	if (!config_local_domain(cfg, strrchr(addr, '@') + 1)) {
		fprintf(stderr, "petrel: %s is not a local domain (see "
		    "[local] domains in %s)\n", strrchr(addr, '@') + 1, path);
		free(addr);
		return NULL;
	}
	return addr;
}

int
cli_passwd(int argc, char **argv)
{
	const char	*path = CLI_DEFAULT_CONFIG;
	struct config	*cfg = NULL;
	char		*addr = NULL, *entry = NULL;
	char		 pw[PASSWD_BUF], again[PASSWD_BUF], err[8192];
	int		 ch, rc = 1;

	optind = 1;
	while ((ch = getopt(argc, argv, "c:")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (argc - optind != 1)
		goto usage;

	pw[0] = again[0] = '\0';
	if (config_load(path, &cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s", err);
		if (err[0] != '\0' && err[strlen(err) - 1] != '\n')
			fputc('\n', stderr);
		goto out;
	}
	if (cfg->users_file == NULL) {
		fprintf(stderr, "petrel: %s: no users_file in [local]\n", path);
		goto out;
	}
	if ((addr = passwd_address(cfg, path, argv[optind])) == NULL)
		goto out;
	if (passwd_get(pw, again) == -1)
		goto out;
	if ((entry = userdb_make_entry(pw)) == NULL) {
		fprintf(stderr, "petrel: cannot hash the password\n");
		goto out;
	}
	if (userdb_file_set(cfg->users_file, addr, entry, err, sizeof(err))
	    == -1) {
		fprintf(stderr, "petrel: %s\n", err);
		goto out;
	}
	printf("petrel: password set for %s in %s\n", addr, cfg->users_file);
	rc = 0;
out:
	OPENSSL_cleanse(pw, sizeof(pw));
	OPENSSL_cleanse(again, sizeof(again));
	free(entry);
	free(addr);
	config_free(cfg);
	return rc;
usage:
	fprintf(stderr, "usage: petrel passwd [-c FILE] USER[@DOMAIN]\n");
	return 2;
}
