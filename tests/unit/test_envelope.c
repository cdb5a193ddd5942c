/*
 * test_envelope.c: envelope format/parse round trips, strictness against
 * corrupt blocks, truncation, the recipient limit, and journal replay.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "queue/envelope.h"
#include "smtp/parse.h"

#define NOTIFY_SFD	(SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | \
	SMTP_NOTIFY_DELAY)

/* NULL-aware string equality. */
static bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static void
assert_env_equal(const struct envelope *a, const struct envelope *b)
{
	assert_string_equal(a->id, b->id);
	assert_true(a->arrival_usec == b->arrival_usec);
	assert_true(str_eq(a->client_addr, b->client_addr));
	assert_int_equal(a->client_port, b->client_port);
	assert_true(str_eq(a->client_name, b->client_name));
	assert_true(str_eq(a->helo, b->helo));
	assert_true(str_eq(a->proto, b->proto));
	assert_true(str_eq(a->auth, b->auth));
	assert_true(str_eq(a->from, b->from));
	assert_int_equal(a->body, b->body);
	assert_int_equal(a->smtputf8, b->smtputf8);
	assert_int_equal(a->ret, b->ret);
	assert_true(str_eq(a->envid, b->envid));
	assert_int_equal(a->nrcpt, b->nrcpt);
	for (size_t i = 0; i < a->nrcpt; i++) {
		assert_true(str_eq(a->rcpt[i].addr, b->rcpt[i].addr));
		assert_true(str_eq(a->rcpt[i].orcpt, b->rcpt[i].orcpt));
		assert_int_equal(a->rcpt[i].notify, b->rcpt[i].notify);
	}
}

static void
assert_env_empty(const struct envelope *e)
{
	struct envelope zero;

	memset(&zero, 0, sizeof(zero));
	assert_memory_equal(e, &zero, sizeof(zero));
}

/* Every field set, with the awkward values. */
static void
make_full(struct envelope *e)
{
	envelope_init(e);
	memcpy(e->id, "1HZ3K5MN7PQ9R", QID_LEN + 1);
	e->arrival_usec = UINT64_C(1700000000123456);
	envelope_set(&e->client_addr, "2001:db8::1");
	e->client_port = 58123;
	envelope_set(&e->client_name, "mail.example.org");
	envelope_set(&e->helo, "bad helo 100%\r\n\t\x7f");
	envelope_set(&e->proto, "ESMTPSA");
	envelope_set(&e->auth, "ann@example.org");
	envelope_set(&e->from, "");	/* the null sender */
	e->body = SMTP_BODYTYPE_8BITMIME;
	e->smtputf8 = true;
	e->ret = SMTP_RET_HDRS;
	envelope_set(&e->envid, "QQ+2B314159");
	envelope_add_rcpt(e, "bob@example.net", NULL, 0);
	envelope_add_rcpt(e, "j\xc3\xb6rg@b\xc3\xbc" "cher.de",
	    "utf-8;j\xc3\xb6rg@b\xc3\xbc" "cher.de",
	    SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE);
	envelope_add_rcpt(e, "\"a b\"@example.com", "-", SMTP_NOTIFY_NEVER);
	envelope_add_rcpt(e, "c@d", "", NOTIFY_SFD);
	envelope_add_rcpt(e, "", "rfc822;x%y", SMTP_NOTIFY_DELAY);
}

static const char full_text[] =
    "petrel-envelope 1\n"
    "id 1HZ3K5MN7PQ9R\n"
    "arrival 1700000000123456\n"
    "client 2001:db8::1 58123\n"
    "client-name mail.example.org\n"
    "helo bad%20helo%20100%25%0D%0A%09%7F\n"
    "proto ESMTPSA\n"
    "auth ann@example.org\n"
    "from \n"
    "body 8BITMIME\n"
    "smtputf8\n"
    "ret HDRS\n"
    "envid QQ+2B314159\n"
    "rcpt bob@example.net - -\n"
    "rcpt j\xc3\xb6rg@b\xc3\xbc" "cher.de SUCCESS,FAILURE "
    "utf-8;j\xc3\xb6rg@b\xc3\xbc" "cher.de\n"
    "rcpt \"a%20b\"@example.com NEVER %2D\n"
    "rcpt c@d SUCCESS,FAILURE,DELAY \n"
    "rcpt  DELAY rfc822;x%25y\n"
    "end\n";

