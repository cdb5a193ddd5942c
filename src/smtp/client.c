/*
 * client.c: the SMTP/LMTP client session: one message per run, over a new
 * connection or one kept from an earlier run, on the loop thread, with a
 * result per recipient. It decides no routing, retry, bounce or reuse
 * policy and logs at debug level only: the caller logs.
 */
#include "smtp/client.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "core/log.h"
#include "core/util.h"
#include "net/tls.h"
#include "smtp/client_parse.h"
#include "smtp/parse.h"

#define CLIENT_REPLY_LINES	100		/* lines per reply */
#define CLIENT_REPLY_BYTES	(32 * 1024)	/* bytes per reply */
#define CLIENT_CHUNK		(64 * 1024)	/* body bytes per pread() */
#define CLIENT_OUT_LWM		(32 * 1024)	/* refill the body below this */
#define CLIENT_SOCK_HWM		(64 * 1024)	/* TLS records queued on the
						   socket before the filter
						   waits */
#define CLIENT_QUIT_WAIT	2		/* seconds to wait for 221 */
#define CLIENT_DIAG_MAX		SMTP_CLIENT_TEXT_MAX
#define CLIENT_PEER_MAX		320	/* name (255), address, port */
#define CLIENT_TLS_INFO_MAX	128

/* Used when the caller passes 0 (RFC 5321 4.5.3.2 minimums). */
#define CLIENT_CONNECT_DEFAULT	30
#define CLIENT_COMMAND_DEFAULT	300
#define CLIENT_DATA_DEFAULT	600

enum smtp_client_state {
	SMTP_CLIENT_STATE_CONNECT,	/* TCP connect under way */
	SMTP_CLIENT_STATE_GREETING,	/* waiting for the 220 */
	SMTP_CLIENT_STATE_EHLO,		/* EHLO or LHLO sent */
	SMTP_CLIENT_STATE_HELO,		/* HELO sent after EHLO was refused */
	SMTP_CLIENT_STATE_STARTTLS,	/* STARTTLS sent */
	SMTP_CLIENT_STATE_TLS,		/* TLS handshake under way */
	SMTP_CLIENT_STATE_AUTH,		/* AUTH exchange */
	SMTP_CLIENT_STATE_IDLE,		/* a kept connection, MAIL not sent */
	SMTP_CLIENT_STATE_TXN,		/* MAIL, RCPT..., DATA replies due */
	SMTP_CLIENT_STATE_BODY,		/* streaming the message */
	SMTP_CLIENT_STATE_DOT,		/* end of data sent, final reply due */
	SMTP_CLIENT_STATE_QUIT,		/* QUIT sent; close on anything */
	SMTP_CLIENT_STATE_CLOSED,	/* connection released, done() due */
};

struct smtp_client {
	struct event_base	*base;		/* borrowed */
	struct bufferevent	*bev;		/* owned; TLS: the filter */
	struct event		*timer;		/* owned: step deadline, then
						   deferred done() */
	struct smtp_client_opts	 o;		/* copy; its strings owned, its
						   ssl_ctx holds a reference */
	struct smtp_client_msg	*m;		/* borrowed until done() */
	smtp_client_done_cb	 done;
	void			*arg;

	enum smtp_client_state	 state;
	char			 peer[CLIENT_PEER_MAX];	/* "name[addr]:port" */
	struct smtp_client_caps	 caps;		/* from the last EHLO */
	bool			 tls;		/* TLS is up */
	bool			 tls_refused;	/* STARTTLS refused: clear */
	bool			 login;		/* AUTH LOGIN, not PLAIN */
	int			 auth_step;	/* LOGIN: 334s answered */
	bool			 authed;

	/* the transaction: command k is MAIL (0), RCPT of order[k-1], DATA
	   (norder + 1) */
	bool			 mail_sent;	/* from here on: DONE, not
						   NEXT_HOST */
	bool			 mail_failed;	/* MAIL refused: its reply is
						   every rcpt's result */
	size_t			*order;		/* owned: the rcpts sent, as
						   indices into m->rcpt */
	size_t			 norder;
	size_t			 nsent;		/* commands sent */
	size_t			 nreplied;	/* replies taken */
	size_t			*acc;		/* owned: accepted rcpts, RCPT
						   order (LMTP replies follow
						   it, RFC 2033 4.2) */
	size_t			 nacc;
	size_t			 nfinal;	/* final replies taken */
	bool			 lone_dot;	/* "." sent after a 354 that
						   came with no accepted
						   rcpt */

	/* body streaming */
	char			*chunk;		/* owned while in BODY */
	off_t			 off;		/* next byte of m->fd to read */
	bool			 bol;		/* at the start of a line */
	bool			 cr;		/* a CR is held back */

	enum smtp_client_status	 st;
	char			 diag[CLIENT_DIAG_MAX];
	char			 tls_info[CLIENT_TLS_INFO_MAX];
	bool			 in_done;	/* done() is running */

	/* connection reuse */
	bool			 reused;	/* started on a kept
						   connection */
	bool			 peer_closing;	/* a 421 came (RFC 5321 3.8) */
	bool			 keep;		/* CLOSED with bev still open,
						   for smtp_client_take_conn */
};

/*
 * A kept connection: what the session learnt before its first MAIL, moved
 * out of the smtp_client that made it and back into the next one.
 */
struct smtp_client_conn {
	struct event_base	*base;		/* borrowed */
	struct bufferevent	*bev;		/* owned; TLS: the filter */
	struct event		*timer;		/* owned: the idle limit */
	struct smtp_client_opts	 o;		/* as in smtp_client */
	char			 peer[CLIENT_PEER_MAX];
	struct smtp_client_caps	 caps;
	bool			 tls;
	bool			 authed;
	char			 tls_info[CLIENT_TLS_INFO_MAX];
	bool			 gone;		/* reported: of no more use */
	bool			 closed;	/* the peer closed or broke it:
						   no QUIT */
	smtp_client_conn_cb	 gone_cb;
	void			*arg;
};

static void	client_read(struct smtp_client *);
static void	client_after_hello(struct smtp_client *);
static void	body_fill(struct smtp_client *);
static void	client_read_cb(struct bufferevent *, void *);
static void	client_write_cb(struct bufferevent *, void *);
static void	client_event_cb(struct bufferevent *, short, void *);

static const char *const state_names[] = {
	[SMTP_CLIENT_STATE_CONNECT] = "connect",
	[SMTP_CLIENT_STATE_GREETING] = "greeting",
	[SMTP_CLIENT_STATE_EHLO] = "ehlo",
	[SMTP_CLIENT_STATE_HELO] = "helo",
	[SMTP_CLIENT_STATE_STARTTLS] = "starttls",
	[SMTP_CLIENT_STATE_TLS] = "tls",
	[SMTP_CLIENT_STATE_AUTH] = "auth",
	[SMTP_CLIENT_STATE_IDLE] = "idle",
	[SMTP_CLIENT_STATE_TXN] = "txn",
	[SMTP_CLIENT_STATE_BODY] = "body",
	[SMTP_CLIENT_STATE_DOT] = "dot",
	[SMTP_CLIENT_STATE_QUIT] = "quit",
	[SMTP_CLIENT_STATE_CLOSED] = "closed",
};

