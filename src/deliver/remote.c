/*
 * remote.c: one message to one destination. MX lookup and ordering (RFC
 * 5321 5.1, RFC 7505), address lookup, trying hosts and addresses within
 * limits, the SMTP/LMTP client for each try, and the cache of parked
 * connections per destination. Reports per-recipient results; never
 * decides retries or bounces.
 */
#include "deliver/remote.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "core/log.h"
#include "core/util.h"
#include "deliver/mxorder.h"
#include "net/dns.h"

#define REMOTE_CONN_USES_MAX	100	/* messages per connection, then
					   QUIT */
#define REMOTE_PARK_BUCKETS	64
#define REMOTE_KEY_MAX		320	/* "smarthost:" + dest */

/* A parked connection: open, idle, for the next job to its destination. */
struct rpark {
	struct remote		*r;		/* borrowed */
	struct smtp_client_conn	*conn;		/* owned */
	char			 key[REMOTE_KEY_MAX];	/* "mx:example.org" */
	char			 relay[400];	/* as remote_job.relay */
	unsigned		 uses;		/* messages it carried */
	struct rpark		*prev, *next;	/* in its bucket, newest
						   first */
};

struct remote {
	struct event_base	*base;		/* borrowed */
	const struct config	*cfg;		/* borrowed */
	struct dns		*dns;		/* owned */
	SSL_CTX			*ssl;		/* owned: outbound STARTTLS */
	struct rjob		*jobs;		/* running attempts */
	struct rpark		*parked[REMOTE_PARK_BUCKETS];	/* owned */
	bool			 stopping;
};

/* The state of one remote_job while it runs. */
struct rjob {
	struct remote		*r;		/* borrowed */
	struct remote_job	*j;		/* borrowed: the caller's */
	struct rjob		*prev, *next;
	struct dns_mx		 hosts[DNS_MX_MAX];	/* in order */
	size_t			 nhosts, host_i;
	char			 host[DNS_NAME_MAX + 1];	/* trying now */
	unsigned		 port;
	struct sockaddr_storage	 addrs[DNS_ADDR_MAX];
	size_t			 naddrs, addr_i;
	int			 tried;		/* addresses tried in all */
	struct smtp_client	*client;	/* running, or NULL */
	struct smtp_client_opts	 opts;
	char			 key[REMOTE_KEY_MAX];	/* parking key, "" if
							   none */
	unsigned		 uses;		/* messages the connection
						   carried before this one;
						   0: a new connection */
};

static void	next_host(struct rjob *);
static void	next_addr(struct rjob *);
static void	rjob_route(struct rjob *);
static void	client_done(void *, enum smtp_client_status, const char *,
		    const char *);

/* ---- parked connections ------------------------------------------- */

static const char *const kind_names[] = {
	[REMOTE_MX] = "mx",
	[REMOTE_SMARTHOST] = "smarthost",
	[REMOTE_LMTP] = "lmtp",
};

/* "mx:example.org"; -1 if it does not fit (then nothing is parked). */
static int
park_key(const struct remote_job *j, char *out, size_t cap)
{
	int	 n;

	n = snprintf(out, cap, "%s:%s", kind_names[j->kind], j->dest);
	if (n < 0 || (size_t)n >= cap) {
		out[0] = '\0';
		return -1;
	}
	return 0;
}

static struct rpark **
park_bucket(struct remote *r, const char *key)
{
	uint32_t	 h = str_hash(key);

	return &r->parked[h % REMOTE_PARK_BUCKETS];
}

static void
park_unlink(struct rpark *rp)
{
	if (rp->prev != NULL)
		rp->prev->next = rp->next;
	else
		*park_bucket(rp->r, rp->key) = rp->next;
	if (rp->next != NULL)
		rp->next->prev = rp->prev;
	rp->prev = rp->next = NULL;
}

/* Unlink, close (QUIT if still open) and free. */
static void
park_free(struct rpark *rp)
{
	park_unlink(rp);
	smtp_client_conn_free(rp->conn);
	free(rp);
}

/* The connection closed, spoke or waited connection_reuse_time. */
static void
park_gone(void *arg, struct smtp_client_conn *conn)
{
	struct rpark	*rp = arg;

	(void)conn;
	log_debug("- remote parked connection closed dest=%s relay=%s "
	    "conn_use=%u", rp->key, rp->relay, rp->uses);
	park_free(rp);
}

