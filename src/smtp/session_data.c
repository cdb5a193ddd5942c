/*
 * session_data.c: message content in the server session: DATA and BDAT
 * (RFC 3030), the spool file with its envelope and Received header,
 * submission fix-ups, size limits and the commit that precedes the 250.
 */
#include "smtp/session.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "queue/scheduler.h"
#include "queue/spool.h"

/* Open the spool file and write the envelope and Received header. */
/* The reply for a spool that cannot take the message: RFC 3463 X.3.1 when
   the disk is full, so clients retry later rather than give up. */
static const char *
storage_reply(int err)
{
	if (err == ENOSPC || err == EDQUOT)
		return "452 4.3.1 Error: insufficient system storage";
	return "451 4.3.0 Error: queue file write error";
}

static void
reply_storage(struct smtp_session *s, int err)
{
	const char *r = storage_reply(err);

	smtp_sess_reply(s, atoi(r), NULL, "%s", r + 4);
}

static int
txn_open(struct smtp_session *s)
{
	const struct config *cfg = s->srv->cfg;
	char	 date[64], *hdr, *text, tlsc[192] = "";
	const char *proto;
	size_t	 len;
	int	 rc;

	/* RFC 3848 protocol names */
	if (!s->esmtp)
		proto = "SMTP";
	else if (s->tls && s->auth_user != NULL)
		proto = "ESMTPSA";
	else if (s->tls)
		proto = "ESMTPS";
	else if (s->auth_user != NULL)
		proto = "ESMTPA";
	else
		proto = "ESMTP";
	if (s->tls)
		snprintf(tlsc, sizeof(tlsc), "\r\n\t(using %s)", s->tls_info);
	s->msg = spool_msg_new(s->srv->spool);
	memcpy(s->env.id, s->msg->id, sizeof(s->env.id));
	s->env.arrival_usec = now_usec();
	envelope_set(&s->env.client_addr, s->addr);
	s->env.client_port = s->port;
	envelope_set(&s->env.client_name, "unknown");
	envelope_set(&s->env.helo, s->helo);
	envelope_set(&s->env.proto, proto);
	envelope_set(&s->env.auth, s->auth_user);
	if ((text = envelope_format(&s->env, &len)) == NULL) {
		/* cannot happen with what the session fills in; never write
		   an envelope the queue could not read back */
		log_err("%s spool envelope invalid sess=%" PRIx64, s->env.id,
		    s->id);
		spool_msg_free(s->msg);
		s->msg = NULL;
		s->spool_err = EINVAL;
		return -1;
	}
	rfc5322_date((int64_t)(s->env.arrival_usec / 1000000u), date,
	    sizeof(date));
	/* RFC 5321 4.4; "for" only with a single recipient (privacy) */
	if (s->env.nrcpt == 1)
		hdr = xasprintf("Received: from %s (unknown [%s])%s\r\n"
		    "\tby %s (petrel) with %s id %s\r\n\tfor <%s>; %s\r\n",
		    s->helo, s->addr, tlsc, cfg->hostname, s->env.proto,
		    s->env.id, s->env.rcpt[0].addr, date);
	else
		hdr = xasprintf("Received: from %s (unknown [%s])%s\r\n"
		    "\tby %s (petrel) with %s id %s;\r\n\t%s\r\n",
		    s->helo, s->addr, tlsc, cfg->hostname, s->env.proto,
		    s->env.id, date);
	rc = spool_msg_write(s->msg, text, len);
	if (rc == 0)
		rc = spool_msg_write(s->msg, hdr, strlen(hdr));
	s->hdr_len = s->msg->written;
	free(text);
	free(hdr);
	if (rc == -1) {
		log_err("%s spool write failed: %s sess=%" PRIx64, s->env.id,
		    strerror(s->msg->error), s->id);
		s->spool_err = s->msg->error;
		spool_msg_free(s->msg);
		s->msg = NULL;
		return rc;
	}
	/* RFC 6409 8.2, 8.3: a submission gets Date and Message-ID */
	s->fixup = s->kind != SMTP_PORT_MX || s->auth_user != NULL;
	s->hdr_done = !s->fixup;
	return rc;
}

