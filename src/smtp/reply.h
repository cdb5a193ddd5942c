#ifndef PETREL_SMTP_REPLY_H
#define PETREL_SMTP_REPLY_H
/*
 * reply.h: format SMTP replies (RFC 5321 4.2) with enhanced status codes
 * (RFC 2034, 3463). Pure.
 */
#include <stddef.h>

/*
 * Format code + enhanced status + text into out. text may hold '\n' to
 * make a multiline reply: every line gets "code-enh " except the last,
 * which gets "code enh ". enh may be NULL (greeting). Returns the length
 * written (excluding NUL) or -1 if it does not fit in cap.
 */
int	smtp_reply_format(char *out, size_t cap, int code, const char *enh,
	    const char *text);

#endif