/* The newest connection parked under key, unlinked, or NULL. */
static struct rpark *
park_take(struct remote *r, const char *key)
{
	struct rpark	*rp;

	if (key[0] == '\0')
		return NULL;
	for (rp = *park_bucket(r, key); rp != NULL; rp = rp->next)
		if (strcmp(rp->key, key) == 0) {
			park_unlink(rp);
			return rp;
		}
	return NULL;
}

/*
 * Inside the client's done(): park its connection if it kept one, at most
 * destination_concurrency per destination (the oldest goes first).
 */
static void
park_put(struct rjob *rj)
{
	struct remote	*r = rj->r;
	struct rpark	*rp, **head, *oldest = NULL;
	int		 n = 0;

	if (rj->key[0] == '\0' || r->cfg->connection_reuse_time == 0)
		return;
	rp = xcalloc(1, sizeof(*rp));
	rp->conn = smtp_client_take_conn(rj->client,
	    r->cfg->connection_reuse_time, park_gone, rp);
	if (rp->conn == NULL) {
		free(rp);
		return;
	}
	rp->r = r;
	memcpy(rp->key, rj->key, sizeof(rp->key));
	snprintf(rp->relay, sizeof(rp->relay), "%s", rj->j->relay);
	rp->uses = rj->uses + 1;
	head = park_bucket(r, rp->key);
	for (struct rpark *p = *head; p != NULL; p = p->next)
		if (strcmp(p->key, rp->key) == 0) {
			n++;
			oldest = p;
		}
	if (n >= r->cfg->destination_concurrency && oldest != NULL)
		park_free(oldest);
	rp->next = *head;
	if (*head != NULL)
		(*head)->prev = rp;
	*head = rp;
}

/* Run j on a parked connection: no DNS, connect, greeting or EHLO. */
static void
rjob_reuse(struct rjob *rj, struct rpark *rp)
{
	struct smtp_client_conn *conn = rp->conn;

	snprintf(rj->j->relay, sizeof(rj->j->relay), "%s", rp->relay);
	rj->uses = rp->uses;
	rj->j->conn_use = rp->uses + 1;
	free(rp);			/* already unlinked */
	rj->client = smtp_client_start_conn(conn,
	    rj->uses + 1 < REMOTE_CONN_USES_MAX, rj->j->msg, client_done, rj);
}

static void
rjob_finish(struct rjob *rj)
{
	struct remote	*r = rj->r;
	struct remote_job *j = rj->j;

	if (rj->prev != NULL)
		rj->prev->next = rj->next;
	else
		r->jobs = rj->next;
	if (rj->next != NULL)
		rj->next->prev = rj->prev;
	free(rj);
	j->priv = NULL;
	j->done(j);
}

