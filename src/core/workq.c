/*
 * workq.c: worker threads for blocking work. A job goes straight to an
 * idle worker if there is one (the one idle the shortest time: its stack
 * and caches are warm), else into a FIFO that workers serve as they come
 * free. Each idle worker sleeps on a semaphore of its own, so a job wakes
 * one thread and no other wakes for nothing (a semaphore: glibc marks the
 * mutex contended when a condition wait takes it back, which costs a futex
 * wake at the next unlock, every job). Finished jobs go in a second
 * FIFO that the loop drains when an eventfd wakes it, so done() always
 * runs on the loop thread.
 */
#include "core/workq.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

struct job {
	void		(*work)(void *);
	void		(*done)(void *);
	void		*arg;		/* owned by the job's creator */
	struct job	*next;
};

struct jobq {
	struct job	*head, *tail;
};

struct worker {
	struct workq	*wq;
	pthread_t	 thread;
	sem_t		 sem;		/* posted when job is set, or to stop */
	struct job	*job;		/* handed over: set before the post */
	struct worker	*next_idle;	/* guarded by wq->mtx */
};

struct workq {
	pthread_mutex_t	 mtx;
	struct jobq	 todo;		/* guarded by mtx */
	struct worker	*idle;		/* guarded by mtx: a stack */
	bool		 stop;		/* guarded by mtx */
	/* a lock of its own: the loop taking finished jobs never waits
	   for a worker looking for its next job, nor the other way */
	pthread_mutex_t	 fmtx;
	struct jobq	 finished;	/* guarded by fmtx */
	unsigned	 pending;	/* queued or running or not yet done */
	int		 efd;		/* eventfd: finished is non-empty */
	struct event	*ev;		/* owned */
	struct worker	*workers;	/* owned */
	int		 nthreads;
};

static void
jobq_push(struct jobq *q, struct job *j)
{
	j->next = NULL;
	if (q->tail != NULL)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static struct job *
jobq_take_all(struct jobq *q)
{
	struct job *j = q->head;

	q->head = q->tail = NULL;
	return j;
}

static struct job *
jobq_pop(struct jobq *q)
{
	struct job *j = q->head;

	if (j != NULL && (q->head = j->next) == NULL)
		q->tail = NULL;
	return j;
}

/* The next job for w, waiting idle for it; NULL: stop, nothing left. */
static struct job *
worker_next(struct worker *w)
{
	struct workq	*wq = w->wq;
	struct job	*j;

	for (;;) {
		pthread_mutex_lock(&wq->mtx);
		if ((j = jobq_pop(&wq->todo)) != NULL || wq->stop) {
			pthread_mutex_unlock(&wq->mtx);
			return j;
		}
		w->next_idle = wq->idle;
		wq->idle = w;
		pthread_mutex_unlock(&wq->mtx);
		while (sem_wait(&w->sem) == -1)
			;		/* EINTR */
		if ((j = w->job) != NULL) {
			w->job = NULL;
			return j;
		}
		/* posted to stop: the queue is looked at once more */
	}
}

static void *
workq_thread(void *arg)
{
	struct worker	*w = arg;
	struct workq	*wq = w->wq;
	struct job	*j;
	uint64_t	 one = 1;
	bool		 wake;

	while ((j = worker_next(w)) != NULL) {
		j->work(j->arg);

		pthread_mutex_lock(&wq->fmtx);
		wake = wq->finished.head == NULL;
		jobq_push(&wq->finished, j);
		pthread_mutex_unlock(&wq->fmtx);
		/*
		 * Only the job that finds the list empty wakes the loop: the
		 * loop reads the eventfd before it takes the list, so a job
		 * pushed behind another is taken with it. Written unlocked,
		 * so the woken loop does not block on fmtx at once. The write
		 * cannot block: the counter never nears its maximum.
		 */
		if (wake)
			(void)!write(wq->efd, &one, sizeof(one));
	}
	return NULL;
}

static void
workq_wakeup(evutil_socket_t fd, short what, void *arg)
{
	struct workq	*wq = arg;
	struct job	*j, *next;
	uint64_t	 n;

	(void)what;
	(void)!read(fd, &n, sizeof(n));
	pthread_mutex_lock(&wq->fmtx);
	j = jobq_take_all(&wq->finished);
	pthread_mutex_unlock(&wq->fmtx);
	for (; j != NULL; j = next) {
		next = j->next;
		wq->pending--;
		if (j->done != NULL)
			j->done(j->arg);
		free(j);
	}
}

struct workq *
workq_new(struct event_base *base, int nthreads)
{
	struct workq	*wq = xcalloc(1, sizeof(*wq));

	pthread_mutex_init(&wq->mtx, NULL);
	pthread_mutex_init(&wq->fmtx, NULL);
	if ((wq->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		log_fatal("- workq eventfd failed: %s", strerror(errno));
	wq->ev = event_new(base, wq->efd, EV_READ | EV_PERSIST, workq_wakeup,
	    wq);
	event_add(wq->ev, NULL);
	wq->workers = xcalloc((size_t)nthreads, sizeof(*wq->workers));
	wq->nthreads = nthreads;
	for (int i = 0; i < nthreads; i++) {
		struct worker	*w = &wq->workers[i];

		w->wq = wq;
		if (sem_init(&w->sem, 0, 0) == -1)
			log_fatal("- workq sem_init failed: %s",
			    strerror(errno));
		if (pthread_create(&w->thread, NULL, workq_thread, w) != 0)
			log_fatal("- workq pthread_create failed");
	}
	return wq;
}

void
workq_submit(struct workq *wq, void (*work)(void *), void (*done)(void *),
    void *arg)
{
	struct job	*j = xmalloc(sizeof(*j));
	struct worker	*w;

	j->work = work;
	j->done = done;
	j->arg = arg;
	wq->pending++;
	pthread_mutex_lock(&wq->mtx);
	if ((w = wq->idle) != NULL) {
		wq->idle = w->next_idle;
		w->job = j;
	} else
		jobq_push(&wq->todo, j);
	pthread_mutex_unlock(&wq->mtx);
	/* after the unlock: the woken worker need not wait for mtx */
	if (w != NULL)
		sem_post(&w->sem);
}

unsigned
workq_pending(const struct workq *wq)
{
	return wq->pending;
}

void
workq_free(struct workq *wq)
{
	struct job	*j, *next;

	if (wq == NULL)
		return;
	pthread_mutex_lock(&wq->mtx);
	wq->stop = true;
	for (struct worker *w = wq->idle; w != NULL; w = w->next_idle)
		sem_post(&w->sem);	/* job NULL: stop */
	wq->idle = NULL;
	pthread_mutex_unlock(&wq->mtx);
	for (int i = 0; i < wq->nthreads; i++)
		pthread_join(wq->workers[i].thread, NULL);
	/* the loop has stopped: this thread stands in for it */
	for (j = jobq_take_all(&wq->finished); j != NULL; j = next) {
		next = j->next;
		if (j->done != NULL)
			j->done(j->arg);
		free(j);
	}
	event_free(wq->ev);
	close(wq->efd);
	pthread_mutex_destroy(&wq->mtx);
	pthread_mutex_destroy(&wq->fmtx);
	for (int i = 0; i < wq->nthreads; i++)
		sem_destroy(&wq->workers[i].sem);
	free(wq->workers);
	free(wq);
}
