/*
 * serve.c: "petrel serve [-c FILE]": load the configuration, open the
 * spool, recover what is queued, listen, and run the event loop in the
 * foreground until SIGTERM or SIGINT.
 */
#include "cli/cli.h"

#include <errno.h>
#include <event2/event.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/newfile.h"
#include "core/util.h"
#include "core/workq.h"
#include "deliver/local.h"
#include "deliver/remote.h"
#include "net/listen.h"
#include "net/tls.h"
#include "queue/scheduler.h"
#include "queue/spool.h"
#include "smtp/server.h"

#define SERVE_LISTEN_MAX	(3 * CONFIG_LISTEN_MAX)

struct serve_ctx {
	struct event_base	*base;		/* owned */
	struct smtp_server	*srv;		/* owned */
	struct sched		*sched;		/* owned */
	const struct config	*cfg;		/* borrowed */
	struct tls_ctx		*tls;		/* owned or NULL */
};

/* One listening socket and what it is for. */
struct serve_port {
	struct serve_ctx	*ctx;		/* borrowed */
	enum smtp_port_kind	 kind;
	struct listener		*ln;		/* owned */
};

static void
on_accept(int fd, const struct sockaddr *sa, socklen_t len, void *arg)
{
	struct serve_port *p = arg;

	smtp_server_accept(p->ctx->srv, fd, sa, len, p->kind);
}

/* SIGHUP: new certificates for new sessions; live ones keep theirs. */
static void
tls_reload(struct serve_ctx *ctx)
{
	struct tls_ctx	*t;
	char		 err[1024], fp[128];

	if (tls_ctx_new(ctx->cfg, &t, fp, sizeof(fp), err, sizeof(err))
	    == -1) {
		log_err("- serve tls reload failed, keeping the old "
		    "certificates: %s", err);
		return;
	}
	smtp_server_set_tls(ctx->srv, t);
	tls_ctx_free(ctx->tls);
	ctx->tls = t;
	log_info("- serve tls reloaded%s%s", fp[0] ? " fingerprint=" : "", fp);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct serve_ctx *ctx = arg;

	(void)what;
	if (sig == SIGHUP) {
		/* TODO: reload the rest of the configuration too */
		tls_reload(ctx);
		return;
	}
	log_info("- serve stopping signal=%d sessions=%u",
	    (int)sig, smtp_server_sessions(ctx->srv));
	event_base_loopexit(ctx->base, NULL);
}

/*
 * glibc's malloc gives the top of its heap back to the system once 128 KiB
 * there are free, and serves 128 KiB and more with mmap. A message is held
 * in a buffer of up to SPOOL_MEM_MAX (128 KiB) and freed at its commit, so
 * with 100 KiB messages the heap grew and shrank all the time: 19 page
 * faults and half a brk(2) per message, each fault a fresh zeroed page.
 * Keeping up to 8 MiB free at the top (and the buffers on the heap) ends
 * that. What a burst leaves behind is at most 8 MiB per malloc arena, and
 * never more than the peak. Other C libraries keep their own policies.
 */
static void
malloc_tune(void)
{
#ifdef __GLIBC__
	(void)mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
	(void)mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
#endif
}

static void
recover_cb(const char *id, void *arg)
{
	struct serve_ctx *ctx = arg;

	sched_add(ctx->sched, id);
}

