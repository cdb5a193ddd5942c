/*
 * test_smtp_parse.c: command split, paths, MAIL/RCPT parameters, xtext and
 * HELO arguments. Inputs are copied to exact-size buffers so ASan catches
 * any read past len.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/parse.h"

#define IN(x)		.in = (x), .len = sizeof(x) - 1
#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

#define OK		SMTP_PARSE_OK
#define SYNTAX		SMTP_PARSE_SYNTAX
#define ADDR		SMTP_PARSE_ADDR
#define LONG		SMTP_PARSE_ADDR_LONG
#define UNKNOWN		SMTP_PARSE_PARAM_UNKNOWN
#define PSYNTAX		SMTP_PARSE_PARAM_SYNTAX
#define UTF8		SMTP_PARSE_UTF8
#define BODY		SMTP_PARSE_BODY

/* A copy of s in a buffer of exactly len bytes, no NUL. Caller frees. */
static char *
exact(const char *s, size_t len)
{
	char	*p = malloc(len == 0 ? 1 : len);

	assert_non_null(p);
	memcpy(p, s, len);
	return p;
}

/* Fill out[0..n) with a valid domain of n bytes: 'a' labels of <= 62. */
static void
make_domain(char *out, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		out[i] = i % 63 == 62 ? '.' : 'a';
	if (out[n - 1] == '.') {
		out[n - 1] = 'a';
		out[n - 2] = '.';
	}
	out[n] = '\0';
}

/* "<" local "@" domain ">" with an n-byte local part and m-byte domain. */
static size_t
make_path(char *out, size_t n, size_t m)
{
	out[0] = '<';
	memset(out + 1, 'l', n);
	out[1 + n] = '@';
	make_domain(out + 2 + n, m);
	out[2 + n + m] = '>';
	out[3 + n + m] = '\0';
	return 3 + n + m;
}

static const struct cmd_case {
	const char	*in;
	size_t		 len;
	int		 rc;
	enum smtp_verb	 verb;
	const char	*arg;
} cmd_cases[] = {
	{ IN("HELO mail.example"), OK, SMTP_CMD_HELO, "mail.example" },
	{ IN("ehlo x"), OK, SMTP_CMD_EHLO, "x" },
	{ IN("MAIL FROM:<a@b> SIZE=10"), OK, SMTP_CMD_MAIL,
	  "FROM:<a@b> SIZE=10" },
	{ IN("rcpt TO:<a@b>"), OK, SMTP_CMD_RCPT, "TO:<a@b>" },
	{ IN("DATA"), OK, SMTP_CMD_DATA, "" },
	{ IN("BDAT 100 LAST"), OK, SMTP_CMD_BDAT, "100 LAST" },
	{ IN("RSET"), OK, SMTP_CMD_RSET, "" },
	{ IN("NOOP"), OK, SMTP_CMD_NOOP, "" },
	{ IN("NOOP "), OK, SMTP_CMD_NOOP, "" },
	{ IN("QuIt"), OK, SMTP_CMD_QUIT, "" },
	{ IN("VRFY <a@b>"), OK, SMTP_CMD_VRFY, "<a@b>" },
	{ IN("EXPN list"), OK, SMTP_CMD_EXPN, "list" },
	{ IN("HELP"), OK, SMTP_CMD_HELP, "" },
	{ IN("StartTLS"), OK, SMTP_CMD_STARTTLS, "" },
	{ IN("AUTH PLAIN AGEAYg=="), OK, SMTP_CMD_AUTH, "PLAIN AGEAYg==" },
	{ IN("HELO  x"), OK, SMTP_CMD_HELO, " x" },	/* one SP eaten */
	{ IN("HELO x\ty"), OK, SMTP_CMD_HELO, "x\ty" },
	{ IN(""), OK, SMTP_CMD_UNKNOWN, "" },
	{ IN(" "), OK, SMTP_CMD_UNKNOWN, "" },
	{ IN(" HELO x"), OK, SMTP_CMD_UNKNOWN, "HELO x" },
	{ IN("FOO bar"), OK, SMTP_CMD_UNKNOWN, "bar" },
	{ IN("MAILFROM:<a@b>"), OK, SMTP_CMD_UNKNOWN, "" },
	{ IN("DAT"), OK, SMTP_CMD_UNKNOWN, "" },
	{ IN("DATAX"), OK, SMTP_CMD_UNKNOWN, "" },
	{ IN("STARTTLSX"), OK, SMTP_CMD_UNKNOWN, "" },
	{ IN("NOOP\tx"), OK, SMTP_CMD_UNKNOWN, "" },
	{ IN("NOOP\r"), SYNTAX, 0, NULL },
	{ IN("NO\nOP"), SYNTAX, 0, NULL },
	{ IN("NOOP \rx"), SYNTAX, 0, NULL },
	{ IN("HELO x\0y"), SYNTAX, 0, NULL },
	{ IN("\0"), SYNTAX, 0, NULL },
	{ IN("\r"), SYNTAX, 0, NULL },
	{ IN("\n"), SYNTAX, 0, NULL },
	{ IN("DATA\r\n"), SYNTAX, 0, NULL },
};

static void
test_cmd(void **state)
{
	struct smtp_cmd	 c;
	size_t		 i;

	(void)state;
	for (i = 0; i < NELEM(cmd_cases); i++) {
		const struct cmd_case *tc = &cmd_cases[i];
		char	*buf = exact(tc->in, tc->len);
		int	 rc = smtp_parse_cmd(buf, tc->len, &c);

		if (rc != tc->rc)
			print_message("cmd case %zu\n", i);
		assert_int_equal(rc, tc->rc);
		if (rc == OK) {
			assert_int_equal(c.verb, tc->verb);
			assert_int_equal(c.arg_len, strlen(tc->arg));
			assert_memory_equal(c.arg, tc->arg, c.arg_len);
			assert_true(c.arg >= buf && c.arg <= buf + tc->len);
			assert_ptr_equal(c.arg + c.arg_len, buf + tc->len);
		}
		free(buf);
	}
}

