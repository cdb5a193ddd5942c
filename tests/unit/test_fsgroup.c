/* test_fsgroup.c: shared filesystem syncs from many threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fsgroup.h"

#define THREADS	8
#define CALLS	50

struct arg {
	struct fsgroup	*fg;
	const char	*dir;
	int		 id;
	int		 failures;
};

/* Each call: a new file, then the shared sync (as a delivery pass does). */
static void *
worker(void *p)
{
	struct arg	*a = p;
	char		 path[256];

	for (int i = 0; i < CALLS; i++) {
		snprintf(path, sizeof(path), "%s/%d-%d", a->dir, a->id, i);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);

		if (fd == -1 || write(fd, "x", 1) != 1 || close(fd) != 0 ||
		    fsgroup_sync(a->fg) != 0)
			a->failures++;
		unlink(path);
	}
	return NULL;
}

/* The build directory: a disk, where a sync takes real time. */
static void
make_dir(char *out, size_t cap)
{
	snprintf(out, cap, "petrel-fsgroup-XXXXXX");
	assert_non_null(mkdtemp(out));
}

static void
test_many_threads(void **state)
{
	char	 dir[64];
	pthread_t t[THREADS];
	struct arg a[THREADS];
	struct fsgroup *fg;
	unsigned long syncs;

	(void)state;
	make_dir(dir, sizeof(dir));
	assert_non_null(fg = fsgroup_open(dir, 0));
	for (int i = 0; i < THREADS; i++) {
		a[i] = (struct arg){ fg, dir, i, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(a[i].failures, 0);
	}
	/* every call was covered by a sync, and no call ran two */
	syncs = fsgroup_syncs(fg);
	assert_true(syncs >= 1);
	assert_true(syncs <= THREADS * CALLS);
	printf("# %d calls, %lu syncs\n", THREADS * CALLS, syncs);
	fsgroup_free(fg);
	rmdir(dir);
}

static void
test_usable(void **state)
{
	char	 dir[64];
	struct stat st, other;
	struct fsgroup *fg;

	(void)state;
	make_dir(dir, sizeof(dir));
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(stat("/proc/self", &other), 0);
	assert_true(st.st_dev != other.st_dev);
	assert_non_null(fg = fsgroup_open(dir, 0));
	assert_true(fsgroup_usable(fg, st.st_dev));
	assert_false(fsgroup_usable(fg, other.st_dev));	/* not its disk */
	assert_false(fsgroup_usable(NULL, st.st_dev));
	assert_int_equal(fsgroup_sync(fg), 0);
	assert_true(fsgroup_usable(fg, st.st_dev));	/* no slow limit */
	fsgroup_free(fg);

	/* a sync over the slow limit (1 us: any real sync) turns batches
	   off for a while; the sync itself still succeeded */
	assert_non_null(fg = fsgroup_open(dir, 1));
	assert_true(fsgroup_usable(fg, st.st_dev));
	assert_int_equal(fsgroup_sync(fg), 0);
	assert_false(fsgroup_usable(fg, st.st_dev));
	assert_int_equal(fsgroup_syncs(fg), 1);
	fsgroup_free(fg);
	fsgroup_free(NULL);
	rmdir(dir);
}

static void
test_open_errors(void **state)
{
	(void)state;
	errno = 0;
	assert_null(fsgroup_open("/nonexistent/petrel", 0));
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_null(fsgroup_open("/dev/null", 0));	/* not a directory */
	assert_int_equal(errno, ENOTDIR);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_threads),
		cmocka_unit_test(test_usable),
		cmocka_unit_test(test_open_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
