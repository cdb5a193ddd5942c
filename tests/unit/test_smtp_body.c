/*
 * test_smtp_body.c: the DATA/BDAT decoder: dot-unstuffing, the end marker,
 * bare CR / bare LF (SMTP smuggling), pipelining and chunk independence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/body.h"

#define S(x)	x, sizeof(x) - 1	/* a literal and its length, NULs ok */

struct body_case {
	const char	*name;
	enum smtp_body_mode mode;
	const char	*in;
	size_t		 in_len;
	const char	*out;
	size_t		 out_len;
	size_t		 consumed;
	bool		 done;
	bool		 bare;
};

#define ALL	SIZE_MAX	/* consumed: all of the input */
#define D	SMTP_BODY_DATA
#define B	SMTP_BODY_BDAT

static const struct body_case cases[] = {
	/* ordinary messages */
	{ "simple", D, S("Subject: x\r\n\r\nbody\r\n.\r\n"),
	  S("Subject: x\r\n\r\nbody\r\n"), ALL, true, false },
	{ "empty message", D, S(".\r\n"), S(""), ALL, true, false },
	{ "empty line only", D, S("\r\n.\r\n"), S("\r\n"), ALL, true, false },
	{ "no input", D, S(""), S(""), ALL, false, false },
	{ "unfinished", D, S("abc\r\n"), S("abc\r\n"), ALL, false, false },
	{ "dot mid line", D, S("a.\r\n.b.\r\n.\r\n"), S("a.\r\nb.\r\n"), ALL,
	  true, false },
	{ "8bit and NUL", D, S("a\0b\xff\r\n.\r\n"), S("a\0b\xff\r\n"), ALL,
	  true, false },

	/* RFC 5321 4.5.2 dot-unstuffing */
	{ "stuffed dot", D, S("..x\r\n.\r\n"), S(".x\r\n"), ALL, true, false },
	{ "stuffed dots", D, S("...\r\n.\r\n"), S("..\r\n"), ALL, true, false },
	{ "stuffed lone dot", D, S("a\r\n..\r\n.\r\n"), S("a\r\n.\r\n"), ALL,
	  true, false },
	{ "dot space", D, S("x\r\n. \r\n.\r\n"), S("x\r\n \r\n"), ALL, true,
	  false },
	{ "dot at start", D, S(".abc\r\n.\r\n"), S("abc\r\n"), ALL, true,
	  false },

	/* pipelining: bytes after the end marker are not consumed */
	{ "pipelined QUIT", D, S(".\r\nQUIT\r\n"), S(""), 3, true, false },
	{ "pipelined MAIL", D, S("a\r\n.\r\nMAIL FROM:<x>\r\n"), S("a\r\n"),
	  6, true, false },
	{ "second marker", D, S("x\r\n.\r\n.\r\n"), S("x\r\n"), 6, true,
	  false },

	/* smuggling: none of these may end the data */
	{ "CRLF . LF", D, S("a\r\n.\nMAIL FROM:<evil>\r\n"),
	  S("a\r\n\nMAIL FROM:<evil>\r\n"), ALL, false, true },
	{ "LF . CRLF", D, S("a\n.\r\nMAIL FROM:<evil>\r\n"),
	  S("a\n.\r\nMAIL FROM:<evil>\r\n"), ALL, false, true },
	{ "LF . LF", D, S("a\n.\nb"), S("a\n.\nb"), ALL, false, true },
	{ "CR . CR", D, S("a\r.\rb"), S("a\r.\rb"), ALL, false, true },
	{ "CR . CRLF", D, S("a\r.\r\nb"), S("a\r.\r\nb"), ALL, false, true },
	{ "CRLF . CR x", D, S("a\r\n.\rb\r\n"), S("a\r\n\rb\r\n"), ALL, false,
	  true },
	{ "CRLF . CR .", D, S("a\r\n.\r.\r\n"), S("a\r\n\r.\r\n"), ALL, false,
	  true },
	{ "CRLF . CR CR LF", D, S("a\r\n.\r\r\nb\r\n"), S("a\r\n\r\r\nb\r\n"),
	  ALL, false, true },
	{ "CRLF . CR CR LF then end", D, S("a\r\n.\r\r\n.\r\n"),
	  S("a\r\n\r\r\n"), ALL, true, true },
	{ "CRLF LF . CRLF", D, S("a\r\n\n.\r\n"), S("a\r\n\n.\r\n"), ALL,
	  false, true },
	{ "LF . LF at start", D, S("\n.\n"), S("\n.\n"), ALL, false, true },
	{ ". LF at start", D, S(".\n"), S("\n"), ALL, false, true },
	{ ". CR at start", D, S(".\rx"), S("\rx"), ALL, false, true },
	{ "CR CR LF then end", D, S("a\r\r\n.\r\n"), S("a\r\r\n"), ALL, true,
	  true },
	{ "CR LF LF", D, S("a\r\n\n"), S("a\r\n\n"), ALL, false, true },
	{ "pending .CR", D, S("a\r\n.\r"), S("a\r\n"), ALL, false, false },
	{ "pending .", D, S("a\r\n."), S("a\r\n"), ALL, false, false },
	{ "pending CR", D, S("a\r"), S("a\r"), ALL, false, false },
	{ "LF CR LF . CR LF", D, S("\n\r\n.\r\n"), S("\n\r\n"), ALL, true,
	  true },

	/* BDAT: no dot handling, never done, same bare detection */
	{ "bdat plain", B, S("a\r\n.\r\nb"), S("a\r\n.\r\nb"), ALL, false,
	  false },
	{ "bdat dots", B, S("..x\r\n.\r\n"), S("..x\r\n.\r\n"), ALL, false,
	  false },
	{ "bdat empty", B, S(""), S(""), ALL, false, false },
	{ "bdat bare LF", B, S("a\nb"), S("a\nb"), ALL, false, true },
	{ "bdat bare CR", B, S("a\rb"), S("a\rb"), ALL, false, true },
	{ "bdat CR CR LF", B, S("a\r\r\n"), S("a\r\r\n"), ALL, false, true },
	{ "bdat LF . LF", B, S("\n.\n"), S("\n.\n"), ALL, false, true },
};

