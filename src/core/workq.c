/*
 * workq.c: worker threads for blocking work. Jobs go in a FIFO served by
 * the workers; finished jobs go in a second FIFO that the loop drains when
 * an eventfd wakes it, so done() always runs on the loop thread.
 */
#include "core/workq.h"

#include <errno.h>
#include <pthread.h>
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

struct workq {
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cond;
	struct jobq	 todo;		/* guarded by mtx */
	bool		 stop;		/* guarded by mtx */
	/* a lock of its own: the loop taking finished jobs never waits
	   for a worker looking for its next job, nor the other way */
	pthread_mutex_t	 fmtx;
	struct jobq	 finished;	/* guarded by fmtx */
	unsigned	 pending;	/* queued or running or not yet done */
	int		 efd;		/* eventfd: finished is non-empty */
	struct event	*ev;		/* owned */
	pthread_t	*threads;	/* owned */
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

static void *
workq_thread(void *arg)
{
	struct workq	*wq = arg;
	struct job	*j;
	uint64_t	 one = 1;
	bool		 wake;

	pthread_mutex_lock(&wq->mtx);
	for (;;) {
		while (wq->todo.head == NULL && !wq->stop)
			pthread_cond_wait(&wq->cond, &wq->mtx);
		if ((j = wq->todo.head) == NULL)
			break;			/* stop and nothing left */
		wq->todo.head = j->next;
		if (wq->todo.head == NULL)
			wq->todo.tail = NULL;
		pthread_mutex_unlock(&wq->mtx);

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
		pthread_mutex_lock(&wq->mtx);
	}
	pthread_mutex_unlock(&wq->mtx);
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
	pthread_cond_init(&wq->cond, NULL);
	if ((wq->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		log_fatal("- workq eventfd failed: %s", strerror(errno));
	wq->ev = event_new(base, wq->efd, EV_READ | EV_PERSIST, workq_wakeup,
	    wq);
	event_add(wq->ev, NULL);
	wq->threads = xcalloc((size_t)nthreads, sizeof(*wq->threads));
	wq->nthreads = nthreads;
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&wq->threads[i], NULL, workq_thread, wq)
		    != 0)
			log_fatal("- workq pthread_create failed");
	return wq;
}

void
workq_submit(struct workq *wq, void (*work)(void *), void (*done)(void *),
    void *arg)
{
	struct job	*j = xmalloc(sizeof(*j));

	j->work = work;
	j->done = done;
	j->arg = arg;
	wq->pending++;
	pthread_mutex_lock(&wq->mtx);
	jobq_push(&wq->todo, j);
	pthread_mutex_unlock(&wq->mtx);
	/* after the unlock: the woken worker need not wait for mtx */
	pthread_cond_signal(&wq->cond);
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
	pthread_cond_broadcast(&wq->cond);
	pthread_mutex_unlock(&wq->mtx);
	for (int i = 0; i < wq->nthreads; i++)
		pthread_join(wq->threads[i], NULL);
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
	pthread_cond_destroy(&wq->cond);
	free(wq->threads);
	free(wq);
}
