/* test_spool.c: a received message in memory, spilled to tmp/ when big,
   committed into queue/, dropped without a trace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/newfile.h"
#include "core/fsgroup.h"
#include "core/util.h"
#include "queue/spool.h"
#include "fs_helpers.h"

struct fixture {
	char		 dir[64];
	struct spool	*sp;
	bool		 named;		/* the tmp/ file has a name */
};

static int
setup_as(void **state, bool named)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->named = named;
	newfile_allow_unnamed(!named);
	snprintf(f->dir, sizeof(f->dir), "/tmp/petrel-spool-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	if ((f->sp = spool_open(f->dir)) == NULL)
		return -1;
	*state = f;
	return 0;
}

/* the tmp/ file unnamed where the system allows (the default) */
static int
setup(void **state)
{
	return setup_as(state, false);
}

/* the fallback for systems without O_TMPFILE: tmp/<id>, renamed */
static int
setup_named(void **state)
{
	return setup_as(state, true);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char	 sub[128];

	spool_close(f->sp);
	snprintf(sub, sizeof(sub), "%s/tmp", f->dir);
	fs_rm_flat(sub);
	snprintf(sub, sizeof(sub), "%s/queue", f->dir);
	fs_rm_flat(sub);
	rmdir(f->dir);
	free(f);
	newfile_allow_unnamed(true);
	return 0;
}

static int
count(const struct fixture *f, const char *sub)
{
	char	 path[128];

	snprintf(path, sizeof(path), "%s/%s", f->dir, sub);
	return fs_entries(path);
}

/* Everything read back through src equals want. */
static void
assert_src(const struct bytesrc *src, const char *want, size_t len)
{
	char	*got = malloc(len + 1);
	size_t	 have = 0;
	ssize_t	 n;

	/* odd-sized reads, to cross the ends of writes */
	while ((n = bytesrc_pread(src, got + have,
	    len + 1 - have < 1000 ? len + 1 - have : 1000,
	    (off_t)have)) > 0)
		have += (size_t)n;
	assert_int_equal(n, 0);
	assert_int_equal(have, len);
	assert_memory_equal(got, want, len);
	free(got);
}

static char *
pattern(size_t len)
{
	char	*b = malloc(len);

	for (size_t i = 0; i < len; i++)
		b[i] = (char)('a' + i % 23);
	return b;
}

static void
test_small_stays_in_memory(void **state)
{
	struct fixture	*f = *state;
	struct spool_msg *m = spool_msg_new(f->sp);
	struct bytesrc	 src;
	char		 qpath[256];

	assert_non_null(m);
	assert_int_equal(spool_msg_write(m, "head\r\n", 6), 0);
	assert_int_equal(spool_msg_write(m, "body\r\n", 6), 0);
	assert_int_equal(m->written, 12);
	assert_false(m->file);
	assert_int_equal(count(f, "tmp"), 0);	/* nothing on disk yet */
	spool_msg_src(m, &src);
	assert_non_null(src.buf);
	assert_src(&src, "head\r\nbody\r\n", 12);

	assert_int_equal(spool_msg_commit_sync(m), 0);
	assert_true(m->committed);
	spool_path(f->sp, m->id, qpath, sizeof(qpath));
	fs_assert_file(qpath, "head\r\nbody\r\n", 12);
	assert_int_equal(count(f, "tmp"), 0);
	spool_msg_free(m);
	fs_assert_file(qpath, "head\r\nbody\r\n", 12);	/* free keeps it */
}

/* Linked for a filesystem sync to come: named in queue/ at once, still
   readable after the name; with no usable group, a plain commit. */
