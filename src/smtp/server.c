/*
 * server.c: the SMTP server session (RFC 5321, with PIPELINING, SIZE,
 * 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, DSN and CHUNKING). One state
 * machine per connection, driven by libevent on the loop thread. Parsing
 * lives in parse.c and body.c; bytes reach the disk only through spool.c.
 */
#include "smtp/server.h"
#include "smtp/session.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "auth/sasl.h"
#include "auth/userdb.h"
#include "core/log.h"
#include "core/util.h"
#include "net/tls.h"
#include "queue/envelope.h"
#include "smtp/body.h"
#include "smtp/parse.h"
#include "smtp/reply.h"

const char *
smtp_sess_state_name(enum smtp_state st)
{
	static const char *const names[] = { "init", "ready", "mail", "rcpt",
	    "data", "bdat", "commit", "quit", "tls", "auth", "authwait" };

	return names[st];
}

/* The only place that assigns s->state. */
void
smtp_sess_enter(struct smtp_session *s, enum smtp_state st)
{
	const struct config *cfg = s->srv->cfg;
	struct timeval tv = { cfg->command_timeout, 0 };

	log_debug("- smtp state %s->%s sess=%" PRIx64, smtp_sess_state_name(s->state),
	    smtp_sess_state_name(st), s->id);
	s->state = st;
	if (st == SMTP_STATE_DATA || st == SMTP_STATE_BDAT)
		tv.tv_sec = cfg->data_timeout;
	else if (st == SMTP_STATE_TLS)
		tv.tv_sec = cfg->tls_handshake_timeout;
	if (s->bev != NULL)
		bufferevent_set_timeouts(s->bev, &tv, &tv);
}

static struct client_count **
client_slot(struct smtp_server *srv, const char *addr)
{
	uint32_t	 h = str_hash(addr);

	struct client_count **pp = &srv->clients[h % SMTP_CLIENT_BUCKETS];
	while (*pp != NULL && strcmp((*pp)->addr, addr) != 0)
		pp = &(*pp)->next;
	return pp;
}

void
smtp_sess_reply(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
{
	char	 text[1024], out[2048];
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	n = smtp_reply_format(out, sizeof(out), code, enh, text);
	if (n < 0) {
		/* our texts are bounded and fit: an impossible state */
		assert(!"reply does not fit");
		return;
	}
	if (code >= 500)
		s->errors++;
	evbuffer_add(bufferevent_get_output(s->bev), out, (size_t)n);
	if (s->plain && !s->flush_pending) {
		/* written after this callback, with any pipelined replies */
		s->flush_pending = true;
		event_active(s->flush_ev, EV_TIMEOUT, 1);
	}
}

/* Write the replies of a plain session now; libevent takes over only
   what the socket would not take. */
static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;
	struct evbuffer *out;

	(void)fd;
	(void)what;
	s->flush_pending = false;
	if (!s->plain)
		return;		/* STARTTLS since: libevent writes */
	out = bufferevent_get_output(s->bev);
	if (evbuffer_get_length(out) == 0)
		return;
	/* a socket bufferevent keeps its output's drain side frozen for
	   itself; its own write callback thaws it the same way */
	evbuffer_unfreeze(out, 1);
	(void)evbuffer_write(out, bufferevent_getfd(s->bev));
	evbuffer_freeze(out, 1);
	if (evbuffer_get_length(out) != 0) {
		/* full socket, or an error that libevent then reports */
		bufferevent_enable(s->bev, EV_WRITE);
		return;
	}
	smtp_sess_write_cb(s->bev, s);	/* as libevent would; may free s */
}

void
smtp_sess_log_reject(struct smtp_session *s, const char *cmd, int code,
    const char *enh, const char *what)
{
	log_info("- smtp reject cmd=%s reply=\"%d %s %s\" client=[%s] sess=%"
	    PRIx64, cmd, code, enh, what, s->addr, s->id);
}

void
smtp_sess_txn_reset(struct smtp_session *s)
{
	envelope_fini(&s->env);
	spool_msg_free(s->msg);
	s->msg = NULL;
	s->declared_size = 0;
	s->too_big = false;
	s->bdat_txn = false;
	s->bdat_last = false;
	s->bdat_fail = false;
	s->bdat_left = 0;
	s->hdr_len = 0;
	s->hdr_done = false;
	if (s->hdrbuf != NULL) {
		evbuffer_free(s->hdrbuf);
		s->hdrbuf = NULL;
	}
}

#define SMTP_LINGER_TICKS	500	/* x 10 ms: wait for TLS output */

/*
 * Free once every byte is out. Under STARTTLS the TLS filter hands its
 * records to the socket bufferevent below it, which may still hold them:
 * freeing now would drop the last reply (e.g. 221), so poll until it drains.
 */
