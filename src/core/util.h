#ifndef PETREL_CORE_UTIL_H
#define PETREL_CORE_UTIL_H
/*
 * util.h: allocation that aborts on OOM, bounded string helpers, and the
 * few file helpers that durability relies on.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))

/* Allocate or abort: limits, not NULL checks, bound memory. */
void	*xmalloc(size_t n);
void	*xcalloc(size_t nmemb, size_t size);
void	*xrealloc(void *p, size_t n);
void	*xreallocarray(void *p, size_t nmemb, size_t size);
char	*xstrdup(const char *s);
char	*xstrndup(const char *s, size_t n);
/* asprintf that aborts on failure; caller frees. */
char	*xasprintf(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));	/* checked formats */

/* ASCII-only predicates, independent of the locale. */
static inline bool
ascii_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static inline unsigned char
ascii_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/* s[0..len) equals the NUL-terminated lit, ASCII case-insensitively. */
bool	 str_case_eq(const char *s, size_t len, const char *lit);

/* FNV-1a of the bytes of s, for the small hash tables of this program. */
uint32_t str_hash(const char *s);

/* ASCII-only case folding, in place; returns s. */
char	*str_lower(char *s);
bool	 str_case_prefix(const char *s, size_t len, const char *prefix);

/*
 * Copy client text for a log line: CR, LF, other controls, '"' and '\\'
 * become \xHH; stops before cap - 1 bytes. Returns out.
 */
char	*str_escape(const char *in, size_t len, char *out, size_t cap);

/* Write all of buf, retrying on EINTR and short writes. 0 or -1. */
int	 io_write_all(int fd, const void *buf, size_t len);

/* Bytes to read back from a file (fd, when buf is NULL) or from memory. */
struct bytesrc {
	int		 fd;
	const char	*buf;		/* borrowed */
	size_t		 len;
};

/* pread(2) on either kind: bytes read, 0 at the end, or -1 (errno). */
ssize_t	 bytesrc_pread(const struct bytesrc *src, void *out, size_t n,
	    off_t off);
/*
 * Up to n bytes at off without a copy where the source is memory: *out
 * points into src->buf; for a file they are read into scratch (n bytes)
 * and *out is scratch. Bytes, 0 at the end, or -1 (errno).
 */
ssize_t	 bytesrc_view(const struct bytesrc *src, char *scratch, size_t n,
	    off_t off, const char **out);
/* Open dir read-only, fsync it, close. 0 or -1 (errno set). */
int	 fsync_dir(const char *dir);
/*
 * Make everything on fd's filesystem durable: syncfs(fd), then fsync(fd)
 * for one more flush of the disk's cache (util.c says why). fd is a
 * directory. 0 or -1 (errno set).
 */
int	 syncfs_flushed(int fd);
/* mkdir -p with the given mode. 0 or -1. */
int	 mkdir_p(const char *path, mode_t mode);

/* Microseconds since the epoch, from the real-time clock. */
uint64_t now_usec(void);
/* RFC 5322 date-time for t (local zone), e.g. "Mon, 23 Nov 2026 04:40:00 +0000". */
void	 rfc5322_date(int64_t t, char *out, size_t cap);

#endif
