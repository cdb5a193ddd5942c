#ifndef PETREL_CORE_DIRSYNC_H
#define PETREL_CORE_DIRSYNC_H
/*
 * dirsync.h: group commit of directory syncs. Threads that need the same
 * directory synced at the same time share one fsync: whoever arrives while
 * a sync runs waits for the next one, which covers every rename made
 * before it started. Blocking: for worker threads.
 */
struct dirsync;

/* Caller frees with dirsync_free() once no thread uses it. */
struct dirsync	*dirsync_new(void);
void		 dirsync_free(struct dirsync *ds);
/*
 * Make every entry change made in dir before this call durable. 0, or -1
 * with errno set (ds may be NULL: a plain fsync of dir).
 */
int		 dirsync_sync(struct dirsync *ds, const char *dir);

#endif
