/*
 * parse.c: pure parsers for SMTP command lines, paths and ESMTP parameters.
 * No I/O, logging, allocation or globals: every result goes into a struct
 * the caller owns, every slice points into the caller's input.
 */
#include "smtp/parse.h"

#include <arpa/inet.h>
#include <string.h>

#include "core/util.h"

/* MAIL parameters seen so far: a second one is a syntax error. */
#define SEEN_SIZE	0x01u
#define SEEN_BODY	0x02u
#define SEEN_SMTPUTF8	0x04u
#define SEEN_RET	0x08u
#define SEEN_ENVID	0x10u
#define SEEN_AUTH	0x20u
/* RCPT parameters. */
#define SEEN_NOTIFY	0x01u
#define SEEN_ORCPT	0x02u

#define SMTP_LABEL_MAX	63	/* RFC 1035 2.3.4 */
#define SMTP_SIZE_DIGITS 20	/* UINT64_MAX has 20 digits */

static const struct {
	const char	*name;
	enum smtp_verb	 verb;
} smtp_verbs[] = {
	{ "HELO", SMTP_CMD_HELO },
	{ "EHLO", SMTP_CMD_EHLO },
	{ "MAIL", SMTP_CMD_MAIL },
	{ "RCPT", SMTP_CMD_RCPT },
	{ "DATA", SMTP_CMD_DATA },
	{ "BDAT", SMTP_CMD_BDAT },
	{ "RSET", SMTP_CMD_RSET },
	{ "NOOP", SMTP_CMD_NOOP },
	{ "QUIT", SMTP_CMD_QUIT },
	{ "VRFY", SMTP_CMD_VRFY },
	{ "EXPN", SMTP_CMD_EXPN },
	{ "HELP", SMTP_CMD_HELP },
	{ "STARTTLS", SMTP_CMD_STARTTLS },
	{ "AUTH", SMTP_CMD_AUTH },
};

/* One "KEYWORD[=VALUE]" of a MAIL or RCPT command; slices of the line. */
struct param {
	const char	*key;		/* borrowed */
	size_t		 key_len;
	const char	*val;		/* borrowed; NULL if no '=' */
	size_t		 val_len;
};

static bool
is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool
prefix_nocase(const char *s, size_t len, const char *lit)
{
	size_t	 n = strlen(lit);

	return len >= n && str_case_eq(s, n, lit);
}

