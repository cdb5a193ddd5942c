/*
 * dsn.c: build a delivery status notification (RFC 3464 in an RFC 6522
 * multipart/report) from a report description. Pure: no I/O, no clock, no
 * logging; everything that varies comes in through struct dsn_report.
 */
#include "deliver/dsn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "smtp/parse.h"

#define DSN_LINE_MAX	998	/* RFC 5322 2.1.1, without CRLF */
#define DSN_WRAP	72	/* text part */
#define DSN_QP_LINE	76	/* RFC 2045 6.7 (5) */
#define DSN_QID_MAX	32
#define DSN_VALUE_MAX	500	/* decoded ENVID / ORCPT kept */
#define DSN_TYPE_MAX	32	/* ORCPT addr-type kept */
#define DSN_DATE_CAP	40
#define DSN_BOUNDARY_GROW 8	/* characters appended at most */

enum dsn_kind { DSN_KIND_FAILURE, DSN_KIND_DELAY, DSN_KIND_SUCCESS };

/* A growing output buffer; grows only by what we put in it. */
struct dsn_buf {
	char	*p;		/* owned */
	size_t	 len;
	size_t	 cap;
};

/* The returned original: which bytes, how they are labelled and encoded. */
struct dsn_part3 {
	const char	*type;	/* NULL = no third part */
	const char	*cte;	/* NULL = 7bit */
	bool		 full;	/* whole message, not headers only */
};

