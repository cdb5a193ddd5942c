/*
 * test_dns.c: the resolver against a real dnsmasq on a loopback port
 * (started here, killed by its pid): MX, A/AAAA, NXDOMAIN, NODATA, null MX,
 * the record caps, timeouts, IP literals and dns_free() with queries pending.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "net/dns.h"

#define DNSMASQ		"/usr/sbin/dnsmasq"
#define WAIT_MS		5000	/* longest a test waits for its callbacks */
#define MANY		40	/* records of many.test: over every cap */

static pid_t	 dnsmasq_pid = -1;
static int	 dnsmasq_port;

/* What one callback saw. */
struct result {
	int		 called;
	enum dns_status	 st;
	struct dns_mx	 mx[DNS_MX_MAX];
	struct sockaddr_storage addr[DNS_ADDR_MAX];
	size_t		 n;
	struct dns	*free_me;	/* the callback frees it when set */
};

struct fixture {
	struct event_base *base;	/* owned */
	struct dns	*dns;		/* owned */
	int		 pending;	/* callbacks still expected */
};

static struct fixture	*cur;	/* the running test's fixture */

static void
mx_cb(void *arg, enum dns_status st, const struct dns_mx *mx, size_t n)
{
	struct result	*r = arg;

	r->called++;
	r->st = st;
	r->n = n;
	assert_true(n <= DNS_MX_MAX);
	assert_true(st == DNS_OK ? n > 0 && mx != NULL : n == 0);
	if (n > 0)
		memcpy(r->mx, mx, n * sizeof(*mx));
	if (r->free_me != NULL) {
		dns_free(r->free_me);
		cur->dns = NULL;
	}
	if (--cur->pending == 0)
		event_base_loopbreak(cur->base);
}

static void
addr_cb(void *arg, enum dns_status st, const struct sockaddr_storage *a,
    size_t n)
{
	struct result	*r = arg;

	r->called++;
	r->st = st;
	r->n = n;
	assert_true(n <= DNS_ADDR_MAX);
	assert_true(st == DNS_OK ? n > 0 && a != NULL : n == 0);
	if (n > 0)
		memcpy(r->addr, a, n * sizeof(*a));
	if (r->free_me != NULL) {
		dns_free(r->free_me);
		cur->dns = NULL;
	}
	if (--cur->pending == 0)
		event_base_loopbreak(cur->base);
}

/* Run the loop until every expected callback came, or fail after WAIT_MS. */
static void
run(struct fixture *f)
{
	struct timeval	 tv = { WAIT_MS / 1000, (WAIT_MS % 1000) * 1000 };

	/* a loopexit bounds the wait; loopbreak ends it early */
	assert_int_equal(event_base_loopexit(f->base, &tv), 0);
	if (f->pending > 0)
		assert_int_equal(event_base_dispatch(f->base), 0);
	assert_int_equal(f->pending, 0);
}

/* "ADDR" with port from a sockaddr, as "[::2]:25" or "127.0.0.2:25". */
static const char *
fmt_addr(const struct sockaddr_storage *ss)
{
	static char	 buf[4][INET6_ADDRSTRLEN + 16];
	static int	 k;
	char		*out = buf[k++ % 4], a[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		snprintf(out, sizeof(buf[0]), "[%s]:%u", a,
		    ntohs(s6->sin6_port));
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		snprintf(out, sizeof(buf[0]), "%s:%u", a, ntohs(s4->sin_port));
	} else
		snprintf(out, sizeof(buf[0]), "family %d", ss->ss_family);
	return out;
}

