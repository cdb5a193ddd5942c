/*
 * server.c: the SMTP server session (RFC 5321, with PIPELINING, SIZE,
 * 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, DSN and CHUNKING). One state
 * machine per connection, driven by libevent on the loop thread. Parsing
 * lives in parse.c and body.c; bytes reach the disk only through spool.c.
 */
#include "smtp/server.h"

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

#define SMTP_OUT_HWM		(64 * 1024)	/* stop reading above this */
#define SMTP_OUT_LWM		(16 * 1024)	/* resume below this */
#define SMTP_CHUNK		(64 * 1024)	/* body bytes per decode pass */
#define SMTP_CLIENT_BUCKETS	4096
#define SMTP_HDR_FIXUP_MAX	(64 * 1024)	/* header bytes held for
						   submission fix-ups */
#define SMTP_AUTH_DELAY_MAX	5		/* seconds */

enum smtp_state {
	SMTP_STATE_INIT,	/* greeted, no HELO yet */
	SMTP_STATE_READY,	/* HELO done, no transaction */
	SMTP_STATE_MAIL,	/* MAIL accepted, no recipient yet */
	SMTP_STATE_RCPT,	/* at least one recipient */
	SMTP_STATE_DATA,	/* reading DATA content */
	SMTP_STATE_BDAT,	/* reading a BDAT chunk */
	SMTP_STATE_COMMIT,	/* waiting for the spool commit */
	SMTP_STATE_QUIT,	/* flushing the last reply, then close */
	SMTP_STATE_TLS,		/* TLS handshake under way */
	SMTP_STATE_AUTH,	/* reading SASL responses */
	SMTP_STATE_AUTHWAIT,	/* password check or failure delay */
};

#define ST(x)		(1u << SMTP_STATE_##x)
#define ST_CMD		(ST(INIT) | ST(READY) | ST(MAIL) | ST(RCPT))

/* Failed AUTH attempts per client address, kept across sessions. */
struct auth_fail {
	char			 addr[INET6_ADDRSTRLEN];
	int			 count;
	uint64_t		 first_usec;	/* start of the window */
	struct auth_fail	*next;
};

/* Per-client session counts, for max_sessions_per_client. */
struct client_count {
	char			 addr[INET6_ADDRSTRLEN];
	unsigned		 count;
	struct client_count	*next;
};

struct smtp_server {
	struct event_base	*base;		/* borrowed */
	const struct config	*cfg;		/* borrowed */
	struct spool		*spool;		/* borrowed */
	struct sched		*sched;		/* borrowed */
	const struct local_db	*ldb;		/* borrowed */
	struct workq		*wq;		/* borrowed */
	const struct table	*sender_map;	/* borrowed or NULL */
	struct tls_ctx		*tls;		/* borrowed or NULL */
	struct auth_fail	*auth_fails[SMTP_CLIENT_BUCKETS];
	unsigned		 nsessions;
	uint64_t		 next_id;
	struct smtp_session	*sessions;	/* all live sessions */
	struct client_count	*clients[SMTP_CLIENT_BUCKETS];
	char			*line;		/* scratch: max_line_length + 1 */
	char			*chunk;		/* scratch: SMTP_CHUNK + 2 */
};

enum { CNT_HELO, CNT_EHLO, CNT_MAIL, CNT_RCPT, CNT_DATA, CNT_BDAT, CNT_RSET,
	CNT_NOOP, CNT_QUIT, CNT_OTHER, CNT_MAX };
static const char *const cnt_names[CNT_MAX] = { "helo", "ehlo", "mail",
	"rcpt", "data", "bdat", "rset", "noop", "quit", "other" };

struct smtp_session {
	struct smtp_server	*srv;		/* borrowed */
	struct smtp_session	*prev, *next;	/* srv->sessions */
	struct bufferevent	*bev;		/* owned */
	uint64_t		 id;
	char			 addr[INET6_ADDRSTRLEN];
	unsigned		 port;
	int			 family;
	unsigned char		 rawaddr[16];
	enum smtp_state		 state;
	enum smtp_port_kind	 kind;
	bool			 tls;		/* TLS is up */
	bool			 busy;		/* a worker job holds s */
	char			 tls_info[128];	/* "TLSv1.3 TLS_AES_..." */
	char			*auth_user;	/* owned or NULL */
	struct sasl		*sasl;		/* owned or NULL */
	enum sasl_mech		 sasl_mech;
	struct event		*delay_ev;	/* owned or NULL */
	struct event		*close_ev;	/* owned: deferred close */
	int			 linger;	/* close_ev ticks so far */
	char			*helo;		/* owned or NULL */
	bool			 esmtp;
	bool			 discarding;	/* skipping an overlong line */
	bool			 out_blocked;	/* output above high water */
	bool			 dead;		/* peer gone: free after job */
	bool			 eof;		/* peer sent EOF: finish, close */
	int			 errors;
	unsigned		 counts[CNT_MAX];