struct body_run {
	char		*out;		/* concatenated output */
	size_t		 out_len;
	size_t		 consumed;	/* total over all calls */
	struct smtp_body b;
};

/*
 * Feed in[0..len) in chunks of the given sizes (the last one repeats);
 * check the per-call contract on the way.
 */
static void
body_run(enum smtp_body_mode mode, const char *in, size_t len,
    const size_t *chunks, size_t nchunks, struct body_run *r)
{
	size_t	 off = 0, k = 0;

	smtp_body_init(&r->b, mode);
	r->out = malloc(len + 2);
	assert_non_null(r->out);
	r->out_len = 0;
	r->consumed = 0;
	while (off < len) {
		size_t	 n = chunks[k < nchunks ? k : nchunks - 1];
		size_t	 outlen = 99, used = 99;
		char	*out;
		bool	 was_done;

		k++;
		if (n > len - off)
			n = len - off;
		/* exactly n + 2 bytes on the heap: ASan catches overruns */
		out = malloc(n + 2);
		assert_non_null(out);
		was_done = r->b.done;
		smtp_body_feed(&r->b, in + off, n, out, &outlen, &used);
		assert_true(outlen <= n + 2);
		assert_true(used <= n);
		if (!r->b.done)
			assert_true(used == n);	/* only done stops early */
		if (was_done)
			assert_true(used == 0 && outlen == 0);
		memcpy(r->out + r->out_len, out, outlen);
		assert_true(r->out_len + outlen <= len + 2);
		r->out_len += outlen;
		r->consumed += used;
		free(out);
		off += n;
	}
	if (len == 0) {
		size_t	 outlen = 99, used = 99;

		smtp_body_feed(&r->b, in, 0, r->out, &outlen, &used);
		assert_true(outlen == 0 && used == 0);
	}
}

static void
check_case(const struct body_case *c, const size_t *chunks, size_t nchunks,
    const char *how)
{
	struct body_run r;

	body_run(c->mode, c->in, c->in_len, chunks, nchunks, &r);
	if (r.out_len != c->out_len || memcmp(r.out, c->out, c->out_len) != 0
	    || r.consumed != (c->consumed == ALL ? c->in_len : c->consumed) ||
	    r.b.done != c->done ||
	    r.b.bare != c->bare || r.b.size != r.out_len)
		fail_msg("%s (%s, first chunk %zu): out_len %zu/%zu consumed "
		    "%zu/%zu done %d/%d bare %d/%d size %llu", c->name, how,
		    chunks[0], r.out_len, c->out_len, r.consumed, c->consumed,
		    r.b.done, c->done, r.b.bare, c->bare,
		    (unsigned long long)r.b.size);
	free(r.out);
}