/* Every recipient still pending gets this result. */
static void
fail_all(struct rjob *rj, enum smtp_client_result res, const char *enh,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
fail_all(struct rjob *rj, enum smtp_client_result res, const char *enh,
    const char *fmt, ...)
{
	struct smtp_client_msg *m = rj->j->msg;
	char	 why[sizeof(rj->j->diag)];
	va_list	 ap;

	/* the arguments may point into j->diag itself: format aside */
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	memcpy(rj->j->diag, why, sizeof(why));
	for (size_t i = 0; i < m->nrcpt; i++) {
		struct smtp_client_rcpt *rc = &m->rcpt[i];

		if (rc->result != SMTP_CLIENT_PENDING)
			continue;
		rc->result = res;
		rc->code = 0;
		snprintf(rc->enh, sizeof(rc->enh), "%s", enh);
		snprintf(rc->text, sizeof(rc->text), "%s", rj->j->diag);
	}
	rjob_finish(rj);
}

static void
client_done(void *arg, enum smtp_client_status st, const char *diag,
    const char *tls_info)
{
	struct rjob	*rj = arg;

	if (st == SMTP_CLIENT_DONE && !rj->r->stopping)
		park_put(rj);		/* if the client kept the connection */
	rj->client = NULL;
	if (st == SMTP_CLIENT_NEXT_HOST && rj->uses > 0 && !rj->r->stopping) {
		/* the parked connection had gone stale: connect afresh,
		   without counting it as a failed host */
		log_debug("%s remote parked connection lost relay=%s "
		    "reason=\"%s\"", rj->j->id != NULL ? rj->j->id : "-",
		    rj->j->relay, diag != NULL ? diag : "");
		rj->uses = 0;
		rj->j->conn_use = 1;
		snprintf(rj->j->relay, sizeof(rj->j->relay), "none");
		rjob_route(rj);
		return;
	}
	snprintf(rj->j->tls_info, sizeof(rj->j->tls_info), "%s",
	    tls_info != NULL ? tls_info : "");
	if (st == SMTP_CLIENT_DONE) {
		/* rcpts the client left pending (none expected) are temp */
		fail_all(rj, SMTP_CLIENT_TEMP, "4.4.2", "%s",
		    diag != NULL ? diag : "delivery incomplete");
		return;
	}
	snprintf(rj->j->diag, sizeof(rj->j->diag), "%s",
	    diag != NULL ? diag : "connection failed");
	log_info("%s remote try failed relay=%s reason=\"%s\"",
	    rj->j->id != NULL ? rj->j->id : "-", rj->j->relay, rj->j->diag);
	if (rj->r->stopping) {
		fail_all(rj, SMTP_CLIENT_TEMP, "4.3.2", "delivery interrupted "
		    "by shutdown");
		return;
	}
	next_addr(rj);
}

static void
next_addr(struct rjob *rj)
{
	struct remote	*r = rj->r;
	char		 ip[sizeof(((struct sockaddr_un *)0)->sun_path)] = "?";
	socklen_t	 len;

	for (;;) {
		if (rj->addr_i >= rj->naddrs) {
			next_host(rj);
			return;
		}
		if (rj->tried >= r->cfg->max_addresses) {
			fail_all(rj, SMTP_CLIENT_TEMP, "4.4.1", "%s",
			    rj->j->diag[0] ? rj->j->diag :
			    "no address could be reached");
			return;
		}
		struct sockaddr_storage *ss = &rj->addrs[rj->addr_i++];

		rj->tried++;
		if (ss->ss_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)ss)->sin_addr,
			    ip, sizeof(ip));
			len = sizeof(struct sockaddr_in);
		} else if (ss->ss_family == AF_INET6) {
			inet_ntop(AF_INET6,
			    &((struct sockaddr_in6 *)ss)->sin6_addr, ip,
			    sizeof(ip));
			len = sizeof(struct sockaddr_in6);
		} else {
			snprintf(ip, sizeof(ip), "%s",
			    ((struct sockaddr_un *)ss)->sun_path);
			len = sizeof(struct sockaddr_un);
		}
		if (ss->ss_family == AF_UNIX)
			snprintf(rj->j->relay, sizeof(rj->j->relay), "%s",
			    rj->host);
		else
			snprintf(rj->j->relay, sizeof(rj->j->relay),
			    "%s[%s]:%u", rj->host, ip, rj->port);
		rj->opts.peer_name = rj->host;
		rj->client = smtp_client_start(r->base, (struct sockaddr *)ss,
		    len, &rj->opts, rj->j->msg, client_done, rj);
		if (rj->client != NULL)
			return;
		snprintf(rj->j->diag, sizeof(rj->j->diag), "connect to %s: %s",
		    rj->j->relay, strerror(errno));
		log_info("%s remote try failed relay=%s reason=\"%s\"",
		    rj->j->id != NULL ? rj->j->id : "-", rj->j->relay,
		    rj->j->diag);
	}
}

static void
addr_cb(void *arg, enum dns_status st, const struct sockaddr_storage *addrs,
    size_t n)
{
	struct rjob	*rj = arg;

	if (rj->r->stopping) {
		fail_all(rj, SMTP_CLIENT_TEMP, "4.3.2", "delivery interrupted "
		    "by shutdown");
		return;
	}
	if (st != DNS_OK || n == 0) {
		snprintf(rj->j->diag, sizeof(rj->j->diag), "Host or domain "
		    "name not found. Name service error for name=%s type=A: "
		    "%s", rj->host, st == DNS_TEMPFAIL ? "temporary failure" :
		    "Host not found");
		next_host(rj);
		return;
	}
	if (n > DNS_ADDR_MAX)
		n = DNS_ADDR_MAX;
	memcpy(rj->addrs, addrs, n * sizeof(*addrs));
	rj->naddrs = n;
	rj->addr_i = 0;
	next_addr(rj);
}