	/* the transaction */
	struct envelope		 env;		/* from, rcpts, DSN params */
	uint64_t		 declared_size;
	struct spool_msg	*msg;		/* owned or NULL */
	struct smtp_body	 body;
	uint64_t		 hdr_len;	/* envelope + Received bytes */
	bool			 too_big;
	bool			 bdat_txn;	/* BDAT chunks started */
	bool			 bdat_last;	/* current chunk is the last */
	bool			 bdat_fail;	/* chunk read only to drop it */
	uint64_t		 bdat_left;	/* bytes of the chunk to read */
	char			 bdat_reply[128]; /* reply after a dropped chunk */
	bool			 fixup;		/* add Date/Message-ID if absent */
	bool			 hdr_done;	/* header section passed */
	struct evbuffer		*hdrbuf;	/* owned or NULL: held headers */
};

static void	session_process(struct smtp_session *);
static void	session_free(struct smtp_session *);
static void	session_eof(struct smtp_session *);
static void	hdr_flush(struct smtp_session *, size_t);

static const char *
state_name(enum smtp_state st)
{
	static const char *const names[] = { "init", "ready", "mail", "rcpt",
	    "data", "bdat", "commit", "quit", "tls", "auth", "authwait" };

	return names[st];
}

/* The only place that assigns s->state. */
static void
session_enter(struct smtp_session *s, enum smtp_state st)
{
	const struct config *cfg = s->srv->cfg;
	struct timeval tv = { cfg->command_timeout, 0 };

	log_debug("- smtp state %s->%s sess=%" PRIx64, state_name(s->state),
	    state_name(st), s->id);
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
	uint32_t	 h = 2166136261u;	/* FNV-1a */

	for (const char *p = addr; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	struct client_count **pp = &srv->clients[h % SMTP_CLIENT_BUCKETS];
	while (*pp != NULL && strcmp((*pp)->addr, addr) != 0)
		pp = &(*pp)->next;
	return pp;
}

/* Queue one reply; text may hold '\n' for a multiline reply. */
static void
reply(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
reply(struct smtp_session *s, int code, const char *enh, const char *fmt, ...)
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
}

static void
log_reject(struct smtp_session *s, const char *cmd, int code,
    const char *enh, const char *what)
{
	log_info("- smtp reject cmd=%s reply=\"%d %s %s\" client=[%s] sess=%"
	    PRIx64, cmd, code, enh, what, s->addr, s->id);
}

static void
txn_reset(struct smtp_session *s)
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
		session_free(s);
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
static void
session_close(struct smtp_session *s)
{
	struct timeval now = { 0, 0 };

	bufferevent_disable(s->bev, EV_READ);
	session_enter(s, SMTP_STATE_QUIT);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) != 0)
		return;		/* the write callback frees it */
	/* already flushed (e.g. an in-memory pair): free from the loop */
	evtimer_add(s->close_ev, &now);
}

static void
session_free(struct smtp_session *s)
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

	txn_reset(s);
	bufferevent_free(s->bev);
	if (s->delay_ev != NULL)
		event_free(s->delay_ev);
	if (s->close_ev != NULL)
		event_free(s->close_ev);
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
	reply(s, 421, "4.7.0", "%s Error: too many errors",
	    s->srv->cfg->hostname);
	log_info("- smtp too many errors client=[%s] sess=%" PRIx64, s->addr,
	    s->id);
	session_close(s);
	return true;
}

/* ---- commands ---------------------------------------------------- */

