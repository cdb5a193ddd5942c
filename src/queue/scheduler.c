/*
 * scheduler.c: when to deliver. New and recovered messages are run at
 * once, up to max_deliveries at a time on the worker pool; a message with
 * deferred recipients waits for its backoff on a timer. Nothing scans the
 * spool after startup: every message the scheduler knows is in memory.
 * The delivery job routes each recipient and hands it to the agent; the
 * agent never decides policy.
 */
#include "queue/scheduler.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "deliver/maildir.h"
#include "queue/envelope.h"

#define SCHED_ENVELOPE_MAX	(16u * 1024 * 1024)	/* bytes */
#define SCHED_RCPT_MAX		100000

struct qmsg {
	char		 id[QID_LEN + 1];
	int		 attempts;	/* failed delivery passes so far */
	struct event	*timer;		/* owned: retry timer */
	struct qmsg	*next;		/* ready list */
	struct qmsg	*all_prev, *all_next; /* every known message */
	struct sched	*s;		/* borrowed */
};

struct sched {
	struct event_base	*base;	/* borrowed */
	const struct config	*cfg;	/* borrowed */
	struct spool		*sp;	/* borrowed */
	struct workq		*wq;	/* borrowed */
	const struct local_db	*ldb;	/* borrowed */
	struct qmsg		*ready_head, *ready_tail;
	struct qmsg		*all;	/* owned: every message it knows */
	unsigned		 running;
	size_t			 count;
	bool			 stopping;
};

enum dlv_outcome { DLV_DONE, DLV_DEFERRED, DLV_ERROR };

/* A delivery pass over one message; runs on a worker. Copies, no
   pointers into loop state except the immutable config and tables. */
struct dlv_job {
	struct qmsg		*q;	/* borrowed: loop thread only */
	const struct config	*cfg;	/* borrowed, immutable */
	const struct local_db	*ldb;	/* borrowed, immutable */
	const struct spool	*sp;	/* borrowed */
	char			 id[QID_LEN + 1];
	enum dlv_outcome	 outcome;
};

int
sched_backoff(int n, int initial, int max)
{
	long	 d = initial;

	for (int i = 1; i < n && d < max; i++)
		d *= 2;
	return d > max ? max : (int)d;
}

