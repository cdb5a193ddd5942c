#ifndef PETREL_QUEUE_QID_H
#define PETREL_QUEUE_QID_H
/*
 * qid.h: queue ids: 13 characters of Crockford base32 (0-9, A-Z without
 * I L O U), 11 for the arrival time in microseconds and 2 for a sequence,
 * so ids are unique within a process and sort by arrival time. Pure.
 */
#include <stdbool.h>
#include <stdint.h>

#define QID_LEN	13

struct qid_gen {
	uint64_t last_usec;
	unsigned seq;
};

/* Next id for the time now_usec; never repeats or goes back within g. */
void	qid_next(struct qid_gen *g, uint64_t now_usec, char out[QID_LEN + 1]);
/* Make every later id of g sort after id (a valid id): ids of an earlier
   run stay unique after the clock steps back. */
void	qid_after(struct qid_gen *g, const char *id);
/* True if s is a well-formed id (exactly QID_LEN valid characters). */
bool	qid_valid(const char *s);
/* Arrival time encoded in a valid id, in microseconds. */
uint64_t qid_usec(const char *id);

#endif
