#ifndef PETREL_TESTS_FS_HELPERS_H
#define PETREL_TESTS_FS_HELPERS_H
/*
 * fs_helpers.h: small file-system checks shared by unit tests (include
 * after <cmocka.h>). static inline: a test that uses only some of them
 * draws no unused-function warning.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Entries of dir other than . and .., or -1 if it cannot be read. */
static inline int
fs_entries(const char *dir)
{
	DIR		*d = opendir(dir);
	struct dirent	*de;
	int		 n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* Remove the files in dir, then dir (one level: tests make no deeper). */
static inline void
fs_rm_flat(const char *dir)
{
	DIR		*d = opendir(dir);
	struct dirent	*de;
	char		 path[4096];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

/* The whole file at path must equal want (len bytes). */
static inline void
fs_assert_file(const char *path, const char *want, size_t len)
{
	char	*got = malloc(len + 1);
	int	 fd = open(path, O_RDONLY);

	assert_non_null(got);
	assert_true(fd != -1);
	assert_int_equal(read(fd, got, len + 1), (ssize_t)len);
	assert_memory_equal(got, want, len);
	close(fd);
	free(got);
}

#endif
