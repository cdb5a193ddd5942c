#ifndef PETREL_NET_DNS_H
#define PETREL_NET_DNS_H
/*
 * dns.h: asynchronous DNS on the event loop (c-ares): MX, A and AAAA.
 * Callbacks run on the loop thread. The resolver's servers can be set
 * (a DNS server on a loopback port in tests); otherwise /etc/resolv.conf.
 */
#include <event2/event.h>
#include <stddef.h>
#include <sys/socket.h>

#define DNS_NAME_MAX	255
#define DNS_MX_MAX	32	/* records kept per answer */
#define DNS_ADDR_MAX	16	/* addresses kept per host */

struct dns;

enum dns_status {
	DNS_OK = 0,		/* records follow */
	DNS_NODATA,		/* the name exists, no record of that type */
	DNS_NXDOMAIN,		/* the name does not exist */
	DNS_TEMPFAIL,		/* timeout, SERVFAIL, refused, network */
};

struct dns_mx {
	unsigned	 pref;
	char		 host[DNS_NAME_MAX + 1];	/* no trailing dot; "" for
						   the null MX "." */
};

typedef void (*dns_mx_cb)(void *arg, enum dns_status st,
    const struct dns_mx *mx, size_t n);
typedef void (*dns_addr_cb)(void *arg, enum dns_status st,
    const struct sockaddr_storage *addrs, size_t n);

/*
 * A resolver on base. servers: NULL for the system configuration, or
 * "ADDR:PORT[,ADDR:PORT...]" (IPv6 as "[::1]:53"). timeout_ms per try,
 * tries per query. 0 and *out, or -1 with err set.
 */
int	dns_new(struct event_base *base, const char *servers, int timeout_ms,
	    int tries, struct dns **out, char *err, size_t errlen);
/* Cancel every pending query (callbacks run with DNS_TEMPFAIL) and free. */
void	dns_free(struct dns *d);
/* MX records of domain; n is 0 unless st is DNS_OK. */
void	dns_mx(struct dns *d, const char *domain, dns_mx_cb cb, void *arg);
/*
 * AAAA and A records of host (both looked up; IPv6 addresses first), with
 * port set in each sockaddr. DNS_OK if either gave an address; otherwise
 * the worse of the two statuses (TEMPFAIL over NXDOMAIN over NODATA).
 * A host that is an IP literal answers at once without a query.
 */
void	dns_addrs(struct dns *d, const char *host, unsigned port,
	    dns_addr_cb cb, void *arg);

#endif