static void
buf_add(struct dsn_buf *b, const void *s, size_t n)
{
	if (b->cap - b->len < n + 1) {
		size_t	 cap = b->cap ? b->cap : 1024;

		while (cap - b->len < n + 1)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
buf_str(struct dsn_buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void __attribute__((format(printf, 2, 3)))
buf_fmt(struct dsn_buf *b, const char *fmt, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		abort();	/* only on OOM, like xasprintf() */
	va_end(ap);
	buf_str(b, s);
	free(s);
}

static void
buf_fini(struct dsn_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static bool
is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

static bool
has_8bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/*
 * Copy caller text that goes into a header field: controls dropped, 8-bit
 * bytes '?' unless allow8, at most cap - 1 bytes. Returns out.
 */
static char *
clean_copy(const char *in, bool allow8, char *out, size_t cap)
{
	size_t	 n = 0;

	for (; in != NULL && *in != '\0' && n + 1 < cap; in++) {
		unsigned char c = (unsigned char)*in;

		if (c < 0x20 || c == 0x7f)
			continue;
		out[n++] = (c >= 0x80 && !allow8) ? '?' : (char)c;
	}
	out[n] = '\0';
	return out;
}

/* RFC 5321 4.1.2 Domain, loosely: letters, digits, '-', '.'. */
static bool
host_valid(const char *s)
{
	size_t	 n;

	if (s == NULL || (n = strlen(s)) == 0 || n > DSN_HOST_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
	}
	return true;
}

static bool
qid_ok(const char *s)
{
	size_t	 n;

	if (s == NULL || (n = strlen(s)) == 0 || n > DSN_QID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/* RFC 2046 5.1.1 bcharsnospace. */
static bool
bchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("'()+_,-./:=?", c));
}

static bool
boundary_valid(const char *s)
{
	size_t	 n;

	if (s == NULL || (n = strlen(s)) == 0 || n > DSN_BOUNDARY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!bchar(s[i]))
			return false;
	return true;
}

/* RFC 3463 2: class "." subject "." detail, class 2, 4 or 5. */
static bool
status_valid(const char *s)
{
	size_t	 i = 1;

	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5'))
		return false;
	for (int part = 0; part < 2; part++) {
		size_t	 d = 0;

		if (s[i++] != '.')
			return false;
		while (s[i] >= '0' && s[i] <= '9' && d < 4)
			i++, d++;
		if (d == 0 || d > 3)
			return false;
	}
	return s[i] == '\0';
}

/* RFC 5322 3.3 date-time in UTC, e.g. "Thu, 01 Jan 1970 00:00:00 +0000". */
static void
dsn_date(int64_t t, char out[DSN_DATE_CAP])
{
	static const char *const wday[] = { "Thu", "Fri", "Sat", "Sun",
	    "Mon", "Tue", "Wed" };
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	int64_t	 days, secs, z, era, doe, yoe, y, doy, mp, d, m;

	if (t < 0)
		t = 0;
	if (t > INT64_C(253402300799))	/* 9999-12-31 23:59:59 */
		t = INT64_C(253402300799);
	days = t / 86400;
	secs = t % 86400;
	/* civil_from_days (H. Hinnant): proleptic Gregorian, days >= 0 */
	z = days + 719468;
	era = z / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	if (m <= 2)
		y++;
	snprintf(out, DSN_DATE_CAP, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    wday[days % 7], (int)d, mon[m - 1], (int)y, (int)(secs / 3600),
	    (int)(secs / 60 % 60), (int)(secs % 60));
}

/* Skip "250-" / "550 " and a following "5.1.1 " that repeat on each line. */
static const char *
skip_reply_prefix(const char *p)
{
	const char *q = p;
	int	 dots = 0;

	if (!(p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' &&
	    p[2] >= '0' && p[2] <= '9' && (p[3] == '-' || p[3] == ' ')))
		return p;
	p += 4;
	for (q = p; (*q >= '0' && *q <= '9') || *q == '.'; q++)
		dots += *q == '.';
	if (dots == 2 && q > p && *q == ' ' && (p[0] == '2' || p[0] == '4' ||
	    p[0] == '5'))
		return q + 1;
	return p;
}

/* True if diag reads like an SMTP reply: "550 ..." or "550-...". */
static bool
diag_is_smtp(const char *d)
{
	return d[0] >= '2' && d[0] <= '5' && d[1] >= '0' && d[1] <= '9' &&
	    d[2] >= '0' && d[2] <= '9' &&
	    (d[3] == '\0' || d[3] == ' ' || d[3] == '-');
}

/*
 * Sanitise remote text: CR/LF/controls to one space (dropping the reply
 * code repeated on continuation lines), 8-bit bytes to '?', spaces
 * collapsed and trimmed, at most DSN_DIAG_MAX bytes.
 */
static void
diag_clean(const char *in, char out[DSN_DIAG_MAX + 1])
{
	size_t	 n = 0;
	bool	 space = false;

	while (in != NULL && *in != '\0' && n < DSN_DIAG_MAX) {
		unsigned char c = (unsigned char)*in++;

		if (c == '\r' || c == '\n') {
			space = n > 0;
			while (*in == '\r' || *in == '\n')
				in++;
			in = skip_reply_prefix(in);
			continue;
		}
		if (c <= 0x20 || c == 0x7f) {
			space = n > 0;
			continue;
		}
		if (space) {
			if (n + 1 >= DSN_DIAG_MAX)
				break;
			out[n++] = ' ';
			space = false;
		}
		out[n++] = c >= 0x80 ? '?' : (char)c;
	}
	out[n] = '\0';
	if (n > 3 && diag_is_smtp(out))
		out[3] = ' ';	/* "550-" of a joined multiline reply */
}

/*
 * An xtext value for a DSN field (RFC 3461 6.3 a, d: decoded). Falls back
 * to the xtext as sent, printable ASCII only, if it does not decode or the
 * decoded form holds controls or 8-bit bytes that may not be sent.
 */
static void
xtext_value(const char *s, size_t len, bool allow8, char *out, size_t cap)
{
	long	 n;
	bool	 ok;

	n = smtp_xtext_decode(s, len, out, cap);
	ok = n > 0;
	for (long i = 0; ok && i < n; i++) {
		unsigned char c = (unsigned char)out[i];

		if (c < 0x20 || c == 0x7f || (c >= 0x80 && !allow8))
			ok = false;
	}
	if (ok)
		return;
	n = 0;
	for (size_t i = 0; i < len && (size_t)n + 1 < cap; i++)
		if (s[i] > 0x20 && s[i] < 0x7f)
			out[n++] = s[i];
	out[n] = '\0';
}

/* Emit text word-wrapped at DSN_WRAP, each line led by indent. */
static void
put_wrapped(struct dsn_buf *b, const char *indent, const char *text)
{
	size_t	 col = 0;

	while (*text != '\0') {
		const char *e;

		while (*text == ' ')
			text++;
		if (*text == '\0')
			break;
		for (e = text; *e != '\0' && *e != ' '; e++)
			;
		if (col > 0 && col + 1 + (size_t)(e - text) > DSN_WRAP) {
			buf_str(b, "\r\n");
			col = 0;
		}
		if (col == 0) {
			buf_str(b, indent);
			col = strlen(indent);
		} else {
			buf_str(b, " ");
			col++;
		}
		buf_add(b, text, (size_t)(e - text));
		col += (size_t)(e - text);
		text = e;
	}
	if (col > 0)
		buf_str(b, "\r\n");
}

/*
 * True if the bytes can go out as they are: CRLF line ends only, no NUL,
 * lines of at most DSN_LINE_MAX bytes, and 8-bit bytes only if allow8.
 */
static bool
verbatim_ok(const char *s, size_t len, bool allow8)
{
	size_t	 col = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r') {
			if (i + 1 >= len || s[i + 1] != '\n')
				return false;
			i++;
			col = 0;
			continue;
		}
		if (c == '\n' || c == '\0' || (c >= 0x80 && !allow8) ||
		    ++col > DSN_LINE_MAX)
			return false;
	}
	return true;
}

/* Length of the header section (up to and including its last CRLF). */
static size_t
header_len(const char *msg, size_t len)
{
	if (len >= 2 && msg[0] == '\r' && msg[1] == '\n')
		return 0;
	for (size_t i = 0; i + 4 <= len; i++)
		if (memcmp(msg + i, "\r\n\r\n", 4) == 0)
			return i + 2;
	return len;
}

/* Quoted-printable (RFC 2045 6.7) with CRLF as the hard line break. */
static void
put_qp(struct dsn_buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t	 col = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char	 tok[3];
		size_t	 tl = 1;
		bool	 eol;

		if (c == '\r' && i + 1 < len && s[i + 1] == '\n') {
			buf_str(b, "\r\n");
			col = 0;
			i++;
			continue;
		}
		eol = i + 1 == len || (s[i + 1] == '\r' && i + 2 < len &&
		    s[i + 2] == '\n');
		if ((c >= 33 && c <= 126 && c != '=') ||
		    ((c == ' ' || c == '\t') && !eol))
			tok[0] = (char)c;
		else {
			tok[0] = '=';
			tok[1] = hex[c >> 4];
			tok[2] = hex[c & 0xf];
			tl = 3;
		}
		/* room for the token and a soft break "=" on this line */
		if (col + tl > DSN_QP_LINE - 1) {
			buf_str(b, "=\r\n");
			col = 0;
		}
		buf_add(b, tok, tl);
		col += tl;
	}
}

static enum dsn_kind
report_kind(const struct dsn_report *r)
{
	enum dsn_kind k = DSN_KIND_SUCCESS;

	for (size_t i = 0; i < r->nrcpt; i++) {
		if (r->rcpt[i].action == DSN_ACTION_FAILED)
			return DSN_KIND_FAILURE;
		if (r->rcpt[i].action == DSN_ACTION_DELAYED)
			k = DSN_KIND_DELAY;
	}
	return k;
}

/*
 * Choose and encode the third part into body (without the part header).
 * RFC 3461 4.3: RET=HDRS returns headers; RET=FULL or absent, the message.
 */
static struct dsn_part3
build_part3(const struct dsn_report *r, enum dsn_kind kind,
    struct dsn_buf *body)
{
	struct dsn_part3 p = { NULL, NULL, false };
	size_t	 n;
	bool	 eight;

	if (r->msg == NULL || r->msg_len == 0)
		return p;
	if (kind == DSN_KIND_FAILURE && r->ret != SMTP_RET_HDRS &&
	    r->msg_len <= r->return_max &&
	    verbatim_ok(r->msg, r->msg_len, r->smtputf8)) {
		eight = has_8bit(r->msg, r->msg_len);
		p.type = eight ? "message/global" : "message/rfc822";
		p.cte = eight ? "8bit" : NULL;
		p.full = true;
		buf_add(body, r->msg, r->msg_len);
		return p;
	}
	n = header_len(r->msg, r->msg_len);
	if (n > r->return_max) {
		n = r->return_max;
		while (n > 0 && r->msg[n - 1] != '\n')
			n--;	/* whole lines only */
	}
	if (n == 0)
		return p;
	if (verbatim_ok(r->msg, n, r->smtputf8)) {
		eight = has_8bit(r->msg, n);
		p.type = eight ? "message/global-headers" :
		    "text/rfc822-headers";
		p.cte = eight ? "8bit" : NULL;
		buf_add(body, r->msg, n);
	} else {
		p.type = "text/rfc822-headers";
		p.cte = "quoted-printable";
		put_qp(body, r->msg, n);
	}
	return p;
}

/* RFC 3461 4.2 addr-type, an atom; "unknown" (RFC 3464 2.3.1) if not. */
static void
addr_type(const char *s, size_t len, char out[DSN_TYPE_MAX + 1])
{
	bool	 ok = len > 0 && len <= DSN_TYPE_MAX;

	for (size_t i = 0; ok && i < len; i++)
		ok = (s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		    s[i] == '_' || s[i] == '.';
	if (!ok) {
		s = "unknown";
		len = strlen(s);
	}
	memcpy(out, s, len);
	out[len] = '\0';
}

/* The recipient address as it goes into fields: cleaned, capped. */
static void
rcpt_addr(const struct dsn_report *r, const char *addr,
    char out[SMTP_PATH_MAX + 1])
{
	clean_copy(addr, r->smtputf8, out, SMTP_PATH_MAX + 1);
	if (out[0] == '\0')
		snprintf(out, SMTP_PATH_MAX + 1, "unknown");
}

/*
 * The Status field: the caller's if well-formed and of a class that fits
 * the action (failed: 5, or 4 for a transient error that outlived the
 * queue lifetime; delayed: 4; the others: 2), else x.0.0.
 */
static const char *
rcpt_status(const struct dsn_rcpt *rc)
{
	if (status_valid(rc->status)) {
		char	 c = rc->status[0];

		if (rc->action == DSN_ACTION_FAILED ? c != '2' :
		    rc->action == DSN_ACTION_DELAYED ? c == '4' : c == '2')
			return rc->status;
	}
	switch (rc->action) {
	case DSN_ACTION_FAILED:
		return "5.0.0";
	case DSN_ACTION_DELAYED:
		return "4.0.0";
	default:
		return "2.0.0";
	}
}

static const char *
action_text(enum dsn_action a)
{
	switch (a) {
	case DSN_ACTION_FAILED:
		return "delivery failed";
	case DSN_ACTION_DELAYED:
		return "delivery delayed, still trying";
	case DSN_ACTION_DELIVERED:
		return "delivered";
	case DSN_ACTION_RELAYED:
		return "relayed to a system that sends no delivery notices";
	case DSN_ACTION_EXPANDED:
		return "delivered to a list or alias, expanded";
	}
	return "unknown";
}

/* Part 1: the explanation for a human. */
static void
build_part1(const struct dsn_report *r, enum dsn_kind kind,
    const struct dsn_part3 *p3, struct dsn_buf *b)
{
	char	 addr[SMTP_PATH_MAX + 1], diag[DSN_DIAG_MAX + 1];
	char	 host[DSN_HOST_MAX + 1], date[DSN_DATE_CAP];

	buf_fmt(b, "This is the mail delivery system at %s.\r\n\r\n", r->host);
	switch (kind) {
	case DSN_KIND_FAILURE:
		buf_str(b, "Your message could not be delivered to one or "
		    "more recipients.\r\nThe mail system has given up; it "
		    "will not try again.\r\n");
		break;
	case DSN_KIND_DELAY:
		buf_str(b, "Your message has not been delivered yet to one "
		    "or more recipients.\r\nThe mail system is still trying; "
		    "you need not send it again.\r\n");
		break;
	case DSN_KIND_SUCCESS:
		buf_str(b, "This is the delivery report you asked for when "
		    "you sent your message.\r\n");
		break;
	}
	if (p3->type != NULL)
		buf_str(b, p3->full ? "Your message is attached.\r\n" :
		    "The header of your message is attached.\r\n");
	for (size_t i = 0; i < r->nrcpt; i++) {
		const struct dsn_rcpt *rc = &r->rcpt[i];

		rcpt_addr(r, rc->addr, addr);
		buf_fmt(b, "\r\n<%s>: %s (%s)\r\n", addr,
		    action_text(rc->action), rcpt_status(rc));
		if (rc->remote_mta != NULL && rc->remote_mta[0] != '\0')
			buf_fmt(b, "    Remote server: %s\r\n",
			    clean_copy(rc->remote_mta, false, host,
			    sizeof(host)));
		if (rc->action == DSN_ACTION_DELAYED && rc->retry_until != 0) {
			dsn_date(rc->retry_until, date);
			buf_fmt(b, "    Will retry until: %s\r\n", date);
		}
		diag_clean(rc->diag, diag);
		if (diag[0] != '\0')
			put_wrapped(b, "    ", diag);
	}
}

/* Part 2: RFC 3464 2.2 per-message and 2.3 per-recipient fields. */
static void
build_part2(const struct dsn_report *r, struct dsn_buf *b)
{
	char	 val[DSN_VALUE_MAX + 1], addr[SMTP_PATH_MAX + 1];
	char	 type[DSN_TYPE_MAX + 1], host[DSN_HOST_MAX + 1];
	char	 diag[DSN_DIAG_MAX + 1], date[DSN_DATE_CAP];

	/* RFC 3464 2.2: Original-Envelope-Id comes first */
	if (r->envid != NULL && r->envid[0] != '\0') {
		xtext_value(r->envid, strlen(r->envid), r->smtputf8, val,
		    sizeof(val));
		if (val[0] != '\0')
			buf_fmt(b, "Original-Envelope-Id: %s\r\n", val);
	}
	buf_fmt(b, "Reporting-MTA: dns; %s\r\n", r->host);
	if (r->arrival > 0) {
		dsn_date(r->arrival, date);
		buf_fmt(b, "Arrival-Date: %s\r\n", date);
	}
	for (size_t i = 0; i < r->nrcpt; i++) {
		const struct dsn_rcpt *rc = &r->rcpt[i];
		const char *semi;

		buf_str(b, "\r\n");
		/* RFC 3461 6.3 (d): present exactly when ORCPT was given */
		if (rc->orcpt != NULL && rc->orcpt[0] != '\0') {
			if ((semi = strchr(rc->orcpt, ';')) == NULL)
				semi = rc->orcpt;	/* no type: all value */
			addr_type(rc->orcpt, (size_t)(semi - rc->orcpt), type);
			if (*semi == ';')
				semi++;
			xtext_value(semi, strlen(semi), r->smtputf8, val,
			    sizeof(val));
			buf_fmt(b, "Original-Recipient: %s;%s\r\n", type, val);
		}
		rcpt_addr(r, rc->addr, addr);
		buf_fmt(b, "Final-Recipient: %s;%s\r\n",
		    is_ascii(addr) ? "rfc822" : "utf-8", addr);
		buf_fmt(b, "Action: %s\r\n", dsn_action_name(rc->action));
		buf_fmt(b, "Status: %s\r\n", rcpt_status(rc));
		if (rc->remote_mta != NULL && rc->remote_mta[0] != '\0') {
			clean_copy(rc->remote_mta, false, host, sizeof(host));
			buf_fmt(b, "Remote-MTA: dns; %s\r\n", host);
		}
		diag_clean(rc->diag, diag);
		/* one line, not folded: DSN readers often take it whole */
		if (diag[0] != '\0')
			buf_fmt(b, "Diagnostic-Code: %s; %s\r\n",
			    diag_is_smtp(diag) ? "smtp" : "X-Petrel", diag);
		if (rc->last_attempt != 0) {
			dsn_date(rc->last_attempt, date);
			buf_fmt(b, "Last-Attempt-Date: %s\r\n", date);
		}
		if (rc->action == DSN_ACTION_DELAYED && rc->retry_until != 0) {
			dsn_date(rc->retry_until, date);
			buf_fmt(b, "Will-Retry-Until: %s\r\n", date);
		}
	}
}

/*
 * Count, per next byte, the lines of s that start with "--" cand. Returns
 * true if any line starts with it.
 */
static bool
boundary_scan(const struct dsn_buf *s, const char *cand, size_t next[256])
{
	size_t	 cl = strlen(cand);
	bool	 hit = false;

	for (size_t i = 0; i < s->len; i++) {
		if (i > 0 && s->p[i - 1] != '\n' && s->p[i - 1] != '\r')
			continue;
		if (s->len - i < cl + 2 || s->p[i] != '-' ||
		    s->p[i + 1] != '-' || memcmp(s->p + i + 2, cand, cl) != 0)
			continue;
		hit = true;
		if (i + 2 + cl < s->len)
			next[(unsigned char)s->p[i + 2 + cl]]++;
	}
	return hit;
}

/*
 * RFC 2046 5.1.1: the delimiter must not occur in any part. Extend the
 * candidate by a character no colliding line continues with, or by the
 * least used one and look again; 62 choices a step, so a few suffice.
 */
static bool
boundary_pick(const char *want, const struct dsn_buf *parts, size_t nparts,
    char out[DSN_BOUNDARY_MAX + 1])
{
	static const char alpha[] = "0123456789"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	size_t	 next[256], len;

	snprintf(out, DSN_BOUNDARY_MAX + 1, "%s", want);
	for (int step = 0; step <= DSN_BOUNDARY_GROW; step++) {
		size_t	 best = 0;
		bool	 hit = false;

		memset(next, 0, sizeof(next));
		for (size_t i = 0; i < nparts; i++)
			hit |= boundary_scan(&parts[i], out, next);
		if (!hit)
			return true;
		if (step == DSN_BOUNDARY_GROW)
			break;
		len = strlen(out);
		if (step == 0 && len > DSN_BOUNDARY_MAX - DSN_BOUNDARY_GROW)
			len = DSN_BOUNDARY_MAX - DSN_BOUNDARY_GROW;
		for (size_t j = 1; j < sizeof(alpha) - 1; j++)
			if (next[(unsigned char)alpha[j]] <
			    next[(unsigned char)alpha[best]])
				best = j;
		out[len] = alpha[best];
		out[len + 1] = '\0';
	}
	return false;
}

static const char *
kind_subject(enum dsn_kind k)
{
	switch (k) {
	case DSN_KIND_FAILURE:
		return "Undelivered Mail Returned to Sender";
	case DSN_KIND_DELAY:
		return "Delayed Mail (still being retried)";
	case DSN_KIND_SUCCESS:
		return "Successful Mail Delivery Report";
	}
	return "Mail Delivery Report";
}

static const char *
kind_name(enum dsn_kind k)
{
	switch (k) {
	case DSN_KIND_FAILURE:
		return "failure";
	case DSN_KIND_DELAY:
		return "delay";
	case DSN_KIND_SUCCESS:
		return "success";
	}
	return "report";
}

/* A part header: type, optional charset and encoding, description. */
static void
put_part_head(struct dsn_buf *b, const char *boundary, const char *type,
    const char *charset, const char *cte, const char *descr)
{
	buf_fmt(b, "\r\n--%s\r\nContent-Type: %s", boundary, type);
	if (charset != NULL)
		buf_fmt(b, "; charset=%s", charset);
	buf_str(b, "\r\n");
	if (cte != NULL)
		buf_fmt(b, "Content-Transfer-Encoding: %s\r\n", cte);
	buf_fmt(b, "Content-Description: %s\r\n\r\n", descr);
}

void
dsn_report_init(struct dsn_report *r, const struct envelope *e)
{
	memset(r, 0, sizeof(*r));
	r->qid = e->id;
	r->from = e->from;
	r->envid = e->envid;
	r->ret = e->ret;
	r->smtputf8 = e->smtputf8;
	r->arrival = (int64_t)(e->arrival_usec / 1000000);
}

int
dsn_format(const struct dsn_report *r, struct dsn_out *out)
{
	struct dsn_buf	 parts[3], b = { NULL, 0, 0 };
	struct dsn_part3 p3;
	enum dsn_kind	 kind;
	char		 boundary[DSN_BOUNDARY_MAX + 1], date[DSN_DATE_CAP];
	char		 to[SMTP_PATH_MAX + 1];
	bool		 eight1, eight2;
	int		 rc = -1;

	memset(out, 0, sizeof(*out));
	memset(parts, 0, sizeof(parts));
	if (r->nrcpt == 0 || r->rcpt == NULL || r->from == NULL ||
	    r->from[0] == '\0' || !host_valid(r->host) || !qid_ok(r->qid) ||
	    !boundary_valid(r->boundary))
		goto out;
	clean_copy(r->from, r->smtputf8, to, sizeof(to));
	if (to[0] == '\0')
		goto out;

	kind = report_kind(r);
	p3 = build_part3(r, kind, &parts[2]);
	build_part1(r, kind, &p3, &parts[0]);
	build_part2(r, &parts[1]);
	eight1 = has_8bit(parts[0].p, parts[0].len);
	eight2 = has_8bit(parts[1].p, parts[1].len);
	if (!boundary_pick(r->boundary, parts, 3, boundary))
		goto out;

	dsn_date(r->now, date);
	buf_fmt(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	    r->host);
	buf_fmt(&b, "To: <%s>\r\n", to);
	buf_fmt(&b, "Subject: %s\r\n", kind_subject(kind));
	buf_fmt(&b, "Date: %s\r\n", date);
	buf_fmt(&b, "Message-ID: <%s.%s.%lld@%s>\r\n", r->qid,
	    kind_name(kind), (long long)(r->now < 0 ? 0 : r->now), r->host);
	buf_str(&b, "Auto-Submitted: auto-replied\r\n");	/* RFC 3834 */
	buf_str(&b, "MIME-Version: 1.0\r\n");
	/* RFC 6522 3: report-type is the subtype of the second part */
	buf_fmt(&b, "Content-Type: multipart/report; report-type=%s;\r\n"
	    "\tboundary=\"%s\"\r\n", eight2 ? "global-delivery-status" :
	    "delivery-status", boundary);
	buf_str(&b, "\r\nThis is a MIME-encapsulated message.\r\n");

	put_part_head(&b, boundary, "text/plain", eight1 ? "utf-8" :
	    "us-ascii", eight1 ? "8bit" : NULL, "Notification");
	buf_add(&b, parts[0].p, parts[0].len);
	put_part_head(&b, boundary, eight2 ? "message/global-delivery-status" :
	    "message/delivery-status", NULL, eight2 ? "8bit" : NULL,
	    "Delivery report");
	buf_add(&b, parts[1].p, parts[1].len);
	if (p3.type != NULL) {
		put_part_head(&b, boundary, p3.type, NULL, p3.cte,
		    p3.full ? "Undelivered message" : "Message header");
		buf_add(&b, parts[2].p, parts[2].len);
	}
	buf_fmt(&b, "\r\n--%s--\r\n", boundary);

	out->text = b.p;
	out->len = b.len;
	out->eightbit = has_8bit(b.p, b.len);
	out->smtputf8 = !is_ascii(to);
	b.p = NULL;
	rc = 0;
out:
	for (size_t i = 0; i < 3; i++)
		buf_fini(&parts[i]);
	buf_fini(&b);
	return rc;
}

void
dsn_out_fini(struct dsn_out *out)
{
	free(out->text);
	memset(out, 0, sizeof(*out));
}

bool
dsn_needed(const char *from, unsigned notify, enum dsn_action action)
{
	/* RFC 3461 6.2 / RFC 5321 4.5.5: never report on a report */
	if (from == NULL || from[0] == '\0')
		return false;
	if (notify & SMTP_NOTIFY_NEVER)
		return false;
	if (notify == 0)	/* RFC 3461 4.1: FAILURE, DELAY our option */
		return action == DSN_ACTION_FAILED ||
		    action == DSN_ACTION_DELAYED;
	switch (action) {
	case DSN_ACTION_FAILED:
		return (notify & SMTP_NOTIFY_FAILURE) != 0;
	case DSN_ACTION_DELAYED:
		return (notify & SMTP_NOTIFY_DELAY) != 0;
	case DSN_ACTION_DELIVERED:
	case DSN_ACTION_RELAYED:
	case DSN_ACTION_EXPANDED:
		return (notify & SMTP_NOTIFY_SUCCESS) != 0;
	}
	return false;
}

const char *
dsn_action_name(enum dsn_action action)
{
	switch (action) {
	case DSN_ACTION_FAILED:
		return "failed";
	case DSN_ACTION_DELAYED:
		return "delayed";
	case DSN_ACTION_DELIVERED:
		return "delivered";
	case DSN_ACTION_RELAYED:
		return "relayed";
	case DSN_ACTION_EXPANDED:
		return "expanded";
	}
	return "failed";
}
