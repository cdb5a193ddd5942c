/*
 * reply.c: SMTP reply formatting (RFC 5321 4.2, RFC 2034). Pure: the
 * session decides what to say, this only lays the lines out.
 */
#include "smtp/reply.h"

#include <stdio.h>
#include <string.h>

int
smtp_reply_format(char *out, size_t cap, int code, const char *enh,
    const char *text)
{
	size_t	 o = 0;
	const char *line = text, *nl;
	int	 n;

	if (code < 200 || code > 599 || cap == 0)
		return -1;
	do {
		size_t	 len;
		char	 sep;

		nl = strchr(line, '\n');
		len = nl != NULL ? (size_t)(nl - line) : strlen(line);
		sep = nl != NULL && nl[1] != '\0' ? '-' : ' ';
		if (nl != NULL && nl[1] == '\0')
			nl = NULL;	/* trailing newline ends the reply */
		if (enh != NULL)
			n = snprintf(out + o, cap - o, "%d%c%s %.*s\r\n", code,
			    sep, enh, (int)len, line);
		else
			n = snprintf(out + o, cap - o, "%d%c%.*s\r\n", code,
			    sep, (int)len, line);
		if (n < 0 || (size_t)n >= cap - o)
			return -1;
		o += (size_t)n;
		if (nl != NULL)
			line = nl + 1;
	} while (nl != NULL);
	return (int)o;
}
