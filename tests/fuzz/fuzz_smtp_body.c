/*
 * fuzz_smtp_body.c: the DATA/BDAT decoder fed in chunks. Input: byte 0
 * gives the number of chunk sizes k (1..8), bytes 1..k the sizes, the rest
 * is the content. Checks per-call invariants, that chunking changes
 * nothing, and the result against a simple line-based reference.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/body.h"

struct fuzz_result {
	char		*out;		/* owned: all output, then finish */
	size_t		 out_len;	/* before finish */
	size_t		 fin_len;	/* bytes finish added */
	size_t		 consumed;
	struct smtp_body b;		/* before finish */
	struct smtp_body fin;		/* after finish */
};

/* Feed in[0..len) in chunks of the sizes given (cycled), then finish. */
static void
fuzz_run(enum smtp_body_mode mode, const char *in, size_t len,
    const uint8_t *sizes, size_t nsizes, struct fuzz_result *r)
{
	size_t	 off = 0, k = 0;

	smtp_body_init(&r->b, mode);
	if ((r->out = malloc(len + 2)) == NULL)
		abort();
	r->out_len = 0;
	r->consumed = 0;
	while (off < len) {
		size_t	 n = sizes[k++ % nsizes], outlen, used;
		bool	 was_done = r->b.done;
		char	*out;

		if (n > len - off)
			n = len - off;
		/* exactly n + 2 bytes, so ASan sees any overrun */
		if ((out = malloc(n + 2)) == NULL)
			abort();
		smtp_body_feed(&r->b, in + off, n, out, &outlen, &used);
		if (outlen > n + 2 || used > n ||
		    (!r->b.done && used != n) ||
		    (was_done && (used != 0 || outlen != 0)) ||
		    r->out_len + outlen > len)
			abort();
		memcpy(r->out + r->out_len, out, outlen);
		r->out_len += outlen;
		r->consumed += used;
		free(out);
		off += n;
	}
	r->fin = r->b;
	smtp_body_finish(&r->fin, r->out + r->out_len, &r->fin_len);
	if (r->fin_len > 2 || r->fin.size != r->b.size + r->fin_len ||
	    r->b.size != r->out_len)
		abort();
}

static bool
fuzz_same_state(const struct smtp_body *a, const struct smtp_body *b)
{
	return a->state == b->state && a->bare == b->bare &&
	    a->done == b->done && a->size == b->size &&
	    a->line_len == b->line_len && a->line_max == b->line_max;
}

/* Is there a bare CR or LF in in[0..n)? A CR at n - 1 is still pending. */
static bool
fuzz_ref_bare(const char *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '\r' && i + 1 < n && in[i + 1] != '\n')
			return true;
		if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r'))
			return true;
	}
	return false;
}

/* Longest line and the current line in out, lines split on CRLF only. */
static void
fuzz_ref_lines(const char *out, size_t n, size_t *line_max, size_t *line_len)
{
	size_t	 start = 0, max = 0, last;

	for (size_t i = 0; i + 1 < n; i++) {
		if (out[i] == '\r' && out[i + 1] == '\n') {
			if (i - start > max)
				max = i - start;
			start = i + 2;
			i++;
		}
	}
	last = n - start;
	if (last > 0 && out[n - 1] == '\r')
		last--;		/* a pending CR is not line content yet */
	if (last > max)
		max = last;
	*line_max = max;
	*line_len = last;
}

/*
 * The reference DATA decoder, by lines rather than bytes: the data ends
 * at the first "." CRLF that starts a line (RFC 5321 4.1.1.4), a line
 * starting with "." loses it (4.5.2), and only CRLF starts a line.
 */
static void
fuzz_ref_data(const char *in, size_t n, char *out, size_t *out_len,
    size_t *consumed, bool *done, bool *bare)
{
	size_t	 end = n, start, o = 0;

	*done = false;
	for (size_t i = 0; i + 3 <= n; i++) {
		if ((i == 0 || (i >= 2 && in[i - 2] == '\r' &&
		    in[i - 1] == '\n')) && memcmp(in + i, ".\r\n", 3) == 0) {
			end = i;
			*done = true;
			break;
		}
	}
	*consumed = *done ? end + 3 : n;
	*bare = fuzz_ref_bare(in, end);
	for (start = 0; start < end;) {
		size_t	 e = start;

		while (e < end && !(in[e] == '\r' && e + 1 < end &&
		    in[e + 1] == '\n'))
			e++;
		if (e == end) {
			/* unterminated: "." and ".\r" are still pending */
			size_t	 l = e - start;

			if ((l == 1 && in[start] == '.') ||
			    (l == 2 && memcmp(in + start, ".\r", 2) == 0))
				break;
		}
		if (e > start && in[start] == '.')
			start++;
		memcpy(out + o, in + start, e - start);
		o += e - start;
		if (e < end) {
			memcpy(out + o, "\r\n", 2);
			o += 2;
			e += 2;
		}
		start = e;
	}
	*out_len = o;
}

