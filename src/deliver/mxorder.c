/*
 * mxorder.c: turn a domain's MX records into the list of hosts to try
 * (RFC 5321 5.1, RFC 7505). Pure: does no DNS and no I/O; randomness
 * comes from the caller, so the same inputs give the same order.
 */
#include "deliver/mxorder.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static unsigned char
to_lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

/* Length of a name without its trailing root dot. */
static size_t
name_len(const char *s)
{
	size_t	 n = strlen(s);

	return n > 0 && s[n - 1] == '.' ? n - 1 : n;
}

/* Order of names, case-insensitive, trailing dot ignored. */
static int
name_cmp(const char *a, const char *b)
{
	size_t	 la = name_len(a), lb = name_len(b), i;
	int	 d;

	for (i = 0; i < la && i < lb; i++)
		if ((d = to_lower(a[i]) - to_lower(b[i])) != 0)
			return d;
	return (la > lb) - (la < lb);
}

bool
mx_name_eq(const char *a, const char *b)
{
	return name_cmp(a, b) == 0;
}

/* By preference, then name, then spelling: a total order, so qsort's
   instability cannot change the result. */
static int
record_cmp(const void *pa, const void *pb)
{
	const struct mx_record *a = pa, *b = pb;
	int	 d;

	if (a->preference != b->preference)
		return a->preference < b->preference ? -1 : 1;
	if ((d = name_cmp(a->host, b->host)) != 0)
		return d;
	return strcmp(a->host, b->host);
}

static bool
is_self(const char *host, const struct mx_policy *p)
{
	size_t	 i;

	for (i = 0; i < p->nself; i++)
		if (mx_name_eq(host, p->self[i]))
			return true;
	return false;
}

/* Fisher-Yates over rr[0..n). */
static void
shuffle(struct mx_record *rr, size_t n, const struct mx_policy *p)
{
	struct mx_record tmp;
	size_t		 i, j;

	for (i = n; i > 1; i--) {
		j = p->rnd(p->rnd_arg, i) % i;
		tmp = rr[i - 1];
		rr[i - 1] = rr[j];
		rr[j] = tmp;
	}
}

enum mx_status
mx_order(struct mx_record *rr, size_t n, const struct mx_policy *p,
    size_t *len)
{
	size_t	 i, j, k = 0, start;
	bool	 self = false;
	uint16_t self_pref = 0;

	assert(p->max >= 1);
	*len = 0;
	if (n == 0)
		return MX_IMPLICIT;

	/* RFC 7505 3: "." is no host; alone it says "no mail here". */
	for (i = 0; i < n; i++)
		if (rr[i].host != NULL && name_len(rr[i].host) > 0)
			rr[k++] = rr[i];
	if (k == 0)
		return MX_NULL;
	n = k;
	qsort(rr, n, sizeof(rr[0]), record_cmp);

	/* Sorted, so the first copy of a host has its lowest preference. */
	for (i = 0, k = 0; i < n; i++) {
		for (j = 0; j < k; j++)
			if (mx_name_eq(rr[i].host, rr[j].host))
				break;
		if (j == k)
			rr[k++] = rr[i];
	}
	n = k;

	/* RFC 5321 5.1: only hosts more preferred than we are. */
	for (i = 0; i < n && !self; i++)
		if (is_self(rr[i].host, p)) {
			self = true;
			self_pref = rr[i].preference;
		}
	if (self) {
		for (k = 0; k < n && rr[k].preference < self_pref; k++)
			;
		if (k == 0)
			return MX_LOOP;
		n = k;
	}

	/* RFC 5321 5.1: spread the load over equal preferences. */
	for (start = 0; start < n && start < p->max; start = i) {
		for (i = start; i < n &&
		    rr[i].preference == rr[start].preference; i++)
			;
		shuffle(rr + start, i - start, p);
	}

	*len = n < p->max ? n : p->max;
	return MX_OK;
}
