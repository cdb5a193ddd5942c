#ifndef PETREL_SMTP_PARSE_H
#define PETREL_SMTP_PARSE_H
/*
 * parse.h: pure parsers for SMTP command lines, paths (RFC 5321 4.1.2,
 * RFC 6531) and ESMTP parameters (SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH,
 * NOTIFY, ORCPT). No I/O, no logging, no globals.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_LOCAL_MAX		64	/* RFC 5321 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX		255	/* RFC 5321 4.5.3.1.2 */
#define SMTP_PATH_MAX		256	/* RFC 5321 4.5.3.1.3, incl. < > */
#define SMTP_ENVID_MAX		100	/* RFC 3461 4.4 */
#define SMTP_ORCPT_MAX		500	/* RFC 3461 4.2 */
#define SMTP_AUTH_PARAM_MAX	512

enum smtp_verb {
	SMTP_CMD_UNKNOWN = 0,
	SMTP_CMD_HELO,
	SMTP_CMD_EHLO,
	SMTP_CMD_MAIL,
	SMTP_CMD_RCPT,
	SMTP_CMD_DATA,
	SMTP_CMD_BDAT,
	SMTP_CMD_RSET,
	SMTP_CMD_NOOP,
	SMTP_CMD_QUIT,
	SMTP_CMD_VRFY,
	SMTP_CMD_EXPN,
	SMTP_CMD_HELP,
	SMTP_CMD_STARTTLS,
	SMTP_CMD_AUTH,
};

enum smtp_parse_err {
	SMTP_PARSE_OK = 0,
	SMTP_PARSE_SYNTAX = -1,		/* 501 5.5.2 command syntax */
	SMTP_PARSE_ADDR = -2,		/* 501 5.1.7 (MAIL) / 5.1.3 (RCPT) */
	SMTP_PARSE_ADDR_LONG = -3,	/* 501 5.1.7/5.1.3 path too long */
	SMTP_PARSE_PARAM_UNKNOWN = -4,	/* 555 5.5.4 unrecognized parameter */
	SMTP_PARSE_PARAM_SYNTAX = -5,	/* 501 5.5.4 invalid parameter value */
	SMTP_PARSE_UTF8 = -6,		/* 553 5.6.7 UTF-8 without SMTPUTF8 */
	SMTP_PARSE_BODY = -7,		/* 504 5.5.4 BODY=BINARYMIME etc. */
};

/* One command line, CRLF removed. arg points into the input. */
struct smtp_cmd {
	enum smtp_verb	 verb;
	const char	*arg;		/* borrowed: after verb and one SP */
	size_t		 arg_len;	/* 0 if no argument */
};

/*
 * Split a command line (without CRLF) into verb and argument. Verbs are
 * case-insensitive. Returns SMTP_PARSE_OK (verb may be SMTP_CMD_UNKNOWN)
 * or SMTP_PARSE_SYNTAX if the line holds NUL, CR or LF.
 */
int	smtp_parse_cmd(const char *line, size_t len, struct smtp_cmd *out);

/* A parsed path, normalised. */
struct smtp_addr {
	/*
	 * "local@domain", NUL-terminated; "" for the null path <>. The domain
	 * is lowercased (ASCII letters only); a quoted local part that needs
	 * no quotes is unquoted, otherwise kept quoted as sent.
	 */
	char	 addr[SMTP_PATH_MAX + 1];
	size_t	 local_len;	/* bytes of the local part in addr */
	bool	 utf8;		/* holds non-ASCII (needs SMTPUTF8) */
	bool	 had_route;	/* an A-d-l source route was stripped */
};

#define SMTP_NOTIFY_NEVER	0x01u
#define SMTP_NOTIFY_SUCCESS	0x02u
#define SMTP_NOTIFY_FAILURE	0x04u
#define SMTP_NOTIFY_DELAY	0x08u

enum smtp_body_type { SMTP_BODYTYPE_NONE = 0, SMTP_BODYTYPE_7BIT,
	SMTP_BODYTYPE_8BITMIME };
enum smtp_ret { SMTP_RET_NONE = 0, SMTP_RET_FULL, SMTP_RET_HDRS };

struct smtp_mail_cmd {
	struct smtp_addr	 from;
	bool			 has_size;
	uint64_t		 size;		/* SIZE= (RFC 1870) */
	enum smtp_body_type	 body;		/* BODY= (RFC 6152) */
	bool			 smtputf8;	/* SMTPUTF8 (RFC 6531) */
	enum smtp_ret		 ret;		/* RET= (RFC 3461) */
	char			 envid[SMTP_ENVID_MAX + 1]; /* xtext as sent,
							       "" if none */
	char			 auth[SMTP_AUTH_PARAM_MAX + 1]; /* AUTH= xtext
							       (RFC 4954) */
};

struct smtp_rcpt_cmd {
	struct smtp_addr	 to;
	unsigned		 notify;	/* SMTP_NOTIFY_* bits; 0 = absent */
	char			 orcpt[SMTP_ORCPT_MAX + 1]; /* "addr-type;xtext"
							       as sent, "" */
};

/*
 * Parse the argument of MAIL ("FROM:<path> [params]"). Duplicate
 * parameters are SMTP_PARSE_PARAM_SYNTAX. A UTF-8 path without the
 * SMTPUTF8 parameter is SMTP_PARSE_UTF8.
 */
int	smtp_parse_mail(const char *arg, size_t len, struct smtp_mail_cmd *out);
/*
 * Parse the argument of RCPT ("TO:<path> [params]"). The null path is
 * refused; "<postmaster>" is accepted (addr "postmaster", no domain).
 * utf8 says whether the transaction's MAIL carried SMTPUTF8.
 */
int	smtp_parse_rcpt(const char *arg, size_t len, bool utf8,
	    struct smtp_rcpt_cmd *out);
/*
 * Parse a bare path "<...>" (no surrounding space: callers strip it) into
 * out. allow_null permits "<>". Used by the above and by VRFY-style callers.
 */
int	smtp_parse_path(const char *s, size_t len, bool allow_null,
	    struct smtp_addr *out);
/* Validate an xtext (RFC 3461 4) of at most max bytes. */
bool	smtp_xtext_valid(const char *s, size_t len, size_t max);
/*
 * Decode xtext into out (cap bytes incl. NUL). Returns decoded length or
 * -1 if invalid or too long.
 */
long	smtp_xtext_decode(const char *s, size_t len, char *out, size_t cap);
/* The domain part of a normalised addr ("" if none). Borrowed. */
const char *smtp_addr_domain(const struct smtp_addr *a);
/* Validate a HELO/EHLO argument: a domain or address literal. */
bool	smtp_helo_valid(const char *s, size_t len);

#endif