static void
test_link(void **state)
{
	struct fixture	*f = *state;
	struct fsgroup	*fg;
	struct bytesrc	 src;
	char		 qpath[256];
	char		*big = pattern(SPOOL_MEM_MAX + 5000);

	for (int round = 0; round < 3; round++) {
		struct spool_msg *m = spool_msg_new(f->sp);
		/* a group for this disk, none, or one for another (/proc) */
		const char *gdir = round == 0 ? f->dir : "/proc";
		size_t	 len = round == 1 ? SPOOL_MEM_MAX + 5000 : 12;
		bool	 pending;

		assert_non_null(m);
		fg = round == 1 ? NULL : fsgroup_open(gdir, 0);
		assert_true(round == 1 || fg != NULL);
		assert_int_equal(spool_msg_write(m, round == 1 ? big :
		    "head\r\nbody\r\n", len), 0);
		assert_int_equal(spool_msg_link(m, fg, &pending), 0);
		assert_true(pending == (round == 0));	/* else durable now */
		assert_true(m->committed);
		spool_path(f->sp, m->id, qpath, sizeof(qpath));
		fs_assert_file(qpath, round == 1 ? big : "head\r\nbody\r\n",
		    len);
		spool_msg_src(m, &src);
		/* read back in place while it was in memory, else the file */
		assert_true(round == 1 ? src.fd != -1 && src.buf == NULL :
		    src.buf != NULL);
		assert_src(&src, round == 1 ? big : "head\r\nbody\r\n", len);
		/* linked means complete: nothing more is taken */
		if (round != 1) {
			assert_int_equal(spool_msg_write(m, "x", 1), -1);
			fs_assert_file(qpath, "head\r\nbody\r\n", len);
		}
		if (round == 0)		/* the sync it was linked for */
			assert_int_equal(fsgroup_sync(fg), 0);
		assert_int_equal(count(f, "tmp"), 0);
		spool_msg_free(m);
		fs_assert_file(qpath, round == 1 ? big : "head\r\nbody\r\n",
		    len);
		fsgroup_free(fg);
	}
	free(big);
}

static void
test_big_spills_to_tmp(void **state)
{
	struct fixture	*f = *state;
	struct spool_msg *m = spool_msg_new(f->sp);
	size_t		 len = SPOOL_MEM_MAX + 5000;
	char		*b = pattern(len), qpath[256];
	struct bytesrc	 src;

	assert_non_null(m);
	/* up to the limit exactly: still memory */
	assert_int_equal(spool_msg_write(m, b, SPOOL_MEM_MAX), 0);
	assert_false(m->file);
	/* one byte more goes to tmp/<id>, with what came before */
	assert_int_equal(spool_msg_write(m, b + SPOOL_MEM_MAX, 1), 0);
	assert_true(m->file);
	assert_null(m->mem);
	assert_int_equal(spool_msg_write(m, b + SPOOL_MEM_MAX + 1,
	    len - SPOOL_MEM_MAX - 1), 0);
	if (f->named) {
		assert_int_equal(count(f, "tmp"), 1);
		fs_assert_file(m->nf.tmp, b, len);
	} else	/* where O_TMPFILE works, nothing shows */
		assert_int_equal(count(f, "tmp"), m->nf.tmp != NULL);
	spool_msg_src(m, &src);
	assert_null(src.buf);
	assert_src(&src, b, len);

	assert_int_equal(spool_msg_commit_sync(m), 0);
	spool_path(f->sp, m->id, qpath, sizeof(qpath));
	fs_assert_file(qpath, b, len);
	assert_int_equal(count(f, "tmp"), 0);
	spool_msg_free(m);
	free(b);
}

static void
test_drop_leaves_nothing(void **state)
{
	struct fixture	*f = *state;
	struct spool_msg *small = spool_msg_new(f->sp);
	struct spool_msg *big = spool_msg_new(f->sp);
	char		*b = pattern(SPOOL_MEM_MAX * 2);

	assert_int_equal(spool_msg_write(small, "x", 1), 0);
	assert_int_equal(spool_msg_write(big, b, SPOOL_MEM_MAX * 2), 0);
	assert_true(big->file);
	assert_int_equal(count(f, "tmp"), big->nf.tmp != NULL);
	assert_int_equal(f->named, big->nf.tmp != NULL);
	spool_msg_drop(big);
	assert_int_equal(count(f, "tmp"), 0);
	spool_msg_drop(big);		/* twice is harmless */
	spool_msg_free(big);
	spool_msg_free(small);
	assert_int_equal(count(f, "tmp"), 0);
	assert_int_equal(count(f, "queue"), 0);
	free(b);
}

static void
test_spill_failure_fails_the_commit(void **state)
{
	struct fixture	*f = *state;
	struct spool_msg *m = spool_msg_new(f->sp);
	char		 tmp[128];

	assert_int_equal(spool_msg_write(m, "x", 1), 0);
	/* tmp/ is gone (root may write anywhere, so no permission trick) */
	snprintf(tmp, sizeof(tmp), "%s/tmp", f->dir);
	assert_int_equal(rmdir(tmp), 0);
	assert_int_equal(spool_msg_commit_sync(m), ENOENT);
	assert_false(m->committed);
	assert_int_equal(count(f, "queue"), 0);
	spool_msg_free(m);

	/* the same when a big message spills during the writes */
	m = spool_msg_new(f->sp);
	char	*b = pattern(SPOOL_MEM_MAX + 1);

	assert_int_equal(spool_msg_write(m, b, SPOOL_MEM_MAX + 1), -1);
	assert_int_equal(m->error, ENOENT);
	assert_int_equal(spool_msg_write(m, "y", 1), -1);	/* sticky */
	assert_int_equal(spool_msg_commit_sync(m), ENOENT);
	spool_msg_free(m);
	free(b);
	assert_int_equal(mkdir(tmp, 0700), 0);	/* for teardown */
}

