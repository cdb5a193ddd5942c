#ifndef PETREL_SMTP_SESSION_H
#define PETREL_SMTP_SESSION_H
/*
 * session.h: the server session's insides, shared by server.c (state,
 * commands, I/O), session_data.c (DATA, BDAT, commit) and session_auth.c
 * (STARTTLS, AUTH). Private to src/smtp/: nothing else includes it.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/sasl.h"
#include "queue/envelope.h"
#include "smtp/body.h"
#include "smtp/parse.h"
#include "smtp/server.h"

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
	/*
	 * A plain socket: replies are written straight from flush_ev, once
	 * per loop pass, and EV_WRITE is enabled only while a write would
	 * block (libevent would add and remove it around every reply).
	 */
	bool			 plain;
	bool			 flush_pending;
	struct event		*flush_ev;	/* owned */
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
	int			 spool_err;	/* errno of the last spool failure */
};

/* Shared between the session files; loop thread only. */
const char *	smtp_sess_state_name(enum smtp_state st);
void	smtp_sess_enter(struct smtp_session *s, enum smtp_state st);
void	smtp_sess_reply(struct smtp_session *s, int code, const char *enh,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void	smtp_sess_log_reject(struct smtp_session *s, const char *cmd,
	    int code, const char *enh, const char *what);
void	smtp_sess_txn_reset(struct smtp_session *s);
void	smtp_sess_close(struct smtp_session *s);
void	smtp_sess_free(struct smtp_session *s);
void	smtp_sess_process(struct smtp_session *s);
/* Bytes of input a session buffers at most (its read watermark). */
size_t	smtp_sess_input_max(const struct smtp_session *s);
void	smtp_sess_read_cb(struct bufferevent *bev, void *arg);
void	smtp_sess_write_cb(struct bufferevent *bev, void *arg);
void	smtp_sess_event_cb(struct bufferevent *bev, short what, void *arg);
void	smtp_sess_eof(struct smtp_session *s);
void	smtp_sess_tls_ready(struct smtp_session *s);
void	smtp_sess_cmd_starttls(struct smtp_session *s,
	    const struct smtp_cmd *c);
void	smtp_sess_auth_end(struct smtp_session *s);
void	smtp_sess_cmd_auth(struct smtp_session *s, const struct smtp_cmd *c);
void	smtp_sess_auth_line(struct smtp_session *s, const char *line,
	    size_t len);
void	smtp_sess_cmd_data(struct smtp_session *s, const struct smtp_cmd *c);
void	smtp_sess_cmd_bdat(struct smtp_session *s, const struct smtp_cmd *c);
void	smtp_sess_message_end(struct smtp_session *s);
void	smtp_sess_hdr_flush(struct smtp_session *s, size_t hlen);
void	smtp_sess_body_write(struct smtp_session *s, const char *buf,
	    size_t len);
bool	smtp_sess_data_input(struct smtp_session *s, struct evbuffer *in);
bool	smtp_sess_bdat_input(struct smtp_session *s, struct evbuffer *in);
void	smtp_sess_bdat_end(struct smtp_session *s);

#endif
