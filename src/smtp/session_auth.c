/*
 * session_auth.c: STARTTLS (RFC 3207) and AUTH (RFC 4954) in the server
 * session: the TLS switch, SASL exchanges, password checks on the worker
 * pool, failure delays and limits. SASL itself lives in auth/sasl.c.
 */
#include "smtp/session.h"

#include <event2/bufferevent_ssl.h>
#include <openssl/crypto.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/userdb.h"
#include "core/log.h"
#include "core/util.h"
#include "net/tls.h"

/* ---- TLS --------------------------------------------------------- */


/* The handshake finished: record what was negotiated. */
void
smtp_sess_tls_ready(struct smtp_session *s)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(s->bev);
	char	 peer[256];

	s->tls = true;
	tls_describe(ssl, s->tls_info, sizeof(s->tls_info));
	tls_peer_subject(ssl, peer, sizeof(peer));
	log_info("- smtp tls \"%s\"%s%s%s client=[%s] sess=%" PRIx64,
	    s->tls_info, peer[0] ? " peer=\"" : "", peer, peer[0] ? "\"" : "",
	    s->addr, s->id);
	smtp_sess_enter(s, SMTP_STATE_INIT);
	if (s->kind == SMTP_PORT_SMTPS)
		smtp_sess_reply(s, 220, NULL, "%s ESMTP petrel", s->srv->cfg->hostname);
}

