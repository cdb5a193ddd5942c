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
 * With -j FILE it is the durable floor: about the least a server that
 * answers 250 only once the message is on stable storage can do on this
 * disk. The data goes into FILE, written full of zeros at start (so a
 * write there changes no block map and no size: an fdatasync of it writes
 * the data and flushes the disk's cache, nothing more), one message after
 * another, round when it reaches the end. Syncer threads (-t, default 1)
 * each start an fdatasync when messages were written since the last one
 * began; one covers every message written before it began, and those get
 * their 250 when it returns (group commit). No file per message, no name,
 * no directory, no reading back: a server that keeps each message in a
 * file of its own, as MTAs do, does more for each.
 *
 * usage: smtp_floor -p PORT [-a ADDRESS] [-b BACKLOG] [-j FILE [-t N]]
 * Stops on SIGTERM or SIGINT. Prints nothing unless it fails.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define FLOOR_READ	65536	/* bytes per read(2) */
#define FLOOR_LINE	1024	/* longest command line kept */
#define FLOOR_EVENTS	256
#define FLOOR_OUT	4096	/* replies to one read: pipelined commands */
#define FLOOR_JOURNAL	(64u << 20)	/* bytes of -j FILE, reused round */

static const char	 eod[] = "\r\n.\r\n";
#define EOD_LEN		5

struct conn {
	int	 fd;
	bool	 data;		/* inside DATA */
	int	 match;		/* bytes of eod matched at the last read's end */
	size_t	 llen;		/* command line so far */
	char	 line[FLOOR_LINE];
	/* durable floor: waiting for the sync of generation gen */
	bool	 waiting;
	bool	 muted;		/* out of epoll while waiting */
	uint64_t gen;
	char	*rest;		/* owned: input after the data, for later */
	size_t	 rest_len;
	struct conn *next_wait;
};

/*
 * The durable floor's journal. The loop writes and counts: written is the
 * generation of the last message whose data is written; the syncer
 * threads make generations durable and say so through efd.
 */
struct journal {
	int		 fd;		/* -1: not the durable floor */
	uint64_t	 off;		/* next write; loop only */
	pthread_mutex_t	 mtx;
	pthread_cond_t	 cond;
	uint64_t	 written;	/* guarded by mtx */
	uint64_t	 started;	/* guarded by mtx: a sync covers it */
	uint64_t	 synced;	/* guarded by mtx */
	int		 efd;		/* eventfd: synced moved */
	struct conn	*wait_head;	/* loop only: conns waiting */
};

static struct journal	 jn = { .fd = -1 };
static volatile sig_atomic_t	 stop;

static int	 journal_write(const char *p, size_t n);
static void	 journal_wait(struct conn *c, const char *p, size_t n);

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
			size_t k = data_bytes(c, p + i, n - i);

			if (jn.fd != -1 && journal_write(p + i, k) == -1)
				return false;
			i += k;
			if (c->data)
				continue;
			if (jn.fd == -1) {
				keep = out_add(out, &olen,
				    "250 2.0.0 Ok: discarded\r\n");
				continue;
			}
			/* the 250 waits for the sync; so does what follows */
			journal_wait(c, p + i, n - i);
			break;
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
	if (!c->muted)
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->rest);
	free(c);
}

/* ---- the durable floor ------------------------------------------- */

