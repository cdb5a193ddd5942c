#ifndef PETREL_CORE_FSGROUP_H
#define PETREL_CORE_FSGROUP_H
/*
 * fsgroup.h: group commit of a whole filesystem. Where one job writes
 * several files (a message for several mailboxes), one syncfs(2) makes all
 * of them durable: the data, the inodes and the directory entries go out
 * in one batch with one cache flush, where an fsync per file writes and
 * waits for each piece in turn. Threads that ask at the same time share
 * one sync, as in dirsync.h. Blocking: for worker threads.
 *
 * syncfs() also writes whatever else is dirty on that filesystem. Where a
 * sync takes longer than the slow limit (other heavy writers on a shared
 * filesystem), fsgroup_usable() says no for a minute and callers go back
 * to an fsync per file.
 */
#include <stdbool.h>
#include <sys/types.h>

struct fsgroup;

/* For the filesystem that holds dir (which must exist). NULL with errno
   set on failure. slow_usec: the slow limit above (0: none). */
struct fsgroup	*fsgroup_open(const char *dir, unsigned long slow_usec);
void		 fsgroup_free(struct fsgroup *fg);
/* True when a file on device dev may be made durable by fsgroup_sync()
   now: the same filesystem, and syncs have not been slow lately. */
bool		 fsgroup_usable(struct fsgroup *fg, dev_t dev);
/*
 * Make every change on the filesystem made before this call durable. 0, or
 * -1 with errno set. A failed sync fails every caller that waited on it
 * (a write error is reported by syncfs() only once).
 */
int		 fsgroup_sync(struct fsgroup *fg);
/* Syncs run so far (for tests). */
unsigned long	 fsgroup_syncs(struct fsgroup *fg);
/* For tests: fn(arg) stands in for the filesystem sync (0, or -1 with
   errno set); NULL goes back to syncfs(). Call before any sync. */
void		 fsgroup_set_sync(struct fsgroup *fg, int (*fn)(void *),
		    void *arg);

#endif
