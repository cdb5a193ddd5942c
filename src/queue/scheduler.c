/*
 * scheduler.c: when and where to deliver. New and recovered messages run
 * at once, up to max_deliveries passes at a time; a message with deferred
 * recipients waits for its backoff on a timer. Nothing scans the spool
 * after startup: every message the scheduler knows is in memory.
 *
 * A pass over a message: (1) on a worker, read the envelope and journal,
 * deliver local recipients to their Maildirs and route the others; (2) on
 * the loop, hand each destination (MX domain, smarthost, LMTP store) to
 * remote.c, at most destination_concurrency at a time per destination;
 * (3) on a worker, decide each recipient's state, queue bounces and delay
 * notices (RFC 3461) as new messages, journal, and remove the message when
 * every recipient is final. Delivery agents report; only this decides.
 */
#include "queue/scheduler.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dirsync.h"
#include "core/fsgroup.h"
#include "core/log.h"
#include "core/newfile.h"
#include "core/util.h"
#include "deliver/dsn.h"
#include "deliver/maildir.h"
#include "deliver/remote.h"
#include "queue/envelope.h"
#include "smtp/parse.h"

#define SCHED_ENVELOPE_MAX	(16u * 1024 * 1024)	/* bytes */
#define SCHED_RCPT_MAX		100000
#define SCHED_DEST_BUCKETS	256
#define SCHED_TEXT_MAX		512
#define SCHED_DIRECT_MAX	50	/* recipients delivered before the 250 */
#define SCHED_GROUP_COMMITS	5	/* commits under way: one sync (pass_batch) */
#define SCHED_CONTENTS_SYNC	8	/* files a pass writes: their contents
					   by one sync too (maildir.c) */
#define SCHED_SLOW_SYNC_USEC	1000000	/* a slower syncfs: fsyncs for a
					   while */

struct qmsg {
	char		 id[QID_LEN + 1];
	int		 attempts;	/* failed delivery passes so far */
	struct event	*timer;		/* owned: retry timer */
	struct qmsg	*next;		/* ready list */
	struct qmsg	*all_prev, *all_next; /* every known message */
	struct sched	*s;		/* borrowed */
};

struct group;

/* A destination and the passes waiting for a free slot to it. */
struct dest {
	char		 key[320];	/* "mx:example.org", "lmtp:..." */
	int		 active;
	struct group	*wait_head, *wait_tail;
	struct dest	*next;
};

struct sched {
	struct event_base	*base;	/* borrowed */
	const struct config	*cfg;	/* borrowed */
	struct spool		*sp;	/* borrowed */
	struct workq		*wq;	/* borrowed: commits */
	struct workq		*dwq;	/* owned: delivery passes, one
					   thread per max_deliveries */
	const struct local_db	*ldb;	/* borrowed */
	struct remote		*remote;	/* borrowed or NULL */
	struct dirsync		*ds;	/* owned: Maildir new/ syncs */
	struct fsgroup		*fg;	/* owned or NULL: syncs of mail_dir's
					   filesystem for batches */
	struct qmsg		*ready_head, *ready_tail;
	struct qmsg		*all;	/* owned: every message it knows */
	struct dest		*dests[SCHED_DEST_BUCKETS];	/* owned */
	unsigned		 running;
	size_t			 count;
	_Atomic unsigned	 committing;	/* sched_commit() not done yet */
	bool			 lone_fsync;	/* mail_dir: a file's fsync
						   makes its new name durable
						   too */
	bool			 spool_races;	/* spool_dir: commits
						   take turns on queue/
						   (newfile_fsync_races()) */
	bool			 stopping;
};

/* What one pass decided for one recipient of the envelope. */
struct rcpt_out {
	bool		 todo;		/* not final before this pass */
	bool		 any_ok, any_temp, any_perm;
	bool		 remote_ok;	/* accepted by another server */
	bool		 handed_over;	/* ... which sends the notices */
	char		 dsn[16];	/* status of the deciding result */
	char		 text[SCHED_TEXT_MAX];
	char		 relay[400];
};

/* A recipient (or alias target) handed to a destination. */
struct task {
	size_t		 rcpt;		/* index into the envelope */
	char		*addr;		/* owned */
	enum remote_kind kind;
	char		 dest[300];
};

/* One destination's share of a pass. */
struct group {
	struct pass		*p;		/* borrowed */
	struct dest		*d;		/* borrowed */
	struct remote_job	 job;
	struct smtp_client_msg	 msg;
	struct smtp_client_rcpt	*rc;		/* owned, n */
	size_t			*task;		/* owned: task index per rc */
	size_t			 n;
	struct group		*wait_next;
};

enum pass_outcome { PASS_DONE, PASS_DEFERRED, PASS_ERROR };

/* A Maildir delivery of this pass waiting for its batch to be durable. */
struct pending {
	size_t		 rcpt;
	char		*mailbox;	/* owned; NULL: a recipient for a
					   mailbox already written to */
};

/* A delivery pass over one message. Workers and the loop take turns on
   it; never both at once. */
struct pass {
	struct qmsg		*q;		/* borrowed: loop side only */
	struct sched		*s;		/* borrowed */
	const struct config	*cfg;		/* borrowed, immutable */
	const struct local_db	*ldb;		/* borrowed, immutable */
	struct spool		*sp;		/* borrowed */
	char			 id[QID_LEN + 1];
	struct envelope		 env;
	int			 fd;		/* spool file, -1 if not open */
	struct bytesrc		 src;		/* what fd holds, or its bytes
						   in memory at commit */
	size_t			 body_off;
	uint64_t		 size;
	bool			*final;		/* owned, env.nrcpt */
	bool			*delayed;	/* owned: delay notice sent */
	struct rcpt_out		*out;		/* owned, env.nrcpt */
	struct maildir_batch	 batch;		/* fg NULL: no batch */
	struct maildir_body	 body;		/* the content for Maildirs,
						   made once from memory */
	bool			 several;	/* for several mailboxes */
	struct pending		*pend;		/* owned */
	size_t			 npend;
	struct task		*tasks;		/* owned */
	size_t			 ntasks;
	struct group		*groups;	/* owned */
	size_t			 ngroups, groups_left;
	char			**dsn_ids;	/* owned: queued notices */
	size_t			 ndsn;
	enum pass_outcome	 outcome;
};

int
sched_backoff(int n, int initial, int max)
{
	long	 d = initial;

	for (int i = 1; i < n && d < max; i++)
		d *= 2;
	return d > max ? max : (int)d;
}

/* ---- worker side: reading --------------------------------------- */

static void	pass_free(struct pass *p);

