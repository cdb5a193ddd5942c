/*
 * spool.c: the on-disk form of a queued message: write, commit, scan,
 * journal, remove. Knows nothing of SMTP sessions; callers decide when to
 * commit. Durability: a message is in queue/ only after its data was
 * synced, and a commit reports success only after queue/ was synced.
 */
#include "queue/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dirsync.h"
#include "core/fsgroup.h"
#include "core/log.h"
#include "core/newfile.h"
#include "core/util.h"

struct spool {
	char		*dir;		/* owned */
	char		*tmp_dir;	/* owned: <dir>/tmp */
	char		*queue_dir;	/* owned: <dir>/queue */
	struct qid_gen	 gen;		/* guarded by gen_mtx */
	pthread_mutex_t	 gen_mtx;	/* workers queue bounces too */

	struct dirsync	*ds;		/* owned: group commit of queue/ */
};

static int
clean_tmp(const char *tmp_dir)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[4096];

	if ((d = opendir(tmp_dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", tmp_dir, de->d_name);
		if (unlink(path) == 0)
			log_info("%s spool removed unfinished tmp file", de->d_name);
	}
	closedir(d);
	return 0;
}

struct spool *
spool_open(const char *dir)
{
	struct spool	*sp = xcalloc(1, sizeof(*sp));

	sp->dir = xstrdup(dir);
	sp->tmp_dir = xasprintf("%s/tmp", dir);
	sp->queue_dir = xasprintf("%s/queue", dir);
	pthread_mutex_init(&sp->gen_mtx, NULL);
	sp->ds = dirsync_new();
	if (mkdir_p(sp->tmp_dir, 0700) == -1 ||
	    mkdir_p(sp->queue_dir, 0700) == -1 ||
	    clean_tmp(sp->tmp_dir) == -1) {
		int saved = errno;

		spool_close(sp);
		errno = saved;
		return NULL;
	}
	return sp;
}

void
spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	pthread_mutex_destroy(&sp->gen_mtx);
	dirsync_free(sp->ds);
	free(sp->dir);
	free(sp->tmp_dir);
	free(sp->queue_dir);
	free(sp);
}

const char *
spool_queue_dir(const struct spool *sp)
{
	return sp->queue_dir;
}

void
spool_path(const struct spool *sp, const char *id, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", sp->queue_dir, id);
}

void
spool_journal_path(const struct spool *sp, const char *id, char *out,
    size_t cap)
{
	snprintf(out, cap, "%s/%s.j", sp->queue_dir, id);
}

struct spool_msg *
spool_msg_new(struct spool *sp)
{
	struct spool_msg *m;

	m = xcalloc(1, sizeof(*m));
	m->sp = sp;
	m->nf = NEWFILE_INIT;
	m->read_fd = -1;
	/* unique: spool_scan() put the generator past every queued id */
	pthread_mutex_lock(&sp->gen_mtx);
	qid_next(&sp->gen, now_usec(), m->id);
	pthread_mutex_unlock(&sp->gen_mtx);
	m->queue_path = xasprintf("%s/%s", sp->queue_dir, m->id);
	return m;
}

/* From memory to a file in tmp/ (unnamed where the system can): the
   message outgrew SPOOL_MEM_MAX, or is being committed. keep: it is
   complete, and its bytes also stay in memory, where spool_msg_src()
   reads them without a syscall. 0, or -1 with errno set. */
static int
spill(struct spool_msg *m, bool keep)
{
	if (newfile_open(&m->nf, m->sp->tmp_dir, m->id, 0600) == -1)
		return -1;
	m->file = true;
	m->kept = keep;
	if (io_write_all(m->nf.fd, m->mem, m->mem_len) == -1)
		return -1;
	if (!keep) {
		free(m->mem);
		m->mem = NULL;
		m->mem_len = m->mem_cap = 0;
	}
	return 0;
}

int
spool_msg_write(struct spool_msg *m, const void *buf, size_t len)
{
	if (m->error != 0)
		return -1;
	if (!m->file && len <= SPOOL_MEM_MAX - m->mem_len) {
		if (len > m->mem_cap - m->mem_len) {
			size_t	 cap = m->mem_cap != 0 ? m->mem_cap : 8192;

			/* fourfold: a 100 KiB message is copied on
			   growing 40 KiB, not 120 */
			while (cap < m->mem_len + len)
				cap *= 4;
			if (cap > SPOOL_MEM_MAX)
				cap = SPOOL_MEM_MAX;
			m->mem = xrealloc(m->mem, cap);
			m->mem_cap = cap;
		}
		memcpy(m->mem + m->mem_len, buf, len);
		m->mem_len += len;
		m->written += len;
		return 0;
	}
	if (m->kept) {	/* complete, said spool_msg_link(): no more */
		errno = m->error = EINVAL;
		return -1;
	}
	if ((!m->file && spill(m, false) == -1) ||
	    io_write_all(m->nf.fd, buf, len) == -1) {
		m->error = errno;
		return -1;
	}
	m->written += len;
	return 0;
}

