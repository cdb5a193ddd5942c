/*
 * test_dsn.c: delivery status notifications built by dsn_format(), parsed
 * back here (headers, boundary, parts, field blocks) and compared line by
 * line; the NOTIFY table of dsn_needed().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "deliver/dsn.h"
#include "queue/envelope.h"
#include "smtp/parse.h"

#define T_ARRIVAL	INT64_C(1700000000)	/* Tue, 14 Nov 2023 22:13:20 */
#define T_NOW		INT64_C(1700003600)	/* Tue, 14 Nov 2023 23:13:20 */

static const char msg_plain[] =
    "From: Ann <ann@example.com>\r\n"
    "To: bob@example.net, carol@example.org\r\n"
    "Subject: lunch\r\n"
    "Message-ID: <m1@example.com>\r\n"
    "\r\n"
    "Shall we?\r\n"
    "-- \r\n"
    "Ann\r\n";
#define MSG_PLAIN_HDRS	115	/* bytes of msg_plain up to the blank line */

/* One MIME part or block as parsed back: header lines and body. */
struct t_part {
	char	*head;		/* owned: header lines, each ending CRLF */
	char	*body;		/* owned */
};

struct t_report {
	struct t_part	 top;
	char		 boundary[DSN_BOUNDARY_MAX + 1];
	struct t_part	 part[4];
	size_t		 nparts;
};

static char *
t_strndup(const char *s, size_t n)
{
	char	*p = malloc(n + 1);

	assert_non_null(p);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* Every line ends in CRLF, no bare CR or LF, none longer than 998. */
static void
assert_crlf_lines(const char *s, size_t len)
{
	size_t	 col = 0;

	assert_true(len >= 2 && s[len - 2] == '\r' && s[len - 1] == '\n');
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\r') {
			assert_true(i + 1 < len && s[i + 1] == '\n');
			i++;
			col = 0;
			continue;
		}
		assert_true(s[i] != '\n' && s[i] != '\0');
		col++;
		assert_true(col <= 998);
	}
}

/* Split at the first empty line. */
static void
t_split(const char *s, size_t len, struct t_part *p)
{
	const char *e = NULL;

	for (size_t i = 0; i + 4 <= len; i++)
		if (memcmp(s + i, "\r\n\r\n", 4) == 0) {
			e = s + i;
			break;
		}
	assert_non_null(e);
	p->head = t_strndup(s, (size_t)(e - s) + 2);
	p->body = t_strndup(e + 4, len - (size_t)(e - s) - 4);
}

/* The value of header "name" in head (exact case, unfolded), or NULL. */
static const char *
t_field(const char *head, const char *name, char *out, size_t cap)
{
	size_t	 nl = strlen(name);

	for (const char *l = head; *l != '\0'; ) {
		const char *e = strstr(l, "\r\n");

		assert_non_null(e);
		if ((size_t)(e - l) > nl + 1 && memcmp(l, name, nl) == 0 &&
		    l[nl] == ':') {
			const char *v = l + nl + 1;

			while (*v == ' ')
				v++;
			snprintf(out, cap, "%.*s", (int)(e - v), v);
			return out;
		}
		l = e + 2;
	}
	return NULL;
}

/* Parse a report: top header, boundary, then the parts. */
static void
t_parse(const struct dsn_out *o, struct t_report *r)
{
	char	 ct[512], delim[DSN_BOUNDARY_MAX + 8];
	const char *b, *p, *next, *end;

	memset(r, 0, sizeof(*r));
	assert_int_equal(strlen(o->text), o->len);
	assert_crlf_lines(o->text, o->len);
	t_split(o->text, o->len, &r->top);
	/* the folded Content-Type: "multipart/report; ...;\r\n\tboundary=" */
	b = strstr(r->top.head, "\tboundary=\"");
	assert_non_null(b);
	b += strlen("\tboundary=\"");
	assert_non_null(strchr(b, '"'));
	snprintf(r->boundary, sizeof(r->boundary), "%.*s",
	    (int)(strchr(b, '"') - b), b);
	assert_non_null(t_field(r->top.head, "Content-Type", ct, sizeof(ct)));
	assert_non_null(strstr(ct, "multipart/report; report-type="));

	snprintf(delim, sizeof(delim), "\r\n--%s", r->boundary);
	p = strstr(r->top.body, delim);
	assert_non_null(p);
	/* no other line in the whole text starts with the delimiter */
	for (;;) {
		p += strlen(delim);
		if (strncmp(p, "--\r\n", 4) == 0) {
			assert_string_equal(p, "--\r\n");	/* the end */
			break;
		}
		assert_memory_equal(p, "\r\n", 2);
		p += 2;
		next = strstr(p, delim);
		assert_non_null(next);
		assert_true(r->nparts < 4);
		end = next;
		/* the CRLF before the next "--" belongs to the delimiter */
		t_split(p, (size_t)(end - p), &r->part[r->nparts]);
		r->nparts++;
		p = next;
	}
}

static void
t_free(struct t_report *r)
{
	free(r->top.head);
	free(r->top.body);
	for (size_t i = 0; i < r->nparts; i++) {
		free(r->part[i].head);
		free(r->part[i].body);
	}
}

