/*
 * userdb.c: passwords in the user table: crypt(3) hashes and SCRAM keys,
 * checking them and rewriting one line of the users file. Checks block
 * (crypt is slow on purpose): call them from a worker, never the loop.
 */
#include "auth/userdb.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/util.h"

#define USERDB_FILE_MAX		(64u << 20)	/* bytes we read back */
#define USERDB_SCRAM_PREFIX	"scram-sha-256:"

/*
 * Hashed when the user is unknown or has no hash, so that a check takes
 * as long either way. The password behind them is thrown away.
 */
static const char userdb_dummy_yescrypt[] =
    "$y$j9T$eKscLi/rUx3MJELKw2m9l/$4JiF8TMHvKoximzs9mEMcxV02/YFH7pE1u.ULjEoKT9";
static const char userdb_dummy_sha512[] =
    "$6$0IcDP6fiC.aPHjw8$Yotk.BS5V1fw2ZIONoeKtUspSS3Zb6Rvr5phnFArbiGdXK.mT2"
    "JuYUZAJUDbGOdfQkOibVaO8SVYjmiDyDTe9.";

static bool
userdb_is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
	    c == '\v' || c == '\f';
}

/* The next whitespace-separated token of *p; false at the end. */
static bool
userdb_token(const char **p, const char **tok, size_t *len)
{
	const char *s = *p;

	while (userdb_is_space((unsigned char)*s))
		s++;
	if (*s == '\0')
		return false;
	*tok = s;
	while (*s != '\0' && !userdb_is_space((unsigned char)*s))
		s++;
	*len = (size_t)(s - *tok);
	*p = s;
	return true;
}

static bool
userdb_is_scram(const char *tok, size_t len)
{
	return str_case_prefix(tok, len, USERDB_SCRAM_PREFIX);
}

/* crypt_r(password, setting) == setting, in constant time. */
static bool
userdb_crypt_match(const char *password, const char *setting,
    struct crypt_data *data)
{
	const char *h;
	size_t	 len = strlen(setting);

	memset(data, 0, sizeof(*data));
	h = crypt_r(password, setting, data);
	/* Failures are NULL or a string starting with '*' (crypt(5)). */
	if (h == NULL || h[0] == '*' || strlen(h) != len)
		return false;
	return CRYPTO_memcmp(h, setting, len) == 0;
}

/* Spend the time a real check takes; the result does not matter. */
static void
userdb_crypt_dummy(const char *password, struct crypt_data *data)
{
	const char *h;

	memset(data, 0, sizeof(*data));
	h = crypt_r(password, userdb_dummy_yescrypt, data);
	if (h == NULL || h[0] == '*') {		/* no yescrypt here */
		memset(data, 0, sizeof(*data));
		(void)crypt_r(password, userdb_dummy_sha512, data);
	}
}

bool
userdb_check_password(const struct table *users, const char *user,
    const char *password)
{
	struct crypt_data *data = xmalloc(sizeof(*data));
	const char *value, *p, *tok;
	char	*hash = NULL;
	size_t	 len;
	bool	 ok = false;

	value = table_get(users, user);
	p = value != NULL ? value : "";
	if (userdb_token(&p, &tok, &len) && !userdb_is_scram(tok, len))
		hash = xstrndup(tok, len);
	if (hash != NULL)
		ok = userdb_crypt_match(password, hash, data);
	else
		userdb_crypt_dummy(password, data);	/* ok stays false */
	OPENSSL_cleanse(data, sizeof(*data));
	free(data);
	free(hash);
	return ok;
}

int
userdb_scram(const struct table *users, const char *user,
    struct sasl_scram_creds *out)
{
	const char *p, *tok;
	size_t	 len;

	memset(out, 0, sizeof(*out));
	if ((p = table_get(users, user)) == NULL)
		return -1;
	while (userdb_token(&p, &tok, &len))
		if (userdb_is_scram(tok, len))
			return sasl_scram_parse(tok, len, out);
	return -1;
}

char *
userdb_make_entry(const char *password)
{
	struct crypt_data *data = xcalloc(1, sizeof(*data));
	struct sasl_scram_creds creds;
	char	 setting[CRYPT_GENSALT_OUTPUT_SIZE], scram[256];
	char	*entry = NULL;
	const char *h;

	/* yescrypt where libcrypt has it, else SHA-512-crypt */
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, setting, sizeof(setting)) ==
	    NULL && crypt_gensalt_rn("$6$", 0, NULL, 0, setting,
	    sizeof(setting)) == NULL)
		goto out;
	h = crypt_r(password, setting, data);
	if (h == NULL || h[0] == '*')
		goto out;
	if (sasl_scram_derive(password, SASL_SCRAM_ITERATIONS, &creds) == -1 ||
	    sasl_scram_format(&creds, scram, sizeof(scram)) < 0)
		goto out;
	entry = xasprintf("%s %s", h, scram);
out:
	OPENSSL_cleanse(&creds, sizeof(creds));
	OPENSSL_cleanse(data, sizeof(*data));
	free(data);
	return entry;
}

/* A key a table line can hold and a later table_load() accepts. */
static bool
userdb_key_ok(const char *user)
{
	size_t	 len = strlen(user);

	if (len == 0 || len > TABLE_KEY_MAX || user[0] == '#')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)user[i];

		if (c < 0x21 || c == 0x7f || c == ':')
			return false;
	}
	return true;
}

