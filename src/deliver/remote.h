#ifndef PETREL_DELIVER_REMOTE_H
#define PETREL_DELIVER_REMOTE_H
/*
 * remote.h: carry one message to one destination: an MX domain, the
 * smarthost, or an LMTP store. Looks up MX and addresses (async DNS),
 * tries hosts in order (RFC 5321 5.1), runs the SMTP/LMTP client and
 * reports a result per recipient. A connection whose transaction ended
 * normally is parked for the next job to the same destination ([delivery]
 * connection_reuse_time). Loop thread only. It decides nothing about
 * retries or bounces: the scheduler does.
 */
#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/config.h"
#include "smtp/client.h"

struct remote;

enum remote_kind {
	REMOTE_MX,		/* dest is a domain: MX lookup */
	REMOTE_SMARTHOST,	/* dest is "host[:port]" */
	REMOTE_LMTP,		/* dest is "host:port" or "unix:/path" */
};

/* One destination's share of a message; all borrowed until done runs. */
struct remote_job {
	enum remote_kind	 kind;
	const char		*dest;
	const char		*id;		/* queue id, for log lines */
	struct smtp_client_msg	*msg;		/* rcpt[] gets the results */
	char			 relay[400];	/* out: "host[addr]:port" of the
						   last host tried, or "none" */
	char			 diag[SMTP_CLIENT_TEXT_MAX]; /* out: why, when
						   no host took the message */
	char			 tls_info[128];	/* out: "" or "TLSv1.3 ..." */
	unsigned		 conn_use;	/* out: messages the connection
						   carried, this one included:
						   1 = a new connection */
	void			(*done)(struct remote_job *j);
	void			*arg;		/* the caller's */
	/* private to remote.c */
	void			*priv;
};

/* cfg borrowed for the remote's life. 0 and *out, or -1 with err. */
int	remote_new(struct event_base *base, const struct config *cfg,
	    struct remote **out, char *err, size_t errlen);
/*
 * Abort what runs (their done() run with TEMP results), close the parked
 * connections (QUIT) and free.
 */
void	remote_free(struct remote *r);
/*
 * Start j: on a connection parked for the same kind and dest if there is
 * one (one that turns out dead is replaced by a new one, not counted as a
 * failed host), else by looking up and connecting. j->done runs once on
 * the loop with every msg->rcpt[] result set (OK, TEMP or PERM, with code,
 * enh and text).
 */
void	remote_start(struct remote *r, struct remote_job *j);
/*
 * Parse the [delivery] lmtp_routes value: the LMTP destination for a
 * recipient address, or NULL when it has none. Borrowed from cfg.
 * remote_lmtp_check() validates the whole value for "petrel check".
 */
const char *remote_lmtp_route(const struct config *cfg, const char *addr,
	    char *buf, size_t cap);
int	remote_lmtp_check(const struct config *cfg, char *err, size_t errlen);

#endif
