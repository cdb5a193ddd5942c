/*
 * body.c: the byte-level decoder for DATA and BDAT content: dot-unstuffing,
 * the end-of-data marker and bare CR / bare LF detection. Pure: it never
 * reads a socket, logs or decides what to reply; the session does.
 */
#include "smtp/body.h"

#include <assert.h>
#include <string.h>

/*
 * Only CRLF ends a line (RFC 5321 2.3.8), and the end of data is exactly
 * CRLF "." CRLF (RFC 5321 4.1.1.4). A bare CR or LF never starts a line,
 * so "\n.\n", "\n.\r\n", "\r.\r" and friends can never end the data; they
 * are flagged so the session can refuse the message (SMTP smuggling).
 */
enum smtp_body_state {
	SMTP_BODY_BOL = 0,	/* at the beginning of a line */
	SMTP_BODY_MID,		/* inside a line */
	SMTP_BODY_CR,		/* saw CR inside a line; not yet emitted as
				   line content (it may start a CRLF) */
	SMTP_BODY_DOT,		/* DATA: "." at the beginning of a line */
	SMTP_BODY_DOT_CR,	/* DATA: ".\r" at the beginning of a line */
};

/* One byte to out; counts towards size. */
static void
body_put(struct smtp_body *b, char *out, size_t *o, char c)
{
	out[(*o)++] = c;
	b->size++;
}

/* One more byte of content on the current output line. */
static void
body_line_add(struct smtp_body *b)
{
	b->line_len++;
	if (b->line_len > b->line_max)
		b->line_max = b->line_len;
}

/* c inside a line. */
static void
body_mid(struct smtp_body *b, unsigned char c, char *out, size_t *o)
{
	body_put(b, out, o, (char)c);
	if (c == '\r') {
		b->state = SMTP_BODY_CR;
		return;
	}
	if (c == '\n')
		b->bare = true;	/* bare LF: part of this line, ends nothing */
	body_line_add(b);
	b->state = SMTP_BODY_MID;
}

/* c after a CR that is still pending. */
static void
body_cr(struct smtp_body *b, unsigned char c, char *out, size_t *o)
{
	if (c == '\n') {
		body_put(b, out, o, '\n');
		b->line_len = 0;
		b->state = SMTP_BODY_BOL;
		return;
	}
	/* the pending CR was bare: it is line content after all */
	b->bare = true;
	body_line_add(b);
	body_mid(b, c, out, o);
}

void
smtp_body_init(struct smtp_body *b, enum smtp_body_mode mode)
{
	*b = (struct smtp_body){ .mode = mode, .state = SMTP_BODY_BOL };
}

void
smtp_body_feed(struct smtp_body *b, const char *in, size_t len, char *out,
    size_t *outlen, size_t *consumed)
{
	size_t	 i = 0, o = 0;

	while (i < len && !b->done) {
		unsigned char c;

		/* a line's first byte is like any other, but for a dot in
		   DATA: straight on to the fast path */
		if (b->state == SMTP_BODY_BOL &&
		    (b->mode != SMTP_BODY_DATA || in[i] != '.'))
			b->state = SMTP_BODY_MID;
		if (b->state == SMTP_BODY_MID) {
			/* fast path: the plain bytes up to the next CR or LF
			   in one copy; that byte goes through the switch */
			const char *end = memchr(in + i, '\r', len - i);
			const char *lf;
			size_t	 run;

			if (end == NULL)
				end = in + len;
			if ((lf = memchr(in + i, '\n', (size_t)(end - in) - i))
			    != NULL)
				end = lf;
			run = (size_t)(end - in) - i;
			memcpy(out + o, in + i, run);
			o += run;
			i += run;
			b->size += run;
			b->line_len += run;
			if (b->line_len > b->line_max)
				b->line_max = b->line_len;
			if (i == len)
				break;
			if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n') {
				/* the line's CRLF, without a pass per byte
				   through the switch */
				out[o++] = '\r';
				out[o++] = '\n';
				b->size += 2;
				b->line_len = 0;
				b->state = SMTP_BODY_BOL;
				i += 2;
				continue;
			}
		}
		c = (unsigned char)in[i++];
		switch (b->state) {
		case SMTP_BODY_BOL:
			if (b->mode == SMTP_BODY_DATA && c == '.')
				b->state = SMTP_BODY_DOT;
			else
				body_mid(b, c, out, &o);
			break;
		case SMTP_BODY_MID:
			body_mid(b, c, out, &o);
			break;
		case SMTP_BODY_CR:
			body_cr(b, c, out, &o);
			break;
		case SMTP_BODY_DOT:
			if (c == '\r')
				b->state = SMTP_BODY_DOT_CR;
			else	/* RFC 5321 4.5.2: drop the dot */
				body_mid(b, c, out, &o);
			break;
		case SMTP_BODY_DOT_CR:
			if (c == '\n') {
				/* CRLF "." CRLF: stop right after it */
				b->done = true;
				break;
			}
			/*
			 * "." then a bare CR: the dot was stuffing; the CR is
			 * pending again and c follows it. At most this one
			 * extra byte per call, hence out needs len + 1.
			 */
			body_put(b, out, &o, '\r');
			body_cr(b, c, out, &o);
			break;
		default:
			assert(!"smtp_body_feed: bad state");
			break;
		}
	}
	*outlen = o;
	*consumed = i;
}

void
smtp_body_finish(struct smtp_body *b, char *out, size_t *outlen)
{
	size_t	 o = 0;

	if (!b->done) {
		switch (b->state) {
		case SMTP_BODY_MID:
			/* unterminated last line: terminate it */
			body_put(b, out, &o, '\r');
			body_put(b, out, &o, '\n');
			break;
		case SMTP_BODY_DOT_CR:
			/* DATA cut short after ".\r": a lone CR, dot removed */
			body_put(b, out, &o, '\r');
			/* FALLTHROUGH */
		case SMTP_BODY_CR:
			/* a trailing lone CR is bare; leave it as it is */
			b->bare = true;
			body_line_add(b);
			break;
		default:
			/* at BOL, or a lone "." that is stuffing: nothing */
			break;
		}
		b->line_len = 0;
		b->state = SMTP_BODY_BOL;
	}
	*outlen = o;
}