/* Fill path with zeros and keep it open; -1 on failure. */
static int
journal_open(const char *path)
{
	static char	 zeros[1 << 20];
	int		 fd;

	if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600))
	    == -1)
		return -1;
	for (uint64_t off = 0; off < FLOOR_JOURNAL; off += sizeof(zeros))
		if (pwrite(fd, zeros, sizeof(zeros), (off_t)off) !=
		    (ssize_t)sizeof(zeros)) {
			close(fd);
			return -1;
		}
	if (fsync(fd) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Data bytes into the journal, round at its end; -1 on failure. */
static int
journal_write(const char *p, size_t n)
{
	while (n > 0) {
		size_t	 k = n;
		ssize_t	 w;

		if (jn.off == FLOOR_JOURNAL)
			jn.off = 0;
		if (k > FLOOR_JOURNAL - jn.off)
			k = FLOOR_JOURNAL - jn.off;
		if ((w = pwrite(jn.fd, p, k, (off_t)jn.off)) <= 0)
			return -1;
		jn.off += (uint64_t)w;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* c's message is written: wait for its sync, keeping the input after it */
static void
journal_wait(struct conn *c, const char *p, size_t n)
{
	pthread_mutex_lock(&jn.mtx);
	c->gen = ++jn.written;
	pthread_cond_signal(&jn.cond);
	pthread_mutex_unlock(&jn.mtx);
	c->waiting = true;
	if (n > 0) {
		if ((c->rest = malloc(n)) == NULL)
			abort();	/* a benchmark tool: no way on */
		memcpy(c->rest, p, n);
		c->rest_len = n;
	}
	c->next_wait = jn.wait_head;
	jn.wait_head = c;
}

static void *
journal_syncer(void *arg)
{
	uint64_t	 target, one = 1;

	(void)arg;
	pthread_mutex_lock(&jn.mtx);
	for (;;) {
		while (jn.started == jn.written)
			pthread_cond_wait(&jn.cond, &jn.mtx);
		target = jn.started = jn.written;
		pthread_mutex_unlock(&jn.mtx);
		/* writes out every dirty page and waits for every page under
		   write-out, other syncers' too, then flushes: it covers all
		   written before it began */
		if (fdatasync(jn.fd) == -1) {
			perror("smtp_floor: fdatasync");
			exit(1);
		}
		pthread_mutex_lock(&jn.mtx);
		if (target > jn.synced)
			jn.synced = target;
		if (write(jn.efd, &one, sizeof(one)) != sizeof(one))
			abort();
	}
	return NULL;
}

/* Answer the messages now durable; go on with what their clients sent. */
static void
journal_synced(int ep)
{
	struct conn	**pp = &jn.wait_head, *c, *done = NULL;
	uint64_t	 synced, n;

	if (read(jn.efd, &n, sizeof(n)) != sizeof(n))
		return;
	pthread_mutex_lock(&jn.mtx);
	synced = jn.synced;
	pthread_mutex_unlock(&jn.mtx);
	while ((c = *pp) != NULL) {
		if (c->gen <= synced) {
			*pp = c->next_wait;
			c->next_wait = done;
			done = c;
		} else
			pp = &c->next_wait;
	}
	for (; done != NULL; done = c) {
		static const char ok[] = "250 2.0.0 Ok: kept\r\n";
		struct epoll_event ev = { .events = EPOLLIN };
		char	*rest;
		bool	 keep;

		c = done->next_wait;
		done->waiting = false;
		keep = write(done->fd, ok, sizeof(ok) - 1) ==
		    (ssize_t)sizeof(ok) - 1;
		if (keep && done->muted) {
			ev.data.ptr = done;
			keep = epoll_ctl(ep, EPOLL_CTL_ADD, done->fd, &ev) == 0;
			done->muted = false;
		}
		if (keep && (rest = done->rest) != NULL) {
			done->rest = NULL;
			keep = input(done, rest, done->rest_len);
			free(rest);
		}
		if (!keep && !done->waiting)
			conn_close(ep, done);
	}
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
	    "[-b BACKLOG] [-j FILE [-t SYNCERS]]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in	 sin = { .sin_family = AF_INET };
	struct epoll_event	 evs[FLOOR_EVENTS], lev = { .events = EPOLLIN };
	static char		 buf[FLOOR_READ];
	const char		*addr = "127.0.0.1", *journal = NULL;
	int			 port = 0, backlog = 1024, opt, lfd, ep, one = 1,
				 syncers = 1;
	struct sigaction	 sa = { .sa_handler = on_signal };

	while ((opt = getopt(argc, argv, "a:b:j:p:t:")) != -1) {
		switch (opt) {
		case 'a':
			addr = optarg;
			break;
		case 'b':
			backlog = atoi(optarg);
			break;
		case 'j':
			journal = optarg;
			break;
		case 't':
			syncers = atoi(optarg);
			break;
		case 'p':
			port = atoi(optarg);
			break;
		default:
			return usage();
		}
	}
	if (port <= 0 || port > 65535 || backlog <= 0 || syncers < 1 ||
	    inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		return usage();
	sin.sin_port = htons((unsigned short)port);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		perror("smtp_floor: epoll_create1");
		return 1;
	}
	/* the journal first: a client that can connect finds it ready */
	if (journal != NULL) {
		struct epoll_event jev = { .events = EPOLLIN };
		pthread_t	 t;

		pthread_mutex_init(&jn.mtx, NULL);
		pthread_cond_init(&jn.cond, NULL);
		jev.data.ptr = &jn;	/* &jn: the syncer's eventfd */
		if ((jn.fd = journal_open(journal)) == -1 ||
		    (jn.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1 ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, jn.efd, &jev) == -1) {
			perror("smtp_floor: journal");
			return 1;
		}
		for (int i = 0; i < syncers; i++)
			if (pthread_create(&t, NULL, journal_syncer, NULL)
			    != 0) {
				perror("smtp_floor: journal syncer");
				return 1;
			}
	}
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    listen(lfd, backlog) == -1) {
		perror("smtp_floor: listen");
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
			if ((void *)c == (void *)&jn) {
				journal_synced(ep);
				continue;
			}
			if (c->waiting) {
				/* input before its 250: read once answered
				   (off, not just muted: a hangup would still
				   be reported, at every wait) */
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				c->muted = true;
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
