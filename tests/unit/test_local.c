/*
 * test_local.c: local recipient resolution (users, aliases, loops, limits),
 * Maildir paths, and Maildir delivery into a temp directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dirsync.h"
#include "core/fsgroup.h"
#include "core/newfile.h"
#include "core/table.h"
#include "core/util.h"
#include "deliver/local.h"
#include "deliver/maildir.h"

/* A file as the message source of maildir_deliver(). */
#define FD_SRC(f)	(&(struct bytesrc){ .fd = (f) })

/* snprintf into an array, failing the test if it does not fit. */
#define FMT(buf, ...)	assert_true(snprintf((buf), sizeof(buf), __VA_ARGS__) \
			    < (int)sizeof(buf))

/* A growable test string. */
struct sbuf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

static void
sbuf_addn(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sbuf_add(struct sbuf *b, const char *fmt, ...)
{
	char	 tmp[1024];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(tmp));
	sbuf_addn(b, tmp, (size_t)n);
}

static void
sbuf_rep(struct sbuf *b, char c, size_t n)
{
	while (n-- > 0)
		sbuf_addn(b, &c, 1);
}

/* A temp file holding len bytes of text; the caller unlinks and frees. */
static char *
write_temp(const char *text, size_t len)
{
	char	*path = strdup("/tmp/petrel-test-local-XXXXXX");
	int	 fd;

	assert_non_null(path);
	fd = mkstemp(path);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	return path;
}

