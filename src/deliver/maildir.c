/*
 * maildir.c: write one message into a Maildir the way
 * cr.yp.to/proto/maildir.html means: in tmp/, fsync, then into new/ in one
 * step, fsync new/. Where it can, the file in tmp/ has no name at all
 * (core/newfile.h) and is linked into new/. Blocking; runs on a worker
 * thread. Knows nothing of the queue.
 */
#include "deliver/maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/dirsync.h"
#include "core/fsgroup.h"
#include "core/newfile.h"
#include "core/util.h"

#define MAILDIR_BUF_CAP		(64 * 1024)
#define MAILDIR_HOST_MAX	255	/* RFC 1035 2.3.4 */
#define MAILDIR_RP		"return-path:"
#define MAILDIR_RP_LEN		(sizeof(MAILDIR_RP) - 1)

/*
 * The Q<n> part of the unique name: two deliveries from one process in
 * the same microsecond still differ. Process-wide state, atomic because
 * deliveries run on several worker threads.
 */
static atomic_ulong maildir_counter;
/* getpid() once, not once per delivery (petrel forks no deliverers) */
static atomic_long maildir_pid;

/* Where a header line stands while it is being copied. */
enum maildir_hdr {
	MAILDIR_HDR_START,	/* at the start of a line */
	MAILDIR_HDR_PREFIX,	/* could still be "Return-Path:" */
	MAILDIR_HDR_KEEP,	/* rest of the line is copied */
	MAILDIR_HDR_DROP,	/* rest of the line is dropped */
	MAILDIR_HDR_BODY,	/* past the empty line: copy everything */
};

struct maildir_out {
	int		 fd;		/* -1: buf grows instead (a body) */
	char		*buf;		/* owned; cap bytes */
	size_t		 len, cap;
	bool		 pending_cr;	/* a CR was read, its LF may follow */
	bool		 dropping;	/* the current field is Return-Path */
	enum maildir_hdr state;
	char		 pfx[MAILDIR_RP_LEN];	/* held back while PREFIX */
	size_t		 pfx_len;
};

static int
maildir_flush(struct maildir_out *o)
{
	if (o->fd == -1)
		return 0;	/* a body: everything stays in buf */
	if (o->len > 0 && io_write_all(o->fd, o->buf, o->len) == -1)
		return -1;
	o->len = 0;
	return 0;
}

static int
maildir_put(struct maildir_out *o, const char *p, size_t n)
{
	size_t	 k;

	while (n > 0) {
		if (o->len == o->cap) {
			if (o->fd == -1) {
				o->cap *= 2;
				o->buf = xrealloc(o->buf, o->cap);
			} else if (maildir_flush(o) == -1)
				return -1;
		}
		k = o->cap - o->len;
		if (k > n)
			k = n;
		memcpy(o->buf + o->len, p, k);
		o->len += k;
		p += k;
		n -= k;
	}
	return 0;
}

static int
maildir_putc(struct maildir_out *o, char c)
{
	return maildir_put(o, &c, 1);
}

static int
maildir_puts(struct maildir_out *o, const char *s)
{
	return maildir_put(o, s, strlen(s));
}

/*
 * One byte of the message with line ends already LF. Drops Return-Path
 * fields (with their continuation lines) from the header section only:
 * the delivery agent writes the one true Return-Path (RFC 5321 4.4).
 */
static int
maildir_header_byte(struct maildir_out *o, char c)
{
	char	 lc;

	switch (o->state) {
	case MAILDIR_HDR_BODY:
		return maildir_putc(o, c);
	case MAILDIR_HDR_START:
		if (c == '\n') {
			/* RFC 5322 2.1: the empty line ends the header. */
			o->state = MAILDIR_HDR_BODY;
			return maildir_putc(o, c);
		}
		if (c == ' ' || c == '\t') {
			/* RFC 5322 2.2.3: a continuation of the field. */
			if (o->dropping) {
				o->state = MAILDIR_HDR_DROP;
				return 0;
			}
			o->state = MAILDIR_HDR_KEEP;
			return maildir_putc(o, c);
		}
		o->dropping = false;
		o->pfx_len = 0;
		o->state = MAILDIR_HDR_PREFIX;
		/* FALLTHROUGH */
	case MAILDIR_HDR_PREFIX:
		lc = c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
		o->pfx[o->pfx_len++] = c;
		if (lc != MAILDIR_RP[o->pfx_len - 1]) {
			o->state = c == '\n' ? MAILDIR_HDR_START :
			    MAILDIR_HDR_KEEP;
			return maildir_put(o, o->pfx, o->pfx_len);
		}
		if (o->pfx_len == MAILDIR_RP_LEN) {
			o->dropping = true;
			o->state = MAILDIR_HDR_DROP;
		}
		return 0;
	case MAILDIR_HDR_KEEP:
		if (c == '\n')
			o->state = MAILDIR_HDR_START;
		return maildir_putc(o, c);
	case MAILDIR_HDR_DROP:
		if (c == '\n')
			o->state = MAILDIR_HDR_START;
		return 0;
	}
	return 0;
}