/* RFC 5322 3.2.3 atext, ASCII part. */
static bool
is_atext(unsigned char c)
{
	return is_alpha(c) || ascii_digit(c) || (c != '\0' &&
	    strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/*
 * Length of the well-formed UTF-8 sequence at s (RFC 3629 4), 0 if there
 * is none: no overlongs, no surrogates, nothing past U+10FFFF.
 */
static size_t
utf8_len(const unsigned char *s, size_t len)
{
	unsigned char	 lo = 0x80, hi = 0xbf;
	size_t		 n, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (s[0] == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		if (s[0] == 0xf0)
			lo = 0x90;	/* overlong */
		else if (s[0] == 0xf4)
			hi = 0x8f;	/* > U+10FFFF */
	} else
		return 0;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/*
 * Length of the Dot-string (RFC 5321 4.1.2, atext widened to UTF-8 by
 * RFC 6531 3.3) that starts s; 0 if it is empty or has an empty atom.
 * Sets *utf8 on non-ASCII.
 */
static size_t
dot_string_len(const unsigned char *s, size_t len, bool *utf8)
{
	size_t	 i = 0, start, n;

	for (;;) {
		start = i;
		while (i < len) {
			if (is_atext(s[i]))
				i++;
			else if (s[i] >= 0x80 && (n = utf8_len(s + i,
			    len - i)) != 0) {
				*utf8 = true;
				i += n;
			} else
				break;
		}
		if (i == start)
			return 0;	/* leading, trailing or double dot */
		if (i < len && s[i] == '.') {
			i++;
			continue;
		}
		return i;
	}
}

/*
 * Length of the Quoted-string (RFC 5321 4.1.2 qtextSMTP, quoted-pairSMTP;
 * RFC 6531 3.3 UTF-8 qtext) that starts s; s[0] is '"'. 0 if malformed.
 */
static size_t
quoted_string_len(const unsigned char *s, size_t len, bool *utf8)
{
	size_t	 i = 1, n;

	while (i < len && s[i] != '"') {
		if (s[i] == '\\') {
			if (i + 1 >= len || s[i + 1] < 32 || s[i + 1] > 126)
				return 0;
			i += 2;
		} else if (s[i] >= 0x80) {
			if ((n = utf8_len(s + i, len - i)) == 0)
				return 0;
			*utf8 = true;
			i += n;
		} else if (s[i] < 32 || s[i] > 126)
			return 0;
		else
			i++;
	}
	return i < len ? i + 1 : 0;
}

/*
 * Check a Domain (RFC 5321 4.1.2; U-labels per RFC 6531 3.3): dot-separated
 * labels of letters, digits and inner hyphens, at most 63 octets each.
 * HELO arguments may carry '_' (allow_us): real clients send them.
 */
static int
domain_check(const unsigned char *s, size_t len, bool allow_us, bool *utf8)
{
	size_t	 i = 0, start, n;

	if (len == 0)
		return SMTP_PARSE_ADDR;
	if (len > SMTP_DOMAIN_MAX)
		return SMTP_PARSE_ADDR_LONG;
	for (;;) {
		start = i;
		while (i < len && s[i] != '.') {
			if (s[i] >= 0x80) {
				if ((n = utf8_len(s + i, len - i)) == 0)
					return SMTP_PARSE_ADDR;
				*utf8 = true;
				i += n;
			} else if (is_alpha(s[i]) || ascii_digit(s[i]) ||
			    s[i] == '-' || (allow_us && s[i] == '_'))
				i++;
			else
				return SMTP_PARSE_ADDR;
		}
		if (i == start || i - start > SMTP_LABEL_MAX ||
		    s[start] == '-' || s[i - 1] == '-')
			return SMTP_PARSE_ADDR;
		if (i == len)
			return SMTP_PARSE_OK;
		i++;	/* the dot; a trailing one fails as an empty label */
	}
}

/*
 * Check an address-literal "[...]" (RFC 5321 4.1.3): IPv4 or "IPv6:" only;
 * General-address-literal tags are refused. inet_pton is pure.
 */
static bool
addr_literal_ok(const unsigned char *s, size_t len)
{
	char		 buf[64];
	unsigned char	 bin[16];
	int		 af = AF_INET;

	if (len < 2 || s[0] != '[' || s[len - 1] != ']')
		return false;
	s++;
	len -= 2;
	if (prefix_nocase((const char *)s, len, "IPv6:")) {
		af = AF_INET6;
		s += 5;
		len -= 5;
	}
	if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len) != NULL)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return inet_pton(af, buf, bin) == 1;
}

/* Copy n bytes to out->addr at *pos. Fits: the path was checked first. */
static void
addr_put(struct smtp_addr *out, size_t *pos, const unsigned char *s,
    size_t n, bool lower)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		out->addr[*pos + i] = lower ? ascii_lower(s[i]) : s[i];
	*pos += n;
	out->addr[*pos] = '\0';
}

/*
 * Write the local part p[0..n) to out. A quoted one whose content is a
 * valid Dot-string goes out without quotes (RFC 5321 4.1.2 SHOULD);
 * otherwise as sent. Returns SMTP_PARSE_ADDR if the content is empty.
 */
