/*
 * newfile.c: see newfile.h. The unnamed file is linked with
 * AT_EMPTY_PATH where the process may (CAP_DAC_READ_SEARCH), else through
 * /proc/self/fd/N with AT_SYMLINK_FOLLOW, which needs no privilege.
 *
 * Order for the unnamed file: the data written out (sync_file_range,
 * which waits for the writes but neither writes the inode nor flushes the
 * disk's cache), link, then fsync. That one fsync makes the data, the
 * inode with its link count and its blocks durable; the caller's sync of
 * the directory makes the name durable. Readers never see the name before
 * the whole contents. A full fsync before the link would cost a second
 * cache flush and, without a filesystem journal (ext2-style ext4), would
 * write the inode with a link count of 0 that still needs rewriting.
 * Where sync_file_range is refused, fdatasync takes its place.
 *
 * newfile_publish_sync() also syncs the directory, and runs that sync
 * (dirsync.h, on a syncer thread) while the file's fsync runs: each
 * waits for its own writes and its own cache flush, so together they
 * take about the time of one instead of two. Neither order between them
 * is needed, since nothing relies on the file before both are done.
 * Without a journal the name can then reach the disk before the inode
 * (as it could before, through another thread's sync of the same
 * directory between our link and our fsync); a power loss right then
 * leaves a name that fsck removes. Nothing is lost: the caller
 * acknowledges (or removes the queue file) only after both.
 *
 * Where the file's own fsync already makes the name it was linked under
 * durable (newfile_fsync_names()), the directory sync is left out: on
 * ext4 with a journal, the link changed the file's inode and the
 * directory in one transaction, which the fsync commits and waits for;
 * on XFS the link logged the inode, and the fsync forces the log up to
 * it. Not on ext4 without a journal: its fsync does write the new
 * entry's directory block (ext4_sync_parent()), but not the directory's
 * inode unless the VFS marked it dirty, which a link does not (a
 * directory grown by a block loses the block), and a concurrent fsync
 * that took the block's write off the directory's list makes the other
 * return before that write is done. All deliveries to one Maildir share
 * its new/, so their directory syncs queue behind each other: leaving
 * them out made w1 (20 sessions, one mailbox) 7% faster, w3 8% and w1s4
 * 12% on this VM's ext4 (measured without a journal, before that was
 * found unsafe; 875a621's message).
 *
 * That second flaw is also why, on ext4 without a journal
 * (newfile_fsync_races()), the fsyncs of our commits into one directory
 * take turns: the file's first fsync after its link writes the
 * directory's blocks (ext4_sync_parent()), so two commits' fsyncs side by
 * side could each return while the other's write of the block holding
 * its name is still on its way. In its turn (dirsync_hold()) the unnamed
 * file's one fsync makes its name durable (fsync_held()); the fallback,
 * always_dir_sync and a new journal sync the directory in theirs
 * (dirsync_begin_as()). One commit's own two fsyncs may overlap: it
 * waits for both, and whichever took the block waits for its write and
 * then flushes.
 */
#include "core/newfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/dirsync.h"
#include "core/util.h"

/* 0: not asked yet, 1: /proc/self/fd names open files, -1: it does not */
static atomic_int newfile_proc;
/* 0: not tried yet, 1: linkat(AT_EMPTY_PATH) works, -1: it is refused */
static atomic_int newfile_empty;
/* 0: ask the filesystem; -1: no (always_dir_sync); 1: yes (tests) */
static atomic_int newfile_names_forced;

/* 0: ask the filesystem; -1: no; 1: yes (tests) */
static atomic_int newfile_races_forced;

/* newfile_fsync_names() and newfile_fsync_races() per device: a process
   writes to one or two */
#define NEWFILE_NAMES_DEVS	8
static pthread_mutex_t newfile_names_mtx = PTHREAD_MUTEX_INITIALIZER;
struct newfile_dev {
	dev_t	 dev;
	bool	 covers;
	bool	 races;
};
static struct newfile_dev newfile_names[NEWFILE_NAMES_DEVS];
					/* guarded by newfile_names_mtx */
static size_t newfile_names_len;	/* guarded by newfile_names_mtx */

/*
 * Give the unnamed file fd the name dst. With CAP_DAC_READ_SEARCH (petrel
 * run as root) linkat(AT_EMPTY_PATH) does it without resolving
 * /proc/self/fd/N, a path walk through procfs on every delivery; without
 * it, that is refused with ENOENT and /proc is used from then on. An
 * ENOENT that /proc repeats is dst's (no such directory): the flag stays.
 */