/* The least a block can hold. */
#define MIN_FIELDS \
    "id 0000000000100\n" \
    "arrival 1700000000123456\n" \
    "client 127.0.0.1 25\n" \
    "client-name unknown\n" \
    "proto ESMTP\n" \
    "from a@b\n"
#define MIN_HEAD	"petrel-envelope 1\n" MIN_FIELDS
#define MIN_TAIL	"rcpt c@d - -\nend\n"
#define MIN_TEXT	MIN_HEAD MIN_TAIL

static void
test_format_full(void **state)
{
	struct envelope e, p;
	size_t	 len = 0, off = 0;
	char	*text, *withbody;

	(void)state;
	make_full(&e);
	text = envelope_format(&e, &len);
	assert_non_null(text);
	assert_string_equal(text, full_text);
	assert_int_equal(len, strlen(full_text));

	assert_int_equal(envelope_parse(text, len, 100, &p, &off), 0);
	assert_int_equal(off, len);
	assert_env_equal(&e, &p);
	assert_string_equal(p.from, "");
	assert_string_equal(p.rcpt[2].orcpt, "-");
	assert_null(p.rcpt[0].orcpt);
	envelope_fini(&p);

	/* the message follows "end\n"; its bytes are not the parser's */
	withbody = malloc(len + 32);
	assert_non_null(withbody);
	memcpy(withbody, text, len);
	memcpy(withbody + len, "Subject: x\r\n\0\n\r\n", 17);
	assert_int_equal(envelope_parse(withbody, len + 17, 100, &p, &off),
	    0);
	assert_int_equal(off, len);
	assert_env_equal(&e, &p);
	envelope_fini(&p);
	free(withbody);

	free(text);
	envelope_fini(&e);
	assert_env_empty(&e);
}

static void
test_format_minimal(void **state)
{
	struct envelope e, p;
	size_t	 len, off;
	char	*text;

	(void)state;
	envelope_init(&e);
	memcpy(e.id, "0000000000100", QID_LEN + 1);
	e.arrival_usec = UINT64_C(1700000000123456);
	envelope_set(&e.client_addr, "127.0.0.1");
	e.client_port = 25;
	envelope_set(&e.client_name, "unknown");
	envelope_set(&e.proto, "ESMTP");
	envelope_set(&e.from, "a@b");
	envelope_add_rcpt(&e, "c@d", NULL, 0);
	text = envelope_format(&e, &len);
	assert_non_null(text);
	assert_string_equal(text, MIN_TEXT);
	assert_int_equal(envelope_parse(text, len, 1, &p, &off), 0);
	assert_env_equal(&e, &p);
	assert_null(p.helo);
	assert_null(p.auth);
	assert_null(p.envid);
	assert_int_equal(p.body, SMTP_BODYTYPE_NONE);
	assert_int_equal(p.ret, SMTP_RET_NONE);
	assert_false(p.smtputf8);
	envelope_fini(&p);
	free(text);

	/* empty strings are values, not absence */
	envelope_set(&e.helo, "");
	envelope_set(&e.client_name, "");
	envelope_set(&e.envid, "");
	envelope_set(&e.auth, "");
	e.body = SMTP_BODYTYPE_7BIT;
	e.ret = SMTP_RET_FULL;
	e.client_port = 65535;
	e.arrival_usec = UINT64_MAX;
	text = envelope_format(&e, &len);
	assert_non_null(text);
	assert_int_equal(envelope_parse(text, len, 1, &p, &off), 0);
	assert_env_equal(&e, &p);
	assert_string_equal(p.helo, "");
	envelope_fini(&p);
	free(text);
	envelope_fini(&e);
}

/* Every escapable byte survives, and bytes >= 0x80 stay raw. */
static void
test_all_bytes(void **state)
{
	struct envelope e, p;
	char	 all[256], *text;
	size_t	 len, off;

	(void)state;
	for (int i = 1; i < 256; i++)
		all[i - 1] = (char)i;
	all[255] = '\0';
	make_full(&e);
	envelope_set(&e.helo, all);
	envelope_set(&e.from, all);
	envelope_set(&e.rcpt[0].addr, all);
	envelope_set(&e.rcpt[0].orcpt, all);
	text = envelope_format(&e, &len);
	assert_non_null(text);
	assert_non_null(strstr(text, "%7F\x80\x81"));	/* raw from 0x80 */
	assert_int_equal(envelope_parse(text, len, 100, &p, &off), 0);
	assert_env_equal(&e, &p);
	envelope_fini(&p);
	free(text);
	envelope_fini(&e);
}

