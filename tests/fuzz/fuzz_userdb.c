/*
 * fuzz_userdb.c: `petrel passwd` rewriting a users file it did not write:
 * userdb_file_set() on arbitrary old contents, user names and values.
 * Input: "user\0value\0old file". Beyond not crashing or leaking, it
 * checks what the rewrite promises (an administrator's file is at stake):
 * where the old file was a valid table, the new one is too; it holds value
 * for user; every other user keeps its line; and a user that was not
 * there is appended, the old bytes kept exactly.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/userdb.h"
#include "core/table.h"

#include "fuzz_part.h"

static char	 dir[64];
static char	 path[128];

static void
rm_dir(void)
{
	unlink(path);
	rmdir(dir);
}

static bool
is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
	    c == '\v' || c == '\f';
}

static void
put_file(const char *text, size_t len)
{
	FILE	*f = fopen(path, "we");

	if (f == NULL || fwrite(text, 1, len, f) != len || fclose(f) != 0)
		abort();
}

static char *
get_file(size_t *len)
{
	FILE	*f = fopen(path, "re");
	char	*buf;
	long	 n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 || (buf = malloc((size_t)n + 1)) == NULL)
		abort();
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		abort();
	fclose(f);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

/* The table the text is, or NULL where table_load() refuses it. */
static struct table *
load(void)
{
	struct table	*t = NULL;
	char		 err[512];

	if (table_load(path, 0, &t, err, sizeof(err)) == -1) {
		if (err[0] == '\0')
			abort();	/* a refusal says why */
		return NULL;
	}
	return t;
}

/* Every key of text other than user keeps its value from t0 in t1. */
static void
check_others(const char *text, size_t len, const char *user,
    const struct table *t0, const struct table *t1)
{
	size_t	 pos = 0;

	while (pos < len) {
		const char *eol = memchr(text + pos, '\n', len - pos);
		size_t	 end = eol != NULL ? (size_t)(eol - text) : len;
		size_t	 i = pos, k;
		char	 key[400];

		while (i < end && is_space((unsigned char)text[i]))
			i++;
		if (i < end && text[i] != '#') {
			for (k = 0; i < end && k < sizeof(key) - 1 &&
			    !is_space((unsigned char)text[i]) &&
			    text[i] != ':'; i++)
				key[k++] = text[i];
			key[k] = '\0';
			if (strcasecmp(key, user) != 0) {
				const char *a = table_get(t0, key);
				const char *b = table_get(t1, key);

				if (a == NULL || b == NULL || strcmp(a, b) != 0)
					abort();
			}
		}
		pos = eol != NULL ? end + 1 : len;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t	*p = data, *end = data + size;
	char		*user, *value, *old, *new, err[512];
	size_t		 oldlen, newlen, vs, ve;
	struct table	*t0, *t1;
	bool		 had;

	if (dir[0] == '\0') {
		/* tmpfs where there is one: the rewrite fsyncs */
		snprintf(dir, sizeof(dir), "%s/petrel-fuzz-userdb-XXXXXX",
		    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
		if (mkdtemp(dir) == NULL)
			abort();
		snprintf(path, sizeof(path), "%s/users", dir);
		atexit(rm_dir);
	}
	user = fuzz_part(&p, end);
	value = fuzz_part(&p, end);
	oldlen = (size_t)(end - p);	/* the rest, NULs and all */
	if ((old = malloc(oldlen + 1)) == NULL)
		abort();
	memcpy(old, p, oldlen);
	old[oldlen] = '\0';

	put_file(old, oldlen);
	t0 = load();
	if (userdb_file_set(path, user, value, err, sizeof(err)) == -1) {
		if (err[0] == '\0')
			abort();
		new = get_file(&newlen);	/* a refusal changes nothing */
		if (newlen != oldlen || memcmp(new, old, oldlen) != 0)
			abort();
		goto out_new;
	}
	new = get_file(&newlen);
	had = t0 != NULL && table_get(t0, user) != NULL;
	if (t0 != NULL && !had) {
		/* appended after the old bytes, which stay as they were */
		size_t	 nl = oldlen > 0 && old[oldlen - 1] != '\n';

		if (newlen != oldlen + nl + strlen(user) + 1 + strlen(value) +
		    1 || memcmp(new, old, oldlen) != 0 ||
		    new[newlen - 1] != '\n')
			abort();
	}
	if (t0 != NULL) {
		/* a valid file stays valid, with value for user */
		if ((t1 = load()) == NULL)
			abort();
		for (vs = 0; is_space((unsigned char)value[vs]); vs++)
			;
		for (ve = strlen(value); ve > vs &&
		    is_space((unsigned char)value[ve - 1]); ve--)
			;
		const char *got = table_get(t1, user);

		if (got == NULL || strlen(got) != ve - vs ||
		    memcmp(got, value + vs, ve - vs) != 0)
			abort();
		if (table_count(t1) != table_count(t0) + (had ? 0 : 1))
			abort();
		check_others(old, oldlen, user, t0, t1);
		table_free(t1);
	}
out_new:
	free(new);
	table_free(t0);
	free(user);
	free(value);
	free(old);
	return 0;
}