static struct table *
load_temp(const char *text, size_t len)
{
	struct table *t = NULL;
	char	 err[512];
	char	*path = write_temp(text, len);

	if (table_load(path, 0, &t, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	unlink(path);
	free(path);
	return t;
}

/* ---- local_resolve ---- */

static const char *const domains[] = {
	"example.org", "example.net", "localhost",
};

static const char users_text[] =
	"# user@domain password-hash\n"
	"bob@example.org $2b$x\n"
	"ann@example.org\n"
	"Dave@Example.ORG\n"
	"self@example.org\n"
	"loopu@example.org\n"
	"bob@example.net\n"
	"carl@example.net\n"
	"root@localhost\n"
	"user@localhost\n";

static const char aliases_text[] =
	"# alias: target, ...\n"
	"info: bob\n"
	"sales@example.org: ann, bob@example.org ,, Ann@Example.org, ann\n"
	"fwd@example.org: someone@Remote.Example, someone@remote.example\n"
	"mixfwd@example.org: bob, Other@Remote.Example, bob@example.org\n"
	"chain1@example.org: chain2\n"
	"chain2@example.org: chain3\n"
	"chain3@example.org: ann\n"
	"chainx@example.org: chain2\n"
	"loopa@example.org: loopb\n"
	"loopb@example.org: loopa\n"
	"loopu@example.org: loopv\n"
	"loopv@example.org: loopu\n"
	"loopc@example.org: ann, loopc2\n"
	"loopc2@example.org: bob, loopc\n"
	"self@example.org: self, self-copy@remote.example\n"
	"ghost@example.org: ghost\n"
	"mixed@example.org: nosuch, bob, nosuch2@example.org\n"
	"dead@example.org: nosuch1, nosuch2\n"
	"bad@example.org: @example.org, x@\n"
	"diamond@example.org: da, db\n"
	"da@example.org: dc\n"
	"db@example.org: dc\n"
	"dc@example.org: ann, bob\n"
	"@example.net: carl\n"
	"postmaster@localhost: nobody-here\n"
	"UPPER@EXAMPLE.ORG: Bob\n";

struct fixture {
	struct table	*users;
	struct table	*aliases;
	struct local_db	 db;
};

static int
setup_db(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sbuf a = { 0 }, u = { 0 };
	int	 i, j;

	assert_non_null(f);
	sbuf_addn(&u, users_text, strlen(users_text));
	sbuf_addn(&a, aliases_text, strlen(aliases_text));

	/* depth: d0 -> ... -> d16 takes 16 expansions, e0 -> e17 takes 17 */
	for (i = 0; i < 16; i++)
		sbuf_add(&a, "d%d@example.org: d%d\n", i, i + 1);
	sbuf_add(&u, "d16@example.org\n");
	for (i = 0; i < 17; i++)
		sbuf_add(&a, "e%d@example.org: e%d\n", i, i + 1);
	sbuf_add(&u, "e17@example.org\n");

	/* size: list1000 has 1000 members, list1001 one more */
	for (i = 0; i <= 1000; i++)
		sbuf_add(&u, "m%d@example.org\n", i);
	for (j = 1000; j <= 1001; j++) {
		sbuf_add(&a, "list%d@example.org:", j);
		for (i = 0; i < j; i++)
			sbuf_add(&a, " m%d,", i);
		sbuf_add(&a, "\n");
	}
	/* two lists of 600 overlapping in 200: 1000 distinct, still fine */
	sbuf_add(&a, "lista@example.org:");
	for (i = 0; i < 600; i++)
		sbuf_add(&a, " m%d,", i);
	sbuf_add(&a, "\nlistb@example.org:");
	for (i = 400; i < 1000; i++)
		sbuf_add(&a, " m%d,", i);
	sbuf_add(&a, "\nlistab@example.org: lista, listb\n");

	/*
	 * Shallow but wide: 20^k paths to one mailbox. Deduplication keeps
	 * the result at one address; the walk itself must still be bounded.
	 */
	for (i = 0; i < 4; i++) {
		sbuf_add(&a, "w%d@example.org:", i);
		for (j = 0; j < 20; j++)
			sbuf_add(&a, " w%d_%d,", i + 1, j);
		sbuf_add(&a, "\n");
		for (j = 0; j < 20; j++)
			sbuf_add(&a, "w%d_%d@example.org: w%d\n", i + 1, j,
			    i + 1);
	}
	sbuf_add(&a, "w4@example.org: ann\n");

	f->users = load_temp(u.p, u.len);
	f->aliases = load_temp(a.p, a.len);
	free(u.p);
	free(a.p);
	f->db.domains = domains;
	f->db.domains_len = sizeof(domains) / sizeof(domains[0]);
	f->db.users = f->users;
	f->db.aliases = f->aliases;
	*state = f;
	return 0;
}

static int
teardown_db(void **state)
{
	struct fixture *f = *state;

	table_free(f->users);
	table_free(f->aliases);
	free(f);
	return 0;
}

static const struct {
	const char	*addr;
	enum local_result want;
	const char	*mailboxes;	/* joined with ' ', in order */
	const char	*remote;
} resolve_cases[] = {
	/* users */
	{ "bob@example.org", LOCAL_OK, "bob@example.org", "" },
	{ "BOB@Example.Org", LOCAL_OK, "bob@example.org", "" },
	{ "dave@example.org", LOCAL_OK, "dave@example.org", "" },
	{ "nosuch@example.org", LOCAL_UNKNOWN, "", "" },
	{ "@example.org", LOCAL_UNKNOWN, "", "" },
	/* postmaster always exists, even aliased to nobody */
	{ "postmaster@example.org", LOCAL_OK, "postmaster@example.org", "" },
	{ "PostMaster@EXAMPLE.org", LOCAL_OK, "postmaster@example.org", "" },
	{ "postmaster@localhost", LOCAL_OK, "postmaster@localhost", "" },
	/* not local */
	{ "bob@remote.example", LOCAL_NOT_LOCAL, "", "" },
	{ "bob@example.org.evil", LOCAL_NOT_LOCAL, "", "" },
	{ "bob", LOCAL_NOT_LOCAL, "", "" },
	{ "bob@", LOCAL_NOT_LOCAL, "", "" },
	/* bare local part: each local domain gets its own target */
	{ "info@example.org", LOCAL_OK, "bob@example.org", "" },
	{ "INFO@example.net", LOCAL_OK, "bob@example.net", "" },
	{ "info@localhost", LOCAL_UNKNOWN, "", "" },
	{ "upper@example.org", LOCAL_OK, "bob@example.org", "" },
	/* catch-all, only for addresses that are not users */
	{ "anything@example.net", LOCAL_OK, "carl@example.net", "" },
	{ "bob@example.net", LOCAL_OK, "bob@example.net", "" },
	{ "postmaster@example.net", LOCAL_OK, "carl@example.net", "" },
	/* dedupe, remote */
	{ "sales@example.org", LOCAL_OK, "ann@example.org bob@example.org",
	  "" },
	{ "fwd@example.org", LOCAL_OK, "", "someone@remote.example" },
	{ "mixfwd@example.org", LOCAL_OK, "bob@example.org",
	  "Other@remote.example" },
	{ "diamond@example.org", LOCAL_OK, "ann@example.org bob@example.org",
	  "" },
	/* chains and loops */
	{ "chain1@example.org", LOCAL_OK, "ann@example.org", "" },
	{ "chainx@example.org", LOCAL_OK, "ann@example.org", "" },
	{ "loopa@example.org", LOCAL_LOOP, "", "" },
	{ "loopb@example.org", LOCAL_LOOP, "", "" },
	{ "ghost@example.org", LOCAL_LOOP, "", "" },
	{ "loopu@example.org", LOCAL_OK, "loopu@example.org", "" },
	/* loopu is a user: reaching it again means its mailbox; loopv is
	   not, so coming back to it is a loop */
	{ "loopv@example.org", LOCAL_LOOP, "", "" },
	/* one looping branch fails the whole expansion */
	{ "loopc@example.org", LOCAL_LOOP, "", "" },
	{ "self@example.org", LOCAL_OK, "self@example.org",
	  "self-copy@remote.example" },
	/* partly unknown resolves; wholly unknown does not */
	{ "mixed@example.org", LOCAL_OK, "bob@example.org", "" },
	{ "dead@example.org", LOCAL_UNKNOWN, "", "" },
	{ "bad@example.org", LOCAL_UNKNOWN, "", "" },
	/* limits */
	{ "d0@example.org", LOCAL_OK, "d16@example.org", "" },
	{ "d1@example.org", LOCAL_OK, "d16@example.org", "" },
	{ "e0@example.org", LOCAL_LOOP, "", "" },
	{ "e1@example.org", LOCAL_OK, "e17@example.org", "" },
	{ "w0@example.org", LOCAL_LOOP, "", "" },
	{ "w1@example.org", LOCAL_LOOP, "", "" },
	{ "w2@example.org", LOCAL_OK, "ann@example.org", "" },
	/* source routes and quoted local parts never leave the host */
	{ "user%remote.example@localhost", LOCAL_UNKNOWN, "", "" },
	{ "remote.example!user@localhost", LOCAL_UNKNOWN, "", "" },
	{ "\"user@remote.example\"@localhost", LOCAL_UNKNOWN, "", "" },
	{ "@remote.example:user@localhost", LOCAL_UNKNOWN, "", "" },
	{ "user@localhost", LOCAL_OK, "user@localhost", "" },
};

static void
assert_list(const struct strlist *l, const char *want)
{
	char	 got[4096] = "";
	size_t	 i, n = 0;

	for (i = 0; i < l->len; i++)
		n += (size_t)snprintf(got + n, sizeof(got) - n, "%s%s",
		    i > 0 ? " " : "", l->v[i]);
	assert_string_equal(got, want);
}

static void
test_resolve(void **state)
{
	struct fixture *f = *state;
	size_t	 i;

	for (i = 0; i < sizeof(resolve_cases) / sizeof(resolve_cases[0]);
	    i++) {
		struct strlist mb = { 0 }, rem = { 0 };
		enum local_result r;

		r = local_resolve(&f->db, resolve_cases[i].addr, &mb, &rem);
		if (r != resolve_cases[i].want)
			fail_msg("%s: got %d, want %d", resolve_cases[i].addr,
			    r, resolve_cases[i].want);
		assert_list(&mb, resolve_cases[i].mailboxes);
		assert_list(&rem, resolve_cases[i].remote);
		strlist_free(&mb);
		strlist_free(&rem);
	}
}

static void
test_expand_limit(void **state)
{
	struct fixture *f = *state;
	struct strlist mb = { 0 }, rem = { 0 };

	assert_int_equal(local_resolve(&f->db, "list1000@example.org", &mb,
	    &rem), LOCAL_OK);
	assert_int_equal(mb.len, LOCAL_EXPAND_MAX);
	assert_string_equal(mb.v[999], "m999@example.org");
	strlist_free(&mb);
	assert_int_equal(mb.len, 0);

	assert_int_equal(local_resolve(&f->db, "list1001@example.org", &mb,
	    &rem), LOCAL_LOOP);
	assert_int_equal(mb.len, 0);
	assert_int_equal(rem.len, 0);

	assert_int_equal(local_resolve(&f->db, "listab@example.org", &mb,
	    &rem), LOCAL_OK);
	assert_int_equal(mb.len, 1000);
	strlist_free(&mb);
	strlist_free(&rem);
}

/* Lists the caller passes in are appended to, and kept on failure. */
static void
test_resolve_appends(void **state)
{
	struct fixture *f = *state;
	struct strlist mb = { 0 }, rem = { 0 };

	assert_int_equal(local_resolve(&f->db, "bob@example.org", &mb, &rem),
	    LOCAL_OK);
	assert_int_equal(local_resolve(&f->db, "sales@example.org", &mb,
	    &rem), LOCAL_OK);
	assert_list(&mb, "bob@example.org ann@example.org");
	assert_int_equal(local_resolve(&f->db, "self@example.org", &mb,
	    &rem), LOCAL_OK);
	assert_int_equal(local_resolve(&f->db, "loopa@example.org", &mb,
	    &rem), LOCAL_LOOP);
	assert_int_equal(local_resolve(&f->db, "nosuch@example.org", &mb,
	    &rem), LOCAL_UNKNOWN);
	assert_list(&mb, "bob@example.org ann@example.org self@example.org");
	assert_list(&rem, "self-copy@remote.example");
	strlist_free(&mb);
	strlist_free(&rem);
}

/* Without tables only postmaster exists. */
static void
test_resolve_no_tables(void **state)
{
	struct local_db db = { domains, 1, NULL, NULL };
	struct table *empty = table_empty();
	struct strlist mb = { 0 }, rem = { 0 };

	(void)state;
	assert_int_equal(local_resolve(&db, "bob@example.org", &mb, &rem),
	    LOCAL_UNKNOWN);
	assert_int_equal(local_resolve(&db, "postmaster@example.org", &mb,
	    &rem), LOCAL_OK);
	assert_int_equal(local_resolve(&db, "bob@example.net", &mb, &rem),
	    LOCAL_NOT_LOCAL);
	db.users = empty;
	db.aliases = empty;
	assert_int_equal(local_resolve(&db, "bob@example.org", &mb, &rem),
	    LOCAL_UNKNOWN);
	assert_list(&mb, "postmaster@example.org");
	strlist_free(&mb);
	strlist_free(&rem);
	table_free(empty);
}

static void
test_strlist(void **state)
{
	struct strlist l = { 0 };
	char	 s[16];
	int	 i;

	(void)state;
	assert_false(strlist_has(&l, "a"));
	for (i = 0; i < 100; i++) {
		snprintf(s, sizeof(s), "s%d", i);
		strlist_add(&l, s);
	}
	assert_int_equal(l.len, 100);
	assert_true(strlist_has(&l, "s0"));
	assert_true(strlist_has(&l, "s99"));
	assert_false(strlist_has(&l, "s100"));
	strlist_free(&l);
	assert_int_equal(l.len, 0);
	assert_null(l.v);
	strlist_free(&l);
}

static void
test_is_domain(void **state)
{
	struct local_db db = { domains, 3, NULL, NULL };

	(void)state;
	assert_true(local_is_domain(&db, "example.org"));
	assert_true(local_is_domain(&db, "EXAMPLE.Net"));
	assert_false(local_is_domain(&db, "example"));
	assert_false(local_is_domain(&db, ""));
	db.domains_len = 0;
	assert_false(local_is_domain(&db, "example.org"));
}

/* ---- local_maildir_path ---- */

static const struct {
	const char	*mailbox;
	const char	*want;	/* NULL: rejected */
} path_cases[] = {
	{ "bob@example.org", "/var/mail/example.org/bob/Maildir" },
	{ "b.o-b+x@ex", "/var/mail/ex/b.o-b+x/Maildir" },
	{ "\"a@b\"@example.org", "/var/mail/example.org/\"a@b\"/Maildir" },
	{ "", NULL },
	{ "bob", NULL },
	{ "@example.org", NULL },
	{ "bob@", NULL },
	{ ".bob@example.org", NULL },
	{ "..@example.org", NULL },
	{ "bob@.", NULL },
	{ "bob@..", NULL },
	{ "bob@.example.org", NULL },
	{ "a/b@example.org", NULL },
	{ "../x@example.org", NULL },
	{ "bob@example.org/..", NULL },
	{ "bob@ex/ample", NULL },
	{ "b\001ob@example.org", NULL },
	{ "bob@ex\nample", NULL },
	{ "bob\177@example.org", NULL },
};

static void
test_maildir_path(void **state)
{
	char	 out[256];
	size_t	 i, len;

	(void)state;
	for (i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
		int rc = local_maildir_path("/var/mail", path_cases[i].mailbox,
		    out, sizeof(out));

		if (path_cases[i].want == NULL) {
			if (rc != -1)
				fail_msg("'%s' accepted",
				    path_cases[i].mailbox);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_string_equal(out, path_cases[i].want);
	}

	/* at the limit: exactly len + 1 fits, len does not */
	len = strlen(path_cases[0].want);
	assert_int_equal(local_maildir_path("/var/mail", "bob@example.org",
	    out, len + 1), 0);
	assert_string_equal(out, path_cases[0].want);
	assert_int_equal(local_maildir_path("/var/mail", "bob@example.org",
	    out, len), -1);
	assert_int_equal(local_maildir_path("/var/mail", "bob@example.org",
	    out, 0), -1);
}

/* ---- maildir_deliver ---- */

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static char *
make_temp_dir(void)
{
	char	*dir = strdup("/tmp/petrel-test-maildir-XXXXXX");

	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	return dir;
}

static void
remove_tree(char *dir)
{
	assert_int_equal(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(dir);
}

/* Number of entries in dir/sub; *name gets the last one (caller frees). */
static size_t
count_entries(const char *dir, const char *sub, char **name)
{
	char	 path[4096];
	struct dirent *de;
	DIR	*d;
	size_t	 n = 0;

	FMT(path, "%s/%s", dir, sub);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		n++;
		if (name != NULL) {
			free(*name);
			*name = strdup(de->d_name);
		}
	}
	closedir(d);
	return n;
}

static char *
read_file(const char *path, size_t *lenp)
{
	struct sbuf b = { 0 };
	char	 buf[8192];
	ssize_t	 n;
	int	 fd;

	fd = open(path, O_RDONLY);
	assert_true(fd != -1);
	sbuf_addn(&b, "", 0);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		sbuf_addn(&b, buf, (size_t)n);
	assert_int_equal(n, 0);
	close(fd);
	*lenp = b.len;
	return b.p;
}

/* Appends to the spool text and to what the Maildir file must hold. */
static void
both(struct sbuf *spool, struct sbuf *want, const char *in, const char *out)
{
	sbuf_addn(spool, in, strlen(in));
	sbuf_addn(want, out, strlen(out));
}

/*
 * Deliver spool (after 10 junk bytes) into a fresh Maildir and check the
 * one file in new/ holds want.
 */
static void
deliver_and_check(const struct sbuf *spool, const struct sbuf *want)
{
	char	*dir = make_temp_dir(), *spath, *name = NULL, *got;
	const char *host = ".mx\\0571\\072a";
	char	 mdir[4096], path[4096], err[512] = "", suffix[64];
	struct sbuf file = { 0 };
	struct stat st;
	size_t	 len;
	int	 fd;

	sbuf_addn(&file, "JUNKJUNK\r\n", 10);
	sbuf_addn(&file, spool->p, spool->len);
	spath = write_temp(file.p, file.len);
	free(file.p);
	fd = open(spath, O_RDONLY);
	assert_true(fd != -1);

	FMT(mdir, "%s/example.org/bob/Maildir", dir);
	if (maildir_deliver(NULL, NULL, NULL, mdir,
	    FD_SRC(fd), 10, "sender@example.net",
	    "bob@example.org", "mx/1:a", err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(count_entries(mdir, "new", &name), 1);
	assert_int_equal(count_entries(mdir, "tmp", NULL), 0);
	assert_int_equal(count_entries(mdir, "cur", NULL), 0);
	assert_int_equal(stat(mdir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);

	/* "<sec>.M<usec>P<pid>Q<n>.<host>" with '/' and ':' escaped */
	FMT(suffix, "P%ldQ", (long)getpid());
	assert_non_null(strstr(name, suffix));
	assert_non_null(strstr(name, ".M"));
	len = strlen(name);
	assert_true(len > strlen(host));
	assert_string_equal(name + len - strlen(host), host);

	FMT(path, "%s/new/%s", mdir, name);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	got = read_file(path, &len);
	if (len != want->len || memcmp(got, want->p, len) != 0) {
		size_t	 i;

		for (i = 0; i < len && i < want->len; i++)
			if (got[i] != want->p[i])
				break;
		fail_msg("content differs at byte %zu (got %zu, want %zu "
		    "bytes)", i, len, want->len);
	}
	free(got);
	free(name);
	name = NULL;

	/* the same from memory, through one body for two mailboxes: each
	   gets exactly what the file source gave */
	struct maildir_body body = { 0 };
	struct bytesrc	 mem = { .fd = -1, .buf = NULL, .len = 0 };
	char		*bytes = read_file(spath, &len);

	mem.buf = bytes;
	mem.len = len;
	for (int k = 0; k < 2; k++) {
		FMT(mdir, "%s/example.org/mem%d/Maildir", dir, k);
		if (maildir_deliver(NULL, NULL, &body, mdir, &mem, 10,
		    "sender@example.net", "bob@example.org", "mx/1:a", err,
		    sizeof(err)) != 0)
			fail_msg("%s", err);
		assert_non_null(body.buf);
		assert_ptr_equal(body.from, bytes);	/* made of these */
		assert_int_equal(count_entries(mdir, "new", &name), 1);
		FMT(path, "%s/new/%s", mdir, name);
		got = read_file(path, &len);
		assert_int_equal(len, want->len);
		assert_memory_equal(got, want->p, len);
		free(got);
		free(name);
		name = NULL;
	}
	maildir_body_free(&body);
	assert_null(body.buf);
	free(bytes);
	close(fd);
	unlink(spath);
	free(spath);
	remove_tree(dir);
}

static const char want_head[] =
	"Return-Path: <sender@example.net>\nDelivered-To: bob@example.org\n";

static void
test_maildir_content(void **state)
{
	struct sbuf spool = { 0 }, want = { 0 };

	(void)state;
	sbuf_addn(&want, want_head, strlen(want_head));
	both(&spool, &want, "Return-Path: <old@x>\r\n", "");
	both(&spool, &want, " continued\r\n", "");
	both(&spool, &want, "From: a@b\r\n", "From: a@b\n");
	both(&spool, &want, "RETURN-PATH:<x@y>\r\n", "");
	both(&spool, &want, "\tcont2\r\n \r\n", "");
	both(&spool, &want, "X-Return-Path: keep\r\n", "X-Return-Path: keep\n");
	both(&spool, &want, "Return-Pathology: keep\r\n",
	    "Return-Pathology: keep\n");
	both(&spool, &want, "Return-Path : keep\r\n", "Return-Path : keep\n");
	both(&spool, &want, "Subject: hi\r\n folded\r\n",
	    "Subject: hi\n folded\n");
	both(&spool, &want, "Return-Path: <z>\r\n", "");
	both(&spool, &want, "\r\n", "\n");
	both(&spool, &want, "Return-Path: <body@keep>\r\n",
	    "Return-Path: <body@keep>\n");
	both(&spool, &want, " body continuation\r\n", " body continuation\n");
	both(&spool, &want, "\r\n", "\n");
	both(&spool, &want, "line with lone\rCR and \r\r\n",
	    "line with lone\rCR and \r\n");
	both(&spool, &want, "LF only\nline\r\n", "LF only\nline\n");
	sbuf_rep(&spool, 'L', 200000);
	sbuf_rep(&want, 'L', 200000);
	both(&spool, &want, "\r\nend\r\n\r", "\nend\n\r");
	deliver_and_check(&spool, &want);
	free(spool.p);
	free(want.p);
}

/* Empty message, only a header, no final line end. */
static void
test_maildir_small(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "" },
		{ "\r\n", "\n" },
		{ "Return-Path: <a>", "" },
		{ "Return-Pat", "Return-Pat" },
		{ "Return-Path", "Return-Path" },
		{ "Return-Path:", "" },
		{ "\r", "\r" },
		{ "a\r\n\r\nb", "a\n\nb" },
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sbuf spool = { 0 }, want = { 0 };

		sbuf_addn(&spool, "", 0);
		sbuf_addn(&want, want_head, strlen(want_head));
		both(&spool, &want, cases[i].in, cases[i].out);
		deliver_and_check(&spool, &want);
		free(spool.p);
		free(want.p);
	}
}

/*
 * Slide a CRLF, a header Return-Path and a lone CR across the 64 KiB
 * read boundary (counted from body_off).
 */
static void
test_maildir_boundary(void **state)
{
	const size_t boundary = 64 * 1024;
	size_t	 shift;

	(void)state;
	for (shift = 0; shift < 16; shift++) {
		struct sbuf spool = { 0 }, want = { 0 };
		size_t	 pad;

		sbuf_addn(&want, want_head, strlen(want_head));
		both(&spool, &want, "X-Long: ", "X-Long: ");
		/* the line end lands at boundary - 14 + shift */
		pad = boundary - spool.len - 14 + shift;
		sbuf_rep(&spool, 'a', pad);
		sbuf_rep(&want, 'a', pad);
		both(&spool, &want, "\r\nReturn-Path: <z>\r\n", "\n");
		both(&spool, &want, "Subject: s\r\n\r\n", "Subject: s\n\n");
		pad = 2 * boundary - spool.len - 8 + shift;
		sbuf_rep(&spool, 'b', pad);
		sbuf_rep(&want, 'b', pad);
		both(&spool, &want, "\r\n\r\rx\r\n\r", "\n\r\rx\n\r");
		deliver_and_check(&spool, &want);
		free(spool.p);
		free(want.p);
	}
}

/* n deliveries of fd's message to the Maildir dir into batch b, with a
   group for dir opened for it: unnamed files, or the named fallback. */
static void
batch_deliver(struct maildir_batch *b, const char *dir, int fd, bool named,
    int n)
{
	char	 err[512];

	newfile_allow_unnamed(!named);
	assert_non_null(b->fg = fsgroup_open(dir, 0));
	for (int i = 0; i < n; i++)
		if (maildir_deliver(NULL, b, NULL, dir, FD_SRC(fd), 0, "",
		    "a@b", "h", err, sizeof(err)) != 0)
			fail_msg("%s", err);
}

/* A batch: files are named in new/ when it is committed, durable with
   one sync, and a file the batch's filesystem does not hold is made
   durable on its own. */
static void
test_maildir_batch(void **state)
{
	char	*dir = make_temp_dir(), *spath = write_temp("x\r\n", 3);
	char	 err[512];
	struct maildir_batch b = { 0 };
	int	 fd;

	(void)state;
	fd = open(spath, O_RDONLY);
	assert_true(fd != -1);
	/* unnamed files, then the named fallback (tmp/<name>, renamed) */
	for (int named = 0; named < 2; named++) {
		batch_deliver(&b, dir, fd, named, 3);
		assert_int_equal(b.n, 3);
		/* written, not named yet: the fallback's files in tmp/ */
		assert_int_equal(count_entries(dir, "new", NULL),
		    3 * (size_t)named);
		assert_int_equal(count_entries(dir, "tmp", NULL),
		    3 * (size_t)named);
		assert_int_equal(maildir_batch_commit(&b), 0);
		assert_int_equal(count_entries(dir, "tmp", NULL), 0);
		assert_int_equal(b.n, 0);
		assert_null(b.paths);
		assert_int_equal(count_entries(dir, "new", NULL),
		    3 + 3 * (size_t)named);
		assert_int_equal(fsgroup_syncs(b.fg), 1);
		assert_int_equal(maildir_batch_commit(&b), 0);	/* no sync */
		assert_int_equal(fsgroup_syncs(b.fg), 1);
		fsgroup_free(b.fg);
	}
	newfile_allow_unnamed(true);

	/* new/ removed under a batched delivery: made again, and the file
	   still joins the batch (the fallback's retry has no fd left) */
	for (int named = 0; named < 2; named++) {
		char	 newdir[4096];

		FMT(newdir, "%s/new", dir);
		assert_int_equal(nftw(newdir, rm_entry, 16,
		    FTW_DEPTH | FTW_PHYS), 0);
		batch_deliver(&b, dir, fd, named, 1);
		assert_int_equal(b.n, 1);
		assert_int_equal(maildir_batch_commit(&b), 0);
		assert_int_equal(count_entries(dir, "new", NULL), 1);
		assert_int_equal(count_entries(dir, "tmp", NULL), 0);
		fsgroup_free(b.fg);
	}
	newfile_allow_unnamed(true);

	/* a batch that is not committed leaves nothing behind */
	for (int named = 0; named < 2; named++) {
		size_t before = count_entries(dir, "new", NULL);

		batch_deliver(&b, dir, fd, named, 2);
		maildir_batch_add(&b, spath);	/* named before, as queue/ */
		maildir_batch_discard(&b);
		assert_int_equal(b.n, 0);
		assert_int_equal(count_entries(dir, "new", NULL), before);
		assert_int_equal(count_entries(dir, "tmp", NULL), 0);
		assert_int_equal(access(spath, F_OK), -1);
		fsgroup_free(b.fg);
	}
	newfile_allow_unnamed(true);

	/* a group for another filesystem (/proc) covers nothing here */
	assert_non_null(b.fg = fsgroup_open("/proc", 0));
	assert_int_equal(maildir_deliver(NULL, &b, NULL, dir, FD_SRC(fd), 0,
	    "", "a@b", "h", err, sizeof(err)), 0);
	assert_int_equal(b.n, 0);
	assert_int_equal(count_entries(dir, "new", NULL), 2);
	fsgroup_free(b.fg);
	close(fd);
	unlink(spath);
	free(spath);
	remove_tree(dir);
}

/* What a fake filesystem sync saw of the Maildir each time it ran. */
struct sync_seen {
	const char	*dir;
	size_t		 calls;
	size_t		 in_new[4], in_tmp[4];
	int		 fail_at;	/* the call that fails (1-based), or 0 */
};

static int
fake_sync(void *arg)
{
	struct sync_seen *s = arg;

	if (s->calls < 4) {
		s->in_new[s->calls] = count_entries(s->dir, "new", NULL);
		s->in_tmp[s->calls] = count_entries(s->dir, "tmp", NULL);
	}
	if (++s->calls == (size_t)s->fail_at) {
		errno = EIO;
		return -1;
	}
	return 0;
}

/* contents_sync: one sync of the filesystem runs before any file of the
   batch has its name in new/, a second after they all have; when the
   first fails, no file is named and none is left in tmp/. */
static void
test_maildir_contents_sync(void **state)
{
	char	*dir = make_temp_dir(), *spath = write_temp("x\r\n", 3);
	struct maildir_batch b = { .contents_sync = true };
	struct sync_seen seen = { .dir = dir };
	int	 fd;

	(void)state;
	fd = open(spath, O_RDONLY);
	assert_true(fd != -1);
	for (int named = 0; named < 2; named++) {
		size_t before = count_entries(dir, "new", NULL);

		seen.calls = 0;
		seen.fail_at = 0;
		batch_deliver(&b, dir, fd, named, 3);
		fsgroup_set_sync(b.fg, fake_sync, &seen);
		assert_int_equal(maildir_batch_commit(&b), 0);
		assert_int_equal(seen.calls, 2);
		assert_int_equal(seen.in_new[0], before);	/* none named */
		assert_int_equal(seen.in_tmp[0], 3 * (size_t)named);
		assert_int_equal(seen.in_new[1], before + 3);
		assert_int_equal(seen.in_tmp[1], 0);
		assert_true(b.contents_sync);	/* the caller's setting */
		fsgroup_free(b.fg);

		/* the contents' sync fails: nothing is named, nothing kept */
		seen.calls = 0;
		seen.fail_at = 1;
		batch_deliver(&b, dir, fd, named, 2);
		fsgroup_set_sync(b.fg, fake_sync, &seen);
		assert_int_equal(maildir_batch_commit(&b), -1);
		assert_int_equal(errno, EIO);
		assert_int_equal(seen.calls, 1);
		assert_int_equal(count_entries(dir, "new", NULL), before + 3);
		assert_int_equal(count_entries(dir, "tmp", NULL), 0);
		assert_int_equal(b.n, 0);
		fsgroup_free(b.fg);
	}
	newfile_allow_unnamed(true);
	close(fd);
	unlink(spath);
	free(spath);
	remove_tree(dir);
}

static void
test_maildir_unique(void **state)
{
	char	*dir = make_temp_dir(), *spath = write_temp("x\r\n", 3);
	char	 err[512];
	int	 fd, i;

	(void)state;
	fd = open(spath, O_RDONLY);
	assert_true(fd != -1);
	for (i = 0; i < 5; i++)
		assert_int_equal(maildir_deliver(NULL, NULL, NULL, dir,
		    FD_SRC(fd), 0, "", "a@b", "h",
		    err, sizeof(err)), 0);
	assert_int_equal(count_entries(dir, "new", NULL), 5);
	assert_int_equal(count_entries(dir, "tmp", NULL), 0);
	close(fd);
	unlink(spath);
	free(spath);
	remove_tree(dir);
}

static void
test_maildir_fail(void **state)
{
	char	*dir = make_temp_dir(), *spath = write_temp("x\r\n", 3);
	char	 err[512], target[4096];
	int	 fd;

	(void)state;
	fd = open(spath, O_RDONLY);
	assert_true(fd != -1);

	/* the Maildir is a regular file */
	FMT(target, "%s/file", dir);
	close(open(target, O_WRONLY | O_CREAT, 0600));
	err[0] = '\0';
	assert_int_equal(maildir_deliver(NULL, NULL, NULL, target,
	    FD_SRC(fd), 0, "", "a@b", "h", err,
	    sizeof(err)), -1);
	assert_true(strncmp(err, "maildir: mkdir ", 15) == 0);
	assert_non_null(strstr(err, target));
	assert_int_equal(count_entries(target, "new", NULL), 0);

	/* below a regular file */
	FMT(target, "%s/file/Maildir", dir);
	assert_int_equal(maildir_deliver(NULL, NULL, NULL, target,
	    FD_SRC(fd), 0, "", "a@b", "h", err,
	    sizeof(err)), -1);
	assert_true(strncmp(err, "maildir: mkdir ", 15) == 0);

	/* new/ is a regular file */
	FMT(target, "%s/m1", dir);
	assert_int_equal(mkdir(target, 0700), 0);
	FMT(target, "%s/m1/new", dir);
	close(open(target, O_WRONLY | O_CREAT, 0600));
	FMT(target, "%s/m1", dir);
	assert_int_equal(maildir_deliver(NULL, NULL, NULL, target,
	    FD_SRC(fd), 0, "", "a@b", "h", err,
	    sizeof(err)), -1);
	/* mkdir or rename fails, depending on how mkdir_p treats EEXIST */
	assert_true(strncmp(err, "maildir: ", 9) == 0);
	assert_non_null(strstr(err, "/m1/"));
	assert_non_null(strstr(err, "Not a directory"));
	assert_int_equal(count_entries(target, "tmp", NULL), 0);

	/* the spool cannot be read: the tmp file goes away again */
	FMT(target, "%s/m2", dir);
	assert_int_equal(maildir_deliver(NULL, NULL, NULL, target,
	    FD_SRC(-1), 0, "", "a@b", "h", err,
	    sizeof(err)), -1);
	assert_string_equal(err, "maildir: read spool: Bad file descriptor");
	assert_int_equal(count_entries(target, "tmp", NULL), 0);
	assert_int_equal(count_entries(target, "new", NULL), 0);

	/* a line end in an envelope address would forge a header */
	assert_int_equal(maildir_deliver(NULL, NULL, NULL, target,
	    FD_SRC(fd), 0, "a@b\nX-Evil: 1",
	    "a@b", "h", err, sizeof(err)), -1);
	assert_int_equal(maildir_deliver(NULL, NULL, NULL, target,
	    FD_SRC(fd), 0, "", "a@b\r", "h",
	    err, sizeof(err)), -1);
	assert_int_equal(count_entries(target, "new", NULL), 0);

	close(fd);
	unlink(spath);
	free(spath);
	remove_tree(dir);
}

/* A first delivery on a thread of its own (test_maildir_first_held). */
struct first_delivery {
	struct dirsync	*ds;
	const char	*mdir;
	int		 fd;
	int		 rc;
	char		 err[512];
};

static void *
first_delivery(void *arg)
{
	struct first_delivery *f = arg;

	f->rc = maildir_deliver(f->ds, NULL, NULL, f->mdir, FD_SRC(f->fd), 0,
	    "", "a@b", "h", f->err, sizeof(f->err));
	return NULL;
}

/*
 * The first delivery to a Maildir holds its new/ before it makes any
 * directory (maildir.c): while another holds new/, nothing is made; once
 * let go, the delivery makes the Maildir and delivers. Where fsyncs race
 * (a filesystem sync makes the directories durable) and where not.
 */
static void
test_maildir_first_held(void **state)
{
	char	*spath = write_temp("x\r\n", 3);
	int	 fd = open(spath, O_RDONLY);

	(void)state;
	assert_true(fd != -1);
	for (int races = -1; races <= 1; races += 2) {
		char	*dir = make_temp_dir();
		char	 mdir[4096], newdir[4096], domain[4096];
		struct dirsync *ds = dirsync_new();
		struct dirsync_ticket t;
		struct first_delivery f = { .ds = ds, .mdir = mdir, .fd = fd,
		    .rc = -2 };
		struct stat st;
		pthread_t th;

		newfile_set_fsync_races(races);
		FMT(domain, "%s/example.org", dir);
		FMT(mdir, "%s/new1/Maildir", domain);
		FMT(newdir, "%s/new", mdir);
		dirsync_hold(ds, newdir, &t);
		assert_int_equal(pthread_create(&th, NULL, first_delivery, &f),
		    0);
		usleep(100 * 1000);
		assert_int_equal(stat(domain, &st), -1);	/* waits */
		assert_int_equal(f.rc, -2);
		assert_int_equal(dirsync_end(&t), 0);
		assert_int_equal(pthread_join(th, NULL), 0);
		if (f.rc != 0)
			fail_msg("%s", f.err);
		assert_int_equal(count_entries(mdir, "new", NULL), 1);
		assert_int_equal(count_entries(mdir, "tmp", NULL), 0);
		assert_int_equal(stat(mdir, &st), 0);	/* cur/ too */
		FMT(newdir, "%s/cur", mdir);
		assert_int_equal(stat(newdir, &st), 0);
		dirsync_free(ds);
		remove_tree(dir);
	}
	newfile_set_fsync_races(0);
	close(fd);
	unlink(spath);
	free(spath);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_resolve, setup_db,
		    teardown_db),
		cmocka_unit_test_setup_teardown(test_expand_limit, setup_db,
		    teardown_db),
		cmocka_unit_test_setup_teardown(test_resolve_appends, setup_db,
		    teardown_db),
		cmocka_unit_test(test_resolve_no_tables),
		cmocka_unit_test(test_strlist),
		cmocka_unit_test(test_is_domain),
		cmocka_unit_test(test_maildir_path),
		cmocka_unit_test(test_maildir_content),
		cmocka_unit_test(test_maildir_small),
		cmocka_unit_test(test_maildir_boundary),
		cmocka_unit_test(test_maildir_unique),
		cmocka_unit_test(test_maildir_batch),
		cmocka_unit_test(test_maildir_contents_sync),
		cmocka_unit_test(test_maildir_fail),
		cmocka_unit_test(test_maildir_first_held),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