static void
test_format_refuses(void **state)
{
	struct envelope e;
	size_t	 len;

	(void)state;
	for (int i = 0; i < 10; i++) {
		make_full(&e);
		switch (i) {
		case 0:
			memcpy(e.id, "1HZ3K5MN7PQ9I", QID_LEN + 1);
			break;
		case 1:
			for (size_t j = 0; j < e.nrcpt; j++) {
				free(e.rcpt[j].addr);
				free(e.rcpt[j].orcpt);
			}
			e.nrcpt = 0;
			break;
		case 2:
			envelope_set(&e.client_addr, NULL);
			break;
		case 3:
			envelope_set(&e.from, NULL);
			break;
		case 4:
			e.rcpt[1].notify = SMTP_NOTIFY_NEVER |
			    SMTP_NOTIFY_SUCCESS;
			break;
		case 5:
			e.rcpt[1].notify = 0x10;
			break;
		case 6:
			e.body = 7;
			break;
		case 7:
			e.ret = 9;
			break;
		case 8:
			e.client_port = 65536;
			break;
		case 9:
			envelope_set(&e.proto, NULL);
			break;
		}
		assert_null(envelope_format(&e, &len));
		envelope_fini(&e);
	}
}

/* Blocks that are valid though envelope_format() would not write them so. */
static const char *const valid[] = {
	/* any order after the first line */
	"petrel-envelope 1\nrcpt c@d - -\nfrom a@b\nproto SMTP\n"
	"client-name x\nclient ::1 0\narrival 0\nid ZZZZZZZZZZZZZ\nend\n",
	MIN_HEAD "rcpt c@d DELAY,SUCCESS -\nend\n",
	MIN_HEAD "rcpt %63@d - %2D\nend\n",
	MIN_HEAD "rcpt c@d - -\nhelo %41\nend\n",
	MIN_HEAD "rcpt c@d - -\nenvid \xff\xfe\nend\n",
};

static void
test_valid_variants(void **state)
{
	struct envelope e;
	size_t	 off;

	(void)state;
	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		if (envelope_parse(valid[i], strlen(valid[i]), 10, &e, &off)
		    != 0)
			fail_msg("valid[%zu] refused", i);
		assert_int_equal(off, strlen(valid[i]));
		switch (i) {
		case 0:
			assert_string_equal(e.id, "ZZZZZZZZZZZZZ");
			assert_true(e.arrival_usec == 0);
			assert_int_equal(e.client_port, 0);
			break;
		case 1:
			assert_int_equal(e.rcpt[0].notify,
			    SMTP_NOTIFY_DELAY | SMTP_NOTIFY_SUCCESS);
			break;
		case 2:
			assert_string_equal(e.rcpt[0].addr, "c@d");
			assert_string_equal(e.rcpt[0].orcpt, "-");
			break;
		case 3:
			assert_string_equal(e.helo, "A");
			break;
		case 4:
			assert_string_equal(e.envid, "\xff\xfe");
			break;
		}
		envelope_fini(&e);
	}
}

