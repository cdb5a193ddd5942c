/*
 * smtpc.c: petrel-smtpc, a test driver for the SMTP/LMTP client module:
 * sends one message file to host:port and prints the per-recipient results.
 * For tests only; it blocks on name lookup and is no part of petrel.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "core/log.h"
#include "core/util.h"
#include "smtp/client.h"
#include "smtp/parse.h"

#define SMTPC_RCPT_MAX	1000

struct smtpc {
	struct event_base	*base;
	struct smtp_client	*client;
	bool			 finished;
	enum smtp_client_status	 st;
	char			*diag;
	char			*tls_info;
};

static void
usage(void)
{
	fprintf(stderr, "usage: petrel-smtpc host port [--lmtp] "
	    "[--tls none|opportunistic|required] [--auth user:pass]\n"
	    "\t[--helo NAME] [--peer-name NAME] [--timeout SECONDS] "
	    "[--notify LIST] [--orcpt X]\n"
	    "\t[--ret FULL|HDRS] [--envid X] [--8bit] [--smtputf8] "
	    "[--body-off N] [--abort MS]\n"
	    "\t[--debug] --from ADDR --to ADDR [--to ADDR ...] FILE\n");
	exit(2);
}

static unsigned
parse_notify(const char *s)
{
	unsigned n = 0;
	char	*copy = xstrdup(s), *tok, *save = NULL;

	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (strcasecmp(tok, "NEVER") == 0)
			n |= SMTP_NOTIFY_NEVER;
		else if (strcasecmp(tok, "SUCCESS") == 0)
			n |= SMTP_NOTIFY_SUCCESS;
		else if (strcasecmp(tok, "FAILURE") == 0)
			n |= SMTP_NOTIFY_FAILURE;
		else if (strcasecmp(tok, "DELAY") == 0)
			n |= SMTP_NOTIFY_DELAY;
		else
			usage();
	}
	free(copy);
	return n;
}

static void
done_cb(void *arg, enum smtp_client_status st, const char *diag,
    const char *tls_info)
{
	struct smtpc *s = arg;

	s->finished = true;
	s->client = NULL;
	s->st = st;
	s->diag = xstrdup(diag != NULL ? diag : "(null)");
	s->tls_info = tls_info != NULL ? xstrdup(tls_info) : NULL;
	event_base_loopbreak(s->base);
}

static void
abort_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *s = arg;

	(void)fd;
	(void)what;
	if (s->client != NULL)
		smtp_client_abort(s->client);
}

static const char *
result_name(enum smtp_client_result r)
{
	switch (r) {
	case SMTP_CLIENT_OK:
		return "OK";
	case SMTP_CLIENT_TEMP:
		return "TEMP";
	case SMTP_CLIENT_PERM:
		return "PERM";
	default:
		return "PENDING";
	}
}

int
main(int argc, char **argv)
{
	struct smtp_client_opts o = { 0 };
	struct smtp_client_msg m = { 0 };
	struct smtp_client_rcpt *rcpt;
	struct smtpc s = { 0 };
	struct addrinfo hints = { 0 }, *ai = NULL;
	struct event *abort_ev = NULL;
	struct stat sb;
	SSL_CTX	*ctx = NULL;
	const char *host, *port, *file = NULL, *orcpt = NULL;
	unsigned notify = 0;
	int	 timeout = 0, abort_ms = -1, rc;
	char	*auth = NULL;

	if (argc < 3)
		usage();
	host = argv[1];
	port = argv[2];
	rcpt = xcalloc(SMTPC_RCPT_MAX, sizeof(*rcpt));
	o.helo = "smtpc.test";
	o.tls = SMTP_CLIENT_TLS_NONE;
	m.from = NULL;
	m.fd = -1;
	for (int i = 3; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--lmtp") == 0) {
			o.lmtp = true;
			continue;
		}
		if (strcmp(a, "--8bit") == 0) {
			m.eightbit = true;
			continue;
		}
		if (strcmp(a, "--smtputf8") == 0) {
			m.smtputf8 = true;
			continue;
		}
		if (strcmp(a, "--debug") == 0) {
			log_init(LOG_LVL_DEBUG);
			continue;
		}
		if (a[0] != '-' || a[1] != '-') {
			if (file != NULL)
				usage();
			file = a;
			continue;
		}
		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "--tls") == 0) {
			if (strcmp(v, "none") == 0)
				o.tls = SMTP_CLIENT_TLS_NONE;
			else if (strcmp(v, "opportunistic") == 0)
				o.tls = SMTP_CLIENT_TLS_OPPORTUNISTIC;
			else if (strcmp(v, "required") == 0)
				o.tls = SMTP_CLIENT_TLS_REQUIRED;
			else
				usage();
		} else if (strcmp(a, "--auth") == 0) {
			auth = xstrdup(v);
			char *colon = strchr(auth, ':');
			if (colon == NULL)
				usage();
			*colon = '\0';
			o.auth_user = auth;
			o.auth_pass = colon + 1;
		} else if (strcmp(a, "--helo") == 0) {
			o.helo = v;
		} else if (strcmp(a, "--peer-name") == 0) {
			o.peer_name = v;
		} else if (strcmp(a, "--timeout") == 0) {
			timeout = atoi(v);
		} else if (strcmp(a, "--notify") == 0) {
			notify = parse_notify(v);
		} else if (strcmp(a, "--orcpt") == 0) {
			orcpt = v;
		} else if (strcmp(a, "--ret") == 0) {
			m.ret = strcasecmp(v, "FULL") == 0 ? SMTP_RET_FULL :
			    strcasecmp(v, "HDRS") == 0 ? SMTP_RET_HDRS :
			    SMTP_RET_NONE;
		} else if (strcmp(a, "--envid") == 0) {
			m.envid = v;
		} else if (strcmp(a, "--body-off") == 0) {
			m.body_off = (off_t)strtoll(v, NULL, 10);
		} else if (strcmp(a, "--abort") == 0) {
			abort_ms = atoi(v);
		} else if (strcmp(a, "--from") == 0) {
			m.from = v;
		} else if (strcmp(a, "--to") == 0) {
			if (m.nrcpt == SMTPC_RCPT_MAX)
				usage();
			rcpt[m.nrcpt++].addr = v;
		} else {
			usage();
		}
	}
	if (file == NULL || m.from == NULL || m.nrcpt == 0)
		usage();
	for (size_t i = 0; i < m.nrcpt; i++) {
		rcpt[i].notify = notify;
		rcpt[i].orcpt = orcpt;
	}
	m.rcpt = rcpt;
	o.connect_timeout = timeout;
	o.command_timeout = timeout;
	o.data_timeout = timeout;
	if (o.peer_name == NULL)
		o.peer_name = host;

	signal(SIGPIPE, SIG_IGN);
	if ((m.fd = open(file, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(m.fd, &sb) == -1) {
		fprintf(stderr, "petrel-smtpc: %s: %s\n", file,
		    strerror(errno));
		return 1;
	}
	m.size = (uint64_t)sb.st_size - (uint64_t)m.body_off;
	if (o.tls != SMTP_CLIENT_TLS_NONE) {
		if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
		    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
			fprintf(stderr, "petrel-smtpc: SSL_CTX_new failed\n");
			return 1;
		}
		o.ssl_ctx = ctx;
	}
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
		fprintf(stderr, "petrel-smtpc: %s: %s\n", host,
		    gai_strerror(rc));
		return 1;
	}
	s.base = event_base_new();
	s.client = smtp_client_start(s.base, ai->ai_addr, ai->ai_addrlen, &o,
	    &m, done_cb, &s);
	if (s.client == NULL) {
		fprintf(stderr, "petrel-smtpc: socket: %s\n", strerror(errno));
		return 1;
	}
	/* the client copies the options: they may go now */
	if (ctx != NULL)
		SSL_CTX_free(ctx);
	if (auth != NULL) {
		memset(auth, 0, strlen(auth));
		o.auth_user = o.auth_pass = NULL;
	}
	if (abort_ms >= 0) {
		struct timeval tv = { abort_ms / 1000,
		    (abort_ms % 1000) * 1000 };

		abort_ev = evtimer_new(s.base, abort_cb, &s);
		evtimer_add(abort_ev, &tv);
	}
	while (!s.finished)
		if (event_base_dispatch(s.base) == -1)
			break;
	for (size_t i = 0; i < m.nrcpt; i++) {
		char	 addr[1024];

		/* one line per rcpt, whatever the address holds */
		str_escape(rcpt[i].addr, strlen(rcpt[i].addr), addr,
		    sizeof(addr));
		printf("%s %s %d %s %s\n", addr, result_name(rcpt[i].result),
		    rcpt[i].code, rcpt[i].enh[0] ? rcpt[i].enh : "-",
		    rcpt[i].text);
	}
	printf("status %s %s\n", s.st == SMTP_CLIENT_DONE ? "DONE" :
	    "NEXT_HOST", s.diag != NULL ? s.diag : "(no callback)");
	printf("tls %s\n", s.tls_info != NULL ? s.tls_info : "-");
	if (abort_ev != NULL)
		event_free(abort_ev);
	event_base_free(s.base);
	freeaddrinfo(ai);
	close(m.fd);
	free(rcpt);
	free(auth);
	free(s.diag);
	free(s.tls_info);
	return s.finished ? 0 : 1;
}
