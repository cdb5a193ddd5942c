/*
 * fuzz_smtp_parse.c: libFuzzer target for smtp/parse.c. The input is one
 * command line, copied to a buffer of exactly size bytes with no NUL so a
 * read past len trips ASan; results are checked against invariants.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/parse.h"

/* Not assert(): must hold under NDEBUG too. */
#define CHECK(x)	do { if (!(x)) abort(); } while (0)

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* memchr() without its non-NULL rule for an empty buffer. */
static bool
has_byte(const char *s, size_t len, char c)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (s[i] == c)
			return true;
	return false;
}

/* An accepted address is well-formed and parses again to itself. */
static void
check_addr(const struct smtp_addr *a)
{
	struct smtp_addr b;
	char		 path[SMTP_PATH_MAX + 3];
	const char	*dom;
	size_t		 len = strnlen(a->addr, sizeof(a->addr));

	CHECK(len <= SMTP_PATH_MAX - 2);
	CHECK(a->local_len <= len);
	dom = smtp_addr_domain(a);
	if (*dom == '\0')
		return;		/* null path or <postmaster> */
	CHECK(a->addr[a->local_len] == '@');
	CHECK(dom == a->addr + a->local_len + 1);
	CHECK(a->local_len >= 1 && a->local_len <= SMTP_LOCAL_MAX);
	CHECK(strlen(dom) <= SMTP_DOMAIN_MAX);
	for (; *dom != '\0'; dom++)
		CHECK(*dom < 'A' || *dom > 'Z');

	path[0] = '<';
	memcpy(path + 1, a->addr, len);
	path[len + 1] = '>';
	CHECK(smtp_parse_path(path, len + 2, false, &b) == SMTP_PARSE_OK);
	CHECK(strcmp(a->addr, b.addr) == 0);
	CHECK(a->local_len == b.local_len);
	CHECK(!b.had_route);
	CHECK(!b.utf8 || a->utf8);
}

static void
fuzz_mail(const char *s, size_t len)
{
	struct smtp_mail_cmd m;

	if (smtp_parse_mail(s, len, &m) != SMTP_PARSE_OK)
		return;
	check_addr(&m.from);
	CHECK(!m.from.utf8 || m.smtputf8);
	CHECK(strlen(m.envid) <= SMTP_ENVID_MAX);
	CHECK(smtp_xtext_valid(m.envid, strlen(m.envid), SMTP_ENVID_MAX));
	CHECK(smtp_xtext_valid(m.auth, strlen(m.auth), SMTP_AUTH_PARAM_MAX));
}

static void
fuzz_rcpt(const char *s, size_t len)
{
	struct smtp_rcpt_cmd r, r8;
	int		 rc, rc8;

	rc = smtp_parse_rcpt(s, len, false, &r);
	rc8 = smtp_parse_rcpt(s, len, true, &r8);
	/* SMTPUTF8 on MAIL only ever turns UTF8 into OK. */
	CHECK(rc == rc8 || (rc == SMTP_PARSE_UTF8 && rc8 == SMTP_PARSE_OK));
	if (rc8 != SMTP_PARSE_OK)
		return;
	check_addr(&r8.to);
	CHECK(r8.to.addr[0] != '\0');
	CHECK((r8.notify & SMTP_NOTIFY_NEVER) == 0 ||
	    r8.notify == SMTP_NOTIFY_NEVER);
	CHECK(strlen(r8.orcpt) <= SMTP_ORCPT_MAX);
	if (rc == SMTP_PARSE_OK)
		CHECK(strcmp(r.to.addr, r8.to.addr) == 0 && !r.to.utf8);
}

static void
fuzz_path(const char *s, size_t len)
{
	struct smtp_addr a;
	int		 rc, rc_null;

	rc = smtp_parse_path(s, len, false, &a);
	if (rc == SMTP_PARSE_OK) {
		check_addr(&a);
		CHECK(a.addr[0] != '\0');
	}
	rc_null = smtp_parse_path(s, len, true, &a);
	if (rc_null == SMTP_PARSE_OK)
		check_addr(&a);
	CHECK(rc == rc_null || (len == 2 && rc_null == SMTP_PARSE_OK));
}

static void
fuzz_xtext(const char *s, size_t len)
{
	char	*out;
	long	 n;
	bool	 valid;

	valid = smtp_xtext_valid(s, len, len);
	if ((out = malloc(len + 1)) == NULL)
		return;
	n = smtp_xtext_decode(s, len, out, len + 1);
	CHECK(valid == (n >= 0));
	CHECK(n <= (long)len);
	if (n >= 0)
		CHECK(out[n] == '\0');
	if (len > 0)
		CHECK(!smtp_xtext_valid(s, len, len - 1));
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_cmd	 c;
	char		*buf;

	if ((buf = malloc(size)) == NULL && size != 0)
		return 0;
	if (size != 0)
		memcpy(buf, data, size);

	if (smtp_parse_cmd(buf, size, &c) == SMTP_PARSE_OK) {
		CHECK(!has_byte(buf, size, '\r'));
		CHECK(!has_byte(buf, size, '\n'));
		CHECK(!has_byte(buf, size, '\0'));
		CHECK(c.arg_len <= size);
		CHECK(c.arg + c.arg_len == buf + size);
		switch (c.verb) {
		case SMTP_CMD_MAIL:
			fuzz_mail(c.arg, c.arg_len);
			break;
		case SMTP_CMD_RCPT:
			fuzz_rcpt(c.arg, c.arg_len);
			break;
		case SMTP_CMD_VRFY:
		case SMTP_CMD_EXPN:
			fuzz_path(c.arg, c.arg_len);
			break;
		case SMTP_CMD_HELO:
		case SMTP_CMD_EHLO:
			(void)smtp_helo_valid(c.arg, c.arg_len);
			break;
		default:
			break;
		}
	} else
		CHECK(has_byte(buf, size, '\r') || has_byte(buf, size, '\n') ||
		    has_byte(buf, size, '\0'));

	/* The whole input through every parser, line rules or not. */
	fuzz_mail(buf, size);
	fuzz_rcpt(buf, size);
	fuzz_path(buf, size);
	(void)smtp_helo_valid(buf, size);
	fuzz_xtext(buf, size);

	free(buf);
	return 0;
}