/* Each must be refused with -1, and e left empty. */
static const struct {
	const char	*name;
	const char	*text;
} bad[] = {
	{ "empty line first", "\n" MIN_TEXT },
	{ "magic version", "petrel-envelope 2\n" MIN_FIELDS MIN_TAIL },
	{ "magic case", "PETREL-ENVELOPE 1\n" MIN_FIELDS MIN_TAIL },
	{ "magic space", "petrel-envelope 1 \n" MIN_FIELDS MIN_TAIL },
	{ "magic CR", "petrel-envelope 1\r\n" MIN_FIELDS MIN_TAIL },
	{ "magic twice", "petrel-envelope 1\n" MIN_TEXT },
	{ "unknown record", MIN_HEAD "x-foo bar\nrcpt c@d - -\nend\n" },
	{ "unknown flag", MIN_HEAD "rcpt c@d - -\nfoo\nend\n" },
	{ "empty line", MIN_HEAD "rcpt c@d - -\n\nend\n" },
	{ "end CRLF", MIN_HEAD "rcpt c@d - -\nend\r\n" },
	{ "end value", MIN_HEAD "rcpt c@d - -\nend x\n" },
	{ "end space", MIN_HEAD "rcpt c@d - -\nend \n" },
	{ "only magic", "petrel-envelope 1\nend\n" },

	/* required records */
	{ "no id", "petrel-envelope 1\narrival 1\nclient a 1\n"
	  "client-name x\nproto ESMTP\nfrom a@b\nrcpt c@d - -\nend\n" },
	{ "no arrival", "petrel-envelope 1\nid 0000000000100\nclient a 1\n"
	  "client-name x\nproto ESMTP\nfrom a@b\nrcpt c@d - -\nend\n" },
	{ "no client", "petrel-envelope 1\nid 0000000000100\narrival 1\n"
	  "client-name x\nproto ESMTP\nfrom a@b\nrcpt c@d - -\nend\n" },
	{ "no client-name", "petrel-envelope 1\nid 0000000000100\n"
	  "arrival 1\nclient a 1\nproto ESMTP\nfrom a@b\nrcpt c@d - -\n"
	  "end\n" },
	{ "no proto", "petrel-envelope 1\nid 0000000000100\narrival 1\n"
	  "client a 1\nclient-name x\nfrom a@b\nrcpt c@d - -\nend\n" },
	{ "no from", "petrel-envelope 1\nid 0000000000100\narrival 1\n"
	  "client a 1\nclient-name x\nproto ESMTP\nrcpt c@d - -\nend\n" },
	{ "no rcpt", MIN_HEAD "end\n" },
	{ "from without space", "petrel-envelope 1\nid 0000000000100\n"
	  "arrival 1\nclient a 1\nclient-name x\nproto ESMTP\nfrom\n"
	  "rcpt c@d - -\nend\n" },

	/* duplicates */
	{ "dup id", MIN_HEAD "id 0000000000100\nrcpt c@d - -\nend\n" },
	{ "dup arrival", MIN_HEAD "arrival 1\nrcpt c@d - -\nend\n" },
	{ "dup client", MIN_HEAD "client a 1\nrcpt c@d - -\nend\n" },
	{ "dup client-name", MIN_HEAD "client-name y\nrcpt c@d - -\nend\n" },
	{ "dup proto", MIN_HEAD "proto SMTP\nrcpt c@d - -\nend\n" },
	{ "dup from", MIN_HEAD "from \nrcpt c@d - -\nend\n" },
	{ "dup helo", MIN_HEAD "helo a\nhelo a\nrcpt c@d - -\nend\n" },
	{ "dup auth", MIN_HEAD "auth a\nauth b\nrcpt c@d - -\nend\n" },
	{ "dup body", MIN_HEAD "body 7BIT\nbody 7BIT\nrcpt c@d - -\nend\n" },
	{ "dup smtputf8", MIN_HEAD "smtputf8\nsmtputf8\nrcpt c@d - -\n"
	  "end\n" },
	{ "dup ret", MIN_HEAD "ret FULL\nret HDRS\nrcpt c@d - -\nend\n" },
	{ "dup envid", MIN_HEAD "envid a\nenvid a\nrcpt c@d - -\nend\n" },

	/* escapes and raw bytes */
	{ "raw space", MIN_HEAD "helo a b\nrcpt c@d - -\nend\n" },
	{ "raw tab", MIN_HEAD "helo a\tb\nrcpt c@d - -\nend\n" },
	{ "raw CR", MIN_HEAD "helo a\rb\nrcpt c@d - -\nend\n" },
	{ "raw DEL", MIN_HEAD "helo a\x7f\nrcpt c@d - -\nend\n" },
	{ "escape short", MIN_HEAD "helo a%4\nrcpt c@d - -\nend\n" },
	{ "escape bare", MIN_HEAD "helo a%\nrcpt c@d - -\nend\n" },
	{ "escape lowercase", MIN_HEAD "helo a%4a\nrcpt c@d - -\nend\n" },
	{ "escape not hex", MIN_HEAD "helo a%GG\nrcpt c@d - -\nend\n" },
	{ "escape NUL", MIN_HEAD "helo a%00\nrcpt c@d - -\nend\n" },
	{ "escape in rcpt", MIN_HEAD "rcpt c%2@d - -\nend\n" },
	{ "escape in orcpt", MIN_HEAD "rcpt c@d - %\nend\n" },

	/* id */
	{ "id bad char", "petrel-envelope 1\nid 000000000010I\narrival 1\n"
	  "client a 1\n"
	  "client-name x\nproto ESMTP\nfrom a@b\nrcpt c@d - -\nend\n" },
	{ "id short", "petrel-envelope 1\nid 000000000010\narrival 1\n"
	  "client a 1\nclient-name x\nproto ESMTP\nfrom a@b\nrcpt c@d - -\n"
	  "end\n" },
	{ "id long", "petrel-envelope 1\nid 00000000001000\narrival 1\n"
	  "client a 1\nclient-name x\nproto ESMTP\nfrom a@b\nrcpt c@d - -\n"
	  "end\n" },
	{ "id lowercase", "petrel-envelope 1\nid 000000000010a\narrival 1\n"
	  "client a 1\nclient-name x\nproto ESMTP\nfrom a@b\nrcpt c@d - -\n"
	  "end\n" },
	{ "id escaped", "petrel-envelope 1\nid 00000000001%30\narrival 1\n"
	  "client a 1\nclient-name x\nproto ESMTP\nfrom a@b\nrcpt c@d - -\n"
	  "end\n" },
	{ "id empty", "petrel-envelope 1\nid \narrival 1\nclient a 1\n"
	  "client-name x\nproto ESMTP\nfrom a@b\nrcpt c@d - -\nend\n" },

	/* numbers */
	{ "arrival negative", "petrel-envelope 1\nid 0000000000100\n"
	  "arrival -1\nclient a 1\nclient-name x\nproto P\nfrom a@b\n"
	  "rcpt c@d - -\nend\n" },
	{ "arrival leading zero", "petrel-envelope 1\nid 0000000000100\n"
	  "arrival 01\nclient a 1\nclient-name x\nproto P\nfrom a@b\n"
	  "rcpt c@d - -\nend\n" },
	{ "arrival overflow", "petrel-envelope 1\nid 0000000000100\n"
	  "arrival 18446744073709551616\nclient a 1\nclient-name x\n"
	  "proto P\nfrom a@b\nrcpt c@d - -\nend\n" },
	{ "arrival empty", "petrel-envelope 1\nid 0000000000100\n"
	  "arrival \nclient a 1\nclient-name x\nproto P\nfrom a@b\n"
	  "rcpt c@d - -\nend\n" },
	{ "arrival junk", "petrel-envelope 1\nid 0000000000100\n"
	  "arrival 1x\nclient a 1\nclient-name x\nproto P\nfrom a@b\n"
	  "rcpt c@d - -\nend\n" },
	{ "arrival plus", "petrel-envelope 1\nid 0000000000100\n"
	  "arrival +1\nclient a 1\nclient-name x\nproto P\nfrom a@b\n"
	  "rcpt c@d - -\nend\n" },
	{ "port 65536", "petrel-envelope 1\nid 0000000000100\narrival 1\n"
	  "client a 65536\nclient-name x\nproto P\nfrom a@b\n"
	  "rcpt c@d - -\nend\n" },
	{ "port leading zero", "petrel-envelope 1\nid 0000000000100\n"
	  "arrival 1\nclient a 025\nclient-name x\nproto P\nfrom a@b\n"
	  "rcpt c@d - -\nend\n" },
	{ "port missing", "petrel-envelope 1\nid 0000000000100\narrival 1\n"
	  "client a\nclient-name x\nproto P\nfrom a@b\nrcpt c@d - -\nend\n" },
	{ "port empty", "petrel-envelope 1\nid 0000000000100\narrival 1\n"
	  "client a \nclient-name x\nproto P\nfrom a@b\nrcpt c@d - -\n"
	  "end\n" },
	{ "client three fields", "petrel-envelope 1\nid 0000000000100\n"
	  "arrival 1\nclient a 1 2\nclient-name x\nproto P\nfrom a@b\n"
	  "rcpt c@d - -\nend\n" },

	/* enumerations */
	{ "body unknown", MIN_HEAD "body BINARYMIME\nrcpt c@d - -\nend\n" },
	{ "body lowercase", MIN_HEAD "body 8bitmime\nrcpt c@d - -\nend\n" },
	{ "body empty", MIN_HEAD "body \nrcpt c@d - -\nend\n" },
	{ "ret unknown", MIN_HEAD "ret NONE\nrcpt c@d - -\nend\n" },
	{ "smtputf8 value", MIN_HEAD "smtputf8 yes\nrcpt c@d - -\nend\n" },
	{ "smtputf8 space", MIN_HEAD "smtputf8 \nrcpt c@d - -\nend\n" },

	/* rcpt */
	{ "rcpt one field", MIN_HEAD "rcpt c@d\nend\n" },
	{ "rcpt two fields", MIN_HEAD "rcpt c@d -\nend\n" },
	{ "rcpt four fields", MIN_HEAD "rcpt c@d - - -\nend\n" },
	{ "rcpt empty", MIN_HEAD "rcpt \nend\n" },
	{ "rcpt no value", MIN_HEAD "rcpt\nend\n" },
	{ "notify empty", MIN_HEAD "rcpt c@d  -\nend\n" },
	{ "notify NEVER plus", MIN_HEAD "rcpt c@d NEVER,SUCCESS -\nend\n" },
	{ "notify plus NEVER", MIN_HEAD "rcpt c@d SUCCESS,NEVER -\nend\n" },
	{ "notify duplicate", MIN_HEAD "rcpt c@d SUCCESS,SUCCESS -\nend\n" },
	{ "notify lowercase", MIN_HEAD "rcpt c@d success -\nend\n" },
	{ "notify trailing comma", MIN_HEAD "rcpt c@d SUCCESS, -\nend\n" },
	{ "notify leading comma", MIN_HEAD "rcpt c@d ,DELAY -\nend\n" },
	{ "notify double comma", MIN_HEAD "rcpt c@d DELAY,,FAILURE -\nend\n" },
	{ "notify unknown", MIN_HEAD "rcpt c@d ALWAYS -\nend\n" },
	{ "second rcpt bad", MIN_HEAD "rcpt c@d - -\nrcpt e@f x -\nend\n" },
};

