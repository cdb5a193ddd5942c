/*
 * fuzz_dsn.c: dsn_format() with hostile bytes as the original message and
 * as the remote diagnostic, ENVID and ORCPT. Byte 0 picks RET, SMTPUTF8,
 * the actions and the return cap; the whole input is used. The report must
 * have CRLF lines only, none over 998 bytes, no NUL, 8-bit bytes only when
 * SMTPUTF8 allows them, and a boundary that no part line starts with.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/dsn.h"
#include "smtp/parse.h"

#define FUZZ_FIELD_MAX	700	/* beyond every field cap in dsn.c */

static void
fuzz_check(const struct dsn_out *o, bool utf8)
{
	const char *b, *e, *l;
	char	 delim[DSN_BOUNDARY_MAX + 3];
	size_t	 col = 0, dl, ndelim = 0;
	bool	 eight = false;

	if (o->text == NULL || o->len != strlen(o->text) || o->len < 2 ||
	    o->text[o->len - 2] != '\r' || o->text[o->len - 1] != '\n')
		abort();
	for (size_t i = 0; i < o->len; i++) {
		unsigned char c = (unsigned char)o->text[i];

		if (c == '\r') {
			if (i + 1 >= o->len || o->text[i + 1] != '\n')
				abort();
			i++;
			col = 0;
			continue;
		}
		if (c == '\n' || ++col > 998)
			abort();
		eight |= c >= 0x80;
	}
	if (eight != o->eightbit || (eight && !utf8) || (o->smtputf8 && !utf8))
		abort();

	/* the boundary: only delimiter lines start with "--" boundary */
	if ((b = strstr(o->text, "\tboundary=\"")) == NULL)
		abort();
	b += strlen("\tboundary=\"");
	if ((e = strchr(b, '"')) == NULL || e == b ||
	    e - b > DSN_BOUNDARY_MAX)
		abort();
	dl = (size_t)(e - b) + 2;
	delim[0] = delim[1] = '-';
	memcpy(delim + 2, b, dl - 2);
	for (l = o->text; l < o->text + o->len; l = strstr(l, "\r\n") + 2) {
		if (strncmp(l, delim, dl) != 0)
			continue;
		ndelim++;
		if (strncmp(l + dl, "\r\n", 2) == 0)
			continue;
		/* the close delimiter ends the text */
		if (strcmp(l + dl, "--\r\n") != 0 || ndelim < 3)
			abort();
	}
	if (ndelim < 3 || ndelim > 4)
		abort();
}

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dsn_rcpt	 rc[2];
	struct dsn_report r;
	struct dsn_out	 o;
	char		 field[FUZZ_FIELD_MAX + 1], *diag;
	uint8_t		 k = size > 0 ? data[0] : 0;
	size_t		 flen = size < FUZZ_FIELD_MAX ? size : FUZZ_FIELD_MAX;

	/* NUL-terminated copies: the diagnostic whole, the rest capped */
	diag = malloc(size + 1);
	if (diag == NULL)
		return 0;
	memcpy(diag, data, size);
	diag[size] = '\0';
	memcpy(field, data, flen);
	field[flen] = '\0';

	memset(rc, 0, sizeof(rc));
	rc[0].addr = "bob@example.net";
	rc[0].orcpt = field;
	rc[0].action = (enum dsn_action)(k % 5);
	rc[0].status = "5.1.1";
	rc[0].remote_mta = field;
	rc[0].diag = diag;
	rc[0].last_attempt = 1700000000;
	rc[0].retry_until = 1700400000;
	rc[1].addr = field;
	rc[1].action = (enum dsn_action)((k >> 3) % 5);
	rc[1].diag = field;

	memset(&r, 0, sizeof(r));
	r.qid = "2QF7K1XG3M000";
	r.host = "mx.petrel.test";
	r.from = (k & 0x40) ? "\xc3\xa4nn@example.com" : "ann@example.com";
	r.envid = field;
	r.ret = k & 0x80 ? SMTP_RET_HDRS : SMTP_RET_FULL;
	r.smtputf8 = (k & 0x20) != 0;
	r.arrival = 1699990000;
	r.now = 1700000200;
	r.boundary = "=_b";		/* short: collisions are reachable */
	r.rcpt = rc;
	r.nrcpt = 2;
	r.msg = (const char *)data;
	r.msg_len = size;
	r.return_max = (k & 0x04) ? size : size / 2;

	if (r.from[0] != 'a' && !r.smtputf8)
		r.from = "ann@example.com";
	if (dsn_format(&r, &o) != 0)
		abort();
	fuzz_check(&o, r.smtputf8);
	dsn_out_fini(&o);

	if (dsn_needed(r.from, k & 0x0f, rc[0].action) &&
	    ((k & SMTP_NOTIFY_NEVER) || dsn_needed("", k & 0x0f,
	    rc[0].action)))
		abort();
	free(diag);
	return 0;
}
