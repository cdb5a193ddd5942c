/*
 * envelope.c: the text envelope at the head of a spool file and the
 * per-recipient delivery journal: format and strict parse. Pure: bytes in,
 * struct out; reading, writing and fsync belong to the spool.
 */
#include "queue/envelope.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "smtp/parse.h"

#define ENV_MAGIC	"petrel-envelope 1"
#define ENV_PORT_MAX	65535u

static const char env_hex[] = "0123456789ABCDEF";

/* A byte that must be written as %XX to keep a value one token. */
static bool
env_needs_escape(unsigned char c)
{
	/* bytes >= 0x80 stay raw: UTF-8 addresses (RFC 6531) stay readable */
	return c == '%' || c < 0x21 || c == 0x7f;
}

/* Value of an uppercase hex digit, or -1. */
static int
env_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Check the escaped token s[0..n): raw bytes that need no escape and %XX
 * with uppercase hex and XX != 00. If out is not NULL, write the decoded
 * bytes there (room for n + 1) and NUL-terminate. Returns the decoded
 * length or -1.
 */
static long
env_unescape(const char *s, size_t n, char *out)
{
	size_t	 i, o = 0;
	int	 hi, lo;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			if (n - i < 3 || (hi = env_hexval(s[i + 1])) == -1 ||
			    (lo = env_hexval(s[i + 2])) == -1)
				return -1;
			if (hi == 0 && lo == 0)
				return -1;	/* no NUL in a C string */
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		} else if (env_needs_escape(c))
			return -1;
		if (out != NULL)
			out[o] = (char)c;
		o++;
	}
	if (out != NULL)
		out[o] = '\0';
	return (long)o;
}

/* Decode s[0..n) into a new string in *out; 0 or -1. */
static int
env_unescape_dup(const char *s, size_t n, char **out)
{
	char	*p;

	p = xmalloc(n + 1);
	if (env_unescape(s, n, p) == -1) {
		free(p);
		return -1;
	}
	*out = p;
	return 0;
}

/*
 * A decimal number without sign or leading zeros, at most max. 0 or -1.
 */