static void
session_linger(struct smtp_session *s)
{
	struct bufferevent *u = bufferevent_get_underlying(s->bev);
	struct timeval tick = { 0, 10000 };

	if (u == NULL || evbuffer_get_length(bufferevent_get_output(u)) == 0 ||
	    ++s->linger > SMTP_LINGER_TICKS) {
		smtp_sess_free(s);
		return;
	}
	evtimer_add(s->close_ev, &tick);
}

static void
close_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	session_linger(arg);
}

/*
 * After the last reply: stop reading, flush, then free. Never frees s
 * before returning: callers may still look at it.
 */
void
smtp_sess_close(struct smtp_session *s)
{
	struct timeval now = { 0, 0 };

	bufferevent_disable(s->bev, EV_READ);
	smtp_sess_enter(s, SMTP_STATE_QUIT);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) != 0)
		return;		/* the write callback frees it */
	/* already flushed (e.g. an in-memory pair): free from the loop */
	evtimer_add(s->close_ev, &now);
}

void
smtp_sess_free(struct smtp_session *s)
{
	struct smtp_server *srv = s->srv;
	char	 counts[256];
	size_t	 o = 0;

	if (s->busy) {
		/* a worker job holds s: free when it comes back */
		s->dead = true;
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
		return;
	}
	counts[0] = '\0';
	for (int i = 0; i < CNT_MAX; i++) {
		if (s->counts[i] == 0)
			continue;
		int n = snprintf(counts + o, sizeof(counts) - o, "%s%s=%u",
		    o ? " " : "", cnt_names[i], s->counts[i]);
		if (n < 0 || (size_t)n >= sizeof(counts) - o)
			break;
		o += (size_t)n;
	}
	log_info("- smtp disconnect client=[%s]:%u %s%serrors=%d sess=%" PRIx64,
	    s->addr, s->port, counts, counts[0] ? " " : "", s->errors, s->id);

	struct client_count **pp = client_slot(srv, s->addr);
	if (*pp != NULL && --(*pp)->count == 0) {
		struct client_count *c = *pp;

		*pp = c->next;
		free(c);
	}
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	srv->nsessions--;

	smtp_sess_txn_reset(s);
	bufferevent_free(s->bev);
	if (s->delay_ev != NULL)
		event_free(s->delay_ev);
	if (s->close_ev != NULL)
		event_free(s->close_ev);
	if (s->flush_ev != NULL)
		event_free(s->flush_ev);
	if (s->sasl != NULL)
		sasl_free(s->sasl);
	free(s->auth_user);
	free(s->helo);
	free(s);
}

static bool
check_errors(struct smtp_session *s)
{
	if (s->errors < s->srv->cfg->max_errors)
		return false;
	smtp_sess_reply(s, 421, "4.7.0", "%s Error: too many errors",
	    s->srv->cfg->hostname);
	log_info("- smtp too many errors client=[%s] sess=%" PRIx64, s->addr,
	    s->id);
	smtp_sess_close(s);
	return true;
}

/* ---- commands ---------------------------------------------------- */

static void
cmd_helo(struct smtp_session *s, const struct smtp_cmd *c, bool esmtp)
{
	const struct config *cfg = s->srv->cfg;

	if (c->arg_len == 0) {
		smtp_sess_reply(s, 501, "5.5.4", "Syntax: %s hostname",
		    esmtp ? "EHLO" : "HELO");
		return;
	}
	if (!smtp_helo_valid(c->arg, c->arg_len)) {
		smtp_sess_reply(s, 501, "5.5.2", "Invalid domain name");
		return;
	}
	smtp_sess_txn_reset(s);
	free(s->helo);
	s->helo = xstrndup(c->arg, c->arg_len);
	s->esmtp = esmtp;
	smtp_sess_enter(s, SMTP_STATE_READY);
	log_info("- smtp helo name=%s client=[%s] sess=%" PRIx64, s->helo,
	    s->addr, s->id);
	if (!esmtp) {
		smtp_sess_reply(s, 250, NULL, "%s", cfg->hostname);
		return;
	}
	char	 auth[128] = "", *tlsline = "";

	if (s->tls) {
		unsigned char cb[32];

		/* -PLUS needs the tls-exporter binding (TLS 1.3) */
		snprintf(auth, sizeof(auth), "\nAUTH PLAIN LOGIN SCRAM-SHA-256%s",
		    tls_exporter_binding(bufferevent_openssl_get_ssl(s->bev),
		    cb) == 0 ? " SCRAM-SHA-256-PLUS" : "");
	} else if (s->srv->tls != NULL)
		tlsline = "\nSTARTTLS";
	smtp_sess_reply(s, 250, NULL, "%s\nPIPELINING\nSIZE %" PRIu64 "\n8BITMIME\n"
	    "SMTPUTF8\nENHANCEDSTATUSCODES\nDSN%s%s\nCHUNKING", cfg->hostname,
	    cfg->max_message_size, tlsline, auth);
}

