/* test_qid.c: queue id generation, ordering, validation and decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "queue/qid.h"

#define T0	UINT64_C(1700000000123456)	/* a 2023 timestamp */

/* The id the generator must produce for (usec, seq), built independently. */
static void
expect_id(uint64_t usec, unsigned seq, char out[QID_LEN + 1])
{
	static const char a[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

	for (int i = 10; i >= 0; i--, usec /= 32)
		out[i] = a[usec % 32];
	out[11] = a[seq / 32];
	out[12] = a[seq % 32];
	out[QID_LEN] = '\0';
}

static void
test_known(void **state)
{
	struct qid_gen g = { 0, 0 };
	char	 id[QID_LEN + 1];

	(void)state;
	qid_next(&g, 1, id);
	assert_string_equal(id, "0000000000100");
	qid_next(&g, 1, id);
	assert_string_equal(id, "0000000000101");
	qid_next(&g, 32, id);
	assert_string_equal(id, "0000000001000");
	qid_next(&g, (UINT64_C(1) << 55) - 1, id);
	assert_string_equal(id, "ZZZZZZZZZZZ00");
}

/* Each step: the clock reading, then the (usec, seq) the id must carry. */
static const struct {
	uint64_t	 now;
	uint64_t	 usec;
	unsigned	 seq;
} steps[] = {
	{ T0, T0, 0 },
	{ T0, T0, 1 },		/* same microsecond */
	{ T0, T0, 2 },
	{ T0 - 5, T0, 3 },	/* clock went back */
	{ 0, T0, 4 },
	{ T0 + 1, T0 + 1, 0 },	/* forward again */
	{ T0 + 1000, T0 + 1000, 0 },
	{ T0 + 999, T0 + 1000, 1 },
};

static void
test_steps(void **state)
{
	struct qid_gen g = { 0, 0 };
	char	 id[QID_LEN + 1], want[QID_LEN + 1], prev[QID_LEN + 1] = "";

	(void)state;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		qid_next(&g, steps[i].now, id);
		expect_id(steps[i].usec, steps[i].seq, want);
		assert_string_equal(id, want);
		assert_true(qid_valid(id));
		assert_true(qid_usec(id) == steps[i].usec);
		assert_true(strcmp(prev, id) < 0);
		memcpy(prev, id, sizeof(id));
	}
}

static void
test_seq_overflow(void **state)
{
	struct qid_gen g = { 0, 0 };
	char	 id[QID_LEN + 1], want[QID_LEN + 1];

	(void)state;
	for (unsigned i = 0; i <= 1023; i++) {
		qid_next(&g, T0, id);
		expect_id(T0, i, want);
		assert_string_equal(id, want);
	}
	assert_string_equal(id + 11, "ZZ");
	/* the 1025th id in one microsecond borrows the next one */
	qid_next(&g, T0, id);
	expect_id(T0 + 1, 0, want);
	assert_string_equal(id, want);
	/* and the real next microsecond does not repeat it */
	qid_next(&g, T0 + 1, id);
	expect_id(T0 + 1, 1, want);
	assert_string_equal(id, want);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
test_sort_order(void **state)
{
	enum { N = 10000 };
	struct qid_gen g = { 0, 0 };
	char	*ids[N], *sorted[N];
	uint64_t now = T0;

	(void)state;
	srand(42);
	for (size_t i = 0; i < N; i++) {
		/* a jittery clock: forward, same, or back a little */
		switch (rand() % 4) {
		case 0:
			now += (uint64_t)(rand() % 100000);
			break;
		case 1:
			now -= (uint64_t)(rand() % 50);
			break;
		default:
			break;	/* same microsecond */
		}
		ids[i] = malloc(QID_LEN + 1);
		assert_non_null(ids[i]);
		qid_next(&g, now, ids[i]);
		assert_true(qid_valid(ids[i]));
		if (i > 0) {
			assert_true(strcmp(ids[i - 1], ids[i]) < 0);
			assert_true(qid_usec(ids[i - 1]) <= qid_usec(ids[i]));
		}
		sorted[i] = ids[i];
	}
	qsort(sorted, N, sizeof(sorted[0]), cmp_str);
	for (size_t i = 0; i < N; i++)
		assert_ptr_equal(sorted[i], ids[i]);
	for (size_t i = 0; i < N; i++)
		free(ids[i]);
}

static const struct {
	const char	*s;
	bool		 valid;
} strings[] = {
	{ "0000000000000", true },
	{ "ZZZZZZZZZZZZZ", true },
	{ "1HZ3K5MN7PQ9R", true },
	{ "0123456789ABC", true },
	{ "DEFGHJKMNPQRS", true },
	{ "TVWXYZ0000000", true },
	{ "", false },
	{ "000000000000", false },	/* 12: one short */
	{ "00000000000000", false },	/* 14: one long */
	{ "000000000000I", false },	/* I L O U are not Crockford */
	{ "000000000000L", false },
	{ "000000000000O", false },
	{ "000000000000U", false },
	{ "000000000000a", false },	/* lowercase is not canonical */
	{ "00000000000 0", false },
	{ "000000000000-", false },
	{ "00000000000/0", false },
	{ "00000000000:0", false },
	{ "00000000000@0", false },
	{ "00000000000[0", false },
	{ "000000000000\x80", false },
	{ "0000000000\n00", false },
};

static void
test_valid(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		if (qid_valid(strings[i].s) != strings[i].valid)
			fail_msg("qid_valid(\"%s\") != %d", strings[i].s,
			    strings[i].valid);
	}
	assert_false(qid_valid(NULL));
}

