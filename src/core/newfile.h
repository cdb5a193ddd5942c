#ifndef PETREL_CORE_NEWFILE_H
#define PETREL_CORE_NEWFILE_H
/*
 * newfile.h: a file that appears under its final name only once it is
 * written and durable. Where the filesystem can (O_TMPFILE, and /proc to
 * name the open file), the file has no name at all until linkat() gives
 * it one: nothing is left behind if the process dies, and no temporary
 * directory entry is made, synced, renamed and removed. Elsewhere it is
 * the classic <tmpdir>/<name>, renamed into place. Blocking: for worker
 * threads (and the loop, for a spool file spilled from memory).
 */
#include <stdbool.h>
#include <sys/types.h>

/* Start from NEWFILE_INIT; after newfile_open() fd may be read and
   written (pread/pwrite, or write from the start). */
struct newfile {
	int	 fd;		/* -1 once closed */
	bool	 synced;	/* contents synced (fallback's publish) or
				   written out: a second publish skips it */
	char	*tmp;		/* owned: the fallback's path, NULL if none */
};

#define NEWFILE_INIT	((struct newfile){ .fd = -1 })

/*
 * Open a new, empty file for reading and writing in tmpdir (mode mode);
 * name is used only by the fallback, as tmpdir/name (O_EXCL). 0, or -1
 * with errno set (ENOENT: tmpdir is missing).
 */
int	newfile_open(struct newfile *nf, const char *tmpdir, const char *name,
	    mode_t mode);

/*
 * Make the contents durable and give the file the name dst, then close
 * it: for the fallback fdatasync (datasync) or fsync, then rename; for
 * the unnamed file its data written out, link, fsync (newfile.c says
 * why). dst must not exist: the unnamed file fails on it with EEXIST (the
 * fallback's rename would replace it). The entry in dst's directory is
 * the caller's to sync. 0, or -1 with errno set; on ENOENT (dst's
 * directory is missing) the caller may make it and call again.
 */
int	newfile_publish(struct newfile *nf, const char *dst, bool datasync);

/*
 * newfile_publish(), and the entry made durable too: dir (dst's
 * directory) synced through ds (dirsync.h; NULL: a plain fsync). For the
 * unnamed file that sync runs while its fsync does, and is left out
 * where the fsync covers the name (newfile_fsync_names()). Where
 * newfile_fsync_races(), the file's fsync holds dir (dirsync_hold()) and
 * makes the name durable itself; the fallback's sync of dir holds it too
 * (dirsync_begin_as()). *named says whether dst exists afterwards. 0,
 * or -1 with errno set; with *named true the file is durable and only the
 * directory sync failed (the caller removes or keeps it).
 */
struct dirsync;
int	newfile_publish_sync(struct newfile *nf, const char *dst,
	    bool datasync, struct dirsync *ds, const char *dir, bool *named);

/*
 * Give the file the name dst and close it, making nothing durable: for a
 * caller whose sync of the whole filesystem (fsgroup.h) follows before
 * anything relies on the file. The contents are written to the disk (not
 * flushed) first, so that no sync of the directory by anyone else can
 * make the name durable before them. Readers see the whole contents or no
 * name. Errors as for newfile_publish().
 */
int	newfile_link(struct newfile *nf, const char *dst);
/* Start writing the contents to the disk, without waiting: a later
   newfile_link() then waits less, and several files' writes overlap. */
void	newfile_write_start(struct newfile *nf);

/*
 * Does an fsync of a file just linked into a directory also make that
 * name durable, on the filesystem of fd (any descriptor on it)? Yes on
 * ext4 with a journal (served by the ext4 driver), on XFS, and on tmpfs
 * (nothing there is durable); no elsewhere, ext4 without a journal
 * included (newfile.c says why). Asked once per device; for worker
 * threads.
 */
bool	newfile_fsync_names(int fd);

/*
 * Can two fsyncs that write the blocks of one directory at once miss each
 * other's writes, on the filesystem of fd? Yes on ext4 (and ext2, ext3)
 * without a journal: an fsync takes the directory's dirty blocks off its
 * list while it writes them, and another fsync that finds the list empty
 * returns without waiting for those writes (fsync_buffers_list()). A
 * file's first fsync after its link writes its directory's blocks too.
 * Such fsyncs of ours on one directory run one commit at a time
 * (dirsync_hold(), dirsync_begin_as()). Asked once per device.
 */
bool	newfile_fsync_races(int fd);

/* Close and forget a file that was not published (safe to call twice,
   and after a publish). */
void	newfile_discard(struct newfile *nf);

/* For tests: false makes every later open take the named fallback; true
   goes back to asking what the system can do. */
void	newfile_allow_unnamed(bool allow);
/* -1 makes newfile_fsync_names() say no everywhere ([queue]
   always_dir_sync), 1 yes (tests), 0 ask the filesystem (the default). */
void	newfile_set_fsync_names(int mode);
/* For tests: 1 makes newfile_fsync_races() say yes everywhere, -1 no, 0
   ask the filesystem (the default). */
void	newfile_set_fsync_races(int mode);
/* For tests: false links unnamed files through /proc/self/fd even where
   AT_EMPTY_PATH would work; true goes back to trying it. */
void	newfile_allow_empty_path(bool allow);

#endif
