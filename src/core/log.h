#ifndef PETREL_CORE_LOG_H
#define PETREL_CORE_LOG_H
/*
 * log.h: one line per event on stderr: "<time> petrel[pid]: <qid|-> <area>
 * <event> key=value ...". Callers pass the qid first in the format; client
 * text goes through str_escape() first. The sink is set once at startup.
 */
#include <stdarg.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERR };

/* Set before any thread starts. */
void	log_init(enum log_level min);
/* "debug", "info", "warn", "error" -> level; -1 if unknown. */
int	log_level_parse(const char *name);

void	log_write(enum log_level lvl, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/*
 * Hold this thread's lines until the matching log_release(), then write
 * them in one write(2) (or sooner, when 8 KiB are held): for a burst of
 * lines about one message. Nests. Only around short work: held lines are
 * late lines, and a crash loses them.
 */
void	log_hold(void);
void	log_release(void);
void	log_fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#define log_debug(...)	log_write(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...)	log_write(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...)	log_write(LOG_LVL_WARN, __VA_ARGS__)
#define log_err(...)	log_write(LOG_LVL_ERR, __VA_ARGS__)

#endif
