#ifndef PETREL_SMTP_CLIENT_PARSE_H
#define PETREL_SMTP_CLIENT_PARSE_H
/*
 * client_parse.h: pure parsers for the client side of SMTP: server replies
 * (RFC 5321 4.2, enhanced status codes RFC 2034/3463), EHLO capabilities,
 * and the retry class of a reply code. No I/O, no logging, no globals.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Bytes per reply line including CRLF. RFC 5321 4.5.3.1.5 says 512, but
 * real servers send longer text; we accept up to this and no more.
 */
#define SMTP_RESP_LINE_MAX	1000
#define SMTP_RESP_ENH_MAX	9	/* "5.999.999", RFC 3463 2 */

enum smtp_resp_err {
	SMTP_RESP_PARSE_OK = 0,
	SMTP_RESP_PARSE_MORE = -1,	/* incomplete: read more, call again */
	SMTP_RESP_PARSE_SYNTAX = -2,	/* not "ddd[ -]text", NUL, bare CR */
	SMTP_RESP_PARSE_MIXED = -3,	/* lines carry different codes */
	SMTP_RESP_PARSE_LONG = -4,	/* line, line count or size limit */
};

/*
 * One parsed reply. Borrowed: raw and text point into the caller's buffer
 * and are valid while it is unchanged.
 */
struct smtp_resp {
	int		 code;		/* the 3 digits as sent, 000..999 */
	char		 enh[SMTP_RESP_ENH_MAX + 1]; /* "X.Y.Z" or "" */
	size_t		 nlines;	/* >= 1 */
	const char	*text;		/* borrowed: first line's text */
	size_t		 text_len;
	const char	*raw;		/* borrowed: the whole reply */
	size_t		 raw_len;	/* == *consumed */
};

/*
 * Parse one reply from the start of buf: "ddd-text" lines up to a
 * "ddd text" or bare "ddd" line, every line with the same code. A line
 * ends in CRLF; a bare LF is accepted too (broken servers), any other CR
 * or a NUL is SMTP_RESP_PARSE_SYNTAX. The code is any 3 digits: judge it
 * with smtp_resp_classify(). enh is set when the first line's text starts
 * with "X.Y.Z" whose class equals the code's first digit; it is then
 * stripped from the text of every line that starts with it. At most
 * max_lines lines and max_bytes bytes (line ends included), each line at
 * most SMTP_RESP_LINE_MAX; past that SMTP_RESP_PARSE_LONG, as soon as it
 * is known. Returns SMTP_RESP_PARSE_OK with *consumed the reply's length
 * (bytes after it, a pipelined reply, are left), else *consumed = 0.
 */
int	smtp_resp_parse(const char *buf, size_t len, size_t max_lines,
	    size_t max_bytes, struct smtp_resp *out, size_t *consumed);
/*
 * Step through the lines of a parsed reply: *pos starts at 0. Sets *text
 * (borrowed, like r->text: code, separator and enh stripped) and *len;
 * returns false after the last line.
 */
bool	smtp_resp_line_next(const struct smtp_resp *r, size_t *pos,
	    const char **text, size_t *len);
/*
 * Copy the text of every line into out, joined by single spaces, for logs
 * and DSN diagnostics; NUL-terminated, truncated to cap - 1 bytes.
 * Returns the untruncated length, as snprintf() does: >= cap means cut.
 */
size_t	smtp_resp_text(const struct smtp_resp *r, char *out, size_t cap);

enum smtp_resp_class {
	SMTP_RESP_SUCCESS,	/* 2xx */
	SMTP_RESP_TEMPFAIL,	/* 4xx: try again later */
	SMTP_RESP_PERMFAIL,	/* 5xx: bounce */
	SMTP_RESP_PROTOCOL,	/* anything else: protocol error; retry it
				   as TEMPFAIL. Callers that expect 354 or
				   334 check for them before classifying. */
};

/* The retry class of a reply code (RFC 5321 4.2.1). */
enum smtp_resp_class smtp_resp_classify(int code);

#define SMTP_CLIENT_AUTH_PLAIN		0x01u	/* RFC 4616 */
#define SMTP_CLIENT_AUTH_LOGIN		0x02u
#define SMTP_CLIENT_AUTH_SCRAM_SHA_256	0x04u	/* RFC 7677 */

/* What a server offered in its EHLO reply. */
struct smtp_client_caps {
	bool		 size;		/* SIZE (RFC 1870) */
	uint64_t	 size_max;	/* its limit; 0 = none given */
	bool		 pipelining;	/* RFC 2920 */
	bool		 eightbitmime;	/* RFC 6152 */
	bool		 smtputf8;	/* RFC 6531 */
	bool		 dsn;		/* RFC 3461 */
	bool		 starttls;	/* RFC 3207 */
	bool		 chunking;	/* RFC 3030 */
	bool		 enhancedstatuscodes; /* RFC 2034 */
	unsigned	 auth;		/* SMTP_CLIENT_AUTH_* (RFC 4954) */
};

/*
 * Add one EHLO keyword line's text ("SIZE 1000", "AUTH PLAIN LOGIN",
 * obsolete "AUTH=LOGIN") to caps. Keywords and mechanisms are
 * case-insensitive; unknown ones are ignored. A SIZE value that is not a
 * number or overflows counts as no limit.
 */
void	smtp_client_caps_line(const char *text, size_t len,
	    struct smtp_client_caps *caps);
/*
 * Zero caps and fill it from an EHLO reply: every line after the first
 * (the greeting). Returns 0, or -1 if the code is not 250 (caps stay zero).
 */
int	smtp_client_caps_parse(const struct smtp_resp *r,
	    struct smtp_client_caps *caps);

#endif
