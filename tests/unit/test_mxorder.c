/*
 * test_mxorder.c: MX delivery order: preference sort, tie shuffle with a
 * scripted random source, duplicates, cap, "loops back to myself", null
 * MX and implicit MX.
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

#include "deliver/mxorder.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define MAXREC		8

/* Random source that plays back a script; past its end, bound - 1. */
struct fake_rnd {
	const size_t	*vals;
	size_t		 nvals;
	size_t		 calls;
	size_t		 bounds[16];	/* bound of each call */
};

static size_t
fake_rnd(void *arg, size_t bound)
{
	struct fake_rnd *f = arg;
	size_t		 v;

	assert_true(bound >= 2);
	v = f->calls < f->nvals ? f->vals[f->calls] : bound - 1;
	if (f->calls < NELEM(f->bounds))
		f->bounds[f->calls] = bound;
	f->calls++;
	return v;
}

static const struct mx_case {
	const char		*name;
	struct mx_record	 in[MAXREC];
	size_t			 n;
	const char		*self[3];
	size_t			 max;		/* 0: 10 */
	size_t			 rnd[4];	/* script */
	size_t			 nrnd;
	enum mx_status		 status;
	const char		*out[MAXREC];	/* NULL-terminated */
	size_t			 calls;		/* rnd calls expected */
} mx_cases[] = {
	{ "one", { { 10, "mx.example" } }, 1, { NULL }, 0, { 0 }, 0, MX_OK,
	  { "mx.example" }, 0 },
	{ "sorted by preference",
	  { { 30, "c" }, { 10, "a" }, { 20, "b" } }, 3, { NULL }, 0, { 0 }, 0,
	  MX_OK, { "a", "b", "c" }, 0 },
	{ "preference 0 and 65535",
	  { { 65535, "z" }, { 0, "a" } }, 2, { NULL }, 0, { 0 }, 0,
	  MX_OK, { "a", "z" }, 0 },
	/*
	 * Ties: sorted a, b, c, then Fisher-Yates from the end. Script
	 * exhausted means bound - 1 (no swap): a b c stays.
	 */
	{ "tie, no swaps",
	  { { 10, "c" }, { 10, "a" }, { 20, "d" }, { 10, "b" } }, 4, { NULL },
	  0, { 0 }, 0, MX_OK, { "a", "b", "c", "d" }, 2 },
	/* rnd(3) = 1: swap [2],[1] -> a c b; rnd(2) = 0: swap -> c a b. */
	{ "tie, scripted",
	  { { 10, "c" }, { 10, "a" }, { 20, "d" }, { 10, "b" } }, 4, { NULL },
	  0, { 1, 0 }, 2, MX_OK, { "c", "a", "b", "d" }, 2 },
	/* rnd(3) = 0: c b a; rnd(2) = 1: stays; then group of 2: 0: swap. */
	{ "two tie groups",
	  { { 10, "a" }, { 10, "b" }, { 10, "c" }, { 20, "x" }, { 20, "y" } },
	  5, { NULL }, 0, { 0, 1, 0 }, 3, MX_OK,
	  { "c", "b", "a", "y", "x" }, 3 },
	/* Out-of-range values are reduced modulo the bound: 5 % 2. */
	{ "rnd out of range",
	  { { 10, "a" }, { 10, "b" } }, 2, { NULL }, 0, { 5 }, 1, MX_OK,
	  { "a", "b" }, 1 },
	{ "duplicates keep the lowest preference",
	  { { 20, "MX.A." }, { 10, "mx.a" }, { 5, "mx.b" }, { 10, "mx.a" },
	    { 30, "Mx.B" } }, 5, { NULL }, 0, { 0 }, 0, MX_OK,
	  { "mx.b", "mx.a" }, 0 },
	{ "duplicate at same preference",
	  { { 10, "mx.a." }, { 10, "MX.A" } }, 2, { NULL }, 0, { 0 }, 0, MX_OK,
	  { "MX.A" }, 0 },
	{ "cap",
	  { { 50, "e" }, { 40, "d" }, { 30, "c" }, { 20, "b" }, { 10, "a" } },
	  5, { NULL }, 3, { 0 }, 0, MX_OK, { "a", "b", "c" }, 0 },
	{ "cap 1",
	  { { 20, "b" }, { 10, "a" } }, 2, { NULL }, 1, { 0 }, 0, MX_OK,
	  { "a" }, 0 },
	/* The cap cuts a tie group: shuffled first, groups after it not. */
	{ "cap inside a tie",
	  { { 10, "a" }, { 10, "b" }, { 10, "c" }, { 20, "x" }, { 20, "y" } },
	  5, { NULL }, 2, { 0, 1 }, 2, MX_OK, { "c", "b" }, 2 },
	{ "self at 10, others 5/10/20",
	  { { 10, "b.example" }, { 20, "c.example" }, { 10, "me.example" },
	    { 5, "a.example" } }, 4, { "other.name", "ME.Example." }, 0,
	  { 0 }, 0, MX_OK, { "a.example" }, 0 },
	{ "self twice, the lower counts",
	  { { 10, "b" }, { 30, "me." }, { 5, "a" }, { 20, "me" } }, 4,
	  { "me" }, 0, { 0 }, 0, MX_OK, { "a", "b" }, 0 },
	{ "self lowest: loop",
	  { { 10, "b" }, { 5, "me.example." }, { 20, "c" } }, 3,
	  { "me.example" }, 0, { 0 }, 0, MX_LOOP, { NULL }, 0 },
	{ "self tied for lowest: loop",
	  { { 10, "b" }, { 10, "me" } }, 2, { "me" }, 0, { 0 }, 0, MX_LOOP,
	  { NULL }, 0 },
	{ "self only: loop",
	  { { 10, "me" } }, 1, { "me" }, 0, { 0 }, 0, MX_LOOP, { NULL }, 0 },
	{ "self not listed",
	  { { 10, "b" }, { 5, "a" } }, 2, { "me", "mx.me" }, 0, { 0 }, 0, MX_OK,
	  { "a", "b" }, 0 },
	{ "self is a suffix only",
	  { { 10, "me.example" } }, 1, { "e.example", "me.exampl" }, 0,
	  { 0 }, 0, MX_OK, { "me.example" }, 0 },
	{ "null MX", { { 0, "." } }, 1, { NULL }, 0, { 0 }, 0, MX_NULL,
	  { NULL }, 0 },
	{ "null MX, empty name", { { 0, "" } }, 1, { NULL }, 0, { 0 }, 0,
	  MX_NULL, { NULL }, 0 },
	{ "only root targets", { { 10, "." }, { 20, "." } }, 2, { NULL }, 0,
	  { 0 }, 0, MX_NULL, { NULL }, 0 },
	{ "root target among others is dropped",
	  { { 0, "." }, { 10, "mx" } }, 2, { NULL }, 0, { 0 }, 0, MX_OK,
	  { "mx" }, 0 },
	{ "empty: implicit MX", { { 0, NULL } }, 0, { NULL }, 0, { 0 }, 0,
	  MX_IMPLICIT, { NULL }, 0 },
};

