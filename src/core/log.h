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
void	log_fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#define log_debug(...)	log_write(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...)	log_write(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...)	log_write(LOG_LVL_WARN, __VA_ARGS__)
#define log_err(...)	log_write(LOG_LVL_ERR, __VA_ARGS__)

#endif