/* Spool bytes in: CRLF becomes LF, a lone CR stays, even across reads. */
static int
maildir_spool_bytes(struct maildir_out *o, const char *p, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		if (o->state == MAILDIR_HDR_BODY && !o->pending_cr) {
			/* fast path: in the body, copy up to the next CR in
			   one piece */
			const char *cr = memchr(p + i, '\r', n - i);
			size_t	 run = cr == NULL ? n - i : (size_t)(cr - p) - i;

			if (run > 0 && maildir_put(o, p + i, run) == -1)
				return -1;
			i += run;
			if (cr == NULL)
				break;
			if (i + 1 < n && p[i + 1] == '\n') {
				/* CRLF: LF, without a pass per byte */
				if (maildir_putc(o, '\n') == -1)
					return -1;
				i++;
				continue;
			}
			o->pending_cr = true;	/* the CR at p[i] */
			continue;
		}
		if (o->pending_cr) {
			o->pending_cr = false;
			if (p[i] == '\n') {
				if (maildir_header_byte(o, '\n') == -1)
					return -1;
				continue;
			}
			if (maildir_header_byte(o, '\r') == -1)
				return -1;
		}
		if (p[i] == '\r') {
			o->pending_cr = true;
			continue;
		}
		if (maildir_header_byte(o, p[i]) == -1)
			return -1;
	}
	return 0;
}

/* The end of the spool data: release whatever is still held back. */
static int
maildir_spool_end(struct maildir_out *o)
{
	if (o->pending_cr) {
		o->pending_cr = false;
		if (maildir_header_byte(o, '\r') == -1)
			return -1;
	}
	if (o->state == MAILDIR_HDR_PREFIX) {
		o->state = MAILDIR_HDR_KEEP;
		if (maildir_put(o, o->pfx, o->pfx_len) == -1)
			return -1;
	}
	return maildir_flush(o);
}

void
maildir_body_free(struct maildir_body *body)
{
	free(body->buf);
	*body = (struct maildir_body){ 0 };
}

/* body from the memory of src at off, unless it was made of just that. */
static void
maildir_body_make(struct maildir_body *body, const struct bytesrc *src,
    off_t off)
{
	size_t	 n = (uint64_t)off < src->len ? src->len - (size_t)off : 0;
	struct maildir_out o = { .fd = -1, .state = MAILDIR_HDR_START };

	if (body->buf != NULL && body->from == src->buf &&
	    body->from_len == src->len && body->off == off)
		return;
	o.cap = n + 64;		/* LF for CRLF: never longer than n */
	o.buf = xmalloc(o.cap);
	/* without a file nothing here can fail */
	(void)maildir_spool_bytes(&o, src->buf + off, n);
	(void)maildir_spool_end(&o);
	maildir_body_free(body);
	*body = (struct maildir_body){ .from = src->buf, .from_len = src->len,
	    .off = off, .buf = o.buf, .len = o.len };
}

/* head then body into fd: one writev(2) unless it writes short. */
static int
maildir_write2(int fd, const char *head, size_t hlen, const char *body,
    size_t blen)
{
	struct iovec v[2] = {
		{ .iov_base = (void *)head, .iov_len = hlen },
		{ .iov_base = (void *)body, .iov_len = blen },
	};
	int	 i = 0;

	while (i < 2) {
		ssize_t n = writev(fd, v + i, 2 - i);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		for (; i < 2 && (size_t)n >= v[i].iov_len; i++)
			n -= (ssize_t)v[i].iov_len;
		if (i < 2) {
			v[i].iov_base = (char *)v[i].iov_base + n;
			v[i].iov_len -= (size_t)n;
		}
	}
	return 0;
}

static void
maildir_error(char *err, size_t errlen, const char *step, const char *path,
    int errnum)
{
	snprintf(err, errlen, "maildir: %s %s: %s", step, path,
	    strerror(errnum));
}

