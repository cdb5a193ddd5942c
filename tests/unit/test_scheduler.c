/* test_scheduler.c: the retry backoff schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/util.h"
#include "queue/scheduler.h"

static void
test_backoff(void **state)
{
	/* Postfix-like default: 300 s doubling to a cap of 4000 s */
	static const struct { int n, initial, max, want; } cases[] = {
		{ 1, 300, 4000, 300 },
		{ 2, 300, 4000, 600 },
		{ 3, 300, 4000, 1200 },
		{ 4, 300, 4000, 2400 },
		{ 5, 300, 4000, 4000 },		/* capped */
		{ 50, 300, 4000, 4000 },	/* no overflow */
		{ 1000000, 300, 4000, 4000 },
		{ 1, 1, 1, 1 },
		{ 3, 1, 2, 2 },
		{ 1, 500, 100, 100 },		/* cap below initial */
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		assert_int_equal(sched_backoff(cases[i].n, cases[i].initial,
		    cases[i].max), cases[i].want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
