#ifndef PETREL_QUEUE_SCHEDULER_H
#define PETREL_QUEUE_SCHEDULER_H
/*
 * scheduler.h: decides when each queued message is delivered: new
 * messages at once, deferred ones after a backoff, up to max_deliveries
 * concurrent delivery jobs, each on a thread of the scheduler's own pool.
 * Routing and delivery run in the job; results come back to the loop.
 * Commits run on the shared pool wq.
 */
#include <event2/event.h>
#include <stdint.h>

#include "core/config.h"
#include "core/workq.h"
#include "deliver/local.h"
#include "queue/spool.h"

struct sched;
struct remote;

/* All pointers borrowed: they outlive the scheduler. Starts the delivery
   threads. */
struct sched	*sched_new(struct event_base *base, const struct config *cfg,
		    struct spool *sp, struct workq *wq,
		    const struct local_db *ldb);
/* Deliver non-local recipients through r (borrowed; NULL: they wait). */
void		 sched_set_remote(struct sched *s, struct remote *r);
/*
 * Commit a received message (complete in m) on a worker. With [queue]
 * direct_local, a message for one local Maildir is delivered there now
 * and skips the queue; any other message, or one whose delivery fails,
 * is committed to queue/ and scheduled. cb(err, arg) runs on the loop:
 * err 0 means the message is on stable storage (answer 250), else an
 * errno. m stays owned by the caller; once cb returns it may free m.
 */
void		 sched_commit(struct sched *s, struct spool_msg *m,
		    void (*cb)(int err, void *arg), void *arg);
/* A committed (or recovered) message: deliver it as soon as possible. */
void		 sched_add(struct sched *s, const char *id);
/* Messages known to the scheduler (queued, running or waiting). */
size_t		 sched_count(const struct sched *s);
/* Start no more jobs; results of running ones are dropped (the message
   stays in the spool for the next start). */
void		 sched_stop(struct sched *s);
/* Free; call after sched_stop() once the loop has stopped and the commit
   pool is freed. Waits for the delivery passes still running. */
void		 sched_free(struct sched *s);

/*
 * Backoff before attempt n+1 after n failed attempts (n >= 1): initial,
 * doubling, capped at max. Pure.
 */
int		 sched_backoff(int n, int initial, int max);

#endif
