/*
 * fuzz_client_parse.c: libFuzzer target for smtp/client_parse.c. The input
 * is what a server sends: replies are parsed one after another, each one
 * checked against invariants and fed to the EHLO parser. Copies are exact
 * size with no NUL, so a read past len trips ASan.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/client_parse.h"

/* Not assert(): must hold under NDEBUG too. */
#define CHECK(x)	do { if (!(x)) abort(); } while (0)

/* Generous limits, and small ones to reach the limit paths. */
#define BIG_LINES	1000
#define BIG_BYTES	65536
#define SMALL_LINES	4
#define SMALL_BYTES	200

#define KNOWN_AUTH	(SMTP_CLIENT_AUTH_PLAIN | SMTP_CLIENT_AUTH_LOGIN | \
			 SMTP_CLIENT_AUTH_SCRAM_SHA_256)

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An exact-size copy; NULL only for size 0. */
static char *
copy(const char *s, size_t len)
{
	char	*p;

	if (len == 0)
		return NULL;
	if ((p = malloc(len)) == NULL)
		abort();
	memcpy(p, s, len);
	return p;
}

static bool
inside(const char *p, size_t n, const char *s, size_t len)
{
	return p >= s && n <= len && p - s <= (ptrdiff_t)(len - n);
}

static void
check_caps(const struct smtp_resp *r)
{
	struct smtp_client_caps	 caps, zero;
	const char		*t;
	size_t			 pos = 0, tlen;
	int			 rc;

	memset(&zero, 0, sizeof(zero));
	rc = smtp_client_caps_parse(r, &caps);
	CHECK(rc == 0 || rc == -1);
	CHECK((rc == 0) == (r->code == 250));
	if (rc == -1)
		CHECK(memcmp(&caps, &zero, sizeof(caps)) == 0);
	CHECK((caps.auth & ~KNOWN_AUTH) == 0);
	CHECK(caps.size || caps.size_max == 0);

	/* Line by line, each from an exact copy. */
	while (smtp_resp_line_next(r, &pos, &t, &tlen)) {
		char	*c = copy(t, tlen);

		memset(&caps, 0, sizeof(caps));
		smtp_client_caps_line(c, tlen, &caps);
		CHECK((caps.auth & ~KNOWN_AUTH) == 0);
		free(c);
	}
}

