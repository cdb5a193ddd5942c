#ifndef PETREL_SMTP_SERVER_H
#define PETREL_SMTP_SERVER_H
/*
 * server.h: the SMTP server side: one session per accepted connection, a
 * state machine driven by libevent. Sessions never touch the disk
 * directly: message bytes go through the spool module.
 */
#include <event2/event.h>
#include <sys/socket.h>

#include "core/config.h"
#include "core/table.h"
#include "core/workq.h"
#include "deliver/local.h"
#include "queue/scheduler.h"
#include "queue/spool.h"

struct smtp_server;
struct tls_ctx;

/* What a listener is for. */
enum smtp_port_kind {
	SMTP_PORT_MX,		/* port 25: opportunistic STARTTLS */
	SMTP_PORT_SUBMISSION,	/* port 587 (RFC 6409): STARTTLS, AUTH first */
	SMTP_PORT_SMTPS,	/* port 465 (RFC 8314): implicit TLS, AUTH */
};

/* What the server uses; all borrowed: they outlive the server. */
struct smtp_deps {
	struct event_base	*base;
	const struct config	*cfg;
	struct spool		*spool;
	struct sched		*sched;
	const struct local_db	*ldb;
	struct workq		*wq;		/* password checks */
	const struct table	*sender_map;	/* "sender: login, ..." */
};

struct smtp_server *smtp_server_new(const struct smtp_deps *deps);
/* Use t for new TLS sessions (borrowed until replaced; sessions keep what
   they started with). NULL: no STARTTLS, no implicit TLS. */
void		 smtp_server_set_tls(struct smtp_server *srv,
		    struct tls_ctx *t);
/* Take a new connection (fd is owned from now on). */
void		 smtp_server_accept(struct smtp_server *srv, int fd,
		    const struct sockaddr *sa, socklen_t salen,
		    enum smtp_port_kind kind);
/*
 * Run a session on an already connected bufferevent (one end of a
 * bufferevent_pair: the session fuzz harness). Takes ownership of bev.
 * No session limits; not for implicit TLS.
 */
struct bufferevent;
void		 smtp_server_attach(struct smtp_server *srv,
		    struct bufferevent *bev, const struct sockaddr *sa,
		    enum smtp_port_kind kind);
unsigned	 smtp_server_sessions(const struct smtp_server *srv);
/* Close every session (no reply); sessions waiting for a commit go when
   their job comes back (run the worker pool down after this). */
void		 smtp_server_stop(struct smtp_server *srv);
/* Free the server; call after smtp_server_stop() and the pool stopped. */
void		 smtp_server_free(struct smtp_server *srv);

#endif
