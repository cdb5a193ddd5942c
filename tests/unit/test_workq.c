/*
 * test_workq.c: jobs run on the workers, each done() once on the loop
 * thread, and no finished job waits for a wakeup that never comes (the
 * workers wake the loop only when the finished list was empty).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include <event2/event.h>

#include "core/workq.h"

#define JOBS	20000
#define ROUNDS	50

struct run;

struct job_arg {
	struct run	*r;
	int		 i;
	atomic_int	 worked;	/* set by work() */
	int		 done;		/* set by done(), on the loop */
	bool		 on_loop;	/* done() ran on the loop thread */
};

struct run {
	struct event_base *base;
	struct workq	*wq;
	pthread_t	 loop;
	struct job_arg	*jobs;
	int		 ndone;
	int		 want;
	bool		 timed_out;
};

static void
job_work(void *p)
{
	struct job_arg	*a = p;

	/* some jobs take a little while, so finishes interleave */
	if (a->i % 97 == 0) {
		struct timespec ts = { 0, 200000 };

		nanosleep(&ts, NULL);
	}
	atomic_fetch_add(&a->worked, 1);
}

static void
job_done(void *p)
{
	struct job_arg	*a = p;

	a->done++;
	a->on_loop = pthread_equal(pthread_self(), a->r->loop);
	if (++a->r->ndone == a->r->want)
		event_base_loopbreak(a->r->base);
}

static void
timeout_cb(evutil_socket_t fd, short what, void *p)
{
	struct run	*r = p;

	(void)fd;
	(void)what;
	r->timed_out = true;
	event_base_loopbreak(r->base);
}

/* Submit jobs first .. first + n - 1. */
static void
submit_jobs(struct run *r, int first, int n)
{
	for (int i = first; i < first + n; i++) {
		r->jobs[i].r = r;
		r->jobs[i].i = i;
		workq_submit(r->wq, job_work, job_done, &r->jobs[i]);
	}
}

/* Submit n jobs, run the loop until all are done (or 30 s pass). */
static void
run_jobs(struct run *r, int first, int n)
{
	struct timeval	 tv = { 30, 0 };
	struct event	*t = evtimer_new(r->base, timeout_cb, r);

	r->want = r->ndone + n;
	submit_jobs(r, first, n);
	evtimer_add(t, &tv);
	event_base_dispatch(r->base);
	event_free(t);
	assert_false(r->timed_out);
	assert_int_equal(r->ndone, r->want);
}

static void
check_jobs(const struct run *r, int n)
{
	for (int i = 0; i < n; i++) {
		assert_int_equal(atomic_load(&r->jobs[i].worked), 1);
		assert_int_equal(r->jobs[i].done, 1);
		assert_true(r->jobs[i].on_loop);
	}
}

/* A loop, nthreads workers and room for njobs jobs. */
static void
run_init(struct run *r, int nthreads, int njobs)
{
	*r = (struct run){ 0 };
	r->base = event_base_new();
	assert_non_null(r->base);
	r->wq = workq_new(r->base, nthreads);
	r->loop = pthread_self();
	r->jobs = calloc((size_t)njobs, sizeof(*r->jobs));
	assert_non_null(r->jobs);
}

static void
run_free(struct run *r)
{
	event_base_free(r->base);
	free(r->jobs);
}

static void
test_many_jobs(void **state)
{
	struct run	 r;

	(void)state;
	run_init(&r, 8, JOBS);
	run_jobs(&r, 0, JOBS);
	assert_int_equal(workq_pending(r.wq), 0);
	check_jobs(&r, JOBS);
	workq_free(r.wq);
	run_free(&r);
}

/* One job at a time, many times: each finish must wake the loop by
   itself (the list is empty before every push). */
static void
test_one_at_a_time(void **state)
{
	struct run	 r;

	(void)state;
	run_init(&r, 4, ROUNDS);
	for (int i = 0; i < ROUNDS; i++)
		run_jobs(&r, i, 1);
	check_jobs(&r, ROUNDS);
	workq_free(r.wq);
	run_free(&r);
}

/* workq_free() runs what is still queued and its done() callbacks. */
static void
test_free_runs_pending(void **state)
{
	struct run	 r;
	int		 n = 500;

	(void)state;
	run_init(&r, 2, n);
	r.want = -1;		/* never break the loop: it does not run */
	submit_jobs(&r, 0, n);
	workq_free(r.wq);	/* the loop never ran */
	assert_int_equal(r.ndone, n);
	check_jobs(&r, n);
	run_free(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_jobs),
		cmocka_unit_test(test_one_at_a_time),
		cmocka_unit_test(test_free_runs_pending),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