/* The NUL byte cases need explicit lengths. */
static const struct {
	const char	*name;
	const char	*text;
	size_t		 len;
} bad_nul[] = {
#define NUL_CASE(name, s)	{ name, s, sizeof(s) - 1 }
	NUL_CASE("NUL in helo", MIN_HEAD "helo a\0b\nrcpt c@d - -\nend\n"),
	NUL_CASE("NUL in magic", "petrel-envelope\0" "1\n" MIN_FIELDS
	    MIN_TAIL),
	NUL_CASE("NUL line", MIN_HEAD "\0\nrcpt c@d - -\nend\n"),
	NUL_CASE("NUL after end", MIN_HEAD "rcpt c@d - -\nend\0\n"),
	NUL_CASE("NUL in partial line", MIN_HEAD "rcpt c@d - \0"),
	NUL_CASE("NUL alone", "\0"),
#undef NUL_CASE
};

static void
test_bad(void **state)
{
	struct envelope e;
	size_t	 off = 12345;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&e, 0xa5, sizeof(e));	/* parse must not trust e */
		if (envelope_parse(bad[i].text, strlen(bad[i].text), 10, &e,
		    &off) != -1)
			fail_msg("bad case \"%s\" accepted", bad[i].name);
		assert_env_empty(&e);
		assert_int_equal(off, 12345);
	}
	for (size_t i = 0; i < sizeof(bad_nul) / sizeof(bad_nul[0]); i++) {
		if (envelope_parse(bad_nul[i].text, bad_nul[i].len, 10, &e,
		    &off) != -1)
			fail_msg("bad case \"%s\" accepted", bad_nul[i].name);
		assert_env_empty(&e);
	}
}