static int
link_unnamed(int fd, const char *dst)
{
	char	 proc[64];

	if (atomic_load(&newfile_empty) >= 0) {
		if (linkat(fd, "", AT_FDCWD, dst, AT_EMPTY_PATH) == 0) {
			atomic_store(&newfile_empty, 1);
			return 0;
		}
		if (errno != ENOENT || atomic_load(&newfile_empty) == 1)
			return -1;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, dst, AT_SYMLINK_FOLLOW) == -1)
		return -1;
	atomic_store(&newfile_empty, -1);
	return 0;
}

static bool
proc_ok(void)
{
	int	 v = atomic_load(&newfile_proc);

	if (v == 0) {
		v = access("/proc/self/fd", X_OK) == 0 ? 1 : -1;
		atomic_store(&newfile_proc, v);
	}
	return v == 1;
}

/*
 * Does the ext4 driver serve block device dev with a journal? ext2 shares
 * ext4's magic number but may be served by its own driver. The ext4
 * driver lists each of its filesystems as /sys/fs/ext4/<device name>,
 * whose journal_task names the journal's thread (a pid), or "<none>".
 * Without /sys: no.
 */
static bool
ext4_journaled(dev_t dev)
{
	char		 link[64], target[PATH_MAX], path[PATH_MAX + 32], c;
	const char	*name;
	ssize_t		 n;
	int		 fd;

	snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(dev),
	    minor(dev));
	if ((n = readlink(link, target, sizeof(target) - 1)) <= 0)
		return false;
	target[n] = '\0';
	name = (name = strrchr(target, '/')) != NULL ? name + 1 : target;
	snprintf(path, sizeof(path), "/sys/fs/ext4/%s/journal_task", name);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return false;
	n = read(fd, &c, 1);
	close(fd);
	return n == 1 && c >= '0' && c <= '9';
}

/* The answers for the filesystem of fd (st: its fstat), asked once. */
static void
fsync_ask(int fd, const struct stat *st, struct newfile_dev *nd)
{
	struct statfs	 sf;

	*nd = (struct newfile_dev){ .dev = st->st_dev };
	if (fstatfs(fd, &sf) == -1)
		return;
	switch (sf.f_type) {
	case EXT4_SUPER_MAGIC:	/* ext2 and ext3 too, by either driver */
		nd->covers = ext4_journaled(st->st_dev);
		nd->races = !nd->covers;
		break;
	case XFS_SUPER_MAGIC:
	case TMPFS_MAGIC:	/* nothing outlives a reboot: no sync helps */
		nd->covers = true;
		break;
	default:
		break;
	}
}

/* The cached answers for fd's device; false if fd cannot be asked. */
static bool
fsync_dev(int fd, struct newfile_dev *nd)
{
	struct stat	 st;

	if (fstat(fd, &st) == -1)
		return false;
	pthread_mutex_lock(&newfile_names_mtx);
	for (size_t i = 0; i < newfile_names_len; i++)
		if (newfile_names[i].dev == st.st_dev) {
			*nd = newfile_names[i];
			pthread_mutex_unlock(&newfile_names_mtx);
			return true;
		}
	pthread_mutex_unlock(&newfile_names_mtx);
	fsync_ask(fd, &st, nd);
	pthread_mutex_lock(&newfile_names_mtx);
	if (newfile_names_len < NEWFILE_NAMES_DEVS)
		newfile_names[newfile_names_len++] = *nd;
	pthread_mutex_unlock(&newfile_names_mtx);
	return true;
}

/* newfile_fsync_names() and newfile_fsync_races() of fd at once, as
   the tests or always_dir_sync force them */
static void
fsync_answers(int fd, bool *covers, bool *races)
{
	struct newfile_dev nd = { 0 };	/* fd not asked: no to both */
	int		 names = atomic_load(&newfile_names_forced);
	int		 turns = atomic_load(&newfile_races_forced);

	if (names == 0 || turns == 0)
		fsync_dev(fd, &nd);
	*covers = names != 0 ? names > 0 : nd.covers;
	*races = turns != 0 ? turns > 0 : nd.races;
}

bool
newfile_fsync_names(int fd)
{
	bool	 covers, races;

	fsync_answers(fd, &covers, &races);
	return covers;
}

bool
newfile_fsync_races(int fd)
{
	bool	 covers, races;

	fsync_answers(fd, &covers, &races);
	return races;
}

