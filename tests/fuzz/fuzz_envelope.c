/*
 * fuzz_envelope.c: envelope_parse() and journal_replay() on hostile bytes.
 * A block that parses must format back to text that parses to the same
 * envelope, and that text must be canonical (formatting it is a fixpoint).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/envelope.h"

#define FUZZ_MAX_RCPT	64

static bool
fuzz_str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool
fuzz_env_equal(const struct envelope *a, const struct envelope *b)
{
	if (strcmp(a->id, b->id) != 0 || a->arrival_usec != b->arrival_usec ||
	    !fuzz_str_eq(a->client_addr, b->client_addr) ||
	    a->client_port != b->client_port ||
	    !fuzz_str_eq(a->client_name, b->client_name) ||
	    !fuzz_str_eq(a->helo, b->helo) ||
	    !fuzz_str_eq(a->proto, b->proto) ||
	    !fuzz_str_eq(a->auth, b->auth) ||
	    !fuzz_str_eq(a->from, b->from) || a->body != b->body ||
	    a->smtputf8 != b->smtputf8 || a->ret != b->ret ||
	    !fuzz_str_eq(a->envid, b->envid) || a->nrcpt != b->nrcpt)
		return false;
	for (size_t i = 0; i < a->nrcpt; i++)
		if (!fuzz_str_eq(a->rcpt[i].addr, b->rcpt[i].addr) ||
		    !fuzz_str_eq(a->rcpt[i].orcpt, b->rcpt[i].orcpt) ||
		    a->rcpt[i].notify != b->rcpt[i].notify)
			return false;
	return true;
}

static bool
fuzz_env_empty(const struct envelope *e)
{
	static const struct envelope zero;

	return memcmp(e, &zero, sizeof(zero)) == 0;
}

static void
fuzz_envelope(const char *buf, size_t len)
{
	struct envelope e, e2;
	size_t	 off = 0, off2 = 0, tlen = 0, tlen2 = 0;
	char	*text = NULL, *text2 = NULL;
	int	 rc;

	rc = envelope_parse(buf, len, FUZZ_MAX_RCPT, &e, &off);
	if (rc != 0) {
		if ((rc != -1 && rc != ENVELOPE_PARSE_MORE) ||
		    !fuzz_env_empty(&e))
			abort();
		return;
	}
	if (off > len || off < 4 || memcmp(buf + off - 4, "end\n", 4) != 0 ||
	    e.nrcpt == 0 || e.nrcpt > FUZZ_MAX_RCPT)
		abort();
	/* the block alone parses the same; one byte less asks for more */
	if (envelope_parse(buf, off, FUZZ_MAX_RCPT, &e2, &off2) != 0 ||
	    off2 != off || !fuzz_env_equal(&e, &e2))
		abort();
	envelope_fini(&e2);
	if (envelope_parse(buf, off - 1, FUZZ_MAX_RCPT, &e2, &off2) !=
	    ENVELOPE_PARSE_MORE)
		abort();

	if ((text = envelope_format(&e, &tlen)) == NULL)
		abort();
	if (tlen != strlen(text) ||
	    envelope_parse(text, tlen, FUZZ_MAX_RCPT, &e2, &off2) != 0 ||
	    off2 != tlen || !fuzz_env_equal(&e, &e2))
		abort();
	if ((text2 = envelope_format(&e2, &tlen2)) == NULL ||
	    tlen2 != tlen || memcmp(text, text2, tlen) != 0)
		abort();
	/* the recipient limit holds at nrcpt and fails at nrcpt - 1 */
	envelope_fini(&e2);
	if (envelope_parse(text, tlen, e.nrcpt - 1, &e2, &off2) != -1 ||
	    !fuzz_env_empty(&e2))
		abort();
	free(text);
	free(text2);
	envelope_fini(&e);
}

static void
fuzz_journal(const char *buf, size_t len)
{
	bool	 final[FUZZ_MAX_RCPT], again[FUZZ_MAX_RCPT];
	size_t	 n = 0, count, cut;
	char	 line[64];

	count = journal_replay(buf, len, FUZZ_MAX_RCPT, final);
	for (size_t i = 0; i < FUZZ_MAX_RCPT; i++)
		n += final[i];
	if (n != count)
		abort();
	/* the torn tail changes nothing */
	for (cut = len; cut > 0 && buf[cut - 1] != '\n'; cut--)
		;
	if (journal_replay(buf, cut, FUZZ_MAX_RCPT, again) != count ||
	    memcmp(final, again, sizeof(final)) != 0)
		abort();
	/* what journal_format() writes replays as final */
	for (size_t i = 0; i < FUZZ_MAX_RCPT; i++) {
		int	 l;

		if (!final[i])
			continue;
		l = journal_format(line, sizeof(line), i, JOURNAL_SENT,
		    "2.0.0", "ok");
		if (l < 0 || journal_replay(line, (size_t)l, FUZZ_MAX_RCPT,
		    again) != 1 || !again[i])
			abort();
	}
}

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_envelope((const char *)data, size);
	fuzz_journal((const char *)data, size);
	return 0;
}
