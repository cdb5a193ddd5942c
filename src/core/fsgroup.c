/*
 * fsgroup.c: see fsgroup.h. "requested" numbers the callers, "synced" is
 * the highest number a finished sync covered, as in dirsync.c. A caller
 * notes how many syncs had failed when it asked; if that count moved by
 * the time it is covered, it fails too: the failed sync may have been its
 * own (syncfs() reports a write error once, to one caller).
 *
 * A sync is syncfs_flushed() of the directory (util.c: syncfs(), then an
 * fsync for one more flush of the disk's cache).
 */
#include "core/fsgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

#define FSGROUP_SLOW_PAUSE	(60u * 1000000u)	/* usec of fsyncs */

struct fsgroup {
	int		 fd;		/* owned: the directory */
	dev_t		 dev;
	uint64_t	 slow_usec;
	_Atomic uint64_t file_until;	/* usec: per-file syncs until then */
	int		(*fake)(void *);	/* tests: instead of syncfs */
	void		*fake_arg;

	pthread_mutex_t	 mtx;
	pthread_cond_t	 cond;
	uint64_t	 requested;	/* guarded by mtx, all below */
	uint64_t	 synced;
	uint64_t	 failures;
	unsigned long	 syncs;
	bool		 syncing;
	int		 last_err;
};

struct fsgroup *
fsgroup_open(const char *dir, unsigned long slow_usec)
{
	struct fsgroup	*fg;
	struct stat	 st;
	int		 fd;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1) {
		int saved = errno;

		close(fd);
		errno = saved;
		return NULL;
	}
	fg = xcalloc(1, sizeof(*fg));
	fg->fd = fd;
	fg->dev = st.st_dev;
	fg->slow_usec = slow_usec;
	pthread_mutex_init(&fg->mtx, NULL);
	pthread_cond_init(&fg->cond, NULL);
	return fg;
}

void
fsgroup_free(struct fsgroup *fg)
{
	if (fg == NULL)
		return;
	pthread_cond_destroy(&fg->cond);
	pthread_mutex_destroy(&fg->mtx);
	close(fg->fd);
	free(fg);
}

bool
fsgroup_usable(struct fsgroup *fg, dev_t dev)
{
	return fg != NULL && dev == fg->dev &&
	    now_usec() >= atomic_load(&fg->file_until);
}

/* One sync of the whole filesystem, with its flush. */
static int
sync_once(struct fsgroup *fg)
{
	uint64_t t0 = now_usec(), took;
	int	 rc;

	if (fg->fake != NULL)
		rc = fg->fake(fg->fake_arg);
	else
		rc = syncfs_flushed(fg->fd);
	took = now_usec() - t0;
	if (fg->slow_usec > 0 && took >= fg->slow_usec) {
		int saved = errno;

		atomic_store(&fg->file_until, now_usec() + FSGROUP_SLOW_PAUSE);
		log_warn("filesystem sync took %llu ms: an fsync per file "
		    "for a minute (other writers on this filesystem?)",
		    (unsigned long long)(took / 1000));
		errno = saved;
	}
	return rc;
}

/*
 * The thread that syncs covers everyone who asked before it started,
 * itself included, so it returns after its one sync. One sync at a time:
 * letting a caller that asks during a sync start a second one beside it
 * was measured slower (w1 at 20 sessions, 5 pairs: 6% fewer messages/s,
 * more CPU per message); two syncfs() calls contend for the same inodes
 * and buffers. It wakes the waiters after letting go of the mutex:
 * woken while it still held it, each would block on the mutex at once
 * (two more futex calls and a context switch per waiter, measured on
 * every commit of a busy w1 run).
 */
int
fsgroup_sync(struct fsgroup *fg)
{
	uint64_t	 mine, failures;
	int		 rc = 0, err = 0;
	bool		 led = false;

	pthread_mutex_lock(&fg->mtx);
	mine = ++fg->requested;
	failures = fg->failures;
	while (fg->synced < mine) {
		if (fg->syncing) {
			pthread_cond_wait(&fg->cond, &fg->mtx);
			continue;
		}
		uint64_t target = fg->requested;

		fg->syncing = true;
		fg->syncs++;
		pthread_mutex_unlock(&fg->mtx);
		rc = sync_once(fg);
		err = errno;
		pthread_mutex_lock(&fg->mtx);
		fg->syncing = false;
		fg->synced = target;	/* >= mine: the loop ends */
		if (rc == -1) {
			fg->failures++;
			fg->last_err = err;
		}
		led = true;
	}
	if (fg->failures != failures) {
		rc = -1;
		err = fg->last_err;
	}
	pthread_mutex_unlock(&fg->mtx);
	if (led)
		pthread_cond_broadcast(&fg->cond);
	if (rc == -1)
		errno = err;
	return rc;
}

unsigned long
fsgroup_syncs(struct fsgroup *fg)
{
	unsigned long	 n;

	pthread_mutex_lock(&fg->mtx);
	n = fg->syncs;
	pthread_mutex_unlock(&fg->mtx);
	return n;
}

void
fsgroup_set_sync(struct fsgroup *fg, int (*fn)(void *), void *arg)
{
	fg->fake = fn;
	fg->fake_arg = arg;
}
