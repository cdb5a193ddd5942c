/*
 * table.c: plain-file lookup tables ("key[:] value" lines) in a small
 * open-addressing hash table. Loaded once at startup with blocking I/O;
 * read-only afterwards, so lookups from many threads need no lock.
 */
#include "core/table.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define TABLE_CAP_MIN	16	/* slots; always a power of two */

struct table_ent {
	char		*key;	/* owned, lowercase; value follows its NUL;
				   NULL for an empty slot */
	const char	*value;	/* borrowed: points into key's allocation */
	size_t		 line;	/* where the key was defined, for messages */
	uint32_t	 hash;
};

struct table {
	struct table_ent *slots;	/* owned; cap entries */
	size_t		 len;
	size_t		 cap;
};

static int
table_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int
table_is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' ||
	    c == '\v' || c == '\f';
}

/* FNV-1a over the ASCII-lowercased bytes of key. */
static uint32_t
table_hash(const char *key)
{
	uint32_t h = 2166136261u;

	for (; *key != '\0'; key++) {
		h ^= (unsigned char)table_lower((unsigned char)*key);
		h *= 16777619u;
	}
	return h;
}

/* stored is lowercase already; key may be of any case. */
static int
table_key_eq(const char *stored, const char *key)
{
	for (; *stored != '\0' && *key != '\0'; stored++, key++)
		if ((unsigned char)*stored != table_lower((unsigned char)*key))
			return 0;	/* unsigned: UTF-8 bytes are >= 0x80 */
	return *stored == '\0' && *key == '\0';
}

/* The slot holding key, or the empty slot where it would go. */
static struct table_ent *
table_find(const struct table *t, const char *key, uint32_t hash)
{
	size_t	 i, mask = t->cap - 1;

	for (i = hash & mask;; i = (i + 1) & mask) {
		struct table_ent *e = &t->slots[i];

		if (e->key == NULL)
			return e;
		if (e->hash == hash && table_key_eq(e->key, key))
			return e;
	}
}

static void
table_grow(struct table *t)
{
	struct table_ent *old = t->slots;
	size_t	 i, old_cap = t->cap;

	t->cap = old_cap * 2;
	t->slots = xcalloc(t->cap, sizeof(*t->slots));
	for (i = 0; i < old_cap; i++) {
		if (old[i].key != NULL)
			*table_find(t, old[i].key, old[i].hash) = old[i];
	}
	free(old);
}

struct table *
table_empty(void)
{
	struct table *t = xcalloc(1, sizeof(*t));

	t->cap = TABLE_CAP_MIN;
	t->slots = xcalloc(t->cap, sizeof(*t->slots));
	return t;
}

/*
 * Add key (lowercase, klen bytes) -> value (vlen bytes). Returns 0, or the
 * line of the earlier definition if key is already present.
 */
static size_t
table_put(struct table *t, const char *key, size_t klen, const char *value,
    size_t vlen, size_t line)
{
	struct table_ent *e;
	char	*kv;
	uint32_t hash;

	kv = xmalloc(klen + 1 + vlen + 1);
	memcpy(kv, key, klen);
	kv[klen] = '\0';
	memcpy(kv + klen + 1, value, vlen);
	kv[klen + 1 + vlen] = '\0';

	hash = table_hash(kv);
	e = table_find(t, kv, hash);
	if (e->key != NULL) {
		free(kv);
		return e->line;
	}
	e->key = kv;
	e->value = kv + klen + 1;
	e->line = line;
	e->hash = hash;
	/* Keep the load factor at most 1/2 so probe chains stay short. */
	if (++t->len * 2 > t->cap)
		table_grow(t);
	return 0;
}

/*
 * Parse one line (len bytes, no line end, no NUL) into t. Returns 0, or -1
 * with err set.
 */
