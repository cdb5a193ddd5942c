#ifndef PETREL_SMTP_CLIENT_H
#define PETREL_SMTP_CLIENT_H
/*
 * client.h: the SMTP and LMTP client (RFC 5321, RFC 2033): one message
 * over one connection, driven by libevent on the loop thread. It connects,
 * greets (EHLO, HELO fallback; LHLO for LMTP), upgrades with STARTTLS when
 * offered (or required), authenticates to a smarthost, sends MAIL, RCPT
 * (pipelined when offered) and DATA (dot-stuffed) or BDAT, and reports a
 * result per recipient. A connection whose transaction ended normally may
 * be kept open for the caller (struct smtp_client_conn) and carry the next
 * message to the same peer. It decides no policy: the caller routes,
 * retries, bounces and decides how long and how often a connection is
 * used.
 */
#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define SMTP_CLIENT_TEXT_MAX	512

enum smtp_client_result {
	SMTP_CLIENT_PENDING = 0,
	SMTP_CLIENT_OK,		/* accepted (2xx) */
	SMTP_CLIENT_TEMP,	/* 4xx or the connection failed mid-way */
	SMTP_CLIENT_PERM,	/* 5xx */
};

struct smtp_client_rcpt {
	const char	*addr;		/* borrowed */
	unsigned	 notify;	/* SMTP_NOTIFY_* bits, 0 = not given */
	const char	*orcpt;		/* borrowed or NULL: "rfc822;xtext" */
	/* filled in by the client: */
	enum smtp_client_result result;
	int		 code;		/* reply code, 0 if none */
	char		 enh[16];	/* "5.1.1" or "" */
	char		 text[SMTP_CLIENT_TEXT_MAX]; /* reply as one line, for
						   logs and DSN diagnostics:
						   its text without code
						   and enh (lines joined);
						   our own words if code
						   is 0 */
};

/* The message to send; everything borrowed until done() runs. */
struct smtp_client_msg {
	const char	*from;		/* "" = null sender */
	bool		 eightbit;	/* BODY=8BITMIME */
	bool		 smtputf8;	/* needs SMTPUTF8 */
	int		 ret;		/* enum smtp_ret */
	const char	*envid;		/* xtext or NULL */
	int		 fd;		/* spool file: message from body_off */
	off_t		 body_off;
	uint64_t	 size;		/* message bytes (for SIZE=) */
	struct smtp_client_rcpt *rcpt;
	size_t		 nrcpt;
	bool		 peer_dsn;	/* out: the peer offered DSN, so it
					   sends any later notices */
};

enum smtp_client_tls {
	SMTP_CLIENT_TLS_NONE,		/* never */
	SMTP_CLIENT_TLS_OPPORTUNISTIC,	/* STARTTLS when offered, no
					   verification (RFC 3207 4.1) */
	SMTP_CLIENT_TLS_REQUIRED,	/* STARTTLS or fail (temp); the
					   certificate is checked only if
					   ssl_ctx verifies (peer_name is
					   then the name expected) */
};

struct smtp_client_opts {
	bool		 lmtp;		/* LHLO, a reply per rcpt after DATA */
	const char	*helo;		/* our name */
	const char	*peer_name;	/* for logs and SNI: "mx.example.org" */
	enum smtp_client_tls tls;
	SSL_CTX		*ssl_ctx;	/* client context, or NULL: no TLS */
	const char	*auth_user;	/* smarthost AUTH PLAIN/LOGIN, or NULL;
					   only sent under TLS */
	const char	*auth_pass;
	int		 connect_timeout; /* seconds (RFC 5321 4.5.3.2) */
	int		 command_timeout; /* greeting, EHLO, MAIL, RCPT: 300 */
	int		 data_timeout;	/* DATA init 120, blocks 180, end 600:
					   one value here */
	bool		 park;		/* keep the connection after a
					   transaction that ended normally,
					   for smtp_client_take_conn(),
					   instead of QUIT */
};

enum smtp_client_status {
	/* per-recipient results are valid (some may be TEMP/PERM) */
	SMTP_CLIENT_DONE,
	/*
	 * nothing was delivered and the next MX may be tried: connect
	 * failed, greeting 4xx/5xx, EHLO/HELO failed, TLS required but
	 * failed, or lost before MAIL. diag says why.
	 */
	SMTP_CLIENT_NEXT_HOST,
};

/*
 * diag is never NULL ("" when there is nothing to say). On NEXT_HOST every
 * rcpt is left PENDING; on DONE none is.
 */
typedef void (*smtp_client_done_cb)(void *arg, enum smtp_client_status st,
    const char *diag, const char *tls_info);

struct smtp_client;

/*
 * Connect to sa and deliver m. done runs exactly once, on the loop, after
 * the client has released the connection; the client frees itself after
 * done returns. Returns NULL (and calls nothing) only if a socket cannot
 * be made (errno set). o is copied (its strings too; ssl_ctx gets a
 * reference); a timeout of 0 means the RFC 5321 default (30/300/600).
 */
struct smtp_client *smtp_client_start(struct event_base *base,
	    const struct sockaddr *sa, socklen_t salen,
	    const struct smtp_client_opts *o, struct smtp_client_msg *m,
	    smtp_client_done_cb done, void *arg);
/*
 * Abort at once (shutdown): done runs with NEXT_HOST "aborted" before this
 * returns (or with the results, if they were complete). Inside done it
 * does nothing; after done, c is gone.
 */
void	smtp_client_abort(struct smtp_client *c);

/*
 * A connection between transactions: greeted, EHLO (and TLS, AUTH) done,
 * no transaction open. Its owner hands it to smtp_client_start_conn() or
 * smtp_client_conn_free(), exactly once.
 */
struct smtp_client_conn;

/*
 * The parked connection is of no more use: the peer closed it or spoke out
 * of turn (a 421), or it was idle too long. Runs at most once, on the
 * loop; the owner should free conn (it may do so inside the callback).
 */
typedef void (*smtp_client_conn_cb)(void *arg, struct smtp_client_conn *conn);

/*
 * Inside done() only: the connection, if o->park was set and the
 * transaction ended normally (every final reply to the end of data read,
 * no 421, nothing unexpected after it, still open); else NULL. The caller
 * owns it from then on. While it waits, gone(arg, conn) runs if it closes,
 * or once idle seconds pass (0: never). A connection not taken is closed
 * with QUIT when c is freed.
 */
struct smtp_client_conn *smtp_client_take_conn(struct smtp_client *c,
	    int idle, smtp_client_conn_cb gone, void *arg);
/*
 * Deliver m over conn as smtp_client_start() does, from MAIL on: the
 * greeting, EHLO, TLS and AUTH of its first message hold (peer name, TLS
 * info and timeouts too). Takes ownership of conn, which must not have
 * been reported gone. park: as o->park. If the peer turns out to have
 * closed conn before it answers MAIL (lost connection, time out, 421),
 * done() gets NEXT_HOST: nothing was delivered, a new connection may be
 * tried. done() never runs inside this call.
 */
struct smtp_client *smtp_client_start_conn(struct smtp_client_conn *conn,
	    bool park, struct smtp_client_msg *m, smtp_client_done_cb done,
	    void *arg);
/*
 * Close conn: if it is still open, QUIT is sent without waiting for the
 * 221 (nothing is pending on it, and the loop may be stopping). Frees it;
 * NULL is fine.
 */
void	smtp_client_conn_free(struct smtp_client_conn *conn);

#endif
