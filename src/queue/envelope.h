#ifndef PETREL_QUEUE_ENVELOPE_H
#define PETREL_QUEUE_ENVELOPE_H
/*
 * envelope.h: the text envelope block at the head of every spool file, and
 * the per-recipient journal beside it. Pure: formats and parses bytes.
 *
 * Envelope, one record per line, values %XX-escaped (%, controls, space,
 * DEL, and anything that is not valid to keep on one line):
 *   petrel-envelope 1
 *   id <qid>
 *   arrival <usec>
 *   client <addr> <port>
 *   client-name <name>
 *   helo <name>            (optional)
 *   proto <ESMTP|ESMTPS|ESMTPSA|SMTP|...>
 *   auth <identity>        (optional)
 *   from <addr>            ("from " with empty value = null sender)
 *   body <7BIT|8BITMIME>   (optional)
 *   smtputf8               (optional flag)
 *   ret <FULL|HDRS>        (optional)
 *   envid <xtext>          (optional)
 *   rcpt <addr> <notify> <orcpt>   notify: "-" or NEVER / comma list of
 *                                  SUCCESS,FAILURE,DELAY; orcpt: "-" or
 *                                  the escaped ORCPT value
 *   end
 * followed by the message (CRLF lines, dot-unstuffed).
 *
 * Journal: append-only lines "<rcpt index> <status> <dsn> <text>" where
 * status is "sent", "bounced" (final), "deferred" or "delayed" (a delay
 * notice went out); a torn last line is ignored.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/qid.h"

#define ENVELOPE_PARSE_MORE	(-2)

struct env_rcpt {
	char		*addr;		/* owned */
	char		*orcpt;		/* owned or NULL: raw "type;xtext" */
	unsigned	 notify;	/* SMTP_NOTIFY_* bits, 0 = not given */
};

struct envelope {
	char		 id[QID_LEN + 1];
	uint64_t	 arrival_usec;
	char		*client_addr;	/* owned, e.g. "127.0.0.1" */
	unsigned	 client_port;
	char		*client_name;	/* owned, e.g. "unknown" */
	char		*helo;		/* owned or NULL */
	char		*proto;		/* owned, e.g. "ESMTP" */
	char		*auth;		/* owned or NULL: authenticated id */
	char		*from;		/* owned; "" is the null sender */
	int		 body;		/* enum smtp_body_type */
	bool		 smtputf8;
	int		 ret;		/* enum smtp_ret */
	char		*envid;		/* owned or NULL: xtext as sent */
	struct env_rcpt	*rcpt;		/* owned array */
	size_t		 nrcpt;
	size_t		 rcpt_cap;
};

/* Zero e. */
void	envelope_init(struct envelope *e);
/* Free what e owns and zero it. */
void	envelope_fini(struct envelope *e);
/* Set a string field: *field = copy of value (or NULL), freeing the old. */
void	envelope_set(char **field, const char *value);
/* Append a recipient (copies addr and orcpt). */
void	envelope_add_rcpt(struct envelope *e, const char *addr,
	    const char *orcpt, unsigned notify);
/*
 * The block as text, ending with "end\n"; caller frees. *len its length.
 * NULL if e could not be parsed back (bad id, no rcpt, NULL field, ...).
 */
char	*envelope_format(const struct envelope *e, size_t *len);
/*
 * Parse a block from buf. Returns 0 with e filled (caller runs
 * envelope_fini()) and *body_off the offset of the message after "end\n";
 * ENVELOPE_PARSE_MORE if buf ends before "end\n"; -1 if malformed or if it
 * holds more than max_rcpt recipients (e is then left empty).
 */
int	envelope_parse(const char *buf, size_t len, size_t max_rcpt,
	    struct envelope *e, size_t *body_off);

/* DELAYED is not final: it records that a delay notice was sent. */
enum journal_status { JOURNAL_DEFERRED = 0, JOURNAL_SENT, JOURNAL_BOUNCED,
	JOURNAL_DELAYED };

/*
 * One journal line for recipient idx into out; text is escaped. Returns
 * its length or -1 if it does not fit.
 */
int	journal_format(char *out, size_t cap, size_t idx,
	    enum journal_status st, const char *dsn, const char *text);
/*
 * Replay a journal: final[i] = true for every recipient i < nrcpt with a
 * "sent" or "bounced" line. Malformed or torn lines are skipped. Returns
 * the number of recipients that are final.
 */
size_t	journal_replay(const char *buf, size_t len, size_t nrcpt, bool *final);
/* delayed[i] = true for every recipient with a "delayed" line; returns
   how many. */
size_t	journal_replay_delayed(const char *buf, size_t len, size_t nrcpt,
	    bool *delayed);

#endif