static void
cmd_helo(struct smtp_session *s, const struct smtp_cmd *c, bool esmtp)
{
	const struct config *cfg = s->srv->cfg;

	if (c->arg_len == 0) {
		reply(s, 501, "5.5.4", "Syntax: %s hostname",
		    esmtp ? "EHLO" : "HELO");
		return;
	}
	if (!smtp_helo_valid(c->arg, c->arg_len)) {
		reply(s, 501, "5.5.2", "Invalid domain name");
		return;
	}
	txn_reset(s);
	free(s->helo);
	s->helo = xstrndup(c->arg, c->arg_len);
	s->esmtp = esmtp;
	session_enter(s, SMTP_STATE_READY);
	log_info("- smtp helo name=%s client=[%s] sess=%" PRIx64, s->helo,
	    s->addr, s->id);
	if (!esmtp) {
		reply(s, 250, NULL, "%s", cfg->hostname);
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
	reply(s, 250, NULL, "%s\nPIPELINING\nSIZE %" PRIu64 "\n8BITMIME\n"
	    "SMTPUTF8\nENHANCEDSTATUSCODES\nDSN%s%s\nCHUNKING", cfg->hostname,
	    cfg->max_message_size, tlsline, auth);
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
		reply(s, 503, "5.5.1", "Error: send HELO/EHLO first");
		return;
	}
	if (s->state != SMTP_STATE_READY) {
		reply(s, 503, "5.5.1", "Error: nested MAIL command");
		return;
	}
	if (s->kind != SMTP_PORT_MX && s->auth_user == NULL) {
		/* RFC 6409 4.3 */
		reply(s, 530, "5.7.0", "Authentication required");
		return;
	}
	rc = smtp_parse_mail(c->arg, c->arg_len, &m);
	switch (rc) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_ADDR:
	case SMTP_PARSE_ADDR_LONG:
		reply(s, 501, "5.1.7", "Bad sender address syntax");
		return;
	case SMTP_PARSE_PARAM_UNKNOWN:
		reply(s, 555, "5.5.4", "Unsupported option");
		return;
	case SMTP_PARSE_PARAM_SYNTAX:
		reply(s, 501, "5.5.4", "Invalid parameter value");
		return;
	case SMTP_PARSE_UTF8:
		reply(s, 553, "5.6.7", "SMTPUTF8 required for this address");
		return;
	case SMTP_PARSE_BODY:
		reply(s, 504, "5.5.4", "Unsupported BODY type");
		return;
	default:
		reply(s, 501, "5.5.2", "Syntax: MAIL FROM:<address>");
		return;
	}
	if (m.has_size && m.size > cfg->max_message_size) {
		reply(s, 552, "5.3.4",
		    "Message size exceeds fixed maximum message size");
		log_reject(s, "MAIL", 552, "5.3.4", "size");
		return;
	}
	if (s->auth_user != NULL && !sender_owned(s, m.from.addr)) {
		str_escape(m.from.addr, strlen(m.from.addr), esc, sizeof(esc));
		reply(s, 553, "5.7.1", "<%s>: Sender address rejected: not "
		    "owned by user %s", esc, s->auth_user);
		log_reject(s, "MAIL", 553, "5.7.1", esc);
		return;
	}
	txn_reset(s);
	envelope_init(&s->env);
	envelope_set(&s->env.from, m.from.addr);
	s->env.body = m.body;
	s->env.smtputf8 = m.smtputf8;
	s->env.ret = m.ret;
	if (m.envid[0] != '\0')
		envelope_set(&s->env.envid, m.envid);
	s->declared_size = m.has_size ? m.size : 0;
	session_enter(s, SMTP_STATE_MAIL);
	str_escape(m.from.addr, strlen(m.from.addr), esc, sizeof(esc));
	log_debug("- smtp mail from=<%s> sess=%" PRIx64, esc, s->id);
	reply(s, 250, "2.1.0", "Ok");
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
		reply(s, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	rc = smtp_parse_rcpt(c->arg, c->arg_len, s->env.smtputf8, &r);
	switch (rc) {
	case SMTP_PARSE_OK:
		break;
	case SMTP_PARSE_ADDR:
	case SMTP_PARSE_ADDR_LONG:
		reply(s, 501, "5.1.3", "Bad recipient address syntax");
		return;
	case SMTP_PARSE_PARAM_UNKNOWN:
		reply(s, 555, "5.5.4", "Unsupported option");
		return;
	case SMTP_PARSE_PARAM_SYNTAX:
		reply(s, 501, "5.5.4", "Invalid parameter value");
		return;
	case SMTP_PARSE_UTF8:
		reply(s, 553, "5.6.7", "SMTPUTF8 required for this address");
		return;
	default:
		reply(s, 501, "5.5.2", "Syntax: RCPT TO:<address>");
		return;
	}
	if (s->env.nrcpt >= cfg->max_recipients) {
		/* RFC 5321 4.5.3.1.10 */
		reply(s, 452, "4.5.3", "Error: too many recipients");
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
		reply(s, 550, "5.1.1", "<%s>: Recipient address rejected: "
		    "User unknown in local recipient table", esc);
		log_reject(s, "RCPT", 550, "5.1.1", esc);
		goto out;
	case LOCAL_LOOP:
		reply(s, 550, "5.4.6", "<%s>: Recipient address rejected: "
		    "Alias expansion loop", esc);
		log_reject(s, "RCPT", 550, "5.4.6", esc);
		goto out;
	case LOCAL_NOT_LOCAL:
	default:
		if (!client_may_relay(s)) {
			reply(s, 550, "5.7.1", "<%s>: Relay access denied", esc);
			log_reject(s, "RCPT", 550, "5.7.1", esc);
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
	session_enter(s, SMTP_STATE_RCPT);
	reply(s, 250, "2.1.5", "Ok");
out:
	strlist_free(&mb);
	strlist_free(&rem);
}

/* Open the spool file and write the envelope and Received header. */
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
	if ((s->msg = spool_msg_new(s->srv->spool)) == NULL) {
		log_err("- spool create failed: %s sess=%" PRIx64,
		    strerror(errno), s->id);
		return -1;
	}
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
		spool_msg_free(s->msg);
		s->msg = NULL;
		return rc;
	}
	/* RFC 6409 8.2, 8.3: a submission gets Date and Message-ID */
	s->fixup = s->kind != SMTP_PORT_MX || s->auth_user != NULL;
	s->hdr_done = !s->fixup;
	return rc;
}

static void
cmd_data(struct smtp_session *s, const struct smtp_cmd *c)
{
	if (c->arg_len != 0) {
		reply(s, 501, "5.5.4", "Syntax: DATA");
		return;
	}
	if (s->state == SMTP_STATE_MAIL) {
		/* RFC 2920 3.1: every RCPT of the batch failed */
		reply(s, 554, "5.5.1", "Error: no valid recipients");
		return;
	}
	if (s->state != SMTP_STATE_RCPT) {
		reply(s, 503, "5.5.1", "Error: need RCPT command");
		return;
	}
	if (s->bdat_txn) {
		reply(s, 503, "5.5.1", "Error: DATA after BDAT");
		return;
	}
	if (txn_open(s) == -1) {
		reply(s, 451, "4.3.0", "Error: queue file write error");
		return;
	}
	smtp_body_init(&s->body, SMTP_BODY_DATA);
	session_enter(s, SMTP_STATE_DATA);
	reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
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
	session_enter(s, SMTP_STATE_BDAT);
}

