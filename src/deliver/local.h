#ifndef PETREL_DELIVER_LOCAL_H
#define PETREL_DELIVER_LOCAL_H
/*
 * local.h: local recipients: users, aliases (with loop protection),
 * catch-all, postmaster, and the Maildir path of a mailbox. Decides where
 * local mail goes; does no delivery itself.
 *
 * Users file: one "user@domain [password-hash]" per line.
 * Aliases file: "alias: target, target, ..." where alias is "local@domain",
 * a bare local part (any local domain) or "@domain" (catch-all); a target
 * without '@' means that local part in the alias's domain.
 */
#include <stdbool.h>
#include <stddef.h>

#include "core/table.h"

#define LOCAL_ALIAS_DEPTH_MAX	16
#define LOCAL_EXPAND_MAX	1000	/* addresses one recipient may expand to */

struct local_db {
	const char *const *domains;	/* borrowed: local domains, lowercase */
	size_t		 domains_len;
	const struct table *users;	/* borrowed */
	const struct table *aliases;	/* borrowed */
};

enum local_result {
	LOCAL_OK = 0,		/* out holds >= 1 address */
	LOCAL_NOT_LOCAL = 1,	/* the domain is not local */
	LOCAL_UNKNOWN = 2,	/* local domain, no such user: 550 5.1.1 */
	LOCAL_LOOP = 3,		/* alias loop or expansion too deep/large */
};

/* A growable list of owned strings. */
struct strlist {
	char	**v;
	size_t	 len;
	size_t	 cap;
};
void	strlist_add(struct strlist *l, const char *s);	/* copies s */
bool	strlist_has(const struct strlist *l, const char *s);
void	strlist_free(struct strlist *l);

bool	local_is_domain(const struct local_db *db, const char *domain);
/*
 * Resolve addr ("local@domain", any case) into final recipients: local
 * mailboxes go to mailboxes (lowercased "user@domain", deduplicated),
 * addresses in non-local domains reached through aliases go to remote.
 * postmaster@<local domain> always resolves (RFC 5321 4.5.1). An alias
 * that names itself delivers to the mailbox of that name.
 */
enum local_result local_resolve(const struct local_db *db, const char *addr,
	    struct strlist *mailboxes, struct strlist *remote);
/*
 * The Maildir path of a resolved mailbox "user@domain":
 * "<mail_dir>/<domain>/<user>/Maildir". Returns 0, or -1 if the name
 * cannot be a path component (contains '/', starts with '.', empty) or
 * does not fit.
 */
int	local_maildir_path(const char *mail_dir, const char *mailbox,
	    char *out, size_t cap);

#endif
