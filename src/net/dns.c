/*
 * dns.c: c-ares driven by the libevent loop: MX, A and AAAA lookups.
 * Answers are handed to callers from the loop, never from inside c-ares
 * or from the call that asked; it knows nothing of delivery policy.
 */
#include "net/dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <assert.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

enum dns_kind {
	DNS_KIND_MX,
	DNS_KIND_ADDRS,
};

/* One socket c-ares has open, watched by one libevent event. */
struct dns_sock {
	struct dns	*d;		/* borrowed: the owning resolver */
	ares_socket_t	 fd;
	struct event	*ev;		/* owned */
	struct dns_sock	*next;
};

struct dns_query;

/* One c-ares query of a dns_addrs() call: the AAAA or the A half. */
struct dns_half {
	struct dns_query *q;		/* borrowed: the query it belongs to */
	int		 family;	/* AF_INET6 or AF_INET */
	enum dns_status	 st;
	struct sockaddr_storage addr[DNS_ADDR_MAX];
	size_t		 n;
};

/* One dns_mx() or dns_addrs() call, from the call until its callback. */
struct dns_query {
	struct dns	*d;		/* borrowed: the owning resolver */
	struct dns_query *prev, *next;	/* d->queries */
	enum dns_kind	 kind;
	int		 outstanding;	/* c-ares queries not yet answered */
	struct event	*done;		/* owned: runs the callback */
	dns_mx_cb	 mx_cb;
	dns_addr_cb	 addr_cb;
	void		*arg;		/* borrowed: passed to the callback */
	unsigned	 port;
	/* DNS_KIND_MX */
	enum dns_status	 st;
	struct dns_mx	 mx[DNS_MX_MAX];
	size_t		 nmx;
	/* DNS_KIND_ADDRS: [0] AAAA, [1] A */
	struct dns_half	 half[2];
};

struct dns {
	struct event_base *base;	/* borrowed */
	ares_channel	 channel;	/* owned */
	bool		 channel_ok;	/* channel was initialised */
	bool		 freeing;	/* in dns_free(): no new c-ares work */
	struct event	*timer;		/* owned: retransmits and timeouts */
	struct dns_sock	*socks;		/* owned */
	struct dns_query *queries;	/* owned: not yet called back */
};

static pthread_once_t	 dns_once = PTHREAD_ONCE_INIT;
static int		 dns_once_rc = ARES_SUCCESS;

static void
dns_library_init(void)
{
	dns_once_rc = ares_library_init(ARES_LIB_INIT_ALL);
}

/* Arm the timer for c-ares' next deadline, or disarm it when idle. */
static void
dns_timer_update(struct dns *d)
{
	struct timeval	 tv, *tvp;

	if (d->freeing)
		return;
	if ((tvp = ares_timeout(d->channel, NULL, &tv)) == NULL)
		evtimer_del(d->timer);
	else
		evtimer_add(d->timer, tvp);
}

static void
dns_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns	*d = arg;

	(void)fd;
	(void)what;
	ares_process_fd(d->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_timer_update(d);
}

static void
dns_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dns_sock	*s = arg;
	struct dns	*d = s->d;	/* s may be freed by ares_process_fd */

	ares_process_fd(d->channel,
	    (what & EV_READ) ? (ares_socket_t)fd : ARES_SOCKET_BAD,
	    (what & EV_WRITE) ? (ares_socket_t)fd : ARES_SOCKET_BAD);
	dns_timer_update(d);
}

/* c-ares opens, changes or (readable == writable == 0) closes a socket. */
static void
dns_sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns	 *d = data;
	struct dns_sock	**sp, *s;
	short		  what;

	for (sp = &d->socks; *sp != NULL; sp = &(*sp)->next)
		if ((*sp)->fd == fd)
			break;
	s = *sp;
	if (s != NULL) {
		/* an event's flags are fixed: replace it (or drop it) */
		event_free(s->ev);
		s->ev = NULL;
	}
	if (!readable && !writable) {
		if (s != NULL) {
			*sp = s->next;
			free(s);
		}
		return;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->d = d;
		s->fd = fd;
		s->next = d->socks;
		d->socks = s;
	}
	what = EV_PERSIST | (readable ? EV_READ : 0) |
	    (writable ? EV_WRITE : 0);
	if ((s->ev = event_new(d->base, fd, what, dns_sock_cb, s)) == NULL)
		abort();	/* OOM: as xmalloc() does */
	if (event_add(s->ev, NULL) == -1)
		abort();	/* only fails on a broken base */
}

