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

/*
 * A stand-in sync that keeps the books: every caller "writes" (takes the
 * next stamp) before it asks; a sync covers the stamps taken before it
 * started. When fsgroup_sync() returns 0, a sync that covers the
 * caller's stamp must have ended: one that started before the caller
 * asked is not enough.
 */
struct books {
	pthread_mutex_t	 mtx;
	uint64_t	 stamps;	/* writes so far */
	uint64_t	 covered;	/* highest stamp an ended sync covered */
	unsigned	 running, max_running;
	unsigned long	 nsyncs;
	int		 fail_every;	/* this many-th sync fails (0: none) */
	int		 uncovered;	/* callers that returned too early */
	int		 failures;
};

static int
fake_sync(void *p)
{
	struct books	*b = p;
	uint64_t	 cover;
	unsigned long	 n;

	pthread_mutex_lock(&b->mtx);
	cover = b->stamps;
	n = ++b->nsyncs;
	if (++b->running > b->max_running)
		b->max_running = b->running;
	pthread_mutex_unlock(&b->mtx);
	usleep(n % 2 == 1 ? 3000 : 1000);
	pthread_mutex_lock(&b->mtx);
	b->running--;
	if (b->fail_every > 0 && n % (unsigned long)b->fail_every == 0) {
		pthread_mutex_unlock(&b->mtx);
		errno = EIO;
		return -1;
	}
	if (cover > b->covered)
		b->covered = cover;
	pthread_mutex_unlock(&b->mtx);
	return 0;
}

struct caller {
	struct fsgroup	*fg;
	struct books	*b;
};

static void *
fake_caller(void *p)
{
	struct caller	*c = p;
	struct books	*b = c->b;

	for (int i = 0; i < CALLS; i++) {
		uint64_t mine;

		pthread_mutex_lock(&b->mtx);
		mine = ++b->stamps;
		pthread_mutex_unlock(&b->mtx);
		int rc = fsgroup_sync(c->fg);

		pthread_mutex_lock(&b->mtx);
		if (rc == -1)
			b->failures++;
		else if (b->covered < mine)
			b->uncovered++;
		pthread_mutex_unlock(&b->mtx);
	}
	return NULL;
}

static void
run_fake(struct books *b)
{
	char	 dir[64];
	pthread_t t[THREADS];
	struct caller c[THREADS];
	struct fsgroup *fg;

	make_dir(dir, sizeof(dir));
	assert_non_null(fg = fsgroup_open(dir, 0));
	pthread_mutex_init(&b->mtx, NULL);
	fsgroup_set_sync(fg, fake_sync, b);
	for (int i = 0; i < THREADS; i++) {
		c[i] = (struct caller){ fg, b };
		assert_int_equal(pthread_create(&t[i], NULL, fake_caller,
		    &c[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(fsgroup_syncs(fg), b->nsyncs);
	fsgroup_free(fg);
	pthread_mutex_destroy(&b->mtx);
	rmdir(dir);
}

static void
test_syncs_cover_their_callers(void **state)
{
	struct books b = { 0 };

	(void)state;
	run_fake(&b);
	assert_int_equal(b.failures, 0);
	assert_int_equal(b.uncovered, 0);
	/* one sync at a time (fsgroup.c says why), shared: with 8 threads
	   asking all the time, fewer syncs than calls */
	assert_int_equal(b.max_running, 1);
	assert_true(b.nsyncs < THREADS * CALLS);
	printf("# %d calls, %lu syncs\n", THREADS * CALLS, b.nsyncs);
}

static void
test_failed_sync_fails_its_callers(void **state)
{
	struct books b = { .fail_every = 3 };

	(void)state;
	run_fake(&b);
	/* callers of a failed sync get -1; the others are covered */
	assert_true(b.failures > 0);
	assert_int_equal(b.uncovered, 0);
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
		cmocka_unit_test(test_syncs_cover_their_callers),
		cmocka_unit_test(test_failed_sync_fails_its_callers),
		cmocka_unit_test(test_usable),
		cmocka_unit_test(test_open_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
