/*
 * commit_ceiling.c: how many durable "spool commits" this disk can do per
 * second, with no MTA in the way. One operation is what a careful MTA does
 * per message at least once: create a file in tmp/, write 4 KiB, fdatasync,
 * close, rename into new/, fsync(new/). Each thread loops for a fixed time.
 *
 * usage: commit_ceiling -d DIR [-t THREADS] [-s SECONDS] [-b BYTES]
 * prints: threads=N ops=N seconds=S ops_per_s=R
 * DIR must not exist or be empty; the files are left there for the caller
 * to remove (unlinking during the run would add work that is not a commit).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CEIL_THREADS_MAX	1024
#define CEIL_BYTES_MAX		(16 * 1024 * 1024)

struct ceil_ctx {
	const char	*dir;		/* borrowed: argv */
	size_t		 bytes;
	double		 deadline;	/* CLOCK_MONOTONIC seconds */
	atomic_int	 failed;
};

struct ceil_thread {
	struct ceil_ctx	*ctx;		/* borrowed: lives in main() */
	int		 id;
	long		 ops;
	pthread_t	 tid;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One commit: tmp file, write, fdatasync, rename into new/, fsync(new/). */
static int
ceil_commit(struct ceil_ctx *c, int newfd, const char *buf, int id, long n)
{
	char	 tmp[4096], dst[4096];
	int	 fd = -1, rc = -1;

	if (snprintf(tmp, sizeof(tmp), "%s/tmp/%d.%ld", c->dir, id, n) >=
	    (int)sizeof(tmp) ||
	    snprintf(dst, sizeof(dst), "%s/new/%d.%ld", c->dir, id, n) >=
	    (int)sizeof(dst))
		goto out;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1)
		goto out;
	if (write_all(fd, buf, c->bytes) == -1 || fdatasync(fd) == -1)
		goto out;
	if (close(fd) == -1) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (rename(tmp, dst) == -1 || fsync(newfd) == -1)
		goto out;
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	if (rc == -1)
		fprintf(stderr, "commit_ceiling: %s: %s\n", tmp, strerror(errno));
	return rc;
}

static void *
ceil_run(void *arg)
{
	struct ceil_thread	*t = arg;
	struct ceil_ctx		*c = t->ctx;
	char			 path[4096];
	char			*buf = NULL;
	int			 newfd = -1;

	if ((buf = malloc(c->bytes)) == NULL)
		goto fail;
	memset(buf, 'x', c->bytes);
	if (snprintf(path, sizeof(path), "%s/new", c->dir) >= (int)sizeof(path))
		goto fail;
	if ((newfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		goto fail;
	while (now() < c->deadline && !atomic_load(&c->failed)) {
		if (ceil_commit(c, newfd, buf, t->id, t->ops) == -1)
			goto fail;
		t->ops++;
	}
	goto out;
fail:
	atomic_store(&c->failed, 1);
out:
	if (newfd != -1)
		close(newfd);
	free(buf);
	return NULL;
}

static int
mkdir_p(const char *dir, const char *sub)
{
	char path[4096];

	if (snprintf(path, sizeof(path), "%s%s", dir, sub) >= (int)sizeof(path))
		return -1;
	if (mkdir(path, 0700) == -1 && errno != EEXIST)
		return -1;
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: commit_ceiling -d DIR [-t THREADS] "
	    "[-s SECONDS] [-b BYTES]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct ceil_ctx		 ctx = { .bytes = 4096 };
	struct ceil_thread	*th = NULL;
	double			 secs = 3, start, elapsed;
	long			 total = 0;
	int			 nthreads = 1, ch, i;

	while ((ch = getopt(argc, argv, "d:t:s:b:")) != -1) {
		switch (ch) {
		case 'd':
			ctx.dir = optarg;
			break;
		case 't':
			nthreads = atoi(optarg);
			break;
		case 's':
			secs = atof(optarg);
			break;
		case 'b':
			ctx.bytes = (size_t)atol(optarg);
			break;
		default:
			usage();
		}
	}
	/* every loop is bounded: at most 10 minutes, at most 1024 threads */
	if (ctx.dir == NULL || nthreads < 1 || nthreads > CEIL_THREADS_MAX ||
	    !(secs > 0 && secs <= 600) || ctx.bytes < 1 ||
	    ctx.bytes > CEIL_BYTES_MAX)
		usage();
	if (mkdir_p(ctx.dir, "") == -1 || mkdir_p(ctx.dir, "/tmp") == -1 ||
	    mkdir_p(ctx.dir, "/new") == -1) {
		fprintf(stderr, "commit_ceiling: %s: %s\n", ctx.dir,
		    strerror(errno));
		return 1;
	}
	if ((th = calloc((size_t)nthreads, sizeof(*th))) == NULL)
		return 1;
	start = now();
	ctx.deadline = start + secs;
	for (i = 0; i < nthreads; i++) {
		th[i].ctx = &ctx;
		th[i].id = i;
		if (pthread_create(&th[i].tid, NULL, ceil_run, &th[i]) != 0) {
			fprintf(stderr, "commit_ceiling: pthread_create failed\n");
			atomic_store(&ctx.failed, 1);
			nthreads = i;
			break;
		}
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(th[i].tid, NULL);
		total += th[i].ops;
	}
	elapsed = now() - start;
	free(th);
	if (atomic_load(&ctx.failed))
		return 1;
	printf("threads=%d ops=%ld seconds=%.3f ops_per_s=%.1f\n", nthreads,
	    total, elapsed, total / elapsed);
	return 0;
}