/* c-ares status to ours: the mapping dns.h promises. */
static enum dns_status
dns_status_of(int ares_status)
{
	switch (ares_status) {
	case ARES_SUCCESS:
		return DNS_OK;
	case ARES_ENODATA:
		return DNS_NODATA;
	case ARES_ENOTFOUND:
	case ARES_EBADNAME:	/* a name no DNS can hold does not exist */
		return DNS_NXDOMAIN;
	default:
		return DNS_TEMPFAIL;
	}
}

static void
dns_query_unlink(struct dns_query *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		q->d->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

/* Copy the AAAA then the A addresses into out; returns how many. */
static size_t
dns_addrs_merge(const struct dns_query *q, struct sockaddr_storage *out)
{
	size_t	 n6 = q->half[0].n, n4 = q->half[1].n, keep4, i, n = 0;

	/* over the cap, keep up to half for IPv4 so that a host without
	   IPv6 routes still has addresses to try */
	keep4 = n4 < DNS_ADDR_MAX / 2 ? n4 : DNS_ADDR_MAX / 2;
	if (n6 > DNS_ADDR_MAX - keep4)
		n6 = DNS_ADDR_MAX - keep4;
	if (n4 > DNS_ADDR_MAX - n6)
		n4 = DNS_ADDR_MAX - n6;
	for (i = 0; i < n6; i++)
		out[n++] = q->half[0].addr[i];
	for (i = 0; i < n4; i++)
		out[n++] = q->half[1].addr[i];
	return n;
}

/* Unlink q, run its callback, free it. The callback may free q->d. */
static void
dns_query_finish(struct dns_query *q)
{
	struct sockaddr_storage	 addrs[DNS_ADDR_MAX];
	enum dns_status		 st, st6, st4;
	size_t			 n;

	dns_query_unlink(q);
	event_free(q->done);
	q->done = NULL;
	if (q->kind == DNS_KIND_MX) {
		if (q->st != DNS_OK)
			q->nmx = 0;
		q->mx_cb(q->arg, q->st, q->nmx > 0 ? q->mx : NULL, q->nmx);
	} else {
		n = dns_addrs_merge(q, addrs);
		st6 = q->half[0].st;
		st4 = q->half[1].st;
		/* enum order is NODATA < NXDOMAIN < TEMPFAIL: worse is more */
		st = n > 0 ? DNS_OK : (st6 > st4 ? st6 : st4);
		if (st == DNS_OK && n == 0)
			st = DNS_NODATA;
		q->addr_cb(q->arg, st, n > 0 ? addrs : NULL, n);
	}
	free(q);
}

static void
dns_done_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dns_query_finish(arg);
}

static struct dns_query *
dns_query_new(struct dns *d, enum dns_kind kind, void *arg)
{
	struct dns_query	*q;

	q = xcalloc(1, sizeof(*q));
	q->d = d;
	q->kind = kind;
	q->arg = arg;
	q->st = DNS_TEMPFAIL;
	q->half[0].q = q->half[1].q = q;
	q->half[0].family = AF_INET6;
	q->half[1].family = AF_INET;
	q->half[0].st = q->half[1].st = DNS_TEMPFAIL;
	if ((q->done = event_new(d->base, -1, 0, dns_done_cb, q)) == NULL)
		abort();	/* OOM: as xmalloc() does */
	q->next = d->queries;
	if (d->queries != NULL)
		d->queries->prev = q;
	d->queries = q;
	return q;
}

/* One c-ares answer is in; when it was the last, call back from the loop. */
static void
dns_query_answered(struct dns_query *q)
{
	assert(q->outstanding > 0);
	if (--q->outstanding == 0 && !q->d->freeing)
		event_active(q->done, EV_TIMEOUT, 0);
}

/* The name as c-ares wants it: no trailing dot; -1 if it cannot fit. */
static int
dns_name(const char *in, char *out, size_t cap)
{
	size_t	 len = strlen(in);

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len >= cap)
		return -1;
	memcpy(out, in, len);
	out[len] = '\0';
	return 0;
}