static int
local_put(struct smtp_addr *out, size_t *pos, const unsigned char *p,
    size_t n, bool quoted)
{
	unsigned char	 buf[SMTP_LOCAL_MAX];
	size_t		 i, blen = 0;
	bool		 dummy = false;

	if (!quoted) {
		addr_put(out, pos, p, n, false);
		return SMTP_PARSE_OK;
	}
	for (i = 1; i + 1 < n; i++) {
		if (p[i] == '\\')
			i++;
		buf[blen++] = p[i];
	}
	if (blen == 0)
		return SMTP_PARSE_ADDR;	/* "" is no mailbox */
	if (dot_string_len(buf, blen, &dummy) == blen)
		addr_put(out, pos, buf, blen, false);
	else
		addr_put(out, pos, p, n, false);
	return SMTP_PARSE_OK;
}

/* Skip an A-d-l source route "@d1,@d2:" (RFC 5321 4.1.2, C). */
static int
route_skip(const unsigned char *s, size_t len, size_t *off, bool *utf8)
{
	const unsigned char	*colon, *end;
	size_t			 i = 0;
	int			 rc;

	if ((colon = memchr(s, ':', len)) == NULL)
		return SMTP_PARSE_ADDR;
	len = colon - s;
	while (i < len) {
		if (s[i] != '@')
			return SMTP_PARSE_ADDR;
		i++;
		end = memchr(s + i, ',', len - i);
		if (end == NULL)
			end = s + len;
		rc = domain_check(s + i, end - (s + i), false, utf8);
		if (rc != SMTP_PARSE_OK)
			return SMTP_PARSE_ADDR;
		i = end - s;
		if (i < len && ++i == len)
			return SMTP_PARSE_ADDR;	/* trailing ',' */
	}
	*off = len + 1;
	return SMTP_PARSE_OK;
}

int
smtp_parse_cmd(const char *line, size_t len, struct smtp_cmd *out)
{
	const char	*sp;
	size_t		 i, vlen;

	out->verb = SMTP_CMD_UNKNOWN;
	out->arg = len == 0 ? line : line + len;
	out->arg_len = 0;
	/* RFC 5321 2.3.8: bare CR or LF inside a line is not SMTP. */
	for (i = 0; i < len; i++)
		if (line[i] == '\0' || line[i] == '\r' || line[i] == '\n')
			return SMTP_PARSE_SYNTAX;
	sp = len == 0 ? NULL : memchr(line, ' ', len);
	vlen = sp == NULL ? len : (size_t)(sp - line);
	for (i = 0; i < sizeof(smtp_verbs) / sizeof(smtp_verbs[0]); i++)
		if (str_case_eq(line, vlen, smtp_verbs[i].name)) {
			out->verb = smtp_verbs[i].verb;
			break;
		}
	if (sp != NULL) {
		out->arg = sp + 1;
		out->arg_len = len - vlen - 1;
	}
	return SMTP_PARSE_OK;
}

int
smtp_parse_path(const char *s, size_t len, bool allow_null,
    struct smtp_addr *out)
{
	const unsigned char	*p = (const unsigned char *)s;
	const unsigned char	*dom;
	size_t			 off = 0, n, dlen, pos = 0;
	bool			 quoted;
	int			 rc;

	memset(out, 0, sizeof(*out));
	/* RFC 5321 4.5.3.1.3; also bounds what goes into out->addr. */
	if (len > SMTP_PATH_MAX)
		return SMTP_PARSE_ADDR_LONG;
	if (len < 2 || p[0] != '<' || p[len - 1] != '>')
		return SMTP_PARSE_ADDR;
	p++;
	len -= 2;
	if (len == 0)
		return allow_null ? SMTP_PARSE_OK : SMTP_PARSE_ADDR;
	if (p[0] == '@') {
		if ((rc = route_skip(p, len, &off, &out->utf8)) != 0)
			return rc;
		out->had_route = true;
		p += off;
		len -= off;
	}

