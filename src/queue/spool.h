#ifndef PETREL_QUEUE_SPOOL_H
#define PETREL_QUEUE_SPOOL_H
/*
 * spool.h: the on-disk queue. A message is written to tmp/<id> as it
 * arrives, then committed: fdatasync, rename into queue/<id>, fsync of
 * queue/ (batched across concurrent commits: group commit). Knows nothing
 * of SMTP; callers decide when to commit.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "queue/qid.h"

struct spool;

/* A message being received into tmp/. */
struct spool_msg {
	struct spool	*sp;		/* borrowed: outlives the message */
	char		 id[QID_LEN + 1];
	char		*tmp_path;	/* owned */
	char		*queue_path;	/* owned */
	int		 fd;		/* -1 once closed */
	uint64_t	 written;	/* bytes written so far */
	int		 error;		/* errno of the first failed write */
	bool		 committed;
	bool		 dropped;	/* tmp file removed uncommitted */
};

/*
 * Open the spool at dir: create dir/tmp and dir/queue as needed and
 * remove leftovers from tmp/ (never acknowledged). Returns the spool, or
 * NULL with errno set.
 */
struct spool	*spool_open(const char *dir);
void		 spool_close(struct spool *sp);
const char	*spool_queue_dir(const struct spool *sp);	/* borrowed */

/* Create tmp/<new id> (readable too: a delivery at commit reads it back).
   Returns the message (free with spool_msg_free()),
   or NULL with errno set. Any thread. */
struct spool_msg *spool_msg_new(struct spool *sp);
/*
 * Append bytes. Page-cache writes only; the sync happens at commit. A
 * failure is remembered in m->error and fails the commit; returns -1.
 */
int		 spool_msg_write(struct spool_msg *m, const void *buf,
		    size_t len);
/*
 * Make the message durable: fdatasync, close, rename into queue/, fsync
 * queue/ (shared with concurrent commits: group commit). Blocking, for a
 * worker thread. 0, or an errno (m->committed tells whether the rename
 * happened).
 */
int		 spool_msg_commit_sync(struct spool_msg *m);
/* Close and remove an uncommitted message's tmp file, keeping m (its id)
   for the caller; blocking, any thread. */
void		 spool_msg_drop(struct spool_msg *m);
/* Close and remove an uncommitted message and free it. NULL is a no-op. */
void		 spool_msg_free(struct spool_msg *m);

/* Call cb(id) for every message in queue/, oldest first. Removes journal
   files whose message is gone. Returns the count or -1 (errno). */
long		 spool_scan(struct spool *sp,
		    void (*cb)(const char *id, void *arg), void *arg);

/* Paths of a queued message and its journal into out. */
void		 spool_path(const struct spool *sp, const char *id, char *out,
		    size_t cap);
void		 spool_journal_path(const struct spool *sp, const char *id,
		    char *out, size_t cap);
/*
 * Append a journal line durably (open O_APPEND, write, fdatasync; fsync of
 * queue/ when the journal is new). Blocking: call from a worker. 0 or -1.
 */
int		 spool_journal_append(const struct spool *sp, const char *id,
		    const char *line, size_t len);
/* Remove a message that is final: the message first, then its journal.
   Blocking: call from a worker. 0 or -1. */
int		 spool_remove(const struct spool *sp, const char *id);

#endif