static void
test_one_piece(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t	 all = cases[i].in_len ? cases[i].in_len : 1;

		check_case(&cases[i], &all, 1, "one piece");
	}
}

static void
test_two_way_splits(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t k = 0; k <= cases[i].in_len; k++) {
			size_t	 chunks[2] = { k, cases[i].in_len - k + 1 };

			check_case(&cases[i], chunks, 2, "split");
		}
	}
}

static void
test_byte_at_a_time(void **state)
{
	const size_t one = 1;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i], &one, 1, "bytewise");
}

/*
 * Random content over the bytes that matter ('.', CR, LF, plain): the
 * whole input at once (long plain runs, the fast path), byte by byte and
 * in random chunks must decode alike, state included.
 */
static void
test_random_chunking(void **state)
{
	static const char alphabet[] = "ab.\r\n";
	unsigned int seed = 12345;

	(void)state;
	for (int round = 0; round < 3000; round++) {
		char	 in[96];
		size_t	 len = (size_t)(rand_r(&seed) % sizeof(in));
		size_t	 whole = len ? len : 1, one = 1, rnd[8];
		struct body_run a, b, c;
		enum smtp_body_mode mode = round % 2 ? SMTP_BODY_DATA :
		    SMTP_BODY_BDAT;

		for (size_t i = 0; i < len; i++)
			in[i] = alphabet[rand_r(&seed) % 5];
		for (size_t i = 0; i < 8; i++)
			rnd[i] = 1 + (size_t)(rand_r(&seed) % 9);
		body_run(mode, in, len, &whole, 1, &a);
		body_run(mode, in, len, &one, 1, &b);
		body_run(mode, in, len, rnd, 8, &c);
		for (int k = 0; k < 2; k++) {
			struct body_run *x = k ? &c : &b;

			assert_int_equal(x->out_len, a.out_len);
			assert_memory_equal(x->out, a.out, a.out_len);
			assert_int_equal(x->consumed, a.consumed);
			assert_int_equal(x->b.size, a.b.size);
			assert_int_equal(x->b.line_max, a.b.line_max);
			assert_int_equal(x->b.line_len, a.b.line_len);
			assert_int_equal(x->b.bare, a.b.bare);
			assert_int_equal(x->b.done, a.b.done);
		}
		free(a.out);
		free(b.out);
		free(c.out);
	}
}

/* After the end marker nothing more is taken, however often one asks. */
static void
test_after_done(void **state)
{
	struct smtp_body b;
	char	 out[64];
	size_t	 outlen, used;
	const char in[] = "x\r\n.\r\nRSET\r\n";

	(void)state;
	smtp_body_init(&b, SMTP_BODY_DATA);
	smtp_body_feed(&b, in, sizeof(in) - 1, out, &outlen, &used);
	assert_true(b.done);
	assert_int_equal(used, 6);
	assert_int_equal(outlen, 3);
	assert_memory_equal(out, "x\r\n", 3);
	smtp_body_feed(&b, in + used, sizeof(in) - 1 - used, out, &outlen,
	    &used);
	assert_int_equal(used, 0);
	assert_int_equal(outlen, 0);
	smtp_body_finish(&b, out, &outlen);
	assert_int_equal(outlen, 0);
	assert_int_equal(b.size, 3);
}

/* The longest output line, CRLF excluded; bare CR/LF count as content. */
static const struct {
	enum smtp_body_mode mode;
	const char	*in;
	size_t		 line_max;
	size_t		 line_len;
} lines[] = {
	{ D, "", 0, 0 },
	{ D, "abc\r\n.\r\n", 3, 0 },
	{ D, "abc\r\nabcdef\r\nab\r\n.\r\n", 6, 0 },
	{ D, "..abc\r\n.\r\n", 4, 0 },	/* the stuffing dot is gone */
	{ D, "a\nb\r\n", 3, 0 },	/* bare LF is content */
	{ D, "a\rb\r\n", 3, 0 },	/* bare CR too */
	{ D, "a\r\r\n", 2, 0 },
	{ D, "abcd", 4, 4 },		/* counted before the line ends */
	{ D, "abcd\r", 4, 4 },		/* a pending CR is not (yet) content */
	{ D, "ab\r\n.\rx", 2, 2 },	/* "\rx": the bare CR and x */
	{ B, "..abc\r\nx", 5, 1 },
	{ B, "\r\n\r\n", 0, 0 },
};