static void
test_order(void **state)
{
	struct mx_record rr[MAXREC];
	struct mx_policy p;
	struct fake_rnd	 f;
	size_t		 i, j, len, nout, nself;

	(void)state;
	for (i = 0; i < NELEM(mx_cases); i++) {
		const struct mx_case *tc = &mx_cases[i];

		print_message("mx: %s\n", tc->name);
		memcpy(rr, tc->in, sizeof(rr));
		memset(&f, 0, sizeof(f));
		f.vals = tc->rnd;
		f.nvals = tc->nrnd;
		for (nself = 0; nself < 3 && tc->self[nself] != NULL; nself++)
			;
		p.self = tc->self;
		p.nself = nself;
		p.max = tc->max ? tc->max : 10;
		p.rnd = fake_rnd;
		p.rnd_arg = &f;
		len = 99;
		assert_int_equal(mx_order(rr, tc->n, &p, &len), tc->status);
		for (nout = 0; nout < MAXREC && tc->out[nout] != NULL; nout++)
			;
		assert_int_equal(len, nout);
		for (j = 0; j < nout; j++)
			assert_string_equal(rr[j].host, tc->out[j]);
		assert_int_equal(f.calls, tc->calls);
	}
}

/* The order depends on the records and the random values, not on the
   order the resolver returned them in. */
