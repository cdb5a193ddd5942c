/*
 * fuzz_local.c: local routing fed arbitrary tables and addresses: the
 * aliases and users files (through the table loader), alias expansion
 * with its loop and size limits, the mailbox -> Maildir path mapping and
 * the lmtp_routes lookup. Input: "addr\0aliases\0users\0lmtp_routes".
 * Beyond not crashing or leaking, it checks what routing promises: a
 * mailbox is a lowercase address in a local domain, listed once, and its
 * path is exactly <mail_dir>/<domain>/<user>/Maildir with no component
 * that could climb out of mail_dir (the path names where mail is
 * written: a "../" there would be a write anywhere).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/table.h"
#include "core/util.h"
#include "deliver/local.h"
#include "deliver/remote.h"

#include "fuzz_part.h"

#define MAIL_DIR	"/srv/mail"

static const char *const domains[] = { "localhost", "example.org" };

static char	 apath[] = "/tmp/petrel-fuzz-aliases-XXXXXX";
static char	 upath[] = "/tmp/petrel-fuzz-users-XXXXXX";
static int	 afd = -1, ufd = -1;

static void
rm_files(void)
{
	unlink(apath);
	unlink(upath);
}

static struct table *
load(int fd, const char *path, const char *text)
{
	struct table	*t = NULL;
	char		 err[512];
	size_t		 n = strlen(text);

	if (ftruncate(fd, 0) == -1 || pwrite(fd, text, n, 0) != (ssize_t)n)
		abort();
	if (table_load(path, 0, &t, err, sizeof(err)) == -1) {
		if (err[0] == '\0')
			abort();	/* a refusal says why */
		return table_empty();
	}
	return t;
}

/* A component of a Maildir path: what local_maildir_path() promises. */
static void
check_component(const char *s, size_t len)
{
	if (len == 0 || s[0] == '.')
		abort();
	for (size_t i = 0; i < len; i++)
		if (s[i] == '/' || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

/* If mailbox maps to a path, it is <MAIL_DIR>/<domain>/<user>/Maildir. */
static void
check_path(const char *mailbox)
{
	char		 path[4096], want[4096];
	const char	*at;

	if (local_maildir_path(MAIL_DIR, mailbox, path, sizeof(path)) == -1)
		return;
	if ((at = strrchr(mailbox, '@')) == NULL)
		abort();
	check_component(mailbox, (size_t)(at - mailbox));
	check_component(at + 1, strlen(at + 1));
	snprintf(want, sizeof(want), "%s/%s/%.*s/Maildir", MAIL_DIR, at + 1,
	    (int)(at - mailbox), mailbox);
	if (strcmp(path, want) != 0 || strstr(path, "/../") != NULL ||
	    strstr(path, "/./") != NULL || strstr(path, "//") != NULL)
		abort();
}

static void
check_mailboxes(const struct local_db *db, const struct strlist *mb)
{
	for (size_t i = 0; i < mb->len; i++) {
		const char *m = mb->v[i], *at = strrchr(m, '@');

		if (at == NULL || !local_is_domain(db, at + 1))
			abort();
		for (const char *c = m; *c != '\0'; c++)
			if (*c >= 'A' && *c <= 'Z')
				abort();	/* lowercased */
		for (size_t k = 0; k < i; k++)
			if (strcmp(mb->v[k], m) == 0)
				abort();	/* deduplicated */
		check_path(m);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t	*p = data, *end = data + size;
	char		*addr, *aliases, *users, *routes, buf[300];
	struct table	*at, *ut;
	struct strlist	 mb = { 0 }, rem = { 0 };
	struct config	 cfg;
	struct local_db	 db;
	const char	*r;

	if (afd == -1) {
		if ((afd = mkstemp(apath)) == -1 ||
		    (ufd = mkstemp(upath)) == -1)
			abort();
		atexit(rm_files);
	}
	addr = fuzz_part(&p, end);
	aliases = fuzz_part(&p, end);
	users = fuzz_part(&p, end);
	routes = fuzz_part(&p, end);
	at = load(afd, apath, aliases);
	ut = load(ufd, upath, users);
	db = (struct local_db){ .domains = domains,
	    .domains_len = ARRAY_LEN(domains),
	    .users = ut, .aliases = at };

	switch (local_resolve(&db, addr, &mb, &rem)) {
	case LOCAL_OK:
		if (mb.len + rem.len == 0)
			abort();	/* OK means somewhere to go */
		/* FALLTHROUGH */
	case LOCAL_NOT_LOCAL:
	case LOCAL_UNKNOWN:
	case LOCAL_LOOP:
		break;
	default:
		abort();
	}
	if (mb.len > LOCAL_EXPAND_MAX || rem.len > LOCAL_EXPAND_MAX)
		abort();
	check_mailboxes(&db, &mb);
	check_path(addr);	/* the mapping alone, on raw input too */

	/* lmtp_routes: what a lookup returns is a piece of the value */
	memset(&cfg, 0, sizeof(cfg));
	cfg.lmtp_routes = routes;
	for (size_t i = 0; i <= mb.len; i++) {
		const char *who = i < mb.len ? mb.v[i] : addr;

		r = remote_lmtp_route(&cfg, who, buf, sizeof(buf));
		if (r != NULL && (r != buf || strlen(buf) >= sizeof(buf) ||
		    buf[0] == '\0' || strstr(routes, buf) == NULL))
			abort();
	}
	(void)remote_lmtp_check(&cfg, buf, sizeof(buf));

	strlist_free(&mb);
	strlist_free(&rem);
	table_free(at);
	table_free(ut);
	free(addr);
	free(aliases);
	free(users);
	free(routes);
	return 0;
}