static const char *
smtp_client_state_name(enum smtp_client_state st)
{
	return (size_t)st < ARRAY_LEN(state_names) ? state_names[st] : "?";
}

/* What we were doing, for "lost connection with X while <step>". */
static const char *
client_step(const struct smtp_client *c)
{
	switch (c->state) {
	case SMTP_CLIENT_STATE_CONNECT:
		return "connecting";
	case SMTP_CLIENT_STATE_GREETING:
		return "receiving the initial server greeting";
	case SMTP_CLIENT_STATE_EHLO:
		return c->o.lmtp ? "performing the LHLO handshake" :
		    "performing the EHLO handshake";
	case SMTP_CLIENT_STATE_HELO:
		return "performing the HELO handshake";
	case SMTP_CLIENT_STATE_STARTTLS:
		return "sending STARTTLS";
	case SMTP_CLIENT_STATE_TLS:
		return "performing the TLS handshake";
	case SMTP_CLIENT_STATE_AUTH:
		return "performing AUTH";
	case SMTP_CLIENT_STATE_IDLE:
		return "reusing the connection";
	case SMTP_CLIENT_STATE_TXN:
		if (c->nreplied == 0)
			return "sending MAIL FROM";
		if (c->nreplied <= c->norder)
			return "sending RCPT TO";
		return "sending DATA command";
	case SMTP_CLIENT_STATE_BODY:
		return "sending message body";
	case SMTP_CLIENT_STATE_DOT:
		return "sending end of data -- message may be sent more "
		    "than once";
	case SMTP_CLIENT_STATE_QUIT:
		return "sending QUIT";
	case SMTP_CLIENT_STATE_CLOSED:
		break;
	}
	return "closing";
}

/* The command a reply answers, for "(in reply to X)". */
static const char *
client_cmd(const struct smtp_client *c)
{
	switch (c->state) {
	case SMTP_CLIENT_STATE_EHLO:
		return c->o.lmtp ? "LHLO" : "EHLO";
	case SMTP_CLIENT_STATE_HELO:
		return "HELO";
	case SMTP_CLIENT_STATE_STARTTLS:
		return "STARTTLS";
	case SMTP_CLIENT_STATE_AUTH:
		return "AUTH";
	case SMTP_CLIENT_STATE_TXN:
		if (c->nreplied == 0)
			return "MAIL FROM";
		if (c->nreplied <= c->norder)
			return "RCPT TO";
		return "DATA";
	case SMTP_CLIENT_STATE_BODY:
	case SMTP_CLIENT_STATE_DOT:
		return "end of data";
	case SMTP_CLIENT_STATE_QUIT:
		return "QUIT";
	default:
		return "nothing";
	}
}

static int
step_timeout(const struct smtp_client *c)
{
	int	 t;

	switch (c->state) {
	case SMTP_CLIENT_STATE_CONNECT:
		return c->o.connect_timeout;
	case SMTP_CLIENT_STATE_BODY:
	case SMTP_CLIENT_STATE_DOT:
		return c->o.data_timeout;
	case SMTP_CLIENT_STATE_QUIT:
		t = c->o.command_timeout;
		return t < CLIENT_QUIT_WAIT ? t : CLIENT_QUIT_WAIT;
	case SMTP_CLIENT_STATE_CLOSED:
		return 0;
	default:
		return c->o.command_timeout;
	}
}

/* (Re)start the deadline of the current step. */
static void
client_arm(struct smtp_client *c)
{
	struct timeval tv = { step_timeout(c), 0 };

	evtimer_add(c->timer, &tv);
}

/* The only place that sets c->state. */
static void
client_enter(struct smtp_client *c, enum smtp_client_state st)
{
	log_debug("- smtpc state %s -> %s peer=%s",
	    smtp_client_state_name(c->state), smtp_client_state_name(st),
	    c->peer);
	c->state = st;
	client_arm(c);
}