/* Every proper prefix of a valid block asks for more, nothing is leaked. */
static void
test_truncation(void **state)
{
	static const char *const texts[] = { full_text, MIN_TEXT };
	struct envelope e;
	size_t	 off;

	(void)state;
	for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
		size_t	 len = strlen(texts[t]);

		for (size_t k = 0; k < len; k++) {
			/* a heap copy of exactly k bytes: no peeking past */
			char	*p = malloc(k ? k : 1);

			assert_non_null(p);
			memcpy(p, texts[t], k);
			memset(&e, 0xa5, sizeof(e));
			if (envelope_parse(p, k, 10, &e, &off) !=
			    ENVELOPE_PARSE_MORE)
				fail_msg("text %zu prefix %zu: not MORE", t, k);
			assert_env_empty(&e);
			free(p);
		}
		assert_int_equal(envelope_parse(texts[t], len, 10, &e, &off),
		    0);
		assert_int_equal(off, len);
		envelope_fini(&e);
	}
}

/* A wrong start fails at once, before a whole line has arrived. */
static void
test_early_failure(void **state)
{
	static const char *const early[] = {
		"x", "petrel-envelope 2", "petrel-envelope 1 ", "Petrel",
		"petrel-envelope 11",
	};
	struct envelope e;
	size_t	 off;

	(void)state;
	for (size_t i = 0; i < sizeof(early) / sizeof(early[0]); i++)
		assert_int_equal(envelope_parse(early[i], strlen(early[i]),
		    10, &e, &off), -1);
	/* a bad complete line before the cut is -1, not MORE */
	assert_int_equal(envelope_parse(MIN_HEAD "bogus\nrcpt",
	    strlen(MIN_HEAD "bogus\nrcpt"), 10, &e, &off), -1);
}