static int
env_number(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* True if the token s[0..n) equals the C string word. */
static bool
env_tok_eq(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* Growing output for envelope_format(); bounded by the envelope itself. */
struct env_out {
	char	*p;	/* owned */
	size_t	 len;
	size_t	 cap;
};

static void
env_out_add(struct env_out *b, const char *s, size_t n)
{
	if (b->cap - b->len < n + 1) {
		while (b->cap - b->len < n + 1)
			b->cap = b->cap ? b->cap * 2 : 256;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
env_out_str(struct env_out *b, const char *s)
{
	env_out_add(b, s, strlen(s));
}

static void
env_out_esc(struct env_out *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		char	 x[3] = { '%', env_hex[c >> 4], env_hex[c & 15] };

		if (env_needs_escape(c))
			env_out_add(b, x, 3);
		else
			env_out_add(b, (const char *)&c, 1);
	}
}

/* "key value\n" with the value escaped. */
static void
env_out_rec(struct env_out *b, const char *key, const char *value)
{
	env_out_str(b, key);
	env_out_str(b, " ");
	env_out_esc(b, value);
	env_out_str(b, "\n");
}

/* "-" (absent) is a token of its own: a literal "-" value is escaped. */
static void
env_out_opt(struct env_out *b, const char *value)
{
	if (value == NULL)
		env_out_str(b, "-");
	else if (strcmp(value, "-") == 0)
		env_out_str(b, "%2D");
	else
		env_out_esc(b, value);
}

/* The NOTIFY token: "-", "NEVER" or a comma list (RFC 3461 4.1). */
static void
env_out_notify(struct env_out *b, unsigned notify)
{
	static const struct {
		unsigned	 bit;
		const char	*name;
	} names[] = {
		{ SMTP_NOTIFY_SUCCESS, "SUCCESS" },
		{ SMTP_NOTIFY_FAILURE, "FAILURE" },
		{ SMTP_NOTIFY_DELAY, "DELAY" },
	};
	const char *sep = "";

	if (notify == 0) {
		env_out_str(b, "-");
		return;
	}
	if (notify == SMTP_NOTIFY_NEVER) {
		env_out_str(b, "NEVER");
		return;
	}
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		if (notify & names[i].bit) {
			env_out_str(b, sep);
			env_out_str(b, names[i].name);
			sep = ",";
		}
	}
}

static bool
env_notify_valid(unsigned notify)
{
	const unsigned all = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE |
	    SMTP_NOTIFY_DELAY;

	/* RFC 3461 4.1: NEVER stands alone */
	return notify == SMTP_NOTIFY_NEVER || (notify & ~all) == 0;
}

void
envelope_init(struct envelope *e)
{
	memset(e, 0, sizeof(*e));
}

void
envelope_fini(struct envelope *e)
{
	free(e->client_addr);
	free(e->client_name);
	free(e->helo);
	free(e->proto);
	free(e->auth);
	free(e->from);
	free(e->envid);
	for (size_t i = 0; i < e->nrcpt; i++) {
		free(e->rcpt[i].addr);
		free(e->rcpt[i].orcpt);
	}
	free(e->rcpt);
	envelope_init(e);
}

void
envelope_set(char **field, const char *value)
{
	char	*copy = value != NULL ? xstrdup(value) : NULL;

	/* copy first: value may be *field itself */
	free(*field);
	*field = copy;
}

void
envelope_add_rcpt(struct envelope *e, const char *addr, const char *orcpt,
    unsigned notify)
{
	struct env_rcpt *r;

	if (e->nrcpt == e->rcpt_cap) {
		e->rcpt_cap = e->rcpt_cap ? e->rcpt_cap * 2 : 4;
		e->rcpt = xreallocarray(e->rcpt, e->rcpt_cap, sizeof(*e->rcpt));
	}
	r = &e->rcpt[e->nrcpt++];
	r->addr = xstrdup(addr);
	r->orcpt = orcpt != NULL ? xstrdup(orcpt) : NULL;
	r->notify = notify;
}

/* True if envelope_parse() can read back what envelope_format() writes. */
static bool
env_complete(const struct envelope *e)
{
	if (!qid_valid(e->id) || e->client_addr == NULL ||
	    e->client_port > ENV_PORT_MAX || e->client_name == NULL ||
	    e->proto == NULL || e->from == NULL || e->nrcpt == 0)
		return false;
	if (e->body != SMTP_BODYTYPE_NONE && e->body != SMTP_BODYTYPE_7BIT &&
	    e->body != SMTP_BODYTYPE_8BITMIME)
		return false;
	if (e->ret != SMTP_RET_NONE && e->ret != SMTP_RET_FULL &&
	    e->ret != SMTP_RET_HDRS)
		return false;
	for (size_t i = 0; i < e->nrcpt; i++)
		if (e->rcpt[i].addr == NULL ||
		    !env_notify_valid(e->rcpt[i].notify))
			return false;
	return true;
}

char *
envelope_format(const struct envelope *e, size_t *len)
{
	struct env_out b = { NULL, 0, 0 };
	char	 num[32];

	if (!env_complete(e))
		return NULL;
	env_out_str(&b, ENV_MAGIC "\n");
	env_out_rec(&b, "id", e->id);
	snprintf(num, sizeof(num), "%" PRIu64, e->arrival_usec);
	env_out_rec(&b, "arrival", num);
	env_out_str(&b, "client ");
	env_out_esc(&b, e->client_addr);
	snprintf(num, sizeof(num), " %u\n", e->client_port);
	env_out_str(&b, num);
	env_out_rec(&b, "client-name", e->client_name);
	if (e->helo != NULL)
		env_out_rec(&b, "helo", e->helo);
	env_out_rec(&b, "proto", e->proto);
	if (e->auth != NULL)
		env_out_rec(&b, "auth", e->auth);
	env_out_rec(&b, "from", e->from);
	if (e->body == SMTP_BODYTYPE_7BIT)
		env_out_str(&b, "body 7BIT\n");
	else if (e->body == SMTP_BODYTYPE_8BITMIME)
		env_out_str(&b, "body 8BITMIME\n");
	if (e->smtputf8)
		env_out_str(&b, "smtputf8\n");
	if (e->ret == SMTP_RET_FULL)
		env_out_str(&b, "ret FULL\n");
	else if (e->ret == SMTP_RET_HDRS)
		env_out_str(&b, "ret HDRS\n");
	if (e->envid != NULL)
		env_out_rec(&b, "envid", e->envid);
	for (size_t i = 0; i < e->nrcpt; i++) {
		env_out_str(&b, "rcpt ");
		env_out_esc(&b, e->rcpt[i].addr);
		env_out_str(&b, " ");
		env_out_notify(&b, e->rcpt[i].notify);
		env_out_str(&b, " ");
		env_out_opt(&b, e->rcpt[i].orcpt);
		env_out_str(&b, "\n");
	}
	env_out_str(&b, "end\n");
	if (len != NULL)
		*len = b.len;
	return b.p;
}

/*
 * Parsing. Records may come in any order after the first line; each
 * single-valued record at most once; rcpt lines keep their order, which
 * is the recipient index the journal refers to.
 */
enum env_rec {
	ENV_REC_ID = 0,
	ENV_REC_ARRIVAL,
	ENV_REC_CLIENT,
	ENV_REC_CLIENT_NAME,
	ENV_REC_HELO,
	ENV_REC_PROTO,
	ENV_REC_AUTH,
	ENV_REC_FROM,
	ENV_REC_BODY,
	ENV_REC_SMTPUTF8,
	ENV_REC_RET,
	ENV_REC_ENVID,
	ENV_REC_RCPT,
	ENV_REC_END,
};

static const struct {
	const char	*name;
	bool		 has_value;	/* "name value" rather than "name" */
} env_recs[] = {
	[ENV_REC_ID] = { "id", true },
	[ENV_REC_ARRIVAL] = { "arrival", true },
	[ENV_REC_CLIENT] = { "client", true },
	[ENV_REC_CLIENT_NAME] = { "client-name", true },
	[ENV_REC_HELO] = { "helo", true },
	[ENV_REC_PROTO] = { "proto", true },
	[ENV_REC_AUTH] = { "auth", true },
	[ENV_REC_FROM] = { "from", true },
	[ENV_REC_BODY] = { "body", true },
	[ENV_REC_SMTPUTF8] = { "smtputf8", false },
	[ENV_REC_RET] = { "ret", true },
	[ENV_REC_ENVID] = { "envid", true },
	[ENV_REC_RCPT] = { "rcpt", true },
	[ENV_REC_END] = { "end", false },
};

#define ENV_REQUIRED	(1u << ENV_REC_ID | 1u << ENV_REC_ARRIVAL | \
	1u << ENV_REC_CLIENT | 1u << ENV_REC_CLIENT_NAME | \
	1u << ENV_REC_PROTO | 1u << ENV_REC_FROM)

/* The NOTIFY token written by env_out_notify(); 0 or -1. */
static int
env_parse_notify(const char *s, size_t n, unsigned *out)
{
	unsigned bits = 0, bit;
	size_t	 i, j;

	if (env_tok_eq(s, n, "-")) {
		*out = 0;
		return 0;
	}
	if (env_tok_eq(s, n, "NEVER")) {
		*out = SMTP_NOTIFY_NEVER;
		return 0;
	}
	for (i = 0; i <= n; i = j + 1) {
		for (j = i; j < n && s[j] != ','; j++)
			;
		if (env_tok_eq(s + i, j - i, "SUCCESS"))
			bit = SMTP_NOTIFY_SUCCESS;
		else if (env_tok_eq(s + i, j - i, "FAILURE"))
			bit = SMTP_NOTIFY_FAILURE;
		else if (env_tok_eq(s + i, j - i, "DELAY"))
			bit = SMTP_NOTIFY_DELAY;
		else
			return -1;
		if (bits & bit)
			return -1;
		bits |= bit;
	}
	*out = bits;
	return 0;
}

/* "addr notify orcpt" into a new recipient of e; 0 or -1. */
static int
env_parse_rcpt(const char *v, size_t n, struct envelope *e)
{
	const char *sp1, *sp2, *end = v + n;
	char	*addr = NULL, *orcpt = NULL;
	unsigned notify;
	int	 rc = -1;

	if ((sp1 = memchr(v, ' ', n)) == NULL ||
	    (sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1))) == NULL)
		goto out;
	if (env_unescape_dup(v, (size_t)(sp1 - v), &addr) == -1 ||
	    env_parse_notify(sp1 + 1, (size_t)(sp2 - sp1 - 1), &notify) == -1)
		goto out;
	if (!env_tok_eq(sp2 + 1, (size_t)(end - sp2 - 1), "-") &&
	    env_unescape_dup(sp2 + 1, (size_t)(end - sp2 - 1), &orcpt) == -1)
		goto out;
	envelope_add_rcpt(e, addr, orcpt, notify);
	rc = 0;