static void
cmd_bdat(struct smtp_session *s, const struct smtp_cmd *c)
{
	uint64_t size;
	bool	 last;

	if (parse_bdat(c->arg, c->arg_len, &size, &last) == -1) {
		/* the size is unknown: no way to stay in sync (RFC 3030 2) */
		reply(s, 501, "5.5.4", "Syntax: BDAT size [LAST]");
		session_close(s);
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
			bdat_drop(s, size,
			    "451 4.3.0 Error: queue file write error");
			txn_reset(s);
			session_enter(s, SMTP_STATE_BDAT);
			return;
		}
		s->bdat_txn = true;
		smtp_body_init(&s->body, SMTP_BODY_BDAT);
	}
	s->bdat_fail = false;
	s->bdat_left = size;
	s->bdat_last = last;
	session_enter(s, SMTP_STATE_BDAT);
}

static void
cmd_rset(struct smtp_session *s, const struct smtp_cmd *c)
{
	if (c->arg_len != 0) {
		reply(s, 501, "5.5.4", "Syntax: RSET");
		return;
	}
	txn_reset(s);
	if (s->state != SMTP_STATE_INIT)
		session_enter(s, SMTP_STATE_READY);
	reply(s, 250, "2.0.0", "Ok");
}

/* ---- TLS --------------------------------------------------------- */

static void	session_read_cb(struct bufferevent *, void *);
static void	session_write_cb(struct bufferevent *, void *);
static void	session_event_cb(struct bufferevent *, short, void *);

/* The handshake finished: record what was negotiated. */
static void
tls_ready(struct smtp_session *s)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(s->bev);
	char	 peer[256];

	s->tls = true;
	tls_describe(ssl, s->tls_info, sizeof(s->tls_info));
	tls_peer_subject(ssl, peer, sizeof(peer));
	log_info("- smtp tls \"%s\"%s%s%s client=[%s] sess=%" PRIx64,
	    s->tls_info, peer[0] ? " peer=\"" : "", peer, peer[0] ? "\"" : "",
	    s->addr, s->id);
	session_enter(s, SMTP_STATE_INIT);
	if (s->kind == SMTP_PORT_SMTPS)
		reply(s, 220, NULL, "%s ESMTP petrel", s->srv->cfg->hostname);
}

