/* test_smtp_reply.c: reply layout, multiline and truncation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "smtp/reply.h"

static const struct {
	int		 code;
	const char	*enh;
	const char	*text;
	const char	*want;	/* NULL: must fail */
} cases[] = {
	{ 250, "2.0.0", "Ok", "250 2.0.0 Ok\r\n" },
	{ 220, NULL, "host ESMTP petrel", "220 host ESMTP petrel\r\n" },
	{ 250, NULL, "host\nPIPELINING\nSIZE 10",
	  "250-host\r\n250-PIPELINING\r\n250 SIZE 10\r\n" },
	{ 214, "2.0.0", "a\nb\n", "214-2.0.0 a\r\n214 2.0.0 b\r\n" },
	{ 500, "5.5.2", "", "500 5.5.2 \r\n" },
	{ 199, "2.0.0", "bad code", NULL },
	{ 600, "2.0.0", "bad code", NULL },
};

static void
test_table(void **state)
{
	char	 buf[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = smtp_reply_format(buf, sizeof(buf), cases[i].code,
		    cases[i].enh, cases[i].text);
		if (cases[i].want == NULL) {
			assert_int_equal(n, -1);
			continue;
		}
		assert_int_equal(n, (int)strlen(cases[i].want));
		assert_string_equal(buf, cases[i].want);
	}
}

static void
test_fit(void **state)
{
	char	 buf[64];
	const char *want = "250 2.0.0 Ok\r\n";
	size_t	 len = strlen(want);

	(void)state;
	/* exactly fits (len + NUL), one byte less fails */
	assert_int_equal(smtp_reply_format(buf, len + 1, 250, "2.0.0", "Ok"),
	    (int)len);
	assert_int_equal(smtp_reply_format(buf, len, 250, "2.0.0", "Ok"), -1);
	assert_int_equal(smtp_reply_format(buf, 0, 250, "2.0.0", "Ok"), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