out:
	free(addr);
	free(orcpt);
	return rc;
}

/* "addr port"; 0 or -1. */
static int
env_parse_client(const char *v, size_t n, struct envelope *e)
{
	const char *sp;
	uint64_t port;

	if ((sp = memchr(v, ' ', n)) == NULL ||
	    env_number(sp + 1, (size_t)(v + n - sp - 1), ENV_PORT_MAX,
	    &port) == -1)
		return -1;
	e->client_port = (unsigned)port;
	return env_unescape_dup(v, (size_t)(sp - v), &e->client_addr);
}

/* The value v[0..n) of record rec into e; 0 or -1. */
static int
env_parse_value(enum env_rec rec, const char *v, size_t n,
    struct envelope *e)
{
	switch (rec) {
	case ENV_REC_ID:
		if (n != QID_LEN)
			return -1;
		memcpy(e->id, v, QID_LEN);
		e->id[QID_LEN] = '\0';
		return qid_valid(e->id) ? 0 : -1;
	case ENV_REC_ARRIVAL:
		return env_number(v, n, UINT64_MAX, &e->arrival_usec);
	case ENV_REC_CLIENT:
		return env_parse_client(v, n, e);
	case ENV_REC_CLIENT_NAME:
		return env_unescape_dup(v, n, &e->client_name);
	case ENV_REC_HELO:
		return env_unescape_dup(v, n, &e->helo);
	case ENV_REC_PROTO:
		return env_unescape_dup(v, n, &e->proto);
	case ENV_REC_AUTH:
		return env_unescape_dup(v, n, &e->auth);
	case ENV_REC_FROM:
		return env_unescape_dup(v, n, &e->from);
	case ENV_REC_BODY:
		if (env_tok_eq(v, n, "7BIT"))
			e->body = SMTP_BODYTYPE_7BIT;
		else if (env_tok_eq(v, n, "8BITMIME"))
			e->body = SMTP_BODYTYPE_8BITMIME;
		else
			return -1;
		return 0;
	case ENV_REC_SMTPUTF8:
		e->smtputf8 = true;
		return 0;
	case ENV_REC_RET:
		if (env_tok_eq(v, n, "FULL"))
			e->ret = SMTP_RET_FULL;
		else if (env_tok_eq(v, n, "HDRS"))
			e->ret = SMTP_RET_HDRS;
		else
			return -1;
		return 0;
	case ENV_REC_ENVID:
		return env_unescape_dup(v, n, &e->envid);
	case ENV_REC_RCPT:
		return env_parse_rcpt(v, n, e);
	case ENV_REC_END:
		return 0;
	}
	return -1;
}

