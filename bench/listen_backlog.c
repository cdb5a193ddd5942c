/*
 * listen_backlog.c: an LD_PRELOAD shim that raises the backlog a program
 * passes to listen(2) to at least BENCH_LISTEN_BACKLOG (default 128).
 * For the "OpenSMTPD (backlog 128)" peer only: OpenSMTPD listens with a
 * compiled-in backlog of 5, and 20 clients connecting at once on loopback
 * overflow it (dropped SYNs, 1 s+ retransmits), which hides what the
 * server itself costs. Nothing else about the program is changed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/socket.h>

int
listen(int fd, int backlog)
{
	static int	(*real_listen)(int, int);
	const char	*env;
	int		 min = 128;

	if (real_listen == NULL)
		real_listen = (int (*)(int, int))dlsym(RTLD_NEXT, "listen");
	if (real_listen == NULL)
		return -1;
	if ((env = getenv("BENCH_LISTEN_BACKLOG")) != NULL && atoi(env) > 0)
		min = atoi(env);
	return real_listen(fd, backlog < min ? min : backlog);
}