/* newfile_fsync_races() for fd, or where fd is -1 for the directory dir */
static bool
races_of(int fd, const char *dir)
{
	bool	 races;
	int	 dfd;

	if (fd != -1)
		return newfile_fsync_races(fd);
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return true;	/* its sync fails anyway; hold it */
	races = newfile_fsync_races(dfd);
	close(dfd);
	return races;
}

void
newfile_set_fsync_races(int mode)
{
	atomic_store(&newfile_races_forced, mode);
}

void
newfile_set_fsync_names(int mode)
{
	atomic_store(&newfile_names_forced, mode);
}

void
newfile_allow_unnamed(bool allow)
{
	atomic_store(&newfile_proc, allow ? 0 : -1);
}

void
newfile_allow_empty_path(bool allow)
{
	atomic_store(&newfile_empty, allow ? 0 : -1);
}

int
newfile_open(struct newfile *nf, const char *tmpdir, const char *name,
    mode_t mode)
{
	int	 saved;

	*nf = NEWFILE_INIT;
	if (proc_ok()) {
		nf->fd = open(tmpdir, O_RDWR | O_TMPFILE | O_CLOEXEC, mode);
		if (nf->fd != -1)
			return 0;
		/* filesystems without O_TMPFILE say so in several ways;
		   anything else (ENOENT, EACCES, ENOSPC) is the caller's */
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
			return -1;
	}
	nf->tmp = xasprintf("%s/%s", tmpdir, name);
	nf->fd = open(nf->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (nf->fd == -1) {
		saved = errno;
		free(nf->tmp);	/* not ours: never unlink it */
		nf->tmp = NULL;
		errno = saved;
		return -1;
	}
	return 0;
}

/*
 * The contents written to the disk, not flushed from its cache, before
 * the file gets its name: blocks allocated, the size set in the inode.
 * Else a sync of the directory by someone else, or a journal commit, can
 * make the name durable before the contents: with delayed allocation the
 * inode then says 0 bytes, and a power loss leaves an empty file under
 * the name (seen on ext4 without a journal, tests/crash/test_power_loss).
 */
static int
write_out(int fd)
{
	if (sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE |
	    SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) == 0)
		return 0;
	return fdatasync(fd);	/* where sync_file_range is refused */
}

/* The fallback: contents synced, closed (a close error fails before the
   name shows), renamed. A retry after ENOENT only renames. */
static int
publish_named(struct newfile *nf, const char *dst, bool datasync, bool sync)
{
	int	 fd, rc;

	if (!nf->synced) {
		if (nf->fd == -1) {
			errno = EBADF;
			return -1;
		}
		if (!sync)
			rc = write_out(nf->fd);
		else
			rc = datasync ? fdatasync(nf->fd) : fsync(nf->fd);
		if (rc == -1)
			return -1;
		nf->synced = true;
	}
	if (nf->fd != -1) {
		fd = nf->fd;
		nf->fd = -1;
		if (close(fd) == -1)
			return -1;
	}
	if (rename(nf->tmp, dst) == -1)
		return -1;
	free(nf->tmp);
	nf->tmp = NULL;
	return 0;
}

/* Sizes of directories as fsync_held() last made them durable: one whose
   size moved since (it grew by a block), or that is not here, has its
   inode marked dirty, so that the file's fsync writes it too. */
#define NEWFILE_SIZES	64
static pthread_mutex_t newfile_sizes_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct {
	dev_t	 dev;
	ino_t	 ino;
	off_t	 size;
} newfile_sizes[NEWFILE_SIZES];	/* guarded by newfile_sizes_mtx */

static size_t
size_slot(const struct stat *st)
{
	return (size_t)((st->st_ino * 31u + st->st_dev) % NEWFILE_SIZES);
}

static bool
size_known(const struct stat *st)
{
	size_t	 i = size_slot(st);
	bool	 known;

	pthread_mutex_lock(&newfile_sizes_mtx);
	known = newfile_sizes[i].dev == st->st_dev &&
	    newfile_sizes[i].ino == st->st_ino &&
	    newfile_sizes[i].size == st->st_size;
	pthread_mutex_unlock(&newfile_sizes_mtx);
	return known;
}

static void
size_note(const struct stat *st)
{
	size_t	 i = size_slot(st);

	pthread_mutex_lock(&newfile_sizes_mtx);
	newfile_sizes[i].dev = st->st_dev;
	newfile_sizes[i].ino = st->st_ino;
	newfile_sizes[i].size = st->st_size;
	pthread_mutex_unlock(&newfile_sizes_mtx);
}