static void
client_send(struct smtp_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
client_send(struct smtp_client *c, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

/* ---- results ------------------------------------------------------ */

/* snprintf for diagnostics: cutting a long text short is fine there. */
static void
text_format(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
text_format(char *out, size_t cap, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	(void)vsnprintf(out, cap, fmt, ap);
	va_end(ap);
}


static enum smtp_client_result
result_of(int code)
{
	switch (smtp_resp_classify(code)) {
	case SMTP_RESP_SUCCESS:
		return SMTP_CLIENT_OK;
	case SMTP_RESP_PERMFAIL:
		return SMTP_CLIENT_PERM;
	default:
		return SMTP_CLIENT_TEMP;	/* 4xx, and protocol errors */
	}
}

static void
rcpt_set(struct smtp_client_rcpt *rc, enum smtp_client_result res,
    const struct smtp_resp *r)
{
	rc->result = res;
	rc->code = r->code;
	(void)snprintf(rc->enh, sizeof(rc->enh), "%s", r->enh);
	(void)smtp_resp_text(r, rc->text, sizeof(rc->text));
}

/* A result of our own making (no reply behind it: code 0). */
static void
rcpt_set_local(struct smtp_client_rcpt *rc, enum smtp_client_result res,
    const char *enh, const char *text)
{
	rc->result = res;
	rc->code = 0;
	(void)snprintf(rc->enh, sizeof(rc->enh), "%s", enh);
	text_format(rc->text, sizeof(rc->text), "%s", text);
}

/* Every rcpt without a result yet gets this one. */
static void
rcpt_set_pending(struct smtp_client *c, enum smtp_client_result res,
    const char *enh, const char *text)
{
	for (size_t i = 0; i < c->m->nrcpt; i++)
		if (c->m->rcpt[i].result == SMTP_CLIENT_PENDING)
			rcpt_set_local(&c->m->rcpt[i], res, enh, text);
}

/* "host X said: 550 5.1.1 text (in reply to RCPT TO)" for diag */
static void
reply_diag(const struct smtp_client *c, const struct smtp_resp *r,
    char *out, size_t cap)
{
	char	 text[CLIENT_DIAG_MAX];

	(void)smtp_resp_text(r, text, sizeof(text));
	if (c->state == SMTP_CLIENT_STATE_GREETING)
		text_format(out, cap, "host %s refused to talk to me: %03d%s%s "
		    "%s", c->peer, r->code, r->enh[0] ? " " : "", r->enh, text);
	else
		text_format(out, cap, "host %s said: %03d%s%s %s (in reply to "
		    "%s)", c->peer, r->code, r->enh[0] ? " " : "", r->enh,
		    text, client_cmd(c));
}

static void
client_set_status(struct smtp_client *c, enum smtp_client_status st,
    const char *fmt, va_list ap)
{
	c->st = st;
	(void)vsnprintf(c->diag, sizeof(c->diag), fmt, ap);
}

/*
 * Release the connection and schedule done() from the loop, so that no
 * caller up the stack sees c freed. The results are made consistent:
 * NEXT_HOST leaves every rcpt PENDING, DONE leaves none.
 */
static void
client_release(struct smtp_client *c)
{
	if (c->state == SMTP_CLIENT_STATE_CLOSED)
		return;
	if (c->bev != NULL && !c->keep) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	for (size_t i = 0; i < c->m->nrcpt; i++) {
		struct smtp_client_rcpt *rc = &c->m->rcpt[i];

		if (c->st == SMTP_CLIENT_NEXT_HOST)
			rcpt_set_local(rc, SMTP_CLIENT_PENDING, "", "");
		else if (rc->result == SMTP_CLIENT_PENDING)
			rcpt_set_local(rc, SMTP_CLIENT_TEMP, "4.4.2",
			    c->diag[0] ? c->diag : "delivery not finished");
	}
	free(c->chunk);
	c->chunk = NULL;
	client_enter(c, SMTP_CLIENT_STATE_CLOSED);
}

static void
client_close(struct smtp_client *c, enum smtp_client_status st,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
client_close(struct smtp_client *c, enum smtp_client_status st,
    const char *fmt, ...)
{
	va_list	 ap;

	if (c->state == SMTP_CLIENT_STATE_CLOSED)
		return;
	va_start(ap, fmt);
	client_set_status(c, st, fmt, ap);
	va_end(ap);
	client_release(c);
}

/* Say QUIT, wait a little for the 221, then close with st and diag. */
static void
client_quit(struct smtp_client *c, enum smtp_client_status st,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
client_quit(struct smtp_client *c, enum smtp_client_status st,
    const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	client_set_status(c, st, fmt, ap);
	va_end(ap);
	client_send(c, "QUIT\r\n");
	client_enter(c, SMTP_CLIENT_STATE_QUIT);
}

/*
 * Every final reply to the end of data is in: the transaction is over and
 * none is open. Keep the connection for the caller if it asked and the
 * peer is not closing it, else QUIT. diag as for client_quit().
 */
static void
client_finish(struct smtp_client *c, const char *diag)
{
	if (!c->o.park || c->peer_closing) {
		client_quit(c, SMTP_CLIENT_DONE, "%s", diag);
		return;
	}
	c->keep = true;
	client_close(c, SMTP_CLIENT_DONE, "%s", diag);
}

/* The kept connection broke or spoke before done(): hand out nothing. */
static void
client_unkeep(struct smtp_client *c)
{
	if (!c->keep)
		return;
	c->keep = false;
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
}

/*
 * The connection broke (what: "lost connection with", "conversation with
 * ... timed out"): before MAIL the next host may be tried; after it every
 * rcpt still open is TEMP (it may have been delivered: at-least-once).
 */
static void
client_broken(struct smtp_client *c, const char *what)
{
	char	 text[CLIENT_DIAG_MAX];

	if (c->state == SMTP_CLIENT_STATE_QUIT) {
		client_release(c);	/* the result is already known */
		return;
	}
	text_format(text, sizeof(text), what, c->peer, client_step(c));
	/* a kept connection lost before MAIL was answered: it had gone
	   stale while it waited, and nothing was delivered */
	if (!c->mail_sent || (c->reused && c->nreplied == 0 &&
	    c->state == SMTP_CLIENT_STATE_TXN)) {
		client_close(c, SMTP_CLIENT_NEXT_HOST, "%s", text);
		return;
	}
	rcpt_set_pending(c, SMTP_CLIENT_TEMP, "4.4.2", text);
	client_close(c, SMTP_CLIENT_DONE, "%s", text);
}

/* ---- transaction -------------------------------------------------- */

/* s holds a control character (or a space, unless space_ok). */
static bool
has_ctl(const char *s, bool space_ok)
{
	for (; *s != '\0'; s++) {
		unsigned char b = (unsigned char)*s;

		if (b < 0x20 || b == 0x7f || (b == ' ' && !space_ok))
			return true;
	}
	return false;
}

static void
send_mail(struct smtp_client *c)
{
	const struct smtp_client_msg *m = c->m;

	client_send(c, "MAIL FROM:<%s>", m->from);
	if (c->caps.size)			/* RFC 1870 */
		client_send(c, " SIZE=%" PRIu64, m->size);
	if (m->eightbit && c->caps.eightbitmime)	/* RFC 6152 */
		client_send(c, " BODY=8BITMIME");
	if (m->smtputf8)			/* RFC 6531 3.4 */
		client_send(c, " SMTPUTF8");
	if (c->caps.dsn) {			/* RFC 3461 4.3, 4.4 */
		if (m->ret == SMTP_RET_FULL)
			client_send(c, " RET=FULL");
		else if (m->ret == SMTP_RET_HDRS)
			client_send(c, " RET=HDRS");
		if (m->envid != NULL && m->envid[0] != '\0')
			client_send(c, " ENVID=%s", m->envid);
	}
	client_send(c, "\r\n");
	c->mail_sent = true;
	c->nsent++;
}

static void
send_rcpt(struct smtp_client *c, size_t i)
{
	const struct smtp_client_rcpt *rc = &c->m->rcpt[i];

	client_send(c, "RCPT TO:<%s>", rc->addr);
	if (c->caps.dsn && rc->notify != 0) {	/* RFC 3461 4.1 */
		if (rc->notify & SMTP_NOTIFY_NEVER)
			client_send(c, " NOTIFY=NEVER");
		else
			client_send(c, " NOTIFY=%s%s%s%s%s",
			    rc->notify & SMTP_NOTIFY_SUCCESS ? "SUCCESS" : "",
			    (rc->notify & SMTP_NOTIFY_SUCCESS) &&
			    (rc->notify & (SMTP_NOTIFY_FAILURE |
			    SMTP_NOTIFY_DELAY)) ? "," : "",
			    rc->notify & SMTP_NOTIFY_FAILURE ? "FAILURE" : "",
			    (rc->notify & SMTP_NOTIFY_FAILURE) &&
			    (rc->notify & SMTP_NOTIFY_DELAY) ? "," : "",
			    rc->notify & SMTP_NOTIFY_DELAY ? "DELAY" : "");
	}
	if (c->caps.dsn && rc->orcpt != NULL && rc->orcpt[0] != '\0')
		client_send(c, " ORCPT=%s", rc->orcpt);	/* RFC 3461 4.2 */
	client_send(c, "\r\n");
	c->nsent++;
}

static void
send_data(struct smtp_client *c)
{
	client_send(c, "DATA\r\n");
	c->nsent++;
}

/* After the greeting, EHLO, TLS and AUTH: check the peer, then MAIL. */
static void
txn_start(struct smtp_client *c)
{
	struct smtp_client_msg *m = c->m;
	char	 text[SMTP_CLIENT_TEXT_MAX];

	/* no CR, LF or other control may smuggle a command into the line */
	if (has_ctl(m->from, true) || (m->envid != NULL &&
	    has_ctl(m->envid, false))) {
		rcpt_set_pending(c, SMTP_CLIENT_PERM, "5.1.7", "invalid sender "
		    "address or ENVID: not sent");
		client_quit(c, SMTP_CLIENT_DONE, "invalid sender or ENVID");
		return;
	}
	c->order = xcalloc(m->nrcpt, sizeof(*c->order));
	for (size_t i = 0; i < m->nrcpt; i++) {
		if (has_ctl(m->rcpt[i].addr, true) || (m->rcpt[i].orcpt !=
		    NULL && has_ctl(m->rcpt[i].orcpt, false)))
			rcpt_set_local(&m->rcpt[i], SMTP_CLIENT_PERM, "5.1.3",
			    "invalid recipient address or ORCPT: not sent");
		else
			c->order[c->norder++] = i;
	}
	if (c->norder == 0) {
		client_quit(c, SMTP_CLIENT_DONE, "no recipients");
		return;
	}
	m->peer_dsn = c->caps.dsn;	/* RFC 3461 5.2.2: who notifies */
	if (c->caps.size && c->caps.size_max != 0 &&
	    m->size > c->caps.size_max) {
		/* RFC 1870 6: do not send what the peer said it refuses */
		text_format(text, sizeof(text), "message too big for peer: "
		    "%" PRIu64 " bytes, host %s accepts %" PRIu64, m->size,
		    c->peer, c->caps.size_max);
		rcpt_set_pending(c, SMTP_CLIENT_PERM, "5.3.4", text);
		client_quit(c, SMTP_CLIENT_DONE, "%s", text);
		return;
	}
	if (m->smtputf8 && !c->caps.smtputf8) {
		/* RFC 6531 3.4: no downgrade; reject */
		text_format(text, sizeof(text), "message needs SMTPUTF8 "
		    "(internationalized address or header) but host %s does "
		    "not support it", c->peer);
		rcpt_set_pending(c, SMTP_CLIENT_PERM, "5.6.7", text);
		client_quit(c, SMTP_CLIENT_DONE, "%s", text);
		return;
	}
	/*
	 * An 8-bit body to a peer without 8BITMIME is sent as it is rather
	 * than converted or bounced (RFC 6152 3 allows either): most servers
	 * pass 8-bit data through, and a bounce would lose more mail.
	 */
	c->acc = xcalloc(c->norder, sizeof(*c->acc));
	client_enter(c, SMTP_CLIENT_STATE_TXN);
	send_mail(c);
	if (c->caps.pipelining) {
		/* RFC 2920 3.1: MAIL, RCPTs and DATA in one write */
		for (size_t k = 0; k < c->norder; k++)
			send_rcpt(c, c->order[k]);
		send_data(c);
	}
}

static void
body_start(struct smtp_client *c)
{
	client_enter(c, SMTP_CLIENT_STATE_BODY);
	c->chunk = xmalloc(CLIENT_CHUNK);
	c->off = c->m->body_off;
	c->bol = true;
	c->cr = false;
	/* the write callback refills below the low-water mark */
	bufferevent_setwatermark(c->bev, EV_WRITE, CLIENT_OUT_LWM, 0);
	body_fill(c);
}

/* One reply in the TXN state: MAIL, a RCPT or DATA, in that order. */
static void
txn_reply(struct smtp_client *c, const struct smtp_resp *r)
{
	struct smtp_client_msg *m = c->m;
	size_t	 k = c->nreplied;
	char	 diag[CLIENT_DIAG_MAX];

	reply_diag(c, r, diag, sizeof(diag));
	c->nreplied++;
	if (k == 0 && c->reused && r->code == 421) {
		/* the kept connection is being closed: nothing was sent */
		client_close(c, SMTP_CLIENT_NEXT_HOST, "%s", diag);
		return;
	}
	if (k == 0) {					/* MAIL */
		if (smtp_resp_classify(r->code) != SMTP_RESP_SUCCESS) {
			c->mail_failed = true;
			for (size_t j = 0; j < c->norder; j++)
				rcpt_set(&m->rcpt[c->order[j]],
				    result_of(r->code), r);
			if (!c->caps.pipelining)
				client_quit(c, SMTP_CLIENT_DONE, "%s", diag);
			/* pipelined: the RCPT and DATA replies follow */
			return;
		}
		if (!c->caps.pipelining)
			send_rcpt(c, c->order[0]);
		return;
	}
	if (k <= c->norder) {				/* RCPT */
		size_t	 i = c->order[k - 1];

		if (!c->mail_failed) {
			if (smtp_resp_classify(r->code) == SMTP_RESP_SUCCESS)
				c->acc[c->nacc++] = i;
			else
				rcpt_set(&m->rcpt[i], result_of(r->code), r);
		}
		if (c->caps.pipelining)
			return;
		if (k < c->norder)
			send_rcpt(c, c->order[k]);
		else if (c->nacc > 0)
			send_data(c);
		else
			client_quit(c, SMTP_CLIENT_DONE, "no recipient "
			    "accepted by host %s", c->peer);
		return;
	}
	/* DATA */
	if (r->code == 354) {
		if (!c->mail_failed && c->nacc > 0) {
			body_start(c);
			return;
		}
		/* RFC 2920 3.1: a 354 with nobody to send to: end it empty */
		client_send(c, ".\r\n");
		if (c->o.lmtp) {
			/* LMTP answers once per accepted rcpt: never */
			client_quit(c, SMTP_CLIENT_DONE, "no recipient "
			    "accepted by host %s", c->peer);
			return;
		}
		c->lone_dot = true;
		client_enter(c, SMTP_CLIENT_STATE_DOT);
		return;
	}
	if (!c->mail_failed)
		for (size_t i = 0; i < c->nacc; i++)
			rcpt_set(&m->rcpt[c->acc[i]],
			    r->code / 100 == 5 ? SMTP_CLIENT_PERM :
			    SMTP_CLIENT_TEMP, r);
	client_quit(c, SMTP_CLIENT_DONE, "%s", c->nacc > 0 ? diag : "");
}

/* The final reply (SMTP), or the next per-rcpt one (LMTP). */
static void
dot_reply(struct smtp_client *c, const struct smtp_resp *r)
{
	struct smtp_client_msg *m = c->m;
	char	 diag[CLIENT_DIAG_MAX];

	if (c->lone_dot) {
		client_quit(c, SMTP_CLIENT_DONE, "no recipient accepted by "
		    "host %s", c->peer);
		return;
	}
	reply_diag(c, r, diag, sizeof(diag));
	if (c->o.lmtp) {
		/* RFC 2033 4.2: one reply per accepted rcpt, in RCPT order */
		rcpt_set(&m->rcpt[c->acc[c->nfinal++]], result_of(r->code), r);
		if (c->nfinal == c->nacc)
			client_finish(c, "");
		else
			client_arm(c);
		return;
	}
	for (size_t i = 0; i < c->nacc; i++)
		rcpt_set(&m->rcpt[c->acc[i]], result_of(r->code), r);
	client_finish(c, result_of(r->code) == SMTP_CLIENT_OK ? "" : diag);
}

/* ---- body --------------------------------------------------------- */

/*
 * Copy len bytes of the stored message to out, dot-stuffed (RFC 5321
 * 4.5.2). Only CRLF ends a line; a bare CR or LF is sent as CRLF (RFC
 * 5321 2.3.8 forbids sending them, and a receiver that took a bare LF for
 * a line end could be fed a smuggled end of data). out has room for
 * 2 * len + 2 bytes: every byte yields at most two, plus a held-back CR.
 */
static size_t
body_stuff(struct smtp_client *c, const char *in, size_t len, char *out)
{
	size_t	 o = 0;

	for (size_t i = 0; i < len; i++) {
		char	 b = in[i];

		if (c->cr) {
			c->cr = false;
			out[o++] = '\r';
			out[o++] = '\n';
			c->bol = true;
			if (b == '\n')
				continue;
			/* the CR was bare: it ended a line all the same */
		}
		if (b == '\r') {
			c->cr = true;
			continue;
		}
		if (b == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			c->bol = true;
			continue;
		}
		if (c->bol && b == '.')
			out[o++] = '.';
		out[o++] = b;
		c->bol = false;
	}
	return o;
}

/* A local failure mid-DATA: close without the end of data. */
static void
body_fail(struct smtp_client *c, const char *what, int err)
{
	char	 text[CLIENT_DIAG_MAX];

	text_format(text, sizeof(text), "local error: %s: %s", what,
	    strerror(err));
	rcpt_set_pending(c, SMTP_CLIENT_TEMP, "4.3.0", text);
	client_close(c, SMTP_CLIENT_DONE, "%s", text);
}

/*
 * Queue body bytes until the output holds CLIENT_OUT_LWM or the message
 * is out: never more than one chunk past the mark is in memory.
 */
static void
body_fill(struct smtp_client *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct evbuffer_iovec v;
	ssize_t	 n;

	while (evbuffer_get_length(out) < CLIENT_OUT_LWM) {
		n = pread(c->m->fd, c->chunk, CLIENT_CHUNK, c->off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			body_fail(c, "read spool file", errno);
			return;
		}
		if (n == 0)
			break;
		c->off += n;
		if (evbuffer_reserve_space(out, 2 * (size_t)n + 2, &v, 1) < 1) {
			body_fail(c, "evbuffer_reserve_space", ENOMEM);
			return;
		}
		v.iov_len = body_stuff(c, c->chunk, (size_t)n, v.iov_base);
		if (evbuffer_commit_space(out, &v, 1) == -1) {
			body_fail(c, "evbuffer_commit_space", ENOMEM);
			return;
		}
	}
	if (evbuffer_get_length(out) >= CLIENT_OUT_LWM)
		return;		/* more later, from the write callback */
	/* end of the file: end the last line if need be, then the dot */
	if (c->cr || !c->bol)
		client_send(c, "\r\n");
	client_send(c, ".\r\n");
	free(c->chunk);
	c->chunk = NULL;
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	client_enter(c, SMTP_CLIENT_STATE_DOT);
}

/* ---- greeting, EHLO, TLS, AUTH ------------------------------------- */

static void
send_hello(struct smtp_client *c)
{
	client_send(c, "%s %s\r\n", c->o.lmtp ? "LHLO" : "EHLO", c->o.helo);
	client_enter(c, SMTP_CLIENT_STATE_EHLO);
}

/* peer_name is a host name (for SNI), not an address literal. */
static bool
is_host_name(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return s != NULL && s[0] != '\0' && s[0] != '[' &&
	    inet_pton(AF_INET, s, buf) != 1 && inet_pton(AF_INET6, s, buf) != 1;
}

/* The 220 to STARTTLS came: wrap the connection (RFC 3207 4). */
static void
tls_start(struct smtp_client *c)
{
	struct bufferevent *tls, *sock = c->bev;
	SSL	*ssl;

	/*
	 * Whatever came after the 220 was sent in plaintext and must not be
	 * read as if it came under TLS (response injection, CVE-2011-0411).
	 */
	evbuffer_drain(bufferevent_get_input(sock),
	    evbuffer_get_length(bufferevent_get_input(sock)));
	if ((ssl = SSL_new(c->o.ssl_ctx)) == NULL) {
		ERR_clear_error();
		client_close(c, SMTP_CLIENT_NEXT_HOST, "cannot set up TLS for "
		    "host %s", c->peer);
		return;
	}
	if (is_host_name(c->o.peer_name)) {
		(void)SSL_set_tlsext_host_name(ssl, c->o.peer_name);
		/* used only if the context verifies (required TLS) */
		(void)SSL_set1_host(ssl, c->o.peer_name);
	}
	if (c->o.tls == SMTP_CLIENT_TLS_OPPORTUNISTIC)
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL); /* RFC 3207 4.1 */
	tls = bufferevent_openssl_filter_new(c->base, sock, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		SSL_free(ssl);
		ERR_clear_error();
		client_close(c, SMTP_CLIENT_NEXT_HOST, "cannot set up TLS for "
		    "host %s", c->peer);
		return;
	}
	/* a clean close after QUIT need not carry a close_notify */
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	/* the filter stops writing records while the socket holds this */
	bufferevent_setwatermark(sock, EV_WRITE, 0, CLIENT_SOCK_HWM);
	bufferevent_setwatermark(sock, EV_READ, 0, 0);
	c->bev = tls;
	bufferevent_setcb(tls, client_read_cb, client_write_cb,
	    client_event_cb, c);
	client_enter(c, SMTP_CLIENT_STATE_TLS);
}

static void
auth_start(struct smtp_client *c)
{
	size_t	 ulen = strlen(c->o.auth_user), plen = strlen(c->o.auth_pass);
	size_t	 rawlen = ulen + plen + 2;
	unsigned char *raw, *b64;

	client_enter(c, SMTP_CLIENT_STATE_AUTH);
	if (c->caps.auth & SMTP_CLIENT_AUTH_PLAIN) {
		/* RFC 4616 2: authzid NUL authcid NUL passwd; RFC 4954 4:
		   as the initial response */
		raw = xmalloc(rawlen);
		raw[0] = '\0';
		memcpy(raw + 1, c->o.auth_user, ulen);
		raw[ulen + 1] = '\0';
		memcpy(raw + ulen + 2, c->o.auth_pass, plen);
		b64 = xmalloc(4 * ((rawlen + 2) / 3) + 1);
		EVP_EncodeBlock(b64, raw, (int)rawlen);
		client_send(c, "AUTH PLAIN %s\r\n", (char *)b64);
		OPENSSL_cleanse(raw, rawlen);
		OPENSSL_cleanse(b64, strlen((char *)b64));
		free(raw);
		free(b64);
		return;
	}
	if (c->caps.auth & SMTP_CLIENT_AUTH_LOGIN) {
		c->login = true;
		client_send(c, "AUTH LOGIN\r\n");
		return;
	}
	client_quit(c, SMTP_CLIENT_NEXT_HOST, "host %s offers no AUTH "
	    "mechanism we can use (PLAIN, LOGIN)", c->peer);
}

static void
auth_reply(struct smtp_client *c, const struct smtp_resp *r)
{
	const char *s;
	unsigned char *b64;
	size_t	 len;
	char	 diag[CLIENT_DIAG_MAX];

	if (r->code == 235) {
		c->authed = true;
		client_after_hello(c);
		return;
	}
	if (r->code == 334 && c->login && c->auth_step < 2) {
		/* the server's prompts ("Username:", "Password:") in order */
		s = c->auth_step++ == 0 ? c->o.auth_user : c->o.auth_pass;
		len = strlen(s);
		b64 = xmalloc(4 * ((len + 2) / 3) + 1);
		EVP_EncodeBlock(b64, (const unsigned char *)s, (int)len);
		client_send(c, "%s\r\n", (char *)b64);
		OPENSSL_cleanse(b64, strlen((char *)b64));
		free(b64);
		client_arm(c);
		return;
	}
	if (r->code == 334)
		client_send(c, "*\r\n");	/* RFC 4954 4: cancel */
	reply_diag(c, r, diag, sizeof(diag));
	client_quit(c, SMTP_CLIENT_NEXT_HOST, "authentication failed: %s",
	    diag);
}

/* After a successful EHLO/HELO (and TLS, AUTH): what comes next. */
static void
client_after_hello(struct smtp_client *c)
{
	bool	 want_tls = c->o.tls != SMTP_CLIENT_TLS_NONE;

	if (!c->tls && want_tls && c->o.ssl_ctx != NULL && c->caps.starttls &&
	    !c->tls_refused) {
		client_send(c, "STARTTLS\r\n");
		client_enter(c, SMTP_CLIENT_STATE_STARTTLS);
		return;
	}
	if (!c->tls && c->o.tls == SMTP_CLIENT_TLS_REQUIRED) {
		client_quit(c, SMTP_CLIENT_NEXT_HOST, "TLS is required, but %s",
		    c->o.ssl_ctx == NULL ? "no TLS client context is set up" :
		    "the host does not offer STARTTLS");
		return;
	}
	if (c->o.auth_user != NULL && !c->authed) {
		if (!c->tls) {
			/* never send a password in the clear */
			client_quit(c, SMTP_CLIENT_NEXT_HOST, "AUTH requires "
			    "TLS, and TLS is not up with host %s", c->peer);
			return;
		}
		auth_start(c);
		return;
	}
	txn_start(c);
}

static void
hello_reply(struct smtp_client *c, const struct smtp_resp *r)
{
	char	 diag[CLIENT_DIAG_MAX];

	if (r->code == 250) {
		if (c->state == SMTP_CLIENT_STATE_EHLO)
			(void)smtp_client_caps_parse(r, &c->caps);
		else
			memset(&c->caps, 0, sizeof(c->caps));
		client_after_hello(c);
		return;
	}
	/* RFC 5321 3.2: an old server may know only HELO (not LMTP) */
	if (c->state == SMTP_CLIENT_STATE_EHLO && !c->o.lmtp && !c->tls &&
	    r->code / 100 == 5) {
		client_send(c, "HELO %s\r\n", c->o.helo);
		client_enter(c, SMTP_CLIENT_STATE_HELO);
		return;
	}
	reply_diag(c, r, diag, sizeof(diag));
	client_quit(c, SMTP_CLIENT_NEXT_HOST, "%s", diag);
}

/* ---- I/O ---------------------------------------------------------- */

static void
client_reply(struct smtp_client *c, const struct smtp_resp *r)
{
	char	 diag[CLIENT_DIAG_MAX];

	log_debug("- smtpc reply %03d state=%s peer=%s", r->code,
	    smtp_client_state_name(c->state), c->peer);
	if (r->code == 421)
		c->peer_closing = true;	/* never keep this connection */
	switch (c->state) {
	case SMTP_CLIENT_STATE_GREETING:
		if (r->code == 220) {
			send_hello(c);
			return;
		}
		reply_diag(c, r, diag, sizeof(diag));
		/* RFC 5321 3.1: after a 554 greeting the client sends QUIT */
		client_quit(c, SMTP_CLIENT_NEXT_HOST, "%s", diag);
		return;
	case SMTP_CLIENT_STATE_EHLO:
	case SMTP_CLIENT_STATE_HELO:
		hello_reply(c, r);
		return;
	case SMTP_CLIENT_STATE_STARTTLS:
		if (r->code == 220) {
			tls_start(c);
			return;
		}
		reply_diag(c, r, diag, sizeof(diag));
		if (c->o.tls == SMTP_CLIENT_TLS_REQUIRED) {
			client_quit(c, SMTP_CLIENT_NEXT_HOST, "TLS is "
			    "required, but %s", diag);
			return;
		}
		c->tls_refused = true;	/* RFC 3207 4.1: go on in clear */
		client_after_hello(c);
		return;
	case SMTP_CLIENT_STATE_AUTH:
		auth_reply(c, r);
		return;
	case SMTP_CLIENT_STATE_TXN:
		if (c->nreplied >= c->nsent) {
			client_broken(c, "unexpected reply from %s while %s");
			return;
		}
		txn_reply(c, r);
		if (c->state == SMTP_CLIENT_STATE_TXN)
			client_arm(c);		/* progress */
		return;
	case SMTP_CLIENT_STATE_BODY:
		/*
		 * A reply before the end of data: the server gave up on the
		 * message (e.g. 552 too big, 421 shutting down). Its word is
		 * final for every accepted rcpt, but never a success.
		 */
		for (size_t i = 0; i < c->nacc; i++)
			rcpt_set(&c->m->rcpt[c->acc[i]],
			    r->code / 100 == 5 ? SMTP_CLIENT_PERM :
			    SMTP_CLIENT_TEMP, r);
		reply_diag(c, r, diag, sizeof(diag));
		client_close(c, SMTP_CLIENT_DONE, "%s", diag);
		return;
	case SMTP_CLIENT_STATE_DOT:
		dot_reply(c, r);
		return;
	case SMTP_CLIENT_STATE_QUIT:
		client_release(c);
		return;
	default:
		return;
	}
}

static bool
takes_replies(enum smtp_client_state st)
{
	return st != SMTP_CLIENT_STATE_CONNECT && st != SMTP_CLIENT_STATE_TLS &&
	    st != SMTP_CLIENT_STATE_CLOSED;
}

/* Take every complete reply in the input, in order. */
static void
client_read(struct smtp_client *c)
{
	struct evbuffer *in;
	struct smtp_resp r;
	const char *p;
	size_t	 len, used;
	int	 rc;

	while (c->bev != NULL && takes_replies(c->state)) {
		in = bufferevent_get_input(c->bev);
		if ((len = evbuffer_get_length(in)) == 0)
			return;
		if (len > CLIENT_REPLY_BYTES)
			len = CLIENT_REPLY_BYTES; /* the parser says LONG */
		p = (const char *)evbuffer_pullup(in, (ssize_t)len);
		rc = smtp_resp_parse(p, len, CLIENT_REPLY_LINES,
		    CLIENT_REPLY_BYTES, &r, &used);
		if (rc == SMTP_RESP_PARSE_MORE)
			return;
		if (rc != SMTP_RESP_PARSE_OK) {
			client_broken(c, rc == SMTP_RESP_PARSE_LONG ?
			    "reply too long from %s while %s" :
			    "malformed reply from %s while %s");
			return;
		}
		client_reply(c, &r);
		/* STARTTLS drained the old input, and the filter has its own */
		if (c->bev != NULL && bufferevent_get_input(c->bev) == in)
			evbuffer_drain(in, used);
	}
}

static void
client_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;

	(void)bev;
	if (c->state == SMTP_CLIENT_STATE_CLOSED) {
		client_unkeep(c);	/* nothing may follow the last reply */
		return;
	}
	client_read(c);
}

static void
client_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_client *c = arg;

	(void)bev;
	if (c->state != SMTP_CLIENT_STATE_BODY)
		return;
	client_arm(c);		/* the peer is taking data: progress */
	body_fill(c);
}

static void
client_tls_ready(struct smtp_client *c)
{
	tls_describe(bufferevent_openssl_get_ssl(c->bev), c->tls_info,
	    sizeof(c->tls_info));
	c->tls = true;
	/* RFC 3207 4.2: forget what was learnt before TLS, greet again */
	memset(&c->caps, 0, sizeof(c->caps));
	bufferevent_setwatermark(c->bev, EV_READ, 0, CLIENT_REPLY_BYTES);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	log_debug("- smtpc tls \"%s\" peer=%s", c->tls_info, c->peer);
	send_hello(c);
}

static void
client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_client *c = arg;
	unsigned long e;
	int	 err = errno;

	if (c->state == SMTP_CLIENT_STATE_CLOSED) {
		ERR_clear_error();
		client_unkeep(c);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == SMTP_CLIENT_STATE_CONNECT) {
			client_enter(c, SMTP_CLIENT_STATE_GREETING);
			/* the greeting may have been read with the connect */
			client_read(c);
		} else if (c->state == SMTP_CLIENT_STATE_TLS)
			client_tls_ready(c);
		return;
	}
	if (c->state == SMTP_CLIENT_STATE_CONNECT) {
		client_close(c, SMTP_CLIENT_NEXT_HOST, "connect to %s: %s",
		    c->peer, err != 0 ? strerror(err) : "connection failed");
		return;
	}
	if (c->state == SMTP_CLIENT_STATE_TLS) {
		e = (what & BEV_EVENT_ERROR) ?
		    bufferevent_get_openssl_error(bev) : 0;
		client_close(c, SMTP_CLIENT_NEXT_HOST, "TLS handshake with %s "
		    "failed: %s", c->peer, e != 0 ?
		    ERR_reason_error_string(e) : "connection closed");
		ERR_clear_error();
		return;
	}
	if (what & BEV_EVENT_EOF)
		client_read(c);		/* a last reply may be waiting */
	if (c->state == SMTP_CLIENT_STATE_CLOSED)
		return;
	if (what & BEV_EVENT_ERROR)
		while (bufferevent_get_openssl_error(bev) != 0)
			;		/* drop them: the text says enough */
	ERR_clear_error();
	client_broken(c, "lost connection with %s while %s");
}

