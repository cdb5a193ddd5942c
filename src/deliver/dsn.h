#ifndef PETREL_DELIVER_DSN_H
#define PETREL_DELIVER_DSN_H
/*
 * dsn.h: delivery status notifications (RFC 3461 6, RFC 3464, RFC 6522
 * multipart/report, RFC 6533 for SMTPUTF8 mail) and the NOTIFY rules that
 * say when one is due. Pure: no I/O, clock, randomness or globals; times
 * and the MIME boundary come in as arguments.
 *
 * The report goes out with the null reverse-path (RFC 3461 6.1); writing
 * its envelope is the caller's job, guided by struct dsn_out.
 *
 * Content choices (documented here because callers and tests rely on them):
 * - A report with any "failed" recipient is a failure report; else one with
 *   any "delayed" recipient is a delay notice; else a success report.
 * - Only a failure report returns the full message, and only when RET is
 *   FULL or absent, the message is at most return_max bytes and it can be
 *   carried verbatim (CRLF lines of at most 998 bytes, no NUL, and, unless
 *   the envelope had SMTPUTF8, no byte >= 0x80). Otherwise the header
 *   section alone is returned (cut at a line end to return_max bytes);
 *   headers that cannot be carried verbatim go as quoted-printable
 *   text/rfc822-headers. An empty message or header section is left out.
 * - Without SMTPUTF8 the report is 7-bit ASCII: message/delivery-status,
 *   message/rfc822, text/rfc822-headers. With SMTPUTF8, a part that needs
 *   8-bit bytes uses the RFC 6533 type instead (message/global-delivery-
 *   status with the "utf-8" address type, message/global, message/global-
 *   headers), 8bit encoded; a part that does not stays in the 7-bit form.
 * - Original-Envelope-Id and Original-Recipient carry the ENVID and ORCPT
 *   xtext-decoded (RFC 3461 6.3 a, d); a value that decodes to controls or
 *   (without SMTPUTF8) 8-bit bytes, or does not decode, is kept as sent.
 * - Remote diagnostics are untrusted: CR, LF and controls become spaces
 *   (a multiline reply is joined, its repeated codes dropped), 8-bit bytes
 *   '?', runs of spaces collapse, at most DSN_DIAG_MAX bytes are kept, and
 *   Diagnostic-Code is one unfolded line ("smtp; " if it reads like a reply,
 *   else "X-Petrel; "). No line exceeds 998 bytes; every line ends in CRLF.
 * - The boundary is made unique (RFC 2046 5.1.1): while a line of some part
 *   starts with "--" and the candidate, a character is appended (a caller's
 *   boundary over 62 bytes is first cut to 62, so the result fits in 70).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/envelope.h"

#define DSN_DIAG_MAX		512	/* bytes of remote text kept */
#define DSN_BOUNDARY_MAX	70	/* RFC 2046 5.1.1 */
#define DSN_HOST_MAX		255	/* RFC 5321 4.5.3.1.2 */

/* Per-recipient outcome, the Action field of RFC 3464 2.3.3. */
enum dsn_action {
	DSN_ACTION_FAILED = 0,
	DSN_ACTION_DELAYED,
	DSN_ACTION_DELIVERED,
	DSN_ACTION_RELAYED,	/* passed to a system without DSN support */
	DSN_ACTION_EXPANDED,	/* delivered to an alias / list */
};

struct dsn_rcpt {
	const char	*addr;		/* borrowed: final recipient,
					   "local@domain" */
	const char	*orcpt;		/* borrowed or NULL: ORCPT as sent,
					   "addr-type;xtext" */
	enum dsn_action	 action;
	const char	*status;	/* borrowed or NULL: "5.1.1"; if NULL,
					   malformed or of a class that does
					   not fit action: x.0.0 */
	const char	*remote_mta;	/* borrowed or NULL: host that
					   answered */
	const char	*diag;		/* borrowed or NULL: reply text,
					   untrusted, "550 5.1.1 no such" */
	int64_t		 last_attempt;	/* seconds since the epoch; 0 = omit */
	int64_t		 retry_until;	/* seconds; 0 = omit; delayed only */
};

struct dsn_report {
	const char	*qid;		/* borrowed: queue id of the original */
	const char	*host;		/* borrowed: our name: Reporting-MTA,
					   MAILER-DAEMON@host, Message-ID */
	const char	*from;		/* borrowed: original sender = To: */
	const char	*envid;		/* borrowed or NULL: ENVID, xtext */
	int		 ret;		/* enum smtp_ret */
	bool		 smtputf8;	/* original envelope had SMTPUTF8 */
	int64_t		 arrival;	/* seconds: Arrival-Date */
	int64_t		 now;		/* seconds: Date and Message-ID */
	const char	*boundary;	/* borrowed: random, 1-70 bchars */
	const struct dsn_rcpt *rcpt;	/* borrowed array of nrcpt */
	size_t		 nrcpt;
	const char	*msg;		/* borrowed: original message, CRLF */
	size_t		 msg_len;
	size_t		 return_max;	/* full message returned up to this */
};

struct dsn_out {
	char		*text;		/* owned: the report, CRLF lines,
					   NUL-terminated; dsn_out_fini() */
	size_t		 len;		/* bytes of text */
	bool		 eightbit;	/* bytes >= 0x80: BODY=8BITMIME */
	bool		 smtputf8;	/* To: not ASCII: send SMTPUTF8 */
};

/*
 * Fill r from the original envelope: qid, from, envid, ret, smtputf8,
 * arrival; zero the rest. r borrows from e.
 */
void	dsn_report_init(struct dsn_report *r, const struct envelope *e);
/*
 * Build the report for r into out (caller runs dsn_out_fini()): From
 * "Mail Delivery System <MAILER-DAEMON@host>", To <from>, Subject by kind,
 * Date (UTC), Message-ID <qid.kind.now@host> (kind: failure, delay,
 * success; now keeps repeated notices distinct), Auto-Submitted. Returns
 * 0, or -1 if r is unusable: no recipient, null or empty sender, host not
 * letters/digits/'-'/'.', qid not 1-32 letters/digits, boundary invalid
 * (out is then zeroed).
 */
int	dsn_format(const struct dsn_report *r, struct dsn_out *out);
/* Free what out owns and zero it. */
void	dsn_out_fini(struct dsn_out *out);

/*
 * Whether a notice with this action is due for a recipient of a message
 * from sender "from" with NOTIFY bits notify (RFC 3461 4.1, 6.2): never for
 * the null sender (no bounce of a bounce) nor NOTIFY=NEVER; absent NOTIFY
 * means FAILURE,DELAY; delivered, relayed and expanded need SUCCESS.
 */
bool	dsn_needed(const char *from, unsigned notify, enum dsn_action action);
/* The RFC 3464 Action value: "failed", "delayed", ... Static string. */
const char *dsn_action_name(enum dsn_action action);

#endif
