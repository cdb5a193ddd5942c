/*
 * listen.c: listening sockets (libevent evconnlistener). Binds numeric
 * addresses only; what a connection means is the callback's business.
 */
#include "net/listen.h"

#include <errno.h>
#include <event2/listener.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"

#define LISTEN_BACKLOG	1024

struct listener {
	struct evconnlistener	*ev;	/* owned */
	listen_cb		 cb;
	void			*arg;	/* borrowed */
};

static void
accept_cb(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa,
    int len, void *arg)
{
	struct listener	*ln = arg;

	(void)ev;
	ln->cb(fd, sa, (socklen_t)len, ln->arg);
}

static void
error_cb(struct evconnlistener *ev, void *arg)
{
	int	 e = EVUTIL_SOCKET_ERROR();

	(void)ev;
	(void)arg;
	/* EMFILE and friends: log and keep going; the loop retries */
	log_err("- listen accept failed: %s", evutil_socket_error_to_string(e));
}

int
listener_open(struct event_base *base, const struct config_listen *l,
    listen_cb cb, void *arg, struct listener **out, char *err, size_t errlen)
{
	struct addrinfo	 hints, *ai = NULL;
	struct listener	*ln;
	int		 rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(l->host, l->port, &hints, &ai)) != 0) {
		snprintf(err, errlen, "listen [%s]:%s: %s", l->host, l->port,
		    gai_strerror(rc));
		return -1;
	}
	ln = xcalloc(1, sizeof(*ln));
	ln->cb = cb;
	ln->arg = arg;
	ln->ev = evconnlistener_new_bind(base, accept_cb, ln,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
	    LISTEN_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
	freeaddrinfo(ai);
	if (ln->ev == NULL) {
		int	 e = errno;

		free(ln);
		if (l->optional && (e == EADDRNOTAVAIL || e == EAFNOSUPPORT))
			return 1;
		snprintf(err, errlen, "listen [%s]:%s: %s", l->host, l->port,
		    strerror(e));
		return -1;
	}
	evconnlistener_set_error_cb(ln->ev, error_cb);
	*out = ln;
	return 0;
}

void
listener_free(struct listener *ln)
{
	if (ln == NULL)
		return;
	evconnlistener_free(ln->ev);
	free(ln);
}
