/*
 * serve.c: "petrel serve [-c FILE]": load the configuration, open the
 * spool, recover what is queued, listen, and run the event loop in the
 * foreground until SIGTERM or SIGINT.
 */
#include "cli/cli.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "core/workq.h"
#include "deliver/local.h"
#include "net/listen.h"
#include "queue/scheduler.h"
#include "queue/spool.h"
#include "smtp/server.h"

struct serve_ctx {
	struct event_base	*base;		/* owned */
	struct smtp_server	*srv;		/* owned */
	struct sched		*sched;		/* owned */
};

static void
on_accept(int fd, const struct sockaddr *sa, socklen_t len, void *arg)
{
	struct serve_ctx *ctx = arg;

	smtp_server_accept(ctx->srv, fd, sa, len);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct serve_ctx *ctx = arg;

	(void)what;
	if (sig == SIGHUP) {
		/* TODO(#4): reload certificates and configuration */
		log_info("- serve SIGHUP: reload is not supported yet");
		return;
	}
	log_info("- serve stopping signal=%d sessions=%u",
	    (int)sig, smtp_server_sessions(ctx->srv));
	event_base_loopexit(ctx->base, NULL);
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
	struct table	*users = NULL, *aliases = NULL;
	struct serve_ctx ctx = { 0 };
	struct workq	*wq;
	struct spool	*sp;
	struct listener	*ln[CONFIG_LISTEN_MAX] = { 0 };
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
	if (cli_load_tables(cfg, &users, &aliases, err, sizeof(err)) == -1) {
		fprintf(stderr, "petrel: refusing to start: %s\n", err);
		config_free(cfg);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if (mkdir_p(cfg->mail_dir, 0700) == -1)
		log_fatal("- serve cannot create mail_dir %s: %s",
		    cfg->mail_dir, strerror(errno));

	ctx.base = event_base_new();
	if (ctx.base == NULL)
		log_fatal("- serve event_base_new failed");
	wq = workq_new(ctx.base, cfg->workers);
	if ((sp = spool_open(cfg->spool_dir, wq)) == NULL)
		log_fatal("- serve cannot open spool %s: %s", cfg->spool_dir,
		    strerror(errno));
	ldb.domains = (const char *const *)cfg->domains;
	ldb.domains_len = cfg->domains_len;
	ldb.users = users;
	ldb.aliases = aliases;
	ctx.sched = sched_new(ctx.base, cfg, sp, wq, &ldb);
	ctx.srv = smtp_server_new(ctx.base, cfg, sp, ctx.sched, &ldb);

	for (size_t i = 0; i < cfg->mx_listen_len; i++) {
		const struct config_listen *l = &cfg->mx_listen[i];
		int rc = listener_open(ctx.base, l, on_accept, &ctx, &ln[i], err,
		    sizeof(err));

		if (rc == -1)
			log_fatal("- serve %s", err);
		if (rc == 1)
			log_info("- serve listen [%s]:%s skipped: address not "
			    "available", l->host, l->port);
		else
			log_info("- serve listen smtp [%s]:%s", l->host,
			    l->port);
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
	for (size_t i = 0; i < CONFIG_LISTEN_MAX; i++)
		listener_free(ln[i]);
	sched_stop(ctx.sched);
	smtp_server_stop(ctx.srv);
	workq_free(wq);
	smtp_server_free(ctx.srv);
	sched_free(ctx.sched);
	spool_close(sp);
	for (size_t i = 0; i < 3; i++)
		event_free(sigs[i]);
	event_base_free(ctx.base);
	table_free(users);
	table_free(aliases);
	log_info("- serve stopped");
	config_free(cfg);
	return 0;
}