static void
next_host(struct rjob *rj)
{
	if (rj->host_i >= rj->nhosts) {
		fail_all(rj, SMTP_CLIENT_TEMP, "4.4.1", "%s",
		    rj->j->diag[0] ? rj->j->diag : "no host could be reached");
		return;
	}
	snprintf(rj->host, sizeof(rj->host), "%s", rj->hosts[rj->host_i].host);
	rj->host_i++;
	rj->naddrs = rj->addr_i = 0;
	dns_addrs(rj->r->dns, rj->host, rj->port, addr_cb, rj);
}

static size_t
rnd(void *arg, size_t bound)
{
	(void)arg;
	return (size_t)arc4random_uniform((uint32_t)bound);
}

static void
mx_cb(void *arg, enum dns_status st, const struct dns_mx *mx, size_t n)
{
	struct rjob	*rj = arg;
	const struct config *cfg = rj->r->cfg;
	struct mx_record rr[DNS_MX_MAX];
	const char	*self[1] = { cfg->hostname };
	struct mx_policy pol = { self, 1, (size_t)cfg->max_mx_hosts, rnd, NULL };
	size_t		 len = 0;
	const char	*dom = rj->j->dest;

	if (rj->r->stopping) {
		fail_all(rj, SMTP_CLIENT_TEMP, "4.3.2", "delivery interrupted "
		    "by shutdown");
		return;
	}
	switch (st) {
	case DNS_NXDOMAIN:
		fail_all(rj, SMTP_CLIENT_PERM, "5.1.2", "Host or domain name "
		    "not found. Name service error for name=%s type=MX: Host "
		    "not found", dom);
		return;
	case DNS_TEMPFAIL:
		fail_all(rj, SMTP_CLIENT_TEMP, "4.4.3", "Host or domain name "
		    "not found. Name service error for name=%s type=MX: "
		    "temporary failure, try again", dom);
		return;
	case DNS_NODATA:
		n = 0;
		break;
	case DNS_OK:
		break;
	}
	if (n > DNS_MX_MAX)
		n = DNS_MX_MAX;
	for (size_t i = 0; i < n; i++) {
		rr[i].preference = (uint16_t)mx[i].pref;
		rr[i].host = mx[i].host;
	}
	switch (mx_order(rr, n, &pol, &len)) {
	case MX_IMPLICIT:	/* RFC 5321 5.1: the domain is its own MX */
		snprintf(rj->hosts[0].host, sizeof(rj->hosts[0].host), "%s",
		    dom);
		rj->nhosts = 1;
		break;
	case MX_NULL:		/* RFC 7505 4.2 */
		fail_all(rj, SMTP_CLIENT_PERM, "5.1.10", "Domain %s does not "
		    "accept mail (null MX)", dom);
		return;
	case MX_LOOP:
		fail_all(rj, SMTP_CLIENT_PERM, "5.4.6", "mail for %s loops "
		    "back to myself", dom);
		return;
	case MX_OK:
		/* rr points into mx[]: copy out before the answer goes */
		for (size_t i = 0; i < len; i++) {
			rj->hosts[i].pref = rr[i].preference;
			snprintf(rj->hosts[i].host, sizeof(rj->hosts[i].host),
			    "%s", rr[i].host);
		}
		rj->nhosts = len;
		break;
	}
	next_host(rj);
}

/* "host[:port]" or "[v6]:port" into rj->hosts[0] and rj->port. */
static int
parse_hostport(struct rjob *rj, const char *s, unsigned defport)
{
	const char *colon;
	char	 host[DNS_NAME_MAX + 1];
	size_t	 hl;
	long	 port = defport;

	if (*s == '[') {
		const char *end = strchr(s, ']');

		if (end == NULL)
			return -1;
		s++;
		if (strncasecmp(s, "IPv6:", 5) == 0)	/* RFC 5321 4.1.3 */
			s += 5;
		hl = (size_t)(end - s);
		if (hl == 0 || hl >= sizeof(host))
			return -1;
		memcpy(host, s, hl);
		colon = end[1] == ':' ? end + 1 : NULL;
	} else {
		colon = strrchr(s, ':');
		hl = colon != NULL ? (size_t)(colon - s) : strlen(s);
		if (hl == 0 || hl >= sizeof(host))
			return -1;
		memcpy(host, s, hl);
	}
	host[hl] = '\0';
	if (colon != NULL) {
		char	*end;

		port = strtol(colon + 1, &end, 10);
		if (*end != '\0' || port < 1 || port > 65535)
			return -1;
	}
	snprintf(rj->hosts[0].host, sizeof(rj->hosts[0].host), "%s", host);
	rj->nhosts = 1;
	rj->port = (unsigned)port;
	return 0;
}

