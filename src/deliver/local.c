/*
 * local.c: decide where mail for a local address goes: users, aliases
 * (bounded depth and size, loop-checked), catch-all, postmaster, and the
 * Maildir path of a mailbox. Reads only the tables it is given; no I/O.
 */
#include "deliver/local.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

/*
 * Total addresses looked at while expanding one recipient. Deduplication
 * keeps the result small, but overlapping alias lists could still make the
 * walk exponential in the depth without this bound.
 */
#define LOCAL_VISIT_MAX	(LOCAL_EXPAND_MAX * LOCAL_ALIAS_DEPTH_MAX)

enum local_step {
	LOCAL_STEP_NONE = 0,	/* nothing delivered on this branch */
	LOCAL_STEP_OK = 1,	/* at least one address resolved */
	LOCAL_STEP_FAIL = -1,	/* loop or limit: abandon the whole walk */
};

struct local_walk {
	const struct local_db *db;	/* borrowed */
	struct strlist	*mailboxes;	/* borrowed: the caller's */
	struct strlist	*remote;	/* borrowed: the caller's */
	struct strlist	 path;		/* owned: addresses being expanded */
	size_t		 results;	/* addresses added to either list */
	size_t		 visits;
};

void
strlist_add(struct strlist *l, const char *s)
{
	if (l->len == l->cap) {
		l->cap = l->cap == 0 ? 8 : l->cap * 2;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	l->v[l->len++] = xstrdup(s);
}

bool
strlist_has(const struct strlist *l, const char *s)
{
	size_t	 i;

	for (i = 0; i < l->len; i++)
		if (strcmp(l->v[i], s) == 0)
			return true;
	return false;
}

/* Drop entries past len, keeping the first len. */
static void
strlist_truncate(struct strlist *l, size_t len)
{
	while (l->len > len)
		free(l->v[--l->len]);
}

void
strlist_free(struct strlist *l)
{
	strlist_truncate(l, 0);
	free(l->v);
	l->v = NULL;
	l->cap = 0;
}

/* ASCII-only, so the locale cannot change what "local" means. */
static bool
local_case_eq(const char *a, const char *b)
{
	unsigned char ca, cb;

	do {
		ca = (unsigned char)*a++;
		cb = (unsigned char)*b++;
		if (ca >= 'A' && ca <= 'Z')
			ca += 'a' - 'A';
		if (cb >= 'A' && cb <= 'Z')
			cb += 'a' - 'A';
		if (ca != cb)
			return false;
	} while (ca != '\0');
	return true;
}

bool
local_is_domain(const struct local_db *db, const char *domain)
{
	size_t	 i;

	for (i = 0; i < db->domains_len; i++)
		if (local_case_eq(db->domains[i], domain))
			return true;
	return false;
}

/*
 * Add s to l unless already there, counting it against the expansion
 * limit. Returns LOCAL_STEP_OK or LOCAL_STEP_FAIL.
 */
static enum local_step
local_emit(struct local_walk *w, struct strlist *l, const char *s)
{
	if (strlist_has(l, s))
		return LOCAL_STEP_OK;
	if (++w->results > LOCAL_EXPAND_MAX)
		return LOCAL_STEP_FAIL;
	strlist_add(l, s);
	return LOCAL_STEP_OK;
}

/* addr is lowercase "local@domain" with a local domain. */
static bool
local_is_user(const struct local_db *db, const char *addr)
{
	return db->users != NULL && table_get(db->users, addr) != NULL;
}

/* RFC 5321 4.5.1: postmaster exists in every local domain. */
static bool
local_is_postmaster(size_t llen, const char *addr)
{
	return llen == 10 && strncmp(addr, "postmaster", 10) == 0;
}

/* The alias entry for addr (lowercase, local@domain), or NULL. */
static const char *
local_alias(const struct local_db *db, const char *addr, size_t llen,
    bool in_users)
{
	const char *v;
	char	*key;

	if (db->aliases == NULL)
		return NULL;
	if ((v = table_get(db->aliases, addr)) != NULL)
		return v;
	key = xstrndup(addr, llen);
	v = table_get(db->aliases, key);
	free(key);
	if (v != NULL || in_users)
		return v;
	/* Catch-all: only for addresses that are not users themselves (so
	   postmaster goes to a catch-all's owner when there is one). */
	return table_get(db->aliases, addr + llen);
}

static enum local_step local_walk_addr(struct local_walk *, const char *,
    int);

/*
 * Expand the alias of addr (lowercase; its local part is llen bytes) with
 * the comma-separated targets in value.
 */
static enum local_step
local_walk_alias(struct local_walk *w, const char *addr, size_t llen,
    const char *value, int depth)
{
	const char *p = value, *end, *domain = addr + llen + 1;
	char	*target = NULL;
	size_t	 tlen, path_len = w->path.len;
	enum local_step st = LOCAL_STEP_NONE, r;

	strlist_add(&w->path, addr);
	while (*p != '\0') {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		tlen = (size_t)(end - p);
		while (tlen > 0 && (p[tlen - 1] == ' ' || p[tlen - 1] == '\t'))
			tlen--;
		if (tlen > 0) {
			if (memchr(p, '@', tlen) != NULL)
				target = xstrndup(p, tlen);
			else
				target = xasprintf("%.*s@%s", (int)tlen, p,
				    domain);
			r = local_walk_addr(w, target, depth + 1);
			free(target);
			target = NULL;
			if (r == LOCAL_STEP_FAIL) {
				st = r;
				goto out;
			}
			if (r == LOCAL_STEP_OK)
				st = r;
		}
		p = *end == ',' ? end + 1 : end;
	}
out:
	strlist_truncate(&w->path, path_len);
	return st;
}

/* Resolve one address reached at depth (0: the recipient itself). */
static enum local_step
local_walk_addr(struct local_walk *w, const char *addr_in, int depth)
{
	const char *at, *value;
	char	*addr = NULL;
	size_t	 llen;
	bool	 in_users, is_mailbox;
	enum local_step st = LOCAL_STEP_NONE;

	if (++w->visits > LOCAL_VISIT_MAX)
		return LOCAL_STEP_FAIL;
	if ((at = strrchr(addr_in, '@')) == NULL || at == addr_in ||
	    at[1] == '\0')
		return LOCAL_STEP_NONE;	/* malformed: nobody to deliver to */
	llen = (size_t)(at - addr_in);

	if (!local_is_domain(w->db, at + 1)) {
		/* Only aliases lead here. The local part keeps its case
		   (RFC 5321 2.4); the domain does not need it. */
		addr = xstrdup(addr_in);
		str_lower(addr + llen + 1);
		st = local_emit(w, w->remote, addr);
		goto out;
	}

	addr = str_lower(xstrdup(addr_in));
	in_users = local_is_user(w->db, addr);
	is_mailbox = in_users || local_is_postmaster(llen, addr);
	if (strlist_has(&w->path, addr)) {
		/* An alias that reaches itself means its own mailbox. */
		st = is_mailbox ? local_emit(w, w->mailboxes, addr) :
		    LOCAL_STEP_FAIL;
		goto out;
	}
	if ((value = local_alias(w->db, addr, llen, in_users)) != NULL) {
		if (depth >= LOCAL_ALIAS_DEPTH_MAX)
			st = LOCAL_STEP_FAIL;
		else
			st = local_walk_alias(w, addr, llen, value, depth);
		/* An alias may not make postmaster disappear. */
		if (st == LOCAL_STEP_NONE && local_is_postmaster(llen, addr))
			st = local_emit(w, w->mailboxes, addr);
		goto out;
	}
	if (is_mailbox)
		st = local_emit(w, w->mailboxes, addr);
out:
	free(addr);
	return st;
}

enum local_result
local_resolve(const struct local_db *db, const char *addr,
    struct strlist *mailboxes, struct strlist *remote)
{
	struct local_walk w = { 0 };
	const char *at;
	size_t	 mb_len = mailboxes->len, rem_len = remote->len;
	enum local_result res;

	if ((at = strrchr(addr, '@')) == NULL || !local_is_domain(db, at + 1))
		return LOCAL_NOT_LOCAL;

	w.db = db;
	w.mailboxes = mailboxes;
	w.remote = remote;
	switch (local_walk_addr(&w, addr, 0)) {
	case LOCAL_STEP_OK:
		res = LOCAL_OK;
		break;
	case LOCAL_STEP_NONE:
		res = LOCAL_UNKNOWN;
		break;
	default:
		res = LOCAL_LOOP;
		break;
	}
	strlist_free(&w.path);
	if (res != LOCAL_OK) {
		/* Leave the caller's lists as they were. */
		strlist_truncate(mailboxes, mb_len);
		strlist_truncate(remote, rem_len);
	}
	return res;
}

/* A name that can be one path component: no "", ".", "..", '/' or controls. */
static bool
local_component_ok(const char *s, size_t len)
{
	size_t	 i;

	if (len == 0 || s[0] == '.')
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '/' || c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

int
local_maildir_path(const char *mail_dir, const char *mailbox, char *out,
    size_t cap)
{
	const char *at;
	size_t	 ulen;
	int	 n;

	if ((at = strrchr(mailbox, '@')) == NULL)
		return -1;
	ulen = (size_t)(at - mailbox);
	if (!local_component_ok(mailbox, ulen) ||
	    !local_component_ok(at + 1, strlen(at + 1)))
		return -1;
	n = snprintf(out, cap, "%s/%s/%.*s/Maildir", mail_dir, at + 1,
	    (int)ulen, mailbox);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	return 0;
}
