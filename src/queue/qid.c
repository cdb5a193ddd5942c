/*
 * qid.c: queue ids: arrival time and a sequence in Crockford base32.
 * Pure: the caller passes the clock in; no I/O, no globals.
 */
#include "queue/qid.h"

#include <stddef.h>

#define QID_TIME_LEN	11		/* 55 bits of microseconds */
#define QID_SEQ_LEN	2		/* 10 bits of sequence */
#define QID_SEQ_MAX	1023u
#define QID_TIME_MAX	((UINT64_C(1) << 55) - 1)	/* ~ year 3111 */

/*
 * Crockford base32 without I L O U; the digits are in ascending ASCII
 * order, so ids compare (strcmp) in the order of the numbers they encode.
 */
static const char qid_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* Value of c in the alphabet, or -1. Uppercase only: ids are canonical. */
static int
qid_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	for (int i = 10; i < 32; i++)
		if (qid_alphabet[i] == c)
			return i;
	return -1;
}

/* Write v as n base32 digits, most significant first. */
static void
qid_encode(uint64_t v, char *out, size_t n)
{
	while (n > 0) {
		out[--n] = qid_alphabet[v & 31];
		v >>= 5;
	}
}

void
qid_next(struct qid_gen *g, uint64_t now_usec, char out[QID_LEN + 1])
{
	if (now_usec > QID_TIME_MAX)
		now_usec = QID_TIME_MAX;	/* saturate: never wrap back */
	if (now_usec > g->last_usec) {
		g->last_usec = now_usec;
		g->seq = 0;
	} else if (g->seq < QID_SEQ_MAX) {
		/* same microsecond, or the clock went back: keep counting */
		g->seq++;
	} else {
		/* sequence exhausted: borrow the next microsecond */
		g->last_usec++;
		g->seq = 0;
	}
	qid_encode(g->last_usec, out, QID_TIME_LEN);
	qid_encode(g->seq, out + QID_TIME_LEN, QID_SEQ_LEN);
	out[QID_LEN] = '\0';
}

void
qid_after(struct qid_gen *g, const char *id)
{
	uint64_t usec = qid_usec(id);
	unsigned seq = (unsigned)(qid_digit(id[QID_TIME_LEN]) * 32 +
	    qid_digit(id[QID_TIME_LEN + 1]));

	/* qid_next() goes past (last_usec, seq): make that id's the last */
	if (usec > g->last_usec || (usec == g->last_usec && seq > g->seq)) {
		g->last_usec = usec;
		g->seq = seq;
	}
}

bool
qid_valid(const char *s)
{
	size_t	 i;

	if (s == NULL)
		return false;
	for (i = 0; i < QID_LEN; i++)
		if (s[i] == '\0' || qid_digit(s[i]) == -1)
			return false;
	return s[QID_LEN] == '\0';
}

uint64_t
qid_usec(const char *id)
{
	uint64_t v = 0;
	int	 d;

	for (size_t i = 0; i < QID_TIME_LEN; i++) {
		if ((d = qid_digit(id[i])) == -1)
			return 0;	/* not a valid id: no time */
		v = (v << 5) | (unsigned)d;
	}
	return v;
}