static struct pass *
pass_new(struct sched *s, const char *id)
{
	struct pass	*p = xcalloc(1, sizeof(*p));

	p->s = s;
	p->cfg = s->cfg;
	p->ldb = s->ldb;
	p->sp = s->sp;
	p->fd = -1;
	envelope_init(&p->env);
	snprintf(p->id, sizeof(p->id), "%s", id);
	return p;
}

/* Read the message's envelope. 0, or -1 with a reason in err. */
static int
load_envelope(const struct bytesrc *src, struct envelope *e, size_t *body_off,
    char *err, size_t errlen)
{
	size_t	 cap = 64 * 1024, len = 0;
	char	*buf;
	int	 rc = -1;

	if (src->buf != NULL) {
		/* a message still in memory: parse it where it is */
		if (envelope_parse(src->buf, src->len, SCHED_RCPT_MAX, e,
		    body_off) == 0)
			return 0;
		snprintf(err, errlen, "malformed envelope");
		return -1;
	}
	buf = xmalloc(cap);
	for (;;) {
		ssize_t n = bytesrc_pread(src, buf + len, cap - len, (off_t)len);

		if (n == -1) {
			snprintf(err, errlen, "read: %s", strerror(errno));
			goto out;
		}
		len += (size_t)n;
		int r = envelope_parse(buf, len, SCHED_RCPT_MAX, e, body_off);
		if (r == 0) {
			rc = 0;
			goto out;
		}
		if (r != ENVELOPE_PARSE_MORE || n == 0) {
			snprintf(err, errlen, "malformed envelope");
			goto out;
		}
		if (len == cap) {
			if (cap >= SCHED_ENVELOPE_MAX) {
				snprintf(err, errlen, "envelope too large");
				goto out;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
	}
out:
	free(buf);
	return rc;
}

/* Final and delay-notified recipients from the journal, if any. */
static void
load_journal(const struct spool *sp, const char *id, size_t nrcpt,
    bool *final, bool *delayed)
{
	char	 path[4096], *buf = NULL;
	size_t	 len = 0, cap = 0;
	int	 fd;
	ssize_t	 n;

	for (size_t i = 0; i < nrcpt; i++)
		final[i] = delayed[i] = false;
	spool_journal_path(sp, id, path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = xrealloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len);
		if (n > 0)
			len += (size_t)n;
	} while (n > 0 || (n == -1 && errno == EINTR));
	close(fd);
	journal_replay(buf, len, nrcpt, final);
	journal_replay_delayed(buf, len, nrcpt, delayed);
	free(buf);
}

/* conn_use: the message's place on a reused connection (logged when more
   than 1, as Postfix does), 0 for none. */
static void
log_result(const char *id, const char *to, const char *orig,
    const char *relay, unsigned conn_use, uint64_t arrival, const char *dsn,
    const char *status, const char *why)
{
	char	 esc_to[600], esc_orig[600], esc_why[1200], use[32] = "";
	double	 delay = (double)(now_usec() - arrival) / 1e6;

	str_escape(to, strlen(to), esc_to, sizeof(esc_to));
	str_escape(why, strlen(why), esc_why, sizeof(esc_why));
	if (conn_use > 1)
		snprintf(use, sizeof(use), " conn_use=%u", conn_use);
	if (orig != NULL && strcmp(orig, to) != 0) {
		str_escape(orig, strlen(orig), esc_orig, sizeof(esc_orig));
		log_info("%s deliver to=<%s> orig_to=<%s> relay=%s%s "
		    "delay=%.2f dsn=%s status=%s (%s)", id, esc_to, esc_orig,
		    relay, use, delay, dsn, status, esc_why);
	} else
		log_info("%s deliver to=<%s> relay=%s%s delay=%.2f dsn=%s "
		    "status=%s (%s)", id, esc_to, relay, use, delay, dsn,
		    status, esc_why);
}

/* Record one result for recipient i in this pass. */
static void
out_note(struct rcpt_out *o, enum smtp_client_result res, const char *dsn,
    const char *text, const char *relay)
{
	bool	 take;

	switch (res) {
	case SMTP_CLIENT_OK:
		take = !o->any_temp && !o->any_perm && !o->any_ok;
		o->any_ok = true;
		break;
	case SMTP_CLIENT_PERM:
		take = !o->any_temp && !o->any_perm;
		o->any_perm = true;
		break;
	case SMTP_CLIENT_TEMP:
	default:
		take = !o->any_temp;	/* a deferral says why it waits */
		o->any_temp = true;
		break;
	}
	if (!take)
		return;
	snprintf(o->dsn, sizeof(o->dsn), "%s", dsn);
	snprintf(o->text, sizeof(o->text), "%s", text);
	snprintf(o->relay, sizeof(o->relay), "%s", relay);
}

static void
add_task(struct pass *p, size_t rcpt, const char *addr, enum remote_kind kind,
    const char *dest)
{
	struct task	*t;

	p->tasks = xreallocarray(p->tasks, p->ntasks + 1, sizeof(*p->tasks));
	t = &p->tasks[p->ntasks++];
	t->rcpt = rcpt;
	t->addr = xstrdup(addr);
	t->kind = kind;
	snprintf(t->dest, sizeof(t->dest), "%s", dest);
}

/* A non-local address goes to the smarthost or its domain's MX. */
static void
route_remote(struct pass *p, size_t rcpt, const char *addr)
{
	const char *at = strrchr(addr, '@');
	char	 domain[300];

	if (p->cfg->smarthost != NULL) {
		add_task(p, rcpt, addr, REMOTE_SMARTHOST, p->cfg->smarthost);
		return;
	}
	snprintf(domain, sizeof(domain), "%s", at != NULL ? at + 1 : "");
	str_lower(domain);
	if (domain[0] == '[') {
		/* an address literal: the host itself, no MX (RFC 5321 5.1) */
		add_task(p, rcpt, addr, REMOTE_SMARTHOST, domain);
		return;
	}
	add_task(p, rcpt, addr, REMOTE_MX, domain);
}

static void
pend_add(struct pass *p, size_t rcpt, const char *mailbox)
{
	p->pend = xreallocarray(p->pend, p->npend + 1, sizeof(*p->pend));
	p->pend[p->npend++] = (struct pending){ .rcpt = rcpt,
	    .mailbox = mailbox != NULL ? xstrdup(mailbox) : NULL };
}

/*
 * A pass links its Maildir files first and makes them durable together
 * (pass_settle), where the filesystem allows, when that saves syncs: it
 * has several recipients, or at least SCHED_GROUP_COMMITS commits are
 * under way, whose one-mailbox deliveries then share a sync of the
 * filesystem. Fewer keep an fsync of the file and of new/ each, run side
 * by side: a filesystem sync takes two cache flushes one after the
 * other and writes other dirty blocks too, which only a big enough group
 * pays back (measured: at 4 sessions it cost block writes and rate, at
 * 20 it saved half the flushes and a tenth of the CPU). Where the file's
 * fsync alone makes its name durable (lone_fsync: a journal, newfile.c),
 * a one-mailbox delivery always takes that one fsync: the journal merges
 * concurrent ones into one commit, which is what the shared sync is for.
 * (Not measured with a journal: this VM's disk has none. Without one,
 * one fsync each was quicker than the shared sync at every load tried,
 * but is not safe there.) A pass that will write at least
 * SCHED_CONTENTS_SYNC files (files: the mailboxes it goes to, or the
 * recipients it has left) has their contents written by a sync of its
 * own as well.
 */
static void
pass_batch(struct pass *p, size_t files)
{
	if (p->s->fg != NULL && (p->env.nrcpt > 1 || p->several ||
	    (!p->s->lone_fsync &&
	    atomic_load(&p->s->committing) >= SCHED_GROUP_COMMITS))) {
		p->batch.fg = p->s->fg;
		p->batch.ds = p->s->ds;
		p->batch.contents_sync = files >= SCHED_CONTENTS_SYNC;
	}
}

/* One sync for the Maildir files the pass linked, then their results:
   delivered, or (the sync failed, the files are gone) deferred. */
static int
pass_settle(struct pass *p)
{
	const struct envelope *e = &p->env;
	char	 err[512];
	int	 rc, saved;

	if (p->npend == 0 && p->batch.n == 0)
		return 0;
	rc = maildir_batch_commit(&p->batch);
	saved = errno;
	if (rc == -1)
		snprintf(err, sizeof(err), "maildir: sync: %s",
		    strerror(errno));
	for (size_t k = 0; k < p->npend; k++) {
		struct pending	*pd = &p->pend[k];
		struct rcpt_out	*o = &p->out[pd->rcpt];
		const char	*to = e->rcpt[pd->rcpt].addr;

		if (rc == -1) {
			if (pd->mailbox != NULL)
				log_result(p->id, pd->mailbox, to, "maildir",
				    0, e->arrival_usec, "4.2.0", "deferred",
				    err);
			out_note(o, SMTP_CLIENT_TEMP, "4.2.0", err, "maildir");
		} else if (pd->mailbox != NULL) {
			log_result(p->id, pd->mailbox, to, "maildir", 0,
			    e->arrival_usec, "2.0.0", "sent",
			    "delivered to maildir");
			out_note(o, SMTP_CLIENT_OK, "2.0.0",
			    "delivered to maildir", "maildir");
		} else
			out_note(o, SMTP_CLIENT_OK, "2.0.0", "delivered to "
			    "maildir (same mailbox)", "maildir");
		free(pd->mailbox);
	}
	free(p->pend);
	p->pend = NULL;
	p->npend = 0;
	errno = saved;
	return rc;
}

/* Local part of a pass for recipient i: Maildirs now, LMTP and remote
   targets as tasks. */
static void
route_rcpt(struct pass *p, size_t i, struct strlist *done)
{
	const struct envelope *e = &p->env;
	struct rcpt_out	*o = &p->out[i];
	struct strlist	 mb = { 0 }, rem = { 0 };
	const char	*to = e->rcpt[i].addr;
	char		 path[4096], err[512], lmtp[300];

	switch (local_resolve(p->ldb, to, &mb, &rem)) {
	case LOCAL_OK:
		break;
	case LOCAL_UNKNOWN:
		out_note(o, SMTP_CLIENT_PERM, "5.1.1", "user unknown", "local");
		goto out;
	case LOCAL_LOOP:
		out_note(o, SMTP_CLIENT_PERM, "5.4.6", "alias expansion loop",
		    "local");
		goto out;
	case LOCAL_NOT_LOCAL:
	default:
		strlist_add(&rem, to);
		break;
	}
	for (size_t k = 0; k < mb.len; k++) {
		if (remote_lmtp_route(p->cfg, mb.v[k], lmtp, sizeof(lmtp))
		    != NULL) {
			add_task(p, i, mb.v[k], REMOTE_LMTP, lmtp);
			continue;
		}
		if (strlist_has(done, mb.v[k])) {
			if (p->batch.fg != NULL)
				pend_add(p, i, NULL);
			else
				out_note(o, SMTP_CLIENT_OK, "2.0.0",
				    "delivered to maildir (same mailbox)",
				    "maildir");
			continue;
		}
		if (local_maildir_path(p->cfg->mail_dir, mb.v[k], path,
		    sizeof(path)) == -1) {
			log_result(p->id, mb.v[k], to, "maildir", 0,
			    e->arrival_usec, "5.1.3", "bounced",
			    "mailbox name not usable as a path");
			out_note(o, SMTP_CLIENT_PERM, "5.1.3", "mailbox name "
			    "not usable as a path", "maildir");
			continue;
		}
		size_t	 linked = p->batch.n;

		if (maildir_deliver(p->s->ds, p->batch.fg != NULL ? &p->batch :
		    NULL, &p->body, path, &p->src, (off_t)p->body_off, e->from,
		    mb.v[k], p->cfg->hostname, err, sizeof(err)) == -1) {
			log_result(p->id, mb.v[k], to, "maildir", 0,
			    e->arrival_usec, "4.2.0", "deferred", err);
			out_note(o, SMTP_CLIENT_TEMP, "4.2.0", err, "maildir");
			continue;
		}
		strlist_add(done, mb.v[k]);
		if (p->batch.n > linked) {
			pend_add(p, i, mb.v[k]);	/* noted once durable */
			continue;
		}
		log_result(p->id, mb.v[k], to, "maildir", 0,
		    e->arrival_usec, "2.0.0", "sent", "delivered to maildir");
		out_note(o, SMTP_CLIENT_OK, "2.0.0", "delivered to maildir",
		    "maildir");
	}
	for (size_t k = 0; k < rem.len; k++)
		route_remote(p, i, rem.v[k]);
out:
	strlist_free(&mb);
	strlist_free(&rem);
}

/* Read the envelope (and the journal) of the message in p->src. */
static int
pass_load(struct pass *p, bool journal)
{
	char		 err[256];
	struct stat	 st;

	if (load_envelope(&p->src, &p->env, &p->body_off, err, sizeof(err))
	    == -1) {
		log_err("%s queue cannot read message: %s", p->id, err);
		return -1;
	}
	if (p->src.buf != NULL)
		st.st_size = (off_t)p->src.len;
	else if (fstat(p->fd, &st) == -1)
		st.st_size = 0;
	if ((uint64_t)st.st_size > p->body_off)
		p->size = (uint64_t)st.st_size - p->body_off;
	p->final = xcalloc(p->env.nrcpt, sizeof(*p->final));
	p->delayed = xcalloc(p->env.nrcpt, sizeof(*p->delayed));
	p->out = xcalloc(p->env.nrcpt, sizeof(*p->out));
	if (journal)
		load_journal(p->sp, p->id, p->env.nrcpt, p->final,
		    p->delayed);
	return 0;
}

static void
prepare_work(void *arg)
{
	struct pass	*p = arg;
	struct strlist	 done = { 0 };
	char		 path[4096];
	size_t		 todo = 0;

	p->outcome = PASS_ERROR;
	spool_path(p->sp, p->id, path, sizeof(path));
	if ((p->fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT) {
			p->outcome = PASS_DONE;		/* already gone */
			return;
		}
		log_err("%s queue open failed: %s", p->id, strerror(errno));
		return;
	}
	p->src.fd = p->fd;
	if (pass_load(p, true) == -1)
		return;		/* kept for the administrator; retried */
	for (size_t i = 0; i < p->env.nrcpt; i++)
		if (!p->final[i])
			todo++;
	pass_batch(p, todo);
	for (size_t i = 0; i < p->env.nrcpt; i++) {
		if (p->final[i])
			continue;
		p->out[i].todo = true;
		route_rcpt(p, i, &done);
	}
	strlist_free(&done);
	pass_settle(p);
	p->outcome = PASS_DEFERRED;	/* decided in finish_work */
}

/* ---- worker side: delivery at commit ------------------------------ */

struct commit {
	struct sched	*s;		/* borrowed */
	struct spool_msg *m;		/* borrowed from the caller */
	void		(*cb)(int, void *);
	void		*arg;
	bool		 direct;	/* try the Maildirs before the queue */
	bool		 queued;	/* in queue/: the scheduler takes it */
	bool		 delivered;	/* in every Maildir: nothing queued */
	int		 err;
};

/*
 * Is this a message only for Maildirs here (at most SCHED_DIRECT_MAX
 * recipients), with no notice to send on success? Only lookups: nothing
 * is delivered. *mailboxes: how many it goes to (aliases expanded).
 */
static bool
direct_ok(const struct pass *p, size_t *mailboxes)
{
	bool	 ok = p->env.nrcpt >= 1 && p->env.nrcpt <= SCHED_DIRECT_MAX;

	*mailboxes = 0;
	for (size_t i = 0; ok && i < p->env.nrcpt; i++) {
		const struct env_rcpt *r = &p->env.rcpt[i];
		struct strlist	 mb = { 0 }, rem = { 0 };
		char		 lmtp[300];

		if (r->notify & SMTP_NOTIFY_SUCCESS)
			return false;	/* the queue sends the notice */
		ok = local_resolve(p->ldb, r->addr, &mb, &rem) == LOCAL_OK &&
		    mb.len >= 1 && rem.len == 0;
		for (size_t k = 0; ok && k < mb.len; k++)
			ok = remote_lmtp_route(p->cfg, mb.v[k], lmtp,
			    sizeof(lmtp)) == NULL;
		*mailboxes += mb.len;
		strlist_free(&mb);
		strlist_free(&rem);
	}
	return ok;
}

/* Was recipient i delivered, and only delivered, by this pass? */
static bool
rcpt_sent(const struct pass *p, size_t i)
{
	const struct rcpt_out *o = &p->out[i];

	return o->any_ok && !o->any_temp && !o->any_perm;
}

/* Append the journal line for recipient i to *jbuf (*jlen bytes). */
static void
journal_add(char **jbuf, size_t *jlen, size_t i, enum journal_status st,
    const char *dsn, const char *text)
{
	char	 line[2048];
	int	 n = journal_format(line, sizeof(line), i, st, dsn, text);

	if (n <= 0)
		return;
	*jbuf = xrealloc(*jbuf, *jlen + (size_t)n);
	memcpy(*jbuf + *jlen, line, (size_t)n);
	*jlen += (size_t)n;
}

/* Journal lines for the recipients this pass delivered, into *jbuf. */
static void
journal_sent(const struct pass *p, char **jbuf, size_t *jlen)
{
	for (size_t i = 0; i < p->env.nrcpt; i++)
		if (rcpt_sent(p, i))
			journal_add(jbuf, jlen, i, JOURNAL_SENT, p->out[i].dsn,
			    p->out[i].text);
}

/*
 * Delivery at commit of the uncommitted message c->m, when direct_ok()
 * takes it. One mailbox: delivered from memory, and queued only if that
 * fails. Several: queue/<id> is named first and the Maildir files after
 * it, all made durable by the batch's one sync; a crash part-way leaves
 * queue/<id> for the next start to finish (a mailbox may get it twice
 * across a crash, never some mailboxes only). When all are delivered,
 * queue/<id> goes again. Sets c->delivered or c->queued (c->err on a
 * failure); false when the message is not for delivery at commit or its
 * one delivery failed: the caller commits it to the queue.
 */
static bool
direct_deliver(struct commit *c, struct pass *p)
{
	struct strlist	 done = { 0 };
	char		*jbuf = NULL;
	size_t		 mailboxes, jlen = 0;
	bool		 all = true, pending = false;

	spool_msg_src(c->m, &p->src);	/* borrowed from m */
	if (pass_load(p, false) == -1 || !direct_ok(p, &mailboxes))
		return false;
	if (mailboxes > 1) {
		if ((c->err = spool_msg_link(c->m, p->s->fg, &pending)) != 0) {
			c->queued = c->m->committed;
			return true;
		}
		spool_msg_src(c->m, &p->src);	/* still memory, or the file */
		p->several = true;
	}
	pass_batch(p, mailboxes);
	if (pending)	/* durable with the batch, or removed with it */
		maildir_batch_add(&p->batch, c->m->queue_path);
	for (size_t i = 0; i < p->env.nrcpt; i++) {
		p->out[i].todo = true;
		route_rcpt(p, i, &done);
	}
	strlist_free(&done);
	if (pass_settle(p) == -1 && pending) {
		/* the sync failed: queue/<id> is gone with the batch */
		c->err = errno != 0 ? errno : EIO;
		return true;
	}
	for (size_t i = 0; i < p->env.nrcpt; i++)
		if (!rcpt_sent(p, i))
			all = false;
	if (all) {
		if (c->m->committed && spool_remove(p->sp, p->id) == -1)
			log_err("%s queue remove failed: %s", p->id,
			    strerror(errno));
		spool_msg_drop(c->m);	/* nothing left to make durable */
		c->delivered = true;
		return true;
	}
	if (!c->m->committed)
		return false;	/* one mailbox, failed: the caller queues */
	/* before the pass that sched_add() starts reads the journal; a crash
	   in between delivers to these mailboxes again (at least once) */
	journal_sent(p, &jbuf, &jlen);
	if (jlen > 0 && spool_journal_append(p->sp, p->id, jbuf, jlen) == -1)
		log_err("%s queue journal write failed: %s", p->id,
		    strerror(errno));
	free(jbuf);
	c->queued = true;
	return true;
}

/*
 * Commit c->m to queue/. Where commits take turns on queue/ (spool_races),
 * at least SCHED_GROUP_COMMITS of them under way share a sync of the
 * filesystem instead, as one-mailbox deliveries do (pass_batch()): their
 * turns would follow one another. 0, or an errno (m->committed tells).
 */
static int
queue_commit(struct commit *c)
{
	struct sched	*s = c->s;
	bool		 pending = false;
	int		 err;

	if (!s->spool_races || s->fg == NULL ||
	    atomic_load(&s->committing) < SCHED_GROUP_COMMITS)
		return spool_msg_commit_sync(c->m);
	if ((err = spool_msg_link(c->m, s->fg, &pending)) != 0 || !pending)
		return err;
	if (fsgroup_sync(s->fg) == 0)
		return 0;
	err = errno != 0 ? errno : EIO;
	/* not durable: never acknowledged, so not left for the queue */
	if (spool_remove(s->sp, c->m->id) == -1)
		log_err("%s queue remove failed: %s", c->m->id,
		    strerror(errno));
	c->m->committed = false;
	return err;
}

static void
commit_work(void *arg)
{
	struct commit	*c = arg;

	if (c->direct) {
		struct pass	*p = pass_new(c->s, c->m->id);
		bool		 taken;

		log_hold();	/* a line per mailbox: one write */
		taken = direct_deliver(c, p);
		log_release();
		pass_free(p);
		if (taken)
			return;
		/* not for Maildirs only, or its delivery failed: the queue
		   retries (a failure was logged as deferred) */
	}
	c->err = queue_commit(c);
	c->queued = c->m->committed;
}

/* ---- worker side: deciding -------------------------------------- */

static void
random_boundary(char *out, size_t cap)
{
	uint32_t a = arc4random(), b = arc4random();

	snprintf(out, cap, "petrel=_%08" PRIx32 "%08" PRIx32, a, b);
}

/* Read the original message (after the envelope) for a report. */
static char *
read_message(struct pass *p, size_t max, size_t *len)
{
	size_t	 want = p->size < max ? (size_t)p->size : max;
	char	*buf = xmalloc(want + 1);
	size_t	 got = 0;

	while (got < want) {
		ssize_t n = pread(p->fd, buf + got, want - got,
		    (off_t)(p->body_off + got));

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	*len = got;
	return buf;
}

/*
 * Queue one report to `to` (null sender). Runs on a worker; the new
 * message is durable when this returns 0.
 */
static int
queue_report(struct pass *p, const char *to, const struct dsn_rcpt *rc,
    size_t n)
{
	const struct envelope *e = &p->env;
	struct dsn_report r;
	struct dsn_out	 out = { 0 };
	struct envelope	 de;
	struct spool_msg *m = NULL;
	char		 boundary[64], *text = NULL, *msg = NULL;
	size_t		 len, msglen = 0;
	int		 rc_ = -1;

	envelope_init(&de);
	dsn_report_init(&r, e);
	random_boundary(boundary, sizeof(boundary));
	r.host = p->cfg->hostname;
	r.from = to;
	r.now = (int64_t)(now_usec() / 1000000u);
	r.boundary = boundary;
	r.rcpt = rc;
	r.nrcpt = n;
	/* headers for RET=HDRS still need the whole header section */
	msg = read_message(p, (size_t)p->cfg->bounce_return_max + 256 * 1024,
	    &msglen);
	r.msg = msg;
	r.msg_len = msglen;
	r.return_max = (size_t)p->cfg->bounce_return_max;
	if (dsn_format(&r, &out) == -1) {
		log_err("%s dsn cannot build report to=<%s>", p->id, to);
		goto out;
	}
	m = spool_msg_new(p->sp);
	memcpy(de.id, m->id, sizeof(de.id));
	de.arrival_usec = now_usec();
	envelope_set(&de.client_addr, "127.0.0.1");
	de.client_port = 0;
	envelope_set(&de.client_name, "localhost");
	envelope_set(&de.proto, "LOCAL");
	envelope_set(&de.from, "");
	de.body = out.eightbit ? SMTP_BODYTYPE_8BITMIME : SMTP_BODYTYPE_NONE;
	de.smtputf8 = out.smtputf8;
	envelope_add_rcpt(&de, to, NULL, 0);
	if ((text = envelope_format(&de, &len)) == NULL ||
	    spool_msg_write(m, text, len) == -1 ||
	    spool_msg_write(m, out.text, out.len) == -1 ||
	    spool_msg_commit_sync(m) != 0) {
		log_err("%s dsn cannot queue report: write failed", p->id);
		goto out;
	}
	p->dsn_ids = xreallocarray(p->dsn_ids, p->ndsn + 1,
	    sizeof(*p->dsn_ids));
	p->dsn_ids[p->ndsn++] = xstrdup(m->id);
	log_info("%s dsn queued as %s to=<%s> nrcpt=%zu", p->id, m->id, to, n);
	rc_ = 0;
out:
	spool_msg_free(m);
	envelope_fini(&de);
	dsn_out_fini(&out);
	free(text);
	free(msg);
	return rc_;
}

/*
 * Reports for this pass: failures and delays in one report, successes in
 * another (RFC 3461 4.1). A bounce of a bounce is never sent to the null
 * sender; it goes to postmaster or nowhere ([delivery] double_bounce).
 */
static void
queue_reports(struct pass *p, const enum journal_status *st,
    bool *notify_delay)
{
	const struct envelope *e = &p->env;
	struct dsn_rcpt	*fail = xcalloc(e->nrcpt, sizeof(*fail));
	struct dsn_rcpt	*ok = xcalloc(e->nrcpt, sizeof(*ok));
	size_t		 nfail = 0, nok = 0;
	int64_t		 now = (int64_t)(now_usec() / 1000000u);
	int64_t		 until = (int64_t)(e->arrival_usec / 1000000u) +
	    p->cfg->max_lifetime;
	bool		 null_sender = e->from[0] == '\0';
	char		 pm[320], (*mta)[320] = xcalloc(e->nrcpt, sizeof(*mta));

	for (size_t i = 0; i < e->nrcpt; i++) {
		const struct rcpt_out *o = &p->out[i];
		unsigned notify = e->rcpt[i].notify;
		struct dsn_rcpt d = { e->rcpt[i].addr, e->rcpt[i].orcpt,
		    DSN_ACTION_FAILED, o->dsn, NULL, o->text, now, 0 };

		if (!o->todo)
			continue;
		if (strcmp(o->relay, "maildir") != 0 &&
		    strcmp(o->relay, "local") != 0 &&
		    strcmp(o->relay, "none") != 0 && o->relay[0] != '\0') {
			/* RFC 3464 2.3.5: the host name, not "host[addr]:port" */
			snprintf(mta[i], sizeof(mta[i]), "%.*s",
			    (int)strcspn(o->relay, "["), o->relay);
			d.remote_mta = mta[i];
		}
		if (st[i] == JOURNAL_BOUNCED) {
			if (dsn_needed(e->from, notify, DSN_ACTION_FAILED) ||
			    (null_sender && notify != SMTP_NOTIFY_NEVER))
				fail[nfail++] = d;
		} else if (st[i] == JOURNAL_DEFERRED && notify_delay[i]) {
			d.action = DSN_ACTION_DELAYED;
			d.retry_until = until;
			if (dsn_needed(e->from, notify, DSN_ACTION_DELAYED))
				fail[nfail++] = d;
			else
				notify_delay[i] = false;
		} else if (st[i] == JOURNAL_SENT && !o->handed_over &&
		    (notify & SMTP_NOTIFY_SUCCESS) != 0) {
			d.action = o->remote_ok ? DSN_ACTION_RELAYED :
			    DSN_ACTION_DELIVERED;
			d.diag = NULL;
			if (dsn_needed(e->from, notify, d.action))
				ok[nok++] = d;
		}
	}
	if (nfail > 0) {
		if (!null_sender)
			queue_report(p, e->from, fail, nfail);
		else if (strcmp(p->cfg->double_bounce, "postmaster") == 0) {
			snprintf(pm, sizeof(pm), "postmaster@%s",
			    p->cfg->domains[0]);
			queue_report(p, pm, fail, nfail);
		} else
			log_info("%s dsn double bounce dropped nrcpt=%zu",
			    p->id, nfail);
	}
	if (nok > 0)
		queue_report(p, e->from, ok, nok);
	free(fail);
	free(ok);
	free(mta);
}

static void
finish_work(void *arg)
{
	struct pass	*p = arg;
	const struct envelope *e = &p->env;
	enum journal_status *st;
	bool		*notify_delay;
	char		*jbuf = NULL;
	size_t		 jlen = 0, nfinal = 0;
	uint64_t	 now = now_usec();
	bool		 expired, warn;

	st = xcalloc(e->nrcpt, sizeof(*st));
	notify_delay = xcalloc(e->nrcpt, sizeof(*notify_delay));
	expired = now - e->arrival_usec >
	    (uint64_t)p->cfg->max_lifetime * 1000000u;
	warn = p->cfg->delay_warning > 0 && now - e->arrival_usec >=
	    (uint64_t)p->cfg->delay_warning * 1000000u;
	for (size_t i = 0; i < e->nrcpt; i++) {
		struct rcpt_out *o = &p->out[i];

		if (!o->todo) {
			st[i] = JOURNAL_SENT;	/* final before this pass */
			nfinal++;
			continue;
		}
		if (o->any_temp)
			st[i] = JOURNAL_DEFERRED;
		else if (o->any_perm)
			st[i] = JOURNAL_BOUNCED;
		else
			st[i] = JOURNAL_SENT;
		if (st[i] == JOURNAL_DEFERRED && expired) {
			char	 why[SCHED_TEXT_MAX];

			/* RFC 3463 X.4.7: delivery time expired */
			snprintf(why, sizeof(why), "delivery time expired: %.*s",
			    (int)(sizeof(why) - 32), o->text);
			snprintf(o->text, sizeof(o->text), "%s", why);
			snprintf(o->dsn, sizeof(o->dsn), "4.4.7");
			st[i] = JOURNAL_BOUNCED;
			log_result(p->id, e->rcpt[i].addr, NULL, o->relay, 0,
			    e->arrival_usec, "4.4.7", "bounced", o->text);
		}
		if (st[i] == JOURNAL_DEFERRED && warn && !p->delayed[i])
			notify_delay[i] = true;
	}
	queue_reports(p, st, notify_delay);
	for (size_t i = 0; i < e->nrcpt; i++) {
		if (!p->out[i].todo)
			continue;
		if (st[i] != JOURNAL_DEFERRED) {
			nfinal++;
			journal_add(&jbuf, &jlen, i, st[i], p->out[i].dsn,
			    p->out[i].text);
		} else if (notify_delay[i])
			journal_add(&jbuf, &jlen, i, JOURNAL_DELAYED,
			    p->out[i].dsn, "delay notice sent");
	}
	if (nfinal == e->nrcpt) {
		/* reports are durable first: a crash now repeats, never loses */
		if (spool_remove(p->sp, p->id) == -1)
			log_err("%s queue remove failed: %s", p->id,
			    strerror(errno));
		else
			log_info("%s queue removed", p->id);
		p->outcome = PASS_DONE;
	} else {
		if (jlen > 0 &&
		    spool_journal_append(p->sp, p->id, jbuf, jlen) == -1)
			log_err("%s queue journal write failed: %s", p->id,
			    strerror(errno));
		p->outcome = PASS_DEFERRED;
	}
	free(jbuf);
	free(st);
	free(notify_delay);
}

/* ---- loop side --------------------------------------------------- */

static void	sched_kick(struct sched *s);

static void
qmsg_free(struct qmsg *q)
{
	struct sched	*s = q->s;

	if (q->timer != NULL)
		event_free(q->timer);
	if (q->all_prev != NULL)
		q->all_prev->all_next = q->all_next;
	else
		s->all = q->all_next;
	if (q->all_next != NULL)
		q->all_next->all_prev = q->all_prev;
	s->count--;
	free(q);
}

static void
ready_push(struct sched *s, struct qmsg *q)
{
	q->next = NULL;
	if (s->ready_tail != NULL)
		s->ready_tail->next = q;
	else
		s->ready_head = q;
	s->ready_tail = q;
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct qmsg	*q = arg;

	(void)fd;
	(void)what;
	ready_push(q->s, q);
	sched_kick(q->s);
}

static void
finish_done(void *arg)
{
	struct pass	*p = arg;
	struct qmsg	*q = p->q;
	struct sched	*s = p->s;

	s->running--;
	for (size_t i = 0; i < p->ndsn; i++)
		sched_add(s, p->dsn_ids[i]);
	if (p->outcome == PASS_DONE || s->stopping) {
		qmsg_free(q);
	} else {
		int	 secs;

		q->attempts++;
		secs = sched_backoff(q->attempts, s->cfg->retry_initial,
		    s->cfg->retry_max);
		struct timeval tv = { secs, 0 };

		if (q->timer == NULL)
			q->timer = evtimer_new(s->base, retry_cb, q);
		evtimer_add(q->timer, &tv);
		log_info("%s queue deferred attempts=%d next_try=%ds", q->id,
		    q->attempts, secs);
	}
	pass_free(p);
	sched_kick(s);
}

static struct dest *
dest_get(struct sched *s, const char *key)
{
	uint32_t	 h = str_hash(key);
	struct dest	*d;

	for (d = s->dests[h % SCHED_DEST_BUCKETS]; d != NULL; d = d->next)
		if (strcmp(d->key, key) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	snprintf(d->key, sizeof(d->key), "%s", key);
	d->next = s->dests[h % SCHED_DEST_BUCKETS];
	s->dests[h % SCHED_DEST_BUCKETS] = d;
	return d;
}

static void	group_start(struct group *g);

static void
group_done(struct remote_job *j)
{
	struct group	*g = j->arg;
	struct pass	*p = g->p;
	struct dest	*d = g->d;

	for (size_t k = 0; k < g->n; k++) {
		struct smtp_client_rcpt *rc = &g->rc[k];
		struct task	*t = &p->tasks[g->task[k]];
		char		 dsn[16], text[SCHED_TEXT_MAX];
		const char	*status;

		snprintf(dsn, sizeof(dsn), "%s", rc->enh[0] ? rc->enh :
		    rc->result == SMTP_CLIENT_OK ? "2.0.0" :
		    rc->result == SMTP_CLIENT_PERM ? "5.0.0" : "4.0.0");
		if (rc->code != 0)	/* "250 2.0.0 Ok: queued as X" */
			snprintf(text, sizeof(text), "%d%s%.15s %.*s", rc->code,
			    rc->enh[0] ? " " : "", rc->enh,
			    (int)(sizeof(text) - 24), rc->text);
		else
			snprintf(text, sizeof(text), "%s", rc->text[0] ?
			    rc->text : j->diag);
		status = rc->result == SMTP_CLIENT_OK ? "sent" :
		    rc->result == SMTP_CLIENT_PERM ? "bounced" : "deferred";
		log_result(p->id, t->addr, p->env.rcpt[t->rcpt].addr, j->relay,
		    j->conn_use, p->env.arrival_usec, dsn, status, text);
		/* Remote-MTA only names a host that answered (RFC 3464 2.3.5) */
		out_note(&p->out[t->rcpt], rc->result, dsn, text,
		    rc->code != 0 ? j->relay : "none");
		if (rc->result == SMTP_CLIENT_OK && t->kind != REMOTE_LMTP) {
			p->out[t->rcpt].remote_ok = true;
			/* RFC 3461 5.2.2: a DSN-capable next hop took over
			   NOTIFY; it reports success, not us */
			if (g->msg.peer_dsn)
				p->out[t->rcpt].handed_over = true;
		}
	}
	d->active--;
	if (d->wait_head != NULL) {
		struct group *next = d->wait_head;

		d->wait_head = next->wait_next;
		if (d->wait_head == NULL)
			d->wait_tail = NULL;
		group_start(next);
	}
	if (--p->groups_left == 0)
		workq_submit(p->s->dwq, finish_work, finish_done, p);
}

static void
group_start(struct group *g)
{
	struct sched	*s = g->p->s;

	if (s->stopping) {
		/* shutting down: the recipients wait for the next start */
		for (size_t k = 0; k < g->n; k++)
			if (g->rc[k].result == SMTP_CLIENT_PENDING) {
				g->rc[k].result = SMTP_CLIENT_TEMP;
				snprintf(g->rc[k].text, sizeof(g->rc[k].text),
				    "delivery interrupted by shutdown");
			}
		snprintf(g->job.relay, sizeof(g->job.relay), "none");
		g->d->active++;		/* group_done counts it down */
		group_done(&g->job);
		return;
	}
	if (g->d->active >= s->cfg->destination_concurrency) {
		g->wait_next = NULL;	/* RFC 5321 4.5.4.1: be gentle */
		if (g->d->wait_tail != NULL)
			g->d->wait_tail->wait_next = g;
		else
			g->d->wait_head = g;
		g->d->wait_tail = g;
		return;
	}
	g->d->active++;
	remote_start(s->remote, &g->job);
}

/* Group the pass's tasks by destination and start them. */
static void
prepare_done(void *arg)
{
	struct pass	*p = arg;
	struct sched	*s = p->s;

	if (p->outcome != PASS_DEFERRED || s->stopping) {
		/* done (gone), unreadable, or shutting down */
		if (p->outcome == PASS_DEFERRED)
			p->outcome = PASS_ERROR;
		finish_done(p);
		return;
	}
	p->groups = xcalloc(p->ntasks ? p->ntasks : 1, sizeof(*p->groups));
	for (size_t t = 0; t < p->ntasks; t++) {
		struct task	*tk = &p->tasks[t];
		struct group	*g = NULL;

		for (size_t k = 0; k < p->ngroups; k++)
			if (p->groups[k].job.kind == tk->kind &&
			    strcmp(p->groups[k].job.dest, tk->dest) == 0)
				g = &p->groups[k];
		if (g == NULL) {
			char	 key[320];

			g = &p->groups[p->ngroups++];
			g->p = p;
			g->job.kind = tk->kind;
			g->job.dest = tk->dest;
			g->job.id = p->id;
			g->job.msg = &g->msg;
			g->job.done = group_done;
			g->job.arg = g;
			snprintf(key, sizeof(key), "%d:%s", (int)tk->kind,
			    tk->dest);
			g->d = dest_get(s, key);
			g->msg.from = p->env.from;
			g->msg.eightbit = p->env.body == SMTP_BODYTYPE_8BITMIME;
			g->msg.smtputf8 = p->env.smtputf8;
			g->msg.ret = p->env.ret;
			g->msg.envid = p->env.envid;
			g->msg.fd = p->fd;
			g->msg.body_off = (off_t)p->body_off;
			g->msg.size = p->size;
		}
		g->rc = xreallocarray(g->rc, g->n + 1, sizeof(*g->rc));
		g->task = xreallocarray(g->task, g->n + 1, sizeof(*g->task));
		memset(&g->rc[g->n], 0, sizeof(g->rc[g->n]));
		g->rc[g->n].addr = tk->addr;
		g->rc[g->n].notify = p->env.rcpt[tk->rcpt].notify;
		g->rc[g->n].orcpt = p->env.rcpt[tk->rcpt].orcpt;
		g->task[g->n] = t;
		g->n++;
	}
	for (size_t k = 0; k < p->ngroups; k++) {
		p->groups[k].msg.rcpt = p->groups[k].rc;
		p->groups[k].msg.nrcpt = p->groups[k].n;
	}
	if (p->ngroups == 0 || s->remote == NULL) {
		for (size_t t = 0; t < p->ntasks; t++)
			out_note(&p->out[p->tasks[t].rcpt], SMTP_CLIENT_TEMP,
			    "4.3.5", "remote delivery is not configured",
			    "none");
		workq_submit(s->dwq, finish_work, finish_done, p);
		return;
	}
	p->groups_left = p->ngroups;
	for (size_t k = 0; k < p->ngroups; k++)
		group_start(&p->groups[k]);
}

static void
pass_free(struct pass *p)
{
	if (p->fd != -1)
		close(p->fd);
	envelope_fini(&p->env);
	free(p->final);
	free(p->delayed);
	free(p->out);
	for (size_t k = 0; k < p->npend; k++)	/* settled passes have none */
		free(p->pend[k].mailbox);
	free(p->pend);
	maildir_batch_discard(&p->batch);	/* settled passes have none */
	maildir_body_free(&p->body);
	for (size_t t = 0; t < p->ntasks; t++)
		free(p->tasks[t].addr);
	free(p->tasks);
	for (size_t k = 0; k < p->ngroups; k++) {
		free(p->groups[k].rc);
		free(p->groups[k].task);
	}
	free(p->groups);
	for (size_t i = 0; i < p->ndsn; i++)
		free(p->dsn_ids[i]);
	free(p->dsn_ids);
	free(p);
}

static void
sched_kick(struct sched *s)
{
	while (!s->stopping && s->ready_head != NULL &&
	    s->running < (unsigned)s->cfg->max_deliveries) {
		struct qmsg	*q = s->ready_head;
		struct pass	*p;

		s->ready_head = q->next;
		if (s->ready_head == NULL)
			s->ready_tail = NULL;
		p = pass_new(s, q->id);
		p->q = q;
		s->running++;
		workq_submit(s->dwq, prepare_work, prepare_done, p);
	}
}

/* ask (newfile.h) of the filesystem of dir; no where dir cannot be
   opened */
static bool
dir_says(const char *dir, bool (*ask)(int))
{
	int	 fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool	 yes = fd != -1 && ask(fd);

	if (fd != -1)
		close(fd);
	return yes;
}

struct sched *
sched_new(struct event_base *base, const struct config *cfg, struct spool *sp,
    struct workq *wq, const struct local_db *ldb)
{
	struct sched	*s = xcalloc(1, sizeof(*s));

	s->base = base;
	s->cfg = cfg;
	s->sp = sp;
	s->wq = wq;
	/* passes wait on fsync and on peers: a thread each, so they never
	   queue behind one another or behind the commits on wq */
	s->dwq = workq_new(base, cfg->max_deliveries);
	s->ldb = ldb;
	s->ds = dirsync_new();
	dirsync_set_busy(s->ds, &s->committing);
	if (cfg->batch_sync && (mkdir_p(cfg->mail_dir, 0700) == -1 ||
	    (s->fg = fsgroup_open(cfg->mail_dir, SCHED_SLOW_SYNC_USEC)) == NULL))
		log_warn("queue: no batched syncs for %s: %s (an fsync per "
		    "file)", cfg->mail_dir, strerror(errno));
	if (s->fg != NULL) {
		s->lone_fsync = dir_says(cfg->mail_dir, newfile_fsync_names);
		s->spool_races = dir_says(cfg->spool_dir, newfile_fsync_races);
	}
	return s;
}

void
sched_set_remote(struct sched *s, struct remote *r)
{
	s->remote = r;
}

void
sched_add(struct sched *s, const char *id)
{
	struct qmsg	*q;

	if (s->stopping)
		return;		/* found again by the next start's scan */
	q = xcalloc(1, sizeof(*q));
	snprintf(q->id, sizeof(q->id), "%s", id);
	q->s = s;
	q->all_next = s->all;
	if (s->all != NULL)
		s->all->all_prev = q;
	s->all = q;
	s->count++;
	ready_push(s, q);
	sched_kick(s);
}

static void
commit_done(void *arg)
{
	struct commit	*c = arg;
	char		 id[QID_LEN + 1];
	bool		 queued = c->queued;	/* named in queue/ */

	memcpy(id, c->m->id, sizeof(id));
	if (c->err != 0 && queued)
		/* renamed, but the directory sync failed: it may or may not
		   survive a crash; the client gets a 4xx and retries, and the
		   copy in queue/ is delivered too (at least once) */
		log_err("%s spool commit dirsync failed: %s", id,
		    strerror(c->err));
	atomic_fetch_sub(&c->s->committing, 1);
	log_hold();	/* the session's lines about it: one write */
	if (queued)
		sched_add(c->s, id);
	c->cb(c->err, c->arg);		/* may free c->m */
	if (c->err == 0 && c->delivered)
		log_info("%s queue removed: delivered at commit", id);
	log_release();
	free(c);
}

void
sched_commit(struct sched *s, struct spool_msg *m, void (*cb)(int, void *),
    void *arg)
{
	struct commit	*c = xcalloc(1, sizeof(*c));

	c->s = s;
	c->m = m;
	c->cb = cb;
	c->arg = arg;
	c->direct = s->cfg->direct_local && !s->stopping;
	atomic_fetch_add(&s->committing, 1);
	workq_submit(s->wq, commit_work, commit_done, c);
}

size_t
sched_count(const struct sched *s)
{
	return s->count;
}

void
sched_stop(struct sched *s)
{
	s->stopping = true;
}

void
sched_free(struct sched *s)
{
	if (s == NULL)
		return;
	/* stopped: the passes still running end as deferrals */
	workq_free(s->dwq);
	while (s->all != NULL)
		qmsg_free(s->all);
	dirsync_free(s->ds);
	fsgroup_free(s->fg);
	for (size_t i = 0; i < SCHED_DEST_BUCKETS; i++)
		while (s->dests[i] != NULL) {
			struct dest *d = s->dests[i];

			s->dests[i] = d->next;
			free(d);
		}
	free(s);
}
