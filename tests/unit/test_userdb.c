/* test_userdb.c: password hashes and SCRAM keys in the user table, and
   rewriting one line of the users file. */
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
#include <unistd.h>

#include "auth/userdb.h"
#include "core/util.h"

static char	 dir[] = "/tmp/petrel-test-userdb-XXXXXX";

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char	 cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *
path_of(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static void
write_file(const char *path, const char *text)
{
	int	 fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)),
	    (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
}

/* The file's contents, NUL-terminated; caller frees. */
static char *
read_file(const char *path)
{
	FILE	*fp = fopen(path, "r");
	char	*buf = xcalloc(1, 65536);

	assert_non_null(fp);
	(void)!fread(buf, 1, 65535, fp);
	fclose(fp);
	return buf;
}

static void
test_hash_and_check(void **state)
{
	char	*entry, *path, *text;
	struct table *t = NULL;
	struct sasl_scram_creds c;
	char	 err[512];

	(void)state;
	entry = userdb_make_entry("correct horse");
	assert_non_null(entry);
	assert_true(strncmp(entry, "$y$", 3) == 0 ||
	    strncmp(entry, "$6$", 3) == 0);
	assert_non_null(strstr(entry, " scram-sha-256:4096:"));
	assert_null(strchr(entry, '\n'));

	path = path_of("users-check");
	text = xasprintf("# test\nbob@example.org %s\ncarl@example.org\n"
	    "dave@example.org scram-sha-256:bad\n", entry);
	write_file(path, text);
	assert_int_equal(table_load(path, 0, &t, err, sizeof(err)), 0);

	assert_true(userdb_check_password(t, "bob@example.org",
	    "correct horse"));
	assert_true(userdb_check_password(t, "BOB@Example.org",
	    "correct horse"));
	assert_false(userdb_check_password(t, "bob@example.org",
	    "correct horsE"));
	assert_false(userdb_check_password(t, "bob@example.org", ""));
	assert_false(userdb_check_password(t, "nobody@example.org",
	    "correct horse"));
	assert_false(userdb_check_password(t, "carl@example.org", ""));
	assert_false(userdb_check_password(t, "dave@example.org", "bad"));
	assert_false(userdb_check_password(NULL, "bob@example.org",
	    "correct horse"));

	assert_int_equal(userdb_scram(t, "bob@example.org", &c), 0);
	assert_int_equal(c.iterations, 4096);
	assert_int_equal(c.salt_len, 16);
	assert_int_equal(userdb_scram(t, "nobody@example.org", &c), -1);
	assert_int_equal(userdb_scram(t, "carl@example.org", &c), -1);
	assert_int_equal(userdb_scram(t, "dave@example.org", &c), -1);

	/* two entries for one password differ (random salts) */
	{
		char	*again = userdb_make_entry("correct horse");

		assert_non_null(again);
		assert_string_not_equal(again, entry);
		free(again);
	}
	table_free(t);
	unlink(path);
	free(path);
	free(text);
	free(entry);
}

static void
test_check_legacy_hash(void **state)
{
	/* a SHA-512-crypt line made elsewhere (password "pencil") */
	static const char line[] = "ann@example.org "
	    "$6$0IcDP6fiC.aPHjw8$eFsqKW8/pOFqdRgMsa.V8/usg0N7hiUPP6JMvjC6"
	    "f6LSSu8TZYOxpM0eP/8T2dztgZ0qvyhl.wFZTnKDRKZJ9.\n";
	char	*path = path_of("users-legacy"), err[512];
	struct table *t = NULL;
	struct sasl_scram_creds c;

	(void)state;
	write_file(path, line);
	assert_int_equal(table_load(path, 0, &t, err, sizeof(err)), 0);
	assert_true(userdb_check_password(t, "ann@example.org", "pencil"));
	assert_false(userdb_check_password(t, "ann@example.org", "pencil2"));
	assert_int_equal(userdb_scram(t, "ann@example.org", &c), -1);
	table_free(t);
	unlink(path);
	free(path);
}