static struct dsn_rcpt rcpt_bob = {
	.addr = "bob@example.net",
	.orcpt = "rfc822;Bob+2BX@Example.NET",
	.action = DSN_ACTION_FAILED,
	.status = "5.1.1",
	.remote_mta = "mx.example.net",
	.diag = "550 5.1.1 <bob@example.net>: no such user",
	.last_attempt = T_ARRIVAL + 60,
};

static struct dsn_rcpt rcpt_carol = {
	.addr = "carol@example.org",
	.action = DSN_ACTION_FAILED,
	.status = "5.4.7",
	.diag = "delivery time expired",
};

static void
report_base(struct dsn_report *r, const struct dsn_rcpt *rc, size_t n)
{
	memset(r, 0, sizeof(*r));
	r->qid = "2QF7K1XG3M000";
	r->host = "mx.petrel.test";
	r->from = "ann@example.com";
	r->envid = "QQ+2B314159";
	r->ret = SMTP_RET_NONE;
	r->arrival = T_ARRIVAL;
	r->now = T_NOW;
	r->boundary = "b0undary/X";
	r->rcpt = rc;
	r->nrcpt = n;
	r->msg = msg_plain;
	r->msg_len = strlen(msg_plain);
	r->return_max = 1 << 20;
}

static const char failure_status[] =
    "Original-Envelope-Id: QQ+314159\r\n"
    "Reporting-MTA: dns; mx.petrel.test\r\n"
    "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    "\r\n"
    "Original-Recipient: rfc822;Bob+X@Example.NET\r\n"
    "Final-Recipient: rfc822;bob@example.net\r\n"
    "Action: failed\r\n"
    "Status: 5.1.1\r\n"
    "Remote-MTA: dns; mx.example.net\r\n"
    "Diagnostic-Code: smtp; 550 5.1.1 <bob@example.net>: no such user\r\n"
    "Last-Attempt-Date: Tue, 14 Nov 2023 22:14:20 +0000\r\n"
    "\r\n"
    "Final-Recipient: rfc822;carol@example.org\r\n"
    "Action: failed\r\n"
    "Status: 5.4.7\r\n"
    "Diagnostic-Code: X-Petrel; delivery time expired\r\n";

static void
assert_top_header(const struct t_report *t, const char *subject,
    const char *kind, const char *report_type)
{
	char	 want[1024];

	snprintf(want, sizeof(want),
	    "From: Mail Delivery System <MAILER-DAEMON@mx.petrel.test>\r\n"
	    "To: <ann@example.com>\r\n"
	    "Subject: %s\r\n"
	    "Date: Tue, 14 Nov 2023 23:13:20 +0000\r\n"
	    "Message-ID: <2QF7K1XG3M000.%s.1700003600@mx.petrel.test>\r\n"
	    "Auto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=%s;\r\n"
	    "\tboundary=\"%s\"\r\n", subject, kind, report_type, t->boundary);
	assert_string_equal(t->top.head, want);
	assert_string_equal(t->top.body + strlen(t->top.body) -
	    strlen("--\r\n"), "--\r\n");
}

static void
assert_part_head(const struct t_part *p, const char *type, const char *cte)
{
	char	 v[256];

	assert_non_null(t_field(p->head, "Content-Type", v, sizeof(v)));
	assert_string_equal(v, type);
	if (cte == NULL)
		assert_null(t_field(p->head, "Content-Transfer-Encoding", v,
		    sizeof(v)));
	else {
		assert_non_null(t_field(p->head, "Content-Transfer-Encoding",
		    v, sizeof(v)));
		assert_string_equal(v, cte);
	}
}

static void
test_failure_full(void **state)
{
	struct dsn_rcpt	 rc[2] = { rcpt_bob, rcpt_carol };
	struct dsn_report r;
	struct dsn_out	 o;
	struct t_report	 t;

	(void)state;
	for (int ret = SMTP_RET_NONE; ret <= SMTP_RET_FULL; ret++) {
		report_base(&r, rc, 2);
		r.ret = ret;
		assert_int_equal(dsn_format(&r, &o), 0);
		assert_false(o.eightbit);
		assert_false(o.smtputf8);
		t_parse(&o, &t);
		assert_string_equal(t.boundary, "b0undary/X");
		assert_top_header(&t, "Undelivered Mail Returned to Sender",
		    "failure", "delivery-status");
		assert_int_equal(t.nparts, 3);
		assert_part_head(&t.part[0], "text/plain; charset=us-ascii",
		    NULL);
		assert_non_null(strstr(t.part[0].body,
		    "\r\n<bob@example.net>: delivery failed (5.1.1)\r\n"
		    "    Remote server: mx.example.net\r\n"
		    "    550 5.1.1 <bob@example.net>: no such user\r\n"));
		assert_non_null(strstr(t.part[0].body,
		    "\r\n<carol@example.org>: delivery failed (5.4.7)\r\n"
		    "    delivery time expired\r\n"));
		assert_non_null(strstr(t.part[0].body,
		    "Your message is attached.\r\n"));
		assert_part_head(&t.part[1], "message/delivery-status", NULL);
		assert_string_equal(t.part[1].body, failure_status);
		assert_part_head(&t.part[2], "message/rfc822", NULL);
		assert_string_equal(t.part[2].body, msg_plain);
		t_free(&t);
		dsn_out_fini(&o);
		assert_null(o.text);
	}
}

