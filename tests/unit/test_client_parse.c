/*
 * test_client_parse.c: server replies (single, multiline, limits,
 * truncation, enhanced codes), reply classes and EHLO capabilities.
 * Inputs are copied to exact-size buffers so ASan catches a read past len.
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

#include "smtp/client_parse.h"

#define IN(x)		.in = (x), .len = sizeof(x) - 1
#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

#define OK		SMTP_RESP_PARSE_OK
#define MORE		SMTP_RESP_PARSE_MORE
#define SYNTAX		SMTP_RESP_PARSE_SYNTAX
#define MIXED		SMTP_RESP_PARSE_MIXED
#define LONG		SMTP_RESP_PARSE_LONG

#define LINES		100	/* default max_lines */
#define BYTES		65536	/* default max_bytes */

/* A copy of s in a buffer of exactly len bytes, no NUL. Caller frees. */
static char *
exact(const char *s, size_t len)
{
	char	*p = malloc(len == 0 ? 1 : len);

	assert_non_null(p);
	memcpy(p, s, len);
	return p;
}

static const struct resp_case {
	const char	*in;
	size_t		 len;
	size_t		 max_lines;	/* 0: LINES */
	size_t		 max_bytes;	/* 0: BYTES */
	int		 rc;
	size_t		 consumed;
	int		 code;
	const char	*enh;
	size_t		 nlines;
	const char	*text;		/* first line */
	const char	*all;		/* smtp_resp_text() */
} resp_cases[] = {
	/* Single lines. */
	{ IN("250 OK\r\n"), 0, 0, OK, 8, 250, "", 1, "OK", "OK" },
	{ IN("250\r\n"), 0, 0, OK, 5, 250, "", 1, "", "" },
	{ IN("250 \r\n"), 0, 0, OK, 6, 250, "", 1, "", "" },
	{ IN("220 mx.example ESMTP\r\n"), 0, 0, OK, 22, 220, "", 1,
	  "mx.example ESMTP", "mx.example ESMTP" },
	{ IN("250 2.0.0 Ok: queued as 2QF7\r\n"), 0, 0, OK, 30, 250, "2.0.0",
	  1, "Ok: queued as 2QF7", "Ok: queued as 2QF7" },
	{ IN("550 5.1.1 <a@b>: unknown\r\n"), 0, 0, OK, 26, 550, "5.1.1", 1,
	  "<a@b>: unknown", "<a@b>: unknown" },
	{ IN("451 4.3.0\r\n"), 0, 0, OK, 11, 451, "4.3.0", 1, "", "" },
	{ IN("421 4.4.2  idle\r\n"), 0, 0, OK, 17, 421, "4.4.2", 1, "idle",
	  "idle" },
	{ IN("552 5.3.4 x\r\n"), 0, 0, OK, 13, 552, "5.3.4", 1, "x", "x" },
	{ IN("550 5.999.999 x\r\n"), 0, 0, OK, 17, 550, "5.999.999", 1, "x",
	  "x" },
	/* Bytes after the reply (pipelining) are not consumed. */
	{ IN("250 a\r\n250 b\r\n"), 0, 0, OK, 7, 250, "", 1, "a", "a" },
	{ IN("250 a\r\n2"), 0, 0, OK, 7, 250, "", 1, "a", "a" },
	/* Bare LF from broken servers. */
	{ IN("250 x\n"), 0, 0, OK, 6, 250, "", 1, "x", "x" },
	{ IN("250\n"), 0, 0, OK, 4, 250, "", 1, "", "" },
	{ IN("250-a\n250 b\r\n"), 0, 0, OK, 13, 250, "", 2, "a", "a b" },
	/* Multiline. */
	{ IN("250-a\r\n250-b\r\n250 c\r\n"), 0, 0, OK, 21, 250, "", 3, "a",
	  "a b c" },
	{ IN("250-a\r\n250\r\n"), 0, 0, OK, 12, 250, "", 2, "a", "a " },
	{ IN("250-\r\n250 b\r\n"), 0, 0, OK, 13, 250, "", 2, "", " b" },
	{ IN("550-5.1.1 one\r\n550 5.1.1 two\r\n"), 0, 0, OK, 30, 550, "5.1.1",
	  2, "one", "one two" },
	/* Only lines starting with the first line's code lose it. */
	{ IN("550-5.1.1 one\r\n550 5.7.1 two\r\n"), 0, 0, OK, 30, 550, "5.1.1",
	  2, "one", "one 5.7.1 two" },
	{ IN("550-one\r\n550 5.1.1 two\r\n"), 0, 0, OK, 24, 550, "", 2, "one",
	  "one 5.1.1 two" },
	/* No enhanced code: wrong class, malformed, not followed by SP. */
	{ IN("250 5.1.1 x\r\n"), 0, 0, OK, 13, 250, "", 1, "5.1.1 x",
	  "5.1.1 x" },
	{ IN("550 2.0.0 x\r\n"), 0, 0, OK, 13, 550, "", 1, "2.0.0 x",
	  "2.0.0 x" },
	{ IN("354 2.0.0 go\r\n"), 0, 0, OK, 14, 354, "", 1, "2.0.0 go",
	  "2.0.0 go" },
	{ IN("250 2.0 x\r\n"), 0, 0, OK, 11, 250, "", 1, "2.0 x", "2.0 x" },
	{ IN("250 2.0.0.0 x\r\n"), 0, 0, OK, 15, 250, "", 1, "2.0.0.0 x",
	  "2.0.0.0 x" },
	{ IN("250 2.1000.0 x\r\n"), 0, 0, OK, 16, 250, "", 1, "2.1000.0 x",
	  "2.1000.0 x" },
	{ IN("250 2.0.1000 x\r\n"), 0, 0, OK, 16, 250, "", 1, "2.0.1000 x",
	  "2.0.1000 x" },
	{ IN("250 2..0 x\r\n"), 0, 0, OK, 12, 250, "", 1, "2..0 x", "2..0 x" },
	{ IN("250 2.0.0x\r\n"), 0, 0, OK, 12, 250, "", 1, "2.0.0x", "2.0.0x" },
	{ IN("250 2.0.\r\n"), 0, 0, OK, 10, 250, "", 1, "2.0.", "2.0." },
	{ IN("250 x2.0.0 y\r\n"), 0, 0, OK, 14, 250, "", 1, "x2.0.0 y",
	  "x2.0.0 y" },
	/* Any 3 digits parse; smtp_resp_classify() judges them. */
	{ IN("600 odd\r\n"), 0, 0, OK, 9, 600, "", 1, "odd", "odd" },
	{ IN("000\r\n"), 0, 0, OK, 5, 0, "", 1, "", "" },
	/* Mixed codes, early when possible. */
	{ IN("250-a\r\n251 b\r\n"), 0, 0, MIXED, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250-a\r\n550 b\r\n"), 0, 0, MIXED, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250-a\r\n251"), 0, 0, MIXED, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250-a\r\n250-b\r\n450"), 0, 0, MIXED, 0, 0, NULL, 0, NULL,
	  NULL },
	/* Garbage, early when possible. */
	{ IN("abc\r\n"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN("abc"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN("a"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN("25a"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN("\r\n"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN("\n"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN("25\r\n"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN(" 250 x\r\n"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN("2500 x\r\n"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250x"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250\tx\r\n"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250-a\r\nxyz\r\n"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250-a\r\n250+b\r\n"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250 a\rb\r\n"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250 a\rb"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250 a\r\r\n"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250\rx"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250\r\r\n"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250 a\0b\r\n"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250 a\0"), 0, 0, SYNTAX, 0, 0, NULL, 0, NULL, NULL },
	/* Incomplete. */
	{ IN(""), 0, 0, MORE, 0, 0, NULL, 0, NULL, NULL },
	{ IN("2"), 0, 0, MORE, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250"), 0, 0, MORE, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250 ok"), 0, 0, MORE, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250 ok\r"), 0, 0, MORE, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250\r"), 0, 0, MORE, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250-a\r\n"), 0, 0, MORE, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250-a\r\n250-b\r\n"), 0, 0, MORE, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250-a\r\n250"), 0, 0, MORE, 0, 0, NULL, 0, NULL, NULL },
	/* Line count limit: at the limit, past it, known early. */
	{ IN("250-a\r\n250 b\r\n"), 2, 0, OK, 14, 250, "", 2, "a", "a b" },
	{ IN("250-a\r\n250 b\r\n"), 1, 0, LONG, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250-a\r\n"), 1, 0, LONG, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250 a\r\n"), 1, 0, OK, 7, 250, "", 1, "a", "a" },
	/* Byte limit, line ends included. */
	{ IN("250 ok\r\n"), 0, 8, OK, 8, 250, "", 1, "ok", "ok" },
	{ IN("250 ok\r\n"), 0, 7, LONG, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250 okxx"), 0, 7, LONG, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250 okx"), 0, 7, LONG, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250 ok"), 0, 7, MORE, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250-a\r\n250 b\r\n"), 0, 14, OK, 14, 250, "", 2, "a", "a b" },
	{ IN("250-a\r\n250 b\r\n"), 0, 13, LONG, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250-a\r\n"), 0, 7, LONG, 0, 0, NULL, 0, NULL, NULL },
	{ IN("250 ok\r\n250 more"), 0, 8, OK, 8, 250, "", 1, "ok", "ok" },
};

static void
test_resp(void **state)
{
	struct smtp_resp r;
	char		 all[256];
	size_t		 i, consumed;

	(void)state;
	for (i = 0; i < NELEM(resp_cases); i++) {
		const struct resp_case *tc = &resp_cases[i];
		char	*buf = exact(tc->in, tc->len);
		int	 rc;

		rc = smtp_resp_parse(buf, tc->len,
		    tc->max_lines ? tc->max_lines : LINES,
		    tc->max_bytes ? tc->max_bytes : BYTES, &r, &consumed);
		if (rc != tc->rc || consumed != tc->consumed)
			print_message("resp case %zu\n", i);
		assert_int_equal(rc, tc->rc);
		assert_int_equal(consumed, tc->consumed);
		if (rc == OK) {
			assert_int_equal(r.code, tc->code);
			assert_string_equal(r.enh, tc->enh);
			assert_int_equal(r.nlines, tc->nlines);
			assert_int_equal(r.text_len, strlen(tc->text));
			assert_memory_equal(r.text, tc->text, r.text_len);
			assert_true(r.text >= buf &&
			    r.text + r.text_len <= buf + consumed);
			assert_ptr_equal(r.raw, buf);
			assert_int_equal(r.raw_len, consumed);
			assert_int_equal(smtp_resp_text(&r, all, sizeof(all)),
			    strlen(tc->all));
			assert_string_equal(all, tc->all);
		}
		free(buf);
	}
}

/* Every proper prefix of a valid reply is MORE; the whole is OK. */
static void
test_resp_truncated(void **state)
{
	static const char *const full[] = {
		"250 OK\r\n",
		"250\r\n",
		"250-a\r\n250-b\r\n250 c\r\n",
		"250-mx.example\r\n250-PIPELINING\r\n250-SIZE 100\r\n"
		    "250 8BITMIME\r\n",
		"550-5.1.1 one\r\n550-5.1.1 two\r\n550 5.1.1 three\r\n",
		"250-a\n250-b\n250\n",
	};
	struct smtp_resp r;
	size_t		 i, n, len, consumed;

	(void)state;
	for (i = 0; i < NELEM(full); i++) {
		len = strlen(full[i]);
		for (n = 0; n <= len; n++) {
			char	*buf = exact(full[i], n);
			int	 rc = smtp_resp_parse(buf, n, LINES, BYTES, &r,
			    &consumed);

			if (rc != (n < len ? MORE : OK))
				print_message("full %zu prefix %zu\n", i, n);
			assert_int_equal(rc, n < len ? MORE : OK);
			assert_int_equal(consumed, n < len ? 0 : len);
			free(buf);
		}
	}
}

/* "250 " + (n - 4) x 'x' + eol, exactly sized. Caller frees. */
static char *
long_line(size_t n, const char *eol, size_t *len)
{
	size_t	 elen = strlen(eol);
	char	*p = malloc(n + elen);

	assert_non_null(p);
	memcpy(p, "250 ", 4);
	memset(p + 4, 'x', n - 4);
	memcpy(p + n, eol, elen);
	*len = n + elen;
	return p;
}

static void
test_resp_line_limit(void **state)
{
	static const struct {
		size_t		 n;	/* line bytes without the line end */
		const char	*eol;
		int		 rc;
	} cases[] = {
		{ SMTP_RESP_LINE_MAX - 2, "\r\n", OK },		/* at limit */
		{ SMTP_RESP_LINE_MAX - 1, "\r\n", LONG },	/* limit + 1 */
		{ SMTP_RESP_LINE_MAX - 2, "\n", OK },
		{ SMTP_RESP_LINE_MAX - 1, "\n", LONG },
		{ SMTP_RESP_LINE_MAX - 2, "\r", MORE },
		{ SMTP_RESP_LINE_MAX - 2, "", MORE },
		{ SMTP_RESP_LINE_MAX - 1, "", MORE },	/* could end in LF */
		{ SMTP_RESP_LINE_MAX, "", LONG },	/* no LF in time */
		{ SMTP_RESP_LINE_MAX + 100, "", LONG },
		{ SMTP_RESP_LINE_MAX + 100, "\r\n", LONG },
	};
	struct smtp_resp r;
	size_t		 i, len, consumed;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		char	*buf = long_line(cases[i].n, cases[i].eol, &len);
		int	 rc = smtp_resp_parse(buf, len, LINES, BYTES, &r,
		    &consumed);

		if (rc != cases[i].rc)
			print_message("line case %zu\n", i);
		assert_int_equal(rc, cases[i].rc);
		assert_int_equal(consumed, rc == OK ? len : 0);
		if (rc == OK)
			assert_int_equal(r.text_len, cases[i].n - 4);
		free(buf);
	}
}

/* Replies back to back, as after a pipelined MAIL/RCPT/RCPT/DATA. */
static void
test_resp_pipelined(void **state)
{
	static const char in[] = "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
	    "550-5.1.1 no\r\n550 5.1.1 such user\r\n354 End data\r\n";
	static const int codes[] = { 250, 250, 550, 354 };
	struct smtp_resp r;
	size_t		 pos = 0, i = 0, consumed, len = sizeof(in) - 1;
	char		*buf = exact(in, len);

	(void)state;
	while (pos < len) {
		assert_int_equal(smtp_resp_parse(buf + pos, len - pos, LINES,
		    BYTES, &r, &consumed), OK);
		assert_true(i < NELEM(codes));
		assert_int_equal(r.code, codes[i]);
		pos += consumed;
		i++;
	}
	assert_int_equal(i, NELEM(codes));
	assert_int_equal(pos, len);
	free(buf);
}

static void
test_resp_text_cap(void **state)
{
	static const char in[] = "550-5.1.1 abc\r\n550 5.1.1 de\r\n";
	static const struct {
		size_t		 cap;
		const char	*out;
	} cases[] = {
		{ 1, "" }, { 2, "a" }, { 4, "abc" }, { 5, "abc " },
		{ 6, "abc d" }, { 7, "abc de" }, { 100, "abc de" },
	};
	struct smtp_resp r;
	char		 out[100];
	size_t		 i, consumed;

	(void)state;
	assert_int_equal(smtp_resp_parse(in, sizeof(in) - 1, LINES, BYTES, &r,
	    &consumed), OK);
	assert_int_equal(smtp_resp_text(&r, NULL, 0), 6);
	for (i = 0; i < NELEM(cases); i++) {
		memset(out, 'Z', sizeof(out));
		assert_int_equal(smtp_resp_text(&r, out, cases[i].cap), 6);
		assert_string_equal(out, cases[i].out);
		assert_true(cases[i].cap == sizeof(out) ||
		    out[cases[i].cap] == 'Z');
	}
}

static void
test_classify(void **state)
{
	static const struct {
		int			 code;
		enum smtp_resp_class	 cls;
	} cases[] = {
		{ 200, SMTP_RESP_SUCCESS }, { 220, SMTP_RESP_SUCCESS },
		{ 250, SMTP_RESP_SUCCESS }, { 299, SMTP_RESP_SUCCESS },
		{ 421, SMTP_RESP_TEMPFAIL }, { 450, SMTP_RESP_TEMPFAIL },
		{ 499, SMTP_RESP_TEMPFAIL }, { 500, SMTP_RESP_PERMFAIL },
		{ 550, SMTP_RESP_PERMFAIL }, { 554, SMTP_RESP_PERMFAIL },
		{ 354, SMTP_RESP_PROTOCOL }, { 334, SMTP_RESP_PROTOCOL },
		{ 199, SMTP_RESP_PROTOCOL }, { 0, SMTP_RESP_PROTOCOL },
		{ 600, SMTP_RESP_PROTOCOL }, { 999, SMTP_RESP_PROTOCOL },
		{ -1, SMTP_RESP_PROTOCOL }, { -250, SMTP_RESP_PROTOCOL },
		{ 1000, SMTP_RESP_PROTOCOL }, { 2500, SMTP_RESP_PROTOCOL },
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++)
		assert_int_equal(smtp_resp_classify(cases[i].code),
		    cases[i].cls);
}

#define A_PLAIN		SMTP_CLIENT_AUTH_PLAIN
#define A_LOGIN		SMTP_CLIENT_AUTH_LOGIN
#define A_SCRAM		SMTP_CLIENT_AUTH_SCRAM_SHA_256

static const struct ehlo_case {
	const char			*name;
	const char			*in;
	int				 rc;
	struct smtp_client_caps		 caps;
} ehlo_cases[] = {
	{ "postfix",
	  "250-mail.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
	  "250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n"
	  "250-AUTH=PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
	  "250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n", 0,
	  { .size = true, .size_max = 10240000, .pipelining = true,
	    .eightbitmime = true, .smtputf8 = true, .dsn = true,
	    .starttls = true, .chunking = true, .enhancedstatuscodes = true,
	    .auth = A_PLAIN | A_LOGIN } },
	{ "exim",
	  "250-mx.example.net Hello client.example [192.0.2.1]\r\n"
	  "250-SIZE 52428800\r\n250-8BITMIME\r\n250-PIPELINING\r\n"
	  "250-PIPE_CONNECT\r\n250-AUTH CRAM-MD5 PLAIN\r\n250-CHUNKING\r\n"
	  "250-STARTTLS\r\n250-PRDR\r\n250 HELP\r\n", 0,
	  { .size = true, .size_max = 52428800, .pipelining = true,
	    .eightbitmime = true, .starttls = true, .chunking = true,
	    .auth = A_PLAIN } },
	{ "gmail",
	  "250-smtp.gmail.com at your service, [192.0.2.7]\r\n"
	  "250-SIZE 35882577\r\n250-8BITMIME\r\n250-STARTTLS\r\n"
	  "250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n"
	  "250 SMTPUTF8\r\n", 0,
	  { .size = true, .size_max = 35882577, .pipelining = true,
	    .eightbitmime = true, .smtputf8 = true, .starttls = true,
	    .chunking = true, .enhancedstatuscodes = true } },
	{ "gmail after STARTTLS",
	  "250-smtp.gmail.com at your service, [192.0.2.7]\r\n"
	  "250-SIZE 35882577\r\n250-8BITMIME\r\n"
	  "250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER"
	  " XOAUTH\r\n"
	  "250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n"
	  "250 SMTPUTF8\r\n", 0,
	  { .size = true, .size_max = 35882577, .pipelining = true,
	    .eightbitmime = true, .smtputf8 = true, .chunking = true,
	    .enhancedstatuscodes = true, .auth = A_PLAIN | A_LOGIN } },
	{ "greeting only", "250 mx.example\r\n", 0, { 0 } },
	/* The greeting line is never a keyword. */
	{ "greeting looks like one", "250-STARTTLS\r\n250 SIZE\r\n", 0,
	  { .size = true } },
	{ "lowercase, bare LF, obsolete AUTH= only",
	  "250-mx\n250-pipelining\n250-size\n250-auth=login\n"
	  "250 StartTLS\n", 0,
	  { .size = true, .pipelining = true, .starttls = true,
	    .auth = A_LOGIN } },
	{ "scram, -PLUS is another mechanism",
	  "250-mx\r\n250-AUTH SCRAM-SHA-256-PLUS\r\n"
	  "250 AUTH  scram-sha-256   SCRAM-SHA-1\r\n", 0,
	  { .auth = A_SCRAM } },
	{ "look-alikes",
	  "250-mx\r\n250-STARTTLSX\r\n250-X-PIPELINING\r\n250-SIZES 10\r\n"
	  "250-AUTHX PLAIN\r\n250-8BITMIME=yes\r\n250-DSN2\r\n250 AUTH\r\n", 0,
	  { 0 } },
	{ "SIZE 0 and params on flags",
	  "250-mx\r\n250-SIZE 0\r\n250 PIPELINING now\r\n", 0,
	  { .size = true, .pipelining = true } },
	{ "SIZE garbage", "250-mx\r\n250 SIZE 10k\r\n", 0, { .size = true } },
	{ "SIZE max", "250-mx\r\n250 SIZE 18446744073709551615\r\n", 0,
	  { .size = true, .size_max = UINT64_MAX } },
	{ "SIZE overflow", "250-mx\r\n250 SIZE 18446744073709551616\r\n", 0,
	  { .size = true } },
	{ "SIZE spaces", "250-mx\r\n250 SIZE   42  \r\n", 0,
	  { .size = true, .size_max = 42 } },
	{ "enhanced code on EHLO lines",
	  "250-2.0.0 mx\r\n250-2.0.0 PIPELINING\r\n250 2.0.0 DSN\r\n", 0,
	  { .pipelining = true, .dsn = true } },
	{ "not 250", "554 5.7.1 go away\r\n", -1, { 0 } },
	{ "not 250 multiline", "502-x\r\n502 PIPELINING\r\n", -1, { 0 } },
};

static void
test_ehlo(void **state)
{
	struct smtp_client_caps	 caps;
	struct smtp_resp	 r;
	size_t			 i, len, consumed;

	(void)state;
	for (i = 0; i < NELEM(ehlo_cases); i++) {
		const struct ehlo_case *tc = &ehlo_cases[i];
		char	*buf;

		len = strlen(tc->in);
		buf = exact(tc->in, len);
		print_message("ehlo: %s\n", tc->name);
		assert_int_equal(smtp_resp_parse(buf, len, LINES, BYTES, &r,
		    &consumed), OK);
		assert_int_equal(consumed, len);
		memset(&caps, 0xa5, sizeof(caps));
		assert_int_equal(smtp_client_caps_parse(&r, &caps), tc->rc);
		assert_int_equal(caps.size, tc->caps.size);
		assert_true(caps.size_max == tc->caps.size_max);
		assert_int_equal(caps.pipelining, tc->caps.pipelining);
		assert_int_equal(caps.eightbitmime, tc->caps.eightbitmime);
		assert_int_equal(caps.smtputf8, tc->caps.smtputf8);
		assert_int_equal(caps.dsn, tc->caps.dsn);
		assert_int_equal(caps.starttls, tc->caps.starttls);
		assert_int_equal(caps.chunking, tc->caps.chunking);
		assert_int_equal(caps.enhancedstatuscodes,
		    tc->caps.enhancedstatuscodes);
		assert_int_equal(caps.auth, tc->caps.auth);
		free(buf);
	}
}

/* The line parser alone, with exact-size input. */
static void
test_caps_line(void **state)
{
	static const struct {
		const char	*in;
		unsigned	 auth;
		bool		 size;
		uint64_t	 size_max;
	} cases[] = {
		{ "", 0, false, 0 },
		{ " ", 0, false, 0 },
		{ "=", 0, false, 0 },
		{ "AUTH", 0, false, 0 },
		{ "AUTH=", 0, false, 0 },
		{ "AUTH PLAIN", A_PLAIN, false, 0 },
		{ "auth\tplain\tlogin", A_PLAIN | A_LOGIN, false, 0 },
		{ " AUTH LOGIN", A_LOGIN, false, 0 },
		{ "AUTH=PLAIN", A_PLAIN, false, 0 },
		{ "AUTH PLAINX", 0, false, 0 },
		{ "SIZE", 0, true, 0 },
		{ "SIZE ", 0, true, 0 },
		{ "SIZE 1", 0, true, 1 },
		{ "SIZE=1", 0, false, 0 },
		{ "SIZE -1", 0, true, 0 },
	};
	struct smtp_client_caps	 caps;
	size_t			 i, len;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		char	*buf;

		len = strlen(cases[i].in);
		buf = exact(cases[i].in, len);
		memset(&caps, 0, sizeof(caps));
		smtp_client_caps_line(buf, len, &caps);
		assert_int_equal(caps.auth, cases[i].auth);
		assert_int_equal(caps.size, cases[i].size);
		assert_true(caps.size_max == cases[i].size_max);
		free(buf);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resp),
		cmocka_unit_test(test_resp_truncated),
		cmocka_unit_test(test_resp_line_limit),
		cmocka_unit_test(test_resp_pipelined),
		cmocka_unit_test(test_resp_text_cap),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_ehlo),
		cmocka_unit_test(test_caps_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
