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
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "queue/envelope.h"
#include "smtp/body.h"
#include "smtp/parse.h"
#include "smtp/reply.h"

#define SMTP_OUT_HWM		(64 * 1024)	/* stop reading above this */
#define SMTP_OUT_LWM		(16 * 1024)	/* resume below this */
#define SMTP_CHUNK		(64 * 1024)	/* body bytes per decode pass */
#define SMTP_CLIENT_BUCKETS	4096

enum smtp_state {
	SMTP_STATE_INIT,	/* greeted, no HELO yet */
	SMTP_STATE_READY,	/* HELO done, no transaction */
	SMTP_STATE_MAIL,	/* MAIL accepted, no recipient yet */
	SMTP_STATE_RCPT,	/* at least one recipient */
	SMTP_STATE_DATA,	/* reading DATA content */
	SMTP_STATE_BDAT,	/* reading a BDAT chunk */
	SMTP_STATE_COMMIT,	/* waiting for the spool commit */
	SMTP_STATE_QUIT,	/* flushing the last reply, then close */
};

#define ST(x)		(1u << SMTP_STATE_##x)
#define ST_CMD		(ST(INIT) | ST(READY) | ST(MAIL) | ST(RCPT))

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
};

static void	session_process(struct smtp_session *);
static void	session_free(struct smtp_session *);
static void	session_eof(struct smtp_session *);

static const char *
state_name(enum smtp_state st)
{
	static const char *const names[] = { "init", "ready", "mail", "rcpt",
	    "data", "bdat", "commit", "quit" };

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
}

/*
 * After the last reply: stop reading, flush, then free. Callers queue a
 * reply first, so the free happens later in the write callback.
 */
static void
session_close(struct smtp_session *s)
{
	bufferevent_disable(s->bev, EV_READ);
	session_enter(s, SMTP_STATE_QUIT);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		session_free(s);
	/* else the write callback frees it once the reply is out */
}