static void
test_failure_hdrs(void **state)
{
	struct dsn_rcpt	 rc[2] = { rcpt_bob, rcpt_carol };
	struct dsn_report r;
	struct dsn_out	 o;
	struct t_report	 t;

	(void)state;
	report_base(&r, rc, 2);
	r.ret = SMTP_RET_HDRS;
	assert_int_equal(dsn_format(&r, &o), 0);
	t_parse(&o, &t);
	assert_int_equal(t.nparts, 3);
	assert_string_equal(t.part[1].body, failure_status);
	assert_part_head(&t.part[2], "text/rfc822-headers", NULL);
	assert_int_equal(strlen(t.part[2].body), MSG_PLAIN_HDRS);
	assert_memory_equal(t.part[2].body, msg_plain, MSG_PLAIN_HDRS);
	assert_non_null(strstr(t.part[0].body,
	    "The header of your message is attached.\r\n"));
	t_free(&t);
	dsn_out_fini(&o);
}

/* The full message goes back up to return_max bytes, headers beyond. */
static void
test_failure_cap(void **state)
{
	static const struct {
		size_t	 max;
		const char *type;	/* NULL: no third part */
		size_t	 len;		/* bytes of msg_plain returned */
	} cases[] = {
		{ sizeof(msg_plain) - 1, "message/rfc822",
		  sizeof(msg_plain) - 1 },
		{ sizeof(msg_plain) - 2, "text/rfc822-headers",
		  MSG_PLAIN_HDRS },
		{ MSG_PLAIN_HDRS, "text/rfc822-headers", MSG_PLAIN_HDRS },
		/* headers cut to whole lines: drop "Message-ID: ..." */
		{ MSG_PLAIN_HDRS - 1, "text/rfc822-headers", 85 },
		{ 29, "text/rfc822-headers", 29 },
		{ 28, NULL, 0 },
		{ 0, NULL, 0 },
	};
	struct dsn_rcpt	 rc[1] = { rcpt_bob };
	struct dsn_report r;
	struct dsn_out	 o;
	struct t_report	 t;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		report_base(&r, rc, 1);
		r.ret = SMTP_RET_FULL;
		r.return_max = cases[i].max;
		assert_int_equal(dsn_format(&r, &o), 0);
		t_parse(&o, &t);
		if (cases[i].type == NULL) {
			assert_int_equal(t.nparts, 2);
			assert_null(strstr(t.part[0].body, "attached"));
		} else {
			assert_int_equal(t.nparts, 3);
			assert_part_head(&t.part[2], cases[i].type, NULL);
			assert_int_equal(strlen(t.part[2].body), cases[i].len);
			assert_memory_equal(t.part[2].body, msg_plain,
			    cases[i].len);
		}
		t_free(&t);
		dsn_out_fini(&o);
	}
}

static void
test_delay(void **state)
{
	struct dsn_rcpt	 rc = {
		.addr = "dave@example.net",
		.orcpt = "rfc822;dave@example.net",
		.action = DSN_ACTION_DELAYED,
		.status = "4.4.1",
		.remote_mta = "mx2.example.net",
		.diag = "421 4.4.1 connect timeout",
		.last_attempt = T_NOW - 60,
		.retry_until = T_ARRIVAL + 5 * 86400,
	};
	struct dsn_report r;
	struct dsn_out	 o;
	struct t_report	 t;

	(void)state;
	report_base(&r, &rc, 1);
	r.ret = SMTP_RET_FULL;	/* only failures return the message */
	r.envid = NULL;
	assert_int_equal(dsn_format(&r, &o), 0);
	t_parse(&o, &t);
	assert_top_header(&t, "Delayed Mail (still being retried)", "delay",
	    "delivery-status");
	assert_int_equal(t.nparts, 3);
	assert_non_null(strstr(t.part[0].body,
	    "<dave@example.net>: delivery delayed, still trying (4.4.1)\r\n"
	    "    Remote server: mx2.example.net\r\n"
	    "    Will retry until: Sun, 19 Nov 2023 22:13:20 +0000\r\n"
	    "    421 4.4.1 connect timeout\r\n"));
	assert_string_equal(t.part[1].body,
	    "Reporting-MTA: dns; mx.petrel.test\r\n"
	    "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
	    "\r\n"
	    "Original-Recipient: rfc822;dave@example.net\r\n"
	    "Final-Recipient: rfc822;dave@example.net\r\n"
	    "Action: delayed\r\n"
	    "Status: 4.4.1\r\n"
	    "Remote-MTA: dns; mx2.example.net\r\n"
	    "Diagnostic-Code: smtp; 421 4.4.1 connect timeout\r\n"
	    "Last-Attempt-Date: Tue, 14 Nov 2023 23:12:20 +0000\r\n"
	    "Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000\r\n");
	assert_part_head(&t.part[2], "text/rfc822-headers", NULL);
	assert_int_equal(strlen(t.part[2].body), MSG_PLAIN_HDRS);
	t_free(&t);
	dsn_out_fini(&o);
}