static int
table_parse_line(struct table *t, const char *path, size_t lineno,
    char *line, size_t len, char *err, size_t errlen)
{
	size_t	 i = 0, kstart, klen, vstart, vend, first;

	while (i < len && table_is_space((unsigned char)line[i]))
		i++;
	if (i == len || line[i] == '#')
		return 0;

	kstart = i;
	while (i < len && !table_is_space((unsigned char)line[i]) &&
	    line[i] != ':')
		i++;
	klen = i - kstart;
	if (i < len && line[i] == ':')
		i++;
	if (klen == 0) {
		snprintf(err, errlen, "%s:%zu: empty key", path, lineno);
		return -1;
	}
	if (klen > TABLE_KEY_MAX) {
		snprintf(err, errlen, "%s:%zu: key too long (%zu bytes, "
		    "max %d)", path, lineno, klen, TABLE_KEY_MAX);
		return -1;
	}
	for (first = kstart; first < kstart + klen; first++)
		line[first] = (char)table_lower((unsigned char)line[first]);

	vstart = i;
	while (vstart < len && table_is_space((unsigned char)line[vstart]))
		vstart++;
	vend = len;
	while (vend > vstart && table_is_space((unsigned char)line[vend - 1]))
		vend--;

	first = table_put(t, line + kstart, klen, line + vstart, vend - vstart,
	    lineno);
	if (first != 0) {
		snprintf(err, errlen, "%s:%zu: duplicate key '%.*s' "
		    "(first on line %zu)", path, lineno, (int)klen,
		    line + kstart, first);
		return -1;
	}
	return 0;
}

int
table_load(const char *path, int missing_ok, struct table **out, char *err,
    size_t errlen)
{
	struct table *t = NULL;
	FILE	*fp = NULL;
	char	*line = NULL;
	size_t	 len = 0, lineno = 0;
	int	 c, rc = -1, too_long = 0;

	*out = NULL;
	if ((fp = fopen(path, "re")) == NULL) {
		if (errno == ENOENT && missing_ok) {
			*out = table_empty();
			return 0;
		}
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	t = table_empty();
	/* +1: room for a CR that a CRLF line end brings along. */
	line = xmalloc(TABLE_LINE_MAX + 1);

	for (;;) {
		c = getc_unlocked(fp);
		if (c != EOF && c != '\n') {
			if (c == '\0') {
				snprintf(err, errlen, "%s:%zu: NUL byte", path,
				    lineno + 1);
				goto out;
			}
			if (len < TABLE_LINE_MAX + 1)
				line[len++] = (char)c;
			else
				too_long = 1;
			continue;
		}
		if (c == EOF && ferror(fp)) {
			snprintf(err, errlen, "%s:%zu: %s", path, lineno + 1,
			    strerror(errno));
			goto out;
		}
		if (c == EOF && len == 0 && !too_long)
			break;
		lineno++;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		else if (len > TABLE_LINE_MAX)
			too_long = 1;
		if (too_long) {
			snprintf(err, errlen, "%s:%zu: line too long (max %d "
			    "bytes)", path, lineno, TABLE_LINE_MAX);
			goto out;
		}
		if (table_parse_line(t, path, lineno, line, len, err,
		    errlen) == -1)
			goto out;
		len = 0;
		if (c == EOF)
			break;
	}
	*out = t;
	t = NULL;
	rc = 0;
out:
	if (fp != NULL)
		fclose(fp);	/* read-only: nothing to lose */
	free(line);
	table_free(t);
	return rc;
}

const char *
table_get(const struct table *t, const char *key)
{
	struct table_ent *e;

	if (t == NULL || strlen(key) > TABLE_KEY_MAX)
		return NULL;
	e = table_find(t, key, table_hash(key));
	return e->key != NULL ? e->value : NULL;
}

size_t
table_count(const struct table *t)
{
	return t != NULL ? t->len : 0;
}

void
table_free(struct table *t)
{
	size_t	 i;

	if (t == NULL)
		return;
	for (i = 0; i < t->cap; i++)
		free(t->slots[i].key);
	free(t->slots);
	free(t);
}
