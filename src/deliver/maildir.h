#ifndef PETREL_DELIVER_MAILDIR_H
#define PETREL_DELIVER_MAILDIR_H
/*
 * maildir.h: deliver one message into a Maildir (tmp/, fsync, rename into
 * new/, fsync new/). Blocking: runs on a worker thread.
 */
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

struct bytesrc;

int	maildir_deliver(struct dirsync *ds, const char *dir,
	    const struct bytesrc *src, off_t body_off,
	    const char *return_path, const char *delivered_to,
	    const char *hostname, char *err, size_t errlen);

#endif