/* Look up and connect: the path of a job with no parked connection. */
static void
rjob_route(struct rjob *rj)
{
	const struct config *cfg = rj->r->cfg;
	struct remote_job *j = rj->j;

	switch (j->kind) {
	case REMOTE_MX:
		dns_mx(rj->r->dns, j->dest, mx_cb, rj);
		return;
	case REMOTE_SMARTHOST:
		if (parse_hostport(rj, j->dest, (unsigned)cfg->remote_port)
		    == -1) {
			fail_all(rj, SMTP_CLIENT_TEMP, "4.3.5", "bad smarthost "
			    "'%s'", j->dest);
			return;
		}
		next_host(rj);
		return;
	case REMOTE_LMTP:
		if (strncmp(j->dest, "unix:", 5) == 0) {
			struct sockaddr_un *sun = (void *)&rj->addrs[0];

			if (strlen(j->dest + 5) >= sizeof(sun->sun_path)) {
				fail_all(rj, SMTP_CLIENT_TEMP, "4.3.5",
				    "LMTP socket path too long");
				return;
			}
			sun->sun_family = AF_UNIX;
			snprintf(sun->sun_path, sizeof(sun->sun_path), "%s",
			    j->dest + 5);
			snprintf(rj->host, sizeof(rj->host), "%s", j->dest);
			rj->naddrs = 1;
			rj->port = 0;
			next_addr(rj);
			return;
		}
		if (parse_hostport(rj, j->dest, 24) == -1) {
			fail_all(rj, SMTP_CLIENT_TEMP, "4.3.5", "bad LMTP "
			    "destination '%s'", j->dest);
			return;
		}
		next_host(rj);
		return;
	}
}

void
remote_start(struct remote *r, struct remote_job *j)
{
	const struct config *cfg = r->cfg;
	struct rjob	*rj = xcalloc(1, sizeof(*rj));
	struct rpark	*rp;

	rj->r = r;
	rj->j = j;
	j->priv = rj;
	j->relay[0] = j->diag[0] = j->tls_info[0] = '\0';
	snprintf(j->relay, sizeof(j->relay), "none");
	j->conn_use = 1;
	rj->next = r->jobs;
	if (r->jobs != NULL)
		r->jobs->prev = rj;
	r->jobs = rj;
	rj->port = (unsigned)cfg->remote_port;
	rj->opts.helo = cfg->hostname;
	rj->opts.ssl_ctx = r->ssl;
	rj->opts.tls = strcmp(cfg->outbound_tls, "none") == 0 ?
	    SMTP_CLIENT_TLS_NONE : strcmp(cfg->outbound_tls, "required") == 0 ?
	    SMTP_CLIENT_TLS_REQUIRED : SMTP_CLIENT_TLS_OPPORTUNISTIC;
	rj->opts.connect_timeout = cfg->connect_timeout;
	rj->opts.command_timeout = cfg->client_command_timeout;
	rj->opts.data_timeout = cfg->client_data_timeout;
	switch (j->kind) {
	case REMOTE_MX:
		break;
	case REMOTE_SMARTHOST:
		rj->opts.auth_user = cfg->smarthost_user;
		rj->opts.auth_pass = cfg->smarthost_password;
		/* RFC 4954 4: no password in the clear */
		if (cfg->smarthost_user != NULL)
			rj->opts.tls = SMTP_CLIENT_TLS_REQUIRED;
		break;
	case REMOTE_LMTP:
		rj->opts.lmtp = true;
		rj->opts.tls = SMTP_CLIENT_TLS_NONE;
		break;
	}
	(void)park_key(j, rj->key, sizeof(rj->key));
	rj->opts.park = cfg->connection_reuse_time > 0 && rj->key[0] != '\0';
	if (rj->opts.park && (rp = park_take(r, rj->key)) != NULL) {
		rjob_reuse(rj, rp);
		return;
	}
	rjob_route(rj);
}