/* Which record a line is, with its value; -1 if unknown or misshapen. */
static int
env_parse_key(const char *line, size_t n, const char **v, size_t *vlen)
{
	const char *sp = memchr(line, ' ', n);
	size_t	 klen = sp != NULL ? (size_t)(sp - line) : n;

	for (size_t i = 0; i < ARRAY_LEN(env_recs); i++) {
		if (!env_tok_eq(line, klen, env_recs[i].name))
			continue;
		if (env_recs[i].has_value != (sp != NULL))
			return -1;
		*v = sp != NULL ? sp + 1 : line + n;
		*vlen = sp != NULL ? (size_t)(line + n - sp - 1) : 0;
		return (int)i;
	}
	return -1;
}

int
envelope_parse(const char *buf, size_t len, size_t max_rcpt,
    struct envelope *e, size_t *body_off)
{
	const size_t magic_len = sizeof(ENV_MAGIC) - 1;
	const char *nl, *line, *v;
	size_t	 off, n, vlen;
	unsigned seen = 0;
	int	 rc = -1, rec;

	envelope_init(e);
	if (len == 0)
		return ENVELOPE_PARSE_MORE;
	/* the first line, exactly; a wrong prefix fails without waiting */
	if ((nl = memchr(buf, '\n', len)) == NULL) {
		if (len <= magic_len && memcmp(buf, ENV_MAGIC, len) == 0)
			rc = ENVELOPE_PARSE_MORE;
		goto out;
	}
	if ((size_t)(nl - buf) != magic_len ||
	    memcmp(buf, ENV_MAGIC, magic_len) != 0)
		goto out;
	for (off = magic_len + 1;; off += n + 1) {
		line = buf + off;
		if ((nl = memchr(line, '\n', len - off)) == NULL) {
			/* no NUL can ever become valid: fail now */
			if (memchr(line, '\0', len - off) == NULL)
				rc = ENVELOPE_PARSE_MORE;
			goto out;
		}
		n = (size_t)(nl - line);
		if (memchr(line, '\0', n) != NULL)
			goto out;
		if ((rec = env_parse_key(line, n, &v, &vlen)) == -1)
			goto out;
		if (rec == ENV_REC_RCPT) {
			/* bound memory before allocating the next one */
			if (e->nrcpt >= max_rcpt)
				goto out;
		} else if (seen & 1u << rec)
			goto out;
		seen |= 1u << rec;
		if (env_parse_value((enum env_rec)rec, v, vlen, e) == -1)
			goto out;
		if (rec == ENV_REC_END)
			break;
	}
	if ((seen & ENV_REQUIRED) != ENV_REQUIRED || e->nrcpt == 0)
		goto out;
	if (body_off != NULL)
		*body_off = off + n + 1;
	rc = 0;
out:
	if (rc != 0)
		envelope_fini(e);
	return rc;
}