/* The reply for a MAIL or RCPT argument the parser refused. */
static void
reply_parse_error(struct smtp_session *s, int rc, const char *addr_enh,
    const char *addr_text, const char *syntax_text)
{
	switch (rc) {
	case SMTP_PARSE_ADDR:
	case SMTP_PARSE_ADDR_LONG:
		smtp_sess_reply(s, 501, addr_enh, "%s", addr_text);
		break;
	case SMTP_PARSE_PARAM_UNKNOWN:
		smtp_sess_reply(s, 555, "5.5.4", "Unsupported option");
		break;
	case SMTP_PARSE_PARAM_SYNTAX:
		smtp_sess_reply(s, 501, "5.5.4", "Invalid parameter value");
		break;
	case SMTP_PARSE_UTF8:
		/* RFC 6531 3.7.4 */
		smtp_sess_reply(s, 553, "5.6.7", "SMTPUTF8 required for this "
		    "address");
		break;
	case SMTP_PARSE_BODY:
		smtp_sess_reply(s, 504, "5.5.4", "Unsupported BODY type");
		break;
	default:
		smtp_sess_reply(s, 501, "5.5.2", "%s", syntax_text);
		break;
	}
}

/*
 * May the logged-in user send as from? Its own address, an address whose
 * aliases lead to it, or one the sender map gives it (RFC 6409 8.1).
 */
static bool
sender_owned(const struct smtp_session *s, const char *from)
{
	struct strlist	 mb = { 0 }, rem = { 0 };
	char		 lower[SMTP_PATH_MAX + 1];
	const char	*v;
	bool		 ok = false;

	if (*from == '\0')
		return true;		/* bounces and notifications */
	snprintf(lower, sizeof(lower), "%s", from);
	str_lower(lower);
	if (strcmp(lower, s->auth_user) == 0)
		return true;
	if (local_resolve(s->srv->ldb, lower, &mb, &rem) == LOCAL_OK)
		ok = strlist_has(&mb, s->auth_user);
	strlist_free(&mb);
	strlist_free(&rem);
	if (ok || s->srv->sender_map == NULL)
		return ok;
	if ((v = table_get(s->srv->sender_map, lower)) == NULL)
		return false;
	/* "login, login, ..." */
	while (*v != '\0') {
		size_t	 n;

		v += strspn(v, ", \t");
		n = strcspn(v, ", \t");
		if (n > 0 && n == strlen(s->auth_user) &&
		    strncasecmp(v, s->auth_user, n) == 0)
			return true;
		v += n;
	}
	return false;
}

static void
cmd_mail(struct smtp_session *s, const struct smtp_cmd *c)
{
	struct smtp_mail_cmd m;
	const struct config *cfg = s->srv->cfg;
	char	 esc[600];
	int	 rc;

	if (s->state == SMTP_STATE_INIT) {
		smtp_sess_reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
		return;
	}
	if (s->state != SMTP_STATE_READY) {
		smtp_sess_reply(s, 503, "5.5.1", "Error: nested MAIL command");
		return;
	}
	if (s->kind != SMTP_PORT_MX && s->auth_user == NULL) {
		/* RFC 6409 4.3 */
		smtp_sess_reply(s, 530, "5.7.0", "Authentication required");
		return;
	}
	rc = smtp_parse_mail(c->arg, c->arg_len, &m);
	if (rc != SMTP_PARSE_OK) {
		reply_parse_error(s, rc, "5.1.7", "Bad sender address syntax",
		    "Syntax: MAIL FROM:<address>");
		return;
	}
	if (m.has_size && m.size > cfg->max_message_size) {
		smtp_sess_reply(s, 552, "5.3.4",
		    "Message size exceeds fixed maximum message size");
		smtp_sess_log_reject(s, "MAIL", 552, "5.3.4", "size");
		return;
	}
	if (s->auth_user != NULL && !sender_owned(s, m.from.addr)) {
		str_escape(m.from.addr, strlen(m.from.addr), esc, sizeof(esc));
		smtp_sess_reply(s, 553, "5.7.1", "<%s>: Sender address rejected: not "
		    "owned by user %s", esc, s->auth_user);
		smtp_sess_log_reject(s, "MAIL", 553, "5.7.1", esc);
		return;
	}
	smtp_sess_txn_reset(s);
	envelope_init(&s->env);
	envelope_set(&s->env.from, m.from.addr);
	s->env.body = m.body;
	s->env.smtputf8 = m.smtputf8;
	s->env.ret = m.ret;
	if (m.envid[0] != '\0')
		envelope_set(&s->env.envid, m.envid);
	s->declared_size = m.has_size ? m.size : 0;
	smtp_sess_enter(s, SMTP_STATE_MAIL);
	str_escape(m.from.addr, strlen(m.from.addr), esc, sizeof(esc));
	log_debug("- smtp mail from=<%s> sess=%" PRIx64, esc, s->id);
	smtp_sess_reply(s, 250, "2.1.0", "Ok");
}