static void
test_input_order(void **state)
{
	static const struct mx_record base[] = {
		{ 10, "a" }, { 10, "b" }, { 10, "c" }, { 20, "d" }, { 5, "e" },
	};
	static const size_t perm[][5] = {
		{ 0, 1, 2, 3, 4 }, { 4, 3, 2, 1, 0 }, { 2, 0, 4, 1, 3 },
		{ 3, 4, 1, 0, 2 },
	};
	static const size_t script[] = { 1, 1 };
	static const char *const want[] = { "e", "a", "c", "b", "d" };
	struct mx_record rr[5];
	struct mx_policy p = { NULL, 0, 10, fake_rnd, NULL };
	struct fake_rnd	 f;
	size_t		 i, j, len;

	(void)state;
	for (i = 0; i < NELEM(perm); i++) {
		for (j = 0; j < 5; j++)
			rr[j] = base[perm[i][j]];
		memset(&f, 0, sizeof(f));
		f.vals = script;
		f.nvals = NELEM(script);
		p.rnd_arg = &f;
		assert_int_equal(mx_order(rr, 5, &p, &len), MX_OK);
		assert_int_equal(len, 5);
		for (j = 0; j < 5; j++)
			assert_string_equal(rr[j].host, want[j]);
		/* Bounds 3 then 2: a uniform draw over the tie group. */
		assert_int_equal(f.calls, 2);
		assert_int_equal(f.bounds[0], 3);
		assert_int_equal(f.bounds[1], 2);
	}
}

/* Every permutation of a 3-way tie is reachable, each by one script. */
static void
test_all_permutations(void **state)
{
	static const struct mx_record base[] = {
		{ 10, "a" }, { 10, "b" }, { 10, "c" },
	};
	struct mx_record rr[3];
	struct mx_policy p = { NULL, 0, 10, fake_rnd, NULL };
	struct fake_rnd	 f;
	char		 seen[6][4];
	size_t		 script[2], a, b, k, n = 0, len;

	(void)state;
	for (a = 0; a < 3; a++)
		for (b = 0; b < 2; b++) {
			memcpy(rr, base, sizeof(rr));
			script[0] = a;
			script[1] = b;
			memset(&f, 0, sizeof(f));
			f.vals = script;
			f.nvals = 2;
			p.rnd_arg = &f;
			assert_int_equal(mx_order(rr, 3, &p, &len), MX_OK);
			assert_int_equal(len, 3);
			for (k = 0; k < 3; k++)
				seen[n][k] = rr[k].host[0];
			seen[n][3] = '\0';
			for (k = 0; k < n; k++)
				assert_string_not_equal(seen[k], seen[n]);
			n++;
		}
	assert_int_equal(n, 6);
}

static void
test_name_eq(void **state)
{
	static const struct {
		const char	*a, *b;
		bool		 eq;
	} cases[] = {
		{ "mx.example", "mx.example", true },
		{ "MX.Example", "mx.example.", true },
		{ "mx.example.", "mx.example.", true },
		{ ".", "", true },
		{ "mx.example", "mx.example..", false },
		{ "mx.example", "mx.exampl", false },
		{ "mx.example", "mx-example", false },
		{ "a", "b", false },
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		assert_int_equal(mx_name_eq(cases[i].a, cases[i].b),
		    cases[i].eq);
		assert_int_equal(mx_name_eq(cases[i].b, cases[i].a),
		    cases[i].eq);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_input_order),
		cmocka_unit_test(test_all_permutations),
		cmocka_unit_test(test_name_eq),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
