#ifndef PETREL_DELIVER_MAILDIR_H
#define PETREL_DELIVER_MAILDIR_H
/*
 * maildir.h: deliver one message into a Maildir (tmp/, fsync, rename into
 * new/, fsync new/). Blocking: runs on a worker thread.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Copy the message that starts at offset body_off of src (the spool file
 * or its bytes in memory; CRLF lines) into the Maildir dir, creating dir/{tmp,new,cur} as
 * needed, with LF line ends, "Return-Path: <return_path>" and
 * "Delivered-To: delivered_to" first; Return-Path headers of the content
 * are dropped. hostname goes into the unique file name. The sync of new/
 * goes through ds (shared with concurrent deliveries; NULL: its own
 * fsync). Returns 0, or -1
 * with err set (a temporary failure: nothing is left in new/).
 */
struct dirsync;
struct fsgroup;

struct bytesrc;

/*
 * A delivery pass that writes several files passes a batch: each file is
 * linked into new/ at once and made durable later, all together, by
 * maildir_batch_commit() (one fsgroup sync instead of an fsync per file
 * and per directory). A file the batch's sync does not cover (another
 * filesystem, or syncs were slow lately) is made durable on its own.
 */
struct newfile;
struct maildir_batch {
	struct fsgroup	*fg;		/* borrowed */
	struct dirsync	*ds;		/* borrowed, may be NULL: holds a
					   Maildir made again (maildir.c) */
	char		**paths;	/* owned: files waiting for the sync */
	struct newfile	*files;		/* owned: paths[i]'s file while it
					   has no name yet, else closed */
	size_t		 n;
	bool		 contents_sync;	/* set by the caller for many files:
					   their contents are written out by
					   one fsgroup sync before any is
					   named, not each by its own */
};

/*
 * A message in memory as it goes into every Maildir (LF line ends, the
 * content's Return-Path fields dropped), made by the first delivery that
 * is passed it and reused by the next ones of the same message.
 */
struct maildir_body {
	const char	*from;		/* borrowed: the bytes it was made of */
	size_t		 from_len;
	off_t		 off;
	char		*buf;		/* owned */
	size_t		 len;
};
/* Free what b holds; it can be used again. */
void	maildir_body_free(struct maildir_body *body);

/*
 * b may be NULL: every file durable before this returns. body may be
 * NULL; else, for a source in memory, the content is taken from it (made
 * first if it was made of other bytes).
 */
int	maildir_deliver(struct dirsync *ds, struct maildir_batch *b,
	    struct maildir_body *body, const char *dir,
	    const struct bytesrc *src, off_t body_off,
	    const char *return_path, const char *delivered_to,
	    const char *hostname, char *err, size_t errlen);

/* Another file (named, not yet durable) for the batch's sync to cover,
   and to remove if it fails. */
void	maildir_batch_add(struct maildir_batch *b, const char *path);
/*
 * Name the batch's Maildir files (maildir_deliver() writes them and starts
 * their write-out; each is named once its contents are on the disk, the
 * write-outs overlapping; with contents_sync, all are named after one
 * fsgroup sync wrote them), then make them all durable. 0, or -1 with
 * errno set: then they are removed again (nothing acknowledged relies on
 * them yet) and the caller treats every delivery of the batch as failed.
 * Empties b either way.
 */
int	maildir_batch_commit(struct maildir_batch *b);
/* Remove the batch's files, named or not, and empty it: for a batch
   that will not be committed (nothing was reported on it). */
void	maildir_batch_discard(struct maildir_batch *b);

#endif