/* Read all of path into *buf (*len bytes). A missing file is empty. */
static int
userdb_read(const char *path, char **buf, size_t *len, struct stat *st,
    bool *exists, char *err, size_t errlen)
{
	size_t	 cap = 4096;
	ssize_t	 n;
	int	 fd, rc = -1;

	*buf = NULL;
	*len = 0;
	*exists = false;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	*exists = true;
	*buf = xmalloc(cap);
	for (;;) {
		if (*len == cap) {
			if (cap >= USERDB_FILE_MAX) {
				snprintf(err, errlen, "%s: larger than %u "
				    "bytes", path, USERDB_FILE_MAX);
				goto out;
			}
			cap *= 2;
			*buf = xrealloc(*buf, cap);
		}
		n = read(fd, *buf + *len, cap - *len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		*len += (size_t)n;
	}
	rc = 0;
out:
	close(fd);	/* read-only: nothing to lose */
	if (rc == -1) {
		free(*buf);
		*buf = NULL;
	}
	return rc;
}

/* True if line (len bytes, no '\n') is a table line for key user. */
static bool
userdb_line_is(const char *line, size_t len, const char *user)
{
	size_t	 i = 0, start, ulen = strlen(user);

	while (i < len && userdb_is_space((unsigned char)line[i]))
		i++;
	if (i == len || line[i] == '#')
		return false;
	start = i;
	while (i < len && !userdb_is_space((unsigned char)line[i]) &&
	    line[i] != ':')
		i++;
	/* keys are ASCII-lowercased by table.c, so compare that way */
	return i - start == ulen && strncasecmp(line + start, user, ulen) == 0;
}

/*
 * The new file: every line as it was, but the one for user replaced by
 * "user value" (keeping its line end), or that line appended.
 */
static char *
userdb_rewrite(const char *old, size_t len, const char *user,
    const char *value, size_t *outlen)
{
	size_t	 cap = len + strlen(user) + strlen(value) + 4, o = 0;
	size_t	 pos = 0;
	char	*out = xmalloc(cap);
	bool	 done = false;

	while (pos < len) {
		const char *eol = memchr(old + pos, '\n', len - pos);
		size_t	 end = eol != NULL ? (size_t)(eol - old) : len;
		size_t	 next = eol != NULL ? end + 1 : len;
		bool	 crlf = end > pos && old[end - 1] == '\r';

		if (!done && userdb_line_is(old + pos, end - pos, user)) {
			o += (size_t)snprintf(out + o, cap - o, "%s %s%s",
			    user, value, crlf ? "\r\n" : "\n");
			done = true;
		} else {
			memcpy(out + o, old + pos, next - pos);
			o += next - pos;
		}
		pos = next;
	}
	if (!done) {
		if (len > 0 && old[len - 1] != '\n')
			out[o++] = '\n';
		o += (size_t)snprintf(out + o, cap - o, "%s %s\n", user, value);
	}
	*outlen = o;
	return out;
}

int
userdb_file_set(const char *path, const char *user, const char *value,
    char *err, size_t errlen)
{
	struct stat st;
	char	*old = NULL, *text = NULL, *tmp = NULL, *dir = NULL, *slash;
	size_t	 len = 0, tlen = 0;
	bool	 exists;
	int	 fd = -1, rc = -1;

	if (!userdb_key_ok(user)) {
		snprintf(err, errlen, "invalid user name '%s'", user);
		return -1;
	}
	if (strpbrk(value, "\r\n") != NULL) {
		snprintf(err, errlen, "line break in the value for '%s'",
		    user);
		return -1;
	}
	if (strlen(user) + 1 + strlen(value) > TABLE_LINE_MAX) {
		/* the file would no longer load */
		snprintf(err, errlen, "the line for '%s' would be over %d "
		    "bytes", user, TABLE_LINE_MAX);
		return -1;
	}
	if (userdb_read(path, &old, &len, &st, &exists, err, errlen) == -1)
		return -1;
	text = userdb_rewrite(old, len, user, value, &tlen);

	tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	(void)unlink(tmp);	/* left over by a crashed run with our pid */
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	/*
	 * Keep the old file's owner and mode (the server may read it
	 * through its group); a new file stays 0600.
	 */
	if (exists && ((st.st_uid != geteuid() || st.st_gid != getegid()) &&
	    fchown(fd, st.st_uid, st.st_gid) == -1)) {
		snprintf(err, errlen, "%s: cannot keep owner %ld:%ld: %s", tmp,
		    (long)st.st_uid, (long)st.st_gid, strerror(errno));
		goto out;
	}
	if (exists && fchmod(fd, st.st_mode & 0666) == -1) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (io_write_all(fd, text, tlen) == -1 || fsync(fd) == -1) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) == -1) {
		fd = -1;
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		snprintf(err, errlen, "rename %s to %s: %s", tmp, path,
		    strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;	/* renamed: nothing to unlink any more */

	dir = xstrdup(path);
	if ((slash = strrchr(dir, '/')) == NULL) {
		free(dir);
		dir = xstrdup(".");
	} else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (fsync_dir(dir) == -1) {
		snprintf(err, errlen, "%s: fsync: %s", dir, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd != -1)
		close(fd);	/* failed already; the temp file goes */
	if (tmp != NULL)
		unlink(tmp);	/* never leave a half-written file behind */
	free(old);
	free(text);
	free(tmp);
	free(dir);
	return rc;
}