int
remote_new(struct event_base *base, const struct config *cfg,
    struct remote **out, char *err, size_t errlen)
{
	struct remote	*r = xcalloc(1, sizeof(*r));

	r->base = base;
	r->cfg = cfg;
	if (dns_new(base, cfg->dns_servers, cfg->dns_timeout * 1000, 2,
	    &r->dns, err, errlen) == -1) {
		free(r);
		return -1;
	}
	/* RFC 3207 4.1: opportunistic TLS, no certificate verification */
	if ((r->ssl = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(r->ssl, TLS1_2_VERSION) != 1) {
		snprintf(err, errlen, "outbound TLS context failed");
		if (r->ssl != NULL)
			SSL_CTX_free(r->ssl);
		dns_free(r->dns);
		free(r);
		return -1;
	}
	SSL_CTX_set_verify(r->ssl, SSL_VERIFY_NONE, NULL);
	*out = r;
	return 0;
}

void
remote_free(struct remote *r)
{
	if (r == NULL)
		return;
	r->stopping = true;
	for (struct rjob *rj = r->jobs, *next; rj != NULL; rj = next) {
		next = rj->next;
		if (rj->client != NULL)
			smtp_client_abort(rj->client);	/* finishes rj */
	}
	for (size_t b = 0; b < REMOTE_PARK_BUCKETS; b++)
		while (r->parked[b] != NULL)
			park_free(r->parked[b]);	/* QUIT */
	dns_free(r->dns);	/* pending lookups finish their jobs */
	SSL_CTX_free(r->ssl);
	free(r);
}

/*
 * The next "dest=target" item of an lmtp_routes value at *p: 1 with the
 * item in key/klen and target/tlen (an item without '=' or with an empty
 * side has klen or tlen 0), 0 at the end.
 */
static int
lmtp_next(const char **p, const char **key, size_t *klen,
    const char **target, size_t *tlen)
{
	const char *eq;
	size_t	 n;

	*p += strspn(*p, ", \t");
	if ((n = strcspn(*p, ", \t")) == 0)
		return 0;
	*key = *p;
	eq = memchr(*p, '=', n);
	*klen = eq != NULL ? (size_t)(eq - *p) : 0;
	*target = eq != NULL ? eq + 1 : *p + n;
	*tlen = eq != NULL ? n - *klen - 1 : 0;
	*p += n;
	return 1;
}

const char *
remote_lmtp_route(const struct config *cfg, const char *addr, char *buf,
    size_t cap)
{
	const char *p = cfg->lmtp_routes, *at = strrchr(addr, '@');
	const char *domain = at != NULL ? at + 1 : "";
	const char *key, *target, *dom_target = NULL;
	size_t	 klen, tlen, dom_tlen = 0;

	if (p == NULL)
		return NULL;
	while (lmtp_next(&p, &key, &klen, &target, &tlen)) {
		if (klen == 0 || tlen == 0)
			continue;
		if (klen == strlen(addr) && strncasecmp(key, addr, klen) == 0 &&
		    tlen < cap) {
			dom_target = target;	/* user@domain wins */
			dom_tlen = tlen;
			break;
		}
		if (klen == strlen(domain) &&
		    strncasecmp(key, domain, klen) == 0) {
			dom_target = target;	/* the last one counts */
			dom_tlen = tlen;
		}
	}
	if (dom_target == NULL || dom_tlen >= cap)
		return NULL;
	memcpy(buf, dom_target, dom_tlen);
	buf[dom_tlen] = '\0';
	return buf;
}

int
remote_lmtp_check(const struct config *cfg, char *err, size_t errlen)
{
	const char *p = cfg->lmtp_routes, *key, *target;
	size_t	 klen, tlen;

	if (p == NULL)
		return 0;
	while (lmtp_next(&p, &key, &klen, &target, &tlen))
		if (klen == 0 || tlen == 0) {
			snprintf(err, errlen, "[delivery] lmtp_routes: '%.*s': "
			    "use dest=host:port or dest=unix:/path",
			    (int)(target + tlen - key), key);
			return -1;
		}
	return 0;
}