static void
test_max_rcpt(void **state)
{
	struct envelope e, p;
	char	*text;
	size_t	 len, off;

	(void)state;
	make_full(&e);
	text = envelope_format(&e, &len);
	assert_non_null(text);
	assert_int_equal(e.nrcpt, 5);
	assert_int_equal(envelope_parse(text, len, 5, &p, &off), 0);	/* at */
	assert_int_equal(p.nrcpt, 5);
	envelope_fini(&p);
	assert_int_equal(envelope_parse(text, len, 4, &p, &off), -1); /* +1 */
	assert_env_empty(&p);
	assert_int_equal(envelope_parse(text, len, 0, &p, &off), -1);
	assert_env_empty(&p);
	/* the limit applies before "end": a truncated block fails too */
	assert_int_equal(envelope_parse(text, len - 4, 4, &p, &off), -1);
	assert_int_equal(envelope_parse(text, len - 4, 5, &p, &off),
	    ENVELOPE_PARSE_MORE);
	free(text);
	envelope_fini(&e);
}

static void
test_set(void **state)
{
	char	*f = NULL;

	(void)state;
	envelope_set(&f, "abc");
	assert_string_equal(f, "abc");
	envelope_set(&f, f);		/* aliasing is fine */
	assert_string_equal(f, "abc");
	envelope_set(&f, NULL);
	assert_null(f);
}

/* journal_format() */
static const struct {
	size_t		 idx;
	enum journal_status st;
	const char	*dsn;
	const char	*text;
	const char	*want;	/* NULL: must fail */
} jfmt[] = {
	{ 0, JOURNAL_SENT, "2.0.0", "250 2.0.0 Ok",
	  "0 sent 2.0.0 250%202.0.0%20Ok\n" },
	{ 7, JOURNAL_BOUNCED, "5.1.1", "no such user",
	  "7 bounced 5.1.1 no%20such%20user\n" },
	{ 12, JOURNAL_DEFERRED, "4.4.1", "connect: 100%\r\n",
	  "12 deferred 4.4.1 connect:%20100%25%0D%0A\n" },
	{ 1, JOURNAL_SENT, "2 0", "", "1 sent 2%200 \n" },
	{ 1, JOURNAL_SENT, NULL, NULL, "1 sent  \n" },
	{ 3, JOURNAL_SENT, "2.0.0", "gr\xc3\xbc\xc3\x9f",
	  "3 sent 2.0.0 gr\xc3\xbc\xc3\x9f\n" },
	{ 0, (enum journal_status)7, "2.0.0", "x", NULL },
};

static void
test_journal_format(void **state)
{
	char	 buf[128];
	bool	 final[16];

	(void)state;
	for (size_t i = 0; i < sizeof(jfmt) / sizeof(jfmt[0]); i++) {
		int	 n = journal_format(buf, sizeof(buf), jfmt[i].idx,
		    jfmt[i].st, jfmt[i].dsn, jfmt[i].text);

		if (jfmt[i].want == NULL) {
			assert_int_equal(n, -1);
			continue;
		}
		assert_int_equal(n, (int)strlen(jfmt[i].want));
		assert_string_equal(buf, jfmt[i].want);
		/* it replays as what it says */
		assert_int_equal(journal_replay(buf, (size_t)n, 16, final),
		    jfmt[i].st != JOURNAL_DEFERRED);
		assert_int_equal(final[jfmt[i].idx],
		    jfmt[i].st != JOURNAL_DEFERRED);
	}
}

static void
test_journal_fit(void **state)
{
	const char *want = "3 bounced 5.1.1 no%20user\n";
	size_t	 len = strlen(want);
	char	 buf[64];

	(void)state;
	for (size_t cap = 0; cap <= len + 1; cap++) {
		int n = journal_format(cap ? buf : NULL, cap, 3,
		    JOURNAL_BOUNCED, "5.1.1", "no user");

		if (cap < len + 1)
			assert_int_equal(n, -1);
		else {
			assert_int_equal(n, (int)len);
			assert_string_equal(buf, want);
		}
	}
}