/* Read the spool file's envelope. 0, or -1 with a reason in err. */
static int
load_envelope(int fd, struct envelope *e, size_t *body_off, char *err,
    size_t errlen)
{
	size_t	 cap = 64 * 1024, len = 0;
	char	*buf = xmalloc(cap);
	int	 rc = -1;

	for (;;) {
		ssize_t n = pread(fd, buf + len, cap - len, (off_t)len);

		if (n == -1) {
			if (errno == EINTR)
				continue;
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

/* Final recipients from the journal, if there is one. */
static void
load_journal(const struct spool *sp, const char *id, size_t nrcpt,
    bool *final)
{
	char	 path[4096], *buf = NULL;
	size_t	 len = 0, cap = 0;
	int	 fd;
	ssize_t	 n;

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
	free(buf);
}

static void
log_result(const char *id, const char *to, const char *mailbox,
    uint64_t arrival, const char *dsn, const char *status, const char *why)
{
	char	 esc_to[600], esc_why[600];
	double	 delay = (double)(now_usec() - arrival) / 1e6;

	str_escape(to, strlen(to), esc_to, sizeof(esc_to));
	str_escape(why, strlen(why), esc_why, sizeof(esc_why));
	log_info("%s deliver to=<%s>%s%s%s relay=%s delay=%.2f dsn=%s "
	    "status=%s (%s)", id, esc_to, mailbox ? " mailbox=<" : "",
	    mailbox ? mailbox : "", mailbox ? ">" : "",
	    mailbox ? "maildir" : "none", delay, dsn, status, esc_why);
}

/*
 * Deliver recipient i locally. Returns its journal status; appends the
 * mailboxes it reached to done so another recipient reaching the same
 * mailbox in this pass gets no second copy.
 */
static enum journal_status
deliver_rcpt(struct dlv_job *j, const struct envelope *e, size_t i, int fd,
    size_t body_off, struct strlist *done, bool expired)
{
	struct strlist	 mb = { 0 }, rem = { 0 };
	const char	*to = e->rcpt[i].addr;
	char		 path[4096], err[512];
	enum journal_status st = JOURNAL_SENT;

	switch (local_resolve(j->ldb, to, &mb, &rem)) {
	case LOCAL_OK:
		break;
	case LOCAL_UNKNOWN:
		/* TODO(#5): a bounce (DSN) to the sender */
		log_result(j->id, to, NULL, e->arrival_usec, "5.1.1",
		    "bounced", "user unknown");
		st = JOURNAL_BOUNCED;
		goto out;
	case LOCAL_LOOP:
		log_result(j->id, to, NULL, e->arrival_usec, "5.4.6",
		    "bounced", "alias expansion loop");
		st = JOURNAL_BOUNCED;
		goto out;
	case LOCAL_NOT_LOCAL:
	default:
		strlist_add(&rem, to);
		break;
	}
	for (size_t k = 0; k < mb.len; k++) {
		if (strlist_has(done, mb.v[k]))
			continue;
		if (local_maildir_path(j->cfg->mail_dir, mb.v[k], path,
		    sizeof(path)) == -1) {
			log_result(j->id, to, mb.v[k], e->arrival_usec, "5.1.3",
			    "bounced", "mailbox name not usable as a path");
			st = JOURNAL_BOUNCED;
			continue;
		}
		if (maildir_deliver(path, fd, (off_t)body_off, e->from, mb.v[k],
		    j->cfg->hostname, err, sizeof(err)) == -1) {
			log_result(j->id, to, mb.v[k], e->arrival_usec, "4.2.0",
			    "deferred", err);
			st = JOURNAL_DEFERRED;
			continue;
		}
		strlist_add(done, mb.v[k]);
		log_result(j->id, to, mb.v[k], e->arrival_usec, "2.0.0", "sent",
		    "delivered to maildir");
	}
	for (size_t k = 0; k < rem.len; k++) {
		/* TODO(#5): remote delivery; until then it waits queued */
		log_result(j->id, rem.v[k], NULL, e->arrival_usec, "4.4.0",
		    "deferred", "remote delivery not available yet");
		if (st == JOURNAL_SENT)
			st = JOURNAL_DEFERRED;
	}
	if (st == JOURNAL_DEFERRED && expired) {
		/* TODO(#5): a bounce (DSN) to the sender */
		log_result(j->id, to, NULL, e->arrival_usec, "4.4.7",
		    "bounced", "queue lifetime exceeded");
		st = JOURNAL_BOUNCED;
	}
out:
	strlist_free(&mb);
	strlist_free(&rem);
	return st;
}

static void
dlv_work(void *arg)
{
	struct dlv_job	*j = arg;
	struct envelope	 e;
	struct strlist	 done = { 0 };
	char		 path[4096], err[256], line[1024];
	char		*jbuf = NULL;
	size_t		 body_off, jlen = 0, nfinal = 0;
	bool		*final = NULL, expired;
	int		 fd;

	envelope_init(&e);
	j->outcome = DLV_ERROR;
	spool_path(j->sp, j->id, path, sizeof(path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT) {
			j->outcome = DLV_DONE;	/* already gone */
			return;
		}
		log_err("%s queue open failed: %s", j->id, strerror(errno));
		return;
	}
	if (load_envelope(fd, &e, &body_off, err, sizeof(err)) == -1) {
		/* keep the file for the administrator; retry later */
		log_err("%s queue cannot read message: %s", j->id, err);
		goto out;
	}
	final = xcalloc(e.nrcpt, sizeof(*final));
	load_journal(j->sp, j->id, e.nrcpt, final);
	expired = now_usec() - e.arrival_usec >
	    (uint64_t)j->cfg->max_lifetime * 1000000u;

	for (size_t i = 0; i < e.nrcpt; i++) {
		if (final[i]) {
			nfinal++;
			continue;
		}
		enum journal_status st = deliver_rcpt(j, &e, i, fd, body_off,
		    &done, expired);
		if (st == JOURNAL_DEFERRED)
			continue;
		final[i] = true;
		nfinal++;
		int n = journal_format(line, sizeof(line), i, st,
		    st == JOURNAL_SENT ? "2.0.0" : "5.0.0",
		    st == JOURNAL_SENT ? "delivered" : "bounced");
		if (n > 0) {
			jbuf = xrealloc(jbuf, jlen + (size_t)n);
			memcpy(jbuf + jlen, line, (size_t)n);
			jlen += (size_t)n;
		}
	}
	if (nfinal == e.nrcpt) {
		if (spool_remove(j->sp, j->id) == -1)
			log_err("%s queue remove failed: %s", j->id,
			    strerror(errno));
		else
			log_info("%s queue removed", j->id);
		j->outcome = DLV_DONE;
	} else {
		if (jlen > 0 &&
		    spool_journal_append(j->sp, j->id, jbuf, jlen) == -1)
			log_err("%s queue journal write failed: %s", j->id,
			    strerror(errno));
		j->outcome = DLV_DEFERRED;
	}
out:
	close(fd);
	envelope_fini(&e);
	strlist_free(&done);
	free(final);
	free(jbuf);
}

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
dlv_done(void *arg)
{
	struct dlv_job	*j = arg;
	struct qmsg	*q = j->q;
	struct sched	*s = q->s;

	s->running--;
	if (j->outcome == DLV_DONE || s->stopping) {
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
	free(j);
	sched_kick(s);
}

static void
sched_kick(struct sched *s)
{
	while (!s->stopping && s->ready_head != NULL &&
	    s->running < (unsigned)s->cfg->max_deliveries) {
		struct qmsg	*q = s->ready_head;
		struct dlv_job	*j;

		s->ready_head = q->next;
		if (s->ready_head == NULL)
			s->ready_tail = NULL;
		j = xcalloc(1, sizeof(*j));
		j->q = q;
		j->cfg = s->cfg;
		j->ldb = s->ldb;
		j->sp = s->sp;
		memcpy(j->id, q->id, sizeof(j->id));
		s->running++;
		workq_submit(s->wq, dlv_work, dlv_done, j);
	}
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
	s->ldb = ldb;
	return s;
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
	/* call after the workers stopped: no job holds a qmsg */
	while (s->all != NULL)
		qmsg_free(s->all);
	free(s);
}