/* Append s escaped to out at *o; false if it does not fit with a NUL. */
static bool
journal_put_esc(char *out, size_t cap, size_t *o, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		size_t	 need = env_needs_escape(c) ? 3 : 1;

		if (cap - *o < need + 1)
			return false;
		if (need == 3) {
			out[(*o)++] = '%';
			out[(*o)++] = env_hex[c >> 4];
			out[(*o)++] = env_hex[c & 15];
		} else
			out[(*o)++] = (char)c;
	}
	return true;
}

static const char *const journal_names[] = {
	[JOURNAL_DEFERRED] = "deferred",
	[JOURNAL_SENT] = "sent",
	[JOURNAL_BOUNCED] = "bounced",
	[JOURNAL_DELAYED] = "delayed",
};

int
journal_format(char *out, size_t cap, size_t idx, enum journal_status st,
    const char *dsn, const char *text)
{
	size_t	 o;
	int	 n;

	if ((unsigned)st >= ARRAY_LEN(journal_names))
		return -1;
	n = snprintf(out, cap, "%zu %s ", idx, journal_names[st]);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	o = (size_t)n;
	if (!journal_put_esc(out, cap, &o, dsn != NULL ? dsn : ""))
		return -1;
	if (cap - o < 2)
		return -1;
	out[o++] = ' ';
	if (!journal_put_esc(out, cap, &o, text != NULL ? text : ""))
		return -1;
	if (cap - o < 2 || o + 1 > INT_MAX)
		return -1;
	out[o++] = '\n';
	out[o] = '\0';
	return (int)o;
}

/*
 * One journal line without its "\n": "<idx> <status> <dsn> <text>".
 * Returns the status and sets *idx, or -1 if malformed.
 */
static int
journal_parse_line(const char *s, size_t n, size_t *idx)
{
	const char *f[4];
	size_t	 flen[4], k = 0, start = 0;
	uint64_t v;
	int	 st = -1;

	/* split on single spaces into exactly four fields */
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != ' ')
			continue;
		if (k == 4)
			return -1;
		f[k] = s + start;
		flen[k++] = i - start;
		start = i + 1;
	}
	if (k != 4 || env_number(f[0], flen[0], SIZE_MAX, &v) == -1)
		return -1;
	for (size_t i = 0; i < ARRAY_LEN(journal_names); i++)
		if (env_tok_eq(f[1], flen[1], journal_names[i]))
			st = (int)i;
	if (st == -1 || env_unescape(f[2], flen[2], NULL) == -1 ||
	    env_unescape(f[3], flen[3], NULL) == -1)
		return -1;
	*idx = (size_t)v;
	return st;
}

size_t
journal_replay(const char *buf, size_t len, size_t nrcpt, bool *final)
{
	const char *nl;
	size_t	 off, n, idx, count = 0;
	int	 st;

	for (size_t i = 0; i < nrcpt; i++)
		final[i] = false;
	/* a last line without "\n" is torn: the write did not finish */
	for (off = 0; off < len && (nl = memchr(buf + off, '\n',
	    len - off)) != NULL; off += n + 1) {
		n = (size_t)(nl - (buf + off));
		if (memchr(buf + off, '\0', n) != NULL)
			continue;
		st = journal_parse_line(buf + off, n, &idx);
		if (st != JOURNAL_SENT && st != JOURNAL_BOUNCED)
			continue;
		if (idx < nrcpt && !final[idx]) {
			final[idx] = true;
			count++;
		}
	}
	return count;
}

size_t
journal_replay_delayed(const char *buf, size_t len, size_t nrcpt,
    bool *delayed)
{
	const char *nl;
	size_t	 off, n, idx, count = 0;

	for (size_t i = 0; i < nrcpt; i++)
		delayed[i] = false;
	for (off = 0; off < len && (nl = memchr(buf + off, '\n',
	    len - off)) != NULL; off += n + 1) {
		n = (size_t)(nl - (buf + off));
		if (memchr(buf + off, '\0', n) != NULL)
			continue;
		if (journal_parse_line(buf + off, n, &idx) != JOURNAL_DELAYED)
			continue;
		if (idx < nrcpt && !delayed[idx]) {
			delayed[idx] = true;
			count++;
		}
	}
	return count;
}