static void
cmd_starttls(struct smtp_session *s, const struct smtp_cmd *c)
{
	struct bufferevent *tls;
	SSL	*ssl;

	if (s->tls || s->srv->tls == NULL || s->kind == SMTP_PORT_SMTPS) {
		/* RFC 3207 4.2: not inside TLS */
		reply(s, 503, "5.5.1", "Error: TLS already active or not "
		    "offered");
		return;
	}
	if (c->arg_len != 0) {
		reply(s, 501, "5.5.4", "Syntax: STARTTLS");
		return;
	}
	if (s->state != SMTP_STATE_INIT && s->state != SMTP_STATE_READY) {
		reply(s, 503, "5.5.1", "Error: STARTTLS inside a transaction");
		return;
	}
	if ((ssl = tls_ssl_new(s->srv->tls)) == NULL) {
		reply(s, 454, "4.7.0", "TLS not available due to temporary "
		    "reason");
		return;
	}
	reply(s, 220, "2.0.0", "Ready to start TLS");
	/*
	 * CVE-2011-0411: whatever the client pipelined after STARTTLS came
	 * in plaintext; it is dropped, never run inside TLS.
	 */
	evbuffer_drain(bufferevent_get_input(s->bev),
	    evbuffer_get_length(bufferevent_get_input(s->bev)));
	/* RFC 3207 4.2: forget everything learnt before TLS */
	txn_reset(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = false;
	tls = bufferevent_openssl_filter_new(s->srv->base, s->bev, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		SSL_free(ssl);
		session_close(s);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	s->bev = tls;
	bufferevent_setcb(tls, session_read_cb, session_write_cb,
	    session_event_cb, s);
	bufferevent_setwatermark(tls, EV_READ, 0,
	    s->srv->cfg->max_line_length + SMTP_CHUNK);
	session_enter(s, SMTP_STATE_TLS);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
}

/* ---- AUTH (RFC 4954) ---------------------------------------------- */

static struct auth_fail **
auth_fail_slot(struct smtp_server *srv, const char *addr)
{
	uint32_t	 h = 2166136261u;	/* FNV-1a */
	uint64_t	 now = now_usec();
	uint64_t	 window = (uint64_t)srv->cfg->auth_failure_window *
	    1000000u;

	for (const char *p = addr; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	struct auth_fail **pp = &srv->auth_fails[h % SMTP_CLIENT_BUCKETS];
	while (*pp != NULL) {
		struct auth_fail *f = *pp;

		if (now - f->first_usec > window) {	/* expired: drop */
			*pp = f->next;
			free(f);
			continue;
		}
		if (strcmp(f->addr, addr) == 0)
			break;
		pp = &f->next;
	}
	return pp;
}

static int
auth_failures(struct smtp_server *srv, const char *addr)
{
	struct auth_fail **pp = auth_fail_slot(srv, addr);

	return *pp != NULL ? (*pp)->count : 0;
}

static void
auth_end(struct smtp_session *s)
{
	if (s->sasl != NULL)
		sasl_free(s->sasl);
	s->sasl = NULL;
	session_enter(s, SMTP_STATE_READY);
}

static void
auth_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	reply(s, 535, "5.7.8", "Error: authentication failed");
	auth_end(s);
	bufferevent_enable(s->bev, EV_READ);
	session_process(s);
	if (s->eof)
		session_eof(s);
}

/* A failed attempt: count it, then answer after a delay or hang up. */
static void
auth_failed(struct smtp_session *s, const char *user, const char *why)
{
	struct smtp_server *srv = s->srv;
	struct auth_fail **pp = auth_fail_slot(srv, s->addr);
	char	 esc[SASL_USER_MAX * 4 + 1];
	int	 n;

	if (*pp == NULL) {
		*pp = xcalloc(1, sizeof(**pp));
		snprintf((*pp)->addr, sizeof((*pp)->addr), "%s", s->addr);
		(*pp)->first_usec = now_usec();
	}
	n = ++(*pp)->count;
	str_escape(user, strlen(user), esc, sizeof(esc));
	log_info("- smtp auth failed mech=%s user=\"%s\" reason=\"%s\" "
	    "failures=%d client=[%s] sess=%" PRIx64,
	    sasl_mech_name(s->sasl_mech), esc, why, n, s->addr, s->id);
	if (n >= srv->cfg->auth_max_failures) {
		reply(s, 421, "4.7.0", "%s Error: too many failed "
		    "authentication attempts", srv->cfg->hostname);
		auth_end(s);
		session_close(s);
		return;
	}
	/* slow down guessing: 1 s per failure so far, capped */
	struct timeval tv = { n < SMTP_AUTH_DELAY_MAX ? n :
	    SMTP_AUTH_DELAY_MAX, 0 };
	if (s->delay_ev == NULL)
		s->delay_ev = evtimer_new(srv->base, auth_delay_cb, s);
	session_enter(s, SMTP_STATE_AUTHWAIT);
	bufferevent_disable(s->bev, EV_READ);
	evtimer_add(s->delay_ev, &tv);
}

static void
auth_ok(struct smtp_session *s, const char *user)
{
	char	 esc[SASL_USER_MAX * 4 + 1];

	free(s->auth_user);
	s->auth_user = str_lower(xstrdup(user));
	str_escape(s->auth_user, strlen(s->auth_user), esc, sizeof(esc));
	log_info("- smtp auth ok mech=%s user=\"%s\" client=[%s] sess=%" PRIx64,
	    sasl_mech_name(s->sasl_mech), esc, s->addr, s->id);
	reply(s, 235, "2.7.0", "Authentication successful");
	auth_end(s);
}

struct pwcheck_job {
	struct smtp_session	*s;		/* borrowed: s->busy holds it */
	const struct table	*users;		/* borrowed, immutable */
	char			 user[SASL_USER_MAX + 1];
	char			 pass[SASL_PASS_MAX + 1];
	bool			 ok;
};

static void
pwcheck_work(void *arg)
{
	struct pwcheck_job *j = arg;

	j->ok = userdb_check_password(j->users, j->user, j->pass);
	OPENSSL_cleanse(j->pass, sizeof(j->pass));
}

static void	auth_status(struct smtp_session *, enum sasl_status,
		    const char *);

static void
pwcheck_done(void *arg)
{
	struct pwcheck_job *j = arg;
	struct smtp_session *s = j->s;

	s->busy = false;
	if (s->dead) {
		free(j);
		session_free(s);
		return;
	}
	auth_status(s, sasl_password_result(s->sasl, j->ok), NULL);
	free(j);
	if (s->state != SMTP_STATE_AUTHWAIT && s->state != SMTP_STATE_QUIT) {
		bufferevent_enable(s->bev, EV_READ);
		session_process(s);
		if (s->eof)
			session_eof(s);
	}
}

/* Act on what the SASL exchange says next. */
static void
auth_status(struct smtp_session *s, enum sasl_status st, const char *out)
{
	struct sasl_scram_creds creds;

	for (;;) {
		switch (st) {
		case SASL_CONTINUE:
			reply(s, 334, NULL, "%s", out);
			session_enter(s, SMTP_STATE_AUTH);
			return;
		case SASL_NEED_USER:
			st = sasl_scram_user(s->sasl,
			    userdb_scram(s->srv->ldb->users, sasl_user(s->sasl),
			    &creds) == 0 ? &creds : NULL, &out);
			OPENSSL_cleanse(&creds, sizeof(creds));
			continue;
		case SASL_CHECK_PASSWORD: {
			struct pwcheck_job *j = xcalloc(1, sizeof(*j));

			j->s = s;
			j->users = s->srv->ldb->users;
			snprintf(j->user, sizeof(j->user), "%s",
			    sasl_user(s->sasl));
			snprintf(j->pass, sizeof(j->pass), "%s",
			    sasl_password(s->sasl));
			s->busy = true;
			session_enter(s, SMTP_STATE_AUTHWAIT);
			bufferevent_disable(s->bev, EV_READ);
			workq_submit(s->srv->wq, pwcheck_work, pwcheck_done, j);
			return;
		}
		case SASL_OK:
			/* RFC 4616 2: acting for someone else is not allowed */
			if (*sasl_authzid(s->sasl) != '\0' &&
			    strcasecmp(sasl_authzid(s->sasl),
			    sasl_user(s->sasl)) != 0) {
				auth_failed(s, sasl_user(s->sasl),
				    "authorization identity differs");
				return;
			}
			auth_ok(s, sasl_user(s->sasl));
			return;
		case SASL_ERR_BASE64:
			reply(s, 501, "5.5.2", "Error: cannot decode response");
			auth_end(s);
			return;
		case SASL_ERR_CANCEL:
			reply(s, 501, "5.7.0", "Error: authentication "
			    "cancelled");
			auth_end(s);
			return;
		case SASL_ERR_PROTOCOL:
			reply(s, 501, "5.5.2", "Error: malformed "
			    "authentication message");
			auth_end(s);
			return;
		case SASL_ERR_CB:
			auth_failed(s, sasl_user(s->sasl),
			    "channel binding mismatch");
			return;
		case SASL_ERR_AUTH:
		default:
			auth_failed(s, sasl_user(s->sasl), "bad credentials");
			return;
		}
	}
}

static void
cmd_auth(struct smtp_session *s, const struct smtp_cmd *c)
{
	const char *sp, *out = NULL;
	enum sasl_status st;
	size_t	 mlen;
	unsigned char cb[32];
	bool	 have_cb;

	if (!s->tls) {
		/* RFC 4954 4: never send passwords in the clear */
		reply(s, 538, "5.7.11", "Encryption required for requested "
		    "authentication mechanism");
		return;
	}
	if (s->state == SMTP_STATE_INIT) {
		reply(s, 503, "5.5.1", "Error: send EHLO first");
		return;
	}
	if (s->auth_user != NULL) {
		reply(s, 503, "5.5.1", "Error: already authenticated");
		return;
	}
	if (s->state != SMTP_STATE_READY) {
		reply(s, 503, "5.5.1", "Error: AUTH not allowed during a mail "
		    "transaction");
		return;
	}
	if (auth_failures(s->srv, s->addr) >= s->srv->cfg->auth_max_failures) {
		reply(s, 421, "4.7.0", "%s Error: too many failed "
		    "authentication attempts", s->srv->cfg->hostname);
		session_close(s);
		return;
	}
	sp = memchr(c->arg, ' ', c->arg_len);
	mlen = sp != NULL ? (size_t)(sp - c->arg) : c->arg_len;
	s->sasl_mech = sasl_mech_parse(c->arg, mlen);
	if (c->arg_len == 0) {
		reply(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
		return;
	}
	if (s->sasl_mech == SASL_MECH_NONE) {
		reply(s, 504, "5.5.4", "Unsupported authentication mechanism");
		return;
	}
	have_cb = tls_exporter_binding(bufferevent_openssl_get_ssl(s->bev), cb)
	    == 0;
	if (s->sasl_mech == SASL_MECH_SCRAM_SHA_256_PLUS && !have_cb) {
		reply(s, 504, "5.5.4", "Unsupported authentication mechanism");
		return;
	}
	s->sasl = sasl_new(s->sasl_mech, have_cb ? cb : NULL,
	    have_cb ? sizeof(cb) : 0);
	OPENSSL_cleanse(cb, sizeof(cb));
	if (sp != NULL) {
		size_t	 off = (size_t)(sp - c->arg) + 1;

		st = sasl_step(s->sasl, c->arg + off, c->arg_len - off, true,
		    &out);
	} else
		st = sasl_step(s->sasl, "", 0, true, &out);
	auth_status(s, st, out);	/* after the step has set out */
}

/* One SASL response line from the client. */
static void
auth_line(struct smtp_session *s, const char *line, size_t len)
{
	const char *out = NULL;

	enum sasl_status st = sasl_step(s->sasl, line, len, false, &out);

	auth_status(s, st, out);
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
		reply(s, 500, "5.5.2", "Error: bad syntax (bare CR, LF or NUL)");
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
		cmd_data(s, &c);
		break;
	case SMTP_CMD_BDAT:
		cmd_bdat(s, &c);
		break;
	case SMTP_CMD_RSET:
		cmd_rset(s, &c);
		break;
	case SMTP_CMD_NOOP:
		reply(s, 250, "2.0.0", "Ok");
		break;
	case SMTP_CMD_QUIT:
		reply(s, 221, "2.0.0", "Bye");
		session_close(s);
		break;
	case SMTP_CMD_VRFY:
		if (c.arg_len == 0)
			reply(s, 501, "5.5.4", "Syntax: VRFY address");
		else
			reply(s, 252, "2.5.0", "Cannot VRFY user, but will "
			    "accept message and attempt delivery");
		break;
	case SMTP_CMD_HELP:
		reply(s, 214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA "
		    "BDAT RSET NOOP QUIT VRFY HELP\nSee RFC 5321");
		break;
	case SMTP_CMD_STARTTLS:
		cmd_starttls(s, &c);
		break;
	case SMTP_CMD_AUTH:
		cmd_auth(s, &c);
		break;
	case SMTP_CMD_EXPN:
		reply(s, 502, "5.5.1", "Error: command not implemented");
		break;
	case SMTP_CMD_UNKNOWN:
	default:
		reply(s, 500, "5.5.2", "Error: command not recognized");
		break;
	}
}

/* ---- message end ------------------------------------------------- */

static void
commit_done(struct spool_msg *m, int err, void *arg)
{
	struct smtp_session *s = arg;
	char	 from[600];

	(void)m;
	s->busy = false;
	if (s->dead) {
		/* the client left: the message is durable or gone; it was
		   never acknowledged, so a delivery is a harmless duplicate */
		if (err == 0)
			sched_add(s->srv->sched, s->env.id);
		session_enter(s, SMTP_STATE_QUIT);
		session_free(s);
		return;
	}
	if (err != 0) {
		log_err("%s spool commit failed: %s sess=%" PRIx64, s->env.id,
		    strerror(err), s->id);
		reply(s, 451, "4.3.0", "Error: queue file write error");
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
		reply(s, 250, "2.0.0", "Ok: queued as %s", s->env.id);
		sched_add(s->srv->sched, s->env.id);
	}
	txn_reset(s);
	session_enter(s, SMTP_STATE_READY);
	if (!s->eof)
		bufferevent_enable(s->bev, EV_READ);
	session_process(s);
	if (s->eof)
		session_eof(s);
}

/* The content is complete: check it, then commit or refuse. */
static void
message_end(struct smtp_session *s)
{
	const char *id = s->env.id;

	if (!s->too_big && !s->body.bare && s->hdrbuf != NULL)
		hdr_flush(s, evbuffer_get_length(s->hdrbuf));  /* all header */
	if (s->too_big) {
		reply(s, 552, "5.3.4", "Error: message too large");
		log_info("%s smtp rejected: message too large sess=%" PRIx64, id,
		    s->id);
	} else if (s->body.bare) {
		/* RFC 5321 2.3.8; SMTP smuggling defence */
		reply(s, 550, "5.6.0", "Error: bare CR or LF in message "
		    "content (RFC 5321 2.3.8)");
		log_info("%s smtp rejected: bare CR or LF sess=%" PRIx64, id,
		    s->id);
	} else if (s->msg->error != 0) {
		reply(s, 451, "4.3.0", "Error: queue file write error");
		log_err("%s spool write failed: %s sess=%" PRIx64, id,
		    strerror(s->msg->error), s->id);
	} else {
		session_enter(s, SMTP_STATE_COMMIT);
		s->busy = true;
		spool_msg_commit(s->msg, commit_done, s);
		return;
	}
	txn_reset(s);
	session_enter(s, SMTP_STATE_READY);
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
static void
hdr_flush(struct smtp_session *s, size_t hlen)
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
		hdr_flush(s, 0);	/* no header section at all */
		return;
	}
	p = evbuffer_search(s->hdrbuf, "\r\n\r\n", 4, NULL);
	if (p.pos != -1) {
		hdr_flush(s, (size_t)p.pos + 2);
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

static void
body_write(struct smtp_session *s, const char *buf, size_t len)
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

/* DATA: decode what is buffered. Returns true when the content ended. */
static bool
data_input(struct smtp_session *s, struct evbuffer *in)
{
	char	*out = s->srv->chunk;

	while (evbuffer_get_length(in) > 0) {
		size_t	 n = evbuffer_get_length(in), outlen, used;

		if (n > SMTP_CHUNK)
			n = SMTP_CHUNK;
		const char *p = (const char *)evbuffer_pullup(in, (ssize_t)n);
		smtp_body_feed(&s->body, p, n, out, &outlen, &used);
		body_write(s, out, outlen);
		evbuffer_drain(in, used);
		if (s->body.done)
			return true;
	}
	return false;
}

/* BDAT: take the chunk's bytes. Returns true when the chunk is complete. */
static bool
bdat_input(struct smtp_session *s, struct evbuffer *in)
{
	char	*out = s->srv->chunk;

	while (s->bdat_left > 0 && evbuffer_get_length(in) > 0) {
		size_t	 n = evbuffer_get_length(in), outlen, used;

		if (n > SMTP_CHUNK)
			n = SMTP_CHUNK;
		if (n > s->bdat_left)
			n = (size_t)s->bdat_left;
		if (s->bdat_fail) {
			evbuffer_drain(in, n);
			s->bdat_left -= n;
			continue;
		}
		const char *p = (const char *)evbuffer_pullup(in, (ssize_t)n);
		smtp_body_feed(&s->body, p, n, out, &outlen, &used);
		body_write(s, out, outlen);
		evbuffer_drain(in, used);
		s->bdat_left -= used;
	}
	return s->bdat_left == 0;
}

static void
bdat_end(struct smtp_session *s)
{
	if (s->bdat_fail) {
		int	 code = atoi(s->bdat_reply);

		/* "NNN X.Y.Z text" */
		reply(s, code, NULL, "%s", s->bdat_reply + 4);
		s->bdat_fail = false;
		session_enter(s, s->msg != NULL ? SMTP_STATE_RCPT :
		    (s->helo != NULL ? (s->env.from != NULL ?
		    SMTP_STATE_MAIL : SMTP_STATE_READY) : SMTP_STATE_INIT));
		return;
	}
	if (s->too_big) {
		/* RFC 3030 2: fail now; later chunks meet a reset state */
		message_end(s);
		return;
	}
	if (!s->bdat_last) {
		reply(s, 250, "2.0.0", "Ok: %" PRIu64 " octets received",
		    s->body.size);
		session_enter(s, SMTP_STATE_RCPT);
		return;
	}
	char	 tail[2];
	size_t	 tlen;

	smtp_body_finish(&s->body, tail, &tlen);
	body_write(s, tail, tlen);
	message_end(s);
}

/* ---- input ------------------------------------------------------- */

/* Handle buffered input until we must wait. */
static void
session_process(struct smtp_session *s)
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
			if (!data_input(s, in))
				return;
			message_end(s);
			continue;
		}
		if (s->state == SMTP_STATE_BDAT) {
			if (!bdat_input(s, in))
				return;
			bdat_end(s);
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
			reply(s, 500, "5.5.6", "Authentication Exchange line is "
			    "too long");
			auth_end(s);
		} else if (s->discarding || len + 2 > max_line) {
			/* RFC 5321 4.5.3.1.4: one reply; the tail never runs */
			evbuffer_drain(in, len + 2);
			s->discarding = false;
			reply(s, 500, "5.5.2", "Error: line too long");
			log_reject(s, "-", 500, "5.5.2", "line too long");
		} else if (s->state == SMTP_STATE_AUTH) {
			evbuffer_remove(in, srv->line, len);
			evbuffer_drain(in, 2);
			srv->line[len] = '\0';
			auth_line(s, srv->line, len);
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

static void
session_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	session_process(arg);
}

static void
session_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtp_session *s = arg;

	if (s->state == SMTP_STATE_QUIT &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		session_linger(s);
		return;
	}
	if (s->out_blocked) {
		s->out_blocked = false;
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		bufferevent_enable(bev, EV_READ);
		session_process(s);
	}
}

static void
session_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		if (s->state == SMTP_STATE_TLS) {
			tls_ready(s);
			session_process(s);
		}
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->state == SMTP_STATE_QUIT) {
			session_free(s);
			return;
		}
		log_info("- smtp timeout state=%s client=[%s] sess=%" PRIx64,
		    state_name(s->state), s->addr, s->id);
		if (s->busy)
			return;		/* the job's callback answers */
		if (s->state == SMTP_STATE_TLS) {
			session_free(s);	/* no channel to reply on */
			return;
		}
		reply(s, 421, "4.4.2", "%s Error: timeout exceeded",
		    s->srv->cfg->hostname);
		bufferevent_enable(s->bev, EV_WRITE);
		session_close(s);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(s->bev);

		if (s->state == SMTP_STATE_TLS || e != 0)
			log_info("- smtp tls failed state=%s error=\"%s\" "
			    "client=[%s] sess=%" PRIx64, state_name(s->state),
			    e != 0 ? ERR_reason_error_string(e) : "handshake",
			    s->addr, s->id);
		if (s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT)
			log_info("%s smtp lost connection in %s client=[%s] "
			    "sess=%" PRIx64, s->msg ? s->env.id : "-",
			    state_name(s->state), s->addr, s->id);
		session_free(s);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* the peer may have half-closed after a pipelined batch:
		   answer what it sent, then close */
		s->eof = true;
		if (s->state == SMTP_STATE_COMMIT || s->state == SMTP_STATE_QUIT)
			return;
		session_process(s);
		session_eof(s);
	}
}