/*
 * Where fsyncs race (newfile_fsync_races()): the fsync of fd, just linked
 * into dir, with dir held (dirsync_hold()). That one fsync writes the
 * file, the blocks of dir holding its name (ext4_sync_parent()) and, once
 * marked dirty, dir's inode, then flushes: no other fsync of ours writes
 * dir's blocks meanwhile, so none can leave the block with our name in
 * flight. Where dir's inode cannot be marked dirty, dir is synced too.
 */
static int
fsync_held(int fd, struct dirsync *ds, const char *dir)
{
	struct dirsync_ticket t;
	struct stat	 st;
	bool		 known, touched = true;
	int		 rc, saved;

	dirsync_hold(ds, dir, &t);
	known = stat(dir, &st) == 0;
	if (!known || !size_known(&st))
		touched = utimensat(AT_FDCWD, dir, NULL, 0) == 0;
	rc = fsync(fd);
	if (rc == 0 && !touched)
		rc = fsync_dir(dir);
	saved = errno;
	if (rc == 0 && known)
		size_note(&st);
	dirsync_end(&t);
	errno = saved;
	return rc;
}

/* The unnamed file: data written out, link, fsync (the top of this file
   says why), and with dir the sync of dst's directory through ds, which
   runs while the fsync does. A retry after ENOENT skips the write-out. */
static int
publish_unnamed(struct newfile *nf, const char *dst, bool sync,
    struct dirsync *ds, const char *dir, bool *named)
{
	struct dirsync_ticket t;
	int	 fd, saved, rc, drc = 0;
	bool	 covers = false, races = false;

	if (nf->fd == -1) {
		errno = EBADF;
		return -1;
	}
	if (!nf->synced) {
		if (write_out(nf->fd) == -1)
			return -1;
		nf->synced = true;
	}
	if (link_unnamed(nf->fd, dst) == -1)
		return -1;
	fd = nf->fd;
	nf->fd = -1;
	if (dir != NULL)
		fsync_answers(fd, &covers, &races);
	if (dir != NULL && sync && covers)
		dir = NULL;	/* the fsync makes the name durable too */
	if (dir != NULL && sync && ds != NULL && races &&
	    atomic_load(&newfile_names_forced) == 0) {
		rc = fsync_held(fd, ds, dir);	/* not always_dir_sync */
		saved = errno;
		dir = NULL;
	} else {
		if (dir != NULL)
			dirsync_begin_as(ds, dir, &t, races);
		rc = sync ? fsync(fd) : 0;
		saved = errno;
	}
	if (dir != NULL && (drc = dirsync_end(&t)) == -1 && rc == 0)
		saved = errno;
	if (rc == -1) {
		close(fd);
		errno = saved;
		goto unlink;
	}
	if (close(fd) == -1)	/* closed either way (POSIX leaves it open
				   to interpretation, Linux always closes) */
		goto unlink;
	if (named != NULL)
		*named = true;
	if (drc == -1) {
		errno = saved;	/* the file is whole; its name may not last */
		return -1;
	}
	return 0;
unlink:
	saved = errno;
	unlink(dst);	/* its inode may not be durable */
	errno = saved;
	return -1;
}

int
newfile_publish(struct newfile *nf, const char *dst, bool datasync)
{
	return nf->tmp != NULL ? publish_named(nf, dst, datasync, true) :
	    publish_unnamed(nf, dst, true, NULL, NULL, NULL);
}

int
newfile_publish_sync(struct newfile *nf, const char *dst, bool datasync,
    struct dirsync *ds, const char *dir, bool *named)
{
	struct dirsync_ticket t;
	bool	 races;

	*named = false;
	if (nf->tmp == NULL)
		return publish_unnamed(nf, dst, true, ds, dir, named);
	races = races_of(nf->fd, dir);
	if (publish_named(nf, dst, datasync, true) == -1)
		return -1;
	*named = true;
	dirsync_begin_as(ds, dir, &t, races);	/* races: no sync of ours
						   beside */
	return dirsync_end(&t);
}

int
newfile_link(struct newfile *nf, const char *dst)
{
	return nf->tmp != NULL ? publish_named(nf, dst, false, false) :
	    publish_unnamed(nf, dst, false, NULL, NULL, NULL);
}

void
newfile_write_start(struct newfile *nf)
{
	if (nf->fd != -1 && !nf->synced)	/* only a head start: an
						   error shows at the link */
		(void)sync_file_range(nf->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

void
newfile_discard(struct newfile *nf)
{
	if (nf->fd != -1)
		close(nf->fd);
	nf->fd = -1;
	if (nf->tmp != NULL)
		unlink(nf->tmp);
	free(nf->tmp);
	nf->tmp = NULL;
}