static const struct {
	const char	*name;
	const char	*buf;
	size_t		 nrcpt;
	const char	*want;	/* final[] as '0'/'1' */
} jreplay[] = {
	{ "empty", "", 3, "000" },
	{ "one of each", "0 sent 2.0.0 ok\n1 deferred 4.4.1 t\n"
	  "2 bounced 5.1.1 u\n", 3, "101" },
	{ "torn last line", "0 sent 2.0.0 ok\n1 sent 2.0.0 ok", 2, "10" },
	{ "torn only line", "0 sent 2.0.0 o", 1, "0" },
	{ "out of range", "3 sent 2.0.0 ok\n2 sent 2.0.0 ok\n", 3, "001" },
	{ "huge idx", "99999999999999999999999 sent 2.0.0 ok\n", 3, "000" },
	{ "max idx", "18446744073709551615 sent 2.0.0 ok\n", 3, "000" },
	{ "duplicates", "0 sent 2.0.0 ok\n0 sent 2.0.0 ok\n"
	  "0 bounced 5.0.0 x\n", 2, "10" },
	{ "deferred after final", "1 sent 2.0.0 ok\n1 deferred 4.0.0 x\n",
	  2, "01" },
	{ "deferred only", "0 deferred 4.0.0 x\n0 deferred 4.0.0 y\n", 1,
	  "0" },
	{ "bad idx", "x sent 2.0.0 ok\n01 sent 2.0.0 ok\n-1 sent 2.0.0 ok\n"
	  "+1 sent 2.0.0 ok\n sent 2.0.0 ok\n", 3, "000" },
	{ "bad status", "0 Sent 2.0.0 ok\n0 done 2.0.0 ok\n0  2.0.0 ok\n",
	  1, "0" },
	{ "wrong field count", "0 sent 2.0.0\n0 sent 2.0.0 a b\n0 sent\n"
	  "0\n\n0 sent  a b\n", 1, "0" },
	{ "bad escapes", "0 sent 2.0.0 %zz\n0 sent 2.0.0 %4\n"
	  "0 sent 2.0.0 %00\n0 sent %2 ok\n", 1, "0" },
	{ "raw controls", "0 sent 2.0.0 ok\r\n0 sent 2.0.0 a\tb\n", 1, "0" },
	{ "good after bad", "garbage\n1 sent 2.0.0 ok\n", 2, "01" },
	{ "empty dsn and text", "0 sent  \n", 1, "1" },
	{ "nrcpt zero", "0 sent 2.0.0 ok\n", 0, "" },
};

static void
test_journal_replay(void **state)
{
	bool	 final[8];

	(void)state;
	for (size_t i = 0; i < sizeof(jreplay) / sizeof(jreplay[0]); i++) {
		size_t	 count, want = 0;

		for (size_t j = 0; j < 8; j++)
			final[j] = true;	/* replay must reset */
		count = journal_replay(jreplay[i].buf, strlen(jreplay[i].buf),
		    jreplay[i].nrcpt, final);
		for (size_t j = 0; j < jreplay[i].nrcpt; j++) {
			bool w = jreplay[i].want[j] == '1';

			want += w;
			if (final[j] != w)
				fail_msg("%s: final[%zu] = %d", jreplay[i].name,
				    j, final[j]);
		}
		if (count != want)
			fail_msg("%s: count %zu, want %zu", jreplay[i].name,
			    count, want);
		/* nothing past nrcpt is touched */
		for (size_t j = jreplay[i].nrcpt; j < 8; j++)
			assert_true(final[j]);
	}
}

static void
test_journal_nul(void **state)
{
	static const char buf[] = "0 sent 2.0.0 o\0k\n1 sent 2.0.0 ok\n";
	bool	 final[2];

	(void)state;
	assert_int_equal(journal_replay(buf, sizeof(buf) - 1, 2, final), 1);
	assert_false(final[0]);
	assert_true(final[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_full),
		cmocka_unit_test(test_format_minimal),
		cmocka_unit_test(test_all_bytes),
		cmocka_unit_test(test_format_refuses),
		cmocka_unit_test(test_valid_variants),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_early_failure),
		cmocka_unit_test(test_max_rcpt),
		cmocka_unit_test(test_set),
		cmocka_unit_test(test_journal_format),
		cmocka_unit_test(test_journal_fit),
		cmocka_unit_test(test_journal_replay),
		cmocka_unit_test(test_journal_nul),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