static bool
client_may_relay(const struct smtp_session *s)
{
	if (s->auth_user != NULL)
		return true;
	return config_trusted(s->srv->cfg, s->family, s->rawaddr);
}

static void
cmd_rcpt(struct smtp_session *s, const struct smtp_cmd *c)
{
	struct smtp_rcpt_cmd r;
	const struct config *cfg = s->srv->cfg;
	struct strlist	 mb = { 0 }, rem = { 0 };
	char		 addr[SMTP_PATH_MAX + 64], esc[600];
	const char	*domain;
	int		 rc;

	if (s->state != SMTP_STATE_MAIL && s->state != SMTP_STATE_RCPT) {
		smtp_sess_reply(s, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	rc = smtp_parse_rcpt(c->arg, c->arg_len, s->env.smtputf8, &r);
	if (rc != SMTP_PARSE_OK) {
		reply_parse_error(s, rc, "5.1.3", "Bad recipient address syntax",
		    "Syntax: RCPT TO:<address>");
		return;
	}
	if (s->env.nrcpt >= cfg->max_recipients) {
		/* RFC 5321 4.5.3.1.10 */
		smtp_sess_reply(s, 452, "4.5.3", "Error: too many recipients");
		return;
	}
	domain = smtp_addr_domain(&r.to);
	if (*domain == '\0') {
		/* RFC 5321 4.5.1: <postmaster> without a domain */
		snprintf(addr, sizeof(addr), "postmaster@%s", cfg->domains[0]);
	} else
		snprintf(addr, sizeof(addr), "%s", r.to.addr);
	str_escape(addr, strlen(addr), esc, sizeof(esc));

	switch (local_resolve(s->srv->ldb, addr, &mb, &rem)) {
	case LOCAL_OK:
		break;
	case LOCAL_UNKNOWN:
		smtp_sess_reply(s, 550, "5.1.1", "<%s>: Recipient address rejected: "
		    "User unknown in local recipient table", esc);
		smtp_sess_log_reject(s, "RCPT", 550, "5.1.1", esc);
		goto out;
	case LOCAL_LOOP:
		smtp_sess_reply(s, 550, "5.4.6", "<%s>: Recipient address rejected: "
		    "Alias expansion loop", esc);
		smtp_sess_log_reject(s, "RCPT", 550, "5.4.6", esc);
		goto out;
	case LOCAL_NOT_LOCAL:
	default:
		if (!client_may_relay(s)) {
			smtp_sess_reply(s, 550, "5.7.1", "<%s>: Relay access denied", esc);
			smtp_sess_log_reject(s, "RCPT", 550, "5.7.1", esc);
			goto out;
		}
		break;
	}
	for (size_t i = 0; i < s->env.nrcpt; i++)
		if (strcmp(s->env.rcpt[i].addr, addr) == 0)
			goto ok;	/* duplicate: deliver once */
	envelope_add_rcpt(&s->env, addr, r.orcpt[0] ? r.orcpt : NULL,
	    r.notify);
ok:
	smtp_sess_enter(s, SMTP_STATE_RCPT);
	smtp_sess_reply(s, 250, "2.1.5", "Ok");
out:
	strlist_free(&mb);
	strlist_free(&rem);
}


static void
cmd_rset(struct smtp_session *s, const struct smtp_cmd *c)
{
	if (c->arg_len != 0) {
		smtp_sess_reply(s, 501, "5.5.4", "Syntax: RSET");
		return;
	}
	smtp_sess_txn_reset(s);
	if (s->state != SMTP_STATE_INIT)
		smtp_sess_enter(s, SMTP_STATE_READY);
	smtp_sess_reply(s, 250, "2.0.0", "Ok");
}

/* ---- the command table ------------------------------------------- */

struct cmd_def {
	enum smtp_verb	 verb;
	int		 counter;
};

static const struct cmd_def cmd_table[] = {
	{ SMTP_CMD_HELO, CNT_HELO },
	{ SMTP_CMD_EHLO, CNT_EHLO },
	{ SMTP_CMD_MAIL, CNT_MAIL },
	{ SMTP_CMD_RCPT, CNT_RCPT },
	{ SMTP_CMD_DATA, CNT_DATA },
	{ SMTP_CMD_BDAT, CNT_BDAT },
	{ SMTP_CMD_RSET, CNT_RSET },
	{ SMTP_CMD_NOOP, CNT_NOOP },
	{ SMTP_CMD_QUIT, CNT_QUIT },
};

static void
session_command(struct smtp_session *s, const char *line, size_t len)
{
	struct smtp_cmd c;
	int	 counter = CNT_OTHER;

	if (smtp_parse_cmd(line, len, &c) != SMTP_PARSE_OK) {
		/* RFC 5321 2.3.8: bare CR/LF or NUL in a command line */
		smtp_sess_reply(s, 500, "5.5.2", "Error: bad syntax (bare CR, LF or NUL)");
		s->counts[CNT_OTHER]++;
		return;
	}
	for (size_t i = 0; i < ARRAY_LEN(cmd_table); i++)
		if (cmd_table[i].verb == c.verb)
			counter = cmd_table[i].counter;
	s->counts[counter]++;

	switch (c.verb) {
	case SMTP_CMD_HELO:
		cmd_helo(s, &c, false);
		break;
	case SMTP_CMD_EHLO:
		cmd_helo(s, &c, true);
		break;
	case SMTP_CMD_MAIL:
		cmd_mail(s, &c);
		break;
	case SMTP_CMD_RCPT:
		cmd_rcpt(s, &c);
		break;
	case SMTP_CMD_DATA:
		smtp_sess_cmd_data(s, &c);
		break;
	case SMTP_CMD_BDAT:
		smtp_sess_cmd_bdat(s, &c);
		break;
	case SMTP_CMD_RSET:
		cmd_rset(s, &c);
		break;
	case SMTP_CMD_NOOP:
		smtp_sess_reply(s, 250, "2.0.0", "Ok");
		break;
	case SMTP_CMD_QUIT:
		smtp_sess_reply(s, 221, "2.0.0", "Bye");
		smtp_sess_close(s);
		break;
	case SMTP_CMD_VRFY:
		if (c.arg_len == 0)
			smtp_sess_reply(s, 501, "5.5.4", "Syntax: VRFY address");
		else
			smtp_sess_reply(s, 252, "2.5.0", "Cannot VRFY user, but will "
			    "accept message and attempt delivery");
		break;
	case SMTP_CMD_HELP:
		smtp_sess_reply(s, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA "
		    "BDAT RSET NOOP QUIT VRFY HELP\nSee RFC 5321");
		break;
	case SMTP_CMD_STARTTLS:
		smtp_sess_cmd_starttls(s, &c);
		break;
	case SMTP_CMD_AUTH:
		smtp_sess_cmd_auth(s, &c);
		break;
	case SMTP_CMD_EXPN:
		smtp_sess_reply(s, 502, "5.5.1", "Error: command not implemented");
		break;
	case SMTP_CMD_UNKNOWN:
	default:
		smtp_sess_reply(s, 500, "5.5.2", "Error: command not recognized");
		break;
	}
}

/* ---- message end ------------------------------------------------- */


/* ---- input ------------------------------------------------------- */

/* Handle buffered input until we must wait. */
void
smtp_sess_process(struct smtp_session *s)
{
	struct smtp_server *srv = s->srv;
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct evbuffer *out = bufferevent_get_output(s->bev);
	size_t	 max_line;

	while (!s->dead) {
		if (s->state == SMTP_STATE_COMMIT || s->state == SMTP_STATE_QUIT ||
		    s->state == SMTP_STATE_TLS ||
		    s->state == SMTP_STATE_AUTHWAIT)
			return;
		if (s->state == SMTP_STATE_AUTH)
			max_line = SASL_LINE_MAX + 2;
		else
			max_line = srv->cfg->max_line_length;
		if (evbuffer_get_length(out) > SMTP_OUT_HWM) {
			/* RFC 2920: a client that does not read its replies
			   waits; we stop reading until they drain */
			s->out_blocked = true;
			bufferevent_disable(s->bev, EV_READ);
			bufferevent_setwatermark(s->bev, EV_WRITE, SMTP_OUT_LWM,
			    0);
			return;
		}
		if (s->state == SMTP_STATE_DATA) {
			if (!smtp_sess_data_input(s, in))
				return;
			smtp_sess_message_end(s);
			continue;
		}
		if (s->state == SMTP_STATE_BDAT) {
			if (!smtp_sess_bdat_input(s, in))
				return;
			smtp_sess_bdat_end(s);
			continue;
		}

		/* command states: one CRLF-terminated line */
		struct evbuffer_ptr eol = evbuffer_search(in, "\r\n", 2, NULL);

		if (eol.pos == -1) {
			size_t	 have = evbuffer_get_length(in);

			if (have > max_line) {
				/* keep one byte: it may be the CR of CRLF */
				evbuffer_drain(in, have - 1);
				s->discarding = true;
			}
			return;
		}
		size_t	 len = (size_t)eol.pos;

		if ((s->discarding || len + 2 > max_line) &&
		    s->state == SMTP_STATE_AUTH) {
			evbuffer_drain(in, len + 2);
			s->discarding = false;
			/* RFC 4954 4 */
			smtp_sess_reply(s, 500, "5.5.6", "Authentication Exchange line is "
			    "too long");
			smtp_sess_auth_end(s);
		} else if (s->discarding || len + 2 > max_line) {
			/* RFC 5321 4.5.3.1.4: one reply; the tail never runs */
			evbuffer_drain(in, len + 2);
			s->discarding = false;
			smtp_sess_reply(s, 500, "5.5.2", "Error: line too long");
			smtp_sess_log_reject(s, "-", 500, "5.5.2", "line too long");
		} else if (s->state == SMTP_STATE_AUTH) {
			evbuffer_remove(in, srv->line, len);
			evbuffer_drain(in, 2);
			srv->line[len] = '\0';
			smtp_sess_auth_line(s, srv->line, len);
			OPENSSL_cleanse(srv->line, len);
		} else {
			evbuffer_remove(in, srv->line, len);
			evbuffer_drain(in, 2);
			srv->line[len] = '\0';
			session_command(s, srv->line, len);
		}
		if (s->state != SMTP_STATE_QUIT && check_errors(s))
			return;
	}
}

/*
 * libevent 2.1 reads a socket at most 4 KiB at a time (EVBUFFER_MAX_READ),
 * with an ioctl(FIONREAD) before and one read per loop pass: a 100 KiB
 * message took some 25 passes. A message body on a plain socket is read on
 * here instead, up to the input bound, in one readv. libevent's read came
 * back full if 4 KiB or more wait; one that finds the socket empty costs
 * an EAGAIN. EOF and errors are left to libevent's next read: the socket
 * stays readable.
 */
#define READ_MORE_MIN	4096

static void
read_more(struct smtp_session *s, struct evbuffer *in)
{
	struct evbuffer_iovec v[2];
	size_t	 have = evbuffer_get_length(in), cap = smtp_sess_input_max(s);
	ssize_t	 n;
	int	 nv;

	if (have < READ_MORE_MIN || have >= cap)
		return;
	/* a socket bufferevent keeps its input's add side frozen for
	   itself; its own read thaws it the same way */
	evbuffer_unfreeze(in, 0);
	if ((nv = evbuffer_reserve_space(in, (ev_ssize_t)(cap - have), v,
	    2)) <= 0)
		goto out;
	/* the reservation may be larger: read no more than the bound */
	if (v[0].iov_len > cap - have) {
		v[0].iov_len = cap - have;
		nv = 1;
	} else if (nv == 2 && v[0].iov_len + v[1].iov_len > cap - have)
		v[1].iov_len = cap - have - v[0].iov_len;
	if ((n = readv(bufferevent_getfd(s->bev), v, nv)) <= 0)
		goto out;
	if ((size_t)n <= v[0].iov_len) {
		v[0].iov_len = (size_t)n;
		nv = 1;
	} else
		v[1].iov_len = (size_t)n - v[0].iov_len;
	evbuffer_commit_space(in, v, nv);
out:
	evbuffer_freeze(in, 0);
}

size_t
smtp_sess_input_max(const struct smtp_session *s)
{
	/* a whole line, or a decode pass of body bytes */
	return (size_t)s->srv->cfg->max_line_length + SMTP_CHUNK;
}

void
smtp_sess_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	if (s->plain && (s->state == SMTP_STATE_DATA ||
	    s->state == SMTP_STATE_BDAT))
		read_more(s, bufferevent_get_input(bev));
	smtp_sess_process(s);
}

void
smtp_sess_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	if (s->plain && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_disable(bev, EV_WRITE);	/* drained: see flush_cb */
	if (s->state == SMTP_STATE_QUIT &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		session_linger(s);
		return;
	}
	if (s->out_blocked) {
		s->out_blocked = false;
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_enable(bev, EV_READ);
		smtp_sess_process(s);
	}
}

void
smtp_sess_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (s->state == SMTP_STATE_TLS) {
			smtp_sess_tls_ready(s);
			smtp_sess_process(s);
		}
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->state == SMTP_STATE_QUIT) {
			smtp_sess_free(s);
			return;
		}
		log_info("- smtp timeout state=%s client=[%s] sess=%" PRIx64,
		    smtp_sess_state_name(s->state), s->addr, s->id);
		if (s->busy)
			return;		/* the job's callback answers */
		if (s->state == SMTP_STATE_TLS) {
			smtp_sess_free(s);	/* no channel to reply on */
			return;
		}
		smtp_sess_reply(s, 421, "4.4.2", "%s Error: timeout exceeded",
		    s->srv->cfg->hostname);
		bufferevent_enable(s->bev, EV_WRITE);
		smtp_sess_close(s);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(s->bev);

		if (s->state == SMTP_STATE_TLS || e != 0)
			log_info("- smtp tls failed state=%s error=\"%s\" "
			    "client=[%s] sess=%" PRIx64, smtp_sess_state_name(s->state),
			    e != 0 ? ERR_reason_error_string(e) : "handshake",
			    s->addr, s->id);
		if (s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT)
			log_info("%s smtp lost connection in %s client=[%s] "
			    "sess=%" PRIx64, s->msg ? s->env.id : "-",
			    smtp_sess_state_name(s->state), s->addr, s->id);
		smtp_sess_free(s);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* the peer may have half-closed after a pipelined batch:
		   answer what it sent, then close */
		s->eof = true;
		if (s->state == SMTP_STATE_COMMIT || s->state == SMTP_STATE_QUIT)
			return;
		smtp_sess_process(s);
		smtp_sess_eof(s);
	}
}

