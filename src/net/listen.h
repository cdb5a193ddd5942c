#ifndef PETREL_NET_LISTEN_H
#define PETREL_NET_LISTEN_H
/*
 * listen.h: listening sockets on the event loop. Each accepted connection
 * is handed to a callback with its peer address; nothing else.
 */
#include <event2/event.h>
#include <sys/socket.h>

#include "core/config.h"

struct listener;

typedef void (*listen_cb)(int fd, const struct sockaddr *sa, socklen_t len,
    void *arg);

/*
 * Bind and listen on l. Returns 0 with *out (free with listener_free()),
 * 1 if l is optional and its address is not available here (nothing
 * opened), or -1 with err set.
 */
int	listener_open(struct event_base *base, const struct config_listen *l,
	    listen_cb cb, void *arg, struct listener **out, char *err,
	    size_t errlen);
void	listener_free(struct listener *ln);

#endif
