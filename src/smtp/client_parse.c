/*
 * client_parse.c: pure parsers for what an SMTP server sends its client:
 * replies, EHLO capabilities, reply classes. No I/O, logging, allocation
 * or globals; results point into the caller's buffer.
 */
#include "smtp/client_parse.h"

#include <string.h>

#include "core/util.h"

static bool
is_space(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Find the end of the line at s (avail bytes there). On SMTP_RESP_PARSE_OK
 * *clen is its length without CRLF or LF and *next the offset after it.
 * Only LF ends a line; a CR must be followed by it.
 */
static int
line_scan(const char *s, size_t avail, size_t *clen, size_t *next)
{
	size_t	 i, n = avail < SMTP_RESP_LINE_MAX ? avail : SMTP_RESP_LINE_MAX;

	for (i = 0; i < n; i++) {
		if (s[i] == '\n') {
			*clen = i > 0 && s[i - 1] == '\r' ? i - 1 : i;
			*next = i + 1;
			/* A bare LF does not buy the CR's byte. */
			if (*clen > SMTP_RESP_LINE_MAX - 2)
				return SMTP_RESP_PARSE_LONG;
			return SMTP_RESP_PARSE_OK;
		}
		if (s[i] == '\0')
			return SMTP_RESP_PARSE_SYNTAX;
		if (s[i] == '\r' && i + 1 < avail && s[i + 1] != '\n')
			return SMTP_RESP_PARSE_SYNTAX;
	}
	if (avail >= SMTP_RESP_LINE_MAX)
		return SMTP_RESP_PARSE_LONG;
	return SMTP_RESP_PARSE_MORE;
}

/*
 * Check "ddd", then "-", " " or the end, at the start of a line of n bytes;
 * a partial line (complete false) is checked as far as it goes so garbage
 * fails at once. Sets *code once 3 digits are there, *last on a final line.
 */
static int
line_head(const char *s, size_t n, bool complete, int *code, bool *last)
{
	size_t	 i;

	for (i = 0; i < n && i < 3; i++)
		if (!ascii_digit(s[i]))
			return SMTP_RESP_PARSE_SYNTAX;
	if (n >= 3)
		*code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	/* A partial "250\r" may still become "250\r\n". */
	if (n >= 4 && s[3] != '-' && s[3] != ' ' &&
	    (complete || s[3] != '\r'))
		return SMTP_RESP_PARSE_SYNTAX;
	if (!complete)
		return SMTP_RESP_PARSE_OK;
	if (n < 3)
		return SMTP_RESP_PARSE_SYNTAX;
	*last = n == 3 || s[3] == ' ';
	return SMTP_RESP_PARSE_OK;
}

/*
 * Length of an enhanced status code "class.subject.detail" at the start of
 * s whose class is code's first digit (RFC 3463 2: class 2, 4 or 5,
 * subject and detail 1*3digit), followed by SP or the end; else 0.
 */
static size_t
enh_len(const char *s, size_t n, int code)
{
	size_t	 i = 0, part, d;
	int	 cls = code / 100;

	if (cls != 2 && cls != 4 && cls != 5)
		return 0;
	if (n < 5 || s[0] != '0' + cls || s[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (d = 0; i < n && d < 3 && ascii_digit(s[i]); d++)
			i++;
		if (d == 0)
			return 0;
		if (part == 0) {
			if (i >= n || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < n && s[i] != ' ')
		return 0;
	return i;
}

/*
 * The text of a complete line s[0..clen): after "ddd" and its separator,
 * without a leading enh and the spaces after it.
 */
static void
line_text(const char *s, size_t clen, const char *enh, const char **text,
    size_t *len)
{
	size_t	 off = clen > 4 ? 4 : clen, elen = strlen(enh);

	if (elen > 0 && clen - off >= elen && memcmp(s + off, enh, elen) == 0 &&
	    (clen - off == elen || s[off + elen] == ' ')) {
		off += elen;
		while (off < clen && s[off] == ' ')
			off++;
	}
	*text = s + off;
	*len = clen - off;
}

int
smtp_resp_parse(const char *buf, size_t len, size_t max_lines,
    size_t max_bytes, struct smtp_resp *out, size_t *consumed)
{
	size_t	 pos = 0, avail, clen, next, elen;
	int	 rc, code = -1;
	bool	 last = false;

	memset(out, 0, sizeof(*out));
	*consumed = 0;
	for (;;) {
		/* Another line is due: is there room for it? */
		if (out->nlines >= max_lines || pos >= max_bytes) {
			rc = SMTP_RESP_PARSE_LONG;
			goto out;
		}
		if (pos == len) {
			rc = SMTP_RESP_PARSE_MORE;
			goto out;
		}
		avail = len - pos;
		rc = line_scan(buf + pos, avail, &clen, &next);
		if (rc == SMTP_RESP_PARSE_MORE) {
			/* Fail early rather than wait for a timeout. */
			rc = line_head(buf + pos, avail, false, &code, &last);
			if (rc == SMTP_RESP_PARSE_OK && out->nlines > 0 &&
			    avail >= 3 && code != out->code)
				rc = SMTP_RESP_PARSE_MIXED;
			/* The line end is still to come: one byte at least. */
			else if (rc == SMTP_RESP_PARSE_OK && len >= max_bytes)
				rc = SMTP_RESP_PARSE_LONG;
			else if (rc == SMTP_RESP_PARSE_OK)
				rc = SMTP_RESP_PARSE_MORE;
			goto out;
		}
		if (rc != SMTP_RESP_PARSE_OK)
			goto out;
		rc = line_head(buf + pos, clen, true, &code, &last);
		if (rc != SMTP_RESP_PARSE_OK)
			goto out;
		if (out->nlines > 0 && code != out->code) {
			rc = SMTP_RESP_PARSE_MIXED;
			goto out;
		}
		if (pos + next > max_bytes) {
			rc = SMTP_RESP_PARSE_LONG;
			goto out;
		}
		if (out->nlines == 0) {
			out->code = code;
			elen = clen > 4 ? enh_len(buf + 4, clen - 4, code) : 0;
			memcpy(out->enh, buf + 4, elen);
			out->enh[elen] = '\0';
			line_text(buf, clen, out->enh, &out->text,
			    &out->text_len);
		}
		out->nlines++;
		pos += next;
		if (last)
			break;
	}
	out->raw = buf;
	out->raw_len = pos;
	*consumed = pos;
	rc = SMTP_RESP_PARSE_OK;
out:
	if (rc != SMTP_RESP_PARSE_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

bool
smtp_resp_line_next(const struct smtp_resp *r, size_t *pos,
    const char **text, size_t *len)
{
	const char	*s;
	size_t		 n = 0, avail, clen;

	if (*pos >= r->raw_len)
		return false;
	s = r->raw + *pos;
	avail = r->raw_len - *pos;
	while (n < avail && s[n] != '\n')
		n++;
	clen = n > 0 && s[n - 1] == '\r' ? n - 1 : n;
	*pos += n < avail ? n + 1 : n;
	line_text(s, clen, r->enh, text, len);
	return true;
}

size_t
smtp_resp_text(const struct smtp_resp *r, char *out, size_t cap)
{
	const char	*t;
	size_t		 pos = 0, total = 0, tlen, n;
	bool		 first = true;

	if (cap > 0)
		out[0] = '\0';
	while (smtp_resp_line_next(r, &pos, &t, &tlen)) {
		if (!first) {
			if (total + 1 < cap)
				out[total] = ' ';
			total++;
		}
		first = false;
		if (total < cap) {
			n = cap - 1 - total < tlen ? cap - 1 - total : tlen;
			memcpy(out + total, t, n);
			out[total + n] = '\0';
		}
		total += tlen;
	}
	return total;
}

enum smtp_resp_class
smtp_resp_classify(int code)
{
	if (code < 0 || code > 999)
		return SMTP_RESP_PROTOCOL;
	switch (code / 100) {
	case 2:
		return SMTP_RESP_SUCCESS;
	case 4:
		return SMTP_RESP_TEMPFAIL;
	case 5:
		return SMTP_RESP_PERMFAIL;
	default:
		return SMTP_RESP_PROTOCOL;
	}
}

/* EHLO keywords that are a plain yes (RFC 5321 4.1.1.1 ehlo-keyword). */
static const struct {
	const char	*name;
	size_t		 off;
} caps_flags[] = {
	{ "PIPELINING", offsetof(struct smtp_client_caps, pipelining) },
	{ "8BITMIME", offsetof(struct smtp_client_caps, eightbitmime) },
	{ "SMTPUTF8", offsetof(struct smtp_client_caps, smtputf8) },
	{ "DSN", offsetof(struct smtp_client_caps, dsn) },
	{ "STARTTLS", offsetof(struct smtp_client_caps, starttls) },
	{ "CHUNKING", offsetof(struct smtp_client_caps, chunking) },
	{ "ENHANCEDSTATUSCODES",
	  offsetof(struct smtp_client_caps, enhancedstatuscodes) },
};

static const struct {
	const char	*name;
	unsigned	 bit;
} caps_auth[] = {
	{ "PLAIN", SMTP_CLIENT_AUTH_PLAIN },
	{ "LOGIN", SMTP_CLIENT_AUTH_LOGIN },
	{ "SCRAM-SHA-256", SMTP_CLIENT_AUTH_SCRAM_SHA_256 },
};

/* RFC 1870 4: "SIZE [number]"; 0, garbage or overflow mean no limit. */
static uint64_t
caps_size(const char *s, size_t len)
{
	uint64_t	 v = 0;
	size_t		 i = 0;

	while (i < len && is_space(s[i]))
		i++;
	if (i == len)
		return 0;
	for (; i < len && ascii_digit(s[i]); i++) {
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return 0;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	while (i < len && is_space(s[i]))
		i++;
	return i == len ? v : 0;
}

/* RFC 4954 3: "AUTH mech mech ...": the mechanisms we know, as bits. */
static unsigned
caps_mechs(const char *s, size_t len)
{
	unsigned	 bits = 0;
	size_t		 i = 0, start, k;

	for (;;) {
		while (i < len && is_space(s[i]))
			i++;
		if (i == len)
			return bits;
		start = i;
		while (i < len && !is_space(s[i]))
			i++;
		for (k = 0; k < sizeof(caps_auth) / sizeof(caps_auth[0]); k++)
			if (str_case_eq(s + start, i - start, caps_auth[k].name))
				bits |= caps_auth[k].bit;
	}
}

void
smtp_client_caps_line(const char *s, size_t len,
    struct smtp_client_caps *caps)
{
	size_t	 i = 0, kw, k;

	if (len == 0)
		return;		/* s may be NULL */
	while (i < len && is_space(s[i]))
		i++;
	for (kw = i; kw < len && !is_space(s[kw]) && s[kw] != '='; kw++)
		;
	if (str_case_eq(s + i, kw - i, "AUTH")) {
		/* "AUTH=" is the pre-RFC 4954 form some servers still send. */
		if (kw < len)
			caps->auth |= caps_mechs(s + kw + 1, len - kw - 1);
		return;
	}
	if (kw < len && s[kw] == '=')
		return;
	if (str_case_eq(s + i, kw - i, "SIZE")) {
		caps->size = true;
		caps->size_max = caps_size(s + kw, len - kw);
		return;
	}
	for (k = 0; k < sizeof(caps_flags) / sizeof(caps_flags[0]); k++)
		if (str_case_eq(s + i, kw - i, caps_flags[k].name)) {
			*(bool *)((char *)caps + caps_flags[k].off) = true;
			return;
		}
}

int
smtp_client_caps_parse(const struct smtp_resp *r,
    struct smtp_client_caps *caps)
{
	const char	*t;
	size_t		 pos = 0, tlen;
	bool		 first = true;

	memset(caps, 0, sizeof(*caps));
	if (r->code != 250)
		return -1;
	while (smtp_resp_line_next(r, &pos, &t, &tlen)) {
		if (!first)
			smtp_client_caps_line(t, tlen, caps);
		first = false;
	}
	return 0;
}