/* After EOF and the last buffered command: flush and close. */
void
smtp_sess_eof(struct smtp_session *s)
{
	if (s->state == SMTP_STATE_COMMIT || s->state == SMTP_STATE_QUIT)
		return;		/* someone else closes */
	if (s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT)
		log_info("%s smtp lost connection in %s client=[%s] "
		    "sess=%" PRIx64, s->msg ? s->env.id : "-",
		    smtp_sess_state_name(s->state), s->addr, s->id);
	smtp_sess_txn_reset(s);	/* an unfinished message is never kept */
	bufferevent_disable(s->bev, EV_READ);
	smtp_sess_enter(s, SMTP_STATE_QUIT);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		smtp_sess_free(s);
}

/* ---- server ------------------------------------------------------ */

struct smtp_server *
smtp_server_new(const struct smtp_deps *d)
{
	struct smtp_server *srv = xcalloc(1, sizeof(*srv));
	const struct config *cfg = d->cfg;

	srv->base = d->base;
	srv->cfg = cfg;
	srv->spool = d->spool;
	srv->sched = d->sched;
	srv->ldb = d->ldb;
	srv->wq = d->wq;
	srv->sender_map = d->sender_map;
	srv->line = xmalloc((cfg->max_line_length > SASL_LINE_MAX + 2 ?
	    cfg->max_line_length : SASL_LINE_MAX + 2) + 1);
	srv->chunk = xmalloc(SMTP_CHUNK + 2);
	return srv;
}