static void
test_success(void **state)
{
	struct dsn_rcpt	 rc[3] = {
		{ .addr = "bob@example.net", .action = DSN_ACTION_DELIVERED,
		  .status = "2.0.0", .last_attempt = T_NOW },
		{ .addr = "list@example.net", .action = DSN_ACTION_EXPANDED },
		{ .addr = "old@example.org", .action = DSN_ACTION_RELAYED,
		  .status = "2.0.0", .remote_mta = "legacy.example.org",
		  .diag = "250 2.0.0 Ok: queued as 123",
		  .retry_until = T_NOW },	/* ignored: not delayed */
	};
	struct dsn_report r;
	struct dsn_out	 o;
	struct t_report	 t;

	(void)state;
	report_base(&r, rc, 3);
	assert_int_equal(dsn_format(&r, &o), 0);
	t_parse(&o, &t);
	assert_top_header(&t, "Successful Mail Delivery Report", "success",
	    "delivery-status");
	assert_int_equal(t.nparts, 3);
	assert_string_equal(t.part[1].body,
	    "Original-Envelope-Id: QQ+314159\r\n"
	    "Reporting-MTA: dns; mx.petrel.test\r\n"
	    "Arrival-Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
	    "\r\n"
	    "Final-Recipient: rfc822;bob@example.net\r\n"
	    "Action: delivered\r\n"
	    "Status: 2.0.0\r\n"
	    "Last-Attempt-Date: Tue, 14 Nov 2023 23:13:20 +0000\r\n"
	    "\r\n"
	    "Final-Recipient: rfc822;list@example.net\r\n"
	    "Action: expanded\r\n"
	    "Status: 2.0.0\r\n"
	    "\r\n"
	    "Final-Recipient: rfc822;old@example.org\r\n"
	    "Action: relayed\r\n"
	    "Status: 2.0.0\r\n"
	    "Remote-MTA: dns; legacy.example.org\r\n"
	    "Diagnostic-Code: smtp; 250 2.0.0 Ok: queued as 123\r\n");
	assert_part_head(&t.part[2], "text/rfc822-headers", NULL);
	assert_non_null(strstr(t.part[0].body,
	    "<bob@example.net>: delivered (2.0.0)\r\n"));
	t_free(&t);
	dsn_out_fini(&o);
}

/* A mixed report: failure wins over delay, delay over success. */
static void
test_kind_order(void **state)
{
	struct dsn_rcpt	 rc[3] = {
		{ .addr = "a@x.test", .action = DSN_ACTION_DELIVERED },
		{ .addr = "b@x.test", .action = DSN_ACTION_DELAYED,
		  .status = "bogus" },
		{ .addr = "c@x.test", .action = DSN_ACTION_FAILED,
		  .status = "5.1.1.1" },
	};
	static const struct {
		enum dsn_action a;
		const char *in, *want;
	} st[] = {
		{ DSN_ACTION_FAILED, "5.1.1", "5.1.1" },
		{ DSN_ACTION_FAILED, "4.4.7", "4.4.7" },
		{ DSN_ACTION_FAILED, "2.0.0", "5.0.0" },
		{ DSN_ACTION_FAILED, "5.999.999", "5.999.999" },
		{ DSN_ACTION_FAILED, "5.1000.1", "5.0.0" },
		{ DSN_ACTION_FAILED, "5..1", "5.0.0" },
		{ DSN_ACTION_FAILED, "3.1.1", "5.0.0" },
		{ DSN_ACTION_FAILED, NULL, "5.0.0" },
		{ DSN_ACTION_DELAYED, "4.4.1", "4.4.1" },
		{ DSN_ACTION_DELAYED, "5.1.1", "4.0.0" },
		{ DSN_ACTION_DELIVERED, "2.1.5", "2.1.5" },
		{ DSN_ACTION_DELIVERED, "5.1.1", "2.0.0" },
		{ DSN_ACTION_RELAYED, "4.0.0", "2.0.0" },
		{ DSN_ACTION_EXPANDED, "2.0.0 ", "2.0.0" },
	};
	struct dsn_rcpt	 one;
	struct dsn_report r;
	struct dsn_out	 o;
	struct t_report	 t;
	char		 v[128];

	(void)state;
	report_base(&r, rc, 2);
	assert_int_equal(dsn_format(&r, &o), 0);
	t_parse(&o, &t);
	assert_string_equal(t_field(t.top.head, "Subject", v, sizeof(v)),
	    "Delayed Mail (still being retried)");
	/* malformed status: x.0.0 by action */
	assert_non_null(strstr(t.part[1].body, "Action: delayed\r\n"
	    "Status: 4.0.0\r\n"));
	t_free(&t);
	dsn_out_fini(&o);

	report_base(&r, rc, 3);
	assert_int_equal(dsn_format(&r, &o), 0);
	t_parse(&o, &t);
	assert_string_equal(t_field(t.top.head, "Subject", v, sizeof(v)),
	    "Undelivered Mail Returned to Sender");
	assert_non_null(strstr(t.part[1].body, "Action: failed\r\n"
	    "Status: 5.0.0\r\n"));
	assert_part_head(&t.part[2], "message/rfc822", NULL);
	t_free(&t);
	dsn_out_fini(&o);

	/* Status: well-formed (RFC 3463) and of the action's class */
	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		memset(&one, 0, sizeof(one));
		one.addr = "a@x.test";
		one.action = st[i].a;
		one.status = st[i].in;
		report_base(&r, &one, 1);
		assert_int_equal(dsn_format(&r, &o), 0);
		t_parse(&o, &t);
		assert_string_equal(t_field(t.part[1].body, "Status", v,
		    sizeof(v)), st[i].want);
		t_free(&t);
		dsn_out_fini(&o);
	}
}