/*
 * Say QUIT on an idle connection now, without waiting for the 221: what
 * the socket takes at once is sent, the rest is dropped with bev. Under
 * TLS the filter encrypts as the line is added (bufferevent_openssl), so
 * the socket's output then holds the record. Sent with send(): the
 * bufferevent writes only from the loop.
 */
static void
quit_now(struct bufferevent *bev)
{
	struct bufferevent *sock = bufferevent_get_underlying(bev);
	struct evbuffer *out;
	size_t	 len;

	if (sock == NULL)
		sock = bev;
	if (evbuffer_add(bufferevent_get_output(bev), "QUIT\r\n", 6) == -1)
		return;
	out = bufferevent_get_output(sock);
	if ((len = evbuffer_get_length(out)) == 0)
		return;
	(void)send(bufferevent_getfd(sock), evbuffer_pullup(out, -1), len,
	    MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* The settings and the connection's strings and reference. */
static void
opts_fini(struct smtp_client_opts *o)
{
	free((char *)o->helo);
	free((char *)o->peer_name);
	free((char *)o->auth_user);
	if (o->auth_pass != NULL) {
		OPENSSL_cleanse((char *)o->auth_pass, strlen(o->auth_pass));
		free((char *)o->auth_pass);
	}
	if (o->ssl_ctx != NULL)
		SSL_CTX_free(o->ssl_ctx);
	memset(o, 0, sizeof(*o));
}

static void
client_free(struct smtp_client *c)
{
	if (c->bev != NULL) {
		if (c->keep)	/* kept, and the caller did not take it */
			quit_now(c->bev);
		bufferevent_free(c->bev);
	}
	event_free(c->timer);
	free(c->acc);
	free(c->order);
	free(c->chunk);
	opts_fini(&c->o);
	free(c);
}

static void
client_run_done(struct smtp_client *c)
{
	c->in_done = true;
	log_debug("- smtpc done status=%s peer=%s",
	    c->st == SMTP_CLIENT_DONE ? "done" : "next_host", c->peer);
	c->done(c->arg, c->st, c->diag,
	    c->tls_info[0] != '\0' ? c->tls_info : NULL);
	client_free(c);
}

static void
client_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_client *c = arg;

	(void)fd;
	(void)what;
	switch (c->state) {
	case SMTP_CLIENT_STATE_CLOSED:
		client_run_done(c);
		return;
	case SMTP_CLIENT_STATE_CONNECT:
		client_close(c, SMTP_CLIENT_NEXT_HOST, "connect to %s: timed "
		    "out", c->peer);
		return;
	case SMTP_CLIENT_STATE_QUIT:
		client_release(c);
		return;
	default:
		client_broken(c, "conversation with %s timed out while %s");
		return;
	}
}

/* "name[addr]:port" or "[addr]:port" for diagnostics. */
static void
peer_format(const struct sockaddr *sa, socklen_t salen, const char *name,
    char *out, size_t cap)
{
	char	 host[NI_MAXHOST], port[NI_MAXSERV];

	if (getnameinfo(sa, salen, host, sizeof(host), port, sizeof(port),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		(void)snprintf(host, sizeof(host), "?");
		(void)snprintf(port, sizeof(port), "?");
	}
	text_format(out, cap, "%s[%s]:%s", name != NULL &&
	    strcmp(name, host) != 0 ? name : "", host, port);
}

static int
timeout_or(int t, int dflt)
{
	return t > 0 ? t : dflt;
}

struct smtp_client *
smtp_client_start(struct event_base *base, const struct sockaddr *sa,
    socklen_t salen, const struct smtp_client_opts *o,
    struct smtp_client_msg *m, smtp_client_done_cb done, void *arg)
{
	struct smtp_client *c;
	int	 fd, err;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		err = errno;
		(void)close(fd);
		free(c);
		errno = err != 0 ? err : ENOMEM;
		return NULL;
	}
	c->base = base;
	c->timer = evtimer_new(base, client_timer_cb, c);
	if (c->timer == NULL)
		log_fatal("- smtpc evtimer_new failed");
	c->o = *o;
	c->o.helo = xstrdup(o->helo != NULL ? o->helo : "localhost");
	c->o.peer_name = o->peer_name != NULL ? xstrdup(o->peer_name) : NULL;
	c->o.auth_user = o->auth_user != NULL ? xstrdup(o->auth_user) : NULL;
	c->o.auth_pass = xstrdup(o->auth_pass != NULL ? o->auth_pass : "");
	if (c->o.ssl_ctx != NULL)
		SSL_CTX_up_ref(c->o.ssl_ctx);
	c->o.connect_timeout = timeout_or(o->connect_timeout,
	    CLIENT_CONNECT_DEFAULT);
	c->o.command_timeout = timeout_or(o->command_timeout,
	    CLIENT_COMMAND_DEFAULT);
	c->o.data_timeout = timeout_or(o->data_timeout, CLIENT_DATA_DEFAULT);
	c->m = m;
	c->done = done;
	c->arg = arg;
	for (size_t i = 0; i < m->nrcpt; i++)
		rcpt_set_local(&m->rcpt[i], SMTP_CLIENT_PENDING, "", "");
	peer_format(sa, salen, o->peer_name, c->peer, sizeof(c->peer));

	bufferevent_setcb(c->bev, client_read_cb, client_write_cb,
	    client_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CLIENT_REPLY_BYTES);
	c->state = SMTP_CLIENT_STATE_CONNECT;
	client_arm(c);
	if (bufferevent_socket_connect(c->bev, sa, (int)salen) == -1) {
		/* done() never runs inside start: report from the loop */
		err = errno;
		client_close(c, SMTP_CLIENT_NEXT_HOST, "connect to %s: %s",
		    c->peer, strerror(err));
		return c;
	}
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return c;
}

void
smtp_client_abort(struct smtp_client *c)
{
	if (c == NULL || c->in_done)
		return;
	if (c->state != SMTP_CLIENT_STATE_CLOSED)
		client_close(c, SMTP_CLIENT_NEXT_HOST, "aborted");
	event_del(c->timer);
	client_run_done(c);
}

/* ---- kept connections --------------------------------------------- */

/* Report conn gone once; closed: the peer ended it (no QUIT then). */
static void
conn_gone(struct smtp_client_conn *conn, bool closed, const char *why)
{
	if (conn->gone)
		return;
	conn->gone = true;
	conn->closed = closed;
	event_del(conn->timer);
	if (closed)
		bufferevent_disable(conn->bev, EV_READ | EV_WRITE);
	log_debug("- smtpc kept connection %s peer=%s", why, conn->peer);
	conn->gone_cb(conn->arg, conn);		/* may free conn */
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	/* an idle peer speaks only to say it is closing (421) */
	conn_gone(arg, true, "spoke out of turn");
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	ERR_clear_error();
	conn_gone(arg, true, "closed by the peer");
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_gone(arg, false, "idle too long");
}

struct smtp_client_conn *
smtp_client_take_conn(struct smtp_client *c, int idle,
    smtp_client_conn_cb gone, void *arg)
{
	struct smtp_client_conn *conn;
	struct timeval tv = { idle, 0 };

	if (c == NULL || !c->in_done || !c->keep || c->bev == NULL)
		return NULL;
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) != 0) {
		client_unkeep(c);	/* more than the last reply came */
		return NULL;
	}
	conn = xcalloc(1, sizeof(*conn));
	conn->base = c->base;
	conn->bev = c->bev;
	c->bev = NULL;
	c->keep = false;
	conn->o = c->o;				/* its strings move too */
	memset(&c->o, 0, sizeof(c->o));
	memcpy(conn->peer, c->peer, sizeof(conn->peer));
	conn->caps = c->caps;
	conn->tls = c->tls;
	conn->authed = c->authed;
	memcpy(conn->tls_info, c->tls_info, sizeof(conn->tls_info));
	conn->gone_cb = gone;
	conn->arg = arg;
	conn->timer = evtimer_new(conn->base, conn_timer_cb, conn);
	if (conn->timer == NULL)
		log_fatal("- smtpc evtimer_new failed");
	if (idle > 0)
		evtimer_add(conn->timer, &tv);
	bufferevent_setcb(conn->bev, conn_read_cb, NULL, conn_event_cb, conn);
	log_debug("- smtpc kept connection peer=%s idle=%d", conn->peer, idle);
	return conn;
}