/* After EOF and the last buffered command: flush and close. */
static void
session_eof(struct smtp_session *s)
{
	if (s->state == SMTP_STATE_COMMIT || s->state == SMTP_STATE_QUIT)
		return;		/* someone else closes */
	if (s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT)
		log_info("%s smtp lost connection in %s client=[%s] "
		    "sess=%" PRIx64, s->msg ? s->env.id : "-",
		    state_name(s->state), s->addr, s->id);
	txn_reset(s);	/* an unfinished message is never kept */
	bufferevent_disable(s->bev, EV_READ);
	session_enter(s, SMTP_STATE_QUIT);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		session_free(s);
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

	bufferevent_setcb(s->bev, session_read_cb, session_write_cb,
	    session_event_cb, s);
	/* input: bounded; every line is taken as soon as it is complete */
	bufferevent_setwatermark(s->bev, EV_READ, 0,
	    cfg->max_line_length + SMTP_CHUNK);
	session_enter(s, kind == SMTP_PORT_SMTPS ? SMTP_STATE_TLS :
	    SMTP_STATE_INIT);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	log_info("- smtp connect client=[%s]:%u port=%s sess=%" PRIx64, s->addr,
	    s->port, kind == SMTP_PORT_MX ? "mx" :
	    kind == SMTP_PORT_SUBMISSION ? "submission" : "smtps", s->id);
	if (kind != SMTP_PORT_SMTPS)
		reply(s, 220, NULL, "%s ESMTP petrel", cfg->hostname);
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
		session_free(s);	/* a committing one is only marked */
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
		session_free(s);
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
