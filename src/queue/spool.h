#ifndef PETREL_QUEUE_SPOOL_H
#define PETREL_QUEUE_SPOOL_H
/*
 * spool.h: the on-disk queue. A message is held in memory as it arrives
 * (in a file in tmp/ once big), then committed: written to that file,
 * fdatasync, given its name queue/<id>, fsync of queue/ (batched across
 * concurrent commits: group commit). The file in tmp/ has no name where
 * the system allows (core/newfile.h), else it is tmp/<id>. Knows nothing
 * of SMTP; callers decide when to commit.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/newfile.h"
#include "core/util.h"
#include "queue/qid.h"

struct spool;

/*
 * A message being received: in memory up to SPOOL_MEM_MAX bytes, beyond
 * that in a file in tmp/. Either way it is never acknowledged until
 * committed.
 */
#define SPOOL_MEM_MAX	(128u * 1024)	/* bytes held per message */

struct spool_msg {
	struct spool	*sp;		/* borrowed: outlives the message */
	char		 id[QID_LEN + 1];
	char		*queue_path;	/* owned */
	struct newfile	 nf;		/* in tmp/ (maybe unnamed) once spilled */
	char		*mem;		/* owned: the bytes while !file, or
					   while kept */
	size_t		 mem_len, mem_cap;
	uint64_t	 written;	/* bytes written so far */
	int		 error;		/* errno of the first failed write */
	bool		 file;		/* the bytes are in the tmp/ file (queue/<id>
					   once committed); false once dropped */
	bool		 committed;
	bool		 kept;		/* in the file and still in mem: linked
					   by spool_msg_link(), complete */
	int		 read_fd;	/* owned, -1 if none: the file's bytes
					   after spool_msg_link() */
};

/*
 * Open the spool at dir: create dir/tmp and dir/queue as needed and
 * remove leftovers from tmp/ (never acknowledged). Returns the spool, or
 * NULL with errno set.
 */
struct spool	*spool_open(const char *dir);
void		 spool_close(struct spool *sp);
const char	*spool_queue_dir(const struct spool *sp);	/* borrowed */

/* A new message with a fresh id (nothing on disk yet): one that no
   message in queue/ has, once spool_scan() has run. Returns it (free with
   spool_msg_free()). Any thread. */
struct spool_msg *spool_msg_new(struct spool *sp);
/*
 * Append bytes: to memory, or once past SPOOL_MEM_MAX to the tmp/ file (page
 * cache; the sync happens at commit). A failure is remembered in
 * m->error and fails the commit; returns -1.
 */
int		 spool_msg_write(struct spool_msg *m, const void *buf,
		    size_t len);
/*
 * Make the message durable: write it to a tmp/ file if it is still in
 * memory, fdatasync, name it queue/<id>, close, fsync queue/ (shared with
 * concurrent commits: group commit). Blocking, for a worker thread. 0, or
 * an errno (m->committed tells whether queue/<id> was made).
 */
int		 spool_msg_commit_sync(struct spool_msg *m);
/*
 * Name the message queue/<id> first, durable later: where its file is on
 * the filesystem fg syncs (core/fsgroup.h), it is only written and linked
 * (*pending true) and the caller's fsgroup_sync() makes it durable;
 * elsewhere this is spool_msg_commit_sync() (*pending false). Either way
 * m stays readable through spool_msg_src(). Blocking. 0, or an errno.
 */
struct fsgroup;
int		 spool_msg_link(struct spool_msg *m, struct fsgroup *fg,
		    bool *pending);
/* Where to read back what was written so far (borrowed from m, valid
   until m is committed, dropped or freed). */
void		 spool_msg_src(const struct spool_msg *m, struct bytesrc *out);
/* Close and remove an uncommitted message's tmp file and bytes, keeping
   m (its id) for the caller; blocking, any thread. */
void		 spool_msg_drop(struct spool_msg *m);
/* Close and remove an uncommitted message and free it. NULL is a no-op. */
void		 spool_msg_free(struct spool_msg *m);

/* Call cb(id) for every message in queue/, oldest first, and make new
   ids sort after theirs (a clock stepped back cannot repeat one). Removes
   journal files whose message is gone. Returns the count or -1 (errno). */
long		 spool_scan(struct spool *sp,
		    void (*cb)(const char *id, void *arg), void *arg);

/* Paths of a queued message and its journal into out. */
void		 spool_path(const struct spool *sp, const char *id, char *out,
		    size_t cap);
void		 spool_journal_path(const struct spool *sp, const char *id,
		    char *out, size_t cap);
/*
 * Append a journal line durably (open O_APPEND, write, fdatasync; a sync
 * of queue/ through the spool's dirsync when the journal is new).
 * Blocking: call from a worker. 0 or -1.
 */
int		 spool_journal_append(const struct spool *sp, const char *id,
		    const char *line, size_t len);
/* Remove a message that is final: the message first, then its journal.
   Blocking: call from a worker. 0 or -1. */
int		 spool_remove(const struct spool *sp, const char *id);

#endif