struct smtp_client *
smtp_client_start_conn(struct smtp_client_conn *conn, bool park,
    struct smtp_client_msg *m, smtp_client_done_cb done, void *arg)
{
	struct smtp_client *c = xcalloc(1, sizeof(*c));

	assert(!conn->gone);
	c->base = conn->base;
	c->bev = conn->bev;
	conn->bev = NULL;
	c->o = conn->o;
	memset(&conn->o, 0, sizeof(conn->o));
	c->o.park = park;
	memcpy(c->peer, conn->peer, sizeof(c->peer));
	c->caps = conn->caps;
	c->tls = conn->tls;
	c->authed = conn->authed;
	memcpy(c->tls_info, conn->tls_info, sizeof(c->tls_info));
	smtp_client_conn_free(conn);		/* the empty shell */

	c->timer = evtimer_new(c->base, client_timer_cb, c);
	if (c->timer == NULL)
		log_fatal("- smtpc evtimer_new failed");
	c->m = m;
	c->done = done;
	c->arg = arg;
	c->reused = true;
	for (size_t i = 0; i < m->nrcpt; i++)
		rcpt_set_local(&m->rcpt[i], SMTP_CLIENT_PENDING, "", "");
	bufferevent_setcb(c->bev, client_read_cb, client_write_cb,
	    client_event_cb, c);
	c->state = SMTP_CLIENT_STATE_IDLE;
	/* RFC 5321 3.3: after a completed transaction MAIL may follow at
	   once; no RSET is needed */
	txn_start(c);
	return c;
}

void
smtp_client_conn_free(struct smtp_client_conn *conn)
{
	if (conn == NULL)
		return;
	if (conn->bev != NULL) {
		if (!conn->closed)
			quit_now(conn->bev);
		bufferevent_free(conn->bev);
	}
	event_free(conn->timer);
	opts_fini(&conn->o);
	free(conn);
}