void
smtp_sess_cmd_starttls(struct smtp_session *s, const struct smtp_cmd *c)
{
	struct bufferevent *tls;
	SSL	*ssl;

	if (s->tls || s->srv->tls == NULL || s->kind == SMTP_PORT_SMTPS) {
		/* RFC 3207 4.2: not inside TLS */
		smtp_sess_reply(s, 503, "5.5.1", "Error: TLS already active or not "
		    "offered");
		return;
	}
	if (c->arg_len != 0) {
		smtp_sess_reply(s, 501, "5.5.4", "Syntax: STARTTLS");
		return;
	}
	if (s->state != SMTP_STATE_INIT && s->state != SMTP_STATE_READY) {
		smtp_sess_reply(s, 503, "5.5.1", "Error: STARTTLS inside a transaction");
		return;
	}
	if ((ssl = tls_ssl_new(s->srv->tls)) == NULL) {
		smtp_sess_reply(s, 454, "4.7.0", "TLS not available due to temporary "
		    "reason");
		return;
	}
	smtp_sess_reply(s, 220, "2.0.0", "Ready to start TLS");
	if (s->plain) {
		/* the filter below needs libevent to write this socket */
		s->plain = false;
		bufferevent_enable(s->bev, EV_WRITE);
	}
	/*
	 * CVE-2011-0411: whatever the client pipelined after STARTTLS came
	 * in plaintext; it is dropped, never run inside TLS.
	 */
	evbuffer_drain(bufferevent_get_input(s->bev),
	    evbuffer_get_length(bufferevent_get_input(s->bev)));
	/* RFC 3207 4.2: forget everything learnt before TLS */
	smtp_sess_txn_reset(s);
	free(s->helo);
	s->helo = NULL;
	s->esmtp = false;
	tls = bufferevent_openssl_filter_new(s->srv->base, s->bev, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (tls == NULL) {
		SSL_free(ssl);
		smtp_sess_close(s);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	s->bev = tls;
	bufferevent_setcb(tls, smtp_sess_read_cb, smtp_sess_write_cb,
	    smtp_sess_event_cb, s);
	bufferevent_setwatermark(tls, EV_READ, 0, smtp_sess_input_max(s));
	smtp_sess_enter(s, SMTP_STATE_TLS);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
}

/* ---- AUTH (RFC 4954) ---------------------------------------------- */

static struct auth_fail **
auth_fail_slot(struct smtp_server *srv, const char *addr)
{
	uint32_t	 h = str_hash(addr);
	uint64_t	 now = now_usec();
	uint64_t	 window = (uint64_t)srv->cfg->auth_failure_window *
	    1000000u;

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

void
smtp_sess_auth_end(struct smtp_session *s)
{
	if (s->sasl != NULL)
		sasl_free(s->sasl);
	s->sasl = NULL;
	smtp_sess_enter(s, SMTP_STATE_READY);
}

static void
auth_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_session *s = arg;

	(void)fd;
	(void)what;
	smtp_sess_reply(s, 535, "5.7.8", "Error: authentication failed");
	smtp_sess_auth_end(s);
	bufferevent_enable(s->bev, EV_READ);
	smtp_sess_process(s);
	if (s->eof)
		smtp_sess_eof(s);
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
		smtp_sess_reply(s, 421, "4.7.0", "%s Error: too many failed "
		    "authentication attempts", srv->cfg->hostname);
		smtp_sess_auth_end(s);
		smtp_sess_close(s);
		return;
	}
	/* slow down guessing: 1 s per failure so far, capped */
	struct timeval tv = { n < SMTP_AUTH_DELAY_MAX ? n :
	    SMTP_AUTH_DELAY_MAX, 0 };
	if (s->delay_ev == NULL)
		s->delay_ev = evtimer_new(srv->base, auth_delay_cb, s);
	smtp_sess_enter(s, SMTP_STATE_AUTHWAIT);
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
	smtp_sess_reply(s, 235, "2.7.0", "Authentication successful");
	smtp_sess_auth_end(s);
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
		smtp_sess_free(s);
		return;
	}
	auth_status(s, sasl_password_result(s->sasl, j->ok), NULL);
	free(j);
	if (s->state != SMTP_STATE_AUTHWAIT && s->state != SMTP_STATE_QUIT) {
		bufferevent_enable(s->bev, EV_READ);
		smtp_sess_process(s);
		if (s->eof)
			smtp_sess_eof(s);
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
			smtp_sess_reply(s, 334, NULL, "%s", out);
			smtp_sess_enter(s, SMTP_STATE_AUTH);
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
			smtp_sess_enter(s, SMTP_STATE_AUTHWAIT);
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
			smtp_sess_reply(s, 501, "5.5.2", "Error: cannot decode response");
			smtp_sess_auth_end(s);
			return;
		case SASL_ERR_CANCEL:
			smtp_sess_reply(s, 501, "5.7.0", "Error: authentication "
			    "cancelled");
			smtp_sess_auth_end(s);
			return;
		case SASL_ERR_PROTOCOL:
			smtp_sess_reply(s, 501, "5.5.2", "Error: malformed "
			    "authentication message");
			smtp_sess_auth_end(s);
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

void
smtp_sess_cmd_auth(struct smtp_session *s, const struct smtp_cmd *c)
{
	const char *sp, *out = NULL;
	enum sasl_status st;
	size_t	 mlen;
	unsigned char cb[32];
	bool	 have_cb;

	if (!s->tls) {
		/* RFC 4954 4: never send passwords in the clear */
		smtp_sess_reply(s, 538, "5.7.11", "Encryption required for requested "
		    "authentication mechanism");
		return;
	}
	if (s->state == SMTP_STATE_INIT) {
		smtp_sess_reply(s, 503, "5.5.1", "Error: send EHLO first");
		return;
	}
	if (s->auth_user != NULL) {
		smtp_sess_reply(s, 503, "5.5.1", "Error: already authenticated");
		return;
	}
	if (s->state != SMTP_STATE_READY) {
		smtp_sess_reply(s, 503, "5.5.1", "Error: AUTH not allowed during a mail "
		    "transaction");
		return;
	}
	if (auth_failures(s->srv, s->addr) >= s->srv->cfg->auth_max_failures) {
		smtp_sess_reply(s, 421, "4.7.0", "%s Error: too many failed "
		    "authentication attempts", s->srv->cfg->hostname);
		smtp_sess_close(s);
		return;
	}
	sp = memchr(c->arg, ' ', c->arg_len);
	mlen = sp != NULL ? (size_t)(sp - c->arg) : c->arg_len;
	s->sasl_mech = sasl_mech_parse(c->arg, mlen);
	if (c->arg_len == 0) {
		smtp_sess_reply(s, 501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
		return;
	}
	if (s->sasl_mech == SASL_MECH_NONE) {
		smtp_sess_reply(s, 504, "5.5.4", "Unsupported authentication mechanism");
		return;
	}
	have_cb = tls_exporter_binding(bufferevent_openssl_get_ssl(s->bev), cb)
	    == 0;
	if (s->sasl_mech == SASL_MECH_SCRAM_SHA_256_PLUS && !have_cb) {
		smtp_sess_reply(s, 504, "5.5.4", "Unsupported authentication mechanism");
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
void
smtp_sess_auth_line(struct smtp_session *s, const char *line, size_t len)
{
	const char *out = NULL;

	enum sasl_status st = sasl_step(s->sasl, line, len, false, &out);

	auth_status(s, st, out);
}