static void
test_usec_round_trip(void **state)
{
	static const uint64_t t[] = {
		0, 1, 31, 32, 1023, 1024, T0, UINT64_C(4102444800000000),
		(UINT64_C(1) << 55) - 2, (UINT64_C(1) << 55) - 1,
	};
	char	 id[QID_LEN + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct qid_gen g = { 0, 0 };

		qid_next(&g, t[i], id);
		assert_true(qid_valid(id));
		if (t[i] == 0)	/* a zeroed generator has seen usec 0 */
			assert_string_equal(id, "0000000000001");
		assert_true(qid_usec(id) == t[i]);
	}
	assert_true(qid_usec("ZZZZZZZZZZZ00") == (UINT64_C(1) << 55) - 1);
	assert_true(qid_usec("1HZ3K5MN7PQ9R") == qid_usec("1HZ3K5MN7PQ00"));
}

static void
test_saturate(void **state)
{
	struct qid_gen g = { 0, 0 };
	char	 a[QID_LEN + 1], b[QID_LEN + 1];

	(void)state;
	/* a clock past year 3111 saturates instead of wrapping back */
	qid_next(&g, (UINT64_C(1) << 55) - 1, a);
	qid_next(&g, UINT64_MAX, b);
	assert_true(strcmp(a, b) < 0);
	assert_true(qid_usec(b) == (UINT64_C(1) << 55) - 1);
}

/* After qid_after(g, id), every id of g sorts after id. */
static void
test_after(void **state)
{
	struct qid_gen g = { 0, 0 };
	char	 id[QID_LEN + 1], seen[QID_LEN + 1], later[QID_LEN + 1];

	(void)state;
	/* a queued id an hour ahead of the clock (it stepped back) */
	expect_id(T0 + UINT64_C(3600000000), 5, seen);
	qid_after(&g, seen);
	qid_next(&g, T0, id);
	assert_true(strcmp(id, seen) > 0);
	expect_id(T0 + UINT64_C(3600000000), 6, later);
	assert_string_equal(id, later);
	/* an older id leaves g alone */
	expect_id(T0, 9, seen);
	qid_after(&g, seen);
	qid_next(&g, T0, id);
	expect_id(T0 + UINT64_C(3600000000), 7, later);
	assert_string_equal(id, later);
	/* the last sequence of a microsecond: the next one, seq 0 */
	g = (struct qid_gen){ 0, 0 };
	expect_id(T0, 1023, seen);
	qid_after(&g, seen);
	qid_next(&g, T0 - 1, id);
	expect_id(T0 + 1, 0, later);
	assert_string_equal(id, later);
	/* same microsecond, lower sequence than g's: g keeps its own */
	g = (struct qid_gen){ T0, 40 };
	expect_id(T0, 3, seen);
	qid_after(&g, seen);
	qid_next(&g, T0, id);
	expect_id(T0, 41, later);
	assert_string_equal(id, later);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known),
		cmocka_unit_test(test_after),
		cmocka_unit_test(test_steps),
		cmocka_unit_test(test_seq_overflow),
		cmocka_unit_test(test_sort_order),
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_usec_round_trip),
		cmocka_unit_test(test_saturate),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