/* Remote text: one line, no controls, no 8-bit, capped, codes joined. */
static void
test_diag_sanitised(void **state)
{
	char		 diag[4096], v[2048], *line;
	struct dsn_rcpt	 rc = rcpt_bob;
	struct dsn_report r;
	struct dsn_out	 o;
	struct t_report	 t;
	size_t		 n = 0;

	(void)state;
	n += (size_t)snprintf(diag + n, sizeof(diag) - n,
	    "550-5.7.1 first\r\n550-5.7.1 second\tpart\x01\x7f\r\n"
	    "550 5.7.1 \xc3\xa9t\xc3\xa9 \r\nInjected: header\r\n\r\n");
	for (; n < sizeof(diag) - 1; n++)
		diag[n] = (char)('a' + n % 26);
	diag[n] = '\0';
	rc.diag = diag;
	report_base(&r, &rc, 1);
	assert_int_equal(dsn_format(&r, &o), 0);
	t_parse(&o, &t);
	assert_null(strstr(o.text, "\r\nInjected:"));
	assert_non_null(t_field(t.part[1].body, "Diagnostic-Code", v,
	    sizeof(v)));
	assert_int_equal(strlen(v), strlen("smtp; ") + DSN_DIAG_MAX);
	n = strlen("smtp; 550 5.7.1 first second part ??t?? Injected: header ");
	assert_memory_equal(v, "smtp; 550 5.7.1 first second part "
	    "??t?? Injected: header ", n);
	for (const char *p = v + n; *p != '\0'; p++)
		assert_true(*p >= 'a' && *p <= 'z');
	/* the text part wraps it, every line indented */
	line = strstr(t.part[0].body, "    550 5.7.1 first second part");
	assert_non_null(line);
	assert_false(o.eightbit);
	t_free(&t);
	dsn_out_fini(&o);

	/* exactly at the cap, and empty / all-blank text leaves no field */
	memset(diag, 'x', DSN_DIAG_MAX);
	diag[DSN_DIAG_MAX] = '\0';
	assert_int_equal(dsn_format(&r, &o), 0);
	t_parse(&o, &t);
	assert_non_null(t_field(t.part[1].body, "Diagnostic-Code", v,
	    sizeof(v)));
	assert_int_equal(strlen(v), strlen("X-Petrel; ") + DSN_DIAG_MAX);
	t_free(&t);
	dsn_out_fini(&o);
	snprintf(diag, sizeof(diag), " \r\n\t ");
	assert_int_equal(dsn_format(&r, &o), 0);
	assert_null(strstr(o.text, "Diagnostic-Code"));
	dsn_out_fini(&o);
}

/* ENVID and ORCPT are xtext-decoded unless that would yield controls. */
static void
test_xtext_fields(void **state)
{
	static const struct {
		const char *envid, *orcpt;
		const char *want_envid, *want_orcpt;	/* NULL: absent */
	} cases[] = {
		{ "A+2BB+3DC", "rfc822;a+2Bb@x.test", "A+B=C",
		  "rfc822;a+b@x.test" },
		{ "x+0D+0AEvil:+20yes", "rfc822;x+0AEvil@x.test",
		  "x+0D+0AEvil:+20yes", "rfc822;x+0AEvil@x.test" },
		{ "bad+zz", "rfc822;bad+2", "bad+zz", "rfc822;bad+2" },
		{ "", "noSemicolon", NULL, "unknown;noSemicolon" },
		{ NULL, "x-weird type;a@b", NULL, "unknown;a@b" },
		{ "hi+C3+A9", "utf-8;a+C3+A9@x.test", "hi+C3+A9",
		  "utf-8;a+C3+A9@x.test" },	/* no 8-bit without UTF8 */
	};
	struct dsn_rcpt	 rc = rcpt_bob;
	struct dsn_report r;
	struct dsn_out	 o;
	struct t_report	 t;
	char		 v[600];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc.orcpt = cases[i].orcpt;
		report_base(&r, &rc, 1);
		r.envid = cases[i].envid;
		assert_int_equal(dsn_format(&r, &o), 0);
		t_parse(&o, &t);
		if (cases[i].want_envid == NULL)
			assert_null(t_field(t.part[1].body,
			    "Original-Envelope-Id", v, sizeof(v)));
		else
			assert_string_equal(t_field(t.part[1].body,
			    "Original-Envelope-Id", v, sizeof(v)),
			    cases[i].want_envid);
		assert_string_equal(t_field(t.part[1].body,
		    "Original-Recipient", v, sizeof(v)), cases[i].want_orcpt);
		assert_false(o.eightbit);
		t_free(&t);
		dsn_out_fini(&o);
	}
}

