#ifndef PETREL_CORE_WORKQ_H
#define PETREL_CORE_WORKQ_H
/*
 * workq.h: a small pool of worker threads for what must block (fsync,
 * rename, Maildir writes). work() runs on a worker; done() then runs on the
 * event loop thread, so callers touch their state from the loop only.
 */
#include <event2/event.h>

struct workq;

/* Start nthreads workers bound to base. Caller frees with workq_free(). */
struct workq	*workq_new(struct event_base *base, int nthreads);
/* Queue a job; arg is owned by the job until done() runs. */
void		 workq_submit(struct workq *wq, void (*work)(void *),
		    void (*done)(void *), void *arg);
/* Jobs queued or running. */
unsigned	 workq_pending(const struct workq *wq);
/*
 * Run the queued jobs, stop the workers, then run the pending done()
 * callbacks on the calling thread (call after the loop stopped; done()
 * must not submit new jobs then).
 */
void		 workq_free(struct workq *wq);

#endif
