/* test_util.c: string escaping, mkdir_p, dates, write helper. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/util.h"

static void
test_escape(void **state)
{
	static const struct {
		const char	*in;
		size_t		 len;
		size_t		 cap;
		const char	*want;
	} cases[] = {
		{ "plain", 5, 64, "plain" },
		{ "a\r\nb", 4, 64, "a\\x0D\\x0Ab" },
		{ "q\"b\\", 4, 64, "q\\x22b\\x5C" },
		{ "nul\0x", 5, 64, "nul\\x00x" },
		{ "abcdef", 6, 4, "abc" },		/* cut, NUL kept */
		{ "\x01", 1, 4, "" },			/* escape does not fit */
		{ "\x01", 1, 5, "\\x01" },		/* exactly fits */
		{ "", 0, 1, "" },
		{ "caf\xc3\xa9", 5, 64, "caf\xc3\xa9" },	/* UTF-8 kept */
	};
	char	 out[64];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		str_escape(cases[i].in, cases[i].len, out, cases[i].cap);
		assert_string_equal(out, cases[i].want);
	}
}

static void
test_lower_prefix(void **state)
{
	char	 s[] = "MiXeD@Example.ORG";

	(void)state;
	assert_string_equal(str_lower(s), "mixed@example.org");
	assert_true(str_case_prefix("FROM:<a>", 8, "from:"));
	assert_false(str_case_prefix("FRO", 3, "from:"));
	assert_false(str_case_prefix("TO:<a>", 6, "from:"));
}

static void
test_mkdir_write(void **state)
{
	char	 base[] = "/tmp/petrel-util-XXXXXX", path[256], buf[16];
	int	 fd;
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(base));
	snprintf(path, sizeof(path), "%s/a/b/c", base);
	assert_int_equal(mkdir_p(path, 0700), 0);
	assert_int_equal(mkdir_p(path, 0700), 0);	/* exists: fine */
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(fsync_dir(path), 0);
	snprintf(path, sizeof(path), "%s/a/file", base);
	fd = open(path, O_RDWR | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(io_write_all(fd, "hello", 5), 0);
	assert_int_equal(pread(fd, buf, sizeof(buf), 0), 5);
	close(fd);
	/* a path through a regular file cannot be made */
	snprintf(path, sizeof(path), "%s/a/file/x", base);
	assert_int_equal(mkdir_p(path, 0700), -1);
	/* an existing regular file is not a directory */
	snprintf(path, sizeof(path), "%s/a/file", base);
	assert_int_equal(mkdir_p(path, 0700), -1);
	assert_int_equal(fsync_dir("/nonexistent/petrel"), -1);
	snprintf(path, sizeof(path), "rm -rf %s", base);
	assert_int_equal(system(path), 0);
}

static void
test_date(void **state)
{
	char	 out[64];

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	rfc5322_date(0, out, sizeof(out));
	assert_string_equal(out, "Thu, 1 Jan 1970 00:00:00 +0000");
	rfc5322_date(1795405200, out, sizeof(out));
	assert_string_equal(out, "Mon, 23 Nov 2026 03:40:00 +0000");
	setenv("TZ", "EST5", 1);
	tzset();
	rfc5322_date(0, out, sizeof(out));
	assert_string_equal(out, "Wed, 31 Dec 1969 19:00:00 -0500");
	assert_true(now_usec() > 1700000000ull * 1000000u);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_lower_prefix),
		cmocka_unit_test(test_mkdir_write),
		cmocka_unit_test(test_date),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