	/* Local-part "@" ( Domain / address-literal ) */
	quoted = len > 0 && p[0] == '"';
	if (quoted)
		n = quoted_string_len(p, len, &out->utf8);
	else
		n = dot_string_len(p, len, &out->utf8);
	if (n == 0 || n >= len || p[n] != '@')
		return SMTP_PARSE_ADDR;
	/* RFC 5321 4.5.3.1.1: the local part as sent, quotes included. */
	if (n > SMTP_LOCAL_MAX)
		return SMTP_PARSE_ADDR_LONG;
	/* The path limit keeps dlen under SMTP_DOMAIN_MAX here. */
	dom = p + n + 1;
	dlen = len - n - 1;
	if (dlen > 0 && dom[0] == '[') {
		if (!addr_literal_ok(dom, dlen))
			return SMTP_PARSE_ADDR;
	} else if ((rc = domain_check(dom, dlen, false, &out->utf8)) != 0)
		return rc;

	if ((rc = local_put(out, &pos, p, n, quoted)) != 0)
		return rc;
	out->local_len = pos;
	addr_put(out, &pos, (const unsigned char *)"@", 1, false);
	addr_put(out, &pos, dom, dlen, true);
	return SMTP_PARSE_OK;
}

/*
 * After "FROM:" / "TO:" and optional spaces (tolerated, like Postfix),
 * find the "<...>" path: the first '>' outside a quoted string.
 */
