#ifndef PETREL_DELIVER_MXORDER_H
#define PETREL_DELIVER_MXORDER_H
/*
 * mxorder.h: the order in which to try a domain's MX hosts (RFC 5321 5.1,
 * null MX RFC 7505). Pure: no DNS, no clock; randomness comes from the
 * caller's function, so tests are deterministic.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One MX record as the resolver returned it. */
struct mx_record {
	uint16_t	 preference;
	const char	*host;		/* borrowed: NUL-terminated name */
};

/* Who we are and how many hosts to try. */
struct mx_policy {
	const char *const *self;	/* borrowed: this host's names */
	size_t		 nself;
	size_t		 max;		/* hosts to return at most, >= 1 */
	/* A uniform random number in [0, bound); bound >= 2. */
	size_t		(*rnd)(void *arg, size_t bound);
	void		*rnd_arg;	/* borrowed: passed to rnd */
};

enum mx_status {
	MX_OK = 0,		/* rr[0..*len) is the order, *len >= 1 */
	MX_IMPLICIT = 1,	/* no records: deliver to the domain itself,
				   as if its MX were preference 0 (5.1) */
	MX_NULL = -1,		/* null MX: the domain takes no mail
				   (RFC 7505 4.2: bounce with 5.1.10) */
	MX_LOOP = -2,		/* we are the best MX left: "mail loops back
				   to myself" (5.1), 5.4.6 */
};

/*
 * Reorder rr[0..n) in place into delivery order: by preference, random
 * among equal preferences, duplicate hosts dropped (the lowest preference
 * kept), and if one of p->self is listed, it and every host with the same
 * or a higher preference dropped. Host names compare ASCII
 * case-insensitively with a trailing dot ignored. Records whose host is
 * "." or "" are dropped; if there is nothing else (RFC 7505 3: a lone
 * "0 ."), returns MX_NULL. Caps the result at p->max and returns MX_OK
 * with *len set; else *len = 0 and the status says why.
 */
enum mx_status mx_order(struct mx_record *rr, size_t n,
	    const struct mx_policy *p, size_t *len);
/* The two names are the same host: case-insensitive, trailing dot ignored. */
bool	mx_name_eq(const char *a, const char *b);

#endif