static void
session_free(struct smtp_session *s)
{
	struct smtp_server *srv = s->srv;
	char	 counts[256];
	size_t	 o = 0;

	if (s->state == SMTP_STATE_COMMIT) {
		/* a commit job holds s->msg: free when it comes back */
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
	log_info("- smtp disconnect client=[%s]:%u %s errors=%d sess=%" PRIx64,
	    s->addr, s->port, counts, s->errors, s->id);

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
	reply(s, 250, NULL, "%s\nPIPELINING\nSIZE %" PRIu64 "\n8BITMIME\n"
	    "SMTPUTF8\nENHANCEDSTATUSCODES\nDSN\nCHUNKING", cfg->hostname,
	    cfg->max_message_size);
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
	/* TODO(#4): authenticated users may relay too. */
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
	char	 date[64], *hdr, *text;
	size_t	 len;
	int	 rc;

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
	envelope_set(&s->env.proto, s->esmtp ? "ESMTP" : "SMTP");
	text = envelope_format(&s->env, &len);
	rfc5322_date((int64_t)(s->env.arrival_usec / 1000000u), date,
	    sizeof(date));
	/* RFC 5321 4.4; "for" only with a single recipient (privacy) */
	if (s->env.nrcpt == 1)
		hdr = xasprintf("Received: from %s (unknown [%s])\r\n"
		    "\tby %s (petrel) with %s id %s\r\n\tfor <%s>; %s\r\n",
		    s->helo, s->addr, cfg->hostname, s->env.proto, s->env.id,
		    s->env.rcpt[0].addr, date);
	else
		hdr = xasprintf("Received: from %s (unknown [%s])\r\n"
		    "\tby %s (petrel) with %s id %s;\r\n\t%s\r\n",
		    s->helo, s->addr, cfg->hostname, s->env.proto, s->env.id,
		    date);
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
	}
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
	case SMTP_CMD_EXPN:
	case SMTP_CMD_STARTTLS:		/* TODO(#4) */
	case SMTP_CMD_AUTH:		/* TODO(#4) */
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
		spool_msg_commit(s->msg, commit_done, s);
		return;
	}
	txn_reset(s);
	session_enter(s, SMTP_STATE_READY);
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
	size_t	 max_line = srv->cfg->max_line_length;

	while (!s->dead) {
		if (s->state == SMTP_STATE_COMMIT || s->state == SMTP_STATE_QUIT)
			return;
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

		if (s->discarding || len + 2 > max_line) {
			/* RFC 5321 4.5.3.1.4: one reply; the tail never runs */
			evbuffer_drain(in, len + 2);
			s->discarding = false;
			reply(s, 500, "5.5.2", "Error: line too long");
			log_reject(s, "-", 500, "5.5.2", "line too long");
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
		session_free(s);
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
	if (what & BEV_EVENT_TIMEOUT) {
		if (s->state == SMTP_STATE_QUIT) {
			session_free(s);
			return;
		}
		log_info("- smtp timeout state=%s client=[%s] sess=%" PRIx64,
		    state_name(s->state), s->addr, s->id);
		if (s->state == SMTP_STATE_COMMIT)
			return;		/* the commit callback answers */
		reply(s, 421, "4.4.2", "%s Error: timeout exceeded",
		    s->srv->cfg->hostname);
		bufferevent_enable(s->bev, EV_WRITE);
		session_close(s);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
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
smtp_server_new(struct event_base *base, const struct config *cfg,
    struct spool *sp, struct sched *sched, const struct local_db *ldb)
{
	struct smtp_server *srv = xcalloc(1, sizeof(*srv));

	srv->base = base;
	srv->cfg = cfg;
	srv->spool = sp;
	srv->sched = sched;
	srv->ldb = ldb;
	srv->line = xmalloc(cfg->max_line_length + 1);
	srv->chunk = xmalloc(SMTP_CHUNK + 2);
	return srv;
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

void
smtp_server_accept(struct smtp_server *srv, int fd, const struct sockaddr *sa,
    socklen_t salen)
{
	const struct config *cfg = srv->cfg;
	struct smtp_session *s;
	struct client_count **pp;
	char	 addr[INET6_ADDRSTRLEN] = "unknown", buf[512];
	unsigned port = 0;

	(void)salen;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
		port = ntohs(in6->sin6_port);
	}
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
	if (*pp == NULL) {
		*pp = xcalloc(1, sizeof(**pp));
		snprintf((*pp)->addr, sizeof((*pp)->addr), "%s", addr);
	}
	(*pp)->count++;

	s = xcalloc(1, sizeof(*s));
	s->srv = srv;
	s->id = ++srv->next_id;
	snprintf(s->addr, sizeof(s->addr), "%s", addr);
	s->port = port;
	s->family = sa->sa_family;
	if (sa->sa_family == AF_INET)
		memcpy(s->rawaddr, &((const struct sockaddr_in *)(const void *)
		    sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(s->rawaddr, &((const struct sockaddr_in6 *)(const void *)
		    sa)->sin6_addr, 16);
	envelope_init(&s->env);
	s->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		close(fd);
		free(s);
		(*pp)->count--;
		return;
	}
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
	session_enter(s, SMTP_STATE_INIT);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	log_info("- smtp connect client=[%s]:%u sess=%" PRIx64, addr, port,
	    s->id);
	reply(s, 220, NULL, "%s ESMTP petrel", cfg->hostname);
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

		if (s->state == SMTP_STATE_COMMIT)
			session_enter(s, SMTP_STATE_QUIT); /* jobs have ended */
		session_free(s);
	}
	for (size_t i = 0; i < SMTP_CLIENT_BUCKETS; i++)
		while (srv->clients[i] != NULL) {
			struct client_count *c = srv->clients[i];

			srv->clients[i] = c->next;
			free(c);
		}
	free(srv->line);
	free(srv->chunk);
	free(srv);
}