/* 8-bit originals: headers only (QP if need be) unless SMTPUTF8. */
static void
test_8bit(void **state)
{
	static const char msg8[] =
	    "Subject: caf\xc3\xa9\r\n"
	    "X-Pad: a=b \r\n"
	    "\r\n"
	    "\xc3\xa9t\xc3\xa9\r\n";
	struct dsn_rcpt	 rc = rcpt_bob;
	struct dsn_report r;
	struct dsn_out	 o;
	struct t_report	 t;
	char		 v[256];

	(void)state;
	report_base(&r, &rc, 1);
	r.msg = msg8;
	r.msg_len = strlen(msg8);
	assert_int_equal(dsn_format(&r, &o), 0);
	assert_false(o.eightbit);
	t_parse(&o, &t);
	assert_part_head(&t.part[2], "text/rfc822-headers",
	    "quoted-printable");
	assert_string_equal(t.part[2].body,
	    "Subject: caf=C3=A9\r\nX-Pad: a=3Db=20\r\n");
	t_free(&t);
	dsn_out_fini(&o);

	/* SMTPUTF8: message/global, 8bit, UTF-8 address type */
	rc.addr = "j\xc3\xbcrgen@example.net";
	rc.orcpt = "utf-8;j+C3+BCrgen@example.net";
	r.smtputf8 = true;
	r.envid = "caf+C3+A9";
	assert_int_equal(dsn_format(&r, &o), 0);
	assert_true(o.eightbit);
	assert_false(o.smtputf8);	/* To: is ASCII */
	t_parse(&o, &t);
	assert_top_header(&t, "Undelivered Mail Returned to Sender",
	    "failure", "global-delivery-status");
	assert_part_head(&t.part[0], "text/plain; charset=utf-8", "8bit");
	assert_part_head(&t.part[1], "message/global-delivery-status", "8bit");
	assert_string_equal(t_field(t.part[1].body, "Final-Recipient", v,
	    sizeof(v)), "utf-8;j\xc3\xbcrgen@example.net");
	assert_string_equal(t_field(t.part[1].body, "Original-Recipient", v,
	    sizeof(v)), "utf-8;j\xc3\xbcrgen@example.net");
	assert_string_equal(t_field(t.part[1].body, "Original-Envelope-Id", v,
	    sizeof(v)), "caf\xc3\xa9");
	assert_part_head(&t.part[2], "message/global", "8bit");
	assert_string_equal(t.part[2].body, msg8);
	t_free(&t);
	dsn_out_fini(&o);

	/* SMTPUTF8 but all ASCII: the plain types */
	rc = rcpt_bob;
	report_base(&r, &rc, 1);
	r.smtputf8 = true;
	r.from = "\xc3\xa4nn@example.com";
	assert_int_equal(dsn_format(&r, &o), 0);
	assert_true(o.eightbit);
	assert_true(o.smtputf8);	/* To: is not ASCII */
	t_parse(&o, &t);
	assert_string_equal(t_field(t.top.head, "To", v, sizeof(v)),
	    "<\xc3\xa4nn@example.com>");
	assert_part_head(&t.part[1], "message/delivery-status", NULL);
	assert_part_head(&t.part[2], "message/rfc822", NULL);
	t_free(&t);
	dsn_out_fini(&o);
}

/* Bytes that cannot go verbatim: bare CR/LF, NUL, long lines. */
static void
test_unclean_original(void **state)
{
	static const struct {
		const char *msg;
		size_t	 len;
		const char *type, *cte, *body;
	} cases[] = {
		{ "A: b\r\n\r\nbare\nlf\r\n", 18, "text/rfc822-headers", NULL,
		  "A: b\r\n" },
		{ "A: b\r\n\r\nnul\0x\r\n", 15, "text/rfc822-headers", NULL,
		  "A: b\r\n" },
		{ "A: b\rc\r\nD: e\r\n\r\nx\r\n", 19, "text/rfc822-headers",
		  "quoted-printable", "A: b=0Dc\r\nD: e\r\n" },
		{ "A: b\nC: d\n\nbody\n", 16, "text/rfc822-headers",
		  "quoted-printable", "A: b=0AC: d=0A=0Abody=0A" },
		{ "no header end, no CRLF", 22, "message/rfc822", NULL,
		  "no header end, no CRLF\r\n" },
		{ "A: b\r\n", 6, "message/rfc822", NULL, "A: b\r\n" },
	};
	struct dsn_rcpt	 rc = rcpt_bob;
	struct dsn_report r;
	struct dsn_out	 o;
	struct t_report	 t;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		report_base(&r, &rc, 1);
		r.msg = cases[i].msg;
		r.msg_len = cases[i].len;
		assert_int_equal(dsn_format(&r, &o), 0);
		t_parse(&o, &t);
		assert_int_equal(t.nparts, 3);
		assert_part_head(&t.part[2], cases[i].type, cases[i].cte);
		/* t_split ends a body before the delimiter's CRLF */
		assert_int_equal(strncmp(t.part[2].body, cases[i].body,
		    strlen(t.part[2].body)), 0);
		t_free(&t);
		dsn_out_fini(&o);
	}
}