static void
fuzz_mode(enum smtp_body_mode mode, const char *in, size_t len,
    const uint8_t *sizes, size_t nsizes)
{
	struct fuzz_result one, chunked;
	size_t	 ref_max, ref_len;
	char	*ref;

	/* in one piece */
	smtp_body_init(&one.b, mode);
	if ((one.out = malloc(len + 2)) == NULL)
		abort();
	smtp_body_feed(&one.b, in, len, one.out, &one.out_len, &one.consumed);
	if (one.out_len > len || one.consumed > len ||
	    (!one.b.done && one.consumed != len) ||
	    one.b.size != one.out_len)
		abort();
	one.fin = one.b;
	smtp_body_finish(&one.fin, one.out + one.out_len, &one.fin_len);

	fuzz_run(mode, in, len, sizes, nsizes, &chunked);
	if (chunked.out_len != one.out_len ||
	    chunked.fin_len != one.fin_len ||
	    memcmp(chunked.out, one.out, one.out_len + one.fin_len) != 0 ||
	    chunked.consumed != one.consumed ||
	    !fuzz_same_state(&chunked.b, &one.b) ||
	    !fuzz_same_state(&chunked.fin, &one.fin))
		abort();

	/* and what it decoded is what the reference says */
	if ((ref = malloc(len + 2)) == NULL)
		abort();
	if (mode == SMTP_BODY_DATA) {
		size_t	 ref_len_out, ref_consumed;
		bool	 ref_done, ref_bare;

		fuzz_ref_data(in, len, ref, &ref_len_out, &ref_consumed,
		    &ref_done, &ref_bare);
		if (ref_len_out != one.out_len ||
		    memcmp(ref, one.out, one.out_len) != 0 ||
		    ref_consumed != one.consumed || ref_done != one.b.done ||
		    ref_bare != one.b.bare)
			abort();
		/* done only right after CRLF "." CRLF, or ".\r\n" first */
		if (one.b.done && (one.consumed < 3 ||
		    memcmp(in + one.consumed - 3, ".\r\n", 3) != 0))
			abort();
	} else {
		/* BDAT passes bytes through untouched, never ends */
		if (one.b.done || one.consumed != len || one.out_len != len ||
		    memcmp(one.out, in, len) != 0 ||
		    one.b.bare != fuzz_ref_bare(in, len))
			abort();
		/*
		 * BDAT LAST: CRLF added after an unterminated line, unless
		 * it ends in a lone CR; a bare LF does not terminate it.
		 */
		if (len > 0 && in[len - 1] != '\r' && !(len >= 2 &&
		    in[len - 2] == '\r' && in[len - 1] == '\n')) {
			if (one.fin_len != 2 ||
			    memcmp(one.out + len, "\r\n", 2) != 0)
				abort();
		} else if (one.fin_len != 0)
			abort();
		if (len > 0 && in[len - 1] == '\r' && !one.fin.bare)
			abort();
	}
	fuzz_ref_lines(one.out, one.out_len, &ref_max, &ref_len);
	if (ref_max != one.b.line_max || ref_len != one.b.line_len)
		abort();
	free(ref);
	free(one.out);
	free(chunked.out);
}

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t one_byte[] = { 1 };
	const uint8_t *sizes = one_byte;
	size_t	 nsizes = 1, k;
	bool	 any = false;

	if (size == 0)
		return 0;
	k = (size_t)(data[0] & 7) + 1;
	if (size - 1 < k)
		return 0;
	for (size_t i = 0; i < k; i++)
		any |= data[1 + i] != 0;
	if (any) {	/* all-zero sizes would never progress */
		sizes = data + 1;
		nsizes = k;
	}
	fuzz_mode(SMTP_BODY_DATA, (const char *)data + 1 + k, size - 1 - k,
	    sizes, nsizes);
	fuzz_mode(SMTP_BODY_BDAT, (const char *)data + 1 + k, size - 1 - k,
	    sizes, nsizes);
	return 0;
}