/* "<dir>/<sub>" into out; -1 with errno ENAMETOOLONG if it does not fit. */
static int
maildir_join(char *out, size_t cap, const char *dir, const char *sub)
{
	int	 n;

	n = snprintf(out, cap, "%s/%s", dir, sub);
	if (n < 0 || (size_t)n >= cap) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/*
 * The unique name "<sec>.M<usec>P<pid>Q<n>.<host>", with '/' and ':' in
 * host written as \057 and \072 (they cannot appear in a Maildir name).
 */
static int
maildir_unique(char *out, size_t cap, const char *hostname)
{
	struct timespec ts;
	char	 host[MAILDIR_HOST_MAX * 4 + 1];
	size_t	 i, hl = 0;
	unsigned long q;
	long	 pid;
	int	 n;

	if (hostname == NULL || hostname[0] == '\0')
		hostname = "localhost";
	if (strlen(hostname) > MAILDIR_HOST_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (i = 0; hostname[i] != '\0'; i++) {
		if (hostname[i] == '/') {
			memcpy(host + hl, "\\057", 4);
			hl += 4;
		} else if (hostname[i] == ':') {
			memcpy(host + hl, "\\072", 4);
			hl += 4;
		} else
			host[hl++] = hostname[i];
	}
	host[hl] = '\0';

	if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
		return -1;
	q = atomic_fetch_add(&maildir_counter, 1);
	if ((pid = atomic_load(&maildir_pid)) == 0) {
		pid = (long)getpid();
		atomic_store(&maildir_pid, pid);
	}
	n = snprintf(out, cap, "%lld.M%ldP%ldQ%lu.%s", (long long)ts.tv_sec,
	    ts.tv_nsec / 1000, pid, q, host);
	if (n < 0 || (size_t)n >= cap) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* A header value must not carry a line end of its own. */
static bool
maildir_header_ok(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

/*
 * Make the Maildir dir with tmp/, new/ and cur/, and make the new entries
 * durable: dir and the directories above it that this may have created
 * (<mail_dir>/<domain>/<user>/Maildir). On failure *step and *where (in
 * buf) say what failed.
 *
 * Where fsyncs race (newfile_fsync_races()), a directory's fsync could
 * return while another fsync of ours (the first delivery to another new
 * Maildir of the domain) still writes the block holding its entry: there
 * a sync of the whole filesystem, which waits for every block in flight,
 * makes them durable (syncfs_flushed() of new/). Its fsync of new/ also
 * walks up the directories just made (ext4_sync_parent()), so that no
 * file's fsync in new/ does it again.
 */
static int
maildir_make_dirs(const char *dir, const char **step, const char **where,
    char *buf, size_t cap)
{
	static const char *const subdirs[] = { "tmp", "cur", "new" };
	char	*slash;
	int	 fd, rc, saved;

	*step = "mkdir";
	*where = dir;
	if (mkdir_p(dir, 0700) == -1)
		return -1;
	for (size_t i = 0; i < ARRAY_LEN(subdirs); i++) {
		if (maildir_join(buf, cap, dir, subdirs[i]) == -1)
			return -1;
		*where = buf;
		if (mkdir_p(buf, 0700) == -1)
			return -1;
	}
	*step = "fsync";		/* buf: new/ */
	if ((fd = open(buf, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	if (newfile_fsync_races(fd)) {
		rc = syncfs_flushed(fd);
		saved = errno;
		close(fd);
		errno = saved;
		return rc;
	}
	close(fd);
	if ((size_t)snprintf(buf, cap, "%s", dir) >= cap) {
		errno = ENAMETOOLONG;
		return -1;
	}
	*where = buf;
	for (int up = 0; up < 4 && buf[0] != '\0'; up++) {
		if (fsync_dir(buf) == -1)
			return -1;
		if ((slash = strrchr(buf, '/')) == NULL || slash == buf)
			break;
		*slash = '\0';
	}
	return 0;
}

/*
 * maildir_make_dirs(), with ds holding dir's new/ (dirsync_hold()) from
 * before the first mkdir until the entries are durable: no delivery of
 * ours publishes into the new Maildir, acknowledging on the strength of
 * entries not yet durable, before this is done.
 */
static int
maildir_make(struct dirsync *ds, const char *dir, const char **step,
    const char **where, char *buf, size_t cap)
{
	struct dirsync_ticket t;
	char	 newdir[PATH_MAX];
	int	 rc, saved;

	if (ds == NULL)
		return maildir_make_dirs(dir, step, where, buf, cap);
	*step = "mkdir";
	*where = dir;
	if (maildir_join(newdir, sizeof(newdir), dir, "new") == -1)
		return -1;
	dirsync_hold(ds, newdir, &t);
	rc = maildir_make_dirs(dir, step, where, buf, cap);
	saved = errno;
	dirsync_end(&t);
	errno = saved;
	return rc;
}

/* Does the batch's filesystem sync cover the open file nf? */
static bool
maildir_batched(const struct newfile *nf, const struct maildir_batch *b)
{
	struct stat	 st;

	return b != NULL && fstat(nf->fd, &st) == 0 &&
	    fsgroup_usable(b->fg, st.st_dev);
}

/* Hand the written file nf, to be named new, to the batch (which owns it
   from now on), its write-out started unless the batch's contents sync
   is to write it: maildir_batch_commit() names it. */
static void
maildir_batch_defer(struct maildir_batch *b, struct newfile *nf,
    const char *new)
{
	if (!b->contents_sync)
		newfile_write_start(nf);
	maildir_batch_add(b, new);
	b->files[b->n - 1] = *nf;
	*nf = NEWFILE_INIT;
}

int
maildir_deliver(struct dirsync *ds, struct maildir_batch *b,
    struct maildir_body *body, const char *dir,
    const struct bytesrc *src, off_t body_off,
    const char *return_path, const char *delivered_to,
    const char *hostname, char *err, size_t errlen)
{
	struct maildir_out o = { .fd = -1 };
	struct newfile nf = NEWFILE_INIT;
	char	 path[PATH_MAX], tmpdir[PATH_MAX], new[PATH_MAX];
	char	 newdir[PATH_MAX], name[NAME_MAX + 1];
	char	*rbuf = NULL, *head = NULL;
	const char *step = "mkdir", *where = dir;
	ssize_t	 n;
	off_t	 off = body_off;
	bool	 published = false;
	int	 rc = -1;

	if (!maildir_header_ok(return_path) ||
	    !maildir_header_ok(delivered_to)) {
		snprintf(err, errlen, "maildir: header %s: line end in "
		    "envelope address", dir);
		return -1;
	}

	step = "name";
	where = dir;
	if (maildir_unique(name, sizeof(name), hostname) == -1 ||
	    maildir_join(newdir, sizeof(newdir), dir, "new") == -1 ||
	    maildir_join(tmpdir, sizeof(tmpdir), dir, "tmp") == -1 ||
	    maildir_join(new, sizeof(new), newdir, name) == -1)
		goto fail;

	step = "open";
	where = tmpdir;
	if (newfile_open(&nf, tmpdir, name, 0600) == -1 &&
	    (errno == ENOENT || errno == ENOTDIR)) {
		/* the first delivery to this box: make it, then try again
		   (or fail on what is in the way, with its name) */
		if (maildir_make(ds, dir, &step, &where, path, sizeof(path)) ==
		    -1)
			goto fail;
		step = "open";
		where = tmpdir;
		newfile_open(&nf, tmpdir, name, 0600);
	}
	if (nf.fd == -1)
		goto fail;
	step = "write";
	head = xasprintf("Return-Path: <%s>\nDelivered-To: %s\n", return_path,
	    delivered_to);
	if (body != NULL && src->buf != NULL) {
		/* the content as made once for every mailbox */
		maildir_body_make(body, src, off);
		if (maildir_write2(nf.fd, head, strlen(head), body->buf,
		    body->len) == -1)
			goto fail;
		goto publish;
	}
	o.fd = nf.fd;		/* borrowed: nf closes it */
	o.cap = MAILDIR_BUF_CAP;
	o.buf = xmalloc(o.cap);
	if (src->buf == NULL)	/* a message in memory is read in place */
		rbuf = xmalloc(MAILDIR_BUF_CAP);
	o.state = MAILDIR_HDR_START;

	if (maildir_puts(&o, head) == -1)
		goto fail;

	for (;;) {
		const char *p;

		n = bytesrc_view(src, rbuf, MAILDIR_BUF_CAP, off, &p);
		if (n == -1) {
			step = "read";
			where = "spool";
			goto fail;
		}
		if (n == 0)
			break;
		off += n;
		if (maildir_spool_bytes(&o, p, (size_t)n) == -1)
			goto fail;
	}
	if (maildir_spool_end(&o) == -1)
		goto fail;

publish:
	/* fsync, then the name in new/ (never a partial file there) */
	step = "deliver";
	where = new;
	if (maildir_batched(&nf, b)) {
		maildir_batch_defer(b, &nf, new);	/* durable with it */
		rc = 0;
		goto out;
	}
	/* the sync of new/ is shared with concurrent deliveries to this box */
	for (int again = 0;
	    newfile_publish_sync(&nf, new, false, ds, newdir, &published) ==
	    -1; again++) {
		if (published) {
			step = "fsync";
			where = newdir;
			goto fail;
		}
		/* new/ was removed under us: make it again, once */
		if (again > 0 || errno != ENOENT || maildir_make(ds, dir, &step,
		    &where, path, sizeof(path)) == -1)
			goto fail;
		step = "deliver";
		where = new;
	}
	rc = 0;
	goto out;

fail:
	maildir_error(err, errlen, step, where, errno);
out:
	newfile_discard(&nf);	/* never leave a half-written file behind */
	if (rc == -1 && published)
		unlink(new);	/* not durable: the queue will retry */
	free(o.buf);
	free(rbuf);
	free(head);
	return rc;
}

void
maildir_batch_add(struct maildir_batch *b, const char *path)
{
	b->paths = xreallocarray(b->paths, b->n + 1, sizeof(*b->paths));
	b->files = xreallocarray(b->files, b->n + 1, sizeof(*b->files));
	b->files[b->n] = NEWFILE_INIT;
	b->paths[b->n++] = xstrdup(path);
}

/* Is the batch's file i still without its name (open, or the fallback's
   tmp/ file)? Entries added by path were named before. */
static bool
batch_unnamed(const struct maildir_batch *b, size_t i)
{
	return b->files[i].fd != -1 || b->files[i].tmp != NULL;
}

/* Name the deferred file i: its Maildir made again if it went away. */
static int
batch_name(struct maildir_batch *b, size_t i)
{
	char	 dir[PATH_MAX], buf[PATH_MAX];
	const char *step, *where;
	char	*slash;

	if (newfile_link(&b->files[i], b->paths[i]) == 0)
		return 0;
	if (errno != ENOENT)
		return -1;
	/* <dir>/new/<name>: new/ was removed under us */
	snprintf(dir, sizeof(dir), "%s", b->paths[i]);
	for (int up = 0; up < 2; up++)
		if ((slash = strrchr(dir, '/')) != NULL)
			*slash = '\0';
	if (maildir_make(b->ds, dir, &step, &where, buf, sizeof(buf)) == -1)
		return -1;
	return newfile_link(&b->files[i], b->paths[i]);
}

/* Empty b; with remove, its files go too (named ones by name). */
static void
batch_clear(struct maildir_batch *b, bool remove)
{
	for (size_t i = 0; i < b->n; i++) {
		if (remove)
			unlink(b->paths[i]);
		newfile_discard(&b->files[i]);	/* named ones are closed */
		free(b->paths[i]);
	}
	free(b->paths);
	free(b->files);
	b->paths = NULL;
	b->files = NULL;
	b->n = 0;
}

void
maildir_batch_discard(struct maildir_batch *b)
{
	batch_clear(b, true);
}

/*
 * With contents_sync, one fsgroup sync writes the contents of every
 * unnamed file of the batch (and waits for them) before the first is
 * named: the filesystem's writeback sends them to the disk together,
 * where a write-out per file sends each on its own (on this VM, a
 * notification of the virtual disk apiece, about 8 us of CPU, plus a
 * wait). It costs one more sync of the filesystem, shared with the other
 * batches under way, so it pays only for many files (scheduler.c picks
 * 8). Measured with 20 sessions, medians of 4 to 6 interleaved runs: 10
 * mailboxes per message (w4) took 17% less of petrel's CPU and 10-11%
 * less of the machine's per message, at the same rate; 3 or 5 mailboxes
 * saved 3-8% of the CPU but lost about 4% of the rate; one mailbox per
 * message lost 13% of the rate.
 */
static int
batch_write_contents(struct maildir_batch *b)
{
	bool	 any = false;

	for (size_t i = 0; i < b->n; i++)
		if (batch_unnamed(b, i) && !b->files[i].synced)
			any = true;
	if (!any)
		return 0;
	if (fsgroup_sync(b->fg) == -1)
		return -1;
	for (size_t i = 0; i < b->n; i++)
		b->files[i].synced = true;	/* newfile_link() skips the
						   write-out */
	return 0;
}

int
maildir_batch_commit(struct maildir_batch *b)
{
	int	 rc = 0, saved = 0;

	if (b->contents_sync && batch_write_contents(b) == -1) {
		saved = errno;
		rc = -1;
	}
	for (size_t i = 0; i < b->n && rc == 0; i++)
		if (batch_unnamed(b, i) && batch_name(b, i) == -1) {
			saved = errno;
			rc = -1;
		}
	if (rc == 0 && b->n > 0 && fsgroup_sync(b->fg) == -1) {
		saved = errno;
		rc = -1;
	}
	batch_clear(b, rc == -1);	/* not durable: retried */
	if (rc == -1)
		errno = saved;
	return rc;
}