static int
path_span(const char *s, size_t len, size_t *plen)
{
	size_t	 i;
	bool	 inq = false;

	if (len == 0 || s[0] != '<')
		return SMTP_PARSE_ADDR;	/* missing or bare address */
	for (i = 1; i < len; i++) {
		if (inq && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			inq = !inq;
		else if (!inq && s[i] == '>') {
			*plen = i + 1;
			return SMTP_PARSE_OK;
		}
	}
	return SMTP_PARSE_ADDR;
}

/*
 * Split "KEYWORD[=VALUE]" (RFC 5321 4.1.2 esmtp-param): keyword is
 * (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"), value 1*(%d33-60 / %d62-126).
 */
static int
param_split(const char *s, size_t len, struct param *pm)
{
	const char	*eq;
	size_t		 i;

	eq = memchr(s, '=', len);
	pm->key = s;
	pm->key_len = eq == NULL ? len : (size_t)(eq - s);
	pm->val = eq == NULL ? NULL : eq + 1;
	pm->val_len = eq == NULL ? 0 : len - pm->key_len - 1;
	if (pm->key_len == 0)
		return SMTP_PARSE_PARAM_SYNTAX;
	for (i = 0; i < pm->key_len; i++)
		if (!is_alpha(s[i]) && !ascii_digit(s[i]) &&
		    (i == 0 || s[i] != '-'))
			return SMTP_PARSE_PARAM_SYNTAX;
	if (pm->val != NULL && pm->val_len == 0)
		return SMTP_PARSE_PARAM_SYNTAX;
	for (i = 0; i < pm->val_len; i++)
		if ((unsigned char)pm->val[i] < 33 ||
		    (unsigned char)pm->val[i] > 126 || pm->val[i] == '=')
			return SMTP_PARSE_PARAM_SYNTAX;
	return SMTP_PARSE_OK;
}

/* Copy an xtext value of at most max bytes into out (max + 1 bytes). */
static int
xtext_param(const struct param *pm, size_t max, char *out)
{
	if (pm->val == NULL || !smtp_xtext_valid(pm->val, pm->val_len, max))
		return SMTP_PARSE_PARAM_SYNTAX;
	memcpy(out, pm->val, pm->val_len);
	out[pm->val_len] = '\0';
	return SMTP_PARSE_OK;
}

/* RFC 1870 6: size-value = 1*20DIGIT. */
static int
size_param(const struct param *pm, uint64_t *size)
{
	uint64_t	 v = 0;
	size_t		 i;

	if (pm->val == NULL || pm->val_len > SMTP_SIZE_DIGITS)
		return SMTP_PARSE_PARAM_SYNTAX;
	for (i = 0; i < pm->val_len; i++) {
		if (!ascii_digit(pm->val[i]))
			return SMTP_PARSE_PARAM_SYNTAX;
		if (v > (UINT64_MAX - (pm->val[i] - '0')) / 10)
			return SMTP_PARSE_PARAM_SYNTAX;
		v = v * 10 + (pm->val[i] - '0');
	}
	*size = v;
	return SMTP_PARSE_OK;
}

static int
mail_param(const struct param *pm, unsigned *seen, struct smtp_mail_cmd *out)
{
	unsigned	 bit;

	if (str_case_eq(pm->key, pm->key_len, "SIZE"))
		bit = SEEN_SIZE;
	else if (str_case_eq(pm->key, pm->key_len, "BODY"))
		bit = SEEN_BODY;
	else if (str_case_eq(pm->key, pm->key_len, "SMTPUTF8"))
		bit = SEEN_SMTPUTF8;
	else if (str_case_eq(pm->key, pm->key_len, "RET"))
		bit = SEEN_RET;
	else if (str_case_eq(pm->key, pm->key_len, "ENVID"))
		bit = SEEN_ENVID;
	else if (str_case_eq(pm->key, pm->key_len, "AUTH"))
		bit = SEEN_AUTH;
	else
		return SMTP_PARSE_PARAM_UNKNOWN;
	if (*seen & bit)
		return SMTP_PARSE_PARAM_SYNTAX;
	*seen |= bit;

	switch (bit) {
	case SEEN_SIZE:
		out->has_size = true;
		return size_param(pm, &out->size);
	case SEEN_BODY:
		/* RFC 6152 2; BINARYMIME (RFC 3030) needs CHUNKING we lack. */
		if (pm->val == NULL)
			return SMTP_PARSE_PARAM_SYNTAX;
		if (str_case_eq(pm->val, pm->val_len, "7BIT"))
			out->body = SMTP_BODYTYPE_7BIT;
		else if (str_case_eq(pm->val, pm->val_len, "8BITMIME"))
			out->body = SMTP_BODYTYPE_8BITMIME;
		else
			return SMTP_PARSE_BODY;
		return SMTP_PARSE_OK;
	case SEEN_SMTPUTF8:
		/* RFC 6531 3.4: the parameter takes no value. */
		if (pm->val != NULL)
			return SMTP_PARSE_PARAM_SYNTAX;
		out->smtputf8 = true;
		return SMTP_PARSE_OK;
	case SEEN_RET:
		/* RFC 3461 4.3 */
		if (pm->val == NULL)
			return SMTP_PARSE_PARAM_SYNTAX;
		if (str_case_eq(pm->val, pm->val_len, "FULL"))
			out->ret = SMTP_RET_FULL;
		else if (str_case_eq(pm->val, pm->val_len, "HDRS"))
			out->ret = SMTP_RET_HDRS;
		else
			return SMTP_PARSE_PARAM_SYNTAX;
		return SMTP_PARSE_OK;
	case SEEN_ENVID:
		/* RFC 3461 4.4: xtext, at most 100 characters. */
		return xtext_param(pm, SMTP_ENVID_MAX, out->envid);
	default:
		/* RFC 4954 5: AUTH=xtext or AUTH=<>, which is xtext too. */
		return xtext_param(pm, SMTP_AUTH_PARAM_MAX, out->auth);
	}
}

/*
 * RFC 3461 4.1: NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY,
 * each at most once.
 */
static int
notify_param(const struct param *pm, unsigned *notify)
{
	const char	*s = pm->val, *end, *comma;
	unsigned	 bit;
	size_t		 n;

	if (s == NULL)
		return SMTP_PARSE_PARAM_SYNTAX;
	end = s + pm->val_len;
	for (;;) {
		comma = memchr(s, ',', end - s);
		n = (comma == NULL ? end : comma) - s;
		if (str_case_eq(s, n, "NEVER"))
			bit = SMTP_NOTIFY_NEVER;
		else if (str_case_eq(s, n, "SUCCESS"))
			bit = SMTP_NOTIFY_SUCCESS;
		else if (str_case_eq(s, n, "FAILURE"))
			bit = SMTP_NOTIFY_FAILURE;
		else if (str_case_eq(s, n, "DELAY"))
			bit = SMTP_NOTIFY_DELAY;
		else
			return SMTP_PARSE_PARAM_SYNTAX;
		if (*notify & bit)
			return SMTP_PARSE_PARAM_SYNTAX;
		*notify |= bit;
		if (comma == NULL)
			break;
		s = comma + 1;
	}
	if ((*notify & SMTP_NOTIFY_NEVER) && *notify != SMTP_NOTIFY_NEVER)
		return SMTP_PARSE_PARAM_SYNTAX;
	return SMTP_PARSE_OK;
}

/* RFC 3461 4.2: ORCPT=addr-type ";" xtext, at most 500 characters. */
static int
orcpt_param(const struct param *pm, char *out)
{
	const char	*semi;
	size_t		 i, tlen;

	if (pm->val == NULL || pm->val_len > SMTP_ORCPT_MAX ||
	    (semi = memchr(pm->val, ';', pm->val_len)) == NULL)
		return SMTP_PARSE_PARAM_SYNTAX;
	tlen = semi - pm->val;
	if (tlen == 0 || tlen + 1 == pm->val_len)
		return SMTP_PARSE_PARAM_SYNTAX;
	for (i = 0; i < tlen; i++)
		if (!is_alpha(pm->val[i]) && !ascii_digit(pm->val[i]) &&
		    pm->val[i] != '-')
			return SMTP_PARSE_PARAM_SYNTAX;
	if (!smtp_xtext_valid(semi + 1, pm->val_len - tlen - 1,
	    SMTP_ORCPT_MAX))
		return SMTP_PARSE_PARAM_SYNTAX;
	memcpy(out, pm->val, pm->val_len);
	out[pm->val_len] = '\0';
	return SMTP_PARSE_OK;
}

static int
rcpt_param(const struct param *pm, unsigned *seen, struct smtp_rcpt_cmd *out)
{
	if (str_case_eq(pm->key, pm->key_len, "NOTIFY")) {
		if (*seen & SEEN_NOTIFY)
			return SMTP_PARSE_PARAM_SYNTAX;
		*seen |= SEEN_NOTIFY;
		return notify_param(pm, &out->notify);
	}
	if (str_case_eq(pm->key, pm->key_len, "ORCPT")) {
		if (*seen & SEEN_ORCPT)
			return SMTP_PARSE_PARAM_SYNTAX;
		*seen |= SEEN_ORCPT;
		return orcpt_param(pm, out->orcpt);
	}
	return SMTP_PARSE_PARAM_UNKNOWN;
}

/*
 * Take the next of the SP-separated parameters in s[0..len) from *pos
 * (RFC 5321 4.1.2 Mail-parameters, Rcpt-parameters); extra spaces are
 * tolerated. Returns 1 with *pm set, 0 at the end, or an error.
 */
static int
param_next(const char *s, size_t len, size_t *pos, struct param *pm)
{
	const char	*sp;
	size_t		 i = *pos, n;
	int		 rc;

	while (i < len && s[i] == ' ')
		i++;
	if (i == len)
		return 0;
	sp = memchr(s + i, ' ', len - i);
	n = (sp == NULL ? s + len : sp) - (s + i);
	if ((rc = param_split(s + i, n, pm)) != 0)
		return rc;
	*pos = i + n;
	return 1;
}

/*
 * Common front of MAIL and RCPT: prefix, optional spaces, path span, then
 * SP or end. *off and *plen locate the path.
 */
static int
cmd_front(const char *arg, size_t len, const char *prefix, size_t *off,
    size_t *plen)
{
	size_t	 i;
	int	 rc;

	if (!prefix_nocase(arg, len, prefix))
		return SMTP_PARSE_SYNTAX;
	for (i = strlen(prefix); i < len && arg[i] == ' '; i++)
		;
	if ((rc = path_span(arg + i, len - i, plen)) != 0)
		return rc;
	*off = i;
	if (i + *plen < len && arg[i + *plen] != ' ')
		return SMTP_PARSE_SYNTAX;	/* junk glued to the path */
	return SMTP_PARSE_OK;
}

int
smtp_parse_mail(const char *arg, size_t len, struct smtp_mail_cmd *out)
{
	struct param	 pm;
	size_t		 off, plen;
	unsigned	 seen = 0;
	int		 rc;

	memset(out, 0, sizeof(*out));
	if ((rc = cmd_front(arg, len, "FROM:", &off, &plen)) != 0)
		return rc;
	if ((rc = smtp_parse_path(arg + off, plen, true, &out->from)) != 0)
		return rc;
	off += plen;
	while ((rc = param_next(arg, len, &off, &pm)) == 1)
		if ((rc = mail_param(&pm, &seen, out)) != 0)
			return rc;
	if (rc != 0)
		return rc;
	/* RFC 6531 3.4: a UTF-8 path needs the SMTPUTF8 parameter. */
	if (out->from.utf8 && !out->smtputf8)
		return SMTP_PARSE_UTF8;
	return SMTP_PARSE_OK;
}

int
smtp_parse_rcpt(const char *arg, size_t len, bool utf8,
    struct smtp_rcpt_cmd *out)
{
	struct param	 pm;
	size_t		 off, plen;
	unsigned	 seen = 0;
	int		 rc;

	memset(out, 0, sizeof(*out));
	if ((rc = cmd_front(arg, len, "TO:", &off, &plen)) != 0)
		return rc;
	/* RFC 5321 4.1.1.3: "<Postmaster>" without domain, any case. */
	if (str_case_eq(arg + off, plen, "<postmaster>")) {
		memcpy(out->to.addr, "postmaster", 11);
		out->to.local_len = 10;
	} else if ((rc = smtp_parse_path(arg + off, plen, false,
	    &out->to)) != 0)
		return rc;
	off += plen;
	while ((rc = param_next(arg, len, &off, &pm)) == 1)
		if ((rc = rcpt_param(&pm, &seen, out)) != 0)
			return rc;
	if (rc != 0)
		return rc;
	if (out->to.utf8 && !utf8)
		return SMTP_PARSE_UTF8;
	return SMTP_PARSE_OK;
}

static bool
is_upper_hex(unsigned char c)
{
	return ascii_digit(c) || (c >= 'A' && c <= 'F');
}

bool
smtp_xtext_valid(const char *s, size_t len, size_t max)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0;

	if (len > max)
		return false;
	/* RFC 3461 4: xchar is 33..126 but '+' and '='; hexchar "+HH". */
	while (i < len) {
		if (p[i] == '+') {
			if (len - i < 3 || !is_upper_hex(p[i + 1]) ||
			    !is_upper_hex(p[i + 2]))
				return false;
			i += 3;
		} else if (p[i] < 33 || p[i] > 126 || p[i] == '=')
			return false;
		else
			i++;
	}
	return true;
}

static int
hex_val(unsigned char c)
{
	return ascii_digit(c) ? c - '0' : c - 'A' + 10;
}

long
smtp_xtext_decode(const char *s, size_t len, char *out, size_t cap)
{
	size_t	 i = 0, n = 0;

	if (cap == 0 || !smtp_xtext_valid(s, len, len))
		return -1;
	while (i < len) {
		if (n + 1 >= cap)
			return -1;
		if (s[i] == '+') {
			out[n++] = (char)(hex_val(s[i + 1]) << 4 |
			    hex_val(s[i + 2]));
			i += 3;
		} else
			out[n++] = s[i++];
	}
	out[n] = '\0';
	return (long)n;
}

const char *
smtp_addr_domain(const struct smtp_addr *a)
{
	if (a->local_len < SMTP_PATH_MAX && a->addr[a->local_len] == '@')
		return a->addr + a->local_len + 1;
	return "";
}

bool
smtp_helo_valid(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s;
	bool			 utf8 = false;

	if (len == 0)
		return false;
	if (p[0] == '[')
		return addr_literal_ok(p, len);	/* short by nature */
	return domain_check(p, len, true, &utf8) == SMTP_PARSE_OK;
}