static void
dns_mx_answer(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct dns_query	*q = arg;
	struct ares_mx_reply	*head = NULL, *r;
	size_t			 len;

	(void)timeouts;
	if (status == ARES_SUCCESS)
		status = ares_parse_mx_reply(abuf, alen, &head);
	q->st = dns_status_of(status);
	for (r = head; q->st == DNS_OK && r != NULL && q->nmx < DNS_MX_MAX;
	    r = r->next) {
		len = strlen(r->host);
		if (len > 0 && r->host[len - 1] == '.')
			len--;	/* the null MX "." becomes "" (RFC 7505) */
		if (len > DNS_NAME_MAX)
			continue;	/* cannot be a host name */
		q->mx[q->nmx].pref = r->priority;
		memcpy(q->mx[q->nmx].host, r->host, len);
		q->mx[q->nmx].host[len] = '\0';
		q->nmx++;
	}
	if (q->st == DNS_OK && q->nmx == 0)
		q->st = DNS_NODATA;
	ares_free_data(head);
	dns_query_answered(q);
}

static void
dns_addr_answer(void *arg, int status, int timeouts, unsigned char *abuf,
    int alen)
{
	struct dns_half		*h = arg;
	struct ares_addrttl	 a4[DNS_ADDR_MAX];
	struct ares_addr6ttl	 a6[DNS_ADDR_MAX];
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	int			 i, n = DNS_ADDR_MAX;

	(void)timeouts;
	if (status == ARES_SUCCESS && h->family == AF_INET6)
		status = ares_parse_aaaa_reply(abuf, alen, NULL, a6, &n);
	else if (status == ARES_SUCCESS)
		status = ares_parse_a_reply(abuf, alen, NULL, a4, &n);
	h->st = dns_status_of(status);
	for (i = 0; h->st == DNS_OK && i < n && i < DNS_ADDR_MAX; i++) {
		memset(&h->addr[h->n], 0, sizeof(h->addr[h->n]));
		if (h->family == AF_INET6) {
			sin6 = (struct sockaddr_in6 *)&h->addr[h->n];
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons((uint16_t)h->q->port);
			memcpy(&sin6->sin6_addr, &a6[i].ip6addr,
			    sizeof(sin6->sin6_addr));
		} else {
			sin = (struct sockaddr_in *)&h->addr[h->n];
			sin->sin_family = AF_INET;
			sin->sin_port = htons((uint16_t)h->q->port);
			sin->sin_addr = a4[i].ipaddr;
		}
		h->n++;
	}
	if (h->st == DNS_OK && h->n == 0)
		h->st = DNS_NODATA;
	dns_query_answered(h->q);
}

/* "127.0.0.1", "::1" or "[::1]" into half[] of q; false if not a literal. */
static bool
dns_literal(struct dns_query *q, const char *host)
{
	char			 buf[INET6_ADDRSTRLEN + 2];
	struct sockaddr_in	*sin;
	struct sockaddr_in6	*sin6;
	struct in_addr		 a4;
	struct in6_addr		 a6;
	size_t			 len = strlen(host);

	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		if (len - 2 >= sizeof(buf))
			return false;
		memcpy(buf, host + 1, len - 2);
		buf[len - 2] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) != 1)
			return false;
	} else if (inet_pton(AF_INET, host, &a4) == 1) {
		sin = (struct sockaddr_in *)&q->half[1].addr[0];
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)q->port);
		sin->sin_addr = a4;
		q->half[1].n = 1;
		q->half[0].st = DNS_NODATA;
		q->half[1].st = DNS_OK;
		return true;
	} else if (inet_pton(AF_INET6, host, &a6) != 1)
		return false;
	sin6 = (struct sockaddr_in6 *)&q->half[0].addr[0];
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons((uint16_t)q->port);
	sin6->sin6_addr = a6;
	q->half[0].n = 1;
	q->half[0].st = DNS_OK;
	q->half[1].st = DNS_NODATA;
	return true;
}

