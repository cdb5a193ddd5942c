/* test_log.c: the line format, held lines and their single write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

struct capture {
	char	 path[64];
	int	 fd;		/* the file stderr writes to */
	int	 saved;		/* the real stderr */
};

static int
setup(void **state)
{
	struct capture *c = calloc(1, sizeof(*c));

	snprintf(c->path, sizeof(c->path), "/tmp/petrel-test-log.XXXXXX");
	if ((c->fd = mkstemp(c->path)) == -1)
		return -1;
	c->saved = dup(STDERR_FILENO);
	dup2(c->fd, STDERR_FILENO);
	log_init(LOG_LVL_INFO);
	*state = c;
	return 0;
}

static int
teardown(void **state)
{
	struct capture *c = *state;

	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	close(c->fd);
	unlink(c->path);
	free(c);
	return 0;
}

/* What stderr got so far, NUL-terminated; caller frees. */
static char *
got(const struct capture *c)
{
	struct stat st;
	char	*b;

	assert_int_equal(fstat(c->fd, &st), 0);
	b = calloc(1, (size_t)st.st_size + 1);
	assert_int_equal(pread(c->fd, b, (size_t)st.st_size, 0), st.st_size);
	return b;
}

static void
test_line_format(void **state)
{
	struct capture *c = *state;
	regex_t	 re;
	char	*b, want[128];

	log_info("- test hello n=%d", 42);
	log_debug("- test hidden");	/* below the level: nothing */
	b = got(c);
	snprintf(want, sizeof(want), "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:"
	    "[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z petrel\\[%ld\\]: - test hello n=42\n$",
	    (long)getpid());
	assert_int_equal(regcomp(&re, want, REG_EXTENDED | REG_NOSUB), 0);
	assert_int_equal(regexec(&re, b, 0, NULL, 0), 0);
	regfree(&re);
	free(b);
}

static void
test_held_lines_wait_for_release(void **state)
{
	struct capture *c = *state;
	char	*b;

	log_hold();
	log_info("A one");
	log_hold();	/* nested: the outer release writes */
	log_info("A two");
	log_release();
	b = got(c);
	assert_string_equal(b, "");
	free(b);
	log_warn("A three");
	log_release();
	b = got(c);
	assert_non_null(strstr(b, ": A one\n"));
	assert_true(strstr(b, ": A one\n") < strstr(b, ": A two\n"));
	assert_true(strstr(b, ": A two\n") < strstr(b, ": A three\n"));
	free(b);
	log_release();	/* unmatched: harmless */
	log_info("B after");
	b = got(c);
	assert_non_null(strstr(b, ": B after\n"));	/* not held any more */
	free(b);
}

static void
test_held_overflow_flushes_whole_lines(void **state)
{
	struct capture *c = *state;
	char	 big[3000], *b, *line;
	int	 lines = 0;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_hold();
	for (int i = 0; i < 10; i++)	/* about 30 KiB: more than is held */
		log_info("C %d %s", i, big);
	b = got(c);
	assert_true(strlen(b) > 0);	/* some went out already */
	assert_int_equal(b[strlen(b) - 1], '\n');	/* never half a line */
	free(b);
	log_release();
	b = got(c);
	for (line = strtok(b, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		char	 want[32];

		snprintf(want, sizeof(want), ": C %d x", lines);
		assert_non_null(strstr(line, want));
		assert_int_equal(strlen(strstr(line, want)) - strlen(want) + 1,
		    sizeof(big) - 1);
		lines++;
	}
	assert_int_equal(lines, 10);
	free(b);
}

static void
test_long_line_is_cut_to_one_line(void **state)
{
	struct capture *c = *state;
	char	*big = malloc(10000), *b;

	memset(big, 'y', 9999);
	big[9999] = '\0';
	log_info("D %s", big);
	log_info("E next");
	b = got(c);
	assert_true(strlen(b) < 4096 + 200);
	assert_non_null(strstr(b, "yyy\n"));
	assert_non_null(strstr(b, ": E next\n"));
	free(b);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_line_format, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_held_lines_wait_for_release,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_held_overflow_flushes_whole_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_long_line_is_cut_to_one_line, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