void
smtp_server_set_tls(struct smtp_server *srv, struct tls_ctx *t)
{
	srv->tls = t;
}

unsigned
smtp_server_sessions(const struct smtp_server *srv)
{
	return srv->nsessions;
}

static void
refuse(int fd, const char *text)
{
	/* best effort on a fresh socket; the kernel buffer takes it */
	(void)!write(fd, text, strlen(text));
	close(fd);
}

/* Peer address as text and port. */
static void
peer_name(const struct sockaddr *sa, char *addr, size_t cap, unsigned *port)
{
	snprintf(addr, cap, "unknown");
	*port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, addr, (socklen_t)cap);
		*port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, addr, (socklen_t)cap);
		*port = ntohs(in6->sin6_port);
	}
}

/* Count a session for its client address. */
static void
client_count_add(struct smtp_server *srv, const char *addr)
{
	struct client_count **pp = client_slot(srv, addr);

	if (*pp == NULL) {
		*pp = xcalloc(1, sizeof(**pp));
		snprintf((*pp)->addr, sizeof((*pp)->addr), "%s", addr);
	}
	(*pp)->count++;
}

/* A new session on bev (owned from now on), already counted. */
static void
session_start(struct smtp_server *srv, struct bufferevent *bev,
    const struct sockaddr *sa, enum smtp_port_kind kind)
{
	const struct config *cfg = srv->cfg;
	struct smtp_session *s = xcalloc(1, sizeof(*s));

	s->srv = srv;
	s->bev = bev;
	s->id = ++srv->next_id;
	s->close_ev = evtimer_new(srv->base, close_cb, s);
	s->flush_ev = event_new(srv->base, -1, 0, flush_cb, s);
	s->plain = kind != SMTP_PORT_SMTPS && bufferevent_getfd(bev) >= 0;
	peer_name(sa, s->addr, sizeof(s->addr), &s->port);
	s->family = sa->sa_family;
	if (sa->sa_family == AF_INET)
		memcpy(s->rawaddr, &((const struct sockaddr_in *)(const void *)
		    sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(s->rawaddr, &((const struct sockaddr_in6 *)(const void *)
		    sa)->sin6_addr, 16);
	s->kind = kind;
	envelope_init(&s->env);
	s->next = srv->sessions;
	if (srv->sessions != NULL)
		srv->sessions->prev = s;
	srv->sessions = s;
	srv->nsessions++;

	bufferevent_setcb(s->bev, smtp_sess_read_cb, smtp_sess_write_cb,
	    smtp_sess_event_cb, s);
	/* input: bounded; every line is taken as soon as it is complete */
	bufferevent_setwatermark(s->bev, EV_READ, 0, smtp_sess_input_max(s));
	smtp_sess_enter(s, kind == SMTP_PORT_SMTPS ? SMTP_STATE_TLS :
	    SMTP_STATE_INIT);
	if (s->plain)	/* a new bufferevent has EV_WRITE enabled */
		bufferevent_disable(s->bev, EV_WRITE);
	bufferevent_enable(s->bev, s->plain ? EV_READ : EV_READ | EV_WRITE);
	log_info("- smtp connect client=[%s]:%u port=%s sess=%" PRIx64, s->addr,
	    s->port, kind == SMTP_PORT_MX ? "mx" :
	    kind == SMTP_PORT_SUBMISSION ? "submission" : "smtps", s->id);
	if (kind != SMTP_PORT_SMTPS)
		smtp_sess_reply(s, 220, NULL, "%s ESMTP petrel", cfg->hostname);
	/* implicit TLS: the greeting follows the handshake (tls_ready) */
}

void
smtp_server_accept(struct smtp_server *srv, int fd, const struct sockaddr *sa,
    socklen_t salen, enum smtp_port_kind kind)
{
	const struct config *cfg = srv->cfg;
	struct client_count **pp;
	struct bufferevent *bev;
	char	 addr[INET6_ADDRSTRLEN], buf[512];
	unsigned port;

	(void)salen;
	peer_name(sa, addr, sizeof(addr), &port);
	if (srv->nsessions >= (unsigned)cfg->max_sessions) {
		snprintf(buf, sizeof(buf), "421 4.7.0 %s Error: too many "
		    "connections, try again later\r\n", cfg->hostname);
		log_warn("- smtp refused client=[%s]:%u reason=max_sessions",
		    addr, port);
		refuse(fd, buf);
		return;
	}
	pp = client_slot(srv, addr);
	if (*pp != NULL &&
	    (*pp)->count >= (unsigned)cfg->max_sessions_per_client) {
		snprintf(buf, sizeof(buf), "421 4.7.0 %s Error: too many "
		    "connections from %s\r\n", cfg->hostname, addr);
		log_warn("- smtp refused client=[%s]:%u "
		    "reason=max_sessions_per_client", addr, port);
		refuse(fd, buf);
		return;
	}
	if (kind == SMTP_PORT_SMTPS) {
		SSL	*ssl = srv->tls != NULL ? tls_ssl_new(srv->tls) : NULL;

		bev = ssl == NULL ? NULL : bufferevent_openssl_socket_new(
		    srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
		    BEV_OPT_CLOSE_ON_FREE);
		if (bev != NULL)
			bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
		else if (ssl != NULL)
			SSL_free(ssl);
	} else
		bev = bufferevent_socket_new(srv->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		close(fd);
		return;
	}
	client_count_add(srv, addr);
	session_start(srv, bev, sa, kind);
}

void
smtp_server_attach(struct smtp_server *srv, struct bufferevent *bev,
    const struct sockaddr *sa, enum smtp_port_kind kind)
{
	char	 addr[INET6_ADDRSTRLEN];
	unsigned port;

	assert(kind != SMTP_PORT_SMTPS);
	peer_name(sa, addr, sizeof(addr), &port);
	client_count_add(srv, addr);
	session_start(srv, bev, sa, kind);
}

void
smtp_server_stop(struct smtp_server *srv)
{
	struct smtp_session *s, *next;

	for (s = srv->sessions; s != NULL; s = next) {
		next = s->next;
		smtp_sess_free(s);	/* a committing one is only marked */
	}
}

void
smtp_server_free(struct smtp_server *srv)
{
	if (srv == NULL)
		return;
	while (srv->sessions != NULL) {
		struct smtp_session *s = srv->sessions;

		s->busy = false;	/* the pool has stopped: no job left */
		smtp_sess_free(s);
	}
	for (size_t i = 0; i < SMTP_CLIENT_BUCKETS; i++) {
		while (srv->clients[i] != NULL) {
			struct client_count *c = srv->clients[i];

			srv->clients[i] = c->next;
			free(c);
		}
		while (srv->auth_fails[i] != NULL) {
			struct auth_fail *f = srv->auth_fails[i];

			srv->auth_fails[i] = f->next;
			free(f);
		}
	}
	free(srv->line);
	free(srv->chunk);
	free(srv);
}