/* A loopback port free for UDP and TCP just now. */
static int
free_port(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 u, t, port;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (;;) {
		u = socket(AF_INET, SOCK_DGRAM, 0);
		t = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(u != -1 && t != -1);
		sin.sin_port = 0;
		assert_int_equal(bind(u, (struct sockaddr *)&sin,
		    sizeof(sin)), 0);
		assert_int_equal(getsockname(u, (struct sockaddr *)&sin,
		    &len), 0);
		port = ntohs(sin.sin_port);
		if (bind(t, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
			close(u);
			close(t);
			return port;
		}
		close(u);
		close(t);
	}
}

/* Is something bound to UDP 127.0.0.1:port? */
static int
udp_bound(int port)
{
	struct sockaddr_in	 sin;
	int			 s, rc;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	s = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(s != -1);
	rc = bind(s, (struct sockaddr *)&sin, sizeof(sin)) == -1 &&
	    errno == EADDRINUSE;
	close(s);
	return rc;
}

static void
sleep_ms(long ms)
{
	struct timespec	 ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int
group_setup(void **state)
{
	char	*argv[256], buf[MANY * 3][96], port[32];
	int	 argc = 0, i, k = 0, status;

	(void)state;
	if (access(DNSMASQ, X_OK) != 0) {
		fprintf(stderr, "test_dns: %s missing (apt-get install "
		    "dnsmasq)\n", DNSMASQ);
		return -1;
	}
	dnsmasq_port = free_port();
	snprintf(port, sizeof(port), "--port=%d", dnsmasq_port);
	argv[argc++] = DNSMASQ;
	argv[argc++] = "--keep-in-foreground";
	argv[argc++] = port;
	argv[argc++] = "--listen-address=127.0.0.1";
	argv[argc++] = "--bind-interfaces";
	argv[argc++] = "--no-resolv";
	argv[argc++] = "--no-hosts";
	argv[argc++] = "--conf-file=/dev/null";
	argv[argc++] = "--pid-file=";
	argv[argc++] = "--user=root";
	/* authoritative for test.: unknown names are NXDOMAIN */
	argv[argc++] = "--local=/test/";
	argv[argc++] = "--mx-host=example.test,mx1.example.test,10";
	argv[argc++] = "--mx-host=example.test,mx2.example.test,20";
	argv[argc++] = "--host-record=mx1.example.test,127.0.0.2,::2";
	argv[argc++] = "--host-record=mx2.example.test,127.0.0.3";
	argv[argc++] = "--host-record=v6only.example.test,::3";
	argv[argc++] = "--mx-host=nullmx.test,.,0";
	for (i = 0; i < MANY; i++) {
		snprintf(buf[k], sizeof(buf[k]),
		    "--mx-host=many.test,mx%d.many.test,%d", i, i);
		argv[argc++] = buf[k++];
		snprintf(buf[k], sizeof(buf[k]),
		    "--host-record=many.test,127.0.1.%d", i + 1);
		argv[argc++] = buf[k++];
		snprintf(buf[k], sizeof(buf[k]),
		    "--host-record=many.test,2001:db8::%x", i + 1);
		argv[argc++] = buf[k++];
	}
	argv[argc] = NULL;

	if ((dnsmasq_pid = fork()) == -1)
		return -1;
	if (dnsmasq_pid == 0) {
		execv(DNSMASQ, argv);
		_exit(127);
	}
	for (i = 0; i < WAIT_MS / 10; i++) {
		if (waitpid(dnsmasq_pid, &status, WNOHANG) == dnsmasq_pid) {
			fprintf(stderr, "test_dns: dnsmasq exited (%d)\n",
			    status);
			dnsmasq_pid = -1;
			return -1;
		}
		if (udp_bound(dnsmasq_port))
			return 0;
		sleep_ms(10);
	}
	fprintf(stderr, "test_dns: dnsmasq did not bind port %d\n",
	    dnsmasq_port);
	return -1;
}

static int
group_teardown(void **state)
{
	(void)state;
	if (dnsmasq_pid > 0) {
		kill(dnsmasq_pid, SIGTERM);
		waitpid(dnsmasq_pid, NULL, 0);
		dnsmasq_pid = -1;
	}
	return 0;
}

/* A fixture whose resolver asks servers (NULL: our dnsmasq). */
static struct fixture *
fixture_new(const char *servers, int timeout_ms, int tries)
{
	struct fixture	*f;
	char		 err[256], srv[64];

	if (servers == NULL) {
		snprintf(srv, sizeof(srv), "127.0.0.1:%d", dnsmasq_port);
		servers = srv;
	}
	f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_non_null(f->base = event_base_new());
	if (dns_new(f->base, servers, timeout_ms, tries, &f->dns, err,
	    sizeof(err)) == -1)
		fail_msg("dns_new: %s", err);
	cur = f;
	return f;
}

static int
setup(void **state)
{
	*state = fixture_new(NULL, 1000, 2);
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*f = *state;

	dns_free(f->dns);
	event_base_free(f->base);
	free(f);
	cur = NULL;
	return 0;
}

static const struct dns_mx *
find_mx(const struct result *r, const char *host)
{
	size_t	 i;

	for (i = 0; i < r->n; i++)
		if (strcmp(r->mx[i].host, host) == 0)
			return &r->mx[i];
	return NULL;
}

static void
test_mx_ok(void **state)
{
	struct fixture		*f = *state;
	struct result		 r = { 0 }, dot = { 0 };
	const struct dns_mx	*m;

	dns_mx(f->dns, "example.test", mx_cb, &r);
	dns_mx(f->dns, "example.test.", mx_cb, &dot);
	f->pending = 2;
	run(f);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.st, DNS_OK);
	assert_int_equal(r.n, 2);
	assert_non_null(m = find_mx(&r, "mx1.example.test"));
	assert_int_equal(m->pref, 10);
	assert_non_null(m = find_mx(&r, "mx2.example.test"));
	assert_int_equal(m->pref, 20);
	assert_int_equal(dot.st, DNS_OK);
	assert_int_equal(dot.n, 2);
}

static void
test_addrs_ok(void **state)
{
	struct fixture	*f = *state;
	struct result	 both = { 0 }, v4 = { 0 }, v6 = { 0 };

	dns_addrs(f->dns, "mx1.example.test", 25, addr_cb, &both);
	dns_addrs(f->dns, "mx2.example.test.", 2525, addr_cb, &v4);
	dns_addrs(f->dns, "v6only.example.test", 587, addr_cb, &v6);
	f->pending = 3;
	run(f);
	assert_int_equal(both.st, DNS_OK);
	assert_int_equal(both.n, 2);
	assert_string_equal(fmt_addr(&both.addr[0]), "[::2]:25");
	assert_string_equal(fmt_addr(&both.addr[1]), "127.0.0.2:25");
	assert_int_equal(v4.st, DNS_OK);
	assert_int_equal(v4.n, 1);
	assert_string_equal(fmt_addr(&v4.addr[0]), "127.0.0.3:2525");
	assert_int_equal(v6.st, DNS_OK);
	assert_int_equal(v6.n, 1);
	assert_string_equal(fmt_addr(&v6.addr[0]), "[::3]:587");
}

static void
test_nxdomain(void **state)
{
	struct fixture	*f = *state;
	struct result	 mx = { 0 }, a = { 0 }, bad = { 0 };

	dns_mx(f->dns, "nope.test", mx_cb, &mx);
	dns_addrs(f->dns, "nope.example.test", 25, addr_cb, &a);
	/* an empty label: no DNS name can look like this */
	dns_mx(f->dns, "a..test", mx_cb, &bad);
	f->pending = 3;
	run(f);
	assert_int_equal(mx.st, DNS_NXDOMAIN);
	assert_int_equal(mx.n, 0);
	assert_int_equal(a.st, DNS_NXDOMAIN);
	assert_int_equal(a.n, 0);
	assert_int_equal(bad.st, DNS_NXDOMAIN);
}

static void
test_nodata(void **state)
{
	struct fixture	*f = *state;
	struct result	 mx = { 0 }, a = { 0 };

	/* an A record, no MX; an MX, no address */
	dns_mx(f->dns, "mx2.example.test", mx_cb, &mx);
	dns_addrs(f->dns, "example.test", 25, addr_cb, &a);
	f->pending = 2;
	run(f);
	assert_int_equal(mx.st, DNS_NODATA);
	assert_int_equal(mx.n, 0);
	assert_int_equal(a.st, DNS_NODATA);
	assert_int_equal(a.n, 0);
}

static void
test_null_mx(void **state)
{
	struct fixture	*f = *state;
	struct result	 r = { 0 };

	dns_mx(f->dns, "nullmx.test", mx_cb, &r);
	f->pending = 1;
	run(f);
	assert_int_equal(r.st, DNS_OK);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.mx[0].pref, 0);
	assert_string_equal(r.mx[0].host, "");
}

