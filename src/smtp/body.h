#ifndef PETREL_SMTP_BODY_H
#define PETREL_SMTP_BODY_H
/*
 * body.h: the pure byte-level decoder for message content. DATA mode
 * removes dot-stuffing and finds the end-of-data marker; BDAT mode passes
 * bytes through. Only CRLF ends a line: a bare CR or bare LF anywhere is
 * flagged (the session then rejects the message) and can never end the
 * data or start a new line (SMTP smuggling defence).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smtp_body_mode { SMTP_BODY_DATA, SMTP_BODY_BDAT };

struct smtp_body {
	enum smtp_body_mode mode;
	int		 state;	/* internal */
	bool		 bare;	/* a bare CR or bare LF was seen */
	bool		 done;	/* DATA: the end-of-data line was consumed */
	uint64_t	 size;	/* bytes written to out so far */
	size_t		 line_len; /* length of the current output line */
	size_t		 line_max; /* longest output line seen, excl. CRLF */
};

void	smtp_body_init(struct smtp_body *b, enum smtp_body_mode mode);
/*
 * Decode up to len bytes of in into out; out must have room for len + 2
 * bytes. Sets *outlen to bytes written and *consumed to bytes of in used:
 * in DATA mode it stops right after the end-of-data line (b->done set),
 * so bytes after it (a pipelined command) are left to the caller.
 */
void	smtp_body_feed(struct smtp_body *b, const char *in, size_t len,
	    char *out, size_t *outlen, size_t *consumed);
/*
 * BDAT LAST: end the content. If the last line is unterminated, writes
 * CRLF to out (room for 2 bytes) and sets *outlen; a trailing lone CR is
 * flagged bare.
 */
void	smtp_body_finish(struct smtp_body *b, char *out, size_t *outlen);

#endif