/* One reply parsed from s[0..len): everything it says must hold. */
static void
check_resp(const struct smtp_resp *r, const char *s, size_t consumed,
    size_t max_lines, size_t max_bytes)
{
	struct smtp_resp r2;
	const char	*t;
	char		 small[8], *full, *pre;
	size_t		 pos = 0, tlen, n = 0, total, c2, elen, i;
	enum smtp_resp_class cls;

	CHECK(r->raw == s && r->raw_len == consumed);
	CHECK(r->nlines >= 1 && r->nlines <= max_lines);
	CHECK(consumed <= max_bytes);
	CHECK(consumed <= r->nlines * SMTP_RESP_LINE_MAX);
	CHECK(s[consumed - 1] == '\n');
	CHECK(r->code >= 0 && r->code <= 999);
	cls = smtp_resp_classify(r->code);
	CHECK(cls == SMTP_RESP_SUCCESS || cls == SMTP_RESP_TEMPFAIL ||
	    cls == SMTP_RESP_PERMFAIL || cls == SMTP_RESP_PROTOCOL);
	CHECK((cls == SMTP_RESP_SUCCESS) == (r->code / 100 == 2));

	elen = strnlen(r->enh, sizeof(r->enh));
	CHECK(elen < sizeof(r->enh));
	if (elen > 0) {
		CHECK(elen >= 5);
		CHECK(r->enh[0] == '0' + r->code / 100);
		CHECK(cls == SMTP_RESP_SUCCESS || cls == SMTP_RESP_TEMPFAIL ||
		    cls == SMTP_RESP_PERMFAIL);
	}
	CHECK(inside(r->text, r->text_len, s, consumed));

	while (smtp_resp_line_next(r, &pos, &t, &tlen)) {
		CHECK(inside(t, tlen, s, consumed));
		for (i = 0; i < tlen; i++)
			CHECK(t[i] != '\n' && t[i] != '\r' && t[i] != '\0');
		if (n == 0)
			CHECK(t == r->text && tlen == r->text_len);
		n++;
	}
	CHECK(n == r->nlines);
	CHECK(pos == consumed);

	/* The joined text, whole and cut. */
	total = smtp_resp_text(r, NULL, 0);
	full = malloc(total + 1);
	CHECK(full != NULL);
	CHECK(smtp_resp_text(r, full, total + 1) == total);
	CHECK(strlen(full) == total);
	CHECK(smtp_resp_text(r, small, sizeof(small)) == total);
	CHECK(strlen(small) == (total < sizeof(small) ? total :
	    sizeof(small) - 1));
	CHECK(memcmp(small, full, strlen(small)) == 0);
	free(full);

	/* A reply does not depend on what follows it... */
	full = copy(s, consumed);
	CHECK(smtp_resp_parse(full, consumed, max_lines, max_bytes, &r2,
	    &c2) == SMTP_RESP_PARSE_OK);
	CHECK(c2 == consumed && r2.code == r->code && r2.nlines == r->nlines);
	CHECK(strcmp(r2.enh, r->enh) == 0 && r2.text_len == r->text_len);
	free(full);
	/* ...and is not complete one byte early. */
	pre = copy(s, consumed - 1);
	CHECK(smtp_resp_parse(pre, consumed - 1, max_lines, max_bytes, &r2,
	    &c2) == SMTP_RESP_PARSE_MORE);
	CHECK(c2 == 0);
	free(pre);

	check_caps(r);
}

/* Consume replies from buf until one fails or more input is needed. */
static void
run(const char *buf, size_t size, size_t max_lines, size_t max_bytes)
{
	struct smtp_resp r;
	size_t		 pos = 0, consumed;
	int		 rc;

	while (pos < size) {
		consumed = (size_t)-1;
		rc = smtp_resp_parse(buf + pos, size - pos, max_lines,
		    max_bytes, &r, &consumed);
		CHECK(consumed <= size - pos);
		if (rc != SMTP_RESP_PARSE_OK) {
			CHECK(rc == SMTP_RESP_PARSE_MORE ||
			    rc == SMTP_RESP_PARSE_SYNTAX ||
			    rc == SMTP_RESP_PARSE_MIXED ||
			    rc == SMTP_RESP_PARSE_LONG);
			CHECK(consumed == 0);
			/* Waiting never needs more than the limits allow. */
			if (rc == SMTP_RESP_PARSE_MORE)
				CHECK(size - pos < max_bytes);
			break;
		}
		CHECK(consumed > 0);	/* progress */
		check_resp(&r, buf + pos, consumed, max_lines, max_bytes);
		pos += consumed;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_resp	 rb, rs;
	struct smtp_client_caps	 caps;
	size_t			 cb, cs;
	int			 big, sm;
	char			*buf = copy((const char *)data, size);

	run(buf, size, BIG_LINES, BIG_BYTES);
	run(buf, size, SMALL_LINES, SMALL_BYTES);

	/* Tighter limits only ever turn a result into LONG. */
	big = smtp_resp_parse(buf, size, BIG_LINES, BIG_BYTES, &rb, &cb);
	sm = smtp_resp_parse(buf, size, SMALL_LINES, SMALL_BYTES, &rs, &cs);
	CHECK(sm == big || sm == SMTP_RESP_PARSE_LONG);
	if (sm == SMTP_RESP_PARSE_OK)
		CHECK(cs == cb && rs.code == rb.code);

	/* The keyword parser on raw bytes, CR, LF and all. */
	memset(&caps, 0, sizeof(caps));
	smtp_client_caps_line(buf, size, &caps);
	CHECK((caps.auth & ~KNOWN_AUTH) == 0);

	free(buf);
	return 0;
}
