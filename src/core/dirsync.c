/*
 * dirsync.c: shared directory fsyncs (group commit). A directory has an
 * entry while threads wait on it: "requested" counts callers, "synced" is
 * the highest caller number an fsync has covered. Entries go away when
 * nobody waits, so the table stays as small as the set of busy directories.
 */
#include "core/dirsync.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

struct dirsync_dir {
	char			*path;		/* owned */
	uint64_t		 requested;
	uint64_t		 synced;
	bool			 syncing;
	unsigned		 waiters;
	pthread_cond_t		 cond;
	struct dirsync_dir	*next;
};

struct dirsync {
	pthread_mutex_t		 mtx;
	struct dirsync_dir	*dirs;		/* guarded by mtx */
};

struct dirsync *
dirsync_new(void)
{
	struct dirsync	*ds = xcalloc(1, sizeof(*ds));

	pthread_mutex_init(&ds->mtx, NULL);
	return ds;
}

void
dirsync_free(struct dirsync *ds)
{
	if (ds == NULL)
		return;
	/* entries exist only while a thread waits: none may be left */
	pthread_mutex_destroy(&ds->mtx);
	free(ds);
}

static struct dirsync_dir *
dir_get(struct dirsync *ds, const char *path)
{
	struct dirsync_dir *d;

	for (d = ds->dirs; d != NULL; d = d->next)
		if (strcmp(d->path, path) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	d->path = xstrdup(path);
	pthread_cond_init(&d->cond, NULL);
	d->next = ds->dirs;
	ds->dirs = d;
	return d;
}

static void
dir_put(struct dirsync *ds, struct dirsync_dir *d)
{
	struct dirsync_dir **pp;

	if (--d->waiters > 0)
		return;		/* the syncer is a waiter too: not syncing now */
	for (pp = &ds->dirs; *pp != d; pp = &(*pp)->next)
		;
	*pp = d->next;
	pthread_cond_destroy(&d->cond);
	free(d->path);
	free(d);
}

int
dirsync_sync(struct dirsync *ds, const char *dir)
{
	struct dirsync_dir *d;
	uint64_t	 mine;
	int		 rc = 0, err = 0;

	if (ds == NULL)
		return fsync_dir(dir);
	pthread_mutex_lock(&ds->mtx);
	d = dir_get(ds, dir);
	d->waiters++;
	mine = ++d->requested;
	while (d->synced < mine) {
		if (d->syncing) {
			pthread_cond_wait(&d->cond, &ds->mtx);
			continue;
		}
		uint64_t target = d->requested;

		d->syncing = true;
		pthread_mutex_unlock(&ds->mtx);
		rc = fsync_dir(dir);
		err = errno;
		pthread_mutex_lock(&ds->mtx);
		d->syncing = false;
		if (rc == 0)
			d->synced = target;
		pthread_cond_broadcast(&d->cond);
		if (rc == -1)
			break;		/* others retry with their own fsync */
	}
	dir_put(ds, d);
	pthread_mutex_unlock(&ds->mtx);
	if (rc == -1)
		errno = err;
	return rc;
}
