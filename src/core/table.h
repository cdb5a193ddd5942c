#ifndef PETREL_CORE_TABLE_H
#define PETREL_CORE_TABLE_H
/*
 * table.h: lookup tables from plain files, behind one small interface so
 * another backend (SQL) can join later. A line is "key[:] value...";
 * '#' starts a comment line; blank lines are skipped; keys are lowercased.
 * Lookups are exact on the lowercased key.
 */
#include <stddef.h>

struct table;

#define TABLE_KEY_MAX	320	/* bytes; RFC 5321 4.5.3.1: 64 + 1 + 255 */
#define TABLE_LINE_MAX	8192	/* bytes, without the line end */

/*
 * Load path. Returns 0 and *out (free with table_free()), or -1 with err
 * naming "FILE:LINE: message" (duplicate key, key too long, unreadable
 * file). A missing file is an error unless missing_ok, which gives an
 * empty table.
 */
int		 table_load(const char *path, int missing_ok, struct table **out,
		    char *err, size_t errlen);
/* An empty table. */
struct table	*table_empty(void);
/* The value for key ("" when the line had only a key), or NULL. Borrowed:
   valid until t is freed. key is matched case-insensitively. */
const char	*table_get(const struct table *t, const char *key);
size_t		 table_count(const struct table *t);
void		 table_free(struct table *t);

#endif