/* A line of 998 bytes goes verbatim, 999 does not; QP lines stay short. */
static void
test_line_limits(void **state)
{
	char		 msg[2100];
	struct dsn_rcpt	 rc = rcpt_bob;
	struct dsn_report r;
	struct dsn_out	 o;
	struct t_report	 t;

	(void)state;
	for (size_t len = 998; len <= 999; len++) {
		size_t	 n = 0;

		n += (size_t)snprintf(msg, sizeof(msg), "A: b\r\n\r\n");
		memset(msg + n, 'x', len);
		n += len;
		memcpy(msg + n, "\r\n", 2);
		n += 2;
		report_base(&r, &rc, 1);
		r.msg = msg;
		r.msg_len = n;
		assert_int_equal(dsn_format(&r, &o), 0);
		t_parse(&o, &t);
		assert_part_head(&t.part[2], len == 998 ? "message/rfc822" :
		    "text/rfc822-headers", NULL);
		t_free(&t);
		dsn_out_fini(&o);
	}
	/* a 2000-byte header line: quoted-printable, lines <= 76 */
	memcpy(msg, "X: ", 3);
	memset(msg + 3, 'y', 2000);
	memcpy(msg + 2003, "\r\n\r\n", 4);
	r.msg_len = 2007;
	assert_int_equal(dsn_format(&r, &o), 0);
	t_parse(&o, &t);
	assert_part_head(&t.part[2], "text/rfc822-headers",
	    "quoted-printable");
	for (const char *l = t.part[2].body; *l != '\0'; ) {
		const char *e = strstr(l, "\r\n");

		assert_non_null(e);
		assert_true(e - l <= 76);
		l = e + 2;
	}
	t_free(&t);
	dsn_out_fini(&o);
}

/* A line that starts with the delimiter forces another boundary. */
static void
test_boundary_collision(void **state)
{
	static const char msg[] =
	    "A: b\r\n\r\n--b0undary/X\r\n--b0undary/X0\r\n--b0undary/X1--\r\n";
	char		 lb[100];
	struct dsn_rcpt	 rc = rcpt_bob;
	struct dsn_report r;
	struct dsn_out	 o;
	struct t_report	 t;

	(void)state;
	report_base(&r, &rc, 1);
	r.msg = msg;
	r.msg_len = strlen(msg);
	assert_int_equal(dsn_format(&r, &o), 0);
	t_parse(&o, &t);
	assert_string_equal(t.boundary, "b0undary/X2");
	assert_int_equal(t.nparts, 3);
	assert_string_equal(t.part[2].body, msg);
	t_free(&t);
	dsn_out_fini(&o);

	/* a 70-byte boundary is cut to make room */
	memset(lb, 'q', 70);
	lb[70] = '\0';
	{
		char	 m2[200];

		snprintf(m2, sizeof(m2), "A: b\r\n\r\n--%.70s\r\n", lb);
		r.boundary = lb;
		r.msg = m2;
		r.msg_len = strlen(m2);
		assert_int_equal(dsn_format(&r, &o), 0);
		t_parse(&o, &t);
		assert_int_equal(strlen(t.boundary), 63);
		assert_memory_equal(t.boundary, lb, 62);
		t_free(&t);
		dsn_out_fini(&o);
	}
}

static void
test_invalid(void **state)
{
	struct dsn_rcpt	 rc = rcpt_bob;
	struct dsn_report r;
	struct dsn_out	 o;
	char		 b71[72];

	(void)state;
	memset(b71, 'b', 71);
	b71[71] = '\0';
	for (int i = 0; i < 11; i++) {
		report_base(&r, &rc, 1);
		switch (i) {
		case 0: r.from = ""; break;		/* bounce of a bounce */
		case 1: r.from = NULL; break;
		case 2: r.nrcpt = 0; break;
		case 3: r.host = "bad host"; break;
		case 4: r.host = ""; break;
		case 5: r.qid = "id/../x"; break;
		case 6: r.boundary = ""; break;
		case 7: r.boundary = "has space"; break;
		case 8: r.boundary = b71; break;
		case 9: r.from = "\x01\x02"; break;
		case 10: r.rcpt = NULL; break;
		}
		o.text = (char *)"junk";
		o.len = 4;
		assert_int_equal(dsn_format(&r, &o), -1);
		assert_null(o.text);
		assert_int_equal(o.len, 0);
	}
	b71[70] = '\0';		/* 70 is fine */
	report_base(&r, &rc, 1);
	r.boundary = b71;
	assert_int_equal(dsn_format(&r, &o), 0);
	dsn_out_fini(&o);
}

/* The UTC date formatter, through the Date field. */
static void
test_dates(void **state)
{
	static const struct {
		int64_t	 t;
		const char *want;
	} cases[] = {
		{ 0, "Thu, 01 Jan 1970 00:00:00 +0000" },
		{ -5, "Thu, 01 Jan 1970 00:00:00 +0000" },
		{ 951782400, "Tue, 29 Feb 2000 00:00:00 +0000" },
		{ 951868799, "Tue, 29 Feb 2000 23:59:59 +0000" },
		{ 1709164800, "Thu, 29 Feb 2024 00:00:00 +0000" },
		{ 4107542399, "Sun, 28 Feb 2100 23:59:59 +0000" },
		{ 4107542400, "Mon, 01 Mar 2100 00:00:00 +0000" },
		{ 253402300799, "Fri, 31 Dec 9999 23:59:59 +0000" },
		{ INT64_MAX, "Fri, 31 Dec 9999 23:59:59 +0000" },
	};
	struct dsn_rcpt	 rc = rcpt_bob;
	struct dsn_report r;
	struct dsn_out	 o;
	struct t_report	 t;
	char		 v[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		report_base(&r, &rc, 1);
		r.now = cases[i].t;
		assert_int_equal(dsn_format(&r, &o), 0);
		t_parse(&o, &t);
		assert_string_equal(t_field(t.top.head, "Date", v, sizeof(v)),
		    cases[i].want);
		t_free(&t);
		dsn_out_fini(&o);
	}
}