/* MANY records of each type: over UDP's 512 bytes and over the caps. */
static void
test_caps(void **state)
{
	struct fixture	*f = *state;
	struct result	 mx = { 0 }, a = { 0 };
	size_t		 i;

	dns_mx(f->dns, "many.test", mx_cb, &mx);
	dns_addrs(f->dns, "many.test", 25, addr_cb, &a);
	f->pending = 2;
	run(f);
	assert_int_equal(mx.st, DNS_OK);
	assert_int_equal(mx.n, DNS_MX_MAX);
	assert_int_equal(a.st, DNS_OK);
	assert_int_equal(a.n, DNS_ADDR_MAX);
	/* IPv6 first, but half the room is kept for IPv4 */
	for (i = 0; i < DNS_ADDR_MAX; i++)
		assert_int_equal(a.addr[i].ss_family,
		    i < DNS_ADDR_MAX / 2 ? AF_INET6 : AF_INET);
}

static void
test_tempfail(void **state)
{
	struct fixture	*f;
	struct result	 mx = { 0 }, a = { 0 };
	char		 srv[64];

	(void)state;
	/* nothing listens there: ICMP refused or a timeout */
	snprintf(srv, sizeof(srv), "127.0.0.1:%d", free_port());
	f = fixture_new(srv, 100, 1);
	dns_mx(f->dns, "example.test", mx_cb, &mx);
	dns_addrs(f->dns, "mx1.example.test", 25, addr_cb, &a);
	f->pending = 2;
	run(f);
	assert_int_equal(mx.st, DNS_TEMPFAIL);
	assert_int_equal(a.st, DNS_TEMPFAIL);
	*state = f;
	teardown(state);
}

