/* test_table.c: plain-file table parsing, errors with FILE:LINE, lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/table.h"

#define TEST_KEY_MAX	320	/* table.c: TABLE_KEY_MAX */
#define TEST_LINE_MAX	8192	/* table.c: TABLE_LINE_MAX */

struct kv {
	const char	*key;
	const char	*value;	/* NULL: must be absent */
};

static const struct {
	const char	*name;
	const char	*text;
	int		 line;	/* 0: loads; else the line the error names */
	const char	*msg;	/* substring of the error */
	size_t		 count;
	struct kv	 kv[6];
} cases[] = {
	{ "empty", "", 0, NULL, 0, { { "a", NULL } } },
	{ "comments and blanks",
	  "# comment\n\n   \t\n  # indented comment\nk v\n", 0, NULL, 1,
	  { { "k", "v" }, { "#", NULL }, { "# comment", NULL } } },
	{ "colon", "alias: a@b, c\n", 0, NULL, 1,
	  { { "alias", "a@b, c" }, { "alias:", NULL } } },
	{ "colon no space", "k:v\n", 0, NULL, 1, { { "k", "v" } } },
	{ "space", "user@example.org   $2b$hash  \n", 0, NULL, 1,
	  { { "user@example.org", "$2b$hash" } } },
	{ "key only", "bob\nann:\ncarl:   \n", 0, NULL, 3,
	  { { "bob", "" }, { "ann", "" }, { "carl", "" } } },
	{ "leading space and tab", " \tk\t v w \t\n", 0, NULL, 1,
	  { { "k", "v w" } } },
	{ "crlf", "a: 1\r\nb 2\r\n# c\r\n\r\nd\r\n", 0, NULL, 3,
	  { { "a", "1" }, { "b", "2" }, { "d", "" } } },
	{ "no final newline", "a 1\nb 2", 0, NULL, 2,
	  { { "a", "1" }, { "b", "2" } } },
	{ "case folded", "Bob@Example.ORG X Y\n", 0, NULL, 1,
	  { { "bob@example.org", "X Y" }, { "BOB@EXAMPLE.org", "X Y" },
	    { "bob@example.or", NULL } } },
	{ "catch-all key", "@example.org: admin\n", 0, NULL, 1,
	  { { "@example.org", "admin" } } },
	{ "colon in value", "k: a:b :c\n", 0, NULL, 1, { { "k", "a:b :c" } } },
	{ "duplicate", "a 1\n# x\nb 2\nA 3\n", 4,
	  "duplicate key 'a' (first on line 1)", 0, { { NULL, NULL } } },
	{ "duplicate crlf", "x\r\ny\r\nx: 2\r\n", 3,
	  "duplicate key 'x' (first on line 1)", 0, { { NULL, NULL } } },
	{ "empty key", "ok 1\n: v\n", 2, "empty key", 0, { { NULL, NULL } } },
};

/* A temp file holding len bytes of text; the caller unlinks and frees. */
static char *
write_temp(const char *text, size_t len)
{
	char	*path = strdup("/tmp/petrel-test-table-XXXXXX");
	int	 fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	return path;
}

/* err must be "path:line: ...msg..." */
static void
assert_error(const char *err, const char *path, int line, const char *msg)
{
	char	 want[512];

	snprintf(want, sizeof(want), "%s:%d: ", path, line);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("error '%s' does not start with '%s'", err, want);
	if (msg != NULL && strstr(err, msg) == NULL)
		fail_msg("error '%s' lacks '%s'", err, msg);
}

static void
test_cases(void **state)
{
	struct table *t;
	char	 err[512];
	char	*path;
	size_t	 i, j;
	int	 rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("case %s\n", cases[i].name);
		path = write_temp(cases[i].text, strlen(cases[i].text));
		err[0] = '\0';
		t = (struct table *)1;
		rc = table_load(path, 0, &t, err, sizeof(err));
		if (cases[i].line != 0) {
			assert_int_equal(rc, -1);
			assert_null(t);
			assert_error(err, path, cases[i].line, cases[i].msg);
		} else {
			assert_int_equal(rc, 0);
			assert_non_null(t);
			assert_int_equal(table_count(t), cases[i].count);
			for (j = 0; j < 6 && cases[i].kv[j].key != NULL; j++) {
				const char *v = table_get(t,
				    cases[i].kv[j].key);

				if (cases[i].kv[j].value == NULL)
					assert_null(v);
				else {
					assert_non_null(v);
					assert_string_equal(v,
					    cases[i].kv[j].value);
				}
			}
		}
		table_free(t == (struct table *)1 ? NULL : t);
		unlink(path);
		free(path);
	}
}

/* A file of prefix, then a key of klen bytes and a value, then suffix. */
static int
load_key(size_t klen, char *err, size_t errlen, char **pathp)
{
	struct table *t = NULL;
	char	*text = malloc(klen + 64);
	size_t	 n;
	int	 rc;

	assert_non_null(text);
	n = (size_t)snprintf(text, klen + 64, "first 1\n");
	memset(text + n, 'K', klen);
	n += klen;
	n += (size_t)snprintf(text + n, klen + 64 - n, ": v\n");
	*pathp = write_temp(text, n);
	free(text);
	rc = table_load(*pathp, 0, &t, err, errlen);
	if (rc == 0) {
		char	*key = malloc(klen + 1);

		assert_non_null(key);
		memset(key, 'k', klen);
		key[klen] = '\0';
		assert_string_equal(table_get(t, key), "v");
		key[0] = 'K';
		assert_string_equal(table_get(t, key), "v");
		free(key);
	}
	table_free(t);
	return rc;
}