static const struct path_case {
	const char	*in;
	size_t		 len;
	bool		 allow_null;
	int		 rc;
	const char	*addr;
	size_t		 local_len;
	bool		 utf8;
	bool		 route;
} path_cases[] = {
	{ IN("<a@b>"), false, OK, "a@b", 1, false, false },
	{ IN("<John.Doe@Mail.Example.COM>"), false, OK,
	  "John.Doe@mail.example.com", 8, false, false },
	{ IN("<>"), true, OK, "", 0, false, false },
	{ IN("<>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@localhost>"), false, OK, "a@localhost", 1, false, false },
	{ IN("<a@B-C.1-2.example>"), false, OK, "a@b-c.1-2.example", 1,
	  false, false },
	{ IN("<a@123.example>"), false, OK, "a@123.example", 1, false, false },
	{ IN("<!#$%&'*+-/=?^_`{|}~@x>"), false, OK,
	  "!#$%&'*+-/=?^_`{|}~@x", 19, false, false },
	{ IN("<a%b@relay>"), false, OK, "a%b@relay", 3, false, false },
	{ IN("<host!user@relay>"), false, OK, "host!user@relay", 9, false,
	  false },
	/* RFC 5321 4.1.2 / C: the source route is dropped. */
	{ IN("<@a.example,@b.example:u@C.example>"), false, OK,
	  "u@c.example", 1, false, true },
	{ IN("<@a:u@c>"), false, OK, "u@c", 1, false, true },
	/* Quoted local parts: unquoted when they need no quotes. */
	{ IN("<\"john.doe\"@x>"), false, OK, "john.doe@x", 8, false, false },
	{ IN("<\"\\j\\o\"@x>"), false, OK, "jo@x", 2, false, false },
	{ IN("<\"a b\"@x>"), false, OK, "\"a b\"@x", 5, false, false },
	{ IN("<\"a..b\"@x>"), false, OK, "\"a..b\"@x", 6, false, false },
	{ IN("<\".a\"@x>"), false, OK, "\".a\"@x", 4, false, false },
	{ IN("<\"a@b\"@c>"), false, OK, "\"a@b\"@c", 5, false, false },
	{ IN("<\"a>b\"@c>"), false, OK, "\"a>b\"@c", 5, false, false },
	{ IN("<\"a\\\"b\"@x>"), false, OK, "\"a\\\"b\"@x", 6, false, false },
	{ IN("<\"a\\\\b\"@x>"), false, OK, "\"a\\\\b\"@x", 6, false, false },
	{ IN("<\" \"@x>"), false, OK, "\" \"@x", 3, false, false },
	/* Address literals (RFC 5321 4.1.3). */
	{ IN("<a@[192.0.2.1]>"), false, OK, "a@[192.0.2.1]", 1, false, false },
	{ IN("<a@[IPv6:::1]>"), false, OK, "a@[ipv6:::1]", 1, false, false },
	{ IN("<a@[ipv6:2001:DB8::1]>"), false, OK, "a@[ipv6:2001:db8::1]", 1,
	  false, false },
	{ IN("<a@[IPv6:::ffff:192.0.2.1]>"), false, OK,
	  "a@[ipv6:::ffff:192.0.2.1]", 1, false, false },
	/* RFC 6531 UTF-8. */
	{ IN("<jörg@bücher.de>"), false, OK, "jörg@bücher.de", 5, true,
	  false },
	{ IN("<a@Bü.DE>"), false, OK, "a@bü.de", 1, true, false },
	{ IN("<\"jö rg\"@x>"), false, OK, "\"jö rg\"@x", 8, true, false },
	{ IN("<\"jörg\"@x>"), false, OK, "jörg@x", 5, true, false },
	{ IN("<\xf0\x9f\x98\x80@x>"), false, OK, "\xf0\x9f\x98\x80@x", 4,
	  true, false },
	{ IN("<\xef\xbf\xbf@x>"), false, OK, "\xef\xbf\xbf@x", 3, true,
	  false },
	{ IN("<@bü.de:a@x>"), false, OK, "a@x", 1, true, true },
	/* Framing. */
	{ IN(""), true, ADDR, NULL, 0, false, false },
	{ IN("<"), true, ADDR, NULL, 0, false, false },
	{ IN(">"), true, ADDR, NULL, 0, false, false },
	{ IN("a@b"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@b"), false, ADDR, NULL, 0, false, false },
	{ IN("a@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@b> "), false, ADDR, NULL, 0, false, false },
	{ IN(" <a@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@b>x"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@b>>"), false, ADDR, NULL, 0, false, false },
	{ IN("<<a@b>>"), false, ADDR, NULL, 0, false, false },
	{ IN("< >"), true, ADDR, NULL, 0, false, false },
	/* Local part. */
	{ IN("<a>"), false, ADDR, NULL, 0, false, false },
	{ IN("<postmaster>"), false, ADDR, NULL, 0, false, false },
	{ IN("<@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@>"), false, ADDR, NULL, 0, false, false },
	{ IN("<.a@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a.@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a..b@c>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a b@c>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@b@c>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a(b)@c>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\"\"@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\"a@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\"a\"b@c>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a\"b\"@c>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\"a\"\"b\"@c>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\"a\\\"@c>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a\x01@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a\x7f@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a\0@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\"a\x01\"@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\"a\t\"@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\"a\\\x01\"@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\"\\\xc3\xa9\"@b>"), false, ADDR, NULL, 0, false, false },
	/* Bad UTF-8: truncated, overlong, surrogate, too big, stray. */
	{ IN("<\xc3@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\xc0\xaf@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\xc1\xbf@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\xe0\x80\xaf@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\xed\xa0\x80@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\xf0\x80\x80\xaf@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\xf4\x90\x80\x80@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\xf5\x80\x80\x80@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\x80@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\xe2\x82@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<\"\xff\"@b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@b\xc3>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@\xff.de>"), false, ADDR, NULL, 0, false, false },
	/* Domain. */
	{ IN("<a@-b.c>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@b-.c>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@b..c>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@.b>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@b.>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@b_c.d>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@b c>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@b\0c>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@[1.2.3]>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@[1.2.3.256]>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@[01.2.3.4]>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@[1.2.3.4.5]>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@[ 1.2.3.4]>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@[IPv6:1.2.3.4]>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@[IPv6:::g]>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@[IPv6:1::2::3]>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@[IPv6:]>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@[::1]>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@[x-tag:content]>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@[]>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@[>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@[1.2.3.4>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@1.2.3.4]>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@[1.2.3.4]x>"), false, ADDR, NULL, 0, false, false },
	{ IN("<a@[1.2.3.4\0]>"), false, ADDR, NULL, 0, false, false },
	/* Source routes. */
	{ IN("<@a:>"), false, ADDR, NULL, 0, false, false },
	{ IN("<@:c@d>"), false, ADDR, NULL, 0, false, false },
	{ IN("<@a,b:c@d>"), false, ADDR, NULL, 0, false, false },
	{ IN("<@a,:c@d>"), false, ADDR, NULL, 0, false, false },
	{ IN("<@a,@:c@d>"), false, ADDR, NULL, 0, false, false },
	{ IN("<@a c@d>"), false, ADDR, NULL, 0, false, false },
	{ IN("<@a@b:c@d>"), false, ADDR, NULL, 0, false, false },
	{ IN("<@[1.2.3.4]:c@d>"), false, ADDR, NULL, 0, false, false },
	{ IN("<@a:@b:c@d>"), false, ADDR, NULL, 0, false, false },
};

static void
check_addr(const struct smtp_addr *a, const char *addr, size_t local_len)
{
	const char	*dom = strchr(addr + local_len, '@');

	assert_string_equal(a->addr, addr);
	assert_int_equal(a->local_len, local_len);
	assert_string_equal(smtp_addr_domain(a), dom == NULL ? "" : dom + 1);
}

static void
test_path(void **state)
{
	struct smtp_addr a;
	size_t		 i;

	(void)state;
	for (i = 0; i < NELEM(path_cases); i++) {
		const struct path_case *tc = &path_cases[i];
		char	*buf = exact(tc->in, tc->len);
		int	 rc = smtp_parse_path(buf, tc->len, tc->allow_null, &a);

		if (rc != tc->rc)
			print_message("path case %zu: %s\n", i, tc->in);
		assert_int_equal(rc, tc->rc);
		if (rc == OK) {
			check_addr(&a, tc->addr, tc->local_len);
			assert_int_equal(a.utf8, tc->utf8);
			assert_int_equal(a.had_route, tc->route);
		}
		free(buf);
	}
}

/* Parse the NUL-terminated path p from an exact-size copy. */
static int
parse_path_exact(const char *p, bool allow_null, struct smtp_addr *a)
{
	size_t	 len = strlen(p);
	char	*buf = exact(p, len);
	int	 rc = smtp_parse_path(buf, len, allow_null, a);

	free(buf);
	return rc;
}

static void
test_path_limits(void **state)
{
	struct smtp_addr a;
	char		 p[600], q[80];
	size_t		 n;

	(void)state;
	/* RFC 5321 4.5.3.1.1: local part 64 octets. */
	make_path(p, 64, 1);
	assert_int_equal(parse_path_exact(p, false, &a), OK);
	assert_int_equal(a.local_len, 64);
	make_path(p, 65, 1);
	assert_int_equal(parse_path_exact(p, false, &a), LONG);
	/* Counted as sent: quotes included, 62 + 2 fits, 63 + 2 does not. */
	memset(q, 'q', 62);
	q[62] = '\0';
	snprintf(p, sizeof(p), "<\"%s\"@x>", q);
	assert_int_equal(parse_path_exact(p, false, &a), OK);
	assert_int_equal(a.local_len, 62);	/* unquoted */
	snprintf(p, sizeof(p), "<\"%sq\"@x>", q);
	assert_int_equal(parse_path_exact(p, false, &a), LONG);
	snprintf(p, sizeof(p), "<\"%s \"@x>", q);
	assert_int_equal(parse_path_exact(p, false, &a), LONG);
	snprintf(p, sizeof(p), "<\"%.61s \"@x>", q);
	assert_int_equal(parse_path_exact(p, false, &a), OK);
	assert_int_equal(a.local_len, 64);	/* kept quoted */

	/* RFC 5321 4.5.3.1.3: the whole path, brackets included, 256. */
	n = make_path(p, 1, 252);
	assert_int_equal(n, 256);
	assert_int_equal(parse_path_exact(p, false, &a), OK);
	assert_int_equal(strlen(a.addr), 254);
	n = make_path(p, 1, 253);
	assert_int_equal(n, 257);
	assert_int_equal(parse_path_exact(p, false, &a), LONG);
	n = make_path(p, 64, 189);
	assert_int_equal(n, 256);
	assert_int_equal(parse_path_exact(p, false, &a), OK);
	make_path(p, 64, 190);
	assert_int_equal(parse_path_exact(p, false, &a), LONG);
	/*
	 * RFC 5321 4.5.3.1.2: a 255-octet domain cannot fit a 256-octet
	 * path, so 255/256 are checked through smtp_helo_valid(); in a path
	 * a 255- or 256-octet domain is too long either way.
	 */
	make_path(p, 1, 255);
	assert_int_equal(parse_path_exact(p, false, &a), LONG);
	make_path(p, 1, 256);
	assert_int_equal(parse_path_exact(p, false, &a), LONG);
	/* The route counts towards the path, then is dropped. */
	snprintf(p, sizeof(p), "<@");
	make_domain(p + 2, 249);
	snprintf(p + 251, sizeof(p) - 251, ":a@b>");
	assert_int_equal(strlen(p), 256);
	assert_int_equal(parse_path_exact(p, false, &a), OK);
	assert_string_equal(a.addr, "a@b");
	assert_true(a.had_route);
	snprintf(p + 251, sizeof(p) - 251, ":a@bc>");
	assert_int_equal(parse_path_exact(p, false, &a), LONG);
	/* Garbage past the limit is refused before it is looked at. */
	memset(p, 'x', 300);
	p[0] = '<';
	p[299] = '>';
	p[300] = '\0';
	assert_int_equal(parse_path_exact(p, false, &a), LONG);

	/* RFC 1035 2.3.4: labels of 63 octets. */
	memset(q, 'd', 63);
	q[63] = '\0';
	snprintf(p, sizeof(p), "<a@%s.example>", q);
	assert_int_equal(parse_path_exact(p, false, &a), OK);
	snprintf(p, sizeof(p), "<a@%sd.example>", q);
	assert_int_equal(parse_path_exact(p, false, &a), ADDR);
}

/* Every truncation of a valid path is refused, none reads past len. */
static void
test_path_truncated(void **state)
{
	static const char *const full[] = {
		"<a@b>",
		"<\"a b\"@x.example>",
		"<@r1,@r2:u@[IPv6:2001:db8::1]>",
		"<jörg@bücher.de>",
	};
	struct smtp_addr a;
	size_t		 i, n;

	(void)state;
	for (i = 0; i < NELEM(full); i++) {
		for (n = 0; n < strlen(full[i]); n++) {
			char	*buf = exact(full[i], n);

			assert_int_not_equal(smtp_parse_path(buf, n, true, &a),
			    OK);
			free(buf);
		}
		assert_int_equal(parse_path_exact(full[i], false, &a), OK);
	}
}

static const struct mail_case {
	const char		*in;
	size_t			 len;
	int			 rc;
	const char		*addr;
	bool			 has_size;
	uint64_t		 size;
	enum smtp_body_type	 body;
	bool			 smtputf8;
	enum smtp_ret		 ret;
	const char		*envid;
	const char		*auth;
} mail_cases[] = {
	{ IN("FROM:<a@b>"), OK, "a@b" },
	{ IN("from:<A@B>"), OK, "A@b" },
	{ IN("FROM: <a@b>"), OK, "a@b" },
	{ IN("FROM:   <a@b>"), OK, "a@b" },
	{ IN("FROM:<>"), OK, "" },
	{ IN("FROM:<> "), OK, "" },
	{ IN("FROM:<@r:a@b>"), OK, "a@b" },
	{ IN("FROM:<\"a>b\"@c> SIZE=1"), OK, "\"a>b\"@c", true, 1 },
	{ IN("FROM:<\"a\\\">\"@c> SIZE=1"), OK, "\"a\\\">\"@c", true, 1 },
	{ IN("FROM:<a@b> SIZE=10"), OK, "a@b", true, 10 },
	{ IN("FROM:<a@b> size=0"), OK, "a@b", true, 0 },
	{ IN("FROM:<a@b>  SIZE=10   BODY=8bitmime  "), OK, "a@b", true, 10,
	  SMTP_BODYTYPE_8BITMIME },
	{ IN("FROM:<a@b> SIZE=18446744073709551615"), OK, "a@b", true,
	  UINT64_MAX },
	{ IN("FROM:<a@b> SIZE=00000000000000000001"), OK, "a@b", true, 1 },
	{ IN("FROM:<a@b> BODY=7BIT"), OK, "a@b", .body = SMTP_BODYTYPE_7BIT },
	{ IN("FROM:<a@b> body=7bit"), OK, "a@b", .body = SMTP_BODYTYPE_7BIT },
	{ IN("FROM:<a@b> BODY=8BITMIME"), OK, "a@b",
	  .body = SMTP_BODYTYPE_8BITMIME },
	{ IN("FROM:<a@b> SMTPUTF8"), OK, "a@b", .smtputf8 = true },
	{ IN("FROM:<a@b> smtputf8"), OK, "a@b", .smtputf8 = true },
	{ IN("FROM:<a@b> RET=FULL"), OK, "a@b", .ret = SMTP_RET_FULL },
	{ IN("FROM:<a@b> ret=hdrs"), OK, "a@b", .ret = SMTP_RET_HDRS },
	{ IN("FROM:<a@b> ENVID=QQ314159"), OK, "a@b", .envid = "QQ314159" },
	{ IN("FROM:<a@b> ENVID=a+2Bb+3D"), OK, "a@b", .envid = "a+2Bb+3D" },
	{ IN("FROM:<a@b> AUTH=<>"), OK, "a@b", .auth = "<>" },
	{ IN("FROM:<a@b> AUTH=e+2Bmc2@example.com"), OK, "a@b",
	  .auth = "e+2Bmc2@example.com" },
	{ IN("FROM:<jörg@bücher.de> SMTPUTF8 BODY=8BITMIME"), OK,
	  "jörg@bücher.de", .body = SMTP_BODYTYPE_8BITMIME,
	  .smtputf8 = true },
	{ IN("FROM:<a@b> SIZE=5 BODY=7BIT SMTPUTF8 RET=HDRS ENVID=x AUTH=y"),
	  OK, "a@b", true, 5, SMTP_BODYTYPE_7BIT, true, SMTP_RET_HDRS, "x",
	  "y" },
	/* Command front. */
	{ IN(""), SYNTAX },
	{ IN("FROM"), SYNTAX },
	{ IN("FROM<a@b>"), SYNTAX },
	{ IN("FROM :<a@b>"), SYNTAX },
	{ IN(" FROM:<a@b>"), SYNTAX },
	{ IN("TO:<a@b>"), SYNTAX },
	{ IN("FROM:"), ADDR },
	{ IN("FROM:  "), ADDR },
	{ IN("FROM:a@b"), ADDR },
	{ IN("FROM:<a@b"), ADDR },
	{ IN("FROM:\t<a@b>"), ADDR },
	{ IN("FROM:<a b@c>"), ADDR },
	{ IN("FROM:<a@b>SIZE=1"), SYNTAX },
	{ IN("FROM:<a@b>\tSIZE=1"), SYNTAX },
	/* SIZE (RFC 1870). */
	{ IN("FROM:<a@b> SIZE=18446744073709551616"), PSYNTAX },
	{ IN("FROM:<a@b> SIZE=99999999999999999999"), PSYNTAX },
	{ IN("FROM:<a@b> SIZE=000000000000000000001"), PSYNTAX },
	{ IN("FROM:<a@b> SIZE="), PSYNTAX },
	{ IN("FROM:<a@b> SIZE"), PSYNTAX },
	{ IN("FROM:<a@b> SIZE=1a"), PSYNTAX },
	{ IN("FROM:<a@b> SIZE=-1"), PSYNTAX },
	{ IN("FROM:<a@b> SIZE=+1"), PSYNTAX },
	{ IN("FROM:<a@b> SIZE=1 SIZE=1"), PSYNTAX },
	{ IN("FROM:<a@b> SIZE=1 size=2"), PSYNTAX },
	/* BODY (RFC 6152). */
	{ IN("FROM:<a@b> BODY=BINARYMIME"), BODY },
	{ IN("FROM:<a@b> BODY=8BIT"), BODY },
	{ IN("FROM:<a@b> BODY"), PSYNTAX },
	{ IN("FROM:<a@b> BODY="), PSYNTAX },
	{ IN("FROM:<a@b> BODY=7BIT BODY=7BIT"), PSYNTAX },
	/* SMTPUTF8 (RFC 6531). */
	{ IN("FROM:<a@b> SMTPUTF8=yes"), PSYNTAX },
	{ IN("FROM:<a@b> SMTPUTF8="), PSYNTAX },
	{ IN("FROM:<a@b> SMTPUTF8 SMTPUTF8"), PSYNTAX },
	/* RET (RFC 3461 4.3). */
	{ IN("FROM:<a@b> RET=BOTH"), PSYNTAX },
	{ IN("FROM:<a@b> RET"), PSYNTAX },
	{ IN("FROM:<a@b> RET=FULL RET=HDRS"), PSYNTAX },
	/* ENVID (RFC 3461 4.4). */
	{ IN("FROM:<a@b> ENVID"), PSYNTAX },
	{ IN("FROM:<a@b> ENVID="), PSYNTAX },
	{ IN("FROM:<a@b> ENVID=a+2b"), PSYNTAX },
	{ IN("FROM:<a@b> ENVID=a+"), PSYNTAX },
	{ IN("FROM:<a@b> ENVID=a+4"), PSYNTAX },
	{ IN("FROM:<a@b> ENVID=a=b"), PSYNTAX },
	{ IN("FROM:<a@b> ENVID=a\x7f"), PSYNTAX },
	{ IN("FROM:<a@b> ENVID=\xc3\xa9"), PSYNTAX },
	{ IN("FROM:<a@b> ENVID=a ENVID=b"), PSYNTAX },
	/* AUTH (RFC 4954 5). */
	{ IN("FROM:<a@b> AUTH"), PSYNTAX },
	{ IN("FROM:<a@b> AUTH="), PSYNTAX },
	{ IN("FROM:<a@b> AUTH=a+zz"), PSYNTAX },
	{ IN("FROM:<a@b> AUTH=<> AUTH=<>"), PSYNTAX },
	/* Unknown and malformed parameters. */
	{ IN("FROM:<a@b> FOO=bar"), UNKNOWN },
	{ IN("FROM:<a@b> XYZ"), UNKNOWN },
	{ IN("FROM:<a@b> NOTIFY=NEVER"), UNKNOWN },
	{ IN("FROM:<a@b> SIZE=1 X-FOO"), UNKNOWN },
	{ IN("FROM:<a@b> =x"), PSYNTAX },
	{ IN("FROM:<a@b> -A=1"), PSYNTAX },
	{ IN("FROM:<a@b> A_B=1"), PSYNTAX },
	{ IN("FROM:<a@b> SIZE=1\t"), PSYNTAX },
	{ IN("FROM:<a@b> SIZÉ=1"), PSYNTAX },
	/* UTF-8 path: only once everything else parsed. */
	{ IN("FROM:<jörg@x>"), UTF8 },
	{ IN("FROM:<a@bü.de> SIZE=1"), UTF8 },
	{ IN("FROM:<jörg@x> FOO"), UNKNOWN },
	{ IN("FROM:<jörg@x> SIZE=x"), PSYNTAX },
	{ IN("FROM:<\xc3@x> SMTPUTF8"), ADDR },
};

static void
test_mail(void **state)
{
	struct smtp_mail_cmd m;
	size_t		 i;

	(void)state;
	for (i = 0; i < NELEM(mail_cases); i++) {
		const struct mail_case *tc = &mail_cases[i];
		char	*buf = exact(tc->in, tc->len);
		int	 rc = smtp_parse_mail(buf, tc->len, &m);

		if (rc != tc->rc)
			print_message("mail case %zu: %s\n", i, tc->in);
		assert_int_equal(rc, tc->rc);
		if (rc == OK) {
			assert_string_equal(m.from.addr, tc->addr);
			assert_int_equal(m.has_size, tc->has_size);
			assert_true(m.size == tc->size);
			assert_int_equal(m.body, tc->body);
			assert_int_equal(m.smtputf8, tc->smtputf8);
			assert_int_equal(m.ret, tc->ret);
			assert_string_equal(m.envid,
			    tc->envid == NULL ? "" : tc->envid);
			assert_string_equal(m.auth,
			    tc->auth == NULL ? "" : tc->auth);
		}
		free(buf);
	}
}

/* Parse the NUL-terminated MAIL argument s from an exact-size copy. */
static int
parse_mail_exact(const char *s, struct smtp_mail_cmd *m)
{
	size_t	 len = strlen(s);
	char	*buf = exact(s, len);
	int	 rc = smtp_parse_mail(buf, len, m);

	free(buf);
	return rc;
}

static void
test_mail_limits(void **state)
{
	struct smtp_mail_cmd m;
	char		 s[1200], v[600];

	(void)state;
	memset(v, 'e', sizeof(v));
	v[SMTP_ENVID_MAX] = '\0';
	snprintf(s, sizeof(s), "FROM:<a@b> ENVID=%s", v);
	assert_int_equal(parse_mail_exact(s, &m), OK);
	assert_int_equal(strlen(m.envid), SMTP_ENVID_MAX);
	v[SMTP_ENVID_MAX] = 'e';
	v[SMTP_ENVID_MAX + 1] = '\0';
	snprintf(s, sizeof(s), "FROM:<a@b> ENVID=%s", v);
	assert_int_equal(parse_mail_exact(s, &m), PSYNTAX);

	memset(v, 'u', sizeof(v));
	v[SMTP_AUTH_PARAM_MAX] = '\0';
	snprintf(s, sizeof(s), "FROM:<a@b> AUTH=%s", v);
	assert_int_equal(parse_mail_exact(s, &m), OK);
	assert_int_equal(strlen(m.auth), SMTP_AUTH_PARAM_MAX);
	v[SMTP_AUTH_PARAM_MAX] = 'u';
	v[SMTP_AUTH_PARAM_MAX + 1] = '\0';
	snprintf(s, sizeof(s), "FROM:<a@b> AUTH=%s", v);
	assert_int_equal(parse_mail_exact(s, &m), PSYNTAX);

	/* The path limit holds inside MAIL too. */
	memcpy(s, "FROM:", 5);
	make_path(s + 5, 64, 189);
	assert_int_equal(parse_mail_exact(s, &m), OK);
	make_path(s + 5, 64, 190);
	assert_int_equal(parse_mail_exact(s, &m), LONG);
	make_path(s + 5, 65, 1);
	assert_int_equal(parse_mail_exact(s, &m), LONG);
}

static void
test_mail_truncated(void **state)
{
	static const char full[] =
	    "FROM:<a@b> SIZE=10 BODY=8BITMIME RET=HDRS ENVID=x+2B";
	struct smtp_mail_cmd m;
	size_t		 n;

	(void)state;
	for (n = 0; n <= sizeof(full) - 1; n++) {
		char	*buf = exact(full, n);
		int	 rc = smtp_parse_mail(buf, n, &m);

		/* Every cut is an error or a valid shorter command. */
		if (n < 10)
			assert_int_not_equal(rc, OK);
		else if (rc == OK)
			assert_string_equal(m.from.addr, "a@b");
		free(buf);
	}
	assert_int_equal(parse_mail_exact(full, &m), OK);
	assert_string_equal(m.envid, "x+2B");
}

static const struct rcpt_case {
	const char	*in;
	size_t		 len;
	bool		 utf8;
	int		 rc;
	const char	*addr;
	size_t		 local_len;
	unsigned	 notify;
	const char	*orcpt;
} rcpt_cases[] = {
	{ IN("TO:<a@b>"), false, OK, "a@b", 1 },
	{ IN("to:<A@B>"), false, OK, "A@b", 1 },
	{ IN("TO: <a@b> "), false, OK, "a@b", 1 },
	{ IN("TO:<@r:a@b>"), false, OK, "a@b", 1 },
	{ IN("TO:<postmaster>"), false, OK, "postmaster", 10 },
	{ IN("TO:<Postmaster>"), false, OK, "postmaster", 10 },
	{ IN("TO:<POSTMASTER> NOTIFY=NEVER"), false, OK, "postmaster", 10,
	  SMTP_NOTIFY_NEVER },
	{ IN("TO:<Postmaster@Example.ORG>"), false, OK,
	  "Postmaster@example.org", 10 },
	{ IN("TO:<jörg@x>"), true, OK, "jörg@x", 5 },
	{ IN("TO:<a@b> NOTIFY=NEVER"), false, OK, "a@b", 1,
	  SMTP_NOTIFY_NEVER },
	{ IN("TO:<a@b> NOTIFY=SUCCESS,FAILURE,DELAY"), false, OK, "a@b", 1,
	  SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY },
	{ IN("TO:<a@b> notify=delay,success"), false, OK, "a@b", 1,
	  SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY },
	{ IN("TO:<a@b> NOTIFY=Failure"), false, OK, "a@b", 1,
	  SMTP_NOTIFY_FAILURE },
	{ IN("TO:<a@b> ORCPT=rfc822;a@b"), false, OK, "a@b", 1, 0,
	  "rfc822;a@b" },
	{ IN("TO:<a@b>  orcpt=RFC822;a+2Bx@b  NOTIFY=NEVER "), false, OK,
	  "a@b", 1, SMTP_NOTIFY_NEVER, "RFC822;a+2Bx@b" },
	{ IN("TO:<a@b> ORCPT=x-type-2;v"), false, OK, "a@b", 1, 0,
	  "x-type-2;v" },
	/* Front and path. */
	{ IN(""), false, SYNTAX },
	{ IN("TO"), false, SYNTAX },
	{ IN("TO<a@b>"), false, SYNTAX },
	{ IN("FROM:<a@b>"), false, SYNTAX },
	{ IN("TO:"), false, ADDR },
	{ IN("TO:a@b"), false, ADDR },
	{ IN("TO:<>"), false, ADDR },
	{ IN("TO:<> NOTIFY=NEVER"), false, ADDR },
	{ IN("TO:<a@b"), false, ADDR },
	{ IN("TO:<post master>"), false, ADDR },
	{ IN("TO:<postmasterx>"), false, ADDR },
	{ IN("TO:<\"postmaster\">"), false, ADDR },
	{ IN("TO:<postmaster>x"), false, SYNTAX },
	{ IN("TO:<a@b>NOTIFY=NEVER"), false, SYNTAX },
	/* NOTIFY (RFC 3461 4.1). */
	{ IN("TO:<a@b> NOTIFY=NEVER,SUCCESS"), false, PSYNTAX },
	{ IN("TO:<a@b> NOTIFY=SUCCESS,NEVER"), false, PSYNTAX },
	{ IN("TO:<a@b> NOTIFY=NEVER,NEVER"), false, PSYNTAX },
	{ IN("TO:<a@b> NOTIFY=SUCCESS,SUCCESS"), false, PSYNTAX },
	{ IN("TO:<a@b> NOTIFY=DELAY,FAILURE,delay"), false, PSYNTAX },
	{ IN("TO:<a@b> NOTIFY="), false, PSYNTAX },
	{ IN("TO:<a@b> NOTIFY"), false, PSYNTAX },
	{ IN("TO:<a@b> NOTIFY=SUCCESS,"), false, PSYNTAX },
	{ IN("TO:<a@b> NOTIFY=,SUCCESS"), false, PSYNTAX },
	{ IN("TO:<a@b> NOTIFY=SUCCESS,,DELAY"), false, PSYNTAX },
	{ IN("TO:<a@b> NOTIFY=FOO"), false, PSYNTAX },
	{ IN("TO:<a@b> NOTIFY=SUCCES"), false, PSYNTAX },
	{ IN("TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER"), false, PSYNTAX },
	/* ORCPT (RFC 3461 4.2). */
	{ IN("TO:<a@b> ORCPT"), false, PSYNTAX },
	{ IN("TO:<a@b> ORCPT="), false, PSYNTAX },
	{ IN("TO:<a@b> ORCPT=rfc822"), false, PSYNTAX },
	{ IN("TO:<a@b> ORCPT=;a@b"), false, PSYNTAX },
	{ IN("TO:<a@b> ORCPT=rfc822;"), false, PSYNTAX },
	{ IN("TO:<a@b> ORCPT=rfc_822;a"), false, PSYNTAX },
	{ IN("TO:<a@b> ORCPT=rfc822;a+zz"), false, PSYNTAX },
	{ IN("TO:<a@b> ORCPT=rfc822;a;b"), false, OK, "a@b", 1, 0,
	  "rfc822;a;b" },
	{ IN("TO:<a@b> ORCPT=rfc822;\xc3\xa9"), false, PSYNTAX },
	{ IN("TO:<a@b> ORCPT=rfc822;a ORCPT=rfc822;a"), false, PSYNTAX },
	/* Unknown. */
	{ IN("TO:<a@b> SIZE=1"), false, UNKNOWN },
	{ IN("TO:<a@b> FOO"), false, UNKNOWN },
	{ IN("TO:<a@b> NOTIFY=NEVER BAR=1"), false, UNKNOWN },
	{ IN("TO:<a@b> B%R=1"), false, PSYNTAX },
	/* UTF-8 without SMTPUTF8 on MAIL, after the rest parsed. */
	{ IN("TO:<jörg@x>"), false, UTF8 },
	{ IN("TO:<a@bü.de> NOTIFY=NEVER"), false, UTF8 },
	{ IN("TO:<jörg@x> FOO"), false, UNKNOWN },
	{ IN("TO:<jörg@x> NOTIFY=BAD"), false, PSYNTAX },
};

static void
test_rcpt(void **state)
{
	struct smtp_rcpt_cmd r;
	size_t		 i;

	(void)state;
	for (i = 0; i < NELEM(rcpt_cases); i++) {
		const struct rcpt_case *tc = &rcpt_cases[i];
		char	*buf = exact(tc->in, tc->len);
		int	 rc = smtp_parse_rcpt(buf, tc->len, tc->utf8, &r);

		if (rc != tc->rc)
			print_message("rcpt case %zu: %s\n", i, tc->in);
		assert_int_equal(rc, tc->rc);
		if (rc == OK) {
			check_addr(&r.to, tc->addr, tc->local_len);
			assert_int_equal(r.notify, tc->notify);
			assert_string_equal(r.orcpt,
			    tc->orcpt == NULL ? "" : tc->orcpt);
		}
		free(buf);
	}
}

static void
test_rcpt_limits(void **state)
{
	struct smtp_rcpt_cmd r;
	char		 s[1200], v[600];
	size_t		 len;
	char		*buf;

	(void)state;
	/* RFC 3461 4.2: the ORCPT value is at most 500 characters. */
	memset(v, 'o', sizeof(v));
	memcpy(v, "rfc822;", 7);
	v[SMTP_ORCPT_MAX] = '\0';
	len = (size_t)snprintf(s, sizeof(s), "TO:<a@b> ORCPT=%s", v);
	buf = exact(s, len);
	assert_int_equal(smtp_parse_rcpt(buf, len, false, &r), OK);
	assert_int_equal(strlen(r.orcpt), SMTP_ORCPT_MAX);
	free(buf);
	v[SMTP_ORCPT_MAX] = 'o';
	v[SMTP_ORCPT_MAX + 1] = '\0';
	len = (size_t)snprintf(s, sizeof(s), "TO:<a@b> ORCPT=%s", v);
	buf = exact(s, len);
	assert_int_equal(smtp_parse_rcpt(buf, len, false, &r), PSYNTAX);
	free(buf);

	memcpy(s, "TO:", 3);
	len = 3 + make_path(s + 3, 64, 189);
	buf = exact(s, len);
	assert_int_equal(smtp_parse_rcpt(buf, len, false, &r), OK);
	assert_int_equal(r.to.local_len, 64);
	free(buf);
	len = 3 + make_path(s + 3, 1, 253);
	buf = exact(s, len);
	assert_int_equal(smtp_parse_rcpt(buf, len, false, &r), LONG);
	free(buf);
}

static const struct xtext_case {
	const char	*in;
	size_t		 len;
	bool		 valid;
	const char	*dec;
	size_t		 dec_len;
} xtext_cases[] = {
	{ IN(""), true, "", 0 },
	{ IN("abc"), true, "abc", 3 },
	{ IN("a+2Bb"), true, "a+b", 3 },
	{ IN("+3D"), true, "=", 1 },
	{ IN("+41+42"), true, "AB", 2 },
	{ IN("+00x"), true, "\0x", 2 },
	{ IN("+FF"), true, "\xff", 1 },
	{ IN("!~<>"), true, "!~<>", 4 },
	{ IN("a+2b"), false },
	{ IN("a+2"), false },
	{ IN("a+"), false },
	{ IN("+"), false },
	{ IN("+G0"), false },
	{ IN("a=b"), false },
	{ IN("a b"), false },
	{ IN("a\x7f"), false },
	{ IN("a\0"), false },
	{ IN("\xc3\xa9"), false },
};

static void
test_xtext(void **state)
{
	char	 out[32];
	size_t	 i;

	(void)state;
	for (i = 0; i < NELEM(xtext_cases); i++) {
		const struct xtext_case *tc = &xtext_cases[i];
		char	*buf = exact(tc->in, tc->len);
		long	 n;

		if (smtp_xtext_valid(buf, tc->len, 100) != tc->valid)
			print_message("xtext case %zu: %s\n", i, tc->in);
		assert_int_equal(smtp_xtext_valid(buf, tc->len, 100),
		    tc->valid);
		n = smtp_xtext_decode(buf, tc->len, out, sizeof(out));
		if (!tc->valid)
			assert_int_equal(n, -1);
		else {
			assert_int_equal(n, (long)tc->dec_len);
			assert_memory_equal(out, tc->dec, tc->dec_len);
			assert_int_equal(out[n], '\0');
		}
		free(buf);
	}
}

static void
test_xtext_limits(void **state)
{
	char	 out[8];

	(void)state;
	assert_true(smtp_xtext_valid("abcd", 4, 4));
	assert_false(smtp_xtext_valid("abcd", 4, 3));
	assert_true(smtp_xtext_valid("", 0, 0));
	/* cap counts the NUL. */
	assert_int_equal(smtp_xtext_decode("abc", 3, out, 4), 3);
	assert_string_equal(out, "abc");
	assert_int_equal(smtp_xtext_decode("abc", 3, out, 3), -1);
	assert_int_equal(smtp_xtext_decode("+41+42", 6, out, 3), 2);
	assert_string_equal(out, "AB");
	assert_int_equal(smtp_xtext_decode("+41+42", 6, out, 2), -1);
	assert_int_equal(smtp_xtext_decode("", 0, out, 1), 0);
	assert_int_equal(smtp_xtext_decode("", 0, NULL, 0), -1);
}

static const struct helo_case {
	const char	*in;
	size_t		 len;
	bool		 valid;
} helo_cases[] = {
	{ IN("mail.example.com"), true },
	{ IN("Mail.Example.COM"), true },
	{ IN("localhost"), true },
	{ IN("my_host.example"), true },
	{ IN("_dmarc.example"), true },
	{ IN("a-b.c"), true },
	{ IN("192.0.2.1"), true },
	{ IN("bücher.de"), true },
	{ IN("[192.0.2.1]"), true },
	{ IN("[IPv6:2001:db8::1]"), true },
	{ IN("[ipv6:::1]"), true },
	{ IN(""), false },
	{ IN(" "), false },
	{ IN("a b"), false },
	{ IN("a\tb"), false },
	{ IN("a\x01"), false },
	{ IN("a\0b"), false },
	{ IN("a\x7f"), false },
	{ IN("a..b"), false },
	{ IN(".a"), false },
	{ IN("a."), false },
	{ IN("-a.b"), false },
	{ IN("a-.b"), false },
	{ IN("a@b"), false },
	{ IN("<a.b>"), false },
	{ IN("b\xc3"), false },
	{ IN("\xed\xa0\x80.de"), false },
	{ IN("[1.2.3]"), false },
	{ IN("[192.0.2.1"), false },
	{ IN("[IPv6:1.2.3.4]"), false },
	{ IN("[x-tag:foo]"), false },
	{ IN("[]"), false },
	{ IN("["), false },
};

static void
test_helo(void **state)
{
	char	 d[300];
	size_t	 i;

	(void)state;
	for (i = 0; i < NELEM(helo_cases); i++) {
		const struct helo_case *tc = &helo_cases[i];
		char	*buf = exact(tc->in, tc->len);

		bool	 ok = smtp_helo_valid(buf, tc->len);

		if (ok != tc->valid)
			print_message("helo case %zu: %s\n", i, tc->in);
		assert_int_equal(ok, tc->valid);
		free(buf);
	}
	/* RFC 5321 4.5.3.1.2: 255 octets. */
	make_domain(d, 255);
	assert_true(smtp_helo_valid(d, 255));
	make_domain(d, 256);
	assert_false(smtp_helo_valid(d, 256));
	/* RFC 1035 2.3.4: 63-octet labels. */
	memset(d, 'h', 63);
	assert_true(smtp_helo_valid(d, 63));
	memset(d, 'h', 64);
	assert_false(smtp_helo_valid(d, 64));
	/* Truncated literal: no read past len. */
	assert_false(smtp_helo_valid("[192.0.2.1]", 10));
	assert_true(smtp_helo_valid("mail.example.comXX", 16));
}

static void
test_addr_domain(void **state)
{
	struct smtp_addr a;

	(void)state;
	memset(&a, 0, sizeof(a));
	assert_string_equal(smtp_addr_domain(&a), "");
	assert_int_equal(parse_path_exact("<\"x@y\"@Z.example>", false, &a),
	    OK);
	assert_string_equal(smtp_addr_domain(&a), "z.example");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmd),
		cmocka_unit_test(test_path),
		cmocka_unit_test(test_path_limits),
		cmocka_unit_test(test_path_truncated),
		cmocka_unit_test(test_mail),
		cmocka_unit_test(test_mail_limits),
		cmocka_unit_test(test_mail_truncated),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_rcpt_limits),
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_xtext_limits),
		cmocka_unit_test(test_helo),
		cmocka_unit_test(test_addr_domain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