void
smtp_sess_cmd_data(struct smtp_session *s, const struct smtp_cmd *c)
{
	if (c->arg_len != 0) {
		smtp_sess_reply(s, 501, "5.5.4", "Syntax: DATA");
		return;
	}
	if (s->state == SMTP_STATE_MAIL) {
		/* RFC 2920 3.1: every RCPT of the batch failed */
		smtp_sess_reply(s, 554, "5.5.1", "Error: no valid recipients");
		return;
	}
	if (s->state != SMTP_STATE_RCPT) {
		smtp_sess_reply(s, 503, "5.5.1", "Error: need RCPT command");
		return;
	}
	if (s->bdat_txn) {
		smtp_sess_reply(s, 503, "5.5.1", "Error: DATA after BDAT");
		return;
	}
	if (txn_open(s) == -1) {
		reply_storage(s, s->spool_err);
		return;
	}
	smtp_body_init(&s->body, SMTP_BODY_DATA);
	smtp_sess_enter(s, SMTP_STATE_DATA);
	smtp_sess_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

static int
parse_bdat(const char *arg, size_t len, uint64_t *size, bool *last)
{
	size_t	 i = 0;
	uint64_t v = 0;

	if (len == 0)
		return -1;
	for (; i < len && arg[i] >= '0' && arg[i] <= '9'; i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(arg[i] - '0');
	}
	if (i == 0)
		return -1;
	*size = v;
	*last = false;
	if (i == len)
		return 0;
	if (arg[i] != ' ')
		return -1;
	while (i < len && arg[i] == ' ')
		i++;
	if (len - i == 4 && strncasecmp(arg + i, "LAST", 4) == 0) {
		*last = true;
		return 0;
	}
	return -1;
}

/* Read and drop a chunk, then answer with the given reply. */
static void
bdat_drop(struct smtp_session *s, uint64_t size, const char *replytext)
{
	s->bdat_fail = true;
	s->bdat_left = size;
	snprintf(s->bdat_reply, sizeof(s->bdat_reply), "%s", replytext);
	smtp_sess_enter(s, SMTP_STATE_BDAT);
}

void
smtp_sess_cmd_bdat(struct smtp_session *s, const struct smtp_cmd *c)
{
	uint64_t size;
	bool	 last;

	if (parse_bdat(c->arg, c->arg_len, &size, &last) == -1) {
		/* the size is unknown: no way to stay in sync (RFC 3030 2) */
		smtp_sess_reply(s, 501, "5.5.4", "Syntax: BDAT size [LAST]");
		smtp_sess_close(s);
		return;
	}
	if (s->state == SMTP_STATE_INIT || s->state == SMTP_STATE_READY ||
	    s->state == SMTP_STATE_MAIL) {
		bdat_drop(s, size, s->state == SMTP_STATE_MAIL ?
		    "554 5.5.1 Error: no valid recipients" :
		    "503 5.5.1 Error: need RCPT command");
		return;
	}
	if (!s->bdat_txn) {
		if (txn_open(s) == -1) {
			/* reset first: it clears the drop state too */
			smtp_sess_txn_reset(s);
			bdat_drop(s, size, storage_reply(s->spool_err));
			return;
		}
		s->bdat_txn = true;
		smtp_body_init(&s->body, SMTP_BODY_BDAT);
	}
	s->bdat_fail = false;
	s->bdat_left = size;
	s->bdat_last = last;
	smtp_sess_enter(s, SMTP_STATE_BDAT);
}

static void
commit_done(int err, void *arg)
{
	struct smtp_session *s = arg;
	char	 from[600];

	s->busy = false;
	if (s->dead) {
		/* the client left: the message is delivered, durable or gone;
		   it was never acknowledged, so a delivery is a harmless
		   duplicate */
		smtp_sess_enter(s, SMTP_STATE_QUIT);
		smtp_sess_free(s);
		return;
	}
	if (err != 0) {
		log_err("%s spool commit failed: %s sess=%" PRIx64, s->env.id,
		    strerror(err), s->id);
		reply_storage(s, err);
	} else {
		str_escape(s->env.from, strlen(s->env.from), from,
		    sizeof(from));
		log_info("%s smtp accepted from=<%s> size=%" PRIu64 " nrcpt=%zu"
		    " proto=%s client=[%s] helo=%s sess=%" PRIx64, s->env.id,
		    from, s->msg->written - s->hdr_len, s->env.nrcpt,
		    s->env.proto, s->addr, s->helo, s->id);
		for (size_t i = 0; i < s->env.nrcpt; i++) {
			str_escape(s->env.rcpt[i].addr,
			    strlen(s->env.rcpt[i].addr), from, sizeof(from));
			log_info("%s smtp rcpt to=<%s>", s->env.id, from);
		}
		smtp_sess_reply(s, 250, "2.0.0", "Ok: queued as %s", s->env.id);
	}
	smtp_sess_txn_reset(s);
	smtp_sess_enter(s, SMTP_STATE_READY);
	if (!s->eof)
		bufferevent_enable(s->bev, EV_READ);
	smtp_sess_process(s);
	if (s->eof)
		smtp_sess_eof(s);
}

/* The content is complete: check it, then commit or refuse. */
void
smtp_sess_message_end(struct smtp_session *s)
{
	const char *id = s->env.id;

	if (!s->too_big && !s->body.bare && s->hdrbuf != NULL)
		smtp_sess_hdr_flush(s, evbuffer_get_length(s->hdrbuf));  /* all header */
	if (s->too_big) {
		smtp_sess_reply(s, 552, "5.3.4", "Error: message too large");
		log_info("%s smtp rejected: message too large sess=%" PRIx64, id,
		    s->id);
	} else if (s->body.bare) {
		/* RFC 5321 2.3.8; SMTP smuggling defence */
		smtp_sess_reply(s, 550, "5.6.0", "Error: bare CR or LF in message "
		    "content (RFC 5321 2.3.8)");
		log_info("%s smtp rejected: bare CR or LF sess=%" PRIx64, id,
		    s->id);
	} else if (s->msg->error != 0) {
		reply_storage(s, s->msg->error);
		log_err("%s spool write failed: %s sess=%" PRIx64, id,
		    strerror(s->msg->error), s->id);
	} else {
		smtp_sess_enter(s, SMTP_STATE_COMMIT);
		s->busy = true;
		sched_commit(s->srv->sched, s->msg, commit_done, s);
		return;
	}
	smtp_sess_txn_reset(s);
	smtp_sess_enter(s, SMTP_STATE_READY);
}

/* Does the header text h have a field called name (lowercase)? */
static bool
hdr_has(const char *h, size_t len, const char *name)
{
	size_t	 nlen = strlen(name), i = 0;

	while (i < len) {
		const char *nl;

		if (len - i > nlen && strncasecmp(h + i, name, nlen) == 0 &&
		    h[i + nlen] == ':')
			return true;
		if ((nl = memchr(h + i, '\n', len - i)) == NULL)
			break;
		i = (size_t)(nl - h) + 1;
	}
	return false;
}

/*
 * Write the held header section (hlen bytes) with Date and Message-ID
 * added when missing, then the rest of what is held.
 */
void
smtp_sess_hdr_flush(struct smtp_session *s, size_t hlen)
{
	size_t	 len = evbuffer_get_length(s->hdrbuf);
	const char *h = (const char *)evbuffer_pullup(s->hdrbuf, -1);
	char	 date[64], *add;
	bool	 need_date, need_id;

	need_date = !hdr_has(h, hlen, "date");
	need_id = !hdr_has(h, hlen, "message-id");
	spool_msg_write(s->msg, h, hlen);
	if (need_date || need_id) {
		rfc5322_date((int64_t)(now_usec() / 1000000u), date,
		    sizeof(date));
		add = xasprintf("%s%s%s%s%s%s%s", need_date ? "Date: " : "",
		    need_date ? date : "", need_date ? "\r\n" : "",
		    need_id ? "Message-ID: <" : "", need_id ? s->env.id : "",
		    need_id ? "@" : "", need_id ? s->srv->cfg->hostname : "");
		spool_msg_write(s->msg, add, strlen(add));
		if (need_id)
			spool_msg_write(s->msg, ">\r\n", 3);
		free(add);
		log_info("%s smtp fixup%s%s sess=%" PRIx64, s->env.id,
		    need_date ? " date" : "", need_id ? " message-id" : "",
		    s->id);
	}
	spool_msg_write(s->msg, h + hlen, len - hlen);
	evbuffer_free(s->hdrbuf);
	s->hdrbuf = NULL;
	s->hdr_done = true;
}

/* Hold content until the header section ends (submission fix-ups). */
static void
hdr_hold(struct smtp_session *s, const char *buf, size_t len)
{
	struct evbuffer_ptr p;
	size_t	 have;

	if (s->hdrbuf == NULL)
		s->hdrbuf = evbuffer_new();
	evbuffer_add(s->hdrbuf, buf, len);
	have = evbuffer_get_length(s->hdrbuf);
	if (have >= 2 && memcmp(evbuffer_pullup(s->hdrbuf, 2), "\r\n", 2) == 0) {
		smtp_sess_hdr_flush(s, 0);	/* no header section at all */
		return;
	}
	p = evbuffer_search(s->hdrbuf, "\r\n\r\n", 4, NULL);
	if (p.pos != -1) {
		smtp_sess_hdr_flush(s, (size_t)p.pos + 2);
		return;
	}
	if (have > SMTP_HDR_FIXUP_MAX) {
		/* a huge header section: keep it as it is */
		spool_msg_write(s->msg, evbuffer_pullup(s->hdrbuf, -1), have);
		evbuffer_free(s->hdrbuf);
		s->hdrbuf = NULL;
		s->hdr_done = true;
	}
}

void
smtp_sess_body_write(struct smtp_session *s, const char *buf, size_t len)
{
	if (len == 0 || s->too_big)
		return;
	if (s->body.size > s->srv->cfg->max_message_size) {
		s->too_big = true;	/* keep reading, write nothing more */
		return;
	}
	if (!s->hdr_done) {
		hdr_hold(s, buf, len);
		return;
	}
	spool_msg_write(s->msg, buf, len);
}

/*
 * Decode up to max buffered bytes where libevent holds them, one chain at a
 * time (a pullup would first copy them into one piece). Returns the bytes
 * taken; fewer than were there only when the content ended.
 */
static size_t
feed(struct smtp_session *s, struct evbuffer *in, size_t max)
{
	struct evbuffer_iovec v[8];
	char	*out = s->srv->chunk;
	size_t	 taken = 0;
	int	 nv;

	nv = evbuffer_peek(in, (ev_ssize_t)max, NULL, v, (int)ARRAY_LEN(v));
	if (nv > (int)ARRAY_LEN(v))
		nv = (int)ARRAY_LEN(v);
	for (int i = 0; i < nv && taken < max && !s->body.done; i++) {
		const char *p = v[i].iov_base;
		size_t	 left = v[i].iov_len;

		if (left > max - taken)
			left = max - taken;
		while (left > 0 && !s->body.done) {
			size_t	 n = left < SMTP_CHUNK ? left : SMTP_CHUNK;
			size_t	 outlen, used;

			smtp_body_feed(&s->body, p, n, out, &outlen, &used);
			smtp_sess_body_write(s, out, outlen);
			p += used;
			left -= used;
			taken += used;
		}
	}
	evbuffer_drain(in, taken);
	return taken;
}

/* DATA: decode what is buffered. Returns true when the content ended. */
bool
smtp_sess_data_input(struct smtp_session *s, struct evbuffer *in)
{
	while (evbuffer_get_length(in) > 0 && !s->body.done)
		feed(s, in, evbuffer_get_length(in));
	return s->body.done;
}

/* BDAT: take the chunk's bytes. Returns true when the chunk is complete. */
bool
smtp_sess_bdat_input(struct smtp_session *s, struct evbuffer *in)
{
	while (s->bdat_left > 0 && evbuffer_get_length(in) > 0) {
		size_t	 n = evbuffer_get_length(in);

		if (n > s->bdat_left)
			n = (size_t)s->bdat_left;
		if (s->bdat_fail) {
			evbuffer_drain(in, n);
			s->bdat_left -= n;
			continue;
		}
		s->bdat_left -= feed(s, in, n);
	}
	return s->bdat_left == 0;
}

void
smtp_sess_bdat_end(struct smtp_session *s)
{
	if (s->bdat_fail) {
		int	 code = atoi(s->bdat_reply);

		/* "NNN X.Y.Z text" */
		smtp_sess_reply(s, code, NULL, "%s", s->bdat_reply + 4);
		s->bdat_fail = false;
		smtp_sess_enter(s, s->msg != NULL ? SMTP_STATE_RCPT :
		    (s->helo != NULL ? (s->env.from != NULL ?
		    SMTP_STATE_MAIL : SMTP_STATE_READY) : SMTP_STATE_INIT));
		return;
	}
	if (s->too_big) {
		/* RFC 3030 2: fail now; later chunks meet a reset state */
		smtp_sess_message_end(s);
		return;
	}
	if (!s->bdat_last) {
		smtp_sess_reply(s, 250, "2.0.0", "Ok: %" PRIu64 " octets received",
		    s->body.size);
		smtp_sess_enter(s, SMTP_STATE_RCPT);
		return;
	}
	char	 tail[2];
	size_t	 tlen;

	smtp_body_finish(&s->body, tail, &tlen);
	smtp_sess_body_write(s, tail, tlen);
	smtp_sess_message_end(s);
}
