/* test_newfile.c: a file that shows under its name only once durable,
   unnamed (O_TMPFILE) where the system allows, else tmp/<name> renamed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include "core/dirsync.h"
#include "core/newfile.h"
#include "fs_helpers.h"

struct fixture {
	char	 base[64];
	char	 tmp[96];	/* <base>/tmp */
	char	 out[96];	/* <base>/out */
	bool	 named;		/* the fallback is forced */
};

static int
setup_as(void **state, bool named)
{
	struct fixture	*f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->base, sizeof(f->base), "/tmp/petrel-newfile-XXXXXX");
	if (mkdtemp(f->base) == NULL)
		return -1;
	snprintf(f->tmp, sizeof(f->tmp), "%s/tmp", f->base);
	snprintf(f->out, sizeof(f->out), "%s/out", f->base);
	if (mkdir(f->tmp, 0700) == -1 || mkdir(f->out, 0700) == -1)
		return -1;
	f->named = named;
	newfile_allow_unnamed(!named);
	*state = f;
	return 0;
}

static int
setup_unnamed(void **state)
{
	return setup_as(state, false);
}

/* unnamed, linked through /proc/self/fd even as root */
static int
setup_proc(void **state)
{
	newfile_allow_empty_path(false);
	return setup_as(state, false);
}

static int
setup_named(void **state)
{
	return setup_as(state, true);
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	fs_rm_flat(f->tmp);
	fs_rm_flat(f->out);
	rmdir(f->base);
	free(f);
	newfile_allow_unnamed(true);
	newfile_allow_empty_path(true);
	newfile_set_fsync_names(0);
	return 0;
}

static void
assert_content(const char *path, const char *want)
{
	fs_assert_file(path, want, strlen(want));
}

/* Can this filesystem make unnamed files at all? */
static bool
tmpfile_works(const char *dir)
{
	int	 fd = open(dir, O_RDWR | O_TMPFILE | O_CLOEXEC, 0600);

	if (fd == -1)
		return false;
	close(fd);
	return access("/proc/self/fd", X_OK) == 0;
}

static void
test_publish(void **state)
{
	struct fixture	*f = *state;
	struct newfile	 nf;
	char		 dst[128], buf[8];

	snprintf(dst, sizeof(dst), "%s/msg", f->out);
	assert_int_equal(newfile_open(&nf, f->tmp, "msg.tmp", 0600), 0);
	assert_true(nf.fd != -1);
	assert_int_equal(write(nf.fd, "hello\n", 6), 6);
	/* readable while it is being written (the spool reads it back) */
	assert_int_equal(pread(nf.fd, buf, 5, 0), 5);
	assert_memory_equal(buf, "hello", 5);
	if (f->named) {
		assert_non_null(nf.tmp);
		assert_int_equal(fs_entries(f->tmp), 1);
	} else if (tmpfile_works(f->tmp)) {
		/* unnamed: tmp/ never has an entry */
		assert_null(nf.tmp);
		assert_int_equal(fs_entries(f->tmp), 0);
	}
	assert_int_equal(access(dst, F_OK), -1);	/* not before publish */

	assert_int_equal(newfile_publish(&nf, dst, false), 0);
	assert_int_equal(nf.fd, -1);
	assert_content(dst, "hello\n");
	assert_int_equal(fs_entries(f->tmp), 0);
	assert_int_equal(fs_entries(f->out), 1);
	newfile_discard(&nf);		/* after publish: keeps dst */
	assert_content(dst, "hello\n");
}

static void
test_discard(void **state)
{
	struct fixture	*f = *state;
	struct newfile	 nf;

	assert_int_equal(newfile_open(&nf, f->tmp, "gone.tmp", 0600), 0);
	assert_int_equal(write(nf.fd, "x", 1), 1);
	newfile_discard(&nf);
	assert_int_equal(nf.fd, -1);
	assert_null(nf.tmp);
	assert_int_equal(fs_entries(f->tmp), 0);
	assert_int_equal(fs_entries(f->out), 0);
	newfile_discard(&nf);		/* twice is harmless */
}