static void
test_key_limit(void **state)
{
	char	 err[512];
	char	*path;

	(void)state;
	assert_int_equal(load_key(TEST_KEY_MAX, err, sizeof(err), &path), 0);
	unlink(path);
	free(path);
	assert_int_equal(load_key(TEST_KEY_MAX + 1, err, sizeof(err), &path),
	    -1);
	assert_error(err, path, 2, "key too long");
	unlink(path);
	free(path);
}

/* Line 2 holds exactly len bytes (before the line end eol). */
static int
load_line(size_t len, const char *eol, char *err, size_t errlen,
    char **pathp)
{
	struct table *t = NULL;
	char	*text = malloc(len + 64);
	size_t	 n;
	int	 rc;

	assert_non_null(text);
	n = (size_t)snprintf(text, len + 64, "first 1\nk ");
	memset(text + n, 'v', len - 2);
	n += len - 2;
	n += (size_t)snprintf(text + n, len + 64 - n, "%s", eol);
	*pathp = write_temp(text, n);
	free(text);
	rc = table_load(*pathp, 0, &t, err, errlen);
	if (rc == 0) {
		assert_int_equal(table_count(t), 2);
		assert_int_equal(strlen(table_get(t, "k")), len - 2);
	}
	table_free(t);
	return rc;
}

static void
test_line_limit(void **state)
{
	static const char *const eols[] = { "\n", "\r\n", "" };
	char	 err[512];
	char	*path;
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(eols) / sizeof(eols[0]); i++) {
		assert_int_equal(load_line(TEST_LINE_MAX, eols[i], err,
		    sizeof(err), &path), 0);
		unlink(path);
		free(path);
		assert_int_equal(load_line(TEST_LINE_MAX + 1, eols[i], err,
		    sizeof(err), &path), -1);
		assert_error(err, path, 2, "line too long");
		unlink(path);
		free(path);
		assert_int_equal(load_line(TEST_LINE_MAX * 4, eols[i], err,
		    sizeof(err), &path), -1);
		assert_error(err, path, 2, "line too long");
		unlink(path);
		free(path);
	}
}

static void
test_nul_byte(void **state)
{
	struct table *t = NULL;
	char	 err[512];
	char	*path = write_temp("a 1\nb \0x\n", 9);

	(void)state;
	assert_int_equal(table_load(path, 0, &t, err, sizeof(err)), -1);
	assert_null(t);
	assert_error(err, path, 2, "NUL");
	unlink(path);
	free(path);
}

static void
test_missing(void **state)
{
	struct table *t = NULL;
	char	 err[512] = "";
	const char *path = "/tmp/petrel-test-table-does-not-exist/x";

	(void)state;
	assert_int_equal(table_load(path, 0, &t, err, sizeof(err)), -1);
	assert_null(t);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "No such file"));

	assert_int_equal(table_load(path, 1, &t, err, sizeof(err)), 0);
	assert_non_null(t);
	assert_int_equal(table_count(t), 0);
	assert_null(table_get(t, "x"));
	table_free(t);

	/* missing_ok covers only a missing file, not an unreadable one */
	assert_int_equal(table_load("/tmp", 1, &t, err, sizeof(err)), -1);
	assert_null(t);
}

static void
test_empty(void **state)
{
	struct table *t = table_empty();

	(void)state;
	assert_int_equal(table_count(t), 0);
	assert_null(table_get(t, ""));
	assert_null(table_get(t, "a"));
	table_free(t);
	table_free(NULL);
}

/* Keys with bytes over 0x7f (UTF-8 local parts, RFC 6531) are found:
   only ASCII letters fold, the rest must match byte for byte. */
static void
test_utf8_keys(void **state)
{
	static const char text[] =
	    "j\xc3\xb6rg@example.org a\n"
	    "J\xc3\x96RG@example.org b\n"
	    "\xe4\xbd\xa0\xe5\xa5\xbd@example.org c\n";
	struct table *t;
	char	 err[512];
	char	*path = write_temp(text, sizeof(text) - 1);

	(void)state;
	assert_int_equal(table_load(path, 0, &t, err, sizeof(err)), 0);
	assert_int_equal(table_count(t), 3);
	assert_string_equal(table_get(t, "j\xc3\xb6rg@example.org"), "a");
	assert_string_equal(table_get(t, "J\xc3\xb6RG@Example.Org"), "a");
	/* \xc3\x96 is another letter (capital O-umlaut): its own key */
	assert_string_equal(table_get(t, "j\xc3\x96rg@example.org"), "b");
	assert_string_equal(table_get(t, "\xe4\xbd\xa0\xe5\xa5\xbd@EXAMPLE.org"),
	    "c");
	assert_null(table_get(t, "j\xc3\xb7rg@example.org"));
	table_free(t);
	unlink(path);
	free(path);
}

static void
test_many(void **state)
{
	enum { N = 100000 };
	struct table *t = NULL;
	char	 err[512], key[64], want[64];
	char	*text, *path;
	size_t	 n = 0, i;

	(void)state;
	text = malloc((size_t)N * 48);
	assert_non_null(text);
	for (i = 0; i < N; i++)
		n += (size_t)snprintf(text + n, (size_t)N * 48 - n,
		    "User%zu@Example.ORG: value-%zu\n", i, i * 7);
	path = write_temp(text, n);
	free(text);
	assert_int_equal(table_load(path, 0, &t, err, sizeof(err)), 0);
	assert_int_equal(table_count(t), N);
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "user%zu@example.org", i);
		snprintf(want, sizeof(want), "value-%zu", i * 7);
		assert_string_equal(table_get(t, key), want);
	}
	assert_null(table_get(t, "user100000@example.org"));
	assert_null(table_get(t, "user1@example.or"));
	table_free(t);
	unlink(path);
	free(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_utf8_keys),
		cmocka_unit_test(test_key_limit),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
