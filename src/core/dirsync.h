#ifndef PETREL_CORE_DIRSYNC_H
#define PETREL_CORE_DIRSYNC_H
/*
 * dirsync.h: group commit of directory syncs. Threads that need the same
 * directory synced at the same time share one fsync: whoever arrives while
 * a sync runs waits for the next one, which covers every rename made
 * before it started. Blocking: for worker threads.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct dirsync;

/* Caller frees with dirsync_free() once no thread uses it. */
struct dirsync	*dirsync_new(void);
void		 dirsync_free(struct dirsync *ds);
/*
 * busy counts the user's work under way (its commits; read atomically,
 * borrowed, set before the first ticket): above one, tickets are synced
 * on their callers' threads, as when tickets overlap (dirsync_begin()).
 */
void		 dirsync_set_busy(struct dirsync *ds, _Atomic unsigned *busy);
/*
 * Make every entry change made in dir before this call durable. 0, or -1
 * with errno set (ds may be NULL: a plain fsync of dir).
 */
int		 dirsync_sync(struct dirsync *ds, const char *dir);

/*
 * The same in two steps, so that the caller can do other work (its file's
 * fsync) while the directory is synced: dirsync_begin() asks for a sync
 * covering every entry change made in dir before it; dirsync_end() waits
 * for it and says how it went (0, or -1 with errno set). Every begin
 * needs its end; dir must stay valid until then. While other tickets are
 * open, or the user is busy (dirsync_set_busy()), the sync runs in
 * dirsync_end() instead, on the caller's thread.
 */
struct dirsync_dir;
struct dirsync_ticket {
	struct dirsync		*ds;
	struct dirsync_dir	*d;
	uint64_t		 mine;
	const char		*path;	/* borrowed */
	bool			 here;	/* synced by the caller at the end */
	bool			 alone;	/* holds dir till its end */
	bool			 hold_only;	/* dirsync_hold(): no sync */
};
void		 dirsync_begin(struct dirsync *ds, const char *dir,
		    struct dirsync_ticket *t);
/*
 * dirsync_begin(), and with hold the ticket also holds dir until its end:
 * another holding ticket of dir waits here for it, and a plain ticket's
 * sync of dir waits for it too. For filesystems where two fsyncs that
 * write one directory's blocks at once can miss each other's writes
 * (newfile_fsync_races()): the caller's file fsync, which may write dir's
 * blocks, and dir's sync then run with no other of ours on dir.
 */
void		 dirsync_begin_as(struct dirsync *ds, const char *dir,
		    struct dirsync_ticket *t, bool hold);
/*
 * Only the hold (ds not NULL): for a caller whose own fsync makes its
 * entry durable once no other fsync of ours writes dir's blocks beside it
 * (newfile.c). dirsync_end() releases it and returns 0.
 */
void		 dirsync_hold(struct dirsync *ds, const char *dir,
		    struct dirsync_ticket *t);
int		 dirsync_end(struct dirsync_ticket *t);

#endif
