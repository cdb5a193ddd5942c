#ifndef PETREL_QUEUE_SCHEDULER_H
#define PETREL_QUEUE_SCHEDULER_H
/*
 * scheduler.h: decides when each queued message is delivered: new
 * messages at once, deferred ones after a backoff, up to a limit of
 * concurrent delivery jobs on the worker pool. Routing and delivery run
 * in the job; results come back to the loop.
 */
#include <event2/event.h>
#include <stdint.h>

#include "core/config.h"
#include "core/workq.h"
#include "deliver/local.h"
#include "queue/spool.h"

struct sched;
struct remote;

/* All pointers borrowed: they outlive the scheduler. */
struct sched	*sched_new(struct event_base *base, const struct config *cfg,
		    struct spool *sp, struct workq *wq,
		    const struct local_db *ldb);
/* Deliver non-local recipients through r (borrowed; NULL: they wait). */
void		 sched_set_remote(struct sched *s, struct remote *r);
/* A committed (or recovered) message: deliver it as soon as possible. */
void		 sched_add(struct sched *s, const char *id);
/* Messages known to the scheduler (queued, running or waiting). */
size_t		 sched_count(const struct sched *s);
/* Start no more jobs; results of running ones are dropped (the message
   stays in the spool for the next start). */
void		 sched_stop(struct sched *s);
/* Free; call once the worker pool has stopped. */
void		 sched_free(struct sched *s);

/*
 * Backoff before attempt n+1 after n failed attempts (n >= 1): initial,
 * doubling, capped at max. Pure.
 */
int		 sched_backoff(int n, int initial, int max);

#endif
