/*
 * fuzz_session.c: drive whole SMTP server sessions with arbitrary bytes in
 * arbitrary chunks, over an in-memory bufferevent pair (no sockets). The
 * spool is real (a temp dir); the scheduler is stopped, so nothing is
 * delivered. Invariants: every reply line is "DDD[ -]text\r\n", the
 * session always ends after EOF, and nothing is left in tmp/.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <ftw.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/table.h"
#include "core/util.h"
#include "core/workq.h"
#include "deliver/local.h"
#include "queue/scheduler.h"
#include "queue/spool.h"
#include "smtp/server.h"

static struct event_base	*base;
static struct workq		*wq;
static struct spool		*sp;
static struct sched		*sched;
static struct smtp_server	*srv;
static struct config		*cfg;
static struct table		*users, *aliases;
static struct local_db		 ldb;
static char			 dir[] = "/tmp/petrel-fuzz-XXXXXX";

static void
clean(const char *sub)
{
	char	 path[512];
	DIR	*d;
	struct dirent *de;

	snprintf(path, sizeof(path), "%s/spool/%s", dir, sub);
	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char	 f[1024];

		if (de->d_name[0] == '.')
			continue;
		snprintf(f, sizeof(f), "%s/%s", path, de->d_name);
		unlink(f);
	}
	closedir(d);
}

static size_t
count(const char *sub)
{
	char	 path[512];
	DIR	*d;
	struct dirent *de;
	size_t	 n = 0;

	snprintf(path, sizeof(path), "%s/spool/%s", dir, sub);
	if ((d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void
rm_dir(void)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char	 path[512], err[512];
	FILE	*f;

	(void)argc;
	(void)argv;
	log_init(LOG_LVL_ERR);
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(rm_dir);
	cfg = config_default();
	free(cfg->spool_dir);
	cfg->spool_dir = xasprintf("%s/spool", dir);
	free(cfg->mail_dir);
	cfg->mail_dir = xasprintf("%s/mail", dir);
	cfg->max_message_size = 64 * 1024;	/* reach the limit quickly */
	cfg->max_recipients = 5;
	snprintf(path, sizeof(path), "%s/users", dir);
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fputs("alice@localhost\n", f);
	fclose(f);
	if (table_load(path, 0, &users, err, sizeof(err)) == -1)
		abort();
	aliases = table_empty();
	ldb.domains = (const char *const *)cfg->domains;
	ldb.domains_len = cfg->domains_len;
	ldb.users = users;
	ldb.aliases = aliases;
	base = event_base_new();
	wq = workq_new(base, 1);
	if ((sp = spool_open(cfg->spool_dir)) == NULL)
		abort();
	sched = sched_new(base, cfg, sp, wq, &ldb);
	sched_stop(sched);	/* keep what is queued; we remove it */
	struct smtp_deps deps = { .base = base, .cfg = cfg, .spool = sp,
	    .sched = sched, .ldb = &ldb, .wq = wq, .sender_map = NULL };
	srv = smtp_server_new(&deps);
	return 0;
}

/* Every reply line: three digits, ' ' or '-', text, CRLF. */
static void
check_replies(struct evbuffer *out)
{
	size_t	 len = evbuffer_get_length(out);
	const char *p = (const char *)evbuffer_pullup(out, -1);
	size_t	 i = 0;

	while (i < len) {
		const char *nl = memmem(p + i, len - i, "\r\n", 2);

		if (nl == NULL)
			abort();	/* a reply without CRLF */
		size_t	 n = (size_t)(nl - (p + i));

		if (n < 4 || p[i] < '2' || p[i] > '5' || p[i + 1] < '0' ||
		    p[i + 1] > '9' || p[i + 2] < '0' || p[i + 2] > '9' ||
		    (p[i + 3] != ' ' && p[i + 3] != '-'))
			abort();
		if (memchr(p + i, '\n', n) != NULL || memchr(p + i, '\r', n))
			abort();	/* a bare line end inside a reply */
		i += n + 2;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bufferevent *pair[2];
	struct sockaddr_in sin;
	uint32_t seed = 1;
	size_t	 off = 0;
	int	 guard;

	if (size > 0) {
		seed = data[0] | 1u;
		data++;
		size--;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(40000);
	sin.sin_addr.s_addr = htonl(0x7f000001);
	if (bufferevent_pair_new(base, 0, pair) == -1)
		abort();
	bufferevent_enable(pair[1], EV_READ);	/* take the replies */
	smtp_server_attach(srv, pair[0], (struct sockaddr *)&sin,
	    SMTP_PORT_MX);
	while (off < size) {
		seed = seed * 1103515245u + 12345u;
		size_t	 n = 1 + (seed >> 16) % 300;

		if (n > size - off)
			n = size - off;
		bufferevent_write(pair[1], data + off, n);
		event_base_loop(base, EVLOOP_NONBLOCK);
		off += n;
	}
	bufferevent_flush(pair[1], EV_WRITE, BEV_FINISHED);	/* EOF */
	for (guard = 0; smtp_server_sessions(srv) > 0 || workq_pending(wq) > 0;
	    guard++) {
		if (guard > 100000)
			abort();	/* a session that never ends */
		event_base_loop(base, EVLOOP_ONCE);
	}
	check_replies(bufferevent_get_input(pair[1]));
	bufferevent_free(pair[1]);
	if (count("tmp") != 0)
		abort();		/* an unfinished message left behind */
	clean("queue");
	return 0;
}