/* A server that reads nothing: the query times out. */
static void
test_timeout(void **state)
{
	struct fixture		*f;
	struct result		 r = { 0 };
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	char			 srv[64];
	int			 s;

	(void)state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((s = socket(AF_INET, SOCK_DGRAM, 0)) != -1);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sin, &len), 0);
	snprintf(srv, sizeof(srv), "127.0.0.1:%d", ntohs(sin.sin_port));
	f = fixture_new(srv, 50, 2);
	dns_mx(f->dns, "example.test", mx_cb, &r);
	f->pending = 1;
	run(f);
	assert_int_equal(r.called, 1);
	assert_int_equal(r.st, DNS_TEMPFAIL);
	*state = f;
	teardown(state);
	close(s);
}

static void
test_literal(void **state)
{
	struct fixture	*f = *state;
	struct result	 r4 = { 0 }, r6 = { 0 }, rb = { 0 }, bad = { 0 };

	dns_addrs(f->dns, "127.0.0.1", 2525, addr_cb, &r4);
	dns_addrs(f->dns, "::1", 25, addr_cb, &r6);
	dns_addrs(f->dns, "[::1]", 465, addr_cb, &rb);
	/* "[" ... "]" holds IPv6 only */
	dns_addrs(f->dns, "[127.0.0.1]", 25, addr_cb, &bad);
	/* never from inside dns_addrs() */
	assert_int_equal(r4.called + r6.called + rb.called, 0);
	f->pending = 4;
	run(f);
	assert_int_equal(r4.st, DNS_OK);
	assert_int_equal(r4.n, 1);
	assert_string_equal(fmt_addr(&r4.addr[0]), "127.0.0.1:2525");
	assert_int_equal(r6.st, DNS_OK);
	assert_int_equal(r6.n, 1);
	assert_string_equal(fmt_addr(&r6.addr[0]), "[::1]:25");
	assert_int_equal(rb.st, DNS_OK);
	assert_string_equal(fmt_addr(&rb.addr[0]), "[::1]:465");
	assert_int_not_equal(bad.st, DNS_OK);
}

/* dns_free() with queries in flight: each callback runs once, TEMPFAIL. */
static void
test_free_pending(void **state)
{
	struct fixture	*f = *state;
	struct result	 mx = { 0 }, a = { 0 }, lit = { 0 };

	dns_mx(f->dns, "example.test", mx_cb, &mx);
	dns_addrs(f->dns, "mx1.example.test", 25, addr_cb, &a);
	dns_addrs(f->dns, "127.0.0.1", 25, addr_cb, &lit);
	f->pending = 3;
	dns_free(f->dns);
	f->dns = NULL;
	assert_int_equal(f->pending, 0);
	assert_int_equal(mx.called, 1);
	assert_int_equal(mx.st, DNS_TEMPFAIL);
	assert_int_equal(a.called, 1);
	assert_int_equal(a.st, DNS_TEMPFAIL);
	assert_int_equal(lit.called, 1);
	/* nothing left on the loop that would touch the freed resolver */
	assert_int_equal(event_base_loop(f->base, EVLOOP_NONBLOCK), 1);
	assert_int_equal(mx.called + a.called + lit.called, 3);
}

/* A callback may free the resolver; the other query still gets its call. */
static void
test_free_from_callback(void **state)
{
	struct fixture	*f = *state;
	struct result	 first = { 0 }, second = { 0 };

	first.free_me = f->dns;
	dns_addrs(f->dns, "127.0.0.1", 25, addr_cb, &first);
	dns_mx(f->dns, "example.test", mx_cb, &second);
	f->pending = 2;
	run(f);
	assert_null(f->dns);
	assert_int_equal(first.called, 1);
	assert_int_equal(second.called, 1);
	assert_int_equal(second.st, DNS_TEMPFAIL);
}

static void
test_new_bad_servers(void **state)
{
	struct event_base	*base;
	struct dns		*d = (struct dns *)1;
	char			 err[256] = "";

	(void)state;
	assert_non_null(base = event_base_new());
	assert_int_equal(dns_new(base, "not an address", 100, 1, &d, err,
	    sizeof(err)), -1);
	assert_null(d);
	assert_true(strlen(err) > 0);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mx_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_addrs_ok, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_nxdomain, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_nodata, setup, teardown),
		cmocka_unit_test_setup_teardown(test_null_mx, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_caps, setup, teardown),
		cmocka_unit_test(test_tempfail),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test_setup_teardown(test_literal, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_free_pending, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_free_from_callback,
		    setup, teardown),
		cmocka_unit_test(test_new_bad_servers),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