static void
test_file_set(void **state)
{
	static const struct {
		const char	*name;
		const char	*before;	/* NULL: no file */
		const char	*user;
		const char	*after;
	} cases[] = {
		{ "new file", NULL, "bob@example.org",
		  "bob@example.org V\n" },
		{ "empty file", "", "bob@example.org", "bob@example.org V\n" },
		{ "append",
		  "# comment\n\nann@example.org x\n", "bob@example.org",
		  "# comment\n\nann@example.org x\nbob@example.org V\n" },
		{ "append, no final newline",
		  "ann@example.org x", "bob@example.org",
		  "ann@example.org x\nbob@example.org V\n" },
		{ "replace, keep the rest",
		  "# users\r\n  # indented\nBob@Example.org: old hash\n"
		  "bobby@example.org y\n\t\nann@example.org   x  \n",
		  "bob@example.org",
		  "# users\r\n  # indented\nbob@example.org V\n"
		  "bobby@example.org y\n\t\nann@example.org   x  \n" },
		{ "replace crlf line", "a x\r\nbob@example.org old\r\nb y\r\n",
		  "bob@example.org",
		  "a x\r\nbob@example.org V\r\nb y\r\n" },
		{ "replace last line without newline", "a x\nbob@example.org",
		  "bob@example.org", "a x\nbob@example.org V\n" },
		{ "commented-out user is not the user",
		  "#bob@example.org old\n", "bob@example.org",
		  "#bob@example.org old\nbob@example.org V\n" },
		{ "key only line", "  bob@example.org\n", "bob@example.org",
		  "bob@example.org V\n" },
		{ "prefix is not the user", "bob@example.org.uk x\n",
		  "bob@example.org",
		  "bob@example.org.uk x\nbob@example.org V\n" },
	};
	char	*path = path_of("users-set"), *got, *tmp, err[512];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct stat st;

		print_message("%s\n", cases[i].name);
		unlink(path);
		if (cases[i].before != NULL)
			write_file(path, cases[i].before);
		assert_int_equal(userdb_file_set(path, cases[i].user, "V", err,
		    sizeof(err)), 0);
		got = read_file(path);
		assert_string_equal(got, cases[i].after);
		free(got);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777,
		    cases[i].before != NULL ? 0644 : 0600);
	}
	/* no temp file left behind */
	tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	assert_int_equal(access(tmp, F_OK), -1);
	free(tmp);

	/* the mode of an existing file is kept */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(userdb_file_set(path, "x@example.org", "1", err,
	    sizeof(err)), 0);
	{
		struct stat st;
		struct table *t = NULL;

		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0640);
		/* and what we wrote loads */
		assert_int_equal(table_load(path, 0, &t, err, sizeof(err)), 0);
		assert_string_equal(table_get(t, "x@example.org"), "1");
		assert_string_equal(table_get(t, "bob@example.org"), "V");
		table_free(t);
	}
	unlink(path);
	free(path);
}

static void
test_file_set_errors(void **state)
{
	static const char *bad_users[] = {
		"", "a b", "#x", "a:b", "a\tb", "a\nb", "a\x7f",
	};
	char	*path = path_of("users-err"), *got, err[512];
	struct table *t = NULL;
	char	 longuser[400];

	(void)state;
	write_file(path, "keep me\n");
	for (size_t i = 0; i < ARRAY_LEN(bad_users); i++) {
		err[0] = '\0';
		assert_int_equal(userdb_file_set(path, bad_users[i], "v", err,
		    sizeof(err)), -1);
		assert_true(err[0] != '\0');
	}
	memset(longuser, 'a', sizeof(longuser));
	longuser[320] = '\0';
	assert_int_equal(userdb_file_set(path, longuser, "v", err,
	    sizeof(err)), 0);
	longuser[320] = 'a';
	longuser[321] = '\0';
	assert_int_equal(userdb_file_set(path, longuser, "v", err,
	    sizeof(err)), -1);
	assert_int_equal(userdb_file_set(path, "u@x", "a\nb", err,
	    sizeof(err)), -1);
	assert_int_equal(userdb_file_set(path, "u@x", "a\rb", err,
	    sizeof(err)), -1);
	{
		/* a line the table could not load again: refused */
		char	*big = malloc(TABLE_LINE_MAX);

		assert_non_null(big);
		memset(big, 'v', TABLE_LINE_MAX - 4);
		big[TABLE_LINE_MAX - 4] = '\0';	/* "u@x " + 8188 = 8192 */
		assert_int_equal(userdb_file_set(path, "u@x", big, err,
		    sizeof(err)), 0);
		assert_int_equal(table_load(path, 0, &t, err, sizeof(err)), 0);
		assert_string_equal(table_get(t, "u@x"), big);
		table_free(t);
		big[TABLE_LINE_MAX - 4] = 'v';
		big[TABLE_LINE_MAX - 3] = '\0';
		err[0] = '\0';
		assert_int_equal(userdb_file_set(path, "u@x", big, err,
		    sizeof(err)), -1);
		assert_non_null(strstr(err, "over 8192 bytes"));
		free(big);
		assert_int_equal(userdb_file_set(path, "u@x", "small", err,
		    sizeof(err)), 0);
	}
	got = read_file(path);
	assert_true(strncmp(got, "keep me\naaaa", 12) == 0);
	free(got);
	/* a directory that does not exist */
	free(path);
	path = path_of("no/such/users");
	assert_int_equal(userdb_file_set(path, "u@x", "v", err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "no/such/users"));
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_and_check),
		cmocka_unit_test(test_check_legacy_hash),
		cmocka_unit_test(test_file_set),
		cmocka_unit_test(test_file_set_errors),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