static void
test_empty_message(void **state)
{
	struct dsn_rcpt	 rc = rcpt_bob;
	struct dsn_report r;
	struct dsn_out	 o;
	struct t_report	 t;

	(void)state;
	report_base(&r, &rc, 1);
	r.msg = NULL;
	r.msg_len = 0;
	r.arrival = 0;		/* no Arrival-Date */
	assert_int_equal(dsn_format(&r, &o), 0);
	t_parse(&o, &t);
	assert_int_equal(t.nparts, 2);
	assert_null(strstr(t.part[1].body, "Arrival-Date"));
	t_free(&t);
	dsn_out_fini(&o);
	/* a message with an empty header section */
	r.msg = "\r\nbody\r\n";
	r.msg_len = 8;
	r.ret = SMTP_RET_HDRS;
	assert_int_equal(dsn_format(&r, &o), 0);
	t_parse(&o, &t);
	assert_int_equal(t.nparts, 2);
	t_free(&t);
	dsn_out_fini(&o);
}

static void
test_report_init(void **state)
{
	struct envelope	 e;
	struct dsn_report r;

	(void)state;
	envelope_init(&e);
	snprintf(e.id, sizeof(e.id), "2QF7K1XG3M000");
	e.arrival_usec = UINT64_C(1700000000123456);
	envelope_set(&e.from, "ann@example.com");
	envelope_set(&e.envid, "QQ+2B1");
	e.ret = SMTP_RET_HDRS;
	e.smtputf8 = true;
	envelope_add_rcpt(&e, "bob@example.net", NULL, 0);
	dsn_report_init(&r, &e);
	assert_ptr_equal(r.qid, e.id);
	assert_ptr_equal(r.from, e.from);
	assert_ptr_equal(r.envid, e.envid);
	assert_int_equal(r.ret, SMTP_RET_HDRS);
	assert_true(r.smtputf8);
	assert_true(r.arrival == T_ARRIVAL);
	assert_null(r.host);
	assert_null(r.rcpt);
	assert_int_equal(r.nrcpt, 0);
	assert_true(r.now == 0);
	envelope_fini(&e);
}

/* RFC 3461 4.1 for every NOTIFY combination, action and sender. */
static void
test_needed(void **state)
{
	static const enum dsn_action actions[] = { DSN_ACTION_FAILED,
	    DSN_ACTION_DELAYED, DSN_ACTION_DELIVERED, DSN_ACTION_RELAYED,
	    DSN_ACTION_EXPANDED };
	static const char *const names[] = { "failed", "delayed",
	    "delivered", "relayed", "expanded" };
	const unsigned S = SMTP_NOTIFY_SUCCESS, F = SMTP_NOTIFY_FAILURE;
	const unsigned D = SMTP_NOTIFY_DELAY, N = SMTP_NOTIFY_NEVER;
	const struct {
		unsigned notify;
		bool	 want[5];	/* in the order of actions[] */
	} cases[] = {
		{ 0,		{ true,  true,  false, false, false } },
		{ N,		{ false, false, false, false, false } },
		{ S,		{ false, false, true,  true,  true  } },
		{ F,		{ true,  false, false, false, false } },
		{ D,		{ false, true,  false, false, false } },
		{ S | F,	{ true,  false, true,  true,  true  } },
		{ S | D,	{ false, true,  true,  true,  true  } },
		{ F | D,	{ true,  true,  false, false, false } },
		{ S | F | D,	{ true,  true,  true,  true,  true  } },
		/* NEVER with others cannot parse; it still means none */
		{ N | S | F | D, { false, false, false, false, false } },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (size_t a = 0; a < 5; a++) {
			assert_int_equal(dsn_needed("ann@example.com",
			    cases[i].notify, actions[a]), cases[i].want[a]);
			/* never a report about a report */
			assert_false(dsn_needed("", cases[i].notify,
			    actions[a]));
			assert_false(dsn_needed(NULL, cases[i].notify,
			    actions[a]));
		}
	for (size_t a = 0; a < 5; a++)
		assert_string_equal(dsn_action_name(actions[a]), names[a]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failure_full),
		cmocka_unit_test(test_failure_hdrs),
		cmocka_unit_test(test_failure_cap),
		cmocka_unit_test(test_delay),
		cmocka_unit_test(test_success),
		cmocka_unit_test(test_kind_order),
		cmocka_unit_test(test_diag_sanitised),
		cmocka_unit_test(test_xtext_fields),
		cmocka_unit_test(test_8bit),
		cmocka_unit_test(test_unclean_original),
		cmocka_unit_test(test_line_limits),
		cmocka_unit_test(test_boundary_collision),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_empty_message),
		cmocka_unit_test(test_report_init),
		cmocka_unit_test(test_needed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