void
spool_msg_src(const struct spool_msg *m, struct bytesrc *out)
{
	if (m->kept)
		*out = (struct bytesrc){ .fd = -1, .buf = m->mem,
		    .len = m->mem_len };
	else if (m->read_fd != -1)
		*out = (struct bytesrc){ .fd = m->read_fd };
	else if (m->file)
		*out = (struct bytesrc){ .fd = m->nf.fd };
	else
		*out = (struct bytesrc){ .fd = -1, .buf = m->mem,
		    .len = m->mem_len };
}

int
spool_msg_link(struct spool_msg *m, struct fsgroup *fg, bool *pending)
{
	struct stat	 st;

	*pending = false;
	if (m->error != 0)
		return m->error;
	if (!m->file && spill(m, true) == -1)
		return m->error = errno;
	/* the caller reads it back after the link closes nf.fd: from
	   memory, or else through a second descriptor */
	if (!m->kept &&
	    (m->read_fd = fcntl(m->nf.fd, F_DUPFD_CLOEXEC, 0)) == -1)
		return errno;
	if (fstat(m->nf.fd, &st) == -1 || !fsgroup_usable(fg, st.st_dev))
		return spool_msg_commit_sync(m);
	if (newfile_link(&m->nf, m->queue_path) == -1)
		return errno;
	m->committed = true;
	*pending = true;
	return 0;
}

int
spool_msg_commit_sync(struct spool_msg *m)
{
	if (m->error != 0)
		return m->error;
	if (!m->file && spill(m, false) == -1)
		return m->error = errno;
	bool	 named;

	/* group commit: one fsync of queue/ covers concurrent commits,
	   and runs while the file's own fsync does */
	if (newfile_publish_sync(&m->nf, m->queue_path, true, m->sp->ds,
	    m->sp->queue_dir, &named) == -1) {
		m->committed = named;
		return errno;
	}
	m->committed = true;
	return 0;
}

void
spool_msg_drop(struct spool_msg *m)
{
	newfile_discard(&m->nf);	/* after a commit: nothing to remove */
	if (m->read_fd != -1)
		close(m->read_fd);
	m->read_fd = -1;
	m->file = false;	/* a second drop has nothing to remove */
	m->kept = false;
	free(m->mem);
	m->mem = NULL;
	m->mem_len = m->mem_cap = 0;
}

void
spool_msg_free(struct spool_msg *m)
{
	if (m == NULL)
		return;
	spool_msg_drop(m);	/* never leave a half-written file */
	free(m->queue_path);
	free(m);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

long
spool_scan(struct spool *sp, void (*cb)(const char *, void *), void *arg)
{
	DIR		*d;
	struct dirent	*de;
	char		**ids = NULL, path[4096];
	size_t		 n = 0, cap = 0;

	if ((d = opendir(sp->queue_dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (qid_valid(de->d_name)) {
			pthread_mutex_lock(&sp->gen_mtx);
			qid_after(&sp->gen, de->d_name);
			pthread_mutex_unlock(&sp->gen_mtx);
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				ids = xreallocarray(ids, cap, sizeof(*ids));
			}
			ids[n++] = xstrdup(de->d_name);
		} else if (strlen(de->d_name) == QID_LEN + 2 &&
		    strcmp(de->d_name + QID_LEN, ".j") == 0) {
			char	 id[QID_LEN + 1];
			struct stat st;

			memcpy(id, de->d_name, QID_LEN);
			id[QID_LEN] = '\0';
			spool_path(sp, id, path, sizeof(path));
			if (stat(path, &st) == -1 && errno == ENOENT) {
				spool_journal_path(sp, id, path, sizeof(path));
				unlink(path);
			}
		}
	}
	closedir(d);
	if (n > 1)
		qsort(ids, n, sizeof(*ids), cmp_str);	/* ids sort by arrival */
	for (size_t i = 0; i < n; i++) {
		cb(ids[i], arg);
		free(ids[i]);
	}
	free(ids);
	return (long)n;
}

int
spool_journal_append(const struct spool *sp, const char *id,
    const char *line, size_t len)
{
	char	 path[4096];
	int	 fd, rc = -1;
	struct stat st;
	struct dirsync_ticket t;
	bool	 created;

	spool_journal_path(sp, id, path, sizeof(path));
	created = stat(path, &st) == -1;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	if (io_write_all(fd, line, len) == -1)
		goto out;
	if (!created) {
		rc = fdatasync(fd);
		goto out;
	}
	/* a new name in queue/: the first fdatasync writes queue/'s blocks
	   too, so where that races with commits' syncs it holds queue/ */
	dirsync_begin_as(sp->ds, sp->queue_dir, &t, newfile_fsync_races(fd));
	rc = fdatasync(fd);
	if (dirsync_end(&t) == -1)
		rc = -1;
out:
	if (close(fd) == -1)
		rc = -1;
	return rc;
}

int
spool_remove(const struct spool *sp, const char *id)
{
	char	 path[4096];
	int	 rc = 0;

	/* message first: a journal without its message is cleaned at scan */
	spool_path(sp, id, path, sizeof(path));
	if (unlink(path) == -1 && errno != ENOENT)
		rc = -1;
	spool_journal_path(sp, id, path, sizeof(path));
	if (unlink(path) == -1 && errno != ENOENT)
		rc = -1;
	return rc;
}
