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
#include "deliver/local.h"
#include "queue/scheduler.h"
#include "queue/spool.h"

struct smtp_server;

/* All pointers borrowed: they outlive the server. */
struct smtp_server *smtp_server_new(struct event_base *base,
		    const struct config *cfg, struct spool *sp,
		    struct sched *sched, const struct local_db *ldb);
/* Take a new connection (fd is owned from now on). */
void		 smtp_server_accept(struct smtp_server *srv, int fd,
		    const struct sockaddr *sa, socklen_t salen);
unsigned	 smtp_server_sessions(const struct smtp_server *srv);
/* Close every session (no reply); sessions waiting for a commit go when
   their job comes back (run the worker pool down after this). */
void		 smtp_server_stop(struct smtp_server *srv);
/* Free the server; call after smtp_server_stop() and the pool stopped. */
void		 smtp_server_free(struct smtp_server *srv);

#endif