int
cli_serve(int argc, char **argv)
{
	const char	*path;
	struct config	*cfg = NULL;
	struct table	*users = NULL, *aliases = NULL, *sender_map = NULL;
	struct serve_ctx ctx = { 0 };
	struct workq	*wq;
	struct spool	*sp;
	struct serve_port ports[SERVE_LISTEN_MAX];
	size_t		 nports = 0;
	struct smtp_deps deps;
	struct remote	*remote = NULL;
	char		 fp[128];
	struct event	*sigs[3];
	const int	 signums[3] = { SIGTERM, SIGINT, SIGHUP };
	struct local_db	 ldb;
	char		 err[8192];
	long		 n;

	if ((path = cli_config_path(argc, argv)) == NULL) {
		fprintf(stderr, "usage: petrel serve [-c FILE]\n");
		return 2;
	}
	if (config_load(path, &cfg, err, sizeof(err)) == -1) {
		fprintf(stderr, "petrel: refusing to start: bad configuration\n"
		    "%s", err);
		if (err[0] != '\0' && err[strlen(err) - 1] != '\n')
			fputc('\n', stderr);
		return 1;
	}
	log_init(cfg->log_level);
	malloc_tune();
	if (cli_load_tables(cfg, &users, &aliases, err, sizeof(err)) == -1) {
		fprintf(stderr, "petrel: refusing to start: %s\n", err);
		config_free(cfg);
		return 1;
	}
	if (remote_lmtp_check(cfg, err, sizeof(err)) == -1) {
		/* the same refusal as "petrel check" */
		fprintf(stderr, "petrel: refusing to start: %s: %s\n", path,
		    err);
		table_free(users);
		table_free(aliases);
		config_free(cfg);
		return 1;
	}
	if (cfg->sender_map_file != NULL &&
	    table_load(cfg->sender_map_file, 0, &sender_map, err, sizeof(err))
	    == -1) {
		fprintf(stderr, "petrel: refusing to start: %s\n", err);
		return 1;
	}
	if (tls_ctx_new(cfg, &ctx.tls, fp, sizeof(fp), err, sizeof(err)) == -1) {
		fprintf(stderr, "petrel: refusing to start: %s\n", err);
		return 1;
	}
	ctx.cfg = cfg;
	signal(SIGPIPE, SIG_IGN);
	if (mkdir_p(cfg->mail_dir, 0700) == -1)
		log_fatal("- serve cannot create mail_dir %s: %s",
		    cfg->mail_dir, strerror(errno));

	ctx.base = event_base_new();
	if (ctx.base == NULL)
		log_fatal("- serve event_base_new failed");
	/* before any thread writes a file */
	newfile_set_fsync_names(cfg->always_dir_sync ? -1 : 0);
	wq = workq_new(ctx.base, cfg->workers);
	if ((sp = spool_open(cfg->spool_dir)) == NULL)
		log_fatal("- serve cannot open spool %s: %s", cfg->spool_dir,
		    strerror(errno));
	ldb.domains = (const char *const *)cfg->domains;
	ldb.domains_len = cfg->domains_len;
	ldb.users = users;
	ldb.aliases = aliases;
	ctx.sched = sched_new(ctx.base, cfg, sp, wq, &ldb);
	if (remote_new(ctx.base, cfg, &remote, err, sizeof(err)) == -1)
		log_fatal("- serve cannot start outbound delivery: %s", err);
	sched_set_remote(ctx.sched, remote);
	deps = (struct smtp_deps){ .base = ctx.base, .cfg = cfg, .spool = sp,
	    .sched = ctx.sched, .ldb = &ldb, .wq = wq,
	    .sender_map = sender_map };
	ctx.srv = smtp_server_new(&deps);
	smtp_server_set_tls(ctx.srv, ctx.tls);
	if (fp[0] != '\0')
		log_info("- serve tls self-signed certificate in %s "
		    "fingerprint=%s", cfg->tls_dir, fp);

	const struct {
		const struct config_listen *l;
		size_t			 n;
		enum smtp_port_kind	 kind;
		const char		*name;
	} groups[] = {
		{ cfg->mx_listen, cfg->mx_listen_len, SMTP_PORT_MX, "smtp" },
		{ cfg->submission_listen, cfg->submission_listen_len,
		  SMTP_PORT_SUBMISSION, "submission" },
		{ cfg->smtps_listen, cfg->smtps_listen_len, SMTP_PORT_SMTPS,
		  "smtps" },
	};
	for (size_t g = 0; g < 3; g++) {
		for (size_t i = 0; i < groups[g].n; i++) {
			const struct config_listen *l = &groups[g].l[i];
			struct serve_port *p = &ports[nports];
			int	 rc;

			p->ctx = &ctx;
			p->kind = groups[g].kind;
			p->ln = NULL;
			rc = listener_open(ctx.base, l, on_accept, p, &p->ln,
			    err, sizeof(err));
			if (rc == -1)
				log_fatal("- serve %s", err);
			if (rc == 1) {
				log_info("- serve listen [%s]:%s skipped: "
				    "address not available", l->host, l->port);
				continue;
			}
			log_info("- serve listen %s [%s]:%s", groups[g].name,
			    l->host, l->port);
			nports++;
		}
	}
	for (size_t i = 0; i < 3; i++) {
		sigs[i] = evsignal_new(ctx.base, signums[i], on_signal, &ctx);
		event_add(sigs[i], NULL);
	}

	if ((n = spool_scan(sp, recover_cb, &ctx)) == -1)
		log_fatal("- serve cannot scan spool: %s", strerror(errno));
	log_info("- serve started hostname=%s spool=%s mail=%s recovered=%ld "
	    "users=%zu aliases=%zu", cfg->hostname, cfg->spool_dir,
	    cfg->mail_dir, n, table_count(users), table_count(aliases));

	event_base_dispatch(ctx.base);

	/* stop taking work, let running jobs end, then free in order */
	for (size_t i = 0; i < nports; i++)
		listener_free(ports[i].ln);
	sched_stop(ctx.sched);
	smtp_server_stop(ctx.srv);
	remote_free(remote);	/* running attempts end as deferrals */
	workq_free(wq);
	smtp_server_free(ctx.srv);
	sched_free(ctx.sched);
	spool_close(sp);
	for (size_t i = 0; i < 3; i++)
		event_free(sigs[i]);
	event_base_free(ctx.base);
	table_free(users);
	table_free(aliases);
	table_free(sender_map);
	tls_ctx_free(ctx.tls);
	log_info("- serve stopped");
	config_free(cfg);
	return 0;
}