static void
test_missing_dirs(void **state)
{
	struct fixture	*f = *state;
	struct newfile	 nf;
	char		 dir[128], dst[160];

	/* tmpdir missing: ENOENT, nothing to discard */
	snprintf(dir, sizeof(dir), "%s/nope", f->base);
	assert_int_equal(newfile_open(&nf, dir, "a", 0600), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(nf.fd, -1);
	newfile_discard(&nf);

	/* dst's directory missing: ENOENT, and a second publish once it
	   exists works (the contents were synced once already) */
	snprintf(dst, sizeof(dst), "%s/new/msg", dir);
	assert_int_equal(newfile_open(&nf, f->tmp, "b", 0600), 0);
	assert_int_equal(write(nf.fd, "late\n", 5), 5);
	assert_int_equal(newfile_publish(&nf, dst, true), -1);
	assert_int_equal(errno, ENOENT);
	assert_true(nf.synced);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(dst, sizeof(dst), "%s/new", dir);
	assert_int_equal(mkdir(dst, 0700), 0);
	snprintf(dst, sizeof(dst), "%s/new/msg", dir);
	assert_int_equal(newfile_publish(&nf, dst, true), 0);
	assert_content(dst, "late\n");
	newfile_discard(&nf);
	assert_int_equal(fs_entries(f->tmp), 0);
	unlink(dst);
	snprintf(dst, sizeof(dst), "%s/new", dir);
	rmdir(dst);
	rmdir(dir);
}

/* A name that is taken is never clobbered by an unnamed file. */
static void
test_taken_name(void **state)
{
	struct fixture	*f = *state;
	struct newfile	 nf;
	char		 dst[128];
	int		 fd;

	if (f->named || !tmpfile_works(f->tmp))
		skip();
	snprintf(dst, sizeof(dst), "%s/taken", f->out);
	fd = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd != -1);
	assert_int_equal(write(fd, "old\n", 4), 4);
	close(fd);
	assert_int_equal(newfile_open(&nf, f->tmp, "t", 0600), 0);
	assert_int_equal(write(nf.fd, "new\n", 4), 4);
	assert_int_equal(newfile_publish(&nf, dst, false), -1);
	assert_int_equal(errno, EEXIST);
	newfile_discard(&nf);
	assert_content(dst, "old\n");
	assert_int_equal(fs_entries(f->tmp), 0);
}