static void
test_bytesrc_memory(void **state)
{
	struct bytesrc	 src = { .fd = -1, .buf = "0123456789", .len = 10 };
	char		 out[16];

	(void)state;
	assert_int_equal(bytesrc_pread(&src, out, 4, 0), 4);
	assert_memory_equal(out, "0123", 4);
	assert_int_equal(bytesrc_pread(&src, out, 16, 7), 3);
	assert_memory_equal(out, "789", 3);
	assert_int_equal(bytesrc_pread(&src, out, 16, 10), 0);
	assert_int_equal(bytesrc_pread(&src, out, 16, 1000), 0);
	assert_int_equal(bytesrc_pread(&src, out, 16, -1), -1);
	assert_int_equal(errno, EINVAL);

	/* a view of memory points into it; nothing lands in scratch */
	const char *p = NULL;

	memset(out, 0, sizeof(out));
	assert_int_equal(bytesrc_view(&src, out, 4, 2, &p), 4);
	assert_ptr_equal(p, src.buf + 2);
	assert_int_equal(out[0], 0);
	assert_int_equal(bytesrc_view(&src, out, 16, 7, &p), 3);
	assert_memory_equal(p, "789", 3);
	assert_int_equal(bytesrc_view(&src, out, 16, 10, &p), 0);
	assert_int_equal(bytesrc_view(&src, out, 16, -1, &p), -1);
	assert_int_equal(errno, EINVAL);
}

static void
test_bytesrc_view_file(void **state)
{
	struct fixture	*f = *state;
	char		 path[300], out[16];
	const char	*p = NULL;
	int		 fd;

	snprintf(path, sizeof(path), "%s/viewfile", f->dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, "0123456789", 10), 10);

	struct bytesrc	 src = { .fd = fd };

	/* a file is read into scratch */
	assert_int_equal(bytesrc_view(&src, out, 4, 3, &p), 4);
	assert_ptr_equal(p, out);
	assert_memory_equal(out, "3456", 4);
	assert_int_equal(bytesrc_view(&src, out, 16, 10, &p), 0);
	close(fd);
	unlink(path);
}

static void
scan_cb(const char *id, void *arg)
{
	(*(int *)arg)++;
	(void)id;
}

/* A queued id from a clock ahead of ours (it stepped back since): the
   scan finds it, and new ids sort after it instead of near now. */
static void
test_ids_after_scan(void **state)
{
	struct fixture	*f = *state;
	struct qid_gen	 g = { 0, 0 };
	struct spool_msg *m;
	char		 ahead[QID_LEN + 1], path[128];
	int		 fd, n = 0;

	qid_next(&g, now_usec() + UINT64_C(86400000000), ahead);
	snprintf(path, sizeof(path), "%s/queue/%s", f->dir, ahead);
	assert_true((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) >= 0);
	close(fd);
	m = spool_msg_new(f->sp);
	assert_true(strcmp(m->id, ahead) < 0);	/* not seen yet */
	spool_msg_free(m);
	assert_int_equal(spool_scan(f->sp, scan_cb, &n), 1);
	assert_int_equal(n, 1);
	for (int i = 0; i < 3; i++) {
		m = spool_msg_new(f->sp);
		assert_true(strcmp(m->id, ahead) > 0);
		spool_msg_free(m);
	}
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bytesrc_view_file,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_small_stays_in_memory,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_spills_to_tmp,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_leaves_nothing,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_spill_failure_fails_the_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_spills_to_tmp,
		    setup_named, teardown),
		cmocka_unit_test_setup_teardown(test_drop_leaves_nothing,
		    setup_named, teardown),
		cmocka_unit_test_setup_teardown(
		    test_spill_failure_fails_the_commit, setup_named, teardown),
		cmocka_unit_test_setup_teardown(test_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link, setup_named,
		    teardown),
		cmocka_unit_test(test_bytesrc_memory),
		cmocka_unit_test_setup_teardown(test_ids_after_scan, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
