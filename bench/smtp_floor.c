/*
 * smtp_floor.c: the least an SMTP server can do, for the benchmark's
 * protocol floor. It answers every command with a success, finds the end
 * of the data, and keeps nothing: one thread, epoll, reads of 64 KiB, the
 * data scanned with memchr/memmem, never a byte at a time. Postfix's
 * smtp-sink does the same job but takes the data one byte at a time (about
 * 0.5 ms of CPU per 100 KiB message here), so on big messages it measured
 * itself. This is a benchmark tool, not a server: no limits beyond a line
 * length, no TLS, no timeouts; it runs on loopback for the length of a run.
 *
 * usage: smtp_floor -p PORT [-a ADDRESS] [-b BACKLOG]
 * Stops on SIGTERM or SIGINT. Prints nothing unless it fails.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define FLOOR_READ	65536	/* bytes per read(2) */
#define FLOOR_LINE	1024	/* longest command line kept */
#define FLOOR_EVENTS	256
#define FLOOR_OUT	4096	/* replies to one read: pipelined commands */

static const char	 eod[] = "\r\n.\r\n";
#define EOD_LEN		5

struct conn {
	int	 fd;
	bool	 data;		/* inside DATA */
	int	 match;		/* bytes of eod matched at the last read's end */
	size_t	 llen;		/* command line so far */
	char	 line[FLOOR_LINE];
};

static volatile sig_atomic_t	 stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Append s to the reply buffer; false when it is full (never, in use). */
static bool
out_add(char *out, size_t *olen, const char *s)
{
	size_t n = strlen(s);

	if (*olen + n > FLOOR_OUT)
		return false;
	memcpy(out + *olen, s, n);
	*olen += n;
	return true;
}

/* One command line (CRLF stripped); false: close after the reply. */
static bool
command(struct conn *c, char *out, size_t *olen)
{
	const char *l = c->line;

	if (c->llen < 4)
		return out_add(out, olen, "500 5.5.2 Error\r\n");
	if (strncasecmp(l, "HELO", 4) == 0)
		return out_add(out, olen, "250 floor.bench.local\r\n");
	if (strncasecmp(l, "EHLO", 4) == 0)
		return out_add(out, olen, "250-floor.bench.local\r\n"
		    "250-PIPELINING\r\n250 8BITMIME\r\n");
	if (strncasecmp(l, "DATA", 4) == 0) {
		c->data = true;
		c->match = 2;	/* the DATA line's CRLF: "." CRLF ends it */
		return out_add(out, olen, "354 End data with .\r\n");
	}
	if (strncasecmp(l, "QUIT", 4) == 0) {
		out_add(out, olen, "221 2.0.0 Bye\r\n");
		return false;
	}
	return out_add(out, olen, "250 2.0.0 Ok\r\n");
}

/*
 * Data bytes: how many belong to the message (up to and including the
 * end marker when it is there); sets c->data false at the marker.
 */
static size_t
data_bytes(struct conn *c, const char *p, size_t n)
{
	size_t i = 0;
	const char *hit;

	/* a marker begun in the last read, continued here */
	while (c->match > 0 && i < n) {
		if (p[i] == eod[c->match]) {
			i++;
			if (++c->match == EOD_LEN) {
				c->data = false;
				c->match = 0;
				return i;
			}
		} else {
			/* no end of the marker overlaps a start of it but
			   "\r", and a "\r" is followed by "\n": this byte,
			   rescanned below, is the only one that may begin
			   the marker anew */
			c->match = 0;
		}
	}
	if ((hit = memmem(p + i, n - i, eod, EOD_LEN)) != NULL) {
		c->data = false;
		c->match = 0;
		return (size_t)(hit - p) + EOD_LEN;
	}
	/* the longest end of p that begins the marker */
	for (int k = EOD_LEN - 1; k > 0; k--)
		if (n - i >= (size_t)k && memcmp(p + n - k, eod, k) == 0) {
			c->match = k;
			break;
		}
	return n;
}

/* Everything read; false: close the connection. */
static bool
input(struct conn *c, const char *p, size_t n)
{
	char	 out[FLOOR_OUT];
	size_t	 olen = 0, i = 0;
	bool	 keep = true;

	while (i < n && keep) {
		if (c->data) {
			i += data_bytes(c, p + i, n - i);
			if (!c->data)
				keep = out_add(out, &olen,
				    "250 2.0.0 Ok: discarded\r\n");
			continue;
		}
		const char *lf = memchr(p + i, '\n', n - i);
		size_t run = lf == NULL ? n - i : (size_t)(lf - (p + i));

		if (c->llen + run >= FLOOR_LINE)
			return false;	/* no such command in a benchmark */
		memcpy(c->line + c->llen, p + i, run);
		c->llen += run;
		i += run;
		if (lf == NULL)
			break;
		i++;	/* the LF */
		if (c->llen > 0 && c->line[c->llen - 1] == '\r')
			c->llen--;
		c->line[c->llen] = '\0';
		keep = command(c, out, &olen);
		c->llen = 0;
	}
	if (olen > 0 && write(c->fd, out, olen) != (ssize_t)olen)
		return false;	/* a full socket buffer: not in a benchmark */
	return keep;
}

static void
conn_close(int ep, struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

static void
accept_all(int ep, int lfd)
{
	static const char greeting[] = "220 floor.bench.local ESMTP\r\n";
	int fd;

	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC))
	    != -1) {
		struct conn *c = calloc(1, sizeof(*c));
		struct epoll_event ev = { .events = EPOLLIN };

		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		ev.data.ptr = c;
		if (write(fd, greeting, sizeof(greeting) - 1) !=
		    (ssize_t)sizeof(greeting) - 1 ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1) {
			close(fd);
			free(c);
		}
	}
}

static int
usage(void)
{
	fprintf(stderr, "usage: smtp_floor -p PORT [-a ADDRESS] "
	    "[-b BACKLOG]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in	 sin = { .sin_family = AF_INET };
	struct epoll_event	 evs[FLOOR_EVENTS], lev = { .events = EPOLLIN };
	static char		 buf[FLOOR_READ];
	const char		*addr = "127.0.0.1";
	int			 port = 0, backlog = 1024, opt, lfd, ep, one = 1;
	struct sigaction	 sa = { .sa_handler = on_signal };

	while ((opt = getopt(argc, argv, "a:b:p:")) != -1) {
		switch (opt) {
		case 'a':
			addr = optarg;
			break;
		case 'b':
			backlog = atoi(optarg);
			break;
		case 'p':
			port = atoi(optarg);
			break;
		default:
			return usage();
		}
	}
	if (port <= 0 || port > 65535 || backlog <= 0 ||
	    inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		return usage();
	sin.sin_port = htons((unsigned short)port);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(lfd, backlog) == -1) {
		perror("smtp_floor: listen");
		return 1;
	}
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("smtp_floor: epoll_create1");
		return 1;
	}
	lev.data.ptr = NULL;	/* NULL: the listening socket */
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) == -1) {
		perror("smtp_floor: epoll_ctl");
		return 1;
	}
	while (!stop) {
		int n = epoll_wait(ep, evs, FLOOR_EVENTS, -1);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			perror("smtp_floor: epoll_wait");
			return 1;
		}
		for (int k = 0; k < n; k++) {
			struct conn *c = evs[k].data.ptr;
			ssize_t got;

			if (c == NULL) {
				accept_all(ep, lfd);
				continue;
			}
			got = read(c->fd, buf, sizeof(buf));
			if (got == -1 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (got <= 0 || !input(c, buf, (size_t)got))
				conn_close(ep, c);
		}
	}
	return 0;
}