/* Which filesystems an fsync covers a new name on, and the tests' say. */
static void
test_fsync_names(void **state)
{
	struct statfs	 sf;
	int		 shm = -1, proc;

	(void)state;
	/* procfs: no such promise */
	proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(proc != -1);
	assert_false(newfile_fsync_names(proc));
	assert_false(newfile_fsync_names(proc));	/* the cached answer */
	/* tmpfs: nothing is durable there, so nothing needs a sync */
	if (statfs("/dev/shm", &sf) == 0 && sf.f_type == TMPFS_MAGIC) {
		shm = open("/dev/shm", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(shm != -1);
		assert_true(newfile_fsync_names(shm));
	}
	newfile_set_fsync_names(1);
	assert_true(newfile_fsync_names(proc));
	newfile_set_fsync_names(-1);
	if (shm != -1)
		assert_false(newfile_fsync_names(shm));
	newfile_set_fsync_names(0);
	assert_false(newfile_fsync_names(proc));
	/* races: only ext4 without a journal, neither of these */
	assert_false(newfile_fsync_races(proc));
	if (shm != -1)
		assert_false(newfile_fsync_races(shm));
	newfile_set_fsync_races(1);
	assert_true(newfile_fsync_races(proc));
	newfile_set_fsync_races(-1);
	assert_false(newfile_fsync_races(proc));
	newfile_set_fsync_races(0);
	if (shm != -1)
		close(shm);
	close(proc);
}

/*
 * newfile_publish_sync() leaves the directory's sync out only where the
 * file's fsync covers the name: told to sync a directory that is not
 * there, it fails when it syncs it and succeeds when it does not.
 */
static void
test_publish_sync_dir(void **state)
{
	struct fixture	*f = *state;
	struct newfile	 nf;
	char		 dst[128], gone[128];
	bool		 named;

	if (!tmpfile_works(f->tmp))
		skip();
	snprintf(gone, sizeof(gone), "%s/gone", f->base);
	for (int mode = -1; mode <= 1; mode += 2) {
		newfile_set_fsync_names(mode);
		snprintf(dst, sizeof(dst), "%s/m%d", f->out, mode + 1);
		assert_int_equal(newfile_open(&nf, f->tmp, "s", 0600), 0);
		assert_int_equal(write(nf.fd, "body\n", 5), 5);
		errno = 0;
		assert_int_equal(newfile_publish_sync(&nf, dst, false, NULL,
		    gone, &named), mode > 0 ? 0 : -1);
		if (mode < 0)
			assert_int_equal(errno, ENOENT);
		assert_true(named);	/* the file is whole either way */
		assert_content(dst, "body\n");
		newfile_discard(&nf);
	}
	assert_int_equal(fs_entries(f->out), 2);
	newfile_set_fsync_names(0);
}

/*
 * Where fsyncs race (newfile_fsync_races()), a publish holds its
 * directory from its file's fsync to the end of the directory's sync:
 * with the directory held by another ticket it waits, then goes on once
 * that ticket ends. Both the unnamed and the named fallback.
 */
struct held_arg {
	struct newfile	*nf;
	struct dirsync	*ds;
	const char	*dst, *dir;
	_Atomic int	 done;
	int		 rc;
};

static void *
publish_thread(void *p)
{
	struct held_arg	*a = p;
	bool		 named;

	a->rc = newfile_publish_sync(a->nf, a->dst, false, a->ds, a->dir,
	    &named);
	atomic_store(&a->done, 1);
	return NULL;
}

static void
test_publish_held(void **state)
{
	struct fixture	*f = *state;
	struct newfile	 nf;
	struct dirsync	*ds = dirsync_new();
	struct dirsync_ticket t;
	char		 dst[128];
	pthread_t	 th;

	newfile_set_fsync_races(1);
	for (int round = 0; round < 2; round++) {
		struct held_arg a = { .nf = &nf, .ds = ds, .dst = dst,
		    .dir = f->out };

		snprintf(dst, sizeof(dst), "%s/h%d", f->out, round);
		assert_int_equal(newfile_open(&nf, f->tmp, "s", 0600), 0);
		assert_int_equal(write(nf.fd, "body\n", 5), 5);
		dirsync_begin_as(ds, f->out, &t, true);
		assert_int_equal(pthread_create(&th, NULL, publish_thread, &a),
		    0);
		usleep(100000);
		assert_int_equal(atomic_load(&a.done), 0);	/* waits */
		assert_int_equal(dirsync_end(&t), 0);
		assert_int_equal(pthread_join(th, NULL), 0);
		assert_int_equal(a.rc, 0);
		assert_content(dst, "body\n");
		newfile_discard(&nf);
		/* not held while nothing is under way */
		dirsync_begin_as(ds, f->out, &t, true);
		assert_int_equal(dirsync_end(&t), 0);
		newfile_allow_unnamed(false);	/* round 1: named */
	}
	newfile_allow_unnamed(true);
	newfile_set_fsync_races(0);
	dirsync_free(ds);
	assert_int_equal(fs_entries(f->out), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_publish, setup_unnamed,
		    teardown),
		cmocka_unit_test_setup_teardown(test_discard, setup_unnamed,
		    teardown),
		cmocka_unit_test_setup_teardown(test_missing_dirs,
		    setup_unnamed, teardown),
		cmocka_unit_test_setup_teardown(test_taken_name,
		    setup_unnamed, teardown),
		cmocka_unit_test_setup_teardown(test_publish_sync_dir,
		    setup_unnamed, teardown),
		cmocka_unit_test_setup_teardown(test_publish_held,
		    setup_unnamed, teardown),
		cmocka_unit_test(test_fsync_names),
		cmocka_unit_test_setup_teardown(test_publish, setup_proc,
		    teardown),
		cmocka_unit_test_setup_teardown(test_missing_dirs,
		    setup_proc, teardown),
		cmocka_unit_test_setup_teardown(test_taken_name,
		    setup_proc, teardown),
		cmocka_unit_test_setup_teardown(test_publish, setup_named,
		    teardown),
		cmocka_unit_test_setup_teardown(test_discard, setup_named,
		    teardown),
		cmocka_unit_test_setup_teardown(test_missing_dirs,
		    setup_named, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