int
dns_new(struct event_base *base, const char *servers, int timeout_ms,
    int tries, struct dns **out, char *err, size_t errlen)
{
	struct ares_options	 opts;
	struct dns		*d;
	int			 rc, optmask;

	*out = NULL;
	pthread_once(&dns_once, dns_library_init);
	if (dns_once_rc != ARES_SUCCESS) {
		snprintf(err, errlen, "dns: ares_library_init: %s",
		    ares_strerror(dns_once_rc));
		return -1;
	}
	d = xcalloc(1, sizeof(*d));
	d->base = base;
	if ((d->timer = evtimer_new(base, dns_timer_cb, d)) == NULL) {
		snprintf(err, errlen, "dns: evtimer_new failed");
		goto fail;
	}
	memset(&opts, 0, sizeof(opts));
	optmask = ARES_OPT_SOCK_STATE_CB;
	opts.sock_state_cb = dns_sock_state_cb;
	opts.sock_state_cb_data = d;
	if (timeout_ms > 0) {
		optmask |= ARES_OPT_TIMEOUTMS;
		opts.timeout = timeout_ms;
	}
	if (tries > 0) {
		optmask |= ARES_OPT_TRIES;
		opts.tries = tries;
	}
	if ((rc = ares_init_options(&d->channel, &opts, optmask)) !=
	    ARES_SUCCESS) {
		snprintf(err, errlen, "dns: ares_init_options: %s",
		    ares_strerror(rc));
		goto fail;
	}
	d->channel_ok = true;
	if (servers != NULL &&
	    (rc = ares_set_servers_ports_csv(d->channel, servers)) !=
	    ARES_SUCCESS) {
		snprintf(err, errlen, "dns: servers \"%s\": %s", servers,
		    ares_strerror(rc));
		goto fail;
	}
	*out = d;
	return 0;
fail:
	dns_free(d);
	return -1;
}

void
dns_free(struct dns *d)
{
	struct dns_sock	*s;

	if (d == NULL)
		return;
	assert(!d->freeing);	/* not from a callback dns_free() runs */
	d->freeing = true;
	/* c-ares answers its pending queries with ARES_EDESTRUCTION */
	if (d->channel_ok)
		ares_destroy(d->channel);
	/* callbacks may ask for more: those fail at once and join the list */
	while (d->queries != NULL)
		dns_query_finish(d->queries);
	while ((s = d->socks) != NULL) {
		d->socks = s->next;
		event_free(s->ev);
		free(s);
	}
	if (d->timer != NULL)
		event_free(d->timer);
	free(d);
}

void
dns_mx(struct dns *d, const char *domain, dns_mx_cb cb, void *arg)
{
	struct dns_query	*q;
	char			 name[DNS_NAME_MAX + 1];

	q = dns_query_new(d, DNS_KIND_MX, arg);
	q->mx_cb = cb;
	if (d->freeing)
		return;		/* dns_free() calls back with TEMPFAIL */
	if (dns_name(domain, name, sizeof(name)) == -1) {
		q->st = DNS_NXDOMAIN;
		event_active(q->done, EV_TIMEOUT, 0);
		return;
	}
	q->outstanding = 1;
	ares_query(d->channel, name, ns_c_in, ns_t_mx, dns_mx_answer, q);
	dns_timer_update(d);
}

void
dns_addrs(struct dns *d, const char *host, unsigned port, dns_addr_cb cb,
    void *arg)
{
	struct dns_query	*q;
	char			 name[DNS_NAME_MAX + 1];

	q = dns_query_new(d, DNS_KIND_ADDRS, arg);
	q->addr_cb = cb;
	q->port = port;
	if (d->freeing)
		return;		/* dns_free() calls back with TEMPFAIL */
	if (dns_literal(q, host)) {
		event_active(q->done, EV_TIMEOUT, 0);
		return;
	}
	if (dns_name(host, name, sizeof(name)) == -1) {
		q->half[0].st = q->half[1].st = DNS_NXDOMAIN;
		event_active(q->done, EV_TIMEOUT, 0);
		return;
	}
	/* both counted before either is sent: c-ares may answer at once */
	q->outstanding = 2;
	ares_query(d->channel, name, ns_c_in, ns_t_aaaa, dns_addr_answer,
	    &q->half[0]);
	ares_query(d->channel, name, ns_c_in, ns_t_a, dns_addr_answer,
	    &q->half[1]);
	dns_timer_update(d);
}