static void
test_line_len(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		size_t	 len = strlen(lines[i].in), one = 1, all = len + 1;
		struct body_run r1, r2;

		body_run(lines[i].mode, lines[i].in, len, &all, 1, &r1);
		body_run(lines[i].mode, lines[i].in, len, &one, 1, &r2);
		if (r1.b.line_max != lines[i].line_max ||
		    r1.b.line_len != lines[i].line_len ||
		    r2.b.line_max != lines[i].line_max ||
		    r2.b.line_len != lines[i].line_len)
			fail_msg("line %zu: max %zu/%zu len %zu/%zu", i,
			    r1.b.line_max, lines[i].line_max, r1.b.line_len,
			    lines[i].line_len);
		free(r1.out);
		free(r2.out);
	}
}

/* BDAT LAST (RFC 3030 2): the content ends with the last chunk. */
static const struct {
	enum smtp_body_mode mode;
	const char	*in;
	const char	*tail;		/* what finish writes */
	bool		 bare;		/* after finish */
	size_t		 line_max;	/* after finish */
} finishes[] = {
	{ B, "", "", false, 0 },
	{ B, "abc\r\n", "", false, 3 },
	{ B, "abc", "\r\n", false, 3 },
	{ B, "a\r\nabcd", "\r\n", false, 4 },
	{ B, "abc\r", "", true, 4 },	/* trailing lone CR: flagged */
	{ B, "abc\n", "\r\n", true, 4 },
	{ B, ".", "\r\n", false, 1 },	/* BDAT: a dot is a dot */
	{ D, "abc", "\r\n", false, 3 },
	{ D, "abc\r\n.", "", false, 3 },	/* DATA cut short: no dot */
	{ D, "abc\r\n.\r", "\r", true, 3 },
	{ D, "abc\r\n.\r\n", "", false, 3 },	/* done: nothing */
};

static void
test_finish(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(finishes) / sizeof(finishes[0]); i++) {
		size_t	 len = strlen(finishes[i].in), all = len + 1;
		size_t	 outlen = 99, tlen = strlen(finishes[i].tail);
		uint64_t size;
		struct body_run r;
		char	*out;

		body_run(finishes[i].mode, finishes[i].in, len, &all, 1, &r);
		size = r.b.size;
		out = malloc(2);
		assert_non_null(out);
		smtp_body_finish(&r.b, out, &outlen);
		if (outlen != tlen ||
		    memcmp(out, finishes[i].tail, tlen) != 0 ||
		    r.b.bare != finishes[i].bare ||
		    r.b.line_max != finishes[i].line_max ||
		    r.b.size != size + tlen)
			fail_msg("finish %zu: outlen %zu bare %d line_max %zu",
			    i, outlen, r.b.bare, r.b.line_max);
		/* a second finish adds nothing */
		smtp_body_finish(&r.b, out, &outlen);
		assert_int_equal(outlen, 0);
		free(out);
		free(r.out);
	}
}

/* Worst case for the out buffer: every call starts in the ".\r" state. */
static void
test_capacity(void **state)
{
	struct smtp_body b;
	size_t	 outlen, used;
	char	*out;

	(void)state;
	smtp_body_init(&b, SMTP_BODY_DATA);
	out = malloc(2);
	assert_non_null(out);
	smtp_body_feed(&b, ".", 1, out, &outlen, &used);
	assert_int_equal(outlen, 0);
	smtp_body_feed(&b, "\r", 1, out, &outlen, &used);
	assert_int_equal(outlen, 0);
	/* 1 byte in, 2 out: "\r" for the bare CR and the byte itself */
	smtp_body_feed(&b, "x", 1, out, &outlen, &used);
	assert_int_equal(outlen, 2);
	assert_memory_equal(out, "\rx", 2);
	assert_true(b.bare);
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_piece),
		cmocka_unit_test(test_two_way_splits),
		cmocka_unit_test(test_byte_at_a_time),
		cmocka_unit_test(test_random_chunking),
		cmocka_unit_test(test_after_done),
		cmocka_unit_test(test_line_len),
		cmocka_unit_test(test_finish),
		cmocka_unit_test(test_capacity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
