/*
 * log.c: the log sink: one line per event on stderr, written with a single
 * write(2) so lines from worker threads never interleave; lines held by
 * log_hold() go out together in one write(2) at log_release().
 */
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX	4096	/* bytes per line, its LF included */
#define LOG_HOLD_CAP	8192	/* held bytes per thread; more flushes */

static enum log_level log_min = LOG_LVL_INFO;	/* set once at startup */
static pid_t log_pid;		/* set once at startup; 0: ask each time */

void
log_init(enum log_level min)
{
	log_min = min;
	log_pid = getpid();	/* a syscall per line otherwise */
}

int
log_level_parse(const char *name)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(name, names[i]) == 0)
			return (int)i;
	return -1;
}

/*
 * Per thread, and part of the log sink: the time prefix of the current
 * second (gmtime_r and its formatting once a second, not once a line), and
 * the lines held between log_hold() and log_release().
 */
struct log_thread {
	time_t		 sec;		/* prefix is for this second */
	pid_t		 pid;		/* and this process */
	char		 date[32];	/* "2026-12-03T07:56:21." */
	size_t		 date_len;
	char		 tail[40];	/* "Z petrel[123]: " */
	size_t		 tail_len;
	unsigned	 held;		/* log_hold() depth */
	size_t		 len;		/* bytes in buf */
	char		 buf[LOG_HOLD_CAP];
};
static _Thread_local struct log_thread log_thread;

static void
log_out(const char *p, size_t n)
{
	(void)!write(STDERR_FILENO, p, n);
}

static void
log_flush(struct log_thread *t)
{
	if (t->len > 0)
		log_out(t->buf, t->len);
	t->len = 0;
}

/* "<time> petrel[pid]: " into out (LOG_LINE_MAX bytes); its length. */
static size_t
log_prefix(struct log_thread *t, char *out)
{
	struct timeval tv;
	struct tm tm;
	pid_t	 pid = log_pid != 0 ? log_pid : getpid();
	long	 us;
	size_t	 n;

	gettimeofday(&tv, NULL);
	if (tv.tv_sec != t->sec || pid != t->pid || t->date_len == 0) {
		int	 a, b;

		gmtime_r(&tv.tv_sec, &tm);
		a = snprintf(t->date, sizeof(t->date),
		    "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
		    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		    tm.tm_sec);
		b = snprintf(t->tail, sizeof(t->tail), "Z petrel[%ld]: ",
		    (long)pid);
		/* both fit for any real date and pid; else no prefix at
		   all rather than a cut one */
		t->date_len = a > 0 && (size_t)a < sizeof(t->date) ?
		    (size_t)a : 0;
		t->tail_len = b > 0 && (size_t)b < sizeof(t->tail) ?
		    (size_t)b : 0;
		t->sec = tv.tv_sec;
		t->pid = pid;
	}
	memcpy(out, t->date, t->date_len);
	n = t->date_len;
	us = (long)tv.tv_usec;
	for (int i = 5; i >= 0; i--) {
		out[n + (size_t)i] = (char)('0' + us % 10);
		us /= 10;
	}
	n += 6;
	memcpy(out + n, t->tail, t->tail_len);
	return n + t->tail_len;
}

static void
log_vwrite(const char *fmt, va_list ap)
{
	struct log_thread *t = &log_thread;
	char	 line[LOG_LINE_MAX];
	size_t	 n;
	int	 m;

	n = log_prefix(t, line);
	m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (m < 0)
		return;
	n += (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;	/* truncated: still one line */
	line[n++] = '\n';
	if (t->held == 0) {
		log_out(line, n);
		return;
	}
	if (n > sizeof(t->buf) - t->len)
		log_flush(t);
	memcpy(t->buf + t->len, line, n);
	t->len += n;
}

void
log_hold(void)
{
	log_thread.held++;
}

void
log_release(void)
{
	struct log_thread *t = &log_thread;

	if (t->held > 0 && --t->held == 0)
		log_flush(t);
}

void
log_write(enum log_level lvl, const char *fmt, ...)
{
	va_list	 ap;

	if (lvl < log_min)
		return;
	va_start(ap, fmt);
	log_vwrite(fmt, ap);
	va_end(ap);
}

void
log_fatal(const char *fmt, ...)
{
	va_list	 ap;

	log_flush(&log_thread);	/* what came before it, first */
	log_thread.held = 0;
	va_start(ap, fmt);
	log_vwrite(fmt, ap);
	va_end(ap);
	exit(1);
}
