/* test_dirsync.c: shared directory syncs from many threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dirsync.h"

#define THREADS	8
#define CALLS	200

struct arg {
	struct dirsync	*ds;
	const char	*dir[2];
	int		 failures;
};

static void *
worker(void *p)
{
	struct arg	*a = p;

	for (int i = 0; i < CALLS; i++)
		if (dirsync_sync(a->ds, a->dir[i % 2]) != 0)
			a->failures++;
	return NULL;
}

/* The two-step form, with work between the steps as a file's fsync. */
static void *
worker_split(void *p)
{
	struct arg	*a = p;

	for (int i = 0; i < CALLS; i++) {
		struct dirsync_ticket t;

		dirsync_begin(a->ds, a->dir[i % 2], &t);
		if (i % 3 == 0)
			usleep(50);
		if (dirsync_end(&t) != 0)
			a->failures++;
	}
	return NULL;
}

static void
run_threads(void *(*fn)(void *))
{
	char	 base[] = "/tmp/petrel-dirsync-XXXXXX", d1[64], d2[64];
	pthread_t t[THREADS];
	struct arg a[THREADS];
	struct dirsync *ds = dirsync_new();

	assert_non_null(mkdtemp(base));
	snprintf(d1, sizeof(d1), "%s/a", base);
	snprintf(d2, sizeof(d2), "%s/b", base);
	assert_int_equal(mkdir(d1, 0700), 0);
	assert_int_equal(mkdir(d2, 0700), 0);
	for (int i = 0; i < THREADS; i++) {
		a[i] = (struct arg){ ds, { d1, d2 }, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, fn, &a[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(a[i].failures, 0);
	}
	dirsync_free(ds);	/* no entry may be left: ASan would see it */
	rmdir(d1);
	rmdir(d2);
	rmdir(base);
}

static void
test_many_threads(void **state)
{
	(void)state;
	run_threads(worker);
}

static void
test_many_threads_split(void **state)
{
	(void)state;
	run_threads(worker_split);
}

static void
test_errors(void **state)
{
	struct dirsync *ds = dirsync_new();

	(void)state;
	errno = 0;
	assert_int_equal(dirsync_sync(ds, "/nonexistent/petrel"), -1);
	assert_int_equal(errno, ENOENT);
	/* after a failure the same directory works again */
	assert_int_equal(dirsync_sync(ds, "/tmp"), 0);
	/* no group: a plain fsync */
	assert_int_equal(dirsync_sync(NULL, "/tmp"), 0);
	assert_int_equal(dirsync_sync(NULL, "/nonexistent/petrel"), -1);

	/* the same in two steps: the failure comes out of the end */
	struct dirsync_ticket t1, t2;

	dirsync_begin(ds, "/nonexistent/petrel", &t1);
	dirsync_begin(ds, "/tmp", &t2);
	errno = 0;
	assert_int_equal(dirsync_end(&t1), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(dirsync_end(&t2), 0);
	dirsync_begin(NULL, "/nonexistent/petrel", &t1);
	assert_int_equal(dirsync_end(&t1), -1);
	/* with another ticket open, a ticket syncs on its caller's thread,
	   its failure its own; the first is served by a syncer */
	struct dirsync_ticket t3;

	dirsync_begin(ds, "/tmp", &t1);
	assert_false(t1.here);
	dirsync_begin(ds, "/nonexistent/petrel", &t2);
	assert_true(t2.here);
	dirsync_begin(ds, "/tmp", &t3);
	assert_true(t3.here);
	errno = 0;
	assert_int_equal(dirsync_end(&t2), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(dirsync_end(&t3), 0);
	assert_int_equal(dirsync_end(&t1), 0);
	/* all ended: alone again */
	dirsync_begin(ds, "/tmp", &t1);
	assert_false(t1.here);
	assert_int_equal(dirsync_end(&t1), 0);
	/* the user's own count: busy above one means not alone */
	_Atomic unsigned busy = 2;

	dirsync_set_busy(ds, &busy);
	dirsync_begin(ds, "/tmp", &t1);
	assert_true(t1.here);
	assert_int_equal(dirsync_end(&t1), 0);
	busy = 1;
	dirsync_begin(ds, "/tmp", &t1);
	assert_false(t1.here);
	assert_int_equal(dirsync_end(&t1), 0);
	dirsync_free(ds);
	dirsync_free(NULL);
}

/* Tickets that hold their directory: one at a time on a directory, side
   by side on two, and their failures their own. */
struct alone_arg {
	struct dirsync	*ds;
	const char	*dir;
	_Atomic int	 done;
};

static void *
alone_thread(void *p)
{
	struct alone_arg *a = p;
	struct dirsync_ticket t;

	dirsync_begin_as(a->ds, a->dir, &t, true);
	atomic_store(&a->done, 1);
	if (dirsync_end(&t) != 0)
		atomic_store(&a->done, 2);
	return NULL;
}

static void
test_alone(void **state)
{
	struct dirsync	*ds = dirsync_new();
	struct dirsync_ticket t, u;
	struct alone_arg a = { .ds = ds, .dir = "/tmp" };
	pthread_t	 th;

	(void)state;
	dirsync_begin_as(ds, "/tmp", &t, true);
	assert_int_equal(pthread_create(&th, NULL, alone_thread, &a), 0);
	/* another directory is not held */
	dirsync_begin_as(ds, "/nonexistent/petrel", &u, true);
	errno = 0;
	assert_int_equal(dirsync_end(&u), -1);
	assert_int_equal(errno, ENOENT);
	usleep(100000);
	assert_int_equal(atomic_load(&a.done), 0);	/* /tmp is held */
	assert_int_equal(dirsync_end(&t), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&a.done), 1);
	dirsync_begin_as(NULL, "/tmp", &t, true);		/* no group */
	assert_int_equal(dirsync_end(&t), 0);
	dirsync_free(ds);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_threads),
		cmocka_unit_test(test_many_threads_split),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_alone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
